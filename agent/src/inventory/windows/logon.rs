//! The `mfa` control on Windows, with the Linux semantics of [`crate::inventory::mfa`]:
//! `enforced` only when every remote login path needs two factors; a second factor that can
//! be skipped (fail-open) is `available`; the worst path decides.
//!
//! Login paths and what decides their factors:
//!
//! - **RDP**, when `fDenyTSConnections` is 0 (the policy value under
//!   `HKLM\SOFTWARE\Policies\Microsoft\Windows NT\Terminal Services` wins over the local one
//!   under `HKLM\SYSTEM\CurrentControlSet\Control\Terminal Server`; unset is 1, the Windows
//!   Server default). A password always; a second factor from:
//!   - smart card required (`scforceoption` = 1 under
//!     `HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Policies\System`): card plus PIN;
//!   - Duo Windows Logon: its credential provider registered (CLSID
//!     `{44E2ED41-48C7-4712-A3C3-250C5E6D5D84}`, the one Duo's documentation names) and its
//!     settings under `HKLM\SOFTWARE\Duo Security\DuoCredProv`. `FailOpen` = 1 lets the
//!     password alone in when Duo's service is unreachable, so it is `available`; `RdpOnly`
//!     leaves the console unprotected (the console is not weighed, see below); offline access
//!     (`OfflineAvailable`) still needs an offline second factor and is recorded only.
//!   - NLA (`UserAuthentication`) decides when the password is checked (before or after a
//!     session is created), not how many factors: it is evidence, not a factor.
//!   - Windows Hello for Business (`HKLM\SOFTWARE\Policies\Microsoft\PassportForWork\Enabled`)
//!     signs in at the console; an RDP client still sends a password, so it is recorded and
//!     not counted for RDP.
//!   - A registered credential provider this module does not recognise (see
//!     [`KNOWN_PROVIDERS`]) may add a factor nobody can see here: a password-only RDP path is
//!     then `unknown`, not `absent`.
//! - **OpenSSH Server** (`sshd` service not disabled): `C:\ProgramData\ssh\sshd_config` through
//!   the Linux sshd parser and path logic. Windows OpenSSH has no PAM, so `password` is one
//!   factor and `keyboard-interactive` has no back-end. Credential providers do not apply.
//! - **WinRM** (PowerShell remoting; `WinRM` service automatic with a listener under
//!   `HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\WSMAN\Listener`): Kerberos, NTLM or Basic
//!   with the account password; credential providers (Duo, smart card policy) do not apply to
//!   network logons, so it is one factor.
//! - The **console** is listed, not weighed, as on Linux: reaching it takes physical or
//!   hypervisor access with its own authentication.
//!
//! No usable remote path gives `unknown`, as on Linux. A registry read that failed makes the
//! control `unknown` with the error as its reason.

use super::registry::{Found, Registry, RegistryError};
use crate::inventory::mfa::{Verdict, ssh_verdict};
use crate::inventory::pam::PamReport;
use crate::inventory::sshd::SshdConfig;
use crate::inventory::{Control, Evidence, Observation};

const PROBE: &str = "windows_logon";

/// Where the local Remote Desktop settings live.
pub const TERMINAL_SERVER: &str = "HKLM\\SYSTEM\\CurrentControlSet\\Control\\Terminal Server";
/// The RDP listener's own settings.
pub const RDP_TCP: &str =
    "HKLM\\SYSTEM\\CurrentControlSet\\Control\\Terminal Server\\WinStations\\RDP-Tcp";
/// Group Policy for Remote Desktop; its values win over the local ones.
pub const TS_POLICY: &str = "HKLM\\SOFTWARE\\Policies\\Microsoft\\Windows NT\\Terminal Services";
const SYSTEM_POLICY: &str = "HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Policies\\System";
const DUO: &str = "HKLM\\SOFTWARE\\Duo Security\\DuoCredProv";
const DUO_CLSID: &str = "{44E2ED41-48C7-4712-A3C3-250C5E6D5D84}";
const PROVIDERS: &str =
    "HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Authentication\\Credential Providers";
const HELLO_POLICY: &str = "HKLM\\SOFTWARE\\Policies\\Microsoft\\PassportForWork";
/// WinRM listeners (`*+HTTP`, `*+HTTPS`).
pub const WSMAN_LISTENER: &str =
    "HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\WSMAN\\Listener";
