//! EtherNet/IP identification: the encapsulation-layer ListIdentity command, over TCP and UDP.
//!
//! Follows the CIP Networks Library Vol. 2 (EtherNet/IP adaptation) §2-4.2 ListIdentity and
//! the Identity object (class 0x01) attribute layout; cross-checked with nmap's
//! `enip-info.nse`; tested against cpppo 5.2.
//!
//! ```text
//! request (24-byte encapsulation header, all little-endian, no data)
//!   0 command u16 = 0x0063 (ListIdentity)   2 length u16 = 0   4 session handle u32 = 0
//!   8 status u32 = 0   12 sender context [8]   20 options u32 = 0
//! reply: header (command 0x0063, length = data bytes), then
//!   item count u16; per item: type id u16 (0x000c = CIP identity), length u16, then
//!     encapsulation version u16 | socket address 16 (BE: family, port, addr, zero[8])
//!     vendor id u16 | device type u16 | product code u16 | revision major u8, minor u8
//!     status u16 | serial number u32 | product name (u8 length + chars) | state u8
//! ```
//!
//! ListIdentity needs no session and touches no CIP object: it is the read-only request the
//! spec provides for discovery. No RegisterSession, no explicit messaging (so no
//! Set_Attribute, Reset or any other CIP service) is ever built.

use super::identity::{Field, Identification};
use super::session::{Frame, ProbeError, TcpSession, UdpSession};
use super::wire::{ParseError, Reader, text};

/// Protocol name in reports (TCP).
pub const PROTOCOL: &str = "enip";
/// Protocol name in reports (UDP).
pub const PROTOCOL_UDP: &str = "enip-udp";

// BEGIN REQUEST BUILDERS (scanned by the forbidden-function test in registry.rs)
const LIST_IDENTITY: u16 = 0x0063;

/// The 24-byte ListIdentity encapsulation header.
pub fn list_identity() -> Vec<u8> {
    let mut frame = Vec::with_capacity(24);
    frame.extend_from_slice(&LIST_IDENTITY.to_le_bytes());
    // length, session handle, status, sender context, options: all zero.
    frame.resize(24, 0);
    frame
}
// END REQUEST BUILDERS

/// The requests a probe sends (for `--dry-run`).
pub fn plan() -> Vec<(&'static str, Vec<u8>)> {
    vec![("ListIdentity", list_identity())]
}

/// Encapsulation framing: 24-byte header plus the length field at bytes 2..4.
pub fn framing(buf: &[u8]) -> Frame {
    match buf {
        [_, _, lo, hi, ..] if buf.len() >= 24 => {
            Frame::Length(24 + usize::from(u16::from_le_bytes([*lo, *hi])))
        }
        _ => Frame::Incomplete,
    }
}

/// Well-known ODVA device type names (CIP Vol. 1 Table 5-1.1, partial).
fn device_type_name(device_type: u16) -> Option<&'static str> {
    Some(match device_type {
        0x00 => "Generic Device",
        0x02 => "AC Drive",
        0x07 => "General Purpose Discrete I/O",
        0x0C => "Communications Adapter",
        0x0E => "Programmable Logic Controller",
        0x13 => "DC Drive",
        0x18 => "Human-Machine Interface",
        0x2B => "Generic Device (keyable)",
        _ => return None,
    })
}

/// ODVA vendor ids we name; others are reported by number.
fn vendor_name(vendor: u16) -> Option<&'static str> {
    match vendor {
        1 => Some("Rockwell Automation/Allen-Bradley"),
        _ => None,
    }
}

/// Parses a ListIdentity reply (TCP or UDP: same bytes).
pub fn parse(frame: &[u8]) -> Result<Identification, ParseError> {
    let mut r = Reader::new(frame);
    let command = r.u16_le()?;
    if command != LIST_IDENTITY {
        return Err(ParseError::Unexpected {
            field: "encapsulation command",
            value: u64::from(command),
        });
    }
    let length = usize::from(r.u16_le()?);
    r.skip(4)?; // session handle
    let status = r.u32_le()?;
    if status != 0 {
        return Err(ParseError::Refused(format!(
            "encapsulation status {status:#x}"
        )));
    }
    r.skip(12)?; // sender context, options
    let mut data = Reader::new(r.take(length)?);
    let count = data.u16_le()?;
    for _ in 0..count {
        let item_type = data.u16_le()?;
        let item = data.take(usize::from(data.clone().u16_le()?) + 2)?;
        if item_type == 0x000C {
            return identity_item(&item[2..]);
        }
    }
    Err(ParseError::Empty)
}

