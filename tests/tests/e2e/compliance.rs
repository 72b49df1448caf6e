//! The system register, linking, rules and the findings lifecycle, end to end with real
//! processes and the agent's real fixture inventories.

use crate::harness::{Collector, auth_fixture, ok, run};

const WARD4_REGISTER: &str = "\
systems:
  - id: journal
    name: Patientjournal
    system_owner: { name: Anna Svensson, email: anna.svensson@kommun.example }
    classification: { k: 3, r: 3, t: 2, classified_at: 2026-06-01, classified_by: CISO }
    links: { labels: { site: ward4 } }
  - id: wiki
    name: Intranät
    classification: { k: 1, r: 1, t: 1, classified_at: 2026-06-01 }
    system_owner: karin@kommun.example
    links: { hostnames: ['intranet-*'] }
";

fn by_rule<'a>(findings: &'a [serde_json::Value], rule: &str) -> Vec<&'a serde_json::Value> {
    findings.iter().filter(|f| f["rule"] == rule).collect()
}

#[test]
fn changing_the_sshd_config_resolves_the_k3_auth_finding_on_the_next_report() {
    let collector = Collector::start();
    let agent = collector.enroll_with(&["--label", "site=ward4"]);
    let out = collector.import("register.yaml", WARD4_REGISTER);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A Match block re-enables passwords: MFA absent, the K3 system has a k3-auth finding.
    assert!(
        agent
            .run_once(Some(&auth_fixture("match-password")))
            .status
            .success()
    );
    let findings = collector.findings(&[]);
    let k3 = by_rule(&findings, "k3-auth");
    assert_eq!(k3.len(), 1, "{findings:#?}");
    let finding = k3[0];
    assert_eq!(finding["state"], "open");
    assert_eq!(finding["system_id"], "journal");
    assert_eq!(finding["owner"], "anna.svensson@kommun.example");
    assert!(finding["severity"] == "high" || finding["severity"] == "critical");
    let evidence = finding["evidence"].to_string();
    assert!(
        evidence.contains("Match"),
        "the evidence must name the Match block: {evidence}"
    );
    let id = finding["id"].as_str().unwrap().to_string();

    // The owner's view contains it; another owner's does not.
    assert_eq!(
        by_rule(
            &collector.findings(&["--owner", "anna.svensson@kommun.example"]),
            "k3-auth"
        )
        .len(),
        1
    );
    assert!(
        by_rule(
            &collector.findings(&["--owner", "karin@kommun.example"]),
            "k3-auth"
        )
        .is_empty()
    );

    // Key + TOTP on every path: the next report resolves it.
    assert!(
        agent
            .run_once(Some(&auth_fixture("totp-kbd")))
            .status
            .success()
    );
    let findings = collector.findings(&[]);
    assert!(by_rule(&findings, "k3-auth").is_empty(), "{findings:#?}");
    let all = collector.findings(&["--all"]);
    let resolved: Vec<_> = all.iter().filter(|f| f["id"] == id.as_str()).collect();
    assert_eq!(resolved[0]["state"], "resolved");
    let history = ok(
        "tillsyn-collector",
        &["--dir", collector.path(), "finding", "history", &id],
    );
    assert!(
        history.contains("open") && history.contains("resolved"),
        "{history}"
    );
}

#[test]
fn unlinked_hosts_are_unowned_and_accepted_risks_stay_accepted() {
    let collector = Collector::start();
    let agent = collector.enroll();
    assert!(
        collector
            .import("register.yaml", WARD4_REGISTER)
            .status
            .success()
    );
    assert!(
        agent
            .run_once(Some(&auth_fixture("password-only")))
            .status
            .success()
    );
    let findings = collector.findings(&[]);
    let unowned = by_rule(&findings, "unowned-asset");
    assert_eq!(unowned.len(), 1);
    assert!(unowned[0]["system_id"].is_null());
    assert!(!unowned[0]["asset"].as_str().unwrap().is_empty());
    let id = unowned[0]["id"].as_str().unwrap();

    let out = ok(
        "tillsyn-collector",
        &[
            "--dir",
            collector.path(),
            "finding",
            "accept",
            id,
            "--by",
            "Anna Svensson",
            "--reason",
            "Lab machine, retired in Q1",
            "--until",
            "2099-12-31",
        ],
    );
    assert!(out.contains("accepted"), "{out}");
    let findings = collector.findings(&[]);
    let accepted = by_rule(&findings, "unowned-asset");
    assert_eq!(accepted[0]["state"], "accepted");
    assert_eq!(accepted[0]["accepted_by"], "Anna Svensson");

    let past = run(
        "tillsyn-collector",
        &[
            "--dir",
            collector.path(),
            "finding",
            "accept",
            id,
            "--by",
            "x",
            "--reason",
            "y",
            "--until",
            "2001-01-01",
        ],
    );
    assert!(!past.status.success());
}

#[test]
fn a_bad_register_imports_nothing_and_keeps_the_previous_one() {
    let collector = Collector::start();
    let out = collector.import("good.yaml", WARD4_REGISTER);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let before = ok(
        "tillsyn-collector",
        &["--dir", collector.path(), "systems", "--format", "json"],
    );

    let bad = "system_id;name;k;r;t;classified_at;cidrs\n\
new;New;2;2;2;2026-01-01;10.0.0.0/8\n\
broken;Broken;7;1;1;2026-01-01;\n\
dated;Dated;1;1;1;01/02/2026;\n\
net;Net;1;1;1;2026-01-01;10.0.0.300/24\n\
new;Duplicate;1;1;1;2026-01-01;\n";
    let out = collector.import("bad.csv", bad);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    for expected in [
        "line 3: k:",
        "line 4: classified_at:",
        "line 5: cidrs:",
        "line 6: system_id: duplicate",
        "nothing imported",
    ] {
        assert!(
            stderr.contains(expected),
            "missing {expected:?} in {stderr}"
        );
    }
    let after = ok(
        "tillsyn-collector",
        &["--dir", collector.path(), "systems", "--format", "json"],
    );
    assert_eq!(before, after, "a refused import changed the register");
}

#[test]
fn findings_are_available_as_csv_and_the_report_as_html_and_json() {
    let collector = Collector::start();
    let agent = collector.enroll_with(&["--label", "site=ward4"]);
    assert!(
        collector
            .import("register.yaml", WARD4_REGISTER)
            .status
            .success()
    );
    assert!(
        agent
            .run_once(Some(&auth_fixture("password-only")))
            .status
            .success()
    );
    let csv = ok(
        "tillsyn-collector",
        &["--dir", collector.path(), "findings", "--format", "csv"],
    );
    assert!(csv.starts_with("id,rule,severity,state,system_id"), "{csv}");
    assert!(csv.contains("k3-auth"), "{csv}");

    let json = ok(
        "tillsyn-collector",
        &["--dir", collector.path(), "report", "--format", "json"],
    );
    let figures: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(figures["systems"], 2);
    assert_eq!(figures["systems_by_k"]["K3"], 1);
    let k3 = figures["compliance"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["rule"] == "k3-auth")
        .unwrap();
    assert_eq!(k3["applicable"], 1);
    assert_eq!(k3["compliant"], 0);
    assert!(figures["trend"].is_null());

    let html = ok(
        "tillsyn-collector",
        &["--dir", collector.path(), "report", "--lang", "en"],
    );
    assert!(
        html.starts_with("<!doctype html>") && html.contains("<svg"),
        "not a self-contained page"
    );
    assert!(!html.contains("<script"), "the page must not need scripts");
    assert!(
        html.contains("The last 12 months") && html.contains("Since "),
        "second report shows a trend"
    );
}
