-- nodee schema, version 3: supervised services.

-- What the supervisor last knew of each service, so that a restarted
-- daemon can re-adopt what still runs (pid plus the process start time
-- from /proc/<pid>/stat, so a reused pid is never mistaken).
ALTER TABLE services ADD COLUMN state TEXT NOT NULL DEFAULT 'stopped';
ALTER TABLE services ADD COLUMN pid INTEGER;
ALTER TABLE services ADD COLUMN proc_start INTEGER;
ALTER TABLE services ADD COLUMN started_at INTEGER;
ALTER TABLE services ADD COLUMN restarts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE services ADD COLUMN last_exit_code INTEGER;
ALTER TABLE services ADD COLUMN last_exit_signal INTEGER;
ALTER TABLE services ADD COLUMN last_exit_at INTEGER;
ALTER TABLE services ADD COLUMN uid INTEGER;
ALTER TABLE services ADD COLUMN gid INTEGER;
ALTER TABLE services ADD COLUMN reason TEXT;	-- why it is failed, etc.
ALTER TABLE services ADD COLUMN job_id INTEGER;	-- install it waits for

-- The artifact each incarnation ran.
ALTER TABLE service_runs ADD COLUMN artifact TEXT;

-- Every incarnation, for audits:
--   sqlite3 PREFIX/state/nodee.db 'select * from start_history'
CREATE VIEW start_history AS
SELECT
	r.coordinate AS coordinate,
	r.artifact AS artifact,
	r.pid AS pid,
	strftime('%Y-%m-%dT%H:%M:%fZ', r.started_at / 1000.0, 'unixepoch')
	    AS started,
	CASE WHEN r.ended_at IS NOT NULL THEN strftime('%Y-%m-%dT%H:%M:%fZ',
	    r.ended_at / 1000.0, 'unixepoch') END AS ended,
	CASE
	    WHEN r.exit_signal IS NOT NULL THEN 'signal ' || r.exit_signal
	    WHEN r.exit_code IS NOT NULL THEN 'code ' || r.exit_code
	    WHEN r.ended_at IS NOT NULL THEN 'unknown'
	END AS exit,
	r.reason AS reason
FROM service_runs r
ORDER BY r.id;
