//! Fuzzes the `reg export` parser and the look-ups over its result: any bytes (UTF-16LE with
//! BOM, UTF-8, garbage) must give an export or a RegTextError, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tillsyn_agent::inventory::windows::reg_text;
use tillsyn_agent::inventory::windows::registry::{ExportSource, Registry};

fuzz_target!(|data: &[u8]| {
    let Ok(export) = reg_text::parse_bytes(data) else {
        return;
    };
    let keys: Vec<String> = export.keys.keys().cloned().collect();
    let source = ExportSource::new("/registry", vec![("/registry/fuzz.reg".into(), export)]);
    let registry = Registry::new(&source, "fuzz");
    for key in keys.iter().take(16) {
        let _ = registry.subkeys(key);
        let _ = registry.dword(key, "");
        let _ = registry.strings(key, "x");
    }
    let _ = registry.subkeys("HKLM\\SYSTEM\\CurrentControlSet\\Services");
});
