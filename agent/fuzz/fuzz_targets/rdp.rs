//! Fuzzes the RDP probe's reply parser (X.224 Connection Confirm with RDP negotiation data):
//! any bytes must give a negotiation or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tillsyn_agent::inventory::rdp;

fuzz_target!(|data: &[u8]| {
    let _ = rdp::parse_confirm(data);
});
