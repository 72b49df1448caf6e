//! The policy's clauses on logging (6.5) and high privileges (6.4), the S aspect, the ISO 27001
//! / NIS2 mapping and the access list, end to end with the agent's real fixture inventories.

use crate::harness::{Collector, auth_fixture, copy_tree, ok, open_of, run, sample_register};

const REGISTER: &str = "\
systems:
  - id: journal
    name: Patientjournal
    system_owner: { name: Anna Svensson, email: anna.svensson@kommun.example }
    classification: { k: 3, r: 3, t: 2, classified_at: 2026-06-01, classified_by: CISO }
    links: { labels: { site: ward4 } }
  - id: passage
    name: Passagesystem
    system_owner: { name: Bo Ek, email: bo.ek@kommun.example }
    classification: { k: 1, r: 2, t: 2, s: 2, classified_at: 2026-06-01, classified_by: CISO }
    links: { labels: { site: entrance } }
";

#[test]
#[allow(clippy::too_many_lines)]
fn privileged_access_logging_and_the_access_list() {
    let collector = Collector::start();
    let journal = collector.enroll_with(&["--label", "site=ward4"]);
    let passage = collector.enroll_with(&["--label", "site=entrance"]);
    let out = collector.import("register.yaml", REGISTER);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // RHEL 9 cloud image: cloud-init's NOPASSWD rule for cloud-user, who is in wheel and
    // logged in ten days ago; olle is in wheel too and never logged in.
    let root = tempfile::tempdir().unwrap();
    rhel9_with_a_dormant_administrator(root.path());
    assert!(journal.run_once(Some(root.path())).status.success());
    assert!(
        passage
            .run_once(Some(&auth_fixture("debian12-default")))
            .status
            .success()
    );

    let findings = collector.findings(&[]);
    let privileged = open_of(&findings, "k23-privileged", "journal");
    assert_eq!(privileged.len(), 1, "{findings:#?}");
    let evidence = privileged[0]["evidence"].to_string();
    assert!(
        evidence.contains("/etc/sudoers.d/90-cloud-init-users") && evidence.contains("NOPASSWD"),
        "the evidence names the sudoers line: {evidence}"
    );
    assert!(privileged[0]["policy"].as_str().unwrap().contains("6.4"));
    let message = privileged[0]["message"].as_str().unwrap();
    assert!(
        message.ends_with(
            "administrators not seen logging in for 90 days or more; never logged in: olle"
        ),
        "cloud-user logged in ten days ago and is not named: {message}"
    );
    assert!(
        evidence.contains("olle: never logged in") && !evidence.contains("cloud-user: last login"),
        "{evidence}"
    );
    // Logging follows S: the K1 access-control system with S2 is judged, the fixture host has
    // no log configuration at all.
    assert_eq!(open_of(&findings, "k23-logging", "journal").len(), 1);
    let passage_logging = open_of(&findings, "k23-logging", "passage");
    assert_eq!(passage_logging.len(), 1, "{findings:#?}");
    assert!(
        passage_logging[0]["message"]
            .as_str()
            .unwrap()
            .contains("S2")
    );
    assert!(
        open_of(&findings, "k23-privileged", "passage").is_empty(),
        "K1: not judged"
    );

    // The access list names cloud-user with the rule that makes it an administrator.
    let csv = ok(
        "tillsyn-collector",
        &[
            "--dir",
            collector.path(),
            "systems",
            "access",
            "journal",
            "--format",
            "csv",
        ],
    );
    assert!(
        csv.starts_with("host,account,uid,password,last_login,privilege,via,evidence"),
        "{csv}"
    );
    let olle = csv
        .lines()
        .find(|l| l.contains(",olle,"))
        .unwrap_or_else(|| panic!("{csv}"));
    assert!(olle.contains(",never,administrator,group wheel"), "{olle}");
    let cloud_user = csv
        .lines()
        .find(|l| l.contains(",cloud-user,"))
        .unwrap_or_else(|| panic!("{csv}"));
    assert!(
        cloud_user.contains("administrator") && cloud_user.contains("sudo without password"),
        "{cloud_user}"
    );
    let missing = run(
        "tillsyn-collector",
        &["--dir", collector.path(), "systems", "access", "nosuch"],
    );
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no system \"nosuch\""));

    // The rule table with its mappings.
    let rules: serde_json::Value = serde_json::from_str(&ok(
        "tillsyn-collector",
        &[
            "--dir",
            collector.path(),
            "rules",
            "list",
            "--format",
            "json",
        ],
    ))
    .unwrap();
    let k3 = rules
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == "k3-auth")
        .unwrap();
    assert!(k3["iso27001"].as_array().unwrap().contains(&"A.8.5".into()));
    assert!(k3["nis2"].as_array().unwrap().contains(&"21(2)(j)".into()));
    assert!(
        rules
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == "k23-logging")
    );
}

