//! Local user accounts, the local Administrators (`S-1-5-32-544`) and Remote Desktop Users
//! (`S-1-5-32-555`) groups, and the `privileged_access` control on Windows, with the same
//! semantics and last-login evidence as on Linux ([`crate::inventory::privileged`],
//! [`crate::inventory::lastlog`]).
//!
//! Owns one model ([`LocalAccounts`]), its parser from recorded JSON ([`parse_recorded`],
//! fuzzed by agent/fuzz `local_accounts`) and the verdict over it ([`control`]). The live
//! reader (`accounts_live`, Windows builds only) fills the same model from the NetAPI, so the
//! fixture tests exercise the judgement the live host gets. No secret is read: a user's
//! description, full name and password data are neither asked for nor kept.
//!
//! # Recorded form
//! `RECORDED_DIR/local-accounts.json` ([`RECORDED_FILE`]), what this PowerShell (5.1 or 7, as
//! administrator; the groups are looked up by SID because their names are localised, Swedish
//! Windows says "Administratörer") writes:
//!
//! ```powershell
//! function Members($sid) { [pscustomobject]@{ Name = (Get-LocalGroup -SID $sid).Name; SID = $sid
//!     Members = @(Get-LocalGroupMember -SID $sid | Select-Object Name,SID,ObjectClass,PrincipalSource) } }
//! [pscustomobject]@{ Users = @(Get-LocalUser | Select-Object Name,Enabled,PasswordRequired,LastLogon,SID)
//!     Administrators = Members 'S-1-5-32-544'; RemoteDesktopUsers = Members 'S-1-5-32-555' } |
//!   ConvertTo-Json -Depth 5 | Out-File -Encoding utf8 local-accounts.json
//! ```
//!
//! Accepted as both PowerShell versions write them: `LastLogon` `null` (never), `"/Date(ms)/"`
//! (5.1) or an ISO 8601 time with offset (7); `SID` a string or the `SecurityIdentifier` object
//! with its `Value`; `PrincipalSource` the enum's number (0 Unknown, 1 Local, 2 ActiveDirectory,
//! 3 AzureAD, 4 MicrosoftAccount) or its name; a list of one as a bare object. Anything else
//! (truncated JSON, a wrong type, a member without SID) is an [`AccountsError`] naming the
//! file and field, and the control is `unknown` with it.
//!
//! # Verdict
//! `exposed` when an enabled administrator does not need a password (`UF_PASSWD_NOTREQD`,
//! `PasswordRequired` false: an empty password is then accepted), or the Guest account (RID
//! 501, whatever it is called) is enabled and in Administrators or Remote Desktop Users;
//! otherwise `restricted`. In every state each enabled local administrator's last logon is one
//! [`lastlog::PROBE`] evidence in the Linux form (a last logon of 0 is "never logged in"), for
//! the collector's dormancy rule. Members that are not local accounts (domain or Entra ID
//! principals, SIDs outside the machine's) are listed as evidence of another probe: the host
//! does not know when they last logged on, so they are never called dormant.

use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::inventory::{Control, Evidence, Observation, lastlog};

/// The recorded file's name under the offline root's `recorded` directory.
pub const RECORDED_FILE: &str = "local-accounts.json";
/// BUILTIN\Administrators.
pub const ADMINISTRATORS_SID: &str = "S-1-5-32-544";
/// BUILTIN\Remote Desktop Users.
pub const REMOTE_DESKTOP_USERS_SID: &str = "S-1-5-32-555";
/// The probe of every evidence here except the last logons.
pub const PROBE: &str = "windows_accounts";
/// Largest recorded file read: a workstation has a handful of accounts, a server dozens.
pub const MAX_RECORDED_BYTES: usize = 4 * 1024 * 1024;

/// Where a group member's account lives (PowerShell's `PrincipalSource`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrincipalSource {
    /// Not reported.
    Unknown,
    /// This machine's SAM.
    Local,
    /// An Active Directory domain.
    ActiveDirectory,
    /// Entra ID (Azure AD).
    AzureAd,
    /// A local account linked to a Microsoft account.
    MicrosoftAccount,
}

impl PrincipalSource {
    /// PowerShell's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unknown => "Unknown",
            Self::Local => "Local",
            Self::ActiveDirectory => "ActiveDirectory",
            Self::AzureAd => "AzureAD",
            Self::MicrosoftAccount => "MicrosoftAccount",
        }
    }
}

