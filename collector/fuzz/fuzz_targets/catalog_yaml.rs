//! Feeds arbitrary bytes to the system register import as a `.yaml` file
//! (`tillsyn_catalog::parse`): serde_yaml_ng with untagged scalars and person
//! entries, `deny_unknown_fields`, then the shared validation. A panic is the finding.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    // Errors are the expected answer to most inputs; only panics, aborts and hangs matter.
    let _ = tillsyn_catalog::parse(Path::new("register.yaml"), bytes);
});
