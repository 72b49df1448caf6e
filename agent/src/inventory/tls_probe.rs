//! Live probes of this host's own TCP listeners: does each speak TLS (and with which version,
//! cipher and certificate), SSH, or a plaintext protocol?
//!
//! Order per listener, each step on a fresh connection with its own timeout:
//! 1. Connect and wait [`GREETING_WAIT`] for the server to speak first (SSH, FTP, SMTP, POP3,
//!    IMAP, Telnet, MySQL, VNC; named in `banner`). A `220` gets one `EHLO` to tell SMTP (and
//!    its STARTTLS) from FTP.
//! 2. Silent services on the registered port of a client-speaks-first protocol (PostgreSQL
//!    5432, MQTT 1883, Redis 6379) get that protocol's smallest self-identifying request
//!    ([`client_first`](super::client_first)) first, so the service never logs a TLS
//!    ClientHello as a protocol error; if it does not answer as that protocol, the next steps
//!    follow. RDP (3389) is one of them: an X.224 negotiation ([`rdp`](super::rdp)), then TLS
//!    on the same connection when the server selects it.
//! 3. Other silent servers get a TLS handshake with a verifier that accepts any certificate but
//!    keeps it. A handshake that ends in a TLS alert, or after the certificate arrived, still
//!    proves TLS (e.g. a server demanding a client certificate or an old protocol version).
//! 4. Otherwise one `HEAD / HTTP/1.0`, the only request sent to an unknown service (Redis is
//!    recognised on any port by its RESP error answer).
//!
//! Safety: targets are loopback (`127.0.0.1`, `::1`) for wildcard binds and otherwise the
//! address the socket is bound to, which `/proc/net` proved is this host's own; nothing else is
//! ever connected to. Reads are bounded to [`MAX_READ`] bytes, every step has a timeout, and at
//! most [`CONCURRENCY`] probes run at once. This module only runs on the live root.
//!
//! `TILLSYN_PROBE_PORTS=22,443` limits the probes to those ports, for hosts with services too
//! fragile to be touched (and for tests that must not touch other services on the machine);
//! listeners on other ports stay unprobed and count as `unknown`.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

use crate::tls_facts::RecordingClient;
pub use crate::tls_facts::{CertificateFacts, TlsFacts, parse_certificate};

use super::banner::{self, EhloReply, Greeting};
use super::client_first;
use super::listeners::{Listener, Transport, is_loopback};
use super::rdp::RdpFacts;
use super::{Evidence, FactError, Observation};

const COLLECTOR: &str = "tls_probe";
/// Connect timeout; loopback answers at once, so this only matters for a stuck backlog.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long to wait for a server that speaks first. Greeting servers (SSH, SMTP, FTP) answer
/// on loopback within milliseconds; 400 ms keeps a full inventory well under a second while
/// leaving room for a busy host. A server with a deliberate greet pause comes out `unknown`.
const GREETING_WAIT: Duration = Duration::from_millis(400);
/// TLS handshake and request/response timeout.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(2);
/// Upper bound on bytes read from any peer.
const MAX_READ: usize = 4096;
/// Probes at once; the machine is shared and the peers may be small.
const CONCURRENCY: usize = 8;
/// Listeners probed per run; a host with more is cut here with a [`FactError`].
const MAX_PROBED: usize = 512;

/// Whether a service's transport is encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Encryption {
    /// TLS or SSH from the first byte.
    Encrypted,
    /// A plaintext protocol (STARTTLS offers are still plaintext until the client asks).
    Plaintext,
    /// The probe could not decide.
    Unknown,
}

/// What the probe found about one listener.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceVerdict {
    /// The address connected to.
    pub target: String,
    /// Encrypted, plaintext or unknown.
    pub encryption: Encryption,
    /// `tls`, `ssh`, `http`, `smtp`, `ftp`, `telnet`, `pop3`, `imap`, `mysql`, `vnc`,
    /// `postgresql`, `mqtt`, `redis`, `rdp`, `unknown`.
    pub protocol: String,
    /// TLS details for `tls`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsFacts>,
    /// Whether the plaintext protocol offers an upgrade to TLS (SMTP, IMAP, MySQL, PostgreSQL).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub starttls: Option<bool>,
    /// Whether the service let an anonymous client in (MQTT, Redis); absent when not tested.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anonymous_access: Option<bool>,
    /// RDP's negotiated security protocol and NLA, for `rdp`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rdp: Option<RdpFacts>,
    /// The first line the server sent, escaped and cut.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub banner: String,
    /// Why the verdict is unknown, or other detail.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub note: String,
}

