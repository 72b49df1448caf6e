//! The SQL back-end of [`Store`], on SQLite (one embedded file, created 0600, WAL mode) or on
//! PostgreSQL (one database shared by any number of collectors). Statements are shared text;
//! what differs is in [`super::dialect`]. Each back-end has its own migrations
//! (`collector/migrations/sqlite`, `collector/migrations/postgres`), run at open. Each trait
//! method is one transaction.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use sha2::{Digest, Sha256};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions, AnyRow};
use sqlx::{Any, AnyPool, Executor, Row, Transaction};

use super::dialect::Dialect;
use super::{
    Acceptance, AcceptedFinding, AgentRecord, AgentView, AppliedEvaluation, AssetRecord,
    AuditEntry, AuditEvent, CatalogChange, CertificateDates, Changes, ControlRecord,
    EvaluationScope, EvaluationSummary, FindingEvent, FindingRecord, Heartbeat, HostBinding,
    IngestOutcome, JobRecord, NewAgent, NewJob, NewToken, ObservationChange, RenewedCertificate,
    ReportInput, ScheduleRecord, Store, StoreError, TokenRecord, TokenScope,
};
use crate::catalog::{Attestation, Classification, System};
use crate::rules::FindingDraft;
use crate::store::web::{
    AcceptanceRequest, Enrolment, NewUser, OidcIdentity, OidcSignIn, PasskeyChallenge,
    PasskeyPurpose, PasskeyRecord, Scope, SessionRecord, UserRecord,
};
use digest::SetDigest;
pub use findings_sql::StoredFindings;

#[path = "digest.rs"]
mod digest;
#[path = "filter_sql.rs"]
mod filter_sql;
#[path = "findings_sql.rs"]
mod findings_sql;
#[path = "web_sql.rs"]
mod web_sql;

static SQLITE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The hash that precedes the first audit entry.
pub(crate) const GENESIS_HASH: &str =
    "0000000000000000000000000000000000000000000000000000000000000000";

/// A [`Store`] on SQLite or PostgreSQL.
#[derive(Clone, Debug)]
pub struct SqlStore {
    pool: AnyPool,
    dialect: Dialect,
}

/// The store opened on an SQLite file: the same type as on PostgreSQL.
pub type SqliteStore = SqlStore;

impl SqlStore {
    /// Opens (creating if needed, mode 0600) the SQLite database at `path` and runs migrations.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        create_private(path)?;
        let url = sqlite_url(path)?;
        sqlx::any::install_default_drivers();
        // WAL is a property of the file; set once before the pool's connections open it.
        {
            use sqlx::Connection;
            let mut conn = sqlx::AnyConnection::connect(&url).await?;
            conn.execute("PRAGMA journal_mode = WAL").await?;
            conn.close().await?;
        }
        let pool = AnyPoolOptions::new()
            .max_connections(4)
            .after_connect(|conn, _| {
                Box::pin(async move {
                    conn.execute("PRAGMA synchronous = FULL").await?;
                    conn.execute("PRAGMA busy_timeout = 10000").await?;
                    conn.execute("PRAGMA foreign_keys = ON").await?;
                    // 32 MiB of page cache a connection instead of SQLite's 2 MiB: an evaluation
                    // that opens 300,000 findings otherwise spills index pages to the WAL
                    // mid-transaction (measured: its events 1.9 -> 1.3 s, commit 1.4 -> 0.55 s;
                    // 256 MiB gained nothing more).
                    conn.execute("PRAGMA cache_size = -32768").await?;
                    Ok(())
                })
            })
            .connect(&url)
            .await?;
        Self::migrated(pool, Dialect::Sqlite).await
    }

    /// Opens a private in-memory SQLite database (tests).
    pub async fn in_memory() -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        // One connection, never recycled: every connection to :memory: is its own database.
        let pool = AnyPoolOptions::new()
            .max_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .after_connect(|conn, _| {
                Box::pin(async move {
                    conn.execute("PRAGMA foreign_keys = ON").await?;
                    Ok(())
                })
            })
            .connect("sqlite::memory:")
            .await?;
        Self::migrated(pool, Dialect::Sqlite).await
    }

    /// Connects to PostgreSQL at `url` (`postgres://user@host/db?sslmode=verify-full&...`)
    /// with at most `max_connections` connections and runs migrations. Several collectors may
    /// share the database; migrations take PostgreSQL's migration lock.
    pub async fn connect_postgres(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let options: AnyConnectOptions = url.parse()?;
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await?;
        Self::migrated(pool, Dialect::Postgres).await
    }

    async fn migrated(pool: AnyPool, dialect: Dialect) -> Result<Self, StoreError> {
        let migrator = match dialect {
            Dialect::Sqlite => &SQLITE_MIGRATOR,
            Dialect::Postgres => &POSTGRES_MIGRATOR,
        };
        migrator.run(&pool).await.map_err(|e| match e {
            sqlx::migrate::MigrateError::VersionMissing(version) => StoreError::SchemaNewer {
                applied: version,
                known: migrator.iter().map(|m| m.version).max().unwrap_or(0),
            },
            other => StoreError::Migrate(other),
        })?;
        Ok(Self { pool, dialect })
    }

    /// The back-end this store runs on.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// The connection pool, for tools that copy or check a whole database (`migrate`).
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The newest schema migration this build knows for the store's back-end.
    pub fn known_schema_version(&self) -> i64 {
        let migrator = match self.dialect {
            Dialect::Sqlite => &SQLITE_MIGRATOR,
            Dialect::Postgres => &POSTGRES_MIGRATOR,
        };
        migrator.iter().map(|m| m.version).max().unwrap_or(0)
    }

    /// Starts a write transaction that holds the database's write lock from the start (see
    /// [`Dialect::begin_write`]): a transaction that reads first and writes later never sees
    /// another writer's change between its read and its write.
    async fn write(&self) -> Result<Transaction<'static, Any>, sqlx::Error> {
        self.dialect.begin_write(&self.pool).await
    }

    /// [`Store::apply_findings`], with the stored findings read ahead or not.
    async fn apply_all(
        &self,
        drafts: &[FindingDraft],
        stored: Option<StoredFindings>,
        now: i64,
    ) -> Result<EvaluationSummary, StoreError> {
        let mut tx = self.write().await?;
        let summary = findings_sql::apply(
            &mut tx,
            self.dialect,
            &EvaluationScope::All,
            drafts,
            stored,
            now,
        )
        .await?;
        record_evaluation(&mut tx, &summary, now).await?;
        findings_sql::bump_generation(&mut tx).await?;
        tx.commit().await?;
        Ok(summary)
    }
}

/// The `sqlite://` URL of a file, percent-encoded so any file name is taken literally.
fn sqlite_url(path: &Path) -> Result<String, StoreError> {
    use std::fmt::Write;
    let text = path.to_str().ok_or_else(|| StoreError::File {
        path: path.display().to_string(),
        source: std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "the database path is not valid UTF-8",
        ),
    })?;
    let mut url = String::from("sqlite://");
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"/._-~".contains(&byte) {
            url.push(char::from(byte));
        } else {
            let _ = write!(url, "%{byte:02X}");
        }
    }
    url.push_str("?mode=rwc");
    Ok(url)
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
    options
        .open(path)
        .map(|_| ())
        .map_err(|source| StoreError::File {
            path: path.display().to_string(),
            source,
        })
}

pub(super) fn json_text(value: &impl serde::Serialize) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// An `audit_log` row as an entry.
pub(super) fn audit_entry_from_row(row: &AnyRow) -> Result<AuditEntry, StoreError> {
    let detail_json: String = row.try_get("detail_json")?;
    Ok(AuditEntry {
        seq: row.try_get("seq")?,
        at: row.try_get("at")?,
        actor: row.try_get("actor")?,
        action: row.try_get("action")?,
        subject: row.try_get("subject")?,
        // A row edited into non-JSON is still listed (as its text) and verified; the hash
        // check names it.
        detail: serde_json::from_str(&detail_json)
            .unwrap_or_else(|_| serde_json::Value::String(detail_json.clone())),
        detail_json,
        prev_hash: row.try_get("prev_hash")?,
        hash: row.try_get("hash")?,
    })
}

pub(super) fn parse_json<T: serde::de::DeserializeOwned>(
    text: &str,
    what: &str,
) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

/// A finding's `message_text` column: empty for a finding stored before the column existed.
pub(super) fn parse_finding_text(text: &str) -> Result<Option<crate::i18n::Text>, StoreError> {
    if text.is_empty() {
        return Ok(None);
    }
    parse_json(text, "finding message text").map(Some)
}

/// [`parse_finding_text`] of a row's `message_text`.
pub(super) fn finding_text(row: &AnyRow) -> Result<Option<crate::i18n::Text>, StoreError> {
    parse_finding_text(&row.try_get::<String, _>("message_text")?)
}

/// An agent as the dialect's `agent_object` packs it.
#[derive(serde::Deserialize)]
struct AgentRow {
    agent_id: String,
    hostname: String,
    cert_sha256: String,
    cert_not_after: i64,
    labels_json: String,
    token_labels_json: String,
    token_name: Option<String>,
    cert_issued_at: Option<i64>,
    cert_renewals: i64,
    prev_cert_sha256: Option<String>,
    host_id: Option<String>,
    clone_host_id: Option<String>,
    clone_detected_at: Option<i64>,
    agent_version: String,
    enrolled_at: i64,
    last_seen_at: Option<i64>,
    revoked_at: Option<i64>,
    revoked_by: Option<String>,
    revoke_reason: Option<String>,
    spool_depth: i64,
    spool_dropped: i64,
}

