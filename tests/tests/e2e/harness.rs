//! Starting and driving real collector and agent processes.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Once;

use tillsyn_proto::v1::{self, inventory_client::InventoryClient};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

/// The workspace's target directory, derived from this test binary's path
/// (target/<profile>/deps/e2e-*).
fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().to_path_buf()
}

/// Newest modification time of the sources the binaries are built from.
fn newest_source() -> std::time::SystemTime {
    fn walk(dir: &Path, newest: &mut std::time::SystemTime) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                if !path.ends_with("fuzz") && !path.ends_with("tests") {
                    walk(&path, newest);
                }
            } else if let Ok(modified) = entry.metadata().and_then(|m| m.modified()) {
                *newest = (*newest).max(modified);
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut newest = std::time::SystemTime::UNIX_EPOCH;
    for crate_dir in ["agent", "collector", "proto", "deploy", "loadgen"] {
        walk(&root.join(crate_dir), &mut newest);
    }
    newest
}

/// Path of a workspace binary. `cargo test --workspace` builds the binaries itself; when they
/// are missing or older than the sources (`cargo test -p tillsyn-e2e` alone), build them once.
/// Building unconditionally would rebuild with other feature flags and thrash the target dir.
pub fn bin(name: &str) -> PathBuf {
    static BUILD: Once = Once::new();
    let path = bin_dir().join(name);
    BUILD.call_once(|| {
        let fresh = ["tillsyn-collector", "tillsyn-agent", "tillsyn-loadgen"]
            .iter()
            .all(|b| {
                std::fs::metadata(bin_dir().join(b))
                    .and_then(|m| m.modified())
                    .is_ok_and(|built| built >= newest_source())
            });
        if fresh {
            return;
        }
        let release = bin_dir().ends_with("release");
        let mut cmd = Command::new(env!("CARGO"));
        cmd.args([
            "build",
            "-p",
            "tillsyn-collector",
            "-p",
            "tillsyn-agent",
            "-p",
            "tillsyn-loadgen",
            "--bins",
        ]);
        if release {
            cmd.arg("--release");
        }
        let status = cmd.status().unwrap();
        assert!(status.success(), "building the binaries failed");
    });
    assert!(path.exists(), "{} missing", path.display());
    path
}

/// Runs a command to completion, asserting nothing.
pub fn run(program: &str, args: &[&str]) -> Output {
    Command::new(bin(program)).args(args).output().unwrap()
}

