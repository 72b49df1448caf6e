//! The audit log for people: `audit list` reads it (who changed what, when) and `audit verify`
//! proves it intact. The chain alone shows that no entry was changed without recomputing every
//! hash after it; the head (sequence number and hash) printed in each management report
//! anchors it outside the database, so a forger who recomputed the whole chain no longer
//! matches the head an auditor holds (`audit verify --head SEQ:HASH`).

use serde::Serialize;

use crate::output::{self, ExportFormat};
use crate::store::{AuditBreak, AuditEntry, Store, StoreError, verify_audit_chain};

/// Errors of the audit commands.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The chain is broken: the first broken entry.
    #[error("audit log broken: {0}")]
    Broken(AuditBreak),
    /// The chain is intact but does not reach or match the head the auditor holds.
    #[error("audit log does not match the head {head}: {problem}")]
    HeadMismatch {
        /// The head given.
        head: Head,
        /// How it differs.
        problem: String,
    },
    /// A CSV export failed.
    #[error(transparent)]
    Csv(#[from] output::CsvError),
}

/// A point in the chain: an entry's sequence number and hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Head {
    /// Sequence number (1 is the first entry).
    pub seq: i64,
    /// Its SHA-256, lowercase hex.
    pub hash: String,
}

impl std::fmt::Display for Head {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.seq, self.hash)
    }
}

impl std::str::FromStr for Head {
    type Err = String;

    /// `SEQ:HASH`, as the management report prints it.
    fn from_str(raw: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "{raw:?}: expected SEQ:HASH, e.g. 42:3f9a... (64 hex digits), as the management report prints it"
            )
        };
        let (seq, hash) = raw.split_once(':').ok_or_else(bad)?;
        let seq: i64 = seq.trim().parse().map_err(|_| bad())?;
        let hash = hash.trim().to_ascii_lowercase();
        if seq < 1 || hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        Ok(Self { seq, hash })
    }
}

/// The chain's last entry and whether the chain up to it is intact, for the report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct HeadState {
    /// The last entry (None: the log is empty).
    pub head: Option<Head>,
    /// The first broken entry, if the chain is broken.
    pub broken: Option<String>,
}

/// The head of the log and whether the chain verifies.
pub async fn head_state(store: &dyn Store) -> Result<HeadState, StoreError> {
    let log = store.audit_log().await?;
    Ok(HeadState {
        head: log.last().map(|e| Head {
            seq: e.seq,
            hash: e.hash.clone(),
        }),
        broken: verify_audit_chain(&log).err().map(|b| b.to_string()),
    })
}

/// Filters of `audit list`.
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    /// Only entries at or after this time (ms).
    pub since_ms: Option<i64>,
    /// Only entries by this person (case-insensitive).
    pub by: Option<String>,
}

#[derive(Serialize)]
struct EntryView<'a> {
    #[serde(flatten)]
    entry: &'a AuditEntry,
    /// RFC 3339 of `at`.
    time: String,
}

/// `audit list`.
pub async fn list(
    store: &dyn Store,
    filter: &AuditFilter,
    format: ExportFormat,
) -> Result<String, AuditError> {
    let log = store.audit_log().await?;
    let by = filter.by.as_ref().map(|b| b.to_lowercase());
    let entries: Vec<&AuditEntry> = log
        .iter()
        .filter(|e| filter.since_ms.is_none_or(|since| e.at >= since))
        .filter(|e| by.as_ref().is_none_or(|by| e.actor.to_lowercase() == *by))
        .collect();
    let header = ["SEQ", "AT", "BY", "ACTION", "SUBJECT", "DETAIL", "HASH"];
    let rows = || {
        entries
            .iter()
            .map(|e| {
                vec![
                    e.seq.to_string(),
                    output::time(Some(e.at)),
                    e.actor.clone(),
                    e.action.clone(),
                    e.subject.clone(),
                    e.detail_json.clone(),
                    e.hash.clone(),
                ]
            })
            .collect::<Vec<_>>()
    };
    Ok(match format {
        ExportFormat::Json => output::json(
            &entries
                .iter()
                .map(|entry| EntryView {
                    entry,
                    time: output::time(Some(entry.at)),
                })
                .collect::<Vec<_>>(),
        ),
        ExportFormat::Table => output::table(&header, &rows()),
        ExportFormat::Csv => output::csv(&header, &rows())?,
    })
}

