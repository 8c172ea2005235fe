/*
 * prepare: the runtime directory before a start, and its snapshot after.
 *
 * A prepare job does all of its work in its own PREFIX/tmp/job-<id>:
 * files copied from the artifact, templates rendered, downloads fetched
 * and unpacked, each into a staging area.  Only when every step has
 * succeeded are the results moved into the runtime directory, by
 * rename(2), in step order; so a failed step, a bad download or a crash
 * leaves the runtime directory as it was.  A runtime directory that does
 * not exist yet is built whole in the staging area and renamed into place.
 *
 * The runtime directory belongs to an untrusted uid, so nodee (root)
 * never resolves a path there with plain open(2): every lookup is an
 * openat2(RESOLVE_BENEATH) from a descriptor of the directory, so a
 * symlink the service planted cannot lead a write (or a snapshot's read)
 * outside.  The artifact is read the same way.
 *
 * A snapshot job zips the named paths (src/zipw.c never follows a link)
 * into PREFIX/state/snapshots/job-<id>.zip, outside tmp/ so a crash or a
 * failed upload does not lose it, and uploads it with a PUT.  The archive
 * goes only after the upload succeeded.
 */
#include <sys/stat.h>
#include <sys/syscall.h>

#include <linux/openat2.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "artifact.h"
#include "fetch.h"
#include "fs.h"
#include "jobs.h"
#include "log.h"
#include "prepare.h"
#include "service.h"
#include "store.h"
#include "unzip.h"
#include "zipw.h"

#define PREPARE_STEPS_MAX	64
#define PREPARE_PATHS_MAX	64
#define PREPARE_TEMPLATE_MAX	(1024 * 1024)
#define PREPARE_NAME_MAX	128
#define PREPARE_HIDDEN		"(hidden)"

enum prep_item_kind {
	IT_FILE,	/* a file or link: replaces what is there */
	IT_DIR,		/* a directory to exist (copy of an empty one) */
	IT_TREE,	/* a whole file or tree: replaces what is there */
};

/* One result waiting in the staging area to be renamed into place. */
struct prep_item {
	enum prep_item_kind	 kind;
	char			*staged;	/* absolute */
	char			*rel;		/* in the runtime directory */
	int			 keep;		/* existing file wins */
	int			 step;		/* 1-based, for messages */
};

struct prep_run {
	struct job		*j;
	const json_t		*spec;
	struct prepare_vars	 vars;
	struct coord		 c;
	char			 rtdir[PATH_MAX];
	char			 artdir[PATH_MAX];
	char			 stage[PATH_MAX];
	int			 artfd;
	int			 is_new;
	int			 own;		/* chown what we make */
	uid_t			 uid;
	gid_t			 gid;
	struct prep_item	*items;
	size_t			 nitems, capitems;
	unsigned		 seq;		/* staged names */
	uint64_t		 fetched;	/* bytes downloaded */
	int			 step, nsteps;
};

static const struct config	*prepare_cf;
static prepare_listener		 prepare_listen;

static void	prepare_sweep_snapshots(void);
static int	prepare_run(struct job *, void *, char *, size_t);
static int	prepare_run_open(struct prep_run *, struct job *, int *, char *,
		    size_t);
static int	prepare_steps(struct prep_run *, json_t *, char *, size_t);
static void	prepare_done(struct job *, void *, const char *, const char *);
static int	prepare_snapshot_run(struct job *, void *, char *, size_t);
static int	prepare_snapshot_zip(struct job *, const struct coord *, char *,
		    size_t);
static int	prepare_snapshot_upload(struct job *, const char *,
		    const char *, char *, size_t);
static void	prepare_snapshot_done(struct job *, void *, const char *,
		    const char *);
static int	prepare_step_path(const json_t *, const char *, const char *,
		    int, char *, size_t);
static int	prepare_flag(json_t *, const char *, const char *, char *,
		    size_t);
static int	prepare_url_check(const struct config *, const json_t *,
		    const char *, const char *, const char *, char *, size_t);
static int	prepare_creds_check(const json_t *, char *, size_t);
static int	prepare_snapshot_check(const struct config *, const json_t *,
		    json_t *, char *, size_t);
static int	prepare_step_check(const struct config *, const json_t *,
		    json_t *, size_t, char *, size_t);
static int	prepare_copy_check(json_t *, const char *, char *, size_t);
static int	prepare_template_check(json_t *, const char *, char *, size_t);
static int	prepare_fetch_check(const struct config *, const json_t *,
		    json_t *, const char *, char *, size_t);
static json_t	*prepare_cred_json(const json_t *, const char *, char *,
		    size_t);
static json_t	*prepare_snapshot_target(const json_t *, const struct coord *,
		    char *, size_t);
static json_t	*prepare_retry_target(sqlite3 *, int64_t, const char *,
		    char *, size_t);
static void	prepare_cred_use(const json_t *, struct fetch_s3 *);
static int	prepare_vars_for(const json_t *, const struct coord *,
		    struct prepare_vars *, char *, size_t, char *, size_t, char *,
		    size_t);
static int	prepare_beneath(int, const char *, int, mode_t);
static int	prepare_stage_name(struct prep_run *, char *, size_t);
static int	prepare_add(struct prep_run *, enum prep_item_kind,
		    const char *, const char *, int);
static int	prepare_copy(struct prep_run *, const json_t *, char *,
		    size_t);
static int	prepare_copy_file(struct prep_run *, int, const char *,
		    const struct stat *, const char *, int, char *, size_t);
static int	prepare_copy_tree(struct prep_run *, int, const char *, int,
		    int, char *, size_t);
static int	prepare_copy_link(struct prep_run *, int, const char *,
		    const char *, int, char *, size_t);
static int	prepare_template(struct prep_run *, const json_t *, char *,
		    size_t);
static int	prepare_fetch(struct prep_run *, const json_t *, int *,
		    char *, size_t);
static int	prepare_fetch_get(struct prep_run *, const json_t *, char *,
		    size_t, int *, char *, size_t);
static int	prepare_fetch_unpack(struct prep_run *, const char *,
		    const char *, char *, size_t);
static int	prepare_apply(struct prep_run *, int, char *, size_t);
static int	prepare_apply_one(struct prep_run *, int, const char *,
		    const struct prep_item *, unsigned, char *, size_t);
static int	prepare_parent(struct prep_run *, int, const char *, char *,
		    size_t);
static int	prepare_preflight(struct prep_run *, int, char *, size_t);
static int	prepare_mkdir(struct prep_run *, int, const char *);
static void	prepare_step_name(const struct prep_run *, int, char *, size_t);
static const char *prepare_step_kind(const json_t *);
static const char *prepare_var(const struct prepare_vars *, const char *,
		    size_t, char *, size_t);
static int	prepare_progress(void *, uint64_t, uint64_t);
static char	*prepare_join(const char *, const char *);

const struct job_kind prepare_job_kinds[] = {
	{ "service.prepare",	prepare_run,		prepare_done },
	{ "service.snapshot",	prepare_snapshot_run,	prepare_snapshot_done },
	{ NULL,			NULL,			NULL },
};

/*
 * libzip writes an archive as <name>.XXXXXX and renames it at the end: a
 * crash in between leaves that half archive in state/snapshots.  Kept
 * archives (job-<id>.zip) stay for their retry.
 */
static void
prepare_sweep_snapshots(void)
{
	DIR		*d;
	struct dirent	*de;
	char		 dir[PATH_MAX];

	if (snprintf(dir, sizeof(dir), "%s/state/snapshots",
	    prepare_cf->prefix) >= (int)sizeof(dir) ||
	    (d = opendir(dir)) == NULL)
		return;
	while ((de = readdir(d)) != NULL)
		if (strncmp(de->d_name, "job-", 4) == 0 &&
		    strstr(de->d_name, ".zip.") != NULL &&
		    unlinkat(dirfd(d), de->d_name, 0) == 0)
			log_info("prepare", "removed %s/%s, a snapshot archive "
			    "a crash left half written", dir, de->d_name);
	closedir(d);
}

void
prepare_init(const struct config *cf)
{
	FILE	*f;
	int	 on = -1;

	prepare_cf = cf;
	prepare_sweep_snapshots();
	/*
	 * Snapshots are read as root.  Without protected hard links a
	 * service could link a file it may not read (say /etc/shadow) into
	 * its runtime directory and have nodee upload it.
	 */
	if ((f = fopen("/proc/sys/fs/protected_hardlinks", "re")) != NULL) {
		if (fscanf(f, "%d", &on) != 1)
			on = -1;
		fclose(f);
	}
	if (on == 0 && geteuid() == 0)
		log_warn("prepare", "fs.protected_hardlinks is 0: a service "
		    "can hard-link files it may not read into its runtime "
		    "directory, and a snapshot would upload them; set "
		    "sysctl fs.protected_hardlinks=1");
}

void
prepare_on_done(prepare_listener fn)
{
	prepare_listen = fn;
}

/* Does a start of this spec go through a prepare job? */
int
prepare_needed(const json_t *spec)
{
	return json_array_size(json_object_get(spec, "prepare")) > 0 ||
	    json_object_get(spec, "snapshot") != NULL;
}

/* Does the spec ask for a snapshot after `when` ("drain" or "stop")? */
int
prepare_snapshot_on(const json_t *spec, const char *when)
{
	json_t	*on = json_object_get(json_object_get(spec, "snapshot"), "on");
	json_t	*v;
	size_t	 i;

	json_array_foreach(on, i, v)
		if (json_is_string(v) && strcmp(json_string_value(v), when) ==
		    0)
			return 1;
	return 0;
}

/*
 * Checks "credentials", "prepare" and "snapshot" of a spec (already a
 * copy: defaults are filled in).  Returns 0, or -1 with err naming the
 * field.
 */
