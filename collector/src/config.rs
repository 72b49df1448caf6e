//! The collector's state directory (`--dir`) and its `collector.toml`, read in two stages: a
//! raw serde struct, then a validated [`CollectorConfig`] that reports every problem at once
//! with the file name (and line, where TOML gives one).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Errors reading the configuration or the state directory.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The file is not valid TOML or has unknown keys.
    #[error("{path}: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// What and where.
        message: String,
    },
    /// Values that parse but make no sense; all problems at once.
    #[error("{path}: {}", problems.join("; "))]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Each problem, naming its key.
        problems: Vec<String>,
    },
    /// `init` has not been run.
    #[error("{0}: no collector here; run `tillsyn-collector --dir DIR init` first")]
    NotInitialised(PathBuf),
}

/// `collector.toml` as written on disk.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Address `serve` listens on unless `--listen` is given.
    pub listen: String,
    /// Names and addresses in the server certificate.
    pub server_names: Vec<String>,
    /// Lifetime of enrollment tokens, in minutes.
    pub token_ttl_minutes: i64,
    /// Lifetime of agent certificates, in days (older configs; `agent_cert_lifetime` replaces it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_cert_days: Option<i64>,
    /// Lifetime of agent certificates: a number and a unit, s, m, h or d ("30d", "90s"). Agents
    /// renew at two thirds of it. Default 30 days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_cert_lifetime: Option<String>,
    /// Largest accepted gRPC message, in bytes.
    pub max_message_bytes: usize,
    /// Rule thresholds.
    #[serde(default)]
    pub rules: crate::rules::RuleConfig,
    /// The web interface; absent: no web listener unless `serve --web` is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web: Option<crate::web::RawWebConfig>,
    /// `"sqlite"` (the default: `collector.db` in the directory) or a PostgreSQL URL,
    /// `postgres://user@host:5432/tillsyn?sslmode=verify-full&sslrootcert=/path/ca.pem`.
    /// `TILLSYN_DATABASE_URL` in the environment takes precedence (keeps a password out of
    /// the file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    /// Connections each collector keeps to PostgreSQL at most (default 10; SQLite uses 4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database_max_connections: Option<u32>,
    /// Seconds between rounds of scheduled work (scan firing, evaluation); default 30. It
    /// bounds how late a schedule fires, and a lease on that work lasts three rounds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub background_period_seconds: Option<u64>,
}

/// Where the store lives.
#[derive(Clone, PartialEq, Eq)]
pub enum Database {
    /// `collector.db` in the state directory.
    Sqlite,
    /// A PostgreSQL server.
    Postgres {
        /// The connection URL (may hold a password: never printed).
        url: String,
        /// Pool size.
        max_connections: u32,
    },
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Sqlite => f.write_str("Sqlite"),
            Self::Postgres {
                max_connections, ..
            } => write!(f, "Postgres {{ max_connections: {max_connections} }}"),
        }
    }
}

/// Connections to PostgreSQL when `database_max_connections` is not set.
pub const DEFAULT_DATABASE_MAX_CONNECTIONS: u32 = 10;

impl Database {
    /// Reads a `database` value (from the file or `TILLSYN_DATABASE_URL`); the error names
    /// the value's start only, never a password.
    pub fn parse(value: &str, max_connections: Option<u32>) -> Result<Self, String> {
        let value = value.trim();
        if value == "sqlite" {
            return Ok(Self::Sqlite);
        }
        if value.starts_with("postgres://") || value.starts_with("postgresql://") {
            let max_connections = max_connections.unwrap_or(DEFAULT_DATABASE_MAX_CONNECTIONS);
            if !(1..=1000).contains(&max_connections) {
                return Err(format!(
                    "database_max_connections = {max_connections}: must be between 1 and 1000"
                ));
            }
            return Ok(Self::Postgres {
                url: value.to_string(),
                max_connections,
            });
        }
        let shown: String = value.chars().take_while(|c| *c != ':').take(20).collect();
        Err(format!(
            "database = {shown:?}...: use \"sqlite\" or a postgres:// URL"
        ))
    }
}

impl Default for RawConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:7443".into(),
            server_names: vec!["localhost".into(), "127.0.0.1".into(), "::1".into()],
            token_ttl_minutes: 60,
            agent_cert_days: None,
            agent_cert_lifetime: Some("30d".into()),
            max_message_bytes: 16 * 1024 * 1024,
            rules: crate::rules::RuleConfig::default(),
            web: None,
            database: None,
            database_max_connections: None,
            background_period_seconds: None,
        }
    }
}

