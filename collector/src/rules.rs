//! The classification rule engine: one table of rules ([`RULES`]), one function each, from the
//! municipalities' policy (DESIGN.md §2). Pure: it takes systems, assets and their links and
//! returns the findings that hold right now; the store turns them into a lifecycle.
//!
//! `unknown` never passes a K2/K3 rule. An attestation satisfies a control only until it
//! expires.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use time::Date;

use crate::catalog::System;
use crate::i18n::{Lang, Messages, Text};
use crate::linking::AssetLinks;
use crate::store::{ControlRecord, StoredEvidence};

/// Thresholds an organisation may tune (in `collector.toml`, `[rules]`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RuleConfig {
    /// A classification older than this many days is due for review.
    pub review_after_days: i64,
    /// An asset not seen for this many days is stale.
    pub stale_after_days: i64,
    /// A member of an administrative group on a K2/K3 host who has not logged in for this many
    /// days (or never) holds a privilege nobody uses (`k23-privileged`).
    pub dormant_admin_after_days: i64,
    /// Per rule id, the ISO 27001 / NIS2 mapping an organisation uses instead of the built-in
    /// one (`[rules.mappings.k3-auth]`).
    pub mappings: BTreeMap<String, Mapping>,
}

impl Default for RuleConfig {
    fn default() -> Self {
        Self {
            review_after_days: 365,
            stale_after_days: 7,
            dormant_admin_after_days: 90,
            mappings: BTreeMap::new(),
        }
    }
}

/// Which ISO/IEC 27001:2022 Annex A controls and NIS2 Article 21(2) measures a rule evidences.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Mapping {
    /// Annex A controls, `A.8.5`.
    pub iso27001: Vec<String>,
    /// Article 21(2) letters, `j`.
    pub nis2: Vec<String>,
}

impl RuleConfig {
    /// Every problem of the `[rules]` table a validated configuration must not have, each naming
    /// its key (`rules.mappings.k3-auth.iso27001`).
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for (key, days) in [
            ("review_after_days", self.review_after_days),
            ("stale_after_days", self.stale_after_days),
            ("dormant_admin_after_days", self.dormant_admin_after_days),
        ] {
            if !(1..=3650).contains(&days) {
                problems.push(format!("rules.{key} = {days}: must be between 1 and 3650"));
            }
        }
        for (id, mapping) in &self.mappings {
            if rule(id).is_none() {
                problems.push(format!("rules.mappings.{id}: there is no rule {id:?}"));
            }
            for control in mapping.iso27001.iter().filter(|c| !is_annex_a(c)) {
                problems.push(format!(
                    "rules.mappings.{id}.iso27001: {control:?} is not an ISO/IEC 27001:2022 Annex A control (A.5.1-A.5.37, A.6.1-A.6.8, A.7.1-A.7.14, A.8.1-A.8.34)"
                ));
            }
            for measure in mapping.nis2.iter().filter(|m| !is_nis2_measure(m)) {
                problems.push(format!(
                    "rules.mappings.{id}.nis2: {measure:?} is not a measure of NIS2 Article 21(2) (a-j)"
                ));
            }
        }
        problems
    }

    /// The mapping of `rule`: the configured one, else the built-in one.
    pub fn mapping(&self, rule: &Rule) -> Mapping {
        self.mappings
            .get(rule.id)
            .cloned()
            .unwrap_or_else(|| Mapping {
                iso27001: rule.iso27001.iter().map(|c| (*c).to_string()).collect(),
                nis2: rule.nis2.iter().map(|m| (*m).to_string()).collect(),
            })
    }
}

/// Finding severity, ordered.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth fixing.
    Low,
    /// Fix this quarter.
    Medium,
    /// Fix now.
    High,
    /// Fix now; K3 or society-critical and exposed.
    Critical,
}

impl Severity {
    fn raised(self, steps: u8) -> Self {
        let all = [Self::Low, Self::Medium, Self::High, Self::Critical];
        let index = all.iter().position(|s| *s == self).unwrap_or(0) + usize::from(steps);
        all[index.min(all.len() - 1)]
    }

    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }

    /// Parses the lowercase name.
    pub fn parse(text: &str) -> Option<Self> {
        [Self::Low, Self::Medium, Self::High, Self::Critical]
            .into_iter()
            .find(|s| s.as_str() == text)
    }
}

/// What the rules know about an asset.
#[derive(Clone, Debug)]
pub struct EvalAsset {
    /// Asset id.
    pub asset_id: String,
    /// `host` or `device`.
    pub kind: String,
    /// Host name or device address, as shown to people.
    pub label: String,
    /// Current controls by name.
    pub controls: HashMap<String, ControlRecord>,
    /// Last seen (ms).
    pub last_seen_at: i64,
    /// For a host: its agent's current certificate (None for devices and revoked agents).
    pub certificate: Option<AgentCertificate>,
}

/// An agent's current certificate, as the `certificate-expiring` rule sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentCertificate {
    /// The agent.
    pub agent_id: String,
    /// When the collector issued it (ms).
    pub issued_at: i64,
    /// Its expiry (ms).
    pub not_after: i64,
}

