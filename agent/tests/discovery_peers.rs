//! Black-box tests of `tillsyn-agent discover` against real third-party protocol stacks
//! (pymodbus, python-snap7, cpppo, asyncua, snmpsim, mosquitto, ...), each started on its own
//! 127.0.77.x loopback address. The peers come from `scripts/deps/ot-peers.sh`; a missing
//! peer fails the test with the command that installs it, it never skips.
//!
//! Only loopback is ever targeted. No test asserts on timing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

/// The virtualenv holding the Python peers.
fn venv() -> PathBuf {
    let candidates = [
        std::env::var_os("TILLSYN_OT_VENV").map(PathBuf::from),
        Some(PathBuf::from("/opt/tillsyn-ot-venv")),
        Some(PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../.venv-ot"
        ))),
    ];
    candidates.into_iter().flatten().find(|v| v.join("bin/python").exists()).unwrap_or_else(|| {
        panic!("OT peer virtualenv missing (looked at $TILLSYN_OT_VENV, /opt/tillsyn-ot-venv, .venv-ot): run `sudo scripts/deps/ot-peers.sh`")
    })
}

fn peer_script(name: &str) -> String {
    format!("{}/tests/peers/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// A running peer process, killed on drop.
struct Peer {
    child: Child,
    name: String,
}

impl Peer {
    /// Starts `program args` and waits for it to print READY.
    fn start(name: &str, program: &str, args: &[&str]) -> Self {
        // Own process group: launchers start brokers as children, and the whole group must die
        // with the test, or an orphaned peer would answer the next run.
        let mut child = Command::new(program)
            .args(args)
            .process_group(0)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start peer {name} ({program}): {e}; run `sudo scripts/deps/ot-peers.sh`"
                )
            });
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line.contains("READY") {
                    let _ = tx.send(());
                }
            }
        });
        // A start-up guard, not a timing assertion: a peer that never gets ready fails the test.
        if rx.recv_timeout(Duration::from_mins(1)).is_err() {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .status();
            let output = child.wait_with_output().unwrap();
            panic!(
                "peer {name} never printed READY; stderr:\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Self {
            child,
            name: name.to_string(),
        }
    }

    /// Starts one of the Python peers in `tests/peers/`.
    fn python(script: &str, args: &[&str]) -> Self {
        let python = venv().join("bin/python");
        let script_path = peer_script(script);
        let mut all = vec![script_path.as_str()];
        all.extend_from_slice(args);
        Self::start(script, python.to_str().unwrap(), &all)
    }
}

/// Shell prelude for a peer in a network namespace of its own: bring its loopback up and route
/// multicast there, so a peer that announces itself by multicast (WS-Discovery Hello) is heard
/// by nobody outside the namespace.
const NETNS_SETUP: &str = "ip link set lo up && ip link set lo multicast on && ip route add 224.0.0.0/4 dev lo && exec \"$@\"";

impl Peer {
    /// Starts one of the Python peers in `tests/peers/` in a new network namespace that holds
    /// nothing but its own loopback (`unshare --net`, so the test must run as root).
    fn python_in_netns(script: &str, args: &[&str]) -> Self {
        let python = venv().join("bin/python");
        let script_path = peer_script(script);
        let mut all = vec!["--net", "sh", "-c", NETNS_SETUP, "sh"];
        all.push(python.to_str().unwrap());
        all.push(&script_path);
        all.extend_from_slice(args);
        Self::start(script, "unshare", &all)
    }

    /// Runs `discover --json` with `args` inside this peer's network namespace.
    fn discover_here(&self, args: &[&str]) -> Value {
        let output = Command::new("nsenter")
            .args(["--target", &self.child.id().to_string(), "--net", "--"])
            .arg(env!("CARGO_BIN_EXE_tillsyn-agent"))
            .arg("discover")
            .args(args)
            .arg("--json")
            .output()
            .expect("run tillsyn-agent under nsenter");
        assert!(
            output.status.success(),
            "discover failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).expect("discover prints JSON")
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let killed = Command::new("kill").args(["-KILL", "--", &group]).status();
        if !killed.is_ok_and(|s| s.success()) {
            eprintln!("peer {} already gone", self.name);
        }
        let _ = self.child.wait();
    }
}

/// Runs `discover --json` with `args` and returns the parsed report.
fn discover(args: &[&str]) -> Value {
    let output = Command::new(env!("CARGO_BIN_EXE_tillsyn-agent"))
        .arg("discover")
        .args(args)
        .arg("--json")
        .output()
        .expect("run tillsyn-agent");
    assert!(
        output.status.success(),
        "discover failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("discover prints JSON")
}

/// The one device in a single-target report.
fn only_device(report: &Value) -> &Value {
    let devices = report["devices"].as_array().expect("devices array");
    assert_eq!(devices.len(), 1, "expected one device: {report:#}");
    &devices[0]
}

fn service<'a>(device: &'a Value, protocol: &str) -> &'a Value {
    device["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["protocol"] == protocol)
        .unwrap_or_else(|| panic!("no {protocol} service in {device:#}"))
}

fn observation<'a>(device: &'a Value, name: &str) -> &'a str {
    device["observations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == name)
        .and_then(|o| o["value"].as_str())
        .unwrap_or_else(|| panic!("no observation {name} in {device:#}"))
}

