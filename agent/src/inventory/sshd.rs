//! The effective OpenSSH server configuration, as far as authentication is concerned.
//!
//! Owns parsing `/etc/ssh/sshd_config` the way sshd(8) does: `Include` (globs, relative paths
//! against `/etc/ssh`, depth limit 16 as `SERVCONF_MAX_DEPTH`, cycles reported instead of
//! followed), case-insensitive keywords, `keyword value` and `keyword=value`, first obtained
//! value wins except for repeatable keywords (`Port`, `ListenAddress`), and `Match` blocks,
//! each recorded with its criteria and the settings it overrides. A `Match` opened in an
//! included file ends with that file (sshd restores the including file's context).
//!
//! It reports what the files say plus OpenSSH's compiled-in defaults; it does not judge
//! whether that is multi-factor (that is [`super::mfa`]) and does not evaluate which users a
//! `Match` applies to.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::json;

use super::config_file::{self, fact_error, line_evidence};
use super::{Evidence, FactError, Inventory, Observation};

/// The main configuration file, as a path on the real system.
pub const SSHD_CONFIG: &str = "/etc/ssh/sshd_config";
/// Relative `Include` paths resolve against this directory.
const SSH_DIR: &str = "/etc/ssh";
/// sshd's `SERVCONF_MAX_DEPTH`: deeper includes are fatal to sshd, so an error here.
const MAX_INCLUDE_DEPTH: usize = 16;
/// Bound on files read in one parse: non-cyclic but fan-out includes would otherwise grow
/// exponentially with depth.
const MAX_FILES: usize = 256;
/// Name used in evidence and errors.
const PROBE: &str = "sshd";

/// The keywords that decide how users authenticate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Keyword {
    /// `AuthenticationMethods`: lists of methods that must all succeed.
    AuthenticationMethods,
    /// `PasswordAuthentication`.
    PasswordAuthentication,
    /// `KbdInteractiveAuthentication` (and its deprecated alias
    /// `ChallengeResponseAuthentication`, which sshd maps to the same option).
    KbdInteractiveAuthentication,
    /// `PermitRootLogin`.
    PermitRootLogin,
    /// `PubkeyAuthentication`.
    PubkeyAuthentication,
    /// `UsePAM`.
    UsePam,
    /// `PermitEmptyPasswords`.
    PermitEmptyPasswords,
    /// `GSSAPIAuthentication` (Kerberos tickets; RHEL ships it enabled).
    GssapiAuthentication,
    /// `HostbasedAuthentication`.
    HostbasedAuthentication,
    /// `Port` (repeatable).
    Port,
    /// `ListenAddress` (repeatable).
    ListenAddress,
}

impl Keyword {
    /// All tracked keywords, in output order.
    pub const ALL: [Keyword; 11] = [
        Keyword::AuthenticationMethods,
        Keyword::PasswordAuthentication,
        Keyword::KbdInteractiveAuthentication,
        Keyword::PermitRootLogin,
        Keyword::PubkeyAuthentication,
        Keyword::UsePam,
        Keyword::PermitEmptyPasswords,
        Keyword::GssapiAuthentication,
        Keyword::HostbasedAuthentication,
        Keyword::Port,
        Keyword::ListenAddress,
    ];

    /// Looks a keyword up case-insensitively, as sshd does.
    pub fn parse(word: &str) -> Option<Keyword> {
        let lower = word.to_ascii_lowercase();
        Some(match lower.as_str() {
            "authenticationmethods" => Keyword::AuthenticationMethods,
            "passwordauthentication" => Keyword::PasswordAuthentication,
            "kbdinteractiveauthentication" | "challengeresponseauthentication" => {
                Keyword::KbdInteractiveAuthentication
            }
            "permitrootlogin" => Keyword::PermitRootLogin,
            "pubkeyauthentication" => Keyword::PubkeyAuthentication,
            "usepam" => Keyword::UsePam,
            "permitemptypasswords" => Keyword::PermitEmptyPasswords,
            "gssapiauthentication" => Keyword::GssapiAuthentication,
            "hostbasedauthentication" => Keyword::HostbasedAuthentication,
            "port" => Keyword::Port,
            "listenaddress" => Keyword::ListenAddress,
            _ => return None,
        })
    }

