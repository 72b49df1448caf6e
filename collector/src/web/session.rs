//! Who is asking: the session cookie (`__Host-` prefixed, Secure, HttpOnly, SameSite=Strict,
//! only its SHA-256 stored), idle and absolute timeouts, the CSRF check every POST passes
//! before any handler runs, the language choice, and the security headers of every response.

use std::net::{IpAddr, SocketAddr};

use axum::body::Body;
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};

use super::auth::{same, sha256_hex};
use super::i18n::Lang;
use super::{WebState, pages};
use crate::server::now_ms;
use crate::store::{Scope, SessionRecord, UserRecord};

/// The session cookie.
pub const SESSION_COOKIE: &str = "__Host-tillsyn-session";
/// The pre-session cookie whose value the sign-in and enrolment forms must echo (CSRF before
/// there is a session).
pub const PRE_COOKIE: &str = "__Host-tillsyn-pre";
/// The language cookie.
pub const LANG_COOKIE: &str = "__Host-tillsyn-lang";
/// Largest form body accepted (bytes).
pub const MAX_FORM_BYTES: usize = 64 * 1024;
/// Largest `multipart/form-data` body (the register upload), accepted only from a signed-in
/// person: a 10,000-system register is about 2 MiB.
pub const MAX_UPLOAD_BYTES: usize = 16 * 1024 * 1024;
/// The policy of every page: no script, styles and images only from this origin. The pages
/// that run one of the embedded scripts (htmx on the filtered lists, webauthn.js on the
/// sign-in and security pages) widen it by [`SCRIPT_SOURCES`] through [`with_scripts`].
pub const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
                       frame-ancestors 'none'; base-uri 'none'";

/// What [`with_scripts`] adds for the pages that run an embedded script: this origin's
/// scripts, and requests back to it (webauthn.js posts the ceremony's JSON, htmx fetches the
/// results). Still no inline script and no `eval`.
pub const SCRIPT_SOURCES: &str = "script-src 'self'; connect-src 'self'; ";

/// `policy` with [`SCRIPT_SOURCES`] added after its `default-src 'none'`.
pub fn with_scripts(policy: &str) -> String {
    policy.replacen(
        "default-src 'none'; ",
        &format!("default-src 'none'; {SCRIPT_SOURCES}"),
        1,
    )
}

/// Widens the page's policy (the one it set, else [`CSP`]) by [`SCRIPT_SOURCES`].
pub fn script_csp(response: &mut Response) {
    let base = response
        .headers()
        .get(header::CONTENT_SECURITY_POLICY)
        .and_then(|v| v.to_str().ok())
        .unwrap_or(CSP)
        .to_string();
    if let Ok(value) = HeaderValue::from_str(&with_scripts(&base)) {
        response
            .headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, value);
    }
}

/// A role of DESIGN.md §6.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Informationssäkerhetssamordnare: everything, approves acceptances.
    Coordinator,
    /// Systemägare / informationsägare: their systems.
    Owner,
    /// Systemförvaltare: the systems they administer.
    Administrator,
    /// Audit: everything, read-only.
    Auditor,
    /// Management: aggregates only.
    Management,
}

impl Role {
    /// All roles by their stored names.
    pub const ALL: [(&'static str, Role); 5] = [
        ("coordinator", Role::Coordinator),
        ("owner", Role::Owner),
        ("administrator", Role::Administrator),
        ("auditor", Role::Auditor),
        ("management", Role::Management),
    ];

    /// From the stored name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.iter().find(|(n, _)| *n == name).map(|(_, r)| *r)
    }

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, r)| *r == self)
            .map_or("owner", |(n, _)| n)
    }

    /// Which systems this role sees for a person with `email`.
    pub fn scope(self, email: &str) -> Scope {
        match self {
            Self::Coordinator | Self::Auditor => Scope::All,
            Self::Owner => Scope::Owner(email.to_string()),
            Self::Administrator => Scope::Administrator(email.to_string()),
            Self::Management => Scope::Nothing,
        }
    }
}

/// A signed-in person, put in the request by [`guard`].
#[derive(Clone, Debug)]
pub struct Person {
    /// The account.
    pub user: UserRecord,
    /// The session.
    pub session: SessionRecord,
    /// The role.
    pub role: Role,
}

impl Person {
    /// What this person may see.
    pub fn scope(&self) -> Scope {
        self.role.scope(&self.user.email)
    }

    /// The identity written to the audit log: `local:` + e-mail, or `oidc:` + issuer + `#` +
    /// the provider's subject.
    pub fn actor(&self) -> String {
        match &self.user.oidc_subject {
            Some(subject) => format!("oidc:{subject}"),
            None => format!("local:{}", self.user.email),
        }
    }
}

/// Signed-in pages take a [`Person`]; without a valid session they redirect to the sign-in.
impl<S: Send + Sync> FromRequestParts<S> for Person {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Person>()
            .cloned()
            .ok_or_else(|| Redirect::to("/login").into_response())
    }
}

/// The client address (for the per-address limiter); unspecified when not over a socket.
#[derive(Clone, Copy, Debug)]
pub struct Peer(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Peer(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map_or(IpAddr::from([0, 0, 0, 0]), |c| c.0.ip()),
        ))
    }
}

/// The language of this request.
#[derive(Clone, Copy, Debug)]
pub struct Language(pub Lang);