/// Where service settings live.
pub const SERVICES: &str = "HKLM\\SYSTEM\\CurrentControlSet\\Services";

/// Credential providers recognised by CLSID: Microsoft's own (as registered by Windows Server
/// 2016-2022 and Windows 10/11; what each does is Microsoft's naming in the registry) and Duo.
/// Microsoft's add no second factor to an RDP password login; smart card and Windows Hello
/// count through their policies above, not through being registered.
pub const KNOWN_PROVIDERS: &[(&str, &str)] = &[
    (
        "{1b283861-754f-4022-ad47-a5eaaa618894}",
        "Smartcard Reader Selection Provider",
    ),
    (
        "{1ee7337f-85ac-45e2-a23c-37c753209769}",
        "Smartcard WinRT Provider",
    ),
    (
        "{2135f72a-90b5-4ed3-a7f1-8bb705ac276a}",
        "PicturePasswordLogonProvider",
    ),
    ("{25CBB996-92ED-457e-B28C-4774084BD562}", "GenericProvider"),
    (
        "{27FBDB57-B613-4AF2-9D7E-4FA7A66C21AD}",
        "TrustedSignal Credential Provider",
    ),
    ("{3dd6bec0-8193-4ffe-ae25-e08e39ea4063}", "NPProvider"),
    (
        "{48B4E58D-2791-456C-9091-D524C6C706F2}",
        "Secondary Authentication Factor Credential Provider",
    ),
    (
        "{600e7adb-da3e-41a4-9225-3c0399e88c0c}",
        "CngCredUICredentialProvider",
    ),
    ("{60b78e88-ead8-445c-9cfd-0b87f74ea6cd}", "PasswordProvider"),
    (
        "{8AF662BF-65A0-4D0A-A540-A338A999D36F}",
        "FaceCredentialProvider",
    ),
    (
        "{8FD7E19C-3BF7-489B-A72C-846AB3678C96}",
        "Smartcard Credential Provider",
    ),
    (
        "{94596c7e-3744-41ce-893e-bbf09122f76a}",
        "Smartcard Pin Provider",
    ),
    (
        "{BEC09223-B018-416D-A0AC-523971B639F5}",
        "WinBio Credential Provider",
    ),
    (
        "{C5D7540A-CD51-453B-B22B-05305BA03F07}",
        "Cloud Experience Credential Provider",
    ),
    (
        "{C885AA15-1764-4293-B82A-0586ADD46B35}",
        "IrisCredentialProvider",
    ),
    ("{cb82ea12-9f71-446d-89e1-8d0924e1256e}", "PINLogonProvider"),
    (
        "{D6886603-9D2F-4EB2-B667-1971041FA96B}",
        "NGC Credential Provider",
    ),
    ("{e74e57b0-6c6d-44d5-9cda-fb2df5ed7435}", "CertCredProvider"),
    (
        "{F8A1793B-7873-4046-B2A7-1F318747F427}",
        "FIDO Credential Provider",
    ),
    (
        "{f64945df-4fa9-4068-a2fb-61af319edd33}",
        "RdpCredentialProvider",
    ),
    (
        "{503739d0-4c5e-4cfd-b3ba-d881334f0df2}",
        "Remote NGC Credential Provider",
    ),
    (DUO_CLSID, "Duo Security credential provider"),
];

/// The Remote Desktop settings every verdict about RDP rests on.
#[derive(Clone, Debug)]
pub struct RdpSettings {
    /// `fDenyTSConnections` is 0.
    pub enabled: bool,
    /// NLA (`UserAuthentication` = 1).
    pub nla: bool,
    /// `SecurityLayer`: 0 RDP Security Layer, 1 negotiate, 2 TLS.
    pub security_layer: u32,
    /// `MinEncryptionLevel`: 1 low, 2 client compatible, 3 high, 4 FIPS.
    pub min_encryption_level: u32,
    /// `PortNumber`.
    pub port: u32,
    /// One per setting: the value read, or the key and value looked for with the default.
    pub evidence: Vec<Evidence>,
}