    /// The canonical spelling.
    pub fn name(self) -> &'static str {
        match self {
            Keyword::AuthenticationMethods => "AuthenticationMethods",
            Keyword::PasswordAuthentication => "PasswordAuthentication",
            Keyword::KbdInteractiveAuthentication => "KbdInteractiveAuthentication",
            Keyword::PermitRootLogin => "PermitRootLogin",
            Keyword::PubkeyAuthentication => "PubkeyAuthentication",
            Keyword::UsePam => "UsePAM",
            Keyword::PermitEmptyPasswords => "PermitEmptyPasswords",
            Keyword::GssapiAuthentication => "GSSAPIAuthentication",
            Keyword::HostbasedAuthentication => "HostbasedAuthentication",
            Keyword::Port => "Port",
            Keyword::ListenAddress => "ListenAddress",
        }
    }

    /// Upstream OpenSSH's compiled-in default (sshd_config(5)). Distributions change some of
    /// them in the file they ship (Debian: `UsePAM yes`, `KbdInteractiveAuthentication no`),
    /// which the parser sees as ordinary lines.
    pub fn default_value(self) -> &'static str {
        match self {
            Keyword::AuthenticationMethods => "any",
            Keyword::PasswordAuthentication
            | Keyword::KbdInteractiveAuthentication
            | Keyword::PubkeyAuthentication => "yes",
            Keyword::PermitRootLogin => "prohibit-password",
            Keyword::UsePam
            | Keyword::PermitEmptyPasswords
            | Keyword::GssapiAuthentication
            | Keyword::HostbasedAuthentication => "no",
            Keyword::Port => "22",
            Keyword::ListenAddress => "0.0.0.0 ::",
        }
    }

    /// Whether every occurrence adds a value instead of the first one winning.
    fn repeatable(self) -> bool {
        matches!(self, Keyword::Port | Keyword::ListenAddress)
    }

    /// Whether sshd accepts the keyword inside a `Match` block (sshd_config(5), "Match").
    fn allowed_in_match(self) -> bool {
        !matches!(
            self,
            Keyword::UsePam | Keyword::Port | Keyword::ListenAddress
        )
    }
}

/// One obtained value with the line it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Setting {
    /// The arguments joined by single spaces, yes/no values lower-cased.
    pub value: String,
    /// File and line.
    pub evidence: Evidence,
}

/// A `Match` block and what it overrides.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MatchBlock {
    /// The criteria as written, e.g. `Group contractors`.
    pub criteria: String,
    /// The `Match` line.
    pub evidence: Evidence,
    /// First value of each tracked keyword inside the block.
    pub settings: BTreeMap<Keyword, Setting>,
}

/// The parsed configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SshdConfig {
    /// First value of each single-valued keyword outside any `Match`.
    pub global: BTreeMap<Keyword, Setting>,
    /// Every value of the repeatable keywords, in order.
    pub repeated: BTreeMap<Keyword, Vec<Setting>>,
    /// The `Match` blocks in file order.
    pub match_blocks: Vec<MatchBlock>,
    /// Files read, as system paths, in order.
    pub files: Vec<String>,
    /// Problems that may hide settings (unreadable include, cycle, depth): the configuration
    /// is then incomplete and no verdict may rest on it alone.
    pub problems: Vec<FactError>,
}

impl SshdConfig {
    /// The global value of `keyword`: the configured one, else the OpenSSH default (with no
    /// evidence).
    pub fn global_value(&self, keyword: Keyword) -> (String, Option<&Evidence>) {
        match self.global.get(&keyword) {
            Some(setting) => (setting.value.clone(), Some(&setting.evidence)),
            None => (keyword.default_value().to_string(), None),
        }
    }

    /// The value for users in `block`: the block's own value overrides the global one.
    pub fn value_in(&self, block: &MatchBlock, keyword: Keyword) -> (String, Option<Evidence>) {
        if let Some(setting) = block.settings.get(&keyword) {
            return (setting.value.clone(), Some(setting.evidence.clone()));
        }
        let (value, evidence) = self.global_value(keyword);
        (value, evidence.cloned())
    }
}

