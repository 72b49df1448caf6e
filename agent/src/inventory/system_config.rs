//! Configuration facts that protect a host: firewall, automatic updates, time sync, audit.
//!
//! All from files under the root plus the enabled units from `units`:
//! - firewall: `/etc/nftables.conf` with a base chain (`hook input`) and `nftables.service`
//!   enabled; `/etc/ufw/ufw.conf` `ENABLED=yes`; `firewalld.service` enabled;
//!   `/etc/iptables/rules.v4` with `-A` rules and `netfilter-persistent.service` enabled; and,
//!   as a live hint, legacy iptables tables in `/proc/net/ip_tables_names`. The loaded ruleset
//!   itself needs netlink (`nft list ruleset`), which this module does not use: `configured`
//!   means "set up to load at boot", not "loaded now".
//! - automatic updates: apt's `APT::Periodic::Unattended-Upgrade "1"` in `/etc/apt/apt.conf.d/*`
//!   (files in lexical order, the last setting wins, as apt reads them), or a `dnf-automatic`
//!   timer enabled.
//! - time sync: chrony, systemd-timesyncd, ntpd, ntpsec or openntpd enabled.
//! - audit: `auditd.service` enabled and `/etc/audit/auditd.conf` present.

use std::path::Path;

use serde_json::json;

use super::input::{line_no, list_dir, read_bounded};
use super::units::EnabledUnit;
use super::{Evidence, FactError, Observation};

const COLLECTOR: &str = "system_config";
const LIMIT: u64 = 1024 * 1024;
const TIME_SYNC_UNITS: &[&str] = &[
    "chrony.service",
    "chronyd.service",
    "systemd-timesyncd.service",
    "ntp.service",
    "ntpd.service",
    "ntpsec.service",
    "openntpd.service",
];

/// Pushes the `config` observations: `firewall`, `automatic_updates`, `time_sync`, `audit`.
pub fn collect(
    root: &Path,
    units: &[EnabledUnit],
    observations: &mut Vec<Observation>,
    errors: &mut Vec<FactError>,
) {
    observations.push(firewall(root, units, errors));
    observations.push(automatic_updates(root, units, errors));
    observations.push(time_sync(units));
    observations.push(audit(root, units, errors));
}

fn enabled<'a>(units: &'a [EnabledUnit], name: &str) -> Option<&'a EnabledUnit> {
    units.iter().find(|u| u.name == name)
}

fn unit_evidence(unit: &EnabledUnit) -> Evidence {
    unit.evidence(COLLECTOR)
}

fn line_evidence(source: &str, index: usize, line: &str) -> Evidence {
    Evidence {
        source: source.into(),
        line: line_no(index),
        probe: COLLECTOR.into(),
        detail: line.trim().into(),
    }
}

fn config(name: &str, value: serde_json::Value, evidence: Vec<Evidence>) -> Observation {
    Observation {
        category: "config".into(),
        name: name.into(),
        value,
        evidence,
    }
}

/// First line of `text` matching `pred`, with its index.
fn find_line(text: &str, pred: impl Fn(&str) -> bool) -> Option<(usize, &str)> {
    text.lines().enumerate().find(|(_, line)| {
        let line = line.trim();
        !line.starts_with('#') && pred(line)
    })
}

