//! The collector's certificate authority (rcgen): creates the CA and the server certificate at
//! `init`, and signs agents' CSRs at enrollment. Agent certificates carry the agent id as their
//! subject CN and are good for client authentication only.

use std::path::Path;

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
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.distinguished_name = rcgen::DistinguishedName::new();
    ca_params
        .distinguished_name
        .push(DnType::CommonName, format!("{organisation} Tillsyn CA"));
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    set_validity(&mut ca_params, Duration::days(3650));
    ca_params.serial_number = Some(random_serial());
    let ca_cert = ca_params.self_signed(&ca_key)?;

    let issuer = Issuer::new(ca_params, &ca_key);
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
    let server_cert = server_params.signed_by(&server_key, &issuer)?;

    Ok(CaMaterial {
        ca_cert_pem: ca_cert.pem(),
        ca_key_pem: ca_key.serialize_pem(),
        server_cert_pem: server_cert.pem(),
        server_key_pem: server_key.serialize_pem(),
    })
}

/// A loaded CA able to sign agent certificates.
pub struct CertificateAuthority {
    ca_cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

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
    /// Loads `ca.pem` and `ca.key` from `dir`.
    pub fn load(dir: &Path) -> Result<Self, CaError> {
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read_to_string(&path).map_err(|e| CaError::File {
                path: path.display().to_string(),
                message: e.to_string(),
            })
        };
        let ca_cert_pem = read("ca.pem")?;
        let key = KeyPair::from_pem(&read("ca.key")?).map_err(|e| CaError::File {
            path: dir.join("ca.key").display().to_string(),
            message: e.to_string(),
        })?;
        let issuer = Issuer::from_ca_cert_pem(&ca_cert_pem, key).map_err(|e| CaError::File {
            path: dir.join("ca.pem").display().to_string(),
            message: e.to_string(),
        })?;
        Ok(Self {
            ca_cert_pem,
            issuer,
        })
    }

    /// The CA certificate, PEM.
    pub fn ca_cert_pem(&self) -> &str {
        &self.ca_cert_pem
    }

    /// Checks a CSR's syntax and self-signature without issuing anything.
    pub fn verify_csr(csr_pem: &str) -> Result<CertificateSigningRequestParams, CaError> {
        CertificateSigningRequestParams::from_pem(csr_pem).map_err(CaError::BadCsr)
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

/// SHA-256 of a certificate's DER, lowercase hex.
pub fn fingerprint(der: &[u8]) -> String {
    hex::encode(Sha256::digest(der))
}

/// The subject CN of a DER certificate.
pub fn common_name(der: &[u8]) -> Result<String, CaError> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| CaError::BadCertificate(e.to_string()))?;
    cert.subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map(str::to_string)
        .ok_or_else(|| CaError::BadCertificate("no subject common name".into()))
}

fn set_validity(params: &mut CertificateParams, validity: Duration) {
    // Back-date a little so agents with slightly slow clocks accept fresh certificates; by a
    // tenth of the lifetime at most, so short (test) lifetimes keep their proportions.
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::minutes(5).min(validity / 10);
    params.not_after = now + validity;
}

/// The subject CN a CSR asks for, if it names one as a string.
pub fn csr_common_name(csr: &CertificateSigningRequestParams) -> Option<String> {
    match csr.params.distinguished_name.get(&DnType::CommonName)? {
        rcgen::DnValue::Utf8String(text) => Some(text.clone()),
        rcgen::DnValue::PrintableString(text) => Some(text.as_str().to_string()),
        rcgen::DnValue::Ia5String(text) => Some(text.as_str().to_string()),
        _ => None,
    }
}

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

    fn pem_der(pem: &str) -> Vec<u8> {
        let (_, pem) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).unwrap();
        pem.contents
    }
}
