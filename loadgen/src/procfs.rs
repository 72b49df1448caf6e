//! CPU time and peak resident memory of a process, read from `/proc/PID/stat` and
//! `/proc/PID/status` (Linux only). Used to charge the collector for what the simulated fleet
//! makes it do; the figures cover every thread of the process.

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
