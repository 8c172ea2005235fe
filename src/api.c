/*
 * api: the route table and its handlers.  The table is what http.c routes
 * by, and the README's API section lists the same routes.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "api.h"
#include "artifact.h"
#include "embed.h"
#include "fetch.h"
#include "jobs.h"
#include "machine.h"
#include "metrics.h"
#include "nodee.h"
#include "prepare.h"
#include "registry.h"
#include "service.h"
#include "stream.h"
#include "store.h"
#include "sup.h"
#include "upload.h"

#define API_JOBS_LIMIT		50
#define API_JOBS_LIMIT_MAX	500
#define API_EVENTS_LIMIT	100
#define API_STR2(x)		#x
#define API_STR(x)		API_STR2(x)
#define API_EVENTS_LIMIT_MAX	1000

static void	api_healthz(struct http_req *, void *);
static void	api_node(struct http_req *, void *);
static void	api_index(struct http_req *, void *);
static void	api_asset(struct http_req *, void *);
static void	api_login(struct http_req *, void *);
static void	api_logout(struct http_req *, void *);
static void	api_event_list(struct http_req *, void *);
static void	api_service_runs(struct http_req *, void *);
static void	api_query_keep(char *, size_t, struct http_req *,
		    const char *);
static void	api_page(struct http_req *, json_t *, const char *, json_t *,
		    long long, const char *const *);
static int	api_query_int(struct http_req *, const char *, long long,
		    long long, const char *, long long *);
static void	api_artifact_post(struct http_req *, void *);
static void	api_artifact_upload(struct http_req *, void *);
static void	api_openapi(struct http_req *, void *);
static void	api_metrics(struct http_req *, void *);
static int	api_sha256(const char *, char *);
static void	api_artifact_list(struct http_req *, void *);
static void	api_artifact_get(struct http_req *, void *);
static void	api_artifact_delete(struct http_req *, void *);
static void	api_job_list(struct http_req *, void *);
static void	api_job_get(struct http_req *, void *);
static void	api_job_delete(struct http_req *, void *);
static int	api_coord(struct http_req *, struct artifact_coord *);
static int	api_job_id(struct http_req *, int64_t *);
static json_t	*api_job_lookup(struct http_req *, int64_t *);
static void	api_job_answer(struct http_req *, int, json_t *);
static int	api_only_keys(struct http_req *, const char *const *);
static void	api_list(struct http_req *, const char *,
		    json_t *(*)(sqlite3 *));
static void	api_service_list(struct http_req *, void *);
static void	api_service_get(struct http_req *, void *);
static void	api_service_put(struct http_req *, void *);
static void	api_service_delete(struct http_req *, void *);
static void	api_service_op(struct http_req *, enum sup_op);
static int	api_status(enum nd_rc);
static void	api_service_action(struct http_req *, void *);
static void	api_service_logs(struct http_req *, void *);
static int	api_service_coord(struct http_req *, struct coord *);
static void	api_service_answer(struct http_req *, int, const char *,
		    json_t *);
static void	api_cell_nodes(struct http_req *, void *);
static void	api_node_drain(struct http_req *, void *);
static void	api_job_retry(struct http_req *, void *);
static void	api_service_snapshot(struct http_req *);

const struct http_route api_routes[] = {
	{ "GET",	"/healthz",			api_healthz },
	{ "GET",	"/api/v1/node",			api_node },
	{ "POST",	"/api/v1/node/drain",		api_node_drain },
	{ "GET",	"/api/v1/cell/nodes",		api_cell_nodes },
	{ "POST",	"/api/v1/artifacts",		api_artifact_post },
	{ "GET",	"/api/v1/artifacts",		api_artifact_list },
	{ "POST",	"/api/v1/artifacts/:g/:a/:v",	api_artifact_upload },
	{ "GET",	"/api/v1/artifacts/:g/:a/:v",	api_artifact_get },
	{ "DELETE",	"/api/v1/artifacts/:g/:a/:v",	api_artifact_delete },
	{ "GET",	"/api/v1/jobs",			api_job_list },
	{ "GET",	"/api/v1/jobs/:id",		api_job_get },
	{ "DELETE",	"/api/v1/jobs/:id",		api_job_delete },
	{ "POST",	"/api/v1/jobs/:id/retry",	api_job_retry },
	{ "GET",	"/api/v1/services",		api_service_list },
	{ "GET",	"/api/v1/services/:c",		api_service_get },
	{ "PUT",	"/api/v1/services/:c",		api_service_put },
	{ "DELETE",	"/api/v1/services/:c",		api_service_delete },
	{ "POST",	"/api/v1/services/:c/:action",	api_service_action },
	{ "GET",	"/api/v1/services/:c/logs",	api_service_logs },
	{ "GET",	"/api/v1/services/:c/logs/follow", stream_logs },
	{ "GET",	"/api/v1/services/:c/runs",	api_service_runs },
	{ "GET",	"/api/v1/events",		api_event_list },
	{ "GET",	"/api/v1/stream",		stream_events },
	{ "GET",	"/api/v1/openapi.json",		api_openapi },
	{ "GET",	"/metrics",			api_metrics },
	{ "POST",	"/login",			api_login },
	{ "POST",	"/logout",			api_logout },
	{ "GET",	"/",				api_index },
	{ "GET",	"/assets/:name",		api_asset },
	{ NULL,		NULL,				NULL },
};

/*
 * 200 "ok" while the daemon serves and its store takes writes; 503 with
 * the reason otherwise (state changes are refused then too).
 */
