//! Scheduled work from the collector (`tillsyn.v1.Jobs`): long-poll for jobs, wait a random
//! share of each job's jitter so a fleet does not stampede, run it, and let its report (tagged
//! with the job id) complete it. A job this agent cannot run is closed with an error so the
//! collector's history says why.

use std::time::Duration;

use rand::Rng;
use tillsyn_proto::v1::{CompleteJobRequest, Job, PullJobsRequest, jobs_client::JobsClient};

use crate::run::{RunError, connect};
use crate::state::AgentDir;

/// Asks the collector for pending jobs, waiting up to `wait` for some to appear.
pub async fn pull(dir: &AgentDir, wait: Duration) -> Result<Vec<Job>, RunError> {
    let channel = connect(dir).await?;
    let wait_seconds = u32::try_from(wait.as_secs().min(60)).unwrap_or(60);
    let response = JobsClient::new(channel)
        .pull(PullJobsRequest { wait_seconds })
        .await
        .map_err(RunError::Refused)?;
    Ok(response.into_inner().jobs)
}

/// Closes a job that could not run.
pub async fn fail(dir: &AgentDir, job: &Job, error: &str) -> Result<(), RunError> {
    let channel = connect(dir).await?;
    JobsClient::new(channel)
        .complete(CompleteJobRequest { job_id: job.job_id.clone(), ok: false, error: error.to_string() })
        .await
        .map_err(RunError::Refused)?;
    Ok(())
}

/// The random delay before running `job`: uniform in `0..=jitter_seconds`.
pub fn jitter(job: &Job) -> Duration {
    if job.jitter_seconds == 0 {
        return Duration::ZERO;
    }
    let millis = rand::rng().random_range(0..=u64::from(job.jitter_seconds) * 1000);
    Duration::from_millis(millis)
}

/// Which jobs this agent build can run.
pub fn supported(job: &Job) -> Result<(), String> {
    match job.kind.as_str() {
        "inventory" => Ok(()),
        other => Err(format!("this agent cannot run {other:?} jobs")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_the_bound() {
        let job = Job { jitter_seconds: 2, ..Job::default() };
        for _ in 0..100 {
            assert!(jitter(&job) <= Duration::from_secs(2));
        }
        assert_eq!(jitter(&Job::default()), Duration::ZERO);
        assert!(supported(&Job { kind: "inventory".into(), ..Job::default() }).is_ok());
        assert!(supported(&Job { kind: "telnet-the-plc".into(), ..Job::default() }).is_err());
    }
}
