//! Who is calling: the agent id comes from the verified client certificate (its CN), and the
//! certificate must be exactly the one issued at enrollment (SHA-256 match) to an agent that is
//! not revoked. Nothing in a message body can change the answer.

use tonic::{Request, Status};

use crate::ca;
use crate::store::Store;

/// An authenticated agent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentIdentity {
    /// The agent id.
    pub agent_id: String,
}

/// Authenticates the caller of `request` or explains the refusal.
pub async fn authenticate<T>(
    store: &dyn Store,
    request: &Request<T>,
) -> Result<AgentIdentity, Status> {
    let certs = request.peer_certs().ok_or_else(|| {
        Status::unauthenticated("a client certificate is required; enroll the agent first")
    })?;
    let leaf = certs.first().ok_or_else(|| {
        Status::unauthenticated("a client certificate is required; enroll the agent first")
    })?;
    let agent_id = ca::common_name(leaf)
        .map_err(|e| Status::unauthenticated(format!("client certificate: {e}")))?;
    let fingerprint = ca::fingerprint(leaf);
    let agent = store
        .agent(&agent_id)
        .await
        .map_err(|e| super::internal(&e))?
        .ok_or_else(|| Status::unauthenticated(format!("agent {agent_id} is not enrolled")))?;
    if agent.cert_sha256 != fingerprint {
        return Err(Status::unauthenticated(format!(
            "the certificate is not the one issued to agent {agent_id}"
        )));
    }
    if agent.revoked_at.is_some() {
        return Err(Status::permission_denied(format!(
            "agent {agent_id} is revoked"
        )));
    }
    Ok(AgentIdentity { agent_id })
}
