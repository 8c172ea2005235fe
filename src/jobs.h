/*
 * jobs: the worker pool.  Every install, removal or preparation is a row in
 * the jobs table before any work starts; a fixed pool of threads takes
 * queued rows (oldest first, one job per subject at a time), runs the
 * kind's function and records the outcome.  Jobs left running by a crash
 * are queued again at start-up.
 */
#ifndef NODEE_JOBS_H
#define NODEE_JOBS_H

#include <stdatomic.h>
#include <stdint.h>

#include <jansson.h>
#include <sqlite3.h>

struct job {
	int64_t		 id;
	char		 kind[32];
	char		 subject[512];
	json_t		*params;
	json_t		*private;	/* never shown: secrets */
	int		 runs;		/* 1 on the first run */
	char		 tmpdir[4096];	/* PREFIX/tmp/job-<id>, made empty */
	atomic_int	 cancel;
	char		 phase[16];
	int64_t		 progress_ms;	/* last progress write */
	int64_t		 started_ms;
};

/* Runs the job; returns 0 on success or -1 with err. */
typedef int	(*job_run_fn)(struct job *, void *, char *, size_t);
/* Called after the outcome is stored: state and error (NULL if none). */
typedef void	(*job_done_fn)(struct job *, void *, const char *,
		    const char *);

struct job_kind {
	const char	*kind;
	job_run_fn	 run;
	job_done_fn	 done;
};

int	 jobs_recover(const char *);
int	 jobs_start(const char *, unsigned, const struct job_kind *, void *);
void	 jobs_stop(void);
void	 jobs_wake(void);
int64_t	 jobs_insert(sqlite3 *, const char *, const char *, const json_t *,
	    const json_t *);
int	 jobs_cancel(int64_t, char *, size_t);
int	 jobs_cancelled(const struct job *);
int	 jobs_save_params(struct job *);
void	 jobs_progress(struct job *, const char *, uint64_t, uint64_t);
json_t	*jobs_get(sqlite3 *, int64_t);
json_t	*jobs_private(sqlite3 *, int64_t);
json_t	*jobs_active(sqlite3 *, const char *, const char *);
/* Which jobs: NULL and 0 match everything. */
struct jobs_query {
	const char	*state;
	const char	*kind;
	const char	*subject;
	int64_t		 since;		/* created_at >= since (ms) */
	int64_t		 before;	/* id < before */
	int		 limit;
};

json_t	*jobs_list(sqlite3 *, const struct jobs_query *);

#endif
