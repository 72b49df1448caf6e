//! Network and OT discovery: safe, read-only identification of PLCs, cameras, building control
//! and other devices on the subnets the agent is told to sweep (`discover --target CIDR`).
//!
//! Safety comes first and is structural: every connect and send passes one [`Limiter`]
//! (global and per-host packet caps, one probe per host at a time); every read is bounded in
//! time and size ([`session`]); targets are bounded and exclusions honoured ([`target`]); only
//! documented read-only requests exist ([`registry`] tests this); `--dry-run` prints the
//! requests instead of sending them.
//!
//! # Layout
//! - [`target`]: CIDR, exclusion and port-list parsing, the sweep size bound.
//! - [`limiter`]: packet pacing and per-host exclusivity.
//! - [`session`]: paced, bounded TCP and UDP sockets for probes.
//! - [`tls`]: the TLS handshake in front of `mqtts`, `https`, `rtsps` and its facts.
//! - [`registry`]: the protocol table and the dispatch to probes.
//! - [`wire`], [`identity`]: bounded reply parsing and what a probe learned.
//! - [`kind`]: device kind inference.
//! - [`neighbour`]: MAC addresses from the kernel's neighbour table and their OUI vendor.
//! - [`report`]: a discovered [`Device`] as the `tillsyn.v1.Device` wire message.
//! - probes, one per protocol: [`modbus`], [`mqtt`], [`s7`], [`enip`], [`opcua`], [`snmp`], [`bacnet`], [`http`], [`rtsp`], [`onvif`], [`banner`] (SSH, FTP, Telnet).

pub mod bacnet;
pub mod banner;
pub mod enip;
pub mod http;
pub mod identity;
pub mod kind;
pub mod limiter;
pub mod modbus;
pub mod mqtt;
pub mod neighbour;
pub mod onvif;
pub mod opcua;
pub mod registry;
pub mod report;
pub mod rtsp;
pub mod s7;
pub mod session;
pub mod snmp;
pub mod target;
pub mod tls;
pub mod wire;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use thiserror::Error;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::inventory::{Control, Evidence, Observation};
use identity::{Auth, Field, Identification, Transit};
use kind::{Kind, ServiceView};
pub use limiter::{Limiter, Limits};
use registry::{Outcome, PlannedRequest, ProbeSettings, Protocol};
use session::Budget;
use target::PortSpec;

/// Discovery options as given on the command line, before validation.
#[derive(Clone, Debug)]
pub struct Options {
    /// Comma-separated CIDRs or addresses.
    pub target: String,
    /// Comma-separated CIDRs or addresses never to touch.
    pub exclude: String,
    /// Comma-separated `PORT` or `PORT/PROTOCOL`.
    pub ports: String,
    /// Global packets per second.
    pub pps: u32,
    /// Packets per second towards one host.
    pub per_host_pps: u32,
    /// Timeout per network step, milliseconds.
    pub timeout_ms: u64,
    /// Largest reply accepted, bytes.
    pub max_response: usize,
    /// Refuse targets larger than this prefix holds...
    pub max_prefix: u8,
    /// ...unless forced.
    pub force: bool,
    /// Hosts probed at the same time.
    pub host_concurrency: usize,
    /// Probe request settings.
    pub settings: ProbeSettings,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            target: String::new(),
            exclude: String::new(),
            ports: registry::default_ports(),
            pps: 100,
            per_host_pps: 10,
            timeout_ms: 2000,
            max_response: 64 * 1024,
            max_prefix: 16,
            force: false,
            host_concurrency: 64,
            settings: ProbeSettings::default(),
        }
    }
}

/// Invalid options; lists every problem found.
#[derive(Debug, Error)]
#[error("invalid discovery options:\n  {}", .0.join("\n  "))]
pub struct ConfigError(pub Vec<String>);

