//! Windows hosts: the same observations and the same three controls as on Linux, read from
//! the registry and from recorded command or WMI output instead of Linux files.
//!
//! Where the data comes from:
//! - **Live** (`--root /` on Windows, also under wine): the Win32 registry API ([`live`]), the
//!   OpenSSH Server configuration at `C:\ProgramData\ssh\sshd_config`, WMI (`wmi_live`) for
//!   BitLocker (`Win32_EncryptableVolume`, else `manage-bde -status`), hotfixes, the last boot,
//!   roles and features and Defender's state, `AuditQuerySystemPolicy` for the audit policy,
//!   the NetAPI (`NetUserEnum`, `NetLocalGroupGetMembers`) for local
//!   accounts, the IP Helper API (`GetExtendedTcpTable`, `GetExtendedUdpTable`) for listeners,
//!   whose sockets the Linux probes (`tls_probe`, `rdp`) then probe.
//! - **Offline** (`--root DIR` holding [`REGISTRY_DIR`]): every `*.reg` file there, as
//!   `reg export` writes it (see [`reg_text`]), e.g. `reg export HKLM\SYSTEM system.reg` and
//!   `reg export HKLM\SOFTWARE software.reg`; `DIR/ProgramData/ssh/sshd_config`; and under
//!   [`RECORDED_DIR`] the recorded `Win32_EncryptableVolume.json` or `manage-bde-status.txt`,
//!   and `local-accounts.json` (PowerShell's `Get-LocalUser` and `Get-LocalGroupMember`; see
//!   [`accounts`]), and `listeners.json` (`Get-NetTCPConnection -State Listen`,
//!   `Get-NetUDPEndpoint`; see [`listeners`]), the WMI classes as `Get-CimInstance ... |
//!   ConvertTo-Json` writes them (`Win32_QuickFixEngineering.json`,
//!   `Win32_OperatingSystem.json`, `Win32_ServerFeature.json` / `Win32_OptionalFeature.json`,
//!   `MSFT_MpComputerStatus.json`; see [`wmi`]), and `auditpol.csv` (`auditpol /get
//!   /category:* /r`; see [`audit`]). A WMI recording or the audit policy that is absent is
//!   not recorded, not an error.
//! - **Offline hives** (`--root DIR` holding `DIR/Windows/System32/config/SYSTEM` or
//!   `SOFTWARE`, see [`hive`]): the registry from the hive files themselves, e.g. a mounted
//!   system disk or `reg save HKLM\SYSTEM SYSTEM`; the other offline files as above. When a
//!   root holds both hives and [`REGISTRY_DIR`], the hives are read and the exports are not
//!   (a [`FactError`] says so): one moment's whole registry is not mixed with another's part.
//!
//! A `.reg` file that cannot be parsed is a [`FactError`] naming the file and line, a hive that
//! is missing, truncated, corrupt or dirty one naming the file; the registry is then
//! incomplete, so `mfa` and `transit_encryption` are `unknown` with that error as their reason
//! (the other files' observations are still reported).
//!
//! # Layout
//! - [`registry`]: the [`registry::RegistrySource`] trait, the `reg export` source and typed
//!   look-ups with evidence.
//! - [`reg_text`]: the pure `reg export` parser (fuzzed).
//! - [`hive`]: the hive-file source over the `regf` parser (fuzzed).
//! - `live`: the Win32 registry source (Windows builds only).
//! - [`system`]: host version, software, services, hardening observations.
//! - [`logon`]: login paths and the `mfa` control.
//! - [`listeners`]: the listener table (live or recorded) as the Linux `Listener`s.
//! - [`transit`]: SChannel, SMB, WinRM, RDP, the listener table and the probes, and the
//!   `transit_encryption` control.
//! - [`firewall`]: Windows Defender Firewall's profiles and inbound rules: which sockets
//!   other hosts can reach.
//! - [`bitlocker`]: BitLocker volumes and the `rest_encryption` control.
//! - [`wmi`]: the other WMI classes (hotfixes, last boot, features, Defender) and their
//!   parsers; `wmi_live` queries them and `Win32_EncryptableVolume` (Windows builds only).
//! - [`audit`]: the audit policy (`audit_policy` observations), which `log_protection` here
//!   weighs with the event-forwarding policy.
//! - [`gateway`]: the RD Gateway role and the NPS extension for Entra MFA (observations).
//! - [`accounts`]: local accounts, Administrators and Remote Desktop Users, and the
//!   `privileged_access` control; `accounts_live` reads them through the NetAPI (Windows
//!   builds only).

