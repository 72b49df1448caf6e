//! Turns an [`Inventory`] into a `tillsyn.v1.ReportRequest`. Pure mapping: no I/O.

use tillsyn_proto::v1;

use crate::inventory::{Control, Evidence, Inventory, Observation};

/// Builds a report with a fresh UUIDv7 `report_id`.
pub fn build(inventory: &Inventory) -> v1::ReportRequest {
    build_with_id(inventory, uuid::Uuid::now_v7().to_string())
}

/// Builds a report with the given id (a resend keeps its id so the collector deduplicates it).
pub fn build_with_id(inventory: &Inventory, report_id: String) -> v1::ReportRequest {
    let host = &inventory.host;
    v1::ReportRequest {
        report_id,
        collected_at_unix_ms: inventory.collected_at_unix_ms,
        agent_version: crate::VERSION.to_string(),
        host: Some(v1::HostInventory {
            hostname: host.hostname.clone(),
            os_name: host.os_name.clone(),
            os_version: host.os_version.clone(),
            kernel_version: host.kernel_version.clone(),
            architecture: host.architecture.clone(),
            cpu_model: host.cpu_model.clone(),
            cpu_count: host.cpu_count,
            memory_total_bytes: host.memory_total_bytes,
            boot_time_unix: host.boot_time_unix,
            uptime_seconds: host.uptime_seconds,
            disks: host
                .disks
                .iter()
                .map(|d| v1::Disk {
                    name: d.name.clone(),
                    mount_point: d.mount_point.clone(),
                    file_system: d.file_system.clone(),
                    total_bytes: d.total_bytes,
                    available_bytes: d.available_bytes,
                    removable: d.removable,
                })
                .collect(),
            interfaces: host
                .interfaces
                .iter()
                .map(|i| v1::NetworkInterface {
                    name: i.name.clone(),
                    mac: i.mac.clone(),
                    addresses: i.addresses.clone(),
                })
                .collect(),
        }),
        observations: unique_names(inventory.observations.iter().map(observation).collect()),
        controls: inventory.controls.iter().map(control).collect(),
        ..v1::ReportRequest::default()
    }
}

/// Makes every (category, name) pair unique, as the collector requires (a pair is the identity
/// of a fact across reports). Real hosts do repeat names: multi-arch dpkg (`libc6` for amd64
/// and i386), several installed kernels in rpm. Repeats get the architecture appended
/// (`libc6:i386`), then the version, then a counter, so no fact is dropped.
pub fn unique_names(mut observations: Vec<v1::Observation>) -> Vec<v1::Observation> {
    use std::collections::{HashMap, HashSet};
    let mut counts: HashMap<(String, String), usize> = HashMap::new();
    for o in &observations {
        *counts
            .entry((o.category.clone(), o.name.clone()))
            .or_default() += 1;
    }
    let mut taken: HashSet<(String, String)> = observations
        .iter()
        .filter(|o| counts[&(o.category.clone(), o.name.clone())] == 1)
        .map(|o| (o.category.clone(), o.name.clone()))
        .collect();
    for o in &mut observations {
        if counts[&(o.category.clone(), o.name.clone())] == 1 {
            continue;
        }
        let value: serde_json::Value = serde_json::from_str(&o.value_json).unwrap_or_default();
        let field = |key: &str| {
            value
                .get(key)
                .and_then(|v| v.as_str())
                .filter(|v| !v.is_empty())
        };
        let arch = field("architecture").or_else(|| field("arch"));
        let mut candidates: Vec<String> = Vec::new();
        if let Some(arch) = arch {
            candidates.push(format!("{}:{arch}", o.name));
            if let Some(version) = field("version") {
                candidates.push(format!("{}:{arch}@{version}", o.name));
            }
        } else if let Some(version) = field("version") {
            candidates.push(format!("{}@{version}", o.name));
        }
        candidates.extend((2..).take(10_000).map(|n| format!("{}#{n}", o.name)));
        if let Some(name) = candidates
            .into_iter()
            .find(|n| !taken.contains(&(o.category.clone(), n.clone())))
        {
            taken.insert((o.category.clone(), name.clone()));
            o.name = name;
        }
    }
    observations
}

/// The wire form of an observation.
pub fn observation(o: &Observation) -> v1::Observation {
    v1::Observation {
        category: o.category.clone(),
        name: o.name.clone(),
        value_json: o.value.to_string(),
        evidence: o.evidence.iter().map(evidence).collect(),
    }
}

/// The wire form of a control.
pub fn control(c: &Control) -> v1::Control {
    v1::Control {
        name: c.name.clone(),
        state: c.state.clone(),
        reason: c.reason.clone(),
        evidence: c.evidence.iter().map(evidence).collect(),
    }
}

/// The wire form of evidence.
pub fn evidence(e: &Evidence) -> v1::Evidence {
    v1::Evidence {
        source: e.source.clone(),
        line: e.line,
        probe: e.probe.clone(),
        detail: e.detail.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn package(name: &str, value: &str) -> v1::Observation {
        v1::Observation {
            category: "package".into(),
            name: name.into(),
            value_json: value.into(),
            evidence: vec![],
        }
    }

    #[test]
    fn repeated_fact_names_are_made_unique_without_dropping_any() {
        let names: Vec<String> = unique_names(vec![
            package("libc6", r#"{"version":"2.36","architecture":"amd64"}"#),
            package("libc6", r#"{"version":"2.36","architecture":"i386"}"#),
            package(
                "kernel",
                r#"{"version":"5.14.0-1","architecture":"x86_64"}"#,
            ),
            package(
                "kernel",
                r#"{"version":"5.14.0-2","architecture":"x86_64"}"#,
            ),
            package("odd", "not json"),
            package("odd", "not json"),
            package("zlib", r#"{"version":"1"}"#),
        ])
        .into_iter()
        .map(|o| o.name)
        .collect();
        assert_eq!(
            names,
            [
                "libc6:amd64",
                "libc6:i386",
                "kernel:x86_64",
                "kernel:x86_64@5.14.0-2",
                "odd#2",
                "odd#3",
                "zlib"
            ]
        );
    }

    #[test]
    fn report_carries_host_and_controls() {
        let mut inventory = Inventory::default();
        inventory.host.hostname = "h".into();
        inventory.controls.push(Control {
            name: "mfa".into(),
            state: "absent".into(),
            reason: "r".into(),
            evidence: vec![Evidence {
                source: "/etc/ssh/sshd_config".into(),
                line: 3,
                probe: "sshd".into(),
                detail: "PasswordAuthentication yes".into(),
            }],
        });
        let report = build(&inventory);
        assert_eq!(
            uuid::Uuid::parse_str(&report.report_id)
                .unwrap()
                .get_version_num(),
            7
        );
        assert_eq!(report.host.unwrap().hostname, "h");
        assert_eq!(report.controls[0].evidence[0].line, 3);
    }
}
