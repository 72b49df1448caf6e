//! Compliance needs evidence: systems nobody can see are `unverified`, never "100 % compliant",
//! until a host is linked or a `no_footprint` attestation covers them; and the report's charts
//! fit the page in a real browser.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::{Collector, ok, open_of, sample_register};

/// A fixture root whose controls all pass: the LUKS host's volumes, no exposed service, and the
/// TOTP fixture's sshd/PAM, under the host name `hostname`.
fn good_host(hostname: &str) -> tempfile::TempDir {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../agent/tests/fixtures");
    let root = tempfile::tempdir().unwrap();
    let copy = |from: PathBuf| {
        let status = Command::new("cp")
            .arg("-a")
            .arg(format!("{}/.", from.display()))
            .arg(root.path())
            .status()
            .unwrap();
        assert!(status.success());
    };
    copy(fixtures.join("services/luks-host"));
    std::fs::remove_dir_all(root.path().join("proc/net")).unwrap();
    copy(fixtures.join("auth/totp-kbd"));
    std::fs::write(root.path().join("etc/hostname"), format!("{hostname}\n")).unwrap();
    // Logs shipped off the host by an enabled rsyslog.
    std::fs::write(
        root.path().join("etc/rsyslog.conf"),
        "*.* @@logs.kommun.example:6514\n",
    )
    .unwrap();
    std::os::unix::fs::symlink(
        "/lib/systemd/system/rsyslog.service",
        root.path()
            .join("etc/systemd/system/multi-user.target.wants/rsyslog.service"),
    )
    .unwrap();
    root
}

fn report_json(collector: &Collector) -> serde_json::Value {
    let out = ok(
        "tillsyn-collector",
        &["--dir", collector.path(), "report", "--format", "json"],
    );
    serde_json::from_str(&out).unwrap()
}

fn rule_figures(report: &serde_json::Value, rule: &str) -> serde_json::Value {
    report["compliance"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["rule"] == rule)
        .unwrap()
        .clone()
}

fn system_compliance(collector: &Collector, system: &str) -> serde_json::Value {
    let out = ok(
        "tillsyn-collector",
        &["--dir", collector.path(), "systems", "--format", "json"],
    );
    let systems: serde_json::Value = serde_json::from_str(&out).unwrap();
    systems
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == system)
        .unwrap()["compliance"]
        .clone()
}

#[test]
fn systems_nobody_can_see_are_unverified_until_a_host_is_linked_or_an_attestation_covers_them() {
    let collector = Collector::start();
    let journal_host = collector.enroll_with(&["--label", "source=quickstart"]);
    let register = sample_register();
    let out = collector.import("system-register.csv", &register);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let root = good_host("journal-01");
    assert!(journal_host.run_once(Some(root.path())).status.success());

    // fastighet and kameror are K2 with nothing linked: unverified, not compliant.
    let findings = collector.findings(&[]);
    for system in ["fastighet", "kameror", "lakemedelsrobot"] {
        let unverified = open_of(&findings, "unverified-system", system);
        assert_eq!(unverified.len(), 1, "{system}: {findings:#?}");
        assert!(
            unverified[0]["message"]
                .as_str()
                .unwrap()
                .contains("no host or device is linked"),
            "{:?}",
            unverified[0]
        );
    }
    assert!(open_of(&findings, "unverified-system", "patientjournal").is_empty());
    let report = report_json(&collector);
    let k2 = rule_figures(&report, "k2-auth");
    assert_eq!(
        (
            &k2["applicable"],
            &k2["compliant"],
            &k2["unverified"],
            &k2["not_compliant"]
        ),
        (&2.into(), &0.into(), &2.into(), &0.into()),
        "{k2}"
    );
    assert_eq!(
        system_compliance(&collector, "fastighet")["k2-auth"],
        "unverified"
    );
    // The journal host passes everything: its K3 system is compliant on that evidence.
    let journal = system_compliance(&collector, "patientjournal");
    for rule in [
        "k3-auth",
        "k23-transit",
        "k23-rest",
        "k23-logging",
        "k23-privileged",
    ] {
        assert_eq!(journal[rule], "compliant", "{rule}: {journal}");
    }

    // A host with good controls named like fastighet's hosts: compliant, the finding resolves.
    let bms = collector.enroll();
    let root = good_host("bms-01");
    assert!(bms.run_once(Some(root.path())).status.success());
    let findings = collector.findings(&[]);
    assert!(
        open_of(&findings, "unverified-system", "fastighet").is_empty(),
        "{findings:#?}"
    );
    let fastighet = system_compliance(&collector, "fastighet");
    for rule in ["k2-auth", "k23-transit", "k23-rest"] {
        assert_eq!(fastighet[rule], "compliant", "{rule}: {fastighet}");
    }
    let k2 = rule_figures(&report_json(&collector), "k2-auth");
    assert_eq!(
        (&k2["compliant"], &k2["unverified"]),
        (&1.into(), &1.into()),
        "{k2}"
    );

    // kameror as a SaaS service: a no_footprint attestation resolves it until it expires.
    let expired_transit =
        "transit_encryption;Kamera-VLAN är krypterat med MACsec;Bo Ek;2025-09-01;2026-09-01";
    assert!(register.contains(expired_transit));
    let attested = register.replace(
        expired_transit,
        "no_footprint;Molntjänst hos leverantören;Bo Ek;2025-09-01;2099-12-31",
    );
    let out = collector.import("attested.csv", &attested);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let findings = collector.findings(&[]);
    assert!(
        open_of(&findings, "unverified-system", "kameror").is_empty(),
        "{findings:#?}"
    );
    let expired = register.replace(
        expired_transit,
        "no_footprint;Molntjänst hos leverantören;Bo Ek;2025-09-01;2026-01-31",
    );
    let out = collector.import("expired.csv", &expired);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let findings = collector.findings(&[]);
    assert_eq!(open_of(&findings, "unverified-system", "kameror").len(), 1);
}

