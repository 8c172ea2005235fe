-- nodee schema, version 1: the tables every later part writes to.
-- Times are Unix epoch milliseconds (UTC); JSON columns hold JSON text.

-- Every install, removal and runtime-directory preparation is a job row
-- before any work starts.
CREATE TABLE jobs (
	id		INTEGER PRIMARY KEY,
	kind		TEXT NOT NULL,
	subject		TEXT NOT NULL,
	state		TEXT NOT NULL DEFAULT 'queued'
	    CHECK (state IN ('queued', 'running', 'succeeded', 'failed',
	    'cancelled')),
	phase		TEXT,
	params		TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(params)),
	bytes_done	INTEGER NOT NULL DEFAULT 0,
	bytes_total	INTEGER,
	error		TEXT,
	created_at	INTEGER NOT NULL,
	started_at	INTEGER,
	finished_at	INTEGER
);
CREATE INDEX jobs_state ON jobs (state, id);

-- Installed artifacts: one row per groupId:artifactId:version.
CREATE TABLE artifacts (
	group_id	TEXT NOT NULL,
	artifact_id	TEXT NOT NULL,
	version		TEXT NOT NULL,
	path		TEXT NOT NULL,
	size_bytes	INTEGER NOT NULL DEFAULT 0,
	file_count	INTEGER NOT NULL DEFAULT 0,
	sha256		TEXT,
	verified	TEXT NOT NULL DEFAULT 'none',
	installed_at	INTEGER NOT NULL,
	job_id		INTEGER REFERENCES jobs (id),
	PRIMARY KEY (group_id, artifact_id, version)
);

-- Services: the start spec and the state the operator asked for.
CREATE TABLE services (
	coordinate	TEXT PRIMARY KEY,
	spec		TEXT NOT NULL CHECK (json_valid(spec)),
	desired_state	TEXT NOT NULL DEFAULT 'running'
	    CHECK (desired_state IN ('running', 'stopped')),
	created_at	INTEGER NOT NULL,
	updated_at	INTEGER NOT NULL
);

-- One row per incarnation of a service; history outlives the service.
CREATE TABLE service_runs (
	id		INTEGER PRIMARY KEY,
	coordinate	TEXT NOT NULL,	-- kept after the service is deleted
	pid		INTEGER,
	proc_start	INTEGER,
	reason		TEXT NOT NULL
	    CHECK (reason IN ('api', 'restart', 'boot', 'adopted')),
	started_at	INTEGER NOT NULL,
	ended_at	INTEGER,
	exit_code	INTEGER,
	exit_signal	INTEGER
);
CREATE INDEX service_runs_coordinate ON service_runs (coordinate, id);

-- The audit log: every job and lifecycle event.
CREATE TABLE events (
	id		INTEGER PRIMARY KEY,
	time		INTEGER NOT NULL,
	kind		TEXT NOT NULL,
	subject		TEXT NOT NULL DEFAULT '',
	detail		TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(detail))
);
CREATE INDEX events_kind ON events (kind, id);
