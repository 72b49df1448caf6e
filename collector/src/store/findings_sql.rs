//! Statements of the findings lifecycle: open -> resolved automatically when the
//! evidence changes, reopened when it returns, `accepted` by a named person until a date.
//! Every state change is written to `finding_events`. A write covers the whole estate or
//! only some subjects ([`EvaluationScope`]); outside its scope it changes nothing, so the
//! serving collector's incremental rounds write only what they judged again.

use std::collections::{HashMap, HashSet};

use sha2::{Digest, Sha256};
use sqlx::{Any, AnyConnection, AnyPool, Row, Transaction};

use super::{PageFold, json_text, parse_json};
use crate::rules::FindingDraft;
use crate::store::dialect::{Dialect, multi_row_values};
use crate::store::{
    Acceptance, AcceptedFinding, EvaluationScope, EvaluationSummary, FindingEvent, FindingRecord,
    StoreError,
};

/// The automatic actor in finding histories.
const COLLECTOR: &str = "collector";

/// Short stable id of a finding key.
pub fn finding_id(key: &str) -> String {
    hex::encode(&Sha256::digest(key.as_bytes())[..6])
}

struct Existing {
    id: String,
    state: State,
    accepted_until: Option<i64>,
    /// Hash of severity, asset, message and evidence, to skip unchanged rows cheaply.
    content_hash: String,
    /// Judged failing in this evaluation (a draft had its key).
    judged: bool,
}

/// A stored finding's `state`; any other text in the column is refused as corrupt.
#[derive(Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
enum State {
    Open,
    Accepted,
    Resolved,
}

impl State {
    /// The column's text, by the same names as the pages' JSON.
    fn parse(text: &str) -> Result<Self, StoreError> {
        use serde::Deserialize as _;
        use serde::de::IntoDeserializer as _;
        Self::deserialize(text.into_deserializer()).map_err(|e: serde::de::value::Error| {
            StoreError::Corrupt(format!("a finding's state: {e}"))
        })
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Accepted => "accepted",
            Self::Resolved => "resolved",
        }
    }
}

/// Rows per multi-row INSERT; 14 parameters each (7,000 a statement) stays below SQLite's
/// 32,766 variables and PostgreSQL's 65,535 parameters.
const BATCH: usize = 500;

struct Event<'a> {
    id: String,
    from: Option<&'static str>,
    to: &'static str,
    actor: &'a str,
    note: String,
}

