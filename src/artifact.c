/*
 * artifact: install and removal.
 *
 * Install (a job): verify plan (given sha256, else the depot's .sha256
 * sidecar, else .sha1, else none) -> download into tmp/job-N/ hashing as
 * the bytes arrive -> compare -> unpack into tmp/job-N/staging with every
 * hostile-archive check (unzip.c) -> fsync -> one rename() into
 * software/<g>/<a>/<v> -> a row in artifacts.  A reader sees no artifact
 * or a whole one; a crash at any point leaves at worst a whole tree
 * without its row, which the re-run of the job replaces.
 *
 * Removal (a job): rename the tree out of software/ first, delete the
 * row, then delete the files.
 */
#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "artifact.h"
#include "fetch.h"
#include "fs.h"
#include "log.h"
#include "metrics.h"
#include "store.h"
#include "unzip.h"

static const struct config	*artifact_cf;
static artifact_listener	 artifact_listen;
/*
 * Held while parent directories under software/ are made or removed:
 * an install of 1.1 must not see software/g/a vanish under it because
 * the removal of 1.0 just emptied it.
 */
static pthread_mutex_t		 artifact_tree_mtx = PTHREAD_MUTEX_INITIALIZER;

static int	artifact_install_known(sqlite3 *, const struct artifact_coord *,
		    const char *, const char *, json_t **, enum nd_rc *, char *,
		    size_t);
static int	artifact_install_differs(const json_t *, const char *,
		    const char *);
static enum nd_rc artifact_install_queue(sqlite3 *,
		    const struct artifact_coord *, const char *, const char *,
		    const char *, int, json_t **, char *, size_t);
static enum nd_rc artifact_submit(const struct artifact_coord *,
		    const char *, const char *, const char *, const char *, int,
		    int *, json_t **, char *, size_t);
static enum nd_rc artifact_begin(sqlite3 **, char *, size_t);
static void	artifact_drop_upload(struct job *);
static int	artifact_take_upload(struct job *, const char *,
		    struct fetch_result *, const char **, char *, size_t);
static int	artifact_install_run(struct job *, void *, char *, size_t);
static int	artifact_download(struct job *, const char *, const char *,
		    int, struct fetch_result *, char *, size_t);
static int	artifact_unpack(struct job *, const char *, const char *,
		    struct unzip_stats *, char *, size_t);
static int	artifact_place(const char *, const char *, char *, size_t);
static int	artifact_remove_run(struct job *, void *, char *, size_t);
static void	artifact_done(struct job *, void *, const char *,
		    const char *);
static int	artifact_part_ok(const char *, const char *, char *, size_t);
static int	artifact_plan(struct job *, const char *, const char *, char *,
		    size_t, const char **, int *, char *, size_t);
static int	artifact_sidecar(struct job *, const char *, const char *,
		    size_t, char *, size_t, int *, char *, size_t);
static int	artifact_fetch_progress(void *, uint64_t, uint64_t);
static int	artifact_cancel_check(void *, uint64_t, uint64_t);
static int	artifact_drop_orphan(const struct artifact_coord *,
		    const char *, const char *, char *, size_t);
static int	artifact_unzip_progress(void *, uint64_t, uint64_t);
static int	artifact_record(sqlite3 *, const struct artifact_coord *,
		    const char *, const char *, const char *,
		    const struct unzip_stats *, const char *, int64_t);
static json_t	*artifact_row(sqlite3 *, sqlite3_stmt *);

const struct job_kind artifact_job_kinds[] = {
	{ "artifact.install",	artifact_install_run,	artifact_done },
	{ "artifact.remove",	artifact_remove_run,	artifact_done },
	{ NULL,			NULL,			NULL },
};

void
artifact_init(const struct config *cf)
{
	artifact_cf = cf;
}

/* fn(gav, ok, error) is told when an install job ends (the supervisor). */
void
artifact_on_install(artifact_listener fn)
{
	artifact_listen = fn;
}

/* "groupId:artifactId:version"; err names the part that is wrong. */
int
artifact_parse(const char *s, struct artifact_coord *c, char *err,
    size_t errlen)
{
	const char	*p1, *p2;
	char		 g[ARTIFACT_PART_MAX + 2], a[ARTIFACT_PART_MAX + 2];
	char		 v[ARTIFACT_PART_MAX + 2];
	size_t		 lg, la, lv;

	if ((p1 = strchr(s, ':')) == NULL || (p2 = strchr(p1 + 1, ':')) ==
	    NULL || strchr(p2 + 1, ':') != NULL) {
		snprintf(err, errlen, "artifact: '%.200s' is not "
		    "groupId:artifactId:version", s);
		return -1;
	}
	lg = (size_t)(p1 - s);
	la = (size_t)(p2 - p1 - 1);
	lv = strlen(p2 + 1);
	if (lg > ARTIFACT_PART_MAX || la > ARTIFACT_PART_MAX ||
	    lv > ARTIFACT_PART_MAX) {
		snprintf(err, errlen, "artifact: each part of '%.200s' must be "
		    "at most %d bytes", s, ARTIFACT_PART_MAX);
		return -1;
	}
	memcpy(g, s, lg);
	g[lg] = '\0';
	memcpy(a, p1 + 1, la);
	a[la] = '\0';
	memcpy(v, p2 + 1, lv);
	v[lv] = '\0';
	return artifact_from_parts(g, a, v, c, err, errlen);
}