/// A rule broken right now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FindingDraft {
    /// Rule id.
    pub rule: &'static str,
    /// Severity.
    pub severity: Severity,
    /// The system (None for an asset linked to no system).
    pub system_id: Option<String>,
    /// The asset (None for system-level rules).
    pub asset_id: Option<String>,
    /// Host name or address, or empty.
    pub asset: String,
    /// One sentence for the owner, in English (the CLI's and the JSON's language).
    pub message: String,
    /// The same sentence in no language yet, for the web interface and the report.
    pub text: Text,
    /// What the verdict rests on.
    pub evidence: Vec<StoredEvidence>,
}

impl FindingDraft {
    /// Stable identity across evaluations.
    pub fn key(&self) -> String {
        format!(
            "{}|{}|{}",
            self.rule,
            self.system_id.as_deref().unwrap_or(""),
            self.asset_id.as_deref().unwrap_or("")
        )
    }
}

/// What a rule is applied to.
#[derive(Clone, Copy)]
pub enum Scope {
    /// Each system.
    System,
    /// Each asset.
    Asset,
    /// Each asset of each system it is linked to.
    Member,
}

/// The subject handed to a rule.
pub enum Subject<'a> {
    /// A system, with every asset linked to it (stale ones included).
    System(&'a System, &'a [&'a EvalAsset]),
    /// An asset with its systems.
    Asset(&'a EvalAsset, &'a [&'a System]),
    /// An asset as a member of one system.
    Member(&'a System, &'a EvalAsset),
}

/// Evaluation context.
pub struct Context {
    /// Today (UTC).
    pub today: Date,
    /// Now (ms).
    pub now_ms: i64,
    /// Thresholds.
    pub config: RuleConfig,
}

/// A broken rule's message and evidence, before severity and identity are added.
pub struct Violation {
    /// One sentence, in no language yet (`finding.*` keys of the message catalogues).
    pub text: Text,
    /// Evidence.
    pub evidence: Vec<StoredEvidence>,
}

/// One rule of the table.
pub struct Rule {
    /// Stable id used in findings, e.g. `k3-auth`.
    pub id: &'static str,
    /// The policy clause it comes from.
    pub policy: &'static str,
    /// What the owner should do.
    pub remediation: &'static str,
    /// ISO/IEC 27001:2022 Annex A controls the rule evidences (`A.8.5`), each valid by
    /// [`is_annex_a`].
    pub iso27001: &'static [&'static str],
    /// NIS2 Article 21(2) measures it evidences, by letter (`j` = 21(2)(j)), as the Swedish
    /// cybersäkerhetslagen takes them over.
    pub nis2: &'static [&'static str],
    /// Severity before raising for K3, criticality and OT.
    pub base_severity: Severity,
    /// One step more on a K3 system (`k3-auth` applies to K3 only, so its base is already high).
    pub raised_for_k3: bool,
    /// One step more on an OT/IoT device, which cannot be patched or replaced quickly.
    pub raised_for_ot: bool,
    /// What it applies to.
    pub scope: Scope,
    /// The check.
    pub check: fn(&Subject<'_>, &Context) -> Option<Violation>,
}

/// The rule table.
pub static RULES: &[Rule] = &[
    Rule {
        id: "k2-auth",
        policy: "K2 information requires multi-factor authentication or an encryption solution.",
        remediation: "Enforce MFA for every login path (e.g. SSH AuthenticationMethods with a second factor), or encrypt the data at rest and in transit; or record an attestation in the system register.",
        iso27001: &["A.8.5", "A.8.24"],
        nis2: &["j", "h"],
        base_severity: Severity::Medium,
        raised_for_k3: true,
        raised_for_ot: true,
        scope: Scope::Member,
        check: k2_auth,
    },
    Rule {
        id: "k3-auth",
        policy: "K3 information always requires strong (multi-factor) authentication; encryption does not replace it.",
        remediation: "Require a second factor on every interactive login path (SSH, console, web) and remove Match blocks that re-enable passwords.",
        iso27001: &["A.8.5", "A.5.17"],
        nis2: &["j"],
        base_severity: Severity::High,
        raised_for_k3: false,
        raised_for_ot: true,
        scope: Scope::Member,
        check: k3_auth,
    },
    Rule {
        id: "k23-transit",
        policy: "K2/K3 information may only be sent encrypted.",
        remediation: "Put TLS in front of every exposed service (or SSH tunnels / VPN for OT protocols without security), disable plaintext listeners, or attest the compensating control.",
        iso27001: &["A.8.24", "A.5.14", "A.8.20"],
        nis2: &["h"],
        base_severity: Severity::Medium,
        raised_for_k3: true,
        raised_for_ot: true,
        scope: Scope::Member,
        check: k23_transit,
    },
    Rule {
        id: "k23-rest",
        policy: "K2/K3 information may only be stored encrypted.",
        remediation: "Encrypt every data volume (LUKS/dm-crypt, ZFS native encryption) or attest the device's storage encryption.",
        iso27001: &["A.8.24", "A.7.10"],
        nis2: &["h"],
        base_severity: Severity::Medium,
        raised_for_k3: true,
        raised_for_ot: true,
        scope: Scope::Member,
        check: k23_rest,
    },
    Rule {
        id: "k23-logging",
        policy: "Policy 6.5: log information is protected against unauthorised access and manipulation; a K2/K3 host (or S >= 2 where traceability is classified) records its security events and ships them off the host, where whoever takes the host over cannot rewrite them.",
        remediation: "Forward the host's logs to the central log server (rsyslog/syslog-ng forwarding, systemd-journal-upload, Windows Event Forwarding), keep auditd or a persistent journal for the local record, or attest the appliance's own log shipping.",
        iso27001: &["A.8.15", "A.8.16"],
        nis2: &["b", "f"],
        base_severity: Severity::Medium,
        raised_for_k3: true,
        raised_for_ot: true,
        scope: Scope::Member,
        check: k23_logging,
    },
    Rule {
        id: "k23-privileged",
        policy: "Policy 6.4: high privileges get special attention; on K2/K3 hosts no person gets root without a password, root does not log in over SSH with a password, no enabled account has an empty password, and nobody keeps administrative rights they do not use.",
        remediation: "Remove NOPASSWD from people's sudo rules (keep it only for named service commands), set PermitRootLogin to prohibit-password or no, lock or set a password on every enabled account with an empty one, and take administrators who no longer log in out of the admin group.",
        iso27001: &["A.8.2", "A.5.18"],
        nis2: &["i", "j"],
        base_severity: Severity::Medium,
        raised_for_k3: true,
        raised_for_ot: true,
        scope: Scope::Member,
        check: k23_privileged,
    },
    Rule {
        id: "unowned-asset",
        policy: "Every system, including OT, must have a named owner.",
        remediation: "Link the asset to its system in the register (hostname, network, label, device pattern or asset id) and name the system owner.",
        iso27001: &["A.5.9", "A.5.2"],
        nis2: &["i"],
        base_severity: Severity::Medium,
        raised_for_k3: false,
        raised_for_ot: false,
        scope: Scope::Asset,
        check: unowned_asset,
    },
    Rule {
        id: "unclassified-system",
        policy: "Every system must be classified (K, R, T).",
        remediation: "Classify the system's information with the information owner and record K/R/T and the date in the register.",
        iso27001: &["A.5.12"],
        nis2: &["a"],
        base_severity: Severity::Medium,
        raised_for_k3: false,
        raised_for_ot: false,
        scope: Scope::System,
        check: unclassified_system,
    },
    Rule {
        id: "unverified-system",
        policy: "A K2/K3 system is compliant only on evidence: a system with nothing Tillsyn can see is unverified, not compliant.",
        remediation: "Tie the system's hosts and devices to it in the register (hostnames, networks, labels, device patterns) and deploy an agent on its servers; for a service with no technical footprint of ours (SaaS), record a no_footprint attestation with an expiry.",
        iso27001: &["A.5.9", "A.5.36"],
        nis2: &["f"],
        base_severity: Severity::Medium,
        raised_for_k3: true,
        raised_for_ot: false,
        scope: Scope::System,
        check: unverified_system,
    },
    Rule {
        id: "review-due",
        policy: "Classifications are reviewed yearly.",
        remediation: "Review the classification with the information owner and update the classification date.",
        iso27001: &["A.5.12", "A.5.35"],
        nis2: &["a", "f"],
        base_severity: Severity::Low,
        raised_for_k3: false,
        raised_for_ot: false,
        scope: Scope::System,
        check: review_due,
    },
    Rule {
        id: "stale-asset",
        policy: "The inventory must be current to be trusted.",
        remediation: "Check that the agent runs and can reach the collector, or retire the asset.",
        iso27001: &["A.5.9"],
        nis2: &["i"],
        base_severity: Severity::Low,
        raised_for_k3: false,
        raised_for_ot: false,
        scope: Scope::Asset,
        check: stale_asset,
    },
    Rule {
        id: "certificate-expiring",
        policy: "Agents renew their certificate at two thirds of its lifetime; one that did not is about to stop reporting.",
        remediation: "Check that the agent runs and reaches the collector (its log says why renewal failed); once expired it needs a new token: `tillsyn-agent enroll --force`.",
        iso27001: &["A.8.24", "A.5.9"],
        nis2: &["h"],
        base_severity: Severity::Medium,
        raised_for_k3: false,
        raised_for_ot: false,
        scope: Scope::Asset,
        check: certificate_expiring,
    },
];

impl Rule {
    /// The policy clause in the language of `t`: the catalogue's `policy.ID`, else the table's
    /// English.
    pub fn policy_in(&self, t: &Messages) -> &'static str {
        t.lookup(&format!("policy.{}", self.id))
            .unwrap_or(self.policy)
    }

    /// The remediation in the language of `t`, like [`Rule::policy_in`].
    pub fn remediation_in(&self, t: &Messages) -> &'static str {
        t.lookup(&format!("remediation.{}", self.id))
            .unwrap_or(self.remediation)
    }
}

