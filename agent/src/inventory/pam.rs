//! PAM authentication stacks: which modules a login through a service runs, and whether a
//! second-factor module is required on that path or can be bypassed.
//!
//! Owns parsing `/etc/pam.d/<service>` (Debian `@include`, `include` and `substack` controls,
//! `-type` lines, `[value=action ...]` controls, backslash continuations) and a faithful model
//! of Linux-PAM's dispatch (`libpam/pam_dispatch.c`): the impression/status state machine with
//! `ok`, `done`, `bad`, `die`, `reset`, `ignore` and jumps of N modules (a substack counts as
//! one module; `done`/`die` inside a substack end only the substack; `reset` inside it returns
//! to the state it was entered with).
//!
//! "Required" is decided by exploring every outcome of every module: a second factor is
//! required when no combination of outcomes lets the stack succeed while every MFA module
//! fails. A module with `nullok`/`nouserok` lets users without an enrolled secret through, so
//! it never counts as required. Invalid lines, unknown types, missing includes and cycles are
//! recorded as errors and modelled as Linux-PAM does: a handler that always fails.
//!
//! It does not decide the host's `mfa` control (that is [`super::mfa`]) and reads only the
//! `auth` facility for decisions; other facilities are parsed but not analysed.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use serde_json::json;

use super::config_file::{self, fact_error, line_evidence, logical_lines};
use super::{Evidence, FactError, Inventory, Observation};

/// Directory of per-service PAM files.
pub const PAM_DIR: &str = "/etc/pam.d";
/// Services whose auth stacks are reported: remote login, console login, privilege escalation
/// and the shared stacks Debian and RHEL build them from.
pub const SERVICES: [&str; 6] = [
    "sshd",
    "login",
    "sudo",
    "common-auth",
    "system-auth",
    "password-auth",
];
/// Linux-PAM's include depth bound (`PAM_SUBSTACK_MAX_LEVEL`); deeper is an error.
const MAX_DEPTH: usize = 16;
/// Probe name in evidence and errors.
const PROBE: &str = "pam";
/// Module name given to lines Linux-PAM would turn into always-failing handlers.
const INVALID_LINE: &str = "(invalid line)";
/// sssd's configuration, read only for evidence that `pam_sss` asks for a second factor.
const SSSD_CONF: &str = "/etc/sssd/sssd.conf";

/// Return codes whose effect the analysis explores. Other codes behave like these under every
/// control the stacks use (they hit `default`).
const ALL_CODES: [&str; 8] = [
    "success",
    "ignore",
    "auth_err",
    "user_unknown",
    "authinfo_unavail",
    "cred_insufficient",
    "maxtries",
    "module_unknown",
];
/// The codes above that mean "did not authenticate".
const FAILURE_CODES: [&str; 6] = [
    "auth_err",
    "user_unknown",
    "authinfo_unavail",
    "cred_insufficient",
    "maxtries",
    "module_unknown",
];
/// Every return code name Linux-PAM accepts in `[value=action]` (`_pam_token_returns`).
const KNOWN_CODES: [&str; 33] = [
    "success",
    "open_err",
    "symbol_err",
    "service_err",
    "system_err",
    "buf_err",
    "perm_denied",
    "auth_err",
    "cred_insufficient",
    "authinfo_unavail",
    "user_unknown",
    "maxtries",
    "new_authtok_reqd",
    "acct_expired",
    "session_err",
    "cred_unavail",
    "cred_expired",
    "cred_err",
    "no_module_data",
    "conv_err",
    "authtok_err",
    "authtok_recover_err",
    "authtok_lock_busy",
    "authtok_disable_aging",
    "try_again",
    "ignore",
    "abort",
    "authtok_expired",
    "module_unknown",
    "bad_item",
    "conv_again",
    "incomplete",
    "default",
];
/// Modules that check something the user knows (a password) rather than a second factor.
const KNOWLEDGE_MODULES: [&str; 8] = [
    "pam_unix",
    "pam_unix2",
    "pam_pwdb",
    "pam_sss",
    "pam_ldap",
    "pam_krb5",
    "pam_winbind",
    "pam_userdb",
];
/// Module options that let a user without an enrolled second factor through.
const OPT_OUT_OPTIONS: [&str; 2] = ["nullok", "nouserok"];

/// PAM management group of a line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Facility {
    /// `auth`: proves who the user is.
    Auth,
    /// `account`.
    Account,
    /// `password`.
    Password,
    /// `session`.
    Session,
}

impl Facility {
    fn parse(word: &str) -> Option<Facility> {
        Some(match word.to_ascii_lowercase().as_str() {
            "auth" => Facility::Auth,
            "account" => Facility::Account,
            "password" => Facility::Password,
            "session" => Facility::Session,
            _ => return None,
        })
    }
}

