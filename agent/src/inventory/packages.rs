//! Installed software packages: the dpkg database and the rpm database.
//!
//! dpkg: `/var/lib/dpkg/status` (deb-control(5) stanzas); only stanzas whose `Status` is
//! `install ok installed` are packages on disk; `deinstall ok config-files` and half-installed
//! ones are not. Each package is one `package` observation with the line of its `Package:`
//! field as evidence.
//!
//! rpm: the current format, `/var/lib/rpm/rpmdb.sqlite` (rpm 4.16+: RHEL 9, Fedora 33+), is
//! read by [`super::rpmdb`] (read-only, without locks) and [`super::rpm_header`]; each
//! package is one `package` observation with its `hnum` as evidence. The older formats,
//! Berkeley DB `/var/lib/rpm/Packages` (RHEL 7 and 8) and rpm's own ndb `Packages.db`, are
//! not read: the agent records that the database exists (a `package_database` observation
//! with `supported: false`), which is a fact, not an error.
//!
//! Both managers' observations share one value shape: `manager`, `version` (dpkg's version
//! string; rpm's `EPOCH:VERSION-RELEASE`, the epoch only when set) and `architecture`. This
//! module must not run `dpkg` or `rpm`.

use std::path::Path;

use serde_json::json;

use super::input::{line_no, read_bounded};
use super::rpmdb::{self, RPMDB_SQLITE, RpmdbContents};
use super::{Evidence, FactError, Observation, rooted};

const COLLECTOR: &str = "packages";
const DPKG_STATUS: &str = "/var/lib/dpkg/status";
/// A large Debian desktop has a status file of about 10 MiB.
const DPKG_STATUS_LIMIT: u64 = 64 * 1024 * 1024;
/// rpm databases in formats the agent does not read, with the reason it gives.
const RPM_UNREAD_DATABASES: [(&str, &str); 2] = [
    (
        "/var/lib/rpm/Packages.db",
        "rpm's ndb format; only the SQLite format (rpmdb.sqlite) is read by the agent",
    ),
    (
        "/var/lib/rpm/Packages",
        "Berkeley DB format (rpm before 4.16); only the SQLite format (rpmdb.sqlite) is read by the agent",
    ),
];

/// One installed package from dpkg's status file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DpkgPackage {
    /// `Package`.
    pub name: String,
    /// `Version`.
    pub version: String,
    /// `Architecture`.
    pub architecture: String,
    /// 1-based line of the `Package:` field.
    pub line: u32,
}

/// Collects package observations from `root`.
pub fn collect(root: &Path, observations: &mut Vec<Observation>, errors: &mut Vec<FactError>) {
    if let Some(input) = read_bounded(root, DPKG_STATUS, DPKG_STATUS_LIMIT, COLLECTOR, errors) {
        let packages = parse_dpkg_status(&input.text);
        observations.push(database_observation(
            "dpkg",
            DPKG_STATUS,
            json!({ "supported": true, "packages": packages.len() }),
        ));
        observations.extend(packages.into_iter().map(|package| Observation {
            category: "package".into(),
            name: package.name.clone(),
            value: json!({
                "manager": "dpkg",
                "version": package.version,
                "architecture": package.architecture,
            }),
            evidence: vec![Evidence {
                source: DPKG_STATUS.into(),
                line: package.line,
                probe: COLLECTOR.into(),
                detail: format!("Package: {}", package.name),
            }],
        }));
    }
    if rooted(root, RPMDB_SQLITE).exists() {
        collect_rpmdb(root, observations, errors);
    } else if let Some((database, reason)) = RPM_UNREAD_DATABASES
        .iter()
        .find(|(path, _)| rooted(root, path).exists())
    {
        observations.push(database_observation(
            "rpm",
            database,
            json!({ "supported": false, "reason": reason }),
        ));
    }
}

fn collect_rpmdb(root: &Path, observations: &mut Vec<Observation>, errors: &mut Vec<FactError>) {
    let contents = match rpmdb::read(&rooted(root, RPMDB_SQLITE)) {
        Ok(contents) => contents,
        Err(e) => {
            errors.push(rpmdb_error(e.to_string()));
            return;
        }
    };
    let RpmdbContents {
        packages,
        rejected,
        first_rejection,
        truncated,
    } = contents;
    if truncated {
        errors.push(rpmdb_error(format!(
            "more than {} packages; only the first were read",
            rpmdb::MAX_PACKAGES
        )));
    }
    if let Some(first) = first_rejection {
        errors.push(rpmdb_error(format!(
            "{rejected} package header(s) could not be read; the first: {first}"
        )));
    }
    observations.push(database_observation(
        "rpm",
        RPMDB_SQLITE,
        json!({ "supported": true, "packages": packages.len() }),
    ));
    observations.extend(packages.into_iter().map(|installed| Observation {
        category: "package".into(),
        value: json!({
            "manager": "rpm",
            "version": installed.package.evr(),
            "architecture": installed.package.arch,
        }),
        name: installed.package.name,
        evidence: vec![Evidence {
            source: RPMDB_SQLITE.into(),
            probe: COLLECTOR.into(),
            detail: format!("hnum {}", installed.hnum),
            ..Evidence::default()
        }],
    }));
}

