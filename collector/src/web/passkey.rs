//! Passkeys (WebAuthn, Kanidm's webauthn-rs) as the second factor of a local sign-in: the
//! relying party made from `[web] public_url`, the ceremony state kept in the store between
//! the two requests of a ceremony, and the sign-in ceremony (`/login/passkey/start|finish`).
//! A passkey replaces the TOTP code after the password, never the password: there is no
//! passwordless path. Adding and removing passkeys is in [`super::security`].
//!
//! The browser side is `/static/webauthn.js`: it calls `navigator.credentials.create/get` and
//! posts JSON carrying the CSRF token, which [`super::session::guard`] checks like any form.
//! Every check that matters is made here: the challenge is single use, bound to the cookie
//! that started the ceremony and expires after [`CHALLENGE_MS`]; user verification is
//! required (webauthn-rs's passkey API); a credential is looked up only among the account's
//! own; failures count against the account and the address like a wrong TOTP code.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use sha2::Digest as _;
use webauthn_rs::prelude::{
    CredentialID, Passkey, PasskeyAuthentication, PublicKeyCredential, Url, Uuid, Webauthn,
    WebauthnBuilder,
};

use super::WebState;
use super::auth::{self, random_hex, sha256_hex};
use super::i18n::Messages;
use super::session::{Language, PRE_COOKIE, Peer, SESSION_COOKIE, cookie, set_cookie};
use crate::server::now_ms;
use crate::store::{
    AuditEvent, PasskeyChallenge, PasskeyPurpose, PasskeyRecord, SessionRecord, StoreError,
    UserRecord,
};

/// How long a started ceremony may take (ms); the browser is told the same.
pub const CHALLENGE_MS: i64 = 5 * 60_000;
/// Longest label of a passkey (characters).
pub const MAX_LABEL_CHARS: usize = 100;

/// The relying party: its id (the public URL's host) and the one origin accepted.
pub struct PasskeyParty {
    webauthn: Webauthn,
    /// The relying party id, e.g. `tillsyn.kommun.se`.
    pub rp_id: String,
}

impl PasskeyParty {
    /// The relying party of `public_url`, or None when passkeys are off. `wanted` is
    /// `[web] passkeys`: unset turns them on only when the URL names a host (WebAuthn takes no
    /// IP address as relying party id, and the default public URL is one); `true` makes an
    /// unusable URL an error, so the collector refuses to start instead of running without.
    pub fn from_settings(public_url: &str, wanted: Option<bool>) -> Result<Option<Self>, String> {
        if wanted == Some(false) {
            return Ok(None);
        }
        let url =
            Url::parse(public_url).map_err(|e| format!("web.public_url = {public_url:?}: {e}"))?;
        let Some(host) = url.domain().map(str::to_string) else {
            let why = format!(
                "web.public_url = {public_url:?}: passkeys need a host name as relying party id (WebAuthn accepts no IP address); set public_url to the name people type"
            );
            if wanted == Some(true) {
                return Err(format!("{why}, or passkeys = false"));
            }
            tracing::warn!("{why}; passkeys are off");
            return Ok(None);
        };
        // The origin alone (scheme, host, port): a path in public_url is not part of it.
        let origin = Url::parse(&url.origin().ascii_serialization())
            .map_err(|e| format!("web.public_url = {public_url:?}: {e}"))?;
        let webauthn = WebauthnBuilder::new(&host, &origin)
            .and_then(|b| {
                b.rp_name("Tillsyn")
                    .timeout(std::time::Duration::from_millis(
                        CHALLENGE_MS.cast_unsigned(),
                    ))
                    .build()
            })
            .map_err(|e| {
                format!(
                    "web.public_url = {public_url:?}: not usable as a WebAuthn relying party: {e}"
                )
            })?;
        Ok(Some(Self {
            webauthn,
            rp_id: host,
        }))
    }

    /// The webauthn-rs relying party.
    pub fn webauthn(&self) -> &Webauthn {
        &self.webauthn
    }
}

/// A JSON answer to `webauthn.js`.
pub fn json(status: StatusCode, value: &serde_json::Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        value.to_string(),
    )
        .into_response()
}

