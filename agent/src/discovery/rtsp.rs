//! RTSP identification: one `OPTIONS` (the `Server` and `Public` headers), then `DESCRIBE` of a
//! few configured paths to learn whether the streams demand authentication.
//!
//! Follows RFC 2326 §10.1 (OPTIONS), §10.2 (DESCRIBE), §12 (headers) and RFC 4566 (SDP);
//! cross-checked with nmap's `rtsp-methods.nse` and `rtsp-url-brute.nse` (which reads 401 as
//! "exists, needs credentials" and 404 as "no such stream"); tested against GStreamer's RTSP
//! server with an open mount and a mount behind its `RTSPAuth` (Basic). Response heads are
//! parsed by [`super::http::parse_head`] (RTSP reuses HTTP's message syntax). Hand-written:
//! two fixed text requests need no RTSP client crate, and a client crate would go on to SETUP.
//!
//! ```text
//! request  OPTIONS rtsp://<addr>/ RTSP/1.0 CRLF CSeq: 1 CRLF User-Agent: tillsyn-agent CRLF CRLF
//! reply    RTSP/1.0 <status> <reason> CRLF CSeq: 1 CRLF Public: OPTIONS, DESCRIBE, ... CRLF
//!          [Server: ...] CRLF CRLF
//! request  DESCRIBE rtsp://<addr><path> RTSP/1.0 CRLF CSeq: <n> CRLF
//!          Accept: application/sdp CRLF User-Agent: tillsyn-agent CRLF CRLF
//! reply    RTSP/1.0 200 OK ... Content-Type: application/sdp CRLF Content-Length: <n> CRLF CRLF
//!          v=0 / s=<session name> / a=tool:<tool> / m=<media> <port> <proto> <fmt> / ...
//!        | RTSP/1.0 401 Unauthorized ... WWW-Authenticate: Basic realm="..." | Digest ...
//!        | RTSP/1.0 404 Not Found
//! ```
//!
//! The path list is short and configurable (`--rtsp-path`); the default is `/` alone: the RTSP
//! servers of Hikvision, Dahua and Axis cameras check credentials before they look the path
//! up, so `/` already answers 401 on a protected camera, while an open server answers 404 for
//! a path it does not serve (then the verdict stays unknown). Paths are tried in order until
//! one answers something other than 404. DESCRIBE returns a description, it starts no stream:
//! SETUP, PLAY, RECORD and the parameter setters are never sent, and neither are credentials.

use super::http::{Head, identify_head, message_body, parse_head, rtsp_message_complete};
use super::identity::{Auth, Field, Identification};
use super::session::{ProbeError, TcpSession};
use super::wire::{ParseError, text};

/// Protocol name in reports.
pub const PROTOCOL: &str = "rtsp";

/// The default DESCRIBE path list.
pub const DEFAULT_PATHS: &[&str] = &["/"];

/// Most paths a probe may DESCRIBE (each is one more request to the device).
pub const MAX_PATHS: usize = 4;

/// Longest path accepted.
pub const MAX_PATH_LEN: usize = 128;

/// Longest SDP value kept.
const MAX_SDP_VALUE: usize = 128;

/// Most media lines summarised from an SDP.
const MAX_MEDIA: usize = 8;

// BEGIN REQUEST BUILDERS (scanned by the forbidden-function test in registry.rs)
/// `OPTIONS` for `host` (an address, with port).
pub fn options(host: &str) -> Vec<u8> {
    format!("OPTIONS rtsp://{host}/ RTSP/1.0\r\nCSeq: 1\r\nUser-Agent: tillsyn-agent\r\n\r\n")
        .into_bytes()
}

/// `DESCRIBE` of `path` (validated by [`valid_path`]) on `host`, with sequence number `cseq`.
pub fn describe(host: &str, path: &str, cseq: usize) -> Vec<u8> {
    format!(
        "DESCRIBE rtsp://{host}{path} RTSP/1.0\r\nCSeq: {cseq}\r\nAccept: application/sdp\r\nUser-Agent: tillsyn-agent\r\n\r\n"
    )
    .into_bytes()
}
// END REQUEST BUILDERS

/// Whether `path` may go into a request line: absolute, short, printable, no spaces.
pub fn valid_path(path: &str) -> bool {
    path.starts_with('/')
        && path.len() <= MAX_PATH_LEN
        && path.bytes().all(|b| b.is_ascii_graphic())
}

