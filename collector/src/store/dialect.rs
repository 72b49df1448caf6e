//! What differs between the two SQL dialects the store speaks, SQLite and PostgreSQL, and
//! nothing else: how a write transaction is serialised, how a page of rows is packed into one
//! JSON text (a page of assets or findings, the ids changed since a round), and how a register
//! document's field is read. Every other statement is shared
//! text (both dialects accept `$N` placeholders, `ON CONFLICT`, `RETURNING`, `TRUE`/`FALSE`);
//! the PostgreSQL schema gives the tables that SQLite orders by `rowid` a `rowid` column so
//! those statements stay shared too.

use std::sync::LazyLock;

use sqlx::{Any, AnyConnection, AnyPool, Transaction};

/// The back-end a store runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// An embedded SQLite file (or memory, in tests).
    Sqlite,
    /// A PostgreSQL server, possibly shared by several collectors.
    Postgres,
}

/// Key of the PostgreSQL advisory lock every write transaction holds until it ends (the
/// bytes of "tillsyn1"). It gives PostgreSQL SQLite's one-writer-at-a-time order across all
/// collectors on the database: an audit entry always follows the one before it, a token's
/// budget is spent once, a report is stored once.
pub const WRITE_LOCK: i64 = 0x7469_6c6c_7379_6e31;

