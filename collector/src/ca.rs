//! The collector's certificate authority (rcgen): creates the CA and the server certificate at
//! `init`, and signs agents' CSRs at enrollment and renewal. Agent certificates carry the agent
//! id as their subject CN and are good for client authentication only.
//!
//! # Rotation
//! `ca.pem` is the trust bundle handed to agents: the signing CA first, then, during a
//! rotation's overlap, the previous CA. `ca.key` is the signing CA's key only.
//! [`rotate`] makes a new CA the signer and keeps the old one trusted until
//! `ca-rotation.toml`'s `previous_retires_at_ms`; agents learn the new CA with the bundle
//! returned at renewal, [`renew_server_certificate`] moves the server certificate to the new
//! CA, and [`retire`] (or the overlap's end) stops trusting the old one. CAs are told apart by
//! their subject, which for rotated CAs names the rotation time.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

/// Errors of the CA.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    /// Key or certificate generation or signing failed.
    #[error("certificate: {0}")]
    Rcgen(#[from] rcgen::Error),
    /// The CSR could not be parsed or its signature is wrong.
    #[error("the certificate signing request is not valid: {0}")]
    BadCsr(rcgen::Error),
    /// A CA file is missing or unreadable.
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// A certificate from the wire does not parse.
    #[error("certificate does not parse: {0}")]
    BadCertificate(String),
    /// The certificate comes from a CA that is no longer trusted.
    #[error(
        "the certificate was issued by a CA that is no longer trusted (retired after a rotation)"
    )]
    Retired,
    /// A rotation is in progress already.
    #[error(
        "a CA rotation is in progress (the previous CA retires at {0}); run `tillsyn-collector ca retire` first"
    )]
    RotationInProgress(String),
    /// No rotation to retire.
    #[error("no CA rotation is in progress; nothing to retire")]
    NoRotation,
}

impl From<tillsyn_intake::certificate::CertificateError> for CaError {
    fn from(error: tillsyn_intake::certificate::CertificateError) -> Self {
        use tillsyn_intake::certificate::CertificateError;
        match error {
            CertificateError::BadCsr(e) => CaError::BadCsr(e),
            CertificateError::BadCertificate(e) => CaError::BadCertificate(e),
        }
    }
}

/// PEM material made at `init`.
#[derive(Debug)]
pub struct CaMaterial {
    /// CA certificate.
    pub ca_cert_pem: String,
    /// CA private key.
    pub ca_key_pem: String,
    /// Server certificate.
    pub server_cert_pem: String,
    /// Server private key.
    pub server_key_pem: String,
}

/// Creates a new CA (10 years) and a server certificate (2 years) for `server_names`
/// (DNS names or IP addresses).
pub fn create(organisation: &str, server_names: &[String]) -> Result<CaMaterial, CaError> {
    let (ca_cert_pem, ca_key, ca_params) = new_ca(&format!("{organisation} Tillsyn CA"))?;
    let issuer = Issuer::new(ca_params, &ca_key);
    let (server_cert_pem, server_key_pem) = issue_server(&issuer, server_names)?;
    Ok(CaMaterial {
        ca_cert_pem,
        ca_key_pem: ca_key.serialize_pem(),
        server_cert_pem,
        server_key_pem,
    })
}

/// A self-signed CA (10 years) named `common_name`.
fn new_ca(common_name: &str) -> Result<(String, KeyPair, CertificateParams), CaError> {
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.distinguished_name = rcgen::DistinguishedName::new();
    ca_params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    set_validity(&mut ca_params, Duration::days(3650));
    ca_params.serial_number = Some(random_serial());
    let ca_cert = ca_params.self_signed(&ca_key)?;
    Ok((ca_cert.pem(), ca_key, ca_params))
}

/// A server certificate (2 years) for `server_names`, PEM certificate and key.
fn issue_server<S: rcgen::SigningKey>(
    issuer: &Issuer<'_, S>,
    server_names: &[String],
) -> Result<(String, String), CaError> {
    let server_key = KeyPair::generate()?;
    let mut server_params = CertificateParams::new(server_names.to_vec())?;
    server_params.distinguished_name = rcgen::DistinguishedName::new();
    server_params
        .distinguished_name
        .push(DnType::CommonName, "tillsyn-collector");
    server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    server_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    server_params.use_authority_key_identifier_extension = true;
    set_validity(&mut server_params, Duration::days(730));
    server_params.serial_number = Some(random_serial());
    let server_cert = server_params.signed_by(&server_key, issuer)?;
    Ok((server_cert.pem(), server_key.serialize_pem()))
}

