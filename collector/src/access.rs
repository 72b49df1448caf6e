//! The access list of a system: who can log in to its hosts and with which privilege, the input
//! of the owner's yearly access review (behörighetsgenomgång, policy 6.4). Built from the
//! agents' `account`, `admin_group` and `sudo` observations of every host linked to the system;
//! nothing here is inferred beyond what those files say (directory-service accounts that are
//! not in `/etc/passwd` are not seen).

use serde::{Deserialize, Serialize};

use crate::compliance::{ComplianceError, FindingFormat, evaluated};
use crate::config::CollectorDir;
use crate::output;
use crate::store::{ObservationRecord, Store, StoredEvidence};

/// One person or account that can log in to a host of the system.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccessEntry {
    /// The host's name.
    pub host: String,
    /// The account name, or the sudoers user spec (`%admins`, `ADMINS`) for a rule that names
    /// no local account.
    pub account: String,
    /// Numeric uid; `None` for a sudoers spec.
    pub uid: Option<u64>,
    /// `set`, `locked`, `empty` or `unknown` (never the hash).
    pub password: String,
    /// The last login as the host's login records tell it (RFC 3339), `never`, or `unknown`
    /// when the records could not be read or the agent predates them.
    pub last_login: String,
    /// `root`, `administrator` (an admin group or sudo) or `user`.
    pub privilege: String,
    /// How: `uid 0`, `group sudo`, `sudo without password: RULE`.
    pub via: Vec<String>,
    /// File and line of each fact.
    pub evidence: Vec<String>,
}

fn evidence_text(evidence: &[StoredEvidence]) -> Vec<String> {
    evidence
        .iter()
        .map(|e| {
            if e.line > 0 {
                format!("{}:{}", e.source, e.line)
            } else {
                e.source.clone()
            }
        })
        .collect()
}

/// The entries of one host from its observations (pure).
pub fn host_entries(host: &str, observations: &[ObservationRecord]) -> Vec<AccessEntry> {
    let of = |category: &'static str| observations.iter().filter(move |o| o.category == category);
    let groups: Vec<(&str, Vec<&str>, &ObservationRecord)> = of("admin_group")
        .map(|g| {
            let members = g.value["members"]
                .as_array()
                .map(|m| m.iter().filter_map(|v| v.as_str()).collect())
                .unwrap_or_default();
            (g.name.as_str(), members, g)
        })
        .collect();
    let rules: Vec<(String, &ObservationRecord)> = of("sudo")
        .filter(|r| r.name == "nopasswd")
        .map(|r| (r.value["rule"].as_str().unwrap_or_default().to_string(), r))
        .collect();
    let mut matched_rules = vec![false; rules.len()];
    let mut entries = Vec::new();
    for account in of("account") {
        let uid = account.value["uid"].as_u64();
        let mut via = Vec::new();
        let mut evidence = evidence_text(&account.evidence);
        if uid == Some(0) {
            via.push("uid 0".to_string());
        }
        let member_of: Vec<&str> = groups
            .iter()
            .filter(|(_, members, _)| members.contains(&account.name.as_str()))
            .map(|(name, _, record)| {
                evidence.extend(evidence_text(&record.evidence));
                *name
            })
            .collect();
        via.extend(member_of.iter().map(|g| format!("group {g}")));
        for (i, (rule, record)) in rules.iter().enumerate() {
            let spec = rule.split_whitespace().next().unwrap_or_default();
            let names_it = spec.split(',').any(|user| {
                user == account.name
                    || user
                        .strip_prefix('%')
                        .is_some_and(|g| member_of.contains(&g))
            });
            if names_it {
                matched_rules[i] = true;
                via.push(format!("sudo without password: {rule}"));
                evidence.extend(evidence_text(&record.evidence));
            }
        }
        let privilege = if uid == Some(0) {
            "root"
        } else if via.is_empty() {
            "user"
        } else {
            "administrator"
        };
        entries.push(AccessEntry {
            host: host.to_string(),
            account: account.name.clone(),
            uid,
            password: account.value["password"]
                .as_str()
                .unwrap_or("unknown")
                .to_string(),
            last_login: account.value["last_login"]
                .as_str()
                .unwrap_or("unknown")
                .to_string(),
            privilege: privilege.into(),
            via,
            evidence,
        });
    }
    for ((rule, record), matched) in rules.iter().zip(matched_rules) {
        if matched {
            continue;
        }
        entries.push(AccessEntry {
            host: host.to_string(),
            account: rule
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_string(),
            uid: None,
            password: "unknown".into(),
            last_login: "unknown".into(),
            privilege: "administrator".into(),
            via: vec![format!("sudo without password: {rule}")],
            evidence: evidence_text(&record.evidence),
        });
    }
    entries
}

