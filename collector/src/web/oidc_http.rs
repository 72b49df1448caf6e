//! The HTTP client the OIDC relying party talks to the provider with (discovery, JWKS, token
//! endpoint): one HTTP/1.1 request per connection over tokio-rustls (ring), trusting only the
//! CA certificates of `[web.oidc] ca_file`. It refuses plain `http://`, never follows
//! redirects, and reads at most [`MAX_RESPONSE_BYTES`] of a response.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt as _, Full, Limited};
use hyper_util::rt::TokioIo;
use openidconnect::{HttpRequest, HttpResponse};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

use super::tls::TlsError;

/// Largest response body read from the provider (bytes).
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;
/// Connect + TLS + request + response, each request (a provider that hangs fails the sign-in).
const TIMEOUT: Duration = Duration::from_secs(15);

/// Why a request to the provider failed.
#[derive(Debug, thiserror::Error)]
pub enum IdpHttpError {
    /// The URL is not `https://host[:port]/…`.
    #[error("{0}: only https:// URLs with a host are fetched")]
    Url(String),
    /// Connecting, TLS, or the HTTP exchange failed.
    #[error("{url}: {problem}")]
    Exchange {
        /// The URL asked for.
        url: String,
        /// What went wrong.
        problem: String,
    },
}

/// The rustls client configuration trusting only the CA certificates in `ca_file`.
pub fn client_config(ca_file: &Path) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let pem_err = |e: &dyn std::fmt::Display| TlsError::Pem {
        path: ca_file.display().to_string(),
        problem: e.to_string(),
    };
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca_file).map_err(|e| pem_err(&e))? {
        let cert = cert.map_err(|e| pem_err(&e))?;
        // A bundle may hold certificates rustls cannot use as anchors; the others still count.
        let _ = roots.add(cert);
    }
    if roots.is_empty() {
        return Err(pem_err(&"no usable CA certificate in the file"));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Sends `request` and returns the whole response.
pub async fn send(
    tls: Arc<rustls::ClientConfig>,
    request: HttpRequest,
) -> Result<HttpResponse, IdpHttpError> {
    let url = request.uri().to_string();
    match tokio::time::timeout(TIMEOUT, exchange(tls, request)).await {
        Ok(result) => result,
        Err(_) => Err(IdpHttpError::Exchange {
            url,
            problem: format!("no answer within {} s", TIMEOUT.as_secs()),
        }),
    }
}

async fn exchange(
    tls: Arc<rustls::ClientConfig>,
    request: HttpRequest,
) -> Result<HttpResponse, IdpHttpError> {
    let uri = request.uri().clone();
    let url = uri.to_string();
    let fail = |problem: String| IdpHttpError::Exchange {
        url: url.clone(),
        problem,
    };
    let (Some("https"), Some(host)) = (uri.scheme_str(), uri.host()) else {
        return Err(IdpHttpError::Url(url));
    };
    let port = uri.port_u16().unwrap_or(443);
    let bare = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let server_name = ServerName::try_from(bare.clone()).map_err(|e| fail(e.to_string()))?;
    let tcp = tokio::net::TcpStream::connect((bare.as_str(), port))
        .await
        .map_err(|e| fail(format!("connect: {e}")))?;
    let stream = tokio_rustls::TlsConnector::from(tls)
        .connect(server_name, tcp)
        .await
        .map_err(|e| fail(format!("TLS: {e}")))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| fail(format!("HTTP: {e}")))?;
    let driver = tokio::spawn(connection);

    let (mut parts, body) = request.into_parts();
    // HTTP/1.1 over a fresh connection: origin-form target and a Host header.
    let authority = uri
        .authority()
        .map_or_else(|| host.to_string(), ToString::to_string);
    parts.uri = uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .parse()
        .map_err(|e: hyper::http::uri::InvalidUri| fail(e.to_string()))?;
    parts.headers.insert(
        hyper::header::HOST,
        hyper::header::HeaderValue::from_str(&authority).map_err(|e| fail(e.to_string()))?,
    );
    let response = sender
        .send_request(hyper::Request::from_parts(
            parts,
            Full::new(hyper::body::Bytes::from(body)),
        ))
        .await
        .map_err(|e| fail(format!("HTTP: {e}")))?;
    let (parts, body) = response.into_parts();
    let body = Limited::new(body, MAX_RESPONSE_BYTES)
        .collect()
        .await
        .map_err(|e| fail(format!("reading the answer: {e}")))?
        .to_bytes()
        .to_vec();
    driver.abort();
    Ok(HttpResponse::from_parts(parts, body))
}
