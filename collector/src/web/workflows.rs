//! What people do on the pages, each step audited with the person's identity: a risk
//! acceptance asked for by an owner and decided by a coordinator (four eyes, enforced again in
//! the store), an attestation of a control, and the yearly classification review.

use askama::Template;
use axum::Form;
use axum::extract::{OriginalUri, Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::auth::random_hex;
use super::i18n::Messages;
use super::pages::{Nav, denied, failed, message, render, system_page};
use super::session::{Language, Person, Role};
use super::{WebState, view};
use crate::catalog::{self, Attestation, Classification};
use crate::server::now_ms;
use crate::store::{AcceptanceRequest, AuditEvent, Scope, StoreError};

/// Longest free text accepted in a form field (characters).
const MAX_TEXT: usize = 2000;

fn text_ok(text: &str) -> bool {
    !text.trim().is_empty() && text.chars().count() <= MAX_TEXT
}

fn bad(t: Messages, person: &Person, key: &str) -> Response {
    message(
        StatusCode::BAD_REQUEST,
        t,
        Nav::of(person, &t),
        "error.title",
        key,
    )
}

fn forbidden(t: Messages, person: &Person) -> Response {
    message(
        StatusCode::FORBIDDEN,
        t,
        Nav::of(person, &t),
        "error.title",
        "error.forbidden",
    )
}

/// The last millisecond of `date` in `zone` (an acceptance "until 31 May" holds all that day
/// in Stockholm).
fn end_of_day_ms(date: time::Date, zone: chrono_tz::Tz) -> i64 {
    use chrono::TimeZone as _;
    let utc_guess = date.midnight().assume_utc().unix_timestamp() * 1000 + 86_399_999;
    chrono::NaiveDate::from_ymd_opt(
        date.year(),
        u32::from(u8::from(date.month())),
        u32::from(date.day()),
    )
    .and_then(|d| d.and_hms_milli_opt(23, 59, 59, 999))
    .and_then(|local| zone.from_local_datetime(&local).earliest())
    .map_or(utc_guess, |t| t.timestamp_millis())
}

/// The acceptance request form.
#[derive(Deserialize)]
pub struct RequestForm {
    reason: String,
    until: String,
}

/// `POST /findings/{id}/request-acceptance` (owners).
pub async fn request_acceptance(
    State(state): State<WebState>,
    Language(lang): Language,
    OriginalUri(uri): OriginalUri,
    person: Person,
    Path(id): Path<String>,
    Form(form): Form<RequestForm>,
) -> Response {
    let t = lang.messages();
    if person.role != Role::Owner {
        return forbidden(t, &person);
    }
    let scope = person.scope();
    let finding = match state
        .store
        .scoped_findings(&scope, None, None, Some(&id), false)
        .await
    {
        Ok(mut f) if f.len() == 1 => f.remove(0),
        Ok(_) => return denied(&state, &person, t, uri.path()).await,
        Err(e) => return failed(&e),
    };
    if !text_ok(&form.reason) {
        return bad(t, &person, "accept.bad_reason");
    }
    let now = now_ms();
    let today = view::today(now, state.settings.timezone);
    let max = super::pages::add_months(today, state.settings.acceptance_max_months);
    let Ok(until) = catalog::parse_date(&form.until) else {
        return bad(t, &person, "accept.bad_until");
    };
    if until <= today || until > max {
        return bad(t, &person, "accept.bad_until");
    }
    let request = AcceptanceRequest {
        request_id: random_hex(8),
        finding_id: finding.finding_id.clone(),
        requested_by: person.user.email.clone(),
        reason: form.reason.trim().to_string(),
        until: end_of_day_ms(until, state.settings.timezone),
        state: "pending".into(),
        created_at: now,
        decided_by: None,
        decided_at: None,
        decision_note: None,
    };
    let event = AuditEvent {
        actor: person.actor(),
        action: "acceptance.request".into(),
        subject: finding.finding_id.clone(),
        detail: serde_json::json!({ "request": request.request_id, "reason": request.reason, "until": until.to_string() }),
    };
    let system_id = finding.system_id.clone().unwrap_or_default();
    match state.store.request_acceptance(request, event, now).await {
        Ok(()) => {
            let path = format!("/systems/{system_id}");
            system_page(
                &state,
                lang,
                &person,
                &system_id,
                &path,
                Some(t.get("accept.sent").to_string()),
            )
            .await
        }
        Err(StoreError::RequestRefused(_)) => bad(t, &person, "accept.already_pending"),
        Err(e) => failed(&e),
    }
}

/// A request as listed for the coordinator.
pub struct RequestRow {
    /// Request id.
    pub id: String,
    /// Rule and asset of the finding.
    pub finding: String,
    /// The system.
    pub system_id: String,
    /// Who asked.
    pub requested_by: String,
    /// Why.
    pub reason: String,
    /// Until.
    pub until: String,
    /// The coordinator asked for it themselves (cannot decide).
    pub own: bool,
}

#[derive(Template)]
#[template(path = "approvals.html")]
struct ApprovalsPage {
    t: Messages,
    nav: Option<Nav>,
    notice: Option<String>,
    requests: Vec<RequestRow>,
    csrf: String,
}

async fn approvals_page(
    state: &WebState,
    t: Messages,
    person: &Person,
    notice: Option<String>,
) -> Response {
    let loaded = async {
        let requests = state
            .store
            .acceptance_requests(&Scope::All, Some("pending"))
            .await?;
        let findings = state
            .store
            .scoped_findings(&Scope::All, None, None, None, true)
            .await?;
        Ok::<_, StoreError>((requests, findings))
    };
    let (requests, findings) = match loaded.await {
        Ok(l) => l,
        Err(e) => return failed(&e),
    };
    let zone = state.settings.timezone;
    let rows = requests
        .iter()
        .map(|r| {
            let finding = findings.iter().find(|f| f.finding_id == r.finding_id);
            RequestRow {
                id: r.request_id.clone(),
                finding: finding.map_or_else(
                    || r.finding_id.clone(),
                    |f| format!("{} {} – {}", f.rule, f.asset, f.message_in(&t)),
                ),
                system_id: finding
                    .and_then(|f| f.system_id.clone())
                    .unwrap_or_default(),
                requested_by: r.requested_by.clone(),
                reason: r.reason.clone(),
                until: view::date(r.until, zone),
                own: r.requested_by == person.user.email,
            }
        })
        .collect();
    render(&ApprovalsPage {
        nav: Nav::of(person, &t),
        notice,
        requests: rows,
        csrf: person.session.csrf_token.clone(),
        t,
    })
}

/// `GET /approvals` (coordinators).
pub async fn approvals(
    State(state): State<WebState>,
    Language(lang): Language,
    person: Person,
) -> Response {
    let t = lang.messages();
    if person.role != Role::Coordinator {
        return forbidden(t, &person);
    }
    approvals_page(&state, t, &person, None).await
}

/// The decision form.
#[derive(Deserialize)]
pub struct DecisionForm {
    decision: String,
    #[serde(default)]
    note: String,
}

/// `POST /approvals/{id}` (coordinators; never the requester).
pub async fn decide(
    State(state): State<WebState>,
    Language(lang): Language,
    person: Person,
    Path(id): Path<String>,
    Form(form): Form<DecisionForm>,
) -> Response {
    let t = lang.messages();
    if person.role != Role::Coordinator {
        return forbidden(t, &person);
    }
    let approve = match form.decision.as_str() {
        "approve" => true,
        "reject" => false,
        _ => return bad(t, &person, "error.bad_form"),
    };
    if form.note.chars().count() > MAX_TEXT {
        return bad(t, &person, "error.bad_form");
    }
    let event = AuditEvent {
        actor: person.actor(),
        action: if approve {
            "acceptance.approve"
        } else {
            "acceptance.reject"
        }
        .into(),
        subject: id.clone(),
        detail: serde_json::json!({ "note": form.note }),
    };
    match state
        .store
        .decide_acceptance(
            &id,
            &person.user.email,
            approve,
            form.note.trim(),
            event,
            now_ms(),
        )
        .await
    {
        Ok(_) => {
            let key = if approve {
                "approvals.approved"
            } else {
                "approvals.rejected"
            };
            approvals_page(&state, t, &person, Some(t.get(key).to_string())).await
        }
        Err(StoreError::RequestRefused(_)) => bad(t, &person, "approvals.refused"),
        Err(e) => failed(&e),
    }
}

/// The classification review form.
#[derive(Deserialize)]
pub struct ReviewForm {
    k: u8,
    r: u8,
    t: u8,
    rationale: String,
}

/// `POST /systems/{id}/review` (owners): confirms or changes K/R/T with a rationale, dated
/// today; the `review-due` finding resolves at the next evaluation.
pub async fn review(
    State(state): State<WebState>,
    Language(lang): Language,
    OriginalUri(uri): OriginalUri,
    person: Person,
    Path(id): Path<String>,
    Form(form): Form<ReviewForm>,
) -> Response {
    let t = lang.messages();
    if person.role != Role::Owner {
        return forbidden(t, &person);
    }
    let scope = person.scope();
    let system = match state.store.scoped_systems(&scope, Some(&id)).await {
        Ok(mut s) if s.len() == 1 => s.remove(0),
        Ok(_) => return denied(&state, &person, t, uri.path()).await,
        Err(e) => return failed(&e),
    };
    if form.k > 3 || form.r > 3 || form.t > 3 || !text_ok(&form.rationale) {
        return bad(t, &person, "review.bad");
    }
    let now = now_ms();
    let classification = Classification {
        k: form.k,
        r: form.r,
        t: form.t,
        // The form asks K/R/T; a traceability level from the register is kept.
        s: system.classification.as_ref().and_then(|c| c.s),
        classified_at: view::today(now, state.settings.timezone),
        classified_by: format!("{} <{}>", person.user.name, person.user.email),
        rationale: form.rationale.trim().to_string(),
    };
    let before = system
        .classification
        .as_ref()
        .map(|c| format!("K{}/R{}/T{}", c.k, c.r, c.t));
    let event = AuditEvent {
        actor: person.actor(),
        action: "classification.review".into(),
        subject: id.clone(),
        detail: serde_json::json!({
            "before": before,
            "after": format!("K{}/R{}/T{}", form.k, form.r, form.t),
            "rationale": classification.rationale,
        }),
    };
    match state
        .store
        .review_classification(&id, classification, event, now)
        .await
    {
        Ok(true) => {
            system_page(
                &state,
                lang,
                &person,
                &id,
                uri.path(),
                Some(t.get("review.done").to_string()),
            )
            .await
        }
        Ok(false) => denied(&state, &person, t, uri.path()).await,
        Err(e) => failed(&e),
    }
}

/// The attestation form.
#[derive(Deserialize)]
pub struct AttestForm {
    control: String,
    statement: String,
    #[serde(default)]
    evidence: String,
    expires: String,
}

/// `POST /systems/{id}/attest` (owners and administrators).
pub async fn attest(
    State(state): State<WebState>,
    Language(lang): Language,
    OriginalUri(uri): OriginalUri,
    person: Person,
    Path(id): Path<String>,
    Form(form): Form<AttestForm>,
) -> Response {
    let t = lang.messages();
    if !matches!(person.role, Role::Owner | Role::Administrator) {
        return forbidden(t, &person);
    }
    let scope = person.scope();
    match state.store.scoped_systems(&scope, Some(&id)).await {
        Ok(s) if s.len() == 1 => {}
        Ok(_) => return denied(&state, &person, t, uri.path()).await,
        Err(e) => return failed(&e),
    }
    let now = now_ms();
    let today = view::today(now, state.settings.timezone);
    let expires = catalog::parse_date(&form.expires)
        .ok()
        .filter(|d| *d > today && *d <= super::pages::add_months(today, 36));
    let (Some(expires), true, true) = (
        expires,
        crate::catalog::CONTROLS.contains(&form.control.as_str()),
        text_ok(&form.statement) && form.evidence.chars().count() <= 500,
    ) else {
        return bad(t, &person, "attest.bad");
    };
    let statement = if form.evidence.trim().is_empty() {
        form.statement.trim().to_string()
    } else {
        format!(
            "{} ({}: {})",
            form.statement.trim(),
            t.get("attest.evidence"),
            form.evidence.trim()
        )
    };
    let attestation = Attestation {
        control: form.control.clone(),
        statement,
        attested_by: format!("{} <{}>", person.user.name, person.user.email),
        attested_at: today,
        expires_at: expires,
    };
    let event = AuditEvent {
        actor: person.actor(),
        action: "attestation.add".into(),
        subject: id.clone(),
        detail: serde_json::json!({ "control": form.control, "statement": attestation.statement, "expires": expires.to_string() }),
    };
    match state
        .store
        .add_attestation(&id, attestation, event, now)
        .await
    {
        Ok(true) => {
            system_page(
                &state,
                lang,
                &person,
                &id,
                uri.path(),
                Some(t.get("attest.done").to_string()),
            )
            .await
        }
        Ok(false) => denied(&state, &person, t, uri.path()).await,
        Err(e) => failed(&e),
    }
}