static void
api_healthz(struct http_req *r, void *arg)
{
	char	why[300], text[400];
	int	n;

	(void)arg;
	if (store_health(why, sizeof(why)) != 0) {
		n = snprintf(text, sizeof(text), "store: %s\n", why);
		u_map_put(r->res->map_header, "Retry-After", "5");
		http_body(r, 503, "text/plain; charset=utf-8", text,
		    (size_t)n < sizeof(text) ? (size_t)n : sizeof(text) - 1);
		return;
	}
	http_body(r, 200, "text/plain; charset=utf-8", "ok\n", 3);
}

static void
api_node(struct http_req *r, void *arg)
{
	struct api_ctx	*ctx = arg;
	int64_t		 now = store_now_ms();

	http_json(r, 200, json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:s, s:s, "
	    "s:o, s:o}",
	    "instance", ctx->cf->instance,
	    "cell", ctx->cf->cell,
	    "version", NODEE_VERSION,
	    "pid", (json_int_t)getpid(),
	    "uptime_s", (json_int_t)((now - ctx->started_ms) / 1000),
	    "started_at", (json_int_t)ctx->started_ms,
	    "prefix", ctx->cf->prefix,
	    "listen", ctx->cf->listen,
	    "machine", machine_facts(),
	    "registry", registry_status()));
}

/* The console page, embedded from assets/ at build time. */
static void
api_index(struct http_req *r, void *arg)
{
	const struct embed_file	*f;

	(void)arg;
	if ((f = embed_find("assets/index.html")) == NULL) {
		http_problem(r, 500, "the console page is missing from this "
		    "build");
		return;
	}
	http_static(r, "text/html; charset=utf-8", f->data, f->len, f->etag);
}

/* The API's description (OpenAPI 3.1), doc/openapi.json in the repo. */
static void
api_openapi(struct http_req *r, void *arg)
{
	const struct embed_file	*f;

	(void)arg;
	if ((f = embed_find("doc/openapi.json")) == NULL) {
		http_problem(r, 500, "the API description is missing from "
		    "this build");
		return;
	}
	http_static(r, "application/json", f->data, f->len, f->etag);
}

/*
 * GET /metrics, the Prometheus text format (metrics.c).  It is outside
 * /api/, where scrapers look for it, but needs the token all the same
 * unless metrics_public says the numbers may be public.
 */
static void
api_metrics(struct http_req *r, void *arg)
{
	struct api_ctx	*ctx = arg;
	char		*text;
	size_t		 len;

	if (!ctx->cf->metrics_public && !http_authorized(r)) {
		u_map_put(r->res->map_header, "WWW-Authenticate",
		    "Bearer realm=\"nodee\"");
		http_problem(r, 401, "/metrics needs 'Authorization: Bearer "
		    "<token>' unless metrics_public = yes");
		return;
	}
	if ((text = metrics_render(store_db(), ctx->started_ms, &len)) ==
	    NULL) {
		http_problem(r, 500, "out of memory");
		return;
	}
	http_body(r, 200, "text/plain; version=0.0.4; charset=utf-8", text,
	    len);
	free(text);
}

/* GET /assets/{name}: the console's other files, by name only. */
static void
api_asset(struct http_req *r, void *arg)
{
	static const char *const types[][2] = {
		{ ".js", "text/javascript; charset=utf-8" },
		{ ".css", "text/css; charset=utf-8" },
		{ ".html", "text/html; charset=utf-8" },
		{ ".svg", "image/svg+xml" },
		{ ".json", "application/json" },
		{ ".png", "image/png" },
		{ ".ico", "image/x-icon" },
	};
	const struct embed_file	*f = NULL;
	const char		*name = r->params[0], *dot;
	char			 path[256];
	size_t			 i;

	(void)arg;
	/* A name from the table, never a path: no '/', no "..". */
	if (strchr(name, '/') == NULL && name[0] != '.' && snprintf(path,
	    sizeof(path), "assets/%s", name) < (int)sizeof(path))
		f = embed_find(path);
	dot = strrchr(name, '.');
	for (i = 0; f != NULL && dot != NULL &&
	    i < sizeof(types) / sizeof(types[0]); i++)
		if (strcmp(dot, types[i][0]) == 0) {
			http_static(r, types[i][1], f->data, f->len, f->etag);
			return;
		}
	http_problem(r, 404, "no such file in the console: %s", name);
}

