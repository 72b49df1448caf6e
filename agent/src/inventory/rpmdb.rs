//! Reads the rpm database in its SQLite format (`/var/lib/rpm/rpmdb.sqlite`, rpm 4.16 and
//! later: RHEL 9, Fedora 33+) and hands each row's header to [`super::rpm_header`].
//!
//! The schema rpm writes (`lib/backend/sqlite.c`) is
//! `CREATE TABLE Packages (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL)`; `hnum`
//! is rpm's record number and `blob` one header without its magic. The other tables are
//! indexes rpm can rebuild, and are not read.
//!
//! The host's database must never be written or locked by the agent: it is opened with
//! `SQLITE_OPEN_READ_ONLY` and the URI parameter `immutable=1`, which makes SQLite take no
//! locks and create no `-wal`, `-shm` or journal file. The price is that SQLite does not read
//! the `-wal` file either and assumes nothing changes under it: rpm checkpoints the WAL when it
//! closes the database, so a quiet host is read completely, while a read racing an `rpm`/`dnf`
//! transaction may miss that transaction or fail with an SQLite error, which becomes a
//! [`super::FactError`], never a panic. This module must not run `rpm` nor open the database
//! any other way.

use std::fmt::Write as _;
use std::path::Path;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};
use thiserror::Error;

use super::rpm_header::{MAX_DATA_BYTES, MAX_INDEX_ENTRIES, RpmPackage, parse_header};

/// Where rpm keeps its SQLite database, as the host knows it.
pub const RPMDB_SQLITE: &str = "/var/lib/rpm/rpmdb.sqlite";
/// A large RHEL server has a few thousand packages; past this the database is not believed.
pub const MAX_PACKAGES: usize = 100_000;
/// The largest blob [`parse_header`] can accept; longer rows are rejected unread.
const MAX_BLOB_BYTES: usize = 8 + 16 * MAX_INDEX_ENTRIES as usize + MAX_DATA_BYTES as usize;

/// One row of `Packages` whose header was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstalledRpm {
    /// rpm's record number (`hnum`), used in evidence.
    pub hnum: i64,
    /// The package the header describes.
    pub package: RpmPackage,
}

/// What one read of the database found.
#[derive(Debug, Default)]
pub struct RpmdbContents {
    /// Packages in `hnum` order.
    pub packages: Vec<InstalledRpm>,
    /// How many rows held a header that could not be read.
    pub rejected: usize,
    /// The first of those, as `hnum N: reason`.
    pub first_rejection: Option<String>,
    /// Whether there were more than [`MAX_PACKAGES`] rows; only the first were read.
    pub truncated: bool,
}

/// Why the database could not be read at all.
#[derive(Debug, Error)]
pub enum RpmdbError {
    /// A FIFO or device where the database should be; opening it could block.
    #[error("not a regular file")]
    NotRegularFile,
    /// The file could not be inspected.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// SQLite refused the file or the query (not a database, no `Packages` table, ...).
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
}

/// Reads every package header in the SQLite rpm database at `path`, read-only, at most
/// [`MAX_PACKAGES`].
pub fn read(path: &Path) -> Result<RpmdbContents, RpmdbError> {
    read_at_most(path, MAX_PACKAGES, MAX_BLOB_BYTES)
}

fn read_at_most(
    path: &Path,
    max_packages: usize,
    max_blob_bytes: usize,
) -> Result<RpmdbContents, RpmdbError> {
    // `open(2)` on a FIFO blocks until a writer appears; refuse anything but a file first.
    if !std::fs::metadata(path)?.is_file() {
        return Err(RpmdbError::NotRegularFile);
    }
    let connection = Connection::open_with_flags(
        immutable_uri(path),
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI,
    )?;
    // `length(blob)` comes from the record header, so an oversized blob is never loaded.
    let mut statement = connection.prepare(
        "SELECT hnum, length(blob), CASE WHEN length(blob) <= ?1 THEN blob END \
         FROM Packages ORDER BY hnum LIMIT ?2",
    )?;
    let limit = i64::try_from(max_packages.saturating_add(1)).unwrap_or(i64::MAX);
    let max_blob = i64::try_from(max_blob_bytes).unwrap_or(i64::MAX);
    let mut rows = statement.query((max_blob, limit))?;
    let mut contents = RpmdbContents::default();
    let mut seen = 0;
    while let Some(row) = rows.next()? {
        seen += 1;
        if seen > max_packages {
            contents.truncated = true;
            break;
        }
        let hnum: i64 = row.get(0)?;
        let result = match (row.get_ref(1)?, row.get_ref(2)?) {
            (_, ValueRef::Blob(blob)) => parse_header(blob).map_err(|e| e.to_string()),
            (ValueRef::Integer(len), ValueRef::Null) if len > max_blob => Err(format!(
                "header is {len} bytes, over the {max_blob_bytes} byte limit"
            )),
            _ => Err("blob column does not hold a BLOB".to_string()),
        };
        match result {
            Ok(package) => contents.packages.push(InstalledRpm { hnum, package }),
            Err(reason) => {
                contents.rejected += 1;
                contents
                    .first_rejection
                    .get_or_insert_with(|| format!("hnum {hnum}: {reason}"));
            }
        }
    }
    Ok(contents)
}