impl ServiceVerdict {
    pub(super) fn new(target: SocketAddr, encryption: Encryption, protocol: &str) -> Self {
        ServiceVerdict {
            target: target.to_string(),
            encryption,
            protocol: protocol.into(),
            tls: None,
            starttls: None,
            anonymous_access: None,
            rdp: None,
            banner: String::new(),
            note: String::new(),
        }
    }

    fn unknown(target: SocketAddr, note: impl Into<String>) -> Self {
        ServiceVerdict {
            note: note.into(),
            ..Self::new(target, Encryption::Unknown, "unknown")
        }
    }
}

/// Addresses to connect to for `listener`: loopback for wildcard binds, else its own address.
pub fn targets(listener: &Listener) -> Vec<SocketAddr> {
    let port = listener.port;
    let addresses: Vec<IpAddr> = match listener.address {
        IpAddr::V4(a) if a.is_unspecified() => vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
        // A dual-stack `[::]` socket also answers on 127.0.0.1, for hosts without `::1`.
        IpAddr::V6(a) if a.is_unspecified() => {
            vec![
                IpAddr::V6(Ipv6Addr::LOCALHOST),
                IpAddr::V4(Ipv4Addr::LOCALHOST),
            ]
        }
        own => vec![own],
    };
    // The safety rule, checked rather than assumed: loopback or the socket's own address.
    addresses
        .into_iter()
        .filter(|a| is_loopback(*a) || *a == listener.address)
        .map(|a| SocketAddr::new(a, port))
        .collect()
}

/// Probes every TCP listener (live root only) and pushes one `service` observation each.
/// Returns the verdicts keyed by [`Listener::key`].
pub fn collect(
    listeners: &[Listener],
    observations: &mut Vec<Observation>,
    errors: &mut Vec<FactError>,
) -> BTreeMap<String, ServiceVerdict> {
    let mut tcp: Vec<&Listener> = listeners
        .iter()
        .filter(|l| l.transport == Transport::Tcp)
        .collect();
    if tcp.len() > MAX_PROBED {
        errors.push(FactError {
            collector: COLLECTOR.into(),
            source: "/proc/net/tcp*".into(),
            error: format!(
                "{} TCP listeners; only the first {MAX_PROBED} were probed",
                tcp.len()
            ),
        });
        tcp.truncate(MAX_PROBED);
    }
    match probe_ports_from_env() {
        Ok(Some(ports)) => tcp.retain(|l| ports.contains(&l.port)),
        Ok(None) => {}
        Err(error) => {
            errors.push(FactError {
                collector: COLLECTOR.into(),
                source: PROBE_PORTS_ENV.into(),
                error,
            });
            return BTreeMap::new();
        }
    }
    // Sockets sharing an address and port (SO_REUSEPORT) are one service: probe it once.
    let mut seen = std::collections::HashSet::new();
    tcp.retain(|l| seen.insert(l.key()));
    let jobs: Vec<(String, Vec<SocketAddr>)> = tcp.iter().map(|l| (l.key(), targets(l))).collect();
    let verdicts = match run_probes(jobs) {
        Ok(verdicts) => verdicts,
        Err(e) => {
            errors.push(FactError {
                collector: COLLECTOR.into(),
                source: "tokio runtime".into(),
                error: e.to_string(),
            });
            return BTreeMap::new();
        }
    };
    for listener in tcp {
        if let Some(verdict) = verdicts.get(&listener.key()) {
            observations.push(observation(listener, verdict));
        }
    }
    verdicts
}

/// The environment variable that limits probes to some ports.
pub const PROBE_PORTS_ENV: &str = "TILLSYN_PROBE_PORTS";

fn probe_ports_from_env() -> Result<Option<Vec<u16>>, String> {
    match std::env::var(PROBE_PORTS_ENV) {
        Ok(raw) => parse_ports(&raw).map(Some),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

/// `22, 443` -> `[22, 443]`; anything else is an error and nothing is probed, because a typo
/// must not widen the set of services touched.
pub fn parse_ports(raw: &str) -> Result<Vec<u16>, String> {
    raw.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.parse::<u16>()
                .map_err(|e| format!("port {p:?}: {e}; no service was probed"))
        })
        .collect()
}

