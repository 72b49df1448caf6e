//! Enrollment and reporting: the happy path, idempotent replays, fixture roots.

use crate::harness::{Collector, host_of, report};

#[test]
fn enrolled_agent_reports_its_host_and_the_inventory_is_stored() {
    let collector = Collector::start();
    let agent = collector.enroll();
    let key_mode = std::fs::metadata(agent.dir.path().join("agent.key")).unwrap();
    assert_eq!(std::os::unix::fs::PermissionsExt::mode(&key_mode.permissions()) & 0o777, 0o600);

    let out = agent.run_once(None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

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
    std::fs::write(root.path().join("etc/os-release"), "NAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\n").unwrap();
    let out = agent.run_once(Some(root.path()));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
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

    let r1 = client.report(report(&first, "before")).await.unwrap().into_inner();
    assert!(!r1.duplicate);
    let r2 = client.report(report(&second, "after")).await.unwrap().into_inner();
    assert!(!r2.duplicate);
    // Replaying the first report must not roll the asset back to "before".
    let replay = client.report(report(&first, "before")).await.unwrap().into_inner();
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
    let out = crate::harness::ok("tillsyn-collector", &["--dir", work.to_str().unwrap(), "quickstart"]);
    assert!(out.contains("enrolled local agent"), "{out}");
    assert!(out.contains("KIND"), "{out}");
    // A second run reuses the enrolled agent and still reports.
    let again = crate::harness::ok("tillsyn-collector", &["--dir", work.to_str().unwrap(), "quickstart"]);
    assert!(again.contains("reusing enrolled agent"), "{again}");
    let assets = crate::harness::ok("tillsyn-collector", &["--dir", work.to_str().unwrap(), "assets", "--format", "json"]);
    let assets: serde_json::Value = serde_json::from_str(&assets).unwrap();
    assert_eq!(assets.as_array().unwrap().len(), 1);
}
