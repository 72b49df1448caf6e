//! Which fact collectors apply to a root on the operating system the agent was built for.
//!
//! Every collector beyond the host frame reads Linux files: `/etc/ssh`, `/etc/pam.d`,
//! `/etc/passwd`, `/proc/net`, `/proc/self/mounts`, `/sys/block`, the dpkg and rpm databases. A
//! fixture tree (`--root DIR`) is such a Linux tree and is read on every OS. The live root of
//! another OS is not: on Windows `/etc/...` names `C:\etc\...`, which holds nothing (and under
//! wine `/` is the Linux machine's own root, whose facts would be reported as the Windows
//! host's), so a live Windows host (and an offline root with registry exports) goes to
//! [`super::windows`] before this module is asked; macOS keeps its accounts in Directory
//! Services and has no `/proc`. There the agent reports the `sysinfo` host frame only, and each
//! control says it was not collected: `unknown`, which no K2/K3 rule accepts, instead of a
//! verdict read from files that do not describe the host.
//!
//! This module decides; it reads nothing.

use std::path::Path;

use super::{Control, Evidence, is_live_root};

/// The collector name in the evidence of the controls this module writes.
const PROBE: &str = "platform";

/// Each control and what the Linux collectors read to decide it.
const CONTROLS: [(&str, &str); 5] = [
    ("mfa", "sshd and PAM configuration"),
    ("transit_encryption", "listening sockets"),
    ("rest_encryption", "volumes"),
    (
        "log_protection",
        "journald, auditd and syslog configuration",
    ),
    ("privileged_access", "sshd, accounts and sudoers"),
];

/// Whether the Linux fact collectors describe `root` when the agent runs on `os`
/// (`std::env::consts::OS`): always for a fixture tree, for the live root only on Linux.
pub fn reads_linux_facts(root: &Path, os: &str) -> bool {
    os == "linux" || !is_live_root(root)
}

/// The controls of a live host on `os` whose facts the agent does not read: all `unknown`, each
/// saying why.
pub fn not_collected(os: &str) -> Vec<Control> {
    CONTROLS
        .iter()
        .map(|(name, input)| {
            let reason = format!(
                "not collected on {os}: the agent reads {input} on Linux only, so it reports \
                 only the host frame here"
            );
            Control {
                name: (*name).into(),
                state: "unknown".into(),
                evidence: vec![Evidence {
                    source: format!("tillsyn-agent built for {os}"),
                    line: 0,
                    probe: PROBE.into(),
                    detail: reason.clone(),
                }],
                reason,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linux_reads_its_live_root_and_fixtures() {
        assert!(reads_linux_facts(Path::new("/"), "linux"));
        assert!(reads_linux_facts(Path::new("/tmp/fixture"), "linux"));
    }

    #[test]
    fn other_systems_read_fixtures_but_not_their_live_root() {
        for os in ["windows", "macos", "freebsd"] {
            assert!(!reads_linux_facts(Path::new("/"), os), "{os}");
            assert!(reads_linux_facts(Path::new("/tmp/fixture"), os), "{os}");
        }
    }

    #[test]
    fn every_control_is_unknown_and_names_the_os() {
        let controls = not_collected("windows");
        let names: Vec<&str> = controls.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "mfa",
                "transit_encryption",
                "rest_encryption",
                "log_protection",
                "privileged_access"
            ]
        );
        for control in &controls {
            assert_eq!(control.state, "unknown");
            assert!(control.reason.starts_with("not collected on windows"));
            assert_eq!(control.evidence.len(), 1);
            assert_eq!(control.evidence[0].probe, "platform");
        }
    }
}
