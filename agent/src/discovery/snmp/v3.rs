//! SNMPv3 engine discovery (RFC 3414 §4): one unauthenticated, reportable GetRequest with an
//! empty engine id, user and varbind list. An agent that speaks v3 answers it with a Report
//! (usmStatsUnknownEngineIDs) whose security parameters carry its authoritative engine id,
//! boots and time — identity a v3-only agent gives away without any credential. This module
//! builds that request, reads the Report, and decodes the engine id (RFC 3411 SnmpEngineID).
//!
//! ```text
//! Request  30 len { 02 01 03 msgVersion
//!                   30 len { 02 msgID | 02 msgMaxSize | 04 01 04 msgFlags (reportable,
//!                            noAuthNoPriv) | 02 01 03 msgSecurityModel (USM) }
//!                   04 len { 30 len { 04 00 engineID | 02 01 00 boots | 02 01 00 time |
//!                                     04 00 user | 04 00 authParams | 04 00 privParams } }
//!                   30 len { 04 00 contextEngineID | 04 00 contextName |
//!                            a0 len GetRequest { 02 request-id | 02 01 00 | 02 01 00 | 30 00 } } }
//! Reply    the same shape; the security parameters hold the agent's engine id, boots and
//!          time, the PDU is a8 Report with usmStatsUnknownEngineIDs.0 (1.3.6.1.6.3.15.1.1.4.0)
//! EngineID RFC 3411 §5: high bit of octet 0 set -> octets 0-3 enterprise number (high bit
//!          cleared), octet 4 format: 1 IPv4, 2 IPv6, 3 MAC, 4 text, 5 octets,
//!          128-255 enterprise-specific; high bit clear -> pre-3411: 4-octet enterprise
//!          number, 8 enterprise-specific octets.
//! ```
//!
//! The request is byte-for-byte nmap's `SNMPv3GetRequest` service probe when given its ids
//! (tested below). Hand-written for the same reason as the v1/v2c GET: one fixed read-only
//! request, while SNMP crates bring a manager with SET and key handling we must not have.

use super::ber::{self, INTEGER, OCTET_STRING, SEQUENCE, expect, expect_u32};
use crate::discovery::wire::{ParseError, Reader, hex};
use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};

/// msgVersion of an SNMPv3 message.
pub const VERSION: u32 = 3;
/// usmStatsUnknownEngineIDs.0, the Report an agent sends to a discovery request.
pub const UNKNOWN_ENGINE_IDS: &str = "1.3.6.1.6.3.15.1.1.4.0";
/// The User-based Security Model (RFC 3414).
const USM: u32 = 3;
/// The largest message we accept, as nmap announces (UDP payload limit minus headers).
const MAX_SIZE: u32 = 65_507;
/// msgFlags: reportable, no authentication, no privacy.
const REPORTABLE: u8 = 0x04;
/// PDU tag of a Report (RFC 3416).
const REPORT: u8 = 0xA8;
/// RFC 3411 bounds on an SnmpEngineID's length.
const ENGINE_ID_LEN: std::ops::RangeInclusive<usize> = 5..=32;

// BEGIN REQUEST BUILDERS (scanned by the forbidden-function test in registry.rs)
const GET_REQUEST: u8 = 0xA0;

/// The discovery request: GetRequest without varbinds, unauthenticated, reportable.
pub fn discovery_request(msg_id: u16, request_id: u16) -> Vec<u8> {
    let header = [
        ber::integer(u32::from(msg_id)),
        ber::integer(MAX_SIZE),
        ber::tlv(OCTET_STRING, &[REPORTABLE]),
        ber::integer(USM),
    ]
    .concat();
    let usm = [
        ber::tlv(OCTET_STRING, &[]), // msgAuthoritativeEngineID: unknown yet
        ber::integer(0),             // msgAuthoritativeEngineBoots
        ber::integer(0),             // msgAuthoritativeEngineTime
        ber::tlv(OCTET_STRING, &[]), // msgUserName: none
        ber::tlv(OCTET_STRING, &[]), // msgAuthenticationParameters
        ber::tlv(OCTET_STRING, &[]), // msgPrivacyParameters
    ]
    .concat();
    let pdu = [
        ber::integer(u32::from(request_id)),
        ber::integer(0), // error-status
        ber::integer(0), // error-index
        ber::tlv(SEQUENCE, &[]),
    ]
    .concat();
    let scoped = [
        ber::tlv(OCTET_STRING, &[]), // contextEngineID
        ber::tlv(OCTET_STRING, &[]), // contextName
        ber::tlv(GET_REQUEST, &pdu),
    ]
    .concat();
    let message = [
        ber::integer(VERSION),
        ber::tlv(SEQUENCE, &header),
        ber::tlv(OCTET_STRING, &ber::tlv(SEQUENCE, &usm)),
        ber::tlv(SEQUENCE, &scoped),
    ]
    .concat();
    ber::tlv(SEQUENCE, &message)
}
// END REQUEST BUILDERS

