//! The yearly management-review report: systems and assets per classification, the share of
//! K2/K3 systems compliant per rule, unowned assets, unclassified systems, reviews due, open
//! findings per owner, and the trend since the previous report. JSON for machines; one
//! self-contained HTML file (inline CSS and SVG, no scripts) for managers.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::compliance::{ComplianceError, FindingFilter, evaluated, views_of};
use crate::config::CollectorDir;
use crate::evaluation;
use crate::output;
use crate::server::now_ms;
use crate::store::Store;

/// Compliance of the applicable systems with one rule.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RuleCompliance {
    /// Rule id.
    pub rule: String,
    /// Systems the rule applies to.
    pub applicable: usize,
    /// Of those, systems without an open finding of the rule.
    pub compliant: usize,
    /// `compliant / applicable` in percent (100 when nothing applies).
    pub percent: f64,
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
}

const K_RULES: &[(&str, u8)] = &[
    ("k2-auth", 2),
    ("k3-auth", 3),
    ("k23-transit", 2),
    ("k23-rest", 2),
];

/// Evaluates, computes the figures, records them for the next trend, and renders.
pub async fn report(
    dir: &CollectorDir,
    store: &dyn Store,
    format: ReportFormat,
) -> Result<String, ComplianceError> {
    let (snapshot, _) = evaluated(dir, store).await?;
    let views = views_of(&snapshot.systems, store, &FindingFilter::default()).await?;
    let mut figures = compute(&snapshot, &views);
    let previous = store.management_reports().await?.into_iter().last();
    figures.trend = previous.map(|(at, old)| trend(at, &old, &figures));
    figures.audit = Some(crate::audit::head_state(store).await?);
    let now = now_ms();
    figures.issued_at = output::time(Some(now));
    store
        .record_management_report(now, &serde_json::to_value(&figures).unwrap_or_default())
        .await?;
    Ok(match format {
        ReportFormat::Json => output::json(&figures),
        ReportFormat::Html => html(&figures),
    })
}

fn k_key(k: Option<u8>) -> String {
    k.map_or_else(|| "unclassified".into(), |k| format!("K{k}"))
}

/// The figures for a snapshot and its current findings (pure).
pub fn compute(
    snapshot: &evaluation::Snapshot,
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
    let compliance = K_RULES
        .iter()
        .map(|(rule, min_k)| {
            let applicable: Vec<&str> = k_of
                .iter()
                .filter(|(_, k)| {
                    if *rule == "k2-auth" {
                        **k == Some(2)
                    } else {
                        k.is_some_and(|k| k >= *min_k) && (*rule != "k3-auth" || **k == Some(3))
                    }
                })
                .map(|(id, _)| *id)
                .collect();
            let failing = applicable
                .iter()
                .filter(|id| {
                    open.iter()
                        .any(|v| v.rule == *rule && v.system_id.as_deref() == Some(**id))
                })
                .count();
            let compliant = applicable.len() - failing;
            #[allow(clippy::cast_precision_loss)]
            let percent = if applicable.is_empty() {
                100.0
            } else {
                (compliant as f64 * 1000.0 / applicable.len() as f64).round() / 10.0
            };
            RuleCompliance {
                rule: (*rule).to_string(),
                applicable: applicable.len(),
                compliant,
                percent,
            }
        })
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
        audit: None,
    }
}

