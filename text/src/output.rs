//! Escaping for where text goes. Stored text has passed [`crate::store::sanitise`] already, but
//! outputs do not rely on that: the register, older rows and every later source pass through
//! here too, so each output is safe on its own.
//!
//! - [`terminal`]: a table cell or a line on a terminal. Every control character (tab and
//!   newline included: they would break the table's rows and columns) and every invisible
//!   format character is shown as an escape.
//! - [`csv_cell`]: a cell of a CSV export opened in a spreadsheet. Escaped as for the
//!   terminal, then neutralised the way OWASP's "CSV Injection" page describes: a cell that
//!   begins with `=`, `+`, `-`, `@`, tab or carriage return gets a leading apostrophe, so
//!   Excel and LibreOffice show it as text instead of evaluating a formula.
//! - [`html`]: text inside an HTML element or a quoted attribute. Escaped as for the terminal,
//!   then `& < > " '` as character references.

use std::borrow::Cow;

use crate::store::{escape_with, is_escaped_at_ingest};

/// True for characters a terminal must not receive raw: everything the storage gate escapes,
/// tab, and the invisible format characters that hide or reorder text (soft hyphen, zero-width
/// space/joiners, LRM/RLM/ALM, line and paragraph separators, word joiner and invisible
/// operators, BOM, interlinear annotation, tag characters).
pub fn is_escaped_for_terminal(c: char) -> bool {
    is_escaped_at_ingest(c)
        || matches!(
            c,
            '\t' | '\u{ad}'
                | '\u{61c}'
                | '\u{180e}'
                | '\u{200b}'..='\u{200f}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{2060}'..='\u{2065}'
                | '\u{206a}'..='\u{206f}'
                | '\u{feff}'
                | '\u{fff9}'..='\u{fffb}'
                | '\u{e0000}'..='\u{e007f}'
        )
}

/// `text` with every character of [`is_escaped_for_terminal`] escaped (`\x1b`, `\t`,
/// `\u{202e}`); borrowed when there is none.
pub fn terminal(text: &str) -> Cow<'_, str> {
    escape_with(text, is_escaped_for_terminal).0
}

/// The characters that make a spreadsheet read a cell as a formula (OWASP, CSV Injection).
const FORMULA_START: &[char] = &['=', '+', '-', '@', '\t', '\r'];

/// A CSV cell's content (quoting is the CSV writer's job): escaped for the terminal, with a
/// leading `'` when it would begin with a formula character.
pub fn csv_cell(text: &str) -> Cow<'_, str> {
    // Checked on the raw text too: a tab or CR is escaped away, but a cell that began with one
    // is marked all the same, so the neutralisation never depends on the escaping.
    let escaped = terminal(text);
    if escaped.starts_with(FORMULA_START) || text.starts_with(FORMULA_START) {
        Cow::Owned(format!("'{escaped}"))
    } else {
        escaped
    }
}

/// `text` for an HTML element or a quoted attribute value.
pub fn html(text: &str) -> String {
    let escaped = terminal(text);
    let mut out = String::with_capacity(escaped.len());
    for c in escaped.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_escapes_tabs_newlines_and_invisible_characters() {
        assert_eq!(
            terminal("a\tb\nc\u{200b}d\u{202e}e\x1b[31m"),
            "a\\tb\\nc\\u{200b}d\\u{202e}e\\x1b[31m"
        );
        assert!(matches!(terminal("Östra sjukhus"), Cow::Borrowed(_)));
    }

    #[test]
    fn csv_cells_starting_a_formula_get_an_apostrophe() {
        assert_eq!(
            csv_cell("=HYPERLINK(\"http://x\",\"y\")"),
            "'=HYPERLINK(\"http://x\",\"y\")"
        );
        for start in ["+1", "-1", "@SUM(A1)", "\tx", "\rx"] {
            assert!(csv_cell(start).starts_with('\''), "{start:?}");
        }
        assert_eq!(csv_cell("\t=1"), "'\\t=1");
        assert_eq!(csv_cell("a=1"), "a=1");
        assert_eq!(csv_cell(""), "");
    }

    #[test]
    fn html_escapes_markup_and_controls() {
        assert_eq!(
            html("<script>alert('x')</script>&\"\x1b"),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;\\x1b"
        );
    }
}
