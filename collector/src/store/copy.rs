//! `migrate --from sqlite:PATH --to postgres://…`: copies a municipality's whole store from
//! its SQLite file into an empty PostgreSQL database in one PostgreSQL transaction (all or
//! nothing), reading the file in one read transaction (a consistent snapshot even while a
//! collector still writes to it), then checks that every table holds as many rows on both
//! sides and that the copied audit log's hash chain verifies and ends in the same hash.
//!
//! Columns are copied by name as the PostgreSQL schema declares them: an integer column is
//! read as an integer, a text column as text. A value of another type (SQLite is dynamically
//! typed) stops the copy with the table, column and row named.

use std::path::Path;

use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};
use tokio_stream::StreamExt;

use super::dialect::multi_row_values;
use super::{SqlStore, Store, StoreError, verify_audit_chain};

/// Tables in an order where every row's references are copied before it. `leases` is not
/// copied: it only says which collector runs scheduled work right now; nor is
/// `web_passkey_challenges`: ceremonies in progress last five minutes at most; nor
/// `findings_generation`: its counts only tell a running evaluator, or an evaluation that read
/// the findings ahead, that someone else wrote findings since;
/// `evaluation_changes`' one row is carried over by [`change_counter`] instead, so that the
/// copied rows' change numbers stay at or below the counter.
pub const TABLES: &[&str] = &[
    "enrollment_tokens",
    "agents",
    "reports",
    "assets",
    "observations",
    "controls",
    "observation_history",
    "audit_log",
    "systems",
    "findings",
    "finding_events",
    "evaluations",
    "management_reports",
    "schedules",
    "jobs",
    "web_users",
    "web_sessions",
    "web_passkeys",
    "system_links",
    "acceptance_requests",
];

/// Rows per multi-row INSERT (PostgreSQL allows 65535 parameters a statement).
const BATCH: usize = 500;

/// Why a copy was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// Opening or reading a side failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The target is not PostgreSQL or the source not SQLite.
    #[error("{0}")]
    Usage(String),
    /// The target holds data already.
    #[error(
        "the target database is not empty ({table} has {rows} rows): migrate copies into an empty database only"
    )]
    TargetNotEmpty {
        /// The first table found with rows.
        table: String,
        /// How many.
        rows: i64,
    },
    /// A value does not fit its column's type.
    #[error("{table}.{column}, row {row} of the source: {problem}")]
    Value {
        /// Table.
        table: String,
        /// Column.
        column: String,
        /// 1-based position in rowid order.
        row: u64,
        /// What is wrong.
        problem: String,
    },
    /// The check after the copy failed (the copy was rolled back).
    #[error("verification after the copy failed: {0}")]
    Verify(String),
}

impl From<sqlx::Error> for CopyError {
    fn from(e: sqlx::Error) -> Self {
        Self::Store(StoreError::Database(e))
    }
}

/// What was copied: rows per table, and the audit log's last hash.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct CopyReport {
    /// (table, rows) in copy order; the same count on both sides.
    pub tables: Vec<(String, i64)>,
    /// The hash of the last audit entry on both sides (None: empty log).
    pub audit_head: Option<String>,
}

/// A column of the target schema.
struct Column {
    name: String,
    integer: bool,
}