/// A refusal `webauthn.js` shows to the person: `{"error": text}`.
pub fn json_error(status: StatusCode, t: Messages, key: &str) -> Response {
    json(status, &serde_json::json!({ "error": t.get(key) }))
}

/// A store or internal failure: detail to the log, an opaque 500 to the browser.
pub fn json_failed(error: &dyn std::fmt::Display) -> Response {
    tracing::error!(%error, "web passkey request failed");
    json(
        StatusCode::INTERNAL_SERVER_ERROR,
        &serde_json::json!({ "error": "internal error" }),
    )
}

/// base64url without padding: how credential ids are stored and shown.
pub fn credential_id_text(id: &CredentialID) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id.as_ref())
}

/// The WebAuthn user handle of an account: its UUID, or for an id that is not one, 16 bytes
/// of its SHA-256 (stable, and never the e-mail, which authenticators may show or sync).
pub fn user_handle(user_id: &str) -> Uuid {
    Uuid::parse_str(user_id).unwrap_or_else(|_| {
        let digest = sha2::Sha256::digest(user_id.as_bytes());
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        Uuid::from_bytes(bytes)
    })
}

/// The account's passkeys as webauthn-rs reads them (a row that does not parse is skipped and
/// logged: it cannot sign in, and the others still can).
pub fn parsed(records: &[PasskeyRecord]) -> Vec<(PasskeyRecord, Passkey)> {
    records
        .iter()
        .filter_map(|r| match serde_json::from_str::<Passkey>(&r.passkey_json) {
            Ok(p) => Some((r.clone(), p)),
            Err(error) => {
                tracing::error!(%error, credential = %r.credential_id, "stored passkey unreadable");
                None
            }
        })
        .collect()
}

/// The body of a ceremony request (`csrf` is checked by the guard before this is read).
pub fn body<T: for<'de> Deserialize<'de>>(bytes: &Bytes) -> Option<T> {
    serde_json::from_slice(bytes).ok()
}

/// Whether a local account may sign in at all right now (the same conditions as the TOTP
/// path: enabled, enrolled, not an OIDC account, not locked).
fn usable(user: &UserRecord, now: i64) -> bool {
    user.disabled_at.is_none()
        && user.enrolled_at.is_some()
        && user.oidc_subject.is_none()
        && user.locked_until <= now
}

/// The sign-in ceremony is bound to the pre-session cookie of the browser whose password was
/// checked: another browser cannot finish it.
fn attempt_binding(headers: &HeaderMap) -> Option<String> {
    cookie(headers, PRE_COOKIE).map(|value| sha256_hex(&format!("passkey sign-in\0{value}")))
}

/// `POST /login/passkey/start`: `{csrf, email, password}`.
#[derive(Deserialize)]
pub struct SignInStart {
    email: String,
    password: String,
}