/// The state of `control` for `asset` in `system`: an unexpired attestation wins.
fn control<'a>(
    system: &'a System,
    asset: &'a EvalAsset,
    name: &str,
    today: Date,
) -> (String, Vec<StoredEvidence>) {
    if let Some(attestation) = valid_attestation(system, name, today) {
        return (
            "attested".into(),
            vec![StoredEvidence {
                source: format!("system register: {}", system.id),
                line: 0,
                probe: "attestation".into(),
                detail: format!(
                    "{} attested by {} on {}, valid until {}",
                    attestation.statement,
                    attestation.attested_by,
                    attestation.attested_at,
                    attestation.expires_at
                ),
            }],
        );
    }
    match asset.controls.get(name) {
        Some(c) => {
            let mut evidence = vec![StoredEvidence {
                source: format!("control {name}"),
                line: 0,
                probe: "agent".into(),
                detail: format!("{}: {}", c.state, c.reason),
            }];
            evidence.extend(c.evidence.iter().cloned());
            (c.state.clone(), evidence)
        }
        None => (
            "unknown".into(),
            vec![StoredEvidence {
                source: format!("control {name}"),
                line: 0,
                probe: "collector".into(),
                detail: "not reported for this asset".into(),
            }],
        ),
    }
}

fn k_level(system: &System) -> Option<u8> {
    system.classification.as_ref().map(|c| c.k)
}

