//! Discovery across a real (virtual) link: two network namespaces this test creates, joined by a
//! veth pair on 198.51.100.0/24 (TEST-NET-2). Nothing leaves the namespaces: neither has a route
//! to anywhere else.
//!
//! Loopback cannot show what these tests need: a neighbour (ARP) table with real hardware
//! addresses, and a silent host the kernel would retransmit SYNs to. The tools come from
//! `scripts/deps/netns.sh`; the tests need root (namespaces) and fail, never skip, without it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

/// The device side's MAC: an OUI assigned to Hikvision, so the registry lookup has a real
/// answer to find.
const DEVICE_MAC: &str = "c0:56:e3:12:34:56";
const SCANNER: &str = "198.51.100.1";
const DEVICE: &str = "198.51.100.2";
/// An address with a static neighbour entry that nobody owns: SYNs go out and are never
/// answered, without any firewall rule.
const SILENT: &str = "198.51.100.9";

fn ip(args: &[&str]) {
    let status = Command::new("ip")
        .args(args)
        .status()
        .unwrap_or_else(|e| panic!("cannot run `ip` ({e}): run `sudo scripts/deps/netns.sh`"));
    assert!(status.success(), "ip {} failed", args.join(" "));
}

/// Two namespaces joined by a veth pair; deleted (with their links) on drop.
struct Link {
    scanner: String,
    device: String,
}

impl Link {
    fn new(tag: &str) -> Self {
        assert!(
            is_root(),
            "network-namespace tests need root: run the suite as CI does (scripts/test.sh as root)"
        );
        let id = std::process::id();
        let link = Self {
            scanner: format!("tsn-s-{tag}-{id}"),
            device: format!("tsn-d-{tag}-{id}"),
        };
        ip(&["netns", "add", &link.scanner]);
        ip(&["netns", "add", &link.device]);
        ip(&[
            "-n",
            &link.scanner,
            "link",
            "add",
            "s0",
            "type",
            "veth",
            "peer",
            "name",
            "d0",
            "netns",
            &link.device,
        ]);
        ip(&[
            "-n",
            &link.device,
            "link",
            "set",
            "d0",
            "address",
            DEVICE_MAC,
        ]);
        for (ns, dev, addr) in [(&link.scanner, "s0", SCANNER), (&link.device, "d0", DEVICE)] {
            ip(&["-n", ns, "addr", "add", &format!("{addr}/24"), "dev", dev]);
            ip(&["-n", ns, "link", "set", dev, "up"]);
            ip(&["-n", ns, "link", "set", "lo", "up"]);
        }
        ip(&[
            "-n",
            &link.scanner,
            "neigh",
            "add",
            SILENT,
            "lladdr",
            "02:00:00:00:00:09",
            "nud",
            "permanent",
            "dev",
            "s0",
        ]);
        link
    }

    /// `program args` run inside namespace `ns`.
    fn command(ns: &str, program: &str, args: &[&str]) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", ns, program]).args(args);
        command
    }

    /// Runs `discover --json` in the scanner namespace.
    fn discover(&self, args: &[&str]) -> Value {
        let output = Self::command(
            &self.scanner,
            env!("CARGO_BIN_EXE_tillsyn-agent"),
            &["discover"],
        )
        .args(args)
        .arg("--json")
        .output()
        .unwrap();
        assert!(
            output.status.success(),
            "discover failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).unwrap()
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        for ns in [&self.scanner, &self.device] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// Root without a libc call: the effective uid in /proc/self/status.
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|status| {
        status
            .lines()
            .find(|l| l.starts_with("Uid:"))
            .and_then(|l| l.split_whitespace().nth(2))
            == Some("0")
    })
}

/// A child process killed on drop.
struct Running(Child);

impl Running {
    /// Stops it with SIGINT, the way tcpdump flushes and closes its capture file.
    fn interrupt(&mut self) {
        let _ = Command::new("kill")
            .args(["-INT", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `command` and waits until a line of its `stderr` (or stdout) contains `ready`.
fn start_until(mut command: Command, ready: &'static str, from_stderr: bool) -> Running {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stream: Box<dyn std::io::Read + Send> = if from_stderr {
        Box::new(child.stderr.take().unwrap())
    } else {
        Box::new(child.stdout.take().unwrap())
    };
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if line.contains(ready) {
                let _ = tx.send(());
            }
        }
    });
    // A start-up guard, not a timing assertion.
    assert!(
        rx.recv_timeout(Duration::from_secs(30)).is_ok(),
        "{command:?} never printed {ready:?}"
    );
    Running(child)
}

