//! The host's `mfa` control: whether every interactive login needs a second factor.
//!
//! Owns the verdict, derived only from [`super::sshd`] and [`super::pam`] results:
//!
//! - A *login path* is one way through sshd: with `AuthenticationMethods any` each enabled
//!   method alone (`publickey`, `password`, `keyboard-interactive`); otherwise each
//!   comma-separated list. Paths are evaluated for the global settings (users no `Match`
//!   block selects) and again for every `Match` block with its overrides, because any one of
//!   them may be the weak door. A path whose methods are disabled is not usable and not
//!   counted.
//! - Each method contributes factors: `publickey` a key; `password` without PAM a password;
//!   `password` or `keyboard-interactive` through PAM (`UsePAM yes`) whatever the sshd PAM
//!   auth stack *requires*: a password if password modules cannot be bypassed, a second factor
//!   if MFA modules cannot be bypassed (see [`super::pam`]). `keyboard-interactive` without PAM
//!   has no back-end on Linux and is not usable. `gssapi-with-mic` is one factor (a Kerberos
//!   ticket); `hostbased` checks no user factor at all.
//! - A path with two or more distinct factors is `enforced`. So `publickey,password` counts:
//!   key (possession) plus password (knowledge) meets NIST SP 800-63B AAL2's definition of
//!   multi-factor, even with no MFA module installed.
//! - A path with fewer is `available` when it goes through a PAM stack holding an MFA module
//!   that can be skipped (`nullok`, `sufficient`, a jump over it): enrolled users get a
//!   second factor, others do not. Otherwise it is `absent`.
//! - The control is the worst path: `absent` over `unknown` over `available` over
//!   `enforced`. It is `unknown` when sshd_config is missing or unreadable, when part of it
//!   could not be read (an unread include may hold the deciding line: sshd takes the first
//!   value), when a PAM stack a path needs is missing or broken, or when no path is usable.
//!
//! The console (`/etc/pam.d/login`) is listed in the evidence but does not weigh on the
//! verdict: reaching it takes physical presence at the machine or a management console
//! (BMC, hypervisor) that has its own authentication, outside what this host's files show.
//! Counting it would mark almost every server `absent` whatever its SSH hardening, hiding the
//! remote exposure the `k3-auth` rule is about. `sudo` is privilege escalation after a login,
//! not a login, and is reported by the PAM and sudo collectors only.

use std::collections::BTreeSet;

use super::pam::{AuthAnalysis, PamReport};
use super::sshd::{Keyword, SSHD_CONFIG, SshdConfig};
use super::{Control, Evidence, Inventory};

const PROBE: &str = "mfa";

/// The control's states, ordered from best to worst.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verdict {
    /// Every path needs two factors.
    Enforced,
    /// A second factor is configured but can be skipped.
    Available,
    /// The files do not allow a verdict.
    Unknown,
    /// A path gets in with one factor and no MFA on offer.
    Absent,
}

impl Verdict {
    /// The state name in the control.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Enforced => "enforced",
            Verdict::Available => "available",
            Verdict::Unknown => "unknown",
            Verdict::Absent => "absent",
        }
    }
}

/// Derives the `mfa` control and adds it to the inventory.
pub fn collect(sshd: Option<&SshdConfig>, pam: &PamReport, inventory: &mut Inventory) {
    inventory.controls.push(decide(sshd, pam));
}

/// Derives the `mfa` control from the sshd configuration and the PAM stacks.
pub fn decide(sshd: Option<&SshdConfig>, pam: &PamReport) -> Control {
    let Some(config) = sshd else {
        return control(
            Verdict::Unknown,
            format!("{SSHD_CONFIG} is missing or unreadable: SSH login paths cannot be judged"),
            vec![console_evidence(pam)],
        );
    };
    let (verdict, reason, mut evidence) = ssh_verdict(config, pam);
    evidence.push(console_evidence(pam));
    control(verdict, reason, evidence)
}