/// Parses the sshd configuration under `root` and records it as observations. `None` when
/// `sshd_config` is missing or unreadable (the error is recorded unless the file is missing).
pub fn collect(root: &Path, inventory: &mut Inventory) -> Option<SshdConfig> {
    let config = match parse(root) {
        Ok(Some(config)) => config,
        Ok(None) => return None,
        Err(error) => {
            inventory.errors.push(error);
            return None;
        }
    };
    inventory.errors.extend(config.problems.iter().cloned());
    inventory.observations.extend(observations(&config));
    Some(config)
}

/// Parses `/etc/ssh/sshd_config` under `root`. `Ok(None)` when it does not exist; `Err` when
/// the main file cannot be read. Problems in included files are in [`SshdConfig::problems`].
pub fn parse(root: &Path) -> Result<Option<SshdConfig>, FactError> {
    let text = match config_file::read(root, SSHD_CONFIG) {
        Ok(Some(text)) => text,
        Ok(None) => return Ok(None),
        Err(error) => return Err(fact_error(PROBE, SSHD_CONFIG, &error)),
    };
    let mut parser = Parser {
        root,
        config: SshdConfig::default(),
        stack: vec![SSHD_CONFIG.to_string()],
    };
    parser.config.files.push(SSHD_CONFIG.to_string());
    parser.parse_text(SSHD_CONFIG, &text, None);
    Ok(Some(parser.config))
}

/// Parses configuration text directly (unit tests, and callers that already hold the text);
/// `Include` lines are resolved under `root`.
pub fn parse_text(root: &Path, source: &str, text: &str) -> SshdConfig {
    let mut parser = Parser {
        root,
        config: SshdConfig::default(),
        stack: vec![source.to_string()],
    };
    parser.config.files.push(source.to_string());
    parser.parse_text(source, text, None);
    parser.config
}

struct Parser<'a> {
    root: &'a Path,
    config: SshdConfig,
    /// Files being parsed, outermost first: a file already here is a cycle.
    stack: Vec<String>,
}