/* POST /login {"token": "..."}: the console's login form. */
static void
api_login(struct http_req *r, void *arg)
{
	static const char *const keys[] = { "token", NULL };
	const char	*token;

	(void)arg;
	if (api_only_keys(r, keys) != 0)
		return;
	if ((token = json_string_value(json_object_get(r->body, "token"))) ==
	    NULL) {
		http_problem(r, 400, "token: a string is required");
		return;
	}
	http_login(r, token, 204);
}

/* POST /logout: the cookie is cleared (a bearer token is unaffected). */
static void
api_logout(struct http_req *r, void *arg)
{
	(void)arg;
	http_logout(r);
}

/*
 * The integer query parameter name into *v (dflt when absent, and 0 when
 * dflt is 0); answers 400 and returns -1 when it is not an integer in
 * [min, max].  what says what it is, for the message.
 */
static int
api_query_int(struct http_req *r, const char *name, long long min,
    long long max, const char *what, long long *v)
{
	const char	*s = http_query(r, name);
	char		*end;

	if (s == NULL)
		return 0;
	errno = 0;
	*v = strtoll(s, &end, 10);
	if (!isdigit((unsigned char)s[0]) || errno != 0 || *end != '\0' ||
	    *v < min || *v > max) {
		http_problem(r, 400, "%s: must be %s", name, what);
		return -1;
	}
	return 0;
}

/*
 * Appends "&name=value" to the URL in buf when the request has the query
 * parameter name, the value percent-encoded; a URL that would not fit
 * is left as it was.
 */
static void
api_query_keep(char *buf, size_t size, struct http_req *r, const char *name)
{
	const char	*v = http_query(r, name);
	size_t		 n = strlen(buf), start = n;
	int		 w;

	if (v == NULL)
		return;
	if ((w = snprintf(buf + n, size - n, "&%s=", name)) < 0 ||
	    (size_t)w >= size - n)
		goto full;
	for (n += (size_t)w; *v != '\0'; v++) {
		if (n + 4 > size)
			goto full;
		if (isalnum((unsigned char)*v) || strchr("-._~:", *v) != NULL)
			buf[n++] = *v;
		else
			n += (size_t)snprintf(buf + n, 4, "%%%02X",
			    (unsigned char)*v);
	}
	buf[n] = '\0';
	return;
 full:
	buf[start] = '\0';
}

/*
 * Answers a page of a list newest first: o (taken; NULL for a new
 * object) with items (taken) as key and "next", null on the last page,
 * else this path with before= the last item's id and the query
 * parameters named in keep, as they were asked.
 */
static void
api_page(struct http_req *r, json_t *o, const char *key, json_t *items,
    long long limit, const char *const *keep)
{
	json_t	*last;
	char	 next[1024];
	size_t	 i;

	if (o == NULL)
		o = json_object();
	json_object_set_new(o, key, items);
	if ((long long)json_array_size(items) < limit) {
		json_object_set_new(o, "next", json_null());
		http_json(r, 200, o);
		return;
	}
	last = json_array_get(items, json_array_size(items) - 1);
	snprintf(next, sizeof(next), "%s?limit=%lld&before=%lld", r->path,
	    limit, (long long)json_integer_value(json_object_get(last, "id")));
	for (i = 0; keep[i] != NULL; i++)
		api_query_keep(next, sizeof(next), r, keep[i]);
	json_object_set_new(o, "next", json_string(next));
	http_json(r, 200, o);
}

/*
 * GET /api/v1/events?kind=&subject=&since=&before=&limit= : the audit
 * history, newest first, paged by event id like /api/v1/jobs.
 */
static void
api_event_list(struct http_req *r, void *arg)
{
	struct store_event_query q = { 0 };
	sqlite3		*db = store_db();
	static const char *const keep[] = { "kind", "subject", "since", NULL };
	long long	 since = 0, before = 0, limit = API_EVENTS_LIMIT;

	(void)arg;
	if (api_query_int(r, "limit", 1, API_EVENTS_LIMIT_MAX,
	    "1 to " API_STR(API_EVENTS_LIMIT_MAX), &limit) != 0 ||
	    api_query_int(r, "before", 1, INT64_MAX, "an event id",
	    &before) != 0 ||
	    api_query_int(r, "since", 0, INT64_MAX, "a time in milliseconds "
	    "since 1970", &since) != 0)
		return;
	if (db == NULL) {
		http_problem(r, 503, "the store is unavailable");
		return;
	}
	q.kind = http_query(r, "kind");
	q.subject = http_query(r, "subject");
	q.since = since;
	q.before = before;
	q.limit = (int)limit;
	api_page(r, NULL, "events", store_events(db, &q), limit, keep);
}

