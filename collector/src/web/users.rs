//! `tillsyn-collector user add|list|disable`: local accounts of the web interface. `add` prints
//! the one-time enrolment link alone on its last line; only the token's hash is stored.

use crate::output::{self, Format};
use crate::server::now_ms;
use crate::store::{AuditEvent, NewUser, Store, StoreError};

use super::auth::{random_hex, sha256_hex};
use super::session::Role;
use super::settings::WebSettings;

/// Why a user command failed.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    /// Bad argument; the text names it.
    #[error("{0}")]
    Argument(String),
    /// Storage.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Creates an account; returns text whose last line is the enrolment link.
pub async fn add(
    store: &dyn Store,
    settings: &WebSettings,
    email: &str,
    name: &str,
    role: &str,
    actor: &str,
) -> Result<String, UserError> {
    let email = email.trim().to_lowercase();
    if email.len() > 320
        || !email.contains('@')
        || email.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(UserError::Argument(format!(
            "--email {email:?}: not an e-mail address"
        )));
    }
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(UserError::Argument(format!(
            "--name {name:?}: give the person's name (1-200 characters)"
        )));
    }
    let Some(role) = Role::parse(role) else {
        return Err(UserError::Argument(format!(
            "--role {role:?}: one of coordinator, owner, administrator, auditor, management"
        )));
    };
    let now = now_ms();
    let token = random_hex(32);
    let user = NewUser {
        user_id: uuid::Uuid::now_v7().to_string(),
        email: email.clone(),
        name: name.to_string(),
        role: role.as_str().to_string(),
        enrol_token_hash: sha256_hex(&token),
        enrol_expires_at: now + settings.enrol_link_ms,
    };
    let event = AuditEvent {
        actor: actor.to_string(),
        action: "user.add".into(),
        subject: email.clone(),
        detail: serde_json::json!({ "name": name, "role": role.as_str() }),
    };
    store.create_user(user, event, now).await?;
    Ok(format!(
        "user {email} ({}) created; the link below works once, for {} hours:\n{}/enrol?token={token}",
        role.as_str(),
        settings.enrol_link_ms / 3_600_000,
        settings.public_url
    ))
}

/// Lists accounts.
pub async fn list(store: &dyn Store, format: Format) -> Result<String, UserError> {
    let users = store.users().await?;
    Ok(match format {
        Format::Json => output::json(&users),
        Format::Table => output::table(
            &["EMAIL", "NAME", "ROLE", "STATE", "CREATED"],
            &users
                .iter()
                .map(|u| {
                    let state = if u.disabled_at.is_some() {
                        "disabled"
                    } else if u.locked_until > now_ms() {
                        "locked"
                    } else if u.enrolled_at.is_some() {
                        "active"
                    } else {
                        "enrolment pending"
                    };
                    vec![
                        u.email.clone(),
                        u.name.clone(),
                        u.role.clone(),
                        state.to_string(),
                        output::time(Some(u.created_at)),
                    ]
                })
                .collect::<Vec<_>>(),
        ),
    })
}

/// Disables an account and ends its sessions.
pub async fn disable(store: &dyn Store, email: &str, actor: &str) -> Result<String, UserError> {
    let email = email.trim().to_lowercase();
    let event = AuditEvent {
        actor: actor.to_string(),
        action: "user.disable".into(),
        subject: email.clone(),
        detail: serde_json::json!({}),
    };
    if store.disable_user(&email, event, now_ms()).await? {
        Ok(format!("user {email} disabled; their sessions ended"))
    } else {
        Err(UserError::Argument(format!("no enabled user {email:?}")))
    }
}
