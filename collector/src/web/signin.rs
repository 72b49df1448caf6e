//! Enrolment (one-time link: choose a password, add the TOTP key to an app, confirm with a
//! code) and sign-in (e-mail + password + TOTP code, always both factors). Failures give one
//! message whatever failed, count against the account (lock-out) and the address (limiter).

use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::WebState;
use super::auth::{self, random_hex, sha256_hex};
use super::i18n::Messages;
use super::pages::{Nav, failed, message, render};
use super::session::{Language, PRE_COOKIE, Peer, Person, SESSION_COOKIE, cookie, set_cookie};
use crate::server::now_ms;
use crate::store::{AuditEvent, Enrolment, SessionRecord};

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    t: Messages,
    nav: Option<Nav>,
    csrf: String,
    email: String,
    error: Option<String>,
    notice: Option<String>,
    /// Whether to offer sign-in through the OpenID provider.
    oidc: bool,
    /// Whether to offer a passkey instead of the code (`webauthn.js`, hidden without it).
    passkeys: bool,
}

/// The pre-session token of this browser, or a new one to set.
fn pre_token(headers: &HeaderMap) -> (String, bool) {
    match cookie(headers, PRE_COOKIE) {
        Some(value) if value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit()) => {
            (value.to_string(), false)
        }
        _ => (random_hex(32), true),
    }
}

fn with_pre_cookie(mut response: Response, token: &str, fresh: bool) -> Response {
    if fresh {
        response
            .headers_mut()
            .append(header::SET_COOKIE, set_cookie(PRE_COOKIE, token, None));
    }
    response
}

fn login_response(
    state: &WebState,
    status: StatusCode,
    t: Messages,
    headers: &HeaderMap,
    email: &str,
    error: Option<&str>,
    notice: Option<&str>,
) -> Response {
    let oidc = state.oidc.as_deref();
    let passkeys = state.passkeys.is_some();
    let (csrf, fresh) = pre_token(headers);
    let page = LoginPage {
        t,
        nav: None,
        csrf: csrf.clone(),
        email: email.to_string(),
        error: error.map(|k| t.get(k).to_string()),
        notice: notice.map(|k| t.get(k).to_string()),
        oidc: oidc.is_some(),
        passkeys,
    };
    let mut response = (status, render(&page)).into_response();
    if let Some(policy) = oidc.and_then(|o| header::HeaderValue::from_str(&o.login_page_csp()).ok())
    {
        response
            .headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, policy);
    }
    if passkeys {
        super::session::script_csp(&mut response);
    }
    with_pre_cookie(response, &csrf, fresh)
}

/// Query of `/login`.
#[derive(Deserialize)]
pub struct LoginQuery {
    /// Set after enrolment.
    #[serde(default)]
    enrolled: Option<String>,
}

/// `GET /login`.
pub async fn login_page(
    State(state): State<WebState>,
    Language(lang): Language,
    headers: HeaderMap,
    Query(query): Query<LoginQuery>,
) -> Response {
    let notice = query.enrolled.map(|_| "login.enrolled");
    login_response(
        &state,
        StatusCode::OK,
        lang.messages(),
        &headers,
        "",
        None,
        notice,
    )
}

/// The sign-in form.
#[derive(Deserialize)]
pub struct LoginForm {
    email: String,
    password: String,
    code: String,
}

