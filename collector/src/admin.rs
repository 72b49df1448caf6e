//! Operator actions behind the CLI verbs: `init`, `token create`, `agent list|revoke`,
//! `assets`. Each returns text for stdout; the binary only prints it.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;

use serde::Serialize;

use crate::ca::{self, CaError};
use crate::config::{CollectorDir, ConfigError, RawConfig};
use crate::output::{self, ExportFormat, Format};
use crate::server::now_ms;
use crate::store::{
    AgentRecord, AssetRecord, AuditEvent, NewToken, SqlStore, SqliteStore, Store, StoreError,
    TokenRecord, TokenScope,
};
use crate::tokens;

/// Errors of operator actions.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// Configuration problem.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Storage problem.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// CA problem.
    #[error(transparent)]
    Ca(#[from] CaError),
    /// A file could not be written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// A CSV export could not be written.
    #[error(transparent)]
    Csv(#[from] output::CsvError),
    /// An argument makes no sense; the message names it.
    #[error("{0}")]
    Invalid(String),
    /// The directory is initialised already.
    #[error("{0}: already initialised (collector.toml exists); use another --dir or remove it")]
    AlreadyInitialised(String),
}

/// The person running the command, for the audit log.
pub fn actor() -> String {
    std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .unwrap_or_else(|_| "unknown".into())
}

/// Opens the store of an initialised directory.
pub async fn open_store(dir: &CollectorDir) -> Result<Arc<dyn Store>, AdminError> {
    if !dir.is_initialised() {
        return Err(ConfigError::NotInitialised(dir.root().to_path_buf()).into());
    }
    let config = dir.load_config()?;
    let database = config.database_from_env().map_err(AdminError::Invalid)?;
    Ok(Arc::new(open_database(dir, &database).await?))
}

/// Opens the store where `database` says: the directory's SQLite file or PostgreSQL.
pub async fn open_database(
    dir: &CollectorDir,
    database: &crate::config::Database,
) -> Result<SqlStore, StoreError> {
    match database {
        crate::config::Database::Sqlite => SqlStore::open(&dir.database_path()).await,
        crate::config::Database::Postgres {
            url,
            max_connections,
        } => SqlStore::connect_postgres(url, *max_connections).await,
    }
}

/// `init`: CA, server certificate, config and database in `dir`.
pub async fn init(dir: &CollectorDir, extra_names: &[String]) -> Result<String, AdminError> {
    if dir.is_initialised() {
        return Err(AdminError::AlreadyInitialised(
            dir.root().display().to_string(),
        ));
    }
    create_dir_private(dir.root())?;
    let mut config = RawConfig::default();
    if let Some(host) = sysinfo_hostname() {
        config.server_names.push(host);
    }
    config.server_names.extend(extra_names.iter().cloned());
    config.server_names.dedup();
    let material = ca::create("Tillsyn", &config.server_names)?;
    write(&dir.ca_key_path(), &material.ca_key_pem, true)?;
    write(&dir.ca_cert_path(), &material.ca_cert_pem, false)?;
    write(&dir.server_key_path(), &material.server_key_pem, true)?;
    write(&dir.server_cert_path(), &material.server_cert_pem, false)?;
    SqliteStore::open(&dir.database_path()).await?;
    let text = toml::to_string_pretty(&config).map_err(|e| ConfigError::Syntax {
        path: dir.config_path(),
        message: e.to_string(),
    })?;
    // Written last: its presence means `init` completed.
    write(&dir.config_path(), &text, false)?;
    Ok(format!(
        "initialised collector in {}\nCA certificate for agents: {}\nserver names: {}",
        dir.root().display(),
        dir.ca_cert_path().display(),
        config.server_names.join(", ")
    ))
}

fn sysinfo_hostname() -> Option<String> {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
}

fn create_dir_private(path: &Path) -> Result<(), AdminError> {
    let io = |source| AdminError::Io {
        path: path.display().to_string(),
        source,
    };
    std::fs::create_dir_all(path).map_err(io)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700)).map_err(io)?;
    }
    Ok(())
}