/// What the stack does with one module's return code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// No effect.
    Ignore,
    /// Success so far unless something already failed.
    Ok,
    /// Like `ok`, then stop.
    Done,
    /// Remember failure, go on.
    Bad,
    /// Fail and stop.
    Die,
    /// Forget the state so far.
    Reset,
    /// Skip this many following modules.
    Jump(usize),
}

impl Action {
    fn parse(word: &str) -> Option<Action> {
        Some(match word.to_ascii_lowercase().as_str() {
            "ignore" => Action::Ignore,
            "ok" => Action::Ok,
            "done" => Action::Done,
            "bad" => Action::Bad,
            "die" => Action::Die,
            "reset" => Action::Reset,
            digits => Action::Jump(digits.parse().ok().filter(|&n| n > 0)?),
        })
    }
}

/// The control field of a rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ControlFlag {
    /// `required`.
    Required,
    /// `requisite`.
    Requisite,
    /// `sufficient`.
    Sufficient,
    /// `optional`.
    Optional,
    /// `[value=action ...]`; codes not listed take `default`, which itself defaults to a
    /// failure as in Linux-PAM (an undefined action is a "bad jump").
    Actions(BTreeMap<String, Action>),
}

impl ControlFlag {
    /// The action for return code `code`, as `_pam_parse_control` and the keyword table in
    /// pam.conf(5) define it.
    pub fn action(&self, code: &str) -> Action {
        let success_like = code == "success" || code == "new_authtok_reqd";
        match self {
            ControlFlag::Required | ControlFlag::Requisite | ControlFlag::Optional
                if success_like =>
            {
                Action::Ok
            }
            ControlFlag::Required | ControlFlag::Requisite if code == "ignore" => Action::Ignore,
            ControlFlag::Required => Action::Bad,
            ControlFlag::Requisite => Action::Die,
            ControlFlag::Sufficient if success_like => Action::Done,
            ControlFlag::Sufficient | ControlFlag::Optional => Action::Ignore,
            ControlFlag::Actions(map) => map
                .get(code)
                .or_else(|| map.get("default"))
                .copied()
                .unwrap_or(Action::Bad),
        }
    }

    /// A short name for reports.
    pub fn describe(&self) -> String {
        match self {
            ControlFlag::Required => "required".into(),
            ControlFlag::Requisite => "requisite".into(),
            ControlFlag::Sufficient => "sufficient".into(),
            ControlFlag::Optional => "optional".into(),
            ControlFlag::Actions(map) => {
                let parts: Vec<String> = map
                    .iter()
                    .map(|(code, action)| format!("{code}={}", describe_action(*action)))
                    .collect();
                format!("[{}]", parts.join(" "))
            }
        }
    }
}

fn describe_action(action: Action) -> String {
    match action {
        Action::Ignore => "ignore".into(),
        Action::Ok => "ok".into(),
        Action::Done => "done".into(),
        Action::Bad => "bad".into(),
        Action::Die => "die".into(),
        Action::Reset => "reset".into(),
        Action::Jump(n) => n.to_string(),
    }
}

/// One module line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PamRule {
    /// Management group.
    pub facility: Facility,
    /// The line had a `-` prefix (no log if the module is missing; a missing module still
    /// returns `module_unknown`).
    pub quiet_if_missing: bool,
    /// Control.
    pub control: ControlFlag,
    /// Module name without directory and `.so`, e.g. `pam_unix`; `(invalid line)` for a line
    /// Linux-PAM would turn into an always-failing handler.
    pub module: String,
    /// Module arguments.
    pub args: Vec<String>,
    /// File and line.
    pub evidence: Evidence,
}

impl PamRule {
    fn must_fail(facility: Facility, evidence: Evidence) -> PamRule {
        PamRule {
            facility,
            quiet_if_missing: false,
            control: ControlFlag::Actions(BTreeMap::from([("default".into(), Action::Die)])),
            module: INVALID_LINE.into(),
            args: Vec::new(),
            evidence,
        }
    }

    /// The option that lets users without an enrolled factor through, if any.
    pub fn opt_out(&self) -> Option<&str> {
        self.args
            .iter()
            .map(String::as_str)
            .find(|arg| OPT_OUT_OPTIONS.contains(arg))
    }
}

/// An entry of a flattened stack: `include` and `@include` are inlined, `substack` keeps its
/// own level because jumps and `done`/`die` are scoped to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    /// A module.
    Rule(PamRule),
    /// A `substack` line and the stack it pulls in.
    Substack {
        /// The `substack` line.
        evidence: Evidence,
        /// The sub-stack's entries.
        entries: Vec<Entry>,
    },
}

