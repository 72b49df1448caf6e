//! SNMP identification: one SNMPv3 engine discovery, then one GET of sysDescr.0, sysObjectID.0
//! and sysName.0 per configured community, v2c first, v1 if v2c stays silent.
//!
//! Follows RFC 1157 (SNMPv1 message), RFC 3416 (v2c PDUs), RFC 3418 (SNMPv2-MIB system
//! group) and RFC 3414 §4 (v3 discovery, in [`v3`]), BER per X.690 (in [`ber`], shared by both
//! message forms); cross-checked with nmap's `snmp-sysdescr.nse` and `snmp-info.nse`; tested
//! against snmpsim 1.2 serving real device walks from `snmpsim-data`.
//!
//! ```text
//! Message  30 len { 02 01 version (0 v1, 1 v2c) | 04 len community |
//!          a0 len GetRequest { 02 request-id | 02 01 00 error-status | 02 01 00 error-index |
//!                              30 len { 30 len { 06 len OID | 05 00 } ... } } }
//! Reply    same shape with a2 (GetResponse) and values: 04 OCTET STRING, 06 OID,
//!          80/81/82 noSuchObject/noSuchInstance/endOfMibView
//! ```
//!
//! Only GetRequest (0xa0) is built, here and in [`v3`]: no SetRequest (0xa3), no trap or
//! inform. Hand-written because the requests are fixed and an SNMP crate brings a full manager
//! with SET support.

pub mod ber;
pub mod v3;

use super::identity::{Auth, Field, Identification, Transit};
use super::session::{ProbeError, UdpSession};
use super::wire::{ParseError, Reader, hex, text};
use ber::{INTEGER, OCTET_STRING, SEQUENCE, expect, oid_text, tlv};

/// Protocol name in reports.
pub const PROTOCOL: &str = "snmp";

/// sysDescr.0, sysObjectID.0, sysName.0.
const SYS_DESCR: [u32; 9] = [1, 3, 6, 1, 2, 1, 1, 1, 0];
const SYS_OBJECT_ID: [u32; 9] = [1, 3, 6, 1, 2, 1, 1, 2, 0];
const SYS_NAME: [u32; 9] = [1, 3, 6, 1, 2, 1, 1, 5, 0];
/// Communities that are a product's default, so answering them means no real secret.
const DEFAULT_COMMUNITIES: &[&str] = &["public", "private"];
/// PDU tag of a GetResponse (RFC 3416).
const GET_RESPONSE: u8 = 0xA2;
/// msgID and request-id of the v3 discovery (any value works; the Report echoes them).
const V3_MSG_ID: u16 = 0x5453;
const V3_REQUEST_ID: u16 = 3;
/// Datagrams read while waiting for one reply: a late answer to an earlier request (another
/// version) is skipped rather than misread, but a chatty peer cannot keep the probe waiting.
const MAX_DATAGRAMS_PER_REQUEST: usize = 3;

// BEGIN REQUEST BUILDERS (scanned by the forbidden-function test in registry.rs)
const GET_REQUEST: u8 = 0xA0;

/// GetRequest for the system group's identity objects. `version` 0 = v1, 1 = v2c.
pub fn get_request(version: u8, community: &str, request_id: u16) -> Vec<u8> {
    let varbinds: Vec<u8> = [SYS_DESCR, SYS_OBJECT_ID, SYS_NAME]
        .iter()
        .flat_map(|arcs| tlv(SEQUENCE, &[ber::oid(arcs), vec![ber::NULL, 0x00]].concat()))
        .collect();
    let pdu = [
        ber::integer(u32::from(request_id)),
        ber::integer(0), // error-status
        ber::integer(0), // error-index
        tlv(SEQUENCE, &varbinds),
    ]
    .concat();
    let message = [
        ber::integer(u32::from(version)),
        tlv(OCTET_STRING, community.as_bytes()),
        tlv(GET_REQUEST, &pdu),
    ]
    .concat();
    tlv(SEQUENCE, &message)
}
// END REQUEST BUILDERS

