//! HTTP identification: one `GET /` and the reply's status, `Server` header and `<title>`.
//!
//! Follows RFC 9112 (HTTP/1.1 message syntax; we speak HTTP/1.0 with `Connection: close` so the
//! server ends the reply by closing); cross-checked with nmap's `http-title.nse` and
//! `http-server-header.nse`; tested against CPython's `http.server`.
//!
//! ```text
//! request  GET / HTTP/1.0 CRLF Host: <addr> CRLF User-Agent: tillsyn-agent CRLF
//!          Connection: close CRLF CRLF
//! reply    HTTP/1.x <status> <reason> CRLF *(<name>: <value> CRLF) CRLF <body>
//! ```
//!
//! A 401 (with `WWW-Authenticate`) or 403 means credentials are required; a 2xx root page
//! proves nothing (a login form is a 200), so auth stays unknown. The response-head parser is
//! shared with RTSP, which uses the same message syntax.

use super::identity::{Auth, Field, Identification, Transit};
use super::session::{ProbeError, TcpSession};
use super::wire::{ParseError, text};

/// Protocol name in reports.
pub const PROTOCOL: &str = "http";

/// Longest header line kept; longer ones are cut (bounded output, not bounded input: the
/// session already caps the reply).
const MAX_VALUE: usize = 256;

// BEGIN REQUEST BUILDERS (scanned by the forbidden-function test in registry.rs)
/// `GET /` for `host` (an address, with port).
pub fn get_root(host: &str) -> Vec<u8> {
    format!("GET / HTTP/1.0\r\nHost: {host}\r\nUser-Agent: tillsyn-agent\r\nAccept: */*\r\nConnection: close\r\n\r\n").into_bytes()
}
// END REQUEST BUILDERS

/// The requests a probe sends (for `--dry-run`).
pub fn plan() -> Vec<(&'static str, Vec<u8>)> {
    vec![("GET /", get_root("TARGET:PORT"))]
}

/// A parsed response head.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Head {
    /// Protocol token of the status line, e.g. `HTTP/1.0` or `RTSP/1.0`.
    pub version: String,
    /// Status code.
    pub status: u16,
    /// Header fields, names lower-cased, in order.
    pub headers: Vec<(String, String)>,
    /// Offset of the body.
    pub body_at: usize,
}

impl Head {
    /// The first value of header `name` (lower-case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of header `name` (lower-case), in order (e.g. one `WWW-Authenticate` per
    /// offered scheme).
    pub fn headers_named<'h>(&'h self, name: &'h str) -> impl Iterator<Item = &'h str> + 'h {
        self.headers
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The `Content-Length`, if present and a number.
    pub fn content_length(&self) -> Option<usize> {
        self.header("content-length")?.trim().parse().ok()
    }
}

/// Whether `buf` holds a whole HTTP response: the head and as many body bytes as
/// `Content-Length` announces; without one the body ends when the server closes (which ends
/// the read). For [`TcpSession::read_banner`].
pub fn http_message_complete(buf: &[u8]) -> bool {
    body_complete(buf).unwrap_or(false)
}

/// Whether `buf` holds a whole RTSP response: without `Content-Length` an RTSP message has no
/// body (RFC 2326 §4.3), so the head alone is complete.
pub fn rtsp_message_complete(buf: &[u8]) -> bool {
    body_complete(buf).unwrap_or(find(buf, b"\r\n\r\n").is_some())
}

/// The body of a response whose head is `head`: cut to `Content-Length` when there is one,
/// de-chunked when `Transfer-Encoding: chunked` (an HTTP/1.1 server may send it; a chunk that
/// runs past the bytes read ends the body there).
pub fn message_body<'r>(reply: &'r [u8], head: &Head) -> std::borrow::Cow<'r, [u8]> {
    let start = head.body_at.min(reply.len());
    let chunked = head
        .header("transfer-encoding")
        .is_some_and(|t| t.to_ascii_lowercase().contains("chunked"));
    if chunked {
        return std::borrow::Cow::Owned(dechunk(&reply[start..]));
    }
    let end = head
        .content_length()
        .map_or(reply.len(), |n| start.saturating_add(n))
        .min(reply.len());
    std::borrow::Cow::Borrowed(&reply[start..end])
}

/// Joins the chunks of a chunked body (RFC 9112 §7.1); extensions and trailers are ignored.
fn dechunk(mut rest: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(line_end) = find(rest, b"\r\n") {
        let size_text = String::from_utf8_lossy(&rest[..line_end]);
        let size_hex = size_text.split(';').next().unwrap_or_default().trim();
        let Ok(size) = usize::from_str_radix(size_hex, 16) else {
            break;
        };
        rest = &rest[line_end + 2..];
        if size == 0 {
            break;
        }
        let take = size.min(rest.len());
        out.extend_from_slice(&rest[..take]);
        rest = rest.get(take + 2..).unwrap_or_default();
    }
    out
}

/// `Some(whether the announced body is all there)` when the head is complete and has a
/// `Content-Length`; `None` otherwise.
fn body_complete(buf: &[u8]) -> Option<bool> {
    let head_end = find(buf, b"\r\n\r\n")? + 4;
    // Any protocol token will do: only the length is wanted here.
    let length = parse_head(&buf[..head_end], "").ok()?.content_length()?;
    Some(buf.len() - head_end >= length)
}