/*
 * POST /api/v1/artifacts {"artifact": "g:a:v", "url"?, "sha256"?}
 * 200 with the artifact if installed, else 202 with the (new or running)
 * job and its Location.
 */
static void
api_artifact_post(struct http_req *r, void *arg)
{
	static const char *const keys[] = { "artifact", "url", "sha256", NULL };
	struct artifact_coord	 c;
	json_t			*v, *answer;
	const char		*url = NULL;
	char			 sha[65] = "", err[1024];
	enum nd_rc		 rc;

	(void)arg;
	if (!json_is_object(r->body)) {
		http_problem(r, 400, "the body must be a JSON object with "
		    "\"artifact\": \"groupId:artifactId:version\"");
		return;
	}
	if (api_only_keys(r, keys) != 0)
		return;
	if (!json_is_string(v = json_object_get(r->body, "artifact"))) {
		http_problem(r, 400, "artifact: required, a string "
		    "\"groupId:artifactId:version\"");
		return;
	}
	if (artifact_parse(json_string_value(v), &c, err, sizeof(err)) != 0) {
		http_problem(r, 400, "%s", err);
		return;
	}
	if ((v = json_object_get(r->body, "url")) != NULL) {
		if (!json_is_string(v) || !fetch_url_ok(json_string_value(v),
		    err, sizeof(err))) {
			http_problem(r, 400, "url: %s", json_is_string(v) ?
			    err : "must be a string");
			return;
		}
		url = json_string_value(v);
	}
	if ((v = json_object_get(r->body, "sha256")) != NULL &&
	    (!json_is_string(v) || api_sha256(json_string_value(v), sha) !=
	    0)) {
		http_problem(r, 400, "sha256: must be 64 hex digits");
		return;
	}
	rc = artifact_submit_install(&c, url, sha[0] ? sha : NULL, &answer,
	    err, sizeof(err));
	if (rc == ND_OK)
		http_json(r, api_status(rc), answer);
	else if (rc == ND_ACCEPTED)
		api_job_answer(r, api_status(rc), answer);
	else
		http_problem(r, api_status(rc), "%s", err);
}

/*
 * POST /api/v1/artifacts/{g}/{a}/{v} with the zip as the body: http.c
 * streamed it to PREFIX/tmp (r->upload); the install job takes it from
 * there, with the checks of a depot install.  The checksum, when the
 * client sends one (X-Checksum-Sha256 or ?sha256=), must be the body's.
 */
static void
api_artifact_upload(struct http_req *r, void *arg)
{
	struct artifact_coord	 c;
	const char		*type, *want;
	char			 sha[65] = "", err[1024];
	json_t			*answer;
	enum nd_rc		 rc;
	int			 taken;

	(void)arg;
	if (api_coord(r, &c) != 0)
		return;
	type = http_header(r, "Content-Type");
	if (type == NULL || strncasecmp(type, "application/zip", 15) != 0 ||
	    (type[15] != '\0' && type[15] != ';' && type[15] != ' ')) {
		http_problem(r, 415, "send the zip itself as the body, with "
		    "Content-Type: application/zip (not '%s')", type ? type :
		    "(none)");
		return;
	}
	if ((want = http_header(r, "X-Checksum-Sha256")) == NULL)
		want = http_query(r, "sha256");
	if (want != NULL && api_sha256(want, sha) != 0) {
		http_problem(r, 400, "the checksum (X-Checksum-Sha256 or "
		    "?sha256=) must be 64 hex digits");
		return;
	}
	if (!http_uploads_work()) {
		http_problem(r, 501, "this build cannot take uploads: the HTTP "
		    "server started without nodee's body handler");
		return;
	}
	if (r->upload == NULL) {
		http_problem(r, 400, "the body is empty: send the zip itself");
		return;
	}
	if (upload_finish(r->upload, err, sizeof(err)) != 0) {
		http_problem(r, r->upload->error == EFBIG ? 413 :
		    r->upload->error == ENOSPC ? 507 : r->upload->error != 0 ?
		    500 : 400, "%s", err);
		return;
	}
	if (sha[0] != '\0' && strcmp(sha, r->upload->hex) != 0) {
		http_problem(r, 400, "checksum mismatch: expected %s, the body "
		    "received (%llu bytes) has %s", sha, (unsigned long long)
		    r->upload->bytes, r->upload->hex);
		return;
	}
	metrics_add(MC_UPLOAD_BYTES, r->upload->bytes);
	rc = artifact_submit_upload(&c, r->upload->path, r->upload->hex,
	    sha[0] != '\0', &taken, &answer, err, sizeof(err));
	/* The same zip already queued: that job has its own copy. */
	if (taken)
		upload_keep(r->upload);
	if (rc == ND_ACCEPTED)
		api_job_answer(r, api_status(rc), answer);
	else if (rc == ND_OK)
		http_json(r, api_status(rc), answer);
	else
		http_problem(r, api_status(rc), "%s", err);
}

