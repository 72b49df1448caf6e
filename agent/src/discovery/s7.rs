//! S7comm identification (Siemens S7-300/400 and compatibles): COTP connect, S7 setup
//! communication, then two System Status List (SZL) reads: 0x0011 (module identification: order
//! code, firmware) and 0x001C (component identification: names, serial number).
//!
//! Follows RFC 1006 (TPKT), ISO 8073 (COTP), and the S7comm layout as documented by the
//! Wireshark S7comm dissector and nmap's `s7-info.nse`; tested against python-snap7 3.3's
//! pure-Python server.
//!
//! ```text
//! TPKT   03 00 <total length u16 BE>
//! COTP   CR: 11 e0 0000 0001 00 | c0 01 0a (TPDU 1024) | c1 02 0100 (src TSAP) | c2 02 0102 (dst TSAP: rack 0, slot 2)
//!        DT: 02 f0 80
//! S7     32 <ROSCTR> 0000 <pdu ref> <param len u16> <data len u16> [error class, code if ROSCTR 2/3]
//!   setup (ROSCTR 1 job):   f0 00 0001 0001 01e0        (function 0xf0 setup communication)
//!   SZL read (ROSCTR 7 userdata): params 000112 04 11 44 01 00   (request, group 4 CPU, subfunction 1 read SZL)
//!                                 data   ff 09 0004 <SZL id> <index>
//!   SZL reply data: return code (ff ok), transport size, length u16,
//!                   SZL id u16, index u16, record length u16, record count u16, records
//!   0x0011 record: index u16, order code 20 chars, then type/version bytes (length varies:
//!                  28 on real CPUs, 26 from snap7 — so the record length field is obeyed)
//!   0x001C record: index u16, 32 chars (1 system name, 2 module name, 3 plant id,
//!                  4 copyright, 5 serial number, 7 module type name)
//! ```
//!
//! python-snap7 sends 0x001C with record length, count and indices all zero; then the
//! documented record length (34) and the documented index order are used instead.
//!
//! Only the setup job (0xf0) and the read-SZL userdata function are built: no variable access,
//! no block up/download, no PI service or stop.

use super::identity::{Field, Identification};
use super::session::{Frame, ProbeError, TcpSession};
use super::wire::{ParseError, Reader, text};

/// Protocol name in reports.
pub const PROTOCOL: &str = "s7comm";

/// SZL ids read.
pub const SZL_MODULE_IDENTIFICATION: u16 = 0x0011;
/// SZL ids read.
pub const SZL_COMPONENT_IDENTIFICATION: u16 = 0x001C;

/// The documented 0x001C record length, used when a server leaves the field zero.
const COMPONENT_RECORD_LEN: usize = 34;
/// The documented 0x001C index order, used when a server leaves indices zero.
const COMPONENT_INDEX_ORDER: [u16; 6] = [1, 2, 3, 4, 5, 7];

// BEGIN REQUEST BUILDERS (scanned by the forbidden-function test in registry.rs)
const FUNCTION_SETUP_COMMUNICATION: u8 = 0xF0;

/// COTP connection request to `called_tsap` (see [`CALLED_TSAPS`]).
pub fn cotp_connect(called_tsap: u16) -> Vec<u8> {
    let mut frame = vec![
        0x03, 0x00, 0x00, 22, // TPKT
        17, 0xE0, 0x00, 0x00, 0x00, 0x01, 0x00, // COTP CR, length 17
        0xC0, 0x01, 0x0A, // TPDU size 1024
        0xC1, 0x02, 0x01, 0x00, // calling TSAP
        0xC2, 0x02, // called TSAP, 2 bytes:
    ];
    frame.extend_from_slice(&called_tsap.to_be_bytes());
    frame
}

/// S7 setup communication job (one outstanding job each way, PDU 480).
pub fn setup_communication() -> Vec<u8> {
    vec![
        0x03,
        0x00,
        0x00,
        25, // TPKT
        0x02,
        0xF0,
        0x80, // COTP DT
        0x32,
        0x01,
        0x00,
        0x00,
        0x00,
        0x00,
        0x00,
        8,
        0x00,
        0x00, // S7 job header: 8 param bytes
        FUNCTION_SETUP_COMMUNICATION,
        0x00,
        0x00,
        0x01,
        0x00,
        0x01,
        0x01,
        0xE0,
    ]
}

