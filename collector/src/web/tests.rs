//! HTTP-level tests of the web interface against a real in-memory store, through the whole
//! router (guard, CSRF, sessions, scoped queries), without a socket. The TLS listener is
//! exercised by `serves_https_with_the_server_certificate`. The file is compiled twice
//! (web/mod.rs): as `tests` on SQLite in memory and as `postgres_tests` on a fresh
//! PostgreSQL database.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use axum::response::Response;
use http_body_util::BodyExt as _;
use rustls::pki_types::pem::PemObject as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tower::ServiceExt as _;

use super::auth::{self, totp_code};
use super::{RawWebConfig, WebState, router, users};
use crate::rules::RuleConfig;
use crate::server::now_ms;
use crate::store::{
    AuditEvent, ControlInput, DeviceInput, NewAgent, NewToken, ReportInput, SqliteStore, Store,
};

const REGISTER: &str = "System-ID;Namn;Systemägare;Systemägare e-post;Informationsägare;K;R;T;Klassad datum;Klassad av;Värdnamn;Nät\n\
journal;Patientjournal;Anna Ägare;anna@kommun.se;;3;3;2;2020-01-15;Samordnaren;journal-*;\n\
robot;Läkemedelsrobot;Bo Ek;bo@kommun.se;Anna Ägare <anna@kommun.se>;3;3;3;2026-02-01;Samordnaren;;10.40.4.0/24\n\
kameror;Kameror;Cecilia Ek;cecilia@kommun.se;;2;2;1;2026-02-01;IT;kamera-*;\n";

/// The fixture's public URL: the passkeys' origin, `tillsyn.test` their relying party id.
const ORIGIN: &str = "https://tillsyn.test:8443";

const HOSTILE_HOST: &str = "journal-<script>alert(1)</script>";
const HOSTILE_DEVICE: &str = "\"><img src=x onerror=alert(1)>";

async fn open_store() -> Arc<dyn Store> {
    if module_path!().ends_with("postgres_tests") {
        let cluster = crate::store::pg_scratch::ScratchCluster::shared().unwrap();
        let url = cluster.fresh_database().await.unwrap();
        Arc::new(
            crate::store::SqlStore::connect_postgres(&url, 4)
                .await
                .unwrap(),
        )
    } else {
        Arc::new(SqliteStore::in_memory().await.unwrap())
    }
}

struct Fixture {
    store: Arc<dyn Store>,
    app: axum::Router,
}

async fn fixture() -> Fixture {
    let store = open_store().await;
    let systems =
        crate::catalog::parse(std::path::Path::new("r.csv"), REGISTER.as_bytes()).unwrap();
    let event = AuditEvent {
        actor: "test".into(),
        action: "catalog.import".into(),
        subject: "r.csv".into(),
        detail: serde_json::json!({}),
    };
    store.replace_catalog(&systems, event, 1).await.unwrap();
    for (agent, host) in [("a1", HOSTILE_HOST), ("a2", "kamera-01")] {
        store
            .create_token(
                NewToken {
                    token_hash: agent.into(),
                    created_at: 0,
                    expires_at: i64::MAX,
                    created_by: "t".into(),
                },
                0,
            )
            .await
            .unwrap();
        store
            .enroll_agent(
                agent,
                NewAgent {
                    agent_id: agent.into(),
                    hostname: host.into(),
                    cert_sha256: agent.into(),
                    cert_not_after: i64::MAX,
                    labels: BTreeMap::new(),
                    agent_version: "1".into(),
                },
                0,
            )
            .await
            .unwrap();
        let devices = if agent == "a1" {
            vec![DeviceInput {
                address: "10.40.4.7".into(),
                name: HOSTILE_DEVICE.into(),
                kind: "robot".into(),
                identity: serde_json::json!({ "sysName": HOSTILE_DEVICE }),
                observations: vec![],
                controls: vec![],
            }]
        } else {
            vec![]
        };
        let report = ReportInput {
            agent_id: agent.into(),
            report_id: format!("r-{agent}"),
            collected_at: now_ms(),
            size_bytes: 1,
            agent_version: "1".into(),
            hostname: host.into(),
            host_facts: serde_json::json!({}),
            observations: vec![],
            controls: vec![ControlInput {
                name: "mfa".into(),
                state: "absent".into(),
                reason: "password only".into(),
                evidence: vec![],
            }],
            devices,
            sequence: 0,
            delta_base: None,
            removed_observations: vec![],
            job_id: None,
        };
        store.ingest_report(report, now_ms()).await.unwrap();
    }
    crate::evaluation::evaluate(store.as_ref(), &RuleConfig::default(), now_ms())
        .await
        .unwrap();
    // A host name, not the default IP address: passkeys need one as relying party id.
    let settings = RawWebConfig {
        lock_after_failures: 3,
        public_url: ORIGIN.into(),
        ..RawWebConfig::default()
    }
    .validate()
    .unwrap();
    let passkeys = super::passkey::PasskeyParty::from_settings(&settings.public_url, Some(true))
        .unwrap()
        .map(Arc::new);
    let state = WebState {
        store: store.clone(),
        settings: Arc::new(settings),
        rules: RuleConfig::default(),
        limiter: Arc::default(),
        oidc: None,
        passkeys,
    };
    Fixture {
        app: router(state),
        store,
    }
}

/// A browser: cookies kept between requests.
struct Browser {
    app: axum::Router,
    cookies: BTreeMap<String, String>,
}

impl Browser {
    fn new(f: &Fixture) -> Self {
        Self {
            app: f.app.clone(),
            cookies: BTreeMap::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn send(&mut self, request: Request<Body>) -> (StatusCode, Vec<String>, String) {
        let response: Response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let set: Vec<String> = response
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect();
        for c in &set {
            let (pair, _) = c.split_once(';').unwrap_or((c, ""));
            let (k, v) = pair.split_once('=').unwrap();
            if v.is_empty() {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.into(), v.into());
            }
        }
        if let Some(location) = response.headers().get(header::LOCATION) {
            let location = location.to_str().unwrap().to_string();
            return (status, set, location);
        }
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, set, String::from_utf8(body.to_vec()).unwrap())
    }

