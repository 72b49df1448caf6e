-- Change numbers: what lets the serving collector's evaluation (collector/src/evaluator.rs)
-- read only the rows that changed since its last round instead of every row's revision.
--
-- `counter` is the last change number handed out. Every write transaction that changes what
-- the evaluation reads from an asset or an agent (the same writes that bump `revision`), or
-- the register, takes the next number by incrementing this one row and stamps it on the rows
-- it writes. Incrementing the row locks it until the transaction ends, so the next writer gets
-- its number only after this one committed or rolled back: numbers are handed out in commit
-- order whoever writes (on SQLite there is one writer anyway). A reader that reads `counter`
-- as W in the same statement as the rows has therefore seen every write numbered W or below,
-- and every write it has not seen is numbered above W.
CREATE TABLE evaluation_changes (
    id              INTEGER PRIMARY KEY CHECK (id = 1),
    counter         BIGINT NOT NULL,
    -- The change number of the last write of the register (`systems`).
    register        BIGINT NOT NULL
);
INSERT INTO evaluation_changes (id, counter, register) VALUES (1, 0, 0);

-- Rows written before this migration are numbered 0: an evaluator's first round reads the
-- whole estate anyway.
ALTER TABLE assets ADD COLUMN change_number BIGINT NOT NULL DEFAULT 0;
ALTER TABLE agents ADD COLUMN change_number BIGINT NOT NULL DEFAULT 0;
CREATE INDEX assets_change_number ON assets(change_number);
CREATE INDEX agents_change_number ON agents(change_number);
