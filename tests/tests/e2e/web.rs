//! The web interface in a real browser: Debian's chromium, headless, driven over WebDriver by
//! chromedriver (installed by scripts/deps/browser.sh), against a real `serve --web` with data
//! reported by real agents over mTLS. Chromium talks only to 127.0.0.1 (every other name
//! resolves to nothing). The screenshots it takes are the README's: with
//! `TILLSYN_SCREENSHOTS=1` they are written to docs/screenshots/, otherwise to a temp dir.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fantoccini::{Client, ClientBuilder, Locator};

use crate::harness::{Collector, ok, report};

pub(crate) const REGISTER: &str = "System-ID;Namn;Systemägare;Systemägare e-post;Informationsägare;K;R;T;Klassad datum;Klassad av;Värdnamn\n\
journal;Patientjournal;Anna Ägare;anna@kommun.se;;3;3;2;2026-01-15;Samordnaren;journal-*\n\
robot;Läkemedelsrobot avdelning 4;Bo Ek;bo@kommun.se;Anna Ägare <anna@kommun.se>;3;3;3;2026-02-01;Samordnaren;robot-*\n\
kameror;Kameraövervakning;Cecilia Ek;cecilia@kommun.se;;2;2;1;2026-02-01;IT;kamera-*\n";

/// Imports [`REGISTER`] and has one agent report each of its three hosts.
pub(crate) async fn seed(collector: &Collector) {
    let imported = collector.import("register.csv", REGISTER);
    assert!(
        imported.status.success(),
        "{}",
        String::from_utf8_lossy(&imported.stderr)
    );
    for host in ["journal-db-01", "robot-ctl-4", "kamera-nvr"] {
        let agent = collector.enroll();
        let mut client = agent.client(collector).await;
        client
            .report(report(&uuid::Uuid::now_v7().to_string(), host))
            .await
            .unwrap();
    }
}

/// chromedriver on a free loopback port; killed on drop.
pub(crate) struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    pub(crate) fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("chromedriver")
            .args([format!("--port={port}"), "--allowed-ips=127.0.0.1".into()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("chromedriver (scripts/deps/browser.sh installs it): {e}"));
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) async fn browser(driver: &Driver, profile: &std::path::Path) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert("browserName".into(), "chrome".into());
    // The collector's certificate is signed by its own CA, which chromium does not know.
    caps.insert("acceptInsecureCerts".into(), true.into());
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": "/usr/bin/chromium",
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run",
                "--disable-default-apps", "--disable-extensions", "--no-proxy-server",
                // tillsyn.test: a host name for the passkey test (WebAuthn takes no IP address
                // as relying party id); it too is 127.0.0.1.
                "--host-resolver-rules=MAP tillsyn.test 127.0.0.1, MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
                "--window-size=1280,1400", "--lang=sv-SE",
                format!("--user-data-dir={}", profile.display()),
            ],
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .unwrap_or_else(|e| panic!("chromedriver session: {e}"))
}

fn totp(secret_hex: &str, offset_steps: u64) -> String {
    let key = hex::decode(secret_hex).unwrap();
    let totp = totp_rs::TOTP::new_unchecked(totp_rs::Algorithm::SHA1, 6, 1, 30, key);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    totp.generate(now + offset_steps * 30)
}

pub(crate) async fn fill(client: &Client, css: &str, text: &str) {
    let field = client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"));
    field.clear().await.unwrap();
    field.send_keys(text).await.unwrap();
}

pub(crate) async fn click(client: &Client, css: &str) {
    client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .unwrap();
}