/// Reads a DWORD from the policy key, else the local key, else `default` with evidence saying
/// so.
fn policy_dword(
    registry: &Registry<'_>,
    policy: &str,
    local: &str,
    name: &str,
    default: u32,
    meaning: &str,
) -> Result<(u32, Evidence), RegistryError> {
    if let Some(Found { value, evidence }) = registry.dword(policy, name)? {
        return Ok((value, evidence));
    }
    if let Some(Found { value, evidence }) = registry.dword(local, name)? {
        return Ok((value, evidence));
    }
    Ok((
        default,
        registry.absent(local, name, &format!("default {default}: {meaning}")),
    ))
}

/// Reads the Remote Desktop settings.
pub fn rdp_settings(registry: &Registry<'_>) -> Result<RdpSettings, RegistryError> {
    let deny = policy_dword(
        registry,
        TS_POLICY,
        TERMINAL_SERVER,
        "fDenyTSConnections",
        1,
        "Remote Desktop connections denied",
    )?;
    let nla = policy_dword(
        registry,
        TS_POLICY,
        RDP_TCP,
        "UserAuthentication",
        1,
        "Network Level Authentication required",
    )?;
    let layer = policy_dword(
        registry,
        TS_POLICY,
        RDP_TCP,
        "SecurityLayer",
        1,
        "negotiate between TLS and the RDP Security Layer",
    )?;
    let level = policy_dword(
        registry,
        TS_POLICY,
        RDP_TCP,
        "MinEncryptionLevel",
        2,
        "client compatible encryption",
    )?;
    let port = registry.dword(RDP_TCP, "PortNumber")?.map_or_else(
        || {
            (
                3389,
                registry.absent(RDP_TCP, "PortNumber", "default port 3389"),
            )
        },
        |f| (f.value, f.evidence),
    );
    Ok(RdpSettings {
        enabled: deny.0 == 0,
        nla: nla.0 == 1,
        security_layer: layer.0,
        min_encryption_level: level.0,
        port: port.0,
        evidence: vec![deny.1, nla.1, layer.1, level.1, port.1],
    })
}

/// A Windows service's start type (`Start`: 0 boot, 1 system, 2 automatic, 3 manual,
/// 4 disabled), `None` when the service is not installed.
pub fn service_start(
    registry: &Registry<'_>,
    name: &str,
) -> Result<Option<Found<u32>>, RegistryError> {
    let key = format!("{SERVICES}\\{name}");
    if !registry.exists(&key)? {
        return Ok(None);
    }
    Ok(Some(registry.dword(&key, "Start")?.unwrap_or_else(|| {
        Found {
            value: 3,
            evidence: registry.absent(&key, "Start", "treated as manual (3)"),
        }
    })))
}

/// One login path's verdict; `None` when the path is not open at all.
struct Path {
    verdict: Option<Verdict>,
    summary: String,
    evidence: Vec<Evidence>,
}

/// What the registry says about second factors, shared by the paths and the observations.
struct Providers {
    smart_card_required: Option<Found<u32>>,
    duo: Option<DuoSettings>,
    hello: Option<Found<u32>>,
    unrecognised: Vec<(String, String)>,
    registered: Vec<(String, String)>,
}

struct DuoSettings {
    fail_open: bool,
    rdp_only: bool,
    offline: bool,
    evidence: Vec<Evidence>,
}

fn read_providers(registry: &Registry<'_>) -> Result<Providers, RegistryError> {
    let mut registered = Vec::new();
    let mut unrecognised = Vec::new();
    for clsid in registry.subkeys(PROVIDERS)? {
        let key = format!("{PROVIDERS}\\{clsid}");
        let name = registry
            .string(&key, "")?
            .map(|f| f.value)
            .unwrap_or_default();
        if KNOWN_PROVIDERS
            .iter()
            .any(|(known, _)| known.eq_ignore_ascii_case(&clsid))
        {
            registered.push((clsid, name));
        } else {
            unrecognised.push((clsid, name));
        }
    }
    let duo_registered = registered
        .iter()
        .any(|(c, _)| c.eq_ignore_ascii_case(DUO_CLSID));
    let duo = if duo_registered && registry.exists(DUO)? {
        let flag = |name: &str, meaning: &str| -> Result<(bool, Evidence), RegistryError> {
            Ok(registry.dword(DUO, name)?.map_or_else(
                || (false, registry.absent(DUO, name, meaning)),
                |f| (f.value != 0, f.evidence),
            ))
        };
        let fail_open = flag("FailOpen", "default 0: fail closed")?;
        let rdp_only = flag("RdpOnly", "default 0: console and RDP protected")?;
        let offline = flag("OfflineAvailable", "default 0: no offline access")?;
        Some(DuoSettings {
            fail_open: fail_open.0,
            rdp_only: rdp_only.0,
            offline: offline.0,
            evidence: vec![fail_open.1, rdp_only.1, offline.1],
        })
    } else {
        None
    };
    Ok(Providers {
        smart_card_required: registry
            .dword(SYSTEM_POLICY, "scforceoption")?
            .filter(|f| f.value == 1),
        duo,
        hello: registry
            .dword(HELLO_POLICY, "Enabled")?
            .filter(|f| f.value == 1),
        unrecognised,
        registered,
    })
}

