/*
 * metrics: what /metrics shows, every name starting with nodee_.
 *
 * Counters are atomics bumped where things happen (sup.c a restart,
 * artifact.c and api.c bytes, store.c a busy wait).  HTTP requests are
 * counted per (method, route, status) with a latency histogram per
 * (method, route): the route is the pattern of the table, never the
 * path, and a method outside the standard ones counts as "other", so a
 * client cannot make the label set grow.  Gauges (jobs, services,
 * ZooKeeper, the process) are read when someone scrapes.
 */
#include <dirent.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "metrics.h"
#include "registry.h"

#define METRICS_ROUTES	128	/* (method, route) pairs; then "other" */
#define METRICS_CODES	12	/* statuses per pair; then code "other" */
#define METRICS_NBUCKET	(sizeof(metrics_http_le) / sizeof(double))
#define METRICS_NIBUCKET (sizeof(metrics_install_le) / sizeof(double))

struct metrics_code {
	int		code;
	uint64_t	count;
};

struct metrics_route {
	const char		*method;
	const char		*route;	/* a pattern of the table: static */
	struct metrics_code	 codes[METRICS_CODES + 1];
	uint64_t		 buckets[8];
	uint64_t		 count;
	double			 sum;
};

/* A buffer the text grows in. */
struct metrics_out {
	char	*p;
	size_t	 len, cap;
	int	 failed;
};

static const double	metrics_http_le[] = { 0.001, 0.005, 0.025, 0.1, 0.5,
			    2.5, 10 };
static const double	metrics_install_le[] = { 0.1, 0.5, 1, 5, 15, 60,
			    300, 1800 };
static const char *const metrics_methods[] = { "GET", "HEAD", "POST", "PUT",
			    "DELETE", "PATCH", "OPTIONS", NULL };

static _Atomic uint64_t		metrics_counters[MC_COUNT];
static pthread_mutex_t		metrics_mtx = PTHREAD_MUTEX_INITIALIZER;
static struct metrics_route	metrics_routes[METRICS_ROUTES + 1];
static size_t			metrics_nroutes;
static uint64_t			metrics_ibuckets[8];
static uint64_t			metrics_icount;
static double			metrics_isum;

static void	metrics_printf(struct metrics_out *, const char *, ...)
		    __attribute__((format(printf, 2, 3)));
static void	metrics_head(struct metrics_out *, const char *, const char *,
		    const char *);
static void	metrics_label(struct metrics_out *, const char *);
static void	metrics_le(struct metrics_out *, double);
static void	metrics_jobs(struct metrics_out *, sqlite3 *);
static void	metrics_services(struct metrics_out *, sqlite3 *);
static void	metrics_registry(struct metrics_out *);
static void	metrics_process(struct metrics_out *, int64_t);
static void	metrics_requests(struct metrics_out *);

void
metrics_add(enum metrics_counter c, uint64_t n)
{
	atomic_fetch_add_explicit(&metrics_counters[c], n,
	    memory_order_relaxed);
}

/* A successful install took seconds. */
void
metrics_install(double seconds)
{
	size_t	i;

	pthread_mutex_lock(&metrics_mtx);
	for (i = 0; i < METRICS_NIBUCKET; i++)
		if (seconds <= metrics_install_le[i])
			metrics_ibuckets[i]++;
	metrics_icount++;
	metrics_isum += seconds;
	pthread_mutex_unlock(&metrics_mtx);
}

/*
 * One request answered: method as the client sent it, route the table's
 * pattern (NULL when no route matched), its status and how long the
 * handler took.
 */
