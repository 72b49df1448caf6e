//! The read-only pages: My systems (or the aggregates for management), the system page with
//! every finding's evidence, policy clause and remediation, and the asset page with controls and
//! observation history. A system or asset outside the person's scope is answered 404 exactly
//! like one that does not exist, and the attempt is audited.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use tillsyn_text::output::csv_cell;

use super::filter::{AuditFilter, FilterError, SystemFilter};
use super::i18n::{Lang, Messages};
use super::session::{Language, Person, Role};
use super::{WebState, htmx, view};
use crate::catalog::System;
use crate::rules;
use crate::server::now_ms;
use crate::store::{AssetRecord, AuditEvent, FindingRecord, StoredEvidence};

/// The stylesheet, embedded.
const STYLE: &str = include_str!("assets/style.css");

/// The signed-in part of the header.
// Each flag is one link of the header that the template shows or not, read by name.
#[allow(clippy::struct_excessive_bools)]
pub struct Nav {
    /// The person's name.
    pub name: String,
    /// Their role's label.
    pub role: String,
    /// The session's CSRF token for the sign-out form.
    pub csrf: String,
    /// Whether to link the approvals page.
    pub coordinator: bool,
    /// Whether to link the audit log (coordinator, auditor).
    pub audit: bool,
    /// Whether to link the management review (coordinator, auditor, management).
    pub report: bool,
    /// Whether to link the security page (local accounts: passkeys).
    pub security: bool,
}

impl Nav {
    /// The header of `person`'s pages.
    pub fn of(person: &Person, t: &Messages) -> Option<Self> {
        Some(Self {
            name: person.user.name.clone(),
            role: view::role(t, person.role.as_str()),
            csrf: person.session.csrf_token.clone(),
            coordinator: person.role == Role::Coordinator,
            audit: matches!(person.role, Role::Coordinator | Role::Auditor),
            report: matches!(
                person.role,
                Role::Coordinator | Role::Auditor | Role::Management
            ),
            security: person.user.oidc_subject.is_none(),
        })
    }
}

#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage {
    t: Messages,
    nav: Option<Nav>,
    heading: String,
    text: String,
}

/// Renders a template; a render failure is logged and answered 500 without detail.
pub fn render(template: &impl Template) -> Response {
    match template.render() {
        Ok(html) => Html(html).into_response(),
        Err(error) => {
            tracing::error!(%error, "template failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// A page that says one thing, with its status.
pub fn message(
    status: StatusCode,
    t: Messages,
    nav: Option<Nav>,
    heading: &str,
    text: &str,
) -> Response {
    message_text(status, t, nav, heading, t.get(text).to_string())
}

/// A page that says one composed `text` (already in the reader's language), with its status.
pub fn message_text(
    status: StatusCode,
    t: Messages,
    nav: Option<Nav>,
    heading: &str,
    text: String,
) -> Response {
    let page = MessagePage {
        t,
        nav,
        heading: t.get(heading).to_string(),
        text,
    };
    (status, render(&page)).into_response()
}

/// 400 for a filter parameter that cannot be used, naming it.
pub fn filter_refused(person: &Person, t: Messages, error: &FilterError) -> Response {
    let text = t.with_args("filter.bad", &[&error.param, t.get(error.reason)]);
    message_text(
        StatusCode::BAD_REQUEST,
        t,
        Nav::of(person, &t),
        "error.title",
        text,
    )
}

/// An error page before any session is known (from the guard).
pub fn status_page(status: StatusCode, lang: Lang, text_key: &str) -> Response {
    message(status, lang.messages(), None, "error.title", text_key)
}

/// 404 for everything unknown.
pub async fn not_found(Language(lang): Language) -> Response {
    status_page(StatusCode::NOT_FOUND, lang, "error.not_found")
}

/// The passkey ceremonies' browser side (`navigator.credentials`, base64url, JSON posts).
const WEBAUTHN_JS: &str = include_str!("assets/webauthn.js");

/// `/static/webauthn.js`.
pub async fn webauthn_script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        WEBAUTHN_JS,
    )
        .into_response()
}

/// `/static/style.css`.
pub async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        STYLE,
    )
        .into_response()
}

/// Answers 404 for something outside the person's scope (or absent) and audits the attempt.
pub async fn denied(state: &WebState, person: &Person, t: Messages, path: &str) -> Response {
    let event = AuditEvent {
        actor: person.actor(),
        action: "web.denied".into(),
        subject: path.to_string(),
        detail: serde_json::json!({ "role": person.role.as_str() }),
    };
    if let Err(error) = state.store.record_audit(event, now_ms()).await {
        tracing::error!(%error, "auditing a refused access failed");
    }
    message(
        StatusCode::NOT_FOUND,
        t,
        Nav::of(person, &t),
        "error.title",
        "error.not_found",
    )
}

