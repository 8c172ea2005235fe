/*
 * stream: live updates over WebSockets (Ulfius, on libmicrohttpd's
 * upgraded connections; each open stream has Ulfius's reader thread and
 * a writer thread that runs the functions here).
 *
 * GET /api/v1/stream.  A hub thread looks, STREAM_TICK_MS apart and only
 * while someone listens, at what the store holds beyond what it sent:
 * new events, the jobs that are active (or were at the last look, or
 * are new), and the services the supervisor said a commit changed.  It
 * encodes each message once and puts a reference in every subscriber's
 * queue.  A writer sends from its own queue, so a slow reader only
 * fills its own: when that is full the queue is emptied and the reader
 * is told how many messages it lost ("dropped"), and a reader that takes
 * nothing for STREAM_STUCK_MS is disconnected.  The hub never waits on a
 * socket, and the supervisor only appends a name under a mutex.
 *
 * GET /api/v1/services/{c}/logs/follow.  Each follower reads the log
 * through rundir (descriptors, no link followed) from where it stopped,
 * sending complete lines; when the log is rotated (shorter than where it
 * stopped, or a new <stream>.1 as long) it says so and starts again at 0.
 * When the supervisor says its service was deleted, it ends.
 *
 * Ulfius 2.7 grows its list of open WebSockets with realloc() outside
 * its lock, just after the handler returns, and shrinks it (under the
 * lock) as a WebSocket's thread ends: two upgrades at once, or one and a
 * close, free the list twice.  So both go through a gate of nodee's: an
 * upgrade holds it from the handler until the end of that request on its
 * HTTP thread (libmicrohttpd's completion callback), its writer's start,
 * or Ulfius giving up on it, whichever comes first; a closing stream
 * from its last callback until its thread has exited (a thread-specific
 * destructor gives it back).  Should an upgrade still hold it after
 * STREAM_GATE_MS, the next taker takes it over.
 *
 * An upgrade whose client resets before the 101 is never started nor
 * closed by Ulfius: its place under max_streams is given back after
 * STREAM_PENDING_MS, and http_stop() does not wait for it for ever.
 *
 * Frames must never be cut: Ulfius gives up on a socket that stays full
 * for 50 ms in the middle of a frame.  So a writer sends a frame only
 * when the socket's send queue has room for all of it (SIOCOUTQ against
 * a send buffer set here), waiting for that otherwise.
 */
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <linux/sockios.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "jobs.h"
#include "log.h"
#include "rundir.h"
#include "service.h"
#include "store.h"
#include "stream.h"

#define STREAM_TICK_MS		250
#define STREAM_QUEUE		1024	/* messages a subscriber may owe */
#define STREAM_DIRTY_MAX	8192	/* names between two ticks */
#define STREAM_JOBS_MAX		256	/* active jobs remembered */
#define STREAM_EVENTS_BATCH	500
#define STREAM_SNDBUF		(512 * 1024)
#define STREAM_STUCK_MS		30000
#define STREAM_PING_MS		25000
/* Escaped as JSON (\u00XX: 6 bytes a byte) it fits the send buffer. */
#define STREAM_LOG_CHUNK	(16 * 1024)
#define STREAM_LOG_TAIL_MAX	100000
#define STREAM_GATE_MS		2000
#define STREAM_PENDING_MS	10000
#define STREAM_LOG_EVERY_MS	10000

/* One encoded message, shared by the queues that hold it. */
struct stream_msg {
	atomic_int	refs;
	size_t		len;
	char		text[];
};

struct stream_sub {
	struct stream_sub	*next;
	pthread_cond_t		 cond;
	struct stream_msg	*q[STREAM_QUEUE];
	size_t			 head, n;
	size_t			 dropped;	/* lost since the last notice */
	int			 greeted;
};

/* What one WebSocket is for; freed when Ulfius closes it. */
enum stream_slot { STREAM_PENDING = 1, STREAM_RUNNING, STREAM_ABANDONED };

struct stream_conn {
	uint64_t		 gate;		/* held for its upgrade */
	enum stream_slot	 slot;
	int64_t			 since;		/* accepted (mono ms) */
	struct stream_conn	*pnext;		/* pending or abandoned */
	struct stream_conn	*fnext;		/* log followers */
	atomic_int		 gone;		/* its service was deleted */
	struct coord		 c;		/* log follow */
	char			 stream[8];
	long			 tail;
	struct stream_sub	 sub;		/* event stream */
};

struct stream_job {
	int64_t	id;
	char	sig[160];
};