int
artifact_from_parts(const char *g, const char *a, const char *v,
    struct artifact_coord *c, char *err, size_t errlen)
{
	if (artifact_part_ok("groupId", g, err, errlen) != 0 ||
	    artifact_part_ok("artifactId", a, err, errlen) != 0 ||
	    artifact_part_ok("version", v, err, errlen) != 0)
		return -1;
	snprintf(c->group, sizeof(c->group), "%s", g);
	snprintf(c->artifact, sizeof(c->artifact), "%s", a);
	snprintf(c->version, sizeof(c->version), "%s", v);
	snprintf(c->gav, sizeof(c->gav), "%s:%s:%s", g, a, v);
	return 0;
}

/* PREFIX/software/<g>/<a>/<v>, from validated parts only. */
int
artifact_dir(const struct config *cf, const struct artifact_coord *c,
    char *out, size_t outlen)
{
	int	n;

	n = snprintf(out, outlen, "%s/software/%s/%s/%s", cf->prefix, c->group,
	    c->artifact, c->version);
	return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

/* <depot>/<g>/<a>/<v>/<a>-<v>.zip, with the group's own depot if any. */
int
artifact_url(const struct config *cf, const struct artifact_coord *c,
    char *out, size_t outlen, char *err, size_t errlen)
{
	const char	*depot;
	size_t		 dl;
	int		 n;

	if ((depot = config_depot_for(cf, c->group)) == NULL) {
		snprintf(err, errlen, "url: no depot is configured for group "
		    "'%s' (set depot or depot.%s, or give url)", c->group,
		    c->group);
		return -1;
	}
	dl = strlen(depot);
	while (dl > 0 && depot[dl - 1] == '/')
		dl--;
	n = snprintf(out, outlen, "%.*s/%s/%s/%s/%s-%s.zip", (int)dl, depot,
	    c->group, c->artifact, c->version, c->artifact, c->version);
	if (n < 0 || (size_t)n >= outlen) {
		snprintf(err, errlen, "url: the depot URL is too long");
		return -1;
	}
	return 0;
}

/* One installed artifact as JSON, or NULL. */
json_t *
artifact_get(sqlite3 *db, const struct artifact_coord *c)
{
	sqlite3_stmt	*st;
	json_t		*o = NULL;

	if (sqlite3_prepare_v2(db, "SELECT group_id, artifact_id, version, "
	    "path, size_bytes, file_count, sha256, verified, installed_at, "
	    "url, job_id FROM artifacts WHERE group_id = ? AND artifact_id = ? "
	    "AND version = ?", -1, &st, NULL) != SQLITE_OK)
		return NULL;
	sqlite3_bind_text(st, 1, c->group, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, c->artifact, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, c->version, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW)
		o = artifact_row(db, st);
	sqlite3_finalize(st);
	return o;
}

/* 1 if the artifact has a record; cheaper than artifact_get(). */
int
artifact_installed(sqlite3 *db, const struct artifact_coord *c)
{
	sqlite3_stmt	*st;
	int		 yes = 0;

	if (sqlite3_prepare_v2(db, "SELECT 1 FROM artifacts WHERE group_id = ? "
	    "AND artifact_id = ? AND version = ?", -1, &st, NULL) != SQLITE_OK)
		return 0;
	sqlite3_bind_text(st, 1, c->group, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, c->artifact, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, c->version, -1, SQLITE_STATIC);
	yes = sqlite3_step(st) == SQLITE_ROW;
	sqlite3_finalize(st);
	return yes;
}

json_t *
artifact_list(sqlite3 *db)
{
	sqlite3_stmt	*st;
	json_t		*a = json_array();

	if (sqlite3_prepare_v2(db, "SELECT group_id, artifact_id, version, "
	    "path, size_bytes, file_count, sha256, verified, installed_at, "
	    "url, job_id FROM artifacts ORDER BY group_id, artifact_id, "
	    "version", -1, &st, NULL) != SQLITE_OK)
		return a;
	while (sqlite3_step(st) == SQLITE_ROW)
		json_array_append_new(a, artifact_row(db, st));
	sqlite3_finalize(st);
	return a;
}

/* Coordinates of the services whose spec names this artifact. */
json_t *
artifact_users(sqlite3 *db, const struct artifact_coord *c)
{
	sqlite3_stmt	*st;
	json_t		*a = json_array();

	if (sqlite3_prepare_v2(db, "SELECT coordinate FROM services WHERE "
	    "json_extract(spec, '$.artifact') = ? ORDER BY coordinate", -1,
	    &st, NULL) != SQLITE_OK)
		return a;
	sqlite3_bind_text(st, 1, c->gav, -1, SQLITE_STATIC);
	while (sqlite3_step(st) == SQLITE_ROW)
		json_array_append_new(a, json_string((const char *)
		    sqlite3_column_text(st, 0)));
	sqlite3_finalize(st);
	return a;
}

/*
 * Answers an install request: the artifact if it is installed (ND_OK,
 * *answer the artifact), else the queued or running install job, or a
 * new one (ND_ACCEPTED, *answer the job).  Checks and insert are one
 * transaction, so ten simultaneous requests make one job.  url may be
 * NULL (the depot's), sha256 NULL (sidecars).  Anything else comes with
 * err: ND_INVALID (no depot for the group), ND_CONFLICT (a removal, or
 * another url or sha256), ND_UNAVAILABLE (the store), ND_INTERNAL.
 */
enum nd_rc
artifact_submit_install(const struct artifact_coord *c, const char *url,
    const char *sha256, json_t **answer, char *err, size_t errlen)
{
	char	depot_url[CONFIG_URL_MAX + 512];

	*answer = NULL;
	if (url == NULL && artifact_url(artifact_cf, c, depot_url,
	    sizeof(depot_url), err, errlen) != 0)
		return ND_INVALID;
	return artifact_submit(c, url, url != NULL ? url : depot_url, sha256,
	    NULL, 1, NULL, answer, err, errlen);
}

/*
 * An install from a zip the API received: upload.c kept it at path and
 * hashed it (sha256).  The answers are those of artifact_submit_install;
 * on ND_ACCEPTED the job owns the file and moves it into its directory
 * instead of downloading.  given: the client sent that checksum too.
 */
enum nd_rc
artifact_submit_upload(const struct artifact_coord *c, const char *path,
    const char *sha256, int given, int *taken, json_t **answer, char *err,
    size_t errlen)
{
	return artifact_submit(c, ARTIFACT_UPLOAD_URL, ARTIFACT_UPLOAD_URL,
	    sha256, path, given, taken, answer, err, errlen);
}

/*
 * The transaction of an install request: what exists answers it when it
 * is what was asked for (asked: the URL as given, NULL for the depot's),
 * else a new job that fetches url (or takes the upload: then *taken is
 * 1 once the job owns the file).
 */
static enum nd_rc
artifact_submit(const struct artifact_coord *c, const char *asked,
    const char *url, const char *sha256, const char *upload, int given,
    int *taken, json_t **answer, char *err, size_t errlen)
{
	sqlite3		*db;
	enum nd_rc	 rc;

	*answer = NULL;
	if (taken != NULL)
		*taken = 0;
	if ((rc = artifact_begin(&db, err, errlen)) != ND_OK)
		return rc;
	if (artifact_install_known(db, c, asked, sha256, answer, &rc, err,
	    errlen)) {
		sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
		return rc;
	}
	rc = artifact_install_queue(db, c, url, sha256, upload, given, answer,
	    err, errlen);
	if (taken != NULL)
		*taken = rc == ND_ACCEPTED;
	return rc;
}

/* BEGIN IMMEDIATE on this thread's store: ND_OK, or why not with err. */
static enum nd_rc
artifact_begin(sqlite3 **db, char *err, size_t errlen)
{
	if ((*db = store_db()) == NULL) {
		snprintf(err, errlen, "store unavailable");
		return ND_UNAVAILABLE;
	}
	if (sqlite3_exec(*db, "BEGIN IMMEDIATE", NULL, NULL, NULL) !=
	    SQLITE_OK) {
		snprintf(err, errlen, "store busy: %s", sqlite3_errmsg(*db));
		return ND_UNAVAILABLE;
	}
	return ND_OK;
}

/*
 * Answers a removal request: ND_NOT_FOUND when the artifact is neither
 * installed nor being installed, ND_CONFLICT (*answer: the services)
 * while a service uses it, else ND_ACCEPTED with the removal job.
 * ND_UNAVAILABLE and ND_INTERNAL come with err.
 */
enum nd_rc
artifact_submit_remove(const struct artifact_coord *c, json_t **answer,
    char *err, size_t errlen)
{
	sqlite3		*db;
	json_t		*a, *users, *d;
	int64_t		 id;
	enum nd_rc	 rc;

	*answer = NULL;
	if ((rc = artifact_begin(&db, err, errlen)) != ND_OK)
		return rc;
	users = artifact_users(db, c);
	if (json_array_size(users) > 0) {
		sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
		*answer = users;
		return ND_CONFLICT;
	}
	json_decref(users);
	if ((*answer = jobs_active(db, "artifact.remove", c->gav)) != NULL) {
		sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
		return ND_ACCEPTED;
	}
	a = artifact_get(db, c);
	d = jobs_active(db, "artifact.install", c->gav);
	if (a == NULL && d == NULL) {
		sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
		snprintf(err, errlen, "artifact %s is not installed", c->gav);
		return ND_NOT_FOUND;
	}
	json_decref(a);
	json_decref(d);
	d = json_pack("{s:s}", "artifact", c->gav);
	id = jobs_insert(db, "artifact.remove", c->gav, d, NULL);
	json_decref(d);
	if (id < 0) {
		snprintf(err, errlen, "cannot queue the removal: %s",
		    sqlite3_errmsg(db));
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		return ND_INTERNAL;
	}
	d = json_pack("{s:I}", "job", (json_int_t)id);
	store_event("artifact.remove.requested", c->gav, d);
	json_decref(d);
	if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "cannot queue the removal: %s",
		    sqlite3_errmsg(db));
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		return ND_INTERNAL;
	}
	jobs_wake();
	*answer = jobs_get(db, id);
	return ND_ACCEPTED;
}

