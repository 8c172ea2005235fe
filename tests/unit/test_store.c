/*
 * test_store: the database under nodee's state.  Migrations build the
 * schema on an empty file, do nothing the second time, and refuse a
 * database written by a newer nodee; the connection settings that make
 * state survive a crash are really in effect; events land as rows, from
 * the thread that opened the store and from any other.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>
#include <sqlite3.h>

#include "embed.h"
#include "store.h"
#include "unit.h"

#define ERRLEN	1024

static void	test_migrate_empty(void **);
static void	test_migrate_again(void **);
static void	test_migrate_newer(void **);
static void	test_configure(void **);
static void	test_open_event(void **);
static void	test_open_bad_path(void **);
static void	test_events_query(void **);

static sqlite3	*db_open(const char *);
static int64_t	 query_int(sqlite3 *, const char *);
static void	 query_text(sqlite3 *, const char *, char *, size_t);
static int	 table_exists(sqlite3 *, const char *);
static void	*event_thread(void *);

int
main(void)
{
	const struct CMUnitTest	tests[] = {
		cmocka_unit_test_setup_teardown(test_migrate_empty,
		    unit_dir_setup, unit_dir_teardown),
		cmocka_unit_test_setup_teardown(test_migrate_again,
		    unit_dir_setup, unit_dir_teardown),
		cmocka_unit_test_setup_teardown(test_migrate_newer,
		    unit_dir_setup, unit_dir_teardown),
		cmocka_unit_test_setup_teardown(test_configure,
		    unit_dir_setup, unit_dir_teardown),
		cmocka_unit_test_setup_teardown(test_open_event,
		    unit_dir_setup, unit_dir_teardown),
		cmocka_unit_test_setup_teardown(test_open_bad_path,
		    unit_dir_setup, unit_dir_teardown),
		cmocka_unit_test_setup_teardown(test_events_query,
		    unit_dir_setup, unit_dir_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

static void
test_migrate_empty(void **state)
{
	static const char		*tables[] = {
		"schema_migrations", "jobs", "artifacts", "services",
		"service_runs", "events",
	};
	const struct embed_file		*f;
	sqlite3				*db;
	sqlite3_stmt			*st;
	char				 err[ERRLEN];
	size_t				 i;
	int				 nsql = 0, found;

	db = db_open(*state);
	assert_true(store_latest_version() >= 1);
	if (store_migrate(db, err, sizeof(err)) != 0)
		fail_msg("migrate: %s", err);
	assert_int_equal(store_schema_version(db), store_latest_version());
	for (i = 0; i < nitems(tables); i++)
		if (!table_exists(db, tables[i]))
			fail_msg("table %s missing after migration", tables[i]);

	/* Each embedded migration is recorded once, by its file name. */
	for (f = embed_files; f->name != NULL; f++) {
		if (strncmp(f->name, "sql/", 4) != 0)
			continue;
		nsql++;
		assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM "
		    "schema_migrations WHERE name = ?", -1, &st, NULL),
		    SQLITE_OK);
		sqlite3_bind_text(st, 1, f->name, -1, SQLITE_STATIC);
		assert_int_equal(sqlite3_step(st), SQLITE_ROW);
		found = sqlite3_column_int(st, 0);
		sqlite3_finalize(st);
		if (found != 1)
			fail_msg("migration %s recorded %d times", f->name,
			    found);
	}
	assert_true(nsql >= 1);
	assert_int_equal(query_int(db, "SELECT count(*) FROM "
	    "schema_migrations"), nsql);
	assert_int_equal(query_int(db, "SELECT count(*) FROM schema_migrations "
	    "WHERE name = 'sql/0001_init.sql' AND version = 1"), 1);
	/* No transaction may be left open by a migration. */
	assert_int_equal(sqlite3_get_autocommit(db), 1);
	sqlite3_close(db);
}

static void
test_migrate_again(void **state)
{
	sqlite3	*db;
	char	 err[ERRLEN];
	int64_t	 rows, applied_at;
	int	 version;

	db = db_open(*state);
	if (store_migrate(db, err, sizeof(err)) != 0)
		fail_msg("migrate: %s", err);
	version = store_schema_version(db);
	rows = query_int(db, "SELECT count(*) FROM schema_migrations");
	applied_at = query_int(db, "SELECT max(applied_at) FROM "
	    "schema_migrations");
	assert_int_equal(sqlite3_exec(db, "INSERT INTO events (time, kind) "
	    "VALUES (1, 'before.restart')", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);

	/* A restart: a new connection migrates the same file again. */
	db = db_open(*state);
	if (store_migrate(db, err, sizeof(err)) != 0)
		fail_msg("second migrate: %s", err);
	assert_int_equal(store_schema_version(db), version);
	assert_int_equal(query_int(db, "SELECT count(*) FROM "
	    "schema_migrations"), rows);
	assert_int_equal(query_int(db, "SELECT max(applied_at) FROM "
	    "schema_migrations"), applied_at);
	/* Nothing was re-created: the data written in between is there. */
	assert_int_equal(query_int(db, "SELECT count(*) FROM events WHERE "
	    "kind = 'before.restart'"), 1);
	sqlite3_close(db);
}

static void
test_migrate_newer(void **state)
{
	sqlite3	*db;
	char	 err[ERRLEN], sql[256], want[64];
	int	 newer = store_latest_version() + 1;

	db = db_open(*state);
	snprintf(sql, sizeof(sql), "CREATE TABLE schema_migrations ("
	    "version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
	    "applied_at INTEGER NOT NULL); INSERT INTO schema_migrations "
	    "VALUES (%d, 'sql/%04d_future.sql', 0)", newer, newer);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);

	err[0] = '\0';
	assert_int_equal(store_migrate(db, err, sizeof(err)), -1);
	assert_contains(err, "newer");
	snprintf(want, sizeof(want), "%d", newer);
	assert_contains(err, want);
	/* Refused before touching the schema. */
	assert_int_equal(store_schema_version(db), newer);
	assert_false(table_exists(db, "jobs"));
	assert_false(table_exists(db, "events"));
	sqlite3_close(db);
}

