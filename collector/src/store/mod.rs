//! The collector's storage interface. Callers see only [`Store`] and the records here; SQL
//! statements live in [`sql`], one implementation on SQLite or PostgreSQL whose few dialect
//! differences are in [`dialect`].
//!
//! The store holds an aggregate of weaknesses and is itself sensitive: back-ends create their
//! files private (0600) and every change made by a person goes to the hash-chained audit log.

pub mod copy;
pub mod dialect;
pub mod pg_scratch;
pub mod sql;
pub mod web;

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use serde::Serialize;

use crate::catalog::{Attestation, Classification, System};
use crate::rules::{AgentCertificate, FindingDraft};

pub use sql::{SqlStore, SqliteStore, StoredFindings};
pub use web::{
    AcceptanceRequest, AuditQuery, Enrolment, FindingQuery, FindingStatus, NewUser, OidcIdentity,
    OidcSignIn, PasskeyChallenge, PasskeyPurpose, PasskeyRecord, Scope, SessionRecord, SystemQuery,
    UserRecord,
};

/// Errors from the store. Database detail stays in the log; clients see a stable reason.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The enrollment token is not known.
    #[error("the enrollment token is not valid")]
    TokenUnknown,
    /// The token expired before use.
    #[error("the enrollment token expired")]
    TokenExpired,
    /// The token was redeemed already.
    #[error("the enrollment token was already used (no uses left)")]
    TokenUsed,
    /// The token was revoked by an operator.
    #[error("the enrollment token was revoked")]
    TokenRevoked,
    /// No token has this name.
    #[error("no enrollment token named {0:?}")]
    TokenNameUnknown(String),
    /// Another token has this name already.
    #[error("an enrollment token named {0:?} exists already; choose another --name")]
    TokenNameTaken(String),
    /// A revoked agent asked for something only an active agent may do.
    #[error("agent {0} is revoked")]
    AgentRevoked(String),
    /// The certificate presented is no longer the agent's current one.
    #[error("agent {0} presented a certificate that is not its current one")]
    CertificateSuperseded(String),
    /// The named agent does not exist.
    #[error("no agent with id {0}")]
    AgentUnknown(String),
    /// The named finding does not exist.
    #[error("no finding with id {0}")]
    FindingUnknown(String),
    /// A local web account with this e-mail exists already.
    #[error("a user with e-mail {0} exists already")]
    UserExists(String),
    /// A workflow step was refused (four eyes, already decided); the text says why.
    #[error("{0}")]
    RequestRefused(String),
    /// Stored data could not be decoded.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// The runtime shut down while stored rows were being read.
    #[error("the collector is shutting down; the read was abandoned")]
    ShutDown,
    /// The database failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// The database was migrated by a newer collector than this one.
    #[error(
        "the database schema is newer than this collector: migration {applied} is applied, this collector knows migrations up to {known}; run the newer collector (or restore a backup taken before the upgrade)"
    )]
    SchemaNewer {
        /// A migration applied to the database that this build does not have.
        applied: i64,
        /// The newest migration this build has.
        known: i64,
    },
    /// Migrations failed.
    #[error("database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The database file could not be prepared.
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
}

impl StoreError {
    /// The database could not be reached or went away (the caller may retry later), as
    /// opposed to a refusal or corrupt data.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Database(error) => match error {
                sqlx::Error::Io(_)
                | sqlx::Error::Tls(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::WorkerCrashed
                | sqlx::Error::Protocol(_) => true,
                // SQLSTATE class 08 (connection exception), 57P01-57P03 (server shutting
                // down or starting), 53300 (too many connections).
                sqlx::Error::Database(db) => db.code().is_some_and(|code| {
                    code.starts_with("08") || code.starts_with("57P") || code == "53300"
                }),
                _ => false,
            },
            _ => false,
        }
    }
}

/// A new enrollment token (hash only).
#[derive(Clone, Debug)]
pub struct NewToken {
    /// SHA-256 hex of the token.
    pub token_hash: String,
    /// Creation time (ms).
    pub created_at: i64,
    /// Expiry (ms).
    pub expires_at: i64,
    /// The person who created it.
    pub created_by: String,
}

/// What a token allows beyond a single use: a budget, a name and the labels the collector sets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenScope {
    /// Unique name shown by `token list` and used by `token revoke`.
    pub name: String,
    /// How many enrollments it allows (at least 1).
    pub max_uses: i64,
    /// Labels set on every agent enrolled with it; the agent cannot override them.
    pub labels: BTreeMap<String, String>,
}

impl TokenScope {
    /// A single-use token without labels, named after the start of its hash.
    pub fn single_use(token_hash: &str) -> Self {
        Self {
            name: format!("token-{}", token_hash.chars().take(12).collect::<String>()),
            max_uses: 1,
            labels: BTreeMap::new(),
        }
    }
}

