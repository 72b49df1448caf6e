//! SQLite statements of the findings lifecycle: open -> resolved automatically when the
//! evidence changes, reopened when it returns, `accepted` by a named person until a date.
//! Every state change is written to `finding_events`.

use std::collections::{HashMap, HashSet};

use sha2::{Digest, Sha256};
use sqlx::{Row, Sqlite, SqlitePool, Transaction};

use super::{json_text, parse_json};
use crate::rules::FindingDraft;
use crate::store::{Acceptance, EvaluationSummary, FindingEvent, FindingRecord, StoreError};

/// The automatic actor in finding histories.
const COLLECTOR: &str = "collector";

/// Short stable id of a finding key.
pub fn finding_id(key: &str) -> String {
    hex::encode(&Sha256::digest(key.as_bytes())[..6])
}

struct Existing {
    id: String,
    state: String,
    accepted_until: Option<i64>,
}

async fn event(
    tx: &mut Transaction<'_, Sqlite>,
    id: &str,
    from: Option<&str>,
    to: &str,
    actor: &str,
    note: &str,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO finding_events (finding_id, at, from_state, to_state, actor, note) VALUES (?, ?, ?, ?, ?, ?)")
        .bind(id)
        .bind(now)
        .bind(from)
        .bind(to)
        .bind(actor)
        .bind(note)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

pub async fn apply(
    tx: &mut Transaction<'_, Sqlite>,
    drafts: &[FindingDraft],
    now: i64,
) -> Result<EvaluationSummary, StoreError> {
    let rows = sqlx::query("SELECT finding_key, finding_id, state, accepted_until FROM findings")
        .fetch_all(&mut **tx)
        .await?;
    let mut existing = HashMap::with_capacity(rows.len());
    for row in rows {
        existing.insert(
            row.try_get::<String, _>("finding_key")?,
            Existing {
                id: row.try_get("finding_id")?,
                state: row.try_get("state")?,
                accepted_until: row.try_get("accepted_until")?,
            },
        );
    }
    let mut summary = EvaluationSummary::default();
    let mut current = HashSet::with_capacity(drafts.len());
    for draft in drafts {
        let key = draft.key();
        if !current.insert(key.clone()) {
            continue;
        }
        match existing.get(&key) {
            None => {
                insert(tx, &key, draft, now).await?;
                summary.opened += 1;
            }
            Some(found) => {
                if refresh(tx, found, draft, now).await? {
                    summary.reopened += 1;
                }
            }
        }
    }
    for (key, found) in &existing {
        if found.state != "resolved" && !current.contains(key) {
            sqlx::query("UPDATE findings SET state = 'resolved', resolved_at = ? WHERE finding_id = ?")
                .bind(now)
                .bind(&found.id)
                .execute(&mut **tx)
                .await?;
            event(tx, &found.id, Some(&found.state), "resolved", COLLECTOR, "the rule no longer fails on the current evidence", now).await?;
            summary.resolved += 1;
        }
    }
    let counts: Vec<(String, i64)> = sqlx::query_as("SELECT state, COUNT(*) FROM findings GROUP BY state")
        .fetch_all(&mut **tx)
        .await?;
    for (state, count) in counts {
        let count = usize::try_from(count).unwrap_or(0);
        match state.as_str() {
            "open" => summary.open = count,
            "accepted" => summary.accepted = count,
            _ => {}
        }
    }
    Ok(summary)
}

async fn insert(tx: &mut Transaction<'_, Sqlite>, key: &str, draft: &FindingDraft, now: i64) -> Result<(), StoreError> {
    let id = finding_id(key);
    sqlx::query(
        "INSERT INTO findings (finding_id, finding_key, rule, severity, system_id, asset_id, asset, message, evidence_json, state, first_seen_at, last_seen_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'open', ?, ?)",
    )
    .bind(&id)
    .bind(key)
    .bind(draft.rule)
    .bind(draft.severity.as_str())
    .bind(&draft.system_id)
    .bind(&draft.asset_id)
    .bind(&draft.asset)
    .bind(&draft.message)
    .bind(json_text(&draft.evidence)?)
    .bind(now)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    event(tx, &id, None, "open", COLLECTOR, &draft.message, now).await
}

/// Updates a still-failing finding; returns whether it was reopened.
async fn refresh(tx: &mut Transaction<'_, Sqlite>, found: &Existing, draft: &FindingDraft, now: i64) -> Result<bool, StoreError> {
    let expired = found.state == "accepted" && found.accepted_until.is_some_and(|until| until <= now);
    let reopen = found.state == "resolved" || expired;
    let state = if reopen { "open" } else { found.state.as_str() };
    sqlx::query(
        "UPDATE findings SET severity = ?, asset = ?, message = ?, evidence_json = ?, last_seen_at = ?, state = ?,
            resolved_at = CASE WHEN ? THEN NULL ELSE resolved_at END
         WHERE finding_id = ?",
    )
    .bind(draft.severity.as_str())
    .bind(&draft.asset)
    .bind(&draft.message)
    .bind(json_text(&draft.evidence)?)
    .bind(now)
    .bind(state)
    .bind(reopen)
    .bind(&found.id)
    .execute(&mut **tx)
    .await?;
    if reopen {
        let note = if expired { "the risk acceptance expired" } else { "the rule fails again" };
        event(tx, &found.id, Some(&found.state), "open", COLLECTOR, note, now).await?;
    }
    Ok(reopen)
}

pub async fn accept(tx: &mut Transaction<'_, Sqlite>, id: &str, acceptance: &Acceptance, now: i64) -> Result<(), StoreError> {
    let state: Option<String> = sqlx::query_scalar("SELECT state FROM findings WHERE finding_id = ?")
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?;
    let Some(state) = state else {
        return Err(StoreError::FindingUnknown(id.to_string()));
    };
    sqlx::query("UPDATE findings SET state = 'accepted', accepted_by = ?, accept_reason = ?, accepted_until = ? WHERE finding_id = ?")
        .bind(&acceptance.by)
        .bind(&acceptance.reason)
        .bind(acceptance.until)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    let note = format!("accepted by {}: {}", acceptance.by, acceptance.reason);
    event(tx, id, Some(&state), "accepted", &acceptance.by, &note, now).await
}

pub async fn all(pool: &SqlitePool) -> Result<Vec<FindingRecord>, StoreError> {
    let rows = sqlx::query("SELECT * FROM findings ORDER BY state, rule, system_id, asset")
        .fetch_all(pool)
        .await?;
    rows.iter()
        .map(|row| {
            Ok(FindingRecord {
                finding_id: row.try_get("finding_id")?,
                rule: row.try_get("rule")?,
                severity: row.try_get("severity")?,
                state: row.try_get("state")?,
                system_id: row.try_get("system_id")?,
                asset_id: row.try_get("asset_id")?,
                asset: row.try_get("asset")?,
                message: row.try_get("message")?,
                evidence: parse_json(&row.try_get::<String, _>("evidence_json")?, "finding evidence")?,
                first_seen_at: row.try_get("first_seen_at")?,
                last_seen_at: row.try_get("last_seen_at")?,
                resolved_at: row.try_get("resolved_at")?,
                accepted_by: row.try_get("accepted_by")?,
                accept_reason: row.try_get("accept_reason")?,
                accepted_until: row.try_get("accepted_until")?,
            })
        })
        .collect()
}

pub async fn events(pool: &SqlitePool, id: &str) -> Result<Vec<FindingEvent>, StoreError> {
    let rows = sqlx::query("SELECT at, from_state, to_state, actor, note FROM finding_events WHERE finding_id = ? ORDER BY at, rowid")
        .bind(id)
        .fetch_all(pool)
        .await?;
    rows.iter()
        .map(|row| {
            Ok(FindingEvent {
                at: row.try_get("at")?,
                from_state: row.try_get("from_state")?,
                to_state: row.try_get("to_state")?,
                actor: row.try_get("actor")?,
                note: row.try_get("note")?,
            })
        })
        .collect()
}
