//! Parser of one rpm header as the rpm database stores it: the name, epoch, version, release
//! and architecture of an installed package, and nothing else.
//!
//! # Frame
//!
//! rpm's `lib/header.c` (`hdrblobInit`, `hdrblobVerifyInfo`) and `doc/manual/format.md`
//! define it; `knqyf263/go-rpmdb` (`pkg/rpmdb.go`, `headerImport`) reads it the same way. A
//! database row holds the header *without* the 8-byte magic (`8e ad e8 01 00 00 00 00`) that
//! precedes it in a package file. All integers are big-endian.
//!
//! ```text
//! 0        4        8                         8 + 16*il            8 + 16*il + dl
//! +--------+--------+-------------------------+-------------------------+
//! | il u32 | dl u32 | il index entries        | data store, dl bytes    |
//! +--------+--------+-------------------------+-------------------------+
//!
//! index entry, 16 bytes:
//! +---------+----------+------------+-----------+
//! | tag u32 | type u32 | offset u32 | count u32 |   offset is into the data store
//! +---------+----------+------------+-----------+
//! ```
//!
//! rpm requires the blob to be exactly `8 + 16*il + dl` bytes, and so does this parser. The
//! first entry is usually a region tag (63, `HEADERIMMUTABLE`) whose data is a trailer at the
//! end of the store; it needs no special handling here because entries are looked up by tag.
//!
//! Tags read: NAME 1000, VERSION 1001, RELEASE 1002 (required), EPOCH 1003 (`INT32`, type 4,
//! optional), ARCH 1022 (optional: the `gpg-pubkey` pseudo-packages rpm keeps for imported
//! keys have none). Strings are type 6 (`STRING`) or 9 (`I18NSTRING`, whose first string is
//! the untranslated one), NUL-terminated in the store.
//!
//! # Safety against hostile input
//!
//! The input is untrusted bytes from the host's disk. Every offset is checked against the
//! store, `il` and `dl` are capped before any arithmetic, the parser never panics, and it
//! allocates only the five strings it returns, each a copy of bytes inside the input. It must
//! not interpret any other tag.

use thiserror::Error;

/// rpm caps the tag count at 2^24 (`hdrchkTags`); real packages have about 100 tags, so a
/// much lower cap still accepts every package while rejecting garbage early.
pub const MAX_INDEX_ENTRIES: u32 = 65_536;
/// rpm caps a whole header at 256 MiB (`headerMaxbytes`); the largest real headers (huge file
/// lists) are a few MiB.
pub const MAX_DATA_BYTES: u32 = 64 * 1024 * 1024;

const ENTRY_BYTES: usize = 16;
const TAG_NAME: u32 = 1000;
const TAG_VERSION: u32 = 1001;
const TAG_RELEASE: u32 = 1002;
const TAG_EPOCH: u32 = 1003;
const TAG_ARCH: u32 = 1022;
const TYPE_INT32: u32 = 4;
const TYPE_STRING: u32 = 6;
const TYPE_I18NSTRING: u32 = 9;

/// One installed package as its rpm header describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpmPackage {
    /// `NAME`.
    pub name: String,
    /// `EPOCH`, when the package sets one.
    pub epoch: Option<u32>,
    /// `VERSION`.
    pub version: String,
    /// `RELEASE`.
    pub release: String,
    /// `ARCH`, empty when the header has none.
    pub arch: String,
}

impl RpmPackage {
    /// `EPOCH:VERSION-RELEASE`, the epoch only when set, as `rpm -q --qf '%{EVR}'` prints it.
    pub fn evr(&self) -> String {
        match self.epoch {
            Some(epoch) => format!("{epoch}:{}-{}", self.version, self.release),
            None => format!("{}-{}", self.version, self.release),
        }
    }
}

