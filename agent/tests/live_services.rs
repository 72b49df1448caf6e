//! Live test of listener discovery and the TLS/banner probes: real peers on 127.0.0.1 (Debian's
//! OpenSSH `sshd`, a rustls TLS server with an rcgen certificate, Python's `http.server`), then
//! the real `tillsyn-agent inventory --json` on the live root.
//!
//! Needs `/usr/sbin/sshd`, `ssh-keygen` and `python3` (`scripts/deps/services.sh` installs them)
//! and root (sshd's privilege separation). A missing peer fails the test; it never skips.
//! `TILLSYN_PROBE_PORTS` keeps the agent's probes on this test's ports only, so other services
//! on the machine are not touched.

// In tests an unwrap that fails is the failing assertion.
#![allow(clippy::unwrap_used, clippy::expect_used)]

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

/// Waits until `peer` accepts connections on 127.0.0.1:`port`.
fn wait_ready(peer: &mut Peer, port: u16) {
    wait_ready_at(peer, &format!("127.0.0.1:{port}"));
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
    let (config, key, port) = (
        config.to_str().unwrap(),
        key.to_str().unwrap(),
        port.to_string(),
    );
    let args = ["-D", "-e", "-f", config, "-p", &port, "-h", key];
    let mut peer = spawn("sshd", SSHD, &args, dir);
    wait_ready_at(&mut peer, &format!("127.0.0.1:{port}"));
    peer
}

fn start_http(dir: &Path, port: u16) -> Peer {
    let port_arg = port.to_string();
    let args = ["-m", "http.server", "--bind", "127.0.0.1", &port_arg];
    let mut peer = spawn("python3 http.server", "python3", &args, dir);
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

/// The real agent's `inventory --json` of this host, its probes kept to `ports`.
async fn live_inventory(ports: String) -> Value {
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
    serde_json::from_slice(&output.stdout).unwrap()
}

fn service(inventory: &Value, port: u16) -> &Value {
    service_at(inventory, &format!("127.0.0.1:{port}"))
}

fn service_at<'a>(inventory: &'a Value, address: &str) -> &'a Value {
    let name = format!("tcp {address}");
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
    let inv = live_inventory(ports).await;

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

/// Starts `program args` in `dir` as a child that is killed with the test.
fn spawn(name: &'static str, program: &str, args: &[&str], dir: &Path) -> Peer {
    require(program);
    let child = Command::new(program)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {name}: {e}"));
    Peer { name, child }
}

