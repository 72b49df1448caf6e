//! Whether this host records its security events, and whether it ships them off the host: the
//! `log_protection` control (policy 6.5: logs are protected against unauthorised access and
//! manipulation, which a log kept only on the host it describes is not: whoever takes the host
//! over can rewrite it).
//!
//! Read from files under the root plus the enabled units from `units` (never `systemctl`):
//! - recording: `auditd.service` enabled; journald's `Storage=` in `/etc/systemd/journald.conf`
//!   and `journald.conf.d/*.conf` (the last setting wins, as journald reads them), where `auto`,
//!   the default, is persistent only when `/var/log/journal` exists; rsyslog or syslog-ng
//!   enabled (they write local files).
//! - forwarding: rsyslog (`rsyslog.conf`, `rsyslog.d/*.conf`) with a legacy `@host` / `@@host`
//!   action or an `omfwd` / `omrelp` action, syslog-ng (`syslog-ng.conf`, `conf.d/*.conf`) with
//!   a `network()`, `syslog()`, `tcp()` or `udp()` destination, or
//!   `systemd-journal-upload.service` with a `URL=` in `journal-upload.conf`; each counts only
//!   when its daemon is enabled.
//!
//! Verdicts: `forwarded` (a forwarder is configured and enabled), `local_only` (events are
//! recorded on the host but not shipped), `none` (journald keeps nothing across boots and no
//! syslog daemon or auditd runs), `unknown` (the root has no systemd unit directory and no
//! syslog configuration, so nothing can be judged). The destination is evidence, not a verdict:
//! whether the receiving server is itself protected is not visible from here.

use std::path::Path;

use serde_json::json;

use super::config_file;
use super::input::{line_no, list_dir, read_bounded};
use super::units::EnabledUnit;
use super::{Control, Evidence, FactError, Observation, rooted};

const COLLECTOR: &str = "logging";
const LIMIT: u64 = 1024 * 1024;

/// A log forwarding rule found in a configuration file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Forwarder {
    /// `rsyslog`, `syslog-ng` or `journal-upload`.
    pub daemon: &'static str,
    /// The destination as written (`logs.example.org:514`, a URL).
    pub destination: String,
    /// File and line.
    pub evidence: Evidence,
}

/// Pushes the `logging` observations and the `log_protection` control.
pub fn collect(
    root: &Path,
    units: &[EnabledUnit],
    observations: &mut Vec<Observation>,
    controls: &mut Vec<Control>,
    errors: &mut Vec<FactError>,
) {
    let journal = journald(root, errors);
    let mut forwarders = Vec::new();
    let rsyslog_files = config_files(root, "/etc/rsyslog.conf", "/etc/rsyslog.d", errors);
    for (file, text) in &rsyslog_files {
        forwarders.extend(rsyslog_forwarders(file, text));
    }
    let syslog_ng_files = config_files(
        root,
        "/etc/syslog-ng/syslog-ng.conf",
        "/etc/syslog-ng/conf.d",
        errors,
    );
    for (file, text) in &syslog_ng_files {
        forwarders.extend(syslog_ng_forwarders(file, text));
    }
    if let Some(input) = read_bounded(
        root,
        "/etc/systemd/journal-upload.conf",
        LIMIT,
        COLLECTOR,
        errors,
    ) {
        forwarders.extend(journal_upload(
            "/etc/systemd/journal-upload.conf",
            &input.text,
        ));
    }
    let daemon_unit = |daemon: &str| -> Option<&EnabledUnit> {
        let names: &[&str] = match daemon {
            "rsyslog" => &["rsyslog.service", "syslog.service"],
            "syslog-ng" => &["syslog-ng.service", "syslog.service"],
            _ => &["systemd-journal-upload.service"],
        };
        units.iter().find(|u| names.contains(&u.name.as_str()))
    };
    let active: Vec<(&Forwarder, &EnabledUnit)> = forwarders
        .iter()
        .filter_map(|f| daemon_unit(f.daemon).map(|u| (f, u)))
        .collect();
    let recorders: Vec<&EnabledUnit> = units
        .iter()
        .filter(|u| {
            ["auditd.service", "rsyslog.service", "syslog-ng.service"].contains(&u.name.as_str())
        })
        .collect();
    for f in &forwarders {
        observations.push(Observation {
            category: "logging".into(),
            name: format!("forward {} {}", f.daemon, f.destination),
            value: json!({
                "daemon": f.daemon,
                "destination": f.destination,
                "enabled": daemon_unit(f.daemon).is_some(),
            }),
            evidence: vec![f.evidence.clone()],
        });
    }
    observations.push(Observation {
        category: "logging".into(),
        name: "journald".into(),
        value: json!({ "storage": journal.storage, "persistent": journal.persistent }),
        evidence: journal.evidence.clone(),
    });
    let judged = rooted(root, "/etc/systemd/system").is_dir()
        || !rsyslog_files.is_empty()
        || !syslog_ng_files.is_empty();
    controls.push(verdict(judged, &journal, &active, &recorders));
}

