//! The security page of a signed-in local account (`/security`): its passkeys, adding one
//! (the registration ceremony, `/security/passkeys/start|finish`) and removing one (a plain
//! form). Every addition and removal is audited with the person's identity. OIDC accounts
//! have no local factors: their page says so and they cannot add passkeys.
//!
//! Adding a passkey asks for a current TOTP code, spent like a sign-in code, rather than
//! allowing it within some minutes of sign-in: a passkey is a lasting second factor, and a
//! stolen session cookie or an unattended signed-in browser must not be enough to plant one.
//! A fresh-session window would let exactly those do it.

use askama::Template;
use axum::Form;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use webauthn_rs::prelude::{PasskeyRegistration, RegisterPublicKeyCredential};

use super::WebState;
use super::auth;
use super::i18n::Messages;
use super::pages::{Nav, failed, message, render};
use super::passkey::{
    CHALLENGE_MS, MAX_LABEL_CHARS, body, credential_id_text, json, json_error, json_failed, parsed,
    user_handle,
};
use super::session::{Language, Peer, Person, script_csp};
use super::view;
use crate::server::now_ms;
use crate::store::{AuditEvent, PasskeyChallenge, PasskeyPurpose, PasskeyRecord};

/// One passkey row of the page.
struct PasskeyRow {
    credential_id: String,
    label: String,
    created: String,
    last_used: String,
}

#[derive(Template)]
#[template(path = "security.html")]
struct SecurityPage {
    t: Messages,
    nav: Option<Nav>,
    csrf: String,
    /// Whether passkeys can be used on this server (a host name as relying party id).
    available: bool,
    /// An OIDC account: factors are the provider's business.
    oidc: bool,
    passkeys: Vec<PasskeyRow>,
    notice: Option<String>,
}

/// Query of `/security`.
#[derive(Deserialize)]
pub struct SecurityQuery {
    #[serde(default)]
    added: Option<String>,
    #[serde(default)]
    removed: Option<String>,
}

/// `GET /security`.
pub async fn page(
    State(state): State<WebState>,
    Language(lang): Language,
    person: Person,
    Query(query): Query<SecurityQuery>,
) -> Response {
    let t = lang.messages();
    let records = match state.store.passkeys(&person.user.user_id).await {
        Ok(records) => records,
        Err(e) => return failed(&e),
    };
    let zone = state.settings.timezone;
    let passkeys = records
        .into_iter()
        .map(|r| PasskeyRow {
            credential_id: r.credential_id,
            label: r.label,
            created: view::time(r.created_at, zone),
            last_used: r.last_used_at.map_or_else(
                || t.get("security.never").to_string(),
                |at| view::time(at, zone),
            ),
        })
        .collect();
    let notice = if query.added.is_some() {
        Some(t.get("security.added").to_string())
    } else {
        query.removed.map(|_| t.get("security.removed").to_string())
    };
    let available = state.passkeys.is_some();
    let page = SecurityPage {
        t,
        nav: Nav::of(&person, &t),
        csrf: person.session.csrf_token.clone(),
        available,
        oidc: person.user.oidc_subject.is_some(),
        passkeys,
        notice,
    };
    let mut response = render(&page);
    if available {
        script_csp(&mut response);
    }
    response
}

/// `POST /security/passkeys/start`: `{csrf, label, code}`.
#[derive(Deserialize)]
pub struct RegistrationStart {
    label: String,
    code: String,
}

/// Checks the TOTP code (spent, so it works once) and answers the options of
/// `navigator.credentials.create`; the challenge is kept in the store, bound to this session.
pub async fn start(
    State(state): State<WebState>,
    Language(lang): Language,
    Peer(address): Peer,
    person: Person,
    bytes: Bytes,
) -> Response {
    let t = lang.messages();
    let now = now_ms();
    let settings = &state.settings;
    let Some(party) = state.passkeys.as_deref() else {
        return json_error(StatusCode::NOT_FOUND, t, "security.unavailable");
    };
    let user = &person.user;
    if user.oidc_subject.is_some() {
        return json_error(StatusCode::FORBIDDEN, t, "security.oidc");
    }
    let Some(form) = body::<RegistrationStart>(&bytes) else {
        return json_error(StatusCode::BAD_REQUEST, t, "error.bad_form");
    };
    let label = form.label.trim().to_string();
    if label.is_empty()
        || label.chars().count() > MAX_LABEL_CHARS
        || label.chars().any(char::is_control)
    {
        return json_error(StatusCode::BAD_REQUEST, t, "security.bad_label");
    }
    if !state
        .limiter
        .allows(address, settings.address_failures, settings.lock_ms, now)
    {
        return json_error(StatusCode::TOO_MANY_REQUESTS, t, "login.too_many");
    }
    let seconds = u64::try_from(now / 1000).unwrap_or(0);
    let step = user
        .totp_secret
        .as_deref()
        .and_then(|key| auth::totp_step(key, &form.code, seconds).ok().flatten())
        .filter(|step| *step > user.totp_last_step);
    let spent = match step {
        Some(step) => match state.store.spend_totp_step(&user.user_id, step).await {
            Ok(spent) => spent,
            Err(e) => return json_failed(&e),
        },
        None => false,
    };
    if !spent {
        // A wrong code here counts like one at sign-in: the limiter and the account's lock.
        if let Err(e) = super::signin::count_failure(&state, address, &user.user_id, now).await {
            return json_failed(&e);
        }
        return json_error(StatusCode::UNAUTHORIZED, t, "security.bad_code");
    }
    let existing = match state.store.passkeys(&user.user_id).await {
        Ok(records) => records,
        Err(e) => return json_failed(&e),
    };
    let exclude = parsed(&existing)
        .into_iter()
        .map(|(_, key)| key.cred_id().clone())
        .collect::<Vec<_>>();
    let (options, ceremony) = match party.webauthn().start_passkey_registration(
        user_handle(&user.user_id),
        &user.email,
        &user.name,
        Some(exclude),
    ) {
        Ok(pair) => pair,
        Err(e) => return json_failed(&e),
    };
    let Ok(state_json) = serde_json::to_string(&ceremony) else {
        return json_failed(&"passkey registration state not serialisable");
    };
    let challenge = PasskeyChallenge {
        binding: person.session.session_hash.clone(),
        purpose: PasskeyPurpose::Register,
        user_id: user.user_id.clone(),
        label,
        state_json,
        expires_at: now + CHALLENGE_MS,
    };
    if let Err(e) = state.store.put_passkey_challenge(challenge, now).await {
        return json_failed(&e);
    }
    match serde_json::to_value(&options) {
        Ok(value) => json(StatusCode::OK, &value),
        Err(e) => json_failed(&e),
    }
}

