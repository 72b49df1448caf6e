//! At-rest encryption of mounted data volumes and swap, and the `rest_encryption` control.
//!
//! Inputs: `/proc/self/mounts` (or `/proc/mounts`), `/proc/swaps`, and the block layer in sysfs:
//! a device-mapper device whose `/sys/block/dm-N/dm/uuid` starts with `CRYPT-` is dm-crypt
//! (LUKS1/2 or plain); a device with `slaves/` is followed down to what it is built on, so LVM
//! on LUKS counts as encrypted when every device under it is. A volume is:
//! - `encrypted`: a dm-crypt layer under all of it, eCryptfs (`ecryptfs` mount), or a ZFS dataset
//!   whose `encryption` property is set (live only, asked with `zfs get`; no file holds it);
//! - `unencrypted`: a block device chain with no crypt layer;
//! - `unknown`: overlay (its upper directory is on a volume the mount table cannot name), network
//!   file systems (encryption is the server's), fscrypt (only directories with a policy are
//!   encrypted; the agent cannot see coverage), and anything unresolvable.
//!
//! Not data volumes, skipped: kernel and memory file systems (proc, sysfs, tmpfs, cgroup, ...),
//! and read-only images (squashfs, iso9660). Mounts of one device are one volume.
//! Self-encrypting drives (OPAL) are invisible here and read as `unencrypted`.
//!
//! Boot volumes (mounted only on `/boot`, `/boot/efi`, `/efi`) are reported but not counted by
//! the control: they hold the kernel and boot loader, which full-disk encryption leaves readable
//! by design, so counting them would mark every LUKS host unencrypted.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::json;

use super::input::{line_no, list_dir, read_bounded, read_path};
use super::{Control, Evidence, FactError, Observation, is_live_root, rooted};

const COLLECTOR: &str = "volumes";
const MOUNTS_LIMIT: u64 = 4 * 1024 * 1024;
/// Device stacks are a few levels deep; a cycle in a hostile sysfs stops here.
const MAX_DEPTH: usize = 16;

const PSEUDO: &[&str] = &[
    "proc",
    "sysfs",
    "tmpfs",
    "devtmpfs",
    "devpts",
    "cgroup",
    "cgroup2",
    "securityfs",
    "debugfs",
    "tracefs",
    "configfs",
    "pstore",
    "bpf",
    "mqueue",
    "hugetlbfs",
    "fusectl",
    "autofs",
    "binfmt_misc",
    "efivarfs",
    "nsfs",
    "rpc_pipefs",
    "ramfs",
    "selinuxfs",
    "squashfs",
    "iso9660",
    "fuse.lxcfs",
    "fuse.gvfsd-fuse",
    "fuse.portal",
    "nfsd",
    "devfs",
    "rootfs",
];
const BOOT_MOUNTS: &[&str] = &["/boot", "/boot/efi", "/efi"];
const NETWORK: &[&str] = &[
    "nfs",
    "nfs4",
    "cifs",
    "smb3",
    "smbfs",
    "ceph",
    "glusterfs",
    "fuse.glusterfs",
    "9p",
    "fuse.sshfs",
    "afs",
    "lustre",
];

/// At-rest state of one volume.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RestState {
    /// Encrypted under all of it.
    Encrypted,
    /// Could not be decided.
    Unknown,
    /// No encryption layer found.
    Unencrypted,
}

impl RestState {
    /// `encrypted`, `unknown` or `unencrypted`.
    pub fn as_str(self) -> &'static str {
        match self {
            RestState::Encrypted => "encrypted",
            RestState::Unknown => "unknown",
            RestState::Unencrypted => "unencrypted",
        }
    }
}

/// A verdict with how it was reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The state.
    pub state: RestState,
    /// `luks2`, `dm-crypt plain`, `ecryptfs`, `zfs`, `fscrypt`, `none` or empty.
    pub method: String,
    /// Why.
    pub reason: String,
    /// The sysfs files, command or mount lines it rests on.
    pub evidence: Vec<Evidence>,
}

impl Verdict {
    fn new(state: RestState, method: &str, reason: impl Into<String>) -> Self {
        Verdict {
            state,
            method: method.into(),
            reason: reason.into(),
            evidence: Vec::new(),
        }
    }
}