/// A token as `token list` shows it: never the secret nor its hash.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct TokenRecord {
    /// Unique name.
    pub name: String,
    /// Creation time (ms).
    pub created_at: i64,
    /// Who created it.
    pub created_by: String,
    /// Expiry (ms).
    pub expires_at: i64,
    /// Enrollments allowed in total.
    pub max_uses: i64,
    /// Enrollments done with it.
    pub uses: i64,
    /// Labels the collector sets on its agents.
    pub labels: BTreeMap<String, String>,
    /// Revocation time (ms).
    pub revoked_at: Option<i64>,
    /// Who revoked it.
    pub revoked_by: Option<String>,
}

/// Which host presented an agent's certificate, compared with the one it is bound to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostBinding {
    /// First host seen for this agent; it is bound now.
    Bound,
    /// The host the agent is bound to.
    Same,
    /// Another host presents the same certificate: a copied state directory. Recorded on the
    /// agent (and audited the first time); nothing from that host is stored.
    Clone {
        /// The host the agent is bound to.
        bound: String,
    },
}

/// A certificate issued at renewal, replacing the agent's current one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenewedCertificate {
    /// SHA-256 of the certificate presented by the caller (must be the current one).
    pub presented_sha256: String,
    /// SHA-256 of the new certificate's DER.
    pub cert_sha256: String,
    /// Expiry of the new certificate (ms).
    pub cert_not_after: i64,
}

/// A newly enrolled agent.
#[derive(Clone, Debug)]
pub struct NewAgent {
    /// Assigned id (certificate CN).
    pub agent_id: String,
    /// Host name the agent gave.
    pub hostname: String,
    /// SHA-256 hex of the issued certificate's DER.
    pub cert_sha256: String,
    /// Certificate expiry (ms).
    pub cert_not_after: i64,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Agent version.
    pub agent_version: String,
}

/// What a heartbeat tells.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Heartbeat {
    /// Agent version.
    pub agent_version: String,
    /// Reports waiting in its spool.
    pub spool_depth: i64,
    /// Reports its spool dropped at the bound, in total.
    pub spool_dropped: i64,
}

/// What an evaluation uses of an agent: the labels linking reads and, unless the agent was
/// revoked, its current certificate for the certificate rules.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentView {
    /// Id (certificate CN).
    pub agent_id: String,
    /// The claimed labels overlaid by the token's (collector wins), as [`AgentRecord::labels`].
    pub labels: BTreeMap<String, String>,
    /// None once revoked.
    pub certificate: Option<AgentCertificate>,
}

impl AgentView {
    /// The view of a whole record.
    pub fn of(agent: &AgentRecord) -> Self {
        Self::new(
            agent.agent_id.clone(),
            agent.labels.clone(),
            CertificateDates {
                issued_at: agent.cert_issued_at,
                enrolled_at: agent.enrolled_at,
                not_after: agent.cert_not_after,
                revoked_at: agent.revoked_at,
            },
        )
    }

    /// The view from an agent's columns: a certificate issued before `cert_issued_at` was
    /// recorded counts from enrollment.
    pub(crate) fn new(
        agent_id: String,
        labels: BTreeMap<String, String>,
        dates: CertificateDates,
    ) -> Self {
        let certificate = dates.revoked_at.is_none().then(|| AgentCertificate {
            agent_id: agent_id.clone(),
            issued_at: dates.issued_at.unwrap_or(dates.enrolled_at),
            not_after: dates.not_after,
        });
        Self {
            agent_id,
            labels,
            certificate,
        }
    }
}

/// An agent's certificate columns (ms), as [`AgentView::new`] judges them.
#[derive(Clone, Copy)]
pub(crate) struct CertificateDates {
    pub issued_at: Option<i64>,
    pub enrolled_at: i64,
    pub not_after: i64,
    pub revoked_at: Option<i64>,
}

/// An enrolled agent.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct AgentRecord {
    /// Id (certificate CN).
    pub agent_id: String,
    /// Host name.
    pub hostname: String,
    /// SHA-256 of its certificate.
    pub cert_sha256: String,
    /// Certificate expiry (ms).
    pub cert_not_after: i64,
    /// Effective labels for linking: the claimed labels overlaid by the token's (collector wins).
    pub labels: BTreeMap<String, String>,
    /// Labels the agent gave at enrollment (untrusted: the agent says so).
    pub claimed_labels: BTreeMap<String, String>,
    /// Labels the collector set through the enrollment token.
    pub token_labels: BTreeMap<String, String>,
    /// The token the agent enrolled with (None before scoped tokens).
    pub token_name: Option<String>,
    /// When the current certificate was issued (ms).
    pub cert_issued_at: Option<i64>,
    /// How often the certificate was renewed.
    pub cert_renewals: i64,
    /// SHA-256 of the certificate the last renewal replaced, accepted until the new one is
    /// first presented.
    pub prev_cert_sha256: Option<String>,
    /// The host identity (SHA-256) its certificate is bound to, once it reported.
    pub host_id: Option<String>,
    /// Another host seen presenting this agent's certificate (a cloned state directory).
    pub clone_host_id: Option<String>,
    /// When that was first seen (ms).
    pub clone_detected_at: Option<i64>,
    /// Last reported version.
    pub agent_version: String,
    /// Enrollment time (ms).
    pub enrolled_at: i64,
    /// Last report or heartbeat (ms).
    pub last_seen_at: Option<i64>,
    /// Revocation time (ms).
    pub revoked_at: Option<i64>,
    /// Who revoked it.
    pub revoked_by: Option<String>,
    /// Why.
    pub revoke_reason: Option<String>,
    /// Reports waiting in its spool at the last heartbeat.
    pub spool_depth: i64,
    /// Reports its spool dropped in total (never silently: shown here).
    pub spool_dropped: i64,
}

