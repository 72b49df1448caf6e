//! Sign-in through the municipality's OpenID provider (`[web.oidc]`): authorization code flow
//! with PKCE (S256), a random `state` bound to this browser by a short-lived cookie and a
//! random `nonce`, both checked; the ID token's signature is verified against the provider's
//! JWKS (from discovery), and its issuer, audience and expiry, by the `openidconnect` crate.
//! The person's identity is the provider's subject, their e-mail the `email` claim, their role
//! the configured group mapping of the groups claim. The provider is trusted for the second
//! factor; with `require_amr` / `require_acr` the ID token must say it was used, or sign-in is
//! refused. Refusals after the ID token verified are audited (`web.oidc_refused`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreAuthenticationFlow, CoreErrorResponseType,
    CoreGenderClaim, CoreJsonWebKey, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm,
    CoreProviderMetadata, CoreRevocableToken, CoreRevocationErrorResponse,
    CoreTokenIntrospectionResponse, CoreTokenType,
};
use openidconnect::{
    AdditionalClaims, AuthorizationCode, Client, ClientId, ClientSecret, CsrfToken,
    EmptyExtraTokenFields, EndpointMaybeSet, EndpointNotSet, EndpointSet, IdTokenClaims,
    IdTokenFields, IssuerUrl, Nonce, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope,
    StandardErrorResponse, StandardTokenResponse, TokenResponse as _,
};
use serde::{Deserialize, Serialize};

use super::WebState;
use super::auth::{random_hex, same, sha256_hex};
use super::i18n::Messages;
use super::oidc_http::{self, IdpHttpError};
use super::pages::{Nav, failed, message, render};
use super::session::{Language, Peer, Role, SESSION_COOKIE, cookie, set_cookie};
use super::settings::OidcSettings;
use super::tls::TlsError;
use crate::server::now_ms;
use crate::store::{AuditEvent, OidcIdentity, OidcSignIn, SessionRecord};

/// The cookie binding a started sign-in to this browser. SameSite=Lax, not Strict: the
/// provider's redirect back is a cross-site navigation, which Strict cookies do not follow.
pub const FLOW_COOKIE: &str = "__Host-tillsyn-oidc";
/// How long a started sign-in may take at the provider (ms).
const FLOW_MS: i64 = 10 * 60_000;
/// Started sign-ins kept at once; beyond this new ones are refused until some expire.
const MAX_FLOWS: usize = 10_000;
/// Provider metadata and keys are fetched again after this long (ms).
const METADATA_MS: i64 = 60 * 60_000;
/// When a person is in groups mapped to different roles, the first of these wins.
const ROLE_PRECEDENCE: [Role; 5] = [
    Role::Coordinator,
    Role::Auditor,
    Role::Owner,
    Role::Administrator,
    Role::Management,
];

/// Every claim of the ID token besides the standard ones; the groups claim is read from here.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct OtherClaims {
    #[serde(flatten)]
    claims: serde_json::Map<String, serde_json::Value>,
}
impl AdditionalClaims for OtherClaims {}

type IdTokenClaimsOf = IdTokenClaims<OtherClaims, CoreGenderClaim>;
type TokenResponseOf = StandardTokenResponse<
    IdTokenFields<
        OtherClaims,
        EmptyExtraTokenFields,
        CoreGenderClaim,
        CoreJweContentEncryptionAlgorithm,
        CoreJwsSigningAlgorithm,
    >,
    CoreTokenType,
>;
type RelyingParty = Client<
    OtherClaims,
    CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    TokenResponseOf,
    CoreTokenIntrospectionResponse,
    CoreRevocableToken,
    CoreRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// Why `[web.oidc]` could not be put to use at start-up.
