//! `tillsyn-bench`: load generator for the collector's evaluation and register import.
//!
//! Seeds a fresh SQLite store with N host assets (default 100,000) in M systems (default
//! 5,000), then times, in the same run:
//! - a baseline: a plain scan of every asset row with JSON decoding;
//! - the first evaluation (creates every finding) and a steady-state one (median of 5), and reading
//!   every stored finding back;
//! - the serving collector's store-backed rounds (`evaluator::Evaluator`): the first (whole estate),
//!   one after a single asset's report, one with nothing changed;
//! - parsing and validating an R-row CSV register (default 10,000) against a baseline of only
//!   splitting it with the csv crate, and storing it;
//! - the web interface's "My systems" and system pages for an owner of ~50 systems (median of
//!   repeated requests through the whole router, session look-up included) against the CLI's
//!   `systems` (which evaluates, then lists) on the same store.
//!
//! Prints a Markdown table with ratios to the baselines, for README.md.

// The serving collector's allocator (see `main.rs`), so the figures are the ones it gets.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::fmt::Write as _;
use std::time::Instant;

use anyhow::Context;
use sqlx::Connection;
use tillsyn_collector::catalog;
use tillsyn_collector::evaluation;
use tillsyn_collector::rules::RuleConfig;
use tillsyn_collector::store::{AuditEvent, SqliteStore, Store};

/// Steady-state evaluations timed; the table shows their median.
const STEADY_RUNS: usize = 5;

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
    // The steady state is the median of several: one run varies by a third on a shared VM.
    let mut steady_runs = Vec::new();
    let mut steady = first.clone();
    for _ in 0..STEADY_RUNS {
        let start = Instant::now();
        steady = evaluation::evaluate(&store, &config, now + 1).await?;
        steady_runs.push(seconds(start));
    }
    let steady_eval = median(steady_runs);
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
    // What the CLI's `findings` and the yearly report read before they filter.
    let start = Instant::now();
    let all_findings = store.findings().await?.len();
    let read_findings = seconds(start);
    anyhow::ensure!(all_findings >= steady.open, "findings() lost findings");

    // Incremental evaluation: the verdicts kept in memory, then one asset's report re-judged
    // (its asset and its systems), as a share of the full evaluation above.
    let start = Instant::now();
    let mut incremental = evaluation::incremental(&snapshot, &config, now + 2);
    let incremental_build = seconds(start);
    anyhow::ensure!(
        incremental.drafts().len() == drafts.len(),
        "incremental and full evaluation disagree"
    );
    let mut one_asset = Vec::new();
    for (i, (asset, links)) in (0_i64..)
        .zip(snapshot.assets.iter().zip(&snapshot.links))
        .take(15)
    {
        let mut changed = evaluation::eval_asset(asset);
        changed.last_seen_at = now + 3;
        changed.controls.remove("mfa");
        let start = Instant::now();
        let touched = incremental.upsert_assets(vec![(changed, links.clone())], now + 3 + i);
        one_asset.push(seconds(start));
        anyhow::ensure!(touched.assets >= 1, "the changed asset was not judged");
    }
    let one_asset = median(one_asset);

    let serving = serving_rounds(&store, &config, args.systems, now + 100).await?;

    let web = web_pages(&store, dir.path()).await?;

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
        "| steady-state evaluation ({} open; median of {STEADY_RUNS}) | {steady_eval:.3} | {:.1}x |",
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
    println!(
        "| read every finding (`Store::findings`: CLI `findings`, the report; {} rows) | {read_findings:.3} | {:.1}x |",
        all_findings,
        read_findings / scan
    );
    println!(
        "| incremental: verdicts built in memory from the loaded snapshot | {incremental_build:.3} | {:.1}x |",
        incremental_build / scan
    );
    println!(
        "| incremental: one asset's report re-judged (asset + its systems; median of 15) | {one_asset:.6} | {:.4}x ({:.3} % of the steady-state evaluation) |",
        one_asset / scan,
        100.0 * one_asset / steady_eval
    );
    println!(
        "| serving collector, store-backed: first round (whole estate judged and written) | {:.3} | {:.1}x |",
        serving.full,
        serving.full / scan
    );
    println!(
        "| serving collector: round after one asset's report ({} subjects re-judged; median of {SERVING_REPEATS}) | {:.4} | {:.3}x ({:.2} % of the first round) |",
        serving.judged,
        serving.one_report,
        serving.one_report / scan,
        100.0 * serving.one_report / serving.full
    );
    println!(
        "| serving collector: round with nothing changed (median of {SERVING_REPEATS}) | {:.4} | {:.3}x ({:.2} % of the first round) |",
        serving.quiet,
        serving.quiet / scan,
        100.0 * serving.quiet / serving.full
    );
    for (part, seconds) in [
        (
            "read what changed since the last round (ids, row counts, generations)".to_string(),
            serving.detectors,
        ),
        ("read the accepted findings".to_string(), serving.accepted),
        (
            "record the evaluation (findings counted by state)".to_string(),
            serving.write,
        ),
    ] {
        println!(
            "| &nbsp;&nbsp;of which: {part} | {seconds:.4} | {:.3}x |",
            seconds / scan
        );
    }
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
    println!(
        "| baseline: CLI `systems` (evaluates, then lists all) | {:.3} | 1.0 |",
        web.cli
    );
    println!(
        "| web: My systems for an owner of {} systems (median of {}) | {:.3} | {:.4}x |",
        web.owned,
        WEB_REPEATS,
        web.home,
        web.home / web.cli
    );
    println!(
        "| web: one system page of that owner (median of {}) | {:.3} | {:.4}x |",
        WEB_REPEATS,
        web.system,
        web.system / web.cli
    );
    Ok(())
}

