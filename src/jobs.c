/*
 * jobs: the table is the queue.  A worker claims the oldest queued job
 * whose subject has no running job, in one write transaction, so two
 * workers never take the same row and two jobs never work on the same
 * artifact at once.  Wake-ups go through one mutex and condition
 * variable with a generation counter, so a job inserted while every
 * worker is busy is not missed.
 *
 * Cancellation: a queued job is cancelled in the table at once; a running
 * one gets its flag set here and its cancel_requested column set, and its
 * run function sees jobs_cancelled() at its next check (download and
 * unpack check often).  At shutdown running jobs are interrupted and put
 * back in the queue, to be run again at the next start.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fs.h"
#include "jobs.h"
#include "log.h"
#include "store.h"

#define JOBS_MAX_WORKERS	64
#define JOBS_PROGRESS_MS	100

static pthread_mutex_t		 jobs_mtx = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t		 jobs_cond = PTHREAD_COND_INITIALIZER;
static unsigned long		 jobs_gen;
static int			 jobs_stopping;
static pthread_t		 jobs_threads[JOBS_MAX_WORKERS];
static struct job		*jobs_running[JOBS_MAX_WORKERS];
static unsigned			 jobs_nthreads;
static const struct job_kind	*jobs_kinds;
static void			*jobs_arg;
static char			 jobs_tmp[3968];

static void	*jobs_worker(void *);
static int	 jobs_claim(sqlite3 *, struct job *);
static void	 jobs_run(sqlite3 *, struct job *, unsigned);
static void	 jobs_finish(sqlite3 *, struct job *, const char *,
		    const char *);
static json_t	*jobs_row(sqlite3_stmt *);
static int	 jobs_cancel_requested(sqlite3 *, int64_t);

/*
 * Before the workers start: jobs a crash left running are queued again
 * and everything in tmp/ is removed (no job is running, and nothing there
 * is trusted).  Returns the number of jobs queued again, -1 on error.
 */
int
jobs_recover(const char *tmpdir)
{
	sqlite3		*db = store_db();
	sqlite3_stmt	*st;
	int		 n = 0;

	if (db == NULL)
		return -1;
	/*
	 * A job that was running at three crashes may be what crashes
	 * nodee (a huge archive, say): it is not run a fourth time.
	 */
	if (sqlite3_prepare_v2(db, "UPDATE jobs SET state = 'failed', error = "
	    "'interrupted by 3 crashes of nodee; not run again', finished_at = "
	    "? WHERE state = 'running' AND runs >= 3 RETURNING id, subject", -1,
	    &st, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, store_now_ms());
		while (sqlite3_step(st) == SQLITE_ROW)
			log_error("jobs", "job %lld (%s) was interrupted by 3 "
			    "crashes; marked failed", sqlite3_column_int64(st,
			    0), sqlite3_column_text(st, 1));
		sqlite3_finalize(st);
	}
	if (sqlite3_prepare_v2(db, "UPDATE jobs SET state = 'queued', "
	    "phase = NULL WHERE state = 'running' RETURNING id, kind, "
	    "subject", -1, &st, NULL) != SQLITE_OK) {
		log_error("jobs", "recover: %s", sqlite3_errmsg(db));
		return -1;
	}
	while (sqlite3_step(st) == SQLITE_ROW) {
		log_warn("jobs", "job %lld (%s %s) was running when nodee "
		    "stopped; it runs again", sqlite3_column_int64(st, 0),
		    sqlite3_column_text(st, 1), sqlite3_column_text(st, 2));
		n++;
	}
	sqlite3_finalize(st);
	if (n > 0) {
		json_t	*d = json_pack("{s:i}", "jobs", n);

		store_event("jobs.requeued", "", d);
		json_decref(d);
	}
	if (fs_rmtree(tmpdir) != 0 || fs_mkdirs(tmpdir, 0700) != 0)
		log_warn("jobs", "cannot empty %s: %s", tmpdir,
		    strerror(errno));
	return n;
}

