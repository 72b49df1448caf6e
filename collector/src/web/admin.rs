//! The coordinator's account pages: the list of local accounts, creating one (the one-time
//! enrolment link is shown once, on the answer page), and disabling one (which ends its
//! sessions). Same rules and audit entries as `user add|disable` on the CLI.

use askama::Template;
use axum::Form;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::i18n::Messages;
use super::pages::{Nav, failed, message, render};
use super::session::{Language, Person, Role};
use super::{WebState, users, view};
use crate::server::now_ms;

/// An account as listed.
pub struct UserRow {
    /// E-mail.
    pub email: String,
    /// Name.
    pub name: String,
    /// Role label.
    pub role: String,
    /// State label.
    pub state: String,
    /// Whether the disable button is offered (enabled, not oneself).
    pub may_disable: bool,
}

#[derive(Template)]
#[template(path = "users.html")]
struct UsersPage {
    t: Messages,
    nav: Option<Nav>,
    notice: Option<String>,
    link: Option<String>,
    users: Vec<UserRow>,
    csrf: String,
}

async fn users_page(
    state: &WebState,
    t: Messages,
    person: &Person,
    notice: Option<String>,
    link: Option<String>,
) -> Response {
    let accounts = match state.store.users().await {
        Ok(u) => u,
        Err(e) => return failed(&e),
    };
    let now = now_ms();
    let rows = accounts
        .iter()
        .map(|u| UserRow {
            email: u.email.clone(),
            name: u.name.clone(),
            role: view::role(&t, &u.role),
            state: if u.disabled_at.is_some() {
                t.get("users.disabled")
            } else if u.locked_until > now {
                t.get("users.locked")
            } else if u.enrolled_at.is_some() {
                t.get("users.active")
            } else {
                t.get("users.pending")
            }
            .to_string(),
            may_disable: u.disabled_at.is_none() && u.email != person.user.email,
        })
        .collect();
    render(&UsersPage {
        nav: Nav::of(person, &t),
        notice,
        link,
        users: rows,
        csrf: person.session.csrf_token.clone(),
        t,
    })
}

fn coordinator_only(t: Messages, person: &Person) -> Option<Response> {
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

/// `GET /users` (coordinators).
pub async fn list(
    State(state): State<WebState>,
    Language(lang): Language,
    person: Person,
) -> Response {
    let t = lang.messages();
    if let Some(refused) = coordinator_only(t, &person) {
        return refused;
    }
    users_page(&state, t, &person, None, None).await
}

/// The new-account form.
#[derive(Deserialize)]
pub struct NewUserForm {
    email: String,
    name: String,
    role: String,
}

/// `POST /users` (coordinators): creates an account and shows its enrolment link once.
pub async fn create(
    State(state): State<WebState>,
    Language(lang): Language,
    person: Person,
    Form(form): Form<NewUserForm>,
) -> Response {
    let t = lang.messages();
    if let Some(refused) = coordinator_only(t, &person) {
        return refused;
    }
    match users::add(
        state.store.as_ref(),
        &state.settings,
        &form.email,
        &form.name,
        &form.role,
        &person.actor(),
    )
    .await
    {
        Ok(text) => {
            let link = text.lines().last().map(str::to_string);
            users_page(
                &state,
                t,
                &person,
                Some(t.get("users.created").to_string()),
                link,
            )
            .await
        }
        Err(
            users::UserError::Argument(_)
            | users::UserError::Store(crate::store::StoreError::UserExists(_)),
        ) => message(
            StatusCode::BAD_REQUEST,
            t,
            Nav::of(&person, &t),
            "error.title",
            "users.bad",
        ),
        Err(users::UserError::Store(e)) => failed(&e),
    }
}

/// The disable form.
#[derive(Deserialize)]
pub struct DisableForm {
    email: String,
}

/// `POST /users/disable` (coordinators; never their own account).
pub async fn disable(
    State(state): State<WebState>,
    Language(lang): Language,
    person: Person,
    Form(form): Form<DisableForm>,
) -> Response {
    let t = lang.messages();
    if let Some(refused) = coordinator_only(t, &person) {
        return refused;
    }
    if form.email.trim().eq_ignore_ascii_case(&person.user.email) {
        return message(
            StatusCode::BAD_REQUEST,
            t,
            Nav::of(&person, &t),
            "error.title",
            "users.not_self",
        );
    }
    match users::disable(state.store.as_ref(), &form.email, &person.actor()).await {
        Ok(_) => {
            users_page(
                &state,
                t,
                &person,
                Some(t.get("users.disabled_done").to_string()),
                None,
            )
            .await
        }
        Err(users::UserError::Argument(_)) => message(
            StatusCode::BAD_REQUEST,
            t,
            Nav::of(&person, &t),
            "error.title",
            "users.bad",
        ),
        Err(users::UserError::Store(e)) => failed(&e),
    }
}
