//! Fuzzes the opcua reply parser and the chunk reassembler: any bytes must give a value or a
//! ParseError, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = tillsyn_agent::discovery::opcua::parse(data);
    let _ = tillsyn_agent::discovery::opcua::parse_open(data);
    let _ = tillsyn_agent::discovery::opcua::parse_ack(data);
    if let Ok(message) = tillsyn_agent::discovery::opcua::reassemble(data) {
        let _ = tillsyn_agent::discovery::opcua::parse(&message);
    }
});
