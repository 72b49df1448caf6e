//! The coordinator's desk in the browser: importing the system register (the same
//! all-or-nothing validation and store transaction as `catalog import`, audited with the
//! person's identity) and the management review (the same figures and page as `report`).
//!
//! The register arrives as a `multipart/form-data` upload; [`super::session::guard`] has
//! already checked its CSRF field and bounded its size ([`super::session::MAX_UPLOAD_BYTES`]).

use std::path::Path;

use askama::Template;
use axum::extract::{Multipart, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::WebState;
use super::i18n::Messages;
use super::pages::{Nav, failed, message, render};
use super::session::{Language, Person, Role};
use crate::server::now_ms;
use crate::store::AuditEvent;

#[derive(Template)]
#[template(path = "register.html")]
struct RegisterPage {
    t: Messages,
    nav: Option<Nav>,
    csrf: String,
    /// What the last import did, or why it was refused (catalogue text and the validator's
    /// problems, escaped by the template).
    outcome: Option<Outcome>,
}

struct Outcome {
    ok: bool,
    text: String,
}

fn coordinator_only(person: &Person, t: Messages) -> Option<Response> {
    (person.role != Role::Coordinator).then(|| {
        message(
            StatusCode::FORBIDDEN,
            t,
            Nav::of(person, &t),
            "error.title",
            "error.forbidden",
        )
    })
}

fn page(t: Messages, person: &Person, status: StatusCode, outcome: Option<Outcome>) -> Response {
    let mut response = render(&RegisterPage {
        nav: Nav::of(person, &t),
        csrf: person.session.csrf_token.clone(),
        outcome,
        t,
    });
    *response.status_mut() = status;
    response
}

/// `GET /register` (coordinator): the upload form.
pub async fn register_page(Language(lang): Language, person: Person) -> Response {
    let t = lang.messages();
    if let Some(refused) = coordinator_only(&person, t) {
        return refused;
    }
    page(t, &person, StatusCode::OK, None)
}

/// `POST /register` (coordinator): validates the whole file, then replaces the register in one
/// transaction and evaluates, as `catalog import` does; a refused file changes nothing.
pub async fn import(
    State(state): State<WebState>,
    Language(lang): Language,
    person: Person,
    mut multipart: Multipart,
) -> Response {
    let t = lang.messages();
    if let Some(refused) = coordinator_only(&person, t) {
        return refused;
    }
    let mut upload = None;
    loop {
        match multipart.next_field().await {
            Ok(Some(field)) if field.name() == Some("register") => {
                let name = field.file_name().unwrap_or_default().to_string();
                match field.bytes().await {
                    Ok(bytes) => upload = Some((name, bytes)),
                    Err(_) => break,
                }
            }
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => break,
        }
    }
    let refused = |text: String| {
        page(
            t,
            &person,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(Outcome { ok: false, text }),
        )
    };
    let Some((name, bytes)) = upload.filter(|(_, b)| !b.is_empty()) else {
        return refused(t.get("register.no_file").to_string());
    };
    // Only the name's extension is used (it picks CSV or YAML); the rest is shown escaped.
    let lower = name.to_ascii_lowercase();
    if ![".csv", ".yaml", ".yml"]
        .iter()
        .any(|ext| lower.ends_with(ext))
    {
        return refused(t.with("register.bad_type", &name));
    }
    let systems = match crate::catalog::parse(Path::new(&name), &bytes) {
        Ok(systems) => systems,
        Err(e) => return refused(format!("{}\n{e}", t.get("register.refused"))),
    };
    let event = AuditEvent {
        actor: person.actor(),
        action: "catalog.import".into(),
        subject: name.clone(),
        detail: serde_json::json!({
            "systems": systems.len(),
            "sha256": hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes)),
            "via": "web",
        }),
    };
    let now = now_ms();
    let change = match state.store.replace_catalog(&systems, event, now).await {
        Ok(change) => change,
        Err(e) => return failed(&e),
    };
    let summary = match crate::evaluation::evaluate(state.store.as_ref(), &state.rules, now).await {
        Ok(summary) => summary,
        Err(e) => return failed(&e),
    };
    let text = t.with_args(
        "register.done",
        &[
            &systems.len().to_string(),
            &name,
            &change.added.to_string(),
            &change.changed.to_string(),
            &change.unchanged.to_string(),
            &change.removed.to_string(),
            &summary.open.to_string(),
        ],
    );
    page(t, &person, StatusCode::OK, Some(Outcome { ok: true, text }))
}

/// The review page's own policy: it is one self-contained document with its styles inline
/// (as the printed and e-mailed report must be), and it still runs no script at all.
const REPORT_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; \
                          form-action 'none'; frame-ancestors 'none'; base-uri 'none'";

/// `GET /report` (coordinator, auditor, management): the management review in the reader's
/// language, evaluated now. A view, not an issued report: the trend's points are the reports
/// issued with `report`.
pub async fn report(
    State(state): State<WebState>,
    Language(lang): Language,
    person: Person,
) -> Response {
    let t = lang.messages();
    if !matches!(
        person.role,
        Role::Coordinator | Role::Auditor | Role::Management
    ) {
        return message(
            StatusCode::FORBIDDEN,
            t,
            Nav::of(&person, &t),
            "error.title",
            "error.forbidden",
        );
    }
    match crate::report::html_view(state.store.as_ref(), &state.rules, lang).await {
        Ok(html) => (
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/html; charset=utf-8"),
                ),
                (
                    header::CONTENT_SECURITY_POLICY,
                    HeaderValue::from_static(REPORT_CSP),
                ),
            ],
            html,
        )
            .into_response(),
        Err(e) => failed(&e),
    }
}
