//! Black-box tests of the authentication inventory: the real `tillsyn-agent` binary runs
//! `inventory --json --root <fixture>` over the trees in `tests/fixtures/auth/` (see the README
//! there for where each file comes from) and the `mfa` control, its evidence and the
//! observations are checked.

// A failed unwrap is a failed test here, with the line that failed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use serde_json::Value;

mod common;

use common::inventory;

fn fixture(name: &str) -> PathBuf {
    common::fixture("auth", name)
}

fn mfa(inventory: &Value) -> &Value {
    inventory["controls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "mfa")
        .expect("an mfa control")
}

fn observation<'a>(inventory: &'a Value, category: &str, name: &str) -> &'a Value {
    inventory["observations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["category"] == category && o["name"] == name)
        .unwrap_or_else(|| panic!("no {category}/{name} observation"))
}

/// Whether some evidence of `control` points at `source`:`line`.
fn has_evidence(control: &Value, source: &str, line: u64) -> bool {
    control["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["source"] == source && e["line"] == line)
}

/// 1-based number of the first line of a fixture file containing `needle`.
fn line_of(root: &Path, file: &str, needle: &str) -> u64 {
    let text = std::fs::read_to_string(root.join(file.trim_start_matches('/'))).unwrap();
    let index = text.lines().position(|l| l.contains(needle)).unwrap();
    u64::try_from(index + 1).unwrap()
}

#[test]
fn every_fixture_gets_its_expected_verdict() {
    let expected = [
        ("debian12-default", "absent"),
        ("password-only", "absent"),
        ("publickey-only", "absent"),
        ("totp-kbd", "enforced"),
        ("totp-nullok", "available"),
        ("match-password", "absent"),
        ("u2f", "enforced"),
        ("rhel9-default", "absent"),
        ("rhel9-password-totp", "enforced"),
        ("ubuntu2404-default", "absent"),
    ];
    for (name, state) in expected {
        let inventory = inventory(&fixture(name));
        let control = mfa(&inventory);
        assert_eq!(control["state"], state, "{name}: {control:#}");
        // The auth fixtures hold /etc only; collectors of /proc and /sys rightly say so.
        let auth_errors: Vec<_> = inventory["errors"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| {
                ["sshd", "pam", "accounts", "sudo", "mfa"]
                    .contains(&e["collector"].as_str().unwrap_or(""))
            })
            .collect();
        assert!(auth_errors.is_empty(), "{name}: {auth_errors:#?}");
    }
}

#[test]
fn key_plus_totp_is_enforced_with_evidence() {
    let root = fixture("totp-kbd");
    let inventory = inventory(&root);
    let control = mfa(&inventory);
    assert_eq!(control["state"], "enforced");
    let methods = "/etc/ssh/sshd_config.d/50-mfa.conf";
    assert!(has_evidence(
        control,
        methods,
        line_of(&root, methods, "AuthenticationMethods")
    ));
    let pam = "/etc/pam.d/sshd";
    assert!(has_evidence(
        control,
        pam,
        line_of(&root, pam, "pam_google_authenticator")
    ));
    let path = control["evidence"][0]["detail"].as_str().unwrap();
    assert!(path.contains("publickey,keyboard-interactive"), "{path}");
    assert!(
        path.contains("key + totp via pam_google_authenticator"),
        "{path}"
    );
}

#[test]
fn match_block_allowing_passwords_is_absent_and_named() {
    let root = fixture("match-password");
    let inventory = inventory(&root);
    let control = mfa(&inventory);
    assert_eq!(control["state"], "absent");
    let line = line_of(&root, "/etc/ssh/sshd_config", "Match Group contractors");
    let reason = control["reason"].as_str().unwrap();
    assert!(
        reason.contains(&format!(
            "Match Group contractors (/etc/ssh/sshd_config:{line})"
        )),
        "{reason}"
    );
    assert!(has_evidence(control, "/etc/ssh/sshd_config", line));
    // The global path alone would be enforced; the evidence says so too.
    assert!(control["evidence"].as_array().unwrap().iter().any(|e| {
        e["detail"]
            .as_str()
            .is_some_and(|d| d.starts_with("global settings") && d.contains("enforced"))
    }));
    let block = observation(&inventory, "sshd", "match");
    assert_eq!(block["value"]["criteria"], "Group contractors");
    assert_eq!(block["value"]["line"], line);
    assert_eq!(block["value"]["overrides"]["PasswordAuthentication"], "yes");
}

#[test]
fn nullok_totp_is_only_available() {
    let control = mfa(&inventory(&fixture("totp-nullok"))).clone();
    assert_eq!(control["state"], "available");
    assert!(control["reason"].as_str().unwrap().contains("nullok"));
}

#[test]
fn debian_defaults_are_reported_with_their_lines() {
    let root = fixture("debian12-default");
    let inventory = inventory(&root);
    let config = "/etc/ssh/sshd_config";
    let use_pam = observation(&inventory, "sshd", "UsePAM");
    assert_eq!(
        use_pam["value"],
        serde_json::json!({"value": "yes", "default": false})
    );
    assert_eq!(
        use_pam["evidence"][0]["line"],
        line_of(&root, config, "UsePAM yes")
    );
    let kbd = observation(&inventory, "sshd", "KbdInteractiveAuthentication");
    assert_eq!(kbd["value"]["value"], "no");
    let password = observation(&inventory, "sshd", "PasswordAuthentication");
    assert_eq!(
        password["value"],
        serde_json::json!({"value": "yes", "default": true})
    );
    let sshd_pam = observation(&inventory, "pam", "sshd");
    assert_eq!(sshd_pam["value"]["mfa"], "none");
    assert_eq!(sshd_pam["value"]["password_required"], true);
    assert_eq!(sshd_pam["evidence"][0]["source"], "/etc/pam.d/common-auth");
    let control = mfa(&inventory);
    let reason = control["reason"].as_str().unwrap();
    assert!(reason.contains("publickey needs key"), "{reason}");
    // The console is listed but does not decide.
    assert!(control["evidence"].as_array().unwrap().iter().any(|e| {
        e["source"] == "/etc/pam.d/login" && e["detail"].as_str().unwrap().contains("not weighed")
    }));
}

#[test]
fn accounts_never_carry_the_hash() {
    let root = fixture("debian12-default");
    let inventory = inventory(&root);
    let admin = observation(&inventory, "account", "admin");
    assert_eq!(admin["value"]["password"], "set");
    assert_eq!(
        observation(&inventory, "account", "root")["value"]["password"],
        "locked"
    );
    let accounts = inventory["observations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["category"] == "account")
        .count();
    // root and admin: every other base-passwd account has nologin or /bin/sync.
    assert_eq!(accounts, 2);
    let shadow = std::fs::read_to_string(root.join("etc/shadow")).unwrap();
    let hash = shadow
        .lines()
        .find_map(|l| l.strip_prefix("admin:"))
        .and_then(|rest| rest.split(':').next())
        .unwrap();
    assert!(hash.len() > 20);
    assert!(!inventory.to_string().contains(hash));
}

#[test]
fn rhel_alias_include_order_and_cloud_nopasswd() {
    let root = fixture("rhel9-default");
    let inventory = inventory(&root);
    let kbd = observation(&inventory, "sshd", "KbdInteractiveAuthentication");
    assert_eq!(kbd["value"]["value"], "no");
    assert_eq!(
        kbd["evidence"][0]["source"],
        "/etc/ssh/sshd_config.d/50-redhat.conf"
    );
    let rule = observation(&inventory, "sudo", "nopasswd");
    let drop_in = "/etc/sudoers.d/90-cloud-init-users";
    assert_eq!(rule["evidence"][0]["source"], drop_in);
    assert_eq!(
        rule["evidence"][0]["line"],
        line_of(&root, drop_in, "NOPASSWD")
    );
    // The commented-out wheel NOPASSWD line in sudoers is not a rule.
    let count = inventory["observations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["category"] == "sudo")
        .count();
    assert_eq!(count, 1);
}

#[test]
fn rhel_substack_keeps_totp_required() {
    let root = fixture("rhel9-password-totp");
    let inventory = inventory(&root);
    let sshd_pam = observation(&inventory, "pam", "sshd");
    assert_eq!(sshd_pam["value"]["mfa"], "required");
    assert_eq!(sshd_pam["value"]["password_required"], true);
    let control = mfa(&inventory);
    let path = control["evidence"][0]["detail"].as_str().unwrap();
    assert!(path.contains("password + totp"), "{path}");
}

/// Writes `files` under a fresh root.
fn hostile_root(files: &[(&str, &[u8])]) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    for (path, content) in files {
        let full = tmp.path().join(path.trim_start_matches('/'));
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, content).unwrap();
    }
    tmp
}

#[test]
fn missing_sshd_config_is_unknown() {
    let root = hostile_root(&[(
        "/etc/pam.d/sshd",
        b"auth required pam_google_authenticator.so\n",
    )]);
    let control = mfa(&inventory(root.path())).clone();
    assert_eq!(control["state"], "unknown");
}

#[test]
fn hostile_configuration_is_unknown_with_errors_not_a_hang() {
    let root = hostile_root(&[
        (
            "/etc/ssh/sshd_config",
            b"Include loop.conf\nAuthenticationMethods publickey,keyboard-interactive\nUsePAM yes\n",
        ),
        ("/etc/ssh/loop.conf", b"Include sshd_config loop.conf\n"),
        ("/etc/pam.d/sshd", b"@include sshd\nauth [oops pam_unix.so\n"),
        ("/etc/sudoers", b"#include /etc/sudoers\n"),
        ("/etc/passwd", b"\x00\x01ELF"),
    ]);
    let inventory = inventory(root.path());
    assert_eq!(mfa(&inventory)["state"], "unknown");
    let sources: Vec<&str> = inventory["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["source"].as_str().unwrap())
        .collect();
    for expected in [
        "/etc/ssh/loop.conf",
        "/etc/pam.d/sshd",
        "/etc/sudoers",
        "/etc/passwd",
    ] {
        assert!(sources.contains(&expected), "{expected} not in {sources:?}");
    }
}

#[test]
fn ubuntu_cloud_image_is_key_only_because_of_its_drop_in() {
    let root = fixture("ubuntu2404-default");
    let inventory = inventory(&root);
    // `absent` for the right reason: the cloud image's drop-in, not a default, turns the
    // password off, and the key alone is a single factor.
    let password = observation(&inventory, "sshd", "PasswordAuthentication");
    assert_eq!(password["value"]["value"], "no");
    let drop_in = "/etc/ssh/sshd_config.d/60-cloudimg-settings.conf";
    assert_eq!(password["evidence"][0]["source"], drop_in);
    let control = mfa(&inventory);
    assert_eq!(control["state"], "absent");
    let details: Vec<&str> = control["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["detail"].as_str())
        .collect();
    assert!(
        details
            .iter()
            .any(|d| d.contains("publickey needs key: absent")),
        "{details:#?}"
    );
    assert!(
        details
            .iter()
            .any(|d| d.contains("password is not usable") && d.contains(drop_in)),
        "{details:#?}"
    );
}