fn write(path: &Path, text: &str, secret: bool) -> Result<(), AdminError> {
    tillsyn_agent::state::write_file(path, text.as_bytes(), secret).map_err(|e| AdminError::Io {
        path: path.display().to_string(),
        source: std::io::Error::other(e.to_string()),
    })
}

/// What `token create` was asked for beyond the lifetime.
#[derive(Clone, Debug, Default)]
pub struct TokenRequest {
    /// Lifetime (default from collector.toml).
    pub ttl: Option<time::Duration>,
    /// Enrollments allowed (default 1).
    pub uses: Option<u32>,
    /// Labels the collector sets on every agent enrolled with it.
    pub labels: Vec<(String, String)>,
    /// Unique name (default derived from the token's hash).
    pub name: Option<String>,
}

/// Longest token name or label key/value, in bytes (as for agent labels).
const MAX_TOKEN_FIELD: usize = 253;

fn token_scope(request: &TokenRequest, token_hash: &str) -> Result<TokenScope, AdminError> {
    let mut scope = TokenScope::single_use(token_hash);
    if let Some(name) = &request.name {
        let valid = !name.is_empty()
            && name.len() <= MAX_TOKEN_FIELD
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !valid {
            return Err(AdminError::Invalid(format!(
                "--name {name:?}: use 1-253 letters, digits, '-', '_' or '.'"
            )));
        }
        scope.name.clone_from(name);
    }
    if let Some(uses) = request.uses {
        if uses == 0 {
            return Err(AdminError::Invalid(
                "--uses 0: a token needs at least one use".into(),
            ));
        }
        scope.max_uses = i64::from(uses);
    }
    for (key, value) in &request.labels {
        if key.is_empty() || key.len() > MAX_TOKEN_FIELD || value.len() > MAX_TOKEN_FIELD {
            return Err(AdminError::Invalid(format!(
                "--label {key}={value}: keys must be 1-253 bytes and values at most 253 bytes"
            )));
        }
        if scope.labels.insert(key.clone(), value.clone()).is_some() {
            return Err(AdminError::Invalid(format!("--label {key}: given twice")));
        }
    }
    Ok(scope)
}

/// `token create`: a token redeemable `--uses` times; the token is the last line of the output.
pub async fn create_token(
    dir: &CollectorDir,
    store: &dyn Store,
    ttl: Option<time::Duration>,
) -> Result<String, AdminError> {
    let request = TokenRequest {
        ttl,
        ..TokenRequest::default()
    };
    create_scoped_token(dir, store, &request).await
}

/// `token create` with a budget, labels and a name.
pub async fn create_scoped_token(
    dir: &CollectorDir,
    store: &dyn Store,
    request: &TokenRequest,
) -> Result<String, AdminError> {
    let config = dir.load_config()?;
    let ttl = request.ttl.unwrap_or(config.token_ttl);
    let token = tokens::generate();
    let token_hash = tokens::hash(&token);
    let scope = token_scope(request, &token_hash)?;
    let now = now_ms();
    let expires_at = now + i64::try_from(ttl.whole_milliseconds()).unwrap_or(i64::MAX / 2);
    store
        .create_scoped_token(
            NewToken {
                token_hash,
                created_at: now,
                expires_at,
                created_by: actor(),
            },
            scope.clone(),
            now,
        )
        .await?;
    let uses = if scope.max_uses == 1 {
        "single-use".to_string()
    } else {
        format!("{}-use", scope.max_uses)
    };
    let labels = if scope.labels.is_empty() {
        String::new()
    } else {
        format!(", labels {}", label_text(&scope.labels))
    };
    Ok(format!(
        "{uses} enrollment token {}{labels}, valid until {}:\n{token}",
        scope.name,
        output::people_time(Some(expires_at))
    ))
}

fn label_text(labels: &std::collections::BTreeMap<String, String>) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

#[derive(Serialize)]
struct TokenView<'a> {
    #[serde(flatten)]
    token: &'a TokenRecord,
    uses_left: i64,
    state: &'static str,
}