async fn insert_events(
    tx: &mut Transaction<'_, Any>,
    events: &[Event<'_>],
    now: i64,
) -> Result<(), StoreError> {
    for chunk in events.chunks(BATCH) {
        let sql = format!(
            "INSERT INTO finding_events (finding_id, at, from_state, to_state, actor, note) {}",
            multi_row_values(tx, chunk.len(), 6)
        );
        let mut query = sqlx::query(&sql);
        for e in chunk {
            query = query
                .bind(&e.id)
                .bind(now)
                .bind(e.from)
                .bind(e.to)
                .bind(e.actor)
                .bind(&e.note);
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

/// Every stored finding as [`apply`] compares it, read ahead of the write transaction so the
/// read overlaps the evaluation's other work (its reads and the rule table): 0.2–0.4 s at
/// 294,047 findings.
pub struct StoredFindings {
    /// `findings_generation.writes` read before the rows (migration 0019).
    writes: i64,
    existing: HashMap<String, Existing>,
}

/// Reads [`StoredFindings`]. The count is read first, so if it is the same inside the write
/// transaction no write of findings committed since, and every row read is current.
pub async fn read_ahead(pool: &AnyPool, dialect: Dialect) -> Result<StoredFindings, StoreError> {
    let mut conn = pool.acquire().await?;
    let writes = writes(&mut conn).await?;
    let existing = load_existing(&mut conn, dialect).await?;
    Ok(StoredFindings { writes, existing })
}

async fn writes(conn: &mut AnyConnection) -> Result<i64, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT writes FROM findings_generation WHERE id = 1")
            .fetch_one(&mut *conn)
            .await?,
    )
}

/// Counts a write of findings rows (see [`StoredFindings`]); in the writing transaction.
async fn count_write(tx: &mut Transaction<'_, Any>) -> Result<(), StoreError> {
    sqlx::query("UPDATE findings_generation SET writes = writes + 1 WHERE id = 1")
        .execute(&mut **tx)
        .await?;
    Ok(())
}

async fn load_existing(
    conn: &mut AnyConnection,
    dialect: Dialect,
) -> Result<HashMap<String, Existing>, StoreError> {
    // One JSON text per page instead of one cross-thread hand-over per row (see `assets()`),
    // parsed while the next page is read.
    let existing = PageFold::new(
        HashMap::new(),
        |existing: &mut HashMap<String, Existing>, page: &str| {
            let rows: Vec<(String, String, State, Option<i64>, String)> =
                parse_json(page, "findings")?;
            for (key, id, state, accepted_until, content_hash) in rows {
                existing.insert(
                    key,
                    Existing {
                        id,
                        state,
                        accepted_until,
                        content_hash,
                        judged: false,
                    },
                );
            }
            Ok(())
        },
    );
    let mut after: i64 = 0;
    loop {
        let (page, last): (Option<String>, Option<i64>) = sqlx::query_as(dialect.findings_page())
            .bind(after)
            .fetch_one(&mut *conn)
            .await?;
        let Some(last) = last else { break };
        existing.push(page.unwrap_or_default());
        after = last;
    }
    existing.finish().await
}

/// The stored findings of `assets` and, without an asset, of `systems` (the indexes on
/// `asset_id` and `system_id` find them).
async fn load_subjects(
    tx: &mut Transaction<'_, Any>,
    assets: &[String],
    systems: &[String],
) -> Result<HashMap<String, Existing>, StoreError> {
    let mut existing = HashMap::new();
    let queries = [
        ("asset_id IN", assets),
        ("asset_id IS NULL AND system_id IN", systems),
    ];
    for (condition, ids) in queries {
        for chunk in ids.chunks(BATCH) {
            let marks: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let sql = format!(
                "SELECT finding_key, finding_id, state, accepted_until, content_hash FROM findings WHERE {condition} ({})",
                marks.join(", ")
            );
            let mut query =
                sqlx::query_as::<_, (String, String, String, Option<i64>, String)>(&sql);
            for id in chunk {
                query = query.bind(id);
            }
            for (key, id, state, accepted_until, content_hash) in query.fetch_all(&mut **tx).await?
            {
                existing.insert(
                    key,
                    Existing {
                        id,
                        state: State::parse(&state)?,
                        accepted_until,
                        content_hash,
                        judged: false,
                    },
                );
            }
        }
    }
    Ok(existing)
}

/// Brings the findings of `scope` in line with `drafts` (the verdicts of exactly that scope).
/// With `stored` read ahead for the whole estate, uses it unless a write of findings committed
/// since.
pub async fn apply(
    tx: &mut Transaction<'_, Any>,
    dialect: Dialect,
    scope: &EvaluationScope,
    drafts: &[FindingDraft],
    stored: Option<StoredFindings>,
    now: i64,
) -> Result<EvaluationSummary, StoreError> {
    let mut existing = match (scope, stored) {
        (EvaluationScope::All, Some(stored)) if stored.writes == writes(tx).await? => {
            stored.existing
        }
        (EvaluationScope::All, _) => load_existing(tx, dialect).await?,
        (EvaluationScope::Subjects { assets, systems }, _) => {
            load_subjects(tx, assets, systems).await?
        }
    };
    count_write(tx).await?;
    let mut summary = EvaluationSummary::default();
    // Keys and content hashes built once, on every core: at 300,000 findings each costs.
    let judged = crate::parallel::map_parts(drafts, |_, part| {
        part.iter()
            .map(|draft| Ok((draft.key(), content_hash(draft)?)))
            .collect::<Vec<Result<(String, String), StoreError>>>()
    })
    .into_iter()
    .collect::<Result<Vec<_>, _>>()?;
    // A key judged twice counts once, its first draft winning.
    let mut new_keys: HashSet<&str> = HashSet::new();
    let mut new_findings = Vec::new();
    let mut events = Vec::new();
    for ((key, hash), draft) in judged.iter().zip(drafts) {
        match existing.get_mut(key) {
            Some(found) if found.judged => {}
            Some(found) => {
                found.judged = true;
                if let Some(event) = refresh(tx, found, draft, hash, now).await? {
                    events.push(event);
                    summary.reopened += 1;
                }
            }
            None if !new_keys.insert(key) => {}
            None => {
                let id = finding_id(key);
                events.push(Event {
                    id: id.clone(),
                    from: None,
                    to: "open",
                    actor: COLLECTOR,
                    note: draft.message.clone(),
                });
                new_findings.push(NewFinding {
                    id,
                    key,
                    hash,
                    draft,
                });
                summary.opened += 1;
            }
        }
    }
    insert_findings(tx, &new_findings, now).await?;
    for found in existing.into_values().filter(|found| !found.judged) {
        if found.state != State::Resolved {
            // Last seen failing at the previous evaluation.
            sqlx::query("UPDATE findings SET state = 'resolved', resolved_at = $1, last_seen_at = COALESCE((SELECT MAX(evaluated_at) FROM evaluations), last_seen_at) WHERE finding_id = $2")
                .bind(now)
                .bind(&found.id)
                .execute(&mut **tx)
                .await?;
            events.push(Event {
                id: found.id,
                from: Some(found.state.as_str()),
                to: "resolved",
                actor: COLLECTOR,
                note: "the rule no longer fails on the current evidence".into(),
            });
            summary.resolved += 1;
        }
    }
    // Open and accepted findings were all seen failing in this evaluation; readers take their
    // last-seen time from the evaluations table instead of rewriting every row here.
    insert_events(tx, &events, now).await?;
    let counts: Vec<(String, i64)> =
        sqlx::query_as("SELECT state, COUNT(*) FROM findings GROUP BY state")
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

/// Hash of what a finding shows (severity, asset, message, text, evidence), to skip unchanged
/// rows cheaply. The text and evidence are hashed as their stored JSON, serialised straight
/// into the hasher so a finding that did not change costs no allocation.
fn content_hash(draft: &FindingDraft) -> Result<String, StoreError> {
    struct Feed<'a>(&'a mut Sha256);
    impl std::io::Write for Feed<'_> {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.update(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let corrupt = |e: serde_json::Error| StoreError::Corrupt(e.to_string());
    let mut hasher = Sha256::new();
    for part in [draft.severity.as_str(), &draft.asset, &draft.message] {
        hasher.update(part.as_bytes());
        hasher.update([0u8]);
    }
    serde_json::to_writer(Feed(&mut hasher), &draft.text).map_err(corrupt)?;
    hasher.update([0u8]);
    serde_json::to_writer(Feed(&mut hasher), &draft.evidence).map_err(corrupt)?;
    hasher.update([0u8]);
    Ok(hex::encode(&hasher.finalize()[..16]))
}

/// The stored form of a finding's [`Text`](crate::i18n::Text). Serialising strings cannot
/// fail, so the empty fallback is unreachable.
fn text_json(draft: &FindingDraft) -> String {
    serde_json::to_string(&draft.text).unwrap_or_default()
}

/// Rows whose bound texts are prepared together, on every core, before their statements run.
const PREPARED: usize = 16 * BATCH;

/// A finding opened by this evaluation.
struct NewFinding<'a> {
    id: String,
    key: &'a str,
    hash: &'a str,
    draft: &'a FindingDraft,
}

/// Inserts `new` findings as open.
async fn insert_findings(
    tx: &mut Transaction<'_, Any>,
    new: &[NewFinding<'_>],
    now: i64,
) -> Result<(), StoreError> {
    for group in new.chunks(PREPARED) {
        // The text and the evidence as stored JSON, per row.
        let texts = crate::parallel::map_parts(group, |_, part| {
            part.iter()
                .map(|new| Ok((text_json(new.draft), json_text(&new.draft.evidence)?)))
                .collect::<Vec<Result<(String, String), StoreError>>>()
        })
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;
        for (chunk, texts) in group.chunks(BATCH).zip(texts.chunks(BATCH)) {
            let sql = format!(
                "INSERT INTO findings (finding_id, finding_key, rule, severity, system_id, asset_id, asset, message, message_text, evidence_json, state, first_seen_at, last_seen_at, content_hash) {}",
                multi_row_values(tx, chunk.len(), 14)
            );
            let mut query = sqlx::query(&sql);
            for (new, (text, evidence)) in chunk.iter().zip(texts) {
                let draft = new.draft;
                query = query
                    .bind(&new.id)
                    .bind(new.key)
                    .bind(draft.rule)
                    .bind(draft.severity.as_str())
                    .bind(&draft.system_id)
                    .bind(&draft.asset_id)
                    .bind(&draft.asset)
                    .bind(&draft.message)
                    .bind(text)
                    .bind(evidence)
                    .bind("open")
                    .bind(now)
                    .bind(now)
                    .bind(new.hash);
            }
            query.execute(&mut **tx).await?;
        }
    }
    Ok(())
}

/// Updates a still-failing finding if anything changed; returns the reopening event, if any.
async fn refresh(
    tx: &mut Transaction<'_, Any>,
    found: &Existing,
    draft: &FindingDraft,
    hash: &str,
    now: i64,
) -> Result<Option<Event<'static>>, StoreError> {
    let expired =
        found.state == State::Accepted && found.accepted_until.is_some_and(|until| until <= now);
    let reopen = found.state == State::Resolved || expired;
    if !reopen && hash == found.content_hash {
        return Ok(None);
    }
    let state = if reopen { State::Open } else { found.state };
    sqlx::query(
        "UPDATE findings SET severity = $1, asset = $2, message = $3, message_text = $4, evidence_json = $5, content_hash = $6, state = $7,
            resolved_at = CASE WHEN $8 THEN NULL ELSE resolved_at END
         WHERE finding_id = $9",
    )
    .bind(draft.severity.as_str())
    .bind(&draft.asset)
    .bind(&draft.message)
    .bind(text_json(draft))
    .bind(json_text(&draft.evidence)?)
    .bind(hash)
    .bind(state.as_str())
    .bind(reopen)
    .bind(&found.id)
    .execute(&mut **tx)
    .await?;
    Ok(reopen.then(|| Event {
        id: found.id.clone(),
        from: Some(found.state.as_str()),
        to: "open",
        actor: COLLECTOR,
        note: if expired {
            "the risk acceptance expired".into()
        } else {
            "the rule fails again".into()
        },
    }))
}

/// Adds one to the count of writes to findings and system links and returns it.
pub async fn bump_generation(tx: &mut Transaction<'_, Any>) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar(
        "UPDATE findings_generation SET generation = generation + 1 WHERE id = 1 RETURNING generation",
    )
    .fetch_one(&mut **tx)
    .await?)
}