int
jobs_start(const char *tmpdir, unsigned n, const struct job_kind *kinds,
    void *arg)
{
	unsigned	i;

	if (n > JOBS_MAX_WORKERS)
		n = JOBS_MAX_WORKERS;
	snprintf(jobs_tmp, sizeof(jobs_tmp), "%s", tmpdir);
	jobs_kinds = kinds;
	jobs_arg = arg;
	jobs_stopping = 0;
	for (i = 0; i < n; i++) {
		if (pthread_create(&jobs_threads[i], NULL, jobs_worker,
		    (void *)(uintptr_t)i) != 0) {
			log_error("jobs", "cannot start worker %u", i);
			jobs_nthreads = i;
			jobs_stop();
			return -1;
		}
	}
	jobs_nthreads = n;
	log_info("jobs", "%u workers started", n);
	return 0;
}

/* Interrupts running jobs (they go back to the queue) and joins workers. */
void
jobs_stop(void)
{
	unsigned	i;

	pthread_mutex_lock(&jobs_mtx);
	jobs_stopping = 1;
	jobs_gen++;
	for (i = 0; i < JOBS_MAX_WORKERS; i++)
		if (jobs_running[i] != NULL)
			atomic_store(&jobs_running[i]->cancel, 1);
	pthread_cond_broadcast(&jobs_cond);
	pthread_mutex_unlock(&jobs_mtx);
	for (i = 0; i < jobs_nthreads; i++)
		pthread_join(jobs_threads[i], NULL);
	jobs_nthreads = 0;
}

void
jobs_wake(void)
{
	pthread_mutex_lock(&jobs_mtx);
	jobs_gen++;
	pthread_cond_broadcast(&jobs_cond);
	pthread_mutex_unlock(&jobs_mtx);
}

/*
 * Inserts a queued job; the caller holds a transaction if it must be
 * atomic with its own checks, and calls jobs_wake() after committing.
 * Returns the id, or -1 (the unique index refuses a second active job for
 * the same kind and subject).
 */
int64_t
jobs_insert(sqlite3 *db, const char *kind, const char *subject,
    const json_t *params, const json_t *private)
{
	sqlite3_stmt	*st;
	char		*text, *priv;
	int64_t		 id = -1;

	text = json_dumps(params, JSON_COMPACT);
	priv = private != NULL ? json_dumps(private, JSON_COMPACT) : NULL;
	if (sqlite3_prepare_v2(db, "INSERT INTO jobs (kind, subject, params, "
	    "created_at, private) VALUES (?, ?, ?, ?, ?)", -1, &st, NULL) !=
	    SQLITE_OK) {
		free(text);
		free(priv);
		return -1;
	}
	sqlite3_bind_text(st, 1, kind, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, subject, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, text ? text : "{}", -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, store_now_ms());
	if (priv != NULL)
		sqlite3_bind_text(st, 5, priv, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_DONE)
		id = sqlite3_last_insert_rowid(db);
	sqlite3_finalize(st);
	free(text);
	free(priv);
	return id;
}

/* What a job keeps from the API (a URL whole, credentials); NULL if none. */
json_t *
jobs_private(sqlite3 *db, int64_t id)
{
	sqlite3_stmt	*st;
	json_error_t	 je;
	json_t		*priv = NULL;

	if (sqlite3_prepare_v2(db, "SELECT private FROM jobs WHERE id = ?", -1,
	    &st, NULL) != SQLITE_OK)
		return NULL;
	sqlite3_bind_int64(st, 1, id);
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) !=
	    SQLITE_NULL)
		priv = json_loads((const char *)sqlite3_column_text(st, 0), 0,
		    &je);
	sqlite3_finalize(st);
	return priv;
}

/*
 * Writes j->params back: a job may add what it learnt (an archive it made,
 * what each step did) for the API, the audit and a later retry.
 */