#[test]
fn modbus_read_device_identification_against_pymodbus() {
    let _peer = Peer::python(
        "modbus_peer.py",
        &[
            "127.0.77.2",
            "15020",
            "ACME Automation",
            "PC-42",
            "2.7",
            "ACME Controller",
            "AC-500",
        ],
    );
    let report = discover(&["--target", "127.0.77.2/32", "--ports", "15020/modbus"]);
    let device = only_device(&report);
    assert_eq!(device["vendor"]["value"], "ACME Automation");
    assert_eq!(device["vendor"]["evidence"]["probe"], "modbus");
    assert!(
        device["vendor"]["evidence"]["detail"]
            .as_str()
            .unwrap()
            .contains("VendorName")
    );
    assert_eq!(device["model"]["value"], "AC-500");
    assert_eq!(device["firmware"]["value"], "2.7");
    assert_eq!(observation(device, "product_code"), "PC-42");
    assert_eq!(device["kind"], "plc");
    let modbus = service(device, "modbus");
    assert_eq!(modbus["transit"], "plaintext");
    assert_eq!(modbus["auth"], "none");
    assert_eq!(device["controls"][0]["state"], "plaintext");
}

#[test]
fn dry_run_sends_nothing() {
    // A plain listener where the probe would go: after the dry run, nothing may have connected.
    let listener = std::net::TcpListener::bind("127.0.77.3:15020").expect("bind 127.0.77.3:15020");
    let report = discover(&[
        "--target",
        "127.0.77.3/32",
        "--ports",
        "15020/modbus,9100",
        "--dry-run",
    ]);
    listener.set_nonblocking(true).unwrap();
    let accepted = listener.accept();
    assert!(
        accepted
            .as_ref()
            .is_err_and(|e| e.kind() == std::io::ErrorKind::WouldBlock),
        "dry run connected: {accepted:?}"
    );
    assert_eq!(report["dry_run"], true);
    assert!(report.get("devices").is_none());
    let requests = report["requests"].as_array().unwrap();
    assert!(
        requests
            .iter()
            .any(|r| r["probe"] == "modbus" && r["step"] == "tcp connect")
    );
    assert!(
        requests
            .iter()
            .any(|r| r["probe"] == "modbus" && r["request_hex"] == "000100000005ff2b0e0200")
    );
    assert!(
        requests
            .iter()
            .filter(|r| r["port"] == 9100)
            .all(|r| r["request_hex"] == "")
    );
}