/// One local user account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalUser {
    /// The account name without the machine prefix.
    pub name: String,
    /// `S-1-5-21-<machine>-<RID>`.
    pub sid: String,
    /// Not disabled (`UF_ACCOUNTDISABLE` clear).
    pub enabled: bool,
    /// `UF_PASSWD_NOTREQD` clear: the account cannot have an empty password.
    pub password_required: bool,
    /// Seconds since the epoch of the last logon; `None` when it never logged on.
    pub last_logon: Option<i64>,
}

/// One member of a local group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// `DOMAIN\name` as Windows reports it.
    pub name: String,
    /// The member's SID.
    pub sid: String,
    /// `User`, `Group`, ...
    pub object_class: String,
    /// Where the account lives.
    pub source: PrincipalSource,
}

/// A local group looked up by its well-known SID.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalGroup {
    /// The well-known SID.
    pub sid: String,
    /// The name on this host (localised).
    pub name: String,
    /// Its direct members.
    pub members: Vec<Member>,
}

/// What the agent knows of the host's local accounts, from either source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalAccounts {
    /// The file or API read, named in every evidence.
    pub origin: String,
    /// Every local user.
    pub users: Vec<LocalUser>,
    /// `S-1-5-32-544`.
    pub administrators: LocalGroup,
    /// `S-1-5-32-555`.
    pub remote_desktop_users: LocalGroup,
}

/// Why the accounts could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{origin}: {field}: {message}")]
pub struct AccountsError {
    /// The file or API.
    pub origin: String,
    /// The JSON path or call that is wrong (`Users[2].Enabled`).
    pub field: String,
    /// What is wrong.
    pub message: String,
}

/// Parses the recorded JSON (see the module header) into the model.
pub fn parse_recorded(text: &str, origin: &str) -> Result<LocalAccounts, AccountsError> {
    let fail = |field: &str, message: String| AccountsError {
        origin: origin.into(),
        field: field.into(),
        message,
    };
    let root: Value = serde_json::from_str(text.trim_start_matches('\u{feff}'))
        .map_err(|e| fail("(document)", e.to_string()))?;
    if !root.is_object() {
        return Err(fail("(document)", "not a JSON object".into()));
    }
    let users = list(&root["Users"], "Users")
        .map_err(|m| fail("Users", m))?
        .iter()
        .enumerate()
        .map(|(i, u)| user(u).map_err(|(f, m)| fail(&format!("Users[{i}].{f}"), m)))
        .collect::<Result<Vec<_>, _>>()?;
    let group = |key: &str, sid: &str| -> Result<LocalGroup, AccountsError> {
        let value = &root[key];
        if !value.is_object() {
            return Err(fail(key, "missing or not an object".into()));
        }
        let name = match &value["Name"] {
            Value::String(s) if !s.is_empty() => s.clone(),
            Value::Null => sid.to_string(),
            _ => return Err(fail(&format!("{key}.Name"), "not a string".into())),
        };
        let members = list(&value["Members"], "Members")
            .map_err(|m| fail(&format!("{key}.Members"), m))?
            .iter()
            .enumerate()
            .map(|(i, m)| member(m).map_err(|(f, e)| fail(&format!("{key}.Members[{i}].{f}"), e)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(LocalGroup {
            sid: sid.into(),
            name,
            members,
        })
    };
    Ok(LocalAccounts {
        origin: origin.into(),
        users,
        administrators: group("Administrators", ADMINISTRATORS_SID)?,
        remote_desktop_users: group("RemoteDesktopUsers", REMOTE_DESKTOP_USERS_SID)?,
    })
}

/// An array, a bare object (`ConvertTo-Json` unwraps a list of one) or `null` (none).
fn list<'a>(value: &'a Value, what: &str) -> Result<Vec<&'a Value>, String> {
    match value {
        Value::Array(items) => Ok(items.iter().collect()),
        Value::Object(_) => Ok(vec![value]),
        Value::Null => Ok(Vec::new()),
        _ => Err(format!("{what} is not a list")),
    }
}