#[allow(clippy::cast_possible_wrap)]
fn trend(previous_at: i64, old: &serde_json::Value, new: &Figures) -> Trend {
    let old: Option<Figures> = serde_json::from_value(old.clone()).ok();
    let delta = |f: fn(&Figures) -> usize| old.as_ref().map_or(0, |o| f(new) as i64 - f(o) as i64);
    let compliance_points = new
        .compliance
        .iter()
        .map(|c| {
            let before = old
                .as_ref()
                .and_then(|o| o.compliance.iter().find(|p| p.rule == c.rule))
                .map_or(c.percent, |p| p.percent);
            (c.rule.clone(), ((c.percent - before) * 10.0).round() / 10.0)
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

/// HTML escaping comes from the one output module.
fn escape(text: &str) -> String {
    output::html(text)
}

/// A horizontal bar chart in SVG.
fn bars(rows: &[(String, f64, String)], max: f64) -> String {
    let mut svg = String::new();
    let height = rows.len() * 28 + 8;
    let _ = write!(
        svg,
        r#"<svg viewBox="0 0 640 {height}" width="640" height="{height}" role="img">"#
    );
    for (i, (label, value, text)) in rows.iter().enumerate() {
        let y = i * 28 + 4;
        let width = if max > 0.0 {
            (value / max * 380.0).max(1.0)
        } else {
            1.0
        };
        let _ = write!(
            svg,
            r##"<text x="0" y="{ty}" font-size="13">{label}</text><rect x="200" y="{y}" width="{width:.1}" height="20" fill="#2b6cb0"/><text x="{tx:.1}" y="{ty}" font-size="13">{text}</text>"##,
            ty = y + 15,
            label = escape(label),
            tx = 206.0 + width,
            text = escape(text),
        );
    }
    svg.push_str("</svg>");
    svg
}

#[allow(clippy::cast_precision_loss)]
fn count_rows(map: &BTreeMap<String, usize>) -> (Vec<(String, f64, String)>, f64) {
    let rows: Vec<_> = map
        .iter()
        .map(|(k, v)| (k.clone(), *v as f64, v.to_string()))
        .collect();
    let max = rows.iter().map(|r| r.1).fold(0.0, f64::max);
    (rows, max)
}

/// The self-contained HTML page.
pub fn html(f: &Figures) -> String {
    let mut page = String::from(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Tillsyn management review</title>\
<style>body{font-family:system-ui,sans-serif;max-width:900px;margin:2em auto;color:#1a202c}h1{font-size:1.6em}\
h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #cbd5e0}table{border-collapse:collapse}\
td,th{padding:4px 10px;border-bottom:1px solid #e2e8f0;text-align:left}.kpi{display:inline-block;margin:0 1.5em 1em 0}\
.kpi b{display:block;font-size:1.8em}</style></head><body>",
    );
    let _ = write!(
        page,
        "<h1>Information security: management review</h1><p>Issued {}.</p>",
        escape(&f.issued_at)
    );
    let _ = write!(
        page,
        "<div><span class=kpi><b>{}</b>systems</span><span class=kpi><b>{}</b>assets</span><span class=kpi><b>{}</b>open findings</span>\
<span class=kpi><b>{}</b>unowned assets</span><span class=kpi><b>{}</b>unclassified systems</span><span class=kpi><b>{}</b>reviews due</span>\
<span class=kpi><b>{}</b>accepted risks</span></div>",
        f.systems,
        f.assets,
        f.open_findings,
        f.unowned_assets,
        f.unclassified_systems,
        f.reviews_due,
        f.accepted_findings
    );
    page.push_str("<h2>Share of K2/K3 systems that comply</h2>");
    let rows: Vec<_> = f
        .compliance
        .iter()
        .map(|c| {
            (
                c.rule.clone(),
                c.percent,
                format!("{}% ({} of {})", c.percent, c.compliant, c.applicable),
            )
        })
        .collect();
    page.push_str(&bars(&rows, 100.0));
    let (rows, max) = count_rows(&f.systems_by_k);
    page.push_str("<h2>Systems per confidentiality level</h2>");
    page.push_str(&bars(&rows, max));
    let (rows, max) = count_rows(&f.assets_by_k);
    page.push_str("<h2>Assets per confidentiality level</h2>");
    page.push_str(&bars(&rows, max));
    page.push_str("<h2>Open findings per owner</h2><table><tr><th>Owner</th><th>Open</th><th>Critical or high</th></tr>");
    for o in &f.open_by_owner {
        let _ = write!(
            page,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&o.owner),
            o.open,
            o.critical_or_high
        );
    }
    page.push_str("</table>");
    page.push_str("<h2>Trend since the previous report</h2>");
    match &f.trend {
        None => {
            page.push_str("<p>This is the first report; the next one will show the change.</p>");
        }
        Some(t) => {
            let _ = write!(
                page,
                "<p>Since {}: open findings {:+}, unowned assets {:+}, unclassified systems {:+}.</p><table><tr><th>Rule</th><th>Compliance change (points)</th></tr>",
                escape(&t.previous_issued_at),
                t.open_findings,
                t.unowned_assets,
                t.unclassified_systems
            );
            for (rule, points) in &t.compliance_points {
                let _ = write!(
                    page,
                    "<tr><td>{}</td><td>{points:+}</td></tr>",
                    escape(rule)
                );
            }
            page.push_str("</table>");
        }
    }
    audit_head(&mut page, f.audit.as_ref());
    page.push_str("</body></html>\n");
    page
}

/// The audit log's head: what an auditor keeps to check the log later.
fn audit_head(page: &mut String, state: Option<&crate::audit::HeadState>) {
    page.push_str("<h2>Audit log</h2>");
    match state {
        None => {}
        Some(crate::audit::HeadState {
            broken: Some(broken),
            ..
        }) => {
            let _ = write!(
                page,
                "<p><b>The audit log's hash chain is broken</b> ({}); run <code>tillsyn-collector audit verify</code>.</p>",
                escape(broken)
            );
        }
        Some(crate::audit::HeadState { head: None, .. }) => {
            page.push_str("<p>The audit log has no entries yet.</p>");
        }
        Some(crate::audit::HeadState {
            head: Some(head), ..
        }) => {
            let _ = write!(
                page,
                "<p>Chain head at issue: entry <b>{}</b>, SHA-256 <code id=\"audit-head\">{}</code>. \
Keep this report: <code>tillsyn-collector audit verify --head {}</code> shows whether the log still \
contains this entry unchanged.</p>",
                head.seq,
                escape(&head.hash),
                escape(&head.to_string())
            );
        }
    }
}