    async fn get(&mut self, path: &str) -> (StatusCode, String) {
        let request = Request::get(path)
            .header(header::COOKIE, self.cookie_header())
            .body(Body::empty())
            .unwrap();
        let (status, _, body) = self.send(request).await;
        (status, body)
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> (StatusCode, String) {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let request = Request::post(path)
            .header(header::COOKIE, self.cookie_header())
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .unwrap();
        let (status, _, body) = self.send(request).await;
        (status, body)
    }

    /// A `multipart/form-data` POST as a browser sends a file input: `fields`, then `file` as
    /// (field name, file name, bytes).
    async fn upload(
        &mut self,
        path: &str,
        fields: &[(&str, &str)],
        file: (&str, &str, &[u8]),
    ) -> (StatusCode, String) {
        let boundary = "----tillsyn-test-boundary";
        let mut body = Vec::new();
        for (name, value) in fields {
            body.extend_from_slice(
                format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
                    .as_bytes(),
            );
        }
        let (name, filename, bytes) = file;
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\nContent-Type: text/csv\r\n\r\n")
                .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let request = Request::post(path)
            .header(header::COOKIE, self.cookie_header())
            .header(
                header::CONTENT_TYPE,
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(Body::from(body))
            .unwrap();
        let (status, _, body) = self.send(request).await;
        (status, body)
    }

    /// The value of the first hidden `csrf` field of a page.
    fn csrf(page: &str) -> String {
        page.split("name=\"csrf\" value=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .to_string()
    }

    /// A JSON POST as `webauthn.js` sends it; the answer parsed (`null` if not JSON).
    async fn post_json(
        &mut self,
        path: &str,
        body: &serde_json::Value,
    ) -> (StatusCode, serde_json::Value) {
        let request = Request::post(path)
            .header(header::COOKIE, self.cookie_header())
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        let (status, _, body) = self.send(request).await;
        (
            status,
            serde_json::from_str(&body).unwrap_or(serde_json::Value::Null),
        )
    }

    /// Enrols through the link `user add` printed; returns the TOTP key (hex) as read off the
    /// page in base32, the way a person types it into an authenticator app.
    async fn enrol(&mut self, link_text: &str, password: &str) -> String {
        self.enrol_with_code_of(link_text, password, 0).await
    }

    /// [`Self::enrol`] confirming with the code `offset` steps from now (-1: the step before,
    /// which leaves the current and the next step for a sign-in and a re-authentication).
    async fn enrol_with_code_of(&mut self, link_text: &str, password: &str, offset: i64) -> String {
        let link = link_text.lines().last().unwrap();
        let path = &link[link.find("/enrol").unwrap()..];
        let (status, page) = self.get(path).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let shown = page
            .split("id=\"totp-secret\">")
            .nth(1)
            .unwrap()
            .split('<')
            .next()
            .unwrap();
        let secret = hex::encode(
            totp_rs::Secret::Encoded(shown.to_string())
                .to_bytes()
                .unwrap(),
        );
        // The QR code beside the key encodes the same key, as a phone's camera reads it.
        let drawn = page
            .split("<figure class=\"qr\">")
            .nth(1)
            .expect("a QR code on the page");
        let scanned = scan_qr(drawn);
        assert!(scanned.starts_with("otpauth://totp/"), "{scanned}");
        assert!(scanned.contains(&format!("secret={shown}")), "{scanned}");
        let token = path.split("token=").nth(1).unwrap().to_string();
        let code = code_at(&secret, offset);
        let csrf = Self::csrf(&page);
        let (status, location) = self
            .post(
                "/enrol",
                &[
                    ("csrf", &csrf),
                    ("token", &token),
                    ("password", password),
                    ("password2", password),
                    ("code", &code),
                ],
            )
            .await;
        assert_eq!(
            (status, location.as_str()),
            (StatusCode::SEE_OTHER, "/login?enrolled=1")
        );
        secret
    }

    /// Signs in with password and the code of the step after `step_offset` steps from now.
    async fn sign_in(&mut self, email: &str, password: &str, code: &str) -> (StatusCode, String) {
        let (_, page) = self.get("/login").await;
        let csrf = Self::csrf(&page);
        self.post(
            "/login",
            &[
                ("csrf", &csrf),
                ("email", email),
                ("password", password),
                ("code", code),
            ],
        )
        .await
    }
}

/// The TOTP code `offset` steps from now.
fn code_at(secret: &str, offset: i64) -> String {
    let seconds = now_ms() / 1000 + offset * auth::TOTP_STEP_SECONDS.cast_signed();
    totp_code(secret, seconds.cast_unsigned()).unwrap()
}

fn next_code(secret: &str) -> String {
    totp_code(
        secret,
        (now_ms() / 1000).cast_unsigned() + auth::TOTP_STEP_SECONDS,
    )
    .unwrap()
}

async fn signed_in(f: &Fixture, email: &str, role: &str) -> Browser {
    let settings = RawWebConfig::default().validate().unwrap();
    let link = users::add(
        f.store.as_ref(),
        &settings,
        email,
        "Test Person",
        role,
        "test",
    )
    .await
    .unwrap();
    let mut browser = Browser::new(f);
    let secret = browser.enrol(&link, "a long enough password").await;
    let (status, location) = browser
        .sign_in(email, "a long enough password", &next_code(&secret))
        .await;
    assert_eq!(
        (status, location.as_str()),
        (StatusCode::SEE_OTHER, "/"),
        "sign-in of {email}"
    );
    browser
}

#[tokio::test]
async fn an_owner_sees_their_two_systems_and_gets_404_for_a_third_which_is_audited() {
    let f = fixture().await;
    let mut anna = signed_in(&f, "anna@kommun.se", "owner").await;
    let (status, page) = anna.get("/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("Patientjournal") && page.contains("Läkemedelsrobot"),
        "{page}"
    );
    assert!(!page.contains("Kameror"), "another owner's system shown");
    assert!(
        page.contains("lang=\"sv\"")
            && page.contains("Mina system")
            && page.contains("Systemägare")
    );
    let (status, journal) = anna.get("/systems/journal").await;
    assert_eq!(status, StatusCode::OK);
    // The three states, judged as in the report: K3 rules listed, none "compliant" without
    // evidence.
    assert!(
        journal.contains("Efterlevnad per regel")
            && journal.contains("Stark autentisering (K3) (k3-auth)")
            && !journal.contains("Flerfaktorsinloggning eller kryptering (K2)"),
        "{journal}"
    );
    assert!(journal.contains("ej verifierad") || journal.contains("efterlever inte"));
    let (status, csv) = anna.get("/systems/journal/findings.csv").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        csv.starts_with("id,rule,severity") && csv.contains("k3-auth"),
        "{csv}"
    );
    let (status, _) = anna.get("/systems/kameror/findings.csv").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "another owner's export");
    // My systems as CSV: the same two systems, not the third.
    let (status, csv) = anna.get("/systems.csv").await;
    assert_eq!(status, StatusCode::OK);
    let ids: Vec<&str> = csv
        .lines()
        .skip(1)
        .filter_map(|l| l.split(',').next())
        .collect();
    assert!(csv.starts_with("system_id,name,krt,"), "{csv}");
    assert_eq!(ids.len(), 2, "{csv}");
    assert!(
        ids.contains(&"journal") && !csv.contains("kameror"),
        "{csv}"
    );
    let (status, page) = anna.get("/systems/kameror").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(!page.contains("Kameror"));
    let audit = f.store.audit_log().await.unwrap();
    assert!(
        audit.iter().any(|e| e.action == "web.denied"
            && e.subject == "/systems/kameror"
            && e.actor == "local:anna@kommun.se"),
        "refused access not audited"
    );
    // The camera host belongs to cecilia's system: its asset page is not anna's either.
    let camera = f
        .store
        .scoped_assets(&crate::store::Scope::All, Some("kameror"), None)
        .await
        .unwrap();
    let (status, _) = anna.get(&format!("/assets/{}", camera[0].1.asset_id)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let finding = f
        .store
        .scoped_findings(
            &crate::store::Scope::All,
            Some("kameror"),
            None,
            None,
            false,
        )
        .await
        .unwrap();
    let csrf = Browser::csrf(&anna.get("/").await.1);
    let (status, _) = anna
        .post(
            &format!("/findings/{}/request-acceptance", finding[0].finding_id),
            &[("csrf", &csrf), ("reason", "x"), ("until", "2099-01-01")],
        )
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "another owner's finding must look absent"
    );
}

#[tokio::test]
async fn hostile_host_and_device_names_are_shown_escaped() {
    let f = fixture().await;
    let mut anna = signed_in(&f, "anna@kommun.se", "owner").await;
    let (_, home) = anna.get("/").await;
    let (_, robot) = anna.get("/systems/robot").await;
    for page in [&home, &robot] {
        assert!(!page.contains("<script>alert(1)"), "unescaped script");
        assert!(!page.contains("<img src=x"), "unescaped img");
    }
    // askama writes numeric entities.
    assert!(
        home.contains("journal-&#60;script&#62;alert(1)&#60;/script&#62;"),
        "{home}"
    );
    assert!(
        robot.contains("&#34;&#62;&#60;img src=x onerror=alert(1)&#62;"),
        "{robot}"
    );
}

#[tokio::test]
async fn forms_without_the_right_csrf_token_are_refused() {
    let f = fixture().await;
    let mut anna = signed_in(&f, "anna@kommun.se", "owner").await;
    let form = [
        ("k", "3"),
        ("r", "3"),
        ("t", "2"),
        ("rationale", "same as last year"),
    ];
    let (status, _) = anna.post("/systems/journal/review", &form).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "missing token");
    let mut wrong = vec![("csrf", "0".repeat(64))];
    wrong.extend(form.iter().map(|(k, v)| (*k, (*v).to_string())));
    let wrong: Vec<(&str, &str)> = wrong.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, _) = anna.post("/systems/journal/review", &wrong).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "wrong token");
    // A sign-in without the pre-session token is refused before any password is checked.
    let mut stranger = Browser::new(&f);
    let (status, _) = stranger
        .post(
            "/login",
            &[
                ("email", "anna@kommun.se"),
                ("password", "x"),
                ("code", "123456"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let systems = f
        .store
        .scoped_systems(&crate::store::Scope::All, Some("journal"))
        .await
        .unwrap();
    assert_eq!(
        systems[0].classification.as_ref().unwrap().classified_by,
        "Samordnaren",
        "refused form changed the register"
    );
}

#[tokio::test]
async fn session_cookies_are_secure_httponly_strict_and_pages_carry_a_strict_csp() {
    let f = fixture().await;
    let settings = RawWebConfig::default().validate().unwrap();
    let link = users::add(
        f.store.as_ref(),
        &settings,
        "anna@kommun.se",
        "Anna",
        "owner",
        "test",
    )
    .await
    .unwrap();
    let mut browser = Browser::new(&f);
    let secret = browser.enrol(&link, "a long enough password").await;
    let (_, page) = browser.get("/login").await;
    assert!(
        page.contains("autocomplete=\"username\"")
            && page.contains("autocomplete=\"current-password\"")
            && page.contains("autocomplete=\"one-time-code\"")
    );
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("csrf", Browser::csrf(&page)),
            ("email", "anna@kommun.se".into()),
            ("password", "a long enough password".into()),
            ("code", next_code(&secret)),
        ])
        .finish();
    let request = Request::post("/login")
        .header(header::COOKIE, browser.cookie_header())
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(body))
        .unwrap();
    let response = f.app.clone().oneshot(request).await.unwrap();
    let csp = response.headers()[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .to_string();
    // The sign-in answer loads no script at all.
    assert!(
        csp.contains("default-src 'none'")
            && !csp.contains("unsafe-inline")
            && !csp.contains("script-src"),
        "{csp}"
    );
    // The pages that load htmx (the filtered lists) allow scripts from this origin only.
    htmx_pages_allow_scripts_from_self_only(&f, &browser, &response).await;
    let session = response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with("__Host-tillsyn-session="))
        .expect("session cookie");
    for flag in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(session.contains(flag), "{session} lacks {flag}");
    }
    // Only the hash of the cookie value is stored.
    let value = session
        .split(';')
        .next()
        .unwrap()
        .split('=')
        .nth(1)
        .unwrap();
    let hashed = f
        .store
        .session(&auth::sha256_hex(value), 0, 0, now_ms())
        .await
        .unwrap();
    assert!(hashed.is_some());
    assert!(
        f.store
            .session(value, 0, 0, now_ms())
            .await
            .unwrap()
            .is_none()
    );
    // Idle timeout: a session last used before the idle window is gone.
    assert!(
        f.store
            .session(&auth::sha256_hex(value), now_ms() + 1, 0, now_ms())
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        f.store
            .session(&auth::sha256_hex(value), 0, 0, now_ms())
            .await
            .unwrap()
            .is_none(),
        "expired session came back"
    );
}

