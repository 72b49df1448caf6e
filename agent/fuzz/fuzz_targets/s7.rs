//! Fuzzes the s7 reply parser: any bytes must give a value or a ParseError, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = tillsyn_agent::discovery::s7::parse(data);
    let _ = tillsyn_agent::discovery::s7::parse_connect_confirm(data);
    let _ = tillsyn_agent::discovery::s7::parse_setup_ack(data);
});