/// A loaded CA able to sign agent certificates, with the previous CA of a rotation.
pub struct CertificateAuthority {
    /// The signing CA's certificate, PEM.
    current_pem: String,
    /// Its subject, DER: what agent certificates it issued name as their issuer.
    current_subject: Vec<u8>,
    issuer: Issuer<'static, KeyPair>,
    /// The CA a rotation replaced, while it is still trusted.
    previous: Option<PreviousCa>,
}

/// The replaced CA during a rotation's overlap.
#[derive(Clone, Debug)]
struct PreviousCa {
    pem: String,
    subject: Vec<u8>,
    retires_at_ms: i64,
}

/// `ca-rotation.toml`: the state of a rotation in progress.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rotation {
    /// When the new CA became the signer (ms). Agents whose certificate was issued earlier
    /// still hold a certificate from the previous CA.
    pub rotated_at_ms: i64,
    /// When the previous CA stops being trusted (ms).
    pub previous_retires_at_ms: i64,
}

/// Name of the rotation state file in the collector directory.
pub const ROTATION_FILE: &str = "ca-rotation.toml";

impl std::fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateAuthority")
            .finish_non_exhaustive()
    }
}

/// An agent certificate just issued.
#[derive(Debug)]
pub struct IssuedCertificate {
    /// PEM.
    pub pem: String,
    /// SHA-256 of the DER, hex: the identity binding stored with the agent.
    pub sha256: String,
    /// Expiry, ms since the epoch.
    pub not_after_ms: i64,
}

impl CertificateAuthority {
    /// Loads `ca.pem` (the bundle), `ca.key` and a rotation in progress from `dir`.
    pub fn load(dir: &Path) -> Result<Self, CaError> {
        let bundle = read(&dir.join("ca.pem"))?;
        let blocks = pem_blocks(&bundle, &dir.join("ca.pem"))?;
        let file_err = |name: &str, message: String| CaError::File {
            path: dir.join(name).display().to_string(),
            message,
        };
        let Some((current_pem, current_subject)) = blocks.first().cloned() else {
            return Err(file_err("ca.pem", "holds no certificate".into()));
        };
        let key = KeyPair::from_pem(&read(&dir.join("ca.key"))?)
            .map_err(|e| file_err("ca.key", e.to_string()))?;
        let issuer = Issuer::from_ca_cert_pem(&current_pem, key)
            .map_err(|e| file_err("ca.pem", e.to_string()))?;
        let previous = match (blocks.get(1), load_rotation(dir)?) {
            (Some((pem, subject)), Some(rotation)) => Some(PreviousCa {
                pem: pem.clone(),
                subject: subject.clone(),
                retires_at_ms: rotation.previous_retires_at_ms,
            }),
            (Some(_), None) => {
                return Err(file_err(
                    ROTATION_FILE,
                    "ca.pem holds a previous CA but there is no rotation state; run `tillsyn-collector ca retire`".into(),
                ));
            }
            (None, _) => None,
        };
        Ok(Self {
            current_pem,
            current_subject,
            issuer,
            previous,
        })
    }

    /// The CA bundle trusted now, PEM: the signing CA, and the previous one until it retires.
    /// Handed to agents at enrollment and renewal; the server trusts what it held at start.
    pub fn trust_bundle_pem(&self, now_ms: i64) -> String {
        match &self.previous {
            Some(previous) if now_ms < previous.retires_at_ms => {
                format!("{}{}", self.current_pem, previous.pem)
            }
            _ => self.current_pem.clone(),
        }
    }

    /// The CA bundle at start-up, including a previous CA that retires later.
    pub fn ca_cert_pem(&self) -> String {
        self.trust_bundle_pem(i64::MIN)
    }

    /// Whether a client certificate (DER) comes from a CA trusted now: the signing one, or the
    /// previous one before its overlap ends. The handshake checked the signature against the
    /// start-up bundle; this ends the overlap on time without a restart.
    pub fn trusts_issuer_of(&self, leaf_der: &[u8], now_ms: i64) -> Result<(), CaError> {
        let (_, cert) = x509_parser::parse_x509_certificate(leaf_der)
            .map_err(|e| CaError::BadCertificate(e.to_string()))?;
        let issuer = cert.issuer().as_raw();
        if issuer == self.current_subject.as_slice() {
            return Ok(());
        }
        match &self.previous {
            Some(previous) if issuer == previous.subject.as_slice() => {
                if now_ms < previous.retires_at_ms {
                    Ok(())
                } else {
                    Err(CaError::Retired)
                }
            }
            _ => Err(CaError::Retired),
        }
    }

