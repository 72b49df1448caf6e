//! Validation of an incoming `ReportRequest` into a [`ReportInput`]: every field is checked
//! before anything is stored, and a refusal names the offending field. Pure; no I/O.

use std::collections::HashSet;

use prost::Message;
use tillsyn_proto::v1;

use crate::store::{ControlInput, DeviceInput, ObservationInput, ReportInput, StoredEvidence};

/// Most devices accepted in one report (a /16 sweep at most).
pub const MAX_DEVICES: usize = 65_536;
const DEVICE_KINDS: &[&str] = &[
    "camera",
    "plc",
    "robot",
    "building_control",
    "network",
    "printer",
    "iot",
    "unknown",
];

/// Most observations accepted in one report.
pub const MAX_OBSERVATIONS: usize = 200_000;
/// Longest accepted identifier-like string (names, categories, states).
const MAX_NAME: usize = 1024;

/// Why a report was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{field}: {problem}")]
pub struct ReportRejected {
    /// The offending field, e.g. `observations[3].value_json`.
    pub field: String,
    /// What is wrong with it.
    pub problem: String,
}

fn reject(field: impl Into<String>, problem: impl Into<String>) -> ReportRejected {
    ReportRejected {
        field: field.into(),
        problem: problem.into(),
    }
}

/// Validates `request` sent by `agent_id` (taken from its certificate).
pub fn validate(
    agent_id: &str,
    request: &v1::ReportRequest,
) -> Result<ReportInput, ReportRejected> {
    let report_id = uuid::Uuid::parse_str(&request.report_id)
        .map_err(|e| reject("report_id", format!("must be a UUID: {e}")))?;
    let host = request
        .host
        .as_ref()
        .ok_or_else(|| reject("host", "is required"))?;
    check_name("host.hostname", &host.hostname, true)?;
    if request.observations.len() > MAX_OBSERVATIONS {
        return Err(reject(
            "observations",
            format!(
                "{} entries, more than the {MAX_OBSERVATIONS} limit",
                request.observations.len()
            ),
        ));
    }
    Ok(ReportInput {
        agent_id: agent_id.to_string(),
        report_id: report_id.to_string(),
        collected_at: request.collected_at_unix_ms,
        size_bytes: i64::try_from(request.encoded_len()).unwrap_or(i64::MAX),
        agent_version: request.agent_version.clone(),
        hostname: host.hostname.clone(),
        host_facts: host_facts(host),
        observations: observations("observations", &request.observations)?,
        controls: controls("controls", &request.controls)?,
        devices: devices(&request.devices)?,
        sequence: i64::try_from(request.sequence)
            .map_err(|_| reject("sequence", "out of range"))?,
        delta_base: delta_base(request)?,
        removed_observations: removed(request)?,
        job_id: if request.job_id.is_empty() {
            None
        } else {
            Some(
                uuid::Uuid::parse_str(&request.job_id)
                    .map_err(|e| reject("job_id", format!("must be a UUID: {e}")))?
                    .to_string(),
            )
        },
    })
}

fn check_name(field: &str, value: &str, required: bool) -> Result<(), ReportRejected> {
    if required && value.trim().is_empty() {
        return Err(reject(field, "must not be empty"));
    }
    if value.len() > MAX_NAME {
        return Err(reject(field, format!("longer than {MAX_NAME} bytes")));
    }
    Ok(())
}

fn delta_base(request: &v1::ReportRequest) -> Result<Option<i64>, ReportRejected> {
    if !request.delta {
        if !request.removed_observations.is_empty() {
            return Err(reject(
                "removed_observations",
                "only a delta report may remove observations",
            ));
        }
        return Ok(None);
    }
    if request.sequence == 0 || request.base_sequence >= request.sequence {
        return Err(reject(
            "base_sequence",
            format!(
                "a delta needs 0 <= base_sequence < sequence, got {} and {}",
                request.base_sequence, request.sequence
            ),
        ));
    }
    i64::try_from(request.base_sequence)
        .map(Some)
        .map_err(|_| reject("base_sequence", "out of range"))
}

fn removed(request: &v1::ReportRequest) -> Result<Vec<(String, String)>, ReportRejected> {
    if request.removed_observations.len() > MAX_OBSERVATIONS {
        return Err(reject(
            "removed_observations",
            format!("more than the {MAX_OBSERVATIONS} limit"),
        ));
    }
    request
        .removed_observations
        .iter()
        .enumerate()
        .map(|(i, k)| {
            check_name(
                &format!("removed_observations[{i}].category"),
                &k.category,
                true,
            )?;
            check_name(&format!("removed_observations[{i}].name"), &k.name, true)?;
            Ok((k.category.clone(), k.name.clone()))
        })
        .collect()
}