type FieldError = (&'static str, String);

fn user(value: &Value) -> Result<LocalUser, FieldError> {
    Ok(LocalUser {
        name: string(value, "Name")?,
        sid: sid(value)?,
        enabled: boolean(value, "Enabled")?,
        password_required: boolean(value, "PasswordRequired")?,
        last_logon: last_logon(&value["LastLogon"]).map_err(|m| ("LastLogon", m))?,
    })
}

fn member(value: &Value) -> Result<Member, FieldError> {
    let source = match &value["PrincipalSource"] {
        Value::Null => PrincipalSource::Unknown,
        Value::Number(n) => match n.as_u64() {
            Some(0) => PrincipalSource::Unknown,
            Some(1) => PrincipalSource::Local,
            Some(2) => PrincipalSource::ActiveDirectory,
            Some(3) => PrincipalSource::AzureAd,
            Some(4) => PrincipalSource::MicrosoftAccount,
            _ => return Err(("PrincipalSource", format!("{n} is not a PrincipalSource"))),
        },
        Value::String(s) => match s.as_str() {
            "Unknown" => PrincipalSource::Unknown,
            "Local" => PrincipalSource::Local,
            "ActiveDirectory" => PrincipalSource::ActiveDirectory,
            "AzureAD" => PrincipalSource::AzureAd,
            "MicrosoftAccount" => PrincipalSource::MicrosoftAccount,
            _ => return Err(("PrincipalSource", format!("{s:?} is not a PrincipalSource"))),
        },
        _ => return Err(("PrincipalSource", "not a number or a name".into())),
    };
    Ok(Member {
        name: string(value, "Name")?,
        sid: sid(value)?,
        object_class: match &value["ObjectClass"] {
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            _ => return Err(("ObjectClass", "not a string".into())),
        },
        source,
    })
}

fn string(value: &Value, field: &'static str) -> Result<String, FieldError> {
    match &value[field] {
        Value::String(s) if !s.is_empty() => Ok(s.clone()),
        Value::Null => Err((field, "missing".into())),
        _ => Err((field, "not a non-empty string".into())),
    }
}

fn boolean(value: &Value, field: &'static str) -> Result<bool, FieldError> {
    value[field]
        .as_bool()
        .ok_or((field, "missing or not true/false".into()))
}

/// A SID string, or PowerShell's `SecurityIdentifier` object holding it in `Value`.
fn sid(value: &Value) -> Result<String, FieldError> {
    let raw = match &value["SID"] {
        Value::String(s) => s.as_str(),
        Value::Object(o) => o.get("Value").and_then(Value::as_str).unwrap_or_default(),
        Value::Null => return Err(("SID", "missing".into())),
        _ => "",
    };
    if is_sid(raw) {
        Ok(raw.to_string())
    } else {
        Err(("SID", "not a SID string (S-1-...)".into()))
    }
}

/// `S-1-` followed by dash-separated decimal numbers.
pub fn is_sid(text: &str) -> bool {
    text.strip_prefix("S-1-").is_some_and(|rest| {
        rest.split('-')
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
    })
}

/// `null` (never), `/Date(ms)/` (Windows PowerShell) or RFC 3339 (PowerShell 7).
fn last_logon(value: &Value) -> Result<Option<i64>, String> {
    let text = match value {
        Value::Null => return Ok(None),
        Value::String(s) => s.as_str(),
        _ => return Err("not null or a time string".into()),
    };
    if let Some(ms) = text
        .strip_prefix("/Date(")
        .and_then(|rest| rest.strip_suffix(")/"))
    {
        // An offset suffix (`/Date(ms+0100)/`) does not move the instant: ms are UTC.
        let digits = ms
            .char_indices()
            .skip(1)
            .find(|(_, c)| *c == '+' || *c == '-')
            .map_or(ms, |(cut, _)| &ms[..cut]);
        let ms: i64 = digits
            .parse()
            .map_err(|_| format!("{text:?} is not /Date(milliseconds)/"))?;
        return Ok(Some(ms.div_euclid(1000)));
    }
    OffsetDateTime::parse(text, &Rfc3339)
        .map(|t| Some(t.unix_timestamp()))
        .map_err(|e| format!("{text:?} is not an RFC 3339 time with offset: {e}"))
}

/// The machine's domain SID (`S-1-5-21-a-b-c`) from its accounts' SIDs.
fn machine_sid(accounts: &LocalAccounts) -> Option<&str> {
    accounts
        .users
        .iter()
        .filter(|u| u.sid.starts_with("S-1-5-21-"))
        .find_map(|u| u.sid.rsplit_once('-').map(|(domain, _)| domain))
}

/// Whether `user` is the built-in Guest (RID 501), whatever it is called on this host.
fn is_guest(user: &LocalUser) -> bool {
    user.sid.starts_with("S-1-5-21-") && user.sid.ends_with("-501")
}

/// A group member that is no local user of this host.
fn is_foreign(member: &Member, machine: Option<&str>) -> bool {
    match member.source {
        PrincipalSource::ActiveDirectory | PrincipalSource::AzureAd => true,
        PrincipalSource::Local | PrincipalSource::MicrosoftAccount => false,
        // Entra ID principals are `S-1-12-1-*`; a domain's are `S-1-5-21-*` of another domain.
        PrincipalSource::Unknown => {
            member.sid.starts_with("S-1-12-1-")
                || member.sid.rsplit_once('-').is_some_and(|(domain, _)| {
                    member.sid.starts_with("S-1-5-21-") && Some(domain) != machine
                })
        }
    }
}

fn in_group(group: &LocalGroup, user: &LocalUser) -> bool {
    group.members.iter().any(|m| m.sid == user.sid)
}

fn evidence(accounts: &LocalAccounts, detail: String) -> Evidence {
    Evidence {
        source: accounts.origin.clone(),
        line: 0,
        probe: PROBE.into(),
        detail,
    }
}

/// The last-login evidence in the Linux form (agent/src/inventory/lastlog.rs).
fn last_login(accounts: &LocalAccounts, user: &LocalUser) -> Evidence {
    let at = user
        .last_logon
        .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok())
        .and_then(|t| t.format(&Rfc3339).ok());
    Evidence {
        source: accounts.origin.clone(),
        line: 0,
        probe: lastlog::PROBE.into(),
        detail: match at {
            Some(at) => format!("{}: last login {at}", user.name),
            None => format!("{}: never logged in", user.name),
        },
    }
}