static const struct config	*stream_cf;
static pthread_mutex_t		 stream_mtx = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t		 stream_cond = PTHREAD_COND_INITIALIZER;
static pthread_t		 stream_thread;
static int			 stream_running;
static atomic_int		 stream_quit;
static struct stream_sub	*stream_subs;
static atomic_int		 stream_nsubs;
static struct stream_conn	*stream_follow;
static atomic_int		 stream_nfollow;
static int			 stream_open;	/* places taken under the cap */
static struct stream_conn	*stream_pending;	/* not started yet */
static char			**stream_dirty;
static size_t			 stream_ndirty;
static int			 stream_overflow;
/* The hub's own, touched by its thread only. */
static int64_t			 stream_last_event = -1, stream_last_job = -1;
static struct stream_job	 stream_jobs[STREAM_JOBS_MAX];
static size_t			 stream_njobs;
/* The gate (see the top): who holds it, an odd token for an upgrade. */
static sem_t			 stream_gate;
static atomic_ullong		 stream_gate_owner, stream_gate_gen;
static atomic_llong		 stream_gate_since;
static pthread_key_t		 stream_gate_key;
/* An upgrade's gate this HTTP thread took (its handler has returned). */
static __thread uint64_t	 stream_gate_mine;

static void	*stream_main(void *);
static void	 stream_tick(sqlite3 *);
static void	 stream_tick_events(sqlite3 *);
static void	 stream_tick_jobs(sqlite3 *);
static void	 stream_tick_services(sqlite3 *, char **, size_t);
static void	 stream_job(sqlite3 *, int64_t);
static struct stream_msg	*stream_msg(json_t *);
static void	 stream_unref(struct stream_msg *);
static void	 stream_publish(struct stream_msg *);
static void	 stream_push(struct stream_sub *, struct stream_msg *);
static int	 stream_accept(struct http_req *, struct stream_conn *,
		    void (*)(const struct _u_request *,
		    struct _websocket_manager *, void *));
static void	 stream_closed(const struct _u_request *,
		    struct _websocket_manager *, void *);
static void	 stream_setup(struct _websocket_manager *,
		    struct stream_conn *);
static int	 stream_alive(struct _websocket_manager *);
static int	 stream_send(struct _websocket_manager *, const char *, size_t);
static int	 stream_send_json(struct _websocket_manager *, json_t *);
static void	 stream_events_run(const struct _u_request *,
		    struct _websocket_manager *, void *);
static int	 stream_events_write(struct _websocket_manager *,
		    struct stream_sub *, int64_t *);
static void	 stream_logs_run(const struct _u_request *,
		    struct _websocket_manager *, void *);
static int	 stream_logs_poll(struct _websocket_manager *,
		    struct stream_conn *, off_t *, struct rundir_pos *);
static int	 stream_gate_take(int, uint64_t *);
static void	 stream_gate_give(uint64_t);
static void	 stream_gate_exit(void *);
static void	 stream_gate_settle(void);
static int	 stream_slot_take(struct stream_conn *);
static void	 stream_slot_move(struct stream_conn *, int);
static void	 stream_slot_give(struct stream_conn *);
static void	 stream_follow_list(struct stream_conn *, int);
static int	 stream_send_lines(struct _websocket_manager *,
		    const char *, char *, size_t);
static struct stream_conn	*stream_conn_new(struct http_req *);
static void	 stream_conn_free(struct stream_conn *);

int
stream_start(const struct config *cf)
{
	int	rc;

	stream_cf = cf;
	stream_quit = 0;
	if (sem_init(&stream_gate, 0, 1) != 0 ||
	    pthread_key_create(&stream_gate_key, stream_gate_exit) != 0) {
		log_error("stream", "cannot set up the streams: %s",
		    strerror(errno));
		return -1;
	}
	http_on_completed(stream_gate_settle);
	if ((rc = pthread_create(&stream_thread, NULL, stream_main,
	    NULL)) != 0) {
		log_error("stream", "cannot start the stream thread: %s",
		    strerror(rc));
		return -1;
	}
	stream_running = 1;
	return 0;
}

/* After http_stop(): no stream is open any more. */
void
stream_stop(void)
{
	struct stream_conn	*c;
	size_t			 i;

	if (!stream_running)
		return;
	pthread_mutex_lock(&stream_mtx);
	stream_quit = 1;
	pthread_cond_broadcast(&stream_cond);
	pthread_mutex_unlock(&stream_mtx);
	pthread_join(stream_thread, NULL);
	stream_running = 0;
	/* Streams Ulfius never started nor closed (see the top). */
	while ((c = stream_pending) != NULL) {
		stream_pending = c->pnext;
		stream_follow_list(c, 0);
		stream_conn_free(c);
	}
	sem_destroy(&stream_gate);
	pthread_key_delete(stream_gate_key);
	for (i = 0; i < stream_ndirty; i++)
		free(stream_dirty[i]);
	free(stream_dirty);
	stream_dirty = NULL;
	stream_ndirty = 0;
}

/*
 * The supervisor committed a change to service name, or deleted it.
 * Nothing is kept while nobody listens.
 */
