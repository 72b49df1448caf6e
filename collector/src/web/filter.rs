//! The filters of the list pages, parsed in one place from the GET query string into typed
//! values: My systems ([`SystemFilter`]), the findings across a person's systems
//! ([`FindingFilter`]) and the audit log ([`AuditFilter`]). A page and its CSV parse the same
//! string with the same function and hand the same store query over, so the CSV has exactly
//! the page's rows. An unknown, repeated or malformed parameter is a [`FilterError`] naming it
//! (answered 400); an empty value is no filter. Nothing here decides what a person may see:
//! the store's scoped queries do.

use std::collections::BTreeMap;

use chrono::TimeZone as _;

use crate::rules::Severity;
use crate::store::{AuditQuery, FindingQuery, FindingStatus, SystemQuery};

/// Longest free-text value accepted (characters): a name or e-mail, not a document.
const MAX_TEXT: usize = 200;

/// Parameters the session guard reads itself, allowed on every page.
const ALWAYS_ALLOWED: &[&str] = &["lang"];

/// A parameter that cannot be used: which one, and the catalogue key of why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilterError {
    /// The parameter's name as sent (clipped; shown escaped).
    pub param: String,
    /// Catalogue key of the reason (`filter.reason.*`).
    pub reason: &'static str,
}

impl FilterError {
    fn new(param: &str, reason: &'static str) -> Self {
        Self {
            param: param.chars().take(40).collect(),
            reason,
        }
    }
}

/// The non-empty values of a query string by parameter, each known and given once.
fn params(query: Option<&str>, known: &[&str]) -> Result<BTreeMap<String, String>, FilterError> {
    let mut out = BTreeMap::new();
    for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        if ALWAYS_ALLOWED.contains(&key.as_ref()) {
            continue;
        }
        if !known.contains(&key.as_ref()) {
            return Err(FilterError::new(&key, "filter.reason.unknown"));
        }
        if out.contains_key(key.as_ref()) {
            return Err(FilterError::new(&key, "filter.reason.repeated"));
        }
        let value = value.trim();
        if value.chars().count() > MAX_TEXT {
            return Err(FilterError::new(&key, "filter.reason.too_long"));
        }
        if value.chars().any(char::is_control) {
            return Err(FilterError::new(&key, "filter.reason.control"));
        }
        // An empty value is a form field left blank: no filter, but still counted as given
        // so a repeat is refused.
        out.insert(key.into_owned(), value.to_string());
    }
    out.retain(|_, v| !v.is_empty());
    Ok(out)
}

/// The canonical query string of `pairs` (empty ones left out): `?a=1&b=2`, or nothing.
fn query_string(pairs: &[(&str, Option<String>)]) -> String {
    let mut serializer = form_urlencoded::Serializer::new(String::new());
    for (key, value) in pairs {
        if let Some(value) = value {
            serializer.append_pair(key, value);
        }
    }
    let text = serializer.finish();
    if text.is_empty() {
        text
    } else {
        format!("?{text}")
    }
}

/// A K, R or T level: `2` or `K2` (as the register writes them), 0-3.
fn level(params: &BTreeMap<String, String>, name: &str) -> Result<Option<u8>, FilterError> {
    let Some(text) = params.get(name) else {
        return Ok(None);
    };
    let digits = text
        .strip_prefix(|c: char| c.eq_ignore_ascii_case(&name.chars().next().unwrap_or('k')))
        .unwrap_or(text);
    match digits.parse::<u8>() {
        Ok(n) if n <= 3 => Ok(Some(n)),
        _ => Err(FilterError::new(name, "filter.reason.level")),
    }
}

fn severity(params: &BTreeMap<String, String>) -> Result<Option<Severity>, FilterError> {
    params
        .get("severity")
        .map(|s| {
            Severity::parse(s).ok_or_else(|| FilterError::new("severity", "filter.reason.severity"))
        })
        .transpose()
}