pub mod accounts;
#[cfg(windows)]
pub mod accounts_live;
pub mod audit;
pub mod bitlocker;
pub mod firewall;
pub mod gateway;
pub mod hive;
pub mod listeners;
#[cfg(windows)]
pub mod live;
pub mod logon;
pub mod reg_text;
pub mod registry;
pub mod system;
pub mod transit;
pub mod wmi;
#[cfg(windows)]
pub mod wmi_live;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use hive::{HIVE_DIR, HIVES, HiveFile, HiveSource};
use registry::{ExportSource, Registry, RegistrySource};

use super::{
    Control, Evidence, FactError, Inventory, Observation, config_file, input, is_live_root, rooted,
    sshd, tls_probe,
};

const COLLECTOR: &str = "windows_registry";

/// The directory under an offline root holding `reg export` files.
pub const REGISTRY_DIR: &str = "/registry";
/// The directory under an offline root holding recorded WMI and command output.
pub const RECORDED_DIR: &str = "/recorded";
/// OpenSSH Server for Windows' configuration, relative to the system drive.
pub const SSHD_CONFIG: &str = "/ProgramData/ssh/sshd_config";
/// Largest recorded BitLocker file read.
const MAX_RECORDED: u64 = 4 * 1024 * 1024;

/// A parser of one recorded BitLocker form.
type Parser = fn(&str, &str) -> Result<Vec<bitlocker::BitLockerVolume>, bitlocker::BitLockerError>;

/// Whether `root` is a Windows host for an agent built for `os`: the live root on Windows, or
/// an offline root holding [`REGISTRY_DIR`] or a hive file under [`HIVE_DIR`].
pub fn applies(root: &Path, os: &str) -> bool {
    if is_live_root(root) {
        return os == "windows";
    }
    rooted(root, REGISTRY_DIR).is_dir() || has_hives(root)
}

/// Whether the offline `root` holds any of the [`HIVES`].
fn has_hives(root: &Path) -> bool {
    HIVES
        .iter()
        .any(|(name, _)| rooted(root, &format!("{HIVE_DIR}/{name}")).exists())
}

/// Collects the Windows facts and controls of `root` into `inventory`.
pub fn collect(root: &Path, inventory: &mut Inventory) {
    let live = is_live_root(root);
    let (source, problems) = open_source(root, live, &mut inventory.errors);
    let registry = Registry::new(source.as_ref(), COLLECTOR);
    let Inventory {
        host,
        observations,
        controls,
        errors,
        ..
    } = inventory;
    let build = system::host(&registry, host, live, observations, errors);
    system::software(&registry, observations, errors);
    system::services(&registry, observations, errors);
    system::hardening(&registry, observations, errors);
    gateway::collect(&registry, observations, errors);
    let mut patience = wmi::Patience::default();
    wmi_facts(root, live, &mut patience, host, observations, errors);

    let sshd = openssh(root, live, &registry, observations, errors);
    let table = read_listeners(root, live, errors);
    let verdicts = match &table {
        Ok(found) => {
            observations.extend(listeners::observations(found));
            if live {
                tls_probe::collect(found, observations, errors)
            } else {
                BTreeMap::new()
            }
        }
        Err(_) => BTreeMap::new(),
    };
    let table = match &table {
        Ok(found) => transit::ListenerTable::Known {
            listeners: found,
            verdicts: &verdicts,
        },
        Err(why) => transit::ListenerTable::Unknown(why.clone()),
    };
    if problems.is_empty() {
        controls.push(logon::control(
            &registry,
            sshd.as_ref().map(|r| r.as_ref().map_err(Clone::clone)),
            observations,
        ));
        let rdp = logon::rdp_settings(&registry.with_probe("windows_transit"));
        let iis = iis_config(root, live);
        controls.push(transit::control(
            &registry,
            rdp.as_ref().map_err(ToString::to_string),
            build,
            iis,
            &table,
            observations,
        ));
    } else {
        let reason = format!(
            "the offline registry could not be read completely: {}",
            problems.join("; ")
        );
        controls.push(logon::unknown(reason.clone()));
        controls.push(Control {
            name: "transit_encryption".into(),
            state: "unknown".into(),
            evidence: vec![Evidence {
                source: source.origin(),
                line: 0,
                probe: COLLECTOR.into(),
                detail: reason.clone(),
            }],
            reason,
        });
    }
    let (volumes, problem, fallback) = bitlocker_volumes(root, live, &mut patience, errors);
    let mut rest = bitlocker::control(&volumes, problem, observations);
    if let Some(why) = fallback {
        rest.reason = format!("{} (read with manage-bde -status: {why})", rest.reason);
    }
    controls.push(rest);
    let policy = audit_policy(root, live, errors);
    if let Some(Ok(found)) = &policy {
        observations.extend(audit::observations(found));
    }
    controls.push(log_protection(observations, policy.as_ref()));
    let local = local_accounts(root, live, errors);
    if let Ok(accounts) = &local {
        observations.extend(accounts::observations(accounts));
    }
    controls.push(accounts::control(local.as_ref().map_err(Clone::clone)));
}