/// The count of writes to findings and system links so far.
pub async fn generation(tx: &mut Transaction<'_, Any>) -> Result<i64, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT generation FROM findings_generation WHERE id = 1")
            .fetch_one(&mut **tx)
            .await?,
    )
}

pub async fn accepted(pool: &AnyPool) -> Result<Vec<AcceptedFinding>, StoreError> {
    let rows = sqlx::query(
        "SELECT finding_key, system_id, asset_id, accepted_until FROM findings WHERE state = 'accepted'",
    )
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(AcceptedFinding {
                finding_key: row.try_get("finding_key")?,
                system_id: row.try_get("system_id")?,
                asset_id: row.try_get("asset_id")?,
                accepted_until: row.try_get("accepted_until")?,
            })
        })
        .collect()
}

pub async fn accept(
    tx: &mut Transaction<'_, Any>,
    id: &str,
    acceptance: &Acceptance,
    now: i64,
) -> Result<(), StoreError> {
    let state: Option<String> =
        sqlx::query_scalar("SELECT state FROM findings WHERE finding_id = $1")
            .bind(id)
            .fetch_optional(&mut **tx)
            .await?;
    let Some(state) = state else {
        return Err(StoreError::FindingUnknown(id.to_string()));
    };
    let state = State::parse(&state)?;
    count_write(tx).await?;
    sqlx::query("UPDATE findings SET state = 'accepted', accepted_by = $1, accept_reason = $2, accepted_until = $3 WHERE finding_id = $4")
        .bind(&acceptance.by)
        .bind(&acceptance.reason)
        .bind(acceptance.until)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    let note = format!("accepted by {}: {}", acceptance.by, acceptance.reason);
    let event = Event {
        id: id.to_string(),
        from: Some(state.as_str()),
        to: "accepted",
        actor: &acceptance.by,
        note,
    };
    insert_events(tx, &[event], now).await
}

