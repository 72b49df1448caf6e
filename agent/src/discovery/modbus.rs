//! Modbus/TCP identification: Read Device Identification (function 0x2B, MEI type 0x0E).
//!
//! Follows the Modbus Application Protocol Specification V1.1b3 §6.21 and the Modbus Messaging
//! on TCP/IP Implementation Guide V1.0b §3.1.3 (MBAP header); cross-checked with nmap's
//! `modbus-discover.nse` and pymodbus 3.16 as the peer.
//!
//! ```text
//! request  (MBAP 7 bytes, PDU 4 bytes)
//!   0  transaction id  u16 BE      2  protocol id u16 BE = 0
//!   4  length u16 BE = 5 (unit id + PDU)
//!   6  unit id         7  function 0x2B   8  MEI type 0x0E
//!   9  read device id code (0x02 regular; 0x01 basic as fallback)   10  first object id
//! response
//!   0..7 MBAP (length = bytes after byte 5)
//!   7  function 0x2B (0xAB = exception, followed by exception code)
//!   8  MEI 0x0E   9 read code   10 conformity level   11 more follows (0xFF = yes)
//!   12 next object id   13 number of objects
//!   14.. objects: id u8, length u8, value (ASCII)
//! ```
//!
//! Only this read-only function is ever built: a hand-written 11-byte request instead of a
//! Modbus client crate (tokio-modbus et al. expose write functions and a client state machine
//! we do not want within reach of a discovery sweep). The unit id is configured, never swept:
//! gateways forward each unit id to a serial bus. Unit id 0 (broadcast) is refused.

use super::identity::{Field, Identification};
use super::session::{Frame, ProbeError, TcpSession};
use super::wire::{ParseError, Reader, text};

/// Protocol name in reports.
pub const PROTOCOL: &str = "modbus";

/// How many "more follows" continuations we are willing to ask for.
const MAX_CONTINUATIONS: usize = 3;

// BEGIN REQUEST BUILDERS (scanned by the forbidden-function test in registry.rs)
const READ_DEVICE_IDENTIFICATION: u8 = 0x2B;
const MEI_DEVICE_IDENTIFICATION: u8 = 0x0E;
const READ_CODE_REGULAR: u8 = 0x02;

/// Builds a Read Device Identification request for `unit`, starting at `object`.
pub fn request(transaction: u16, unit: u8, read_code: u8, object: u8) -> Vec<u8> {
    let mut frame = Vec::with_capacity(11);
    frame.extend_from_slice(&transaction.to_be_bytes());
    frame.extend_from_slice(&[0, 0]); // protocol id: Modbus
    frame.extend_from_slice(&5u16.to_be_bytes()); // unit id + 4 PDU bytes
    frame.extend_from_slice(&[
        unit,
        READ_DEVICE_IDENTIFICATION,
        MEI_DEVICE_IDENTIFICATION,
        read_code,
        object,
    ]);
    frame
}
// END REQUEST BUILDERS

/// The requests a probe of `unit` would send first (for `--dry-run`).
pub fn plan(unit: u8) -> Vec<(&'static str, Vec<u8>)> {
    vec![(
        "read device identification (regular)",
        request(1, unit, READ_CODE_REGULAR, 0),
    )]
}

/// MBAP framing: total length is 6 + the length field.
pub fn framing(buf: &[u8]) -> Frame {
    match buf {
        [_, _, p0, p1, l0, l1, ..] => {
            if [*p0, *p1] != [0, 0] {
                return Frame::Invalid;
            }
            Frame::Length(6 + usize::from(u16::from_be_bytes([*l0, *l1])))
        }
        _ => Frame::Incomplete,
    }
}

/// One page of a Read Device Identification reply.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Page {
    /// Objects in this page: id and raw value.
    pub objects: Vec<(u8, Vec<u8>)>,
    /// The id to continue from, when the device has more.
    pub next_object: Option<u8>,
}

/// Parses one reply frame (MBAP included).
pub fn parse_page(frame: &[u8]) -> Result<Page, ParseError> {
    let mut r = Reader::new(frame);
    r.skip(2)?; // transaction id
    let protocol = r.u16_be()?;
    if protocol != 0 {
        return Err(ParseError::Unexpected {
            field: "MBAP protocol id",
            value: u64::from(protocol),
        });
    }
    r.skip(3)?; // length (framing checked it) and unit id
    let function = r.u8()?;
    if function == READ_DEVICE_IDENTIFICATION | 0x80 {
        return Err(ParseError::Refused(format!(
            "Modbus exception code {:#04x}",
            r.u8()?
        )));
    }
    if function != READ_DEVICE_IDENTIFICATION {
        return Err(ParseError::Unexpected {
            field: "function code",
            value: u64::from(function),
        });
    }
    let mei = r.u8()?;
    if mei != MEI_DEVICE_IDENTIFICATION {
        return Err(ParseError::Unexpected {
            field: "MEI type",
            value: u64::from(mei),
        });
    }
    r.skip(2)?; // read code, conformity level
    let more = r.u8()? == 0xFF;
    let next = r.u8()?;
    let count = r.u8()?;
    let mut page = Page {
        objects: Vec::new(),
        next_object: more.then_some(next),
    };
    for _ in 0..count {
        let id = r.u8()?;
        let len = usize::from(r.u8()?);
        page.objects.push((id, r.take(len)?.to_vec()));
    }
    Ok(page)
}