/// Every access entry of every host linked to `system_id`, by host then account.
pub async fn access_list(
    dir: &CollectorDir,
    store: &dyn Store,
    system_id: &str,
) -> Result<Vec<AccessEntry>, ComplianceError> {
    let (snapshot, _) = evaluated(dir, store).await?;
    if !snapshot.systems.iter().any(|s| s.id == system_id) {
        return Err(ComplianceError::Argument(format!(
            "no system {system_id:?} in the register"
        )));
    }
    Ok(entries_of(store, &snapshot, system_id).await?)
}

/// The access entries of the hosts linked to `system_id` in an evaluated snapshot.
pub async fn entries_of(
    store: &dyn Store,
    snapshot: &crate::evaluation::Snapshot,
    system_id: &str,
) -> Result<Vec<AccessEntry>, crate::store::StoreError> {
    let mut entries = Vec::new();
    for (asset, links) in snapshot.assets.iter().zip(&snapshot.links) {
        if asset.kind != "host" || !links.links.iter().any(|l| l.system_id == system_id) {
            continue;
        }
        let observations = store
            .observations(&asset.asset_id, &["account", "admin_group", "sudo"])
            .await?;
        entries.extend(host_entries(&asset.hostname, &observations));
    }
    Ok(entries)
}

/// `systems access SYSTEM`.
pub async fn access(
    dir: &CollectorDir,
    store: &dyn Store,
    system_id: &str,
    format: FindingFormat,
) -> Result<String, ComplianceError> {
    let entries = access_list(dir, store, system_id).await?;
    Ok(match format {
        FindingFormat::Json => output::json(&entries),
        FindingFormat::Table => output::table(
            &[
                "HOST",
                "ACCOUNT",
                "UID",
                "PASSWORD",
                "LAST LOGIN",
                "PRIVILEGE",
                "VIA",
            ],
            &entries
                .iter()
                .map(|e| {
                    vec![
                        e.host.clone(),
                        e.account.clone(),
                        e.uid.map_or_else(|| "-".into(), |u| u.to_string()),
                        e.password.clone(),
                        e.last_login.clone(),
                        e.privilege.clone(),
                        e.via.join("; "),
                    ]
                })
                .collect::<Vec<_>>(),
        ),
        FindingFormat::Csv => output::csv(
            &[
                "host",
                "account",
                "uid",
                "password",
                "last_login",
                "privilege",
                "via",
                "evidence",
            ],
            &entries
                .iter()
                .map(|e| {
                    vec![
                        e.host.clone(),
                        e.account.clone(),
                        e.uid.map(|u| u.to_string()).unwrap_or_default(),
                        e.password.clone(),
                        e.last_login.clone(),
                        e.privilege.clone(),
                        e.via.join("; "),
                        e.evidence.join(" | "),
                    ]
                })
                .collect::<Vec<_>>(),
        )?,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obs(category: &str, name: &str, value: serde_json::Value, line: u32) -> ObservationRecord {
        ObservationRecord {
            category: category.into(),
            name: name.into(),
            value,
            evidence: vec![StoredEvidence {
                source: format!("/etc/{category}"),
                line,
                probe: "test".into(),
                detail: String::new(),
            }],
        }
    }

    #[test]
    fn privileges_come_from_uid_groups_and_sudo_rules() {
        let observations = [
            obs(
                "account",
                "root",
                json!({"uid": 0, "password": "locked"}),
                1,
            ),
            obs(
                "account",
                "anna",
                json!({"uid": 1000, "password": "set"}),
                30,
            ),
            obs(
                "account",
                "erik",
                json!({"uid": 1001, "password": "empty"}),
                31,
            ),
            obs("account", "bo", json!({"uid": 1002, "password": "set"}), 32),
            obs("admin_group", "sudo", json!({"members": ["anna"]}), 20),
            obs(
                "sudo",
                "nopasswd",
                json!({"rule": "erik ALL=(ALL) NOPASSWD: ALL"}),
                4,
            ),
            obs(
                "sudo",
                "nopasswd",
                json!({"rule": "%ops ALL=(ALL) NOPASSWD: ALL"}),
                5,
            ),
        ];
        let entries = host_entries("db1", &observations);
        let row = |name: &str| entries.iter().find(|e| e.account == name).unwrap();
        assert_eq!(row("root").privilege, "root");
        assert_eq!(row("anna").privilege, "administrator");
        assert_eq!(row("anna").via, ["group sudo"]);
        assert!(
            row("anna")
                .evidence
                .contains(&"/etc/admin_group:20".to_string())
        );
        assert_eq!(row("erik").privilege, "administrator");
        assert_eq!(row("erik").password, "empty");
        assert!(row("erik").via[0].starts_with("sudo without password"));
        assert_eq!(row("bo").privilege, "user");
        // A rule for a group no account is known to be in is listed on its own.
        assert_eq!(row("%ops").privilege, "administrator");
        assert_eq!(row("%ops").uid, None);
    }
}
