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
//! - **IIS** (`W3SVC` automatic): its bindings are in `applicationHost.config`, not read here,
//!   so it is undecided.
//!
//! The registry does not list every listening socket (third-party services, RPC), and the
//! listener table (IP Helper API) is not read yet, so a host whose configured services are all
//! encrypted is `unknown`, with those services named in the reason.

use super::logon::{RdpSettings, WSMAN_LISTENER, service_start};
use super::registry::{Registry, RegistryError};
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

/// Derives the control from the registry and the RDP settings already read (`Err`: they
/// could not be read); `build` is `CurrentBuild`, for SChannel's defaults.
pub fn control(
    registry: &Registry<'_>,
    rdp: Result<&RdpSettings, String>,
    build: Option<u32>,
    observations: &mut Vec<Observation>,
) -> Control {
    let registry = registry.with_probe(PROBE);
    let outcome =
        rdp.and_then(|rdp| decide(&registry, rdp, build, observations).map_err(|e| e.to_string()));
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
    observations: &mut Vec<Observation>,
) -> Result<Control, RegistryError> {
    let schannel = schannel(registry, build, observations)?;
    let mut services = Vec::new();
    if rdp.enabled {
        services.push(rdp_service(rdp, &schannel));
    }
    services.extend(smb_service(registry, observations)?);
    services.extend(winrm_services(registry, &schannel)?);
    if let Some(start) = service_start(registry, "sshd")?.filter(|s| s.value != 4) {
        services.push(Service {
            name: "OpenSSH Server".into(),
            state: State::Encrypted,
            why: "SSH".into(),
            evidence: vec![start.evidence],
        });
    }
    if let Some(start) = service_start(registry, "W3SVC")?.filter(|s| s.value == 2) {
        services.push(Service {
            name: "IIS".into(),
            state: State::Unknown,
            why: "site bindings (http or https) are in applicationHost.config, not read".into(),
            evidence: vec![start.evidence],
        });
    }
    let worst = services.iter().map(|s| s.state).max();
    let describe = |state: State| {
        services
            .iter()
            .filter(|s| s.state == state)
            .map(|s| format!("{} ({})", s.name, s.why))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let (state, reason) = match worst {
        Some(State::Plaintext) => (
            "plaintext",
            format!(
                "exposed service(s) not encrypted: {}",
                describe(State::Plaintext)
            ),
        ),
        Some(State::Unknown) => (
            "unknown",
            format!(
                "exposed service(s) not decided: {}",
                describe(State::Unknown)
            ),
        ),
        Some(State::Encrypted) => (
            "unknown",
            format!(
                "the configured Windows services are encrypted ({}), but other listening \
                 sockets are not known: the listener table is not read",
                describe(State::Encrypted)
            ),
        ),
        None => (
            "unknown",
            "no Windows service exposed by configuration; other listening sockets are not \
             known: the listener table is not read"
                .to_string(),
        ),
    };
    let chosen = worst.unwrap_or(State::Unknown);
    Ok(Control {
        name: "transit_encryption".into(),
        state: state.into(),
        reason,
        evidence: services
            .into_iter()
            .filter(|s| s.state == chosen)
            .flat_map(|s| s.evidence)
            .collect(),
    })
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
        if listener.to_ascii_uppercase().ends_with("+HTTPS") {
            services.push(tls(&name, schannel, evidence));
            continue;
        }
        match &unencrypted {
            Some(f) if f.value == 1 => {
                evidence.push(f.evidence.clone());
                services.push(Service {
                    name,
                    state: State::Plaintext,
                    why: "HTTP with unencrypted traffic allowed".into(),
                    evidence,
                });
            }
            other => {
                evidence.extend(other.iter().map(|f| f.evidence.clone()));
                services.push(Service {
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
        let s = source(body);
        let registry = Registry::new(&s, "t");
        let rdp = rdp_settings(&registry).unwrap();
        control(&registry, Ok(&rdp), Some(20348), &mut Vec::new())
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
        let c = control(&registry, Ok(&rdp), None, &mut Vec::new());
        assert_eq!(c.state, "unknown");
        assert!(c.reason.contains("is not known"), "{}", c.reason);
    }
}
