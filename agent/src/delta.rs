//! Delta reports (see `proto/tillsyn/v1/inventory.proto`, fields `sequence`, `delta`,
//! `base_sequence`, `removed_observations`). After a full report, the agent sends only the
//! observations that were added or changed and the keys of those removed, numbered so the
//! collector can tell a gap. State lives in `A/delta.json`: the sequence of the last report
//! built and a digest of every observation it held.
//!
//! A report is full when there is no state (first run, or after the collector asked for a
//! resync), when deltas are switched off, or every `full_every`-th report, which bounds how long
//! a missed fact could stay wrong. The state advances when a report is built and spooled, not
//! when it is acknowledged: the spool delivers in order, and a lost report shows up at the
//! collector as a gap, answered with `resync_required`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tillsyn_proto::v1::{ObservationKey, ReportRequest};

use crate::state::{self, AgentDir, StateError};

/// How delta reports are made (`[delta]` in `agent.toml`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct DeltaConfig {
    /// Send deltas after a full report.
    pub enabled: bool,
    /// Every n-th report is full regardless.
    pub full_every: u64,
}

impl Default for DeltaConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            full_every: 24,
        }
    }
}

/// What the last built report held.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct DeltaState {
    /// Sequence of the last report built.
    pub sequence: u64,
    /// Sequence of the last full report.
    pub full_sequence: u64,
    /// `category\u{1f}name` -> digest of the value and evidence.
    pub facts: BTreeMap<String, String>,
    /// The collector asked for a resync: the next report is full.
    #[serde(default)]
    pub force_full: bool,
}

fn key(category: &str, name: &str) -> String {
    format!("{category}\u{1f}{name}")
}

fn digest(observation: &tillsyn_proto::v1::Observation) -> String {
    let mut hasher = Sha256::new();
    hasher.update(observation.value_json.as_bytes());
    for evidence in &observation.evidence {
        hasher.update([0]);
        hasher.update(evidence.source.as_bytes());
        hasher.update(evidence.line.to_be_bytes());
        hasher.update(evidence.detail.as_bytes());
    }
    hex::encode(&hasher.finalize()[..16])
}

/// Numbers `report` and, when allowed, turns it into a delta against `previous`; returns the
/// state to keep for the next report.
pub fn prepare(
    previous: Option<&DeltaState>,
    config: &DeltaConfig,
    report: &mut ReportRequest,
) -> DeltaState {
    let sequence = previous.map_or(0, |p| p.sequence) + 1;
    let facts: BTreeMap<String, String> = report
        .observations
        .iter()
        .map(|o| (key(&o.category, &o.name), digest(o)))
        .collect();
    report.sequence = sequence;
    let full_due = previous
        .is_none_or(|p| p.force_full || sequence - p.full_sequence >= config.full_every.max(1));
    let Some(previous) = previous.filter(|_| config.enabled && !full_due) else {
        return DeltaState {
            sequence,
            full_sequence: sequence,
            facts,
            force_full: false,
        };
    };
    report.delta = true;
    report.base_sequence = previous.sequence;
    report
        .observations
        .retain(|o| previous.facts.get(&key(&o.category, &o.name)) != Some(&digest(o)));
    report.removed_observations = previous
        .facts
        .keys()
        .filter(|k| !facts.contains_key(*k))
        .filter_map(|k| k.split_once('\u{1f}'))
        .map(|(category, name)| ObservationKey {
            category: category.to_string(),
            name: name.to_string(),
        })
        .collect();
    DeltaState {
        sequence,
        full_sequence: previous.full_sequence,
        facts,
        force_full: false,
    }
}

fn path(dir: &AgentDir) -> std::path::PathBuf {
    dir.root().join("delta.json")
}

/// The saved state; a missing or unreadable file means "send a full report next".
pub fn load(dir: &AgentDir) -> Option<DeltaState> {
    let text = std::fs::read_to_string(path(dir)).ok()?;
    match serde_json::from_str(&text) {
        Ok(state) => Some(state),
        Err(error) => {
            tracing::warn!(%error, file = %path(dir).display(), "delta state unreadable; the next report is full");
            None
        }
    }
}

/// Saves the state atomically.
pub fn save(dir: &AgentDir, state: &DeltaState) -> Result<(), StateError> {
    let text = serde_json::to_vec(state).map_err(|e| StateError::Config {
        path: path(dir),
        message: e.to_string(),
    })?;
    state::write_file(&path(dir), &text, true)
}

/// Forgets the state so the next report is full (the collector asked for a resync). The
/// sequence continues, so numbers stay increasing.
pub fn reset(dir: &AgentDir) -> Result<(), StateError> {
    let Some(mut state) = load(dir) else {
        return Ok(());
    };
    state.facts.clear();
    state.force_full = true;
    save(dir, &state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tillsyn_proto::v1::Observation;

    fn report(facts: &[(&str, &str)]) -> ReportRequest {
        ReportRequest {
            observations: facts
                .iter()
                .map(|(name, value)| Observation {
                    category: "package".into(),
                    name: (*name).into(),
                    value_json: (*value).into(),
                    evidence: vec![],
                })
                .collect(),
            ..ReportRequest::default()
        }
    }

    #[test]
    fn first_report_is_full_then_deltas_carry_only_changes() {
        let config = DeltaConfig::default();
        let mut first = report(&[("a", "1"), ("b", "1"), ("c", "1")]);
        let state = prepare(None, &config, &mut first);
        assert!(!first.delta);
        assert_eq!((first.sequence, first.observations.len()), (1, 3));

        let mut second = report(&[("a", "1"), ("b", "2"), ("d", "1")]);
        let state = prepare(Some(&state), &config, &mut second);
        assert!(second.delta);
        assert_eq!((second.sequence, second.base_sequence), (2, 1));
        let names: Vec<_> = second
            .observations
            .iter()
            .map(|o| o.name.as_str())
            .collect();
        assert_eq!(names, ["b", "d"]);
        assert_eq!(second.removed_observations.len(), 1);
        assert_eq!(second.removed_observations[0].name, "c");
        assert_eq!(state.sequence, 2);
    }

    #[test]
    fn every_nth_report_and_a_resync_are_full() {
        let config = DeltaConfig {
            enabled: true,
            full_every: 3,
        };
        let mut state = prepare(None, &config, &mut report(&[("a", "1")]));
        let mut kinds = Vec::new();
        for _ in 0..5 {
            let mut r = report(&[("a", "1")]);
            state = prepare(Some(&state), &config, &mut r);
            kinds.push(r.delta);
        }
        assert_eq!(kinds, [true, true, false, true, true]);

        let tmp = tempfile::tempdir().unwrap();
        let dir = AgentDir::new(tmp.path());
        save(&dir, &state).unwrap();
        reset(&dir).unwrap();
        let mut after = report(&[("a", "1")]);
        let next = prepare(load(&dir).as_ref(), &config, &mut after);
        assert!(!after.delta, "a resync makes the next report full");
        assert_eq!(
            after.sequence,
            state.sequence + 1,
            "sequence numbers keep increasing"
        );
        assert_eq!(next.full_sequence, next.sequence);
    }

    #[test]
    fn deltas_can_be_switched_off() {
        let config = DeltaConfig {
            enabled: false,
            full_every: 24,
        };
        let state = prepare(None, &config, &mut report(&[("a", "1")]));
        let mut r = report(&[("a", "1")]);
        prepare(Some(&state), &config, &mut r);
        assert!(!r.delta);
        assert_eq!(r.observations.len(), 1);
    }
}