/// The severity names at least as grave as `minimum`.
fn at_least(minimum: Severity) -> Vec<String> {
    [
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ]
    .into_iter()
    .filter(|s| *s >= minimum)
    .map(|s| s.as_str().to_string())
    .collect()
}

/// My systems: `k`, `r`, `t` (level 0-3), `severity` (open findings at least this grave),
/// `overdue` (`yes`/`no`), `owner` (e-mail; coordinators and auditors only, checked by the
/// page), `q` (text in the name).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SystemFilter {
    /// Confidentiality level.
    pub k: Option<u8>,
    /// Integrity level.
    pub r: Option<u8>,
    /// Availability level.
    pub t: Option<u8>,
    /// Least severity of an open finding the system must have.
    pub severity: Option<Severity>,
    /// Review overdue or not.
    pub overdue: Option<bool>,
    /// Lowercase e-mail of the system owner or information owner.
    pub owner: Option<String>,
    /// Text in the system's name.
    pub q: Option<String>,
}

impl SystemFilter {
    /// The parameters it reads.
    pub const PARAMS: &[&str] = &["k", "r", "t", "severity", "overdue", "owner", "q"];

    /// Parses a query string.
    pub fn parse(query: Option<&str>) -> Result<Self, FilterError> {
        let p = params(query, Self::PARAMS)?;
        let overdue = match p.get("overdue").map(String::as_str) {
            None => None,
            Some("yes" | "ja") => Some(true),
            Some("no" | "nej") => Some(false),
            Some(_) => return Err(FilterError::new("overdue", "filter.reason.yes_no")),
        };
        let owner = p.get("owner").map(|o| o.to_lowercase());
        if owner.as_ref().is_some_and(|o| !o.contains('@')) {
            return Err(FilterError::new("owner", "filter.reason.email"));
        }
        Ok(Self {
            k: level(&p, "k")?,
            r: level(&p, "r")?,
            t: level(&p, "t")?,
            severity: severity(&p)?,
            overdue,
            owner,
            q: p.get("q").cloned(),
        })
    }

    /// Whether any filter is set.
    pub fn is_set(&self) -> bool {
        *self != Self::default()
    }

    /// The canonical query string (`?k=3&severity=high`), for the CSV link and the form.
    pub fn query_string(&self) -> String {
        query_string(&[
            ("k", self.k.map(|n| n.to_string())),
            ("r", self.r.map(|n| n.to_string())),
            ("t", self.t.map(|n| n.to_string())),
            ("severity", self.severity.map(|s| s.as_str().to_string())),
            (
                "overdue",
                self.overdue
                    .map(|o| if o { "yes" } else { "no" }.to_string()),
            ),
            ("owner", self.owner.clone()),
            ("q", self.q.clone()),
        ])
    }

    /// The store query; `today` in the configured zone, `review_after_days` from the rules.
    pub fn store_query(&self, today: time::Date, review_after_days: i64) -> SystemQuery {
        let cutoff = today - time::Duration::days(review_after_days);
        SystemQuery {
            k: self.k,
            r: self.r,
            t: self.t,
            open_severities: self.severity.map(at_least),
            review_overdue: self.overdue.map(|o| (o, cutoff)),
            owner: self.owner.clone(),
            name_contains: self.q.clone(),
        }
    }
}

/// The state a findings filter asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// `open`.
    Open,
    /// `accepted`.
    Accepted,
    /// `attested`: resolved by a valid attestation.
    Attested,
}

impl Status {
    /// The parameter value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Accepted => "accepted",
            Self::Attested => "attested",
        }
    }
}

/// The findings across a person's systems: `severity` (at least), `rule` (a rule id of the
/// table), `status` (`open`, `accepted`, `attested`), `system` (a system id).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FindingFilter {
    /// Least severity.
    pub severity: Option<Severity>,
    /// Rule id, one of the rule table's.
    pub rule: Option<&'static str>,
    /// State.
    pub status: Option<Status>,
    /// System id.
    pub system: Option<String>,
}