/// `POST /security/passkeys/finish`: `{csrf, credential}`.
#[derive(Deserialize)]
pub struct RegistrationFinish {
    credential: serde_json::Value,
}

/// Verifies the new credential against this session's challenge (taken: used once) and
/// stores it, audited; a credential id registered already, to anyone, is refused.
pub async fn finish(
    State(state): State<WebState>,
    Language(lang): Language,
    person: Person,
    bytes: Bytes,
) -> Response {
    let t = lang.messages();
    let now = now_ms();
    let Some(party) = state.passkeys.as_deref() else {
        return json_error(StatusCode::NOT_FOUND, t, "security.unavailable");
    };
    let challenge = match state
        .store
        .take_passkey_challenge(&person.session.session_hash, PasskeyPurpose::Register, now)
        .await
    {
        Ok(challenge) => challenge.filter(|c| c.user_id == person.user.user_id),
        Err(e) => return json_failed(&e),
    };
    let Some(challenge) = challenge else {
        return json_error(StatusCode::BAD_REQUEST, t, "security.expired");
    };
    let decoded = body::<RegistrationFinish>(&bytes).and_then(|form| {
        Some((
            serde_json::from_value::<RegisterPublicKeyCredential>(form.credential).ok()?,
            serde_json::from_str::<PasskeyRegistration>(&challenge.state_json).ok()?,
        ))
    });
    let Some((credential, ceremony)) = decoded else {
        return json_error(StatusCode::BAD_REQUEST, t, "security.failed");
    };
    let key = match party
        .webauthn()
        .finish_passkey_registration(&credential, &ceremony)
    {
        Ok(key) => key,
        Err(error) => {
            tracing::info!(%error, user = %person.user.email, "passkey registration refused");
            return json_error(StatusCode::BAD_REQUEST, t, "security.failed");
        }
    };
    let Ok(passkey_json) = serde_json::to_string(&key) else {
        return json_failed(&"passkey not serialisable");
    };
    let credential_id = credential_id_text(key.cred_id());
    let event = AuditEvent {
        actor: person.actor(),
        action: "web.passkey_add".into(),
        subject: person.user.user_id.clone(),
        detail: serde_json::json!({ "label": challenge.label, "credential_id": credential_id }),
    };
    let record = PasskeyRecord {
        credential_id,
        user_id: person.user.user_id.clone(),
        label: challenge.label,
        passkey_json,
        created_at: now,
        last_used_at: None,
    };
    match state.store.add_passkey(record, event, now).await {
        Ok(true) => json(
            StatusCode::OK,
            &serde_json::json!({ "redirect": "/security?added=1" }),
        ),
        Ok(false) => json_error(StatusCode::CONFLICT, t, "security.taken"),
        Err(e) => json_failed(&e),
    }
}

/// `POST /security/passkeys/remove` (a plain form).
#[derive(Deserialize)]
pub struct RemoveForm {
    credential_id: String,
}

/// Removes one of the person's own passkeys, audited; anyone else's id is 404.
pub async fn remove(
    State(state): State<WebState>,
    Language(lang): Language,
    person: Person,
    Form(form): Form<RemoveForm>,
) -> Response {
    let t = lang.messages();
    let now = now_ms();
    let records = match state.store.passkeys(&person.user.user_id).await {
        Ok(records) => records,
        Err(e) => return failed(&e),
    };
    let Some(record) = records
        .into_iter()
        .find(|r| r.credential_id == form.credential_id)
    else {
        return message(
            StatusCode::NOT_FOUND,
            t,
            Nav::of(&person, &t),
            "error.title",
            "error.not_found",
        );
    };
    let event = AuditEvent {
        actor: person.actor(),
        action: "web.passkey_remove".into(),
        subject: person.user.user_id.clone(),
        detail: serde_json::json!({ "label": record.label, "credential_id": record.credential_id }),
    };
    match state
        .store
        .remove_passkey(&person.user.user_id, &record.credential_id, event, now)
        .await
    {
        Ok(true) => Redirect::to("/security?removed=1").into_response(),
        Ok(false) => message(
            StatusCode::NOT_FOUND,
            t,
            Nav::of(&person, &t),
            "error.title",
            "error.not_found",
        ),
        Err(e) => failed(&e),
    }
}
