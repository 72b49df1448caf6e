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
}
