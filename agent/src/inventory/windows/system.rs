//! Windows host facts from the registry: version (edition, build, UBR), name and domain,
//! installed software (both Uninstall hives), services, and the hardening settings the
//! registry holds (firewall profiles, Defender real-time policy, Windows Update policy, event
//! forwarding). Each is an observation whose evidence names key and value; nothing here
//! decides a control.

use serde_json::json;

use super::registry::{Found, Registry, RegistryError};
use crate::inventory::{Evidence, FactError, HostFacts, Observation};

const PROBE: &str = "windows_system";
const CURRENT_VERSION: &str = "HKLM\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion";
const COMPUTER_NAME: &str = "HKLM\\SYSTEM\\CurrentControlSet\\Control\\ComputerName\\ComputerName";
const TCPIP: &str = "HKLM\\SYSTEM\\CurrentControlSet\\Services\\Tcpip\\Parameters";
const UNINSTALL: [(&str, &str); 2] = [
    (
        "HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Uninstall",
        "64-bit",
    ),
    (
        "HKLM\\SOFTWARE\\WOW6432Node\\Microsoft\\Windows\\CurrentVersion\\Uninstall",
        "32-bit",
    ),
];
const SERVICES: &str = "HKLM\\SYSTEM\\CurrentControlSet\\Services";
const FIREWALL: &str =
    "HKLM\\SYSTEM\\CurrentControlSet\\Services\\SharedAccess\\Parameters\\FirewallPolicy";

/// Fills the host frame from the registry (offline roots; live hosts keep `sysinfo`'s values
/// where it has them) and records the version observation. Returns `CurrentBuild`.
pub fn host(
    registry: &Registry<'_>,
    facts: &mut HostFacts,
    live: bool,
    observations: &mut Vec<Observation>,
    errors: &mut Vec<FactError>,
) -> Option<u32> {
    let registry = registry.with_probe(PROBE);
    let mut evidence = Vec::new();
    let mut get = |key: &str, name: &str| -> Option<String> {
        match registry.raw(key, name) {
            Ok(Some(found)) => {
                evidence.push(found.evidence);
                Some(match found.value {
                    super::registry::Data::String(s) | super::registry::Data::ExpandString(s) => s,
                    super::registry::Data::Dword(n) => n.to_string(),
                    other => other.to_string(),
                })
            }
            Ok(None) => None,
            Err(e) => {
                errors.push(error(&e));
                None
            }
        }
    };
    let product = get(CURRENT_VERSION, "ProductName");
    let edition = get(CURRENT_VERSION, "EditionID");
    let installation = get(CURRENT_VERSION, "InstallationType");
    let display = get(CURRENT_VERSION, "DisplayVersion");
    let build = get(CURRENT_VERSION, "CurrentBuild");
    let ubr = get(CURRENT_VERSION, "UBR");
    let hostname = get(COMPUTER_NAME, "ComputerName");
    let domain = get(TCPIP, "Domain");
    if product.is_none() && build.is_none() {
        return None;
    }
    let build_number = build.as_deref().and_then(|b| b.parse::<u32>().ok());
    let version = match (&build, &ubr) {
        (Some(b), Some(u)) => format!("{b}.{u}"),
        (Some(b), None) => b.clone(),
        _ => String::new(),
    };
    if !live {
        facts.os_name = "Windows".into();
        facts.os_version = format!(
            "{} (build {version})",
            product
                .clone()
                .unwrap_or_default()
                .trim_start_matches("Windows ")
        );
        facts.kernel_version.clone_from(&version);
        if let Some(name) = &hostname {
            facts.hostname = name.to_lowercase();
        }
    }
    observations.push(Observation {
        category: "windows_host".into(),
        name: "version".into(),
        value: json!({
            "product_name": product,
            "edition": edition,
            "installation_type": installation,
            "display_version": display,
            "build": build,
            "ubr": ubr,
            "computer_name": hostname,
            "domain": domain.filter(|d| !d.is_empty()),
        }),
        evidence,
    });
    build_number
}

fn error(e: &RegistryError) -> FactError {
    FactError {
        collector: PROBE.into(),
        source: match e {
            RegistryError::Source { origin, .. } | RegistryError::WrongType { origin, .. } => {
                origin.clone()
            }
        },
        error: e.to_string(),
    }
}