void
stream_service_changed(const char *name, int deleted)
{
	char			**nd;
	struct stream_conn	*f;

	if (atomic_load(&stream_nsubs) == 0 &&
	    atomic_load(&stream_nfollow) == 0)
		return;
	pthread_mutex_lock(&stream_mtx);
	for (f = stream_follow; f != NULL; f = f->fnext)
		if (strcmp(f->c.name, name) == 0)
			atomic_store(&f->gone, deleted);
	if (stream_subs == NULL)
		goto out;
	if (stream_ndirty > 0 &&
	    strcmp(stream_dirty[stream_ndirty - 1], name) == 0)
		goto out;
	if (stream_ndirty == STREAM_DIRTY_MAX) {
		stream_overflow = 1;
		goto out;
	}
	if ((stream_ndirty & (stream_ndirty - 1)) == 0) {
		nd = realloc(stream_dirty, (stream_ndirty ? stream_ndirty * 2 :
		    16) * sizeof(*nd));
		if (nd == NULL) {
			stream_overflow = 1;
			goto out;
		}
		stream_dirty = nd;
	}
	if ((stream_dirty[stream_ndirty] = strdup(name)) != NULL)
		stream_ndirty++;
	else
		stream_overflow = 1;
 out:
	pthread_mutex_unlock(&stream_mtx);
}

/* ------------------------------------------------------------------ hub */

static void *
stream_main(void *unused)
{
	struct timespec	ts;
	sqlite3		*db;

	(void)unused;
	pthread_mutex_lock(&stream_mtx);
	while (!stream_quit) {
		if (stream_subs == NULL) {
			/* Nobody listens: start afresh at the next one. */
			stream_last_event = stream_last_job = -1;
			stream_njobs = 0;
			pthread_cond_wait(&stream_cond, &stream_mtx);
			continue;
		}
		pthread_mutex_unlock(&stream_mtx);
		if ((db = store_db()) != NULL)
			stream_tick(db);
		pthread_mutex_lock(&stream_mtx);
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += STREAM_TICK_MS * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		if (!stream_quit)
			pthread_cond_timedwait(&stream_cond, &stream_mtx, &ts);
	}
	pthread_mutex_unlock(&stream_mtx);
	return NULL;
}

/* One look at the store, in the order a reader can rely on. */
static void
stream_tick(sqlite3 *db)
{
	struct stream_sub	*s;
	struct stream_msg	*hello;
	char			**names;
	size_t			 n;
	int			 overflow;

	if (stream_last_event < 0)
		stream_last_event = store_last_event(db);
	/* Newcomers: hello, then everything after the event it names. */
	hello = NULL;
	pthread_mutex_lock(&stream_mtx);
	for (s = stream_subs; s != NULL; s = s->next)
		if (!s->greeted && (hello != NULL || (hello = stream_msg(
		    json_pack("{s:s, s:I}", "type", "hello", "event_id",
		    (json_int_t)stream_last_event))) != NULL)) {
			s->greeted = 1;
			stream_push(s, hello);
		}
	names = stream_dirty;
	n = stream_ndirty;
	overflow = stream_overflow;
	stream_dirty = NULL;
	stream_ndirty = 0;
	stream_overflow = 0;
	pthread_mutex_unlock(&stream_mtx);
	if (hello != NULL)
		stream_unref(hello);
	stream_tick_events(db);
	stream_tick_jobs(db);
	stream_tick_services(db, names, n);
	if (overflow)
		stream_publish(stream_msg(json_pack("{s:s, s:i, s:s}", "type",
		    "dropped", "count", 0, "detail", "too many service changes "
		    "at once to send each: read the services again")));
}

static void
stream_tick_events(sqlite3 *db)
{
	struct store_event_query q = { 0 };
	json_t	*a, *e;
	size_t	 i;

	q.after = stream_last_event;
	q.limit = STREAM_EVENTS_BATCH;
	if (q.after == 0)
		q.after = -1;	/* id > -1: the store's very first event */
	a = store_events(db, &q);
	json_array_foreach(a, i, e) {
		stream_last_event = json_integer_value(json_object_get(e,
		    "id"));
		stream_publish(stream_msg(json_pack("{s:s, s:O}", "type",
		    "event", "event", e)));
	}
	json_decref(a);
}

/* Jobs new since the last look, active now, or active at the last look. */
static void
stream_tick_jobs(sqlite3 *db)
{
	sqlite3_stmt	*st;
	int64_t		 ids[STREAM_JOBS_MAX * 2], id;
	size_t		 n = 0, i, j;

	if (stream_last_job < 0 && sqlite3_prepare_v2(db, "SELECT "
	    "coalesce(max(id), 0) FROM jobs", -1, &st, NULL) == SQLITE_OK) {
		if (sqlite3_step(st) == SQLITE_ROW)
			stream_last_job = sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
	}
	if (sqlite3_prepare_v2(db, "SELECT id FROM jobs WHERE id > ? OR "
	    "state IN ('queued', 'running') ORDER BY id LIMIT ?", -1, &st,
	    NULL) != SQLITE_OK)
		return;
	sqlite3_bind_int64(st, 1, stream_last_job);
	sqlite3_bind_int(st, 2, STREAM_JOBS_MAX);
	while (sqlite3_step(st) == SQLITE_ROW)
		ids[n++] = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	/* Those that ended since: their last state is sent once. */
	for (i = 0; i < stream_njobs; i++) {
		for (j = 0; j < n && ids[j] != stream_jobs[i].id; j++)
			continue;
		if (j == n)
			ids[n++] = stream_jobs[i].id;
	}
	for (i = 0; i < n; i++) {
		id = ids[i];
		if (id > stream_last_job)
			stream_last_job = id;
		stream_job(db, id);
	}
}

