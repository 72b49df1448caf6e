//! A scratch PostgreSQL cluster for tests and benchmarks: Debian's `initdb` and `postgres`
//! (scripts/deps/postgres.sh), run as user `postgres` when started by root, listening on a
//! unix socket in a private directory, and on 127.0.0.1 at a free port only when it serves TLS
//! (a unix socket cannot carry TLS). Plain clusters stay off TCP because a test stops and
//! restarts its cluster: in between, any socket another test binds to port 0 may take the
//! port, and the restart would fail with "Address already in use". The cluster lives as
//! long as the process that started it: a small shell keeps it, and stops it and removes its
//! directory when the process's end closes its standard input, however the process ended.
//! Each caller gets a fresh database of its own ([`ScratchCluster::fresh_database`]).
//!
//! There is no fallback: without PostgreSQL installed, starting fails with a message naming
//! the script that installs it, so a test that needs it fails instead of being skipped.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

/// Why a scratch cluster could not be started or used.
#[derive(Debug, thiserror::Error)]
pub enum ScratchError {
    /// The server binaries are not installed.
    #[error(
        "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): run scripts/deps/postgres.sh"
    )]
    NotInstalled,
    /// A step of starting the cluster failed; the text has its output.
    #[error("scratch PostgreSQL: {0}")]
    Start(String),
    /// A database could not be created.
    #[error("scratch PostgreSQL: {0}")]
    Database(#[from] sqlx::Error),
}

/// The controlling shell reads one command per line: `stop`, `start`; end of input removes
/// the cluster. `$1` directory, `$2` binaries, `$3` port, `$4` more server options (the
/// TCP listen address among them).
const KEEPER: &str = r#"
set -u
dir=$1; bin=$2; port=$3; extra=$4
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
start() {
    as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w -t 60 \
        -o "-k $dir -p $port -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300 $extra" \
        start >/dev/null && echo started || { echo "failed: $(tail -5 "$dir/log" | tr '\n' ' ')"; }
}
stop() { as_pg "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1; echo stopped; }
if ! out=$(as_pg "$bin/initdb" -D "$dir/data" -A trust -U postgres --locale=C -E UTF8 2>&1); then
    echo "failed: initdb: $(echo "$out" | tail -3 | tr '\n' ' ')"; exit 1
fi
start
while read -r command; do
    case "$command" in
        stop) stop ;;
        start) start ;;
    esac
done
stop >/dev/null
rm -rf "$dir"
"#;

/// A running scratch cluster.
pub struct ScratchCluster {
    dir: PathBuf,
    port: u16,
    keeper: Mutex<Keeper>,
}

struct Keeper {
    stdin: ChildStdin,
    replies: BufReader<std::process::ChildStdout>,
    _child: Child,
}

static SHARED: OnceLock<Result<ScratchCluster, String>> = OnceLock::new();
static DATABASES: AtomicU64 = AtomicU64::new(0);

