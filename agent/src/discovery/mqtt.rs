//! MQTT authentication check: CONNECT without credentials, read CONNACK, DISCONNECT.
//!
//! Follows MQTT 3.1.1 (OASIS, 2014) §3.1 CONNECT, §3.2 CONNACK, §3.14 DISCONNECT; tested against
//! Debian's mosquitto 2.0 with `allow_anonymous true|false`.
//!
//! ```text
//! CONNECT     0x10, remaining length (varint)
//!             00 04 'M' 'Q' 'T' 'T'   protocol name
//!             04                      protocol level (3.1.1)
//!             02                      connect flags: clean session only (no user, no password, no will)
//!             00 1e                   keep alive, seconds
//!             00 nn <client id>       a random id: reusing a real client's id would disconnect it
//! CONNACK     0x20, 0x02, ack flags, return code
//!             0 accepted (anonymous allowed) | 4 bad user name or password | 5 not authorised
//! DISCONNECT  0xe0 0x00               sent only after an accepted CONNECT
//! ```
//!
//! Hand-written instead of an MQTT client crate: we need three fixed packets and must never
//! subscribe or publish.

use super::identity::{Auth, Field, Identification, Transit};
use super::session::{Frame, ProbeError, TcpSession};
use super::wire::{ParseError, Reader};

/// Protocol name in reports.
pub const PROTOCOL: &str = "mqtt";

// BEGIN REQUEST BUILDERS (scanned by the forbidden-function test in registry.rs)
const CONNECT: u8 = 0x10;
const DISCONNECT: [u8; 2] = [0xE0, 0x00];

/// CONNECT without user name, password or will, with `client_id`.
pub fn connect(client_id: &str) -> Vec<u8> {
    let id = client_id.as_bytes();
    let id_len = u16::try_from(id.len()).unwrap_or(u16::MAX);
    let id = &id[..usize::from(id_len)];
    let mut body = Vec::with_capacity(12 + id.len());
    body.extend_from_slice(&[0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 30]);
    body.extend_from_slice(&id_len.to_be_bytes());
    body.extend_from_slice(id);
    let mut frame = vec![CONNECT];
    push_remaining_length(&mut frame, body.len());
    frame.extend_from_slice(&body);
    frame
}

/// DISCONNECT.
pub fn disconnect() -> Vec<u8> {
    DISCONNECT.to_vec()
}
// END REQUEST BUILDERS

fn push_remaining_length(out: &mut Vec<u8>, mut len: usize) {
    loop {
        let byte = u8::try_from(len % 128).unwrap_or(0);
        len /= 128;
        if len == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// A random client id, so we never take over a real client's session.
pub fn random_client_id() -> String {
    format!("tillsyn-{:016x}", rand::random::<u64>())
}

/// The requests a probe sends (for `--dry-run`; the client id differs per run).
pub fn plan() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("CONNECT without credentials", connect(&random_client_id())),
        ("DISCONNECT (only after CONNACK 0)", disconnect()),
    ]
}

/// Fixed header + varint remaining length.
pub fn framing(buf: &[u8]) -> Frame {
    let mut len = 0usize;
    for (i, byte) in buf.iter().enumerate().skip(1).take(4) {
        len |= usize::from(byte & 0x7F) << (7 * (i - 1));
        if byte & 0x80 == 0 {
            return Frame::Length(1 + i + len);
        }
    }
    if buf.len() > 4 {
        Frame::Invalid
    } else {
        Frame::Incomplete
    }
}

/// Parses a CONNACK into the auth verdict.
pub fn parse(frame: &[u8]) -> Result<Identification, ParseError> {
    let mut r = Reader::new(frame);
    let kind = r.u8()?;
    if kind != 0x20 {
        return Err(ParseError::Unexpected {
            field: "MQTT packet type (want CONNACK)",
            value: u64::from(kind),
        });
    }
    let len = r.u8()?;
    if len != 2 {
        return Err(ParseError::Unexpected {
            field: "CONNACK remaining length",
            value: u64::from(len),
        });
    }
    r.skip(1)?; // acknowledge flags
    let code = r.u8()?;
    let (auth, reason) = match code {
        0 => (
            Auth::None,
            "CONNACK 0: the broker accepted a CONNECT without credentials".to_string(),
        ),
        4 | 5 => (
            Auth::Required,
            format!("CONNACK {code}: the broker refused a CONNECT without credentials"),
        ),
        other => (
            Auth::Unknown,
            format!("CONNACK {other}: refused for a reason other than credentials"),
        ),
    };
    let mut id = Identification {
        protocol: PROTOCOL,
        fields: Vec::new(),
        transit: Transit::Plaintext,
        auth,
        auth_reason: reason,
    };
    id.push(
        Field::Detail,
        "connack_return_code",
        code.to_string(),
        "CONNACK return code",
    );
    Ok(id)
}

/// Connects anonymously and reports whether the broker let us in.
pub async fn probe(session: &mut TcpSession<'_>) -> Result<Identification, ProbeError> {
    session.send(&connect(&random_client_id())).await?;
    let id = parse(&session.read_frame(framing).await?)?;
    if id.auth == Auth::None {
        // Leave cleanly so the broker does not log an abnormal disconnect or fire a will.
        session.send(&disconnect()).await?;
    }
    Ok(id)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::discovery::wire::fuzz;

    #[test]
    fn connect_layout() {
        let frame = connect("ab");
        assert_eq!(
            frame,
            [
                0x10, 14, 0, 4, b'M', b'Q', b'T', b'T', 4, 2, 0, 30, 0, 2, b'a', b'b'
            ]
        );
        assert_eq!(framing(&frame), Frame::Length(frame.len()));
        assert_ne!(random_client_id(), random_client_id());
    }

    #[test]
    fn connack_verdicts() {
        assert_eq!(parse(&[0x20, 2, 0, 0]).unwrap().auth, Auth::None);
        assert_eq!(parse(&[0x20, 2, 0, 5]).unwrap().auth, Auth::Required);
        assert_eq!(parse(&[0x20, 2, 0, 4]).unwrap().auth, Auth::Required);
        assert_eq!(parse(&[0x20, 2, 0, 3]).unwrap().auth, Auth::Unknown);
        assert!(parse(&[0x30, 2, 0, 0]).is_err());
    }

    #[test]
    fn never_panics() {
        fuzz::no_panic(&[0x20, 2, 0, 0], parse);
        fuzz::no_panic(&[0x20, 0x82, 0x01], |b| Ok::<_, ()>(framing(b)));
    }
}