/// `POST /login`.
pub async fn login(
    State(state): State<WebState>,
    Language(lang): Language,
    Peer(address): Peer,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let t = lang.messages();
    let now = now_ms();
    let settings = &state.settings;
    let email = form.email.trim().to_lowercase();
    let refuse = |key: &str| {
        login_response(
            &state,
            StatusCode::UNAUTHORIZED,
            t,
            &headers,
            &email,
            Some(key),
            None,
        )
    };
    if !state
        .limiter
        .allows(address, settings.address_failures, settings.lock_ms, now)
    {
        return login_response(
            &state,
            StatusCode::TOO_MANY_REQUESTS,
            t,
            &headers,
            &email,
            Some("login.too_many"),
            None,
        );
    }
    if form.password.len() > auth::MAX_PASSWORD_BYTES || email.len() > 320 {
        state.limiter.fail(address, now);
        return refuse("login.failed");
    }
    let user = match state.store.user_by_email(&email).await {
        Ok(user) => user,
        Err(e) => return failed(&e),
    };
    // An account made by an OIDC sign-in has no password: it signs in only at the provider.
    let usable = user
        .filter(|u| u.disabled_at.is_none() && u.enrolled_at.is_some() && u.oidc_subject.is_none());
    let Some(user) = usable else {
        auth::dummy_verify(&form.password);
        state.limiter.fail(address, now);
        return refuse("login.failed");
    };
    if user.locked_until > now {
        state.limiter.fail(address, now);
        return refuse("login.failed");
    }
    let password_ok = user
        .password_hash
        .as_deref()
        .is_some_and(|phc| auth::verify_password(&form.password, phc).unwrap_or(false));
    let seconds = u64::try_from(now / 1000).unwrap_or(0);
    let step = user
        .totp_secret
        .as_deref()
        .and_then(|key| auth::totp_step(key, &form.code, seconds).ok().flatten())
        .filter(|step| *step > user.totp_last_step);
    let Some(step) = step.filter(|_| password_ok) else {
        if let Err(e) = count_failure(&state, address, &user.user_id, now).await {
            return failed(&e);
        }
        return refuse("login.failed");
    };
    let id = random_hex(32);
    let session = SessionRecord {
        session_hash: sha256_hex(&id),
        user_id: user.user_id.clone(),
        csrf_token: random_hex(32),
        created_at: now,
        last_seen_at: now,
    };
    let event = AuditEvent {
        actor: format!("local:{}", user.email),
        action: "web.sign_in".into(),
        subject: user.user_id.clone(),
        detail: serde_json::json!({ "address": address.to_string() }),
    };
    match state.store.start_session(session, step, event, now).await {
        Ok(true) => {}
        Ok(false) => return refuse("login.failed"),
        Err(e) => return failed(&e),
    }
    let mut response = Redirect::to("/").into_response();
    response
        .headers_mut()
        .append(header::SET_COOKIE, set_cookie(SESSION_COOKIE, &id, None));
    response
}

/// `POST /logout`.
pub async fn logout(State(state): State<WebState>, person: Person) -> Response {
    if let Err(e) = state.store.end_session(&person.session.session_hash).await {
        return failed(&e);
    }
    let mut response = Redirect::to("/login").into_response();
    response
        .headers_mut()
        .append(header::SET_COOKIE, set_cookie(SESSION_COOKIE, "", Some(0)));
    response
}

#[derive(Template)]
#[template(path = "enrol.html")]
struct EnrolPage {
    t: Messages,
    nav: Option<Nav>,
    csrf: String,
    token: String,
    name: String,
    email: String,
    secret_base32: String,
    secret_uri: String,
    /// The URI as an `<svg>` QR code ([`super::qr`]): modules only, safe to insert unescaped.
    secret_qr: String,
    error: Option<String>,
}

/// Query of `/enrol`.
#[derive(Deserialize)]
pub struct EnrolQuery {
    #[serde(default)]
    token: String,
}

async fn enrol_response(
    state: &WebState,
    t: Messages,
    headers: &HeaderMap,
    token: &str,
    error: Option<&str>,
) -> Response {
    let user = match state
        .store
        .user_by_enrol_token(&sha256_hex(token), now_ms())
        .await
    {
        Ok(user) => user,
        Err(e) => return failed(&e),
    };
    let Some(user) = user else {
        return message(
            StatusCode::NOT_FOUND,
            t,
            None,
            "error.title",
            "enrol.invalid",
        );
    };
    let secret_hex = auth::enrolment_totp_secret(token);
    let (Ok(base32), Ok(uri)) = (
        auth::totp_base32(&secret_hex),
        auth::totp_uri(&secret_hex, &user.email),
    ) else {
        return message(
            StatusCode::BAD_REQUEST,
            t,
            None,
            "error.title",
            "enrol.invalid",
        );
    };
    let Ok(qr) = super::qr::svg(&uri, t.get("enrol.totp_qr")) else {
        return message(
            StatusCode::BAD_REQUEST,
            t,
            None,
            "error.title",
            "enrol.invalid",
        );
    };
    let (csrf, fresh) = pre_token(headers);
    let page = EnrolPage {
        t,
        nav: None,
        csrf: csrf.clone(),
        token: token.to_string(),
        name: user.name,
        email: user.email,
        secret_base32: base32,
        secret_uri: uri,
        secret_qr: qr,
        error: error.map(|k| t.get(k).to_string()),
    };
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    with_pre_cookie((status, render(&page)).into_response(), &csrf, fresh)
}