/// Userdata request: read SZL `id`, index `index`.
pub fn read_szl(id: u16, index: u16) -> Vec<u8> {
    let mut frame = vec![
        0x03, 0x00, 0x00, 33, // TPKT
        0x02, 0xF0, 0x80, // COTP DT
        0x32, 0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 8, 0x00, 8, // S7 userdata header
        0x00, 0x01, 0x12, 0x04, 0x11, 0x44, 0x01,
        0x00, // request, group 4 (CPU), subfunction 1 (read SZL)
        0xFF, 0x09, 0x00, 4, // data: return code, octet string, 4 bytes
    ];
    frame.extend_from_slice(&id.to_be_bytes());
    frame.extend_from_slice(&index.to_be_bytes());
    frame
}
// END REQUEST BUILDERS

/// Called TSAPs, tried in this order on fresh connections (as nmap's `s7-info.nse` does):
/// rack 0 slot 2 (S7-300/400 CPUs), then 0x0200 (what other CPUs and CPs accept). The second
/// is only tried when the first connection request is refused.
pub const CALLED_TSAPS: [u16; 2] = [0x0102, 0x0200];

/// The error a refused COTP connection request becomes (see [`is_connect_refusal`]).
const COTP_REFUSED: &str = "COTP connection request refused";

/// The requests a probe sends (for `--dry-run`).
pub fn plan() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        (
            "COTP connection request (TSAP 0x0102: rack 0, slot 2)",
            cotp_connect(CALLED_TSAPS[0]),
        ),
        (
            "COTP connection request (TSAP 0x0200, new connection, only if 0x0102 is refused)",
            cotp_connect(CALLED_TSAPS[1]),
        ),
        ("S7 setup communication", setup_communication()),
        (
            "read SZL 0x0011 (module identification)",
            read_szl(SZL_MODULE_IDENTIFICATION, 0x0001),
        ),
        (
            "read SZL 0x001C (component identification)",
            read_szl(SZL_COMPONENT_IDENTIFICATION, 0x0001),
        ),
    ]
}

/// TPKT framing: version 3, total length in bytes 2..4.
pub fn framing(buf: &[u8]) -> Frame {
    match buf {
        [3, _, hi, lo, ..] => Frame::Length(usize::from(u16::from_be_bytes([*hi, *lo])).max(4)),
        [3, ..] | [] => Frame::Incomplete,
        _ => Frame::Invalid,
    }
}

/// Checks a COTP connection confirm.
pub fn parse_connect_confirm(frame: &[u8]) -> Result<(), ParseError> {
    let mut r = Reader::new(frame);
    r.skip(5)?;
    match r.u8()? {
        0xD0 => Ok(()),
        other => Err(ParseError::Unexpected {
            field: "COTP PDU type (want CC)",
            value: u64::from(other),
        }),
    }
}

/// Skips TPKT and COTP DT, returning a reader at the S7 header.
fn s7_reader(frame: &[u8]) -> Result<Reader<'_>, ParseError> {
    let mut r = Reader::new(frame);
    r.skip(4)?;
    let cotp_len = usize::from(r.u8()?);
    r.skip(cotp_len)?;
    let magic = r.u8()?;
    if magic != 0x32 {
        return Err(ParseError::Unexpected {
            field: "S7 protocol id",
            value: u64::from(magic),
        });
    }
    Ok(r)
}

/// Checks a setup communication ack.
pub fn parse_setup_ack(frame: &[u8]) -> Result<(), ParseError> {
    let mut r = s7_reader(frame)?;
    let rosctr = r.u8()?;
    r.skip(8)?;
    let error = r.u16_be()?;
    if rosctr != 3 || error != 0 {
        return Err(ParseError::Refused(format!(
            "S7 setup answered with ROSCTR {rosctr}, error {error:#06x}"
        )));
    }
    Ok(())
}

/// One SZL reply: the id and its records (index, bytes after the index).
#[derive(Debug, PartialEq, Eq)]
pub struct Szl<'a> {
    /// SZL id.
    pub id: u16,
    /// Records as (index, payload after the index).
    pub records: Vec<(u16, &'a [u8])>,
}