void
metrics_http(const char *method, const char *route, int status,
    double seconds)
{
	struct metrics_route	*r = NULL;
	struct metrics_code	*c;
	size_t			 i;

	for (i = 0; metrics_methods[i] != NULL; i++)
		if (strcmp(method, metrics_methods[i]) == 0)
			break;
	method = metrics_methods[i] != NULL ? metrics_methods[i] : "other";
	if (route == NULL)
		route = "(none)";
	pthread_mutex_lock(&metrics_mtx);
	for (i = 0; i < metrics_nroutes; i++)
		if (metrics_routes[i].method == method &&
		    strcmp(metrics_routes[i].route, route) == 0) {
			r = &metrics_routes[i];
			break;
		}
	if (r == NULL) {
		r = &metrics_routes[metrics_nroutes < METRICS_ROUTES ?
		    metrics_nroutes++ : METRICS_ROUTES];
		if (r->route == NULL) {
			r->method = r == &metrics_routes[METRICS_ROUTES] ?
			    "other" : method;
			r->route = r == &metrics_routes[METRICS_ROUTES] ?
			    "(other)" : route;
		}
	}
	for (i = 0; i < METRICS_CODES; i++) {
		c = &r->codes[i];
		if (c->code == status || c->code == 0)
			break;
	}
	c = &r->codes[i];	/* [METRICS_CODES]: code 0, shown "other" */
	if (i < METRICS_CODES)
		c->code = status;
	c->count++;
	for (i = 0; i < METRICS_NBUCKET; i++)
		if (seconds <= metrics_http_le[i])
			r->buckets[i]++;
	r->count++;
	r->sum += seconds;
	pthread_mutex_unlock(&metrics_mtx);
}

/*
 * The whole exposition (the caller frees), or NULL when memory ran out.
 * db may be NULL (the store is down): its gauges are left out.
 */
char *
metrics_render(sqlite3 *db, int64_t started_ms, size_t *len)
{
	static const struct {
		enum metrics_counter	 c;
		const char		*name, *help;
	} counters[] = {
		{ MC_RESTARTS, "nodee_service_restarts_total", "Services "
		    "started again after they ended (crash or exit), since "
		    "the daemon started." },
		{ MC_DOWNLOAD_BYTES, "nodee_download_bytes_total", "Artifact "
		    "bytes downloaded from depots." },
		{ MC_UPLOAD_BYTES, "nodee_upload_bytes_total", "Artifact bytes "
		    "received by POST /api/v1/artifacts/{g}/{a}/{v}." },
		{ MC_STORE_BUSY_WAITS, "nodee_store_busy_waits_total",
		    "Times a store statement found the database locked and "
		    "waited." },
		{ MC_STORE_BUSY_TIMEOUTS, "nodee_store_busy_timeouts_total",
		    "Times a store statement waited for the lock in vain." },
	};
	struct metrics_out	o = { NULL, 0, 0, 0 };
	size_t			i;

	metrics_head(&o, "nodee_build_info", "gauge", "The running build.");
	metrics_printf(&o, "nodee_build_info{version=\"%s\"} 1\n",
	    NODEE_VERSION);
	metrics_process(&o, started_ms);
	for (i = 0; i < sizeof(counters) / sizeof(counters[0]); i++) {
		metrics_head(&o, counters[i].name, "counter", counters[i].help);
		metrics_printf(&o, "%s %llu\n", counters[i].name,
		    (unsigned long long)atomic_load_explicit(
		    &metrics_counters[counters[i].c], memory_order_relaxed));
	}
	if (db != NULL) {
		metrics_jobs(&o, db);
		metrics_services(&o, db);
	}
	metrics_registry(&o);
	metrics_requests(&o);
	if (o.failed) {
		free(o.p);
		return NULL;
	}
	*len = o.len;
	return o.p;
}

static void
metrics_printf(struct metrics_out *o, const char *fmt, ...)
{
	va_list	 ap;
	int	 n;
	char	*p;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(o->p ? o->p + o->len : NULL, o->p ? o->cap -
		    o->len : 0, fmt, ap);
		va_end(ap);
		if (n < 0) {
			o->failed = 1;
			return;
		}
		if (o->p != NULL && (size_t)n < o->cap - o->len) {
			o->len += (size_t)n;
			return;
		}
		if ((p = realloc(o->p, o->cap + (size_t)n + 4096)) == NULL) {
			o->failed = 1;
			return;
		}
		o->p = p;
		o->cap += (size_t)n + 4096;
	}
}

static void
metrics_head(struct metrics_out *o, const char *name, const char *type,
    const char *help)
{
	metrics_printf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name,
	    type);
}

/* A label value, escaped as the format wants (\\, \" and \n). */
static void
metrics_label(struct metrics_out *o, const char *v)
{
	for (; *v != '\0'; v++) {
		if (*v == '\\' || *v == '"')
			metrics_printf(o, "\\%c", *v);
		else if (*v == '\n')
			metrics_printf(o, "\\n");
		else
			metrics_printf(o, "%c", *v);
	}
}

static void
metrics_le(struct metrics_out *o, double le)
{
	metrics_printf(o, "%g", le);
}