fn firewall(root: &Path, units: &[EnabledUnit], errors: &mut Vec<FactError>) -> Observation {
    let mut mechanisms = Vec::new();
    let mut evidence = Vec::new();
    let mut configured = false;
    let mut file_rule = |file: &str,
                         pred: &dyn Fn(&str) -> bool,
                         unit: Option<&str>,
                         name: &str,
                         errors: &mut Vec<FactError>| {
        let Some(input) = read_bounded(root, file, LIMIT, COLLECTOR, errors) else {
            return;
        };
        let Some((index, line)) = find_line(&input.text, pred) else {
            return;
        };
        let unit_on = unit.map(|u| enabled(units, u));
        let active = match unit_on {
            Some(Some(unit)) => {
                evidence.push(unit_evidence(unit));
                true
            }
            Some(None) => false,
            None => true,
        };
        evidence.push(line_evidence(file, index, line));
        configured |= active;
        mechanisms.push(json!({ "name": name, "rules_file": file, "enabled_at_boot": active }));
    };
    file_rule(
        "/etc/nftables.conf",
        &|l| l.contains("hook input"),
        Some("nftables.service"),
        "nftables",
        errors,
    );
    file_rule(
        "/etc/ufw/ufw.conf",
        &|l| l.replace(' ', "").eq_ignore_ascii_case("ENABLED=yes"),
        None,
        "ufw",
        errors,
    );
    file_rule(
        "/etc/iptables/rules.v4",
        &|l| l.starts_with("-A "),
        Some("netfilter-persistent.service"),
        "iptables",
        errors,
    );
    if let Some(unit) = enabled(units, "firewalld.service") {
        configured = true;
        evidence.push(unit_evidence(unit));
        mechanisms.push(json!({ "name": "firewalld", "enabled_at_boot": true }));
    }
    let legacy_tables = read_bounded(root, "/proc/net/ip_tables_names", LIMIT, COLLECTOR, errors)
        .map(|input| {
            input
                .text
                .split_whitespace()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    if !legacy_tables.is_empty() {
        evidence.push(Evidence {
            source: "/proc/net/ip_tables_names".into(),
            line: 0,
            probe: COLLECTOR.into(),
            detail: legacy_tables.join(" "),
        });
    }
    config(
        "firewall",
        json!({ "configured": configured, "mechanisms": mechanisms, "loaded_iptables_tables": legacy_tables }),
        evidence,
    )
}

fn automatic_updates(
    root: &Path,
    units: &[EnabledUnit],
    errors: &mut Vec<FactError>,
) -> Observation {
    let mut setting: Option<(bool, Evidence)> = None;
    for (name, _) in list_dir(root, "/etc/apt/apt.conf.d", COLLECTOR, errors) {
        let file = format!("/etc/apt/apt.conf.d/{name}");
        let Some(input) = read_bounded(root, &file, LIMIT, COLLECTOR, errors) else {
            continue;
        };
        for (index, line) in input.text.lines().enumerate() {
            if let Some(on) = parse_unattended(line) {
                setting = Some((on, line_evidence(&file, index, line)));
            }
        }
    }
    let dnf = ["dnf-automatic.timer", "dnf-automatic-install.timer"]
        .iter()
        .find_map(|name| enabled(units, name));
    let apt_on = setting.as_ref().is_some_and(|(on, _)| *on);
    let mut evidence: Vec<Evidence> = setting.map(|(_, e)| e).into_iter().collect();
    evidence.extend(dnf.map(unit_evidence));
    let mechanism = match (apt_on, dnf) {
        (true, _) => "apt unattended-upgrades",
        (false, Some(_)) => "dnf-automatic",
        _ => "none",
    };
    config(
        "automatic_updates",
        json!({ "enabled": apt_on || dnf.is_some(), "mechanism": mechanism }),
        evidence,
    )
}

/// `APT::Periodic::Unattended-Upgrade "1";` -> `Some(true)`; `"0"` -> `Some(false)`.
pub fn parse_unattended(line: &str) -> Option<bool> {
    let line = line.trim();
    if line.starts_with("//") || line.starts_with('#') {
        return None;
    }
    let rest = line.strip_prefix("APT::Periodic::Unattended-Upgrade")?;
    let value = rest.trim().trim_end_matches(';').trim().trim_matches('"');
    match value {
        "0" | "false" => Some(false),
        v if v.parse::<u32>().is_ok_and(|n| n > 0) || v == "true" => Some(true),
        _ => None,
    }
}

fn time_sync(units: &[EnabledUnit]) -> Observation {
    let on: Vec<&EnabledUnit> = TIME_SYNC_UNITS
        .iter()
        .filter_map(|name| enabled(units, name))
        .collect();
    config(
        "time_sync",
        json!({ "enabled": !on.is_empty(), "services": on.iter().map(|u| u.name.as_str()).collect::<Vec<_>>() }),
        on.into_iter().map(unit_evidence).collect(),
    )
}

fn audit(root: &Path, units: &[EnabledUnit], errors: &mut Vec<FactError>) -> Observation {
    let unit = enabled(units, "auditd.service");
    let conf = read_bounded(root, "/etc/audit/auditd.conf", LIMIT, COLLECTOR, errors);
    let mut evidence: Vec<Evidence> = unit.map(unit_evidence).into_iter().collect();
    if conf.is_some() {
        evidence.push(Evidence {
            source: "/etc/audit/auditd.conf".into(),
            line: 0,
            probe: COLLECTOR.into(),
            detail: "present".into(),
        });
    }
    config(
        "audit",
        json!({ "enabled": unit.is_some(), "config_present": conf.is_some() }),
        evidence,
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // In tests an unwrap that fails is the failing assertion.
mod tests {
    use super::*;

    fn unit(name: &str) -> EnabledUnit {
        EnabledUnit {
            name: name.into(),
            wanted_by: vec!["multi-user.target".into()],
            evidence_path: format!("/etc/systemd/system/multi-user.target.wants/{name}"),
        }
    }

    #[test]
    fn unattended_upgrade_lines() {
        assert_eq!(
            parse_unattended("APT::Periodic::Unattended-Upgrade \"1\";"),
            Some(true)
        );
        assert_eq!(
            parse_unattended("  APT::Periodic::Unattended-Upgrade \"0\";"),
            Some(false)
        );
        assert_eq!(
            parse_unattended("// APT::Periodic::Unattended-Upgrade \"1\";"),
            None
        );
        assert_eq!(
            parse_unattended("APT::Periodic::Update-Package-Lists \"1\";"),
            None
        );
        assert_eq!(
            parse_unattended("APT::Periodic::Unattended-Upgrade \"x"),
            None
        );
    }

    #[test]
    fn fixture_config_facts() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        for (path, text) in [
            (
                "etc/apt/apt.conf.d/20auto-upgrades",
                "APT::Periodic::Update-Package-Lists \"1\";\nAPT::Periodic::Unattended-Upgrade \"1\";\n",
            ),
            (
                "etc/nftables.conf",
                "#!/usr/sbin/nft -f\ntable inet filter {\n  chain input {\n    type filter hook input priority 0; policy drop;\n  }\n}\n",
            ),
            (
                "etc/audit/auditd.conf",
                "log_file = /var/log/audit/audit.log\n",
            ),
        ] {
            std::fs::create_dir_all(root.join(path).parent().unwrap()).unwrap();
            std::fs::write(root.join(path), text).unwrap();
        }
        let units = [unit("nftables.service"), unit("chrony.service")];
        let (mut observations, mut errors) = (Vec::new(), Vec::new());
        collect(root, &units, &mut observations, &mut errors);
        assert!(errors.is_empty(), "{errors:?}");
        let by = |name: &str| {
            observations
                .iter()
                .find(|o| o.name == name)
                .unwrap()
                .clone()
        };
        let firewall = by("firewall");
        assert_eq!(firewall.value["configured"], true);
        assert!(
            firewall
                .evidence
                .iter()
                .any(|e| e.source == "/etc/nftables.conf" && e.line == 4)
        );
        let updates = by("automatic_updates");
        assert_eq!(updates.value["enabled"], true);
        assert_eq!(updates.evidence[0].line, 2);
        assert_eq!(by("time_sync").value["services"][0], "chrony.service");
        assert_eq!(by("audit").value["enabled"], false);
        assert_eq!(by("audit").value["config_present"], true);
    }
}
