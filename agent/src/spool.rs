//! The agent's offline spool (`A/spool/`): every report is written here durably before it is
//! sent and deleted only after the collector's acknowledgement, so a collector outage or an
//! agent crash loses nothing. A resend keeps its `report_id`, so the collector stores it once.
//!
//! # Layout on disk
//! - `spool/<seq>-<report_id>.report`: one prost-encoded `ReportRequest`, mode 0600. `<seq>` is a
//!   zero-padded counter, so names sort in the order the reports were spooled even when the clock
//!   (and with it the UUIDv7) steps back.
//! - `spool/.tmp-<name>`: a write in progress; one left over by a crash is removed at open and is
//!   never read.
//! - `spool/dropped`: how many reports the bound has dropped, in total (decimal text).
//! - `spool/quarantine/`: files that do not decode or that the collector refuses as invalid; kept
//!   for an operator, never retried, never in the way of the reports behind them.
//!
//! This module owns those files and does not talk to the network: [`drain`] hands each report to
//! a [`Deliver`] (gRPC in [`crate::run`], a fake in tests). One agent process is expected at a
//! time; two concurrent drains are still safe, because the worst case is a report sent twice,
//! which the collector deduplicates.

use std::fs::{self, OpenOptions};
use std::future::Future;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use prost::Message;
use serde::{Deserialize, Serialize};
use tillsyn_proto::v1::ReportRequest;

/// Extension of a spooled report.
const EXTENSION: &str = ".report";
/// Prefix of a file being written; such files are invisible to readers.
const TEMP_PREFIX: &str = ".tmp-";
/// The persistent drop counter.
const DROPPED_FILE: &str = "dropped";
/// Where undeliverable files go.
const QUARANTINE_DIR: &str = "quarantine";
/// Digits of the sequence number: `u64::MAX` has 20, so names always sort numerically.
const SEQ_WIDTH: usize = 20;

/// The spool's bound and retry pacing, the `[spool]` table of `agent.toml`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct SpoolConfig {
    /// Most reports kept; beyond it the oldest is dropped (and counted).
    pub max_reports: usize,
    /// Most bytes kept; beyond it the oldest report is dropped (and counted).
    pub max_bytes: u64,
    /// First retry delay after a failed delivery, in milliseconds.
    pub retry_min_ms: u64,
    /// Longest retry delay, in milliseconds; the delay doubles up to it.
    pub retry_max_ms: u64,
}

impl Default for SpoolConfig {
    fn default() -> Self {
        // 1,000 hourly reports are six weeks of outage; 256 MiB caps the disk an agent may take.
        Self {
            max_reports: 1000,
            max_bytes: 256 * 1024 * 1024,
            retry_min_ms: 1000,
            retry_max_ms: 5 * 60 * 1000,
        }
    }
}

/// Errors of the spool; each names the file involved.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    /// The file system is full (or the quota is used up); the write was undone.
    #[error("{path}: disk full; the report was not spooled and the spool is unchanged")]
    DiskFull {
        /// The file that could not be written.
        path: PathBuf,
    },
    /// Any other I/O failure.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// A report id that cannot be a file name (the agent only makes UUIDs).
    #[error("report id {0:?} is not a UUID; refusing to use it as a spool file name")]
    BadReportId(String),
}

fn io_error(path: &Path, source: io::Error) -> SpoolError {
    match source.kind() {
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => SpoolError::DiskFull {
            path: path.to_path_buf(),
        },
        _ => SpoolError::Io {
            path: path.to_path_buf(),
            source,
        },
    }
}

/// One spooled report, as listed (its content is read by [`Spool::load`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpoolEntry {
    /// File name inside the spool directory.
    pub name: String,
    /// Size of the file in bytes.
    pub bytes: u64,
}

impl SpoolEntry {
    /// The sequence number and report id encoded in the name, if it is well-formed.
    fn parts(&self) -> Option<(u64, &str)> {
        let stem = self.name.strip_suffix(EXTENSION)?;
        let (seq, report_id) = stem.split_once('-')?;
        Some((seq.parse().ok()?, report_id))
    }
}

/// What [`Spool::load`] found.
#[derive(Debug)]
pub enum Loaded {
    /// A report ready to send.
    Report(Box<ReportRequest>),
    /// The file is unusable; the string says why.
    Corrupt(String),
    /// The file is gone (another drain acknowledged it).
    Gone,
}

