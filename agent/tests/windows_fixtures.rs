//! Black-box tests of the Windows inventory: the real `tillsyn-agent` binary runs
//! `inventory --json --root <fixture>` over the offline Windows hosts in
//! `tests/fixtures/windows/` (registry exports, recorded BitLocker output; see the README
//! there) and every control's verdict and evidence is checked, plus bad input.

// A failed unwrap is a failed test here, with the line that failed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

mod common;

use common::{control, inventory};

fn fixture(name: &str) -> PathBuf {
    common::fixture("windows", name)
}

/// Asserts the state, that the reason holds `reason`, and that some evidence has `source`
/// ending in `evidence` and (when non-empty) `detail` holding `detail`.
fn assert_control(inv: &Value, name: &str, state: &str, reason: &str, evidence: &[(&str, &str)]) {
    let c = control(inv, name);
    assert_eq!(c["state"], state, "{name}: {c:#}");
    assert!(
        c["reason"].as_str().unwrap().contains(reason),
        "{name} reason: {}",
        c["reason"]
    );
    for (source, detail) in evidence {
        assert!(
            c["evidence"].as_array().unwrap().iter().any(|e| {
                e["source"].as_str().unwrap().ends_with(source)
                    && e["detail"].as_str().unwrap().contains(detail)
            }),
            "{name}: no evidence {source} / {detail}: {:#}",
            c["evidence"]
        );
    }
}

const DENY: &str = "Control\\Terminal Server\\fDenyTSConnections";
const NLA: &str = "WinStations\\RDP-Tcp\\UserAuthentication";

#[test]
fn server_2022_defaults() {
    let inv = inventory(&fixture("server2022-default"));
    assert!(
        inv["errors"].as_array().unwrap().is_empty(),
        "{:#}",
        inv["errors"]
    );
    assert_eq!(inv["host"]["os_name"], "Windows");
    assert_eq!(inv["host"]["hostname"], "srv-default");
    assert!(
        inv["host"]["os_version"]
            .as_str()
            .unwrap()
            .contains("20348.2113")
    );
    assert_control(
        &inv,
        "mfa",
        "absent",
        "WinRM",
        &[
            (DENY, "REG_DWORD 1 (0x00000001) in /registry/system.reg"),
            ("WSMAN\\Listener\\*+HTTP", ""),
        ],
    );
    assert_control(
        &inv,
        "transit_encryption",
        "plaintext",
        "SMB port 445 (no SMB encryption",
        &[("LanmanServer\\Parameters\\EncryptData", "not set")],
    );
    assert_control(
        &inv,
        "rest_encryption",
        "unencrypted",
        "C: (not encrypted (fully decrypted))",
        &[("/recorded/manage-bde-status.txt", "manage-bde volume C:")],
    );
    // Software from both Uninstall hives, services without drivers.
    let observations = inv["observations"].as_array().unwrap();
    let find = |category: &str, name: &str| {
        observations
            .iter()
            .find(|o| o["category"] == category && o["name"] == name)
            .unwrap_or_else(|| panic!("no {category}/{name}"))
    };
    assert_eq!(
        find("package", "7-Zip 23.01 (x64 edition)")["value"]["version"],
        "23.01.00.0"
    );
    assert_eq!(
        find("package", "Notepad++ (32-bit x86)")["value"]["architecture"],
        "32-bit"
    );
    assert_eq!(
        find("windows_service", "WinRM")["value"]["start"],
        "automatic"
    );
    assert!(
        observations.iter().all(|o| o["name"] != "Tcpip"),
        "a driver is not a service"
    );
    assert_eq!(
        find("windows_host", "version")["value"]["domain"],
        "kommun.local"
    );
    assert_eq!(find("schannel", "TLS 1.0")["value"]["server_enabled"], true);
}

