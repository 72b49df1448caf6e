//! The management review's sections beyond the headline figures (issue order: the year in
//! figures, compliance per K level, per system, expiring acceptances, the worst findings, OT,
//! the monthly trend, the ISO 27001 / NIS2 view). Pure: computed from the evaluated snapshot,
//! the systems' rule states, the findings and the stored history; the store is read by the
//! caller.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use crate::compliance::{FindingView, SystemCompliance};
use crate::evaluation::Snapshot;
use crate::rules::{self, RuleConfig, RuleState, Scope};
use crate::store::EvaluationSummary;

/// Milliseconds in a day.
const DAY_MS: i64 = 86_400_000;

/// Everything the review shows beyond [`super::Figures`]' counters.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Review {
    /// The year in figures.
    pub year: YearFigures,
    /// Per K level (`K2`, `K3`), each K2/K3 rule's three states.
    pub compliance_by_k: BTreeMap<String, Vec<super::RuleCompliance>>,
    /// Every system with its classification, owner, rule states and accepted risks.
    pub systems: Vec<SystemRow>,
    /// Accepted risks whose acceptance ends within 90 days.
    pub expiring_acceptances: Vec<AcceptanceRow>,
    /// The ten worst open findings: highest severity first, then oldest.
    pub worst_findings: Vec<FindingRow>,
    /// Discovered OT/IoT devices.
    pub ot: OtFigures,
    /// The last 12 months, one row per month with a stored evaluation.
    pub monthly: Vec<MonthRow>,
    /// Per ISO 27001 Annex A control and NIS2 measure the rules evidence: systems meeting it.
    pub standards: Vec<StandardRow>,
    /// Per K3 system (by id): who can log in to its hosts and with which privilege, the input
    /// of the owner's access review.
    pub access: BTreeMap<String, Vec<crate::access::AccessEntry>>,
}

/// The year in figures.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct YearFigures {
    /// Systems in the register.
    pub systems: usize,
    /// Of which classified (K/R/T given).
    pub classified: usize,
    /// Of which with a named system owner.
    pub owners_assigned: usize,
    /// Of the classified, reviewed within the review period.
    pub reviewed_in_period: usize,
    /// Discovered devices.
    pub ot_devices: usize,
    /// Of which linked to a system.
    pub ot_devices_linked: usize,
}

/// One system's line in the review.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct SystemRow {
    /// Register id.
    pub id: String,
    /// Name.
    pub name: String,
    /// `K3 R3 T2 S2`, or empty when unclassified.
    pub classification: String,
    /// System owner's name.
    pub owner: String,
    /// Each K2/K3 rule that applies, with its state.
    pub rules: BTreeMap<String, RuleState>,
    /// Accepted risks: rule, asset and the date the acceptance ends.
    pub accepted: Vec<AcceptanceRow>,
}

/// An accepted risk.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct AcceptanceRow {
    /// Finding id.
    pub finding: String,
    /// System id.
    pub system: String,
    /// Rule id.
    pub rule: String,
    /// Asset label, empty for system-level rules.
    pub asset: String,
    /// Who accepted.
    pub accepted_by: String,
    /// End of the acceptance, RFC 3339.
    pub until: String,
}

/// An open finding in the worst-ten list.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct FindingRow {
    /// Finding id.
    pub id: String,
    /// Severity.
    pub severity: String,
    /// Rule id.
    pub rule: String,
    /// System id, empty for none.
    pub system: String,
    /// Asset label.
    pub asset: String,
    /// The finding's sentence.
    pub message: String,
    /// First seen, RFC 3339.
    pub first_seen: String,
}

/// Discovered devices.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct OtFigures {
    /// Devices per kind (`camera`, `plc`, ...).
    pub by_kind: BTreeMap<String, usize>,
    /// Devices speaking each plaintext protocol (`modbus`, `http`, ...).
    pub plaintext_protocols: BTreeMap<String, usize>,
}

/// One month of the trend.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct MonthRow {
    /// `2026-11`.
    pub month: String,
    /// Open findings after the month's last evaluation.
    pub open_findings: usize,
    /// Accepted findings after it.
    pub accepted_findings: usize,
    /// Compliance percent per rule from the month's last management report, where one was
    /// issued that month.
    pub compliance: BTreeMap<String, Option<f64>>,
}

/// Systems meeting one control of a framework.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct StandardRow {
    /// `ISO/IEC 27001:2022` or `NIS2 21(2)`.
    pub framework: String,
    /// `A.8.5` or `21(2)(j)`.
    pub control: String,
    /// The rules that evidence it.
    pub rules: Vec<String>,
    /// Systems at least one of those rules applies to.
    pub applicable: usize,
    /// Of those, systems compliant with every one that applies.
    pub meeting: usize,
}