    /// Whether the server certificate in `dir` was issued by the signing CA.
    pub fn issued_server_certificate(&self, dir: &Path) -> Result<bool, CaError> {
        let path = dir.join("server.pem");
        let (_, pem) = x509_parser::pem::parse_x509_pem(read(&path)?.as_bytes()).map_err(|e| {
            CaError::File {
                path: path.display().to_string(),
                message: e.to_string(),
            }
        })?;
        let (_, cert) = x509_parser::parse_x509_certificate(&pem.contents)
            .map_err(|e| CaError::BadCertificate(e.to_string()))?;
        Ok(cert.issuer().as_raw() == self.current_subject.as_slice())
    }

    /// Checks a CSR's syntax and self-signature without issuing anything.
    pub fn verify_csr(csr_pem: &str) -> Result<CertificateSigningRequestParams, CaError> {
        Ok(tillsyn_intake::certificate::verify_csr(csr_pem)?)
    }

    /// Issues a client certificate for `agent_id` over the CSR's public key. Everything else the
    /// CSR asks for (subject, SANs, extensions) is ignored: the collector decides the identity.
    pub fn issue_agent(
        &self,
        csr: &CertificateSigningRequestParams,
        agent_id: &str,
        validity: Duration,
    ) -> Result<IssuedCertificate, CaError> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, agent_id);
        params.subject_alt_names = vec![SanType::URI(
            format!("urn:tillsyn:agent:{agent_id}").try_into()?,
        )];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.use_authority_key_identifier_extension = true;
        set_validity(&mut params, validity);
        params.serial_number = Some(random_serial());
        let not_after_ms = unix_ms(params.not_after);
        let cert = params.signed_by(&csr.public_key, &self.issuer)?;
        Ok(IssuedCertificate {
            pem: cert.pem(),
            sha256: fingerprint(cert.der()),
            not_after_ms,
        })
    }
}

fn read(path: &Path) -> Result<String, CaError> {
    std::fs::read_to_string(path).map_err(|e| CaError::File {
        path: path.display().to_string(),
        message: e.to_string(),
    })
}

fn write(path: &Path, text: &str, secret: bool) -> Result<(), CaError> {
    tillsyn_agent::state::write_file(path, text.as_bytes(), secret).map_err(|e| CaError::File {
        path: path.display().to_string(),
        message: e.to_string(),
    })
}

/// Each certificate of a PEM bundle, as (its PEM block, its subject DER), in order.
fn pem_blocks(text: &str, path: &Path) -> Result<Vec<(String, Vec<u8>)>, CaError> {
    const END: &str = "-----END CERTIFICATE-----";
    let bad = |message: String| CaError::File {
        path: path.display().to_string(),
        message,
    };
    let mut blocks = Vec::new();
    for piece in text.split_inclusive(END).filter(|p| p.contains(END)) {
        let block = format!("{}\n", piece.trim_start());
        let (_, pem) =
            x509_parser::pem::parse_x509_pem(block.as_bytes()).map_err(|e| bad(e.to_string()))?;
        let (_, cert) =
            x509_parser::parse_x509_certificate(&pem.contents).map_err(|e| bad(e.to_string()))?;
        blocks.push((block, cert.subject().as_raw().to_vec()));
    }
    Ok(blocks)
}

/// The rotation in progress in `dir`, if any.
pub fn load_rotation(dir: &Path) -> Result<Option<Rotation>, CaError> {
    let path = dir.join(ROTATION_FILE);
    if !path.exists() {
        return Ok(None);
    }
    toml::from_str(&read(&path)?)
        .map(Some)
        .map_err(|e| CaError::File {
            path: path.display().to_string(),
            message: e.to_string(),
        })
}