/* 64 hex digits into out (lower case, 65 bytes); -1 if s is not that. */
static int
api_sha256(const char *s, char *out)
{
	size_t	i;

	if (strlen(s) != 64 || strspn(s, "0123456789abcdefABCDEF") != 64)
		return -1;
	for (i = 0; i < 64; i++)
		out[i] = (char)tolower((unsigned char)s[i]);
	out[64] = '\0';
	return 0;
}

static void
api_artifact_list(struct http_req *r, void *arg)
{
	(void)arg;
	api_list(r, "artifacts", artifact_list);
}

/* {"<key>": [...]} from a store reader. */
static void
api_list(struct http_req *r, const char *key, json_t *(*fn)(sqlite3 *))
{
	sqlite3	*db = store_db();

	if (db == NULL) {
		http_problem(r, 503, "the store is unavailable");
		return;
	}
	http_json(r, 200, json_pack("{s:o}", key, fn(db)));
}

static void
api_artifact_get(struct http_req *r, void *arg)
{
	struct artifact_coord	 c;
	sqlite3			*db = store_db();
	json_t			*a;

	(void)arg;
	if (api_coord(r, &c) != 0)
		return;
	if (db == NULL || (a = artifact_get(db, &c)) == NULL) {
		http_problem(r, 404, "artifact %s is not installed", c.gav);
		return;
	}
	http_json(r, 200, a);
}

static void
api_artifact_delete(struct http_req *r, void *arg)
{
	struct artifact_coord	 c;
	json_t			*answer;
	char			*list, err[1024];
	enum nd_rc		 rc;

	(void)arg;
	if (api_coord(r, &c) != 0)
		return;
	rc = artifact_submit_remove(&c, &answer, err, sizeof(err));
	if (rc == ND_ACCEPTED) {
		api_job_answer(r, api_status(rc), answer);
		return;
	}
	if (rc == ND_CONFLICT) {
		list = json_dumps(answer, JSON_COMPACT);
		json_decref(answer);
		http_problem(r, api_status(rc), "artifact %s is used by "
		    "services %s; delete them or change their artifact first",
		    c.gav, list ? list : "?");
		free(list);
		return;
	}
	http_problem(r, api_status(rc), "%s", err);
}

/*
 * GET /api/v1/jobs?state=&kind=&subject=&since=&limit=&before= : newest
 * first, paged.
 */
static void
api_job_list(struct http_req *r, void *arg)
{
	static const char *const states[] = { "queued", "running",
	    "succeeded", "failed", "cancelled", NULL };
	sqlite3		*db = store_db();
	static const char *const keep[] = { "state", "kind", "subject",
	    "since", NULL };
	struct jobs_query q = { 0 };
	const char	*state = http_query(r, "state");
	long long	 since = 0, before = 0, limit = API_JOBS_LIMIT;
	int		 i, known = state == NULL;

	(void)arg;
	for (i = 0; state != NULL && states[i] != NULL; i++)
		known |= strcmp(state, states[i]) == 0;
	if (!known) {
		http_problem(r, 400, "state: must be queued, running, "
		    "succeeded, failed or cancelled");
		return;
	}
	if (api_query_int(r, "limit", 1, API_JOBS_LIMIT_MAX, "1 to "
	    API_STR(API_JOBS_LIMIT_MAX), &limit) != 0 ||
	    api_query_int(r, "before", 1, INT64_MAX, "a job id", &before) != 0 ||
	    api_query_int(r, "since", 0, INT64_MAX, "a time in milliseconds "
	    "since 1970", &since) != 0)
		return;
	if (db == NULL) {
		http_problem(r, 503, "the store is unavailable");
		return;
	}
	q.state = state;
	q.kind = http_query(r, "kind");
	q.subject = http_query(r, "subject");
	q.since = since;
	q.before = before;
	q.limit = (int)limit;
	api_page(r, NULL, "jobs", jobs_list(db, &q), limit, keep);
}

static void
api_job_get(struct http_req *r, void *arg)
{
	json_t	*j;
	int64_t	 id;

	(void)arg;
	if ((j = api_job_lookup(r, &id)) != NULL)
		http_json(r, 200, j);
}

/* DELETE /api/v1/jobs/{id}: cancel; 409 if it has already ended. */
static void
api_job_delete(struct http_req *r, void *arg)
{
	sqlite3	*db = store_db();
	json_t	*j;
	char	 err[256];
	int64_t	 id;

	(void)arg;
	if ((j = api_job_lookup(r, &id)) == NULL)
		return;
	json_decref(j);
	if (jobs_cancel(id, err, sizeof(err)) != 0) {
		http_problem(r, 409, "%s", err);
		return;
	}
	api_job_answer(r, 202, jobs_get(db, id));
}

