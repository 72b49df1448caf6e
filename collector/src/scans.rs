//! Scheduled scans: cron expressions with a time zone (e.g. `0 2 * * 1` in Europe/Stockholm)
//! that create jobs — inventory runs and discovery sweeps for agents (all, one, or by label),
//! and evaluations the collector runs itself.
//!
//! Time is always a parameter (`now_ms`), never read here, so tests drive the schedule with a
//! controllable clock. A schedule that missed several fire times (collector down) fires once,
//! not once per missed time: a backlog of identical inventory runs helps nobody.

use std::str::FromStr;

use chrono::{TimeZone, Utc};
use serde::{Deserialize, Serialize};

use crate::store::{AgentRecord, AuditEvent, NewJob, ScheduleRecord, Store, StoreError};

/// What a schedule runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum JobKind {
    /// A host inventory on each target agent.
    Inventory,
    /// A discovery sweep by each target agent.
    Discovery,
    /// A compliance evaluation in the collector.
    Evaluation,
}

impl JobKind {
    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Inventory => "inventory",
            Self::Discovery => "discovery",
            Self::Evaluation => "evaluation",
        }
    }
}

/// Which agents a schedule's jobs go to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// Every active agent.
    All,
    /// One agent.
    Agent(String),
    /// Agents with this label.
    Label(String, String),
}

impl FromStr for Target {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text == "all" {
            return Ok(Self::All);
        }
        if let Some(id) = text.strip_prefix("agent:").filter(|id| !id.is_empty()) {
            return Ok(Self::Agent(id.to_string()));
        }
        if let Some((key, value)) = text.strip_prefix("label:").and_then(|l| l.split_once('='))
            && !key.is_empty()
        {
            return Ok(Self::Label(key.to_string(), value.to_string()));
        }
        Err(format!(
            "target {text:?}: use all, agent:ID or label:KEY=VALUE"
        ))
    }
}

impl Target {
    /// Active agents this target selects.
    pub fn select<'a>(&self, agents: &'a [AgentRecord]) -> Vec<&'a AgentRecord> {
        agents
            .iter()
            .filter(|a| a.revoked_at.is_none())
            .filter(|a| match self {
                Self::All => true,
                Self::Agent(id) => a.agent_id == *id,
                Self::Label(k, v) => a.labels.get(k) == Some(v),
            })
            .collect()
    }
}

/// Parameters of discovery jobs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobParams {
    /// CIDRs to sweep.
    #[serde(default)]
    pub discovery_targets: Vec<String>,
    /// Ports to probe, `PORT` or `PORT/PROTOCOL`.
    #[serde(default)]
    pub discovery_ports: Vec<String>,
    /// Upper bound of the agent's random delay, seconds.
    #[serde(default)]
    pub jitter_seconds: u32,
}

/// Errors of scan commands; each names the bad input.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// Bad cron expression.
    #[error("cron expression {expression:?}: {message}")]
    Cron {
        /// The expression.
        expression: String,
        /// Why.
        message: String,
    },
    /// Unknown time zone.
    #[error("time zone {0:?} is not an IANA zone such as Europe/Stockholm")]
    TimeZone(String),
    /// Bad target or parameter.
    #[error("{0}")]
    Invalid(String),
    /// Storage.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The next fire time strictly after `after_ms`, in ms.
pub fn next_fire(expression: &str, timezone: &str, after_ms: i64) -> Result<i64, ScanError> {
    let cron = croner::Cron::from_str(expression).map_err(|e| ScanError::Cron {
        expression: expression.to_string(),
        message: e.to_string(),
    })?;
    let tz: chrono_tz::Tz = timezone
        .parse()
        .map_err(|_| ScanError::TimeZone(timezone.to_string()))?;
    let after = Utc
        .timestamp_millis_opt(after_ms)
        .single()
        .ok_or_else(|| ScanError::Invalid(format!("time {after_ms} out of range")))?
        .with_timezone(&tz);
    let next = cron
        .find_next_occurrence(&after, false)
        .map_err(|e| ScanError::Cron {
            expression: expression.to_string(),
            message: e.to_string(),
        })?;
    Ok(next.timestamp_millis())
}

/// A schedule to create.
#[derive(Clone, Debug)]
pub struct ScheduleSpec {
    /// Unique name.
    pub name: String,
    /// What it runs.
    pub kind: JobKind,
    /// Cron expression (5 or 6 fields).
    pub cron: String,
    /// IANA time zone.
    pub timezone: String,
    /// Target agents (ignored for evaluations).
    pub target: String,
    /// Job parameters.
    pub params: JobParams,
}

