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
    for crate_dir in ["agent", "collector", "proto", "deploy"] {
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
        let fresh = ["tillsyn-collector", "tillsyn-agent"].iter().all(|b| {
            std::fs::metadata(bin_dir().join(b))
                .and_then(|m| m.modified())
                .is_ok_and(|built| built >= newest_source())
        });
        if fresh {
            return;
        }
        let release = bin_dir().ends_with("release");
        let mut cmd = Command::new(env!("CARGO"));
        cmd.args(["build", "-p", "tillsyn-collector", "-p", "tillsyn-agent", "--bins"]);
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
    child: Child,
}

impl Collector {
    /// `init` + `serve --listen 127.0.0.1:0`, waiting for the listening line.
    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        ok("tillsyn-collector", &["--dir", dir.path().to_str().unwrap(), "init"]);
        Self::serve(dir)
    }

    fn serve(dir: tempfile::TempDir) -> Self {
        let mut child = Command::new(bin("tillsyn-collector"))
            .args(["--dir", dir.path().to_str().unwrap(), "serve", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_string();
        Self { url: format!("https://{addr}"), dir, child }
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
        let out = ok("tillsyn-collector", &["--dir", self.path(), "assets", "--format", "json"]);
        serde_json::from_str::<serde_json::Value>(&out).unwrap().as_array().unwrap().clone()
    }

    /// `findings --format json` with extra arguments.
    pub fn findings(&self, extra: &[&str]) -> Vec<serde_json::Value> {
        let mut args = vec!["--dir", self.path(), "findings", "--format", "json"];
        args.extend_from_slice(extra);
        let out = ok("tillsyn-collector", &args);
        serde_json::from_str::<serde_json::Value>(&out).unwrap().as_array().unwrap().clone()
    }

    /// Writes `text` to a file in the collector dir and imports it.
    pub fn import(&self, name: &str, text: &str) -> Output {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        run("tillsyn-collector", &["--dir", self.path(), "catalog", "import", path.to_str().unwrap()])
    }

    pub fn agents(&self) -> Vec<serde_json::Value> {
        let out = ok("tillsyn-collector", &["--dir", self.path(), "agent", "list", "--format", "json"]);
        serde_json::from_str::<serde_json::Value>(&out).unwrap().as_array().unwrap().clone()
    }

    /// Enrolls a new agent in a fresh directory.
    pub fn enroll(&self) -> Agent {
        self.enroll_with(&[])
    }

    /// Enrolls a new agent with extra `enroll` arguments (e.g. `--label site=ward4`).
    pub fn enroll_with(&self, extra: &[&str]) -> Agent {
        let token = self.token(&[]);
        let agent = Agent { dir: tempfile::tempdir().unwrap() };
        let out = agent.enroll_args(self, &token, extra);
        assert!(out.status.success(), "enroll failed: {}", String::from_utf8_lossy(&out.stderr));
        agent
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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
            "--dir", self.path(), "enroll", "--collector", &collector.url, "--token", token, "--ca", &ca,
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
