//! Statements of the web interface: accounts, sessions, system-asset links, scoped
//! reads and the four-eyes workflows. Scoping is a fixed SQL fragment per [`Scope`] (never
//! text from a request) whose e-mail is bound as a parameter.

use sqlx::any::AnyRow;
use sqlx::{Any, AnyPool, Row, Transaction};

use super::{AssetRow, json_text, parse_json};
use crate::catalog::{Attestation, Classification, System};
use crate::store::dialect::{Dialect, multi_row_values, numbered};
use crate::store::web::{
    AcceptanceRequest, Enrolment, NewUser, OidcIdentity, OidcSignIn, PasskeyChallenge,
    PasskeyPurpose, PasskeyRecord, Scope, SessionRecord, UserRecord,
};
use crate::store::{Acceptance, AssetRecord, FindingRecord, StoreError};

/// The `WHERE` fragment over `systems` for a scope, and the values it binds (`?`
/// placeholders, numbered with the rest of the statement by [`numbered`]).
pub(super) fn scope_clause(dialect: Dialect, scope: &Scope) -> (String, Vec<String>) {
    match scope {
        Scope::All => ("TRUE".into(), Vec::new()),
        Scope::Nothing => ("FALSE".into(), Vec::new()),
        Scope::Owner(email) => (
            format!(
                "({} = ? OR {} = ?)",
                dialect.document_field("system_owner.email"),
                dialect.document_field("information_owner.email")
            ),
            vec![email.clone(), email.clone()],
        ),
        Scope::Administrator(email) => (
            format!(
                "{} = ?",
                dialect.document_field("system_administrator.email")
            ),
            vec![email.clone()],
        ),
    }
}

fn user_from_row(row: &AnyRow) -> Result<UserRecord, StoreError> {
    Ok(UserRecord {
        user_id: row.try_get("user_id")?,
        email: row.try_get("email")?,
        name: row.try_get("name")?,
        role: row.try_get("role")?,
        password_hash: row.try_get("password_hash")?,
        totp_secret: row.try_get("totp_secret")?,
        totp_last_step: row.try_get("totp_last_step")?,
        failed_attempts: row.try_get("failed_attempts")?,
        locked_until: row.try_get("locked_until")?,
        created_at: row.try_get("created_at")?,
        created_by: row.try_get("created_by")?,
        enrolled_at: row.try_get("enrolled_at")?,
        disabled_at: row.try_get("disabled_at")?,
        oidc_subject: row.try_get("oidc_subject")?,
    })
}

pub(super) fn finding_from_row(row: &AnyRow) -> Result<FindingRecord, StoreError> {
    Ok(FindingRecord {
        finding_id: row.try_get("finding_id")?,
        rule: row.try_get("rule")?,
        severity: row.try_get("severity")?,
        state: row.try_get("state")?,
        system_id: row.try_get("system_id")?,
        asset_id: row.try_get("asset_id")?,
        asset: row.try_get("asset")?,
        message: row.try_get("message")?,
        text: super::finding_text(row)?,
        evidence: parse_json(
            &row.try_get::<String, _>("evidence_json")?,
            "finding evidence",
        )?,
        first_seen_at: row.try_get("first_seen_at")?,
        last_seen_at: row.try_get("last_seen_at")?,
        resolved_at: row.try_get("resolved_at")?,
        accepted_by: row.try_get("accepted_by")?,
        accept_reason: row.try_get("accept_reason")?,
        accepted_until: row.try_get("accepted_until")?,
    })
}

fn request_from_row(row: &AnyRow) -> Result<AcceptanceRequest, StoreError> {
    Ok(AcceptanceRequest {
        request_id: row.try_get("request_id")?,
        finding_id: row.try_get("finding_id")?,
        requested_by: row.try_get("requested_by")?,
        reason: row.try_get("reason")?,
        until: row.try_get("until")?,
        state: row.try_get("state")?,
        created_at: row.try_get("created_at")?,
        decided_by: row.try_get("decided_by")?,
        decided_at: row.try_get("decided_at")?,
        decision_note: row.try_get("decision_note")?,
    })
}

