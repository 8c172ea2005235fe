/*
 * registry: the session, the ephemeral node and the cell's copy.
 *
 * Threads.  The registry thread is the only caller of the ZooKeeper
 * client, with synchronous calls: a slow ZooKeeper delays nobody else.
 * The library's own threads run our watchers, which only set a flag and
 * wake the registry thread (a synchronous call from a watcher would wait
 * for the thread it runs on).  The supervisor reports every service change
 * through registry_changed(), which must never hold it up: it sets a flag
 * under reg_mtx, a lock no one holds across a call.  What the API reads
 * (state, counters, the cell) is under reg_view_mtx, updated by the
 * registry thread in short critical sections.
 *
 * Ownership.  The node is ephemeral: it lives as long as the session that
 * created it.  Finding it taken, we compare its ephemeralOwner with our
 * session id first (a create that returned connection loss may have
 * succeeded), then its data: a node written by nodee on this machine
 * (same machine id) for this prefix can only be our own previous run,
 * since the prefix lock excludes a second live daemon, so it is deleted
 * with its version and created anew.  Anything else is another live
 * nodee, an error at start-up that names both.
 *
 * Writes carry the version we last wrote, so another writer's change is
 * noticed and logged rather than silently overwritten.  They are
 * coalesced by a token bucket (REGISTRY_RATE a second, bursts of
 * REGISTRY_BURST), skipped when only the machine facts changed, and made
 * at least every REGISTRY_FACTS_MS so the facts stay fresh.  A status
 * change (draining, stopping) is written at once.
 */
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/crypto.h>
#include <zookeeper/zookeeper.h>

#include "log.h"
#include "machine.h"
#include "nodee.h"
#include "registry.h"
#include "service.h"
#include "store.h"
#include "sup.h"

#define REGISTRY_RATE		5	/* writes a second, sustained */
#define REGISTRY_BURST		3
#define REGISTRY_FACTS_MS	30000
#define REGISTRY_START_WAIT_MS	3000
#define REGISTRY_RETRY_MS	1000
#define REGISTRY_REOPEN_MS	2000
#define REGISTRY_CONFLICT_MS	5000
#define REGISTRY_DRAIN_WAIT_MS	5000
#define REGISTRY_READ_MAX	(1024 * 1024)
#define REGISTRY_LOG_QUIET_MS	10000
#define REGISTRY_PATH_MAX	512

#ifndef nitems
#define nitems(a)	(sizeof(a) / sizeof((a)[0]))
#endif

enum reg_state {
	REG_DISABLED,
	REG_CONNECTING,
	REG_CONNECTED,
	REG_EXPIRED,
};

enum reg_status {
	REG_UP,
	REG_DRAINING,
	REG_STOPPING,
};

static const char *const reg_state_names[] = { "disabled", "connecting",
	"connected", "expired" };
static const char *const reg_status_names[] = { "up", "draining",
	"stopping" };

/* What one wake-up of the registry thread brings (taken under reg_mtx). */
struct reg_wake {
	int		 quit;
	int		 dirty;
	int		 session;
	int		 zkstate;
	int		 expired;
	int		 children;
	int		 own_gone;
	json_t		*stale;
	enum reg_status	 status;
	unsigned	 status_seq;
};

/*
 * The library's log lines, gathered into whole lines (under the FILE
 * lock), and the functions heard from lately, to keep its retries quiet.
 */
struct reg_logbuf {
	char	line[4096];
	size_t	len;
	struct {
		char	func[64];
		int64_t	ms;
	}	heard[8];
};

/* Set before the thread starts, read-only afterwards. */
static const struct config	*reg_cf;
static int64_t			 reg_started_ms;
static pthread_t		 reg_thread;
static char			 reg_path[REGISTRY_PATH_MAX + 64];
static char			 reg_dir[REGISTRY_PATH_MAX];
static char			 reg_host[256];
static char			 reg_machine_id[33];
static char			 reg_console[300];
static char			 reg_api[320];
static FILE			*reg_logfp;
static struct reg_logbuf	 reg_logbuf;

/* Wake-ups and requests; reg_mtx is never held across a call. */
static pthread_mutex_t		 reg_mtx = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t		 reg_cond;	/* wakes the thread */
static pthread_cond_t		 reg_told;	/* start-up outcome, writes */
static int			 reg_running;
static int			 reg_quit;
static int			 reg_dirty;
static int			 reg_session;
static int			 reg_zkstate;
static int			 reg_expired;
static int			 reg_children;
static int			 reg_own_gone;
static json_t			*reg_stale;
static enum reg_status		 reg_want_status;
static unsigned			 reg_status_seq;
static unsigned			 reg_status_done;
static int			 reg_starting;
static int			 reg_outcome;	/* 1 registered, -1 refused */
static char			 reg_outcome_err[2560];

/* What the API shows, under reg_view_mtx. */
static pthread_mutex_t		 reg_view_mtx = PTHREAD_MUTEX_INITIALIZER;
static enum reg_state		 view_state;
static enum reg_status		 view_status;
static int			 view_registered;
static int64_t			 view_session;
static int			 view_timeout;
static int64_t			 view_session_since;
static int64_t			 view_registered_at;
static int64_t			 view_last_write;
static uint64_t			 view_writes;
static char			 view_error[2560];
static json_t			*view_cell;	/* name -> entry */
static char			*view_text;	/* the cell answer, or NULL */
static size_t			 view_len;
static int64_t			 view_as_of;

/* The registry thread's own. */
static zhandle_t		*zh;
static enum reg_state		 t_state;
static int64_t			 t_session;
static int			 t_registered;
static int			 t_version = -1;
static int			 t_sync;	/* a write's outcome unknown */
static int			 t_dirty;
static enum reg_status		 t_status;
static unsigned			 t_status_seq;
static enum reg_status		 t_last_status;
static json_t			*t_last_services;
static double			 t_tokens = REGISTRY_BURST;
static int64_t			 t_tokens_at;
static int64_t			 t_last_write;
static int64_t			 t_reopen_at;
static int64_t			 t_retry_at;
static int			 t_children;
static int			 t_cell_all;
static json_t			*t_pending;	/* names to read again */
static char			*t_buf;		/* REGISTRY_READ_MAX */
static int			 t_init_errno;
static char			 t_conflict[64];	/* owner logged last */

static void	*registry_main(void *);
static void	 registry_wait(struct reg_wake *);
static void	 registry_step(struct reg_wake *);
static int64_t	 registry_next(int64_t);
static void	 registry_open(void);
static void	 registry_close(void);
static void	 registry_session_event(int);
static int	 registry_register(void);
static int	 registry_parents(void);
static int	 registry_ours(const char *, int);
static void	 registry_conflict(const char *, int, const struct Stat *);
static int	 registry_write(int);
static int	 registry_sync(void);
static json_t	*registry_node(enum reg_status);
static json_t	*registry_services(int *);
static int	 registry_cell_refresh(void);
static int	 registry_cell_read(const char *);
static void	 registry_cell_drop(const char *);
static void	 registry_publish(void);
static void	 registry_told(void);
static int64_t	 registry_written(json_t *);
static void	 registry_error(const char *, ...)
		    __attribute__((format(printf, 1, 2)));
static int	 registry_outcome(int, const char *);
static void	 registry_wake(int *);
static void	 registry_watch_session(zhandle_t *, int, int, const char *,
		    void *);