/// A finding as the dialect's `finding_records_page` packs it.
#[derive(serde::Deserialize)]
struct FindingRow {
    finding_id: String,
    rule: String,
    severity: String,
    state: String,
    system_id: Option<String>,
    asset_id: Option<String>,
    asset: String,
    message: String,
    message_text: String,
    evidence_json: String,
    first_seen_at: i64,
    seen: i64,
    resolved_at: Option<i64>,
    accepted_by: Option<String>,
    accept_reason: Option<String>,
    accepted_until: Option<i64>,
}

/// Every finding, by state, rule, system (none first) and asset. Read a page of JSON at a time
/// (one hand-over from SQLite's worker a page, not a row: see `assets()`).
pub async fn all(pool: &AnyPool, dialect: Dialect) -> Result<Vec<FindingRecord>, StoreError> {
    let evaluated: Option<i64> = sqlx::query_scalar("SELECT MAX(evaluated_at) FROM evaluations")
        .fetch_one(pool)
        .await?;
    let sql = dialect.finding_records_page();
    let rows: Vec<FindingRow> = super::read_pages("findings", 0_i64, |after| {
        sqlx::query_as(&sql)
            .bind(after)
            .bind(super::PAGE)
            .bind(evaluated)
            .fetch_one(pool)
    })
    .await?;
    let mut findings = Vec::with_capacity(rows.len());
    for row in rows {
        findings.push(FindingRecord {
            evidence: parse_json(&row.evidence_json, "finding evidence")?,
            finding_id: row.finding_id,
            rule: row.rule,
            severity: row.severity,
            state: row.state,
            system_id: row.system_id,
            asset_id: row.asset_id,
            asset: row.asset,
            message: row.message,
            text: super::parse_finding_text(&row.message_text)?,
            first_seen_at: row.first_seen_at,
            last_seen_at: row.seen,
            resolved_at: row.resolved_at,
            accepted_by: row.accepted_by,
            accept_reason: row.accept_reason,
            accepted_until: row.accepted_until,
        });
    }
    findings.sort_by(|a, b| {
        (&a.state, &a.rule, &a.system_id, &a.asset).cmp(&(
            &b.state,
            &b.rule,
            &b.system_id,
            &b.asset,
        ))
    });
    Ok(findings)
}

pub async fn open_by_system(pool: &AnyPool) -> Result<HashMap<String, usize>, StoreError> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT system_id, COUNT(*) FROM findings WHERE state = 'open' AND system_id IS NOT NULL GROUP BY system_id",
    )
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|(system, count)| {
            let count = usize::try_from(count).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            Ok((system, count))
        })
        .collect()
}

pub async fn events(pool: &AnyPool, id: &str) -> Result<Vec<FindingEvent>, StoreError> {
    let rows = sqlx::query("SELECT at, from_state, to_state, actor, note FROM finding_events WHERE finding_id = $1 ORDER BY at, rowid")
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
