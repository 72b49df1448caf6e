//! Certificate renewal. The agent's certificate is short-lived; at two thirds of its lifetime
//! (less a per-certificate jitter of up to a fifteenth, so a fleet enrolled together does not
//! renew together, and never later than two thirds, so the collector's `certificate-expiring`
//! rule only names agents that failed) the agent makes a new key pair and trades a CSR for a
//! new certificate over mutual TLS with the current one (`Enrollment.Renew`). The new pair
//! replaces the old one on disk as a unit ([`AgentDir::install_identity`]); the CA bundle the
//! collector returns replaces `ca.pem`, which is how agents learn a rotated CA.
//!
//! An expired certificate cannot renew: the collector no longer accepts it, and the agent
//! needs a new enrollment token. [`check_not_expired`] says so before any connection is tried.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tillsyn_proto::v1::{RenewRequest, enrollment_client::EnrollmentClient};

use crate::client::{self, ClientError};
use crate::state::{self, AgentDir, StateError};

/// Errors of renewal and of reading the certificate's validity.
#[derive(Debug, thiserror::Error)]
pub enum RenewError {
    /// State directory problem.
    #[error(transparent)]
    State(#[from] StateError),
    /// The certificate file holds no parsable certificate.
    #[error("{}: not a usable certificate: {message}", path.display())]
    BadCertificate {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The certificate expired; only a new enrollment helps.
    #[error("the agent certificate {} expired at {}; the collector no longer accepts it. Create a token (`tillsyn-collector token create`) and run `tillsyn-agent enroll --force` on this host", path.display(), format_ms(*not_after_ms))]
    Expired {
        /// The certificate file.
        path: PathBuf,
        /// Its expiry (ms since the epoch).
        not_after_ms: i64,
    },
    /// Key or CSR generation failed.
    #[error("generating the new key or CSR: {0}")]
    Key(#[from] rcgen::Error),
    /// No channel to the collector.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The collector refused the renewal.
    #[error("the collector refused the renewal: {}", .0.message())]
    Refused(tonic::Status),
}

/// A certificate's validity window, ms since the epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CertificateTimes {
    /// Not valid before.
    pub not_before_ms: i64,
    /// Not valid after.
    pub not_after_ms: i64,
    /// When this agent renews it (see the module header).
    pub renew_at_ms: i64,
}

/// The validity of the PEM certificate in `path`.
pub fn certificate_times_at(path: &Path) -> Result<CertificateTimes, RenewError> {
    let pem = state::read_text(path)?;
    certificate_times(&pem).map_err(|message| RenewError::BadCertificate {
        path: path.to_path_buf(),
        message,
    })
}

/// The validity of a PEM certificate, with its renewal time.
pub fn certificate_times(pem: &str) -> Result<CertificateTimes, String> {
    let (_, block) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).map_err(|e| e.to_string())?;
    let (_, cert) =
        x509_parser::parse_x509_certificate(&block.contents).map_err(|e| e.to_string())?;
    let validity = cert.validity();
    let not_before_ms = validity.not_before.timestamp().saturating_mul(1000);
    let not_after_ms = validity.not_after.timestamp().saturating_mul(1000);
    let jitter = jitter_fraction(&block.contents);
    Ok(CertificateTimes {
        not_before_ms,
        not_after_ms,
        renew_at_ms: renew_at(not_before_ms, not_after_ms, jitter),
    })
}

/// Two thirds into the lifetime, less `jitter` (0..1) fifteenths of it.
pub fn renew_at(not_before_ms: i64, not_after_ms: i64, jitter: f64) -> i64 {
    let lifetime = (not_after_ms - not_before_ms).max(0);
    #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
    let early = (lifetime as f64 * jitter.clamp(0.0, 1.0) / 15.0) as i64;
    not_before_ms + lifetime * 2 / 3 - early
}

/// A fraction 0..1 fixed per certificate (from its hash): a restart does not re-roll it, and
/// agents enrolled in the same second spread out.
fn jitter_fraction(der: &[u8]) -> f64 {
    let digest = Sha256::digest(der);
    let n = u16::from_be_bytes([digest[0], digest[1]]);
    f64::from(n) / f64::from(u16::MAX)
}

/// Fails with [`RenewError::Expired`] when the certificate in `dir` has expired.
pub fn check_not_expired(dir: &AgentDir) -> Result<CertificateTimes, RenewError> {
    let times = certificate_times_at(&dir.cert_path())?;
    if times.not_after_ms <= crate::inventory::now_unix_ms() {
        return Err(RenewError::Expired {
            path: dir.cert_path(),
            not_after_ms: times.not_after_ms,
        });
    }
    Ok(times)
}

/// RFC 3339 UTC for logs and messages.
pub fn format_ms(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(ms / 1000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| ms.to_string())
}

/// Renews now: a new key pair, a CSR naming this agent, the current certificate at the
/// handshake; installs the new pair and CA bundle. Returns the new validity.
pub async fn renew(dir: &AgentDir, root: &Path) -> Result<CertificateTimes, RenewError> {
    dir.recover_identity()?;
    let config = dir.load_config()?;
    check_not_expired(dir)?;
    let ca = state::read_text(&dir.ca_path())?;
    let cert = state::read_text(&dir.cert_path())?;
    let key = state::read_text(&dir.key_path())?;

    let new_key = rcgen::KeyPair::generate()?;
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, config.agent_id.clone());
    let csr_pem = params.serialize_request(&new_key)?.pem()?;