impl FindingFilter {
    /// The parameters it reads.
    pub const PARAMS: &[&str] = &["severity", "rule", "status", "system"];

    /// Parses a query string.
    pub fn parse(query: Option<&str>) -> Result<Self, FilterError> {
        let p = params(query, Self::PARAMS)?;
        let rule = p
            .get("rule")
            .map(|r| {
                crate::rules::rule(r)
                    .map(|rule| rule.id)
                    .ok_or_else(|| FilterError::new("rule", "filter.reason.rule"))
            })
            .transpose()?;
        let status = match p.get("status").map(String::as_str) {
            None => None,
            Some("open") => Some(Status::Open),
            Some("accepted") => Some(Status::Accepted),
            Some("attested") => Some(Status::Attested),
            Some(_) => return Err(FilterError::new("status", "filter.reason.status")),
        };
        Ok(Self {
            severity: severity(&p)?,
            rule,
            status,
            system: p.get("system").cloned(),
        })
    }

    /// Whether any filter is set.
    pub fn is_set(&self) -> bool {
        *self != Self::default()
    }

    /// The canonical query string.
    pub fn query_string(&self) -> String {
        query_string(&[
            ("severity", self.severity.map(|s| s.as_str().to_string())),
            ("rule", self.rule.map(str::to_string)),
            ("status", self.status.map(|s| s.as_str().to_string())),
            ("system", self.system.clone()),
        ])
    }

    /// The store query; `today` decides which attestations are valid.
    pub fn store_query(&self, today: time::Date) -> FindingQuery {
        FindingQuery {
            severities: self.severity.map(at_least),
            rule: self.rule.map(str::to_string),
            status: self.status.map(|s| match s {
                Status::Open => FindingStatus::Open,
                Status::Accepted => FindingStatus::Accepted,
                Status::Attested => FindingStatus::Attested(today),
            }),
            system_id: self.system.clone(),
        }
    }
}

/// The audit log: `actor` (text in it), `action` (exactly), `from` and `to` (days
/// `YYYY-MM-DD` in the configured zone, both included), `target` (text in the subject).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Text in the actor.
    pub actor: Option<String>,
    /// The action.
    pub action: Option<String>,
    /// First day.
    pub from: Option<time::Date>,
    /// Last day.
    pub to: Option<time::Date>,
    /// Text in the subject.
    pub target: Option<String>,
}

impl AuditFilter {
    /// The parameters it reads.
    pub const PARAMS: &[&str] = &["actor", "action", "from", "to", "target"];

    /// Parses a query string.
    pub fn parse(query: Option<&str>) -> Result<Self, FilterError> {
        let p = params(query, Self::PARAMS)?;
        let day = |name: &str| {
            p.get(name)
                .map(|text| {
                    crate::catalog::parse_date(text)
                        .map_err(|_| FilterError::new(name, "filter.reason.date"))
                })
                .transpose()
        };
        let (from, to) = (day("from")?, day("to")?);
        if from.zip(to).is_some_and(|(from, to)| to < from) {
            return Err(FilterError::new("to", "filter.reason.order"));
        }
        Ok(Self {
            actor: p.get("actor").cloned(),
            action: p.get("action").cloned(),
            from,
            to,
            target: p.get("target").cloned(),
        })
    }

    /// Whether any filter is set.
    pub fn is_set(&self) -> bool {
        *self != Self::default()
    }

    /// The canonical query string.
    pub fn query_string(&self) -> String {
        query_string(&[
            ("actor", self.actor.clone()),
            ("action", self.action.clone()),
            ("from", self.from.map(|d| d.to_string())),
            ("to", self.to.map(|d| d.to_string())),
            ("target", self.target.clone()),
        ])
    }

    /// The store query: the days become the instants they start and end in `zone`.
    pub fn store_query(&self, zone: chrono_tz::Tz) -> AuditQuery {
        AuditQuery {
            actor: self.actor.clone(),
            action: self.action.clone(),
            from_ms: self.from.map(|d| day_start(d, zone)),
            until_ms: self
                .to
                .and_then(time::Date::next_day)
                .map(|d| day_start(d, zone)),
            target: self.target.clone(),
        }
    }
}

