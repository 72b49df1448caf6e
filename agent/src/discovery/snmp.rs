//! SNMP v2c/v1 identification: one GET of sysDescr.0, sysObjectID.0 and sysName.0 per
//! configured community, v2c first, v1 if v2c stays silent.
//!
//! Follows RFC 1157 (SNMPv1 message), RFC 3416 (v2c PDUs) and RFC 3418 (SNMPv2-MIB system
//! group), BER per X.690; cross-checked with nmap's `snmp-sysdescr.nse`; tested against
//! snmpsim 1.2.
//!
//! ```text
//! Message  30 len { 02 01 version (0 v1, 1 v2c) | 04 len community |
//!          a0 len GetRequest { 02 request-id | 02 01 00 error-status | 02 01 00 error-index |
//!                              30 len { 30 len { 06 len OID | 05 00 } ... } } }
//! Reply    same shape with a2 (GetResponse) and values: 04 OCTET STRING, 06 OID,
//!          80/81/82 noSuchObject/noSuchInstance/endOfMibView
//! ```
//!
//! Only GetRequest (0xa0) is built: no SetRequest (0xa3). Hand-written because the three
//! requests are fixed and an SNMP crate brings a full manager with SET support.

use super::identity::{Auth, Field, Identification, Transit};
use super::session::{ProbeError, UdpSession};
use super::wire::{ParseError, Reader, text};

/// Protocol name in reports.
pub const PROTOCOL: &str = "snmp";

/// sysDescr.0, sysObjectID.0, sysName.0.
const SYS_DESCR: [u32; 9] = [1, 3, 6, 1, 2, 1, 1, 1, 0];
const SYS_OBJECT_ID: [u32; 9] = [1, 3, 6, 1, 2, 1, 1, 2, 0];
const SYS_NAME: [u32; 9] = [1, 3, 6, 1, 2, 1, 1, 5, 0];
/// Communities that are a product's default, so answering them means no real secret.
const DEFAULT_COMMUNITIES: &[&str] = &["public", "private"];

// BEGIN REQUEST BUILDERS (scanned by the forbidden-function test in registry.rs)
const GET_REQUEST: u8 = 0xA0;

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
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

fn oid(arcs: &[u32]) -> Vec<u8> {
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
    tlv(0x06, &content)
}

/// GetRequest for the system group's identity objects. `version` 0 = v1, 1 = v2c.
pub fn get_request(version: u8, community: &str, request_id: u16) -> Vec<u8> {
    let varbinds: Vec<u8> = [SYS_DESCR, SYS_OBJECT_ID, SYS_NAME]
        .iter()
        .flat_map(|arcs| tlv(0x30, &[oid(arcs), vec![0x05, 0x00]].concat()))
        .collect();
    let mut pdu = tlv(0x02, &request_id.to_be_bytes());
    pdu.extend_from_slice(&[0x02, 0x01, 0x00, 0x02, 0x01, 0x00]); // error status, error index
    pdu.extend(tlv(0x30, &varbinds));
    let mut message = tlv(0x02, &[version]);
    message.extend(tlv(0x04, community.as_bytes()));
    message.extend(tlv(GET_REQUEST, &pdu));
    tlv(0x30, &message)
}
// END REQUEST BUILDERS

/// The requests a probe sends for `communities` (for `--dry-run`).
pub fn plan(communities: &[String]) -> Vec<(&'static str, Vec<u8>)> {
    communities
        .iter()
        .flat_map(|c| {
            [
                ("GET system group (v2c)", get_request(1, c, 1)),
                (
                    "GET system group (v1, only if v2c is silent)",
                    get_request(0, c, 2),
                ),
            ]
        })
        .collect()
}

