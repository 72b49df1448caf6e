//! Local accounts that can log in: `/etc/passwd` joined with `/etc/shadow` when readable.
//!
//! Owns the password *state* of each account with a login shell: `empty`, `locked`, `set`, or
//! `unknown` when the shadow file cannot be read. It must never copy a password hash anywhere
//! — not into observations, evidence or errors — so shadow lines are never quoted and parse
//! errors name only the file and line number.
//!
//! Also the members of the administrative groups in `/etc/group` (`sudo`, `wheel`, `admin`,
//! `root`), so an owner's access review sees who holds high privileges, and each account's last
//! login ([`lastlog`](super::lastlog)), so it sees who holds them without using them.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::json;

use super::config_file::{self, fact_error};
use super::lastlog::{self, LastLogin};
use super::{Evidence, Inventory, Observation};

const PASSWD: &str = "/etc/passwd";
const SHADOW: &str = "/etc/shadow";
const GROUP: &str = "/etc/group";
/// Groups whose members get root through sudo on Debian (`sudo`), RHEL (`wheel`), older Ubuntu
/// (`admin`), or are root's own group.
const ADMIN_GROUPS: [&str; 4] = ["sudo", "wheel", "admin", "root"];
const PROBE: &str = "accounts";
/// Shells that refuse interactive logins (matched on the file name).
const NO_LOGIN_SHELLS: [&str; 5] = ["nologin", "false", "sync", "shutdown", "halt"];

/// Whether and how an account's password can be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PasswordState {
    /// No password: anyone may log in where empty passwords are allowed.
    Empty,
    /// `!` or `*` prefix: password logins are impossible.
    Locked,
    /// A password is set.
    Set,
    /// The shadow entry could not be read.
    Unknown,
}

impl PasswordState {
    /// The name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            PasswordState::Empty => "empty",
            PasswordState::Locked => "locked",
            PasswordState::Set => "set",
            PasswordState::Unknown => "unknown",
        }
    }

    /// Classifies a password field without keeping it.
    fn of(field: &str) -> PasswordState {
        if field.is_empty() {
            PasswordState::Empty
        } else if field.starts_with('!') || field.starts_with('*') {
            PasswordState::Locked
        } else {
            PasswordState::Set
        }
    }
}

/// A local account with a login shell.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    /// User name.
    pub name: String,
    /// Numeric user id.
    pub uid: u32,
    /// Login shell (`/bin/sh` when the field is empty, as login(1) does).
    pub shell: String,
    /// Password state.
    pub password: PasswordState,
    /// The passwd line (described, not quoted) and the shadow line when used.
    pub evidence: Vec<Evidence>,
    /// The administrative groups ([`ADMIN_GROUPS`]) that list it as a member.
    pub admin_groups: Vec<String>,
    /// From the login records; `None` until [`collect`] has read them.
    pub last_login: Option<LastLogin>,
}

/// Reads the accounts under `root` and records one observation per login-capable account.
pub fn collect(root: &Path, inventory: &mut Inventory) -> Vec<Account> {
    let passwd = match config_file::read(root, PASSWD) {
        Ok(Some(text)) => text,
        Ok(None) => return Vec::new(),
        Err(error) => {
            inventory.errors.push(fact_error(PROBE, PASSWD, &error));
            return Vec::new();
        }
    };
    let shadow = match config_file::read(root, SHADOW) {
        Ok(text) => text.map(|t| parse_shadow(&t)),
        Err(error) => {
            inventory.errors.push(fact_error(PROBE, SHADOW, &error));
            None
        }
    };
    let (mut accounts, problems) = parse_passwd(&passwd, shadow.as_ref());
    inventory
        .errors
        .extend(problems.into_iter().map(|p| fact_error(PROBE, PASSWD, &p)));
    let groups = match config_file::read(root, GROUP) {
        Ok(Some(text)) => admin_groups(&text),
        Ok(None) => Vec::new(),
        Err(error) => {
            inventory.errors.push(fact_error(PROBE, GROUP, &error));
            Vec::new()
        }
    };
    for account in &mut accounts {
        account.admin_groups = groups
            .iter()
            .filter(|g| {
                g.value["members"]
                    .as_array()
                    .is_some_and(|m| m.iter().any(|v| v.as_str() == Some(&account.name)))
            })
            .map(|g| g.name.clone())
            .collect();
    }
    let names: Vec<(&str, u32)> = accounts.iter().map(|a| (a.name.as_str(), a.uid)).collect();
    let mut logins = lastlog::last_logins(root, &names, PROBE, &mut inventory.errors);
    for account in &mut accounts {
        account.last_login = logins.remove(&account.name);
    }
    inventory
        .observations
        .extend(accounts.iter().map(observation));
    inventory.observations.extend(groups);
    accounts
}

