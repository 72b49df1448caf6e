//! The fleet simulator against a real collector it starts itself: what `tillsyn-loadgen` says
//! was stored is what the collector's database holds, through enrollment, full reports,
//! deltas, steady state and a reconnect storm after a restart.

use sqlx::Connection;

use crate::harness::{bin, ok};

#[tokio::test]
async fn loadgen_figures_match_what_the_collector_stored() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("collector");
    let json = tmp.path().join("figures.json");
    let collector_bin = bin("tillsyn-collector");
    let out = std::process::Command::new(bin("tillsyn-loadgen"))
        .arg("--serve")
        .arg(&state)
        .arg("--collector-bin")
        .arg(&collector_bin)
        .args([
            "--agents",
            "4",
            "--concurrency",
            "2",
            "--deltas",
            "2",
            "--churn",
            "3",
        ])
        .args([
            "--steady-seconds",
            "2",
            "--delta-interval",
            "1",
            "--full-interval",
            "3",
        ])
        .arg("--storm")
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "loadgen failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let figures: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let phase = |name: &str| {
        figures["phases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("no {name} phase in {figures}"))
            .clone()
    };
    assert_eq!(phase("full")["accepted_full"], 4, "{figures}");
    assert_eq!(phase("delta")["accepted_delta"], 8, "{figures}");
    assert_eq!(phase("storm")["accepted_full"], 4, "{figures}");
    assert!(figures["collector_peak_rss_bytes"].as_u64().unwrap() > 0);
    assert!(phase("full")["collector_cpu_seconds"].as_f64().unwrap() > 0.0);

    // The collector's own view: the agents it enrolled, the reports it stored.
    let state_dir = state.to_str().unwrap();
    let agents: Vec<serde_json::Value> = serde_json::from_str(&ok(
        "tillsyn-collector",
        &["--dir", state_dir, "agent", "list", "--format", "json"],
    ))
    .unwrap();
    assert_eq!(agents.len(), 4);
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(state.join("tillsyn.db"))
        .read_only(true);
    let mut db = sqlx::SqliteConnection::connect_with(&options)
        .await
        .unwrap();
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM reports")
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!(
        u64::try_from(stored).unwrap(),
        figures["accepted_total"].as_u64().unwrap(),
        "{figures}"
    );
    // Every host holds the whole recorded inventory, with the versions churn gave it.
    let per_asset: Vec<(String, i64)> =
        sqlx::query_as("SELECT asset_id, COUNT(*) FROM observations GROUP BY asset_id")
            .fetch_all(&mut db)
            .await
            .unwrap();
    assert_eq!(per_asset.len(), 4, "{per_asset:?}");
    let full_size = figures["observations_per_full_report"].as_i64().unwrap();
    assert!(
        per_asset.iter().all(|(_, n)| *n == full_size),
        "{per_asset:?}"
    );
    let churned: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM observations WHERE value_json LIKE '%+lg%'")
            .fetch_one(&mut db)
            .await
            .unwrap();
    assert!(churned > 0, "no churned version stored");
}
