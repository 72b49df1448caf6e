//! Fault injection around delivery: a collector that is down, killed (`kill -9`) mid-stream and
//! restarted on the same port and state directory. The agent's spool must deliver every report
//! exactly once and in order. Counts come straight from the collector's SQLite file (read-only).
//! No timing assertions: the figures are printed with `eprintln!` so they can be quoted.

use std::collections::BTreeMap;
use std::process::Child;
use std::time::{Duration, Instant};

use crate::harness::{Agent, Collector};

/// Upper bound for any wait in this module; only reached when something is broken.
pub(crate) const PATIENCE: Duration = Duration::from_mins(5);

/// A fixture root: the agent reads a hostname and nothing else, so inventories are fast.
pub(crate) fn fixture_root(hostname: &str) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("etc")).unwrap();
    std::fs::write(root.path().join("etc/hostname"), format!("{hostname}\n")).unwrap();
    root
}

/// Polls `done` until it holds, failing the test after [`PATIENCE`].
pub(crate) async fn wait_until<F: AsyncFnMut() -> bool>(what: &str, done: F) {
    assert!(wait_for(PATIENCE, done).await, "gave up waiting for {what}");
}

/// Polls `done` for at most `limit`; returns whether it came true.
pub(crate) async fn wait_for<F: AsyncFnMut() -> bool>(limit: Duration, mut done: F) -> bool {
    let start = Instant::now();
    while !done().await {
        if start.elapsed() >= limit {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    true
}

/// Waits for a background agent to exit and returns its stderr, failing on a non-zero exit.
pub(crate) async fn finish(mut child: Child) -> String {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut stderr = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
            assert!(status.success(), "agent failed ({status}): {stderr}");
            return stderr;
        }
        assert!(start.elapsed() < PATIENCE, "agent did not finish");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Asserts that each agent's reports were stored once each and in the order it made them
/// (UUIDv7 ids from one agent increase, so storage order must be ascending id order).
pub(crate) fn assert_once_in_order(
    stored: &[(String, String)],
    expected: &BTreeMap<String, usize>,
) {
    let mut per_agent: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (agent_id, report_id) in stored {
        per_agent.entry(agent_id).or_default().push(report_id);
    }
    for (agent_id, count) in expected {
        let ids = per_agent
            .get(agent_id.as_str())
            .cloned()
            .unwrap_or_default();
        assert_eq!(
            ids.len(),
            *count,
            "agent {agent_id}: stored {} of {count}",
            ids.len()
        );
        assert!(
            ids.is_sorted(),
            "agent {agent_id}: reports stored out of order: {ids:?}"
        );
    }
    assert_eq!(
        stored.len(),
        expected.values().sum::<usize>(),
        "reports from unknown agents"
    );
}

#[tokio::test]
async fn reports_made_while_the_collector_is_down_arrive_in_order_exactly_once() {
    let mut collector = Collector::start();
    let agent = collector.enroll();
    let root = fixture_root("ward4-medrobot-gw");
    collector.kill();

    for depth in 1..=3 {
        let out = agent.run_once(Some(root.path()));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success(),
            "run --once must fail while the collector is down"
        );
        assert!(
            stderr.contains("unavailable") && stderr.contains("stay spooled"),
            "{stderr}"
        );
        assert_eq!(
            agent.spool_depth(),
            depth,
            "each run leaves its report spooled"
        );
    }

    collector.restart();
    let start = Instant::now();
    let out = agent.run_once(Some(root.path()));
    let drain = start.elapsed();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(agent.spool_depth(), 0);
    eprintln!("collector down: 3 runs spooled, the 4th delivered 4 reports in {drain:?}");

    let stored = collector.stored_reports().await;
    assert_once_in_order(&stored, &BTreeMap::from([(agent.agent_id(), 4)]));
    let assets = collector.assets();
    assert_eq!(
        assets[0]["last_report_id"],
        stored.last().unwrap().1.as_str()
    );
}

#[tokio::test]
async fn a_collector_killed_mid_stream_loses_and_duplicates_nothing() {
    const REPORTS: u32 = 200;
    let mut collector = Collector::start();
    let agent = collector.enroll();
    agent.tune_retry(50, 1000);
    let root = fixture_root("plc-gateway-7");

    let start = Instant::now();
    let child = agent.spawn_reports(root.path(), REPORTS, 240);
    wait_until("a quarter of the stream", async || {
        collector.stored_count().await >= u64::from(REPORTS / 4)
    })
    .await;
    collector.kill();
    let killed_at = collector.stored_count().await;
    // The agent keeps collecting while the collector is gone: wait until it has spooled more.
    wait_until("reports to pile up in the spool", async || {
        agent.spool_depth() >= 3
    })
    .await;
    collector.restart();
    let restarted = Instant::now();
    let stderr = finish(child).await;
    let drain = restarted.elapsed();

    let stored = collector.stored_reports().await;
    assert_once_in_order(
        &stored,
        &BTreeMap::from([(agent.agent_id(), REPORTS as usize)]),
    );
    assert_eq!(agent.spool_depth(), 0);
    assert_eq!(agent.spool_dropped(), 0);
    assert!(
        stderr.contains("collector unavailable"),
        "the agent should have seen the outage: {stderr}"
    );
    eprintln!(
        "kill -9 mid-stream: {REPORTS} reports, {killed_at} stored before the crash, all {} stored once; \
         drained {drain:?} after the restart; {:.0} reports/s overall",
        stored.len(),
        f64::from(REPORTS) / start.elapsed().as_secs_f64()
    );
}

#[tokio::test]
async fn ten_agents_a_thousand_reports_three_crashes_all_stored_once() {
    const AGENTS: usize = 10;
    const PER_AGENT: u32 = 100;
    const TOTAL: u64 = AGENTS as u64 * PER_AGENT as u64;
    let mut collector = Collector::start();
    let agents: Vec<Agent> = (0..AGENTS).map(|_| collector.enroll()).collect();
    let roots: Vec<tempfile::TempDir> = (0..AGENTS)
        .map(|i| fixture_root(&format!("host-{i:02}")))
        .collect();
    for agent in &agents {
        agent.tune_retry(50, 1000);
    }

    let start = Instant::now();
    let children: Vec<Child> = agents
        .iter()
        .zip(&roots)
        .map(|(agent, root)| agent.spawn_reports(root.path(), PER_AGENT, 240))
        .collect();
    let mut last_restart = start;
    for (crash, threshold) in [TOTAL / 4, TOTAL / 2, TOTAL * 3 / 4]
        .into_iter()
        .enumerate()
    {
        wait_until("the next crash point", async || {
            collector.stored_count().await >= threshold
        })
        .await;
        collector.kill();
        let before = collector.stored_count().await;
        let spooled = |agents: &[Agent]| agents.iter().map(Agent::spool_depth).sum::<usize>();
        let depth = spooled(&agents);
        // Agents still collecting keep spooling while the collector is gone; ones already in
        // their final drain do not, hence a short bound and no assertion.
        let piled_up = wait_for(Duration::from_secs(5), async || spooled(&agents) > depth).await;
        collector.restart();
        let restarted = Instant::now();
        last_restart = restarted;
        wait_until("delivery to resume", async || {
            collector.stored_count().await > before
        })
        .await;
        eprintln!(
            "crash {}: kill -9 with {before} stored (spool grew during the outage: {piled_up}); \
             first new report stored {:?} after the restart",
            crash + 1,
            restarted.elapsed()
        );
    }
    for child in children {
        finish(child).await;
    }
    let drain = last_restart.elapsed();
    let elapsed = start.elapsed();

    let stored = collector.stored_reports().await;
    let expected: BTreeMap<String, usize> = agents
        .iter()
        .map(|a| (a.agent_id(), PER_AGENT as usize))
        .collect();
    assert_once_in_order(&stored, &expected);
    for agent in &agents {
        assert_eq!(agent.spool_depth(), 0);
        assert_eq!(agent.spool_dropped(), 0);
    }
    eprintln!(
        "acceptance: {AGENTS} agents, {TOTAL} reports, 3 crashes (kill -9 + restart): {} stored exactly once \
         in {elapsed:?} ({:.0} reports/s); the rest drained {drain:?} after the last restart",
        stored.len(),
        f64::from(u32::try_from(TOTAL).unwrap()) / elapsed.as_secs_f64()
    );
}