#[test]
fn rdp_with_nla_off_is_a_password_alone() {
    let inv = inventory(&fixture("rdp-nla-off"));
    assert_control(
        &inv,
        "mfa",
        "absent",
        "RDP on port 3389 (NLA off): absent (a password alone",
        &[(DENY, "REG_DWORD 0"), (NLA, "REG_DWORD 0")],
    );
    // The recorded listener table: RDP (3389) and SMB (445, 139) are accounted for by their
    // configuration; RPC's endpoint mapper and dynamic ports are not, but Windows Defender
    // Firewall admits them from no profile (their rules are disabled, as a default install
    // has them), so they are not exposed and every exposed service is encrypted.
    assert_control(
        &inv,
        "transit_encryption",
        "encrypted",
        "every exposed service is encrypted: RDP port 3389 (TLS 1.2 or later), SMB port 445",
        &[
            (
                "/recorded/listeners.json",
                "Tcp[3] LocalAddress=0.0.0.0 LocalPort=49664 OwningProcess=652 ProcessName=lsass",
            ),
            (
                "FirewallPolicy\\PublicProfile\\DefaultInboundAction",
                "REG_DWORD 1 (0x00000001) in /registry/system.reg",
            ),
        ],
    );
    let transit = control(&inv, "transit_encryption")["reason"]
        .as_str()
        .unwrap();
    assert!(
        transit.contains(
            "not reachable through Windows Defender Firewall in any profile: tcp 0.0.0.0:135 \
             svchost, tcp 0.0.0.0:49664 lsass"
        ),
        "{transit}"
    );
    for accounted in [":3389 ", ":445 ", ":139 "] {
        assert!(!transit.contains(accounted), "{accounted}: {transit}");
    }
    assert!(transit.contains("tcp [::]:49669 services"), "{transit}");
    // RDP's UDP, NetBIOS 137/138 and mDNS (Domain profile) are admitted; NTP and LLMNR not.
    assert!(
        transit.contains("5 exposed UDP listener(s) not assessed"),
        "{transit}"
    );
    assert_firewall(
        &inv,
        "tcp 0.0.0.0:49668 spoolsv",
        false,
        "Domain: no allow rule matches, default inbound action block",
    );
    assert_firewall(
        &inv,
        "udp 0.0.0.0:5353 svchost",
        true,
        "Domain: allowed by MDNS-In-UDP-Domain-Active; Private: no allow rule",
    );
    let listeners: Vec<&Value> = inv["observations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["category"] == "listener")
        .collect();
    assert_eq!(listeners.len(), 19 + 9, "19 TCP and 9 UDP sockets");
    let rdp = listeners
        .iter()
        .find(|o| o["name"] == "tcp 0.0.0.0:3389")
        .unwrap();
    assert_eq!(rdp["value"]["exposed"], true);
    assert_eq!(rdp["value"]["processes"][0]["pid"], 1180);
    assert_eq!(rdp["value"]["processes"][0]["comm"], "svchost");
    assert_eq!(
        rdp["value"]["processes"][0]["exe"],
        "C:\\Windows\\system32\\svchost.exe"
    );
    assert!(rdp["value"]["uid"].is_null() && rdp["value"]["inode"].is_null());
    let loopback = listeners
        .iter()
        .find(|o| o["name"] == "udp 127.0.0.1:58203")
        .unwrap();
    assert_eq!(loopback["value"]["exposed"], false);
    assert_control(
        &inv,
        "rest_encryption",
        "encrypted",
        "C: (BitLocker on (XTS-AES 128, TPM + Numerical Password))",
        &[(
            "/recorded/Win32_EncryptableVolume.json",
            "ProtectionStatus 1",
        )],
    );
}

#[test]
fn rdp_with_nla_and_no_second_factor() {
    let inv = inventory(&fixture("rdp-nla-no-mfa"));
    assert_control(
        &inv,
        "mfa",
        "absent",
        "RDP on port 3389 (NLA on): absent",
        &[(NLA, "REG_DWORD 1")],
    );
    // TLS 1.0 and 1.1 unset: on by default in build 20348.
    assert_control(
        &inv,
        "transit_encryption",
        "plaintext",
        "SChannel accepts deprecated TLS 1.0, TLS 1.1",
        &[(
            "SCHANNEL\\Protocols\\TLS 1.0\\Server\\Enabled",
            "on by default in build 20348",
        )],
    );
    assert_control(
        &inv,
        "rest_encryption",
        "unencrypted",
        "BitLocker suspended",
        &[(
            "/recorded/Win32_EncryptableVolume.json",
            "ProtectionStatus 0, ConversionStatus 1",
        )],
    );
}

#[test]
fn duo_enforced_with_openssh_key_and_password() {
    let inv = inventory(&fixture("duo-enforced"));
    assert!(
        inv["errors"].as_array().unwrap().is_empty(),
        "{:#}",
        inv["errors"]
    );
    assert_control(
        &inv,
        "mfa",
        "enforced",
        "every remote login path (2 in all)",
        &[
            ("Duo Security\\DuoCredProv\\FailOpen", "REG_DWORD 0"),
            ("Duo Security\\DuoCredProv\\OfflineAvailable", "REG_DWORD 1"),
            (
                "/ProgramData/ssh/sshd_config",
                "publickey,password needs key + password",
            ),
            ("Services\\WinRM\\Start", "REG_DWORD 4"),
        ],
    );
    assert_control(
        &inv,
        "transit_encryption",
        "encrypted",
        "OpenSSH Server (SSH)",
        &[
            ("LanmanServer\\Parameters\\EncryptData", "REG_DWORD 1"),
            (
                "FirewallPolicy\\DomainProfile\\EnableFirewall",
                "REG_DWORD 1",
            ),
        ],
    );
    // sshd's socket is admitted by its own rule (program and service match), and counted.
    assert_firewall(
        &inv,
        "tcp 0.0.0.0:22 sshd",
        true,
        "Domain: allowed by OpenSSH-Server-In-TCP",
    );
    assert_control(&inv, "rest_encryption", "encrypted", "BitLocker on", &[]);
}

#[test]
fn duo_fail_open_is_available() {
    let inv = inventory(&fixture("duo-fail-open"));
    assert_control(
        &inv,
        "mfa",
        "available",
        "Duo FailOpen lets the password alone in",
        &[("Duo Security\\DuoCredProv\\FailOpen", "REG_DWORD 1")],
    );
    assert_control(
        &inv,
        "transit_encryption",
        "encrypted",
        "RDP port 3389 (TLS 1.2 or later)",
        &[],
    );
    assert_control(&inv, "rest_encryption", "encrypted", "BitLocker on", &[]);
}

#[test]
fn tls_1_0_enabled_makes_tls_services_not_encrypted() {
    let inv = inventory(&fixture("tls10-enabled"));
    assert_control(
        &inv,
        "mfa",
        "enforced",
        "every remote login path (1 in all)",
        &[],
    );
    assert_control(
        &inv,
        "transit_encryption",
        "plaintext",
        "RDP port 3389 (TLS, but SChannel accepts deprecated TLS 1.0)",
        &[(
            "SCHANNEL\\Protocols\\TLS 1.0\\Server\\Enabled",
            "REG_DWORD 1",
        )],
    );
    assert_control(&inv, "rest_encryption", "encrypted", "BitLocker on", &[]);
}

#[test]
fn smb1_enabled_is_plaintext() {
    let inv = inventory(&fixture("smb1-enabled"));
    assert_control(
        &inv,
        "mfa",
        "unknown",
        "no remote login path",
        &[(DENY, "REG_DWORD 1")],
    );
    assert_control(
        &inv,
        "transit_encryption",
        "plaintext",
        "SMB1 enabled: it has no encryption",
        &[("LanmanServer\\Parameters\\SMB1", "REG_DWORD 1")],
    );
    assert_control(&inv, "rest_encryption", "encrypted", "BitLocker on", &[]);
}

/// Every control of every fixture host is decided, but one: with RDP, OpenSSH and WinRM all
/// off, `smb1-enabled` has no remote login path, and `mfa` is then `unknown` as on Linux (the
/// console is listed, not weighed).
#[test]
fn every_control_is_decided_on_every_fixture_host() {
    let hosts = std::fs::read_dir(fixture(""))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("registry").is_dir())
        .collect::<Vec<_>>();
    assert_eq!(hosts.len(), 9, "{hosts:?}");
    for host in hosts {
        let inv = inventory(&host);
        let name = host.file_name().unwrap().to_str().unwrap();
        for control in inv["controls"].as_array().unwrap() {
            let undecided = control["state"] == "unknown";
            let expected = name == "smb1-enabled" && control["name"] == "mfa";
            assert_eq!(undecided, expected, "{name}: {control:#}");
        }
    }
}

