//! The reporting loop: inventory -> spool -> drain -> heartbeat, then wait and repeat. Every
//! report goes through the on-disk [`Spool`] before it is sent, so nothing is lost while the
//! collector is away; failed drains are retried with [`Backoff`] between inventories.
//! `--once` collects one inventory (or `--reports N`), drains the spool and returns only when
//! everything pending is acknowledged.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tillsyn_proto::v1::{
    HeartbeatRequest, ReportRequest, ReportResponse, inventory_client::InventoryClient,
};
use tokio::time::Instant;
use tonic::Code;
use tonic::transport::Channel;

use crate::client::{self, ClientError};
use crate::renew::{self, RenewError};
use crate::spool::{
    self, Backoff, Deliver, DeliveryError, DrainError, DrainOutcome, Spool, SpoolError,
};
use crate::state::{self, AgentDir, StateError};
use crate::{delta, host_identity, inventory, jobs, report};

/// What `run` needs.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Send one report and return.
    pub once: bool,
    /// Read facts from this root instead of `/`.
    pub root: PathBuf,
}

/// How `run --once` delivers.
#[derive(Clone, Debug)]
pub struct OnceOptions {
    /// Inventories to collect and spool, one after the other, draining as it goes (load and
    /// fault tests use more than one).
    pub reports: u32,
    /// How long to keep retrying (with backoff) while the collector is unavailable; zero makes
    /// one attempt.
    pub retry_for: Duration,
    /// Pull scheduled jobs first, waiting up to this long; when jobs arrive they are run
    /// instead of the plain inventory.
    pub jobs_wait: Option<Duration>,
}

impl Default for OnceOptions {
    fn default() -> Self {
        Self {
            reports: 1,
            retry_for: Duration::ZERO,
            jobs_wait: None,
        }
    }
}