static void	 registry_watch_children(zhandle_t *, int, int,
		    const char *, void *);
static void	 registry_watch_node(zhandle_t *, int, int, const char *,
		    void *);
static ssize_t	 registry_log_write(void *, const char *, size_t);
static void	 registry_log_line(struct reg_logbuf *);
static void	 registry_identity(void);
static void	 registry_session_file(void);
static int64_t	 registry_token_at(int64_t);
static int64_t	 registry_mono(void);
static void	 registry_deadline(struct timespec *, int64_t);
static int	 registry_name_cmp(const void *, const void *);

/*
 * Starts the registry thread and waits a little (REGISTRY_START_WAIT_MS)
 * for the first registration, so that a different live nodee under our
 * instance name stops start-up with a message naming both (returns -1
 * with err).  A ZooKeeper that does not answer in that time does not stop
 * the daemon: registration follows whenever it answers.
 */
int
registry_start(const struct config *cf, int64_t started_ms, char *err,
    size_t errlen)
{
	static cookie_io_functions_t	 logfns = { NULL, registry_log_write,
					    NULL, NULL };
	pthread_condattr_t		 ca;
	struct timespec			 ts;
	int				 outcome, rc = 0;

	reg_cf = cf;
	reg_started_ms = started_ms;
	if (cf->zookeeper[0] == '\0') {
		log_info("registry", "no zookeeper configured: nodee runs "
		    "standalone");
		return 0;
	}
	registry_identity();
	snprintf(reg_dir, sizeof(reg_dir), "/meta/%s/nodes", cf->cell);
	snprintf(reg_path, sizeof(reg_path), "%s/%s", reg_dir, cf->instance);

	/* The library logs from its own threads: route it through ours. */
	if ((reg_logfp = fopencookie(&reg_logbuf, "w", logfns)) != NULL) {
		setvbuf(reg_logfp, NULL, _IOLBF, 0);
		zoo_set_log_stream(reg_logfp);
	}
	zoo_set_debug_level(log_get_level() >= LOG_LVL_DEBUG ?
	    ZOO_LOG_LEVEL_DEBUG : ZOO_LOG_LEVEL_WARN);

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&reg_cond, &ca);
	pthread_cond_init(&reg_told, &ca);
	pthread_condattr_destroy(&ca);
	reg_stale = json_object();
	t_pending = json_object();
	view_cell = json_object();
	if ((t_buf = malloc(REGISTRY_READ_MAX)) == NULL) {
		snprintf(err, errlen, "registry: out of memory");
		return -1;
	}
	view_state = t_state = REG_CONNECTING;

	pthread_mutex_lock(&reg_mtx);
	reg_running = 1;
	reg_starting = 1;
	reg_dirty = 1;
	pthread_mutex_unlock(&reg_mtx);
	if (pthread_create(&reg_thread, NULL, registry_main, NULL) != 0) {
		reg_running = 0;
		snprintf(err, errlen, "cannot start the registry thread");
		return -1;
	}
	log_info("registry", "registering as %s in ZooKeeper %s (session "
	    "timeout %u ms)", reg_path, cf->zookeeper, cf->zookeeper_timeout_ms);

	registry_deadline(&ts, registry_mono() + REGISTRY_START_WAIT_MS);
	pthread_mutex_lock(&reg_mtx);
	while (reg_outcome == 0 && rc != ETIMEDOUT)
		rc = pthread_cond_timedwait(&reg_told, &reg_mtx, &ts);
	outcome = reg_outcome;
	reg_starting = 0;
	pthread_mutex_unlock(&reg_mtx);
	if (outcome < 0) {
		snprintf(err, errlen, "%s", reg_outcome_err);
		registry_stop();
		return -1;
	}
	if (outcome == 0)
		log_warn("registry", "ZooKeeper %s has not answered within %d "
		    "ms: nodee runs on, and registers as soon as it answers",
		    cf->zookeeper, REGISTRY_START_WAIT_MS);
	return 0;
}

/* The daemon is stopping: say so in the node while the rest winds down. */
void
registry_stopping(void)
{
	pthread_mutex_lock(&reg_mtx);
	reg_want_status = REG_STOPPING;
	reg_status_seq++;
	if (reg_running)
		pthread_cond_signal(&reg_cond);
	pthread_mutex_unlock(&reg_mtx);
	pthread_mutex_lock(&reg_view_mtx);
	view_status = REG_STOPPING;
	pthread_mutex_unlock(&reg_view_mtx);
}

/*
 * Ends the session, which removes the node at once (other nodes see it go
 * without waiting for a timeout), and the thread.
 */
void
registry_stop(void)
{
	int	running;

	pthread_mutex_lock(&reg_mtx);
	running = reg_running;
	reg_quit = 1;
	if (running)
		pthread_cond_signal(&reg_cond);
	pthread_mutex_unlock(&reg_mtx);
	if (!running)
		return;
	pthread_join(reg_thread, NULL);
	pthread_mutex_lock(&reg_mtx);
	reg_running = 0;
	json_decref(reg_stale);
	reg_stale = NULL;
	pthread_mutex_unlock(&reg_mtx);
	/* No library thread is left to log. */
	zoo_set_log_stream(NULL);
	if (reg_logfp != NULL)
		fclose(reg_logfp);
	reg_logfp = NULL;
	pthread_cond_destroy(&reg_cond);
	pthread_cond_destroy(&reg_told);
	pthread_mutex_lock(&reg_view_mtx);
	json_decref(view_cell);
	view_cell = NULL;
	free(view_text);
	view_text = NULL;
	view_state = REG_DISABLED;
	pthread_mutex_unlock(&reg_view_mtx);
}

/*
 * The supervisor's listener: a service changed.  Called on the supervisor
 * thread, possibly very often; it only sets a flag.
 */
void
registry_changed(void)
{
	registry_wake(&reg_dirty);
}

/* The registry part of GET /api/v1/node; a new object. */
json_t *
registry_status(void)
{
	json_t	*o;
	char	 sid[32];

	pthread_mutex_lock(&reg_view_mtx);
	o = json_pack("{s:s, s:s, s:b}", "state", reg_state_names[view_state],
	    "status", reg_status_names[view_status], "registered",
	    view_registered);
	if (reg_cf != NULL && reg_cf->zookeeper[0] != '\0') {
		snprintf(sid, sizeof(sid), "0x%" PRIx64, (uint64_t)view_session);
		json_object_set_new(o, "zookeeper",
		    json_string(reg_cf->zookeeper));
		json_object_set_new(o, "path", json_string(reg_path));
		json_object_set_new(o, "session", view_session != 0 ?
		    json_string(sid) : json_null());
		json_object_set_new(o, "session_timeout_ms", view_timeout > 0 ?
		    json_integer(view_timeout) : json_null());
		json_object_set_new(o, "session_since", view_session_since ?
		    json_integer(view_session_since) : json_null());
		json_object_set_new(o, "registered_at", view_registered_at ?
		    json_integer(view_registered_at) : json_null());
		json_object_set_new(o, "writes",
		    json_integer((json_int_t)view_writes));
		json_object_set_new(o, "last_write_at", view_last_write ?
		    json_integer(view_last_write) : json_null());
		json_object_set_new(o, "error", view_error[0] ?
		    json_string(view_error) : json_null());
	}
	pthread_mutex_unlock(&reg_view_mtx);
	return o;
}

