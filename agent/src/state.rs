//! The agent's state directory (`--dir`): `agent.toml`, `agent.key` (0600), `agent.pem`,
//! `ca.pem`, and `spool/` (whose files [`crate::spool`] owns). This module owns the file names
//! and their permissions; it does not talk to the network.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::spool::SpoolConfig;

/// Errors reading or writing the state directory; each names the file involved.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// `agent.toml` is not valid.
    #[error("{path}: {message}")]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong, with line and column.
        message: String,
    },
    /// The agent has not enrolled yet.
    #[error("{0}: not enrolled yet; run `tillsyn-agent --dir DIR enroll` first")]
    NotEnrolled(PathBuf),
}

/// The state directory unless `--dir` says otherwise: the FHS place for a service's state.
#[cfg(not(windows))]
pub fn default_dir() -> PathBuf {
    PathBuf::from("/var/lib/tillsyn-agent")
}

/// The state directory unless `--dir` says otherwise: `%ProgramData%\Tillsyn\agent`, the
/// machine-wide application data folder (`/var/lib/...` would be `C:\var\lib`).
#[cfg(windows)]
pub fn default_dir() -> PathBuf {
    windows_data_dir().join("agent")
}

/// `%ProgramData%\Tillsyn`: the state directory's parent and the environment file's folder,
/// restricted to SYSTEM and Administrators ([`crate::acl`]). The folder comes from the Known
/// Folders API (FOLDERID_ProgramData), not the environment, which a service may see otherwise
/// (wine gives services `C:\users\Public`); `C:\ProgramData` if the API has no answer.
#[cfg(windows)]
pub fn windows_data_dir() -> PathBuf {
    known_folders::get_known_folder_path(known_folders::KnownFolder::ProgramData)
        .unwrap_or_else(|| PathBuf::from(r"C:\ProgramData"))
        .join("Tillsyn")
}

/// Settings written at enrollment and read by `run`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// Collector URL, e.g. `https://collector.example:7443`.
    pub collector: String,
    /// The id the collector assigned at enrollment (also the certificate's CN).
    pub agent_id: String,
    /// Seconds between reports in `run` mode.
    #[serde(default = "default_interval")]
    pub interval_seconds: u64,
    /// The offline spool's bound and retry pacing (`[spool]`); defaults when absent.
    #[serde(default)]
    pub spool: SpoolConfig,
    /// Delta reports (`[delta]`); defaults when absent.
    #[serde(default)]
    pub delta: crate::delta::DeltaConfig,
    /// The host identity ([`crate::host_identity`]) this directory was enrolled on; a
    /// different one at start-up means the directory was copied to another host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_id: Option<String>,
}

fn default_interval() -> u64 {
    3600
}

/// Paths inside one agent state directory.
#[derive(Clone, Debug)]
pub struct AgentDir {
    root: PathBuf,
}

impl AgentDir {
    /// Wraps `root`; nothing is created until something is written.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `agent.toml`.
    pub fn config_path(&self) -> PathBuf {
        self.root.join("agent.toml")
    }

    /// The private key, PEM, mode 0600.
    pub fn key_path(&self) -> PathBuf {
        self.root.join("agent.key")
    }

    /// The client certificate issued at enrollment.
    pub fn cert_path(&self) -> PathBuf {
        self.root.join("agent.pem")
    }

    /// The collector CA certificate.
    pub fn ca_path(&self) -> PathBuf {
        self.root.join("ca.pem")
    }

    /// Writes a renewed key and certificate so that a crash leaves either the old pair or the
    /// new pair: both are written beside the live files first (`*.next`, synced), then renamed
    /// key first; [`AgentDir::recover_identity`] finishes an interrupted swap.
    pub fn install_identity(&self, cert_pem: &str, key_pem: &str) -> Result<(), StateError> {
        let (cert_next, key_next) = (
            self.next_path(&self.cert_path()),
            self.next_path(&self.key_path()),
        );
        write_file(&key_next, key_pem.as_bytes(), true)?;
        // The certificate is the commit marker: once `agent.pem.next` exists, the pair is whole.
        write_file(&cert_next, cert_pem.as_bytes(), false)?;
        self.recover_identity()
    }

    /// Completes a key/certificate swap interrupted by a crash; a no-op when none is pending.
    pub fn recover_identity(&self) -> Result<(), StateError> {
        let (cert_next, key_next) = (
            self.next_path(&self.cert_path()),
            self.next_path(&self.key_path()),
        );
        if !cert_next.exists() {
            // The new pair was never complete: drop a half-written key, keep the old pair.
            if key_next.exists() {
                fs::remove_file(&key_next).map_err(|source| self.io(&key_next, source))?;
            }
            return Ok(());
        }
        if key_next.exists() {
            fs::rename(&key_next, self.key_path()).map_err(|source| self.io(&key_next, source))?;
        }
        fs::rename(&cert_next, self.cert_path()).map_err(|source| self.io(&cert_next, source))
    }

    fn next_path(&self, live: &Path) -> PathBuf {
        let _ = self;
        let mut name = live.as_os_str().to_owned();
        name.push(".next");
        PathBuf::from(name)
    }

    /// `spool/`: reports waiting for the collector's acknowledgement.
    pub fn spool_path(&self) -> PathBuf {
        self.root.join("spool")
    }

