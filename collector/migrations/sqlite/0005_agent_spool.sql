-- The agent's spool as reported in its last heartbeat.
ALTER TABLE agents ADD COLUMN spool_depth INTEGER NOT NULL DEFAULT 0;
ALTER TABLE agents ADD COLUMN spool_dropped INTEGER NOT NULL DEFAULT 0;
