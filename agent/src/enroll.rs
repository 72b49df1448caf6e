//! Enrollment: the agent makes its own key pair, sends a CSR with the operator's token, and
//! stores the certificate the collector signs. The private key never leaves this host.
//!
//! Built for images and configuration management: the collector, token and CA can come from
//! the command line, the environment (`TILLSYN_COLLECTOR`, `TILLSYN_ENROLL_TOKEN`,
//! `TILLSYN_CA` — a file or the PEM itself, `TILLSYN_LABELS`) or the environment file
//! (`/etc/default/tillsyn-agent`, systemd `EnvironmentFile` syntax), in that order. Enrolling
//! is idempotent: an agent enrolled on this host with an unexpired certificate does nothing. A
//! state directory enrolled on another host (a cloned image) or with an expired certificate is
//! enrolled anew when a token is at hand.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use tillsyn_proto::v1::{EnrollRequest, enrollment_client::EnrollmentClient};

use crate::client::{self, ClientError};
use crate::state::{self, AgentConfig, AgentDir, StateError};

/// The environment file read when a setting is not on the command line or in the environment.
#[cfg(not(windows))]
pub fn default_env_file() -> PathBuf {
    PathBuf::from("/etc/default/tillsyn-agent")
}

/// The environment file read when a setting is not on the command line or in the environment:
/// `%ProgramData%\Tillsyn\agent.env`, beside the state directory and under the same ACL.
#[cfg(windows)]
pub fn default_env_file() -> PathBuf {
    state::windows_data_dir().join("agent.env")
}

/// Settings as given on the command line; unset ones are looked up in the environment, then
/// in the environment file.
#[derive(Clone, Debug, Default)]
pub struct EnrollArgs {
    /// Collector URL, `https://host:port`.
    pub collector: Option<String>,
    /// The enrollment token.
    pub token: Option<String>,
    /// The collector's CA: a file, or the PEM text itself.
    pub ca: Option<String>,
    /// Labels the agent claims (the collector's token labels win over them).
    pub labels: Vec<(String, String)>,
    /// Seconds between reports in `run` mode.
    pub interval_seconds: u64,
    /// Enroll again even if this host is enrolled already.
    pub force: bool,
    /// The environment file (default [`default_env_file`]); a missing file is not an error.
    pub env_file: PathBuf,
    /// Where the host identity is read ([`crate::host_identity`]); `/` outside tests.
    pub root: PathBuf,
}

/// What `enroll` needs, resolved.
#[derive(Clone, Debug)]
pub struct EnrollOptions {
    /// Collector URL, `https://host:port`.
    pub collector: String,
    /// The enrollment token.
    pub token: String,
    /// The collector's CA certificate, PEM.
    pub ca_pem: String,
    /// Labels for system link rules (claimed by the agent).
    pub labels: HashMap<String, String>,
    /// Seconds between reports in `run` mode.
    pub interval_seconds: u64,
    /// Replace an existing enrollment.
    pub force: bool,
    /// Where the host identity is read.
    pub root: PathBuf,
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
    /// A setting is given nowhere.
    #[error("{what} is not set: pass {flag}, or set {var} in the environment or in {}", env_file.display())]
    Missing {
        /// What is missing.
        what: &'static str,
        /// The command-line flag.
        flag: &'static str,
        /// The variable.
        var: &'static str,
        /// The environment file consulted.
        env_file: PathBuf,
    },
    /// The environment file exists but cannot be read or parsed.
    #[error("{}: {message}", path.display())]
    EnvFile {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the line where known.
        message: String,
    },
    /// A setting has a value that cannot be used.
    #[error("{name}: {message}")]
    Invalid {
        /// The variable or flag.
        name: &'static str,
        /// What is wrong.
        message: String,
    },
}

/// What `enroll` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EnrollOutcome {
    /// A new certificate was obtained; the agent id.
    Enrolled(String),
    /// This host was enrolled already with an unexpired certificate; nothing changed.
    AlreadyEnrolled(String),
}

/// Why an existing enrollment is replaced without `--force`, or `None` to keep it.
fn stale_enrollment(dir: &AgentDir, existing: &AgentConfig, host_id: &str) -> Option<String> {
    if existing.host_id.as_deref().is_some_and(|id| id != host_id) {
        return Some(format!(
            "{} was enrolled as agent {} on another host (its machine identity differs): a copied state directory",
            dir.root().display(),
            existing.agent_id
        ));
    }
    match crate::renew::certificate_times_at(&dir.cert_path()) {
        Ok(times) if times.not_after_ms <= crate::inventory::now_unix_ms() => Some(format!(
            "the certificate of agent {} expired at {}",
            existing.agent_id,
            crate::renew::format_ms(times.not_after_ms)
        )),
        Ok(_) => None,
        Err(error) => Some(format!(
            "the certificate of agent {} is unusable: {error}",
            existing.agent_id
        )),
    }
}

