// The store's conformance suite: every test here runs on SQLite and on PostgreSQL unchanged
// (included by sql.rs into one module per back-end, each with its own `fresh` store).
use super::super::*;
use super::{fresh, fresh_shared};
use crate::store::{ControlInput, ObservationInput, verify_audit_chain};

fn agent(id: &str) -> NewAgent {
    NewAgent {
        agent_id: id.into(),
        hostname: "h".into(),
        cert_sha256: format!("sha-{id}"),
        cert_not_after: 10,
        labels: BTreeMap::new(),
        agent_version: "1".into(),
    }
}

fn token(hash: &str, expires_at: i64) -> NewToken {
    NewToken {
        token_hash: hash.into(),
        created_at: 0,
        expires_at,
        created_by: "alice".into(),
    }
}

fn report(agent_id: &str, report_id: &str, package_version: &str) -> ReportInput {
    ReportInput {
        agent_id: agent_id.into(),
        report_id: report_id.into(),
        collected_at: 1,
        size_bytes: 1,
        agent_version: "1".into(),
        hostname: "h".into(),
        host_facts: serde_json::json!({}),
        observations: vec![ObservationInput {
            category: "package".into(),
            name: "openssl".into(),
            value: serde_json::json!({ "version": package_version }),
            evidence: vec![],
        }],
        controls: vec![ControlInput {
            name: "mfa".into(),
            state: "absent".into(),
            reason: "r".into(),
            evidence: vec![],
        }],
        devices: vec![],
        sequence: 0,
        delta_base: None,
        removed_observations: vec![],
        job_id: None,
    }
}

#[tokio::test]
async fn tokens_are_single_use_and_expire() {
    let store = fresh().await;
    store.create_token(token("t1", 100), 0).await.unwrap();
    store.create_token(token("t2", 100), 0).await.unwrap();
    assert!(matches!(
        store.check_token("nope", 1).await,
        Err(StoreError::TokenUnknown)
    ));
    assert!(matches!(
        store.enroll_agent("t2", agent("x"), 100).await,
        Err(StoreError::TokenExpired)
    ));
    store.enroll_agent("t1", agent("a"), 1).await.unwrap();
    assert!(matches!(
        store.enroll_agent("t1", agent("b"), 2).await,
        Err(StoreError::TokenUsed)
    ));
    assert_eq!(store.agents().await.unwrap().len(), 1);
}

fn scope(name: &str, max_uses: i64, labels: &[(&str, &str)]) -> TokenScope {
    TokenScope {
        name: name.into(),
        max_uses,
        labels: labels
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect(),
    }
}

#[tokio::test]
async fn a_scoped_token_allows_its_uses_and_its_labels_beat_the_claimed_ones() {
    let store = fresh().await;
    store
        .create_scoped_token(token("t1", 100), scope("fleet", 2, &[("site", "ward4")]), 0)
        .await
        .unwrap();
    let mut claimed = agent("a");
    claimed.labels = [("site", "elsewhere"), ("role", "db")]
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect();
    store.enroll_agent("t1", claimed, 1).await.unwrap();
    store.enroll_agent("t1", agent("b"), 2).await.unwrap();
    assert!(matches!(
        store.enroll_agent("t1", agent("c"), 3).await,
        Err(StoreError::TokenUsed)
    ));
    let a = store.agent("a").await.unwrap().unwrap();
    assert_eq!(a.labels["site"], "ward4");
    assert_eq!(a.labels["role"], "db");
    assert_eq!(a.claimed_labels["site"], "elsewhere");
    assert_eq!(a.token_labels["site"], "ward4");
    assert_eq!(a.token_name.as_deref(), Some("fleet"));
    let views: BTreeMap<_, _> = store
        .agent_views()
        .await
        .unwrap()
        .into_iter()
        .map(|view| (view.agent_id.clone(), view))
        .collect();
    assert_eq!(views["b"].labels["site"], "ward4");
    assert_eq!(views["a"], AgentView::of(&a));
    let tokens = store.tokens().await.unwrap();
    assert_eq!((tokens[0].uses, tokens[0].max_uses), (2, 2));
    assert_eq!(store.agents().await.unwrap().len(), 2);
}

#[tokio::test]
async fn a_revoked_token_is_refused_and_names_are_unique() {
    let store = fresh().await;
    store
        .create_scoped_token(token("t1", 100), scope("fleet", 5, &[]), 0)
        .await
        .unwrap();
    assert!(matches!(
        store
            .create_scoped_token(token("t2", 100), scope("fleet", 1, &[]), 0)
            .await,
        Err(StoreError::TokenNameTaken(_))
    ));
    let event = AuditEvent {
        actor: "alice".into(),
        action: "token.revoke".into(),
        subject: "fleet".into(),
        detail: serde_json::json!({}),
    };
    assert!(store.revoke_token("fleet", event.clone(), 1).await.unwrap());
    assert!(!store.revoke_token("fleet", event.clone(), 2).await.unwrap());
    assert!(matches!(
        store.revoke_token("nope", event, 2).await,
        Err(StoreError::TokenNameUnknown(_))
    ));
    assert!(matches!(
        store.enroll_agent("t1", agent("a"), 3).await,
        Err(StoreError::TokenRevoked)
    ));
    assert!(store.agents().await.unwrap().is_empty());
    let tokens = store.tokens().await.unwrap();
    assert_eq!(tokens.len(), 1);
    assert_eq!(tokens[0].uses, 0);
    assert!(tokens[0].revoked_at.is_some());
}

#[tokio::test]
async fn concurrent_redemptions_never_exceed_the_budget() {
    let (store, _dir) = fresh_shared().await;
    store
        .create_scoped_token(token("t1", i64::MAX), scope("fleet", 5, &[]), 0)
        .await
        .unwrap();
    let attempts: Vec<_> = (0..20)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(
                async move { store.enroll_agent("t1", agent(&format!("a{i}")), 1).await },
            )
        })
        .collect();
    let mut enrolled = 0;
    for attempt in attempts {
        match attempt.await.unwrap() {
            Ok(()) => enrolled += 1,
            Err(StoreError::TokenUsed) => {}
            Err(other) => panic!("unexpected {other}"),
        }
    }
    assert_eq!(enrolled, 5);
    assert_eq!(store.agents().await.unwrap().len(), 5);
    assert_eq!(store.tokens().await.unwrap()[0].uses, 5);
}

#[tokio::test]
async fn a_second_host_with_the_same_certificate_is_recorded_as_a_clone() {
    let store = fresh().await;
    store.create_token(token("t1", 100), 0).await.unwrap();
    store.enroll_agent("t1", agent("a"), 1).await.unwrap();
    assert_eq!(
        store.bind_agent_host("a", "h1", 2).await.unwrap(),
        HostBinding::Bound
    );
    assert_eq!(
        store.bind_agent_host("a", "h1", 3).await.unwrap(),
        HostBinding::Same
    );
    for at in [4, 5] {
        assert_eq!(
            store.bind_agent_host("a", "h2", at).await.unwrap(),
            HostBinding::Clone { bound: "h1".into() }
        );
    }
    let a = store.agent("a").await.unwrap().unwrap();
    assert_eq!(a.host_id.as_deref(), Some("h1"));
    assert_eq!(a.clone_host_id.as_deref(), Some("h2"));
    assert_eq!(a.clone_detected_at, Some(4));
    let audit = store.audit_log().await.unwrap();
    let clones = audit
        .iter()
        .filter(|e| e.action == "agent.clone-detected")
        .count();
    assert_eq!(clones, 1, "audited once, not per report");
    verify_audit_chain(&audit).unwrap();
}