/// Derives the `mfa` control; `sshd` is the parsed `sshd_config` (`Err` names why it could not
/// be read) when the OpenSSH Server service is installed and not disabled.
pub fn control(
    registry: &Registry<'_>,
    sshd: Option<Result<&SshdConfig, String>>,
    observations: &mut Vec<Observation>,
) -> Control {
    match decide(registry, sshd, observations) {
        Ok(control) => control,
        Err(e) => unknown(format!("the registry could not be read: {e}")),
    }
}

/// The control `unknown` for `reason`.
pub fn unknown(reason: String) -> Control {
    Control {
        name: "mfa".into(),
        state: Verdict::Unknown.as_str().into(),
        evidence: vec![Evidence {
            source: "registry".into(),
            line: 0,
            probe: PROBE.into(),
            detail: reason.clone(),
        }],
        reason,
    }
}

fn decide(
    registry: &Registry<'_>,
    sshd: Option<Result<&SshdConfig, String>>,
    observations: &mut Vec<Observation>,
) -> Result<Control, RegistryError> {
    let registry = registry.with_probe(PROBE);
    let rdp = rdp_settings(&registry)?;
    let providers = read_providers(&registry)?;
    observations.push(rdp_observation(&rdp));
    observations.extend(provider_observations(&providers));
    let mut paths = vec![rdp_path(&rdp, &providers)];
    if let Some(path) = ssh_path(sshd) {
        paths.push(path);
    }
    paths.push(winrm_path(&registry)?);
    let usable: Vec<&Path> = paths.iter().filter(|p| p.verdict.is_some()).collect();
    let worst = usable
        .iter()
        .copied()
        .reduce(|worst, p| if p.verdict > worst.verdict { p } else { worst });
    let (verdict, reason) = match worst {
        None => (
            Verdict::Unknown,
            "no remote login path (RDP, OpenSSH, WinRM) is enabled".to_string(),
        ),
        Some(p) if p.verdict == Some(Verdict::Enforced) => (
            Verdict::Enforced,
            format!(
                "every remote login path ({} in all) requires two factors",
                usable.len()
            ),
        ),
        Some(p) => (p.verdict.unwrap_or(Verdict::Unknown), p.summary.clone()),
    };
    let mut evidence: Vec<Evidence> = paths.into_iter().flat_map(|p| p.evidence).collect();
    evidence.push(Evidence {
        source: "console".into(),
        line: 0,
        probe: PROBE.into(),
        detail: "console sign-in (physical or hypervisor access) is listed, not weighed".into(),
    });
    Ok(Control {
        name: "mfa".into(),
        state: verdict.as_str().into(),
        reason,
        evidence,
    })
}