/// `sudo:x:27:anna,erik` -> an `admin_group` observation `sudo` with members `[anna, erik]`, for
/// the groups in [`ADMIN_GROUPS`] only.
pub fn admin_groups(text: &str) -> Vec<Observation> {
    text.lines()
        .enumerate()
        .filter_map(|(index, line)| {
            let mut fields = line.split(':');
            let name = fields.next()?.trim();
            if !ADMIN_GROUPS.contains(&name) {
                return None;
            }
            let gid = fields.nth(1)?;
            let members: Vec<&str> = fields
                .next()
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|m| !m.is_empty())
                .collect();
            Some(Observation {
                category: "admin_group".into(),
                name: name.to_string(),
                value: json!({ "gid": gid, "members": members }),
                evidence: vec![Evidence {
                    source: GROUP.into(),
                    line: super::input::line_no(index),
                    probe: PROBE.into(),
                    detail: line.trim().into(),
                }],
            })
        })
        .collect()
}

/// Shadow password states by user, with the line number; the hash is dropped here.
pub fn parse_shadow(text: &str) -> BTreeMap<String, (PasswordState, usize)> {
    text.lines()
        .enumerate()
        .filter_map(|(index, line)| {
            let mut fields = line.split(':');
            let name = fields.next()?.trim();
            let password = fields.next()?;
            (!name.is_empty() && !name.starts_with('#'))
                .then(|| (name.to_string(), (PasswordState::of(password), index + 1)))
        })
        .collect()
}

/// Accounts with a login shell, and messages for malformed lines (no line content in them).
pub fn parse_passwd(
    text: &str,
    shadow: Option<&BTreeMap<String, (PasswordState, usize)>>,
) -> (Vec<Account>, Vec<String>) {
    let mut accounts = Vec::new();
    let mut problems = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split(':').collect();
        if fields.len() != 7 {
            problems.push(format!(
                "line {number}: expected 7 fields, found {}",
                fields.len()
            ));
            continue;
        }
        let Ok(uid) = fields[2].parse::<u32>() else {
            problems.push(format!("line {number}: user id is not a number"));
            continue;
        };
        let shell = if fields[6].is_empty() {
            "/bin/sh"
        } else {
            fields[6]
        };
        if !is_login_shell(shell) {
            continue;
        }
        accounts.push(account(fields[0], uid, shell, fields[1], number, shadow));
    }
    (accounts, problems)
}

fn account(
    name: &str,
    uid: u32,
    shell: &str,
    passwd_field: &str,
    number: usize,
    shadow: Option<&BTreeMap<String, (PasswordState, usize)>>,
) -> Account {
    let mut evidence = vec![Evidence {
        source: PASSWD.into(),
        line: u32::try_from(number).unwrap_or(u32::MAX),
        probe: PROBE.into(),
        // Described rather than quoted: old systems keep the hash in passwd's second field.
        detail: format!("user {name} uid {uid} shell {shell}"),
    }];
    // "x" defers to shadow; anything else is the password field itself (pre-shadow systems).
    let password = if passwd_field == "x" {
        match shadow.and_then(|s| s.get(name)) {
            Some((state, line)) => {
                evidence.push(Evidence {
                    source: SHADOW.into(),
                    line: u32::try_from(*line).unwrap_or(u32::MAX),
                    probe: PROBE.into(),
                    detail: format!("user {name}: password {}", state.as_str()),
                });
                *state
            }
            None => PasswordState::Unknown,
        }
    } else {
        PasswordState::of(passwd_field)
    };
    Account {
        name: name.to_string(),
        uid,
        shell: shell.to_string(),
        password,
        evidence,
        admin_groups: Vec::new(),
        last_login: None,
    }
}

fn is_login_shell(shell: &str) -> bool {
    let base = shell.rsplit('/').next().unwrap_or(shell);
    !NO_LOGIN_SHELLS.contains(&base)
}