/// Why a header could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HeaderError {
    /// Fewer than the 8 bytes of `il` and `dl`.
    #[error("header is {len} bytes, shorter than its 8-byte length prefix")]
    TooShort {
        /// Bytes given.
        len: usize,
    },
    /// `il` over [`MAX_INDEX_ENTRIES`].
    #[error("index count {il} is over the limit of {MAX_INDEX_ENTRIES}")]
    TooManyEntries {
        /// The index count read.
        il: u32,
    },
    /// `dl` over [`MAX_DATA_BYTES`].
    #[error("data length {dl} is over the limit of {MAX_DATA_BYTES} bytes")]
    DataTooLarge {
        /// The data length read.
        dl: u32,
    },
    /// The blob is not `8 + 16*il + dl` bytes.
    #[error("header is {len} bytes, but il {il} and dl {dl} make {expected}")]
    SizeMismatch {
        /// Bytes given.
        len: usize,
        /// The index count read.
        il: u32,
        /// The data length read.
        dl: u32,
        /// `8 + 16*il + dl`.
        expected: usize,
    },
    /// A required tag is not in the index.
    #[error("tag {tag} is missing")]
    MissingTag {
        /// The tag looked for.
        tag: u32,
    },
    /// A tag has a type this parser does not accept for it.
    #[error("tag {tag} has type {found}, not {expected}")]
    WrongType {
        /// The tag.
        tag: u32,
        /// The type in the index entry.
        found: u32,
        /// The types accepted, in words.
        expected: &'static str,
    },
    /// A tag's data does not lie within the data store.
    #[error("tag {tag}: data at offset {offset} runs past the {dl}-byte data store")]
    OutOfBounds {
        /// The tag.
        tag: u32,
        /// Its offset.
        offset: u32,
        /// The data store's length.
        dl: u32,
    },
}

/// Parses one header blob as stored in `rpmdb.sqlite` (no magic prefix).
pub fn parse_header(blob: &[u8]) -> Result<RpmPackage, HeaderError> {
    let header = Header::new(blob)?;
    Ok(RpmPackage {
        name: header.required_string(TAG_NAME)?,
        epoch: header.optional_int32(TAG_EPOCH)?,
        version: header.required_string(TAG_VERSION)?,
        release: header.required_string(TAG_RELEASE)?,
        arch: header.optional_string(TAG_ARCH)?.unwrap_or_default(),
    })
}

/// A header whose frame has been checked: `index` is exactly `il` entries, `store` is exactly
/// `dl` bytes, both borrowed from the input.
struct Header<'a> {
    index: &'a [u8],
    store: &'a [u8],
}

/// One decoded index entry.
#[derive(Clone, Copy)]
struct Entry {
    tag: u32,
    kind: u32,
    offset: u32,
}

impl<'a> Header<'a> {
    fn new(blob: &'a [u8]) -> Result<Self, HeaderError> {
        let (Some(il), Some(dl)) = (be_u32(blob, 0), be_u32(blob, 4)) else {
            return Err(HeaderError::TooShort { len: blob.len() });
        };
        if il > MAX_INDEX_ENTRIES {
            return Err(HeaderError::TooManyEntries { il });
        }
        if dl > MAX_DATA_BYTES {
            return Err(HeaderError::DataTooLarge { dl });
        }
        // Both are capped above, so this cannot overflow even on 32-bit targets:
        // 8 + 16 * 65536 + 64 MiB < 2^27.
        let index_len = il as usize * ENTRY_BYTES;
        let expected = 8 + index_len + dl as usize;
        if blob.len() != expected {
            return Err(HeaderError::SizeMismatch {
                len: blob.len(),
                il,
                dl,
                expected,
            });
        }
        let (index, store) = blob[8..].split_at(index_len);
        Ok(Self { index, store })
    }

    /// The first entry for `tag`; rpm writes each tag once, so a repeat is ignored.
    fn find(&self, tag: u32) -> Option<Entry> {
        self.index.chunks_exact(ENTRY_BYTES).find_map(|raw| {
            let entry = Entry {
                tag: be_u32(raw, 0)?,
                kind: be_u32(raw, 4)?,
                offset: be_u32(raw, 8)?,
            };
            (entry.tag == tag).then_some(entry)
        })
    }

    fn required_string(&self, tag: u32) -> Result<String, HeaderError> {
        self.optional_string(tag)?
            .ok_or(HeaderError::MissingTag { tag })
    }

    fn optional_string(&self, tag: u32) -> Result<Option<String>, HeaderError> {
        let Some(entry) = self.find(tag) else {
            return Ok(None);
        };
        if entry.kind != TYPE_STRING && entry.kind != TYPE_I18NSTRING {
            return Err(HeaderError::WrongType {
                tag,
                found: entry.kind,
                expected: "STRING (6) or I18NSTRING (9)",
            });
        }
        // For I18NSTRING the first of `count` strings is the untranslated one, so both types
        // read the string at `offset` up to its NUL.
        let bytes = self
            .store
            .get(entry.offset as usize..)
            .ok_or_else(|| self.out_of_bounds(entry))?;
        let end = bytes
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(|| self.out_of_bounds(entry))?;
        Ok(Some(String::from_utf8_lossy(&bytes[..end]).into_owned()))
    }

