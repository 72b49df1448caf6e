//! Validation of an incoming `ReportRequest` into a [`ReportInput`] (and the input types the
//! store takes): every field is checked before anything is stored, and a refusal names the
//! offending field. Pure; no I/O. The collector re-exports this module as `ingest`.
//!
//! This is where the text gate ([`tillsyn_text`]) is applied to what agents and devices say:
//! - the host name must be a host name (RFC 1123 or an address), else the report is refused;
//! - identifiers the agent itself produces (observation categories, the agent version) must
//!   hold no control character, else the report is refused;
//! - control names and states and device kinds must be one of their known values;
//! - everything else is free text (observation names and values, evidence, control reasons,
//!   device vendor/model/firmware/serial/MAC, the host frame's strings): its content is kept
//!   and control characters are escaped visibly. Each escape is recorded beside the text with
//!   the original length in bytes ([`EscapeNote`]): as an extra evidence entry of the
//!   observation or control (probe `text-gate`), or under `escaped_text` in the host frame and
//!   device identity facts. Nothing is lost silently.

use std::collections::HashSet;

use prost::Message;
use serde::{Deserialize, Serialize};
use tillsyn_proto::v1;

/// A piece of evidence as stored (JSON-serialisable).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct StoredEvidence {
    /// File, socket or probe target.
    pub source: String,
    /// 1-based line, 0 if none.
    #[serde(default)]
    pub line: u32,
    /// Collector or probe.
    pub probe: String,
    /// Detail.
    #[serde(default)]
    pub detail: String,
}

/// An observation to store.
#[derive(Clone, Debug, PartialEq)]
pub struct ObservationInput {
    /// Category.
    pub category: String,
    /// Name within the category.
    pub name: String,
    /// Value (validated JSON).
    pub value: serde_json::Value,
    /// Evidence.
    pub evidence: Vec<StoredEvidence>,
}

/// A control verdict to store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ControlInput {
    /// `mfa`, `transit_encryption`, `rest_encryption`.
    pub name: String,
    /// Verdict.
    pub state: String,
    /// Why.
    pub reason: String,
    /// Evidence.
    pub evidence: Vec<StoredEvidence>,
}

/// A device found by a discovery sweep, validated.
#[derive(Clone, Debug, PartialEq)]
pub struct DeviceInput {
    /// The IP address it answered on.
    pub address: String,
    /// Name shown to people (vendor + model, or the address).
    pub name: String,
    /// Device kind: camera, plc, robot, building_control, network, printer, iot, unknown.
    pub kind: String,
    /// Identity facts (vendor, model, firmware, serial, mac) as JSON.
    pub identity: serde_json::Value,
    /// Observations (services, protocol fields).
    pub observations: Vec<ObservationInput>,
    /// Controls (transit_encryption, mfa as authentication).
    pub controls: Vec<ControlInput>,
}

/// A validated report, ready to store in one transaction.
#[derive(Clone, Debug)]
pub struct ReportInput {
    /// The authenticated sender (from its certificate).
    pub agent_id: String,
    /// Dedup key with `agent_id`.
    pub report_id: String,
    /// Collection time (ms).
    pub collected_at: i64,
    /// Encoded size, for accounting.
    pub size_bytes: i64,
    /// Agent version.
    pub agent_version: String,
    /// Host name from the report.
    pub hostname: String,
    /// The host frame as JSON.
    pub host_facts: serde_json::Value,
    /// Observations.
    pub observations: Vec<ObservationInput>,
    /// Controls.
    pub controls: Vec<ControlInput>,
    /// Devices found by discovery.
    pub devices: Vec<DeviceInput>,
    /// The agent's sequence number of this report (0: not numbered, always full).
    pub sequence: i64,
    /// For a delta: the sequence it applies to. `None` for a full report.
    pub delta_base: Option<i64>,
    /// For a delta: observations that are gone (category, name).
    pub removed_observations: Vec<(String, String)>,
    /// The job this report answers, if any.
    pub job_id: Option<String>,
}

/// What the text gate escaped in one field: kept beside the stored text.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct EscapeNote {
    /// The field within its record, e.g. `value.sys_name` or `os_name`.
    pub field: String,
    /// Characters shown as escapes.
    pub escaped: usize,
    /// Length of the field as received, in bytes (UTF-8).
    pub original_bytes: usize,
}