/// The rhel9-default fixture with `wheel` (cloud-user, olle), olle's account, and login records
/// in glibc's 64-bit layout: cloud-user's lastlog record (uid 1000) ten days old, nothing for olle
/// (uid 1001), and a wtmp whose only session is cloud-user's.
fn rhel9_with_a_dormant_administrator(root: &std::path::Path) {
    copy_tree(&auth_fixture("rhel9-default"), root);
    let append = |path: &str, text: &str| {
        let full = root.join(path);
        let old = std::fs::read_to_string(&full).unwrap_or_default();
        std::fs::write(full, old + text).unwrap();
    };
    append("etc/passwd", "olle:x:1001:1001:Olle:/home/olle:/bin/bash\n");
    append("etc/shadow", "olle:$6$salt$hash:19700:0:99999:7:::\n");
    append("etc/group", "wheel:x:10:cloud-user,olle\n");
    let ten_days_ago = i32::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            - 10 * 86_400,
    )
    .unwrap();
    let mut lastlog = vec![0u8; 1001 * 292];
    lastlog[1000 * 292..1000 * 292 + 4].copy_from_slice(&ten_days_ago.to_le_bytes());
    let mut wtmp = vec![0u8; 384];
    wtmp[..2].copy_from_slice(&7i16.to_le_bytes()); // USER_PROCESS
    wtmp[44..54].copy_from_slice(b"cloud-user");
    wtmp[340..344].copy_from_slice(&ten_days_ago.to_le_bytes());
    std::fs::create_dir_all(root.join("var/log")).unwrap();
    std::fs::write(root.join("var/log/lastlog"), lastlog).unwrap();
    std::fs::write(root.join("var/log/wtmp"), wtmp).unwrap();
}

#[test]
fn a_bad_s_level_and_a_bad_mapping_are_named() {
    let collector = Collector::start();
    let bad = REGISTER.replace("s: 2", "s: 4");
    let out = collector.import("bad.yaml", &bad);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("systems[1]: s:") && stderr.contains("not a level 0-3"),
        "{stderr}"
    );

    let config = collector.dir.path().join("collector.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str("\n[rules.mappings.k3-auth]\niso27001 = [\"A.8.5\", \"A.9.9\"]\n");
    std::fs::write(&config, text).unwrap();
    let out = run(
        "tillsyn-collector",
        &["--dir", collector.path(), "rules", "list"],
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("rules.mappings.k3-auth.iso27001: \"A.9.9\""),
        "{stderr}"
    );
}

