//! BACnet/IP identification: a unicast Who-Is, then ReadProperty of the Device object's
//! vendor-name, model-name, firmware-revision and object-name.
//!
//! Follows ANSI/ASHRAE 135 Annex J (BVLL), clause 6 (NPDU), clause 20 (APDU encoding),
//! 16.10 (Who-Is/I-Am) and 15.5 (ReadProperty); cross-checked with nmap's `bacnet-info.nse`;
//! tested against bacpypes3.
//!
//! ```text
//! BVLC   81 | 0a (Original-Unicast-NPDU) | length u16 BE (whole datagram)
//! NPDU   01 (version) | control: 00 (no reply expected) or 04 (expecting reply)
//!        [control & 0x20: DNET u16, DLEN u8, DADR] [control & 0x08: SNET u16, SLEN u8, SADR]
//!        [control & 0x20: hop count]
//! Who-Is 10 08                           unconfirmed request, service 8, no range
//! I-Am   10 00 | c4 object-id(4) | 2x max APDU | 91 segmentation | 2x vendor id
//! ReadProperty (confirmed, service 12)
//!        00 05 <invoke id> 0c | 0c object-id(4) (context 0) | 19 property (context 1)
//! Complex-ACK 30 <invoke id> 0c | 0c object-id | 19 property | 3e value 3f
//!        value: application tag 7 (CharacterString) 7x/75 len | charset | chars
//! Error  50 ..., Reject 60 ..., Abort 70 ...
//! ```
//!
//! Who-Is is sent unicast only: a broadcast Who-Is makes every device on the segment answer
//! at once (I-Am storms). Only Who-Is and ReadProperty are built: no WriteProperty (service
//! 15), WritePropertyMultiple (16), DeviceCommunicationControl (17) or ReinitializeDevice (20).

use super::identity::{Field, Identification};
use super::session::{ProbeError, UdpSession};
use super::wire::{ParseError, Reader, text};

/// Protocol name in reports.
pub const PROTOCOL: &str = "bacnet";

/// Device object type.
const OBJECT_DEVICE: u32 = 8;
/// Property identifiers read, with their field mapping.
const PROPERTIES: [(u8, Field, &str, &str); 4] = [
    (
        121,
        Field::Vendor,
        "vendor",
        "Device vendor-name (property 121)",
    ),
    (70, Field::Model, "model", "Device model-name (property 70)"),
    (
        44,
        Field::Firmware,
        "firmware",
        "Device firmware-revision (property 44)",
    ),
    (
        77,
        Field::Detail,
        "object_name",
        "Device object-name (property 77)",
    ),
];

// BEGIN REQUEST BUILDERS (scanned by the forbidden-function test in registry.rs)
const SERVICE_WHO_IS: u8 = 8;
const SERVICE_READ_PROPERTY: u8 = 12;

fn bvlc(npdu_apdu: &[u8]) -> Vec<u8> {
    let mut out = vec![0x81, 0x0A];
    out.extend_from_slice(
        &u16::try_from(4 + npdu_apdu.len())
            .unwrap_or(u16::MAX)
            .to_be_bytes(),
    );
    out.extend_from_slice(npdu_apdu);
    out
}

/// Unicast Who-Is without a range.
pub fn who_is() -> Vec<u8> {
    bvlc(&[0x01, 0x00, 0x10, SERVICE_WHO_IS])
}

/// ReadProperty of `property` of device `instance`.
pub fn read_property(instance: u32, property: u8, invoke_id: u8) -> Vec<u8> {
    let object = (OBJECT_DEVICE << 22) | (instance & 0x003F_FFFF);
    let mut body = vec![
        0x01,
        0x04,
        0x00,
        0x05,
        invoke_id,
        SERVICE_READ_PROPERTY,
        0x0C,
    ];
    body.extend_from_slice(&object.to_be_bytes());
    body.extend_from_slice(&[0x19, property]);
    bvlc(&body)
}
// END REQUEST BUILDERS

/// The requests a probe sends (for `--dry-run`; the instance comes from the I-Am, shown 0).
pub fn plan() -> Vec<(&'static str, Vec<u8>)> {
    let mut out = vec![("Who-Is (unicast)", who_is())];
    for (index, (property, _, _, _)) in PROPERTIES.iter().enumerate() {
        out.push((
            "ReadProperty of the device object",
            read_property(0, *property, u8::try_from(index + 1).unwrap_or(1)),
        ));
    }
    out
}

