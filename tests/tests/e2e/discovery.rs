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
    let venv = std::env::var_os("TILLSYN_OT_VENV")
        .map_or_else(|| PathBuf::from("/opt/tillsyn-ot-venv"), PathBuf::from);
    let python = venv.join("bin/python");
    assert!(
        python.exists(),
        "{} missing: run scripts/deps/ot-peers.sh",
        python.display()
    );
    python
}

/// A simulator from `agent/tests/peers/`, killed (with its process group) on drop.
struct Peer(Child);

impl Peer {
    fn start(script: &str, args: &[&str]) -> Self {
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
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let ready = lines
            .by_ref()
            .map_while(Result::ok)
            .any(|l| l.contains("READY"));
        assert!(ready, "peer {script} never became ready");
        // Keep draining so a chatty peer never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Self(child)
    }
}

/// pymodbus with a configured device identification.
struct ModbusPeer;

impl ModbusPeer {
    fn start(host: &str, port: &str) -> Peer {
        Peer::start(
            "modbus_peer.py",
            &[
                host,
                port,
                "ACME Automation",
                "PC-42",
                "2.7",
                "ACME Controller",
                "AC-500",
            ],
        )
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

const PLC_REGISTER: &str = "\
systems:
  - id: bms-ward4
    name: Fastighetsautomation avdelning 4
    system_owner: { name: Lena Holm, email: lena.holm@kommun.example }
    classification: { k: 2, r: 2, t: 2, classified_at: 2026-06-01, classified_by: CISO }
    links: { devices: ['ACME Automation:*'] }
";

/// A K2 system that owns two brokers by address: one behind TLS, one plaintext.
const BROKER_REGISTER: &str = "\
systems:
  - id: telemetry-ward4
    name: Telemetri avdelning 4
    system_owner: { name: Lena Holm, email: lena.holm@kommun.example }
    classification: { k: 2, r: 2, t: 2, classified_at: 2026-06-01, classified_by: CISO }
    links: { cidrs: ['127.0.78.5/32', '127.0.78.6/32'] }
";

fn device<'a>(assets: &'a [serde_json::Value], address: &str) -> &'a serde_json::Value {
    assets
        .iter()
        .find(|a| a["kind"] == "device" && a["address"] == address)
        .unwrap_or_else(|| panic!("no device {address} in {assets:#?}"))
}

