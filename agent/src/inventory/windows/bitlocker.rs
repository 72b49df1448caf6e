//! BitLocker per volume and the `rest_encryption` control on Windows.
//!
//! Two inputs, one result type ([`BitLockerVolume`]) and one verdict:
//! - recorded `Win32_EncryptableVolume` instances (WMI namespace
//!   `root\CIMV2\Security\MicrosoftVolumeEncryption`) as JSON, an array of objects with the
//!   class's `DeviceID`, `DriveLetter`, `VolumeType`, `ProtectionStatus`, `ConversionStatus`,
//!   `EncryptionMethod` and `KeyProtectorTypes` (the `GetKeyProtectorType` results of the
//!   volume's `GetKeyProtectors`); see `agent/tests/fixtures/windows/README.md` for the
//!   PowerShell that records it;
//!   live, the same properties and protector types read through WMI (`wmi_live`) in the same
//!   JSON shape, parsed by the same [`parse_wmi_value`];
//! - the text of `manage-bde -status` (English): recorded, or run live when WMI fails (the
//!   control's reason then names the WMI failure).
//!
//! A fixed volume (OS or data; removable ones are not data volumes) is encrypted only when it
//! is fully encrypted *and* protection is on. A suspended volume (fully encrypted, protection
//! off) keeps its key in the clear on the disk, so it is not encrypted; neither is one being
//! encrypted or decrypted. A locked volume (protection status unknown) is undecided.

use serde::Deserialize;

use crate::inventory::{Control, Evidence, Observation};

const PROBE: &str = "bitlocker";

/// Protection as BitLocker reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protection {
    /// Protection On.
    On,
    /// Protection Off (decrypted, or suspended when fully encrypted).
    Off,
    /// Locked or not reported.
    Unknown,
}

/// One volume's BitLocker state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BitLockerVolume {
    /// Drive letter (`C:`) or device id.
    pub name: String,
    /// `os`, `data` or `removable`.
    pub kind: String,
    /// Protection status.
    pub protection: Protection,
    /// `fully_encrypted`, `fully_decrypted`, `encryption_in_progress`, ...
    pub conversion: String,
    /// `XTS-AES 128`, `AES 256`, `None`, ...
    pub method: String,
    /// `TPM`, `TPM And PIN`, `Numerical Password`, ...
    pub key_protectors: Vec<String>,
    /// Where it was read.
    pub evidence: Evidence,
}

/// Why BitLocker data could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{source_name}: {message}")]
pub struct BitLockerError {
    /// The file or command.
    pub source_name: String,
    /// What is wrong.
    pub message: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct WmiVolume {
    #[serde(rename = "DeviceID")]
    device_id: Option<String>,
    drive_letter: Option<String>,
    volume_type: Option<u32>,
    protection_status: u32,
    conversion_status: u32,
    encryption_method: Option<u32>,
    #[serde(default)]
    key_protector_types: Vec<u32>,
}

/// Parses recorded `Win32_EncryptableVolume` JSON (one object or an array, as
/// `ConvertTo-Json` writes either).
pub fn parse_wmi_json(text: &str, source: &str) -> Result<Vec<BitLockerVolume>, BitLockerError> {
    let fail = |message: String| BitLockerError {
        source_name: source.into(),
        message,
    };
    let value: serde_json::Value = serde_json::from_str(text.trim_start_matches('\u{feff}'))
        .map_err(|e| fail(e.to_string()))?;
    parse_wmi_value(value, source)
}

/// Parses `Win32_EncryptableVolume` instances already read as JSON: the recorded file's
/// content, or the live agent's WMI answer in the same shape (`wmi_live`).
pub fn parse_wmi_value(
    value: serde_json::Value,
    source: &str,
) -> Result<Vec<BitLockerVolume>, BitLockerError> {
    let fail = |message: String| BitLockerError {
        source_name: source.into(),
        message,
    };
    let list = match value {
        serde_json::Value::Array(list) => list,
        other => vec![other],
    };
    list.into_iter()
        .enumerate()
        .map(|(i, item)| {
            let v: WmiVolume =
                serde_json::from_value(item).map_err(|e| fail(format!("volume {i}: {e}")))?;
            let name = v
                .drive_letter
                .clone()
                .filter(|d| !d.is_empty())
                .or(v.device_id.clone())
                .unwrap_or_else(|| format!("volume {i}"));
            Ok(BitLockerVolume {
                kind: match v.volume_type {
                    Some(0) => "os",
                    Some(2) => "removable",
                    // 1 is a fixed data volume; an unreported type is counted as one.
                    _ => "data",
                }
                .into(),
                protection: match v.protection_status {
                    0 => Protection::Off,
                    1 => Protection::On,
                    _ => Protection::Unknown,
                },
                conversion: match v.conversion_status {
                    0 => "fully_decrypted",
                    1 => "fully_encrypted",
                    2 => "encryption_in_progress",
                    3 => "decryption_in_progress",
                    4 => "encryption_paused",
                    5 => "decryption_paused",
                    _ => "unknown",
                }
                .into(),
                method: match v.encryption_method.unwrap_or(0) {
                    0 => "None",
                    1 => "AES 128 with Diffuser",
                    2 => "AES 256 with Diffuser",
                    3 => "AES 128",
                    4 => "AES 256",
                    5 => "Hardware Encryption",
                    6 => "XTS-AES 128",
                    7 => "XTS-AES 256",
                    _ => "unknown",
                }
                .into(),
                key_protectors: v
                    .key_protector_types
                    .iter()
                    .map(|t| protector_name(*t).to_string())
                    .collect(),
                evidence: Evidence {
                    source: source.into(),
                    line: 0,
                    probe: PROBE.into(),
                    detail: format!(
                        "Win32_EncryptableVolume {name}: ProtectionStatus {}, ConversionStatus {}",
                        v.protection_status, v.conversion_status
                    ),
                },
                name,
            })
        })
        .collect()
}

/// `GetKeyProtectorType` numbers as `manage-bde` names them.
fn protector_name(kind: u32) -> &'static str {
    match kind {
        1 => "TPM",
        2 => "External Key",
        3 => "Numerical Password",
        4 => "TPM And PIN",
        5 => "TPM And Startup Key",
        6 => "TPM And PIN And Startup Key",
        7 => "Public Key",
        8 => "Password",
        9 => "TPM Certificate",
        10 => "Active Directory Account",
        _ => "Unknown",
    }
}

