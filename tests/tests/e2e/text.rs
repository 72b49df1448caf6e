//! Hostile text end to end: agents reporting hostile host names, a device with a hostile SNMP
//! `sysName` (snmpsim), a TLS peer whose certificate subject holds a right-to-left override,
//! and a register with a formula for a name. Host names are refused; free text is stored
//! escaped; every output (tables, CSV, JSON, the HTML report) is safe for where it goes.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use tillsyn_proto::v1::{EnrollRequest, enrollment_client::EnrollmentClient};
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};

use crate::harness::{Collector, ok, run};

const ESCAPE_TITLE: &str = "evil\x1b]0;pwned\x07\x1b[31m";
const FORMULA: &str = "=HYPERLINK(\"http://x\",\"y\")";
/// What the text gate stores for [`ESCAPE_TITLE`].
const ESCAPE_TITLE_STORED: &str = "evil\\x1b]0;pwned\\x07\\x1b[31m";

/// A fixture root whose only facts are a host name and an os-release.
fn fixture_root(hostname: &str, os_release: &str) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("etc")).unwrap();
    std::fs::write(root.path().join("etc/hostname"), format!("{hostname}\n")).unwrap();
    std::fs::write(root.path().join("etc/os-release"), os_release).unwrap();
    root
}

/// No byte a terminal or a spreadsheet would act on: nothing below 0x20 but newline and tab,
/// no DEL, no C1 control, no bidi control.
fn assert_safe_output(what: &str, text: &str) {
    if let Some(b) = text
        .bytes()
        .find(|b| (*b < 0x20 && *b != b'\n' && *b != b'\t') || *b == 0x7f)
    {
        panic!("{what}: raw byte {b:#04x} in output:\n{text}");
    }
    if let Some(c) = text.chars().find(|c| {
        ('\u{80}'..='\u{9f}').contains(c)
            || ('\u{202a}'..='\u{202e}').contains(c)
            || ('\u{2066}'..='\u{2069}').contains(c)
    }) {
        panic!("{what}: raw {c:?} in output:\n{text}");
    }
}

/// No CSV cell begins with a formula character (OWASP, CSV Injection).
fn assert_no_formula_cell(what: &str, csv_text: &str) {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(csv_text.as_bytes());
    for record in reader.records() {
        for cell in &record.unwrap() {
            assert!(
                !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                "{what}: formula cell {cell:?} in\n{csv_text}"
            );
        }
    }
}

#[tokio::test]
async fn hostile_host_names_are_refused_naming_the_field_and_nothing_is_stored() {
    let collector = Collector::start();
    let agent = collector.enroll();
    for hostname in [ESCAPE_TITLE, FORMULA] {
        let root = fixture_root(hostname, "NAME=Debian\n");
        // JSON logs: the log's own colours aside, nothing of the host name may reach stderr raw.
        let out = run(
            "tillsyn-agent",
            &[
                "--log-format",
                "json",
                "--dir",
                agent.path(),
                "run",
                "--once",
                "--root",
                root.path().to_str().unwrap(),
            ],
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{hostname:?} was accepted");
        assert!(stderr.contains("host.hostname"), "{stderr}");
        assert!(
            stderr.contains("InvalidArgument")
                || stderr.contains("invalid argument")
                || stderr.contains("not a host name"),
            "{stderr}"
        );
        assert_safe_output("agent stderr", &stderr);
    }
    assert!(
        collector.assets().is_empty(),
        "a refused report stored an asset"
    );

    // Enrollment: the host name is checked before the token, which stays unspent.
    let ca = std::fs::read_to_string(collector.ca_pem()).unwrap();
    let channel = Endpoint::from_shared(collector.url.clone())
        .unwrap()
        .tls_config(ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca)))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let token = collector.token(&[]);
    let status = EnrollmentClient::new(channel)
        .enroll(EnrollRequest {
            token: token.clone(),
            csr_pem: "not used: refused before".into(),
            hostname: ESCAPE_TITLE.into(),
            agent_version: "test".into(),
            labels: std::collections::HashMap::default(),
            host_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    assert!(status.message().starts_with("hostname:"), "{status:?}");
    assert_safe_output("enroll refusal", status.message());
    let second = crate::harness::Agent {
        dir: tempfile::tempdir().unwrap(),
    };
    let out = second.enroll(&collector, &token);
    assert!(
        out.status.success(),
        "the refused enrollment spent the token: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The Python virtualenv with the OT simulators (`scripts/deps/ot-peers.sh`).
fn python() -> PathBuf {
    let venv = std::env::var_os("TILLSYN_OT_VENV")
        .map_or_else(|| PathBuf::from("/opt/tillsyn-ot-venv"), PathBuf::from);
    venv.join("bin/python")
}

/// A peer from `agent/tests/peers/`, killed with its process group on drop.
struct Peer(Child);

impl Peer {
    fn start(script: &str, args: &[&str]) -> Self {
        use std::io::{BufRead, BufReader};
        let path = format!(
            "{}/../agent/tests/peers/{script}",
            env!("CARGO_MANIFEST_DIR")
        );
        let mut child = Command::new(python())
            .arg(&path)
            .args(args)
            .process_group(0)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        assert!(
            lines
                .by_ref()
                .map_while(Result::ok)
                .any(|l| l.contains("READY")),
            "peer {script} never became ready"
        );
        std::thread::spawn(move || lines.for_each(drop));
        Self(child)
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.0.id())])
            .status();
        let _ = self.0.wait();
    }
}

/// A self-signed certificate whose subject CN hides a right-to-left override.
fn rtl_certificate(dir: &std::path::Path) -> (String, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["cam.ward4.example".to_string()]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "cam\u{202e}gpj.exe");
    let cert = params.self_signed(&key).unwrap();
    let cert_path = dir.join("rtl.crt");
    let key_path = dir.join("rtl.key");
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    (
        cert_path.to_str().unwrap().to_string(),
        key_path.to_str().unwrap().to_string(),
    )
}

