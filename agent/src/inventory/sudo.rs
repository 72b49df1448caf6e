//! sudoers rules that skip authentication: `NOPASSWD:` tags and `Defaults !authenticate`.
//!
//! Owns reading `/etc/sudoers` and what it pulls in (`#include`, `@include`, `#includedir`,
//! `@includedir`; relative paths resolve against the including file's directory as in sudo
//! 1.9.1+; `includedir` skips names ending in `~` or containing `.`, as sudoers(5) says).
//! Cycles and depth beyond 16 are errors. It does not evaluate who a rule applies to.

use std::path::Path;

use serde_json::json;

use super::config_file::{self, fact_error, line_evidence, logical_lines};
use super::{FactError, Inventory, Observation, rooted};

const SUDOERS: &str = "/etc/sudoers";
const PROBE: &str = "sudo";
const MAX_DEPTH: usize = 16;
/// Bound on files read, whatever the include graph looks like.
const MAX_FILES: usize = 256;

/// A rule that lets someone run commands without authenticating.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoAuthRule {
    /// `nopasswd` (a `NOPASSWD:` tag) or `authenticate_disabled` (`Defaults !authenticate`).
    pub kind: &'static str,
    /// The rule as written.
    pub rule: String,
    /// File and line.
    pub evidence: super::Evidence,
}

/// Reads sudoers under `root`, recording one observation per rule that skips authentication.
pub fn collect(root: &Path, inventory: &mut Inventory) -> Vec<NoAuthRule> {
    let mut reader = Reader {
        root,
        rules: Vec::new(),
        errors: Vec::new(),
        open: Vec::new(),
        files: 0,
    };
    reader.file(SUDOERS, None);
    inventory.errors.append(&mut reader.errors);
    inventory
        .observations
        .extend(reader.rules.iter().map(observation));
    reader.rules
}

struct Reader<'a> {
    root: &'a Path,
    rules: Vec<NoAuthRule>,
    errors: Vec<FactError>,
    open: Vec<String>,
    files: usize,
}

impl Reader<'_> {
    /// Parses one file; `from` is the including line (`None` for the main file, whose absence
    /// just means sudo is not installed).
    fn file(&mut self, path: &str, from: Option<(&str, usize)>) {
        let problem = if self.open.iter().any(|p| p == path) {
            Some(format!("cyclic include of {path}"))
        } else if self.open.len() > MAX_DEPTH {
            Some(format!("include nested deeper than {MAX_DEPTH} at {path}"))
        } else if self.files >= MAX_FILES {
            Some(format!(
                "more than {MAX_FILES} files included, {path} skipped"
            ))
        } else {
            None
        };
        if let (Some(message), Some((source, line))) = (problem, from) {
            self.errors.push(fact_error(
                PROBE,
                source,
                &format!("line {line}: {message}"),
            ));
            return;
        }
        let text = match config_file::read(self.root, path) {
            Ok(Some(text)) => text,
            Ok(None) => {
                if let Some((source, line)) = from {
                    let message = format!("line {line}: included file {path} is missing");
                    self.errors.push(fact_error(PROBE, source, &message));
                }
                return;
            }
            Err(error) => {
                self.errors.push(fact_error(PROBE, path, &error));
                return;
            }
        };
        self.files += 1;
        self.open.push(path.to_string());
        for (number, line) in logical_lines(&text) {
            self.line(path, number, line.trim());
        }
        self.open.pop();
    }

    fn line(&mut self, path: &str, number: usize, line: &str) {
        if let Some((directive, target)) = include_directive(line) {
            let target = resolve(path, target);
            if directive.ends_with("includedir") {
                for file in self.directory(&target) {
                    self.file(&file, Some((path, number)));
                }
            } else {
                self.file(&target, Some((path, number)));
            }
            return;
        }
        // `#` starts a comment, except `#123` which is a numeric user id in a rule.
        if line.is_empty()
            || (line.starts_with('#') && !line[1..].starts_with(|c: char| c.is_ascii_digit()))
        {
            return;
        }
        let kind = if line.starts_with("Defaults") {
            line.contains("!authenticate")
                .then_some("authenticate_disabled")
        } else {
            line.contains("NOPASSWD:").then_some("nopasswd")
        };
        if let Some(kind) = kind {
            self.rules.push(NoAuthRule {
                kind,
                rule: line.to_string(),
                evidence: line_evidence(path, number, PROBE, line),
            });
        }
    }

    /// Files of an `includedir`, in lexical order.
    fn directory(&mut self, dir: &str) -> Vec<String> {
        let entries = match std::fs::read_dir(rooted(self.root, dir)) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
            Err(error) => {
                self.errors.push(fact_error(PROBE, dir, &error));
                return Vec::new();
            }
        };
        let mut names: Vec<String> = entries
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|name| !name.ends_with('~') && !name.contains('.'))
            .collect();
        names.sort();
        names
            .into_iter()
            .map(|name| format!("{}/{name}", dir.trim_end_matches('/')))
            .collect()
    }
}