impl EscapeNote {
    /// The note as evidence of the observation or control it belongs to.
    fn evidence(&self) -> StoredEvidence {
        StoredEvidence {
            source: "collector".into(),
            line: 0,
            probe: TEXT_GATE_PROBE.into(),
            detail: format!(
                "{}: {} control character(s) shown escaped; {} bytes as received",
                self.field, self.escaped, self.original_bytes
            ),
        }
    }
}

/// The `probe` of the evidence entries the text gate adds.
pub const TEXT_GATE_PROBE: &str = "text-gate";

/// Most notes kept per record; further escaped fields are summed into one more note, so a
/// value of a million tiny hostile strings cannot multiply into a million evidence entries.
const MAX_NOTES: usize = 16;

/// Escapes free text through [`tillsyn_text::sanitise`], collecting a note per changed field.
#[derive(Default)]
struct Gate {
    notes: Vec<EscapeNote>,
    /// Escaped fields beyond [`MAX_NOTES`]: how many, characters escaped, bytes received.
    more: (usize, usize, usize),
}

impl Gate {
    fn text(&mut self, field: &str, value: &str) -> String {
        let s = tillsyn_text::sanitise(value);
        if !s.is_unchanged() {
            if self.notes.len() < MAX_NOTES {
                self.notes.push(EscapeNote {
                    field: field.to_string(),
                    escaped: s.escaped,
                    original_bytes: s.original_bytes,
                });
            } else {
                self.more.0 += 1;
                self.more.1 += s.escaped;
                self.more.2 += s.original_bytes;
            }
        }
        s.text.into_owned()
    }

    /// The notes, the summary of those beyond [`MAX_NOTES`] last.
    fn finish(mut self) -> Vec<EscapeNote> {
        let (fields, escaped, original_bytes) = self.more;
        if fields > 0 {
            self.notes.push(EscapeNote {
                field: format!("{fields} more field(s)"),
                escaped,
                original_bytes,
            });
        }
        self.notes
    }

    /// Every string in a JSON value, object keys included.
    fn json(&mut self, path: &str, value: serde_json::Value) -> serde_json::Value {
        use serde_json::Value;
        match value {
            Value::String(text) => Value::String(self.text(path, &text)),
            Value::Array(items) => Value::Array(
                items
                    .into_iter()
                    .enumerate()
                    .map(|(i, v)| self.json(&format!("{path}[{i}]"), v))
                    .collect(),
            ),
            Value::Object(map) => Value::Object(
                map.into_iter()
                    .map(|(k, v)| {
                        let key = self.text(&format!("{path} key"), &k);
                        let v = self.json(&format!("{path}.{key}"), v);
                        (key, v)
                    })
                    .collect(),
            ),
            other => other,
        }
    }

    fn evidence(&mut self, list: &[v1::Evidence]) -> Vec<StoredEvidence> {
        list.iter()
            .enumerate()
            .map(|(i, e)| StoredEvidence {
                source: self.text(&format!("evidence[{i}].source"), &e.source),
                line: e.line,
                probe: self.text(&format!("evidence[{i}].probe"), &e.probe),
                detail: self.text(&format!("evidence[{i}].detail"), &e.detail),
            })
            .collect()
    }

    /// The notes as evidence entries appended to `evidence`.
    fn into_evidence(self, mut evidence: Vec<StoredEvidence>) -> Vec<StoredEvidence> {
        evidence.extend(self.finish().iter().map(EscapeNote::evidence));
        evidence
    }

    /// The notes under `escaped_text` in a facts object (absent when there are none).
    fn into_facts(self, mut facts: serde_json::Value) -> serde_json::Value {
        let notes = self.finish();
        if !notes.is_empty()
            && let Some(map) = facts.as_object_mut()
        {
            map.insert(
                "escaped_text".into(),
                serde_json::to_value(&notes).unwrap_or_default(),
            );
        }
        facts
    }
}

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
    tillsyn_text::hostname::check(&host.hostname)
        .map_err(|e| reject("host.hostname", e.to_string()))?;
    check_identifier("agent_version", &request.agent_version)?;
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

/// An identifier the agent produces itself: refused when it holds a character the text gate
/// would escape, since escaping it would change what it identifies.
pub fn check_identifier(field: &str, value: &str) -> Result<(), ReportRejected> {
    identifier_problem(value).map_or(Ok(()), |problem| Err(reject(field, problem)))
}

fn identifier_problem(value: &str) -> Option<String> {
    value
        .char_indices()
        .find(|(_, c)| tillsyn_text::store::is_escaped_at_ingest(*c))
        .map(|(at, c)| {
            format!(
                "holds the control character {} at byte {at}",
                tillsyn_text::output::terminal(&c.to_string())
            )
        })
}

