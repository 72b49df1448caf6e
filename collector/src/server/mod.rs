//! The gRPC server: tonic over rustls. Client certificates are verified against the collector
//! CA when presented and required by every RPC except `Enroll` (checked per call in
//! [`identity`]), so one port serves both enrollment and reporting.

pub mod enrollment;
pub mod identity;
pub mod inventory;
pub mod jobs;

use std::future::Future;
use std::sync::Arc;

use tillsyn_proto::v1::{
    enrollment_server::EnrollmentServer, inventory_server::InventoryServer, jobs_server::JobsServer,
};
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};

use crate::ca::CertificateAuthority;
use crate::config::{CollectorConfig, CollectorDir, ConfigError};
use crate::store::Store;

/// Errors starting or running the server.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Configuration or key material missing.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// CA could not be loaded.
    #[error(transparent)]
    Ca(#[from] crate::ca::CaError),
    /// The transport failed.
    #[error("gRPC server: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// Everything the RPC handlers share.
#[derive(Clone)]
pub struct ServerState {
    /// Storage.
    pub store: Arc<dyn Store>,
    /// The CA that signs agent certificates.
    pub ca: Arc<CertificateAuthority>,
    /// Validated configuration.
    pub config: CollectorConfig,
}

/// Serves on an already bound `listener` until `shutdown` resolves.
pub async fn serve(
    dir: &CollectorDir,
    state: ServerState,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let tls = ServerTlsConfig::new()
        .identity(Identity::from_pem(
            dir.read(&dir.server_cert_path())?,
            dir.read(&dir.server_key_path())?,
        ))
        .client_ca_root(Certificate::from_pem(state.ca.ca_cert_pem()))
        // Optional at the handshake so `Enroll` works without one; every other RPC demands it.
        .client_auth_optional(true)
        .timeout(std::time::Duration::from_secs(10));
    let limit = state.config.max_message_bytes;
    let enrollment = EnrollmentServer::new(enrollment::EnrollmentService::new(state.clone()))
        .max_decoding_message_size(64 * 1024);
    let jobs =
        JobsServer::new(jobs::JobsService::new(state.clone())).max_decoding_message_size(64 * 1024);
    let inventory = InventoryServer::new(inventory::InventoryService::new(state))
        .max_decoding_message_size(limit);
    Server::builder()
        .tls_config(tls)?
        .timeout(std::time::Duration::from_mins(2))
        .add_service(enrollment)
        .add_service(inventory)
        .add_service(jobs)
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown)
        .await?;
    Ok(())
}

/// Maps a store failure to an opaque status; the detail goes to the log only. A database that
/// cannot be reached is UNAVAILABLE (agents keep their spool and retry); nothing was stored.
pub(crate) fn internal(error: &crate::store::StoreError) -> tonic::Status {
    if error.is_unavailable() {
        tracing::warn!(%error, "store unavailable");
        return tonic::Status::unavailable("storage unavailable; retry later");
    }
    tracing::error!(%error, "store failure");
    tonic::Status::internal("internal storage error")
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    tillsyn_agent::inventory::now_unix_ms()
}