pub use tillsyn_intake::report::{
    ControlInput, DeviceInput, ObservationInput, ReportInput, StoredEvidence,
};

/// What ingesting a report did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IngestOutcome {
    /// The host asset the report was stored under.
    pub asset_id: String,
    /// The report had been stored before; nothing changed.
    pub duplicate: bool,
    /// A delta that does not follow the last stored report; nothing changed.
    pub resync_required: bool,
}

/// A stored asset with its current facts.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct AssetRecord {
    /// Id.
    pub asset_id: String,
    /// `host` or `device`.
    pub kind: String,
    /// The reporting agent.
    pub agent_id: String,
    /// Host name.
    pub hostname: String,
    /// Device address ('' for hosts).
    pub address: String,
    /// Host frame / device identity.
    pub facts: serde_json::Value,
    /// First seen (ms).
    pub first_seen_at: i64,
    /// Last seen (ms).
    pub last_seen_at: i64,
    /// Last report id.
    pub last_report_id: String,
    /// Current controls.
    pub controls: Vec<ControlRecord>,
    /// Number of current observations.
    pub observation_count: i64,
}

/// A stored control verdict.
#[derive(Clone, Debug, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct ControlRecord {
    /// Name.
    pub name: String,
    /// Verdict.
    pub state: String,
    /// Why.
    pub reason: String,
    /// Evidence.
    pub evidence: Vec<StoredEvidence>,
}

/// One entry of the audit log.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct AuditEntry {
    /// Position in the chain.
    pub seq: i64,
    /// Time (ms).
    pub at: i64,
    /// The person.
    pub actor: String,
    /// What they did, e.g. `agent.revoke`.
    pub action: String,
    /// What it was done to.
    pub subject: String,
    /// Details.
    pub detail: serde_json::Value,
    /// `detail` exactly as stored: the hash covers these bytes, so verification never depends
    /// on re-serialising (and a row whose text is not JSON still gets checked and named).
    #[serde(skip)]
    pub detail_json: String,
    /// Hash of the previous entry.
    pub prev_hash: String,
    /// SHA-256 over this entry and `prev_hash`.
    pub hash: String,
}

/// A change made by a person, to be appended to the audit log.
#[derive(Clone, Debug)]
pub struct AuditEvent {
    /// The person.
    pub actor: String,
    /// What they did.
    pub action: String,
    /// What it was done to.
    pub subject: String,
    /// Details (never secrets).
    pub detail: serde_json::Value,
}

/// A finding as stored, with its lifecycle.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct FindingRecord {
    /// Short stable id (used by `finding accept`).
    pub finding_id: String,
    /// Rule id.
    pub rule: String,
    /// Severity name.
    pub severity: String,
    /// `open`, `resolved` or `accepted`.
    pub state: String,
    /// The system (None for assets linked to no system).
    pub system_id: Option<String>,
    /// The asset id.
    pub asset_id: Option<String>,
    /// Host name or device address.
    pub asset: String,
    /// One sentence, in English.
    pub message: String,
    /// The same sentence in no language yet, to render in the reader's; `None` for a finding
    /// stored before findings kept it (it is filled in at its next evaluation).
    #[serde(skip)]
    pub text: Option<crate::i18n::Text>,
    /// Evidence.
    pub evidence: Vec<StoredEvidence>,
    /// First seen (ms).
    pub first_seen_at: i64,
    /// Last seen broken (ms).
    pub last_seen_at: i64,
    /// When it was resolved (ms).
    pub resolved_at: Option<i64>,
    /// Who accepted the risk.
    pub accepted_by: Option<String>,
    /// Why.
    pub accept_reason: Option<String>,
    /// Until when (ms).
    pub accepted_until: Option<i64>,
}

impl FindingRecord {
    /// The message in the language of `t`; the stored English when the finding predates
    /// [`FindingRecord::text`].
    pub fn message_in(&self, t: &crate::i18n::Messages) -> String {
        self.text
            .as_ref()
            .map_or_else(|| self.message.clone(), |text| text.render(t))
    }
}

/// A state change in a finding's history.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct FindingEvent {
    /// When (ms).
    pub at: i64,
    /// Previous state (None when created).
    pub from_state: Option<String>,
    /// New state.
    pub to_state: String,
    /// `collector` for automatic changes, else the person.
    pub actor: String,
    /// Why.
    pub note: String,
}

/// A risk acceptance by a named person.
#[derive(Clone, Debug)]
pub struct Acceptance {
    /// Who accepts.
    pub by: String,
    /// Justification.
    pub reason: String,
    /// Until (ms).
    pub until: i64,
}