/*
 * GET /api/v1/cell/nodes: the cell as the watched copy has it.  The answer
 * is serialised once per change of the copy, not per request.  Returns a
 * new buffer (free it) with *lenp, or NULL with *rc (ND_UNAVAILABLE: no
 * ZooKeeper is configured; ND_INTERNAL) and err.
 */
char *
registry_cell(size_t *lenp, enum nd_rc *rc, char *err, size_t errlen)
{
	const char	**names = NULL, *k;
	json_t		 *o, *nodes, *v;
	char		 *copy = NULL;
	size_t		  n = 0, i;

	if (reg_cf == NULL || reg_cf->zookeeper[0] == '\0') {
		*rc = ND_UNAVAILABLE;
		snprintf(err, errlen, "no ZooKeeper is configured (key "
		    "zookeeper): this node runs standalone and has no cell view");
		return NULL;
	}
	pthread_mutex_lock(&reg_view_mtx);
	if (view_text == NULL && view_cell != NULL) {
		names = calloc(json_object_size(view_cell) + 1,
		    sizeof(*names));
		nodes = json_array();
		if (names != NULL) {
			json_object_foreach(view_cell, k, v) {
				names[n++] = k;
			}
			qsort(names, n, sizeof(*names), registry_name_cmp);
			for (i = 0; i < n; i++)
				json_array_append(nodes,
				    json_object_get(view_cell, names[i]));
		}
		o = json_pack("{s:s, s:s, s:s, s:b, s:I, s:o}",
		    "cell", reg_cf->cell, "self", reg_cf->instance,
		    "registry", reg_state_names[view_state],
		    "stale", view_state != REG_CONNECTED,
		    "as_of", (json_int_t)view_as_of, "nodes", nodes);
		view_text = json_dumps(o, JSON_COMPACT);
		view_len = view_text ? strlen(view_text) : 0;
		json_decref(o);
		free(names);
	}
	if (view_text != NULL && (copy = malloc(view_len + 1)) != NULL) {
		memcpy(copy, view_text, view_len + 1);
		*lenp = view_len;
	}
	pthread_mutex_unlock(&reg_view_mtx);
	if (copy == NULL) {
		*rc = ND_INTERNAL;
		snprintf(err, errlen, "out of memory");
	} else
		*rc = ND_OK;
	return copy;
}

/*
 * POST /api/v1/node/drain: the node is marked draining in ZooKeeper first
 * (we wait up to REGISTRY_DRAIN_WAIT_MS for the write while connected),
 * then every running service is drained.  The node stays registered.
 * Returns ND_ACCEPTED with *answer (new): each service's entry has its
 * coordinate, the outcome of its drain as "rc" (an enum nd_rc, which the
 * API shows as an HTTP status) and a detail.  ND_UNAVAILABLE with err
 * when the store is.
 */
enum nd_rc
registry_node_drain(json_t **answer, char *err, size_t errlen)
{
	struct timespec	 ts;
	sqlite3		*db;
	json_t		*rows, *row, *done;
	const char	*zk = "disabled", *coord, *state;
	char		 e[512];
	unsigned	 seq;
	size_t		 i;
	enum nd_rc	 drc;
	int		 rc = 0, live;

	pthread_mutex_lock(&reg_view_mtx);
	if (view_status == REG_UP)
		view_status = REG_DRAINING;
	live = view_state == REG_CONNECTED && view_registered;
	pthread_mutex_unlock(&reg_view_mtx);

	pthread_mutex_lock(&reg_mtx);
	if (reg_want_status == REG_UP)
		reg_want_status = REG_DRAINING;
	seq = ++reg_status_seq;
	if (reg_running) {
		zk = "pending";
		pthread_cond_signal(&reg_cond);
		registry_deadline(&ts, registry_mono() +
		    REGISTRY_DRAIN_WAIT_MS);
		while (live && reg_status_done < seq && rc != ETIMEDOUT)
			rc = pthread_cond_timedwait(&reg_told, &reg_mtx, &ts);
		if (reg_status_done >= seq)
			zk = "written";
	}
	pthread_mutex_unlock(&reg_mtx);
	if (strcmp(zk, "pending") == 0)
		log_warn("registry", "node drain: ZooKeeper has not taken the "
		    "draining status yet; it is written when it answers");

	if ((db = store_db()) == NULL) {
		snprintf(err, errlen, "the store is unavailable");
		return ND_UNAVAILABLE;
	}
	rows = service_list(db);
	done = json_array();
	json_array_foreach(rows, i, row) {
		state = json_string_value(json_object_get(row, "state"));
		coord = json_string_value(json_object_get(row, "coordinate"));
		if (state == NULL || coord == NULL ||
		    strcmp(state, "running") != 0)
			continue;
		e[0] = '\0';
		drc = sup_command(SUP_DRAIN, coord, NULL, 0, 0, e, sizeof(e));
		json_array_append_new(done, json_pack("{s:s, s:i, s:s}",
		    "coordinate", coord, "rc", (int)drc, "detail",
		    drc == ND_OK || drc == ND_ACCEPTED ? "draining" : e));
	}
	json_decref(rows);
	log_info("registry", "node drain: %zu services told to drain",
	    json_array_size(done));
	*answer = json_pack("{s:s, s:s, s:o}", "status", "draining",
	    "zookeeper", zk, "services", done);
	return ND_ACCEPTED;
}

/*
 * The node's data: node (every field but the services; this function adds
 * them) and as many of services' entries as fit in max bytes, in their
 * order.  A list that does not fit is cut and the data says so
 * ("services_truncated", with "services_total" and "service_states"
 * counting all of them).  Returns a new string (free it) with its length,
 * or NULL if not even the node without services fits.
 */
char *
registry_encode(json_t *node, const json_t *services, size_t max,
    size_t *lenp)
{
	json_t		*list, *states, *e, *c;
	const char	*st;
	char		*text;
	size_t		 i, used, sz, n = json_array_size(services);

	states = json_object();
	json_array_foreach(services, i, e) {
		st = json_string_value(json_object_get(e, "state"));
		if (st == NULL)
			st = "unknown";
		c = json_object_get(states, st);
		json_object_set_new(states, st, json_integer(c ?
		    json_integer_value(c) + 1 : 1));
	}
	json_object_set_new(node, "service_states", states);
	json_object_set_new(node, "services_total", json_integer((json_int_t)n));
	/* "false" is the longer: the measured base holds either. */
	json_object_set_new(node, "services_truncated", json_false());
	json_object_set_new(node, "services", json_array());
	used = json_dumpb(node, NULL, 0, JSON_COMPACT);
	if (used == 0 || used > max)
		return NULL;
	list = json_array();
	for (i = 0; i < n; i++) {
		e = json_array_get(services, i);
		sz = json_dumpb(e, NULL, 0, JSON_COMPACT) + (i > 0 ? 1 : 0);
		if (used + sz > max)
			break;
		used += sz;
		json_array_append(list, e);
	}
	if (i < n)
		json_object_set_new(node, "services_truncated", json_true());
	json_object_set_new(node, "services", list);
	if ((text = json_dumps(node, JSON_COMPACT)) == NULL)
		return NULL;
	*lenp = strlen(text);
	if (*lenp > max) {
		free(text);
		return NULL;
	}
	return text;
}