static int
api_coord(struct http_req *r, struct artifact_coord *c)
{
	char	err[512];

	if (artifact_from_parts(r->params[0], r->params[1], r->params[2], c,
	    err, sizeof(err)) != 0) {
		http_problem(r, 400, "%s", err);
		return -1;
	}
	return 0;
}

/* The job the path names, or NULL when the answer (400, 404) is sent. */
static json_t *
api_job_lookup(struct http_req *r, int64_t *id)
{
	sqlite3	*db = store_db();
	json_t	*j;

	if (api_job_id(r, id) != 0)
		return NULL;
	if (db == NULL || (j = jobs_get(db, *id)) == NULL) {
		http_problem(r, 404, "no job %lld", (long long)*id);
		return NULL;
	}
	return j;
}

static int
api_job_id(struct http_req *r, int64_t *id)
{
	char		*end;
	long long	 v;

	/* Digits only: strtoll alone would take " 1" and "+1" for 1. */
	errno = 0;
	v = strspn(r->params[0], "0123456789") == strlen(r->params[0]) ?
	    strtoll(r->params[0], &end, 10) : -1;
	if (errno != 0 || v < 1 || *end != '\0') {
		http_problem(r, 400, "job id: '%.100s' is not a job id (digits "
		    "only)", r->params[0]);
		return -1;
	}
	*id = v;
	return 0;
}

/* A job answer with its Location. */
static void
api_job_answer(struct http_req *r, int status, json_t *job)
{
	char	loc[64];

	snprintf(loc, sizeof(loc), "/api/v1/jobs/%lld", (long long)
	    json_integer_value(json_object_get(job, "id")));
	u_map_put(r->res->map_header, "Location", loc);
	http_json(r, status, job);
}

/* Refuses a body with keys outside keys, naming the first stranger. */
static int
api_only_keys(struct http_req *r, const char *const *keys)
{
	const char	*k;
	json_t		*v;
	size_t		 i;

	json_object_foreach(r->body, k, v) {
		for (i = 0; keys[i] != NULL; i++)
			if (strcmp(k, keys[i]) == 0)
				break;
		if (keys[i] == NULL) {
			http_problem(r, 400, "%.100s: unknown field", k);
			return -1;
		}
	}
	return 0;
}

static void
api_service_list(struct http_req *r, void *arg)
{
	(void)arg;
	api_list(r, "services", service_list);
}

static void
api_service_get(struct http_req *r, void *arg)
{
	struct coord	c;

	(void)arg;
	if (api_service_coord(r, &c) != 0)
		return;
	api_service_answer(r, 200, c.name, NULL);
}

/*
 * PUT /api/v1/services/{coordinate}: create or replace from a start spec.
 * An artifact that is not installed is installed first (a job, in the
 * answer as "install_job"); the service starts when it is ready.
 */
static void
api_service_put(struct http_req *r, void *arg)
{
	struct api_ctx		*ctx = arg;
	struct coord		 c;
	struct artifact_coord	 ac;
	json_t			*spec, *job = NULL;
	char			 err[1024];
	int64_t			 jid = 0;
	enum nd_rc		 rc;
	int			 status;

	if (api_service_coord(r, &c) != 0)
		return;
	if ((spec = service_spec_check(ctx->cf, r->body, err, sizeof(err))) ==
	    NULL) {
		http_problem(r, 400, "%s", err);
		return;
	}
	if (artifact_parse(json_string_value(json_object_get(spec,
	    "artifact")), &ac, err, sizeof(err)) != 0) {
		json_decref(spec);
		http_problem(r, 400, "%s", err);
		return;
	}
	/* Most PUTs name an installed artifact: a cheap check first. */
	if (store_db() != NULL && artifact_installed(store_db(), &ac))
		rc = ND_OK;
	else
		rc = artifact_submit_install(&ac, NULL, NULL, &job, err,
		    sizeof(err));
	if (rc == ND_ACCEPTED)
		jid = json_integer_value(json_object_get(job, "id"));
	else if (rc != ND_OK) {
		json_decref(spec);
		http_problem(r, api_status(rc), "the artifact cannot be "
		    "installed: %s", err);
		return;
	}
	status = api_status(sup_command(SUP_PUT, c.name, spec, jid, 0, err,
	    sizeof(err)));
	if (status >= 300) {
		json_decref(job);
		http_problem(r, status, "%s", err);
		return;
	}
	api_service_answer(r, jid > 0 ? 202 : status, c.name, jid > 0 ? job :
	    NULL);
	if (jid <= 0)
		json_decref(job);
}

