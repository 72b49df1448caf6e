//! The yearly management-review report: systems and assets per classification, the share of
//! K2/K3 systems compliant per rule, unowned assets, unclassified systems, reviews due, open
//! findings per owner, and the trend since the previous report. JSON for machines; one
//! self-contained HTML file (inline CSS and SVG, no scripts) for managers.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::compliance::{
    ComplianceError, FindingFilter, SystemCompliance, evaluated_compliance, views_of,
};
use crate::config::CollectorDir;
use crate::evaluation;
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

/// The K2/K3 rules whose standing the report counts, in the order shown.
const K_RULES: &[&str] = &[
    "k2-auth",
    "k3-auth",
    "k23-transit",
    "k23-rest",
    "k23-logging",
    "k23-privileged",
];

/// Evaluates, computes the figures, records them for the next trend, and renders.
pub async fn report(
    dir: &CollectorDir,
    store: &dyn Store,
    format: ReportFormat,
) -> Result<String, ComplianceError> {
    let (snapshot, judged) = evaluated_compliance(dir, store).await?;
    let views = views_of(&snapshot.systems, store, &FindingFilter::default()).await?;
    let judged: Vec<SystemCompliance> = judged.into_values().collect();
    let mut figures = compute(&snapshot, &judged, &views);
    let previous = store.management_reports().await?.into_iter().last();
    figures.trend = previous.map(|(at, old)| trend(at, &old, &figures));
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
    let compliance = K_RULES
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
    }
}

fn rule_compliance<'a>(
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

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// One row of a bar chart: a label, coloured segments laid end to end, and the words under the
/// bar.
struct BarRow {
    label: String,
    segments: Vec<(f64, &'static str)>,
    text: String,
}

const COMPLIANT: &str = "#2f855a";
const NOT_COMPLIANT: &str = "#c53030";
const UNVERIFIED: &str = "#a0aec0";
const COUNT: &str = "#2b6cb0";

/// Chart text size in px.
const FONT_PX: f64 = 13.0;
/// A generous upper bound of a character's advance in em for the sans-serif fonts a browser
/// picks for `system-ui, sans-serif` (DejaVu Sans digits are 0.636 em, Segoe UI's 0.55); the
/// charts are sized from it so no label is cut at the SVG's edge. The e2e suite checks the
/// widths Chromium really renders.
const CHAR_EM: f64 = 0.7;
const BAR_PX: f64 = 400.0;
const ROW_PX: usize = 46;

/// Estimated rendered width of `text` at [`FONT_PX`], in px.
#[allow(clippy::cast_precision_loss)]
fn text_width(text: &str) -> f64 {
    text.chars().count() as f64 * CHAR_EM * FONT_PX
}

/// A horizontal bar chart in SVG, as wide as its longest label or text needs.
fn bars(rows: &[BarRow], max: f64) -> String {
    let label_px = rows
        .iter()
        .map(|r| text_width(&r.label) + 12.0)
        .fold(120.0, f64::max)
        .ceil();
    let width = rows
        .iter()
        .map(|r| label_px + text_width(&r.text))
        .fold(label_px + BAR_PX, f64::max)
        .ceil()
        + 4.0;
    let height = rows.len() * ROW_PX + 4;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" class="chart">"#
    );
    for (i, row) in rows.iter().enumerate() {
        let y = i * ROW_PX;
        let _ = write!(
            svg,
            r#"<text x="0" y="{}" font-size="{FONT_PX}">{}</text>"#,
            y + 15,
            escape(&row.label)
        );
        let mut x = label_px;
        for (value, colour) in &row.segments {
            if *value <= 0.0 || max <= 0.0 {
                continue;
            }
            let w = value / max * BAR_PX;
            let _ = write!(
                svg,
                r#"<rect x="{x:.1}" y="{}" width="{w:.1}" height="18" fill="{colour}"/>"#,
                y + 2
            );
            x += w;
        }
        if x < label_px + BAR_PX {
            let _ = write!(
                svg,
                r##"<rect x="{x:.1}" y="{}" width="{:.1}" height="18" fill="none" stroke="#e2e8f0"/>"##,
                y + 2,
                label_px + BAR_PX - x
            );
        }
        let _ = write!(
            svg,
            r#"<text x="{label_px}" y="{}" font-size="{FONT_PX}">{}</text>"#,
            y + 36,
            escape(&row.text)
        );
    }
    svg.push_str("</svg>");
    svg
}

#[allow(clippy::cast_precision_loss)]
fn count_rows(map: &BTreeMap<String, usize>) -> (Vec<BarRow>, f64) {
    let rows: Vec<_> = map
        .iter()
        .map(|(k, v)| BarRow {
            label: k.clone(),
            segments: vec![(*v as f64, COUNT)],
            text: v.to_string(),
        })
        .collect();
    let max = rows
        .iter()
        .flat_map(|r| r.segments.iter().map(|s| s.0))
        .fold(0.0, f64::max);
    (rows, max)
}

