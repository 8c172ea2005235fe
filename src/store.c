/*
 * store: opens connections, applies migrations and writes events.
 *
 * Each thread gets its own connection through a thread-specific key; the
 * key's destructor closes it when the thread exits, so the HTTP pool
 * threads need no explicit clean-up.  synchronous=FULL because nodee's
 * state (what should run, what is installed) must survive a power loss.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "embed.h"
#include "log.h"
#include "metrics.h"
#include "store.h"

#define STORE_BUSY_MS	5000
#define STORE_HEALTH_MS	2000

static __thread struct store_actor	store_actor;
static __thread int			store_actor_on;
static struct log_limit		store_health_log;
static int	store_busy(void *, int);
static pthread_key_t	store_key;
static pthread_once_t	store_once = PTHREAD_ONCE_INIT;
static char		store_path[4096];

static void	store_key_init(void);
static void	store_conn_free(void *);
static int	store_migration_version(const char *);
static int	store_apply(sqlite3 *, const struct embed_file *, int, char *,
		    size_t);

/*
 * Opens the database at path for the calling thread, creating it if it is
 * new, and brings its schema up to date.  Other threads connect lazily
 * through store_db().
 */
int
store_open(const char *path, char *err, size_t errlen)
{
	sqlite3	*db;

	pthread_once(&store_once, store_key_init);
	snprintf(store_path, sizeof(store_path), "%s", path);
	if ((db = store_db()) == NULL) {
		snprintf(err, errlen, "cannot open database %s (see the log "
		    "above)", path);
		return -1;
	}
	return store_migrate(db, err, errlen);
}

/* Closes the calling thread's connection; other threads close their own. */
void
store_close(void)
{
	sqlite3	*db;

	pthread_once(&store_once, store_key_init);
	if ((db = pthread_getspecific(store_key)) != NULL) {
		pthread_setspecific(store_key, NULL);
		store_conn_free(db);
	}
}