    fn optional_int32(&self, tag: u32) -> Result<Option<u32>, HeaderError> {
        let Some(entry) = self.find(tag) else {
            return Ok(None);
        };
        if entry.kind != TYPE_INT32 {
            return Err(HeaderError::WrongType {
                tag,
                found: entry.kind,
                expected: "INT32 (4)",
            });
        }
        be_u32(self.store, entry.offset as usize)
            .map(Some)
            .ok_or_else(|| self.out_of_bounds(entry))
    }

    fn out_of_bounds(&self, entry: Entry) -> HeaderError {
        HeaderError::OutOfBounds {
            tag: entry.tag,
            offset: entry.offset,
            // The store is at most MAX_DATA_BYTES long, checked in `new`.
            dl: u32::try_from(self.store.len()).unwrap_or(u32::MAX),
        }
    }
}

/// The big-endian u32 at `at`, or `None` when fewer than 4 bytes are left.
fn be_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let end = at.checked_add(4)?;
    let raw: [u8; 4] = bytes.get(at..end)?.try_into().ok()?;
    Some(u32::from_be_bytes(raw))
}

/// Builds header blobs for tests: `(tag, type, data)` entries laid out in order.
#[cfg(test)]
pub(crate) fn build_header(entries: &[(u32, u32, &[u8])]) -> Vec<u8> {
    let mut index = Vec::new();
    let mut store = Vec::new();
    for (tag, kind, data) in entries {
        index.extend_from_slice(&tag.to_be_bytes());
        index.extend_from_slice(&kind.to_be_bytes());
        index.extend_from_slice(&u32::try_from(store.len()).unwrap().to_be_bytes());
        index.extend_from_slice(&1u32.to_be_bytes());
        store.extend_from_slice(data);
    }
    let mut blob = Vec::new();
    blob.extend_from_slice(&u32::try_from(entries.len()).unwrap().to_be_bytes());
    blob.extend_from_slice(&u32::try_from(store.len()).unwrap().to_be_bytes());
    blob.extend_from_slice(&index);
    blob.extend_from_slice(&store);
    blob
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // In tests an unwrap that fails is the failing assertion.
mod tests {
    use super::*;

    fn openssl() -> Vec<u8> {
        build_header(&[
            (TAG_NAME, TYPE_STRING, b"openssl\0"),
            (TAG_VERSION, TYPE_STRING, b"3.0.7\0"),
            (TAG_RELEASE, TYPE_STRING, b"27.el9\0"),
            (TAG_EPOCH, TYPE_INT32, &1u32.to_be_bytes()),
            (TAG_ARCH, TYPE_STRING, b"x86_64\0"),
        ])
    }

    #[test]
    fn reads_name_epoch_version_release_arch() {
        let package = parse_header(&openssl()).unwrap();
        assert_eq!(
            package,
            RpmPackage {
                name: "openssl".into(),
                epoch: Some(1),
                version: "3.0.7".into(),
                release: "27.el9".into(),
                arch: "x86_64".into(),
            }
        );
        assert_eq!(package.evr(), "1:3.0.7-27.el9");
    }

    #[test]
    fn epoch_and_arch_are_optional_and_i18n_takes_the_first_string() {
        let blob = build_header(&[
            (TAG_NAME, TYPE_I18NSTRING, b"gpg-pubkey\0ignored\0"),
            (TAG_VERSION, TYPE_STRING, b"fd431d51\0"),
            (TAG_RELEASE, TYPE_STRING, b"4ae0493b\0"),
        ]);
        let package = parse_header(&blob).unwrap();
        assert_eq!(package.name, "gpg-pubkey");
        assert_eq!(package.epoch, None);
        assert_eq!(package.arch, "");
        assert_eq!(package.evr(), "fd431d51-4ae0493b");
    }

    #[test]
    fn frame_errors_are_named() {
        assert_eq!(
            parse_header(&[0, 0, 0]),
            Err(HeaderError::TooShort { len: 3 })
        );
        assert_eq!(
            parse_header(&[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]),
            Err(HeaderError::TooManyEntries { il: u32::MAX })
        );
        assert_eq!(
            parse_header(&[0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff]),
            Err(HeaderError::DataTooLarge { dl: u32::MAX })
        );
        // At the limits, with only 8 bytes present: rejected by size, nothing allocated.
        let mut huge = MAX_INDEX_ENTRIES.to_be_bytes().to_vec();
        huge.extend_from_slice(&MAX_DATA_BYTES.to_be_bytes());
        assert!(matches!(
            parse_header(&huge),
            Err(HeaderError::SizeMismatch { len: 8, .. })
        ));
        let mut trailing = openssl();
        trailing.push(0);
        assert!(matches!(
            parse_header(&trailing),
            Err(HeaderError::SizeMismatch { .. })
        ));
        assert_eq!(
            parse_header(&build_header(&[])),
            Err(HeaderError::MissingTag { tag: TAG_NAME })
        );
    }

    #[test]
    fn entry_errors_are_named() {
        let wrong_type = build_header(&[(TAG_NAME, TYPE_INT32, b"abcd")]);
        assert!(matches!(
            parse_header(&wrong_type),
            Err(HeaderError::WrongType {
                tag: TAG_NAME,
                found: TYPE_INT32,
                ..
            })
        ));
        let unterminated = build_header(&[(TAG_NAME, TYPE_STRING, b"openssl")]);
        assert!(matches!(
            parse_header(&unterminated),
            Err(HeaderError::OutOfBounds { tag: TAG_NAME, .. })
        ));
        // An epoch with fewer than 4 bytes left in the store.
        let short_epoch = build_header(&[
            (TAG_NAME, TYPE_STRING, b"a\0"),
            (TAG_VERSION, TYPE_STRING, b"1\0"),
            (TAG_RELEASE, TYPE_STRING, b"1\0"),
            (TAG_EPOCH, TYPE_INT32, b"\0\0"),
        ]);
        assert!(matches!(
            parse_header(&short_epoch),
            Err(HeaderError::OutOfBounds { tag: TAG_EPOCH, .. })
        ));
        // An offset far past the store.
        let mut far = openssl();
        far[8 + 8..8 + 12].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(
            parse_header(&far),
            Err(HeaderError::OutOfBounds {
                offset: u32::MAX,
                ..
            })
        ));
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let blob = openssl();
        for len in 0..blob.len() {
            assert!(parse_header(&blob[..len]).is_err(), "cut at {len}");
        }
    }

    /// The headers rpm 4.18 itself wrote into the committed fixture database.
    fn real_headers() -> Vec<Vec<u8>> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/services/rhel9-rpm/var/lib/rpm/rpmdb.sqlite");
        // Immutable, as the agent opens it: a plain read-only open of a WAL database would
        // leave -wal and -shm files in the fixture tree.
        let connection = rusqlite::Connection::open_with_flags(
            super::super::rpmdb::immutable_uri(&path),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_URI,
        )
        .unwrap();
        let mut statement = connection
            .prepare("SELECT blob FROM Packages ORDER BY hnum")
            .unwrap();
        statement
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn real_headers_parse_and_their_truncations_do_not() {
        let headers = real_headers();
        assert_eq!(headers.len(), 2);
        assert_eq!(parse_header(&headers[0]).unwrap().evr(), "1.2.3-4.el9");
        assert_eq!(parse_header(&headers[1]).unwrap().evr(), "2:0.9-1.el9");
        for header in &headers {
            for len in 0..header.len() {
                assert!(parse_header(&header[..len]).is_err(), "cut at {len}");
            }
        }
    }

    /// xorshift64: enough randomness to fuzz the frame without a crate.
    fn xorshift(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    #[test]
    fn pseudo_random_bytes_never_panic() {
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut valid = real_headers();
        valid.push(openssl());
        for round in 0..4000 {
            let len = usize::try_from(xorshift(&mut state) % 256).unwrap();
            let mut bytes: Vec<u8> = (0..len)
                .map(|_| xorshift(&mut state).to_le_bytes()[0])
                .collect();
            // Half the rounds keep a plausible frame so the entry checks are reached too.
            if round % 2 == 0 {
                bytes = valid[round % valid.len()].clone();
                for _ in 0..=xorshift(&mut state) % 4 {
                    let at =
                        usize::try_from(xorshift(&mut state) % u64::try_from(bytes.len()).unwrap())
                            .unwrap();
                    bytes[at] = xorshift(&mut state).to_le_bytes()[0];
                }
            }
            // Only the outcome's absence of panics matters; a mutated header may still parse.
            let _ = parse_header(&bytes);
        }
    }
}
