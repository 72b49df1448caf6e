//! OIDC sign-in against a real OpenID provider: npm's `oidc-provider` (a certified OP,
//! installed by scripts/deps/oidc.sh), configured by tests/peers/oidc-op.mjs and served over
//! HTTPS on 127.0.0.1 with a CA this test makes; the collector trusts only that CA
//! (`[web.oidc] ca_file`). In chromium: owners and a coordinator land on My systems with the
//! role their groups give, a sign-in without a second factor (`require_amr = ["mfa"]`) and one
//! from an unmapped group are refused and audited. Over plain HTTPS (curl, following the real
//! redirects one by one): a callback with the wrong `state` is refused, a callback works once,
//! and a code obtained for one flow does not complete another.

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

use crate::harness::{Collector, ok};
use crate::web::{Driver, browser, click, fill, submit};

/// The provider process; killed on drop.
struct Provider {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<std::process::ChildStdout>,
    issuer: String,
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Provider {
    /// Tells the provider the collector's redirect URI and waits until it serves.
    fn register(&mut self, redirect_uri: &str) {
        let mut stdin = self.stdin.take().unwrap();
        writeln!(stdin, "{redirect_uri}").unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ready", "provider: {line:?}");
        drop(stdin);
    }
}

/// Everything one test signs in against.
struct Setup {
    provider: Provider,
    collector: Collector,
    web: String,
    files: tempfile::TempDir,
}

impl Setup {
    /// The test CA (the provider) and the collector's CA (its web listener), for curl.
    fn ca(&self) -> PathBuf {
        let bundle = self.files.path().join("both-cas.pem");
        let mut text = std::fs::read_to_string(self.files.path().join("ca.pem")).unwrap();
        text.push_str(&std::fs::read_to_string(self.collector.ca_pem()).unwrap());
        std::fs::write(&bundle, text).unwrap();
        bundle
    }
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

/// A CA, the provider's certificate for 127.0.0.1, the accounts, the client secret; the
/// provider; a collector with `[web.oidc]` naming them, holding the register and three hosts.
async fn setup() -> Setup {
    let files = tempfile::tempdir().unwrap();
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    // Names of their own: OpenSSL (curl) takes a leaf named like its issuer for self-signed.
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Test IdP CA");
    let ca_cert = ca_params.clone().self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "Test IdP");
    let cert = params.signed_by(&key, &issuer).unwrap();
    write(files.path(), "ca.pem", &ca_cert.pem());
    let cert_file = write(files.path(), "idp-cert.pem", &cert.pem());
    let key_file = write(files.path(), "idp-key.pem", &key.serialize_pem());
    let accounts = serde_json::json!({
        "anna": { "email": "Anna@kommun.se", "name": "Anna Ägare", "groups": ["personal", "tillsyn-agare"] },
        "sam": { "email": "sam@kommun.se", "name": "Sam Samordnare", "groups": ["tillsyn-samordnare"] },
        "eve": { "email": "eve@kommun.se", "name": "Eve", "groups": ["personal"] },
    });
    let accounts_file = write(files.path(), "accounts.json", &accounts.to_string());
    let secret_file = write(
        files.path(),
        "client-secret",
        "a test client secret 0123456789\n",
    );

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("peers/oidc-op.mjs");
    let mut child = Command::new("node")
        .arg(&script)
        .args([&cert_file, &key_file, &accounts_file, &secret_file])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("node (scripts/deps/oidc.sh): {e}"));
    let stdin = child.stdin.take();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let issuer_url = line
        .trim()
        .strip_prefix("issuer ")
        .unwrap_or_else(|| panic!("provider (scripts/deps/oidc.sh installs it): {line:?}"))
        .to_string();
    let mut provider = Provider {
        child,
        stdin,
        stdout,
        issuer: issuer_url,
    };

    let ca = files.path().join("ca.pem");
    let (collector, web) = Collector::start_with_web_config(&format!(
        r#"[web.oidc]
issuer = "{issuer}"
client_id = "tillsyn"
client_secret_file = "{secret_file}"
ca_file = "{ca}"
scopes = ["email", "profile", "groups"]
require_amr = ["mfa"]

[web.oidc.roles]
"tillsyn-agare" = "owner"
"tillsyn-samordnare" = "coordinator"
"#,
        issuer = provider.issuer,
        ca = ca.display(),
    ));
    crate::web::seed(&collector).await;
    // Evaluates: the links the pages read.
    assert!(!collector.findings(&[]).is_empty());
    provider.register(&format!("{web}/oidc/callback"));
    Setup {
        provider,
        collector,
        web,
        files,
    }
}