int
jobs_save_params(struct job *j)
{
	sqlite3		*db = store_db();
	sqlite3_stmt	*st;
	char		*text;
	int		 rc = -1;

	if (db == NULL || (text = json_dumps(j->params, JSON_COMPACT)) ==
	    NULL)
		return -1;
	if (sqlite3_prepare_v2(db, "UPDATE jobs SET params = ? WHERE id = ?",
	    -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_text(st, 1, text, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, j->id);
		rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
		sqlite3_finalize(st);
	}
	free(text);
	return rc;
}

/*
 * Cancels a queued or running job.  Returns 0 if the job is cancelled or
 * will stop soon, -1 with err if there is no such job or it has ended.
 */
int
jobs_cancel(int64_t id, char *err, size_t errlen)
{
	sqlite3		*db = store_db();
	sqlite3_stmt	*st;
	struct job	 gone;
	const char	*state = NULL;
	char		 buf[16] = "";
	unsigned	 i;
	int		 changed = 0;

	if (db == NULL) {
		snprintf(err, errlen, "store unavailable");
		return -1;
	}
	memset(&gone, 0, sizeof(gone));
	if (sqlite3_prepare_v2(db, "UPDATE jobs SET state = CASE state WHEN "
	    "'queued' THEN 'cancelled' ELSE state END, finished_at = CASE "
	    "state WHEN 'queued' THEN ?2 ELSE finished_at END, "
	    "error = CASE state WHEN 'queued' THEN 'cancelled by request' "
	    "ELSE error END, cancel_requested = 1 WHERE id = ?1 AND state IN "
	    "('queued', 'running') RETURNING state, kind, subject", -1, &st,
	    NULL) != SQLITE_OK) {
		snprintf(err, errlen, "%s", sqlite3_errmsg(db));
		return -1;
	}
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, store_now_ms());
	if (sqlite3_step(st) == SQLITE_ROW) {
		snprintf(buf, sizeof(buf), "%s", sqlite3_column_text(st, 0));
		snprintf(gone.kind, sizeof(gone.kind), "%s",
		    sqlite3_column_text(st, 1));
		snprintf(gone.subject, sizeof(gone.subject), "%s",
		    sqlite3_column_text(st, 2));
		state = buf;
		changed = 1;
	}
	sqlite3_finalize(st);
	if (!changed) {
		snprintf(err, errlen, "job %lld is not queued or running",
		    (long long)id);
		return -1;
	}
	if (strcmp(state, "cancelled") == 0 && jobs_kinds != NULL) {
		/* Never ran: its kind still records the outcome. */
		const struct job_kind	*k;

		gone.id = id;
		gone.started_ms = store_now_ms();
		for (k = jobs_kinds; k->kind != NULL; k++)
			if (strcmp(k->kind, gone.kind) == 0 && k->done != NULL)
				k->done(&gone, jobs_arg, "cancelled",
				    "cancelled by request");
	}
	if (strcmp(state, "running") == 0) {
		pthread_mutex_lock(&jobs_mtx);
		for (i = 0; i < JOBS_MAX_WORKERS; i++)
			if (jobs_running[i] != NULL &&
			    jobs_running[i]->id == id)
				atomic_store(&jobs_running[i]->cancel, 1);
		pthread_mutex_unlock(&jobs_mtx);
	}
	log_info("jobs", "job %lld: cancel requested (%s)", (long long)id,
	    state);
	return 0;
}

int
jobs_cancelled(const struct job *j)
{
	return atomic_load(&((struct job *)j)->cancel) != 0;
}

/*
 * Records progress.  Written to the store when the phase changes, and
 * otherwise at most every JOBS_PROGRESS_MS, so a fast download does not
 * turn into thousands of writes.
 */
void
jobs_progress(struct job *j, const char *phase, uint64_t done,
    uint64_t total)
{
	sqlite3		*db;
	sqlite3_stmt	*st;
	int64_t		 now = store_mono_ms();
	int		 newphase = strcmp(j->phase, phase) != 0;

	if (!newphase && now - j->progress_ms < JOBS_PROGRESS_MS &&
	    !(total > 0 && done == total))
		return;
	j->progress_ms = now;
	if (phase != j->phase)	/* callers may pass j->phase itself */
		snprintf(j->phase, sizeof(j->phase), "%s", phase);
	if ((db = store_db()) == NULL)
		return;
	if (sqlite3_prepare_v2(db, "UPDATE jobs SET phase = ?, bytes_done = ?, "
	    "bytes_total = ? WHERE id = ?", -1, &st, NULL) != SQLITE_OK)
		return;
	sqlite3_bind_text(st, 1, phase, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)done);
	if (total > 0)
		sqlite3_bind_int64(st, 3, (sqlite3_int64)total);
	else
		sqlite3_bind_null(st, 3);
	sqlite3_bind_int64(st, 4, j->id);
	if (sqlite3_step(st) != SQLITE_DONE)
		log_warn("jobs", "job %lld progress: %s", (long long)j->id,
		    sqlite3_errmsg(db));
	sqlite3_finalize(st);
}