static void *
registry_main(void *arg)
{
	struct reg_wake	w;

	(void)arg;
	for (;;) {
		registry_wait(&w);
		if (w.quit) {
			json_decref(w.stale);
			break;
		}
		registry_step(&w);
		json_decref(w.stale);
	}
	/* One last word if the stop came before "stopping" was written. */
	if (zh != NULL && t_state == REG_CONNECTED && t_registered &&
	    t_last_status != REG_STOPPING) {
		t_status = REG_STOPPING;
		(void)registry_write(1);
	}
	if (zh != NULL && t_registered)
		log_info("registry", "closing the session: %s goes with it",
		    reg_path);
	registry_close();
	json_decref(t_last_services);
	t_last_services = NULL;
	json_decref(t_pending);
	t_pending = NULL;
	free(t_buf);
	t_buf = NULL;
	store_close();
	return NULL;
}

/* Sleeps until there is something to do, and takes it. */
static void
registry_wait(struct reg_wake *w)
{
	struct timespec	ts;
	int64_t		now, next;

	pthread_mutex_lock(&reg_mtx);
	for (;;) {
		if (reg_quit || reg_dirty || reg_session || reg_expired ||
		    reg_children || reg_own_gone ||
		    json_object_size(reg_stale) > 0 ||
		    reg_status_seq != t_status_seq)
			break;
		now = registry_mono();
		if ((next = registry_next(now)) <= now)
			break;
		registry_deadline(&ts, next);
		pthread_cond_timedwait(&reg_cond, &reg_mtx, &ts);
	}
	w->quit = reg_quit;
	w->dirty = reg_dirty;
	w->session = reg_session;
	w->zkstate = reg_zkstate;
	w->expired = reg_expired;
	w->children = reg_children;
	w->own_gone = reg_own_gone;
	w->stale = reg_stale;
	w->status = reg_want_status;
	w->status_seq = reg_status_seq;
	reg_stale = json_object();
	reg_dirty = reg_session = reg_expired = reg_children = 0;
	reg_own_gone = 0;
	pthread_mutex_unlock(&reg_mtx);
}

/* One round: session changes, registration, the write, the cell. */
static void
registry_step(struct reg_wake *w)
{
	const char	*k;
	json_t		*v;
	int64_t		 now = registry_mono();
	int		 rc;

	if (w->dirty)
		t_dirty = 1;
	t_status = w->status;
	t_status_seq = w->status_seq;
	json_object_foreach(w->stale, k, v) {
		json_object_set(t_pending, k, json_true());
	}
	if (w->children)
		t_children = 1;
	if (w->own_gone && t_registered) {
		log_warn("registry", "%s was deleted while our session lives "
		    "(by an operator?): registering again", reg_path);
		t_registered = 0;
	} else if (w->own_gone)
		t_retry_at = 0;		/* a conflicting node went away */
	if (w->expired)
		registry_session_event(ZOO_EXPIRED_SESSION_STATE);
	else if (w->session)
		registry_session_event(w->zkstate);
	if (zh == NULL && now >= t_reopen_at)
		registry_open();
	if (zh == NULL || t_state != REG_CONNECTED || now < t_retry_at)
		goto out;
	t_retry_at = 0;
	if (t_sync && registry_sync() != 0)
		goto retry;
	if (!t_registered && (rc = registry_register()) != 0) {
		if (rc != -2)
			goto retry;
		/* Still show the cell, and watch the name for its release. */
		if (registry_cell_refresh() != 0)
			goto retry;
		t_retry_at = now + REGISTRY_CONFLICT_MS;
		goto out;
	}
	if ((t_dirty || t_status != t_last_status ||
	    now >= t_last_write + REGISTRY_FACTS_MS) &&
	    (t_status != t_last_status || registry_token_at(now) <= now) &&
	    registry_write(now >= t_last_write + REGISTRY_FACTS_MS) != 0)
		goto retry;
	if (t_registered && t_status == t_last_status)
		registry_told();
	if (registry_cell_refresh() != 0)
		goto retry;
	goto out;
retry:
	t_retry_at = now + REGISTRY_RETRY_MS;
out:
	registry_publish();
}

/* The time by which the thread must act without being woken. */
static int64_t
registry_next(int64_t now)
{
	int64_t	next = now + REGISTRY_FACTS_MS;

	if (zh == NULL)
		return t_reopen_at;
	if (t_state != REG_CONNECTED)
		return next;	/* session events wake us */
	if (t_retry_at != 0)
		return t_retry_at;
	if (!t_registered || t_sync || t_children ||
	    json_object_size(t_pending) > 0)
		return now;
	if (t_dirty && registry_token_at(now) < next)
		next = registry_token_at(now);
	if (t_last_write + REGISTRY_FACTS_MS < next)
		next = t_last_write + REGISTRY_FACTS_MS;
	return next;
}

static void
registry_open(void)
{
	zh = zookeeper_init(reg_cf->zookeeper, registry_watch_session,
	    (int)reg_cf->zookeeper_timeout_ms, NULL, NULL, 0);
	if (zh == NULL) {
		/* Bad names do not get better, but DNS may: try again. */
		if (errno != t_init_errno)
			log_warn("registry", "cannot start a ZooKeeper client "
			    "for %s: %s; trying again every %d s",
			    reg_cf->zookeeper, strerror(errno),
			    REGISTRY_REOPEN_MS / 1000);
		t_init_errno = errno;
		registry_error("cannot start a ZooKeeper client for %s: %s",
		    reg_cf->zookeeper, strerror(errno));
		t_reopen_at = registry_mono() + REGISTRY_REOPEN_MS;
		return;
	}
	t_init_errno = 0;
	if (t_state != REG_EXPIRED)
		t_state = REG_CONNECTING;
}

/*
 * Closes the handle (and with it the session, if it still lives, which
 * removes our node).  The library's threads are joined, so none of its
 * events can come after this; what came before belongs to the old handle.
 */
static void
registry_close(void)
{
	if (zh == NULL)
		return;
	zookeeper_close(zh);
	zh = NULL;
	pthread_mutex_lock(&reg_mtx);
	reg_session = reg_expired = reg_children = reg_own_gone = 0;
	json_object_clear(reg_stale);
	pthread_mutex_unlock(&reg_mtx);
	t_session = 0;
	t_registered = 0;
	t_sync = 0;
	t_version = -1;
	t_retry_at = 0;
}

static void
registry_session_event(int state)
{
	const clientid_t	*id;

	if (state == ZOO_CONNECTED_STATE && zh != NULL) {
		id = zoo_client_id(zh);
		if (id->client_id != t_session) {
			t_session = id->client_id;
			t_registered = 0;
			t_children = t_cell_all = 1;
			log_info("registry", "ZooKeeper session 0x%" PRIx64
			    " established, timeout %d ms", (uint64_t)t_session,
			    zoo_recv_timeout(zh));
			pthread_mutex_lock(&reg_view_mtx);
			view_session = t_session;
			view_timeout = zoo_recv_timeout(zh);
			view_session_since = store_now_ms();
			pthread_mutex_unlock(&reg_view_mtx);
			registry_session_file();
		} else if (t_state != REG_CONNECTED)
			log_info("registry", "connected to ZooKeeper again; "
			    "session 0x%" PRIx64 " kept", (uint64_t)t_session);
		t_state = REG_CONNECTED;
		t_retry_at = 0;
	} else if (state == ZOO_EXPIRED_SESSION_STATE ||
	    state == ZOO_AUTH_FAILED_STATE) {
		/* The handle is dead: a new one, a new session, a new node. */
		log_warn("registry", "ZooKeeper session 0x%" PRIx64 " %s: "
		    "opening a new one to register %s again",
		    (uint64_t)t_session, state == ZOO_AUTH_FAILED_STATE ?
		    "failed authentication" : "expired", reg_path);
		registry_close();
		t_state = REG_EXPIRED;
		t_reopen_at = 0;
	} else if (state == ZOO_CONNECTING_STATE ||
	    state == ZOO_ASSOCIATING_STATE) {
		if (t_state == REG_CONNECTED)
			log_warn("registry", "lost the connection to ZooKeeper; "
			    "the session and %s last if it hears from us "
			    "within %d ms", reg_path, zh ? zoo_recv_timeout(zh) :
			    0);
		if (t_state != REG_EXPIRED)
			t_state = REG_CONNECTING;
	}
}