/// `file:<percent-encoded path>?immutable=1`: SQLite's URI form, so a path holding `?`, `#`
/// or `%` stays a path.
pub(crate) fn immutable_uri(path: &Path) -> String {
    let mut uri = String::from("file:");
    for &byte in path.as_os_str().as_encoded_bytes() {
        if byte.is_ascii_alphanumeric() || b"/-._~".contains(&byte) {
            uri.push(char::from(byte));
        } else {
            // Writing to a String cannot fail.
            let _ = write!(uri, "%{byte:02X}");
        }
    }
    uri.push_str("?immutable=1");
    uri
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // In tests an unwrap that fails is the failing assertion.
mod tests {
    use super::super::rpm_header::build_header;
    use super::*;

    fn header(name: &str, epoch: Option<u32>) -> Vec<u8> {
        let name = format!("{name}\0");
        let epoch = epoch.map(u32::to_be_bytes);
        let mut entries: Vec<(u32, u32, &[u8])> = vec![
            (1000, 6, name.as_bytes()),
            (1001, 6, b"1.0\0"),
            (1002, 6, b"1.el9\0"),
            (1022, 6, b"x86_64\0"),
        ];
        if let Some(epoch) = &epoch {
            entries.push((1003, 4, epoch));
        }
        build_header(&entries)
    }

    /// A database in rpm's schema, written by the test, then closed.
    fn database(dir: &Path, rows: &[(i64, rusqlite::types::Value)]) -> std::path::PathBuf {
        let path = dir.join("rpmdb sqlite?#%.db");
        let connection = Connection::open(&path).unwrap();
        connection
            .execute_batch(
                "PRAGMA journal_mode=WAL; CREATE TABLE Packages (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL)",
            )
            .unwrap();
        for (hnum, blob) in rows {
            connection
                .execute("INSERT INTO Packages VALUES (?1, ?2)", (hnum, blob))
                .unwrap();
        }
        drop(connection);
        path
    }

    #[test]
    fn reads_good_rows_and_counts_bad_ones_without_writing() {
        use rusqlite::types::Value;
        let tmp = tempfile::tempdir().unwrap();
        let path = database(
            tmp.path(),
            &[
                (1, Value::Blob(header("bash", None))),
                (2, Value::Blob(b"garbage".to_vec())),
                (3, Value::Text("not a blob".into())),
                (4, Value::Blob(header("openssl", Some(1)))),
            ],
        );
        let before = std::fs::read(&path).unwrap();
        let files_before = std::fs::read_dir(tmp.path()).unwrap().count();

        let contents = read(&path).unwrap();
        let names: Vec<(i64, &str)> = contents
            .packages
            .iter()
            .map(|p| (p.hnum, p.package.name.as_str()))
            .collect();
        assert_eq!(names, [(1, "bash"), (4, "openssl")]);
        assert_eq!(contents.packages[1].package.evr(), "1:1.0-1.el9");
        assert_eq!(contents.rejected, 2);
        assert!(
            contents
                .first_rejection
                .unwrap()
                .starts_with("hnum 2: header is 7 bytes")
        );
        assert!(!contents.truncated);

        // Read-only and lock-free: the file is unchanged and no -wal/-shm/journal appeared.
        assert_eq!(std::fs::read(&path).unwrap(), before);
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), files_before);
    }

    #[test]
    fn not_a_database_and_no_table_are_errors() {
        let tmp = tempfile::tempdir().unwrap();
        let junk = tmp.path().join("junk");
        std::fs::write(&junk, b"SQLite format 3\0 and then nothing").unwrap();
        assert!(matches!(read(&junk), Err(RpmdbError::Sqlite(_))));

        let empty = tmp.path().join("empty.sqlite");
        Connection::open(&empty)
            .unwrap()
            .execute_batch("CREATE TABLE Other (x)")
            .unwrap();
        let error = read(&empty).unwrap_err().to_string();
        assert!(error.contains("no such table: Packages"), "{error}");

        assert!(matches!(read(tmp.path()), Err(RpmdbError::NotRegularFile)));
        assert!(matches!(
            read(&tmp.path().join("missing")),
            Err(RpmdbError::Io(_))
        ));
    }

    #[test]
    fn rows_past_the_cap_are_not_read() {
        use rusqlite::types::Value;
        let tmp = tempfile::tempdir().unwrap();
        let rows: Vec<(i64, Value)> = (1..=5)
            .map(|hnum| (hnum, Value::Blob(header(&format!("p{hnum}"), None))))
            .collect();
        let path = database(tmp.path(), &rows);
        let contents = read_at_most(&path, 3, MAX_BLOB_BYTES).unwrap();
        assert_eq!(contents.packages.len(), 3);
        assert!(contents.truncated);
        assert!(!read_at_most(&path, 5, MAX_BLOB_BYTES).unwrap().truncated);
    }

    #[test]
    fn oversized_blobs_are_rejected_unread() {
        use rusqlite::types::Value;
        let tmp = tempfile::tempdir().unwrap();
        let small = header("small", None);
        let big = header("a-much-longer-package-name", None);
        let path = database(
            tmp.path(),
            &[(1, Value::Blob(small.clone())), (2, Value::Blob(big))],
        );
        let contents = read_at_most(&path, MAX_PACKAGES, small.len()).unwrap();
        assert_eq!(contents.packages.len(), 1);
        assert_eq!(contents.rejected, 1);
        let rejection = contents.first_rejection.unwrap();
        assert!(rejection.starts_with("hnum 2: header is"), "{rejection}");
        assert!(rejection.ends_with(&format!("over the {} byte limit", small.len())));
    }

    #[test]
    fn uri_escapes_everything_sqlite_would_interpret() {
        assert_eq!(
            immutable_uri(Path::new("/r o/a?b#c%d/rpmdb.sqlite")),
            "file:/r%20o/a%3Fb%23c%25d/rpmdb.sqlite?immutable=1"
        );
    }
}