fn identity_item(item: &[u8]) -> Result<Identification, ParseError> {
    let mut r = Reader::new(item);
    r.skip(2 + 16)?; // encapsulation version, socket address
    let vendor = r.u16_le()?;
    let device_type = r.u16_le()?;
    let product_code = r.u16_le()?;
    let (major, minor) = (r.u8()?, r.u8()?);
    r.skip(2)?; // status
    let serial = r.u32_le()?;
    let name_len = usize::from(r.u8()?);
    let name = text(r.take(name_len)?);
    let mut id = Identification::plaintext_open(PROTOCOL);
    let vendor_text =
        vendor_name(vendor).map_or_else(|| format!("ODVA vendor {vendor}"), str::to_string);
    id.push(
        Field::Vendor,
        "vendor",
        vendor_text,
        "ListIdentity vendor id",
    );
    id.push(Field::Model, "model", name, "ListIdentity product name");
    id.push(
        Field::Firmware,
        "firmware",
        format!("{major}.{minor}"),
        "ListIdentity revision (major.minor)",
    );
    id.push(
        Field::Serial,
        "serial",
        format!("{serial:#010x}"),
        "ListIdentity serial number",
    );
    id.push(
        Field::Detail,
        "vendor_id",
        vendor.to_string(),
        "ListIdentity vendor id",
    );
    id.push(
        Field::Detail,
        "device_type_id",
        device_type.to_string(),
        "ListIdentity device type",
    );
    if let Some(type_name) = device_type_name(device_type) {
        id.push(
            Field::Detail,
            "device_type",
            type_name,
            "ListIdentity device type",
        );
    }
    id.push(
        Field::Detail,
        "product_code",
        product_code.to_string(),
        "ListIdentity product code",
    );
    Ok(id)
}

/// ListIdentity over TCP.
pub async fn probe_tcp(session: &mut TcpSession<'_>) -> Result<Identification, ProbeError> {
    session.send(&list_identity()).await?;
    Ok(parse(&session.read_frame(framing).await?)?)
}

/// ListIdentity over UDP (unicast only: a broadcast ListIdentity makes every device answer).
pub async fn probe_udp(session: &mut UdpSession<'_>) -> Result<Identification, ProbeError> {
    let reply = session.exchange(&list_identity()).await?;
    let mut id = parse(&reply)?;
    id.protocol = PROTOCOL_UDP;
    Ok(id)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::discovery::wire::fuzz;

    /// cpppo 5.2's default identity (a Logix 5561), captured on loopback.
    const REPLY: &str = "63003c00000000000000000000000000000000000000000001000c00360001000002af1200000000000000000000000001000e003600140b60311a066c0014313735362d4c36312f42204c4f47495835353631ff";

    fn bytes(text: &str) -> Vec<u8> {
        hex::decode(text).unwrap()
    }

    #[test]
    fn parses_cpppo_identity() {
        let frame = bytes(REPLY);
        assert_eq!(framing(&frame), Frame::Length(frame.len()));
        let id = parse(&frame).unwrap();
        assert_eq!(id.get(Field::Model).unwrap().value, "1756-L61/B LOGIX5561");
        assert_eq!(
            id.get(Field::Vendor).unwrap().value,
            "Rockwell Automation/Allen-Bradley"
        );
        assert_eq!(id.get(Field::Firmware).unwrap().value, "20.11");
        assert_eq!(id.get(Field::Serial).unwrap().value, "0x006c061a");
        assert_eq!(id.detail("device_type_id"), Some("14"));
    }

    #[test]
    fn request_is_bare_list_identity() {
        assert_eq!(list_identity(), [[0x63, 0].as_slice(), &[0; 22]].concat());
    }

    #[test]
    fn never_panics() {
        fuzz::no_panic(&bytes(REPLY), parse);
    }
}
