//! The RDP probe: which security protocol this host's Remote Desktop server selects, and, when
//! it selects TLS (alone, or under CredSSP/NLA), the TLS facts of the same connection.
//!
//! Written by hand: the probe needs the first exchange of an RDP connection only, the X.224
//! Connection Request carrying an RDP Negotiation Request and its Connection Confirm. The RDP
//! crates on crates.io (IronRDP's `ironrdp-connector`, `rdp-rs`) drive a whole client session
//! (MCS, licensing, CredSSP with credentials), which a read-only probe must never start; the
//! two frames below are 19 bytes out and at most 19 bytes back.
//!
//! ```text
//! Sent (MS-RDPBCGR 2.2.1.1 Client X.224 Connection Request PDU), 19 bytes:
//!   TPKT (RFC 1006 §6)   03 00 | 00 13            version 3, reserved, length 19 (big-endian)
//!   X.224 CR (ISO 8073 13.3)
//!                        0e                        length indicator: 14 bytes follow in the TPDU
//!                        e0                        CR, credit 0
//!                        00 00 | 00 00 | 00        DST-REF, SRC-REF, class 0
//!   RDP_NEG_REQ (2.2.1.1.1)
//!                        01 | 00 | 08 00           type 1, flags 0, length 8 (little-endian)
//!                        0b 00 00 00               requestedProtocols SSL 1 | HYBRID 2 | HYBRID_EX 8
//!   (no cookie or routing token: they are optional and name a user)
//!
//! Received (2.2.1.2 Server X.224 Connection Confirm PDU):
//!   TPKT                 03 00 | LL LL             length of the whole PDU
//!   X.224 CC             LI | d0 | DST-REF(2) | SRC-REF(2) | class(1)
//!   then either nothing (a pre-RDP-5.2 server: standard RDP security), or 8 bytes:
//!   RDP_NEG_RSP (2.2.1.2.1)  02 | flags | 08 00 | selectedProtocol u32 LE
//!                            0 standard RDP security, 1 TLS, 2 CredSSP (NLA),
//!                            4 RDSTLS, 8 CredSSP with Early User Authorization
//!   RDP_NEG_FAILURE (2.2.1.2.2) 03 | flags | 08 00 | failureCode u32 LE
//!                            1 SSL required, 2 SSL not allowed, 3 no certificate,
//!                            4 inconsistent flags, 5 HYBRID required, 6 SSL with user auth
//! ```
//!
//! After a TLS-based selection the client's next bytes are a TLS ClientHello on the same TCP
//! connection (2.2.1.2.1, "the client MUST... initiate a TLS handshake"); the probe does that
//! handshake with the recording client and closes, before any CredSSP message. Standard RDP
//! security is RC4 with a key the server signs with a well-known or self-made key and no server
//! authentication: not transit encryption in the K2/K3 sense, so it counts as plaintext.
//!
//! [`parse_confirm`] is pure (fuzzed in `agent/fuzz`); [`probe`] does the I/O: one connection,
//! one request, one read bounded to [`MAX_CONFIRM`] bytes, each step with the caller's timeout.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

use super::tls_probe::{self, Encryption, ServiceVerdict};

/// The registered RDP port; the probe registry (`client_first`) sends the request only there.
pub const RDP_PORT: u16 = 3389;
/// Standard RDP security; `selectedProtocol` values of 2.2.1.2.1.
pub const PROTOCOL_RDP: u32 = 0;
/// TLS 1.x (Enhanced RDP Security).
pub const PROTOCOL_SSL: u32 = 1;
/// CredSSP (Network Level Authentication) over TLS.
pub const PROTOCOL_HYBRID: u32 = 2;
/// RDSTLS (server redirection with credentials), over TLS.
pub const PROTOCOL_RDSTLS: u32 = 4;
/// CredSSP with the Early User Authorization Result PDU, over TLS.
pub const PROTOCOL_HYBRID_EX: u32 = 8;
/// The protocols asked for: every TLS-based one a server may pick without credentials.
const REQUESTED: u32 = PROTOCOL_SSL | PROTOCOL_HYBRID | PROTOCOL_HYBRID_EX;
/// A Connection Confirm is 11 bytes, 19 with negotiation data; 64 leaves room for a server
/// that pads, and more means it is not one.
pub const MAX_CONFIRM: usize = 64;