/// One line of the mount table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// Device or source (`/dev/vda1`, `pool/data`, `overlay`).
    pub source: String,
    /// Mount point.
    pub mount_point: String,
    /// File system type.
    pub fs_type: String,
    /// Mount options.
    pub options: String,
    /// The mounts file it came from.
    pub file: String,
    /// 1-based line.
    pub line: u32,
}

/// A data volume: one source, all its mount points, and the verdict.
#[derive(Debug, Clone)]
pub struct Volume {
    /// The mount source.
    pub source: String,
    /// File system type.
    pub fs_type: String,
    /// Where it is mounted.
    pub mount_points: Vec<String>,
    /// The at-rest verdict; its evidence starts with the first mount line.
    pub verdict: Verdict,
}

impl Volume {
    /// Holds data, as opposed to only the boot loader and kernel.
    pub fn is_data(&self) -> bool {
        !self
            .mount_points
            .iter()
            .all(|m| BOOT_MOUNTS.contains(&m.as_str()))
    }
}

/// Parses fstab(5)-format lines, undoing the octal escapes (`\040` for a space). Returns the
/// mounts and the number of malformed lines.
pub fn parse_mounts(text: &str, file: &str) -> (Vec<Mount>, usize) {
    let mut mounts = Vec::new();
    let mut bad = 0;
    for (index, line) in text.lines().enumerate() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.is_empty() {
            continue;
        }
        if fields.len() < 4 {
            bad += 1;
            continue;
        }
        mounts.push(Mount {
            source: unescape(fields[0]),
            mount_point: unescape(fields[1]),
            fs_type: fields[2].to_string(),
            options: fields[3].to_string(),
            file: file.to_string(),
            line: line_no(index),
        });
    }
    (mounts, bad)
}

fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| bytes[i] == b'\\' && d.iter().all(|b| (b'0'..=b'7').contains(b)));
        if let Some(value) =
            octal.and_then(|d| u8::from_str_radix(std::str::from_utf8(d).ok()?, 8).ok())
        {
            out.push(value);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Collects `volume` and `swap` observations and the `rest_encryption` control.
pub fn collect(
    root: &Path,
    observations: &mut Vec<Observation>,
    controls: &mut Vec<Control>,
    errors: &mut Vec<FactError>,
) {
    let mounts = read_mounts(root, errors);
    let volumes = volumes(root, &mounts);
    let swaps = swaps(root, &volumes, errors);
    for volume in &volumes {
        observations.push(Observation {
            category: "volume".into(),
            name: volume.source.clone(),
            value: json!({
                "state": volume.verdict.state.as_str(),
                "method": volume.verdict.method,
                "reason": volume.verdict.reason,
                "fs_type": volume.fs_type,
                "mount_points": volume.mount_points,
                "data_volume": volume.is_data(),
            }),
            evidence: volume.verdict.evidence.clone(),
        });
    }
    for (name, verdict) in &swaps {
        observations.push(Observation {
            category: "swap".into(),
            name: name.clone(),
            value: json!({
                "state": verdict.state.as_str(),
                "method": verdict.method,
                "reason": verdict.reason,
            }),
            evidence: verdict.evidence.clone(),
        });
    }
    controls.push(control(&volumes, &swaps));
}

fn read_mounts(root: &Path, errors: &mut Vec<FactError>) -> Vec<Mount> {
    for file in ["/proc/self/mounts", "/proc/mounts"] {
        if let Some(input) = read_bounded(root, file, MOUNTS_LIMIT, COLLECTOR, errors) {
            let (mounts, bad) = parse_mounts(&input.text, file);
            if bad > 0 {
                errors.push(FactError {
                    collector: COLLECTOR.into(),
                    source: file.into(),
                    error: format!("{bad} malformed line(s) skipped"),
                });
            }
            return mounts;
        }
    }
    errors.push(FactError {
        collector: COLLECTOR.into(),
        source: "/proc/self/mounts".into(),
        error: "no mount table (neither /proc/self/mounts nor /proc/mounts)".into(),
    });
    Vec::new()
}

/// Groups data mounts by source and decides each volume.
pub fn volumes(root: &Path, mounts: &[Mount]) -> Vec<Volume> {
    let mut by_source: BTreeMap<(String, String), Vec<&Mount>> = BTreeMap::new();
    for mount in mounts
        .iter()
        .filter(|m| !PSEUDO.contains(&m.fs_type.as_str()))
    {
        by_source
            .entry((mount.source.clone(), mount.fs_type.clone()))
            .or_default()
            .push(mount);
    }
    by_source
        .into_iter()
        .map(|((source, fs_type), list)| {
            let first = list[0];
            let mut verdict = decide_mount(root, first);
            verdict.evidence.insert(0, mount_evidence(first));
            Volume {
                source,
                fs_type,
                mount_points: list.iter().map(|m| m.mount_point.clone()).collect(),
                verdict,
            }
        })
        .collect()
}

fn mount_evidence(mount: &Mount) -> Evidence {
    Evidence {
        source: mount.file.clone(),
        line: mount.line,
        probe: COLLECTOR.into(),
        detail: format!("{} {} {}", mount.source, mount.mount_point, mount.fs_type),
    }
}

fn decide_mount(root: &Path, mount: &Mount) -> Verdict {
    let fs = mount.fs_type.as_str();
    if fs == "ecryptfs" {
        return Verdict::new(
            RestState::Encrypted,
            "ecryptfs",
            "eCryptfs mount: files are encrypted in the lower directory",
        );
    }
    if fs == "overlay" {
        return Verdict::new(
            RestState::Unknown,
            "",
            "overlay: the upper directory's volume cannot be named from the mount table",
        );
    }
    if NETWORK.contains(&fs) {
        return Verdict::new(
            RestState::Unknown,
            "",
            "network file system: at-rest encryption is the server's",
        );
    }
    if fs == "zfs" {
        return zfs_dataset(root, &mount.source);
    }
    if !mount.source.starts_with("/dev/") {
        return Verdict::new(
            RestState::Unknown,
            "",
            format!("source {:?} is not a block device", mount.source),
        );
    }
    let Some(name) = device_name(root, &mount.source) else {
        return Verdict::new(
            RestState::Unknown,
            "",
            format!("cannot resolve {} to a kernel block device", mount.source),
        );
    };
    let verdict = block_chain(root, &name, 0);
    if verdict.state == RestState::Unencrypted
        && rooted(root, &mount.mount_point).join(".fscrypt").is_dir()
    {
        let mut fscrypt = Verdict::new(
            RestState::Unknown,
            "fscrypt",
            "no block encryption; fscrypt metadata present: only directories with a policy are encrypted",
        );
        fscrypt.evidence = verdict.evidence;
        fscrypt.evidence.push(sys_evidence(
            &format!("{}/.fscrypt", mount.mount_point.trim_end_matches('/')),
            "fscrypt metadata directory",
        ));
        return fscrypt;
    }
    verdict
}

/// `/dev/mapper/x`, `/dev/vg/lv`, `/dev/disk/by-uuid/...` -> `dm-0`; `/dev/sda1` -> `sda1`.
pub fn device_name(root: &Path, source: &str) -> Option<String> {
    // udev's names are symlinks to the kernel node (`../dm-0`); fixtures may carry them too.
    if let Ok(target) = std::fs::read_link(rooted(root, source)) {
        return target.file_name().map(|n| n.to_string_lossy().into_owned());
    }
    if let Some(mapped) = source.strip_prefix("/dev/mapper/") {
        return dm_by_name(root, mapped);
    }
    let name = source.strip_prefix("/dev/")?;
    (!name.contains('/') && !name.is_empty() && name != "root").then(|| name.to_string())
}

fn dm_by_name(root: &Path, wanted: &str) -> Option<String> {
    let mut ignored = Vec::new();
    list_dir(root, "/sys/block", COLLECTOR, &mut ignored)
        .into_iter()
        .map(|(name, _)| name)
        .filter(|name| name.starts_with("dm-"))
        .find(|name| {
            read_path(&rooted(root, &format!("/sys/block/{name}/dm/name")), 4096)
                .is_ok_and(|(text, _)| text.trim() == wanted)
        })
}

/// The sysfs directory of a block device: whole disks and dm devices are in `/sys/block`,
/// partitions only in `/sys/class/block`.
fn sys_dir(root: &Path, name: &str) -> Option<String> {
    ["/sys/block", "/sys/class/block"]
        .iter()
        .map(|base| format!("{base}/{name}"))
        .find(|dir| rooted(root, dir).is_dir())
}

/// Decides a block device by walking down its `slaves` to a crypt layer or to bare disks.
pub fn block_chain(root: &Path, name: &str, depth: usize) -> Verdict {
    if depth >= MAX_DEPTH || name.contains('/') || name.starts_with('.') {
        return Verdict::new(
            RestState::Unknown,
            "",
            format!("device chain too deep or invalid at {name}"),
        );
    }
    let Some(dir) = sys_dir(root, name) else {
        return Verdict::new(
            RestState::Unknown,
            "",
            format!("no sysfs entry for block device {name}"),
        );
    };
    let uuid_file = format!("{dir}/dm/uuid");
    let uuid = read_path(&rooted(root, &uuid_file), 4096)
        .map(|(t, _)| t.trim().to_string())
        .unwrap_or_default();
    if let Some(kind) = uuid.strip_prefix("CRYPT-") {
        let method = kind.split('-').next().unwrap_or("").to_ascii_lowercase();
        let mut verdict = Verdict::new(
            RestState::Encrypted,
            &method,
            format!("{name} is dm-crypt ({method})"),
        );
        verdict.evidence.push(sys_evidence(&uuid_file, &uuid));
        return verdict;
    }
    let mut ignored = Vec::new();
    let slaves = list_dir(root, &format!("{dir}/slaves"), COLLECTOR, &mut ignored);
    if slaves.is_empty() {
        let detail = if uuid.is_empty() {
            format!("{name}: no device-mapper layer")
        } else {
            uuid.clone()
        };
        let source = if uuid.is_empty() {
            dir.clone()
        } else {
            uuid_file
        };
        let mut verdict = Verdict::new(
            RestState::Unencrypted,
            "none",
            format!("{name} has no crypt layer beneath it"),
        );
        verdict.evidence.push(sys_evidence(&source, &detail));
        return verdict;
    }
    let below: Vec<Verdict> = slaves
        .iter()
        .map(|(slave, _)| block_chain(root, slave, depth + 1))
        .collect();
    // The weakest part decides: unencrypted beats unknown beats encrypted.
    let worst = below
        .iter()
        .map(|v| v.state)
        .max()
        .unwrap_or(RestState::Unknown);
    let mut verdict = below
        .iter()
        .find(|v| v.state == worst)
        .cloned()
        .unwrap_or_else(|| Verdict::new(RestState::Unknown, "", ""));
    verdict.reason = format!(
        "{name} is built on {}: {}",
        slaves
            .iter()
            .map(|(s, _)| s.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        verdict.reason
    );
    verdict.evidence = below.into_iter().flat_map(|v| v.evidence).collect();
    if !uuid.is_empty() {
        verdict.evidence.insert(0, sys_evidence(&uuid_file, &uuid));
    }
    verdict
}

fn sys_evidence(source: &str, detail: &str) -> Evidence {
    Evidence {
        source: source.into(),
        line: 0,
        probe: COLLECTOR.into(),
        detail: detail.into(),
    }
}

/// ZFS keeps `encryption` as a dataset property with no file to read; on the live host ask
/// `zfs get`, else unknown.
fn zfs_dataset(root: &Path, dataset: &str) -> Verdict {
    let unknown = || {
        Verdict::new(
            RestState::Unknown,
            "zfs",
            "ZFS native encryption is a dataset property no file exposes",
        )
    };
    let Some(zfs) = ["/usr/sbin/zfs", "/sbin/zfs"]
        .into_iter()
        .find(|p| Path::new(p).exists())
    else {
        return unknown();
    };
    if !is_live_root(root) || dataset.starts_with('-') {
        return unknown();
    }
    let Ok(output) = std::process::Command::new(zfs)
        .args(["get", "-H", "-o", "value", "encryption", dataset])
        .output()
    else {
        return unknown();
    };
    let value = String::from_utf8_lossy(&output.stdout).trim().to_string();
    let state = match value.as_str() {
        "off" => RestState::Unencrypted,
        "" | "-" => return unknown(),
        _ => RestState::Encrypted,
    };
    let mut verdict = Verdict::new(
        state,
        "zfs",
        format!("zfs dataset {dataset} encryption={value}"),
    );
    verdict.evidence.push(sys_evidence(
        &format!("zfs get encryption {dataset}"),
        &value,
    ));
    verdict
}

/// Swap areas from `/proc/swaps`: partitions follow the block chain, files inherit the volume
/// they live on, zram is memory and skipped.
fn swaps(root: &Path, volumes: &[Volume], errors: &mut Vec<FactError>) -> Vec<(String, Verdict)> {
    let Some(input) = read_bounded(root, "/proc/swaps", MOUNTS_LIMIT, COLLECTOR, errors) else {
        return Vec::new();
    };
    let mut list = Vec::new();
    for (index, line) in input.text.lines().enumerate().skip(1) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [file, kind, ..] = fields.as_slice() else {
            continue;
        };
        let file = unescape(file);
        if file.starts_with("/dev/zram") {
            continue;
        }
        let mut verdict = if *kind == "file" {
            swap_file(&file, volumes)
        } else {
            device_name(root, &file).map_or_else(
                || Verdict::new(RestState::Unknown, "", format!("cannot resolve {file}")),
                |name| block_chain(root, &name, 0),
            )
        };
        verdict.evidence.insert(
            0,
            Evidence {
                source: "/proc/swaps".into(),
                line: line_no(index),
                probe: COLLECTOR.into(),
                detail: line.trim().into(),
            },
        );
        list.push((file, verdict));
    }
    list
}

fn swap_file(file: &str, volumes: &[Volume]) -> Verdict {
    let holder = volumes
        .iter()
        .flat_map(|v| v.mount_points.iter().map(move |m| (m, v)))
        .filter(|(m, _)| {
            file.starts_with(m.as_str()) && (m.as_str() == "/" || file[m.len()..].starts_with('/'))
        })
        .max_by_key(|(m, _)| m.len());
    match holder {
        Some((mount_point, volume)) => Verdict {
            reason: format!(
                "swap file on {} ({mount_point}): {}",
                volume.source, volume.verdict.reason
            ),
            ..volume.verdict.clone()
        },
        None => Verdict::new(
            RestState::Unknown,
            "",
            format!("no mounted volume holds {file}"),
        ),
    }
}

/// The `rest_encryption` control over volumes and swap: unencrypted if any is, else unknown if
/// any is (or nothing was found), else encrypted.
pub fn control(volumes: &[Volume], swaps: &[(String, Verdict)]) -> Control {
    let all: Vec<(&str, &Verdict)> = volumes
        .iter()
        .filter(|v| v.is_data())
        .map(|v| (v.source.as_str(), &v.verdict))
        .chain(swaps.iter().map(|(name, v)| (name.as_str(), v)))
        .collect();
    let pick = |state: RestState| -> Vec<(&str, &Verdict)> {
        all.iter()
            .copied()
            .filter(|(_, v)| v.state == state)
            .collect()
    };
    let (state, chosen) = if all.is_empty() {
        (RestState::Unknown, Vec::new())
    } else {
        let worst = all
            .iter()
            .map(|(_, v)| v.state)
            .max()
            .unwrap_or(RestState::Unknown);
        (worst, pick(worst))
    };
    let names = chosen
        .iter()
        .map(|(name, _)| *name)
        .collect::<Vec<_>>()
        .join(", ");
    let reason = match state {
        _ if all.is_empty() => "no data volume found in the mount table".to_string(),
        RestState::Unencrypted => format!("unencrypted data volume(s): {names}"),
        RestState::Unknown => format!("at-rest encryption undecided for: {names}"),
        RestState::Encrypted => format!("every data volume and swap area is encrypted: {names}"),
    };
    Control {
        name: "rest_encryption".into(),
        state: state.as_str().into(),
        reason,
        evidence: chosen
            .iter()
            .flat_map(|(_, v)| v.evidence.iter().cloned())
            .collect(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // In tests an unwrap that fails is the failing assertion.
mod tests {
    use super::*;

    fn write(root: &Path, path: &str, text: &str) {
        let full = rooted(root, path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, text).unwrap();
    }

    #[test]
    fn mounts_are_unescaped_and_garbage_counted() {
        let (mounts, bad) = parse_mounts(
            "/dev/sda1 /mnt/my\\040disk ext4 rw 0 0\ngarbage\n\n/dev/x\\7 / ext4 rw\n",
            "/proc/mounts",
        );
        assert_eq!(bad, 1);
        assert_eq!(mounts[0].mount_point, "/mnt/my disk");
        assert_eq!(mounts[1].source, "/dev/x\\7");
        assert_eq!(mounts[1].line, 4);
    }

    #[test]
    fn lvm_on_luks_is_encrypted_and_bare_partition_is_not() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        write(
            root,
            "/sys/block/dm-0/dm/uuid",
            "CRYPT-LUKS2-0123abcd-crypt_root\n",
        );
        write(root, "/sys/block/dm-0/dm/name", "crypt_root\n");
        write(root, "/sys/block/dm-0/slaves/nvme0n1p3", "");
        write(root, "/sys/class/block/nvme0n1p3/dev", "259:3\n");
        write(root, "/sys/block/dm-1/dm/uuid", "LVM-abc\n");
        write(root, "/sys/block/dm-1/dm/name", "vg-root\n");
        write(root, "/sys/block/dm-1/slaves/dm-0", "");
        write(root, "/sys/class/block/sda1/dev", "8:1\n");
        let verdict = block_chain(root, &device_name(root, "/dev/mapper/vg-root").unwrap(), 0);
        assert_eq!(verdict.state, RestState::Encrypted);
        assert_eq!(verdict.method, "luks2");
        assert!(
            verdict
                .evidence
                .iter()
                .any(|e| e.source == "/sys/block/dm-0/dm/uuid")
        );
        assert_eq!(block_chain(root, "sda1", 0).state, RestState::Unencrypted);
        assert_eq!(block_chain(root, "nope", 0).state, RestState::Unknown);
    }

    #[test]
    fn swap_file_inherits_its_volume_and_zram_is_skipped() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        write(
            root,
            "/proc/self/mounts",
            "/dev/vda1 / ext4 rw 0 0\n/dev/dm-0 /srv ext4 rw 0 0\n",
        );
        write(root, "/sys/block/vda/size", "1\n");
        write(root, "/sys/class/block/vda1/partition", "1\n");
        write(root, "/sys/block/dm-0/dm/uuid", "CRYPT-PLAIN-abc\n");
        write(
            root,
            "/proc/swaps",
            "Filename Type Size Used Priority\n/srv/swapfile file 1 0 -2\n/srvx/swapfile file 1 0 -3\n/dev/zram0 partition 1 0 100\n",
        );
        let (mut observations, mut controls, mut errors) = (Vec::new(), Vec::new(), Vec::new());
        collect(root, &mut observations, &mut controls, &mut errors);
        assert!(errors.is_empty(), "{errors:?}");
        let swaps: Vec<(&str, &serde_json::Value)> = observations
            .iter()
            .filter(|o| o.category == "swap")
            .map(|o| (o.name.as_str(), &o.value["state"]))
            .collect();
        assert_eq!(
            swaps,
            [
                ("/srv/swapfile", &json!("encrypted")),
                ("/srvx/swapfile", &json!("unencrypted"))
            ],
            "/srvx is on /, not /srv; zram is memory"
        );
        assert_eq!(controls[0].state, "unencrypted");
        assert!(
            controls[0].reason.contains("/dev/vda1"),
            "{}",
            controls[0].reason
        );
    }

    #[test]
    fn a_slave_cycle_terminates_as_unknown() {
        let tmp = tempfile::tempdir().unwrap();
        write(tmp.path(), "/sys/block/dm-0/slaves/dm-1", "");
        write(tmp.path(), "/sys/block/dm-1/slaves/dm-0", "");
        assert_eq!(block_chain(tmp.path(), "dm-0", 0).state, RestState::Unknown);
    }

    #[test]
    fn control_names_the_worst_volumes() {
        let volume = |source: &str, state| Volume {
            source: source.into(),
            fs_type: "ext4".into(),
            mount_points: vec!["/".into()],
            verdict: Verdict::new(state, "", ""),
        };
        let c = control(
            &[
                volume("/dev/dm-0", RestState::Encrypted),
                volume("/dev/sdb1", RestState::Unencrypted),
            ],
            &[],
        );
        assert_eq!(
            (c.state.as_str(), c.reason.as_str()),
            ("unencrypted", "unencrypted data volume(s): /dev/sdb1")
        );
        let c = control(
            &[volume("/dev/dm-0", RestState::Encrypted)],
            &[("/swap".into(), Verdict::new(RestState::Unknown, "", ""))],
        );
        assert_eq!(c.state, "unknown");
        assert_eq!(control(&[], &[]).state, "unknown");
        assert_eq!(
            control(&[volume("/dev/dm-0", RestState::Encrypted)], &[]).state,
            "encrypted"
        );
    }
}