/// The auth stack of one service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stack {
    /// Service name, e.g. `sshd`.
    pub service: String,
    /// Whether `/etc/pam.d/<service>` exists.
    pub found: bool,
    /// Whether an error (invalid line, missing include, cycle) affected this stack.
    pub broken: bool,
    /// The entries.
    pub entries: Vec<Entry>,
}

/// What kind of second factor a module provides.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MfaModule {
    /// The rule.
    pub rule: PamRule,
    /// `totp`, `u2f`, `otp`, `push`, `radius`, `smartcard`, ...
    pub kind: &'static str,
    /// Why `pam_sss` counts, when it is `pam_sss`.
    pub note: Option<Evidence>,
}

/// The verdict on one service's auth stack.
// The flags are independent facts about the stack, not a state machine in disguise.
#[allow(clippy::struct_excessive_bools)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthAnalysis {
    /// Service name.
    pub service: String,
    /// Whether the service file exists.
    pub found: bool,
    /// Whether errors affected the stack (its verdict is then not trustworthy).
    pub broken: bool,
    /// Whether any outcome lets the stack succeed at all.
    pub can_succeed: bool,
    /// MFA modules on the stack, in order.
    pub mfa_modules: Vec<MfaModule>,
    /// No success is possible while every MFA module fails.
    pub mfa_required: bool,
    /// No success is possible while every password-type module fails.
    pub knowledge_required: bool,
    /// Every rule of the stack, flattened, for evidence.
    pub rules: Vec<Evidence>,
}

impl AuthAnalysis {
    /// Why the MFA modules present do not make a second factor required, for evidence.
    pub fn bypass_reasons(&self) -> Vec<String> {
        self.mfa_modules
            .iter()
            .map(|m| {
                let rule = &m.rule;
                let at = format!("{}:{}", rule.evidence.source, rule.evidence.line);
                if let Some(option) = rule.opt_out() {
                    format!(
                        "{} at {at} has {option}: users without an enrolled secret skip it",
                        rule.module
                    )
                } else {
                    format!(
                        "{} at {at} ({}) can be skipped: the stack can succeed without it",
                        rule.module,
                        rule.control.describe()
                    )
                }
            })
            .collect()
    }
}

/// Everything the PAM collector learnt.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PamReport {
    /// Analyses of the services in [`SERVICES`] that exist, plus `other` when a service is
    /// missing (Linux-PAM falls back to it).
    pub services: BTreeMap<String, AuthAnalysis>,
}

impl PamReport {
    /// The analysis Linux-PAM would use for `service`: its own file, else `other`.
    pub fn effective(&self, service: &str) -> Option<&AuthAnalysis> {
        self.services
            .get(service)
            .filter(|a| a.found)
            .or_else(|| self.services.get("other").filter(|a| a.found))
    }
}

/// Parses and analyses the auth stacks of [`SERVICES`] under `root`, recording observations
/// and errors.
pub fn collect(root: &Path, inventory: &mut Inventory) -> PamReport {
    let mut loader = Loader::new(root);
    let sssd_note = sssd_two_factor(root, &mut loader.errors);
    let mut report = PamReport::default();
    let mut names: Vec<&str> = SERVICES.to_vec();
    names.push("other");
    for service in names {
        let stack = loader.stack(service, Facility::Auth);
        if !stack.found {
            continue;
        }
        let analysis = analyse(&stack, sssd_note.as_ref());
        inventory.observations.push(observation(&analysis));
        report.services.insert(service.to_string(), analysis);
    }
    inventory.errors.extend(loader.errors);
    report
}

/// Analyses one stack. `sssd_note` is evidence that sssd prompts for a second factor, which
/// is what makes `pam_sss` count as MFA.
pub fn analyse(stack: &Stack, sssd_note: Option<&Evidence>) -> AuthAnalysis {
    let mut rules = Vec::new();
    flatten(&stack.entries, &mut rules);
    let mfa_modules: Vec<MfaModule> = rules
        .iter()
        .filter_map(|rule| mfa_module(rule, sssd_note))
        .collect();
    let is_enforcing_mfa =
        |rule: &PamRule| mfa_module(rule, sssd_note).is_some() && rule.opt_out().is_none();
    let is_knowledge = |rule: &PamRule| {
        KNOWLEDGE_MODULES.contains(&rule.module.as_str()) && mfa_module(rule, sssd_note).is_none()
    };
    let can_succeed = succeeds(&stack.entries, &|_| false);
    AuthAnalysis {
        service: stack.service.clone(),
        found: stack.found,
        broken: stack.broken,
        can_succeed,
        mfa_required: !mfa_modules.is_empty() && !succeeds(&stack.entries, &is_enforcing_mfa),
        knowledge_required: rules.iter().any(|rule| is_knowledge(rule))
            && !succeeds(&stack.entries, &is_knowledge),
        mfa_modules,
        rules: rules.iter().map(|r| r.evidence.clone()).collect(),
    }
}

