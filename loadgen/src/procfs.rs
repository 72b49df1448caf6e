//! CPU time and peak resident memory of a process, read from `/proc/PID/stat` and
//! `/proc/PID/status` (Linux only). Used to charge the collector for what the simulated fleet
//! makes it do; the figures cover every thread of the process. [`tree_cpu_seconds`] charges
//! a PostgreSQL server the same way: its postmaster, the backends it has reaped and those
//! still running.

use std::path::PathBuf;

/// Clock ticks per second of `utime`/`stime` in `/proc/PID/stat`: Linux's `USER_HZ`, which is
/// 100 on every architecture the kernel's ABI exposes to user space.
const USER_HZ: f64 = 100.0;

/// Errors reading `/proc`.
#[derive(Debug, thiserror::Error)]
pub enum ProcError {
    /// The file cannot be read (the process is gone, or this is not Linux).
    #[error("reading {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file does not have the layout proc(5) documents.
    #[error("{}: {message}", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// What was missing.
        message: String,
    },
}

/// One reading of a process's resource use.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Usage {
    /// User plus system CPU time so far, seconds (10 ms resolution).
    pub cpu_seconds: f64,
    /// Peak resident set size so far (`VmHWM`), bytes.
    pub peak_rss_bytes: u64,
}

fn read(path: PathBuf) -> Result<(PathBuf, String), ProcError> {
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok((path, text)),
        Err(source) => Err(ProcError::Read { path, source }),
    }
}

/// Reads the CPU time and peak RSS of process `pid`.
pub fn usage(pid: u32) -> Result<Usage, ProcError> {
    let (path, stat) = read(PathBuf::from(format!("/proc/{pid}/stat")))?;
    let cpu_seconds = parse_stat(&stat).ok_or_else(|| ProcError::Format {
        path: path.clone(),
        message: "no utime and stime after the command name".into(),
    })?;
    let (path, status) = read(PathBuf::from(format!("/proc/{pid}/status")))?;
    let peak_rss_bytes = parse_status(&status).ok_or_else(|| ProcError::Format {
        path,
        message: "no VmHWM line".into(),
    })?;
    Ok(Usage {
        cpu_seconds,
        peak_rss_bytes,
    })
}

/// `utime + stime` in seconds. The command name (field 2) is in parentheses and may contain
/// spaces, so fields are counted from the last `)`: state is field 3, utime 14, stime 15.
fn parse_stat(stat: &str) -> Option<f64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    // Tick counts of a real process stay far below 2^52, so the conversion is exact.
    #[allow(clippy::cast_precision_loss)]
    Some((utime + stime) as f64 / USER_HZ)
}

/// CPU time of process `pid` and its children, seconds: its own and its reaped children's
/// (`cutime`, `cstime`), plus that of its live children (one level: PostgreSQL's backends are
/// the postmaster's children). A child that ends between the two reads may be counted twice or
/// not at all; with long-lived pooled connections that is rare.
pub fn tree_cpu_seconds(pid: u32) -> Result<f64, ProcError> {
    let (path, stat) = read(PathBuf::from(format!("/proc/{pid}/stat")))?;
    let own = parse_stat_with_children(&stat).ok_or_else(|| ProcError::Format {
        path: path.clone(),
        message: "no utime, stime, cutime and cstime after the command name".into(),
    })?;
    let entries = std::fs::read_dir("/proc").map_err(|source| ProcError::Read {
        path: PathBuf::from("/proc"),
        source,
    })?;
    let children: f64 = entries
        .filter_map(Result::ok)
        .filter(|entry| {
            entry
                .file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter_map(|entry| std::fs::read_to_string(entry.path().join("stat")).ok())
        .filter(|stat| parse_ppid(stat) == Some(pid))
        .filter_map(|stat| parse_stat(&stat))
        .sum();
    Ok(own + children)
}

/// The fields after the command name (state is the first).
fn fields_after_name(stat: &str) -> Option<std::str::SplitWhitespace<'_>> {
    Some(stat[stat.rfind(')')? + 1..].split_whitespace())
}

/// The parent's pid (field 4).
fn parse_ppid(stat: &str) -> Option<u32> {
    fields_after_name(stat)?.nth(1)?.parse().ok()
}

/// `utime + stime + cutime + cstime` (fields 14-17) in seconds.
fn parse_stat_with_children(stat: &str) -> Option<f64> {
    let mut fields = fields_after_name(stat)?.skip(11);
    let mut ticks = 0u64;
    for _ in 0..4 {
        ticks += fields.next()?.parse::<u64>().ok()?;
    }
    #[allow(clippy::cast_precision_loss)]
    Some(ticks as f64 / USER_HZ)
}

/// `VmHWM` in bytes (the file gives kB).
fn parse_status(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line["VmHWM:".len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_count_from_the_last_parenthesis() {
        let stat =
            "4242 (tillsyn (x) y) S 1 4242 4242 0 -1 4194560 900 0 0 0 250 75 0 0 20 0 9 0 1 2 3";
        assert_eq!(parse_stat(stat), Some(3.25));
        assert_eq!(parse_stat("4242 (short) S 1"), None);
    }

    #[test]
    fn children_times_and_the_parent_pid_are_read_from_stat() {
        let stat =
            "4242 (postgres: x) S 17 4242 4242 0 -1 4194560 900 0 0 0 250 75 100 25 20 0 9 0 1 2 3";
        assert_eq!(parse_ppid(stat), Some(17));
        assert_eq!(parse_stat_with_children(stat), Some(4.5));
        assert_eq!(parse_stat_with_children("4242 (short) S 1 2 3"), None);
        let own = tree_cpu_seconds(std::process::id()).unwrap();
        assert!(own >= 0.0);
    }

    #[test]
    fn peak_rss_is_vmhwm_in_bytes() {
        let status = "Name:\tx\nVmPeak:\t  9000 kB\nVmHWM:\t    2048 kB\nVmRSS:\t 1000 kB\n";
        assert_eq!(parse_status(status), Some(2048 * 1024));
        assert_eq!(parse_status("Name:\tx\n"), None);
    }

    #[test]
    fn this_process_can_be_read() {
        let own = usage(std::process::id()).unwrap();
        assert!(own.peak_rss_bytes > 0);
        assert!(own.cpu_seconds >= 0.0);
        assert!(matches!(usage(u32::MAX), Err(ProcError::Read { .. })));
    }
}