/// The listener table: the IP Helper API live, the recorded JSON offline; `Err` is the reason
/// the transit control gives (a file that is there but bad is recorded as an error too).
fn read_listeners(
    root: &Path,
    live: bool,
    errors: &mut Vec<FactError>,
) -> Result<Vec<super::listeners::Listener>, String> {
    let result = if live {
        read_live_listeners()
    } else {
        let path = rooted(root, listeners::RECORDED_PATH);
        if !path.exists() {
            return Err(format!(
                "no recorded listener table ({}; see the README for the PowerShell that writes it)",
                listeners::RECORDED_PATH
            ));
        }
        read_bytes(&path, listeners::MAX_RECORDED_BYTES as u64)
            .map_err(|e| format!("{}: {e}", listeners::RECORDED_PATH))
            .and_then(|b| {
                reg_text::decode(&b)
                    .map_err(|e| format!("{}: {}", listeners::RECORDED_PATH, e.message))
            })
            .and_then(|text| listeners::parse_recorded(&text).map_err(|e| e.to_string()))
    };
    result.inspect_err(|error| {
        errors.push(FactError {
            collector: "listeners".into(),
            source: if live {
                "IP Helper API".into()
            } else {
                listeners::RECORDED_PATH.into()
            },
            error: error.clone(),
        });
    })
}

#[cfg(windows)]
fn read_live_listeners() -> Result<Vec<super::listeners::Listener>, String> {
    listeners::read_live().map_err(|e| e.to_string())
}

/// Only Windows builds read the live listener table; `applies` sends no other live root here.
#[cfg(not(windows))]
fn read_live_listeners() -> Result<Vec<super::listeners::Listener>, String> {
    Err("the live listener table is read on Windows only".into())
}

/// The local accounts: the NetAPI live, the recorded JSON offline; `Err` is the reason the
/// control gives (the error is recorded too).
fn local_accounts(
    root: &Path,
    live: bool,
    errors: &mut Vec<FactError>,
) -> Result<accounts::LocalAccounts, String> {
    let file = format!("{RECORDED_DIR}/{}", accounts::RECORDED_FILE);
    let result = if live {
        read_live_accounts()
    } else {
        let path = rooted(root, &file);
        if !path.exists() {
            return Err(format!(
                "no recorded local accounts ({file}; see the README for the PowerShell that writes it)"
            ));
        }
        read_bytes(&path, accounts::MAX_RECORDED_BYTES as u64)
            .map_err(|e| format!("{file}: {e}"))
            .and_then(|b| reg_text::decode(&b).map_err(|e| format!("{file}: {}", e.message)))
            .and_then(|text| accounts::parse_recorded(&text, &file).map_err(|e| e.to_string()))
    };
    result.inspect_err(|error| {
        errors.push(FactError {
            collector: accounts::PROBE.into(),
            source: if live { "NetAPI".into() } else { file.clone() },
            error: error.clone(),
        });
    })
}

#[cfg(windows)]
fn read_live_accounts() -> Result<accounts::LocalAccounts, String> {
    accounts_live::read().map_err(|e| e.to_string())
}

/// Only Windows builds read live accounts; `applies` sends no other live root here.
#[cfg(not(windows))]
fn read_live_accounts() -> Result<accounts::LocalAccounts, String> {
    Err("live local accounts are read on Windows only".into())
}