/* Sends job id if it changed since it was last sent; remembers it. */
static void
stream_job(sqlite3 *db, int64_t id)
{
	json_t		*j;
	const char	*state;
	char		 sig[160];
	size_t		 i;
	int		 active;

	if ((j = jobs_get(db, id)) == NULL)
		return;
	state = json_string_value(json_object_get(j, "state"));
	snprintf(sig, sizeof(sig), "%s|%s|%lld|%lld|%d", state ? state : "",
	    json_string_value(json_object_get(j, "phase")) ?
	    json_string_value(json_object_get(j, "phase")) : "",
	    (long long)json_integer_value(json_object_get(j, "bytes_done")),
	    (long long)json_integer_value(json_object_get(j, "bytes_total")),
	    json_is_true(json_object_get(j, "cancel_requested")));
	active = state != NULL && (strcmp(state, "queued") == 0 ||
	    strcmp(state, "running") == 0);
	for (i = 0; i < stream_njobs && stream_jobs[i].id != id; i++)
		continue;
	if (i < stream_njobs && strcmp(stream_jobs[i].sig, sig) == 0) {
		json_decref(j);
		return;
	}
	if (!active && i < stream_njobs)
		stream_jobs[i] = stream_jobs[--stream_njobs];
	else if (active && i < stream_njobs)
		snprintf(stream_jobs[i].sig, sizeof(sig), "%s", sig);
	else if (active && stream_njobs < STREAM_JOBS_MAX) {
		stream_jobs[stream_njobs].id = id;
		snprintf(stream_jobs[stream_njobs++].sig, sizeof(sig), "%s",
		    sig);
	}
	stream_publish(stream_msg(json_pack("{s:s, s:o}", "type", "job",
	    "job", j)));
}

/* Each named service as the store has it now (null once deleted). */
static void
stream_tick_services(sqlite3 *db, char **names, size_t n)
{
	json_t	*s;
	size_t	 i;

	for (i = 0; i < n; i++) {
		s = service_get(db, names[i]);
		stream_publish(stream_msg(json_pack("{s:s, s:s, s:o}", "type",
		    "service", "coordinate", names[i], "service",
		    s ? s : json_null())));
		free(names[i]);
	}
	free(names);
}

/* Encodes m (taken) once; NULL if it cannot. */
static struct stream_msg *
stream_msg(json_t *m)
{
	struct stream_msg	*msg;
	char			*text;
	size_t			 len;

	if (m == NULL)
		return NULL;
	text = json_dumps(m, JSON_COMPACT);
	json_decref(m);
	if (text == NULL)
		return NULL;
	len = strlen(text);
	if ((msg = malloc(sizeof(*msg) + len + 1)) != NULL) {
		atomic_init(&msg->refs, 1);
		msg->len = len;
		memcpy(msg->text, text, len + 1);
	}
	free(text);
	return msg;
}

static void
stream_unref(struct stream_msg *msg)
{
	if (atomic_fetch_sub(&msg->refs, 1) == 1)
		free(msg);
}

/* To every subscriber; msg (may be NULL) is taken. */
static void
stream_publish(struct stream_msg *msg)
{
	struct stream_sub	*s;

	if (msg == NULL)
		return;
	pthread_mutex_lock(&stream_mtx);
	for (s = stream_subs; s != NULL; s = s->next)
		if (s->greeted)
			stream_push(s, msg);
	pthread_mutex_unlock(&stream_mtx);
	stream_unref(msg);
}

/* With stream_mtx held.  A full queue is emptied: the reader is behind. */
static void
stream_push(struct stream_sub *s, struct stream_msg *msg)
{
	if (s->n == STREAM_QUEUE) {
		while (s->n > 0) {
			stream_unref(s->q[s->head]);
			s->head = (s->head + 1) % STREAM_QUEUE;
			s->n--;
		}
		s->dropped += STREAM_QUEUE;
	}
	atomic_fetch_add(&msg->refs, 1);
	s->q[(s->head + s->n) % STREAM_QUEUE] = msg;
	s->n++;
	pthread_cond_signal(&s->cond);
}

/* ---------------------------------------------------------- connections */

static struct stream_conn *
stream_conn_new(struct http_req *r)
{
	struct stream_conn	*conn;

	if ((conn = calloc(1, sizeof(*conn))) == NULL) {
		http_problem(r, 500, "out of memory");
		return NULL;
	}
	pthread_cond_init(&conn->sub.cond, NULL);
	conn->tail = 100;
	return conn;
}