/* The calling thread's connection, opened on first use; NULL on error. */
sqlite3 *
store_db(void)
{
	sqlite3	*db;
	char	 err[256];
	int	 rc;

	pthread_once(&store_once, store_key_init);
	if ((db = pthread_getspecific(store_key)) != NULL)
		return db;
	rc = sqlite3_open_v2(store_path, &db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		log_error("store", "open %s: %s", store_path,
		    db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
		sqlite3_close(db);
		return NULL;
	}
	if (store_configure(db, err, sizeof(err)) != 0) {
		log_error("store", "%s: %s", store_path, err);
		sqlite3_close(db);
		return NULL;
	}
	pthread_setspecific(store_key, db);
	return db;
}

/*
 * SQLite's own busy timeout, counted for /metrics: sleeps that grow from
 * 1 ms to 50 ms, until STORE_BUSY_MS have passed.
 */
static int
store_busy(void *arg, int n)
{
	static const int	delays[] = { 1, 2, 5, 10, 15, 20, 25, 25, 50 };
	const int		ndelays = sizeof(delays) / sizeof(delays[0]);
	int			waited = 0, i;

	(void)arg;
	for (i = 0; i < n && i < ndelays; i++)
		waited += delays[i];
	if (n >= ndelays)
		waited += (n - ndelays) * delays[ndelays - 1];
	if (waited >= STORE_BUSY_MS) {
		metrics_add(MC_STORE_BUSY_TIMEOUTS, 1);
		return 0;
	}
	if (n == 0)
		metrics_add(MC_STORE_BUSY_WAITS, 1);
	sqlite3_sleep(n < ndelays ? delays[n] : delays[ndelays - 1]);
	return 1;
}

int
store_configure(sqlite3 *db, char *err, size_t errlen)
{
	static const char	*pragmas =
	    "PRAGMA journal_mode = WAL;"
	    "PRAGMA foreign_keys = ON;"
	    "PRAGMA synchronous = FULL;";
	char			*msg = NULL;

	sqlite3_busy_handler(db, store_busy, NULL);
	if (sqlite3_exec(db, pragmas, NULL, NULL, &msg) != SQLITE_OK) {
		snprintf(err, errlen, "%s", msg ? msg : "pragma failed");
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

/*
 * The highest migration applied to db: 0 when schema_migrations is empty,
 * -1 on error (also before store_migrate has created the table).
 */
int
store_schema_version(sqlite3 *db)
{
	sqlite3_stmt	*st;
	int		 v = -1;

	if (sqlite3_prepare_v2(db, "SELECT coalesce(max(version), 0) FROM "
	    "schema_migrations", -1, &st, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return v;
}

/* The highest migration this binary carries. */
int
store_latest_version(void)
{
	const struct embed_file	*f;
	int			 v, max = 0;

	for (f = embed_files; f->name != NULL; f++)
		if ((v = store_migration_version(f->name)) > max)
			max = v;
	return max;
}

/*
 * Applies, in order, every embedded migration newer than the database's
 * version, each in its own transaction together with its schema_migrations
 * row, so that a crash leaves the schema at one version or the next.
 */
int
store_migrate(sqlite3 *db, char *err, size_t errlen)
{
	const struct embed_file	*f, *next;
	char			*msg = NULL;
	int			 cur, v, best, latest;

	if (sqlite3_exec(db, "CREATE TABLE IF NOT EXISTS schema_migrations ("
	    "version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
	    "applied_at INTEGER NOT NULL)", NULL, NULL, &msg) != SQLITE_OK) {
		snprintf(err, errlen, "cannot create schema_migrations: %s",
		    msg ? msg : "?");
		sqlite3_free(msg);
		return -1;
	}
	if ((cur = store_schema_version(db)) < 0) {
		snprintf(err, errlen, "cannot read schema version: %s",
		    sqlite3_errmsg(db));
		return -1;
	}
	latest = store_latest_version();
	if (cur > latest) {
		snprintf(err, errlen, "database schema version %d is newer than "
		    "this nodee knows (%d): run a newer nodee", cur, latest);
		return -1;
	}
	for (;;) {
		next = NULL;
		best = 0;
		for (f = embed_files; f->name != NULL; f++) {
			v = store_migration_version(f->name);
			if (v > cur && (next == NULL || v < best)) {
				next = f;
				best = v;
			}
		}
		if (next == NULL)
			break;
		if (store_apply(db, next, best, err, errlen) != 0)
			return -1;
		log_info("store", "applied migration %s", next->name);
		cur = best;
	}
	return 0;
}

/*
 * Records an event.  detail may be NULL.  Returns -1 if the row could not
 * be written; the caller decides whether that matters.
 */
/*
 * Can the store still take a write?  A real one (the health row, synced
 * like every commit), at most every STORE_HEALTH_MS; the answers between
 * are the last one's.  0, or -1 with why.
 */
int
store_health(char *why, size_t whylen)
{
	static pthread_mutex_t	 mtx = PTHREAD_MUTEX_INITIALIZER;
	static int64_t		 last;
	static int		 ok = 1;
	static char		 reason[256];
	sqlite3			*db;
	sqlite3_stmt		*st;
	int64_t			 now = store_mono_ms();
	int			 rc;

	pthread_mutex_lock(&mtx);
	if (last == 0 || now - last >= STORE_HEALTH_MS) {
		last = now;
		if ((db = store_db()) == NULL) {
			ok = 0;
			snprintf(reason, sizeof(reason), "cannot open %.200s",
			    store_path);
		} else if (sqlite3_prepare_v2(db, "UPDATE health SET "
		    "checked_at = ?1 WHERE id = 1", -1, &st, NULL) !=
		    SQLITE_OK) {
			ok = 0;
			snprintf(reason, sizeof(reason), "%s",
			    sqlite3_errmsg(db));
		} else {
			sqlite3_bind_int64(st, 1, store_now_ms());
			rc = sqlite3_step(st);
			ok = rc == SQLITE_DONE;
			if (!ok)
				snprintf(reason, sizeof(reason), "cannot write "
				    "to %.120s: %.100s", store_path,
				    sqlite3_errmsg(db));
			sqlite3_finalize(st);
		}
		if (!ok)
			log_limited(&store_health_log, 60000, LOG_LVL_ERROR,
			    "store", "%s", reason);
	}
	rc = ok ? 0 : -1;
	snprintf(why, whylen, "%s", ok ? "" : reason);
	pthread_mutex_unlock(&mtx);
	return rc;
}

/* This thread's actor, copied; NULL: events are nobody's request. */
void
store_actor_set(const struct store_actor *a)
{
	store_actor_on = a != NULL;
	if (a != NULL)
		store_actor = *a;
}

const struct store_actor *
store_actor_get(void)
{
	return store_actor_on ? &store_actor : NULL;
}

int
store_event(const char *kind, const char *subject, const json_t *detail)
{
	sqlite3		*db;
	sqlite3_stmt	*st;
	json_t		*d;
	char		*text;
	int		 rc;

	if ((db = store_db()) == NULL)
		return -1;
	if (store_actor_on && (d = detail ? json_copy((json_t *)detail) :
	    json_object()) != NULL) {
		json_object_set_new(d, "by", json_pack("{s:s, s:s}", "addr",
		    store_actor.addr, "via", store_actor.via));
		text = json_dumps(d, JSON_COMPACT);
		json_decref(d);
	} else
		text = detail ? json_dumps(detail, JSON_COMPACT) : NULL;
	if (sqlite3_prepare_v2(db, "INSERT INTO events (time, kind, subject, "
	    "detail) VALUES (?, ?, ?, ?)", -1, &st, NULL) != SQLITE_OK) {
		log_error("store", "event %s: %s", kind, sqlite3_errmsg(db));
		free(text);
		return -1;
	}
	sqlite3_bind_int64(st, 1, store_now_ms());
	sqlite3_bind_text(st, 2, kind, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, subject ? subject : "", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, text ? text : "{}", -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	free(text);
	if (rc != SQLITE_DONE) {
		log_error("store", "event %s: %s", kind, sqlite3_errmsg(db));
		return -1;
	}
	return 0;
}

/*
 * Events matching q, as a JSON array: newest first, or, when q->after is
 * not 0, oldest first after it (what a stream has not sent yet; -1 for
 * all).  detail is parsed.
 */
json_t *
store_events(sqlite3 *db, const struct store_event_query *q)
{
	sqlite3_stmt	*st;
	json_t		*a = json_array();
	size_t		 n;

	n = q->kind ? strlen(q->kind) : 0;
	if (sqlite3_prepare_v2(db, q->after != 0 ?
	    "SELECT id, time, kind, subject, detail FROM events WHERE "
	    "id > ?6 ORDER BY id LIMIT ?7" :
	    "SELECT id, time, kind, subject, detail FROM events WHERE "
	    "(?1 IS NULL OR kind = ?1) AND (?2 IS NULL OR "
	    "substr(kind, 1, length(?2)) = ?2) AND (?3 IS NULL OR "
	    "subject = ?3) AND time >= ?4 AND (?5 = 0 OR id < ?5) "
	    "ORDER BY id DESC LIMIT ?7", -1, &st, NULL) != SQLITE_OK) {
		log_error("store", "events: %s", sqlite3_errmsg(db));
		return a;
	}
	/* "service.*" is a prefix, anything else the whole kind. */
	if (n > 0 && q->kind[n - 1] == '*')
		sqlite3_bind_text(st, 2, q->kind, (int)n - 1, SQLITE_STATIC);
	else if (n > 0)
		sqlite3_bind_text(st, 1, q->kind, -1, SQLITE_STATIC);
	if (q->subject != NULL)
		sqlite3_bind_text(st, 3, q->subject, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, q->since);
	sqlite3_bind_int64(st, 5, q->before);
	sqlite3_bind_int64(st, 6, q->after);
	sqlite3_bind_int(st, 7, q->limit);
	while (sqlite3_step(st) == SQLITE_ROW) {
		json_t	*detail = json_loads((const char *)
		    sqlite3_column_text(st, 4), 0, NULL);

		json_array_append_new(a, json_pack("{s:I, s:I, s:s, s:s, s:o}",
		    "id", (json_int_t)sqlite3_column_int64(st, 0),
		    "time", (json_int_t)sqlite3_column_int64(st, 1),
		    "kind", (const char *)sqlite3_column_text(st, 2),
		    "subject", (const char *)sqlite3_column_text(st, 3),
		    "detail", detail ? detail : json_object()));
	}
	sqlite3_finalize(st);
	return a;
}

/* The newest event's id, 0 when there is none. */
int64_t
store_last_event(sqlite3 *db)
{
	sqlite3_stmt	*st;
	int64_t		 id = 0;

	if (sqlite3_prepare_v2(db, "SELECT max(id) FROM events", -1, &st,
	    NULL) != SQLITE_OK)
		return 0;
	if (sqlite3_step(st) == SQLITE_ROW)
		id = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return id;
}

int64_t
store_now_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Milliseconds of CLOCK_MONOTONIC, for deadlines and rate limits. */
int64_t
store_mono_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
store_key_init(void)
{
	if (pthread_key_create(&store_key, store_conn_free) != 0)
		fatal("pthread_key_create: %s", strerror(errno));
}

static void
store_conn_free(void *p)
{
	if (sqlite3_close_v2(p) != SQLITE_OK)
		log_warn("store", "close: %s", sqlite3_errmsg(p));
}

/* "sql/0001_init.sql" -> 1; 0 for embedded files that are not migrations. */
static int
store_migration_version(const char *name)
{
	const char	*base;
	int		 v = 0;

	if (strncmp(name, "sql/", 4) != 0)
		return 0;
	base = name + 4;
	while (*base >= '0' && *base <= '9' && v < 100000)
		v = v * 10 + (*base++ - '0');
	if (*base != '_' || strcmp(name + strlen(name) - 4, ".sql") != 0)
		return 0;
	return v;
}

static int
store_apply(sqlite3 *db, const struct embed_file *f, int version, char *err,
    size_t errlen)
{
	sqlite3_stmt	*st = NULL;
	char		*msg = NULL;

	if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, &msg) != SQLITE_OK)
		goto fail;
	if (sqlite3_exec(db, (const char *)f->data, NULL, NULL, &msg) !=
	    SQLITE_OK)
		goto fail;
	if (sqlite3_prepare_v2(db, "INSERT INTO schema_migrations (version, "
	    "name, applied_at) VALUES (?, ?, ?)", -1, &st, NULL) != SQLITE_OK)
		goto fail;
	sqlite3_bind_int(st, 1, version);
	sqlite3_bind_text(st, 2, f->name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, store_now_ms());
	if (sqlite3_step(st) != SQLITE_DONE)
		goto fail;
	sqlite3_finalize(st);
	st = NULL;
	if (sqlite3_exec(db, "COMMIT", NULL, NULL, &msg) != SQLITE_OK)
		goto fail;
	return 0;
fail:
	snprintf(err, errlen, "migration %s failed: %s", f->name,
	    msg ? msg : sqlite3_errmsg(db));
	sqlite3_free(msg);
	sqlite3_finalize(st);
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}
