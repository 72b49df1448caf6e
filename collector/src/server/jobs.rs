//! `Jobs.Pull` (long-poll) and `Jobs.Complete`. Jobs can be created by this process's scheduler
//! or by another process (`scan run-now` on the CLI), so a waiting pull re-checks the store
//! every second until its wait ends.

use std::time::Duration;

use tillsyn_proto::v1::{
    CompleteJobRequest, CompleteJobResponse, Job, PullJobsRequest, PullJobsResponse,
    jobs_server::Jobs,
};
use tonic::{Request, Response, Status};

use super::identity::authenticate;
use super::{ServerState, now_ms};
use crate::scans::JobParams;
use crate::store::JobRecord;

/// Longest long-poll the collector grants, seconds.
pub const MAX_WAIT_SECONDS: u32 = 60;

/// The jobs service.
pub struct JobsService {
    state: ServerState,
}

impl JobsService {
    /// Wraps the shared state.
    pub fn new(state: ServerState) -> Self {
        Self { state }
    }
}

fn to_wire(job: JobRecord) -> Job {
    let params: JobParams = serde_json::from_value(job.params).unwrap_or_default();
    Job {
        job_id: job.job_id,
        kind: job.kind,
        schedule: job.schedule,
        jitter_seconds: params.jitter_seconds,
        discovery_targets: params.discovery_targets,
        discovery_ports: params.discovery_ports,
    }
}

#[tonic::async_trait]
impl Jobs for JobsService {
    async fn pull(
        &self,
        request: Request<PullJobsRequest>,
    ) -> Result<Response<PullJobsResponse>, Status> {
        let identity = authenticate(&self.state, &request).await?;
        let wait = request.into_inner().wait_seconds.min(MAX_WAIT_SECONDS);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(u64::from(wait));
        loop {
            let jobs = self
                .state
                .store
                .pull_jobs(&identity.agent_id, now_ms())
                .await
                .map_err(|e| super::internal(&e))?;
            if !jobs.is_empty() || tokio::time::Instant::now() >= deadline {
                return Ok(Response::new(PullJobsResponse {
                    jobs: jobs.into_iter().map(to_wire).collect(),
                }));
            }
            tokio::time::sleep(Duration::from_secs(1).min(deadline - tokio::time::Instant::now()))
                .await;
        }
    }

    async fn complete(
        &self,
        request: Request<CompleteJobRequest>,
    ) -> Result<Response<CompleteJobResponse>, Status> {
        let identity = authenticate(&self.state, &request).await?;
        let done = request.into_inner();
        // The agent's error text is free text: escaped by the text gate, with the original
        // length appended when anything was escaped.
        let error = (!done.ok).then(|| {
            if done.error.is_empty() {
                return "failed without a reason".to_string();
            }
            let gated = tillsyn_text::sanitise(&done.error);
            if gated.is_unchanged() {
                done.error.clone()
            } else {
                format!(
                    "{} [{} control character(s) shown escaped; {} bytes as received]",
                    gated.text, gated.escaped, gated.original_bytes
                )
            }
        });
        let closed = self
            .state
            .store
            .complete_job(&identity.agent_id, &done.job_id, error.as_deref(), now_ms())
            .await
            .map_err(|e| super::internal(&e))?;
        if !closed {
            return Err(Status::not_found(format!(
                "no open job {} for this agent",
                tillsyn_text::output::terminal(&done.job_id)
            )));
        }
        Ok(Response::new(CompleteJobResponse {}))
    }
}
