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
        .complete(CompleteJobRequest {
            job_id: job.job_id.clone(),
            ok: false,
            error: error.to_string(),
        })
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

/// The sweep a discovery job asks for, under the agent's default OT safety caps (100 pps
/// global, 10 pps per host, one probe per host at a time); an invalid job is refused with why.
pub fn discovery_config(job: &Job) -> Result<crate::discovery::Config, String> {
    let mut options = crate::discovery::Options {
        target: job.discovery_targets.join(","),
        ..crate::discovery::Options::default()
    };
    if !job.discovery_ports.is_empty() {
        options.ports = job.discovery_ports.join(",");
    }
    crate::discovery::Config::from_options(&options).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_the_bound() {
        let job = Job {
            jitter_seconds: 2,
            ..Job::default()
        };
        for _ in 0..100 {
            assert!(jitter(&job) <= Duration::from_secs(2));
        }
        assert_eq!(jitter(&Job::default()), Duration::ZERO);
    }

    #[test]
    fn discovery_jobs_are_validated_under_the_safety_caps() {
        let job = |targets: &[&str]| Job {
            kind: "discovery".into(),
            discovery_targets: targets.iter().map(ToString::to_string).collect(),
            discovery_ports: vec!["502".into(), "15020/modbus".into()],
            ..Job::default()
        };
        assert!(discovery_config(&job(&["127.0.0.1/32"])).is_ok());
        assert!(discovery_config(&job(&[])).is_err());
        // Larger than the /16 bound: refused, never forced from a job.
        assert!(discovery_config(&job(&["10.0.0.0/8"])).is_err());
    }
}
