//! When each account last logged in, from the login records `login(1)`, sshd and
//! `pam_lastlog` keep: `/var/log/lastlog` (one fixed record per uid; the file is indexed by uid
//! and sparse) and `/var/log/wtmp` (one `struct utmp` per login and logout, appended).
//!
//! Owns the two binary parsers (pure, fuzzed by agent/fuzz `login_records`) and their reads. The
//! layouts are glibc's on 64-bit Linux (x86_64, aarch64, little-endian): a lastlog record is
//! `i32 ll_time, char ll_line[32], char ll_host[256]` (292 bytes) and a utmp record is 384 bytes
//! with `ut_type` at 0, `ut_user[32]` at 44 and `ut_tv.tv_sec` (i32) at 340; glibc keeps both
//! times 32-bit on 64-bit hosts for compatibility with 32-bit userland.
//!
//! A uid's lastlog record is read at its offset, never the whole file: a host joined to a
//! directory has uids near 2^31 and a lastlog hundreds of gigabytes long (sparse). wtmp is read
//! from its end, at most [`WTMP_TAIL`] bytes, on a record boundary.
//!
//! Not read: util-linux's `lastlog2` (a SQLite database, Debian 13 and later) and `wtmpdb`; on a
//! host that keeps only those, last logins are [`LastLogin::Unknown`].
//!
//! # Evidence convention
//! Each verdict is one [`Evidence`] with probe [`PROBE`] and detail `NAME: last login
//! RFC3339` or `NAME: never logged in`; the collector's `k23-privileged` rule reads that detail
//! (collector/src/rules.rs `last_logins`), so the two forms are part of the wire contract.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use thiserror::Error;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{Evidence, FactError, rooted};

/// The probe name on every last-login evidence.
pub const PROBE: &str = "last-login";
const LASTLOG: &str = "/var/log/lastlog";
const WTMP: &str = "/var/log/wtmp";
/// Bytes of one lastlog record.
pub const LASTLOG_RECORD: usize = 292;
/// Bytes of one utmp (wtmp) record.
pub const UTMP_RECORD: usize = 384;
/// How much of wtmp's end is read: about 43,000 sessions, months on a server.
pub const WTMP_TAIL: u64 = 16 * 1024 * 1024;
/// `ut_type` of a session start (`USER_PROCESS` in utmp.h).
const USER_PROCESS: i16 = 7;

/// A record that is not the shape its file promises.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum RecordError {
    /// The bytes are not a whole number of records.
    #[error("{len} bytes is not a whole number of {record}-byte records")]
    Length {
        /// Bytes given.
        len: usize,
        /// The record size.
        record: usize,
    },
    /// A time before the epoch.
    #[error("record {index}: login time {seconds} is before 1970")]
    Time {
        /// 0-based record.
        index: usize,
        /// The stored seconds.
        seconds: i32,
    },
}

/// One account's last login as the records tell it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LastLogin {
    /// Seconds since the epoch, with the evidence naming the record's file.
    At(i64, Evidence),
    /// No record in any file that exists.
    Never(Evidence),
    /// Neither file could be read.
    Unknown(String),
}

impl LastLogin {
    /// The evidence of a known verdict.
    pub fn evidence(&self) -> Option<&Evidence> {
        match self {
            Self::At(_, evidence) | Self::Never(evidence) => Some(evidence),
            Self::Unknown(_) => None,
        }
    }
}

/// The login time in one lastlog record; `None` when the uid never logged in (time 0).
pub fn parse_lastlog_record(bytes: &[u8]) -> Result<Option<i64>, RecordError> {
    let Some(time) = bytes.get(..4).filter(|_| bytes.len() == LASTLOG_RECORD) else {
        return Err(RecordError::Length {
            len: bytes.len(),
            record: LASTLOG_RECORD,
        });
    };
    let seconds = i32::from_le_bytes([time[0], time[1], time[2], time[3]]);
    match seconds {
        0 => Ok(None),
        s if s < 0 => Err(RecordError::Time {
            index: 0,
            seconds: s,
        }),
        s => Ok(Some(i64::from(s))),
    }
}