#[test]
fn devices_on_an_attached_subnet_get_their_mac_and_its_registered_vendor() {
    let link = Link::new("mac");
    let mut server = Link::command(
        &link.device,
        "python3",
        &[
            "-u",
            "-c",
            "import http.server as h; s = h.HTTPServer(('198.51.100.2', 8080), h.SimpleHTTPRequestHandler); print('READY', flush=True); s.serve_forever()",
        ],
    );
    server.current_dir(std::env::temp_dir());
    let _server = start_until(server, "READY", false);

    let report = link.discover(&["--target", &format!("{DEVICE}/32"), "--ports", "8080/http"]);
    let devices = report["devices"].as_array().unwrap();
    assert_eq!(devices.len(), 1, "{report:#}");
    let device = &devices[0];
    assert_eq!(device["mac"]["value"], DEVICE_MAC, "{device:#}");
    assert_eq!(device["mac"]["evidence"]["source"], "/proc/net/arp");
    let vendor = device["observations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == "mac_vendor")
        .unwrap_or_else(|| panic!("no mac_vendor observation: {device:#}"));
    assert_eq!(
        vendor["value"],
        "Hangzhou Hikvision Digital Technology Co.,Ltd."
    );
    assert_eq!(
        vendor["evidence"][0]["source"],
        "/usr/share/ieee-data/oui.txt"
    );
}

#[test]
fn every_syn_to_a_silent_host_goes_through_the_limiter() {
    let link = Link::new("syn");
    let capture = std::env::temp_dir().join(format!("tillsyn-syn-{}.pcap", std::process::id()));
    let filter = format!("dst host {SILENT} and tcp[tcpflags] & tcp-syn != 0");
    let tcpdump = Link::command(
        &link.scanner,
        "tcpdump",
        &[
            "-i",
            "s0",
            "-U",
            "-n",
            "-w",
            capture.to_str().unwrap(),
            &filter,
        ],
    );
    let mut tcpdump = start_until(tcpdump, "listening on", true);

    // 2.5 s per connect: long enough that the kernel, left alone, would retransmit the SYN at
    // 1 s (and 3 s); two ports, so two connects.
    let report = link.discover(&[
        "--target",
        &format!("{SILENT}/32"),
        "--ports",
        "8080,8081",
        "--timeout-ms",
        "2500",
    ]);
    let sent = report["packets_sent"].as_u64().unwrap();

    tcpdump.interrupt();
    let read = Command::new("tcpdump")
        .args(["-r", capture.to_str().unwrap(), "-n"])
        .stderr(Stdio::null())
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&capture);
    let lines = String::from_utf8_lossy(&read.stdout);
    let on_wire = lines.lines().filter(|l| l.contains(SILENT)).count() as u64;

    assert!(
        report["devices"].as_array().unwrap().is_empty(),
        "{report:#}"
    );
    // What the kernel put on the wire is exactly what the limiter let through: without the
    // split into attempts, the kernel adds two retransmissions per connect the limiter never saw.
    assert_eq!(on_wire, sent, "SYNs captured:\n{lines}");
    // Three attempts of 833 ms per connect.
    assert_eq!(sent, 6, "{report:#}");
}

fn liveness<'a>(device: &'a Value, how: &str) -> &'a Value {
    device["observations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["category"] == "discovery.liveness" && o["name"] == how)
        .unwrap_or_else(|| panic!("no {how} liveness in {device:#}"))
}

#[test]
fn a_host_with_no_open_port_is_still_found_alive() {
    let link = Link::new("alive");
    // Nothing listens in the device namespace: TCP gets a reset, UDP a port unreachable.
    let by_reset = link.discover(&["--target", &format!("{DEVICE}/32"), "--ports", "8080,8081"]);
    let devices = by_reset["devices"].as_array().unwrap();
    assert_eq!(devices.len(), 1, "{by_reset:#}");
    let device = &devices[0];
    assert!(device["services"].as_array().unwrap().is_empty());
    assert_eq!(device["kind"], "unknown");
    assert!(
        liveness(device, "tcp_reset")["value"]
            .as_str()
            .unwrap()
            .contains("8080, 8081"),
        "{device:#}"
    );
    assert_eq!(device["controls"][0]["state"], "unknown", "{device:#}");
    assert_eq!(device["mac"]["value"], DEVICE_MAC);

    // Only UDP, on a fresh link so that the neighbour entry is made by this sweep: the host
    // answers ARP and nothing else.
    drop(link);
    let link = Link::new("arp");
    let by_arp = link.discover(&["--target", &format!("{DEVICE}/32"), "--ports", "16100/snmp"]);
    let devices = by_arp["devices"].as_array().unwrap();
    assert_eq!(devices.len(), 1, "{by_arp:#}");
    let seen = liveness(&devices[0], "neighbour");
    assert_eq!(seen["evidence"][0]["source"], "/proc/net/arp");
    assert_eq!(devices[0]["mac"]["value"], DEVICE_MAC);

    // The silent address has a (static) neighbour entry from before the sweep and answers
    // nothing: it is not reported.
    let silent = link.discover(&["--target", &format!("{SILENT}/32"), "--ports", "16100/snmp"]);
    assert!(
        silent["devices"].as_array().unwrap().is_empty(),
        "{silent:#}"
    );
}
