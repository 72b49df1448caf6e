//! The classification rule engine: one table of rules ([`RULES`]), one function each, from the
//! municipalities' policy (DESIGN.md §2). Pure: it takes systems, assets and their links and
//! returns the findings that hold right now; the store turns them into a lifecycle.
//!
//! `unknown` never passes a K2/K3 rule. An attestation satisfies a control only until it
//! expires.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use time::Date;

use crate::catalog::System;
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
}

impl Default for RuleConfig {
    fn default() -> Self {
        Self {
            review_after_days: 365,
            stale_after_days: 7,
        }
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
    /// One sentence for the owner.
    pub message: String,
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
    /// A system.
    System(&'a System),
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
    /// One sentence.
    pub message: String,
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
    /// Severity before raising for K3, criticality and OT.
    pub base_severity: Severity,
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
        base_severity: Severity::Medium,
        scope: Scope::Member,
        check: k2_auth,
    },
    Rule {
        id: "k3-auth",
        policy: "K3 information always requires strong (multi-factor) authentication; encryption does not replace it.",
        remediation: "Require a second factor on every interactive login path (SSH, console, web) and remove Match blocks that re-enable passwords.",
        base_severity: Severity::High,
        scope: Scope::Member,
        check: k3_auth,
    },
    Rule {
        id: "k23-transit",
        policy: "K2/K3 information may only be sent encrypted.",
        remediation: "Put TLS in front of every exposed service (or SSH tunnels / VPN for OT protocols without security), disable plaintext listeners, or attest the compensating control.",
        base_severity: Severity::Medium,
        scope: Scope::Member,
        check: k23_transit,
    },
    Rule {
        id: "k23-rest",
        policy: "K2/K3 information may only be stored encrypted.",
        remediation: "Encrypt every data volume (LUKS/dm-crypt, ZFS native encryption) or attest the device's storage encryption.",
        base_severity: Severity::Medium,
        scope: Scope::Member,
        check: k23_rest,
    },
    Rule {
        id: "unowned-asset",
        policy: "Every system, including OT, must have a named owner.",
        remediation: "Link the asset to its system in the register (hostname, network, label, device pattern or asset id) and name the system owner.",
        base_severity: Severity::Medium,
        scope: Scope::Asset,
        check: unowned_asset,
    },
    Rule {
        id: "unclassified-system",
        policy: "Every system must be classified (K, R, T).",
        remediation: "Classify the system's information with the information owner and record K/R/T and the date in the register.",
        base_severity: Severity::Medium,
        scope: Scope::System,
        check: unclassified_system,
    },
    Rule {
        id: "review-due",
        policy: "Classifications are reviewed yearly.",
        remediation: "Review the classification with the information owner and update the classification date.",
        base_severity: Severity::Low,
        scope: Scope::System,
        check: review_due,
    },
    Rule {
        id: "stale-asset",
        policy: "The inventory must be current to be trusted.",
        remediation: "Check that the agent runs and can reach the collector, or retire the asset.",
        base_severity: Severity::Low,
        scope: Scope::Asset,
        check: stale_asset,
    },
    Rule {
        id: "certificate-expiring",
        policy: "Agents renew their certificate at two thirds of its lifetime; one that did not is about to stop reporting.",
        remediation: "Check that the agent runs and reaches the collector (its log says why renewal failed); once expired it needs a new token: `tillsyn-agent enroll --force`.",
        base_severity: Severity::Medium,
        scope: Scope::Asset,
        check: certificate_expiring,
    },
];

/// The state of `control` for `asset` in `system`: an unexpired attestation wins.
fn control<'a>(
    system: &'a System,
    asset: &'a EvalAsset,
    name: &str,
    today: Date,
) -> (String, Vec<StoredEvidence>) {
    if let Some(attestation) = system
        .attestations
        .iter()
        .find(|a| a.control == name && a.expires_at >= today)
    {
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
        message: format!(
            "{} holds K2 information but has neither MFA (mfa: {mfa}) nor encryption (at rest: {rest}, in transit: {transit})",
            asset.label
        ),
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
        message: format!(
            "{} holds K3 information but multi-factor authentication is {mfa}, not enforced",
            asset.label
        ),
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
    let message = match state.as_str() {
        "encrypted" | "attested" => return None,
        "plaintext" => format!(
            "{} exposes plaintext services while holding K{} information",
            asset.label,
            k_level(system).unwrap_or(0)
        ),
        _ => format!(
            "{}: encryption in transit could not be verified (unknown) for K{} information",
            asset.label,
            k_level(system).unwrap_or(0)
        ),
    };
    Some(Violation { message, evidence })
}

fn k23_rest(subject: &Subject<'_>, ctx: &Context) -> Option<Violation> {
    let Subject::Member(system, asset) = subject else {
        return None;
    };
    if k_level(system) < Some(2) {
        return None;
    }
    let (state, evidence) = control(system, asset, "rest_encryption", ctx.today);
    let message = match state.as_str() {
        "encrypted" | "attested" => return None,
        "unencrypted" => format!(
            "{} stores K{} information on unencrypted volumes",
            asset.label,
            k_level(system).unwrap_or(0)
        ),
        _ => format!(
            "{}: encryption at rest could not be verified (unknown) for K{} information",
            asset.label,
            k_level(system).unwrap_or(0)
        ),
    };
    Some(Violation { message, evidence })
}

fn unowned_asset(subject: &Subject<'_>, _ctx: &Context) -> Option<Violation> {
    let Subject::Asset(asset, systems) = subject else {
        return None;
    };
    if systems.is_empty() {
        return Some(Violation {
            message: format!("{} is linked to no system in the register", asset.label),
            evidence: vec![],
        });
    }
    let ownerless: Vec<&str> = systems
        .iter()
        .filter(|s| s.system_owner.is_none())
        .map(|s| s.id.as_str())
        .collect();
    (ownerless.len() == systems.len()).then(|| Violation {
        message: format!(
            "{} belongs to {} which has no system owner",
            asset.label,
            ownerless.join(", ")
        ),
        evidence: vec![],
    })
}

fn unclassified_system(subject: &Subject<'_>, _ctx: &Context) -> Option<Violation> {
    let Subject::System(system) = subject else {
        return None;
    };
    system.classification.is_none().then(|| Violation {
        message: format!(
            "system {} ({}) has no classification",
            system.id, system.name
        ),
        evidence: vec![],
    })
}

fn review_due(subject: &Subject<'_>, ctx: &Context) -> Option<Violation> {
    let Subject::System(system) = subject else {
        return None;
    };
    let classification = system.classification.as_ref()?;
    let age = (ctx.today - classification.classified_at).whole_days();
    (age > ctx.config.review_after_days).then(|| Violation {
        message: format!(
            "system {} was classified on {} ({age} days ago); the yearly review is due",
            system.id, classification.classified_at
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

fn stale_asset(subject: &Subject<'_>, ctx: &Context) -> Option<Violation> {
    let Subject::Asset(asset, _) = subject else {
        return None;
    };
    let age_days = (ctx.now_ms - asset.last_seen_at) / 86_400_000;
    (age_days >= ctx.config.stale_after_days).then(|| Violation {
        message: format!("{} was last seen {age_days} days ago", asset.label),
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
    let last_third = cert.issued_at + (cert.not_after - cert.issued_at) * 2 / 3;
    if ctx.now_ms < last_third {
        return None;
    }
    let expiry = time::OffsetDateTime::from_unix_timestamp(cert.not_after / 1000)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| cert.not_after.to_string());
    let message = if ctx.now_ms >= cert.not_after {
        format!(
            "the certificate of agent {} on {} expired at {expiry} without renewal; the agent cannot report until it is enrolled again with a new token",
            cert.agent_id, asset.label
        )
    } else {
        format!(
            "the certificate of agent {} on {} is in the last third of its lifetime and was not renewed; it expires at {expiry}",
            cert.agent_id, asset.label
        )
    };
    Some(Violation {
        message,
        evidence: vec![StoredEvidence {
            source: format!("agent {}", cert.agent_id),
            line: 0,
            probe: "collector".into(),
            detail: format!("certificate issued {} ms, expires {} ms since the epoch", cert.issued_at, cert.not_after),
        }],
    })
}

fn severity(rule: &Rule, system: Option<&System>, asset: Option<&EvalAsset>) -> Severity {
    let mut steps = 0;
    if let Some(system) = system {
        if rule.id.starts_with('k') && k_level(system) == Some(3) && rule.id != "k3-auth" {
            steps += 1;
        }
        if system.critical_to_society || system.business_critical {
            steps += 1;
        }
    }
    if asset.is_some_and(|a| a.kind == "device") && rule.id.starts_with('k') {
        steps += 1;
    }
    rule.base_severity.raised(steps)
}

/// Applies every rule to every subject.
pub fn evaluate(
    systems: &[System],
    assets: &[EvalAsset],
    links: &[AssetLinks],
    ctx: &Context,
) -> Vec<FindingDraft> {
    let by_id: HashMap<&str, &System> = systems.iter().map(|s| (s.id.as_str(), s)).collect();
    let mut drafts = Vec::new();
    for rule in RULES {
        match rule.scope {
            Scope::System => {
                for system in systems {
                    if let Some(v) = (rule.check)(&Subject::System(system), ctx) {
                        drafts.push(draft(rule, v, Some(system), None));
                    }
                }
            }
            Scope::Asset | Scope::Member => {
                for (asset, asset_links) in assets.iter().zip(links) {
                    let member_of: Vec<&System> = asset_links
                        .links
                        .iter()
                        .filter_map(|l| by_id.get(l.system_id.as_str()).copied())
                        .collect();
                    if matches!(rule.scope, Scope::Asset) {
                        if let Some(v) = (rule.check)(&Subject::Asset(asset, &member_of), ctx) {
                            drafts.push(draft(
                                rule,
                                v,
                                member_of.first().copied().filter(|_| member_of.len() == 1),
                                Some(asset),
                            ));
                        }
                        continue;
                    }
                    for system in &member_of {
                        if let Some(v) = (rule.check)(&Subject::Member(system, asset), ctx) {
                            drafts.push(draft(rule, v, Some(system), Some(asset)));
                        }
                    }
                }
            }
        }
    }
    drafts
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
        message: violation.message,
        evidence: violation.evidence,
    }
}

/// The rule with this id.
pub fn rule(id: &str) -> Option<&'static Rule> {
    RULES.iter().find(|r| r.id == id)
}

#[cfg(test)]
mod tests;
