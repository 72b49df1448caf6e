//! Windows Defender Firewall: which listening sockets it admits from other hosts, so that
//! `transit_encryption` judges the services other hosts can reach ("exposed", as on Linux)
//! and not every socket bound to a non-loopback address. A member server listens on RPC's
//! endpoint mapper (135) and half a dozen dynamic RPC ports whatever its role; whether they
//! are reachable is the firewall's rules, which Windows keeps in the registry.
//!
//! Read from the registry source (live API, exports or hives alike):
//! - **Profiles** Domain, Private, Public: `EnableFirewall`, `DefaultInboundAction` (1 or unset:
//!   block; 0: allow) and `DoNotAllowExceptions` (1: every inbound connection blocked, rules
//!   ignored), under [`LOCAL`]`\DomainProfile`, `\StandardProfile` (Private) and
//!   `\PublicProfile`, each overridden by the same value set by Group Policy under
//!   [`POLICY`]`\DomainProfile`, `\PrivateProfile`, `\PublicProfile`. The firewall service
//!   `MpsSvc` disabled (`Start` 4) is the firewall off in every profile.
//! - **Rules**: the values of `FirewallRules` under [LOCAL] (the local store; it must exist),
//!   and where present under [POLICY] (Group Policy), `LOCAL\Mdm` (MDM) and
//!   `LOCAL\RestrictedServices\AppIso` (app isolation), each a `REG_SZ` in the grammar of
//!   \[MS-GPFAS\] 2.2.2.19: `v2.33|Action=Allow|Active=TRUE|Dir=In|Protocol=6|Profile=Domain|
//!   LPort=RPC|App=%SystemRoot%\system32\svchost.exe|Svc=Schedule|Name=...|`.
//!
//! # Deciding, and why it never understates exposure
//! A socket (transport, port, owning executable) is judged per profile; it is exposed when any
//! profile admits it, because which profile applies depends on the network the host is on at
//! the moment. A profile admits it when the firewall is off there, or when no block applies
//! and an inbound allow rule (or `ByPass`) may match, or the default inbound action is allow.
//! Each rule condition is matched as yes, no or "cannot tell" (a keyword port such as `RPC`
//! for a dynamic port, a service in a shared `svchost.exe`, a path variable the registry does
//! not resolve (`SystemRoot`, `ProgramFilesDir`), an 8.3 short name or device path): an allow
//! rule counts unless a condition is surely no; a block rule counts only when every condition
//! surely matches and it has no scope this module does not evaluate (remote or local
//! addresses, interfaces, authorised users, trust tuples). A rule value of another type, or one
//! that is not a rule, counts as an allow rule for everything, named in the reason. Not read,
//! so never used to call a socket blocked: Windows Service Hardening rules
//! (`RestrictedServices\Static`, `\Configurable`), IPsec connection security rules, and
//! `AllowLocalPolicyMerge` (local rules are counted even when policy would ignore them).
//!
//! When the profiles or the local rule store cannot be read (a partial export, an error), the
//! firewall is not known and every socket counts as exposed, as before this module.

use std::collections::HashMap;

use super::registry::{Data, Registry, RegistryError, value_path};
use crate::inventory::Evidence;
use crate::inventory::listeners::Transport;

/// The collector named in this module's evidence.
pub const PROBE: &str = "windows_firewall";
/// The host's own store: profiles and rules set locally (`netsh`, the MMC snap-in, installers).
pub const LOCAL: &str =
    "HKLM\\SYSTEM\\CurrentControlSet\\Services\\SharedAccess\\Parameters\\FirewallPolicy";
/// Group Policy's store, whose profile values win over the local ones.
pub const POLICY: &str = "HKLM\\SOFTWARE\\Policies\\Microsoft\\WindowsFirewall";
const SERVICES: &str = "HKLM\\SYSTEM\\CurrentControlSet\\Services";
const NT_CURRENT_VERSION: &str = "HKLM\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion";
const CURRENT_VERSION: &str = "HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion";
/// (profile, local key, policy key).
const PROFILES: [(&str, &str, &str); 3] = [
    ("Domain", "DomainProfile", "DomainProfile"),
    ("Private", "StandardProfile", "PrivateProfile"),
    ("Public", "PublicProfile", "PublicProfile"),
];
/// Rule fields that do not narrow which connections a rule applies to.
const NEUTRAL_FIELDS: [&str; 10] = [
    "action",
    "active",
    "dir",
    "protocol",
    "profile",
    "lport",
    "lport2_10",
    "app",
    "svc",
    "name",
];
const DESCRIPTIVE_FIELDS: [&str; 4] = ["desc", "embedctxt", "edge", "defer"];
/// Longest rule text kept in evidence.
const EVIDENCE_TEXT: usize = 240;

