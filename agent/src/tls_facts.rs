//! The recording TLS client shared by the inventory's listener probe and discovery's TLS
//! sessions: a rustls client configuration whose verifier accepts any certificate but keeps
//! it (we inventory certificates, we do not trust them), and the facts an owner needs from a
//! handshake: version, cipher suite, and the certificate's subject, issuer, expiry and whether
//! it signed itself.
//!
//! It opens no sockets; callers own the connection, its timeouts and its size caps.

use std::sync::{Arc, Mutex};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, CommonState, DigitallySignedStruct, SignatureScheme};
use serde::Serialize;
use x509_parser::prelude::{FromDer, ParsedExtension, X509Certificate};

/// The TLS facts of a service.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TlsFacts {
    /// Negotiated version, e.g. `TLSv1.3`; empty when the handshake did not finish.
    pub version: String,
    /// Negotiated cipher suite, e.g. `TLS13_AES_256_GCM_SHA384`.
    pub cipher: String,
    /// Why the handshake did not finish, when it did not.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub handshake_error: String,
    /// The server's end-entity certificate, when one was sent and parsed.
    pub certificate: Option<CertificateFacts>,
}

/// The parts of a certificate an owner needs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CertificateFacts {
    /// Subject distinguished name (RFC 4514 string).
    pub subject: String,
    /// Issuer distinguished name.
    pub issuer: String,
    /// DNS names and IP addresses from subjectAltName.
    pub subject_alt_names: Vec<String>,
    /// End of validity, seconds since the Unix epoch.
    pub not_after_unix: i64,
    /// End of validity as text.
    pub not_after: String,
    /// Subject equals issuer and the key identifiers (if any) match: signed by itself.
    pub self_signed: bool,
}

/// A client configuration plus the slot its verifier records the server's certificate in.
/// One per connection: the slot holds the certificate of the last handshake.
#[derive(Debug)]
pub struct RecordingClient {
    config: Arc<ClientConfig>,
    seen: Arc<Mutex<Option<Vec<u8>>>>,
}

impl RecordingClient {
    /// A client offering TLS 1.2 and 1.3 (rustls speaks nothing older) with the ring provider.
    pub fn new() -> Result<Self, rustls::Error> {
        let seen = Arc::new(Mutex::new(None));
        Ok(Self {
            config: Arc::new(client_config(Arc::clone(&seen))?),
            seen,
        })
    }

    /// The configuration to start a connection with.
    pub fn config(&self) -> Arc<ClientConfig> {
        Arc::clone(&self.config)
    }

    /// The end-entity certificate the server sent, parsed; `None` if none arrived.
    pub fn certificate(&self) -> Option<Result<CertificateFacts, String>> {
        self.seen
            .lock()
            .ok()
            .and_then(|slot| slot.as_deref().map(parse_certificate))
    }

    /// The facts of a finished handshake.
    pub fn finished(&self, connection: &CommonState) -> TlsFacts {
        TlsFacts {
            version: connection
                .protocol_version()
                .map(version_name)
                .unwrap_or_default(),
            cipher: connection
                .negotiated_cipher_suite()
                .map(|s| format!("{:?}", s.suite()))
                .unwrap_or_default(),
            handshake_error: String::new(),
            certificate: self.certificate().and_then(Result::ok),
        }
    }

    /// The facts of a handshake that failed with `error` (the certificate, if it came first).
    pub fn failed(&self, error: impl std::fmt::Display) -> TlsFacts {
        TlsFacts {
            handshake_error: error.to_string(),
            certificate: self.certificate().and_then(Result::ok),
            ..TlsFacts::default()
        }
    }
}

/// `TLSv1.2` for rustls' `TLSv1_2`, the form OpenSSL and our reports use.
pub fn version_name(version: rustls::ProtocolVersion) -> String {
    format!("{version:?}").replace('_', ".")
}

fn client_config(seen: Arc<Mutex<Option<Vec<u8>>>>) -> Result<ClientConfig, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Arc::new(RecordingVerifier {
        provider: Arc::clone(&provider),
        seen,
    });
    Ok(ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth())
}

/// Accepts any certificate, because the probe inventories certificates rather than trusting
/// them, and keeps the end-entity certificate for [`parse_certificate`]. Handshake signatures
/// are still checked, so the facts come from a server that holds the certificate's key.
#[derive(Debug)]
struct RecordingVerifier {
    provider: Arc<CryptoProvider>,
    seen: Arc<Mutex<Option<Vec<u8>>>>,
}

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Ok(mut slot) = self.seen.lock() {
            *slot = Some(end_entity.to_vec());
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Parses a DER certificate into the facts an owner needs.
pub fn parse_certificate(der: &[u8]) -> Result<CertificateFacts, String> {
    let (_, cert) = X509Certificate::from_der(der).map_err(|e| e.to_string())?;
    let mut subject_key = None;
    let mut authority_key = None;
    let mut subject_alt_names = Vec::new();
    for extension in cert.iter_extensions() {
        match extension.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(id) => subject_key = Some(id.0),
            ParsedExtension::AuthorityKeyIdentifier(aki) => {
                authority_key = aki.key_identifier.as_ref().map(|id| id.0);
            }
            ParsedExtension::SubjectAlternativeName(san) => {
                subject_alt_names.extend(san.general_names.iter().map(|n| gate(&n.to_string())));
            }
            _ => {}
        }
    }
    let same_name = cert.subject().as_raw() == cert.issuer().as_raw();
    let keys_agree = match (subject_key, authority_key) {
        (Some(s), Some(a)) => s == a,
        _ => true,
    };
    let not_after = &cert.validity().not_after;
    Ok(CertificateFacts {
        subject: gate(&cert.subject().to_string()),
        issuer: gate(&cert.issuer().to_string()),
        subject_alt_names,
        not_after_unix: not_after.timestamp(),
        not_after: not_after.to_string(),
        self_signed: same_name && keys_agree,
    })
}

/// Names in a certificate are the peer's choice: control and bidi characters (a right-to-left
/// override hiding a file extension) are escaped visibly by the shared text gate.
fn gate(name: &str) -> String {
    tillsyn_text::sanitise(name).text.into_owned()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // In tests an unwrap that fails is the failing assertion.
mod tests {
    use super::*;

    #[test]
    fn certificate_facts_from_rcgen() {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["ward4.example".into()]).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "ward4.example");
        let cert = params.self_signed(&key).unwrap();
        let facts = parse_certificate(cert.der()).unwrap();
        assert_eq!(facts.subject, "CN=ward4.example");
        assert!(facts.self_signed);
        assert_eq!(facts.subject_alt_names, ["DNSName(ward4.example)"]);
        assert!(facts.not_after_unix > 0);
        assert!(parse_certificate(b"\x30\x03garbage").is_err());
        assert!(parse_certificate(&cert.der()[..100]).is_err());
    }
}