/// Counts for the heartbeat and the log.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SpoolStats {
    /// Reports waiting.
    pub depth: u64,
    /// Their total size in bytes.
    pub bytes: u64,
    /// Reports dropped by the bound, in total.
    pub dropped: u64,
    /// Files in quarantine.
    pub quarantined: u64,
}

/// The spool directory with its bound.
#[derive(Clone, Debug)]
pub struct Spool {
    dir: PathBuf,
    config: SpoolConfig,
}

impl Spool {
    /// Opens (creating, mode 0700) the spool at `dir` and removes writes a crash left behind.
    pub fn open(dir: impl Into<PathBuf>, config: &SpoolConfig) -> Result<Self, SpoolError> {
        let dir = dir.into();
        create_private_dir(&dir)?;
        let spool = Self {
            dir,
            config: config.clone(),
        };
        spool.remove_leftover_temps()?;
        Ok(spool)
    }

    /// The spool directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The quarantine directory.
    pub fn quarantine_dir(&self) -> PathBuf {
        self.dir.join(QUARANTINE_DIR)
    }

    /// Writes `report` durably behind the others, then enforces the bound by dropping the
    /// oldest reports (never the one just written). Returns its entry and how many were dropped.
    pub fn push(&self, report: &ReportRequest) -> Result<(SpoolEntry, u64), SpoolError> {
        if uuid::Uuid::parse_str(&report.report_id).is_err() {
            return Err(SpoolError::BadReportId(report.report_id.clone()));
        }
        let mut pending = self.pending()?;
        let seq = pending
            .iter()
            .filter_map(|e| e.parts().map(|(seq, _)| seq))
            .max()
            .map_or(1, |seq| seq.saturating_add(1));
        let name = format!("{seq:0SEQ_WIDTH$}-{}{EXTENSION}", report.report_id);
        let bytes = report.encode_to_vec();
        write_atomic(&self.dir, &name, &bytes)?;
        let entry = SpoolEntry {
            name,
            bytes: bytes.len() as u64,
        };
        pending.push(entry.clone());
        let dropped = self.enforce_bound(&pending)?;
        Ok((entry, dropped))
    }

    /// The reports waiting, oldest first.
    pub fn pending(&self) -> Result<Vec<SpoolEntry>, SpoolError> {
        let mut entries = Vec::new();
        for dirent in fs::read_dir(&self.dir).map_err(|e| io_error(&self.dir, e))? {
            let dirent = dirent.map_err(|e| io_error(&self.dir, e))?;
            let Ok(name) = dirent.file_name().into_string() else {
                continue;
            };
            if name.starts_with(TEMP_PREFIX) || !name.ends_with(EXTENSION) {
                continue;
            }
            let path = dirent.path();
            match dirent.metadata() {
                Ok(meta) if meta.is_file() => entries.push(SpoolEntry {
                    name,
                    bytes: meta.len(),
                }),
                Ok(_) => {}
                // Acknowledged by a concurrent drain between read_dir and metadata.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_error(&path, e)),
            }
        }
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(entries)
    }

