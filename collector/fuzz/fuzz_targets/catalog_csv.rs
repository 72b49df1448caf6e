//! Feeds arbitrary bytes to the system register import as a `.csv` file
//! (`tillsyn_catalog::parse`): BOM stripping, UTF-8 check, delimiter sniffing, header
//! aliases, list cells and the shared validation. Any result is fine; a panic is the finding.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    // Errors are the expected answer to most inputs; only panics, aborts and hangs matter.
    let _ = tillsyn_catalog::parse(Path::new("register.csv"), bytes);
});