/// Validated discovery configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// Addresses to probe, sorted, exclusions removed.
    pub hosts: Vec<Ipv4Addr>,
    /// Ports and the protocol for each.
    pub ports: Vec<PortSpec>,
    /// Packet caps.
    pub limits: Limits,
    /// Per-step timeout and reply cap.
    pub budget: Budget,
    /// Hosts probed at the same time.
    pub host_concurrency: usize,
    /// Probe request settings.
    pub settings: ProbeSettings,
}

impl Config {
    /// Validates `options`, reporting every problem at once.
    pub fn from_options(options: &Options) -> Result<Self, ConfigError> {
        let mut problems = Vec::new();
        let mut note = |p: String| problems.push(p);
        let targets =
            target::parse_cidrs(&options.target).map_err(|e| note(format!("--target: {e}")));
        let exclude = target::parse_cidrs(&options.exclude)
            .map_err(|e| note(format!("--exclude: {e}")))
            .unwrap_or_default();
        let ports = match target::parse_ports(&options.ports) {
            Ok(ports) if ports.is_empty() => {
                note("--ports: no port given".to_string());
                ports
            }
            Ok(ports) => ports,
            Err(e) => {
                note(format!("--ports: {e}"));
                Vec::new()
            }
        };
        let hosts = match targets {
            // The parse error is already noted.
            Err(()) => Vec::new(),
            Ok(targets) if targets.is_empty() => {
                note("--target: no target given".to_string());
                Vec::new()
            }
            Ok(targets) => target::expand(&targets, &exclude, options.max_prefix, options.force)
                .map_err(|e| note(format!("--target: {e}")))
                .unwrap_or_default(),
        };
        if options.pps == 0 || options.per_host_pps == 0 {
            note("--pps and --per-host-pps must be at least 1".to_string());
        }
        if options.timeout_ms == 0 || options.max_response == 0 || options.host_concurrency == 0 {
            note(
                "--timeout-ms, --max-response and --host-concurrency must be at least 1"
                    .to_string(),
            );
        }
        if options.settings.modbus_unit == 0 {
            note("--modbus-unit 0 is the Modbus broadcast address and is never used".to_string());
        }
        let paths = &options.settings.rtsp_paths;
        if paths.len() > rtsp::MAX_PATHS {
            note(format!(
                "--rtsp-path: {} paths given, at most {} (each is a request to every RTSP server)",
                paths.len(),
                rtsp::MAX_PATHS
            ));
        }
        for path in paths.iter().filter(|p| !rtsp::valid_path(p)) {
            note(format!(
                "--rtsp-path: {path:?} must start with / and be at most {} printable characters without spaces",
                rtsp::MAX_PATH_LEN
            ));
        }
        if !problems.is_empty() {
            return Err(ConfigError(problems));
        }
        Ok(Self {
            hosts,
            ports,
            limits: Limits {
                global_pps: options.pps,
                per_host_pps: options.per_host_pps.min(options.pps),
            },
            budget: Budget {
                timeout: Duration::from_millis(options.timeout_ms),
                max_response: options.max_response,
            },
            host_concurrency: options.host_concurrency,
            settings: options.settings.clone(),
        })
    }
}

/// One identity attribute of a device with the evidence for it.
#[derive(Clone, Debug, Serialize)]
pub struct Attribute {
    /// The value.
    pub value: String,
    /// Probe, target and protocol field it came from.
    pub evidence: Evidence,
}

