//! Black-box tests of the software, services and at-rest collectors: the real binary's
//! `inventory --json` over fixture roots (a LUKS+LVM Debian host excerpt, an rpm database made
//! by rpm, and a hostile root).

// In tests an unwrap that fails is the failing assertion.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

mod common;

use common::{control, inventory};

fn fixture(name: &str) -> PathBuf {
    common::fixture("services", name)
}

fn observation<'a>(inventory: &'a Value, category: &str, name: &str) -> &'a Value {
    inventory["observations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["category"] == category && o["name"] == name)
        .unwrap_or_else(|| panic!("no {category} observation named {name}"))
}

#[test]
fn luks_host_software() {
    let inv = inventory(&fixture("luks-host"));
    assert_eq!(
        inv["errors"],
        serde_json::json!([]),
        "a clean fixture has no errors"
    );

    let packages: Vec<&str> = inv["observations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["category"] == "package")
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        packages,
        [
            "adduser",
            "base-files",
            "bash",
            "libc6",
            "openssh-server",
            "openssl"
        ]
    );
    let ssh = observation(&inv, "package", "openssh-server");
    assert_eq!(ssh["value"]["manager"], "dpkg");
    assert!(
        ssh["value"]["version"]
            .as_str()
            .unwrap()
            .starts_with("1:9.")
    );
    assert_eq!(ssh["evidence"][0]["source"], "/var/lib/dpkg/status");

    assert_eq!(
        observation(&inv, "kernel", "release")["value"]["release"],
        "6.1.0-28-amd64"
    );
    assert_eq!(
        observation(&inv, "boot", "boot_time")["value"]["unix_seconds"],
        1_764_000_000
    );
    assert_eq!(
        observation(&inv, "unit", "ssh.service")["value"]["wanted_by"][0],
        "multi-user.target"
    );
}

#[test]
fn luks_host_listeners_and_transit() {
    let inv = inventory(&fixture("luks-host"));
    let ssh_v4 = observation(&inv, "listener", "tcp 0.0.0.0:22");
    assert_eq!(ssh_v4["value"]["exposed"], true);
    assert_eq!(ssh_v4["evidence"][0]["line"], 2);
    // Socket inode 18211 is fd 3 of pid 812 in the fixture's /proc.
    assert_eq!(
        ssh_v4["value"]["processes"],
        serde_json::json!([{ "pid": 812, "comm": "sshd", "exe": "/usr/sbin/sshd" }])
    );
    assert_eq!(ssh_v4["value"]["user"], "root");
    let mysql = observation(&inv, "listener", "tcp 127.0.0.1:3306");
    assert_eq!(mysql["value"]["user"], "mysql");
    assert_eq!(mysql["value"]["exposed"], false);
    observation(&inv, "listener", "tcp [::]:22");
    assert_eq!(
        observation(&inv, "listener", "tcp [::1]:25")["value"]["exposed"],
        false
    );
    observation(&inv, "listener", "udp 0.0.0.0:68");

    // Fixture roots are never probed, so exposed services stay unknown, never ok.
    let transit = control(&inv, "transit_encryption");
    assert_eq!(transit["state"], "unknown");
    assert!(
        transit["reason"]
            .as_str()
            .unwrap()
            .contains("tcp 0.0.0.0:22 (not probed)")
    );
    assert!(
        transit["reason"]
            .as_str()
            .unwrap()
            .contains("1 exposed UDP")
    );
}

#[test]
fn luks_host_volumes_and_config() {
    let inv = inventory(&fixture("luks-host"));
    let root = observation(&inv, "volume", "/dev/mapper/vg-root");
    assert_eq!(root["value"]["state"], "encrypted");
    assert_eq!(root["value"]["method"], "luks2");
    assert_eq!(
        root["value"]["mount_points"],
        serde_json::json!(["/", "/var/lib/docker"])
    );
    assert!(
        root["evidence"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["source"] == "/sys/block/dm-0/dm/uuid")
    );
    let boot = observation(&inv, "volume", "/dev/nvme0n1p2");
    assert_eq!(boot["value"]["state"], "unencrypted");
    assert_eq!(boot["value"]["data_volume"], false);
    assert_eq!(
        observation(&inv, "swap", "/dev/dm-2")["value"]["state"],
        "encrypted"
    );
    assert_eq!(control(&inv, "rest_encryption")["state"], "encrypted");

    assert_eq!(
        observation(&inv, "config", "firewall")["value"]["configured"],
        true
    );
    assert_eq!(
        observation(&inv, "config", "automatic_updates")["value"]["enabled"],
        true
    );
    assert_eq!(
        observation(&inv, "config", "time_sync")["value"]["enabled"],
        true
    );
    assert_eq!(
        observation(&inv, "config", "audit")["value"]["enabled"],
        false
    );
}

