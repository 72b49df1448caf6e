//! One compliance evaluation: load the register and the inventory, link assets to systems, run
//! the rule table, and bring the stored findings in line. Used by the CLI before it shows
//! findings or reports, by `catalog import`, the web's "evaluate now" and scheduled evaluation
//! jobs; `serve` keeps its findings current between them with [`crate::evaluator`], which
//! shares the loading and linking helpers here.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use crate::catalog::System;
use crate::linking::{AssetLinks, LinkSubject, Linker};
use crate::rules::{self, AgentCertificate, Context, EvalAsset, RuleConfig};
use crate::store::{AssetRecord, EvaluationSummary, Store, StoreError, StoredFindings};

/// The inputs of an evaluation, loaded from the store, with the computed links.
pub struct Snapshot {
    /// The register.
    pub systems: Vec<System>,
    /// The assets.
    pub assets: Vec<AssetRecord>,
    /// Links, parallel to `assets`.
    pub links: Vec<AssetLinks>,
    /// Current certificates of agents that are not revoked, by agent id.
    pub certificates: HashMap<String, AgentCertificate>,
}

/// Loads everything and links it. The three reads run at once: each is a SQLite worker
/// thread's (or a PostgreSQL backend's) work while this task parses the other's pages.
pub async fn snapshot(store: &dyn Store) -> Result<Snapshot, StoreError> {
    let (assets, agents, stored) =
        tokio::try_join!(store.assets(), store.agent_views(), store.systems())?;
    let labels: HashMap<&str, &BTreeMap<String, String>> = agents
        .iter()
        .filter(|agent| !agent.labels.is_empty())
        .map(|agent| (agent.agent_id.as_str(), &agent.labels))
        .collect();
    let systems = register(stored, labels.values().copied());
    let linker = Linker::new(&systems);
    let links = assets
        .iter()
        .map(|asset| {
            link(
                &linker,
                &subject(asset, labels.get(asset.agent_id.as_str()).copied()),
                &asset.kind,
            )
        })
        .collect();
    drop(labels);
    let certificates = agents
        .into_iter()
        .filter_map(|agent| Some((agent.agent_id, agent.certificate?)))
        .collect();
    Ok(Snapshot {
        systems,
        assets,
        links,
        certificates,
    })
}

/// The systems evaluated: the stored register, with the built-in `tillsyn` when one of these
/// agents' labels marks the collector's own host ([`crate::builtin`]).
pub fn register<'a>(
    stored: Vec<System>,
    mut labels: impl Iterator<Item = &'a BTreeMap<String, String>>,
) -> Vec<System> {
    crate::builtin::with_builtin(
        stored,
        labels.any(crate::builtin::is_collector),
        time::OffsetDateTime::now_utc().date(),
    )
}

/// An asset's links: the register's, and the built-in's for the collector's own host (the
/// subject's labels are its agent's, for hosts).
pub fn link(linker: &Linker, subject: &LinkSubject, kind: &str) -> AssetLinks {
    let mut links = linker.link(subject);
    crate::builtin::link_collector_host(kind, &subject.labels, &mut links);
    links
}

/// Runs the rules over a snapshot and stores the result.
pub async fn evaluate(
    store: &dyn Store,
    config: &RuleConfig,
    now_ms: i64,
) -> Result<EvaluationSummary, StoreError> {
    evaluate_snapshot(store, config, now_ms)
        .await
        .map(|(_, summary)| summary)
}

/// Like [`evaluate`], and hands back the snapshot it evaluated so callers that show systems or
/// findings next do not load everything a second time.
pub async fn evaluate_snapshot(
    store: &dyn Store,
    config: &RuleConfig,
    now_ms: i64,
) -> Result<(Snapshot, EvaluationSummary), StoreError> {
    let (snapshot, stored) = tokio::try_join!(snapshot(store), store.stored_findings())?;
    let assets = eval_assets(&snapshot);
    let summary =
        store_findings(store, &snapshot, &assets, stored, &context(config, now_ms)).await?;
    Ok((snapshot, summary))
}

/// Like [`evaluate_snapshot`], and also judges every system's standing with each K2/K3 rule
/// (as [`rules::compliance`]) from the same view of the assets, built once.
pub async fn evaluate_judged(
    store: &dyn Store,
    config: &RuleConfig,
    now_ms: i64,
) -> Result<(Snapshot, Judged), StoreError> {
    let (snapshot, stored) = tokio::try_join!(snapshot(store), store.stored_findings())?;
    let assets = eval_assets(&snapshot);
    let ctx = context(config, now_ms);
    store_findings(store, &snapshot, &assets, stored, &ctx).await?;
    let judged = rules::compliance(&snapshot.systems, &assets, &snapshot.links, &ctx);
    Ok((snapshot, judged))
}