/// What an evaluation changed.
#[derive(Clone, Debug, Default, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct EvaluationSummary {
    /// Findings seen for the first time.
    pub opened: usize,
    /// Resolved findings that came back, or acceptances that expired.
    pub reopened: usize,
    /// Findings whose rule no longer fails.
    pub resolved: usize,
    /// Findings open after the evaluation.
    pub open: usize,
    /// Findings accepted after the evaluation.
    pub accepted: usize,
    /// The subjects an incremental round judged again and wrote (None: the whole estate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judged: Option<Judged>,
}

/// How many subjects an incremental evaluation round judged again.
#[derive(Clone, Copy, Debug, Default, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct Judged {
    /// Assets.
    pub assets: usize,
    /// Systems.
    pub systems: usize,
}

/// Which stored findings and system links an evaluation write replaces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EvaluationScope {
    /// Everything: the drafts and links are the whole estate's.
    All,
    /// Only these subjects: the findings whose `asset_id` is one of `assets`, those without an
    /// asset whose `system_id` is one of `systems`, and the links of `assets`. The drafts and
    /// links given are exactly these subjects' (a draft of another subject is a caller error).
    Subjects {
        /// Asset ids.
        assets: Vec<String>,
        /// System ids.
        systems: Vec<String>,
    },
}

/// What changed since a round of the serving collector's evaluator (`crate::evaluator`),
/// read in one statement, so in one snapshot of the store (migration 0016).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// The last change number handed out, as of this snapshot. Numbers are handed out in
    /// commit order, so every write this snapshot holds is numbered at or below it and every
    /// write it does not hold (committed later, or still running) above it: the next round
    /// asks for the changes since this one.
    pub watermark: i64,
    /// Ids of the assets written (new or changed in what an evaluation reads) after the
    /// change number asked for; empty when none was given.
    pub assets: Vec<String>,
    /// Ids of the agents enrolled, renewed or revoked after the change number asked for.
    pub agents: Vec<String>,
    /// Assets stored: with the ids above, a removal shows as fewer rows than the ids known.
    pub asset_count: usize,
    /// Agents stored, likewise.
    pub agent_count: usize,
    /// The change number of the register's last write (import, review, attestation).
    pub register: i64,
    /// How many writes findings and system links have had (grows by one per write).
    pub findings: i64,
}

/// An accepted finding, for checking its acceptance between evaluations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AcceptedFinding {
    /// The finding's key ([`FindingDraft::key`]).
    pub finding_key: String,
    /// The system (None for an asset linked to no system).
    pub system_id: Option<String>,
    /// The asset (None for system-level rules).
    pub asset_id: Option<String>,
    /// Until when (ms).
    pub accepted_until: Option<i64>,
}

/// What a scoped evaluation write did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppliedEvaluation {
    /// As [`Store::apply_findings`] reports it.
    pub summary: EvaluationSummary,
    /// [`Changes::findings`] after this write.
    pub generation: i64,
}

/// A stored schedule.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct ScheduleRecord {
    /// Unique name.
    pub name: String,
    /// `inventory`, `discovery` or `evaluation`.
    pub kind: String,
    /// Cron expression.
    pub cron: String,
    /// IANA time zone.
    pub timezone: String,
    /// `all`, `agent:ID` or `label:K=V`.
    pub target: String,
    /// Job parameters (JSON).
    pub params: serde_json::Value,
    /// Next fire time (ms).
    pub next_run_at: i64,
    /// Who created it.
    pub created_by: String,
    /// When (ms).
    pub created_at: i64,
}

/// A job to create.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewJob {
    /// Schedule name or `run-now:NAME`.
    pub schedule: String,
    /// Kind.
    pub kind: String,
    /// The agent (None: the collector runs it).
    pub agent_id: Option<String>,
    /// Parameters (JSON).
    pub params: serde_json::Value,
}

/// A job with its state.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct JobRecord {
    /// Id.
    pub job_id: String,
    /// Schedule name or `run-now:NAME`.
    pub schedule: String,
    /// Kind.
    pub kind: String,
    /// The agent.
    pub agent_id: Option<String>,
    /// Parameters.
    pub params: serde_json::Value,
    /// `pending`, `delivered`, `done`, `failed`.
    pub state: String,
    /// Created (ms).
    pub created_at: i64,
    /// Delivered to the agent (ms).
    pub delivered_at: Option<i64>,
    /// Finished (ms).
    pub finished_at: Option<i64>,
    /// The report that completed it.
    pub report_id: Option<String>,
    /// Why it failed.
    pub error: Option<String>,
}

/// One change of an observation on an asset.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct ObservationChange {
    /// The asset.
    pub asset_id: String,
    /// Its host name or address.
    pub asset: String,
    /// Category.
    pub category: String,
    /// Name.
    pub name: String,
    /// `added`, `changed` or `removed`.
    pub change: String,
    /// Value before (JSON text).
    pub old_value: Option<String>,
    /// Value after (JSON text).
    pub new_value: Option<String>,
    /// When (ms).
    pub at: i64,
    /// The report that carried it.
    pub report_id: String,
}

