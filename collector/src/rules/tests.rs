//! Rule tests as tables: each rule with passing and failing inventories.

use super::*;
use crate::catalog::{Attestation, Classification, LinkRules, Person};
use crate::linking::Link;

const DAY_MS: i64 = 86_400_000;

fn today() -> Date {
    crate::catalog::parse_date("2026-11-24").unwrap()
}

fn ctx() -> Context {
    Context {
        today: today(),
        now_ms: 1_795_000_000_000,
        config: RuleConfig::default(),
    }
}

fn system(k: Option<u8>) -> System {
    System {
        id: "sys".into(),
        name: "System".into(),
        description: String::new(),
        system_owner: Some(Person {
            name: "Anna".into(),
            email: Some("anna@kommun.se".into()),
        }),
        system_administrator: None,
        information_owner: None,
        classification: k.map(|k| Classification {
            k,
            r: 1,
            t: 1,
            classified_at: crate::catalog::parse_date("2026-06-01").unwrap(),
            classified_by: "CISO".into(),
            rationale: String::new(),
        }),
        critical_to_society: false,
        business_critical: false,
        links: LinkRules::default(),
        attestations: vec![],
    }
}

fn asset(controls: &[(&str, &str)]) -> EvalAsset {
    EvalAsset {
        asset_id: "a1".into(),
        kind: "host".into(),
        label: "db1".into(),
        controls: controls
            .iter()
            .map(|(name, state)| {
                (
                    (*name).to_string(),
                    ControlRecord {
                        name: (*name).into(),
                        state: (*state).into(),
                        reason: "r".into(),
                        evidence: vec![],
                    },
                )
            })
            .collect(),
        last_seen_at: ctx().now_ms,
        certificate: None,
    }
}

fn linked() -> Vec<AssetLinks> {
    vec![AssetLinks {
        links: vec![Link {
            system_id: "sys".into(),
            reason: "test".into(),
            explicit: true,
        }],
        conflict: None,
    }]
}

fn rules_of(system: &System, asset: &EvalAsset) -> Vec<&'static str> {
    let mut rules: Vec<_> = evaluate(
        std::slice::from_ref(system),
        std::slice::from_ref(asset),
        &linked(),
        &ctx(),
    )
    .into_iter()
    .map(|d| d.rule)
    .collect();
    rules.sort_unstable();
    rules
}

const ALL_GOOD: &[(&str, &str)] = &[
    ("mfa", "enforced"),
    ("transit_encryption", "encrypted"),
    ("rest_encryption", "encrypted"),
];

/// K level, the asset's controls, the rules expected to fail.
type Case<'a> = (Option<u8>, &'a [(&'a str, &'a str)], &'a [&'a str]);

#[test]
fn member_rules_table() {
    let cases: &[Case<'_>] = &[
        // K1: no K2/K3 rule applies whatever the controls.
        (Some(1), &[], &[]),
        // K2: MFA alone passes auth but not transit/rest.
        (
            Some(2),
            &[
                ("mfa", "enforced"),
                ("transit_encryption", "plaintext"),
                ("rest_encryption", "unencrypted"),
            ],
            &["k23-rest", "k23-transit"],
        ),
        // K2: encryption alone (no MFA) passes k2-auth.
        (
            Some(2),
            &[
                ("mfa", "absent"),
                ("transit_encryption", "encrypted"),
                ("rest_encryption", "encrypted"),
            ],
            &[],
        ),
        // K2: neither.
        (
            Some(2),
            &[
                ("mfa", "absent"),
                ("transit_encryption", "encrypted"),
                ("rest_encryption", "unencrypted"),
            ],
            &["k2-auth", "k23-rest"],
        ),
        // K2: unknown never passes.
        (Some(2), &[], &["k2-auth", "k23-rest", "k23-transit"]),
        // K3: encryption does not excuse missing MFA.
        (
            Some(3),
            &[
                ("mfa", "available"),
                ("transit_encryption", "encrypted"),
                ("rest_encryption", "encrypted"),
            ],
            &["k3-auth"],
        ),
        (Some(3), ALL_GOOD, &[]),
        (
            Some(3),
            &[
                ("mfa", "unknown"),
                ("transit_encryption", "unknown"),
                ("rest_encryption", "unknown"),
            ],
            &["k23-rest", "k23-transit", "k3-auth"],
        ),
        // Unclassified: only the system rule.
        (None, &[], &["unclassified-system"]),
    ];
    for (k, controls, expected) in cases {
        let got = rules_of(&system(*k), &asset(controls));
        assert_eq!(&got, expected, "K={k:?} controls={controls:?}");
    }
}