/// One open port of a device.
#[derive(Clone, Debug, Serialize)]
pub struct Service {
    /// The port.
    pub port: u16,
    /// `tcp` or `udp`.
    pub transport: &'static str,
    /// The protocol probed (`connect` when only liveness was checked).
    pub protocol: &'static str,
    /// Whether the protocol was identified.
    pub identified: bool,
    /// `tls` or `plaintext`; absent when unknown.
    pub transit: Option<Transit>,
    /// `required`, `none` or `unknown`.
    pub auth: Auth,
    /// Why the auth verdict is what it is.
    pub auth_reason: String,
    /// Why identification failed, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A discovered device.
#[derive(Clone, Debug, Serialize)]
pub struct Device {
    /// The address it answered on.
    pub address: IpAddr,
    /// Inferred kind.
    pub kind: Kind,
    /// Confidence in the kind, 0..=1.
    pub kind_confidence: f64,
    /// Why this kind.
    pub kind_reason: String,
    /// Manufacturer.
    pub vendor: Option<Attribute>,
    /// Model.
    pub model: Option<Attribute>,
    /// Firmware.
    pub firmware: Option<Attribute>,
    /// Serial number.
    pub serial: Option<Attribute>,
    /// Hardware address, from the neighbour table (directly attached subnets only).
    pub mac: Option<Attribute>,
    /// Open ports.
    pub services: Vec<Service>,
    /// Every identity field seen, with evidence.
    pub observations: Vec<Observation>,
    /// Controls derived from the services (`transit_encryption`).
    pub controls: Vec<Control>,
}

/// A sweep's result.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Addresses probed.
    pub hosts_probed: usize,
    /// Packets (connects and requests) sent through the limiter.
    pub packets_sent: u64,
    /// Global cap in force.
    pub pps: u32,
    /// Per-host cap in force.
    pub per_host_pps: u32,
    /// Devices with at least one open port.
    pub devices: Vec<Device>,
}

/// Sweeps every host and port in `config`.
pub async fn run(config: Config) -> Report {
    let limiter = Limiter::new(config.limits);
    let neighbours_before = neighbour::read_table(Path::new(neighbour::ARP_TABLE));
    let config = Arc::new(config);
    let slots = Arc::new(Semaphore::new(config.host_concurrency));
    let mut tasks = JoinSet::new();
    let mut devices = Vec::new();
    for host in config.hosts.iter().copied() {
        // A closed semaphore cannot happen: it is never closed.
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            break;
        };
        let (limiter, config) = (Arc::clone(&limiter), Arc::clone(&config));
        tasks.spawn(async move {
            let device = probe_host(IpAddr::V4(host), &config, &limiter).await;
            drop(slot);
            device
        });
        while let Some(done) = tasks.try_join_next() {
            devices.extend(joined(done));
        }
    }
    while let Some(done) = tasks.join_next().await {
        devices.extend(joined(done));
    }
    let neighbours = neighbour::read_table(Path::new(neighbour::ARP_TABLE));
    add_neighbour_only(&mut devices, &config.hosts, &neighbours_before, &neighbours);
    devices.sort_by_key(|d| d.address);
    attach_neighbours(
        &mut devices,
        &neighbours,
        Path::new(neighbour::OUI_REGISTRY),
    );
    Report {
        hosts_probed: config.hosts.len(),
        packets_sent: limiter.sent(),
        pps: config.limits.global_pps,
        per_host_pps: config.limits.per_host_pps,
        devices,
    }
}

/// Gives every device found in the neighbour `table` its MAC, and names the MAC's maker from the
/// OUI `registry` as an observation.
fn attach_neighbours(devices: &mut [Device], table: &[neighbour::Neighbour], registry: &Path) {
    let entries: Vec<(&mut Device, &neighbour::Neighbour)> = devices
        .iter_mut()
        .filter_map(|device| {
            let entry = table
                .iter()
                .find(|n| IpAddr::V4(n.address) == device.address)?;
            Some((device, entry))
        })
        .collect();
    // Only the devices' MACs are looked up: the registry is a few megabytes to stream.
    let macs: Vec<&str> = entries.iter().map(|(_, n)| n.mac.as_str()).collect();
    let makers = neighbour::vendors(registry, &macs);
    for (device, entry) in entries {
        let evidence = Evidence {
            source: neighbour::ARP_TABLE.to_string(),
            line: 0,
            probe: "neighbour".to_string(),
            detail: format!("{} resolved on {}", entry.address, entry.interface),
        };
        device.observations.push(Observation {
            category: "discovery.neighbour".to_string(),
            name: "mac".to_string(),
            value: serde_json::Value::String(entry.mac.clone()),
            evidence: vec![evidence.clone()],
        });
        if let Some(maker) = makers.get(&entry.mac) {
            device.observations.push(Observation {
                category: "discovery.neighbour".to_string(),
                name: "mac_vendor".to_string(),
                value: serde_json::Value::String(maker.organisation.clone()),
                evidence: vec![Evidence {
                    source: maker.source.display().to_string(),
                    line: maker.line,
                    probe: "oui".to_string(),
                    detail: format!("IEEE assignment of {}", &entry.mac[..8]),
                }],
            });
        }
        device.mac = Some(Attribute {
            value: entry.mac.clone(),
            evidence,
        });
    }
}