/* DELETE /api/v1/services/{coordinate}[?purge=true] */
static void
api_service_delete(struct http_req *r, void *arg)
{
	struct coord	 c;
	const char	*purge = http_query(r, "purge");
	char		 err[512];
	int		 status;

	(void)arg;
	if (api_service_coord(r, &c) != 0)
		return;
	if (purge != NULL && strcmp(purge, "true") != 0 &&
	    strcmp(purge, "false") != 0) {
		http_problem(r, 400, "purge: must be true or false");
		return;
	}
	status = api_status(sup_command(SUP_DELETE, c.name, NULL, 0,
	    purge != NULL && strcmp(purge, "true") == 0, err, sizeof(err)));
	if (status >= 300) {
		http_problem(r, status, "%s", err);
		return;
	}
	api_service_answer(r, 200, c.name, NULL);
}

static void
api_service_op(struct http_req *r, enum sup_op op)
{
	struct coord	c;
	char		err[512];
	int		status;

	if (api_service_coord(r, &c) != 0)
		return;
	status = api_status(sup_command(op, c.name, NULL, 0, 0, err,
	    sizeof(err)));
	if (status >= 300) {
		http_problem(r, status, "%s", err);
		return;
	}
	api_service_answer(r, 200, c.name, NULL);
}

/* POST …/{coordinate}/{start,stop,drain,restart} */
static void
api_service_action(struct http_req *r, void *arg)
{
	static const struct {
		const char	*name;
		enum sup_op	 op;
	} actions[] = {
		{ "start", SUP_START }, { "stop", SUP_STOP },
		{ "drain", SUP_DRAIN }, { "restart", SUP_RESTART },
	};
	size_t	i;

	(void)arg;
	for (i = 0; i < sizeof(actions) / sizeof(actions[0]); i++)
		if (strcmp(r->params[1], actions[i].name) == 0) {
			api_service_op(r, actions[i].op);
			return;
		}
	if (strcmp(r->params[1], "snapshot") == 0) {
		api_service_snapshot(r);
		return;
	}
	http_problem(r, 404, "no such action: %.64s (start, stop, drain, "
	    "restart or snapshot)", r->params[1]);
}

/* POST …/{coordinate}/snapshot: a snapshot now, as a job (202). */
static void
api_service_snapshot(struct http_req *r)
{
	struct coord	 c;
	char		 err[1024] = "";
	int64_t		 id = 0;
	int		 status;

	if (api_service_coord(r, &c) != 0)
		return;
	if ((status = api_status(sup_snapshot_now(c.name, &id, err,
	    sizeof(err)))) != 202) {
		http_problem(r, status, "%s", err);
		return;
	}
	api_job_answer(r, 202, jobs_get(store_db(), id));
}

/* POST /api/v1/jobs/{id}/retry: upload a failed snapshot's archive again. */
static void
api_job_retry(struct http_req *r, void *arg)
{
	sqlite3		*db = store_db();
	json_t		*j, *d;
	char		 err[512];
	int64_t		 id, nid;
	enum nd_rc	 rc;

	(void)arg;
	if ((j = api_job_lookup(r, &id)) == NULL)
		return;
	json_decref(j);
	if ((nid = prepare_snapshot_retry(db, id, &rc, err, sizeof(err))) <
	    0) {
		http_problem(r, api_status(rc), "%s", err);
		return;
	}
	d = json_pack("{s:I, s:I}", "job", (json_int_t)nid, "retry_of",
	    (json_int_t)id);
	j = jobs_get(db, nid);
	store_event("service.snapshot.retry", json_string_value(
	    json_object_get(j, "subject")), d);
	json_decref(d);
	jobs_wake();
	api_job_answer(r, api_status(rc), j);
}

/* GET …/logs?stream=stdout|stderr&tail=N (default 100 lines). */
static void
api_service_logs(struct http_req *r, void *arg)
{
	struct api_ctx	*ctx = arg;
	struct coord	 c;
	sqlite3		*db = store_db();
	json_t		*s;
	const char	*stream = http_query(r, "stream"), *t;
	char		*text, *end, err[512];
	size_t		 len;
	long		 tail = 100;

	if (api_service_coord(r, &c) != 0)
		return;
	if (stream == NULL)
		stream = "stdout";
	if (strcmp(stream, "stdout") != 0 && strcmp(stream, "stderr") != 0) {
		http_problem(r, 400, "stream: must be stdout or stderr");
		return;
	}
	if ((t = http_query(r, "tail")) != NULL) {
		errno = 0;
		tail = strtol(t, &end, 10);
		if (errno != 0 || *end != '\0' || tail < 1 || tail > 100000) {
			http_problem(r, 400, "tail: must be 1 to 100000 lines");
			return;
		}
	}
	if (db == NULL || (s = service_get(db, c.name)) == NULL) {
		http_problem(r, 404, "no service %s", c.name);
		return;
	}
	json_decref(s);
	if ((text = service_log_tail(ctx->cf, &c, stream, tail, &len, NULL, err,
	    sizeof(err))) == NULL) {
		http_problem(r, 500, "%s", err);
		return;
	}
	http_body(r, 200, "text/plain; charset=utf-8", text, len);
	free(text);
}