/// What a catalog import changed.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct CatalogChange {
    /// New systems.
    pub added: usize,
    /// Systems whose entry changed.
    pub changed: usize,
    /// Systems unchanged.
    pub unchanged: usize,
    /// Systems no longer in the register.
    pub removed: usize,
}

/// The first entry at which the audit log's hash chain breaks.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("audit entry {seq}: {problem}")]
pub struct AuditBreak {
    /// The entry's position in the chain.
    pub seq: i64,
    /// What does not hold there.
    pub problem: String,
}

/// Checks the audit log's hash chain, entries in order: sequence numbers run 1, 2, 3, ...;
/// each `prev_hash` is the hash before it (all zeros for the first); each hash is SHA-256
/// over its fields as stored. Returns the first entry where that fails.
pub fn verify_audit_chain(entries: &[AuditEntry]) -> Result<(), AuditBreak> {
    let mut prev = sql::GENESIS_HASH.to_string();
    for (position, entry) in (1_i64..).zip(entries) {
        let broken = |problem: String| AuditBreak {
            seq: entry.seq,
            problem,
        };
        if entry.seq != position {
            return Err(broken(format!(
                "sequence number out of place (entry {position} of the chain): an entry was removed or renumbered"
            )));
        }
        if entry.prev_hash != prev {
            return Err(broken(format!(
                "its previous hash {} is not the hash of the entry before it ({prev}): an entry before it was changed or removed",
                entry.prev_hash
            )));
        }
        let event = AuditEvent {
            actor: entry.actor.clone(),
            action: entry.action.clone(),
            subject: entry.subject.clone(),
            detail: entry.detail.clone(),
        };
        let computed = sql::audit_hash(&prev, entry.at, &event, &entry.detail_json);
        if computed != entry.hash {
            return Err(broken(format!(
                "its content does not match its hash (stored {}, computed {computed}): the entry was changed",
                entry.hash
            )));
        }
        prev.clone_from(&entry.hash);
    }
    Ok(())
}

/// A current observation of an asset, as the agent reported it.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ObservationRecord {
    /// `account`, `sudo`, `admin_group`, `sshd`, ...
    pub category: String,
    /// Name within the category.
    pub name: String,
    /// Per-category shape.
    pub value: serde_json::Value,
    /// Where the agent saw it.
    pub evidence: Vec<StoredEvidence>,
}

