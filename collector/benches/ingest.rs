//! CPU and wall time per report of the store's ingest on SQLite (`Store::ingest_report`),
//! without TLS, gRPC or protobuf decoding: the part of issue 15's end-to-end figures
//! (`scripts/bench-fleet.sh`) that is the store's own.
//!
//! Every report is the recorded Debian 12 host of the fleet simulator
//! (`loadgen/fixtures/debian12-host.json`, ~950 observations), made distinct per host by
//! [`tillsyn_loadgen::fixture::Fixture`] as the simulator does (a delta's packages are picked
//! by host number, not at random), and validated into a
//! `ReportInput` by the same `ingest::validate` the gRPC server calls. One run measures, on a
//! fresh SQLite file in a temporary directory opened by `SqliteStore::open` (so with the
//! collector's pragmas: WAL, `synchronous = FULL`, foreign keys):
//! - the conversion alone (`ReportRequest` -> `ReportInput`), for full reports and deltas;
//! - (a) the first full report of each of N new hosts, (b) a repeat full report of each (nothing
//!   changed), (c) a delta of 5 changed packages of each;
//! - the baseline: the same rows a first full report writes (its observations and as many
//!   history rows) by one plain multi-row `INSERT` per table in one transaction, on the same
//!   pool, into tables with the same columns and keys (no foreign keys): what SQLite itself
//!   needs to store those rows, and the ratio every other figure is printed against; beside it
//!   the same statements with numbered `$N` placeholders, which SQLite binds in O(n²);
//! - parts of a report's work on one stored host, each alone: the read of its observations row
//!   by row and as one JSON text (what a full report that changed something reads), the JSON
//!   encoding of a full report.
//!
//! CPU is the whole process's (`CLOCK_PROCESS_CPUTIME_ID`, so sqlx's SQLite worker thread is
//! included), read around each report's call only; wall time likewise. Reports are stored one
//! at a time, so nothing waits for the write lock.
//!
//! Run: `cargo bench -p tillsyn-collector --bench ingest` (N = 200 hosts), or a quick run with
//! `cargo bench -p tillsyn-collector --bench ingest -- --hosts 20`. `test = false` keeps it out
//! of `cargo test`.

// A bench binary: a failed step ends the run with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

// The serving collector's allocator (see `main.rs`), so the figures are the ones it gets.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use sqlx::Executor;
use tillsyn_collector::ingest;
use tillsyn_collector::store::{NewAgent, NewToken, ReportInput, SqliteStore, Store, TokenScope};
use tillsyn_loadgen::fixture::Fixture;
use tillsyn_proto::v1;

/// Packages changed by each delta, as in the fleet bench's deltas.
const DELTA_PACKAGES: usize = 5;

/// Wall and CPU time summed over a number of reports.
#[derive(Default)]
struct Cost {
    wall: Duration,
    cpu: Duration,
    reports: u32,
}

impl Cost {
    /// Runs `work`, adding its wall and process CPU time as one report.
    async fn measure<T>(&mut self, work: impl std::future::Future<Output = T>) -> T {
        let (cpu, wall) = (cpu_now(), Instant::now());
        let out = work.await;
        self.wall += wall.elapsed();
        self.cpu += cpu_now().saturating_sub(cpu);
        self.reports += 1;
        out
    }

    fn wall_ms(&self) -> f64 {
        self.wall.as_secs_f64() * 1e3 / f64::from(self.reports.max(1))
    }

    fn cpu_ms(&self) -> f64 {
        self.cpu.as_secs_f64() * 1e3 / f64::from(self.reports.max(1))
    }
}

/// CPU time of the whole process, every thread's, those that ended included.
fn cpu_now() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    Duration::new(
        u64::try_from(t.tv_sec).unwrap_or(0),
        u32::try_from(t.tv_nsec).unwrap_or(0),
    )
}

fn hosts_arg() -> u32 {
    // `cargo bench` passes `--bench`; only `--hosts N` means anything here.
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == "--hosts")
        .and_then(|i| args.get(i + 1))
        .map_or(200, |n| n.parse().expect("--hosts takes a number"))
}

fn agent_id(host: u32) -> String {
    format!("bench-agent-{host:05}")
}

/// Report `sequence` of `host`: full with every observation, or a delta (on top of
/// `sequence - 1`) of `DELTA_PACKAGES` packages whose versions it changes.
fn request(fixture: &Fixture, host: u32, sequence: u64, delta: bool) -> v1::ReportRequest {
    let observations = if delta {
        (0..DELTA_PACKAGES)
            .map(|k| fixture.changed(fixture.package(host as usize * 7 + k), sequence))
            .collect()
    } else {
        (0..fixture.observation_count())
            .map(|i| fixture.observation(i).clone())
            .collect()
    };
    v1::ReportRequest {
        report_id: uuid::Uuid::now_v7().to_string(),
        collected_at_unix_ms: 1,
        agent_version: fixture.agent_version().to_string(),
        host: Some(fixture.host(host)),
        observations,
        controls: fixture.controls().to_vec(),
        sequence,
        delta,
        base_sequence: if delta { sequence - 1 } else { 0 },
        ..v1::ReportRequest::default()
    }
}

