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
            s: None,
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

/// An asset with these controls; the logging and privilege controls pass unless given, so each
/// table below is about the controls it names.
fn asset(controls: &[(&str, &str)]) -> EvalAsset {
    let mut all: Vec<(&str, &str)> = vec![
        ("log_protection", "forwarded"),
        ("privileged_access", "restricted"),
    ];
    all.retain(|(name, _)| !controls.iter().any(|(given, _)| given == name));
    all.extend_from_slice(controls);
    let controls = all.as_slice();
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
    assert_eq!(
        rules_of(&system(Some(1)), &unrenewed),
        vec!["certificate-expiring"]
    );
    let mut fresh = unrenewed.clone();
    fresh.certificate.as_mut().unwrap().issued_at = now - 19 * DAY_MS;
    assert!(rules_of(&system(Some(1)), &fresh).is_empty());
    let mut expired = unrenewed.clone();
    expired.certificate.as_mut().unwrap().not_after = now - 1;
    let found = evaluate(&[system(Some(1))], &[expired], &linked(), &ctx());
    assert!(
        found[0].message.contains("new token"),
        "{}",
        found[0].message
    );
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
        "unverified-system",
        "k23-logging",
        "k23-privileged",
        "certificate-expiring",
    ] {
        let rule = rule(id).unwrap();
        assert!(!rule.policy.is_empty() && !rule.remediation.is_empty());
    }
}

fn attestation(control: &str, expires: &str) -> Attestation {
    Attestation {
        control: control.into(),
        statement: "hosted by the supplier".into(),
        attested_by: "CISO".into(),
        attested_at: crate::catalog::parse_date("2026-01-01").unwrap(),
        expires_at: crate::catalog::parse_date(expires).unwrap(),
    }
}

/// The rules a system alone breaks (no asset linked to it).
fn system_rules(system: &System) -> Vec<&'static str> {
    let mut rules: Vec<_> = evaluate(std::slice::from_ref(system), &[], &[], &ctx())
        .into_iter()
        .map(|d| d.rule)
        .collect();
    rules.sort_unstable();
    rules
}

#[test]
fn a_k2_or_k3_system_without_a_fresh_asset_is_unverified() {
    // Nothing linked: K2 and K3 are unverified, K1 and unclassified systems are not asked.
    assert_eq!(system_rules(&system(Some(2))), vec!["unverified-system"]);
    assert_eq!(system_rules(&system(Some(3))), vec!["unverified-system"]);
    assert!(system_rules(&system(Some(1))).is_empty());
    assert_eq!(system_rules(&system(None)), vec!["unclassified-system"]);
    // A fresh asset verifies it; only stale ones do not.
    let good = asset(ALL_GOOD);
    assert!(rules_of(&system(Some(2)), &good).is_empty());
    let mut old = good.clone();
    old.last_seen_at -= 8 * DAY_MS;
    assert_eq!(
        rules_of(&system(Some(2)), &old),
        vec!["stale-asset", "unverified-system"]
    );
    // A no_footprint attestation (a SaaS service) answers it until it expires.
    let mut saas = system(Some(3));
    saas.attestations = vec![attestation(NO_FOOTPRINT, "2027-01-01")];
    assert!(system_rules(&saas).is_empty());
    saas.attestations = vec![attestation(NO_FOOTPRINT, "2026-11-23")];
    assert_eq!(system_rules(&saas), vec!["unverified-system"]);
    // Severity rises with K3 and criticality.
    let sev = |s: &System| evaluate(std::slice::from_ref(s), &[], &[], &ctx())[0].severity;
    assert_eq!(sev(&system(Some(2))), Severity::Medium);
    assert_eq!(sev(&system(Some(3))), Severity::High);
    let mut critical = system(Some(3));
    critical.business_critical = true;
    assert_eq!(sev(&critical), Severity::Critical);
}

fn state(rule_id: &str, system: &System, members: &[&EvalAsset]) -> Option<RuleState> {
    judge(rule(rule_id).unwrap(), system, members, &ctx())
}

