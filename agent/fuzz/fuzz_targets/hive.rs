//! Fuzzes the hive-file source: any bytes given as the SYSTEM hive must give a HiveError or a
//! source whose look-ups (keys, values of every type, subkeys, CurrentControlSet through
//! Select) return results or RegistryErrors, never a panic. Seeds (corpus/hive) are an empty
//! hive from regf's writer and fixture SYSTEM hives imported into it by hivexregedit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tillsyn_agent::inventory::windows::hive::{HIVE_DIR, HiveFile, HiveSource};
use tillsyn_agent::inventory::windows::registry::Registry;

fuzz_target!(|data: &[u8]| {
    let Ok(hive) = HiveFile::parse("/Windows/System32/config/SYSTEM", data.to_vec()) else {
        return;
    };
    let source = HiveSource::new(HIVE_DIR, vec![("HKLM\\SYSTEM".into(), hive)]);
    let registry = Registry::new(&source, "fuzz");
    // Breadth-first over the first keys, reading each one's values as the collectors do.
    let mut pending = vec!["HKLM\\SYSTEM".to_string()];
    let mut seen = 0;
    while let Some(key) = pending.pop() {
        seen += 1;
        if seen > 64 {
            break;
        }
        let _ = registry.dword(&key, "Start");
        let _ = registry.string(&key, "");
        let _ = registry.strings(&key, "x");
        if let Ok(names) = registry.subkeys(&key) {
            pending.extend(names.into_iter().take(8).map(|n| format!("{key}\\{n}")));
        }
    }
    let _ = registry.subkeys("HKLM\\SYSTEM\\CurrentControlSet\\Services");
    let _ = registry.dword(
        "HKLM\\SYSTEM\\CurrentControlSet\\Control\\Terminal Server",
        "fDenyTSConnections",
    );
});