static void
stream_conn_free(struct stream_conn *conn)
{
	pthread_cond_destroy(&conn->sub.cond);
	free(conn);
}

/* GET /api/v1/stream */
void
stream_events(struct http_req *r, void *arg)
{
	struct stream_conn	*conn;

	(void)arg;
	if ((conn = stream_conn_new(r)) != NULL &&
	    stream_accept(r, conn, stream_events_run) != 0)
		stream_conn_free(conn);
}

/* GET /api/v1/services/{c}/logs/follow?stream=&tail= */
void
stream_logs(struct http_req *r, void *arg)
{
	struct stream_conn	*conn;
	const char		*stream = http_query(r, "stream"), *t;
	char			 err[512], *end;
	sqlite3			*db = store_db();
	json_t			*s;

	(void)arg;
	if ((conn = stream_conn_new(r)) == NULL)
		return;
	if (coord_parse(r->params[0], &conn->c, err, sizeof(err)) != 0) {
		http_problem(r, 400, "%s", err);
		goto fail;
	}
	if (stream != NULL && strcmp(stream, "stdout") != 0 &&
	    strcmp(stream, "stderr") != 0) {
		http_problem(r, 400, "stream: must be stdout or stderr");
		goto fail;
	}
	snprintf(conn->stream, sizeof(conn->stream), "%s", stream ? stream :
	    "stdout");
	if ((t = http_query(r, "tail")) != NULL) {
		errno = 0;
		conn->tail = strtol(t, &end, 10);
		if (errno != 0 || *end != '\0' || t[0] < '0' || t[0] > '9' ||
		    conn->tail > STREAM_LOG_TAIL_MAX) {
			http_problem(r, 400, "tail: must be 0 to %d lines",
			    STREAM_LOG_TAIL_MAX);
			goto fail;
		}
	}
	if (db == NULL || (s = service_get(db, conn->c.name)) == NULL) {
		http_problem(r, 404, "no service %s", conn->c.name);
		goto fail;
	}
	json_decref(s);
	/* Listed from now on: a delete while it opens is seen too. */
	stream_follow_list(conn, 1);
	if (stream_accept(r, conn, stream_logs_run) == 0)
		return;
	stream_follow_list(conn, 0);
 fail:
	stream_conn_free(conn);
}

/*
 * Turns the request into a WebSocket run by fn, or answers why not.
 * Returns 0 when Ulfius owns conn (stream_closed frees it).
 */
static int
stream_accept(struct http_req *r, struct stream_conn *conn,
    void (*fn)(const struct _u_request *, struct _websocket_manager *,
    void *))
{
	static struct log_limit	 refused;
	const char		*up = http_header(r, "Upgrade");

	if (up == NULL || strcasecmp(up, "websocket") != 0 ||
	    http_header(r, "Sec-WebSocket-Key") == NULL) {
		http_problem(r, 400, "%s is a WebSocket endpoint: connect "
		    "with 'Upgrade: websocket'", r->path);
		return -1;
	}
	if (!http_same_origin(r)) {
		http_problem(r, 403, "Origin '%s' is not this node's console; "
		    "cross-site streams are refused",
		    http_header(r, "Origin"));
		return -1;
	}
	if (stream_slot_take(conn) != 0) {
		u_map_put(r->res->map_header, "Retry-After", "5");
		http_problem(r, 503, "too many open streams: max_streams is %u; "
		    "close one or raise the limit", stream_cf->max_streams);
		log_limited(&refused, STREAM_LOG_EVERY_MS, LOG_LVL_WARN,
		    "stream", "stream refused: max_streams (%u) are open",
		    stream_cf->max_streams);
		return -1;
	}
	if (stream_gate_take(1, &conn->gate) != 0) {
		stream_slot_give(conn);
		u_map_put(r->res->map_header, "Retry-After", "1");
		http_problem(r, 503, "streams are opening or closing too slowly "
		    "just now; try again in a second");
		return -1;
	}
	if (ulfius_set_websocket_response(r->res, NULL, NULL, fn, conn, NULL,
	    NULL, stream_closed, conn) != U_OK) {
		stream_gate_give(conn->gate);
		stream_slot_give(conn);
		http_problem(r, 500, "cannot open the stream (out of memory?); "
		    "try again");
		return -1;
	}
	stream_gate_mine = conn->gate;
	return 0;
}

/*
 * Takes a place under max_streams for conn, which waits (pending) for
 * its writer to start.  A place pending longer than STREAM_PENDING_MS
 * is given back first: its connection closed before the upgrade, and
 * Ulfius never tells (see the top).
 */