fn token_state(token: &TokenRecord, now: i64) -> &'static str {
    if token.revoked_at.is_some() {
        "revoked"
    } else if token.uses >= token.max_uses {
        "used up"
    } else if token.expires_at <= now {
        "expired"
    } else {
        "active"
    }
}

/// `token list`: name, uses left, expiry, labels; never the secret.
pub async fn list_tokens(store: &dyn Store, format: Format) -> Result<String, AdminError> {
    let tokens = store.tokens().await?;
    let now = now_ms();
    Ok(match format {
        Format::Json => output::json(
            &tokens
                .iter()
                .map(|token| TokenView {
                    token,
                    uses_left: (token.max_uses - token.uses).max(0),
                    state: token_state(token, now),
                })
                .collect::<Vec<_>>(),
        ),
        Format::Table => output::table(
            &[
                "NAME",
                "STATE",
                "USES LEFT",
                "EXPIRES",
                "LABELS",
                "CREATED BY",
            ],
            &tokens
                .iter()
                .map(|t| {
                    vec![
                        t.name.clone(),
                        token_state(t, now).to_string(),
                        format!("{}/{}", (t.max_uses - t.uses).max(0), t.max_uses),
                        output::people_time(Some(t.expires_at)),
                        label_text(&t.labels),
                        t.created_by.clone(),
                    ]
                })
                .collect::<Vec<_>>(),
        ),
    })
}

/// `token revoke NAME`: no further enrollment with it; agents enrolled with it stay.
pub async fn revoke_token(store: &dyn Store, name: &str) -> Result<String, AdminError> {
    let event = AuditEvent {
        actor: actor(),
        action: "token.revoke".into(),
        subject: name.to_string(),
        detail: serde_json::json!({}),
    };
    Ok(if store.revoke_token(name, event, now_ms()).await? {
        format!("token {name} revoked; agents enrolled with it keep working")
    } else {
        format!("token {name} was already revoked")
    })
}

#[derive(Serialize)]
struct AgentView<'a> {
    #[serde(flatten)]
    agent: &'a AgentRecord,
    state: &'static str,
    /// The certificate's expiry, as people read it.
    cert_expires: String,
    /// What the operator should do, when anything.
    action: Option<&'static str>,
}

/// Revoked first (final), then an expired certificate (the agent can no longer connect), then
/// a suspected clone.
fn agent_state(agent: &AgentRecord, now: i64) -> &'static str {
    if agent.revoked_at.is_some() {
        "revoked"
    } else if agent.cert_not_after <= now {
        "expired"
    } else if agent.clone_host_id.is_some() {
        "cloned"
    } else {
        "active"
    }
}

fn agent_action(state: &str) -> Option<&'static str> {
    match state {
        "expired" => Some(
            "certificate expired: create a token and run `tillsyn-agent enroll --force` on the host",
        ),
        "cloned" => Some(
            "another host presents this agent's certificate: enroll that host with its own token (`tillsyn-agent enroll --force`)",
        ),
        _ => None,
    }
}

/// `agent list`.
pub async fn list_agents(store: &dyn Store, format: Format) -> Result<String, AdminError> {
    let agents = store.agents().await?;
    let now = now_ms();
    Ok(match format {
        Format::Json => output::json(
            &agents
                .iter()
                .map(|agent| {
                    let state = agent_state(agent, now);
                    AgentView {
                        agent,
                        state,
                        cert_expires: output::time(Some(agent.cert_not_after)),
                        action: agent_action(state),
                    }
                })
                .collect::<Vec<_>>(),
        ),
        Format::Table => {
            let mut text = output::table(
                &[
                    "AGENT",
                    "HOSTNAME",
                    "STATE",
                    "VERSION",
                    "LAST SEEN",
                    "CERT EXPIRES",
                    "LABELS",
                    "SPOOLED",
                    "DROPPED",
                ],
                &agents
                    .iter()
                    .map(|a| {
                        vec![
                            a.agent_id.clone(),
                            a.hostname.clone(),
                            agent_state(a, now).to_string(),
                            a.agent_version.clone(),
                            output::people_time(a.last_seen_at),
                            output::people_time(Some(a.cert_not_after)),
                            label_text(&a.labels),
                            a.spool_depth.to_string(),
                            a.spool_dropped.to_string(),
                        ]
                    })
                    .collect::<Vec<_>>(),
            );
            for agent in &agents {
                if let Some(action) = agent_action(agent_state(agent, now)) {
                    let _ = write!(text, "\n{}: {action}", agent.agent_id);
                }
            }
            text
        }
    })
}

