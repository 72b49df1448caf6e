//! Records of the owners' web interface (issue 13): people with local accounts, their sessions,
//! the scope of what a person may see, and four-eyes risk-acceptance requests. The methods that
//! read and write them are grouped at the end of [`super::Store`]; scoping is applied inside
//! the store's queries so a page can never show what its query did not return.

use serde::Serialize;

/// Which systems a person may see, decided from their role and e-mail (DESIGN.md §6).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Every system (coordinator, auditor).
    All,
    /// Systems where this lowercase e-mail is system owner or information owner.
    Owner(String),
    /// Systems where this lowercase e-mail is system administrator.
    Administrator(String),
    /// No system at all (management reads aggregates only).
    Nothing,
}

/// A local account to create; it can sign in only after enrolment.
#[derive(Clone, Debug)]
pub struct NewUser {
    /// Random id (UUID v7).
    pub user_id: String,
    /// Lowercase e-mail, unique.
    pub email: String,
    /// Full name shown in pages and the audit log.
    pub name: String,
    /// `coordinator`, `owner`, `administrator`, `auditor` or `management`.
    pub role: String,
    /// SHA-256 hex of the one-time enrolment token.
    pub enrol_token_hash: String,
    /// When the enrolment link stops working (ms).
    pub enrol_expires_at: i64,
}

/// A local account as stored.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct UserRecord {
    /// Random id.
    pub user_id: String,
    /// Lowercase e-mail.
    pub email: String,
    /// Full name.
    pub name: String,
    /// Role name.
    pub role: String,
    /// argon2 PHC string; None until enrolled.
    #[serde(skip)]
    pub password_hash: Option<String>,
    /// RFC 6238 key (hex); None until enrolled.
    #[serde(skip)]
    pub totp_secret: Option<String>,
    /// Last accepted TOTP step (Unix time / 30).
    #[serde(skip)]
    pub totp_last_step: i64,
    /// Consecutive failed sign-ins.
    pub failed_attempts: i64,
    /// Sign-in refused until (ms); 0 when not locked.
    pub locked_until: i64,
    /// Created (ms).
    pub created_at: i64,
    /// Who created it.
    pub created_by: String,
    /// Enrolment completed (ms).
    pub enrolled_at: Option<i64>,
    /// Disabled (ms).
    pub disabled_at: Option<i64>,
    /// For a person signed in through OIDC: issuer + `#` + the provider's `sub`; such an
    /// account has no password and cannot sign in locally. None for local accounts.
    pub oidc_subject: Option<String>,
}

/// A person the OpenID provider vouched for, as the ID token (signature, issuer, audience,
/// expiry, nonce checked) and the role mapping describe them.
#[derive(Clone, Debug)]
pub struct OidcIdentity {
    /// Id for the account if it must be created (UUID v7).
    pub new_user_id: String,
    /// Issuer + `#` + `sub`: what finds the account again.
    pub subject: String,
    /// Lowercase e-mail from the `email` claim.
    pub email: String,
    /// From the `name` claim, else the e-mail.
    pub name: String,
    /// Role from the groups claim and `[web.oidc.roles]`.
    pub role: String,
}

/// How an OIDC sign-in ended in the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OidcSignIn {
    /// Account created or updated, session stored, audited; the account's id.
    Started(String),
    /// The account was disabled by a coordinator.
    Disabled,
    /// The e-mail belongs to another account (a local one, or another subject).
    EmailTaken,
}

/// What enrolment sets on an account.
#[derive(Clone, Debug)]
pub struct Enrolment {
    /// argon2 PHC string.
    pub password_hash: String,
    /// RFC 6238 key (hex).
    pub totp_secret: String,
    /// The TOTP step of the code that confirmed it (never accepted again).
    pub totp_step: i64,
}

/// A signed-in session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRecord {
    /// SHA-256 hex of the cookie value.
    pub session_hash: String,
    /// Its person.
    pub user_id: String,
    /// The token every state-changing form of this session must carry.
    pub csrf_token: String,
    /// Sign-in time (ms): the absolute timeout runs from here.
    pub created_at: i64,
    /// Last request (ms): the idle timeout runs from here.
    pub last_seen_at: i64,
}

