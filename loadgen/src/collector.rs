//! A `tillsyn-collector serve` process started by the simulator (`--serve DIR`), so it can
//! read the collector's `/proc` figures and restart it for the reconnect storm. The state
//! directory is initialised on first use; the collector's log goes to `DIR/loadgen-serve.log`.
//! With a database URL, every command it runs gets it as `TILLSYN_DATABASE_URL` (which wins
//! over `collector.toml`), so the same state directory serves SQLite or PostgreSQL.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Errors running the collector.
#[derive(Debug, thiserror::Error)]
pub enum CollectorError {
    /// The binary could not be started.
    #[error("starting {}: {source}", program.display())]
    Spawn {
        /// The collector binary.
        program: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A command ended with an error.
    #[error("{command} failed: {stderr}")]
    Failed {
        /// The command line.
        command: String,
        /// What it printed on stderr.
        stderr: String,
    },
    /// `serve` did not print its listening line.
    #[error("{} serve printed {line:?} instead of \"listening on ADDR\"; see {}", program.display(), log.display())]
    NotListening {
        /// The collector binary.
        program: PathBuf,
        /// What it printed first.
        line: String,
        /// Its log file.
        log: PathBuf,
    },
}

/// A collector process serving a state directory.
#[derive(Debug)]
pub struct ManagedCollector {
    program: PathBuf,
    dir: PathBuf,
    /// Where it listens, `host:port`; kept across restarts.
    listen: String,
    child: Option<Child>,
    /// The largest `VmHWM` seen of processes that were stopped, bytes.
    stopped_peak_rss: u64,
    /// `TILLSYN_DATABASE_URL` for every command; `None`: the state directory's SQLite file.
    database: Option<String>,
}

impl ManagedCollector {
    /// Initialises `dir` when it has no `collector.toml`, then serves it on `listen`
    /// (`127.0.0.1:0` picks a port), storing into `database` when given.
    pub fn start(
        program: &Path,
        dir: &Path,
        listen: &str,
        database: Option<&str>,
    ) -> Result<Self, CollectorError> {
        let mut collector = Self {
            program: program.to_path_buf(),
            dir: dir.to_path_buf(),
            listen: listen.to_string(),
            child: None,
            stopped_peak_rss: 0,
            database: database.map(str::to_string),
        };
        if !dir.join("collector.toml").exists() {
            collector.run(&["init"])?;
        }
        collector.serve()?;
        Ok(collector)
    }

    fn serve(&mut self) -> Result<(), CollectorError> {
        let log_path = self.dir.join("loadgen-serve.log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|source| CollectorError::Spawn {
                program: log_path.clone(),
                source,
            })?;
        let mut child = self
            .command()
            .args(["serve", "--listen", &self.listen])
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .map_err(|source| CollectorError::Spawn {
                program: self.program.clone(),
                source,
            })?;
        let Some(stdout) = child.stdout.take() else {
            return Err(CollectorError::NotListening {
                program: self.program.clone(),
                line: String::new(),
                log: log_path,
            });
        };
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        let _ = reader.read_line(&mut line);
        let Some(addr) = line
            .trim()
            .strip_prefix("listening on ")
            .map(str::to_string)
        else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(CollectorError::NotListening {
                program: self.program.clone(),
                line,
                log: log_path,
            });
        };
        // Keep reading so a chatty stdout never blocks the collector on a full pipe.
        std::thread::spawn(move || {
            let mut sink = String::new();
            while reader.read_line(&mut sink).is_ok_and(|n| n > 0) {
                sink.clear();
            }
        });
        self.listen = addr;
        self.child = Some(child);
        Ok(())
    }

    /// `https://host:port`.
    pub fn url(&self) -> String {
        format!("https://{}", self.listen)
    }

    /// The collector's CA certificate, PEM file.
    pub fn ca_path(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// The running process's id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// `token create --uses N --ttl 1d`: one token the whole fleet enrolls with.
    pub fn token(&self, uses: u32) -> Result<String, CollectorError> {
        let out = self.run(&[
            "token",
            "create",
            "--uses",
            &uses.to_string(),
            "--ttl",
            "1d",
        ])?;
        Ok(out.lines().last().unwrap_or_default().trim().to_string())
    }

    /// The largest peak RSS of this collector's processes so far, bytes.
    pub fn peak_rss(&self) -> u64 {
        let running = self
            .pid()
            .and_then(|pid| crate::procfs::usage(pid).ok())
            .map_or(0, |u| u.peak_rss_bytes);
        running.max(self.stopped_peak_rss)
    }

    /// Stops the process: SIGINT (the collector's graceful shutdown), SIGKILL after 10 s.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Ok(usage) = crate::procfs::usage(child.id()) {
            self.stopped_peak_rss = self.stopped_peak_rss.max(usage.peak_rss_bytes);
        }
        let _ = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status();
        for _ in 0..100 {
            if matches!(child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Stops and serves again on the same address.
    pub fn restart(&mut self) -> Result<(), CollectorError> {
        self.stop();
        let mut last = None;
        // The port is free once the process is gone; retry briefly in case it is not yet.
        for _ in 0..50 {
            match self.serve() {
                Ok(()) => return Ok(()),
                Err(error) => last = Some(error),
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(last.unwrap_or_else(|| CollectorError::Failed {
            command: "serve".into(),
            stderr: "did not start".into(),
        }))
    }
}

impl Drop for ManagedCollector {
    fn drop(&mut self) {
        self.stop();
    }
}

impl ManagedCollector {
    /// `PROGRAM --dir DIR`, with the database URL in the environment when there is one.
    fn command(&self) -> Command {
        let mut command = Command::new(&self.program);
        command.arg("--dir").arg(&self.dir);
        if let Some(url) = &self.database {
            command.env("TILLSYN_DATABASE_URL", url);
        }
        command
    }

    /// Runs a command to its end; its stdout.
    fn run(&self, args: &[&str]) -> Result<String, CollectorError> {
        let out = self
            .command()
            .args(args)
            .output()
            .map_err(|source| CollectorError::Spawn {
                program: self.program.clone(),
                source,
            })?;
        if !out.status.success() {
            return Err(CollectorError::Failed {
                command: format!(
                    "{} --dir {} {}",
                    self.program.display(),
                    self.dir.display(),
                    args.join(" ")
                ),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}