#[test]
fn refuses_targets_above_the_size_bound() {
    let output = Command::new(env!("CARGO_BIN_EXE_tillsyn-agent"))
        .args(["discover", "--target", "10.0.0.0/15", "--json", "--dry-run"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--force"));
}

#[test]
fn mqtt_anonymous_allowed_and_refused_against_mosquitto() {
    let _open = Peer::python("mosquitto_peer.py", &["127.0.77.4", "11883", "true"]);
    let _closed = Peer::python("mosquitto_peer.py", &["127.0.77.5", "11883", "false"]);
    let report = discover(&["--target", "127.0.77.4,127.0.77.5", "--ports", "11883/mqtt"]);
    let devices = report["devices"].as_array().unwrap();
    assert_eq!(devices.len(), 2, "{report:#}");
    let open = service(&devices[0], "mqtt");
    assert_eq!(open["auth"], "none", "{open:#}");
    assert_eq!(open["transit"], "plaintext");
    let closed = service(&devices[1], "mqtt");
    assert_eq!(closed["auth"], "required", "{closed:#}");
    assert!(
        closed["auth_reason"]
            .as_str()
            .unwrap()
            .contains("CONNACK 5")
    );
}

#[test]
fn s7_szl_identification_against_snap7() {
    let _peer = Peer::python("s7_peer.py", &["127.0.77.6", "10102"]);
    let report = discover(&["--target", "127.0.77.6/32", "--ports", "10102/s7comm"]);
    let device = only_device(&report);
    // python-snap7's server reports itself as a CPU 315-2 PN/DP.
    assert_eq!(
        device["model"]["value"], "6ES7 315-2EH14-0AB0",
        "{device:#}"
    );
    assert!(
        device["model"]["evidence"]["detail"]
            .as_str()
            .unwrap()
            .contains("SZL 0x0011")
    );
    assert_eq!(device["serial"]["value"], "S C-C2UR28922012");
    assert_eq!(device["vendor"]["value"], "Siemens");
    assert_eq!(observation(device, "module_type_name"), "CPU 315-2 PN/DP");
    assert_eq!(device["kind"], "plc");
    assert_eq!(service(device, "s7comm")["transit"], "plaintext");
}

#[test]
fn enip_list_identity_tcp_and_udp_against_cpppo() {
    let _peer = Peer::python(
        "enip_peer.py",
        &[
            "127.0.77.7",
            "14818",
            "1",
            "14",
            "TILLSYN TEST PLC",
            "305419896",
            "770",
        ],
    );
    let report = discover(&[
        "--target",
        "127.0.77.7/32",
        "--ports",
        "14818/enip,14818/enip-udp",
    ]);
    let device = only_device(&report);
    assert_eq!(device["model"]["value"], "TILLSYN TEST PLC", "{device:#}");
    assert_eq!(
        device["vendor"]["value"],
        "Rockwell Automation/Allen-Bradley"
    );
    assert_eq!(device["serial"]["value"], "0x12345678");
    assert_eq!(device["firmware"]["value"], "2.3");
    assert_eq!(device["kind"], "plc");
    assert!(
        device["kind_reason"]
            .as_str()
            .unwrap()
            .contains("Programmable Logic Controller")
    );
    assert_eq!(service(device, "enip")["transit"], "plaintext");
    let udp = service(device, "enip-udp");
    assert_eq!(udp["identified"], true, "{udp:#}");
    assert_eq!(udp["transport"], "udp");
}

#[test]
fn opcua_endpoints_against_asyncua() {
    let _anon = Peer::python(
        "opcua_peer.py",
        &["127.0.77.10", "14840", "Tillsyn Test UA", "anonymous"],
    );
    let _user = Peer::python(
        "opcua_peer.py",
        &["127.0.77.11", "14840", "Tillsyn Locked UA", "username"],
    );
    let report = discover(&[
        "--target",
        "127.0.77.10,127.0.77.11",
        "--ports",
        "14840/opcua",
    ]);
    let devices = report["devices"].as_array().unwrap();
    assert_eq!(devices.len(), 2, "{report:#}");
    let anon = &devices[0];
    assert_eq!(anon["model"]["value"], "Tillsyn Test UA", "{anon:#}");
    let endpoint = observation(anon, "endpoint");
    assert!(endpoint.contains("SecurityMode=None"), "{endpoint}");
    assert!(endpoint.contains("SecurityPolicy#None"), "{endpoint}");
    let ua = service(anon, "opcua");
    assert_eq!(ua["transit"], "plaintext");
    assert_eq!(ua["auth"], "none");
    let locked = service(&devices[1], "opcua");
    assert_eq!(locked["auth"], "required", "{locked:#}");
    assert_eq!(locked["transit"], "plaintext");
}

/// Seven endpoints that each carry a 4096-bit RSA certificate (~1.3 KiB) do not fit the
/// 8192-byte receive buffer our Hello announces, so asyncua sends GetEndpoints in several
/// chunks; the probe refuses any chunk above that buffer, so a complete answer proves the
/// reassembly.
#[test]
fn opcua_multi_chunk_endpoints_against_asyncua() {
    let _secured = Peer::python(
        "opcua_peer.py",
        &[
            "127.0.77.12",
            "14840",
            "Tillsyn Secured UA",
            "anonymous",
            "secured",
        ],
    );
    let report = discover(&["--target", "127.0.77.12/32", "--ports", "14840/opcua"]);
    let device = only_device(&report);
    assert_eq!(device["model"]["value"], "Tillsyn Secured UA", "{device:#}");
    let endpoints: Vec<&str> = device["observations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["name"] == "endpoint")
        .map(|o| o["value"].as_str().unwrap())
        .collect();
    assert_eq!(endpoints.len(), 7, "{endpoints:#?}");
    for policy in [
        "None",
        "Basic256Sha256",
        "Aes128_Sha256_RsaOaep",
        "Aes256_Sha256_RsaPss",
    ] {
        assert!(
            endpoints
                .iter()
                .any(|e| e.contains(&format!("SecurityPolicy#{policy} "))),
            "{policy}: {endpoints:#?}"
        );
    }
    assert_eq!(
        endpoints
            .iter()
            .filter(|e| e.contains("SecurityMode=SignAndEncrypt"))
            .count(),
        3
    );
    // The None endpoint still leaves the server readable on the wire.
    assert_eq!(service(device, "opcua")["transit"], "plaintext");
}

#[test]
fn snmp_system_group_against_snmpsim() {
    let _public = Peer::python(
        "snmp_peer.py",
        &[
            "127.0.77.13",
            "16100",
            "public",
            "Tillsyn Test Switch 1.2",
            "1.3.6.1.4.1.9.1.1208",
            "ward4-sw1",
        ],
    );
    let report = discover(&[
        "--target",
        "127.0.77.13/32",
        "--ports",
        "16100/snmp",
        "--timeout-ms",
        "3000",
    ]);
    let device = only_device(&report);
    assert_eq!(
        observation(device, "sys_descr"),
        "Tillsyn Test Switch 1.2",
        "{device:#}"
    );
    assert_eq!(observation(device, "sys_object_id"), "1.3.6.1.4.1.9.1.1208");
    assert_eq!(observation(device, "sys_name"), "ward4-sw1");
    assert_eq!(device["vendor"]["value"], "Cisco");
    assert_eq!(device["kind"], "network");
    // snmpsim's automatic engine id: pysnmp's enterprise number 20408 (0x4fb8), format octets.
    assert!(observation(device, "engine_id").starts_with("80004fb805"));
    assert_eq!(observation(device, "engine_enterprise"), "20408");
    let snmp = service(device, "snmp");
    assert_eq!(snmp["transit"], "plaintext");
    assert_eq!(snmp["auth"], "none");
    assert_eq!(snmp["transport"], "udp");
}

#[test]
fn snmp_configured_community_against_snmpsim() {
    let _private = Peer::python(
        "snmp_peer.py",
        &[
            "127.0.77.14",
            "16100",
            "s3cret",
            "Ward 4 UPS",
            "1.3.6.1.4.1.8072.3.2.10",
            "ups4",
        ],
    );
    // "public" goes unanswered (v2c and v1), the configured community is answered.
    let report = discover(&[
        "--target",
        "127.0.77.14/32",
        "--ports",
        "16100/snmp",
        "--snmp-community",
        "public,s3cret",
        "--timeout-ms",
        "1500",
    ]);
    let device = only_device(&report);
    assert_eq!(observation(device, "sys_name"), "ups4", "{device:#}");
    assert_eq!(service(device, "snmp")["auth"], "required");
}

/// A value recorded in one of snmpsim-data's device walks, on one line as the agent reports it.
fn recorded(recording: &str, oid: &str) -> String {
    let output = Command::new(venv().join("bin/python"))
        .args([
            &peer_script("snmpsim_data_peer.py"),
            "--value",
            recording,
            oid,
        ])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "reading {recording}: {}; run `sudo scripts/deps/ot-peers.sh`",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// The engine id snmpsim is started with: Cisco's enterprise number (9), format 3 (MAC).
const SNMPSIM_ENGINE_ID: &str = "80000009030010f3c0ffee";

#[test]
fn snmpv3_only_agent_reports_its_engine_id_against_snmpsim() {
    // The agent serves one recording under a community we do not know: v1/v2c stay silent,
    // the v3 engine discovery is answered.
    let _peer = Peer::python(
        "snmpsim_data_peer.py",
        &[
            "127.0.161.1",
            "16100",
            SNMPSIM_ENGINE_ID,
            "camera/samsung-ipolis",
        ],
    );
    let report = discover(&[
        "--target",
        "127.0.161.1/32",
        "--ports",
        "16100/snmp",
        "--timeout-ms",
        "4000",
    ]);
    let device = only_device(&report);
    assert_eq!(
        observation(device, "engine_id"),
        SNMPSIM_ENGINE_ID,
        "{device:#}"
    );
    assert_eq!(observation(device, "engine_enterprise"), "9");
    assert_eq!(observation(device, "engine_id_format"), "mac");
    assert_eq!(observation(device, "engine_id_data"), "00:10:f3:c0:ff:ee");
    assert_eq!(observation(device, "version"), "v3");
    assert!(observation(device, "engine_boots").parse::<u32>().is_ok());
    // The engine's clock ticks every second: kept out of the observations, or every sweep
    // would record a change.
    assert!(
        device["observations"]
            .as_array()
            .unwrap()
            .iter()
            .all(|o| o["name"] != "engine_time"),
        "{device:#}"
    );
    assert_eq!(device["vendor"]["value"], "Cisco");
    let snmp = service(device, "snmp");
    assert_eq!(snmp["auth"], "required", "{snmp:#}");
    assert!(snmp["transit"].is_null(), "v3 privacy is unknown: {snmp:#}");
}

/// Real device walks from snmpsim-data, the community list that reaches each (through the
/// existing `--snmp-community` setting), and what must be reported.
struct Recording {
    path: &'static str,
    vendor: Option<&'static str>,
    descr_contains: &'static str,
    kind: &'static str,
}

#[test]
fn snmp_real_device_recordings_from_snmpsim_data() {
    let recordings = [
        Recording {
            path: "camera/samsung-ipolis",
            vendor: None,
            descr_contains: "SAMSUNG iPolis H.264 Premium Level IP Camera",
            kind: "camera",
        },
        Recording {
            path: "camera/semac-ipcam-500",
            vendor: None,
            descr_contains: "Linux IPCAM 2.6.18_pro500-davinci",
            kind: "camera",
        },
        Recording {
            path: "network/switch/cisco-c3560",
            vendor: Some("Cisco"),
            descr_contains: "C3560 Software (C3560-IPSERVICESK9-M), Version 12.2(55)SE3",
            kind: "network",
        },
        Recording {
            path: "network/switch/dlink-des3200",
            vendor: Some("D-Link"),
            descr_contains: "DES-3200-18 Fast Ethernet Switch",
            kind: "network",
        },
        Recording {
            path: "network/router/huawei-s5720",
            vendor: Some("Huawei"),
            descr_contains: "Huawei Versatile Routing Platform Software",
            kind: "network",
        },
        Recording {
            path: "network/router/juniper-mx960-12-3r6-6",
            vendor: Some("Juniper Networks"),
            descr_contains: "Juniper Networks, Inc. mx960 internet router",
            kind: "network",
        },
    ];
    let mut args = vec!["127.0.161.2", "16100", SNMPSIM_ENGINE_ID];
    args.extend(recordings.iter().map(|r| r.path));
    let _peer = Peer::python("snmpsim_data_peer.py", &args);
    for recording in &recordings {
        // snmpsim names each recording's community after its file. The list is walked in
        // order; `public` (unanswered here) comes second so that no timeout has to elapse.
        let community = recording.path.rsplit('/').next().unwrap();
        let communities = format!("{community},public");
        let report = discover(&[
            "--target",
            "127.0.161.2/32",
            "--ports",
            "16100/snmp",
            "--snmp-community",
            &communities,
            "--timeout-ms",
            "10000",
        ]);
        let device = only_device(&report);
        let path = recording.path;
        let descr = observation(device, "sys_descr");
        assert_eq!(descr, recorded(path, "1.3.6.1.2.1.1.1.0"), "{path}");
        assert!(descr.contains(recording.descr_contains), "{path}: {descr}");
        assert_eq!(
            observation(device, "sys_object_id"),
            recorded(path, "1.3.6.1.2.1.1.2.0"),
            "{path}"
        );
        assert_eq!(
            observation(device, "sys_name"),
            recorded(path, "1.3.6.1.2.1.1.5.0"),
            "{path}"
        );
        assert_eq!(
            device["vendor"]["value"].as_str(),
            recording.vendor.or(Some("Cisco")),
            "{path}: the sysObjectID's maker, else the engine id's: {device:#}"
        );
        assert_eq!(device["kind"], recording.kind, "{path}: {device:#}");
        assert_eq!(observation(device, "engine_id"), SNMPSIM_ENGINE_ID);
        let snmp = service(device, "snmp");
        assert_eq!(snmp["auth"], "required", "{path}: community {community}");
        assert_eq!(snmp["transit"], "plaintext");
    }
}

#[test]
fn bacnet_who_is_and_read_property_against_bacpypes3() {
    let _peer = Peer::python(
        "bacnet_peer.py",
        &[
            "127.0.77.15",
            "47809",
            "1234",
            "AHU-4",
            "Tillsyn Controls",
            "TC-100",
            "3.1.4",
        ],
    );
    let report = discover(&["--target", "127.0.77.15/32", "--ports", "47809/bacnet"]);
    let device = only_device(&report);
    assert_eq!(device["vendor"]["value"], "Tillsyn Controls", "{device:#}");
    assert!(
        device["vendor"]["evidence"]["detail"]
            .as_str()
            .unwrap()
            .contains("vendor-name")
    );
    assert_eq!(device["model"]["value"], "TC-100");
    assert_eq!(device["firmware"]["value"], "3.1.4");
    assert_eq!(observation(device, "object_name"), "AHU-4");
    assert_eq!(observation(device, "device_instance"), "1234");
    assert_eq!(device["kind"], "building_control");
    assert_eq!(service(device, "bacnet")["transit"], "plaintext");
}

/// Debian's python3, for peers built on GObject introspection (not in the venv).
const SYSTEM_PYTHON: &str = "/usr/bin/python3";

#[test]
fn http_rtsp_and_banners_against_real_servers() {
    let _http = Peer::python(
        "http_peer.py",
        &["127.0.77.16", "18080", "AXIS Q1615 Network Camera"],
    );
    let _rtsp = Peer::start(
        "rtsp_peer.py",
        SYSTEM_PYTHON,
        &[&peer_script("rtsp_peer.py"), "127.0.77.16", "18554"],
    );
    let _ftp = Peer::python(
        "ftp_peer.py",
        &["127.0.77.17", "10021", "Ward 4 historian FTP"],
    );
    let _ssh = Peer::python("ssh_peer.py", &["127.0.77.17", "10022"]);
    let _telnet = Peer::python(
        "telnet_peer.py",
        &["127.0.77.17", "10023", "Ward 4 BMS controller"],
    );
    let report = discover(&[
        "--target",
        "127.0.77.16,127.0.77.17",
        "--ports",
        "18080/http,18554/rtsp,10021/ftp,10022/ssh,10023/telnet",
    ]);
    let devices = report["devices"].as_array().unwrap();
    assert_eq!(devices.len(), 2, "{report:#}");
    let camera = &devices[0];
    assert_eq!(
        observation(camera, "title"),
        "AXIS Q1615 Network Camera",
        "{camera:#}"
    );
    assert!(observation(camera, "server").starts_with("SimpleHTTP/"));
    assert!(observation(camera, "methods").contains("DESCRIBE"));
    assert_eq!(camera["kind"], "camera");
    assert_eq!(service(camera, "http")["transit"], "plaintext");
    assert_eq!(service(camera, "rtsp")["transit"], "plaintext");
    let host = &devices[1];
    assert_eq!(service(host, "ftp")["transit"], "plaintext", "{host:#}");
    assert_eq!(service(host, "telnet")["transit"], "plaintext");
    assert_eq!(service(host, "ssh")["transit"], "tls");
    assert!(
        host["observations"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["value"] == "Ward 4 historian FTP")
    );
    assert!(
        host["observations"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["value"].as_str().unwrap().starts_with("OpenSSH_"))
    );
    // inetutils telnetd waits for answers to its option negotiation before it prints anything;
    // the probe never answers, so the negotiation alone identifies Telnet.
    assert_eq!(service(host, "telnet")["identified"], true);
    assert_eq!(host["controls"][0]["state"], "plaintext");
}

/// A certificate and key written as PEM files into `dir`, named `name.crt` / `name.key`.
struct PemPair {
    cert: String,
    key: String,
}

/// Writes a certificate for `common_name`: signed by `issuer` (else self-signed), valid until
/// `not_after_year`-01-01.
fn write_certificate(
    dir: &std::path::Path,
    name: &str,
    common_name: &str,
    issuer: Option<&rcgen::Issuer<'_, rcgen::KeyPair>>,
    not_after_year: i32,
) -> PemPair {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec![common_name.to_string()]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, common_name);
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(not_after_year, 1, 1);
    let cert = match issuer {
        Some(issuer) => params.signed_by(&key, issuer).unwrap(),
        None => params.self_signed(&key).unwrap(),
    };
    let pair = PemPair {
        cert: dir
            .join(format!("{name}.crt"))
            .to_str()
            .unwrap()
            .to_string(),
        key: dir
            .join(format!("{name}.key"))
            .to_str()
            .unwrap()
            .to_string(),
    };
    std::fs::write(&pair.cert, cert.pem()).unwrap();
    std::fs::write(&pair.key, key.serialize_pem()).unwrap();
    pair
}

/// A test CA ("CN=Ward 4 Test CA") to sign server certificates with.
fn test_ca() -> rcgen::Issuer<'static, rcgen::KeyPair> {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Ward 4 Test CA");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    rcgen::Issuer::new(params, key)
}

fn device_at<'a>(report: &'a Value, address: &str) -> &'a Value {
    report["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["address"] == address)
        .unwrap_or_else(|| panic!("no device {address} in {report:#}"))
}

#[test]
fn mqtts_tls_facts_and_auth_against_mosquitto() {
    let dir = tempfile::tempdir().unwrap();
    let broker = write_certificate(dir.path(), "broker", "broker.ward4.example", None, 2099);
    let _open = Peer::python(
        "mosquitto_peer.py",
        &["127.0.77.20", "18883", "true", &broker.cert, &broker.key],
    );
    let _closed = Peer::python(
        "mosquitto_peer.py",
        &["127.0.77.21", "18883", "false", &broker.cert, &broker.key],
    );
    // A plaintext broker on the port the sweep believes is MQTT over TLS.
    let _plain = Peer::python("mosquitto_peer.py", &["127.0.77.22", "18883", "true"]);
    let report = discover(&[
        "--target",
        "127.0.77.20,127.0.77.21,127.0.77.22",
        "--ports",
        "18883/mqtts",
    ]);
    let open = device_at(&report, "127.0.77.20");
    let mqtts = service(open, "mqtts");
    assert_eq!(mqtts["transit"], "tls", "{open:#}");
    assert_eq!(mqtts["auth"], "none", "{mqtts:#}");
    assert!(mqtts["auth_reason"].as_str().unwrap().contains("CONNACK 0"));
    assert_eq!(observation(open, "tls_version"), "TLSv1.3");
    assert!(observation(open, "tls_cipher").starts_with("TLS13_"));
    assert_eq!(
        observation(open, "tls_cert_subject"),
        "CN=broker.ward4.example"
    );
    assert_eq!(observation(open, "tls_cert_self_signed"), "true");
    assert_eq!(observation(open, "tls_cert_expired"), "false");
    assert_eq!(open["controls"][0]["state"], "encrypted", "{open:#}");

    let closed = device_at(&report, "127.0.77.21");
    let mqtts = service(closed, "mqtts");
    assert_eq!(mqtts["transit"], "tls");
    assert_eq!(mqtts["auth"], "required", "{mqtts:#}");
    assert!(mqtts["auth_reason"].as_str().unwrap().contains("CONNACK 5"));

    let plain = device_at(&report, "127.0.77.22");
    let mqtts = service(plain, "mqtts");
    assert_eq!(mqtts["transit"], "plaintext", "{plain:#}");
    assert!(
        mqtts["auth_reason"].as_str().unwrap().starts_with("no TLS"),
        "{mqtts:#}"
    );
    assert_eq!(plain["controls"][0]["state"], "plaintext");
}

#[test]
fn https_tls_facts_against_python_ssl() {
    let dir = tempfile::tempdir().unwrap();
    let ca = test_ca();
    // Signed by the test CA and expired at the start of 2021.
    let expired = write_certificate(dir.path(), "expired", "cam.ward4.example", Some(&ca), 2021);
    let old = write_certificate(dir.path(), "old", "old.ward4.example", None, 2099);
    let _https = Peer::python(
        "http_peer.py",
        &[
            "127.0.77.23",
            "18443",
            "AXIS Q1615 Network Camera",
            &expired.cert,
            &expired.key,
        ],
    );
    // An old device: OpenSSL capped at TLS 1.0, which rustls refuses to speak.
    let _tls10 = Peer::python(
        "http_peer.py",
        &[
            "127.0.77.24",
            "18443",
            "Old HMI",
            &old.cert,
            &old.key,
            "TLSv1",
        ],
    );
    // Plain HTTP on the port the sweep believes is HTTPS.
    let _plain = Peer::python("http_peer.py", &["127.0.77.25", "18443", "Plain"]);
    let report = discover(&[
        "--target",
        "127.0.77.23,127.0.77.24,127.0.77.25",
        "--ports",
        "18443/https",
    ]);
    let camera = device_at(&report, "127.0.77.23");
    let https = service(camera, "https");
    assert_eq!(https["transit"], "tls", "{camera:#}");
    assert!(observation(camera, "server").starts_with("SimpleHTTP/"));
    assert_eq!(observation(camera, "title"), "AXIS Q1615 Network Camera");
    assert_eq!(observation(camera, "tls_version"), "TLSv1.3");
    assert_eq!(
        observation(camera, "tls_cert_subject"),
        "CN=cam.ward4.example"
    );
    assert_eq!(observation(camera, "tls_cert_issuer"), "CN=Ward 4 Test CA");
    assert_eq!(observation(camera, "tls_cert_self_signed"), "false");
    assert_eq!(observation(camera, "tls_cert_expired"), "true");
    assert!(observation(camera, "tls_cert_not_after").contains("2021"));

    let old = device_at(&report, "127.0.77.24");
    let https = service(old, "https");
    assert_eq!(https["transit"], "tls", "{old:#}");
    // OpenSSL answers a ClientHello offering only TLS 1.2 and 1.3 with alert protocol_version.
    assert!(
        observation(old, "tls_deprecated_version").contains("older than TLS 1.2"),
        "{old:#}"
    );
    assert!(!observation(old, "tls_handshake_error").is_empty());

    let plain = device_at(&report, "127.0.77.25");
    let https = service(plain, "https");
    assert_eq!(https["transit"], "plaintext", "{plain:#}");
    assert!(
        https["auth_reason"]
            .as_str()
            .unwrap()
            .contains("non-TLS bytes"),
        "{https:#}"
    );
}

#[test]
fn rtsps_options_inside_tls_against_gstreamer() {
    let dir = tempfile::tempdir().unwrap();
    let camera = write_certificate(dir.path(), "camera", "cam1.ward4.example", None, 2099);
    let _rtsps = Peer::start(
        "rtsp_peer.py",
        SYSTEM_PYTHON,
        &[
            &peer_script("rtsp_peer.py"),
            "127.0.77.27",
            "10322",
            &camera.cert,
            &camera.key,
        ],
    );
    let report = discover(&["--target", "127.0.77.27/32", "--ports", "10322/rtsps"]);
    let device = only_device(&report);
    let rtsps = service(device, "rtsps");
    assert_eq!(rtsps["transit"], "tls", "{device:#}");
    assert_eq!(rtsps["identified"], true);
    assert!(
        observation(device, "methods").contains("DESCRIBE"),
        "{device:#}"
    );
    assert!(observation(device, "tls_version").starts_with("TLSv1."));
    assert_eq!(
        observation(device, "tls_cert_subject"),
        "CN=cam1.ward4.example"
    );
    assert_eq!(device["controls"][0]["state"], "encrypted");
    assert_eq!(device["kind"], "camera");
}

#[test]
fn dry_run_shows_the_client_hello_and_the_requests_inside_tls() {
    let report = discover(&[
        "--target",
        "127.0.77.26/32",
        "--ports",
        "18883/mqtts,18443/https,10322/rtsps",
        "--dry-run",
    ]);
    let requests = report["requests"].as_array().unwrap();
    for probe in ["mqtts", "https", "rtsps"] {
        let steps: Vec<&str> = requests
            .iter()
            .filter(|r| r["probe"] == probe)
            .map(|r| r["step"].as_str().unwrap())
            .collect();
        assert_eq!(steps[0], "tcp connect", "{probe}: {steps:?}");
        assert!(
            steps[1].starts_with("TLS ClientHello"),
            "{probe}: {steps:?}"
        );
        assert!(steps.len() > 2, "{probe}: {steps:?}");
    }
}

#[test]
fn rtsp_describe_open_and_basic_auth_against_gstreamer() {
    let _open = Peer::start(
        "rtsp_peer.py open",
        SYSTEM_PYTHON,
        &[&peer_script("rtsp_peer.py"), "127.0.77.18", "18554", "open"],
    );
    let _basic = Peer::start(
        "rtsp_peer.py basic",
        SYSTEM_PYTHON,
        &[
            &peer_script("rtsp_peer.py"),
            "127.0.77.19",
            "18554",
            "basic",
        ],
    );
    // `/` first: GStreamer looks the mount up before it checks credentials, so `/` answers 404
    // and the probe goes on to the next path.
    let report = discover(&[
        "--target",
        "127.0.77.18,127.0.77.19",
        "--ports",
        "18554/rtsp",
        "--rtsp-path",
        "/,/stream1",
    ]);
    let devices = report["devices"].as_array().unwrap();
    assert_eq!(devices.len(), 2, "{report:#}");
    let open = &devices[0];
    let rtsp = service(open, "rtsp");
    assert_eq!(rtsp["auth"], "none", "{open:#}");
    assert!(
        rtsp["auth_reason"]
            .as_str()
            .unwrap()
            .contains("DESCRIBE /stream1")
    );
    assert_eq!(observation(open, "describe_path"), "/stream1");
    assert_eq!(
        observation(open, "sdp_session_name"),
        "Session streamed with GStreamer"
    );
    assert_eq!(observation(open, "sdp_tool"), "GStreamer");
    assert_eq!(observation(open, "sdp_media"), "video JPEG/90000");
    assert_eq!(open["kind"], "camera");
    let basic = &devices[1];
    let rtsp = service(basic, "rtsp");
    assert_eq!(rtsp["auth"], "required", "{basic:#}");
    assert_eq!(rtsp["transit"], "plaintext");
    assert_eq!(observation(basic, "describe_status"), "401");
    assert_eq!(observation(basic, "auth_scheme"), "Basic");
    assert_eq!(observation(basic, "auth_realm"), "Ward 4 camera");
}

/// IPyCam (PyPI `ipycam`) binds WS-Discovery to 0.0.0.0:3702 and announces itself by
/// multicast, so each instance runs in a network namespace of its own and the agent is run
/// inside it; the probe still only ever targets 127.0.0.1.
#[test]
fn onvif_ws_discovery_and_device_information_against_ipycam() {
    let identity = [
        "127.0.0.1",
        "8080",
        "Ward 4 corridor",
        "ACME Vision",
        "AV-200",
        "3.1.4",
        "SN-0042",
    ];
    let open = Peer::python_in_netns("onvif_peer.py", &identity);
    let report = open.discover_here(&["--target", "127.0.0.1/32", "--ports", "3702/onvif"]);
    let device = only_device(&report);
    assert_eq!(device["vendor"]["value"], "ACME Vision", "{device:#}");
    assert_eq!(device["vendor"]["evidence"]["probe"], "onvif");
    assert!(
        device["vendor"]["evidence"]["detail"]
            .as_str()
            .unwrap()
            .contains("GetDeviceInformation Manufacturer")
    );
    assert_eq!(device["model"]["value"], "AV-200");
    assert_eq!(device["firmware"]["value"], "3.1.4");
    assert_eq!(device["serial"]["value"], "SN-0042");
    assert_eq!(observation(device, "hardware_id"), "PY-HW-01");
    assert_eq!(observation(device, "onvif_name"), "Ward 4 corridor");
    assert_eq!(
        observation(device, "onvif_xaddrs"),
        "http://127.0.0.1:8080/onvif/device_service"
    );
    assert_eq!(device["kind"], "camera");
    assert!(
        device["kind_reason"]
            .as_str()
            .unwrap()
            .contains("NetworkVideoTransmitter")
    );
    let onvif = service(device, "onvif");
    assert_eq!(onvif["transport"], "udp");
    assert_eq!(onvif["transit"], "plaintext");
    assert_eq!(onvif["auth"], "none", "{onvif:#}");
    drop(open);

    let mut with_credentials = identity.to_vec();
    with_credentials.extend(["admin", "not-sent-by-tests"]);
    let locked = Peer::python_in_netns("onvif_peer.py", &with_credentials);
    let report = locked.discover_here(&["--target", "127.0.0.1/32", "--ports", "3702/onvif"]);
    let device = only_device(&report);
    let onvif = service(device, "onvif");
    assert_eq!(onvif["auth"], "required", "{device:#}");
    assert!(onvif["auth_reason"].as_str().unwrap().contains("HTTP 401"));
    assert!(
        device["vendor"].is_null(),
        "nothing but discovery without credentials"
    );
    assert_eq!(observation(device, "onvif_name"), "Ward 4 corridor");
    assert_eq!(device["kind"], "camera");
}

/// The WSDiscovery package's publisher answers from an ephemeral port (not 3702) and after a
/// random delay; its XAddr names another host, which the probe must record and not follow.
#[test]
fn onvif_ws_discovery_scopes_against_wsdiscovery_publisher() {
    let publisher = Peer::python_in_netns(
        "wsd_peer.py",
        &[
            "http://127.0.0.9:8080/onvif/device_service",
            "onvif://www.onvif.org/hardware/P3245-LVE",
            "onvif://www.onvif.org/name/Ward 4 entrance",
            "onvif://www.onvif.org/location/building%20B",
        ],
    );
    let report = publisher.discover_here(&["--target", "127.0.0.1/32", "--ports", "3702/onvif"]);
    let device = only_device(&report);
    assert_eq!(device["model"]["value"], "P3245-LVE", "{device:#}");
    assert!(
        device["model"]["evidence"]["detail"]
            .as_str()
            .unwrap()
            .contains("onvif://www.onvif.org/hardware/")
    );
    assert_eq!(observation(device, "onvif_name"), "Ward 4 entrance");
    assert_eq!(observation(device, "onvif_location"), "building B");
    assert_eq!(device["kind"], "camera");
    let onvif = service(device, "onvif");
    assert_eq!(onvif["auth"], "unknown");
    assert!(
        onvif["auth_reason"]
            .as_str()
            .unwrap()
            .contains("not followed")
    );
    assert_eq!(onvif["transit"], "plaintext");
    // The Probe was the only packet: no connection went to the XAddr's host.
    assert_eq!(report["packets_sent"], 1, "{report:#}");
}