/// Runs a command and returns stdout, failing the test with stderr on a non-zero exit.
pub fn ok(program: &str, args: &[&str]) -> String {
    let out = run(program, args);
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A running collector with its own state directory; killed on drop.
pub struct Collector {
    pub dir: tempfile::TempDir,
    pub url: String,
    /// `None` while stopped (between `kill` and `restart`).
    child: Option<Child>,
    /// The PostgreSQL database it stores into (`database = ...`); `None`: its SQLite file.
    pub database_url: Option<String>,
}

impl Collector {
    /// `init` + `serve --listen 127.0.0.1:0`, waiting for the listening line.
    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        ok(
            "tillsyn-collector",
            &["--dir", dir.path().to_str().unwrap(), "init"],
        );
        Self::serve(dir)
    }

    /// `init`, then sets `key = value` lines in `collector.toml` (replacing the key's line or
    /// adding it), then `serve`.
    pub fn start_with(settings: &[(&str, &str)]) -> Self {
        let database_url = settings
            .iter()
            .find(|(key, _)| *key == "database")
            .map(|(_, value)| value.trim_matches('"').to_string())
            .filter(|value| value.starts_with("postgres"));
        let dir = tempfile::tempdir().unwrap();
        ok(
            "tillsyn-collector",
            &["--dir", dir.path().to_str().unwrap(), "init"],
        );
        let path = dir.path().join("collector.toml");
        let mut text = std::fs::read_to_string(&path).unwrap();
        for (key, value) in settings {
            let line = format!("{key} = {value}");
            let prefix = format!("{key} = ");
            text = if text.lines().any(|l| l.starts_with(&prefix)) {
                text.lines()
                    .map(|l| {
                        if l.starts_with(&prefix) {
                            line.clone()
                        } else {
                            l.to_string()
                        }
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
                    + "\n"
            } else {
                // Top-level keys go before the first table.
                match text.find("\n[") {
                    Some(at) => format!("{}\n{line}{}", &text[..at], &text[at..]),
                    None => format!("{text}{line}\n"),
                }
            };
        }
        std::fs::write(&path, text).unwrap();
        let mut collector = Self::serve(dir);
        collector.database_url = database_url;
        collector
    }

    /// `init` + `serve` storing into the PostgreSQL database `url`, with more settings.
    pub fn start_on_postgres(url: &str, settings: &[(&str, &str)]) -> Self {
        let database = format!("\"{url}\"");
        let mut all = vec![("database", database.as_str())];
        all.extend_from_slice(settings);
        Self::start_with(&all)
    }

    /// Another `serve` process on the same database with the same CA, server certificate
    /// and configuration (a copy of the state directory without the SQLite file): a replica
    /// behind the same load balancer.
    pub fn replica(&self) -> Self {
        let dir = tempfile::tempdir().unwrap();
        for entry in std::fs::read_dir(self.dir.path()).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name();
            if entry.path().is_file() && !name.to_string_lossy().starts_with("tillsyn.db") {
                std::fs::copy(entry.path(), dir.path().join(&name)).unwrap();
            }
        }
        let mut collector = Self::serve(dir);
        collector.database_url.clone_from(&self.database_url);
        collector
    }

    /// The process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// `init` + `serve --listen 127.0.0.1:0 --web 127.0.0.1:0`; returns it and the web
    /// interface's URL (from its second line).
    pub fn start_with_web() -> (Self, String) {
        Self::start_with_web_config("")
    }

    /// Like [`Self::start_with_web`], with `extra` appended to `collector.toml` first.
    pub fn start_with_web_config(extra: &str) -> (Self, String) {
        Self::start_with_web_on("127.0.0.1:0", extra)
    }

    /// Like [`Self::start_with_web_config`], the web listener on `web` (a fixed port, for a
    /// `[web] public_url` that must name it).
    pub fn start_with_web_on(web: &str, extra: &str) -> (Self, String) {
        let dir = tempfile::tempdir().unwrap();
        ok(
            "tillsyn-collector",
            &["--dir", dir.path().to_str().unwrap(), "init"],
        );
        if !extra.is_empty() {
            let path = dir.path().join("collector.toml");
            let mut config = std::fs::read_to_string(&path).unwrap();
            config.push('\n');
            config.push_str(extra);
            std::fs::write(&path, config).unwrap();
        }
        let mut child = Command::new(bin("tillsyn-collector"))
            .args(["--dir", dir.path().to_str().unwrap(), "serve"])
            .args(["--listen", "127.0.0.1:0", "--web", web])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let (mut first, mut second) = (String::new(), String::new());
        stdout.read_line(&mut first).unwrap();
        stdout.read_line(&mut second).unwrap();
        let addr = first
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("{first:?}"));
        let web = second
            .trim()
            .strip_prefix("web interface on ")
            .unwrap_or_else(|| panic!("{second:?}"))
            .to_string();
        let collector = Self {
            url: format!("https://{addr}"),
            dir,
            child: Some(child),
            database_url: None,
        };
        (collector, web)
    }

    /// Serves on a port below the kernel's ephemeral range, so that while a test has it
    /// stopped for [`Collector::restart`] no other test's connection or bind to port 0 can
    /// take it; a port another test holds is skipped.
    fn serve(dir: tempfile::TempDir) -> Self {
        let mut last = String::new();
        for port in quiet_ports().take(50) {
            match spawn_serve(dir.path(), &format!("127.0.0.1:{port}")) {
                Ok((child, addr)) => {
                    return Self {
                        url: format!("https://{addr}"),
                        dir,
                        child: Some(child),
                        database_url: None,
                    };
                }
                Err(line) => last = line,
            }
        }
        panic!("no port below the ephemeral range to serve on; last: {last:?}")
    }

    /// The port it listens on (kept across restarts).
    pub fn port(&self) -> u16 {
        self.url.rsplit(':').next().unwrap().parse().unwrap()
    }

    /// `kill -9`, as a crash or power loss would; the state directory stays.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Serves again from the same directory on the same port (killing it first if it runs).
    pub fn restart(&mut self) {
        self.kill();
        let listen = format!("127.0.0.1:{}", self.port());
        // The port is free once the process is reaped, and outside the ephemeral range (see
        // `serve`); the retries cover another test's `serve` trying the same port meanwhile.
        for attempt in 0.. {
            match spawn_serve(self.dir.path(), &listen) {
                Ok((child, _)) => {
                    self.child = Some(child);
                    return;
                }
                Err(line) if attempt < 20 => {
                    eprintln!("restart on {listen} failed ({line:?}); retrying");
                }
                Err(line) => panic!("cannot restart the collector on {listen}: {line:?}"),
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }

    /// `(agent_id, report_id)` of every stored report, in the order they were stored, read
    /// straight from the database (the SQLite file read-only, or PostgreSQL; the collector has
    /// no CLI verb for it).
    pub async fn stored_reports(&self) -> Vec<(String, String)> {
        let mut db = self.db().await;
        sqlx::query_as("SELECT agent_id, report_id FROM reports ORDER BY rowid")
            .fetch_all(&mut db)
            .await
            .unwrap()
    }

    /// How many reports are stored.
    pub async fn stored_count(&self) -> u64 {
        let mut db = self.db().await;
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM reports")
            .fetch_one(&mut db)
            .await
            .unwrap();
        u64::try_from(count).unwrap()
    }

    /// The stored `value_json` of every observation named `name` (any asset, any category),
    /// with the stored evidence, read straight from the SQLite file.
    pub async fn stored_observations(
        &self,
        name: &str,
    ) -> Vec<(serde_json::Value, serde_json::Value)> {
        let mut db = self.db().await;
        let rows: Vec<(String, String)> =
            sqlx::query_as("SELECT value_json, evidence_json FROM observations WHERE name = $1")
                .bind(name)
                .fetch_all(&mut db)
                .await
                .unwrap();
        rows.into_iter()
            .map(|(v, e)| {
                (
                    serde_json::from_str(&v).unwrap(),
                    serde_json::from_str(&e).unwrap(),
                )
            })
            .collect()
    }

    /// A connection to its database: PostgreSQL, or the SQLite file read-only.
    pub async fn db(&self) -> sqlx::AnyConnection {
        use sqlx::Connection;
        sqlx::any::install_default_drivers();
        let url = match &self.database_url {
            Some(url) => url.clone(),
            None => format!(
                "sqlite://{}?mode=ro",
                self.dir.path().join("tillsyn.db").display()
            ),
        };
        let mut conn = sqlx::AnyConnection::connect(&url).await.unwrap();
        if self.database_url.is_none() {
            sqlx::Executor::execute(&mut conn, "PRAGMA busy_timeout = 10000")
                .await
                .unwrap();
        }
        conn
    }

    pub fn path(&self) -> &str {
        self.dir.path().to_str().unwrap()
    }

    pub fn ca_pem(&self) -> String {
        format!("{}/ca.pem", self.path())
    }

    /// `token create`; the token is the last line.
    pub fn token(&self, extra: &[&str]) -> String {
        let mut args = vec!["--dir", self.path(), "token", "create"];
        args.extend_from_slice(extra);
        let out = ok("tillsyn-collector", &args);
        out.lines().last().unwrap().trim().to_string()
    }

    pub fn assets(&self) -> Vec<serde_json::Value> {
        let out = ok(
            "tillsyn-collector",
            &["--dir", self.path(), "assets", "--format", "json"],
        );
        serde_json::from_str::<serde_json::Value>(&out)
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    }

    /// `findings --format json` with extra arguments.
    pub fn findings(&self, extra: &[&str]) -> Vec<serde_json::Value> {
        let mut args = vec!["--dir", self.path(), "findings", "--format", "json"];
        args.extend_from_slice(extra);
        let out = ok("tillsyn-collector", &args);
        serde_json::from_str::<serde_json::Value>(&out)
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    }

    /// Writes `text` to a file in the collector dir and imports it.
    pub fn import(&self, name: &str, text: &str) -> Output {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        run(
            "tillsyn-collector",
            &[
                "--dir",
                self.path(),
                "catalog",
                "import",
                path.to_str().unwrap(),
            ],
        )
    }

    pub fn agents(&self) -> Vec<serde_json::Value> {
        let out = ok(
            "tillsyn-collector",
            &["--dir", self.path(), "agent", "list", "--format", "json"],
        );
        serde_json::from_str::<serde_json::Value>(&out)
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    }

    /// Enrolls a new agent in a fresh directory.
    pub fn enroll(&self) -> Agent {
        self.enroll_with(&[])
    }

    /// Enrolls a new agent with extra `enroll` arguments (e.g. `--label site=ward4`).
    pub fn enroll_with(&self, extra: &[&str]) -> Agent {
        let token = self.token(&[]);
        let agent = Agent {
            dir: tempfile::tempdir().unwrap(),
        };
        let out = agent.enroll_args(self, &token, extra);
        assert!(
            out.status.success(),
            "enroll failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        agent
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Starts `serve --listen LISTEN` on `dir` and waits for its `listening on ADDR` line; returns
/// the child and ADDR, or the line it printed instead (empty when it exited).
/// Ports in 20000 up to the start of the ephemeral range (`ip_local_port_range`), from a
/// point that differs between test processes and moves on with every call in this one.
fn quiet_ports() -> impl Iterator<Item = u16> {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    const LOW: u32 = 20_000;
    let high: u32 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse().ok())
        .filter(|start| *start > LOW + 1_000)
        .unwrap_or(32_768);
    let span = high - LOW;
    let seed = std::process::id().wrapping_mul(7_919);
    std::iter::repeat_with(move || {
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let port = LOW + seed.wrapping_add(n.wrapping_mul(97)) % span;
        u16::try_from(port).unwrap_or(20_000)
    })
}

fn spawn_serve(dir: &Path, listen: &str) -> Result<(Child, String), String> {
    let mut child = Command::new(bin("tillsyn-collector"))
        .args(["--dir", dir.to_str().unwrap(), "serve", "--listen", listen])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    if let Some(addr) = line.trim().strip_prefix("listening on ") {
        return Ok((child, addr.to_string()));
    }
    let _ = child.kill();
    let _ = child.wait();
    Err(line)
}

/// An agent state directory.
pub struct Agent {
    pub dir: tempfile::TempDir,
}

impl Agent {
    pub fn path(&self) -> &str {
        self.dir.path().to_str().unwrap()
    }

    pub fn enroll(&self, collector: &Collector, token: &str) -> Output {
        self.enroll_args(collector, token, &[])
    }

    pub fn enroll_args(&self, collector: &Collector, token: &str, extra: &[&str]) -> Output {
        let ca = collector.ca_pem();
        let mut args = vec![
            "--dir",
            self.path(),
            "enroll",
            "--collector",
            &collector.url,
            "--token",
            token,
            "--ca",
            &ca,
        ];
        args.extend_from_slice(extra);
        run("tillsyn-agent", &args)
    }

    pub fn run_once(&self, root: Option<&Path>) -> Output {
        let mut args = vec!["--dir", self.path(), "run", "--once"];
        if let Some(root) = root {
            args.extend(["--root", root.to_str().unwrap()]);
        }
        run("tillsyn-agent", &args)
    }

    /// `run --once --reports N --retry-for SECS` in the background.
    pub fn spawn_reports(&self, root: &Path, reports: u32, retry_for_secs: u64) -> Child {
        Command::new(bin("tillsyn-agent"))
            .args([
                "--dir",
                self.path(),
                "run",
                "--once",
                "--root",
                root.to_str().unwrap(),
            ])
            .args([
                "--reports",
                &reports.to_string(),
                "--retry-for",
                &retry_for_secs.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// Shortens the retry backoff in `agent.toml` so fault tests do not wait minutes.
    pub fn tune_retry(&self, min_ms: u64, max_ms: u64) {
        let path = self.dir.path().join("agent.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("retry_min_ms = ") && text.contains("retry_max_ms = "),
            "{text}"
        );
        let tuned: Vec<String> = text
            .lines()
            .map(|line| match line.split_once(" = ") {
                Some(("retry_min_ms", _)) => format!("retry_min_ms = {min_ms}"),
                Some(("retry_max_ms", _)) => format!("retry_max_ms = {max_ms}"),
                _ => line.to_string(),
            })
            .collect();
        std::fs::write(&path, tuned.join("\n") + "\n").unwrap();
    }

    /// Reports waiting in this agent's spool.
    pub fn spool_depth(&self) -> usize {
        match std::fs::read_dir(self.dir.path().join("spool")) {
            Ok(entries) => entries
                .filter(|e| {
                    e.as_ref()
                        .unwrap()
                        .file_name()
                        .to_string_lossy()
                        .ends_with(".report")
                })
                .count(),
            Err(_) => 0,
        }
    }

    /// The drop counter the agent persists beside its spool.
    pub fn spool_dropped(&self) -> u64 {
        std::fs::read_to_string(self.dir.path().join("spool/dropped"))
            .map_or(0, |t| t.trim().parse().unwrap())
    }

    pub fn agent_id(&self) -> String {
        let text = std::fs::read_to_string(self.dir.path().join("agent.toml")).unwrap();
        let line = text.lines().find(|l| l.starts_with("agent_id")).unwrap();
        line.split('"').nth(1).unwrap().to_string()
    }

    /// A gRPC client speaking as this agent (its key and certificate).
    pub async fn client(&self, collector: &Collector) -> InventoryClient<Channel> {
        let read = |name: &str| std::fs::read_to_string(self.dir.path().join(name)).unwrap();
        let identity = Identity::from_pem(read("agent.pem"), read("agent.key"));
        connect(collector, Some(identity)).await.unwrap()
    }
}

/// Connects to the collector with an optional client identity.
pub async fn connect(
    collector: &Collector,
    identity: Option<Identity>,
) -> Result<InventoryClient<Channel>, tonic::transport::Error> {
    let ca = std::fs::read_to_string(collector.ca_pem()).unwrap();
    let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca));
    if let Some(identity) = identity {
        tls = tls.identity(identity);
    }
    let channel = Endpoint::from_shared(collector.url.clone())
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await?;
    Ok(InventoryClient::new(channel).max_encoding_message_size(64 * 1024 * 1024))
}

/// A minimal valid report claiming `hostname`.
pub fn report(report_id: &str, hostname: &str) -> v1::ReportRequest {
    v1::ReportRequest {
        report_id: report_id.to_string(),
        collected_at_unix_ms: 1,
        agent_version: "test".into(),
        host: Some(v1::HostInventory {
            hostname: hostname.to_string(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The host asset reported by `agent_id`.
pub fn host_of<'a>(assets: &'a [serde_json::Value], agent_id: &str) -> &'a serde_json::Value {
    assets
        .iter()
        .find(|a| a["kind"] == "host" && a["agent_id"] == agent_id)
        .unwrap_or_else(|| panic!("no host asset for {agent_id} in {assets:#?}"))
}

/// A directory of the agent's authentication fixtures (`agent/tests/fixtures/auth/NAME`).
pub fn auth_fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../agent/tests/fixtures/auth")
        .join(name)
}

/// The sample system register the quickstart imports (`deploy/examples/system-register.csv`).
pub fn sample_register() -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/examples/system-register.csv"),
    )
    .unwrap()
}

/// The open findings of `rule` for `system` in a `findings --format json` listing.
pub fn open_of<'a>(
    findings: &'a [serde_json::Value],
    rule: &str,
    system: &str,
) -> Vec<&'a serde_json::Value> {
    findings
        .iter()
        .filter(|f| f["rule"] == rule && f["system_id"] == system && f["state"] == "open")
        .collect()
}

/// Copies a fixture tree (or a state directory) so a test can change it; `to` exists.
pub fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        let kind = entry.file_type().unwrap();
        if kind.is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_tree(&entry.path(), &target);
        } else if kind.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(entry.path()).unwrap(), &target).unwrap();
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}
