//! The phases of a run, in order, each measured on its own:
//! - `enroll`: every agent makes a key, enrolls with the fleet's token and opens its mTLS
//!   channel (`concurrency` at a time);
//! - `full`: every agent sends one full report (closed loop, `concurrency` in flight);
//! - `delta`: every agent sends `deltas` delta reports of `churn` changed packages;
//! - `steady`: for `steady_seconds`, every agent on its own clock: a report every
//!   `delta_interval` (every `full_interval / delta_interval`-th one full), each followed by a
//!   heartbeat, as the agent's run loop does; agents start at random offsets;
//! - `storm`: the collector is restarted (when the simulator runs it) and every agent
//!   reconnects at once and sends a full report, retrying with backoff until it is stored;
//!   the phase's wall time is the drain time.
//!
//! Collector CPU is the difference of its `/proc` CPU time across a phase, so it includes
//! whatever else the collector did meanwhile (background evaluation every 30 s).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::{Mutex, Semaphore};

use crate::collector::{CollectorError, ManagedCollector};
use crate::figures::{Figures, Phase, Tally};
use crate::fixture::Fixture;
use crate::fleet::{FleetError, Outcome, SimAgent};

/// What to simulate.
#[derive(Clone, Debug)]
pub struct Config {
    /// Simulated agents.
    pub agents: u32,
    /// RPCs in flight at once in the enroll, full and delta phases.
    pub concurrency: usize,
    /// Delta reports per agent in the delta phase.
    pub deltas: u32,
    /// Packages whose version changes in each delta.
    pub churn: usize,
    /// Length of the steady phase, seconds (0 skips it).
    pub steady_seconds: u64,
    /// Time between an agent's reports in the steady phase.
    pub delta_interval: Duration,
    /// Time between an agent's full reports in the steady phase.
    pub full_interval: Duration,
    /// Run the reconnect storm.
    pub storm: bool,
    /// Full reports in flight at once in the storm (bounds this process's memory: each holds
    /// about 0.7 MB); every agent's connection is opened at once regardless.
    pub storm_in_flight: usize,
    /// Give up on the storm after this long.
    pub storm_timeout: Duration,
    /// Seeds churn and schedule offsets.
    pub seed: u64,
    /// A PostgreSQL postmaster whose CPU (with its backends') is charged to each phase.
    pub database_pid: Option<u32>,
}

/// The collector under load.
#[derive(Debug)]
pub enum Target {
    /// Started by the simulator: its CPU and memory are measured and the storm restarts it.
    Managed(ManagedCollector),
    /// Started elsewhere: one collector, or several on one database sharing a CA, over which
    /// the agents are spread round-robin ([`spread`]); the `pids` given are measured (CPU and
    /// peak RSS summed over them); the storm only reconnects.
    External {
        /// `https://host:port` of each collector; at least one.
        urls: Vec<String>,
        /// Their CA certificate, PEM.
        ca_pem: String,
        /// A token with at least `agents` uses.
        token: String,
        /// Their process ids, for `/proc` (none: CPU and memory are not measured).
        pids: Vec<u32>,
    },
}