fn rdp_path(rdp: &RdpSettings, providers: &Providers) -> Path {
    let mut evidence = rdp.evidence.clone();
    if !rdp.enabled {
        return Path {
            verdict: None,
            summary: "RDP is disabled (fDenyTSConnections)".into(),
            evidence,
        };
    }
    let nla = if rdp.nla { "NLA on" } else { "NLA off" };
    let (verdict, why) = if let Some(sc) = &providers.smart_card_required {
        evidence.push(sc.evidence.clone());
        (
            Verdict::Enforced,
            "smart card required (scforceoption): card + PIN".to_string(),
        )
    } else if let Some(duo) = &providers.duo {
        evidence.extend(duo.evidence.iter().cloned());
        if duo.fail_open {
            (
                Verdict::Available,
                "password + Duo, but Duo FailOpen lets the password alone in when Duo is \
                 unreachable"
                    .to_string(),
            )
        } else {
            let mut why = "password + Duo (fail closed)".to_string();
            if duo.offline {
                why.push_str("; offline access still needs an offline Duo factor");
            }
            if duo.rdp_only {
                why.push_str("; RdpOnly leaves the console to the password");
            }
            (Verdict::Enforced, why)
        }
    } else if !providers.unrecognised.is_empty() {
        let names: Vec<String> = providers
            .unrecognised
            .iter()
            .map(|(c, n)| format!("{c} {n:?}"))
            .collect();
        (
            Verdict::Unknown,
            format!(
                "password, and unrecognised credential provider(s) that may add a factor: {}",
                names.join(", ")
            ),
        )
    } else {
        (
            Verdict::Absent,
            "a password alone: no second-factor credential provider or smart card policy"
                .to_string(),
        )
    };
    if let Some(hello) = &providers.hello {
        let mut note = hello.evidence.clone();
        note.detail
            .push_str(": Windows Hello for Business applies to console sign-in, not to RDP");
        evidence.push(note);
    }
    let summary = format!(
        "RDP on port {} ({nla}): {} ({why})",
        rdp.port,
        verdict.as_str()
    );
    Path {
        verdict: Some(verdict),
        summary,
        evidence,
    }
}

fn ssh_path(sshd: Option<Result<&SshdConfig, String>>) -> Option<Path> {
    let sshd = sshd?;
    Some(match sshd {
        Err(why) => Path {
            verdict: Some(Verdict::Unknown),
            summary: format!("OpenSSH Server is enabled but {why}"),
            evidence: Vec::new(),
        },
        Ok(config) => {
            let (verdict, why, mut evidence) = ssh_verdict(config, &PamReport::default());
            // Where a default applies the path logic names the Linux file.
            for e in &mut evidence {
                if e.source == crate::inventory::sshd::SSHD_CONFIG {
                    e.source = super::SSHD_CONFIG.into();
                }
            }
            Path {
                verdict: Some(verdict),
                summary: format!("OpenSSH Server: {} ({why})", verdict.as_str()),
                evidence,
            }
        }
    })
}

fn winrm_path(registry: &Registry<'_>) -> Result<Path, RegistryError> {
    let start = service_start(registry, "WinRM")?;
    let listeners = registry.subkeys(WSMAN_LISTENER)?;
    let start = match start {
        Some(start) if start.value == 2 => start,
        other => {
            let evidence = other.map_or_else(
                || {
                    registry.absent(
                        &format!("{SERVICES}\\WinRM"),
                        "Start",
                        "WinRM not installed",
                    )
                },
                |s| s.evidence,
            );
            return Ok(Path {
                verdict: None,
                summary: "WinRM is not an automatic service".into(),
                evidence: vec![evidence],
            });
        }
    };
    if listeners.is_empty() {
        return Ok(Path {
            verdict: None,
            summary: "WinRM has no listener".into(),
            evidence: vec![start.evidence],
        });
    }
    let mut listener = Evidence {
        source: format!("{WSMAN_LISTENER}\\{}", listeners.join(", ")),
        line: 0,
        probe: PROBE.into(),
        detail: "WinRM listener(s)".into(),
    };
    listener.detail = format!("{} configured", listeners.join(", "));
    Ok(Path {
        verdict: Some(Verdict::Absent),
        summary: format!(
            "WinRM (PowerShell remoting, listener {}): absent (the account password alone; \
             credential providers do not apply to network logons)",
            listeners.join(", ")
        ),
        evidence: vec![start.evidence, listener],
    })
}

fn rdp_observation(rdp: &RdpSettings) -> Observation {
    Observation {
        category: "rdp".into(),
        name: "RDP-Tcp".into(),
        value: serde_json::json!({
            "enabled": rdp.enabled,
            "nla": rdp.nla,
            "security_layer": rdp.security_layer,
            "min_encryption_level": rdp.min_encryption_level,
            "port": rdp.port,
        }),
        evidence: rdp.evidence.clone(),
    }
}