/// Reads one BER TLV header, returning tag and content.
fn element<'a>(r: &mut Reader<'a>) -> Result<(u8, &'a [u8]), ParseError> {
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

fn expect<'a>(r: &mut Reader<'a>, want: u8, field: &'static str) -> Result<&'a [u8], ParseError> {
    match element(r)? {
        (tag, content) if tag == want => Ok(content),
        (tag, _) => Err(ParseError::Unexpected {
            field,
            value: u64::from(tag),
        }),
    }
}

/// Dotted form of a BER-encoded OID, bounded by the input.
fn oid_text(content: &[u8]) -> String {
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

/// One variable binding: dotted OID, value tag, value bytes.
pub type Varbind<'a> = (String, u8, &'a [u8]);

/// The variable bindings of a GetResponse.
pub fn parse_varbinds(datagram: &[u8]) -> Result<Vec<Varbind<'_>>, ParseError> {
    let mut outer = Reader::new(datagram);
    let mut message = Reader::new(expect(&mut outer, 0x30, "SNMP message")?);
    expect(&mut message, 0x02, "SNMP version")?;
    expect(&mut message, 0x04, "SNMP community")?;
    let mut pdu = Reader::new(expect(
        &mut message,
        0xA2,
        "SNMP PDU type (want GetResponse)",
    )?);
    expect(&mut pdu, 0x02, "request id")?;
    let status = expect(&mut pdu, 0x02, "error status")?;
    if status.iter().any(|b| *b != 0) {
        return Err(ParseError::Refused(format!(
            "SNMP error status {}",
            status.last().copied().unwrap_or(0)
        )));
    }
    expect(&mut pdu, 0x02, "error index")?;
    let mut list = Reader::new(expect(&mut pdu, 0x30, "varbind list")?);
    let mut out = Vec::new();
    while list.remaining() > 0 {
        let mut bind = Reader::new(expect(&mut list, 0x30, "varbind")?);
        let name = oid_text(expect(&mut bind, 0x06, "varbind name")?);
        let (tag, value) = element(&mut bind)?;
        out.push((name, tag, value));
    }
    Ok(out)
}

/// Vendors by IANA enterprise number (sysObjectID 1.3.6.1.4.1.N...), the few we name.
fn enterprise_vendor(number: &str) -> Option<&'static str> {
    Some(match number {
        "9" => "Cisco",
        "11" => "Hewlett-Packard",
        "311" => "Microsoft",
        "367" => "Ricoh",
        "368" => "Axis Communications",
        "641" => "Lexmark",
        "674" => "Dell",
        "2011" => "Huawei",
        "2636" => "Juniper Networks",
        "4329" => "Siemens",
        "8072" => "Net-SNMP",
        "14988" => "MikroTik",
        _ => return None,
    })
}

/// Parses a GetResponse into identity fields (auth verdict set by the caller).
pub fn parse(datagram: &[u8]) -> Result<Identification, ParseError> {
    let mut id = Identification {
        protocol: PROTOCOL,
        fields: Vec::new(),
        transit: Transit::Plaintext,
        auth: Auth::Unknown,
        auth_reason: String::new(),
    };
    for (name, tag, value) in parse_varbinds(datagram)? {
        match (name.as_str(), tag) {
            ("1.3.6.1.2.1.1.1.0", 0x04) => id.push(
                Field::Detail,
                "sys_descr",
                text(value),
                "SNMPv2-MIB sysDescr.0",
            ),
            ("1.3.6.1.2.1.1.2.0", 0x06) => {
                let object_id = oid_text(value);
                let enterprise = object_id
                    .strip_prefix("1.3.6.1.4.1.")
                    .and_then(|rest| rest.split('.').next())
                    .map(str::to_string);
                if let Some(vendor) = enterprise.as_deref().and_then(enterprise_vendor) {
                    id.push(
                        Field::Vendor,
                        "vendor",
                        vendor,
                        "SNMPv2-MIB sysObjectID.0 enterprise number",
                    );
                }
                id.push(
                    Field::Detail,
                    "sys_object_id",
                    object_id,
                    "SNMPv2-MIB sysObjectID.0",
                );
            }
            ("1.3.6.1.2.1.1.5.0", 0x04) => id.push(
                Field::Detail,
                "sys_name",
                text(value),
                "SNMPv2-MIB sysName.0",
            ),
            _ => {}
        }
    }
    if id.fields.is_empty() {
        return Err(ParseError::Empty);
    }
    Ok(id)
}