/// Waits until `peer` accepts connections on `address`; fails with the peer's stderr otherwise.
fn wait_ready_at(peer: &mut Peer, address: &str) {
    for _ in 0..400 {
        if TcpStream::connect(address).is_ok() {
            return;
        }
        if let Ok(Some(status)) = peer.child.try_wait() {
            let mut stderr = String::new();
            if let Some(mut pipe) = peer.child.stderr.take() {
                use std::io::Read;
                let _ = pipe.read_to_string(&mut stderr);
            }
            panic!("{} exited with {status}: {stderr}", peer.name);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{} did not listen on {address}", peer.name);
}

/// Debian's redis-server on `host`:6379, without persistence, with `password` if given.
fn start_redis(dir: &Path, host: &str, password: Option<&str>) -> Peer {
    let mut args = vec![
        "--bind",
        host,
        "--port",
        "6379",
        "--save",
        "",
        "--appendonly",
        "no",
    ];
    // Protected mode refuses non-loopback-looking clients without a password; keep it out of
    // the way so the password alone decides.
    args.extend(["--protected-mode", "no"]);
    if let Some(password) = password {
        args.extend(["--requirepass", password]);
    }
    let mut peer = spawn("redis-server", "redis-server", &args, dir);
    wait_ready_at(&mut peer, &format!("{host}:6379"));
    peer
}

/// Debian's mosquitto on `host`:1883, with or without anonymous access.
fn start_mosquitto(dir: &Path, host: &str, anonymous: bool) -> Peer {
    let config = dir.join(format!("mosquitto-{host}.conf"));
    std::fs::write(
        &config,
        format!("listener 1883 {host}\nallow_anonymous {anonymous}\npersistence false\n"),
    )
    .unwrap();
    let mut peer = spawn(
        "mosquitto",
        "/usr/sbin/mosquitto",
        &["-c", config.to_str().unwrap()],
        dir,
    );
    wait_ready_at(&mut peer, &format!("{host}:1883"));
    peer
}

/// Debian's PostgreSQL server in a fresh cluster owned by `postgres` (it refuses to run as
/// root), TLS on with an rcgen certificate, listening on `host`:5432 only.
fn start_postgres(dir: &Path, host: &str) -> Peer {
    let bin = std::fs::read_dir("/usr/lib/postgresql")
        .ok()
        .and_then(|versions| {
            versions
                .flatten()
                .map(|v| v.path().join("bin"))
                .find(|b| b.join("postgres").exists())
        })
        .unwrap_or_else(|| panic!("PostgreSQL server missing: run scripts/deps/services.sh"));
    let data = dir.join("pgdata");
    std::fs::create_dir(&data).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["pg.tillsyn.test".into()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let owner = Command::new("id")
        .args(["-u", "postgres"])
        .output()
        .unwrap();
    let uid: u32 = String::from_utf8_lossy(&owner.stdout)
        .trim()
        .parse()
        .expect("a postgres user");
    std::os::unix::fs::chown(dir, Some(uid), None).unwrap();
    std::os::unix::fs::chown(&data, Some(uid), None).unwrap();
    let run_as = |program: &Path, args: &[&str]| {
        let status = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(program)
            .args(args)
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "{} {args:?} failed", program.display());
    };
    run_as(
        &bin.join("initdb"),
        &[
            "-D",
            data.to_str().unwrap(),
            "-A",
            "reject",
            "-U",
            "tillsyn",
        ],
    );
    std::fs::write(data.join("server.crt"), cert.pem()).unwrap();
    std::fs::write(data.join("server.key"), key.serialize_pem()).unwrap();
    for file in ["server.crt", "server.key"] {
        let path = data.join(file);
        std::os::unix::fs::chown(&path, Some(uid), None).unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
    }
    let postgres = bin.join("postgres");
    let mut peer = spawn(
        "postgres",
        "runuser",
        &[
            "-u",
            "postgres",
            "--",
            postgres.to_str().unwrap(),
            "-D",
            data.to_str().unwrap(),
            "-k",
            dir.to_str().unwrap(),
            "-h",
            host,
            "-p",
            "5432",
            "-c",
            "ssl=on",
        ],
        dir,
    );
    wait_ready_at(&mut peer, &format!("{host}:5432"));
    peer
}

/// Client-speaks-first services on their registered ports, each on its own loopback address so
/// a packaged daemon on 127.0.0.1 cannot collide: Debian's redis-server with and without a
/// password, PostgreSQL with TLS on, and mosquitto with and without anonymous access.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_probes_name_redis_postgresql_and_mqtt() {
    let dir = tempfile::tempdir().unwrap();
    let open_redis = "127.0.66.1";
    let locked_redis = "127.0.66.2";
    let pg = "127.0.66.3";
    let open_mqtt = "127.0.66.4";
    let locked_mqtt = "127.0.66.5";
    let peers = vec![
        start_redis(dir.path(), open_redis, None),
        start_redis(dir.path(), locked_redis, Some("s3cret-tillsyn")),
        start_mosquitto(dir.path(), open_mqtt, true),
        start_mosquitto(dir.path(), locked_mqtt, false),
    ];
    let _postgres = start_postgres(dir.path(), pg);
    let _peers = peers;

    let inv = live_inventory("6379,5432,1883".to_string()).await;
    let verdict = |address: String| service_at(&inv, &address)["value"].clone();

    let redis = verdict(format!("{open_redis}:6379"));
    assert_eq!(
        (&redis["protocol"], &redis["encryption"]),
        (&"redis".into(), &"plaintext".into()),
        "{redis}"
    );
    assert_eq!(redis["anonymous_access"], true, "{redis}");
    assert_eq!(redis["banner"], "+PONG", "{redis}");
    let redis = verdict(format!("{locked_redis}:6379"));
    assert_eq!(redis["protocol"], "redis", "{redis}");
    assert_eq!(redis["anonymous_access"], false, "{redis}");

    let postgres = verdict(format!("{pg}:5432"));
    assert_eq!(
        (&postgres["protocol"], &postgres["encryption"]),
        (&"postgresql".into(), &"plaintext".into()),
        "{postgres}"
    );
    assert_eq!(postgres["starttls"], true, "{postgres}");

    let mqtt = verdict(format!("{open_mqtt}:1883"));
    assert_eq!(
        (&mqtt["protocol"], &mqtt["encryption"]),
        (&"mqtt".into(), &"plaintext".into()),
        "{mqtt}"
    );
    assert_eq!(mqtt["anonymous_access"], true, "{mqtt}");
    let mqtt = verdict(format!("{locked_mqtt}:1883"));
    assert_eq!(mqtt["anonymous_access"], false, "{mqtt}");
}

/// A fresh rcgen certificate (ECDSA P-256, which xrdp's OpenSSL loads) as PEM files in `dir`.
fn xrdp_certificate(dir: &Path, name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec![name.into()]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    let cert = params.self_signed(&key).unwrap();
    let (cert_path, key_path) = (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    );
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    (cert_path, key_path)
}

/// Debian's xrdp 0.9 on `host:port` with `security_layer` (`rdp`, `tls`, `negotiate`) and the
/// test's certificate, in the foreground, logging to the console only.
fn start_xrdp(dir: &Path, host: &str, port: u16, security_layer: &str, cert_name: &str) -> Peer {
    const XRDP: &str = "/usr/sbin/xrdp";
    let (cert, key) = xrdp_certificate(dir, cert_name);
    let config = dir.join(format!("xrdp-{host}-{port}.ini"));
    std::fs::write(
        &config,
        format!(
            "[Globals]\nini_version=1\nfork=false\nport=tcp://{host}:{port}\n\
             security_layer={security_layer}\ncrypt_level=high\ncertificate={}\nkey_file={}\n\
             ssl_protocols=TLSv1.2, TLSv1.3\n\
             [Logging]\nLogFile={}\nLogLevel=INFO\nEnableSyslog=false\nEnableConsole=false\n",
            cert.display(),
            key.display(),
            dir.join(format!("xrdp-{host}-{port}.log")).display(),
        ),
    )
    .unwrap();
    let config = config.to_string_lossy().into_owned();
    let mut peer = spawn("xrdp", XRDP, &["--nodaemon", "--config", &config], dir);
    wait_ready_at(&mut peer, &format!("{host}:{port}"));
    peer
}

/// The RDP probe against Debian's xrdp with each `security_layer`: `rdp` selects standard RDP
/// security (plaintext), `tls` selects TLS and the handshake that follows on the same
/// connection shows the test's certificate, `negotiate` is what xrdp picks from SSL | HYBRID |
/// HYBRID_EX (TLS: xrdp has no CredSSP).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rdp_probe_reads_xrdp_security_layers() {
    use tillsyn_agent::inventory::rdp;
    let dir = tempfile::tempdir().unwrap();
    let wait = Duration::from_secs(2);
    for (layer, expected, security) in [
        ("rdp", "plaintext", "rdp_standard"),
        ("tls", "encrypted", "tls"),
        ("negotiate", "encrypted", "tls"),
    ] {
        let port = free_port();
        let name = format!("xrdp-{layer}.test");
        let _xrdp = start_xrdp(dir.path(), "127.0.0.1", port, layer, &name);
        let target: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let verdict = rdp::probe(target, wait)
            .await
            .unwrap_or_else(|| panic!("{layer}: xrdp's answer is not an X.224 Confirm"));
        let value = serde_json::to_value(&verdict).unwrap();
        assert_eq!(value["protocol"], "rdp", "{layer}: {value}");
        assert_eq!(value["encryption"], expected, "{layer}: {value}");
        assert_eq!(
            value["rdp"]["security_protocol"], security,
            "{layer}: {value}"
        );
        assert_eq!(value["rdp"]["nla"], false, "{layer}: {value}");
        if security == "tls" {
            assert_eq!(
                value["tls"]["certificate"]["subject"],
                format!("CN={name}"),
                "{layer}: {value}"
            );
            assert!(
                value["tls"]["version"]
                    .as_str()
                    .unwrap()
                    .starts_with("TLSv1."),
                "{value}"
            );
        } else {
            assert!(value.get("tls").is_none(), "{value}");
        }
    }
}