/// A store failure: logged, answered 500 without detail.
pub fn failed(error: &dyn std::fmt::Display) -> Response {
    tracing::error!(%error, "web request failed");
    StatusCode::INTERNAL_SERVER_ERROR.into_response()
}

/// One asset row of a system.
pub struct AssetRow {
    /// Asset id (for its page).
    pub id: String,
    /// Host name or device name/address.
    pub name: String,
    /// `host` or `device`.
    pub kind: String,
    /// Control states as stored.
    pub mfa: String,
    /// Transit encryption state.
    pub transit: String,
    /// At-rest encryption state.
    pub rest: String,
}

impl AssetRow {
    fn of(asset: &AssetRecord) -> Self {
        let state = |name: &str| {
            asset
                .controls
                .iter()
                .find(|c| c.name == name)
                .map_or_else(|| "unknown".to_string(), |c| c.state.clone())
        };
        Self {
            id: asset.asset_id.clone(),
            name: asset_name(asset),
            kind: asset.kind.clone(),
            mfa: state("mfa"),
            transit: state("transit_encryption"),
            rest: state("rest_encryption"),
        }
    }
}

fn asset_name(asset: &AssetRecord) -> String {
    match (asset.hostname.is_empty(), asset.address.is_empty()) {
        (false, true) => asset.hostname.clone(),
        (false, false) => format!("{} ({})", asset.hostname, asset.address),
        _ => asset.address.clone(),
    }
}

/// A system as summarised on My systems and at the top of its page.
pub struct SystemRow {
    /// Register id.
    pub id: String,
    /// Name.
    pub name: String,
    /// `K2/R1/T2` or the "unclassified" label.
    pub krt: String,
    /// Date and who classified.
    pub classified: String,
    /// When the yearly review is due.
    pub review_due: String,
    /// Whether that date has passed.
    pub review_overdue: bool,
    /// Open findings: critical, high, medium, low.
    pub counts: [usize; 4],
    /// Its assets.
    pub assets: Vec<AssetRow>,
}

fn system_row(
    state: &WebState,
    t: &Messages,
    system: &System,
    findings: &[&FindingRecord],
    assets: &[&AssetRecord],
) -> SystemRow {
    let c = system.classification.as_ref();
    let today = view::today(now_ms(), state.settings.timezone);
    let due = c.map(|c| c.classified_at + time::Duration::days(state.rules.review_after_days));
    let mut counts = [0usize; 4];
    for f in findings.iter().filter(|f| f.state == "open") {
        let slot = match f.severity.as_str() {
            "critical" => 0,
            "high" => 1,
            "medium" => 2,
            _ => 3,
        };
        counts[slot] += 1;
    }
    SystemRow {
        id: system.id.clone(),
        name: system.name.clone(),
        krt: c.map_or_else(
            || t.get("system.unclassified").to_string(),
            |c| format!("K{}/R{}/T{}", c.k, c.r, c.t),
        ),
        classified: c.map_or_else(
            || "-".into(),
            |c| format!("{} ({})", c.classified_at, c.classified_by),
        ),
        review_due: due.map_or_else(|| "-".into(), |d| d.to_string()),
        review_overdue: due.is_some_and(|d| d <= today),
        counts,
        assets: assets.iter().map(|a| AssetRow::of(a)).collect(),
    }
}

/// Aggregates for management.
pub struct Totals {
    /// Systems in the register.
    pub systems: usize,
    /// Open critical findings.
    pub critical: usize,
    /// Open high findings.
    pub high: usize,
    /// Open medium findings.
    pub medium: usize,
    /// Open low findings.
    pub low: usize,
}

/// The values of My systems' filter form.
struct SystemForm {
    k: Vec<view::Choice>,
    r: Vec<view::Choice>,
    t: Vec<view::Choice>,
    severity: Vec<view::Choice>,
    overdue: Vec<view::Choice>,
    may_filter_owner: bool,
    owner: String,
    q: String,
}