fn flatten<'a>(entries: &'a [Entry], out: &mut Vec<&'a PamRule>) {
    for entry in entries {
        match entry {
            Entry::Rule(rule) => out.push(rule),
            Entry::Substack { entries, .. } => flatten(entries, out),
        }
    }
}

/// Whether `rule` is a second-factor module, and which kind.
pub fn mfa_module(rule: &PamRule, sssd_note: Option<&Evidence>) -> Option<MfaModule> {
    let kind = match rule.module.as_str() {
        "pam_google_authenticator" => "totp",
        "pam_oath" => "otp",
        "pam_u2f" => "u2f",
        "pam_yubico" => "yubikey",
        "pam_duo" => "push",
        "pam_radius" | "pam_radius_auth" => "radius",
        "pam_privacyidea" => "privacyidea",
        "pam_pkcs11" | "pam_p11" => "smartcard",
        // pam_sss is a password check unless sssd is set up to ask for more.
        "pam_sss" if rule.args.iter().any(|a| a == "require_cert_auth") => "smartcard",
        "pam_sss" if sssd_note.is_some() => "sssd-2fa",
        _ => return None,
    };
    let note = (rule.module == "pam_sss" && kind == "sssd-2fa")
        .then(|| sssd_note.cloned())
        .flatten();
    Some(MfaModule {
        rule: rule.clone(),
        kind,
        note,
    })
}

/// Evidence in sssd.conf that sssd asks for two factors: a `[prompting/2fa]` section.
fn sssd_two_factor(root: &Path, errors: &mut Vec<FactError>) -> Option<Evidence> {
    let text = match config_file::read(root, SSSD_CONF) {
        Ok(text) => text?,
        Err(error) => {
            errors.push(fact_error(PROBE, SSSD_CONF, &error));
            return None;
        }
    };
    text.lines().enumerate().find_map(|(index, line)| {
        let trimmed = line.trim().to_ascii_lowercase();
        trimmed
            .starts_with("[prompting/2fa")
            .then(|| line_evidence(SSSD_CONF, index + 1, PROBE, line))
    })
}

/// Impression and status of Linux-PAM's dispatcher, folded into the four states that decide
/// the result: the stack succeeds only when it ends `PositiveSuccess`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum State {
    Undefined,
    PositiveSuccess,
    PositiveFailure,
    Negative,
}

/// Whether some combination of module outcomes makes the stack succeed, when the modules
/// matching `forced` can only fail.
pub fn succeeds(entries: &[Entry], forced: &dyn Fn(&PamRule) -> bool) -> bool {
    finals(entries, State::Undefined, forced).contains(&State::PositiveSuccess)
}

/// The states the stack can end in when entered in `start`. Exhaustive over outcomes, but
/// memoised on (position, state), so linear in the stack's length.
fn finals(entries: &[Entry], start: State, forced: &dyn Fn(&PamRule) -> bool) -> HashSet<State> {
    let mut ends = HashSet::new();
    let mut seen = HashSet::new();
    let mut work = vec![(0_usize, start)];
    while let Some((pc, state)) = work.pop() {
        if !seen.insert((pc, state)) {
            continue;
        }
        match entries.get(pc) {
            None => {
                ends.insert(state);
            }
            Some(Entry::Substack { entries: sub, .. }) => {
                work.extend(finals(sub, state, forced).into_iter().map(|s| (pc + 1, s)));
            }
            Some(Entry::Rule(rule)) => {
                for code in outcomes(rule, forced(rule)) {
                    let action = rule.control.action(code);
                    match step(action, code, state, start) {
                        Step::Next(next) => match action {
                            Action::Jump(n) if pc + n < entries.len() => {
                                work.push((pc + 1 + n, next));
                            }
                            // Jumping past the end is a "bad jump": the stack fails.
                            Action::Jump(_) => {
                                ends.insert(State::Negative);
                            }
                            _ => work.push((pc + 1, next)),
                        },
                        Step::Stop(end) => {
                            ends.insert(end);
                        }
                    }
                }
            }
        }
    }
    ends
}

enum Step {
    Next(State),
    Stop(State),
}

/// One dispatch step, after `_pam_dispatch_aux` (auth is never a cached chain, so jumps do
/// not change the state). `reset_to` is the state the current (sub)stack was entered in.
fn step(action: Action, code: &str, state: State, reset_to: State) -> Step {
    let positive = |state: State| match state {
        State::Undefined | State::PositiveSuccess if code != "ignore" => {
            if code == "success" || code == "new_authtok_reqd" {
                State::PositiveSuccess
            } else {
                State::PositiveFailure
            }
        }
        other => other,
    };
    match action {
        Action::Ignore | Action::Jump(_) => Step::Next(state),
        Action::Reset => Step::Next(reset_to),
        Action::Ok => Step::Next(positive(state)),
        Action::Done => {
            let next = positive(state);
            if next == State::Negative {
                Step::Next(next)
            } else {
                Step::Stop(next)
            }
        }
        Action::Bad => Step::Next(State::Negative),
        Action::Die => Step::Stop(State::Negative),
    }
}