impl Dialect {
    /// Starts a transaction that holds the database's write lock from its first statement:
    /// SQLite's `BEGIN IMMEDIATE` (waits under `busy_timeout`), PostgreSQL's transaction-scoped
    /// advisory lock (released at commit or rollback, and when the session dies).
    pub async fn begin_write(
        self,
        pool: &AnyPool,
    ) -> Result<Transaction<'static, Any>, sqlx::Error> {
        match self {
            Self::Sqlite => pool.begin_with("BEGIN IMMEDIATE").await,
            Self::Postgres => {
                let mut tx = pool.begin().await?;
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(WRITE_LOCK)
                    .execute(&mut *tx)
                    .await?;
                Ok(tx)
            }
        }
    }

    /// One page of assets (after rowid `$1`, at most `$2`) as one JSON array text, and the
    /// page's last rowid.
    pub fn assets_page(self) -> &'static str {
        match self {
            Self::Sqlite => {
                "SELECT json_group_array(json_object(
                        'asset_id', asset_id, 'kind', kind, 'agent_id', agent_id, 'hostname', hostname,
                        'address', address, 'facts', json(facts_json), 'first_seen_at', first_seen_at,
                        'last_seen_at', last_seen_at, 'last_report_id', last_report_id,
                        'controls', json(controls_json), 'observation_count', observation_count)),
                    MAX(rowid)
                 FROM (SELECT rowid, * FROM assets WHERE rowid > $1 ORDER BY rowid LIMIT $2)"
            }
            Self::Postgres => {
                "SELECT json_agg(json_build_object(
                        'asset_id', asset_id, 'kind', kind, 'agent_id', agent_id, 'hostname', hostname,
                        'address', address, 'facts', facts_json::json, 'first_seen_at', first_seen_at,
                        'last_seen_at', last_seen_at, 'last_report_id', last_report_id,
                        'controls', controls_json::json, 'observation_count', observation_count)
                        ORDER BY rowid)::text,
                    MAX(rowid)
                 FROM (SELECT * FROM assets WHERE rowid > $1 ORDER BY rowid LIMIT $2) page"
            }
        }
    }

    /// One page of findings (after rowid `$1`) as a JSON array of
    /// `[finding_key, finding_id, state, accepted_until, content_hash]`, and its last rowid.
    pub fn findings_page(self) -> &'static str {
        match self {
            Self::Sqlite => {
                "SELECT json_group_array(json_array(finding_key, finding_id, state, accepted_until, content_hash)), MAX(rowid)
                 FROM (SELECT rowid, * FROM findings WHERE rowid > $1 ORDER BY rowid LIMIT 10000)"
            }
            Self::Postgres => {
                "SELECT json_agg(json_build_array(finding_key, finding_id, state, accepted_until, content_hash) ORDER BY rowid)::text, MAX(rowid)
                 FROM (SELECT * FROM findings WHERE rowid > $1 ORDER BY rowid LIMIT 10000) page"
            }
        }
    }

    /// One page of findings (after rowid `$1`, at most `$2`) as one JSON array of objects (the
    /// shape of `FindingRow`), and the page's last rowid. `$3` is the last evaluation's time: a
    /// finding not resolved was seen failing then (`apply` does not rewrite every row).
    pub fn finding_records_page(self) -> String {
        const FIELDS: &str = "'finding_id', finding_id, 'rule', rule, 'severity', severity,
            'state', state, 'system_id', system_id, 'asset_id', asset_id, 'asset', asset,
            'message', message, 'message_text', message_text, 'evidence_json', evidence_json,
            'first_seen_at', first_seen_at,
            'seen', CASE WHEN state = 'resolved' THEN last_seen_at ELSE COALESCE($3, last_seen_at) END,
            'resolved_at', resolved_at, 'accepted_by', accepted_by,
            'accept_reason', accept_reason, 'accepted_until', accepted_until";
        match self {
            Self::Sqlite => format!(
                "SELECT json_group_array(json_object({FIELDS})), MAX(rowid)
                 FROM (SELECT rowid, * FROM findings WHERE rowid > $1 ORDER BY rowid LIMIT $2)"
            ),
            Self::Postgres => format!(
                "SELECT json_agg(json_build_object({FIELDS}) ORDER BY rowid)::text, MAX(rowid)
                 FROM (SELECT * FROM findings WHERE rowid > $1 ORDER BY rowid LIMIT $2) page"
            ),
        }
    }

    /// In one statement, so one snapshot: the change counter, the register's change number,
    /// the findings generation, the asset and agent counts, and the ids of the assets and of
    /// the agents numbered above `$1`, each as one JSON array text (found by the
    /// `change_number` indexes; NULL when there are none).
    pub fn changes(self) -> &'static str {
        match self {
            Self::Sqlite => {
                "SELECT c.counter, c.register, g.generation,
                    (SELECT COUNT(*) FROM assets), (SELECT COUNT(*) FROM agents),
                    (SELECT json_group_array(asset_id) FROM assets WHERE change_number > $1),
                    (SELECT json_group_array(agent_id) FROM agents WHERE change_number > $1)
                 FROM evaluation_changes c, findings_generation g WHERE c.id = 1 AND g.id = 1"
            }
            Self::Postgres => {
                "SELECT c.counter, c.register, g.generation,
                    (SELECT COUNT(*) FROM assets), (SELECT COUNT(*) FROM agents),
                    (SELECT json_agg(asset_id)::text FROM assets WHERE change_number > $1),
                    (SELECT json_agg(agent_id)::text FROM agents WHERE change_number > $1)
                 FROM evaluation_changes c, findings_generation g WHERE c.id = 1 AND g.id = 1"
            }
        }
    }

    /// An agent row as one JSON object (the shape of `AgentRow`); the label columns stay text
    /// so a corrupt one is reported by name rather than failing the whole statement.
    fn agent_object(self) -> String {
        const FIELDS: &str =
            "'agent_id', agent_id, 'hostname', hostname, 'cert_sha256', cert_sha256,
            'cert_not_after', cert_not_after, 'labels_json', labels_json,
            'token_labels_json', token_labels_json, 'token_name', token_name,
            'cert_issued_at', cert_issued_at, 'cert_renewals', cert_renewals,
            'prev_cert_sha256', prev_cert_sha256, 'host_id', host_id,
            'clone_host_id', clone_host_id, 'clone_detected_at', clone_detected_at,
            'agent_version', agent_version, 'enrolled_at', enrolled_at,
            'last_seen_at', last_seen_at, 'revoked_at', revoked_at, 'revoked_by', revoked_by,
            'revoke_reason', revoke_reason, 'spool_depth', spool_depth,
            'spool_dropped', spool_dropped";
        match self {
            Self::Sqlite => format!("json_object({FIELDS})"),
            Self::Postgres => format!("json_build_object({FIELDS})"),
        }
    }

    /// The agent `$1` as one JSON object text (no row when there is none). Built once per
    /// dialect: every report's identity check reads its agent with it.
    pub fn agent_by_id(self) -> &'static str {
        static SQLITE: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT {} FROM agents WHERE agent_id = $1",
                Dialect::Sqlite.agent_object()
            )
        });
        static POSTGRES: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT {}::text FROM agents WHERE agent_id = $1",
                Dialect::Postgres.agent_object()
            )
        });
        match self {
            Self::Sqlite => &SQLITE,
            Self::Postgres => &POSTGRES,
        }
    }

    /// One page of agents (`agent_id` above `$1`, at most `$2`, by the primary key) as one JSON
    /// array text, and the page's last `agent_id`: one hand-over from SQLite's worker thread a
    /// page instead of one a row (100,000 agents took 1.3–1.9 s row by row).
    pub fn agents_page(self) -> String {
        match self {
            Self::Sqlite => format!(
                "SELECT json_group_array({}), MAX(agent_id)
                 FROM (SELECT * FROM agents WHERE agent_id > $1 ORDER BY agent_id LIMIT $2)",
                self.agent_object()
            ),
            Self::Postgres => format!(
                "SELECT json_agg({} ORDER BY agent_id)::text, MAX(agent_id)
                 FROM (SELECT * FROM agents WHERE agent_id > $1 ORDER BY agent_id LIMIT $2) page",
                self.agent_object()
            ),
        }
    }

    /// One page of what an evaluation uses of the agents (`agent_id` above `$1`, at most `$2`)
    /// as one JSON array text of `[agent_id, labels_json, token_labels_json, cert_issued_at,
    /// enrolled_at, cert_not_after, revoked_at]`, and the page's last `agent_id`. A fifth of an agent's record:
    /// the whole record took 0.3–0.38 s of a 100,000-agent evaluation.
    pub fn agent_views_page(self) -> &'static str {
        match self {
            Self::Sqlite => {
                "SELECT json_group_array(json_array(agent_id, labels_json, token_labels_json,
                        cert_issued_at, enrolled_at, cert_not_after, revoked_at)), MAX(agent_id)
                 FROM (SELECT agent_id, labels_json, token_labels_json, cert_issued_at, enrolled_at,
                              cert_not_after, revoked_at
                       FROM agents WHERE agent_id > $1 ORDER BY agent_id LIMIT $2)"
            }
            Self::Postgres => {
                "SELECT json_agg(json_build_array(agent_id, labels_json, token_labels_json,
                        cert_issued_at, enrolled_at, cert_not_after, revoked_at)
                        ORDER BY agent_id)::text, MAX(agent_id)
                 FROM (SELECT agent_id, labels_json, token_labels_json, cert_issued_at, enrolled_at,
                              cert_not_after, revoked_at
                       FROM agents WHERE agent_id > $1 ORDER BY agent_id LIMIT $2) page"
            }
        }
    }

    /// Every system link as one JSON array text of `[system_id, asset_id]` pairs (NULL when
    /// there are none): one hand-over instead of one a row (100,000 links took 0.25 s).
    pub fn all_system_links(self) -> &'static str {
        match self {
            Self::Sqlite => {
                "SELECT json_group_array(json_array(system_id, asset_id)) FROM system_links"
            }
            Self::Postgres => {
                "SELECT json_agg(json_build_array(system_id, asset_id))::text FROM system_links"
            }
        }
    }

    /// An asset row aliased `a` as one JSON object text (the shape of `AssetRow`).
    pub fn asset_json(self) -> &'static str {
        match self {
            Self::Sqlite => {
                "json_object(
                'asset_id', a.asset_id, 'kind', a.kind, 'agent_id', a.agent_id, 'hostname', a.hostname,
                'address', a.address, 'facts', json(a.facts_json), 'first_seen_at', a.first_seen_at,
                'last_seen_at', a.last_seen_at, 'last_report_id', a.last_report_id,
                'controls', json(a.controls_json), 'observation_count', a.observation_count)"
            }
            Self::Postgres => {
                "json_build_object(
                'asset_id', a.asset_id, 'kind', a.kind, 'agent_id', a.agent_id, 'hostname', a.hostname,
                'address', a.address, 'facts', a.facts_json::json, 'first_seen_at', a.first_seen_at,
                'last_seen_at', a.last_seen_at, 'last_report_id', a.last_report_id,
                'controls', a.controls_json::json, 'observation_count', a.observation_count)::text"
            }
        }
    }

    /// An asset's observations in the categories given as a JSON array of strings (`$2`).
    pub fn observations_in_categories(self) -> &'static str {
        match self {
            Self::Sqlite => {
                "SELECT category, name, value_json, evidence_json FROM observations
                 WHERE asset_id = $1 AND category IN (SELECT value FROM json_each($2))
                 ORDER BY category, name"
            }
            Self::Postgres => {
                "SELECT category, name, value_json, evidence_json FROM observations
                 WHERE asset_id = $1 AND category IN (SELECT json_array_elements_text($2::json))
                 ORDER BY category, name"
            }
        }
    }

    /// The text at `path` (dot-separated object keys) in a system's register document,
    /// NULL where it is absent. `path` comes from the code, never from a request.
    pub fn document_field(self, path: &str) -> String {
        match self {
            Self::Sqlite => format!("json_extract(document_json, '$.{path}')"),
            Self::Postgres => format!(
                "(document_json::jsonb #>> '{{{}}}')",
                path.replace('.', ",")
            ),
        }
    }

    /// A condition that holds when the system of finding `f` has an attestation for one of
    /// `controls` (that many `?` placeholders, then one for the day) that expires on or after
    /// the bound `YYYY-MM-DD` day (ISO dates compare as text).
    pub fn attestation_exists(self, controls: usize) -> String {
        let marks = vec!["?"; controls].join(", ");
        match self {
            Self::Sqlite => format!(
                "EXISTS (SELECT 1 FROM systems s, json_each(s.document_json, '$.attestations') a
                  WHERE s.system_id = f.system_id
                    AND json_extract(a.value, '$.control') IN ({marks})
                    AND json_extract(a.value, '$.expires_at') >= ?)"
            ),
            Self::Postgres => format!(
                "EXISTS (SELECT 1 FROM systems s,
                    jsonb_array_elements(COALESCE(s.document_json::jsonb -> 'attestations', '[]'::jsonb)) AS a(value)
                  WHERE s.system_id = f.system_id
                    AND a.value ->> 'control' IN ({marks})
                    AND a.value ->> 'expires_at' >= ?)"
            ),
        }
    }
}