/// Skips BVLC and NPDU, returning the APDU.
fn apdu(datagram: &[u8]) -> Result<&[u8], ParseError> {
    let mut r = Reader::new(datagram);
    let kind = r.u8()?;
    if kind != 0x81 {
        return Err(ParseError::Unexpected {
            field: "BVLC type",
            value: u64::from(kind),
        });
    }
    let function = r.u8()?;
    if !matches!(function, 0x0A | 0x0B) {
        return Err(ParseError::Unexpected {
            field: "BVLC function",
            value: u64::from(function),
        });
    }
    let len = usize::from(r.u16_be()?);
    let mut npdu = Reader::new(r.take(len.saturating_sub(4))?);
    npdu.skip(1)?; // version
    let control = npdu.u8()?;
    if control & 0x80 != 0 {
        return Err(ParseError::Unexpected {
            field: "NPDU network-layer message",
            value: u64::from(control),
        });
    }
    if control & 0x20 != 0 {
        npdu.skip(2)?;
        let dlen = usize::from(npdu.u8()?);
        npdu.skip(dlen)?;
    }
    if control & 0x08 != 0 {
        npdu.skip(2)?;
        let slen = usize::from(npdu.u8()?);
        npdu.skip(slen)?;
    }
    if control & 0x20 != 0 {
        npdu.skip(1)?; // hop count
    }
    Ok(npdu.rest())
}

/// An application-tagged unsigned integer (tag 2).
fn unsigned(r: &mut Reader<'_>) -> Result<u32, ParseError> {
    let tag = r.u8()?;
    let len = usize::from(tag & 0x07);
    if tag >> 4 != 2 || len == 0 || len > 4 {
        return Err(ParseError::Unexpected {
            field: "BACnet unsigned tag",
            value: u64::from(tag),
        });
    }
    Ok(r.take(len)?
        .iter()
        .fold(0u32, |acc, b| (acc << 8) | u32::from(*b)))
}

/// Parses an I-Am into (device instance, vendor id).
pub fn parse_i_am(datagram: &[u8]) -> Result<(u32, u32), ParseError> {
    let mut r = Reader::new(apdu(datagram)?);
    let (kind, service) = (r.u8()?, r.u8()?);
    if (kind, service) != (0x10, 0x00) {
        return Err(ParseError::Unexpected {
            field: "APDU (want I-Am)",
            value: u64::from(kind) << 8 | u64::from(service),
        });
    }
    let tag = r.u8()?;
    if tag != 0xC4 {
        return Err(ParseError::Unexpected {
            field: "I-Am object identifier tag",
            value: u64::from(tag),
        });
    }
    let object = r.u32_be()?;
    unsigned(&mut r)?; // max APDU
    r.skip(2)?; // segmentation (enumerated, one byte)
    let vendor = unsigned(&mut r)?;
    Ok((object & 0x003F_FFFF, vendor))
}

/// Parses a ReadProperty Complex-ACK carrying a CharacterString into (property, text).
pub fn parse_read_property(datagram: &[u8]) -> Result<(u8, String), ParseError> {
    let mut r = Reader::new(apdu(datagram)?);
    let kind = r.u8()?;
    match kind >> 4 {
        3 => {}
        5 => return Err(ParseError::Refused("BACnet Error PDU".to_string())),
        6 | 7 => return Err(ParseError::Refused("BACnet Reject/Abort PDU".to_string())),
        _ => {
            return Err(ParseError::Unexpected {
                field: "APDU type",
                value: u64::from(kind),
            });
        }
    }
    r.skip(1)?; // invoke id
    let service = r.u8()?;
    if service != 12 {
        return Err(ParseError::Unexpected {
            field: "ACK service",
            value: u64::from(service),
        });
    }
    if r.u8()? != 0x0C {
        return Err(ParseError::Unexpected {
            field: "object identifier tag",
            value: 0,
        });
    }
    r.skip(4)?;
    if r.u8()? != 0x19 {
        return Err(ParseError::Unexpected {
            field: "property identifier tag",
            value: 0,
        });
    }
    let property = r.u8()?;
    if r.u8()? != 0x3E {
        return Err(ParseError::Unexpected {
            field: "opening tag 3",
            value: 0,
        });
    }
    Ok((property, character_string(&mut r)?))
}