/// The Connection Request with an RDP Negotiation Request (see the module header).
pub fn connection_request() -> [u8; 19] {
    let p = REQUESTED.to_le_bytes();
    [
        0x03, 0x00, 0x00, 0x13, // TPKT
        0x0E, 0xE0, 0x00, 0x00, 0x00, 0x00, 0x00, // X.224 CR
        0x01, 0x00, 0x08, 0x00, p[0], p[1], p[2], p[3], // RDP_NEG_REQ
    ]
}

/// What a Connection Confirm says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Negotiation {
    /// RDP_NEG_RSP (or no negotiation data: standard RDP security).
    Selected {
        /// `selectedProtocol`.
        protocol: u32,
        /// The RDP_NEG_RSP flags byte (0 when absent).
        flags: u8,
    },
    /// RDP_NEG_FAILURE with its `failureCode`.
    Failure(u32),
}

/// Why bytes are not a Connection Confirm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfirmError {
    /// Fewer bytes than the TPKT length says (or than a header).
    Truncated,
    /// Not TPKT version 3, not an X.224 CC, or inconsistent lengths.
    NotX224(String),
    /// Negotiation data of an unknown type.
    UnknownNegotiation(u8),
}

impl std::fmt::Display for ConfirmError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfirmError::Truncated => write!(f, "truncated X.224 Connection Confirm"),
            ConfirmError::NotX224(why) => write!(f, "not an X.224 Connection Confirm: {why}"),
            ConfirmError::UnknownNegotiation(t) => {
                write!(f, "RDP negotiation data of unknown type {t:#04x}")
            }
        }
    }
}

/// Parses one Connection Confirm (MS-RDPBCGR 2.2.1.2); bytes after the TPKT length are ignored.
pub fn parse_confirm(bytes: &[u8]) -> Result<Negotiation, ConfirmError> {
    let header = bytes.get(..4).ok_or(ConfirmError::Truncated)?;
    if header[0] != 0x03 {
        return Err(ConfirmError::NotX224(format!(
            "TPKT version {:#04x}, not 3",
            header[0]
        )));
    }
    let length = usize::from(u16::from_be_bytes([header[2], header[3]]));
    if length < 11 {
        return Err(ConfirmError::NotX224(format!("TPKT length {length}")));
    }
    let pdu = bytes.get(..length).ok_or(ConfirmError::Truncated)?;
    let indicator = usize::from(pdu[4]);
    // The length indicator counts the TPDU header after itself; it must fit the TPKT.
    if indicator < 6 || 5 + indicator > length {
        return Err(ConfirmError::NotX224(format!(
            "length indicator {indicator} in a {length} byte TPKT"
        )));
    }
    if pdu[5] & 0xF0 != 0xD0 {
        return Err(ConfirmError::NotX224(format!(
            "TPDU code {:#04x}, not CC (0xd0)",
            pdu[5]
        )));
    }
    let negotiation = &pdu[11..5 + indicator];
    if negotiation.is_empty() {
        return Ok(Negotiation::Selected {
            protocol: PROTOCOL_RDP,
            flags: 0,
        });
    }
    let [kind, flags, l0, l1, v0, v1, v2, v3] = negotiation else {
        return Err(ConfirmError::NotX224(format!(
            "{} bytes of negotiation data, not 8",
            negotiation.len()
        )));
    };
    if u16::from_le_bytes([*l0, *l1]) != 8 {
        return Err(ConfirmError::NotX224(
            "negotiation data length is not 8".into(),
        ));
    }
    let value = u32::from_le_bytes([*v0, *v1, *v2, *v3]);
    match kind {
        0x02 => Ok(Negotiation::Selected {
            protocol: value,
            flags: *flags,
        }),
        0x03 => Ok(Negotiation::Failure(value)),
        other => Err(ConfirmError::UnknownNegotiation(*other)),
    }
}

/// The name of a `selectedProtocol` value, as recorded.
pub fn protocol_name(protocol: u32) -> &'static str {
    match protocol {
        PROTOCOL_RDP => "rdp_standard",
        PROTOCOL_SSL => "tls",
        PROTOCOL_HYBRID => "credssp",
        PROTOCOL_RDSTLS => "rdstls",
        PROTOCOL_HYBRID_EX => "credssp_early_user_auth",
        _ => "unknown",
    }
}

/// The meaning of a `failureCode` (2.2.1.2.2).
pub fn failure_name(code: u32) -> &'static str {
    match code {
        1 => "SSL_REQUIRED_BY_SERVER",
        2 => "SSL_NOT_ALLOWED_BY_SERVER",
        3 => "SSL_CERT_NOT_ON_SERVER",
        4 => "INCONSISTENT_FLAGS",
        5 => "HYBRID_REQUIRED_BY_SERVER",
        6 => "SSL_WITH_USER_AUTH_REQUIRED_BY_SERVER",
        _ => "unknown failure code",
    }
}