#[derive(Debug, thiserror::Error)]
pub enum OidcSetupError {
    /// The client secret file.
    #[error("web.oidc.client_secret_file {path}: {problem}")]
    Secret {
        /// The file.
        path: String,
        /// What is wrong.
        problem: String,
    },
    /// The CA bundle.
    #[error("web.oidc.ca_file: {0}")]
    Ca(#[from] TlsError),
    /// The issuer or the redirect URL derived from `web.public_url`.
    #[error("web.oidc: {0}")]
    Url(String),
}

/// A sign-in started at the provider, waiting for its callback.
struct Flow {
    state: String,
    nonce: Nonce,
    verifier: PkceCodeVerifier,
    started: i64,
}

/// The relying party: settings, the provider's trust anchors, cached discovery, started flows.
pub struct Oidc {
    settings: OidcSettings,
    issuer: IssuerUrl,
    redirect: RedirectUrl,
    secret: ClientSecret,
    tls: Arc<rustls::ClientConfig>,
    metadata: tokio::sync::Mutex<Option<(i64, CoreProviderMetadata)>>,
    flows: Mutex<HashMap<String, Flow>>,
}

impl Oidc {
    /// Reads the secret and the CA bundle; the provider itself is contacted at the first
    /// sign-in (a provider that is down does not keep the collector from starting).
    pub fn new(settings: &OidcSettings, public_url: &str) -> Result<Self, OidcSetupError> {
        let secret = std::fs::read_to_string(&settings.client_secret_file).map_err(|e| {
            OidcSetupError::Secret {
                path: settings.client_secret_file.display().to_string(),
                problem: e.to_string(),
            }
        })?;
        let secret = secret.trim();
        if secret.is_empty() {
            return Err(OidcSetupError::Secret {
                path: settings.client_secret_file.display().to_string(),
                problem: "the file is empty".into(),
            });
        }
        let tls = oidc_http::client_config(&settings.ca_file)?;
        let issuer = IssuerUrl::new(settings.issuer.clone())
            .map_err(|e| OidcSetupError::Url(format!("issuer {:?}: {e}", settings.issuer)))?;
        let redirect = RedirectUrl::new(format!("{public_url}/oidc/callback"))
            .map_err(|e| OidcSetupError::Url(format!("web.public_url {public_url:?}: {e}")))?;
        Ok(Self {
            settings: settings.clone(),
            issuer,
            redirect,
            secret: ClientSecret::new(secret.to_string()),
            tls,
            metadata: tokio::sync::Mutex::new(None),
            flows: Mutex::new(HashMap::new()),
        })
    }

    /// The redirect URI to register at the provider.
    pub fn redirect_uri(&self) -> &str {
        self.redirect.as_str()
    }

    /// The policy of the sign-in page: as every page's, except that its form may lead to the
    /// provider (`form-action` also governs the redirect that answers a form). Assumes the
    /// authorization endpoint has the issuer's origin, as providers publish it.
    pub fn login_page_csp(&self) -> String {
        let origin = self.issuer.url().origin().ascii_serialization();
        super::session::CSP.replace(
            "form-action 'self'",
            &format!("form-action 'self' {origin}"),
        )
    }

    async fn client(&self) -> Result<RelyingParty, String> {
        let now = now_ms();
        let mut cached = self.metadata.lock().await;
        if let Some((fetched, metadata)) = cached.as_ref()
            && now - fetched < METADATA_MS
        {
            return Ok(self.client_from(metadata.clone()));
        }
        let tls = self.tls.clone();
        let http = move |request| oidc_http::send(tls.clone(), request);
        let metadata = CoreProviderMetadata::discover_async(self.issuer.clone(), &http)
            .await
            .map_err(|e| format!("discovery at {}: {}", self.issuer.as_str(), chain(&e)))?;
        *cached = Some((now, metadata.clone()));
        Ok(self.client_from(metadata))
    }

    fn client_from(&self, metadata: CoreProviderMetadata) -> RelyingParty {
        RelyingParty::from_provider_metadata(
            metadata,
            ClientId::new(self.settings.client_id.clone()),
            Some(self.secret.clone()),
        )
        .set_redirect_uri(self.redirect.clone())
    }

    /// Forgets the cached discovery (the provider may have rotated its keys).
    async fn forget_metadata(&self) {
        *self.metadata.lock().await = None;
    }