/*
 * What an install request meets, inside its transaction: a removal
 * (*rc ND_CONFLICT), the artifact (ND_OK), or an install job
 * (ND_ACCEPTED); returns 1 with *rc, or 0 when there is none.  What
 * exists answers the request only if it is what was asked for: a pinned
 * checksum that differs, or another explicit URL (url, NULL for the
 * depot's), is a conflict, never silently ignored.
 */
static int
artifact_install_known(sqlite3 *db, const struct artifact_coord *c,
    const char *url, const char *sha256, json_t **answer, enum nd_rc *rc,
    char *err, size_t errlen)
{
	const char	*have;
	json_t		*d, *p;

	if ((d = jobs_active(db, "artifact.remove", c->gav)) != NULL) {
		snprintf(err, errlen, "artifact %s is being removed (job %lld); "
		    "install it again when that job has ended", c->gav,
		    (long long)json_integer_value(json_object_get(d, "id")));
		json_decref(d);
		*rc = ND_CONFLICT;
		return 1;
	}
	if ((*answer = artifact_get(db, c)) != NULL) {
		have = json_string_value(json_object_get(*answer, "sha256"));
		if (sha256 == NULL || (have != NULL &&
		    strcasecmp(have, sha256) == 0)) {
			*rc = ND_OK;
			return 1;
		}
		snprintf(err, errlen, "artifact %s is installed with sha256 %s "
		    "(check: %s), not the requested %s; remove it first",
		    c->gav, have ? have : "unknown", json_string_value(
		    json_object_get(*answer, "verified")), sha256);
		json_decref(*answer);
		*answer = NULL;
		*rc = ND_CONFLICT;
		return 1;
	}
	if ((*answer = jobs_active(db, "artifact.install", c->gav)) == NULL)
		return 0;
	p = json_object_get(*answer, "params");
	if (!artifact_install_differs(p, url, sha256)) {
		*rc = ND_ACCEPTED;
		return 1;
	}
	snprintf(err, errlen, "an install of %s with another url or sha256 is "
	    "already queued or running (job %lld)", c->gav, (long long)
	    json_integer_value(json_object_get(*answer, "id")));
	json_decref(*answer);
	*answer = NULL;
	*rc = ND_CONFLICT;
	return 1;
}