/// Checks the password as `POST /login` does, then answers the options of
/// `navigator.credentials.get` for the account's passkeys; the challenge is kept in the store.
pub async fn sign_in_start(
    State(state): State<WebState>,
    Language(lang): Language,
    Peer(address): Peer,
    headers: HeaderMap,
    bytes: Bytes,
) -> Response {
    let t = lang.messages();
    let now = now_ms();
    let settings = &state.settings;
    let Some(party) = state.passkeys.as_deref() else {
        return json_error(StatusCode::NOT_FOUND, t, "security.unavailable");
    };
    let (Some(binding), Some(form)) = (attempt_binding(&headers), body::<SignInStart>(&bytes))
    else {
        return json_error(StatusCode::BAD_REQUEST, t, "error.bad_form");
    };
    if !state
        .limiter
        .allows(address, settings.address_failures, settings.lock_ms, now)
    {
        return json_error(StatusCode::TOO_MANY_REQUESTS, t, "login.too_many");
    }
    let email = form.email.trim().to_lowercase();
    if form.password.len() > auth::MAX_PASSWORD_BYTES || email.len() > 320 {
        state.limiter.fail(address, now);
        return json_error(StatusCode::UNAUTHORIZED, t, "login.failed");
    }
    let user = match state.store.user_by_email(&email).await {
        Ok(user) => user.filter(|u| usable(u, now)),
        Err(e) => return json_failed(&e),
    };
    let Some(user) = user else {
        auth::dummy_verify(&form.password);
        state.limiter.fail(address, now);
        return json_error(StatusCode::UNAUTHORIZED, t, "login.failed");
    };
    let password_ok = user
        .password_hash
        .as_deref()
        .is_some_and(|phc| auth::verify_password(&form.password, phc).unwrap_or(false));
    if !password_ok {
        return failure(&state, address, &user, t, now).await;
    }
    let records = match state.store.passkeys(&user.user_id).await {
        Ok(records) => records,
        Err(e) => return json_failed(&e),
    };
    let keys: Vec<Passkey> = parsed(&records).into_iter().map(|(_, p)| p).collect();
    if keys.is_empty() {
        // Only someone who knows the password learns this; it is no failed factor.
        return json_error(StatusCode::CONFLICT, t, "login.passkey_none");
    }
    let (options, ceremony) = match party.webauthn().start_passkey_authentication(&keys) {
        Ok(pair) => pair,
        Err(e) => return json_failed(&e),
    };
    let Ok(state_json) = serde_json::to_string(&ceremony) else {
        return json_failed(&"passkey authentication state not serialisable");
    };
    let challenge = PasskeyChallenge {
        binding,
        purpose: PasskeyPurpose::SignIn,
        user_id: user.user_id.clone(),
        label: String::new(),
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

/// Counts a failed second factor (or password) of `user` as `POST /login` does: the address
/// limiter and the account's lock-out.
async fn failure(
    state: &WebState,
    address: std::net::IpAddr,
    user: &UserRecord,
    t: Messages,
    now: i64,
) -> Response {
    if let Err(e) = super::signin::count_failure(state, address, &user.user_id, now).await {
        return json_failed(&e);
    }
    json_error(StatusCode::UNAUTHORIZED, t, "login.passkey_failed")
}

/// `POST /login/passkey/finish`: `{csrf, credential}`.
#[derive(Deserialize)]
pub struct SignInFinish {
    credential: serde_json::Value,
}

/// Verifies the assertion against the challenge this browser's start stored (taken, so used
/// once), stores the credential's new counter and backup state, starts the session.
pub async fn sign_in_finish(
    State(state): State<WebState>,
    Language(lang): Language,
    Peer(address): Peer,
    headers: HeaderMap,
    bytes: Bytes,
) -> Response {
    let t = lang.messages();
    let now = now_ms();
    let settings = &state.settings;
    let Some(party) = state.passkeys.as_deref() else {
        return json_error(StatusCode::NOT_FOUND, t, "security.unavailable");
    };
    if !state
        .limiter
        .allows(address, settings.address_failures, settings.lock_ms, now)
    {
        return json_error(StatusCode::TOO_MANY_REQUESTS, t, "login.too_many");
    }
    let Some(binding) = attempt_binding(&headers) else {
        return json_error(StatusCode::BAD_REQUEST, t, "error.bad_form");
    };
    let challenge = match state
        .store
        .take_passkey_challenge(&binding, PasskeyPurpose::SignIn, now)
        .await
    {
        Ok(challenge) => challenge,
        Err(e) => return json_failed(&e),
    };
    let Some(challenge) = challenge else {
        // No ceremony started here, or it expired or was used: nothing to count against an
        // account, but the address pays.
        state.limiter.fail(address, now);
        return json_error(StatusCode::UNAUTHORIZED, t, "login.passkey_failed");
    };
    let user = match state.store.user_by_id(&challenge.user_id).await {
        Ok(user) => user.filter(|u| usable(u, now)),
        Err(e) => return json_failed(&e),
    };
    let Some(user) = user else {
        state.limiter.fail(address, now);
        return json_error(StatusCode::UNAUTHORIZED, t, "login.passkey_failed");
    };
    let finished = verify_assertion(&state, party, &challenge, &user, &bytes).await;
    let (record, passkey_json) = match finished {
        Ok(Some(pair)) => pair,
        Ok(None) => return failure(&state, address, &user, t, now).await,
        Err(e) => return json_failed(&e),
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
        detail: serde_json::json!({
            "address": address.to_string(),
            "second_factor": "passkey",
            "passkey": record.label,
            "credential_id": record.credential_id,
        }),
    };
    match state
        .store
        .passkey_sign_in(session, &record.credential_id, &passkey_json, event, now)
        .await
    {
        Ok(true) => {}
        Ok(false) => return failure(&state, address, &user, t, now).await,
        Err(e) => return json_failed(&e),
    }
    let mut response = json(StatusCode::OK, &serde_json::json!({ "redirect": "/" }));
    response
        .headers_mut()
        .append(header::SET_COOKIE, set_cookie(SESSION_COOKIE, &id, None));
    response
}

/// The used passkey and its state after this use, or None when the assertion is refused
/// (malformed, wrong challenge or origin, not one of the account's credentials, bad
/// signature, no user verification).
async fn verify_assertion(
    state: &WebState,
    party: &PasskeyParty,
    challenge: &PasskeyChallenge,
    user: &UserRecord,
    bytes: &Bytes,
) -> Result<Option<(PasskeyRecord, String)>, StoreError> {
    let Some(form) = body::<SignInFinish>(bytes) else {
        return Ok(None);
    };
    let (Ok(credential), Ok(ceremony)) = (
        serde_json::from_value::<PublicKeyCredential>(form.credential),
        serde_json::from_str::<PasskeyAuthentication>(&challenge.state_json),
    ) else {
        return Ok(None);
    };
    let result = match party
        .webauthn()
        .finish_passkey_authentication(&credential, &ceremony)
    {
        Ok(result) if result.user_verified() => result,
        Ok(_) => return Ok(None),
        Err(error) => {
            tracing::info!(%error, user = %user.email, "passkey assertion refused");
            return Ok(None);
        }
    };
    let records = state.store.passkeys(&user.user_id).await?;
    let matching = parsed(&records)
        .into_iter()
        .find(|(_, key)| key.cred_id() == result.cred_id());
    let Some((record, mut key)) = matching else {
        return Ok(None);
    };
    // Counter and backup state as the authenticator reports them now (WebAuthn §7.2 steps
    // 21-22: webauthn-rs has refused a counter that went backwards).
    key.update_credential(&result);
    let Ok(passkey_json) = serde_json::to_string(&key) else {
        return Ok(None);
    };
    Ok(Some((record, passkey_json)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_relying_party_is_the_public_urls_host_and_an_ip_address_is_refused_when_asked_for() {
        let party = PasskeyParty::from_settings("https://tillsyn.kommun.se/", None)
            .unwrap()
            .unwrap();
        assert_eq!(party.rp_id, "tillsyn.kommun.se");
        let allowed = party.webauthn().get_allowed_origins();
        assert_eq!(allowed.len(), 1);
        assert_eq!(allowed[0].as_str(), "https://tillsyn.kommun.se/");
        // The default public URL (an IP address): off unless asked for, then refused.
        assert!(
            PasskeyParty::from_settings("https://127.0.0.1:8443", None)
                .unwrap()
                .is_none()
        );
        let refused = PasskeyParty::from_settings("https://127.0.0.1:8443", Some(true))
            .err()
            .unwrap();
        assert!(
            refused.contains("web.public_url") && refused.contains("IP address"),
            "{refused}"
        );
        assert!(
            PasskeyParty::from_settings("https://[::1]:8443", Some(true)).is_err(),
            "IPv6 too"
        );
        assert!(
            PasskeyParty::from_settings("https://tillsyn.kommun.se", Some(false))
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn user_handles_are_the_account_uuid_or_a_stable_digest() {
        let id = "0190f1c2-7d3e-7a3b-9f00-123456789abc";
        assert_eq!(user_handle(id).to_string(), id);
        assert_eq!(user_handle("u1"), user_handle("u1"));
        assert_ne!(user_handle("u1"), user_handle("u2"));
    }
}
