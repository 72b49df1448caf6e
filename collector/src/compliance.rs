//! Operator and owner views of compliance behind the CLI verbs: `catalog import`, `systems`,
//! `findings`, `finding accept|history`, `evaluate`. Each evaluates first where it shows
//! findings, so what is printed is current. JSON and CSV shapes are stable (fields only added).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde::Serialize;

use crate::admin::{AdminError, actor};
use crate::catalog::{self, CatalogError, System};
use crate::config::CollectorDir;
use crate::evaluation;
use crate::output::{self, Format};
use crate::rules::{self, RuleState, Severity};
use crate::server::now_ms;
use crate::store::{Acceptance, AuditEvent, FindingRecord, Store, StoredEvidence};

/// Errors of compliance commands.
#[derive(Debug, thiserror::Error)]
pub enum ComplianceError {
    /// A CSV export could not be written.
    #[error(transparent)]
    Csv(#[from] output::CsvError),
    /// Set-up or storage.
    #[error(transparent)]
    Admin(#[from] AdminError),
    /// The register file was refused.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// A bad argument.
    #[error("{0}")]
    Argument(String),
}

impl From<crate::store::StoreError> for ComplianceError {
    fn from(e: crate::store::StoreError) -> Self {
        Self::Admin(AdminError::Store(e))
    }
}

/// Listing formats of findings (CSV for spreadsheets): the shared [`output::ExportFormat`].
pub use crate::output::ExportFormat as FindingFormat;

/// `catalog import FILE`: validate all, then replace the register in one transaction.
pub async fn import(
    dir: &CollectorDir,
    store: &dyn Store,
    path: &Path,
) -> Result<String, ComplianceError> {
    let systems = catalog::load(path)?;
    let bytes = std::fs::read(path)
        .map_err(|e| ComplianceError::Argument(format!("{}: {e}", path.display())))?;
    let event = AuditEvent {
        actor: actor(),
        action: "catalog.import".into(),
        subject: path.display().to_string(),
        detail: serde_json::json!({
            "systems": systems.len(),
            "sha256": hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes)),
        }),
    };
    let now = now_ms();
    let change = store.replace_catalog(&systems, event, now).await?;
    let config = dir.load_config().map_err(AdminError::from)?;
    let summary = evaluation::evaluate(store, &config.rules, now).await?;
    Ok(format!(
        "imported {} systems from {} ({} added, {} changed, {} unchanged, {} removed)\nfindings: {} open ({} new, {} resolved)",
        systems.len(),
        path.display(),
        change.added,
        change.changed,
        change.unchanged,
        change.removed,
        summary.open,
        summary.opened,
        summary.resolved
    ))
}

/// Runs the rules now; returns the snapshot evaluated and what changed.
pub async fn evaluated(
    dir: &CollectorDir,
    store: &dyn Store,
) -> Result<(evaluation::Snapshot, crate::store::EvaluationSummary), ComplianceError> {
    let config = dir.load_config().map_err(AdminError::from)?;
    Ok(evaluation::evaluate_snapshot(store, &config.rules, now_ms()).await?)
}

/// A system's standing per K2/K3 rule that applies to it: rule id -> state (JSON
/// `compliant|not_compliant|unverified`).
pub type SystemCompliance = BTreeMap<&'static str, RuleState>;

/// Runs the rules now like [`evaluated`], and judges every system's standing with each K2/K3
/// rule on the same snapshot.
pub async fn evaluated_compliance(
    dir: &CollectorDir,
    store: &dyn Store,
) -> Result<(evaluation::Snapshot, HashMap<String, SystemCompliance>), ComplianceError> {
    let config = dir.load_config().map_err(AdminError::from)?;
    let now = now_ms();
    let (snapshot, judged) = evaluation::evaluate_judged(store, &config.rules, now).await?;
    let judged = judged
        .into_iter()
        .map(|(system, states)| (system, states.into_iter().collect()))
        .collect();
    Ok((snapshot, judged))
}

/// "2 compliant, 1 not, 1 unverified" for a table cell; `-` when no K2/K3 rule applies.
fn compliance_cell(states: Option<&SystemCompliance>) -> String {
    let Some(states) = states.filter(|s| !s.is_empty()) else {
        return "-".into();
    };
    let count = |wanted: RuleState| states.values().filter(|s| **s == wanted).count();
    format!(
        "{} compliant, {} not, {} unverified",
        count(RuleState::Compliant),
        count(RuleState::NotCompliant),
        count(RuleState::Unverified)
    )
}

