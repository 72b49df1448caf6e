//! RTSP identification: one `OPTIONS` request and the reply's `Server` and `Public` headers.
//!
//! Follows RFC 2326 §10.1 (OPTIONS) and §12 (headers); cross-checked with nmap's
//! `rtsp-methods.nse`; tested against GStreamer's RTSP server. The response head is parsed by
//! [`super::http::parse_head`] (RTSP reuses HTTP's message syntax).
//!
//! ```text
//! request  OPTIONS rtsp://<addr>/ RTSP/1.0 CRLF CSeq: 1 CRLF User-Agent: tillsyn-agent CRLF CRLF
//! reply    RTSP/1.0 <status> <reason> CRLF CSeq: 1 CRLF Public: OPTIONS, DESCRIBE, ... CRLF
//!          [Server: ...] CRLF CRLF
//! ```
//!
//! OPTIONS starts no stream; no DESCRIBE, SETUP or PLAY is ever sent.

use super::http::{identify_head, parse_head};
use super::identity::{Field, Identification};
use super::session::{ProbeError, TcpSession};
use super::wire::ParseError;

/// Protocol name in reports.
pub const PROTOCOL: &str = "rtsp";

// BEGIN REQUEST BUILDERS (scanned by the forbidden-function test in registry.rs)
/// `OPTIONS` for `host` (an address, with port).
pub fn options(host: &str) -> Vec<u8> {
    format!("OPTIONS rtsp://{host}/ RTSP/1.0\r\nCSeq: 1\r\nUser-Agent: tillsyn-agent\r\n\r\n")
        .into_bytes()
}
// END REQUEST BUILDERS

/// The requests a probe sends (for `--dry-run`).
pub fn plan() -> Vec<(&'static str, Vec<u8>)> {
    vec![("OPTIONS", options("TARGET:PORT"))]
}

/// Parses a reply to OPTIONS.
pub fn parse(reply: &[u8]) -> Result<Identification, ParseError> {
    let head = parse_head(reply, "RTSP/")?;
    let mut id = identify_head(
        PROTOCOL,
        &head,
        "OPTIONS",
        "RTSP",
        "streams may still require credentials",
    );
    if let Some(public) = head.header("public") {
        id.push(Field::Detail, "methods", public, "RTSP Public header");
    }
    Ok(id)
}

/// The head is complete at the blank line.
fn done(buf: &[u8]) -> bool {
    buf.windows(4).any(|w| w == b"\r\n\r\n")
}

/// Sends OPTIONS and reads the reply head.
pub async fn probe(session: &mut TcpSession<'_>) -> Result<Identification, ProbeError> {
    session.send(&options(&session.peer().to_string())).await?;
    Ok(parse(&session.read_banner(done).await?)?)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::discovery::wire::fuzz;

    const REPLY: &[u8] = b"RTSP/1.0 200 OK\r\nCSeq: 1\r\nPublic: OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN\r\nServer: GStreamer RTSP server\r\n\r\n";

    #[test]
    fn parses_options_reply() {
        let id = parse(REPLY).unwrap();
        assert_eq!(id.detail("server"), Some("GStreamer RTSP server"));
        assert!(id.detail("methods").unwrap().contains("DESCRIBE"));
        assert!(parse(b"HTTP/1.0 200 OK\r\n\r\n").is_err());
    }

    #[test]
    fn never_panics() {
        fuzz::no_panic(REPLY, parse);
    }
}