static int
stream_slot_take(struct stream_conn *conn)
{
	struct stream_conn	*c;
	int64_t			 now = store_mono_ms();
	int			 rc = -1;

	pthread_mutex_lock(&stream_mtx);
	for (c = stream_pending; c != NULL; c = c->pnext)
		if (c->slot == STREAM_PENDING &&
		    now - c->since > STREAM_PENDING_MS) {
			c->slot = STREAM_ABANDONED;
			stream_open--;
			log_warn("stream", "a stream's connection closed before "
			    "it opened; its place is free again");
		}
	if (stream_open < (int)stream_cf->max_streams) {
		stream_open++;
		conn->slot = STREAM_PENDING;
		conn->since = now;
		conn->pnext = stream_pending;
		stream_pending = conn;
		rc = 0;
	}
	pthread_mutex_unlock(&stream_mtx);
	return rc;
}

/*
 * The writer started (running), or Ulfius is done with conn (closed):
 * conn leaves the pending list, and its place is counted or given back.
 */
static void
stream_slot_move(struct stream_conn *conn, int running)
{
	struct stream_conn	**pp;

	pthread_mutex_lock(&stream_mtx);
	for (pp = &stream_pending; *pp != NULL; pp = &(*pp)->pnext)
		if (*pp == conn) {
			*pp = conn->pnext;
			break;
		}
	if (running && conn->slot == STREAM_ABANDONED)
		stream_open++;	/* late after all */
	else if (!running && conn->slot != STREAM_ABANDONED)
		stream_open--;
	conn->slot = running ? STREAM_RUNNING : STREAM_ABANDONED;
	pthread_mutex_unlock(&stream_mtx);
}

static void
stream_slot_give(struct stream_conn *conn)
{
	stream_slot_move(conn, 0);
}

/* Ulfius's last word on a stream, whether it ever opened or not. */
static void
stream_closed(const struct _u_request *req, struct _websocket_manager *wsm,
    void *arg)
{
	struct stream_conn	*conn = arg;
	uint64_t		 tok;

	(void)req;
	(void)wsm;
	if (conn->gate != 0) {
		/* It never started: Ulfius gave up in the handler's thread. */
		stream_gate_give(conn->gate);
	} else {
		/* Its thread ends next, after Ulfius unlists it. */
		while (stream_gate_take(0, &tok) != 0)
			continue;
		if (pthread_setspecific(stream_gate_key,
		    (void *)(uintptr_t)tok) != 0)
			stream_gate_give(tok);
	}
	stream_slot_give(conn);
	stream_follow_list(conn, 0);
	stream_conn_free(conn);
}

/*
 * Takes the gate (an upgrade if upgrade) into *tok; -1 if it stayed
 * held by anything but a stale upgrade for STREAM_GATE_MS.
 */
static int
stream_gate_take(int upgrade, uint64_t *tok)
{
	struct timespec	ts;
	uint64_t	o;
	int64_t		since;

	stream_gate_settle();
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += STREAM_GATE_MS / 1000;
	while (sem_timedwait(&stream_gate, &ts) != 0) {
		if (errno == EINTR)
			continue;
		o = atomic_load(&stream_gate_owner);
		since = atomic_load(&stream_gate_since);
		/* An upgrade that never started: its gate is ours now. */
		if ((o & 1) && store_mono_ms() - since >= STREAM_GATE_MS &&
		    atomic_compare_exchange_strong(&stream_gate_owner, &o, 0))
			break;
		return -1;
	}
	*tok = (atomic_fetch_add(&stream_gate_gen, 1) + 1) << 1 |
	    (upgrade ? 1 : 0);
	atomic_store(&stream_gate_since, store_mono_ms());
	atomic_store(&stream_gate_owner, *tok);
	return 0;
}

/*
 * This HTTP thread is past the request whose upgrade took the gate:
 * Ulfius has listed that stream (it does so before the handler's
 * answer leaves), so the gate goes back.  libmicrohttpd calls this at
 * the end of every request, a connection closed before its upgrade too.
 */
static void
stream_gate_settle(void)
{
	stream_gate_give(stream_gate_mine);
	stream_gate_mine = 0;
}

/* Gives the gate back if tok still holds it. */
static void
stream_gate_give(uint64_t tok)
{
	uint64_t	o = tok;

	if (tok != 0 && atomic_compare_exchange_strong(&stream_gate_owner, &o,
	    0))
		sem_post(&stream_gate);
}

/* A closed stream's thread has exited: Ulfius is done with its list. */
static void
stream_gate_exit(void *tok)
{
	stream_gate_give((uint64_t)(uintptr_t)tok);
}

/*
 * A writer starts: Ulfius has listed the stream (the gate goes back),
 * its place is counted, Ulfius keeps nothing of it in its lists, and
 * the send buffer has a known size.
 */
static void
stream_setup(struct _websocket_manager *wsm, struct stream_conn *conn)
{
	int	size = STREAM_SNDBUF;

	stream_gate_give(conn->gate);
	conn->gate = 0;
	stream_slot_move(conn, 1);
	wsm->keep_messages = U_WEBSOCKET_KEEP_NONE;
	if (setsockopt(wsm->mhd_sock, SOL_SOCKET, SO_SNDBUFFORCE, &size,
	    sizeof(size)) != 0)
		(void)setsockopt(wsm->mhd_sock, SOL_SOCKET, SO_SNDBUF, &size,
		    sizeof(size));
}

