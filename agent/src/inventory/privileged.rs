//! The `privileged_access` control (policy 6.4: high privileges get special attention), from
//! facts the sshd, accounts and sudo collectors already read:
//! - root may log in over SSH with a password: `PermitRootLogin yes` (globally or in a `Match`
//!   block) while password or keyboard-interactive authentication is on there;
//! - an enabled account with a login shell has an empty password;
//! - a sudo rule lets people run commands without authenticating: a `NOPASSWD:` rule for a
//!   group, an alias, `ALL`, or a login account with uid >= 1000, and any
//!   `Defaults !authenticate`. Rules for system accounts (uid < 1000, or no login shell) are
//!   service plumbing and are listed as observations by `sudo`, not judged here.
//!
//!
//! `exposed` names each item in its evidence; `restricted` when none holds and every input was
//! readable; `unknown` when the shadow file or the administrators' login records could not be
//! read and nothing else is exposed.
//!
//! Dormant administrators are judged by the collector, not here, because how long is too long
//! is the organisation's setting (`[rules] dormant_admin_after_days`): the control carries one
//! [`PROBE`](super::lastlog::PROBE) evidence per member of an administrative group, in every state.

use super::accounts::{Account, PasswordState};
use super::lastlog::LastLogin;
use super::sshd::{Keyword, SshdConfig};
use super::sudo::NoAuthRule;
use super::{Control, Evidence};

/// The verdict over the three sources.
pub fn control(
    sshd: Option<&SshdConfig>,
    accounts: &[Account],
    no_auth_sudo: &[NoAuthRule],
) -> Control {
    let mut items: Vec<String> = Vec::new();
    let mut evidence: Vec<Evidence> = Vec::new();
    if let Some(config) = sshd {
        root_password_login(config, &mut items, &mut evidence);
    }
    for account in accounts
        .iter()
        .filter(|a| a.password == PasswordState::Empty)
    {
        items.push(format!("account {} has an empty password", account.name));
        evidence.extend(account.evidence.iter().cloned());
    }
    for rule in no_auth_sudo.iter().filter(|r| for_people(r, accounts)) {
        items.push(format!("sudo without authentication: {}", rule.rule));
        evidence.push(rule.evidence.clone());
    }
    let administrators: Vec<&Account> = accounts
        .iter()
        .filter(|a| !a.admin_groups.is_empty() && a.uid != 0)
        .collect();
    let logins: Vec<Evidence> = administrators
        .iter()
        .filter_map(|a| a.last_login.as_ref().and_then(LastLogin::evidence))
        .cloned()
        .collect();
    let unread: Vec<&str> = administrators
        .iter()
        .filter(|a| !matches!(a.last_login, Some(LastLogin::At(..) | LastLogin::Never(_))))
        .map(|a| a.name.as_str())
        .collect();
    let control = |state: &str, reason: String, mut evidence: Vec<Evidence>| {
        evidence.extend(logins.iter().cloned());
        Control {
            name: "privileged_access".into(),
            state: state.into(),
            reason,
            evidence,
        }
    };
    if !items.is_empty() {
        return control("exposed", items.join("; "), evidence);
    }
    if accounts
        .iter()
        .any(|a| a.password == PasswordState::Unknown)
    {
        return control(
            "unknown",
            "the shadow file could not be read: empty passwords cannot be ruled out".into(),
            Vec::new(),
        );
    }
    if !unread.is_empty() {
        return control(
            "unknown",
            format!(
                "the login records could not be read: dormant administrators ({}) cannot be ruled out",
                unread.join(", ")
            ),
            Vec::new(),
        );
    }
    control(
        "restricted",
        "root needs more than a password over SSH, no login account has an empty password, and no person's sudo rule skips authentication".into(),
        Vec::new(),
    )
}

fn password_on(value_of: impl Fn(Keyword) -> String) -> bool {
    value_of(Keyword::PasswordAuthentication) == "yes"
        || value_of(Keyword::KbdInteractiveAuthentication) == "yes"
}

fn root_password_login(config: &SshdConfig, items: &mut Vec<String>, evidence: &mut Vec<Evidence>) {
    let (permit, permit_evidence) = config.global_value(Keyword::PermitRootLogin);
    if permit == "yes" && password_on(|k| config.global_value(k).0) {
        items.push("root may log in over SSH with a password (PermitRootLogin yes)".into());
        evidence.extend(permit_evidence.cloned());
    }
    for block in &config.match_blocks {
        let (permit, permit_evidence) = config.value_in(block, Keyword::PermitRootLogin);
        if block.settings.contains_key(&Keyword::PermitRootLogin)
            && permit == "yes"
            && password_on(|k| config.value_in(block, k).0)
        {
            items.push(format!(
                "root may log in over SSH with a password for Match {}",
                block.criteria
            ));
            evidence.push(block.evidence.clone());
            evidence.extend(permit_evidence);
        }
    }
}

