//! The yearly management review (ledningens genomgång): the figures and how they are gathered.
//! JSON for machines; for the board one self-contained HTML page in Swedish or English
//! ([`html`]), or that page printed to PDF by a headless Chromium ([`pdf`]).
//!
//! # Layout
//! - this file: the headline figures ([`Figures`]), the three-state compliance per rule, the
//!   trend since the previous report, and [`report`], which evaluates, gathers and renders;
//! - [`review`]: the review's sections (per system, risks, OT, monthly trend, ISO 27001/NIS2);
//! - [`html`]: the page, its charts and its print stylesheet;
//! - [`pdf`]: printing the page with Chromium.

pub mod html;
pub mod pdf;
pub mod review;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::admin::AdminError;
use crate::compliance::{ComplianceError, FindingFilter, SystemCompliance, views_of};
use crate::config::CollectorDir;
use crate::evaluation;
use crate::i18n::Lang;
use crate::output;
use crate::rules::RuleState;
use crate::server::now_ms;
use crate::store::Store;

/// Standing of the applicable systems with one rule, in three states that add up to
/// `applicable` (see [`RuleState`]).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RuleCompliance {
    /// Rule id.
    pub rule: String,
    /// Systems the rule applies to (by their K level).
    pub applicable: usize,
    /// Systems compliant on evidence from a fresh asset or a valid attestation.
    pub compliant: usize,
    /// Systems with an asset that fails on a known verdict (accepted risks included).
    #[serde(default)]
    pub not_compliant: usize,
    /// Systems with nothing to judge: no fresh linked asset, or only `unknown` verdicts.
    #[serde(default)]
    pub unverified: usize,
    /// `compliant / applicable` in percent; null when the rule applies to no system, never
    /// "100 %" of nothing.
    pub percent: Option<f64>,
}

/// Open findings of one owner.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct OwnerFindings {
    /// E-mail or name; `(no owner)` for unowned.
    pub owner: String,
    /// Open findings.
    pub open: usize,
    /// Of which critical or high.
    pub critical_or_high: usize,
}

/// Change since the previous report.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Trend {
    /// When the previous report was issued.
    pub previous_issued_at: String,
    /// Change in open findings.
    pub open_findings: i64,
    /// Change in unowned assets.
    pub unowned_assets: i64,
    /// Change in unclassified systems.
    pub unclassified_systems: i64,
    /// Change in compliance percent per rule.
    pub compliance_points: BTreeMap<String, f64>,
}

/// The report's figures.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Figures {
    /// RFC 3339.
    pub issued_at: String,
    /// Systems in the register.
    pub systems: usize,
    /// Systems per K level (`K0`..`K3`, `unclassified`).
    pub systems_by_k: BTreeMap<String, usize>,
    /// Assets.
    pub assets: usize,
    /// Assets per highest K of their systems (`unlinked` for none).
    pub assets_by_k: BTreeMap<String, usize>,
    /// Per K2/K3 rule.
    pub compliance: Vec<RuleCompliance>,
    /// Assets linked to no system or to ownerless systems.
    pub unowned_assets: usize,
    /// Systems without classification.
    pub unclassified_systems: usize,
    /// Classifications older than the review period.
    pub reviews_due: usize,
    /// Open findings.
    pub open_findings: usize,
    /// Open findings per severity.
    pub open_by_severity: BTreeMap<String, usize>,
    /// Open findings per owner, most first.
    pub open_by_owner: Vec<OwnerFindings>,
    /// Accepted risks.
    pub accepted_findings: usize,
    /// Change since the previous report, if there was one.
    pub trend: Option<Trend>,
    /// Language of the page (`sv`, `en`).
    #[serde(default)]
    pub lang: String,
    /// The review's sections.
    #[serde(default)]
    pub review: review::Review,
    /// The audit log's head when the report was issued: a printed report anchors the log
    /// (`audit verify --head SEQ:HASH`). Absent in reports recorded before it existed.
    #[serde(default)]
    pub audit: Option<crate::audit::HeadState>,
}

/// Output format of `report`.
#[derive(Clone, Copy, Debug, Default, clap::ValueEnum, PartialEq, Eq)]
pub enum ReportFormat {
    /// One self-contained HTML file.
    #[default]
    Html,
    /// JSON figures.
    Json,
    /// The HTML page printed to PDF by headless Chromium (needs `--output`).
    Pdf,
}

/// The K2/K3 rules whose standing the report counts, in the rule table's order: the rules
/// applied to each asset of each system, which are the ones [`crate::rules::judge`] judges.
fn k_rules() -> Vec<&'static str> {
    crate::rules::RULES
        .iter()
        .filter(|r| matches!(r.scope, crate::rules::Scope::Member))
        .map(|r| r.id)
        .collect()
}

