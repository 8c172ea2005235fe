-- nodee schema, version 4: what a job needs but nobody may read back.
-- A URL may carry credentials or a signature; params (shown by the API
-- and kept for audits) has it redacted, private has it whole and is
-- never returned by the API.
ALTER TABLE jobs ADD COLUMN private TEXT;
