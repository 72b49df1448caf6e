//! `Enrollment.Enroll`: validates the CSR, checks the token, issues a certificate, and redeems
//! the token and records the agent in one transaction. A refused enrollment stores nothing.

use std::collections::BTreeMap;

use tillsyn_proto::v1::{EnrollRequest, EnrollResponse, enrollment_server::Enrollment};
use tonic::{Request, Response, Status};

use super::{ServerState, now_ms};
use crate::ca::CertificateAuthority;
use crate::store::{NewAgent, StoreError};
use crate::tokens;

/// Longest accepted hostname or label, in bytes.
const MAX_FIELD: usize = 253;

/// The enrollment service.
pub struct EnrollmentService {
    state: ServerState,
}

impl EnrollmentService {
    /// Wraps the shared state.
    pub fn new(state: ServerState) -> Self {
        Self { state }
    }
}

fn token_refusal(error: StoreError) -> Status {
    match error {
        StoreError::TokenUnknown
        | StoreError::TokenExpired
        | StoreError::TokenUsed
        | StoreError::TokenRevoked => {
            Status::unauthenticated(error.to_string())
        }
        other => super::internal(&other),
    }
}

fn validate(request: &EnrollRequest) -> Result<BTreeMap<String, String>, Status> {
    if request.hostname.len() > MAX_FIELD {
        return Err(Status::invalid_argument(
            "hostname is longer than 253 bytes",
        ));
    }
    if request.labels.len() > 64 {
        return Err(Status::invalid_argument("at most 64 labels are accepted"));
    }
    for (key, value) in &request.labels {
        if key.is_empty() || key.len() > MAX_FIELD || value.len() > MAX_FIELD {
            return Err(Status::invalid_argument(format!(
                "label {key:?}: keys must be 1-253 bytes and values at most 253 bytes"
            )));
        }
    }
    Ok(request
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect())
}

#[tonic::async_trait]
impl Enrollment for EnrollmentService {
    async fn enroll(
        &self,
        request: Request<EnrollRequest>,
    ) -> Result<Response<EnrollResponse>, Status> {
        let request = request.into_inner();
        let labels = validate(&request)?;
        let csr = CertificateAuthority::verify_csr(&request.csr_pem)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let token_hash = tokens::hash(&request.token);
        let now = now_ms();
        self.state
            .store
            .check_token(&token_hash, now)
            .await
            .map_err(token_refusal)?;

        let agent_id = uuid::Uuid::now_v7().to_string();
        let issued = self
            .state
            .ca
            .issue_agent(&csr, &agent_id, self.state.config.agent_cert_validity)
            .map_err(|e| {
                tracing::error!(error = %e, "issuing an agent certificate failed");
                Status::internal("could not issue a certificate")
            })?;
        let agent = NewAgent {
            agent_id: agent_id.clone(),
            hostname: request.hostname.clone(),
            cert_sha256: issued.sha256,
            cert_not_after: issued.not_after_ms,
            labels,
            agent_version: request.agent_version.clone(),
        };
        self.state
            .store
            .enroll_agent(&token_hash, agent, now)
            .await
            .map_err(token_refusal)?;
        tracing::info!(%agent_id, hostname = %request.hostname, "agent enrolled");
        Ok(Response::new(EnrollResponse {
            agent_id,
            certificate_pem: issued.pem,
            ca_certificate_pem: self.state.ca.ca_cert_pem().to_string(),
        }))
    }
}