const HOSTILE_REGISTER: &str = "\
systems:
  - id: ward4
    name: '=HYPERLINK(\"http://x\",\"y\")'
    system_owner: { name: \"<script>alert(1)</script> \\u202e\" }
    classification: { k: 3, r: 3, t: 3, classified_at: 2026-06-01, classified_by: CISO }
    links: { hostnames: ['ward4-gw'], cidrs: ['127.0.79.0/24'] }
";

// One scenario read top to bottom (one collector, one sweep): splitting it would repeat the
// set-up and cost CI time.
#[allow(clippy::too_many_lines)]
#[tokio::test]
async fn hostile_text_is_stored_escaped_and_every_output_is_safe() {
    let certs = tempfile::tempdir().unwrap();
    let (cert, key) = rtl_certificate(certs.path());
    let _snmp = Peer::start(
        "snmp_peer.py",
        &[
            "127.0.79.2",
            "16100",
            "public",
            &format!("Switch {FORMULA}"),
            "1.3.6.1.4.1.9.1.1",
            ESCAPE_TITLE,
        ],
    );
    let _https = Peer::start(
        "http_peer.py",
        &["127.0.79.3", "18443", "Camera\u{202e}", &cert, &key],
    );

    let collector = Collector::start();
    let agent = collector.enroll();
    assert!(
        collector
            .import("register.yaml", HOSTILE_REGISTER)
            .status
            .success()
    );
    let sweep = run(
        "tillsyn-agent",
        &[
            "--dir",
            agent.path(),
            "discover",
            "--target",
            "127.0.79.2,127.0.79.3",
            "--ports",
            "16100/snmp,18443/https",
            "--timeout-ms",
            "3000",
            "--json",
            "--report",
        ],
    );
    assert!(
        sweep.status.success(),
        "{}",
        String::from_utf8_lossy(&sweep.stderr)
    );
    assert_safe_output("discover --json", &String::from_utf8_lossy(&sweep.stdout));
    // After the sweep, whose report carries this machine's own host frame.
    let root = fixture_root(
        "ward4-gw",
        &format!("NAME=\"{FORMULA}\"\nVERSION_ID=\"12{ESCAPE_TITLE}\"\n"),
    );
    let out = agent.run_once(Some(root.path()));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Stored: the host frame's free text escaped, with the original length beside it.
    let assets = collector.assets();
    let host = assets.iter().find(|a| a["kind"] == "host").unwrap();
    assert_eq!(host["hostname"], "ward4-gw");
    assert_eq!(
        host["facts"]["os_name"], FORMULA,
        "a formula is text: kept as it is"
    );
    assert_eq!(
        host["facts"]["os_version"],
        format!("12{ESCAPE_TITLE_STORED}")
    );
    let note = &host["facts"]["escaped_text"][0];
    assert_eq!(note["field"], "os_version", "{host:#}");
    assert_eq!(note["escaped"], 3);
    assert_eq!(note["original_bytes"], 2 + ESCAPE_TITLE.len());

    // The device's sysName: escaped visibly (the agent applies the same gate to protocol text).
    let sys_names = collector.stored_observations("sys_name").await;
    assert_eq!(sys_names.len(), 1, "{sys_names:?}");
    assert_eq!(sys_names[0].0, ESCAPE_TITLE_STORED);
    // The certificate subject: the right-to-left override escaped visibly.
    let subjects = collector.stored_observations("tls_cert_subject").await;
    assert_eq!(subjects.len(), 1, "{subjects:?}");
    assert_eq!(subjects[0].0, "CN=cam\\u{202e}gpj.exe");
    let titles = collector.stored_observations("title").await;
    assert_eq!(titles.len(), 1, "{titles:?}");
    assert_eq!(titles[0].0, "Camera\\u{202e}");

    // Every output: no raw control or bidi character; CSV without a formula-leading cell.
    let dir = collector.path();
    for args in [
        vec!["assets"],
        vec!["assets", "--format", "json"],
        vec!["assets", "--format", "csv"],
        vec!["findings"],
        vec!["findings", "--format", "json"],
        vec!["findings", "--format", "csv"],
        vec!["systems"],
        vec!["systems", "--format", "csv"],
        vec!["changes"],
        vec!["agent", "list"],
        vec!["audit", "list"],
    ] {
        let mut full = vec!["--dir", dir];
        full.extend(&args);
        let text = ok("tillsyn-collector", &full);
        assert_safe_output(&args.join(" "), &text);
        if args.ends_with(&["csv"]) {
            assert_no_formula_cell(&args.join(" "), &text);
        }
    }
    let table = ok("tillsyn-collector", &["--dir", dir, "assets"]);
    assert!(
        table.contains(&format!("{FORMULA} 12{ESCAPE_TITLE_STORED}")),
        "{table}"
    );
    let csv = ok(
        "tillsyn-collector",
        &["--dir", dir, "findings", "--format", "csv"],
    );
    assert!(
        csv.contains(&format!("\"'{}\"", FORMULA.replace('"', "\"\""))),
        "{csv}"
    );
    let findings = collector.findings(&[]);
    assert!(
        findings
            .iter()
            .any(|f| f["system_id"] == "ward4" && f["asset"] == "ward4-gw"),
        "{findings:#?}"
    );

    // The HTML report: markup and controls from the register shown as text.
    let html = ok("tillsyn-collector", &["--dir", dir, "report"]);
    assert_safe_output("report", &html);
    assert!(!html.contains("<script>"), "unescaped markup in the report");
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt; \\u{202e}"),
        "{html}"
    );
}