static void
test_configure(void **state)
{
	sqlite3	*db;
	char	 mode[32], err[ERRLEN];

	db = db_open(*state);
	query_text(db, "PRAGMA journal_mode", mode, sizeof(mode));
	assert_string_equal(mode, "wal");
	assert_int_equal(query_int(db, "PRAGMA foreign_keys"), 1);
	/* FULL: what should run must survive a power loss. */
	assert_int_equal(query_int(db, "PRAGMA synchronous"), 2);

	/* foreign_keys is really enforced on the migrated schema. */
	if (store_migrate(db, err, sizeof(err)) != 0)
		fail_msg("migrate: %s", err);
	assert_int_not_equal(sqlite3_exec(db, "INSERT INTO artifacts "
	    "(group_id, artifact_id, version, path, installed_at, job_id) "
	    "VALUES ('g', 'a', '1', '/x', 0, 999)", NULL, NULL, NULL),
	    SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "INSERT INTO jobs (id, kind, "
	    "subject, created_at) VALUES (999, 'install', 'g:a:1', 0); "
	    "INSERT INTO artifacts (group_id, artifact_id, version, path, "
	    "installed_at, job_id) VALUES ('g', 'a', '1', '/x', 0, 999)",
	    NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

static void
test_open_event(void **state)
{
	json_t		*detail;
	sqlite3		*db, *other;
	pthread_t	 t;
	void		*thread_db;
	char		 path[PATH_MAX], err[ERRLEN], text[256];
	int64_t		 before, after, id;

	unit_path(path, *state, "nodee.db");
	if (store_open(path, err, sizeof(err)) != 0)
		fail_msg("store_open: %s", err);
	db = store_db();
	assert_non_null(db);
	/* One connection per thread, reused. */
	assert_ptr_equal(store_db(), db);
	assert_int_equal(store_schema_version(db), store_latest_version());

	detail = json_pack("{s:i, s:s}", "pid", 42, "listen", "127.0.0.1:1");
	assert_non_null(detail);
	before = store_now_ms();
	assert_int_equal(store_event("daemon.started", "vm-1", detail), 0);
	after = store_now_ms();
	json_decref(detail);
	assert_int_equal(store_event("daemon.stopped", NULL, NULL), 0);

	id = query_int(db, "SELECT id FROM events WHERE kind = "
	    "'daemon.started'");
	query_text(db, "SELECT subject FROM events WHERE kind = "
	    "'daemon.started'", text, sizeof(text));
	assert_string_equal(text, "vm-1");
	assert_int_equal(query_int(db, "SELECT json_extract(detail, '$.pid') "
	    "FROM events WHERE kind = 'daemon.started'"), 42);
	query_text(db, "SELECT json_extract(detail, '$.listen') FROM events "
	    "WHERE kind = 'daemon.started'", text, sizeof(text));
	assert_string_equal(text, "127.0.0.1:1");
	assert_in_range(query_int(db, "SELECT time FROM events WHERE kind = "
	    "'daemon.started'"), before, after);
	/* No subject and no detail still make a valid row. */
	query_text(db, "SELECT subject || '|' || detail FROM events WHERE "
	    "kind = 'daemon.stopped'", text, sizeof(text));
	assert_string_equal(text, "|{}");
	assert_true(query_int(db, "SELECT id FROM events WHERE kind = "
	    "'daemon.stopped'") > id);

	/* Another thread gets its own connection to the same database. */
	assert_int_equal(pthread_create(&t, NULL, event_thread, db), 0);
	assert_int_equal(pthread_join(t, &thread_db), 0);
	assert_non_null(thread_db);
	assert_int_equal(query_int(db, "SELECT count(*) FROM events WHERE "
	    "kind = 'thread.event'"), 1);

	store_close();
	/* Closing twice is harmless: the connection is gone already. */
	store_close();

	/* The rows are on disk, not only in the closed connection. */
	assert_int_equal(sqlite3_open(path, &other), SQLITE_OK);
	assert_int_equal(query_int(other, "SELECT count(*) FROM events"), 3);
	sqlite3_close(other);
}

/* The kinds of the events q finds, joined with ','. */
static void
events_kinds(sqlite3 *db, const struct store_event_query *q, char *out,
    size_t len)
{
	json_t	*a, *e;
	size_t	 i;

	out[0] = '\0';
	a = store_events(db, q);
	json_array_foreach(a, i, e)
		snprintf(out + strlen(out), len - strlen(out), "%s%s",
		    i ? "," : "", json_string_value(json_object_get(e,
		    "kind")));
	json_decref(a);
}

/* GET /api/v1/events and the live stream read through store_events. */
static void
test_events_query(void **state)
{
	struct store_event_query q = { 0 };
	sqlite3		*db;
	json_t		*a;
	char		 path[PATH_MAX], err[ERRLEN], got[512];

	unit_path(path, *state, "nodee.db");
	if (store_open(path, err, sizeof(err)) != 0)
		fail_msg("store_open: %s", err);
	db = store_db();
	q.limit = 100;
	events_kinds(db, &q, got, sizeof(got));
	assert_string_equal(got, "");
	assert_int_equal(store_last_event(db), 0);
	assert_int_equal(store_event("service.started", "a", NULL), 0);
	assert_int_equal(store_event("service.exited", "b", NULL), 0);
	assert_int_equal(store_event("services", "a", NULL), 0);
	assert_int_equal(store_event("artifact.install.requested", "a",
	    NULL), 0);
	assert_int_equal(store_last_event(db), 4);

	events_kinds(db, &q, got, sizeof(got));	/* newest first */
	assert_string_equal(got, "artifact.install.requested,services,"
	    "service.exited,service.started");
	q.kind = "service.*";	/* a prefix, and "services" is not in it */
	events_kinds(db, &q, got, sizeof(got));
	assert_string_equal(got, "service.exited,service.started");
	q.kind = "service.";	/* without '*': the whole kind */
	events_kinds(db, &q, got, sizeof(got));
	assert_string_equal(got, "");
	q.kind = NULL;
	q.subject = "a";
	events_kinds(db, &q, got, sizeof(got));
	assert_string_equal(got, "artifact.install.requested,services,"
	    "service.started");
	q.subject = NULL;
	q.before = 3;	/* paging */
	q.limit = 1;
	events_kinds(db, &q, got, sizeof(got));
	assert_string_equal(got, "service.exited");
	q.before = 0;
	q.limit = 100;
	q.since = store_now_ms() + 60000;
	events_kinds(db, &q, got, sizeof(got));
	assert_string_equal(got, "");
	q.since = 0;
	q.after = 2;	/* a stream's view: oldest first after an id */
	events_kinds(db, &q, got, sizeof(got));
	assert_string_equal(got, "services,artifact.install.requested");
	q.after = -1;
	q.limit = 2;
	a = store_events(db, &q);
	assert_int_equal(json_array_size(a), 2);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(a,
	    0), "id")), 1);
	assert_true(json_is_object(json_object_get(json_array_get(a, 0),
	    "detail")));
	json_decref(a);
	store_close();
}