pub async fn create_user(
    tx: &mut Transaction<'_, Any>,
    user: &NewUser,
    created_by: &str,
    now: i64,
) -> Result<(), StoreError> {
    let exists: Option<String> =
        sqlx::query_scalar("SELECT user_id FROM web_users WHERE email = $1")
            .bind(&user.email)
            .fetch_optional(&mut **tx)
            .await?;
    if exists.is_some() {
        return Err(StoreError::UserExists(user.email.clone()));
    }
    sqlx::query(
        "INSERT INTO web_users (user_id, email, name, role, enrol_token_hash, enrol_expires_at, created_at, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&user.user_id)
    .bind(&user.email)
    .bind(&user.name)
    .bind(&user.role)
    .bind(&user.enrol_token_hash)
    .bind(user.enrol_expires_at)
    .bind(now)
    .bind(created_by)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub async fn users(pool: &AnyPool) -> Result<Vec<UserRecord>, StoreError> {
    sqlx::query("SELECT * FROM web_users ORDER BY email")
        .fetch_all(pool)
        .await?
        .iter()
        .map(user_from_row)
        .collect()
}

pub async fn user_by_email(pool: &AnyPool, email: &str) -> Result<Option<UserRecord>, StoreError> {
    sqlx::query("SELECT * FROM web_users WHERE email = $1")
        .bind(email)
        .fetch_optional(pool)
        .await?
        .as_ref()
        .map(user_from_row)
        .transpose()
}

pub async fn user_by_id(pool: &AnyPool, user_id: &str) -> Result<Option<UserRecord>, StoreError> {
    sqlx::query("SELECT * FROM web_users WHERE user_id = $1")
        .bind(user_id)
        .fetch_optional(pool)
        .await?
        .as_ref()
        .map(user_from_row)
        .transpose()
}

pub async fn user_by_enrol_token(
    pool: &AnyPool,
    token_hash: &str,
    now: i64,
) -> Result<Option<UserRecord>, StoreError> {
    sqlx::query(
        "SELECT * FROM web_users WHERE enrol_token_hash = $1 AND enrol_expires_at > $2
           AND enrolled_at IS NULL AND disabled_at IS NULL",
    )
    .bind(token_hash)
    .bind(now)
    .fetch_optional(pool)
    .await?
    .as_ref()
    .map(user_from_row)
    .transpose()
}

pub async fn complete_enrolment(
    tx: &mut Transaction<'_, Any>,
    token_hash: &str,
    enrolment: &Enrolment,
    now: i64,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE web_users SET password_hash = $1, totp_secret = $2, totp_last_step = $3,
                enrolled_at = $4, enrol_token_hash = NULL, enrol_expires_at = NULL
         WHERE enrol_token_hash = $5 AND enrol_expires_at > $6 AND enrolled_at IS NULL AND disabled_at IS NULL",
    )
    .bind(&enrolment.password_hash)
    .bind(&enrolment.totp_secret)
    .bind(enrolment.totp_step)
    .bind(now)
    .bind(token_hash)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn disable_user(
    tx: &mut Transaction<'_, Any>,
    email: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE web_users SET disabled_at = $1, enrol_token_hash = NULL WHERE email = $2 AND disabled_at IS NULL",
    )
    .bind(now)
    .bind(email)
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "DELETE FROM web_sessions WHERE user_id IN (SELECT user_id FROM web_users WHERE email = $1)",
    )
    .bind(email)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Counts a failure; returns (attempts now, whether this failure locked the account).
pub async fn sign_in_failure(
    tx: &mut Transaction<'_, Any>,
    user_id: &str,
    lock_after: i64,
    lock_until: i64,
) -> Result<(i64, bool), StoreError> {
    let attempts: i64 = sqlx::query_scalar(
        "UPDATE web_users SET failed_attempts = failed_attempts + 1 WHERE user_id = $1 RETURNING failed_attempts",
    )
    .bind(user_id)
    .fetch_one(&mut **tx)
    .await?;
    let locks = attempts >= lock_after;
    if locks {
        sqlx::query(
            "UPDATE web_users SET locked_until = $1, failed_attempts = 0 WHERE user_id = $2",
        )
        .bind(lock_until)
        .bind(user_id)
        .execute(&mut **tx)
        .await?;
    }
    Ok((attempts, locks))
}

pub async fn start_session(
    tx: &mut Transaction<'_, Any>,
    session: &SessionRecord,
    totp_step: i64,
) -> Result<bool, StoreError> {
    let updated = sqlx::query(
        "UPDATE web_users SET totp_last_step = $1, failed_attempts = 0, locked_until = 0
         WHERE user_id = $2 AND totp_last_step < $3 AND disabled_at IS NULL",
    )
    .bind(totp_step)
    .bind(&session.user_id)
    .bind(totp_step)
    .execute(&mut **tx)
    .await?;
    if updated.rows_affected() != 1 {
        return Ok(false);
    }
    insert_session(tx, session).await?;
    Ok(true)
}

/// Stores a new session row.
pub async fn insert_session(
    tx: &mut Transaction<'_, Any>,
    session: &SessionRecord,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO web_sessions (session_hash, user_id, csrf_token, created_at, last_seen_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&session.session_hash)
    .bind(&session.user_id)
    .bind(&session.csrf_token)
    .bind(session.created_at)
    .bind(session.last_seen_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Finds (by subject) or creates the account of an OIDC sign-in and refreshes its e-mail,
/// name and role from the ID token.
pub async fn oidc_account(
    tx: &mut Transaction<'_, Any>,
    identity: &OidcIdentity,
    now: i64,
) -> Result<OidcSignIn, StoreError> {
    let existing =
        sqlx::query("SELECT user_id, disabled_at FROM web_users WHERE oidc_subject = $1")
            .bind(&identity.subject)
            .fetch_optional(&mut **tx)
            .await?;
    let email_owner: Option<String> =
        sqlx::query_scalar("SELECT user_id FROM web_users WHERE email = $1")
            .bind(&identity.email)
            .fetch_optional(&mut **tx)
            .await?;
    let Some(row) = existing else {
        if email_owner.is_some() {
            return Ok(OidcSignIn::EmailTaken);
        }
        sqlx::query(
            "INSERT INTO web_users (user_id, email, name, role, created_at, created_by, enrolled_at, oidc_subject)
             VALUES ($1, $2, $3, $4, $5, 'oidc', $6, $7)",
        )
        .bind(&identity.new_user_id)
        .bind(&identity.email)
        .bind(&identity.name)
        .bind(&identity.role)
        .bind(now)
        .bind(now)
        .bind(&identity.subject)
        .execute(&mut **tx)
        .await?;
        return Ok(OidcSignIn::Started(identity.new_user_id.clone()));
    };
    let user_id: String = row.try_get("user_id")?;
    if row.try_get::<Option<i64>, _>("disabled_at")?.is_some() {
        return Ok(OidcSignIn::Disabled);
    }
    if email_owner.is_some_and(|owner| owner != user_id) {
        return Ok(OidcSignIn::EmailTaken);
    }
    sqlx::query("UPDATE web_users SET email = $1, name = $2, role = $3 WHERE user_id = $4")
        .bind(&identity.email)
        .bind(&identity.name)
        .bind(&identity.role)
        .bind(&user_id)
        .execute(&mut **tx)
        .await?;
    Ok(OidcSignIn::Started(user_id))
}

pub async fn session(
    pool: &AnyPool,
    session_hash: &str,
    idle_since: i64,
    created_since: i64,
    now: i64,
) -> Result<Option<(SessionRecord, UserRecord)>, StoreError> {
    let row = sqlx::query(
        "SELECT s.session_hash, s.csrf_token, s.created_at AS session_created_at, s.last_seen_at, u.*
         FROM web_sessions s JOIN web_users u ON u.user_id = s.user_id
         WHERE s.session_hash = $1 AND s.last_seen_at > $2 AND s.created_at > $3 AND u.disabled_at IS NULL",
    )
    .bind(session_hash)
    .bind(idle_since)
    .bind(created_since)
    .fetch_optional(pool)
    .await?;
    let Some(row) = row else {
        // Expired or unknown: an expired row is removed so it cannot come back.
        sqlx::query("DELETE FROM web_sessions WHERE session_hash = $1")
            .bind(session_hash)
            .execute(pool)
            .await?;
        return Ok(None);
    };
    sqlx::query("UPDATE web_sessions SET last_seen_at = $1 WHERE session_hash = $2")
        .bind(now)
        .bind(session_hash)
        .execute(pool)
        .await?;
    let session = SessionRecord {
        session_hash: row.try_get("session_hash")?,
        user_id: row.try_get("user_id")?,
        csrf_token: row.try_get("csrf_token")?,
        created_at: row.try_get("session_created_at")?,
        last_seen_at: now,
    };
    Ok(Some((session, user_from_row(&row)?)))
}

pub async fn end_session(pool: &AnyPool, session_hash: &str) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM web_sessions WHERE session_hash = $1")
        .bind(session_hash)
        .execute(pool)
        .await?;
    Ok(())
}

fn passkey_from_row(row: &AnyRow) -> Result<PasskeyRecord, StoreError> {
    Ok(PasskeyRecord {
        credential_id: row.try_get("credential_id")?,
        user_id: row.try_get("user_id")?,
        label: row.try_get("label")?,
        passkey_json: row.try_get("passkey_json")?,
        created_at: row.try_get("created_at")?,
        last_used_at: row.try_get("last_used_at")?,
    })
}

pub async fn passkeys(pool: &AnyPool, user_id: &str) -> Result<Vec<PasskeyRecord>, StoreError> {
    sqlx::query("SELECT * FROM web_passkeys WHERE user_id = $1 ORDER BY created_at, credential_id")
        .bind(user_id)
        .fetch_all(pool)
        .await?
        .iter()
        .map(passkey_from_row)
        .collect()
}

pub async fn add_passkey(
    tx: &mut Transaction<'_, Any>,
    passkey: &PasskeyRecord,
) -> Result<bool, StoreError> {
    let taken: Option<String> =
        sqlx::query_scalar("SELECT user_id FROM web_passkeys WHERE credential_id = $1")
            .bind(&passkey.credential_id)
            .fetch_optional(&mut **tx)
            .await?;
    let enabled: Option<String> = sqlx::query_scalar(
        "SELECT user_id FROM web_users WHERE user_id = $1 AND disabled_at IS NULL",
    )
    .bind(&passkey.user_id)
    .fetch_optional(&mut **tx)
    .await?;
    if taken.is_some() || enabled.is_none() {
        return Ok(false);
    }
    sqlx::query(
        "INSERT INTO web_passkeys (credential_id, user_id, label, passkey_json, created_at, last_used_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&passkey.credential_id)
    .bind(&passkey.user_id)
    .bind(&passkey.label)
    .bind(&passkey.passkey_json)
    .bind(passkey.created_at)
    .bind(passkey.last_used_at)
    .execute(&mut **tx)
    .await?;
    Ok(true)
}

pub async fn remove_passkey(
    tx: &mut Transaction<'_, Any>,
    user_id: &str,
    credential_id: &str,
) -> Result<bool, StoreError> {
    let done = sqlx::query("DELETE FROM web_passkeys WHERE user_id = $1 AND credential_id = $2")
        .bind(user_id)
        .bind(credential_id)
        .execute(&mut **tx)
        .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn put_passkey_challenge(
    tx: &mut Transaction<'_, Any>,
    challenge: &PasskeyChallenge,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM web_passkey_challenges WHERE expires_at <= $1 OR (binding = $2 AND purpose = $3)")
        .bind(now)
        .bind(&challenge.binding)
        .bind(challenge.purpose.as_str())
        .execute(&mut **tx)
        .await?;
    sqlx::query(
        "INSERT INTO web_passkey_challenges (binding, purpose, user_id, label, state_json, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&challenge.binding)
    .bind(challenge.purpose.as_str())
    .bind(&challenge.user_id)
    .bind(&challenge.label)
    .bind(&challenge.state_json)
    .bind(challenge.expires_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Deletes and returns the challenge: whoever deletes the row is the only one to get it, so
/// two finishes racing with one challenge cannot both succeed.
pub async fn take_passkey_challenge(
    pool: &AnyPool,
    binding: &str,
    purpose: PasskeyPurpose,
    now: i64,
) -> Result<Option<PasskeyChallenge>, StoreError> {
    let row = sqlx::query(
        "DELETE FROM web_passkey_challenges WHERE binding = $1 AND purpose = $2
         RETURNING user_id, label, state_json, expires_at",
    )
    .bind(binding)
    .bind(purpose.as_str())
    .fetch_optional(pool)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let challenge = PasskeyChallenge {
        binding: binding.to_string(),
        purpose,
        user_id: row.try_get("user_id")?,
        label: row.try_get("label")?,
        state_json: row.try_get("state_json")?,
        expires_at: row.try_get("expires_at")?,
    };
    Ok((challenge.expires_at > now).then_some(challenge))
}

pub async fn passkey_sign_in(
    tx: &mut Transaction<'_, Any>,
    session: &SessionRecord,
    credential_id: &str,
    passkey_json: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let updated = sqlx::query(
        "UPDATE web_passkeys SET passkey_json = $1, last_used_at = $2
         WHERE credential_id = $3 AND user_id = $4
           AND user_id IN (SELECT user_id FROM web_users WHERE disabled_at IS NULL)",
    )
    .bind(passkey_json)
    .bind(now)
    .bind(credential_id)
    .bind(&session.user_id)
    .execute(&mut **tx)
    .await?;
    if updated.rows_affected() != 1 {
        return Ok(false);
    }
    sqlx::query("UPDATE web_users SET failed_attempts = 0, locked_until = 0 WHERE user_id = $1")
        .bind(&session.user_id)
        .execute(&mut **tx)
        .await?;
    insert_session(tx, session).await?;
    Ok(true)
}

pub async fn spend_totp_step(pool: &AnyPool, user_id: &str, step: i64) -> Result<bool, StoreError> {
    let updated = sqlx::query(
        "UPDATE web_users SET totp_last_step = $1 WHERE user_id = $2 AND totp_last_step < $3 AND disabled_at IS NULL",
    )
    .bind(step)
    .bind(user_id)
    .bind(step)
    .execute(pool)
    .await?;
    Ok(updated.rows_affected() == 1)
}

/// Brings `system_links` in line with `links`, touching only rows that changed.
/// Replaces the (system id, asset id) links of `assets` (every asset when None) with `links`,
/// which are those assets' links.
pub async fn replace_system_links(
    tx: &mut Transaction<'_, Any>,
    dialect: Dialect,
    assets: Option<&[String]>,
    links: &[(String, String)],
) -> Result<(), StoreError> {
    use std::collections::HashSet;
    let existing: Vec<(String, String)> = match assets {
        None => {
            let text: Option<String> = sqlx::query_scalar(dialect.all_system_links())
                .fetch_one(&mut **tx)
                .await?;
            parse_json(text.as_deref().unwrap_or("[]"), "system links")?
        }
        Some(assets) => {
            let mut existing = Vec::new();
            for chunk in assets.chunks(400) {
                let marks: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
                let sql = format!(
                    "SELECT system_id, asset_id FROM system_links WHERE asset_id IN ({})",
                    marks.join(", ")
                );
                let mut query = sqlx::query_as::<_, (String, String)>(&sql);
                for id in chunk {
                    query = query.bind(id);
                }
                existing.extend(query.fetch_all(&mut **tx).await?);
            }
            existing
        }
    };
    let wanted: HashSet<&(String, String)> = links.iter().collect();
    let have: HashSet<&(String, String)> = existing.iter().collect();
    for gone in have.difference(&wanted) {
        sqlx::query("DELETE FROM system_links WHERE system_id = $1 AND asset_id = $2")
            .bind(&gone.0)
            .bind(&gone.1)
            .execute(&mut **tx)
            .await?;
    }
    let new: Vec<&&(String, String)> = wanted.difference(&have).collect();
    for chunk in new.chunks(400) {
        let sql = format!(
            "INSERT INTO system_links (system_id, asset_id) {}",
            multi_row_values(tx, chunk.len(), 2)
        );
        let mut query = sqlx::query(&sql);
        for link in chunk {
            query = query.bind(&link.0).bind(&link.1);
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

pub async fn scoped_systems(
    pool: &AnyPool,
    dialect: Dialect,
    scope: &Scope,
    system_id: Option<&str>,
) -> Result<Vec<System>, StoreError> {
    let (clause, binds) = scope_clause(dialect, scope);
    let sql = format!(
        "SELECT document_json FROM systems WHERE {clause} {} ORDER BY system_id",
        if system_id.is_some() {
            "AND system_id = ?"
        } else {
            ""
        }
    );
    let sql = numbered(&sql);
    let mut query = sqlx::query_scalar::<_, String>(&sql);
    for b in binds {
        query = query.bind(b);
    }
    if let Some(id) = system_id {
        query = query.bind(id);
    }
    query
        .fetch_all(pool)
        .await?
        .iter()
        .map(|doc| parse_json(doc, "system"))
        .collect()
}

pub async fn scoped_assets(
    pool: &AnyPool,
    dialect: Dialect,
    scope: &Scope,
    system_id: Option<&str>,
    asset_id: Option<&str>,
) -> Result<Vec<(String, AssetRecord)>, StoreError> {
    let (clause, binds) = scope_clause(dialect, scope);
    let sql = format!(
        "SELECT l.system_id, {} FROM system_links l JOIN assets a ON a.asset_id = l.asset_id
         WHERE l.system_id IN (SELECT system_id FROM systems WHERE {clause}) {} {}
         ORDER BY l.system_id, a.kind, a.hostname, a.address",
        dialect.asset_json(),
        if system_id.is_some() {
            "AND l.system_id = ?"
        } else {
            ""
        },
        if asset_id.is_some() {
            "AND l.asset_id = ?"
        } else {
            ""
        },
    );
    let sql = numbered(&sql);
    let mut query = sqlx::query_as::<_, (String, String)>(&sql);
    for b in binds {
        query = query.bind(b);
    }
    if let Some(id) = system_id {
        query = query.bind(id);
    }
    if let Some(id) = asset_id {
        query = query.bind(id);
    }
    query
        .fetch_all(pool)
        .await?
        .into_iter()
        .map(|(system, json)| {
            let row: AssetRow = parse_json(&json, "asset")?;
            Ok((system, row.into_record()))
        })
        .collect()
}

/// Which findings to read within a scope.
pub struct FindingSelection<'a> {
    pub system_id: Option<&'a str>,
    pub asset_id: Option<&'a str>,
    pub finding_id: Option<&'a str>,
    pub include_resolved: bool,
}

pub async fn scoped_findings(
    pool: &AnyPool,
    dialect: Dialect,
    scope: &Scope,
    selection: &FindingSelection<'_>,
) -> Result<Vec<FindingRecord>, StoreError> {
    let (clause, binds) = scope_clause(dialect, scope);
    // Findings of assets linked to no system are visible to the all-systems scope only.
    let unowned = if *scope == Scope::All {
        "OR f.system_id IS NULL"
    } else {
        ""
    };
    let sql = format!(
        "SELECT f.* FROM findings f
         WHERE (f.system_id IN (SELECT system_id FROM systems WHERE {clause}) {unowned}) {} {} {} {}
         ORDER BY f.system_id, f.rule, f.asset",
        if selection.system_id.is_some() {
            "AND f.system_id = ?"
        } else {
            ""
        },
        if selection.asset_id.is_some() {
            "AND f.asset_id = ?"
        } else {
            ""
        },
        if selection.finding_id.is_some() {
            "AND f.finding_id = ?"
        } else {
            ""
        },
        if selection.include_resolved {
            ""
        } else {
            "AND f.state <> 'resolved'"
        },
    );
    let sql = numbered(&sql);
    let mut query = sqlx::query(&sql);
    for b in binds {
        query = query.bind(b);
    }
    for id in [
        selection.system_id,
        selection.asset_id,
        selection.finding_id,
    ]
    .into_iter()
    .flatten()
    {
        query = query.bind(id);
    }
    query
        .fetch_all(pool)
        .await?
        .iter()
        .map(finding_from_row)
        .collect()
}

pub async fn request_acceptance(
    tx: &mut Transaction<'_, Any>,
    request: &AcceptanceRequest,
) -> Result<(), StoreError> {
    let pending: Option<String> = sqlx::query_scalar(
        "SELECT request_id FROM acceptance_requests WHERE finding_id = $1 AND state = 'pending'",
    )
    .bind(&request.finding_id)
    .fetch_optional(&mut **tx)
    .await?;
    if pending.is_some() {
        return Err(StoreError::RequestRefused(
            "a request for this finding is already waiting for a decision".into(),
        ));
    }
    sqlx::query(
        "INSERT INTO acceptance_requests (request_id, finding_id, requested_by, reason, until, state, created_at)
         VALUES ($1, $2, $3, $4, $5, 'pending', $6)",
    )
    .bind(&request.request_id)
    .bind(&request.finding_id)
    .bind(&request.requested_by)
    .bind(&request.reason)
    .bind(request.until)
    .bind(request.created_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub async fn acceptance_requests(
    pool: &AnyPool,
    dialect: Dialect,
    scope: &Scope,
    state: Option<&str>,
) -> Result<Vec<AcceptanceRequest>, StoreError> {
    let (clause, binds) = scope_clause(dialect, scope);
    let sql = format!(
        "SELECT r.* FROM acceptance_requests r JOIN findings f ON f.finding_id = r.finding_id
         WHERE f.system_id IN (SELECT system_id FROM systems WHERE {clause}) {}
         ORDER BY r.created_at DESC",
        if state.is_some() {
            "AND r.state = ?"
        } else {
            ""
        }
    );
    let sql = numbered(&sql);
    let mut query = sqlx::query(&sql);
    for b in binds {
        query = query.bind(b);
    }
    if let Some(state) = state {
        query = query.bind(state);
    }
    query
        .fetch_all(pool)
        .await?
        .iter()
        .map(request_from_row)
        .collect()
}

/// Decides a pending request; returns it as decided. Approving accepts the finding through the
/// findings lifecycle (same history and expiry as `finding accept`).
pub async fn decide_acceptance(
    tx: &mut Transaction<'_, Any>,
    request_id: &str,
    approver: &str,
    approve: bool,
    note: &str,
    now: i64,
) -> Result<AcceptanceRequest, StoreError> {
    let row = sqlx::query("SELECT * FROM acceptance_requests WHERE request_id = $1")
        .bind(request_id)
        .fetch_optional(&mut **tx)
        .await?;
    let Some(row) = row else {
        return Err(StoreError::RequestRefused(format!(
            "no request {request_id}"
        )));
    };
    let mut request = request_from_row(&row)?;
    if request.state != "pending" {
        return Err(StoreError::RequestRefused(format!(
            "request {request_id} was decided already"
        )));
    }
    if request.requested_by == approver {
        return Err(StoreError::RequestRefused(
            "four eyes: whoever asked for an acceptance cannot decide it".into(),
        ));
    }
    let state = if approve { "approved" } else { "rejected" };
    sqlx::query(
        "UPDATE acceptance_requests SET state = $1, decided_by = $2, decided_at = $3, decision_note = $4 WHERE request_id = $5",
    )
    .bind(state)
    .bind(approver)
    .bind(now)
    .bind(note)
    .bind(request_id)
    .execute(&mut **tx)
    .await?;
    if approve {
        let acceptance = Acceptance {
            by: format!("{} (requested by {})", approver, request.requested_by),
            reason: request.reason.clone(),
            until: request.until,
        };
        super::findings_sql::accept(tx, &request.finding_id, &acceptance, now).await?;
    }
    request.state = state.to_string();
    request.decided_by = Some(approver.to_string());
    request.decided_at = Some(now);
    request.decision_note = Some(note.to_string());
    Ok(request)
}

/// Rewrites one system's register document; false when there is no such system.
pub async fn update_system(
    tx: &mut Transaction<'_, Any>,
    system_id: &str,
    change: impl FnOnce(&mut System),
) -> Result<bool, StoreError> {
    let doc: Option<String> =
        sqlx::query_scalar("SELECT document_json FROM systems WHERE system_id = $1")
            .bind(system_id)
            .fetch_optional(&mut **tx)
            .await?;
    let Some(doc) = doc else { return Ok(false) };
    let mut system: System = parse_json(&doc, "system")?;
    change(&mut system);
    sqlx::query("UPDATE systems SET document_json = $1 WHERE system_id = $2")
        .bind(json_text(&system)?)
        .bind(system_id)
        .execute(&mut **tx)
        .await?;
    super::register_changed(tx).await?;
    Ok(true)
}

pub async fn review_classification(
    tx: &mut Transaction<'_, Any>,
    system_id: &str,
    classification: Classification,
) -> Result<bool, StoreError> {
    update_system(tx, system_id, |s| s.classification = Some(classification)).await
}

pub async fn add_attestation(
    tx: &mut Transaction<'_, Any>,
    system_id: &str,
    attestation: Attestation,
) -> Result<bool, StoreError> {
    update_system(tx, system_id, |s| s.attestations.push(attestation)).await
}