/// The requests a probe sends for `communities` (for `--dry-run`), in the order sent.
pub fn plan(communities: &[String]) -> Vec<(&'static str, Vec<u8>)> {
    let mut steps = vec![(
        "SNMPv3 engine discovery (GetRequest, no varbinds, no credentials)",
        v3::discovery_request(V3_MSG_ID, V3_REQUEST_ID),
    )];
    steps.extend(communities.iter().flat_map(|c| {
        [
            ("GET system group (v2c)", get_request(1, c, 1)),
            (
                "GET system group (v1, only if v2c is silent)",
                get_request(0, c, 2),
            ),
        ]
    }));
    steps
}

/// The message version of an SNMP datagram (0 v1, 1 v2c, 3 v3), if it has the SNMP shape.
fn message_version(datagram: &[u8]) -> Option<u32> {
    let mut outer = Reader::new(datagram);
    let mut message = Reader::new(expect(&mut outer, SEQUENCE, "SNMP message").ok()?);
    ber::expect_u32(&mut message, "SNMP version").ok()
}

/// One variable binding: dotted OID, value tag, value bytes.
pub type Varbind<'a> = (String, u8, &'a [u8]);

/// The variable bindings of a GetResponse.
pub fn parse_varbinds(datagram: &[u8]) -> Result<Vec<Varbind<'_>>, ParseError> {
    let mut outer = Reader::new(datagram);
    let mut message = Reader::new(expect(&mut outer, SEQUENCE, "SNMP message")?);
    expect(&mut message, INTEGER, "SNMP version")?;
    expect(&mut message, OCTET_STRING, "SNMP community")?;
    let mut pdu = Reader::new(expect(
        &mut message,
        GET_RESPONSE,
        "SNMP PDU type (want GetResponse)",
    )?);
    expect(&mut pdu, INTEGER, "request id")?;
    let status = expect(&mut pdu, INTEGER, "error status")?;
    if status.iter().any(|b| *b != 0) {
        return Err(ParseError::Refused(format!(
            "SNMP error status {}",
            status.last().copied().unwrap_or(0)
        )));
    }
    expect(&mut pdu, INTEGER, "error index")?;
    let mut list = Reader::new(expect(&mut pdu, SEQUENCE, "varbind list")?);
    let mut out = Vec::new();
    while list.remaining() > 0 {
        let mut bind = Reader::new(expect(&mut list, SEQUENCE, "varbind")?);
        let name = oid_text(expect(&mut bind, ber::OBJECT_IDENTIFIER, "varbind name")?);
        let (tag, value) = ber::element(&mut bind)?;
        out.push((name, tag, value));
    }
    Ok(out)
}

/// Vendors by IANA private enterprise number (the number after 1.3.6.1.4.1 in sysObjectID, and
/// the first four octets of an SNMPv3 engine id), the few we name. Source: IANA's "Private
/// Enterprise Numbers" registry; the numbers chosen are those of the real recordings in
/// `snmpsim-data` and of common printer, camera and network vendors. 8072 (Net-SNMP) is left
/// out on purpose: it names the agent software of countless embedded Linux devices (cameras
/// among them), not their maker.
fn enterprise_vendor(number: u32) -> Option<&'static str> {
    Some(match number {
        9 => "Cisco",
        11 => "Hewlett-Packard",
        171 => "D-Link",
        253 => "Xerox",
        311 => "Microsoft",
        318 => "APC",
        367 => "Ricoh",
        368 => "Axis Communications",
        641 => "Lexmark",
        674 => "Dell",
        789 => "NetApp",
        1347 => "Kyocera",
        1588 => "Brocade",
        1602 => "Canon",
        2011 => "Huawei",
        2435 => "Brother",
        2636 => "Juniper Networks",
        4329 => "Siemens",
        12356 => "Fortinet",
        14823 => "Aruba Networks",
        14988 => "MikroTik",
        25461 => "Palo Alto Networks",
        25506 => "H3C",
        30065 => "Arista Networks",
        _ => return None,
    })
}

