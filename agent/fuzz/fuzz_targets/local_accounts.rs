//! Fuzzes the recorded Windows local-accounts parser (PowerShell's `Get-LocalUser` and
//! `Get-LocalGroupMember` JSON) and the observations and `privileged_access` verdict over its
//! result: never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tillsyn_agent::inventory::windows::accounts;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(local) = accounts::parse_recorded(&text, "fuzz") {
        let _ = accounts::observations(&local);
        let _ = accounts::control(Ok(&local));
    }
});