#[tokio::test]
async fn renewal_replaces_the_certificate_once_and_not_for_revoked_agents() {
    let store = fresh().await;
    store.create_token(token("t1", 100), 0).await.unwrap();
    store.enroll_agent("t1", agent("a"), 1).await.unwrap();
    let renewed = |presented: &str, new: &str| RenewedCertificate {
        presented_sha256: presented.into(),
        cert_sha256: new.into(),
        cert_not_after: 50,
    };
    store
        .renew_agent_certificate("a", &renewed("sha-a", "sha-a2"), 10)
        .await
        .unwrap();
    let a = store.agent("a").await.unwrap().unwrap();
    assert_eq!(a.cert_sha256, "sha-a2");
    assert_eq!(a.prev_cert_sha256.as_deref(), Some("sha-a"));
    assert_eq!(
        (a.cert_not_after, a.cert_issued_at, a.cert_renewals),
        (50, Some(10), 1)
    );
    // The agent lost the new files and renews with the replaced certificate: allowed once.
    store
        .renew_agent_certificate("a", &renewed("sha-a", "sha-a3"), 11)
        .await
        .unwrap();
    store.forget_previous_certificate("a").await.unwrap();
    assert!(matches!(
        store
            .renew_agent_certificate("a", &renewed("sha-a", "sha-a4"), 12)
            .await,
        Err(StoreError::CertificateSuperseded(_))
    ));
    let event = AuditEvent {
        actor: "alice".into(),
        action: "agent.revoke".into(),
        subject: "a".into(),
        detail: serde_json::json!({}),
    };
    store.revoke_agent("a", event, 13).await.unwrap();
    assert!(matches!(
        store
            .renew_agent_certificate("a", &renewed("sha-a3", "sha-a5"), 14)
            .await,
        Err(StoreError::AgentRevoked(_))
    ));
    assert_eq!(
        store.agent("a").await.unwrap().unwrap().cert_sha256,
        "sha-a3"
    );
}

#[tokio::test]
async fn a_failed_enrollment_leaves_the_token_unused() {
    let store = fresh().await;
    store.create_token(token("t1", 100), 0).await.unwrap();
    store.create_token(token("t2", 100), 0).await.unwrap();
    store.enroll_agent("t1", agent("a"), 1).await.unwrap();
    // Same certificate fingerprint as agent a: the insert fails, the token must survive.
    let mut clash = agent("b");
    clash.cert_sha256 = "sha-a".into();
    assert!(store.enroll_agent("t2", clash, 2).await.is_err());
    store.check_token("t2", 3).await.unwrap();
}