fn k2_auth(subject: &Subject<'_>, ctx: &Context) -> Option<Violation> {
    let Subject::Member(system, asset) = subject else {
        return None;
    };
    if k_level(system) != Some(2) {
        return None;
    }
    let (mfa, mut evidence) = control(system, asset, "mfa", ctx.today);
    if mfa == "enforced" || mfa == "attested" {
        return None;
    }
    let (rest, rest_evidence) = control(system, asset, "rest_encryption", ctx.today);
    let (transit, transit_evidence) = control(system, asset, "transit_encryption", ctx.today);
    let encrypted = |s: &str| s == "encrypted" || s == "attested";
    if encrypted(&rest) && encrypted(&transit) {
        return None;
    }
    evidence.extend(rest_evidence);
    evidence.extend(transit_evidence);
    Some(Violation {
        text: Text::new("finding.k2-auth", &[&asset.label, &mfa, &rest, &transit]),
        evidence,
    })
}

fn k3_auth(subject: &Subject<'_>, ctx: &Context) -> Option<Violation> {
    let Subject::Member(system, asset) = subject else {
        return None;
    };
    if k_level(system) != Some(3) {
        return None;
    }
    let (mfa, evidence) = control(system, asset, "mfa", ctx.today);
    (mfa != "enforced" && mfa != "attested").then(|| Violation {
        text: Text::new("finding.k3-auth", &[&asset.label, &mfa]),
        evidence,
    })
}

fn k23_transit(subject: &Subject<'_>, ctx: &Context) -> Option<Violation> {
    let Subject::Member(system, asset) = subject else {
        return None;
    };
    if k_level(system) < Some(2) {
        return None;
    }
    let (state, evidence) = control(system, asset, "transit_encryption", ctx.today);
    let k = k_level(system).unwrap_or(0).to_string();
    let key = match state.as_str() {
        "encrypted" | "attested" => return None,
        "plaintext" => "finding.k23-transit.plaintext",
        _ => "finding.k23-transit.unknown",
    };
    Some(Violation {
        text: Text::new(key, &[&asset.label, &k]),
        evidence,
    })
}

fn k23_rest(subject: &Subject<'_>, ctx: &Context) -> Option<Violation> {
    let Subject::Member(system, asset) = subject else {
        return None;
    };
    if k_level(system) < Some(2) {
        return None;
    }
    let (state, evidence) = control(system, asset, "rest_encryption", ctx.today);
    let k = k_level(system).unwrap_or(0).to_string();
    let key = match state.as_str() {
        "encrypted" | "attested" => return None,
        "unencrypted" => "finding.k23-rest.unencrypted",
        _ => "finding.k23-rest.unknown",
    };
    Some(Violation {
        text: Text::new(key, &[&asset.label, &k]),
        evidence,
    })
}

/// The level the logging rule follows: S where the register gives it, else K.
fn traceability_level(system: &System) -> Option<u8> {
    system.classification.as_ref().map(|c| c.s.unwrap_or(c.k))
}

fn k23_logging(subject: &Subject<'_>, ctx: &Context) -> Option<Violation> {
    let Subject::Member(system, asset) = subject else {
        return None;
    };
    let level = traceability_level(system)?;
    if level < 2 {
        return None;
    }
    let aspect = if system
        .classification
        .as_ref()
        .is_some_and(|c| c.s.is_some())
    {
        "S"
    } else {
        "K"
    };
    let (state, evidence) = control(system, asset, "log_protection", ctx.today);
    let key = match state.as_str() {
        "forwarded" | "attested" => return None,
        "local_only" => "finding.k23-logging.local_only",
        "none" => "finding.k23-logging.none",
        _ => "finding.k23-logging.unknown",
    };
    Some(Violation {
        text: Text::new(key, &[asset.label.clone(), format!("{aspect}{level}")]),
        evidence,
    })
}