/// `ca rotate`: a new CA becomes the signer; the current one stays trusted for `overlap`.
/// Takes effect when the collector (re)starts.
pub fn rotate(dir: &Path, overlap: Duration, now_ms: i64) -> Result<Rotation, CaError> {
    if let Some(rotation) = load_rotation(dir)? {
        return Err(CaError::RotationInProgress(ms_text(
            rotation.previous_retires_at_ms,
        )));
    }
    let bundle_path = dir.join("ca.pem");
    let blocks = pem_blocks(&read(&bundle_path)?, &bundle_path)?;
    let Some((old_pem, _)) = blocks.first() else {
        return Err(CaError::File {
            path: bundle_path.display().to_string(),
            message: "holds no certificate".into(),
        });
    };
    // The subject tells the CAs apart (see the module header): time and a random tag.
    let tag: [u8; 4] = rand::random();
    let (new_pem, new_key, _) = new_ca(&format!(
        "Tillsyn CA rotated {} {}",
        ms_text(now_ms),
        hex::encode(tag)
    ))?;
    let overlap_ms = i64::try_from(overlap.whole_milliseconds()).unwrap_or(i64::MAX / 2);
    let rotation = Rotation {
        rotated_at_ms: now_ms,
        previous_retires_at_ms: now_ms.saturating_add(overlap_ms),
    };
    let state = toml::to_string(&rotation).map_err(|e| CaError::File {
        path: dir.join(ROTATION_FILE).display().to_string(),
        message: e.to_string(),
    })?;
    // The rotation state first: a bundle with two CAs is only loaded together with it. The
    // key and the bundle are then replaced; a crash between them leaves a key that does not
    // match ca.pem, which `load` reports with the file name.
    write(&dir.join(ROTATION_FILE), &state, false)?;
    write(&dir.join("ca.key"), &new_key.serialize_pem(), true)?;
    write(&bundle_path, &format!("{new_pem}{old_pem}"), false)?;
    Ok(rotation)
}

/// `ca retire`: the previous CA is trusted no more; `ca.pem` holds the signing CA alone.
pub fn retire(dir: &Path) -> Result<(), CaError> {
    if load_rotation(dir)?.is_none() {
        return Err(CaError::NoRotation);
    }
    let bundle_path = dir.join("ca.pem");
    let blocks = pem_blocks(&read(&bundle_path)?, &bundle_path)?;
    if let Some((current, _)) = blocks.first() {
        write(&bundle_path, current, false)?;
    }
    let path = dir.join(ROTATION_FILE);
    std::fs::remove_file(&path).map_err(|e| CaError::File {
        path: path.display().to_string(),
        message: e.to_string(),
    })
}

/// `cert renew`: a new server certificate from the signing CA for `server_names`, replacing
/// `server.pem` and `server.key`. Takes effect when the collector (re)starts.
pub fn renew_server_certificate(dir: &Path, server_names: &[String]) -> Result<(), CaError> {
    let ca = CertificateAuthority::load(dir)?;
    let (cert_pem, key_pem) = issue_server(&ca.issuer, server_names)?;
    // Key first: the old certificate with the new key fails loudly at start, never silently.
    let (key_path, cert_path): (PathBuf, PathBuf) =
        (dir.join("server.key"), dir.join("server.pem"));
    write(&key_path, &key_pem, true)?;
    write(&cert_path, &cert_pem, false)
}

fn ms_text(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp(ms / 1000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| ms.to_string())
}

/// SHA-256 of a certificate's DER, lowercase hex.
pub fn fingerprint(der: &[u8]) -> String {
    hex::encode(Sha256::digest(der))
}

/// The subject CN of a DER certificate.
pub fn common_name(der: &[u8]) -> Result<String, CaError> {
    Ok(tillsyn_intake::certificate::common_name(der)?)
}

fn set_validity(params: &mut CertificateParams, validity: Duration) {
    // Back-date a little so agents with slightly slow clocks accept fresh certificates; by a
    // tenth of the lifetime at most, so short (test) lifetimes keep their proportions.
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::minutes(5).min(validity / 10);
    params.not_after = now + validity;
}

pub use tillsyn_intake::certificate::csr_common_name;

fn random_serial() -> SerialNumber {
    let mut bytes: [u8; 16] = rand::random();
    // Keep the serial positive in DER (high bit clear).
    bytes[0] &= 0x7f;
    SerialNumber::from_slice(&bytes)
}

