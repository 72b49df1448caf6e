-- The owners' web interface: people, their sessions, which assets each system holds (for
-- scoped pages), and the four-eyes risk-acceptance requests.

-- Local accounts. Passwords are argon2 PHC strings; the TOTP secret is the raw RFC 6238 key
-- (hex). An account is usable only after enrolment (password_hash and totp_secret set).
CREATE TABLE web_users (
    user_id           TEXT PRIMARY KEY,
    email             TEXT NOT NULL UNIQUE,      -- lowercase
    name              TEXT NOT NULL,
    role              TEXT NOT NULL CHECK (role IN ('coordinator', 'owner', 'administrator', 'auditor', 'management')),
    password_hash     TEXT,
    totp_secret       TEXT,
    totp_last_step    INTEGER NOT NULL DEFAULT 0, -- last accepted 30 s step: a code is never used twice
    enrol_token_hash  TEXT UNIQUE,               -- SHA-256 hex of the one-time enrolment link's token
    enrol_expires_at  INTEGER,
    failed_attempts   INTEGER NOT NULL DEFAULT 0,
    locked_until      INTEGER NOT NULL DEFAULT 0,
    created_at        INTEGER NOT NULL,
    created_by        TEXT NOT NULL,
    enrolled_at       INTEGER,
    disabled_at       INTEGER
);

-- Signed-in sessions; only the SHA-256 of the cookie value is stored.
CREATE TABLE web_sessions (
    session_hash      TEXT PRIMARY KEY,
    user_id           TEXT NOT NULL REFERENCES web_users(user_id) ON DELETE CASCADE,
    csrf_token        TEXT NOT NULL,
    created_at        INTEGER NOT NULL,
    last_seen_at      INTEGER NOT NULL
);
CREATE INDEX web_sessions_user ON web_sessions(user_id);

-- Which assets each system holds, as the last evaluation linked them.
CREATE TABLE system_links (
    system_id         TEXT NOT NULL,
    asset_id          TEXT NOT NULL,
    PRIMARY KEY (system_id, asset_id)
);
CREATE INDEX system_links_asset ON system_links(asset_id);

-- Owner look-ups run against the register documents (emails are stored lowercase).
CREATE INDEX systems_system_owner ON systems(json_extract(document_json, '$.system_owner.email'));
CREATE INDEX systems_information_owner ON systems(json_extract(document_json, '$.information_owner.email'));
CREATE INDEX systems_administrator ON systems(json_extract(document_json, '$.system_administrator.email'));
CREATE INDEX findings_asset ON findings(asset_id);

-- Risk acceptances asked for by an owner and decided by a coordinator (four eyes).
CREATE TABLE acceptance_requests (
    request_id        TEXT PRIMARY KEY,
    finding_id        TEXT NOT NULL REFERENCES findings(finding_id),
    requested_by      TEXT NOT NULL,             -- web_users.email
    reason            TEXT NOT NULL,
    until             INTEGER NOT NULL,          -- ms, last moment the acceptance holds
    state             TEXT NOT NULL CHECK (state IN ('pending', 'approved', 'rejected')),
    created_at        INTEGER NOT NULL,
    decided_by        TEXT,
    decided_at        INTEGER,
    decision_note     TEXT,
    CHECK (decided_by IS NULL OR decided_by <> requested_by)
);
CREATE INDEX acceptance_requests_state ON acceptance_requests(state, created_at);
