//! Enrollment tokens: 32 random bytes shown once to the operator; only their SHA-256 is stored.

use sha2::{Digest, Sha256};

/// A fresh token, `tsy_` + 64 hex characters.
pub fn generate() -> String {
    let bytes: [u8; 32] = rand::random();
    format!("tsy_{}", hex::encode(bytes))
}

/// The stored form of a token.
pub fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.trim().as_bytes()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn tokens_are_unique_and_hashes_hide_them() {
        let a = super::generate();
        let b = super::generate();
        assert_ne!(a, b);
        assert_eq!(a.len(), 68);
        assert_ne!(super::hash(&a), a);
        assert_eq!(super::hash(&a), super::hash(&format!(" {a}\n")));
    }
}