/// A rule's three states as one stacked bar over all applicable systems.
#[allow(clippy::cast_precision_loss)]
fn compliance_rows(compliance: &[RuleCompliance]) -> Vec<BarRow> {
    compliance
        .iter()
        .map(|c| {
            let share = |n: usize| {
                if c.applicable == 0 {
                    0.0
                } else {
                    n as f64 / c.applicable as f64
                }
            };
            BarRow {
                label: c.rule.clone(),
                segments: vec![
                    (share(c.compliant), COMPLIANT),
                    (share(c.not_compliant), NOT_COMPLIANT),
                    (share(c.unverified), UNVERIFIED),
                ],
                text: match c.percent {
                    None => "applies to no system".into(),
                    Some(percent) => format!(
                        "{percent}% compliant: {} compliant, {} not compliant, {} unverified of {} systems",
                        c.compliant, c.not_compliant, c.unverified, c.applicable
                    ),
                },
            }
        })
        .collect()
}

/// The self-contained HTML page.
pub fn html(f: &Figures) -> String {
    let mut page = String::from(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Tillsyn management review</title>\
<style>body{font-family:system-ui,sans-serif;max-width:900px;margin:2em auto;color:#1a202c}h1{font-size:1.6em}\
h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #cbd5e0}table{border-collapse:collapse}\
td,th{padding:4px 10px;border-bottom:1px solid #e2e8f0;text-align:left}.kpi{display:inline-block;margin:0 1.5em 1em 0}\
.kpi b{display:block;font-size:1.8em}svg.chart{max-width:100%;height:auto}\
.key{display:inline-block;width:.9em;height:.9em;margin:0 .3em 0 .8em;vertical-align:-.1em}\
.key.ok{background:#2f855a}.key.bad{background:#c53030}.key.unv{background:#a0aec0}</style></head><body>",
    );
    let _ = write!(
        page,
        "<h1>Information security: management review</h1><p>Issued {}.</p>",
        escape(&output::people_time_of(&f.issued_at))
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
    page.push_str(
        "<h2>Share of K2/K3 systems that comply</h2><p class=legend>\
<span class=\"key ok\"></span>compliant (on evidence from a host, a device or an attestation) \
<span class=\"key bad\"></span>not compliant (accepted risks included) \
<span class=\"key unv\"></span>unverified (nothing linked, not seen lately, or only unknown verdicts)</p>",
    );
    page.push_str(&bars(&compliance_rows(&f.compliance), 1.0));
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
                escape(&output::people_time_of(&t.previous_issued_at)),
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
    page.push_str("</body></html>\n");
    page
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `<text>` of an SVG chart with its x, and the chart's width.
    fn texts(svg: &str) -> (f64, Vec<(f64, String)>) {
        let width: f64 = svg
            .split("width=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap()
            .parse()
            .unwrap();
        let texts = svg
            .split("<text x=\"")
            .skip(1)
            .map(|t| {
                let x = t.split('"').next().unwrap().parse().unwrap();
                let body = t.split('>').nth(1).unwrap().split('<').next().unwrap();
                (x, body.to_string())
            })
            .collect();
        (width, texts)
    }

    #[test]
    #[allow(clippy::cast_precision_loss)]
    fn no_chart_label_is_wider_than_its_chart() {
        let rule = |name: &str, applicable, compliant, not_compliant, unverified| RuleCompliance {
            rule: name.into(),
            applicable,
            compliant,
            not_compliant,
            unverified,
            percent: (applicable > 0).then(|| 100.0 * compliant as f64 / applicable as f64),
        };
        let compliance = vec![
            rule("k2-auth", 2, 2, 0, 0),
            rule("k3-auth", 1234, 1000, 200, 34),
            rule("k23-transit", 0, 0, 0, 0),
            rule("a-rule-with-a-rather-long-name", 3, 1, 1, 1),
        ];
        let mut counts = BTreeMap::new();
        counts.insert("unclassified".to_string(), 100_000);
        counts.insert("K3".to_string(), 1);
        for svg in [
            bars(&compliance_rows(&compliance), 1.0),
            bars(&count_rows(&counts).0, 100_000.0),
        ] {
            let (width, texts) = texts(&svg);
            assert!(!texts.is_empty());
            for (x, text) in texts {
                assert!(
                    x + text_width(&text) <= width,
                    "{text:?} at {x} overflows the chart's {width} px"
                );
            }
        }
        let svg = bars(&compliance_rows(&compliance), 1.0);
        assert!(
            svg.contains("100% compliant: 2 compliant, 0 not compliant, 0 unverified of 2 systems")
        );
        assert!(svg.contains("applies to no system"));
    }

    #[test]
    fn a_rule_that_applies_to_nothing_has_no_percentage() {
        let none = rule_compliance("k3-auth", std::iter::empty());
        assert_eq!(none.percent, None);
        let mut unverified = SystemCompliance::new();
        unverified.insert("k3-auth", RuleState::Unverified);
        let one = rule_compliance("k3-auth", std::iter::once(&unverified));
        assert_eq!(
            (one.applicable, one.unverified, one.percent),
            (1, 1, Some(0.0))
        );
    }
}
