//! The filtered lists of the web interface (issue 13): My systems, the findings across a
//! person's systems, and the audit log, each narrowed by a typed query. Every condition is a
//! fixed SQL fragment chosen by the code with its values bound as parameters (never text from
//! a request in the statement), ANDed with the person's scope clause, so a filter can narrow
//! what the scope allows and never widen it. The page and its CSV call the same function.

use sqlx::AnyPool;
use sqlx::any::AnyRow;

use super::web_sql::{finding_from_row, scope_clause};
use crate::catalog::System;
use crate::store::dialect::{Dialect, numbered};
use crate::store::web::{AuditQuery, FindingQuery, FindingStatus, Scope, SystemQuery};
use crate::store::{AuditEntry, FindingRecord, StoreError};

/// A value bound to a `?` of an assembled statement.
enum Bind {
    Text(String),
    Int(i64),
}

/// An assembled `WHERE`: conditions ANDed, their values in placeholder order.
#[derive(Default)]
struct Conditions {
    sql: Vec<String>,
    binds: Vec<Bind>,
}

impl Conditions {
    fn push(&mut self, sql: impl Into<String>, binds: impl IntoIterator<Item = Bind>) {
        self.sql.push(sql.into());
        self.binds.extend(binds);
    }

    fn text(values: impl IntoIterator<Item = String>) -> Vec<Bind> {
        values.into_iter().map(Bind::Text).collect()
    }

    /// `AND`-joined, `TRUE` when there is none.
    fn clause(&self) -> String {
        if self.sql.is_empty() {
            "TRUE".into()
        } else {
            self.sql.join(" AND ")
        }
    }

    async fn fetch(self, pool: &AnyPool, sql: &str) -> Result<Vec<AnyRow>, StoreError> {
        let sql = numbered(sql);
        let mut query = sqlx::query(&sql);
        for bind in self.binds {
            query = match bind {
                Bind::Text(text) => query.bind(text),
                Bind::Int(n) => query.bind(n),
            };
        }
        Ok(query.fetch_all(pool).await?)
    }
}

/// `?, ?, ...` for `n` values; a list that is empty matches nothing (`IN (NULL)`).
fn marks(n: usize) -> String {
    if n == 0 {
        "NULL".into()
    } else {
        vec!["?"; n].join(", ")
    }
}