/// Copies the SQLite store at `from` into the empty PostgreSQL database `to`.
pub async fn sqlite_to_postgres(
    from: &Path,
    to: &str,
    max_connections: u32,
) -> Result<CopyReport, CopyError> {
    if !from.is_file() {
        return Err(CopyError::Usage(format!(
            "{}: no such SQLite database",
            from.display()
        )));
    }
    if !(to.starts_with("postgres://") || to.starts_with("postgresql://")) {
        return Err(CopyError::Usage("--to must be a postgres:// URL".into()));
    }
    // Both sides are brought to this build's schema; a side that is newer refuses here with
    // StoreError::SchemaNewer.
    let source = SqlStore::open(from).await?;
    let target = SqlStore::connect_postgres(to, max_connections).await?;
    for table in TABLES {
        let rows: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(target.pool())
            .await?;
        if rows > 0 {
            return Err(CopyError::TargetNotEmpty {
                table: (*table).to_string(),
                rows,
            });
        }
    }
    let mut read = source.pool().begin().await?;
    let mut write = target.dialect().begin_write(target.pool()).await?;
    let mut report = CopyReport {
        tables: Vec::new(),
        audit_head: None,
    };
    for table in TABLES {
        let columns = target_columns(&mut write, table).await?;
        let copied = copy_table(&mut read, &mut write, table, &columns).await?;
        let in_target: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(&mut *write)
            .await?;
        if in_target != copied {
            return Err(CopyError::Verify(format!(
                "{table}: {copied} rows read, {in_target} in the target"
            )));
        }
        report.tables.push(((*table).to_string(), copied));
    }
    change_counter(&mut read, &mut write).await?;
    read.rollback().await?;
    write.commit().await?;
    report.audit_head = verify(&source, &target, &report).await?;
    Ok(report)
}

/// Sets the target's change counter and register number (migration 0016) to the source's
/// (the migration made the target's row).
async fn change_counter(
    read: &mut Transaction<'_, Any>,
    write: &mut Transaction<'_, Any>,
) -> Result<(), CopyError> {
    let (counter, register): (i64, i64) =
        sqlx::query_as("SELECT counter, register FROM evaluation_changes WHERE id = 1")
            .fetch_one(&mut **read)
            .await?;
    sqlx::query("UPDATE evaluation_changes SET counter = $1, register = $2 WHERE id = 1")
        .bind(counter)
        .bind(register)
        .execute(&mut **write)
        .await?;
    Ok(())
}

/// Counts every table on both sides again and checks the audit chain on the target.
async fn verify(
    source: &SqlStore,
    target: &SqlStore,
    report: &CopyReport,
) -> Result<Option<String>, CopyError> {
    for (table, copied) in &report.tables {
        let count = |store: &SqlStore| {
            let sql = format!("SELECT COUNT(*) FROM {table}");
            let pool = store.pool().clone();
            async move { sqlx::query_scalar::<_, i64>(&sql).fetch_one(&pool).await }
        };
        let (in_source, in_target) = (count(source).await?, count(target).await?);
        if in_target != *copied || in_source < *copied {
            return Err(CopyError::Verify(format!(
                "{table}: {copied} copied, {in_source} in the source, {in_target} in the target"
            )));
        }
    }
    let copied = target.audit_log().await?;
    verify_audit_chain(&copied).map_err(|e| CopyError::Verify(format!("audit log: {e}")))?;
    let original = source.audit_log().await?;
    let head =
        |log: &[super::AuditEntry], n: usize| log.get(n.wrapping_sub(1)).map(|e| e.hash.clone());
    // The source may have grown since the snapshot; the copy must be a prefix of it.
    if head(&original, copied.len()) != head(&copied, copied.len()) {
        return Err(CopyError::Verify(
            "the copied audit log does not end in the source's hash at the same entry".into(),
        ));
    }
    Ok(copied.last().map(|e| e.hash.clone()))
}

async fn target_columns(
    tx: &mut Transaction<'_, Any>,
    table: &str,
) -> Result<Vec<Column>, CopyError> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT column_name::text, data_type::text FROM information_schema.columns
         WHERE table_schema = current_schema() AND table_name = $1 AND column_name <> 'rowid'
         ORDER BY ordinal_position",
    )
    .bind(table)
    .fetch_all(&mut **tx)
    .await?;
    if rows.is_empty() {
        return Err(CopyError::Verify(format!(
            "the target has no table {table}"
        )));
    }
    Ok(rows
        .into_iter()
        .map(|(name, data_type)| Column {
            integer: data_type == "bigint" || data_type == "integer",
            name,
        })
        .collect())
}

/// One value as read from SQLite, typed as the target column wants it.
enum Value {
    Integer(Option<i64>),
    Text(Option<String>),
}

