//! The BER subset SNMP needs (X.690): definite-length TLVs, OBJECT IDENTIFIER and INTEGER.
//! Shared by the community (v1/v2c) messages and the v3 discovery so that lengths are encoded
//! and checked in exactly one place.
//!
//! ```text
//! TLV      tag | length | content
//! length   0x00-0x7f: short form; 0x81 n: one length octet; 0x82 n n: two (big-endian).
//!          Longer forms are refused: a reply is capped far below 64 KiB anyway.
//! OID      first octet 40 * arc0 + arc1, then base-128 arcs, high bit = more octets follow
//! INTEGER  two's complement, big-endian, minimal octets
//! ```
//!
//! Hand-written rather than a BER crate: the encoder only ever builds the fixed read-only
//! requests, and the decoder reads through [`Reader`], so no length from the wire allocates.

use crate::discovery::wire::{ParseError, Reader};

/// UNIVERSAL 2: INTEGER.
pub const INTEGER: u8 = 0x02;
/// UNIVERSAL 4: OCTET STRING.
pub const OCTET_STRING: u8 = 0x04;
/// UNIVERSAL 5: NULL.
pub const NULL: u8 = 0x05;
/// UNIVERSAL 6: OBJECT IDENTIFIER.
pub const OBJECT_IDENTIFIER: u8 = 0x06;
/// UNIVERSAL 16, constructed: SEQUENCE.
pub const SEQUENCE: u8 = 0x30;

/// Encodes one TLV (contents up to 64 KiB; the requests are a few dozen bytes).
pub fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 128 {
        out.push(u8::try_from(len).unwrap_or(0));
    } else {
        out.push(0x82);
        out.extend_from_slice(&u16::try_from(len).unwrap_or(u16::MAX).to_be_bytes());
    }
    out.extend_from_slice(content);
    out
}

/// Encodes a non-negative INTEGER in its minimal form.
pub fn integer(value: u32) -> Vec<u8> {
    let [a, b, c, d] = value.to_be_bytes();
    // A leading zero octet first, so a high bit never reads as a sign; then drop every zero
    // octet whose successor's high bit is clear (the minimal form X.690 §8.3.2 asks for).
    let bytes = [0, a, b, c, d];
    let mut start = 0;
    while start < 4 && bytes[start] == 0 && bytes[start + 1] & 0x80 == 0 {
        start += 1;
    }
    tlv(INTEGER, &bytes[start..])
}

/// Encodes an OBJECT IDENTIFIER (at least two arcs, the first below 3).
pub fn oid(arcs: &[u32]) -> Vec<u8> {
    let mut content = vec![u8::try_from(arcs[0] * 40 + arcs[1]).unwrap_or(0x2B)];
    for arc in &arcs[2..] {
        let mut chunk = vec![u8::try_from(arc & 0x7F).unwrap_or(0)];
        let mut rest = arc >> 7;
        while rest > 0 {
            chunk.push(u8::try_from(rest & 0x7F).unwrap_or(0) | 0x80);
            rest >>= 7;
        }
        content.extend(chunk.iter().rev());
    }
    tlv(OBJECT_IDENTIFIER, &content)
}

/// Reads one TLV header, returning tag and content.
pub fn element<'a>(r: &mut Reader<'a>) -> Result<(u8, &'a [u8]), ParseError> {
    let tag = r.u8()?;
    let first = r.u8()?;
    let len = match first {
        0..=0x7F => usize::from(first),
        0x81 => usize::from(r.u8()?),
        0x82 => usize::from(r.u16_be()?),
        other => {
            return Err(ParseError::Unexpected {
                field: "BER length form",
                value: u64::from(other),
            });
        }
    };
    Ok((tag, r.take(len)?))
}

/// Reads one TLV that must carry tag `want`.
pub fn expect<'a>(
    r: &mut Reader<'a>,
    want: u8,
    field: &'static str,
) -> Result<&'a [u8], ParseError> {
    match element(r)? {
        (tag, content) if tag == want => Ok(content),
        (tag, _) => Err(ParseError::Unexpected {
            field,
            value: u64::from(tag),
        }),
    }
}