/// The audit policy: `AuditQuerySystemPolicy` live, the recorded `auditpol /r` CSV offline
/// (`None` when not recorded); `Err` is why not (recorded as an error too).
fn audit_policy(
    root: &Path,
    live: bool,
    errors: &mut Vec<FactError>,
) -> Option<Result<Vec<audit::AuditSubcategory>, String>> {
    let file = format!("{RECORDED_DIR}/{}", audit::RECORDED_FILE);
    let result = if live {
        read_live_audit_policy()
    } else {
        let path = rooted(root, &file);
        if !path.exists() {
            return None;
        }
        read_bytes(&path, audit::MAX_RECORDED_BYTES as u64)
            .map_err(|e| format!("{file}: {e}"))
            .and_then(|b| reg_text::decode(&b).map_err(|e| format!("{file}: {}", e.message)))
            .and_then(|text| audit::parse_auditpol_csv(&text, &file).map_err(|e| e.to_string()))
    };
    Some(result.inspect_err(|error| {
        errors.push(FactError {
            collector: audit::PROBE.into(),
            source: if live {
                "AuditQuerySystemPolicy".into()
            } else {
                file.clone()
            },
            error: error.clone(),
        });
    }))
}

#[cfg(windows)]
fn read_live_audit_policy() -> Result<Vec<audit::AuditSubcategory>, String> {
    let ids: Vec<u128> = audit::SUBCATEGORIES
        .iter()
        .map(|(byte, _)| audit::subcategory_id(*byte))
        .collect();
    let settings = tillsyn_netapi::system_audit_policy(&ids).map_err(|e| {
        let name = match e.code {
            120 => " (ERROR_CALL_NOT_IMPLEMENTED)",
            1314 => " (ERROR_PRIVILEGE_NOT_HELD: the agent must run as an administrator)",
            _ => "",
        };
        format!("{e}{name}")
    })?;
    Ok(settings
        .into_iter()
        .filter_map(|(id, bits)| {
            let (_, name) = audit::SUBCATEGORIES
                .iter()
                .find(|(byte, _)| audit::subcategory_id(*byte) == id)?;
            let evidence = Evidence {
                source: "AuditQuerySystemPolicy".into(),
                line: 0,
                probe: audit::PROBE.into(),
                detail: format!("{name}: AuditingInformation {bits}"),
            };
            Some(audit::AuditSubcategory::new(
                &audit::guid_text(id),
                name,
                bits,
                evidence,
            ))
        })
        .collect())
}

/// Only Windows builds read the live audit policy; `applies` sends no other live root here.
#[cfg(not(windows))]
fn read_live_audit_policy() -> Result<Vec<audit::AuditSubcategory>, String> {
    Err("the live audit policy is read on Windows only".into())
}

/// `log_protection` from the Windows Event Forwarding policy `hardening` observes and the audit
/// policy: a subscription manager ships events off the host (`forwarded`); without one the
/// event log keeps them only here (`local_only`), unless the audit policy audits nothing at all
/// (`none`, as on Linux when nothing is recorded). Without the audit policy, `local_only`
/// assumes Windows' default logon auditing and says so.
fn log_protection(
    observations: &[Observation],
    policy: Option<&Result<Vec<audit::AuditSubcategory>, String>>,
) -> Control {
    let forwarding = observations
        .iter()
        .find(|o| o.category == "hardening" && o.name == "event_forwarding");
    let known = match policy {
        Some(Ok(found)) => Some(found),
        _ => None,
    };
    let logon = known.and_then(|found| found.iter().find(|s| s.guid == audit::LOGON));
    let audited = match (known, logon) {
        (Some(_), Some(logon)) => format!("Logon is audited as {}", logon.setting()),
        (Some(_), None) => "the audit policy has no Logon subcategory".into(),
        (None, _) => match policy {
            Some(Err(why)) => format!(
                "the audit policy could not be read ({why}); Windows audits logons by default"
            ),
            _ => "the audit policy was not recorded; Windows audits logons by default".into(),
        },
    };
    let mut evidence: Vec<Evidence> = logon.map(|l| l.evidence.clone()).into_iter().collect();
    if let Some(o) = forwarding {
        evidence.splice(0..0, o.evidence.iter().cloned());
        return Control {
            name: "log_protection".into(),
            state: "forwarded".into(),
            reason: format!(
                "Windows Event Forwarding sends events to a subscription manager: {}; {audited}",
                o.value.as_str().unwrap_or_default()
            ),
            evidence,
        };
    }
    evidence.insert(0, Evidence {
        source: "HKLM\\SOFTWARE\\Policies\\Microsoft\\Windows\\EventLog\\EventForwarding\\SubscriptionManager".into(),
        line: 0,
        probe: COLLECTOR.into(),
        detail: "absent".into(),
    });
    if known.is_some_and(|found| found.iter().all(|s| !s.success && !s.failure)) {
        return Control {
            name: "log_protection".into(),
            state: "none".into(),
            reason: "the audit policy audits no subcategory, so no security event is recorded, and no Windows Event Forwarding subscription manager is configured".into(),
            evidence,
        };
    }
    Control {
        name: "log_protection".into(),
        state: "local_only".into(),
        reason: format!(
            "no Windows Event Forwarding subscription manager is configured: the event log keeps security events only on this host ({audited})"
        ),
        evidence,
    }
}

