//! One-time enrollment: the agent makes its own key pair, sends a CSR with the operator's token,
//! and stores the certificate the collector signs. The private key never leaves this host.

use std::collections::HashMap;
use std::path::PathBuf;

use tillsyn_proto::v1::{EnrollRequest, enrollment_client::EnrollmentClient};

use crate::client::{self, ClientError};
use crate::state::{self, AgentConfig, AgentDir, StateError};

/// What `enroll` needs.
#[derive(Clone, Debug)]
pub struct EnrollOptions {
    /// Collector URL, `https://host:port`.
    pub collector: String,
    /// The enrollment token.
    pub token: String,
    /// The collector's CA certificate file (`D/ca.pem`).
    pub ca_file: PathBuf,
    /// Labels for system link rules.
    pub labels: HashMap<String, String>,
    /// Seconds between reports in `run` mode.
    pub interval_seconds: u64,
    /// Replace an existing enrollment.
    pub force: bool,
}

/// Errors of enrollment.
#[derive(Debug, thiserror::Error)]
pub enum EnrollError {
    /// State directory problem.
    #[error(transparent)]
    State(#[from] StateError),
    /// Key or CSR generation failed.
    #[error("generating the agent key or CSR: {0}")]
    Key(#[from] rcgen::Error),
    /// No channel to the collector.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The collector refused.
    #[error("the collector refused enrollment: {}", .0.message())]
    Refused(tonic::Status),
    /// Already enrolled.
    #[error("{0}: already enrolled as agent {1}; pass --force to enroll again")]
    AlreadyEnrolled(PathBuf, String),
}

/// Enrolls the agent whose state lives in `dir`; returns the assigned agent id.
pub async fn enroll(dir: &AgentDir, options: &EnrollOptions) -> Result<String, EnrollError> {
    if !options.force
        && let Ok(existing) = dir.load_config()
    {
        return Err(EnrollError::AlreadyEnrolled(
            dir.config_path(),
            existing.agent_id,
        ));
    }
    let ca_pem = state::read_text(&options.ca_file)?;
    let hostname = sysinfo::System::host_name().unwrap_or_else(|| "unknown".into());

    let key = rcgen::KeyPair::generate()?;
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, hostname.clone());
    let csr_pem = params.serialize_request(&key)?.pem()?;

    let channel = client::connect(&options.collector, &ca_pem, None).await?;
    let response = EnrollmentClient::new(channel)
        .enroll(EnrollRequest {
            token: options.token.trim().to_string(),
            csr_pem,
            hostname,
            agent_version: crate::VERSION.to_string(),
            labels: options.labels.clone(),
        })
        .await
        .map_err(EnrollError::Refused)?
        .into_inner();

    dir.create()?;
    state::write_file(&dir.key_path(), key.serialize_pem().as_bytes(), true)?;
    state::write_file(&dir.cert_path(), response.certificate_pem.as_bytes(), false)?;
    state::write_file(&dir.ca_path(), ca_pem.as_bytes(), false)?;
    dir.save_config(&AgentConfig {
        collector: options.collector.clone(),
        agent_id: response.agent_id.clone(),
        interval_seconds: options.interval_seconds,
        spool: crate::spool::SpoolConfig::default(),
        delta: crate::delta::DeltaConfig::default(),
    })?;
    tracing::info!(agent_id = %response.agent_id, "enrolled");
    Ok(response.agent_id)
}
