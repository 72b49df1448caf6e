//! Naming a plaintext protocol from what a server says first, or answers to a harmless request.
//!
//! Pure functions over bytes; the socket work is in `tls_probe`. Formats, by source:
//! - SSH: RFC 4253 §4.2, `SSH-protoversion-softwareversion\r\n`.
//! - FTP (RFC 959 §4.2) and SMTP (RFC 5321 §4.2) both greet with `220`; SMTP answers `EHLO` with
//!   `250` lines, one of which is `STARTTLS` when offered (RFC 3207); FTP answers `500`/`502`.
//! - POP3 `+OK` (RFC 1939), IMAP `* OK` (RFC 9051 §7.1), VNC `RFB 003.008\n` (RFC 6143 §7.1.1).
//! - Telnet: option negotiation, IAC (255) followed by WILL/WONT/DO/DONT (251-254), RFC 854.
//! - MySQL: protocol::HandshakeV10 (MySQL source `sql/auth/sql_authentication.cc`):
//!
//! ```text
//!   [len: 3 LE][seq: 1][0x0a][server version ... 0x00][thread id: 4][auth data: 8][0x00]
//!   [capability flags, low 16 bits LE]   CLIENT_SSL = 0x0800
//! ```
//! - HTTP: a response to `HEAD / HTTP/1.0` starts with `HTTP/` (RFC 9112 §4).
//!
//! This module must not decide on TLS; a server that says nothing is not classified here.

use std::fmt::Write as _;

/// What a greeting tells about the protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Greeting {
    /// SSH: an encrypted transport.
    Ssh,
    /// `220`: FTP or SMTP; an `EHLO` decides.
    Code220,
    /// POP3, with whether the greeting advertises STLS (it rarely does; CAPA would).
    Pop3,
    /// IMAP, with whether the greeting's capability list names STARTTLS.
    Imap {
        /// `STARTTLS` in the greeting's capability list.
        starttls: bool,
    },
    /// Telnet option negotiation.
    Telnet,
    /// A MySQL handshake; `ssl` is the CLIENT_SSL capability (TLS on request).
    Mysql {
        /// Server version string.
        version: String,
        /// The server offers TLS after the handshake.
        ssl: bool,
    },
    /// VNC's RFB handshake.
    Vnc,
    /// Something else.
    Unrecognised,
}

/// Classifies the first bytes a server sent unprompted.
pub fn classify_greeting(bytes: &[u8]) -> Greeting {
    if bytes.starts_with(b"SSH-") {
        return Greeting::Ssh;
    }
    if bytes.len() >= 2 && bytes[0] == 0xFF && (251..=254).contains(&bytes[1]) {
        return Greeting::Telnet;
    }
    if let Some(mysql) = parse_mysql_handshake(bytes) {
        return mysql;
    }
    if bytes.starts_with(b"220") {
        return Greeting::Code220;
    }
    if bytes.starts_with(b"+OK") {
        return Greeting::Pop3;
    }
    if bytes.starts_with(b"* OK") || bytes.starts_with(b"* PREAUTH") {
        let first = first_line(bytes).to_ascii_uppercase();
        return Greeting::Imap {
            starttls: first.contains("STARTTLS"),
        };
    }
    if bytes.starts_with(b"RFB ") {
        return Greeting::Vnc;
    }
    Greeting::Unrecognised
}

fn parse_mysql_handshake(bytes: &[u8]) -> Option<Greeting> {
    let length = usize::from(*bytes.first()?)
        | usize::from(*bytes.get(1)?) << 8
        | usize::from(*bytes.get(2)?) << 16;
    let (sequence, protocol) = (*bytes.get(3)?, *bytes.get(4)?);
    if sequence != 0 || protocol != 0x0A || length < 20 {
        return None;
    }
    let body = bytes.get(5..)?;
    let end = body.iter().position(|&b| b == 0)?;
    let version = std::str::from_utf8(&body[..end]).ok()?;
    if version.is_empty() || !version.bytes().all(|b| b.is_ascii_graphic()) {
        return None;
    }
    // After the NUL: thread id (4), auth data part 1 (8), filler (1), capabilities (2).
    let caps_at = end + 1 + 4 + 8 + 1;
    let caps = u16::from_le_bytes([*body.get(caps_at)?, *body.get(caps_at + 1)?]);
    Some(Greeting::Mysql {
        version: version.to_string(),
        ssl: caps & 0x0800 != 0,
    })
}

/// What an `EHLO` answer says: SMTP (with or without STARTTLS), or not SMTP at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EhloReply {
    /// `250` lines; `starttls` when one of them is `STARTTLS`.
    Smtp {
        /// STARTTLS offered.
        starttls: bool,
    },
    /// Anything else after a `220` greeting: FTP rejects EHLO.
    NotSmtp,
}

/// Classifies the reply to `EHLO`.
pub fn classify_ehlo(bytes: &[u8]) -> EhloReply {
    let text = String::from_utf8_lossy(bytes);
    if !text.starts_with("250") {
        return EhloReply::NotSmtp;
    }
    let starttls = text.lines().any(|line| {
        line.get(4..)
            .is_some_and(|kw| kw.trim().eq_ignore_ascii_case("STARTTLS"))
    });
    EhloReply::Smtp { starttls }
}