fn unit_evidence(unit: &EnabledUnit) -> Evidence {
    unit.evidence(COLLECTOR)
}

fn verdict(
    judged: bool,
    journal: &Journal,
    active: &[(&Forwarder, &EnabledUnit)],
    recorders: &[&EnabledUnit],
) -> Control {
    let control = |state: &str, reason: String, evidence: Vec<Evidence>| Control {
        name: "log_protection".into(),
        state: state.into(),
        reason,
        evidence,
    };
    if !active.is_empty() {
        let mut evidence = Vec::new();
        for (forwarder, unit) in active {
            evidence.push(forwarder.evidence.clone());
            evidence.push(unit_evidence(unit));
        }
        let to: Vec<String> = active
            .iter()
            .map(|(f, _)| format!("{} to {}", f.daemon, f.destination))
            .collect();
        return control(
            "forwarded",
            format!(
                "security events are shipped off the host: {}",
                to.join(", ")
            ),
            evidence,
        );
    }
    if !judged {
        return control(
            "unknown",
            "no systemd unit directory and no syslog configuration: recording and forwarding cannot be judged".into(),
            Vec::new(),
        );
    }
    let mut evidence: Vec<Evidence> = recorders.iter().map(|u| unit_evidence(u)).collect();
    let mut local: Vec<String> = recorders.iter().map(|u| u.name.clone()).collect();
    if journal.persistent {
        local.push(format!("journald (Storage={})", journal.storage));
        evidence.extend(journal.evidence.iter().cloned());
    }
    if local.is_empty() {
        evidence.extend(journal.evidence.iter().cloned());
        return control(
            "none",
            format!(
                "no security events survive a reboot: journald Storage={} keeps none on disk and no auditd or syslog daemon is enabled",
                journal.storage
            ),
            evidence,
        );
    }
    control(
        "local_only",
        format!(
            "events are recorded only on this host ({}); nothing ships them off it",
            local.join(", ")
        ),
        evidence,
    )
}

/// journald's effective `Storage=` and whether it keeps logs across boots.
struct Journal {
    storage: String,
    persistent: bool,
    evidence: Vec<Evidence>,
}

// journald, rsyslog and syslog-ng read drop-ins ending in exactly `.conf`, case-sensitively.
#[allow(clippy::case_sensitive_file_extension_comparisons)]
fn journald(root: &Path, errors: &mut Vec<FactError>) -> Journal {
    let mut storage = ("auto".to_string(), None::<Evidence>);
    let mut files = vec!["/etc/systemd/journald.conf".to_string()];
    let mut drop_ins: Vec<String> =
        list_dir(root, "/etc/systemd/journald.conf.d", COLLECTOR, errors)
            .into_iter()
            .map(|(name, _)| name)
            .filter(|name| name.ends_with(".conf"))
            .collect();
    drop_ins.sort();
    files.extend(
        drop_ins
            .into_iter()
            .map(|name| format!("/etc/systemd/journald.conf.d/{name}")),
    );
    for file in files {
        let Some(input) = read_bounded(root, &file, LIMIT, COLLECTOR, errors) else {
            continue;
        };
        for (index, line) in input.text.lines().enumerate() {
            if let Some(value) = storage_setting(line) {
                storage = (
                    value.to_string(),
                    Some(Evidence {
                        source: file.clone(),
                        line: line_no(index),
                        probe: COLLECTOR.into(),
                        detail: line.trim().into(),
                    }),
                );
            }
        }
    }
    let (storage, setting) = storage;
    let journal_dir = rooted(root, "/var/log/journal").is_dir();
    let persistent = match storage.as_str() {
        "persistent" => true,
        "auto" => journal_dir,
        _ => false,
    };
    let mut evidence: Vec<Evidence> = setting.into_iter().collect();
    if storage == "auto" {
        evidence.push(Evidence {
            source: "/var/log/journal".into(),
            line: 0,
            probe: COLLECTOR.into(),
            detail: if journal_dir {
                "exists: Storage=auto keeps the journal on disk".into()
            } else {
                "absent: Storage=auto keeps the journal in memory only".into()
            },
        });
    }
    Journal {
        storage,
        persistent,
        evidence,
    }
}

/// `Storage=persistent` (in any section; journald.conf has only `[Journal]`) -> `persistent`.
pub fn storage_setting(line: &str) -> Option<&str> {
    let line = line.trim();
    if line.starts_with('#') || line.starts_with(';') {
        return None;
    }
    let (key, value) = line.split_once('=')?;
    (key.trim() == "Storage").then(|| value.trim())
}

