//! Feeds arbitrary bytes as a DER certificate to `tillsyn_intake::certificate::common_name`
//! (x509-parser), which reads the agent id out of a client certificate. Any result is fine;
//! a panic is the finding.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|der: &[u8]| {
    // Errors are the expected answer to most inputs; only panics, aborts and hangs matter.
    let _ = tillsyn_intake::certificate::common_name(der);
});