#[derive(Serialize)]
struct RuleView {
    id: &'static str,
    scope: &'static str,
    base_severity: &'static str,
    policy: &'static str,
    remediation: &'static str,
    iso27001: Vec<String>,
    nis2: Vec<String>,
}

/// `rules list`: the rule table with the mappings in force (collector.toml's
/// `[rules.mappings]` over the built-in ones).
pub fn rules_list(dir: &CollectorDir, format: Format) -> Result<String, ComplianceError> {
    let config = dir.load_config().map_err(AdminError::from)?;
    let views: Vec<RuleView> = rules::RULES
        .iter()
        .map(|rule| {
            let mapping = config.rules.mapping(rule);
            RuleView {
                id: rule.id,
                scope: match rule.scope {
                    rules::Scope::System => "system",
                    rules::Scope::Asset => "asset",
                    rules::Scope::Member => "asset of a system",
                },
                base_severity: rule.base_severity.as_str(),
                policy: rule.policy,
                remediation: rule.remediation,
                iso27001: mapping.iso27001,
                nis2: mapping.nis2.iter().map(|m| format!("21(2)({m})")).collect(),
            }
        })
        .collect();
    Ok(match format {
        Format::Json => output::json(&views),
        Format::Table => output::table(
            &[
                "RULE",
                "APPLIES TO",
                "BASE SEVERITY",
                "ISO 27001",
                "NIS2 ART.",
                "POLICY",
            ],
            &views
                .iter()
                .map(|v| {
                    vec![
                        v.id.to_string(),
                        v.scope.to_string(),
                        v.base_severity.to_string(),
                        v.iso27001.join(", "),
                        v.nis2.join(", "),
                        v.policy.to_string(),
                    ]
                })
                .collect::<Vec<_>>(),
        ),
    })
}

/// `evaluate`: run the rules now.
pub async fn evaluate(dir: &CollectorDir, store: &dyn Store) -> Result<String, ComplianceError> {
    let (_, s) = evaluated(dir, store).await?;
    Ok(format!(
        "evaluated: {} open, {} accepted ({} new, {} reopened, {} resolved)",
        s.open, s.accepted, s.opened, s.reopened, s.resolved
    ))
}

#[derive(Serialize)]
struct SystemView<'a> {
    #[serde(flatten)]
    system: &'a System,
    assets: usize,
    open_findings: usize,
    /// Per K2/K3 rule that applies: `compliant`, `not_compliant` or `unverified`.
    compliance: SystemCompliance,
}

/// `systems`.
pub async fn systems(
    dir: &CollectorDir,
    store: &dyn Store,
    format: FindingFormat,
) -> Result<String, ComplianceError> {
    let (snapshot, mut judged) = evaluated_compliance(dir, store).await?;
    // Counted by the database: reading every finding took most of this listing's 9 s at
    // 300,000 findings.
    let open = store.open_findings_by_system().await?;
    let mut assets: HashMap<&str, usize> = HashMap::new();
    for links in &snapshot.links {
        for link in &links.links {
            *assets.entry(link.system_id.as_str()).or_default() += 1;
        }
    }
    let views: Vec<SystemView<'_>> = snapshot
        .systems
        .iter()
        .map(|system| SystemView {
            assets: assets.get(system.id.as_str()).copied().unwrap_or(0),
            open_findings: open.get(&system.id).copied().unwrap_or(0),
            compliance: judged.remove(&system.id).unwrap_or_default(),
            system,
        })
        .collect();
    let header = [
        "SYSTEM",
        "NAME",
        "K/R/T",
        "OWNER",
        "CLASSIFIED",
        "ASSETS",
        "OPEN FINDINGS",
        "K2/K3 RULES",
    ];
    let rows = || {
        views
            .iter()
            .map(|v| {
                let c = v.system.classification.as_ref();
                vec![
                    v.system.id.clone(),
                    v.system.name.clone(),
                    c.map_or_else(|| "-".into(), |c| format!("K{}/R{}/T{}", c.k, c.r, c.t)),
                    v.system.system_owner.as_ref().map_or_else(
                        || "-".into(),
                        |p| p.email.clone().unwrap_or_else(|| p.name.clone()),
                    ),
                    c.map_or_else(|| "-".into(), |c| c.classified_at.to_string()),
                    v.assets.to_string(),
                    v.open_findings.to_string(),
                    compliance_cell(Some(&v.compliance)),
                ]
            })
            .collect::<Vec<_>>()
    };
    Ok(match format {
        FindingFormat::Json => output::json(&views),
        FindingFormat::Table => output::table(&header, &rows()),
        FindingFormat::Csv => output::csv(&header, &rows())?,
    })
}