/// Errors of a run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A simulated agent could not be made.
    #[error(transparent)]
    Fleet(#[from] FleetError),
    /// The managed collector failed.
    #[error(transparent)]
    Collector(#[from] CollectorError),
    /// The CA file of the managed collector cannot be read.
    #[error("reading {}: {source}", path.display())]
    Ca {
        /// The file.
        path: std::path::PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Where the fleet reports.
struct Endpoint {
    /// The collectors, `https://host:port`.
    urls: Vec<String>,
    ca_pem: String,
}

impl Endpoint {
    /// The collector agent `index` enrolls with and reports to.
    fn url(&self, index: u32) -> &str {
        spread(&self.urls, index)
    }
}

/// The collector of agent `index` among `urls`: round-robin, so each of n collectors gets
/// every n-th agent and the same share of the load; `""` when `urls` is empty.
pub fn spread(urls: &[String], index: u32) -> &str {
    if urls.is_empty() {
        return "";
    }
    &urls[index as usize % urls.len()]
}

impl Target {
    fn endpoint(&self) -> Result<Endpoint, RunError> {
        match self {
            Target::Managed(c) => {
                let path = c.ca_path();
                let ca_pem = std::fs::read_to_string(&path)
                    .map_err(|source| RunError::Ca { path, source })?;
                Ok(Endpoint {
                    urls: vec![c.url()],
                    ca_pem,
                })
            }
            Target::External { urls, ca_pem, .. } => Ok(Endpoint {
                urls: urls.clone(),
                ca_pem: ca_pem.clone(),
            }),
        }
    }

    fn pids(&self) -> Vec<u32> {
        match self {
            Target::Managed(c) => c.pid().into_iter().collect(),
            Target::External { pids, .. } => pids.clone(),
        }
    }

    /// CPU seconds of the collectors so far, summed; unknown ones count 0.
    fn cpu(&self) -> f64 {
        self.pids()
            .into_iter()
            .filter_map(|pid| crate::procfs::usage(pid).ok())
            .map(|u| u.cpu_seconds)
            .sum()
    }

    /// Peak RSS, bytes: the managed collector's largest, or the external ones' summed.
    fn peak_rss(&self) -> Option<u64> {
        match self {
            Target::Managed(c) => Some(c.peak_rss()),
            Target::External { pids, .. } if pids.is_empty() => None,
            Target::External { pids, .. } => Some(
                pids.iter()
                    .filter_map(|&pid| crate::procfs::usage(pid).ok())
                    .map(|u| u.peak_rss_bytes)
                    .sum(),
            ),
        }
    }
}

type Fleet = Arc<Vec<Mutex<SimAgent>>>;

/// Reads a database server's CPU (a postmaster's pid), when one is given.
struct DatabaseMeter(Option<u32>);

impl DatabaseMeter {
    fn read(&self) -> Option<f64> {
        self.0
            .and_then(|pid| crate::procfs::tree_cpu_seconds(pid).ok())
    }

    /// Charges `phase` with the CPU since `before`.
    fn charge(&self, mut phase: Phase, before: Option<f64>) -> Phase {
        if let (Some(before), Some(after)) = (before, self.read()) {
            phase.charge_database(after - before);
        }
        phase
    }
}

/// Runs every phase against `target` and returns the figures.
pub async fn run(
    config: &Config,
    mut target: Target,
    fixture: Fixture,
) -> Result<Figures, RunError> {
    let started = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let fixture = Arc::new(fixture);
    let endpoint = Arc::new(target.endpoint()?);
    let token = match &target {
        Target::Managed(c) => c.token(config.agents)?,
        Target::External { token, .. } => token.clone(),
    };
    let mut phases = Vec::new();

    let database = DatabaseMeter(config.database_pid);

    let before = database.read();
    let (fleet, phase) = enroll(config, &target, &endpoint, &token, &fixture).await?;
    phases.push(database.charge(phase, before));
    let before = database.read();
    let phase = closed_loop(
        "full", config, &target, &endpoint, &fleet, &fixture, 1, true,
    )
    .await;
    phases.push(database.charge(phase, before));
    if config.deltas > 0 {
        let before = database.read();
        let phase = closed_loop(
            "delta",
            config,
            &target,
            &endpoint,
            &fleet,
            &fixture,
            config.deltas,
            false,
        )
        .await;
        phases.push(database.charge(phase, before));
    }
    if config.steady_seconds > 0 {
        let before = database.read();
        let phase = steady(config, &target, &endpoint, &fleet, &fixture).await;
        phases.push(database.charge(phase, before));
    }
    if config.storm {
        let before = database.read();
        let phase = storm(config, &mut target, &endpoint, &fleet, &fixture).await?;
        phases.push(database.charge(phase, before));
    }
    let accepted_total = phases
        .iter()
        .map(|p| p.accepted_full + p.accepted_delta)
        .sum();
    Ok(Figures {
        started,
        agents: config.agents,
        observations_per_full_report: fixture.observation_count(),
        churn: config.churn,
        cpus: std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
        phases,
        accepted_total,
        collector_peak_rss_bytes: target.peak_rss(),
    })
}

async fn enroll(
    config: &Config,
    target: &Target,
    endpoint: &Arc<Endpoint>,
    token: &str,
    fixture: &Arc<Fixture>,
) -> Result<(Fleet, Phase), RunError> {
    let mut channels = Vec::new();
    for url in &endpoint.urls {
        channels.push(
            tillsyn_agent::client::connect(url, &endpoint.ca_pem, None)
                .await
                .map_err(|source| FleetError::Connect { index: 0, source })?,
        );
    }
    let channels = Arc::new(channels);
    let cpu = target.cpu();
    let clock = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..config.concurrency.max(1) {
        let (next, channels, endpoint) = (next.clone(), channels.clone(), endpoint.clone());
        let (token, version, agents) = (
            token.to_string(),
            fixture.agent_version().to_string(),
            config.agents as usize,
        );
        workers.push(tokio::spawn(async move {
            let mut made = Vec::new();
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= agents {
                    return Ok::<_, FleetError>(made);
                }
                let index = u32::try_from(index).unwrap_or(u32::MAX);
                let channel = channels[index as usize % channels.len()].clone();
                let mut agent = SimAgent::enroll(index, &token, channel, &version).await?;
                agent.connect(endpoint.url(index), &endpoint.ca_pem).await?;
                made.push(agent);
            }
        }));
    }
    let mut agents = Vec::new();
    for worker in workers {
        match worker.await {
            Ok(made) => agents.extend(made?),
            Err(join) => tracing::error!(%join, "enrollment worker panicked"),
        }
    }
    agents.sort_by_key(|a| a.index);
    let wall = clock.elapsed();
    let mut tally = Tally::default();
    for _ in &agents {
        tally.record(&Outcome::Answered, false, Duration::ZERO);
    }
    let mut phase = tally.finish("enroll", wall, target.cpu() - cpu);
    // Enrollments are not reports: report them as answered RPCs only.
    phase.heartbeats = 0;
    phase.accepted_full = 0;
    tracing::info!(
        agents = agents.len(),
        seconds = wall.as_secs_f64(),
        "enrolled"
    );
    let fleet = Arc::new(agents.into_iter().map(Mutex::new).collect());
    Ok((fleet, phase))
}

/// Every agent sends `rounds` reports, full or delta, `concurrency` at a time.
#[allow(clippy::too_many_arguments)]
async fn closed_loop(
    name: &str,
    config: &Config,
    target: &Target,
    endpoint: &Arc<Endpoint>,
    fleet: &Fleet,
    fixture: &Arc<Fixture>,
    rounds: u32,
    full: bool,
) -> Phase {
    let cpu = target.cpu();
    let clock = Instant::now();
    let jobs = fleet.len() * rounds as usize;
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for worker in 0..config.concurrency.max(1) {
        let (next, fleet, fixture, endpoint) = (
            next.clone(),
            fleet.clone(),
            fixture.clone(),
            endpoint.clone(),
        );
        let churn = config.churn;
        let mut rng = StdRng::seed_from_u64(config.seed ^ (worker as u64) << 20);
        workers.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            loop {
                let job = next.fetch_add(1, Ordering::Relaxed);
                if job >= jobs {
                    return tally;
                }
                // Round-major order: every agent's first delta before anyone's second.
                let mut agent = fleet[job % fleet.len()].lock().await;
                let report = agent.prepare(&fixture, full, churn, &mut rng);
                let url = endpoint.url(agent.index);
                let (outcome, latency) = agent.send(url, &endpoint.ca_pem, &report.request).await;
                tally.record(&outcome, report.delta, latency);
            }
        }));
    }
    let tally = gather(workers).await;
    let phase = tally.finish(name, clock.elapsed(), target.cpu() - cpu);
    tracing::info!(
        phase = name,
        accepted = phase.accepted_full + phase.accepted_delta,
        "phase done"
    );
    phase
}

