//! Wall time and peak memory of one full live inventory (`inventory::collect("/")` plus its
//! JSON), the work behind `tillsyn-agent inventory --json`.
//!
//! Each sample runs in a fresh child process (this binary re-executed with `--child`), so the
//! peak RSS (`VmHWM` in `/proc/self/status`) is that of one inventory, not of the samples
//! before it. Two modes: files only (`TILLSYN_PROBE_PORTS=` probes nothing) and with live probes
//! of two peers this bench starts on loopback (a rustls TLS server and a plaintext HTTP
//! responder); other services on the machine are never probed. A third mode is the full Windows
//! inventory of an offline fixture host (`tests/fixtures/windows/duo-enforced`: registry
//! exports, sshd_config, recorded BitLocker), reported as a ratio to the Linux files-only run.
//!
//! Run: `cargo bench -p tillsyn-agent --bench inventory_live` (optimised), or
//! `cargo test -p tillsyn-agent --bench inventory_live` (debug build, cheaper to compile).

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SAMPLES: usize = 5;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::args().any(|a| a == "--child") {
        return child();
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let (tls_port, http_port) = runtime.block_on(async {
        Ok::<_, Box<dyn std::error::Error>>((tls_peer().await?, http_peer().await?))
    })?;
    let this = std::env::current_exe()?;
    let windows = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/windows/duo-enforced");
    let mut baseline_ms = 0;
    for (mode, ports, root) in [
        ("files only", String::new(), Path::new("/")),
        (
            "files + 2 live probes",
            format!("{tls_port},{http_port}"),
            Path::new("/"),
        ),
        (
            "Windows offline fixture (registry exports)",
            String::new(),
            windows.as_path(),
        ),
    ] {
        let mut samples = Vec::new();
        for _ in 0..SAMPLES {
            let output = Command::new(&this)
                .arg("--child")
                .env("TILLSYN_PROBE_PORTS", &ports)
                .env("TILLSYN_BENCH_ROOT", root)
                .output()?;
            let text = String::from_utf8_lossy(&output.stdout).into_owned();
            samples.push(parse_sample(&text).ok_or_else(|| format!("child printed {text:?}"))?);
        }
        samples.sort_by_key(|s| s.0);
        let (median_ms, _, observations, bytes) = samples[SAMPLES / 2];
        let peak_kib = samples.iter().map(|s| s.1).max().unwrap_or(0);
        if baseline_ms == 0 {
            baseline_ms = median_ms.max(1);
        }
        // Precision loss is irrelevant for a ratio of two millisecond counts.
        #[allow(clippy::cast_precision_loss)]
        let ratio = median_ms as f64 / baseline_ms as f64;
        println!(
            "{mode}: median {median_ms} ms ({ratio:.2}x files only; min {} ms, max {} ms) over {SAMPLES} runs; peak RSS {peak_kib} KiB; {observations} observations, {bytes} bytes of JSON",
            samples[0].0,
            samples[SAMPLES - 1].0
        );
    }
    Ok(())
}

fn child() -> Result<(), Box<dyn std::error::Error>> {
    let started = Instant::now();
    let root = std::env::var_os("TILLSYN_BENCH_ROOT").unwrap_or_else(|| "/".into());
    let inventory = tillsyn_agent::inventory::collect(Path::new(&root));
    let json = serde_json::to_string_pretty(&inventory)?;
    let elapsed = started.elapsed().as_millis();
    let status = std::fs::read_to_string("/proc/self/status")?;
    let hwm = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap_or(0);
    println!(
        "{elapsed} {hwm} {} {}",
        inventory.observations.len(),
        json.len()
    );
    Ok(())
}

fn parse_sample(text: &str) -> Option<(u128, u64, usize, usize)> {
    let mut fields = text.split_whitespace();
    Some((
        fields.next()?.parse().ok()?,
        fields.next()?.parse().ok()?,
        fields.next()?.parse().ok()?,
        fields.next()?.parse().ok()?,
    ))
}

async fn tls_peer() -> Result<u16, Box<dyn std::error::Error>> {
    let key = rcgen::KeyPair::generate()?;
    let cert = rcgen::CertificateParams::new(vec!["bench.test".into()])?.self_signed(&key)?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(
        vec![cert.der().clone()],
        rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
    )?;
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
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
    Ok(port)
}

async fn http_peer() -> Result<u16, Box<dyn std::error::Error>> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buffer = [0u8; 1024];
                if matches!(socket.read(&mut buffer).await, Ok(n) if n > 0) {
                    let _ = socket
                        .write_all(b"HTTP/1.0 200 OK\r\nServer: bench\r\n\r\n")
                        .await;
                }
            });
        }
    });
    Ok(port)
}