/// Return codes a module may produce. `pam_deny` and `pam_permit` are fixed; a forced module
/// can only fail; anything else may return anything.
fn outcomes(rule: &PamRule, forced: bool) -> &'static [&'static str] {
    if forced {
        return &FAILURE_CODES;
    }
    match rule.module.as_str() {
        "pam_deny" | INVALID_LINE => &["auth_err"],
        "pam_permit" => &["success"],
        _ => &ALL_CODES,
    }
}

/// A parsed line of a PAM file.
#[derive(Clone, Debug)]
enum Line {
    Rule(PamRule),
    /// `@include FILE` (every facility).
    IncludeAll {
        target: String,
        evidence: Evidence,
    },
    /// `TYPE include FILE` or `TYPE substack FILE`.
    Include {
        facility: Facility,
        target: String,
        substack: bool,
        evidence: Evidence,
    },
}

/// Reads and parses PAM files once each, and builds stacks from them.
pub struct Loader<'a> {
    root: &'a Path,
    files: HashMap<String, Option<Vec<Line>>>,
    /// Errors met, each once.
    pub errors: Vec<FactError>,
}

impl<'a> Loader<'a> {
    /// A loader reading under `root`.
    pub fn new(root: &'a Path) -> Loader<'a> {
        Loader {
            root,
            files: HashMap::new(),
            errors: Vec::new(),
        }
    }

    /// The stack of `facility` for `service` (a name in `/etc/pam.d` or an absolute path).
    pub fn stack(&mut self, service: &str, facility: Facility) -> Stack {
        let path = service_path(service);
        let found = self.lines(&path).is_some();
        let mut broken = false;
        let mut open = Vec::new();
        let entries = self.build(&path, facility, &mut open, &mut broken);
        Stack {
            service: service.to_string(),
            found,
            broken,
            entries,
        }
    }

    fn build(
        &mut self,
        path: &str,
        facility: Facility,
        open: &mut Vec<String>,
        broken: &mut bool,
    ) -> Vec<Entry> {
        let Some(lines) = self.lines(path) else {
            return Vec::new();
        };
        open.push(path.to_string());
        let mut entries = Vec::new();
        for line in lines {
            match line {
                Line::Rule(rule) if rule.facility == facility => {
                    // An invalid line only hurts the facility Linux-PAM assigns it to.
                    *broken |= rule.module == INVALID_LINE;
                    entries.push(Entry::Rule(rule));
                }
                Line::IncludeAll { target, evidence } => {
                    entries.extend(self.include(&target, facility, evidence, open, broken));
                }
                Line::Include {
                    facility: f,
                    target,
                    substack,
                    evidence,
                } if f == facility => {
                    let included = self.include(&target, facility, evidence.clone(), open, broken);
                    if substack {
                        entries.push(Entry::Substack {
                            evidence,
                            entries: included,
                        });
                    } else {
                        entries.extend(included);
                    }
                }
                // Lines of other facilities.
                Line::Rule(_) | Line::Include { .. } => {}
            }
        }
        open.pop();
        entries
    }

    /// Entries of an included file; a cycle, excessive depth or a missing file becomes one
    /// always-failing rule, as in Linux-PAM where the whole service then fails.
    fn include(
        &mut self,
        target: &str,
        facility: Facility,
        at: Evidence,
        open: &mut Vec<String>,
        broken: &mut bool,
    ) -> Vec<Entry> {
        let path = service_path(target);
        let problem = if open.contains(&path) {
            Some(format!("cyclic include of {path}"))
        } else if open.len() > MAX_DEPTH {
            Some(format!("include nested deeper than {MAX_DEPTH} at {path}"))
        } else if self.lines(&path).is_none() {
            Some(format!("included file {path} is missing or unreadable"))
        } else {
            None
        };
        if let Some(message) = problem {
            self.error(&at.source, &format!("line {}: {message}", at.line));
            *broken = true;
            return vec![Entry::Rule(PamRule::must_fail(facility, at))];
        }
        self.build(&path, facility, open, broken)
    }

    /// The parsed lines of a file, `None` when missing or unreadable (the error is recorded).
    fn lines(&mut self, path: &str) -> Option<Vec<Line>> {
        if let Some(cached) = self.files.get(path) {
            return cached.clone();
        }
        let parsed = match config_file::read(self.root, path) {
            Ok(Some(text)) => {
                let (lines, errors) = parse_file(path, &text);
                for error in errors {
                    self.error(path, &error);
                }
                Some(lines)
            }
            Ok(None) => None,
            Err(error) => {
                self.error(path, &error.to_string());
                None
            }
        };
        self.files.insert(path.to_string(), parsed.clone());
        parsed
    }

    fn error(&mut self, source: &str, message: &str) {
        let error = fact_error(PROBE, source, &message);
        if !self.errors.contains(&error) {
            self.errors.push(error);
        }
    }
}

/// `/etc/pam.d/NAME` for a service name, or the path itself when absolute.
fn service_path(service: &str) -> String {
    if service.starts_with('/') {
        service.to_string()
    } else {
        format!("{PAM_DIR}/{service}")
    }
}

/// Parses a PAM file into lines, with one error message per line Linux-PAM would reject.
/// Rejected lines become always-failing rules, as Linux-PAM makes them.
fn parse_file(source: &str, text: &str) -> (Vec<Line>, Vec<String>) {
    let mut lines = Vec::new();
    let mut errors = Vec::new();
    for (number, raw) in logical_lines(text) {
        let content = raw.split('#').next().unwrap_or_default();
        let tokens = tokenize(content);
        if tokens.is_empty() {
            continue;
        }
        let evidence = line_evidence(source, number, PROBE, &raw);
        match parse_line(&tokens, evidence.clone()) {
            Ok(line) => lines.push(line),
            Err(message) => {
                errors.push(format!("line {number}: {message}"));
                // Linux-PAM turns a bad line into an always-failing handler of its type, and
                // of type auth when the type itself is unreadable.
                let facility =
                    Facility::parse(tokens[0].trim_start_matches('-')).unwrap_or(Facility::Auth);
                lines.push(Line::Rule(PamRule::must_fail(facility, evidence)));
            }
        }
    }
    (lines, errors)
}

fn parse_line(tokens: &[String], evidence: Evidence) -> Result<Line, String> {
    let first = tokens[0].as_str();
    if first.eq_ignore_ascii_case("@include") {
        let target = tokens.get(1).ok_or("@include without a file")?.clone();
        return Ok(Line::IncludeAll { target, evidence });
    }
    let (quiet, type_word) = match first.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, first),
    };
    let facility =
        Facility::parse(type_word).ok_or_else(|| format!("unknown module type {type_word:?}"))?;
    let control_word = tokens.get(1).ok_or("missing control field")?;
    let module_path = tokens.get(2).ok_or("missing module path")?;
    let lower = control_word.to_ascii_lowercase();
    if lower == "include" || lower == "substack" {
        return Ok(Line::Include {
            facility,
            target: module_path.clone(),
            substack: lower == "substack",
            evidence,
        });
    }
    Ok(Line::Rule(PamRule {
        facility,
        quiet_if_missing: quiet,
        control: parse_control(control_word)?,
        module: module_name(module_path),
        args: tokens[3..].to_vec(),
        evidence,
    }))
}