/*
 * GET /api/v1/services/{c}/runs?limit=&before= : every incarnation, newest
 * first; kept after the service is deleted.
 */
static void
api_service_runs(struct http_req *r, void *arg)
{
	struct coord	 c;
	sqlite3		*db = store_db();
	static const char *const keep[] = { NULL };
	json_t		*runs, *s;
	long long	 before = 0, limit = API_EVENTS_LIMIT;

	(void)arg;
	if (api_service_coord(r, &c) != 0 ||
	    api_query_int(r, "limit", 1, API_EVENTS_LIMIT_MAX, "1 to "
	    API_STR(API_EVENTS_LIMIT_MAX), &limit) != 0 ||
	    api_query_int(r, "before", 1, INT64_MAX, "a run id", &before) != 0)
		return;
	if (db == NULL) {
		http_problem(r, 503, "the store is unavailable");
		return;
	}
	runs = service_runs(db, c.name, before, (int)limit);
	if (json_array_size(runs) == 0 && before == 0) {
		if ((s = service_get(db, c.name)) == NULL) {
			json_decref(runs);
			http_problem(r, 404, "no service %s, and none ran "
			    "under that name", c.name);
			return;
		}
		json_decref(s);
	}
	api_page(r, json_pack("{s:s}", "coordinate", c.name), "runs", runs,
	    limit, keep);
}

static int
api_service_coord(struct http_req *r, struct coord *c)
{
	char	err[512];

	if (coord_parse(r->params[0], c, err, sizeof(err)) != 0) {
		http_problem(r, 400, "%s", err);
		return -1;
	}
	return 0;
}

/* The service as the store has it now; job (taken) joins the answer. */
static void
api_service_answer(struct http_req *r, int status, const char *name,
    json_t *job)
{
	sqlite3	*db = store_db();
	json_t	*s;

	if (db == NULL || (s = service_get(db, name)) == NULL) {
		json_decref(job);
		if (status == 200 && r->method[0] == 'D') {
			http_json(r, 200, json_pack("{s:s, s:s}", "coordinate",
			    name, "state", "deleted"));
			return;
		}
		http_problem(r, 404, "no service %s", name);
		return;
	}
	if (job != NULL) {
		char	loc[64];

		snprintf(loc, sizeof(loc), "/api/v1/jobs/%lld", (long long)
		    json_integer_value(json_object_get(job, "id")));
		u_map_put(r->res->map_header, "Location", loc);
		json_object_set_new(s, "install_job", job);
	}
	http_json(r, status, s);
}

/* GET /api/v1/cell/nodes: from the registry's watched copy, no ZK read. */
static void
api_cell_nodes(struct http_req *r, void *arg)
{
	char		*text, err[256];
	size_t		 len = 0;
	enum nd_rc	 rc;

	(void)arg;
	if ((text = registry_cell(&len, &rc, err, sizeof(err))) == NULL) {
		http_problem(r, api_status(rc), "%s", err);
		return;
	}
	http_body(r, api_status(rc), "application/json", text, len);
	free(text);
}

/*
 * POST /api/v1/node/drain: draining in ZooKeeper first, then services;
 * each service's outcome shown as the status its own drain would have.
 */
static void
api_node_drain(struct http_req *r, void *arg)
{
	json_t		*answer = NULL, *svc;
	char		 err[256];
	size_t		 i;
	enum nd_rc	 rc;

	(void)arg;
	if ((rc = registry_node_drain(&answer, err, sizeof(err))) !=
	    ND_ACCEPTED) {
		http_problem(r, api_status(rc), "%s", err);
		return;
	}
	json_array_foreach(json_object_get(answer, "services"), i, svc) {
		json_object_set_new(svc, "status", json_integer(api_status(
		    (enum nd_rc)json_integer_value(json_object_get(svc,
		    "rc")))));
		json_object_del(svc, "rc");
	}
	http_json(r, api_status(rc), answer);
}

/* The one place where a domain outcome becomes an HTTP status. */
static int
api_status(enum nd_rc rc)
{
	switch (rc) {
	case ND_OK:
		return 200;
	case ND_CREATED:
		return 201;
	case ND_ACCEPTED:
		return 202;
	case ND_INVALID:
		return 400;
	case ND_NOT_FOUND:
		return 404;
	case ND_CONFLICT:
		return 409;
	case ND_UNAVAILABLE:
		return 503;
	default:
		return 500;
	}
}
