//! TLS in discovery: the handshake in front of `mqtts`, `https` and `rtsps`, and the TLS facts
//! it yields (version, cipher suite, certificate subject, issuer, expiry, self-signed, expired)
//! as identification details, so the collector stores them as observations.
//!
//! The handshake runs on the probe's [`TcpSession`] ([`TcpSession::start_tls`]: every client
//! flight is paced by the limiter, the server's handshake bytes are capped); afterwards the
//! plaintext probe (MQTT CONNECT, `GET /`, RTSP OPTIONS) runs unchanged inside TLS. The client
//! is the inventory's [`RecordingClient`]: it accepts any certificate because we record
//! certificates, we do not trust them; no SNI is sent (the server name is the target's IP
//! address, which TLS never puts in SNI); it offers TLS 1.2 and 1.3 only, as rustls speaks
//! nothing older.
//!
//! A server that only speaks TLS 1.0 or 1.1 answers with a ServerHello rustls refuses; that
//! ServerHello's version is read here by hand (a few fixed fields, no crate exposes a refused
//! ServerHello) so the deprecated version is reported as a fact:
//!
//! ```text
//! record     content type u8 (22 handshake, 21 alert), legacy version u16, length u16
//! handshake  type u8 (2 ServerHello), length u24
//!            legacy_version u16, random [32], session id u8 len + bytes, cipher suite u16,
//!            compression u8, extensions u16 len + (type u16, len u16, data)*
//!            supported_versions (type 43) data = selected version u16 (TLS 1.3, RFC 8446 §4.2.1)
//! ```
//!
//! A port that answers a ClientHello with something other than TLS, or hangs up on it without
//! a TLS alert, is reported as plaintext with the reason.

use std::time::{SystemTime, UNIX_EPOCH};

use rustls::ClientConnection;
use rustls::pki_types::ServerName;

use super::identity::{Auth, Field, Identification, Transit};
use super::session::{ProbeError, TcpSession, TlsFailure};
use super::wire::{ParseError, Reader};
use crate::tls_facts::{RecordingClient, TlsFacts};

/// The step `--dry-run` shows before the requests a TLS probe sends inside TLS. The
/// ClientHello has a fresh random and key share per connection, so no fixed bytes are shown.
pub const CLIENT_HELLO_STEP: &str = "TLS ClientHello (TLS 1.2 and 1.3, no SNI, any certificate recorded, not trusted); the requests below are sent inside TLS";

const HANDSHAKE: u8 = 22;
const ALERT: u8 = 21;
const SERVER_HELLO: u8 = 2;
const SUPPORTED_VERSIONS: u16 = 43;

/// The outcome of the handshake in front of a TLS probe.
#[derive(Debug)]
pub enum Start {
    /// The session now speaks TLS; the inner probe runs next.
    Secured(TlsFacts),
    /// The handshake did not finish; this is already the service's identification (TLS that
    /// refused us, or plaintext).
    Ended(Identification),
}

/// Runs the TLS handshake on `session` for the probe `protocol` (e.g. `mqtts`).
pub async fn start(
    session: &mut TcpSession<'_>,
    protocol: &'static str,
) -> Result<Start, ProbeError> {
    let client = RecordingClient::new().map_err(|e| tls_setup(&e))?;
    let connection = ClientConnection::new(client.config(), ServerName::from(session.peer().ip()))
        .map_err(|e| tls_setup(&e))?;
    let handshake = session.start_tls(connection).await;
    match handshake.result {
        Ok(()) => {
            let facts = session
                .tls_state()
                .map(|state| client.finished(state))
                .unwrap_or_default();
            Ok(Start::Secured(facts))
        }
        Err(failure) => ended(protocol, &client, failure, &handshake.first_reply),
    }
}

fn tls_setup(error: &rustls::Error) -> ProbeError {
    ProbeError::Io(std::io::Error::other(format!("TLS client set-up: {error}")))
}

