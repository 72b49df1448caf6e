//! The owners' web interface (issue 13): HTTPS served by the collector itself, beside gRPC, in
//! the same process. Server-rendered askama pages (checked at compile time, HTML-escaped),
//! plain forms that work without JavaScript (vendored htmx only enhances the filter forms),
//! assets embedded in the binary, every string from a message catalogue. Front end only: it
//! parses, authorises and renders; isolation between owners is applied by the store's scoped
//! queries.
//!
//! # Layout
//! - [`settings`]: `[web]` in `collector.toml` (raw -> validated).
//! - [`tls`]: rustls (ring) configuration from the server certificate.
//! - [`auth`]: argon2 passwords, RFC 6238 TOTP, the per-address limiter.
//! - [`qr`]: the TOTP key's URI as an inline SVG QR code for the enrolment page.
//! - [`session`]: cookies, sessions and their timeouts, CSRF, roles, security headers.
//! - [`i18n`]: the shared message catalogues (`crate::i18n`), re-exported for the templates.
//! - [`signin`]: enrolment and sign-in pages.
//! - [`passkey`]: the WebAuthn relying party and the passkey sign-in ceremony.
//! - [`security`]: a person's security page: adding and removing passkeys.
//! - [`oidc`]: sign-in through the municipality's OpenID provider; [`oidc_http`] its client.
//! - [`pages`]: My systems, the system page, the asset page.
//! - [`workflows`]: risk acceptance (four eyes), attestation, yearly classification review.
//! - [`users`]: `user add|list|disable` behind the CLI.
//! - [`admin`]: the coordinator's account pages (list, create, disable).
//! - [`coordination`]: register import from the browser and the management review page.
//! - [`view`]: dates in the configured zone, labels of severities and states.
//! - [`filter`]: the list pages' filters, parsed from the query string in one place.
//! - [`findings`]: the findings across a person's systems, filtered, and its CSV.
//! - [`htmx`]: the vendored htmx, its CSP, whole page or results fragment.

pub mod admin;
pub mod auth;
pub mod coordination;
pub mod filter;
pub mod findings;
pub mod htmx;
pub use crate::i18n;
pub mod oidc;
pub mod oidc_http;
pub mod pages;
pub mod passkey;
pub mod qr;
pub mod security;
pub mod session;
pub mod settings;
pub mod signin;
pub mod tls;
pub mod users;
pub mod view;
pub mod workflows;

/// The same tests on PostgreSQL (`tests.rs` picks the store by its module's name).
#[cfg(test)]
#[path = "tests.rs"]
#[allow(clippy::duplicate_mod)] // deliberately: one suite, two back-ends
mod postgres_tests;
#[cfg(test)]
mod soft_authenticator;
#[cfg(test)]
mod tests;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::routing::{get, post};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tower::ServiceExt as _;

use crate::rules::RuleConfig;
use crate::store::Store;

pub use settings::{RawWebConfig, WebSettings};

/// Why the web listener could not start.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// `[web]` or `--web` is invalid; each problem names its key.
    #[error("web interface: {}", .0.join("; "))]
    Settings(Vec<String>),
    /// Certificate or key.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// `[web.oidc]` could not be put to use.
    #[error(transparent)]
    Oidc(#[from] oidc::OidcSetupError),
    /// The address could not be bound.
    #[error("web interface: binding {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
}

/// A running web listener.
pub struct Running {
    /// The bound address.
    pub addr: SocketAddr,
    /// The validated settings it runs with.
    pub settings: Arc<WebSettings>,
    /// The accept loop; abort it to stop.
    pub task: tokio::task::JoinHandle<()>,
}

/// The settings `serve` and `user add` use: `[web]` (or its defaults) with `listen`
/// overridden by `--web`.
pub fn settings_for(
    config: &crate::config::CollectorConfig,
    listen: Option<SocketAddr>,
) -> Result<WebSettings, WebError> {
    let mut raw = config.web.clone().unwrap_or_default();
    if let Some(addr) = listen {
        raw.listen = addr.to_string();
    }
    raw.validate().map_err(WebError::Settings)
}

