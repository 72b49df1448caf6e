//! SQLite back-end of [`Store`]: one embedded file, created 0600, WAL mode, migrations from
//! `collector/migrations/sqlite` run at open. Each trait method is one transaction.

use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;

use async_trait::async_trait;
use sha2::{Digest, Sha256};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, Sqlite, SqlitePool, Transaction};

use super::{
    Acceptance, AgentRecord, AssetRecord, AuditEntry, AuditEvent, CatalogChange, ControlRecord,
    EvaluationSummary, FindingEvent, FindingRecord, IngestOutcome, NewAgent, NewToken,
    ReportInput, Store, StoreError,
};
use crate::catalog::System;
use crate::rules::FindingDraft;

#[path = "findings_sql.rs"]
mod findings_sql;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// The hash that precedes the first audit entry.
pub(crate) const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// A [`Store`] on an SQLite file.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if needed, mode 0600) the database at `path` and runs migrations.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        create_private(path)?;
        let options = SqliteConnectOptions::from_str("sqlite://")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(std::time::Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(Self { pool })
    }

    /// Opens a private in-memory database (tests).
    pub async fn in_memory() -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str("sqlite::memory:")?.foreign_keys(true);
        // One connection: every connection to :memory: is its own database.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(Self { pool })
    }
}

/// Creates the file with mode 0600 before SQLite does, so it is never world-readable.
fn create_private(path: &Path) -> Result<(), StoreError> {
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path).map(|_| ()).map_err(|source| StoreError::File {
        path: path.display().to_string(),
        source,
    })
}