/// Parses `manage-bde -status` output: a `Volume X: [label]` line, an optional `[OS Volume]` /
/// `[Data Volume]` line, then `Name: value` lines and the indented `Key Protectors:` list.
pub fn parse_manage_bde(text: &str, source: &str) -> Result<Vec<BitLockerVolume>, BitLockerError> {
    let mut volumes: Vec<BitLockerVolume> = Vec::new();
    let mut in_protectors = false;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        let line_no = u32::try_from(i + 1).unwrap_or(u32::MAX);
        if let Some(rest) = line.strip_prefix("Volume ") {
            let name = rest.split_whitespace().next().unwrap_or(rest).to_string();
            volumes.push(BitLockerVolume {
                name: name.clone(),
                kind: "data".into(),
                protection: Protection::Unknown,
                conversion: "unknown".into(),
                method: "unknown".into(),
                key_protectors: Vec::new(),
                evidence: Evidence {
                    source: source.into(),
                    line: line_no,
                    probe: PROBE.into(),
                    detail: format!("manage-bde volume {name}"),
                },
            });
            in_protectors = false;
            continue;
        }
        let Some(volume) = volumes.last_mut() else {
            continue;
        };
        match line {
            "[OS Volume]" => volume.kind = "os".into(),
            "[Data Volume]" => volume.kind = "data".into(),
            "[Removable Volume]" | "[Removable Data Volume]" => volume.kind = "removable".into(),
            _ => {}
        }
        if let Some((key, value)) = line.split_once(':') {
            let value = value.trim();
            in_protectors = false;
            match key.trim() {
                "Conversion Status" => {
                    volume.conversion = value.to_lowercase().replace(' ', "_");
                }
                "Encryption Method" => volume.method = value.to_string(),
                "Protection Status" => {
                    volume.protection = if value.starts_with("Protection On") {
                        Protection::On
                    } else if value.starts_with("Protection Off") {
                        Protection::Off
                    } else {
                        Protection::Unknown
                    };
                }
                "Key Protectors" => {
                    in_protectors = true;
                    if !value.is_empty() && !value.eq_ignore_ascii_case("None Found") {
                        volume.key_protectors.push(value.to_string());
                    }
                }
                _ => {}
            }
            continue;
        }
        if in_protectors && !line.is_empty() && !line.eq_ignore_ascii_case("None Found") {
            volume.key_protectors.push(line.to_string());
        }
    }
    if volumes.is_empty() {
        return Err(BitLockerError {
            source_name: source.into(),
            message: "no \"Volume X:\" section: not manage-bde -status output".into(),
        });
    }
    Ok(volumes)
}

/// The verdict for one volume: `encrypted`, `unencrypted` or `unknown`, with why.
pub fn verdict(volume: &BitLockerVolume) -> (&'static str, String) {
    match (volume.conversion.as_str(), volume.protection) {
        ("fully_encrypted", Protection::On) => (
            "encrypted",
            format!(
                "BitLocker on ({}, {})",
                volume.method,
                volume.key_protectors.join(" + ")
            ),
        ),
        ("fully_encrypted", Protection::Off) => (
            "unencrypted",
            "BitLocker suspended: the key is stored in the clear on the disk".into(),
        ),
        ("fully_decrypted", _) => ("unencrypted", "not encrypted (fully decrypted)".into()),
        (_, Protection::Unknown) => (
            "unknown",
            format!(
                "protection status unknown (locked?), conversion {}",
                volume.conversion
            ),
        ),
        (other, _) => (
            "unencrypted",
            format!("conversion {other}: not all data is encrypted"),
        ),
    }
}

