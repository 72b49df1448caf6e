//! Bounds-checked reading of untrusted protocol replies.
//!
//! Every probe parser reads through [`Reader`], so a short or lying reply becomes a
//! [`ParseError`] instead of a panic, and no length field read from the wire is ever used to
//! pre-allocate memory: every slice handed out is a sub-slice of the (already size-capped) input.

use thiserror::Error;

/// Why a reply could not be understood.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum ParseError {
    /// The reply ended before a field it announced.
    #[error("reply truncated at byte {at} (needed {needed} more)")]
    Truncated {
        /// Offset where the read started.
        at: usize,
        /// Bytes missing.
        needed: usize,
    },
    /// A field held a value the protocol does not allow here.
    #[error("unexpected {field}: {value:#x}")]
    Unexpected {
        /// The protocol field.
        field: &'static str,
        /// The value seen.
        value: u64,
    },
    /// The peer answered with a protocol-level error or refusal.
    #[error("peer refused: {0}")]
    Refused(String),
    /// The reply was well-formed but carried nothing we identify by.
    #[error("reply carried no identification")]
    Empty,
}

/// A cursor over a reply; all reads are checked against the end.
#[derive(Clone, Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Starts reading `buf` at offset 0.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Current offset.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Bytes left.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Takes the next `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], ParseError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|end| *end <= self.buf.len())
            .ok_or(ParseError::Truncated {
                at: self.pos,
                needed: n.saturating_sub(self.remaining()),
            })?;
        let slice = &self.buf[self.pos..end];
        self.pos = end;
        Ok(slice)
    }

    /// Skips `n` bytes.
    pub fn skip(&mut self, n: usize) -> Result<(), ParseError> {
        self.take(n).map(|_| ())
    }

    /// Reads one byte.
    pub fn u8(&mut self) -> Result<u8, ParseError> {
        Ok(self.take(1)?[0])
    }

    /// Reads a big-endian u16.
    pub fn u16_be(&mut self) -> Result<u16, ParseError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    /// Reads a little-endian u16.
    pub fn u16_le(&mut self) -> Result<u16, ParseError> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    /// Reads a big-endian u32.
    pub fn u32_be(&mut self) -> Result<u32, ParseError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Reads a little-endian u32.
    pub fn u32_le(&mut self) -> Result<u32, ParseError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Reads a little-endian i32.
    pub fn i32_le(&mut self) -> Result<i32, ParseError> {
        let b = self.take(4)?;
        Ok(i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// The unread rest.
    pub fn rest(&mut self) -> &'a [u8] {
        let rest = &self.buf[self.pos..];
        self.pos = self.buf.len();
        rest
    }
}

/// Turns protocol text into a printable string: lossy UTF-8, NULs and padding trimmed, and
/// control and bidi characters escaped visibly (`\x1b`, `\u{202e}`) by the same text gate the
/// collector applies before storage, so a hostile device's bytes stay visible in JSON output and
/// terminals instead of acting on them or vanishing.
pub fn text(bytes: &[u8]) -> String {
    let lossy = String::from_utf8_lossy(bytes);
    let trimmed = lossy.trim_matches(|c: char| c == '\0' || c.is_whitespace());
    tillsyn_text::sanitise(trimmed).text.into_owned()
}

/// Lower-case hex of `bytes`, for dry-run listings and evidence.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod fuzz {
    //! A cheap always-on robustness check shared by the parsers' unit tests: every truncation of
    //! a valid reply and a few thousand pseudo-random byte strings must not panic.

    /// xorshift64: deterministic, dependency-free noise.
    pub struct XorShift(pub u64);

    impl XorShift {
        pub fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            x
        }
    }

    /// Feeds `parse` all truncations of `valid`, single-byte mutations of it, and random inputs.
    pub fn no_panic<T, E>(valid: &[u8], parse: impl Fn(&[u8]) -> Result<T, E>) {
        for end in 0..=valid.len() {
            let _ = parse(&valid[..end]);
        }
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        for _ in 0..3000 {
            let mut mutated = valid.to_vec();
            if !mutated.is_empty() {
                let at = usize::try_from(rng.next() % mutated.len() as u64).unwrap();
                mutated[at] = rng.next().to_le_bytes()[0];
            }
            let _ = parse(&mutated);
            let len = usize::try_from(rng.next() % 300).unwrap();
            let random: Vec<u8> = (0..len).map(|_| rng.next().to_le_bytes()[0]).collect();
            let _ = parse(&random);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_bounded() {
        let mut r = Reader::new(&[1, 2, 3]);
        assert_eq!(r.u16_be().unwrap(), 0x0102);
        assert!(matches!(
            r.u16_be(),
            Err(ParseError::Truncated { at: 2, needed: 1 })
        ));
        assert!(r.take(usize::MAX).is_err());
        assert_eq!(r.u8().unwrap(), 3);
    }

    #[test]
    fn text_escapes_controls_and_trims_padding() {
        assert_eq!(text(b"  ACME\0\0"), "ACME");
        assert_eq!(text(b"ACME\x1b[31m\x07\0"), "ACME\\x1b[31m\\x07");
        assert_eq!(text("cam\u{202e}gpj".as_bytes()), "cam\\u{202e}gpj");
        assert_eq!(hex(&[0, 0xab]), "00ab");
    }
}