async fn enroll(store: &SqliteStore, hosts: u32) {
    let token = NewToken {
        token_hash: "bench-token".into(),
        created_at: 0,
        expires_at: i64::MAX,
        created_by: "bench".into(),
    };
    let scope = TokenScope {
        name: "bench".into(),
        max_uses: i64::from(hosts),
        labels: BTreeMap::new(),
    };
    store.create_scoped_token(token, scope, 0).await.unwrap();
    for host in 0..hosts {
        let agent = NewAgent {
            agent_id: agent_id(host),
            hostname: tillsyn_loadgen::fixture::hostname(host),
            cert_sha256: format!("bench-{host}"),
            cert_not_after: i64::MAX,
            labels: BTreeMap::new(),
            agent_version: "bench".into(),
        };
        store.enroll_agent("bench-token", agent, 0).await.unwrap();
    }
}

/// Converts and stores report `sequence` of every host, measuring each part.
async fn phase(
    store: &SqliteStore,
    fixture: &Fixture,
    hosts: u32,
    sequence: u64,
    delta: bool,
    now: i64,
) -> (Cost, Cost) {
    let (mut convert, mut ingest) = (Cost::default(), Cost::default());
    for host in 0..hosts {
        let request = request(fixture, host, sequence, delta);
        let input = convert
            .measure(async { ingest::validate(&agent_id(host), &request) })
            .await
            .unwrap();
        let outcome = ingest
            .measure(store.ingest_report(input, now))
            .await
            .unwrap();
        assert!(!outcome.duplicate && !outcome.resync_required);
    }
    (convert, ingest)
}

/// The rows a first full report writes, as SQL text: (category, name, value, evidence).
fn baseline_rows(input: &ReportInput) -> Vec<(String, String, String, String)> {
    input
        .observations
        .iter()
        .map(|o| {
            (
                o.category.clone(),
                o.name.clone(),
                serde_json::to_string(&o.value).unwrap(),
                serde_json::to_string(&o.evidence).unwrap(),
            )
        })
        .collect()
}

/// `VALUES (.., ..), ..` for `rows` rows of `columns` values: numbered `$N` placeholders, or
/// SQLite's plain `?`.
fn values(rows: usize, columns: usize, numbered: bool) -> String {
    if numbered {
        return tillsyn_collector::store::dialect::values(rows, columns);
    }
    let row = format!("({})", vec!["?"; columns].join(", "));
    format!("VALUES {}", vec![row; rows].join(", "))
}

/// The baseline: one multi-row `INSERT` into each of two tables shaped like `observations`
/// and `observation_history`, one transaction per report, on the store's own pool.
async fn baseline(
    store: &SqliteStore,
    rows: &[(String, String, String, String)],
    reports: u32,
    numbered: bool,
) -> Cost {
    let pool = store.pool();
    pool.execute("DROP TABLE IF EXISTS baseline_observations")
        .await
        .unwrap();
    pool.execute("DROP TABLE IF EXISTS baseline_history")
        .await
        .unwrap();
    pool.execute(
        "CREATE TABLE baseline_observations (
            asset_id TEXT NOT NULL, category TEXT NOT NULL, name TEXT NOT NULL,
            value_json TEXT NOT NULL, evidence_json TEXT NOT NULL, first_seen_at INTEGER NOT NULL,
            changed_at INTEGER NOT NULL,
            PRIMARY KEY (asset_id, category, name))",
    )
    .await
    .unwrap();
    pool.execute(
        "CREATE TABLE baseline_history (
            asset_id TEXT NOT NULL, category TEXT NOT NULL, name TEXT NOT NULL,
            change TEXT NOT NULL, old_value_json TEXT, new_value_json TEXT,
            at INTEGER NOT NULL, report_id TEXT NOT NULL)",
    )
    .await
    .unwrap();
    pool.execute("CREATE INDEX baseline_history_asset ON baseline_history(asset_id, at)")
        .await
        .unwrap();
    let observations_sql = format!(
        "INSERT INTO baseline_observations (asset_id, category, name, value_json, evidence_json, first_seen_at, changed_at) {}",
        values(rows.len(), 7, numbered)
    );
    let history_sql = format!(
        "INSERT INTO baseline_history (asset_id, category, name, change, old_value_json, new_value_json, at, report_id) {}",
        values(rows.len(), 8, numbered)
    );
    let mut cost = Cost::default();
    for report in 0..reports {
        let asset_id = uuid::Uuid::now_v7().to_string();
        let report_id = format!("baseline-{report}");
        cost.measure(async {
            let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.unwrap();
            let mut query = sqlx::query(&observations_sql);
            for (category, name, value, evidence) in rows {
                query = query
                    .bind(&asset_id)
                    .bind(category)
                    .bind(name)
                    .bind(value)
                    .bind(evidence)
                    .bind(1_i64)
                    .bind(1_i64);
            }
            query.execute(&mut *tx).await.unwrap();
            let mut query = sqlx::query(&history_sql);
            for (category, name, value, _) in rows {
                query = query
                    .bind(&asset_id)
                    .bind(category)
                    .bind(name)
                    .bind("added")
                    .bind(None::<String>)
                    .bind(value)
                    .bind(1_i64)
                    .bind(&report_id);
            }
            query.execute(&mut *tx).await.unwrap();
            tx.commit().await.unwrap();
        })
        .await;
    }
    cost
}