    /// Reads and decodes one entry; a file that fails to decode or whose `report_id` does not
    /// match its name is [`Loaded::Corrupt`].
    pub fn load(&self, entry: &SpoolEntry) -> Result<Loaded, SpoolError> {
        let path = self.dir.join(&entry.name);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Loaded::Gone),
            Err(e) => return Err(io_error(&path, e)),
        };
        let Some((_, name_id)) = entry.parts() else {
            return Ok(Loaded::Corrupt(
                "the file name is not <seq>-<report_id>.report".into(),
            ));
        };
        let report = match ReportRequest::decode(bytes.as_slice()) {
            Ok(report) => report,
            Err(e) => return Ok(Loaded::Corrupt(format!("does not decode: {e}"))),
        };
        // An empty or truncated file can decode "successfully" to a default message; the id
        // check catches that.
        if report.report_id != name_id {
            return Ok(Loaded::Corrupt(format!(
                "report_id {:?} does not match the file name",
                report.report_id
            )));
        }
        Ok(Loaded::Report(Box::new(report)))
    }

    /// Deletes an acknowledged report.
    pub fn ack(&self, entry: &SpoolEntry) -> Result<(), SpoolError> {
        let path = self.dir.join(&entry.name);
        // No directory fsync: if the deletion is lost in a crash the report is sent again and
        // the collector deduplicates it, so durability here would only cost throughput.
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_error(&path, e)),
        }
    }

    /// Moves an entry to `quarantine/` so it never blocks the queue again, and logs why.
    pub fn quarantine(&self, entry: &SpoolEntry, reason: &str) -> Result<(), SpoolError> {
        let target_dir = self.quarantine_dir();
        create_private_dir(&target_dir)?;
        let from = self.dir.join(&entry.name);
        let to = target_dir.join(&entry.name);
        match fs::rename(&from, &to) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io_error(&from, e)),
        }
        sync_dir(&target_dir)?;
        sync_dir(&self.dir)?;
        tracing::error!(file = %to.display(), reason, "spooled report quarantined; it will not be sent");
        Ok(())
    }

    /// Reports dropped by the bound, in total. An unreadable counter counts as 0 and is logged.
    pub fn dropped(&self) -> u64 {
        let path = self.dir.join(DROPPED_FILE);
        match fs::read_to_string(&path) {
            Ok(text) => text.trim().parse().unwrap_or_else(|e| {
                tracing::warn!(file = %path.display(), error = %e, "drop counter unreadable; counting from 0");
                0
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => 0,
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "drop counter unreadable; counting from 0");
                0
            }
        }
    }

    /// Depth, size, drops and quarantined files.
    pub fn stats(&self) -> Result<SpoolStats, SpoolError> {
        let pending = self.pending()?;
        let quarantine = self.quarantine_dir();
        let quarantined = match fs::read_dir(&quarantine) {
            Ok(entries) => entries.count() as u64,
            Err(e) if e.kind() == io::ErrorKind::NotFound => 0,
            Err(e) => return Err(io_error(&quarantine, e)),
        };
        Ok(SpoolStats {
            depth: pending.len() as u64,
            bytes: pending.iter().map(|e| e.bytes).sum(),
            dropped: self.dropped(),
            quarantined,
        })
    }

    /// Drops the oldest of `pending` (sorted, newest last) until the bound holds; the newest is
    /// always kept. The counter is raised before the files go: a crash in between over-counts,
    /// which is safer than hiding a loss.
    fn enforce_bound(&self, pending: &[SpoolEntry]) -> Result<u64, SpoolError> {
        let max_reports = self.config.max_reports.max(1);
        let mut count = pending.len();
        let mut bytes: u64 = pending.iter().map(|e| e.bytes).sum();
        let mut victims = Vec::new();
        for entry in &pending[..pending.len().saturating_sub(1)] {
            if count <= max_reports && bytes <= self.config.max_bytes {
                break;
            }
            victims.push(entry);
            count -= 1;
            bytes -= entry.bytes;
        }
        if victims.is_empty() {
            return Ok(0);
        }
        let total = self.dropped() + victims.len() as u64;
        write_atomic(&self.dir, DROPPED_FILE, format!("{total}\n").as_bytes())?;
        for entry in &victims {
            tracing::warn!(file = %entry.name, "spool full; oldest report dropped");
            self.ack(entry)?;
        }
        Ok(victims.len() as u64)
    }

    fn remove_leftover_temps(&self) -> Result<(), SpoolError> {
        for dirent in fs::read_dir(&self.dir).map_err(|e| io_error(&self.dir, e))? {
            let dirent = dirent.map_err(|e| io_error(&self.dir, e))?;
            if dirent
                .file_name()
                .to_string_lossy()
                .starts_with(TEMP_PREFIX)
            {
                let path = dirent.path();
                tracing::info!(file = %path.display(), "removing an unfinished spool write");
                match fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io_error(&path, e)),
                }
            }
        }
        Ok(())
    }
}

/// Writes `dir/name` so that it either exists complete or not at all: temp file, fsync,
/// rename, fsync of the directory. On failure the temp file is removed.
fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), SpoolError> {
    let tmp = dir.join(format!("{TEMP_PREFIX}{name}"));
    let path = dir.join(name);
    let written = write_synced(&tmp, bytes);
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(io_error(&tmp, e));
    }
    if let Err(e) = fs::rename(&tmp, &path) {
        let _ = fs::remove_file(&tmp);
        return Err(io_error(&path, e));
    }
    sync_dir(dir)
}

fn write_synced(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // Reports describe the host's weaknesses: readable by the agent only.
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Makes a rename or creation in `dir` durable.
#[cfg(unix)]
fn sync_dir(dir: &Path) -> Result<(), SpoolError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_error(dir, e))
}