/// Numbers the `?` placeholders of a statement assembled at run time as `$1`, `$2`, ... (the
/// form both dialects accept); a `?` inside a quoted SQL string is left alone.
pub fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut quoted = false;
    let mut n = 0;
    for c in sql.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                out.push(c);
            }
            '?' if !quoted => {
                n += 1;
                out.push('$');
                out.push_str(&n.to_string());
            }
            _ => out.push(c),
        }
    }
    out
}

/// `VALUES ($1, $2), ($3, $4), ...` for a multi-row INSERT of `rows` rows of `columns` values.
pub fn values(rows: usize, columns: usize) -> String {
    rows_of(rows, columns, |i| {
        let mut mark = String::from("$");
        mark.push_str(&(i + 1).to_string());
        mark
    })
}

/// `VALUES (m, m), (m, m), ...` with the `i`-th value's placeholder `mark(i)`, 0-based.
fn rows_of(rows: usize, columns: usize, mark: impl Fn(usize) -> String) -> String {
    let mut out = String::with_capacity(8 + rows * (columns * 4 + 2));
    out.push_str("VALUES ");
    for row in 0..rows {
        if row > 0 {
            out.push_str(", ");
        }
        out.push('(');
        for column in 0..columns {
            if column > 0 {
                out.push_str(", ");
            }
            out.push_str(&mark(row * columns + column));
        }
        out.push(')');
    }
    out
}

