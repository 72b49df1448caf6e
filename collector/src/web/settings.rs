//! `[web]` in `collector.toml`, read in two stages like the rest of the file: [`RawWebConfig`]
//! as written, then a validated [`WebSettings`] naming every bad key at once.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// `[web]` as written. Absent keys take the defaults of [`RawWebConfig::default`].
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawWebConfig {
    /// Address of the HTTPS listener, e.g. `127.0.0.1:8443`.
    pub listen: String,
    /// The address people type, used in enrolment links, e.g. `https://tillsyn.kommun.se`.
    /// Empty: `https://` + the listen address.
    pub public_url: String,
    /// A session unused this long (minutes) ends.
    pub session_idle_minutes: i64,
    /// A session ends this long (hours) after sign-in whatever happens.
    pub session_absolute_hours: i64,
    /// Longest risk acceptance an owner may ask for (months).
    pub acceptance_max_months: u32,
    /// Consecutive failed sign-ins that lock an account.
    pub lock_after_failures: i64,
    /// How long a locked account stays locked (minutes).
    pub lock_minutes: i64,
    /// Failed sign-ins one address may make in `lock_minutes` before it is refused.
    pub address_failures: u32,
    /// How long an enrolment link works (hours).
    pub enrol_link_hours: i64,
    /// IANA time zone of times shown.
    pub timezone: String,
    /// PEM certificate chain; empty: the collector's server certificate.
    pub cert: String,
    /// PEM private key; empty: the collector's server key.
    pub key: String,
}

impl Default for RawWebConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8443".into(),
            public_url: String::new(),
            session_idle_minutes: 30,
            session_absolute_hours: 12,
            acceptance_max_months: 12,
            lock_after_failures: 5,
            lock_minutes: 15,
            address_failures: 20,
            enrol_link_hours: 72,
            timezone: "Europe/Stockholm".into(),
            cert: String::new(),
            key: String::new(),
        }
    }
}

/// Validated `[web]`.
#[derive(Clone, Debug)]
pub struct WebSettings {
    /// Listener address.
    pub listen: SocketAddr,
    /// Base URL without a trailing slash.
    pub public_url: String,
    /// Idle timeout (ms).
    pub session_idle_ms: i64,
    /// Absolute timeout (ms).
    pub session_absolute_ms: i64,
    /// Longest acceptance (months).
    pub acceptance_max_months: u32,
    /// Failures that lock an account.
    pub lock_after_failures: i64,
    /// Lock duration (ms).
    pub lock_ms: i64,
    /// Failures per address per lock window.
    pub address_failures: u32,
    /// Enrolment link lifetime (ms).
    pub enrol_link_ms: i64,
    /// Time zone of times shown.
    pub timezone: chrono_tz::Tz,
    /// Certificate and key files, if not the collector's own.
    pub cert_key: Option<(PathBuf, PathBuf)>,
}

impl RawWebConfig {
    /// Validates; `Err` lists each problem with its key (`web.…`).
    pub fn validate(&self) -> Result<WebSettings, Vec<String>> {
        let mut problems = Vec::new();
        let listen = self
            .listen
            .parse::<SocketAddr>()
            .map_err(|e| problems.push(format!("web.listen = {:?}: {e}", self.listen)));
        let mut range = |key: &str, value: i64, low: i64, high: i64| {
            if !(low..=high).contains(&value) {
                problems.push(format!(
                    "web.{key} = {value}: must be between {low} and {high}"
                ));
            }
        };
        range(
            "session_idle_minutes",
            self.session_idle_minutes,
            1,
            24 * 60,
        );
        range(
            "session_absolute_hours",
            self.session_absolute_hours,
            1,
            24 * 7,
        );
        range(
            "acceptance_max_months",
            i64::from(self.acceptance_max_months),
            1,
            36,
        );
        range("lock_after_failures", self.lock_after_failures, 1, 100);
        range("lock_minutes", self.lock_minutes, 1, 24 * 60);
        range(
            "address_failures",
            i64::from(self.address_failures),
            1,
            10_000,
        );
        range("enrol_link_hours", self.enrol_link_hours, 1, 24 * 30);
        let timezone = self.timezone.parse::<chrono_tz::Tz>().map_err(|_| {
            problems.push(format!(
                "web.timezone = {:?}: not an IANA time zone",
                self.timezone
            ));
        });
        if !self.public_url.is_empty() && !self.public_url.starts_with("https://") {
            problems.push(format!(
                "web.public_url = {:?}: must start with https://",
                self.public_url
            ));
        }
        let cert_key = match (self.cert.is_empty(), self.key.is_empty()) {
            (true, true) => None,
            (false, false) => Some((PathBuf::from(&self.cert), PathBuf::from(&self.key))),
            _ => {
                problems.push("web.cert and web.key: give both or neither".into());
                None
            }
        };
        match (listen, timezone) {
            (Ok(listen), Ok(timezone)) if problems.is_empty() => Ok(WebSettings {
                public_url: if self.public_url.is_empty() {
                    format!("https://{listen}")
                } else {
                    self.public_url.trim_end_matches('/').to_string()
                },
                listen,
                session_idle_ms: self.session_idle_minutes * 60_000,
                session_absolute_ms: self.session_absolute_hours * 3_600_000,
                acceptance_max_months: self.acceptance_max_months,
                lock_after_failures: self.lock_after_failures,
                lock_ms: self.lock_minutes * 60_000,
                address_failures: self.address_failures,
                enrol_link_ms: self.enrol_link_hours * 3_600_000,
                timezone,
                cert_key,
            }),
            _ => Err(problems),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_problems_name_their_keys() {
        let settings = RawWebConfig::default().validate().unwrap();
        assert_eq!(settings.public_url, "https://127.0.0.1:8443");
        let raw = RawWebConfig {
            listen: "nowhere".into(),
            session_idle_minutes: 0,
            timezone: "Mars/Olympus".into(),
            cert: "/x.pem".into(),
            ..RawWebConfig::default()
        };
        let problems = raw.validate().unwrap_err().join("\n");
        for key in [
            "web.listen",
            "web.session_idle_minutes",
            "web.timezone",
            "web.cert",
        ] {
            assert!(problems.contains(key), "{problems}");
        }
    }
}