/// A copy of a fixture host with `file` replaced by `content`.
fn broken_copy(host: &str, file: &str, content: &[u8]) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let status = Command::new("cp")
        .arg("-r")
        .arg(fixture(host))
        .arg(tmp.path().join("host"))
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::write(tmp.path().join("host").join(file), content).unwrap();
    tmp
}

/// A copy of a fixture host without `file`, as an export taken without that recording.
fn copy_without(host: &str, file: &str) -> tempfile::TempDir {
    let tmp = broken_copy(host, file, b"");
    std::fs::remove_file(tmp.path().join("host").join(file)).unwrap();
    tmp
}

#[test]
fn truncated_export_names_file_and_line_and_leaves_controls_unknown() {
    let original = std::fs::read(fixture("duo-enforced").join("registry/software.reg")).unwrap();
    // Cut inside a hex continuation: the last line ends in a backslash.
    let mut cut = String::from_utf8(original).unwrap();
    cut.push_str("[HKEY_LOCAL_MACHINE\\SOFTWARE\\X]\r\n\"b\"=hex:01,\\\r\n");
    let tmp = broken_copy("duo-enforced", "registry/software.reg", cut.as_bytes());
    let inv = inventory(&tmp.path().join("host"));
    let errors = inv["errors"].as_array().unwrap();
    assert!(
        errors
            .iter()
            .any(|e| e["source"] == "/registry/software.reg"
                && e["error"]
                    .as_str()
                    .unwrap()
                    .contains("continued past the end")),
        "{errors:#?}"
    );
    for name in ["mfa", "transit_encryption"] {
        let c = control(&inv, name);
        assert_eq!(c["state"], "unknown", "{c:#}");
        assert!(
            c["reason"]
                .as_str()
                .unwrap()
                .contains("/registry/software.reg: line"),
            "{c:#}"
        );
    }
    // BitLocker does not come from the registry and is still decided.
    assert_eq!(control(&inv, "rest_encryption")["state"], "encrypted");
}

