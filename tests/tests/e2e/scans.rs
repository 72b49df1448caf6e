//! Scheduled scans end to end: a schedule's job reaches the right agent over the Jobs
//! long-poll, its report completes it, and the history shows it. Firing times themselves are
//! tested with a controllable clock in `collector/src/background.rs`.

use crate::harness::{Collector, ok, run};

fn history(collector: &Collector, name: &str) -> Vec<serde_json::Value> {
    let out = ok(
        "tillsyn-collector",
        &[
            "--dir",
            collector.path(),
            "scan",
            "history",
            name,
            "--format",
            "json",
        ],
    );
    serde_json::from_str::<serde_json::Value>(&out)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn a_run_now_job_reaches_its_agent_and_its_report_completes_it() {
    let collector = Collector::start();
    let ward4 = collector.enroll_with(&["--label", "site=ward4"]);
    let other = collector.enroll();
    let added = ok(
        "tillsyn-collector",
        &[
            "--dir",
            collector.path(),
            "scan",
            "add",
            "ward4-weekly",
            "--kind",
            "inventory",
            "--cron",
            "0 2 * * 1",
            "--timezone",
            "Europe/Stockholm",
            "--target",
            "label:site=ward4",
            "--jitter-seconds",
            "0",
        ],
    );
    assert!(added.contains("first run"), "{added}");
    let list = ok(
        "tillsyn-collector",
        &["--dir", collector.path(), "scan", "list"],
    );
    assert!(
        list.contains("ward4-weekly") && list.contains("Europe/Stockholm"),
        "{list}"
    );

    ok(
        "tillsyn-collector",
        &["--dir", collector.path(), "scan", "run-now", "ward4-weekly"],
    );
    let jobs = history(&collector, "ward4-weekly");
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0]["agent_id"], ward4.agent_id());
    assert_eq!(jobs[0]["state"], "pending");

    // The other agent is not targeted: it pulls nothing and sends its plain inventory.
    let out = run(
        "tillsyn-agent",
        &["--dir", other.path(), "run", "--once", "--jobs", "0"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(history(&collector, "ward4-weekly")[0]["state"], "pending");

    let out = run(
        "tillsyn-agent",
        &["--dir", ward4.path(), "run", "--once", "--jobs", "5"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let jobs = history(&collector, "ward4-weekly");
    assert_eq!(jobs[0]["state"], "done", "{jobs:#?}");
    let report_id = jobs[0]["report_id"].as_str().unwrap();
    let assets = collector.assets();
    let host = crate::harness::host_of(&assets, &ward4.agent_id());
    assert_eq!(host["last_report_id"], report_id);

    // Heartbeats carry the spool: both agents drained everything.
    for agent in collector.agents() {
        assert_eq!(agent["spool_depth"], 0);
    }
}

#[test]
fn bad_schedules_are_refused_and_change_nothing() {
    let collector = Collector::start();
    for (args, expected) in [
        (
            vec!["--kind", "inventory", "--cron", "every monday"],
            "every monday",
        ),
        (
            vec![
                "--kind",
                "inventory",
                "--cron",
                "0 2 * * 1",
                "--timezone",
                "Mars/Olympus",
            ],
            "Mars/Olympus",
        ),
        (
            vec![
                "--kind",
                "inventory",
                "--cron",
                "0 2 * * 1",
                "--target",
                "agent:ghost",
            ],
            "ghost",
        ),
        (
            vec!["--kind", "discovery", "--cron", "0 2 * * 1"],
            "discovery-target",
        ),
    ] {
        let mut full = vec!["--dir", collector.path(), "scan", "add", "bad"];
        full.extend(args);
        let out = run("tillsyn-collector", &full);
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(expected), "{stderr}");
    }
    let list = ok(
        "tillsyn-collector",
        &[
            "--dir",
            collector.path(),
            "scan",
            "list",
            "--format",
            "json",
        ],
    );
    assert_eq!(list.trim(), "[]");
}
