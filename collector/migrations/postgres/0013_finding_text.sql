-- Each finding's sentence in no language yet (catalogue keys and arguments, JSON), so the web
-- interface and the management report show it in Swedish or English. Empty for findings stored
-- before; the next evaluation fills it in (the content hash covers it).
ALTER TABLE findings ADD COLUMN message_text TEXT NOT NULL DEFAULT '';