#[test]
fn half_a_utf16_export_is_an_error_not_a_panic() {
    let original = std::fs::read(fixture("rdp-nla-off").join("registry/system.reg")).unwrap();
    let tmp = broken_copy(
        "rdp-nla-off",
        "registry/system.reg",
        &original[..=(original.len() / 2)],
    );
    let inv = inventory(&tmp.path().join("host"));
    let errors = inv["errors"].as_array().unwrap();
    assert!(
        errors.iter().any(|e| e["source"] == "/registry/system.reg"),
        "{errors:#?}"
    );
    assert_eq!(control(&inv, "mfa")["state"], "unknown");
}

#[test]
fn wrong_value_type_names_key_value_and_file() {
    let text = "Windows Registry Editor Version 5.00\r\n\r\n\
[HKEY_LOCAL_MACHINE\\SOFTWARE\\Policies\\Microsoft\\Windows NT\\Terminal Services]\r\n\
\"fDenyTSConnections\"=\"0\"\r\n";
    let tmp = broken_copy("rdp-nla-off", "registry/policy.reg", text.as_bytes());
    let inv = inventory(&tmp.path().join("host"));
    let expected = "HKLM\\SOFTWARE\\Policies\\Microsoft\\Windows NT\\Terminal Services\\fDenyTSConnections in /registry/policy.reg is REG_SZ, expected REG_DWORD";
    for name in ["mfa", "transit_encryption"] {
        let c = control(&inv, name);
        assert_eq!(c["state"], "unknown", "{c:#}");
        assert!(c["reason"].as_str().unwrap().contains(expected), "{c:#}");
    }
}

/// A Group Policy rule admitting the Task Scheduler's RPC endpoint from other hosts makes the
/// svchost dynamic ports exposed again, and offline nothing probes them.
#[test]
fn a_policy_rule_admitting_rpc_leaves_transit_undecided() {
    let text = "Windows Registry Editor Version 5.00\r\n\r\n\
[HKEY_LOCAL_MACHINE\\SOFTWARE\\Policies\\Microsoft\\WindowsFirewall\\FirewallRules]\r\n\
\"RemoteTask-In-TCP\"=\"v2.33|Action=Allow|Active=TRUE|Dir=In|Protocol=6|LPort=RPC|\
App=%SystemRoot%\\\\system32\\\\svchost.exe|Svc=schedule|Name=Remote tasks|\"\r\n";
    let tmp = broken_copy("rdp-nla-off", "registry/policy.reg", text.as_bytes());
    let inv = inventory(&tmp.path().join("host"));
    assert_control(
        &inv,
        "transit_encryption",
        "unknown",
        "exposed service(s) not decided: tcp 0.0.0.0:49666 svchost (not probed), tcp \
         0.0.0.0:49667 svchost (not probed)",
        &[],
    );
    let reason = control(&inv, "transit_encryption")["reason"]
        .as_str()
        .unwrap();
    // The endpoint mapper and the other programs' ports stay closed.
    assert!(
        !reason.contains("0.0.0.0:135 svchost (not probed)"),
        "{reason}"
    );
    assert!(!reason.contains("lsass (not probed)"), "{reason}");
    let tasks = assert_firewall(
        &inv,
        "tcp 0.0.0.0:49667 svchost",
        true,
        "Domain: allowed by RemoteTask-In-TCP",
    );
    assert!(
        tasks["evidence"].as_array().unwrap().iter().any(|e| e["source"]
            == "HKLM\\SOFTWARE\\Policies\\Microsoft\\WindowsFirewall\\FirewallRules\\RemoteTask-In-TCP"
            && e["detail"].as_str().unwrap().ends_with("in /registry/policy.reg")),
        "{tasks:#}"
    );
}

/// The firewall off in one profile by Group Policy exposes every socket again.
#[test]
fn a_profile_turned_off_by_policy_exposes_every_socket() {
    let text = "Windows Registry Editor Version 5.00\r\n\r\n\
[HKEY_LOCAL_MACHINE\\SOFTWARE\\Policies\\Microsoft\\WindowsFirewall\\PrivateProfile]\r\n\
\"EnableFirewall\"=dword:00000000\r\n";
    let tmp = broken_copy("rdp-nla-off", "registry/policy.reg", text.as_bytes());
    let inv = inventory(&tmp.path().join("host"));
    assert_control(
        &inv,
        "transit_encryption",
        "unknown",
        "tcp 0.0.0.0:135 svchost (not probed)",
        &[],
    );
    assert_firewall(
        &inv,
        "tcp 0.0.0.0:135 svchost",
        true,
        "Private: firewall off",
    );
}