#[tokio::test]
async fn bad_codes_lock_the_account_even_for_the_right_code_and_a_code_is_used_once() {
    let f = fixture().await;
    let settings = RawWebConfig::default().validate().unwrap();
    let link = users::add(
        f.store.as_ref(),
        &settings,
        "anna@kommun.se",
        "Anna",
        "owner",
        "test",
    )
    .await
    .unwrap();
    let mut browser = Browser::new(&f);
    let secret = browser.enrol(&link, "a long enough password").await;
    let good = next_code(&secret);
    let bad = if good == "000000" { "111111" } else { "000000" };
    for _ in 0..3 {
        let (status, page) = browser
            .sign_in("anna@kommun.se", "a long enough password", bad)
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(page.contains("Inloggningen misslyckades"));
    }
    let (status, _) = browser
        .sign_in("anna@kommun.se", "a long enough password", &good)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "locked account signed in");
    let audit = f.store.audit_log().await.unwrap();
    assert!(audit.iter().any(|e| e.action == "web.lock"));
    // The code used at enrolment cannot sign in (replay).
    let other = users::add(
        f.store.as_ref(),
        &settings,
        "bo@kommun.se",
        "Bo",
        "owner",
        "test",
    )
    .await
    .unwrap();
    let mut bo = Browser::new(&f);
    let bo_secret = bo.enrol(&other, "another long password").await;
    let enrol_code = totp_code(&bo_secret, (now_ms() / 1000).cast_unsigned()).unwrap();
    if enrol_code != next_code(&bo_secret) {
        let (status, _) = bo
            .sign_in("bo@kommun.se", "another long password", &enrol_code)
            .await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "a TOTP code was accepted twice"
        );
    }
}