/// The registry source for `root`, and the files that could not be read: hive files when
/// there are any, else the `.reg` files.
fn open_source(
    root: &Path,
    live: bool,
    errors: &mut Vec<FactError>,
) -> (Box<dyn RegistrySource>, Vec<String>) {
    #[cfg(windows)]
    if live {
        return (Box::new(live::LiveRegistry), Vec::new());
    }
    // Only Windows builds read a live registry; `applies` sends no other live root here.
    let _ = live;
    if has_hives(root) {
        // Hives win over exports rather than being merged with them: a hive is the whole
        // registry at one moment, an export a part of it, perhaps from another moment, and
        // mixing the two key by key could report a state the host never had.
        if rooted(root, REGISTRY_DIR).is_dir() {
            errors.push(FactError {
                collector: COLLECTOR.into(),
                source: REGISTRY_DIR.into(),
                error: format!("not read: the hive files in {HIVE_DIR} are read instead"),
            });
        }
        let (source, problems) = open_hives(root, errors);
        return (Box::new(source), problems);
    }
    let mut exports = Vec::new();
    let mut problems = Vec::new();
    for (name, path) in input::list_dir(root, REGISTRY_DIR, COLLECTOR, errors) {
        if !name.to_ascii_lowercase().ends_with(".reg") {
            continue;
        }
        let source = format!("{REGISTRY_DIR}/{name}");
        let limit = reg_text::MAX_EXPORT_BYTES as u64;
        let parsed = read_bytes(&path, limit)
            .map_err(|e| e.to_string())
            .and_then(|bytes| reg_text::parse_bytes(&bytes).map_err(|e| e.to_string()));
        match parsed {
            Ok(export) => exports.push((source, export)),
            Err(error) => {
                problems.push(format!("{source}: {error}"));
                errors.push(FactError {
                    collector: COLLECTOR.into(),
                    source,
                    error,
                });
            }
        }
    }
    if exports.is_empty() && problems.is_empty() {
        problems.push(format!("{REGISTRY_DIR} holds no .reg file"));
    }
    (Box::new(ExportSource::new(REGISTRY_DIR, exports)), problems)
}

/// The [`HIVES`] under [`HIVE_DIR`], and the problems that leave the registry incomplete:
/// both hives are needed (the controls read both), so a missing one is a problem too.
fn open_hives(root: &Path, errors: &mut Vec<FactError>) -> (HiveSource, Vec<String>) {
    let mut hives = Vec::new();
    let mut problems = Vec::new();
    for (name, mount) in HIVES {
        let file = format!("{HIVE_DIR}/{name}");
        let path = rooted(root, &file);
        let parsed = if path.exists() {
            read_bytes(&path, hive::MAX_HIVE_BYTES as u64)
                .map_err(|e| format!("{file}: {e}"))
                .and_then(|bytes| HiveFile::parse(&file, bytes).map_err(|e| e.to_string()))
        } else {
            Err(format!(
                "{file}: missing (both SYSTEM and SOFTWARE hives are needed)"
            ))
        };
        match parsed {
            Ok(hive) => hives.push((mount.to_string(), hive)),
            Err(error) => {
                problems.push(error.clone());
                errors.push(FactError {
                    collector: COLLECTOR.into(),
                    source: file,
                    error,
                });
            }
        }
    }
    (HiveSource::new(HIVE_DIR, hives), problems)
}