/// The first instant (ms) of `day` in `zone` (the earlier one where a clock change repeats
/// midnight; the first existing minute where it skips it).
fn day_start(day: time::Date, zone: chrono_tz::Tz) -> i64 {
    let naive = chrono::NaiveDate::from_ymd_opt(
        day.year(),
        u32::from(u8::from(day.month())),
        u32::from(day.day()),
    )
    .unwrap_or_default();
    (0..=180)
        .find_map(|minutes| {
            let time = naive.and_hms_opt(0, 0, 0)? + chrono::Duration::minutes(minutes);
            zone.from_local_datetime(&time).earliest()
        })
        .map_or(0, |t| t.timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_values_are_no_filter_and_unknown_or_repeated_ones_are_named() {
        assert_eq!(
            SystemFilter::parse(Some("k=&q=&lang=en")).unwrap(),
            SystemFilter::default()
        );
        assert_eq!(SystemFilter::parse(None).unwrap(), SystemFilter::default());
        let f = SystemFilter::parse(Some("k=K3&severity=high&overdue=yes&q=Journal")).unwrap();
        assert_eq!(
            (f.k, f.severity, f.overdue, f.q.as_deref()),
            (Some(3), Some(Severity::High), Some(true), Some("Journal"))
        );
        assert_eq!(f.query_string(), "?k=3&severity=high&overdue=yes&q=Journal");
        assert_eq!(SystemFilter::parse(Some("kk=1")).unwrap_err().param, "kk");
        assert_eq!(
            SystemFilter::parse(Some("k=1&k=2")).unwrap_err(),
            FilterError::new("k", "filter.reason.repeated")
        );
        for bad in [
            "k=4",
            "k=x",
            "r=K1",
            "severity=huge",
            "overdue=maybe",
            "owner=nobody",
        ] {
            let name = bad.split('=').next().unwrap();
            assert_eq!(
                SystemFilter::parse(Some(bad)).unwrap_err().param,
                name,
                "{bad}"
            );
        }
        assert_eq!(
            SystemFilter::parse(Some(&format!("q={}", "x".repeat(201))))
                .unwrap_err()
                .reason,
            "filter.reason.too_long"
        );
        // Malformed percent-encoding is read as text, never a panic.
        assert!(SystemFilter::parse(Some("q=%ZZ%")).is_ok());
    }

    #[test]
    fn findings_and_audit_filters_check_their_values() {
        let f = FindingFilter::parse(Some("rule=k3-auth&status=attested&severity=medium")).unwrap();
        assert_eq!(f.rule, Some("k3-auth"));
        assert_eq!(f.store_query(time::Date::MIN).severities.unwrap().len(), 3);
        assert_eq!(
            FindingFilter::parse(Some("rule=nope")).unwrap_err().param,
            "rule"
        );
        assert_eq!(
            FindingFilter::parse(Some("status=resolvedx"))
                .unwrap_err()
                .param,
            "status"
        );
        let a = AuditFilter::parse(Some("from=2026-03-01&to=2026-03-01")).unwrap();
        let q = a.store_query(chrono_tz::Europe::Stockholm);
        // 2026-03-01 00:00 CET is 2026-02-28T23:00Z; the day is 24 hours.
        assert_eq!(q.from_ms, Some(1_772_319_600_000));
        assert_eq!(q.until_ms, Some(1_772_319_600_000 + 86_400_000));
        assert_eq!(
            AuditFilter::parse(Some("from=01/03/2026"))
                .unwrap_err()
                .param,
            "from"
        );
        assert_eq!(
            AuditFilter::parse(Some("from=2026-03-02&to=2026-03-01")).unwrap_err(),
            FilterError::new("to", "filter.reason.order")
        );
    }
}
