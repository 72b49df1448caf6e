//! Bounded reading of the text configuration files the authentication collectors parse
//! (`sshd_config`, `pam.d`, `passwd`, `shadow`, `sudoers`).
//!
//! Owns the limits every such read obeys: a size cap, a binary-content check, regular files
//! only. It must not interpret content, and its errors must never quote file content (the
//! `shadow` file holds password hashes).

use std::io::Read;
use std::path::Path;

use super::{Evidence, FactError, rooted};

/// Largest configuration file read; a hostile root must not make the agent read gigabytes.
pub const MAX_CONFIG_FILE: u64 = 1024 * 1024;

/// Why a configuration file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Larger than [`MAX_CONFIG_FILE`].
    #[error("file is larger than the {limit} byte limit")]
    TooLarge {
        /// The limit that was exceeded.
        limit: u64,
    },
    /// Holds a NUL byte, so it is not a text configuration file.
    #[error("file looks binary (NUL byte at offset {offset})")]
    Binary {
        /// Offset of the first NUL byte.
        offset: usize,
    },
    /// A directory, socket, device or similar.
    #[error("not a regular file")]
    NotAFile,
    /// The operating system refused.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Reads the text file at the system path `absolute` under `root`. A missing file is
/// `Ok(None)`, so callers decide whether absence matters.
pub fn read(root: &Path, absolute: &str) -> Result<Option<String>, ReadError> {
    let path = rooted(root, absolute);
    let meta = match std::fs::metadata(&path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    if !meta.is_file() {
        return Err(ReadError::NotAFile);
    }
    // Read through `take` rather than trusting the metadata: the file may grow meanwhile.
    let mut bytes = Vec::new();
    std::fs::File::open(&path)?
        .take(MAX_CONFIG_FILE + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_CONFIG_FILE {
        return Err(ReadError::TooLarge {
            limit: MAX_CONFIG_FILE,
        });
    }
    if let Some(offset) = bytes.iter().position(|&b| b == 0) {
        return Err(ReadError::Binary { offset });
    }
    Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
}

/// A [`FactError`] for `collector` about the system path `source`.
pub fn fact_error(collector: &str, source: &str, error: &dyn std::fmt::Display) -> FactError {
    FactError {
        collector: collector.to_string(),
        source: source.to_string(),
        error: error.to_string(),
    }
}

/// Evidence pointing at line `line` (1-based) of the system path `source`.
pub fn line_evidence(source: &str, line: usize, probe: &str, detail: &str) -> Evidence {
    Evidence {
        source: source.to_string(),
        line: u32::try_from(line).unwrap_or(u32::MAX),
        probe: probe.to_string(),
        detail: detail.trim().to_string(),
    }
}

/// Joins physical lines ending in a backslash into logical lines, keeping the 1-based number
/// of the first physical line (both `pam.d` and `sudoers` allow continuations).
pub fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut lines = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (index, raw) in text.lines().enumerate() {
        let (number, mut joined) = pending.take().unwrap_or((index + 1, String::new()));
        if let Some(stripped) = raw.strip_suffix('\\') {
            joined.push_str(stripped);
            joined.push(' ');
            pending = Some((number, joined));
        } else {
            joined.push_str(raw);
            lines.push((number, joined));
        }
    }
    // A continuation on the last line continues into nothing.
    if let Some((number, joined)) = pending {
        lines.push((number, joined.trim_end().to_string()));
    }
    lines
}

#[cfg(test)]
// Tests unwrap: a panic there is a test failure pointing at its line.
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::inventory::test_support::tree_bytes as tree;

    #[test]
    fn missing_file_is_none() {
        let tmp = tree(&[]);
        assert!(read(tmp.path(), "/etc/nothing").unwrap().is_none());
    }

    #[test]
    fn huge_file_is_refused() {
        let big = vec![b'#'; usize::try_from(MAX_CONFIG_FILE).unwrap() + 1];
        let tmp = tree(&[("/etc/big", &big)]);
        assert!(matches!(
            read(tmp.path(), "/etc/big"),
            Err(ReadError::TooLarge { .. })
        ));
    }

    #[test]
    fn binary_file_is_refused() {
        let tmp = tree(&[("/etc/bin", b"Port 22\n\x00\x01\x02")]);
        assert!(matches!(
            read(tmp.path(), "/etc/bin"),
            Err(ReadError::Binary { offset: 8 })
        ));
    }

    #[test]
    fn directory_is_not_a_file() {
        let tmp = tree(&[("/etc/d/x", b"")]);
        assert!(matches!(
            read(tmp.path(), "/etc/d"),
            Err(ReadError::NotAFile)
        ));
    }

    #[test]
    fn continuations_keep_first_line_number() {
        let lines = logical_lines("a\nb \\\nc\nd\\");
        assert_eq!(
            lines,
            vec![(1, "a".into()), (2, "b  c".into()), (4, "d".into())]
        );
    }
}
