//! Black-box tests of `tillsyn-agent discover` against real third-party protocol stacks
//! (pymodbus, python-snap7, cpppo, asyncua, snmpsim, mosquitto, ...), each started on its own
//! 127.0.77.x loopback address. The peers come from `scripts/deps/ot-peers.sh`; a missing
//! peer fails the test with the command that installs it, it never skips.
//!
//! Only loopback is ever targeted. No test asserts on timing.

#![allow(clippy::unwrap_used)]

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