/// What an agent's discovery Report revealed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EngineReport {
    /// msgAuthoritativeEngineID.
    pub engine_id: Vec<u8>,
    /// msgAuthoritativeEngineBoots: how often the engine restarted since its id was set.
    pub boots: u32,
    /// msgAuthoritativeEngineTime: seconds since the last boot.
    pub time: u32,
    /// The Report's first varbind (normally usmStatsUnknownEngineIDs.0).
    pub report_oid: Option<String>,
}

/// Reads an agent's Report to [`discovery_request`].
pub fn parse_report(datagram: &[u8]) -> Result<EngineReport, ParseError> {
    let mut outer = Reader::new(datagram);
    let mut message = Reader::new(expect(&mut outer, SEQUENCE, "SNMP message")?);
    let version = expect_u32(&mut message, "SNMP version")?;
    if version != VERSION {
        return Err(ParseError::Unexpected {
            field: "SNMP version (want 3)",
            value: u64::from(version),
        });
    }
    let mut header = Reader::new(expect(&mut message, SEQUENCE, "msgGlobalData")?);
    expect_u32(&mut header, "msgID")?;
    expect_u32(&mut header, "msgMaxSize")?;
    expect(&mut header, OCTET_STRING, "msgFlags")?;
    let model = expect_u32(&mut header, "msgSecurityModel")?;
    if model != USM {
        return Err(ParseError::Unexpected {
            field: "msgSecurityModel (want USM)",
            value: u64::from(model),
        });
    }
    let params = expect(&mut message, OCTET_STRING, "msgSecurityParameters")?;
    let mut usm = Reader::new(expect(
        &mut Reader::new(params),
        SEQUENCE,
        "USM parameters",
    )?);
    let engine_id = expect(&mut usm, OCTET_STRING, "msgAuthoritativeEngineID")?.to_vec();
    let boots = expect_u32(&mut usm, "msgAuthoritativeEngineBoots")?;
    let time = expect_u32(&mut usm, "msgAuthoritativeEngineTime")?;
    if engine_id.is_empty() {
        return Err(ParseError::Empty);
    }
    // An encrypted scopedPDU (OCTET STRING) cannot answer an unauthenticated request; only the
    // plaintext form is read, and only for the Report's varbind name.
    let mut scoped = Reader::new(expect(&mut message, SEQUENCE, "plaintext scopedPDU")?);
    expect(&mut scoped, OCTET_STRING, "contextEngineID")?;
    expect(&mut scoped, OCTET_STRING, "contextName")?;
    let mut pdu = Reader::new(expect(
        &mut scoped,
        REPORT,
        "SNMPv3 PDU type (want Report)",
    )?);
    expect(&mut pdu, INTEGER, "request id")?;
    expect(&mut pdu, INTEGER, "error status")?;
    expect(&mut pdu, INTEGER, "error index")?;
    let mut list = Reader::new(expect(&mut pdu, SEQUENCE, "varbind list")?);
    let report_oid = if list.remaining() > 0 {
        let mut bind = Reader::new(expect(&mut list, SEQUENCE, "varbind")?);
        Some(ber::oid_text(expect(
            &mut bind,
            ber::OBJECT_IDENTIFIER,
            "varbind name",
        )?))
    } else {
        None
    };
    Ok(EngineReport {
        engine_id,
        boots,
        time,
        report_oid,
    })
}

/// An SnmpEngineID taken apart per RFC 3411 §5.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EngineId {
    /// IANA private enterprise number of the engine's maker.
    pub enterprise: u32,
    /// The format octet's meaning: `ipv4`, `ipv6`, `mac`, `text`, `octets`,
    /// `enterprise-specific`, `reserved`, or `pre-rfc3411` for the old 12-octet form.
    pub format: &'static str,
    /// The rest in readable form: an address, a MAC, text, or hex.
    pub data: String,
}

/// Decodes `id`; `None` if it is too short or too long to be an SnmpEngineID.
pub fn decode_engine_id(id: &[u8]) -> Option<EngineId> {
    if !ENGINE_ID_LEN.contains(&id.len()) {
        return None;
    }
    let enterprise = u32::from_be_bytes([id[0] & 0x7F, id[1], id[2], id[3]]);
    if id[0] & 0x80 == 0 {
        return Some(EngineId {
            enterprise,
            format: "pre-rfc3411",
            data: hex(&id[4..]),
        });
    }
    let rest = &id[5..];
    let (format, data) = match id[4] {
        1 => ("ipv4", ipv4(rest)),
        2 => ("ipv6", ipv6(rest)),
        3 => ("mac", mac(rest)),
        4 => ("text", Some(crate::discovery::wire::text(rest))),
        5 => ("octets", None),
        128..=255 => ("enterprise-specific", None),
        _ => ("reserved", None),
    };
    Some(EngineId {
        enterprise,
        format,
        data: data.unwrap_or_else(|| hex(rest)),
    })
}

