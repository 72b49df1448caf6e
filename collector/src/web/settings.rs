//! `[web]` in `collector.toml`, read in two stages like the rest of the file: [`RawWebConfig`]
//! as written, then a validated [`WebSettings`] naming every bad key at once.

use std::collections::BTreeMap;
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
    /// Passkeys (WebAuthn) as a second factor of local accounts. Absent: on when
    /// `public_url` names a host (a relying party id must be a domain, never an IP address),
    /// off otherwise; `true`: start-up is refused when it cannot be on; `false`: off.
    pub passkeys: Option<bool>,
    /// `[web.oidc]`: sign-in through the municipality's OpenID provider; absent: local
    /// accounts only.
    pub oidc: Option<RawOidcConfig>,
}

/// `[web.oidc]` as written.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOidcConfig {
    /// The provider's issuer URL (https), exactly as its discovery document states it.
    pub issuer: String,
    /// The client id registered at the provider.
    pub client_id: String,
    /// File holding the client secret (one line; surrounding white space ignored).
    pub client_secret_file: String,
    /// PEM file of the CA certificates the provider's TLS certificate must chain to; default:
    /// Debian's system bundle.
    #[serde(default = "default_ca_file")]
    pub ca_file: String,
    /// Scopes asked for besides `openid`.
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    /// ID-token claim holding the person's groups (a list of strings).
    #[serde(default = "default_groups_claim")]
    pub groups_claim: String,
    /// Group name -> role (`coordinator`, `owner`, `administrator`, `auditor`, `management`).
    /// A person in none of these groups is refused.
    #[serde(default)]
    pub roles: BTreeMap<String, String>,
    /// When not empty, the ID token's `amr` must hold at least one of these values (e.g.
    /// `["mfa"]`), or sign-in is refused.
    #[serde(default)]
    pub require_amr: Vec<String>,
    /// When not empty, the ID token's `acr` must be one of these values; also sent as
    /// `acr_values` in the authorization request.
    #[serde(default)]
    pub require_acr: Vec<String>,
}

fn default_ca_file() -> String {
    "/etc/ssl/certs/ca-certificates.crt".into()
}

fn default_scopes() -> Vec<String> {
    vec!["email".into(), "profile".into()]
}

fn default_groups_claim() -> String {
    "groups".into()
}

/// Validated `[web.oidc]`.
#[derive(Clone, Debug)]
pub struct OidcSettings {
    /// Issuer URL as configured.
    pub issuer: String,
    /// Client id.
    pub client_id: String,
    /// Client secret file.
    pub client_secret_file: PathBuf,
    /// CA bundle (PEM).
    pub ca_file: PathBuf,
    /// Scopes besides `openid`.
    pub scopes: Vec<String>,
    /// Groups claim name.
    pub groups_claim: String,
    /// Group -> role; every role is a valid role name.
    pub roles: BTreeMap<String, String>,
    /// Accepted `amr` values (any one suffices); empty: not checked.
    pub require_amr: Vec<String>,
    /// Accepted `acr` values; empty: not checked.
    pub require_acr: Vec<String>,
}

impl RawOidcConfig {
    fn validate(&self, problems: &mut Vec<String>) -> Option<OidcSettings> {
        let before = problems.len();
        if !self.issuer.starts_with("https://") {
            problems.push(format!(
                "web.oidc.issuer = {:?}: must start with https://",
                self.issuer
            ));
        }
        if self.client_id.trim().is_empty() {
            problems.push("web.oidc.client_id: must not be empty".into());
        }
        if self.client_secret_file.trim().is_empty() {
            problems.push("web.oidc.client_secret_file: must name a file".into());
        }
        if self.groups_claim.trim().is_empty() {
            problems.push("web.oidc.groups_claim: must not be empty".into());
        }
        if self.roles.is_empty() {
            problems.push("web.oidc.roles: map at least one group to a role".into());
        }
        for (group, role) in &self.roles {
            if crate::web::session::Role::parse(role).is_none() {
                problems.push(format!(
                    "web.oidc.roles.{group:?} = {role:?}: not a role (coordinator, owner, administrator, auditor, management)"
                ));
            }
        }
        (problems.len() == before).then(|| OidcSettings {
            issuer: self.issuer.clone(),
            client_id: self.client_id.clone(),
            client_secret_file: PathBuf::from(&self.client_secret_file),
            ca_file: PathBuf::from(&self.ca_file),
            scopes: self.scopes.clone(),
            groups_claim: self.groups_claim.clone(),
            roles: self.roles.clone(),
            require_amr: self.require_amr.clone(),
            require_acr: self.require_acr.clone(),
        })
    }
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
            passkeys: None,
            oidc: None,
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
    /// `[web] passkeys` as written; the relying party itself is made from the final public
    /// URL at start-up ([`super::passkey::PasskeyParty::from_settings`]).
    pub passkeys: Option<bool>,
    /// OIDC sign-in, when configured.
    pub oidc: Option<OidcSettings>,
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
        let oidc = self
            .oidc
            .as_ref()
            .and_then(|raw| raw.validate(&mut problems));
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
                passkeys: self.passkeys,
                oidc,
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

    #[test]
    fn oidc_settings_name_each_bad_key() {
        let raw: RawWebConfig = toml::from_str(
            r#"
            [oidc]
            issuer = "http://idp.example"
            client_id = ""
            client_secret_file = "/s"
            roles = { "staff" = "root" }
            "#,
        )
        .unwrap();
        let problems = raw.validate().unwrap_err().join("\n");
        for key in [
            "web.oidc.issuer",
            "web.oidc.client_id",
            "web.oidc.roles.\"staff\"",
        ] {
            assert!(problems.contains(key), "{problems}");
        }
        let raw: RawWebConfig = toml::from_str(
            r#"
            [oidc]
            issuer = "https://idp.example"
            client_id = "tillsyn"
            client_secret_file = "/s"
            require_amr = ["mfa"]
            roles = { "tillsyn-samordnare" = "coordinator" }
            "#,
        )
        .unwrap();
        let oidc = raw.validate().unwrap().oidc.unwrap();
        assert_eq!(oidc.groups_claim, "groups");
        assert_eq!(oidc.require_amr, ["mfa"]);
        assert_eq!(
            oidc.ca_file,
            PathBuf::from("/etc/ssl/certs/ca-certificates.crt")
        );
    }
}