/// Tries each community, v2c then v1, until one is answered.
pub async fn probe(
    session: &mut UdpSession<'_>,
    communities: &[String],
) -> Result<Identification, ProbeError> {
    let mut last = ProbeError::Timeout("waiting for an SNMP reply");
    for community in communities {
        for (version, label) in [(1u8, "v2c"), (0u8, "v1")] {
            match session
                .exchange(&get_request(version, community, u16::from(version) + 1))
                .await
            {
                Ok(reply) => return Ok(with_verdict(parse(&reply)?, community, label)),
                // An agent drops a wrong community silently; try the next version/community.
                Err(error @ ProbeError::Timeout(_)) => last = error,
                Err(error) => return Err(error),
            }
        }
    }
    Err(last)
}

fn with_verdict(mut id: Identification, community: &str, version: &str) -> Identification {
    let default = DEFAULT_COMMUNITIES.contains(&community);
    id.auth = if default { Auth::None } else { Auth::Required };
    id.auth_reason = if default {
        format!("SNMP {version} answered the default community {community:?} (sent in clear text)")
    } else {
        format!("SNMP {version} needed a configured community (sent in clear text)")
    };
    id.push(Field::Detail, "version", version, "SNMP message version");
    id
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::discovery::wire::fuzz;

    fn bytes(hex: &str) -> Vec<u8> {
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect()
    }

    /// A GetResponse with sysDescr, sysObjectID (Cisco) and sysName.
    fn reply() -> Vec<u8> {
        let binds = [
            tlv(0x30, &[oid(&SYS_DESCR), tlv(0x04, b"Test Switch")].concat()),
            tlv(
                0x30,
                &[oid(&SYS_OBJECT_ID), oid(&[1, 3, 6, 1, 4, 1, 9, 1, 1208])].concat(),
            ),
            tlv(0x30, &[oid(&SYS_NAME), tlv(0x04, b"sw1")].concat()),
        ]
        .concat();
        let pdu = [
            tlv(0x02, &[1]),
            tlv(0x02, &[0]),
            tlv(0x02, &[0]),
            tlv(0x30, &binds),
        ]
        .concat();
        tlv(
            0x30,
            &[tlv(0x02, &[1]), tlv(0x04, b"public"), tlv(0xA2, &pdu)].concat(),
        )
    }

    #[test]
    fn request_matches_known_encoding() {
        // sysDescr.0 alone would be 06 08 2b 06 01 02 01 01 01 00 (as nmap and snmpsim use).
        assert_eq!(oid(&SYS_DESCR), bytes("06082b06010201010100"));
        assert_eq!(oid(&[1, 3, 6, 1, 4, 1, 14988]), bytes("06072b06010401f50c"));
        let request = get_request(1, "public", 1);
        assert_eq!(request[0], 0x30);
        let mut outer = Reader::new(&request);
        let mut message = Reader::new(expect(&mut outer, 0x30, "message").unwrap());
        assert_eq!(expect(&mut message, 0x02, "version").unwrap(), [1]);
        assert_eq!(expect(&mut message, 0x04, "community").unwrap(), b"public");
        let (tag, _) = element(&mut message).unwrap();
        assert_eq!(tag, 0xA0, "GetRequest");
        assert_eq!(message.remaining(), 0, "lengths cover the whole message");
    }

    #[test]
    fn parses_system_group() {
        let id = parse(&reply()).unwrap();
        assert_eq!(id.detail("sys_descr"), Some("Test Switch"));
        assert_eq!(id.detail("sys_object_id"), Some("1.3.6.1.4.1.9.1.1208"));
        assert_eq!(id.get(Field::Vendor).unwrap().value, "Cisco");
        assert_eq!(id.detail("sys_name"), Some("sw1"));
    }

    #[test]
    fn never_panics() {
        fuzz::no_panic(&reply(), parse);
    }
}