/*
 * Creates our ephemeral node.  Returns 0 when registered, -1 to try again
 * later (connection trouble), -2 when another live nodee holds the name.
 */
static int
registry_register(void)
{
	struct Stat	 st;
	json_t		*node, *services;
	char		*text;
	size_t		 len;
	int64_t		 now;
	int		 rc, tries, blen, ok;

	if ((services = registry_services(&ok)) == NULL || !ok) {
		json_decref(services);
		return -1;
	}
	node = registry_node(t_status);
	text = registry_encode(node, services, REGISTRY_DATA_MAX, &len);
	json_decref(node);
	if (text == NULL) {
		json_decref(services);
		return -1;
	}
	for (tries = 0; tries < 5; tries++) {
		rc = zoo_create(zh, reg_path, text, (int)len,
		    &ZOO_OPEN_ACL_UNSAFE, ZOO_EPHEMERAL, NULL, 0);
		if (rc == ZOK) {
			t_version = 0;
			break;
		}
		if (rc == ZNONODE) {
			if (registry_parents() != 0)
				break;
			continue;
		}
		if (rc != ZNODEEXISTS)
			break;
		blen = REGISTRY_READ_MAX;
		rc = zoo_get(zh, reg_path, 0, t_buf, &blen, &st);
		if (rc == ZNONODE)
			continue;
		if (rc != ZOK)
			break;
		if (st.ephemeralOwner == t_session) {
			/* Our own create, whose answer was lost. */
			t_version = st.version;
			t_dirty = 1;
			break;
		}
		if (!registry_ours(t_buf, blen)) {
			registry_conflict(t_buf, blen, &st);
			free(text);
			json_decref(services);
			return -2;
		}
		log_info("registry", "%s is still held by session 0x%" PRIx64
		    " of this node's previous run: replacing it", reg_path,
		    (uint64_t)st.ephemeralOwner);
		rc = zoo_delete(zh, reg_path, st.version);
		if (rc != ZOK && rc != ZNONODE && rc != ZBADVERSION)
			break;
	}
	free(text);
	if (rc != ZOK) {
		json_decref(services);
		registry_error("cannot create %s: %s", reg_path, zerror(rc));
		log_warn("registry", "cannot create %s: %s; trying again",
		    reg_path, zerror(rc));
		return -1;
	}
	t_registered = 1;
	t_sync = 0;
	t_conflict[0] = '\0';
	now = registry_written(services);
	pthread_mutex_lock(&reg_view_mtx);
	view_registered_at = now;
	pthread_mutex_unlock(&reg_view_mtx);
	log_info("registry", "registered %s (session 0x%" PRIx64 ")", reg_path,
	    (uint64_t)t_session);
	t_children = 1;
	registry_publish();	/* before start-up goes on to serve it */
	registry_outcome(1, NULL);
	return 0;
}

/* /meta, /meta/<cell>, /meta/<cell>/nodes as persistent nodes. */
static int
registry_parents(void)
{
	char	path[REGISTRY_PATH_MAX], *p;
	int	rc;

	snprintf(path, sizeof(path), "%s", reg_dir);
	for (p = path + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		*p = '\0';
		rc = zoo_create(zh, path, NULL, -1, &ZOO_OPEN_ACL_UNSAFE,
		    ZOO_PERSISTENT, NULL, 0);
		if (rc != ZOK && rc != ZNODEEXISTS) {
			registry_error("cannot create %s: %s%s", path,
			    zerror(rc), rc == ZNONODE ? " (does the chroot of "
			    "key zookeeper exist?)" : "");
			log_warn("registry", "cannot create %s: %s%s", path,
			    zerror(rc), rc == ZNONODE ? " (does the chroot of "
			    "key zookeeper exist?)" : "");
			return -1;
		}
		if (p >= path + strlen(reg_dir))
			return 0;
		*p = '/';
	}
}

/* Whether a node's data is this node's own (an earlier run of it). */
static int
registry_ours(const char *data, int len)
{
	json_error_t	 je;
	json_t		*o;
	int		 ours;

	if ((o = json_loadb(data, (size_t)len, 0, &je)) == NULL)
		return 0;
	ours = json_is_string(json_object_get(o, "machine_id")) &&
	    strcmp(json_string_value(json_object_get(o, "machine_id")),
	    reg_machine_id) == 0 &&
	    json_is_string(json_object_get(o, "prefix")) &&
	    strcmp(json_string_value(json_object_get(o, "prefix")),
	    reg_cf->prefix) == 0;
	json_decref(o);
	return ours;
}