/// Parses a status line and headers whose protocol token starts with `prefix`.
pub fn parse_head(reply: &[u8], prefix: &str) -> Result<Head, ParseError> {
    let end = find(reply, b"\r\n\r\n")
        .map(|at| at + 4)
        .or_else(|| find(reply, b"\n\n").map(|at| at + 2))
        .unwrap_or(reply.len());
    let head = String::from_utf8_lossy(&reply[..end]);
    let mut lines = head.lines();
    let status_line = lines.next().ok_or(ParseError::Empty)?;
    let mut parts = status_line.split_whitespace();
    let version = parts.next().unwrap_or_default();
    if !version.starts_with(prefix) {
        return Err(ParseError::Unexpected {
            field: "status line protocol",
            value: u64::from(reply.first().copied().unwrap_or(0)),
        });
    }
    let status =
        parts
            .next()
            .and_then(|s| s.parse::<u16>().ok())
            .ok_or(ParseError::Unexpected {
                field: "status code",
                value: 0,
            })?;
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), clip(value.trim())))
        .collect();
    Ok(Head {
        version: version.to_string(),
        status,
        headers,
        body_at: end,
    })
}

fn clip(value: &str) -> String {
    text(value.as_bytes()).chars().take(MAX_VALUE).collect()
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The text of the first `<title>` in `body`, if any.
fn title(body: &[u8]) -> Option<String> {
    let lower = body.to_ascii_lowercase();
    let open = find(&lower, b"<title")?;
    let start = open + find(&lower[open..], b">")? + 1;
    let len = find(&lower[start..], b"</title")?;
    Some(clip(&String::from_utf8_lossy(&body[start..start + len])))
}

/// The identification every HTTP-shaped reply (HTTP, RTSP) starts with: the authentication
/// verdict read from the status code, the status, and the Server header. `request` names what
/// was sent, `label` the protocol in evidence, `open_hint` why a 2xx proves no open access.
pub fn identify_head(
    protocol: &'static str,
    head: &Head,
    request: &str,
    label: &str,
    open_hint: &str,
) -> Identification {
    let (auth, auth_reason) = match head.status {
        401 | 403 => (
            Auth::Required,
            format!("{request} answered {} (credentials required)", head.status),
        ),
        status => (
            Auth::Unknown,
            format!("{request} answered {status}; {open_hint}"),
        ),
    };
    let mut id = Identification {
        protocol,
        fields: Vec::new(),
        transit: Transit::Plaintext,
        auth,
        auth_reason,
    };
    id.push(
        Field::Detail,
        "status",
        head.status.to_string(),
        format!("{label} status line"),
    );
    if let Some(server) = head.header("server") {
        id.push(
            Field::Detail,
            "server",
            server,
            format!("{label} Server header"),
        );
    }
    id
}

/// Parses a reply to `GET /`.
pub fn parse(reply: &[u8]) -> Result<Identification, ParseError> {
    let head = parse_head(reply, "HTTP/")?;
    let mut id = identify_head(
        PROTOCOL,
        &head,
        "GET /",
        "HTTP",
        "a login form cannot be told from an open page",
    );
    if let Some(realm) = head.header("www-authenticate") {
        id.push(
            Field::Detail,
            "www_authenticate",
            realm,
            "HTTP WWW-Authenticate header",
        );
    }
    if let Some(title) = title(&reply[head.body_at.min(reply.len())..]) {
        id.push(Field::Detail, "title", title, "HTML <title> of /");
    }
    Ok(id)
}

/// Whether enough arrived: the title is closed (or the server closes, which ends the read).
fn done(buf: &[u8]) -> bool {
    find(&buf.to_ascii_lowercase(), b"</title").is_some()
}

/// Sends `GET /` and reads the head and the start of the body.
pub async fn probe(session: &mut TcpSession<'_>) -> Result<Identification, ProbeError> {
    session.send(&get_root(&session.peer().to_string())).await?;
    Ok(parse(&session.read_banner(done).await?)?)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::discovery::wire::fuzz;

    const REPLY: &[u8] = b"HTTP/1.0 200 OK\r\nServer: SimpleHTTP/0.6 Python/3.11.7\r\nContent-type: text/html\r\n\r\n<html><head><TITLE>AXIS Q1615 Network Camera</title></head></html>";

    #[test]
    fn parses_server_and_title() {
        let id = parse(REPLY).unwrap();
        assert_eq!(id.detail("server"), Some("SimpleHTTP/0.6 Python/3.11.7"));
        assert_eq!(id.detail("title"), Some("AXIS Q1615 Network Camera"));
        assert_eq!(id.auth, Auth::Unknown);
    }

    #[test]
    fn unauthorised_means_required() {
        let id =
            parse(b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"cam\"\r\n\r\n")
                .unwrap();
        assert_eq!(id.auth, Auth::Required);
    }

    #[test]
    fn bodies_are_cut_and_dechunked() {
        let reply = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n<a/>\r\n3;x=1\r\n<b>\r\n0\r\n\r\n";
        let head = parse_head(reply, "HTTP/").unwrap();
        assert_eq!(&*message_body(reply, &head), b"<a/><b>");
        let reply = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nabcd";
        let head = parse_head(reply, "HTTP/").unwrap();
        assert_eq!(&*message_body(reply, &head), b"ab");
        assert!(http_message_complete(reply));
        assert!(!http_message_complete(
            b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nab"
        ));
        assert!(rtsp_message_complete(
            b"RTSP/1.0 401 Unauthorized\r\nCSeq: 2\r\n\r\n"
        ));
        assert_eq!(dechunk(b"ffffffffffffffff\r\nab"), b"ab");
    }

    #[test]
    fn never_panics() {
        fuzz::no_panic(REPLY, parse);
        fuzz::no_panic(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n<a/>\r\n0\r\n\r\n",
            |b| parse_head(b, "HTTP/").map(|head| message_body(b, &head).len()),
        );
    }
}