/// `("@includedir", "/etc/sudoers.d")` for include lines.
fn include_directive(line: &str) -> Option<(&str, &str)> {
    let (word, rest) = line.split_once(char::is_whitespace)?;
    let directive = match word {
        "#include" | "@include" | "#includedir" | "@includedir" => word,
        _ => return None,
    };
    let target = rest.trim().trim_matches('"');
    (!target.is_empty()).then_some((directive, target))
}

/// Resolves a relative include against the directory of the including file.
fn resolve(including: &str, target: &str) -> String {
    if target.starts_with('/') {
        return target.to_string();
    }
    let dir = including.rsplit_once('/').map_or("/etc", |(dir, _)| dir);
    format!("{dir}/{target}")
}

fn observation(rule: &NoAuthRule) -> Observation {
    Observation {
        category: "sudo".into(),
        name: rule.kind.into(),
        value: json!({ "rule": rule.rule }),
        evidence: vec![rule.evidence.clone()],
    }
}

#[cfg(test)]
// Tests unwrap: a panic there is a test failure pointing at its line.
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::inventory::test_support::tree;

    #[test]
    fn nopasswd_rules_are_found_in_includes() {
        let tmp = tree(&[
            (
                SUDOERS,
                "Defaults env_reset\nroot ALL=(ALL:ALL) ALL\n%sudo ALL=(ALL:ALL) ALL\n#includedir /etc/sudoers.d\n#include extra\n",
            ),
            (
                "/etc/sudoers.d/10-ops",
                "# ops\n%ops ALL=(root) \\\n  NOPASSWD: /usr/bin/systemctl\n",
            ),
            ("/etc/sudoers.d/README", "# nothing\n"),
            ("/etc/sudoers.d/old.bak", "bob ALL=(ALL) NOPASSWD: ALL\n"),
            ("/etc/sudoers.d/20-x~", "bob ALL=(ALL) NOPASSWD: ALL\n"),
            (
                "/etc/extra",
                "Defaults:backup !authenticate\n#1001 ALL=NOPASSWD: ALL\n",
            ),
        ]);
        let mut inventory = Inventory::default();
        let rules = collect(tmp.path(), &mut inventory);
        let found: Vec<(&str, &str, u32)> = rules
            .iter()
            .map(|r| (r.kind, r.evidence.source.as_str(), r.evidence.line))
            .collect();
        assert_eq!(
            found,
            [
                ("nopasswd", "/etc/sudoers.d/10-ops", 2),
                ("authenticate_disabled", "/etc/extra", 1),
                ("nopasswd", "/etc/extra", 2),
            ]
        );
        assert!(inventory.errors.is_empty());
    }

    #[test]
    fn cycles_and_missing_includes_are_errors() {
        let tmp = tree(&[
            (SUDOERS, "@include /etc/a\n@include /etc/missing\n"),
            ("/etc/a", "@include sudoers\nx ALL=NOPASSWD: ALL\n"),
        ]);
        let mut inventory = Inventory::default();
        let rules = collect(tmp.path(), &mut inventory);
        assert_eq!(rules.len(), 1);
        assert_eq!(inventory.errors.len(), 2);
        assert!(
            inventory.errors[0]
                .error
                .contains("cyclic include of /etc/sudoers")
        );
        assert!(inventory.errors[1].error.contains("/etc/missing"));
    }

    #[test]
    fn binary_sudoers_is_an_error() {
        let tmp = tree(&[(SUDOERS, "\0\0")]);
        let mut inventory = Inventory::default();
        assert!(collect(tmp.path(), &mut inventory).is_empty());
        assert_eq!(inventory.errors[0].source, SUDOERS);
    }
}
