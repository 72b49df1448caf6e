//! The reporting loop: inventory, report, wait, repeat. `--once` sends one report and returns
//! after the collector's acknowledgement.

use std::path::PathBuf;
use std::time::Duration;

use tillsyn_proto::v1::{HeartbeatRequest, ReportResponse, inventory_client::InventoryClient};
use tonic::transport::Channel;

use crate::client::{self, ClientError};
use crate::state::{self, AgentDir, StateError};
use crate::{inventory, report};

/// What `run` needs.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Send one report and return.
    pub once: bool,
    /// Read facts from this root instead of `/`.
    pub root: PathBuf,
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
    /// The collector refused the report.
    #[error("the collector refused the report: {}", .0.message())]
    Refused(tonic::Status),
}

/// Opens the agent's mutual-TLS channel from the files in `dir`.
pub async fn connect(dir: &AgentDir) -> Result<Channel, RunError> {
    let config = dir.load_config()?;
    let ca = state::read_text(&dir.ca_path())?;
    let cert = state::read_text(&dir.cert_path())?;
    let key = state::read_text(&dir.key_path())?;
    Ok(client::connect(&config.collector, &ca, Some((&cert, &key))).await?)
}

/// Collects one inventory and sends it; returns the collector's answer.
pub async fn report_once(dir: &AgentDir, options: &RunOptions) -> Result<ReportResponse, RunError> {
    let channel = connect(dir).await?;
    let root = options.root.clone();
    // Fact collection reads many files; keep it off the async workers.
    let inventory = tokio::task::spawn_blocking(move || inventory::collect(&root))
        .await
        .unwrap_or_default();
    let request = report::build(&inventory);
    let report_id = request.report_id.clone();
    let mut client = InventoryClient::new(channel);
    let response = client
        .report(request)
        .await
        .map_err(RunError::Refused)?
        .into_inner();
    tracing::info!(%report_id, asset_id = %response.asset_id, duplicate = response.duplicate, "report acknowledged");
    client
        .heartbeat(HeartbeatRequest {
            agent_version: crate::VERSION.to_string(),
            ..HeartbeatRequest::default()
        })
        .await
        .map_err(RunError::Refused)?;
    Ok(response)
}

/// Runs until `shutdown` resolves (or once). Failed reports are logged and retried next round.
pub async fn run(
    dir: &AgentDir,
    options: &RunOptions,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), RunError> {
    if options.once {
        return report_once(dir, options).await.map(|_| ());
    }
    let interval = Duration::from_secs(dir.load_config()?.interval_seconds.max(1));
    tokio::pin!(shutdown);
    loop {
        if let Err(error) = report_once(dir, options).await {
            tracing::warn!(%error, "report failed; retrying at the next interval");
        }
        tokio::select! {
            () = &mut shutdown => return Ok(()),
            () = tokio::time::sleep(interval) => {}
        }
    }
}