fn observation(account: &Account) -> Observation {
    let mut evidence = account.evidence.clone();
    // `null` when the login records could not be read.
    let last_login = match &account.last_login {
        Some(LastLogin::At(seconds, record)) => {
            evidence.push(record.clone());
            time::OffsetDateTime::from_unix_timestamp(*seconds)
                .ok()
                .and_then(|t| {
                    t.format(&time::format_description::well_known::Rfc3339)
                        .ok()
                })
                .map(serde_json::Value::String)
                .unwrap_or_default()
        }
        Some(LastLogin::Never(record)) => {
            evidence.push(record.clone());
            "never".into()
        }
        Some(LastLogin::Unknown(_)) | None => serde_json::Value::Null,
    };
    Observation {
        category: "account".into(),
        name: account.name.clone(),
        value: json!({
            "uid": account.uid,
            "shell": account.shell,
            "password": account.password.as_str(),
            "last_login": last_login,
        }),
        evidence,
    }
}

#[cfg(test)]
// Tests unwrap: a panic there is a test failure pointing at its line.
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::inventory::test_support::tree;

    const HASH: &str = "$y$j9T$abcdefghijklmnop$QRSTUVWXYZ0123456789abcdefghijklmnopqrstu";

    fn passwd() -> String {
        "root:x:0:0:root:/root:/bin/bash\n\
         daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n\
         sync:x:4:65534:sync:/bin:/bin/sync\n\
         alice:x:1000:1000:Alice:/home/alice:/bin/bash\n\
         bob:x:1001:1001::/home/bob:\n\
         svc:x:999:999::/var/lib/svc:/bin/false\n\
         carol:x:1002:1002::/home/carol:/bin/zsh\n"
            .to_string()
    }

    fn shadow() -> String {
        format!(
            "root:*:19000:0:99999:7:::\ndaemon:*:19000::::::\nalice:{HASH}:19000:0:99999:7:::\nbob::19000::::::\ncarol:!{HASH}:19000::::::\n"
        )
    }

    #[test]
    fn states_and_login_shells() {
        let tmp = tree(&[("/etc/passwd", &passwd()), ("/etc/shadow", &shadow())]);
        let mut inventory = Inventory::default();
        let accounts = collect(tmp.path(), &mut inventory);
        let states: Vec<(&str, &str)> = accounts
            .iter()
            .map(|a| (a.name.as_str(), a.password.as_str()))
            .collect();
        assert_eq!(
            states,
            [
                ("root", "locked"),
                ("alice", "set"),
                ("bob", "empty"),
                ("carol", "locked")
            ]
        );
        assert_eq!(accounts[2].shell, "/bin/sh");
        assert_eq!(accounts[1].evidence[1].line, 3);
        assert!(inventory.errors.is_empty());
    }

    #[test]
    fn hash_never_leaves_the_parser() {
        let broken_shadow = format!("{}garbage{HASH}\n", shadow());
        let legacy = format!(
            "{}dave:{HASH}:1003:1003::/home/dave:/bin/bash\nbad:{HASH}\n",
            passwd()
        );
        let tmp = tree(&[("/etc/passwd", &legacy), ("/etc/shadow", &broken_shadow)]);
        let mut inventory = Inventory::default();
        let accounts = collect(tmp.path(), &mut inventory);
        assert_eq!(accounts.last().unwrap().password, PasswordState::Set);
        assert_eq!(inventory.errors.len(), 1);
        let everything = serde_json::to_string(&inventory).unwrap() + &format!("{accounts:?}");
        assert!(
            !everything.contains("abcdefghijklmnop"),
            "hash leaked: {everything}"
        );
    }

    #[test]
    fn unreadable_shadow_gives_unknown() {
        let tmp = tree(&[("/etc/passwd", &passwd()), ("/etc/shadow/x", "")]);
        let mut inventory = Inventory::default();
        let accounts = collect(tmp.path(), &mut inventory);
        assert!(
            accounts
                .iter()
                .all(|a| a.password == PasswordState::Unknown)
        );
        assert_eq!(inventory.errors[0].source, "/etc/shadow");
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod group_tests {
    #[test]
    fn admin_groups_and_their_members() {
        let found = super::admin_groups(
            "root:x:0:\nadm:x:4:syslog\nsudo:x:27:anna, erik\nusers:x:100:\nwheel:x:10\n",
        );
        let names: Vec<&str> = found.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(names, ["root", "sudo", "wheel"]);
        assert_eq!(
            found[1].value["members"],
            serde_json::json!(["anna", "erik"])
        );
        assert_eq!(found[1].evidence[0].line, 3);
        assert_eq!(found[2].value["members"], serde_json::json!([]));
    }
}
