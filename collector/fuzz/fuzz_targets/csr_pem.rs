//! Feeds arbitrary text to the enrollment CSR check
//! (`tillsyn_intake::certificate::verify_csr`): PEM framing, PKCS#10 DER
//! parsing (x509-parser) and the self-signature check (ring). The wire field is a protobuf
//! `string`, so only valid UTF-8 reaches it; other bytes are skipped, not fed lossily.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tillsyn_intake::certificate::verify_csr;

fuzz_target!(|bytes: &[u8]| {
    let Ok(pem) = std::str::from_utf8(bytes) else {
        return;
    };
    // Errors are the expected answer to most inputs; only panics, aborts and hangs matter.
    let _ = verify_csr(pem);
});