/// Evaluates, computes the figures, records them for the next trend, and renders in `lang`
/// (`sv` or `en`). HTML and JSON are returned; a PDF is written to `output` and a line saying
/// so is returned.
pub async fn report(
    dir: &CollectorDir,
    store: &dyn Store,
    format: ReportFormat,
    lang: &str,
    output_path: Option<&Path>,
) -> Result<String, ComplianceError> {
    let Some(lang) = Lang::from_code(lang) else {
        return Err(ComplianceError::Argument(format!(
            "--lang {lang:?}: there is no message catalogue for that language (sv, en)"
        )));
    };
    if format == ReportFormat::Pdf && output_path.is_none() {
        return Err(ComplianceError::Argument(
            "--format pdf needs --output FILE (a PDF is not written to a terminal)".into(),
        ));
    }
    let config = dir.load_config().map_err(AdminError::from)?;
    let (figures, k_rules) = issue(store, &config.rules, lang, true).await?;
    match (format, output_path) {
        (ReportFormat::Json, _) => Ok(output::json(&figures)),
        (ReportFormat::Html, _) => Ok(html::html(&figures, &k_rules)),
        (ReportFormat::Pdf, Some(path)) => {
            pdf::print(&html::html(&figures, &k_rules), path)
                .map_err(|e| ComplianceError::Argument(e.to_string()))?;
            Ok(format!("wrote {}", path.display()))
        }
        (ReportFormat::Pdf, None) => Err(ComplianceError::Argument(
            "--format pdf needs --output FILE".into(),
        )),
    }
}

/// The management review as a self-contained HTML page in `lang`, for the web interface: the
/// same evaluation and figures as `report`, but a view, not an issued report, so it is not
/// recorded as a point of the trend.
pub async fn html_view(
    store: &dyn Store,
    rules: &crate::rules::RuleConfig,
    lang: Lang,
) -> Result<String, ComplianceError> {
    let (figures, k_rules) = issue(store, rules, lang, false).await?;
    Ok(html::html(&figures, &k_rules))
}

/// Evaluates and computes the review's figures; `record` stores them for the next trend.
async fn issue(
    store: &dyn Store,
    rules: &crate::rules::RuleConfig,
    lang: Lang,
    record: bool,
) -> Result<(Figures, Vec<&'static str>), ComplianceError> {
    let now = now_ms();
    let (snapshot, judged) = evaluation::evaluate_judged(store, rules, now).await?;
    let judged: HashMap<String, SystemCompliance> = judged
        .into_iter()
        .map(|(system, states)| (system, states.into_iter().collect()))
        .collect();
    let views = views_of(&snapshot.systems, store, &FindingFilter::default()).await?;
    let mut plaintext: HashMap<String, BTreeSet<String>> = HashMap::new();
    for device in snapshot.assets.iter().filter(|a| a.kind == "device") {
        for service in store
            .observations(&device.asset_id, &["discovery.service"])
            .await?
        {
            if service.value["transit"] == "plaintext" {
                plaintext
                    .entry(device.asset_id.clone())
                    .or_default()
                    .insert(
                        service.value["protocol"]
                            .as_str()
                            .unwrap_or("unknown")
                            .to_string(),
                    );
            }
        }
    }
    let reports = store.management_reports().await?;
    let evaluations = store.evaluations().await?;
    let k_rules = k_rules();
    let all_judged: Vec<SystemCompliance> = judged.values().cloned().collect();
    let mut figures = compute(&snapshot, &all_judged, &views);
    figures.review = review::compute(
        &review::Inputs {
            snapshot: &snapshot,
            judged: &judged,
            views: &views,
            plaintext: &plaintext,
            evaluations: &evaluations,
            reports: &reports,
            config: rules,
            now,
            lang,
        },
        &k_rules,
    );
    for system in snapshot
        .systems
        .iter()
        .filter(|s| s.classification.as_ref().is_some_and(|c| c.k == 3))
    {
        let entries = crate::access::entries_of(store, &snapshot, &system.id).await?;
        figures.review.access.insert(system.id.clone(), entries);
    }
    figures.trend = reports.last().map(|(at, old)| trend(*at, old, &figures));
    figures.audit = Some(crate::audit::head_state(store).await?);
    figures.issued_at = output::time(Some(now));
    figures.lang = lang.code().to_string();
    if record {
        store
            .record_management_report(now, &serde_json::to_value(&figures).unwrap_or_default())
            .await?;
    }
    Ok((figures, k_rules))
}

fn k_key(k: Option<u8>) -> String {
    k.map_or_else(|| "unclassified".into(), |k| format!("K{k}"))
}

