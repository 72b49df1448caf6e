//! `Inventory.Report` and `Inventory.Heartbeat`: authenticate by certificate, validate, store
//! (a heartbeat that says nothing new right after a contact is not written; see
//! `already_stored`).

use tillsyn_proto::v1::{
    HeartbeatRequest, HeartbeatResponse, ReportRequest, ReportResponse, inventory_server::Inventory,
};
use tonic::{Request, Response, Status};

use super::identity::{authenticate, check_host};
use super::{ServerState, now_ms};
use crate::ingest;
use crate::store::{AgentRecord, Heartbeat};

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
        let heartbeat = Heartbeat {
            agent_version: beat.agent_version,
            spool_depth: i64::try_from(beat.spool_depth).unwrap_or(i64::MAX),
            spool_dropped: i64::try_from(beat.spool_dropped).unwrap_or(i64::MAX),
        };
        if !already_stored(&identity.agent, &heartbeat, now) {
            self.state
                .store
                .touch_agent(&identity.agent_id, &heartbeat, now)
                .await
                .map_err(|e| super::internal(&e))?;
        }
        Ok(Response::new(HeartbeatResponse {
            server_time_unix_ms: now,
        }))
    }
}

/// How old a stored contact may be for a heartbeat that says nothing new to leave it: agents
/// send one after every report (every 5 minutes by default), the report has just moved
/// `last_seen_at`, and what reads it counts in minutes (`agent list`) or days (the stale-agent
/// rule). Skipping that write saves a write transaction per report.
const CONTACT_RESOLUTION_MS: i64 = 60_000;

/// Whether `heartbeat` at `now` would change nothing that matters of what is `stored`: the
/// same version and spool figures, and a last contact under [`CONTACT_RESOLUTION_MS`] old.
fn already_stored(stored: &AgentRecord, heartbeat: &Heartbeat, now: i64) -> bool {
    stored.agent_version == heartbeat.agent_version
        && stored.spool_depth == heartbeat.spool_depth
        && stored.spool_dropped == heartbeat.spool_dropped
        && stored
            .last_seen_at
            .is_some_and(|at| (0..CONTACT_RESOLUTION_MS).contains(&(now - at)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(at: Option<i64>) -> AgentRecord {
        AgentRecord {
            agent_id: "a".into(),
            hostname: "h".into(),
            cert_sha256: String::new(),
            cert_not_after: 0,
            labels: std::collections::BTreeMap::new(),
            claimed_labels: std::collections::BTreeMap::new(),
            token_labels: std::collections::BTreeMap::new(),
            token_name: None,
            cert_issued_at: None,
            cert_renewals: 0,
            prev_cert_sha256: None,
            host_id: None,
            clone_host_id: None,
            clone_detected_at: None,
            agent_version: "1.0".into(),
            enrolled_at: 0,
            last_seen_at: at,
            revoked_at: None,
            revoked_by: None,
            revoke_reason: None,
            spool_depth: 0,
            spool_dropped: 2,
        }
    }

    fn beat(version: &str, depth: i64, dropped: i64) -> Heartbeat {
        Heartbeat {
            agent_version: version.into(),
            spool_depth: depth,
            spool_dropped: dropped,
        }
    }

    #[test]
    fn a_heartbeat_that_says_nothing_new_soon_after_a_contact_is_not_written() {
        let same = beat("1.0", 0, 2);
        assert!(already_stored(&stored(Some(1_000)), &same, 1_000));
        assert!(already_stored(&stored(Some(1_000)), &same, 60_999));
        assert!(!already_stored(&stored(Some(1_000)), &same, 61_000));
        assert!(!already_stored(&stored(None), &same, 1_000));
        // A clock that went back is written, not trusted.
        assert!(!already_stored(&stored(Some(5_000)), &same, 1_000));
        for other in [beat("1.1", 0, 2), beat("1.0", 3, 2), beat("1.0", 0, 3)] {
            assert!(!already_stored(&stored(Some(1_000)), &other, 1_000));
        }
    }
}