    /// Creates the directory with mode 0700. On Windows it gets an ACL of SYSTEM and
    /// Administrators ([`crate::acl`]), and so does its parent when that is
    /// `%ProgramData%\Tillsyn` (the environment file with the token lives there).
    pub fn create(&self) -> Result<(), StateError> {
        #[cfg(windows)]
        {
            let data_dir = windows_data_dir();
            if self.root.parent() == Some(data_dir.as_path()) {
                fs::create_dir_all(&data_dir).map_err(|source| self.io(&data_dir, source))?;
                restrict_dir(&data_dir).map_err(|source| self.io(&data_dir, source))?;
            }
        }
        fs::create_dir_all(&self.root).map_err(|source| self.io(&self.root, source))?;
        restrict_dir(&self.root).map_err(|source| self.io(&self.root, source))
    }

    /// Reads `agent.toml`.
    pub fn load_config(&self) -> Result<AgentConfig, StateError> {
        let path = self.config_path();
        if !path.exists() {
            return Err(StateError::NotEnrolled(path));
        }
        let text = read_text(&path)?;
        toml::from_str(&text).map_err(|e| StateError::Config {
            path,
            message: e.to_string(),
        })
    }

    /// Writes `agent.toml`.
    pub fn save_config(&self, config: &AgentConfig) -> Result<(), StateError> {
        let text = toml::to_string_pretty(config).map_err(|e| StateError::Config {
            path: self.config_path(),
            message: e.to_string(),
        })?;
        write_file(&self.config_path(), text.as_bytes(), false)
    }

    fn io(&self, path: &Path, source: std::io::Error) -> StateError {
        let _ = self;
        StateError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Reads a UTF-8 file, naming it in the error.
pub fn read_text(path: &Path) -> Result<String, StateError> {
    fs::read_to_string(path).map_err(|source| StateError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes `bytes` atomically (temp file + rename); `secret` files get mode 0600 from creation.
pub fn write_file(path: &Path, bytes: &[u8], secret: bool) -> Result<(), StateError> {
    // Only Unix has a mode to set; elsewhere the directory's ACL decides.
    #[cfg(not(unix))]
    let _ = secret;
    let io = |source| StateError::Io {
        path: path.to_path_buf(),
        source,
    };
    let tmp = path.with_extension("tmp");
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(if secret { 0o600 } else { 0o644 });
    }
    let mut file = options.open(&tmp).map_err(io)?;
    file.write_all(bytes).map_err(io)?;
    file.sync_all().map_err(io)?;
    fs::rename(&tmp, path).map_err(io)
}

#[cfg(unix)]
fn restrict_dir(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(0o700))
}

/// On Windows: SYSTEM and Administrators only ([`crate::acl`]).
#[cfg(windows)]
fn restrict_dir(path: &Path) -> std::io::Result<()> {
    crate::acl::restrict(path)
}

/// Elsewhere the directory keeps what it inherits.
#[cfg(not(any(unix, windows)))]
#[allow(clippy::unnecessary_wraps)] // same signature as the Unix version
fn restrict_dir(_path: &Path) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_round_trips_and_names_the_file_on_error() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = AgentDir::new(tmp.path());
        assert!(matches!(dir.load_config(), Err(StateError::NotEnrolled(_))));
        let config = AgentConfig {
            collector: "https://127.0.0.1:1".into(),
            agent_id: "a".into(),
            interval_seconds: 5,
            spool: SpoolConfig::default(),
            delta: crate::delta::DeltaConfig::default(),
            host_id: Some("h".into()),
        };
        dir.save_config(&config).unwrap();
        assert_eq!(dir.load_config().unwrap(), config);

        fs::write(dir.config_path(), "collector = \"x\"\nbogus = 1\n").unwrap();
        let err = dir.load_config().unwrap_err().to_string();
        assert!(err.contains("agent.toml"), "{err}");
        assert!(err.contains("line 2"), "{err}");
    }

    #[test]
    fn the_deployed_example_config_is_valid_and_shows_the_defaults() {
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/examples/agent.toml");
        let config: AgentConfig = toml::from_str(&read_text(&example).unwrap()).unwrap();
        assert_eq!(config.spool, SpoolConfig::default());
        assert_eq!(config.delta, crate::delta::DeltaConfig::default());
    }

    #[test]
    fn an_interrupted_identity_swap_is_finished_or_dropped_never_mixed() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = AgentDir::new(tmp.path());
        write_file(&dir.cert_path(), b"old cert", false).unwrap();
        write_file(&dir.key_path(), b"old key", true).unwrap();
        // Crash after the key was written but before the certificate: the old pair stays.
        write_file(&tmp.path().join("agent.key.next"), b"new key", true).unwrap();
        dir.recover_identity().unwrap();
        assert_eq!(fs::read(dir.key_path()).unwrap(), b"old key");
        assert!(!tmp.path().join("agent.key.next").exists());
        // Crash after the key was renamed but before the certificate was: roll forward.
        write_file(&tmp.path().join("agent.pem.next"), b"new cert", false).unwrap();
        write_file(&dir.key_path(), b"new key", true).unwrap();
        dir.recover_identity().unwrap();
        assert_eq!(fs::read(dir.cert_path()).unwrap(), b"new cert");
        assert_eq!(fs::read(dir.key_path()).unwrap(), b"new key");
        dir.install_identity("newer cert", "newer key").unwrap();
        assert_eq!(fs::read(dir.cert_path()).unwrap(), b"newer cert");
        assert_eq!(fs::read(dir.key_path()).unwrap(), b"newer key");
        assert!(!tmp.path().join("agent.pem.next").exists());
    }

    #[cfg(unix)]
    #[test]
    fn secret_files_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("k");
        write_file(&path, b"secret", true).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
