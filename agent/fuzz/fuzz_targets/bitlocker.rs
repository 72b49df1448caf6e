//! Fuzzes the recorded BitLocker parsers (Win32_EncryptableVolume JSON, `manage-bde -status`
//! text) and the verdict over their result: never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tillsyn_agent::inventory::windows::bitlocker;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for volumes in [
        bitlocker::parse_wmi_json(&text, "fuzz"),
        bitlocker::parse_manage_bde(&text, "fuzz"),
    ]
    .into_iter()
    .flatten()
    {
        let _ = bitlocker::control(&volumes, None, &mut Vec::new());
    }
});