fn devices(list: &[v1::Device]) -> Result<Vec<DeviceInput>, ReportRejected> {
    if list.len() > MAX_DEVICES {
        return Err(reject(
            "devices",
            format!("{} entries, more than the {MAX_DEVICES} limit", list.len()),
        ));
    }
    let mut seen = HashSet::new();
    list.iter()
        .enumerate()
        .map(|(i, d)| {
            let at = |f: &str| format!("devices[{i}].{f}");
            let address: std::net::IpAddr =
                d.address.parse().map_err(|_| reject(at("address"), format!("{:?} is not an IP address", d.address)))?;
            if !seen.insert(address) {
                return Err(reject(at("address"), format!("device {address} appears twice")));
            }
            let kind = if d.kind.is_empty() { "unknown" } else { d.kind.as_str() };
            if !DEVICE_KINDS.contains(&kind) {
                return Err(reject(at("kind"), format!("{kind:?} is not one of {}", DEVICE_KINDS.join(", "))));
            }
            for (field, value) in [("vendor", &d.vendor), ("model", &d.model), ("firmware", &d.firmware), ("serial", &d.serial), ("mac", &d.mac)] {
                check_name(&at(field), value, false)?;
            }
            let name = match (d.vendor.is_empty(), d.model.is_empty()) {
                (false, false) => format!("{} {} ({address})", d.vendor, d.model),
                (false, true) => format!("{} ({address})", d.vendor),
                _ => address.to_string(),
            };
            Ok(DeviceInput {
                address: address.to_string(),
                name,
                kind: kind.to_string(),
                identity: serde_json::json!({
                    "vendor": d.vendor, "model": d.model, "firmware": d.firmware, "serial": d.serial, "mac": d.mac, "kind": kind,
                }),
                observations: observations(&at("observations"), &d.observations)?,
                controls: controls(&at("controls"), &d.controls)?,
            })
        })
        .collect()
}

fn observations(
    prefix: &str,
    list: &[v1::Observation],
) -> Result<Vec<ObservationInput>, ReportRejected> {
    let mut seen = HashSet::with_capacity(list.len());
    list.iter()
        .enumerate()
        .map(|(i, o)| {
            let at = |f: &str| format!("{prefix}[{i}].{f}");
            check_name(&at("category"), &o.category, true)?;
            check_name(&at("name"), &o.name, true)?;
            if !seen.insert((o.category.as_str(), o.name.as_str())) {
                return Err(reject(
                    at("name"),
                    format!("duplicate observation {}/{}", o.category, o.name),
                ));
            }
            let value = serde_json::from_str(&o.value_json)
                .map_err(|e| reject(at("value_json"), format!("not JSON: {e}")))?;
            Ok(ObservationInput {
                category: o.category.clone(),
                name: o.name.clone(),
                value,
                evidence: evidence(&o.evidence),
            })
        })
        .collect()
}

const CONTROL_STATES: &[(&str, &[&str])] = &[
    ("mfa", &["enforced", "available", "absent", "unknown"]),
    ("transit_encryption", &["encrypted", "plaintext", "unknown"]),
    ("rest_encryption", &["encrypted", "unencrypted", "unknown"]),
    (
        "log_protection",
        &["forwarded", "local_only", "none", "unknown"],
    ),
    ("privileged_access", &["restricted", "exposed", "unknown"]),
];

fn controls(prefix: &str, list: &[v1::Control]) -> Result<Vec<ControlInput>, ReportRejected> {
    let mut seen = HashSet::new();
    list.iter()
        .enumerate()
        .map(|(i, c)| {
            let field = format!("{prefix}[{i}]");
            let states = CONTROL_STATES
                .iter()
                .find(|(name, _)| *name == c.name)
                .map(|(_, states)| *states)
                .ok_or_else(|| {
                    reject(
                        format!("{field}.name"),
                        format!("unknown control {:?}", c.name),
                    )
                })?;
            if !states.contains(&c.state.as_str()) {
                return Err(reject(
                    format!("{field}.state"),
                    format!("{:?} is not one of {}", c.state, states.join(", ")),
                ));
            }
            if !seen.insert(c.name.as_str()) {
                return Err(reject(
                    format!("{field}.name"),
                    format!("duplicate control {}", c.name),
                ));
            }
            Ok(ControlInput {
                name: c.name.clone(),
                state: c.state.clone(),
                reason: c.reason.clone(),
                evidence: evidence(&c.evidence),
            })
        })
        .collect()
}