async fn gather(workers: Vec<tokio::task::JoinHandle<Tally>>) -> Tally {
    let mut tally = Tally::default();
    for worker in workers {
        match worker.await {
            Ok(part) => tally.merge(part),
            Err(join) => tracing::error!(%join, "worker panicked"),
        }
    }
    tally
}

async fn steady(
    config: &Config,
    target: &Target,
    endpoint: &Arc<Endpoint>,
    fleet: &Fleet,
    fixture: &Arc<Fixture>,
) -> Phase {
    let cpu = target.cpu();
    let clock = Instant::now();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(config.steady_seconds);
    let interval = config.delta_interval.max(Duration::from_millis(1));
    // Every n-th report is full: hourly full reports among 5-minute deltas is every 12th.
    let full_every = (config.full_interval.as_secs_f64() / interval.as_secs_f64())
        .round()
        .max(1.0);
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let full_every = full_every as u64;
    let mut tasks = Vec::new();
    for slot in 0..fleet.len() {
        let (fleet, fixture, endpoint) = (fleet.clone(), fixture.clone(), endpoint.clone());
        let churn = config.churn;
        let mut rng = StdRng::seed_from_u64(config.seed ^ (slot as u64) << 24 ^ 0x5eed);
        let offset = interval.mul_f64(rng.random::<f64>());
        tasks.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            let mut at = tokio::time::Instant::now() + offset;
            let mut round = rng.random_range(0..full_every);
            while at < deadline {
                tokio::time::sleep_until(at).await;
                let mut agent = fleet[slot].lock().await;
                let full = round % full_every == 0;
                let report = agent.prepare(&fixture, full, churn, &mut rng);
                let url = endpoint.url(agent.index);
                let (outcome, latency) = agent.send(url, &endpoint.ca_pem, &report.request).await;
                tally.record(&outcome, report.delta, latency);
                let (outcome, latency) = agent.heartbeat(url, &endpoint.ca_pem).await;
                tally.record(&outcome, false, latency);
                round += 1;
                at += interval;
            }
            tally
        }));
    }
    let tally = gather(tasks).await;
    let phase = tally.finish("steady", clock.elapsed(), target.cpu() - cpu);
    tracing::info!(
        accepted = phase.accepted_full + phase.accepted_delta,
        "steady phase done"
    );
    phase
}