/* Was the install job of these params asked with another url or sha256? */
static int
artifact_install_differs(const json_t *params, const char *url,
    const char *sha256)
{
	const char	*have = json_string_value(json_object_get(params,
			    "sha256"));
	const char	*had = json_string_value(json_object_get(params,
			    "url"));
	char		 shown[CONFIG_URL_MAX + 512];

	if (sha256 != NULL && (have == NULL || strcasecmp(have, sha256) != 0))
		return 1;
	if (url == NULL)
		return 0;
	/* The job shows its URL without credentials: compare the same. */
	fetch_url_redact(url, shown, sizeof(shown));
	return strcmp(shown, had != NULL ? had : "") != 0;
}

/*
 * Queues a new install job and commits the transaction submit began;
 * ND_ACCEPTED with the job, or ND_UNAVAILABLE with err (rolled back).
 */
static enum nd_rc
artifact_install_queue(sqlite3 *db, const struct artifact_coord *c,
    const char *url, const char *sha256, const char *upload, int given,
    json_t **answer, char *err, size_t errlen)
{
	char	 shown[CONFIG_URL_MAX + 512];
	json_t	*params, *private, *d;
	int64_t	 id;

	/* The URL may carry credentials: the whole one stays private. */
	fetch_url_redact(url, shown, sizeof(shown));
	params = json_pack("{s:s, s:s}", "artifact", c->gav, "url", shown);
	if (sha256 != NULL)
		json_object_set_new(params, "sha256", json_string(sha256));
	private = json_pack("{s:s}", "url", url);
	/*
	 * An upload's sha256 is the body's own: the record says it was
	 * checked only when the client sent it too.
	 */
	if (upload != NULL) {
		json_object_set_new(params, "checksum", json_string(given ?
		    "given" : "computed"));
		json_object_set_new(private, "upload", json_string(upload));
	}
	id = jobs_insert(db, "artifact.install", c->gav, params, private);
	json_decref(private);
	json_decref(params);
	if (id < 0)
		goto fail;
	d = json_pack("{s:I, s:s}", "job", (json_int_t)id, "url", shown);
	store_event("artifact.install.requested", c->gav, d);
	json_decref(d);
	if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		goto fail;
	jobs_wake();
	*answer = jobs_get(db, id);
	return ND_ACCEPTED;
fail:
	/* The store refused the change: nothing was queued (503). */
	snprintf(err, errlen, "the store could not save the install: %s",
	    sqlite3_errmsg(db));
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return ND_UNAVAILABLE;
}

/*
 * The install job: plan the check, download, verify, unpack, move into
 * place, record.  Each phase that can take long checks for a cancel.
 */
