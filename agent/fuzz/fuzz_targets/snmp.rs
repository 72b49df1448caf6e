//! Fuzzes the snmp reply parsers (v1/v2c GetResponse, v3 discovery Report and the engine id
//! decoder): any bytes must give a value or a ParseError, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tillsyn_agent::discovery::snmp;

fuzz_target!(|data: &[u8]| {
    let _ = snmp::parse(data);
    if let Ok(report) = snmp::v3::parse_report(data) {
        let _ = snmp::v3::decode_engine_id(&report.engine_id);
    }
    // Engine ids come from the wire too; decode the raw input as one.
    let _ = snmp::v3::decode_engine_id(data);
});