/// Errors of the reporting loop.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// State directory problem.
    #[error(transparent)]
    State(#[from] StateError),
    /// No channel to the collector.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The agent's certificate is unusable or expired (the message says what to do).
    #[error(transparent)]
    Certificate(#[from] RenewError),
    /// The collector refused the report.
    #[error("the collector refused the report: {}", .0.message())]
    Refused(tonic::Status),
    /// The spool failed (disk full, permissions); the error names the file.
    #[error(transparent)]
    Spool(#[from] SpoolError),
    /// The inventory task failed.
    #[error("inventory failed: {0}")]
    Inventory(String),
    /// Delivery stopped with reports still spooled.
    #[error("{source}; {pending} report(s) stay spooled in {} and will be sent by the next run", spool.display())]
    Undelivered {
        /// Why delivery stopped.
        source: DeliveryError,
        /// Reports still waiting.
        pending: usize,
        /// The spool directory.
        spool: PathBuf,
    },
    /// The drain finished without any acknowledgement (the spooled files vanished meanwhile).
    #[error("no report was acknowledged; is another agent process draining the same spool?")]
    Unacknowledged,
    /// Some reports could not be delivered at all and were set aside.
    #[error("{count} spooled report(s) were moved to {} and not sent (see the log)", quarantine.display())]
    Quarantined {
        /// How many.
        count: u64,
        /// The quarantine directory.
        quarantine: PathBuf,
    },
}

/// Opens the agent's mutual-TLS channel from the files in `dir`; an expired certificate is
/// refused here, with what to do, instead of as a handshake failure.
pub async fn connect(dir: &AgentDir) -> Result<Channel, RunError> {
    let config = dir.load_config()?;
    dir.recover_identity()?;
    renew::check_not_expired(dir)?;
    let ca = state::read_text(&dir.ca_path())?;
    let cert = state::read_text(&dir.cert_path())?;
    let key = state::read_text(&dir.key_path())?;
    Ok(client::connect(&config.collector, &ca, Some((&cert, &key))).await?)
}

/// Collects one inventory, spools it and drains the spool; returns the collector's answer to
/// the newest report.
pub async fn report_once(dir: &AgentDir, options: &RunOptions) -> Result<ReportResponse, RunError> {
    once(dir, options, &OnceOptions::default()).await
}

/// `run --once`: collects `reports` inventories, spooling each and draining as it goes, then
/// drains until the spool is empty or `retry_for` has passed.
pub async fn once(
    dir: &AgentDir,
    options: &RunOptions,
    once: &OnceOptions,
) -> Result<ReportResponse, RunError> {
    let config = dir.load_config()?;
    let spool = Spool::open(dir.spool_path(), &config.spool)?;
    let mut link = CollectorLink::new(dir.clone(), &options.root);
    warn_if_copied(dir, &config, &options.root);
    renew_if_due(dir, &options.root).await;
    let rounds = if run_pulled_jobs(dir, &spool, &options.root, once.jobs_wait).await? {
        0
    } else {
        once.reports.max(1)
    };
    let mut quarantined = 0;
    for round in 1..=rounds {
        collect_and_spool(dir, &spool, &options.root).await?;
        if round == rounds {
            break;
        }
        // Send as we go, like the long-running loop; an outage here is retried below.
        match spool::drain(&spool, &mut link).await {
            Ok(outcome) => quarantined += outcome.quarantined,
            Err(DrainError::Stopped {
                source: DeliveryError::Unavailable(message),
                outcome,
                ..
            }) => {
                quarantined += outcome.quarantined;
                tracing::warn!(%message, "collector unavailable; reports stay spooled");
            }
            Err(error) => return Err(undelivered(&spool, error)),
        }
    }
    let outcome = drain_with_retry(
        &spool,
        &mut link,
        &Backoff::new(&config.spool),
        once.retry_for,
    )
    .await?;
    quarantined += outcome.quarantined;
    link.heartbeat(&spool).await;
    if quarantined > 0 {
        return Err(RunError::Quarantined {
            count: quarantined,
            quarantine: spool.quarantine_dir(),
        });
    }
    link.last.ok_or(RunError::Unacknowledged)
}

/// Runs until `shutdown` resolves (or once). Inventories are taken every interval; the spool is
/// drained after each and, while the collector is away, retried with backoff in between.
pub async fn run(
    dir: &AgentDir,
    options: &RunOptions,
    once_options: &OnceOptions,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), RunError> {
    if options.once {
        return once(dir, options, once_options).await.map(|_| ());
    }
    let config = dir.load_config()?;
    let interval = Duration::from_secs(config.interval_seconds.max(1));
    let spool = Spool::open(dir.spool_path(), &config.spool)?;
    let mut link = CollectorLink::new(dir.clone(), &options.root);
    let mut backoff = Backoff::new(&config.spool);
    let mut next_inventory = Instant::now();
    warn_if_copied(dir, &config, &options.root);
    tokio::pin!(shutdown);
    loop {
        if let Some(next) = renew_if_due(dir, &options.root).await {
            // A new certificate needs a new channel.
            link.client = None;
            tracing::debug!(next_renewal = %renew::format_ms(next), "renewal scheduled");
        }
        if Instant::now() >= next_inventory {
            next_inventory = Instant::now() + interval;
            if let Err(error) = collect_and_spool(dir, &spool, &options.root).await {
                tracing::error!(%error, "inventory not spooled; trying again at the next interval");
            }
        }
        let wait = match spool::drain(&spool, &mut link).await {
            Ok(_) => {
                backoff.reset();
                link.heartbeat(&spool).await;
                next_inventory.saturating_duration_since(Instant::now())
            }
            Err(error) => {
                let delay = backoff.next_delay();
                tracing::warn!(%error, retry_in_ms = delay.as_millis(), "spool not drained");
                delay.min(next_inventory.saturating_duration_since(Instant::now()))
            }
        };
        // Wake for the renewal too (short test lifetimes renew well within an interval).
        let wait = wait.min(until_renewal(dir));
        // Waiting is a long-poll for jobs; if the collector is away it is a plain sleep.
        let pulled = tokio::select! {
            () = &mut shutdown => return Ok(()),
            pulled = wait_for_jobs(dir, wait) => pulled,
        };
        for job in &pulled {
            if let Err(error) = run_job(dir, &spool, &options.root, job).await {
                tracing::warn!(%error, job_id = %job.job_id, "job failed");
            }
        }
    }
}

/// Renews the certificate when its renewal time has come; returns the new renewal time. A
/// failure is logged (the next attempt comes with the next loop round) and the agent keeps
/// reporting with its current certificate until it expires.
async fn renew_if_due(dir: &AgentDir, root: &Path) -> Option<i64> {
    let times = match renew::certificate_times_at(&dir.cert_path()) {
        Ok(times) => times,
        Err(error) => {
            tracing::error!(%error, "cannot read the agent certificate");
            return None;
        }
    };
    if inventory::now_unix_ms() < times.renew_at_ms {
        return None;
    }
    match renew::renew(dir, root).await {
        Ok(renewed) => Some(renewed.renew_at_ms),
        Err(error @ RenewError::Expired { .. }) => {
            tracing::error!(%error, "certificate expired");
            None
        }
        Err(error) => {
            tracing::warn!(
                %error,
                expires = %renew::format_ms(times.not_after_ms),
                "certificate renewal failed; retrying later, reporting continues until it expires"
            );
            None
        }
    }
}

/// Time until the renewal is due; a failed renewal is retried after a sixtieth of the
/// lifetime (at least a second, at most ten minutes) instead of in a tight loop.
fn until_renewal(dir: &AgentDir) -> Duration {
    let Ok(times) = renew::certificate_times_at(&dir.cert_path()) else {
        return Duration::from_mins(10);
    };
    let now = inventory::now_unix_ms();
    let retry = ((times.not_after_ms - times.not_before_ms) / 60).clamp(1_000, 600_000);
    let due = if now >= times.renew_at_ms {
        retry
    } else {
        times.renew_at_ms - now
    };
    Duration::from_millis(u64::try_from(due).unwrap_or(1_000))
}

/// Logs loudly when the state directory was enrolled on another host: the collector will
/// refuse this host's reports as a clone until it is enrolled with its own token.
fn warn_if_copied(dir: &AgentDir, config: &state::AgentConfig, root: &Path) {
    if let Some(enrolled_on) = &config.host_id
        && *enrolled_on != host_identity::host_id(root)
    {
        tracing::error!(
            dir = %dir.root().display(),
            agent_id = %config.agent_id,
            "this state directory was enrolled on another host (its machine identity differs); the collector refuses reports from a copy: run `tillsyn-agent enroll --force` with this host's own token"
        );
    }
}

async fn wait_for_jobs(dir: &AgentDir, wait: Duration) -> Vec<tillsyn_proto::v1::Job> {
    let started = Instant::now();
    match jobs::pull(dir, wait).await {
        Ok(pulled) => pulled,
        Err(error) => {
            tracing::debug!(%error, "no jobs pulled");
            tokio::time::sleep(wait.saturating_sub(started.elapsed())).await;
            Vec::new()
        }
    }
}

/// Pulls jobs (when asked to) and runs each; returns whether any job was pulled.
async fn run_pulled_jobs(
    dir: &AgentDir,
    spool: &Spool,
    root: &Path,
    wait: Option<Duration>,
) -> Result<bool, RunError> {
    let Some(wait) = wait else { return Ok(false) };
    let pulled = jobs::pull(dir, wait).await?;
    for job in &pulled {
        run_job(dir, spool, root, job).await?;
    }
    Ok(!pulled.is_empty())
}

/// Runs one job after its jitter: its report (an inventory, plus the devices of a discovery
/// sweep) is spooled tagged with the job id, which completes the job; a job this agent cannot
/// run is closed with the reason.
async fn run_job(
    dir: &AgentDir,
    spool: &Spool,
    root: &Path,
    job: &tillsyn_proto::v1::Job,
) -> Result<(), RunError> {
    tokio::time::sleep(jobs::jitter(job)).await;
    tracing::info!(job_id = %job.job_id, schedule = %job.schedule, kind = %job.kind, "running job");
    match job.kind.as_str() {
        "inventory" => collect_and_spool_for(dir, spool, root, Some(&job.job_id)).await,
        "discovery" => match jobs::discovery_config(job) {
            Ok(config) => {
                let sweep = crate::discovery::run(config).await;
                let devices = sweep
                    .devices
                    .iter()
                    .map(crate::discovery::Device::to_proto)
                    .collect();
                collect_and_spool_with(dir, spool, root, Some(&job.job_id), devices).await
            }
            Err(reason) => jobs::fail(dir, job, &reason).await,
        },
        other => jobs::fail(dir, job, &format!("this agent cannot run {other:?} jobs")).await,
    }
}

/// `discover --report`: spools this host's inventory with the sweep's devices and delivers it.
pub async fn report_devices(
    dir: &AgentDir,
    root: &Path,
    devices: Vec<tillsyn_proto::v1::Device>,
) -> Result<ReportResponse, RunError> {
    let config = dir.load_config()?;
    let spool = Spool::open(dir.spool_path(), &config.spool)?;
    collect_and_spool_with(dir, &spool, root, None, devices).await?;
    let mut link = CollectorLink::new(dir.clone(), root);
    let outcome = drain_with_retry(
        &spool,
        &mut link,
        &Backoff::new(&config.spool),
        Duration::ZERO,
    )
    .await?;
    link.heartbeat(&spool).await;
    if outcome.quarantined > 0 {
        return Err(RunError::Quarantined {
            count: outcome.quarantined,
            quarantine: spool.quarantine_dir(),
        });
    }
    link.last.ok_or(RunError::Unacknowledged)
}

/// Collects an inventory off the async workers (it reads many files) and spools its report.
async fn collect_and_spool(dir: &AgentDir, spool: &Spool, root: &Path) -> Result<(), RunError> {
    collect_and_spool_for(dir, spool, root, None).await
}

async fn collect_and_spool_for(
    dir: &AgentDir,
    spool: &Spool,
    root: &Path,
    job_id: Option<&str>,
) -> Result<(), RunError> {
    collect_and_spool_with(dir, spool, root, job_id, Vec::new()).await
}

/// Spools this host's inventory together with `devices` found by a discovery sweep.
async fn collect_and_spool_with(
    dir: &AgentDir,
    spool: &Spool,
    root: &Path,
    job_id: Option<&str>,
    devices: Vec<tillsyn_proto::v1::Device>,
) -> Result<(), RunError> {
    let inventory_root = root.to_path_buf();
    let inventory = tokio::task::spawn_blocking(move || inventory::collect(&inventory_root))
        .await
        .map_err(|e| RunError::Inventory(e.to_string()))?;
    let mut request = report::build(&inventory);
    request.job_id = job_id.unwrap_or_default().to_string();
    request.host_id = host_identity::host_id(root);
    // Numbered, and a delta against the last report built when the config allows it.
    let config = dir.load_config()?.delta;
    let next = delta::prepare(delta::load(dir).as_ref(), &config, &mut request);
    request.devices = devices
        .into_iter()
        .map(|mut device| {
            device.observations = report::unique_names(std::mem::take(&mut device.observations));
            device
        })
        .collect();
    let (entry, dropped) = spool.push(&request)?;
    delta::save(dir, &next)?;
    tracing::debug!(file = %entry.name, dropped, "report spooled");
    Ok(())
}

/// Drains; while the collector is unavailable, waits with backoff and tries again until
/// `retry_for` has passed.
async fn drain_with_retry(
    spool: &Spool,
    link: &mut CollectorLink,
    backoff: &Backoff,
    retry_for: Duration,
) -> Result<DrainOutcome, RunError> {
    let deadline = Instant::now() + retry_for;
    let mut backoff = backoff.clone();
    let mut total = DrainOutcome::default();
    loop {
        let error = match spool::drain(spool, link).await {
            Ok(outcome) => {
                total.delivered += outcome.delivered;
                total.quarantined += outcome.quarantined;
                return Ok(total);
            }
            Err(error) => error,
        };
        let remaining = deadline.saturating_duration_since(Instant::now());
        match &error {
            DrainError::Stopped {
                source: DeliveryError::Unavailable(message),
                outcome,
                ..
            } if !remaining.is_zero() => {
                total.delivered += outcome.delivered;
                total.quarantined += outcome.quarantined;
                let delay = backoff.next_delay().min(remaining);
                tracing::warn!(%message, retry_in_ms = delay.as_millis(), "collector unavailable; retrying");
                tokio::time::sleep(delay).await;
            }
            _ => return Err(undelivered(spool, error)),
        }
    }
}

fn undelivered(spool: &Spool, error: DrainError) -> RunError {
    match error {
        DrainError::Spool(e) => RunError::Spool(e),
        DrainError::Stopped {
            source, pending, ..
        } => RunError::Undelivered {
            source,
            pending,
            spool: spool.dir().to_path_buf(),
        },
    }
}

/// The gRPC side of delivery: one channel, reopened after a transport failure.
struct CollectorLink {
    dir: AgentDir,
    client: Option<InventoryClient<Channel>>,
    /// The answer to the last acknowledged report.
    last: Option<ReportResponse>,
    /// This host's identity, sent with heartbeats.
    host_id: String,
}

impl CollectorLink {
    fn new(dir: AgentDir, root: &Path) -> Self {
        Self {
            dir,
            client: None,
            last: None,
            host_id: host_identity::host_id(root),
        }
    }

    async fn client(&mut self) -> Result<&mut InventoryClient<Channel>, DeliveryError> {
        if self.client.is_none() {
            let channel = connect(&self.dir).await.map_err(|e| match e {
                RunError::Client(ClientError::Connect { .. }) => {
                    DeliveryError::Unavailable(e.to_string())
                }
                other => DeliveryError::Refused(other.to_string()),
            })?;
            self.client = Some(InventoryClient::new(channel));
        }
        self.client
            .as_mut()
            .ok_or_else(|| DeliveryError::Unavailable("no channel".into()))
    }

    /// Tells the collector the spool's depth and drops; a failure is only logged, because the
    /// reports themselves are already acknowledged.
    async fn heartbeat(&mut self, spool: &Spool) {
        let stats = match spool.stats() {
            Ok(stats) => stats,
            Err(error) => {
                tracing::warn!(%error, "spool statistics unavailable");
                spool::SpoolStats::default()
            }
        };
        let request = HeartbeatRequest {
            agent_version: crate::VERSION.to_string(),
            spool_depth: stats.depth,
            spool_dropped: stats.dropped,
            host_id: self.host_id.clone(),
        };
        let result = match self.client().await {
            Ok(client) => client
                .heartbeat(request)
                .await
                .map(|_| ())
                .map_err(|s| s.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(error) = result {
            tracing::warn!(%error, "heartbeat failed");
        }
    }
}

impl Deliver for CollectorLink {
    async fn deliver(&mut self, report: ReportRequest) -> Result<(), DeliveryError> {
        let report_id = report.report_id.clone();
        let client = self.client().await?;
        match client.report(report).await {
            Ok(response) => {
                let response = response.into_inner();
                tracing::info!(%report_id, asset_id = %response.asset_id, duplicate = response.duplicate, "report acknowledged");
                if response.resync_required {
                    // A report before this delta never reached the collector: start over full.
                    tracing::warn!(%report_id, "the collector asked for a full report");
                    if let Err(error) = delta::reset(&self.dir) {
                        tracing::warn!(%error, "delta state not reset; the next report may be refused again");
                    }
                }
                self.last = Some(response);
                Ok(())
            }
            Err(status) => {
                let error = classify(&status);
                if matches!(error, DeliveryError::Unavailable(_)) {
                    // The connection may be dead (collector restarted); reconnect next time.
                    self.client = None;
                }
                Err(error)
            }
        }
    }
}

/// Decides what a refusal means for the report: only content errors set it aside; identity
/// errors stop the agent; everything else (unavailable, timeouts, storage errors) is retried.
fn classify(status: &tonic::Status) -> DeliveryError {
    let text = format!("{:?}: {}", status.code(), status.message());
    match status.code() {
        Code::InvalidArgument | Code::OutOfRange => DeliveryError::Rejected(text),
        Code::Unauthenticated | Code::PermissionDenied | Code::Unimplemented => {
            DeliveryError::Refused(text)
        }
        _ => DeliveryError::Unavailable(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_content_errors_quarantine_a_report() {
        let rejected = classify(&tonic::Status::invalid_argument("host: is required"));
        assert!(matches!(rejected, DeliveryError::Rejected(_)));
        let refused = classify(&tonic::Status::permission_denied("revoked"));
        assert!(matches!(refused, DeliveryError::Refused(_)));
        for status in [
            tonic::Status::unavailable("down"),
            tonic::Status::internal("internal storage error"),
            tonic::Status::deadline_exceeded("slow"),
        ] {
            assert!(
                matches!(classify(&status), DeliveryError::Unavailable(_)),
                "{status:?}"
            );
        }
    }
}