#[test]
fn compliance_has_three_states_and_needs_evidence() {
    use RuleState::{Compliant, NotCompliant, Unverified};
    let k3 = system(Some(3));
    let enforced = asset(&[("mfa", "enforced")]);
    let absent = asset(&[("mfa", "absent")]);
    let unknown = asset(&[("mfa", "unknown")]);
    let silent = asset(&[]);
    // Nothing linked: unverified, never compliant.
    assert_eq!(state("k3-auth", &k3, &[]), Some(Unverified));
    assert_eq!(state("k3-auth", &k3, &[&enforced]), Some(Compliant));
    assert_eq!(state("k3-auth", &k3, &[&absent]), Some(NotCompliant));
    assert_eq!(state("k3-auth", &k3, &[&unknown]), Some(Unverified));
    assert_eq!(state("k3-auth", &k3, &[&silent]), Some(Unverified));
    // A known failure outweighs an unknown; an unknown keeps a pass from being compliance.
    assert_eq!(
        state("k3-auth", &k3, &[&unknown, &absent]),
        Some(NotCompliant)
    );
    assert_eq!(
        state("k3-auth", &k3, &[&enforced, &unknown]),
        Some(Unverified)
    );
    // Only fresh assets are evidence.
    let mut old = enforced.clone();
    old.last_seen_at -= 8 * DAY_MS;
    assert_eq!(state("k3-auth", &k3, &[&old]), Some(Unverified));
    // A valid attestation is evidence even without an asset.
    let mut attested = k3.clone();
    attested.attestations = vec![attestation("mfa", "2027-01-01")];
    assert_eq!(state("k3-auth", &attested, &[]), Some(Compliant));
    assert_eq!(state("k23-rest", &attested, &[]), Some(Unverified));
    // k2-auth: MFA absent and encryption partly unknown is unverified; known plaintext fails.
    let k2 = system(Some(2));
    let partly = asset(&[
        ("mfa", "absent"),
        ("transit_encryption", "encrypted"),
        ("rest_encryption", "unknown"),
    ]);
    let plaintext = asset(&[
        ("mfa", "absent"),
        ("transit_encryption", "plaintext"),
        ("rest_encryption", "unknown"),
    ]);
    assert_eq!(state("k2-auth", &k2, &[&partly]), Some(Unverified));
    assert_eq!(state("k2-auth", &k2, &[&plaintext]), Some(NotCompliant));
    // Rules that do not apply to the K level give no state.
    assert_eq!(state("k3-auth", &k2, &[&enforced]), None);
    assert_eq!(state("k2-auth", &k3, &[&enforced]), None);
    assert_eq!(state("k23-transit", &system(Some(1)), &[&enforced]), None);
    assert_eq!(state("unowned-asset", &k3, &[&enforced]), None);
}

#[test]
fn logging_follows_s_where_given_and_privileges_follow_k() {
    let local = asset(&[
        ("mfa", "enforced"),
        ("transit_encryption", "encrypted"),
        ("rest_encryption", "encrypted"),
        ("log_protection", "local_only"),
    ]);
    assert_eq!(rules_of(&system(Some(2)), &local), vec!["k23-logging"]);
    assert!(rules_of(&system(Some(1)), &local).is_empty());
    // S overrides K for logging in both directions.
    let mut s_low = system(Some(3));
    s_low.classification.as_mut().unwrap().s = Some(1);
    let mut good_mfa = local.clone();
    good_mfa.controls.get_mut("mfa").unwrap().state = "enforced".into();
    assert!(rules_of(&s_low, &good_mfa).is_empty());
    let mut s_high = system(Some(1));
    s_high.classification.as_mut().unwrap().s = Some(2);
    let findings = evaluate(
        std::slice::from_ref(&s_high),
        std::slice::from_ref(&local),
        &linked(),
        &ctx(),
    );
    assert_eq!(findings.len(), 1);
    assert!(
        findings[0].message.contains("(S2)"),
        "{}",
        findings[0].message
    );
    for (state, fails) in [
        ("forwarded", false),
        ("attested", false),
        ("none", true),
        ("unknown", true),
    ] {
        let host = asset(&[
            ("mfa", "enforced"),
            ("transit_encryption", "encrypted"),
            ("rest_encryption", "encrypted"),
            ("log_protection", state),
        ]);
        assert_eq!(
            rules_of(&system(Some(2)), &host).contains(&"k23-logging"),
            fails,
            "{state}"
        );
    }
    for (state, fails) in [("restricted", false), ("exposed", true), ("unknown", true)] {
        let host = asset(&[
            ("mfa", "enforced"),
            ("transit_encryption", "encrypted"),
            ("rest_encryption", "encrypted"),
            ("privileged_access", state),
        ]);
        assert_eq!(
            rules_of(&system(Some(3)), &host).contains(&"k23-privileged"),
            fails,
            "{state}"
        );
        assert!(!rules_of(&system(Some(1)), &host).contains(&"k23-privileged"));
    }
}

