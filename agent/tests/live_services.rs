//! Live test of listener discovery and the TLS/banner probes: real peers on 127.0.0.1 (Debian's
//! OpenSSH `sshd`, a rustls TLS server with an rcgen certificate, Python's `http.server`), then
//! the real `tillsyn-agent inventory --json` on the live root.
//!
//! Needs `/usr/sbin/sshd`, `ssh-keygen` and `python3` (`scripts/deps/services.sh` installs them)
//! and root (sshd's privilege separation). A missing peer fails the test; it never skips.
//! `TILLSYN_PROBE_PORTS` keeps the agent's probes on this test's ports only, so other services
//! on the machine are not touched.

// In tests an unwrap that fails is the failing assertion.
#![allow(clippy::unwrap_used)]

use std::net::{SocketAddr, TcpListener as StdListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::io::AsyncWriteExt;

const SSHD: &str = "/usr/sbin/sshd";

/// Kills a peer process when the test ends, however it ends.
struct Peer {
    name: &'static str,
    child: Child,
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn require(binary: &str) {
    let found = if binary.starts_with('/') {
        Path::new(binary).exists()
    } else {
        Command::new("sh")
            .args(["-c", &format!("command -v {binary}")])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    assert!(
        found,
        "{binary} is missing: run scripts/deps/services.sh (it installs the live-test peers)"
    );
}

/// A free loopback port. The port is released before the peer binds it; the gap is short
/// and the peer's own bind error would fail the test loudly, not silently.
fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until `peer` accepts connections on `port`; fails with the peer's stderr otherwise.
fn wait_ready(peer: &mut Peer, port: u16) {
    for _ in 0..200 {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Ok(Some(status)) = peer.child.try_wait() {
            let mut stderr = String::new();
            if let Some(mut pipe) = peer.child.stderr.take() {
                use std::io::Read;
                let _ = pipe.read_to_string(&mut stderr);
            }
            panic!(
                "{} exited with {status} before listening: {stderr}",
                peer.name
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{} did not listen on 127.0.0.1:{port}", peer.name);
}

fn start_sshd(dir: &Path, port: u16) -> Peer {
    require(SSHD);
    require("ssh-keygen");
    let key = dir.join("ssh_host_ed25519_key");
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .status()
        .expect("run ssh-keygen");
    assert!(status.success(), "ssh-keygen failed");
    let config = dir.join("sshd_config");
    std::fs::write(
        &config,
        format!(
            "ListenAddress 127.0.0.1\nHostKey {}\nPidFile {}\nUsePAM no\nStrictModes no\n",
            key.display(),
            dir.join("sshd.pid").display()
        ),
    )
    .unwrap();
    // sshd refuses to start without its privilege separation directory.
    std::fs::create_dir_all("/run/sshd").expect("create /run/sshd (the test runs as root)");
    let child = Command::new(SSHD)
        .args(["-D", "-e", "-f"])
        .arg(&config)
        .args(["-p", &port.to_string(), "-h"])
        .arg(&key)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start sshd");
    let mut peer = Peer {
        name: "sshd",
        child,
    };
    wait_ready(&mut peer, port);
    peer
}

fn start_http(dir: &Path, port: u16) -> Peer {
    require("python3");
    let child = Command::new("python3")
        .args([
            "-m",
            "http.server",
            "--bind",
            "127.0.0.1",
            &port.to_string(),
        ])
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start python3 -m http.server");
    let mut peer = Peer {
        name: "python3 http.server",
        child,
    };
    wait_ready(&mut peer, port);
    peer
}

/// A rustls server (ring provider, as everywhere in the workspace) with a fresh rcgen
/// certificate; it completes handshakes and then closes.
async fn start_tls() -> SocketAddr {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["tillsyn-live.test".into()]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "tillsyn-live.test");
    let cert = params.self_signed(&key).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(mut tls) = acceptor.accept(socket).await {
                    let _ = tls.shutdown().await;
                }
            });
        }
    });
    address
}

fn service(inventory: &Value, port: u16) -> &Value {
    let name = format!("tcp 127.0.0.1:{port}");
    inventory["observations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["category"] == "service" && o["name"] == name)
        .unwrap_or_else(|| panic!("no service observation for {name}"))
}

fn listener(inventory: &Value, port: u16) -> &Value {
    let name = format!("tcp 127.0.0.1:{port}");
    inventory["observations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["category"] == "listener" && o["name"] == name)
        .unwrap_or_else(|| panic!("no listener observation for {name}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_probes_name_ssh_tls_and_plaintext_http() {
    let dir = tempfile::tempdir().unwrap();
    let (ssh_port, http_port) = (free_port(), free_port());
    let _sshd = start_sshd(dir.path(), ssh_port);
    let _http = start_http(dir.path(), http_port);
    let tls_port = start_tls().await.port();

    let ports = format!("{ssh_port},{tls_port},{http_port}");
    let output = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_tillsyn-agent"))
            .args(["inventory", "--json"])
            .env("TILLSYN_PROBE_PORTS", ports)
            .output()
            .expect("run tillsyn-agent")
    })
    .await
    .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let inv: Value = serde_json::from_slice(&output.stdout).unwrap();

    let ssh = &service(&inv, ssh_port)["value"];
    assert_eq!(
        (&ssh["encryption"], &ssh["protocol"]),
        (&"encrypted".into(), &"ssh".into()),
        "{ssh}"
    );
    assert!(
        ssh["banner"]
            .as_str()
            .unwrap()
            .starts_with("SSH-2.0-OpenSSH"),
        "{ssh}"
    );

    let tls = &service(&inv, tls_port)["value"];
    assert_eq!(
        (&tls["encryption"], &tls["protocol"]),
        (&"encrypted".into(), &"tls".into()),
        "{tls}"
    );
    assert_eq!(tls["tls"]["version"], "TLSv1.3");
    assert!(
        tls["tls"]["cipher"].as_str().unwrap().starts_with("TLS13_"),
        "{tls}"
    );
    assert_eq!(tls["tls"]["certificate"]["subject"], "CN=tillsyn-live.test");
    assert_eq!(tls["tls"]["certificate"]["self_signed"], true);

    let http = &service(&inv, http_port)["value"];
    assert_eq!(
        (&http["encryption"], &http["protocol"]),
        (&"plaintext".into(), &"http".into()),
        "{http}"
    );
    assert!(
        http["banner"].as_str().unwrap().contains("SimpleHTTP"),
        "{http}"
    );

    // Socket inodes map to the peers' processes on the live root.
    let owners = &listener(&inv, http_port)["value"]["processes"];
    assert!(
        owners[0]["comm"].as_str().unwrap().starts_with("python"),
        "{owners}"
    );
    assert_eq!(
        listener(&inv, ssh_port)["value"]["processes"][0]["comm"],
        "sshd"
    );
    assert_eq!(
        listener(&inv, tls_port)["value"]["processes"][0]["comm"]
            .as_str()
            .map(|c| !c.is_empty()),
        Some(true)
    );
}