/// What the review is computed from.
pub struct Inputs<'a> {
    /// The evaluated register and inventory.
    pub snapshot: &'a Snapshot,
    /// Each system's K2/K3 rule states, by system id.
    pub judged: &'a HashMap<String, SystemCompliance>,
    /// Every finding (all states).
    pub views: &'a [FindingView],
    /// Plaintext protocols per device asset id.
    pub plaintext: &'a HashMap<String, BTreeSet<String>>,
    /// Stored evaluations (time, summary).
    pub evaluations: &'a [(i64, EvaluationSummary)],
    /// Stored management reports (time, figures JSON).
    pub reports: &'a [(i64, serde_json::Value)],
    /// Thresholds and mappings.
    pub config: &'a RuleConfig,
    /// Now (ms).
    pub now: i64,
    /// The language finding messages are rendered in.
    pub lang: crate::i18n::Lang,
}

/// The review (pure).
pub fn compute(inputs: &Inputs<'_>, k_rules: &[&str]) -> Review {
    Review {
        year: year(inputs),
        compliance_by_k: compliance_by_k(inputs, k_rules),
        systems: systems(inputs),
        expiring_acceptances: expiring(inputs),
        worst_findings: worst(inputs.views, &inputs.lang.messages()),
        ot: ot(inputs),
        monthly: monthly(inputs),
        standards: standards(inputs),
        access: BTreeMap::new(),
    }
}

fn year(inputs: &Inputs<'_>) -> YearFigures {
    let systems = &inputs.snapshot.systems;
    let today = time::OffsetDateTime::from_unix_timestamp(inputs.now / 1000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        .date();
    let devices: Vec<usize> = inputs
        .snapshot
        .assets
        .iter()
        .enumerate()
        .filter(|(_, a)| a.kind == "device")
        .map(|(i, _)| i)
        .collect();
    YearFigures {
        systems: systems.len(),
        classified: systems
            .iter()
            .filter(|s| s.classification.is_some())
            .count(),
        owners_assigned: systems.iter().filter(|s| s.system_owner.is_some()).count(),
        reviewed_in_period: systems
            .iter()
            .filter_map(|s| s.classification.as_ref())
            .filter(|c| (today - c.classified_at).whole_days() <= inputs.config.review_after_days)
            .count(),
        ot_devices: devices.len(),
        ot_devices_linked: devices
            .iter()
            .filter(|i| {
                inputs
                    .snapshot
                    .links
                    .get(**i)
                    .is_some_and(|l| !l.links.is_empty())
            })
            .count(),
    }
}

fn compliance_by_k(
    inputs: &Inputs<'_>,
    k_rules: &[&str],
) -> BTreeMap<String, Vec<super::RuleCompliance>> {
    let mut by_k = BTreeMap::new();
    for k in [2_u8, 3] {
        let of_k: Vec<&SystemCompliance> = inputs
            .snapshot
            .systems
            .iter()
            .filter(|s| s.classification.as_ref().is_some_and(|c| c.k == k))
            .filter_map(|s| inputs.judged.get(&s.id))
            .collect();
        let rows = k_rules
            .iter()
            .map(|rule| super::rule_compliance(rule, of_k.iter().copied()))
            .filter(|c| c.applicable > 0)
            .collect();
        by_k.insert(format!("K{k}"), rows);
    }
    by_k
}

fn acceptance(view: &FindingView) -> AcceptanceRow {
    AcceptanceRow {
        finding: view.id.clone(),
        system: view.system_id.clone().unwrap_or_default(),
        rule: view.rule.clone(),
        asset: view.asset.clone(),
        accepted_by: view.accepted_by.clone().unwrap_or_default(),
        until: view.accepted_until.clone().unwrap_or_default(),
    }
}

fn systems(inputs: &Inputs<'_>) -> Vec<SystemRow> {
    inputs
        .snapshot
        .systems
        .iter()
        .map(|s| SystemRow {
            id: s.id.clone(),
            name: s.name.clone(),
            classification: s.classification.as_ref().map_or_else(String::new, |c| {
                let s = c.s.map(|level| format!(" S{level}")).unwrap_or_default();
                format!("K{} R{} T{}{s}", c.k, c.r, c.t)
            }),
            owner: s
                .system_owner
                .as_ref()
                .map_or_else(String::new, |p| p.name.clone()),
            rules: inputs
                .judged
                .get(&s.id)
                .map(|states| {
                    states
                        .iter()
                        .map(|(rule, state)| ((*rule).to_string(), *state))
                        .collect()
                })
                .unwrap_or_default(),
            accepted: inputs
                .views
                .iter()
                .filter(|v| v.state == "accepted" && v.system_id.as_deref() == Some(&s.id))
                .map(acceptance)
                .collect(),
        })
        .collect()
}

fn rfc3339_ms(text: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.timestamp_millis())
}

fn expiring(inputs: &Inputs<'_>) -> Vec<AcceptanceRow> {
    let horizon = inputs.now + 90 * DAY_MS;
    let mut rows: Vec<AcceptanceRow> = inputs
        .views
        .iter()
        .filter(|v| v.state == "accepted")
        .filter(|v| {
            v.accepted_until
                .as_deref()
                .and_then(rfc3339_ms)
                .is_some_and(|until| until <= horizon)
        })
        .map(acceptance)
        .collect();
    rows.sort_by(|a, b| a.until.cmp(&b.until));
    rows
}