fn observation(listener: &Listener, verdict: &ServiceVerdict) -> Observation {
    let detail = match (&verdict.tls, verdict.banner.is_empty()) {
        (
            Some(TlsFacts {
                certificate: Some(cert),
                version,
                ..
            }),
            _,
        ) => {
            format!("{version} certificate subject {}", cert.subject)
        }
        (_, false) => verdict.banner.clone(),
        _ => verdict.note.clone(),
    };
    Observation {
        category: "service".into(),
        name: listener.key(),
        value: serde_json::to_value(verdict).unwrap_or_default(),
        evidence: vec![
            listener.evidence(),
            Evidence {
                source: format!("tcp://{}", verdict.target),
                line: 0,
                probe: COLLECTOR.into(),
                detail,
            },
        ],
    }
}

/// Runs the probes on a private current-thread runtime in a thread of its own: `collect()` is
/// synchronous, and `block_on` panics on a thread that already drives a runtime, which a
/// future caller outside `spawn_blocking` could be. The thread keeps that from mattering.
fn run_probes(
    jobs: Vec<(String, Vec<SocketAddr>)>,
) -> std::io::Result<BTreeMap<String, ServiceVerdict>> {
    if jobs.is_empty() {
        return Ok(BTreeMap::new());
    }
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                Ok(runtime.block_on(probe_all(jobs)))
            })
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other("the probe thread panicked")))
    })
}

/// Probes `(key, targets)` pairs, at most [`CONCURRENCY`] at once.
pub async fn probe_all(jobs: Vec<(String, Vec<SocketAddr>)>) -> BTreeMap<String, ServiceVerdict> {
    let permits = Arc::new(tokio::sync::Semaphore::new(CONCURRENCY));
    let mut set = tokio::task::JoinSet::new();
    for (key, targets) in jobs {
        let permits = Arc::clone(&permits);
        set.spawn(async move {
            // The semaphore is never closed, so acquire only fails if it were; probe anyway.
            let _permit = permits.acquire_owned().await.ok();
            (key, probe_first_reachable(&targets).await)
        });
    }
    let mut verdicts = BTreeMap::new();
    while let Some(joined) = set.join_next().await {
        if let Ok((key, verdict)) = joined {
            verdicts.insert(key, verdict);
        }
    }
    verdicts
}

async fn probe_first_reachable(targets: &[SocketAddr]) -> ServiceVerdict {
    let mut last = None;
    for &target in targets {
        let verdict = probe(target).await;
        if !verdict.note.starts_with("connect") {
            return verdict;
        }
        last = Some(verdict);
    }
    last.unwrap_or_else(|| {
        ServiceVerdict::unknown(SocketAddr::from(([0, 0, 0, 0], 0)), "no loopback target")
    })
}

/// Identifies the service at `target` (see the module header for the order).
pub async fn probe(target: SocketAddr) -> ServiceVerdict {
    let mut stream = match connect(target).await {
        Ok(stream) => stream,
        Err(e) => return ServiceVerdict::unknown(target, format!("connect: {e}")),
    };
    let greeting = read_some(&mut stream, GREETING_WAIT).await;
    if !greeting.is_empty() {
        return from_greeting(target, stream, &greeting).await;
    }
    drop(stream);
    if let Some(verdict) = client_first::probe(target, EXCHANGE_TIMEOUT).await {
        return verdict;
    }
    if let Some(tls) = tls_handshake(target).await {
        let mut verdict = ServiceVerdict::new(target, Encryption::Encrypted, "tls");
        verdict.tls = Some(tls);
        return verdict;
    }
    http_head(target).await
}

async fn connect(target: SocketAddr) -> std::io::Result<TcpStream> {
    timeout(CONNECT_TIMEOUT, TcpStream::connect(target))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "timed out"))?
}

/// One read of at most [`MAX_READ`] bytes; empty on timeout, EOF or error.
async fn read_some(stream: &mut TcpStream, wait: Duration) -> Vec<u8> {
    let mut buffer = vec![0u8; MAX_READ];
    match timeout(wait, stream.read(&mut buffer)).await {
        Ok(Ok(n)) => {
            buffer.truncate(n);
            buffer
        }
        _ => Vec::new(),
    }
}

/// Reads until `done` holds, EOF, [`MAX_READ`] bytes, or the timeout.
async fn read_until(stream: &mut TcpStream, done: impl Fn(&[u8]) -> bool) -> Vec<u8> {
    let mut collected = Vec::new();
    let deadline = tokio::time::Instant::now() + EXCHANGE_TIMEOUT;
    while collected.len() < MAX_READ && !done(&collected) {
        let mut buffer = vec![0u8; MAX_READ - collected.len()];
        match tokio::time::timeout_at(deadline, stream.read(&mut buffer)).await {
            Ok(Ok(n)) if n > 0 => collected.extend_from_slice(&buffer[..n]),
            _ => break,
        }
    }
    collected
}