async fn copy_table(
    read: &mut Transaction<'_, Any>,
    write: &mut Transaction<'_, Any>,
    table: &str,
    columns: &[Column],
) -> Result<i64, CopyError> {
    let names: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
    let select = format!("SELECT {} FROM {table} ORDER BY rowid", names.join(", "));
    let mut batch: Vec<Vec<Value>> = Vec::with_capacity(BATCH);
    let mut position: u64 = 0;
    let mut copied: i64 = 0;
    {
        let mut rows = sqlx::query(&select).fetch(&mut **read);
        while let Some(row) = rows.next().await {
            let row: AnyRow = row?;
            position += 1;
            batch.push(typed_row(&row, table, columns, position)?);
            if batch.len() == BATCH {
                copied += insert(write, table, &names, &batch).await?;
                batch.clear();
            }
        }
    }
    if !batch.is_empty() {
        copied += insert(write, table, &names, &batch).await?;
    }
    Ok(copied)
}

fn typed_row(
    row: &AnyRow,
    table: &str,
    columns: &[Column],
    position: u64,
) -> Result<Vec<Value>, CopyError> {
    columns
        .iter()
        .map(|column| {
            let bad = |e: sqlx::Error| CopyError::Value {
                table: table.to_string(),
                column: column.name.clone(),
                row: position,
                problem: e.to_string(),
            };
            Ok(if column.integer {
                Value::Integer(row.try_get(column.name.as_str()).map_err(bad)?)
            } else {
                Value::Text(row.try_get(column.name.as_str()).map_err(bad)?)
            })
        })
        .collect()
}

