//! The collector on PostgreSQL (issue 15): the everyday flow, several `serve` processes on one
//! database (tokens redeemed within their budget, a report replayed to another replica stored
//! once, scheduled work fired once across a `kill -9` of the collector doing it), and the
//! database stopped and restarted under load. Each test has its own database on a scratch
//! cluster (tillsyn_collector::store::pg_scratch; scripts/deps/postgres.sh installs the server):
//! without PostgreSQL these tests fail, they are never skipped.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use tillsyn_collector::store::pg_scratch::ScratchCluster;

use crate::faults::{assert_once_in_order, finish, fixture_root, wait_for, wait_until};
use crate::harness::{Agent, Collector, host_of, ok, report, sample_register};

async fn fresh_database() -> String {
    ScratchCluster::shared()
        .unwrap()
        .fresh_database()
        .await
        .unwrap()
}

async fn scalar(collector: &Collector, sql: &str) -> i64 {
    let mut db = collector.db().await;
    sqlx::query_scalar(sql).fetch_one(&mut db).await.unwrap()
}

#[tokio::test]
async fn an_agent_enrolls_reports_and_gets_findings_with_the_collector_on_postgres() {
    let url = fresh_database().await;
    let collector = Collector::start_on_postgres(&url, &[]);
    let agent = collector.enroll();
    let root = fixture_root("ward4-medrobot-gw");
    let out = agent.run_once(Some(root.path()));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let assets = collector.assets();
    assert_eq!(
        host_of(&assets, &agent.agent_id())["hostname"],
        "ward4-medrobot-gw"
    );
    let imported = collector.import("register.csv", &sample_register());
    assert!(
        imported.status.success(),
        "{}",
        String::from_utf8_lossy(&imported.stderr)
    );
    let findings = collector.findings(&[]);
    assert!(!findings.is_empty(), "the register's systems have findings");
    // Stored in PostgreSQL, not in the directory's SQLite file.
    assert_eq!(collector.stored_count().await, 1);
    assert!(scalar(&collector, "SELECT COUNT(*) FROM findings").await > 0);
    assert!(scalar(&collector, "SELECT COUNT(*) FROM systems").await > 0);
    let file = collector.dir.path().join("tillsyn.db");
    let mut sqlite = {
        use sqlx::Connection;
        sqlx::AnyConnection::connect(&format!("sqlite://{}?mode=ro", file.display()))
            .await
            .unwrap()
    };
    let in_file: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM reports")
        .fetch_one(&mut sqlite)
        .await
        .unwrap();
    assert_eq!(in_file, 0);
}

#[tokio::test]
async fn two_collectors_on_one_database_redeem_store_and_fire_once_across_a_kill() {
    let url = fresh_database().await;
    let mut a = Collector::start_on_postgres(&url, &[("background_period_seconds", "1")]);
    let mut b = a.replica();
    let agents = enrollments_across_replicas(&a, &b);
    a_replay_to_the_other_replica_is_stored_once(&a, &b, &agents).await;
    scheduled_work_survives_a_kill_of_its_holder(&mut a, &mut b).await;
}