/* Another nodee holds our name: an error that names both. */
static void
registry_conflict(const char *data, int len, const struct Stat *st)
{
	json_error_t	 je;
	json_t		*o;
	struct tm	 tm;
	time_t		 t;
	char		 other[768], msg[2560], owner[32], when[32];

	snprintf(owner, sizeof(owner), "0x%" PRIx64,
	    (uint64_t)st->ephemeralOwner);
	if ((o = json_loadb(data, (size_t)len, 0, &je)) != NULL &&
	    json_is_object(o)) {
		t = (time_t)(json_integer_value(json_object_get(o,
		    "started_at")) / 1000);
		if (gmtime_r(&t, &tm) == NULL || strftime(when, sizeof(when),
		    "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
			snprintf(when, sizeof(when), "?");
		snprintf(other, sizeof(other), "host %.128s, prefix %.200s, pid "
		    "%" JSON_INTEGER_FORMAT ", console %.200s, started %s, "
		    "ZooKeeper session %s",
		    json_string_value(json_object_get(o, "host")) ?
		    json_string_value(json_object_get(o, "host")) : "?",
		    json_string_value(json_object_get(o, "prefix")) ?
		    json_string_value(json_object_get(o, "prefix")) : "?",
		    json_integer_value(json_object_get(o, "pid")),
		    json_string_value(json_object_get(o, "console")) ?
		    json_string_value(json_object_get(o, "console")) : "?",
		    when, owner);
	} else
		snprintf(other, sizeof(other), "a node that is not nodee's "
		    "(%s, data not JSON)", st->ephemeralOwner != 0 ?
		    "ephemeral" : "persistent");
	json_decref(o);
	snprintf(msg, sizeof(msg), "instance '%s' of cell '%s' is already "
	    "registered in ZooKeeper (%s) by another nodee: %s.  This nodee is "
	    "host %.128s, prefix %.200s, pid %ld.  Give one of them another instance "
	    "name (key instance, NODEE_INSTANCE) or stop the other; a nodee "
	    "that died keeps its registration until its session times out",
	    reg_cf->instance, reg_cf->cell, reg_path, other, reg_host,
	    reg_cf->prefix, (long)getpid());
	registry_error("%s", msg);
	if (!registry_outcome(-1, msg) && strcmp(t_conflict, owner) != 0)
		log_error("registry", "%s", msg);
	snprintf(t_conflict, sizeof(t_conflict), "%s", owner);
}

/*
 * Writes the node's data with the version we last wrote; force writes
 * even if only the facts changed.  0 when written or nothing to write,
 * -1 to try again later.
 */
static int
registry_write(int force)
{
	struct Stat	 st;
	json_t		*node, *services;
	char		*text;
	size_t		 len;
	int		 rc, ok, tries;

	if ((services = registry_services(&ok)) == NULL || !ok) {
		json_decref(services);
		return -1;
	}
	if (!force && t_status == t_last_status && t_last_services != NULL &&
	    json_equal(services, t_last_services)) {
		json_decref(services);
		t_dirty = 0;
		return 0;
	}
	node = registry_node(t_status);
	text = registry_encode(node, services, REGISTRY_DATA_MAX, &len);
	json_decref(node);
	if (text == NULL) {
		json_decref(services);
		log_error("registry", "the node's data cannot be encoded");
		return -1;
	}
	if (json_array_size(services) > 0 && strstr(text,
	    "\"services_truncated\":true") != NULL &&
	    (t_last_services == NULL || json_array_size(t_last_services) !=
	    json_array_size(services)))
		log_warn("registry", "%zu services do not fit in ZooKeeper's "
		    "node (%d bytes at most): the node lists the first ones, "
		    "and GET /api/v1/services has them all",
		    json_array_size(services), REGISTRY_DATA_MAX);
	/* A status change may go without a token, never below none. */
	(void)registry_token_at(registry_mono());
	t_tokens = t_tokens >= 1.0 ? t_tokens - 1.0 : 0.0;
	for (tries = 0; tries < 2; tries++) {
		rc = zoo_set2(zh, reg_path, text, (int)len, t_version, &st);
		if (rc != ZBADVERSION)
			break;
		/* Someone else wrote to our node: say so, then take it back. */
		rc = zoo_exists(zh, reg_path, 0, &st);
		if (rc != ZOK || st.ephemeralOwner != t_session) {
			rc = ZNONODE;
			break;
		}
		log_warn("registry", "%s was changed by another writer "
		    "(version %d, we wrote %d): writing ours again", reg_path,
		    st.version, t_version);
		t_version = st.version;
	}
	free(text);
	if (rc == ZNONODE) {
		json_decref(services);
		log_warn("registry", "%s is gone or is not ours any more: "
		    "registering again", reg_path);
		t_registered = 0;
		return -1;
	}
	if (rc != ZOK) {
		json_decref(services);
		/* The write may have happened: learn the version first. */
		if (rc == ZCONNECTIONLOSS || rc == ZOPERATIONTIMEOUT)
			t_sync = 1;
		log_warn("registry", "cannot write %s: %s; trying again",
		    reg_path, zerror(rc));
		return -1;
	}
	t_version = st.version;
	t_dirty = 0;
	(void)registry_written(services);
	log_debug("registry", "wrote %s: %zu bytes, version %d", reg_path, len,
	    t_version);
	return 0;
}

/* After a write with an unknown outcome: the node's version, and whose. */
static int
registry_sync(void)
{
	struct Stat	st;
	int		rc;

	rc = zoo_exists(zh, reg_path, 0, &st);
	if (rc == ZOK && st.ephemeralOwner == t_session) {
		t_version = st.version;
		t_sync = 0;
		t_dirty = 1;
		return 0;
	}
	if (rc == ZOK || rc == ZNONODE) {
		t_registered = 0;
		t_sync = 0;
		return 0;
	}
	return -1;
}

/* Everything in the node's data but the services. */
static json_t *
registry_node(enum reg_status status)
{
	struct statvfs	 vfs;
	json_t		*m = machine_facts();

	if (statvfs(reg_cf->prefix, &vfs) == 0) {
		json_object_set_new(m, "disk_free_bytes", json_integer(
		    (json_int_t)((unsigned long long)vfs.f_bavail *
		    vfs.f_frsize)));
		json_object_set_new(m, "disk_total_bytes", json_integer(
		    (json_int_t)((unsigned long long)vfs.f_blocks *
		    vfs.f_frsize)));
	}
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:I, s:s, "
	    "s:s, s:I, s:I, s:o}",
	    "instance", reg_cf->instance,
	    "cell", reg_cf->cell,
	    "host", reg_host,
	    "version", NODEE_VERSION,
	    "status", reg_status_names[status],
	    "console", reg_console,
	    "api", reg_api,
	    "port", (int)reg_cf->listen_port,
	    "pid", (json_int_t)getpid(),
	    "prefix", reg_cf->prefix,
	    "machine_id", reg_machine_id,
	    "started_at", (json_int_t)reg_started_ms,
	    "updated_at", (json_int_t)store_now_ms(),
	    "machine", m);
}

/*
 * The services as the node shows them, from the store; *ok is 0 if the
 * store could not be read (then nothing must be written: an empty list
 * would be a lie).
 *
 * The supervisor tells us of a change from inside its transaction, before
 * the commit.  Taking the write lock (we write nothing) waits for that
 * transaction to end, so what we read is never older than what we were
 * told of; a plain read could see the state before it, and no second
 * word would come.
 */
static json_t *
registry_services(int *ok)
{
	static const char *const keys[][2] = { { "coordinate", "coordinate" },
	    { "artifact", "artifact" }, { "state", "state" }, { "pid", "pid" },
	    { "since", "updated_at" }, { "restarts", "restarts" } };
	sqlite3		*db;
	json_t		*rows, *row, *out, *e, *v;
	size_t		 i, k;

	*ok = 0;
	if ((db = store_db()) == NULL)
		return NULL;
	if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) !=
	    SQLITE_OK) {
		log_warn("registry", "cannot read the services: %s",
		    sqlite3_errmsg(db));
		return NULL;
	}
	rows = service_list(db);
	sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	out = json_array();
	json_array_foreach(rows, i, row) {
		e = json_object();
		for (k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
			v = json_object_get(row, keys[k][1]);
			json_object_set(e, keys[k][0], v ? v : json_null());
		}
		json_array_append_new(out, e);
	}
	json_decref(rows);
	*ok = 1;
	return out;
}

/*
 * Brings the cell's copy up to date: the children (a watch on the list)
 * and the data of each node whose watch fired (a watch on each).
 */