/// Parses a complete single-page reply into an identification (what the fuzz target calls).
pub fn parse(frame: &[u8]) -> Result<Identification, ParseError> {
    identify(&parse_page(frame)?.objects)
}

/// Maps device identification objects to identity fields.
pub fn identify(objects: &[(u8, Vec<u8>)]) -> Result<Identification, ParseError> {
    let mut id = Identification::plaintext_open(PROTOCOL);
    for (object, value) in objects {
        let (field, name, object_name) = match object {
            0x00 => (Field::Vendor, "vendor", "VendorName"),
            0x01 => (Field::Detail, "product_code", "ProductCode"),
            0x02 => (Field::Firmware, "firmware", "MajorMinorRevision"),
            0x03 => (Field::Detail, "vendor_url", "VendorUrl"),
            0x04 => (Field::Detail, "product_name", "ProductName"),
            0x05 => (Field::Model, "model", "ModelName"),
            0x06 => (
                Field::Detail,
                "user_application_name",
                "UserApplicationName",
            ),
            _ => (Field::Detail, "private_object", "private object"),
        };
        id.push(
            field,
            name,
            text(value),
            format!("Read Device Identification object {object:#04x} ({object_name})"),
        );
    }
    // Without a ModelName the product code or name is the best model we have.
    if id.get(Field::Model).is_none() {
        let fallback = ["product_name", "product_code"]
            .iter()
            .find_map(|n| id.detail(n).map(str::to_string));
        if let Some(model) = fallback {
            id.push(
                Field::Model,
                "model",
                model,
                "Read Device Identification ProductName/ProductCode (no ModelName)",
            );
        }
    }
    if id.fields.is_empty() {
        return Err(ParseError::Empty);
    }
    Ok(id)
}

/// Asks `unit` for its identification objects, following "more follows" a bounded number of
/// times.
pub async fn probe(session: &mut TcpSession<'_>, unit: u8) -> Result<Identification, ProbeError> {
    let mut objects = Vec::new();
    let mut next = 0u8;
    for transaction in 1..=u16::try_from(MAX_CONTINUATIONS).unwrap_or(1) {
        session
            .send(&request(transaction, unit, READ_CODE_REGULAR, next))
            .await?;
        let page = parse_page(&session.read_frame(framing).await?)?;
        objects.extend(page.objects);
        match page.next_object {
            Some(n) if n > next => next = n,
            _ => break,
        }
    }
    Ok(identify(&objects)?)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::discovery::wire::fuzz;

    /// A pymodbus 3.16 reply to a regular read, captured on loopback.
    fn reply() -> Vec<u8> {
        let mut pdu = vec![0x2B, 0x0E, 0x02, 0x82, 0x00, 0x00, 3];
        for (id, v) in [(0u8, &b"ACME"[..]), (1, b"PC-1"), (2, b"1.2")] {
            pdu.push(id);
            pdu.push(u8::try_from(v.len()).unwrap());
            pdu.extend_from_slice(v);
        }
        let mut frame = vec![0, 1, 0, 0];
        frame.extend_from_slice(&u16::try_from(pdu.len() + 1).unwrap().to_be_bytes());
        frame.push(1);
        frame.extend_from_slice(&pdu);
        frame
    }

    #[test]
    fn request_layout() {
        assert_eq!(
            request(1, 255, 2, 0),
            [0, 1, 0, 0, 0, 5, 255, 0x2B, 0x0E, 2, 0]
        );
    }

    #[test]
    fn parses_identification() {
        let frame = reply();
        assert_eq!(framing(&frame), Frame::Length(frame.len()));
        let id = parse(&frame).unwrap();
        assert_eq!(id.get(Field::Vendor).unwrap().value, "ACME");
        assert_eq!(id.get(Field::Firmware).unwrap().value, "1.2");
        assert_eq!(id.get(Field::Model).unwrap().value, "PC-1");
    }

    #[test]
    fn exception_is_refusal() {
        let frame = [0, 1, 0, 0, 0, 3, 1, 0xAB, 0x01];
        assert!(matches!(parse(&frame), Err(ParseError::Refused(_))));
    }

    #[test]
    fn never_panics() {
        fuzz::no_panic(&reply(), parse);
        fuzz::no_panic(&reply(), |b| Ok::<_, ()>(framing(b)));
    }
}