/// The requests a probe sends (for `--dry-run`): OPTIONS, then one DESCRIBE per path until
/// one answers other than 404.
pub fn plan(paths: &[String]) -> Vec<(&'static str, Vec<u8>)> {
    let mut out = vec![("OPTIONS", options("TARGET:PORT"))];
    for (index, path) in paths.iter().enumerate() {
        out.push((
            "DESCRIBE (until one path answers other than 404)",
            describe("TARGET:PORT", path, index + 2),
        ));
    }
    out
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

/// What a DESCRIBE reply says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Describe {
    /// Status code.
    pub status: u16,
    /// Authentication schemes offered by `WWW-Authenticate` (e.g. `Digest, Basic`).
    pub auth_schemes: Vec<String>,
    /// The first `realm` parameter of a challenge.
    pub realm: Option<String>,
    /// Whether the body is an SDP (`Content-Type: application/sdp`).
    pub sdp: bool,
    /// SDP session name (`s=`).
    pub session_name: Option<String>,
    /// SDP session information (`i=`).
    pub session_info: Option<String>,
    /// SDP `a=tool:` (the software that wrote it, often the camera's streaming stack).
    pub tool: Option<String>,
    /// One entry per `m=` line: media type and its first `a=rtpmap` encoding, e.g.
    /// `video JPEG/90000`.
    pub media: Vec<String>,
}

/// Parses a reply to DESCRIBE.
pub fn parse_describe(reply: &[u8]) -> Result<Describe, ParseError> {
    let head = parse_head(reply, "RTSP/")?;
    let (auth_schemes, realm) = challenges(&head);
    let mut out = Describe {
        status: head.status,
        auth_schemes,
        realm,
        ..Describe::default()
    };
    let is_sdp = head
        .header("content-type")
        .is_some_and(|t| t.to_ascii_lowercase().starts_with("application/sdp"));
    if head.status == 200 && is_sdp {
        out.sdp = true;
        let body = message_body(reply, &head);
        read_sdp(&String::from_utf8_lossy(&body), &mut out);
    }
    Ok(out)
}

/// Schemes and the first realm of every `WWW-Authenticate` header.
fn challenges(head: &Head) -> (Vec<String>, Option<String>) {
    let mut schemes = Vec::new();
    let mut realm = None;
    for challenge in head.headers_named("www-authenticate") {
        let scheme = challenge.split_whitespace().next().unwrap_or_default();
        if !scheme.is_empty() && !schemes.iter().any(|s: &String| s == scheme) {
            schemes.push(scheme.to_string());
        }
        if realm.is_none() {
            realm = param(challenge, "realm");
        }
    }
    (schemes, realm)
}

/// The value of `name="..."` (or `name=token`) in an authentication challenge.
fn param(challenge: &str, name: &str) -> Option<String> {
    let lower = challenge.to_ascii_lowercase();
    let at = lower.match_indices(name).find_map(|(at, _)| {
        let rest = lower[at + name.len()..].trim_start();
        rest.starts_with('=').then_some(at)
    })?;
    let rest = challenge[at + name.len()..]
        .trim_start()
        .strip_prefix('=')?
        .trim_start();
    let value = match rest.strip_prefix('"') {
        Some(quoted) => quoted.split('"').next().unwrap_or_default(),
        None => rest.split([',', ' ']).next().unwrap_or_default(),
    };
    Some(value.to_string())
}

fn sdp_value(value: &str) -> String {
    text(value.trim().as_bytes())
        .chars()
        .take(MAX_SDP_VALUE)
        .collect()
}

/// Reads the session-level facts and a media summary from an SDP.
fn read_sdp(sdp: &str, out: &mut Describe) {
    for line in sdp.lines() {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        match key.trim() {
            "s" if out.session_name.is_none() => out.session_name = Some(sdp_value(value)),
            "i" if out.session_info.is_none() && out.media.is_empty() => {
                out.session_info = Some(sdp_value(value));
            }
            "m" if out.media.len() < MAX_MEDIA => {
                let kind = value.split_whitespace().next().unwrap_or_default();
                out.media.push(sdp_value(kind));
            }
            "a" => attribute(value, out),
            _ => {}
        }
    }
}