fn password_word(required: bool) -> &'static str {
    if required { "required" } else { "not_required" }
}

/// One `account` observation per local user, Administrators as an `admin_group` and Remote
/// Desktop Users as a `remote_desktop_group` (members by their local name, so the collector's
/// access list joins them), and the Guest account's state.
pub fn observations(accounts: &LocalAccounts) -> Vec<Observation> {
    let mut out = Vec::new();
    for user in &accounts.users {
        let admin = in_group(&accounts.administrators, user);
        let last = user
            .last_logon
            .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok())
            .and_then(|t| t.format(&Rfc3339).ok())
            .unwrap_or_else(|| "never".into());
        out.push(Observation {
            category: "account".into(),
            name: user.name.clone(),
            value: json!({
                "sid": user.sid,
                "enabled": user.enabled,
                "password_required": user.password_required,
                "password": password_word(user.password_required),
                "admin": admin,
                "admin_via": if admin { vec![accounts.administrators.name.clone()] } else { Vec::new() },
                "remote_desktop": in_group(&accounts.remote_desktop_users, user),
                "last_login": last,
            }),
            evidence: vec![evidence(
                accounts,
                format!(
                    "user {} {}: {}, password {}",
                    user.name,
                    user.sid,
                    if user.enabled { "enabled" } else { "disabled" },
                    password_word(user.password_required).replace('_', " ")
                ),
            )],
        });
    }
    // Only Administrators is an `admin_group`: the collector's access list calls every member
    // of one an administrator, which a Remote Desktop user is not.
    for (group, category) in [
        (&accounts.administrators, "admin_group"),
        (&accounts.remote_desktop_users, "remote_desktop_group"),
    ] {
        let members: Vec<String> = group
            .members
            .iter()
            .map(|m| {
                accounts
                    .users
                    .iter()
                    .find(|u| u.sid == m.sid)
                    .map_or_else(|| m.name.clone(), |u| u.name.clone())
            })
            .collect();
        out.push(Observation {
            category: category.into(),
            name: group.name.clone(),
            value: json!({ "sid": group.sid, "members": members }),
            evidence: vec![evidence(
                accounts,
                format!(
                    "group {} ({}): {} member(s)",
                    group.name,
                    group.sid,
                    members.len()
                ),
            )],
        });
    }
    if let Some(guest) = accounts.users.iter().find(|u| is_guest(u)) {
        out.push(Observation {
            category: "hardening".into(),
            name: "guest_account".into(),
            value: json!({ "name": guest.name, "enabled": guest.enabled }),
            evidence: vec![evidence(
                accounts,
                format!(
                    "user {} {}: {}",
                    guest.name,
                    guest.sid,
                    enabled_word(guest.enabled)
                ),
            )],
        });
    }
    out
}