impl AgentRow {
    fn into_record(self) -> Result<AgentRecord, StoreError> {
        let claimed_labels: BTreeMap<String, String> =
            parse_json(&self.labels_json, "agent labels")?;
        let token_labels: BTreeMap<String, String> =
            parse_json(&self.token_labels_json, "agent token labels")?;
        Ok(AgentRecord {
            agent_id: self.agent_id,
            hostname: self.hostname,
            cert_sha256: self.cert_sha256,
            cert_not_after: self.cert_not_after,
            labels: effective_labels(&claimed_labels, &token_labels),
            claimed_labels,
            token_labels,
            token_name: self.token_name,
            cert_issued_at: self.cert_issued_at,
            cert_renewals: self.cert_renewals,
            prev_cert_sha256: self.prev_cert_sha256,
            host_id: self.host_id,
            clone_host_id: self.clone_host_id,
            clone_detected_at: self.clone_detected_at,
            agent_version: self.agent_version,
            enrolled_at: self.enrolled_at,
            last_seen_at: self.last_seen_at,
            revoked_at: self.revoked_at,
            revoked_by: self.revoked_by,
            revoke_reason: self.revoke_reason,
            spool_depth: self.spool_depth,
            spool_dropped: self.spool_dropped,
        })
    }
}

/// The claimed labels overlaid by the token's: where both name a key, the collector's value wins.
fn effective_labels(
    claimed: &BTreeMap<String, String>,
    token: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut labels = claimed.clone();
    labels.extend(token.iter().map(|(k, v)| (k.clone(), v.clone())));
    labels
}

/// Why a token cannot be redeemed, or Ok if it can. Revocation is reported before the budget
/// and the expiry, so an operator's decision is what the agent is told.
async fn token_state(
    tx: &mut Transaction<'_, Any>,
    token_hash: &str,
    now: i64,
) -> Result<(), StoreError> {
    let row = sqlx::query(
        "SELECT expires_at, uses, max_uses, revoked_at FROM enrollment_tokens WHERE token_hash = $1",
    )
    .bind(token_hash)
    .fetch_optional(&mut **tx)
    .await?;
    let Some(row) = row else {
        return Err(StoreError::TokenUnknown);
    };
    if row.try_get::<Option<i64>, _>("revoked_at")?.is_some() {
        return Err(StoreError::TokenRevoked);
    }
    if row.try_get::<i64, _>("uses")? >= row.try_get::<i64, _>("max_uses")? {
        return Err(StoreError::TokenUsed);
    }
    if row.try_get::<i64, _>("expires_at")? <= now {
        return Err(StoreError::TokenExpired);
    }
    Ok(())
}

fn token_from_row(row: &AnyRow) -> Result<TokenRecord, StoreError> {
    Ok(TokenRecord {
        name: row.try_get("name")?,
        created_at: row.try_get("created_at")?,
        created_by: row.try_get("created_by")?,
        expires_at: row.try_get("expires_at")?,
        max_uses: row.try_get("max_uses")?,
        uses: row.try_get("uses")?,
        labels: parse_json(&row.try_get::<String, _>("labels_json")?, "token labels")?,
        revoked_at: row.try_get("revoked_at")?,
        revoked_by: row.try_get("revoked_by")?,
    })
}