/// Reads at most `limit` bytes of a regular file; more is an error, not a cut (a cut export
/// would silently lose keys).
fn read_bytes(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    if !std::fs::metadata(path)?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(limit + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(std::io::Error::other(format!(
            "larger than the {limit} byte limit"
        )));
    }
    Ok(bytes)
}

/// The OpenSSH Server configuration when its service is installed and not disabled: `Ok`
/// parsed, `Err` why not; `None` when the service is absent or disabled.
fn openssh(
    root: &Path,
    live: bool,
    registry: &Registry<'_>,
    observations: &mut Vec<super::Observation>,
    errors: &mut Vec<FactError>,
) -> Option<Result<sshd::SshdConfig, String>> {
    match logon::service_start(registry, "sshd") {
        Ok(Some(start)) if start.value != 4 => {}
        Ok(_) => return None,
        Err(e) => return Some(Err(format!("its service could not be read: {e}"))),
    }
    // Live, the file is under %ProgramData% (`C:\ProgramData`), not under the current drive's
    // root, which under wine is the Linux root.
    let (base, file) = match std::env::var_os("ProgramData").filter(|_| live) {
        Some(dir) => (std::path::PathBuf::from(dir), "/ssh/sshd_config"),
        None => (root.to_path_buf(), SSHD_CONFIG),
    };
    Some(match config_file::read(&base, file) {
        Ok(Some(text)) => {
            let config = sshd::parse_text(&base, SSHD_CONFIG, &text);
            errors.extend(config.problems.iter().cloned());
            observations.extend(sshd::observations(&config));
            Ok(config)
        }
        Ok(None) => Err(format!("{SSHD_CONFIG} does not exist")),
        Err(e) => {
            errors.push(FactError {
                collector: "sshd".into(),
                source: SSHD_CONFIG.into(),
                error: e.to_string(),
            });
            Err(format!("{SSHD_CONFIG} could not be read: {e}"))
        }
    })
}

/// The text of IIS's `applicationHost.config`: under `%windir%` live, under the root offline.
fn iis_config(root: &Path, live: bool) -> Option<Result<String, String>> {
    let (base, file) = match std::env::var_os("windir").filter(|_| live) {
        Some(dir) => (
            std::path::PathBuf::from(dir),
            "/System32/inetsrv/config/applicationHost.config",
        ),
        None => (root.to_path_buf(), transit::IIS_CONFIG),
    };
    match config_file::read(&base, file) {
        Ok(Some(text)) => Some(Ok(text)),
        Ok(None) => None,
        Err(e) => Some(Err(e.to_string())),
    }
}

/// The WMI facts (hotfixes, last boot, roles and features, Defender's state): live through
/// WMI, offline from the recordings that are there. A class that fails is an error naming it;
/// the others are still read. Offline, the recorded last boot also fills the host frame.
fn wmi_facts(
    root: &Path,
    live: bool,
    patience: &mut wmi::Patience,
    host: &mut super::HostFacts,
    observations: &mut Vec<Observation>,
    errors: &mut Vec<FactError>,
) {
    let mut record = |e: wmi::WmiError| {
        errors.push(FactError {
            collector: wmi::PROBE.into(),
            source: e.source_name,
            error: e.message,
        });
    };
    if let Some(read) = read_wmi(root, live, patience, wmi::QUICK_FIX) {
        match read.and_then(|rows| wmi::hotfixes(&rows)) {
            Ok(found) => observations.extend(found),
            Err(e) => record(e),
        }
    }
    if let Some(read) = read_wmi(root, live, patience, wmi::OPERATING_SYSTEM) {
        match read.and_then(|rows| wmi::last_boot(&rows)) {
            Ok(Some((observation, boot))) => {
                if !live {
                    host.boot_time_unix = boot;
                }
                observations.push(observation);
            }
            Ok(None) => {}
            Err(e) => record(e),
        }
    }
    // A server lists its roles and features in Win32_ServerFeature (never none: .NET and
    // PowerShell at least); a client has no such class (wine has it, empty) and its features
    // are the optional ones.
    let features = match read_wmi(root, live, patience, wmi::SERVER_FEATURE) {
        Some(Ok(rows)) if !rows.rows.is_empty() => Some(Ok(rows)),
        Some(Err(e)) if !wmi::is_invalid_class(&e) => {
            record(e);
            read_wmi(root, live, patience, wmi::OPTIONAL_FEATURE)
        }
        Some(_) | None => read_wmi(root, live, patience, wmi::OPTIONAL_FEATURE),
    };
    if let Some(read) = features {
        match read.and_then(|rows| wmi::features(&rows)) {
            Ok(found) => observations.extend(found),
            Err(e) => record(e),
        }
    }
    if let Some(read) = read_wmi(root, live, patience, wmi::DEFENDER_STATUS) {
        match read.and_then(|rows| wmi::defender(&rows)) {
            Ok(found) => observations.extend(found),
            Err(e) => record(e),
        }
    }
}