/// Parts of a report's work on one stored host, each alone, `reports` times: the read of the
/// host's observations a changed full report starts with (row by row, and as one JSON text)
/// and the JSON encoding of a full report's values and evidence.
async fn parts(
    store: &SqliteStore,
    input: &ReportInput,
    reports: u32,
) -> [(&'static str, Cost); 3] {
    let pool = store.pool();
    let asset_id: String =
        sqlx::query_scalar("SELECT asset_id FROM assets WHERE kind = 'host' AND agent_id = ?")
            .bind(&input.agent_id)
            .fetch_one(pool)
            .await
            .unwrap();
    let (mut read, mut encode) = (Cost::default(), Cost::default());
    let mut packed_read = Cost::default();
    for _ in 0..reports {
        let rows: Vec<(String, String, String, String)> = read
            .measure(
                sqlx::query_as(
                    "SELECT category, name, value_json, evidence_json FROM observations WHERE asset_id = ?",
                )
                .bind(&asset_id)
                .fetch_all(pool),
            )
            .await
            .unwrap();
        assert_eq!(rows.len(), input.observations.len());
        let packed: Vec<(String, String, String, String)> = packed_read
            .measure(async {
                let text: String = sqlx::query_scalar(
                    "SELECT json_group_array(json_array(category, name, value_json, evidence_json)) FROM observations WHERE asset_id = ?",
                )
                .bind(&asset_id)
                .fetch_one(pool)
                .await
                .unwrap();
                serde_json::from_str(&text).unwrap()
            })
            .await;
        assert_eq!(packed.len(), rows.len());
        let encoded = encode.measure(async { baseline_rows(input) }).await;
        assert_eq!(encoded.len(), rows.len());
    }
    [
        (
            "part: read a host's 950 stored observations row by row",
            read,
        ),
        (
            "part: the same read as one JSON text (json_group_array), parsed",
            packed_read,
        ),
        (
            "part: JSON-encode a full report's values and evidence",
            encode,
        ),
    ]
}

fn line(what: &str, cost: &Cost, baseline_cpu_ms: f64) {
    println!(
        "| {what} | {:.2} | {:.2} | {:.2}x |",
        cost.wall_ms(),
        cost.cpu_ms(),
        cost.cpu_ms() / baseline_cpu_ms
    );
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let hosts = hosts_arg();
    let fixture = Fixture::recorded().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("ingest.db"))
        .await
        .unwrap();
    enroll(&store, hosts).await;

    let sample = ingest::validate(&agent_id(0), &request(&fixture, 0, 1, false)).unwrap();
    let rows = baseline_rows(&sample);
    let numbered = baseline(&store, &rows, hosts, true).await;
    let baseline = baseline(&store, &rows, hosts, false).await;

    let (convert_full, first) = phase(&store, &fixture, hosts, 1, false, 10).await;
    let (_, repeat) = phase(&store, &fixture, hosts, 2, false, 20).await;
    let (convert_delta, delta) = phase(&store, &fixture, hosts, 3, true, 30).await;

    let parts = parts(&store, &sample, hosts).await;
    let base = baseline.cpu_ms().max(1e-6);
    println!(
        "ingest on SQLite (synchronous = FULL, WAL), {hosts} hosts, {} observations per full report, {DELTA_PACKAGES} per delta; per report:",
        rows.len()
    );
    println!("| measurement | wall ms | CPU ms | CPU ratio to baseline |");
    println!("|---|---|---|---|");
    line(
        &format!(
            "baseline: {} + {} rows, one multi-row INSERT per table, one transaction",
            rows.len(),
            rows.len()
        ),
        &baseline,
        base,
    );
    line(
        "the same INSERTs with numbered placeholders ($1, $2, ...)",
        &numbered,
        base,
    );
    line(
        "convert a full report (ReportRequest -> ReportInput)",
        &convert_full,
        base,
    );
    line("convert a delta", &convert_delta, base);
    line("(a) store: first full report of a new host", &first, base);
    line(
        "(b) store: repeat full report of a known host (nothing changed)",
        &repeat,
        base,
    );
    line(
        &format!("(c) store: delta of {DELTA_PACKAGES} changed packages"),
        &delta,
        base,
    );
    for (what, cost) in &parts {
        line(what, cost, base);
    }
}