/// Submits with a click and waits (up to 10 s) for the page that answers to contain `expect`;
/// returns that page's source.
pub(crate) async fn submit(client: &Client, css: &str, expect: &str) -> String {
    click(client, css).await;
    let mut source = String::new();
    for _ in 0..100 {
        source = client.source().await.unwrap();
        if source.contains(expect) {
            return source;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("after clicking {css}: no {expect:?} in {source}");
}

/// Follows the enrolment link: reads the TOTP key off the page, chooses a password, confirms
/// with a code. Returns the key.
async fn enrol(client: &Client, link: &str, password: &str) -> String {
    client.goto(link).await.unwrap();
    // The key as a person reads it off the page into an authenticator app (base32).
    let shown = client
        .find(Locator::Id("totp-secret"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(shown.len() >= 32, "base32 key shown: {shown:?}");
    let secret = hex::encode(totp_rs::Secret::Encoded(shown).to_bytes().unwrap());
    fill(client, "#password", password).await;
    fill(client, "#password2", password).await;
    fill(client, "#code", &totp(&secret, 0)).await;
    submit(client, "form button[type=submit]", "Ditt konto är klart").await;
    secret
}

/// Signs in with the code of the next step (the current one was spent at enrolment).
async fn sign_in(client: &Client, web: &str, email: &str, password: &str, secret: &str) {
    client.goto(&format!("{web}/login")).await.unwrap();
    fill(client, "#email", email).await;
    fill(client, "#password", password).await;
    fill(client, "#code", &totp(secret, 1)).await;
    submit(client, "form.stack button[type=submit]", "Logga ut").await;
    let url = client.current_url().await.unwrap();
    assert_eq!(
        url.path(),
        "/",
        "sign-in of {email} failed: {}",
        client.source().await.unwrap()
    );
}

async fn screenshot(client: &Client, dir: &std::path::Path, name: &str) {
    let png = client.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "{name}: not a PNG");
    std::fs::write(dir.join(name), png).unwrap();
}

pub(crate) fn user_add(collector: &Collector, email: &str, name: &str, role: &str) -> String {
    let out = ok(
        "tillsyn-collector",
        &[
            "--dir",
            collector.path(),
            "user",
            "add",
            "--email",
            email,
            "--name",
            name,
            "--role",
            role,
        ],
    );
    out.lines().last().unwrap().trim().to_string()
}

// One session in the browser read top to bottom; splitting it would hide the sequence.
#[allow(clippy::too_many_lines)]
#[tokio::test]
async fn owners_and_a_coordinator_use_the_web_interface_in_chromium() {
    let (collector, web) = Collector::start_with_web();
    assert!(web.starts_with("https://127.0.0.1:"), "{web}");
    seed(&collector).await;
    // Evaluates: findings and the links the pages read.
    let findings = collector.findings(&[]);
    assert!(
        findings
            .iter()
            .any(|f| f["system_id"] == "journal" && f["rule"] == "k3-auth"),
        "{findings:#?}"
    );
    // The links name `[web] public_url` (default https://127.0.0.1:8443); this listener was
    // bound on port 0, so the test keeps the link's path and query only.
    let local = |link: String| format!("{web}{}", &link[link.find("/enrol?token=").unwrap()..]);
    let anna_link = local(user_add(
        &collector,
        "anna@kommun.se",
        "Anna Ägare",
        "owner",
    ));
    let sam_link = local(user_add(
        &collector,
        "sam@kommun.se",
        "Sam Samordnare",
        "coordinator",
    ));

    let shots = if std::env::var_os("TILLSYN_SCREENSHOTS").is_some() {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/screenshots")
    } else {
        std::env::temp_dir().join(format!("tillsyn-shots-{}", std::process::id()))
    };
    std::fs::create_dir_all(&shots).unwrap();
    let driver = Driver::start();
    let profile = tempfile::tempdir().unwrap();
    let client = browser(&driver, profile.path()).await;

    // The owner: enrols, signs in with password + TOTP, sees her two systems only.
    let anna_secret = enrol(&client, &anna_link, "ett långt lösenord för anna").await;
    client.goto(&format!("{web}/login")).await.unwrap();
    screenshot(&client, &shots, "login.png").await;
    sign_in(
        &client,
        &web,
        "anna@kommun.se",
        "ett långt lösenord för anna",
        &anna_secret,
    )
    .await;
    let home = client.source().await.unwrap();
    assert!(
        home.contains("Patientjournal") && home.contains("Läkemedelsrobot avdelning 4"),
        "{home}"
    );
    assert!(
        !home.contains("Kameraövervakning"),
        "another owner's system is shown"
    );
    let heading = client
        .find(Locator::Css("h1"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(heading, "Mina system");
    assert!(home.contains("Årlig översyn senast"), "å ä ö lost");
    screenshot(&client, &shots, "my-systems.png").await;

    // Editing the URL to another owner's system: the same page as for nothing at all.
    client
        .goto(&format!("{web}/systems/kameror"))
        .await
        .unwrap();
    let refused = client.source().await.unwrap();
    assert!(
        refused.contains("Sidan finns inte") && !refused.contains("Kameraövervakning"),
        "{refused}"
    );

    // The owner asks for a risk acceptance of the K3 finding.
    client
        .goto(&format!("{web}/systems/journal"))
        .await
        .unwrap();
    screenshot(&client, &shots, "system.png").await;
    let page = client.source().await.unwrap();
    assert!(
        page.contains("har K3-information men flerfaktorsinloggning är")
            && page.contains("K3-information kräver alltid stark"),
        "the finding's message and policy clause in Swedish: {page}"
    );
    let finding = findings
        .iter()
        .find(|f| f["system_id"] == "journal" && f["rule"] == "k3-auth")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let today = time_today();
    fill(
        &client,
        &format!("#reason-{finding}"),
        "Ersätts av ny journalserver i maj; åtgärd beställd",
    )
    .await;
    fill(
        &client,
        &format!("#until-{finding}"),
        &today
            .replacen(
                &today[..4],
                &(today[..4].parse::<i32>().unwrap() + 1).to_string(),
                1,
            )
            .replace("-02-29", "-02-28"),
    )
    .await;
    submit(
        &client,
        &format!("#finding-{finding} form button[type=submit]"),
        "Begäran om riskacceptans är skickad",
    )
    .await;
    submit(
        &client,
        "header form button[type=submit]",
        "autocomplete=\"current-password\"",
    )
    .await;

    // The coordinator approves it; the finding is accepted.
    let sam_secret = enrol(&client, &sam_link, "ett långt lösenord för sam").await;
    sign_in(
        &client,
        &web,
        "sam@kommun.se",
        "ett långt lösenord för sam",
        &sam_secret,
    )
    .await;
    client.goto(&format!("{web}/approvals")).await.unwrap();
    let pending = client.source().await.unwrap();
    assert!(
        pending.contains("Ersätts av ny journalserver i maj"),
        "{pending}"
    );
    screenshot(&client, &shots, "approvals.png").await;
    submit(
        &client,
        "button[value=approve]",
        "Riskacceptansen är godkänd",
    )
    .await;
    client
        .goto(&format!("{web}/systems/journal"))
        .await
        .unwrap();
    let accepted = client.source().await.unwrap();
    assert!(accepted.contains("Accepterad risk"), "{accepted}");
    client.close().await.unwrap();

    let after = collector.findings(&["--all"]);
    let state = after
        .iter()
        .find(|f| f["id"] == finding.as_str())
        .unwrap_or_else(|| panic!("{finding} not in {after:#?}"));
    assert_eq!(state["state"], "accepted", "{state:#}");
    assert!(
        state["accepted_by"]
            .as_str()
            .unwrap()
            .contains("sam@kommun.se")
    );
}

/// Today as YYYY-MM-DD (UTC is close enough for an end date a year ahead).
fn time_today() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let days = i64::try_from(secs / 86_400).unwrap();
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Installs the marker a full navigation would wipe and a counter of CSP violations.
async fn watch_page(client: &Client) {
    client
        .execute(
            "window.__tillsynMarker = 1; window.__cspViolations = [];
             document.addEventListener('securitypolicyviolation',
                 e => window.__cspViolations.push(e.violatedDirective + ' ' + e.blockedURI));",
            vec![],
        )
        .await
        .unwrap();
}

async fn eval(client: &Client, script: &str) -> serde_json::Value {
    client.execute(script, vec![]).await.unwrap()
}

/// Waits (up to 10 s) until `script` returns true.
async fn wait_for(client: &Client, script: &str, what: &str) {
    for _ in 0..100 {
        if eval(client, script).await == serde_json::Value::Bool(true) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what}: {}", client.source().await.unwrap());
}

/// After a filter changed: the page was not reloaded, no policy was violated, the address and
/// the CSV link carry `expect` (a `name=value` of the query string).
async fn assert_swapped_in_place(client: &Client, expect: &str) {
    assert_eq!(
        eval(client, "return window.__tillsynMarker === 1").await,
        true,
        "the filter navigated to a new page instead of swapping the results"
    );
    assert_eq!(
        eval(client, "return window.__cspViolations").await,
        serde_json::json!([]),
        "Content-Security-Policy violations"
    );
    // htmx ran under script-src 'self' and added no inline styles.
    assert_eq!(
        eval(
            client,
            "return typeof htmx === 'object' && document.querySelectorAll('style').length === 0"
        )
        .await,
        true
    );
    let url = client.current_url().await.unwrap();
    assert!(
        url.query().unwrap_or("").split('&').any(|p| p == expect),
        "the address lacks {expect}: {url}"
    );
    let href = eval(
        client,
        "return document.getElementById('csv-link').getAttribute('href')",
    )
    .await;
    let href = href.as_str().unwrap();
    assert!(
        href.contains('?')
            && href
                .split('?')
                .nth(1)
                .unwrap()
                .split('&')
                .any(|p| p == expect),
        "the CSV link lacks {expect}: {href}"
    );
}

#[tokio::test]
async fn filters_swap_the_results_in_place_with_htmx_in_chromium() {
    let (collector, web) = Collector::start_with_web();
    seed(&collector).await;
    collector.findings(&[]);
    let link = user_add(&collector, "sam@kommun.se", "Sam Samordnare", "coordinator");
    let link = format!("{web}{}", &link[link.find("/enrol?token=").unwrap()..]);
    let driver = Driver::start();
    let profile = tempfile::tempdir().unwrap();
    let client = browser(&driver, profile.path()).await;
    let secret = enrol(&client, &link, "ett långt lösenord för sam").await;
    sign_in(
        &client,
        &web,
        "sam@kommun.se",
        "ett långt lösenord för sam",
        &secret,
    )
    .await;

    // My systems (all three for a coordinator): K2 leaves the cameras only.
    let home = client.source().await.unwrap();
    assert!(
        home.contains("Patientjournal") && home.contains("Kameraövervakning"),
        "{home}"
    );
    watch_page(&client).await;
    client
        .find(Locator::Css("form.filters select[name=k]"))
        .await
        .unwrap()
        .select_by_value("2")
        .await
        .unwrap();
    wait_for(
        &client,
        "const r = document.getElementById('results').textContent;
         return r.includes('Kameraövervakning') && !r.includes('Patientjournal');",
        "the K2 filter did not narrow the list",
    )
    .await;
    assert_swapped_in_place(&client, "k=2").await;

    // The findings list: one system's findings, the table swapped, the CSV link following.
    client.goto(&format!("{web}/findings")).await.unwrap();
    let all = client.source().await.unwrap();
    assert!(
        all.contains("id=\"finding-") && all.contains("/systems/kameror"),
        "{all}"
    );
    watch_page(&client).await;
    client
        .find(Locator::Css("form.filters select[name=system]"))
        .await
        .unwrap()
        .select_by_value("journal")
        .await
        .unwrap();
    wait_for(
        &client,
        "const t = document.querySelector('#results table');
         return !!t && t.querySelectorAll('tbody tr').length > 0
             && !t.innerHTML.includes('/systems/kameror')
             && !t.innerHTML.includes('/systems/robot');",
        "the system filter did not narrow the findings",
    )
    .await;
    assert_swapped_in_place(&client, "system=journal").await;
    let shots = std::env::var_os("TILLSYN_SCREENSHOTS").map_or_else(
        || std::env::temp_dir().join(format!("tillsyn-shots-{}", std::process::id())),
        |_| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/screenshots"),
    );
    std::fs::create_dir_all(&shots).unwrap();
    screenshot(&client, &shots, "findings.png").await;

    // The address htmx pushed is a real page: loading it (no htmx involved) shows the same.
    let pushed = client.current_url().await.unwrap();
    client.goto(pushed.as_str()).await.unwrap();
    let reloaded = client.source().await.unwrap();
    assert!(
        reloaded.contains("<option value=\"journal\" selected")
            && !reloaded.contains("href=\"/systems/kameror\""),
        "{reloaded}"
    );
    client.close().await.unwrap();
}