/// Rounds of each kind the serving collector's evaluation is timed for; the median is reported.
const SERVING_REPEATS: usize = 7;

struct ServingTimes {
    /// A quiet round's parts: what changed since the last round, accepted findings, the
    /// evaluation recorded.
    detectors: f64,
    accepted: f64,
    write: f64,
    full: f64,
    one_report: f64,
    quiet: f64,
    /// Assets and systems the round after one report judged again.
    judged: usize,
}

/// The serving collector's evaluation rounds on the store (`evaluator::Evaluator`): the
/// first (everything judged and written), then rounds after one asset's report (stored by
/// `ingest_report`, as an agent's would be) and rounds with nothing changed.
async fn serving_rounds(
    store: &SqliteStore,
    config: &RuleConfig,
    systems: usize,
    start_ms: i64,
) -> anyhow::Result<ServingTimes> {
    use tillsyn_collector::evaluator::Evaluator;
    use tillsyn_collector::store::{ControlInput, ReportInput};

    let mut evaluator = Evaluator::new(config.clone());
    let mut now = start_ms;
    let start = Instant::now();
    let first = evaluator.round(store, now).await?;
    let full = seconds(start);
    anyhow::ensure!(first.full, "the first round judges the whole estate");
    let (mut one_report, mut quiet, mut judged) = (Vec::new(), Vec::new(), 0);
    for i in 0..SERVING_REPEATS {
        let report = ReportInput {
            agent_id: format!("agent-{i}"),
            report_id: format!("bench-serving-{i}"),
            collected_at: now,
            size_bytes: 1,
            agent_version: "bench".into(),
            // The seeded host name and addresses: the report changes a control, not links.
            hostname: format!("sys{}-host{i}", i % systems),
            host_facts: serde_json::json!({
                "hostname": format!("sys{}-host{i}", i % systems),
                "interfaces": [{"name": "eth0", "addresses": [
                    format!("10.{}.{}.{}/24", i % systems / 256 % 256, i % systems % 256, i % 250 + 1)
                ]}]
            }),
            observations: vec![],
            controls: vec![ControlInput {
                name: "mfa".into(),
                state: if i % 2 == 0 { "absent" } else { "enforced" }.into(),
                reason: "bench".into(),
                evidence: vec![],
            }],
            devices: vec![],
            sequence: 0,
            delta_base: None,
            removed_observations: vec![],
            job_id: None,
        };
        now += 1;
        store.ingest_report(report, now).await?;
        now += 1;
        let start = Instant::now();
        let round = evaluator.round(store, now).await?;
        one_report.push(seconds(start));
        anyhow::ensure!(!round.full, "a report leaves the round incremental");
        judged = round.judged.assets.len() + round.judged.systems.len();
        now += 1;
        let start = Instant::now();
        let round = evaluator.round(store, now).await?;
        quiet.push(seconds(start));
        anyhow::ensure!(
            round.judged.assets.is_empty(),
            "a quiet round judges no asset"
        );
    }
    // Where a quiet round's time goes: its reads and its one write.
    let start = Instant::now();
    let changes = store.changes(Some(i64::MAX - 1)).await?;
    let detectors = seconds(start);
    anyhow::ensure!(changes.assets.is_empty(), "nothing is numbered that high");
    let start = Instant::now();
    store.accepted_findings().await?;
    let accepted = seconds(start);
    let start = Instant::now();
    let scope = tillsyn_collector::store::EvaluationScope::Subjects {
        assets: vec![],
        systems: vec![],
    };
    store
        .apply_evaluation(&scope, &[], &[], None, now + 1)
        .await?;
    let write = seconds(start);
    Ok(ServingTimes {
        detectors,
        accepted,
        write,
        full,
        one_report: median(one_report),
        quiet: median(quiet),
        judged,
    })
}