#[test]
fn every_mapping_names_real_controls_and_bad_ones_are_named() {
    for rule in RULES {
        assert!(
            !rule.iso27001.is_empty() && !rule.nis2.is_empty(),
            "{}",
            rule.id
        );
        assert!(
            rule.iso27001.iter().all(|c| is_annex_a(c)),
            "{}: {:?}",
            rule.id,
            rule.iso27001
        );
        assert!(
            rule.nis2.iter().all(|m| is_nis2_measure(m)),
            "{}: {:?}",
            rule.id,
            rule.nis2
        );
    }
    assert!(is_annex_a("A.5.37") && is_annex_a("A.8.34") && is_annex_a("A.6.1"));
    assert!(
        !is_annex_a("A.5.38")
            && !is_annex_a("A.9.1")
            && !is_annex_a("A.8.05")
            && !is_annex_a("8.5")
    );
    let mut config = RuleConfig::default();
    config.mappings.insert(
        "k3-auth".into(),
        Mapping {
            iso27001: vec!["A.8.5".into(), "A.9.4.2".into()],
            nis2: vec!["k".into()],
        },
    );
    config
        .mappings
        .insert("no-such-rule".into(), Mapping::default());
    let problems = config.problems();
    assert_eq!(problems.len(), 3, "{problems:?}");
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("rules.mappings.k3-auth.iso27001: \"A.9.4.2\""))
    );
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("rules.mappings.k3-auth.nis2: \"k\""))
    );
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("rules.mappings.no-such-rule:"))
    );
    config.mappings.remove("no-such-rule");
    let k3 = rule("k3-auth").unwrap();
    assert_eq!(config.mapping(k3).iso27001, ["A.8.5", "A.9.4.2"]);
    assert_eq!(
        RuleConfig::default().mapping(k3).iso27001,
        ["A.8.5", "A.5.17"]
    );
}

#[test]
fn dormant_administrators_follow_the_configured_threshold() {
    let login = |detail: &str| StoredEvidence {
        source: "/var/log/lastlog".into(),
        line: 0,
        probe: "last-login".into(),
        detail: detail.into(),
    };
    let mut host = asset(ALL_GOOD);
    host.controls.get_mut("privileged_access").unwrap().evidence = vec![
        // 2026-11-24 is today: 100 days, 10 days, never, and one the agent wrote oddly.
        login("anna: last login 2026-08-16T09:00:00Z"),
        login("erik: last login 2026-11-14T09:00:00Z"),
        login("olle: never logged in"),
        login("mystery: last login yesterday"),
    ];
    let judge = |days: i64, host: &EvalAsset| {
        let mut ctx = ctx();
        ctx.config.dormant_admin_after_days = days;
        evaluate(
            std::slice::from_ref(&system(Some(2))),
            std::slice::from_ref(host),
            &linked(),
            &ctx,
        )
        .into_iter()
        .find(|d| d.rule == "k23-privileged")
    };
    let finding = judge(90, &host).expect("anna and olle are dormant");
    assert!(
        finding.message.ends_with(
            "90 days or more (K2); last logged in: anna (2026-08-16); never logged in: olle"
        ),
        "{}",
        finding.message
    );
    let details: Vec<&str> = finding
        .evidence
        .iter()
        .filter(|e| e.probe == "last-login")
        .map(|e| e.detail.as_str())
        .collect();
    assert_eq!(
        details,
        [
            "anna: last login 2026-08-16T09:00:00Z",
            "olle: never logged in"
        ]
    );
    assert_eq!(
        finding.text.render(&Lang::Sv.messages()),
        "db1 har administratörer som inte har loggat in på 90 dagar eller mer (K2); senast inloggade: anna (2026-08-16); aldrig inloggade: olle"
    );
    let finding = judge(5, &host).unwrap();
    assert!(
        finding
            .message
            .contains("anna (2026-08-16), erik (2026-11-14); never")
    );
    // Only olle left: never logged in is dormant at any threshold.
    host.controls
        .get_mut("privileged_access")
        .unwrap()
        .evidence
        .retain(|e| !e.detail.starts_with("olle"));
    assert!(judge(365, &host).is_none());
    // Exposed hosts name their dormant administrators too.
    host.controls.get_mut("privileged_access").unwrap().state = "exposed".into();
    let finding = judge(30, &host).unwrap();
    assert!(
        finding
            .message
            .ends_with("(K2): r; administrators not seen logging in for 30 days or more; last logged in: anna (2026-08-16)"),
        "{}",
        finding.message
    );
    // K1: not judged.
    assert!(
        evaluate(
            std::slice::from_ref(&system(Some(1))),
            std::slice::from_ref(&host),
            &linked(),
            &ctx()
        )
        .iter()
        .all(|d| d.rule != "k23-privileged")
    );
}

#[test]
fn attestable_controls_name_rules_of_the_table_and_controls_an_attestation_can_carry() {
    let known = [
        "mfa",
        "transit_encryption",
        "rest_encryption",
        "log_protection",
        "privileged_access",
        NO_FOOTPRINT,
    ];
    let answered: Vec<&str> = RULES
        .iter()
        .filter(|r| !attestable_controls(r.id).is_empty())
        .map(|r| r.id)
        .collect();
    assert_eq!(answered.len(), 7, "{answered:?}");
    for rule in RULES {
        for control in attestable_controls(rule.id) {
            assert!(known.contains(control), "{}: {control}", rule.id);
        }
    }
    assert!(attestable_controls("no-such-rule").is_empty());
}