/* Jobs by kind and state, from the store. */
static void
metrics_jobs(struct metrics_out *o, sqlite3 *db)
{
	sqlite3_stmt	*st;

	metrics_head(o, "nodee_jobs", "gauge", "Jobs in the store by kind and "
	    "state.");
	if (sqlite3_prepare_v2(db, "SELECT kind, state, count(*) FROM jobs "
	    "GROUP BY kind, state ORDER BY kind, state", -1, &st, NULL) !=
	    SQLITE_OK)
		return;
	while (sqlite3_step(st) == SQLITE_ROW) {
		metrics_printf(o, "nodee_jobs{kind=\"");
		metrics_label(o, (const char *)sqlite3_column_text(st, 0));
		metrics_printf(o, "\",state=\"");
		metrics_label(o, (const char *)sqlite3_column_text(st, 1));
		metrics_printf(o, "\"} %lld\n", (long long)
		    sqlite3_column_int64(st, 2));
	}
	sqlite3_finalize(st);
}

/* Services by state: every state the supervisor knows, zero or not. */
static void
metrics_services(struct metrics_out *o, sqlite3 *db)
{
	static const char *const states[] = { "stopped", "starting",
	    "preparing", "running", "backoff", "stopping", "draining",
	    "drained", "exited", "failed", NULL };
	sqlite3_stmt	*st;
	long long	 n;
	size_t		 i;

	metrics_head(o, "nodee_services", "gauge", "Services by state.");
	if (sqlite3_prepare_v2(db, "SELECT count(*) FROM services WHERE "
	    "state = ?1", -1, &st, NULL) != SQLITE_OK)
		return;
	for (i = 0; states[i] != NULL; i++) {
		sqlite3_reset(st);
		sqlite3_bind_text(st, 1, states[i], -1, SQLITE_STATIC);
		n = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st,
		    0) : 0;
		metrics_printf(o, "nodee_services{state=\"%s\"} %lld\n",
		    states[i], n);
	}
	sqlite3_finalize(st);
}

/* ZooKeeper: the session state (one of four set to 1), registered, writes. */
static void
metrics_registry(struct metrics_out *o)
{
	static const char *const states[] = { "disabled", "connecting",
	    "connected", "expired", NULL };
	json_t		*r = registry_status();
	const char	*state = json_string_value(json_object_get(r, "state"));
	size_t		 i;

	metrics_head(o, "nodee_zookeeper_state", "gauge", "The ZooKeeper "
	    "session: 1 for the state it is in.");
	for (i = 0; states[i] != NULL; i++)
		metrics_printf(o, "nodee_zookeeper_state{state=\"%s\"} %d\n",
		    states[i], state != NULL && strcmp(state, states[i]) == 0);
	metrics_head(o, "nodee_zookeeper_registered", "gauge", "1 while the "
	    "node's entry is in ZooKeeper.");
	metrics_printf(o, "nodee_zookeeper_registered %d\n",
	    json_is_true(json_object_get(r, "registered")));
	metrics_head(o, "nodee_zookeeper_writes_total", "counter", "Writes of "
	    "the node's entry to ZooKeeper.");
	metrics_printf(o, "nodee_zookeeper_writes_total %lld\n", (long long)
	    json_integer_value(json_object_get(r, "writes")));
	json_decref(r);
}

/* The daemon's own process: start time, memory, descriptors, threads. */
static void
metrics_process(struct metrics_out *o, int64_t started_ms)
{
	struct dirent	*e;
	DIR		*d;
	FILE		*fp;
	long		 size, pages = 0, fds = 0;

	metrics_head(o, "nodee_start_time_seconds", "gauge", "When the daemon "
	    "started, seconds since the epoch.");
	metrics_printf(o, "nodee_start_time_seconds %.3f\n",
	    (double)started_ms / 1000.0);
	if ((fp = fopen("/proc/self/statm", "r")) != NULL) {
		if (fscanf(fp, "%ld %ld", &size, &pages) != 2)
			pages = 0;
		fclose(fp);
	}
	metrics_head(o, "nodee_resident_memory_bytes", "gauge", "The daemon's "
	    "resident memory.");
	metrics_printf(o, "nodee_resident_memory_bytes %lld\n", (long long)
	    pages * sysconf(_SC_PAGESIZE));
	if ((d = opendir("/proc/self/fd")) != NULL) {
		while ((e = readdir(d)) != NULL)
			fds += e->d_name[0] != '.';
		closedir(d);
		fds--;		/* the directory's own */
	}
	metrics_head(o, "nodee_open_fds", "gauge", "File descriptors the "
	    "daemon has open.");
	metrics_printf(o, "nodee_open_fds %ld\n", fds);
}