static int
stream_alive(struct _websocket_manager *wsm)
{
	return !stream_quit &&
	    ulfius_websocket_status(wsm) == U_WEBSOCKET_STATUS_OPEN;
}

/*
 * Sends one text frame once the socket can take all of it (see the top
 * of the file).  -1 when the stream is closed or the reader took nothing
 * for STREAM_STUCK_MS.
 */
static int
stream_send(struct _websocket_manager *wsm, const char *text, size_t len)
{
	int64_t		deadline = store_mono_ms() + STREAM_STUCK_MS;
	socklen_t	sl = sizeof(int);
	int		outq, buf = 0, room;

	if (getsockopt(wsm->mhd_sock, SOL_SOCKET, SO_SNDBUF, &buf, &sl) != 0)
		buf = 0;
	/* Kernel bookkeeping takes part of the buffer: count on a quarter. */
	room = buf / 4;
	while (stream_alive(wsm)) {
		if (ioctl(wsm->mhd_sock, SIOCOUTQ, &outq) != 0)
			outq = 0;
		if (outq == 0 || (size_t)outq + len + 16 <= (size_t)room)
			return ulfius_websocket_send_message(wsm,
			    U_WEBSOCKET_OPCODE_TEXT, len, text) == U_OK ? 0 :
			    -1;
		if (store_mono_ms() > deadline) {
			log_warn("stream", "a stream's reader took nothing for "
			    "%d s: disconnected", STREAM_STUCK_MS / 1000);
			return -1;
		}
		poll(NULL, 0, 20);
	}
	return -1;
}

static int
stream_send_json(struct _websocket_manager *wsm, json_t *m)
{
	struct stream_msg	*msg;
	int			 rc;

	if ((msg = stream_msg(m)) == NULL)
		return -1;
	rc = stream_send(wsm, msg->text, msg->len);
	stream_unref(msg);
	return rc;
}

/* The writer of one /api/v1/stream subscriber. */
static void
stream_events_run(const struct _u_request *req,
    struct _websocket_manager *wsm, void *arg)
{
	struct stream_conn	*conn = arg;
	struct stream_sub	*s = &conn->sub, **pp;
	int64_t			 sent = store_mono_ms();

	(void)req;
	stream_setup(wsm, conn);
	pthread_mutex_lock(&stream_mtx);
	s->next = stream_subs;
	stream_subs = s;
	atomic_fetch_add(&stream_nsubs, 1);
	pthread_cond_broadcast(&stream_cond);
	pthread_mutex_unlock(&stream_mtx);
	while (stream_events_write(wsm, s, &sent) == 0)
		continue;
	pthread_mutex_lock(&stream_mtx);
	for (pp = &stream_subs; *pp != NULL; pp = &(*pp)->next)
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	atomic_fetch_sub(&stream_nsubs, 1);
	while (s->n > 0) {
		stream_unref(s->q[s->head]);
		s->head = (s->head + 1) % STREAM_QUEUE;
		s->n--;
	}
	pthread_mutex_unlock(&stream_mtx);
}

/*
 * Waits for messages (at most a tick) and sends them, with a notice
 * first if some were dropped and a ping when the line was quiet long.
 * -1 when the stream is over.
 */
static int
stream_events_write(struct _websocket_manager *wsm, struct stream_sub *s,
    int64_t *sent)
{
	struct stream_msg	*batch[64];
	struct timespec		 ts;
	size_t			 n = 0, dropped, i;
	int			 rc = 0;

	pthread_mutex_lock(&stream_mtx);
	if (s->n == 0 && s->dropped == 0 && !stream_quit) {
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += STREAM_TICK_MS * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&s->cond, &stream_mtx, &ts);
	}
	while (s->n > 0 && n < sizeof(batch) / sizeof(batch[0])) {
		batch[n++] = s->q[s->head];
		s->head = (s->head + 1) % STREAM_QUEUE;
		s->n--;
	}
	dropped = s->dropped;
	s->dropped = 0;
	pthread_mutex_unlock(&stream_mtx);
	if (!stream_alive(wsm))
		rc = -1;
	if (rc == 0 && dropped > 0)
		rc = stream_send_json(wsm, json_pack("{s:s, s:I, s:s}", "type",
		    "dropped", "count", (json_int_t)dropped, "detail",
		    "this reader fell behind and messages were lost: read "
		    "the state again"));
	for (i = 0; i < n; i++) {
		if (rc == 0)
			rc = stream_send(wsm, batch[i]->text, batch[i]->len);
		stream_unref(batch[i]);
	}
	if (rc == 0 && n > 0)
		*sent = store_mono_ms();
	else if (rc == 0 && store_mono_ms() - *sent > STREAM_PING_MS) {
		rc = ulfius_websocket_send_message(wsm, U_WEBSOCKET_OPCODE_PING,
		    0, NULL) == U_OK ? 0 : -1;
		*sent = store_mono_ms();
	}
	return rc;
}