fn ipv4(bytes: &[u8]) -> Option<String> {
    let octets: [u8; 4] = bytes.try_into().ok()?;
    Some(Ipv4Addr::from(octets).to_string())
}

fn ipv6(bytes: &[u8]) -> Option<String> {
    let octets: [u8; 16] = bytes.try_into().ok()?;
    Some(Ipv6Addr::from(octets).to_string())
}

fn mac(bytes: &[u8]) -> Option<String> {
    if bytes.len() != 6 {
        return None;
    }
    let mut out = String::with_capacity(17);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            out.push(':');
        }
        let _ = write!(out, "{b:02x}");
    }
    Some(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::discovery::wire::fuzz;

    /// A Report captured from snmpsim 1.2 (pysnmp 7.1) started with
    /// `--v3-engine-id 80000009030010f3c0ffee`, answering [`discovery_request`].
    const SNMPSIM_REPORT: &[u8] = include_bytes!("../../../fuzz/corpus/snmp/v3_report_snmpsim.bin");

    /// nmap's `SNMPv3GetRequest` UDP payload (nmap-service-probes, payload.cc).
    const NMAP_SNMPV3_PROBE: &str = "303a020103300f02024a69020300ffe30401040201030410300e0400020100020100040004000400301204000400a00c020237f0020100020100\
3000";

    fn bytes(text: &str) -> Vec<u8> {
        hex::decode(text).unwrap()
    }

    #[test]
    fn request_is_nmaps_discovery_probe() {
        assert_eq!(discovery_request(0x4A69, 0x37F0), bytes(NMAP_SNMPV3_PROBE));
    }

    #[test]
    fn reads_snmpsim_report() {
        let report = parse_report(SNMPSIM_REPORT).unwrap();
        assert_eq!(hex(&report.engine_id), "80000009030010f3c0ffee");
        assert_eq!(report.report_oid.as_deref(), Some(UNKNOWN_ENGINE_IDS));
        let id = decode_engine_id(&report.engine_id).unwrap();
        assert_eq!(id.enterprise, 9);
        assert_eq!(id.format, "mac");
        assert_eq!(id.data, "00:10:f3:c0:ff:ee");
    }

    #[test]
    fn engine_id_formats() {
        let ipv4 = decode_engine_id(&bytes("800007e501c0000201")).unwrap();
        assert_eq!((ipv4.enterprise, ipv4.format), (2021, "ipv4"));
        assert_eq!(ipv4.data, "192.0.2.1");
        let text = decode_engine_id(&bytes("8000000904776172643473773100")).unwrap();
        assert_eq!((text.format, text.data.as_str()), ("text", "ward4sw1"));
        // Net-SNMP's default: enterprise 8072, format 128, random octets.
        let netsnmp = decode_engine_id(&bytes("80001f8880a1b2c3d4e5f60708")).unwrap();
        assert_eq!(netsnmp.enterprise, 8072);
        assert_eq!(netsnmp.format, "enterprise-specific");
        assert_eq!(netsnmp.data, "a1b2c3d4e5f60708");
        let old = decode_engine_id(&bytes("000000090a0b0c0d0e0f1011")).unwrap();
        assert_eq!((old.enterprise, old.format), (9, "pre-rfc3411"));
        assert!(decode_engine_id(&[0x80, 0, 0, 9]).is_none());
        assert!(decode_engine_id(&[0x80; 33]).is_none());
        // A MAC format with the wrong length still reports the octets, in hex.
        assert_eq!(
            decode_engine_id(&bytes("8000000903aabb")).unwrap().data,
            "aabb"
        );
    }

    #[test]
    fn refuses_other_versions_and_empty_engine_ids() {
        // Our own request is version 3 but carries an empty engine id.
        assert_eq!(
            parse_report(&discovery_request(1, 1)),
            Err(ParseError::Empty)
        );
        let mut v2c = SNMPSIM_REPORT.to_vec();
        v2c[4] = 1; // msgVersion
        assert!(matches!(
            parse_report(&v2c),
            Err(ParseError::Unexpected { .. })
        ));
    }

    #[test]
    fn never_panics() {
        fuzz::no_panic(SNMPSIM_REPORT, parse_report);
        fuzz::no_panic(SNMPSIM_REPORT, |b| {
            parse_report(b).map(|r| decode_engine_id(&r.engine_id))
        });
    }
}
