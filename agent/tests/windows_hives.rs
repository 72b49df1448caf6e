//! Black-box tests of the offline hive source: the fixture hosts of `tests/fixtures/windows/`
//! turned into real hive files by third-party tools at test time, and the real
//! `tillsyn-agent inventory --json --root <host>` run over them.
//!
//! How a hive is made (see the fixtures' README): an empty base hive from the `regf` crate's
//! writer (the agent only reads with it), into which Debian's hivex (`hivexregedit --merge`)
//! imports the host's `registry/*.reg`; the `registry/` directory is then removed, so the
//! agent sees `Windows/System32/config/SYSTEM` and `SOFTWARE` only. Edits are made with
//! `hivexsh -w`. hivex is installed by `scripts/deps/hivex.sh`; without it these tests fail
//! and say so.

// A failed unwrap is a failed test here, with the line that failed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::fmt::Write as _;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

mod common;

use common::{control, inventory};
use tillsyn_agent::inventory::windows::reg_text;

const CONFIG: &str = "Windows/System32/config";
const MISSING_HIVEX: &str = "Debian's hivex tools are needed (apt-get install libhivex-bin libwin-hivex-perl, or bash scripts/deps/hivex.sh)";

fn fixture(name: &str) -> PathBuf {
    common::fixture("windows", name)
}

