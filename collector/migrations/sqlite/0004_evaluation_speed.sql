-- Denormalised columns that let one evaluation read one row per asset and per finding.
ALTER TABLE assets ADD COLUMN controls_json TEXT NOT NULL DEFAULT '[]';
ALTER TABLE assets ADD COLUMN observation_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE findings ADD COLUMN content_hash TEXT NOT NULL DEFAULT '';