async fn insert(
    write: &mut Transaction<'_, Any>,
    table: &str,
    names: &[&str],
    batch: &[Vec<Value>],
) -> Result<i64, CopyError> {
    let sql = format!(
        "INSERT INTO {table} ({}) {}",
        names.join(", "),
        multi_row_values(write, batch.len(), names.len())
    );
    let mut query = sqlx::query(&sql);
    for row in batch {
        for value in row {
            query = match value {
                Value::Integer(v) => query.bind(*v),
                Value::Text(v) => query.bind(v.clone()),
            };
        }
    }
    let done = query.execute(&mut **write).await?;
    Ok(i64::try_from(done.rows_affected()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::pg_scratch::ScratchCluster;
    use crate::store::{AuditEvent, NewAgent, NewToken, ObservationInput, ReportInput};

    async fn municipality(path: &Path) -> SqlStore {
        let store = SqlStore::open(path).await.unwrap();
        for i in 0..3 {
            let hash = format!("t{i}");
            let token = NewToken {
                token_hash: hash.clone(),
                created_at: 0,
                expires_at: i64::MAX,
                created_by: "alice".into(),
            };
            store.create_token(token, 1).await.unwrap();
            let agent = NewAgent {
                agent_id: format!("a{i}"),
                hostname: format!("h{i}"),
                cert_sha256: format!("sha{i}"),
                cert_not_after: 99,
                labels: [("site".to_string(), "ward4".to_string())].into(),
                agent_version: "1".into(),
            };
            store.enroll_agent(&hash, agent, 2).await.unwrap();
            let report = ReportInput {
                agent_id: format!("a{i}"),
                report_id: format!("r{i}"),
                collected_at: 3,
                size_bytes: 10,
                agent_version: "1".into(),
                hostname: format!("h{i}"),
                host_facts: serde_json::json!({ "os": "debian" }),
                observations: (0..5)
                    .map(|n| ObservationInput {
                        category: "package".into(),
                        name: format!("p{n}"),
                        value: serde_json::json!({ "version": n, "note": "ä'\"\\" }),
                        evidence: vec![],
                    })
                    .collect(),
                controls: vec![],
                devices: vec![],
                sequence: 1,
                delta_base: None,
                removed_observations: vec![],
                job_id: None,
            };
            store.ingest_report(report, 4).await.unwrap();
        }
        let drafts: Vec<_> = ["a", "b"]
            .iter()
            .map(|asset| crate::rules::FindingDraft {
                rule: "k3-auth",
                severity: crate::rules::Severity::High,
                system_id: None,
                asset_id: Some((*asset).into()),
                asset: (*asset).into(),
                message: "m".into(),
                text: crate::i18n::Text::new("finding.k3-auth", &[asset, "absent"]),
                evidence: vec![],
            })
            .collect();
        store.apply_findings(&drafts, 5).await.unwrap();
        store.apply_findings(&drafts[..1], 6).await.unwrap();
        let event = AuditEvent {
            actor: "bob".into(),
            action: "agent.revoke".into(),
            subject: "a2".into(),
            detail: serde_json::json!({ "reason": "lost laptop" }),
        };
        store.revoke_agent("a2", event, 7).await.unwrap();
        store
    }

    #[tokio::test]
    async fn a_municipality_is_copied_with_its_history_and_audit_chain() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tillsyn.db");
        let source = municipality(&path).await;
        let url = ScratchCluster::shared()
            .unwrap()
            .fresh_database()
            .await
            .unwrap();
        let report = sqlite_to_postgres(&path, &url, 2).await.unwrap();
        let rows: std::collections::HashMap<_, _> = report.tables.iter().cloned().collect();
        assert_eq!(rows["agents"], 3);
        assert_eq!(rows["observations"], 15);
        assert_eq!(rows["findings"], 2);
        assert_eq!(rows["finding_events"], 3);
        assert_eq!(rows["audit_log"], 4);
        let target = SqlStore::connect_postgres(&url, 2).await.unwrap();
        assert_eq!(
            target.agents().await.unwrap(),
            source.agents().await.unwrap()
        );
        assert_eq!(
            target.assets().await.unwrap(),
            source.assets().await.unwrap()
        );
        assert_eq!(
            target.findings().await.unwrap(),
            source.findings().await.unwrap()
        );
        let b = &source.findings().await.unwrap()[1];
        assert_eq!(
            target.finding_events(&b.finding_id).await.unwrap(),
            source.finding_events(&b.finding_id).await.unwrap()
        );
        let log = target.audit_log().await.unwrap();
        assert_eq!(log, source.audit_log().await.unwrap());
        assert_eq!(report.audit_head.as_deref(), Some(log[3].hash.as_str()));
        // The copy goes on as the municipality's store: the chain continues on PostgreSQL.
        let event = AuditEvent {
            actor: "carol".into(),
            action: "agent.revoke".into(),
            subject: "a1".into(),
            detail: serde_json::json!({}),
        };
        target.revoke_agent("a1", event, 8).await.unwrap();
        verify_audit_chain(&target.audit_log().await.unwrap()).unwrap();

        // A second copy into the same database is refused before anything is written.
        match sqlite_to_postgres(&path, &url, 2).await {
            Err(CopyError::TargetNotEmpty { table, rows }) => {
                assert_eq!((table.as_str(), rows), ("enrollment_tokens", 3));
            }
            other => panic!("expected TargetNotEmpty, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_target_with_a_newer_schema_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tillsyn.db");
        municipality(&path).await;
        let url = ScratchCluster::shared()
            .unwrap()
            .fresh_database()
            .await
            .unwrap();
        let target = SqlStore::connect_postgres(&url, 1).await.unwrap();
        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
             VALUES (9999, 'from a newer collector', TRUE, '\\x00'::bytea, 0)",
        )
        .execute(target.pool())
        .await
        .unwrap();
        let error = sqlite_to_postgres(&path, &url, 1).await.unwrap_err();
        assert!(
            matches!(
                error,
                CopyError::Store(StoreError::SchemaNewer { applied: 9999, .. })
            ),
            "{error:?}"
        );
        let text = error.to_string();
        assert!(text.contains("migration 9999 is applied"), "{text}");
        assert!(text.contains("newer than this collector"), "{text}");
    }

    #[tokio::test]
    async fn the_source_must_be_an_sqlite_file_and_the_target_postgres() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("none.db");
        let error = sqlite_to_postgres(&missing, "postgres://x@localhost/y", 1)
            .await
            .unwrap_err();
        assert!(
            error
                .to_string()
                .contains("none.db: no such SQLite database")
        );
        let path = dir.path().join("tillsyn.db");
        municipality(&path).await;
        let error = sqlite_to_postgres(&path, "mysql://x@localhost/y", 1)
            .await
            .unwrap_err();
        assert_eq!(error.to_string(), "--to must be a postgres:// URL");
    }
}