static void
test_open_bad_path(void **state)
{
	char	path[PATH_MAX], err[ERRLEN];

	/* An open connection would be reused whatever the path. */
	store_close();
	unit_path(path, *state, "no/such/dir/nodee.db");
	err[0] = '\0';
	assert_int_equal(store_open(path, err, sizeof(err)), -1);
	assert_contains(err, path);
	store_close();
}

/* A configured connection to dir/test.db, as store_db() would make it. */
static sqlite3 *
db_open(const char *dir)
{
	sqlite3	*db;
	char	 path[PATH_MAX], err[ERRLEN];

	unit_path(path, dir, "test.db");
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	if (store_configure(db, err, sizeof(err)) != 0)
		fail_msg("store_configure: %s", err);
	return db;
}

static int64_t
query_int(sqlite3 *db, const char *sql)
{
	sqlite3_stmt	*st;
	int64_t		 v;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		fail_msg("%s: %s", sql, sqlite3_errmsg(db));
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

static void
query_text(sqlite3 *db, const char *sql, char *out, size_t outlen)
{
	sqlite3_stmt		*st;
	const unsigned char	*s;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		fail_msg("%s: %s", sql, sqlite3_errmsg(db));
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	s = sqlite3_column_text(st, 0);
	snprintf(out, outlen, "%s", s ? (const char *)s : "(null)");
	sqlite3_finalize(st);
}

static int
table_exists(sqlite3 *db, const char *name)
{
	sqlite3_stmt	*st;
	int		 n;

	assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM "
	    "sqlite_master WHERE type = 'table' AND name = ?", -1, &st, NULL),
	    SQLITE_OK);
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	n = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return n;
}

/*
 * Runs in a second thread: its connection must differ from the opener's,
 * and the thread-exit destructor must close it (the sanitized build
 * reports a leak otherwise).  cmocka's asserts do not work off the main
 * thread, so it returns NULL on failure.
 */
static void *
event_thread(void *opener)
{
	sqlite3	*db;

	if ((db = store_db()) == NULL || db == opener)
		return NULL;
	if (store_event("thread.event", "t", NULL) != 0)
		return NULL;
	return db;
}