fn parse_control(word: &str) -> Result<ControlFlag, String> {
    match word.to_ascii_lowercase().as_str() {
        "required" => return Ok(ControlFlag::Required),
        "requisite" => return Ok(ControlFlag::Requisite),
        "sufficient" => return Ok(ControlFlag::Sufficient),
        "optional" => return Ok(ControlFlag::Optional),
        _ => {}
    }
    let inner = word
        .strip_prefix('[')
        .and_then(|w| w.strip_suffix(']'))
        .ok_or_else(|| format!("unknown control {word:?}"))?;
    let mut map = BTreeMap::new();
    for pair in inner.split_whitespace() {
        let (code, action) = pair
            .split_once('=')
            .ok_or_else(|| format!("control item {pair:?} is not value=action"))?;
        let code = code.to_ascii_lowercase();
        if !KNOWN_CODES.contains(&code.as_str()) {
            return Err(format!("unknown return value {code:?} in control"));
        }
        let action =
            Action::parse(action).ok_or_else(|| format!("unknown action {action:?} in control"))?;
        map.insert(code, action);
    }
    Ok(ControlFlag::Actions(map))
}

/// `pam_unix` from `pam_unix.so`, `/lib/security/pam_unix.so` or `pam_unix`.
fn module_name(path: &str) -> String {
    let base = path.rsplit('/').next().unwrap_or(path);
    base.strip_suffix(".so").unwrap_or(base).to_string()
}

/// Splits on whitespace, keeping `[...]` groups (controls, bracketed arguments) whole.
fn tokenize(text: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let Some(&first) = chars.peek() else {
            break;
        };
        let mut token = String::new();
        if first == '[' {
            for c in chars.by_ref() {
                token.push(c);
                if c == ']' {
                    break;
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                token.push(c);
            }
        }
        tokens.push(token);
    }
    tokens
}

