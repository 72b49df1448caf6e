//! One compliance evaluation: load the register and the inventory, link assets to systems, run
//! the rule table, and bring the stored findings in line. Used by the CLI before it shows
//! findings or reports, by `catalog import`, and by `serve` on a timer.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use crate::catalog::System;
use crate::linking::{AssetLinks, LinkSubject, Linker};
use crate::rules::{self, Context, EvalAsset, RuleConfig};
use crate::store::{AssetRecord, EvaluationSummary, Store, StoreError};

/// The inputs of an evaluation, loaded from the store, with the computed links.
pub struct Snapshot {
    /// The register.
    pub systems: Vec<System>,
    /// The assets.
    pub assets: Vec<AssetRecord>,
    /// Links, parallel to `assets`.
    pub links: Vec<AssetLinks>,
}

/// Loads everything and links it.
pub async fn snapshot(store: &dyn Store) -> Result<Snapshot, StoreError> {
    let systems = store.systems().await?;
    let assets = store.assets().await?;
    let labels: HashMap<String, BTreeMap<String, String>> =
        store.agent_labels().await?.into_iter().collect();
    let linker = Linker::new(&systems);
    let links = assets
        .iter()
        .map(|asset| linker.link(&subject(asset, labels.get(&asset.agent_id))))
        .collect();
    Ok(Snapshot {
        systems,
        assets,
        links,
    })
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
    let snapshot = snapshot(store).await?;
    let drafts = drafts(&snapshot, config, now_ms);
    let summary = store.apply_findings(&drafts, now_ms).await?;
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
    Ok((snapshot, summary))
}

/// The findings that hold for `snapshot` at `now_ms` (pure).
pub fn drafts(snapshot: &Snapshot, config: &RuleConfig, now_ms: i64) -> Vec<rules::FindingDraft> {
    let today = time::OffsetDateTime::from_unix_timestamp(now_ms / 1000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        .date();
    let context = Context {
        today,
        now_ms,
        config: config.clone(),
    };
    let assets: Vec<EvalAsset> = snapshot.assets.iter().map(eval_asset).collect();
    rules::evaluate(&snapshot.systems, &assets, &snapshot.links, &context)
}

fn eval_asset(asset: &AssetRecord) -> EvalAsset {
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