// One workflow read top to bottom: owner asks, coordinator decides, store enforces four eyes.
#[allow(clippy::too_many_lines)]
#[tokio::test]
async fn an_acceptance_asked_by_an_owner_is_approved_by_a_coordinator_never_by_the_asker() {
    let f = fixture().await;
    let mut anna = signed_in(&f, "anna@kommun.se", "owner").await;
    let finding = f
        .store
        .scoped_findings(
            &crate::store::Scope::All,
            Some("journal"),
            None,
            None,
            false,
        )
        .await
        .unwrap();
    let finding = finding
        .iter()
        .find(|x| x.state == "open")
        .unwrap()
        .finding_id
        .clone();
    let (_, page) = anna.get("/systems/journal").await;
    let csrf = Browser::csrf(&page);
    let (status, _) = anna
        .post(
            &format!("/findings/{finding}/request-acceptance"),
            &[
                ("csrf", &csrf),
                ("reason", "Replaced in May"),
                ("until", "2099-01-01"),
            ],
        )
        .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "end date beyond the 12-month maximum accepted"
    );
    let until = super::pages::add_months(
        super::view::today(now_ms(), chrono_tz::Europe::Stockholm),
        6,
    )
    .to_string();
    let (status, page) = anna
        .post(
            &format!("/findings/{finding}/request-acceptance"),
            &[
                ("csrf", &csrf),
                ("reason", "Ersätts i maj, åtgärd beställd"),
                ("until", &until),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("Begäran om riskacceptans är skickad"));
    let (status, _) = anna.get("/approvals").await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "an owner opened the approvals"
    );

    let mut coordinator = signed_in(&f, "sam@kommun.se", "coordinator").await;
    let (_, page) = coordinator.get("/approvals").await;
    assert!(page.contains("Ersätts i maj, åtgärd beställd"), "{page}");
    let request = f
        .store
        .acceptance_requests(&crate::store::Scope::All, Some("pending"))
        .await
        .unwrap();
    let (status, page) = coordinator
        .post(
            &format!("/approvals/{}", request[0].request_id),
            &[
                ("csrf", &Browser::csrf(&page)),
                ("decision", "approve"),
                ("note", "ok"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Riskacceptansen är godkänd"));
    let accepted = f
        .store
        .scoped_findings(&crate::store::Scope::All, None, None, Some(&finding), true)
        .await
        .unwrap();
    assert_eq!(accepted[0].state, "accepted");
    assert!(
        accepted[0]
            .accepted_by
            .as_deref()
            .unwrap()
            .contains("sam@kommun.se")
    );
    let (_, page) = anna.get("/systems/journal").await;
    assert!(page.contains("Accepterad risk"));
    let audit = f.store.audit_log().await.unwrap();
    assert!(
        audit
            .iter()
            .any(|e| e.action == "acceptance.request" && e.actor == "local:anna@kommun.se")
    );
    assert!(
        audit
            .iter()
            .any(|e| e.action == "acceptance.approve" && e.actor == "local:sam@kommun.se")
    );
    assert!(crate::store::verify_audit_chain(&audit).is_ok());
    let (status, log) = coordinator.get("/audit").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        log.contains("Hashkedjan är obruten") && log.contains("acceptance.approve"),
        "{log}"
    );
    let (status, _) = anna.get("/audit").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "an owner read the audit log");
    let (status, _) = anna.get("/audit.csv").await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "an owner exported the audit log"
    );
    let (status, csv) = coordinator.get("/audit.csv").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        csv.starts_with("seq,time,actor,action,subject,detail"),
        "{csv}"
    );
    assert_eq!(
        csv.lines().count(),
        audit.len() + 1,
        "every audit entry, oldest first: {csv}"
    );
    assert!(csv.contains("acceptance.approve"), "{csv}");

    // Accounts from the browser: create one (link shown once), disable it; owners may not.
    let (_, page) = coordinator.get("/users").await;
    let csrf = Browser::csrf(&page);
    let (status, page) = coordinator
        .post(
            "/users",
            &[
                ("csrf", &csrf),
                ("email", "Cecilia@Kommun.se"),
                ("name", "Cecilia Ek"),
                ("role", "owner"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(
        page.contains("/enrol?token=") && page.contains("cecilia@kommun.se"),
        "{page}"
    );
    let (status, page) = coordinator
        .post(
            "/users/disable",
            &[("csrf", &csrf), ("email", "cecilia@kommun.se")],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(
        f.store
            .user_by_email("cecilia@kommun.se")
            .await
            .unwrap()
            .unwrap()
            .disabled_at
            .is_some()
    );
    let (status, _) = coordinator
        .post(
            "/users/disable",
            &[("csrf", &csrf), ("email", "sam@kommun.se")],
        )
        .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "a coordinator disabled themselves"
    );
    let (status, _) = anna.get("/users").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let audit = f.store.audit_log().await.unwrap();
    assert!(audit.iter().any(|e| e.action == "user.add"
        && e.actor == "local:sam@kommun.se"
        && e.subject == "cecilia@kommun.se"));

    // Four eyes in the store: a coordinator cannot decide a request filed under their own name.
    let other = finding_of(&f, "robot").await;
    let mine = crate::store::AcceptanceRequest {
        request_id: "own".into(),
        finding_id: other,
        requested_by: "sam@kommun.se".into(),
        reason: "r".into(),
        until: now_ms() + 1000,
        state: "pending".into(),
        created_at: now_ms(),
        decided_by: None,
        decided_at: None,
        decision_note: None,
    };
    let event = || AuditEvent {
        actor: "t".into(),
        action: "t".into(),
        subject: "t".into(),
        detail: serde_json::json!({}),
    };
    f.store
        .request_acceptance(mine, event(), now_ms())
        .await
        .unwrap();
    let refused = f
        .store
        .decide_acceptance("own", "sam@kommun.se", true, "", event(), now_ms())
        .await;
    assert!(
        matches!(refused, Err(crate::store::StoreError::RequestRefused(_))),
        "{refused:?}"
    );
}

async fn finding_of(f: &Fixture, system: &str) -> String {
    f.store
        .scoped_findings(&crate::store::Scope::All, Some(system), None, None, false)
        .await
        .unwrap()[0]
        .finding_id
        .clone()
}

#[tokio::test]
async fn the_yearly_review_redates_the_classification_and_resolves_review_due() {
    let f = fixture().await;
    let due = f
        .store
        .scoped_findings(
            &crate::store::Scope::All,
            Some("journal"),
            None,
            None,
            false,
        )
        .await
        .unwrap();
    assert!(
        due.iter().any(|x| x.rule == "review-due"),
        "fixture: journal classified 2020 must be due"
    );
    let mut anna = signed_in(&f, "anna@kommun.se", "owner").await;
    let (_, page) = anna.get("/systems/journal").await;
    let (status, page) = anna
        .post(
            "/systems/journal/review",
            &[
                ("csrf", &Browser::csrf(&page)),
                ("k", "3"),
                ("r", "2"),
                ("t", "2"),
                ("rationale", "Hälsodata; riktighet sänkt efter översyn"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("K3/R2/T2"));
    crate::evaluation::evaluate(f.store.as_ref(), &RuleConfig::default(), now_ms())
        .await
        .unwrap();
    let open = f
        .store
        .scoped_findings(
            &crate::store::Scope::All,
            Some("journal"),
            None,
            None,
            false,
        )
        .await
        .unwrap();
    assert!(
        !open.iter().any(|x| x.rule == "review-due"),
        "review-due still open"
    );
    let audit = f.store.audit_log().await.unwrap();
    assert!(
        audit
            .iter()
            .any(|e| e.action == "classification.review" && e.actor == "local:anna@kommun.se")
    );
}

#[tokio::test]
async fn english_is_selectable_and_swedish_letters_survive() {
    let f = fixture().await;
    let mut anna = signed_in(&f, "anna@kommun.se", "owner").await;
    let (_, page) = anna.get("/?lang=en").await;
    assert!(
        page.contains("lang=\"en\"") && page.contains("My systems"),
        "{page}"
    );
    assert!(
        page.contains("Läkemedelsrobot"),
        "register text lost its letters"
    );
    let (_, page) = anna.get("/").await;
    assert!(
        page.contains("My systems"),
        "the choice is kept in a cookie"
    );
    let (_, page) = anna.get("/?lang=sv").await;
    assert!(page.contains("Årlig översyn senast") && page.contains("Läkemedelsrobot"));
}

#[tokio::test]
async fn serves_https_with_the_server_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let collector = crate::config::CollectorDir::new(dir.path().join("c"));
    crate::admin::init(&collector, &[]).await.unwrap();
    let config = collector.load_config().unwrap();
    let store = crate::admin::open_store(&collector).await.unwrap();
    let running = super::start(
        &collector,
        store,
        &config,
        Some("127.0.0.1:0".parse().unwrap()),
    )
    .await
    .unwrap()
    .expect("listener");
    let mut roots = rustls::RootCertStore::empty();
    let ca = std::fs::read(collector.ca_cert_path()).unwrap();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(&ca) {
        roots.add(cert.unwrap()).unwrap();
    }
    let client = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
    let tcp = tokio::net::TcpStream::connect(running.addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let mut tls = connector.connect(name, tcp).await.unwrap();
    tls.write_all(b"GET /login HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = Vec::new();
    let _ = tls.read_to_end(&mut response).await;
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("autocomplete=\"one-time-code\""));
    running.task.abort();
    // Without --web and without [web], nothing listens.
    let store = crate::admin::open_store(&collector).await.unwrap();
    assert!(
        super::start(&collector, store, &config, None)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn management_sees_totals_only_and_an_administrator_only_what_they_administer() {
    let f = fixture().await;
    let mut board = signed_in(&f, "ledning@kommun.se", "management").await;
    let (status, page) = board.get("/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("Översikt") && page.contains("System i registret"),
        "{page}"
    );
    assert!(!page.contains("Patientjournal"), "management saw a system");
    let (status, _) = board.get("/systems/journal").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // bo@kommun.se is system owner of `robot` in the register but signs in as administrator:
    // the administrator scope follows the register's administrator column (empty here).
    let mut bo = signed_in(&f, "bo@kommun.se", "administrator").await;
    let (_, page) = bo.get("/").await;
    assert!(
        !page.contains("Läkemedelsrobot"),
        "administrator scope used the owner column"
    );
    let (status, _) = bo.get("/systems/robot").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// Reads the QR code of an `<svg>` drawn by [`super::qr::svg`] (4-unit modules) with an
/// independent decoder (rqrr): the dark modules' squares back into a greyscale image.
fn scan_qr(svg: &str) -> String {
    let side: usize = svg
        .split("width=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .parse()
        .unwrap();
    let path = svg
        .split(" d=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let mut dark = vec![false; side * side];
    for square in path.split('M').filter(|s| !s.is_empty()) {
        let corner = square.split('h').next().unwrap();
        let (x, y) = corner.split_once(' ').unwrap();
        let (x, y): (usize, usize) = (x.parse().unwrap(), y.parse().unwrap());
        for dy in 0..4 {
            for dx in 0..4 {
                dark[(y + dy) * side + x + dx] = true;
            }
        }
    }
    let mut image = rqrr::PreparedImage::prepare_from_greyscale(side, side, |x, y| {
        if dark[y * side + x] { 0 } else { 255 }
    });
    let grids = image.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code");
    grids[0].decode().unwrap().1
}

#[tokio::test]
async fn a_coordinator_imports_the_register_from_the_browser_all_or_nothing_and_audited() {
    let f = fixture().await;
    let mut sam = signed_in(&f, "sam@kommun.se", "coordinator").await;
    let (status, page) = sam.get("/register").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("enctype=\"multipart/form-data\""), "{page}");
    let csrf = Browser::csrf(&page);
    let before = f.store.systems().await.unwrap();

    // A bad row: refused with its line named, nothing changed.
    let bad =
        format!("{REGISTER}skola;Skolplattform;Dan Ek;dan@kommun.se;;7;2;2;2026-01-01;IT;;\n");
    let (status, page) = sam
        .upload(
            "/register",
            &[("csrf", &csrf)],
            ("register", "register.csv", bad.as_bytes()),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{page}");
    assert!(
        page.contains("Registret importerades inte") && page.contains("line 5"),
        "{page}"
    );
    assert_eq!(
        f.store.systems().await.unwrap(),
        before,
        "a refused file changed the register"
    );

    // Without the CSRF field: refused before the handler.
    let (status, _) = sam
        .upload(
            "/register",
            &[],
            ("register", "register.csv", REGISTER.as_bytes()),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // A good file: one more system, audited with the person's identity.
    let good =
        format!("{REGISTER}skola;Skolplattform;Dan Ek;dan@kommun.se;;2;2;2;2026-01-01;IT;;\n");
    let (status, page) = sam
        .upload(
            "/register",
            &[("csrf", &csrf)],
            ("register", "register.csv", good.as_bytes()),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(
        page.contains("Importerade 4 system från register.csv (1 nya"),
        "{page}"
    );
    assert_eq!(f.store.systems().await.unwrap().len(), before.len() + 1);
    let audit = f.store.audit_log().await.unwrap();
    let import = audit
        .iter()
        .rev()
        .find(|e| e.action == "catalog.import")
        .unwrap();
    assert_eq!(import.actor, "local:sam@kommun.se");
    assert_eq!(import.detail["via"], "web");
    assert_eq!(import.detail["systems"], 4);

    // Owners may not.
    let mut anna = signed_in(&f, "anna@kommun.se", "owner").await;
    let (_, page) = anna.get("/").await;
    let csrf = Browser::csrf(&page);
    let (status, _) = anna
        .upload(
            "/register",
            &[("csrf", &csrf)],
            ("register", "register.csv", REGISTER.as_bytes()),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(f.store.systems().await.unwrap().len(), before.len() + 1);
}

#[tokio::test]
async fn management_reads_the_review_in_the_browser_and_owners_do_not() {
    let f = fixture().await;
    let mut board = signed_in(&f, "ledning@kommun.se", "management").await;
    let (_, home) = board.get("/").await;
    assert!(home.contains("href=\"/report\""), "{home}");
    let request = Request::get("/report")
        .header(header::COOKIE, board.cookie_header())
        .body(Body::empty())
        .unwrap();
    let response = board.app.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let csp = response.headers()[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("default-src 'none'") && !csp.contains("script"),
        "{csp}"
    );
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let page = String::from_utf8(body.to_vec()).unwrap();
    assert!(
        page.contains("lang=\"sv\"") && page.contains("Patientjournal"),
        "{page}"
    );
    assert!(
        !page.contains("<script"),
        "hostile names stay escaped in the review"
    );
    assert!(
        f.store.management_reports().await.unwrap().is_empty(),
        "a view is not an issued report"
    );
    let mut anna = signed_in(&f, "anna@kommun.se", "owner").await;
    let (status, _) = anna.get("/report").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

// ---- Filtered views, their CSVs and the htmx fragments -------------------------------------

impl Browser {
    /// A GET with htmx's request header when `hx`; status, headers, body.
    async fn get_hx(
        &mut self,
        path: &str,
        hx: bool,
    ) -> (StatusCode, axum::http::HeaderMap, String) {
        let mut request = Request::get(path).header(header::COOKIE, self.cookie_header());
        if hx {
            request = request.header("HX-Request", "true");
        }
        let response: Response = self
            .app
            .clone()
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, headers, String::from_utf8(body.to_vec()).unwrap())
    }
}

/// The ids a page links after `marker` (`href="/systems/` or `id="finding-`), in order.
fn ids_after(page: &str, marker: &str) -> Vec<String> {
    page.split(marker)
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .filter(|id| !id.contains('/'))
        .map(str::to_string)
        .collect()
}

/// The first column of a CSV body's records (the header left out).
fn csv_ids(body: &str) -> Vec<String> {
    csv::Reader::from_reader(body.as_bytes())
        .records()
        .map(|r| r.unwrap()[0].to_string())
        .collect()
}

/// The system ids of a My systems page or fragment.
fn system_ids(page: &str) -> Vec<String> {
    let results = &page[page.find("id=\"results\"").expect("results region")..];
    ids_after(results, "<h2><a href=\"/systems/")
}

#[tokio::test]
async fn my_systems_filters_narrow_in_the_store_and_the_csv_has_the_same_rows() {
    let f = fixture().await;
    let mut anna = signed_in(&f, "anna@kommun.se", "owner").await;
    let mut sam = signed_in(&f, "sam@kommun.se", "coordinator").await;
    // What the store holds, read without the web: the oracle for the severity filter.
    let open = f
        .store
        .scoped_findings(&crate::store::Scope::All, None, None, None, false)
        .await
        .unwrap();
    let with_high: std::collections::BTreeSet<String> = open
        .iter()
        .filter(|x| x.state == "open" && matches!(x.severity.as_str(), "high" | "critical"))
        .filter_map(|x| x.system_id.clone())
        .collect();
    let anna_high: Vec<String> = ["journal", "robot"]
        .into_iter()
        .filter(|s| with_high.contains(*s))
        .map(str::to_string)
        .collect();
    let (a, s) = (false, true);
    let cases: [(bool, &str, Vec<String>); 10] = [
        (a, "", vec!["journal".into(), "robot".into()]),
        (a, "?k=3", vec!["journal".into(), "robot".into()]),
        (a, "?k=K2", vec![]),
        (a, "?overdue=yes", vec!["journal".into()]),
        (a, "?overdue=no&t=3", vec!["robot".into()]),
        (a, "?q=JOURNAL", vec!["journal".into()]),
        (a, "?severity=high", anna_high),
        (s, "?owner=cecilia%40kommun.se", vec!["kameror".into()]),
        // Information owner counts as owner.
        (
            s,
            "?owner=anna@kommun.se&k=3",
            vec!["journal".into(), "robot".into()],
        ),
        (s, "?q=&k=2&r=", vec!["kameror".into()]),
    ];
    for (is_sam, query, expected) in cases {
        let who = if is_sam { &mut sam } else { &mut anna };
        let (status, page) = who.get(&format!("/{query}")).await;
        assert_eq!(status, StatusCode::OK, "{query}: {page}");
        assert_eq!(system_ids(&page), expected, "page {query}");
        if !expected.is_empty() {
            // The CSV link carries the filter; following it gives the same rows.
            let href = page
                .split("id=\"csv-link\" href=\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap()
                .replace("&amp;", "&");
            assert!(href.starts_with("/systems.csv"), "{href}");
            let (status, csv) = who.get(&href).await;
            assert_eq!(status, StatusCode::OK);
            assert_eq!(csv_ids(&csv), expected, "csv {href}");
        }
        let (_, csv) = who.get(&format!("/systems.csv{query}")).await;
        assert_eq!(csv_ids(&csv), expected, "csv {query}");
    }
    // An owner asking for another owner's systems is refused (403, naming the parameter),
    // page and CSV; the store would not return them either.
    for path in [
        "/?owner=cecilia@kommun.se",
        "/systems.csv?owner=cecilia@kommun.se",
    ] {
        let (status, page) = anna.get(path).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
        assert!(
            page.contains("owner") && !page.contains("Kameror"),
            "{page}"
        );
    }
    let scoped = f
        .store
        .filtered_systems(
            &crate::store::Scope::Owner("anna@kommun.se".into()),
            &crate::store::SystemQuery {
                owner: Some("cecilia@kommun.se".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(scoped.is_empty(), "the owner filter widened the scope");
}

#[tokio::test]
async fn the_findings_list_filters_within_the_scope_and_its_csv_has_the_same_rows() {
    let f = fixture().await;
    let mut anna = signed_in(&f, "anna@kommun.se", "owner").await;
    let mut sam = signed_in(&f, "sam@kommun.se", "coordinator").await;
    let all = f
        .store
        .scoped_findings(&crate::store::Scope::All, None, None, None, false)
        .await
        .unwrap();
    let ids = |keep: &dyn Fn(&crate::store::FindingRecord) -> bool| -> Vec<String> {
        all.iter()
            .filter(|x| keep(x))
            .map(|x| x.finding_id.clone())
            .collect()
    };
    let anna_systems = |x: &crate::store::FindingRecord| {
        matches!(x.system_id.as_deref(), Some("journal" | "robot"))
    };
    let expected_anna = ids(&anna_systems);
    assert!(!expected_anna.is_empty(), "fixture has findings for anna");
    let cases: Vec<(&str, Vec<String>)> = vec![
        ("", expected_anna.clone()),
        (
            "?rule=k3-auth",
            ids(&|x| anna_systems(x) && x.rule == "k3-auth"),
        ),
        (
            "?severity=high",
            ids(&|x| anna_systems(x) && matches!(x.severity.as_str(), "high" | "critical")),
        ),
        (
            "?system=robot",
            ids(&|x| x.system_id.as_deref() == Some("robot")),
        ),
        // Another owner's system as a filter: valid, and empty (the scope still applies).
        ("?system=kameror", vec![]),
        ("?status=accepted", vec![]),
    ];
    for (query, expected) in &cases {
        let (status, page) = anna.get(&format!("/findings{query}")).await;
        assert_eq!(status, StatusCode::OK, "{query}: {page}");
        assert_eq!(&ids_after(&page, "id=\"finding-"), expected, "page {query}");
        assert!(!page.contains("Kameror"), "{page}");
        let (status, csv) = anna.get(&format!("/findings.csv{query}")).await;
        assert_eq!(status, StatusCode::OK);
        assert!(csv.starts_with("id,system_id,rule,severity,state"), "{csv}");
        assert_eq!(&csv_ids(&csv), expected, "csv {query}");
    }
    let (_, page) = sam.get("/findings?system=kameror").await;
    let cameras = ids(&|x| x.system_id.as_deref() == Some("kameror"));
    assert!(!cameras.is_empty());
    assert_eq!(ids_after(&page, "id=\"finding-"), cameras);
    assert!(
        page.contains("href=\"/findings.csv?system=kameror\""),
        "{page}"
    );
}

#[tokio::test]
async fn the_findings_list_follows_acceptances_and_attestations() {
    let f = fixture().await;
    let mut anna = signed_in(&f, "anna@kommun.se", "owner").await;
    let all = f
        .store
        .scoped_findings(&crate::store::Scope::All, None, None, None, false)
        .await
        .unwrap();
    let ids = |keep: &dyn Fn(&crate::store::FindingRecord) -> bool| -> Vec<String> {
        all.iter()
            .filter(|x| keep(x))
            .map(|x| x.finding_id.clone())
            .collect()
    };
    let anna_systems = |x: &crate::store::FindingRecord| {
        matches!(x.system_id.as_deref(), Some("journal" | "robot"))
    };
    let k3s = ids(&|x| x.rule == "k3-auth" && anna_systems(x));
    let k3 = ids(&|x| x.rule == "k3-auth" && x.system_id.as_deref() == Some("journal"))
        .first()
        .expect("k3-auth on journal")
        .clone();
    let (_, page) = anna.get("/findings?status=open&rule=k3-auth").await;
    assert_eq!(ids_after(&page, "id=\"finding-"), k3s);
    f.store
        .add_attestation(
            "journal",
            crate::catalog::Attestation {
                control: "mfa".into(),
                statement: "MFA i identitetsleverantören".into(),
                attested_by: "anna@kommun.se".into(),
                attested_at: crate::catalog::parse_date("2026-01-01").unwrap(),
                expires_at: crate::catalog::parse_date("2099-01-01").unwrap(),
            },
            AuditEvent {
                actor: "test".into(),
                action: "attestation.add".into(),
                subject: "journal".into(),
                detail: serde_json::json!({}),
            },
            now_ms(),
        )
        .await
        .unwrap();
    crate::evaluation::evaluate(f.store.as_ref(), &RuleConfig::default(), now_ms())
        .await
        .unwrap();
    let (_, page) = anna.get("/findings?status=attested").await;
    let attested = ids_after(&page, "id=\"finding-");
    assert!(attested.contains(&k3), "{page}");
    let (_, csv) = anna.get("/findings.csv?status=attested").await;
    assert_eq!(csv_ids(&csv), attested);
    assert!(csv.contains(",attested,"), "{csv}");
    let (_, page) = anna.get("/findings?status=open&rule=k3-auth").await;
    assert_eq!(
        ids_after(&page, "id=\"finding-"),
        ids(&|x| x.rule == "k3-auth" && x.system_id.as_deref() == Some("robot")),
        "journal's k3-auth is attested now, robot's still open"
    );
    let robot = ids(&|x| x.system_id.as_deref() == Some("robot"));
    f.store
        .accept_finding(
            &robot[0],
            crate::store::Acceptance {
                by: "sam@kommun.se".into(),
                reason: "test".into(),
                until: now_ms() + 86_400_000,
            },
            now_ms(),
        )
        .await
        .unwrap();
    let (_, page) = anna.get("/findings?status=accepted").await;
    assert_eq!(ids_after(&page, "id=\"finding-"), vec![robot[0].clone()]);
    let (_, csv) = anna.get("/findings.csv?status=accepted").await;
    assert_eq!(csv_ids(&csv), vec![robot[0].clone()]);
}

#[tokio::test]
async fn the_audit_log_filters_by_actor_action_days_and_target_and_escapes_hostile_text() {
    let f = fixture().await;
    let mut sam = signed_in(&f, "sam@kommun.se", "coordinator").await;
    f.store
        .record_audit(
            AuditEvent {
                actor: "<script>alert(1)</script>".into(),
                action: "test.hostile".into(),
                subject: "=cmd|' /C calc'!A0".into(),
                detail: serde_json::json!({}),
            },
            now_ms(),
        )
        .await
        .unwrap();
    let log = f.store.audit_log().await.unwrap();
    let seqs = |keep: &dyn Fn(&crate::store::AuditEntry) -> bool| -> Vec<String> {
        log.iter()
            .filter(|e| keep(e))
            .map(|e| e.seq.to_string())
            .collect()
    };
    let today = super::view::date(now_ms(), chrono_tz::Europe::Stockholm);
    let cases: Vec<(String, Vec<String>)> = vec![
        (
            "?action=test.hostile".into(),
            seqs(&|e| e.action == "test.hostile"),
        ),
        (
            "?actor=SAM%40kommun".into(),
            seqs(&|e| e.actor.contains("sam@kommun")),
        ),
        ("?target=cmd".into(), seqs(&|e| e.subject.contains("cmd"))),
        (format!("?from={today}&to={today}"), seqs(&|e| e.at > 1)),
        ("?from=2000-01-01&to=2000-01-02".into(), vec![]),
        (
            format!("?to={today}&action=catalog.import"),
            seqs(&|e| e.action == "catalog.import"),
        ),
    ];
    for (query, expected) in &cases {
        let (status, headers, fragment) = sam.get_hx(&format!("/audit{query}"), true).await;
        assert_eq!(status, StatusCode::OK, "{query}: {fragment}");
        assert!(fragment.starts_with("<div id=\"results\">"), "{fragment}");
        assert!(
            headers[header::CONTENT_SECURITY_POLICY]
                .to_str()
                .unwrap()
                .contains("script-src 'self'")
        );
        let mut shown: Vec<String> = fragment
            .split("<tr><td>")
            .skip(1)
            .filter_map(|rest| rest.split('<').next())
            .map(str::to_string)
            .collect();
        shown.reverse();
        assert_eq!(&shown, expected, "page {query}");
        let (status, csv) = sam.get(&format!("/audit.csv{query}")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(&csv_ids(&csv), expected, "csv {query}");
    }
    let (_, fragment) = sam.get("/audit?action=test.hostile").await;
    assert!(
        fragment.contains("&#60;script&#62;alert(1)&#60;/script&#62;")
            && !fragment.contains("<script>alert"),
        "{fragment}"
    );
    let (_, csv) = sam.get("/audit.csv?action=test.hostile").await;
    assert!(csv.contains("'=cmd|"), "formula not neutralised: {csv}");
    assert!(!csv.contains(",=cmd"), "{csv}");
    // Owners have no audit log, filtered or not.
    let mut anna = signed_in(&f, "anna@kommun.se", "owner").await;
    let (status, _) = anna.get("/audit.csv?action=test.hostile").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn malformed_filter_parameters_are_answered_400_naming_the_parameter() {
    let f = fixture().await;
    let mut sam = signed_in(&f, "sam@kommun.se", "coordinator").await;
    for (path, param) in [
        ("/?k=7", "k"),
        ("/?severity=huge", "severity"),
        ("/?overdue=maybe", "overdue"),
        ("/?owner=nobody", "owner"),
        ("/?nosuch=1", "nosuch"),
        ("/?k=1&k=2", "k"),
        ("/systems.csv?r=9", "r"),
        ("/findings?rule=no-such-rule", "rule"),
        ("/findings?status=resolvedish", "status"),
        ("/findings.csv?severity=1", "severity"),
        ("/audit?from=2026-13-01", "from"),
        ("/audit?from=01.03.2026", "from"),
        ("/audit.csv?from=2026-03-02&to=2026-03-01", "to"),
        ("/audit?q=x", "q"),
    ] {
        let (status, page) = sam.get(path).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {page}");
        assert!(
            page.contains(&format!("”{param}”")),
            "{path} does not name {param}: {page}"
        );
    }
    // A hostile parameter name is named escaped.
    let (status, page) = sam.get("/?%3Cscript%3E=1").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        page.contains("&#60;script&#62;") && !page.contains("<script>"),
        "{page}"
    );
    // Hostile search text comes back escaped in the form and the fragment.
    let (status, page) = sam.get("/?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E").await;
    assert_eq!(status, StatusCode::OK);
    assert!(!page.contains("<script>alert"), "{page}");
    assert!(
        page.contains("value=\"&#60;script&#62;alert(1)&#60;/script&#62;\""),
        "{page}"
    );
}

#[tokio::test]
async fn the_htmx_fragment_is_only_the_results_scoped_and_with_the_security_headers() {
    let f = fixture().await;
    let mut anna = signed_in(&f, "anna@kommun.se", "owner").await;
    let (status, headers, page) = anna.get_hx("/", false).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("<script src=\"/static/htmx.min.js\" defer></script>")
            && page.contains("\"allowEval\":false")
            && page.contains("hx-get=\"/\"")
            && page.contains("hx-push-url=\"true\"")
            && page.contains("<form method=\"get\" action=\"/\""),
        "the form works without htmx and is enhanced with it: {page}"
    );
    let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert_script_self(csp);
    for (path, region) in [
        ("/", "<section class=\"system\">"),
        ("/?k=3", "<section class=\"system\">"),
        ("/findings", "<table class=\"findings\">"),
    ] {
        let (status, headers, fragment) = anna.get_hx(path, true).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(
            fragment.starts_with("<div id=\"results\">"),
            "{path}: {fragment}"
        );
        assert!(fragment.trim_end().ends_with("</div>"), "{fragment}");
        assert!(fragment.contains(region), "{fragment}");
        for whole_page in ["<html", "<head", "<header", "<form", "<script", "Logga ut"] {
            assert!(
                !fragment.contains(whole_page),
                "{path}: {whole_page} in {fragment}"
            );
        }
        assert!(
            !fragment.contains("Kameror") && !fragment.contains("kameror"),
            "{fragment}"
        );
        // Hostile host names stay escaped in fragments too.
        assert!(!fragment.contains("<script>alert"), "{fragment}");
        for (name, value) in [
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CACHE_CONTROL, "no-store"),
            (header::VARY, "HX-Request"),
        ] {
            assert_eq!(headers[&name], value, "{path} {name}");
        }
        let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"));
        assert_script_self(csp);
    }
    let (_, _, fragment) = anna.get_hx("/?overdue=yes", true).await;
    assert_eq!(system_ids(&fragment), vec!["journal".to_string()]);
    assert!(
        fragment.contains("href=\"/systems.csv?overdue=yes\""),
        "{fragment}"
    );
    // Without a session a fragment request gets no rows either.
    let mut stranger = Browser::new(&f);
    let (status, _, body) = stranger.get_hx("/findings", true).await;
    assert_ne!(status, StatusCode::OK);
    assert!(!body.contains("finding-"), "{body}");
    // The script itself: embedded, JavaScript, same headers.
    let (status, headers, script) = anna.get_hx("/static/htmx.min.js", false).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    assert!(script.contains("htmx") && script.len() > 40_000);
}

/// A policy whose scripts come from this origin only: exactly `script-src 'self'`, nothing
/// unsafe anywhere.
fn assert_script_self(csp: &str) {
    let scripts: Vec<&str> = csp
        .split(';')
        .map(str::trim)
        .filter(|d| d.starts_with("script-src"))
        .collect();
    assert_eq!(scripts, vec!["script-src 'self'"], "{csp}");
    assert!(!csp.contains("unsafe-"), "{csp}");
}

/// Signed in with the cookies `response` set, the filtered lists carry exactly
/// `script-src 'self'`.
async fn htmx_pages_allow_scripts_from_self_only(
    f: &Fixture,
    browser: &Browser,
    response: &Response,
) {
    let mut signed = Browser::new(f);
    signed.cookies.clone_from(&browser.cookies);
    for c in response.headers().get_all(header::SET_COOKIE) {
        let pair = c.to_str().unwrap().split(';').next().unwrap();
        let (k, v) = pair.split_once('=').unwrap();
        signed.cookies.insert(k.into(), v.into());
    }
    for path in ["/", "/findings", "/audit"] {
        let (status, headers, page) = signed.get_hx(path, false).await;
        if path == "/audit" {
            // Owners have no audit log: refused, and the refusal loads no script.
            assert_eq!(status, StatusCode::FORBIDDEN);
            let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
            assert!(
                !csp.contains("script-src") && !page.contains("htmx.min.js"),
                "{csp}"
            );
            continue;
        }
        assert_eq!(status, StatusCode::OK, "{path}: {page}");
        assert!(page.contains("/static/htmx.min.js"));
        assert_script_self(headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap());
    }
}

// ---- Passkeys (web/passkey.rs, web/security.rs), with the software authenticator. ----

use super::soft_authenticator::SoftAuthenticator;

const PASSWORD: &str = "a long enough password";

/// A local account enrolled with the code of the previous step and signed in with the
/// current one: the next step's code is left for adding a passkey. Returns the browser and
/// the TOTP key.
async fn local_account(f: &Fixture, email: &str) -> (Browser, String) {
    let settings = RawWebConfig::default().validate().unwrap();
    let link = users::add(
        f.store.as_ref(),
        &settings,
        email,
        "Test Person",
        "coordinator",
        "test",
    )
    .await
    .unwrap();
    let mut browser = Browser::new(f);
    let secret = browser.enrol_with_code_of(&link, PASSWORD, -1).await;
    let (status, location) = browser.sign_in(email, PASSWORD, &code_at(&secret, 0)).await;
    assert_eq!(
        (status, location.as_str()),
        (StatusCode::SEE_OTHER, "/"),
        "{email}"
    );
    (browser, secret)
}

/// Starts adding a passkey from the security page with the next step's code; the options.
async fn registration_start(
    browser: &mut Browser,
    secret: &str,
) -> (StatusCode, serde_json::Value, String) {
    let (status, page) = browser.get("/security").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let csrf = Browser::csrf(&page);
    let (status, options) = browser
        .post_json(
            "/security/passkeys/start",
            &serde_json::json!({ "csrf": csrf, "label": "Laptop <b>", "code": code_at(secret, 1) }),
        )
        .await;
    (status, options, csrf)
}

/// Adds a passkey held by a new software authenticator.
async fn add_passkey(browser: &mut Browser, secret: &str) -> SoftAuthenticator {
    let (status, options, csrf) = registration_start(browser, secret).await;
    assert_eq!(status, StatusCode::OK, "{options}");
    assert_eq!(options["publicKey"]["rp"]["id"], "tillsyn.test");
    assert_eq!(
        options["publicKey"]["authenticatorSelection"]["userVerification"],
        "required"
    );
    let mut key = SoftAuthenticator::new(ORIGIN);
    let credential = key.register(&options);
    let (status, done) = browser
        .post_json(
            "/security/passkeys/finish",
            &serde_json::json!({ "csrf": csrf, "credential": credential }),
        )
        .await;
    assert_eq!(
        (status, done["redirect"].as_str()),
        (StatusCode::OK, Some("/security?added=1")),
        "{done}"
    );
    key
}

/// A new browser at the sign-in page: password posted to the passkey start. The answer and
/// the page's CSRF token.
async fn sign_in_start(
    f: &Fixture,
    email: &str,
    password: &str,
) -> (Browser, StatusCode, serde_json::Value, String) {
    let mut browser = Browser::new(f);
    let (_, page) = browser.get("/login").await;
    let csrf = Browser::csrf(&page);
    let (status, options) = browser
        .post_json(
            "/login/passkey/start",
            &serde_json::json!({ "csrf": csrf, "email": email, "password": password }),
        )
        .await;
    (browser, status, options, csrf)
}

async fn sign_in_finish(
    browser: &mut Browser,
    csrf: &str,
    credential: &serde_json::Value,
) -> (StatusCode, serde_json::Value) {
    browser
        .post_json(
            "/login/passkey/finish",
            &serde_json::json!({ "csrf": csrf, "credential": credential }),
        )
        .await
}

async fn user_id(f: &Fixture, email: &str) -> String {
    f.store.user_by_email(email).await.unwrap().unwrap().user_id
}

// One person's passkey from addition to removal, read top to bottom.
#[allow(clippy::too_many_lines)]
#[tokio::test]
async fn a_passkey_added_with_a_fresh_code_replaces_the_code_after_the_password() {
    let f = fixture().await;
    let (mut sam, secret) = local_account(&f, "sam@kommun.se").await;
    // The security page runs webauthn.js: its policy allows this origin's scripts, nothing
    // inline; pages without the script keep the policy without any.
    let request = Request::get("/security")
        .header(header::COOKIE, sam.cookie_header())
        .body(Body::empty())
        .unwrap();
    let response = f.app.clone().oneshot(request).await.unwrap();
    let csp = response.headers()[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.starts_with("default-src 'none'; script-src 'self'; connect-src 'self';")
            && !csp.contains("unsafe"),
        "{csp}"
    );
    // A page with neither script (htmx is on the filtered lists only) keeps the strict policy.
    let request = Request::get("/approvals")
        .header(header::COOKIE, sam.cookie_header())
        .body(Body::empty())
        .unwrap();
    let response = f.app.clone().oneshot(request).await.unwrap();
    let csp = response.headers()[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap();
    assert!(!csp.contains("script-src"), "{csp}");

    // The sign-in page too, and the script itself is served from this origin.
    let response = f
        .app
        .clone()
        .oneshot(Request::get("/login").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let csp = response.headers()[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe"),
        "{csp}"
    );
    let page = response.into_body().collect().await.unwrap().to_bytes();
    let page = String::from_utf8(page.to_vec()).unwrap();
    assert!(
        page.contains("<script src=\"/static/webauthn.js\"></script>"),
        "{page}"
    );
    assert!(!page.contains("<script>"), "no inline script");
    let response = f
        .app
        .clone()
        .oneshot(
            Request::get("/static/webauthn.js")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "text/javascript; charset=utf-8"
    );

    let mut key = add_passkey(&mut sam, &secret).await;
    let (_, page) = sam.get("/security?added=1").await;
    assert!(
        page.contains("Nyckeln är tillagd") && page.contains("Laptop &#60;b&#62;"),
        "{page}"
    );
    let stored = f
        .store
        .passkeys(&user_id(&f, "sam@kommun.se").await)
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].credential_id, key.credential_id_text());

    // Sign-in: the password, then the passkey instead of the code.
    let (mut browser, status, options, csrf) = sign_in_start(&f, "sam@kommun.se", PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{options}");
    assert_eq!(options["publicKey"]["userVerification"], "required");
    let assertion = key.sign(&options, None);
    let (status, done) = sign_in_finish(&mut browser, &csrf, &assertion).await;
    assert_eq!(
        (status, done["redirect"].as_str()),
        (StatusCode::OK, Some("/")),
        "{done}"
    );
    let (status, home) = browser.get("/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        home.contains("Logga ut") && home.contains("Säkerhet"),
        "{home}"
    );
    // The counter the authenticator reported is kept, and the use.
    let used = &f
        .store
        .passkeys(&user_id(&f, "sam@kommun.se").await)
        .await
        .unwrap()[0];
    assert!(
        used.passkey_json.contains("\"counter\":2"),
        "{}",
        used.passkey_json
    );
    assert!(used.last_used_at.is_some());
    // The same assertion again (the challenge was taken) does not sign in.
    browser.cookies.remove("__Host-tillsyn-session");
    let (status, _) = sign_in_finish(&mut browser, &csrf, &assertion).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Removing it: audited, gone.
    let (_, page) = sam.get("/security").await;
    let (status, location) = sam
        .post(
            "/security/passkeys/remove",
            &[
                ("csrf", &Browser::csrf(&page)),
                ("credential_id", &key.credential_id_text()),
            ],
        )
        .await;
    assert_eq!(
        (status, location.as_str()),
        (StatusCode::SEE_OTHER, "/security?removed=1")
    );
    assert!(
        f.store
            .passkeys(&user_id(&f, "sam@kommun.se").await)
            .await
            .unwrap()
            .is_empty()
    );
    let (_, _, answer, _) = sign_in_start(&f, "sam@kommun.se", PASSWORD).await;
    assert!(
        answer["error"].as_str().unwrap().contains("ingen nyckel"),
        "{answer}"
    );

    let audit = f.store.audit_log().await.unwrap();
    let of = |action: &str| {
        audit
            .iter()
            .filter(|e| e.action == action && e.actor == "local:sam@kommun.se")
            .collect::<Vec<_>>()
    };
    assert_eq!(of("web.passkey_add").len(), 1);
    assert_eq!(of("web.passkey_add")[0].detail["label"], "Laptop <b>");
    assert_eq!(of("web.passkey_remove").len(), 1);
    assert!(
        of("web.sign_in")
            .iter()
            .any(|e| e.detail["second_factor"] == "passkey"
                && e.detail["credential_id"] == key.credential_id_text().as_str()),
        "{audit:#?}"
    );
    crate::store::verify_audit_chain(&audit).unwrap();
}

// Each refusal needs the ceremony that leads up to it; the cases read in order.
#[allow(clippy::too_many_lines)]
#[tokio::test]
async fn passkey_ceremonies_refuse_a_wrong_an_expired_and_a_reused_challenge() {
    let f = fixture().await;
    let (mut sam, secret) = local_account(&f, "sam@kommun.se").await;

    // Registration answering another challenge than the one given.
    let (status, mut options, csrf) = registration_start(&mut sam, &secret).await;
    assert_eq!(status, StatusCode::OK);
    options["publicKey"]["challenge"] = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into();
    let credential = SoftAuthenticator::new(ORIGIN).register(&options);
    let (status, answer) = sam
        .post_json(
            "/security/passkeys/finish",
            &serde_json::json!({ "csrf": csrf, "credential": credential }),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    // That challenge was spent by the failed finish: the right answer to it is refused too.
    let (status, _) = sam
        .post_json(
            "/security/passkeys/finish",
            &serde_json::json!({ "csrf": csrf, "credential": credential }),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // The code was spent by the start: it does not start another registration.
    let (status, _, _) = registration_start(&mut sam, &secret).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "a TOTP code works once");
    assert!(
        f.store
            .passkeys(&user_id(&f, "sam@kommun.se").await)
            .await
            .unwrap()
            .is_empty()
    );

    // An expired registration challenge (the store's row aged past its expiry).
    let f2 = fixture().await;
    let (mut bo, bo_secret) = local_account(&f2, "bo@kommun.se").await;
    let bo_session = auth::sha256_hex(&bo.cookies["__Host-tillsyn-session"]);
    let (status, options, csrf) = registration_start(&mut bo, &bo_secret).await;
    assert_eq!(status, StatusCode::OK);
    let mut held = f2
        .store
        .take_passkey_challenge(
            &bo_session,
            crate::store::PasskeyPurpose::Register,
            now_ms(),
        )
        .await
        .unwrap()
        .unwrap();
    assert!(held.expires_at <= now_ms() + super::passkey::CHALLENGE_MS);
    held.expires_at = now_ms() - 1;
    f2.store.put_passkey_challenge(held, 0).await.unwrap();
    let credential = SoftAuthenticator::new(ORIGIN).register(&options);
    let (status, _) = bo
        .post_json(
            "/security/passkeys/finish",
            &serde_json::json!({ "csrf": csrf, "credential": credential }),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "expired");
    assert!(
        f2.store
            .passkeys(&user_id(&f2, "bo@kommun.se").await)
            .await
            .unwrap()
            .is_empty()
    );

    // Sign-in: a good passkey, then an assertion of another challenge, an expired one, a
    // reused one, and one finished from another browser than the one that started it.
    let f3 = fixture().await;
    let (mut eva, eva_secret) = local_account(&f3, "eva@kommun.se").await;
    let mut key = add_passkey(&mut eva, &eva_secret).await;

    let (mut browser, status, mut options, csrf) =
        sign_in_start(&f3, "eva@kommun.se", PASSWORD).await;
    assert_eq!(status, StatusCode::OK);
    options["publicKey"]["challenge"] = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into();
    let (status, _) = sign_in_finish(&mut browser, &csrf, &key.sign(&options, None)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "wrong challenge");
    assert!(!browser.cookies.contains_key("__Host-tillsyn-session"));

    let (mut browser, _, options, csrf) = sign_in_start(&f3, "eva@kommun.se", PASSWORD).await;
    let binding = auth::sha256_hex(&format!(
        "passkey sign-in\0{}",
        browser.cookies["__Host-tillsyn-pre"]
    ));
    let mut held = f3
        .store
        .take_passkey_challenge(&binding, crate::store::PasskeyPurpose::SignIn, now_ms())
        .await
        .unwrap()
        .unwrap();
    held.expires_at = now_ms() - 1;
    f3.store.put_passkey_challenge(held, 0).await.unwrap();
    let (status, _) = sign_in_finish(&mut browser, &csrf, &key.sign(&options, None)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "expired challenge");

    let (_, _, options, _) = sign_in_start(&f3, "eva@kommun.se", PASSWORD).await;
    let mut elsewhere = Browser::new(&f3);
    let (_, page) = elsewhere.get("/login").await;
    let other_csrf = Browser::csrf(&page);
    let (status, _) = sign_in_finish(&mut elsewhere, &other_csrf, &key.sign(&options, None)).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "started in another browser"
    );

    let (mut browser, _, options, csrf) = sign_in_start(&f3, "eva@kommun.se", PASSWORD).await;
    let assertion = key.sign(&options, None);
    let (status, _) = sign_in_finish(&mut browser, &csrf, &assertion).await;
    assert_eq!(status, StatusCode::OK);
    // Replayed from the same pre-session cookie (without the session it just got).
    browser.cookies.remove("__Host-tillsyn-session");
    let (status, _) = sign_in_finish(&mut browser, &csrf, &assertion).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "reused challenge");
}

#[tokio::test]
async fn passkey_endpoints_refuse_a_missing_or_wrong_csrf_token() {
    let f = fixture().await;
    let (mut sam, secret) = local_account(&f, "sam@kommun.se").await;
    for path in ["/security/passkeys/start", "/security/passkeys/finish"] {
        for body in [
            serde_json::json!({ "label": "x", "code": code_at(&secret, 1) }),
            serde_json::json!({ "csrf": "0".repeat(64), "label": "x", "code": code_at(&secret, 1) }),
        ] {
            let (status, _) = sam.post_json(path, &body).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{path} {body}");
        }
    }
    let (status, _) = sam
        .post("/security/passkeys/remove", &[("credential_id", "x")])
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // The refused start did not spend the code: it still starts a registration.
    let (status, _, _) = registration_start(&mut sam, &secret).await;
    assert_eq!(status, StatusCode::OK);

    let mut browser = Browser::new(&f);
    let _ = browser.get("/login").await;
    for path in ["/login/passkey/start", "/login/passkey/finish"] {
        let (status, _) = browser
            .post_json(
                path,
                &serde_json::json!({ "email": "sam@kommun.se", "password": PASSWORD }),
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
    }
}

#[tokio::test]
async fn another_accounts_passkey_is_refused() {
    let f = fixture().await;
    let (mut sam, sam_secret) = local_account(&f, "sam@kommun.se").await;
    let (mut bo, bo_secret) = local_account(&f, "bo@kommun.se").await;
    let step = || now_ms() / 1000 / auth::TOTP_STEP_SECONDS.cast_signed();
    let before = step();
    let _sams = add_passkey(&mut sam, &sam_secret).await;
    // The step whose code Sam's passkey spent, when the call stayed within one step.
    let spent = (step() == before).then_some(before + 1);
    let mut bos = add_passkey(&mut bo, &bo_secret).await;
    // Sam's password, Bo's passkey.
    let (mut browser, status, options, csrf) = sign_in_start(&f, "sam@kommun.se", PASSWORD).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = sign_in_finish(&mut browser, &csrf, &bos.sign(&options, None)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(!browser.cookies.contains_key("__Host-tillsyn-session"));
    let sam_user = f
        .store
        .user_by_email("sam@kommun.se")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(sam_user.failed_attempts, 1, "counted like a wrong code");
    // Sam cannot remove Bo's passkey.
    let (_, page) = sam.get("/security").await;
    let (status, _) = sam
        .post(
            "/security/passkeys/remove",
            &[
                ("csrf", &Browser::csrf(&page)),
                ("credential_id", &bos.credential_id_text()),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        f.store
            .passkeys(&user_id(&f, "bo@kommun.se").await)
            .await
            .unwrap()
            .len(),
        1
    );
    // The code Sam's first passkey spent is refused; once the clock has moved to a later
    // step (a slow run), the next code is a fresh one. Straddling a boundary decides nothing.
    let before = step();
    let (status, options, _) = registration_start(&mut sam, &sam_secret).await;
    if step() == before && spent.is_some() {
        let expected = if spent == Some(before + 1) {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::OK
        };
        assert_eq!(status, expected, "{options}");
    }
}

#[tokio::test]
async fn a_disabled_accounts_passkey_does_not_sign_in() {
    let f = fixture().await;
    let (mut sam, secret) = local_account(&f, "sam@kommun.se").await;
    let mut key = add_passkey(&mut sam, &secret).await;
    // Started before the account was disabled, finished after.
    let (mut browser, status, options, csrf) = sign_in_start(&f, "sam@kommun.se", PASSWORD).await;
    assert_eq!(status, StatusCode::OK);
    users::disable(f.store.as_ref(), "sam@kommun.se", "test")
        .await
        .unwrap();
    let (status, _) = sign_in_finish(&mut browser, &csrf, &key.sign(&options, None)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(!browser.cookies.contains_key("__Host-tillsyn-session"));
    // And no ceremony starts for it.
    let (_, status, answer, _) = sign_in_start(&f, "sam@kommun.se", PASSWORD).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
    // The old session ended with the disabling.
    let (status, location) = sam.get("/security").await;
    assert_eq!(
        (status, location.as_str()),
        (StatusCode::SEE_OTHER, "/login")
    );
}

#[tokio::test]
async fn failed_passkeys_lock_the_account_like_bad_codes() {
    let f = fixture().await;
    let (mut sam, secret) = local_account(&f, "sam@kommun.se").await;
    add_passkey(&mut sam, &secret).await;
    let mut stranger = SoftAuthenticator::new(ORIGIN);
    // The fixture locks after three failures.
    for _ in 0..3 {
        let (mut browser, status, options, csrf) =
            sign_in_start(&f, "sam@kommun.se", PASSWORD).await;
        assert_eq!(status, StatusCode::OK);
        let (status, _) = sign_in_finish(&mut browser, &csrf, &stranger.sign(&options, None)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    // Locked: the right passkey is refused at the start already, and so is the right code.
    let (_, status, _, _) = sign_in_start(&f, "sam@kommun.se", PASSWORD).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let mut browser = Browser::new(&f);
    let (status, _) = browser
        .sign_in("sam@kommun.se", PASSWORD, &code_at(&secret, 1))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let audit = f.store.audit_log().await.unwrap();
    assert!(audit.iter().any(|e| e.action == "web.lock"), "{audit:#?}");
    // A wrong code when adding a passkey counts the same way (the account is locked already,
    // so only the count is looked at here).
    let before = f
        .store
        .user_by_email("sam@kommun.se")
        .await
        .unwrap()
        .unwrap()
        .failed_attempts;
    let (_, page) = sam.get("/security").await;
    let (status, _) = sam
        .post_json(
            "/security/passkeys/start",
            &serde_json::json!({ "csrf": Browser::csrf(&page), "label": "x", "code": "000000" }),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let after = f
        .store
        .user_by_email("sam@kommun.se")
        .await
        .unwrap()
        .unwrap()
        .failed_attempts;
    assert_eq!(after, before + 1);
}

#[tokio::test]
async fn start_up_refuses_passkeys_asked_for_on_an_ip_address() {
    let dir = tempfile::tempdir().unwrap();
    let collector = crate::config::CollectorDir::new(dir.path().join("c"));
    crate::admin::init(&collector, &[]).await.unwrap();
    let mut config = collector.load_config().unwrap();
    config.web = Some(RawWebConfig {
        passkeys: Some(true),
        ..RawWebConfig::default()
    });
    let store = crate::admin::open_store(&collector).await.unwrap();
    let refused = super::start(
        &collector,
        store.clone(),
        &config,
        Some("127.0.0.1:0".parse().unwrap()),
    )
    .await
    .err()
    .expect("refused");
    let text = refused.to_string();
    assert!(
        text.contains("web.public_url") && text.contains("passkeys"),
        "{text}"
    );
    // Unset: the same address starts, without passkeys.
    config.web = Some(RawWebConfig::default());
    let running = super::start(
        &collector,
        store,
        &config,
        Some("127.0.0.1:0".parse().unwrap()),
    )
    .await
    .unwrap()
    .expect("listener");
    running.task.abort();
}