impl<S: Send + Sync> FromRequestParts<S> for Language {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<Language>()
            .copied()
            .unwrap_or(Language(Lang::Sv)))
    }
}

/// The value of cookie `name`.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A `Set-Cookie` value with the flags every cookie of ours carries.
pub fn set_cookie(name: &str, value: &str, max_age: Option<i64>) -> HeaderValue {
    let age = max_age
        .map(|s| format!("; Max-Age={s}"))
        .unwrap_or_default();
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; Secure; HttpOnly; SameSite=Strict{age}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("invalid=1; Path=/; Secure; HttpOnly"))
}

/// Runs before every handler: resolves the session, refuses a POST whose CSRF token is
/// missing or wrong, picks the language, and sets the security headers.
pub async fn guard(State(state): State<WebState>, request: Request, next: Next) -> Response {
    let (mut parts, body) = request.into_parts();
    let now = now_ms();
    let mut person = None;
    if let Some(id) = cookie(&parts.headers, SESSION_COOKIE) {
        match state
            .store
            .session(
                &sha256_hex(id),
                now - state.settings.session_idle_ms,
                now - state.settings.session_absolute_ms,
                now,
            )
            .await
        {
            Ok(Some((session, user))) => {
                if let Some(role) = Role::parse(&user.role) {
                    person = Some(Person {
                        user,
                        session,
                        role,
                    });
                }
            }
            Ok(None) => {}
            Err(error) => {
                tracing::error!(%error, "session look-up failed");
                return StatusCode::INTERNAL_SERVER_ERROR.into_response();
            }
        }
    }
    let query_lang = parts
        .uri
        .query()
        .and_then(|q| q.split('&').find_map(|p| p.strip_prefix("lang=")))
        .map(Lang::parse);
    let lang = query_lang
        .or_else(|| cookie(&parts.headers, LANG_COOKIE).map(Lang::parse))
        .unwrap_or_default();
    parts.extensions.insert(Language(lang));

    let body = if parts.method == Method::POST {
        match checked_body(&parts, body, person.as_ref(), lang).await {
            Ok(body) => body,
            Err(refused) => return refused,
        }
    } else {
        body
    };
    if let Some(person) = person {
        parts.extensions.insert(person);
    }
    let mut response = next.run(Request::from_parts(parts, body)).await;
    let headers = response.headers_mut();
    // A page may widen `form-action` for itself (the sign-in page, towards the provider).
    headers
        .entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(CSP));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        header::STRICT_TRANSPORT_SECURITY,
        HeaderValue::from_static("max-age=31536000"),
    );
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    if let Some(lang) = query_lang {
        headers.append(
            header::SET_COOKIE,
            set_cookie(LANG_COOKIE, lang.code(), Some(365 * 86_400)),
        );
    }
    response
}

/// The pairs of an `application/x-www-form-urlencoded` body (bad encodings give no pairs).
/// A POST's body, buffered once its CSRF token (urlencoded, `multipart/form-data` or JSON field
/// `csrf`) matches the session's, or the pre-session cookie's before sign-in.
async fn checked_body(
    parts: &Parts,
    body: Body,
    person: Option<&Person>,
    lang: Lang,
) -> Result<Body, Response> {
    let boundary = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| multer::parse_boundary(v).ok());
    let limit = if boundary.is_some() && person.is_some() {
        MAX_UPLOAD_BYTES
    } else {
        MAX_FORM_BYTES
    };
    let Ok(bytes) = axum::body::to_bytes(body, limit).await else {
        return Err(pages::status_page(
            StatusCode::PAYLOAD_TOO_LARGE,
            lang,
            "error.too_large",
        ));
    };
    let json = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let sent = match &boundary {
        Some(boundary) => multipart_field(&bytes, boundary, "csrf").await,
        // The passkey ceremonies (`webauthn.js`) post JSON with the token as field `csrf`.
        None if json => serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| v.get("csrf").and_then(|c| c.as_str()).map(str::to_string)),
        None => serde_urlencoded_pairs(&bytes)
            .into_iter()
            .find(|(k, _)| k == "csrf")
            .map(|(_, v)| v),
    };
    let sent = sent.as_deref();
    let expected = match person {
        Some(p) => Some(p.session.csrf_token.clone()),
        None => cookie(&parts.headers, PRE_COOKIE).map(str::to_string),
    };
    let valid =
        matches!((sent, expected.as_deref()), (Some(s), Some(e)) if !e.is_empty() && same(s, e));
    if !valid {
        tracing::warn!(path = %parts.uri.path(), "form refused: CSRF token missing or wrong");
        return Err(pages::status_page(
            StatusCode::FORBIDDEN,
            lang,
            "error.csrf",
        ));
    }
    Ok(Body::from(bytes))
}

/// The text of the first field called `name` in a buffered `multipart/form-data` body.
async fn multipart_field(bytes: &axum::body::Bytes, boundary: &str, name: &str) -> Option<String> {
    let chunk = bytes.clone();
    let stream =
        futures_util::stream::once(async move { Ok::<_, std::convert::Infallible>(chunk) });
    let mut multipart = multer::Multipart::new(stream, boundary);
    while let Ok(Some(field)) = multipart.next_field().await {
        if field.name() == Some(name) {
            return field.text().await.ok();
        }
    }
    None
}

fn serde_urlencoded_pairs(bytes: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(bytes).into_owned().collect()
}