async fn from_greeting(
    target: SocketAddr,
    mut stream: TcpStream,
    greeting: &[u8],
) -> ServiceVerdict {
    let plaintext = |protocol: &str| ServiceVerdict::new(target, Encryption::Plaintext, protocol);
    let mut verdict = match banner::classify_greeting(greeting) {
        Greeting::Ssh => ServiceVerdict::new(target, Encryption::Encrypted, "ssh"),
        Greeting::Code220 => smtp_or_ftp(target, &mut stream).await,
        Greeting::Pop3 => plaintext("pop3"),
        Greeting::Imap { starttls } => ServiceVerdict {
            starttls: Some(starttls),
            ..plaintext("imap")
        },
        Greeting::Telnet => plaintext("telnet"),
        Greeting::Vnc => plaintext("vnc"),
        Greeting::Mysql { ssl, .. } => ServiceVerdict {
            starttls: Some(ssl),
            ..plaintext("mysql")
        },
        Greeting::Unrecognised => {
            ServiceVerdict::unknown(target, "the server spoke first in an unrecognised protocol")
        }
    };
    verdict.banner = banner::first_line(greeting);
    verdict
}

async fn smtp_or_ftp(target: SocketAddr, stream: &mut TcpStream) -> ServiceVerdict {
    if stream.write_all(b"EHLO tillsyn.invalid\r\n").await.is_err() {
        return ServiceVerdict::unknown(target, "220 greeting, then the connection closed");
    }
    // An SMTP reply ends with a `250 ` line (no dash); anything else ends with its first line.
    let reply = read_until(stream, |bytes| {
        let text = String::from_utf8_lossy(bytes);
        text.lines()
            .any(|line| line.len() >= 4 && !line.starts_with("250-"))
            && text.ends_with('\n')
    })
    .await;
    let verdict = match banner::classify_ehlo(&reply) {
        EhloReply::Smtp { starttls } => ServiceVerdict {
            starttls: Some(starttls),
            ..ServiceVerdict::new(target, Encryption::Plaintext, "smtp")
        },
        EhloReply::NotSmtp => ServiceVerdict::new(target, Encryption::Plaintext, "ftp"),
    };
    // Polite close; the answer does not matter.
    let _ = stream.write_all(b"QUIT\r\n").await;
    verdict
}

async fn http_head(target: SocketAddr) -> ServiceVerdict {
    let mut stream = match connect(target).await {
        Ok(stream) => stream,
        Err(e) => return ServiceVerdict::unknown(target, format!("connect: {e}")),
    };
    if stream.write_all(b"HEAD / HTTP/1.0\r\n\r\n").await.is_err() {
        return ServiceVerdict::unknown(target, "not TLS; the connection closed on HEAD");
    }
    let reply = read_until(&mut stream, |bytes| {
        bytes.windows(4).any(|w| w == b"\r\n\r\n")
    })
    .await;
    match banner::parse_http_response(&reply) {
        Some((status, server)) => ServiceVerdict {
            banner: banner::printable(
                format!("{status} {}", server.unwrap_or_default())
                    .trim()
                    .as_bytes(),
            ),
            ..ServiceVerdict::new(target, Encryption::Plaintext, "http")
        },
        None if reply.is_empty() => {
            ServiceVerdict::unknown(target, "silent: no greeting, no TLS, no answer to HEAD")
        }
        None if client_first::redis_error_reply(&reply) => ServiceVerdict {
            banner: banner::first_line(&reply),
            note: "answered HEAD with a Redis (RESP) error".to_string(),
            ..ServiceVerdict::new(target, Encryption::Plaintext, "redis")
        },
        None => ServiceVerdict {
            banner: banner::first_line(&reply),
            ..ServiceVerdict::unknown(target, "not TLS; unrecognised answer to HEAD")
        },
    }
}

/// Tries a TLS handshake; `Some` when the peer proved it speaks TLS.
async fn tls_handshake(target: SocketAddr) -> Option<TlsFacts> {
    let stream = connect(target).await.ok()?;
    tls_handshake_on(target, stream).await
}