/// `a=tool:` and the first `a=rtpmap:` of each media section.
fn attribute(value: &str, out: &mut Describe) {
    if let Some(tool) = value.strip_prefix("tool:") {
        if out.tool.is_none() {
            out.tool = Some(sdp_value(tool));
        }
    } else if let Some(map) = value.strip_prefix("rtpmap:") {
        let encoding = map.split_whitespace().nth(1).unwrap_or_default();
        if let Some(last) = out.media.last_mut()
            && !last.contains(' ')
            && !encoding.is_empty()
        {
            last.push(' ');
            last.push_str(&sdp_value(encoding));
        }
    }
}

/// Folds a DESCRIBE reply for `path` into the OPTIONS identification: the auth verdict and
/// the facts worth keeping.
pub fn apply_describe(id: &mut Identification, path: &str, reply: &Describe) {
    id.push(
        Field::Detail,
        "describe_path",
        path,
        "RTSP DESCRIBE request URI path",
    );
    id.push(
        Field::Detail,
        "describe_status",
        reply.status.to_string(),
        "RTSP DESCRIBE status line",
    );
    let (auth, reason) = match reply.status {
        401 | 403 => (
            Auth::Required,
            format!(
                "DESCRIBE {path} answered {} without credentials (challenge: {})",
                reply.status,
                if reply.auth_schemes.is_empty() {
                    "none".to_string()
                } else {
                    reply.auth_schemes.join(", ")
                }
            ),
        ),
        200 if reply.sdp => (
            Auth::None,
            format!("DESCRIBE {path} returned the stream's SDP without credentials"),
        ),
        404 => (
            Auth::Unknown,
            format!("DESCRIBE {path} answered 404 (no stream at this path)"),
        ),
        other => (Auth::Unknown, format!("DESCRIBE {path} answered {other}")),
    };
    id.auth = auth;
    id.auth_reason = reason;
    let facts = [
        (
            "auth_scheme",
            Some(reply.auth_schemes.join(", ")),
            "RTSP WWW-Authenticate scheme",
        ),
        (
            "auth_realm",
            reply.realm.clone(),
            "RTSP WWW-Authenticate realm",
        ),
        (
            "sdp_session_name",
            reply.session_name.clone(),
            "SDP s= (session name)",
        ),
        (
            "sdp_session_info",
            reply.session_info.clone(),
            "SDP i= (session information)",
        ),
        ("sdp_tool", reply.tool.clone(), "SDP a=tool"),
        (
            "sdp_media",
            Some(reply.media.join(", ")),
            "SDP m= lines with a=rtpmap encodings",
        ),
    ];
    for (name, value, field) in facts {
        if let Some(value) = value {
            id.push(Field::Detail, name, value, field);
        }
    }
}

/// The head of an OPTIONS reply is complete at the blank line.
fn done(buf: &[u8]) -> bool {
    buf.windows(4).any(|w| w == b"\r\n\r\n")
}

/// Whether the server's `Public` header (if any) admits DESCRIBE.
fn offers_describe(id: &Identification) -> bool {
    id.detail("methods").is_none_or(|methods| {
        methods
            .split(',')
            .any(|m| m.trim().eq_ignore_ascii_case("DESCRIBE"))
    })
}

/// Sends OPTIONS, then DESCRIBE of each of `paths` until one answers other than 404. A failed
/// DESCRIBE keeps what OPTIONS learned.
pub async fn probe(
    session: &mut TcpSession<'_>,
    paths: &[String],
) -> Result<Identification, ProbeError> {
    let host = session.peer().to_string();
    session.send(&options(&host)).await?;
    let mut id = parse(&session.read_banner(done).await?)?;
    if !offers_describe(&id) {
        return Ok(id);
    }
    // Only the deciding reply (the first that is not 404, or the last 404) becomes evidence.
    let mut deciding = None;
    for (index, path) in paths.iter().filter(|p| valid_path(p)).enumerate() {
        match describe_once(session, &host, path, index + 2).await {
            Ok(reply) => {
                let found = reply.status != 404;
                deciding = Some((path, reply));
                if found {
                    break;
                }
            }
            Err(error) => {
                id.push(
                    Field::Detail,
                    "describe_error",
                    error.to_string(),
                    "RTSP DESCRIBE",
                );
                break;
            }
        }
    }
    if let Some((path, reply)) = deciding {
        apply_describe(&mut id, path, &reply);
    }
    Ok(id)
}