/// Validated configuration.
#[derive(Clone, Debug)]
pub struct CollectorConfig {
    /// Default listen address.
    pub listen: SocketAddr,
    /// Server certificate names.
    pub server_names: Vec<String>,
    /// Token lifetime.
    pub token_ttl: time::Duration,
    /// Agent certificate lifetime.
    pub agent_cert_validity: time::Duration,
    /// Message size limit.
    pub max_message_bytes: usize,
    /// Rule thresholds.
    pub rules: crate::rules::RuleConfig,
    /// `[web]` as written (validated when the listener starts), if present.
    pub web: Option<crate::web::RawWebConfig>,
    /// Where the store lives, as the file says (`TILLSYN_DATABASE_URL` is applied by
    /// [`CollectorConfig::database_from_env`]).
    pub database: Database,
    /// Period of the scheduled-work rounds.
    pub background_period: std::time::Duration,
}

impl CollectorConfig {
    /// The store's location: `TILLSYN_DATABASE_URL` if set, else the file's `database`.
    pub fn database_from_env(&self) -> Result<Database, String> {
        match std::env::var("TILLSYN_DATABASE_URL") {
            Ok(url) if !url.trim().is_empty() => {
                let max = match &self.database {
                    Database::Postgres {
                        max_connections, ..
                    } => Some(*max_connections),
                    Database::Sqlite => None,
                };
                Database::parse(&url, max).map_err(|e| format!("TILLSYN_DATABASE_URL: {e}"))
            }
            _ => Ok(self.database.clone()),
        }
    }
}

impl RawConfig {
    /// Validates, naming every bad key.
    pub fn validate(self, path: &Path) -> Result<CollectorConfig, ConfigError> {
        let mut problems = Vec::new();
        let listen = self.listen.parse::<SocketAddr>().map_err(|e| {
            problems.push(format!("listen = {:?}: {e}", self.listen));
        });
        if self.server_names.is_empty() {
            problems.push("server_names: at least one name is needed".into());
        }
        if !(1..=60 * 24 * 30).contains(&self.token_ttl_minutes) {
            problems.push(format!(
                "token_ttl_minutes = {}: must be between 1 and 43200 (30 days)",
                self.token_ttl_minutes
            ));
        }
        let agent_cert_validity = match (&self.agent_cert_lifetime, self.agent_cert_days) {
            (Some(_), Some(_)) => {
                problems.push(
                    "agent_cert_days and agent_cert_lifetime: set only agent_cert_lifetime".into(),
                );
                None
            }
            (Some(text), None) => match parse_lifetime(text) {
                Ok(lifetime) if (10..=3650 * 86_400).contains(&lifetime.whole_seconds()) => {
                    Some(lifetime)
                }
                Ok(_) => {
                    problems.push(format!(
                        "agent_cert_lifetime = {text:?}: must be between 10s and 3650d"
                    ));
                    None
                }
                Err(message) => {
                    problems.push(format!("agent_cert_lifetime = {text:?}: {message}"));
                    None
                }
            },
            (None, Some(days)) if (1..=3650).contains(&days) => Some(time::Duration::days(days)),
            (None, Some(days)) => {
                problems.push(format!(
                    "agent_cert_days = {days}: must be between 1 and 3650"
                ));
                None
            }
            (None, None) => Some(time::Duration::days(DEFAULT_AGENT_CERT_DAYS)),
        };
        if !(64 * 1024..=256 * 1024 * 1024).contains(&self.max_message_bytes) {
            problems.push(format!(
                "max_message_bytes = {}: must be between 65536 and 268435456",
                self.max_message_bytes
            ));
        }
        problems.extend(self.rules.problems());
        if let Some(Err(web_problems)) = self.web.as_ref().map(crate::web::RawWebConfig::validate) {
            problems.extend(web_problems);
        }
        let background_seconds = self.background_period_seconds.unwrap_or(30);
        if !(1..=3600).contains(&background_seconds) {
            problems.push(format!(
                "background_period_seconds = {background_seconds}: must be between 1 and 3600"
            ));
        }
        let database = Database::parse(
            self.database.as_deref().unwrap_or("sqlite"),
            self.database_max_connections,
        )
        .map_err(|problem| problems.push(problem));
        match (listen, agent_cert_validity, database) {
            (Ok(listen), Some(agent_cert_validity), Ok(database)) if problems.is_empty() => {
                Ok(CollectorConfig {
                    database,
                    background_period: std::time::Duration::from_secs(background_seconds),
                    rules: self.rules,
                    web: self.web,
                    listen,
                    server_names: self.server_names,
                    token_ttl: time::Duration::minutes(self.token_ttl_minutes),
                    agent_cert_validity,
                    max_message_bytes: self.max_message_bytes,
                })
            }
            _ => Err(ConfigError::Invalid {
                path: path.to_path_buf(),
                problems,
            }),
        }
    }
}

/// Agent certificate lifetime when the configuration names none.
pub const DEFAULT_AGENT_CERT_DAYS: i64 = 30;