/// A token for 3 hosts, 6 enrollments at once, half to each replica: exactly 3 succeed.
/// Returns the agents, the enrolled ones first.
fn enrollments_across_replicas(a: &Collector, b: &Collector) -> Vec<Agent> {
    let token = a.token(&["--uses", "3"]);
    let agents: Vec<Agent> = (0..6)
        .map(|_| Agent {
            dir: tempfile::tempdir().unwrap(),
        })
        .collect();
    let outcomes: Vec<std::process::Output> = std::thread::scope(|scope| {
        let handles: Vec<_> = agents
            .iter()
            .enumerate()
            .map(|(i, agent)| {
                let (collector, token) = (if i % 2 == 0 { a } else { b }, &token);
                scope.spawn(move || agent.enroll(collector, token))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for out in outcomes.iter().filter(|o| !o.status.success()) {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("no uses left"), "{stderr}");
    }
    let (mut enrolled, refused): (Vec<_>, Vec<_>) = agents
        .into_iter()
        .zip(&outcomes)
        .partition(|(_, out)| out.status.success());
    assert_eq!(enrolled.len(), 3, "{outcomes:#?}");
    assert_eq!(a.agents().len(), 3);
    enrolled.extend(refused);
    enrolled.into_iter().map(|(agent, _)| agent).collect()
}

/// A report sent to one replica and replayed to the other is stored once.
async fn a_replay_to_the_other_replica_is_stored_once(
    a: &Collector,
    b: &Collector,
    agents: &[Agent],
) {
    let agent = &agents[0];
    let id = uuid::Uuid::now_v7().to_string();
    let first = agent
        .client(a)
        .await
        .report(report(&id, "h"))
        .await
        .unwrap()
        .into_inner();
    let replay = agent
        .client(b)
        .await
        .report(report(&id, "h"))
        .await
        .unwrap()
        .into_inner();
    assert!(!first.duplicate && replay.duplicate);
    assert_eq!(first.asset_id, replay.asset_id);
    assert_eq!(a.stored_count().await, 1);
}

/// An evaluation every 2 s, fired by whichever collector holds the lease; the holder is
/// killed and the other takes over: no slot fires twice, no firing is left undone.
async fn scheduled_work_survives_a_kill_of_its_holder(a: &mut Collector, b: &mut Collector) {
    ok(
        "tillsyn-collector",
        &[
            "--dir",
            a.path(),
            "scan",
            "add",
            "every-2s",
            "--kind",
            "evaluation",
            "--cron",
            "*/2 * * * * *",
            "--timezone",
            "UTC",
        ],
    );
    let jobs = "SELECT COUNT(*) FROM jobs WHERE schedule = 'every-2s'";
    wait_until("three firings", async || scalar(a, jobs).await >= 3).await;
    let holder: String = {
        let mut db = a.db().await;
        sqlx::query_scalar("SELECT holder FROM leases WHERE name = 'scans'")
            .fetch_one(&mut db)
            .await
            .unwrap()
    };
    let holder_pid: u32 = holder.split(':').nth(1).unwrap().parse().unwrap();
    let (killed, survivor) = if a.pid() == Some(holder_pid) {
        (a, b)
    } else {
        assert_eq!(
            b.pid(),
            Some(holder_pid),
            "the lease names a running collector"
        );
        (b, a)
    };
    killed.kill();
    let killed_at = tillsyn_collector::server::now_ms();
    let after_kill = format!("{jobs} AND created_at > {killed_at}");
    wait_until(
        "the other collector to take over and fire three times",
        async || scalar(survivor, &after_kill).await >= 3,
    )
    .await;
    // Nothing lost: every firing but the newest has been evaluated and closed.
    let open = "SELECT COUNT(*) FROM jobs WHERE state <> 'done'
                AND created_at < (SELECT MAX(created_at) FROM jobs)";
    wait_until("earlier evaluation jobs to be done", async || {
        scalar(survivor, open).await == 0
    })
    .await;
    let new_holder: String = {
        let mut db = survivor.db().await;
        sqlx::query_scalar("SELECT holder FROM leases WHERE name = 'scans'")
            .fetch_one(&mut db)
            .await
            .unwrap()
    };
    assert_ne!(new_holder, holder);
    survivor.kill();
    // Nothing fired twice: at most one job per 2 s slot of the cron expression.
    let created: Vec<i64> = {
        let mut db = survivor.db().await;
        sqlx::query_scalar(
            "SELECT created_at FROM jobs WHERE schedule = 'every-2s' ORDER BY created_at",
        )
        .fetch_all(&mut db)
        .await
        .unwrap()
    };
    let mut slots = BTreeSet::new();
    for at in &created {
        assert!(
            slots.insert(at / 2000),
            "two firings in one slot: {created:?}"
        );
    }
    eprintln!(
        "two collectors: {} firings, {} after the lease holder was killed, none twice",
        created.len(),
        created.iter().filter(|at| **at > killed_at).count()
    );
}

#[tokio::test]
async fn postgres_stopped_and_restarted_under_load_every_report_is_stored_once() {
    const AGENTS: usize = 3;
    const PER_AGENT: u32 = 30;
    let cluster = ScratchCluster::start().unwrap();
    let url = cluster.fresh_database().await.unwrap();
    let collector = Collector::start_on_postgres(&url, &[]);
    let agents: Vec<Agent> = (0..AGENTS).map(|_| collector.enroll()).collect();
    let roots: Vec<_> = (0..AGENTS)
        .map(|i| fixture_root(&format!("ward{i}-gw")))
        .collect();
    for agent in &agents {
        agent.tune_retry(50, 500);
    }
    let children: Vec<_> = agents
        .iter()
        .zip(&roots)
        .map(|(agent, root)| agent.spawn_reports(root.path(), PER_AGENT, 240))
        .collect();
    let total = u64::from(PER_AGENT) * AGENTS as u64;
    wait_until("a third of the reports", async || {
        collector.stored_count().await >= total / 3
    })
    .await;
    cluster.stop().unwrap();
    // Agents are told UNAVAILABLE and keep what they made in their spool.
    let spooled = wait_for(Duration::from_secs(30), async || {
        agents.iter().map(Agent::spool_depth).sum::<usize>() >= AGENTS
    })
    .await;
    assert!(
        spooled,
        "reports pile up in the spools while the database is down"
    );
    cluster.restart().unwrap();
    let mut stderr = String::new();
    for child in children {
        stderr.push_str(&finish(child).await);
    }
    let stored = collector.stored_reports().await;
    let expected: BTreeMap<String, usize> = agents
        .iter()
        .map(|a| (a.agent_id(), PER_AGENT as usize))
        .collect();
    assert_once_in_order(&stored, &expected);
    assert!(
        stderr.contains("unavailable"),
        "the agents saw the outage: {stderr}"
    );
    for agent in &agents {
        assert_eq!(agent.spool_depth(), 0);
        assert_eq!(agent.spool_dropped(), 0);
    }
    eprintln!(
        "PostgreSQL stopped and restarted under load: {} reports, each stored once",
        stored.len()
    );
}