/// A finding as shown to people and machines: the stored record plus system and rule context.
#[derive(Clone, Debug, Serialize)]
pub struct FindingView {
    /// Short id for `finding accept`.
    pub id: String,
    /// Rule id.
    pub rule: String,
    /// Severity.
    pub severity: String,
    /// `open`, `accepted`, `resolved`.
    pub state: String,
    /// The system, null for assets linked to no system.
    pub system_id: Option<String>,
    /// The system's name.
    pub system_name: Option<String>,
    /// The system owner's e-mail (or name).
    pub owner: Option<String>,
    /// Host name or device address ("" for system-level rules).
    pub asset: String,
    /// The asset id.
    pub asset_id: Option<String>,
    /// One sentence.
    pub message: String,
    /// The same sentence in no language yet ([`FindingRecord::text`]).
    #[serde(skip)]
    pub text: Option<crate::i18n::Text>,
    /// The policy clause.
    pub policy: String,
    /// What to do.
    pub remediation: String,
    /// What the verdict rests on.
    pub evidence: Vec<StoredEvidence>,
    /// RFC 3339.
    pub first_seen: String,
    /// RFC 3339.
    pub last_seen: String,
    /// Acceptance, when accepted.
    pub accepted_by: Option<String>,
    /// Acceptance justification.
    pub accept_reason: Option<String>,
    /// RFC 3339.
    pub accepted_until: Option<String>,
}

/// Filters of `findings`.
#[derive(Clone, Debug, Default)]
pub struct FindingFilter {
    /// Any of the system's owner roles has this e-mail.
    pub owner: Option<String>,
    /// The system id.
    pub system: Option<String>,
    /// Only these severities.
    pub severities: Vec<Severity>,
    /// Include resolved findings.
    pub all: bool,
}

fn owner_emails(system: &System) -> Vec<String> {
    [
        &system.system_owner,
        &system.system_administrator,
        &system.information_owner,
    ]
    .into_iter()
    .flatten()
    .filter_map(|p| p.email.clone())
    .collect()
}

fn view(f: &FindingRecord, systems: &HashMap<&str, &System>) -> FindingView {
    let system = f
        .system_id
        .as_deref()
        .and_then(|id| systems.get(id))
        .copied();
    let rule = rules::rule(&f.rule);
    FindingView {
        id: f.finding_id.clone(),
        rule: f.rule.clone(),
        severity: f.severity.clone(),
        state: f.state.clone(),
        system_id: f.system_id.clone(),
        system_name: system.map(|s| s.name.clone()),
        owner: system
            .and_then(|s| s.system_owner.as_ref())
            .map(|p| p.email.clone().unwrap_or_else(|| p.name.clone())),
        asset: f.asset.clone(),
        asset_id: f.asset_id.clone(),
        message: f.message.clone(),
        text: f.text.clone(),
        policy: rule.map(|r| r.policy.to_string()).unwrap_or_default(),
        remediation: rule.map(|r| r.remediation.to_string()).unwrap_or_default(),
        evidence: f.evidence.clone(),
        first_seen: output::time(Some(f.first_seen_at)),
        last_seen: output::time(Some(f.last_seen_at)),
        accepted_by: f.accepted_by.clone(),
        accept_reason: f.accept_reason.clone(),
        accepted_until: f.accepted_until.map(|t| output::time(Some(t))),
    }
}

/// Evaluates, then returns the findings that pass `filter`, most severe first.
pub async fn finding_views(
    dir: &CollectorDir,
    store: &dyn Store,
    filter: &FindingFilter,
) -> Result<Vec<FindingView>, ComplianceError> {
    let (snapshot, _) = evaluated(dir, store).await?;
    views_of(&snapshot.systems, store, filter).await
}

/// The stored findings that pass `filter`, in the context of the register `systems`.
pub async fn views_of(
    systems: &[System],
    store: &dyn Store,
    filter: &FindingFilter,
) -> Result<Vec<FindingView>, ComplianceError> {
    let by_id: HashMap<&str, &System> = systems.iter().map(|s| (s.id.as_str(), s)).collect();
    let owner = filter.owner.as_ref().map(|o| o.to_lowercase());
    let mut views: Vec<FindingView> = store
        .findings()
        .await?
        .iter()
        .filter(|f| filter.all || f.state != "resolved")
        .filter(|f| {
            filter
                .system
                .as_ref()
                .is_none_or(|s| f.system_id.as_ref() == Some(s))
        })
        .filter(|f| {
            filter.severities.is_empty()
                || Severity::parse(&f.severity).is_some_and(|s| filter.severities.contains(&s))
        })
        .filter(|f| {
            owner.as_ref().is_none_or(|owner| {
                f.system_id
                    .as_deref()
                    .and_then(|id| by_id.get(id))
                    .is_some_and(|s| owner_emails(s).contains(owner))
            })
        })
        .map(|f| view(f, &by_id))
        .collect();
    views.sort_by(|a, b| {
        Severity::parse(&b.severity)
            .cmp(&Severity::parse(&a.severity))
            .then_with(|| a.rule.cmp(&b.rule))
            .then_with(|| a.asset.cmp(&b.asset))
    });
    Ok(views)
}

