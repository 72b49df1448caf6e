-- Change detectors of the serving collector's incremental evaluation (collector/src/evaluator.rs).
-- `revision` grows by one in the same statement as every change of what the evaluation reads
-- from the row (an asset's facts, controls, last-seen; an agent's certificate or revocation),
-- so comparing (id, revision) pairs with the last ones read finds every changed row whatever
-- order several collectors' transactions committed in.
ALTER TABLE assets ADD COLUMN revision BIGINT NOT NULL DEFAULT 0;
ALTER TABLE agents ADD COLUMN revision BIGINT NOT NULL DEFAULT 0;

-- One row counting the writes to findings and system links: every write adds one, so an
-- evaluator that kept the findings in memory learns that someone else (the CLI, `catalog
-- import`, the web's "evaluate now", another collector) wrote them since its own last write.
CREATE TABLE findings_generation (
    id              INTEGER PRIMARY KEY CHECK (id = 1),
    generation      BIGINT NOT NULL
);
INSERT INTO findings_generation (id, generation) VALUES (1, 0);
