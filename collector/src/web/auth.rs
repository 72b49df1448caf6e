//! The factors of a local sign-in: argon2 password hashes, RFC 6238 TOTP codes (30 s steps,
//! six digits, SHA-1 as authenticator apps expect, one step of clock skew either way), random
//! secrets, and the per-address limiter of failed sign-ins. Pure apart from the OS RNG.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use rand::RngCore as _;
use sha2::{Digest, Sha256};
use totp_rs::{Algorithm, TOTP};

/// Shortest password accepted at enrolment (characters).
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Longest password accepted (bytes): bounds the argon2 input from a form.
pub const MAX_PASSWORD_BYTES: usize = 1024;
/// Length of a TOTP step (s).
pub const TOTP_STEP_SECONDS: u64 = 30;

/// Why a secret could not be made or checked.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// argon2 failed (parameters or a corrupt stored hash).
    #[error("password hash: {0}")]
    Hash(String),
    /// A stored TOTP key is not usable.
    #[error("TOTP key: {0}")]
    Totp(String),
}

/// Hashes a password (argon2id, default parameters, random salt) to a PHC string.
pub fn hash_password(password: &str) -> Result<String, AuthError> {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    let salt = SaltString::encode_b64(&bytes).map_err(|e| AuthError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AuthError::Hash(e.to_string()))
}

/// Whether `password` matches the stored PHC string.
pub fn verify_password(password: &str, phc: &str) -> Result<bool, AuthError> {
    let parsed = PasswordHash::new(phc).map_err(|e| AuthError::Hash(e.to_string()))?;
    Ok(Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok())
}

/// A hash of a fixed password, verified when the account is unknown so that a wrong e-mail
/// costs the same time as a wrong password.
pub fn dummy_verify(password: &str) {
    static DUMMY: std::sync::LazyLock<Option<String>> =
        std::sync::LazyLock::new(|| hash_password("not a real password at all").ok());
    if let Some(phc) = DUMMY.as_deref() {
        let _ = verify_password(password, phc);
    }
}

/// `n` random bytes as lowercase hex.
pub fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// SHA-256 hex: how session ids and enrolment tokens are stored.
pub fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// Constant-time equality of two strings (CSRF tokens, TOTP codes).
pub fn same(a: &str, b: &str) -> bool {
    use subtle_eq::eq;
    eq(a.as_bytes(), b.as_bytes())
}