impl SystemForm {
    fn of(filter: &SystemFilter, t: &Messages, may_filter_owner: bool) -> Self {
        let levels = |letter: &str, current: Option<u8>| {
            let current = current.map(|n| n.to_string());
            view::choices(
                current.as_deref(),
                (0..=3).map(|n| (n.to_string(), format!("{letter}{n}"))),
            )
        };
        let overdue = filter.overdue.map(|o| if o { "yes" } else { "no" });
        Self {
            k: levels("K", filter.k),
            r: levels("R", filter.r),
            t: levels("T", filter.t),
            severity: view::severity_choices(t, filter.severity),
            overdue: view::choices(
                overdue,
                [
                    ("yes".to_string(), t.get("filter.yes").to_string()),
                    ("no".to_string(), t.get("filter.no").to_string()),
                ],
            ),
            may_filter_owner,
            owner: filter.owner.clone().unwrap_or_default(),
            q: filter.q.clone().unwrap_or_default(),
        }
    }
}

/// The part of My systems a filter changes (what htmx swaps).
#[derive(Template)]
#[template(path = "home_results.html")]
struct HomeResults {
    t: Messages,
    systems: Vec<SystemRow>,
    /// The canonical query string of the filter (`?k=3`), carried by the CSV link.
    query: String,
    filtered: bool,
    count: String,
    management: bool,
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage<'a> {
    t: Messages,
    nav: Option<Nav>,
    totals: Option<Totals>,
    form: SystemForm,
    results: &'a HomeResults,
}

/// My systems' filter of this request, or the refusal: malformed (400), or an owner filter
/// from someone whose role does not see other owners' systems (403; the store would return
/// nothing outside their scope anyway, but saying so beats an empty list).
fn system_filter(
    person: &Person,
    t: Messages,
    uri: &axum::http::Uri,
) -> Result<SystemFilter, Box<Response>> {
    let filter =
        SystemFilter::parse(uri.query()).map_err(|e| Box::new(filter_refused(person, t, &e)))?;
    if filter.owner.is_some() && !matches!(person.role, Role::Coordinator | Role::Auditor) {
        let error = FilterError {
            param: "owner".into(),
            reason: "filter.reason.owner_role",
        };
        let text = t.with_args("filter.bad", &[&error.param, t.get(error.reason)]);
        return Err(Box::new(message_text(
            StatusCode::FORBIDDEN,
            t,
            Nav::of(person, &t),
            "error.title",
            text,
        )));
    }
    Ok(filter)
}

/// The rows of My systems for `scope` that `filter` keeps, in the store's order.
async fn system_rows(
    state: &WebState,
    scope: &crate::store::Scope,
    filter: &SystemFilter,
    t: &Messages,
) -> Result<Vec<SystemRow>, crate::store::StoreError> {
    let today = view::today(now_ms(), state.settings.timezone);
    let query = filter.store_query(today, state.rules.review_after_days);
    let systems = state.store.filtered_systems(scope, &query).await?;
    let findings = state
        .store
        .scoped_findings(scope, None, None, None, false)
        .await?;
    let assets = state.store.scoped_assets(scope, None, None).await?;
    let mut findings_of: HashMap<&str, Vec<&FindingRecord>> = HashMap::new();
    for f in &findings {
        if let Some(id) = &f.system_id {
            findings_of.entry(id.as_str()).or_default().push(f);
        }
    }
    let mut assets_of: HashMap<&str, Vec<&AssetRecord>> = HashMap::new();
    for (system, asset) in &assets {
        assets_of.entry(system.as_str()).or_default().push(asset);
    }
    Ok(systems
        .iter()
        .map(|s| {
            system_row(
                state,
                t,
                s,
                findings_of
                    .get(s.id.as_str())
                    .map_or(&[][..], Vec::as_slice),
                assets_of.get(s.id.as_str()).map_or(&[][..], Vec::as_slice),
            )
        })
        .collect())
}

/// `/systems.csv`: exactly the rows My systems shows this person with the same query string
/// (same filter parser, same scoped query).
pub async fn systems_csv(
    State(state): State<WebState>,
    Language(lang): Language,
    OriginalUri(uri): OriginalUri,
    person: Person,
) -> Response {
    let t = lang.messages();
    let filter = match system_filter(&person, t, &uri) {
        Ok(filter) => filter,
        Err(refused) => return *refused,
    };
    let rows = match system_rows(&state, &person.scope(), &filter, &t).await {
        Ok(rows) => rows,
        Err(e) => return failed(&e),
    };
    let header = [
        "system_id",
        "name",
        "krt",
        "classified",
        "review_due",
        "assets",
        "critical",
        "high",
        "medium",
        "low",
    ];
    let records = rows.iter().map(|r| {
        vec![
            r.id.clone(),
            r.name.clone(),
            r.krt.clone(),
            r.classified.clone(),
            r.review_due.clone(),
            r.assets.len().to_string(),
            r.counts[0].to_string(),
            r.counts[1].to_string(),
            r.counts[2].to_string(),
            r.counts[3].to_string(),
        ]
    });
    csv_response("systems.csv", &header, records)
}

