-- nodee schema, version 6: one row /healthz writes (at most every 2 s) to
-- prove the store still takes writes, so that a database nobody can
-- write shows as 503 there before a state change finds out.
CREATE TABLE health (
	id		INTEGER PRIMARY KEY CHECK (id = 1),
	checked_at	INTEGER NOT NULL
);
INSERT INTO health (id, checked_at) VALUES (1, 0);