fn provider_observations(providers: &Providers) -> Vec<Observation> {
    let mut list: Vec<Observation> = providers
        .registered
        .iter()
        .map(|c| (c, true))
        .chain(providers.unrecognised.iter().map(|c| (c, false)))
        .map(|((clsid, name), known)| Observation {
            category: "credential_provider".into(),
            name: clsid.clone(),
            value: serde_json::json!({ "name": name, "recognised": known }),
            evidence: vec![Evidence {
                source: format!("{PROVIDERS}\\{clsid}"),
                line: 0,
                probe: PROBE.into(),
                detail: name.clone(),
            }],
        })
        .collect();
    if let Some(duo) = &providers.duo {
        list.push(Observation {
            category: "mfa_provider".into(),
            name: "duo".into(),
            value: serde_json::json!({
                "fail_open": duo.fail_open,
                "rdp_only": duo.rdp_only,
                "offline_access": duo.offline,
            }),
            evidence: duo.evidence.clone(),
        });
    }
    if let Some(sc) = &providers.smart_card_required {
        list.push(Observation {
            category: "mfa_provider".into(),
            name: "smart_card_required".into(),
            value: serde_json::json!({ "required": true }),
            evidence: vec![sc.evidence.clone()],
        });
    }
    if let Some(hello) = &providers.hello {
        list.push(Observation {
            category: "mfa_provider".into(),
            name: "windows_hello_for_business".into(),
            value: serde_json::json!({ "policy_enabled": true }),
            evidence: vec![hello.evidence.clone()],
        });
    }
    list
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // In tests an unwrap that fails is the failing assertion.
pub(super) mod tests {
    use super::*;
    use crate::inventory::windows::reg_text;
    use crate::inventory::windows::registry::ExportSource;

    /// An export source over `.reg` text (header added).
    pub fn source(body: &str) -> ExportSource {
        let text = format!("Windows Registry Editor Version 5.00\n\n{body}");
        ExportSource::new(
            "/registry",
            vec![("/registry/t.reg".into(), reg_text::parse(&text).unwrap())],
        )
    }

    const RDP_ON: &str = "[HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Control\\Terminal Server]\n\"fDenyTSConnections\"=dword:00000000\n";

    fn mfa(body: &str) -> Control {
        let s = source(body);
        control(&Registry::new(&s, "t"), None, &mut Vec::new())
    }

    #[test]
    fn smart_card_required_is_enforced() {
        let c = mfa(&format!(
            "{RDP_ON}[HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Policies\\System]\n\"scforceoption\"=dword:00000001\n"
        ));
        assert_eq!(c.state, "enforced", "{c:?}");
        assert!(
            c.evidence
                .iter()
                .any(|e| e.source.ends_with("\\scforceoption"))
        );
    }

    #[test]
    fn unrecognised_credential_provider_makes_password_rdp_unknown() {
        let c = mfa(&format!(
            "{RDP_ON}[HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Authentication\\Credential Providers\\{{00000000-1111-2222-3333-444444444444}}]\n@=\"VendorMfaProvider\"\n"
        ));
        assert_eq!(c.state, "unknown", "{c:?}");
        assert!(c.reason.contains("VendorMfaProvider"), "{}", c.reason);
    }

    #[test]
    fn duo_settings_without_its_registered_provider_do_not_count() {
        let c = mfa(&format!(
            "{RDP_ON}[HKEY_LOCAL_MACHINE\\SOFTWARE\\Duo Security\\DuoCredProv]\n\"FailOpen\"=dword:00000000\n"
        ));
        assert_eq!(c.state, "absent", "{c:?}");
    }

    #[test]
    fn policy_wins_over_the_local_value() {
        let c = mfa(&format!(
            "{RDP_ON}[HKEY_LOCAL_MACHINE\\SOFTWARE\\Policies\\Microsoft\\Windows NT\\Terminal Services]\n\"fDenyTSConnections\"=dword:00000001\n"
        ));
        assert_eq!(
            c.state, "unknown",
            "RDP denied by policy leaves no path: {c:?}"
        );
        assert!(
            c.evidence[0].source.contains("Policies"),
            "{:?}",
            c.evidence[0]
        );
    }
}
