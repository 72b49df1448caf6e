//! What a run measured: per phase, the outcomes by kind and gRPC status, RPC latencies, and the
//! collector's CPU seconds; for the run, the collector's peak RSS. Printed as a table and
//! written as JSON (`--json PATH`).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use crate::fleet::Outcome;

/// Figures of one phase, collected while it runs.
#[derive(Clone, Debug, Default)]
pub struct Tally {
    /// Report RPC latencies, microseconds.
    latencies_us: Vec<u64>,
    /// Full reports stored.
    accepted_full: u64,
    /// Delta reports stored.
    accepted_delta: u64,
    /// Reports the collector had already (resends).
    duplicates: u64,
    /// Deltas refused with `resync_required`.
    resyncs: u64,
    /// Heartbeats answered.
    heartbeats: u64,
    /// Failed RPCs by gRPC status name.
    errors: BTreeMap<String, u64>,
}

impl Tally {
    /// Counts one report RPC (`delta` tells its kind) or heartbeat and its latency.
    pub fn record(&mut self, outcome: &Outcome, delta: bool, latency: Duration) {
        match outcome {
            Outcome::Accepted if delta => self.accepted_delta += 1,
            Outcome::Accepted => self.accepted_full += 1,
            Outcome::Duplicate => self.duplicates += 1,
            Outcome::ResyncRequired => self.resyncs += 1,
            Outcome::Answered => self.heartbeats += 1,
            Outcome::Failed(code) => {
                *self.errors.entry(format!("{code:?}")).or_default() += 1;
            }
        }
        if !matches!(outcome, Outcome::Answered) {
            self.latencies_us
                .push(u64::try_from(latency.as_micros()).unwrap_or(u64::MAX));
        }
    }

    /// Adds another tally (one per worker) into this one.
    pub fn merge(&mut self, other: Tally) {
        self.latencies_us.extend(other.latencies_us);
        self.accepted_full += other.accepted_full;
        self.accepted_delta += other.accepted_delta;
        self.duplicates += other.duplicates;
        self.resyncs += other.resyncs;
        self.heartbeats += other.heartbeats;
        for (code, n) in other.errors {
            *self.errors.entry(code).or_default() += n;
        }
    }

    /// Reports stored.
    pub fn accepted(&self) -> u64 {
        self.accepted_full + self.accepted_delta
    }

    /// Closes the phase: `wall` its duration, `cpu_seconds` the collector's CPU time in it.
    pub fn finish(mut self, name: &str, wall: Duration, cpu_seconds: f64) -> Phase {
        self.latencies_us.sort_unstable();
        let wall_seconds = wall.as_secs_f64();
        #[allow(clippy::cast_precision_loss)]
        let per = |count: u64| {
            if count == 0 { None } else { Some(count as f64) }
        };
        let accepted = self.accepted();
        Phase {
            name: name.to_string(),
            wall_seconds,
            accepted_full: self.accepted_full,
            accepted_delta: self.accepted_delta,
            duplicates: self.duplicates,
            resyncs: self.resyncs,
            heartbeats: self.heartbeats,
            errors: self.errors,
            reports_per_second: per(accepted).map(|n| n / wall_seconds.max(1e-9)),
            latency_p50_ms: percentile(&self.latencies_us, 50.0),
            latency_p99_ms: percentile(&self.latencies_us, 99.0),
            latency_max_ms: self.latencies_us.last().map(|&us| ms(us)),
            collector_cpu_seconds: cpu_seconds,
            collector_cpu_share: cpu_seconds / wall_seconds.max(1e-9),
            collector_cpu_ms_per_report: per(accepted).map(|n| cpu_seconds * 1000.0 / n),
            database_cpu_seconds: None,
            database_cpu_ms_per_report: None,
        }
    }
}

impl Phase {
    /// Charges the phase with `seconds` of a database server's CPU (PostgreSQL's; SQLite's
    /// work is in the collector's own figure).
    pub fn charge_database(&mut self, seconds: f64) {
        self.database_cpu_seconds = Some(seconds);
        let accepted = self.accepted_full + self.accepted_delta;
        #[allow(clippy::cast_precision_loss)]
        let per = (accepted > 0).then(|| seconds * 1000.0 / accepted as f64);
        self.database_cpu_ms_per_report = per;
    }
}

#[allow(clippy::cast_precision_loss)]
fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

/// Nearest-rank percentile of sorted microseconds, in milliseconds.
fn percentile(sorted_us: &[u64], p: f64) -> Option<f64> {
    if sorted_us.is_empty() {
        return None;
    }
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let rank = ((p / 100.0) * sorted_us.len() as f64).ceil() as usize;
    Some(ms(sorted_us[rank.clamp(1, sorted_us.len()) - 1]))
}

