//! Who is calling: the agent id comes from the verified client certificate (its CN), and the
//! certificate must be exactly the agent's current one (SHA-256 match; the one a renewal
//! replaced is accepted until the new one is first presented), unexpired, of an agent that is
//! not revoked. Nothing in a message body can change the answer. [`check_host`] then compares
//! the sending host with the one the certificate is bound to (a copied state directory).

use tonic::{Request, Status};

use crate::ca;
use crate::store::{AgentRecord, HostBinding, Store};

/// An authenticated agent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentIdentity {
    /// The agent id.
    pub agent_id: String,
    /// SHA-256 of the certificate it presented.
    pub cert_sha256: String,
    /// The agent's row as authentication read it: the bound host and the last contact
    /// there save [`check_host`] and a heartbeat a write when nothing changes.
    pub agent: AgentRecord,
}

/// Authenticates the caller of `request` or explains the refusal.
pub async fn authenticate<T>(
    state: &super::ServerState,
    request: &Request<T>,
) -> Result<AgentIdentity, Status> {
    let store = state.store.as_ref();
    let certs = request.peer_certs().ok_or_else(|| {
        Status::unauthenticated("a client certificate is required; enroll the agent first")
    })?;
    let leaf = certs.first().ok_or_else(|| {
        Status::unauthenticated("a client certificate is required; enroll the agent first")
    })?;
    let agent_id = ca::common_name(leaf)
        .map_err(|e| Status::unauthenticated(format!("client certificate: {e}")))?;
    let fingerprint = ca::fingerprint(leaf);
    if let Err(error) = state.ca.trusts_issuer_of(leaf, super::now_ms()) {
        return Err(Status::unauthenticated(format!(
            "agent {agent_id}: {error}; enroll the agent again with a new token"
        )));
    }
    let agent = store
        .agent(&agent_id)
        .await
        .map_err(|e| super::internal(&e))?
        .ok_or_else(|| Status::unauthenticated(format!("agent {agent_id} is not enrolled")))?;
    let current = agent.cert_sha256 == fingerprint;
    if !current && agent.prev_cert_sha256.as_deref() != Some(fingerprint.as_str()) {
        return Err(Status::unauthenticated(format!(
            "the certificate is not the one issued to agent {agent_id}"
        )));
    }
    if agent.revoked_at.is_some() {
        return Err(Status::permission_denied(format!(
            "agent {agent_id} is revoked"
        )));
    }
    // The handshake checks validity too; this covers the replaced certificate and clock edges.
    if current && agent.cert_not_after <= super::now_ms() {
        return Err(Status::unauthenticated(format!(
            "the certificate of agent {agent_id} expired; enroll the agent again with a new token"
        )));
    }
    if current && agent.prev_cert_sha256.is_some() {
        // The renewed certificate is in use: the one it replaced is accepted no more.
        store
            .forget_previous_certificate(&agent_id)
            .await
            .map_err(|e| super::internal(&e))?;
    }
    Ok(AgentIdentity {
        agent_id,
        cert_sha256: fingerprint,
        agent,
    })
}

/// Refuses a call from a host other than the one the agent's certificate is bound to (the
/// first host seen binds it). Agents that send no host identity (older versions) pass.
pub async fn check_host(
    store: &dyn Store,
    identity: &AgentIdentity,
    host_id: &str,
) -> Result<(), Status> {
    // A binding, once made, never changes (the store sets `host_id` only where it is NULL;
    // enrolling anew makes a new agent), so the host read with the agent is still the bound
    // one. Every report and heartbeat of a bound agent takes this path, without the write
    // lock.
    if host_id.is_empty() || identity.agent.host_id.as_deref() == Some(host_id) {
        return Ok(());
    }
    match store
        .bind_agent_host(&identity.agent_id, host_id, super::now_ms())
        .await
        .map_err(|e| super::internal(&e))?
    {
        HostBinding::Bound | HostBinding::Same => Ok(()),
        HostBinding::Clone { bound } => {
            tracing::warn!(
                agent_id = %identity.agent_id,
                bound_host = %bound,
                other_host = %host_id,
                "the same agent certificate is presented from a second host (a copied state directory); refused"
            );
            Err(Status::permission_denied(format!(
                "agent {}'s certificate belongs to another host; this looks like a copied state directory (a cloned image). Enroll this host with its own token: tillsyn-agent enroll --force",
                identity.agent_id
            )))
        }
    }
}