fn k23_privileged(subject: &Subject<'_>, ctx: &Context) -> Option<Violation> {
    let Subject::Member(system, asset) = subject else {
        return None;
    };
    let k = k_level(system)?;
    if k < 2 {
        return None;
    }
    let (state, evidence) = control(system, asset, "privileged_access", ctx.today);
    if state == "attested" {
        return None;
    }
    let after = ctx.config.dormant_admin_after_days;
    let logins = last_logins(&evidence);
    let dormant: Vec<&LastLoginRecord<'_>> = logins
        .iter()
        .filter(|l| {
            l.last
                .is_none_or(|at| (ctx.today - at).whole_days() >= after)
        })
        .collect();
    // Dated ones and never-seen ones apart, so each clause reads naturally in every language.
    let dated: Vec<String> = dormant
        .iter()
        .filter_map(|l| l.last.map(|at| format!("{} ({at})", l.account)))
        .collect();
    let never: Vec<&str> = dormant
        .iter()
        .filter(|l| l.last.is_none())
        .map(|l| l.account)
        .collect();
    let with_dormant = |mut text: Text| {
        if !dated.is_empty() {
            text = text.and("finding.k23-privileged.dormant_since", &[dated.join(", ")]);
        }
        if !never.is_empty() {
            text = text.and("finding.k23-privileged.dormant_never", &[never.join(", ")]);
        }
        text
    };
    // Only the dormant administrators' records are evidence of this finding.
    let evidence: Vec<StoredEvidence> = evidence
        .iter()
        .filter(|e| e.probe != LAST_LOGIN_PROBE || dormant.iter().any(|d| d.evidence == *e))
        .cloned()
        .collect();
    let (label, k, after) = (asset.label.as_str(), k.to_string(), after.to_string());
    let text = match state.as_str() {
        "restricted" if dormant.is_empty() => return None,
        "restricted" => with_dormant(Text::new(
            "finding.k23-privileged.dormant",
            &[label, &after, &k],
        )),
        "exposed" => {
            let reason = asset
                .controls
                .get("privileged_access")
                .map_or("-", |c| c.reason.as_str());
            let text = Text::new("finding.k23-privileged.exposed", &[label, &k, reason]);
            if dormant.is_empty() {
                text
            } else {
                with_dormant(text.and("finding.k23-privileged.exposed_dormant", &[&after]))
            }
        }
        _ => Text::new("finding.k23-privileged.unknown", &[label, &k]),
    };
    Some(Violation { text, evidence })
}

/// The probe of the agent's last-login evidence (agent/src/inventory/lastlog.rs).
const LAST_LOGIN_PROBE: &str = "last-login";

/// One administrator's last login as the agent recorded it.
struct LastLoginRecord<'a> {
    account: &'a str,
    /// `None`: never logged in.
    last: Option<Date>,
    evidence: &'a StoredEvidence,
}

/// The administrators' last logins in a control's evidence, whose details read `NAME: last
/// login RFC3339` or `NAME: never logged in` (the agent's lastlog module documents the form).
/// A detail in neither form is skipped: it is still shown as evidence, but judges no one.
fn last_logins(evidence: &[StoredEvidence]) -> Vec<LastLoginRecord<'_>> {
    evidence
        .iter()
        .filter(|e| e.probe == LAST_LOGIN_PROBE)
        .filter_map(|e| {
            let (account, rest) = e.detail.rsplit_once(": ")?;
            let last = match rest.strip_prefix("last login ") {
                Some(at) => Some(
                    time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339)
                        .ok()?
                        .date(),
                ),
                None if rest == "never logged in" => None,
                None => return None,
            };
            Some(LastLoginRecord {
                account,
                last,
                evidence: e,
            })
        })
        .collect()
}

/// The first day after `today` on which one of `asset`'s administrators becomes dormant
/// (`k23-privileged` counts whole days since the last login): for the incremental
/// evaluation's index of due dates.
pub(crate) fn next_dormancy(asset: &EvalAsset, today: Date, after_days: i64) -> Option<Date> {
    let control = asset.controls.get("privileged_access")?;
    last_logins(&control.evidence)
        .iter()
        .filter_map(|l| l.last)
        .filter_map(|at| at.checked_add(time::Duration::days(after_days)))
        .filter(|day| *day > today)
        .min()
}

fn unowned_asset(subject: &Subject<'_>, _ctx: &Context) -> Option<Violation> {
    let Subject::Asset(asset, systems) = subject else {
        return None;
    };
    if systems.is_empty() {
        return Some(Violation {
            text: Text::new("finding.unowned-asset.unlinked", &[&asset.label]),
            evidence: vec![],
        });
    }
    let ownerless: Vec<&str> = systems
        .iter()
        .filter(|s| s.system_owner.is_none())
        .map(|s| s.id.as_str())
        .collect();
    (ownerless.len() == systems.len()).then(|| Violation {
        text: Text::new(
            "finding.unowned-asset.ownerless",
            &[asset.label.clone(), ownerless.join(", ")],
        ),
        evidence: vec![],
    })
}

