-- nodee schema, version 5: a service's spec as given, secrets included.
-- spec (shown by the API) has S3 secrets replaced by "(hidden)" and URLs
-- without user information or query string; secret_spec is what the
-- supervisor and the prepare and snapshot jobs use, and is never returned.
ALTER TABLE services ADD COLUMN secret_spec TEXT;
-- "drain" or "stop" while one is under way: the snapshot it asks for
-- is taken also when the process ends under the next nodee.
ALTER TABLE services ADD COLUMN ending TEXT;