impl Parser<'_> {
    /// Parses one file's text. `block` is the `Match` block in force where the file was
    /// included (`None`: global); a `Match` inside the file lasts until the file ends.
    fn parse_text(&mut self, source: &str, text: &str, mut block: Option<usize>) {
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            let Some((keyword, args)) = split_line(raw) else {
                continue;
            };
            let evidence = line_evidence(source, line, PROBE, raw);
            match keyword.to_ascii_lowercase().as_str() {
                "include" => self.include(&args, &evidence, block),
                "match" => block = Some(self.open_match(&args, evidence)),
                _ => {
                    if let Some(keyword) = Keyword::parse(&keyword) {
                        self.set(keyword, &args, evidence, block);
                    }
                }
            }
        }
    }

    fn open_match(&mut self, args: &[String], evidence: Evidence) -> usize {
        if args.is_empty() {
            // sshd refuses to start on this; the block still scopes the lines after it.
            self.problem(&evidence, "Match without criteria (sshd refuses this)");
        }
        self.config.match_blocks.push(MatchBlock {
            criteria: args.join(" "),
            evidence,
            settings: BTreeMap::new(),
        });
        self.config.match_blocks.len() - 1
    }

    fn set(&mut self, keyword: Keyword, args: &[String], evidence: Evidence, block: Option<usize>) {
        if args.is_empty() {
            self.problem(&evidence, &format!("{} without a value", keyword.name()));
            return;
        }
        let value = normalise(keyword, args);
        let setting = Setting { value, evidence };
        match block {
            Some(index) => {
                if !keyword.allowed_in_match() {
                    let message = format!(
                        "{} is not allowed inside a Match block (sshd refuses this)",
                        keyword.name()
                    );
                    self.problem(&setting.evidence, &message);
                    return;
                }
                if let Some(block) = self.config.match_blocks.get_mut(index) {
                    block.settings.entry(keyword).or_insert(setting);
                }
            }
            None if keyword.repeatable() => {
                self.config
                    .repeated
                    .entry(keyword)
                    .or_default()
                    .push(setting);
            }
            None => {
                self.config.global.entry(keyword).or_insert(setting);
            }
        }
    }

    fn include(&mut self, args: &[String], at: &Evidence, block: Option<usize>) {
        if args.is_empty() {
            self.problem(at, "Include without a path");
        }
        for pattern in args {
            let absolute = if pattern.starts_with('/') {
                pattern.clone()
            } else {
                format!("{SSH_DIR}/{pattern}")
            };
            for path in self.expand(&absolute, at) {
                self.include_file(&path, at, block);
            }
        }
    }

    /// Expands a glob under the root into system paths, in lexical order like glob(3). A
    /// pattern that matches nothing is not an error: sshd only logs it.
    fn expand(&mut self, absolute: &str, at: &Evidence) -> Vec<String> {
        if !absolute.contains(['*', '?', '[']) {
            return if super::rooted(self.root, absolute).exists() {
                vec![absolute.to_string()]
            } else {
                Vec::new()
            };
        }
        let root = self.root.to_string_lossy();
        let full = format!(
            "{}/{}",
            glob::Pattern::escape(root.trim_end_matches('/')),
            absolute.trim_start_matches('/')
        );
        let paths = match glob::glob(&full) {
            Ok(paths) => paths,
            Err(error) => {
                self.problem(at, &format!("bad Include pattern {absolute}: {error}"));
                return Vec::new();
            }
        };
        // Bounded: a hostile pattern like `/*/*/*` must not walk a whole file system.
        let mut found: Vec<String> = paths
            .take(MAX_FILES)
            .filter_map(Result::ok)
            .filter_map(|path| {
                path.strip_prefix(self.root)
                    .ok()
                    .map(|rel| format!("/{}", rel.to_string_lossy()))
            })
            .collect();
        found.sort();
        found
    }

    fn include_file(&mut self, path: &str, at: &Evidence, block: Option<usize>) {
        if self.stack.iter().any(|open| open == path) {
            self.problem(at, &format!("cyclic Include of {path}"));
            return;
        }
        if self.stack.len() > MAX_INCLUDE_DEPTH {
            let message = format!("Include nested deeper than {MAX_INCLUDE_DEPTH} at {path}");
            self.problem(at, &message);
            return;
        }
        if self.config.files.len() >= MAX_FILES {
            self.problem(
                at,
                &format!("more than {MAX_FILES} files included, {path} skipped"),
            );
            return;
        }
        let text = match config_file::read(self.root, path) {
            Ok(Some(text)) => text,
            // Vanished between the glob and the read: nothing to parse.
            Ok(None) => return,
            Err(error) => {
                self.config.problems.push(fact_error(PROBE, path, &error));
                return;
            }
        };
        self.config.files.push(path.to_string());
        self.stack.push(path.to_string());
        self.parse_text(path, &text, block);
        self.stack.pop();
    }

    fn problem(&mut self, at: &Evidence, message: &str) {
        self.config.problems.push(fact_error(
            PROBE,
            &at.source,
            &format!("line {}: {message}", at.line),
        ));
    }
}

/// Splits a line into keyword and arguments the way sshd's tokenizer does: whitespace or one
/// `=` separates the keyword, arguments may be double-quoted, an unquoted `#` starts a
/// comment. `None` for blank and comment lines.
fn split_line(raw: &str) -> Option<(String, Vec<String>)> {
    let line = raw.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let end = line
        .find(|c: char| c.is_whitespace() || c == '=')
        .unwrap_or(line.len());
    let keyword = line[..end].to_string();
    let rest = line[end..].trim_start();
    let rest = rest.strip_prefix('=').unwrap_or(rest);
    Some((keyword, split_args(rest)))
}

fn split_args(text: &str) -> Vec<String> {
    let mut args = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let Some(&first) = chars.peek() else {
            break;
        };
        if first == '#' {
            break;
        }
        let mut arg = String::new();
        if first == '"' {
            chars.next();
            arg.extend(chars.by_ref().take_while(|&c| c != '"'));
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                arg.push(c);
            }
        }
        args.push(arg);
    }
    args
}

/// Joins arguments; yes/no style values are case-insensitive in sshd, so they are lowered.
fn normalise(keyword: Keyword, args: &[String]) -> String {
    let joined = args.join(" ");
    match keyword {
        Keyword::Port | Keyword::ListenAddress => joined,
        Keyword::AuthenticationMethods => joined.to_ascii_lowercase(),
        _ => args
            .first()
            .map(|a| a.to_ascii_lowercase())
            .unwrap_or_default(),
    }
}