/// `/`: My systems, filtered by the query string; only the results for htmx.
pub async fn home(
    State(state): State<WebState>,
    Language(lang): Language,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    person: Person,
) -> Response {
    let t = lang.messages();
    let filter = match system_filter(&person, t, &uri) {
        Ok(filter) => filter,
        Err(refused) => return *refused,
    };
    let rows = match system_rows(&state, &person.scope(), &filter, &t).await {
        Ok(rows) => rows,
        Err(e) => return failed(&e),
    };
    let totals = if person.role == Role::Management {
        let all = match state
            .store
            .scoped_findings(&crate::store::Scope::All, None, None, None, false)
            .await
        {
            Ok(all) => all,
            Err(e) => return failed(&e),
        };
        let count = |s: &str| {
            all.iter()
                .filter(|f| f.state == "open" && f.severity == s)
                .count()
        };
        let systems = match state
            .store
            .scoped_systems(&crate::store::Scope::All, None)
            .await
        {
            Ok(s) => s.len(),
            Err(e) => return failed(&e),
        };
        Some(Totals {
            systems,
            critical: count("critical"),
            high: count("high"),
            medium: count("medium"),
            low: count("low"),
        })
    } else {
        None
    };
    let results = HomeResults {
        t,
        count: rows.len().to_string(),
        systems: rows,
        query: filter.query_string(),
        filtered: filter.is_set(),
        management: person.role == Role::Management,
    };
    let page = HomePage {
        nav: Nav::of(&person, &t),
        t,
        totals,
        form: SystemForm::of(
            &filter,
            &t,
            matches!(person.role, Role::Coordinator | Role::Auditor),
        ),
        results: &results,
    };
    htmx::page_or_fragment(&headers, &page, &results)
}

/// A finding on the system page.
pub struct FindingRow {
    /// Finding id.
    pub id: String,
    /// Rule id.
    pub rule: String,
    /// Severity name (CSS class).
    pub severity_name: String,
    /// Severity label.
    pub severity: String,
    /// State name.
    pub state_name: String,
    /// State label.
    pub state: String,
    /// Host name or address.
    pub asset: String,
    /// The rule's sentence.
    pub message: String,
    /// Evidence lines: `source:line probe detail`.
    pub evidence: Vec<String>,
    /// The policy clause.
    pub policy: String,
    /// What to do.
    pub remediation: String,
    /// Who accepted, why, until when.
    pub accepted: Option<String>,
    /// A request waiting for a coordinator.
    pub pending: Option<String>,
}

/// One evidence item as a line of text.
pub fn evidence_line(e: &StoredEvidence) -> String {
    let place = if e.line > 0 {
        format!("{}:{}", e.source, e.line)
    } else {
        e.source.clone()
    };
    format!("{place} [{}] {}", e.probe, e.detail)
        .trim()
        .to_string()
}

