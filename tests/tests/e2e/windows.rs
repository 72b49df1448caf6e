//! Windows hosts through the unchanged rules: agents run with `--root` on the offline Windows
//! fixture hosts (registry exports and recorded BitLocker output, `agent/tests/fixtures/windows`)
//! and report to a real collector, whose `k3-auth` and `k23-rest` rules judge their controls
//! exactly as they judge Linux hosts.

use std::path::{Path, PathBuf};

use crate::harness::Collector;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../agent/tests/fixtures/windows")
        .join(name)
}

const REGISTER: &str = "\
systems:
  - id: ekonomi
    name: Ekonomisystem
    system_owner: { name: Per Olsson, email: per.olsson@kommun.example }
    classification: { k: 3, r: 2, t: 2, classified_at: 2026-06-01, classified_by: CISO }
    links: { labels: { site: win-rdp } }
  - id: omsorg
    name: Verksamhetssystem omsorg
    system_owner: { name: Lena Berg, email: lena.berg@kommun.example }
    classification: { k: 3, r: 3, t: 2, classified_at: 2026-06-01, classified_by: CISO }
    links: { labels: { site: win-duo } }
";

fn for_system<'a>(
    findings: &'a [serde_json::Value],
    rule: &str,
    system: &str,
) -> Vec<&'a serde_json::Value> {
    findings
        .iter()
        .filter(|f| f["rule"] == rule && f["system_id"] == system)
        .collect()
}

#[test]
fn rdp_with_a_password_alone_is_k3_auth_and_duo_with_bitlocker_is_not() {
    let collector = Collector::start();
    let rdp = collector.enroll_with(&["--label", "site=win-rdp"]);
    let duo = collector.enroll_with(&["--label", "site=win-duo"]);
    let out = collector.import("register.yaml", REGISTER);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let run = rdp.run_once(Some(&fixture("rdp-nla-no-mfa")));
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let run = duo.run_once(Some(&fixture("duo-enforced")));
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );

    let findings = collector.findings(&[]);
    let k3 = for_system(&findings, "k3-auth", "ekonomi");
    assert_eq!(k3.len(), 1, "{findings:#?}");
    let evidence = k3[0]["evidence"].to_string();
    for value in [
        "Terminal Server\\\\fDenyTSConnections",
        "WinStations\\\\RDP-Tcp\\\\UserAuthentication",
    ] {
        assert!(
            evidence.contains(value),
            "evidence must name {value}: {evidence}"
        );
    }
    // The suspended BitLocker volume of the RDP host is not encrypted.
    assert_eq!(
        for_system(&findings, "k23-rest", "ekonomi").len(),
        1,
        "{findings:#?}"
    );

    // Duo fail-closed on RDP, key + password on OpenSSH, BitLocker protected.
    assert!(
        for_system(&findings, "k3-auth", "omsorg").is_empty(),
        "{findings:#?}"
    );
    assert!(
        for_system(&findings, "k23-rest", "omsorg").is_empty(),
        "{findings:#?}"
    );
    // RDP over TLS 1.2+, SMB 3 encryption, SSH; RPC's ports closed by the firewall.
    assert!(
        for_system(&findings, "k23-transit", "omsorg").is_empty(),
        "{findings:#?}"
    );

    // The stored Windows host carries the same controls as a Linux one.
    let assets = collector.assets();
    let host = assets
        .iter()
        .find(|a| a["hostname"] == "srv-duo")
        .unwrap_or_else(|| panic!("no srv-duo among {assets:#?}"));
    assert_eq!(host["facts"]["os_name"], "Windows");
    let states: Vec<(String, String)> = host["controls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().into(),
                c["state"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert!(
        states.contains(&("mfa".into(), "enforced".into())),
        "{states:?}"
    );
    assert!(
        states.contains(&("rest_encryption".into(), "encrypted".into())),
        "{states:?}"
    );
    assert!(
        states.contains(&("transit_encryption".into(), "encrypted".into())),
        "{states:?}"
    );
}

const ACCOUNTS_REGISTER: &str = "\
systems:
  - id: lon
    name: Lönesystem
    system_owner: { name: Per Olsson, email: per.olsson@kommun.example }
    classification: { k: 3, r: 2, t: 2, classified_at: 2026-06-01, classified_by: CISO }
    links: { labels: { site: win-dormant } }
  - id: bibliotek
    name: Bibliotekssystem
    system_owner: { name: Lena Berg, email: lena.berg@kommun.example }
    classification: { k: 2, r: 2, t: 2, classified_at: 2026-06-01, classified_by: CISO }
    links: { labels: { site: win-gast } }
";

/// Windows local accounts through the unchanged `k23-privileged` rule: the recorded
/// administrators' last logons (months before today, whatever today is: the recording's
/// reference time is 2026-06-01) make them dormant, the domain group in Administrators is
/// never named dormant, and the exposed host's reason reaches the finding.
#[test]
fn windows_administrators_are_judged_by_k23_privileged_like_linux_ones() {
    let collector = Collector::start();
    let dormant = collector.enroll_with(&["--label", "site=win-dormant"]);
    let gast = collector.enroll_with(&["--label", "site=win-gast"]);
    let out = collector.import("register.yaml", ACCOUNTS_REGISTER);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (agent, host) in [(&dormant, "admins-dormant"), (&gast, "admins-exposed")] {
        let run = agent.run_once(Some(&fixture(host)));
        assert!(
            run.status.success(),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
    }
    let findings = collector.findings(&[]);

    let lon = for_system(&findings, "k23-privileged", "lon");
    assert_eq!(lon.len(), 1, "{findings:#?}");
    let message = lon[0]["message"].as_str().unwrap();
    assert!(
        message.contains("lena.admin (2025-11-13)") && message.contains("Administrator ("),
        "{message}"
    );
    assert!(
        !message.contains("Domain Admins") && !message.contains("gammal.admin"),
        "a domain group or a disabled account is not a dormant administrator: {message}"
    );
    let evidence = lon[0]["evidence"].to_string();
    assert!(
        evidence.contains("lena.admin: last login 2025-11-13T09:00:00Z"),
        "{evidence}"
    );

    let bibliotek = for_system(&findings, "k23-privileged", "bibliotek");
    assert_eq!(bibliotek.len(), 1, "{findings:#?}");
    let message = bibliotek[0]["message"].as_str().unwrap();
    assert!(
        message.contains("administrator Administratör is enabled and needs no password")
            && message.contains("Gäst is enabled and a member of Fjärrskrivbordsanvändare")
            && message.contains("never logged in: drift"),
        "{message}"
    );
}
