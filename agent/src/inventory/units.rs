//! Enabled systemd units, read from the file system.
//!
//! The file-based source of truth for "enabled" is what `systemctl enable` writes: symlinks in
//! `/etc/systemd/system/<target>.wants/` and `.requires/`. A unit symlinked to `/dev/null` in
//! `/etc/systemd/system/` is masked and never counts as enabled. This sees units the
//! administrator enabled, not vendor-static ones under `/usr/lib`, and says nothing about
//! whether a unit is running right now: asking systemd over D-Bus would, but does not work
//! under a fixture root. This module must not call `systemctl`.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::json;

use super::input::list_dir;
use super::{Evidence, FactError, Observation, rooted};

const COLLECTOR: &str = "units";
const UNIT_DIR: &str = "/etc/systemd/system";
/// Enough for any real host; a hostile root with millions of links is cut here.
const MAX_UNITS: usize = 10_000;

/// An enabled unit and the targets that want it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnabledUnit {
    /// Unit name, e.g. `ssh.service`.
    pub name: String,
    /// The `.wants`/`.requires` directories it is linked from, e.g. `multi-user.target`.
    pub wanted_by: Vec<String>,
    /// One symlink path, for evidence.
    pub evidence_path: String,
}

impl EnabledUnit {
    /// Its symlink as the evidence that `probe` saw it enabled.
    pub fn evidence(&self, probe: &str) -> Evidence {
        Evidence {
            source: self.evidence_path.clone(),
            line: 0,
            probe: probe.into(),
            detail: "enabled".into(),
        }
    }
}

/// Lists enabled units under `root`, sorted by name.
pub fn enabled_units(root: &Path, errors: &mut Vec<FactError>) -> Vec<EnabledUnit> {
    let mut units: BTreeMap<String, EnabledUnit> = BTreeMap::new();
    for (dir_name, dir_path) in list_dir(root, UNIT_DIR, COLLECTOR, errors) {
        let target = dir_name
            .strip_suffix(".wants")
            .or_else(|| dir_name.strip_suffix(".requires"));
        let Some(target) = target else { continue };
        if !dir_path.is_dir() {
            continue;
        }
        let absolute = format!("{UNIT_DIR}/{dir_name}");
        for (unit, _) in list_dir(root, &absolute, COLLECTOR, errors) {
            if units.len() >= MAX_UNITS {
                errors.push(FactError {
                    collector: COLLECTOR.into(),
                    source: UNIT_DIR.into(),
                    error: format!("more than {MAX_UNITS} enabled units; the rest are ignored"),
                });
                return units.into_values().collect();
            }
            let entry = units.entry(unit.clone()).or_insert_with(|| EnabledUnit {
                name: unit.clone(),
                wanted_by: Vec::new(),
                evidence_path: format!("{absolute}/{unit}"),
            });
            entry.wanted_by.push(target.to_string());
        }
    }
    units.retain(|name, _| !is_masked(root, name));
    units.into_values().collect()
}

/// A unit is masked when its file in `/etc/systemd/system` is a link to `/dev/null`.
fn is_masked(root: &Path, unit: &str) -> bool {
    std::fs::read_link(rooted(root, &format!("{UNIT_DIR}/{unit}")))
        .is_ok_and(|target| target == Path::new("/dev/null"))
}

/// Pushes one `unit` observation per enabled unit and returns the units for other collectors.
pub fn collect(
    root: &Path,
    observations: &mut Vec<Observation>,
    errors: &mut Vec<FactError>,
) -> Vec<EnabledUnit> {
    let units = enabled_units(root, errors);
    observations.extend(units.iter().map(|unit| Observation {
        category: "unit".into(),
        name: unit.name.clone(),
        value: json!({ "state": "enabled", "wanted_by": unit.wanted_by }),
        evidence: vec![Evidence {
            source: unit.evidence_path.clone(),
            probe: COLLECTOR.into(),
            ..Evidence::default()
        }],
    }));
    units
}

// The fixtures are symlinks, which only Unix lets every user make.
#[cfg(all(test, unix))]
#[allow(clippy::unwrap_used)] // In tests an unwrap that fails is the failing assertion.
mod tests {
    use super::*;

    #[test]
    fn wants_links_are_enabled_and_masked_units_are_not() {
        use std::os::unix::fs::symlink;
        let tmp = tempfile::tempdir().unwrap();
        let etc = tmp.path().join("etc/systemd/system");
        std::fs::create_dir_all(etc.join("multi-user.target.wants")).unwrap();
        std::fs::create_dir_all(etc.join("sysinit.target.wants")).unwrap();
        symlink(
            "/lib/systemd/system/ssh.service",
            etc.join("multi-user.target.wants/ssh.service"),
        )
        .unwrap();
        symlink(
            "/lib/systemd/system/auditd.service",
            etc.join("multi-user.target.wants/auditd.service"),
        )
        .unwrap();
        symlink(
            "/lib/systemd/system/systemd-timesyncd.service",
            etc.join("sysinit.target.wants/systemd-timesyncd.service"),
        )
        .unwrap();
        symlink("/dev/null", etc.join("auditd.service")).unwrap();
        std::fs::write(etc.join("not-a-dir.wants"), "").unwrap();
        let mut errors = Vec::new();
        let units = enabled_units(tmp.path(), &mut errors);
        let names: Vec<&str> = units.iter().map(|u| u.name.as_str()).collect();
        assert_eq!(names, ["ssh.service", "systemd-timesyncd.service"]);
        assert_eq!(units[0].wanted_by, ["multi-user.target"]);
        assert!(errors.is_empty());
    }
}
