-- System register, findings and their lifecycle history.

CREATE TABLE systems (
    system_id       TEXT PRIMARY KEY,
    document_json   TEXT NOT NULL,      -- the validated catalog::System
    imported_at     INTEGER NOT NULL
);

CREATE TABLE findings (
    finding_id      TEXT PRIMARY KEY,   -- short stable hash of the key
    finding_key     TEXT NOT NULL UNIQUE, -- rule|system|asset
    rule            TEXT NOT NULL,
    severity        TEXT NOT NULL,
    system_id       TEXT,
    asset_id        TEXT,
    asset           TEXT NOT NULL,
    message         TEXT NOT NULL,
    evidence_json   TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('open', 'resolved', 'accepted')),
    first_seen_at   INTEGER NOT NULL,
    last_seen_at    INTEGER NOT NULL,
    resolved_at     INTEGER,
    accepted_by     TEXT,
    accept_reason   TEXT,
    accepted_until  INTEGER
);
CREATE INDEX findings_state ON findings(state);
CREATE INDEX findings_system ON findings(system_id);

CREATE TABLE finding_events (
    finding_id      TEXT NOT NULL REFERENCES findings(finding_id),
    at              INTEGER NOT NULL,
    from_state      TEXT,
    to_state        TEXT NOT NULL,
    actor           TEXT NOT NULL,
    note            TEXT NOT NULL
);
CREATE INDEX finding_events_finding ON finding_events(finding_id, at);

CREATE TABLE evaluations (
    evaluated_at    INTEGER PRIMARY KEY,
    summary_json    TEXT NOT NULL
);

-- Figures of each management-review report, for the trend in the next one.
CREATE TABLE management_reports (
    issued_at       INTEGER PRIMARY KEY,
    figures_json    TEXT NOT NULL
);
