-- Scheduled scans, the jobs they create, and the history of observations.

CREATE TABLE schedules (
    name            TEXT PRIMARY KEY,
    kind            TEXT NOT NULL CHECK (kind IN ('inventory', 'discovery', 'evaluation')),
    cron            TEXT NOT NULL,
    timezone        TEXT NOT NULL,
    target          TEXT NOT NULL,     -- all | agent:<id> | label:<key>=<value> (unused for evaluation)
    params_json     TEXT NOT NULL,     -- discovery targets and ports
    next_run_at     INTEGER NOT NULL,
    created_by      TEXT NOT NULL,
    created_at      INTEGER NOT NULL
);

CREATE TABLE jobs (
    job_id          TEXT PRIMARY KEY,
    schedule        TEXT NOT NULL,     -- schedule name, or 'run-now:<name>'
    kind            TEXT NOT NULL,
    agent_id        TEXT REFERENCES agents(agent_id), -- NULL for evaluations run by the collector
    params_json     TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'done', 'failed')),
    created_at      INTEGER NOT NULL,
    delivered_at    INTEGER,
    finished_at     INTEGER,
    report_id       TEXT,
    error           TEXT
);
CREATE INDEX jobs_agent_state ON jobs(agent_id, state);
CREATE INDEX jobs_schedule ON jobs(schedule, created_at);

-- Every change of an observation: what changed on a host since last week.
CREATE TABLE observation_history (
    asset_id        TEXT NOT NULL REFERENCES assets(asset_id) ON DELETE CASCADE,
    category        TEXT NOT NULL,
    name            TEXT NOT NULL,
    change          TEXT NOT NULL CHECK (change IN ('added', 'changed', 'removed')),
    old_value_json  TEXT,
    new_value_json  TEXT,
    at              INTEGER NOT NULL,
    report_id       TEXT NOT NULL
);
CREATE INDEX observation_history_asset ON observation_history(asset_id, at);