#[test]
fn attestations_count_until_they_expire() {
    let mut sys = system(Some(3));
    let attest = |expires: &str| Attestation {
        control: "mfa".into(),
        statement: "MFA enforced by the IdP".into(),
        attested_by: "CISO".into(),
        attested_at: crate::catalog::parse_date("2026-01-01").unwrap(),
        expires_at: crate::catalog::parse_date(expires).unwrap(),
    };
    let host = asset(&[
        ("mfa", "absent"),
        ("transit_encryption", "encrypted"),
        ("rest_encryption", "encrypted"),
    ]);
    sys.attestations = vec![attest("2027-01-01")];
    assert!(rules_of(&sys, &host).is_empty());
    sys.attestations = vec![attest("2026-11-23")];
    assert_eq!(rules_of(&sys, &host), vec!["k3-auth"]);
}

#[test]
fn ownership_and_staleness_table() {
    let good = asset(ALL_GOOD);
    // Linked to no system.
    let none = evaluate(
        &[],
        std::slice::from_ref(&good),
        &[AssetLinks::default()],
        &ctx(),
    );
    assert_eq!(
        none.iter().map(|d| d.rule).collect::<Vec<_>>(),
        vec!["unowned-asset"]
    );
    assert_eq!(none[0].system_id, None);
    // Linked to a system without owner.
    let mut ownerless = system(Some(1));
    ownerless.system_owner = None;
    assert_eq!(rules_of(&ownerless, &good), vec!["unowned-asset"]);
    // Stale.
    let mut old = good.clone();
    old.last_seen_at -= 8 * DAY_MS;
    assert_eq!(rules_of(&system(Some(1)), &old), vec!["stale-asset"]);
    // An agent certificate in its last third was not renewed.
    let mut unrenewed = good.clone();
    let now = ctx().now_ms;
    unrenewed.certificate = Some(AgentCertificate {
        agent_id: "agent-1".into(),
        issued_at: now - 20 * DAY_MS,
        not_after: now + 10 * DAY_MS,
    });
    assert_eq!(rules_of(&system(Some(1)), &unrenewed), vec!["certificate-expiring"]);
    let mut fresh = unrenewed.clone();
    fresh.certificate.as_mut().unwrap().issued_at = now - 19 * DAY_MS;
    assert!(rules_of(&system(Some(1)), &fresh).is_empty());
    let mut expired = unrenewed.clone();
    expired.certificate.as_mut().unwrap().not_after = now - 1;
    let found = evaluate(&[system(Some(1))], &[expired], &linked(), &ctx());
    assert!(found[0].message.contains("new token"), "{}", found[0].message);
    // Review due after a year.
    let mut aged = system(Some(1));
    aged.classification.as_mut().unwrap().classified_at =
        crate::catalog::parse_date("2025-11-01").unwrap();
    assert_eq!(rules_of(&aged, &good), vec!["review-due"]);
}

#[test]
fn severity_rises_with_k_criticality_and_ot() {
    let host = asset(&[
        ("mfa", "enforced"),
        ("transit_encryption", "plaintext"),
        ("rest_encryption", "encrypted"),
    ]);
    let sev = |system: &System, asset: &EvalAsset| {
        evaluate(
            std::slice::from_ref(system),
            std::slice::from_ref(asset),
            &linked(),
            &ctx(),
        )[0]
        .severity
    };
    assert_eq!(sev(&system(Some(2)), &host), Severity::Medium);
    assert_eq!(sev(&system(Some(3)), &host), Severity::High);
    let mut critical = system(Some(3));
    critical.critical_to_society = true;
    assert_eq!(sev(&critical, &host), Severity::Critical);
    let mut device = host.clone();
    device.kind = "device".into();
    assert_eq!(sev(&system(Some(2)), &device), Severity::High);
}

#[test]
fn every_rule_in_the_design_is_in_the_table() {
    for id in [
        "k2-auth",
        "k3-auth",
        "k23-transit",
        "k23-rest",
        "unowned-asset",
        "unclassified-system",
        "review-due",
        "stale-asset",
        "certificate-expiring",
    ] {
        let rule = rule(id).unwrap();
        assert!(!rule.policy.is_empty() && !rule.remediation.is_empty());
    }
}