/// A finished host task's device; a task that panicked is logged, the sweep goes on.
fn joined(done: Result<Option<Device>, tokio::task::JoinError>) -> Option<Device> {
    done.unwrap_or_else(|error| {
        tracing::error!(%error, "a host probe task failed");
        None
    })
}

/// Probes every port of one host, one after the other, holding the host's permit.
async fn probe_host(host: IpAddr, config: &Config, limiter: &Arc<Limiter>) -> Option<Device> {
    let mut permit = limiter.host(host).await;
    let mut found = Vec::new();
    let mut refused = Vec::new();
    for spec in &config.ports {
        let addr = SocketAddr::new(host, spec.port);
        match registry::probe(
            spec.protocol,
            addr,
            &mut permit,
            config.budget,
            &config.settings,
        )
        .await
        {
            Outcome::Open(result) => {
                tracing::debug!(%addr, protocol = spec.protocol.name(), ok = result.is_ok(), "service answered");
                found.push((*spec, result));
            }
            Outcome::Refused => refused.push(spec.port.to_string()),
            Outcome::Closed => {}
        }
    }
    drop(permit);
    if !found.is_empty() {
        return Some(build_device(host, &found));
    }
    // A reset comes from the host's own stack: the host is up even though no probed port is.
    (!refused.is_empty()).then(|| {
        alive_device(
            host,
            "tcp_reset",
            format!("refused TCP connections to port(s) {}", refused.join(", ")),
            Evidence {
                source: format!("{host}/tcp"),
                line: 0,
                probe: "connect".to_string(),
                detail: "TCP reset in answer to the SYN".to_string(),
            },
        )
    })
}

/// A host known to be up (by `how`) on which no probed port is open: reported so that an
/// unknown box on an OT network is seen, with kind `unknown` and transit `unknown`.
fn alive_device(host: IpAddr, how: &str, what: String, evidence: Evidence) -> Device {
    let mut device = build_device(host, &[]);
    device.kind_reason = format!("the host is up ({what}) but no probed port is open");
    device.observations.push(Observation {
        category: "discovery.liveness".to_string(),
        name: how.to_string(),
        value: serde_json::Value::String(what),
        evidence: vec![evidence],
    });
    device
}

/// Adds, as live devices, the `hosts` that the neighbour table resolved during the sweep
/// (absent from `before`, present in `after`) and that answered nothing else. Entries that were
/// there before prove nothing: the table does not say how old they are.
fn add_neighbour_only(
    devices: &mut Vec<Device>,
    hosts: &[Ipv4Addr],
    before: &[neighbour::Neighbour],
    after: &[neighbour::Neighbour],
) {
    for entry in after {
        let address = IpAddr::V4(entry.address);
        let new = !before.iter().any(|b| b.address == entry.address);
        let known = devices.iter().any(|d| d.address == address);
        if new && !known && hosts.contains(&entry.address) {
            devices.push(alive_device(
                address,
                "neighbour",
                format!("answered ARP on {} during the sweep", entry.interface),
                Evidence {
                    source: neighbour::ARP_TABLE.to_string(),
                    line: 0,
                    probe: "neighbour".to_string(),
                    detail: format!("{} resolved to {}", entry.address, entry.mac),
                },
            ));
        }
    }
}