#define JOBS_COLUMNS	"id, kind, subject, state, phase, params, " \
	"bytes_done, bytes_total, error, created_at, started_at, " \
	"finished_at, runs, cancel_requested"

/* One job as JSON, or NULL if there is no such job. */
json_t *
jobs_get(sqlite3 *db, int64_t id)
{
	sqlite3_stmt	*st;
	json_t		*o = NULL;

	if (sqlite3_prepare_v2(db, "SELECT " JOBS_COLUMNS " FROM jobs "
	    "WHERE id = ?", -1, &st, NULL) != SQLITE_OK)
		return NULL;
	sqlite3_bind_int64(st, 1, id);
	if (sqlite3_step(st) == SQLITE_ROW)
		o = jobs_row(st);
	sqlite3_finalize(st);
	return o;
}

/* The queued or running job of this kind and subject, or NULL. */
json_t *
jobs_active(sqlite3 *db, const char *kind, const char *subject)
{
	sqlite3_stmt	*st;
	json_t		*o = NULL;

	if (sqlite3_prepare_v2(db, "SELECT " JOBS_COLUMNS " FROM jobs "
	    "WHERE kind = ? AND subject = ? AND state IN ('queued', "
	    "'running')", -1, &st, NULL) != SQLITE_OK)
		return NULL;
	sqlite3_bind_text(st, 1, kind, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, subject, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW)
		o = jobs_row(st);
	sqlite3_finalize(st);
	return o;
}

/*
 * Jobs newest first, optionally only one state and/or kind, with ids
 * below `before` (0: from the newest); at most limit.  Returns an array.
 */
json_t *
jobs_list(sqlite3 *db, const struct jobs_query *q)
{
	sqlite3_stmt	*st;
	json_t		*a = json_array();

	if (sqlite3_prepare_v2(db, "SELECT " JOBS_COLUMNS " FROM jobs "
	    "WHERE (?1 IS NULL OR state = ?1) AND (?2 IS NULL OR kind = ?2) "
	    "AND (?3 = 0 OR id < ?3) AND (?5 IS NULL OR subject = ?5) AND "
	    "created_at >= ?6 ORDER BY id DESC LIMIT ?4", -1, &st, NULL) !=
	    SQLITE_OK)
		return a;
	if (q->state != NULL)
		sqlite3_bind_text(st, 1, q->state, -1, SQLITE_STATIC);
	if (q->kind != NULL)
		sqlite3_bind_text(st, 2, q->kind, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, q->before);
	sqlite3_bind_int(st, 4, q->limit);
	if (q->subject != NULL)
		sqlite3_bind_text(st, 5, q->subject, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 6, q->since);
	while (sqlite3_step(st) == SQLITE_ROW)
		json_array_append_new(a, jobs_row(st));
	sqlite3_finalize(st);
	return a;
}

static void *
jobs_worker(void *arg)
{
	unsigned	 slot = (unsigned)(uintptr_t)arg;
	sqlite3		*db;
	struct job	*j;
	unsigned long	 gen;
	int		 claimed;

	if ((db = store_db()) == NULL) {
		log_error("jobs", "worker %u has no store connection", slot);
		return NULL;
	}
	for (;;) {
		pthread_mutex_lock(&jobs_mtx);
		gen = jobs_gen;
		if (jobs_stopping) {
			pthread_mutex_unlock(&jobs_mtx);
			break;
		}
		pthread_mutex_unlock(&jobs_mtx);

		if ((j = calloc(1, sizeof(*j))) == NULL)
			break;
		if ((claimed = jobs_claim(db, j)) == 1) {
			jobs_run(db, j, slot);
			json_decref(j->params);
			json_decref(j->private);
			free(j);
			/* A job for the same subject may be waiting. */
			jobs_wake();
			continue;
		}
		free(j);
		pthread_mutex_lock(&jobs_mtx);
		if (claimed < 0) {
			/* The store was busy or failed: try again soon. */
			struct timespec	ts;

			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += 1;
			if (!jobs_stopping && gen == jobs_gen)
				pthread_cond_timedwait(&jobs_cond, &jobs_mtx,
				    &ts);
		} else
			while (!jobs_stopping && gen == jobs_gen)
				pthread_cond_wait(&jobs_cond, &jobs_mtx);
		pthread_mutex_unlock(&jobs_mtx);
	}
	store_close();
	return NULL;
}

