//! The collector judges itself: an agent enrolled with `--label tillsyn=collector` puts its
//! host in the built-in `tillsyn` system (K3/R3/T3, the coordinator as owner), and the K3 rules
//! apply to it; a `tillsyn` row in the register overrides the built-in.

use std::path::Path;

use crate::harness::{Collector, ok};

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../agent/tests/fixtures/auth")
        .join(name)
}

fn systems(collector: &Collector) -> Vec<serde_json::Value> {
    let out = ok(
        "tillsyn-collector",
        &["--dir", collector.path(), "systems", "--format", "json"],
    );
    serde_json::from_str(&out).unwrap()
}

#[test]
fn the_collectors_own_host_is_judged_as_k3_and_the_register_can_override_it() {
    let collector = Collector::start();
    assert!(
        systems(&collector).is_empty(),
        "no collector host yet: no built-in system"
    );
    let agent = collector.enroll_with(&["--label", "tillsyn=collector"]);
    let out = agent.run_once(Some(&fixture("password-only")));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let listed = systems(&collector);
    let tillsyn = listed
        .iter()
        .find(|s| s["id"] == "tillsyn")
        .unwrap_or_else(|| panic!("{listed:#?}"));
    assert_eq!(tillsyn["classification"]["k"], 3);
    assert_eq!(tillsyn["classification"]["r"], 3);
    assert_eq!(tillsyn["classification"]["t"], 3);
    assert_eq!(tillsyn["system_owner"]["name"], "coordinator");
    assert_eq!(tillsyn["assets"], 1);
    let findings = collector.findings(&["--system", "tillsyn"]);
    let k3 = findings
        .iter()
        .find(|f| f["rule"] == "k3-auth")
        .unwrap_or_else(|| panic!("{findings:#?}"));
    assert_eq!(k3["owner"], "coordinator");
    let asset = &collector.assets()[0];
    assert!(asset["link_conflict"].is_null(), "{asset:#}");

    // The register's own `tillsyn` row wins: here the coordinator recorded K1.
    let out = collector.import(
        "register.yaml",
        "systems:\n  - id: tillsyn\n    name: Tillsyn\n    system_owner: { name: Eva Ek, email: eva.ek@kommun.example }\n    classification: { k: 1, r: 1, t: 1, classified_at: 2026-06-01 }\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed = systems(&collector);
    assert_eq!(listed.len(), 1, "{listed:#?}");
    assert_eq!(listed[0]["classification"]["k"], 1);
    assert_eq!(
        listed[0]["assets"], 1,
        "the label still links the collector's host"
    );
    let findings = collector.findings(&["--system", "tillsyn"]);
    assert!(
        findings.iter().all(|f| f["rule"] != "k3-auth"),
        "{findings:#?}"
    );
}