#[derive(Template)]
#[template(path = "system.html")]
struct SystemPage {
    t: Messages,
    nav: Option<Nav>,
    notice: Option<String>,
    s: SystemRow,
    description: String,
    system_owner: String,
    information_owner: String,
    administrator: String,
    rationale: String,
    findings: Vec<FindingRow>,
    attestations: Vec<String>,
    csrf: String,
    may_request: bool,
    may_attest: bool,
    may_review: bool,
    max_until: String,
    /// Each K2/K3 rule that applies, with its state in the three words of the report.
    standing: Vec<(String, String, &'static str)>,
    k: u8,
    r: u8,
    t_level: u8,
}

fn person_text(p: Option<&crate::catalog::Person>) -> String {
    p.map_or_else(
        || "-".into(),
        |p| match &p.email {
            Some(e) => format!("{} <{e}>", p.name),
            None => p.name.clone(),
        },
    )
}

/// `/systems/{id}`.
pub async fn system(
    State(state): State<WebState>,
    Language(lang): Language,
    OriginalUri(uri): OriginalUri,
    person: Person,
    Path(id): Path<String>,
) -> Response {
    system_page(&state, lang, &person, &id, uri.path(), None).await
}

/// Renders the system page, optionally with a notice about what was just done.
pub async fn system_page(
    state: &WebState,
    lang: Lang,
    person: &Person,
    id: &str,
    path: &str,
    notice: Option<String>,
) -> Response {
    let t = lang.messages();
    let scope = person.scope();
    let system = match state.store.scoped_systems(&scope, Some(id)).await {
        Ok(mut found) if found.len() == 1 => found.remove(0),
        Ok(_) => return denied(state, person, t, path).await,
        Err(e) => return failed(&e),
    };
    let loaded = async {
        let findings = state
            .store
            .scoped_findings(&scope, Some(id), None, None, false)
            .await?;
        let assets = state.store.scoped_assets(&scope, Some(id), None).await?;
        let pending = state
            .store
            .acceptance_requests(&scope, Some("pending"))
            .await?;
        Ok::<_, crate::store::StoreError>((findings, assets, pending))
    };
    let (findings, assets, pending) = match loaded.await {
        Ok(loaded) => loaded,
        Err(e) => return failed(&e),
    };
    let zone = state.settings.timezone;
    let refs: Vec<&FindingRecord> = findings.iter().collect();
    let asset_refs: Vec<&AssetRecord> = assets.iter().map(|(_, a)| a).collect();
    let row = system_row(state, &t, &system, &refs, &asset_refs);
    let mut rows: Vec<FindingRow> = findings
        .iter()
        .map(|f| finding_row(&t, f, &pending, zone))
        .collect();
    rows.sort_by_key(|f| std::cmp::Reverse(rules::Severity::parse(&f.severity_name)));
    let standing = standing(&t, &system, &asset_refs, &state.rules);
    let c = system.classification.as_ref();
    let today = view::today(now_ms(), zone);
    let max_until = add_months(today, state.settings.acceptance_max_months);
    render(&SystemPage {
        nav: Nav::of(person, &t),
        notice,
        description: system.description.clone(),
        system_owner: person_text(system.system_owner.as_ref()),
        information_owner: person_text(system.information_owner.as_ref()),
        administrator: person_text(system.system_administrator.as_ref()),
        rationale: c.map_or_else(String::new, |c| c.rationale.clone()),
        findings: rows,
        attestations: system
            .attestations
            .iter()
            .map(|a| {
                format!(
                    "{}: {} – {} ({} … {})",
                    view::control(&t, &a.control),
                    a.statement,
                    a.attested_by,
                    a.attested_at,
                    a.expires_at
                )
            })
            .collect(),
        csrf: person.session.csrf_token.clone(),
        may_request: person.role == Role::Owner,
        may_attest: matches!(person.role, Role::Owner | Role::Administrator),
        may_review: person.role == Role::Owner,
        max_until: max_until.to_string(),
        standing,
        k: c.map_or(0, |c| c.k),
        r: c.map_or(0, |c| c.r),
        t_level: c.map_or(0, |c| c.t),
        s: row,
        t,
    })
}

/// The system's standing with each K2/K3 rule, judged on its linked assets as the report and
/// `systems` judge it: (rule name, state word, CSS class).
fn standing(
    t: &Messages,
    system: &crate::catalog::System,
    assets: &[&AssetRecord],
    config: &crate::rules::RuleConfig,
) -> Vec<(String, String, &'static str)> {
    let members: Vec<rules::EvalAsset> = assets
        .iter()
        .map(|a| crate::evaluation::eval_asset(a))
        .collect();
    let members: Vec<&rules::EvalAsset> = members.iter().collect();
    let ctx = crate::evaluation::context(config, now_ms());
    rules::RULES
        .iter()
        .filter_map(|rule| {
            let state = rules::judge(rule, system, &members, &ctx)?;
            let (key, class) = match state {
                rules::RuleState::Compliant => ("state.compliant", "ok"),
                rules::RuleState::NotCompliant => ("state.not_compliant", "bad"),
                rules::RuleState::Unverified => ("state.unverified", "unv"),
            };
            let name_key = format!("rule.{}", rule.id);
            Some((
                format!("{} ({})", t.get(&name_key), rule.id),
                t.get(key).to_string(),
                class,
            ))
        })
        .collect()
}

/// A finding as the system page shows it, with its acceptance or pending request.
fn finding_row(
    t: &Messages,
    f: &FindingRecord,
    pending: &[crate::store::AcceptanceRequest],
    zone: chrono_tz::Tz,
) -> FindingRow {
    let rule = rules::rule(&f.rule);
    FindingRow {
        id: f.finding_id.clone(),
        rule: f.rule.clone(),
        severity_name: f.severity.clone(),
        severity: view::severity(t, &f.severity),
        state_name: f.state.clone(),
        state: view::finding_state(t, &f.state),
        asset: f.asset.clone(),
        message: f.message_in(t),
        evidence: f.evidence.iter().map(evidence_line).collect(),
        policy: rule.map(|r| r.policy_in(t).to_string()).unwrap_or_default(),
        remediation: rule
            .map(|r| r.remediation_in(t).to_string())
            .unwrap_or_default(),
        accepted: f.accepted_by.as_ref().map(|by| {
            format!(
                "{by}: {} ({} {})",
                f.accept_reason.as_deref().unwrap_or(""),
                t.get("accept.until_short"),
                f.accepted_until
                    .map_or_else(|| "-".into(), |u| view::date(u, zone)),
            )
        }),
        pending: pending
            .iter()
            .find(|r| r.finding_id == f.finding_id)
            .map(|r| {
                format!(
                    "{} ({} {})",
                    r.requested_by,
                    t.get("accept.until_short"),
                    view::date(r.until, zone)
                )
            }),
    }
}

/// `date` plus `months` calendar months (clamped to the month's last day).
pub fn add_months(date: time::Date, months: u32) -> time::Date {
    let total = i64::from(date.month() as u8) - 1 + i64::from(months);
    let year = date.year() + i32::try_from(total / 12).unwrap_or(0);
    let month = time::Month::try_from(u8::try_from(total % 12 + 1).unwrap_or(1))
        .unwrap_or(time::Month::January);
    let last = time::util::days_in_month(month, year);
    time::Date::from_calendar_date(year, month, date.day().min(last)).unwrap_or(date)
}

/// A control on the asset page.
pub struct ControlRow {
    /// Label.
    pub name: String,
    /// State as stored.
    pub state: String,
    /// Why.
    pub reason: String,
    /// Evidence lines.
    pub evidence: Vec<String>,
}

#[derive(Template)]
#[template(path = "asset.html")]
struct AssetPage {
    t: Messages,
    nav: Option<Nav>,
    name: String,
    kind: String,
    systems: Vec<(String, String)>,
    first_seen: String,
    last_seen: String,
    controls: Vec<ControlRow>,
    /// When, category/name, change, before, after.
    history: Vec<(String, String, String, String, String)>,
}

/// `/assets/{id}`.
pub async fn asset(
    State(state): State<WebState>,
    Language(lang): Language,
    OriginalUri(uri): OriginalUri,
    person: Person,
    Path(id): Path<String>,
) -> Response {
    let t = lang.messages();
    let scope = person.scope();
    let linked = match state.store.scoped_assets(&scope, None, Some(&id)).await {
        Ok(linked) if !linked.is_empty() => linked,
        Ok(_) => return denied(&state, &person, t, uri.path()).await,
        Err(e) => return failed(&e),
    };
    let asset = linked[0].1.clone();
    let systems = match state.store.scoped_systems(&scope, None).await {
        Ok(s) => s,
        Err(e) => return failed(&e),
    };
    let names: HashMap<&str, &str> = systems
        .iter()
        .map(|s| (s.id.as_str(), s.name.as_str()))
        .collect();
    let history = match state
        .store
        .observation_changes(Some(&asset.asset_id), 0)
        .await
    {
        Ok(h) => h,
        Err(e) => return failed(&e),
    };
    let zone = state.settings.timezone;
    let clip = |v: Option<&String>| {
        let text = v.map_or("", String::as_str);
        text.chars().take(200).collect::<String>()
    };
    render(&AssetPage {
        nav: Nav::of(&person, &t),
        name: asset_name(&asset),
        kind: asset.kind.clone(),
        systems: linked
            .iter()
            .map(|(id, _)| {
                (
                    id.clone(),
                    names
                        .get(id.as_str())
                        .map_or_else(|| id.clone(), |n| (*n).to_string()),
                )
            })
            .collect(),
        first_seen: view::time(asset.first_seen_at, zone),
        last_seen: view::time(asset.last_seen_at, zone),
        controls: asset
            .controls
            .iter()
            .map(|c| ControlRow {
                name: view::control(&t, &c.name),
                state: c.state.clone(),
                reason: c.reason.clone(),
                evidence: c.evidence.iter().map(evidence_line).collect(),
            })
            .collect(),
        history: history
            .iter()
            .rev()
            .take(200)
            .map(|h| {
                (
                    view::time(h.at, zone),
                    format!("{}/{}", h.category, h.name),
                    h.change.clone(),
                    clip(h.old_value.as_ref()),
                    clip(h.new_value.as_ref()),
                )
            })
            .collect(),
        t,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_never_start_a_formula_and_show_controls_escaped() {
        assert_eq!(csv_cell("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(csv_cell("-1+2"), "'-1+2");
        assert_eq!(csv_cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv_cell("journal-db-01"), "journal-db-01");
        assert_eq!(csv_cell("a\u{202e}b\tc"), "a\\u{202e}b\\tc");
    }

    #[test]
    fn months_are_added_on_the_calendar() {
        let d = |s| crate::catalog::parse_date(s).unwrap();
        assert_eq!(add_months(d("2026-01-31"), 1), d("2026-02-28"));
        assert_eq!(add_months(d("2026-03-15"), 12), d("2027-03-15"));
        assert_eq!(add_months(d("2026-11-30"), 3), d("2027-02-28"));
    }
}

/// Most audit entries shown on one page (newest first).
const AUDIT_SHOWN: usize = 500;

/// The part of the audit page a filter changes (what htmx swaps).
#[derive(Template)]
#[template(path = "audit_results.html")]
struct AuditResults {
    t: Messages,
    /// The canonical query string of the filter, carried by the CSV link.
    query: String,
    filtered: bool,
    matched: String,
    shown: String,
    /// seq, when, actor, action, subject, detail JSON.
    entries: Vec<(i64, String, String, String, String, String)>,
}

/// The values of the audit filter form.
struct AuditForm {
    actor: String,
    action: String,
    from: String,
    to: String,
    target: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage<'a> {
    t: Messages,
    nav: Option<Nav>,
    /// Position of the first entry whose hash does not chain, if any.
    broken: Option<String>,
    total: String,
    form: AuditForm,
    results: &'a AuditResults,
}

/// The audit entries the query string's filter keeps, oldest first, for a coordinator or an
/// auditor; anyone else gets 403, a malformed filter 400.
async fn audit_log_of(
    state: &WebState,
    person: &Person,
    t: &Messages,
    uri: &axum::http::Uri,
) -> Result<(AuditFilter, Vec<crate::store::AuditEntry>), Response> {
    if !matches!(person.role, Role::Coordinator | Role::Auditor) {
        return Err(message(
            StatusCode::FORBIDDEN,
            *t,
            Nav::of(person, t),
            "error.title",
            "error.forbidden",
        ));
    }
    let filter = AuditFilter::parse(uri.query()).map_err(|e| filter_refused(person, *t, &e))?;
    let query = filter.store_query(state.settings.timezone);
    let log = state
        .store
        .filtered_audit(&query)
        .await
        .map_err(|e| failed(&e))?;
    Ok((filter, log))
}

/// seq, when (in the configured zone), actor, action, subject, detail JSON.
fn audit_row(e: &crate::store::AuditEntry, zone: chrono_tz::Tz) -> [String; 6] {
    [
        e.seq.to_string(),
        view::time(e.at, zone),
        e.actor.clone(),
        e.action.clone(),
        e.subject.clone(),
        e.detail.to_string(),
    ]
}

/// `/audit` (coordinators and auditors): the hash-chained log, the whole chain verified on
/// every view (a filter narrows what is listed, never what is checked); the newest
/// [`AUDIT_SHOWN`] matching entries, only those for htmx.
pub async fn audit(
    State(state): State<WebState>,
    Language(lang): Language,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    person: Person,
) -> Response {
    let t = lang.messages();
    let (filter, log) = match audit_log_of(&state, &person, &t, &uri).await {
        Ok(found) => found,
        Err(refused) => return refused,
    };
    let zone = state.settings.timezone;
    let entries: Vec<_> = log
        .iter()
        .rev()
        .take(AUDIT_SHOWN)
        .map(|e| {
            let [_, at, actor, action, subject, detail] = audit_row(e, zone);
            (e.seq, at, actor, action, subject, detail)
        })
        .collect();
    let results = AuditResults {
        t,
        query: filter.query_string(),
        filtered: filter.is_set(),
        matched: log.len().to_string(),
        shown: entries.len().to_string(),
        entries,
    };
    if htmx::wants_fragment(&headers) {
        return htmx::page_or_fragment(&headers, &results, &results);
    }
    // The chain is checked over the whole log; without a filter that is the log just read.
    let read;
    let whole = if filter.is_set() {
        read = match state.store.audit_log().await {
            Ok(whole) => whole,
            Err(e) => return failed(&e),
        };
        &read
    } else {
        &log
    };
    let broken = crate::store::verify_audit_chain(whole)
        .err()
        .map(|seq| seq.to_string());
    let day = |d: Option<time::Date>| d.map(|d| d.to_string()).unwrap_or_default();
    let page = AuditPage {
        nav: Nav::of(&person, &t),
        broken,
        total: whole.len().to_string(),
        form: AuditForm {
            actor: filter.actor.clone().unwrap_or_default(),
            action: filter.action.clone().unwrap_or_default(),
            from: day(filter.from),
            to: day(filter.to),
            target: filter.target.clone().unwrap_or_default(),
        },
        results: &results,
        t,
    };
    htmx::page_or_fragment(&headers, &page, &results)
}

/// `/audit.csv` (coordinator, auditor): every entry the same query string's filter keeps
/// (without one, the whole log), oldest first; the page lists the newest of them only.
pub async fn audit_csv(
    State(state): State<WebState>,
    Language(lang): Language,
    OriginalUri(uri): OriginalUri,
    person: Person,
) -> Response {
    let t = lang.messages();
    let (_, log) = match audit_log_of(&state, &person, &t, &uri).await {
        Ok(found) => found,
        Err(refused) => return refused,
    };
    let zone = state.settings.timezone;
    csv_response(
        "audit.csv",
        &["seq", "time", "actor", "action", "subject", "detail"],
        log.iter().map(|e| audit_row(e, zone).to_vec()),
    )
}

/// A CSV download: `header`, then `records`, every cell through [`tillsyn_text::output::csv_cell`]
/// (terminal escaping of controls and invisible characters, then an apostrophe before a
/// leading `=`, `+`, `-`, `@`, tab or CR: text from agents and devices is attacker-controlled).
pub fn csv_response(
    filename: &str,
    header: &[&str],
    records: impl IntoIterator<Item = Vec<String>>,
) -> Response {
    let mut writer = csv::Writer::from_writer(Vec::new());
    let mut result = writer.write_record(header);
    for record in records {
        if result.is_err() {
            break;
        }
        result = writer.write_record(record.iter().map(|c| csv_cell(c).into_owned()));
    }
    let bytes = match result
        .map_err(|e| e.to_string())
        .and_then(|()| writer.into_inner().map_err(|e| e.to_string()))
    {
        Ok(bytes) => bytes,
        Err(e) => return failed(&e),
    };
    let safe_name = filename.replace(
        |c: char| !c.is_ascii_alphanumeric() && c != '-' && c != '_' && c != '.',
        "_",
    );
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{safe_name}\""),
            ),
        ],
        bytes,
    )
        .into_response()
}

/// `/systems/{id}/findings.csv`: exactly the findings the system page lists (same scope, same
/// filter), for spreadsheets.
pub async fn findings_csv(
    State(state): State<WebState>,
    Language(lang): Language,
    OriginalUri(uri): OriginalUri,
    person: Person,
    Path(id): Path<String>,
) -> Response {
    let t = lang.messages();
    let scope = person.scope();
    match state.store.scoped_systems(&scope, Some(&id)).await {
        Ok(found) if found.len() == 1 => {}
        Ok(_) => return denied(&state, &person, t, uri.path()).await,
        Err(e) => return failed(&e),
    }
    let findings = match state
        .store
        .scoped_findings(&scope, Some(&id), None, None, false)
        .await
    {
        Ok(f) => f,
        Err(e) => return failed(&e),
    };
    let zone = state.settings.timezone;
    let header = [
        "id",
        "rule",
        "severity",
        "state",
        "system_id",
        "asset",
        "message",
        "evidence",
        "policy",
        "remediation",
        "first_seen",
        "last_seen",
        "accepted_by",
        "accepted_until",
    ];
    let records = findings.iter().map(|f| {
        let rule = rules::rule(&f.rule);
        let evidence: Vec<String> = f.evidence.iter().map(evidence_line).collect();
        vec![
            f.finding_id.clone(),
            f.rule.clone(),
            f.severity.clone(),
            f.state.clone(),
            id.clone(),
            f.asset.clone(),
            f.message.clone(),
            evidence.join(" | "),
            rule.map(|r| r.policy.to_string()).unwrap_or_default(),
            rule.map(|r| r.remediation.to_string()).unwrap_or_default(),
            view::time(f.first_seen_at, zone),
            view::time(f.last_seen_at, zone),
            f.accepted_by.clone().unwrap_or_default(),
            f.accepted_until
                .map(|u| view::date(u, zone))
                .unwrap_or_default(),
        ]
    });
    csv_response(&format!("findings-{id}.csv"), &header, records)
}