/// The `windows_firewall` observation of `socket`: admitted or not, with `why` in its reason.
fn assert_firewall<'a>(inv: &'a Value, socket: &str, admitted: bool, why: &str) -> &'a Value {
    let judged = observation(inv, "windows_firewall", socket);
    assert_eq!(judged["value"]["admitted"], admitted, "{judged:#}");
    assert!(
        judged["value"]["why"].as_str().unwrap().contains(why),
        "{judged:#}"
    );
    judged
}

/// Hosts without a recorded listener table say so in the transit reason.
#[test]
fn hosts_without_recorded_listeners_name_the_missing_table() {
    let tmp = copy_without("admins-dormant", "recorded/listeners.json");
    let inv = inventory(&tmp.path().join("host"));
    assert_control(
        &inv,
        "transit_encryption",
        "unknown",
        "other listening sockets are not known: no recorded listener table (/recorded/listeners.json",
        &[],
    );
    assert!(
        inv["observations"]
            .as_array()
            .unwrap()
            .iter()
            .all(|o| o["category"] != "listener")
    );
}

#[test]
fn malformed_listener_recordings_are_unknown_and_named() {
    for (content, field) in [
        (&b"\xef\xbb\xbf{\"Tcp\":  [{\"LocalAddress\":  \"0.0.0.0\""[..], "(document)"),
        (
            &b"{\"Tcp\":[{\"LocalAddress\":\"0.0.0.0\",\"LocalPort\":\"3389\",\"OwningProcess\":4}],\"Udp\":[]}"[..],
            "Tcp[0].LocalPort",
        ),
        (&b"{\"Tcp\":[],\"Udp\":7}"[..], "Udp"),
    ] {
        let tmp = broken_copy("rdp-nla-off", "recorded/listeners.json", content);
        let inv = inventory(&tmp.path().join("host"));
        let c = control(&inv, "transit_encryption");
        assert_eq!(c["state"], "unknown", "{c:#}");
        let prefix = format!("/recorded/listeners.json: {field}: ");
        assert!(
            c["reason"].as_str().unwrap().contains(&prefix),
            "{prefix}: {c:#}"
        );
        assert!(
            inv["errors"].as_array().unwrap().iter().any(|e| {
                e["source"] == "/recorded/listeners.json"
                    && e["error"].as_str().unwrap().starts_with(&prefix)
            }),
            "{:#}",
            inv["errors"]
        );
        // The other controls are unaffected.
        assert_eq!(control(&inv, "mfa")["state"], "absent");
    }
}

#[test]
fn malformed_bitlocker_recording_is_unknown_and_named() {
    let tmp = broken_copy(
        "duo-enforced",
        "recorded/Win32_EncryptableVolume.json",
        b"[{\"ProtectionStatus\":1",
    );
    let inv = inventory(&tmp.path().join("host"));
    let c = control(&inv, "rest_encryption");
    assert_eq!(c["state"], "unknown");
    assert!(
        c["reason"]
            .as_str()
            .unwrap()
            .starts_with("/recorded/Win32_EncryptableVolume.json: "),
        "{c:#}"
    );
    assert_eq!(control(&inv, "mfa")["state"], "enforced");
}

/// When the fixtures' account recordings were taken (make.py `REFERENCE`): last logons are
/// stated relative to it, so the test needs no clock.
const REFERENCE: &str = "2026-06-01T09:00:00Z";

/// The administrators' last logons as the control states them (probe `last-login`), in the
/// order given, as days before [`REFERENCE`] (`None`: never logged in).
fn last_logins(inv: &Value) -> Vec<(String, Option<i64>)> {
    let rfc3339 = &time::format_description::well_known::Rfc3339;
    let reference = time::OffsetDateTime::parse(REFERENCE, rfc3339).unwrap();
    control(inv, "privileged_access")["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["probe"] == "last-login")
        .map(|e| {
            let detail = e["detail"].as_str().unwrap();
            let (name, rest) = detail.rsplit_once(": ").unwrap();
            let days = rest.strip_prefix("last login ").map(|at| {
                (reference - time::OffsetDateTime::parse(at, rfc3339).unwrap()).whole_days()
            });
            if days.is_none() {
                assert_eq!(rest, "never logged in", "{detail}");
            }
            (name.to_string(), days)
        })
        .collect()
}

fn observation<'a>(inv: &'a Value, category: &str, name: &str) -> &'a Value {
    inv["observations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["category"] == category && o["name"] == name)
        .unwrap_or_else(|| panic!("no {category}/{name}"))
}