fn unix_ms(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_agent_certificate_names_the_agent_not_the_csr() {
        let dir = tempfile::tempdir().unwrap();
        let material = create("Test", &["localhost".into(), "127.0.0.1".into()]).unwrap();
        std::fs::write(dir.path().join("ca.pem"), &material.ca_cert_pem).unwrap();
        std::fs::write(dir.path().join("ca.key"), &material.ca_key_pem).unwrap();
        let ca = CertificateAuthority::load(dir.path()).unwrap();

        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec!["evil.example".to_string()]).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "someone-else");
        let csr = params.serialize_request(&key).unwrap().pem().unwrap();
        let csr = CertificateAuthority::verify_csr(&csr).unwrap();
        let issued = ca.issue_agent(&csr, "agent-1", Duration::days(1)).unwrap();

        let der = pem_der(&issued.pem);
        assert_eq!(common_name(&der).unwrap(), "agent-1");
        assert_eq!(fingerprint(&der), issued.sha256);
    }

    #[test]
    fn garbage_csr_is_refused() {
        assert!(matches!(
            CertificateAuthority::verify_csr(
                "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"
            ),
            Err(CaError::BadCsr(_))
        ));
        assert!(CertificateAuthority::verify_csr("").is_err());
    }

    fn agent_cert(ca: &CertificateAuthority, id: &str) -> Vec<u8> {
        let key = KeyPair::generate().unwrap();
        let csr = CertificateParams::new(Vec::<String>::new())
            .unwrap()
            .serialize_request(&key)
            .unwrap()
            .pem()
            .unwrap();
        let csr = CertificateAuthority::verify_csr(&csr).unwrap();
        pem_der(&ca.issue_agent(&csr, id, Duration::days(1)).unwrap().pem)
    }

    #[test]
    fn a_rotation_trusts_both_cas_until_the_overlap_ends_then_only_the_new_one() {
        let dir = tempfile::tempdir().unwrap();
        let material = create("Test", &["localhost".into()]).unwrap();
        for (name, text) in [
            ("ca.pem", &material.ca_cert_pem),
            ("ca.key", &material.ca_key_pem),
            ("server.pem", &material.server_cert_pem),
            ("server.key", &material.server_key_pem),
        ] {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        let old = CertificateAuthority::load(dir.path()).unwrap();
        let old_leaf = agent_cert(&old, "a1");
        assert!(old.issued_server_certificate(dir.path()).unwrap());

        let rotation = rotate(dir.path(), Duration::seconds(60), 1_000_000).unwrap();
        assert_eq!(rotation.previous_retires_at_ms, 1_060_000);
        assert!(matches!(
            rotate(dir.path(), Duration::seconds(60), 1_000_001),
            Err(CaError::RotationInProgress(_))
        ));
        let new = CertificateAuthority::load(dir.path()).unwrap();
        let new_leaf = agent_cert(&new, "a1");
        assert_eq!(
            new.trust_bundle_pem(1_000_000)
                .matches("BEGIN CERTIFICATE")
                .count(),
            2
        );
        assert_eq!(
            new.trust_bundle_pem(1_060_000)
                .matches("BEGIN CERTIFICATE")
                .count(),
            1
        );
        assert!(
            new.trust_bundle_pem(1_000_000)
                .starts_with(&new.trust_bundle_pem(1_060_000))
        );
        new.trusts_issuer_of(&old_leaf, 1_059_999).unwrap();
        new.trusts_issuer_of(&new_leaf, 1_059_999).unwrap();
        assert!(matches!(
            new.trusts_issuer_of(&old_leaf, 1_060_000),
            Err(CaError::Retired)
        ));
        new.trusts_issuer_of(&new_leaf, i64::MAX).unwrap();
        // The server certificate stays on the previous CA until renewed.
        assert!(!new.issued_server_certificate(dir.path()).unwrap());
        renew_server_certificate(dir.path(), &["localhost".into()]).unwrap();
        assert!(new.issued_server_certificate(dir.path()).unwrap());

        retire(dir.path()).unwrap();
        assert!(matches!(retire(dir.path()), Err(CaError::NoRotation)));
        let retired = CertificateAuthority::load(dir.path()).unwrap();
        assert_eq!(
            retired.ca_cert_pem().matches("BEGIN CERTIFICATE").count(),
            1
        );
        assert!(matches!(
            retired.trusts_issuer_of(&old_leaf, 0),
            Err(CaError::Retired)
        ));
        retired.trusts_issuer_of(&new_leaf, 0).unwrap();
    }

    fn pem_der(pem: &str) -> Vec<u8> {
        let (_, pem) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).unwrap();
        pem.contents
    }
}
