//! Fuzzes the lastlog and wtmp record parsers on arbitrary bytes (a host's login records are
//! writable by group `utmp` and by whoever owns the host): never a panic, and a whole number of
//! records always parses as such.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tillsyn_agent::inventory::lastlog;

fuzz_target!(|data: &[u8]| {
    let _ = lastlog::parse_wtmp(data);
    let whole = data.len() - data.len() % lastlog::UTMP_RECORD;
    if let Err(lastlog::RecordError::Length { .. }) = lastlog::parse_wtmp(&data[..whole]) {
        panic!("{whole} bytes are whole records");
    }
    for record in data.chunks(lastlog::LASTLOG_RECORD) {
        let _ = lastlog::parse_lastlog_record(record);
    }
});
