//! Discovery end to end: a real pymodbus device on loopback, found by a real agent both from
//! `discover --report` and from a scheduled discovery job, stored by the collector as a
//! `device` asset, linked to its system by vendor pattern and judged by the K2 rules.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use crate::harness::{Collector, ok, run};

/// The Python virtualenv with the OT simulators (`scripts/deps/ot-peers.sh`).
fn python() -> PathBuf {
    let venv = std::env::var_os("TILLSYN_OT_VENV").map_or_else(|| PathBuf::from("/opt/tillsyn-ot-venv"), PathBuf::from);
    let python = venv.join("bin/python");
    assert!(python.exists(), "{} missing: run scripts/deps/ot-peers.sh", python.display());
    python
}

/// pymodbus with a configured device identification, killed (with its process group) on drop.
struct ModbusPeer(Child);

impl ModbusPeer {
    fn start(host: &str, port: &str) -> Self {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../agent/tests/peers/modbus_peer.py");
        let mut child = Command::new(python())
            .args([script, host, port, "ACME Automation", "PC-42", "2.7", "ACME Controller", "AC-500"])
            .process_group(0)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let ready = BufReader::new(stdout).lines().map_while(Result::ok).any(|l| l.contains("READY"));
        assert!(ready, "the modbus peer never became ready");
        Self(child)
    }
}

impl Drop for ModbusPeer {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-KILL", "--", &format!("-{}", self.0.id())]).status();
        let _ = self.0.wait();
    }
}

const PLC_REGISTER: &str = "\
systems:
  - id: bms-ward4
    name: Fastighetsautomation avdelning 4
    system_owner: { name: Lena Holm, email: lena.holm@kommun.example }
    classification: { k: 2, r: 2, t: 2, classified_at: 2026-06-01, classified_by: CISO }
    links: { devices: ['ACME Automation:*'] }
";

fn device<'a>(assets: &'a [serde_json::Value], address: &str) -> &'a serde_json::Value {
    assets
        .iter()
        .find(|a| a["kind"] == "device" && a["address"] == address)
        .unwrap_or_else(|| panic!("no device {address} in {assets:#?}"))
}

#[test]
fn a_discovered_plc_becomes_a_device_asset_with_plaintext_findings() {
    let _peer = ModbusPeer::start("127.0.78.2", "15020");
    let collector = Collector::start();
    let agent = collector.enroll();
    assert!(collector.import("register.yaml", PLC_REGISTER).status.success());

    let out = run(
        "tillsyn-agent",
        &["--dir", agent.path(), "discover", "--target", "127.0.78.2/32", "--ports", "15020/modbus", "--report"],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let assets = collector.assets();
    let plc = device(&assets, "127.0.78.2");
    assert_eq!(plc["facts"]["vendor"], "ACME Automation");
    assert_eq!(plc["facts"]["model"], "AC-500");
    assert_eq!(plc["facts"]["firmware"], "2.7");
    assert_eq!(plc["facts"]["kind"], "plc");
    assert_eq!(plc["systems"][0]["system_id"], "bms-ward4");
    let transit = plc["controls"].as_array().unwrap().iter().find(|c| c["name"] == "transit_encryption").unwrap();
    assert_eq!(transit["state"], "plaintext");

    let findings = collector.findings(&["--system", "bms-ward4"]);
    let k23 = findings
        .iter()
        .find(|f| f["rule"] == "k23-transit" && f["asset"] == "127.0.78.2")
        .unwrap_or_else(|| panic!("no k23-transit finding for the PLC: {findings:#?}"));
    assert_eq!(k23["severity"], "high", "OT raises K2 medium to high");
}

#[test]
fn a_scheduled_discovery_job_reports_the_device() {
    let _peer = ModbusPeer::start("127.0.78.3", "15021");
    let collector = Collector::start();
    let agent = collector.enroll();
    ok(
        "tillsyn-collector",
        &[
            "--dir", collector.path(), "scan", "add", "ot-sweep", "--kind", "discovery", "--cron", "0 3 * * *",
            "--discovery-target", "127.0.78.3/32", "--discovery-port", "15021/modbus", "--jitter-seconds", "0",
        ],
    );
    ok("tillsyn-collector", &["--dir", collector.path(), "scan", "run-now", "ot-sweep"]);
    let out = run("tillsyn-agent", &["--dir", agent.path(), "run", "--once", "--jobs", "5"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let history = ok("tillsyn-collector", &["--dir", collector.path(), "scan", "history", "ot-sweep", "--format", "json"]);
    let jobs: serde_json::Value = serde_json::from_str(&history).unwrap();
    assert_eq!(jobs[0]["state"], "done", "{jobs:#}");
    assert_eq!(device(&collector.assets(), "127.0.78.3")["facts"]["vendor"], "ACME Automation");
}
