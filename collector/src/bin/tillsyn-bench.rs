//! `tillsyn-bench`: load generator for the collector's evaluation and register import.
//!
//! Seeds a fresh SQLite store with N host assets (default 100,000) in M systems (default
//! 5,000), then times, in the same run:
//! - a baseline: a plain scan of every asset row with JSON decoding;
//! - the first evaluation (creates every finding) and a steady-state evaluation;
//! - parsing and validating an R-row CSV register (default 10,000) against a baseline of only
//!   splitting it with the csv crate, and storing it.
//!
//! Prints a Markdown table with ratios to the baselines, for README.md.

use std::fmt::Write as _;
use std::time::Instant;

use anyhow::Context;
use sqlx::Connection;
use tillsyn_collector::catalog;
use tillsyn_collector::evaluation;
use tillsyn_collector::rules::RuleConfig;
use tillsyn_collector::store::{AuditEvent, SqliteStore, Store};

struct Args {
    assets: usize,
    systems: usize,
    rows: usize,
}

fn args() -> anyhow::Result<Args> {
    let mut args = Args {
        assets: 100_000,
        systems: 5_000,
        rows: 10_000,
    };
    let raw: Vec<String> = std::env::args().skip(1).collect();
    for pair in raw.chunks(2) {
        let value: usize = pair.get(1).context("every flag needs a value")?.parse()?;
        match pair[0].as_str() {
            "--assets" => args.assets = value,
            "--systems" => args.systems = value,
            "--rows" => args.rows = value,
            other => anyhow::bail!("unknown flag {other}; use --assets N --systems N --rows N"),
        }
    }
    Ok(args)
}

fn register_csv(systems: usize) -> String {
    let mut csv = String::from("system_id;name;system_owner;k;r;t;classified_at;hostnames;cidrs\n");
    for i in 0..systems {
        let k = i % 4;
        let owner = if i % 10 == 0 {
            String::new()
        } else {
            format!("owner{}@kommun.example", i % 97)
        };
        let classified = if i % 7 == 0 {
            "2024-01-01"
        } else {
            "2026-06-01"
        };
        let _ = writeln!(
            csv,
            "sys{i};System {i};{owner};{k};{k};{k};{classified};sys{i}-*;10.{}.{}.0/24",
            i / 256 % 256,
            i % 256
        );
    }
    csv
}