/// Printable text of a DisplayString on one line: real sysDescr values span lines (Cisco IOS
/// puts its copyright on the next), and dropping the line breaks would glue words together.
fn one_line(value: &[u8]) -> String {
    let spaced: Vec<u8> = value
        .iter()
        .map(|b| if b.is_ascii_whitespace() { b' ' } else { *b })
        .collect();
    text(&spaced)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
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
            ("1.3.6.1.2.1.1.1.0", OCTET_STRING) => id.push(
                Field::Detail,
                "sys_descr",
                one_line(value),
                "SNMPv2-MIB sysDescr.0",
            ),
            ("1.3.6.1.2.1.1.2.0", ber::OBJECT_IDENTIFIER) => {
                let object_id = oid_text(value);
                let enterprise = object_id
                    .strip_prefix("1.3.6.1.4.1.")
                    .and_then(|rest| rest.split('.').next())
                    .and_then(|n| n.parse::<u32>().ok());
                if let Some(vendor) = enterprise.and_then(enterprise_vendor) {
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
            ("1.3.6.1.2.1.1.5.0", OCTET_STRING) => id.push(
                Field::Detail,
                "sys_name",
                one_line(value),
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

/// Sends `request` and returns the first reply of message version `version`, skipping late
/// replies to earlier requests (UDP gives no other way to tell them apart here).
async fn exchange_version(
    session: &mut UdpSession<'_>,
    request: &[u8],
    version: u32,
) -> Result<Vec<u8>, ProbeError> {
    let mut reply = session.exchange(request).await?;
    for _ in 1..MAX_DATAGRAMS_PER_REQUEST {
        if message_version(&reply) == Some(version) {
            break;
        }
        reply = session.receive().await?;
    }
    Ok(reply)
}

/// Identifies the agent: the v3 engine discovery first, then each community, v2c then v1,
/// until one is answered.
///
/// The v3 discovery is always sent (one datagram, as nmap's `snmp-info` does): it is the only
/// identity a v3-only agent gives without credentials, an agent that answers a community gains
/// a stable id (often its MAC) that survives community changes, and it needs no guessed
/// secret, so it is the cheapest question to ask first. Silence to it is no verdict (v1-only
/// printers exist), so the communities are asked in any case.
pub async fn probe(
    session: &mut UdpSession<'_>,
    communities: &[String],
) -> Result<Identification, ProbeError> {
    let engine = match exchange_version(
        session,
        &v3::discovery_request(V3_MSG_ID, V3_REQUEST_ID),
        v3::VERSION,
    )
    .await
    {
        Ok(reply) => Some(v3::parse_report(&reply)),
        Err(ProbeError::Timeout(_)) => None,
        // Port unreachable and the like: nothing listens, communities would fare no better.
        Err(error) => return Err(error),
    };
    match (by_community(session, communities).await, engine) {
        (Ok(mut id), engine) => {
            // An unreadable Report does not spoil what a community revealed.
            if let Some(Ok(engine)) = engine {
                push_engine(&mut id, &engine);
            }
            Ok(id)
        }
        (Err(ProbeError::Timeout(_)), Some(Ok(engine))) => Ok(v3_only(&engine, communities.len())),
        (Err(ProbeError::Timeout(_)), Some(Err(error))) => Err(error.into()),
        (Err(error), _) => Err(error),
    }
}

/// Tries each community, v2c then v1, until one is answered.
async fn by_community(
    session: &mut UdpSession<'_>,
    communities: &[String],
) -> Result<Identification, ProbeError> {
    let mut last = ProbeError::Timeout("waiting for an SNMP reply");
    for community in communities {
        for (version, label) in [(1u8, "v2c"), (0u8, "v1")] {
            let request = get_request(version, community, u16::from(version) + 1);
            match exchange_version(session, &request, u32::from(version)).await {
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

/// An agent that answered only the v3 discovery: it wants credentials for anything else.
fn v3_only(engine: &v3::EngineReport, communities: usize) -> Identification {
    let mut id = Identification {
        protocol: PROTOCOL,
        fields: Vec::new(),
        // Whether its users encrypt (authPriv) cannot be seen without one of them.
        transit: Transit::Unknown,
        auth: Auth::Required,
        auth_reason: format!(
            "SNMPv3 answered only the engine discovery; none of the {communities} configured \
             communities was answered (v2c or v1), so reading needs credentials"
        ),
    };
    id.push(Field::Detail, "version", "v3", "SNMP message version");
    push_engine(&mut id, engine);
    id
}

/// Adds what the v3 discovery Report revealed.
fn push_engine(id: &mut Identification, engine: &v3::EngineReport) {
    const SOURCE: &str = "SNMPv3 Report msgAuthoritativeEngineID (RFC 3414 §4)";
    id.push(Field::Detail, "engine_id", hex(&engine.engine_id), SOURCE);
    if let Some(decoded) = v3::decode_engine_id(&engine.engine_id) {
        if let Some(vendor) = enterprise_vendor(decoded.enterprise) {
            id.push(
                Field::Vendor,
                "engine_vendor",
                vendor,
                "SNMPv3 engine id enterprise number (RFC 3411 SnmpEngineID)",
            );
        }
        id.push(
            Field::Detail,
            "engine_enterprise",
            decoded.enterprise.to_string(),
            "SNMPv3 engine id enterprise number (RFC 3411 SnmpEngineID)",
        );
        id.push(
            Field::Detail,
            "engine_id_format",
            decoded.format,
            "SNMPv3 engine id format octet (RFC 3411 SnmpEngineID)",
        );
        id.push(
            Field::Detail,
            "engine_id_data",
            decoded.data,
            "SNMPv3 engine id after the format octet (RFC 3411 SnmpEngineID)",
        );
    }
    id.push(
        Field::Detail,
        "engine_boots",
        engine.boots.to_string(),
        "SNMPv3 Report msgAuthoritativeEngineBoots",
    );
    // msgAuthoritativeEngineTime is left out on purpose: it ticks every second, so as an
    // observation it would change on every sweep and flood the history with non-changes.
}

/// What one of our own requests is, decoded (for the read-only allow-list test).
#[cfg(test)]
pub(crate) struct RequestShape {
    /// Message version: 0 v1, 1 v2c, 3 v3.
    pub version: u32,
    /// PDU tag.
    pub pdu: u8,
    /// Varbind names; every value must be NULL.
    pub varbinds: Vec<String>,
}

/// Decodes a request built by this module or [`v3`].
#[cfg(test)]
pub(crate) fn request_shape(datagram: &[u8]) -> Result<RequestShape, ParseError> {
    let mut outer = Reader::new(datagram);
    let mut message = Reader::new(expect(&mut outer, SEQUENCE, "message")?);
    let version = ber::expect_u32(&mut message, "version")?;
    let mut pdu_holder = if version == v3::VERSION {
        expect(&mut message, SEQUENCE, "msgGlobalData")?;
        expect(&mut message, OCTET_STRING, "msgSecurityParameters")?;
        let mut scoped = Reader::new(expect(&mut message, SEQUENCE, "scopedPDU")?);
        expect(&mut scoped, OCTET_STRING, "contextEngineID")?;
        expect(&mut scoped, OCTET_STRING, "contextName")?;
        scoped
    } else {
        expect(&mut message, OCTET_STRING, "community")?;
        message
    };
    let (pdu, content) = ber::element(&mut pdu_holder)?;
    let mut body = Reader::new(content);
    for field in ["request id", "error status", "error index"] {
        expect(&mut body, INTEGER, field)?;
    }
    let mut list = Reader::new(expect(&mut body, SEQUENCE, "varbinds")?);
    let mut varbinds = Vec::new();
    while list.remaining() > 0 {
        let mut bind = Reader::new(expect(&mut list, SEQUENCE, "varbind")?);
        varbinds.push(oid_text(expect(&mut bind, ber::OBJECT_IDENTIFIER, "name")?));
        expect(&mut bind, ber::NULL, "value (must be NULL in a read)")?;
    }
    Ok(RequestShape {
        version,
        pdu,
        varbinds,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::discovery::wire::fuzz;

    fn bytes(text: &str) -> Vec<u8> {
        hex::decode(text).unwrap()
    }

    /// A GetResponse with sysDescr, sysObjectID (Cisco) and sysName.
    fn reply() -> Vec<u8> {
        let binds = [
            tlv(
                0x30,
                &[ber::oid(&SYS_DESCR), tlv(0x04, b"Test Switch")].concat(),
            ),
            tlv(
                0x30,
                &[
                    ber::oid(&SYS_OBJECT_ID),
                    ber::oid(&[1, 3, 6, 1, 4, 1, 9, 1, 1208]),
                ]
                .concat(),
            ),
            tlv(0x30, &[ber::oid(&SYS_NAME), tlv(0x04, b"sw1")].concat()),
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
        assert_eq!(ber::oid(&SYS_DESCR), bytes("06082b06010201010100"));
        assert_eq!(
            ber::oid(&[1, 3, 6, 1, 4, 1, 14988]),
            bytes("06072b06010401f50c")
        );
        let request = get_request(1, "public", 1);
        assert_eq!(request[0], 0x30);
        let mut outer = Reader::new(&request);
        let mut message = Reader::new(expect(&mut outer, 0x30, "message").unwrap());
        assert_eq!(expect(&mut message, 0x02, "version").unwrap(), [1]);
        assert_eq!(expect(&mut message, 0x04, "community").unwrap(), b"public");
        let (tag, _) = ber::element(&mut message).unwrap();
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

    #[test]
    fn multi_line_descriptions_become_one_line() {
        assert_eq!(
            one_line(b"Cisco IOS Software, C3560\r\nTechnical Support\r\n\0"),
            "Cisco IOS Software, C3560 Technical Support"
        );
    }

    const SNMPSIM_REPORT: &[u8] = include_bytes!("../../fuzz/corpus/snmp/v3_report_snmpsim.bin");

    #[test]
    fn versions_tell_replies_apart() {
        assert_eq!(message_version(&reply()), Some(1));
        assert_eq!(message_version(&get_request(0, "public", 2)), Some(0));
        assert_eq!(message_version(SNMPSIM_REPORT), Some(3));
        assert_eq!(message_version(b"\x30\x00"), None);
    }

    #[test]
    fn v3_only_agent_needs_credentials_and_names_its_engine() {
        let engine = v3::parse_report(SNMPSIM_REPORT).unwrap();
        let id = v3_only(&engine, 2);
        assert_eq!(id.auth, Auth::Required);
        assert_eq!(id.transit, Transit::Unknown);
        assert_eq!(id.detail("version"), Some("v3"));
        assert_eq!(id.detail("engine_id"), Some("80000009030010f3c0ffee"));
        assert_eq!(id.detail("engine_enterprise"), Some("9"));
        assert_eq!(id.detail("engine_id_format"), Some("mac"));
        assert_eq!(id.detail("engine_id_data"), Some("00:10:f3:c0:ff:ee"));
        assert_eq!(id.get(Field::Vendor).unwrap().value, "Cisco");
        assert!(id.detail("engine_boots").is_some());
        assert!(
            id.detail("engine_time").is_none(),
            "a ticking clock is not an observation"
        );
    }

    #[test]
    fn community_vendor_comes_before_the_engine_vendor() {
        let mut id = with_verdict(parse(&reply()).unwrap(), "public", "v2c");
        let mut engine = v3::parse_report(SNMPSIM_REPORT).unwrap();
        engine.engine_id = bytes("80000a4c0300000c0a0b0c");
        push_engine(&mut id, &engine);
        assert_eq!(id.auth, Auth::None);
        assert_eq!(id.get(Field::Vendor).unwrap().value, "Cisco");
        assert_eq!(id.detail("engine_vendor"), Some("Juniper Networks"));
        let names: Vec<&str> = id.fields.iter().map(|f| f.name.as_str()).collect();
        let mut unique = names.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(
            names.len(),
            unique.len(),
            "observation names are unique: {names:?}"
        );
    }

    #[test]
    fn plan_holds_only_reads() {
        let planned = plan(&["public".to_string(), "s3cret".to_string()]);
        assert_eq!(planned.len(), 5);
        let first = request_shape(&planned[0].1).unwrap();
        assert_eq!((first.version, first.pdu), (3, GET_REQUEST));
        assert!(first.varbinds.is_empty());
        for (_, bytes) in &planned[1..] {
            let shape = request_shape(bytes).unwrap();
            assert_eq!(shape.pdu, GET_REQUEST);
            assert_eq!(shape.varbinds.len(), 3);
        }
    }
}
