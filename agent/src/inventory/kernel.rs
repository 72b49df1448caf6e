//! The running kernel's release and the boot time, from `/proc`.
//!
//! `/proc/sys/kernel/osrelease` is what `uname -r` prints; `/proc/stat`'s `btime` line is the
//! boot time in seconds since the Unix epoch. Reading files (not `uname(2)`) keeps fixture roots
//! honest. This module must not duplicate the host frame's sysinfo values; it adds evidence.

use std::path::Path;

use serde_json::json;

use super::input::{line_no, read_bounded};
use super::{Evidence, FactError, Observation};

const COLLECTOR: &str = "kernel";
const OSRELEASE: &str = "/proc/sys/kernel/osrelease";
const KERNEL_VERSION: &str = "/proc/sys/kernel/version";
const PROC_STAT: &str = "/proc/stat";
const SMALL: u64 = 4096;
/// `/proc/stat` grows with the CPU count; 1 MiB covers thousands of CPUs.
const PROC_STAT_LIMIT: u64 = 1024 * 1024;

/// Collects `kernel` and `boot` observations.
pub fn collect(root: &Path, observations: &mut Vec<Observation>, errors: &mut Vec<FactError>) {
    if let Some(release) = read_bounded(root, OSRELEASE, SMALL, COLLECTOR, errors) {
        let release_text = release.text.trim().to_string();
        let build = read_bounded(root, KERNEL_VERSION, SMALL, COLLECTOR, errors)
            .map(|v| v.text.trim().to_string())
            .unwrap_or_default();
        if !release_text.is_empty() {
            observations.push(Observation {
                category: "kernel".into(),
                name: "release".into(),
                value: json!({ "release": release_text, "build": build }),
                evidence: vec![evidence(OSRELEASE, 1, &release_text)],
            });
        }
    }
    if let Some(stat) = read_bounded(root, PROC_STAT, PROC_STAT_LIMIT, COLLECTOR, errors) {
        match parse_btime(&stat.text) {
            Some((btime, line)) => observations.push(Observation {
                category: "boot".into(),
                name: "boot_time".into(),
                value: json!({ "unix_seconds": btime }),
                evidence: vec![evidence(PROC_STAT, line, &format!("btime {btime}"))],
            }),
            None => errors.push(FactError {
                collector: COLLECTOR.into(),
                source: PROC_STAT.into(),
                error: "no valid btime line".into(),
            }),
        }
    }
}

fn evidence(source: &str, line: u32, detail: &str) -> Evidence {
    Evidence {
        source: source.into(),
        line,
        probe: COLLECTOR.into(),
        detail: detail.into(),
    }
}

/// Finds `btime N` in `/proc/stat`, with its 1-based line.
pub fn parse_btime(text: &str) -> Option<(i64, u32)> {
    text.lines().enumerate().find_map(|(index, line)| {
        let rest = line.strip_prefix("btime ")?;
        rest.trim()
            .parse::<i64>()
            .ok()
            .map(|btime| (btime, line_no(index)))
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // In tests an unwrap that fails is the failing assertion.
mod tests {
    use super::*;

    #[test]
    fn btime_is_found_and_garbage_is_none() {
        let stat = "cpu  1 2 3\nintr 5\nctxt 7\nbtime 1764000000\nprocesses 9\n";
        assert_eq!(parse_btime(stat), Some((1_764_000_000, 4)));
        assert_eq!(parse_btime("btime abc\n"), None);
        assert_eq!(parse_btime(""), None);
    }

    #[test]
    fn fixture_kernel_and_boot() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("proc/sys/kernel")).unwrap();
        std::fs::write(
            tmp.path().join("proc/sys/kernel/osrelease"),
            "6.1.0-28-amd64\n",
        )
        .unwrap();
        std::fs::write(tmp.path().join("proc/stat"), "cpu 1\nbtime 42\n").unwrap();
        let (mut observations, mut errors) = (Vec::new(), Vec::new());
        collect(tmp.path(), &mut observations, &mut errors);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(observations[0].value["release"], "6.1.0-28-amd64");
        assert_eq!(observations[1].value["unix_seconds"], 42);
        assert_eq!(observations[1].evidence[0].line, 2);
    }
}