/// A TLS handshake on a connection already open (RDP negotiates first, then TLS follows on
/// the same connection); `Some` when the peer proved it speaks TLS.
pub(super) async fn tls_handshake_on(target: SocketAddr, stream: TcpStream) -> Option<TlsFacts> {
    let client = RecordingClient::new().ok()?;
    let connector = tokio_rustls::TlsConnector::from(client.config());
    let server_name = ServerName::from(target.ip());
    let outcome = timeout(EXCHANGE_TIMEOUT, connector.connect(server_name, stream)).await;
    match outcome {
        Ok(Ok(tls)) => Some(client.finished(tls.get_ref().1)),
        Ok(Err(e)) => {
            let alert = e
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
                .is_some_and(|tls| matches!(tls, rustls::Error::AlertReceived(_)));
            (alert || client.certificate().is_some()).then(|| client.failed(&e))
        }
        Err(_) => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // In tests an unwrap that fails is the failing assertion.
mod tests {
    use super::*;

    fn listener(address: &str, port: u16) -> Listener {
        Listener {
            transport: Transport::Tcp,
            address: address.parse().unwrap(),
            port,
            uid: 0,
            inode: 1,
            source: "/proc/net/tcp",
            line: 2,
            raw: String::new(),
            owners: Vec::new(),
        }
    }

    #[test]
    fn targets_are_loopback_or_the_bound_address() {
        assert_eq!(
            targets(&listener("0.0.0.0", 22)),
            ["127.0.0.1:22".parse().unwrap()]
        );
        assert_eq!(
            targets(&listener("::", 22)),
            ["[::1]:22".parse().unwrap(), "127.0.0.1:22".parse().unwrap()] as [SocketAddr; 2]
        );
        assert_eq!(
            targets(&listener("10.2.0.15", 443)),
            ["10.2.0.15:443".parse().unwrap()]
        );
    }

    /// `collect()` may be called straight from async code; the probes must not panic there.
    #[tokio::test]
    async fn probes_run_from_inside_a_runtime() {
        let verdicts = run_probes(vec![(
            "tcp 127.0.0.1:1".into(),
            vec!["127.0.0.1:1".parse().unwrap()],
        )])
        .unwrap();
        assert_eq!(verdicts["tcp 127.0.0.1:1"].encryption, Encryption::Unknown);
    }

    #[test]
    fn probe_port_list() {
        assert_eq!(parse_ports("22, 443,"), Ok(vec![22, 443]));
        assert!(parse_ports("22,https").is_err());
        assert_eq!(parse_ports(""), Ok(vec![]));
    }

    #[tokio::test]
    async fn silent_server_is_unknown_and_closed_port_is_unknown() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        // Accept and hold connections without a word.
        let server = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        let verdict = probe(address).await;
        assert_eq!(verdict.encryption, Encryption::Unknown);
        server.abort();
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let closed_address = closed.local_addr().unwrap();
        drop(closed);
        let verdict = probe(closed_address).await;
        assert_eq!(verdict.encryption, Encryption::Unknown);
        assert!(verdict.note.starts_with("connect"), "{verdict:?}");
    }

    /// A TLS 1.2 server that demands a client certificate rejects the probe with an alert
    /// after sending its own certificate: still TLS, with the certificate and the error kept.
    #[tokio::test]
    async fn handshake_refused_by_alert_is_still_tls() {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["mtls.example".into()]).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "mtls.example");
        let cert = params.self_signed(&key).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert.der().clone()).unwrap();
        let client_verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::clone(&provider),
        )
        .build()
        .unwrap();
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS12])
            .unwrap()
            .with_client_cert_verifier(client_verifier)
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
                let _ = acceptor.accept(socket).await;
            }
        });
        let verdict = probe(address).await;
        assert_eq!(
            (verdict.encryption, verdict.protocol.as_str()),
            (Encryption::Encrypted, "tls")
        );
        let tls = verdict.tls.unwrap();
        assert!(!tls.handshake_error.is_empty(), "{tls:?}");
        assert_eq!(tls.certificate.unwrap().subject, "CN=mtls.example");
    }

    #[tokio::test]
    async fn smtp_with_starttls_is_plaintext_with_the_offer() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            socket.write_all(b"220 mx.example ESMTP\r\n").await.unwrap();
            let mut buf = [0u8; 64];
            let _ = socket.read(&mut buf).await;
            socket
                .write_all(b"250-mx.example\r\n250-STARTTLS\r\n250 SIZE 1000\r\n")
                .await
                .unwrap();
            let _ = socket.read(&mut buf).await;
        });
        let verdict = probe(address).await;
        assert_eq!(verdict.protocol, "smtp");
        assert_eq!(verdict.encryption, Encryption::Plaintext);
        assert_eq!(verdict.starttls, Some(true));
        assert_eq!(verdict.banner, "220 mx.example ESMTP");
    }
}