/// A duration written as a whole number and a unit: `90s`, `15m`, `12h`, `30d`.
pub fn parse_lifetime(text: &str) -> Result<time::Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| "needs a unit: s, m, h or d (e.g. \"30d\")".to_string())?;
    let (number, unit) = text.split_at(split);
    let n: i64 = number
        .parse()
        .map_err(|_| "expected a whole number and a unit, e.g. \"30d\"".to_string())?;
    match unit {
        "s" => Ok(time::Duration::seconds(n)),
        "m" => Ok(time::Duration::minutes(n)),
        "h" => Ok(time::Duration::hours(n)),
        "d" => Ok(time::Duration::days(n)),
        _ => Err(format!("unknown unit {unit:?}: use s, m, h or d")),
    }
}

/// Paths inside a collector state directory.
#[derive(Clone, Debug)]
pub struct CollectorDir {
    root: PathBuf,
}

impl CollectorDir {
    /// Wraps `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `collector.toml`.
    pub fn config_path(&self) -> PathBuf {
        self.root.join("collector.toml")
    }

    /// `tillsyn.db`.
    pub fn database_path(&self) -> PathBuf {
        self.root.join("tillsyn.db")
    }

    /// `ca.pem` (handed to agents).
    pub fn ca_cert_path(&self) -> PathBuf {
        self.root.join("ca.pem")
    }

    /// `ca.key` (0600).
    pub fn ca_key_path(&self) -> PathBuf {
        self.root.join("ca.key")
    }

    /// `server.pem`.
    pub fn server_cert_path(&self) -> PathBuf {
        self.root.join("server.pem")
    }

    /// `server.key` (0600).
    pub fn server_key_path(&self) -> PathBuf {
        self.root.join("server.key")
    }

    /// Whether `init` has run here.
    pub fn is_initialised(&self) -> bool {
        self.config_path().exists()
    }

    /// Reads and validates `collector.toml`.
    pub fn load_config(&self) -> Result<CollectorConfig, ConfigError> {
        let path = self.config_path();
        if !path.exists() {
            return Err(ConfigError::NotInitialised(self.root.clone()));
        }
        let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Io {
            path: path.clone(),
            source,
        })?;
        let raw: RawConfig = toml::from_str(&text).map_err(|e| ConfigError::Syntax {
            path: path.clone(),
            message: e.to_string(),
        })?;
        raw.validate(&path)
    }

    /// Reads a file in the directory, naming it on failure.
    pub fn read(&self, path: &Path) -> Result<String, ConfigError> {
        std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_is_reported_with_its_key() {
        let raw = RawConfig {
            listen: "nowhere".into(),
            token_ttl_minutes: 0,
            ..RawConfig::default()
        };
        let err = raw
            .validate(Path::new("/d/collector.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("/d/collector.toml"), "{err}");
        assert!(err.contains("listen"), "{err}");
        assert!(err.contains("token_ttl_minutes"), "{err}");
    }

    #[test]
    fn syntax_errors_name_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let collector = CollectorDir::new(dir.path());
        std::fs::write(
            collector.config_path(),
            "listen = \"127.0.0.1:1\"\nserver_names = [\n",
        )
        .unwrap();
        let err = collector.load_config().unwrap_err().to_string();
        assert!(err.contains("collector.toml"), "{err}");
        assert!(err.contains("line"), "{err}");
    }

    #[test]
    fn defaults_are_valid() {
        let config = RawConfig::default().validate(Path::new("x")).unwrap();
        assert_eq!(config.agent_cert_validity, time::Duration::days(30));
    }

    #[test]
    fn the_agent_certificate_lifetime_takes_units_and_old_configs_keep_their_days() {
        let with = |lifetime: Option<&str>, days: Option<i64>| {
            RawConfig {
                agent_cert_lifetime: lifetime.map(str::to_string),
                agent_cert_days: days,
                ..RawConfig::default()
            }
            .validate(Path::new("c.toml"))
        };
        assert_eq!(
            with(Some("90s"), None).unwrap().agent_cert_validity,
            time::Duration::seconds(90)
        );
        assert_eq!(
            with(None, Some(365)).unwrap().agent_cert_validity,
            time::Duration::days(365)
        );
        for (lifetime, days, expected) in [
            (Some("90"), None, "needs a unit"),
            (Some("5s"), None, "between 10s"),
            (Some("3w"), None, "unknown unit"),
            (Some("30d"), Some(30), "set only agent_cert_lifetime"),
            (None, Some(0), "agent_cert_days = 0"),
        ] {
            let err = with(lifetime, days).unwrap_err().to_string();
            assert!(err.contains(expected), "{lifetime:?} {days:?}: {err}");
        }
    }
}
