//! Enrollment and reporting: the happy path, idempotent replays, fixture roots.

use crate::harness::{Collector, host_of, report};

#[test]
fn enrolled_agent_reports_its_host_and_the_inventory_is_stored() {
    let collector = Collector::start();
    let agent = collector.enroll();
    let key_mode = std::fs::metadata(agent.dir.path().join("agent.key")).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&key_mode.permissions()) & 0o777,
        0o600
    );

    let out = agent.run_once(None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let assets = collector.assets();
    assert_eq!(assets.len(), 1);
    let host = host_of(&assets, &agent.agent_id());
    let hostname = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
    assert_eq!(host["hostname"], hostname.trim());
    assert!(host["facts"]["memory_total_bytes"].as_u64().unwrap() > 0);
    assert!(host["facts"]["cpu_count"].as_u64().unwrap() > 0);
    assert!(!host["facts"]["interfaces"].as_array().unwrap().is_empty());
    assert!(!host["first_seen"].as_str().unwrap().is_empty());

    let agents = collector.agents();
    assert_eq!(agents[0]["agent_id"], agent.agent_id());
    assert!(agents[0]["last_seen_at"].as_i64().is_some());
}

#[test]
fn fixture_root_reports_the_fixture_host() {
    let collector = Collector::start();
    let agent = collector.enroll();
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("etc")).unwrap();
    std::fs::write(root.path().join("etc/hostname"), "ward4-medrobot-gw\n").unwrap();
    std::fs::write(
        root.path().join("etc/os-release"),
        "NAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\n",
    )
    .unwrap();
    let out = agent.run_once(Some(root.path()));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let assets = collector.assets();
    let host = host_of(&assets, &agent.agent_id());
    assert_eq!(host["hostname"], "ward4-medrobot-gw");
    assert_eq!(host["facts"]["os_version"], "12");
}

#[tokio::test]
async fn a_replayed_report_is_stored_once() {
    let collector = Collector::start();
    let agent = collector.enroll();
    let mut client = agent.client(&collector).await;
    let first = uuid::Uuid::now_v7().to_string();
    let second = uuid::Uuid::now_v7().to_string();

    let r1 = client
        .report(report(&first, "before"))
        .await
        .unwrap()
        .into_inner();
    assert!(!r1.duplicate);
    let r2 = client
        .report(report(&second, "after"))
        .await
        .unwrap()
        .into_inner();
    assert!(!r2.duplicate);
    // Replaying the first report must not roll the asset back to "before".
    let replay = client
        .report(report(&first, "before"))
        .await
        .unwrap()
        .into_inner();
    assert!(replay.duplicate);
    assert_eq!(replay.asset_id, r1.asset_id);

    let assets = collector.assets();
    assert_eq!(assets.len(), 1);
    assert_eq!(assets[0]["hostname"], "after");
    assert_eq!(assets[0]["last_report_id"], second);
}

#[test]
fn quickstart_inventories_this_machine() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("qs");
    let out = crate::harness::ok(
        "tillsyn-collector",
        &["--dir", work.to_str().unwrap(), "quickstart"],
    );
    assert!(out.contains("enrolled local agent"), "{out}");
    assert!(out.contains("KIND"), "{out}");
    // The web interface's first coordinator, its enrolment link on the last line, and the
    // command that serves the page it points at.
    assert!(
        out.contains("first coordinator: samordnare@quickstart.invalid"),
        "{out}"
    );
    assert!(out.contains("quickstart --web 127.0.0.1:8443"), "{out}");
    let link = out.lines().last().unwrap();
    assert!(
        link.starts_with("https://127.0.0.1:8443/enrol?token="),
        "{out}"
    );
    // A second run reuses the enrolled agent and still reports.
    let again = crate::harness::ok(
        "tillsyn-collector",
        &["--dir", work.to_str().unwrap(), "quickstart"],
    );
    assert!(again.contains("reusing enrolled agent"), "{again}");
    assert!(again.contains("exists already"), "{again}");
    let assets = crate::harness::ok(
        "tillsyn-collector",
        &[
            "--dir",
            work.to_str().unwrap(),
            "assets",
            "--format",
            "json",
        ],
    );
    let assets: serde_json::Value = serde_json::from_str(&assets).unwrap();
    assert_eq!(assets.as_array().unwrap().len(), 1);
    // The quickstart host gets a log_protection verdict from this machine's own files.
    let controls = assets[0]["controls"].as_array().unwrap();
    let logging = controls
        .iter()
        .find(|c| c["name"] == "log_protection")
        .unwrap_or_else(|| panic!("no log_protection control: {controls:#?}"));
    assert_ne!(logging["state"], "unknown", "{logging}");
    assert!(!logging["reason"].as_str().unwrap().is_empty());
}

