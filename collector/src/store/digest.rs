//! The digest of an asset's set of observations (`assets.observations_digest`, migration
//! 0017), by which ingest recognises a full report that changes nothing without reading the
//! stored rows.

use sha2::{Digest, Sha256};

use super::ObservationRow;

/// The digest of a set of observations (`assets.observations_digest`, migration 0017): the
/// XOR of every row's SHA-256 over its length-prefixed category, name, value and evidence, so
/// that a delta updates it from the rows it changes alone, in any order. XOR is linear: an
/// agent could craft rows whose digest equals its stored one and so have a report of them
/// ignored; that only keeps facts it reported itself earlier, which it could report anyway.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct SetDigest([u8; 32]);

impl SetDigest {
    /// The digest of `rows` (keys distinct).
    pub fn of(rows: &[ObservationRow]) -> Self {
        let mut digest = Self::default();
        for (key, value, evidence) in rows {
            digest.toggle(key, value, evidence);
        }
        digest
    }

    /// Adds a row absent from the set, or removes one present.
    pub fn toggle(&mut self, (category, name): &(String, String), value: &str, evidence: &str) {
        let mut hash = Sha256::new();
        for field in [category.as_str(), name, value, evidence] {
            hash.update((field.len() as u64).to_le_bytes());
            hash.update(field.as_bytes());
        }
        for (byte, other) in self.0.iter_mut().zip(hash.finalize()) {
            *byte ^= other;
        }
    }

    pub fn hex(self) -> String {
        hex::encode(self.0)
    }

    /// `None` for anything but 64 hex digits: the stored value is then unknown.
    pub fn parse(text: &str) -> Option<Self> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text, &mut bytes).ok()?;
        Some(Self(bytes))
    }
}
