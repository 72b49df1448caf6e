//! Host names as the collector accepts them: an RFC 1123 name (labels of ASCII letters, digits
//! and hyphens, 1–63 bytes each, not beginning or ending with a hyphen; at most 253 bytes, one
//! trailing dot allowed) or an IPv4/IPv6 address. Anything else is refused, never repaired:
//! a host name is an identifier that links and rules match on, not free text.

use std::net::IpAddr;

use crate::output::terminal;

/// Longest accepted host name in bytes (RFC 1035 section 2.3.4, without the trailing dot).
pub const MAX_BYTES: usize = 253;
/// Longest label in bytes (RFC 1035 section 2.3.4).
pub const MAX_LABEL_BYTES: usize = 63;

/// Why a host name was refused; the message shows the value escaped, so it is safe to print.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HostnameError {
    /// Nothing given.
    #[error("must not be empty")]
    Empty,
    /// Longer than [`MAX_BYTES`].
    #[error("{len} bytes is longer than the {MAX_BYTES} a host name may have")]
    TooLong {
        /// Length in bytes.
        len: usize,
    },
    /// A label breaks RFC 1123.
    #[error("\"{shown}\" is not a host name (RFC 1123) or an IP address: {problem}")]
    Invalid {
        /// The value, escaped for a terminal.
        shown: String,
        /// What is wrong with it.
        problem: &'static str,
    },
}

/// Checks `name` (see the module header).
pub fn check(name: &str) -> Result<(), HostnameError> {
    if name.is_empty() {
        return Err(HostnameError::Empty);
    }
    if name.parse::<IpAddr>().is_ok() {
        return Ok(());
    }
    let invalid = |problem| HostnameError::Invalid {
        shown: terminal(name).into_owned(),
        problem,
    };
    let body = name.strip_suffix('.').unwrap_or(name);
    if body.len() > MAX_BYTES {
        return Err(HostnameError::TooLong { len: name.len() });
    }
    for label in body.split('.') {
        if label.is_empty() {
            return Err(invalid("empty label"));
        }
        if label.len() > MAX_LABEL_BYTES {
            return Err(invalid("a label is longer than 63 bytes"));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(invalid(
                "only ASCII letters, digits, hyphens and dots are allowed",
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(invalid("a label begins or ends with a hyphen"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_addresses_pass() {
        for ok in [
            "vm",
            "ward4-db1",
            "JOURNAL-db1.kommun.example",
            "host.example.",
            "10.0.0.7",
            "::1",
            "fe80::1",
            "1host",
        ] {
            assert_eq!(check(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn hostile_names_are_refused_and_shown_escaped() {
        let err = check("evil\x1b]0;pwned\x07\x1b[31m").unwrap_err();
        let message = err.to_string();
        assert!(!message.contains('\x1b'), "{message}");
        assert!(message.contains("\"evil\\x1b]0;pwned\\x07"), "{message}");
        for bad in [
            "=HYPERLINK(\"http://x\",\"y\")",
            "-h",
            "a..b",
            "under_score",
            "space here",
            "kök",
            "cam\u{202e}",
        ] {
            assert!(
                matches!(check(bad), Err(HostnameError::Invalid { .. })),
                "{bad}"
            );
        }
        assert_eq!(check(""), Err(HostnameError::Empty));
        assert!(matches!(
            check(&"a.".repeat(200)),
            Err(HostnameError::TooLong { .. })
        ));
        assert!(check(&"a".repeat(64)).is_err());
    }
}