async fn describe_once(
    session: &mut TcpSession<'_>,
    host: &str,
    path: &str,
    cseq: usize,
) -> Result<Describe, ProbeError> {
    session.send(&describe(host, path, cseq)).await?;
    Ok(parse_describe(
        &session.read_banner(rtsp_message_complete).await?,
    )?)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::discovery::wire::fuzz;

    const REPLY: &[u8] = b"RTSP/1.0 200 OK\r\nCSeq: 1\r\nPublic: OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN\r\nServer: GStreamer RTSP server\r\n\r\n";
    /// GStreamer 1.22's RTSP server answering DESCRIBE of an open mount (captured from the
    /// test peer, `tests/peers/rtsp_peer.py`).
    const DESCRIBE_OPEN: &[u8] = include_bytes!("../../fuzz/corpus/rtsp/describe_gstreamer.bin");
    /// A Hikvision-style challenge pair: Digest first, then Basic.
    const DESCRIBE_401: &[u8] = b"RTSP/1.0 401 Unauthorized\r\nCSeq: 2\r\nWWW-Authenticate: Digest realm=\"IP Camera(C6177)\", nonce=\"abc\", stale=\"FALSE\"\r\nWWW-Authenticate: Basic realm=\"IP Camera(C6177)\"\r\nDate: Wed, Nov 25 2026 01:02:59 GMT\r\n\r\n";

    #[test]
    fn parses_options_reply() {
        let id = parse(REPLY).unwrap();
        assert_eq!(id.detail("server"), Some("GStreamer RTSP server"));
        assert!(id.detail("methods").unwrap().contains("DESCRIBE"));
        assert!(offers_describe(&id));
        assert!(parse(b"HTTP/1.0 200 OK\r\n\r\n").is_err());
        let no_describe =
            parse(b"RTSP/1.0 200 OK\r\nCSeq: 1\r\nPublic: OPTIONS, GET_PARAMETER\r\n\r\n").unwrap();
        assert!(!offers_describe(&no_describe));
    }

    #[test]
    fn open_describe_means_no_auth_and_keeps_sdp_facts() {
        let reply = parse_describe(DESCRIBE_OPEN).unwrap();
        assert!(reply.sdp);
        assert_eq!(
            reply.session_name.as_deref(),
            Some("Session streamed with GStreamer")
        );
        assert_eq!(reply.tool.as_deref(), Some("GStreamer"));
        assert_eq!(reply.media, ["video JPEG/90000"]);
        let mut id = parse(REPLY).unwrap();
        apply_describe(&mut id, "/stream1", &reply);
        assert_eq!(id.auth, Auth::None);
        assert_eq!(id.detail("sdp_media"), Some("video JPEG/90000"));
    }

    #[test]
    fn challenge_means_required_with_scheme_and_realm() {
        let reply = parse_describe(DESCRIBE_401).unwrap();
        assert_eq!(reply.auth_schemes, ["Digest", "Basic"]);
        assert_eq!(reply.realm.as_deref(), Some("IP Camera(C6177)"));
        let mut id = parse(REPLY).unwrap();
        apply_describe(&mut id, "/", &reply);
        assert_eq!(id.auth, Auth::Required);
        assert_eq!(id.detail("auth_scheme"), Some("Digest, Basic"));
        let not_found = parse_describe(b"RTSP/1.0 404 Not Found\r\nCSeq: 2\r\n\r\n").unwrap();
        apply_describe(&mut id, "/", &not_found);
        assert_eq!(id.auth, Auth::Unknown);
        assert_eq!(
            param("Basic realm=unquoted, x=1", "realm").as_deref(),
            Some("unquoted")
        );
    }

    #[test]
    fn paths_are_validated_and_planned() {
        assert!(valid_path("/"));
        assert!(valid_path("/cam/realmonitor?channel=1&subtype=0"));
        assert!(!valid_path("stream1"));
        assert!(!valid_path("/a b"));
        assert!(!valid_path("/a\r\nAuthorization: x"));
        let plan = plan(&["/".to_string(), "/stream1".to_string()]);
        assert_eq!(plan.len(), 3);
        assert!(
            plan[2]
                .1
                .starts_with(b"DESCRIBE rtsp://TARGET:PORT/stream1 RTSP/1.0\r\nCSeq: 3")
        );
    }

    #[test]
    fn never_panics() {
        fuzz::no_panic(REPLY, parse);
        fuzz::no_panic(DESCRIBE_OPEN, parse_describe);
        fuzz::no_panic(DESCRIBE_401, parse_describe);
    }
}