/// `findings`.
pub async fn findings(
    dir: &CollectorDir,
    store: &dyn Store,
    filter: &FindingFilter,
    format: FindingFormat,
) -> Result<String, ComplianceError> {
    let views = finding_views(dir, store, filter).await?;
    Ok(match format {
        FindingFormat::Json => output::json(&views),
        FindingFormat::Csv => findings_csv(&views)?,
        FindingFormat::Table => output::table(
            &[
                "ID", "SEVERITY", "STATE", "RULE", "SYSTEM", "ASSET", "MESSAGE",
            ],
            &views
                .iter()
                .map(|v| {
                    vec![
                        v.id.clone(),
                        v.severity.clone(),
                        v.state.clone(),
                        v.rule.clone(),
                        v.system_id.clone().unwrap_or_else(|| "-".into()),
                        if v.asset.is_empty() {
                            "-".into()
                        } else {
                            v.asset.clone()
                        },
                        v.message.clone(),
                    ]
                })
                .collect::<Vec<_>>(),
        ),
    })
}

fn findings_csv(views: &[FindingView]) -> Result<String, ComplianceError> {
    let header = [
        "id",
        "rule",
        "severity",
        "state",
        "system_id",
        "system_name",
        "owner",
        "asset",
        "message",
        "evidence",
        "first_seen",
        "last_seen",
        "accepted_by",
        "accepted_until",
    ];
    let rows: Vec<Vec<String>> = views
        .iter()
        .map(|v| {
            let evidence = v
                .evidence
                .iter()
                .map(|e| {
                    if e.line > 0 {
                        format!("{}:{} {}", e.source, e.line, e.detail)
                    } else {
                        format!("{} {}", e.source, e.detail)
                    }
                })
                .collect::<Vec<_>>()
                .join(" | ");
            vec![
                v.id.clone(),
                v.rule.clone(),
                v.severity.clone(),
                v.state.clone(),
                v.system_id.clone().unwrap_or_default(),
                v.system_name.clone().unwrap_or_default(),
                v.owner.clone().unwrap_or_default(),
                v.asset.clone(),
                v.message.clone(),
                evidence,
                v.first_seen.clone(),
                v.last_seen.clone(),
                v.accepted_by.clone().unwrap_or_default(),
                v.accepted_until.clone().unwrap_or_default(),
            ]
        })
        .collect();
    Ok(output::csv(&header, &rows)?)
}

/// `finding accept ID --by --reason --until`.
pub async fn accept(
    store: &dyn Store,
    id: &str,
    by: &str,
    reason: &str,
    until: &str,
) -> Result<String, ComplianceError> {
    if by.trim().is_empty() || reason.trim().is_empty() {
        return Err(ComplianceError::Argument(
            "--by and --reason must name the person and the justification".into(),
        ));
    }
    let date = catalog::parse_date(until)
        .map_err(|e| ComplianceError::Argument(format!("--until {e}")))?;
    let until_ms = date.midnight().assume_utc().unix_timestamp() * 1000 + 86_399_999;
    let now = now_ms();
    if until_ms <= now {
        return Err(ComplianceError::Argument(format!(
            "--until {until} is in the past"
        )));
    }
    store
        .accept_finding(
            id,
            Acceptance {
                by: by.to_string(),
                reason: reason.to_string(),
                until: until_ms,
            },
            now,
        )
        .await?;
    Ok(format!("finding {id} accepted by {by} until {until}"))
}

/// `finding history ID`.
pub async fn history(store: &dyn Store, id: &str) -> Result<String, ComplianceError> {
    let events = store.finding_events(id).await?;
    if events.is_empty() {
        return Err(ComplianceError::Argument(format!(
            "no finding with id {id}"
        )));
    }
    Ok(output::table(
        &["AT", "FROM", "TO", "BY", "NOTE"],
        &events
            .iter()
            .map(|e| {
                vec![
                    output::people_time(Some(e.at)),
                    e.from_state.clone().unwrap_or_else(|| "-".into()),
                    e.to_state.clone(),
                    e.actor.clone(),
                    e.note.clone(),
                ]
            })
            .collect::<Vec<_>>(),
    ))
}