impl ScratchCluster {
    /// The cluster shared by this process, started on first use.
    pub fn shared() -> Result<&'static ScratchCluster, ScratchError> {
        SHARED
            .get_or_init(|| Self::start().map_err(|e| e.to_string()))
            .as_ref()
            .map_err(|e| ScratchError::Start(e.clone()))
    }

    /// Starts a cluster of its own (for tests that stop and restart it).
    pub fn start() -> Result<ScratchCluster, ScratchError> {
        Self::start_with(None)
    }

    /// Starts a cluster of its own that also accepts TLS on 127.0.0.1 with this server
    /// certificate and key (PEM); plain connections are still allowed.
    pub fn start_with_tls(cert_pem: &str, key_pem: &str) -> Result<ScratchCluster, ScratchError> {
        Self::start_with(Some((cert_pem, key_pem)))
    }

    fn start_with(tls: Option<(&str, &str)>) -> Result<ScratchCluster, ScratchError> {
        let bin = binaries()?;
        let dir = std::env::temp_dir().join(format!(
            "tillsyn-pg-{}-{}",
            std::process::id(),
            DATABASES.fetch_add(1, Ordering::Relaxed)
        ));
        let io = |e: std::io::Error| ScratchError::Start(format!("{}: {e}", dir.display()));
        std::fs::create_dir_all(&dir).map_err(io)?;
        let mut extra = String::from("-c listen_addresses=''");
        if let Some((cert, key)) = tls {
            use std::os::unix::fs::PermissionsExt;
            let (cert_path, key_path) = (dir.join("server.pem"), dir.join("server.key"));
            std::fs::write(&cert_path, cert).map_err(io)?;
            std::fs::write(&key_path, key).map_err(io)?;
            // PostgreSQL refuses a key that others can read.
            std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600))
                .map_err(io)?;
            extra = format!(
                "-c listen_addresses=127.0.0.1 -c ssl=on -c ssl_cert_file={} -c ssl_key_file={}",
                cert_path.display(),
                key_path.display()
            );
        }
        if is_root() {
            run(Command::new("chown")
                .arg("-R")
                .arg("postgres:postgres")
                .arg(&dir))?;
        }
        let port = free_port()?;
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(KEEPER)
            .arg("keeper")
            .arg(&dir)
            .arg(&bin)
            .arg(port.to_string())
            .arg(&extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| ScratchError::Start(format!("sh: {e}")))?;
        let stdin = child
            .stdin
            .take()
            .ok_or_else(|| ScratchError::Start("no stdin".into()))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| ScratchError::Start("no stdout".into()))?;
        let mut keeper = Keeper {
            stdin,
            replies: BufReader::new(stdout),
            _child: child,
        };
        keeper.expect("started")?;
        Ok(ScratchCluster {
            dir,
            port,
            keeper: Mutex::new(keeper),
        })
    }

    /// The port the unix socket file is named after; a TLS cluster listens on it on 127.0.0.1
    /// too.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The directory holding the unix socket.
    pub fn socket_dir(&self) -> &Path {
        &self.dir
    }

    /// The URL of database `name` over the unix socket.
    pub fn url(&self, name: &str) -> String {
        format!(
            "postgres://postgres@localhost:{}/{name}?host={}",
            self.port,
            self.dir.display()
        )
    }

    /// Creates a new empty database and returns its URL.
    pub async fn fresh_database(&self) -> Result<String, ScratchError> {
        Ok(self.url(&self.fresh_database_name().await?))
    }

    /// Creates a new empty database and returns its name.
    pub async fn fresh_database_name(&self) -> Result<String, ScratchError> {
        use sqlx::Connection;
        sqlx::any::install_default_drivers();
        let name = format!(
            "t{}_{}",
            std::process::id(),
            DATABASES.fetch_add(1, Ordering::Relaxed)
        );
        let mut conn = sqlx::AnyConnection::connect(&self.url("postgres")).await?;
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await?;
        conn.close().await?;
        Ok(name)
    }

    /// Stops the server (fast shutdown: open connections are cut); data stays.
    pub fn stop(&self) -> Result<(), ScratchError> {
        self.command("stop", "stopped")
    }

    /// Starts the server again after [`ScratchCluster::stop`].
    pub fn restart(&self) -> Result<(), ScratchError> {
        self.command("start", "started")
    }

    fn command(&self, command: &str, reply: &str) -> Result<(), ScratchError> {
        let mut keeper = self
            .keeper
            .lock()
            .map_err(|_| ScratchError::Start("keeper lock poisoned".into()))?;
        writeln!(keeper.stdin, "{command}")
            .and_then(|()| keeper.stdin.flush())
            .map_err(|e| ScratchError::Start(format!("keeper: {e}")))?;
        keeper.expect(reply)
    }
}

impl Keeper {
    fn expect(&mut self, reply: &str) -> Result<(), ScratchError> {
        let mut line = String::new();
        self.replies
            .read_line(&mut line)
            .map_err(|e| ScratchError::Start(format!("keeper: {e}")))?;
        if line.trim() == reply {
            Ok(())
        } else if line.is_empty() {
            Err(ScratchError::Start("the keeper shell ended".into()))
        } else {
            Err(ScratchError::Start(line.trim().to_string()))
        }
    }
}

fn binaries() -> Result<PathBuf, ScratchError> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|_| ScratchError::NotInstalled)?
        .filter_map(Result::ok)
        .map(|entry| entry.path().join("bin"))
        .filter(|bin| bin.join("initdb").is_file() && bin.join("pg_ctl").is_file())
        .collect();
    found.sort();
    found.pop().ok_or(ScratchError::NotInstalled)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| out.stdout.trim_ascii() == b"0")
}

fn run(command: &mut Command) -> Result<(), ScratchError> {
    let out = command
        .output()
        .map_err(|e| ScratchError::Start(format!("{command:?}: {e}")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(ScratchError::Start(format!(
            "{command:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

fn free_port() -> Result<u16, ScratchError> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| ScratchError::Start(format!("no free port: {e}")))?;
    let port = listener
        .local_addr()
        .map_err(|e| ScratchError::Start(format!("no free port: {e}")))?
        .port();
    drop(listener);
    Ok(port)
}