static int
registry_cell_refresh(void)
{
	struct String_vector	 sv;
	struct Stat		 st;
	const char		*k;
	json_t			*v, *seen;
	void			*tmp;
	int			 rc, i;

	if (t_children) {
		memset(&sv, 0, sizeof(sv));
		rc = zoo_wget_children(zh, reg_dir, registry_watch_children,
		    NULL, &sv);
		if (rc == ZNONODE) {
			/* Not there yet: be told when it is. */
			rc = zoo_wexists(zh, reg_dir, registry_watch_children,
			    NULL, &st);
			if (rc != ZOK && rc != ZNONODE)
				return -1;
			if (rc == ZOK)
				return 0;	/* just made: read it next */
			pthread_mutex_lock(&reg_view_mtx);
			json_object_clear(view_cell);
			free(view_text);
			view_text = NULL;
			pthread_mutex_unlock(&reg_view_mtx);
			t_children = t_cell_all = 0;
			return 0;
		}
		if (rc != ZOK)
			return -1;
		seen = json_object();
		for (i = 0; i < sv.count; i++) {
			json_object_set_new(seen, sv.data[i], json_true());
			pthread_mutex_lock(&reg_view_mtx);
			if (t_cell_all || json_object_get(view_cell,
			    sv.data[i]) == NULL)
				json_object_set_new(t_pending, sv.data[i],
				    json_true());
			pthread_mutex_unlock(&reg_view_mtx);
		}
		deallocate_String_vector(&sv);
		pthread_mutex_lock(&reg_view_mtx);
		json_object_foreach_safe(view_cell, tmp, k, v) {
			if (json_object_get(seen, k) == NULL) {
				json_object_del(view_cell, k);
				free(view_text);
				view_text = NULL;
			}
		}
		view_as_of = store_now_ms();
		pthread_mutex_unlock(&reg_view_mtx);
		json_decref(seen);
		t_children = t_cell_all = 0;
	}
	json_object_foreach_safe(t_pending, tmp, k, v) {
		if (registry_cell_read(k) != 0)
			return -1;
		json_object_del(t_pending, k);
	}
	return 0;
}

/* Reads one node of the cell into the copy, and watches it. */
static int
registry_cell_read(const char *name)
{
	struct Stat	 st;
	json_error_t	 je;
	json_t		*data, *entry;
	char		 path[REGISTRY_PATH_MAX + 256], sid[32];
	int		 rc, len = REGISTRY_READ_MAX;

	if (snprintf(path, sizeof(path), "%s/%s", reg_dir, name) >=
	    (int)sizeof(path))
		return 0;
	rc = zoo_wget(zh, path, registry_watch_node, NULL, t_buf, &len, &st);
	if (rc == ZNONODE) {
		registry_cell_drop(name);
		return 0;
	}
	if (rc != ZOK)
		return -1;
	if (len < 0)
		len = 0;
	if ((data = json_loadb(t_buf, (size_t)len, 0, &je)) == NULL &&
	    (data = json_stringn(t_buf, (size_t)len)) == NULL)
		data = json_null();
	snprintf(sid, sizeof(sid), "0x%" PRIx64, (uint64_t)st.ephemeralOwner);
	entry = json_pack("{s:s, s:b, s:s, s:i, s:I, s:I, s:o}",
	    "instance", name,
	    "self", strcmp(name, reg_cf->instance) == 0,
	    "session", sid,
	    "version", st.version,
	    "created_at", (json_int_t)st.ctime,
	    "modified_at", (json_int_t)st.mtime,
	    "data", data);
	pthread_mutex_lock(&reg_view_mtx);
	json_object_set_new(view_cell, name, entry);
	free(view_text);
	view_text = NULL;
	view_as_of = store_now_ms();
	pthread_mutex_unlock(&reg_view_mtx);
	return 0;
}

static void
registry_cell_drop(const char *name)
{
	pthread_mutex_lock(&reg_view_mtx);
	if (json_object_del(view_cell, name) == 0) {
		free(view_text);
		view_text = NULL;
	}
	view_as_of = store_now_ms();
	pthread_mutex_unlock(&reg_view_mtx);
}

/* The thread's state, as the API shows it. */
static void
registry_publish(void)
{
	pthread_mutex_lock(&reg_view_mtx);
	if (view_state != t_state || view_registered != t_registered) {
		free(view_text);
		view_text = NULL;
	}
	view_state = t_state;
	view_registered = t_registered;
	if (t_session == 0)
		view_session = 0;
	if (t_registered && t_conflict[0] == '\0')
		view_error[0] = '\0';
	pthread_mutex_unlock(&reg_view_mtx);
}

static void
registry_error(const char *fmt, ...)
{
	va_list	ap;

	pthread_mutex_lock(&reg_view_mtx);
	va_start(ap, fmt);
	vsnprintf(view_error, sizeof(view_error), fmt, ap);
	va_end(ap);
	pthread_mutex_unlock(&reg_view_mtx);
}

/*
 * The node holds services (taken) and the wanted status: remember them,
 * count the write.  Returns its time (ms).
 */
static int64_t
registry_written(json_t *services)
{
	int64_t	now = store_now_ms();

	json_decref(t_last_services);
	t_last_services = services;
	t_last_status = t_status;
	t_last_write = registry_mono();
	registry_told();
	pthread_mutex_lock(&reg_view_mtx);
	view_last_write = now;
	view_writes++;
	view_error[0] = '\0';
	pthread_mutex_unlock(&reg_view_mtx);
	return now;
}

/* The wanted status is in ZooKeeper: wakes a waiting node drain. */
static void
registry_told(void)
{
	pthread_mutex_lock(&reg_mtx);
	if (reg_status_done != t_status_seq) {
		reg_status_done = t_status_seq;
		pthread_cond_broadcast(&reg_told);
	}
	pthread_mutex_unlock(&reg_mtx);
}

/*
 * Tells registry_start, if it still waits, how registration went; 1 if it
 * did wait (and reports msg itself).
 */
static int
registry_outcome(int outcome, const char *msg)
{
	int	told = 0;

	pthread_mutex_lock(&reg_mtx);
	if (reg_starting && reg_outcome == 0) {
		reg_outcome = outcome;
		if (msg != NULL)
			snprintf(reg_outcome_err, sizeof(reg_outcome_err), "%s",
			    msg);
		pthread_cond_broadcast(&reg_told);
		told = 1;
	}
	pthread_mutex_unlock(&reg_mtx);
	return told;
}

/* Raises one of the flags under reg_mtx and wakes the registry thread. */
static void
registry_wake(int *flag)
{
	pthread_mutex_lock(&reg_mtx);
	*flag = 1;
	if (reg_running)
		pthread_cond_signal(&reg_cond);
	pthread_mutex_unlock(&reg_mtx);
}

/*
 * The watchers run on the library's completion thread; they only note
 * what happened.  Every watcher also sees session events.
 */
static void
registry_watch_session(zhandle_t *h, int type, int state, const char *path,
    void *ctx)
{
	(void)h;
	(void)path;
	(void)ctx;
	if (type != ZOO_SESSION_EVENT)
		return;
	pthread_mutex_lock(&reg_mtx);
	reg_session = 1;
	reg_zkstate = state;
	if (state == ZOO_EXPIRED_SESSION_STATE ||
	    state == ZOO_AUTH_FAILED_STATE)
		reg_expired = 1;
	pthread_cond_signal(&reg_cond);
	pthread_mutex_unlock(&reg_mtx);
}

static void
registry_watch_children(zhandle_t *h, int type, int state, const char *path,
    void *ctx)
{
	(void)h;
	(void)state;
	(void)path;
	(void)ctx;
	if (type == ZOO_CHILD_EVENT || type == ZOO_CREATED_EVENT ||
	    type == ZOO_DELETED_EVENT)
		registry_wake(&reg_children);
}

