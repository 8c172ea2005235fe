-- nodee schema, version 2: artifact installs and removals as jobs.

-- A cancel asked for while the job runs; the worker sees it and stops.
ALTER TABLE jobs ADD COLUMN cancel_requested INTEGER NOT NULL DEFAULT 0;
-- How often a worker started this job (more than 1 after a crash).
ALTER TABLE jobs ADD COLUMN runs INTEGER NOT NULL DEFAULT 0;

-- At most one queued or running job per kind and subject: ten requests
-- for the same artifact share one download.
CREATE UNIQUE INDEX jobs_one_active ON jobs (kind, subject)
    WHERE state IN ('queued', 'running');
CREATE INDEX jobs_kind ON jobs (kind, id);

ALTER TABLE artifacts ADD COLUMN url TEXT;

-- One row per install or removal, for audits:
--   sqlite3 PREFIX/state/nodee.db 'select * from install_history'
CREATE VIEW install_history AS
SELECT
	strftime('%Y-%m-%dT%H:%M:%fZ', coalesce(finished_at, started_at,
	    created_at) / 1000.0, 'unixepoch') AS time,
	subject AS artifact,
	CASE kind WHEN 'artifact.install' THEN 'install' ELSE 'remove' END
	    AS action,
	state AS result,
	error AS reason,
	id AS job,
	CASE WHEN finished_at IS NOT NULL AND started_at IS NOT NULL
	    THEN round((finished_at - started_at) / 1000.0, 3) END
	    AS duration_s
FROM jobs
WHERE kind IN ('artifact.install', 'artifact.remove')
ORDER BY id;
