//! Operator actions for keeping the fleet's certificates alive: `ca rotate`, `ca retire`,
//! `ca status` and `cert renew`. The CA files are [`crate::ca`]'s; this module adds what the
//! store knows (which agents still hold a certificate from the previous CA) so that a step
//! that would cut agents off is refused unless forced, with the count and what to do.

use crate::ca::{self, Rotation};
use crate::config::CollectorDir;
use crate::output;
use crate::server::now_ms;
use crate::store::Store;

/// Errors of rotation actions.
#[derive(Debug, thiserror::Error)]
pub enum RotationError {
    /// A CA problem.
    #[error(transparent)]
    Ca(#[from] ca::CaError),
    /// Configuration problem.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// Storage problem.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// The step would cut agents off.
    #[error("{0}")]
    Refused(String),
}

/// Active agents whose certificate predates the rotation (issued by the previous CA).
async fn agents_on_previous_ca(
    store: &dyn Store,
    rotation: &Rotation,
) -> Result<Vec<String>, RotationError> {
    Ok(store
        .agents()
        .await?
        .into_iter()
        .filter(|a| a.revoked_at.is_none() && a.cert_not_after > now_ms())
        .filter(|a| a.cert_issued_at.unwrap_or(a.enrolled_at) < rotation.rotated_at_ms)
        .map(|a| a.agent_id)
        .collect())
}

/// `ca rotate --overlap D`.
pub fn rotate(dir: &CollectorDir, overlap: time::Duration) -> Result<String, RotationError> {
    dir.load_config()?;
    let rotation = ca::rotate(dir.root(), overlap, now_ms())?;
    Ok(format!(
        "new CA created; the previous CA stays trusted until {}.\n\
         Next: restart the collector. Agents move to the new CA at their next renewal (they \
         renew at two thirds of their certificate lifetime; `tillsyn-agent renew` does it now).\n\
         When `tillsyn-collector ca status` shows no agent left on the previous CA: \
         `tillsyn-collector cert renew`, restart, then `tillsyn-collector ca retire` (or let the \
         overlap end).",
        output::time(Some(rotation.previous_retires_at_ms))
    ))
}

/// `ca status`.
pub async fn status(dir: &CollectorDir, store: &dyn Store) -> Result<String, RotationError> {
    let Some(rotation) = ca::load_rotation(dir.root())? else {
        return Ok("no CA rotation in progress".into());
    };
    let waiting = agents_on_previous_ca(store, &rotation).await?;
    let authority = ca::CertificateAuthority::load(dir.root())?;
    let server = if authority.issued_server_certificate(dir.root())? {
        "new CA"
    } else {
        "previous CA (run `cert renew` once no agent is left on the previous CA)"
    };
    let mut text = format!(
        "CA rotation since {}; the previous CA retires at {}\nserver certificate: {server}\nagents still on the previous CA: {}",
        output::time(Some(rotation.rotated_at_ms)),
        output::time(Some(rotation.previous_retires_at_ms)),
        waiting.len()
    );
    for agent in &waiting {
        text.push_str("\n  ");
        text.push_str(agent);
    }
    Ok(text)
}

fn refusal(waiting: &[String], step: &str) -> RotationError {
    RotationError::Refused(format!(
        "{} agent(s) still hold a certificate from the previous CA ({}{}); after {step} they \
         cannot connect and need a new token. Let them renew first (`ca status` lists them), \
         or pass --force",
        waiting.len(),
        waiting
            .iter()
            .take(5)
            .cloned()
            .collect::<Vec<_>>()
            .join(", "),
        if waiting.len() > 5 { ", ..." } else { "" }
    ))
}

/// `cert renew [--force]`: a new server certificate from the signing CA.
pub async fn renew_server(
    dir: &CollectorDir,
    store: &dyn Store,
    force: bool,
) -> Result<String, RotationError> {
    let config = dir.load_config()?;
    if let Some(rotation) = ca::load_rotation(dir.root())? {
        let waiting = agents_on_previous_ca(store, &rotation).await?;
        // Agents that have not renewed trust only the previous CA: a server certificate from
        // the new one would lock them out.
        if !waiting.is_empty() && !force {
            return Err(refusal(
                &waiting,
                "the server certificate moves to the new CA",
            ));
        }
    }
    ca::renew_server_certificate(dir.root(), &config.server_names)?;
    Ok(format!(
        "server certificate renewed for {}; restart the collector to use it",
        config.server_names.join(", ")
    ))
}

/// `ca retire [--force]`: stop trusting the previous CA.
pub async fn retire(
    dir: &CollectorDir,
    store: &dyn Store,
    force: bool,
) -> Result<String, RotationError> {
    let Some(rotation) = ca::load_rotation(dir.root())? else {
        return Err(ca::CaError::NoRotation.into());
    };
    let authority = ca::CertificateAuthority::load(dir.root())?;
    if !authority.issued_server_certificate(dir.root())? {
        return Err(RotationError::Refused(
            "the server certificate is still from the previous CA; run `tillsyn-collector cert renew` and restart first".into(),
        ));
    }
    let waiting = agents_on_previous_ca(store, &rotation).await?;
    if !waiting.is_empty() && !force {
        return Err(refusal(&waiting, "retiring the previous CA"));
    }
    ca::retire(dir.root())?;
    Ok("previous CA retired; it is no longer trusted. Restart the collector.".into())
}