type Probed = (
    PortSpec,
    Result<Option<Identification>, session::ProbeError>,
);

fn evidence(host: IpAddr, spec: PortSpec, detail: &str) -> Evidence {
    Evidence {
        source: format!("{host}:{}/{}", spec.port, spec.protocol.transport().name()),
        line: 0,
        probe: spec.protocol.name().to_string(),
        detail: detail.to_string(),
    }
}

fn build_device(host: IpAddr, found: &[Probed]) -> Device {
    let mut device = Device {
        address: host,
        kind: Kind::Unknown,
        kind_confidence: 0.0,
        kind_reason: String::new(),
        vendor: None,
        model: None,
        firmware: None,
        serial: None,
        mac: None,
        services: Vec::new(),
        observations: Vec::new(),
        controls: Vec::new(),
    };
    for (spec, result) in found {
        device.services.push(service(*spec, result));
        if let Ok(Some(id)) = result {
            absorb(&mut device, host, *spec, id);
        }
    }
    let views: Vec<ServiceView<'_>> = found
        .iter()
        .map(|(spec, result)| ServiceView {
            protocol: spec.protocol.name(),
            port: spec.port,
            identification: result.as_ref().ok().and_then(Option::as_ref),
        })
        .collect();
    let verdict = kind::infer(&views);
    device.kind = verdict.kind;
    device.kind_confidence = verdict.confidence;
    device.kind_reason = verdict.reason;
    device
        .controls
        .push(transit_control(host, &device.services));
    device
}

fn service(
    spec: PortSpec,
    result: &Result<Option<Identification>, session::ProbeError>,
) -> Service {
    let base = Service {
        port: spec.port,
        transport: spec.protocol.transport().name(),
        protocol: spec.protocol.name(),
        identified: false,
        transit: None,
        auth: Auth::Unknown,
        auth_reason: "not identified".to_string(),
        error: None,
    };
    match result {
        Ok(Some(id)) => Service {
            identified: true,
            // A probe that cannot tell leaves the transit unknown, never "ok".
            transit: (id.transit != Transit::Unknown).then_some(id.transit),
            auth: id.auth,
            auth_reason: id.auth_reason.clone(),
            ..base
        },
        Ok(None) => Service {
            auth_reason: "liveness only: the port accepts connections".to_string(),
            ..base
        },
        Err(error) => Service {
            error: Some(error.to_string()),
            ..base
        },
    }
}

/// Copies a probe's fields into the device: the first probe to name an attribute wins, every
/// field becomes an observation.
fn absorb(device: &mut Device, host: IpAddr, spec: PortSpec, id: &Identification) {
    for f in &id.fields {
        let ev = evidence(host, spec, &f.protocol_field);
        let slot = match f.field {
            Field::Vendor => Some(&mut device.vendor),
            Field::Model => Some(&mut device.model),
            Field::Firmware => Some(&mut device.firmware),
            Field::Serial => Some(&mut device.serial),
            Field::Detail => None,
        };
        if let Some(slot) = slot {
            slot.get_or_insert_with(|| Attribute {
                value: f.value.clone(),
                evidence: ev.clone(),
            });
        }
        device.observations.push(Observation {
            category: format!("discovery.{}", id.protocol),
            name: f.name.clone(),
            value: serde_json::Value::String(f.value.clone()),
            evidence: vec![ev],
        });
    }
}

