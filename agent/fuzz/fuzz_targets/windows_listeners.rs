//! Fuzzes the recorded Windows listener-table parser (PowerShell's `Get-NetTCPConnection` and
//! `Get-NetUDPEndpoint` JSON) and the `listener` observations over its result: never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tillsyn_agent::inventory::windows::listeners;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(found) = listeners::parse_recorded(&text) {
        let _ = listeners::observations(&found);
    }
});