/// The report as Chromium lays it out at 1000 px: every chart text's rendered right edge, and
/// the chart's width, measured by a script added to a copy of the page (the report itself has
/// none). Skipped with a message where no Chromium is installed; CI installs it
/// (scripts/deps/browser.sh).
#[test]
fn the_report_charts_fit_their_labels_in_chromium() {
    let Some(chromium) = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| Path::new(p).exists())
    else {
        panic!("chromium is not installed: run scripts/deps/browser.sh");
    };
    let collector = Collector::start();
    let agent = collector.enroll_with(&["--label", "source=quickstart"]);
    assert!(
        collector
            .import("r.csv", &sample_register())
            .status
            .success()
    );
    let root = good_host("journal-01");
    assert!(agent.run_once(Some(root.path())).status.success());
    let html = ok(
        "tillsyn-collector",
        &["--dir", collector.path(), "report", "--lang", "en"],
    );
    assert!(
        html.contains("unverified"),
        "the page names the third state"
    );
    let issued = html
        .split("Issued ")
        .nth(1)
        .unwrap()
        .split('.')
        .next()
        .unwrap();
    assert!(
        issued.len() == "2026-12-01 16:29 (UTC+00:00)".len()
            && issued.as_bytes()[10] == b' '
            && !issued.contains('Z'),
        "the date reads as people write it: {issued:?}"
    );

    let measure = r"<script>
const out = [];
for (const svg of document.querySelectorAll('svg')) {
  const width = svg.viewBox.baseVal.width;
  for (const t of svg.querySelectorAll('text')) {
    const right = t.x.baseVal[0].value + t.getComputedTextLength();
    out.push((right <= width ? 'fits ' : 'CUT ') + right.toFixed(1) + '/' + width + ' ' + t.textContent);
  }
}
const pre = document.createElement('pre'); pre.id = 'layout'; pre.textContent = out.join('\n');
document.body.appendChild(pre);
</script></body>";
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("report.html");
    std::fs::write(&page, html.replace("</body>", measure)).unwrap();
    let out = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--window-size=1000,1400",
        ])
        .arg(format!(
            "--user-data-dir={}",
            dir.path().join("profile").display()
        ))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&out.stdout);
    let layout = dom
        .split("<pre id=\"layout\">")
        .nth(1)
        .and_then(|rest| rest.split("</pre>").next())
        .unwrap_or_else(|| {
            panic!(
                "no layout in Chromium's DOM: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    let lines: Vec<&str> = layout.lines().collect();
    assert!(
        lines.iter().any(|l| l.contains("unverified of 2 systems")),
        "the compliance chart was measured: {layout}"
    );
    let cut: Vec<&&str> = lines.iter().filter(|l| !l.starts_with("fits ")).collect();
    assert!(cut.is_empty(), "labels cut at the chart's edge:\n{layout}");
}
