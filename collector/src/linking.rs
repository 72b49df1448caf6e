//! Linking: which systems each asset belongs to, and why. Explicit asset ids beat every
//! pattern; when only patterns match and they point at several systems, the asset is linked
//! to all of them and the conflict is reported (never silently resolved).
//!
//! Indexed so that 100,000 assets against 5,000 systems stay fast: one `GlobSet` for all
//! hostname globs, one for all device patterns, hash maps for networks (per prefix length),
//! labels and explicit ids.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use globset::{Glob, GlobSet, GlobSetBuilder};
use ipnet::IpNet;
use serde::Serialize;

use crate::catalog::System;

/// What linking needs to know about an asset.
#[derive(Clone, Debug, Default)]
pub struct LinkSubject {
    /// Asset id.
    pub asset_id: String,
    /// Host name (hosts) or reverse name (devices), matched case-insensitively.
    pub hostname: String,
    /// Addresses of the asset.
    pub addresses: Vec<IpAddr>,
    /// Labels of the reporting agent (hosts only).
    pub labels: BTreeMap<String, String>,
    /// Device vendor and model (devices only).
    pub vendor_model: Option<(String, String)>,
}

/// One asset-to-system link.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Link {
    /// The system.
    pub system_id: String,
    /// Why it matched, e.g. `hostname glob journal-*`.
    pub reason: String,
    /// Whether an explicit asset id made the link.
    pub explicit: bool,
}

/// Links for one asset.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct AssetLinks {
    /// The links, by system id.
    pub links: Vec<Link>,
    /// Set when several systems matched by patterns only.
    pub conflict: Option<String>,
}

/// Compiled link rules of a whole register.
pub struct Linker {
    hostnames: GlobSet,
    hostname_owners: Vec<(usize, String)>,
    devices: GlobSet,
    device_owners: Vec<(usize, String)>,
    networks: HashMap<u8, HashMap<IpNet, Vec<usize>>>,
    labels: HashMap<(String, String), Vec<usize>>,
    asset_ids: HashMap<String, Vec<usize>>,
    system_ids: Vec<String>,
}

impl Linker {
    /// Compiles the rules of `systems`. Patterns were validated at import; one that still
    /// fails to compile is skipped with a warning rather than stopping evaluation.
    pub fn new(systems: &[System]) -> Self {
        let mut hostnames = GlobSetBuilder::new();
        let mut hostname_owners = Vec::new();
        let mut devices = GlobSetBuilder::new();
        let mut device_owners = Vec::new();
        let mut networks: HashMap<u8, HashMap<IpNet, Vec<usize>>> = HashMap::new();
        let mut labels: HashMap<(String, String), Vec<usize>> = HashMap::new();
        let mut asset_ids: HashMap<String, Vec<usize>> = HashMap::new();
        for (index, system) in systems.iter().enumerate() {
            for pattern in &system.links.hostnames {
                if let Some(glob) = compile(pattern) {
                    hostnames.add(glob);
                    hostname_owners.push((index, pattern.clone()));
                }
            }
            for pattern in &system.links.devices {
                if let Some(glob) = compile(pattern) {
                    devices.add(glob);
                    device_owners.push((index, pattern.clone()));
                }
            }
            for net in &system.links.cidrs {
                networks
                    .entry(net.prefix_len())
                    .or_default()
                    .entry(net.trunc())
                    .or_default()
                    .push(index);
            }
            for (key, value) in &system.links.labels {
                labels
                    .entry((key.clone(), value.clone()))
                    .or_default()
                    .push(index);
            }
            for id in &system.links.asset_ids {
                asset_ids.entry(id.clone()).or_default().push(index);
            }
        }
        Self {
            hostnames: hostnames.build().unwrap_or_else(|_| GlobSet::empty()),
            hostname_owners,
            devices: devices.build().unwrap_or_else(|_| GlobSet::empty()),
            device_owners,
            networks,
            labels,
            asset_ids,
            system_ids: systems.iter().map(|s| s.id.clone()).collect(),
        }
    }

