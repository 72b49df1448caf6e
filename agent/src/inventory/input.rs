//! Bounded reads of the files the software, services and at-rest collectors parse.
//!
//! Owns the size limits: a hostile or broken root must never make the agent read gigabytes or
//! block on a FIFO. `/proc` files report a size of 0, so the limit is enforced while reading,
//! not from metadata. A file over its limit yields its first `limit` bytes plus a
//! [`FactError`], so the caller still parses a partial result. This module must not interpret
//! the contents.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::{FactError, rooted};

/// A file read under the root.
#[derive(Debug)]
pub struct Input {
    /// The path actually read (root joined with the absolute path).
    pub path: PathBuf,
    /// The absolute path as the host knows it, e.g. `/proc/net/tcp`, used in evidence.
    pub source: String,
    /// The text, lossily decoded; cut at the limit when the file was larger.
    pub text: String,
}

/// Reads `absolute` under `root`, at most `limit` bytes.
///
/// A missing file is `None` without an error (most inputs are optional on a given
/// distribution); any other failure, and a file over `limit`, is recorded in `errors` under
/// `collector`.
pub fn read_bounded(
    root: &Path,
    absolute: &str,
    limit: u64,
    collector: &str,
    errors: &mut Vec<FactError>,
) -> Option<Input> {
    let path = rooted(root, absolute);
    match read_path(&path, limit) {
        Ok((text, truncated)) => {
            if truncated {
                errors.push(FactError {
                    collector: collector.into(),
                    source: absolute.into(),
                    error: format!("larger than the {limit} byte limit; only the start was read"),
                });
            }
            Some(Input {
                path,
                source: absolute.into(),
                text,
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            errors.push(FactError {
                collector: collector.into(),
                source: absolute.into(),
                error: e.to_string(),
            });
            None
        }
    }
}

/// Reads at most `limit` bytes of `path`; the flag says whether more was there.
pub fn read_path(path: &Path, limit: u64) -> std::io::Result<(String, bool)> {
    // Refuse FIFOs and devices before opening: `open(2)` on a FIFO blocks until a writer
    // appears, so a hostile root could hang the agent. (procfs files are regular files.)
    if !std::fs::metadata(path)?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    let file = std::fs::File::open(path)?;
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes)?;
    let truncated = bytes.len() as u64 > limit;
    if truncated {
        bytes.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        // Drop the cut-off last line so parsers never see half a record.
        if let Some(end) = bytes.iter().rposition(|&b| b == b'\n') {
            bytes.truncate(end + 1);
        }
    }
    Ok((String::from_utf8_lossy(&bytes).into_owned(), truncated))
}

/// Lists a directory under the root as `(file name, full path)`, sorted by name; a missing
/// directory is empty, other failures are recorded.
pub fn list_dir(
    root: &Path,
    absolute: &str,
    collector: &str,
    errors: &mut Vec<FactError>,
) -> Vec<(String, PathBuf)> {
    let dir = rooted(root, absolute);
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => {
            errors.push(FactError {
                collector: collector.into(),
                source: absolute.into(),
                error: e.to_string(),
            });
            return Vec::new();
        }
    };
    let mut list: Vec<(String, PathBuf)> = entries
        .filter_map(Result::ok)
        .map(|entry| {
            (
                entry.file_name().to_string_lossy().into_owned(),
                entry.path(),
            )
        })
        .collect();
    list.sort();
    list
}

/// Converts a 1-based line index to the evidence type, saturating on absurd files.
pub fn line_no(index: usize) -> u32 {
    u32::try_from(index + 1).unwrap_or(u32::MAX)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // In tests an unwrap that fails is the failing assertion.
mod tests {
    use super::*;

    #[test]
    fn oversized_file_gives_whole_lines_and_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("big"), "line one\nline two\nline three\n").unwrap();
        let mut errors = Vec::new();
        let input = read_bounded(tmp.path(), "/big", 14, "test", &mut errors).unwrap();
        assert_eq!(input.text, "line one\n");
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].source, "/big");
    }

    #[cfg(unix)]
    #[test]
    fn fifo_is_refused_without_blocking() {
        let tmp = tempfile::tempdir().unwrap();
        let fifo = tmp.path().join("fifo");
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
        let error = read_path(&fifo, 10).unwrap_err();
        assert_eq!(error.to_string(), "not a regular file");
    }

    #[test]
    fn missing_file_is_silent_and_directory_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir(tmp.path().join("dir")).unwrap();
        let mut errors = Vec::new();
        assert!(read_bounded(tmp.path(), "/nope", 10, "test", &mut errors).is_none());
        assert!(errors.is_empty());
        assert!(read_bounded(tmp.path(), "/dir", 10, "test", &mut errors).is_none());
        assert_eq!(errors.len(), 1);
    }
}
