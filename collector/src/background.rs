//! The collector's own recurring work while serving: fire due schedules, run the evaluation
//! jobs they create, and keep findings current. `round` takes the time as a parameter so tests
//! drive it with a controllable clock. Findings are kept current by an [`Evaluator`], which
//! judges again only what changed since its last round (see [`crate::evaluator`]).

use std::sync::Arc;
use std::time::Duration;

use crate::evaluator::Evaluator;
use crate::rules::RuleConfig;
use crate::scans;
use crate::store::Store;

/// Errors of one round (logged by the loop, returned to tests).
#[derive(Debug, thiserror::Error)]
pub enum RoundError {
    /// Scheduling failed.
    #[error(transparent)]
    Scan(#[from] scans::ScanError),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// One round at `now_ms`: fires due schedules, runs evaluation jobs, evaluates. Returns the
/// number of jobs created.
pub async fn round(
    store: &dyn Store,
    evaluator: &mut Evaluator,
    now_ms: i64,
) -> Result<usize, RoundError> {
    let created = scans::tick(store, now_ms).await?;
    evaluate(store, evaluator, now_ms).await?;
    Ok(created.len())
}

/// Runs the evaluation jobs schedules created (closing each) as full evaluations, then brings
/// the findings current (incrementally once the evaluator holds the estate); the evaluation
/// also reopens findings whose acceptance expired.
async fn evaluate(
    store: &dyn Store,
    evaluator: &mut Evaluator,
    now_ms: i64,
) -> Result<(), RoundError> {
    let evaluation_jobs: Vec<_> = store
        .jobs(None)
        .await?
        .into_iter()
        .filter(|j| j.agent_id.is_none() && j.state == "pending")
        .collect();
    for job in &evaluation_jobs {
        // A scheduled evaluation judges the whole estate, as it always did.
        evaluator.forget();
        let error = evaluator
            .round(store, now_ms)
            .await
            .err()
            .map(|e| e.to_string());
        store
            .complete_job("", &job.job_id, error.as_deref(), now_ms)
            .await?;
    }
    if evaluation_jobs.is_empty() {
        let clock = std::time::Instant::now();
        let round = evaluator.round(store, now_ms).await?;
        // One line per round that judged anything: what an operator sizing a collector (and
        // the fleet simulator's reader) needs to see the evaluation's share of the work.
        if round.full || !round.judged.assets.is_empty() || !round.judged.systems.is_empty() {
            tracing::info!(
                full = round.full,
                assets = round.judged.assets.len(),
                systems = round.judged.systems.len(),
                opened = round.summary.opened,
                resolved = round.summary.resolved,
                ms = clock.elapsed().as_millis(),
                "findings brought current"
            );
        }
    }
    Ok(())
}

/// Names of the leases on the collector's scheduled work.
pub const LEASES: [&str; 2] = ["scans", "evaluation"];

/// A round of the work whose lease `holder` holds (taking or renewing each for `lease_ms`):
/// with several collectors on one database each kind of work runs on one of them, and moves
/// to another once its holder stops renewing. Returns the jobs created, `None` if this
/// collector held neither lease.
pub async fn leased_round(
    store: &dyn Store,
    evaluator: &mut Evaluator,
    holder: &str,
    lease_ms: i64,
    now_ms: i64,
) -> Result<Option<usize>, RoundError> {
    let until = now_ms.saturating_add(lease_ms);
    let mut created = None;
    if store.take_lease(LEASES[0], holder, now_ms, until).await? {
        created = Some(scans::tick(store, now_ms).await?.len());
    }
    if store.take_lease(LEASES[1], holder, now_ms, until).await? {
        evaluate(store, evaluator, now_ms).await?;
        created.get_or_insert(0);
    } else {
        // Another collector evaluates now; what this one held goes stale.
        evaluator.forget();
    }
    Ok(created)
}

/// Runs leased rounds every `period` until the task is dropped; failures are logged, not
/// fatal. A lease lasts three periods, so a collector that died is replaced within that.
pub async fn run(store: Arc<dyn Store>, rules: RuleConfig, period: Duration) {
    let holder = format!(
        "{}:{}:{}",
        std::fs::read_to_string("/etc/hostname")
            .unwrap_or_default()
            .trim(),
        std::process::id(),
        uuid::Uuid::now_v7().simple()
    );
    let lease_ms = i64::try_from(period.as_millis().saturating_mul(3)).unwrap_or(i64::MAX);
    let mut tick = tokio::time::interval(period);
    let mut evaluator = Evaluator::new(rules);
    loop {
        tick.tick().await;
        let now = crate::server::now_ms();
        match leased_round(store.as_ref(), &mut evaluator, &holder, lease_ms, now).await {
            Ok(Some(jobs)) if jobs > 0 => tracing::info!(jobs, "scheduled jobs created"),
            Ok(_) => {}
            Err(error) => {
                // Judge the whole estate again next time rather than trust a half-done round.
                evaluator.forget();
                tracing::warn!(%error, "background round failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scans::{JobKind, JobParams, ScheduleSpec};
    use crate::store::{NewAgent, NewToken, SqliteStore};

    fn ms(text: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(text)
            .unwrap()
            .timestamp_millis()
    }

    async fn store_with_agents() -> SqliteStore {
        let store = SqliteStore::in_memory().await.unwrap();
        for (i, site) in ["ward4", "ward5"].iter().enumerate() {
            let hash = format!("t{i}");
            store
                .create_token(
                    NewToken {
                        token_hash: hash.clone(),
                        created_at: 0,
                        expires_at: i64::MAX,
                        created_by: "x".into(),
                    },
                    0,
                )
                .await
                .unwrap();
            let agent = NewAgent {
                agent_id: format!("agent-{site}"),
                hostname: (*site).into(),
                cert_sha256: hash.clone(),
                cert_not_after: 0,
                labels: [("site".to_string(), (*site).to_string())].into(),
                agent_version: "1".into(),
            };
            store.enroll_agent(&hash, agent, 0).await.unwrap();
        }
        store
    }

    fn spec(name: &str, kind: JobKind, target: &str) -> ScheduleSpec {
        ScheduleSpec {
            name: name.into(),
            kind,
            cron: "0 2 * * 1".into(),
            timezone: "Europe/Stockholm".into(),
            target: target.into(),
            params: JobParams::default(),
        }
    }

    #[tokio::test]
    async fn schedules_fire_at_their_local_time_and_once_per_firing() {
        let store = store_with_agents().await;
        let now = ms("2026-11-24T12:00:00Z");
        let first = scans::add(
            &store,
            spec("weekly-ward4", JobKind::Inventory, "label:site=ward4"),
            "alice",
            now,
        )
        .await
        .unwrap();
        assert_eq!(first, ms("2026-11-30T01:00:00Z"));
        scans::add(
            &store,
            spec("weekly-eval", JobKind::Evaluation, "all"),
            "alice",
            now,
        )
        .await
        .unwrap();
        let mut rules = Evaluator::new(RuleConfig::default());

        // Just before Monday 02:00 Stockholm: nothing.
        assert_eq!(
            round(&store, &mut rules, ms("2026-11-30T00:59:59Z"))
                .await
                .unwrap(),
            0
        );
        // At 02:00 local: one inventory job for the ward4 agent, one evaluation.
        assert_eq!(
            round(&store, &mut rules, ms("2026-11-30T01:00:00Z"))
                .await
                .unwrap(),
            2
        );
        let jobs = store.jobs(Some("weekly-ward4")).await.unwrap();
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].agent_id.as_deref(), Some("agent-ward4"));
        let eval = store.jobs(Some("weekly-eval")).await.unwrap();
        assert_eq!(
            eval[0].state, "done",
            "the collector runs evaluations itself"
        );
        // The same minute again: no second firing.
        assert_eq!(
            round(&store, &mut rules, ms("2026-11-30T01:00:30Z"))
                .await
                .unwrap(),
            0
        );
        // The collector was down for three weeks: one firing, not three.
        assert_eq!(
            round(&store, &mut rules, ms("2026-12-22T09:00:00Z"))
                .await
                .unwrap(),
            2
        );
        let next = store.schedules().await.unwrap()[0].next_run_at;
        assert_eq!(next, ms("2026-12-28T01:00:00Z"));
    }

    #[tokio::test]
    async fn jobs_are_delivered_once_and_only_their_agent_can_close_them() {
        let store = store_with_agents().await;
        let now = ms("2026-11-24T12:00:00Z");
        scans::add(
            &store,
            spec("all-hosts", JobKind::Inventory, "all"),
            "alice",
            now,
        )
        .await
        .unwrap();
        let ids = scans::run_now(&store, "all-hosts", "alice", now)
            .await
            .unwrap();
        assert_eq!(ids.len(), 2);
        let pulled = store.pull_jobs("agent-ward4", now).await.unwrap();
        assert_eq!(pulled.len(), 1);
        assert!(
            store
                .pull_jobs("agent-ward4", now)
                .await
                .unwrap()
                .is_empty()
        );
        let job = &pulled[0].job_id;
        assert!(
            !store
                .complete_job("agent-ward5", job, None, now)
                .await
                .unwrap()
        );
        assert!(
            store
                .complete_job("agent-ward4", job, Some("no inventory"), now)
                .await
                .unwrap()
        );
        let history = store.jobs(Some("all-hosts")).await.unwrap();
        assert!(
            history
                .iter()
                .any(|j| j.state == "failed" && j.error.as_deref() == Some("no inventory"))
        );
    }

    #[tokio::test]
    async fn bad_schedules_are_refused_with_the_reason() {
        let store = store_with_agents().await;
        let mut bad = spec("x", JobKind::Inventory, "all");
        bad.cron = "every monday".into();
        assert!(
            scans::add(&store, bad, "a", 0)
                .await
                .unwrap_err()
                .to_string()
                .contains("every monday")
        );
        let err = scans::add(&store, spec("y", JobKind::Inventory, "agent:ghost"), "a", 0)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("ghost"), "{err}");
        let err = scans::add(&store, spec("z", JobKind::Discovery, "all"), "a", 0)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("discovery-target"), "{err}");
        assert!(store.schedules().await.unwrap().is_empty());
    }
}
