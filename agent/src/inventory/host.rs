//! The host frame: hostname, OS, kernel, CPU, memory, disks, network interfaces, uptime.
//!
//! On the live host (`--root /`) the values come from `sysinfo`; under a fixture root only what
//! the files say (`etc/hostname`, `etc/os-release`) is filled in, so tests are deterministic.

use std::path::Path;

use serde::{Deserialize, Serialize};
use sysinfo::{Disks, Networks, System};

use super::{FactError, is_live_root, rooted};

/// Upper bound on small text files read here; hostile roots must not make us read gigabytes.
const MAX_SMALL_FILE: u64 = 64 * 1024;

/// The host frame.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct HostFacts {
    /// Host name.
    pub hostname: String,
    /// OS name, e.g. "Debian GNU/Linux".
    pub os_name: String,
    /// OS version, e.g. "12".
    pub os_version: String,
    /// Kernel release.
    pub kernel_version: String,
    /// CPU architecture.
    pub architecture: String,
    /// CPU brand string.
    pub cpu_model: String,
    /// Logical CPUs.
    pub cpu_count: u32,
    /// Physical memory in bytes.
    pub memory_total_bytes: u64,
    /// Boot time, seconds since the Unix epoch.
    pub boot_time_unix: i64,
    /// Seconds since boot.
    pub uptime_seconds: u64,
    /// Mounted file systems.
    pub disks: Vec<Disk>,
    /// Network interfaces.
    pub interfaces: Vec<NetworkInterface>,
}

/// A mounted file system.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Disk {
    /// Device name.
    pub name: String,
    /// Mount point.
    pub mount_point: String,
    /// File system type.
    pub file_system: String,
    /// Size in bytes.
    pub total_bytes: u64,
    /// Free bytes.
    pub available_bytes: u64,
    /// Removable medium.
    pub removable: bool,
}

/// A network interface.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct NetworkInterface {
    /// Interface name.
    pub name: String,
    /// MAC address, `00:00:00:00:00:00` when none.
    pub mac: String,
    /// Addresses in CIDR notation.
    pub addresses: Vec<String>,
}

/// Collects the host frame from `root`.
pub fn collect(root: &Path, errors: &mut Vec<FactError>) -> HostFacts {
    let mut facts = if is_live_root(root) {
        from_sysinfo()
    } else {
        HostFacts::default()
    };
    if let Some(name) = read_small(root, "/etc/hostname", errors) {
        let name = name.trim();
        if !name.is_empty() && !is_live_root(root) {
            facts.hostname = name.to_string();
        }
    }
    if let Some(text) = read_small(root, "/etc/os-release", errors) {
        let release = parse_os_release(&text);
        if facts.os_name.is_empty() || !is_live_root(root) {
            facts.os_name = release.name;
            facts.os_version = release.version;
        }
    }
    facts
}

fn from_sysinfo() -> HostFacts {
    let mut system = System::new();
    system.refresh_memory();
    system.refresh_cpu_list(sysinfo::CpuRefreshKind::nothing());
    let cpu_model = system
        .cpus()
        .first()
        .map(|cpu| cpu.brand().trim().to_string())
        .unwrap_or_default();
    HostFacts {
        hostname: System::host_name().unwrap_or_default(),
        os_name: System::name().unwrap_or_default(),
        os_version: System::os_version().unwrap_or_default(),
        kernel_version: System::kernel_version().unwrap_or_default(),
        architecture: System::cpu_arch(),
        cpu_model,
        cpu_count: u32::try_from(system.cpus().len()).unwrap_or(u32::MAX),
        memory_total_bytes: system.total_memory(),
        boot_time_unix: i64::try_from(System::boot_time()).unwrap_or(0),
        uptime_seconds: System::uptime(),
        disks: disks(),
        interfaces: interfaces(),
    }
}

fn disks() -> Vec<Disk> {
    Disks::new_with_refreshed_list()
        .list()
        .iter()
        .map(|disk| Disk {
            name: disk.name().to_string_lossy().into_owned(),
            mount_point: disk.mount_point().to_string_lossy().into_owned(),
            file_system: disk.file_system().to_string_lossy().into_owned(),
            total_bytes: disk.total_space(),
            available_bytes: disk.available_space(),
            removable: disk.is_removable(),
        })
        .collect()
}

fn interfaces() -> Vec<NetworkInterface> {
    let networks = Networks::new_with_refreshed_list();
    let mut list: Vec<NetworkInterface> = networks
        .iter()
        .map(|(name, data)| NetworkInterface {
            name: name.clone(),
            mac: data.mac_address().to_string(),
            addresses: data
                .ip_networks()
                .iter()
                .map(|net| format!("{}/{}", net.addr, net.prefix))
                .collect(),
        })
        .collect();
    list.sort_by(|a, b| a.name.cmp(&b.name));
    list
}

/// Reads a small text file under `root`; a missing file is silently `None`, other failures are
/// recorded in `errors`.
pub fn read_small(root: &Path, absolute: &str, errors: &mut Vec<FactError>) -> Option<String> {
    let path = rooted(root, absolute);
    let result = std::fs::metadata(&path).and_then(|meta| {
        if meta.len() > MAX_SMALL_FILE {
            Err(std::io::Error::other(format!(
                "file is {} bytes, more than the {MAX_SMALL_FILE} byte limit",
                meta.len()
            )))
        } else {
            std::fs::read(&path)
        }
    });
    match result {
        Ok(bytes) => Some(String::from_utf8_lossy(&bytes).into_owned()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            errors.push(FactError {
                collector: "host".into(),
                source: path.display().to_string(),
                error: e.to_string(),
            });
            None
        }
    }
}

/// Name and version from an os-release file.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct OsRelease {
    /// `NAME`.
    pub name: String,
    /// `VERSION_ID`.
    pub version: String,
}

/// Parses os-release(5): `KEY=value` lines, values optionally quoted.
pub fn parse_os_release(text: &str) -> OsRelease {
    let mut release = OsRelease::default();
    for line in text.lines() {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = value
            .trim()
            .trim_matches(|c| c == '"' || c == '\'')
            .to_string();
        match key.trim() {
            "NAME" => release.name = value,
            "VERSION_ID" => release.version = value,
            _ => {}
        }
    }
    release
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_release_is_parsed() {
        let text = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nbroken line\n";
        assert_eq!(
            parse_os_release(text),
            OsRelease {
                name: "Debian GNU/Linux".into(),
                version: "12".into()
            }
        );
    }

    #[test]
    fn fixture_root_reads_files_only() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("etc")).unwrap();
        std::fs::write(tmp.path().join("etc/hostname"), "ward4-db\n").unwrap();
        std::fs::write(
            tmp.path().join("etc/os-release"),
            "NAME=Ubuntu\nVERSION_ID=24.04\n",
        )
        .unwrap();
        let mut errors = Vec::new();
        let facts = collect(tmp.path(), &mut errors);
        assert_eq!(facts.hostname, "ward4-db");
        assert_eq!(facts.os_name, "Ubuntu");
        assert_eq!(facts.os_version, "24.04");
        assert!(errors.is_empty());
    }

    #[test]
    fn oversized_file_is_an_error_naming_it() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("etc")).unwrap();
        std::fs::write(tmp.path().join("etc/hostname"), vec![b'a'; 100_000]).unwrap();
        let mut errors = Vec::new();
        let facts = collect(tmp.path(), &mut errors);
        assert!(facts.hostname.is_empty());
        assert_eq!(errors.len(), 1);
        assert!(errors[0].source.ends_with("etc/hostname"));
    }
}