/// Figures of one finished phase.
#[derive(Clone, Debug, Serialize)]
pub struct Phase {
    /// `enroll`, `full`, `delta`, `steady` or `storm`.
    pub name: String,
    /// Duration, seconds.
    pub wall_seconds: f64,
    /// Full reports stored.
    pub accepted_full: u64,
    /// Delta reports stored.
    pub accepted_delta: u64,
    /// Resends the collector had stored already.
    pub duplicates: u64,
    /// Deltas answered `resync_required`.
    pub resyncs: u64,
    /// Heartbeats answered.
    pub heartbeats: u64,
    /// Failed RPCs by gRPC status (`Unavailable` also counts connections that failed).
    pub errors: BTreeMap<String, u64>,
    /// Reports stored per second of wall time.
    pub reports_per_second: Option<f64>,
    /// Median report RPC latency, milliseconds (client side, connect included when it happened).
    pub latency_p50_ms: Option<f64>,
    /// 99th percentile report RPC latency, milliseconds.
    pub latency_p99_ms: Option<f64>,
    /// Slowest report RPC, milliseconds.
    pub latency_max_ms: Option<f64>,
    /// The collector's user + system CPU time during the phase, seconds.
    pub collector_cpu_seconds: f64,
    /// CPU seconds per wall second (1.0 = one core busy).
    pub collector_cpu_share: f64,
    /// Collector CPU per stored report, milliseconds (all the collector did in the phase,
    /// background evaluation included, divided by the reports stored).
    pub collector_cpu_ms_per_report: Option<f64>,
    /// The database server's CPU time during the phase, seconds (`--database-pid`: the
    /// postmaster and its backends); `None` when not measured.
    pub database_cpu_seconds: Option<f64>,
    /// Database server CPU per stored report, milliseconds.
    pub database_cpu_ms_per_report: Option<f64>,
}

/// Figures of a whole run.
#[derive(Clone, Debug, Serialize)]
pub struct Figures {
    /// When the run started, RFC 3339 UTC.
    pub started: String,
    /// Simulated agents.
    pub agents: u32,
    /// Observations in a full report.
    pub observations_per_full_report: usize,
    /// Packages changed per delta.
    pub churn: usize,
    /// Logical CPUs of this machine.
    pub cpus: usize,
    /// The phases, in order.
    pub phases: Vec<Phase>,
    /// Reports stored over the whole run.
    pub accepted_total: u64,
    /// The collector's peak resident set size, bytes (the largest of its processes when it was
    /// restarted); `None` when its pid is not known.
    pub collector_peak_rss_bytes: Option<u64>,
}

impl Figures {
    /// A human-readable table.
    pub fn table(&self) -> String {
        use std::fmt::Write;
        let mut out = format!(
            "{} agents, {} observations per full report, churn {} packages per delta, {} cpus, started {}\n",
            self.agents, self.observations_per_full_report, self.churn, self.cpus, self.started
        );
        let _ = writeln!(
            out,
            "{:<8} {:>8} {:>7} {:>7} {:>6} {:>9} {:>9} {:>9} {:>9} {:>8} {:>9} {:>9}  errors",
            "phase",
            "wall s",
            "full",
            "delta",
            "hb",
            "reports/s",
            "p50 ms",
            "p99 ms",
            "cpu s",
            "cpu %",
            "cpu ms/r",
            "db ms/r"
        );
        let opt = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.2}"));
        for p in &self.phases {
            let errors: Vec<String> = p.errors.iter().map(|(c, n)| format!("{c}={n}")).collect();
            let _ = writeln!(
                out,
                "{:<8} {:>8.2} {:>7} {:>7} {:>6} {:>9} {:>9} {:>9} {:>9.2} {:>8.1} {:>9} {:>9}  {}",
                p.name,
                p.wall_seconds,
                p.accepted_full,
                p.accepted_delta,
                p.heartbeats,
                opt(p.reports_per_second),
                opt(p.latency_p50_ms),
                opt(p.latency_p99_ms),
                p.collector_cpu_seconds,
                p.collector_cpu_share * 100.0,
                opt(p.collector_cpu_ms_per_report),
                opt(p.database_cpu_ms_per_report),
                errors.join(" ")
            );
        }
        let _ = writeln!(out, "reports stored in total: {}", self.accepted_total);
        if let Some(rss) = self.collector_peak_rss_bytes {
            let _ = writeln!(out, "collector peak RSS: {} MiB", rss / (1024 * 1024));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_are_counted_by_kind_and_status_and_latency_ranks_are_nearest() {
        let mut a = Tally::default();
        for ms in 1..=100 {
            a.record(&Outcome::Accepted, ms % 2 == 0, Duration::from_millis(ms));
        }
        let mut b = Tally::default();
        b.record(
            &Outcome::Failed(tonic::Code::Unavailable),
            true,
            Duration::ZERO,
        );
        b.record(&Outcome::Answered, false, Duration::from_secs(9));
        b.record(&Outcome::ResyncRequired, true, Duration::from_millis(1));
        a.merge(b);
        let phase = a.finish("delta", Duration::from_secs(2), 0.5);
        assert_eq!((phase.accepted_full, phase.accepted_delta), (50, 50));
        assert_eq!(phase.errors["Unavailable"], 1);
        assert_eq!((phase.heartbeats, phase.resyncs), (1, 1));
        assert_eq!(phase.reports_per_second, Some(50.0));
        assert_eq!(phase.collector_cpu_ms_per_report, Some(5.0));
        // 102 report latencies: 0, 1, 1..=100 ms; the heartbeat's 9 s is not among them.
        assert_eq!(phase.latency_p50_ms, Some(49.0));
        assert_eq!(phase.latency_p99_ms, Some(99.0));
        assert_eq!(phase.latency_max_ms, Some(100.0));
        assert_eq!(phase.database_cpu_ms_per_report, None);
        let mut phase = phase;
        phase.charge_database(0.25);
        assert_eq!(phase.database_cpu_ms_per_report, Some(2.5));
    }
}
