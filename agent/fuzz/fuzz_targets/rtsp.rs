//! Fuzzes the rtsp reply parsers (OPTIONS head, DESCRIBE head and SDP): any bytes must give a
//! value or a ParseError, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = tillsyn_agent::discovery::rtsp::parse(data);
    let _ = tillsyn_agent::discovery::rtsp::parse_describe(data);
});