#[test]
fn hostile_root_gives_partial_results_and_named_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let write = |path: &str, bytes: &[u8]| {
        let full = root.join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, bytes).unwrap();
    };
    // Garbage around one good line, and a line cut in half.
    write(
        "proc/net/tcp",
        b"header\n\x00\xff\xfe garbage\n   0: 00000000:0050 00000000:0000 0A 0:0 0:0 0 33 0 99 1\n   1: 0100007F:00",
    );
    // Over the 16 MiB limit: the start is still parsed. One listener, then established
    // connections (state 01), which the agent reads but does not report.
    let mut big = b"header\n   0: 00000000000000000000000000000000:01BB 00000000000000000000000000000000:0000 0A 0:0 0:0 0 0 0 7 1\n".to_vec();
    let line = b"   1: 00000000000000000000000001000000:01BB 00000000000000000000000001000000:D431 01 0:0 0:0 0 0 0 8 1\n";
    while big.len() < 17 * 1024 * 1024 {
        big.extend_from_slice(line);
    }
    write("proc/net/tcp6", &big);
    write(
        "proc/self/mounts",
        b"/dev/sda1\n\xff\xff\n/dev/dm-0 / ext4 rw 0 0\n",
    );
    write("sys/block/dm-0/slaves/dm-1", b"");
    write("sys/block/dm-1/slaves/dm-0", b"");
    write(
        "var/lib/dpkg/status",
        b"Package: half\nStatus: install ok installed\nVers",
    );
    // A FIFO where a file should be must not block the agent.
    std::fs::create_dir_all(root.join("proc/sys/kernel")).unwrap();
    let status = Command::new("mkfifo")
        .arg(root.join("proc/sys/kernel/osrelease"))
        .status()
        .unwrap();
    assert!(status.success(), "mkfifo");

    let inv = inventory(root);
    let errors = inv["errors"].as_array().unwrap();
    let error_for = |source: &str| {
        errors
            .iter()
            .find(|e| e["source"] == source)
            .unwrap_or_else(|| panic!("no error naming {source}: {errors:?}"))
    };
    assert!(
        error_for("/proc/net/tcp")["error"]
            .as_str()
            .unwrap()
            .contains("malformed")
    );
    assert!(
        error_for("/proc/net/tcp6")["error"]
            .as_str()
            .unwrap()
            .contains("limit")
    );
    assert!(
        error_for("/proc/self/mounts")["error"]
            .as_str()
            .unwrap()
            .contains("malformed")
    );
    assert!(
        error_for("/proc/sys/kernel/osrelease")["error"]
            .as_str()
            .unwrap()
            .contains("not a regular file")
    );
    observation(&inv, "listener", "tcp 0.0.0.0:80");
    observation(&inv, "listener", "tcp [::]:443");
    assert_eq!(
        observation(&inv, "volume", "/dev/dm-0")["value"]["state"],
        "unknown",
        "a slave cycle is unknown"
    );
    assert_eq!(control(&inv, "rest_encryption")["state"], "unknown");
    assert_eq!(
        observation(&inv, "package_database", "dpkg")["value"]["packages"],
        0
    );
}

#[test]
fn rhel9_rpm_database_lists_both_packages_with_their_versions() {
    // The database was written by rpm 4.18 itself; see the fixture's README.
    let root = fixture("rhel9-rpm");
    let db = root.join("var/lib/rpm/rpmdb.sqlite");
    let bytes_before = std::fs::read(&db).unwrap();

    let inv = inventory(&root);
    let rpm_errors: Vec<&Value> = inv["errors"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["collector"] == "packages")
        .collect();
    assert!(rpm_errors.is_empty(), "{rpm_errors:#?}");

    let database = observation(&inv, "package_database", "rpm");
    assert_eq!(database["value"]["supported"], true);
    assert_eq!(database["value"]["packages"], 2);

    let base = observation(&inv, "package", "tillsyn-fixture-base");
    assert_eq!(
        base["value"],
        serde_json::json!({ "manager": "rpm", "version": "1.2.3-4.el9", "architecture": "x86_64" })
    );
    assert_eq!(base["evidence"][0]["source"], "/var/lib/rpm/rpmdb.sqlite");
    assert_eq!(base["evidence"][0]["detail"], "hnum 1");
    let epoch = observation(&inv, "package", "tillsyn-fixture-epoch");
    assert_eq!(
        epoch["value"],
        serde_json::json!({ "manager": "rpm", "version": "2:0.9-1.el9", "architecture": "noarch" })
    );
    assert_eq!(epoch["evidence"][0]["detail"], "hnum 2");

    // Opened read-only and immutable: the agent neither wrote the file nor left a -wal,
    // -shm or journal beside it.
    assert_eq!(std::fs::read(&db).unwrap(), bytes_before);
    let beside: Vec<String> = std::fs::read_dir(db.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(beside, ["rpmdb.sqlite"]);
}