/// The main file and the `*.conf` drop-ins of a directory, in lexical order, with their text.
#[allow(clippy::case_sensitive_file_extension_comparisons)]
fn config_files(
    root: &Path,
    main: &str,
    dir: &str,
    errors: &mut Vec<FactError>,
) -> Vec<(String, String)> {
    let mut files = Vec::new();
    if let Some(input) = read_bounded(root, main, LIMIT, COLLECTOR, errors) {
        files.push((main.to_string(), input.text));
    }
    let mut names: Vec<String> = list_dir(root, dir, COLLECTOR, errors)
        .into_iter()
        .map(|(name, _)| name)
        .filter(|name| name.ends_with(".conf"))
        .collect();
    names.sort();
    for name in names {
        let file = format!("{dir}/{name}");
        if let Some(input) = read_bounded(root, &file, LIMIT, COLLECTOR, errors) {
            files.push((file, input.text));
        }
    }
    files
}

fn line_evidence(file: &str, index: usize, line: &str) -> Evidence {
    config_file::line_evidence(file, index + 1, COLLECTOR, line)
}

/// rsyslog forwarding actions: legacy selector lines `*.* @host:514` (UDP) / `@@host` (TCP),
/// and RainerScript `action(type="omfwd" target="host" ...)` or `type="omrelp"`.
pub fn rsyslog_forwarders(file: &str, text: &str) -> Vec<Forwarder> {
    let mut found = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let destination = if line.contains("omfwd") || line.contains("omrelp") {
            Some(rainer_param(line, "target").unwrap_or_else(|| "(target on a later line)".into()))
        } else {
            legacy_destination(line)
        };
        if let Some(destination) = destination {
            found.push(Forwarder {
                daemon: "rsyslog",
                destination,
                evidence: line_evidence(file, index, raw),
            });
        }
    }
    found
}

/// `*.* @@logs.example.org:514` -> `logs.example.org:514`; an action that is not a remote one
/// (a file, a pipe, `:omusrmsg:`) -> `None`.
fn legacy_destination(line: &str) -> Option<String> {
    let mut fields = line.split_whitespace();
    let selector = fields.next()?;
    if !selector.contains('.') || selector.starts_with('$') {
        return None;
    }
    let action = fields.next()?;
    let host = action.trim_start_matches('@');
    (action.starts_with('@') && !host.is_empty()).then(|| {
        // `@(o)host` carries options in parentheses before the host.
        host.rsplit(')').next().unwrap_or(host).to_string()
    })
}

/// The value of `name="..."` in a RainerScript parameter list.
fn rainer_param(line: &str, name: &str) -> Option<String> {
    let start = line.find(&format!("{name}=\""))? + name.len() + 2;
    let rest = &line[start..];
    Some(rest[..rest.find('"')?].to_string())
}

/// syslog-ng destinations that leave the host: `network("host" ...)`, `syslog("host" ...)`,
/// `tcp("host")`, `udp("host")` inside a `destination` block.
pub fn syslog_ng_forwarders(file: &str, text: &str) -> Vec<Forwarder> {
    let mut found = Vec::new();
    let mut in_destination = false;
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.starts_with('#') {
            continue;
        }
        if line.starts_with("destination") {
            in_destination = true;
        }
        if in_destination {
            for driver in ["network(", "syslog(", "tcp(", "udp(", "tcp6(", "udp6("] {
                let Some(at) = line.find(driver) else {
                    continue;
                };
                let args = &line[at + driver.len()..];
                let host = args
                    .trim_start()
                    .trim_start_matches(['"', '\''])
                    .split(['"', '\'', ' ', ')'])
                    .next()
                    .unwrap_or_default();
                if !host.is_empty() {
                    found.push(Forwarder {
                        daemon: "syslog-ng",
                        destination: host.to_string(),
                        evidence: line_evidence(file, index, raw),
                    });
                }
                break;
            }
        }
        if line.contains("};") {
            in_destination = false;
        }
    }
    found
}