// One scenario read top to bottom; splitting it would hide the sequence.
#[allow(clippy::too_many_lines)]
#[tokio::test]
async fn after_a_full_report_the_agent_sends_deltas_and_a_gap_forces_a_full_resync() {
    let collector = Collector::start();
    let agent = collector.enroll();
    let root = tempfile::tempdir().unwrap();
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../agent/tests/fixtures/services/luks-host");
    crate::harness::copy_tree(&fixture, root.path());
    let status = root.path().join("var/lib/dpkg/status");
    assert!(agent.run_once(Some(root.path())).status.success());

    // Upgrade one package and remove another.
    let text = std::fs::read_to_string(&status).unwrap();
    let stanzas: Vec<&str> = text
        .split("\n\n")
        .filter(|s| !s.trim().is_empty())
        .collect();
    let upgraded = stanzas[0]
        .lines()
        .find(|l| l.starts_with("Package:"))
        .unwrap()
        .trim_start_matches("Package: ")
        .to_string();
    let removed = stanzas[1]
        .lines()
        .find(|l| l.starts_with("Package:"))
        .unwrap()
        .trim_start_matches("Package: ")
        .to_string();
    let first = stanzas[0]
        .lines()
        .map(|l| {
            if l.starts_with("Version:") {
                "Version: 99.0-tillsyn".to_string()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let mut kept = vec![first];
    kept.extend(stanzas[2..].iter().map(ToString::to_string));
    std::fs::write(&status, kept.join("\n\n") + "\n").unwrap();
    assert!(agent.run_once(Some(root.path())).status.success());

    let changes = crate::harness::ok(
        "tillsyn-collector",
        &[
            "--dir",
            collector.path(),
            "changes",
            "--since",
            "1d",
            "--format",
            "json",
        ],
    );
    let changes: Vec<serde_json::Value> = serde_json::from_str(&changes).unwrap();
    let second: Vec<_> = changes
        .iter()
        .filter(|c| c["category"] == "package" && c["change"] != "added")
        .collect();
    assert!(
        second
            .iter()
            .any(|c| c["name"] == upgraded.as_str() && c["change"] == "changed"),
        "{second:#?}"
    );
    assert!(
        second
            .iter()
            .any(|c| c["name"] == removed.as_str() && c["change"] == "removed"),
        "{second:#?}"
    );
    assert_eq!(second.len(), 2, "only the two changes travel: {second:#?}");

    // The second report was a delta: a fraction of the first's size on the wire.
    let sizes: Vec<i64> = {
        use sqlx::Connection;
        let options = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(collector.dir.path().join("tillsyn.db"))
            .read_only(true);
        let mut db = sqlx::SqliteConnection::connect_with(&options)
            .await
            .unwrap();
        sqlx::query_scalar("SELECT size_bytes FROM reports ORDER BY rowid")
            .fetch_all(&mut db)
            .await
            .unwrap()
    };
    assert!(
        sizes[1] * 2 < sizes[0],
        "delta {} bytes vs full {} bytes",
        sizes[1],
        sizes[0]
    );

    // Lose a report (as a spool bound would): the collector asks for a resync, the agent's next
    // report is full, and the stored picture is right again.
    let state_file = agent.dir.path().join("delta.json");
    let mut state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&state_file).unwrap()).unwrap();
    state["sequence"] = serde_json::json!(state["sequence"].as_u64().unwrap() + 5);
    std::fs::write(&state_file, state.to_string()).unwrap();
    assert!(agent.run_once(Some(root.path())).status.success());
    assert!(agent.run_once(Some(root.path())).status.success());
    let after: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&state_file).unwrap()).unwrap();
    assert_eq!(
        after["full_sequence"], after["sequence"],
        "the report after a resync is full"
    );
    // The full report after the resync stored the whole current picture: six packages.
    let assets = collector.assets();
    let packages = crate::harness::ok(
        "tillsyn-collector",
        &[
            "--dir",
            collector.path(),
            "changes",
            "--since",
            "1d",
            "--format",
            "json",
        ],
    );
    assert!(packages.contains(&upgraded));
    assert!(
        host_of(&assets, &agent.agent_id())["observation_count"]
            .as_i64()
            .unwrap()
            > 6
    );
}