/// The verdict over the SSH login paths of `config` alone (global settings and every `Match`
/// block), with its reason and evidence. Also used for OpenSSH Server on Windows, whose
/// password method has no PAM (an empty [`PamReport`]).
pub fn ssh_verdict(config: &SshdConfig, pam: &PamReport) -> (Verdict, String, Vec<Evidence>) {
    let mut paths = Vec::new();
    let global = Settings::read(|k| {
        let (value, evidence) = config.global_value(k);
        (value, evidence.cloned())
    });
    paths.extend(context_paths("global settings", None, &global, pam));
    for block in &config.match_blocks {
        let at = &block.evidence;
        let label = format!("Match {} ({}:{})", block.criteria, at.source, at.line);
        if block.settings.is_empty() {
            // Its users get the global paths, already evaluated.
            let summary = format!("{label}: changes no authentication setting");
            paths.push(PathVerdict {
                verdict: None,
                evidence: vec![Evidence {
                    detail: summary.clone(),
                    probe: PROBE.into(),
                    ..at.clone()
                }],
                summary,
            });
            continue;
        }
        let settings = Settings::read(|k| config.value_in(block, k));
        paths.extend(context_paths(&label, Some(at), &settings, pam));
    }
    let (verdict, reason) = overall(config, &paths);
    let evidence: Vec<Evidence> = paths.into_iter().flat_map(|p| p.evidence).collect();
    (verdict, reason, evidence)
}

fn control(verdict: Verdict, reason: String, evidence: Vec<Evidence>) -> Control {
    Control {
        name: "mfa".into(),
        state: verdict.as_str().into(),
        reason,
        evidence,
    }
}

/// The verdict and its reason: the worst path, unless the configuration is incomplete.
fn overall(config: &SshdConfig, paths: &[PathVerdict]) -> (Verdict, String) {
    if !config.problems.is_empty() {
        let problems: Vec<String> = config
            .problems
            .iter()
            .map(|p| format!("{}: {}", p.source, p.error))
            .collect();
        return (
            Verdict::Unknown,
            format!(
                "the sshd configuration could not be read completely: {}",
                problems.join("; ")
            ),
        );
    }
    let usable: Vec<&PathVerdict> = paths.iter().filter(|p| p.verdict.is_some()).collect();
    // The first of the worst paths, so the reason follows file order.
    let worst = usable
        .iter()
        .copied()
        .reduce(|worst, p| if p.verdict > worst.verdict { p } else { worst });
    let Some(worst) = worst else {
        return (
            Verdict::Unknown,
            "no usable SSH login path was found".into(),
        );
    };
    let verdict = worst.verdict.unwrap_or(Verdict::Unknown);
    let reason = if verdict == Verdict::Enforced {
        format!(
            "every SSH login path ({} in all) requires two factors",
            usable.len()
        )
    } else {
        worst.summary.clone()
    };
    (verdict, reason)
}

/// The settings that decide the login paths of one context (global or a `Match` block).
struct Settings {
    methods: (String, Option<Evidence>),
    password: (bool, Option<Evidence>),
    kbd_interactive: (bool, Option<Evidence>),
    pubkey: (bool, Option<Evidence>),
    use_pam: (bool, Option<Evidence>),
    gssapi: (bool, Option<Evidence>),
    hostbased: (bool, Option<Evidence>),
}

impl Settings {
    fn read(lookup: impl Fn(Keyword) -> (String, Option<Evidence>)) -> Settings {
        let flag = |k| {
            let (value, evidence) = lookup(k);
            (value == "yes", evidence)
        };
        Settings {
            methods: lookup(Keyword::AuthenticationMethods),
            password: flag(Keyword::PasswordAuthentication),
            kbd_interactive: flag(Keyword::KbdInteractiveAuthentication),
            pubkey: flag(Keyword::PubkeyAuthentication),
            use_pam: flag(Keyword::UsePam),
            gssapi: flag(Keyword::GssapiAuthentication),
            hostbased: flag(Keyword::HostbasedAuthentication),
        }
    }