/// Whether a rule that skips authentication applies to people rather than a service account.
fn for_people(rule: &NoAuthRule, accounts: &[Account]) -> bool {
    if rule.kind != "nopasswd" {
        // `Defaults !authenticate` switches authentication off for everyone it covers.
        return true;
    }
    let users = rule.rule.split_whitespace().next().unwrap_or_default();
    users.split(',').any(|user| {
        let user = user.trim().trim_start_matches('!');
        if user == "root" {
            return false;
        }
        if user.starts_with('%') || user == "ALL" || user.chars().all(|c| !c.is_lowercase()) {
            return true;
        }
        accounts.iter().any(|a| a.name == user && a.uid >= 1000)
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // In tests an unwrap that fails is the failing assertion.
mod tests {
    use std::path::Path;

    use super::*;

    fn account(name: &str, uid: u32, password: PasswordState) -> Account {
        Account {
            name: name.into(),
            uid,
            shell: "/bin/bash".into(),
            password,
            evidence: vec![Evidence {
                source: "/etc/shadow".into(),
                line: 3,
                probe: "accounts".into(),
                detail: format!("{name}: password {}", password.as_str()),
            }],
            admin_groups: Vec::new(),
            last_login: None,
        }
    }

    fn nopasswd(rule: &str) -> NoAuthRule {
        NoAuthRule {
            kind: "nopasswd",
            rule: rule.into(),
            evidence: Evidence {
                source: "/etc/sudoers.d/90-admins".into(),
                line: 1,
                probe: "sudo".into(),
                detail: rule.into(),
            },
        }
    }

    fn sshd(text: &str) -> SshdConfig {
        super::super::sshd::parse_text(Path::new("/nonexistent"), "/etc/ssh/sshd_config", text)
    }

    #[test]
    fn each_exposure_is_named_with_its_evidence() {
        let people = [account("anna", 1000, PasswordState::Set)];
        let clean = control(Some(&sshd("PasswordAuthentication yes\n")), &people, &[]);
        assert_eq!(clean.state, "restricted", "{clean:?}");

        let root = control(
            Some(&sshd("PermitRootLogin yes\nPasswordAuthentication yes\n")),
            &people,
            &[],
        );
        assert_eq!(root.state, "exposed");
        assert!(root.reason.contains("PermitRootLogin yes"));
        assert_eq!(root.evidence[0].line, 1);
        // Keys only: root login is not a password login.
        let keys = control(
            Some(&sshd(
                "PermitRootLogin yes\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n",
            )),
            &people,
            &[],
        );
        assert_eq!(keys.state, "restricted", "{keys:?}");
        let matched = control(
            Some(&sshd(
                "PasswordAuthentication no\nMatch Address 10.0.0.0/8\n  PermitRootLogin yes\n  PasswordAuthentication yes\n",
            )),
            &people,
            &[],
        );
        assert_eq!(matched.state, "exposed", "{matched:?}");
        assert!(matched.reason.contains("Match Address 10.0.0.0/8"));

        let empty = control(None, &[account("guest", 1001, PasswordState::Empty)], &[]);
        assert_eq!(empty.state, "exposed");
        assert!(empty.reason.contains("guest has an empty password"));

        for rule in [
            "%sudo ALL=(ALL:ALL) NOPASSWD: ALL",
            "anna ALL=(ALL) NOPASSWD: ALL",
            "ADMINS ALL=NOPASSWD: ALL",
        ] {
            let sudo = control(None, &people, &[nopasswd(rule)]);
            assert_eq!(sudo.state, "exposed", "{rule}");
            assert_eq!(sudo.evidence[0].source, "/etc/sudoers.d/90-admins");
        }
        // A service account's NOPASSWD rule is not a person's.
        let service = control(
            None,
            &people,
            &[nopasswd(
                "nagios ALL=(root) NOPASSWD: /usr/lib/nagios/check_raid",
            )],
        );
        assert_eq!(service.state, "restricted", "{service:?}");

        let unreadable = control(None, &[account("anna", 1000, PasswordState::Unknown)], &[]);
        assert_eq!(unreadable.state, "unknown");
    }

    #[test]
    fn administrators_carry_their_last_login_in_every_state() {
        let login = |name: &str| Evidence {
            source: "/var/log/lastlog".into(),
            line: 0,
            probe: crate::inventory::lastlog::PROBE.into(),
            detail: format!("{name}: never logged in"),
        };
        let mut anna = account("anna", 1000, PasswordState::Set);
        anna.admin_groups = vec!["sudo".into()];
        anna.last_login = Some(LastLogin::Never(login("anna")));
        let erik = account("erik", 1001, PasswordState::Set);
        let clean = control(None, &[anna.clone(), erik.clone()], &[]);
        assert_eq!(clean.state, "restricted", "{clean:?}");
        assert_eq!(clean.evidence, [login("anna")], "only administrators");
        let exposed = control(
            None,
            &[anna.clone()],
            &[nopasswd("anna ALL=(ALL) NOPASSWD: ALL")],
        );
        assert_eq!(exposed.state, "exposed");
        assert_eq!(exposed.evidence.last(), Some(&login("anna")));

        anna.last_login = Some(LastLogin::Unknown("no files".into()));
        let unread = control(None, &[anna, erik], &[]);
        assert_eq!(unread.state, "unknown");
        assert!(
            unread.reason.contains("dormant administrators (anna)"),
            "{unread:?}"
        );
    }
}