/// The RDP facts of one listener, recorded in the `service` observation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RdpFacts {
    /// The protocols the probe asked for (`requestedProtocols`).
    pub requested_protocols: u32,
    /// The server's `selectedProtocol`, absent after a negotiation failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selected_protocol: Option<u32>,
    /// `rdp_standard`, `tls`, `credssp`, `rdstls`, `credssp_early_user_auth`, or the failure.
    pub security_protocol: String,
    /// Network Level Authentication: the server chose CredSSP, so a user authenticates before
    /// a session (and its login screen) exists. A fact for `mfa` evidence; NLA alone is one
    /// factor.
    pub nla: bool,
    /// The RDP_NEG_FAILURE code and its name, when the server refused the request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
}

/// The verdict of an answered negotiation, before any TLS handshake.
pub fn verdict_for(target: SocketAddr, negotiation: Negotiation) -> ServiceVerdict {
    let (encryption, facts, note) = match negotiation {
        Negotiation::Selected { protocol, .. } => {
            let facts = RdpFacts {
                requested_protocols: REQUESTED,
                selected_protocol: Some(protocol),
                security_protocol: protocol_name(protocol).into(),
                nla: matches!(protocol, PROTOCOL_HYBRID | PROTOCOL_HYBRID_EX),
                failure: None,
            };
            match protocol {
                PROTOCOL_RDP => (
                    Encryption::Plaintext,
                    facts,
                    "standard RDP security: RC4 without server authentication, even though \
                     TLS was offered"
                        .to_string(),
                ),
                PROTOCOL_SSL | PROTOCOL_HYBRID | PROTOCOL_RDSTLS | PROTOCOL_HYBRID_EX => {
                    (Encryption::Encrypted, facts, String::new())
                }
                other => (
                    Encryption::Unknown,
                    facts,
                    format!("selectedProtocol {other} is not one the probe asked for"),
                ),
            }
        }
        Negotiation::Failure(code) => {
            let (encryption, security) = match code {
                // The server refuses TLS: only standard RDP security is left.
                2 => (Encryption::Plaintext, "rdp_standard"),
                // TLS, or CredSSP over TLS, is all the server accepts.
                1 | 5 | 6 => (Encryption::Encrypted, "tls"),
                _ => (Encryption::Unknown, "unknown"),
            };
            let facts = RdpFacts {
                requested_protocols: REQUESTED,
                selected_protocol: None,
                security_protocol: security.into(),
                nla: code == 5,
                failure: Some(format!("{code} {}", failure_name(code))),
            };
            (
                encryption,
                facts,
                format!("negotiation failure {code} ({})", failure_name(code)),
            )
        }
    };
    let mut verdict = ServiceVerdict::new(target, encryption, "rdp");
    verdict.rdp = Some(facts);
    verdict.note = note;
    verdict
}

/// Whether the selection continues with a TLS handshake on the same connection.
fn tls_follows(negotiation: Negotiation) -> bool {
    matches!(
        negotiation,
        Negotiation::Selected {
            protocol: PROTOCOL_SSL | PROTOCOL_HYBRID | PROTOCOL_RDSTLS | PROTOCOL_HYBRID_EX,
            ..
        }
    )
}

/// Probes `target` as RDP: `None` when the connection failed or the answer is not an X.224
/// Connection Confirm (the generic steps then follow).
pub async fn probe(target: SocketAddr, wait: Duration) -> Option<ServiceVerdict> {
    let mut stream = timeout(wait, TcpStream::connect(target)).await.ok()?.ok()?;
    timeout(wait, stream.write_all(&connection_request()))
        .await
        .ok()?
        .ok()?;
    let reply = read_confirm(&mut stream, wait).await;
    let negotiation = parse_confirm(&reply).ok()?;
    let mut verdict = verdict_for(target, negotiation);
    if tls_follows(negotiation) {
        match tls_probe::tls_handshake_on(target, stream).await {
            Some(tls) => verdict.tls = Some(tls),
            None => {
                verdict.note = "the server selected a TLS-based protocol, but the TLS \
                                handshake did not complete"
                    .into();
            }
        }
    }
    Some(verdict)
}

