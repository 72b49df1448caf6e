//! The systemd units in `deploy/systemd/`: `systemd-analyze verify` must report nothing, and
//! `systemd-analyze security --offline` must rate them at or below exposure 3.0. The units name
//! `/usr/bin/...`; the test verifies copies that point at the freshly built binaries, so
//! the check covers the real `ExecStart` command lines (verify fails on a missing executable).
//! Needs `systemd-analyze` (`scripts/deps/systemd.sh` installs it).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::bin;

const UNITS: [&str; 3] = [
    "tillsyn-agent.service",
    "tillsyn-agent-enroll.service",
    "tillsyn-collector.service",
];
/// Highest accepted `systemd-analyze security` exposure, times ten (3.0 of 10).
const MAX_EXPOSURE: &str = "30";

fn systemd_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/systemd")
}

/// Copies the units into a temporary directory with `ExecStart` pointing at the built binaries.
fn units_with_built_binaries() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    for unit in UNITS {
        let text = std::fs::read_to_string(systemd_dir().join(unit)).unwrap();
        let program = unit
            .trim_end_matches(".service")
            .trim_end_matches("-enroll");
        let installed = format!("/usr/bin/{program} ");
        assert!(
            text.contains(&format!("ExecStart={installed}")),
            "{unit}: ExecStart should run {installed}"
        );
        let built = format!("{} ", bin(program).display());
        std::fs::write(tmp.path().join(unit), text.replace(&installed, &built)).unwrap();
    }
    tmp
}

fn systemd_analyze(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new("systemd-analyze")
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("systemd-analyze: {e}; run scripts/deps/systemd.sh"))
}

#[test]
fn systemd_units_verify_cleanly() {
    let dir = units_with_built_binaries();
    let paths: Vec<String> = UNITS.iter().map(|u| format!("./{u}")).collect();
    let mut args = vec!["verify"];
    args.extend(paths.iter().map(String::as_str));
    let out = systemd_analyze(dir.path(), &args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // verify exits 0 on warnings such as an unknown key; any output is a problem.
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "systemd-analyze verify: {stderr}"
    );
}

#[test]
fn systemd_units_are_hardened() {
    let dir = units_with_built_binaries();
    for unit in UNITS {
        let threshold = format!("--threshold={MAX_EXPOSURE}");
        let path = format!("./{unit}");
        let out = systemd_analyze(
            dir.path(),
            &["security", "--offline=yes", &threshold, &path],
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        let overall = stdout
            .lines()
            .find(|l| l.contains("Overall exposure level"))
            .unwrap_or("");
        eprintln!(
            "{}",
            overall.trim_start_matches(|c: char| !c.is_ascii_alphabetic())
        );
        assert!(
            out.status.success(),
            "{unit} exposure above {MAX_EXPOSURE}/100: {stdout}"
        );
    }
}