/// Parses an SZL read reply by its length fields.
pub fn parse_szl(frame: &[u8]) -> Result<Szl<'_>, ParseError> {
    let mut r = s7_reader(frame)?;
    let rosctr = r.u8()?;
    if rosctr != 7 {
        return Err(ParseError::Unexpected {
            field: "S7 ROSCTR (want userdata)",
            value: u64::from(rosctr),
        });
    }
    r.skip(4)?; // reserved, PDU reference
    let param_len = usize::from(r.u16_be()?);
    let data_len = usize::from(r.u16_be()?);
    let params = r.take(param_len)?;
    if let [.., hi, lo] = params
        && param_len >= 12
        && (*hi, *lo) != (0, 0)
    {
        return Err(ParseError::Refused(format!(
            "SZL read error {:#06x}",
            u16::from_be_bytes([*hi, *lo])
        )));
    }
    let mut data = Reader::new(r.take(data_len)?);
    let return_code = data.u8()?;
    if return_code != 0xFF {
        return Err(ParseError::Refused(format!(
            "SZL read return code {return_code:#04x}"
        )));
    }
    data.skip(1)?; // transport size
    let len = usize::from(data.u16_be()?);
    let mut szl = Reader::new(data.take(len.min(data.remaining()))?);
    let id = szl.u16_be()?;
    szl.skip(2)?; // index asked
    let record_len = usize::from(szl.u16_be()?);
    let count = usize::from(szl.u16_be()?);
    Ok(Szl {
        id,
        records: records(&mut szl, id, record_len, count)?,
    })
}

fn records<'a>(
    szl: &mut Reader<'a>,
    id: u16,
    record_len: usize,
    count: usize,
) -> Result<Vec<(u16, &'a [u8])>, ParseError> {
    let (record_len, count) = match (record_len, count) {
        (0, _) | (_, 0) if id == SZL_COMPONENT_IDENTIFICATION => {
            (COMPONENT_RECORD_LEN, szl.remaining() / COMPONENT_RECORD_LEN)
        }
        (len, n) if len >= 2 => (len, n),
        _ => {
            return Err(ParseError::Unexpected {
                field: "SZL record length",
                value: record_len as u64,
            });
        }
    };
    let mut out = Vec::new();
    // `count` comes from the wire; records are read one by one, so a lie only ends in Truncated.
    for position in 0..count {
        let record = match szl.take(record_len) {
            Ok(record) => record,
            Err(_) if !out.is_empty() => break,
            Err(error) => return Err(error),
        };
        let mut index = u16::from_be_bytes([record[0], record[1]]);
        if index == 0 && id == SZL_COMPONENT_IDENTIFICATION {
            index = COMPONENT_INDEX_ORDER.get(position).copied().unwrap_or(0);
        }
        out.push((index, &record[2..]));
    }
    Ok(out)
}

/// Parses one SZL reply (0x0011 or 0x001C) into identity fields.
pub fn parse(frame: &[u8]) -> Result<Identification, ParseError> {
    let szl = parse_szl(frame)?;
    let mut id = Identification::plaintext_open(PROTOCOL);
    for (index, payload) in &szl.records {
        add_record(&mut id, szl.id, *index, payload);
    }
    if id.fields.is_empty() {
        return Err(ParseError::Empty);
    }
    Ok(id)
}

fn add_record(id: &mut Identification, szl: u16, index: u16, payload: &[u8]) {
    let name = text(&payload[..payload.len().min(32)]);
    let source = |what: &str| format!("SZL {szl:#06x} index {index:#06x} ({what})");
    match (szl, index) {
        (SZL_MODULE_IDENTIFICATION, 0x0001) => id.push(
            Field::Model,
            "order_code",
            text(&payload[..payload.len().min(20)]),
            source("module order code"),
        ),
        (SZL_MODULE_IDENTIFICATION, 0x0007) => {
            if let [.., major, minor, patch] = payload
                && payload.len() >= 23
            {
                id.push(
                    Field::Firmware,
                    "firmware",
                    format!("V{major}.{minor}.{patch}"),
                    source("firmware version"),
                );
            }
        }
        (SZL_COMPONENT_IDENTIFICATION, 1) => id.push(
            Field::Detail,
            "system_name",
            name,
            source("automation system name"),
        ),
        (SZL_COMPONENT_IDENTIFICATION, 2) => {
            id.push(Field::Detail, "module_name", name, source("module name"));
        }
        (SZL_COMPONENT_IDENTIFICATION, 3) => id.push(
            Field::Detail,
            "plant_id",
            name,
            source("plant identification"),
        ),
        (SZL_COMPONENT_IDENTIFICATION, 4) => {
            if name.to_lowercase().contains("siemens") {
                id.push(
                    Field::Vendor,
                    "vendor",
                    "Siemens",
                    source("copyright names Siemens"),
                );
            }
            id.push(Field::Detail, "copyright", name, source("copyright"));
        }
        (SZL_COMPONENT_IDENTIFICATION, 5) => id.push(
            Field::Serial,
            "serial",
            name,
            source("serial number of module"),
        ),
        (SZL_COMPONENT_IDENTIFICATION, 7) => id.push(
            Field::Detail,
            "module_type_name",
            name,
            source("module type name"),
        ),
        _ => {}
    }
}