    fn remember(&self, id: String, flow: Flow) -> bool {
        let Ok(mut flows) = self.flows.lock() else {
            return false;
        };
        let now = flow.started;
        flows.retain(|_, f| now - f.started < FLOW_MS);
        if flows.len() >= MAX_FLOWS {
            return false;
        }
        flows.insert(id, flow);
        true
    }

    fn take(&self, id: &str, now: i64) -> Option<Flow> {
        let flow = self.flows.lock().ok()?.remove(id)?;
        (now - flow.started < FLOW_MS).then_some(flow)
    }
}

fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// `POST /oidc/login` (CSRF-checked with the pre-session token by the guard): starts a flow
/// and sends the browser to the provider.
pub async fn start(State(state): State<WebState>, Language(lang): Language) -> Response {
    let t = lang.messages();
    let Some(oidc) = state.oidc.clone() else {
        return message(
            StatusCode::NOT_FOUND,
            t,
            None,
            "error.title",
            "error.not_found",
        );
    };
    let client = match oidc.client().await {
        Ok(client) => client,
        Err(error) => {
            tracing::warn!(%error, "OIDC provider unavailable");
            return message(
                StatusCode::BAD_GATEWAY,
                t,
                None,
                "error.title",
                "oidc.unavailable",
            );
        }
    };
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut request = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .set_pkce_challenge(challenge);
    for scope in &oidc.settings.scopes {
        request = request.add_scope(Scope::new(scope.clone()));
    }
    if !oidc.settings.require_acr.is_empty() {
        request = request.add_extra_param("acr_values", oidc.settings.require_acr.join(" "));
    }
    let (url, csrf_state, nonce) = request.url();
    let id = random_hex(32);
    let flow = Flow {
        state: csrf_state.secret().clone(),
        nonce,
        verifier,
        started: now_ms(),
    };
    if !oidc.remember(id.clone(), flow) {
        return message(
            StatusCode::TOO_MANY_REQUESTS,
            t,
            None,
            "error.title",
            "login.too_many",
        );
    }
    let mut response = Redirect::to(url.as_str()).into_response();
    if let Ok(value) = header::HeaderValue::from_str(&format!(
        "{FLOW_COOKIE}={id}; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age={}",
        FLOW_MS / 1000
    )) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// Query of the provider's redirect back.
#[derive(Deserialize)]
pub struct CallbackQuery {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "oidc_done.html")]
struct DonePage {
    t: Messages,
    nav: Option<Nav>,
}

/// Who the verified ID token says signed in, or why they may not.
#[derive(Debug, PartialEq, Eq)]
pub enum Admission {
    /// Let in with this identity.
    Admitted {
        /// Issuer + `#` + `sub`.
        subject: String,
        /// Lowercase e-mail.
        email: String,
        /// Display name.
        name: String,
        /// Role from the groups.
        role: Role,
    },
    /// Refused; the message key to show and the reason for the audit log.
    Refused {
        /// Message key.
        key: &'static str,
        /// Audited reason.
        reason: String,
        /// Issuer + `#` + `sub`.
        subject: String,
    },
}

/// Applies `[web.oidc]` to the claims of an ID token whose signature, issuer, audience,
/// expiry and nonce have been verified.
pub fn admit(settings: &OidcSettings, claims: &IdTokenClaimsOf) -> Admission {
    let subject = format!("{}#{}", claims.issuer().as_str(), claims.subject().as_str());
    let refuse = |key: &'static str, reason: String| Admission::Refused {
        key,
        reason,
        subject: subject.clone(),
    };
    let amr: Vec<&str> = claims
        .auth_method_refs()
        .map(|list| list.iter().map(|m| m.as_str()).collect())
        .unwrap_or_default();
    if !settings.require_amr.is_empty()
        && !settings
            .require_amr
            .iter()
            .any(|r| amr.contains(&r.as_str()))
    {
        return refuse(
            "oidc.no_mfa",
            format!(
                "amr {amr:?} holds none of require_amr {:?}",
                settings.require_amr
            ),
        );
    }
    let acr = claims.auth_context_ref().map(|a| a.as_str().to_string());
    if !settings.require_acr.is_empty()
        && !acr
            .as_deref()
            .is_some_and(|a| settings.require_acr.iter().any(|r| r == a))
    {
        return refuse(
            "oidc.no_mfa",
            format!(
                "acr {acr:?} is none of require_acr {:?}",
                settings.require_acr
            ),
        );
    }
    let Some(email) = claims.email().map(|e| e.as_str().trim().to_lowercase()) else {
        return refuse("oidc.refused", "the ID token has no email claim".into());
    };
    if claims.email_verified() == Some(false) || email.len() > 320 || !email.contains('@') {
        return refuse(
            "oidc.refused",
            format!("email {email:?} is not verified or not an address"),
        );
    }
    let groups: Vec<String> = match claims
        .additional_claims()
        .claims
        .get(&settings.groups_claim)
    {
        Some(serde_json::Value::Array(values)) => values
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        Some(serde_json::Value::String(one)) => vec![one.clone()],
        _ => Vec::new(),
    };
    let roles: Vec<Role> = groups
        .iter()
        .filter_map(|g| settings.roles.get(g))
        .filter_map(|r| Role::parse(r))
        .collect();
    let Some(role) = ROLE_PRECEDENCE.into_iter().find(|r| roles.contains(r)) else {
        return refuse(
            "oidc.no_role",
            format!(
                "no group of {groups:?} (claim {:?}) is mapped to a role",
                settings.groups_claim
            ),
        );
    };
    let name = claims
        .name()
        .and_then(|n| n.get(None))
        .map_or_else(|| email.clone(), |n| n.as_str().to_string());
    Admission::Admitted {
        subject,
        email,
        name,
        role,
    }
}