/* The writer of one log follower. */
static void
stream_logs_run(const struct _u_request *req, struct _websocket_manager *wsm,
    void *arg)
{
	struct stream_conn	*conn = arg;
	struct rundir_pos	 pos;
	char			*text, err[512];
	size_t			 len;
	off_t			 off;
	int			 rc;

	(void)req;
	stream_setup(wsm, conn);
	text = service_log_tail(stream_cf, &conn->c, conn->stream,
	    conn->tail, &len, &pos, err, sizeof(err));
	if (text == NULL) {
		(void)stream_send_json(wsm, json_pack("{s:s, s:s}", "type",
		    "error", "detail", err));
		return;
	}
	off = pos.size;
	rc = conn->tail == 0 ? 0 : stream_send_lines(wsm, conn->stream, text,
	    len);
	free(text);
	while (rc == 0 && stream_alive(wsm))
		if (atomic_load(&conn->gone)) {
			(void)stream_send_json(wsm, json_pack("{s:s, s:s}",
			    "type", "error", "detail", "the service was "
			    "deleted"));
			rc = -1;
		} else if ((rc = stream_logs_poll(wsm, conn, &off, &pos)) ==
		    0)
			poll(NULL, 0, STREAM_TICK_MS);
		else if (rc == 1)
			rc = 0;	/* more to read at once */
}

/* Adds (add) or removes conn from the followers the supervisor tells. */
static void
stream_follow_list(struct stream_conn *conn, int add)
{
	struct stream_conn	**pp;

	pthread_mutex_lock(&stream_mtx);
	if (add) {
		conn->fnext = stream_follow;
		stream_follow = conn;
		atomic_fetch_add(&stream_nfollow, 1);
	} else {
		for (pp = &stream_follow; *pp != NULL; pp = &(*pp)->fnext)
			if (*pp == conn) {
				*pp = conn->fnext;
				atomic_fetch_sub(&stream_nfollow, 1);
				break;
			}
	}
	pthread_mutex_unlock(&stream_mtx);
}

/*
 * Sends what the log holds past *off (complete lines), or that it was
 * rotated: it is shorter than *off, or a new <stream>.1 holds at least
 * *off bytes (the log was copied there, truncated, and grew again since
 * the last look).  Returns 0, 1 when there is more to read at once, -1
 * when the stream is over.
 */
static int
stream_logs_poll(struct _websocket_manager *wsm, struct stream_conn *conn,
    off_t *off, struct rundir_pos *last)
{
	struct rundir_pos	 pos;
	char			*buf, *nl, err[512];
	size_t			 len, cut = 0;
	int			 rc = 0;

	if ((buf = rundir_read_from(stream_cf, &conn->c, conn->stream, *off,
	    STREAM_LOG_CHUNK, &len, &pos, err, sizeof(err))) == NULL) {
		(void)stream_send_json(wsm, json_pack("{s:s, s:s}", "type",
		    "error", "detail", err));
		return -1;
	}
	if (pos.size < *off || (pos.rotated != last->rotated &&
	    pos.rotated_size >= *off)) {
		*off = 0;
		*last = pos;
		free(buf);
		return stream_send_json(wsm, json_pack("{s:s, s:s}", "type",
		    "rotated", "stream", conn->stream)) == 0 ? 1 : -1;
	}
	if ((nl = memrchr(buf, '\n', len)) != NULL)
		cut = (size_t)(nl - buf) + 1;
	else if (len == STREAM_LOG_CHUNK)
		cut = len;	/* a line too long to wait for its end */
	if (cut > 0) {
		rc = stream_send_lines(wsm, conn->stream, buf, cut);
		*off += (off_t)cut;
		if (rc == 0 && len == STREAM_LOG_CHUNK)
			rc = 1;
	}
	free(buf);
	return rc;
}

/*
 * Sends buf[0..len) as "lines" messages of at most STREAM_LOG_CHUNK
 * bytes, cut after a newline where there is one; bytes that are not
 * UTF-8 become '?'.
 */
static int
stream_send_lines(struct _websocket_manager *wsm, const char *stream,
    char *buf, size_t len)
{
	char	*nl;
	size_t	 n;

	rundir_utf8_clean(buf, len);
	while (len > 0) {
		n = len;
		if (n > STREAM_LOG_CHUNK) {
			n = STREAM_LOG_CHUNK;
			if ((nl = memrchr(buf, '\n', n)) != NULL)
				n = (size_t)(nl - buf) + 1;
		}
		if (stream_send_json(wsm, json_pack("{s:s, s:s, s:s%}", "type",
		    "lines", "stream", stream, "text", buf, n)) != 0)
			return -1;
		buf += n;
		len -= n;
	}
	return 0;
}