/// Windows has no directory fsync: `File::open` refuses a directory (os error 5) and
/// `FlushFileBuffers` does not take a directory handle, so this is a no-op. The report's own
/// bytes are still flushed before the rename and NTFS journals the rename, so a crash leaves
/// the old or the new name, never a torn file; a power loss right after the rename may undo
/// it, and that one report is then a temp file, swept at the next open.
#[cfg(not(unix))]
#[allow(clippy::unnecessary_wraps)] // same signature as the Unix version
fn sync_dir(_dir: &Path) -> Result<(), SpoolError> {
    Ok(())
}

fn create_private_dir(dir: &Path) -> Result<(), SpoolError> {
    fs::create_dir_all(dir).map_err(|e| io_error(dir, e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
            .map_err(|e| io_error(dir, e))?;
    }
    Ok(())
}

/// Why a delivery failed; decides what happens to the report.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// The collector is away or failing; keep the report and retry later.
    #[error("collector unavailable: {0}")]
    Unavailable(String),
    /// The collector refuses this report for its content; retrying cannot help.
    #[error("report rejected: {0}")]
    Rejected(String),
    /// The collector refuses this agent (revoked, unknown certificate); stop sending.
    #[error("agent refused: {0}")]
    Refused(String),
}

/// Sends one report and waits for the acknowledgement.
pub trait Deliver {
    /// `Ok` only once the collector has acknowledged (stored or recognised as duplicate).
    fn deliver(&mut self, report: ReportRequest)
    -> impl Future<Output = Result<(), DeliveryError>>;
}

/// What one drain did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DrainOutcome {
    /// Reports acknowledged and deleted.
    pub delivered: u64,
    /// Files moved to quarantine.
    pub quarantined: u64,
}

/// Why a drain stopped before the spool was empty.
#[derive(Debug, thiserror::Error)]
pub enum DrainError {
    /// The spool itself failed.
    #[error(transparent)]
    Spool(#[from] SpoolError),
    /// Delivery stopped; `pending` reports stay spooled.
    #[error("{source}; {pending} report(s) stay spooled")]
    Stopped {
        /// What the delivery said (unavailable or refused, never rejected).
        source: DeliveryError,
        /// Reports still waiting.
        pending: usize,
        /// What was done before stopping.
        outcome: DrainOutcome,
    },
}

/// Sends every pending report, oldest first, deleting each after its acknowledgement. Corrupt
/// and rejected reports go to quarantine and the queue moves on; the first unavailable or
/// refused delivery stops the drain with the rest still spooled, so order is kept.
pub async fn drain(spool: &Spool, deliver: &mut impl Deliver) -> Result<DrainOutcome, DrainError> {
    let pending = spool.pending()?;
    let mut outcome = DrainOutcome::default();
    for (index, entry) in pending.iter().enumerate() {
        let report = match spool.load(entry)? {
            Loaded::Report(report) => *report,
            Loaded::Gone => continue,
            Loaded::Corrupt(reason) => {
                spool.quarantine(entry, &reason)?;
                outcome.quarantined += 1;
                continue;
            }
        };
        match deliver.deliver(report).await {
            Ok(()) => {
                spool.ack(entry)?;
                outcome.delivered += 1;
            }
            Err(DeliveryError::Rejected(reason)) => {
                spool.quarantine(entry, &format!("the collector rejected it: {reason}"))?;
                outcome.quarantined += 1;
            }
            Err(source) => {
                return Err(DrainError::Stopped {
                    source,
                    pending: pending.len() - index,
                    outcome,
                });
            }
        }
    }
    Ok(outcome)
}

/// Exponential backoff with jitter between failed drains: the delay doubles from
/// `retry_min_ms` up to `retry_max_ms`, and each delay is drawn from its upper half so that
/// agents restarted together do not hammer a returning collector in lockstep.
#[derive(Clone, Debug)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    failures: u32,
}

impl Backoff {
    /// Pacing from the spool configuration.
    pub fn new(config: &SpoolConfig) -> Self {
        let min = Duration::from_millis(config.retry_min_ms.max(1));
        let max = Duration::from_millis(config.retry_max_ms).max(min);
        Self {
            min,
            max,
            failures: 0,
        }
    }

    /// Starts over after a success.
    pub fn reset(&mut self) {
        self.failures = 0;
    }