/// `GET /enrol?token=…`.
pub async fn enrol_page(
    State(state): State<WebState>,
    Language(lang): Language,
    headers: HeaderMap,
    Query(query): Query<EnrolQuery>,
) -> Response {
    enrol_response(&state, lang.messages(), &headers, &query.token, None).await
}

/// The enrolment form.
#[derive(Deserialize)]
pub struct EnrolForm {
    token: String,
    password: String,
    password2: String,
    code: String,
}

/// `POST /enrol`.
pub async fn enrol(
    State(state): State<WebState>,
    Language(lang): Language,
    Peer(address): Peer,
    headers: HeaderMap,
    Form(form): Form<EnrolForm>,
) -> Response {
    let t = lang.messages();
    let now = now_ms();
    if !state.limiter.allows(
        address,
        state.settings.address_failures,
        state.settings.lock_ms,
        now,
    ) {
        return message(
            StatusCode::TOO_MANY_REQUESTS,
            t,
            None,
            "error.title",
            "login.too_many",
        );
    }
    let secret_hex = auth::enrolment_totp_secret(&form.token);
    let secret = secret_hex.as_str();
    let again = |key: &'static str| {
        let state = state.clone();
        let headers = headers.clone();
        let token = form.token.clone();
        async move { enrol_response(&state, t, &headers, &token, Some(key)).await }
    };
    if form.password != form.password2 {
        return again("enrol.mismatch").await;
    }
    if form.password.chars().count() < auth::MIN_PASSWORD_CHARS
        || form.password.len() > auth::MAX_PASSWORD_BYTES
    {
        return again("enrol.short").await;
    }
    let seconds = u64::try_from(now / 1000).unwrap_or(0);
    let Ok(Some(step)) = auth::totp_step(secret, &form.code, seconds) else {
        state.limiter.fail(address, now);
        return again("enrol.bad_code").await;
    };
    let Ok(password_hash) = auth::hash_password(&form.password) else {
        return failed(&"password hashing failed");
    };
    let token_hash = sha256_hex(&form.token);
    let user = match state.store.user_by_enrol_token(&token_hash, now).await {
        Ok(Some(user)) => user,
        Ok(None) => {
            return message(
                StatusCode::NOT_FOUND,
                t,
                None,
                "error.title",
                "enrol.invalid",
            );
        }
        Err(e) => return failed(&e),
    };
    let event = AuditEvent {
        actor: format!("local:{}", user.email),
        action: "user.enrol".into(),
        subject: user.user_id.clone(),
        detail: serde_json::json!({ "factors": ["password", "totp"] }),
    };
    let enrolment = Enrolment {
        password_hash,
        totp_secret: secret.to_string(),
        totp_step: step,
    };
    match state
        .store
        .complete_enrolment(&token_hash, enrolment, event, now)
        .await
    {
        Ok(true) => Redirect::to("/login?enrolled=1").into_response(),
        Ok(false) => message(
            StatusCode::NOT_FOUND,
            t,
            None,
            "error.title",
            "enrol.invalid",
        ),
        Err(e) => failed(&e),
    }
}

/// A failed second factor or password: counted by the per-address limiter and towards the
/// account's lock, alike for a sign-in code, a passkey and the code that adds a passkey.
/// True when this failure locked the account (the store's answer).
pub(super) async fn count_failure(
    state: &WebState,
    address: std::net::IpAddr,
    user_id: &str,
    now: i64,
) -> Result<bool, crate::store::StoreError> {
    state.limiter.fail(address, now);
    let settings = &state.settings;
    state
        .store
        .record_sign_in_failure(
            user_id,
            settings.lock_after_failures,
            now + settings.lock_ms,
            now,
        )
        .await
}