/// The configuration as observations: one per tracked keyword (configured or default) and
/// one per `Match` block.
pub fn observations(config: &SshdConfig) -> Vec<Observation> {
    let mut list = Vec::new();
    for keyword in Keyword::ALL {
        let (value, evidence) = if keyword.repeatable() {
            repeated_value(config, keyword)
        } else {
            let (value, evidence) = config.global_value(keyword);
            (json!(value), evidence.cloned().into_iter().collect())
        };
        let configured = !evidence.is_empty();
        let evidence = if configured {
            evidence
        } else {
            vec![default_evidence(keyword)]
        };
        list.push(Observation {
            category: "sshd".into(),
            name: keyword.name().into(),
            value: json!({ "value": value, "default": !configured }),
            evidence,
        });
    }
    for block in &config.match_blocks {
        list.push(match_observation(block));
    }
    list.push(Observation {
        category: "sshd".into(),
        name: "config_files".into(),
        value: json!(config.files),
        evidence: Vec::new(),
    });
    list
}

fn repeated_value(config: &SshdConfig, keyword: Keyword) -> (serde_json::Value, Vec<Evidence>) {
    match config.repeated.get(&keyword) {
        Some(settings) if !settings.is_empty() => (
            json!(settings.iter().map(|s| s.value.clone()).collect::<Vec<_>>()),
            settings.iter().map(|s| s.evidence.clone()).collect(),
        ),
        _ => (
            json!(keyword.default_value().split(' ').collect::<Vec<_>>()),
            Vec::new(),
        ),
    }
}

fn default_evidence(keyword: Keyword) -> Evidence {
    Evidence {
        source: SSHD_CONFIG.into(),
        line: 0,
        probe: PROBE.into(),
        detail: format!(
            "{} not set: OpenSSH default {}",
            keyword.name(),
            keyword.default_value()
        ),
    }
}

fn match_observation(block: &MatchBlock) -> Observation {
    let overrides: BTreeMap<&str, &str> = block
        .settings
        .iter()
        .map(|(k, s)| (k.name(), s.value.as_str()))
        .collect();
    let mut evidence = vec![block.evidence.clone()];
    evidence.extend(block.settings.values().map(|s| s.evidence.clone()));
    Observation {
        category: "sshd".into(),
        name: "match".into(),
        value: json!({
            "criteria": block.criteria,
            "source": block.evidence.source,
            "line": block.evidence.line,
            "overrides": overrides,
        }),
        evidence,
    }
}