/// A collector with `register` imported and one enrolled agent that has swept `targets` on
/// `ports` with `discover --report`.
fn collector_after_sweep(register: &str, targets: &str, ports: &str) -> Collector {
    let collector = Collector::start();
    let agent = collector.enroll();
    assert!(collector.import("register.yaml", register).status.success());
    let out = run(
        "tillsyn-agent",
        &[
            "--dir",
            agent.path(),
            "discover",
            "--target",
            targets,
            "--ports",
            ports,
            "--report",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    collector
}

/// The state of a stored asset's `transit_encryption` control.
fn transit_state(asset: &serde_json::Value) -> &serde_json::Value {
    &asset["controls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "transit_encryption")
        .unwrap_or_else(|| panic!("no transit_encryption control: {asset:#}"))["state"]
}

#[test]
fn a_discovered_plc_becomes_a_device_asset_with_plaintext_findings() {
    let _peer = ModbusPeer::start("127.0.78.2", "15020");
    let collector = collector_after_sweep(PLC_REGISTER, "127.0.78.2/32", "15020/modbus");

    let assets = collector.assets();
    let plc = device(&assets, "127.0.78.2");
    assert_eq!(plc["facts"]["vendor"], "ACME Automation");
    assert_eq!(plc["facts"]["model"], "AC-500");
    assert_eq!(plc["facts"]["firmware"], "2.7");
    assert_eq!(plc["facts"]["kind"], "plc");
    assert_eq!(plc["systems"][0]["system_id"], "bms-ward4");
    assert_eq!(transit_state(plc), "plaintext");

    let findings = collector.findings(&["--system", "bms-ward4"]);
    let k23 = findings
        .iter()
        .find(|f| f["rule"] == "k23-transit" && f["asset"] == "127.0.78.2")
        .unwrap_or_else(|| panic!("no k23-transit finding for the PLC: {findings:#?}"));
    assert_eq!(k23["severity"], "high", "OT raises K2 medium to high");
}

/// An MQTT broker behind TLS (`mqtts`) passes the K2 transit rule; the same broker without TLS
/// raises it.
#[test]
fn a_broker_behind_tls_raises_no_plaintext_finding() {
    let certs = tempfile::tempdir().unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["broker.ward4.example".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let cert_path = certs.path().join("broker.crt");
    let key_path = certs.path().join("broker.key");
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    let _tls = Peer::start(
        "mosquitto_peer.py",
        &[
            "127.0.78.5",
            "18883",
            "false",
            cert_path.to_str().unwrap(),
            key_path.to_str().unwrap(),
        ],
    );
    let _plain = Peer::start("mosquitto_peer.py", &["127.0.78.6", "11883", "false"]);
    // One sweep: each broker's address answers on its own port only.
    let collector = collector_after_sweep(
        BROKER_REGISTER,
        "127.0.78.5,127.0.78.6",
        "18883/mqtts,11883/mqtt",
    );
    let assets = collector.assets();
    assert_eq!(transit_state(device(&assets, "127.0.78.5")), "encrypted");
    assert_eq!(transit_state(device(&assets, "127.0.78.6")), "plaintext");
    let findings = collector.findings(&["--system", "telemetry-ward4"]);
    let transit_findings: Vec<&str> = findings
        .iter()
        .filter(|f| f["rule"] == "k23-transit")
        .map(|f| f["asset"].as_str().unwrap())
        .collect();
    assert_eq!(transit_findings, ["127.0.78.6"], "{findings:#?}");
}

#[test]
fn a_scheduled_discovery_job_reports_the_device() {
    let _peer = ModbusPeer::start("127.0.78.3", "15021");
    let collector = Collector::start();
    let agent = collector.enroll();
    ok(
        "tillsyn-collector",
        &[
            "--dir",
            collector.path(),
            "scan",
            "add",
            "ot-sweep",
            "--kind",
            "discovery",
            "--cron",
            "0 3 * * *",
            "--discovery-target",
            "127.0.78.3/32",
            "--discovery-port",
            "15021/modbus",
            "--jitter-seconds",
            "0",
        ],
    );
    ok(
        "tillsyn-collector",
        &["--dir", collector.path(), "scan", "run-now", "ot-sweep"],
    );
    let out = run(
        "tillsyn-agent",
        &["--dir", agent.path(), "run", "--once", "--jobs", "5"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let history = ok(
        "tillsyn-collector",
        &[
            "--dir",
            collector.path(),
            "scan",
            "history",
            "ot-sweep",
            "--format",
            "json",
        ],
    );
    let jobs: serde_json::Value = serde_json::from_str(&history).unwrap();
    assert_eq!(jobs[0]["state"], "done", "{jobs:#}");
    assert_eq!(
        device(&collector.assets(), "127.0.78.3")["facts"]["vendor"],
        "ACME Automation"
    );
}

/// The acceptance: one sweep of 127.0.0.0/28 on the standard OT ports names every
/// simulated device, marks the plaintext protocols, and the report lands in the collector.
// One scenario read top to bottom; splitting it would hide the sequence.
#[allow(clippy::too_many_lines)]
#[test]
fn a_sweep_of_the_simulators_names_every_device_and_its_plaintext() {
    let _peers = [
        ModbusPeer::start("127.0.0.2", "502"),
        Peer::start("s7_peer.py", &["127.0.0.3", "102"]),
        Peer::start(
            "enip_peer.py",
            &[
                "127.0.0.4",
                "44818",
                "1",
                "14",
                "WARD4 PLC",
                "305419896",
                "770",
            ],
        ),
        Peer::start(
            "opcua_peer.py",
            &["127.0.0.5", "4840", "Ward4 UA", "anonymous"],
        ),
        Peer::start("mosquitto_peer.py", &["127.0.0.6", "1883", "true"]),
        Peer::start(
            "snmp_peer.py",
            &[
                "127.0.0.7",
                "161",
                "public",
                "Ward4 switch",
                "1.3.6.1.4.1.9.1.1",
                "ward4-sw",
            ],
        ),
        Peer::start(
            "bacnet_peer.py",
            &[
                "127.0.0.8",
                "47808",
                "77",
                "AHU-1",
                "Ward4 Controls",
                "BC-1",
                "1.0",
            ],
        ),
    ];
    let collector = Collector::start();
    let agent = collector.enroll();
    let out = run(
        "tillsyn-agent",
        &[
            "--dir",
            agent.path(),
            "discover",
            "--target",
            "127.0.0.0/28",
            "--json",
            "--report",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sweep: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let devices = sweep["devices"].as_array().unwrap();
    let at = |address: &str| {
        devices
            .iter()
            .find(|d| d["address"] == address)
            .unwrap_or_else(|| panic!("{address} not found: {sweep:#}"))
    };
    let value =
        |d: &serde_json::Value, field: &str| d[field]["value"].as_str().unwrap_or("").to_string();
    let transit = |d: &serde_json::Value, protocol: &str| {
        d["services"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["protocol"] == protocol)
            .map(|s| s["transit"].clone())
    };

    let modbus = at("127.0.0.2");
    assert_eq!(
        (
            value(modbus, "vendor"),
            value(modbus, "model"),
            value(modbus, "firmware")
        ),
        ("ACME Automation".into(), "AC-500".into(), "2.7".into())
    );
    assert_eq!(transit(modbus, "modbus").unwrap(), "plaintext");
    let s7 = at("127.0.0.3");
    assert_eq!(value(s7, "vendor"), "Siemens");
    assert!(!value(s7, "model").is_empty());
    assert_eq!(transit(s7, "s7comm").unwrap(), "plaintext");
    assert_eq!(value(at("127.0.0.4"), "model"), "WARD4 PLC");
    let opcua = at("127.0.0.5");
    assert_eq!(
        transit(opcua, "opcua").unwrap(),
        "plaintext",
        "SecurityMode None is plaintext"
    );
    assert_eq!(transit(at("127.0.0.6"), "mqtt").unwrap(), "plaintext");
    assert!(
        value(at("127.0.0.7"), "model").contains("Ward4 switch")
            || value(at("127.0.0.7"), "vendor").contains("Cisco"),
        "{:#}",
        at("127.0.0.7")
    );
    let bacnet = at("127.0.0.8");
    assert_eq!(
        (
            value(bacnet, "vendor"),
            value(bacnet, "model"),
            value(bacnet, "firmware")
        ),
        ("Ward4 Controls".into(), "BC-1".into(), "1.0".into())
    );
    assert_eq!(transit(bacnet, "bacnet").unwrap(), "plaintext");

    let assets = collector.assets();
    for address in [
        "127.0.0.2",
        "127.0.0.3",
        "127.0.0.4",
        "127.0.0.5",
        "127.0.0.6",
        "127.0.0.7",
        "127.0.0.8",
    ] {
        let stored = device(&assets, address);
        let state = stored["controls"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "transit_encryption")
            .map(|c| c["state"].clone());
        assert_eq!(state, Some("plaintext".into()), "{address}: {stored:#}");
    }
}