fn audit(collector: &Collector) -> Vec<serde_json::Value> {
    let json = ok(
        "tillsyn-collector",
        &[
            "--dir",
            collector.path(),
            "audit",
            "list",
            "--format",
            "json",
        ],
    );
    serde_json::from_str(&json).unwrap()
}

/// From the sign-in page through the provider's login page; returns the page the collector
/// answers with once it contains `expect`.
async fn sign_in_at_provider(
    client: &fantoccini::Client,
    web: &str,
    login: &str,
    mfa: bool,
    expect: &str,
) -> String {
    client.goto(&format!("{web}/login")).await.unwrap();
    submit(client, "#oidc-login", "idp-login").await;
    fill(client, "#idp-login", login).await;
    if mfa {
        click(client, "#idp-mfa").await;
    }
    submit(client, "#idp-submit", expect).await
}

#[tokio::test]
async fn people_sign_in_through_the_openid_provider_in_chromium_with_the_role_of_their_groups() {
    let setup = setup().await;
    let web = &setup.web;
    let driver = Driver::start();
    let profile = tempfile::tempdir().unwrap();
    let client = browser(&driver, profile.path()).await;

    // The owner, with a second factor: My systems shows her two systems and not the third.
    let home = sign_in_at_provider(&client, web, "anna", true, "Logga ut").await;
    assert_eq!(client.current_url().await.unwrap().path(), "/", "{home}");
    assert!(
        home.contains("Patientjournal") && home.contains("Läkemedelsrobot avdelning 4"),
        "{home}"
    );
    assert!(!home.contains("Kameraövervakning"), "{home}");
    assert!(home.contains("Anna Ägare (Systemägare)"), "{home}");
    // Another owner's system by URL: 404, as for a local account.
    client
        .goto(&format!("{web}/systems/kameror"))
        .await
        .unwrap();
    assert!(
        client.source().await.unwrap().contains("Sidan finns inte"),
        "an OIDC owner reached another owner's system"
    );
    click(&client, "form[action='/logout'] button").await;
    // The provider's session cookie lives on 127.0.0.1 too: forget it, so the provider asks
    // again and the next person signs in afresh.
    client.delete_all_cookies().await.unwrap();

    // Without a second factor: refused, though the group is right.
    let refused = sign_in_at_provider(&client, web, "anna", false, "saknade ett andra steg").await;
    assert!(!refused.contains("Logga ut"), "{refused}");
    client.goto(&format!("{web}/")).await.unwrap();
    assert_eq!(client.current_url().await.unwrap().path(), "/login");
    client.delete_all_cookies().await.unwrap();

    // In no mapped group: refused.
    let refused = sign_in_at_provider(&client, web, "eve", true, "inte med i någon grupp").await;
    assert!(!refused.contains("Logga ut"), "{refused}");
    client.delete_all_cookies().await.unwrap();

    // The coordinator: every system, and the coordinator's pages.
    let home = sign_in_at_provider(&client, web, "sam", true, "Logga ut").await;
    assert!(
        home.contains("Kameraövervakning") && home.contains("Patientjournal"),
        "{home}"
    );
    assert!(home.contains("href=\"/approvals\""), "{home}");
    client.close().await.unwrap();

    let entries = audit(&setup.collector);
    let issuer = &setup.provider.issuer;
    let of = |action: &str| -> Vec<&serde_json::Value> {
        entries.iter().filter(|e| e["action"] == action).collect()
    };
    let sign_ins: Vec<&str> = of("web.sign_in")
        .iter()
        .map(|e| e["actor"].as_str().unwrap())
        .collect();
    assert_eq!(
        sign_ins,
        [format!("oidc:{issuer}#anna"), format!("oidc:{issuer}#sam")],
        "{entries:#?}"
    );
    let refusals = of("web.oidc_refused");
    assert_eq!(refusals.len(), 2, "{entries:#?}");
    let reasons = refusals
        .iter()
        .map(|e| {
            e["detail"]["reason"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect::<Vec<_>>();
    assert!(reasons[0].contains("require_amr"), "{reasons:?}");
    assert!(reasons[1].contains("no group"), "{reasons:?}");
    // The account the provider vouched for cannot sign in locally (it has no password).
    let users = ok(
        "tillsyn-collector",
        &["--dir", setup.collector.path(), "user", "list"],
    );
    assert!(users.contains("anna@kommun.se"), "{users}");
}

/// One HTTPS request with curl against the test CA, cookies in `jar`, redirects not followed.
/// Returns (status, Location header, body).
fn curl(ca: &Path, jar: &Path, url: &str, form: Option<&str>) -> (u16, Option<String>, String) {
    let mut command = Command::new("curl");
    command
        .args(["-s", "--noproxy", "*", "--max-time", "20", "--cacert"])
        .arg(ca)
        .arg("-b")
        .arg(jar)
        .arg("-c")
        .arg(jar)
        .args(["-D", "-", "-o", "-"]);
    if let Some(form) = form {
        command.args(["--data-raw", form]);
    }
    let out = command.arg(url).output().unwrap();
    assert!(out.status.success(), "curl {url}: {out:?}");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap();
    let location = head.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("location")
            .then(|| value.trim().to_string())
    });
    (status, location, body.to_string())
}

fn csrf_of(page: &str) -> String {
    let start = page.find("name=\"csrf\" value=\"").unwrap() + 19;
    page[start..start + 64].to_string()
}

/// Starts a flow at the collector and walks the provider's redirects and login page (with a
/// second factor) until the provider sends the browser back; returns that callback URL.
fn callback_url(setup: &Setup, jar: &Path, login: &str) -> String {
    let ca = setup.ca();
    let (_, _, page) = curl(&ca, jar, &format!("{}/login", setup.web), None);
    let csrf = csrf_of(&page);
    let (status, mut next, _) = curl(
        &ca,
        jar,
        &format!("{}/oidc/login", setup.web),
        Some(&format!("csrf={csrf}")),
    );
    assert_eq!(status, 303);
    for _ in 0..12 {
        let url = next.take().unwrap();
        let url = if url.starts_with('/') {
            format!("{}{url}", setup.provider.issuer)
        } else {
            url
        };
        if url.starts_with(&format!("{}/oidc/callback", setup.web)) {
            return url;
        }
        let (status, location, body) = curl(&ca, jar, &url, None);
        if location.is_some() {
            next = location;
            continue;
        }
        assert_eq!(status, 200, "{url}: {body}");
        let action = body
            .split("action=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap_or_else(|| panic!("no login form at {url}: {body}"));
        let (_, location, body) = curl(
            &ca,
            jar,
            &format!("{}{action}", setup.provider.issuer),
            Some(&format!("login={login}&mfa=on")),
        );
        next = Some(location.unwrap_or_else(|| panic!("login refused: {body}")));
    }
    panic!("the provider never sent the browser back");
}

#[tokio::test]
async fn a_wrong_state_a_replayed_callback_and_another_flows_code_are_refused() {
    let setup = setup().await;
    let ca = setup.ca();
    let jar = setup.files.path().join("cookies");

    // The right callback works once: the session cookie is set, My systems answers.
    let url = callback_url(&setup, &jar, "anna");
    let (status, _, body) = curl(&ca, &jar, &url, None);
    assert_eq!(status, 200, "{body}\n{:#?}", audit(&setup.collector));
    assert!(body.contains("Du är inloggad"), "{body}");
    let (status, _, home) = curl(&ca, &jar, &format!("{}/", setup.web), None);
    assert_eq!(status, 200);
    assert!(home.contains("Patientjournal"), "{home}");
    // Replayed: the flow is spent.
    let (status, _, body) = curl(&ca, &jar, &url, None);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("misslyckades"), "{body}");

    // A state that is not the one sent: refused, and the flow is spent with it.
    let jar2 = setup.files.path().join("cookies2");
    let url = callback_url(&setup, &jar2, "anna");
    let state = url
        .split("state=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    let forged = url.replace(&format!("state={state}"), "state=forged-state");
    let (status, _, body) = curl(&ca, &jar2, &forged, None);
    assert_eq!(status, 400, "{body}");
    let (status, _, _) = curl(&ca, &jar2, &url, None);
    assert_eq!(status, 400, "the flow must be spent by the forged attempt");
    let (_, location, _) = curl(&ca, &jar2, &format!("{}/", setup.web), None);
    assert_eq!(location.as_deref(), Some("/login"));

    // Flow A's code with flow B's state (B's cookie, nonce and PKCE verifier): refused.
    let jar3 = setup.files.path().join("cookies3");
    let first = callback_url(&setup, &jar3, "anna");
    let second = callback_url(&setup, &jar3, "anna");
    let code_of = |url: &str| {
        url.split("code=")
            .nth(1)
            .unwrap()
            .split('&')
            .next()
            .unwrap()
            .to_string()
    };
    let mixed = second.replace(&code_of(&second), &code_of(&first));
    let (status, _, body) = curl(&ca, &jar3, &mixed, None);
    assert_eq!(status, 400, "{body}");
    let (_, location, _) = curl(&ca, &jar3, &format!("{}/", setup.web), None);
    assert_eq!(location.as_deref(), Some("/login"));

    // No refusal above got as far as a verified ID token, so none is audited as a person's.
    let entries = audit(&setup.collector);
    assert_eq!(
        entries
            .iter()
            .filter(|e| e["action"] == "web.sign_in")
            .count(),
        1,
        "{entries:#?}"
    );
}