/// `VALUES (..), (..), ...` for a multi-row statement of `rows` rows of `columns` values on the
/// back-end of `conn`, in a statement with no other parameters: [`values`]' `$N` on
/// PostgreSQL, plain `?` on SQLite. SQLite keeps `$N` as named parameters in a list that
/// `sqlite3_bind_parameter_name` walks from its start, and sqlx asks it for the name of every
/// parameter at every execution, so binding n numbered parameters costs n²/2 steps: for a
/// full report's 7,600 observation and 7,600 history values, 0.2 s of CPU where the same
/// statements with `?` need under 10 ms (`collector/benches/ingest.rs`). Unnamed `?` are
/// bound in order without that look-up.
pub fn multi_row_values(conn: &AnyConnection, rows: usize, columns: usize) -> String {
    if is_sqlite(conn) {
        rows_of(rows, columns, |_| "?".to_string())
    } else {
        values(rows, columns)
    }
}

/// A statement assembled at run time with `?` placeholders, as the back-end of `conn` takes
/// it: as is on SQLite (where `$N` costs a look-up per parameter, see [`multi_row_values`]),
/// [`numbered`] on PostgreSQL.
pub fn placeholders(conn: &AnyConnection, sql: &str) -> String {
    if is_sqlite(conn) {
        sql.to_string()
    } else {
        numbered(sql)
    }
}

/// Every stored observation of asset `$1` as one JSON array text of `[category, name,
/// value_json, evidence_json]` (NULL on PostgreSQL when there are none): sqlx hands rows over
/// one at a time, about 5 µs a row on SQLite, where one text of 950 rows is read and parsed
/// in under half that (`collector/benches/ingest.rs`).
pub fn asset_observations(conn: &AnyConnection) -> &'static str {
    if is_sqlite(conn) {
        "SELECT json_group_array(json_array(category, name, value_json, evidence_json)) FROM observations WHERE asset_id = $1"
    } else {
        "SELECT json_agg(json_build_array(category, name, value_json, evidence_json))::text FROM observations WHERE asset_id = $1"
    }
}

/// Whether `conn` is SQLite: helpers that get a transaction, not the store, ask its driver.
fn is_sqlite(conn: &AnyConnection) -> bool {
    conn.backend_name() == <sqlx::Sqlite as sqlx::Database>::NAME
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_outside_quotes_only() {
        assert_eq!(
            numbered("a = ? AND b = '?' AND c = ?"),
            "a = $1 AND b = '?' AND c = $2"
        );
        assert_eq!(values(2, 2), "VALUES ($1, $2), ($3, $4)");
    }

    #[test]
    fn document_fields_name_the_same_path_in_both_dialects() {
        assert_eq!(
            Dialect::Sqlite.document_field("system_owner.email"),
            "json_extract(document_json, '$.system_owner.email')"
        );
        assert_eq!(
            Dialect::Postgres.document_field("system_owner.email"),
            "(document_json::jsonb #>> '{system_owner,email}')"
        );
    }
}