/// Reads until the TPKT length is complete, [`MAX_CONFIRM`] bytes, EOF or `wait`.
async fn read_confirm(stream: &mut TcpStream, wait: Duration) -> Vec<u8> {
    let mut collected = Vec::new();
    let deadline = tokio::time::Instant::now() + wait;
    while collected.len() < MAX_CONFIRM {
        let wanted = match collected.get(2..4) {
            Some(l) => usize::from(u16::from_be_bytes([l[0], l[1]])).min(MAX_CONFIRM),
            None => 4,
        };
        if collected.len() >= wanted {
            break;
        }
        let mut buffer = vec![0u8; wanted - collected.len()];
        match tokio::time::timeout_at(deadline, stream.read(&mut buffer)).await {
            Ok(Ok(n)) if n > 0 => collected.extend_from_slice(&buffer[..n]),
            _ => break,
        }
    }
    collected
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // In tests an unwrap that fails is the failing assertion.
mod tests {
    use super::*;

    /// What xrdp 0.9.21 answered with `security_layer=tls` (captured from the test peer).
    const XRDP_TLS: &str = "030000130ed000001234000201080001000000";
    const XRDP_RDP: &str = "030000130ed000001234000201080000000000";

    fn hex(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn the_request_is_the_spec_example_with_our_protocols() {
        // MS-RDPBCGR 4.1.1 shows the same frame with a cookie; without it the TPKT is 19 bytes.
        assert_eq!(
            connection_request().to_vec(),
            hex("030000130ee00000000000010008000b000000")
        );
    }

    #[test]
    fn xrdp_answers_parse() {
        assert_eq!(
            parse_confirm(&hex(XRDP_TLS)),
            Ok(Negotiation::Selected {
                protocol: PROTOCOL_SSL,
                flags: 1
            })
        );
        assert_eq!(
            parse_confirm(&hex(XRDP_RDP)),
            Ok(Negotiation::Selected {
                protocol: PROTOCOL_RDP,
                flags: 1
            })
        );
        // A Windows server with NLA (MS-RDPBCGR 4.1.2 with selectedProtocol 2).
        let nla = hex("030000130ed00000123400020f080002000000");
        let v = verdict_for(
            "127.0.0.1:3389".parse().unwrap(),
            parse_confirm(&nla).unwrap(),
        );
        assert_eq!(v.encryption, Encryption::Encrypted);
        assert!(v.rdp.as_ref().unwrap().nla);
        assert_eq!(v.rdp.unwrap().security_protocol, "credssp");
    }

    #[test]
    fn old_servers_and_failures() {
        // No negotiation data: a server older than RDP 5.2, standard RDP security.
        let old = hex("0300000b06d00000123400");
        let v = verdict_for("127.0.0.1:1".parse().unwrap(), parse_confirm(&old).unwrap());
        assert_eq!(v.encryption, Encryption::Plaintext);
        let refused = hex("030000130ed000001234000300080002000000");
        assert_eq!(parse_confirm(&refused), Ok(Negotiation::Failure(2)));
        let v = verdict_for("127.0.0.1:1".parse().unwrap(), Negotiation::Failure(2));
        assert_eq!(v.encryption, Encryption::Plaintext);
        assert_eq!(
            v.rdp.unwrap().failure.as_deref(),
            Some("2 SSL_NOT_ALLOWED_BY_SERVER")
        );
        let v = verdict_for("127.0.0.1:1".parse().unwrap(), Negotiation::Failure(99));
        assert_eq!(v.encryption, Encryption::Unknown);
    }

    #[test]
    fn other_protocols_are_not_x224() {
        assert!(parse_confirm(b"HTTP/1.0 400 Bad Request\r\n").is_err());
        assert!(parse_confirm(b"SSH-2.0-OpenSSH_9.2\r\n").is_err());
        assert_eq!(parse_confirm(&[3, 0, 0]), Err(ConfirmError::Truncated));
        assert_eq!(
            parse_confirm(&hex("030000130ed0000012340002010800")),
            Err(ConfirmError::Truncated)
        );
        // A CR echoed back is not a CC.
        assert!(parse_confirm(&connection_request()).is_err());
        // A length indicator beyond the TPKT.
        assert!(parse_confirm(&hex("0300000bffd00000123400")).is_err());
        assert_eq!(
            parse_confirm(&hex("030000130ed000001234000901080001000000")),
            Err(ConfirmError::UnknownNegotiation(9))
        );
    }

    #[test]
    fn hostile_replies_never_panic() {
        let mut seed = 0x9e37_79b9_u32;
        for len in 0..80 {
            let mut bytes = hex(XRDP_TLS);
            bytes.resize(len, 0);
            for b in &mut bytes {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                if seed.is_multiple_of(3) {
                    *b = seed.to_le_bytes()[1];
                }
            }
            let _ = parse_confirm(&bytes);
        }
    }
}
