-- Foundation schema: enrollment, agents, reports (dedup), assets and their facts, audit log.
-- Times are INTEGER milliseconds since the Unix epoch (UTC).

CREATE TABLE enrollment_tokens (
    token_hash      TEXT PRIMARY KEY,      -- SHA-256 of the token; the token itself is never stored
    created_at      INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    created_by      TEXT NOT NULL,
    used_at         INTEGER,
    used_by_agent   TEXT
);

CREATE TABLE agents (
    agent_id        TEXT PRIMARY KEY,      -- also the CN of its client certificate
    hostname        TEXT NOT NULL,
    cert_sha256     TEXT NOT NULL UNIQUE,  -- binds the identity to exactly one certificate
    cert_not_after  INTEGER NOT NULL,
    labels_json     TEXT NOT NULL,
    agent_version   TEXT NOT NULL,
    enrolled_at     INTEGER NOT NULL,
    last_seen_at    INTEGER,
    revoked_at      INTEGER,
    revoked_by      TEXT,
    revoke_reason   TEXT
);

CREATE TABLE reports (
    agent_id        TEXT NOT NULL REFERENCES agents(agent_id),
    report_id       TEXT NOT NULL,
    received_at     INTEGER NOT NULL,
    collected_at    INTEGER NOT NULL,
    size_bytes      INTEGER NOT NULL,
    PRIMARY KEY (agent_id, report_id)
);

CREATE TABLE assets (
    asset_id        TEXT PRIMARY KEY,
    kind            TEXT NOT NULL CHECK (kind IN ('host', 'device')),
    agent_id        TEXT NOT NULL REFERENCES agents(agent_id), -- reporting agent
    hostname        TEXT NOT NULL,
    address         TEXT NOT NULL DEFAULT '',                 -- device address; '' for hosts
    device_kind     TEXT NOT NULL DEFAULT '',
    facts_json      TEXT NOT NULL,
    first_seen_at   INTEGER NOT NULL,
    last_seen_at    INTEGER NOT NULL,
    last_report_id  TEXT NOT NULL
);
CREATE UNIQUE INDEX assets_one_host_per_agent ON assets(agent_id) WHERE kind = 'host';
CREATE UNIQUE INDEX assets_device_address ON assets(agent_id, address) WHERE kind = 'device';

CREATE TABLE observations (
    asset_id        TEXT NOT NULL REFERENCES assets(asset_id) ON DELETE CASCADE,
    category        TEXT NOT NULL,
    name            TEXT NOT NULL,
    value_json      TEXT NOT NULL,
    evidence_json   TEXT NOT NULL,
    first_seen_at   INTEGER NOT NULL,
    last_seen_at    INTEGER NOT NULL,
    changed_at      INTEGER NOT NULL,
    PRIMARY KEY (asset_id, category, name)
);

CREATE TABLE controls (
    asset_id        TEXT NOT NULL REFERENCES assets(asset_id) ON DELETE CASCADE,
    name            TEXT NOT NULL,
    state           TEXT NOT NULL,
    reason          TEXT NOT NULL,
    evidence_json   TEXT NOT NULL,
    observed_at     INTEGER NOT NULL,
    PRIMARY KEY (asset_id, name)
);

-- Append-only, hash-chained record of every change made by a person.
CREATE TABLE audit_log (
    seq             INTEGER PRIMARY KEY,
    at              INTEGER NOT NULL,
    actor           TEXT NOT NULL,
    action          TEXT NOT NULL,
    subject         TEXT NOT NULL,
    detail_json     TEXT NOT NULL,
    prev_hash       TEXT NOT NULL,
    hash            TEXT NOT NULL
);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