fn check_name(field: &str, value: &str, required: bool) -> Result<(), ReportRejected> {
    name_problem(value, required).map_or(Ok(()), |problem| Err(reject(field, problem)))
}

// The problems come apart from the field's name so that a report's thousand observations
// format a field name (`observations[17].name`) only for the one that is refused.
fn name_problem(value: &str, required: bool) -> Option<String> {
    if required && value.trim().is_empty() {
        return Some("must not be empty".into());
    }
    (value.len() > MAX_NAME).then(|| format!("longer than {MAX_NAME} bytes"))
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
            check_identifier(&format!("removed_observations[{i}].category"), &k.category)?;
            // The same gate as at storage, so the key matches the stored observation's.
            Ok((
                k.category.clone(),
                tillsyn_text::sanitise(&k.name).text.into_owned(),
            ))
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
            let mut gate = Gate::default();
            let [vendor, model, firmware, serial, mac] = [("vendor", &d.vendor), ("model", &d.model), ("firmware", &d.firmware), ("serial", &d.serial), ("mac", &d.mac)]
                .map(|(field, value)| gate.text(field, value));
            let name = match (vendor.is_empty(), model.is_empty()) {
                (false, false) => format!("{vendor} {model} ({address})"),
                (false, true) => format!("{vendor} ({address})"),
                _ => address.to_string(),
            };
            Ok(DeviceInput {
                address: address.to_string(),
                name,
                kind: kind.to_string(),
                identity: gate.into_facts(serde_json::json!({
                    "vendor": vendor, "model": model, "firmware": firmware, "serial": serial, "mac": mac, "kind": kind,
                })),
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
            let problem = [
                ("category", name_problem(&o.category, true)),
                ("name", name_problem(&o.name, true)),
                ("category", identifier_problem(&o.category)),
            ]
            .into_iter()
            .find_map(|(field, problem)| problem.map(|p| (field, p)));
            if let Some((field, problem)) = problem {
                return Err(reject(at(field), problem));
            }
            let mut gate = Gate::default();
            let name = gate.text("name", &o.name);
            if !seen.insert((o.category.clone(), name.clone())) {
                return Err(reject(
                    at("name"),
                    format!(
                        "duplicate observation {}/{}",
                        o.category,
                        tillsyn_text::output::terminal(&name)
                    ),
                ));
            }
            let value = serde_json::from_str(&o.value_json)
                .map_err(|e| reject(at("value_json"), format!("not JSON: {e}")))?;
            let value = gate.json("value", value);
            let evidence = gate.evidence(&o.evidence);
            Ok(ObservationInput {
                category: o.category.clone(),
                name,
                value,
                evidence: gate.into_evidence(evidence),
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
            let mut gate = Gate::default();
            let reason = gate.text("reason", &c.reason);
            let evidence = gate.evidence(&c.evidence);
            Ok(ControlInput {
                name: c.name.clone(),
                state: c.state.clone(),
                reason,
                evidence: gate.into_evidence(evidence),
            })
        })
        .collect()
}

fn host_facts(host: &v1::HostInventory) -> serde_json::Value {
    let mut gate = Gate::default();
    let mut text = |field: &str, value: &str| serde_json::Value::String(gate.text(field, value));
    let facts = serde_json::json!({
        "hostname": host.hostname,
        "os_name": text("os_name", &host.os_name),
        "os_version": text("os_version", &host.os_version),
        "kernel_version": text("kernel_version", &host.kernel_version),
        "architecture": text("architecture", &host.architecture),
        "cpu_model": text("cpu_model", &host.cpu_model),
        "cpu_count": host.cpu_count,
        "memory_total_bytes": host.memory_total_bytes,
        "boot_time_unix": host.boot_time_unix,
        "uptime_seconds": host.uptime_seconds,
        "disks": host.disks.iter().enumerate().map(|(i, d)| serde_json::json!({
            "name": text(&format!("disks[{i}].name"), &d.name),
            "mount_point": text(&format!("disks[{i}].mount_point"), &d.mount_point),
            "file_system": text(&format!("disks[{i}].file_system"), &d.file_system),
            "total_bytes": d.total_bytes, "available_bytes": d.available_bytes, "removable": d.removable,
        })).collect::<Vec<_>>(),
        "interfaces": host.interfaces.iter().enumerate().map(|(i, n)| serde_json::json!({
            "name": text(&format!("interfaces[{i}].name"), &n.name),
            "mac": text(&format!("interfaces[{i}].mac"), &n.mac),
            "addresses": n.addresses.iter().enumerate()
                .map(|(j, a)| text(&format!("interfaces[{i}].addresses[{j}]"), a))
                .collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    });
    gate.into_facts(facts)
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
                    r.host.as_mut().unwrap().hostname = "evil\x1b]0;pwned\x07\x1b[31m".into();
                }),
                "host.hostname",
            ),
            (
                Box::new(|r| {
                    r.host.as_mut().unwrap().hostname = "=HYPERLINK(\"http://x\",\"y\")".into();
                }),
                "host.hostname",
            ),
            (
                Box::new(|r| r.agent_version = "1.0\x1b[2J".into()),
                "agent_version",
            ),
            (
                Box::new(|r| r.observations[0].category = "pack\x07age".into()),
                "observations[0].category",
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

    #[test]
    fn a_refused_host_name_is_shown_escaped_in_the_error() {
        let mut report = valid();
        report.host.as_mut().unwrap().hostname = "evil\x1b]0;pwned\x07\x1b[31m".into();
        let message = validate("a", &report).unwrap_err().to_string();
        assert!(
            !message.contains('\x1b') && !message.contains('\x07'),
            "{message:?}"
        );
        assert!(message.contains("evil\\x1b]0;pwned\\x07"), "{message}");
    }

    #[test]
    fn free_text_is_escaped_and_the_original_length_kept() {
        let mut report = valid();
        let host = report.host.as_mut().unwrap();
        host.os_name = "Debian\x1b[31m".into();
        report.observations[0].value_json =
            r#"{"sys_name":"sw\u001b]0;x\u0007","subject":"CN=a\u202eb"}"#.into();
        report.observations[0].evidence.push(v1::Evidence {
            source: "/etc/\x1bpasswd".into(),
            ..Default::default()
        });
        report.controls[0].reason = "none\u{2066}".into();
        report.devices.push(v1::Device {
            address: "10.0.0.9".into(),
            vendor: "=HYPERLINK(\"http://x\",\"y\")".into(),
            model: "cam\u{202e}".into(),
            ..Default::default()
        });
        let input = validate("a", &report).unwrap();

        assert_eq!(input.host_facts["os_name"], "Debian\\x1b[31m");
        assert_eq!(
            input.host_facts["escaped_text"],
            serde_json::json!([{"field": "os_name", "escaped": 1, "original_bytes": 11}])
        );
        let o = &input.observations[0];
        assert_eq!(o.value["sys_name"], "sw\\x1b]0;x\\x07");
        assert_eq!(o.value["subject"], "CN=a\\u{202e}b");
        assert_eq!(o.evidence[0].source, "/etc/\\x1bpasswd");
        let notes: Vec<&str> = o
            .evidence
            .iter()
            .filter(|e| e.probe == TEXT_GATE_PROBE)
            .map(|e| e.detail.as_str())
            .collect();
        assert_eq!(
            notes,
            [
                "value.subject: 1 control character(s) shown escaped; 8 bytes as received",
                "value.sys_name: 2 control character(s) shown escaped; 8 bytes as received",
                "evidence[0].source: 1 control character(s) shown escaped; 12 bytes as received",
            ]
        );
        assert_eq!(input.controls[0].reason, "none\\u{2066}");
        assert_eq!(input.controls[0].evidence.len(), 1);
        let device = &input.devices[0];
        assert_eq!(device.identity["model"], "cam\\u{202e}");
        assert_eq!(device.identity["escaped_text"][0]["field"], "model");
        // The formula stays as text; CSV output neutralises it.
        assert!(device.name.starts_with("=HYPERLINK"));
        assert!(!format!("{input:?}").contains('\x1b'));
    }

    #[test]
    fn escape_notes_are_bounded_per_record() {
        let mut report = valid();
        let hostile: Vec<&str> = vec!["\x1b"; 1000];
        report.observations[0].value_json = serde_json::to_string(&hostile).unwrap();
        let input = validate("a", &report).unwrap();
        let notes: Vec<&str> = input.observations[0]
            .evidence
            .iter()
            .map(|e| e.detail.as_str())
            .collect();
        assert_eq!(notes.len(), MAX_NOTES + 1);
        assert_eq!(
            notes[MAX_NOTES],
            "984 more field(s): 984 control character(s) shown escaped; 984 bytes as received"
        );
    }
}