async fn storm(
    config: &Config,
    target: &mut Target,
    endpoint: &Arc<Endpoint>,
    fleet: &Fleet,
    fixture: &Arc<Fixture>,
) -> Result<Phase, RunError> {
    for agent in fleet.iter() {
        agent.lock().await.disconnect();
    }
    let restarted = if let Target::Managed(collector) = target {
        collector.restart()?;
        true
    } else {
        false
    };
    // A restarted collector is a new process: its CPU counts from zero.
    let cpu = if restarted { 0.0 } else { target.cpu() };
    let clock = Instant::now();
    let deadline = tokio::time::Instant::now() + config.storm_timeout;
    let in_flight = Arc::new(Semaphore::new(config.storm_in_flight.max(1)));
    let mut tasks = Vec::new();
    for slot in 0..fleet.len() {
        let (fleet, fixture, endpoint, in_flight) = (
            fleet.clone(),
            fixture.clone(),
            endpoint.clone(),
            in_flight.clone(),
        );
        let mut rng = StdRng::seed_from_u64(config.seed ^ (slot as u64) << 28 ^ 0x570a);
        tasks.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            let mut agent = fleet[slot].lock().await;
            let url = endpoint.url(agent.index);
            let connected = agent.connect(url, &endpoint.ca_pem).await.is_ok();
            let Ok(_permit) = in_flight.acquire().await else {
                return tally;
            };
            if !connected {
                tally.record(
                    &Outcome::Failed(tonic::Code::Unavailable),
                    false,
                    Duration::ZERO,
                );
            }
            let report = agent.prepare(&fixture, true, 0, &mut rng);
            let mut backoff = Duration::from_millis(200);
            loop {
                let (outcome, latency) = agent.send(url, &endpoint.ca_pem, &report.request).await;
                tally.record(&outcome, false, latency);
                if !matches!(outcome, Outcome::Failed(_))
                    || tokio::time::Instant::now() + backoff > deadline
                {
                    return tally;
                }
                tokio::time::sleep(backoff.mul_f64(0.5 + rng.random::<f64>())).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }));
    }
    let tally = gather(tasks).await;
    let phase = tally.finish("storm", clock.elapsed(), target.cpu() - cpu);
    tracing::info!(
        accepted = phase.accepted_full,
        seconds = phase.wall_seconds,
        "storm drained"
    );
    Ok(phase)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agents_are_spread_round_robin_over_the_collectors() {
        let two = vec!["https://a".to_string(), "https://b".to_string()];
        let picked: Vec<&str> = (0..5).map(|i| spread(&two, i)).collect();
        assert_eq!(
            picked,
            [
                "https://a",
                "https://b",
                "https://a",
                "https://b",
                "https://a"
            ]
        );
        let one = vec!["https://a".to_string()];
        assert!((0..4).all(|i| spread(&one, i) == "https://a"));
        assert_eq!(spread(&[], 3), "");
    }
}