fn rpmdb_error(error: String) -> FactError {
    FactError {
        collector: COLLECTOR.into(),
        source: RPMDB_SQLITE.into(),
        error,
    }
}

fn database_observation(manager: &str, path: &str, value: serde_json::Value) -> Observation {
    Observation {
        category: "package_database".into(),
        name: manager.into(),
        value,
        evidence: vec![Evidence {
            source: path.into(),
            probe: COLLECTOR.into(),
            ..Evidence::default()
        }],
    }
}

/// Parses dpkg's status file, keeping only installed packages. Malformed stanzas (no
/// `Package`, no `Version`) are skipped: a partial database still lists what it can.
pub fn parse_dpkg_status(text: &str) -> Vec<DpkgPackage> {
    let mut packages = Vec::new();
    let mut stanza = Stanza::default();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            packages.extend(stanza.finish());
            stanza = Stanza::default();
            continue;
        }
        // Continuation lines (leading space or tab) belong to multi-line fields we do not use.
        if line.starts_with([' ', '\t']) {
            continue;
        }
        let Some((field, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match field {
            "Package" => {
                stanza.name = Some(value.to_string());
                stanza.line = line_no(index);
            }
            "Status" => {
                stanza.installed = value.split_whitespace().eq(["install", "ok", "installed"]);
            }
            "Version" => stanza.version = Some(value.to_string()),
            "Architecture" => stanza.architecture = value.to_string(),
            _ => {}
        }
    }
    packages.extend(stanza.finish());
    packages
}

#[derive(Default)]
struct Stanza {
    name: Option<String>,
    version: Option<String>,
    architecture: String,
    installed: bool,
    line: u32,
}

impl Stanza {
    fn finish(self) -> Option<DpkgPackage> {
        if !self.installed {
            return None;
        }
        Some(DpkgPackage {
            name: self.name.filter(|n| !n.is_empty())?,
            version: self.version?,
            architecture: self.architecture,
            line: self.line,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // In tests an unwrap that fails is the failing assertion.
mod tests {
    use super::super::test_support::tree_bytes;
    use super::*;

    const STATUS: &str = "Package: adduser\nStatus: install ok installed\nPriority: important\nArchitecture: all\nVersion: 3.134\nDescription: add and remove users\n multi-line description\n\nPackage: oldpkg\nStatus: deinstall ok config-files\nArchitecture: amd64\nVersion: 1.0\n\nPackage: libc6\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2.36-9+deb12u14\n";

    #[test]
    fn only_installed_stanzas_are_packages() {
        let packages = parse_dpkg_status(STATUS);
        assert_eq!(packages.len(), 2);
        assert_eq!(packages[0].name, "adduser");
        assert_eq!(packages[0].version, "3.134");
        assert_eq!(packages[0].line, 1);
        assert_eq!(packages[1].name, "libc6");
        assert_eq!(packages[1].architecture, "amd64");
        assert_eq!(packages[1].line, 14);
    }

    #[test]
    fn garbage_and_truncated_stanzas_do_not_panic() {
        assert!(
            parse_dpkg_status("\u{0}\u{1}garbage\n:::\nPackage:\nStatus: install ok installed\n")
                .is_empty()
        );
        // Cut in the middle of a stanza, before its Version: that stanza is dropped.
        let cut = &STATUS[..STATUS.find("Version: 2.36").unwrap()];
        let packages = parse_dpkg_status(cut);
        assert_eq!(packages.len(), 1);
        assert_eq!(packages[0].name, "adduser");
    }

    #[test]
    fn berkeley_db_rpm_database_is_reported_unsupported_without_error() {
        let root = tree_bytes(&[("/var/lib/rpm/Packages", b"\0\x06\x15\x61 not read")]);
        let (mut observations, mut errors) = (Vec::new(), Vec::new());
        collect(root.path(), &mut observations, &mut errors);
        assert!(errors.is_empty());
        assert_eq!(observations.len(), 1);
        assert_eq!(observations[0].name, "rpm");
        assert_eq!(observations[0].value["supported"], false);
        assert_eq!(observations[0].evidence[0].source, "/var/lib/rpm/Packages");
    }

    #[test]
    fn broken_sqlite_rpm_database_is_an_error_naming_the_file() {
        // The SQLite format wins over a leftover Berkeley DB file.
        let root = tree_bytes(&[
            ("/var/lib/rpm/rpmdb.sqlite", b"SQLite format 3\0"),
            ("/var/lib/rpm/Packages", b""),
        ]);
        let (mut observations, mut errors) = (Vec::new(), Vec::new());
        collect(root.path(), &mut observations, &mut errors);
        assert!(observations.is_empty());
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].source, "/var/lib/rpm/rpmdb.sqlite");
        assert!(
            errors[0].error.starts_with("sqlite:"),
            "{}",
            errors[0].error
        );
    }
}