fn transit_control(host: IpAddr, services: &[Service]) -> Control {
    let plaintext: Vec<&Service> = services
        .iter()
        .filter(|s| s.transit == Some(Transit::Plaintext))
        .collect();
    let unknown = services.iter().any(|s| s.transit.is_none());
    let (state, reason) = if !plaintext.is_empty() {
        let names: Vec<String> = plaintext
            .iter()
            .map(|s| format!("{}/{}", s.protocol, s.port))
            .collect();
        (
            "plaintext",
            format!("plaintext services: {}", names.join(", ")),
        )
    } else if services.is_empty() {
        ("unknown", "no open port among those probed".to_string())
    } else if unknown {
        ("unknown", "some open ports were not identified".to_string())
    } else {
        (
            "encrypted",
            "every open port is an encrypted service".to_string(),
        )
    };
    Control {
        name: "transit_encryption".to_string(),
        state: state.to_string(),
        reason,
        evidence: services
            .iter()
            .map(|s| Evidence {
                source: format!("{host}:{}/{}", s.port, s.transport),
                line: 0,
                probe: s.protocol.to_string(),
                detail: String::new(),
            })
            .collect(),
    }
}

/// One request a sweep would send, as `--dry-run` prints it.
#[derive(Clone, Debug, Serialize)]
pub struct DryRunRequest {
    /// Target address.
    pub target: IpAddr,
    /// Port.
    pub port: u16,
    /// `tcp` or `udp`.
    pub transport: &'static str,
    /// The probe.
    pub probe: &'static str,
    /// What the request is.
    pub step: &'static str,
    /// Request bytes in hex (empty for a TCP connect).
    pub request_hex: String,
}

/// Lists every request a sweep would send, without sending anything.
pub fn dry_run(config: &Config) -> Vec<DryRunRequest> {
    let mut out = Vec::new();
    for host in &config.hosts {
        for spec in &config.ports {
            let protocol: Protocol = spec.protocol;
            let connect =
                (protocol.transport() == registry::Transport::Tcp).then(|| PlannedRequest {
                    step: "tcp connect",
                    bytes: Vec::new(),
                });
            for request in connect
                .into_iter()
                .chain(registry::plan(protocol, &config.settings))
            {
                out.push(DryRunRequest {
                    target: IpAddr::V4(*host),
                    port: spec.port,
                    transport: protocol.transport().name(),
                    probe: protocol.name(),
                    step: request.step,
                    request_hex: wire::hex(&request.bytes),
                });
            }
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn config_reports_every_problem() {
        let options = Options {
            target: "10.0.0.0/8".into(),
            ports: "x".into(),
            pps: 0,
            ..Options::default()
        };
        let error = Config::from_options(&options).unwrap_err();
        assert_eq!(error.0.len(), 3, "{error}");
        // A target that does not parse is one problem, not also "no target given".
        let options = Options {
            target: "fe80::1".into(),
            ..Options::default()
        };
        assert_eq!(Config::from_options(&options).unwrap_err().0.len(), 1);
    }

    #[test]
    fn rtsp_paths_are_bounded_and_validated() {
        let with_paths = |paths: &[&str]| Options {
            target: "192.0.2.1".into(),
            settings: ProbeSettings {
                rtsp_paths: paths.iter().map(|p| (*p).to_string()).collect(),
                ..ProbeSettings::default()
            },
            ..Options::default()
        };
        assert!(Config::from_options(&with_paths(&["/", "/Streaming/Channels/101"])).is_ok());
        let error = Config::from_options(&with_paths(&["/a", "/b", "/c", "/d", "e"])).unwrap_err();
        assert_eq!(error.0.len(), 2, "{error}");
        assert!(Config::from_options(&with_paths(&["/x\r\nAuthorization: y"])).is_err());
    }

    #[test]
    fn dry_run_lists_connects_and_requests() {
        let options = Options {
            target: "192.0.2.1".into(),
            ports: "502,9100".into(),
            ..Options::default()
        };
        let config = Config::from_options(&options).unwrap();
        let plan = dry_run(&config);
        assert_eq!(plan.len(), 3);
        assert_eq!(
            plan[1].request_hex,
            "00010000000506ff2b0e0200".replace("0506", "05")
        );
        assert!(
            plan.iter()
                .filter(|r| r.port == 9100)
                .all(|r| r.request_hex.is_empty())
        );
    }
}