/// `GET /oidc/callback`: the provider's redirect back with a code.
pub async fn callback(
    State(state): State<WebState>,
    Language(lang): Language,
    Peer(address): Peer,
    headers: HeaderMap,
    Query(query): Query<CallbackQuery>,
) -> Response {
    let t = lang.messages();
    let now = now_ms();
    let refuse = |status: StatusCode, key: &str| {
        let mut response = message(status, t, None, "error.title", key);
        response
            .headers_mut()
            .append(header::SET_COOKIE, set_cookie_lax_expired());
        response
    };
    let Some(oidc) = state.oidc.clone() else {
        return refuse(StatusCode::NOT_FOUND, "error.not_found");
    };
    if !state.limiter.allows(
        address,
        state.settings.address_failures,
        state.settings.lock_ms,
        now,
    ) {
        return refuse(StatusCode::TOO_MANY_REQUESTS, "login.too_many");
    }
    let fail = |why: &str| {
        tracing::warn!(%address, why, "OIDC sign-in refused");
        state.limiter.fail(address, now);
        refuse(StatusCode::BAD_REQUEST, "oidc.failed")
    };
    // The flow is spent whatever happens next: a state, nonce or code works once.
    let Some(flow) = cookie(&headers, FLOW_COOKIE).and_then(|id| oidc.take(id, now)) else {
        return fail("no started sign-in for this browser (flow cookie missing or expired)");
    };
    if let Some(error) = &query.error {
        return fail(&format!("the provider answered error={error:?}"));
    }
    let (Some(code), Some(returned_state)) = (&query.code, &query.state) else {
        return fail("code or state missing");
    };
    if !same(returned_state, &flow.state) {
        return fail("state does not match the one sent");
    }
    let client = match oidc.client().await {
        Ok(client) => client,
        Err(error) => {
            tracing::warn!(%error, "OIDC provider unavailable");
            return refuse(StatusCode::BAD_GATEWAY, "oidc.unavailable");
        }
    };
    let tls = oidc.tls.clone();
    let http = move |request| oidc_http::send(tls.clone(), request);
    let exchange = match client.exchange_code(AuthorizationCode::new(code.clone())) {
        Ok(exchange) => exchange,
        Err(e) => return fail(&format!("provider has no token endpoint: {e}")),
    };
    let tokens = match exchange
        .set_pkce_verifier(flow.verifier)
        .request_async(&http)
        .await
    {
        Ok(tokens) => tokens,
        Err(e) => return fail(&format!("token request: {}", chain_token(&e))),
    };
    let Some(id_token) = tokens.id_token() else {
        return fail("token response without an ID token");
    };
    let claims = match id_token.claims(&client.id_token_verifier(), &flow.nonce) {
        Ok(claims) => claims.clone(),
        Err(e) => {
            oidc.forget_metadata().await;
            return fail(&format!("ID token refused: {}", chain(&e)));
        }
    };
    match admit(&oidc.settings, &claims) {
        Admission::Refused {
            key,
            reason,
            subject,
        } => {
            let event = AuditEvent {
                actor: format!("oidc:{subject}"),
                action: "web.oidc_refused".into(),
                subject: subject.clone(),
                detail: serde_json::json!({ "address": address.to_string(), "reason": reason }),
            };
            tracing::warn!(%address, %subject, %reason, "OIDC sign-in refused");
            if let Err(e) = state.store.record_audit(event, now).await {
                return failed(&e);
            }
            refuse(StatusCode::FORBIDDEN, key)
        }
        Admission::Admitted {
            subject,
            email,
            name,
            role,
        } => sign_in(&state, t, address, subject, email, name, role, now).await,
    }
}