fn unclassified_system(subject: &Subject<'_>, _ctx: &Context) -> Option<Violation> {
    let Subject::System(system, _) = subject else {
        return None;
    };
    system.classification.is_none().then(|| Violation {
        text: Text::new("finding.unclassified-system", &[&system.id, &system.name]),
        evidence: vec![],
    })
}

fn review_due(subject: &Subject<'_>, ctx: &Context) -> Option<Violation> {
    let Subject::System(system, _) = subject else {
        return None;
    };
    let classification = system.classification.as_ref()?;
    let age = (ctx.today - classification.classified_at).whole_days();
    (age > ctx.config.review_after_days).then(|| Violation {
        text: Text::new(
            "finding.review-due",
            &[
                system.id.clone(),
                classification.classified_at.to_string(),
                age.to_string(),
            ],
        ),
        evidence: vec![StoredEvidence {
            source: format!("system register: {}", system.id),
            line: 0,
            probe: "catalog".into(),
            detail: format!(
                "classified_at {} by {}",
                classification.classified_at, classification.classified_by
            ),
        }],
    })
}

pub use crate::catalog::NO_FOOTPRINT;

fn valid_attestation<'a>(
    system: &'a System,
    name: &str,
    today: Date,
) -> Option<&'a crate::catalog::Attestation> {
    system
        .attestations
        .iter()
        .find(|a| a.control == name && a.expires_at >= today)
}

/// Whether an asset was seen within the stale window (the complement of `stale-asset`).
fn is_fresh(asset: &EvalAsset, ctx: &Context) -> bool {
    (ctx.now_ms - asset.last_seen_at) / 86_400_000 < ctx.config.stale_after_days
}

fn unverified_system(subject: &Subject<'_>, ctx: &Context) -> Option<Violation> {
    let Subject::System(system, members) = subject else {
        return None;
    };
    let k = k_level(system)?;
    if k < 2 || valid_attestation(system, NO_FOOTPRINT, ctx.today).is_some() {
        return None;
    }
    if members.is_empty() {
        return Some(Violation {
            text: Text::new(
                "finding.unverified-system.unlinked",
                &[system.id.clone(), k.to_string()],
            ),
            evidence: vec![StoredEvidence {
                source: format!("system register: {}", system.id),
                line: 0,
                probe: "linking".into(),
                detail: "no asset matched the system's link rules".into(),
            }],
        });
    }
    if members.iter().any(|a| is_fresh(a, ctx)) {
        return None;
    }
    Some(Violation {
        text: Text::new(
            "finding.unverified-system.stale",
            &[
                system.id.clone(),
                k.to_string(),
                members.len().to_string(),
                ctx.config.stale_after_days.to_string(),
            ],
        ),
        evidence: members
            .iter()
            .map(|a| StoredEvidence {
                source: format!("asset {}", a.label),
                line: 0,
                probe: "collector".into(),
                detail: format!(
                    "last seen {} days ago",
                    (ctx.now_ms - a.last_seen_at) / 86_400_000
                ),
            })
            .collect(),
    })
}

fn stale_asset(subject: &Subject<'_>, ctx: &Context) -> Option<Violation> {
    let Subject::Asset(asset, _) = subject else {
        return None;
    };
    let age_days = (ctx.now_ms - asset.last_seen_at) / 86_400_000;
    (age_days >= ctx.config.stale_after_days).then(|| Violation {
        text: Text::new(
            "finding.stale-asset",
            &[asset.label.clone(), age_days.to_string()],
        ),
        evidence: vec![],
    })
}

/// The agent renews before two thirds of the lifetime counted from issue (its own count starts
/// at the back-dated not-before, earlier), so reaching the last third means renewal failed.
fn certificate_expiring(subject: &Subject<'_>, ctx: &Context) -> Option<Violation> {
    let Subject::Asset(asset, _) = subject else {
        return None;
    };
    let cert = asset.certificate.as_ref()?;
    // In i128: stored times are data, and extreme ones must not overflow.
    let (issued, expires) = (i128::from(cert.issued_at), i128::from(cert.not_after));
    let last_third = issued + (expires - issued) * 2 / 3;
    if i128::from(ctx.now_ms) < last_third {
        return None;
    }
    // Stored in the finding's message, so in UTC with the zone named rather than the
    // evaluating machine's local time.
    let expiry = chrono::DateTime::from_timestamp_millis(cert.not_after).map_or_else(
        || cert.not_after.to_string(),
        |t| t.format("%Y-%m-%d %H:%M UTC").to_string(),
    );
    let key = if ctx.now_ms >= cert.not_after {
        "finding.certificate-expiring.expired"
    } else {
        "finding.certificate-expiring.last_third"
    };
    Some(Violation {
        text: Text::new(key, &[&cert.agent_id, &asset.label, &expiry]),
        evidence: vec![StoredEvidence {
            source: format!("agent {}", cert.agent_id),
            line: 0,
            probe: "collector".into(),
            detail: format!(
                "certificate issued {} ms, expires {} ms since the epoch",
                cert.issued_at, cert.not_after
            ),
        }],
    })
}

