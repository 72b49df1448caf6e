//! The ingest gate for free text (sysDescr, banners, certificate subjects, product names, file
//! paths): the content is kept, but every character that can steer a terminal, a spreadsheet
//! or the reading direction is replaced by a visible escape before it is stored.
//!
//! Escapes: `\n` and `\r` for newline and carriage return, `\xNN` (two lowercase hex digits)
//! for the other ASCII controls and DEL, `\u{N}` (lowercase hex, no leading zeros) for C1
//! controls and the bidirectional overrides and isolates. Tab is kept. A literal backslash is
//! kept as it is, so an escape in stored text is not proof that the original held a control
//! character; the count in [`Sanitised::escaped`] is.
//!
//! Growth is bounded: the longest escape (`\x1b`, 4 bytes) replaces a 1-byte character, a C1
//! control (2 bytes) becomes at most 6 bytes and a bidi control (3 bytes) 8, so the output is
//! never more than 4 times the input's length in bytes.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Text after the gate, with what the gate did to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sanitised<'a> {
    /// The text to store: the input when nothing needed escaping.
    pub text: Cow<'a, str>,
    /// Characters replaced by an escape (0: `text` is the input unchanged).
    pub escaped: usize,
    /// Length of the input in bytes (UTF-8), so nothing is lost silently: the stored text is
    /// longer by the escapes, and this is what was received.
    pub original_bytes: usize,
}

impl Sanitised<'_> {
    /// True when the input was stored unchanged.
    pub fn is_unchanged(&self) -> bool {
        self.escaped == 0
    }
}

/// True for the characters the storage gate escapes: C0 controls except tab, DEL, C1 controls,
/// and the bidirectional embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069).
pub fn is_escaped_at_ingest(c: char) -> bool {
    matches!(c, '\u{0}'..='\u{8}' | '\u{a}'..='\u{1f}' | '\u{7f}'..='\u{9f}') || is_bidi_control(c)
}

/// The bidirectional embedding, override and isolate controls (Unicode UAX #9), which reorder
/// how the text around them is displayed (the "Trojan Source" characters).
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Writes the visible escape of `c` (see the module header for the forms).
pub(crate) fn push_escape(out: &mut String, c: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c if c.is_ascii() => {
            let _ = write!(out, "\\x{:02x}", u32::from(c));
        }
        c => {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        }
    }
}

/// Escapes every character for which `escape` is true; borrows when there is none.
pub(crate) fn escape_with(input: &str, escape: impl Fn(char) -> bool) -> (Cow<'_, str>, usize) {
    let Some(first) = input.find(&escape) else {
        return (Cow::Borrowed(input), 0);
    };
    let mut out = String::with_capacity(input.len() + 8);
    out.push_str(&input[..first]);
    let mut escaped = 0;
    for c in input[first..].chars() {
        if escape(c) {
            push_escape(&mut out, c);
            escaped += 1;
        } else {
            out.push(c);
        }
    }
    (Cow::Owned(out), escaped)
}

/// Passes `input` through the storage gate.
pub fn sanitise(input: &str) -> Sanitised<'_> {
    let (text, escaped) = escape_with(input, is_escaped_at_ingest);
    Sanitised {
        text,
        escaped,
        original_bytes: input.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_issues_hostile_host_name_is_escaped_visibly() {
        let s = sanitise("evil\x1b]0;pwned\x07\x1b[31m");
        assert_eq!(s.text, "evil\\x1b]0;pwned\\x07\\x1b[31m");
        assert_eq!(s.escaped, 3);
        assert_eq!(s.original_bytes, 19);
    }

    #[test]
    fn bidi_and_c1_controls_use_the_unicode_form() {
        let s = sanitise("CN=cam\u{202e}gpj.exe\u{2066}x\u{85}");
        assert_eq!(s.text, "CN=cam\\u{202e}gpj.exe\\u{2066}x\\u{85}");
        assert_eq!(s.escaped, 3);
    }

    #[test]
    fn tab_and_printable_unicode_are_kept_and_borrowed() {
        let s = sanitise("Ward 4\tSjukhus Östra — 温度");
        assert!(matches!(s.text, Cow::Borrowed(_)));
        assert!(s.is_unchanged());
    }

    #[test]
    fn newlines_and_del_are_escaped() {
        assert_eq!(sanitise("a\r\nb\x7f").text, "a\\r\\nb\\x7f");
    }

    #[test]
    fn growth_is_at_most_four_times() {
        for c in ['\0', '\x1b', '\u{85}', '\u{9f}', '\u{202e}', '\u{2069}'] {
            let input: String = std::iter::repeat_n(c, 10).collect();
            let out = sanitise(&input);
            assert!(out.text.len() <= 4 * input.len(), "{c:?}: {}", out.text);
        }
    }
}