/// Classifies a failed handshake: TLS that refused us, plaintext, or (silence, socket errors)
/// an error that leaves transit unknown.
fn ended(
    protocol: &'static str,
    client: &RecordingClient,
    failure: TlsFailure,
    first_reply: &[u8],
) -> Result<Start, ProbeError> {
    let speaks_tls = matches!(&failure, TlsFailure::Tls(rustls::Error::AlertReceived(_)))
        || client.certificate().is_some()
        || looks_like_tls(first_reply);
    if speaks_tls {
        let mut facts = client.failed(&failure);
        if let Ok(version) = server_hello_version(first_reply) {
            facts.version = version_name(version);
        }
        let mut id = Identification {
            protocol,
            fields: Vec::new(),
            transit: Transit::Tls,
            auth: Auth::Unknown,
            auth_reason: format!(
                "the TLS handshake did not finish ({failure}), so nothing was asked inside TLS"
            ),
        };
        push_facts(&mut id, &facts);
        if facts.version.is_empty() && refused_our_versions(&failure) {
            id.push(
                Field::Detail,
                "tls_deprecated_version",
                "older than TLS 1.2: the server refused a ClientHello offering TLS 1.2 and 1.3 \
                 (alert protocol_version); TLS 1.0 and 1.1 are deprecated (RFC 8996)",
                "TLS alert",
            );
        }
        return Ok(Start::Ended(id));
    }
    let detail = failure.to_string();
    let reason = match failure {
        TlsFailure::Probe(ProbeError::Eof(_)) => {
            "the port closed the connection on a TLS ClientHello without a TLS alert".to_string()
        }
        TlsFailure::Probe(ProbeError::Io(e)) if e.kind() == std::io::ErrorKind::ConnectionReset => {
            "the port reset the connection on a TLS ClientHello without a TLS alert".to_string()
        }
        TlsFailure::Tls(_) => format!(
            "the port answered a TLS ClientHello with non-TLS bytes: {:?}",
            super::wire::text(&first_reply[..first_reply.len().min(32)])
        ),
        // Silence or a socket error proves nothing about the protocol.
        TlsFailure::Probe(error) => return Err(error),
    };
    let mut id = Identification {
        protocol,
        fields: Vec::new(),
        transit: Transit::Plaintext,
        auth: Auth::Unknown,
        auth_reason: format!("no TLS: {reason}"),
    };
    id.push(Field::Detail, "tls_error", detail, "TLS handshake");
    Ok(Start::Ended(id))
}

/// Whether the server said it speaks none of the versions offered (TLS 1.2, 1.3).
fn refused_our_versions(failure: &TlsFailure) -> bool {
    matches!(
        failure,
        TlsFailure::Tls(rustls::Error::AlertReceived(
            rustls::AlertDescription::ProtocolVersion
        ))
    )
}

/// The identification of a TLS service: the inner probe's (protocol renamed, transit TLS)
/// plus the TLS facts; when the inner probe failed inside TLS, the TLS facts alone.
pub fn finish(
    protocol: &'static str,
    inner: Result<Option<Identification>, ProbeError>,
    facts: &TlsFacts,
) -> Identification {
    let mut id = match inner {
        Ok(Some(id)) => id,
        Ok(None) => Identification {
            protocol,
            fields: Vec::new(),
            transit: Transit::Tls,
            auth: Auth::Unknown,
            auth_reason: "TLS only; nothing was asked inside TLS".to_string(),
        },
        Err(error) => Identification {
            protocol,
            fields: Vec::new(),
            transit: Transit::Tls,
            auth: Auth::Unknown,
            auth_reason: format!("TLS established, but the request inside TLS failed: {error}"),
        },
    };
    id.protocol = protocol;
    id.transit = Transit::Tls;
    push_facts(&mut id, facts);
    id
}