fn observation(analysis: &AuthAnalysis) -> Observation {
    let mfa = if analysis.mfa_required {
        "required"
    } else if analysis.mfa_modules.is_empty() {
        "none"
    } else {
        "optional"
    };
    let modules: Vec<_> = analysis
        .mfa_modules
        .iter()
        .map(|m| {
            json!({
                "module": m.rule.module,
                "kind": m.kind,
                "control": m.rule.control.describe(),
                "opt_out": m.rule.opt_out(),
                "source": m.rule.evidence.source,
                "line": m.rule.evidence.line,
            })
        })
        .collect();
    Observation {
        category: "pam".into(),
        name: analysis.service.clone(),
        value: json!({
            "facility": "auth",
            "mfa": mfa,
            "mfa_modules": modules,
            "password_required": analysis.knowledge_required,
            "can_succeed": analysis.can_succeed,
            "broken": analysis.broken,
        }),
        evidence: analysis.rules.clone(),
    }
}

#[cfg(test)]
// Tests unwrap: a panic there is a test failure pointing at its line.
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::inventory::test_support::tree;

    /// The auth analysis of `sshd` built from `files` (paths under /etc/pam.d).
    fn sshd(files: &[(&str, &str)]) -> (AuthAnalysis, Vec<FactError>) {
        let paths: Vec<(String, &str)> = files
            .iter()
            .map(|(name, text)| (format!("{PAM_DIR}/{name}"), *text))
            .collect();
        let refs: Vec<(&str, &str)> = paths.iter().map(|(p, t)| (p.as_str(), *t)).collect();
        let tmp = tree(&refs);
        let mut loader = Loader::new(tmp.path());
        let stack = loader.stack("sshd", Facility::Auth);
        (analyse(&stack, None), loader.errors)
    }

    const DEBIAN_COMMON_AUTH: &str = "auth\t[success=1 default=ignore]\tpam_unix.so nullok\nauth\trequisite\t\t\tpam_deny.so\nauth\trequired\t\t\tpam_permit.so\n";

    #[test]
    fn debian_default_is_password_only() {
        let (a, errors) = sshd(&[
            (
                "sshd",
                "@include common-auth\naccount required pam_nologin.so\n",
            ),
            ("common-auth", DEBIAN_COMMON_AUTH),
        ]);
        assert!(errors.is_empty());
        assert!(a.can_succeed);
        assert!(a.knowledge_required);
        assert!(a.mfa_modules.is_empty());
        assert!(!a.mfa_required);
        assert_eq!(a.rules.len(), 3);
        assert_eq!(a.rules[0].source, "/etc/pam.d/common-auth");
    }

    #[test]
    fn required_totp_after_common_auth_is_required() {
        let (a, _) = sshd(&[
            (
                "sshd",
                "@include common-auth\nauth required pam_google_authenticator.so\n",
            ),
            ("common-auth", DEBIAN_COMMON_AUTH),
        ]);
        assert!(a.mfa_required);
        assert!(a.knowledge_required);
    }

    #[test]
    fn totp_alone_is_required_but_no_password() {
        let (a, _) = sshd(&[("sshd", "auth required pam_google_authenticator.so\n")]);
        assert!(a.mfa_required);
        assert!(!a.knowledge_required);
    }

    #[test]
    fn nullok_makes_it_optional() {
        let (a, _) = sshd(&[("sshd", "auth required pam_google_authenticator.so nullok\n")]);
        assert!(!a.mfa_required);
        assert_eq!(a.mfa_modules.len(), 1);
        assert!(a.bypass_reasons()[0].contains("nullok"));
    }

    #[test]
    fn sufficient_mfa_is_optional() {
        let (a, _) = sshd(&[
            ("sshd", "auth sufficient pam_u2f.so\n@include common-auth\n"),
            ("common-auth", DEBIAN_COMMON_AUTH),
        ]);
        assert!(!a.mfa_required);
        assert_eq!(a.mfa_modules[0].kind, "u2f");
    }

    #[test]
    fn success_jump_over_mfa_is_a_bypass() {
        // pam_unix success jumps over the TOTP module straight to pam_permit.
        let (a, _) = sshd(&[(
            "sshd",
            "auth [success=2 default=ignore] pam_unix.so\nauth requisite pam_deny.so\nauth required pam_oath.so\nauth required pam_permit.so\n",
        )]);
        assert!(!a.mfa_required);
    }

    #[test]
    fn success_jump_that_lands_on_mfa_keeps_it_required() {
        let (a, _) = sshd(&[(
            "sshd",
            "auth [success=1 default=ignore] pam_unix.so\nauth requisite pam_deny.so\nauth [success=ok default=die] pam_yubico.so\nauth required pam_permit.so\n",
        )]);
        assert!(a.mfa_required);
    }

    #[test]
    fn requisite_u2f_before_unix_is_required() {
        let (a, _) = sshd(&[(
            "sshd",
            "auth requisite pam_u2f.so cue\nauth required pam_unix.so\n",
        )]);
        assert!(a.mfa_required);
    }

    #[test]
    fn substack_done_only_ends_the_substack() {
        // `sufficient` pam_unix inside the substack ends the substack, not the stack: the
        // TOTP line after it still runs.
        let (a, _) = sshd(&[
            (
                "sshd",
                "auth substack password-auth\nauth required pam_google_authenticator.so\n",
            ),
            (
                "password-auth",
                "auth sufficient pam_unix.so\nauth required pam_deny.so\n",
            ),
        ]);
        assert!(a.mfa_required);
        // As an include the same `sufficient` ends the whole stack: bypass.
        let (b, _) = sshd(&[
            (
                "sshd",
                "auth include password-auth\nauth required pam_google_authenticator.so\n",
            ),
            (
                "password-auth",
                "auth sufficient pam_unix.so\nauth required pam_deny.so\n",
            ),
        ]);
        assert!(!b.mfa_required);
    }

    #[test]
    fn jump_past_end_fails() {
        let (a, _) = sshd(&[("sshd", "auth [success=5 default=die] pam_unix.so\n")]);
        assert!(!a.can_succeed);
    }

    #[test]
    fn dash_prefix_and_continuations_parse() {
        let (a, errors) = sshd(&[("sshd", "-auth required \\\n  pam_duo.so\n# comment\n")]);
        assert!(errors.is_empty(), "{errors:?}");
        assert!(a.mfa_required);
        assert_eq!(a.rules[0].line, 1);
    }

    #[test]
    fn broken_syntax_is_partial_result_and_error() {
        let (a, errors) = sshd(&[(
            "sshd",
            "auth [success=1 bogus=ignore] pam_unix.so\nauth sometimes pam_unix.so\nfoo required pam_x.so\nauth\nauth required pam_google_authenticator.so\n",
        )]);
        assert_eq!(errors.len(), 4);
        assert!(errors.iter().all(|e| e.source == "/etc/pam.d/sshd"));
        assert!(a.broken);
        assert_eq!(a.mfa_modules.len(), 1);
        // Linux-PAM fails a stack with invalid lines, so nothing can succeed.
        assert!(!a.can_succeed);
    }

    #[test]
    fn cyclic_include_terminates() {
        let (a, errors) = sshd(&[
            ("sshd", "@include a\n"),
            ("a", "auth include b\n"),
            ("b", "auth substack a\n@include sshd\n"),
        ]);
        assert!(a.broken);
        assert!(!a.can_succeed);
        assert!(errors.iter().any(|e| e.error.contains("cyclic include")));
    }

    #[test]
    fn missing_include_is_an_error() {
        let (a, errors) = sshd(&[("sshd", "@include nowhere\n")]);
        assert!(a.broken);
        assert!(errors[0].error.contains("/etc/pam.d/nowhere"));
    }

    #[test]
    fn pam_sss_counts_only_with_two_factor_evidence() {
        let tmp = tree(&[
            ("/etc/pam.d/sshd", "auth required pam_sss.so\n"),
            (
                "/etc/sssd/sssd.conf",
                "[sssd]\n[prompting/2fa]\nfirst_prompt = Password\n",
            ),
        ]);
        let mut inventory = Inventory::default();
        let report = collect(tmp.path(), &mut inventory);
        let a = report.effective("sshd").unwrap();
        assert!(a.mfa_required);
        assert_eq!(a.mfa_modules[0].note.as_ref().unwrap().line, 2);

        let (plain, _) = sshd(&[("sshd", "auth required pam_sss.so\n")]);
        assert!(plain.mfa_modules.is_empty());
        assert!(plain.knowledge_required);
    }

    #[test]
    fn missing_service_falls_back_to_other() {
        let tmp = tree(&[("/etc/pam.d/other", "auth required pam_deny.so\n")]);
        let mut inventory = Inventory::default();
        let report = collect(tmp.path(), &mut inventory);
        assert_eq!(report.effective("sshd").unwrap().service, "other");
    }

    #[test]
    fn binary_pam_file_is_an_error() {
        let tmp = tree(&[("/etc/pam.d/sshd", "auth\0required")]);
        let mut inventory = Inventory::default();
        let report = collect(tmp.path(), &mut inventory);
        assert!(report.effective("sshd").is_none());
        assert_eq!(inventory.errors[0].source, "/etc/pam.d/sshd");
    }

    #[test]
    fn unterminated_bracket_does_not_panic() {
        let (_, errors) = sshd(&[("sshd", "auth [success=1 pam_unix.so\n[\n]\n")]);
        assert!(!errors.is_empty());
    }
}