/// Runs a hivex tool, failing the test with its output (or with how to install it).
fn hivex(program: &str, args: &[&str], stdin: &str) {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{program}: {e}. {MISSING_HIVEX}"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{program} {args:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The export's text with every missing parent key added, empty, before its first child.
/// hivexregedit, unlike `reg import`, creates no parents, and the fixtures hold only the keys
/// the agent reads, where a whole `reg export` would list every key on the way.
fn with_parents(text: &str) -> String {
    let mut seen = HashSet::new();
    let mut out = String::new();
    for line in text.lines() {
        if let Some(key) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let parts: Vec<&str> = key.split('\\').collect();
            // Depth 2 is the hive's root (`HKEY_LOCAL_MACHINE\SYSTEM`), which exists.
            for depth in 3..parts.len() {
                let parent = parts[..depth].join("\\");
                if seen.insert(parent.to_lowercase()) {
                    writeln!(out, "[{parent}]\n").unwrap();
                }
            }
            seen.insert(key.to_lowercase());
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// A copy of fixture `host` whose registry is in hive files made by regf's writer and hivex,
/// with `registry/` removed.
fn hive_copy(host: &str) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("host");
    let status = Command::new("cp")
        .arg("-r")
        .arg(fixture(host))
        .arg(&root)
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::create_dir_all(root.join(CONFIG)).unwrap();
    for (export, hive, prefix) in [
        ("system.reg", "SYSTEM", "HKEY_LOCAL_MACHINE\\SYSTEM"),
        ("software.reg", "SOFTWARE", "HKEY_LOCAL_MACHINE\\SOFTWARE"),
    ] {
        let path = root.join(CONFIG).join(hive);
        let base = regf::HiveBuilder::new().unwrap().to_bytes().unwrap();
        std::fs::write(&path, base).unwrap();
        // hivexregedit reads UTF-8; reg.exe writes UTF-16LE, as system.reg is.
        let bytes = std::fs::read(root.join("registry").join(export)).unwrap();
        let text = with_parents(&reg_text::decode(&bytes).unwrap());
        let import = tmp.path().join(export);
        std::fs::write(&import, text).unwrap();
        hivex(
            "hivexregedit",
            &[
                "--merge",
                "--prefix",
                prefix,
                path.to_str().unwrap(),
                import.to_str().unwrap(),
            ],
            "",
        );
    }
    std::fs::remove_dir_all(root.join("registry")).unwrap();
    tmp
}

/// Controls or observations read from exports, with what necessarily differs from the hive
/// form mapped to it: file names in evidence and reasons, and line numbers (a hive has none,
/// and a line of 0 is left out of the JSON).
fn as_if_from_hives(items: &Value) -> Value {
    let text = serde_json::to_string(items)
        .unwrap()
        .replace("/registry/system.reg", "/Windows/System32/config/SYSTEM")
        .replace(
            "/registry/software.reg",
            "/Windows/System32/config/SOFTWARE",
        )
        .replace("/registry", "/Windows/System32/config");
    let mut items: Value = serde_json::from_str(&text).unwrap();
    for item in items.as_array_mut().unwrap() {
        for evidence in item["evidence"].as_array_mut().unwrap() {
            if evidence["source"].as_str().unwrap().starts_with("HKLM") {
                evidence.as_object_mut().unwrap().remove("line");
            }
        }
    }
    items
}

#[test]
fn hives_give_the_same_controls_and_observations_as_the_exports_they_were_made_from() {
    for host in [
        "server2022-default",
        "rdp-nla-off",
        "rdp-nla-no-mfa",
        "duo-enforced",
        "duo-fail-open",
        "tls10-enabled",
        "smb1-enabled",
        "admins-dormant",
        "admins-exposed",
    ] {
        let tmp = hive_copy(host);
        let hives = inventory(&tmp.path().join("host"));
        assert_eq!(hives["host"]["os_name"], "Windows", "{host}");
        assert!(
            hives["errors"].as_array().unwrap().is_empty(),
            "{host}: {:#}",
            hives["errors"]
        );
        let exports = inventory(&fixture(host));
        for part in ["controls", "observations"] {
            assert_eq!(
                serde_json::to_string_pretty(&hives[part]).unwrap(),
                serde_json::to_string_pretty(&as_if_from_hives(&exports[part])).unwrap(),
                "{host} {part}"
            );
        }
        assert_eq!(hives["host"], exports["host"], "{host}");
    }
}

#[test]
fn evidence_names_the_hive_file() {
    let tmp = hive_copy("rdp-nla-off");
    let inv = inventory(&tmp.path().join("host"));
    let mfa = control(&inv, "mfa");
    assert_eq!(mfa["state"], "absent");
    let evidence = mfa["evidence"].as_array().unwrap();
    assert!(
        evidence.iter().any(|e| e["source"]
            .as_str()
            .unwrap()
            .ends_with("WinStations\\RDP-Tcp\\UserAuthentication")
            && e["detail"] == "REG_DWORD 0 (0x00000000) in /Windows/System32/config/SYSTEM"),
        "{evidence:#?}"
    );
}

/// hivexsh `setval` replaces all of a key's values, so every value of the key is given.
fn hivexsh_set(hive: &Path, key: &str, values: &[(&str, &str)]) {
    let mut script = format!("cd {key}\nsetval {}\n", values.len());
    for (name, value) in values {
        writeln!(script, "{name}\n{value}").unwrap();
    }
    script.push_str("commit\n");
    hivex("hivexsh", &["-w", hive.to_str().unwrap()], &script);
}

#[test]
fn an_edit_by_hivexsh_changes_the_verdicts() {
    // RDP turned on without NLA in SYSTEM: a password alone now reaches the host.
    let tmp = hive_copy("server2022-default");
    let root = tmp.path().join("host");
    let before = inventory(&root);
    let reason = control(&before, "mfa")["reason"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(!reason.contains("RDP"), "{reason}");
    let system = root.join(CONFIG).join("SYSTEM");
    hivexsh_set(
        &system,
        "\\ControlSet001\\Control\\Terminal Server",
        &[("fDenyTSConnections", "dword:0x00000000")],
    );
    hivexsh_set(
        &system,
        "\\ControlSet001\\Control\\Terminal Server\\WinStations\\RDP-Tcp",
        &[
            ("UserAuthentication", "dword:0x00000000"),
            ("SecurityLayer", "dword:0x00000002"),
            ("MinEncryptionLevel", "dword:0x00000002"),
            ("PortNumber", "dword:0x00000d3d"),
        ],
    );
    let after = inventory(&root);
    let mfa = control(&after, "mfa");
    assert!(
        mfa["reason"]
            .as_str()
            .unwrap()
            .contains("RDP on port 3389 (NLA off): absent (a password alone"),
        "{mfa:#}"
    );
    assert!(
        mfa["evidence"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["source"]
                .as_str()
                .unwrap()
                .ends_with("Control\\Terminal Server\\fDenyTSConnections")
                && e["detail"] == "REG_DWORD 0 (0x00000000) in /Windows/System32/config/SYSTEM"),
        "{mfa:#}"
    );

    // Duo made to fail open in SOFTWARE: MFA is no longer enforced, only available.
    let tmp = hive_copy("tls10-enabled");
    let root = tmp.path().join("host");
    assert_eq!(control(&inventory(&root), "mfa")["state"], "enforced");
    hivexsh_set(
        &root.join(CONFIG).join("SOFTWARE"),
        "\\Duo Security\\DuoCredProv",
        &[
            ("Host", "string:api-12345678.duosecurity.com"),
            ("IKey", "string:DIXXXXXXXXXXXXXXXXXX"),
            ("FailOpen", "dword:0x00000001"),
            ("RdpOnly", "dword:0x00000000"),
            ("OfflineAvailable", "dword:0x00000000"),
        ],
    );
    let mfa = control(&inventory(&root), "mfa").clone();
    assert_eq!(mfa["state"], "available", "{mfa:#}");
}

/// Asserts that `file` is reported as an error holding `error`, and that the registry-based
/// controls are unknown naming it while BitLocker (recorded, not in the registry) is decided.
fn assert_unreadable(inv: &Value, file: &str, error: &str) {
    let errors = inv["errors"].as_array().unwrap();
    assert!(
        errors
            .iter()
            .any(|e| e["source"] == file && e["error"].as_str().unwrap().contains(error)),
        "{errors:#?}"
    );
    for name in ["mfa", "transit_encryption"] {
        let c = control(inv, name);
        assert_eq!(c["state"], "unknown", "{c:#}");
        assert!(
            c["reason"]
                .as_str()
                .unwrap()
                .contains(&format!("{file}: {error}")),
            "{c:#}"
        );
    }
    assert_eq!(control(inv, "rest_encryption")["state"], "encrypted");
}

#[test]
fn truncated_garbage_and_missing_hives_name_the_file_and_leave_controls_unknown() {
    let tmp = hive_copy("duo-enforced");
    let root = tmp.path().join("host");
    let system = root.join(CONFIG).join("SYSTEM");
    let whole = std::fs::read(&system).unwrap();
    std::fs::write(&system, &whole[..whole.len() / 2]).unwrap();
    let inv = inventory(&root);
    assert_eq!(inv["host"]["os_name"], "Windows");
    assert_unreadable(
        &inv,
        "/Windows/System32/config/SYSTEM",
        "not a readable registry hive: Buffer too small",
    );

    std::fs::write(&system, &whole).unwrap();
    let software = root.join(CONFIG).join("SOFTWARE");
    std::fs::write(
        &software,
        "Windows Registry Editor Version 5.00\r\n".repeat(300),
    )
    .unwrap();
    assert_unreadable(
        &inventory(&root),
        "/Windows/System32/config/SOFTWARE",
        "not a readable registry hive",
    );

    std::fs::remove_file(&software).unwrap();
    assert_unreadable(
        &inventory(&root),
        "/Windows/System32/config/SOFTWARE",
        "missing (both SYSTEM and SOFTWARE hives are needed)",
    );
}

#[test]
fn hives_win_over_exports_and_say_so() {
    let tmp = hive_copy("rdp-nla-off");
    let root = tmp.path().join("host");
    // An export that would turn RDP off, beside the hives: it is not read.
    std::fs::create_dir(root.join("registry")).unwrap();
    std::fs::write(
        root.join("registry/system.reg"),
        "Windows Registry Editor Version 5.00\r\n\r\n\
         [HKEY_LOCAL_MACHINE\\SYSTEM\\ControlSet001\\Control\\Terminal Server]\r\n\
         \"fDenyTSConnections\"=dword:00000001\r\n",
    )
    .unwrap();
    let inv = inventory(&root);
    let errors = inv["errors"].as_array().unwrap();
    assert!(
        errors.iter().any(|e| e["source"] == "/registry"
            && e["error"]
                == "not read: the hive files in /Windows/System32/config are read instead"),
        "{errors:#?}"
    );
    assert!(
        control(&inv, "mfa")["reason"]
            .as_str()
            .unwrap()
            .contains("RDP on port 3389 (NLA off)")
    );
}