/// The agent id when `dir` holds an enrollment of this host with a certificate that has not
/// expired (so `enroll` has nothing to do); otherwise logs why it would be replaced.
pub fn current_enrollment(dir: &AgentDir, root: &Path) -> Option<String> {
    let existing = dir.load_config().ok()?;
    if let Err(error) = dir.recover_identity() {
        tracing::warn!(%error, "unfinished certificate swap");
    }
    match stale_enrollment(dir, &existing, &crate::host_identity::host_id(root)) {
        None => Some(existing.agent_id),
        Some(reason) => {
            tracing::warn!(%reason, "enrolling this host anew");
            None
        }
    }
}

/// Looks up unset settings in the environment and the environment file. The file is read
/// only when a required setting is in neither the flags nor the environment: under systemd
/// the unit's `EnvironmentFile=` has set them, and the file itself is root's (0600).
pub fn resolve(args: &EnrollArgs) -> Result<EnrollOptions, EnrollError> {
    let from_env = |var: &str| std::env::var(var).ok().filter(|v| !v.trim().is_empty());
    // An empty flag is an unset one: an installer passes `--token ""` for a property not given.
    let flag = |value: &Option<String>| value.clone().filter(|v| !v.trim().is_empty());
    let complete = flag(&args.collector).is_some() || from_env("TILLSYN_COLLECTOR").is_some();
    let complete = complete
        && (flag(&args.token).is_some() || from_env("TILLSYN_ENROLL_TOKEN").is_some())
        && (flag(&args.ca).is_some() || from_env("TILLSYN_CA").is_some());
    let file = if complete {
        HashMap::new()
    } else {
        read_env_file(&args.env_file)?
    };
    let lookup = |var: &str| {
        from_env(var).or_else(|| file.get(var).cloned().filter(|v| !v.trim().is_empty()))
    };
    let missing = |what, flag, var| EnrollError::Missing {
        what,
        flag,
        var,
        env_file: args.env_file.clone(),
    };
    let collector = flag(&args.collector)
        .or_else(|| lookup("TILLSYN_COLLECTOR"))
        .ok_or_else(|| missing("the collector URL", "--collector", "TILLSYN_COLLECTOR"))?;
    let token = flag(&args.token)
        .or_else(|| lookup("TILLSYN_ENROLL_TOKEN"))
        .ok_or_else(|| missing("the enrollment token", "--token", "TILLSYN_ENROLL_TOKEN"))?;
    let ca = flag(&args.ca)
        .or_else(|| lookup("TILLSYN_CA"))
        .ok_or_else(|| missing("the collector's CA certificate", "--ca", "TILLSYN_CA"))?;
    let ca_pem = if ca.trim_start().starts_with("-----BEGIN") {
        ca
    } else {
        state::read_text(Path::new(ca.trim()))?
    };
    if !ca_pem.contains("-----BEGIN CERTIFICATE-----") {
        return Err(EnrollError::Invalid {
            name: "TILLSYN_CA",
            message: "holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into(),
        });
    }
    let mut labels: HashMap<String, String> = HashMap::new();
    if let Some(text) = lookup("TILLSYN_LABELS") {
        for item in text.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (key, value) = item
                .split_once('=')
                .filter(|(k, _)| !k.is_empty())
                .ok_or_else(|| EnrollError::Invalid {
                    name: "TILLSYN_LABELS",
                    message: format!("{item:?} must look like KEY=VALUE"),
                })?;
            labels.insert(key.to_string(), value.to_string());
        }
    }
    // Flags win over the environment.
    labels.extend(args.labels.iter().cloned());
    Ok(EnrollOptions {
        collector,
        token,
        ca_pem,
        labels,
        interval_seconds: args.interval_seconds,
        force: args.force,
        root: args.root.clone(),
    })
}