/* Installs and HTTP requests, copied under the lock, then printed. */
static void
metrics_requests(struct metrics_out *o)
{
	struct metrics_route	*rs, *r;
	uint64_t		 ib[8], icount, cum;
	double			 isum;
	size_t			 n, i, k;

	pthread_mutex_lock(&metrics_mtx);
	memcpy(ib, metrics_ibuckets, sizeof(ib));
	icount = metrics_icount;
	isum = metrics_isum;
	n = metrics_nroutes + (metrics_routes[METRICS_ROUTES].route != NULL);
	rs = malloc((n + 1) * sizeof(*rs));
	if (rs != NULL) {
		memcpy(rs, metrics_routes, metrics_nroutes * sizeof(*rs));
		if (n > metrics_nroutes)
			rs[n - 1] = metrics_routes[METRICS_ROUTES];
	}
	pthread_mutex_unlock(&metrics_mtx);

	metrics_head(o, "nodee_artifact_install_duration_seconds", "histogram",
	    "Time from the start of an install job to its artifact in place, "
	    "for installs that succeeded.");
	for (i = 0; i < METRICS_NIBUCKET; i++) {
		metrics_printf(o, "nodee_artifact_install_duration_seconds_"
		    "bucket{le=\"");
		metrics_le(o, metrics_install_le[i]);
		metrics_printf(o, "\"} %llu\n", (unsigned long long)ib[i]);
	}
	metrics_printf(o, "nodee_artifact_install_duration_seconds_bucket"
	    "{le=\"+Inf\"} %llu\nnodee_artifact_install_duration_seconds_sum "
	    "%.6f\nnodee_artifact_install_duration_seconds_count %llu\n",
	    (unsigned long long)icount, isum, (unsigned long long)icount);
	if (rs == NULL) {
		o->failed = 1;
		return;
	}

	metrics_head(o, "nodee_http_requests_total", "counter", "HTTP requests "
	    "answered, by method, route (the API's pattern) and status.");
	for (k = 0; k < n; k++) {
		r = &rs[k];
		for (i = 0; i <= METRICS_CODES && r->codes[i].count > 0; i++) {
			metrics_printf(o, "nodee_http_requests_total{method=\"%s"
			    "\",route=\"", r->method);
			metrics_label(o, r->route);
			if (i < METRICS_CODES)
				metrics_printf(o, "\",code=\"%d\"} %llu\n",
				    r->codes[i].code, (unsigned long long)
				    r->codes[i].count);
			else
				metrics_printf(o, "\",code=\"other\"} %llu\n",
				    (unsigned long long)r->codes[i].count);
		}
	}
	metrics_head(o, "nodee_http_request_duration_seconds", "histogram",
	    "Time nodee took to answer, by method and route.");
	for (k = 0; k < n; k++) {
		r = &rs[k];
		for (i = 0; i <= METRICS_NBUCKET; i++) {
			metrics_printf(o, "nodee_http_request_duration_seconds_"
			    "bucket{method=\"%s\",route=\"", r->method);
			metrics_label(o, r->route);
			metrics_printf(o, "\",le=\"");
			if (i < METRICS_NBUCKET)
				metrics_le(o, metrics_http_le[i]);
			else
				metrics_printf(o, "+Inf");
			cum = i < METRICS_NBUCKET ? r->buckets[i] : r->count;
			metrics_printf(o, "\"} %llu\n", (unsigned long long)cum);
		}
		metrics_printf(o, "nodee_http_request_duration_seconds_sum"
		    "{method=\"%s\",route=\"", r->method);
		metrics_label(o, r->route);
		metrics_printf(o, "\"} %.6f\n", r->sum);
		metrics_printf(o, "nodee_http_request_duration_seconds_count"
		    "{method=\"%s\",route=\"", r->method);
		metrics_label(o, r->route);
		metrics_printf(o, "\"} %llu\n", (unsigned long long)r->count);
	}
	free(rs);
}