/// The latest session start per user name in a run of wtmp records.
pub fn parse_wtmp(bytes: &[u8]) -> Result<BTreeMap<String, i64>, RecordError> {
    if !bytes.len().is_multiple_of(UTMP_RECORD) {
        return Err(RecordError::Length {
            len: bytes.len(),
            record: UTMP_RECORD,
        });
    }
    let mut latest = BTreeMap::new();
    for (index, record) in bytes.chunks_exact(UTMP_RECORD).enumerate() {
        let kind = i16::from_le_bytes([record[0], record[1]]);
        if kind != USER_PROCESS {
            continue;
        }
        let user = &record[44..76];
        let end = user.iter().position(|&b| b == 0).unwrap_or(user.len());
        let Ok(name) = std::str::from_utf8(&user[..end]) else {
            // Not a name any passwd entry can match.
            continue;
        };
        let seconds = i32::from_le_bytes([record[340], record[341], record[342], record[343]]);
        if seconds < 0 {
            return Err(RecordError::Time { index, seconds });
        }
        if name.is_empty() {
            continue;
        }
        let entry = latest.entry(name.to_string()).or_insert(0);
        *entry = (*entry).max(i64::from(seconds));
    }
    Ok(latest)
}

/// The last login of each `(name, uid)` under `root`; read failures other than a missing file
/// are recorded under `collector`.
pub fn last_logins(
    root: &Path,
    accounts: &[(&str, u32)],
    collector: &str,
    errors: &mut Vec<FactError>,
) -> BTreeMap<String, LastLogin> {
    let mut error = |source: &str, message: String| {
        errors.push(FactError {
            collector: collector.into(),
            source: source.into(),
            error: message,
        });
    };
    let lastlog = open_regular(&rooted(root, LASTLOG));
    let mut lastlog = match lastlog {
        Ok(file) => file,
        Err(e) => {
            if e.kind() != std::io::ErrorKind::NotFound {
                error(LASTLOG, e.to_string());
            }
            None
        }
    };
    let wtmp = match read_wtmp_tail(&rooted(root, WTMP)) {
        Ok(Some(bytes)) => match parse_wtmp(&bytes) {
            Ok(latest) => Some(latest),
            Err(e) => {
                error(WTMP, e.to_string());
                None
            }
        },
        Ok(None) => None,
        Err(e) => {
            if e.kind() != std::io::ErrorKind::NotFound {
                error(WTMP, e.to_string());
            }
            None
        }
    };
    let mut found = BTreeMap::new();
    for &(name, uid) in accounts {
        let from_lastlog = match lastlog.as_mut() {
            Some(file) => match lastlog_of(file, uid) {
                Ok(time) => Some(time),
                Err(message) => {
                    error(LASTLOG, format!("uid {uid}: {message}"));
                    None
                }
            },
            None => None,
        };
        let from_wtmp = wtmp.as_ref().map(|latest| latest.get(name).copied());
        let verdict = match (from_lastlog, from_wtmp) {
            (None, None) => LastLogin::Unknown(format!(
                "neither {LASTLOG} nor {WTMP} could be read (lastlog2 and wtmpdb are not read)"
            )),
            (lastlog, wtmp) => {
                let lastlog = lastlog.flatten().map(|t| (t, LASTLOG));
                let wtmp = wtmp.flatten().map(|t| (t, WTMP));
                if let Some((time, source)) =
                    lastlog.into_iter().chain(wtmp).max_by_key(|(t, _)| *t)
                {
                    LastLogin::At(time, evidence(source, name, Some(time)))
                } else {
                    let source = match (from_lastlog.is_some(), from_wtmp.is_some()) {
                        (true, true) => format!("{LASTLOG}, {WTMP}"),
                        (true, false) => LASTLOG.to_string(),
                        _ => WTMP.to_string(),
                    };
                    LastLogin::Never(evidence(&source, name, None))
                }
            }
        };
        found.insert(name.to_string(), verdict);
    }
    found
}

