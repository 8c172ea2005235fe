/*
 * prepare: a service's runtime directory filled before each start (the
 * spec's "prepare" steps: copy, template, fetch) and saved after a drain
 * or a stop (its "snapshot"), both as jobs.  The spec parts are checked
 * here too, when a spec is submitted, and their secrets kept out of what
 * the API shows.
 */
#ifndef NODEE_PREPARE_H
#define NODEE_PREPARE_H

#include <sys/types.h>

#include <stdint.h>

#include <jansson.h>
#include <sqlite3.h>

#include "config.h"
#include "coord.h"
#include "jobs.h"
#include "nodee.h"

/* What ${name} may stand for in templates and URLs. */
struct prepare_vars {
	const struct coord	*c;
	const char		*node;
	const char		*runtime_dir;
	const char		*artifact_dir;
	const json_t		*options;
	const json_t		*env;
};

/* Told on the job thread when a prepare job ended. */
typedef void	(*prepare_listener)(const char *, int64_t, int,
		    const char *);

extern const struct job_kind	prepare_job_kinds[];

void	 prepare_init(const struct config *);
void	 prepare_on_done(prepare_listener);
int	 prepare_spec_check(const struct config *, json_t *, char *, size_t);
json_t	*prepare_spec_redact(const json_t *);
int	 prepare_needed(const json_t *);
int	 prepare_snapshot_on(const json_t *, const char *);
int	 prepare_render(const char *, size_t, const struct prepare_vars *,
	    char **, size_t *, char *, size_t);
int	 prepare_job_spec_is(sqlite3 *, int64_t, const json_t *);
int64_t	 prepare_submit(sqlite3 *, const struct coord *, const json_t *,
	    uid_t, gid_t, int, char *, size_t);
int64_t	 prepare_snapshot_submit(sqlite3 *, const struct coord *,
	    const json_t *, const char *, char *, size_t);
int64_t	 prepare_snapshot_retry(sqlite3 *, int64_t, enum nd_rc *, char *,
	    size_t);

#endif
