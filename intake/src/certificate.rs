//! What enrollment and the handshake read from an agent's certificate material: a certificate
//! signing request (PEM) checked for syntax and self-signature, and the subject common name of
//! a DER certificate. Parsing only; issuing and trust decisions stay with the collector's CA.

use rcgen::{CertificateSigningRequestParams, DnType, DnValue};

/// Certificate material from the wire that does not parse.
#[derive(Debug, thiserror::Error)]
pub enum CertificateError {
    /// The CSR could not be parsed or its signature is wrong.
    #[error("the certificate signing request is not valid: {0}")]
    BadCsr(rcgen::Error),
    /// A certificate does not parse, or lacks what is asked of it.
    #[error("certificate does not parse: {0}")]
    BadCertificate(String),
}

/// Checks a CSR's syntax and self-signature without issuing anything.
pub fn verify_csr(csr_pem: &str) -> Result<CertificateSigningRequestParams, CertificateError> {
    CertificateSigningRequestParams::from_pem(csr_pem).map_err(CertificateError::BadCsr)
}

/// The subject CN of a DER certificate.
pub fn common_name(der: &[u8]) -> Result<String, CertificateError> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| CertificateError::BadCertificate(e.to_string()))?;
    cert.subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map(str::to_string)
        .ok_or_else(|| CertificateError::BadCertificate("no subject common name".into()))
}

/// The subject CN a CSR asks for, if it names one as a string.
pub fn csr_common_name(csr: &CertificateSigningRequestParams) -> Option<String> {
    match csr.params.distinguished_name.get(&DnType::CommonName)? {
        DnValue::Utf8String(text) => Some(text.clone()),
        DnValue::PrintableString(text) => Some(text.as_str().to_string()),
        DnValue::Ia5String(text) => Some(text.as_str().to_string()),
        _ => None,
    }
}