fn poppler(tool: &str, args: &[&str]) -> String {
    let out = std::process::Command::new(tool)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("{tool}: {e} (poppler-utils is installed by scripts/deps/browser.sh)")
        });
    assert!(
        out.status.success(),
        "{tool} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
#[allow(clippy::too_many_lines)]
fn the_swedish_management_review_as_json_html_and_a_pdf_of_whole_pages() {
    let collector = Collector::start();
    let agent = collector.enroll_with(&["--label", "source=quickstart"]);
    assert!(
        collector
            .import("register.csv", &sample_register())
            .status
            .success()
    );
    assert!(
        agent
            .run_once(Some(&auth_fixture("rhel9-default")))
            .status
            .success()
    );

    let json: serde_json::Value = serde_json::from_str(&ok(
        "tillsyn-collector",
        &["--dir", collector.path(), "report", "--format", "json"],
    ))
    .unwrap();
    assert_eq!(json["lang"], "sv");
    let review = &json["review"];
    assert_eq!(review["year"]["systems"], 6);
    assert_eq!(review["year"]["classified"], 5);
    let journal = review["systems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "patientjournal")
        .unwrap();
    assert_eq!(journal["classification"], "K3 R3 T2");
    assert_eq!(journal["owner"], "Anna Svensson");
    assert_eq!(journal["rules"]["k3-auth"], "not_compliant", "{journal}");
    assert_eq!(
        journal["rules"]["k23-privileged"], "not_compliant",
        "{journal}"
    );
    assert!(
        journal["rules"].get("k2-auth").is_none(),
        "k2-auth does not apply to K3"
    );
    let a85 = review["standards"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["control"] == "A.8.5")
        .unwrap();
    assert!(a85["rules"].as_array().unwrap().contains(&"k3-auth".into()));
    assert_eq!(a85["meeting"], 0);
    assert!(a85["applicable"].as_u64().unwrap() >= 2, "{a85}");
    let worst = review["worst_findings"].as_array().unwrap();
    assert!(!worst.is_empty());
    // The findings speak Swedish too; the CLI's own listing stays English.
    let messages = worst
        .iter()
        .map(|f| f["message"].as_str().unwrap())
        .collect::<Vec<_>>();
    assert!(
        messages
            .iter()
            .any(|m| m.contains("har K3-information men flerfaktorsinloggning är")),
        "{messages:#?}"
    );
    assert!(
        messages.iter().all(|m| !m.contains(" holds K")),
        "{messages:#?}"
    );
    assert_k3_access_list(review);
    assert!(!review["monthly"].as_array().unwrap().is_empty());

    let html = ok("tillsyn-collector", &["--dir", collector.path(), "report"]);
    for heading in [
        "<html lang=\"sv\"",
        "Ledningens genomgång: informationssäkerhet",
        "Året i siffror",
        "Efterlevnad per K-nivå",
        "Per system",
        "Läkemedelsrobot avdelning 4",
        "De tio allvarligaste öppna avvikelserna",
        "ISO/IEC 27001 och NIS2",
        "Behörigheter i K3-system",
        "21(2)(j)",
    ] {
        assert!(html.contains(heading), "missing {heading:?}");
    }
    let english = ok(
        "tillsyn-collector",
        &["--dir", collector.path(), "report", "--lang", "en"],
    );
    assert!(english.contains("The year in figures") && english.contains("<html lang=\"en\""));
    let german = run(
        "tillsyn-collector",
        &["--dir", collector.path(), "report", "--lang", "de"],
    );
    assert!(!german.status.success());
    assert!(String::from_utf8_lossy(&german.stderr).contains("--lang \"de\""));

    // The PDF: one part per page at least, and no page without text.
    let dir = tempfile::tempdir().unwrap();
    let pdf = dir.path().join("review.pdf");
    let pdf_path = pdf.to_str().unwrap();
    ok(
        "tillsyn-collector",
        &[
            "--dir",
            collector.path(),
            "report",
            "--format",
            "pdf",
            "--output",
            pdf_path,
        ],
    );
    assert_whole_a4_pages(dir.path(), pdf_path);
}

/// The access list of each K3 system, for the owner's access review: the journal host's
/// cloud-init sudo rule makes cloud-user an administrator; K2 systems are not listed.
fn assert_k3_access_list(review: &serde_json::Value) {
    let access = review["access"]["patientjournal"].as_array().unwrap();
    let cloud_user = access
        .iter()
        .find(|e| e["account"] == "cloud-user")
        .unwrap();
    assert_eq!(cloud_user["privilege"], "administrator", "{cloud_user}");
    assert!(
        review["access"].get("fastighet").is_none(),
        "K2 systems are not listed"
    );
}

/// The PDF is A4, has at least one page per part of the review, no page without text, and
/// its first page renders to an image.
fn assert_whole_a4_pages(dir: &std::path::Path, pdf_path: &str) {
    let info = poppler("pdfinfo", &[pdf_path]);
    let pages: usize = info
        .lines()
        .find_map(|l| l.strip_prefix("Pages:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!((4..=12).contains(&pages), "{pages} pages: {info}");
    let page_size = info.lines().find(|l| l.starts_with("Page size")).unwrap();
    assert!(page_size.contains("(A4)"), "{page_size}");
    for page in 1..=pages {
        let n = page.to_string();
        let text = poppler("pdftotext", &["-f", &n, "-l", &n, pdf_path, "-"]);
        // A table's last rows may fill a page's top before the next part's page break; a
        // page without any text is what must not happen.
        assert!(
            text.trim().chars().count() > 10,
            "page {page} is empty: {text:?}"
        );
    }
    let png = dir.join("page");
    poppler(
        "pdftoppm",
        &[
            "-png",
            "-r",
            "50",
            "-f",
            "1",
            "-l",
            "1",
            pdf_path,
            png.to_str().unwrap(),
        ],
    );
    let first = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(Result::ok)
        .find(|e| e.file_name().to_string_lossy().ends_with(".png"))
        .unwrap();
    assert!(
        first.metadata().unwrap().len() > 5_000,
        "the first page renders to a real image"
    );
}
