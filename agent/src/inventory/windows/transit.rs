//! The `transit_encryption` control on Windows, from the configuration of the services Windows
//! itself exposes, with the Linux states: `plaintext` if any exposed service is, else
//! `unknown` (never `encrypted` from configuration alone, see below).
//!
//! - **SChannel** (`HKLM\SYSTEM\CurrentControlSet\Control\SecurityProviders\SCHANNEL\Protocols\
//!   <protocol>\Server`, `Enabled` and `DisabledByDefault`): a server protocol is on when
//!   `Enabled` is not 0 and `DisabledByDefault` is not 1. Unset, Windows' documented defaults
//!   apply: SSL 2.0 and 3.0 off from build 14393 (Server 2016), TLS 1.0 and 1.1 on below build
//!   26100 (Server 2025), where they are left undecided. SSL 2.0/3.0 (RFC 6176, RFC 7568) and
//!   TLS 1.0/1.1 (RFC 8996) are deprecated; a TLS service that accepts them is counted as not
//!   encrypted, because a client (or an attacker downgrading it) may use them.
//! - **RDP** (when enabled, see [`super::logon`]): TLS (`SecurityLayer` 2, or 1 with NLA, which
//!   needs CredSSP over TLS) is SChannel's; the RDP Security Layer (`SecurityLayer` 0, or 1
//!   without NLA) with `MinEncryptionLevel` 1 sends server-to-client data unencrypted.
//! - **SMB** (`LanmanServer` service not disabled), `LanmanServer\Parameters`: `SMB1` on (SMB1
//!   has no encryption), else `EncryptData` = 1 with `RejectUnencryptedAccess` not 0 is
//!   encrypted (SMB 3 AES); otherwise file data crosses the wire in the clear (signing,
//!   `RequireSecuritySignature`, protects integrity only and is recorded).
//! - **WinRM** (automatic, with listeners): `*+HTTPS` is SChannel TLS; `*+HTTP` is encrypted by
//!   the Kerberos/NTLM message layer unless unencrypted traffic is allowed (`AllowUnencrypted`
//!   under `WSMAN\Service`, or the policy `AllowUnencryptedTraffic`).
//! - **OpenSSH Server** (`sshd` not disabled): SSH.
//! - **IIS** (`W3SVC` automatic): each site binding in
//!   `%windir%\System32\inetsrv\config\applicationHost.config` (`<site><bindings><binding
//!   protocol=... bindingInformation=...>`): `http` is plaintext, `https` is SChannel TLS, other
//!   protocols (`net.tcp`, `ftp`, ...) are undecided; a missing or unreadable file is undecided.
//!
//! - **The listener table** (IP Helper API live, `recorded/listeners.json` offline; see
//!   [`super::listeners`]): every exposed TCP socket is either accounted for by a configured
//!   service above (by its port: RDP's `PortNumber`, SMB 445/139, WinRM 5985/5986, OpenSSH 22,
//!   IIS binding ports) or judged by the live probe as on Linux (TLS, SSH, RDP's negotiated
//!   security protocol, plaintext protocols). The worse of configuration and probe wins: a
//!   probe finding plaintext on a configured port makes it plaintext, and configuration that
//!   says plaintext (TLS 1.0 accepted, RDP Security Layer with low encryption) is not
//!   overruled by a probe that negotiated TLS 1.3. Offline nothing is probed, so a socket no
//!   configured service accounts for (RPC's 135 and its dynamic ports, third-party services)
//!   is `unknown` (not probed).
//! - **Windows Defender Firewall** ([`super::firewall`]): a socket, or a configured service's
//!   ports, that no profile admits from other hosts is not exposed and does not count (named
//!   in the reason, its rules and profiles in the evidence when the verdict is `encrypted`);
//!   UDP endpoints are counted only when admitted. Without the firewall's keys every socket
//!   counts as exposed.
//!
//! `encrypted` needs the listener table: without it the registry does not list every listening
//! socket, so a host whose configured services are all encrypted is `unknown`, with those
//! services and the reason the table is missing named.

use std::collections::BTreeMap;

use super::firewall;
use super::logon::{RdpSettings, WSMAN_LISTENER, service_start};
use super::registry::{Registry, RegistryError};
use crate::inventory::listeners::{Listener, Transport};
use crate::inventory::tls_probe::{Encryption, ServiceVerdict};
use crate::inventory::{Control, Evidence, Observation};

const PROBE: &str = "windows_transit";
const SCHANNEL: &str =
    "HKLM\\SYSTEM\\CurrentControlSet\\Control\\SecurityProviders\\SCHANNEL\\Protocols";
const LANMAN: &str = "HKLM\\SYSTEM\\CurrentControlSet\\Services\\LanmanServer\\Parameters";
const WSMAN_SERVICE: &str = "HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\WSMAN\\Service";
const WINRM_POLICY: &str = "HKLM\\SOFTWARE\\Policies\\Microsoft\\Windows\\WinRM\\Service";

/// The server protocols SChannel may offer, oldest first, and whether each is deprecated.
const PROTOCOLS: [(&str, bool); 6] = [
    ("SSL 2.0", true),
    ("SSL 3.0", true),
    ("TLS 1.0", true),
    ("TLS 1.1", true),
    ("TLS 1.2", false),
    ("TLS 1.3", false),
];