#[test]
fn administrators_with_passwords_are_restricted_and_carry_their_last_logons() {
    let inv = inventory(&fixture("admins-dormant"));
    assert!(
        inv["errors"].as_array().unwrap().is_empty(),
        "{:#}",
        inv["errors"]
    );
    assert_control(
        &inv,
        "privileged_access",
        "restricted",
        "every enabled local account in Administrators needs a password",
        &[(
            "/recorded/local-accounts.json",
            "KOMMUN\\Domain Admins (S-1-5-21-1004336348-1177238915-682003330-512, ActiveDirectory Group): a domain principal in Administrators; its last logon is not known to this host",
        )],
    );
    // Enabled administrators only (gammal.admin is disabled), lena.admin dormant 200 days.
    assert_eq!(
        last_logins(&inv),
        [
            ("Administrator".to_string(), Some(3)),
            ("lena.admin".to_string(), Some(200)),
        ]
    );
    let c = control(&inv, "privileged_access");
    assert!(
        c["evidence"].as_array().unwrap().iter().any(|e| e["detail"]
            == "lena.admin: last login 2025-11-13T09:00:00Z"
            && e["source"] == "/recorded/local-accounts.json"),
        "{c:#}"
    );
    let lena = observation(&inv, "account", "lena.admin");
    assert_eq!(lena["value"]["admin"], true);
    assert_eq!(
        lena["value"]["admin_via"],
        serde_json::json!(["Administrators"])
    );
    assert_eq!(lena["value"]["last_login"], "2025-11-13T09:00:00Z");
    assert_eq!(
        observation(&inv, "account", "gammal.admin")["value"]["last_login"],
        "never"
    );
    assert_eq!(
        observation(&inv, "account", "svc-backup")["value"]["admin"],
        false
    );
    assert_eq!(
        observation(&inv, "hardening", "guest_account")["value"],
        serde_json::json!({"name": "Guest", "enabled": false})
    );
    assert_eq!(
        observation(&inv, "admin_group", "Administrators")["value"]["members"],
        serde_json::json!([
            "Administrator",
            "lena.admin",
            "gammal.admin",
            "KOMMUN\\Domain Admins"
        ])
    );
}

#[test]
fn passwordless_administrator_and_remote_desktop_guest_are_exposed() {
    let inv = inventory(&fixture("admins-exposed"));
    assert!(
        inv["errors"].as_array().unwrap().is_empty(),
        "{:#}",
        inv["errors"]
    );
    assert_control(
        &inv,
        "privileged_access",
        "exposed",
        "administrator Administratör is enabled and needs no password (PasswordRequired false); the Guest account Gäst is enabled and a member of Fjärrskrivbordsanvändare",
        &[
            (
                "/recorded/local-accounts.json",
                "user Administratör S-1-5-21-3623811015-3361044348-30300820-500: enabled, in Administratörer, password not required",
            ),
            (
                "/recorded/local-accounts.json",
                "user Gäst S-1-5-21-3623811015-3361044348-30300820-501: enabled, in Fjärrskrivbordsanvändare",
            ),
        ],
    );
    let reason = control(&inv, "privileged_access")["reason"]
        .as_str()
        .unwrap();
    assert!(
        !reason.contains("kiosk"),
        "kiosk is no administrator: {reason}"
    );
    // PowerShell 7's local time with offset, in UTC.
    assert_eq!(
        last_logins(&inv),
        [
            ("Administratör".to_string(), Some(12)),
            ("drift".to_string(), None),
        ]
    );
    assert_eq!(
        observation(&inv, "hardening", "guest_account")["value"]["enabled"],
        true
    );
    assert_eq!(
        observation(&inv, "account", "Gäst")["value"]["remote_desktop"],
        true
    );
    assert_eq!(
        observation(&inv, "remote_desktop_group", "Fjärrskrivbordsanvändare")["value"]["members"],
        serde_json::json!(["Gäst", "KOMMUN\\IT-support"])
    );
}

#[test]
fn hosts_without_recorded_accounts_leave_privileged_access_unknown() {
    let tmp = copy_without("server2022-default", "recorded/local-accounts.json");
    let inv = inventory(&tmp.path().join("host"));
    assert_control(
        &inv,
        "privileged_access",
        "unknown",
        "no recorded local accounts (/recorded/local-accounts.json",
        &[],
    );
}