/// Records each volume and derives the control; `problem` names an input that could not be
/// read, which leaves the control `unknown`.
pub fn control(
    volumes: &[BitLockerVolume],
    problem: Option<String>,
    observations: &mut Vec<Observation>,
) -> Control {
    let mut decided: Vec<(&BitLockerVolume, &'static str, String)> = Vec::new();
    for volume in volumes {
        let (state, why) = verdict(volume);
        observations.push(Observation {
            category: "volume".into(),
            name: volume.name.clone(),
            value: serde_json::json!({
                "kind": volume.kind,
                "encryption": state,
                "protection": format!("{:?}", volume.protection).to_lowercase(),
                "conversion": volume.conversion,
                "method": volume.method,
                "key_protectors": volume.key_protectors,
                "reason": why,
            }),
            evidence: vec![volume.evidence.clone()],
        });
        if volume.kind != "removable" {
            decided.push((volume, state, why));
        }
    }
    let rank = |s: &str| match s {
        "unencrypted" => 2,
        "unknown" => 1,
        _ => 0,
    };
    let (state, reason) = if let Some(problem) = problem {
        ("unknown", problem)
    } else if let Some(worst) = decided.iter().map(|d| d.1).max_by_key(|s| rank(s)) {
        let names: Vec<String> = decided
            .iter()
            .filter(|d| d.1 == worst)
            .map(|d| format!("{} ({})", d.0.name, d.2))
            .collect();
        let reason = match worst {
            "unencrypted" => format!("unencrypted fixed volume(s): {}", names.join(", ")),
            "unknown" => format!("at-rest encryption undecided for: {}", names.join(", ")),
            _ => format!(
                "every fixed volume is BitLocker-protected: {}",
                names.join(", ")
            ),
        };
        (worst, reason)
    } else {
        (
            "unknown",
            "no BitLocker volume data (WMI or manage-bde) was available".into(),
        )
    };
    let evidence = decided
        .iter()
        .filter(|d| d.1 == state)
        .map(|d| d.0.evidence.clone())
        .collect();
    Control {
        name: "rest_encryption".into(),
        state: state.into(),
        reason,
        evidence,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // In tests an unwrap that fails is the failing assertion.
mod tests {
    use super::*;

    const BDE: &str = "BitLocker Drive Encryption: Configuration Tool version 10.0.20348\n\
Copyright (C) 2013 Microsoft Corporation. All rights reserved.\n\n\
Disk volumes that can be protected with\nBitLocker Drive Encryption:\n\
Volume C: []\n[OS Volume]\n\n    Size:                 126.45 GB\n    BitLocker Version:    2.0\n\
    Conversion Status:    Fully Encrypted\n    Percentage Encrypted: 100.0%\n\
    Encryption Method:    XTS-AES 128\n    Protection Status:    Protection Off (1 reboots left)\n\
    Lock Status:          Unlocked\n    Identification Field: Unknown\n    Key Protectors:\n\
        TPM\n        Numerical Password\n\n\
Volume D: [Data]\n[Data Volume]\n\n    Conversion Status:    Fully Decrypted\n\
    Encryption Method:    None\n    Protection Status:    Protection Off\n\
    Key Protectors:       None Found\n";

    #[test]
    fn manage_bde_suspended_and_decrypted_are_unencrypted() {
        let volumes = parse_manage_bde(BDE, "manage-bde -status").unwrap();
        assert_eq!(volumes.len(), 2);
        assert_eq!(volumes[0].kind, "os");
        assert_eq!(volumes[0].key_protectors, ["TPM", "Numerical Password"]);
        assert_eq!(volumes[0].evidence.line, 6);
        assert_eq!(verdict(&volumes[0]).0, "unencrypted");
        assert!(verdict(&volumes[0]).1.contains("suspended"));
        assert!(volumes[1].key_protectors.is_empty());
        let control = control(&volumes, None, &mut Vec::new());
        assert_eq!(control.state, "unencrypted");
        assert!(control.reason.contains("C:") && control.reason.contains("D:"));
    }

    #[test]
    fn wmi_and_manage_bde_give_the_same_volume() {
        let wmi = r#"{"DeviceID":"\\\\?\\Volume{1}\\","DriveLetter":"C:","VolumeType":0,
            "ProtectionStatus":1,"ConversionStatus":1,"EncryptionMethod":6,"KeyProtectorTypes":[1,3]}"#;
        let from_wmi = parse_wmi_json(wmi, "wmi.json").unwrap();
        let text = BDE.replace("Protection Off (1 reboots left)", "Protection On");
        let from_text = parse_manage_bde(&text, "bde").unwrap();
        let strip = |v: &BitLockerVolume| BitLockerVolume {
            evidence: Evidence::default(),
            ..v.clone()
        };
        let mut expected = strip(&from_text[0]);
        expected.conversion = "fully_encrypted".into();
        assert_eq!(strip(&from_wmi[0]), expected);
        assert_eq!(verdict(&from_wmi[0]).0, "encrypted");
    }

    #[test]
    fn bad_input_is_an_error_naming_the_source() {
        let e = parse_wmi_json("[{\"ProtectionStatus\":\"x\"}]", "wmi.json").unwrap_err();
        assert!(e.to_string().starts_with("wmi.json: volume 0"), "{e}");
        assert!(parse_manage_bde("garbage", "bde").is_err());
    }
}