    /// The method lists a login must complete, one per path.
    fn paths(&self) -> Vec<Vec<String>> {
        let methods = self.methods.0.trim();
        if methods.is_empty() || methods == "any" {
            // Every method alone. Disabled ones come out as unusable paths, except the two
            // that are off by default and rarely on, which would only be noise.
            let mut paths = vec!["publickey", "password", "keyboard-interactive"];
            if self.gssapi.0 {
                paths.push("gssapi-with-mic");
            }
            if self.hostbased.0 {
                paths.push("hostbased");
            }
            return paths.into_iter().map(|m| vec![m.to_string()]).collect();
        }
        methods
            .split_whitespace()
            .map(|list| {
                list.split(',')
                    .filter(|m| !m.is_empty())
                    // `keyboard-interactive:pam` names a device; the method is what counts.
                    .map(|m| m.split(':').next().unwrap_or(m).to_string())
                    .collect()
            })
            .collect()
    }
}

/// One path's evaluation; `verdict` is `None` when the path cannot be used at all.
struct PathVerdict {
    verdict: Option<Verdict>,
    summary: String,
    evidence: Vec<Evidence>,
}

/// What one method contributes.
enum MethodOutcome {
    Factors {
        factors: Vec<String>,
        /// Why MFA modules on this method's PAM stack can be skipped.
        skippable_mfa: Vec<String>,
        evidence: Vec<Evidence>,
    },
    Unusable(String),
    Unknown(String),
}

fn context_paths(
    label: &str,
    at: Option<&Evidence>,
    settings: &Settings,
    pam: &PamReport,
) -> Vec<PathVerdict> {
    settings
        .paths()
        .iter()
        .map(|methods| evaluate_path(label, at, methods, settings, pam))
        .collect()
}

fn evaluate_path(
    label: &str,
    at: Option<&Evidence>,
    methods: &[String],
    settings: &Settings,
    pam: &PamReport,
) -> PathVerdict {
    let mut factors = BTreeSet::new();
    let mut skippable = Vec::new();
    let mut evidence = Vec::new();
    let mut unknown = None;
    for method in methods {
        match method_outcome(method, settings, pam) {
            MethodOutcome::Factors {
                factors: f,
                skippable_mfa,
                evidence: e,
            } => {
                factors.extend(f);
                skippable.extend(skippable_mfa);
                evidence.extend(e);
            }
            MethodOutcome::Unusable(why) => {
                let summary = format!("{label}: {} is not usable: {why}", methods.join(","));
                return PathVerdict {
                    verdict: None,
                    evidence: vec![path_evidence(at, settings, &summary)],
                    summary,
                };
            }
            MethodOutcome::Unknown(why) => unknown = Some(why),
        }
    }
    let (verdict, why) = if let Some(why) = unknown {
        (Verdict::Unknown, why)
    } else if factors.len() >= 2 {
        (Verdict::Enforced, "two or more factors".to_string())
    } else if !skippable.is_empty() {
        (Verdict::Available, skippable.join("; "))
    } else if factors.is_empty() {
        (Verdict::Absent, "no factor at all".to_string())
    } else {
        (
            Verdict::Absent,
            "a single factor and no MFA module to enrol in".to_string(),
        )
    };
    let factor_list = if factors.is_empty() {
        "no factor".to_string()
    } else {
        factors.into_iter().collect::<Vec<_>>().join(" + ")
    };
    let summary = format!(
        "{label}: login with {} needs {factor_list}: {} ({why})",
        methods.join(","),
        verdict.as_str()
    );
    let mut all = vec![path_evidence(at, settings, &summary)];
    all.extend(evidence);
    PathVerdict {
        verdict: Some(verdict),
        summary,
        evidence: all,
    }
}

/// The evidence line for a path: the `Match` line for a block, else the
/// `AuthenticationMethods` line (or the default it fell back to).
fn path_evidence(at: Option<&Evidence>, settings: &Settings, summary: &str) -> Evidence {
    let anchor = at.or(settings.methods.1.as_ref());
    Evidence {
        source: anchor.map_or_else(|| SSHD_CONFIG.to_string(), |e| e.source.clone()),
        line: anchor.map_or(0, |e| e.line),
        probe: PROBE.into(),
        detail: summary.to_string(),
    }
}

