//! `tillsyn-loadgen`: the fleet simulator's command line. Parses the arguments, starts the
//! collector when asked to (`--serve DIR`), runs the phases ([`tillsyn_loadgen::run`]), prints
//! the table and writes the figures as JSON.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use tillsyn_loadgen::collector::ManagedCollector;
use tillsyn_loadgen::fixture::Fixture;
use tillsyn_loadgen::run::{self, Config, Target};

/// Simulates a fleet of enrolled agents reporting to a Tillsyn collector and measures it.
#[derive(Parser)]
#[command(version)]
struct Cli {
    /// Start `tillsyn-collector serve` on this state directory (initialised when empty); its
    /// CPU and peak RSS are measured and the storm restarts it.
    #[arg(long, conflicts_with_all = ["collector", "ca", "token"])]
    serve: Option<PathBuf>,
    /// The collector binary for --serve (default: next to this one).
    #[arg(long, requires = "serve")]
    collector_bin: Option<PathBuf>,
    /// Address for --serve.
    #[arg(long, default_value = "127.0.0.1:0", requires = "serve")]
    listen: String,
    /// A database URL for --serve (`postgres://...`), given to the collector as
    /// TILLSYN_DATABASE_URL; default: the state directory's SQLite file.
    #[arg(long, requires = "serve")]
    database: Option<String>,
    /// A running collector, https://host:port (instead of --serve). Repeat it for several
    /// collectors on one database with one CA: agents are spread over them round-robin.
    #[arg(long, requires_all = ["ca", "token"])]
    collector: Vec<String>,
    /// Its CA certificate, a PEM file.
    #[arg(long)]
    ca: Option<PathBuf>,
    /// An enrollment token with at least --agents uses.
    #[arg(long)]
    token: Option<String>,
    /// The running collector's process id, for its CPU and memory from /proc; repeat it for
    /// several collectors (their CPU and peak RSS are summed).
    #[arg(long, requires = "collector")]
    collector_pid: Vec<u32>,
    /// A PostgreSQL postmaster's process id: its CPU and its backends' is charged to each
    /// phase beside the collector's (with SQLite that work is in the collector's figure).
    #[arg(long)]
    database_pid: Option<u32>,
    /// Simulated agents.
    #[arg(long, default_value_t = 100)]
    agents: u32,
    /// RPCs in flight at once in the enroll, full and delta phases.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Delta reports per agent in the delta phase (0 skips it).
    #[arg(long, default_value_t = 3)]
    deltas: u32,
    /// Packages whose version changes in each delta report.
    #[arg(long, default_value_t = 5)]
    churn: usize,
    /// Seconds of steady state (0 skips it).
    #[arg(long, default_value_t = 0)]
    steady_seconds: u64,
    /// Seconds between an agent's reports in steady state.
    #[arg(long, default_value_t = 300)]
    delta_interval: u64,
    /// Seconds between an agent's full reports in steady state.
    #[arg(long, default_value_t = 3600)]
    full_interval: u64,
    /// Run the reconnect storm at the end.
    #[arg(long)]
    storm: bool,
    /// Full reports in flight at once during the storm.
    #[arg(long, default_value_t = 256)]
    storm_in_flight: usize,
    /// Seconds before the storm gives up.
    #[arg(long, default_value_t = 600)]
    storm_timeout: u64,
    /// Another recorded inventory (`tillsyn-agent inventory --json`) instead of the built-in one.
    #[arg(long)]
    fixture: Option<PathBuf>,
    /// Seed for churn and schedule offsets.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Write the figures here as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tillsyn_agent::telemetry::init(tillsyn_agent::telemetry::LogFormat::Text);
    let fixture = match &cli.fixture {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            Fixture::parse(&text, &path.display().to_string())?
        }
        None => Fixture::recorded()?,
    };
    let target = match (&cli.serve, cli.collector.is_empty()) {
        (Some(dir), _) => {
            let program = match &cli.collector_bin {
                Some(path) => path.clone(),
                None => std::env::current_exe()
                    .context("locating this binary")?
                    .with_file_name("tillsyn-collector"),
            };
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            Target::Managed(ManagedCollector::start(
                &program,
                dir,
                &cli.listen,
                cli.database.as_deref(),
            )?)
        }
        (None, false) => {
            let ca = cli
                .ca
                .clone()
                .context("--ca is required with --collector")?;
            Target::External {
                urls: cli.collector.clone(),
                ca_pem: std::fs::read_to_string(&ca)
                    .with_context(|| format!("reading {}", ca.display()))?,
                token: cli
                    .token
                    .clone()
                    .context("--token is required with --collector")?,
                pids: cli.collector_pid.clone(),
            }
        }
        (None, true) => {
            anyhow::bail!("give --serve DIR, or --collector URL --ca FILE --token TOKEN")
        }
    };
    let config = Config {
        agents: cli.agents,
        concurrency: cli.concurrency,
        deltas: cli.deltas,
        churn: cli.churn,
        steady_seconds: cli.steady_seconds,
        delta_interval: Duration::from_secs(cli.delta_interval.max(1)),
        full_interval: Duration::from_secs(cli.full_interval.max(1)),
        storm: cli.storm,
        storm_in_flight: cli.storm_in_flight,
        storm_timeout: Duration::from_secs(cli.storm_timeout),
        seed: cli.seed,
        database_pid: cli.database_pid,
    };
    let figures = run::run(&config, target, fixture).await?;
    print!("{}", figures.table());
    if let Some(path) = &cli.json {
        let text = serde_json::to_string_pretty(&figures)?;
        std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
