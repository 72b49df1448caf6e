//! The management review as one self-contained HTML page for the board: inline CSS and SVG,
//! no scripts, a print stylesheet for A4 with a page break before each part, every word from
//! the message catalogue (Swedish by default), every stored text escaped.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::review::{AcceptanceRow, Review};
use super::{Figures, RuleCompliance};
use crate::i18n::{Lang, Messages};
use crate::output;
use crate::rules::RuleState;

/// HTML text and attribute escaping comes from the one output module.
fn escape(text: &str) -> String {
    output::html(text)
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
fn compliance_rows(compliance: &[RuleCompliance], t: &Messages) -> Vec<BarRow> {
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
                    None => t.get("report.applies_to_none").to_string(),
                    Some(percent) => t.with_args(
                        "report.bar_text",
                        &[
                            &percent.to_string(),
                            &c.compliant.to_string(),
                            &c.not_compliant.to_string(),
                            &c.unverified.to_string(),
                            &c.applicable.to_string(),
                        ],
                    ),
                },
            }
        })
        .collect()
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:900px;margin:2em auto;color:#1a202c;font-size:15px}\
h1{font-size:1.6em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #cbd5e0}\
table{border-collapse:collapse;margin:.5em 0}td,th{padding:4px 8px;border-bottom:1px solid #e2e8f0;text-align:left;vertical-align:top}\
.kpi{display:inline-block;margin:0 1.5em 1em 0}.kpi b{display:block;font-size:1.8em}svg.chart{max-width:100%;height:auto}\
.key{display:inline-block;width:.9em;height:.9em;margin:0 .3em 0 .8em;vertical-align:-.1em}\
.key.ok,.ok{color:#2f855a}.key.ok{background:#2f855a}.key.bad{background:#c53030}.bad{color:#c53030}.key.unv{background:#a0aec0}.unv{color:#4a5568}\
td.state{text-align:center;font-weight:bold;font-size:1.15em}small{color:#4a5568}\
table.systems{width:100%;font-size:.9em}table.systems th{font-size:.8em}\
@page{size:A4;margin:16mm}\
@media print{body{max-width:none;margin:0;font-size:10pt}section.part{break-before:page}h2,h3{break-after:avoid}tr{break-inside:avoid}svg.chart{width:100%}}";

/// A rule's state as a cell: a mark a printed page keeps without colour, its word as a
/// tooltip; the legend above the table says what each mark means.
fn state_cell(state: Option<RuleState>, t: &Messages) -> String {
    let (class, mark, key) = match state {
        Some(RuleState::Compliant) => ("state ok", "✓", "state.compliant"),
        Some(RuleState::NotCompliant) => ("state bad", "✗", "state.not_compliant"),
        Some(RuleState::Unverified) => ("state unv", "?", "state.unverified"),
        None => ("state", "–", "state.not_applicable"),
    };
    format!("<td class=\"{class}\" title=\"{}\">{mark}</td>", t.get(key))
}

fn marks_legend(t: &Messages) -> String {
    format!(
        "<p class=legend><b class=ok>✓</b> {} &nbsp; <b class=bad>✗</b> {} &nbsp; <b class=unv>?</b> {} &nbsp; <b>–</b> {}</p>",
        t.get("state.compliant"),
        t.get("state.not_compliant"),
        t.get("state.unverified"),
        t.get("state.not_applicable")
    )
}

fn rule_name(rule: &str, t: &Messages) -> String {
    let key = format!("rule.{rule}");
    let name = t.get(&key);
    if name == key {
        escape(rule)
    } else {
        format!("{} <small>({})</small>", escape(name), escape(rule))
    }
}

/// `2026-03-31` of an RFC 3339 time, as people write a date.
fn date_of(rfc3339: &str) -> String {
    output::people_time_of(rfc3339)
        .split(' ')
        .next()
        .unwrap_or_default()
        .to_string()
}

/// A table: header cells from the catalogue, then rows of cells that are already HTML (the
/// caller escapes whatever came from agents, devices or the register).
fn table(page: &mut String, header: &[&str], rows: impl IntoIterator<Item = Vec<String>>) {
    page.push_str("<table><tr>");
    for cell in header {
        let _ = write!(page, "<th>{cell}</th>");
    }
    page.push_str("</tr>");
    for row in rows {
        page.push_str("<tr>");
        for cell in row {
            let _ = write!(page, "<td>{cell}</td>");
        }
        page.push_str("</tr>");
    }
    page.push_str("</table>");
}

fn kpi(page: &mut String, value: impl std::fmt::Display, label: &str) {
    let _ = write!(
        page,
        "<span class=kpi><b>{value}</b>{}</span>",
        escape(label)
    );
}

#[allow(clippy::cast_precision_loss)]
fn percent(part: usize, whole: usize) -> String {
    if whole == 0 {
        "–".into()
    } else {
        format!("{} %", (part as f64 * 100.0 / whole as f64).round())
    }
}

fn year_section(page: &mut String, f: &Figures, t: &Messages) {
    let y = &f.review.year;
    let _ = write!(page, "<h2>{}</h2><div>", t.get("report.year"));
    kpi(page, y.systems, t.get("report.kpi.systems"));
    kpi(
        page,
        percent(y.classified, y.systems),
        t.get("report.kpi.classified"),
    );
    kpi(
        page,
        percent(y.owners_assigned, y.systems),
        t.get("report.kpi.owners"),
    );
    kpi(
        page,
        percent(y.reviewed_in_period, y.classified),
        t.get("report.kpi.reviewed"),
    );
    kpi(page, y.ot_devices, t.get("report.kpi.ot_devices"));
    kpi(page, y.ot_devices_linked, t.get("report.kpi.ot_linked"));
    kpi(page, f.open_findings, t.get("report.kpi.open"));
    kpi(page, f.accepted_findings, t.get("report.kpi.accepted"));
    kpi(page, f.unowned_assets, t.get("report.kpi.unowned"));
    page.push_str("</div>");
}

fn compliance_section(page: &mut String, f: &Figures, t: &Messages) {
    let _ = write!(
        page,
        "<h2>{}</h2><p class=legend><span class=\"key ok\"></span>{} <span class=\"key bad\"></span>{} <span class=\"key unv\"></span>{}</p>",
        t.get("report.compliance"),
        t.get("report.legend.compliant"),
        t.get("report.legend.not_compliant"),
        t.get("report.legend.unverified"),
    );
    page.push_str(&bars(&compliance_rows(&f.compliance, t), 1.0));
    let _ = write!(page, "<h3>{}</h3>", t.get("report.by_k"));
    let rows = f.review.compliance_by_k.iter().flat_map(|(k, rows)| {
        rows.iter().map(move |c| {
            vec![
                escape(k),
                rule_name(&c.rule, t),
                c.compliant.to_string(),
                c.not_compliant.to_string(),
                c.unverified.to_string(),
                c.applicable.to_string(),
            ]
        })
    });
    table(
        page,
        &[
            t.get("report.col.level"),
            t.get("report.col.rule"),
            t.get("state.compliant"),
            t.get("state.not_compliant"),
            t.get("state.unverified"),
            t.get("report.col.systems"),
        ],
        rows,
    );
}

fn acceptances_cell(rows: &[AcceptanceRow], t: &Messages) -> String {
    rows.iter()
        .map(|a| {
            t.with_args(
                "report.accepted_until",
                &[&escape(&a.rule), &escape(&a.asset), &date_of(&a.until)],
            )
        })
        .collect::<Vec<_>>()
        .join("<br>")
}

fn systems_section(page: &mut String, review: &Review, rules: &[&str], t: &Messages) {
    let _ = write!(
        page,
        "<section class=part><h2>{}</h2><p>{}</p>{}<table class=systems><tr><th>{}</th><th>{}</th><th>{}</th>",
        t.get("report.per_system"),
        t.get("report.per_system.intro"),
        marks_legend(t),
        t.get("report.col.system"),
        t.get("report.col.classification"),
        t.get("report.col.owner"),
    );
    for rule in rules {
        let _ = write!(page, "<th>{}</th>", escape(rule));
    }
    let _ = write!(page, "<th>{}</th></tr>", t.get("report.col.accepted"));
    for s in &review.systems {
        let _ = write!(
            page,
            "<tr><td>{}<br><small>{}</small></td><td>{}</td><td>{}</td>",
            escape(&s.name),
            escape(&s.id),
            if s.classification.is_empty() {
                t.get("report.unclassified").to_string()
            } else {
                escape(&s.classification)
            },
            if s.owner.is_empty() {
                t.get("report.no_owner").to_string()
            } else {
                escape(&s.owner)
            },
        );
        for rule in rules {
            page.push_str(&state_cell(s.rules.get(*rule).copied(), t));
        }
        let _ = write!(page, "<td>{}</td></tr>", acceptances_cell(&s.accepted, t));
    }
    page.push_str("</table></section>");
}

fn risks_section(page: &mut String, f: &Figures, t: &Messages) {
    let review = &f.review;
    let _ = write!(
        page,
        "<section class=part><h2>{}</h2>",
        t.get("report.expiring")
    );
    if review.expiring_acceptances.is_empty() {
        let _ = write!(page, "<p>{}</p>", t.get("report.expiring.none"));
    } else {
        table(
            page,
            &[
                t.get("report.col.system"),
                t.get("report.col.rule"),
                t.get("report.col.asset"),
                t.get("report.col.accepted_by"),
                t.get("report.col.until"),
            ],
            review.expiring_acceptances.iter().map(|a| {
                vec![
                    escape(&a.system),
                    rule_name(&a.rule, t),
                    escape(&a.asset),
                    escape(&a.accepted_by),
                    date_of(&a.until),
                ]
            }),
        );
    }
    let _ = write!(page, "<h2>{}</h2>", t.get("report.worst"));
    table(
        page,
        &[
            t.get("report.col.severity"),
            t.get("report.col.system"),
            t.get("report.col.rule"),
            t.get("report.col.finding"),
        ],
        review.worst_findings.iter().map(|w| {
            vec![
                escape(t.get(&format!("severity.{}", w.severity))),
                escape(&w.system),
                rule_name(&w.rule, t),
                escape(&w.message),
            ]
        }),
    );
    let _ = write!(page, "<h2>{}</h2>", t.get("report.ot"));
    if review.ot.by_kind.is_empty() {
        let _ = write!(page, "<p>{}</p>", t.get("report.ot.none"));
    } else {
        let (rows, max) = count_rows(&review.ot.by_kind);
        page.push_str(&bars(&rows, max));
        let _ = write!(page, "<h3>{}</h3>", t.get("report.ot.plaintext"));
        if review.ot.plaintext_protocols.is_empty() {
            let _ = write!(page, "<p>{}</p>", t.get("report.ot.plaintext.none"));
        } else {
            let (rows, max) = count_rows(&review.ot.plaintext_protocols);
            page.push_str(&bars(&rows, max));
        }
    }
    let _ = write!(page, "<h2>{}</h2>", t.get("report.by_owner"));
    table(
        page,
        &[
            t.get("report.col.owner"),
            t.get("report.col.open"),
            t.get("report.col.critical_or_high"),
        ],
        f.open_by_owner.iter().map(|o| {
            vec![
                if o.owner == "(no owner)" {
                    t.get("report.no_owner").to_string()
                } else {
                    escape(&o.owner)
                },
                o.open.to_string(),
                o.critical_or_high.to_string(),
            ]
        }),
    );
    page.push_str("</section>");
}

fn access_section(page: &mut String, f: &Figures, t: &Messages) {
    let _ = write!(
        page,
        "<section class=part><h2>{}</h2><p>{}</p>",
        t.get("report.access"),
        t.get("report.access.intro")
    );
    for (system, entries) in &f.review.access {
        let name = f
            .review
            .systems
            .iter()
            .find(|s| &s.id == system)
            .map_or(system.as_str(), |s| s.name.as_str());
        let _ = write!(page, "<h3>{}</h3>", escape(name));
        if entries.is_empty() {
            let _ = write!(page, "<p>{}</p>", t.get("report.access.none"));
            continue;
        }
        table(
            page,
            &[
                t.get("report.col.host"),
                t.get("report.col.account"),
                t.get("report.col.privilege"),
                t.get("report.col.via"),
                t.get("report.col.last_login"),
            ],
            entries.iter().filter(|e| e.privilege != "user").map(|e| {
                let last_login = match e.last_login.as_str() {
                    "never" => t.get("last_login.never"),
                    "unknown" => t.get("last_login.unknown"),
                    // The date is enough for a yearly review.
                    at => at.get(..10).unwrap_or(at),
                };
                vec![
                    escape(&e.host),
                    escape(&e.account),
                    escape(t.get(&format!("privilege.{}", e.privilege))),
                    escape(&e.via.join("; ")),
                    escape(last_login),
                ]
            }),
        );
        let users = entries.iter().filter(|e| e.privilege == "user").count();
        let _ = write!(
            page,
            "<p class=small>{}</p>",
            t.with_args("report.access.users", &[&users.to_string()])
        );
    }
    page.push_str("</section>");
}

fn trend_section(page: &mut String, f: &Figures, rules: &[&str], t: &Messages) {
    let _ = write!(
        page,
        "<section class=part><h2>{}</h2><table><tr><th>{}</th><th>{}</th><th>{}</th>",
        t.get("report.monthly"),
        t.get("report.col.month"),
        t.get("report.col.open"),
        t.get("report.col.accepted"),
    );
    for rule in rules {
        let _ = write!(page, "<th>{}</th>", escape(rule));
    }
    page.push_str("</tr>");
    for m in &f.review.monthly {
        let _ = write!(
            page,
            "<tr><td>{}</td><td>{}</td><td>{}</td>",
            escape(&m.month),
            m.open_findings,
            m.accepted_findings
        );
        for rule in rules {
            match m.compliance.get(*rule).copied().flatten() {
                Some(p) => {
                    let _ = write!(page, "<td>{p} %</td>");
                }
                None => page.push_str("<td>–</td>"),
            }
        }
        page.push_str("</tr>");
    }
    page.push_str("</table>");
    match &f.trend {
        None => {
            let _ = write!(page, "<p>{}</p>", t.get("report.trend.first"));
        }
        Some(trend) => {
            let _ = write!(
                page,
                "<p>{}</p>",
                t.with_args(
                    "report.trend.since",
                    &[
                        &escape(&output::people_time_of(&trend.previous_issued_at)),
                        &format!("{:+}", trend.open_findings),
                        &format!("{:+}", trend.unowned_assets),
                        &format!("{:+}", trend.unclassified_systems),
                    ],
                )
            );
        }
    }
    let _ = write!(
        page,
        "<h2>{}</h2><p>{}</p>",
        t.get("report.standards"),
        t.get("report.standards.intro"),
    );
    table(
        page,
        &[
            t.get("report.col.framework"),
            t.get("report.col.control"),
            t.get("report.col.rules"),
            t.get("report.col.meeting"),
        ],
        f.review.standards.iter().map(|s| {
            vec![
                escape(&s.framework),
                escape(&s.control),
                escape(&s.rules.join(", ")),
                t.with_args(
                    "report.meeting",
                    &[&s.meeting.to_string(), &s.applicable.to_string()],
                ),
            ]
        }),
    );
    page.push_str("</section>");
}

/// The audit log's head: what an auditor keeps to check the log later.
fn audit_head(page: &mut String, state: Option<&crate::audit::HeadState>, t: &Messages) {
    let _ = write!(page, "<h2>{}</h2>", t.get("report.audit"));
    match state {
        None => {}
        Some(crate::audit::HeadState {
            broken: Some(broken),
            ..
        }) => {
            let _ = write!(
                page,
                "<p><b>{}</b></p>",
                t.with_args("report.audit.broken", &[&escape(broken)])
            );
        }
        Some(crate::audit::HeadState { head: None, .. }) => {
            let _ = write!(page, "<p>{}</p>", t.get("report.audit.empty"));
        }
        Some(crate::audit::HeadState {
            head: Some(head), ..
        }) => {
            let _ = write!(
                page,
                "<p>{}</p>",
                t.with_args(
                    "report.audit.head",
                    &[
                        &head.seq.to_string(),
                        &format!("<code id=\"audit-head\">{}</code>", escape(&head.hash)),
                        &format!(
                            "<code>tillsyn-collector audit verify --head {}</code>",
                            escape(&head.to_string())
                        ),
                    ],
                )
            );
        }
    }
}

/// The self-contained HTML page in the figures' language.
pub fn html(f: &Figures, rules: &[&str]) -> String {
    let t = Lang::parse(&f.lang).messages();
    let mut page = format!(
        "<!doctype html><html lang=\"{}\"><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head><body>",
        t.code(),
        t.get("report.title")
    );
    let _ = write!(
        page,
        "<h1>{}</h1><p>{}</p>",
        t.get("report.title"),
        t.with_args(
            "report.issued",
            &[&escape(&output::people_time_of(&f.issued_at))]
        )
    );
    year_section(&mut page, f, &t);
    compliance_section(&mut page, f, &t);
    systems_section(&mut page, &f.review, rules, &t);
    risks_section(&mut page, f, &t);
    access_section(&mut page, f, &t);
    trend_section(&mut page, f, rules, &t);
    audit_head(&mut page, f.audit.as_ref(), &t);
    page.push_str("</body></html>\n");
    page
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compliance::SystemCompliance;
    use crate::report::rule_compliance;
    use crate::rules::RuleState;

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
            bars(&compliance_rows(&compliance, &Lang::En.messages()), 1.0),
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
        let svg = bars(&compliance_rows(&compliance, &Lang::En.messages()), 1.0);
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
