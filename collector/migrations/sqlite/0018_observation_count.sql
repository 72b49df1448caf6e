-- `assets.observation_count` is kept by ingest from what each report adds and removes
-- (collector/src/store/sql.rs, `replace_observations`; a full report sets it to its row
-- count) instead of a COUNT(*) over the asset's rows on every report. Counted once here, so
-- every row starts exact whatever wrote it before (rows older than migration 0004 still had
-- the column's default, 0). A collector that does not know this migration refuses to open
-- the schema.
UPDATE assets SET observation_count = (SELECT COUNT(*) FROM observations o WHERE o.asset_id = assets.asset_id);