    /// Links one asset.
    pub fn link(&self, subject: &LinkSubject) -> AssetLinks {
        if let Some(explicit) = self.asset_ids.get(&subject.asset_id) {
            let mut links: Vec<Link> = explicit
                .iter()
                .map(|&i| Link {
                    system_id: self.system_ids[i].clone(),
                    reason: format!("explicit asset id {}", subject.asset_id),
                    explicit: true,
                })
                .collect();
            links.dedup_by(|a, b| a.system_id == b.system_id);
            return AssetLinks {
                links,
                conflict: None,
            };
        }
        let mut matched: BTreeMap<usize, String> = BTreeMap::new();
        let hostname = subject.hostname.to_lowercase();
        for i in self.hostnames.matches(&hostname) {
            let (system, pattern) = &self.hostname_owners[i];
            matched
                .entry(*system)
                .or_insert_with(|| format!("hostname {hostname} matches {pattern}"));
        }
        if let Some((vendor, model)) = &subject.vendor_model {
            let key = format!("{vendor}:{model}").to_lowercase();
            for i in self.devices.matches(&key) {
                let (system, pattern) = &self.device_owners[i];
                matched
                    .entry(*system)
                    .or_insert_with(|| format!("device {vendor} {model} matches {pattern}"));
            }
        }
        for address in &subject.addresses {
            for (len, nets) in &self.networks {
                let Ok(net) = IpNet::new(*address, *len).map(|n| n.trunc()) else {
                    continue;
                };
                for system in nets.get(&net).into_iter().flatten() {
                    matched
                        .entry(*system)
                        .or_insert_with(|| format!("address {address} is in {net}"));
                }
            }
        }
        for (key, value) in &subject.labels {
            for system in self
                .labels
                .get(&(key.clone(), value.clone()))
                .into_iter()
                .flatten()
            {
                matched
                    .entry(*system)
                    .or_insert_with(|| format!("agent label {key}={value}"));
            }
        }
        let links: Vec<Link> = matched
            .into_iter()
            .map(|(i, reason)| Link {
                system_id: self.system_ids[i].clone(),
                reason,
                explicit: false,
            })
            .collect();
        let conflict = (links.len() > 1).then(|| {
            format!(
                "matched by patterns of {} systems ({}); add the asset id to the right system to decide",
                links.len(),
                links.iter().map(|l| l.system_id.as_str()).collect::<Vec<_>>().join(", ")
            )
        });
        AssetLinks { links, conflict }
    }
}

fn compile(pattern: &str) -> Option<Glob> {
    match Glob::new(&pattern.to_lowercase()) {
        Ok(glob) => Some(glob),
        Err(error) => {
            tracing::warn!(%pattern, %error, "link pattern skipped");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{LinkRules, System};

    fn system(id: &str, links: LinkRules) -> System {
        System {
            id: id.into(),
            name: id.into(),
            description: String::new(),
            system_owner: None,
            system_administrator: None,
            information_owner: None,
            classification: None,
            critical_to_society: false,
            business_critical: false,
            links,
            attestations: vec![],
        }
    }

    fn systems() -> Vec<System> {
        vec![
            system(
                "journal",
                LinkRules {
                    hostnames: vec!["journal-*".into()],
                    ..Default::default()
                },
            ),
            system(
                "net",
                LinkRules {
                    cidrs: vec!["10.20.0.0/16".parse().unwrap()],
                    ..Default::default()
                },
            ),
            system(
                "cams",
                LinkRules {
                    devices: vec!["hikvision:ds-2cd*".into()],
                    ..Default::default()
                },
            ),
            system(
                "ward4",
                LinkRules {
                    labels: [("site".into(), "ward4".into())].into(),
                    asset_ids: vec!["pinned".into()],
                    ..Default::default()
                },
            ),
        ]
    }

    #[test]
    fn patterns_link_with_reasons() {
        let linker = Linker::new(&systems());
        let host = LinkSubject {
            asset_id: "a".into(),
            hostname: "JOURNAL-db1".into(),
            ..Default::default()
        };
        let links = linker.link(&host);
        assert_eq!(links.links.len(), 1);
        assert_eq!(links.links[0].system_id, "journal");
        assert!(links.links[0].reason.contains("journal-*"));

        let cam = LinkSubject {
            asset_id: "c".into(),
            vendor_model: Some(("Hikvision".into(), "DS-2CD2143G2".into())),
            addresses: vec!["10.30.0.5".parse().unwrap()],
            ..Default::default()
        };
        assert_eq!(linker.link(&cam).links[0].system_id, "cams");
        let nothing = LinkSubject {
            asset_id: "x".into(),
            hostname: "printer".into(),
            ..Default::default()
        };
        assert!(linker.link(&nothing).links.is_empty());
    }

    #[test]
    fn several_pattern_matches_are_a_reported_conflict() {
        let linker = Linker::new(&systems());
        let host = LinkSubject {
            asset_id: "a".into(),
            hostname: "journal-db1".into(),
            addresses: vec!["10.20.1.1".parse().unwrap()],
            ..Default::default()
        };
        let links = linker.link(&host);
        assert_eq!(links.links.len(), 2);
        assert!(links.conflict.unwrap().contains("journal, net"));
    }

    #[test]
    fn explicit_ids_beat_patterns() {
        let linker = Linker::new(&systems());
        let host = LinkSubject {
            asset_id: "pinned".into(),
            hostname: "journal-db1".into(),
            ..Default::default()
        };
        let links = linker.link(&host);
        assert_eq!(links.links.len(), 1);
        assert_eq!(links.links[0].system_id, "ward4");
        assert!(links.links[0].explicit);
        assert!(links.conflict.is_none());
    }
}