/// A socket as the firewall sees it.
#[derive(Clone, Copy, Debug)]
pub struct Socket<'a> {
    /// Matched against a rule's `Protocol` (6 TCP, 17 UDP).
    pub transport: Transport,
    /// Matched against a rule's `LPort`.
    pub port: u16,
    /// The owning process's image path (`C:\Windows\system32\svchost.exe`), `System` for the
    /// kernel's sockets (SMB, NetBIOS), `None` when not known.
    pub image: Option<&'a str>,
}

/// Whether other hosts can reach a socket, with why.
#[derive(Clone, Debug)]
pub struct Exposure {
    /// Some profile admits connections to it from other hosts.
    pub admitted: bool,
    /// Per profile, what decided it (`Domain: allowed by FPS-SMB-In-TCP`).
    pub why: String,
    /// The profile values and the rules that decided.
    pub evidence: Vec<Evidence>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Match {
    Yes,
    Maybe,
    No,
}

impl Match {
    fn and(self, other: Match) -> Match {
        match (self, other) {
            (Match::No, _) | (_, Match::No) => Match::No,
            (Match::Maybe, _) | (_, Match::Maybe) => Match::Maybe,
            _ => Match::Yes,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    Allow,
    Block,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Port {
    Range(u16, u16),
    /// `RPC`: the dynamic endpoints RPC servers registered.
    Rpc,
    /// `RPC-EPMap`: the endpoint mapper, 135.
    Epmap,
    /// Another keyword (`IPHTTPSIn`, `Teredo`, `Ply2Disc`, `mDNS`) or an unreadable port.
    Other(String),
}

/// One firewall rule, as far as deciding exposure needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// The registry value's name, the rule's id.
    pub id: String,
    action: Action,
    active: bool,
    inbound: bool,
    /// `None`: any protocol; `Some(Err)`: unreadable.
    protocol: Option<Result<u16, String>>,
    /// Empty: every profile.
    profiles: Vec<String>,
    /// Empty: every port.
    ports: Vec<Port>,
    app: Option<String>,
    service: Option<String>,
    /// Fields that narrow the rule in ways not evaluated here (`RA4`, `IF`, `TTK2_22`, ...).
    scope: Vec<String>,
    /// The whole rule could not be read: it counts as an allow rule for everything.
    unreadable: Option<String>,
}

/// Parses one rule's text; never fails, because a rule that cannot be read still has to
/// count (see the module header): such a rule comes back with its problem recorded.
pub fn parse_rule(id: &str, text: &str) -> Rule {
    let mut rule = Rule {
        id: id.to_string(),
        action: Action::Allow,
        active: true,
        inbound: true,
        protocol: None,
        profiles: Vec::new(),
        ports: Vec::new(),
        app: None,
        service: None,
        scope: Vec::new(),
        unreadable: None,
    };
    let mut fields = text.split('|');
    let version = fields.next().unwrap_or_default();
    if !version.starts_with(['v', 'V']) || version.len() < 2 {
        rule.unreadable = Some(format!(
            "does not start with a version (`v2.33|`): {version:?}"
        ));
        return rule;
    }
    for field in fields.filter(|f| !f.is_empty()) {
        let Some((name, value)) = field.split_once('=') else {
            rule.unreadable = Some(format!("field without `=`: {field:?}"));
            return rule;
        };
        match name.to_ascii_lowercase().as_str() {
            "action" => match value.to_ascii_lowercase().as_str() {
                "allow" | "bypass" => rule.action = Action::Allow,
                "block" => rule.action = Action::Block,
                _ => {
                    rule.unreadable = Some(format!("unknown Action={value}"));
                    return rule;
                }
            },
            "active" => rule.active = !value.eq_ignore_ascii_case("false"),
            "dir" => rule.inbound = !value.eq_ignore_ascii_case("out"),
            "protocol" => {
                rule.protocol = Some(
                    value
                        .parse::<u16>()
                        .map_err(|_| format!("Protocol={value}")),
                );
            }
            "profile" => rule.profiles.push(value.to_ascii_lowercase()),
            "lport" | "lport2_10" => rule.ports.push(parse_port(value)),
            "app" => rule.app = Some(value.to_string()),
            "svc" => rule.service = Some(value.to_string()),
            other if NEUTRAL_FIELDS.contains(&other) || DESCRIPTIVE_FIELDS.contains(&other) => {}
            _ => rule.scope.push(format!("{name}={value}")),
        }
    }
    rule
}

fn parse_port(value: &str) -> Port {
    let number = |s: &str| s.trim().parse::<u16>().ok();
    if let Some(n) = number(value) {
        return Port::Range(n, n);
    }
    if let Some((a, b)) = value.split_once('-')
        && let (Some(a), Some(b)) = (number(a), number(b))
    {
        return Port::Range(a.min(b), a.max(b));
    }
    match value.to_ascii_lowercase().as_str() {
        "rpc" => Port::Rpc,
        "rpc-epmap" => Port::Epmap,
        _ => Port::Other(value.to_string()),
    }
}

struct Profile {
    name: &'static str,
    enabled: bool,
    default_allow: bool,
    shields_up: bool,
    evidence: Vec<Evidence>,
}

/// The firewall's profiles and rules as read; see [`read`].
pub struct Firewall {
    profiles: Vec<Profile>,
    rules: Vec<(Rule, Evidence)>,
    /// Where the variables in rule and service paths point on this host.
    folders: Folders,
    /// Service name (lower-case) to its image path (lower-case), where the registry has one.
    service_images: HashMap<String, String>,
    /// Why the firewall is off in every profile, when it is.
    off: Option<Evidence>,
}

/// Reads the firewall; `Err` says why it is not known (every socket then counts as exposed).
pub fn read(registry: &Registry<'_>) -> Result<Firewall, String> {
    read_inner(registry).map_err(|e| e.to_string())?
}

fn read_inner(registry: &Registry<'_>) -> Result<Result<Firewall, String>, RegistryError> {
    let mpssvc = format!("{SERVICES}\\MpsSvc");
    let off = match registry.dword(&mpssvc, "Start")? {
        Some(start) if start.value == 4 => Some(start.evidence),
        Some(_) => None,
        None => {
            return Ok(Err(format!(
                "{} is not in {}",
                value_path(&mpssvc, "Start"),
                registry.source().origin()
            )));
        }
    };
    let profiles = match read_profiles(registry, off.is_some())? {
        Ok(profiles) => profiles,
        Err(why) => return Ok(Err(why)),
    };
    let rules = match read_rules(registry)? {
        Ok(rules) => rules,
        Err(why) => return Ok(Err(why)),
    };
    let folder = |key: &str, name: &str| -> Result<Option<String>, RegistryError> {
        Ok(registry
            .string(key, name)?
            .map(|f| f.value.trim_end_matches('\\').to_ascii_lowercase()))
    };
    let folders = Folders {
        system_root: folder(NT_CURRENT_VERSION, "SystemRoot")?,
        program_files: folder(CURRENT_VERSION, "ProgramFilesDir")?,
        program_files_x86: folder(CURRENT_VERSION, "ProgramFilesDir (x86)")?,
    };
    let mut service_images = HashMap::new();
    for (rule, _) in &rules {
        let Some(service) = rule.service.as_deref().filter(|s| *s != "*") else {
            continue;
        };
        let name = service.to_ascii_lowercase();
        if service_images.contains_key(&name) {
            continue;
        }
        if let Some(image) = registry.string(&format!("{SERVICES}\\{service}"), "ImagePath")?
            && let Some(path) = expand(&executable(&image.value), &folders)
        {
            service_images.insert(name, path);
        }
    }
    Ok(Ok(Firewall {
        profiles,
        rules,
        folders,
        service_images,
        off,
    }))
}

/// The three profiles, Group Policy's values over the local ones; `Err` when a profile's
/// `EnableFirewall` is in neither. `service_off`: MpsSvc is disabled.
fn read_profiles(
    registry: &Registry<'_>,
    service_off: bool,
) -> Result<Result<Vec<Profile>, String>, RegistryError> {
    let mut profiles = Vec::new();
    for (name, local, policy) in PROFILES {
        let local = format!("{LOCAL}\\{local}");
        let policy = format!("{POLICY}\\{policy}");
        let pick = |value: &str| -> Result<Option<super::registry::Found<u32>>, RegistryError> {
            Ok(match registry.dword(&policy, value)? {
                Some(set) => Some(set),
                None => registry.dword(&local, value)?,
            })
        };
        let Some(enabled) = pick("EnableFirewall")? else {
            return Ok(Err(format!(
                "the {name} profile's EnableFirewall is in neither {local} nor {policy} in {}",
                registry.source().origin()
            )));
        };
        let inbound = pick("DefaultInboundAction")?;
        let shields = pick("DoNotAllowExceptions")?;
        let mut evidence = vec![enabled.evidence];
        evidence.extend(inbound.as_ref().map(|f| f.evidence.clone()));
        evidence.extend(shields.as_ref().map(|f| f.evidence.clone()));
        profiles.push(Profile {
            name,
            enabled: enabled.value != 0 && !service_off,
            default_allow: inbound.is_some_and(|f| f.value == 0),
            shields_up: shields.is_some_and(|f| f.value == 1),
            evidence,
        });
    }
    Ok(Ok(profiles))
}

/// Every rule of every store, with evidence naming its value; `Err` when the local store is
/// missing (the others are optional).
fn read_rules(
    registry: &Registry<'_>,
) -> Result<Result<Vec<(Rule, Evidence)>, String>, RegistryError> {
    let stores = [
        format!("{LOCAL}\\FirewallRules"),
        format!("{POLICY}\\FirewallRules"),
        format!("{LOCAL}\\Mdm\\FirewallRules"),
        format!("{LOCAL}\\RestrictedServices\\AppIso\\FirewallRules"),
    ];
    let mut rules = Vec::new();
    for (i, store) in stores.iter().enumerate() {
        let Some(key) = registry.source().key(store)? else {
            if i == 0 {
                return Ok(Err(format!(
                    "{store} is not in {}",
                    registry.source().origin()
                )));
            }
            continue;
        };
        for value in &key.values {
            let (rule, text) = match &value.data {
                Data::String(text) | Data::ExpandString(text) => {
                    (parse_rule(&value.name, text), text.clone())
                }
                other => {
                    let mut rule = parse_rule(&value.name, "v2|");
                    rule.unreadable = Some(format!("is {}, not REG_SZ", other.type_name()));
                    (rule, other.to_string())
                }
            };
            let mut shown: String = text.chars().take(EVIDENCE_TEXT).collect();
            if shown.len() < text.len() {
                shown.push('…');
            }
            let evidence = Evidence {
                source: value_path(store, &value.name),
                line: value.line,
                probe: PROBE.into(),
                detail: format!("{shown} in {}", key.origin),
            };
            rules.push((rule, evidence));
        }
    }
    Ok(Ok(rules))
}

/// The executable of a command line (`"C:\x y\a.exe" -k` or `C:\a.exe -k`).
fn executable(command: &str) -> String {
    let command = command.trim();
    if let Some(rest) = command.strip_prefix('"') {
        return rest.split('"').next().unwrap_or_default().to_string();
    }
    let lower = command.to_ascii_lowercase();
    match lower.find(".exe") {
        Some(end) => command[..end + 4].to_string(),
        None => command.to_string(),
    }
}

/// The folders rule paths are written against, from the registry (lower-case, no trailing
/// backslash); `None` where the registry does not say, and a path using it is then not
/// compared at all.
struct Folders {
    system_root: Option<String>,
    program_files: Option<String>,
    program_files_x86: Option<String>,
}

/// `path` with the variables Windows rules use expanded, lower-case, when it comes out as a
/// plain absolute path (`c:\...`, no 8.3 short name, no device or `\\?\` prefix), the only
/// form compared with a socket's image path; `None` otherwise. A path relative to the system
/// root (`System32\x.exe`, `\SystemRoot\...`, as `ImagePath` may be) is taken from it.
fn expand(path: &str, folders: &Folders) -> Option<String> {
    let root = folders.system_root.as_deref();
    let drive = root.and_then(|r| r.get(..2));
    let mut out = String::new();
    let mut rest = path;
    while let Some(start) = rest.find('%') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let end = after.find('%')?;
        let value = match after[..end].to_ascii_lowercase().as_str() {
            "systemroot" | "windir" => root?.to_string(),
            "systemdrive" => drive?.to_string(),
            "programfiles" => folders.program_files.clone()?,
            "programfiles(x86)" => folders.program_files_x86.clone()?,
            _ => return None,
        };
        out.push_str(&value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    let mut out = out.replace('/', "\\").to_ascii_lowercase();
    if let Some(relative) = out.strip_prefix("\\systemroot\\") {
        out = format!("{}\\{relative}", root?);
    } else if out.starts_with("system32\\") {
        out = format!("{}\\{out}", root?);
    }
    plain(&out).then_some(out)
}

/// A drive-letter absolute path without short-name (`~`) or relative parts.
fn plain(path: &str) -> bool {
    let bytes = path.as_bytes();
    bytes.len() > 3
        && bytes[0].is_ascii_alphabetic()
        && path[1..].starts_with(":\\")
        && !path.contains('~')
        && !path.contains("\\..\\")
        && !path.contains("\\.\\")
}

impl Firewall {
    /// Whether `socket` is reachable from other hosts, with the profiles' reasons.
    pub fn judge(&self, socket: Socket<'_>) -> Exposure {
        let image = socket
            .image
            .map(|i| i.replace('/', "\\").to_ascii_lowercase());
        let mut evidence = Vec::new();
        let mut reasons = Vec::new();
        let mut admitted = false;
        if let Some(off) = &self.off {
            return Exposure {
                admitted: true,
                why: "the firewall service MpsSvc is disabled".into(),
                evidence: vec![off.clone()],
            };
        }
        for profile in &self.profiles {
            let (open, why, proof) = self.judge_in(profile, socket, image.as_deref());
            admitted |= open;
            reasons.push(format!("{}: {why}", profile.name));
            evidence.extend(proof);
        }
        Exposure {
            admitted,
            why: reasons.join("; "),
            evidence,
        }
    }

    fn judge_in(
        &self,
        profile: &Profile,
        socket: Socket<'_>,
        image: Option<&str>,
    ) -> (bool, String, Vec<Evidence>) {
        if !profile.enabled {
            return (true, "firewall off".into(), profile.evidence.clone());
        }
        if profile.shields_up {
            return (
                false,
                "all inbound connections blocked".into(),
                profile.evidence.clone(),
            );
        }
        let applicable = self.rules.iter().filter(|(r, _)| {
            r.unreadable.is_some()
                || (r.active
                    && r.inbound
                    && (r.profiles.is_empty()
                        || r.profiles
                            .iter()
                            .any(|p| p.eq_ignore_ascii_case(profile.name))))
        });
        let mut allow: Option<&(Rule, Evidence)> = None;
        for entry in applicable {
            let (rule, evidence) = entry;
            if let Some(problem) = &rule.unreadable {
                return (
                    true,
                    format!(
                        "rule {} cannot be read ({problem}), counted as allowing",
                        rule.id
                    ),
                    vec![evidence.clone()],
                );
            }
            match (rule.action, self.matches(rule, socket, image)) {
                (Action::Block, Match::Yes) if rule.scope.is_empty() => {
                    return (
                        false,
                        format!("blocked by {}", rule.id),
                        vec![evidence.clone()],
                    );
                }
                (Action::Allow, Match::Yes | Match::Maybe) if allow.is_none() => {
                    allow = Some(entry);
                }
                _ => {}
            }
        }
        match allow {
            Some((rule, evidence)) => {
                let scope = if rule.scope.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", rule.scope.join(", "))
                };
                (
                    true,
                    format!("allowed by {}{scope}", rule.id),
                    vec![evidence.clone()],
                )
            }
            None if profile.default_allow => (
                true,
                "no rule matches and the default inbound action is allow".into(),
                profile.evidence.clone(),
            ),
            None => (
                false,
                "no allow rule matches, default inbound action block".into(),
                profile.evidence.clone(),
            ),
        }
    }

    fn matches(&self, rule: &Rule, socket: Socket<'_>, image: Option<&str>) -> Match {
        let protocol = match &rule.protocol {
            // 256: any protocol, as \[MS-FASP\] FW_RULE's `wIpProtocol` says.
            None | Some(Ok(256)) => Match::Yes,
            Some(Err(_)) => Match::Maybe,
            Some(Ok(n)) => {
                let wanted = match socket.transport {
                    Transport::Tcp => 6,
                    Transport::Udp => 17,
                };
                if *n == wanted { Match::Yes } else { Match::No }
            }
        };
        let port = if rule.ports.is_empty() {
            Match::Yes
        } else {
            rule.ports
                .iter()
                .map(|p| match p {
                    Port::Range(a, b) if (*a..=*b).contains(&socket.port) => Match::Yes,
                    Port::Epmap if socket.port == 135 => Match::Yes,
                    // Dynamic RPC endpoints are never below 1024 (Windows' range is
                    // 49152-65535 unless `HKLM\SOFTWARE\Microsoft\Rpc\Internet` moves it).
                    Port::Rpc if socket.port >= 1024 => Match::Maybe,
                    Port::Other(_) => Match::Maybe,
                    Port::Range(..) | Port::Epmap | Port::Rpc => Match::No,
                })
                .fold(Match::No, |best, m| match (best, m) {
                    (Match::Yes, _) | (_, Match::Yes) => Match::Yes,
                    (Match::Maybe, _) | (_, Match::Maybe) => Match::Maybe,
                    _ => Match::No,
                })
        };
        let app = match (&rule.app, image) {
            (None, _) => Match::Yes,
            (Some(_), None) => Match::Maybe,
            (Some(app), Some(image)) if app.eq_ignore_ascii_case("system") => {
                if image == "system" {
                    Match::Yes
                } else {
                    Match::No
                }
            }
            (Some(_), Some(image)) if image != "system" && !plain(image) => Match::Maybe,
            (Some(app), Some(image)) => match expand(app, &self.folders) {
                Some(path) if path == image => Match::Yes,
                Some(_) => Match::No,
                None => Match::Maybe,
            },
        };
        let service = match (&rule.service, image) {
            (None, _) => Match::Yes,
            (Some(_), None) => Match::Maybe,
            (Some(s), Some(_)) if s == "*" => Match::Maybe,
            (Some(_), Some(image)) if !plain(image) => Match::Maybe,
            (Some(s), Some(image)) => match self.service_images.get(&s.to_ascii_lowercase()) {
                None => Match::Maybe,
                Some(path) if path != image => Match::No,
                // svchost.exe hosts many services: which one owns the socket is not known.
                Some(path) if path.ends_with("\\svchost.exe") => Match::Maybe,
                Some(_) => Match::Yes,
            },
        };
        protocol.and(port).and(app).and(service)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // In tests an unwrap that fails is the failing assertion.
mod tests {
    use std::fmt::Write;

    use super::*;
    use crate::inventory::windows::reg_text;
    use crate::inventory::windows::registry::ExportSource;

    const RULES: &str = "HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Services\\SharedAccess\\Parameters\\FirewallPolicy";
    const SVCHOST: &str = "C:\\Windows\\system32\\svchost.exe";

    /// An export with MpsSvc, the three profiles (`profiles` extra lines each) and `rules`.
    fn export(profiles: &str, rules: &[(&str, &str)], extra: &str) -> String {
        let mut text = String::from("Windows Registry Editor Version 5.00\r\n\r\n");
        text.push_str(
            "[HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion]\r\n\"SystemRoot\"=\"C:\\\\Windows\"\r\n\r\n",
        );
        text.push_str(
            "[HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Services\\MpsSvc]\r\n\"Start\"=dword:00000002\r\n\r\n",
        );
        text.push_str(
            "[HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Services\\Schedule]\r\n\"ImagePath\"=\"%SystemRoot%\\\\system32\\\\svchost.exe -k netsvcs -p\"\r\n\r\n",
        );
        text.push_str(
            "[HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Services\\Spooler]\r\n\"ImagePath\"=\"%SystemRoot%\\\\System32\\\\spoolsv.exe\"\r\n\r\n",
        );
        for key in ["DomainProfile", "StandardProfile", "PublicProfile"] {
            write!(
                text,
                "[{RULES}\\{key}]\r\n\"EnableFirewall\"=dword:00000001\r\n{profiles}\r\n"
            )
            .unwrap();
        }
        write!(text, "[{RULES}\\FirewallRules]\r\n").unwrap();
        for (id, rule) in rules {
            write!(text, "\"{id}\"=\"{}\"\r\n", rule.replace('\\', "\\\\")).unwrap();
        }
        text.push_str("\r\n");
        text.push_str(extra);
        text
    }

    fn firewall(text: &str) -> Result<Firewall, String> {
        let parsed = reg_text::parse(text).unwrap();
        let source = ExportSource::new("/fixture", vec![("/registry/x.reg".into(), parsed)]);
        let registry = Registry::new(&source, "test");
        read(&registry)
    }

    fn tcp(port: u16, image: &str) -> Socket<'_> {
        Socket {
            transport: Transport::Tcp,
            port,
            image: Some(image),
        }
    }

    const EPMAP_OFF: (&str, &str) = (
        "FPS-RPCSS-In-TCP-NoScope",
        "v2.33|Action=Allow|Active=FALSE|Dir=In|Protocol=6|Profile=Domain|LPort=RPC-EPMap|App=%SystemRoot%\\system32\\svchost.exe|Svc=Rpcss|Name=@FirewallAPI.dll,-28539|",
    );
    const SMB_ON: (&str, &str) = (
        "FPS-SMB-In-TCP",
        "v2.33|Action=Allow|Active=TRUE|Dir=In|Protocol=6|LPort=445|App=System|Name=@FirewallAPI.dll,-28511|",
    );
    const TASKS_ON: (&str, &str) = (
        "RemoteTask-In-TCP",
        "v2.33|Action=Allow|Active=TRUE|Dir=In|Protocol=6|Profile=Private|Profile=Public|LPort=RPC|RA4=LocalSubnet|RA6=LocalSubnet|App=%SystemRoot%\\system32\\svchost.exe|Svc=schedule|Name=@FirewallAPI.dll,-33253|",
    );
    const SPOOLER_ON: (&str, &str) = (
        "FPS-SpoolSvc-In-TCP",
        "v2.33|Action=Allow|Active=TRUE|Dir=In|Protocol=6|LPort=RPC|App=%SystemRoot%\\system32\\spoolsv.exe|Svc=Spooler|Name=@FirewallAPI.dll,-28535|",
    );

    #[test]
    fn only_active_inbound_rules_that_match_admit() {
        let fw = firewall(&export("", &[EPMAP_OFF, SMB_ON], "")).unwrap();
        let epmap = fw.judge(tcp(135, SVCHOST));
        assert!(!epmap.admitted, "{}", epmap.why);
        assert!(
            epmap
                .why
                .contains("Domain: no allow rule matches, default inbound action block"),
            "{}",
            epmap.why
        );
        let smb = fw.judge(tcp(445, "System"));
        assert!(smb.admitted);
        assert!(
            smb.why.contains("Public: allowed by FPS-SMB-In-TCP"),
            "{}",
            smb.why
        );
        assert!(
            smb.evidence[0]
                .source
                .ends_with("FirewallRules\\FPS-SMB-In-TCP")
        );
        // The same port owned by another program is not the kernel's SMB.
        assert!(!fw.judge(tcp(445, "C:\\evil.exe")).admitted);
        // UDP is another protocol.
        let udp = Socket {
            transport: Transport::Udp,
            port: 445,
            image: Some("System"),
        };
        assert!(!fw.judge(udp).admitted);
    }

    #[test]
    fn rpc_rules_match_dynamic_ports_of_their_program_and_service() {
        let fw = firewall(&export("", &[TASKS_ON, SPOOLER_ON], "")).unwrap();
        let tasks = fw.judge(tcp(49667, SVCHOST));
        assert!(tasks.admitted);
        assert!(
            tasks.why.contains(
                "Private: allowed by RemoteTask-In-TCP (RA4=LocalSubnet, RA6=LocalSubnet)"
            ),
            "{}",
            tasks.why
        );
        assert!(tasks.why.contains("Domain: no allow rule"), "{}", tasks.why);
        // Not the endpoint mapper, and not another program's dynamic port.
        assert!(!fw.judge(tcp(135, SVCHOST)).admitted);
        assert!(
            !fw.judge(tcp(49664, "C:\\Windows\\system32\\lsass.exe"))
                .admitted
        );
        assert!(
            fw.judge(tcp(49668, "C:\\Windows\\system32\\spoolsv.exe"))
                .admitted
        );
        // A path in a form that is not compared (8.3 short name) may be the rule's program.
        assert!(
            fw.judge(tcp(49670, "C:\\WINDOWS\\SYSTEM32\\SPOOLSV~1.EXE"))
                .admitted
        );
        // An owner that is not known may be the rule's program.
        let unknown = Socket {
            transport: Transport::Tcp,
            port: 49670,
            image: None,
        };
        assert!(fw.judge(unknown).admitted);
    }

    #[test]
    fn block_rules_win_only_when_they_surely_apply() {
        let block_all = (
            "Block-Spooler-In",
            "v2.33|Action=Block|Active=TRUE|Dir=In|App=%SystemRoot%\\system32\\spoolsv.exe|Name=x|",
        );
        let block_scoped = (
            "WFDPRINT-SPOOL-In-Active",
            "v2.33|Action=Block|Active=TRUE|Dir=In|Profile=Public|App=%SystemRoot%\\system32\\spoolsv.exe|Svc=Spooler|Name=x|TTK2_22=WFDPrint|",
        );
        let spooler = tcp(49668, "C:\\Windows\\system32\\spoolsv.exe");
        let fw = firewall(&export("", &[SPOOLER_ON, block_all], "")).unwrap();
        let judged = fw.judge(spooler);
        assert!(!judged.admitted, "{}", judged.why);
        assert!(
            judged.why.contains("Domain: blocked by Block-Spooler-In"),
            "{}",
            judged.why
        );
        let fw = firewall(&export("", &[SPOOLER_ON, block_scoped], "")).unwrap();
        assert!(
            fw.judge(spooler).admitted,
            "a trust-tuple block covers some peers only"
        );
    }

    #[test]
    fn profiles_policy_and_the_service_decide_before_rules() {
        let shields = "\"DoNotAllowExceptions\"=dword:00000001\r\n";
        let fw = firewall(&export(shields, &[SMB_ON], "")).unwrap();
        let smb = fw.judge(tcp(445, "System"));
        assert!(!smb.admitted);
        assert!(
            smb.why.contains("all inbound connections blocked"),
            "{}",
            smb.why
        );

        let open = "\"DefaultInboundAction\"=dword:00000000\r\n";
        let fw = firewall(&export(open, &[], "")).unwrap();
        assert!(fw.judge(tcp(135, SVCHOST)).admitted);

        // Group Policy turns the Public profile off over the local setting.
        let policy = "[HKEY_LOCAL_MACHINE\\SOFTWARE\\Policies\\Microsoft\\WindowsFirewall\\PublicProfile]\r\n\"EnableFirewall\"=dword:00000000\r\n\r\n";
        let fw = firewall(&export("", &[], policy)).unwrap();
        let judged = fw.judge(tcp(135, SVCHOST));
        assert!(judged.admitted);
        assert!(
            judged.why.contains("Public: firewall off"),
            "{}",
            judged.why
        );
        assert!(
            judged.evidence.iter().any(|e| e.source
                == "HKLM\\SOFTWARE\\Policies\\Microsoft\\WindowsFirewall\\PublicProfile\\EnableFirewall")
        );

        let text = export("", &[], "").replace(
            "MpsSvc]\r\n\"Start\"=dword:00000002",
            "MpsSvc]\r\n\"Start\"=dword:00000004",
        );
        let judged = firewall(&text).unwrap().judge(tcp(135, SVCHOST));
        assert!(judged.admitted);
        assert_eq!(judged.why, "the firewall service MpsSvc is disabled");
    }

    #[test]
    fn unreadable_rules_count_as_allowing_and_missing_keys_leave_it_unknown() {
        let fw = firewall(&export("", &[("Broken", "Action=Allow|LPort=1|")], "")).unwrap();
        let judged = fw.judge(tcp(135, SVCHOST));
        assert!(judged.admitted);
        assert!(
            judged.why.contains("rule Broken cannot be read"),
            "{}",
            judged.why
        );

        let wrong_type = format!(
            "{}[{RULES}\\FirewallRules]\r\n\"Binary\"=dword:00000001\r\n\r\n",
            export("", &[], "")
        );
        let judged = firewall(&wrong_type).unwrap().judge(tcp(135, SVCHOST));
        assert!(
            judged.why.contains("is REG_DWORD, not REG_SZ"),
            "{}",
            judged.why
        );

        let no_rules = export("", &[], "").replace(
            &format!("[{RULES}\\FirewallRules]"),
            "[HKEY_LOCAL_MACHINE\\SYSTEM\\Other]",
        );
        let why = firewall(&no_rules).err().unwrap();
        assert!(
            why.contains("FirewallPolicy\\FirewallRules is not in /fixture"),
            "{why}"
        );

        let wrong_profile = export("", &[], "").replacen(
            "\"EnableFirewall\"=dword:00000001",
            "\"EnableFirewall\"=\"1\"",
            1,
        );
        let why = firewall(&wrong_profile).err().unwrap();
        assert!(
            why.contains(
                "DomainProfile\\EnableFirewall in /registry/x.reg is REG_SZ, expected REG_DWORD"
            ),
            "{why}"
        );

        let no_profile = export("", &[], "").replacen("\"EnableFirewall\"=dword:00000001", "", 1);
        let why = firewall(&no_profile).err().unwrap();
        assert!(why.contains("the Domain profile's EnableFirewall"), "{why}");
    }

    #[test]
    fn rule_grammar() {
        let rule = parse_rule(
            "x",
            "v2.30|Action=Block|Active=FALSE|Dir=Out|Protocol=17|Profile=Domain|Profile=Public|LPort=5000-5010|LPort2_10=IPHTTPSIn|Svc=*|Name=n|Desc=d|EmbedCtxt=e|RA4=10.0.0.0/8|",
        );
        assert_eq!(rule.action, Action::Block);
        assert!(!rule.active && !rule.inbound);
        assert_eq!(rule.protocol, Some(Ok(17)));
        assert_eq!(rule.profiles, ["domain", "public"]);
        assert_eq!(
            rule.ports,
            [Port::Range(5000, 5010), Port::Other("IPHTTPSIn".into())]
        );
        assert_eq!(rule.service.as_deref(), Some("*"));
        assert_eq!(rule.scope, ["RA4=10.0.0.0/8"]);
        assert!(rule.unreadable.is_none());
        assert!(parse_rule("x", "v2.30|Action=Maybe|").unreadable.is_some());
        assert!(parse_rule("x", "v2.30|Action|").unreadable.is_some());
        assert!(parse_rule("x", "").unreadable.is_some());
        let folders = Folders {
            system_root: Some("c:\\windows".into()),
            program_files: Some("d:\\program files".into()),
            program_files_x86: None,
        };
        assert_eq!(
            expand("%windir%\\System32\\spoolsv.exe", &folders).as_deref(),
            Some("c:\\windows\\system32\\spoolsv.exe")
        );
        assert_eq!(expand("%Unknown%\\a.exe", &folders), None);
        // A folder the registry does not name is not guessed.
        assert_eq!(expand("%ProgramFiles(x86)%\\a.exe", &folders), None);
        assert_eq!(
            expand(&executable("\"%ProgramFiles%\\A B\\a.exe\" -x"), &folders).as_deref(),
            Some("d:\\program files\\a b\\a.exe")
        );
        assert_eq!(
            expand(&executable("System32\\svchost.exe -k netsvcs"), &folders).as_deref(),
            Some("c:\\windows\\system32\\svchost.exe")
        );
        // Short names and device paths are not compared.
        assert_eq!(expand("C:\\PROGRA~1\\a.exe", &folders), None);
        assert_eq!(expand("\\\\?\\C:\\a.exe", &folders), None);
    }
}