/// Reads `KEY=VALUE` lines (comments, blank lines, `export` and quotes as a shell would); a
/// missing file is empty.
fn read_env_file(path: &Path) -> Result<HashMap<String, String>, EnrollError> {
    let iter = match dotenvy::from_path_iter(path) {
        Ok(iter) => iter,
        Err(dotenvy::Error::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(HashMap::new());
        }
        Err(e) => {
            return Err(EnrollError::EnvFile {
                path: path.to_path_buf(),
                message: e.to_string(),
            });
        }
    };
    iter.map(|item| {
        item.map_err(|e| EnrollError::EnvFile {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
    })
    .collect()
}

/// Enrolls the agent whose state lives in `dir`, unless this host is enrolled already.
pub async fn enroll(dir: &AgentDir, options: &EnrollOptions) -> Result<EnrollOutcome, EnrollError> {
    let host_id = crate::host_identity::host_id(&options.root);
    if !options.force
        && let Some(agent_id) = current_enrollment(dir, &options.root)
    {
        return Ok(EnrollOutcome::AlreadyEnrolled(agent_id));
    }
    let hostname = sysinfo::System::host_name().unwrap_or_else(|| "unknown".into());

    let key = rcgen::KeyPair::generate()?;
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, hostname.clone());
    let csr_pem = params.serialize_request(&key)?.pem()?;

    let channel = client::connect(&options.collector, &options.ca_pem, None).await?;
    let response = EnrollmentClient::new(channel)
        .enroll(EnrollRequest {
            token: options.token.trim().to_string(),
            csr_pem,
            hostname,
            agent_version: crate::VERSION.to_string(),
            labels: options.labels.clone(),
            host_id: host_id.clone(),
        })
        .await
        .map_err(EnrollError::Refused)?
        .into_inner();

    dir.create()?;
    // A re-enrollment must not inherit the previous identity's delta base or a half swap.
    dir.recover_identity()?;
    dir.install_identity(&response.certificate_pem, &key.serialize_pem())?;
    let ca_pem = if response.ca_certificate_pem.is_empty() {
        options.ca_pem.clone()
    } else {
        response.ca_certificate_pem.clone()
    };
    state::write_file(&dir.ca_path(), ca_pem.as_bytes(), false)?;
    dir.save_config(&AgentConfig {
        collector: options.collector.clone(),
        agent_id: response.agent_id.clone(),
        interval_seconds: options.interval_seconds,
        spool: crate::spool::SpoolConfig::default(),
        delta: crate::delta::DeltaConfig::default(),
        host_id: Some(host_id),
    })?;
    tracing::info!(agent_id = %response.agent_id, "enrolled");
    Ok(EnrollOutcome::Enrolled(response.agent_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(env_file: &Path) -> EnrollArgs {
        EnrollArgs {
            interval_seconds: 60,
            env_file: env_file.to_path_buf(),
            root: PathBuf::from("/"),
            ..EnrollArgs::default()
        }
    }

    const PEM: &str = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";

    #[test]
    fn settings_come_from_flags_then_the_environment_file() {
        let tmp = tempfile::tempdir().unwrap();
        let env_file = tmp.path().join("tillsyn-agent");
        let ca = tmp.path().join("ca.pem");
        std::fs::write(&ca, PEM).unwrap();
        std::fs::write(
            &env_file,
            format!(
                "# written by the package\nTILLSYN_COLLECTOR=https://collector.example:7443\nexport TILLSYN_ENROLL_TOKEN=\"tsy_abc\"\nTILLSYN_CA={}\nTILLSYN_LABELS=\"site=ward4, role=db\"\n",
                ca.display()
            ),
        )
        .unwrap();
        let resolved = resolve(&args(&env_file)).unwrap();
        assert_eq!(resolved.collector, "https://collector.example:7443");
        assert_eq!(resolved.token, "tsy_abc");
        assert_eq!(resolved.ca_pem, PEM);
        assert_eq!(resolved.labels["site"], "ward4");
        assert_eq!(resolved.labels["role"], "db");

        let mut with_flags = args(&env_file);
        with_flags.token = Some("tsy_flag".into());
        with_flags.ca = Some(PEM.into());
        with_flags.labels = vec![("site".into(), "ward5".into())];
        let resolved = resolve(&with_flags).unwrap();
        assert_eq!(resolved.token, "tsy_flag");
        assert_eq!(resolved.labels["site"], "ward5");
    }

    #[test]
    fn a_missing_setting_names_the_flag_the_variable_and_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        let env_file = tmp.path().join("absent");
        let mut given = args(&env_file);
        given.collector = Some("https://c:1".into());
        given.ca = Some(PEM.into());
        let err = resolve(&given).unwrap_err().to_string();
        assert!(err.contains("--token"), "{err}");
        assert!(err.contains("TILLSYN_ENROLL_TOKEN"), "{err}");
        assert!(err.contains("absent"), "{err}");

        // An installer passes an empty property as an empty flag: missing, not a token "".
        given.token = Some("  ".into());
        let err = resolve(&given).unwrap_err().to_string();
        assert!(err.contains("--token"), "{err}");

        given.token = Some("t".into());
        given.ca = Some(tmp.path().join("nope.pem").display().to_string());
        let err = resolve(&given).unwrap_err().to_string();
        assert!(err.contains("nope.pem"), "{err}");

        // The file is read when a required setting is missing from flags and environment.
        std::fs::write(
            &env_file,
            "TILLSYN_COLLECTOR=https://c:1\nTILLSYN_LABELS=nokey\n",
        )
        .unwrap();
        given.ca = Some(PEM.into());
        given.collector = None;
        let err = resolve(&given).unwrap_err().to_string();
        assert!(err.contains("TILLSYN_LABELS"), "{err}");
    }
}