/// The figures for a snapshot, its systems' standing per rule and its current findings (pure).
pub fn compute(
    snapshot: &evaluation::Snapshot,
    judged: &[SystemCompliance],
    views: &[crate::compliance::FindingView],
) -> Figures {
    let k_of: BTreeMap<&str, Option<u8>> = snapshot
        .systems
        .iter()
        .map(|s| (s.id.as_str(), s.classification.as_ref().map(|c| c.k)))
        .collect();
    let mut systems_by_k = BTreeMap::new();
    for k in k_of.values() {
        *systems_by_k.entry(k_key(*k)).or_insert(0) += 1;
    }
    let mut assets_by_k = BTreeMap::new();
    for links in &snapshot.links {
        let highest = links
            .links
            .iter()
            .filter_map(|l| k_of.get(l.system_id.as_str()).copied().flatten())
            .max();
        let key = if links.links.is_empty() {
            "unlinked".to_string()
        } else {
            k_key(highest)
        };
        *assets_by_k.entry(key).or_insert(0) += 1;
    }
    let open: Vec<_> = views.iter().filter(|v| v.state == "open").collect();
    let compliance = k_rules()
        .iter()
        .map(|rule| rule_compliance(rule, judged.iter()))
        .collect();
    let mut by_owner: BTreeMap<String, OwnerFindings> = BTreeMap::new();
    let mut open_by_severity = BTreeMap::new();
    for v in &open {
        *open_by_severity.entry(v.severity.clone()).or_insert(0) += 1;
        let owner = v.owner.clone().unwrap_or_else(|| "(no owner)".into());
        let entry = by_owner.entry(owner.clone()).or_insert(OwnerFindings {
            owner,
            open: 0,
            critical_or_high: 0,
        });
        entry.open += 1;
        if v.severity == "critical" || v.severity == "high" {
            entry.critical_or_high += 1;
        }
    }
    let mut open_by_owner: Vec<OwnerFindings> = by_owner.into_values().collect();
    open_by_owner.sort_by(|a, b| b.open.cmp(&a.open).then_with(|| a.owner.cmp(&b.owner)));
    let count = |rule: &str| open.iter().filter(|v| v.rule == rule).count();
    Figures {
        issued_at: String::new(),
        systems: snapshot.systems.len(),
        systems_by_k,
        assets: snapshot.assets.len(),
        assets_by_k,
        compliance,
        unowned_assets: count("unowned-asset"),
        unclassified_systems: count("unclassified-system"),
        reviews_due: count("review-due"),
        open_findings: open.len(),
        open_by_severity,
        open_by_owner,
        accepted_findings: views.iter().filter(|v| v.state == "accepted").count(),
        trend: None,
        lang: String::new(),
        review: review::Review::default(),
        audit: None,
    }
}

pub(crate) fn rule_compliance<'a>(
    rule: &str,
    systems: impl Iterator<Item = &'a SystemCompliance>,
) -> RuleCompliance {
    let mut counts = RuleCompliance {
        rule: rule.to_string(),
        applicable: 0,
        compliant: 0,
        not_compliant: 0,
        unverified: 0,
        percent: None,
    };
    for state in systems.filter_map(|s| s.get(rule)) {
        counts.applicable += 1;
        match state {
            RuleState::Compliant => counts.compliant += 1,
            RuleState::NotCompliant => counts.not_compliant += 1,
            RuleState::Unverified => counts.unverified += 1,
        }
    }
    #[allow(clippy::cast_precision_loss)]
    if counts.applicable > 0 {
        counts.percent =
            Some((counts.compliant as f64 * 1000.0 / counts.applicable as f64).round() / 10.0);
    }
    counts
}

#[allow(clippy::cast_possible_wrap)]
fn trend(previous_at: i64, old: &serde_json::Value, new: &Figures) -> Trend {
    let old: Option<Figures> = serde_json::from_value(old.clone()).ok();
    let delta = |f: fn(&Figures) -> usize| old.as_ref().map_or(0, |o| f(new) as i64 - f(o) as i64);
    let compliance_points = new
        .compliance
        .iter()
        .filter_map(|c| {
            let now = c.percent?;
            let before = old
                .as_ref()
                .and_then(|o| o.compliance.iter().find(|p| p.rule == c.rule))
                .and_then(|p| p.percent)
                .unwrap_or(now);
            Some((c.rule.clone(), ((now - before) * 10.0).round() / 10.0))
        })
        .collect();
    Trend {
        previous_issued_at: output::time(Some(previous_at)),
        open_findings: delta(|f| f.open_findings),
        unowned_assets: delta(|f| f.unowned_assets),
        unclassified_systems: delta(|f| f.unclassified_systems),
        compliance_points,
    }
}