/// Whether `error` is a refused COTP connection request, worth a new connection to the next
/// TSAP.
pub fn is_connect_refusal(error: &ProbeError) -> bool {
    matches!(error, ProbeError::Parse(ParseError::Refused(reason)) if reason == COTP_REFUSED)
}

/// Connects at COTP level to `called_tsap`, then at S7 level, and reads both identification
/// lists.
pub async fn probe(
    session: &mut TcpSession<'_>,
    called_tsap: u16,
) -> Result<Identification, ProbeError> {
    session.send(&cotp_connect(called_tsap)).await?;
    // A CPU refuses a wrong TSAP with a disconnect request or by closing the connection.
    match session.read_frame(framing).await {
        Ok(frame) if parse_connect_confirm(&frame).is_ok() => {}
        Ok(_) | Err(ProbeError::Eof(_)) => {
            return Err(ParseError::Refused(COTP_REFUSED.to_string()).into());
        }
        Err(error) => return Err(error),
    }
    session.send(&setup_communication()).await?;
    parse_setup_ack(&session.read_frame(framing).await?)?;
    let mut id = Identification::plaintext_open(PROTOCOL);
    for szl in [SZL_MODULE_IDENTIFICATION, SZL_COMPONENT_IDENTIFICATION] {
        session.send(&read_szl(szl, 0x0001)).await?;
        match parse(&session.read_frame(framing).await?) {
            Ok(part) => id.fields.extend(part.fields),
            // A CPU may refuse one list and still answer the other.
            Err(ParseError::Refused(_) | ParseError::Empty) => {}
            Err(error) => return Err(error.into()),
        }
    }
    if id.fields.is_empty() {
        return Err(ParseError::Empty.into());
    }
    Ok(id)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::discovery::wire::fuzz;

    /// Replies captured from python-snap7 3.3 on loopback.
    const SZL_0011: &str = "0300004302f080320700000000000c0026000112081284010000000000ff09002200110001001a0001000136455337203331352d32454831342d304142300000030300";
    const SZL_001C: &str = "030000f702f080320700000000000c00da000112081284010000000000ff0900d6001c0001000000000000534e4150372d53455256455200000000000000000000000000000000000000000000435055203331352d3220504e2f445000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000004f726967696e616c205369656d656e732045717569706d656e7400000000000000005320432d433255523238393232303132000000000000000000000000000000000000435055203331352d3220504e2f445000000000000000000000000000000000000000";

    fn bytes(text: &str) -> Vec<u8> {
        hex::decode(text).unwrap()
    }

    #[test]
    fn request_lengths_match_tpkt() {
        for (_, request) in plan() {
            assert_eq!(framing(&request), Frame::Length(request.len()));
        }
        assert!(cotp_connect(0x0200).ends_with(&[0xC2, 0x02, 0x02, 0x00]));
        assert_eq!(
            cotp_connect(0x0102),
            bytes("0300001611e00000000100c0010ac1020100c2020102")
        );
        assert!(is_connect_refusal(
            &ParseError::Refused(COTP_REFUSED.to_string()).into()
        ));
        assert!(!is_connect_refusal(&ParseError::Empty.into()));
    }

    #[test]
    fn parses_snap7_replies() {
        let module = parse(&bytes(SZL_0011)).unwrap();
        assert_eq!(
            module.get(Field::Model).unwrap().value,
            "6ES7 315-2EH14-0AB0"
        );
        let component = parse(&bytes(SZL_001C)).unwrap();
        assert_eq!(
            component.get(Field::Serial).unwrap().value,
            "S C-C2UR28922012"
        );
        assert_eq!(component.get(Field::Vendor).unwrap().value, "Siemens");
        assert_eq!(
            component.detail("module_type_name"),
            Some("CPU 315-2 PN/DP")
        );
        assert_eq!(component.detail("system_name"), Some("SNAP7-SERVER"));
    }

    #[test]
    fn handshake_replies() {
        parse_connect_confirm(&bytes("0300001611d00001000100c0010ac1020100c2020102")).unwrap();
        parse_setup_ack(&bytes(
            "0300001b02f080320300000000000800000000f0000001000101e0",
        ))
        .unwrap();
        assert!(
            parse_setup_ack(&bytes(
                "0300001b02f080320300000000000800008104f0000001000101e0"
            ))
            .is_err()
        );
    }

    #[test]
    fn never_panics() {
        fuzz::no_panic(&bytes(SZL_0011), parse);
        fuzz::no_panic(&bytes(SZL_001C), parse);
        fuzz::no_panic(
            &bytes("0300001b02f080320300000000000800000000f0000001000101e0"),
            parse_setup_ack,
        );
    }
}