mod subtle_eq {
    /// Compares without an early exit on the first differing byte.
    pub fn eq(a: &[u8], b: &[u8]) -> bool {
        if a.len() != b.len() {
            return false;
        }
        a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

/// A new TOTP key: 20 random bytes (160 bits, RFC 4226's recommendation), as hex.
pub fn new_totp_secret() -> String {
    random_hex(20)
}

/// The TOTP key offered with an enrolment token: 160 bits of SHA-256 over a label and the
/// token. The token is random (256 bits), single use and stored only as a plain SHA-256, so
/// the key cannot be derived from the store, stays the same between the enrolment page and its
/// form, and is never taken from the browser.
pub fn enrolment_totp_secret(token: &str) -> String {
    let digest = Sha256::digest(format!("tillsyn enrolment TOTP key\0{token}").as_bytes());
    hex::encode(&digest[..20])
}

fn totp(secret_hex: &str) -> Result<TOTP, AuthError> {
    let secret = hex::decode(secret_hex).map_err(|e| AuthError::Totp(e.to_string()))?;
    if secret.len() < 16 {
        return Err(AuthError::Totp("shorter than 128 bits".into()));
    }
    Ok(TOTP::new_unchecked(
        Algorithm::SHA1,
        6,
        1,
        TOTP_STEP_SECONDS,
        secret,
    ))
}

/// The key in base32, as people type it into an authenticator app.
pub fn totp_base32(secret_hex: &str) -> Result<String, AuthError> {
    Ok(totp(secret_hex)?.get_secret_base32())
}

/// The `otpauth://` URI authenticator apps import.
pub fn totp_uri(secret_hex: &str, email: &str) -> Result<String, AuthError> {
    let base32 = totp_base32(secret_hex)?;
    let label: String = email
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "@.-_+".contains(*c))
        .collect();
    Ok(format!(
        "otpauth://totp/Tillsyn:{label}?secret={base32}&issuer=Tillsyn&algorithm=SHA1&digits=6&period=30"
    ))
}

/// The code for the step containing `unix_seconds` (tests and enrolment checks).
pub fn totp_code(secret_hex: &str, unix_seconds: u64) -> Result<String, AuthError> {
    Ok(totp(secret_hex)?.generate(unix_seconds))
}

/// The step (Unix time / 30) whose code `code` is, within one step of `unix_seconds`; None if
/// it matches none. The caller refuses steps not newer than the last one accepted.
pub fn totp_step(
    secret_hex: &str,
    code: &str,
    unix_seconds: u64,
) -> Result<Option<i64>, AuthError> {
    let totp = totp(secret_hex)?;
    let code = code.trim();
    let now_step = unix_seconds / TOTP_STEP_SECONDS;
    let mut matched = None;
    for step in [now_step.saturating_sub(1), now_step, now_step + 1] {
        if same(&totp.generate(step * TOTP_STEP_SECONDS), code) {
            matched = i64::try_from(step).ok();
        }
    }
    Ok(matched)
}

/// Failed sign-ins per client address within a window; an address over the limit is refused
/// before any password is checked. In memory: a restart forgets it (the per-account lock is
/// in the store and survives).
#[derive(Debug, Default)]
pub struct AddressLimiter {
    failures: Mutex<HashMap<IpAddr, (u32, i64)>>,
}

impl AddressLimiter {
    /// Whether `address` may try now, given the limit and window (ms).
    pub fn allows(&self, address: IpAddr, limit: u32, window_ms: i64, now: i64) -> bool {
        let Ok(mut failures) = self.failures.lock() else {
            return false;
        };
        failures.retain(|_, (_, since)| now - *since < window_ms);
        failures
            .get(&address)
            .is_none_or(|(count, _)| *count < limit)
    }

    /// Counts one failure of `address`.
    pub fn fail(&self, address: IpAddr, now: i64) {
        if let Ok(mut failures) = self.failures.lock() {
            let entry = failures.entry(address).or_insert((0, now));
            entry.0 += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_only_themselves() {
        let phc = hash_password("correct horse battery").unwrap();
        assert!(phc.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", &phc).unwrap());
        assert!(!verify_password("correct horse batterx", &phc).unwrap());
        assert!(verify_password("x", "not a phc string").is_err());
    }

    #[test]
    fn totp_matches_rfc_6238_and_allows_one_step_of_skew() {
        // RFC 6238 appendix B, SHA-1 key "12345678901234567890", T = 59 s -> 94287082 (8
        // digits); the six-digit code is its last six digits.
        let key = hex::encode(b"12345678901234567890");
        assert_eq!(totp_code(&key, 59).unwrap(), "287082");
        assert_eq!(totp_step(&key, "287082", 59).unwrap(), Some(1));
        assert_eq!(
            totp_step(&key, "287082", 89).unwrap(),
            Some(1),
            "one step late"
        );
        assert_eq!(
            totp_step(&key, "287082", 120).unwrap(),
            None,
            "two steps late"
        );
        assert_eq!(totp_step(&key, "000000", 59).unwrap(), None);
        assert!(
            totp_uri(&key, "a@b.se")
                .unwrap()
                .starts_with("otpauth://totp/Tillsyn:a@b.se?secret=GEZDGNBV")
        );
    }

    #[test]
    fn an_address_is_refused_after_its_limit_until_the_window_passes() {
        let limiter = AddressLimiter::default();
        let address: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..3 {
            assert!(limiter.allows(address, 3, 1000, 0));
            limiter.fail(address, 0);
        }
        assert!(!limiter.allows(address, 3, 1000, 500));
        assert!(limiter.allows("192.0.2.2".parse().unwrap(), 3, 1000, 500));
        assert!(limiter.allows(address, 3, 1000, 1000));
    }
}
