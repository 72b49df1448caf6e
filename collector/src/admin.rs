//! Operator actions behind the CLI verbs: `init`, `token create`, `agent list|revoke`,
//! `assets`. Each returns text for stdout; the binary only prints it.

use std::path::Path;
use std::sync::Arc;

use serde::Serialize;

use crate::ca::{self, CaError};
use crate::config::{CollectorDir, ConfigError, RawConfig};
use crate::output::{self, ExportFormat, Format};
use crate::server::now_ms;
use crate::store::{
    AgentRecord, AssetRecord, AuditEvent, NewToken, SqliteStore, Store, StoreError,
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
    Ok(Arc::new(SqliteStore::open(&dir.database_path()).await?))
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

/// `token create`: a single-use token; the token is the last line of the output.
pub async fn create_token(
    dir: &CollectorDir,
    store: &dyn Store,
    ttl: Option<time::Duration>,
) -> Result<String, AdminError> {
    let config = dir.load_config()?;
    let ttl = ttl.unwrap_or(config.token_ttl);
    let token = tokens::generate();
    let now = now_ms();
    let expires_at = now + i64::try_from(ttl.whole_milliseconds()).unwrap_or(i64::MAX / 2);
    store
        .create_token(
            NewToken {
                token_hash: tokens::hash(&token),
                created_at: now,
                expires_at,
                created_by: actor(),
            },
            now,
        )
        .await?;
    Ok(format!(
        "single-use enrollment token, valid until {}:\n{token}",
        output::people_time(Some(expires_at))
    ))
}

#[derive(Serialize)]
struct AgentView<'a> {
    #[serde(flatten)]
    agent: &'a AgentRecord,
    state: &'static str,
}

fn agent_state(agent: &AgentRecord) -> &'static str {
    if agent.revoked_at.is_some() {
        "revoked"
    } else {
        "active"
    }
}

/// `agent list`.
pub async fn list_agents(store: &dyn Store, format: Format) -> Result<String, AdminError> {
    let agents = store.agents().await?;
    Ok(match format {
        Format::Json => output::json(
            &agents
                .iter()
                .map(|agent| AgentView {
                    agent,
                    state: agent_state(agent),
                })
                .collect::<Vec<_>>(),
        ),
        Format::Table => output::table(
            &[
                "AGENT",
                "HOSTNAME",
                "STATE",
                "VERSION",
                "LAST SEEN",
                "SPOOLED",
                "DROPPED",
            ],
            &agents
                .iter()
                .map(|a| {
                    vec![
                        a.agent_id.clone(),
                        a.hostname.clone(),
                        agent_state(a).to_string(),
                        a.agent_version.clone(),
                        output::people_time(a.last_seen_at),
                        a.spool_depth.to_string(),
                        a.spool_dropped.to_string(),
                    ]
                })
                .collect::<Vec<_>>(),
        ),
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
        ExportFormat::Json => output::json(
            &snapshot
                .assets
                .iter()
                .zip(&snapshot.links)
                .map(|(asset, links)| AssetView {
                    asset,
                    first_seen: output::time(Some(asset.first_seen_at)),
                    last_seen: output::time(Some(asset.last_seen_at)),
                    systems: &links.links,
                    link_conflict: links.conflict.as_deref(),
                })
                .collect::<Vec<_>>(),
        ),
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
