-- Counts every write of the findings rows (an evaluation's, an acceptance's), in the same
-- transaction as the write. A whole-estate evaluation reads the stored findings ahead of its
-- write transaction, beside the assets, and uses what it read only if the count is the same
-- inside the transaction (collector/src/store/findings_sql.rs, `read_ahead`). Unlike the
-- generation beside it, an acceptance counts: it changes a row without re-judging anything.
ALTER TABLE findings_generation ADD COLUMN writes BIGINT NOT NULL DEFAULT 0;