fn severity(rule: &Rule, system: Option<&System>, asset: Option<&EvalAsset>) -> Severity {
    let mut steps = 0;
    if let Some(system) = system {
        if rule.raised_for_k3 && k_level(system) == Some(3) {
            steps += 1;
        }
        if system.critical_to_society || system.business_critical {
            steps += 1;
        }
    }
    if rule.raised_for_ot && asset.is_some_and(|a| a.kind == "device") {
        steps += 1;
    }
    rule.base_severity.raised(steps)
}

/// Applies every rule to every subject: [`evaluate_system`] for each system with its members,
/// [`evaluate_asset`] for each asset with the systems it is linked to.
pub fn evaluate(
    systems: &[System],
    assets: &[EvalAsset],
    links: &[AssetLinks],
    ctx: &Context,
) -> Vec<FindingDraft> {
    let by_id: HashMap<&str, &System> = systems.iter().map(|s| (s.id.as_str(), s)).collect();
    let members = members_by_system(assets, links);
    // Each system and each asset is judged on its own, so the parts run on every core.
    let mut drafts = crate::parallel::map_parts(systems, |_, part| {
        let mut drafts = Vec::new();
        for system in part {
            let of = members
                .get(system.id.as_str())
                .map_or(&[][..], Vec::as_slice);
            drafts.extend(evaluate_system(system, of, ctx));
        }
        drafts
    });
    drafts.extend(crate::parallel::map_parts(assets, |offset, part| {
        let mut drafts = Vec::new();
        for (asset, asset_links) in part.iter().zip(links.get(offset..).unwrap_or_default()) {
            let member_of: Vec<&System> = asset_links
                .links
                .iter()
                .filter_map(|l| by_id.get(l.system_id.as_str()).copied())
                .collect();
            drafts.extend(evaluate_asset(asset, &member_of, ctx));
        }
        drafts
    }));
    drafts
}

/// The findings of the system-scope rules for `system`, whose linked assets are `members`
/// (stale ones included).
pub fn evaluate_system(
    system: &System,
    members: &[&EvalAsset],
    ctx: &Context,
) -> Vec<FindingDraft> {
    RULES
        .iter()
        .filter(|rule| matches!(rule.scope, Scope::System))
        .filter_map(|rule| {
            (rule.check)(&Subject::System(system, members), ctx)
                .map(|v| draft(rule, v, Some(system), None))
        })
        .collect()
}

/// The findings of the asset- and member-scope rules for `asset`, linked to `member_of`.
pub fn evaluate_asset(
    asset: &EvalAsset,
    member_of: &[&System],
    ctx: &Context,
) -> Vec<FindingDraft> {
    let mut drafts = Vec::new();
    for rule in RULES {
        match rule.scope {
            Scope::System => {}
            Scope::Asset => {
                if let Some(v) = (rule.check)(&Subject::Asset(asset, member_of), ctx) {
                    drafts.push(draft(
                        rule,
                        v,
                        member_of.first().copied().filter(|_| member_of.len() == 1),
                        Some(asset),
                    ));
                }
            }
            Scope::Member => {
                for system in member_of {
                    if let Some(v) = (rule.check)(&Subject::Member(system, asset), ctx) {
                        drafts.push(draft(rule, v, Some(system), Some(asset)));
                    }
                }
            }
        }
    }
    drafts
}

/// The assets linked to each system, by system id.
pub fn members_by_system<'a>(
    assets: &'a [EvalAsset],
    links: &'a [AssetLinks],
) -> HashMap<&'a str, Vec<&'a EvalAsset>> {
    let mut members: HashMap<&str, Vec<&EvalAsset>> = HashMap::new();
    for (asset, asset_links) in assets.iter().zip(links) {
        for link in &asset_links.links {
            members
                .entry(link.system_id.as_str())
                .or_default()
                .push(asset);
        }
    }
    members
}

/// A system's standing with one K2/K3 rule, counted in the report and `systems`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleState {
    /// Every asset seen within the stale window passes, or, with no such asset, valid
    /// attestations alone satisfy the rule.
    Compliant,
    /// At least one fresh asset fails on a known verdict.
    NotCompliant,
    /// Nothing to judge (no fresh asset and no attestation), or the assets that fail would pass
    /// if their `unknown` controls were known to be good.
    Unverified,
}

/// How `system` stands with `rule` (a rule of [`Scope::Member`]), or `None` when the rule does
/// not apply to it (its K level). An accepted risk is still `NotCompliant`: acceptance is counted
/// on its own.
pub fn judge(
    rule: &Rule,
    system: &System,
    members: &[&EvalAsset],
    ctx: &Context,
) -> Option<RuleState> {
    if !matches!(rule.scope, Scope::Member) {
        return None;
    }
    // An asset that reported nothing fails every rule that applies (unknown never passes), so
    // a bare asset of a system without attestations tells whether the rule applies at all.
    let bare_asset = EvalAsset {
        asset_id: String::new(),
        kind: "host".into(),
        label: String::new(),
        controls: HashMap::new(),
        last_seen_at: ctx.now_ms,
        certificate: None,
    };
    // Whether valid attestations alone satisfy the rule. Only when they do is a copy of the
    // system without them needed to tell "attested" from "does not apply".
    let attested = (rule.check)(&Subject::Member(system, &bare_asset), ctx).is_none();
    if attested {
        if system.attestations.is_empty() {
            return None;
        }
        let bare_system = System {
            attestations: Vec::new(),
            ..system.clone()
        };
        (rule.check)(&Subject::Member(&bare_system, &bare_asset), ctx)?;
    }
    let fresh: Vec<&EvalAsset> = members
        .iter()
        .copied()
        .filter(|a| is_fresh(a, ctx))
        .collect();
    if fresh.is_empty() {
        return Some(if attested {
            RuleState::Compliant
        } else {
            RuleState::Unverified
        });
    }
    let mut unverified = false;
    for asset in fresh {
        if (rule.check)(&Subject::Member(system, asset), ctx).is_none() {
            continue;
        }
        if (rule.check)(&Subject::Member(system, &optimistic(asset)), ctx).is_none() {
            unverified = true;
        } else {
            return Some(RuleState::NotCompliant);
        }
    }
    Some(if unverified {
        RuleState::Unverified
    } else {
        RuleState::Compliant
    })
}