/// An exposed service and how it is protected.
struct Service {
    /// The TCP ports it listens on by configuration (defaults where the registry does not
    /// say), which account for those sockets in the listener table.
    ports: Vec<u16>,
    name: String,
    state: State,
    why: String,
    evidence: Vec<Evidence>,
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum State {
    Encrypted,
    Unknown,
    Plaintext,
}

/// What SChannel offers on the server side.
struct Schannel {
    /// Deprecated protocols on, with their evidence.
    deprecated_on: Vec<(String, Vec<Evidence>)>,
    /// Deprecated protocols whose state is not known.
    undecided: Vec<(String, Evidence)>,
}

/// Where IIS keeps its sites, relative to the system drive.
pub const IIS_CONFIG: &str = "/Windows/System32/inetsrv/config/applicationHost.config";

/// One IIS site binding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IisBinding {
    /// The site's name.
    pub site: String,
    /// `http`, `https`, `net.tcp`, ...
    pub protocol: String,
    /// `address:port:host`, e.g. `*:80:`.
    pub information: String,
    /// 1-based line of the `<binding>` element.
    pub line: u32,
}

/// Parses the site bindings of `applicationHost.config` (no DTDs, no external entities:
/// `roxmltree`).
pub fn parse_iis_bindings(text: &str) -> Result<Vec<IisBinding>, String> {
    let doc = roxmltree::Document::parse(text).map_err(|e| e.to_string())?;
    Ok(doc
        .descendants()
        .filter(|n| n.has_tag_name("binding"))
        .filter_map(|binding| {
            let bindings = binding
                .parent_element()
                .filter(|p| p.has_tag_name("bindings"))?;
            let site = bindings
                .parent_element()
                .filter(|p| p.has_tag_name("site"))?;
            Some(IisBinding {
                site: site.attribute("name").unwrap_or_default().to_string(),
                protocol: binding
                    .attribute("protocol")
                    .unwrap_or_default()
                    .to_lowercase(),
                information: binding
                    .attribute("bindingInformation")
                    .unwrap_or_default()
                    .to_string(),
                line: doc.text_pos_at(binding.range().start).row,
            })
        })
        .collect())
}

/// The listener table and the live probes' verdicts keyed by [`Listener::key`] (empty
/// offline), or why the table is not known.
pub enum ListenerTable<'a> {
    /// The table was read.
    Known {
        /// Every listening socket.
        listeners: &'a [Listener],
        /// The probes' verdicts.
        verdicts: &'a BTreeMap<String, ServiceVerdict>,
    },
    /// Why the table is not known (no recording, an API failure, a bad file).
    Unknown(String),
}

/// Derives the control from the registry and the RDP settings already read (`Err`: they
/// could not be read); `build` is `CurrentBuild`, for SChannel's defaults; `iis` is the text
/// of [`IIS_CONFIG`] (`None` when it does not exist, `Err` why it could not be read); `table`
/// is the listener table with the probes' verdicts.
pub fn control(
    registry: &Registry<'_>,
    rdp: Result<&RdpSettings, String>,
    build: Option<u32>,
    iis: Option<Result<String, String>>,
    table: &ListenerTable<'_>,
    observations: &mut Vec<Observation>,
) -> Control {
    let registry = registry.with_probe(PROBE);
    let outcome = rdp.and_then(|rdp| {
        decide(&registry, rdp, build, iis, table, observations).map_err(|e| e.to_string())
    });
    match outcome {
        Ok(control) => control,
        Err(e) => Control {
            name: "transit_encryption".into(),
            state: "unknown".into(),
            reason: format!("the registry could not be read: {e}"),
            evidence: vec![Evidence {
                source: "registry".into(),
                line: 0,
                probe: PROBE.into(),
                detail: e,
            }],
        },
    }
}

