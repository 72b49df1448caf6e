//! One simulated agent: its own key pair and certificate (enrolled with a real CSR), a
//! mutual-TLS channel made by the agent's own [`tillsyn_agent::client::connect`], and the
//! numbering of its reports. A delta holds only the observations churn changed since the last
//! report; the next full report carries them too, so the collector's picture of the agent stays
//! what the agent would send.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rand::Rng;
use tillsyn_proto::v1::{
    self, EnrollRequest, enrollment_client::EnrollmentClient, inventory_client::InventoryClient,
};
use tonic::transport::Channel;

use crate::fixture::{self, Fixture};

/// Errors making a simulated agent.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    /// Key or CSR generation failed.
    #[error("generating the key or CSR of agent {index}: {source}")]
    Key {
        /// The simulated agent.
        index: u32,
        /// The rcgen error.
        source: rcgen::Error,
    },
    /// No channel to the collector.
    #[error("agent {index}: {source}")]
    Connect {
        /// The simulated agent.
        index: u32,
        /// The agent library's error.
        source: tillsyn_agent::client::ClientError,
    },
    /// The collector refused the enrollment.
    #[error("agent {index}: enrollment refused: {}: {}", .status.code(), .status.message())]
    Refused {
        /// The simulated agent.
        index: u32,
        /// The collector's answer.
        status: tonic::Status,
    },
}

/// What one report or heartbeat came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Stored: a new report row.
    Accepted,
    /// Stored before (a resend of the same report id).
    Duplicate,
    /// A delta that did not follow the last stored report; nothing stored.
    ResyncRequired,
    /// A heartbeat answered.
    Answered,
    /// The RPC failed with this status.
    Failed(tonic::Code),
}

/// A report to send, with what kind it is.
#[derive(Clone, Debug)]
pub struct Prepared {
    /// The request.
    pub request: v1::ReportRequest,
    /// Whether it is a delta.
    pub delta: bool,
}

/// One simulated agent.
#[derive(Debug)]
pub struct SimAgent {
    /// Position in the fleet; names the host (`loadgen-00042`).
    pub index: u32,
    /// The id the collector assigned at enrollment.
    pub agent_id: String,
    /// Stands for the machine identity the certificate is bound to (random per agent).
    host_id: String,
    /// The client certificate the collector signed, PEM.
    cert_pem: String,
    /// The agent's private key, PEM; it never leaves this process.
    key_pem: String,
    /// The mTLS channel; `None` until connected or after a failure.
    client: Option<InventoryClient<Channel>>,
    /// Sequence of the last report built (0 = none yet).
    sequence: u64,
    /// The next report must be full (none sent yet, a failure, or a resync was asked for).
    needs_full: bool,
    /// Observation index -> revision churn gave it; absent = as recorded.
    revisions: BTreeMap<usize, u64>,
}