/// `agent revoke`.
pub async fn revoke_agent(
    store: &dyn Store,
    agent_id: &str,
    reason: &str,
) -> Result<String, AdminError> {
    let event = AuditEvent {
        actor: actor(),
        action: "agent.revoke".into(),
        subject: agent_id.to_string(),
        detail: serde_json::json!({ "reason": reason }),
    };
    let changed = store.revoke_agent(agent_id, event, now_ms()).await?;
    Ok(if changed {
        format!("agent {agent_id} revoked; its certificate is refused from now on")
    } else {
        format!("agent {agent_id} was already revoked")
    })
}

/// `agent versions`: active agents per version, newest last seen first.
pub async fn agent_versions(store: &dyn Store) -> Result<String, AdminError> {
    let mut counts: std::collections::BTreeMap<String, usize> = std::collections::BTreeMap::new();
    for agent in store
        .agents()
        .await?
        .iter()
        .filter(|a| a.revoked_at.is_none())
    {
        *counts.entry(agent.agent_version.clone()).or_default() += 1;
    }
    Ok(output::table(
        &["VERSION", "AGENTS"],
        &counts
            .into_iter()
            .map(|(v, n)| vec![v, n.to_string()])
            .collect::<Vec<_>>(),
    ))
}

/// `scan list`.
pub async fn list_schedules(store: &dyn Store, format: Format) -> Result<String, AdminError> {
    let schedules = store.schedules().await?;
    Ok(match format {
        Format::Json => output::json(&schedules),
        Format::Table => output::table(
            &["NAME", "KIND", "CRON", "TIME ZONE", "TARGET", "NEXT RUN"],
            &schedules
                .iter()
                .map(|s| {
                    vec![
                        s.name.clone(),
                        s.kind.clone(),
                        s.cron.clone(),
                        s.timezone.clone(),
                        s.target.clone(),
                        output::people_time(Some(s.next_run_at)),
                    ]
                })
                .collect::<Vec<_>>(),
        ),
    })
}

/// `scan history`.
pub async fn list_jobs(
    store: &dyn Store,
    schedule: Option<&str>,
    format: Format,
) -> Result<String, AdminError> {
    let jobs = store.jobs(schedule).await?;
    Ok(match format {
        Format::Json => output::json(&jobs),
        Format::Table => output::table(
            &[
                "JOB", "SCHEDULE", "KIND", "AGENT", "STATE", "CREATED", "FINISHED", "ERROR",
            ],
            &jobs
                .iter()
                .map(|j| {
                    vec![
                        j.job_id.clone(),
                        j.schedule.clone(),
                        j.kind.clone(),
                        j.agent_id.clone().unwrap_or_else(|| "(collector)".into()),
                        j.state.clone(),
                        output::people_time(Some(j.created_at)),
                        output::people_time(j.finished_at),
                        j.error.clone().unwrap_or_default(),
                    ]
                })
                .collect::<Vec<_>>(),
        ),
    })
}

/// `changes`.
pub async fn changes(
    store: &dyn Store,
    asset: Option<&str>,
    since_ms: i64,
    format: Format,
) -> Result<String, AdminError> {
    let changes = store.observation_changes(asset, since_ms).await?;
    Ok(match format {
        Format::Json => output::json(&changes),
        Format::Table => output::table(
            &[
                "AT", "ASSET", "CHANGE", "CATEGORY", "NAME", "BEFORE", "AFTER",
            ],
            &changes
                .iter()
                .map(|c| {
                    vec![
                        output::people_time(Some(c.at)),
                        c.asset.clone(),
                        c.change.clone(),
                        c.category.clone(),
                        c.name.clone(),
                        c.old_value.clone().unwrap_or_default(),
                        c.new_value.clone().unwrap_or_default(),
                    ]
                })
                .collect::<Vec<_>>(),
        ),
    })
}