#[test]
fn malformed_account_recordings_are_unknown_and_named() {
    let original =
        std::fs::read(fixture("admins-exposed").join("recorded/local-accounts.json")).unwrap();
    let text = String::from_utf8(original).unwrap();
    let cases = [
        (text[..text.len() / 2].to_string(), "(document)"),
        (
            text.replacen("\"Enabled\": true", "\"Enabled\": \"True\"", 1),
            "Users[0].Enabled",
        ),
        (
            // A member with no SID.
            text.replacen(
                "\"Value\": \"S-1-5-21-3623811015-3361044348-30300820-500\"\n        },",
                "\"Value\": null\n        },",
                1,
            ),
            "Administrators.Members[0].SID",
        ),
    ];
    for (content, field) in cases {
        let tmp = broken_copy(
            "admins-exposed",
            "recorded/local-accounts.json",
            content.as_bytes(),
        );
        let inv = inventory(&tmp.path().join("host"));
        let c = control(&inv, "privileged_access");
        assert_eq!(c["state"], "unknown", "{c:#}");
        let reason = c["reason"].as_str().unwrap();
        assert!(
            reason.contains("/recorded/local-accounts.json: ") && reason.contains(field),
            "{field}: {reason}"
        );
        assert!(
            inv["errors"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["source"] == "/recorded/local-accounts.json"),
            "{:#}",
            inv["errors"]
        );
        // The other controls do not depend on it.
        assert_eq!(control(&inv, "rest_encryption")["state"], "encrypted");
    }
}

fn observations<'a>(inv: &'a Value, category: &str) -> Vec<&'a Value> {
    inv["observations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["category"] == category)
        .collect()
}

#[test]
fn recorded_wmi_hotfixes_last_boot_features_and_defender_powershell_5() {
    let inv = inventory(&fixture("server2022-default"));
    let hotfixes: Vec<&Value> = observations(&inv, "package")
        .into_iter()
        .filter(|o| o["value"]["manager"] == "windows-hotfix")
        .collect();
    assert_eq!(hotfixes.len(), 3, "{hotfixes:#?}");
    let kb = observation(&inv, "package", "KB5034129");
    assert_eq!(kb["value"]["description"], "Security Update");
    assert_eq!(kb["value"]["installed_on"], "2024-01-10");
    let evidence = &kb["evidence"][0];
    assert_eq!(
        evidence["source"],
        "/recorded/Win32_QuickFixEngineering.json"
    );
    assert_eq!(
        evidence["detail"],
        "Win32_QuickFixEngineering.HotFixID KB5034129"
    );
    assert_eq!(evidence["probe"], "windows_wmi");

    let boot = observation(&inv, "windows_host", "last_boot");
    assert_eq!(boot["value"]["last_boot_up_time"], "2024-01-10T08:00:00Z");
    assert_eq!(boot["value"]["boot_time_unix"], 1_704_873_600);
    assert_eq!(inv["host"]["boot_time_unix"], 1_704_873_600);
    assert!(
        boot["evidence"][0]["detail"]
            .as_str()
            .unwrap()
            .starts_with("Win32_OperatingSystem.LastBootUpTime /Date(1704873600000)/"),
        "{boot:#}"
    );

    let features = observations(&inv, "windows_feature");
    assert_eq!(features.len(), 10);
    let storage = observation(&inv, "windows_feature", "Storage Services");
    assert_eq!(storage["value"]["class"], "Win32_ServerFeature");
    assert_eq!(storage["value"]["parent_id"], 481);

    let defender = observation(&inv, "hardening", "defender_status");
    assert_eq!(defender["value"]["real_time_protection_enabled"], true);
    assert_eq!(defender["value"]["antivirus_signature_age_days"], 1);
    assert_eq!(
        defender["value"]["antivirus_signature_last_updated"],
        "2024-01-11T04:12:00Z"
    );
    assert_eq!(
        defender["evidence"][0]["detail"],
        "MSFT_MpComputerStatus.RealTimeProtectionEnabled true"
    );
}