fn evidence(source: &str, name: &str, time: Option<i64>) -> Evidence {
    let detail = match time
        .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok())
        .and_then(|t| t.format(&Rfc3339).ok())
    {
        Some(at) => format!("{name}: last login {at}"),
        None => format!("{name}: never logged in"),
    };
    Evidence {
        source: source.into(),
        line: 0,
        probe: PROBE.into(),
        detail,
    }
}

/// Opens `path` when it is a regular file (a FIFO would block `open(2)`).
fn open_regular(path: &Path) -> std::io::Result<Option<std::fs::File>> {
    if !std::fs::metadata(path)?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    std::fs::File::open(path).map(Some)
}

/// The record of `uid`: `Ok(None)` past the end of the file or with time 0.
fn lastlog_of(file: &mut std::fs::File, uid: u32) -> Result<Option<i64>, String> {
    let offset = u64::from(uid) * LASTLOG_RECORD as u64;
    file.seek(SeekFrom::Start(offset))
        .map_err(|e| e.to_string())?;
    let mut record = Vec::with_capacity(LASTLOG_RECORD);
    file.take(LASTLOG_RECORD as u64)
        .read_to_end(&mut record)
        .map_err(|e| e.to_string())?;
    if record.len() < LASTLOG_RECORD {
        // Past the end: this uid has no record yet.
        return Ok(None);
    }
    parse_lastlog_record(&record).map_err(|e| e.to_string())
}

/// The last [`WTMP_TAIL`] bytes of wtmp, starting on a record boundary.
fn read_wtmp_tail(path: &Path) -> std::io::Result<Option<Vec<u8>>> {
    let Some(mut file) = open_regular(path)? else {
        return Ok(None);
    };
    let len = file.metadata()?.len();
    let whole = len - len % UTMP_RECORD as u64;
    let tail = whole.min(WTMP_TAIL - WTMP_TAIL % UTMP_RECORD as u64);
    file.seek(SeekFrom::Start(whole - tail))?;
    let mut bytes = Vec::new();
    file.take(tail).read_to_end(&mut bytes)?;
    // A file growing while read: keep whole records only.
    bytes.truncate(bytes.len() - bytes.len() % UTMP_RECORD);
    Ok(Some(bytes))
}

/// Test and fixture support: the bytes of records as glibc writes them.
pub mod records {
    use super::{LASTLOG_RECORD, USER_PROCESS, UTMP_RECORD};

    /// A lastlog file in which each `(uid, seconds)` has its record.
    pub fn lastlog(entries: &[(u32, i32)]) -> Vec<u8> {
        let last = entries.iter().map(|(uid, _)| *uid).max().unwrap_or(0);
        let len = (usize::try_from(last).unwrap_or(0) + 1) * LASTLOG_RECORD;
        let mut bytes = vec![0; len];
        for (uid, seconds) in entries {
            let at = usize::try_from(*uid).unwrap_or(0) * LASTLOG_RECORD;
            bytes[at..at + 4].copy_from_slice(&seconds.to_le_bytes());
            bytes[at + 4..at + 9].copy_from_slice(b"pts/0");
        }
        bytes
    }