fn method_outcome(method: &str, settings: &Settings, pam: &PamReport) -> MethodOutcome {
    match method {
        "publickey" if !settings.pubkey.0 => {
            disabled("PubkeyAuthentication no", settings.pubkey.1.as_ref())
        }
        "publickey" => MethodOutcome::Factors {
            factors: vec!["key".into()],
            skippable_mfa: Vec::new(),
            evidence: settings.pubkey.1.iter().cloned().collect(),
        },
        "password" if !settings.password.0 => {
            disabled("PasswordAuthentication no", settings.password.1.as_ref())
        }
        "password" if !settings.use_pam.0 => MethodOutcome::Factors {
            factors: vec!["password".into()],
            skippable_mfa: Vec::new(),
            evidence: settings.password.1.iter().cloned().collect(),
        },
        "keyboard-interactive" if !settings.kbd_interactive.0 => disabled(
            "KbdInteractiveAuthentication no",
            settings.kbd_interactive.1.as_ref(),
        ),
        "keyboard-interactive" if !settings.use_pam.0 => disabled(
            "UsePAM no leaves keyboard-interactive without a back-end",
            settings.use_pam.1.as_ref(),
        ),
        "password" | "keyboard-interactive" => pam_outcome(pam.effective("sshd")),
        "gssapi-with-mic" if !settings.gssapi.0 => {
            disabled("GSSAPIAuthentication no", settings.gssapi.1.as_ref())
        }
        "hostbased" if !settings.hostbased.0 => {
            disabled("HostbasedAuthentication no", settings.hostbased.1.as_ref())
        }
        "gssapi-with-mic" => single("kerberos ticket", settings.gssapi.1.as_ref()),
        // The client host's key vouches for the user: no user factor at all is checked, so
        // it adds nothing to the count.
        "hostbased" => MethodOutcome::Factors {
            factors: Vec::new(),
            skippable_mfa: Vec::new(),
            evidence: settings.hostbased.1.iter().cloned().collect(),
        },
        other => MethodOutcome::Factors {
            factors: vec![other.to_string()],
            skippable_mfa: Vec::new(),
            evidence: Vec::new(),
        },
    }
}

fn single(factor: &str, at: Option<&Evidence>) -> MethodOutcome {
    MethodOutcome::Factors {
        factors: vec![factor.to_string()],
        skippable_mfa: Vec::new(),
        evidence: at.into_iter().cloned().collect(),
    }
}

fn disabled(why: &str, at: Option<&Evidence>) -> MethodOutcome {
    match at {
        Some(e) => MethodOutcome::Unusable(format!("{why} ({}:{})", e.source, e.line)),
        None => MethodOutcome::Unusable(format!("{why} (default)")),
    }
}

/// What the sshd PAM auth stack contributes to a PAM-backed method.
fn pam_outcome(analysis: Option<&AuthAnalysis>) -> MethodOutcome {
    let Some(a) = analysis else {
        return MethodOutcome::Unknown(
            "UsePAM yes but neither /etc/pam.d/sshd nor /etc/pam.d/other exists".into(),
        );
    };
    if a.broken {
        return MethodOutcome::Unknown(format!(
            "the PAM stack for {} has errors (see errors)",
            a.service
        ));
    }
    if !a.can_succeed {
        return MethodOutcome::Unusable(format!("the PAM stack for {} never succeeds", a.service));
    }
    let mut factors = Vec::new();
    if a.knowledge_required {
        factors.push("password".to_string());
    }
    if a.mfa_required {
        let modules: BTreeSet<String> = a
            .mfa_modules
            .iter()
            .map(|m| format!("{} via {}", m.kind, m.rule.module))
            .collect();
        factors.push(modules.into_iter().collect::<Vec<_>>().join(" or "));
    }
    let skippable_mfa = if a.mfa_required {
        Vec::new()
    } else {
        a.bypass_reasons()
    };
    let evidence = a
        .mfa_modules
        .iter()
        .flat_map(|m| std::iter::once(m.rule.evidence.clone()).chain(m.note.clone()))
        .collect();
    MethodOutcome::Factors {
        factors,
        skippable_mfa,
        evidence,
    }
}