/// `audit verify [--head SEQ:HASH]`: Ok with a summary, or the first broken entry.
pub async fn verify(store: &dyn Store, head: Option<&Head>) -> Result<String, AuditError> {
    let log = store.audit_log().await?;
    verify_audit_chain(&log).map_err(AuditError::Broken)?;
    let last = log.last();
    let summary = match last {
        Some(last) => format!(
            "audit log intact: {} entries, head {}:{}",
            log.len(),
            last.seq,
            last.hash
        ),
        None => "audit log intact: no entries yet".to_string(),
    };
    let Some(head) = head else {
        return Ok(summary);
    };
    let mismatch = |problem: String| AuditError::HeadMismatch {
        head: head.clone(),
        problem,
    };
    match log.iter().find(|e| e.seq == head.seq) {
        None => Err(mismatch(format!(
            "the log ends at entry {}, before entry {}: entries were removed",
            last.map_or(0, |e| e.seq),
            head.seq
        ))),
        Some(entry) if entry.hash != head.hash => Err(mismatch(format!(
            "entry {} has hash {}: the log up to it was rewritten (its hashes recomputed) after the head was taken",
            entry.seq, entry.hash
        ))),
        Some(_) => Ok(format!("{summary}; matches the head {head}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{NewToken, SqliteStore};

    async fn store_with_entries(n: i64) -> SqliteStore {
        let store = SqliteStore::in_memory().await.unwrap();
        for i in 0..n {
            store
                .create_token(
                    NewToken {
                        token_hash: format!("hash{i}"),
                        created_at: i,
                        expires_at: i + 100,
                        created_by: if i == 0 { "anna".into() } else { "bo".into() },
                    },
                    i * 1000,
                )
                .await
                .unwrap();
        }
        store
    }

    #[tokio::test]
    async fn verify_passes_and_checks_the_head() {
        let store = store_with_entries(3).await;
        let state = head_state(&store).await.unwrap();
        let head = state.head.unwrap();
        assert_eq!(head.seq, 3);
        assert!(state.broken.is_none());
        let text = verify(&store, Some(&head)).await.unwrap();
        assert!(text.contains("3 entries"), "{text}");
        let forged = Head {
            seq: 3,
            hash: "0".repeat(64),
        };
        assert!(matches!(
            verify(&store, Some(&forged)).await,
            Err(AuditError::HeadMismatch { .. })
        ));
        let beyond = Head {
            seq: 9,
            hash: head.hash,
        };
        let err = verify(&store, Some(&beyond)).await.unwrap_err().to_string();
        assert!(err.contains("ends at entry 3"), "{err}");
    }

    #[tokio::test]
    async fn list_filters_by_person_and_time() {
        let store = store_with_entries(3).await;
        let filter = AuditFilter {
            since_ms: Some(1000),
            by: Some("BO".into()),
        };
        let text = list(&store, &filter, ExportFormat::Csv).await.unwrap();
        assert_eq!(text.lines().count(), 3, "{text}");
        assert!(!text.contains("anna"), "{text}");
    }

    #[test]
    fn heads_parse_as_the_report_prints_them() {
        let hash = "ab".repeat(32);
        let head: Head = format!("12:{hash}").parse().unwrap();
        assert_eq!(head.to_string(), format!("12:{hash}"));
        assert!("12".parse::<Head>().is_err());
        assert!("x:ab".parse::<Head>().is_err());
        assert!(format!("0:{hash}").parse::<Head>().is_err());
    }
}