/// Each system's K2/K3 rule states: system id -> (rule id, state).
pub type Judged = HashMap<String, Vec<(&'static str, rules::RuleState)>>;

/// Runs the rules, brings the stored findings in line, and records which assets belong to which
/// system.
/// `stored` is what the findings were when the snapshot was read (read beside it).
async fn store_findings(
    store: &dyn Store,
    snapshot: &Snapshot,
    assets: &[EvalAsset],
    stored: StoredFindings,
    ctx: &Context,
) -> Result<EvaluationSummary, StoreError> {
    let drafts = rules::evaluate(&snapshot.systems, assets, &snapshot.links, ctx);
    let summary = store
        .apply_findings_read_ahead(&drafts, stored, ctx.now_ms)
        .await?;
    // The web interface reads a system's assets from these links, scoped in its queries.
    let links: Vec<(String, String)> = snapshot
        .assets
        .iter()
        .zip(&snapshot.links)
        .flat_map(|(asset, links)| {
            links
                .links
                .iter()
                .map(|link| (link.system_id.clone(), asset.asset_id.clone()))
        })
        .collect();
    store.replace_system_links(&links).await?;
    Ok(summary)
}

/// The rules' context at `now_ms`.
pub fn context(config: &RuleConfig, now_ms: i64) -> Context {
    let today = time::OffsetDateTime::from_unix_timestamp(now_ms / 1000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        .date();
    Context {
        today,
        now_ms,
        config: config.clone(),
    }
}

/// The rules' view of every asset, with its agent's certificate for hosts.
fn eval_assets(snapshot: &Snapshot) -> Vec<EvalAsset> {
    snapshot
        .assets
        .iter()
        .map(|asset| {
            let mut eval = eval_asset(asset);
            if asset.kind == "host" {
                eval.certificate = snapshot.certificates.get(&asset.agent_id).cloned();
            }
            eval
        })
        .collect()
}

/// The in-memory, incrementally updated verdicts of `snapshot` at `now_ms`
/// ([`crate::incremental`]); its drafts equal [`drafts`] of the same snapshot.
pub fn incremental(
    snapshot: &Snapshot,
    config: &RuleConfig,
    now_ms: i64,
) -> crate::incremental::Incremental {
    let assets = eval_assets(snapshot)
        .into_iter()
        .zip(snapshot.links.iter().cloned())
        .collect();
    crate::incremental::Incremental::new(config.clone(), snapshot.systems.clone(), assets, now_ms)
}

/// The findings that hold for `snapshot` at `now_ms` (pure).
pub fn drafts(snapshot: &Snapshot, config: &RuleConfig, now_ms: i64) -> Vec<rules::FindingDraft> {
    rules::evaluate(
        &snapshot.systems,
        &eval_assets(snapshot),
        &snapshot.links,
        &context(config, now_ms),
    )
}

/// What the rules see of one stored asset (its certificate is added by the snapshot).
pub fn eval_asset(asset: &AssetRecord) -> EvalAsset {
    EvalAsset {
        asset_id: asset.asset_id.clone(),
        kind: asset.kind.clone(),
        label: if asset.address.is_empty() {
            asset.hostname.clone()
        } else {
            asset.address.clone()
        },
        controls: asset
            .controls
            .iter()
            .map(|c| (c.name.clone(), c.clone()))
            .collect(),
        last_seen_at: asset.last_seen_at,
        certificate: None,
    }
}

/// What linking may use of an asset: name, addresses (interfaces or device address), agent
/// labels for hosts, vendor and model for devices.
pub fn subject(asset: &AssetRecord, labels: Option<&BTreeMap<String, String>>) -> LinkSubject {
    let mut addresses: Vec<IpAddr> = asset.address.parse().into_iter().collect();
    if let Some(interfaces) = asset.facts["interfaces"].as_array() {
        for interface in interfaces {
            for cidr in interface["addresses"].as_array().into_iter().flatten() {
                let text = cidr.as_str().unwrap_or_default();
                if let Ok(ip) = text.split('/').next().unwrap_or_default().parse::<IpAddr>()
                    && !ip.is_loopback()
                {
                    addresses.push(ip);
                }
            }
        }
    }
    let vendor_model = match (
        asset.facts["vendor"].as_str(),
        asset.facts["model"].as_str(),
    ) {
        (Some(vendor), model) if asset.kind == "device" => {
            Some((vendor.to_string(), model.unwrap_or("").to_string()))
        }
        _ => None,
    };
    LinkSubject {
        asset_id: asset.asset_id.clone(),
        hostname: asset.hostname.clone(),
        addresses,
        labels: if asset.kind == "host" {
            labels.cloned().unwrap_or_default()
        } else {
            BTreeMap::new()
        },
        vendor_model,
    }
}
