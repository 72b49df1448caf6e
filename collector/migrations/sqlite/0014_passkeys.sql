-- Passkeys (WebAuthn) as a second factor of local accounts (issue 13). A passkey replaces the
-- TOTP code after the password, never the password itself.

-- A person's registered credentials. `passkey_json` is webauthn-rs's `Passkey` (public key,
-- signature counter, backup state), rewritten after every use. A credential id belongs to
-- one account only (the primary key), as WebAuthn §7.1 step 26 requires.
CREATE TABLE web_passkeys (
    credential_id     TEXT PRIMARY KEY,          -- base64url of the credential id
    user_id           TEXT NOT NULL REFERENCES web_users(user_id) ON DELETE CASCADE,
    label             TEXT NOT NULL,
    passkey_json      TEXT NOT NULL,
    created_at        INTEGER NOT NULL,
    last_used_at      INTEGER
);
CREATE INDEX web_passkeys_user ON web_passkeys(user_id);

-- The server side of a ceremony in progress: the challenge state between its start and finish.
-- Bound to what started it (the session for a registration, the pre-session cookie of a
-- sign-in attempt), at most one per binding and purpose, deleted when taken (single use).
CREATE TABLE web_passkey_challenges (
    binding           TEXT NOT NULL,             -- SHA-256 hex of the session or pre-session cookie
    purpose           TEXT NOT NULL CHECK (purpose IN ('register', 'sign_in')),
    user_id           TEXT NOT NULL REFERENCES web_users(user_id) ON DELETE CASCADE,
    label             TEXT NOT NULL,             -- the new passkey's label; empty for a sign-in
    state_json        TEXT NOT NULL,
    expires_at        INTEGER NOT NULL,
    PRIMARY KEY (binding, purpose)
);