static int
artifact_install_run(struct job *j, void *arg, char *err, size_t errlen)
{
	const struct config	*cf = artifact_cf;
	struct artifact_coord	 c;
	struct fetch_result	 fr;
	struct unzip_stats	 us;
	sqlite3			*db = store_db();
	json_t			*have;
	const char		*url, *given, *verified = "none";
	char			 zip[PATH_MAX], staging[PATH_MAX];
	char			 dest[PATH_MAX], stale[PATH_MAX];
	char			 expect[65] = "";
	int			 want_sha1 = 0;

	(void)arg;
	if (artifact_parse(j->subject, &c, err, errlen) != 0 || db == NULL)
		return -1;
	if ((url = json_string_value(json_object_get(j->private, "url"))) ==
	    NULL)
		url = json_string_value(json_object_get(j->params, "url"));
	given = json_string_value(json_object_get(j->params, "sha256"));
	if (url == NULL) {
		snprintf(err, errlen, "job has no url");
		return -1;
	}
	if (artifact_dir(cf, &c, dest, sizeof(dest)) != 0 ||
	    snprintf(zip, sizeof(zip), "%s/download.zip", j->tmpdir) >=
	    (int)sizeof(zip) ||
	    snprintf(staging, sizeof(staging), "%s/staging", j->tmpdir) >=
	    (int)sizeof(staging) ||
	    snprintf(stale, sizeof(stale), "%s/stale", j->tmpdir) >=
	    (int)sizeof(stale)) {
		snprintf(err, errlen, "path too long");
		return -1;
	}
	/* Installed by an earlier run of this job that crashed at its end. */
	if ((have = artifact_get(db, &c)) != NULL && fs_exists(dest)) {
		json_decref(have);
		return 0;
	}
	json_decref(have);
	/*
	 * A whole tree without its row (a crash between rename and record)
	 * goes now, so that a failure of this run cannot leave it behind.
	 */
	if (artifact_drop_orphan(&c, dest, stale, err, errlen) != 0)
		return -1;

	if (json_object_get(j->private, "upload") != NULL) {
		if (artifact_take_upload(j, zip, &fr, &verified, err,
		    errlen) != 0)
			return -1;
		snprintf(expect, sizeof(expect), "%s", fr.sha256);
	} else if (artifact_plan(j, url, given, expect, sizeof(expect),
	    &verified, &want_sha1, err, errlen) != 0 ||
	    artifact_download(j, url, zip, want_sha1, &fr, err, errlen) != 0)
		return -1;
	jobs_progress(j, "verify", fr.bytes, fr.bytes);
	if (strcmp(verified, "sha1-sidecar") == 0 ?
	    strcasecmp(expect, fr.sha1) != 0 :
	    expect[0] != '\0' && strcasecmp(expect, fr.sha256) != 0) {
		snprintf(err, errlen, "checksum mismatch (%s): expected %s, "
		    "downloaded %s", verified, expect,
		    want_sha1 ? fr.sha1 : fr.sha256);
		return -1;
	}
	if (artifact_unpack(j, zip, staging, &us, err, errlen) != 0 ||
	    artifact_place(staging, dest, err, errlen) != 0)
		return -1;
	if (artifact_record(db, &c, dest, fr.sha256, verified, &us,
	    json_string_value(json_object_get(j->params, "url")), j->id) != 0) {
		snprintf(err, errlen, "cannot record the artifact: %s",
		    sqlite3_errmsg(db));
		return -1;
	}
	return 0;
}