fn decide(
    registry: &Registry<'_>,
    rdp: &RdpSettings,
    build: Option<u32>,
    iis: Option<Result<String, String>>,
    table: &ListenerTable<'_>,
    observations: &mut Vec<Observation>,
) -> Result<Control, RegistryError> {
    let schannel = schannel(registry, build, observations)?;
    let mut services = configured_services(registry, rdp, &schannel, iis, observations)?;
    let (udp_note, gap, closed) = exposed_services(registry, table, &mut services, observations);
    let worst = services.iter().map(|s| s.state).max();
    let describe = |state: State| {
        services
            .iter()
            .filter(|s| s.state == state)
            .map(|s| format!("{} ({})", s.name, s.why))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let (state, reason) = match (worst, gap) {
        (Some(State::Plaintext), _) => (
            "plaintext",
            format!(
                "exposed service(s) not encrypted: {}{udp_note}",
                describe(State::Plaintext)
            ),
        ),
        (Some(State::Unknown), _) => (
            "unknown",
            format!(
                "exposed service(s) not decided: {}{udp_note}",
                describe(State::Unknown)
            ),
        ),
        (Some(State::Encrypted), None) => (
            "encrypted",
            format!(
                "every exposed service is encrypted: {}{udp_note}",
                describe(State::Encrypted)
            ),
        ),
        (None, None) => (
            "encrypted",
            format!("no TCP service is exposed beyond loopback{udp_note}"),
        ),
        (Some(State::Encrypted), Some(why)) => (
            "unknown",
            format!(
                "the configured Windows services are encrypted ({}), but other listening \
                 sockets are not known: {why}",
                describe(State::Encrypted)
            ),
        ),
        (None, Some(why)) => (
            "unknown",
            format!(
                "no Windows service exposed by configuration; other listening sockets are not \
                 known: {why}"
            ),
        ),
    };
    let chosen = worst.unwrap_or(State::Unknown);
    let mut evidence: Vec<Evidence> = services
        .into_iter()
        .filter(|s| s.state == chosen)
        .flat_map(|s| s.evidence)
        .collect();
    if state == "encrypted" {
        // The verdict rests on the closed sockets being closed: name the rules and profiles.
        let mut seen = std::collections::HashSet::new();
        evidence.extend(
            closed
                .into_iter()
                .flat_map(|(_, e)| e)
                .filter(|e| seen.insert((e.source.clone(), e.detail.clone()))),
        );
    }
    Ok(Control {
        name: "transit_encryption".into(),
        state: state.into(),
        reason,
        evidence,
    })
}

/// A service or socket no firewall profile admits: its name and the evidence.
type Closed = (String, Vec<Evidence>);

/// Adds the listener table's unaccounted sockets to `services` and removes those Windows
/// Defender Firewall admits from no profile: (the UDP and firewall notes for the reason, why
/// the table is not known, the services closed with their evidence).
fn exposed_services<'t>(
    registry: &Registry<'_>,
    table: &'t ListenerTable<'_>,
    services: &mut Vec<Service>,
    observations: &mut Vec<Observation>,
) -> (String, Option<&'t str>, Vec<Closed>) {
    let wall = firewall::read(&registry.with_probe(firewall::PROBE));
    let listeners = match table {
        ListenerTable::Known { listeners, .. } => *listeners,
        ListenerTable::Unknown(_) => &[],
    };
    let judged = match &wall {
        Ok(wall) => exposures(wall, listeners, observations),
        Err(_) => BTreeMap::new(),
    };
    let reachable = |l: &Listener| judged.get(&l.key()).copied().unwrap_or(true);
    let mut closed = Vec::new();
    let (udp_note, gap) = match table {
        ListenerTable::Known {
            listeners,
            verdicts,
        } => {
            let extra = listener_services(services, listeners, verdicts);
            services.extend(extra);
            let udp = listeners
                .iter()
                .filter(|l| l.transport == Transport::Udp && l.is_exposed() && reachable(l))
                .count();
            let note = if udp > 0 {
                format!("; {udp} exposed UDP listener(s) not assessed")
            } else {
                String::new()
            };
            (note, None)
        }
        ListenerTable::Unknown(why) => (String::new(), Some(why.as_str())),
    };
    if let Ok(wall) = &wall {
        services.retain(
            |service| match judge_service(wall, service, listeners, &judged) {
                Some(evidence) => {
                    closed.push((service.name.clone(), evidence));
                    false
                }
                None => true,
            },
        );
    }
    let wall_note = match (&wall, closed.is_empty()) {
        (Err(why), _) => format!(
            "; Windows Defender Firewall not known ({why}): every listening socket counts as \
             exposed"
        ),
        (Ok(_), true) => String::new(),
        (Ok(_), false) => format!(
            "; not reachable through Windows Defender Firewall in any profile: {}",
            closed
                .iter()
                .map(|(name, _)| name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let udp_note = format!("{udp_note}{wall_note}");
    (udp_note, gap, closed)
}

/// The firewall's view of a listening socket's owner: its image path, `System` for the
/// kernel's (pid 4, no path), `None` when not known.
fn socket_image(listener: &Listener) -> Option<&str> {
    let owner = listener.owners.first()?;
    if !owner.exe.is_empty() {
        Some(owner.exe.as_str())
    } else if owner.pid == 4 || owner.comm == "System" {
        Some("System")
    } else {
        None
    }
}

/// The firewall's verdict on every exposed socket of the table, by [`Listener::key`], each
/// also a `windows_firewall` observation (empty when the firewall is not known).
fn exposures(
    wall: &firewall::Firewall,
    listeners: &[Listener],
    observations: &mut Vec<Observation>,
) -> BTreeMap<String, bool> {
    let mut judged = BTreeMap::new();
    for listener in listeners.iter().filter(|l| l.is_exposed()) {
        let key = listener.key();
        if judged.contains_key(&key) {
            continue;
        }
        let exposure = wall.judge(firewall::Socket {
            transport: listener.transport,
            port: listener.port,
            image: socket_image(listener),
        });
        let owner = listener
            .owners
            .first()
            .map(|o| format!(" {}", o.comm))
            .unwrap_or_default();
        observations.push(Observation {
            category: "windows_firewall".into(),
            name: format!("{key}{owner}"),
            value: serde_json::json!({ "admitted": exposure.admitted, "why": exposure.why }),
            evidence: exposure.evidence,
        });
        judged.insert(key, exposure.admitted);
    }
    judged
}

/// `Some(evidence)` when the firewall admits none of `service`'s sockets from other hosts:
/// those in the listener table on its ports, or (without them) its ports with the owner not
/// known. A service without ports stays.
fn judge_service(
    wall: &firewall::Firewall,
    service: &Service,
    listeners: &[Listener],
    judged: &BTreeMap<String, bool>,
) -> Option<Vec<Evidence>> {
    if service.ports.is_empty() {
        return None;
    }
    let mut evidence = Vec::new();
    for &port in &service.ports {
        let sockets: Vec<&Listener> = listeners
            .iter()
            .filter(|l| l.transport == Transport::Tcp && l.is_exposed() && l.port == port)
            .collect();
        if sockets.is_empty() {
            let exposure = wall.judge(firewall::Socket {
                transport: Transport::Tcp,
                port,
                image: None,
            });
            if exposure.admitted {
                return None;
            }
            evidence.extend(exposure.evidence);
        }
        for listener in sockets {
            if judged.get(&listener.key()).copied().unwrap_or(true) {
                return None;
            }
            evidence.push(listener.evidence());
        }
    }
    if let Some(first) = service.ports.first() {
        // The profiles' and rules' evidence, once per service.
        evidence.extend(
            wall.judge(firewall::Socket {
                transport: Transport::Tcp,
                port: *first,
                image: listeners
                    .iter()
                    .find(|l| l.port == *first && l.transport == Transport::Tcp)
                    .and_then(socket_image),
            })
            .evidence,
        );
    }
    Some(evidence)
}

/// The services Windows exposes by configuration (RDP, SMB, WinRM, OpenSSH, IIS), judged.
fn configured_services(
    registry: &Registry<'_>,
    rdp: &RdpSettings,
    schannel: &Schannel,
    iis: Option<Result<String, String>>,
    observations: &mut Vec<Observation>,
) -> Result<Vec<Service>, RegistryError> {
    let mut services = Vec::new();
    if rdp.enabled {
        let mut service = rdp_service(rdp, schannel);
        service.ports = u16::try_from(rdp.port).into_iter().collect();
        services.push(service);
    }
    services.extend(smb_service(registry, observations)?);
    services.extend(winrm_services(registry, schannel)?);
    if let Some(start) = service_start(registry, "sshd")?.filter(|s| s.value != 4) {
        services.push(Service {
            // sshd_config's `Port` is not consulted: 22 is the default of OpenSSH for Windows.
            ports: vec![22],
            name: "OpenSSH Server".into(),
            state: State::Encrypted,
            why: "SSH".into(),
            evidence: vec![start.evidence],
        });
    }
    if let Some(start) = service_start(registry, "W3SVC")?.filter(|s| s.value == 2) {
        services.extend(iis_services(&start.evidence, iis, schannel, observations));
    }
    Ok(services)
}

/// The exposed TCP listeners the configured services do not account for, judged by the live
/// probe (`not probed` offline), and those the probe found plaintext although configuration
/// accounts for them: configuration that says plaintext wins over a probe, and a probe that
/// says plaintext wins over configuration (the worse of the two is the truth on the wire).
fn listener_services(
    configured: &[Service],
    listeners: &[Listener],
    verdicts: &BTreeMap<String, ServiceVerdict>,
) -> Vec<Service> {
    let mut seen = std::collections::HashSet::new();
    let mut found = Vec::new();
    for listener in listeners
        .iter()
        .filter(|l| l.transport == Transport::Tcp && l.is_exposed())
    {
        let key = listener.key();
        if !seen.insert(key.clone()) {
            continue;
        }
        let accounted = configured.iter().any(|s| s.ports.contains(&listener.port));
        let verdict = verdicts.get(&key);
        let state = match verdict.map(|v| v.encryption) {
            Some(Encryption::Plaintext) => State::Plaintext,
            _ if accounted => continue,
            Some(Encryption::Encrypted) => State::Encrypted,
            Some(Encryption::Unknown) | None => State::Unknown,
        };
        let owner = listener
            .owners
            .first()
            .map(|o| format!(" {}", o.comm))
            .filter(|o| o.trim() != "")
            .unwrap_or_default();
        let why = verdict.map_or_else(
            || "not probed".to_string(),
            |v| match &v.rdp {
                Some(rdp) => format!("probe: rdp {}", rdp.security_protocol),
                None => format!("probe: {}", v.protocol),
            },
        );
        let mut evidence = vec![listener.evidence()];
        evidence.extend(verdict.map(|v| Evidence {
            source: format!("tcp://{}", v.target),
            line: 0,
            probe: "tls_probe".into(),
            detail: format!("{} {}", v.protocol, v.note).trim().to_string(),
        }));
        found.push(Service {
            ports: vec![listener.port],
            name: format!("{key}{owner}"),
            state,
            why,
            evidence,
        });
    }
    found
}

fn schannel(
    registry: &Registry<'_>,
    build: Option<u32>,
    observations: &mut Vec<Observation>,
) -> Result<Schannel, RegistryError> {
    let mut result = Schannel {
        deprecated_on: Vec::new(),
        undecided: Vec::new(),
    };
    for (protocol, deprecated) in PROTOCOLS {
        let key = format!("{SCHANNEL}\\{protocol}\\Server");
        let enabled = registry.dword(&key, "Enabled")?;
        let by_default = registry.dword(&key, "DisabledByDefault")?;
        let mut evidence: Vec<Evidence> = enabled
            .iter()
            .chain(by_default.iter())
            .map(|f| f.evidence.clone())
            .collect();
        let state = match (&enabled, &by_default) {
            (Some(e), _) if e.value == 0 => Some(false),
            (_, Some(d)) if d.value == 1 => Some(false),
            (Some(_), _) => Some(true),
            (None, _) => default_on(protocol, build),
        };
        if enabled.is_none() {
            let meaning = match state {
                Some(true) => format!("on by default in build {}", build.unwrap_or(0)),
                Some(false) => "off by default".to_string(),
                None => "default for this build not known".to_string(),
            };
            evidence.push(registry.absent(&key, "Enabled", &meaning));
        }
        observations.push(Observation {
            category: "schannel".into(),
            name: protocol.into(),
            value: serde_json::json!({ "server_enabled": state, "deprecated": deprecated }),
            evidence: evidence.clone(),
        });
        match state {
            Some(true) if deprecated => result.deprecated_on.push((protocol.into(), evidence)),
            None if deprecated => result.undecided.push((
                protocol.into(),
                evidence.into_iter().next().unwrap_or_default(),
            )),
            _ => {}
        }
    }
    Ok(result)
}

fn iis_services(
    start: &Evidence,
    iis: Option<Result<String, String>>,
    schannel: &Schannel,
    observations: &mut Vec<Observation>,
) -> Vec<Service> {
    let undecided = |why: String| Service {
        ports: Vec::new(),
        name: "IIS".into(),
        state: State::Unknown,
        why,
        evidence: vec![start.clone()],
    };
    let bindings = match iis.map(|r| r.and_then(|text| parse_iis_bindings(&text))) {
        None => return vec![undecided(format!("{IIS_CONFIG} not found"))],
        Some(Err(e)) => return vec![undecided(format!("{IIS_CONFIG}: {e}"))],
        Some(Ok(bindings)) => bindings,
    };
    bindings
        .into_iter()
        .map(|b| {
            let name = format!("IIS site {:?} {} {}", b.site, b.protocol, b.information);
            let evidence = vec![
                start.clone(),
                Evidence {
                    source: IIS_CONFIG.into(),
                    line: b.line,
                    probe: PROBE.into(),
                    detail: format!("binding {} {}", b.protocol, b.information),
                },
            ];
            observations.push(Observation {
                category: "iis_binding".into(),
                name: format!("{} {} {}", b.site, b.protocol, b.information),
                value: serde_json::json!({
                    "site": b.site, "protocol": b.protocol, "binding": b.information,
                }),
                evidence: evidence[1..].to_vec(),
            });
            let port = b.information.split(':').nth(1).and_then(|p| p.parse().ok());
            let mut service = match b.protocol.as_str() {
                "http" => Service {
                    ports: Vec::new(),
                    name,
                    state: State::Plaintext,
                    why: "HTTP".into(),
                    evidence,
                },
                "https" => tls(&name, schannel, evidence),
                other => Service {
                    ports: Vec::new(),
                    name,
                    state: State::Unknown,
                    why: format!("protocol {other} not judged"),
                    evidence,
                },
            };
            service.ports = port.into_iter().collect();
            service
        })
        .collect()
}

/// Whether an unset server protocol is on by default in `build` (Microsoft's "TLS/SSL
/// Settings" and "Protocols in TLS/SSL (Schannel SSP)" pages); `None` when not known.
fn default_on(protocol: &str, build: Option<u32>) -> Option<bool> {
    let build = build?;
    match protocol {
        "SSL 2.0" | "SSL 3.0" if build >= 14393 => Some(false),
        "TLS 1.0" | "TLS 1.1" if build < 26100 => Some(true),
        "TLS 1.2" => Some(true),
        "TLS 1.3" if build >= 20348 => Some(true),
        "TLS 1.3" => Some(false),
        _ => None,
    }
}

/// A TLS service's state from SChannel's protocols.
fn tls(name: &str, schannel: &Schannel, mut evidence: Vec<Evidence>) -> Service {
    if !schannel.deprecated_on.is_empty() {
        let names: Vec<&str> = schannel
            .deprecated_on
            .iter()
            .map(|(p, _)| p.as_str())
            .collect();
        evidence.extend(
            schannel
                .deprecated_on
                .iter()
                .flat_map(|(_, e)| e.iter().cloned()),
        );
        return Service {
            ports: Vec::new(),
            name: name.into(),
            state: State::Plaintext,
            why: format!("TLS, but SChannel accepts deprecated {}", names.join(", ")),
            evidence,
        };
    }
    if !schannel.undecided.is_empty() {
        let names: Vec<&str> = schannel.undecided.iter().map(|(p, _)| p.as_str()).collect();
        evidence.extend(schannel.undecided.iter().map(|(_, e)| e.clone()));
        return Service {
            ports: Vec::new(),
            name: name.into(),
            state: State::Unknown,
            why: format!(
                "TLS; whether SChannel accepts {} is not known",
                names.join(", ")
            ),
            evidence,
        };
    }
    Service {
        ports: Vec::new(),
        name: name.into(),
        state: State::Encrypted,
        why: "TLS 1.2 or later".into(),
        evidence,
    }
}

fn rdp_service(rdp: &RdpSettings, schannel: &Schannel) -> Service {
    let name = format!("RDP port {}", rdp.port);
    let rdp_layer = rdp.security_layer == 0 || (rdp.security_layer == 1 && !rdp.nla);
    if rdp_layer && rdp.min_encryption_level <= 1 {
        return Service {
            ports: Vec::new(),
            name,
            state: State::Plaintext,
            why: "RDP Security Layer with MinEncryptionLevel 1 (low): server-to-client data \
                  unencrypted"
                .into(),
            evidence: rdp.evidence.clone(),
        };
    }
    if rdp.security_layer == 0 {
        return Service {
            ports: Vec::new(),
            name,
            state: State::Encrypted,
            why: "RDP Security Layer (RC4, no server authentication)".into(),
            evidence: rdp.evidence.clone(),
        };
    }
    tls(&name, schannel, rdp.evidence.clone())
}

fn smb_service(
    registry: &Registry<'_>,
    observations: &mut Vec<Observation>,
) -> Result<Option<Service>, RegistryError> {
    let Some(start) = service_start(registry, "LanmanServer")?.filter(|s| s.value != 4) else {
        return Ok(None);
    };
    let smb1 = registry.dword(LANMAN, "SMB1")?;
    // Unset, SMB1 is served when its driver (the `srv` service) is installed and not disabled.
    let srv = service_start(registry, "srv")?.filter(|s| s.value != 4);
    let smb1_on = smb1.as_ref().map_or(srv.is_some(), |f| f.value != 0);
    let encrypt = registry.dword(LANMAN, "EncryptData")?;
    let reject = registry.dword(LANMAN, "RejectUnencryptedAccess")?;
    let signing = registry.dword(LANMAN, "RequireSecuritySignature")?;
    let mut evidence = vec![start.evidence];
    evidence.push(smb1.as_ref().map_or_else(
        || match &srv {
            Some(s) => s.evidence.clone(),
            None => registry.absent(LANMAN, "SMB1", "SMB1 driver (srv) not installed"),
        },
        |f| f.evidence.clone(),
    ));
    let encrypted = encrypt.as_ref().is_some_and(|f| f.value == 1)
        && reject.as_ref().is_none_or(|f| f.value != 0);
    evidence.push(encrypt.as_ref().map_or_else(
        || registry.absent(LANMAN, "EncryptData", "default 0: no SMB encryption"),
        |f| f.evidence.clone(),
    ));
    evidence.extend(reject.iter().map(|f| f.evidence.clone()));
    evidence.extend(signing.iter().map(|f| f.evidence.clone()));
    let signing_required = signing.as_ref().is_some_and(|f| f.value == 1);
    observations.push(Observation {
        category: "smb".into(),
        name: "server".into(),
        value: serde_json::json!({
            "smb1": smb1_on,
            "encrypt_data": encrypted,
            "signing_required": signing_required,
        }),
        evidence: evidence.clone(),
    });
    let (state, why) = if smb1_on {
        (
            State::Plaintext,
            "SMB1 enabled: it has no encryption".to_string(),
        )
    } else if encrypted {
        (
            State::Encrypted,
            "SMB 3 encryption required (EncryptData)".to_string(),
        )
    } else {
        (
            State::Plaintext,
            format!(
                "no SMB encryption (EncryptData); signing {}",
                if signing_required {
                    "required"
                } else {
                    "not required"
                }
            ),
        )
    };
    Ok(Some(Service {
        // SMB direct and SMB over NetBIOS (the session service LanmanServer also answers).
        ports: vec![445, 139],
        name: "SMB port 445".into(),
        state,
        why,
        evidence,
    }))
}

fn winrm_services(
    registry: &Registry<'_>,
    schannel: &Schannel,
) -> Result<Vec<Service>, RegistryError> {
    let Some(start) = service_start(registry, "WinRM")?.filter(|s| s.value == 2) else {
        return Ok(Vec::new());
    };
    let unencrypted = match registry.dword(WINRM_POLICY, "AllowUnencryptedTraffic")? {
        Some(f) => Some(f),
        None => registry.dword(WSMAN_SERVICE, "AllowUnencrypted")?,
    };
    let mut services = Vec::new();
    for listener in registry.subkeys(WSMAN_LISTENER)? {
        let mut evidence = vec![
            start.evidence.clone(),
            Evidence {
                source: format!("{WSMAN_LISTENER}\\{listener}"),
                line: 0,
                probe: PROBE.into(),
                detail: "WinRM listener".into(),
            },
        ];
        let name = format!("WinRM {listener}");
        // WinRM's default ports; a listener's own `Port` value is not read.
        if listener.to_ascii_uppercase().ends_with("+HTTPS") {
            let mut service = tls(&name, schannel, evidence);
            service.ports = vec![5986];
            services.push(service);
            continue;
        }
        match &unencrypted {
            Some(f) if f.value == 1 => {
                evidence.push(f.evidence.clone());
                services.push(Service {
                    ports: vec![5985],
                    name,
                    state: State::Plaintext,
                    why: "HTTP with unencrypted traffic allowed".into(),
                    evidence,
                });
            }
            other => {
                evidence.extend(other.iter().map(|f| f.evidence.clone()));
                services.push(Service {
                    ports: vec![5985],
                    name,
                    state: State::Encrypted,
                    why: "HTTP with Kerberos/NTLM message encryption".into(),
                    evidence,
                });
            }
        }
    }
    Ok(services)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // In tests an unwrap that fails is the failing assertion.
mod tests {
    use super::*;
    use crate::inventory::windows::logon::{rdp_settings, tests::source};

    fn transit(body: &str) -> Control {
        transit_with(body, None)
    }

    fn transit_with(body: &str, iis: Option<Result<String, String>>) -> Control {
        let s = source(body);
        let registry = Registry::new(&s, "t");
        let rdp = rdp_settings(&registry).unwrap();
        control(
            &registry,
            Ok(&rdp),
            Some(20348),
            iis,
            &ListenerTable::Unknown("no table in this test".into()),
            &mut Vec::new(),
        )
    }

    const TLS_OLD_OFF: &str = "[HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Control\\SecurityProviders\\SCHANNEL\\Protocols\\TLS 1.0\\Server]\n\"Enabled\"=dword:00000000\n[HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Control\\SecurityProviders\\SCHANNEL\\Protocols\\TLS 1.1\\Server]\n\"DisabledByDefault\"=dword:00000001\n";
    const WINRM: &str = "[HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Services\\WinRM]\n\"Start\"=dword:00000002\n";

    #[test]
    fn rdp_security_layer_with_low_encryption_is_plaintext() {
        let c = transit(
            "[HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Control\\Terminal Server]\n\"fDenyTSConnections\"=dword:00000000\n\
             [HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Control\\Terminal Server\\WinStations\\RDP-Tcp]\n\"SecurityLayer\"=dword:00000000\n\"MinEncryptionLevel\"=dword:00000001\n",
        );
        assert_eq!(c.state, "plaintext", "{c:?}");
        assert!(c.reason.contains("MinEncryptionLevel 1"), "{}", c.reason);
    }

    #[test]
    fn winrm_http_with_unencrypted_traffic_allowed_is_plaintext() {
        let c = transit(&format!(
            "{TLS_OLD_OFF}{WINRM}[HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\WSMAN\\Listener\\*+HTTP]\n\
             [HKEY_LOCAL_MACHINE\\SOFTWARE\\Policies\\Microsoft\\Windows\\WinRM\\Service]\n\"AllowUnencryptedTraffic\"=dword:00000001\n"
        ));
        assert_eq!(c.state, "plaintext", "{c:?}");
        assert!(
            c.evidence
                .iter()
                .any(|e| e.source.ends_with("AllowUnencryptedTraffic"))
        );
    }

    #[test]
    fn winrm_https_with_modern_tls_only_is_encrypted_but_the_control_unknown() {
        let c = transit(&format!(
            "{TLS_OLD_OFF}{WINRM}[HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\WSMAN\\Listener\\*+HTTPS]\n"
        ));
        assert_eq!(c.state, "unknown", "{c:?}");
        assert!(
            c.reason.contains("WinRM *+HTTPS (TLS 1.2 or later)"),
            "{}",
            c.reason
        );
    }

    #[test]
    fn unknown_build_leaves_tls_services_undecided() {
        let s = source(&format!(
            "{WINRM}[HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\WSMAN\\Listener\\*+HTTPS]\n"
        ));
        let registry = Registry::new(&s, "t");
        let rdp = rdp_settings(&registry).unwrap();
        let table = ListenerTable::Unknown("no table in this test".into());
        let c = control(&registry, Ok(&rdp), None, None, &table, &mut Vec::new());
        assert_eq!(c.state, "unknown");
        assert!(c.reason.contains("is not known"), "{}", c.reason);
    }

    #[test]
    fn iis_http_binding_is_plaintext_and_https_follows_schannel() {
        let config = "<configuration>\n<system.applicationHost>\n<sites>\n\
            <site name=\"Default Web Site\" id=\"1\">\n<bindings>\n\
            <binding protocol=\"http\" bindingInformation=\"*:80:\" />\n\
            <binding protocol=\"https\" bindingInformation=\"*:443:\" />\n\
            </bindings>\n</site>\n</sites>\n</system.applicationHost>\n</configuration>\n";
        let w3svc = "[HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Services\\W3SVC]\n\"Start\"=dword:00000002\n";
        let c = transit_with(&format!("{TLS_OLD_OFF}{w3svc}"), Some(Ok(config.into())));
        assert_eq!(c.state, "plaintext", "{c:?}");
        assert!(
            c.reason
                .contains("IIS site \"Default Web Site\" http *:80: (HTTP)"),
            "{}",
            c.reason
        );
        assert!(
            c.evidence
                .iter()
                .any(|e| e.source == IIS_CONFIG && e.line == 6),
            "{c:?}"
        );
        let https_only = config.replace(
            "<binding protocol=\"http\" bindingInformation=\"*:80:\" />\n",
            "",
        );
        let c = transit_with(&format!("{TLS_OLD_OFF}{w3svc}"), Some(Ok(https_only)));
        assert_eq!(c.state, "unknown", "{c:?}");
        assert!(
            c.reason.contains("https *:443: (TLS 1.2 or later)"),
            "{}",
            c.reason
        );
        let c = transit_with(w3svc, Some(Ok("<configuration".into())));
        assert!(c.reason.contains(IIS_CONFIG), "{}", c.reason);
    }

    const RDP_TLS: &str = "[HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Control\\Terminal Server]\n\"fDenyTSConnections\"=dword:00000000\n\
        [HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Control\\Terminal Server\\WinStations\\RDP-Tcp]\n\"SecurityLayer\"=dword:00000002\n\"UserAuthentication\"=dword:00000001\n";

    fn tcp(port: u16, pid: u32, name: &str) -> String {
        format!(
            r#"{{"LocalAddress":"0.0.0.0","LocalPort":{port},"OwningProcess":{pid},"ProcessName":"{name}"}}"#
        )
    }

    fn with_table(
        body: &str,
        tcp: &[String],
        verdicts: &BTreeMap<String, ServiceVerdict>,
    ) -> Control {
        let json = format!(
            r#"{{"Tcp":[{}],"Udp":[{{"LocalAddress":"0.0.0.0","LocalPort":3389,"OwningProcess":1180}}]}}"#,
            tcp.join(",")
        );
        let listeners = crate::inventory::windows::listeners::parse_recorded(&json).unwrap();
        let s = source(body);
        let registry = Registry::new(&s, "t");
        let rdp = rdp_settings(&registry).unwrap();
        let table = ListenerTable::Known {
            listeners: &listeners,
            verdicts,
        };
        control(
            &registry,
            Ok(&rdp),
            Some(20348),
            None,
            &table,
            &mut Vec::new(),
        )
    }

    fn probed(
        key: &str,
        encryption: Encryption,
        protocol: &str,
    ) -> BTreeMap<String, ServiceVerdict> {
        let mut verdicts = BTreeMap::new();
        verdicts.insert(
            key.to_string(),
            ServiceVerdict::new("127.0.0.1:1".parse().unwrap(), encryption, protocol),
        );
        verdicts
    }

    #[test]
    fn configured_services_that_account_for_every_socket_are_encrypted() {
        let loopback =
            r#"{"LocalAddress":"127.0.0.1","LocalPort":5939,"OwningProcess":9,"ProcessName":"x"}"#;
        let c = with_table(
            &format!("{TLS_OLD_OFF}{RDP_TLS}"),
            &[tcp(3389, 1180, "svchost"), loopback.to_string()],
            &BTreeMap::new(),
        );
        assert_eq!(c.state, "encrypted", "{c:?}");
        assert!(c.reason.contains("RDP port 3389"), "{}", c.reason);
        assert!(
            c.reason.contains("1 exposed UDP listener(s) not assessed"),
            "{}",
            c.reason
        );
    }

    #[test]
    fn a_socket_no_service_accounts_for_is_unknown_until_probed() {
        let body = format!("{TLS_OLD_OFF}{RDP_TLS}");
        let sockets = [tcp(3389, 1180, "svchost"), tcp(135, 912, "svchost")];
        let c = with_table(&body, &sockets, &BTreeMap::new());
        assert_eq!(c.state, "unknown", "{c:?}");
        assert!(
            c.reason.contains("tcp 0.0.0.0:135 svchost (not probed)"),
            "{}",
            c.reason
        );
        assert!(
            !c.reason.contains("3389"),
            "RDP is accounted for: {}",
            c.reason
        );
        assert_eq!(c.evidence[0].source, super::super::listeners::RECORDED_PATH);
        let verdicts = probed("tcp 0.0.0.0:135", Encryption::Encrypted, "tls");
        assert_eq!(with_table(&body, &sockets, &verdicts).state, "encrypted");
    }

    #[test]
    fn the_worse_of_probe_and_configuration_wins() {
        let sockets = [tcp(3389, 1180, "svchost")];
        // The probe found standard RDP security where the registry says TLS.
        let verdicts = probed("tcp 0.0.0.0:3389", Encryption::Plaintext, "rdp");
        let c = with_table(&format!("{TLS_OLD_OFF}{RDP_TLS}"), &sockets, &verdicts);
        assert_eq!(c.state, "plaintext", "{c:?}");
        assert!(
            c.reason.contains("tcp 0.0.0.0:3389 svchost (probe: rdp)"),
            "{}",
            c.reason
        );
        // SChannel accepting TLS 1.0 (the build's default) is plaintext even though the probe
        // negotiated TLS.
        let verdicts = probed("tcp 0.0.0.0:3389", Encryption::Encrypted, "rdp");
        let c = with_table(RDP_TLS, &sockets, &verdicts);
        assert_eq!(c.state, "plaintext", "{c:?}");
        assert!(c.reason.contains("TLS 1.0"), "{}", c.reason);
    }
}
