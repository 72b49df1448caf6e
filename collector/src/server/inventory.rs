//! `Inventory.Report` and `Inventory.Heartbeat`: authenticate by certificate, validate, store.

use tillsyn_proto::v1::{
    HeartbeatRequest, HeartbeatResponse, ReportRequest, ReportResponse, inventory_server::Inventory,
};
use tonic::{Request, Response, Status};

use super::identity::{authenticate, check_host};
use super::{ServerState, now_ms};
use crate::ingest;
use crate::store::Heartbeat;

/// The inventory service.
pub struct InventoryService {
    state: ServerState,
}

impl InventoryService {
    /// Wraps the shared state.
    pub fn new(state: ServerState) -> Self {
        Self { state }
    }
}

#[tonic::async_trait]
impl Inventory for InventoryService {
    async fn report(
        &self,
        request: Request<ReportRequest>,
    ) -> Result<Response<ReportResponse>, Status> {
        let identity = authenticate(&self.state, &request).await?;
        let report = request.into_inner();
        check_host(self.state.store.as_ref(), &identity, &report.host_id).await?;
        let input = ingest::validate(&identity.agent_id, &report).map_err(|e| {
            tracing::warn!(agent_id = %identity.agent_id, error = %e, "report refused");
            Status::invalid_argument(e.to_string())
        })?;
        let outcome = self
            .state
            .store
            .ingest_report(input, now_ms())
            .await
            .map_err(|e| super::internal(&e))?;
        tracing::info!(
            agent_id = %identity.agent_id,
            report_id = %report.report_id,
            duplicate = outcome.duplicate,
            resync_required = outcome.resync_required,
            "report stored"
        );
        Ok(Response::new(ReportResponse {
            duplicate: outcome.duplicate,
            asset_id: outcome.asset_id,
            resync_required: outcome.resync_required,
        }))
    }

    async fn heartbeat(
        &self,
        request: Request<HeartbeatRequest>,
    ) -> Result<Response<HeartbeatResponse>, Status> {
        let identity = authenticate(&self.state, &request).await?;
        let beat = request.into_inner();
        crate::ingest::check_identifier("agent_version", &beat.agent_version)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        check_host(self.state.store.as_ref(), &identity, &beat.host_id).await?;
        let now = now_ms();
        self.state
            .store
            .touch_agent(
                &identity.agent_id,
                &Heartbeat {
                    agent_version: beat.agent_version,
                    spool_depth: i64::try_from(beat.spool_depth).unwrap_or(i64::MAX),
                    spool_dropped: i64::try_from(beat.spool_dropped).unwrap_or(i64::MAX),
                },
                now,
            )
            .await
            .map_err(|e| super::internal(&e))?;
        Ok(Response::new(HeartbeatResponse {
            server_time_unix_ms: now,
        }))
    }
}