#[tokio::test]
async fn reports_are_deduplicated_per_agent_and_track_changes() {
    let store = fresh().await;
    store.create_token(token("t1", 100), 0).await.unwrap();
    store.enroll_agent("t1", agent("a"), 1).await.unwrap();
    let first = store
        .ingest_report(report("a", "r1", "3.0.1"), 10)
        .await
        .unwrap();
    assert!(!first.duplicate);
    let again = store
        .ingest_report(report("a", "r1", "9.9.9"), 11)
        .await
        .unwrap();
    assert!(again.duplicate);
    assert_eq!(again.asset_id, first.asset_id);
    let second = store
        .ingest_report(report("a", "r2", "3.0.2"), 20)
        .await
        .unwrap();
    assert_eq!(second.asset_id, first.asset_id);

    let row = sqlx::query("SELECT value_json, first_seen_at, changed_at FROM observations")
        .fetch_one(&store.pool)
        .await
        .unwrap();
    assert_eq!(row.get::<String, _>("value_json"), r#"{"version":"3.0.2"}"#);
    assert_eq!(row.get::<i64, _>("first_seen_at"), 10);
    assert_eq!(row.get::<i64, _>("changed_at"), 20);
    let changes = store.observation_changes(Some("h"), 0).await.unwrap();
    let kinds: Vec<_> = changes.iter().map(|c| c.change.as_str()).collect();
    assert_eq!(kinds, vec!["added", "changed"]);
    assert_eq!(
        changes[1].old_value.as_deref(),
        Some(r#"{"version":"3.0.1"}"#)
    );
    assert_eq!(
        store
            .observation_changes(Some("h"), 15)
            .await
            .unwrap()
            .len(),
        1
    );
    let mut gone = report("a", "r3", "3.0.2");
    gone.observations.clear();
    store.ingest_report(gone, 30).await.unwrap();
    assert_eq!(
        store.observation_changes(None, 30).await.unwrap()[0].change,
        "removed"
    );
    let assets = store.assets().await.unwrap();
    assert_eq!(assets[0].first_seen_at, 10);
    assert_eq!(assets[0].last_seen_at, 30);
    assert_eq!(assets[0].controls[0].state, "absent");
}

#[tokio::test]
async fn the_audit_log_is_append_only_and_chained() {
    let store = fresh().await;
    store.create_token(token("t1", 100), 0).await.unwrap();
    store.enroll_agent("t1", agent("a"), 1).await.unwrap();
    let event = AuditEvent {
        actor: "bob".into(),
        action: "agent.revoke".into(),
        subject: "a".into(),
        detail: serde_json::json!({ "reason": "lost" }),
    };
    let before = store.agent_views().await.unwrap();
    let certificate = before[0].certificate.clone().unwrap();
    assert_eq!((certificate.agent_id.as_str(), certificate.issued_at, certificate.not_after), ("a", 1, 10));
    assert!(store.revoke_agent("a", event.clone(), 5).await.unwrap());
    assert!(!store.revoke_agent("a", event, 6).await.unwrap());
    // A revoked agent keeps its labels for linking and loses its certificate.
    let after = store.agent_views().await.unwrap();
    assert_eq!((after.len(), &after[0].certificate), (1, &None));
    let log = store.audit_log().await.unwrap();
    assert_eq!(log.len(), 2);
    verify_audit_chain(&log).unwrap();

    let mut tampered = log.clone();
    tampered[0].actor = "mallory".into();
    assert_eq!(verify_audit_chain(&tampered).unwrap_err().seq, 1);
    let mut tampered = log.clone();
    tampered[1].detail_json = r#"{"reason":"found"}"#.into();
    assert_eq!(verify_audit_chain(&tampered).unwrap_err().seq, 2);
    let mut tampered = log.clone();
    tampered.remove(0);
    assert_eq!(verify_audit_chain(&tampered).unwrap_err().seq, 2);
    assert!(
        sqlx::query("UPDATE audit_log SET actor = 'x'")
            .execute(&store.pool)
            .await
            .is_err()
    );
    assert!(
        sqlx::query("DELETE FROM audit_log")
            .execute(&store.pool)
            .await
            .is_err()
    );
}

fn draft(asset: &str) -> FindingDraft {
    FindingDraft {
        rule: "k3-auth",
        severity: crate::rules::Severity::High,
        system_id: Some("journal".into()),
        asset_id: Some(asset.into()),
        asset: asset.into(),
        message: "m".into(),
        text: crate::i18n::Text::new("finding.k3-auth", &[asset, "absent"]),
        evidence: vec![],
    }
}

/// Anna accepts the finding of asset `b` at 35 until 50; returns it as it was before.
async fn accept_b_until_50(store: &dyn Store) -> FindingRecord {
    let b = store
        .findings()
        .await
        .unwrap()
        .into_iter()
        .find(|f| f.asset == "b")
        .unwrap();
    let accept = Acceptance {
        by: "Anna".into(),
        reason: "compensating control".into(),
        until: 50,
    };
    store
        .accept_finding(&b.finding_id, accept, 35)
        .await
        .unwrap();
    b
}

/// Findings read ahead of the write are used only if no one wrote findings since: another
/// evaluation's new finding is not inserted twice, and an acceptance written in between is
/// seen (here its expiry reopens the finding).
#[tokio::test]
async fn findings_read_ahead_are_read_again_when_written_since() {
    let store = fresh().await;
    store.apply_findings(&[draft("a")], 10).await.unwrap();
    let unchanged = store.stored_findings().await.unwrap();
    let s = store
        .apply_findings_read_ahead(&[draft("a")], unchanged, 15)
        .await
        .unwrap();
    assert_eq!((s.opened, s.resolved, s.open), (0, 0, 1));

    let stale = store.stored_findings().await.unwrap();
    store
        .apply_findings(&[draft("a"), draft("b")], 20)
        .await
        .unwrap();
    let s = store
        .apply_findings_read_ahead(&[draft("a"), draft("b")], stale, 30)
        .await
        .unwrap();
    assert_eq!((s.opened, s.open), (0, 2), "b was opened by the write in between");

    let stale = store.stored_findings().await.unwrap();
    accept_b_until_50(&store).await;
    let s = store
        .apply_findings_read_ahead(&[draft("a"), draft("b")], stale, 60)
        .await
        .unwrap();
    assert_eq!(
        (s.reopened, s.open, s.accepted),
        (1, 2, 0),
        "the acceptance written in between expired at 50"
    );
}

#[tokio::test]
async fn findings_open_resolve_reopen_and_accept_with_history() {
    let store = fresh().await;
    // A key judged twice counts once, whether it is new or stored.
    let s = store
        .apply_findings(&[draft("a"), draft("b"), draft("a")], 10)
        .await
        .unwrap();
    assert_eq!((s.opened, s.open), (2, 2));
    let s = store.apply_findings(&[draft("a")], 20).await.unwrap();
    assert_eq!((s.resolved, s.open), (1, 1));
    let s = store
        .apply_findings(&[draft("a"), draft("b"), draft("b")], 30)
        .await
        .unwrap();
    assert_eq!((s.reopened, s.open), (1, 2));

    let b = accept_b_until_50(&store).await;
    assert_eq!(
        b.text,
        Some(draft("b").text),
        "the sentence is kept for rendering"
    );
    let s = store
        .apply_findings(&[draft("a"), draft("b")], 40)
        .await
        .unwrap();
    assert_eq!((s.open, s.accepted), (1, 1));
    // The acceptance expires at 50: the finding opens again.
    let s = store
        .apply_findings(&[draft("a"), draft("b")], 60)
        .await
        .unwrap();
    assert_eq!((s.reopened, s.open, s.accepted), (1, 2, 0));

    let states: Vec<String> = store
        .finding_events(&b.finding_id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.to_state)
        .collect();
    assert_eq!(states, vec!["open", "resolved", "open", "accepted", "open"]);
    assert!(matches!(
        store
            .accept_finding(
                "nope",
                Acceptance {
                    by: "x".into(),
                    reason: "y".into(),
                    until: 1
                },
                1
            )
            .await,
        Err(StoreError::FindingUnknown(_))
    ));
    let log = store.audit_log().await.unwrap();
    assert_eq!(log.last().unwrap().action, "finding.accept");
}

#[tokio::test]
async fn discovered_devices_become_device_assets_keyed_by_agent_and_address() {
    let store = fresh().await;
    store.create_token(token("t1", 100), 0).await.unwrap();
    store.enroll_agent("t1", agent("a"), 1).await.unwrap();
    let device = |firmware: &str| crate::store::DeviceInput {
        address: "127.0.0.5".into(),
        name: "Schneider M221 (127.0.0.5)".into(),
        kind: "plc".into(),
        identity: serde_json::json!({ "vendor": "Schneider", "model": "M221", "firmware": firmware }),
        observations: vec![],
        controls: vec![ControlInput {
            name: "transit_encryption".into(),
            state: "plaintext".into(),
            reason: "modbus/502".into(),
            evidence: vec![],
        }],
    };
    let mut first = report("a", "r1", "1");
    first.devices = vec![device("1.0")];
    store.ingest_report(first, 10).await.unwrap();
    let before = store.changes(None).await.unwrap();
    let mut second = report("a", "r2", "1");
    second.devices = vec![device("1.1")];
    store.ingest_report(second, 20).await.unwrap();
    // Every asset the report touched, the device too, is listed as changed since.
    let after = store.changes(Some(before.watermark)).await.unwrap();
    assert_eq!(before.asset_count, 2);
    let mut changed = after.assets.clone();
    changed.sort();
    let mut all: Vec<String> = store.assets().await.unwrap().into_iter().map(|a| a.asset_id).collect();
    all.sort();
    assert_eq!(changed, all);
    let devices: Vec<_> = store
        .assets()
        .await
        .unwrap()
        .into_iter()
        .filter(|a| a.kind == "device")
        .collect();
    assert_eq!(devices.len(), 1);
    assert_eq!(devices[0].address, "127.0.0.5");
    assert_eq!(devices[0].facts["firmware"], "1.1");
    assert_eq!(devices[0].first_seen_at, 10);
    assert_eq!(devices[0].controls[0].state, "plaintext");
    // A known device's kind follows what discovery says of it now.
    let mut third = report("a", "r3", "1");
    third.devices = vec![device("1.1")];
    third.devices[0].kind = "hmi".into();
    store.ingest_report(third, 30).await.unwrap();
    let kind: String = sqlx::query_scalar("SELECT device_kind FROM assets WHERE kind = 'device'")
        .fetch_one(&store.pool)
        .await
        .unwrap();
    assert_eq!(kind, "hmi");
}

#[tokio::test]
async fn deltas_apply_on_their_base_and_a_gap_asks_for_a_resync() {
    let store = fresh().await;
    store.create_token(token("t1", 100), 0).await.unwrap();
    store.enroll_agent("t1", agent("a"), 1).await.unwrap();
    let numbered = |id: &str,
                    sequence: i64,
                    base: Option<i64>,
                    packages: &[(&str, &str)],
                    removed: &[&str]| {
        let mut r = report("a", id, "x");
        r.sequence = sequence;
        r.delta_base = base;
        r.observations = packages
            .iter()
            .map(|(name, version)| ObservationInput {
                category: "package".into(),
                name: (*name).into(),
                value: serde_json::json!({ "version": version }),
                evidence: vec![],
            })
            .collect();
        r.removed_observations = removed
            .iter()
            .map(|n| ("package".to_string(), (*n).to_string()))
            .collect();
        r
    };
    // A delta before any full report cannot apply.
    let early = store
        .ingest_report(numbered("r0", 1, Some(0), &[], &[]), 5)
        .await
        .unwrap();
    assert!(early.resync_required);
    store
        .ingest_report(
            numbered("r1", 1, None, &[("a", "1"), ("b", "1"), ("c", "1")], &[]),
            10,
        )
        .await
        .unwrap();
    // Delta 2 on 1: b changes, c goes, a is untouched.
    let two = store
        .ingest_report(numbered("r2", 2, Some(1), &[("b", "2")], &["c"]), 20)
        .await
        .unwrap();
    assert!(!two.resync_required);
    let versions = |assets: Vec<AssetRecord>| assets[0].observation_count;
    assert_eq!(versions(store.assets().await.unwrap()), 2);
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT name, value_json FROM observations ORDER BY name")
            .fetch_all(&store.pool)
            .await
            .unwrap();
    assert_eq!(
        rows,
        vec![
            ("a".into(), r#"{"version":"1"}"#.into()),
            ("b".into(), r#"{"version":"2"}"#.into())
        ]
    );
    // Report 3 was lost: delta 4 on 3 is refused and changes nothing.
    let gap = store
        .ingest_report(numbered("r4", 4, Some(3), &[("z", "1")], &["a"]), 30)
        .await
        .unwrap();
    assert!(gap.resync_required);
    assert_eq!(versions(store.assets().await.unwrap()), 2);
    // The full report that follows is accepted and sets the base again.
    store
        .ingest_report(numbered("r5", 5, None, &[("a", "1")], &[]), 40)
        .await
        .unwrap();
    assert!(
        !store
            .ingest_report(numbered("r6", 6, Some(5), &[], &[]), 50)
            .await
            .unwrap()
            .resync_required
    );
}

#[tokio::test]
async fn a_lease_is_held_by_one_holder_until_it_expires() {
    let store = fresh().await;
    assert!(store.take_lease("scans", "a", 0, 100).await.unwrap());
    assert!(!store.take_lease("scans", "b", 50, 150).await.unwrap());
    // The holder renews it; the other still cannot take it.
    assert!(store.take_lease("scans", "a", 90, 190).await.unwrap());
    assert!(!store.take_lease("scans", "b", 150, 250).await.unwrap());
    // Other work has its own lease.
    assert!(store.take_lease("evaluation", "b", 150, 250).await.unwrap());
    // a died: once its lease ran out, b takes over, and a comes back as the other.
    assert!(store.take_lease("scans", "b", 190, 290).await.unwrap());
    assert!(!store.take_lease("scans", "a", 200, 300).await.unwrap());
}

#[tokio::test]
async fn a_schedule_fired_by_one_collector_is_not_fired_again_by_another() {
    let store = fresh().await;
    let schedule = ScheduleRecord {
        name: "nightly".into(),
        kind: "evaluation".into(),
        cron: "0 2 * * *".into(),
        timezone: "UTC".into(),
        target: "all".into(),
        params: serde_json::json!({}),
        next_run_at: 100,
        created_by: "alice".into(),
        created_at: 0,
    };
    let event = AuditEvent {
        actor: "alice".into(),
        action: "scan.add".into(),
        subject: "nightly".into(),
        detail: serde_json::json!({}),
    };
    store.create_schedule(&schedule, event, 0).await.unwrap();
    let job = NewJob {
        schedule: "nightly".into(),
        kind: "evaluation".into(),
        agent_id: None,
        params: serde_json::json!({}),
    };
    // Both read the schedule as due at 100; the first fires it, the second finds it moved.
    let first = store
        .fire_schedule("nightly", std::slice::from_ref(&job), 1000, 101)
        .await
        .unwrap();
    let second = store
        .fire_schedule("nightly", std::slice::from_ref(&job), 1000, 102)
        .await
        .unwrap();
    assert_eq!((first.len(), second.len()), (1, 0));
    assert_eq!(store.jobs(Some("nightly")).await.unwrap().len(), 1);
    assert_eq!(store.schedules().await.unwrap()[0].next_run_at, 1000);
}

#[tokio::test]
async fn full_reports_record_additions_changes_and_removals_once_each() {
    let store = fresh().await;
    store.create_token(token("t1", 100), 0).await.unwrap();
    store.enroll_agent("t1", agent("a"), 1).await.unwrap();
    // More observations than one multi-row statement holds, and a key reported twice.
    let full = |id: &str, version_of: &dyn Fn(usize) -> String, count: usize| {
        let mut r = report("a", id, "x");
        r.observations = (0..count)
            .map(|i| ObservationInput {
                category: "package".into(),
                name: format!("p{i:04}"),
                value: serde_json::json!({ "version": version_of(i) }),
                evidence: vec![],
            })
            .collect();
        r.observations.push(ObservationInput {
            category: "package".into(),
            name: "p0000".into(),
            value: serde_json::json!({ "version": version_of(0) }),
            evidence: vec![],
        });
        r
    };
    store
        .ingest_report(full("r1", &|_| "1".into(), 1200), 10)
        .await
        .unwrap();
    // The same report again: nothing changes, nothing is recorded.
    store
        .ingest_report(full("r2", &|_| "1".into(), 1200), 20)
        .await
        .unwrap();
    // p0007 changes, p1199 is gone.
    store
        .ingest_report(
            full("r3", &|i| if i == 7 { "2".into() } else { "1".into() }, 1199),
            30,
        )
        .await
        .unwrap();
    let asset = store.assets().await.unwrap()[0].asset_id.clone();
    let changes = store.observation_changes(Some(&asset), 0).await.unwrap();
    let count = |change: &str, report: &str| {
        changes
            .iter()
            .filter(|c| c.change == change && c.report_id == report)
            .count()
    };
    assert_eq!(count("added", "r1"), 1200, "one addition per key");
    assert_eq!(changes.iter().filter(|c| c.report_id == "r2").count(), 0);
    assert_eq!(count("changed", "r3"), 1);
    assert_eq!(count("removed", "r3"), 1);
    let edit = changes.iter().find(|c| c.change == "changed").unwrap();
    assert_eq!(edit.name, "p0007");
    assert_eq!(edit.old_value.as_deref(), Some("{\"version\":\"1\"}"));
    let removed = changes.iter().find(|c| c.change == "removed").unwrap();
    assert_eq!(removed.name, "p1199");
    let observations = store.observations(&asset, &["package"]).await.unwrap();
    assert_eq!(observations.len(), 1199);
    assert_eq!(
        observations.iter().find(|o| o.name == "p0007").unwrap().value["version"],
        "2"
    );
    let assets = store.assets().await.unwrap();
    assert_eq!(assets[0].observation_count, 1199);
}

async fn stored(store: &SqlStore) -> Vec<(String, String, String)> {
    sqlx::query_as("SELECT name, value_json, evidence_json FROM observations ORDER BY name")
        .fetch_all(&store.pool)
        .await
        .unwrap()
}

/// Asserts that the stored digest is the one of the stored rows.
/// The one asset's row agrees with its rows: the digest, the observation count (kept by
/// ingest from what it added and removed, not counted) and the `controls` rows.
async fn digest_matches(store: &SqlStore) {
    let rows: Vec<(String, String, String, String)> =
        sqlx::query_as("SELECT category, name, value_json, evidence_json FROM observations")
            .fetch_all(&store.pool)
            .await
            .unwrap();
    let count = i64::try_from(rows.len()).unwrap();
    let mut expected = SetDigest::default();
    for (category, name, value, evidence) in rows {
        expected.toggle(&(category, name), &value, &evidence);
    }
    let (digest, observation_count, controls_json): (Option<String>, i64, String) =
        sqlx::query_as("SELECT observations_digest, observation_count, controls_json FROM assets")
            .fetch_one(&store.pool)
            .await
            .unwrap();
    assert_eq!(digest, Some(expected.hex()));
    assert_eq!(observation_count, count);
    let controls: Vec<(String, String)> =
        sqlx::query_as("SELECT name, state FROM controls ORDER BY name")
            .fetch_all(&store.pool)
            .await
            .unwrap();
    let mut on_row: Vec<(String, String)> =
        serde_json::from_str::<Vec<serde_json::Value>>(&controls_json)
            .unwrap()
            .iter()
            .map(|c| (c["name"].as_str().unwrap().into(), c["state"].as_str().unwrap().into()))
            .collect();
    on_row.sort();
    assert_eq!(controls, on_row);
}

/// A full report equal to an earlier one is still compared row by row when a delta or another
/// full report changed the rows in between (the digest of migration 0017 is kept by both to
/// name the stored rows), and a repeat of the last one records nothing.
#[tokio::test]
async fn a_full_report_equal_to_an_earlier_one_restores_what_changed_since() {
    let store = fresh().await;
    store.create_token(token("t1", 100), 0).await.unwrap();
    store.enroll_agent("t1", agent("a"), 1).await.unwrap();
    let make = |id: &str, sequence: i64, base: Option<i64>, rows: &[(&str, &str, &str)]| {
        let mut r = report("a", id, "x");
        r.sequence = sequence;
        r.delta_base = base;
        r.observations = rows
            .iter()
            .map(|(name, version, source)| ObservationInput {
                category: "package".into(),
                name: (*name).into(),
                value: serde_json::json!({ "version": version }),
                evidence: vec![crate::ingest::StoredEvidence {
                    source: (*source).into(),
                    line: 0,
                    probe: "packages".into(),
                    detail: String::new(),
                }],
            })
            .collect();
        r
    };
    let first = [("a", "1", "dpkg"), ("b", "1", "dpkg")];
    store.ingest_report(make("r1", 1, None, &first), 10).await.unwrap();
    let original = stored(&store).await;
    digest_matches(&store).await;
    // A delta changes b and adds c; the same full report as r1 must bring b back and drop c.
    store
        .ingest_report(
            make("r2", 2, Some(1), &[("b", "2", "dpkg"), ("c", "1", "dpkg")]),
            20,
        )
        .await
        .unwrap();
    digest_matches(&store).await;
    store.ingest_report(make("r3", 3, None, &first), 30).await.unwrap();
    assert_eq!(stored(&store).await, original);
    digest_matches(&store).await;
    // A delta that removes a and changes only b's evidence keeps the digest too.
    let mut removal = make("r3b", 4, Some(3), &[("b", "1", "rpm")]);
    removal.removed_observations = vec![("package".into(), "a".into())];
    store.ingest_report(removal, 35).await.unwrap();
    digest_matches(&store).await;
    store.ingest_report(make("r3c", 5, None, &first), 36).await.unwrap();
    assert_eq!(stored(&store).await, original);
    // Another full report changes only evidence; r1's rows again must restore it.
    store
        .ingest_report(make("r4", 6, None, &[("a", "1", "rpm"), ("b", "1", "dpkg")]), 40)
        .await
        .unwrap();
    assert_ne!(stored(&store).await, original);
    store.ingest_report(make("r5", 7, None, &first), 50).await.unwrap();
    assert_eq!(stored(&store).await, original);
    // The same rows once more: nothing is recorded.
    store.ingest_report(make("r6", 8, None, &first), 60).await.unwrap();
    let asset = store.assets().await.unwrap()[0].asset_id.clone();
    let changes = store.observation_changes(Some(&asset), 0).await.unwrap();
    let of = |report: &str| {
        changes
            .iter()
            .filter(|c| c.report_id == report)
            .map(|c| (c.name.clone(), c.change.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        of("r3"),
        vec![
            ("b".to_string(), "changed".to_string()),
            ("c".to_string(), "removed".to_string())
        ]
    );
    assert!(of("r6").is_empty(), "{changes:#?}");
    assert_eq!(store.assets().await.unwrap()[0].observation_count, 2);
    // Changed controls are rewritten on the asset row and in `controls`; an added one too.
    let mut other = make("r7", 9, None, &first);
    other.controls[0].state = "enforced".into();
    other.controls.push(ControlInput {
        name: "rest_encryption".into(),
        state: "encrypted".into(),
        reason: "luks".into(),
        evidence: vec![],
    });
    store.ingest_report(other, 70).await.unwrap();
    digest_matches(&store).await;
    let controls = store.assets().await.unwrap()[0].controls.clone();
    let states: Vec<_> = controls.iter().map(|c| c.state.as_str()).collect();
    assert_eq!(states, ["enforced", "encrypted"]);
}

fn event(action: &str) -> AuditEvent {
    AuditEvent {
        actor: "local:a@kommun.se".into(),
        action: action.into(),
        subject: "u1".into(),
        detail: serde_json::json!({}),
    }
}

async fn web_user(store: &dyn Store, id: &str, email: &str) {
    let user = NewUser {
        user_id: id.into(),
        email: email.into(),
        name: "N".into(),
        role: "owner".into(),
        enrol_token_hash: format!("token-{id}"),
        enrol_expires_at: 100,
    };
    store
        .create_user(user, event("user.add"), 1)
        .await
        .unwrap();
}

fn passkey(credential_id: &str, user_id: &str, at: i64) -> PasskeyRecord {
    PasskeyRecord {
        credential_id: credential_id.into(),
        user_id: user_id.into(),
        label: format!("key {credential_id}"),
        passkey_json: r#"{"counter":0}"#.into(),
        created_at: at,
        last_used_at: None,
    }
}

fn session(hash: &str, user_id: &str) -> SessionRecord {
    SessionRecord {
        session_hash: hash.into(),
        user_id: user_id.into(),
        csrf_token: "c".into(),
        created_at: 10,
        last_seen_at: 10,
    }
}

#[tokio::test]
async fn a_passkey_belongs_to_one_account_and_its_state_is_kept_after_each_use() {
    let store = fresh().await;
    web_user(&store, "u1", "a@kommun.se").await;
    web_user(&store, "u2", "b@kommun.se").await;
    assert!(
        store
            .add_passkey(passkey("c1", "u1", 5), event("web.passkey_add"), 5)
            .await
            .unwrap()
    );
    assert!(
        store
            .add_passkey(passkey("c2", "u1", 6), event("web.passkey_add"), 6)
            .await
            .unwrap()
    );
    // The same credential id for another account (or again) is refused and not audited.
    assert!(
        !store
            .add_passkey(passkey("c1", "u2", 7), event("web.passkey_add"), 7)
            .await
            .unwrap()
    );
    let mine = store.passkeys("u1").await.unwrap();
    assert_eq!(
        mine.iter().map(|p| p.credential_id.as_str()).collect::<Vec<_>>(),
        ["c1", "c2"]
    );
    assert!(store.passkeys("u2").await.unwrap().is_empty());

    // A sign-in with u1's credential for u2's session is refused and writes nothing.
    assert!(
        !store
            .passkey_sign_in(session("s0", "u2"), "c1", "{}", event("web.sign_in"), 8)
            .await
            .unwrap()
    );
    assert!(store.session("s0", 0, 0, 9).await.unwrap().is_none());
    // A good one stores the new counter, the last use and the session.
    assert!(
        store
            .passkey_sign_in(
                session("s1", "u1"),
                "c1",
                r#"{"counter":7}"#,
                event("web.sign_in"),
                9
            )
            .await
            .unwrap()
    );
    let used = &store.passkeys("u1").await.unwrap()[0];
    assert_eq!(used.passkey_json, r#"{"counter":7}"#);
    assert_eq!(used.last_used_at, Some(9));
    assert!(store.session("s1", 0, 0, 10).await.unwrap().is_some());

    // Removing is per account: u2 cannot remove u1's passkey.
    assert!(
        !store
            .remove_passkey("u2", "c2", event("web.passkey_remove"), 11)
            .await
            .unwrap()
    );
    assert!(
        store
            .remove_passkey("u1", "c2", event("web.passkey_remove"), 11)
            .await
            .unwrap()
    );
    assert_eq!(store.passkeys("u1").await.unwrap().len(), 1);

    // A disabled account's passkeys no longer sign in, and it gets no new ones.
    assert!(
        store
            .disable_user("a@kommun.se", event("user.disable"), 12)
            .await
            .unwrap()
    );
    assert!(
        !store
            .passkey_sign_in(session("s2", "u1"), "c1", "{}", event("web.sign_in"), 13)
            .await
            .unwrap()
    );
    assert!(
        !store
            .add_passkey(passkey("c3", "u1", 14), event("web.passkey_add"), 14)
            .await
            .unwrap()
    );
    let actions: Vec<String> = store
        .audit_log()
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .filter(|a| a.starts_with("web."))
        .collect();
    assert_eq!(
        actions,
        [
            "web.passkey_add",
            "web.passkey_add",
            "web.sign_in",
            "web.passkey_remove"
        ]
    );
    verify_audit_chain(&store.audit_log().await.unwrap()).unwrap();
}

#[tokio::test]
async fn a_passkey_challenge_is_taken_once_by_its_binding_and_expires() {
    let store = fresh().await;
    web_user(&store, "u1", "a@kommun.se").await;
    let challenge = |binding: &str, purpose, expires_at| PasskeyChallenge {
        binding: binding.into(),
        purpose,
        user_id: "u1".into(),
        label: "key".into(),
        state_json: format!("{{\"for\":\"{binding}\"}}"),
        expires_at,
    };
    store.put_passkey_challenge(challenge("b1", PasskeyPurpose::Register, 100), 0).await.unwrap();
    store.put_passkey_challenge(challenge("b1", PasskeyPurpose::SignIn, 100), 0).await.unwrap();
    // Another binding, or the other purpose, does not get it.
    assert!(
        store
            .take_passkey_challenge("b2", PasskeyPurpose::Register, 1)
            .await
            .unwrap()
            .is_none()
    );
    let taken = store
        .take_passkey_challenge("b1", PasskeyPurpose::Register, 1)
        .await
        .unwrap();
    assert_eq!(taken, Some(challenge("b1", PasskeyPurpose::Register, 100)));
    // Single use.
    assert!(
        store
            .take_passkey_challenge("b1", PasskeyPurpose::Register, 1)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .take_passkey_challenge("b1", PasskeyPurpose::SignIn, 1)
            .await
            .unwrap()
            .is_some()
    );
    // A newer start replaces the earlier challenge of the same binding.
    store.put_passkey_challenge(challenge("b3", PasskeyPurpose::SignIn, 100), 0).await.unwrap();
    let mut newer = challenge("b3", PasskeyPurpose::SignIn, 200);
    newer.state_json = "{\"newer\":true}".into();
    store.put_passkey_challenge(newer.clone(), 0).await.unwrap();
    assert_eq!(
        store
            .take_passkey_challenge("b3", PasskeyPurpose::SignIn, 1)
            .await
            .unwrap(),
        Some(newer)
    );
    // Expired: refused (and gone).
    store.put_passkey_challenge(challenge("b4", PasskeyPurpose::SignIn, 50), 0).await.unwrap();
    assert!(
        store
            .take_passkey_challenge("b4", PasskeyPurpose::SignIn, 50)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn a_totp_step_spent_outside_sign_in_is_not_accepted_again() {
    let store = fresh().await;
    web_user(&store, "u1", "a@kommun.se").await;
    assert!(store.spend_totp_step("u1", 10).await.unwrap());
    assert!(!store.spend_totp_step("u1", 10).await.unwrap());
    assert!(!store.spend_totp_step("u1", 9).await.unwrap());
    assert!(store.spend_totp_step("u1", 11).await.unwrap());
    assert!(!store.spend_totp_step("nobody", 12).await.unwrap());
}

fn system_draft(system: &str) -> FindingDraft {
    FindingDraft {
        rule: "unclassified-system",
        severity: crate::rules::Severity::Medium,
        system_id: Some(system.into()),
        asset_id: None,
        asset: String::new(),
        message: "m".into(),
        text: crate::i18n::Text::new("finding.unclassified-system", &[system]),
        evidence: vec![],
    }
}

fn subjects(assets: &[&str], systems: &[&str]) -> EvaluationScope {
    EvaluationScope::Subjects {
        assets: assets.iter().map(|a| (*a).to_string()).collect(),
        systems: systems.iter().map(|s| (*s).to_string()).collect(),
    }
}

async fn states(store: &SqlStore) -> BTreeMap<String, String> {
    store
        .findings()
        .await
        .unwrap()
        .into_iter()
        .map(|f| {
            let subject = f.asset_id.or(f.system_id).unwrap_or_default();
            (subject, f.state)
        })
        .collect()
}

async fn system_links(store: &SqlStore) -> Vec<(String, String)> {
    sqlx::query_as("SELECT system_id, asset_id FROM system_links ORDER BY system_id, asset_id")
        .fetch_all(store.pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn a_scoped_evaluation_writes_only_its_subjects_and_only_at_the_expected_generation() {
    let store = fresh().await;
    let generation = |store: &SqlStore| {
        let store = store.clone();
        async move { store.changes(None).await.unwrap().findings }
    };
    let all = [draft("a"), draft("b"), system_draft("paper")];
    let links = [
        ("journal".to_string(), "a".to_string()),
        ("journal".to_string(), "b".to_string()),
    ];
    let full = store
        .apply_evaluation(&EvaluationScope::All, &all, &links, None, 10)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((full.summary.opened, full.summary.judged), (3, None));
    assert_eq!(full.generation, generation(&store).await);

    // Asset a no longer fails and leaves the system; b is outside the scope and not given.
    let scoped = store
        .apply_evaluation(&subjects(&["a"], &[]), &[], &[], Some(full.generation), 20)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((scoped.summary.resolved, scoped.summary.open), (1, 2));
    assert_eq!(
        scoped.summary.judged,
        Some(crate::store::Judged {
            assets: 1,
            systems: 0
        })
    );
    let expected: BTreeMap<String, String> = [
        ("a".to_string(), "resolved".to_string()),
        ("b".to_string(), "open".to_string()),
        ("paper".to_string(), "open".to_string()),
    ]
    .into();
    assert_eq!(states(&store).await, expected);
    assert_eq!(
        system_links(&store).await,
        [("journal".to_string(), "b".to_string())]
    );
    let recorded = store.evaluations().await.unwrap();
    assert_eq!(recorded.last().unwrap().1, scoped.summary);

    // An accepted system finding whose acceptance expired reopens in a scope naming it, and
    // an asset draft comes back; the system-level finding of `paper` is not the asset's.
    let paper = store
        .findings()
        .await
        .unwrap()
        .into_iter()
        .find(|f| f.system_id.as_deref() == Some("paper"))
        .unwrap();
    let acceptance = Acceptance {
        by: "Bo".into(),
        reason: "r".into(),
        until: 25,
    };
    store
        .accept_finding(&paper.finding_id, acceptance, 21)
        .await
        .unwrap();
    let accepted = store.accepted_findings().await.unwrap();
    assert_eq!(
        accepted,
        [AcceptedFinding {
            finding_key: system_draft("paper").key(),
            system_id: Some("paper".into()),
            asset_id: None,
            accepted_until: Some(25),
        }]
    );
    let again = store
        .apply_evaluation(
            &subjects(&["a"], &["paper"]),
            &[draft("a"), system_draft("paper")],
            &[("journal".to_string(), "a".to_string())],
            Some(scoped.generation),
            30,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!((again.summary.reopened, again.summary.open), (2, 3));
    assert!(store.accepted_findings().await.unwrap().is_empty());
    assert_eq!(system_links(&store).await.len(), 2);

    // Someone else wrote findings or links since: the scoped write is refused, unchanged.
    store.apply_findings(&all, 40).await.unwrap();
    let after_full = generation(&store).await;
    assert!(after_full > again.generation);
    store.replace_system_links(&links).await.unwrap();
    assert!(generation(&store).await > after_full);
    let refused = store
        .apply_evaluation(&subjects(&["b"], &[]), &[], &[], Some(again.generation), 50)
        .await
        .unwrap();
    assert!(refused.is_none());
    assert_eq!(states(&store).await["b"], "open");
}

#[tokio::test]
async fn changes_list_what_an_evaluation_reads_written_after_the_watermark_and_assets_are_read_by_id()
 {
    let store = fresh().await;
    let start = store.changes(None).await.unwrap();
    assert_eq!((start.asset_count, start.agent_count), (0, 0));
    store.create_token(token("t1", 100), 0).await.unwrap();
    store.enroll_agent("t1", agent("a"), 1).await.unwrap();
    let first = store
        .ingest_report(report("a", "r1", "1.0"), 2)
        .await
        .unwrap();
    let since_start = store.changes(Some(start.watermark)).await.unwrap();
    assert_eq!(since_start.assets, std::slice::from_ref(&first.asset_id));
    assert_eq!(since_start.agents, ["a"]);
    assert_eq!((since_start.asset_count, since_start.agent_count), (1, 1));
    assert!(since_start.watermark > start.watermark);
    // Without a watermark nothing is listed, but the counts and generations are read.
    let none = store.changes(None).await.unwrap();
    assert!(none.assets.is_empty() && none.agents.is_empty());
    assert_eq!(none.watermark, since_start.watermark);

    // A heartbeat changes nothing the evaluation reads; a report and a renewal do.
    let heartbeat = Heartbeat {
        agent_version: "2".into(),
        spool_depth: 0,
        spool_dropped: 0,
    };
    store.touch_agent("a", &heartbeat, 3).await.unwrap();
    let quiet = store.changes(Some(none.watermark)).await.unwrap();
    assert_eq!(quiet, Changes { assets: vec![], agents: vec![], ..none.clone() });
    store
        .ingest_report(report("a", "r2", "1.1"), 4)
        .await
        .unwrap();
    let reported = store.changes(Some(quiet.watermark)).await.unwrap();
    assert_eq!(reported.assets, std::slice::from_ref(&first.asset_id));
    assert!(reported.agents.is_empty());
    let renewed = RenewedCertificate {
        presented_sha256: "sha-a".into(),
        cert_sha256: "sha-a2".into(),
        cert_not_after: 99,
    };
    store.renew_agent_certificate("a", &renewed, 5).await.unwrap();
    let renewal = store.changes(Some(reported.watermark)).await.unwrap();
    assert_eq!((renewal.assets.len(), renewal.agents.len()), (0, 1));
    let revoke = AuditEvent {
        actor: "alice".into(),
        action: "agent.revoke".into(),
        subject: "a".into(),
        detail: serde_json::json!({}),
    };
    store.revoke_agent("a", revoke, 6).await.unwrap();
    let revoked = store.changes(Some(renewal.watermark)).await.unwrap();
    assert_eq!(revoked.agents, ["a"]);
    assert_eq!(revoked.register, start.register, "the register was not written");

    let by_id = store
        .assets_by_id(&[first.asset_id.clone(), "unknown".into()])
        .await
        .unwrap();
    assert_eq!(by_id, store.assets().await.unwrap());
    assert_eq!(by_id[0].last_report_id, "r2");
}

fn register_system(id: &str) -> crate::catalog::System {
    crate::catalog::System {
        id: id.into(),
        name: id.into(),
        description: String::new(),
        system_owner: None,
        system_administrator: None,
        information_owner: None,
        classification: None,
        critical_to_society: false,
        business_critical: false,
        links: crate::catalog::LinkRules::default(),
        attestations: vec![],
    }
}

#[tokio::test]
async fn every_write_of_the_register_takes_a_new_change_number() {
    let store = fresh().await;
    let before = store.changes(None).await.unwrap();
    store
        .replace_catalog(&[register_system("journal")], event("catalog.import"), 1)
        .await
        .unwrap();
    let imported = store.changes(None).await.unwrap();
    assert!(imported.register > before.register);
    assert_eq!(imported.register, imported.watermark);
    let classification = crate::catalog::Classification {
        k: 2,
        r: 1,
        t: 1,
        s: None,
        classified_at: time::macros::date!(2026 - 12 - 01),
        classified_by: "CISO".into(),
        rationale: String::new(),
    };
    assert!(
        store
            .review_classification("journal", classification, event("review"), 2)
            .await
            .unwrap()
    );
    let reviewed = store.changes(None).await.unwrap();
    assert!(reviewed.register > imported.register);
    // A write of assets or agents moves the watermark, not the register's number.
    store.create_token(token("t1", 100), 0).await.unwrap();
    store.enroll_agent("t1", agent("a"), 3).await.unwrap();
    let enrolled = store.changes(None).await.unwrap();
    assert_eq!(enrolled.register, reviewed.register);
    assert!(enrolled.watermark > reviewed.watermark);
}

/// A writer that took its change number, and wrote, before a reader read the watermark but
/// committed after it: the reader does not see the write then, and finds it in the next
/// round's changes because its number is above the watermark read.
#[tokio::test]
async fn a_write_committed_after_the_watermark_was_read_is_found_by_the_next_round() {
    let (store, _dir) = fresh_shared().await;
    store.create_token(token("t1", 100), 0).await.unwrap();
    store.enroll_agent("t1", agent("a"), 1).await.unwrap();
    let asset = store
        .ingest_report(report("a", "r1", "1.0"), 2)
        .await
        .unwrap()
        .asset_id;
    let round_one = store.changes(None).await.unwrap();

    let mut writer = store.write().await.unwrap();
    let number = next_change(&mut writer).await.unwrap();
    sqlx::query("UPDATE assets SET revision = revision + 1, change_number = $1 WHERE asset_id = $2")
        .bind(number)
        .bind(&asset)
        .execute(&mut *writer)
        .await
        .unwrap();
    // The next round reads while the writer is still open.
    let round_two = store.changes(Some(round_one.watermark)).await.unwrap();
    assert!(round_two.assets.is_empty(), "an uncommitted write is not seen");
    assert!(round_two.watermark < number);
    writer.commit().await.unwrap();

    let round_three = store.changes(Some(round_two.watermark)).await.unwrap();
    assert_eq!(round_three.assets, [asset]);
    assert_eq!(round_three.watermark, number);
}

#[tokio::test]
async fn agents_are_listed_in_enrolment_order_across_pages_as_each_reads_alone() {
    let store = fresh().await;
    // Enrolled in the reverse order of their ids, so the listing's order is not the key's
    // (the listing reads pages by agent id, then orders by enrolment).
    let ids = ["e", "d", "c", "b", "a"];
    for (at, id) in (1..).zip(ids) {
        store.create_token(token(id, 100), 0).await.unwrap();
        let mut new = agent(id);
        new.labels.insert("site".into(), format!("s-{id}"));
        store.enroll_agent(id, new, at).await.unwrap();
    }
    let revoke = AuditEvent {
        actor: "alice".into(),
        action: "agent.revoke".into(),
        subject: "c".into(),
        detail: serde_json::json!({ "reason": "lost" }),
    };
    assert!(store.revoke_agent("c", revoke, 9).await.unwrap());
    let listed = store.agents().await.unwrap();
    let order: Vec<&str> = listed.iter().map(|a| a.agent_id.as_str()).collect();
    assert_eq!(order, ids);
    for record in &listed {
        assert_eq!(store.agent(&record.agent_id).await.unwrap().as_ref(), Some(record));
        assert_eq!(record.labels["site"], format!("s-{}", record.agent_id));
    }
    let revoked = &listed[2];
    assert_eq!(
        (revoked.revoked_at, revoked.revoked_by.as_deref(), revoked.revoke_reason.as_deref()),
        (Some(9), Some("alice"), Some("lost"))
    );
    assert_eq!(store.agent("nobody").await.unwrap(), None);
}

#[tokio::test]
async fn open_findings_are_counted_by_system_without_reading_them() {
    let store = fresh().await;
    store
        .apply_findings(
            &[draft("a"), draft("b"), draft("c"), system_draft("payroll")],
            10,
        )
        .await
        .unwrap();
    // One resolved (b) and one accepted (c) are not open; a finding of no system is not
    // counted.
    let mut no_system = draft("d");
    no_system.system_id = None;
    store
        .apply_findings(
            &[draft("a"), draft("c"), system_draft("payroll"), no_system],
            20,
        )
        .await
        .unwrap();
    let c = store
        .findings()
        .await
        .unwrap()
        .into_iter()
        .find(|f| f.asset_id.as_deref() == Some("c"))
        .unwrap();
    let acceptance = Acceptance {
        by: "alice".into(),
        reason: "r".into(),
        until: 1_000,
    };
    store
        .accept_finding(&c.finding_id, acceptance, 30)
        .await
        .unwrap();
    let counts = store.open_findings_by_system().await.unwrap();
    assert_eq!(
        counts,
        HashMap::from([("journal".to_string(), 1), ("payroll".to_string(), 1)])
    );
}

/// Migration 0018 counts every asset's observations from its rows, whatever the column held
/// (ingest keeps the count from then on instead of counting).
#[tokio::test]
async fn migration_0018_sets_every_observation_count_from_the_rows() {
    let store = fresh().await;
    store.create_token(token("t1", 100), 0).await.unwrap();
    store.enroll_agent("t1", agent("a"), 1).await.unwrap();
    let mut first = report("a", "r1", "1");
    first.observations.push(ObservationInput {
        category: "package".into(),
        name: "zlib".into(),
        value: serde_json::json!({ "version": "1" }),
        evidence: vec![],
    });
    store.ingest_report(first, 10).await.unwrap();
    sqlx::query("UPDATE assets SET observation_count = 0")
        .execute(&store.pool)
        .await
        .unwrap();
    let migrator = match store.dialect {
        Dialect::Sqlite => &SQLITE_MIGRATOR,
        Dialect::Postgres => &POSTGRES_MIGRATOR,
    };
    let migration = migrator.iter().find(|m| m.version == 18).unwrap();
    sqlx::raw_sql(&migration.sql)
        .execute(&store.pool)
        .await
        .unwrap();
    assert_eq!(store.assets().await.unwrap()[0].observation_count, 2);
}
