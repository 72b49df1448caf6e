-- The sequence of the last report stored per agent, for delta reports.
ALTER TABLE agents ADD COLUMN last_sequence INTEGER NOT NULL DEFAULT 0;