/// Requests per web page measured; the median is reported.
const WEB_REPEATS: usize = 15;

struct WebTimes {
    owned: usize,
    cli: f64,
    home: f64,
    system: f64,
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

/// Signs an owner in directly in the store (the factors are tested elsewhere) and times the
/// pages through the router, then the CLI's `systems` on the same data.
async fn web_pages(store: &SqliteStore, root: &std::path::Path) -> anyhow::Result<WebTimes> {
    use std::sync::Arc;

    use tillsyn_collector::store::{Enrolment, NewUser, Scope, SessionRecord};
    use tillsyn_collector::web::{self, auth};
    use tower::ServiceExt as _;

    let owner = "owner1@kommun.example";
    let now = tillsyn_collector::server::now_ms();
    let event = AuditEvent {
        actor: "bench".into(),
        action: "bench".into(),
        subject: owner.into(),
        detail: serde_json::json!({}),
    };
    let user = NewUser {
        user_id: "bench-owner".into(),
        email: owner.into(),
        name: "Bench Owner".into(),
        role: "owner".into(),
        enrol_token_hash: "bench".into(),
        enrol_expires_at: now + 60_000,
    };
    store.create_user(user, event.clone(), now).await?;
    let enrolment = Enrolment {
        password_hash: auth::hash_password("bench password 1234")?,
        totp_secret: auth::new_totp_secret(),
        totp_step: 0,
    };
    store
        .complete_enrolment("bench", enrolment, event.clone(), now)
        .await?;
    let cookie = auth::random_hex(32);
    let session = SessionRecord {
        session_hash: auth::sha256_hex(&cookie),
        user_id: "bench-owner".into(),
        csrf_token: auth::random_hex(32),
        created_at: now,
        last_seen_at: now,
    };
    store.start_session(session, 1, event, now).await?;
    let owners_systems = store
        .scoped_systems(&Scope::Owner(owner.into()), None)
        .await?;
    let first = owners_systems
        .first()
        .context("the owner has no systems")?
        .id
        .clone();
    let settings = web::RawWebConfig::default()
        .validate()
        .map_err(|p| anyhow::anyhow!(p.join("; ")))?;
    let app = web::router(web::WebState {
        store: Arc::new(store.clone()),
        settings: Arc::new(settings),
        rules: RuleConfig::default(),
        limiter: Arc::default(),
        oidc: None,
        passkeys: None,
    });
    let time_page = async |path: &str, expect: &str| -> anyhow::Result<f64> {
        let mut samples = Vec::new();
        for _ in 0..WEB_REPEATS {
            let request = axum::http::Request::get(path)
                .header("cookie", format!("__Host-tillsyn-session={cookie}"))
                .body(axum::body::Body::empty())?;
            let start = Instant::now();
            let response = app.clone().oneshot(request).await?;
            anyhow::ensure!(response.status() == 200, "{path}: {}", response.status());
            let body = axum::body::to_bytes(response.into_body(), usize::MAX).await?;
            samples.push(seconds(start));
            anyhow::ensure!(
                String::from_utf8_lossy(&body).contains(expect),
                "{path}: page lacks {expect:?}"
            );
        }
        Ok(median(samples))
    };
    let home = time_page("/", &owners_systems[0].name).await?;
    let system = time_page(&format!("/systems/{first}"), &owners_systems[0].name).await?;

    let dir = tillsyn_collector::config::CollectorDir::new(root);
    std::fs::write(
        dir.config_path(),
        toml::to_string(&tillsyn_collector::config::RawConfig::default())?,
    )?;
    let start = Instant::now();
    let listing = tillsyn_collector::compliance::systems(
        &dir,
        store,
        tillsyn_collector::output::ExportFormat::Table,
    )
    .await?;
    let cli = seconds(start);
    anyhow::ensure!(listing.contains(&first), "CLI listing lacks {first}");
    Ok(WebTimes {
        owned: owners_systems.len(),
        cli,
        home,
        system,
    })
}