/// The asset with every control it did not report, or reported as `unknown`, taken as good
/// (`attested` passes every rule): what it would be if the unknowns were resolved in its favour.
fn optimistic(asset: &EvalAsset) -> EvalAsset {
    // Only the states matter to the checks; reasons and evidence are not copied.
    let controls = crate::catalog::CONTROLS
        .iter()
        .map(|name| {
            let state = asset
                .controls
                .get(*name)
                .map(|c| c.state.as_str())
                .filter(|state| *state != "unknown")
                .unwrap_or("attested");
            (
                (*name).to_string(),
                ControlRecord {
                    name: (*name).to_string(),
                    state: state.to_string(),
                    reason: String::new(),
                    evidence: Vec::new(),
                },
            )
        })
        .collect();
    EvalAsset {
        asset_id: String::new(),
        kind: asset.kind.clone(),
        label: asset.label.clone(),
        controls,
        last_seen_at: asset.last_seen_at,
        certificate: None,
    }
}

/// Every K2/K3 rule's standing per system: system id -> rule id -> state, for the rules that
/// apply to it.
pub fn compliance(
    systems: &[System],
    assets: &[EvalAsset],
    links: &[AssetLinks],
    ctx: &Context,
) -> HashMap<String, Vec<(&'static str, RuleState)>> {
    let members = members_by_system(assets, links);
    systems
        .iter()
        .map(|system| {
            let of = members
                .get(system.id.as_str())
                .map_or(&[][..], Vec::as_slice);
            let states = RULES
                .iter()
                .filter_map(|rule| judge(rule, system, of, ctx).map(|state| (rule.id, state)))
                .collect();
            (system.id.clone(), states)
        })
        .collect()
}

fn draft(
    rule: &'static Rule,
    violation: Violation,
    system: Option<&System>,
    asset: Option<&EvalAsset>,
) -> FindingDraft {
    FindingDraft {
        rule: rule.id,
        severity: severity(rule, system, asset),
        system_id: system.map(|s| s.id.clone()),
        asset_id: asset.map(|a| a.asset_id.clone()),
        asset: asset.map(|a| a.label.clone()).unwrap_or_default(),
        message: violation.text.render(&Lang::En.messages()),
        text: violation.text,
        evidence: violation.evidence,
    }
}

/// Every control of ISO/IEC 27001:2022 Annex A: 5.1–5.37 organisational, 6.1–6.8 people, 7.1–7.14
/// physical, 8.1–8.34 technological. A mapping naming anything else is refused.
pub fn is_annex_a(control: &str) -> bool {
    let Some(rest) = control.strip_prefix("A.") else {
        return false;
    };
    let Some((theme, number)) = rest.split_once('.') else {
        return false;
    };
    let last = match theme {
        "5" => 37,
        "6" => 8,
        "7" => 14,
        "8" => 34,
        _ => return false,
    };
    number
        .parse::<u8>()
        .is_ok_and(|n| (1..=last).contains(&n) && n.to_string() == number)
}

/// NIS2 Article 21(2) has measures (a) to (j).
pub fn is_nis2_measure(letter: &str) -> bool {
    matches!(
        letter,
        "a" | "b" | "c" | "d" | "e" | "f" | "g" | "h" | "i" | "j"
    )
}

/// The rule with this id.
pub fn rule(id: &str) -> Option<&'static Rule> {
    RULES.iter().find(|r| r.id == id)
}

/// The attestation controls that can answer rule `id` (what its check reads through the
/// attestation-aware control lookup); empty for rules no attestation answers. The findings
/// list uses it to tell a finding resolved by an attestation from one fixed on the asset.
pub fn attestable_controls(id: &str) -> &'static [&'static str] {
    match id {
        "k2-auth" => &["mfa", "rest_encryption", "transit_encryption"],
        "k3-auth" => &["mfa"],
        "k23-transit" => &["transit_encryption"],
        "k23-rest" => &["rest_encryption"],
        "k23-logging" => &["log_protection"],
        "k23-privileged" => &["privileged_access"],
        "unverified-system" => &[NO_FOOTPRINT],
        _ => &[],
    }
}

#[cfg(test)]
mod tests;
