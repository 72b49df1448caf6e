//! Rendering of listings for people (aligned tables), machines (JSON) and spreadsheets (CSV),
//! and the escaping of text for HTML pages. JSON shapes are stable: fields are only added.
//!
//! Every output goes through here, and each is safe for where it goes, whatever the store
//! holds (the escaping itself lives in [`tillsyn_text::output`]):
//! - [`table`] and [`terminal`] escape every non-printable character of every cell (control
//!   characters including tab and newline, bidi controls, invisible format characters);
//! - [`csv`] escapes the same and neutralises cells that would begin with `=`, `+`, `-`, `@`,
//!   tab or CR with a leading apostrophe (OWASP, CSV Injection);
//! - [`html`] escapes the same and the HTML metacharacters;
//! - [`json`] relies on JSON's own escaping of control characters (`\u001b`).

use clap::ValueEnum;
use serde::Serialize;

/// Output format of listings.
#[derive(Clone, Copy, Debug, Default, ValueEnum, PartialEq, Eq)]
pub enum Format {
    /// Aligned columns for a terminal.
    #[default]
    Table,
    /// A JSON array.
    Json,
}

/// Output format of listings that spreadsheets also read.
#[derive(Clone, Copy, Debug, Default, ValueEnum, PartialEq, Eq)]
pub enum ExportFormat {
    /// Aligned columns for a terminal.
    #[default]
    Table,
    /// A JSON array.
    Json,
    /// CSV with a header row, formula-neutralised.
    Csv,
}

/// Text for a terminal line: every non-printable character escaped (`\x1b`, `\u{202e}`).
pub fn terminal(text: &str) -> std::borrow::Cow<'_, str> {
    tillsyn_text::output::terminal(text)
}

/// Text for an HTML element or a quoted attribute.
pub fn html(text: &str) -> String {
    tillsyn_text::output::html(text)
}

/// Why a CSV export could not be written.
#[derive(Debug, thiserror::Error)]
#[error("writing CSV: {0}")]
pub struct CsvError(#[from] csv::Error);

/// Renders rows as CSV with a header row; every cell is escaped and formula-neutralised.
pub fn csv(header: &[&str], rows: &[Vec<String>]) -> Result<String, CsvError> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    let cell = |c: &str| tillsyn_text::output::csv_cell(c).into_owned();
    writer.write_record(header.iter().map(|h| cell(h)))?;
    for row in rows {
        writer.write_record(row.iter().map(|c| cell(c)))?;
    }
    let bytes = writer
        .into_inner()
        .map_err(|e| CsvError(csv::Error::from(e.into_error())))?;
    Ok(String::from_utf8_lossy(&bytes).trim_end().to_string())
}

/// Renders rows as an aligned table with a header; every cell is escaped for the terminal.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let header: Vec<String> = header.iter().map(|h| terminal(h).into_owned()).collect();
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(|c| terminal(c).into_owned()).collect())
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        padded.join("  ").trim_end().to_string()
    };
    let mut out = vec![line(header.iter().map(String::as_str).collect())];
    out.extend(
        rows.iter()
            .map(|r| line(r.iter().map(String::as_str).collect())),
    );
    out.join("\n")
}

/// Pretty JSON; serialisation of our own records cannot fail, but say so if it does. Strings
/// keep their value, but every character a terminal must not receive raw (DEL, C1, bidi and
/// invisible format characters; JSON itself escapes C0) is written as a `\uXXXX` escape.
pub fn json(value: &impl Serialize) -> String {
    let mut out = Vec::new();
    let formatter = SafeJson(serde_json::ser::PrettyFormatter::new());
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
    match value.serialize(&mut serializer) {
        Ok(()) => String::from_utf8_lossy(&out).into_owned(),
        Err(e) => format!("{{\"error\": \"{e}\"}}"),
    }
}

/// serde_json's pretty formatter, with terminal-unsafe characters in strings `\u`-escaped.
struct SafeJson(serde_json::ser::PrettyFormatter<'static>);

impl serde_json::ser::Formatter for SafeJson {
    fn write_string_fragment<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            if tillsyn_text::output::is_escaped_for_terminal(c) {
                writer.write_all(&fragment.as_bytes()[start..i])?;
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    write!(writer, "\\u{unit:04x}")?;
                }
                start = i + c.len_utf8();
            }
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }
    fn begin_array<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.begin_array(w)
    }
    fn end_array<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.end_array(w)
    }
    fn begin_array_value<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.0.begin_array_value(w, first)
    }
    fn end_array_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.end_array_value(w)
    }
    fn begin_object<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.begin_object(w)
    }
    fn end_object<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.end_object(w)
    }
    fn begin_object_key<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.0.begin_object_key(w, first)
    }
    fn begin_object_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.begin_object_value(w)
    }
    fn end_object_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.end_object_value(w)
    }
}

/// RFC 3339 time from ms since the epoch; empty for `None`.
pub fn time(ms: Option<i64>) -> String {
    ms.and_then(|ms| {
        time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()
    })
    .and_then(|t| {
        t.format(&time::format_description::well_known::Rfc3339)
            .ok()
    })
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn table_aligns_columns() {
        let out = super::table(&["A", "BB"], &[vec!["xxx".into(), "y".into()]]);
        assert_eq!(out, "A    BB\nxxx  y");
    }

    #[test]
    fn table_cells_are_escaped_before_alignment() {
        let out = super::table(
            &["A", "B"],
            &[vec!["evil\x1b]0;x\x07".into(), "a\tb\nc".into()]],
        );
        assert_eq!(out, "A                 B\nevil\\x1b]0;x\\x07  a\\tb\\nc");
    }

    #[test]
    fn csv_cells_are_neutralised() {
        let out = super::csv(
            &["asset", "n"],
            &[vec!["=HYPERLINK(\"http://x\",\"y\")".into(), "-1".into()]],
        )
        .unwrap();
        assert_eq!(
            out,
            "asset,n\n\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\",'-1"
        );
    }

    #[test]
    fn json_escapes_what_a_terminal_must_not_see_and_keeps_the_value() {
        let value = serde_json::json!({"name": "a\u{202e}b\x1b\u{85}\u{e0041}ö\t"});
        let text = super::json(&value);
        assert!(text.is_ascii() || !text.contains('\u{202e}'), "{text}");
        assert!(
            text.contains(r"a\u202eb\u001b\u0085\udb40\udc41ö\t"),
            "{text}"
        );
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back, value);
        assert_eq!(super::json(&vec![1, 2]), "[\n  1,\n  2\n]");
    }

    #[test]
    fn time_is_rfc3339() {
        assert_eq!(super::time(Some(0)), "1970-01-01T00:00:00Z");
        assert_eq!(super::time(None), "");
    }
}