/// An HTTP response to `HEAD`: the status line and the `Server` header, if any.
pub fn parse_http_response(bytes: &[u8]) -> Option<(String, Option<String>)> {
    if !bytes.starts_with(b"HTTP/") {
        return None;
    }
    let text = String::from_utf8_lossy(bytes);
    let mut lines = text.lines();
    let status = lines.next()?.trim().to_string();
    let server = lines
        .take_while(|line| !line.trim().is_empty())
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.trim()
                .eq_ignore_ascii_case("server")
                .then(|| value.trim().to_string())
        });
    Some((status, server))
}

/// The first line of a banner, printable and at most 200 characters, for evidence.
pub fn first_line(bytes: &[u8]) -> String {
    let end = bytes
        .iter()
        .position(|&b| b == b'\n')
        .unwrap_or(bytes.len());
    printable(&bytes[..end])
}

/// Bytes as text for evidence: ASCII printable kept, the rest escaped, cut at 200 characters.
pub fn printable(bytes: &[u8]) -> String {
    let mut out = String::new();
    for &b in bytes {
        if out.len() >= 200 {
            out.push('…');
            break;
        }
        match b {
            b'\r' => {}
            0x20..=0x7E => out.push(char::from(b)),
            // Writing to a String cannot fail.
            _ => {
                let _ = write!(out, "\\x{b:02x}");
            }
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // In tests an unwrap that fails is the failing assertion.
mod tests {
    use super::*;

    #[test]
    fn greetings_are_named() {
        assert_eq!(
            classify_greeting(b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n"),
            Greeting::Ssh
        );
        assert_eq!(
            classify_greeting(b"220 mail.example ESMTP Postfix\r\n"),
            Greeting::Code220
        );
        assert_eq!(
            classify_greeting(b"220 (vsFTPd 3.0.3)\r\n"),
            Greeting::Code220
        );
        assert_eq!(
            classify_greeting(&[0xFF, 0xFD, 0x18, 0xFF, 0xFD, 0x20]),
            Greeting::Telnet
        );
        assert_eq!(classify_greeting(b"+OK Dovecot ready.\r\n"), Greeting::Pop3);
        assert_eq!(
            classify_greeting(b"* OK [CAPABILITY IMAP4rev1 STARTTLS AUTH=PLAIN] ready\r\n"),
            Greeting::Imap { starttls: true }
        );
        assert_eq!(classify_greeting(b"RFB 003.008\n"), Greeting::Vnc);
        assert_eq!(classify_greeting(b""), Greeting::Unrecognised);
        assert_eq!(classify_greeting(&[0xFF]), Greeting::Unrecognised);
    }

    #[test]
    fn mysql_handshake_and_its_ssl_flag() {
        // A captured MariaDB 10.11 greeting, shortened after the capability flags.
        let mut packet = vec![0x5b, 0, 0, 0, 0x0a];
        packet.extend_from_slice(b"10.11.6-MariaDB-0+deb12u1\0");
        packet.extend_from_slice(&[3, 0, 0, 0]);
        packet.extend_from_slice(b"abcdefgh\0");
        packet.extend_from_slice(&[0xfe, 0xff]);
        assert_eq!(
            classify_greeting(&packet),
            Greeting::Mysql {
                version: "10.11.6-MariaDB-0+deb12u1".into(),
                ssl: true
            }
        );
        packet.truncate(packet.len() - 2);
        assert_eq!(
            classify_greeting(&packet),
            Greeting::Unrecognised,
            "truncated is not a guess"
        );
    }

    #[test]
    fn ehlo_replies() {
        assert_eq!(
            classify_ehlo(
                b"250-mail.example\r\n250-PIPELINING\r\n250-STARTTLS\r\n250 8BITMIME\r\n"
            ),
            EhloReply::Smtp { starttls: true }
        );
        assert_eq!(
            classify_ehlo(b"250 mail.example\r\n"),
            EhloReply::Smtp { starttls: false }
        );
        assert_eq!(
            classify_ehlo(b"500 Unknown command.\r\n"),
            EhloReply::NotSmtp
        );
    }

    #[test]
    fn http_status_and_server() {
        let (status, server) =
            parse_http_response(b"HTTP/1.0 200 OK\r\nServer: SimpleHTTP/0.6 Python/3.11.2\r\n\r\n")
                .unwrap();
        assert_eq!(status, "HTTP/1.0 200 OK");
        assert_eq!(server.as_deref(), Some("SimpleHTTP/0.6 Python/3.11.2"));
        assert!(parse_http_response(b"\x15\x03\x03\x00\x02\x02\x46").is_none());
    }

    #[test]
    fn evidence_text_is_bounded_and_escaped() {
        assert_eq!(printable(b"a\x00b\r"), "a\\x00b");
        assert!(printable(&[b'x'; 10_000]).len() < 210);
    }
}
