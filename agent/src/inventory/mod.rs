//! Collectors of facts about this host. Every fact carries [`Evidence`]; a collector that fails
//! records a [`FactError`] naming its input and the rest of the inventory goes on.
//!
//! All file reads go through a root directory (`--root`), so tests point the agent at a fixture
//! tree instead of `/`. This module owns the inventory's JSON shape (`inventory --json`).
//! Beyond the host frame the collectors read Linux files, or on a Windows host (live, or an
//! offline root with registry exports) the registry through [`windows`]; [`platform`] decides
//! where the Linux ones apply.

pub mod accounts;
pub mod banner;
pub mod client_first;
pub mod config_file;
pub mod host;
pub mod input;
pub mod kernel;
pub mod lastlog;
pub mod listeners;
pub mod logging;
pub mod mfa;
pub mod packages;
pub mod pam;
pub mod platform;
pub mod privileged;
pub mod rdp;
pub mod rpm_header;
pub mod rpmdb;
pub mod services;
pub mod sshd;
pub mod sudo;
pub mod system_config;
pub mod tls_probe;
pub mod transit;
pub mod units;
pub mod volumes;
pub mod windows;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use host::{Disk, HostFacts, NetworkInterface};

/// Everything one inventory run found.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Inventory {
    /// When the facts were collected, milliseconds since the Unix epoch.
    pub collected_at_unix_ms: i64,
    /// The root the facts were read from (`/` on a live host).
    pub root: PathBuf,
    /// The host frame: name, OS, hardware, disks, interfaces.
    pub host: HostFacts,
    /// Facts with evidence beyond the host frame.
    pub observations: Vec<Observation>,
    /// Protections derived from the observations.
    pub controls: Vec<Control>,
    /// Facts that could not be collected, each naming its input.
    pub errors: Vec<FactError>,
}

/// Where a fact came from.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Evidence {
    /// A file path, a socket or a probe target.
    pub source: String,
    /// 1-based line in `source`, 0 when not a file line.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub line: u32,
    /// The collector that saw it.
    pub probe: String,
    /// The line's text or another detail.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

// serde's skip_serializing_if passes a reference.
#[allow(clippy::trivially_copy_pass_by_ref)]
fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// One fact with its evidence.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Observation {
    /// Group of the fact: `package`, `listener`, `sshd`, `pam`, `volume`, ...
    pub category: String,
    /// Name within the category.
    pub name: String,
    /// The value; its shape is per category.
    pub value: serde_json::Value,
    /// Where it was seen.
    pub evidence: Vec<Evidence>,
}

/// A protection derived from observations.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Control {
    /// `mfa`, `transit_encryption` or `rest_encryption`.
    pub name: String,
    /// The verdict; `unknown` is never treated as ok.
    pub state: String,
    /// Why.
    pub reason: String,
    /// The observations the verdict rests on.
    pub evidence: Vec<Evidence>,
}

/// A fact that could not be collected.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct FactError {
    /// The collector that failed.
    pub collector: String,
    /// The input it failed on (a path, usually).
    pub source: String,
    /// What went wrong.
    pub error: String,
}

/// Collects a full inventory from `root` (`/` for the live host).
pub fn collect(root: &Path) -> Inventory {
    let mut inventory = Inventory {
        collected_at_unix_ms: now_unix_ms(),
        root: root.to_path_buf(),
        ..Inventory::default()
    };
    inventory.host = host::collect(root, &mut inventory.errors);
    let os = std::env::consts::OS;
    if windows::applies(root, os) {
        windows::collect(root, &mut inventory);
        return inventory;
    }
    if !platform::reads_linux_facts(root, os) {
        inventory.controls = platform::not_collected(os);
        return inventory;
    }
    let sshd_config = sshd::collect(root, &mut inventory);
    let pam_report = pam::collect(root, &mut inventory);
    let accounts = accounts::collect(root, &mut inventory);
    let no_auth_sudo = sudo::collect(root, &mut inventory);
    mfa::collect(sshd_config.as_ref(), &pam_report, &mut inventory);
    inventory.controls.push(privileged::control(
        sshd_config.as_ref(),
        &accounts,
        &no_auth_sudo,
    ));
    services::collect(root, &mut inventory);
    inventory
}

/// Milliseconds since the Unix epoch, 0 if the clock is before 1970.
pub fn now_unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Whether `root` is the live system, where `sysinfo` may be asked instead of files.
pub fn is_live_root(root: &Path) -> bool {
    root == Path::new("/")
}

/// Joins an absolute path like `/etc/hostname` onto `root`.
pub fn rooted(root: &Path, absolute: &str) -> PathBuf {
    root.join(absolute.trim_start_matches('/'))
}

/// Fixture trees for unit tests of the collectors of facts.
#[cfg(test)]
pub(crate) mod test_support {
    /// A temporary root holding text `files` (absolute paths like `/etc/ssh/sshd_config`).
    pub fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
        let bytes: Vec<(&str, &[u8])> = files.iter().map(|(p, c)| (*p, c.as_bytes())).collect();
        tree_bytes(&bytes)
    }

    /// A temporary root holding `files` with arbitrary bytes.
    pub fn tree_bytes(files: &[(&str, &[u8])]) -> tempfile::TempDir {
        let tmp = tempfile::tempdir().unwrap();
        for (path, content) in files {
            let full = super::rooted(tmp.path(), path);
            std::fs::create_dir_all(full.parent().unwrap()).unwrap();
            std::fs::write(full, content).unwrap();
        }
        tmp
    }
}
