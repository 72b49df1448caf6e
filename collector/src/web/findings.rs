//! `/findings`: the findings across the person's systems (what coordinators most want to
//! export), filtered by severity, rule, state and system, and `/findings.csv` with exactly the
//! same rows. Both read one scoped store query; an owner sees the findings of their systems
//! only, a coordinator or auditor every system's and those of assets linked to none.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{OriginalUri, State};
use axum::http::HeaderMap;
use axum::response::Response;

use super::filter::{FindingFilter, Status};
use super::i18n::Messages;
use super::pages::{Nav, csv_response, evidence_line, failed, filter_refused};
use super::session::{Language, Person};
use super::{WebState, htmx, view};
use crate::rules;
use crate::server::now_ms;
use crate::store::FindingRecord;

/// A finding as the list shows it.
pub struct ListedFinding {
    /// Finding id.
    pub id: String,
    /// System id; empty for an asset linked to no system.
    pub system_id: String,
    /// System name (the id when the register has none in scope).
    pub system: String,
    /// Rule id.
    pub rule: String,
    /// Severity name (CSS class).
    pub severity_name: String,
    /// Severity label.
    pub severity: String,
    /// State label.
    pub state: String,
    /// Host name or address.
    pub asset: String,
    /// The rule's sentence in the reader's language.
    pub message: String,
}

#[derive(Template)]
#[template(path = "findings_results.html")]
struct FindingsResults {
    t: Messages,
    /// The canonical query string of the filter, carried by the CSV link.
    query: String,
    count: String,
    rows: Vec<ListedFinding>,
}

/// The values of the filter form.
struct FindingForm {
    severity: Vec<view::Choice>,
    rule: Vec<view::Choice>,
    status: Vec<view::Choice>,
    system: Vec<view::Choice>,
}

#[derive(Template)]
#[template(path = "findings.html")]
struct FindingsPage<'a> {
    t: Messages,
    nav: Option<Nav>,
    form: FindingForm,
    results: &'a FindingsResults,
}

/// The filter of this request and the findings it keeps, with the names of the systems in
/// scope (for the system choice and the rows).
async fn load(
    state: &WebState,
    person: &Person,
    t: Messages,
    uri: &axum::http::Uri,
) -> Result<(FindingFilter, Vec<FindingRecord>, Vec<(String, String)>), Response> {
    let filter = FindingFilter::parse(uri.query()).map_err(|e| filter_refused(person, t, &e))?;
    let scope = person.scope();
    let today = view::today(now_ms(), state.settings.timezone);
    let findings = state
        .store
        .filtered_findings(&scope, &filter.store_query(today))
        .await
        .map_err(|e| failed(&e))?;
    let systems = state
        .store
        .scoped_systems(&scope, None)
        .await
        .map_err(|e| failed(&e))?
        .into_iter()
        .map(|s| (s.id, s.name))
        .collect();
    Ok((filter, findings, systems))
}

fn state_label(t: &Messages, filter: &FindingFilter, f: &FindingRecord) -> String {
    if filter.status == Some(Status::Attested) {
        t.get("state.attested").to_string()
    } else {
        view::finding_state(t, &f.state)
    }
}

/// `/findings`, filtered by the query string; only the results for htmx.
pub async fn list(
    State(state): State<WebState>,
    Language(lang): Language,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    person: Person,
) -> Response {
    let t = lang.messages();
    let (filter, findings, systems) = match load(&state, &person, t, &uri).await {
        Ok(loaded) => loaded,
        Err(refused) => return refused,
    };
    let names: HashMap<&str, &str> = systems
        .iter()
        .map(|(id, name)| (id.as_str(), name.as_str()))
        .collect();
    let rows: Vec<ListedFinding> = findings
        .iter()
        .map(|f| {
            let system_id = f.system_id.clone().unwrap_or_default();
            ListedFinding {
                id: f.finding_id.clone(),
                system: names
                    .get(system_id.as_str())
                    .map_or_else(|| system_id.clone(), |n| (*n).to_string()),
                system_id,
                rule: f.rule.clone(),
                severity_name: f.severity.clone(),
                severity: view::severity(&t, &f.severity),
                state: state_label(&t, &filter, f),
                asset: f.asset.clone(),
                message: f.message_in(&t),
            }
        })
        .collect();
    let results = FindingsResults {
        t,
        query: filter.query_string(),
        count: rows.len().to_string(),
        rows,
    };
    let form = FindingForm {
        severity: view::severity_choices(&t, filter.severity),
        rule: view::choices(
            filter.rule,
            rules::RULES.iter().map(|r| {
                let name = t.get(&format!("rule.{}", r.id)).to_string();
                (r.id.to_string(), format!("{name} ({})", r.id))
            }),
        ),
        status: view::choices(
            filter.status.map(Status::as_str),
            [
                ("open", "state.open"),
                ("accepted", "state.accepted"),
                ("attested", "state.attested"),
            ]
            .into_iter()
            .map(|(value, key)| (value.to_string(), t.get(key).to_string())),
        ),
        system: view::choices(filter.system.as_deref(), systems),
    };
    let page = FindingsPage {
        nav: Nav::of(&person, &t),
        t,
        form,
        results: &results,
    };
    htmx::page_or_fragment(&headers, &page, &results)
}

/// `/findings.csv`: the rows `/findings` lists for the same query string.
pub async fn csv(
    State(state): State<WebState>,
    Language(lang): Language,
    OriginalUri(uri): OriginalUri,
    person: Person,
) -> Response {
    let t = lang.messages();
    let (filter, findings, _) = match load(&state, &person, t, &uri).await {
        Ok(loaded) => loaded,
        Err(refused) => return refused,
    };
    let zone = state.settings.timezone;
    let header = [
        "id",
        "system_id",
        "rule",
        "severity",
        "state",
        "asset",
        "message",
        "evidence",
        "first_seen",
        "last_seen",
        "accepted_by",
        "accepted_until",
    ];
    let records = findings.iter().map(|f| {
        let evidence: Vec<String> = f.evidence.iter().map(evidence_line).collect();
        vec![
            f.finding_id.clone(),
            f.system_id.clone().unwrap_or_default(),
            f.rule.clone(),
            f.severity.clone(),
            if filter.status == Some(Status::Attested) {
                "attested".to_string()
            } else {
                f.state.clone()
            },
            f.asset.clone(),
            f.message.clone(),
            evidence.join(" | "),
            view::time(f.first_seen_at, zone),
            view::time(f.last_seen_at, zone),
            f.accepted_by.clone().unwrap_or_default(),
            f.accepted_until
                .map(|u| view::date(u, zone))
                .unwrap_or_default(),
        ]
    });
    csv_response("findings.csv", &header, records)
}
