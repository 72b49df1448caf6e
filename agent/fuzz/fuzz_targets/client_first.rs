//! Fuzzes the replies of this host's client-speaks-first services (PostgreSQL SSLRequest answer,
//! Redis RESP line): any bytes must give a value or `None`, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tillsyn_agent::inventory::client_first;

fuzz_target!(|data: &[u8]| {
    let _ = client_first::parse_pg_ssl_reply(data);
    let _ = client_first::parse_redis_reply(data);
    let _ = client_first::redis_error_reply(data);
});