fn character_string(r: &mut Reader<'_>) -> Result<String, ParseError> {
    let tag = r.u8()?;
    if tag >> 4 != 7 || tag & 0x08 != 0 {
        return Err(ParseError::Unexpected {
            field: "CharacterString tag",
            value: u64::from(tag),
        });
    }
    let len = match tag & 0x07 {
        5 => match r.u8()? {
            254 => usize::from(r.u16_be()?),
            255 => {
                return Err(ParseError::Unexpected {
                    field: "CharacterString length",
                    value: 255,
                });
            }
            n => usize::from(n),
        },
        n => usize::from(n),
    };
    let value = r.take(len)?;
    let (charset, chars) = value.split_first().ok_or(ParseError::Empty)?;
    if *charset != 0 {
        return Err(ParseError::Unexpected {
            field: "character set (want UTF-8)",
            value: u64::from(*charset),
        });
    }
    Ok(text(chars))
}

/// Parses one datagram, I-Am or ReadProperty ACK, into fields (what the fuzz target calls).
pub fn parse(datagram: &[u8]) -> Result<Identification, ParseError> {
    let mut id = Identification::plaintext_open(PROTOCOL);
    if let Ok((instance, vendor)) = parse_i_am(datagram) {
        add_i_am(&mut id, instance, vendor);
        return Ok(id);
    }
    let (property, value) = parse_read_property(datagram)?;
    add_property(&mut id, property, value);
    Ok(id)
}

fn add_i_am(id: &mut Identification, instance: u32, vendor: u32) {
    id.push(
        Field::Detail,
        "device_instance",
        instance.to_string(),
        "I-Am iAmDeviceIdentifier",
    );
    id.push(
        Field::Detail,
        "vendor_id",
        vendor.to_string(),
        "I-Am vendorID",
    );
}

fn add_property(id: &mut Identification, property: u8, value: String) {
    if let Some((_, field, name, source)) = PROPERTIES.iter().find(|p| p.0 == property) {
        id.push(*field, name, value, *source);
    }
}

/// Who-Is, then one ReadProperty per identity property of the device that answered.
pub async fn probe(session: &mut UdpSession<'_>) -> Result<Identification, ProbeError> {
    let (instance, vendor) = parse_i_am(&session.exchange(&who_is()).await?)?;
    let mut id = Identification::plaintext_open(PROTOCOL);
    add_i_am(&mut id, instance, vendor);
    for (invoke_id, (property, _, _, _)) in (1u8..).zip(PROPERTIES.iter()) {
        match session
            .exchange(&read_property(instance, *property, invoke_id))
            .await
        {
            Ok(reply) => match parse_read_property(&reply) {
                Ok((got, value)) if got == *property => add_property(&mut id, got, value),
                // A device may lack the property or answer oddly; the other properties still count.
                Ok(_) | Err(_) => {}
            },
            Err(ProbeError::Timeout(_)) => {}
            Err(error) => return Err(error),
        }
    }
    Ok(id)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::discovery::wire::fuzz;

    fn bytes(text: &str) -> Vec<u8> {
        hex::decode(text).unwrap()
    }

    /// Captured from bacpypes3 on loopback.
    const I_AM: &str = "810a001501001000c4020004d222040091002203e7";
    const VENDOR_NAME: &str =
        "810a0025010030010c0c020004d219793e75110054696c6c73796e20436f6e74726f6c733f";
    const ERROR: &str = "810a000d010050010c9101911f";

    #[test]
    fn requests_match_captures() {
        assert_eq!(who_is(), bytes("810a000801001008"));
        assert_eq!(
            read_property(1234, 121, 1),
            bytes("810a001101040005010c0c020004d21979")
        );
    }

    #[test]
    fn parses_bacpypes3_replies() {
        assert_eq!(parse_i_am(&bytes(I_AM)).unwrap(), (1234, 999));
        assert_eq!(
            parse_read_property(&bytes(VENDOR_NAME)).unwrap(),
            (121, "Tillsyn Controls".to_string())
        );
        assert!(matches!(
            parse_read_property(&bytes(ERROR)),
            Err(ParseError::Refused(_))
        ));
    }

    #[test]
    fn never_panics() {
        fuzz::no_panic(&bytes(I_AM), parse);
        fuzz::no_panic(&bytes(VENDOR_NAME), parse);
    }
}