fn enabled_word(enabled: bool) -> &'static str {
    if enabled { "enabled" } else { "disabled" }
}

/// `privileged_access` over the accounts, or `unknown` with why they could not be read.
pub fn control(accounts: Result<&LocalAccounts, String>) -> Control {
    let accounts = match accounts {
        Ok(accounts) => accounts,
        Err(reason) => {
            return Control {
                name: "privileged_access".into(),
                state: "unknown".into(),
                reason: format!("the local accounts could not be read: {reason}"),
                evidence: Vec::new(),
            };
        }
    };
    let admins = &accounts.administrators;
    let rdp = &accounts.remote_desktop_users;
    let mut items = Vec::new();
    let mut found = Vec::new();
    for user in accounts
        .users
        .iter()
        .filter(|u| u.enabled && in_group(admins, u))
    {
        if !user.password_required {
            items.push(format!(
                "administrator {} is enabled and needs no password (PasswordRequired false)",
                user.name
            ));
            found.push(evidence(
                accounts,
                format!(
                    "user {} {}: enabled, in {}, password not required",
                    user.name, user.sid, admins.name
                ),
            ));
        }
    }
    for guest in accounts.users.iter().filter(|u| u.enabled && is_guest(u)) {
        let groups: Vec<&str> = [admins, rdp]
            .into_iter()
            .filter(|g| in_group(g, guest))
            .map(|g| g.name.as_str())
            .collect();
        if !groups.is_empty() {
            items.push(format!(
                "the Guest account {} is enabled and a member of {}",
                guest.name,
                groups.join(" and ")
            ));
            found.push(evidence(
                accounts,
                format!(
                    "user {} {}: enabled, in {}",
                    guest.name,
                    guest.sid,
                    groups.join(", ")
                ),
            ));
        }
    }
    let (state, reason) = if items.is_empty() {
        (
            "restricted",
            format!(
                "every enabled local account in {} needs a password, and the Guest account is disabled or in neither {} nor {}",
                admins.name, admins.name, rdp.name
            ),
        )
    } else {
        ("exposed", items.join("; "))
    };
    found.extend(standing_evidence(accounts));
    Control {
        name: "privileged_access".into(),
        state: state.into(),
        reason,
        evidence: found,
    }
}