fn worst(views: &[FindingView], t: &crate::i18n::Messages) -> Vec<FindingRow> {
    let mut open: Vec<&FindingView> = views.iter().filter(|v| v.state == "open").collect();
    let rank = |v: &FindingView| rules::Severity::parse(&v.severity);
    open.sort_by(|a, b| {
        rank(b)
            .cmp(&rank(a))
            .then_with(|| a.first_seen.cmp(&b.first_seen))
            .then_with(|| a.id.cmp(&b.id))
    });
    open.into_iter()
        .take(10)
        .map(|v| FindingRow {
            id: v.id.clone(),
            severity: v.severity.clone(),
            rule: v.rule.clone(),
            system: v.system_id.clone().unwrap_or_default(),
            asset: v.asset.clone(),
            message: v
                .text
                .as_ref()
                .map_or_else(|| v.message.clone(), |text| text.render(t)),
            first_seen: v.first_seen.clone(),
        })
        .collect()
}

fn ot(inputs: &Inputs<'_>) -> OtFigures {
    let mut figures = OtFigures::default();
    for asset in inputs.snapshot.assets.iter().filter(|a| a.kind == "device") {
        let kind = asset.facts["kind"]
            .as_str()
            .unwrap_or("unknown")
            .to_string();
        *figures.by_kind.entry(kind).or_insert(0) += 1;
        for protocol in inputs.plaintext.get(&asset.asset_id).into_iter().flatten() {
            *figures
                .plaintext_protocols
                .entry(protocol.clone())
                .or_insert(0) += 1;
        }
    }
    figures
}

/// `2026-11` of a time in ms (UTC).
fn month_of(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m").to_string())
        .unwrap_or_default()
}

fn monthly(inputs: &Inputs<'_>) -> Vec<MonthRow> {
    let since = inputs.now - 365 * DAY_MS;
    let mut months: BTreeMap<String, MonthRow> = BTreeMap::new();
    // Later entries of a month overwrite earlier ones: each month shows its last snapshot.
    for (at, summary) in inputs.evaluations.iter().filter(|(at, _)| *at >= since) {
        let month = month_of(*at);
        let row = months.entry(month.clone()).or_default();
        row.month = month;
        row.open_findings = summary.open;
        row.accepted_findings = summary.accepted;
    }
    for (at, figures) in inputs.reports.iter().filter(|(at, _)| *at >= since) {
        if let Some(row) = months.get_mut(&month_of(*at)) {
            row.compliance = figures["compliance"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| Some((c["rule"].as_str()?.to_string(), c["percent"].as_f64())))
                .collect();
        }
    }
    months.into_values().collect()
}

/// A system's state with any rule: the judged state for K2/K3 rules, and for system-level
/// rules compliant unless an open finding of it names the system.
fn state_of(
    rule: &rules::Rule,
    system: &crate::catalog::System,
    inputs: &Inputs<'_>,
) -> Option<RuleState> {
    match rule.scope {
        Scope::Member => inputs
            .judged
            .get(&system.id)
            .and_then(|s| s.get(rule.id).copied()),
        Scope::System => {
            let applies = match rule.id {
                "review-due" => system.classification.is_some(),
                "unverified-system" => system.classification.as_ref().is_some_and(|c| c.k >= 2),
                _ => true,
            };
            applies.then(|| {
                let failing = inputs.views.iter().any(|v| {
                    v.state != "resolved"
                        && v.rule == rule.id
                        && v.system_id.as_deref() == Some(&system.id)
                });
                if failing {
                    RuleState::NotCompliant
                } else {
                    RuleState::Compliant
                }
            })
        }
        Scope::Asset => None,
    }
}

fn standards(inputs: &Inputs<'_>) -> Vec<StandardRow> {
    let mut controls: BTreeMap<(String, String), Vec<&'static rules::Rule>> = BTreeMap::new();
    for rule in rules::RULES {
        let mapping = inputs.config.mapping(rule);
        for control in mapping.iso27001 {
            controls
                .entry(("ISO/IEC 27001:2022".into(), control))
                .or_default()
                .push(rule);
        }
        for measure in mapping.nis2 {
            controls
                .entry(("NIS2".into(), format!("21(2)({measure})")))
                .or_default()
                .push(rule);
        }
    }
    controls
        .into_iter()
        .map(|((framework, control), rules_of)| {
            let mut applicable = 0;
            let mut meeting = 0;
            for system in &inputs.snapshot.systems {
                let states: Vec<RuleState> = rules_of
                    .iter()
                    .filter_map(|rule| state_of(rule, system, inputs))
                    .collect();
                if states.is_empty() {
                    continue;
                }
                applicable += 1;
                if states.iter().all(|s| *s == RuleState::Compliant) {
                    meeting += 1;
                }
            }
            StandardRow {
                framework,
                control,
                rules: rules_of.iter().map(|r| r.id.to_string()).collect(),
                applicable,
                meeting,
            }
        })
        .collect()
}