/// `URL=https://logs.example.org:19532` in `journal-upload.conf`.
pub fn journal_upload(file: &str, text: &str) -> Vec<Forwarder> {
    text.lines()
        .enumerate()
        .filter_map(|(index, raw)| {
            let line = raw.trim();
            if line.starts_with('#') {
                return None;
            }
            let (key, value) = line.split_once('=')?;
            (key.trim() == "URL" && !value.trim().is_empty()).then(|| Forwarder {
                daemon: "journal-upload",
                destination: value.trim().to_string(),
                evidence: line_evidence(file, index, raw),
            })
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // In tests an unwrap that fails is the failing assertion.
mod tests {
    use super::*;
    use crate::inventory::test_support::tree;

    fn unit(name: &str) -> EnabledUnit {
        EnabledUnit {
            name: name.into(),
            wanted_by: vec!["multi-user.target".into()],
            evidence_path: format!("/etc/systemd/system/multi-user.target.wants/{name}"),
        }
    }

    fn judge(files: &[(&str, &str)], units: &[EnabledUnit]) -> Control {
        let root = tree(files);
        let (mut observations, mut controls, mut errors) = (Vec::new(), Vec::new(), Vec::new());
        collect(
            root.path(),
            units,
            &mut observations,
            &mut controls,
            &mut errors,
        );
        assert!(errors.is_empty(), "{errors:?}");
        controls.pop().unwrap()
    }

    const UNIT_DIR: (&str, &str) = ("etc/systemd/system/multi-user.target.wants/.keep", "");

    #[test]
    fn rsyslog_legacy_and_rainerscript_actions() {
        let text = "# *.* @@commented:514\n*.* @@logs.kommun.example:6514\nauth,authpriv.* @10.0.0.5\nmail.* -/var/log/mail.log\n\
action(type=\"omfwd\" target=\"siem.kommun.example\" port=\"514\" protocol=\"tcp\")\n*.* @(z9)zipped.example\n";
        let found: Vec<String> = rsyslog_forwarders("/etc/rsyslog.conf", text)
            .into_iter()
            .map(|f| format!("{}@{}", f.destination, f.evidence.line))
            .collect();
        assert_eq!(
            found,
            vec![
                "logs.kommun.example:6514@2",
                "10.0.0.5@3",
                "siem.kommun.example@5",
                "zipped.example@6"
            ]
        );
    }

    #[test]
    fn syslog_ng_network_destinations() {
        let text = "source s_local { system(); internal(); };\n\
destination d_siem {\n  network(\"siem.kommun.example\" port(6514) transport(\"tls\"));\n};\n\
destination d_file { file(\"/var/log/messages\"); };\nlog { source(s_local); destination(d_siem); };\n";
        let found = syslog_ng_forwarders("/etc/syslog-ng/syslog-ng.conf", text);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].destination, "siem.kommun.example");
        assert_eq!(found[0].evidence.line, 3);
    }

    #[test]
    fn verdicts_follow_forwarding_recording_and_nothing() {
        // Forwarding configured and rsyslog enabled.
        let forwarded = judge(
            &[
                ("etc/rsyslog.conf", "*.* @@logs.kommun.example:514\n"),
                UNIT_DIR,
            ],
            &[unit("rsyslog.service")],
        );
        assert_eq!(forwarded.state, "forwarded", "{forwarded:?}");
        assert!(
            forwarded
                .evidence
                .iter()
                .any(|e| e.source == "/etc/rsyslog.conf" && e.line == 1)
        );
        // The same file with rsyslog not enabled forwards nothing.
        let off = judge(
            &[
                ("etc/rsyslog.conf", "*.* @@logs.kommun.example:514\n"),
                UNIT_DIR,
            ],
            &[],
        );
        assert_eq!(off.state, "none", "{off:?}");
        // auditd and a persistent journal record locally.
        let local = judge(
            &[
                (
                    "etc/systemd/journald.conf",
                    "[Journal]\nStorage=persistent\n",
                ),
                UNIT_DIR,
            ],
            &[unit("auditd.service")],
        );
        assert_eq!(local.state, "local_only", "{local:?}");
        assert!(local.reason.contains("auditd.service") && local.reason.contains("journald"));
        // Storage=auto with /var/log/journal present is persistent too; a drop-in wins.
        let auto = judge(&[("var/log/journal/.keep", ""), UNIT_DIR], &[]);
        assert_eq!(auto.state, "local_only", "{auto:?}");
        let volatile = judge(
            &[
                ("var/log/journal/.keep", ""),
                (
                    "etc/systemd/journald.conf.d/10-volatile.conf",
                    "[Journal]\nStorage=volatile\n",
                ),
                UNIT_DIR,
            ],
            &[],
        );
        assert_eq!(volatile.state, "none", "{volatile:?}");
        assert!(
            volatile
                .evidence
                .iter()
                .any(|e| e.source.ends_with("10-volatile.conf") && e.line == 2)
        );
        // journal-upload with a URL and its unit enabled.
        let upload = judge(
            &[
                (
                    "etc/systemd/journal-upload.conf",
                    "[Upload]\nURL=https://logs.kommun.example:19532\n",
                ),
                UNIT_DIR,
            ],
            &[unit("systemd-journal-upload.service")],
        );
        assert_eq!(upload.state, "forwarded", "{upload:?}");
        // Nothing to judge from.
        assert_eq!(judge(&[], &[]).state, "unknown");
    }
}