/// The console path, described for the record; see the module header for why it does not
/// weigh on the verdict.
fn console_evidence(pam: &PamReport) -> Evidence {
    let detail = match pam.effective("login") {
        None => "console login: no PAM stack for login found".to_string(),
        Some(a) => {
            let what = if a.mfa_required {
                "requires a second factor"
            } else if a.mfa_modules.is_empty() {
                "has no second factor"
            } else {
                "offers a skippable second factor"
            };
            format!(
                "console login (physical access, not weighed) via /etc/pam.d/{} {what}",
                a.service
            )
        }
    };
    Evidence {
        source: "/etc/pam.d/login".into(),
        line: 0,
        probe: PROBE.into(),
        detail,
    }
}

#[cfg(test)]
// Tests unwrap: a panic there is a test failure pointing at its line.
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::inventory::{pam, rooted, sshd};

    fn decide_for(files: &[(&str, &str)]) -> Control {
        let tmp = tempfile::tempdir().unwrap();
        for (path, content) in files {
            let full = rooted(tmp.path(), path);
            std::fs::create_dir_all(full.parent().unwrap()).unwrap();
            std::fs::write(full, content).unwrap();
        }
        let mut inventory = Inventory::default();
        let config = sshd::collect(tmp.path(), &mut inventory);
        let report = pam::collect(tmp.path(), &mut inventory);
        decide(config.as_ref(), &report)
    }

    const TOTP_PAM: &str = "auth required pam_google_authenticator.so\n";
    const UNIX_PAM: &str = "auth required pam_unix.so\n";

    #[test]
    fn key_plus_totp_is_enforced() {
        let c = decide_for(&[
            (
                "/etc/ssh/sshd_config",
                "UsePAM yes\nKbdInteractiveAuthentication yes\nAuthenticationMethods publickey,keyboard-interactive\n",
            ),
            ("/etc/pam.d/sshd", TOTP_PAM),
        ]);
        assert_eq!(c.state, "enforced", "{c:?}");
        assert_eq!(c.evidence[0].line, 3);
        assert!(
            c.evidence
                .iter()
                .any(|e| e.source == "/etc/pam.d/sshd" && e.line == 1)
        );
    }

    #[test]
    fn key_plus_password_with_pam_mfa_is_enforced() {
        let c = decide_for(&[
            (
                "/etc/ssh/sshd_config",
                "UsePAM yes\nAuthenticationMethods publickey,password\n",
            ),
            (
                "/etc/pam.d/sshd",
                "auth required pam_unix.so\nauth required pam_oath.so\n",
            ),
        ]);
        assert_eq!(c.state, "enforced", "{c:?}");
    }

    #[test]
    fn publickey_alone_is_absent() {
        let c = decide_for(&[(
            "/etc/ssh/sshd_config",
            "PasswordAuthentication no\nKbdInteractiveAuthentication no\n",
        )]);
        assert_eq!(c.state, "absent");
        assert!(c.reason.contains("publickey needs key"), "{}", c.reason);
    }

    #[test]
    fn password_only_is_absent() {
        let c = decide_for(&[
            (
                "/etc/ssh/sshd_config",
                "UsePAM yes\nPubkeyAuthentication no\nKbdInteractiveAuthentication no\n",
            ),
            ("/etc/pam.d/sshd", UNIX_PAM),
        ]);
        assert_eq!(c.state, "absent");
    }

    #[test]
    fn match_block_with_password_is_absent_and_named() {
        let c = decide_for(&[
            (
                "/etc/ssh/sshd_config",
                "UsePAM yes\nKbdInteractiveAuthentication yes\nAuthenticationMethods publickey,keyboard-interactive\nMatch Group contractors\n  AuthenticationMethods password\n  PasswordAuthentication yes\n",
            ),
            ("/etc/pam.d/sshd", "auth required pam_unix.so\n"),
        ]);
        // Global: key + pam_unix password is two factors; the Match block is one.
        assert_eq!(c.state, "absent", "{c:?}");
        assert!(c.reason.contains("Match Group contractors"), "{}", c.reason);
        let block = c
            .evidence
            .iter()
            .find(|e| e.detail.contains("Match Group contractors"))
            .unwrap();
        assert_eq!(block.line, 4);
    }

    #[test]
    fn nullok_totp_is_available() {
        let c = decide_for(&[
            (
                "/etc/ssh/sshd_config",
                "UsePAM yes\nKbdInteractiveAuthentication yes\nAuthenticationMethods publickey,keyboard-interactive\n",
            ),
            (
                "/etc/pam.d/sshd",
                "auth required pam_google_authenticator.so nullok\n",
            ),
        ]);
        assert_eq!(c.state, "available", "{c:?}");
        assert!(c.reason.contains("nullok"));
    }

    #[test]
    fn missing_sshd_config_is_unknown() {
        let c = decide_for(&[("/etc/pam.d/sshd", TOTP_PAM)]);
        assert_eq!(c.state, "unknown");
    }

    #[test]
    fn unreadable_include_makes_it_unknown() {
        let c = decide_for(&[
            (
                "/etc/ssh/sshd_config",
                "Include bad.conf\nAuthenticationMethods publickey,keyboard-interactive\nUsePAM yes\n",
            ),
            ("/etc/ssh/bad.conf", "\0"),
            ("/etc/pam.d/sshd", TOTP_PAM),
        ]);
        assert_eq!(c.state, "unknown");
        assert!(c.reason.contains("/etc/ssh/bad.conf"));
    }

    #[test]
    fn broken_pam_stack_is_unknown_not_enforced() {
        let c = decide_for(&[
            (
                "/etc/ssh/sshd_config",
                "UsePAM yes\nAuthenticationMethods publickey,keyboard-interactive\n",
            ),
            (
                "/etc/pam.d/sshd",
                "auth required pam_google_authenticator.so\nauth bogus pam_x.so\n",
            ),
        ]);
        assert_eq!(c.state, "unknown", "{c:?}");
    }

    #[test]
    fn keyboard_interactive_without_pam_is_not_a_path() {
        let c = decide_for(&[(
            "/etc/ssh/sshd_config",
            "AuthenticationMethods keyboard-interactive\n",
        )]);
        assert_eq!(c.state, "unknown");
        assert!(c.reason.contains("no usable"));
    }

    #[test]
    fn gssapi_alone_is_a_single_factor_path() {
        let c = decide_for(&[
            (
                "/etc/ssh/sshd_config",
                "UsePAM yes\nPubkeyAuthentication no\nPasswordAuthentication no\nGSSAPIAuthentication yes\n",
            ),
            (
                "/etc/pam.d/sshd",
                "auth required pam_unix.so\nauth required pam_u2f.so\n",
            ),
        ]);
        assert_eq!(c.state, "absent", "{c:?}");
        assert!(
            c.reason.contains("gssapi-with-mic needs kerberos ticket"),
            "{}",
            c.reason
        );
    }

    #[test]
    fn match_block_without_auth_overrides_adds_no_path() {
        let c = decide_for(&[
            (
                "/etc/ssh/sshd_config",
                "UsePAM yes\nAuthenticationMethods publickey,keyboard-interactive\nMatch User anoncvs\n  X11Forwarding no\n",
            ),
            ("/etc/pam.d/sshd", TOTP_PAM),
        ]);
        assert_eq!(c.state, "enforced", "{c:?}");
        assert!(
            c.evidence
                .iter()
                .any(|e| e.line == 3 && e.detail.contains("changes no authentication"))
        );
    }

    #[test]
    fn console_is_listed_but_not_weighed() {
        let c = decide_for(&[
            (
                "/etc/ssh/sshd_config",
                "UsePAM yes\nAuthenticationMethods publickey,keyboard-interactive\n",
            ),
            ("/etc/pam.d/sshd", TOTP_PAM),
            ("/etc/pam.d/login", UNIX_PAM),
        ]);
        assert_eq!(c.state, "enforced");
        let console = c.evidence.last().unwrap();
        assert!(console.detail.contains("console login"), "{console:?}");
        assert!(console.detail.contains("no second factor"));
    }
}