#[derive(Serialize)]
struct AssetView<'a> {
    #[serde(flatten)]
    asset: &'a AssetRecord,
    first_seen: String,
    last_seen: String,
    /// The systems the asset is linked to, each with the rule that matched.
    systems: &'a [crate::linking::Link],
    /// Set when patterns of several systems matched and nobody decided.
    link_conflict: Option<&'a str>,
    /// For a host: its agent's labels as linking uses them (the token's win).
    agent_labels: Option<&'a std::collections::BTreeMap<String, String>>,
    /// For a host: the labels its agent claimed itself, kept apart.
    claimed_labels: Option<&'a std::collections::BTreeMap<String, String>>,
}

fn system_column(links: &crate::linking::AssetLinks) -> String {
    if links.links.is_empty() {
        return "-".into();
    }
    let ids: Vec<&str> = links.links.iter().map(|l| l.system_id.as_str()).collect();
    let mut text = ids.join(",");
    if links.conflict.is_some() {
        text.push_str(" (conflict)");
    }
    text
}

/// `assets`.
pub async fn list_assets(store: &dyn Store, format: ExportFormat) -> Result<String, AdminError> {
    // The snapshot links every asset to its systems with the reason, as the rules see it.
    let snapshot = crate::evaluation::snapshot(store).await?;
    Ok(match format {
        ExportFormat::Json => {
            let agents: std::collections::HashMap<String, AgentRecord> = store
                .agents()
                .await?
                .into_iter()
                .map(|a| (a.agent_id.clone(), a))
                .collect();
            output::json(
                &snapshot
                    .assets
                    .iter()
                    .zip(&snapshot.links)
                    .map(|(asset, links)| {
                        let agent = agents.get(&asset.agent_id).filter(|_| asset.kind == "host");
                        AssetView {
                            asset,
                            first_seen: output::time(Some(asset.first_seen_at)),
                            last_seen: output::time(Some(asset.last_seen_at)),
                            systems: &links.links,
                            link_conflict: links.conflict.as_deref(),
                            agent_labels: agent.map(|a| &a.labels),
                            claimed_labels: agent.map(|a| &a.claimed_labels),
                        }
                    })
                    .collect::<Vec<_>>(),
            )
        }
        ExportFormat::Table => output::table(
            &ASSET_COLUMNS,
            &asset_rows(&snapshot.assets, &snapshot.links),
        ),
        ExportFormat::Csv => output::csv(
            &ASSET_COLUMNS,
            &asset_rows(&snapshot.assets, &snapshot.links),
        )?,
    })
}

const ASSET_COLUMNS: [&str; 9] = [
    "KIND",
    "ASSET",
    "SYSTEMS",
    "OS",
    "MFA",
    "TRANSIT",
    "AT REST",
    "FACTS",
    "LAST SEEN",
];

fn asset_rows(assets: &[AssetRecord], links: &[crate::linking::AssetLinks]) -> Vec<Vec<String>> {
    let control = |asset: &AssetRecord, name: &str| {
        asset
            .controls
            .iter()
            .find(|c| c.name == name)
            .map_or_else(|| "unknown".to_string(), |c| c.state.clone())
    };
    assets
        .iter()
        .zip(links)
        .map(|(a, links)| {
            let os = format!(
                "{} {}",
                a.facts["os_name"].as_str().unwrap_or(""),
                a.facts["os_version"].as_str().unwrap_or("")
            );
            vec![
                a.kind.clone(),
                if a.address.is_empty() {
                    a.hostname.clone()
                } else {
                    a.address.clone()
                },
                system_column(links),
                os.trim().to_string(),
                control(a, "mfa"),
                control(a, "transit_encryption"),
                control(a, "rest_encryption"),
                a.observation_count.to_string(),
                output::people_time(Some(a.last_seen_at)),
            ]
        })
        .collect()
}
