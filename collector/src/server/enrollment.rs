//! `Enrollment.Enroll`: validates the CSR, checks the token, issues a certificate, and redeems
//! the token and records the agent in one transaction. A refused enrollment stores nothing.
//! `Enrollment.Renew`: an authenticated agent trades a CSR naming itself for a new certificate
//! (and the current CA bundle); a revoked agent, a CSR for another id, or a certificate from a
//! copied state directory is refused and changes nothing.

use std::collections::BTreeMap;

use tillsyn_proto::v1::{
    EnrollRequest, EnrollResponse, RenewRequest, RenewResponse, enrollment_server::Enrollment,
};
use tonic::{Request, Response, Status};

use super::{ServerState, now_ms};
use crate::ca::CertificateAuthority;
use crate::store::{NewAgent, RenewedCertificate, StoreError};
use crate::tokens;

/// Longest accepted label key or value, in bytes.
const MAX_FIELD: usize = 253;
/// Longest accepted host identity, in bytes (agents send 64 hex characters).
pub(crate) const MAX_HOST_ID: usize = 128;

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
        | StoreError::TokenRevoked => Status::unauthenticated(error.to_string()),
        other => super::internal(&other),
    }
}

/// Checks every field before the token is looked at, so a refused request never spends it.
/// The host name must be a host name; labels (link rules match them) and the version must hold
/// no control character. Messages show values escaped by the text gate.
fn validate(request: &EnrollRequest) -> Result<BTreeMap<String, String>, Status> {
    tillsyn_text::hostname::check(&request.hostname)
        .map_err(|e| Status::invalid_argument(format!("hostname: {e}")))?;
    crate::ingest::check_identifier("agent_version", &request.agent_version)
        .map_err(|e| Status::invalid_argument(e.to_string()))?;
    if request.hostname.len() > MAX_FIELD {
        return Err(Status::invalid_argument(
            "hostname is longer than 253 bytes",
        ));
    }
    if request.host_id.len() > MAX_HOST_ID {
        return Err(Status::invalid_argument("host_id is longer than 128 bytes"));
    }
    if request.labels.len() > 64 {
        return Err(Status::invalid_argument("at most 64 labels are accepted"));
    }
    for (key, value) in &request.labels {
        let shown = tillsyn_text::output::terminal(key);
        if key.is_empty() || key.len() > MAX_FIELD || value.len() > MAX_FIELD {
            return Err(Status::invalid_argument(format!(
                "labels[{shown}]: keys must be 1-253 bytes and values at most 253 bytes"
            )));
        }
        for (part, text) in [("key", key), ("value", value)] {
            crate::ingest::check_identifier(&format!("labels[{shown}] {part}"), text)
                .map_err(|e| Status::invalid_argument(e.to_string()))?;
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
        if !request.host_id.is_empty() {
            // Bound from the start, so a clone is recognised even if it reports first.
            self.state
                .store
                .bind_agent_host(&agent_id, &request.host_id, now)
                .await
                .map_err(|e| super::internal(&e))?;
        }
        tracing::info!(%agent_id, hostname = %request.hostname, "agent enrolled");
        Ok(Response::new(EnrollResponse {
            agent_id,
            certificate_pem: issued.pem,
            ca_certificate_pem: self.state.ca.trust_bundle_pem(now_ms()),
        }))
    }

    async fn renew(
        &self,
        request: Request<RenewRequest>,
    ) -> Result<Response<RenewResponse>, Status> {
        let store = self.state.store.as_ref();
        let identity = super::identity::authenticate(&self.state, &request).await?;
        let request = request.into_inner();
        if request.host_id.len() > MAX_HOST_ID {
            return Err(Status::invalid_argument("host_id is longer than 128 bytes"));
        }
        let csr = CertificateAuthority::verify_csr(&request.csr_pem)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let named = crate::ca::csr_common_name(&csr).unwrap_or_default();
        if named != identity.agent_id {
            tracing::warn!(agent_id = %identity.agent_id, csr_names = %named, "renewal for another agent id refused");
            return Err(Status::permission_denied(format!(
                "the CSR names agent {named:?}, but the caller is agent {}",
                identity.agent_id
            )));
        }
        super::identity::check_host(store, &identity, &request.host_id).await?;
        let issued = self
            .state
            .ca
            .issue_agent(
                &csr,
                &identity.agent_id,
                self.state.config.agent_cert_validity,
            )
            .map_err(|e| {
                tracing::error!(error = %e, "issuing a renewed agent certificate failed");
                Status::internal("could not issue a certificate")
            })?;
        let renewed = RenewedCertificate {
            presented_sha256: identity.cert_sha256.clone(),
            cert_sha256: issued.sha256,
            cert_not_after: issued.not_after_ms,
        };
        store
            .renew_agent_certificate(&identity.agent_id, &renewed, now_ms())
            .await
            .map_err(|e| match e {
                StoreError::AgentRevoked(_) => Status::permission_denied(e.to_string()),
                StoreError::CertificateSuperseded(_) | StoreError::AgentUnknown(_) => {
                    Status::unauthenticated(e.to_string())
                }
                other => super::internal(&other),
            })?;
        tracing::info!(agent_id = %identity.agent_id, "agent certificate renewed");
        Ok(Response::new(RenewResponse {
            certificate_pem: issued.pem,
            ca_certificate_pem: self.state.ca.trust_bundle_pem(now_ms()),
            not_after_unix_ms: issued.not_after_ms,
        }))
    }
}