/// `%text%` for `LIKE ... ESCAPE '\'`, lowercased, with the pattern characters escaped so the
/// person's text matches only itself.
fn contains_pattern(text: &str) -> String {
    let mut out = String::from("%");
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// The systems in `scope` that `query` keeps, by id.
pub async fn filtered_systems(
    pool: &AnyPool,
    dialect: Dialect,
    scope: &Scope,
    query: &SystemQuery,
) -> Result<Vec<System>, StoreError> {
    let (scope_sql, scope_binds) = scope_clause(dialect, scope);
    let mut c = Conditions::default();
    c.push(scope_sql, Conditions::text(scope_binds));
    let level = |field: &str| format!("CAST({} AS TEXT) = ?", dialect.document_field(field));
    for (field, value) in [
        ("classification.k", query.k),
        ("classification.r", query.r),
        ("classification.t", query.t),
    ] {
        if let Some(value) = value {
            c.push(level(field), [Bind::Text(value.to_string())]);
        }
    }
    if let Some(severities) = &query.open_severities {
        c.push(
            format!(
                "system_id IN (SELECT f.system_id FROM findings f WHERE f.state = 'open' AND f.severity IN ({}))",
                marks(severities.len())
            ),
            Conditions::text(severities.iter().cloned()),
        );
    }
    if let Some((overdue, cutoff)) = query.review_overdue {
        let at = dialect.document_field("classification.classified_at");
        let sql = if overdue {
            format!("{at} <= ?")
        } else {
            format!("({at} IS NULL OR {at} > ?)")
        };
        c.push(sql, [Bind::Text(cutoff.to_string())]);
    }
    if let Some(owner) = &query.owner {
        c.push(
            format!(
                "({} = ? OR {} = ?)",
                dialect.document_field("system_owner.email"),
                dialect.document_field("information_owner.email")
            ),
            Conditions::text([owner.clone(), owner.clone()]),
        );
    }
    if let Some(text) = &query.name_contains {
        c.push(
            format!(
                "LOWER({}) LIKE ? ESCAPE '\\'",
                dialect.document_field("name")
            ),
            [Bind::Text(contains_pattern(text))],
        );
    }
    let sql = format!(
        "SELECT document_json FROM systems WHERE {} ORDER BY system_id",
        c.clause()
    );
    c.fetch(pool, &sql)
        .await?
        .iter()
        .map(|row| {
            let doc: String = sqlx::Row::try_get(row, "document_json")?;
            super::parse_json(&doc, "system")
        })
        .collect()
}

/// The findings of systems in `scope` (and, for [`Scope::All`], of assets linked to no
/// system) that `query` keeps, by system, rule and asset.
pub async fn filtered_findings(
    pool: &AnyPool,
    dialect: Dialect,
    scope: &Scope,
    query: &FindingQuery,
) -> Result<Vec<FindingRecord>, StoreError> {
    let (scope_sql, scope_binds) = scope_clause(dialect, scope);
    let unowned = if *scope == Scope::All {
        " OR f.system_id IS NULL"
    } else {
        ""
    };
    let mut c = Conditions::default();
    c.push(
        format!("(f.system_id IN (SELECT system_id FROM systems WHERE {scope_sql}){unowned})"),
        Conditions::text(scope_binds),
    );
    if let Some(severities) = &query.severities {
        c.push(
            format!("f.severity IN ({})", marks(severities.len())),
            Conditions::text(severities.iter().cloned()),
        );
    }
    if let Some(rule) = &query.rule {
        c.push("f.rule = ?", [Bind::Text(rule.clone())]);
    }
    if let Some(system) = &query.system_id {
        c.push("f.system_id = ?", [Bind::Text(system.clone())]);
    }
    match query.status {
        None => c.push("f.state <> 'resolved'", []),
        Some(FindingStatus::Open) => c.push("f.state = 'open'", []),
        Some(FindingStatus::Accepted) => c.push("f.state = 'accepted'", []),
        Some(FindingStatus::Attested(today)) => attested(&mut c, dialect, today),
    }
    let sql = format!(
        "SELECT f.* FROM findings f WHERE {} ORDER BY f.system_id, f.rule, f.asset",
        c.clause()
    );
    c.fetch(pool, &sql)
        .await?
        .iter()
        .map(finding_from_row)
        .collect()
}

/// Resolved findings whose system holds a valid attestation for a control their rule is
/// answered by: one `(rule, attestation)` pair per rule of the table that has such controls.
fn attested(c: &mut Conditions, dialect: Dialect, today: time::Date) {
    let mut alternatives = Vec::new();
    let mut binds = Vec::new();
    for rule in crate::rules::RULES {
        let controls = crate::rules::attestable_controls(rule.id);
        if controls.is_empty() {
            continue;
        }
        alternatives.push(format!(
            "(f.rule = ? AND {})",
            dialect.attestation_exists(controls.len())
        ));
        binds.push(Bind::Text(rule.id.to_string()));
        binds.extend(controls.iter().map(|c| Bind::Text((*c).to_string())));
        binds.push(Bind::Text(today.to_string()));
    }
    if alternatives.is_empty() {
        c.push("FALSE", []);
        return;
    }
    c.push(
        format!("f.state = 'resolved' AND ({})", alternatives.join(" OR ")),
        binds,
    );
}

/// The audit entries `query` keeps, oldest first.
pub async fn filtered_audit(
    pool: &AnyPool,
    query: &AuditQuery,
) -> Result<Vec<AuditEntry>, StoreError> {
    let mut c = Conditions::default();
    if let Some(actor) = &query.actor {
        c.push(
            "LOWER(actor) LIKE ? ESCAPE '\\'",
            [Bind::Text(contains_pattern(actor))],
        );
    }
    if let Some(action) = &query.action {
        c.push("action = ?", [Bind::Text(action.clone())]);
    }
    if let Some(from) = query.from_ms {
        c.push("at >= ?", [Bind::Int(from)]);
    }
    if let Some(until) = query.until_ms {
        c.push("at < ?", [Bind::Int(until)]);
    }
    if let Some(target) = &query.target {
        c.push(
            "LOWER(subject) LIKE ? ESCAPE '\\'",
            [Bind::Text(contains_pattern(target))],
        );
    }
    let sql = format!("SELECT * FROM audit_log WHERE {} ORDER BY seq", c.clause());
    c.fetch(pool, &sql)
        .await?
        .iter()
        .map(super::audit_entry_from_row)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_text_matches_only_itself_in_like() {
        assert_eq!(contains_pattern("50%_a\\B"), "%50\\%\\_a\\\\b%");
        assert_eq!(marks(0), "NULL");
        assert_eq!(marks(2), "?, ?");
    }
}