int
prepare_spec_check(const struct config *cf, json_t *s, char *err,
    size_t errlen)
{
	json_t	*steps, *snap;
	size_t	 i;

	if (prepare_creds_check(json_object_get(s, "credentials"), err,
	    errlen) != 0)
		return -1;
	if ((snap = json_object_get(s, "snapshot")) != NULL &&
	    prepare_snapshot_check(cf, s, snap, err, errlen) != 0)
		return -1;
	if ((steps = json_object_get(s, "prepare")) == NULL)
		return 0;
	if (!json_is_array(steps) || json_array_size(steps) >
	    PREPARE_STEPS_MAX) {
		snprintf(err, errlen, "prepare: must be a list of at most %d "
		    "steps", PREPARE_STEPS_MAX);
		return -1;
	}
	for (i = 0; i < json_array_size(steps); i++)
		if (prepare_step_check(cf, s, json_array_get(steps, i), i + 1,
		    err, errlen) != 0)
			return -1;
	return 0;
}

/*
 * The spec's "snapshot": which paths of the runtime directory, uploaded
 * where (with what credentials), after a drain, a stop or both (the
 * default).
 */
static int
prepare_snapshot_check(const struct config *cf, const json_t *s,
    json_t *snap, char *err, size_t errlen)
{
	static const char *const keys[] = { "paths", "to", "on",
	    "credentials", NULL };
	json_t		*v, *paths, *on;
	const char	*cred;
	char		 field[64];
	size_t		 i;

	if (service_only_keys(snap, "snapshot.", keys, err, errlen) != 0)
		return -1;
	paths = json_object_get(snap, "paths");
	if (!json_is_array(paths) || json_array_size(paths) == 0 ||
	    json_array_size(paths) > PREPARE_PATHS_MAX) {
		snprintf(err, errlen, "snapshot.paths: must be a list of 1 to "
		    "%d paths in the runtime directory", PREPARE_PATHS_MAX);
		return -1;
	}
	json_array_foreach(paths, i, v) {
		snprintf(field, sizeof(field), "snapshot.paths[%zu]", i);
		if (fs_relpath_ok(field, json_string_value(v), FS_REL_DOT |
		    FS_REL_DIR, err, errlen) != 0)
			return -1;
	}
	if ((v = json_object_get(snap, "credentials")) != NULL &&
	    !json_is_string(v)) {
		snprintf(err, errlen, "snapshot.credentials: must be the name "
		    "of an entry of credentials");
		return -1;
	}
	cred = json_string_value(v);
	if (!json_is_string(v = json_object_get(snap, "to"))) {
		snprintf(err, errlen, "snapshot.to: required, an http, https "
		    "or s3:// URL");
		return -1;
	}
	if (prepare_url_check(cf, s, "snapshot.to", json_string_value(v), cred,
	    err, errlen) != 0)
		return -1;
	if ((on = json_object_get(snap, "on")) == NULL)
		json_object_set_new(snap, "on", on = json_pack("[s, s]",
		    "drain", "stop"));
	if (!json_is_array(on) || json_array_size(on) > 2) {
		snprintf(err, errlen, "snapshot.on: must be a list of "
		    "\"drain\" and \"stop\"");
		return -1;
	}
	json_array_foreach(on, i, v) {
		if (!json_is_string(v) || (strcmp(json_string_value(v),
		    "drain") != 0 && strcmp(json_string_value(v), "stop") !=
		    0) || (i == 1 && json_equal(v, json_array_get(on, 0)))) {
			snprintf(err, errlen, "snapshot.on[%zu]: must be "
			    "\"drain\" or \"stop\", each once", i);
			return -1;
		}
	}
	return 0;
}

/*
 * The spec as the API shows it: S3 secrets and secret_env's values
 * replaced by "(hidden)", URLs without user information and query (a
 * presigned URL's signature).
 */
json_t *
prepare_spec_redact(const json_t *spec)
{
	json_t		*r = json_deep_copy(spec), *v, *step, *snap, *secrets;
	const char	*k;
	char		 buf[2048];
	size_t		 i;

	secrets = json_object_get(r, "secret_env");
	json_object_foreach(secrets, k, v) {
		json_object_set_new(secrets, k, json_string(PREPARE_HIDDEN));
	}
	json_object_foreach(json_object_get(r, "credentials"), k, v) {
		if (json_object_get(v, "secret_access_key") != NULL)
			json_object_set_new(v, "secret_access_key",
			    json_string(PREPARE_HIDDEN));
		if (json_object_get(v, "session_token") != NULL)
			json_object_set_new(v, "session_token",
			    json_string(PREPARE_HIDDEN));
	}
	json_array_foreach(json_object_get(r, "prepare"), i, step) {
		const char *u = json_string_value(json_object_get(step,
		    "fetch"));

		if (u != NULL && strpbrk(u, "@?") != NULL) {
			fetch_url_redact(u, buf, sizeof(buf));
			json_object_set_new(step, "fetch", json_string(buf));
		}
	}
	snap = json_object_get(r, "snapshot");
	if ((k = json_string_value(json_object_get(snap, "to"))) != NULL &&
	    strpbrk(k, "@?") != NULL) {
		fetch_url_redact(k, buf, sizeof(buf));
		json_object_set_new(snap, "to", json_string(buf));
	}
	return r;
}

/*
 * Renders in[0..len) into a new NUL-terminated *outp: ${name} from the
 * fixed set, "$${" as a literal "${".  An unknown name, a missing option
 * or variable, or an unclosed "${" is an error naming the line.
 */