/// A risk acceptance asked for, waiting for (or given) a coordinator's decision.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct AcceptanceRequest {
    /// Random id.
    pub request_id: String,
    /// The finding whose risk is to be accepted.
    pub finding_id: String,
    /// E-mail of the person who asked.
    pub requested_by: String,
    /// Justification.
    pub reason: String,
    /// Last moment the acceptance would hold (ms).
    pub until: i64,
    /// `pending`, `approved` or `rejected`.
    pub state: String,
    /// Asked at (ms).
    pub created_at: i64,
    /// E-mail of the coordinator who decided; never the requester.
    pub decided_by: Option<String>,
    /// Decided at (ms).
    pub decided_at: Option<i64>,
    /// The coordinator's note.
    pub decision_note: Option<String>,
}

/// Narrows a person's systems (My systems, the coordinator's list). Every `None` is no
/// filter; all of them together are ANDed with the person's [`Scope`] in the query, so a
/// filter can only narrow what the scope allows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SystemQuery {
    /// Confidentiality level K (0-3) of the classification.
    pub k: Option<u8>,
    /// Integrity level R (0-3).
    pub r: Option<u8>,
    /// Availability level T (0-3).
    pub t: Option<u8>,
    /// Only systems with at least one open finding of one of these severity names.
    pub open_severities: Option<Vec<String>>,
    /// Whether the yearly review is overdue: `(overdue, cutoff)` where a review is overdue
    /// when the classification date is on or before `cutoff` (today minus the review
    /// interval, computed by the caller in the configured zone). Unclassified systems have no
    /// review date and are never overdue.
    pub review_overdue: Option<(bool, time::Date)>,
    /// Lowercase e-mail that is system owner or information owner.
    pub owner: Option<String>,
    /// Text the system's name contains (case-insensitive for ASCII letters).
    pub name_contains: Option<String>,
}

/// Which state a finding is in, as the findings list filters it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FindingStatus {
    /// Open.
    Open,
    /// Risk accepted (by a coordinator's approval or `finding accept`).
    Accepted,
    /// Resolved while its system holds an attestation, valid on the given day, for a control
    /// the finding's rule is answered by ([`crate::rules::attestable_controls`]).
    Attested(time::Date),
}

/// Narrows the findings across a person's systems. `None` is no filter; without a status,
/// open and accepted findings (not resolved ones), as the system page lists them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FindingQuery {
    /// Severity names to keep (severity at least X is the list of X and above).
    pub severities: Option<Vec<String>>,
    /// Rule id.
    pub rule: Option<String>,
    /// State.
    pub status: Option<FindingStatus>,
    /// System id.
    pub system_id: Option<String>,
}

/// Narrows the audit log. `None` is no filter.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// Text the actor contains (case-insensitive for ASCII letters).
    pub actor: Option<String>,
    /// The action, exactly (`acceptance.approve`).
    pub action: Option<String>,
    /// From this moment (ms, inclusive).
    pub from_ms: Option<i64>,
    /// Before this moment (ms, exclusive).
    pub until_ms: Option<i64>,
    /// Text the subject (what the action was done to) contains.
    pub target: Option<String>,
}

/// A registered passkey of a local account (a second factor after the password).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PasskeyRecord {
    /// base64url (no padding) of the WebAuthn credential id; unique across all accounts.
    pub credential_id: String,
    /// Its account.
    pub user_id: String,
    /// The name the person gave it ("YubiKey", "Laptop").
    pub label: String,
    /// webauthn-rs's `Passkey` as JSON: public key, signature counter, backup state. Opaque
    /// to the store; replaced after every sign-in that changes it.
    pub passkey_json: String,
    /// Registered (ms).
    pub created_at: i64,
    /// Last sign-in with it (ms).
    pub last_used_at: Option<i64>,
}

/// What a passkey ceremony is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PasskeyPurpose {
    /// Adding a passkey, from a signed-in session.
    Register,
    /// Signing in, after the password, from a pre-session cookie.
    SignIn,
}

impl PasskeyPurpose {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Register => "register",
            Self::SignIn => "sign_in",
        }
    }
}

/// The server side of a ceremony between its start and its finish: single use, bound to the
/// session or sign-in attempt that started it, with an expiry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PasskeyChallenge {
    /// SHA-256 hex of the cookie that started it: the session (registration) or the
    /// pre-session cookie (sign-in).
    pub binding: String,
    /// Registration or sign-in.
    pub purpose: PasskeyPurpose,
    /// The account the ceremony is for (whose password was checked, or who is signed in).
    pub user_id: String,
    /// The label of the passkey being added; empty for a sign-in.
    pub label: String,
    /// webauthn-rs's `PasskeyRegistration` or `PasskeyAuthentication` as JSON.
    pub state_json: String,
    /// After this (ms) the challenge is refused.
    pub expires_at: i64,
}