/// Reads an INTEGER that must fit a `u32` (versions, engine boots and time, counters).
pub fn expect_u32(r: &mut Reader<'_>, field: &'static str) -> Result<u32, ParseError> {
    let content = expect(r, INTEGER, field)?;
    unsigned(content).ok_or(ParseError::Unexpected {
        field,
        value: u64::from(content.first().copied().unwrap_or(0)),
    })
}

/// The value of an INTEGER's content if it is non-negative and fits a `u32`.
fn unsigned(content: &[u8]) -> Option<u32> {
    let (&first, _) = content.split_first()?;
    if first & 0x80 != 0 {
        return None;
    }
    // One leading zero octet may precede a full four-octet value (0x00 0xff 0xff 0xff 0xff).
    let digits = if content.len() == 5 && first == 0 {
        &content[1..]
    } else {
        content
    };
    if digits.len() > 4 {
        return None;
    }
    Some(
        digits
            .iter()
            .fold(0u32, |acc, b| (acc << 8) | u32::from(*b)),
    )
}

/// Dotted form of a BER-encoded OID, bounded by the input.
pub fn oid_text(content: &[u8]) -> String {
    let mut arcs: Vec<String> = Vec::new();
    let mut value: u64 = 0;
    for (i, byte) in content.iter().enumerate() {
        value = (value << 7) | u64::from(byte & 0x7F);
        if byte & 0x80 == 0 {
            if i == 0 || arcs.is_empty() {
                let (a, b) = if value < 80 {
                    (value / 40, value % 40)
                } else {
                    (2, value - 80)
                };
                arcs.push(a.to_string());
                arcs.push(b.to_string());
            } else {
                arcs.push(value.to_string());
            }
            value = 0;
        }
        if value > u64::from(u32::MAX) {
            break;
        }
    }
    arcs.join(".")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn integers_are_minimal_and_round_trip() {
        assert_eq!(integer(0), [0x02, 0x01, 0x00]);
        assert_eq!(integer(0x7F), [0x02, 0x01, 0x7F]);
        assert_eq!(integer(0x80), [0x02, 0x02, 0x00, 0x80]);
        assert_eq!(integer(65507), [0x02, 0x03, 0x00, 0xFF, 0xE3]);
        for value in [0, 1, 0x7F, 0x80, 0xFFFF, 65507, 0x7FFF_FFFF, u32::MAX] {
            let encoded = integer(value);
            assert_eq!(
                expect_u32(&mut Reader::new(&encoded), "test").unwrap(),
                value
            );
        }
        // Negative and oversized integers are refused, not wrapped.
        assert!(expect_u32(&mut Reader::new(&[0x02, 0x01, 0xFF]), "test").is_err());
        assert!(expect_u32(&mut Reader::new(&[0x02, 0x05, 1, 0, 0, 0, 0]), "test").is_err());
        assert!(expect_u32(&mut Reader::new(&[0x02, 0x00]), "test").is_err());
    }

    #[test]
    fn lengths_in_all_accepted_forms() {
        let long = tlv(OCTET_STRING, &[7; 300]);
        assert_eq!(&long[..4], &[0x04, 0x82, 0x01, 0x2C]);
        let (tag, content) = element(&mut Reader::new(&long)).unwrap();
        assert_eq!((tag, content.len()), (OCTET_STRING, 300));
        let (_, content) = element(&mut Reader::new(&[0x04, 0x81, 0x02, 1, 2])).unwrap();
        assert_eq!(content, [1, 2]);
        assert!(element(&mut Reader::new(&[0x04, 0x84, 0, 0, 0, 1, 0])).is_err());
        assert!(element(&mut Reader::new(&[0x04, 0x05, 1])).is_err());
    }

    #[test]
    fn oid_round_trip() {
        let encoded = oid(&[1, 3, 6, 1, 6, 3, 15, 1, 1, 4, 0]);
        let content = expect(&mut Reader::new(&encoded), OBJECT_IDENTIFIER, "oid").unwrap();
        assert_eq!(oid_text(content), "1.3.6.1.6.3.15.1.1.4.0");
    }
}