/* Returns 1 with j filled when a job was claimed, 0 when none, -1 error. */
static int
jobs_claim(sqlite3 *db, struct job *j)
{
	sqlite3_stmt	*st = NULL;
	json_error_t	 je;
	int		 rc = 0;

	if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_prepare_v2(db, "UPDATE jobs SET state = 'running', "
	    "started_at = ?, runs = runs + 1, phase = NULL, bytes_done = 0 "
	    "WHERE state = 'queued' AND id = (SELECT q.id FROM jobs q WHERE "
	    "q.state = 'queued' AND NOT EXISTS (SELECT 1 FROM jobs r WHERE "
	    "r.state = 'running' AND r.subject = q.subject) ORDER BY q.id "
	    "LIMIT 1) RETURNING id, kind, subject, params, runs, "
	    "cancel_requested, private", -1, &st, NULL) != SQLITE_OK) {
		log_error("jobs", "claim: %s", sqlite3_errmsg(db));
		rc = -1;
		goto out;
	}
	sqlite3_bind_int64(st, 1, store_now_ms());
	if (sqlite3_step(st) == SQLITE_ROW) {
		j->id = sqlite3_column_int64(st, 0);
		snprintf(j->kind, sizeof(j->kind), "%s",
		    sqlite3_column_text(st, 1));
		snprintf(j->subject, sizeof(j->subject), "%s",
		    sqlite3_column_text(st, 2));
		j->params = json_loads((const char *)sqlite3_column_text(st,
		    3), 0, &je);
		if (j->params == NULL)
			j->params = json_object();
		j->runs = sqlite3_column_int(st, 4);
		atomic_store(&j->cancel, sqlite3_column_int(st, 5));
		if (sqlite3_column_type(st, 6) != SQLITE_NULL)
			j->private = json_loads((const char *)
			    sqlite3_column_text(st, 6), 0, &je);
		rc = 1;
	}
out:
	sqlite3_finalize(st);
	if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		return -1;
	}
	return rc;
}

static void
jobs_run(sqlite3 *db, struct job *j, unsigned slot)
{
	const struct job_kind	*k;
	char			 err[1024] = "";
	int			 rc = -1, interrupted;

	snprintf(j->tmpdir, sizeof(j->tmpdir), "%s/job-%lld", jobs_tmp,
	    (long long)j->id);
	j->started_ms = store_now_ms();
	pthread_mutex_lock(&jobs_mtx);
	jobs_running[slot] = j;
	if (jobs_stopping)
		atomic_store(&j->cancel, 1);
	pthread_mutex_unlock(&jobs_mtx);
	/* A cancel between the claim and the line above set only the row. */
	if (jobs_cancel_requested(db, j->id))
		atomic_store(&j->cancel, 1);

	for (k = jobs_kinds; k->kind != NULL; k++)
		if (strcmp(k->kind, j->kind) == 0)
			break;
	log_info("jobs", "job %lld: %s %s (run %d)", (long long)j->id, j->kind,
	    j->subject, j->runs);
	if (k->kind == NULL)
		snprintf(err, sizeof(err), "unknown job kind '%s'", j->kind);
	else if (fs_rmtree(j->tmpdir) != 0 || fs_mkdirs(j->tmpdir, 0700) != 0)
		snprintf(err, sizeof(err), "cannot prepare %.900s: %s", j->tmpdir,
		    strerror(errno));
	else if (jobs_cancelled(j))
		snprintf(err, sizeof(err), "cancelled");
	else
		rc = k->run(j, jobs_arg, err, sizeof(err));
	if (fs_rmtree(j->tmpdir) != 0)
		log_warn("jobs", "cannot remove %s: %s", j->tmpdir,
		    strerror(errno));

	pthread_mutex_lock(&jobs_mtx);
	jobs_running[slot] = NULL;
	interrupted = jobs_stopping;
	pthread_mutex_unlock(&jobs_mtx);

	if (rc == 0)
		jobs_finish(db, j, "succeeded", NULL);
	else if (interrupted && jobs_cancelled(j)) {
		/* Shutdown, not the operator: run it again at next start. */
		jobs_finish(db, j, "queued", NULL);
		log_info("jobs", "job %lld interrupted by shutdown; queued "
		    "again", (long long)j->id);
		return;
	} else if (jobs_cancelled(j))
		jobs_finish(db, j, "cancelled", "cancelled by request");
	else
		jobs_finish(db, j, "failed", err);
	if (k->kind != NULL && k->done != NULL)
		k->done(j, jobs_arg, rc == 0 ? "succeeded" :
		    jobs_cancelled(j) ? "cancelled" : "failed", rc == 0 ? NULL :
		    jobs_cancelled(j) ? "cancelled by request" : err);
}