fn chain_token(
    error: &openidconnect::RequestTokenError<
        IdpHttpError,
        StandardErrorResponse<CoreErrorResponseType>,
    >,
) -> String {
    chain(error)
}

fn set_cookie_lax_expired() -> header::HeaderValue {
    header::HeaderValue::from_static(
        "__Host-tillsyn-oidc=; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=0",
    )
}

#[allow(clippy::too_many_arguments)]
async fn sign_in(
    state: &WebState,
    t: Messages,
    address: std::net::IpAddr,
    subject: String,
    email: String,
    name: String,
    role: Role,
    now: i64,
) -> Response {
    let id = random_hex(32);
    let session = SessionRecord {
        session_hash: sha256_hex(&id),
        user_id: String::new(),
        csrf_token: random_hex(32),
        created_at: now,
        last_seen_at: now,
    };
    let event = AuditEvent {
        actor: format!("oidc:{subject}"),
        action: "web.sign_in".into(),
        subject: String::new(),
        detail: serde_json::json!({
            "address": address.to_string(),
            "method": "oidc",
            "email": email,
            "role": role.as_str(),
        }),
    };
    let identity = OidcIdentity {
        new_user_id: uuid::Uuid::now_v7().to_string(),
        subject: subject.clone(),
        email,
        name,
        role: role.as_str().to_string(),
    };
    let reason = match state
        .store
        .oidc_sign_in(identity, session, event, now)
        .await
    {
        Ok(OidcSignIn::Started(_)) => None,
        Ok(OidcSignIn::Disabled) => Some("the account is disabled"),
        Ok(OidcSignIn::EmailTaken) => Some("the e-mail belongs to another account"),
        Err(e) => return failed(&e),
    };
    if let Some(reason) = reason {
        tracing::warn!(%address, %subject, reason, "OIDC sign-in refused");
        let event = AuditEvent {
            actor: format!("oidc:{subject}"),
            action: "web.oidc_refused".into(),
            subject,
            detail: serde_json::json!({ "address": address.to_string(), "reason": reason }),
        };
        if let Err(e) = state.store.record_audit(event, now).await {
            return failed(&e);
        }
        let mut response = message(
            StatusCode::FORBIDDEN,
            t,
            None,
            "error.title",
            "oidc.refused",
        );
        response
            .headers_mut()
            .append(header::SET_COOKIE, set_cookie_lax_expired());
        return response;
    }
    // A page, not a redirect: the browser arrived here from the provider's site, and a
    // SameSite=Strict cookie set now is only sent on a navigation this origin starts.
    let mut response = (StatusCode::OK, render(&DonePage { t, nav: None })).into_response();
    let headers = response.headers_mut();
    headers.append(header::SET_COOKIE, set_cookie(SESSION_COOKIE, &id, None));
    headers.append(header::SET_COOKIE, set_cookie_lax_expired());
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> OidcSettings {
        OidcSettings {
            issuer: "https://idp.example".into(),
            client_id: "tillsyn".into(),
            client_secret_file: "/s".into(),
            ca_file: "/ca".into(),
            scopes: vec![],
            groups_claim: "roles".into(),
            roles: [
                ("g-owner".to_string(), "owner".to_string()),
                ("g-coord".to_string(), "coordinator".to_string()),
            ]
            .into(),
            require_amr: vec!["mfa".into(), "hwk".into()],
            require_acr: vec![],
        }
    }

    fn claims(extra: &serde_json::Value) -> IdTokenClaimsOf {
        let mut token = serde_json::json!({
            "iss": "https://idp.example", "sub": "u1", "aud": "tillsyn",
            "exp": 4_000_000_000_i64, "iat": 1_700_000_000_i64,
            "email": "Anna@Kommun.se", "amr": ["pwd", "mfa"], "roles": ["other", "g-owner"],
        });
        for (key, value) in extra.as_object().unwrap() {
            token[key] = value.clone();
        }
        serde_json::from_value(token).unwrap()
    }

    #[test]
    fn a_person_is_admitted_with_the_role_of_their_groups_and_a_lowercase_email() {
        let admitted = admit(&settings(), &claims(&serde_json::json!({})));
        assert_eq!(
            admitted,
            Admission::Admitted {
                subject: "https://idp.example#u1".into(),
                email: "anna@kommun.se".into(),
                name: "anna@kommun.se".into(),
                role: Role::Owner,
            }
        );
        // Two mapped groups: the coordinator's role wins; a single string counts as one group.
        let both = admit(
            &settings(),
            &claims(&serde_json::json!({ "roles": ["g-owner", "g-coord"] })),
        );
        assert!(
            matches!(
                both,
                Admission::Admitted {
                    role: Role::Coordinator,
                    ..
                }
            ),
            "{both:?}"
        );
        let one = admit(
            &settings(),
            &claims(&serde_json::json!({ "roles": "g-coord" })),
        );
        assert!(
            matches!(
                one,
                Admission::Admitted {
                    role: Role::Coordinator,
                    ..
                }
            ),
            "{one:?}"
        );
    }

    #[test]
    fn no_second_factor_no_mapped_group_or_an_unverified_email_is_refused() {
        let refused = |extra: serde_json::Value| match admit(&settings(), &claims(&extra)) {
            Admission::Refused { key, reason, .. } => (key, reason),
            admitted @ Admission::Admitted { .. } => panic!("admitted: {admitted:?}"),
        };
        assert_eq!(
            refused(serde_json::json!({ "amr": ["pwd"] })).0,
            "oidc.no_mfa"
        );
        let (key, reason) = refused(serde_json::json!({ "roles": ["other"] }));
        assert_eq!(key, "oidc.no_role");
        assert!(reason.contains("\"roles\""), "{reason}");
        assert_eq!(
            refused(serde_json::json!({ "email_verified": false })).0,
            "oidc.refused"
        );
        let mut acr = settings();
        acr.require_amr.clear();
        acr.require_acr = vec!["urn:kommun:loa3".into()];
        let token = claims(&serde_json::json!({ "acr": "urn:kommun:loa2" }));
        assert!(matches!(
            admit(&acr, &token),
            Admission::Refused {
                key: "oidc.no_mfa",
                ..
            }
        ));
        let token = claims(&serde_json::json!({ "acr": "urn:kommun:loa3" }));
        assert!(matches!(admit(&acr, &token), Admission::Admitted { .. }));
        // Without require_amr/require_acr the provider alone decides.
        let mut open = settings();
        open.require_amr.clear();
        let token = claims(&serde_json::json!({ "amr": ["pwd"] }));
        assert!(matches!(admit(&open, &token), Admission::Admitted { .. }));
    }
}