impl SimAgent {
    /// Makes a key pair, sends a CSR with `token` over `enroll_channel` (server-authenticated
    /// TLS, as the agent enrolls) and keeps the certificate.
    pub async fn enroll(
        index: u32,
        token: &str,
        enroll_channel: Channel,
        agent_version: &str,
    ) -> Result<Self, FleetError> {
        let key_error = |source| FleetError::Key { index, source };
        let key = rcgen::KeyPair::generate().map_err(key_error)?;
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(key_error)?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, fixture::hostname(index));
        let csr_pem = params
            .serialize_request(&key)
            .and_then(|csr| csr.pem())
            .map_err(key_error)?;
        let host_id = uuid::Uuid::now_v7().simple().to_string();
        let response = EnrollmentClient::new(enroll_channel)
            .enroll(EnrollRequest {
                token: token.to_string(),
                csr_pem,
                hostname: fixture::hostname(index),
                agent_version: agent_version.to_string(),
                labels: [("loadgen".to_string(), "true".to_string())].into(),
                host_id: host_id.clone(),
            })
            .await
            .map_err(|status| FleetError::Refused { index, status })?
            .into_inner();
        Ok(Self {
            index,
            agent_id: response.agent_id,
            host_id,
            cert_pem: response.certificate_pem,
            key_pem: key.serialize_pem(),
            client: None,
            sequence: 0,
            needs_full: true,
            revisions: BTreeMap::new(),
        })
    }

    /// Opens the mTLS channel with the agent's certificate (kept until [`Self::disconnect`]).
    pub async fn connect(&mut self, url: &str, ca_pem: &str) -> Result<(), FleetError> {
        let channel =
            tillsyn_agent::client::connect(url, ca_pem, Some((&self.cert_pem, &self.key_pem)))
                .await
                .map_err(|source| FleetError::Connect {
                    index: self.index,
                    source,
                })?;
        // A full report of the recorded host is ~300 kB; the agent's own limit applies.
        self.client = Some(InventoryClient::new(channel));
        Ok(())
    }

    /// Drops the channel, as an agent does when its collector goes away.
    pub fn disconnect(&mut self) {
        self.client = None;
    }

    /// Whether a channel is open.
    pub fn connected(&self) -> bool {
        self.client.is_some()
    }

    /// Builds the next report: full when `full` is asked for or due, otherwise a delta that
    /// changes the versions of `churn` packages.
    pub fn prepare(
        &mut self,
        fixture: &Fixture,
        full: bool,
        churn: usize,
        rng: &mut impl Rng,
    ) -> Prepared {
        let base_sequence = self.sequence;
        self.sequence += 1;
        let sequence = self.sequence;
        let delta = !(full || self.needs_full);
        let mut changed = Vec::new();
        if delta {
            for _ in 0..churn {
                let index = fixture.package(rng.random_range(0..fixture.package_count()));
                self.revisions.insert(index, sequence);
                changed.push(index);
            }
            changed.sort_unstable();
            changed.dedup();
        }
        let observations = if delta {
            changed
                .iter()
                .map(|&i| fixture.changed(i, sequence))
                .collect()
        } else {
            (0..fixture.observation_count())
                .map(|i| match self.revisions.get(&i) {
                    Some(&revision) => fixture.changed(i, revision),
                    None => fixture.observation(i).clone(),
                })
                .collect()
        };
        let request = v1::ReportRequest {
            report_id: uuid::Uuid::now_v7().to_string(),
            collected_at_unix_ms: tillsyn_agent::inventory::now_unix_ms(),
            agent_version: fixture.agent_version().to_string(),
            host: Some(fixture.host(self.index)),
            observations,
            controls: fixture.controls().to_vec(),
            sequence,
            delta,
            base_sequence: if delta { base_sequence } else { 0 },
            host_id: self.host_id.clone(),
            ..v1::ReportRequest::default()
        };
        self.needs_full = false;
        Prepared { request, delta }
    }

    /// Sends `report` (connecting first when needed); returns the outcome and the RPC's time.
    /// A failure drops the channel and makes the next report full, as the agent's spool would
    /// resend.
    pub async fn send(
        &mut self,
        url: &str,
        ca_pem: &str,
        report: &v1::ReportRequest,
    ) -> (Outcome, Duration) {
        let started = Instant::now();
        if self.client.is_none()
            && let Err(error) = self.connect(url, ca_pem).await
        {
            tracing::debug!(%error, "connect failed");
            self.needs_full = true;
            return (Outcome::Failed(tonic::Code::Unavailable), started.elapsed());
        }
        let Some(client) = self.client.as_mut() else {
            return (Outcome::Failed(tonic::Code::Unavailable), started.elapsed());
        };
        let outcome = match client.report(report.clone()).await {
            Ok(response) => {
                let response = response.into_inner();
                if response.resync_required {
                    self.needs_full = true;
                    Outcome::ResyncRequired
                } else if response.duplicate {
                    Outcome::Duplicate
                } else {
                    Outcome::Accepted
                }
            }
            Err(status) => {
                tracing::debug!(agent = self.index, %status, "report failed");
                self.needs_full = true;
                self.client = None;
                Outcome::Failed(status.code())
            }
        };
        (outcome, started.elapsed())
    }

    /// Sends a heartbeat (connecting first when needed).
    pub async fn heartbeat(&mut self, url: &str, ca_pem: &str) -> (Outcome, Duration) {
        let started = Instant::now();
        if self.client.is_none() && self.connect(url, ca_pem).await.is_err() {
            return (Outcome::Failed(tonic::Code::Unavailable), started.elapsed());
        }
        let Some(client) = self.client.as_mut() else {
            return (Outcome::Failed(tonic::Code::Unavailable), started.elapsed());
        };
        let request = v1::HeartbeatRequest {
            agent_version: tillsyn_agent::VERSION.to_string(),
            spool_depth: 0,
            spool_dropped: 0,
            host_id: self.host_id.clone(),
        };
        let outcome = match client.heartbeat(request).await {
            Ok(_) => Outcome::Answered,
            Err(status) => {
                self.client = None;
                Outcome::Failed(status.code())
            }
        };
        (outcome, started.elapsed())
    }
}