pub(super) fn json_text(value: &impl serde::Serialize) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub(super) fn parse_json<T: serde::de::DeserializeOwned>(text: &str, what: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

fn agent_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<AgentRecord, StoreError> {
    let labels: BTreeMap<String, String> = parse_json(&row.try_get::<String, _>("labels_json")?, "agent labels")?;
    Ok(AgentRecord {
        agent_id: row.try_get("agent_id")?,
        hostname: row.try_get("hostname")?,
        cert_sha256: row.try_get("cert_sha256")?,
        cert_not_after: row.try_get("cert_not_after")?,
        labels,
        agent_version: row.try_get("agent_version")?,
        enrolled_at: row.try_get("enrolled_at")?,
        last_seen_at: row.try_get("last_seen_at")?,
        revoked_at: row.try_get("revoked_at")?,
        revoked_by: row.try_get("revoked_by")?,
        revoke_reason: row.try_get("revoke_reason")?,
    })
}

/// Why a token cannot be redeemed, or Ok if it can.
async fn token_state(
    tx: &mut Transaction<'_, Sqlite>,
    token_hash: &str,
    now: i64,
) -> Result<(), StoreError> {
    let row = sqlx::query("SELECT expires_at, used_at FROM enrollment_tokens WHERE token_hash = ?")
        .bind(token_hash)
        .fetch_optional(&mut **tx)
        .await?;
    let Some(row) = row else {
        return Err(StoreError::TokenUnknown);
    };
    if row.try_get::<Option<i64>, _>("used_at")?.is_some() {
        return Err(StoreError::TokenUsed);
    }
    if row.try_get::<i64, _>("expires_at")? <= now {
        return Err(StoreError::TokenExpired);
    }
    Ok(())
}

/// Appends one entry to the hash chain inside the caller's transaction.
async fn append_audit(
    tx: &mut Transaction<'_, Sqlite>,
    event: &AuditEvent,
    now: i64,
) -> Result<(), StoreError> {
    let prev: Option<String> = sqlx::query_scalar("SELECT hash FROM audit_log ORDER BY seq DESC LIMIT 1")
        .fetch_optional(&mut **tx)
        .await?;
    let prev_hash = prev.unwrap_or_else(|| GENESIS_HASH.to_string());
    let detail = json_text(&event.detail)?;
    let hash = audit_hash(&prev_hash, now, event, &detail);
    sqlx::query(
        "INSERT INTO audit_log (at, actor, action, subject, detail_json, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(now)
    .bind(&event.actor)
    .bind(&event.action)
    .bind(&event.subject)
    .bind(&detail)
    .bind(&prev_hash)
    .bind(&hash)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// SHA-256 over the previous hash and the entry's fields, NUL-separated so fields cannot run
/// into each other.
pub fn audit_hash(prev_hash: &str, at: i64, event: &AuditEvent, detail_json: &str) -> String {
    let mut hasher = Sha256::new();
    for part in [
        prev_hash,
        &at.to_string(),
        &event.actor,
        &event.action,
        &event.subject,
        detail_json,
    ] {
        hasher.update(part.as_bytes());
        hasher.update([0u8]);
    }
    hex::encode(hasher.finalize())
}

#[async_trait]
impl Store for SqliteStore {
    async fn create_token(&self, token: NewToken, now: i64) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO enrollment_tokens (token_hash, created_at, expires_at, created_by) VALUES (?, ?, ?, ?)",
        )
        .bind(&token.token_hash)
        .bind(token.created_at)
        .bind(token.expires_at)
        .bind(&token.created_by)
        .execute(&mut *tx)
        .await?;
        let event = AuditEvent {
            actor: token.created_by.clone(),
            action: "token.create".into(),
            // A prefix of the hash identifies the token in the log without enabling its use.
            subject: token.token_hash.chars().take(12).collect(),
            detail: serde_json::json!({ "expires_at": token.expires_at }),
        };
        append_audit(&mut tx, &event, now).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn check_token(&self, token_hash: &str, now: i64) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let state = token_state(&mut tx, token_hash, now).await;
        tx.rollback().await?;
        state
    }

    async fn enroll_agent(&self, token_hash: &str, agent: NewAgent, now: i64) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        token_state(&mut tx, token_hash, now).await?;
        let redeemed = sqlx::query(
            "UPDATE enrollment_tokens SET used_at = ?, used_by_agent = ? WHERE token_hash = ? AND used_at IS NULL AND expires_at > ?",
        )
        .bind(now)
        .bind(&agent.agent_id)
        .bind(token_hash)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if redeemed.rows_affected() != 1 {
            // Lost a race with another enrollment using the same token.
            return Err(StoreError::TokenUsed);
        }
        sqlx::query(
            "INSERT INTO agents (agent_id, hostname, cert_sha256, cert_not_after, labels_json, agent_version, enrolled_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&agent.agent_id)
        .bind(&agent.hostname)
        .bind(&agent.cert_sha256)
        .bind(agent.cert_not_after)
        .bind(json_text(&agent.labels)?)
        .bind(&agent.agent_version)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn agent(&self, agent_id: &str) -> Result<Option<AgentRecord>, StoreError> {
        let row = sqlx::query("SELECT * FROM agents WHERE agent_id = ?")
            .bind(agent_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(agent_from_row).transpose()
    }

    async fn agents(&self) -> Result<Vec<AgentRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM agents ORDER BY enrolled_at, agent_id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(agent_from_row).collect()
    }

    async fn revoke_agent(&self, agent_id: &str, event: AuditEvent, now: i64) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let exists: Option<Option<i64>> = sqlx::query_scalar("SELECT revoked_at FROM agents WHERE agent_id = ?")
            .bind(agent_id)
            .fetch_optional(&mut *tx)
            .await?;
        match exists {
            None => return Err(StoreError::AgentUnknown(agent_id.to_string())),
            Some(Some(_)) => return Ok(false),
            Some(None) => {}
        }
        sqlx::query("UPDATE agents SET revoked_at = ?, revoked_by = ?, revoke_reason = ? WHERE agent_id = ?")
            .bind(now)
            .bind(&event.actor)
            .bind(event.detail.get("reason").and_then(|r| r.as_str()).unwrap_or(""))
            .bind(agent_id)
            .execute(&mut *tx)
            .await?;
        append_audit(&mut tx, &event, now).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn touch_agent(&self, agent_id: &str, agent_version: &str, now: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE agents SET last_seen_at = ?, agent_version = ? WHERE agent_id = ?")
            .bind(now)
            .bind(agent_version)
            .bind(agent_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn ingest_report(&self, report: ReportInput, now: i64) -> Result<IngestOutcome, StoreError> {
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO reports (agent_id, report_id, received_at, collected_at, size_bytes) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        )
        .bind(&report.agent_id)
        .bind(&report.report_id)
        .bind(now)
        .bind(report.collected_at)
        .bind(report.size_bytes)
        .execute(&mut *tx)
        .await?;
        let existing: Option<String> =
            sqlx::query_scalar("SELECT asset_id FROM assets WHERE kind = 'host' AND agent_id = ?")
                .bind(&report.agent_id)
                .fetch_optional(&mut *tx)
                .await?;
        if inserted.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(IngestOutcome {
                asset_id: existing.unwrap_or_default(),
                duplicate: true,
            });
        }
        let asset_id = upsert_host_asset(&mut tx, &report, existing, now).await?;
        replace_observations(&mut tx, &asset_id, &report, now).await?;
        replace_controls(&mut tx, &asset_id, &report, now).await?;
        sqlx::query("UPDATE agents SET last_seen_at = ?, agent_version = ? WHERE agent_id = ?")
            .bind(now)
            .bind(&report.agent_version)
            .bind(&report.agent_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(IngestOutcome {
            asset_id,
            duplicate: false,
        })
    }

    async fn assets(&self) -> Result<Vec<AssetRecord>, StoreError> {
        let mut controls = all_controls(&self.pool).await?;
        let rows = sqlx::query(
            "SELECT a.*, (SELECT COUNT(*) FROM observations o WHERE o.asset_id = a.asset_id) AS observation_count FROM assets a ORDER BY a.kind, a.hostname, a.address",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut assets = Vec::with_capacity(rows.len());
        for row in rows {
            let asset_id: String = row.try_get("asset_id")?;
            assets.push(AssetRecord {
                kind: row.try_get("kind")?,
                agent_id: row.try_get("agent_id")?,
                hostname: row.try_get("hostname")?,
                address: row.try_get("address")?,
                facts: parse_json(&row.try_get::<String, _>("facts_json")?, "asset facts")?,
                first_seen_at: row.try_get("first_seen_at")?,
                last_seen_at: row.try_get("last_seen_at")?,
                last_report_id: row.try_get("last_report_id")?,
                observation_count: row.try_get("observation_count")?,
                controls: controls.remove(&asset_id).unwrap_or_default(),
                asset_id,
            });
        }
        Ok(assets)
    }

    async fn audit_log(&self) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = sqlx::query("SELECT * FROM audit_log ORDER BY seq")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(AuditEntry {
                    seq: row.try_get("seq")?,
                    at: row.try_get("at")?,
                    actor: row.try_get("actor")?,
                    action: row.try_get("action")?,
                    subject: row.try_get("subject")?,
                    detail: parse_json(&row.try_get::<String, _>("detail_json")?, "audit detail")?,
                    prev_hash: row.try_get("prev_hash")?,
                    hash: row.try_get("hash")?,
                })
            })
            .collect()
    }

    async fn replace_catalog(&self, systems: &[System], event: AuditEvent, now: i64) -> Result<CatalogChange, StoreError> {
        let mut tx = self.pool.begin().await?;
        let existing: Vec<(String, String)> = sqlx::query_as("SELECT system_id, document_json FROM systems")
            .fetch_all(&mut *tx)
            .await?;
        let existing: std::collections::HashMap<String, String> = existing.into_iter().collect();
        let mut change = CatalogChange::default();
        sqlx::query("DELETE FROM systems").execute(&mut *tx).await?;
        for system in systems {
            let document = json_text(system)?;
            match existing.get(&system.id) {
                None => change.added += 1,
                Some(old) if *old == document => change.unchanged += 1,
                Some(_) => change.changed += 1,
            }
            sqlx::query("INSERT INTO systems (system_id, document_json, imported_at) VALUES (?, ?, ?)")
                .bind(&system.id)
                .bind(&document)
                .bind(now)
                .execute(&mut *tx)
                .await?;
        }
        change.removed = existing.len() - change.changed - change.unchanged;
        let mut event = event;
        event.detail["change"] = serde_json::to_value(&change).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        append_audit(&mut tx, &event, now).await?;
        tx.commit().await?;
        Ok(change)
    }

    async fn systems(&self) -> Result<Vec<System>, StoreError> {
        let rows: Vec<(String,)> = sqlx::query_as("SELECT document_json FROM systems ORDER BY system_id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|(doc,)| parse_json(doc, "system")).collect()
    }

    async fn apply_findings(&self, drafts: &[FindingDraft], now: i64) -> Result<EvaluationSummary, StoreError> {
        let mut tx = self.pool.begin().await?;
        let summary = findings_sql::apply(&mut tx, drafts, now).await?;
        sqlx::query("INSERT OR REPLACE INTO evaluations (evaluated_at, summary_json) VALUES (?, ?)")
            .bind(now)
            .bind(json_text(&summary)?)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(summary)
    }

    async fn findings(&self) -> Result<Vec<FindingRecord>, StoreError> {
        findings_sql::all(&self.pool).await
    }

    async fn finding_events(&self, finding_id: &str) -> Result<Vec<FindingEvent>, StoreError> {
        findings_sql::events(&self.pool, finding_id).await
    }

    async fn accept_finding(&self, finding_id: &str, acceptance: Acceptance, now: i64) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        findings_sql::accept(&mut tx, finding_id, &acceptance, now).await?;
        let event = AuditEvent {
            actor: acceptance.by.clone(),
            action: "finding.accept".into(),
            subject: finding_id.to_string(),
            detail: serde_json::json!({ "reason": acceptance.reason, "until": acceptance.until }),
        };
        append_audit(&mut tx, &event, now).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn management_reports(&self) -> Result<Vec<(i64, serde_json::Value)>, StoreError> {
        let rows: Vec<(i64, String)> = sqlx::query_as("SELECT issued_at, figures_json FROM management_reports ORDER BY issued_at")
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter()
            .map(|(at, json)| Ok((at, parse_json(&json, "management report")?)))
            .collect()
    }

    async fn record_management_report(&self, at: i64, figures: &serde_json::Value) -> Result<(), StoreError> {
        sqlx::query("INSERT OR REPLACE INTO management_reports (issued_at, figures_json) VALUES (?, ?)")
            .bind(at)
            .bind(json_text(figures)?)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn evaluations(&self) -> Result<Vec<(i64, EvaluationSummary)>, StoreError> {
        let rows: Vec<(i64, String)> = sqlx::query_as("SELECT evaluated_at, summary_json FROM evaluations ORDER BY evaluated_at")
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter()
            .map(|(at, json)| Ok((at, parse_json(&json, "evaluation summary")?)))
            .collect()
    }
}

async fn upsert_host_asset(
    tx: &mut Transaction<'_, Sqlite>,
    report: &ReportInput,
    existing: Option<String>,
    now: i64,
) -> Result<String, StoreError> {
    let facts = json_text(&report.host_facts)?;
    if let Some(asset_id) = existing {
        sqlx::query("UPDATE assets SET hostname = ?, facts_json = ?, last_seen_at = ?, last_report_id = ? WHERE asset_id = ?")
            .bind(&report.hostname)
            .bind(&facts)
            .bind(now)
            .bind(&report.report_id)
            .bind(&asset_id)
            .execute(&mut **tx)
            .await?;
        return Ok(asset_id);
    }
    let asset_id = uuid::Uuid::now_v7().to_string();
    sqlx::query(
        "INSERT INTO assets (asset_id, kind, agent_id, hostname, facts_json, first_seen_at, last_seen_at, last_report_id) VALUES (?, 'host', ?, ?, ?, ?, ?, ?)",
    )
    .bind(&asset_id)
    .bind(&report.agent_id)
    .bind(&report.hostname)
    .bind(&facts)
    .bind(now)
    .bind(now)
    .bind(&report.report_id)
    .execute(&mut **tx)
    .await?;
    Ok(asset_id)
}

/// Brings the asset's observations to exactly the reported set, keeping first-seen times and
/// moving `changed_at` only when a value changes.
async fn replace_observations(
    tx: &mut Transaction<'_, Sqlite>,
    asset_id: &str,
    report: &ReportInput,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query("CREATE TEMP TABLE IF NOT EXISTS seen_observations (category TEXT, name TEXT)")
        .execute(&mut **tx)
        .await?;
    sqlx::query("DELETE FROM seen_observations").execute(&mut **tx).await?;
    for observation in &report.observations {
        let value = json_text(&observation.value)?;
        let evidence = json_text(&observation.evidence)?;
        sqlx::query(
            "INSERT INTO observations (asset_id, category, name, value_json, evidence_json, first_seen_at, last_seen_at, changed_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (asset_id, category, name) DO UPDATE SET
                changed_at = CASE WHEN observations.value_json = excluded.value_json THEN observations.changed_at ELSE excluded.changed_at END,
                value_json = excluded.value_json,
                evidence_json = excluded.evidence_json,
                last_seen_at = excluded.last_seen_at",
        )
        .bind(asset_id)
        .bind(&observation.category)
        .bind(&observation.name)
        .bind(&value)
        .bind(&evidence)
        .bind(now)
        .bind(now)
        .bind(now)
        .execute(&mut **tx)
        .await?;
        sqlx::query("INSERT INTO seen_observations VALUES (?, ?)")
            .bind(&observation.category)
            .bind(&observation.name)
            .execute(&mut **tx)
            .await?;
    }
    sqlx::query(
        "DELETE FROM observations WHERE asset_id = ? AND NOT EXISTS (SELECT 1 FROM seen_observations s WHERE s.category = observations.category AND s.name = observations.name)",
    )
    .bind(asset_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn replace_controls(
    tx: &mut Transaction<'_, Sqlite>,
    asset_id: &str,
    report: &ReportInput,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM controls WHERE asset_id = ?")
        .bind(asset_id)
        .execute(&mut **tx)
        .await?;
    for control in &report.controls {
        sqlx::query("INSERT INTO controls (asset_id, name, state, reason, evidence_json, observed_at) VALUES (?, ?, ?, ?, ?, ?)")
            .bind(asset_id)
            .bind(&control.name)
            .bind(&control.state)
            .bind(&control.reason)
            .bind(json_text(&control.evidence)?)
            .bind(now)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// Every asset's controls in one query, grouped by asset.
async fn all_controls(pool: &SqlitePool) -> Result<std::collections::HashMap<String, Vec<ControlRecord>>, StoreError> {
    let rows = sqlx::query("SELECT asset_id, name, state, reason, evidence_json FROM controls ORDER BY asset_id, name")
        .fetch_all(pool)
        .await?;
    let mut by_asset: std::collections::HashMap<String, Vec<ControlRecord>> = std::collections::HashMap::new();
    for row in &rows {
        by_asset.entry(row.try_get("asset_id")?).or_default().push(ControlRecord {
            name: row.try_get("name")?,
            state: row.try_get("state")?,
            reason: row.try_get("reason")?,
            evidence: parse_json(&row.try_get::<String, _>("evidence_json")?, "control evidence")?,
        });
    }
    Ok(by_asset)
}
