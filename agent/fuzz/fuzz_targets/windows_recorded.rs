//! Fuzzes the parsers of recorded Windows output besides BitLocker, accounts and listeners:
//! the WMI class recordings (`Get-CimInstance ... | ConvertTo-Json`) through every class's row
//! parser, `auditpol /get /category:* /r` CSV, and Windows Defender Firewall rule values (the
//! `v2.33|Action=...|` grammar read from the registry): never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tillsyn_agent::inventory::windows::{audit, firewall, wmi};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = firewall::parse_rule("fuzz", &text);
    if let Ok(policy) = audit::parse_auditpol_csv(&text, "fuzz") {
        let _ = audit::observations(&policy);
    }
    let Ok(rows) = wmi::parse_recorded(&text, "fuzz") else {
        return;
    };
    for class in [
        wmi::QUICK_FIX,
        wmi::OPERATING_SYSTEM,
        wmi::SERVER_FEATURE,
        wmi::OPTIONAL_FEATURE,
        wmi::DEFENDER_STATUS,
    ] {
        let rows = wmi::WmiRows {
            class,
            origin: wmi::Origin::Live,
            rows: rows.clone(),
        };
        let _ = wmi::hotfixes(&rows);
        let _ = wmi::last_boot(&rows);
        let _ = wmi::features(&rows);
        let _ = wmi::defender(&rows);
    }
});