/// The collector's storage. Every method is one transaction.
#[async_trait]
pub trait Store: Send + Sync {
    /// Stores a new single-use enrollment token and audits it.
    async fn create_token(&self, token: NewToken, now: i64) -> Result<(), StoreError> {
        let scope = TokenScope::single_use(&token.token_hash);
        self.create_scoped_token(token, scope, now).await
    }
    /// Stores a token with a use budget, a unique name and labels; audited.
    async fn create_scoped_token(
        &self,
        token: NewToken,
        scope: TokenScope,
        now: i64,
    ) -> Result<(), StoreError>;
    /// Every token, newest first (no secrets).
    async fn tokens(&self) -> Result<Vec<TokenRecord>, StoreError>;
    /// Revokes a token by name (audited); false if it was revoked already.
    async fn revoke_token(
        &self,
        name: &str,
        event: AuditEvent,
        now: i64,
    ) -> Result<bool, StoreError>;
    /// Compares the host presenting the agent's certificate with the one it is bound to,
    /// binding the first; a different host is recorded as a clone (audited once).
    async fn bind_agent_host(
        &self,
        agent_id: &str,
        host_id: &str,
        now: i64,
    ) -> Result<HostBinding, StoreError>;
    /// Replaces the agent's certificate with a renewed one, if the caller presented the current
    /// one and the agent is not revoked. The replaced one stays accepted until the new one is
    /// first presented ([`Store::forget_previous_certificate`]).
    async fn renew_agent_certificate(
        &self,
        agent_id: &str,
        renewed: &RenewedCertificate,
        now: i64,
    ) -> Result<(), StoreError>;
    /// The agent presented its new certificate: the replaced one is no longer accepted.
    async fn forget_previous_certificate(&self, agent_id: &str) -> Result<(), StoreError>;
    /// Checks a token without redeeming it (cheap pre-check before signing).
    async fn check_token(&self, token_hash: &str, now: i64) -> Result<(), StoreError>;
    /// Redeems the token and records the agent atomically: both or neither.
    async fn enroll_agent(
        &self,
        token_hash: &str,
        agent: NewAgent,
        now: i64,
    ) -> Result<(), StoreError>;
    /// One agent.
    async fn agent(&self, agent_id: &str) -> Result<Option<AgentRecord>, StoreError>;
    /// All agents, by enrollment time.
    async fn agents(&self) -> Result<Vec<AgentRecord>, StoreError>;
    /// An asset's current observations in `categories`, by category and name.
    async fn observations(
        &self,
        asset_id: &str,
        categories: &[&str],
    ) -> Result<Vec<ObservationRecord>, StoreError>;
    /// What an evaluation uses of every agent, by agent id, without the rest of the record.
    async fn agent_views(&self) -> Result<Vec<AgentView>, StoreError>;
    /// Revokes an agent; returns false if it was revoked already.
    async fn revoke_agent(
        &self,
        agent_id: &str,
        event: AuditEvent,
        now: i64,
    ) -> Result<bool, StoreError>;
    /// Records a heartbeat with the agent's spool depth and total drops.
    async fn touch_agent(
        &self,
        agent_id: &str,
        heartbeat: &Heartbeat,
        now: i64,
    ) -> Result<(), StoreError>;
    /// Stores a report exactly once per (agent, report_id).
    async fn ingest_report(
        &self,
        report: ReportInput,
        now: i64,
    ) -> Result<IngestOutcome, StoreError>;
    /// All assets with their current controls.
    async fn assets(&self) -> Result<Vec<AssetRecord>, StoreError>;
    /// The audit log in order.
    async fn audit_log(&self) -> Result<Vec<AuditEntry>, StoreError>;
    /// Replaces the whole system register atomically and audits the import.
    async fn replace_catalog(
        &self,
        systems: &[System],
        event: AuditEvent,
        now: i64,
    ) -> Result<CatalogChange, StoreError>;
    /// The system register.
    async fn systems(&self) -> Result<Vec<System>, StoreError>;
    /// Brings findings in line with the rules' current verdicts: opens new ones, resolves those
    /// no longer broken, reopens returning ones and expired acceptances; records every change.
    async fn apply_findings(
        &self,
        drafts: &[FindingDraft],
        now: i64,
    ) -> Result<EvaluationSummary, StoreError>;
    /// Every stored finding, read ahead of [`Store::apply_findings_read_ahead`] so the read
    /// overlaps an evaluation's other work.
    async fn stored_findings(&self) -> Result<StoredFindings, StoreError>;
    /// [`Store::apply_findings`], compared with `stored` from [`Store::stored_findings`]
    /// unless a write of findings committed since it was read (then read again in the write).
    async fn apply_findings_read_ahead(
        &self,
        drafts: &[FindingDraft],
        stored: StoredFindings,
        now: i64,
    ) -> Result<EvaluationSummary, StoreError>;
    /// What changed after change number `since` ([`Changes::watermark`] of an earlier call),
    /// in one statement; with None only the watermark, the counts and the generations.
    async fn changes(&self, since: Option<i64>) -> Result<Changes, StoreError>;
    /// These assets with their current controls (unknown ids are left out).
    async fn assets_by_id(&self, ids: &[String]) -> Result<Vec<AssetRecord>, StoreError>;
    /// Every accepted finding.
    async fn accepted_findings(&self) -> Result<Vec<AcceptedFinding>, StoreError>;
    /// [`Store::apply_findings`] and [`Store::replace_system_links`] for `scope` only, in one
    /// transaction that records the evaluation: outside the scope nothing changes. With
    /// `expected` given, writes nothing and returns None unless findings were last written at
    /// that [`Changes::findings`] generation (no one else wrote them since).
    async fn apply_evaluation(
        &self,
        scope: &EvaluationScope,
        drafts: &[FindingDraft],
        links: &[(String, String)],
        expected: Option<i64>,
        now: i64,
    ) -> Result<Option<AppliedEvaluation>, StoreError>;
    /// All findings.
    async fn findings(&self) -> Result<Vec<FindingRecord>, StoreError>;
    /// The number of open findings of each system id that has any (a finding of no system
    /// is not counted), without reading the findings themselves.
    async fn open_findings_by_system(&self) -> Result<HashMap<String, usize>, StoreError>;
    /// A finding's history.
    async fn finding_events(&self, finding_id: &str) -> Result<Vec<FindingEvent>, StoreError>;
    /// Accepts a finding's risk until a date; audited.
    async fn accept_finding(
        &self,
        finding_id: &str,
        acceptance: Acceptance,
        now: i64,
    ) -> Result<(), StoreError>;
    /// Stores a new schedule (names are unique) and audits it.
    async fn create_schedule(
        &self,
        schedule: &ScheduleRecord,
        event: AuditEvent,
        now: i64,
    ) -> Result<(), StoreError>;
    /// Removes a schedule; false if there was none.
    async fn delete_schedule(
        &self,
        name: &str,
        event: AuditEvent,
        now: i64,
    ) -> Result<bool, StoreError>;
    /// All schedules by name.
    async fn schedules(&self) -> Result<Vec<ScheduleRecord>, StoreError>;
    /// Creates one firing's jobs and moves the schedule to `next_run_at`, atomically, if the
    /// schedule is still due at `now`; a schedule another collector fired in the meantime is
    /// left alone (returns no jobs).
    async fn fire_schedule(
        &self,
        name: &str,
        jobs: &[NewJob],
        next_run_at: i64,
        now: i64,
    ) -> Result<Vec<String>, StoreError>;
    /// Takes or renews the lease on the scheduled work `name` for `holder` until `until` (ms);
    /// true if `holder` holds it now. A lease of another holder is taken over only once it
    /// expired (at `now`): one collector at a time runs each kind of scheduled work.
    async fn take_lease(
        &self,
        name: &str,
        holder: &str,
        now: i64,
        until: i64,
    ) -> Result<bool, StoreError>;
    /// Creates jobs outside a schedule (run-now), audited when `event` is given.
    async fn create_jobs(
        &self,
        jobs: &[NewJob],
        event: Option<AuditEvent>,
        now: i64,
    ) -> Result<Vec<String>, StoreError>;
    /// Hands the agent's pending jobs over (marks them delivered).
    async fn pull_jobs(&self, agent_id: &str, now: i64) -> Result<Vec<JobRecord>, StoreError>;
    /// Closes a job of this agent; false if it is not the agent's or already closed.
    async fn complete_job(
        &self,
        agent_id: &str,
        job_id: &str,
        error: Option<&str>,
        now: i64,
    ) -> Result<bool, StoreError>;
    /// Jobs, newest first, optionally of one schedule (including its run-now jobs).
    async fn jobs(&self, schedule: Option<&str>) -> Result<Vec<JobRecord>, StoreError>;
    /// Observation changes since `since` (ms), for one asset (by id or host name) or all.
    async fn observation_changes(
        &self,
        asset: Option<&str>,
        since: i64,
    ) -> Result<Vec<ObservationChange>, StoreError>;
    /// Figures of earlier management reports, oldest first.
    async fn management_reports(&self) -> Result<Vec<(i64, serde_json::Value)>, StoreError>;
    /// Records a management report's figures.
    async fn record_management_report(
        &self,
        at: i64,
        figures: &serde_json::Value,
    ) -> Result<(), StoreError>;
    /// Evaluation summaries, oldest first (for trends).
    async fn evaluations(&self) -> Result<Vec<(i64, EvaluationSummary)>, StoreError>;