/* Downloads url into zip (a new file), hashing as the bytes arrive. */
static int
artifact_download(struct job *j, const char *url, const char *zip,
    int want_sha1, struct fetch_result *fr, char *err, size_t errlen)
{
	struct fetch_opts	fo;
	int			fd;

	fd = open(zip, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd == -1) {
		snprintf(err, errlen, "cannot create %s: %s", zip,
		    strerror(errno));
		return -1;
	}
	memset(&fo, 0, sizeof(fo));
	fo.url = url;
	fo.fd = fd;
	fo.max_bytes = artifact_cf->download_max;
	fo.want_sha1 = want_sha1;
	fo.progress = artifact_fetch_progress;
	fo.arg = j;
	jobs_progress(j, "download", 0, 0);
	if (fetch_file(&fo, fr, err, errlen) != 0) {
		close(fd);
		return -1;
	}
	metrics_add(MC_DOWNLOAD_BYTES, fr->bytes);
	if (fsync(fd) != 0) {
		snprintf(err, errlen, "fsync %s: %s", zip, strerror(errno));
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

/*
 * An upload's zip: moved from where the API kept it into the job's
 * directory (one rename within tmp/).  A restart of the daemon empties
 * tmp/, so a job that outlived one finds nothing and says so.
 */
static int
artifact_take_upload(struct job *j, const char *zip, struct fetch_result *fr,
    const char **verified, char *err, size_t errlen)
{
	const char	*from, *sha, *how;
	struct stat	 st;

	from = json_string_value(json_object_get(j->private, "upload"));
	sha = json_string_value(json_object_get(j->params, "sha256"));
	how = json_string_value(json_object_get(j->params, "checksum"));
	if (from == NULL || sha == NULL || strlen(sha) != 64) {
		snprintf(err, errlen, "the job has no upload");
		return -1;
	}
	if (rename(from, zip) != 0 || stat(zip, &st) != 0) {
		snprintf(err, errlen, "the uploaded zip is gone (%s): the "
		    "daemon restarted before the install ran; upload it again",
		    strerror(errno));
		return -1;
	}
	memset(fr, 0, sizeof(*fr));
	snprintf(fr->sha256, sizeof(fr->sha256), "%s", sha);
	fr->bytes = (uint64_t)st.st_size;
	*verified = how != NULL && strcmp(how, "given") == 0 ?
	    "sha256-given" : "none";
	return 0;
}

/*
 * Unpacks the verified zip into staging (a new directory) with every
 * hostile-archive check, then deletes the zip to free its space.
 */
static int
artifact_unpack(struct job *j, const char *zip, const char *staging,
    struct unzip_stats *us, char *err, size_t errlen)
{
	const struct config	*cf = artifact_cf;
	struct unzip_limits	 lim;

	if (jobs_cancelled(j)) {
		snprintf(err, errlen, "cancelled");
		return -1;
	}
	jobs_progress(j, "unpack", 0, 0);
	if (mkdir(staging, 0755) != 0) {
		snprintf(err, errlen, "cannot create %s: %s", staging,
		    strerror(errno));
		return -1;
	}
	memset(&lim, 0, sizeof(lim));
	lim.max_entries = cf->archive_max_entries;
	lim.max_bytes = cf->archive_max_bytes;
	lim.threads = cf->unpack_threads;
	memset(us, 0, sizeof(*us));
	if (unzip_extract(zip, staging, &lim, artifact_unzip_progress, j, us,
	    err, errlen) != 0)
		return -1;
	/* The download is no longer needed; free the space before rename. */
	unlink(zip);
	if (fs_fsync_dir(staging) != 0) {
		snprintf(err, errlen, "fsync %s: %s", staging, strerror(errno));
		return -1;
	}
	if (jobs_cancelled(j)) {
		snprintf(err, errlen, "cancelled");
		return -1;
	}
	return 0;
}

/*
 * One rename() of the staged tree to dest, which readers then see whole;
 * read-only once in place.
 */
static int
artifact_place(const char *staging, const char *dest, char *err,
    size_t errlen)
{
	char	parent[PATH_MAX];

	snprintf(parent, sizeof(parent), "%s", dest);
	*strrchr(parent, '/') = '\0';
	pthread_mutex_lock(&artifact_tree_mtx);
	if (fs_mkdirs(parent, 0755) != 0) {
		snprintf(err, errlen, "cannot create %s: %s", parent,
		    strerror(errno));
		pthread_mutex_unlock(&artifact_tree_mtx);
		return -1;
	}
	if (rename(staging, dest) != 0) {
		snprintf(err, errlen, "cannot rename into %s: %s", dest,
		    strerror(errno));
		pthread_mutex_unlock(&artifact_tree_mtx);
		return -1;
	}
	pthread_mutex_unlock(&artifact_tree_mtx);
	/* Only now: moving a directory needs write access to it. */
	(void)chmod(dest, 0555);
	if (fs_fsync_dir(parent) != 0)
		log_warn("artifact", "fsync %s: %s", parent, strerror(errno));
	return 0;
}

static int
artifact_remove_run(struct job *j, void *arg, char *err, size_t errlen)
{
	const struct config	*cf = artifact_cf;
	struct artifact_coord	 c;
	sqlite3			*db = store_db();
	sqlite3_stmt		*st;
	json_t			*users;
	char			 dest[PATH_MAX], out[PATH_MAX], *slash;
	int			 i;

	(void)arg;
	if (artifact_parse(j->subject, &c, err, errlen) != 0 || db == NULL)
		return -1;
	users = artifact_users(db, &c);
	if (json_array_size(users) > 0) {
		char	*list = json_dumps(users, JSON_COMPACT);

		snprintf(err, errlen, "in use by services %s", list ? list :
		    "?");
		free(list);
		json_decref(users);
		return -1;
	}
	json_decref(users);
	if (artifact_dir(cf, &c, dest, sizeof(dest)) != 0 ||
	    snprintf(out, sizeof(out), "%s/removed", j->tmpdir) >=
	    (int)sizeof(out)) {
		snprintf(err, errlen, "path too long");
		return -1;
	}
	if (fs_exists(dest)) {
		(void)chmod(dest, 0755);
		if (rename(dest, out) != 0) {
			snprintf(err, errlen, "cannot move %s out: %s", dest,
			    strerror(errno));
			(void)chmod(dest, 0555);
			return -1;
		}
		(void)fs_parent_fsync(dest);
	}
	if (sqlite3_prepare_v2(db, "DELETE FROM artifacts WHERE group_id = ? "
	    "AND artifact_id = ? AND version = ?", -1, &st, NULL) !=
	    SQLITE_OK) {
		snprintf(err, errlen, "%s", sqlite3_errmsg(db));
		return -1;
	}
	sqlite3_bind_text(st, 1, c.group, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, c.artifact, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, c.version, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE) {
		snprintf(err, errlen, "%s", sqlite3_errmsg(db));
		sqlite3_finalize(st);
		return -1;
	}
	sqlite3_finalize(st);
	if (fs_rmtree(out) != 0)
		log_warn("artifact", "cannot delete %s: %s", out,
		    strerror(errno));
	/* Empty version and artifact directories go too. */
	pthread_mutex_lock(&artifact_tree_mtx);
	for (i = 0; i < 2 && (slash = strrchr(dest, '/')) != NULL; i++) {
		*slash = '\0';
		if (rmdir(dest) != 0)
			break;
	}
	pthread_mutex_unlock(&artifact_tree_mtx);
	return 0;
}

/*
 * The zip an upload job was given, if it is still where the API left it:
 * a job cancelled while queued never took it.  (One that ran moved it
 * into its own directory, which the job's end removes.)
 */
static void
artifact_drop_upload(struct job *j)
{
	json_t		*priv = j->private;
	const char	*path;

	if (priv == NULL && store_db() != NULL)
		priv = jobs_private(store_db(), j->id);
	else
		json_incref(priv);
	if ((path = json_string_value(json_object_get(priv, "upload"))) !=
	    NULL && unlink(path) == 0)
		log_info("artifact", "job %lld: removed the upload it did not "
		    "take", (long long)j->id);
	json_decref(priv);
}

static void
artifact_done(struct job *j, void *arg, const char *state, const char *error)
{
	int	install = strcmp(j->kind, "artifact.install") == 0;
	char	kind[64];
	json_t	*d;

	(void)arg;
	if (install)
		artifact_drop_upload(j);
	d = json_pack("{s:I, s:I}", "job", (json_int_t)j->id, "duration_ms",
	    (json_int_t)(store_now_ms() - j->started_ms));
	if (install && strcmp(state, "succeeded") == 0)
		metrics_install((double)(store_now_ms() - j->started_ms) /
		    1000.0);
	if (error != NULL)
		json_object_set_new(d, "reason", json_string(error));
	if (strcmp(state, "succeeded") == 0)
		snprintf(kind, sizeof(kind), "%s", install ?
		    "artifact.install.succeeded" : "artifact.removed");
	else
		snprintf(kind, sizeof(kind), "artifact.%s.%s", install ?
		    "install" : "remove", strcmp(state, "cancelled") == 0 ?
		    "cancelled" : "failed");
	if (install && strcmp(state, "succeeded") == 0) {
		struct artifact_coord	 c;
		char			 e[256];
		json_t			*a;

		if (artifact_parse(j->subject, &c, e, sizeof(e)) == 0 &&
		    (a = artifact_get(store_db(), &c)) != NULL) {
			json_object_set(d, "sha256", json_object_get(a,
			    "sha256"));
			json_object_set(d, "verified", json_object_get(a,
			    "verified"));
			json_object_set(d, "size_bytes", json_object_get(a,
			    "size_bytes"));
			json_object_set(d, "file_count", json_object_get(a,
			    "file_count"));
			json_decref(a);
		}
	}
	store_event(kind, j->subject, d);
	json_decref(d);
	if (install && artifact_listen != NULL)
		artifact_listen(j->subject, strcmp(state, "succeeded") == 0,
		    error);
}

/*
 * A part of a coordinate becomes a directory name: no '/', no '..', no
 * NUL or control characters, at most ARTIFACT_PART_MAX bytes, and only
 * the characters Maven coordinates use.
 */
static int
artifact_part_ok(const char *field, const char *s, char *err, size_t errlen)
{
	size_t	i, n = strlen(s);

	if (n == 0) {
		snprintf(err, errlen, "%s: must not be empty", field);
		return -1;
	}
	if (n > ARTIFACT_PART_MAX) {
		snprintf(err, errlen, "%s: longer than %d bytes", field,
		    ARTIFACT_PART_MAX);
		return -1;
	}
	if (strchr(s, '/') != NULL || strchr(s, '\\') != NULL) {
		snprintf(err, errlen, "%s: '%.200s' contains a slash", field,
		    s);
		return -1;
	}
	if (strstr(s, "..") != NULL || s[0] == '.') {
		snprintf(err, errlen, "%s: '%.200s' contains '..' or starts "
		    "with '.'", field, s);
		return -1;
	}
	for (i = 0; i < n; i++) {
		unsigned char	ch = (unsigned char)s[i];

		if (ch < 0x20 || ch == 0x7f) {
			snprintf(err, errlen, "%s: contains a control "
			    "character", field);
			return -1;
		}
		if (!isalnum(ch) && ch != '.' && ch != '-' && ch != '_' &&
		    ch != '+') {
			snprintf(err, errlen, "%s: '%.200s' may contain only "
			    "letters, digits, '.', '-', '_' and '+'", field, s);
			return -1;
		}
	}
	return 0;
}

/*
 * Chooses the check: the given sha256, else the depot's .sha256 sidecar,
 * else its .sha1 sidecar, else none.  A sidecar that exists but cannot be
 * read or parsed fails the job: it is never silently skipped.
 */
static int
artifact_plan(struct job *j, const char *url, const char *given,
    char *expect, size_t expectlen, const char **verified, int *want_sha1,
    char *err, size_t errlen)
{
	int	found;

	jobs_progress(j, "verify", 0, 0);
	if (given != NULL) {
		snprintf(expect, expectlen, "%s", given);
		*verified = "sha256-given";
		return 0;
	}
	if (artifact_sidecar(j, url, ".sha256", 64, expect, expectlen, &found,
	    err, errlen) != 0)
		return -1;
	if (found) {
		*verified = "sha256-sidecar";
		return 0;
	}
	if (artifact_sidecar(j, url, ".sha1", 40, expect, expectlen, &found,
	    err, errlen) != 0)
		return -1;
	if (found) {
		*verified = "sha1-sidecar";
		*want_sha1 = 1;
		return 0;
	}
	*verified = "none";
	expect[0] = '\0';
	return 0;
}

/*
 * Fetches the sidecar (suffix added to the URL's path): *found = 0 when
 * there is none, else the first hex word.  Depots that hide missing
 * objects (S3 and others answer 403) count as "none", with a warning.
 */
static int
artifact_sidecar(struct job *j, const char *url, const char *suffix,
    size_t hexlen, char *out, size_t outlen, int *found, char *err,
    size_t errlen)
{
	char	side[CONFIG_URL_MAX + 600], shown[CONFIG_URL_MAX + 600];
	char	body[1024];
	long	status = 0;
	size_t	n;

	*found = 0;
	if (fetch_url_suffix(url, suffix, side, sizeof(side)) != 0) {
		snprintf(err, errlen, "cannot make the checksum sidecar URL");
		return -1;
	}
	fetch_url_redact(side, shown, sizeof(shown));
	if (fetch_text_cb(side, body, sizeof(body), &status,
	    artifact_cancel_check, j, err, errlen) != 0)
		return -1;
	if (status == 404 || status == 410)
		return 0;
	if (status == 401 || status == 403) {
		log_warn("artifact", "checksum sidecar %s: HTTP %ld, taken as "
		    "absent", shown, status);
		return 0;
	}
	if (status < 200 || status > 299) {
		snprintf(err, errlen, "checksum sidecar %s: HTTP %ld", shown,
		    status);
		return -1;
	}
	n = strspn(body, "0123456789abcdefABCDEF");
	if (n != hexlen || (body[n] != '\0' && !isspace((unsigned char)body[n]))
	    || hexlen + 1 > outlen) {
		snprintf(err, errlen, "checksum sidecar %s does not start with "
		    "%zu hex digits", shown, hexlen);
		return -1;
	}
	memcpy(out, body, hexlen);
	out[hexlen] = '\0';
	*found = 1;
	return 0;
}

static int
artifact_fetch_progress(void *arg, uint64_t done, uint64_t total)
{
	struct job	*j = arg;

	jobs_progress(j, "download", done, total);
	return jobs_cancelled(j);
}

/* Only a cancel check: a sidecar is too small for progress. */
static int
artifact_cancel_check(void *arg, uint64_t done, uint64_t total)
{
	(void)done;
	(void)total;
	return jobs_cancelled(arg);
}

/* Moves a tree that has no record out of software/ and deletes it. */
static int
artifact_drop_orphan(const struct artifact_coord *c, const char *dest,
    const char *stale, char *err, size_t errlen)
{
	if (!fs_exists(dest))
		return 0;
	log_warn("artifact", "%s: removing a tree that has no record (left by "
	    "a crash)", c->gav);
	(void)chmod(dest, 0755);
	if (rename(dest, stale) != 0) {
		snprintf(err, errlen, "cannot move aside %s: %s", dest,
		    strerror(errno));
		(void)chmod(dest, 0555);
		return -1;
	}
	(void)fs_parent_fsync(dest);
	if (fs_rmtree(stale) != 0)
		log_warn("artifact", "cannot delete %s: %s", stale,
		    strerror(errno));
	return 0;
}

static int
artifact_unzip_progress(void *arg, uint64_t done, uint64_t total)
{
	struct job	*j = arg;

	jobs_progress(j, "unpack", done, total);
	return jobs_cancelled(j);
}

static int
artifact_record(sqlite3 *db, const struct artifact_coord *c,
    const char *path, const char *sha256, const char *verified,
    const struct unzip_stats *us, const char *url, int64_t job)
{
	sqlite3_stmt	*st;
	int		 rc;

	if (sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO artifacts "
	    "(group_id, artifact_id, version, path, size_bytes, file_count, "
	    "sha256, verified, installed_at, url, job_id) VALUES "
	    "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_text(st, 1, c->group, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, c->artifact, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, c->version, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, path, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, (sqlite3_int64)us->bytes);
	sqlite3_bind_int64(st, 6, (sqlite3_int64)us->files);
	sqlite3_bind_text(st, 7, sha256, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 8, verified, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 9, store_now_ms());
	sqlite3_bind_text(st, 10, url, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 11, job);
	rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
	sqlite3_finalize(st);
	return rc;
}

static json_t *
artifact_row(sqlite3 *db, sqlite3_stmt *st)
{
	struct artifact_coord	 c;
	char			 err[256];
	json_t			*o;

	o = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:s?, s:s, s:I, s:s?}",
	    "group", (const char *)sqlite3_column_text(st, 0),
	    "artifact", (const char *)sqlite3_column_text(st, 1),
	    "version", (const char *)sqlite3_column_text(st, 2),
	    "path", (const char *)sqlite3_column_text(st, 3),
	    "size_bytes", (json_int_t)sqlite3_column_int64(st, 4),
	    "file_count", (json_int_t)sqlite3_column_int64(st, 5),
	    "sha256", (const char *)sqlite3_column_text(st, 6),
	    "verified", (const char *)sqlite3_column_text(st, 7),
	    "installed_at", (json_int_t)sqlite3_column_int64(st, 8),
	    "url", (const char *)sqlite3_column_text(st, 9));
	if (o == NULL)
		return json_object();
	if (artifact_from_parts(json_string_value(json_object_get(o, "group")),
	    json_string_value(json_object_get(o, "artifact")),
	    json_string_value(json_object_get(o, "version")), &c, err,
	    sizeof(err)) == 0) {
		json_object_set_new(o, "coordinate", json_string(c.gav));
		json_object_set_new(o, "services", artifact_users(db, &c));
	}
	if (sqlite3_column_type(st, 10) == SQLITE_INTEGER)
		json_object_set_new(o, "job", json_integer(
		    sqlite3_column_int64(st, 10)));
	return o;
}