    let channel = client::connect(&config.collector, &ca, Some((&cert, &key))).await?;
    let response = EnrollmentClient::new(channel)
        .renew(RenewRequest {
            csr_pem,
            host_id: crate::host_identity::host_id(root),
        })
        .await
        .map_err(RenewError::Refused)?
        .into_inner();
    let times = certificate_times(&response.certificate_pem).map_err(|message| {
        RenewError::BadCertificate {
            path: dir.cert_path(),
            message: format!("the collector sent an unusable certificate: {message}"),
        }
    })?;
    // The CA bundle first: if the swap below is interrupted the old certificate still verifies
    // against it (during a rotation the bundle holds the old CA too).
    if !response.ca_certificate_pem.is_empty() {
        state::write_file(
            &dir.ca_path(),
            response.ca_certificate_pem.as_bytes(),
            false,
        )?;
    }
    dir.install_identity(&response.certificate_pem, &new_key.serialize_pem())?;
    tracing::info!(
        agent_id = %config.agent_id,
        not_after = %format_ms(times.not_after_ms),
        renew_at = %format_ms(times.renew_at_ms),
        "certificate renewed"
    );
    Ok(times)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renewal_falls_between_three_fifths_and_two_thirds_of_the_lifetime() {
        let (start, end) = (1_000, 1_000 + 90_000);
        assert_eq!(renew_at(start, end, 0.0), start + 60_000);
        assert_eq!(renew_at(start, end, 1.0), start + 54_000);
        let mid = renew_at(start, end, 0.5);
        assert!((start + 54_000..=start + 60_000).contains(&mid));
        // Out-of-range jitter is clamped, a broken window does not go before its start.
        assert_eq!(renew_at(start, end, 7.0), start + 54_000);
        assert_eq!(renew_at(end, start, 0.0), end);
    }

    #[test]
    fn times_are_read_from_the_certificate_and_jitter_is_fixed_per_certificate() {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.not_before = time::OffsetDateTime::from_unix_timestamp(1_000_000).unwrap();
        params.not_after = time::OffsetDateTime::from_unix_timestamp(1_000_090).unwrap();
        let pem = params.self_signed(&key).unwrap().pem();
        let times = certificate_times(&pem).unwrap();
        assert_eq!(times.not_before_ms, 1_000_000_000);
        assert_eq!(times.not_after_ms, 1_000_090_000);
        assert!((1_000_054_000..=1_000_060_000).contains(&times.renew_at_ms));
        assert_eq!(certificate_times(&pem).unwrap(), times);
        assert!(certificate_times("not a certificate").is_err());
    }

    #[test]
    fn an_expired_certificate_says_a_new_token_is_needed() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = AgentDir::new(tmp.path());
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.not_before = time::OffsetDateTime::from_unix_timestamp(1_000_000).unwrap();
        params.not_after = time::OffsetDateTime::from_unix_timestamp(1_000_090).unwrap();
        state::write_file(
            &dir.cert_path(),
            params.self_signed(&key).unwrap().pem().as_bytes(),
            false,
        )
        .unwrap();
        let err = check_not_expired(&dir).unwrap_err().to_string();
        assert!(err.contains("expired at 1970-01-12"), "{err}");
        assert!(err.contains("enroll --force"), "{err}");
    }
}