/// The evidence `privileged_access` carries in every state: each enabled local administrator's
/// last logon (for the collector's dormancy rule) and the members whose logons this host
/// cannot tell.
fn standing_evidence(accounts: &LocalAccounts) -> Vec<Evidence> {
    let admins = &accounts.administrators;
    let mut context: Vec<Evidence> = accounts
        .users
        .iter()
        .filter(|u| u.enabled && in_group(admins, u))
        .map(|u| last_login(accounts, u))
        .collect();
    let machine = machine_sid(accounts);
    let local = |m: &Member| accounts.users.iter().any(|u| u.sid == m.sid);
    for member in admins
        .members
        .iter()
        .filter(|m| !local(m) && !is_foreign(m, machine))
    {
        // A local group or a well-known principal: listed so the reviewer sees it, not judged.
        context.push(evidence(
            accounts,
            format!(
                "{} ({}, {}): in {}, not a local user account; its members are not expanded",
                member.name, member.sid, member.object_class, admins.name
            ),
        ));
    }
    for member in admins.members.iter().filter(|m| is_foreign(m, machine)) {
        context.push(evidence(
            accounts,
            format!(
                "{} ({}, {} {}): a domain principal in {}; its last logon is not known to this host",
                member.name,
                member.sid,
                member.source.as_str(),
                member.object_class,
                admins.name
            ),
        ));
    }
    context
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // In tests an unwrap that fails is the failing assertion.
mod tests {
    use super::*;

    const MACHINE: &str = "S-1-5-21-1004336348-1177238915-682003330";

    fn recorded(users: &str, admins: &str, rdp: &str) -> String {
        format!(
            r#"{{"Users":[{users}],
              "Administrators":{{"Name":"Administratörer","SID":"S-1-5-32-544","Members":[{admins}]}},
              "RemoteDesktopUsers":{{"Name":"Fjärrskrivbordsanvändare","SID":"S-1-5-32-555","Members":[{rdp}]}}}}"#
        )
    }

    fn user(name: &str, rid: u32, enabled: bool, required: bool, last: &str) -> String {
        format!(
            r#"{{"Name":"{name}","Enabled":{enabled},"PasswordRequired":{required},"LastLogon":{last},
               "SID":{{"BinaryLength":28,"AccountDomainSid":{{"Value":"{MACHINE}"}},"Value":"{MACHINE}-{rid}"}}}}"#
        )
    }

    fn member(name: &str, sid: &str, source: u32) -> String {
        json!({"Name": name, "SID": {"Value": sid}, "ObjectClass": "User", "PrincipalSource": source})
            .to_string()
    }

    #[test]
    fn both_powershell_time_forms_and_null() {
        assert_eq!(last_logon(&json!(null)), Ok(None));
        assert_eq!(
            last_logon(&json!("/Date(1700000000123)/")),
            Ok(Some(1_700_000_000))
        );
        assert_eq!(
            last_logon(&json!("/Date(1700000000123+0100)/")),
            Ok(Some(1_700_000_000))
        );
        assert_eq!(
            last_logon(&json!("2023-11-14T23:13:20.1234567+01:00")),
            Ok(Some(1_700_000_000))
        );
        assert!(
            last_logon(&json!("2023-11-14T23:13:20")).is_err(),
            "no offset"
        );
        assert!(last_logon(&json!(17)).is_err());
    }

    #[test]
    fn parses_powershell_5_output_with_sid_objects_and_enum_numbers() {
        let text = recorded(
            &[
                user(
                    "Administratör",
                    500,
                    true,
                    true,
                    r#""\/Date(1700000000000)\/""#,
                ),
                user("Gäst", 501, false, false, "null"),
            ]
            .join(","),
            &[
                member("SRV\\Administratör", &format!("{MACHINE}-500"), 1),
                member("KOMMUN\\Domain Admins", "S-1-5-21-1-2-3-512", 2),
            ]
            .join(","),
            "",
        );
        let accounts = parse_recorded(&text, "/recorded/local-accounts.json").unwrap();
        assert_eq!(accounts.users.len(), 2);
        assert_eq!(accounts.users[0].sid, format!("{MACHINE}-500"));
        assert_eq!(accounts.users[0].last_logon, Some(1_700_000_000));
        assert_eq!(accounts.administrators.name, "Administratörer");
        assert_eq!(
            accounts.administrators.members[1].source,
            PrincipalSource::ActiveDirectory
        );
        assert!(accounts.remote_desktop_users.members.is_empty());
    }

    #[test]
    fn a_list_of_one_may_be_a_bare_object_and_an_empty_group_null() {
        let text = format!(
            r#"{{"Users":{},"Administrators":{{"Name":"Administrators","Members":{}}},
                "RemoteDesktopUsers":{{"Name":"Remote Desktop Users","Members":null}}}}"#,
            user("anna", 1001, true, true, "null"),
            member("SRV\\anna", &format!("{MACHINE}-1001"), 1)
        );
        let accounts = parse_recorded(&text, "f").unwrap();
        assert_eq!(accounts.users.len(), 1);
        assert_eq!(accounts.administrators.members.len(), 1);
    }

    #[test]
    fn bad_input_names_the_file_and_field() {
        let cut = recorded(&user("anna", 1001, true, true, "null"), "", "");
        let e = parse_recorded(&cut[..cut.len() / 2], "/recorded/local-accounts.json").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("/recorded/local-accounts.json: (document)"),
            "{e}"
        );

        let wrong = recorded(
            &user("anna", 1001, true, true, "null").replace("true,\"Pass", "\"yes\",\"Pass"),
            "",
            "",
        );
        let e = parse_recorded(&wrong, "f").unwrap_err();
        assert_eq!(e.field, "Users[0].Enabled", "{e}");

        let no_sid = recorded(
            "",
            r#"{"Name":"SRV\\x","ObjectClass":"User","PrincipalSource":1}"#,
            "",
        );
        let e = parse_recorded(&no_sid, "f").unwrap_err();
        assert_eq!(e.field, "Administrators.Members[0].SID", "{e}");

        let bad_sid = recorded("", &member("x", "S-1-5-x", 1), "");
        assert!(parse_recorded(&bad_sid, "f").is_err());
        assert!(parse_recorded("[]", "f").is_err());
        assert!(
            parse_recorded(r#"{"Users":[]}"#, "f").is_err(),
            "groups missing"
        );
    }

    fn accounts(users: &[String], admins: &[String], rdp: &[String]) -> LocalAccounts {
        parse_recorded(
            &recorded(&users.join(","), &admins.join(","), &rdp.join(",")),
            "rec",
        )
        .unwrap()
    }

    #[test]
    fn exposed_names_the_passwordless_admin_and_the_guest() {
        let a = accounts(
            &[
                user("Administrator", 500, true, false, "null"),
                user("Guest", 501, true, false, "null"),
                user("olle", 1002, true, false, "null"),
            ],
            &[member("SRV\\Administrator", &format!("{MACHINE}-500"), 1)],
            &[member("SRV\\Guest", &format!("{MACHINE}-501"), 1)],
        );
        let c = control(Ok(&a));
        assert_eq!(c.state, "exposed", "{c:?}");
        assert!(
            c.reason
                .contains("administrator Administrator is enabled and needs no password")
        );
        assert!(
            c.reason.contains(
                "Guest account Guest is enabled and a member of Fjärrskrivbordsanvändare"
            )
        );
        assert!(!c.reason.contains("olle"), "not an administrator: {c:?}");
        assert!(
            c.evidence
                .iter()
                .any(|e| e.detail == "Administrator: never logged in" && e.probe == lastlog::PROBE)
        );
    }

    #[test]
    fn restricted_carries_last_logons_and_domain_principals_but_no_disabled_admin() {
        let a = accounts(
            &[
                user("Administrator", 500, false, true, "null"),
                user("Guest", 501, false, false, "null"),
                user("anna", 1001, true, true, r#""2026-01-15T08:30:00+01:00""#),
            ],
            &[
                member("SRV\\Administrator", &format!("{MACHINE}-500"), 1),
                member("SRV\\anna", &format!("{MACHINE}-1001"), 1),
                member("KOMMUN\\it-admin", "S-1-5-21-9-8-7-1109", 0),
                member("AzureAD\\per@kommun.example", "S-1-12-1-1-2-3-4", 3),
                member("NT AUTHORITY\\INTERACTIVE", "S-1-5-4", 0),
            ],
            &[member("SRV\\Guest", &format!("{MACHINE}-501"), 1)],
        );
        let c = control(Ok(&a));
        assert_eq!(c.state, "restricted", "{c:?}");
        let logins: Vec<&str> = c
            .evidence
            .iter()
            .filter(|e| e.probe == lastlog::PROBE)
            .map(|e| e.detail.as_str())
            .collect();
        assert_eq!(logins, ["anna: last login 2026-01-15T07:30:00Z"]);
        let domain: Vec<&str> = c
            .evidence
            .iter()
            .filter(|e| e.detail.contains("domain principal"))
            .map(|e| e.detail.as_str())
            .collect();
        assert_eq!(domain.len(), 2, "{domain:?}");
        assert!(domain[0].starts_with("KOMMUN\\it-admin (S-1-5-21-9-8-7-1109"));
        assert!(
            c.evidence.iter().any(|e| e.detail
                == "NT AUTHORITY\\INTERACTIVE (S-1-5-4, User): in Administratörer, not a local user account; its members are not expanded"),
            "{c:?}"
        );

        let observations = observations(&a);
        let anna = observations.iter().find(|o| o.name == "anna").unwrap();
        assert_eq!(anna.value["admin"], true);
        assert_eq!(anna.value["admin_via"], json!(["Administratörer"]));
        assert_eq!(anna.value["last_login"], "2026-01-15T07:30:00Z");
        let group = observations
            .iter()
            .find(|o| o.category == "admin_group")
            .unwrap();
        assert_eq!(group.value["members"][1], "anna");
        let guest = observations
            .iter()
            .find(|o| o.name == "guest_account")
            .unwrap();
        assert_eq!(guest.value["enabled"], false);
    }

    #[test]
    fn unreadable_accounts_are_unknown_with_the_reason() {
        let c = control(Err("/recorded/local-accounts.json: (document): EOF".into()));
        assert_eq!(c.state, "unknown");
        assert!(c.reason.contains("/recorded/local-accounts.json"));
    }
}