fn evidence(list: &[v1::Evidence]) -> Vec<StoredEvidence> {
    list.iter()
        .map(|e| StoredEvidence {
            source: e.source.clone(),
            line: e.line,
            probe: e.probe.clone(),
            detail: e.detail.clone(),
        })
        .collect()
}

fn host_facts(host: &v1::HostInventory) -> serde_json::Value {
    serde_json::json!({
        "hostname": host.hostname,
        "os_name": host.os_name,
        "os_version": host.os_version,
        "kernel_version": host.kernel_version,
        "architecture": host.architecture,
        "cpu_model": host.cpu_model,
        "cpu_count": host.cpu_count,
        "memory_total_bytes": host.memory_total_bytes,
        "boot_time_unix": host.boot_time_unix,
        "uptime_seconds": host.uptime_seconds,
        "disks": host.disks.iter().map(|d| serde_json::json!({
            "name": d.name, "mount_point": d.mount_point, "file_system": d.file_system,
            "total_bytes": d.total_bytes, "available_bytes": d.available_bytes, "removable": d.removable,
        })).collect::<Vec<_>>(),
        "interfaces": host.interfaces.iter().map(|i| serde_json::json!({
            "name": i.name, "mac": i.mac, "addresses": i.addresses,
        })).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> v1::ReportRequest {
        v1::ReportRequest {
            report_id: uuid::Uuid::now_v7().to_string(),
            host: Some(v1::HostInventory {
                hostname: "h".into(),
                ..Default::default()
            }),
            observations: vec![v1::Observation {
                category: "package".into(),
                name: "openssh-server".into(),
                value_json: r#"{"version":"1:9.2p1-2"}"#.into(),
                evidence: vec![],
            }],
            controls: vec![v1::Control {
                name: "mfa".into(),
                state: "absent".into(),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn a_valid_report_passes_and_keeps_the_certificate_identity() {
        let input = validate("agent-a", &valid()).unwrap();
        assert_eq!(input.agent_id, "agent-a");
        assert_eq!(input.observations[0].value["version"], "1:9.2p1-2");
    }

    type Mutation = Box<dyn Fn(&mut v1::ReportRequest)>;

    #[test]
    fn each_bad_field_is_named() {
        let cases: Vec<(Mutation, &str)> = vec![
            (Box::new(|r| r.report_id = "nope".into()), "report_id"),
            (Box::new(|r| r.host = None), "host"),
            (
                Box::new(|r| r.observations[0].value_json = "{".into()),
                "observations[0].value_json",
            ),
            (
                Box::new(|r| r.observations.push(r.observations[0].clone())),
                "observations[1].name",
            ),
            (
                Box::new(|r| r.controls[0].state = "ok".into()),
                "controls[0].state",
            ),
            (
                Box::new(|r| r.controls[0].name = "magic".into()),
                "controls[0].name",
            ),
            (
                Box::new(|r| r.host.as_mut().unwrap().hostname = " ".into()),
                "host.hostname",
            ),
            (
                Box::new(|r| {
                    r.delta = true;
                    r.sequence = 3;
                    r.base_sequence = 3;
                }),
                "base_sequence",
            ),
            (
                Box::new(|r| {
                    r.removed_observations.push(v1::ObservationKey {
                        category: "a".into(),
                        name: "b".into(),
                    });
                }),
                "removed_observations",
            ),
            (
                Box::new(|r| {
                    r.devices.push(v1::Device {
                        address: "plc-7".into(),
                        ..Default::default()
                    });
                }),
                "devices[0].address",
            ),
            (
                Box::new(|r| {
                    r.devices.push(v1::Device {
                        address: "10.0.0.7".into(),
                        kind: "toaster".into(),
                        ..Default::default()
                    });
                }),
                "devices[0].kind",
            ),
        ];
        for (mutate, field) in cases {
            let mut report = valid();
            mutate(&mut report);
            let err = validate("a", &report).unwrap_err();
            assert_eq!(err.field, field, "{err}");
        }
    }
}
