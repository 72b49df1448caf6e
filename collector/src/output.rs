//! Rendering of listings for people (aligned tables) and machines (JSON). JSON shapes are
//! stable: fields are only added.

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

/// Renders rows as an aligned table with a header.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
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
    let mut out = vec![line(header.to_vec())];
    out.extend(
        rows.iter()
            .map(|r| line(r.iter().map(String::as_str).collect())),
    );
    out.join("\n")
}

/// Pretty JSON; serialisation of our own records cannot fail, but say so if it does.
pub fn json(value: &impl Serialize) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
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
    fn time_is_rfc3339() {
        assert_eq!(super::time(Some(0)), "1970-01-01T00:00:00Z");
        assert_eq!(super::time(None), "");
    }
}