/// One class's rows: queried live, or the recording offline; `None` when not recorded.
fn read_wmi(
    root: &Path,
    live: bool,
    patience: &mut wmi::Patience,
    class: wmi::WmiClass,
) -> Option<Result<wmi::WmiRows, wmi::WmiError>> {
    if live {
        return Some(patience.ask(class.live_source(), || live_wmi(class)));
    }
    let file = format!("{RECORDED_DIR}/{}", class.recorded);
    let path = rooted(root, &file);
    if !path.exists() {
        return None;
    }
    let fail = |message: String| wmi::WmiError {
        source_name: file.clone(),
        message,
    };
    let rows = read_bytes(&path, wmi::MAX_RECORDED_BYTES as u64)
        .map_err(|e| fail(e.to_string()))
        .and_then(|b| reg_text::decode(&b).map_err(|e| fail(e.message)))
        .and_then(|text| wmi::parse_recorded(&text, &file));
    Some(rows.map(|rows| wmi::WmiRows {
        class,
        origin: wmi::Origin::Recorded(file.clone()),
        rows,
    }))
}

#[cfg(windows)]
fn live_wmi(class: wmi::WmiClass) -> Result<wmi::WmiRows, wmi::WmiError> {
    wmi_live::rows(class)
}

/// Only Windows builds speak WMI; `applies` sends no other live root here.
#[cfg(not(windows))]
fn live_wmi(class: wmi::WmiClass) -> Result<wmi::WmiRows, wmi::WmiError> {
    Err(wmi::WmiError {
        source_name: class.live_source(),
        message: "read on Windows only".into(),
    })
}

/// BitLocker volumes: offline from recorded WMI JSON, else recorded `manage-bde -status`; live
/// through WMI, else `manage-bde -status` run now. Returns the volumes, the problem that leaves
/// the control undecided (naming every input that failed), and, when `manage-bde` stood in for
/// WMI, why WMI failed.
fn bitlocker_volumes(
    root: &Path,
    live: bool,
    patience: &mut wmi::Patience,
    errors: &mut Vec<FactError>,
) -> (
    Vec<bitlocker::BitLockerVolume>,
    Option<String>,
    Option<String>,
) {
    let wmi = format!("{RECORDED_DIR}/Win32_EncryptableVolume.json");
    let bde = format!("{RECORDED_DIR}/manage-bde-status.txt");
    let inputs: [(&str, Parser); 2] = [
        (&wmi, bitlocker::parse_wmi_json),
        (&bde, bitlocker::parse_manage_bde),
    ];
    if !live {
        for (file, parse) in inputs {
            let path = rooted(root, file);
            if !path.exists() {
                continue;
            }
            let result = read_bytes(&path, MAX_RECORDED)
                .map_err(|e| e.to_string())
                .and_then(|b| reg_text::decode(&b).map_err(|e| e.message))
                .and_then(|text| parse(&text, file).map_err(|e| e.message));
            return match result {
                Ok(volumes) => (volumes, None, None),
                Err(error) => {
                    errors.push(FactError {
                        collector: "bitlocker".into(),
                        source: file.into(),
                        error: error.clone(),
                    });
                    (Vec::new(), Some(format!("{file}: {error}")), None)
                }
            };
        }
        return (
            Vec::new(),
            Some(format!("no recorded BitLocker data ({wmi} or {bde})")),
            None,
        );
    }
    let wmi_failure = match patience.ask(
        "WMI Win32_EncryptableVolume".into(),
        live_encryptable_volumes,
    ) {
        Ok(volumes) => return (volumes, None, None),
        Err(error) => {
            errors.push(FactError {
                collector: "bitlocker".into(),
                source: error.source_name.clone(),
                error: error.message.clone(),
            });
            error.to_string()
        }
    };
    match run_manage_bde(errors) {
        (volumes, None) => (volumes, None, Some(wmi_failure)),
        (volumes, Some(problem)) => (
            volumes,
            Some(format!("{wmi_failure}; then {problem}")),
            None,
        ),
    }
}