    /// The delay before the next attempt; each call doubles the base.
    pub fn next_delay(&mut self) -> Duration {
        let base = self
            .min
            .saturating_mul(2u32.saturating_pow(self.failures))
            .min(self.max);
        self.failures = self.failures.saturating_add(1);
        let half = base / 2;
        half + half.mul_f64(rand::random::<f64>())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use std::collections::VecDeque;

    fn report(id: &uuid::Uuid) -> ReportRequest {
        ReportRequest {
            report_id: id.to_string(),
            agent_version: "test".into(),
            ..ReportRequest::default()
        }
    }

    fn new_report() -> ReportRequest {
        report(&uuid::Uuid::now_v7())
    }

    fn open(dir: &Path, max_reports: usize) -> Spool {
        let config = SpoolConfig {
            max_reports,
            ..SpoolConfig::default()
        };
        Spool::open(dir.join("spool"), &config).unwrap()
    }

    /// Records what it was given; answers from a script, then acknowledges.
    #[derive(Default)]
    struct Fake {
        sent: Vec<String>,
        answers: VecDeque<Result<(), DeliveryError>>,
    }

    impl Deliver for Fake {
        async fn deliver(&mut self, report: ReportRequest) -> Result<(), DeliveryError> {
            self.sent.push(report.report_id);
            self.answers.pop_front().unwrap_or(Ok(()))
        }
    }

    fn drain_now(spool: &Spool, fake: &mut Fake) -> Result<DrainOutcome, DrainError> {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(drain(spool, fake))
    }

    #[test]
    fn reports_are_sent_in_spool_order_even_when_ids_go_backwards() {
        let tmp = tempfile::tempdir().unwrap();
        let spool = open(tmp.path(), 100);
        // Ids whose UUID order is the reverse of their spool order (a clock that stepped back).
        let ids: Vec<uuid::Uuid> = (0..5u128)
            .rev()
            .map(|n| uuid::Uuid::from_u128(n + 1))
            .collect();
        for id in &ids {
            spool.push(&report(id)).unwrap();
        }
        let mut fake = Fake::default();
        let outcome = drain_now(&spool, &mut fake).unwrap();
        assert_eq!(outcome.delivered, 5);
        let expected: Vec<String> = ids.iter().map(ToString::to_string).collect();
        assert_eq!(fake.sent, expected);
        assert!(spool.pending().unwrap().is_empty());
    }

    #[test]
    fn an_unavailable_collector_stops_the_drain_and_keeps_order() {
        let tmp = tempfile::tempdir().unwrap();
        let spool = open(tmp.path(), 100);
        let ids: Vec<String> = (0..3)
            .map(|_| spool.push(&new_report()).unwrap().0.name)
            .collect();
        let mut fake = Fake::default();
        fake.answers.push_back(Ok(()));
        fake.answers
            .push_back(Err(DeliveryError::Unavailable("down".into())));
        let err = drain_now(&spool, &mut fake).unwrap_err();
        assert!(
            matches!(err, DrainError::Stopped { pending: 2, .. }),
            "{err}"
        );
        let left: Vec<String> = spool
            .pending()
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect();
        assert_eq!(left, ids[1..]);

        let mut fake = Fake::default();
        drain_now(&spool, &mut fake).unwrap();
        assert_eq!(
            fake.sent.len(),
            2,
            "the unacknowledged report is resent, the acked one is not"
        );
        assert!(spool.pending().unwrap().is_empty());
    }

    #[test]
    fn the_bound_drops_the_oldest_and_counts_persistently() {
        let tmp = tempfile::tempdir().unwrap();
        let spool = open(tmp.path(), 3);
        let names: Vec<String> = (0..5)
            .map(|_| spool.push(&new_report()).unwrap().0.name)
            .collect();
        let left: Vec<String> = spool
            .pending()
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect();
        assert_eq!(left, names[2..]);
        assert_eq!(spool.dropped(), 2);
        // The counter survives a restart of the agent.
        let reopened = open(tmp.path(), 3);
        assert_eq!(reopened.stats().unwrap().dropped, 2);
        assert_eq!(reopened.stats().unwrap().depth, 3);
    }

    #[test]
    fn the_byte_bound_keeps_at_least_the_newest_report() {
        let tmp = tempfile::tempdir().unwrap();
        let config = SpoolConfig {
            max_bytes: 1,
            ..SpoolConfig::default()
        };
        let spool = Spool::open(tmp.path().join("spool"), &config).unwrap();
        spool.push(&new_report()).unwrap();
        let (newest, dropped) = spool.push(&new_report()).unwrap();
        assert_eq!(dropped, 1);
        assert_eq!(spool.pending().unwrap(), vec![newest]);
    }

    #[test]
    fn a_corrupt_file_is_quarantined_and_does_not_block_the_queue() {
        let tmp = tempfile::tempdir().unwrap();
        let spool = open(tmp.path(), 100);
        let first = spool.push(&new_report()).unwrap().0;
        let second = spool.push(&new_report()).unwrap().0;
        let third = spool.push(&new_report()).unwrap().0;
        fs::write(spool.dir().join(&first.name), b"\xff\xff\xff\xff").unwrap();
        fs::write(spool.dir().join(&second.name), b"").unwrap();
        let mut fake = Fake::default();
        let outcome = drain_now(&spool, &mut fake).unwrap();
        assert_eq!(
            outcome,
            DrainOutcome {
                delivered: 1,
                quarantined: 2
            }
        );
        assert_eq!(fake.sent.len(), 1);
        assert!(third.name.contains(&fake.sent[0]));
        assert!(spool.quarantine_dir().join(&first.name).exists());
        assert!(spool.quarantine_dir().join(&second.name).exists());
        assert_eq!(spool.stats().unwrap().quarantined, 2);
        assert_eq!(spool.stats().unwrap().depth, 0);
    }

    #[test]
    fn a_rejected_report_is_quarantined_and_the_next_one_is_sent() {
        let tmp = tempfile::tempdir().unwrap();
        let spool = open(tmp.path(), 100);
        let rejected = spool.push(&new_report()).unwrap().0;
        spool.push(&new_report()).unwrap();
        let mut fake = Fake::default();
        fake.answers
            .push_back(Err(DeliveryError::Rejected("host: is required".into())));
        let outcome = drain_now(&spool, &mut fake).unwrap();
        assert_eq!(
            outcome,
            DrainOutcome {
                delivered: 1,
                quarantined: 1
            }
        );
        assert!(spool.quarantine_dir().join(&rejected.name).exists());
    }

    #[test]
    fn a_leftover_temp_file_is_ignored_and_cleaned_at_open() {
        let tmp = tempfile::tempdir().unwrap();
        let spool = open(tmp.path(), 100);
        let kept = spool.push(&new_report()).unwrap().0;
        let torn = spool
            .dir()
            .join(format!("{TEMP_PREFIX}{:020}-x{EXTENSION}", 2));
        fs::write(&torn, b"half a rep").unwrap();
        assert_eq!(
            spool.pending().unwrap(),
            vec![kept.clone()],
            "a temp file is never listed"
        );
        let reopened = open(tmp.path(), 100);
        assert!(!torn.exists());
        assert_eq!(reopened.pending().unwrap(), vec![kept]);
    }

    #[cfg(unix)]
    #[test]
    fn spool_files_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let spool = open(tmp.path(), 100);
        let entry = spool.push(&new_report()).unwrap().0;
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(spool.dir()), 0o700);
        assert_eq!(mode(&spool.dir().join(entry.name)), 0o600);
    }

    #[test]
    fn a_report_id_that_is_not_a_uuid_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let spool = open(tmp.path(), 100);
        let mut bad = new_report();
        bad.report_id = "../../etc/passwd".into();
        assert!(matches!(spool.push(&bad), Err(SpoolError::BadReportId(_))));
        assert!(spool.pending().unwrap().is_empty());
    }

    #[test]
    fn a_full_disk_is_named_as_such() {
        let err = io_error(
            Path::new("/var/lib/tillsyn-agent/spool/x"),
            io::Error::from_raw_os_error(28),
        );
        let text = err.to_string();
        assert!(matches!(err, SpoolError::DiskFull { .. }));
        assert!(
            text.contains("/var/lib/tillsyn-agent/spool/x") && text.contains("disk full"),
            "{text}"
        );
    }

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_cap() {
        let config = SpoolConfig {
            retry_min_ms: 1000,
            retry_max_ms: 8000,
            ..SpoolConfig::default()
        };
        let mut backoff = Backoff::new(&config);
        for base in [1000u64, 2000, 4000, 8000, 8000, 8000] {
            let delay = backoff.next_delay();
            let base = Duration::from_millis(base);
            assert!(
                delay >= base / 2 && delay <= base,
                "{delay:?} outside {base:?}"
            );
        }
        backoff.reset();
        assert!(backoff.next_delay() <= Duration::from_secs(1));
    }
}
