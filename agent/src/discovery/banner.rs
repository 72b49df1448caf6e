//! Banner grabbing for services that speak first: SSH (RFC 4253 §4.2 identification string),
//! FTP (RFC 959 §4.2 `220` greeting) and Telnet (RFC 854; option negotiation bytes, then a
//! login prompt). Nothing is sent: the connect is the only packet, the reply is read until a
//! line ends or the cap is hit.
//!
//! ```text
//! SSH     SSH-<protoversion>-<softwareversion>[ SP comments] CR LF
//! FTP     220[- or SP]<text> CR LF
//! Telnet  IAC (0xff) DO/DONT/WILL/WONT (0xfb-0xfe) <option> ..., then text such as "login: "
//! ```
//!
//! Telnet option negotiation is never answered (that would be sending), so a server that waits
//! for answers before its greeting (GNU inetutils telnetd) is identified by the negotiation
//! bytes alone, with an empty banner.
//!
//! Verdicts: FTP and Telnet are plaintext and ask for a password (auth unknown until tried —
//! we never try); SSH is encrypted (reported as `tls`, the encrypted-transit verdict) with
//! authentication required by the protocol. Tested against OpenSSH's sshd, pyftpdlib and
//! busybox telnetd.

use super::identity::{Auth, Field, Identification, Transit};
use super::session::{ProbeError, TcpSession};
use super::wire::{ParseError, text};

/// Protocol names in reports.
pub const SSH: &str = "ssh";
/// FTP.
pub const FTP: &str = "ftp";
/// Telnet.
pub const TELNET: &str = "telnet";

// BEGIN REQUEST BUILDERS (scanned by the forbidden-function test in registry.rs)
// Banner probes build no request at all.
// END REQUEST BUILDERS

const TELNET_IAC: u8 = 0xFF;

/// The first line of `bytes`, printable.
fn first_line(bytes: &[u8]) -> String {
    let end = bytes
        .iter()
        .position(|b| *b == b'\n')
        .unwrap_or(bytes.len());
    text(&bytes[..end])
}

/// Parses an SSH identification string.
pub fn parse_ssh(banner: &[u8]) -> Result<Identification, ParseError> {
    // RFC 4253 allows other lines before the identification string.
    let line = banner
        .split(|b| *b == b'\n')
        .map(text)
        .find(|l| l.starts_with("SSH-"))
        .ok_or(ParseError::Unexpected {
            field: "SSH identification",
            value: u64::from(banner.first().copied().unwrap_or(0)),
        })?;
    let mut id = Identification {
        protocol: SSH,
        fields: Vec::new(),
        transit: Transit::Tls,
        auth: Auth::Required,
        auth_reason: "SSH always authenticates users; methods were not probed".to_string(),
    };
    let software = line.splitn(3, '-').nth(2).unwrap_or_default().to_string();
    id.push(
        Field::Detail,
        "banner",
        line.clone(),
        "SSH identification string",
    );
    id.push(
        Field::Detail,
        "software",
        software,
        "SSH identification softwareversion",
    );
    Ok(id)
}

/// Parses an FTP greeting.
pub fn parse_ftp(banner: &[u8]) -> Result<Identification, ParseError> {
    let line = first_line(banner);
    if !line.starts_with("220") {
        return Err(ParseError::Unexpected {
            field: "FTP greeting code",
            value: u64::from(banner.first().copied().unwrap_or(0)),
        });
    }
    let mut id = Identification {
        protocol: FTP,
        fields: Vec::new(),
        transit: Transit::Plaintext,
        auth: Auth::Unknown,
        auth_reason: "FTP greeting only; anonymous login was not tried".to_string(),
    };
    id.push(
        Field::Detail,
        "banner",
        line[3..].trim_start_matches(['-', ' ']).to_string(),
        "FTP 220 greeting",
    );
    Ok(id)
}

/// Splits a Telnet stream into its text, dropping option negotiation; also says whether any
/// negotiation was seen.
fn strip_negotiation(banner: &[u8]) -> (Vec<u8>, bool) {
    let mut plain = Vec::new();
    let mut i = 0;
    let mut negotiated = false;
    while i < banner.len() {
        if banner[i] == TELNET_IAC {
            negotiated = true;
            // IAC + command (+ option for DO/DONT/WILL/WONT).
            i += if banner.get(i + 1).is_some_and(|c| (0xFB..=0xFE).contains(c)) {
                3
            } else {
                2
            };
            continue;
        }
        plain.push(banner[i]);
        i += 1;
    }
    (plain, negotiated)
}

/// Parses a Telnet greeting: negotiation bytes are skipped, the remaining text kept.
pub fn parse_telnet(banner: &[u8]) -> Result<Identification, ParseError> {
    let (plain, negotiated) = strip_negotiation(banner);
    let greeting = text(&plain);
    if !negotiated && greeting.is_empty() {
        return Err(ParseError::Empty);
    }
    let mut id = Identification {
        protocol: TELNET,
        fields: Vec::new(),
        transit: Transit::Plaintext,
        auth: Auth::Unknown,
        auth_reason: "Telnet greeting only; no login was tried".to_string(),
    };
    id.push(
        Field::Detail,
        "banner",
        greeting.chars().take(256).collect::<String>(),
        "Telnet greeting text",
    );
    Ok(id)
}

fn line_done(buf: &[u8]) -> bool {
    buf.contains(&b'\n')
}

/// Telnet servers negotiate, then print a prompt without a newline: stop at a prompt-ish end.
fn telnet_done(buf: &[u8]) -> bool {
    let (plain, _) = strip_negotiation(buf);
    let trimmed = plain.trim_ascii_end();
    trimmed.ends_with(b":")
        || trimmed.ends_with(b">")
        || trimmed.ends_with(b"#")
        || trimmed.ends_with(b"$")
}

/// Reads an SSH banner.
pub async fn probe_ssh(session: &mut TcpSession<'_>) -> Result<Identification, ProbeError> {
    Ok(parse_ssh(&session.read_banner(line_done).await?)?)
}

/// Reads an FTP greeting.
pub async fn probe_ftp(session: &mut TcpSession<'_>) -> Result<Identification, ProbeError> {
    Ok(parse_ftp(&session.read_banner(line_done).await?)?)
}

/// Reads a Telnet greeting (never answers the negotiation: the server falls back to defaults).
pub async fn probe_telnet(session: &mut TcpSession<'_>) -> Result<Identification, ProbeError> {
    Ok(parse_telnet(&session.read_banner(telnet_done).await?)?)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::discovery::wire::fuzz;

    #[test]
    fn parses_banners() {
        let ssh = parse_ssh(b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n").unwrap();
        assert_eq!(
            ssh.detail("software"),
            Some("OpenSSH_9.2p1 Debian-2+deb12u3")
        );
        let ftp = parse_ftp(b"220 pyftpdlib 2.2.0 ready.\r\n").unwrap();
        assert_eq!(ftp.detail("banner"), Some("pyftpdlib 2.2.0 ready."));
        let telnet =
            parse_telnet(b"\xff\xfd\x01\xff\xfd\x1f\xff\xfb\x01\r\nward4 login: ").unwrap();
        assert_eq!(telnet.detail("banner"), Some("ward4 login:"));
        assert!(parse_ftp(b"500 no\r\n").is_err());
    }

    #[test]
    fn never_panics() {
        fuzz::no_panic(b"SSH-2.0-OpenSSH_9.2p1\r\n", parse_ssh);
        fuzz::no_panic(b"220 ready\r\n", parse_ftp);
        fuzz::no_panic(b"\xff\xfd\x01\xff\xfb\x01login: ", parse_telnet);
    }
}