#[test]
fn recorded_wmi_in_powershell_7_form_and_optional_features() {
    let inv = inventory(&fixture("rdp-nla-off"));
    assert_eq!(
        observation(&inv, "package", "KB5033914")["value"]["installed_on"],
        "2023-12-13"
    );
    let boot = observation(&inv, "windows_host", "last_boot");
    assert_eq!(boot["value"]["last_boot_up_time"], "2024-01-11T08:30:00.5Z");
    let defender = observation(&inv, "hardening", "defender_status");
    assert_eq!(defender["value"]["real_time_protection_enabled"], false);
    assert_eq!(defender["value"]["antivirus_signature_age_days"], 12);
    // No features recorded here: none reported, and no error for what was not recorded.
    assert!(observations(&inv, "windows_feature").is_empty());
    assert!(
        !inv["errors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["collector"] == "windows_wmi"),
        "{:#}",
        inv["errors"]
    );

    let duo = inventory(&fixture("duo-enforced"));
    let telnet = observation(&duo, "windows_feature", "TelnetClient");
    assert_eq!(telnet["value"]["class"], "Win32_OptionalFeature");
    assert_eq!(
        telnet["evidence"][0]["detail"],
        "Win32_OptionalFeature.InstallState TelnetClient = 1"
    );
    assert!(
        observations(&duo, "package")
            .iter()
            .all(|o| o["value"]["manager"] != "windows-hotfix")
    );
}

#[test]
fn malformed_wmi_recordings_are_errors_naming_the_file_others_still_read() {
    let tmp = broken_copy(
        "server2022-default",
        "recorded/Win32_QuickFixEngineering.json",
        b"[{\"HotFixID\":\"KB1\"},",
    );
    let root = tmp.path().join("host");
    std::fs::write(
        root.join("recorded/Win32_OperatingSystem.json"),
        br#"{"LastBootUpTime":"soon"}"#,
    )
    .unwrap();
    let inv = inventory(&root);
    let errors: Vec<&Value> = inv["errors"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["collector"] == "windows_wmi")
        .collect();
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert_eq!(
        errors[0]["source"],
        "/recorded/Win32_QuickFixEngineering.json"
    );
    assert_eq!(errors[1]["source"], "/recorded/Win32_OperatingSystem.json");
    assert!(
        errors[1]["error"]
            .as_str()
            .unwrap()
            .contains("LastBootUpTime \"soon\" is not a date"),
        "{errors:#?}"
    );
    // The other classes are still read.
    observation(&inv, "hardening", "defender_status");
    assert_eq!(observations(&inv, "windows_feature").len(), 10);
}

#[test]
fn recorded_audit_policy_is_observed_and_weighs_log_protection() {
    let inv = inventory(&fixture("server2022-default"));
    let policy = observations(&inv, "audit_policy");
    assert_eq!(policy.len(), 9);
    let logon = observation(
        &inv,
        "audit_policy",
        "{0CCE9215-69AE-11D9-BED3-505054503030}",
    );
    assert_eq!(logon["value"]["subcategory"], "Logon");
    assert_eq!(logon["value"]["setting"], "success_and_failure");
    assert_eq!(logon["evidence"][0]["source"], "/recorded/auditpol.csv");
    assert_eq!(logon["evidence"][0]["line"], 4);
    assert_control(
        &inv,
        "log_protection",
        "local_only",
        "Logon is audited as success_and_failure",
        &[("/recorded/auditpol.csv", "Logon: Success and Failure")],
    );

    let silent = inventory(&fixture("smb1-enabled"));
    assert_control(
        &silent,
        "log_protection",
        "none",
        "audits no subcategory",
        &[("SubscriptionManager", "absent")],
    );
    // Not recorded: the default is assumed, and said to be.
    assert_control(
        &inventory(&fixture("duo-enforced")),
        "log_protection",
        "local_only",
        "the audit policy was not recorded; Windows audits logons by default",
        &[],
    );
}

#[test]
fn malformed_audit_recording_is_an_error_naming_file_and_line() {
    let tmp = broken_copy(
        "smb1-enabled",
        "recorded/auditpol.csv",
        b"Machine Name,Policy Target,Subcategory,Subcategory GUID,Inclusion Setting,Exclusion Setting\nSRV,System,Logon,{0CCE9215-69AE-11D9-BED3-505054503030},Erfolg,\n",
    );
    let inv = inventory(&tmp.path().join("host"));
    let error = inv["errors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["collector"] == "windows_audit")
        .expect("an audit error");
    assert_eq!(error["source"], "/recorded/auditpol.csv");
    assert!(
        error["error"]
            .as_str()
            .unwrap()
            .contains("line 2: Inclusion Setting \"Erfolg\""),
        "{error:#}"
    );
    assert_control(
        &inv,
        "log_protection",
        "local_only",
        "could not be read",
        &[],
    );
    assert!(observations(&inv, "audit_policy").is_empty());
}

#[test]
fn rd_gateway_with_the_nps_mfa_extension_is_observed_not_counted_for_direct_rdp() {
    let inv = inventory(&fixture("rdp-nla-no-mfa"));
    let role = observation(&inv, "rd_gateway", "gateway_role");
    assert_eq!(role["value"]["start"], "automatic");
    assert!(
        role["evidence"][0]["source"]
            .as_str()
            .unwrap()
            .ends_with("Services\\TSGateway\\Start")
    );
    let nps = observation(&inv, "rd_gateway", "nps_azure_mfa_extension");
    assert_eq!(nps["value"]["loaded_by_nps"], true);
    assert_eq!(
        nps["value"]["registered_in"],
        serde_json::json!(["ExtensionDLLs", "AuthorizationDLLs"])
    );
    assert_eq!(nps["value"]["unregistered_users_pass_with_password"], true);
    assert!(nps["evidence"].as_array().unwrap().iter().any(|e| {
        e["source"]
            .as_str()
            .unwrap()
            .ends_with("AuthSrv\\Parameters\\ExtensionDLLs")
    }));
    // The extension guards RADIUS (gateway) logons, not RDP straight to this host.
    assert_eq!(control(&inv, "mfa")["state"], "absent");
    assert!(
        inventory(&fixture("server2022-default"))["observations"]
            .as_array()
            .unwrap()
            .iter()
            .all(|o| o["category"] != "rd_gateway")
    );
}
