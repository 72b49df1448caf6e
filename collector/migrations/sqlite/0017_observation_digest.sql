-- A full report that changes nothing (the common case: a host reports the same ~900 facts
-- every hour, deltas in between) is recognised by one digest instead of reading and comparing
-- every stored observation (collector/src/store/sql.rs, `replace_observations`).
--
-- `observations_digest` is the XOR of the SHA-256 of each of the asset's stored observations
-- (key, value and evidence), kept by every full report and every delta, or NULL when unknown
-- (rows written before this migration): the next full report then compares row by row and
-- sets it. A collector that does not know this column refuses to open the newer schema, so
-- none writes observations without keeping it.
ALTER TABLE assets ADD COLUMN observations_digest TEXT;

-- An observation's last sighting is its asset's `last_seen_at`: the stored observations are
-- exactly the asset's latest picture (a full report replaces them, a delta names what left),
-- so this column only repeated it, at the price of an UPDATE of every row per full report.
-- Nothing read it.
ALTER TABLE observations DROP COLUMN last_seen_at;
