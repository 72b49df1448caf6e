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

/// Local wall-clock time as people write it, `2026-12-01 16:29`, in the zone of `TZ` or the
/// system's `/etc/localtime`; empty for `None`. For tables and pages; machines get [`time`].
pub fn people_time(ms: Option<i64>) -> String {
    ms.and_then(chrono::DateTime::from_timestamp_millis)
        .map(|t| {
            t.with_timezone(&chrono::Local)
                .format("%Y-%m-%d %H:%M")
                .to_string()
        })
        .unwrap_or_default()
}

/// [`people_time`] of an RFC 3339 timestamp, with the zone's UTC offset so a printed page says
/// which clock it means: `2026-12-01 17:29 (UTC+01:00)`. Text that is not RFC 3339 is returned
/// as it is.
pub fn people_time_of(rfc3339: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(rfc3339).map_or_else(
        |_| rfc3339.to_string(),
        |t| {
            t.with_timezone(&chrono::Local)
                .format("%Y-%m-%d %H:%M (UTC%:z)")
                .to_string()
        },
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn table_aligns_columns() {
        let out = super::table(&["A", "BB"], &[vec!["xxx".into(), "y".into()]]);
        assert_eq!(out, "A    BB\nxxx  y");
    }

    #[test]
    fn people_time_has_no_seconds_and_no_zone_letter() {
        let shown = super::people_time(Some(1_764_606_543_443));
        assert_eq!(shown.len(), "2025-12-01 16:29".len(), "{shown}");
        assert!(!shown.contains('T') && !shown.contains('Z') && !shown.contains('.'));
        assert_eq!(super::people_time(None), "");
        let issued = super::people_time_of("2026-12-01T15:29:03.443Z");
        assert!(
            issued.contains("(UTC") && !issued.contains(".443"),
            "{issued}"
        );
        assert_eq!(super::people_time_of("yesterday"), "yesterday");
    }

    #[test]
    fn time_is_rfc3339() {
        assert_eq!(super::time(Some(0)), "1970-01-01T00:00:00Z");
        assert_eq!(super::time(None), "");
    }
}