int
prepare_render(const char *in, size_t len, const struct prepare_vars *v,
    char **outp, size_t *outlen, char *err, size_t errlen)
{
	char		*out = NULL, *n;
	const char	*p = in, *end = in + len, *close, *val;
	char		 name[PREPARE_NAME_MAX + 1];
	size_t		 o = 0, cap = len + 64, add, line = 1;

	if ((out = malloc(cap)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	while (p < end) {
		const char	*chunk = p;

		val = NULL;
		add = 1;
		if (*p == '\n')
			line++;
		if (*p == '$' && p + 2 < end && p[1] == '$' && p[2] == '{') {
			val = "${";
			p += 3;
		} else if (*p == '$' && p + 1 < end && p[1] == '{') {
			for (close = p + 2; close < end && *close != '}' &&
			    *close != '\n'; close++)
				;
			if (close >= end || *close != '}' ||
			    (size_t)(close - p - 2) > PREPARE_NAME_MAX) {
				snprintf(err, errlen, "line %zu: unclosed ${",
				    line);
				goto fail;
			}
			memcpy(name, p + 2, (size_t)(close - p - 2));
			name[close - p - 2] = '\0';
			p = close + 1;
			if ((val = prepare_var(v, name, line, err, errlen)) ==
			    NULL)
				goto fail;
		} else
			p++;
		if (val != NULL)
			add = strlen(val);
		if (o + add + 1 > cap) {
			cap = (o + add + 1) * 2;
			if ((n = realloc(out, cap)) == NULL) {
				snprintf(err, errlen, "out of memory");
				goto fail;
			}
			out = n;
		}
		if (val != NULL)
			memcpy(out + o, val, add);
		else
			out[o] = *chunk;
		o += add;
	}
	out[o] = '\0';
	*outp = out;
	if (outlen != NULL)
		*outlen = o;
	return 0;
fail:
	free(out);
	return -1;
}

/* The value of ${name} on line `line`, or NULL with err. */
static const char *
prepare_var(const struct prepare_vars *v, const char *name, size_t line,
    char *err, size_t errlen)
{
	const char	*val;

	if (strcmp(name, "coordinate") == 0)
		return v->c->name;
	if (strcmp(name, "instance") == 0)
		return v->c->instance;
	if (strcmp(name, "service") == 0)
		return v->c->service;
	if (strcmp(name, "user") == 0)
		return v->c->user;
	if (strcmp(name, "cell") == 0)
		return v->c->cell;
	if (strcmp(name, "runtime_dir") == 0)
		return v->runtime_dir;
	if (strcmp(name, "artifact_dir") == 0)
		return v->artifact_dir;
	if (strcmp(name, "node") == 0)
		return v->node;
	if (strncmp(name, "option:", 7) == 0) {
		if ((val = json_string_value(json_object_get(v->options,
		    name + 7))) == NULL)
			snprintf(err, errlen, "line %zu: ${%s}: the spec has no "
			    "option '%s'", line, name, name + 7);
		return val;
	}
	if (strncmp(name, "env:", 4) == 0) {
		if ((val = json_string_value(json_object_get(v->env,
		    name + 4))) == NULL)
			snprintf(err, errlen, "line %zu: ${%s}: the spec's env "
			    "has no '%s'", line, name, name + 4);
		return val;
	}
	snprintf(err, errlen, "line %zu: unknown name ${%s}", line, name);
	return NULL;
}

/* Did prepare job `id` prepare exactly this spec? */
int
prepare_job_spec_is(sqlite3 *db, int64_t id, const json_t *spec)
{
	json_t	*priv = jobs_private(db, id);
	int	 same;

	same = json_equal(json_object_get(priv, "spec"), spec);
	json_decref(priv);
	return same;
}

/* Queues the prepare job of a start; the caller wakes the workers. */
int64_t
prepare_submit(sqlite3 *db, const struct coord *c, const json_t *spec,
    uid_t uid, gid_t gid, int own, char *err, size_t errlen)
{
	json_t	*params, *priv;
	int64_t	 id;

	params = json_pack("{s:s, s:O, s:I}", "coordinate", c->name,
	    "artifact", json_object_get(spec, "artifact"), "steps",
	    (json_int_t)json_array_size(json_object_get(spec, "prepare")));
	if (own)
		json_object_set_new(params, "owner", json_pack("{s:I, s:I}",
		    "uid", (json_int_t)uid, "gid", (json_int_t)gid));
	priv = json_pack("{s:O}", "spec", spec);
	id = jobs_insert(db, "service.prepare", c->name, params, priv);
	json_decref(params);
	json_decref(priv);
	if (id < 0)
		snprintf(err, errlen, "cannot queue the prepare job: %s",
		    sqlite3_errmsg(db));
	return id;
}

/*
 * Queues a snapshot of the service (why: "drain", "stop" or "api");
 * the caller wakes the workers.  -1 with err if the spec has no snapshot
 * or one is already queued or running.
 */
int64_t
prepare_snapshot_submit(sqlite3 *db, const struct coord *c,
    const json_t *spec, const char *why, char *err, size_t errlen)
{
	json_t			*snap = json_object_get(spec, "snapshot");
	json_t			*params, *priv, *busy;
	const char		*to = json_string_value(json_object_get(snap,
				    "to"));
	char			 shown[2048];
	int64_t			 id;

	if (to == NULL) {
		snprintf(err, errlen, "%s has no snapshot rule in its spec",
		    c->name);
		return -1;
	}
	if ((busy = jobs_active(db, "service.snapshot", c->name)) != NULL) {
		snprintf(err, errlen, "snapshot job %lld of %s is already %s",
		    (long long)json_integer_value(json_object_get(busy, "id")),
		    c->name, json_string_value(json_object_get(busy,
		    "state")));
		json_decref(busy);
		return -1;
	}
	if ((priv = prepare_snapshot_target(spec, c, err, errlen)) == NULL)
		return -1;
	fetch_url_redact(json_string_value(json_object_get(priv, "url")),
	    shown, sizeof(shown));
	params = json_pack("{s:s, s:s, s:O, s:s}", "coordinate", c->name,
	    "url", shown, "paths", json_object_get(snap, "paths"), "why", why);
	id = jobs_insert(db, "service.snapshot", c->name, params, priv);
	json_decref(params);
	json_decref(priv);
	if (id < 0)
		snprintf(err, errlen, "cannot queue the snapshot job: %s",
		    sqlite3_errmsg(db));
	return id;
}

/*
 * Where a snapshot of the service goes, resolved now: {"url", "s3"?} with
 * the URL's names substituted and the credentials to sign with.
 */
static json_t *
prepare_snapshot_target(const json_t *spec, const struct coord *c,
    char *err, size_t errlen)
{
	struct prepare_vars	 vars;
	json_t			*snap = json_object_get(spec, "snapshot");
	json_t			*priv, *cj = NULL;
	const char		*to = json_string_value(json_object_get(snap,
				    "to"));
	char			 rt[PATH_MAX], art[PATH_MAX], *url = NULL;

	if (to == NULL) {
		snprintf(err, errlen, "%s has no snapshot rule in its spec",
		    c->name);
		return NULL;
	}
	if (prepare_vars_for(spec, c, &vars, rt, sizeof(rt), art, sizeof(art),
	    err, errlen) != 0 ||
	    prepare_render(to, strlen(to), &vars, &url, NULL, err, errlen) != 0)
		return NULL;
	if (strncmp(url, "s3://", 5) == 0 && (cj = prepare_cred_json(spec,
	    json_string_value(json_object_get(snap, "credentials")), err,
	    errlen)) == NULL) {
		free(url);
		return NULL;
	}
	priv = json_pack("{s:s}", "url", url);
	if (cj != NULL)
		json_object_set_new(priv, "s3", cj);
	free(url);
	return priv;
}

/*
 * A new job uploading the archive a failed snapshot job kept: *rc
 * ND_ACCEPTED with the new id, else -1 with err and *rc ND_NOT_FOUND (no
 * such job) or ND_CONFLICT (not a failed snapshot with its archive, or
 * one of the service is queued or running).
 */
int64_t
prepare_snapshot_retry(sqlite3 *db, int64_t old, enum nd_rc *rc, char *err,
    size_t errlen)
{
	json_t		*j, *params, *priv;
	const char	*kind, *state, *archive, *subject;
	char		 shown[2048];
	int64_t		 id = -1;

	if ((j = jobs_get(db, old)) == NULL) {
		*rc = ND_NOT_FOUND;
		snprintf(err, errlen, "no job %lld", (long long)old);
		return -1;
	}
	kind = json_string_value(json_object_get(j, "kind"));
	state = json_string_value(json_object_get(j, "state"));
	subject = json_string_value(json_object_get(j, "subject"));
	params = json_object_get(j, "params");
	archive = json_string_value(json_object_get(params, "archive"));
	*rc = ND_CONFLICT;
	if (strcmp(kind, "service.snapshot") != 0) {
		snprintf(err, errlen, "only a snapshot job can be retried (job "
		    "%lld is %s)", (long long)old, kind);
		goto out;
	}
	if (strcmp(state, "failed") != 0 && strcmp(state, "cancelled") != 0) {
		snprintf(err, errlen, "job %lld is %s; only a failed or "
		    "cancelled snapshot can be retried", (long long)old, state);
		goto out;
	}
	if (archive == NULL || !fs_exists(archive)) {
		snprintf(err, errlen, "job %lld kept no archive (it failed "
		    "before the archive was made, or it was retried "
		    "already): take a new snapshot", (long long)old);
		goto out;
	}
	if ((priv = prepare_retry_target(db, old, subject, err, errlen)) ==
	    NULL)
		goto out;
	params = json_deep_copy(params);
	fetch_url_redact(json_string_value(json_object_get(priv, "url")),
	    shown, sizeof(shown));
	json_object_set_new(params, "url", json_string(shown));
	json_object_set_new(params, "retry_of", json_integer(old));
	json_object_set_new(params, "why", json_string("retry"));
	id = jobs_insert(db, "service.snapshot", subject, params, priv);
	json_decref(params);
	json_decref(priv);
	if (id < 0) {
		snprintf(err, errlen, "cannot queue the retry: %s (is a "
		    "snapshot of %s already queued or running?)",
		    sqlite3_errmsg(db), subject);
		goto out;
	}
	*rc = ND_ACCEPTED;
out:
	json_decref(j);
	return id;
}

/*
 * Where the retry of snapshot job old (of the service subject) uploads,
 * with what credentials: as the service's spec says now, since a retry
 * is how a wrong secret or an expired token gets fixed.  Only a service
 * that is gone (purged after its drain) keeps the old job's.  A new
 * private part for the job, or NULL with err.
 */
static json_t *
prepare_retry_target(sqlite3 *db, int64_t old, const char *subject,
    char *err, size_t errlen)
{
	sqlite3_stmt	*st;
	json_error_t	 je;
	struct coord	 c;
	json_t		*spec = NULL, *priv;
	char		 e[512];

	if (coord_parse(subject, &c, e, sizeof(e)) == 0 &&
	    sqlite3_prepare_v2(db, "SELECT secret_spec FROM services WHERE "
	    "coordinate = ?", -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_text(st, 1, c.name, -1, SQLITE_STATIC);
		if (sqlite3_step(st) == SQLITE_ROW &&
		    sqlite3_column_type(st, 0) != SQLITE_NULL)
			spec = json_loads((const char *)sqlite3_column_text(st,
			    0), 0, &je);
		sqlite3_finalize(st);
	}
	if (spec != NULL && json_object_get(spec, "snapshot") != NULL)
		priv = prepare_snapshot_target(spec, &c, err, errlen);
	/* The old job's private part has the URL whole and the credentials. */
	else if ((priv = jobs_private(db, old)) == NULL)
		snprintf(err, errlen, "job %lld has no upload target left: "
		    "take a new snapshot", (long long)old);
	json_decref(spec);
	return priv;
}

/*
 * The prepare job: every step staged in order, then all results applied
 * at once.  The results of the steps are kept in the job's params.
 */
static int
prepare_run(struct job *j, void *arg, char *err, size_t errlen)
{
	struct prep_run	 r;
	json_t		*results, *res;
	size_t		 i;
	int		 rtfd = -1, rc = -1;

	(void)arg;
	if (prepare_run_open(&r, j, &rtfd, err, errlen) != 0)
		goto out;
	results = json_array();
	json_object_set_new(j->params, "results", results);
	json_object_set_new(j->params, "new_runtime_dir",
	    json_boolean(r.is_new));
	if (prepare_steps(&r, results, err, errlen) != 0)
		goto out;
	if (jobs_cancelled(j)) {
		snprintf(err, errlen, "cancelled");
		goto out;
	}
	/* The bytes fetched stay shown once the job is done. */
	jobs_progress(j, "apply", r.fetched, r.fetched);
	if ((rc = prepare_apply(&r, rtfd, err, errlen)) == 0)
		json_array_foreach(results, i, res)
			if (strcmp(json_string_value(json_object_get(res,
			    "result")), "staged") == 0)
				json_object_set_new(res, "result",
				    json_string("done"));
out:
	(void)jobs_save_params(j);
	if (rtfd != -1)
		close(rtfd);
	if (r.artfd != -1)
		close(r.artfd);
	for (i = 0; i < r.nitems; i++) {
		free(r.items[i].staged);
		free(r.items[i].rel);
	}
	free(r.items);
	return rc;
}

/*
 * What a prepare job works with: its spec, the owner of what it makes,
 * the artifact (open), the runtime directory (open in *rtfd, or -1 when
 * it does not exist yet: is_new) and an empty staging area.
 */
static int
prepare_run_open(struct prep_run *r, struct job *j, int *rtfd, char *err,
    size_t errlen)
{
	json_t	*owner;

	memset(r, 0, sizeof(*r));
	r->j = j;
	r->artfd = -1;
	if ((r->spec = json_object_get(j->private, "spec")) == NULL) {
		snprintf(err, errlen, "the job has no spec");
		return -1;
	}
	if (coord_parse(j->subject, &r->c, err, errlen) != 0)
		return -1;
	if ((owner = json_object_get(j->params, "owner")) != NULL) {
		r->own = 1;
		r->uid = (uid_t)json_integer_value(json_object_get(owner,
		    "uid"));
		r->gid = (gid_t)json_integer_value(json_object_get(owner,
		    "gid"));
	}
	if (prepare_vars_for(r->spec, &r->c, &r->vars, r->rtdir,
	    sizeof(r->rtdir), r->artdir, sizeof(r->artdir), err, errlen) != 0)
		return -1;
	if ((r->artfd = open(r->artdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) ==
	    -1) {
		snprintf(err, errlen, "artifact %s: %s", r->artdir,
		    strerror(errno));
		return -1;
	}
	*rtfd = open(r->rtdir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC);
	if (*rtfd == -1 && errno != ENOENT) {
		snprintf(err, errlen, "runtime directory %s: %s", r->rtdir,
		    strerror(errno));
		return -1;
	}
	r->is_new = *rtfd == -1;
	if (snprintf(r->stage, sizeof(r->stage), "%s/stage", j->tmpdir) >=
	    (int)sizeof(r->stage) || mkdir(r->stage, 0755) != 0) {
		snprintf(err, errlen, "cannot create %s: %s", r->stage,
		    strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * Stages the results of every step, in order, and says in results what
 * each did; the first step that fails ends the job, its name in err.
 */
static int
prepare_steps(struct prep_run *r, json_t *results, char *err,
    size_t errlen)
{
	json_t		*steps = json_object_get(r->spec, "prepare"), *step;
	const char	*kind;
	char		 e[1024], phase[16], name[700];
	size_t		 i;
	int		 rc, skipped;

	r->nsteps = (int)json_array_size(steps);
	json_array_foreach(steps, i, step) {
		r->step = (int)i + 1;
		skipped = 0;
		kind = prepare_step_kind(step);
		snprintf(phase, sizeof(phase), "step %d/%d", r->step, r->nsteps);
		jobs_progress(r->j, phase, 0, 0);
		if (jobs_cancelled(r->j)) {
			snprintf(err, errlen, "cancelled");
			return -1;
		}
		if (json_is_true(json_object_get(step, "once")) && !r->is_new) {
			json_array_append_new(results, json_pack("{s:i, s:s}",
			    "step", r->step, "result", "skipped: once, and the "
			    "runtime directory exists"));
			continue;
		}
		e[0] = '\0';
		if (strcmp(kind, "copy") == 0)
			rc = prepare_copy(r, step, e, sizeof(e));
		else if (strcmp(kind, "template") == 0)
			rc = prepare_template(r, step, e, sizeof(e));
		else
			rc = prepare_fetch(r, step, &skipped, e, sizeof(e));
		if (rc != 0) {
			prepare_step_name(r, r->step, name, sizeof(name));
			snprintf(err, errlen, "%s: %s", name, e);
			return -1;
		}
		json_array_append_new(results, json_pack("{s:i, s:s}", "step",
		    r->step, "result", skipped ? "skipped: optional, and the "
		    "server has no such object (404)" : "staged"));
	}
	return 0;
}

static void
prepare_done(struct job *j, void *arg, const char *state, const char *error)
{
	char	 kind[64];
	json_t	*d;

	(void)arg;
	d = json_pack("{s:I, s:I}", "job", (json_int_t)j->id, "duration_ms",
	    (json_int_t)(store_now_ms() - j->started_ms));
	if (error != NULL)
		json_object_set_new(d, "reason", json_string(error));
	if (json_object_get(j->params != NULL ? j->params : NULL, "results"))
		json_object_set(d, "results", json_object_get(j->params,
		    "results"));
	snprintf(kind, sizeof(kind), "service.prepare.%s", state);
	store_event(kind, j->subject, d);
	json_decref(d);
	if (prepare_listen != NULL)
		prepare_listen(j->subject, j->id, strcmp(state, "succeeded") ==
		    0, error);
}

/*
 * The snapshot job: the archive first (unless an earlier run kept one),
 * then its upload; the archive goes only once uploaded.
 */
static int
prepare_snapshot_run(struct job *j, void *arg, char *err, size_t errlen)
{
	struct coord	 c;
	const char	*url, *archive;

	(void)arg;
	if (coord_parse(j->subject, &c, err, errlen) != 0)
		return -1;
	if ((url = json_string_value(json_object_get(j->private, "url"))) ==
	    NULL) {
		snprintf(err, errlen, "the job has no URL");
		return -1;
	}
	archive = json_string_value(json_object_get(j->params, "archive"));
	if (archive == NULL || !fs_exists(archive)) {
		if (prepare_snapshot_zip(j, &c, err, errlen) != 0)
			return -1;
		archive = json_string_value(json_object_get(j->params,
		    "archive"));
	}
	if (prepare_snapshot_upload(j, archive, url, err, errlen) != 0)
		return -1;
	/* Uploaded: the archive has done its job. */
	if (unlink(archive) != 0 && errno != ENOENT)
		log_warn("prepare", "cannot delete %s: %s", archive,
		    strerror(errno));
	json_object_set_new(j->params, "archive", json_null());
	(void)jobs_save_params(j);
	return 0;
}

/*
 * Zips the job's paths of the runtime directory into
 * state/snapshots/job-<id>.zip and records the archive in the job's
 * params, so a failed upload can be retried without zipping again.
 */
static int
prepare_snapshot_zip(struct job *j, const struct coord *c, char *err,
    size_t errlen)
{
	const struct config	*cf = prepare_cf;
	struct zipw_stats	 zs;
	json_t			*paths = json_object_get(j->params, "paths");
	const char		**pv;
	char			 rt[PATH_MAX], dir[PATH_MAX], out[PATH_MAX];
	size_t			 i, n = json_array_size(paths);
	int			 rc;

	if (coord_runtime_dir(cf, c, rt, sizeof(rt)) != 0 ||
	    snprintf(dir, sizeof(dir), "%s/state/snapshots", cf->prefix) >=
	    (int)sizeof(dir) ||
	    snprintf(out, sizeof(out), "%s/job-%lld.zip", dir,
	    (long long)j->id) >= (int)sizeof(out)) {
		snprintf(err, errlen, "path too long");
		return -1;
	}
	if (fs_mkdirs(dir, 0700) != 0) {
		snprintf(err, errlen, "cannot create %s: %s", dir,
		    strerror(errno));
		return -1;
	}
	if (n == 0 || (pv = calloc(n, sizeof(*pv))) == NULL) {
		snprintf(err, errlen, "the job has no paths");
		return -1;
	}
	for (i = 0; i < n; i++)
		pv[i] = json_string_value(json_array_get(paths, i));
	memset(&zs, 0, sizeof(zs));
	jobs_progress(j, "zip", 0, 0);
	rc = zipw_create(rt, pv, n, out, cf->archive_max_bytes,
	    prepare_progress, j, &zs, err, errlen);
	free(pv);
	if (rc != 0)
		return -1;
	json_object_set_new(j->params, "archive", json_string(out));
	json_object_set_new(j->params, "size_bytes",
	    json_integer((json_int_t)zs.bytes_out));
	json_object_set_new(j->params, "sha256", json_string(zs.sha256));
	json_object_set_new(j->params, "files",
	    json_integer((json_int_t)zs.files));
	json_object_set_new(j->params, "skipped",
	    json_integer((json_int_t)zs.skipped));
	if (zs.skipped > 0)
		json_object_set_new(j->params, "first_skipped",
		    json_string(zs.first_skipped));
	if (jobs_save_params(j) != 0) {
		snprintf(err, errlen, "cannot record the archive");
		unlink(out);
		return -1;
	}
	return 0;
}

/* PUTs the archive to url, signed with the job's S3 credentials if any. */
static int
prepare_snapshot_upload(struct job *j, const char *archive, const char *url,
    char *err, size_t errlen)
{
	struct fetch_opts	 fo;
	struct fetch_result	 fr;
	struct fetch_s3		 s3;
	struct stat		 st;
	json_t			*s3j = json_object_get(j->private, "s3");
	int			 fd, rc;

	if ((fd = open(archive, O_RDONLY | O_CLOEXEC)) == -1 ||
	    fstat(fd, &st) != 0) {
		snprintf(err, errlen, "cannot read %s: %s", archive,
		    strerror(errno));
		if (fd != -1)
			close(fd);
		return -1;
	}
	memset(&fo, 0, sizeof(fo));
	fo.url = url;
	fo.fd = fd;
	fo.progress = prepare_progress;
	fo.arg = j;
	/* zipw hashed the archive as it finished it: not read again. */
	fo.sha256 = json_string_value(json_object_get(j->params, "sha256"));
	if (s3j != NULL) {
		prepare_cred_use(s3j, &s3);
		fo.s3 = &s3;
	}
	jobs_progress(j, "upload", 0, (uint64_t)st.st_size);
	rc = fetch_put_file(&fo, (uint64_t)st.st_size, &fr, err, errlen);
	close(fd);
	if (rc != 0)
		return -1;
	json_object_set_new(j->params, "uploaded_at",
	    json_integer(store_now_ms()));
	json_object_set_new(j->params, "http_status",
	    json_integer(fr.http_status));
	return 0;
}

static void
prepare_snapshot_done(struct job *j, void *arg, const char *state,
    const char *error)
{
	static const char *const keep[] = { "url", "why", "size_bytes",
	    "sha256", "files", "skipped", "first_skipped", "archive",
	    "retry_of", NULL };
	json_t	*d;
	size_t	 i;
	int	 ok = strcmp(state, "succeeded") == 0;

	(void)arg;
	d = json_pack("{s:I, s:I}", "job", (json_int_t)j->id, "duration_ms",
	    (json_int_t)(store_now_ms() - j->started_ms));
	for (i = 0; keep[i] != NULL && j->params != NULL; i++)
		if (json_object_get(j->params, keep[i]) != NULL &&
		    !json_is_null(json_object_get(j->params, keep[i])))
			json_object_set(d, keep[i], json_object_get(j->params,
			    keep[i]));
	if (error != NULL)
		json_object_set_new(d, "reason", json_string(error));
	store_event(ok ? "service.snapshot" : strcmp(state, "cancelled") == 0 ?
	    "service.snapshot.cancelled" : "service.snapshot.failed",
	    j->subject, d);
	if (!ok)
		log_warn("prepare", "%s: snapshot job %lld %s: %s%s", j->subject,
		    (long long)j->id, state, error ? error : "",
		    json_object_get(d, "archive") ? " (the archive is kept "
		    "for a retry)" : "");
	json_decref(d);
}

/*
 * st[key], a path in the artifact or the runtime directory (flags as
 * fs_relpath_ok() takes them); where names the step in messages.
 */
static int
prepare_step_path(const json_t *st, const char *where, const char *key,
    int flags, char *err, size_t errlen)
{
	char	field[96];

	snprintf(field, sizeof(field), "%s.%s", where, key);
	return fs_relpath_ok(field, json_string_value(json_object_get(st, key)),
	    flags, err, errlen);
}

/* An optional boolean, false by default. */
static int
prepare_flag(json_t *o, const char *where, const char *key, char *err,
    size_t errlen)
{
	json_t	*v = json_object_get(o, key);

	if (v == NULL)
		json_object_set_new(o, key, json_false());
	else if (!json_is_boolean(v)) {
		snprintf(err, errlen, "%s.%s: must be true or false", where,
		    key);
		return -1;
	}
	return 0;
}

/*
 * A URL of a fetch step or a snapshot: its ${names} are known ones (the
 * options and env it names exist), it is http, https or s3, and an s3://
 * URL has credentials to sign with.
 */
static int
prepare_url_check(const struct config *cf, const json_t *spec,
    const char *field, const char *url, const char *cred, char *err,
    size_t errlen)
{
	struct prepare_vars	 v;
	struct coord		 c;
	char			 e[512], *out = NULL;
	json_t			*creds = json_object_get(spec, "credentials");

	memset(&c, 0, sizeof(c));
	snprintf(c.name, sizeof(c.name), "i.s.u.c");
	snprintf(c.instance, sizeof(c.instance), "i");
	snprintf(c.service, sizeof(c.service), "s");
	snprintf(c.user, sizeof(c.user), "u");
	snprintf(c.cell, sizeof(c.cell), "c");
	memset(&v, 0, sizeof(v));
	v.c = &c;
	v.node = cf->instance;
	v.runtime_dir = "/r";
	v.artifact_dir = "/a";
	v.options = json_object_get(spec, "options");
	v.env = json_object_get(spec, "env");
	if (prepare_render(url, strlen(url), &v, &out, NULL, e, sizeof(e)) !=
	    0) {
		snprintf(err, errlen, "%s: %s", field, e + (strncmp(e,
		    "line 1: ", 8) == 0 ? 8 : 0));
		return -1;
	}
	if (!fetch_url_ok_s3(out, e, sizeof(e))) {
		snprintf(err, errlen, "%s: %s", field, e);
		free(out);
		return -1;
	}
	if (cred != NULL && json_object_get(creds, cred) == NULL) {
		snprintf(err, errlen, "%s: credentials '%.64s' are not in the "
		    "spec's credentials", field, cred);
		free(out);
		return -1;
	}
	if (strncmp(out, "s3://", 5) == 0 && cred == NULL &&
	    (cf->s3_access_key_id[0] == '\0' ||
	    cf->s3_secret_access_key[0] == '\0')) {
		snprintf(err, errlen, "%s: an s3:// URL needs credentials: name "
		    "an entry of the spec's credentials, or set "
		    "s3_access_key_id and s3_secret_access_key in the "
		    "configuration", field);
		free(out);
		return -1;
	}
	free(out);
	return 0;
}

static int
prepare_creds_check(const json_t *creds, char *err, size_t errlen)
{
	static const char *const keys[] = { "access_key_id",
	    "secret_access_key", "session_token", "region", "endpoint", NULL };
	const char	*name, *k;
	json_t		*c, *v;
	char		 where[128], e[512];
	size_t		 i;

	if (creds == NULL)
		return 0;
	if (!json_is_object(creds)) {
		snprintf(err, errlen, "credentials: must be an object of named "
		    "credentials");
		return -1;
	}
	json_object_foreach((json_t *)creds, name, c) {
		for (i = 0; name[i] != '\0'; i++)
			if (!((name[i] >= 'a' && name[i] <= 'z') ||
			    (name[i] >= '0' && name[i] <= '9') ||
			    name[i] == '-' || name[i] == '_'))
				break;
		if (i == 0 || name[i] != '\0' || i > 63) {
			snprintf(err, errlen, "credentials: names are 1 to 63 "
			    "of a-z, 0-9, '-' and '_'");
			return -1;
		}
		snprintf(where, sizeof(where), "credentials.%s.", name);
		if (service_only_keys(c, where, keys, err, errlen) != 0)
			return -1;
		json_object_foreach(c, k, v) {
			if (!json_is_string(v) || json_string_length(v) == 0 ||
			    json_string_length(v) > 1024) {
				snprintf(err, errlen, "%s%s: must be a "
				    "non-empty string", where, k);
				return -1;
			}
			if (strcmp(json_string_value(v), PREPARE_HIDDEN) == 0) {
				snprintf(err, errlen, "%s%s: give the secret "
				    "itself, not the %s the API shows", where,
				    k, PREPARE_HIDDEN);
				return -1;
			}
		}
		if (json_object_get(c, "access_key_id") == NULL ||
		    json_object_get(c, "secret_access_key") == NULL) {
			snprintf(err, errlen, "credentials.%s: access_key_id "
			    "and secret_access_key are required", name);
			return -1;
		}
		if ((v = json_object_get(c, "endpoint")) != NULL &&
		    !fetch_url_ok(json_string_value(v), e, sizeof(e))) {
			snprintf(err, errlen, "%sendpoint: %s", where, e);
			return -1;
		}
		if (v != NULL && strpbrk(json_string_value(v), "@?#") != NULL) {
			snprintf(err, errlen, "%sendpoint: an S3 endpoint is a "
			    "scheme, a host, a port and perhaps a path: no user "
			    "information, query or fragment", where);
			return -1;
		}
	}
	return 0;
}

/*
 * Checks step n (1-based) of "prepare": exactly one of copy, template
 * and fetch, and that kind's fields.
 */
static int
prepare_step_check(const struct config *cf, const json_t *spec, json_t *st,
    size_t n, char *err, size_t errlen)
{
	char	where[64];
	int	kinds;

	snprintf(where, sizeof(where), "prepare[%zu]", n - 1);
	if (!json_is_object(st)) {
		snprintf(err, errlen, "%s: must be an object with copy, "
		    "template or fetch", where);
		return -1;
	}
	kinds = (json_object_get(st, "copy") != NULL) +
	    (json_object_get(st, "template") != NULL) +
	    (json_object_get(st, "fetch") != NULL);
	if (kinds != 1) {
		snprintf(err, errlen, "%s: must have exactly one of copy, "
		    "template and fetch", where);
		return -1;
	}
	if (prepare_flag(st, where, "once", err, errlen) != 0)
		return -1;
	if (json_object_get(st, "copy") != NULL)
		return prepare_copy_check(st, where, err, errlen);
	if (json_object_get(st, "template") != NULL)
		return prepare_template_check(st, where, err, errlen);
	return prepare_fetch_check(cf, spec, st, where, err, errlen);
}

/* A file or a tree of the artifact, to a file or a directory. */
static int
prepare_copy_check(json_t *st, const char *where, char *err, size_t errlen)
{
	static const char *const keys[] = { "copy", "to", "overwrite",
	    "once", NULL };
	char	field[96];

	snprintf(field, sizeof(field), "%s.", where);
	if (service_only_keys(st, field, keys, err, errlen) != 0 ||
	    prepare_flag(st, where, "overwrite", err, errlen) != 0)
		return -1;
	if (prepare_step_path(st, where, "copy", FS_REL_DIR, err, errlen) != 0)
		return -1;
	return prepare_step_path(st, where, "to", FS_REL_DOT | FS_REL_DIR, err,
	    errlen);
}

/* A file of the artifact, rendered to a file. */
static int
prepare_template_check(json_t *st, const char *where, char *err,
    size_t errlen)
{
	static const char *const keys[] = { "template", "to", "once", NULL };
	char	field[96];

	snprintf(field, sizeof(field), "%s.", where);
	if (service_only_keys(st, field, keys, err, errlen) != 0)
		return -1;
	if (prepare_step_path(st, where, "template", 0, err, errlen) != 0)
		return -1;
	return prepare_step_path(st, where, "to", 0, err, errlen);
}

/*
 * A URL (or "snapshot": the spec's own snapshot) fetched to a file, or
 * a zip unpacked into a directory; perhaps checked, perhaps optional.
 */
static int
prepare_fetch_check(const struct config *cf, const json_t *spec, json_t *st,
    const char *where, char *err, size_t errlen)
{
	static const char *const keys[] = { "fetch", "sha256", "unpack", "to",
	    "once", "optional", "credentials", NULL };
	const char	*cred, *u, *h;
	char		 field[96];
	json_t		*v;

	snprintf(field, sizeof(field), "%s.", where);
	if (service_only_keys(st, field, keys, err, errlen) != 0 ||
	    prepare_flag(st, where, "optional", err, errlen) != 0)
		return -1;
	if ((json_object_get(st, "unpack") != NULL) ==
	    (json_object_get(st, "to") != NULL)) {
		snprintf(err, errlen, "%s: needs exactly one of unpack (a "
		    "directory to unpack a zip into) and to (a file)", where);
		return -1;
	}
	if (json_object_get(st, "unpack") != NULL ?
	    prepare_step_path(st, where, "unpack", FS_REL_DOT | FS_REL_DIR, err,
	    errlen) != 0 :
	    prepare_step_path(st, where, "to", 0, err, errlen) != 0)
		return -1;
	if ((v = json_object_get(st, "sha256")) != NULL && ((h =
	    json_string_value(v)) == NULL || strlen(h) != 64 ||
	    strspn(h, "0123456789abcdefABCDEF") != 64)) {
		snprintf(err, errlen, "%s.sha256: must be 64 hex digits",
		    where);
		return -1;
	}
	if ((v = json_object_get(st, "credentials")) != NULL &&
	    !json_is_string(v)) {
		snprintf(err, errlen, "%s.credentials: must be the name of an "
		    "entry of credentials", where);
		return -1;
	}
	cred = json_string_value(v);
	if ((u = json_string_value(json_object_get(st, "fetch"))) == NULL) {
		snprintf(err, errlen, "%s.fetch: must be an http, https or "
		    "s3:// URL, or \"snapshot\"", where);
		return -1;
	}
	if (strcmp(u, "snapshot") != 0) {
		snprintf(field, sizeof(field), "%s.fetch", where);
		return prepare_url_check(cf, spec, field, u, cred, err, errlen);
	}
	if (json_object_get(spec, "snapshot") == NULL) {
		snprintf(err, errlen, "%s.fetch: \"snapshot\" needs a snapshot "
		    "rule in the spec", where);
		return -1;
	}
	if (cred != NULL) {
		snprintf(err, errlen, "%s.credentials: a fetch of the snapshot "
		    "uses snapshot.credentials", where);
		return -1;
	}
	return 0;
}

/*
 * The credentials an s3:// URL is signed with, resolved now: the named
 * entry of the spec's credentials, or the configuration's.
 */
static json_t *
prepare_cred_json(const json_t *spec, const char *name, char *err,
    size_t errlen)
{
	const struct config	*cf = prepare_cf;
	json_t			*c = NULL, *o;
	const char		*region, *endpoint;
	char			 ep[CONFIG_URL_MAX + 64];

	if (name != NULL && (c = json_object_get(json_object_get(spec,
	    "credentials"), name)) == NULL) {
		snprintf(err, errlen, "credentials '%s' are not in the spec",
		    name);
		return NULL;
	}
	if (c == NULL && (cf->s3_access_key_id[0] == '\0' ||
	    cf->s3_secret_access_key[0] == '\0')) {
		snprintf(err, errlen, "an s3:// URL needs credentials, and the "
		    "spec names none and s3_access_key_id is not set");
		return NULL;
	}
	region = json_string_value(json_object_get(c, "region"));
	if (region == NULL)
		region = cf->s3_region;
	endpoint = json_string_value(json_object_get(c, "endpoint"));
	if (endpoint == NULL && cf->s3_endpoint[0] != '\0')
		endpoint = cf->s3_endpoint;
	if (endpoint == NULL) {
		snprintf(ep, sizeof(ep), "https://s3.%s.amazonaws.com", region);
		endpoint = ep;
	}
	o = json_pack("{s:s, s:s, s:s, s:s}", "endpoint", endpoint, "region",
	    region, "access_key_id", c != NULL ? json_string_value(
	    json_object_get(c, "access_key_id")) : cf->s3_access_key_id,
	    "secret_access_key", c != NULL ? json_string_value(
	    json_object_get(c, "secret_access_key")) :
	    cf->s3_secret_access_key);
	if (c != NULL && json_object_get(c, "session_token") != NULL)
		json_object_set(o, "session_token", json_object_get(c,
		    "session_token"));
	return o;
}

/* Points s3 at the strings of cj (which must outlive it). */
static void
prepare_cred_use(const json_t *cj, struct fetch_s3 *s3)
{
	memset(s3, 0, sizeof(*s3));
	s3->endpoint = json_string_value(json_object_get(cj, "endpoint"));
	s3->region = json_string_value(json_object_get(cj, "region"));
	s3->access_key_id = json_string_value(json_object_get(cj,
	    "access_key_id"));
	s3->secret_access_key = json_string_value(json_object_get(cj,
	    "secret_access_key"));
	s3->session_token = json_string_value(json_object_get(cj,
	    "session_token"));
}

static int
prepare_vars_for(const json_t *spec, const struct coord *c,
    struct prepare_vars *v, char *rt, size_t rtlen, char *art, size_t artlen,
    char *err, size_t errlen)
{
	struct artifact_coord	ac;

	if (coord_runtime_dir(prepare_cf, c, rt, rtlen) != 0 ||
	    artifact_parse(json_string_value(json_object_get(spec,
	    "artifact")), &ac, err, errlen) != 0 ||
	    artifact_dir(prepare_cf, &ac, art, artlen) != 0) {
		if (err[0] == '\0')
			snprintf(err, errlen, "path too long");
		return -1;
	}
	memset(v, 0, sizeof(*v));
	v->c = c;
	v->node = prepare_cf->instance;
	v->runtime_dir = rt;
	v->artifact_dir = art;
	v->options = json_object_get(spec, "options");
	v->env = json_object_get(spec, "env");
	return 0;
}

/*
 * openat2() confined to dirfd's tree: ".." above it, an absolute path
 * or a symlink leading out fails with EXDEV; /proc magic links too.
 */
static int
prepare_beneath(int dirfd, const char *path, int flags, mode_t mode)
{
	struct open_how	how;

	memset(&how, 0, sizeof(how));
	how.flags = (uint64_t)(flags | O_CLOEXEC);
	how.mode = (flags & O_CREAT) ? mode : 0;
	how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
	return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
}

static int
prepare_stage_name(struct prep_run *r, char *out, size_t outlen)
{
	if (snprintf(out, outlen, "%s/%u", r->stage, r->seq++) >= (int)outlen) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

static int
prepare_add(struct prep_run *r, enum prep_item_kind kind, const char *staged,
    const char *rel, int keep)
{
	struct prep_item	*n;
	size_t			 len;

	if (r->nitems == r->capitems) {
		r->capitems = r->capitems ? r->capitems * 2 : 32;
		if ((n = reallocarray(r->items, r->capitems, sizeof(*n))) ==
		    NULL)
			return -1;
		r->items = n;
	}
	n = &r->items[r->nitems];
	n->kind = kind;
	n->keep = keep;
	n->step = r->step;
	n->staged = NULL;
	if ((staged != NULL && (n->staged = strdup(staged)) == NULL) ||
	    (n->rel = strdup(rel)) == NULL) {
		free(n->staged);
		return -1;
	}
	/* "conf/" and "conf" are the same place. */
	while ((len = strlen(n->rel)) > 1 && n->rel[len - 1] == '/')
		n->rel[len - 1] = '\0';
	r->nitems++;
	return 0;
}

/* dir + "/" + name, or name alone where dir is "." */
static char *
prepare_join(const char *dir, const char *name)
{
	char	*s;
	size_t	 len = strlen(dir);

	while (len > 0 && dir[len - 1] == '/')
		len--;
	if ((len == 1 && dir[0] == '.') || len == 0)
		return strdup(name);
	if (asprintf(&s, "%.*s/%s", (int)len, dir, name) == -1)
		return NULL;
	return s;
}

static int
prepare_copy(struct prep_run *r, const json_t *st, char *err, size_t errlen)
{
	const char	*src = json_string_value(json_object_get(st, "copy"));
	const char	*to = json_string_value(json_object_get(st, "to"));
	const char	*base;
	struct stat	 sb;
	char		*dest;
	int		 fd, rc, keep = !json_is_true(json_object_get(st,
			    "overwrite"));
	size_t		 tl = strlen(to);

	if ((fd = prepare_beneath(r->artfd, src, O_RDONLY | O_NONBLOCK, 0)) ==
	    -1 || fstat(fd, &sb) != 0) {
		snprintf(err, errlen, "%s: %s", src, errno == EXDEV ?
		    "leads out of the artifact" : strerror(errno));
		if (fd != -1)
			close(fd);
		return -1;
	}
	if (S_ISDIR(sb.st_mode)) {
		rc = prepare_copy_tree(r, fd, to, keep, 0, err, errlen);
		close(fd);
		return rc;
	}
	if (!S_ISREG(sb.st_mode)) {
		close(fd);
		snprintf(err, errlen, "%s: not a file or a directory", src);
		return -1;
	}
	/* A file copied to "dir/" keeps its name. */
	if (to[tl - 1] == '/' || strcmp(to, ".") == 0) {
		base = strrchr(src, '/') ? strrchr(src, '/') + 1 : src;
		dest = prepare_join(to, base);
	} else
		dest = strdup(to);
	if (dest == NULL) {
		close(fd);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	rc = prepare_copy_file(r, fd, src, &sb, dest, keep, err, errlen);
	free(dest);
	close(fd);
	return rc;
}

/* Stages a copy of the open file fd, to be renamed to rel. */
static int
prepare_copy_file(struct prep_run *r, int fd, const char *name,
    const struct stat *sb, const char *rel, int keep, char *err,
    size_t errlen)
{
	char	staged[PATH_MAX], buf[65536];
	ssize_t	n;
	int	out;

	if (prepare_stage_name(r, staged, sizeof(staged)) != 0 ||
	    (out = open(staged, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
	    0600)) == -1) {
		snprintf(err, errlen, "cannot stage %s: %s", name,
		    strerror(errno));
		return -1;
	}
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		if (write(out, buf, (size_t)n) != n) {
			n = -1;
			break;
		}
	if (n < 0 || fchmod(out, (sb->st_mode & 0111) ? 0755 : 0644) != 0 ||
	    (r->own && fchown(out, r->uid, r->gid) != 0)) {
		snprintf(err, errlen, "cannot copy %s: %s", name,
		    strerror(errno));
		close(out);
		return -1;
	}
	close(out);
	if (prepare_add(r, IT_FILE, staged, rel, keep) != 0) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

/*
 * Stages every entry under the directory dfd for rel: files one by one
 * (each may be kept), directories so that empty ones exist too, links
 * as links (the artifact's were checked to stay inside at install).
 */
static int
prepare_copy_tree(struct prep_run *r, int dfd, const char *rel, int keep,
    int depth, char *err, size_t errlen)
{
	DIR		*d;
	struct dirent	*de;
	struct stat	 sb;
	char		*sub;
	int		 fd, dup_fd, rc = 0;

	if (depth > 64) {
		snprintf(err, errlen, "%s: directories nested too deep", rel);
		return -1;
	}
	if (prepare_add(r, IT_DIR, NULL, rel, 1) != 0 ||
	    (dup_fd = dup(dfd)) == -1) {
		snprintf(err, errlen, "%s: %s", rel, strerror(errno));
		return -1;
	}
	if ((d = fdopendir(dup_fd)) == NULL) {
		snprintf(err, errlen, "%s: %s", rel, strerror(errno));
		close(dup_fd);
		return -1;
	}
	while (rc == 0 && (de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		if ((sub = prepare_join(rel, de->d_name)) == NULL) {
			snprintf(err, errlen, "out of memory");
			rc = -1;
			break;
		}
		if (fstatat(dfd, de->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0) {
			snprintf(err, errlen, "%s: %s", sub, strerror(errno));
			rc = -1;
		} else if (S_ISDIR(sb.st_mode)) {
			if ((fd = openat(dfd, de->d_name, O_RDONLY |
			    O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) == -1) {
				snprintf(err, errlen, "%s: %s", sub,
				    strerror(errno));
				rc = -1;
			} else {
				rc = prepare_copy_tree(r, fd, sub, keep,
				    depth + 1, err, errlen);
				close(fd);
			}
		} else if (S_ISREG(sb.st_mode)) {
			if ((fd = openat(dfd, de->d_name, O_RDONLY |
			    O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)) == -1) {
				snprintf(err, errlen, "%s: %s", sub,
				    strerror(errno));
				rc = -1;
			} else {
				rc = prepare_copy_file(r, fd, sub, &sb, sub,
				    keep, err, errlen);
				close(fd);
			}
		} else if (S_ISLNK(sb.st_mode))
			rc = prepare_copy_link(r, dfd, de->d_name, sub, keep,
			    err, errlen);
		/* Devices, FIFOs, sockets: an artifact has none. */
		free(sub);
	}
	closedir(d);
	return rc;
}

/*
 * Stages a copy of the link name in dfd for rel.  Where it lands, it
 * must still point inside (the artifact's links were checked where they
 * were, not where a copy puts them).
 */
static int
prepare_copy_link(struct prep_run *r, int dfd, const char *name,
    const char *rel, int keep, char *err, size_t errlen)
{
	char	target[PATH_MAX], staged[PATH_MAX], why[256];
	ssize_t	n;

	if ((n = readlinkat(dfd, name, target, sizeof(target) - 1)) < 0 ||
	    prepare_stage_name(r, staged, sizeof(staged)) != 0) {
		snprintf(err, errlen, "%s: %s", rel, strerror(errno));
		return -1;
	}
	target[n] = '\0';
	if (!unzip_link_ok(rel, target, why, sizeof(why))) {
		snprintf(err, errlen, "%.300s -> %.300s: %.200s", rel, target,
		    why);
		return -1;
	}
	if (symlink(target, staged) != 0 || (r->own && lchown(staged, r->uid,
	    r->gid) != 0) || prepare_add(r, IT_FILE, staged, rel, keep) != 0) {
		snprintf(err, errlen, "%s: %s", rel, strerror(errno));
		return -1;
	}
	return 0;
}

static int
prepare_template(struct prep_run *r, const json_t *st, char *err,
    size_t errlen)
{
	const char	*src = json_string_value(json_object_get(st,
			    "template"));
	const char	*to = json_string_value(json_object_get(st, "to"));
	struct stat	 sb;
	char		 staged[PATH_MAX], *in = NULL, *out = NULL;
	size_t		 len = 0, olen;
	ssize_t		 n = 0;
	int		 fd, ofd;

	if ((fd = prepare_beneath(r->artfd, src, O_RDONLY | O_NONBLOCK, 0)) ==
	    -1 || fstat(fd, &sb) != 0) {
		snprintf(err, errlen, "%s", errno == EXDEV ? "leads out of "
		    "the artifact" : strerror(errno));
		if (fd != -1)
			close(fd);
		return -1;
	}
	if (!S_ISREG(sb.st_mode) || sb.st_size > PREPARE_TEMPLATE_MAX) {
		snprintf(err, errlen, "%s", !S_ISREG(sb.st_mode) ? "not a "
		    "file" : "larger than 1 MiB");
		close(fd);
		return -1;
	}
	if ((in = malloc((size_t)sb.st_size + 1)) == NULL) {
		close(fd);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	while (len < (size_t)sb.st_size && (n = read(fd, in + len,
	    (size_t)sb.st_size - len)) > 0)
		len += (size_t)n;
	close(fd);
	if (len != (size_t)sb.st_size) {
		free(in);
		snprintf(err, errlen, "cannot read it whole: %s", n < 0 ?
		    strerror(errno) : "it changed while read");
		return -1;
	}
	if (memchr(in, '\0', len) != NULL) {
		free(in);
		snprintf(err, errlen, "not a text file (it contains NUL "
		    "bytes)");
		return -1;
	}
	if (prepare_render(in, len, &r->vars, &out, &olen, err, errlen) != 0) {
		free(in);
		return -1;
	}
	free(in);
	if (prepare_stage_name(r, staged, sizeof(staged)) != 0 ||
	    (ofd = open(staged, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
	    0600)) == -1) {
		free(out);
		snprintf(err, errlen, "cannot stage: %s", strerror(errno));
		return -1;
	}
	if (write(ofd, out, olen) != (ssize_t)olen ||
	    fchmod(ofd, (sb.st_mode & 0111) ? 0755 : 0644) != 0 ||
	    (r->own && fchown(ofd, r->uid, r->gid) != 0)) {
		snprintf(err, errlen, "cannot write: %s", strerror(errno));
		close(ofd);
		free(out);
		return -1;
	}
	close(ofd);
	free(out);
	if (prepare_add(r, IT_FILE, staged, to, 0) != 0) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

/*
 * A fetch step: a file staged for "to", or the top-level entries of an
 * archive staged for "unpack".  An optional object the server does not
 * have (404) is *skipped, not an error.
 */
static int
prepare_fetch(struct prep_run *r, const json_t *st, int *skipped, char *err,
    size_t errlen)
{
	const char	*unpack = json_string_value(json_object_get(st,
			    "unpack"));
	char		 dl[PATH_MAX];
	int		 fd;

	*skipped = 0;
	if ((fd = prepare_fetch_get(r, st, dl, sizeof(dl), skipped, err,
	    errlen)) == -1)
		return *skipped ? 0 : -1;
	if (unpack != NULL) {
		close(fd);
		return prepare_fetch_unpack(r, dl, unpack, err, errlen);
	}
	if (fchmod(fd, 0644) != 0 || (r->own && fchown(fd, r->uid, r->gid) !=
	    0) || fsync(fd) != 0) {
		snprintf(err, errlen, "cannot stage: %s", strerror(errno));
		close(fd);
		return -1;
	}
	close(fd);
	if (prepare_add(r, IT_FILE, dl, json_string_value(json_object_get(st,
	    "to")), 0) != 0) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

/*
 * Downloads the step's URL (its names substituted, signed for s3://)
 * into a new staged file, dl, and checks its sha256 if the step gives
 * one.  Returns the open file, or -1: an error, or with *skipped set an
 * optional object the server does not have.
 */
static int
prepare_fetch_get(struct prep_run *r, const json_t *st, char *dl,
    size_t dllen, int *skipped, char *err, size_t errlen)
{
	struct fetch_opts	 fo;
	struct fetch_result	 fr;
	struct fetch_s3		 s3;
	json_t			*snap = json_object_get(r->spec, "snapshot");
	json_t			*cj = NULL;
	const char		*u = json_string_value(json_object_get(st,
				    "fetch"));
	const char		*want = json_string_value(json_object_get(st,
				    "sha256"));
	const char		*cred = json_string_value(json_object_get(st,
				    "credentials"));
	char			*url = NULL;
	int			 fd = -1;

	if (strcmp(u, "snapshot") == 0) {
		u = json_string_value(json_object_get(snap, "to"));
		cred = json_string_value(json_object_get(snap, "credentials"));
	}
	if (prepare_render(u, strlen(u), &r->vars, &url, NULL, err, errlen) !=
	    0)
		return -1;
	memset(&fo, 0, sizeof(fo));
	if (strncmp(url, "s3://", 5) == 0) {
		if ((cj = prepare_cred_json(r->spec, cred, err, errlen)) ==
		    NULL)
			goto fail;
		prepare_cred_use(cj, &s3);
		fo.s3 = &s3;
	}
	if (prepare_stage_name(r, dl, dllen) != 0 ||
	    (fd = open(dl, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) ==
	    -1) {
		snprintf(err, errlen, "cannot stage: %s", strerror(errno));
		goto fail;
	}
	fo.url = url;
	fo.fd = fd;
	fo.max_bytes = prepare_cf->download_max;
	fo.progress = prepare_progress;
	fo.arg = r->j;
	memset(&fr, 0, sizeof(fr));
	if (fetch_file(&fo, &fr, err, errlen) != 0) {
		*skipped = fr.http_status == 404 &&
		    json_is_true(json_object_get(st, "optional"));
		goto fail;
	}
	r->fetched += fr.bytes;
	if (want != NULL && strcasecmp(want, fr.sha256) != 0) {
		snprintf(err, errlen, "checksum mismatch: expected sha256 %s, "
		    "downloaded %s", want, fr.sha256);
		goto fail;
	}
	json_decref(cj);
	free(url);
	return fd;
fail:
	if (fd != -1)
		close(fd);
	json_decref(cj);
	free(url);
	return -1;
}

/*
 * Unpacks the downloaded archive dl into the staging area, then stages
 * each of its top-level entries for the directory unpack: each replaces
 * its namesake there, and the rest of that directory stays.
 */
static int
prepare_fetch_unpack(struct prep_run *r, const char *dl, const char *unpack,
    char *err, size_t errlen)
{
	const struct config	*cf = prepare_cf;
	struct unzip_limits	 lim;
	struct unzip_stats	 us;
	DIR			*d;
	struct dirent		*de;
	char			 un[PATH_MAX], path[PATH_MAX], *sub;
	int			 rc = 0;

	if (prepare_stage_name(r, un, sizeof(un)) != 0 || mkdir(un, 0755) !=
	    0) {
		snprintf(err, errlen, "cannot stage: %s", strerror(errno));
		return -1;
	}
	memset(&lim, 0, sizeof(lim));
	lim.max_entries = cf->archive_max_entries;
	lim.max_bytes = cf->archive_max_bytes;
	lim.threads = cf->unpack_threads;
	lim.writable = 1;
	memset(&us, 0, sizeof(us));
	if (unzip_extract(dl, un, &lim, prepare_progress, r->j, &us, err,
	    errlen) != 0)
		return -1;
	unlink(dl);
	if (r->own && fs_chown_tree(un, r->uid, r->gid) != 0) {
		snprintf(err, errlen, "cannot give the files to uid %u: %s",
		    (unsigned)r->uid, strerror(errno));
		return -1;
	}
	if ((d = opendir(un)) == NULL) {
		snprintf(err, errlen, "cannot read the unpacked archive: %s",
		    strerror(errno));
		return -1;
	}
	while (rc == 0 && (de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		sub = prepare_join(unpack, de->d_name);
		if (sub == NULL || snprintf(path, sizeof(path), "%s/%s", un,
		    de->d_name) >= (int)sizeof(path) ||
		    prepare_add(r, IT_TREE, path, sub, 0) != 0) {
			snprintf(err, errlen, "out of memory");
			rc = -1;
		}
		free(sub);
	}
	closedir(d);
	/* An empty archive still makes its directory. */
	if (rc == 0 && strcmp(unpack, ".") != 0 && strcmp(unpack, "./") != 0 &&
	    prepare_add(r, IT_DIR, NULL, unpack, 1) != 0) {
		snprintf(err, errlen, "out of memory");
		rc = -1;
	}
	return rc;
}

/*
 * Moves every staged result into the runtime directory, in step order.
 * Everything that could fail for a reason outside nodee (a download, a
 * bad template, a hostile archive) has failed before this point.
 */
static int
prepare_apply(struct prep_run *r, int rtfd, char *err, size_t errlen)
{
	char	root[PATH_MAX], trash[PATH_MAX];
	size_t	i;
	int	fd = rtfd;

	if (snprintf(trash, sizeof(trash), "%s/trash", r->j->tmpdir) >=
	    (int)sizeof(trash) || mkdir(trash, 0700) != 0) {
		snprintf(err, errlen, "cannot create %s: %s", trash,
		    strerror(errno));
		return -1;
	}
	if (r->is_new) {
		if (snprintf(root, sizeof(root), "%s/rt", r->j->tmpdir) >=
		    (int)sizeof(root) || mkdir(root, 0755) != 0 || (r->own &&
		    chown(root, r->uid, r->gid) != 0) ||
		    (fd = open(root, O_RDONLY | O_DIRECTORY |
		    O_CLOEXEC)) == -1) {
			snprintf(err, errlen, "cannot create %s: %s", root,
			    strerror(errno));
			return -1;
		}
	}
	/*
	 * Every place is looked at before anything moves, so a symlink the
	 * service planted fails the start without half the results applied.
	 */
	if (!r->is_new && prepare_preflight(r, fd, err, errlen) != 0)
		goto fail;
	/* A stop or a delete (perhaps with purge) wants none of it. */
	if (jobs_cancelled(r->j)) {
		snprintf(err, errlen, "cancelled");
		goto fail;
	}
	for (i = 0; i < r->nitems; i++)
		if (prepare_apply_one(r, fd, trash, &r->items[i], (unsigned)i,
		    err, errlen) != 0) {
			char	name[700], why[1024];

			prepare_step_name(r, r->items[i].step, name,
			    sizeof(name));
			snprintf(why, sizeof(why), "%s", err);
			snprintf(err, errlen, "%s: %s", name, why);
			goto fail;
		}
	if (syncfs(fd) != 0) {
		snprintf(err, errlen, "cannot sync: %s", strerror(errno));
		goto fail;
	}
	if (r->is_new) {
		char	parent[PATH_MAX];

		close(fd);
		snprintf(parent, sizeof(parent), "%s", r->rtdir);
		*strrchr(parent, '/') = '\0';
		if (jobs_cancelled(r->j)) {
			snprintf(err, errlen, "cancelled");
			return -1;
		}
		if (fs_mkdirs(parent, 0755) != 0 || rename(root, r->rtdir) !=
		    0) {
			snprintf(err, errlen, "cannot move the new runtime "
			    "directory into place: %s", strerror(errno));
			return -1;
		}
		(void)fs_fsync_dir(parent);
	}
	return 0;
fail:
	if (r->is_new)
		close(fd);
	return -1;
}

static int
prepare_apply_one(struct prep_run *r, int rootfd, const char *trash,
    const struct prep_item *it, unsigned n, char *err, size_t errlen)
{
	struct stat	 sb, ss;
	char		 parent[PATH_MAX], gone[PATH_MAX];
	const char	*base;
	int		 pfd, exists, rc = -1;

	snprintf(parent, sizeof(parent), "%s", it->rel);
	if (strcmp(parent, ".") == 0 || strcmp(parent, "./") == 0)
		return 0;
	if ((base = strrchr(it->rel, '/')) != NULL) {
		parent[base - it->rel] = '\0';
		base++;
	} else {
		snprintf(parent, sizeof(parent), ".");
		base = it->rel;
	}
	if ((pfd = prepare_parent(r, rootfd, parent, err, errlen)) == -1)
		return -1;
	exists = fstatat(pfd, base, &sb, AT_SYMLINK_NOFOLLOW) == 0;
	if (it->kind == IT_DIR) {
		if (exists && !S_ISDIR(sb.st_mode) && !S_ISLNK(sb.st_mode)) {
			snprintf(err, errlen, "%s: exists and is not a "
			    "directory", it->rel);
			goto out;
		}
		if (!exists && prepare_mkdir(r, pfd, base) != 0) {
			snprintf(err, errlen, "%s: %s", it->rel,
			    strerror(errno));
			goto out;
		}
		rc = 0;
		goto out;
	}
	if (exists && it->keep) {
		rc = 0;
		goto out;
	}
	/* A directory is not replaced by rename(2): it goes aside first. */
	if (exists && (S_ISDIR(sb.st_mode) || (lstat(it->staged, &ss) == 0 &&
	    S_ISDIR(ss.st_mode)))) {
		if (snprintf(gone, sizeof(gone), "%s/%u", trash, n) >=
		    (int)sizeof(gone) || renameat(pfd, base, AT_FDCWD, gone) !=
		    0) {
			snprintf(err, errlen, "%s: cannot move the old one "
			    "aside: %s", it->rel, strerror(errno));
			goto out;
		}
	}
	if (renameat(AT_FDCWD, it->staged, pfd, base) != 0) {
		snprintf(err, errlen, "%s: %s", it->rel, strerror(errno));
		goto out;
	}
	rc = 0;
out:
	close(pfd);
	return rc;
}

/*
 * mkdir, then chown what was made through a descriptor of it: by name,
 * the service could swap the new directory for a hard link to a file of
 * root's between the two calls and be given that file.
 */
static int
prepare_mkdir(struct prep_run *r, int pfd, const char *name)
{
	struct stat	st;
	int		fd;

	if (mkdirat(pfd, name, 0755) != 0)
		return -1;
	if (!r->own)
		return 0;
	if ((fd = openat(pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC)) == -1)
		return -1;
	if (fstat(fd, &st) != 0 || st.st_uid != geteuid()) {
		close(fd);
		errno = EPERM;	/* not the directory we made */
		return -1;
	}
	if (fchown(fd, r->uid, r->gid) != 0) {
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

/* "step 2 (copy conf/)": how messages name a step. */
static void
prepare_step_name(const struct prep_run *r, int step, char *out,
    size_t outlen)
{
	const json_t	*st = json_array_get(json_object_get(r->spec,
			    "prepare"), (size_t)step - 1);
	const char	*kind = prepare_step_kind(st);
	const char	*what = json_string_value(json_object_get(st, kind));
	char		 shown[600];

	if (strcmp(kind, "fetch") == 0)
		fetch_url_redact(what, shown, sizeof(shown));
	else
		snprintf(shown, sizeof(shown), "%s", what);
	snprintf(out, outlen, "step %d (%s %s)", step, kind, shown);
}

/* A checked step has exactly one of copy, template and fetch. */
static const char *
prepare_step_kind(const json_t *st)
{
	return json_object_get(st, "copy") ? "copy" :
	    json_object_get(st, "template") ? "template" : "fetch";
}

/*
 * Looks at the place of every result: its directory must resolve inside
 * the runtime directory (or not exist yet: it will be made there), and
 * a directory to be made must not be a file.
 */
static int
prepare_preflight(struct prep_run *r, int rootfd, char *err, size_t errlen)
{
	const struct prep_item	*it;
	struct stat		 sb;
	char			 dir[PATH_MAX], name[700], *slash;
	size_t			 i;
	int			 fd;

	for (i = 0; i < r->nitems; i++) {
		it = &r->items[i];
		if (snprintf(dir, sizeof(dir), "%s", it->rel) >=
		    (int)sizeof(dir))
			continue;
		if (it->kind != IT_DIR && (slash = strrchr(dir, '/')) != NULL)
			*slash = '\0';
		else if (it->kind != IT_DIR)
			continue;
		for (;;) {
			fd = prepare_beneath(rootfd, dir, O_PATH, 0);
			if (fd != -1) {
				if (fstat(fd, &sb) == 0 && !S_ISDIR(sb.st_mode))
					errno = ENOTDIR;
				else
					errno = 0;
				close(fd);
				break;
			}
			if (errno != ENOENT ||
			    (slash = strrchr(dir, '/')) == NULL) {
				if (errno == ENOENT)
					errno = 0;
				break;
			}
			*slash = '\0';
		}
		if (errno != 0) {
			prepare_step_name(r, it->step, name, sizeof(name));
			snprintf(err, errlen, "%s: %s: %s", name, dir,
			    errno == EXDEV ? "a symbolic link there leads out "
			    "of the runtime directory" : errno == ENOTDIR ?
			    "not a directory" : strerror(errno));
			return -1;
		}
	}
	return 0;
}

/*
 * Opens (making what is missing, owned by the service) the directory
 * rel under rootfd, never leaving rootfd's tree.
 */
static int
prepare_parent(struct prep_run *r, int rootfd, const char *rel, char *err,
    size_t errlen)
{
	char	buf[PATH_MAX], *p, at;
	int	fd;

	if ((fd = prepare_beneath(rootfd, rel, O_PATH | O_DIRECTORY, 0)) !=
	    -1)
		return fd;
	if (errno != ENOENT)
		goto fail;
	snprintf(buf, sizeof(buf), "%s", rel);
	for (p = buf;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		at = *p;
		*p = '\0';
		if ((fd = prepare_beneath(rootfd, buf, O_PATH | O_DIRECTORY,
		    0)) == -1) {
			char	*slash = strrchr(buf, '/');
			int	 pfd;

			if (errno != ENOENT)
				goto fail;
			if (slash != NULL)
				*slash = '\0';
			pfd = slash != NULL ? prepare_beneath(rootfd, buf,
			    O_PATH | O_DIRECTORY, 0) : dup(rootfd);
			if (slash != NULL)
				*slash = '/';
			if (pfd == -1)
				goto fail;
			if (prepare_mkdir(r, pfd, slash ? slash + 1 : buf) !=
			    0) {
				close(pfd);
				goto fail;
			}
			close(pfd);
		} else
			close(fd);
		if (at == '\0')
			break;
		*p = '/';
	}
	if ((fd = prepare_beneath(rootfd, rel, O_PATH | O_DIRECTORY, 0)) != -1)
		return fd;
fail:
	snprintf(err, errlen, "%s: %s", rel, errno == EXDEV ? "a symbolic "
	    "link there leads out of the runtime directory" :
	    strerror(errno));
	return -1;
}

static int
prepare_progress(void *arg, uint64_t done, uint64_t total)
{
	struct job	*j = arg;

	jobs_progress(j, j->phase, done, total);
	return jobs_cancelled(j);
}