static void
jobs_finish(sqlite3 *db, struct job *j, const char *state, const char *error)
{
	sqlite3_stmt	*st;
	struct timespec	 pause = { 0, 200 * 1000 * 1000 };
	int		 queued = strcmp(state, "queued") == 0, tries;

	if (sqlite3_prepare_v2(db, "UPDATE jobs SET state = ?1, error = ?2, "
	    "finished_at = ?3, phase = CASE WHEN ?5 THEN NULL ELSE phase END "
	    "WHERE id = ?4", -1, &st, NULL) != SQLITE_OK) {
		log_error("jobs", "job %lld: %s", (long long)j->id,
		    sqlite3_errmsg(db));
		return;
	}
	sqlite3_bind_text(st, 1, state, -1, SQLITE_STATIC);
	if (error != NULL)
		sqlite3_bind_text(st, 2, error, -1, SQLITE_STATIC);
	if (!queued)
		sqlite3_bind_int64(st, 3, store_now_ms());
	sqlite3_bind_int64(st, 4, j->id);
	sqlite3_bind_int(st, 5, queued);
	/* A row left running would block its subject until a restart. */
	for (tries = 0; sqlite3_step(st) != SQLITE_DONE; tries++) {
		log_error("jobs", "job %lld: cannot record %s: %s",
		    (long long)j->id, state, sqlite3_errmsg(db));
		if (tries == 10)
			break;
		sqlite3_reset(st);
		nanosleep(&pause, NULL);
	}
	sqlite3_finalize(st);
	if (!queued)
		log_info("jobs", "job %lld %s%s%s", (long long)j->id, state,
		    error ? ": " : "", error ? error : "");
}

static json_t *
jobs_row(sqlite3_stmt *st)
{
	json_t		*o, *params;
	json_error_t	 je;
	int		 i;
	static const char *names[] = { "id", "kind", "subject", "state",
	    "phase", "params", "bytes_done", "bytes_total", "error",
	    "created_at", "started_at", "finished_at", "runs",
	    "cancel_requested" };

	o = json_object();
	for (i = 0; i < (int)(sizeof(names) / sizeof(names[0])); i++) {
		switch (sqlite3_column_type(st, i)) {
		case SQLITE_NULL:
			json_object_set_new(o, names[i], json_null());
			break;
		case SQLITE_INTEGER:
			json_object_set_new(o, names[i],
			    json_integer(sqlite3_column_int64(st, i)));
			break;
		default:
			if (i == 5) {
				params = json_loads((const char *)
				    sqlite3_column_text(st, i), 0, &je);
				json_object_set_new(o, names[i], params ?
				    params : json_object());
			} else
				json_object_set_new(o, names[i], json_string(
				    (const char *)sqlite3_column_text(st, i)));
		}
	}
	json_object_set_new(o, "cancel_requested", json_boolean(
	    sqlite3_column_int(st, 13)));
	return o;
}


static int
jobs_cancel_requested(sqlite3 *db, int64_t id)
{
	sqlite3_stmt	*st;
	int		 yes = 0;

	if (sqlite3_prepare_v2(db, "SELECT cancel_requested FROM jobs WHERE "
	    "id = ?", -1, &st, NULL) != SQLITE_OK)
		return 0;
	sqlite3_bind_int64(st, 1, id);
	if (sqlite3_step(st) == SQLITE_ROW)
		yes = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return yes;
}