async fn seed(path: &std::path::Path, assets: usize, systems: usize) -> anyhow::Result<()> {
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display())).await?;
    sqlx::query("PRAGMA synchronous = OFF")
        .execute(&mut conn)
        .await?;
    let mut tx = conn.begin().await?;
    let states = [
        ("enforced", "encrypted", "encrypted"),
        ("absent", "plaintext", "unencrypted"),
        ("available", "unknown", "encrypted"),
    ];
    for a in 0..assets {
        let agent = format!("agent-{a}");
        let system = a % systems;
        let facts = format!(
            r#"{{"hostname":"sys{system}-host{a}","interfaces":[{{"name":"eth0","addresses":["10.{}.{}.{}/24"]}}]}}"#,
            system / 256 % 256,
            system % 256,
            a % 250 + 1
        );
        sqlx::query("INSERT INTO agents (agent_id, hostname, cert_sha256, cert_not_after, labels_json, agent_version, enrolled_at) VALUES (?, ?, ?, 0, '{}', 'bench', 0)")
            .bind(&agent).bind(&agent).bind(&agent).execute(&mut *tx).await?;
        let (mfa, transit, rest) = states[a % states.len()];
        let controls = format!(
            r#"[{{"name":"mfa","state":"{mfa}","reason":"bench","evidence":[]}},{{"name":"transit_encryption","state":"{transit}","reason":"bench","evidence":[]}},{{"name":"rest_encryption","state":"{rest}","reason":"bench","evidence":[]}}]"#
        );
        sqlx::query("INSERT INTO assets (asset_id, kind, agent_id, hostname, facts_json, first_seen_at, last_seen_at, last_report_id, controls_json) VALUES (?, 'host', ?, ?, ?, 0, ?, 'r', ?)")
            .bind(format!("asset-{a}")).bind(&agent).bind(format!("sys{system}-host{a}")).bind(&facts)
            .bind(tillsyn_collector::server::now_ms()).bind(&controls).execute(&mut *tx).await?;
        for (name, state) in [
            ("mfa", mfa),
            ("transit_encryption", transit),
            ("rest_encryption", rest),
        ] {
            sqlx::query("INSERT INTO controls (asset_id, name, state, reason, evidence_json, observed_at) VALUES (?, ?, ?, 'bench', '[]', 0)")
                .bind(format!("asset-{a}")).bind(name).bind(state).execute(&mut *tx).await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

fn seconds(start: Instant) -> f64 {
    start.elapsed().as_secs_f64()
}

// One scenario read top to bottom; splitting it would hide the sequence.
#[allow(clippy::too_many_lines)]
#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = args()?;
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("bench.db");
    let store = SqliteStore::open(&db).await?;
    let register = dir.path().join("register.csv");
    std::fs::write(&register, register_csv(args.systems))?;
    let systems = catalog::load(&register)?;
    let event = AuditEvent {
        actor: "bench".into(),
        action: "catalog.import".into(),
        subject: "bench".into(),
        detail: serde_json::json!({}),
    };
    store.replace_catalog(&systems, event.clone(), 0).await?;
    let start = Instant::now();
    seed(&db, args.assets, args.systems).await?;
    eprintln!("seeded {} assets in {:.1} s", args.assets, seconds(start));

    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display())).await?;
    let start = Instant::now();
    let rows: Vec<(String, String)> = sqlx::query_as("SELECT asset_id, facts_json FROM assets")
        .fetch_all(&mut conn)
        .await?;
    let parsed = rows
        .iter()
        .filter(|(_, f)| serde_json::from_str::<serde_json::Value>(f).is_ok())
        .count();
    let scan = seconds(start);
    anyhow::ensure!(parsed == args.assets, "baseline scan parsed {parsed} rows");

    let config = RuleConfig::default();
    let now = tillsyn_collector::server::now_ms();
    let start = Instant::now();
    let first = evaluation::evaluate(&store, &config, now).await?;
    let first_eval = seconds(start);
    let start = Instant::now();
    let steady = evaluation::evaluate(&store, &config, now + 1).await?;
    let steady_eval = seconds(start);
    // Where the steady-state time goes.
    let start = Instant::now();
    let snapshot = evaluation::snapshot(&store).await?;
    let load = seconds(start);
    let start = Instant::now();
    let drafts = evaluation::drafts(&snapshot, &config, now + 2);
    let rules_time = seconds(start);
    let start = Instant::now();
    store.apply_findings(&drafts, now + 2).await?;
    let apply = seconds(start);

    // Register import: a separate file of `rows` systems.
    let big = dir.path().join("big-register.csv");
    std::fs::write(&big, register_csv(args.rows))?;
    let start = Instant::now();
    let mut reader = csv::ReaderBuilder::new().delimiter(b';').from_path(&big)?;
    let split = reader.records().filter_map(Result::ok).count();
    let csv_baseline = seconds(start);
    let start = Instant::now();
    let parsed_systems = catalog::load(&big)?;
    let validate = seconds(start);
    let start = Instant::now();
    store.replace_catalog(&parsed_systems, event, 1).await?;
    let stored = seconds(start);
    anyhow::ensure!(
        split == args.rows && parsed_systems.len() == args.rows,
        "import row count mismatch"
    );

    println!(
        "| measurement ({} assets, {} systems, {}-row register) | seconds | ratio to baseline |",
        args.assets, args.systems, args.rows
    );
    println!("|---|---|---|");
    println!("| baseline: scan + JSON-decode every asset row | {scan:.3} | 1.0 |");
    println!(
        "| first evaluation ({} findings opened) | {first_eval:.3} | {:.1}x |",
        first.opened,
        first_eval / scan
    );
    println!(
        "| steady-state evaluation ({} open) | {steady_eval:.3} | {:.1}x |",
        steady.open,
        steady_eval / scan
    );
    println!(
        "| &nbsp;&nbsp;of which: load and link | {load:.3} | {:.1}x |",
        load / scan
    );
    println!(
        "| &nbsp;&nbsp;of which: run the rule table | {rules_time:.3} | {:.1}x |",
        rules_time / scan
    );
    println!(
        "| &nbsp;&nbsp;of which: store the findings lifecycle | {apply:.3} | {:.1}x |",
        apply / scan
    );
    println!("| baseline: split the register with the csv crate | {csv_baseline:.3} | 1.0 |");
    println!(
        "| parse + validate the register | {validate:.3} | {:.1}x |",
        validate / csv_baseline
    );
    println!(
        "| store the register (one transaction) | {stored:.3} | {:.1}x |",
        stored / csv_baseline
    );
    println!(
        "| import total (parse + validate + store) | {:.3} | {:.1}x |",
        validate + stored,
        (validate + stored) / csv_baseline
    );
    Ok(())
}