/// Validates and stores a schedule; returns its first fire time.
pub async fn add(
    store: &dyn Store,
    spec: ScheduleSpec,
    actor: &str,
    now_ms: i64,
) -> Result<i64, ScanError> {
    if spec.name.trim().is_empty() || spec.name.len() > 100 {
        return Err(ScanError::Invalid(
            "the schedule name must be 1-100 characters".into(),
        ));
    }
    let target: Target = spec.target.parse().map_err(ScanError::Invalid)?;
    if let Target::Agent(id) = &target
        && store.agent(id).await?.is_none()
    {
        return Err(ScanError::Invalid(format!(
            "target agent {id} is not enrolled"
        )));
    }
    if spec.kind == JobKind::Discovery && spec.params.discovery_targets.is_empty() {
        return Err(ScanError::Invalid(
            "a discovery schedule needs at least one --discovery-target CIDR".into(),
        ));
    }
    for port in &spec.params.discovery_ports {
        let number = port.split('/').next().unwrap_or_default();
        if number.parse::<u16>().map_or(true, |n| n == 0) {
            return Err(ScanError::Invalid(format!(
                "discovery port {port:?} is not PORT or PORT/PROTOCOL"
            )));
        }
    }
    for cidr in &spec.params.discovery_targets {
        cidr.parse::<ipnet::IpNet>()
            .map_err(|_| ScanError::Invalid(format!("discovery target {cidr:?} is not a CIDR")))?;
    }
    let next = next_fire(&spec.cron, &spec.timezone, now_ms)?;
    let record = ScheduleRecord {
        name: spec.name.clone(),
        kind: spec.kind.as_str().to_string(),
        cron: spec.cron,
        timezone: spec.timezone,
        target: spec.target,
        params: serde_json::to_value(&spec.params).unwrap_or_default(),
        next_run_at: next,
        created_by: actor.to_string(),
        created_at: now_ms,
    };
    let event = AuditEvent {
        actor: actor.to_string(),
        action: "scan.add".into(),
        subject: record.name.clone(),
        detail: serde_json::json!({ "kind": record.kind, "cron": record.cron, "timezone": record.timezone, "target": record.target }),
    };
    store.create_schedule(&record, event, now_ms).await?;
    Ok(next)
}

/// Jobs for one firing of `schedule`: one per selected agent, or one for an evaluation.
pub fn jobs_for(
    schedule: &ScheduleRecord,
    label: &str,
    agents: &[AgentRecord],
) -> Result<Vec<NewJob>, ScanError> {
    if schedule.kind == JobKind::Evaluation.as_str() {
        return Ok(vec![NewJob {
            schedule: label.to_string(),
            kind: schedule.kind.clone(),
            agent_id: None,
            params: schedule.params.clone(),
        }]);
    }
    let target: Target = schedule.target.parse().map_err(ScanError::Invalid)?;
    Ok(target
        .select(agents)
        .into_iter()
        .map(|agent| NewJob {
            schedule: label.to_string(),
            kind: schedule.kind.clone(),
            agent_id: Some(agent.agent_id.clone()),
            params: schedule.params.clone(),
        })
        .collect())
}

/// Fires every schedule due at `now_ms`; returns the ids of jobs created. Evaluation jobs are
/// returned for the caller to run (the collector runs them itself).
pub async fn tick(store: &dyn Store, now_ms: i64) -> Result<Vec<String>, ScanError> {
    let agents = store.agents().await?;
    let mut created = Vec::new();
    for schedule in store.schedules().await? {
        if schedule.next_run_at > now_ms {
            continue;
        }
        let jobs = jobs_for(&schedule, &schedule.name, &agents)?;
        let next = next_fire(&schedule.cron, &schedule.timezone, now_ms)?;
        created.extend(
            store
                .fire_schedule(&schedule.name, &jobs, next, now_ms)
                .await?,
        );
    }
    Ok(created)
}

/// `scan run-now NAME`: jobs now, without moving the schedule.
pub async fn run_now(
    store: &dyn Store,
    name: &str,
    actor: &str,
    now_ms: i64,
) -> Result<Vec<String>, ScanError> {
    let schedule = store
        .schedules()
        .await?
        .into_iter()
        .find(|s| s.name == name)
        .ok_or_else(|| ScanError::Invalid(format!("no schedule named {name:?}")))?;
    let jobs = jobs_for(
        &schedule,
        &format!("run-now:{name}"),
        &store.agents().await?,
    )?;
    let event = AuditEvent {
        actor: actor.to_string(),
        action: "scan.run-now".into(),
        subject: name.to_string(),
        detail: serde_json::json!({ "jobs": jobs.len() }),
    };
    Ok(store.create_jobs(&jobs, Some(event), now_ms).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(text: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(text)
            .unwrap()
            .timestamp_millis()
    }

    #[test]
    fn monday_two_am_stockholm_fires_in_local_time_across_dst() {
        // Winter (UTC+1): 02:00 local is 01:00 UTC.
        let next = next_fire("0 2 * * 1", "Europe/Stockholm", ms("2026-11-24T12:00:00Z")).unwrap();
        assert_eq!(next, ms("2026-11-30T01:00:00Z"));
        // Summer (UTC+2): 02:00 local is 00:00 UTC.
        let next = next_fire("0 2 * * 1", "Europe/Stockholm", ms("2026-06-02T12:00:00Z")).unwrap();
        assert_eq!(next, ms("2026-06-08T00:00:00Z"));
    }

    #[test]
    fn bad_expressions_and_zones_are_named() {
        let err = next_fire("61 * * * *", "UTC", 0).unwrap_err().to_string();
        assert!(err.contains("61 * * * *"), "{err}");
        let err = next_fire("0 2 * * 1", "Mars/Olympus", 0)
            .unwrap_err()
            .to_string();
        assert!(err.contains("Mars/Olympus"), "{err}");
        assert!("label:site".parse::<Target>().is_err());
        assert_eq!(
            "label:site=ward4".parse::<Target>().unwrap(),
            Target::Label("site".into(), "ward4".into())
        );
    }
}