/// The live `Win32_EncryptableVolume` instances, parsed as a recording is.
#[cfg(windows)]
fn live_encryptable_volumes() -> Result<Vec<bitlocker::BitLockerVolume>, wmi::WmiError> {
    let class = wmi::ENCRYPTABLE_VOLUME;
    let rows = wmi_live::encryptable_volumes()?;
    bitlocker::parse_wmi_value(serde_json::Value::Array(rows), &class.live_source()).map_err(|e| {
        wmi::WmiError {
            source_name: class.live_source(),
            message: e.message,
        }
    })
}

/// Only Windows builds speak WMI; `applies` sends no other live root here.
#[cfg(not(windows))]
fn live_encryptable_volumes() -> Result<Vec<bitlocker::BitLockerVolume>, wmi::WmiError> {
    Err(wmi::WmiError {
        source_name: "WMI".into(),
        message: "read on Windows only".into(),
    })
}

/// Runs `manage-bde -status` on the live host, when WMI could not be read; the parser is the
/// recorded-output one.
fn run_manage_bde(
    errors: &mut Vec<FactError>,
) -> (Vec<bitlocker::BitLockerVolume>, Option<String>) {
    const COMMAND: &str = "manage-bde -status";
    let output = std::process::Command::new("manage-bde")
        .arg("-status")
        .output();
    let result = match output {
        Ok(out) if out.status.success() => {
            bitlocker::parse_manage_bde(&String::from_utf8_lossy(&out.stdout), COMMAND)
                .map_err(|e| e.message)
        }
        Ok(out) => Err(format!("exited with {}", out.status)),
        Err(e) => Err(format!("could not run: {e}")),
    };
    match result {
        Ok(volumes) => (volumes, None),
        Err(error) => {
            errors.push(FactError {
                collector: "bitlocker".into(),
                source: COMMAND.into(),
                error: error.clone(),
            });
            (Vec::new(), Some(format!("{COMMAND}: {error}")))
        }
    }
}

#[cfg(test)]
mod log_protection_tests {
    use super::*;

    #[test]
    fn event_forwarding_policy_decides_log_protection() {
        let local = log_protection(&[], None);
        assert_eq!(local.state, "local_only");
        assert!(
            local
                .reason
                .contains("not recorded; Windows audits logons by default")
        );
        let forwarding = Observation {
            category: "hardening".into(),
            name: "event_forwarding".into(),
            value: serde_json::json!(
                "Server=http://wec.kommun.example:5985/wsman/SubscriptionManager/WEC"
            ),
            evidence: vec![Evidence {
                source: "registry/software.reg".into(),
                line: 12,
                probe: COLLECTOR.into(),
                detail: String::new(),
            }],
        };
        let forwarded = log_protection(&[forwarding], None);
        assert_eq!(forwarded.state, "forwarded");
        assert!(forwarded.reason.contains("wec.kommun.example"));
        assert_eq!(forwarded.evidence[0].line, 12);
    }

    #[test]
    fn the_audit_policy_refines_local_only() {
        let at = |bits| {
            vec![
                audit::AuditSubcategory::new(audit::LOGON, "Logon", bits, Evidence::default()),
                audit::AuditSubcategory::new(
                    "{0CCE9216-69AE-11D9-BED3-505054503030}",
                    "Logoff",
                    0,
                    Evidence::default(),
                ),
            ]
        };
        let audited = log_protection(&[], Some(&Ok(at(3))));
        assert_eq!(audited.state, "local_only");
        assert!(
            audited
                .reason
                .contains("Logon is audited as success_and_failure")
        );
        assert_eq!(audited.evidence.len(), 2);
        let nothing = log_protection(&[], Some(&Ok(at(0))));
        assert_eq!(nothing.state, "none");
        let failed = log_protection(&[], Some(&Err("AuditEnumerateSubCategories failed".into())));
        assert_eq!(failed.state, "local_only");
        assert!(
            failed
                .reason
                .contains("could not be read (AuditEnumerateSubCategories failed)")
        );
    }
}
