//! Fuzzes the TLS ServerHello version reader: any bytes must give a version or a ParseError,
//! never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = tillsyn_agent::discovery::tls::server_hello_version(data);
    let _ = tillsyn_agent::discovery::tls::looks_like_tls(data);
});
