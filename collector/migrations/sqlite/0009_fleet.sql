-- Fleet enrollment and certificate renewal (issue 14).
--
-- Tokens become scoped: a name shown to operators, a use budget (max_uses, uses), labels the
-- collector sets on every agent enrolled with it, and revocation. Single-use tokens made
-- before this migration keep working: max_uses 1, and uses 1 where they were redeemed.
ALTER TABLE enrollment_tokens ADD COLUMN name TEXT;
ALTER TABLE enrollment_tokens ADD COLUMN max_uses INTEGER NOT NULL DEFAULT 1;
ALTER TABLE enrollment_tokens ADD COLUMN uses INTEGER NOT NULL DEFAULT 0;
ALTER TABLE enrollment_tokens ADD COLUMN labels_json TEXT NOT NULL DEFAULT '{}';
ALTER TABLE enrollment_tokens ADD COLUMN revoked_at INTEGER;
ALTER TABLE enrollment_tokens ADD COLUMN revoked_by TEXT;
UPDATE enrollment_tokens SET uses = 1 WHERE used_at IS NOT NULL;
UPDATE enrollment_tokens SET name = 'token-' || substr(token_hash, 1, 12) WHERE name IS NULL;
CREATE UNIQUE INDEX enrollment_tokens_by_name ON enrollment_tokens(name);

-- Agents: `labels_json` stays what the agent claimed at enrollment; `token_labels_json` is what
-- the collector set through the token (it wins where both name a key).
ALTER TABLE agents ADD COLUMN token_labels_json TEXT NOT NULL DEFAULT '{}';
ALTER TABLE agents ADD COLUMN token_name TEXT;
-- The host the agent's certificate is bound to (SHA-256 of its machine identity), and the
-- first other host seen presenting the same certificate (a cloned state directory).
ALTER TABLE agents ADD COLUMN host_id TEXT;
ALTER TABLE agents ADD COLUMN clone_host_id TEXT;
ALTER TABLE agents ADD COLUMN clone_detected_at INTEGER;
-- Renewal: when the current certificate was issued, and the one it replaced, accepted until
-- the agent first presents the new one (so a crash between renewal and the write of the new
-- files does not lock the agent out).
ALTER TABLE agents ADD COLUMN cert_issued_at INTEGER;
ALTER TABLE agents ADD COLUMN prev_cert_sha256 TEXT;
ALTER TABLE agents ADD COLUMN cert_renewals INTEGER NOT NULL DEFAULT 0;
UPDATE agents SET cert_issued_at = enrolled_at WHERE cert_issued_at IS NULL;
