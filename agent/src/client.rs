//! The gRPC channel to the collector: server-authenticated TLS for enrollment, mutual TLS for
//! everything else. The collector's CA is the only trust anchor; system roots are not used.

use std::time::Duration;

use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

/// Errors opening a channel.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The collector URL does not parse.
    #[error("collector URL {url:?}: {message}")]
    Url {
        /// The URL given.
        url: String,
        /// Why it was refused.
        message: String,
    },
    /// TLS set-up or the connection failed.
    #[error("connecting to {url}: {source}")]
    Connect {
        /// The URL.
        url: String,
        /// The transport error.
        source: tonic::transport::Error,
    },
}

/// Timeout for connecting; a collector that is away must not hang the agent.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Timeout for a single RPC.
const REQUEST_TIMEOUT: Duration = Duration::from_mins(1);

/// Opens a channel that authenticates the collector with `ca_pem` and, when `identity` is
/// given, presents the agent's client certificate.
pub async fn connect(
    url: &str,
    ca_pem: &str,
    identity: Option<(&str, &str)>,
) -> Result<Channel, ClientError> {
    if !url.starts_with("https://") {
        return Err(ClientError::Url {
            url: url.to_string(),
            message: "must start with https:// (the collector speaks TLS only)".into(),
        });
    }
    let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca_pem));
    if let Some((cert_pem, key_pem)) = identity {
        tls = tls.identity(Identity::from_pem(cert_pem, key_pem));
    }
    let connect_err = |source| ClientError::Connect {
        url: url.to_string(),
        source,
    };
    let endpoint = Endpoint::from_shared(url.to_string())
        .map_err(|e| ClientError::Url {
            url: url.to_string(),
            message: e.to_string(),
        })?
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .tls_config(tls)
        .map_err(connect_err)?;
    endpoint.connect().await.map_err(connect_err)
}