/// Adds the TLS facts as details (empty ones are skipped by [`Identification::push`]).
fn push_facts(id: &mut Identification, facts: &TlsFacts) {
    id.push(
        Field::Detail,
        "tls_version",
        facts.version.clone(),
        "TLS ServerHello version",
    );
    if is_deprecated(&facts.version) {
        id.push(
            Field::Detail,
            "tls_deprecated_version",
            format!("{} is deprecated (RFC 8996)", facts.version),
            "TLS ServerHello version",
        );
    }
    id.push(
        Field::Detail,
        "tls_cipher",
        facts.cipher.clone(),
        "TLS ServerHello cipher suite",
    );
    id.push(
        Field::Detail,
        "tls_handshake_error",
        facts.handshake_error.clone(),
        "TLS handshake",
    );
    let Some(cert) = &facts.certificate else {
        return;
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let fields = [
        ("tls_cert_subject", cert.subject.clone(), "subject"),
        ("tls_cert_issuer", cert.issuer.clone(), "issuer"),
        (
            "tls_cert_not_after",
            cert.not_after.clone(),
            "validity notAfter",
        ),
        (
            "tls_cert_self_signed",
            cert.self_signed.to_string(),
            "subject = issuer and key identifiers",
        ),
        (
            "tls_cert_expired",
            (cert.not_after_unix < now).to_string(),
            "validity notAfter before now",
        ),
    ];
    for (name, value, part) in fields {
        id.push(
            Field::Detail,
            name,
            value,
            format!("TLS server certificate {part}"),
        );
    }
}

fn is_deprecated(version: &str) -> bool {
    matches!(version, "SSLv3" | "TLSv1.0" | "TLSv1.1")
}

/// `TLSv1.0` for 0x0301 and so on.
pub fn version_name(version: u16) -> String {
    crate::tls_facts::version_name(rustls::ProtocolVersion::from(version))
}

/// Whether `bytes` start a TLS handshake or alert record.
pub fn looks_like_tls(bytes: &[u8]) -> bool {
    matches!(bytes, [HANDSHAKE | ALERT, 3, minor, ..] if *minor <= 4)
}

/// The version a ServerHello selected: its supported_versions extension if present, else its
/// legacy version. Reads only the first record (ServerHellos are small).
pub fn server_hello_version(bytes: &[u8]) -> Result<u16, ParseError> {
    let mut r = Reader::new(bytes);
    let content = r.u8()?;
    if content != HANDSHAKE {
        return Err(ParseError::Unexpected {
            field: "TLS record content type",
            value: u64::from(content),
        });
    }
    r.skip(2)?;
    let record_len = usize::from(r.u16_be()?);
    let mut r = Reader::new(r.take(record_len.min(r.remaining()))?);
    let kind = r.u8()?;
    if kind != SERVER_HELLO {
        return Err(ParseError::Unexpected {
            field: "TLS handshake type",
            value: u64::from(kind),
        });
    }
    r.skip(3)?; // handshake length: the record bounds what we read
    let legacy = r.u16_be()?;
    r.skip(32)?; // random
    let session_id = usize::from(r.u8()?);
    r.skip(session_id)?;
    r.skip(3)?; // cipher suite, compression method
    if r.remaining() == 0 {
        return Ok(legacy);
    }
    let extensions_len = usize::from(r.u16_be()?);
    let mut extensions = Reader::new(r.take(extensions_len.min(r.remaining()))?);
    while extensions.remaining() >= 4 {
        let kind = extensions.u16_be()?;
        let len = usize::from(extensions.u16_be()?);
        let data = extensions.take(len)?;
        if kind == SUPPORTED_VERSIONS {
            return Reader::new(data).u16_be();
        }
    }
    Ok(legacy)
}

/// What `--dry-run` shows for a TLS probe: the ClientHello step, then `inner`'s requests.
pub fn plan(inner: Vec<(&'static str, Vec<u8>)>) -> Vec<(&'static str, Vec<u8>)> {
    std::iter::once((CLIENT_HELLO_STEP, Vec::new()))
        .chain(inner)
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::discovery::wire::fuzz;
    use crate::tls_facts::CertificateFacts;

    /// A TLS 1.0 ServerHello as OpenSSL 3 `s_server -tls1` sends it (random zeroed).
    fn tls10_server_hello() -> Vec<u8> {
        let mut body = vec![3, 1];
        body.extend_from_slice(&[0; 32]);
        body.push(0); // no session id
        body.extend_from_slice(&[0xC0, 0x14, 0]); // ECDHE-RSA-AES256-SHA, null compression
        body.extend_from_slice(&[0, 5, 0xFF, 0x01, 0, 1, 0]); // renegotiation_info
        let mut handshake = vec![SERVER_HELLO, 0, 0, u8::try_from(body.len()).unwrap()];
        handshake.extend_from_slice(&body);
        let mut record = vec![HANDSHAKE, 3, 1, 0, u8::try_from(handshake.len()).unwrap()];
        record.extend_from_slice(&handshake);
        record
    }

    #[test]
    fn reads_the_version_a_server_hello_selected() {
        let hello = tls10_server_hello();
        assert!(looks_like_tls(&hello));
        assert_eq!(server_hello_version(&hello).unwrap(), 0x0301);
        assert_eq!(version_name(0x0301), "TLSv1.0");
        // TLS 1.3 keeps 0x0303 as legacy version and selects 0x0304 in supported_versions.
        let mut tls13 = hello.clone();
        tls13[2] = 3;
        tls13[10] = 3;
        let at = tls13.len() - 7;
        tls13.truncate(at);
        tls13.extend_from_slice(&[0, 6, 0, 43, 0, 2, 3, 4]);
        tls13[4] = u8::try_from(tls13.len() - 5).unwrap();
        tls13[8] = u8::try_from(tls13.len() - 9).unwrap();
        assert_eq!(server_hello_version(&tls13).unwrap(), 0x0304);
        assert!(!looks_like_tls(b"HTTP/1.0 400 Bad Request\r\n"));
        assert!(server_hello_version(b"\x15\x03\x03\x00\x02\x02\x46").is_err());
    }

    #[test]
    fn reads_real_openssl_server_hellos() {
        let tls13 = include_bytes!("../../fuzz/corpus/tls/server_hello_tls13_openssl.bin");
        let tls10 = include_bytes!("../../fuzz/corpus/tls/server_hello_tls10_openssl.bin");
        assert_eq!(server_hello_version(tls13).unwrap(), 0x0304);
        assert_eq!(server_hello_version(tls10).unwrap(), 0x0301);
        fuzz::no_panic(tls13, server_hello_version);
    }

    #[test]
    fn facts_become_details() {
        let facts = TlsFacts {
            version: "TLSv1.1".to_string(),
            cipher: "TLS_RSA_WITH_AES_128_CBC_SHA".to_string(),
            handshake_error: String::new(),
            certificate: Some(CertificateFacts {
                subject: "CN=broker".to_string(),
                issuer: "CN=broker".to_string(),
                subject_alt_names: Vec::new(),
                not_after_unix: 1,
                not_after: "Jan  1 00:00:01 1970 +00:00".to_string(),
                self_signed: true,
            }),
        };
        let inner = Identification::plaintext_open("mqtt");
        let id = finish("mqtts", Ok(Some(inner)), &facts);
        assert_eq!((id.protocol, id.transit), ("mqtts", Transit::Tls));
        assert_eq!(id.detail("tls_version"), Some("TLSv1.1"));
        assert!(id.detail("tls_deprecated_version").is_some());
        assert_eq!(id.detail("tls_cert_subject"), Some("CN=broker"));
        assert_eq!(id.detail("tls_cert_self_signed"), Some("true"));
        assert_eq!(id.detail("tls_cert_expired"), Some("true"));
        let failed = finish("https", Err(ProbeError::Eof(0)), &facts);
        assert_eq!((failed.transit, failed.auth), (Transit::Tls, Auth::Unknown));
    }

    #[test]
    fn plan_starts_with_the_client_hello() {
        let steps = plan(vec![("GET /", b"GET /".to_vec())]);
        assert_eq!(steps[0], (CLIENT_HELLO_STEP, Vec::new()));
        assert_eq!(steps[1].0, "GET /");
    }

    #[test]
    fn never_panics() {
        fuzz::no_panic(&tls10_server_hello(), server_hello_version);
    }
}