/// Appends one entry to the hash chain inside the caller's transaction.
async fn append_audit(
    tx: &mut Transaction<'_, Any>,
    event: &AuditEvent,
    now: i64,
) -> Result<(), StoreError> {
    let prev: Option<(i64, String)> =
        sqlx::query_as("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&mut **tx)
            .await?;
    // The caller holds the write lock, so the next number is free; numbering here (not by
    // the database) keeps the chain gapless on both back-ends.
    let (seq, prev_hash) = prev.map_or_else(
        || (1, GENESIS_HASH.to_string()),
        |(seq, hash)| (seq + 1, hash),
    );
    let detail = json_text(&event.detail)?;
    let hash = audit_hash(&prev_hash, now, event, &detail);
    sqlx::query(
        "INSERT INTO audit_log (seq, at, actor, action, subject, detail_json, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(seq)
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
impl Store for SqlStore {
    async fn create_scoped_token(
        &self,
        token: NewToken,
        scope: TokenScope,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        let name_in_use: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM enrollment_tokens WHERE name = $1")
                .bind(&scope.name)
                .fetch_optional(&mut *tx)
                .await?;
        if name_in_use.is_some() {
            return Err(StoreError::TokenNameTaken(scope.name));
        }
        sqlx::query(
            "INSERT INTO enrollment_tokens (token_hash, created_at, expires_at, created_by, name, max_uses, labels_json) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&token.token_hash)
        .bind(token.created_at)
        .bind(token.expires_at)
        .bind(&token.created_by)
        .bind(&scope.name)
        .bind(scope.max_uses.max(1))
        .bind(json_text(&scope.labels)?)
        .execute(&mut *tx)
        .await?;
        let event = AuditEvent {
            actor: token.created_by.clone(),
            action: "token.create".into(),
            subject: scope.name.clone(),
            // A prefix of the hash identifies the token in the log without enabling its use.
            detail: serde_json::json!({
                "expires_at": token.expires_at,
                "max_uses": scope.max_uses.max(1),
                "labels": scope.labels,
                "hash_prefix": token.token_hash.chars().take(12).collect::<String>(),
            }),
        };
        append_audit(&mut tx, &event, now).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM enrollment_tokens ORDER BY created_at DESC, name")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(token_from_row).collect()
    }

    async fn revoke_token(
        &self,
        name: &str,
        event: AuditEvent,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        let state: Option<Option<i64>> =
            sqlx::query_scalar("SELECT revoked_at FROM enrollment_tokens WHERE name = $1")
                .bind(name)
                .fetch_optional(&mut *tx)
                .await?;
        match state {
            None => return Err(StoreError::TokenNameUnknown(name.to_string())),
            Some(Some(_)) => return Ok(false),
            Some(None) => {}
        }
        sqlx::query(
            "UPDATE enrollment_tokens SET revoked_at = $1, revoked_by = $2 WHERE name = $3",
        )
        .bind(now)
        .bind(&event.actor)
        .bind(name)
        .execute(&mut *tx)
        .await?;
        append_audit(&mut tx, &event, now).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn bind_agent_host(
        &self,
        agent_id: &str,
        host_id: &str,
        now: i64,
    ) -> Result<HostBinding, StoreError> {
        let mut tx = self.write().await?;
        let row: Option<(Option<String>, Option<String>)> =
            sqlx::query_as("SELECT host_id, clone_host_id FROM agents WHERE agent_id = $1")
                .bind(agent_id)
                .fetch_optional(&mut *tx)
                .await?;
        let Some((bound, clone)) = row else {
            return Err(StoreError::AgentUnknown(agent_id.to_string()));
        };
        let binding = match bound {
            None => {
                sqlx::query("UPDATE agents SET host_id = $1 WHERE agent_id = $2")
                    .bind(host_id)
                    .bind(agent_id)
                    .execute(&mut *tx)
                    .await?;
                HostBinding::Bound
            }
            Some(bound) if bound == host_id => HostBinding::Same,
            Some(bound) => {
                if clone.as_deref() != Some(host_id) {
                    sqlx::query(
                        "UPDATE agents SET clone_host_id = $1, clone_detected_at = $2 WHERE agent_id = $3",
                    )
                    .bind(host_id)
                    .bind(now)
                    .bind(agent_id)
                    .execute(&mut *tx)
                    .await?;
                    // Not a person's change, but the security trail must show it.
                    let event = AuditEvent {
                        actor: "collector".into(),
                        action: "agent.clone-detected".into(),
                        subject: agent_id.to_string(),
                        detail: serde_json::json!({ "bound_host": bound, "other_host": host_id }),
                    };
                    append_audit(&mut tx, &event, now).await?;
                }
                HostBinding::Clone { bound }
            }
        };
        tx.commit().await?;
        Ok(binding)
    }

    async fn renew_agent_certificate(
        &self,
        agent_id: &str,
        renewed: &RenewedCertificate,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        let row: Option<(String, Option<i64>)> =
            sqlx::query_as("SELECT cert_sha256, revoked_at FROM agents WHERE agent_id = $1")
                .bind(agent_id)
                .fetch_optional(&mut *tx)
                .await?;
        let Some((current, revoked_at)) = row else {
            return Err(StoreError::AgentUnknown(agent_id.to_string()));
        };
        if revoked_at.is_some() {
            return Err(StoreError::AgentRevoked(agent_id.to_string()));
        }
        let previous: Option<String> =
            sqlx::query_scalar("SELECT prev_cert_sha256 FROM agents WHERE agent_id = $1")
                .bind(agent_id)
                .fetch_one(&mut *tx)
                .await?;
        // Renewing with the replaced certificate (the agent lost the new files) is allowed
        // while it is still accepted; the newest issue then wins and the lost one is dropped.
        let keep_previous = if renewed.presented_sha256 == current {
            current
        } else if previous.as_deref() == Some(renewed.presented_sha256.as_str()) {
            renewed.presented_sha256.clone()
        } else {
            return Err(StoreError::CertificateSuperseded(agent_id.to_string()));
        };
        sqlx::query(
            "UPDATE agents SET prev_cert_sha256 = $1, cert_sha256 = $2, cert_not_after = $3, cert_issued_at = $4, cert_renewals = cert_renewals + 1, revision = revision + 1, change_number = $6 WHERE agent_id = $5",
        )
        .bind(&keep_previous)
        .bind(&renewed.cert_sha256)
        .bind(renewed.cert_not_after)
        .bind(now)
        .bind(agent_id)
        .bind(next_change(&mut tx).await?)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn forget_previous_certificate(&self, agent_id: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE agents SET prev_cert_sha256 = NULL WHERE agent_id = $1 AND prev_cert_sha256 IS NOT NULL")
            .bind(agent_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn check_token(&self, token_hash: &str, now: i64) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        let state = token_state(&mut tx, token_hash, now).await;
        tx.rollback().await?;
        state
    }

    async fn enroll_agent(
        &self,
        token_hash: &str,
        agent: NewAgent,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        token_state(&mut tx, token_hash, now).await?;
        // The budget is checked and spent in one statement inside the write transaction, so
        // concurrent enrollments never redeem more than `max_uses`.
        let redeemed: Option<(String, String)> = sqlx::query_as(
            "UPDATE enrollment_tokens SET uses = uses + 1, used_at = COALESCE(used_at, $1), used_by_agent = COALESCE(used_by_agent, $2) WHERE token_hash = $3 AND uses < max_uses AND revoked_at IS NULL AND expires_at > $4 RETURNING name, labels_json",
        )
        .bind(now)
        .bind(&agent.agent_id)
        .bind(token_hash)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((token_name, token_labels)) = redeemed else {
            // Lost a race with another enrollment using the same token.
            return Err(StoreError::TokenUsed);
        };
        sqlx::query(
            "INSERT INTO agents (agent_id, hostname, cert_sha256, cert_not_after, labels_json, agent_version, enrolled_at, token_labels_json, token_name, cert_issued_at, change_number) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(&agent.agent_id)
        .bind(&agent.hostname)
        .bind(&agent.cert_sha256)
        .bind(agent.cert_not_after)
        .bind(json_text(&agent.labels)?)
        .bind(&agent.agent_version)
        .bind(now)
        .bind(&token_labels)
        .bind(&token_name)
        .bind(now)
        .bind(next_change(&mut tx).await?)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn agent(&self, agent_id: &str) -> Result<Option<AgentRecord>, StoreError> {
        let text: Option<String> = sqlx::query_scalar(self.dialect.agent_by_id())
            .bind(agent_id)
            .fetch_optional(&self.pool)
            .await?;
        text.map(|text| parse_json::<AgentRow>(&text, "agent")?.into_record())
            .transpose()
    }

    async fn agents(&self) -> Result<Vec<AgentRecord>, StoreError> {
        let sql = self.dialect.agents_page();
        let rows: Vec<AgentRow> = read_pages("agents", String::new(), |after| {
            sqlx::query_as(&sql)
                .bind(after)
                .bind(PAGE)
                .fetch_one(&self.pool)
        })
        .await?;
        let mut agents = rows
            .into_iter()
            .map(AgentRow::into_record)
            .collect::<Result<Vec<_>, _>>()?;
        agents.sort_by(|a, b| (a.enrolled_at, &a.agent_id).cmp(&(b.enrolled_at, &b.agent_id)));
        Ok(agents)
    }

    async fn agent_views(&self) -> Result<Vec<AgentView>, StoreError> {
        type Row = (String, String, String, Option<i64>, i64, i64, Option<i64>);
        let rows: Vec<Row> = read_pages("agents", String::new(), |after| {
            sqlx::query_as(self.dialect.agent_views_page())
                .bind(after)
                .bind(PAGE)
                .fetch_one(&self.pool)
        })
        .await?;
        rows.into_iter()
            .map(
                |(agent_id, claimed, token, issued_at, enrolled_at, not_after, revoked_at)| {
                    let claimed = parse_json(&claimed, "agent labels")?;
                    let token = parse_json(&token, "agent token labels")?;
                    let dates = CertificateDates {
                        issued_at,
                        enrolled_at,
                        not_after,
                        revoked_at,
                    };
                    Ok(AgentView::new(
                        agent_id,
                        effective_labels(&claimed, &token),
                        dates,
                    ))
                },
            )
            .collect()
    }

    async fn revoke_agent(
        &self,
        agent_id: &str,
        event: AuditEvent,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        let exists: Option<Option<i64>> =
            sqlx::query_scalar("SELECT revoked_at FROM agents WHERE agent_id = $1")
                .bind(agent_id)
                .fetch_optional(&mut *tx)
                .await?;
        match exists {
            None => return Err(StoreError::AgentUnknown(agent_id.to_string())),
            Some(Some(_)) => return Ok(false),
            Some(None) => {}
        }
        sqlx::query("UPDATE agents SET revoked_at = $1, revoked_by = $2, revoke_reason = $3, revision = revision + 1, change_number = $5 WHERE agent_id = $4")
            .bind(now)
            .bind(&event.actor)
            .bind(event.detail.get("reason").and_then(|r| r.as_str()).unwrap_or(""))
            .bind(agent_id)
            .bind(next_change(&mut tx).await?)
            .execute(&mut *tx)
            .await?;
        append_audit(&mut tx, &event, now).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn touch_agent(
        &self,
        agent_id: &str,
        heartbeat: &Heartbeat,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE agents SET last_seen_at = $1, agent_version = $2, spool_depth = $3, spool_dropped = $4 WHERE agent_id = $5")
            .bind(now)
            .bind(&heartbeat.agent_version)
            .bind(heartbeat.spool_depth)
            .bind(heartbeat.spool_dropped)
            .bind(agent_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn ingest_report(
        &self,
        report: ReportInput,
        now: i64,
    ) -> Result<IngestOutcome, StoreError> {
        let mut tx = self.write().await?;
        let inserted = sqlx::query(
            "INSERT INTO reports (agent_id, report_id, received_at, collected_at, size_bytes) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        )
        .bind(&report.agent_id)
        .bind(&report.report_id)
        .bind(now)
        .bind(report.collected_at)
        .bind(report.size_bytes)
        .execute(&mut *tx)
        .await?;
        // The host's row comes with what the report compares against (its digest, controls
        // and count), so an unchanged host costs no further read.
        let (existing, digest, controls_json, observation_count, last_sequence): HostRow =
            sqlx::query_as(
                "SELECT a.asset_id, a.observations_digest, a.controls_json, a.observation_count, g.last_sequence
                 FROM agents g LEFT JOIN assets a ON a.kind = 'host' AND a.agent_id = g.agent_id
                 WHERE g.agent_id = $1",
            )
            .bind(&report.agent_id)
            .fetch_one(&mut *tx)
            .await?;
        if inserted.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(IngestOutcome {
                asset_id: existing.unwrap_or_default(),
                duplicate: true,
                resync_required: false,
            });
        }
        // A delta applies only on top of the report it was computed against, and only to an
        // asset that exists; anything else would store a wrong picture.
        if let Some(base) = report.delta_base
            && (base != last_sequence || existing.is_none())
        {
            tx.rollback().await?;
            return Ok(IngestOutcome {
                asset_id: existing.unwrap_or_default(),
                duplicate: false,
                resync_required: true,
            });
        }
        let host = existing.map(|asset_id| {
            let stored = StoredFacts {
                digest,
                controls_json: controls_json.unwrap_or_default(),
                observation_count: observation_count.unwrap_or_default(),
            };
            (asset_id, stored)
        });
        let asset_id = store_assets(&mut tx, &report, host, now).await?;
        // A report without a sequence (an older agent) leaves the delta base as it was.
        sqlx::query("UPDATE agents SET last_seen_at = $1, agent_version = $2, last_sequence = CASE WHEN $3 > 0 THEN $3 ELSE last_sequence END WHERE agent_id = $4")
            .bind(now)
            .bind(&report.agent_version)
            .bind(report.sequence)
            .bind(&report.agent_id)
            .execute(&mut *tx)
            .await?;
        if let Some(job_id) = &report.job_id {
            // Only the agent the job was given to can complete it.
            sqlx::query("UPDATE jobs SET state = 'done', finished_at = $1, report_id = $2 WHERE job_id = $3 AND agent_id = $4 AND state IN ('pending', 'delivered')")
                .bind(now)
                .bind(&report.report_id)
                .bind(job_id)
                .bind(&report.agent_id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(IngestOutcome {
            asset_id,
            duplicate: false,
            resync_required: false,
        })
    }

    async fn assets(&self) -> Result<Vec<AssetRecord>, StoreError> {
        // sqlx hands SQLite rows across threads one at a time, which dominates at 100,000
        // assets; SQLite packs a page of assets into one JSON text instead, and controls and
        // the observation count already sit on the asset row (kept by ingest).
        let rows: Vec<AssetRow> = read_pages("assets", 0_i64, |after| {
            sqlx::query_as(self.dialect.assets_page())
                .bind(after)
                .bind(PAGE)
                .fetch_one(&self.pool)
        })
        .await?;
        let mut assets: Vec<AssetRecord> = rows.into_iter().map(AssetRow::into_record).collect();
        assets.sort_by(|a, b| {
            (&a.kind, &a.hostname, &a.address).cmp(&(&b.kind, &b.hostname, &b.address))
        });
        Ok(assets)
    }

    async fn audit_log(&self) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = sqlx::query("SELECT * FROM audit_log ORDER BY seq")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(audit_entry_from_row).collect()
    }

    async fn replace_catalog(
        &self,
        systems: &[System],
        event: AuditEvent,
        now: i64,
    ) -> Result<CatalogChange, StoreError> {
        let mut tx = self.write().await?;
        let existing: Vec<(String, String)> =
            sqlx::query_as("SELECT system_id, document_json FROM systems")
                .fetch_all(&mut *tx)
                .await?;
        let existing: std::collections::HashMap<String, String> = existing.into_iter().collect();
        let mut change = CatalogChange::default();
        sqlx::query("DELETE FROM systems").execute(&mut *tx).await?;
        register_changed(&mut tx).await?;
        for system in systems {
            let document = json_text(system)?;
            match existing.get(&system.id) {
                None => change.added += 1,
                Some(old) if *old == document => change.unchanged += 1,
                Some(_) => change.changed += 1,
            }
            sqlx::query(
                "INSERT INTO systems (system_id, document_json, imported_at) VALUES ($1, $2, $3)",
            )
            .bind(&system.id)
            .bind(&document)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        change.removed = existing.len() - change.changed - change.unchanged;
        let mut event = event;
        event.detail["change"] =
            serde_json::to_value(&change).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        append_audit(&mut tx, &event, now).await?;
        tx.commit().await?;
        Ok(change)
    }

    async fn systems(&self) -> Result<Vec<System>, StoreError> {
        let rows: Vec<(String,)> =
            sqlx::query_as("SELECT document_json FROM systems ORDER BY system_id")
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|(doc,)| parse_json(doc, "system"))
            .collect()
    }

    async fn apply_findings(
        &self,
        drafts: &[FindingDraft],
        now: i64,
    ) -> Result<EvaluationSummary, StoreError> {
        self.apply_all(drafts, None, now).await
    }

    async fn stored_findings(&self) -> Result<StoredFindings, StoreError> {
        findings_sql::read_ahead(&self.pool, self.dialect).await
    }

    async fn apply_findings_read_ahead(
        &self,
        drafts: &[FindingDraft],
        stored: StoredFindings,
        now: i64,
    ) -> Result<EvaluationSummary, StoreError> {
        self.apply_all(drafts, Some(stored), now).await
    }

    async fn changes(&self, since: Option<i64>) -> Result<Changes, StoreError> {
        type Row = (i64, i64, i64, i64, i64, Option<String>, Option<String>);
        // Nothing is numbered above i64::MAX: the index finds no row.
        let (watermark, register, findings, assets, agents, asset_ids, agent_ids): Row =
            sqlx::query_as(self.dialect.changes())
                .bind(since.unwrap_or(i64::MAX))
                .fetch_one(&self.pool)
                .await?;
        let ids = |text: Option<String>| {
            parse_json::<Vec<String>>(text.as_deref().unwrap_or("[]"), "changed ids")
        };
        let count = |n: i64| usize::try_from(n).map_err(|e| StoreError::Corrupt(e.to_string()));
        Ok(Changes {
            watermark,
            assets: ids(asset_ids)?,
            agents: ids(agent_ids)?,
            asset_count: count(assets)?,
            agent_count: count(agents)?,
            register,
            findings,
        })
    }

    async fn assets_by_id(&self, ids: &[String]) -> Result<Vec<AssetRecord>, StoreError> {
        let mut assets = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(PAGE_IDS) {
            let marks: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let sql = format!(
                "SELECT {} FROM assets a WHERE a.asset_id IN ({})",
                self.dialect.asset_json(),
                marks.join(", ")
            );
            let mut query = sqlx::query_scalar::<_, String>(&sql);
            for id in chunk {
                query = query.bind(id);
            }
            for text in query.fetch_all(&self.pool).await? {
                assets.push(parse_json::<AssetRow>(&text, "asset")?.into_record());
            }
        }
        Ok(assets)
    }

    async fn accepted_findings(&self) -> Result<Vec<AcceptedFinding>, StoreError> {
        findings_sql::accepted(&self.pool).await
    }

    async fn apply_evaluation(
        &self,
        scope: &EvaluationScope,
        drafts: &[FindingDraft],
        links: &[(String, String)],
        expected: Option<i64>,
        now: i64,
    ) -> Result<Option<AppliedEvaluation>, StoreError> {
        let mut tx = self.write().await?;
        if expected.is_some() && expected != Some(findings_sql::generation(&mut tx).await?) {
            return Ok(None);
        }
        let mut summary =
            findings_sql::apply(&mut tx, self.dialect, scope, drafts, None, now).await?;
        let assets = match scope {
            EvaluationScope::All => None,
            EvaluationScope::Subjects { assets, systems } => {
                summary.judged = Some(super::Judged {
                    assets: assets.len(),
                    systems: systems.len(),
                });
                Some(assets.as_slice())
            }
        };
        record_evaluation(&mut tx, &summary, now).await?;
        web_sql::replace_system_links(&mut tx, self.dialect, assets, links).await?;
        let generation = findings_sql::bump_generation(&mut tx).await?;
        tx.commit().await?;
        Ok(Some(AppliedEvaluation {
            summary,
            generation,
        }))
    }

    async fn findings(&self) -> Result<Vec<FindingRecord>, StoreError> {
        findings_sql::all(&self.pool, self.dialect).await
    }

    async fn open_findings_by_system(&self) -> Result<HashMap<String, usize>, StoreError> {
        findings_sql::open_by_system(&self.pool).await
    }

    async fn finding_events(&self, finding_id: &str) -> Result<Vec<FindingEvent>, StoreError> {
        findings_sql::events(&self.pool, finding_id).await
    }

    async fn accept_finding(
        &self,
        finding_id: &str,
        acceptance: Acceptance,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
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

    async fn create_schedule(
        &self,
        schedule: &ScheduleRecord,
        event: AuditEvent,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        sqlx::query("INSERT INTO schedules (name, kind, cron, timezone, target, params_json, next_run_at, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)")
            .bind(&schedule.name)
            .bind(&schedule.kind)
            .bind(&schedule.cron)
            .bind(&schedule.timezone)
            .bind(&schedule.target)
            .bind(json_text(&schedule.params)?)
            .bind(schedule.next_run_at)
            .bind(&schedule.created_by)
            .bind(schedule.created_at)
            .execute(&mut *tx)
            .await?;
        append_audit(&mut tx, &event, now).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn delete_schedule(
        &self,
        name: &str,
        event: AuditEvent,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        let deleted = sqlx::query("DELETE FROM schedules WHERE name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        if deleted.rows_affected() == 0 {
            return Ok(false);
        }
        append_audit(&mut tx, &event, now).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn schedules(&self) -> Result<Vec<ScheduleRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM schedules ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(ScheduleRecord {
                    name: row.try_get("name")?,
                    kind: row.try_get("kind")?,
                    cron: row.try_get("cron")?,
                    timezone: row.try_get("timezone")?,
                    target: row.try_get("target")?,
                    params: parse_json(
                        &row.try_get::<String, _>("params_json")?,
                        "schedule parameters",
                    )?,
                    next_run_at: row.try_get("next_run_at")?,
                    created_by: row.try_get("created_by")?,
                    created_at: row.try_get("created_at")?,
                })
            })
            .collect()
    }

    async fn fire_schedule(
        &self,
        name: &str,
        jobs: &[NewJob],
        next_run_at: i64,
        now: i64,
    ) -> Result<Vec<String>, StoreError> {
        let mut tx = self.write().await?;
        let due: Option<i64> =
            sqlx::query_scalar("SELECT next_run_at FROM schedules WHERE name = $1")
                .bind(name)
                .fetch_optional(&mut *tx)
                .await?;
        if due.is_none_or(|at| at > now) {
            // Fired by another collector since the caller read it, or removed.
            tx.rollback().await?;
            return Ok(Vec::new());
        }
        let ids = insert_jobs(&mut tx, jobs, now).await?;
        sqlx::query("UPDATE schedules SET next_run_at = $1 WHERE name = $2")
            .bind(next_run_at)
            .bind(name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(ids)
    }

    async fn take_lease(
        &self,
        name: &str,
        holder: &str,
        now: i64,
        until: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        let taken = sqlx::query(
            "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
             WHERE leases.holder = excluded.holder OR leases.expires_at <= $4",
        )
        .bind(name)
        .bind(holder)
        .bind(until)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(taken.rows_affected() == 1)
    }

    async fn create_jobs(
        &self,
        jobs: &[NewJob],
        event: Option<AuditEvent>,
        now: i64,
    ) -> Result<Vec<String>, StoreError> {
        let mut tx = self.write().await?;
        let ids = insert_jobs(&mut tx, jobs, now).await?;
        if let Some(event) = event {
            append_audit(&mut tx, &event, now).await?;
        }
        tx.commit().await?;
        Ok(ids)
    }

    async fn pull_jobs(&self, agent_id: &str, now: i64) -> Result<Vec<JobRecord>, StoreError> {
        let mut tx = self.write().await?;
        let rows = sqlx::query("SELECT * FROM jobs WHERE agent_id = $1 AND state = 'pending' ORDER BY created_at, job_id")
            .bind(agent_id)
            .fetch_all(&mut *tx)
            .await?;
        sqlx::query("UPDATE jobs SET state = 'delivered', delivered_at = $1 WHERE agent_id = $2 AND state = 'pending'")
            .bind(now)
            .bind(agent_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        rows.iter().map(job_from_row).collect()
    }

    async fn complete_job(
        &self,
        agent_id: &str,
        job_id: &str,
        error: Option<&str>,
        now: i64,
    ) -> Result<bool, StoreError> {
        let state = if error.is_some() { "failed" } else { "done" };
        // An empty agent id closes the collector's own jobs (evaluations).
        let updated = sqlx::query("UPDATE jobs SET state = $1, finished_at = $2, error = $3 WHERE job_id = $4 AND (agent_id = $5 OR (agent_id IS NULL AND $6 = '')) AND state IN ('pending', 'delivered')")
            .bind(state)
            .bind(now)
            .bind(error)
            .bind(job_id)
            .bind(agent_id)
            .bind(agent_id)
            .execute(&self.pool)
            .await?;
        Ok(updated.rows_affected() == 1)
    }

    async fn jobs(&self, schedule: Option<&str>) -> Result<Vec<JobRecord>, StoreError> {
        let run_now = schedule.map(|s| format!("run-now:{s}"));
        let rows = sqlx::query("SELECT * FROM jobs WHERE $1 IS NULL OR schedule = $2 OR schedule = $3 ORDER BY created_at DESC, job_id")
            .bind(schedule)
            .bind(schedule)
            .bind(run_now)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(job_from_row).collect()
    }

    async fn observations(
        &self,
        asset_id: &str,
        categories: &[&str],
    ) -> Result<Vec<super::ObservationRecord>, StoreError> {
        let rows = sqlx::query(self.dialect.observations_in_categories())
            .bind(asset_id)
            .bind(serde_json::to_string(categories).unwrap_or_else(|_| "[]".into()))
            .fetch_all(&self.pool)
            .await?;
        let mut found = Vec::new();
        for row in &rows {
            let category: String = row.try_get("category")?;
            found.push(super::ObservationRecord {
                name: row.try_get("name")?,
                value: parse_json(
                    &row.try_get::<String, _>("value_json")?,
                    "observation value",
                )?,
                evidence: parse_json(
                    &row.try_get::<String, _>("evidence_json")?,
                    "observation evidence",
                )?,
                category,
            });
        }
        Ok(found)
    }

    async fn observation_changes(
        &self,
        asset: Option<&str>,
        since: i64,
    ) -> Result<Vec<ObservationChange>, StoreError> {
        let rows = sqlx::query(
            "SELECT h.*, CASE WHEN a.address = '' THEN a.hostname ELSE a.address END AS label
             FROM observation_history h JOIN assets a ON a.asset_id = h.asset_id
             WHERE h.at >= $1 AND ($2 IS NULL OR a.asset_id = $3 OR a.hostname = $4 OR a.address = $5)
             ORDER BY h.at, h.rowid",
        )
        .bind(since)
        .bind(asset)
        .bind(asset)
        .bind(asset)
        .bind(asset)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(ObservationChange {
                    asset_id: row.try_get("asset_id")?,
                    asset: row.try_get("label")?,
                    category: row.try_get("category")?,
                    name: row.try_get("name")?,
                    change: row.try_get("change")?,
                    old_value: row.try_get("old_value_json")?,
                    new_value: row.try_get("new_value_json")?,
                    at: row.try_get("at")?,
                    report_id: row.try_get("report_id")?,
                })
            })
            .collect()
    }

    async fn management_reports(&self) -> Result<Vec<(i64, serde_json::Value)>, StoreError> {
        let rows: Vec<(i64, String)> = sqlx::query_as(
            "SELECT issued_at, figures_json FROM management_reports ORDER BY issued_at",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(at, json)| Ok((at, parse_json(&json, "management report")?)))
            .collect()
    }

    async fn record_management_report(
        &self,
        at: i64,
        figures: &serde_json::Value,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO management_reports (issued_at, figures_json) VALUES ($1, $2)
             ON CONFLICT (issued_at) DO UPDATE SET figures_json = excluded.figures_json",
        )
        .bind(at)
        .bind(json_text(figures)?)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn evaluations(&self) -> Result<Vec<(i64, EvaluationSummary)>, StoreError> {
        let rows: Vec<(i64, String)> = sqlx::query_as(
            "SELECT evaluated_at, summary_json FROM evaluations ORDER BY evaluated_at",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(at, json)| Ok((at, parse_json(&json, "evaluation summary")?)))
            .collect()
    }

    // ---- The owners' web interface (issue 13); statements in web_sql.rs.

    async fn record_audit(&self, event: AuditEvent, now: i64) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        append_audit(&mut tx, &event, now).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn create_user(
        &self,
        user: NewUser,
        event: AuditEvent,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        web_sql::create_user(&mut tx, &user, &event.actor, now).await?;
        append_audit(&mut tx, &event, now).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn users(&self) -> Result<Vec<UserRecord>, StoreError> {
        web_sql::users(&self.pool).await
    }

    async fn user_by_email(&self, email: &str) -> Result<Option<UserRecord>, StoreError> {
        web_sql::user_by_email(&self.pool, email).await
    }

    async fn user_by_id(&self, user_id: &str) -> Result<Option<UserRecord>, StoreError> {
        web_sql::user_by_id(&self.pool, user_id).await
    }

    async fn user_by_enrol_token(
        &self,
        token_hash: &str,
        now: i64,
    ) -> Result<Option<UserRecord>, StoreError> {
        web_sql::user_by_enrol_token(&self.pool, token_hash, now).await
    }

    async fn complete_enrolment(
        &self,
        token_hash: &str,
        enrolment: Enrolment,
        event: AuditEvent,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        let done = web_sql::complete_enrolment(&mut tx, token_hash, &enrolment, now).await?;
        if done {
            append_audit(&mut tx, &event, now).await?;
        }
        tx.commit().await?;
        Ok(done)
    }

    async fn disable_user(
        &self,
        email: &str,
        event: AuditEvent,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        let done = web_sql::disable_user(&mut tx, email, now).await?;
        if done {
            append_audit(&mut tx, &event, now).await?;
        }
        tx.commit().await?;
        Ok(done)
    }

    async fn record_sign_in_failure(
        &self,
        user_id: &str,
        lock_after: i64,
        lock_until: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        let (attempts, locked) =
            web_sql::sign_in_failure(&mut tx, user_id, lock_after, lock_until).await?;
        if locked {
            let event = AuditEvent {
                actor: "collector".into(),
                action: "web.lock".into(),
                subject: user_id.to_string(),
                detail: serde_json::json!({ "failed_attempts": attempts, "locked_until": lock_until }),
            };
            append_audit(&mut tx, &event, now).await?;
        }
        tx.commit().await?;
        Ok(locked)
    }

    async fn start_session(
        &self,
        session: SessionRecord,
        totp_step: i64,
        event: AuditEvent,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        let started = web_sql::start_session(&mut tx, &session, totp_step).await?;
        if started {
            append_audit(&mut tx, &event, now).await?;
        }
        tx.commit().await?;
        Ok(started)
    }

    async fn oidc_sign_in(
        &self,
        identity: OidcIdentity,
        mut session: SessionRecord,
        event: AuditEvent,
        now: i64,
    ) -> Result<OidcSignIn, StoreError> {
        let mut tx = self.write().await?;
        let outcome = web_sql::oidc_account(&mut tx, &identity, now).await?;
        if let OidcSignIn::Started(user_id) = &outcome {
            session.user_id.clone_from(user_id);
            web_sql::insert_session(&mut tx, &session).await?;
            let mut event = event;
            event.subject.clone_from(user_id);
            append_audit(&mut tx, &event, now).await?;
        }
        tx.commit().await?;
        Ok(outcome)
    }

    async fn session(
        &self,
        session_hash: &str,
        idle_since: i64,
        created_since: i64,
        now: i64,
    ) -> Result<Option<(SessionRecord, UserRecord)>, StoreError> {
        web_sql::session(&self.pool, session_hash, idle_since, created_since, now).await
    }

    async fn end_session(&self, session_hash: &str) -> Result<(), StoreError> {
        web_sql::end_session(&self.pool, session_hash).await
    }

    async fn passkeys(&self, user_id: &str) -> Result<Vec<PasskeyRecord>, StoreError> {
        web_sql::passkeys(&self.pool, user_id).await
    }

    async fn add_passkey(
        &self,
        passkey: PasskeyRecord,
        event: AuditEvent,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        let added = web_sql::add_passkey(&mut tx, &passkey).await?;
        if added {
            append_audit(&mut tx, &event, now).await?;
        }
        tx.commit().await?;
        Ok(added)
    }

    async fn remove_passkey(
        &self,
        user_id: &str,
        credential_id: &str,
        event: AuditEvent,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        let removed = web_sql::remove_passkey(&mut tx, user_id, credential_id).await?;
        if removed {
            append_audit(&mut tx, &event, now).await?;
        }
        tx.commit().await?;
        Ok(removed)
    }

    async fn put_passkey_challenge(
        &self,
        challenge: PasskeyChallenge,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        web_sql::put_passkey_challenge(&mut tx, &challenge, now).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn take_passkey_challenge(
        &self,
        binding: &str,
        purpose: PasskeyPurpose,
        now: i64,
    ) -> Result<Option<PasskeyChallenge>, StoreError> {
        web_sql::take_passkey_challenge(&self.pool, binding, purpose, now).await
    }

    async fn passkey_sign_in(
        &self,
        session: SessionRecord,
        credential_id: &str,
        passkey_json: &str,
        event: AuditEvent,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        let started =
            web_sql::passkey_sign_in(&mut tx, &session, credential_id, passkey_json, now).await?;
        if started {
            append_audit(&mut tx, &event, now).await?;
        }
        tx.commit().await?;
        Ok(started)
    }

    async fn spend_totp_step(&self, user_id: &str, step: i64) -> Result<bool, StoreError> {
        web_sql::spend_totp_step(&self.pool, user_id, step).await
    }

    async fn replace_system_links(&self, links: &[(String, String)]) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        web_sql::replace_system_links(&mut tx, self.dialect, None, links).await?;
        findings_sql::bump_generation(&mut tx).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn scoped_systems(
        &self,
        scope: &Scope,
        system_id: Option<&str>,
    ) -> Result<Vec<System>, StoreError> {
        web_sql::scoped_systems(&self.pool, self.dialect, scope, system_id).await
    }

    async fn scoped_assets(
        &self,
        scope: &Scope,
        system_id: Option<&str>,
        asset_id: Option<&str>,
    ) -> Result<Vec<(String, AssetRecord)>, StoreError> {
        web_sql::scoped_assets(&self.pool, self.dialect, scope, system_id, asset_id).await
    }

    async fn scoped_findings(
        &self,
        scope: &Scope,
        system_id: Option<&str>,
        asset_id: Option<&str>,
        finding_id: Option<&str>,
        include_resolved: bool,
    ) -> Result<Vec<FindingRecord>, StoreError> {
        let selection = web_sql::FindingSelection {
            system_id,
            asset_id,
            finding_id,
            include_resolved,
        };
        web_sql::scoped_findings(&self.pool, self.dialect, scope, &selection).await
    }

    async fn filtered_systems(
        &self,
        scope: &Scope,
        query: &crate::store::SystemQuery,
    ) -> Result<Vec<System>, StoreError> {
        filter_sql::filtered_systems(&self.pool, self.dialect, scope, query).await
    }

    async fn filtered_findings(
        &self,
        scope: &Scope,
        query: &crate::store::FindingQuery,
    ) -> Result<Vec<FindingRecord>, StoreError> {
        filter_sql::filtered_findings(&self.pool, self.dialect, scope, query).await
    }

    async fn filtered_audit(
        &self,
        query: &crate::store::AuditQuery,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        filter_sql::filtered_audit(&self.pool, query).await
    }

    async fn request_acceptance(
        &self,
        request: AcceptanceRequest,
        event: AuditEvent,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        web_sql::request_acceptance(&mut tx, &request).await?;
        append_audit(&mut tx, &event, now).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn acceptance_requests(
        &self,
        scope: &Scope,
        state: Option<&str>,
    ) -> Result<Vec<AcceptanceRequest>, StoreError> {
        web_sql::acceptance_requests(&self.pool, self.dialect, scope, state).await
    }

    async fn decide_acceptance(
        &self,
        request_id: &str,
        approver: &str,
        approve: bool,
        note: &str,
        event: AuditEvent,
        now: i64,
    ) -> Result<AcceptanceRequest, StoreError> {
        let mut tx = self.write().await?;
        let request =
            web_sql::decide_acceptance(&mut tx, request_id, approver, approve, note, now).await?;
        append_audit(&mut tx, &event, now).await?;
        tx.commit().await?;
        Ok(request)
    }

    async fn review_classification(
        &self,
        system_id: &str,
        classification: Classification,
        event: AuditEvent,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        let done = web_sql::review_classification(&mut tx, system_id, classification).await?;
        if done {
            append_audit(&mut tx, &event, now).await?;
        }
        tx.commit().await?;
        Ok(done)
    }

    async fn add_attestation(
        &self,
        system_id: &str,
        attestation: Attestation,
        event: AuditEvent,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        let done = web_sql::add_attestation(&mut tx, system_id, attestation).await?;
        if done {
            append_audit(&mut tx, &event, now).await?;
        }
        tx.commit().await?;
        Ok(done)
    }
}

/// Rows per page when the database packs many rows into one JSON text (assets, agents). The
/// store's own tests page by 2, so every listing in them crosses pages.
#[cfg(not(test))]
const PAGE: i64 = 10_000;
#[cfg(test)]
const PAGE: i64 = 2;

/// Reads a listing a page at a time: `fetch(after)` returns one page as a JSON array text and
/// the page's last key (none past the end), the next call's `after`.
async fn read_pages<T, K, F, Fut>(what: &str, first: K, mut fetch: F) -> Result<Vec<T>, StoreError>
where
    T: serde::de::DeserializeOwned + Send + 'static,
    F: FnMut(K) -> Fut,
    Fut: std::future::Future<Output = Result<(Option<String>, Option<K>), sqlx::Error>>,
{
    let what = what.to_string();
    let rows = PageFold::new(Vec::new(), move |rows: &mut Vec<T>, page: &str| {
        rows.extend(parse_json::<Vec<T>>(page, &what)?);
        Ok(())
    });
    let mut after = first;
    loop {
        let (page, last) = fetch(after).await?;
        let Some(last) = last else { break };
        rows.push(page.unwrap_or_default());
        after = last;
    }
    rows.finish().await
}

/// Pages of JSON text folded on a blocking thread while the caller reads the next page: the
/// read is the database's work (SQLite's worker thread, a PostgreSQL backend) and the parsing
/// this process's, so the two overlap instead of taking turns (0.18 s of reading and 0.14–0.35
/// s of parsing for 294,047 findings).
pub(super) struct PageFold<A> {
    pages: std::sync::mpsc::Sender<String>,
    folded: tokio::task::JoinHandle<Result<A, StoreError>>,
}

impl<A: Send + 'static> PageFold<A> {
    /// Starts folding pages into `into` with `fold`, in the order they are pushed.
    pub(super) fn new<F>(mut into: A, mut fold: F) -> Self
    where
        F: FnMut(&mut A, &str) -> Result<(), StoreError> + Send + 'static,
    {
        let (pages, received) = std::sync::mpsc::channel::<String>();
        let folded = tokio::task::spawn_blocking(move || {
            for page in received {
                fold(&mut into, &page)?;
            }
            Ok(into)
        });
        Self { pages, folded }
    }

    /// Hands over the next page. An empty text is skipped.
    pub(super) fn push(&self, page: String) {
        // Sending fails only once the fold stopped on an error, which `finish` returns.
        if !page.is_empty() {
            let _ = self.pages.send(page);
        }
    }

    /// Waits for every page pushed to be folded and returns the result or the first error.
    pub(super) async fn finish(self) -> Result<A, StoreError> {
        drop(self.pages);
        match self.folded.await {
            Ok(folded) => folded,
            Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
            Err(_) => Err(StoreError::ShutDown),
        }
    }
}

/// Ids bound per `IN (...)` look-up.
const PAGE_IDS: usize = 500;

/// Records an evaluation's summary at `now` (the findings' last-seen time for readers).
/// Takes the next change number (migration 0016) for the rows this transaction writes.
/// Incrementing the one counter row locks it until the transaction ends, so numbers are
/// handed out in commit order on PostgreSQL too: a reader that saw the counter at W has seen
/// every write numbered W or below.
async fn next_change(tx: &mut Transaction<'_, Any>) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar(
        "UPDATE evaluation_changes SET counter = counter + 1 WHERE id = 1 RETURNING counter",
    )
    .fetch_one(&mut **tx)
    .await?)
}

/// Numbers this transaction's write of the register (the next change number).
async fn register_changed(tx: &mut Transaction<'_, Any>) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE evaluation_changes SET counter = counter + 1, register = counter + 1 WHERE id = 1",
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn record_evaluation(
    tx: &mut Transaction<'_, Any>,
    summary: &EvaluationSummary,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO evaluations (evaluated_at, summary_json) VALUES ($1, $2)
         ON CONFLICT (evaluated_at) DO UPDATE SET summary_json = excluded.summary_json",
    )
    .bind(now)
    .bind(json_text(summary)?)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// An asset as `assets()` reads it from SQLite's JSON.
#[derive(serde::Deserialize)]
struct AssetRow {
    asset_id: String,
    kind: String,
    agent_id: String,
    hostname: String,
    address: String,
    facts: serde_json::Value,
    first_seen_at: i64,
    last_seen_at: i64,
    last_report_id: String,
    controls: Vec<ControlRecord>,
    observation_count: i64,
}

impl AssetRow {
    fn into_record(self) -> AssetRecord {
        AssetRecord {
            asset_id: self.asset_id,
            kind: self.kind,
            agent_id: self.agent_id,
            hostname: self.hostname,
            address: self.address,
            facts: self.facts,
            first_seen_at: self.first_seen_at,
            last_seen_at: self.last_seen_at,
            last_report_id: self.last_report_id,
            controls: self.controls,
            observation_count: self.observation_count,
        }
    }
}

/// The facts of one asset within a report (the host, or one discovered device).
struct AssetFacts<'a> {
    /// The host's name, a device's name.
    hostname: &'a str,
    /// A device's kind (`plc`, `camera`, ...); None for the host.
    device_kind: Option<&'a str>,
    /// The host frame's facts, a device's identity (JSON text).
    facts_json: &'a str,
    observations: &'a [super::ObservationInput],
    controls: &'a [super::ControlInput],
    report_id: &'a str,
    /// For a delta: the observations removed; those not mentioned stay as they are.
    delta_removed: Option<&'a [(String, String)]>,
}

/// Devices are keyed by (discovering agent, address): the same address seen from two agents'
/// networks may be two different devices (NAT, overlapping private ranges). A known device's
/// row is only read here ([`store_facts`] writes it); a new one is inserted.
async fn device_asset(
    tx: &mut Transaction<'_, Any>,
    report: &ReportInput,
    device: &super::DeviceInput,
    facts: &str,
    change: i64,
    now: i64,
) -> Result<(String, StoredFacts), StoreError> {
    let existing: Option<(String, Option<String>, String, i64)> = sqlx::query_as(
        "SELECT asset_id, observations_digest, controls_json, observation_count FROM assets WHERE kind = 'device' AND agent_id = $1 AND address = $2",
    )
    .bind(&report.agent_id)
    .bind(&device.address)
    .fetch_optional(&mut **tx)
    .await?;
    if let Some((id, digest, controls_json, observation_count)) = existing {
        let stored = StoredFacts {
            digest,
            controls_json,
            observation_count,
        };
        return Ok((id, stored));
    }
    let asset_id = uuid::Uuid::now_v7().to_string();
    sqlx::query(
        "INSERT INTO assets (asset_id, kind, agent_id, hostname, address, device_kind, facts_json, first_seen_at, last_seen_at, last_report_id, change_number)
         VALUES ($1, 'device', $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&asset_id)
    .bind(&report.agent_id)
    .bind(&device.name)
    .bind(&device.address)
    .bind(&device.kind)
    .bind(facts)
    .bind(now)
    .bind(now)
    .bind(&report.report_id)
    .bind(change)
    .execute(&mut **tx)
    .await?;
    Ok((asset_id, StoredFacts::default()))
}

async fn insert_jobs(
    tx: &mut Transaction<'_, Any>,
    jobs: &[NewJob],
    now: i64,
) -> Result<Vec<String>, StoreError> {
    let mut ids = Vec::with_capacity(jobs.len());
    for job in jobs {
        let id = uuid::Uuid::now_v7().to_string();
        sqlx::query("INSERT INTO jobs (job_id, schedule, kind, agent_id, params_json, state, created_at) VALUES ($1, $2, $3, $4, $5, 'pending', $6)")
            .bind(&id)
            .bind(&job.schedule)
            .bind(&job.kind)
            .bind(&job.agent_id)
            .bind(json_text(&job.params)?)
            .bind(now)
            .execute(&mut **tx)
            .await?;
        ids.push(id);
    }
    Ok(ids)
}

fn job_from_row(row: &AnyRow) -> Result<JobRecord, StoreError> {
    Ok(JobRecord {
        job_id: row.try_get("job_id")?,
        schedule: row.try_get("schedule")?,
        kind: row.try_get("kind")?,
        agent_id: row.try_get("agent_id")?,
        params: parse_json(&row.try_get::<String, _>("params_json")?, "job parameters")?,
        state: row.try_get("state")?,
        created_at: row.try_get("created_at")?,
        delivered_at: row.try_get("delivered_at")?,
        finished_at: row.try_get("finished_at")?,
        report_id: row.try_get("report_id")?,
        error: row.try_get("error")?,
    })
}

/// The host's asset row as ingest first reads it, with its agent's delta base:
/// (asset id, observations digest, controls JSON, observation count, last sequence).
type HostRow = (
    Option<String>,
    Option<String>,
    Option<String>,
    Option<i64>,
    i64,
);

/// Stores the report's host (known: its id and stored summaries; else inserted) and its
/// devices, under one change number. Returns the host's asset id.
async fn store_assets(
    tx: &mut Transaction<'_, Any>,
    report: &ReportInput,
    host: Option<(String, StoredFacts)>,
    now: i64,
) -> Result<String, StoreError> {
    let change = next_change(tx).await?;
    let host_facts = json_text(&report.host_facts)?;
    let (asset_id, stored) = match host {
        Some(known) => known,
        None => (
            insert_host_asset(tx, report, &host_facts, change, now).await?,
            StoredFacts::default(),
        ),
    };
    let facts = AssetFacts {
        hostname: &report.hostname,
        device_kind: None,
        facts_json: &host_facts,
        observations: &report.observations,
        controls: &report.controls,
        report_id: &report.report_id,
        delta_removed: report
            .delta_base
            .map(|_| report.removed_observations.as_slice()),
    };
    store_facts(tx, &asset_id, stored, &facts, change, now).await?;
    for device in &report.devices {
        let identity = json_text(&device.identity)?;
        let (device_id, stored) = device_asset(tx, report, device, &identity, change, now).await?;
        let facts = AssetFacts {
            hostname: &device.name,
            device_kind: Some(&device.kind),
            facts_json: &identity,
            observations: &device.observations,
            controls: &device.controls,
            report_id: &report.report_id,
            delta_removed: None,
        };
        store_facts(tx, &device_id, stored, &facts, change, now).await?;
    }
    Ok(asset_id)
}

async fn insert_host_asset(
    tx: &mut Transaction<'_, Any>,
    report: &ReportInput,
    facts: &str,
    change: i64,
    now: i64,
) -> Result<String, StoreError> {
    let asset_id = uuid::Uuid::now_v7().to_string();
    sqlx::query(
        "INSERT INTO assets (asset_id, kind, agent_id, hostname, facts_json, first_seen_at, last_seen_at, last_report_id, change_number) VALUES ($1, 'host', $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&asset_id)
    .bind(&report.agent_id)
    .bind(&report.hostname)
    .bind(facts)
    .bind(now)
    .bind(now)
    .bind(&report.report_id)
    .bind(change)
    .execute(&mut **tx)
    .await?;
    Ok(asset_id)
}

/// What an asset's row says of its observations and controls before a report changes them
/// (a new asset: nothing).
#[derive(Default)]
struct StoredFacts {
    /// `observations_digest`; None where unknown (migration 0017 leaves old rows unknown).
    digest: Option<String>,
    controls_json: String,
    observation_count: i64,
}

/// Stores one asset's part of a report: its observations, its controls, and then the asset
/// row (name, facts, last seen, controls, observation count, digest, a device's kind) in one
/// `UPDATE`.
/// The `controls` rows are rewritten only when the controls changed: nothing in the collector
/// reads them but `migrate`, and `controls_json` on the asset row says the same.
async fn store_facts(
    tx: &mut Transaction<'_, Any>,
    asset_id: &str,
    stored: StoredFacts,
    facts: &AssetFacts<'_>,
    change: i64,
    now: i64,
) -> Result<(), StoreError> {
    let (digest, observation_count) =
        replace_observations(tx, asset_id, facts, &stored, now).await?;
    let controls_json = json_text(&control_records(facts.controls))?;
    if controls_json != stored.controls_json {
        replace_controls(tx, asset_id, facts.controls, now).await?;
    }
    sqlx::query("UPDATE assets SET hostname = $1, facts_json = $2, last_seen_at = $3, last_report_id = $4, controls_json = $5, observation_count = $6, observations_digest = $7, revision = revision + 1, change_number = $8, device_kind = COALESCE($10, device_kind) WHERE asset_id = $9")
        .bind(facts.hostname)
        .bind(facts.facts_json)
        .bind(now)
        .bind(facts.report_id)
        .bind(&controls_json)
        .bind(observation_count)
        .bind(digest.map(SetDigest::hex))
        .bind(change)
        .bind(asset_id)
        .bind(facts.device_kind)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Rows per multi-row statement of observations: 8 parameters each (4,000 a statement) stays
/// below SQLite's 32,766 variables and PostgreSQL's 65,535 parameters.
const OBSERVATION_BATCH: usize = 500;

/// A reported observation: (category, name), value JSON, evidence JSON.
type ObservationRow = ((String, String), String, String);

/// A row of `observation_history`.
struct Change<'a> {
    key: &'a (String, String),
    kind: &'static str,
    old: Option<String>,
    new: Option<&'a str>,
}

/// The report's observations as (key, value JSON, evidence JSON), one row per key, the last one
/// reported winning (as writing them in order did).
fn reported_rows(facts: &AssetFacts<'_>) -> Result<Vec<ObservationRow>, StoreError> {
    let mut reported: Vec<ObservationRow> = Vec::with_capacity(facts.observations.len());
    let mut position: std::collections::HashMap<(String, String), usize> =
        std::collections::HashMap::with_capacity(facts.observations.len());
    for observation in facts.observations {
        let key = (observation.category.clone(), observation.name.clone());
        let row = (
            key.clone(),
            json_text(&observation.value)?,
            json_text(&observation.evidence)?,
        );
        if let Some(&i) = position.get(&key) {
            reported[i] = row;
        } else {
            position.insert(key, reported.len());
            reported.push(row);
        }
    }
    Ok(reported)
}

/// Upserts `rows` (new or changed observations) in multi-row statements.
async fn upsert_observations(
    tx: &mut Transaction<'_, Any>,
    asset_id: &str,
    rows: &[&ObservationRow],
    now: i64,
) -> Result<(), StoreError> {
    for chunk in rows.chunks(OBSERVATION_BATCH) {
        let sql = format!(
            "INSERT INTO observations (asset_id, category, name, value_json, evidence_json, first_seen_at, changed_at)
             {}
             ON CONFLICT (asset_id, category, name) DO UPDATE SET
                changed_at = CASE WHEN observations.value_json = excluded.value_json THEN observations.changed_at ELSE excluded.changed_at END,
                value_json = excluded.value_json,
                evidence_json = excluded.evidence_json",
            super::dialect::multi_row_values(tx, chunk.len(), 7)
        );
        let mut query = sqlx::query(&sql);
        for ((category, name), value, evidence) in chunk {
            query = query
                .bind(asset_id)
                .bind(category)
                .bind(name)
                .bind(value)
                .bind(evidence)
                .bind(now)
                .bind(now);
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

/// Brings the asset's observations to exactly the reported set, keeping first-seen times,
/// moving `changed_at` only when a value changes, and recording every addition, change and
/// removal in `observation_history`.
///
/// Only what changed is written row by row, in multi-row statements. A full report is first
/// compared by [`SetDigest`] with the stored rows (migration 0017): an unchanged one (the
/// common case: a host reports the same 900 facts every hour, deltas in between) costs 950
/// hashes and one primary-key read, no row read or written.
async fn replace_observations(
    tx: &mut Transaction<'_, Any>,
    asset_id: &str,
    facts: &AssetFacts<'_>,
    stored_facts: &StoredFacts,
    now: i64,
) -> Result<(Option<SetDigest>, i64), StoreError> {
    let reported = reported_rows(facts)?;
    let stored = stored_facts.digest.as_deref().and_then(SetDigest::parse);
    // A full report's digest is its rows'; a delta's is the stored one with what it changes
    // toggled out and in (unknown stays unknown until the next full report).
    let full = facts
        .delta_removed
        .is_none()
        .then(|| SetDigest::of(&reported));
    // After a full report the asset has exactly its rows; a delta adds and removes some
    // (the stored count is exact since migration 0018 counted every asset's rows once).
    let reported_count = i64::try_from(reported.len()).unwrap_or(i64::MAX);
    if full.is_some() && full == stored {
        return Ok((full, reported_count));
    }
    let mut running = if full.is_some() { None } else { stored };
    let mut toggle = |key: &(String, String), value: &str, evidence: &str| {
        if let Some(digest) = running.as_mut() {
            digest.toggle(key, value, evidence);
        }
    };
    let mut previous = stored_observations(tx, asset_id, facts).await?;
    let mut changes: Vec<Change<'_>> = Vec::new();
    let mut writes: Vec<&ObservationRow> = Vec::new();
    for row in &reported {
        let (key, value, evidence) = row;
        match previous.remove(key) {
            None => {
                toggle(key, value, evidence);
                changes.push(Change {
                    key,
                    kind: "added",
                    old: None,
                    new: Some(value),
                });
                writes.push(row);
            }
            Some((old, old_evidence)) if old != *value || old_evidence != *evidence => {
                toggle(key, &old, &old_evidence);
                toggle(key, value, evidence);
                if old != *value {
                    changes.push(Change {
                        key,
                        kind: "changed",
                        old: Some(old),
                        new: Some(value),
                    });
                }
                writes.push(row);
            }
            Some(_) => {}
        }
    }
    upsert_observations(tx, asset_id, &writes, now).await?;
    let removed: Vec<(String, String)> = match facts.delta_removed {
        // A delta names what is gone; everything it does not mention is unchanged.
        Some(keys) => keys
            .iter()
            .filter(|k| previous.contains_key(*k))
            .cloned()
            .collect(),
        None => previous.keys().cloned().collect(),
    };
    for key in &removed {
        sqlx::query("DELETE FROM observations WHERE asset_id = $1 AND category = $2 AND name = $3")
            .bind(asset_id)
            .bind(&key.0)
            .bind(&key.1)
            .execute(&mut **tx)
            .await?;
    }
    for key in &removed {
        if let Some((old, old_evidence)) = previous.remove(key) {
            toggle(key, &old, &old_evidence);
            changes.push(Change {
                key,
                kind: "removed",
                old: Some(old),
                new: None,
            });
        }
    }
    let count = if full.is_some() {
        reported_count
    } else {
        let added = changes.iter().filter(|c| c.kind == "added").count();
        let gone = changes.iter().filter(|c| c.kind == "removed").count();
        stored_facts.observation_count + i64::try_from(added).unwrap_or(i64::MAX)
            - i64::try_from(gone).unwrap_or(i64::MAX)
    };
    record_changes(tx, asset_id, &changes, facts.report_id, now).await?;
    Ok((full.or(running), count))
}

/// A delta naming at most this many observations reads only those rows, by primary key; one
/// naming more reads all the asset's rows, as a full report does, in one scan.
const DELTA_POINT_READS: usize = 100;

/// The stored (value JSON, evidence JSON) by (category, name) of the observations `facts` can
/// change: all the asset's for a full report (as one JSON text), those it names for a delta.
/// Reading 950 rows through sqlx one by one costs about 6 µs a row (5.6 ms of CPU in
/// `collector/benches/ingest.rs`), the whole of a 5-package delta's cost before deltas read
/// only their own rows.
async fn stored_observations(
    tx: &mut Transaction<'_, Any>,
    asset_id: &str,
    facts: &AssetFacts<'_>,
) -> Result<std::collections::HashMap<(String, String), (String, String)>, StoreError> {
    let keys: Option<Vec<(&str, &str)>> = facts.delta_removed.and_then(|removed| {
        let keys: Vec<(&str, &str)> = facts
            .observations
            .iter()
            .map(|o| (o.category.as_str(), o.name.as_str()))
            .chain(removed.iter().map(|(c, n)| (c.as_str(), n.as_str())))
            .collect();
        (keys.len() <= DELTA_POINT_READS).then_some(keys)
    });
    let rows: Vec<(String, String, String, String)> = match keys {
        Some(keys) if keys.is_empty() => Vec::new(),
        Some(keys) => {
            let sql = format!(
                "SELECT category, name, value_json, evidence_json FROM observations WHERE {}",
                vec!["(asset_id = ? AND category = ? AND name = ?)"; keys.len()].join(" OR ")
            );
            let sql = super::dialect::placeholders(tx, &sql);
            let mut query = sqlx::query_as(&sql);
            for (category, name) in keys {
                query = query.bind(asset_id).bind(category).bind(name);
            }
            query.fetch_all(&mut **tx).await?
        }
        None => {
            let text: Option<String> = sqlx::query_scalar(super::dialect::asset_observations(tx))
                .bind(asset_id)
                .fetch_one(&mut **tx)
                .await?;
            parse_json(text.as_deref().unwrap_or("[]"), "stored observations")?
        }
    };
    Ok(rows
        .into_iter()
        .map(|(c, n, v, e)| ((c, n), (v, e)))
        .collect())
}

async fn record_changes(
    tx: &mut Transaction<'_, Any>,
    asset_id: &str,
    changes: &[Change<'_>],
    report_id: &str,
    now: i64,
) -> Result<(), StoreError> {
    for chunk in changes.chunks(OBSERVATION_BATCH) {
        let sql = format!(
            "INSERT INTO observation_history (asset_id, category, name, change, old_value_json, new_value_json, at, report_id) {}",
            super::dialect::multi_row_values(tx, chunk.len(), 8)
        );
        let mut query = sqlx::query(&sql);
        for c in chunk {
            query = query
                .bind(asset_id)
                .bind(&c.key.0)
                .bind(&c.key.1)
                .bind(c.kind)
                .bind(c.old.as_deref())
                .bind(c.new)
                .bind(now)
                .bind(report_id);
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

fn control_records(controls: &[super::ControlInput]) -> Vec<ControlRecord> {
    controls
        .iter()
        .map(|c| ControlRecord {
            name: c.name.clone(),
            state: c.state.clone(),
            reason: c.reason.clone(),
            evidence: c.evidence.clone(),
        })
        .collect()
}

async fn replace_controls(
    tx: &mut Transaction<'_, Any>,
    asset_id: &str,
    controls: &[super::ControlInput],
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM controls WHERE asset_id = $1")
        .bind(asset_id)
        .execute(&mut **tx)
        .await?;
    // One statement for all of them: the ingest bench's and the simulator's reports carry
    // five, and every statement is a hand-over to sqlx's SQLite thread or a round trip.
    if controls.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "INSERT INTO controls (asset_id, name, state, reason, evidence_json, observed_at) {}",
        super::dialect::multi_row_values(tx, controls.len(), 6)
    );
    let mut query = sqlx::query(&sql);
    for control in controls {
        query = query
            .bind(asset_id)
            .bind(&control.name)
            .bind(&control.state)
            .bind(&control.reason)
            .bind(json_text(&control.evidence)?)
            .bind(now);
    }
    query.execute(&mut **tx).await?;
    Ok(())
}

/// The conformance suite on SQLite: in memory, or a file where a test needs several
/// connections.
#[cfg(test)]
mod sqlite_conformance {
    use super::SqlStore;

    async fn fresh() -> SqlStore {
        SqlStore::in_memory().await.unwrap()
    }

    async fn fresh_shared() -> (SqlStore, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqlStore::open(&dir.path().join("t.db")).await.unwrap();
        (store, dir)
    }

    /// The settings every connection to a file gets: durable commits, foreign keys, the page
    /// cache, the lock wait. Read back from all four connections at once, so a setting made
    /// on one connection only (or on none) fails.
    #[tokio::test]
    async fn every_connection_to_a_file_has_the_collector_settings() {
        let (store, _dir) = fresh_shared().await;
        let mut held = Vec::new();
        for _ in 0..4 {
            held.push(store.pool().acquire().await.unwrap());
        }
        for conn in &mut held {
            let read = |pragma: &'static str| sqlx::query_scalar::<_, i64>(pragma);
            let mut values = Vec::new();
            for pragma in [
                "PRAGMA synchronous",
                "PRAGMA foreign_keys",
                "PRAGMA cache_size",
                "PRAGMA busy_timeout",
            ] {
                values.push(read(pragma).fetch_one(&mut **conn).await.unwrap());
            }
            assert_eq!(values, [2, 1, -32768, 10_000]);
            let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
                .fetch_one(&mut **conn)
                .await
                .unwrap();
            assert_eq!(mode, "wal");
        }
    }

    mod tests {
        include!("conformance.rs");
    }
}

/// The same suite on PostgreSQL: a fresh database per test on this process's scratch cluster.
/// Without PostgreSQL these tests fail (scripts/deps/postgres.sh installs it).
#[cfg(test)]
mod postgres_conformance {
    use super::{SqlStore, StoreError};
    use crate::store::pg_scratch::ScratchCluster;

    async fn fresh() -> SqlStore {
        let cluster = ScratchCluster::shared().unwrap();
        let url = cluster.fresh_database().await.unwrap();
        SqlStore::connect_postgres(&url, 4).await.unwrap()
    }

    async fn fresh_shared() -> (SqlStore, ()) {
        (fresh().await, ())
    }

    #[tokio::test]
    async fn tls_with_verify_full_checks_the_server_name_against_the_given_ca() {
        let server = crate::ca::create("Test", &["localhost".to_string()]).unwrap();
        let other = crate::ca::create("Other", &["localhost".to_string()]).unwrap();
        let cluster =
            ScratchCluster::start_with_tls(&server.server_cert_pem, &server.server_key_pem)
                .unwrap();
        let name = cluster.fresh_database_name().await.unwrap();
        let files = tempfile::tempdir().unwrap();
        let (ca, wrong) = (files.path().join("ca.pem"), files.path().join("other.pem"));
        std::fs::write(&ca, &server.ca_cert_pem).unwrap();
        std::fs::write(&wrong, &other.ca_cert_pem).unwrap();
        let url = |host: &str, root: &std::path::Path| {
            format!(
                "postgres://postgres@{host}:{}/{name}?sslmode=verify-full&sslrootcert={}",
                cluster.port(),
                root.display()
            )
        };
        let store = SqlStore::connect_postgres(&url("localhost", &ca), 1)
            .await
            .unwrap();
        let encrypted: bool =
            sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
                .fetch_one(store.pool())
                .await
                .unwrap();
        assert!(encrypted);
        // Another CA, or a name the certificate does not carry: refused before any query.
        for refused in [url("localhost", &wrong), url("127.0.0.1", &ca)] {
            let error = SqlStore::connect_postgres(&refused, 1).await.unwrap_err();
            assert!(error.is_unavailable(), "{error}");
        }
    }

    #[tokio::test]
    async fn a_database_migrated_by_a_newer_collector_is_refused_on_both_back_ends() {
        let url = ScratchCluster::shared()
            .unwrap()
            .fresh_database()
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("t.db");
        let stores = [
            SqlStore::connect_postgres(&url, 1).await.unwrap(),
            SqlStore::open(&file).await.unwrap(),
        ];
        for store in &stores {
            sqlx::query(
                "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
                 VALUES (9999, 'newer', TRUE, $1, 0)",
            )
            .bind(vec![0_u8])
            .execute(store.pool())
            .await
            .unwrap();
        }
        for reopened in [
            SqlStore::connect_postgres(&url, 1).await,
            SqlStore::open(&file).await,
        ] {
            match reopened {
                Err(StoreError::SchemaNewer { applied, known }) => {
                    assert_eq!(applied, 9999);
                    assert!(known >= 10);
                }
                other => panic!("expected SchemaNewer, got {other:?}"),
            }
        }
    }

    mod tests {
        include!("conformance.rs");
    }
}