    /// A wtmp file with one session start per `(user, seconds)`.
    pub fn wtmp(sessions: &[(&str, i32)]) -> Vec<u8> {
        let mut bytes = Vec::new();
        for (user, seconds) in sessions {
            let mut record = vec![0; UTMP_RECORD];
            record[..2].copy_from_slice(&USER_PROCESS.to_le_bytes());
            let name = user.as_bytes();
            let n = name.len().min(32);
            record[44..44 + n].copy_from_slice(&name[..n]);
            record[340..344].copy_from_slice(&seconds.to_le_bytes());
            bytes.extend(record);
        }
        bytes
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // In tests an unwrap that fails is the failing assertion.
mod tests {
    use super::*;

    fn write(root: &Path, path: &str, bytes: &[u8]) {
        let full = rooted(root, path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, bytes).unwrap();
    }

    #[test]
    fn records_parse_and_bad_lengths_are_named() {
        let bytes = records::lastlog(&[(2, 1_700_000_000)]);
        assert_eq!(bytes.len(), 3 * LASTLOG_RECORD);
        assert_eq!(
            parse_lastlog_record(&bytes[..LASTLOG_RECORD]).unwrap(),
            None
        );
        assert_eq!(
            parse_lastlog_record(&bytes[2 * LASTLOG_RECORD..]).unwrap(),
            Some(1_700_000_000)
        );
        assert_eq!(
            parse_lastlog_record(&bytes[..10]).unwrap_err().to_string(),
            "10 bytes is not a whole number of 292-byte records"
        );
        let wtmp = records::wtmp(&[("anna", 100), ("erik", 50), ("anna", 300), ("anna", 200)]);
        let latest = parse_wtmp(&wtmp).unwrap();
        assert_eq!(latest["anna"], 300);
        assert_eq!(latest["erik"], 50);
        assert!(parse_wtmp(&wtmp[..100]).is_err());
        let mut negative = records::wtmp(&[("anna", -5)]);
        assert_eq!(
            parse_wtmp(&negative).unwrap_err(),
            RecordError::Time {
                index: 0,
                seconds: -5
            }
        );
        // A logout record (DEAD_PROCESS) is not a login.
        negative[0] = 8;
        assert!(parse_wtmp(&negative).unwrap().is_empty());
    }

    #[test]
    fn latest_of_both_files_with_evidence() {
        let tmp = tempfile::tempdir().unwrap();
        write(
            tmp.path(),
            LASTLOG,
            &records::lastlog(&[(1000, 1_700_000_000), (1001, 1_600_000_000)]),
        );
        write(tmp.path(), WTMP, &records::wtmp(&[("erik", 1_650_000_000)]));
        let mut errors = Vec::new();
        let found = last_logins(
            tmp.path(),
            &[
                ("anna", 1000),
                ("erik", 1001),
                ("olle", 1002),
                ("big", 2_000_000_000),
            ],
            "accounts",
            &mut errors,
        );
        assert!(errors.is_empty(), "{errors:?}");
        let LastLogin::At(anna, evidence) = &found["anna"] else {
            panic!("{found:?}")
        };
        assert_eq!(*anna, 1_700_000_000);
        assert_eq!(evidence.source, LASTLOG);
        assert_eq!(evidence.detail, "anna: last login 2023-11-14T22:13:20Z");
        let LastLogin::At(erik, evidence) = &found["erik"] else {
            panic!()
        };
        assert_eq!((*erik, evidence.source.as_str()), (1_650_000_000, WTMP));
        assert_eq!(
            found["olle"].evidence().unwrap().detail,
            "olle: never logged in"
        );
        // A uid far past the end (a sparse file's hole) is no record, not an error.
        assert!(matches!(found["big"], LastLogin::Never(_)));
    }

    #[test]
    fn missing_files_are_unknown_and_bad_ones_named() {
        let tmp = tempfile::tempdir().unwrap();
        let mut errors = Vec::new();
        let found = last_logins(tmp.path(), &[("anna", 1000)], "accounts", &mut errors);
        assert!(matches!(found["anna"], LastLogin::Unknown(_)));
        assert!(errors.is_empty());
        // A torn wtmp (not whole records) is cut to whole records, not refused.
        let mut torn = records::wtmp(&[("anna", 1_700_000_000)]);
        torn.extend([0; 10]);
        write(tmp.path(), WTMP, &torn);
        let found = last_logins(tmp.path(), &[("anna", 1000)], "accounts", &mut errors);
        assert!(
            matches!(found["anna"], LastLogin::At(1_700_000_000, _)),
            "{found:?}"
        );
        // A corrupt lastlog record is named with its uid.
        let mut corrupt = records::lastlog(&[(1000, 1)]);
        corrupt[1000 * LASTLOG_RECORD..1000 * LASTLOG_RECORD + 4]
            .copy_from_slice(&(-1i32).to_le_bytes());
        write(tmp.path(), LASTLOG, &corrupt);
        let found = last_logins(tmp.path(), &[("anna", 1000)], "accounts", &mut errors);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].error.starts_with("uid 1000: "), "{errors:?}");
        assert!(matches!(found["anna"], LastLogin::At(1_700_000_000, _)));
    }
}
