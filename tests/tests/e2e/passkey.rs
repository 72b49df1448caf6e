//! Passkeys in a real browser: Debian's chromium with ChromeDriver's WebDriver Virtual
//! Authenticator (a CTAP2 platform authenticator with resident keys and user verification,
//! added over `POST /session/{id}/webauthn/authenticator`), against a real `serve --web`.
//! WebAuthn takes no IP address as relying party id, so `[web] public_url` names
//! `tillsyn.test`, which the browser resolves to 127.0.0.1 (web.rs's host-resolver rule); the
//! collector's certificate is accepted as in the other browser tests.

use std::time::{SystemTime, UNIX_EPOCH};

use fantoccini::{Client, Locator};

use crate::harness::Collector;
use crate::web::{Driver, browser, click, fill, submit, user_add};

/// ChromeDriver's "Add Virtual Authenticator" (WebAuthn Level 2 §11.3).
#[derive(Debug)]
struct AddVirtualAuthenticator;

impl fantoccini::wd::WebDriverCompatibleCommand for AddVirtualAuthenticator {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/webauthn/authenticator",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _request_url: &url::Url) -> (http::Method, Option<String>) {
        let body = serde_json::json!({
            "protocol": "ctap2",
            "transport": "internal",
            "hasResidentKey": true,
            "hasUserVerification": true,
            "isUserVerified": true,
        });
        (http::Method::POST, Some(body.to_string()))
    }
}

/// The TOTP code `offset` 30-second steps from now.
fn totp(secret_hex: &str, offset: i64) -> String {
    let key = hex::decode(secret_hex).unwrap();
    let totp = totp_rs::TOTP::new_unchecked(totp_rs::Algorithm::SHA1, 6, 1, 30, key);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .cast_signed();
    totp.generate((now + offset * 30).cast_unsigned())
}

/// Enrols, confirming with the previous step's code (the current one signs in, the next one
/// adds the passkey). Returns the TOTP key.
async fn enrol(client: &Client, link: &str, password: &str) -> String {
    client.goto(link).await.unwrap();
    let shown = client
        .find(Locator::Id("totp-secret"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let secret = hex::encode(totp_rs::Secret::Encoded(shown).to_bytes().unwrap());
    fill(client, "#password", password).await;
    fill(client, "#password2", password).await;
    fill(client, "#code", &totp(&secret, -1)).await;
    submit(client, "form button[type=submit]", "Ditt konto är klart").await;
    secret
}

#[tokio::test]
async fn a_passkey_added_in_chromium_replaces_the_code_after_the_password() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let origin = format!("https://tillsyn.test:{port}");
    let (collector, web) = Collector::start_with_web_on(
        &format!("127.0.0.1:{port}"),
        &format!("[web]\npublic_url = \"{origin}\"\n"),
    );
    assert_eq!(web, origin);
    let link = user_add(&collector, "sam@kommun.se", "Sam Samordnare", "coordinator");
    assert!(
        link.starts_with(&format!("{origin}/enrol?token=")),
        "{link}"
    );
    let password = "ett långt lösenord för sam";

    let driver = Driver::start();
    let profile = tempfile::tempdir().unwrap();
    let client = browser(&driver, profile.path()).await;
    client
        .issue_cmd(AddVirtualAuthenticator)
        .await
        .unwrap_or_else(|e| panic!("chromedriver's virtual authenticator: {e}"));

    // Password + TOTP, as always.
    let secret = enrol(&client, &link, password).await;
    client.goto(&format!("{web}/login")).await.unwrap();
    fill(&client, "#email", "sam@kommun.se").await;
    fill(&client, "#password", password).await;
    fill(&client, "#code", &totp(&secret, 0)).await;
    submit(&client, "form.stack button[type=submit]", "Logga ut").await;

    // The security page: a label and a fresh code, then the browser's passkey.
    client.goto(&format!("{web}/security")).await.unwrap();
    fill(&client, "#passkey-label", "Bärbar dator").await;
    fill(&client, "#passkey-code", &totp(&secret, 1)).await;
    let page = submit(&client, "#passkey-add-submit", "Nyckeln är tillagd").await;
    assert!(page.contains("Bärbar dator"), "{page}");
    // The page as a person sees it (with TILLSYN_SCREENSHOTS=1, docs/screenshots/security.png).
    let shots = if std::env::var_os("TILLSYN_SCREENSHOTS").is_some() {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/screenshots")
    } else {
        std::env::temp_dir().join(format!("tillsyn-shots-{}", std::process::id()))
    };
    std::fs::create_dir_all(&shots).unwrap();
    let png = client.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"));
    std::fs::write(shots.join("security.png"), png).unwrap();

    // Signed out, then in again with the password and the passkey instead of a code.
    submit(&client, "form[action='/logout'] button", "passkey-login").await;
    fill(&client, "#email", "sam@kommun.se").await;
    fill(&client, "#password", password).await;
    click(&client, "#passkey-login").await;
    let mut home = String::new();
    for _ in 0..100 {
        home = client.source().await.unwrap();
        if home.contains("Logga ut") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let url = client.current_url().await.unwrap();
    assert_eq!(url.path(), "/", "{home}");
    assert!(
        home.contains("Logga ut") && home.contains("Mina system"),
        "{home}"
    );

    // The audit log names Sam for the addition and the sign-in with the passkey.
    client.goto(&format!("{web}/audit")).await.unwrap();
    let audit = client.source().await.unwrap();
    assert!(
        audit.contains("web.passkey_add") && audit.contains("Bärbar dator"),
        "{audit}"
    );
    assert!(
        audit.contains("second_factor") && audit.contains("local:sam@kommun.se"),
        "{audit}"
    );
    // Ends the WebDriver session so chromedriver stops its Chromium; killing chromedriver on
    // drop alone leaves the browser running.
    client.close().await.unwrap();
}