    // ---- The owners' web interface (issue 13): accounts, sessions, scoped reads, workflows.
    // Every read that serves a person takes a [`Scope`] and applies it in the query.

    /// Appends a person's action (or a refused access) to the audit log.
    async fn record_audit(&self, event: AuditEvent, now: i64) -> Result<(), StoreError>;
    /// Creates a local account (e-mail unique) and audits it.
    async fn create_user(
        &self,
        user: NewUser,
        event: AuditEvent,
        now: i64,
    ) -> Result<(), StoreError>;
    /// All local accounts by e-mail.
    async fn users(&self) -> Result<Vec<UserRecord>, StoreError>;
    /// One account by lowercase e-mail.
    async fn user_by_email(&self, email: &str) -> Result<Option<UserRecord>, StoreError>;
    /// One account by id.
    async fn user_by_id(&self, user_id: &str) -> Result<Option<UserRecord>, StoreError>;
    /// The account a still valid, unused enrolment token belongs to.
    async fn user_by_enrol_token(
        &self,
        token_hash: &str,
        now: i64,
    ) -> Result<Option<UserRecord>, StoreError>;
    /// Sets password and TOTP key and spends the token; false if the token is no longer valid.
    async fn complete_enrolment(
        &self,
        token_hash: &str,
        enrolment: Enrolment,
        event: AuditEvent,
        now: i64,
    ) -> Result<bool, StoreError>;
    /// Disables an account and ends its sessions; false if unknown or disabled already.
    async fn disable_user(
        &self,
        email: &str,
        event: AuditEvent,
        now: i64,
    ) -> Result<bool, StoreError>;
    /// Counts a failed sign-in; at `lock_after` consecutive failures the account is locked
    /// until `lock_until` (ms) and the lock is audited. Returns whether this failure locked it.
    async fn record_sign_in_failure(
        &self,
        user_id: &str,
        lock_after: i64,
        lock_until: i64,
        now: i64,
    ) -> Result<bool, StoreError>;
    /// Completes a sign-in: refuses a TOTP step not newer than the last accepted one (a code
    /// is used once), resets the failure count, stores the session, audits. False on replay.
    async fn start_session(
        &self,
        session: SessionRecord,
        totp_step: i64,
        event: AuditEvent,
        now: i64,
    ) -> Result<bool, StoreError>;
    /// Completes an OIDC sign-in in one transaction: finds the account by `identity.subject`
    /// (or creates it), sets its e-mail, name and role from the ID token, stores `session`
    /// for it (its `user_id` is replaced by the account's) and audits `event`. Nothing is
    /// written when the account is disabled or the e-mail belongs to another account.
    async fn oidc_sign_in(
        &self,
        identity: OidcIdentity,
        session: SessionRecord,
        event: AuditEvent,
        now: i64,
    ) -> Result<OidcSignIn, StoreError>;
    /// A session of an enabled account last used after `idle_since` and created after
    /// `created_since` (ms); marks it used at `now`. Expired sessions are deleted.
    async fn session(
        &self,
        session_hash: &str,
        idle_since: i64,
        created_since: i64,
        now: i64,
    ) -> Result<Option<(SessionRecord, UserRecord)>, StoreError>;
    /// Ends a session (sign-out).
    async fn end_session(&self, session_hash: &str) -> Result<(), StoreError>;
    /// The passkeys of an account, oldest first.
    async fn passkeys(&self, user_id: &str) -> Result<Vec<PasskeyRecord>, StoreError>;
    /// Stores a new passkey of an enabled account and audits it; false (nothing written) if
    /// the credential id is registered already, to any account, or the account is disabled.
    async fn add_passkey(
        &self,
        passkey: PasskeyRecord,
        event: AuditEvent,
        now: i64,
    ) -> Result<bool, StoreError>;
    /// Removes one of `user_id`'s passkeys and audits it; false if it has no such passkey.
    async fn remove_passkey(
        &self,
        user_id: &str,
        credential_id: &str,
        event: AuditEvent,
        now: i64,
    ) -> Result<bool, StoreError>;
    /// Stores a ceremony's challenge, replacing an earlier one of the same binding and
    /// purpose; expired challenges of anyone are deleted on the way.
    async fn put_passkey_challenge(
        &self,
        challenge: PasskeyChallenge,
        now: i64,
    ) -> Result<(), StoreError>;
    /// Takes (deletes) the challenge of `binding` and `purpose`: it can be taken once. None if
    /// there is none or it has expired by `now`.
    async fn take_passkey_challenge(
        &self,
        binding: &str,
        purpose: PasskeyPurpose,
        now: i64,
    ) -> Result<Option<PasskeyChallenge>, StoreError>;
    /// Completes a sign-in with a passkey in one transaction: stores the credential's new
    /// state (`passkey_json`: signature counter, backup state) and its last use, resets the
    /// failure count, stores the session, audits. False (nothing written) if the credential
    /// is not the session's account's or the account is disabled.
    async fn passkey_sign_in(
        &self,
        session: SessionRecord,
        credential_id: &str,
        passkey_json: &str,
        event: AuditEvent,
        now: i64,
    ) -> Result<bool, StoreError>;
    /// Spends a TOTP step outside a sign-in (the code asked for before a passkey is added):
    /// false if the step is not newer than the last one accepted, so a code works once.
    async fn spend_totp_step(&self, user_id: &str, step: i64) -> Result<bool, StoreError>;
    /// Replaces the stored (system_id, asset_id) links with those of the latest evaluation.
    async fn replace_system_links(&self, links: &[(String, String)]) -> Result<(), StoreError>;
    /// The systems in scope, by id; with `system_id`, that one only (empty if out of scope).
    async fn scoped_systems(
        &self,
        scope: &Scope,
        system_id: Option<&str>,
    ) -> Result<Vec<System>, StoreError>;
    /// Assets linked to systems in scope, as (system_id, asset), optionally of one system
    /// and/or one asset.
    async fn scoped_assets(
        &self,
        scope: &Scope,
        system_id: Option<&str>,
        asset_id: Option<&str>,
    ) -> Result<Vec<(String, AssetRecord)>, StoreError>;
    /// Findings of systems in scope (unlinked assets' findings only for [`Scope::All`]),
    /// optionally narrowed to one system, asset or finding; resolved ones only if asked.
    async fn scoped_findings(
        &self,
        scope: &Scope,
        system_id: Option<&str>,
        asset_id: Option<&str>,
        finding_id: Option<&str>,
        include_resolved: bool,
    ) -> Result<Vec<FindingRecord>, StoreError>;
    /// The systems in scope that `query` keeps, by id (My systems with its filters; the
    /// filters are conditions of the query, ANDed with the scope).
    async fn filtered_systems(
        &self,
        scope: &Scope,
        query: &SystemQuery,
    ) -> Result<Vec<System>, StoreError>;
    /// The findings in scope (as [`Store::scoped_findings`] scopes them) that `query` keeps,
    /// by system, rule and asset.
    async fn filtered_findings(
        &self,
        scope: &Scope,
        query: &FindingQuery,
    ) -> Result<Vec<FindingRecord>, StoreError>;
    /// The audit entries `query` keeps, oldest first (coordinators and auditors read the
    /// whole log; the caller checks the role).
    async fn filtered_audit(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>, StoreError>;
    /// Files a risk-acceptance request (one pending per finding) and audits it.
    async fn request_acceptance(
        &self,
        request: AcceptanceRequest,
        event: AuditEvent,
        now: i64,
    ) -> Result<(), StoreError>;
    /// Requests about findings in scope, newest first, optionally in one state.
    async fn acceptance_requests(
        &self,
        scope: &Scope,
        state: Option<&str>,
    ) -> Result<Vec<AcceptanceRequest>, StoreError>;
    /// Approves or rejects a pending request, audited; approving accepts the finding until
    /// the requested end date. Refused if `approver` is the requester or it was decided.
    async fn decide_acceptance(
        &self,
        request_id: &str,
        approver: &str,
        approve: bool,
        note: &str,
        event: AuditEvent,
        now: i64,
    ) -> Result<AcceptanceRequest, StoreError>;
    /// Replaces a system's classification in the register (yearly review), audited; false if
    /// there is no such system.
    async fn review_classification(
        &self,
        system_id: &str,
        classification: Classification,
        event: AuditEvent,
        now: i64,
    ) -> Result<bool, StoreError>;
    /// Adds an attestation to a system in the register, audited; false if no such system.
    async fn add_attestation(
        &self,
        system_id: &str,
        attestation: Attestation,
        event: AuditEvent,
        now: i64,
    ) -> Result<bool, StoreError>;
}