/// The agent's own probes find xrdp on the registered port 3389 (two instances, each on its
/// own loopback address): standard RDP security is plaintext, TLS is encrypted with the
/// certificate the TLS step read on the negotiated connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_inventory_probes_rdp_on_3389() {
    let dir = tempfile::tempdir().unwrap();
    let (legacy, tls) = ("127.0.77.1", "127.0.77.2");
    let _legacy = start_xrdp(dir.path(), legacy, 3389, "rdp", "legacy.test");
    let _tls = start_xrdp(dir.path(), tls, 3389, "tls", "rdp-tls.test");
    let inv = live_inventory("3389".to_string()).await;
    let legacy = &service_at(&inv, &format!("{legacy}:3389"))["value"];
    assert_eq!(
        (&legacy["protocol"], &legacy["encryption"]),
        (&"rdp".into(), &"plaintext".into()),
        "{legacy}"
    );
    assert_eq!(legacy["rdp"]["selected_protocol"], 0, "{legacy}");
    let tls = &service_at(&inv, &format!("{tls}:3389"))["value"];
    assert_eq!(
        (&tls["protocol"], &tls["encryption"]),
        (&"rdp".into(), &"encrypted".into()),
        "{tls}"
    );
    assert_eq!(tls["tls"]["certificate"]["subject"], "CN=rdp-tls.test");
}