/// Starts the web listener when `--web` was given or `[web]` is configured; `None` otherwise.
pub async fn start(
    dir: &crate::config::CollectorDir,
    store: Arc<dyn Store>,
    config: &crate::config::CollectorConfig,
    listen: Option<SocketAddr>,
) -> Result<Option<Running>, WebError> {
    if listen.is_none() && config.web.is_none() {
        return Ok(None);
    }
    let mut settings = settings_for(config, listen)?;
    let (cert, key) = settings
        .cert_key
        .clone()
        .unwrap_or_else(|| (dir.server_cert_path(), dir.server_key_path()));
    let tls = tls::server_config(&cert, &key)?;
    let listener = TcpListener::bind(settings.listen)
        .await
        .map_err(|source| WebError::Bind {
            addr: settings.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| WebError::Bind {
        addr: settings.listen,
        source,
    })?;
    if settings.public_url == format!("https://{}", settings.listen) {
        // Port 0 was asked for: the links must carry the port actually bound.
        settings.public_url = format!("https://{addr}");
    }
    let oidc = match &settings.oidc {
        Some(oidc) => {
            let relying_party = oidc::Oidc::new(oidc, &settings.public_url)?;
            if oidc.require_amr.is_empty() && oidc.require_acr.is_empty() {
                tracing::warn!(
                    "web.oidc: neither require_amr nor require_acr is set; the provider alone decides whether a second factor is asked for"
                );
            }
            Some(Arc::new(relying_party))
        }
        None => None,
    };
    // From the final public URL (the port bound above is part of the origin).
    let passkeys = passkey::PasskeyParty::from_settings(&settings.public_url, settings.passkeys)
        .map_err(|problem| WebError::Settings(vec![problem]))?
        .map(Arc::new);
    let settings = Arc::new(settings);
    let state = WebState {
        store,
        settings: settings.clone(),
        rules: config.rules.clone(),
        limiter: Arc::default(),
        oidc,
        passkeys,
    };
    let task = tokio::spawn(serve(listener, tls, router(state), std::future::pending()));
    Ok(Some(Running {
        addr,
        settings,
        task,
    }))
}

/// What every handler shares.
#[derive(Clone)]
pub struct WebState {
    /// Storage; every read for a person is scoped in its query.
    pub store: Arc<dyn Store>,
    /// Validated `[web]`.
    pub settings: Arc<WebSettings>,
    /// Rule thresholds (the review interval).
    pub rules: RuleConfig,
    /// Failed sign-ins per address.
    pub limiter: Arc<auth::AddressLimiter>,
    /// The OIDC relying party, when `[web.oidc]` is configured.
    pub oidc: Option<Arc<oidc::Oidc>>,
    /// The WebAuthn relying party, when passkeys are on (`[web] passkeys`, public URL).
    pub passkeys: Option<Arc<passkey::PasskeyParty>>,
}

/// Every route, behind [`session::guard`].
pub fn router(state: WebState) -> Router {
    Router::new()
        .route("/", get(pages::home))
        .route("/login", get(signin::login_page).post(signin::login))
        .route("/logout", post(signin::logout))
        .route("/enrol", get(signin::enrol_page).post(signin::enrol))
        .route("/login/passkey/start", post(passkey::sign_in_start))
        .route("/login/passkey/finish", post(passkey::sign_in_finish))
        .route("/security", get(security::page))
        .route("/security/passkeys/start", post(security::start))
        .route("/security/passkeys/finish", post(security::finish))
        .route("/security/passkeys/remove", post(security::remove))
        .route("/oidc/login", post(oidc::start))
        .route("/oidc/callback", get(oidc::callback))
        .route("/systems.csv", get(pages::systems_csv))
        .route("/audit.csv", get(pages::audit_csv))
        .route("/findings", get(findings::list))
        .route("/findings.csv", get(findings::csv))
        .route(
            "/register",
            get(coordination::register_page)
                .post(coordination::import)
                .layer(axum::extract::DefaultBodyLimit::max(
                    session::MAX_UPLOAD_BYTES,
                )),
        )
        .route("/report", get(coordination::report))
        .route("/systems/{id}", get(pages::system))
        .route("/systems/{id}/findings.csv", get(pages::findings_csv))
        .route("/assets/{id}", get(pages::asset))
        .route("/systems/{id}/review", post(workflows::review))
        .route("/systems/{id}/attest", post(workflows::attest))
        .route(
            "/findings/{id}/request-acceptance",
            post(workflows::request_acceptance),
        )
        .route("/approvals", get(workflows::approvals))
        .route("/approvals/{id}", post(workflows::decide))
        .route("/audit", get(pages::audit))
        .route("/users", get(admin::list).post(admin::create))
        .route("/users/disable", post(admin::disable))
        .route("/static/style.css", get(pages::stylesheet))
        .route("/static/htmx.min.js", get(htmx::script))
        .route("/static/webauthn.js", get(pages::webauthn_script))
        .fallback(pages::not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            session::guard,
        ))
        .with_state(state)
}

/// Serves HTTPS on an already bound `listener` until `shutdown` resolves. Each connection gets
/// 10 s for its TLS handshake and request headers.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    app: Router,
    shutdown: impl Future<Output = ()> + Send,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let (tcp, peer) = match accepted {
            Ok(pair) => pair,
            Err(error) => {
                tracing::warn!(%error, "web: accept failed");
                continue;
            }
        };
        let acceptor = acceptor.clone();
        let app = app.clone();
        tokio::spawn(async move {
            let timeout = std::time::Duration::from_secs(10);
            let stream = match tokio::time::timeout(timeout, acceptor.accept(tcp)).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(error)) => {
                    tracing::debug!(%peer, %error, "web: TLS handshake failed");
                    return;
                }
                Err(_) => return,
            };
            let service = hyper::service::service_fn(
                move |mut request: hyper::Request<hyper::body::Incoming>| {
                    request
                        .extensions_mut()
                        .insert(ConnectInfo::<SocketAddr>(peer));
                    app.clone().oneshot(request.map(axum::body::Body::new))
                },
            );
            let served = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(timeout)
                .serve_connection(TokioIo::new(stream), service)
                .await;
            if let Err(error) = served {
                tracing::debug!(%peer, %error, "web: connection ended with an error");
            }
        });
    }
}
