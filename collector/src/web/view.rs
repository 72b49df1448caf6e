//! How values look on a page: dates and times in the configured zone (Swedish format,
//! `2026-03-01 14:05`), and the catalogue keys of severities, finding states and roles.

use chrono::TimeZone as _;

use super::i18n::Messages;

/// `YYYY-MM-DD HH:MM` in `zone` (the Swedish way of writing it).
pub fn time(ms: i64, zone: chrono_tz::Tz) -> String {
    zone.timestamp_millis_opt(ms)
        .single()
        .map_or_else(|| "-".into(), |t| t.format("%Y-%m-%d %H:%M").to_string())
}

/// `YYYY-MM-DD` in `zone`.
pub fn date(ms: i64, zone: chrono_tz::Tz) -> String {
    zone.timestamp_millis_opt(ms)
        .single()
        .map_or_else(|| "-".into(), |t| t.format("%Y-%m-%d").to_string())
}

/// Today in `zone`, as a `time::Date` (catalog dates are `time` dates).
pub fn today(now_ms: i64, zone: chrono_tz::Tz) -> time::Date {
    let text = date(now_ms, zone);
    crate::catalog::parse_date(&text).unwrap_or(time::Date::MIN)
}

/// The label of a severity name.
pub fn severity(t: &Messages, name: &str) -> String {
    match name {
        "critical" => t.get("severity.critical"),
        "high" => t.get("severity.high"),
        "medium" => t.get("severity.medium"),
        "low" => t.get("severity.low"),
        other => other,
    }
    .to_string()
}

/// The label of a finding state.
pub fn finding_state(t: &Messages, name: &str) -> String {
    match name {
        "open" => t.get("state.open"),
        "accepted" => t.get("state.accepted"),
        "resolved" => t.get("state.resolved"),
        "pending" => t.get("state.pending"),
        "approved" => t.get("state.approved"),
        "rejected" => t.get("state.rejected"),
        other => other,
    }
    .to_string()
}

/// The label of a role name.
pub fn role(t: &Messages, name: &str) -> String {
    match name {
        "coordinator" => t.get("role.coordinator"),
        "owner" => t.get("role.owner"),
        "administrator" => t.get("role.administrator"),
        "auditor" => t.get("role.auditor"),
        "management" => t.get("role.management"),
        other => other,
    }
    .to_string()
}

/// The label of a control name.
pub fn control(t: &Messages, name: &str) -> String {
    match name {
        "mfa" => t.get("control.mfa"),
        "transit_encryption" => t.get("control.transit_encryption"),
        "rest_encryption" => t.get("control.rest_encryption"),
        "log_protection" => t.get("control.log_protection"),
        "privileged_access" => t.get("control.privileged_access"),
        other => other,
    }
    .to_string()
}

/// One option of a filter's `<select>`.
pub struct Choice {
    /// The parameter value.
    pub value: String,
    /// What the person reads.
    pub label: String,
    /// Whether it is the filter in force.
    pub selected: bool,
}

/// The options `(value, label)` of a select, the one equal to `current` selected.
pub fn choices(
    current: Option<&str>,
    options: impl IntoIterator<Item = (String, String)>,
) -> Vec<Choice> {
    options
        .into_iter()
        .map(|(value, label)| Choice {
            selected: current == Some(value.as_str()),
            value,
            label,
        })
        .collect()
}

/// The severity options, gravest first.
pub fn severity_choices(t: &Messages, current: Option<crate::rules::Severity>) -> Vec<Choice> {
    choices(
        current.map(crate::rules::Severity::as_str),
        ["critical", "high", "medium", "low"]
            .into_iter()
            .map(|s| (s.to_string(), severity(t, s))),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_shown_in_stockholm() {
        // 2026-06-01T12:00:00Z is 14:00 in summer time; 2026-01-01T12:00Z is 13:00.
        assert_eq!(
            time(1_780_315_200_000, chrono_tz::Europe::Stockholm),
            "2026-06-01 14:00"
        );
        assert_eq!(
            time(1_767_268_800_000, chrono_tz::Europe::Stockholm),
            "2026-01-01 13:00"
        );
        assert_eq!(
            date(1_767_268_800_000, chrono_tz::Europe::Stockholm),
            "2026-01-01"
        );
    }
}
