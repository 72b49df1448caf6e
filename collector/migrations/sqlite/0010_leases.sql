-- Who runs the collector's scheduled work (scan firing, evaluations, acceptance expiry) when
-- several collectors share one database: one row per kind of work, held by one collector
-- until `expires_at` (ms) and renewed by it every round; another collector takes it over only
-- after it expired (its holder died or stalled).
CREATE TABLE leases (
    name        TEXT PRIMARY KEY,
    holder      TEXT NOT NULL,
    expires_at  INTEGER NOT NULL
);