#[cfg(test)]
// Tests unwrap: a panic there is a test failure pointing at its line.
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::inventory::rooted;
    use crate::inventory::test_support::tree;

    fn value(config: &SshdConfig, keyword: Keyword) -> String {
        config.global_value(keyword).0
    }

    #[test]
    fn first_value_wins_and_keywords_are_case_insensitive() {
        let tmp = tree(&[(
            SSHD_CONFIG,
            "passwordauthentication No\nPasswordAuthentication yes\n",
        )]);
        let config = parse(tmp.path()).unwrap().unwrap();
        assert_eq!(value(&config, Keyword::PasswordAuthentication), "no");
        assert_eq!(
            config.global[&Keyword::PasswordAuthentication]
                .evidence
                .line,
            1
        );
    }

    #[test]
    fn equals_sign_quotes_and_trailing_comments() {
        let tmp = tree(&[(
            SSHD_CONFIG,
            "AuthenticationMethods=\"publickey,keyboard-interactive\" # two factors\n",
        )]);
        let config = parse(tmp.path()).unwrap().unwrap();
        assert_eq!(
            value(&config, Keyword::AuthenticationMethods),
            "publickey,keyboard-interactive"
        );
    }

    #[test]
    fn defaults_apply_when_absent() {
        let tmp = tree(&[(SSHD_CONFIG, "# nothing\n")]);
        let config = parse(tmp.path()).unwrap().unwrap();
        assert_eq!(value(&config, Keyword::PasswordAuthentication), "yes");
        assert_eq!(value(&config, Keyword::KbdInteractiveAuthentication), "yes");
        assert_eq!(value(&config, Keyword::PubkeyAuthentication), "yes");
        assert_eq!(value(&config, Keyword::UsePam), "no");
        assert!(config.global_value(Keyword::UsePam).1.is_none());
    }

    #[test]
    fn challenge_response_is_an_alias_of_kbd_interactive() {
        let tmp = tree(&[(
            SSHD_CONFIG,
            "ChallengeResponseAuthentication no\nKbdInteractiveAuthentication yes\n",
        )]);
        let config = parse(tmp.path()).unwrap().unwrap();
        assert_eq!(value(&config, Keyword::KbdInteractiveAuthentication), "no");
    }

    #[test]
    fn ports_and_listen_addresses_repeat() {
        let tmp = tree(&[(SSHD_CONFIG, "Port 22\nPort 2222\nListenAddress 10.0.0.1\n")]);
        let config = parse(tmp.path()).unwrap().unwrap();
        let ports: Vec<_> = config.repeated[&Keyword::Port]
            .iter()
            .map(|s| s.value.as_str())
            .collect();
        assert_eq!(ports, ["22", "2222"]);
    }

    #[test]
    fn include_glob_is_sorted_relative_and_first_wins() {
        let tmp = tree(&[
            (
                SSHD_CONFIG,
                "Include sshd_config.d/*.conf\nPasswordAuthentication yes\n",
            ),
            (
                "/etc/ssh/sshd_config.d/20-b.conf",
                "PasswordAuthentication maybe\n",
            ),
            (
                "/etc/ssh/sshd_config.d/10-a.conf",
                "PasswordAuthentication no\n",
            ),
            (
                "/etc/ssh/sshd_config.d/ignored.txt",
                "PasswordAuthentication other\n",
            ),
        ]);
        let config = parse(tmp.path()).unwrap().unwrap();
        let setting = &config.global[&Keyword::PasswordAuthentication];
        assert_eq!(setting.value, "no");
        assert_eq!(setting.evidence.source, "/etc/ssh/sshd_config.d/10-a.conf");
        assert_eq!(setting.evidence.line, 1);
        assert_eq!(config.files.len(), 3);
        assert!(config.problems.is_empty());
    }

    #[test]
    fn include_matching_nothing_is_fine() {
        let tmp = tree(&[(SSHD_CONFIG, "Include /etc/ssh/sshd_config.d/*.conf\n")]);
        let config = parse(tmp.path()).unwrap().unwrap();
        assert!(config.problems.is_empty());
    }

    #[test]
    fn cyclic_include_is_an_error_not_a_hang() {
        let tmp = tree(&[
            (SSHD_CONFIG, "Include a.conf\nPort 22\n"),
            ("/etc/ssh/a.conf", "Include b.conf\n"),
            ("/etc/ssh/b.conf", "Include a.conf\nInclude sshd_config\n"),
        ]);
        let config = parse(tmp.path()).unwrap().unwrap();
        assert_eq!(config.problems.len(), 2);
        assert!(
            config.problems[0]
                .error
                .contains("cyclic Include of /etc/ssh/a.conf")
        );
        assert_eq!(config.problems[0].source, "/etc/ssh/b.conf");
        assert_eq!(config.repeated[&Keyword::Port].len(), 1);
    }

    #[test]
    fn include_depth_is_limited() {
        let mut files = vec![(SSHD_CONFIG.to_string(), "Include d0.conf\n".to_string())];
        for i in 0..20 {
            files.push((
                format!("/etc/ssh/d{i}.conf"),
                format!("Include d{}.conf\n", i + 1),
            ));
        }
        let refs: Vec<(&str, &str)> = files
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        let tmp = tree(&refs);
        let config = parse(tmp.path()).unwrap().unwrap();
        assert_eq!(config.files.len(), 17);
        assert!(config.problems[0].error.contains("deeper than 16"));
    }

    #[test]
    fn fan_out_includes_are_bounded() {
        // Each level includes the next one twice: 2^16 reads without the file bound.
        let mut files = vec![(
            SSHD_CONFIG.to_string(),
            "Include f0.conf f0.conf\n".to_string(),
        )];
        for i in 0..16 {
            files.push((
                format!("/etc/ssh/f{i}.conf"),
                format!("Include f{0}.conf f{0}.conf\n", i + 1),
            ));
        }
        let refs: Vec<(&str, &str)> = files
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        let tmp = tree(&refs);
        let config = parse(tmp.path()).unwrap().unwrap();
        assert_eq!(config.files.len(), MAX_FILES);
        assert!(!config.problems.is_empty());
    }

    #[test]
    fn unreadable_include_is_a_problem_naming_the_file() {
        let tmp = tree(&[
            (SSHD_CONFIG, "Include big.conf bin.conf\n"),
            ("/etc/ssh/bin.conf", "Port 22\0\n"),
        ]);
        std::fs::write(
            rooted(tmp.path(), "/etc/ssh/big.conf"),
            vec![b'#'; 2 * 1024 * 1024],
        )
        .unwrap();
        let config = parse(tmp.path()).unwrap().unwrap();
        let sources: Vec<_> = config.problems.iter().map(|p| p.source.as_str()).collect();
        assert_eq!(sources, ["/etc/ssh/big.conf", "/etc/ssh/bin.conf"]);
    }

    #[test]
    fn binary_main_file_is_an_error() {
        let tmp = tree(&[(SSHD_CONFIG, "\u{0}\u{1}ELF")]);
        let error = parse(tmp.path()).unwrap_err();
        assert_eq!(error.source, SSHD_CONFIG);
        assert!(error.error.contains("binary"));
    }

    #[test]
    fn missing_main_file_is_none() {
        let tmp = tree(&[]);
        assert!(parse(tmp.path()).unwrap().is_none());
    }

    #[test]
    fn match_blocks_record_criteria_and_overrides() {
        let tmp = tree(&[(
            SSHD_CONFIG,
            "PasswordAuthentication no\nMatch Group contractors Address 10.0.0.0/8\n  PasswordAuthentication yes\n  PasswordAuthentication no\n  UsePAM no\nMatch all\nPubkeyAuthentication no\n",
        )]);
        let config = parse(tmp.path()).unwrap().unwrap();
        assert_eq!(value(&config, Keyword::PasswordAuthentication), "no");
        assert_eq!(value(&config, Keyword::PubkeyAuthentication), "yes");
        let block = &config.match_blocks[0];
        assert_eq!(block.criteria, "Group contractors Address 10.0.0.0/8");
        assert_eq!(block.evidence.line, 2);
        let setting = &block.settings[&Keyword::PasswordAuthentication];
        assert_eq!((setting.value.as_str(), setting.evidence.line), ("yes", 3));
        assert!(config.problems[0].error.contains("UsePAM is not allowed"));
        assert_eq!(config.match_blocks[1].criteria, "all");
        assert_eq!(
            config
                .value_in(&config.match_blocks[1], Keyword::PubkeyAuthentication)
                .0,
            "no"
        );
    }

    #[test]
    fn match_in_included_file_ends_with_the_file() {
        let tmp = tree(&[
            (SSHD_CONFIG, "Include m.conf\nPasswordAuthentication no\n"),
            (
                "/etc/ssh/m.conf",
                "Match User bob\nPasswordAuthentication yes\n",
            ),
        ]);
        let config = parse(tmp.path()).unwrap().unwrap();
        assert_eq!(value(&config, Keyword::PasswordAuthentication), "no");
        assert_eq!(config.match_blocks.len(), 1);
    }

    #[test]
    fn include_inside_match_applies_to_the_block() {
        let tmp = tree(&[
            (SSHD_CONFIG, "Match Group ops\nInclude ops.conf\n"),
            ("/etc/ssh/ops.conf", "AuthenticationMethods password\n"),
        ]);
        let config = parse(tmp.path()).unwrap().unwrap();
        assert!(config.global.is_empty());
        let setting = &config.match_blocks[0].settings[&Keyword::AuthenticationMethods];
        assert_eq!(setting.evidence.source, "/etc/ssh/ops.conf");
    }

    #[test]
    fn garbage_lines_do_not_panic() {
        let config = parse_text(
            Path::new("/nonexistent"),
            SSHD_CONFIG,
            "=\n\"\nPort\nMatch\n\u{feff}Port \"22\nInclude\n\t\t#\nx=y=z\n",
        );
        assert!(!config.problems.is_empty());
    }
}