static void
registry_watch_node(zhandle_t *h, int type, int state, const char *path,
    void *ctx)
{
	const char	*name;

	(void)h;
	(void)state;
	(void)ctx;
	if ((type != ZOO_CHANGED_EVENT && type != ZOO_DELETED_EVENT) ||
	    path == NULL || (name = strrchr(path, '/')) == NULL)
		return;
	name++;
	pthread_mutex_lock(&reg_mtx);
	if (reg_stale != NULL)
		json_object_set_new(reg_stale, name, json_true());
	if (type == ZOO_DELETED_EVENT && strcmp(name, reg_cf->instance) == 0)
		reg_own_gone = 1;
	pthread_cond_signal(&reg_cond);
	pthread_mutex_unlock(&reg_mtx);
}

/*
 * The library's log stream.  It writes under its FILE lock, so the buffer
 * needs no other; whole lines go to nodee's log.
 */
static ssize_t
registry_log_write(void *cookie, const char *buf, size_t len)
{
	struct reg_logbuf	*lb = cookie;
	size_t			 i;

	for (i = 0; i < len; i++) {
		if (buf[i] == '\n') {
			lb->line[lb->len] = '\0';
			registry_log_line(lb);
			lb->len = 0;
		} else if (lb->len < sizeof(lb->line) - 1)
			lb->line[lb->len++] = buf[i];
	}
	return (ssize_t)len;
}

/*
 * "time:pid(tid):ZOO_ERROR@function@line: message".  The library calls
 * every refused connection an error and retries every 1/60 of the
 * session timeout, so a function heard within REGISTRY_LOG_QUIET_MS is
 * logged at debug level only; the registry's own lines say what matters.
 */
static void
registry_log_line(struct reg_logbuf *lb)
{
	enum log_level	 lvl = LOG_LVL_DEBUG;
	char		*p, *func, *msg;
	int64_t		 now = registry_mono();
	size_t		 i, slot = 0;

	if ((p = strstr(lb->line, ":ZOO_")) == NULL) {
		log_debug("zookeeper", "%s", lb->line);
		return;
	}
	p += 5;
	if (strncmp(p, "ERROR@", 6) == 0 || strncmp(p, "WARN@", 5) == 0)
		lvl = LOG_LVL_WARN;
	else if (strncmp(p, "INFO@", 5) == 0)
		lvl = LOG_LVL_INFO;
	if ((func = strchr(p, '@')) == NULL)
		return;
	func++;
	if ((p = strchr(func, '@')) == NULL)
		return;
	*p++ = '\0';
	if ((msg = strstr(p, ": ")) != NULL)
		msg += 2;
	else
		msg = p;
	if (lvl <= LOG_LVL_WARN) {
		for (i = 0; i < nitems(lb->heard); i++) {
			if (strcmp(lb->heard[i].func, func) == 0) {
				slot = i;
				break;
			}
			if (lb->heard[i].ms < lb->heard[slot].ms)
				slot = i;
		}
		if (i < nitems(lb->heard) &&
		    now - lb->heard[slot].ms < REGISTRY_LOG_QUIET_MS)
			lvl = LOG_LVL_DEBUG;
		else {
			snprintf(lb->heard[slot].func,
			    sizeof(lb->heard[slot].func), "%s", func);
			lb->heard[slot].ms = now;
		}
	}
	log_msg(lvl, "zookeeper", "%s (%s)", msg, func);
}

/*
 * Who we are, to tell our own previous run from another nodee: the host
 * name, and a digest of /etc/machine-id (the id itself is meant to stay
 * private), or of the host name where there is none.
 */
static void
registry_identity(void)
{
	unsigned char	 digest[32];
	char		 id[128] = "", seed[160], ip[280];
	FILE		*fp;
	size_t		 i;

	if (gethostname(reg_host, sizeof(reg_host)) != 0)
		snprintf(reg_host, sizeof(reg_host), "localhost");
	reg_host[sizeof(reg_host) - 1] = '\0';
	if ((fp = fopen("/etc/machine-id", "re")) != NULL) {
		if (fgets(id, sizeof(id), fp) == NULL)
			id[0] = '\0';
		id[strcspn(id, "\r\n")] = '\0';
		fclose(fp);
	}
	snprintf(seed, sizeof(seed), "nodee-registry:%.128s", id[0] ? id :
	    reg_host);
	if (gnutls_hash_fast(GNUTLS_DIG_SHA256, seed, strlen(seed),
	    digest) != 0)
		memset(digest, 0, sizeof(digest));
	for (i = 0; i < 16; i++)
		snprintf(reg_machine_id + 2 * i, 3, "%02x", digest[i]);

	/* An address others can use: the host name for a wildcard listen. */
	if (strcmp(reg_cf->listen_host, "0.0.0.0") == 0 ||
	    strcmp(reg_cf->listen_host, "::") == 0)
		snprintf(ip, sizeof(ip), "%s", reg_host);
	else
		snprintf(ip, sizeof(ip), "%s%s%s", reg_cf->listen_ipv6 ? "[" :
		    "", reg_cf->listen_host, reg_cf->listen_ipv6 ? "]" : "");
	snprintf(reg_console, sizeof(reg_console), "%s://%s:%u/",
	    reg_cf->tls_cert[0] ? "https" : "http", ip, reg_cf->listen_port);
	snprintf(reg_api, sizeof(reg_api), "%sapi/v1/", reg_console);
}

/*
 * For tests only: NODEE_DEBUG_ZK_SESSION_FILE names a file that gets the
 * session's id and password, so a test can force the session's expiry
 * the way ZooKeeper's own tests do (a second handle on the same session,
 * then closed).  Unset in production: the password stays in memory.
 */
static void
registry_session_file(void)
{
	const clientid_t	*id;
	const char		*path = getenv("NODEE_DEBUG_ZK_SESSION_FILE");
	char			 tmp[4096], line[128];
	size_t			 i, n;
	int			 fd;

	if (path == NULL || path[0] == '\0' || zh == NULL)
		return;
	id = zoo_client_id(zh);
	n = (size_t)snprintf(line, sizeof(line), "0x%" PRIx64 " ",
	    (uint64_t)id->client_id);
	for (i = 0; i < sizeof(id->passwd); i++)
		n += (size_t)snprintf(line + n, sizeof(line) - n, "%02x",
		    (unsigned char)id->passwd[i]);
	n += (size_t)snprintf(line + n, sizeof(line) - n, "\n");
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0600)) == -1)
		return;
	if (write(fd, line, n) != (ssize_t)n || close(fd) != 0 ||
	    rename(tmp, path) != 0)
		log_warn("registry", "cannot write %s: %s", path,
		    strerror(errno));
}

/* When the token bucket has a write to spend (now, if it has). */
static int64_t
registry_token_at(int64_t now)
{
	if (t_tokens_at == 0)
		t_tokens_at = now;
	t_tokens += (double)(now - t_tokens_at) * REGISTRY_RATE / 1000.0;
	if (t_tokens > REGISTRY_BURST)
		t_tokens = REGISTRY_BURST;
	t_tokens_at = now;
	if (t_tokens >= 1.0)
		return now;
	return now + (int64_t)((1.0 - t_tokens) * 1000.0 / REGISTRY_RATE) + 1;
}

static int64_t
registry_mono(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
registry_deadline(struct timespec *ts, int64_t ms)
{
	ts->tv_sec = ms / 1000;
	ts->tv_nsec = (ms % 1000) * 1000000;
}

static int
registry_name_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}