/// One `package` observation per Uninstall entry with a `DisplayName`, as on Linux; system
/// components (`SystemComponent` = 1) are kept and marked.
pub fn software(
    registry: &Registry<'_>,
    observations: &mut Vec<Observation>,
    errors: &mut Vec<FactError>,
) {
    let registry = registry.with_probe(PROBE);
    let mut seen = std::collections::BTreeSet::new();
    for (root, bits) in UNINSTALL {
        let entries = match registry.subkeys(root) {
            Ok(entries) => entries,
            Err(e) => {
                errors.push(error(&e));
                continue;
            }
        };
        for entry in entries {
            let key = format!("{root}\\{entry}");
            let read = || -> Result<Option<Observation>, RegistryError> {
                let Some(Found {
                    value: name,
                    evidence,
                }) = registry.string(&key, "DisplayName")?
                else {
                    return Ok(None);
                };
                let text = |v: &str| -> Result<Option<String>, RegistryError> {
                    Ok(registry.string(&key, v)?.map(|f| f.value))
                };
                Ok(Some(Observation {
                    category: "package".into(),
                    name: name.clone(),
                    value: json!({
                        "manager": "windows-uninstall",
                        "version": text("DisplayVersion")?,
                        "publisher": text("Publisher")?,
                        "install_date": text("InstallDate")?,
                        "architecture": bits,
                        "system_component": registry
                            .dword(&key, "SystemComponent")?
                            .is_some_and(|f| f.value == 1),
                    }),
                    evidence: vec![evidence],
                }))
            };
            match read() {
                Ok(Some(mut observation)) => {
                    // Category and name must be unique per report: the same product in both
                    // hives (or twice in one) is told apart by its key.
                    if !seen.insert(observation.name.clone()) {
                        observation.name = format!("{} [{bits} {entry}]", observation.name);
                        seen.insert(observation.name.clone());
                    }
                    observations.push(observation);
                }
                Ok(None) => {}
                Err(e) => errors.push(error(&e)),
            }
        }
    }
}

/// One `windows_service` observation per Win32 service (`Type` 0x10 or 0x20; drivers are
/// left out), with start type, binary path and account.
pub fn services(
    registry: &Registry<'_>,
    observations: &mut Vec<Observation>,
    errors: &mut Vec<FactError>,
) {
    let registry = registry.with_probe(PROBE);
    let names = match registry.subkeys(SERVICES) {
        Ok(names) => names,
        Err(e) => {
            errors.push(error(&e));
            return;
        }
    };
    for name in names {
        let key = format!("{SERVICES}\\{name}");
        let read = || -> Result<Option<Observation>, RegistryError> {
            let kind = registry.dword(&key, "Type")?;
            if kind.as_ref().is_none_or(|k| k.value & 0x30 == 0) {
                return Ok(None);
            }
            let start = registry.dword(&key, "Start")?;
            let start_name = match start.as_ref().map(|f| f.value) {
                Some(0) => "boot",
                Some(1) => "system",
                Some(2) => "automatic",
                Some(3) => "manual",
                Some(4) => "disabled",
                _ => "unknown",
            };
            let text = |v: &str| -> Result<Option<String>, RegistryError> {
                Ok(registry.string(&key, v)?.map(|f| f.value))
            };
            let mut evidence: Vec<Evidence> = start.into_iter().map(|f| f.evidence).collect();
            if evidence.is_empty() {
                evidence.extend(kind.map(|k| k.evidence));
            }
            Ok(Some(Observation {
                category: "windows_service".into(),
                name: name.clone(),
                value: json!({
                    "display_name": text("DisplayName")?,
                    "start": start_name,
                    "image_path": text("ImagePath")?,
                    "account": text("ObjectName")?,
                }),
                evidence,
            }))
        };
        match read() {
            Ok(Some(observation)) => observations.push(observation),
            Ok(None) => {}
            Err(e) => errors.push(error(&e)),
        }
    }
}

/// Hardening settings the registry holds, each as a `hardening` observation when set.
pub fn hardening(
    registry: &Registry<'_>,
    observations: &mut Vec<Observation>,
    errors: &mut Vec<FactError>,
) {
    let registry = registry.with_probe(PROBE);
    let settings: [(&str, String, &str); 6] = [
        ("firewall_domain", format!("{FIREWALL}\\DomainProfile"), "EnableFirewall"),
        ("firewall_private", format!("{FIREWALL}\\StandardProfile"), "EnableFirewall"),
        ("firewall_public", format!("{FIREWALL}\\PublicProfile"), "EnableFirewall"),
        (
            "defender_realtime_disabled",
            "HKLM\\SOFTWARE\\Policies\\Microsoft\\Windows Defender\\Real-Time Protection".into(),
            "DisableRealtimeMonitoring",
        ),
        (
            "windows_update_disabled",
            "HKLM\\SOFTWARE\\Policies\\Microsoft\\Windows\\WindowsUpdate\\AU".into(),
            "NoAutoUpdate",
        ),
        (
            "event_forwarding",
            "HKLM\\SOFTWARE\\Policies\\Microsoft\\Windows\\EventLog\\EventForwarding\\SubscriptionManager"
                .into(),
            "1",
        ),
    ];
    for (name, key, value) in settings {
        match registry.raw(&key, value) {
            Ok(Some(found)) => observations.push(Observation {
                category: "hardening".into(),
                name: name.into(),
                value: match found.value {
                    super::registry::Data::Dword(n) => json!(n),
                    other => json!(other.to_string()),
                },
                evidence: vec![found.evidence],
            }),
            Ok(None) => {}
            Err(e) => errors.push(error(&e)),
        }
    }
}
