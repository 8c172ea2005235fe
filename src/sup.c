/*
 * sup: the supervisor thread, the executor of supfsm's decisions.
 *
 * Everything about a service process happens here and only here: fork
 * and exec (through spawn.c), signals, reaping and timers.  What to do
 * is decided by supfsm_step(), a pure function of the service's state
 * and one event; this file turns the kernel's news, the API's commands
 * and the jobs' outcomes into events, applies the effects the decision
 * lists, and writes the row.  The thread sleeps in epoll_wait() on:
 *
 *   a signalfd for SIGCHLD      children (and, as we are a subreaper,
 *                               their orphans) that died: waitpid loop
 *   an eventfd                  a message was queued: an API command, a
 *                               job's outcome, a background task's end
 *   a timerfd                   the earliest service timer, the log
 *                               check, the poll of unwatched processes
 *   a pidfd per adopted process a service a previous nodee started; it
 *                               is not our child, so no SIGCHLD comes
 *
 * Everything one wake-up writes is one transaction.  If its commit
 * fails (a full disk), the wake-up is undone: what it started is killed,
 * the services it touched are read back from the store and looked at
 * again a second later, and the API is answered 503, so memory, the
 * store and the processes never disagree.
 *
 * Slow work (removing a purged tree, ending a uid's processes, copying
 * logs for rotation) runs on one background thread (sup_bg), never here.
 */
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "coord.h"
#include "fs.h"
#include "jobs.h"
#include "log.h"
#include "metrics.h"
#include "prepare.h"
#include "rundir.h"
#include "service.h"
#include "spawn.h"
#include "store.h"
#include "sup.h"
#include "supfsm.h"
#include "uid.h"

#define SUP_STDERR_TAIL		2048	/* of stderr in a reason */
#define SUP_FD_RESERVE		256	/* descriptors never used for pidfds */
#define SUP_POLL_MS		1000	/* unwatched processes, recovery */
#define SUP_SLOW_MS		50	/* a wake-up longer is logged */
#define SUP_SLOW_EVERY_MS	10000	/* at most one such line per */
#define SUP_HASH_MIN		64

struct svc {
	struct coord		 c;
	json_t			*spec;
	struct supfsm		 f;
	pid_t			 pid;
	unsigned long long	 pstart;	/* /proc/<pid>/stat field 22 */
	int			 pidfd;		/* adopted only, else -1 */
	int			 unwatched;	/* adopted, no pidfd: polled */
	int			 recover;	/* look again: a commit failed */
	int64_t			 started_ms;	/* wall clock */
	int64_t			 due;		/* its timer, monotonic; 0 none */
	uid_t			 uid;
	gid_t			 gid;
	int			 has_uid;
	int			 exit_known;
	int			 exit_code, exit_sig;
	int64_t			 exit_ms;
	uint64_t		 touched;	/* the wake-up that changed it */
	size_t			 idx;		/* in sup_svcs */
	struct svc		*hnext;		/* by name */
	struct svc		*pnext;		/* by pid */
};

struct sup_cmd {
	enum sup_op		 op;
	char			 coord[256];
	json_t			*spec;
	int64_t			 job;
	int			 flag;
	char			 text[1024];
	int			 wait;
	int			 done;
	enum nd_rc		 rc;
	char			 err[512];
	struct store_actor	 by;	/* the API client that asked */
	int			 has_by;
	struct sup_cmd		*next;
};

/* Slow work for the background thread. */
struct sup_task {
	enum { TASK_PURGE, TASK_ROTATE }	 kind;
	struct coord		 c;
	uid_t			 uid;
	int			 kill_uid;	/* end every process of uid */
	char			 path[PATH_MAX];	/* PURGE: the tree */
	struct sup_task		*next;
};

/* A process that looks like a service, found in /proc at start-up. */
struct sup_orphan {
	pid_t			 pid;
	unsigned long long	 start;
	char			 coord[4 * (COORD_LABEL_MAX + 1)];
	char			 cwd[PATH_MAX];
};

/* A signal a wake-up decided on, sent once its writes are committed. */
struct sup_signal {
	pid_t	pid;	/* the process group's leader */
	int	sig;
	char	name[256];
};

/* What a wake-up did: for the latency log and for undoing it. */
struct sup_wake {
	uint64_t		 seq;
	int			 cmds, exits, timers, spawns;
	pid_t			*spawned;
	size_t			 nspawned, capspawned;
	char			 failed[256];	/* a write failed: why */
	char			**forgot;	/* coordinates */
	size_t			 nforgot, capforgot;
	struct sup_task		*tasks;		/* queued after the commit */
	struct sup_signal	*signals;	/* sent after the commit */
	size_t			 nsignals, capsignals;
	int			 open;		/* between begin and commit */
};

static const struct config	*sup_cf;
static struct sup_orphan	*sup_orphans;	/* during sup_load() only */
static size_t			 sup_norphans;
static int			 sup_orphans_read;
static pthread_t		 sup_thread, sup_bg_thread;
static int			 sup_running;
static int			 sup_epfd = -1, sup_sigfd = -1, sup_evfd = -1;
static int			 sup_tfd = -1;
static pthread_mutex_t		 sup_mtx = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t		 sup_cond = PTHREAD_COND_INITIALIZER;
static struct sup_cmd		*sup_head, *sup_tail;
static struct svc		**sup_svcs;
static size_t			 sup_nsvcs, sup_capsvcs;
static struct svc		**sup_byname, **sup_bypid;
static size_t			 sup_nbuckets;
static int64_t			 sup_rotate_due, sup_poll_due;
static int			 sup_root;
static char			 sup_tag_sig, sup_tag_ev, sup_tag_timer;
static sup_listener		 sup_listen;
static sup_svc_listener		 sup_svc_listen;
static int			 sup_loaded;
static struct sup_cmd		*sup_replies;	/* answered, not yet told */
static int			 sup_wake_jobs;	/* jobs queued this wake-up */
static int			 sup_dirty;	/* a change since the commit */
static struct sup_wake		 sup_w;
static uint64_t			 sup_rng;
static size_t			 sup_npidfds;
static rlim_t			 sup_nofile;
static int			 sup_uids_ok;	/* the machine-wide lock file */
/* The background thread's queue. */
static pthread_mutex_t		 sup_bg_mtx = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t		 sup_bg_cond = PTHREAD_COND_INITIALIZER;
static struct sup_task		*sup_bg_head, *sup_bg_tail;
static int			 sup_bg_quit;

static void	*sup_main(void *);
static int	 sup_wakeup(struct epoll_event *, int);
static void	 sup_slow(int64_t);
static void	 sup_load(void);
static void	 sup_load_row(sqlite3_stmt *);
static void	 sup_boot(struct svc *);
static int	 sup_adopt(struct svc *);
static void	 sup_lost(struct svc *);
static void	 sup_handle(struct sup_cmd *);
static void	 sup_put(struct sup_cmd *);
static void	 sup_enqueue(struct sup_cmd *);
static int	 sup_call(struct sup_cmd *, int64_t *, char *, size_t);
static void	 sup_begin(void);
static void	 sup_store_failed(struct svc *, const char *);
static void	 sup_commit(void);
static void	 sup_tell_services(void);
static void	 sup_undo(const char *);
static void	 sup_step(struct svc *, struct supfsm_event *);
static int	 sup_apply(struct svc *, const struct supfsm_out *,
		    enum supfsm_state);
static int	 sup_effect(struct svc *, const struct supfsm_effect *);
static void	 sup_event_fx(struct svc *, const struct supfsm_effect *);
static void	 sup_reap(void);
static void	 sup_timers(void);
static void	 sup_poll(void);
static void	 sup_arm(void);
static void	 sup_params(struct svc *);
static struct svc	*sup_find(const char *);
static struct svc	*sup_find_pid(pid_t);
static struct svc	*sup_find_uid(int64_t);
static void	 sup_pid_set(struct svc *, pid_t);
static struct svc	*sup_new(const struct coord *, json_t *);
static void	 sup_drop(struct svc *);
static void	 sup_forget(struct svc *);
static int	 sup_spawn(struct svc *, const char *, pid_t *, char *,
		    size_t);
static int	 sup_start_main(struct svc *, enum supfsm_why);
static int	 sup_prepare(struct svc *, enum supfsm_why);
static int	 sup_drain(struct svc *);
static void	 sup_snapshot(struct svc *, const char *);
static void	 sup_exited(struct svc *, int, int);
static void	 sup_kill(struct svc *, int);
static void	 sup_signal(const struct sup_signal *);
static void	 sup_save(struct svc *);
static void	 sup_insert_row(struct svc *);
static void	 sup_event(struct svc *, const char *, json_t *);
static void	 sup_run_open(struct svc *, const char *);
static void	 sup_run_close(struct svc *);
static int	 sup_assign_uid(struct svc *, char *, size_t);
static int	 sup_dynamic(const struct svc *);
static void	 sup_purge_aside(struct svc *, const char *, char *, size_t);
static void	 sup_watch(struct svc *);
static int	 sup_proc_start(pid_t, unsigned long long *);
static ssize_t	 sup_proc_read(pid_t, const char *, char *, size_t);
static void	 sup_reachable(const char *);
static pid_t	 sup_unrecorded(struct svc *, unsigned long long *);
static void	 sup_orphans_scan(void);
static uint32_t	 sup_rand(void);
static void	 sup_reply(struct sup_cmd *, enum nd_rc, const char *, ...)
		    __attribute__((format(printf, 3, 4)));
static void	 sup_bg_post(struct sup_task *);
static void	*sup_bg_main(void *);
static void	 sup_bg_purge(const struct sup_task *);
static int	 sup_bg_rotate_due(const struct coord *);
static void	 sup_kill_uid(uid_t);

/* fn is called, on the supervisor thread, after a change is committed. */
void
sup_on_change(sup_listener fn)
{
	sup_listen = fn;
}

/*
 * fn is called, on the supervisor thread, with the name of each service
 * a commit changed or deleted (and whether it was deleted), once the
 * store holds the change.
 */
void
sup_on_service(sup_svc_listener fn)
{
	sup_svc_listen = fn;
}

/*
 * Starts the supervisor: loads every service from the store, re-adopts
 * the live ones, starts those whose desired state is running, and
 * begins listening.  SIGCHLD must already be blocked in every thread.
 */
int
sup_start(const struct config *cf)
{
	struct epoll_event	ev;
	struct rlimit		rl;
	sigset_t		set;
	char			err[512];

	sup_cf = cf;
	sup_root = geteuid() == 0;
	if (getrandom(&sup_rng, sizeof(sup_rng), 0) != sizeof(sup_rng))
		sup_rng = (uint64_t)store_now_ms() ^ (uint64_t)getpid() << 32;
	sup_rng |= 1;
	sup_nofile = getrlimit(RLIMIT_NOFILE, &rl) == 0 ? rl.rlim_cur : 1024;
	if (sup_root) {
		if (uid_init(NULL, err, sizeof(err)) != 0)
			log_warn("sup", "dynamic uids: %s; services without a "
			    "\"user\" cannot start", err);
		else
			sup_uids_ok = 1;
	}
	/* Orphans of our services are reparented to us and reaped here. */
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0)
		log_warn("sup", "cannot become a child subreaper: %s",
		    strerror(errno));
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sup_epfd = epoll_create1(EPOLL_CLOEXEC);
	sup_sigfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	sup_evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	sup_tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (sup_epfd == -1 || sup_sigfd == -1 || sup_evfd == -1 ||
	    sup_tfd == -1) {
		log_error("sup", "cannot create descriptors: %s",
		    strerror(errno));
		return -1;
	}
	ev.events = EPOLLIN;
	ev.data.ptr = &sup_tag_sig;
	if (epoll_ctl(sup_epfd, EPOLL_CTL_ADD, sup_sigfd, &ev) != 0)
		return -1;
	ev.data.ptr = &sup_tag_ev;
	if (epoll_ctl(sup_epfd, EPOLL_CTL_ADD, sup_evfd, &ev) != 0)
		return -1;
	ev.data.ptr = &sup_tag_timer;
	if (epoll_ctl(sup_epfd, EPOLL_CTL_ADD, sup_tfd, &ev) != 0)
		return -1;
	if (!sup_root)
		log_warn("sup", "nodee is not root: services run as nodee's "
		    "own user, without a private mount namespace");
	else
		sup_reachable(cf->prefix);
	if (pthread_create(&sup_bg_thread, NULL, sup_bg_main, NULL) != 0) {
		log_error("sup", "cannot start the background thread");
		return -1;
	}
	/* Set first: an install ending during sup_load() is queued, not lost. */
	sup_running = 1;
	if (pthread_create(&sup_thread, NULL, sup_main, NULL) != 0) {
		sup_running = 0;
		log_error("sup", "cannot start the supervisor thread");
		return -1;
	}
	/* The API must not show what the store said before adoption. */
	pthread_mutex_lock(&sup_mtx);
	while (!sup_loaded)
		pthread_cond_wait(&sup_cond, &sup_mtx);
	pthread_mutex_unlock(&sup_mtx);
	return 0;
}

/*
 * Stops the supervisor thread.  Services keep running: a daemon restart
 * must not restart them (the systemd unit uses KillMode=process).
 */
void
sup_stop(void)
{
	if (!sup_running)
		return;
	sup_command(SUP_QUIT, "", NULL, 0, 0, NULL, 0);
	pthread_join(sup_thread, NULL);
	pthread_mutex_lock(&sup_bg_mtx);
	sup_bg_quit = 1;
	pthread_cond_signal(&sup_bg_cond);
	pthread_mutex_unlock(&sup_bg_mtx);
	pthread_join(sup_bg_thread, NULL);
	sup_running = 0;
	/* What the background thread told a supervisor that had gone. */
	while (sup_head != NULL) {
		struct sup_cmd	*c = sup_head;

		sup_head = c->next;
		free(c);
	}
	sup_tail = NULL;
	close(sup_epfd);
	close(sup_sigfd);
	close(sup_evfd);
	close(sup_tfd);
	if (sup_uids_ok)
		uid_fini();
}

/*
 * Queues a command and waits until the supervisor has applied it and
 * committed what it did.  Returns the outcome with err.  Takes
 * ownership of spec.
 */
enum nd_rc
sup_command(enum sup_op op, const char *coord, json_t *spec, int64_t job,
    int flag, char *err, size_t errlen)
{
	struct sup_cmd	*c;

	if ((c = calloc(1, sizeof(*c))) == NULL) {
		json_decref(spec);
		if (err != NULL)
			snprintf(err, errlen, "out of memory");
		return ND_INTERNAL;
	}
	c->op = op;
	snprintf(c->coord, sizeof(c->coord), "%s", coord);
	c->spec = spec;
	c->job = job;
	c->flag = flag;
	return (enum nd_rc)sup_call(c, NULL, err, errlen);
}

/* Queues c, waits for its answer, frees it: outcome, *job and err. */
static int
sup_call(struct sup_cmd *c, int64_t *job, char *err, size_t errlen)
{
	const struct store_actor	*by = store_actor_get();
	enum nd_rc	rc;

	if (by != NULL) {
		c->by = *by;
		c->has_by = 1;
	}
	c->wait = 1;
	sup_enqueue(c);
	pthread_mutex_lock(&sup_mtx);
	while (!c->done)
		pthread_cond_wait(&sup_cond, &sup_mtx);
	pthread_mutex_unlock(&sup_mtx);
	rc = c->rc;
	if (job != NULL)
		*job = c->job;
	if (err != NULL)
		snprintf(err, errlen, "%s", c->err);
	free(c);
	return (int)rc;
}

/* Queues a message nobody waits for; dropped if out of memory. */
static void
sup_post(enum sup_op op, const char *coord, int64_t job, int flag,
    const char *text)
{
	struct sup_cmd	*c;

	if (!sup_running || (c = calloc(1, sizeof(*c))) == NULL)
		return;
	c->op = op;
	snprintf(c->coord, sizeof(c->coord), "%s", coord);
	c->job = job;
	c->flag = flag;
	snprintf(c->text, sizeof(c->text), "%s", text ? text : "");
	sup_enqueue(c);
}

/* Called by the install job: services waiting for gav may start. */
void
sup_artifact_done(const char *gav, int ok, const char *error)
{
	sup_post(SUP_ARTIFACT, gav, 0, ok, error);
}

/* Called by the prepare job: the start it prepared may go on. */
void
sup_prepared(const char *coord, int64_t job, int ok, const char *error)
{
	sup_post(SUP_PREPARED, coord, job, ok, error);
}

/*
 * A snapshot now, queued by the supervisor so that it is ordered with a
 * delete.  Returns ND_ACCEPTED with *job, or the reason it cannot.
 */
enum nd_rc
sup_snapshot_now(const char *coord, int64_t *job, char *err, size_t errlen)
{
	struct sup_cmd	*c;

	if ((c = calloc(1, sizeof(*c))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return ND_INTERNAL;
	}
	c->op = SUP_SNAPSHOT;
	snprintf(c->coord, sizeof(c->coord), "%s", coord);
	return (enum nd_rc)sup_call(c, job, err, errlen);
}

/* Appends c to the queue and wakes the supervisor thread. */
static void
sup_enqueue(struct sup_cmd *c)
{
	uint64_t	one = 1;

	pthread_mutex_lock(&sup_mtx);
	if (sup_tail != NULL)
		sup_tail->next = c;
	else
		sup_head = c;
	sup_tail = c;
	pthread_mutex_unlock(&sup_mtx);
	if (write(sup_evfd, &one, sizeof(one)) != sizeof(one))
		log_warn("sup", "eventfd: %s", strerror(errno));
}

static void *
sup_main(void *arg)
{
	struct epoll_event	 evs[64];
	int			 k, quit = 0;

	(void)arg;
	sup_rotate_due = store_mono_ms() + (int64_t)sup_cf->log_check_s * 1000;
	sup_w.seq = 1;
	sup_begin();
	sup_load();
	sup_commit();
	free(sup_orphans);
	sup_orphans = NULL;
	sup_norphans = 0;
	pthread_mutex_lock(&sup_mtx);
	sup_loaded = 1;
	pthread_cond_broadcast(&sup_cond);
	pthread_mutex_unlock(&sup_mtx);
	while (!quit) {
		sup_arm();
		k = epoll_wait(sup_epfd, evs, 64, -1);
		if (k == -1) {
			if (errno == EINTR)
				continue;
			log_error("sup", "epoll_wait: %s", strerror(errno));
			break;
		}
		quit = sup_wakeup(evs, k);
	}
	/* Services keep running; only our bookkeeping goes. */
	while (sup_nsvcs > 0) {
		struct svc	*s = sup_svcs[sup_nsvcs - 1];

		if (s->pidfd != -1)
			close(s->pidfd);
		sup_nsvcs--;
		json_decref(s->spec);
		supfsm_free(&s->f);
		free(s);
	}
	free(sup_svcs);
	free(sup_byname);
	free(sup_bypid);
	sup_svcs = sup_byname = sup_bypid = NULL;
	sup_capsvcs = sup_nbuckets = 0;
	store_close();
	return NULL;
}

/* Drains the command queue; 1 if it held SUP_QUIT. */
static int
sup_commands(void)
{
	struct sup_cmd	*c, *next;
	uint64_t	 n;
	int		 quit = 0;

	if (read(sup_evfd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		log_warn("sup", "eventfd: %s", strerror(errno));
	pthread_mutex_lock(&sup_mtx);
	c = sup_head;
	sup_head = sup_tail = NULL;
	pthread_mutex_unlock(&sup_mtx);
	for (; c != NULL; c = next) {
		next = c->next;
		if (c->op == SUP_QUIT)
			quit = 1;
		sup_w.cmds++;
		/* The events the command causes now are its client's. */
		store_actor_set(c->has_by ? &c->by : NULL);
		sup_handle(c);
		store_actor_set(NULL);
	}
	return quit;
}

/*
 * One wake-up: every ready descriptor, in one transaction.  The fork
 * comes before the commit (a process must exist before its pid can be
 * recorded); a failed commit undoes it.  Returns 1 to quit.
 */
static int
sup_wakeup(struct epoll_event *evs, int k)
{
	int64_t	 t0 = store_mono_ms(), t;
	uint64_t n;
	int	 i, quit = 0;

	sup_begin();
	for (i = 0; i < k; i++) {
		void	*tag = evs[i].data.ptr;

		if (tag == &sup_tag_sig) {
			struct signalfd_siginfo	si;

			while (read(sup_sigfd, &si, sizeof(si)) > 0)
				;
			sup_reap();
		} else if (tag == &sup_tag_timer) {
			if (read(sup_tfd, &n, sizeof(n)) < 0 && errno != EAGAIN)
				log_warn("sup", "timerfd: %s", strerror(errno));
			sup_timers();
		} else if (tag == &sup_tag_ev)
			quit |= sup_commands();
		else {
			/* An adopted process ended. */
			struct svc	*s = tag;

			if (epoll_ctl(sup_epfd, EPOLL_CTL_DEL, s->pidfd, NULL)
			    != 0)
				log_warn("sup", "epoll_ctl: %s",
				    strerror(errno));
			close(s->pidfd);
			s->pidfd = -1;
			sup_npidfds--;
			sup_exited(s, 0, 0);
		}
	}
	sup_commit();
	if ((t = store_mono_ms() - t0) > SUP_SLOW_MS)
		sup_slow(t);
	return quit;
}

/*
 * A wake-up longer than SUP_SLOW_MS, with what it did (as Redis's
 * latency monitor does): one line per SUP_SLOW_EVERY_MS at most, the
 * slowest of them, with how many there were.
 */
static void
sup_slow(int64_t t)
{
	static int64_t	last, worst;
	static int	n;
	int64_t		now = store_mono_ms();

	n++;
	if (t > worst)
		worst = t;
	if (last != 0 && now - last < SUP_SLOW_EVERY_MS)
		return;
	log_warn("sup", "a wake-up took %lld ms: %d commands, %d exits, %d "
	    "timers, %d starts", (long long)t, sup_w.cmds, sup_w.exits,
	    sup_w.timers, sup_w.spawns);
	if (n > 1)
		log_warn("sup", "%d wake-ups over %d ms in the last %lld s, "
		    "the slowest %lld ms", n, SUP_SLOW_MS,
		    (long long)((now - last) / 1000), (long long)worst);
	last = now;
	worst = 0;
	n = 0;
}

/* ------------------------------------------------------------ start-up */

/*
 * At start-up: every service in the store.  A live process (same pid and
 * same start time as recorded) is adopted; otherwise the decision table
 * says what a service that had no nodee watching it does now.
 */
static void
sup_load(void)
{
	sqlite3		*db = store_db();
	sqlite3_stmt	*st;
	size_t		 i;

	if (db == NULL || sqlite3_prepare_v2(db, "SELECT coordinate, "
	    "coalesce(secret_spec, spec), "
	    "desired_state, state, pid, proc_start, started_at, restarts, "
	    "uid, gid, job_id, reason, last_exit_code, last_exit_signal, "
	    "last_exit_at, ending FROM services ORDER BY coordinate", -1, &st,
	    NULL) != SQLITE_OK) {
		log_error("sup", "cannot load services");
		return;
	}
	while (sqlite3_step(st) == SQLITE_ROW)
		sup_load_row(st);
	sqlite3_finalize(st);
	for (i = 0; i < sup_nsvcs; i++)
		sup_boot(sup_svcs[i]);
}

static const char *
sup_col(sqlite3_stmt *st, int i)
{
	return sqlite3_column_type(st, i) == SQLITE_NULL ? NULL :
	    (const char *)sqlite3_column_text(st, i);
}

/* One services row into memory, as it was recorded. */
static void
sup_load_row(sqlite3_stmt *st)
{
	json_error_t	 je;
	struct coord	 c;
	struct svc	*s;
	json_t		*spec;
	const char	*v;
	char		 err[256];

	if (coord_parse(sup_col(st, 0), &c, err, sizeof(err)) != 0) {
		log_warn("sup", "skipping a bad service row: %s", err);
		return;
	}
	spec = json_loads(sup_col(st, 1), 0, &je);
	if (spec == NULL || (s = sup_new(&c, spec)) == NULL) {
		json_decref(spec);
		return;
	}
	s->f.goal = (v = sup_col(st, 2)) != NULL && strcmp(v, "running") ==
	    0 ? SG_RUN : SG_STOP;
	if (supfsm_state_parse(sup_col(st, 3), &s->f.state) != 0)
		s->f.state = SF_STOPPED;
	s->pid = (pid_t)sqlite3_column_int(st, 4);
	s->pstart = (unsigned long long)sqlite3_column_int64(st, 5);
	s->started_ms = sqlite3_column_int64(st, 6);
	s->f.restarts = sqlite3_column_int64(st, 7);
	if (sqlite3_column_type(st, 8) != SQLITE_NULL) {
		s->uid = (uid_t)sqlite3_column_int(st, 8);
		s->gid = (gid_t)sqlite3_column_int(st, 9);
		s->has_uid = 1;
		if (sup_dynamic(s) && (!sup_uids_ok || uid_reclaim(s->uid, err,
		    sizeof(err)) != 0)) {
			log_warn("sup", "%s: its uid %u cannot be kept (%s): "
			    "it gets another at its next start", c.name,
			    (unsigned)s->uid, sup_uids_ok ? err : "no lock file");
			s->has_uid = 0;
		}
	}
	s->f.install_job = sqlite3_column_int64(st, 10);	/* or prepare */
	if ((v = sup_col(st, 11)) != NULL)
		supfsm_set_reason(&s->f, "%s", v);
	if (sqlite3_column_type(st, 14) != SQLITE_NULL) {
		s->exit_known = 1;
		s->exit_code = sqlite3_column_type(st, 12) == SQLITE_NULL ? -1 :
		    sqlite3_column_int(st, 12);
		s->exit_sig = sqlite3_column_int(st, 13);
		s->exit_ms = sqlite3_column_int64(st, 14);
	}
	/* ending: the snapshot a stop asks for, or a delete under way. */
	if ((v = sup_col(st, 15)) != NULL && (strcmp(v, "delete") == 0 ||
	    strcmp(v, "purge") == 0)) {
		s->f.goal = SG_DELETE;
		s->f.purge = v[0] == 'p';
	} else if (v != NULL)
		s->f.snap = strcmp(v, "drain") == 0 ? SS_DRAIN : SS_STOP;
	if (s->pid > 0)
		sup_pid_set(s, s->pid);
}

/* The recorded job of s: what the decision table needs to know of it. */
static enum supfsm_boot
sup_boot_job(struct svc *s, int64_t *job, char *text, size_t textlen)
{
	json_t			*j;
	const char		*js, *kind, *e;
	enum supfsm_boot	 b = SB_NONE;

	*job = s->f.install_job;
	s->f.install_job = 0;
	if (*job <= 0 || (j = jobs_get(store_db(), *job)) == NULL)
		return SB_NONE;
	js = json_string_value(json_object_get(j, "state"));
	kind = json_string_value(json_object_get(j, "kind"));
	e = json_string_value(json_object_get(j, "error"));
	if (js == NULL || kind == NULL || (strcmp(js, "queued") != 0 &&
	    strcmp(js, "running") != 0 && strcmp(kind, "service.prepare") !=
	    0))
		b = SB_NONE;
	else if (strcmp(js, "queued") == 0 || strcmp(js, "running") == 0)
		b = strcmp(kind, "service.prepare") == 0 ? SB_PREPARE_ACTIVE :
		    SB_INSTALL_ACTIVE;
	else if (strcmp(js, "succeeded") == 0)
		/* Only for the spec it has now: a PUT may have come since. */
		b = prepare_job_spec_is(store_db(), *job, s->spec) ?
		    SB_PREPARE_OK : SB_NONE;
	else {
		b = SB_PREPARE_FAILED;
		snprintf(text, textlen, "%s", e != NULL ? e : js);
	}
	json_decref(j);
	return b;
}

/* Adopts what still runs, and tells the decision table of the rest. */
static void
sup_boot(struct svc *s)
{
	struct supfsm_event	ev;
	char			text[1024] = "";

	sup_params(s);
	memset(&ev, 0, sizeof(ev));
	ev.now = store_mono_ms();
	if (sup_adopt(s)) {
		ev.kind = SE_ADOPT;
		s->f.install_job = 0;
		sup_step(s, &ev);
		return;
	}
	ev.kind = SE_BOOT;
	ev.boot = sup_boot_job(s, &ev.job, text, sizeof(text));
	ev.text = text;
	sup_step(s, &ev);
}

/*
 * The recorded process of s, or one a killed nodee forked but never
 * recorded (adopting it is what keeps a service from running twice):
 * watched from now on, and 1.  Otherwise its run is closed and 0.
 */
static int
sup_adopt(struct svc *s)
{
	unsigned long long	ps;
	pid_t			found;

	if (!(s->pid > 0 && sup_proc_start(s->pid, &ps) == 0 &&
	    ps == s->pstart) && (found = sup_unrecorded(s, &ps)) > 0) {
		log_warn("sup", "%s: pid %d runs as this service but was never "
		    "recorded; adopting it", s->c.name, (int)found);
		if (s->pid > 0)
			sup_lost(s);
		sup_pid_set(s, found);
		s->pstart = ps;
		s->started_ms = store_now_ms();
	}
	if (s->pid > 0 && sup_proc_start(s->pid, &ps) == 0 && ps == s->pstart) {
		sup_watch(s);
		s->f.started = store_mono_ms() - (store_now_ms() - s->started_ms);
		sup_run_open(s, "adopted");
		log_info("sup", "%s: adopted pid %d%s", s->c.name, (int)s->pid,
		    s->unwatched ? " (unwatched: no descriptor left; polled)" :
		    "");
		sup_event(s, "service.adopted", json_pack("{s:i}", "pid",
		    (int)s->pid));
		return 1;
	}
	if (s->pid > 0) {
		/* It died while no nodee watched. */
		sup_lost(s);
		sup_pid_set(s, 0);
		s->pstart = 0;
	}
	return 0;
}

/* The recorded process ended while no nodee watched: exit unknown. */
static void
sup_lost(struct svc *s)
{
	s->exit_known = 1;
	s->exit_code = -1;
	s->exit_sig = 0;
	s->exit_ms = store_now_ms();
	sup_run_close(s);
}

/*
 * A pidfd tells us when an adopted process (not our child) ends.  None
 * is opened within SUP_FD_RESERVE of the descriptor limit, and none if
 * the kernel refuses: the process is then polled, never taken for dead.
 */
static void
sup_watch(struct svc *s)
{
	struct epoll_event	ev;
	int			fd;

	s->unwatched = 1;
	if (sup_npidfds + SUP_FD_RESERVE >= sup_nofile)
		return;
	if ((fd = (int)syscall(SYS_pidfd_open, s->pid, 0)) == -1) {
		if (errno != ESRCH)
			log_warn("sup", "%s: pidfd_open %d: %s; polling it",
			    s->c.name, (int)s->pid, strerror(errno));
		return;
	}
	ev.events = EPOLLIN;
	ev.data.ptr = s;
	if (epoll_ctl(sup_epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
		log_warn("sup", "%s: epoll_ctl: %s; polling it", s->c.name,
		    strerror(errno));
		close(fd);
		return;
	}
	s->pidfd = fd;
	s->unwatched = 0;
	sup_npidfds++;
}

/* ------------------------------------------------------------ commands */

static enum supfsm_event_kind
sup_op_event(enum sup_op op)
{
	switch (op) {
	case SUP_START:
		return SE_START;
	case SUP_STOP:
		return SE_STOP;
	case SUP_DRAIN:
		return SE_DRAIN;
	case SUP_RESTART:
		return SE_RESTART;
	default:
		return SE_DELETE;
	}
}

/* 1 (and c answered) if a snapshot job of s keeps it from going. */
static int
sup_snapshot_busy(struct svc *s, struct sup_cmd *c)
{
	json_t	*busy = jobs_active(store_db(), "service.snapshot", s->c.name);
	long long id;

	if (busy == NULL)
		return 0;
	id = (long long)json_integer_value(json_object_get(busy, "id"));
	sup_reply(c, ND_CONFLICT, "snapshot job %lld of %s is %s: wait for it "
	    "or cancel it (DELETE /api/v1/jobs/%lld) first", id, s->c.name,
	    json_string_value(json_object_get(busy, "state")), id);
	json_decref(busy);
	return 1;
}

static void
sup_snapshot_cmd(struct svc *s, struct sup_cmd *c)
{
	char	err[512];

	if (s->f.goal == SG_DELETE) {
		sup_reply(c, ND_CONFLICT, "%s is being deleted", s->c.name);
		return;
	}
	if ((c->job = prepare_snapshot_submit(store_db(), &s->c, s->spec,
	    "api", err, sizeof(err))) < 0) {
		sup_reply(c, ND_CONFLICT, "%s", err);
		return;
	}
	sup_wake_jobs = 1;
	sup_event(s, "service.snapshot.requested", json_pack("{s:I}", "job",
	    (json_int_t)c->job));
	sup_reply(c, ND_ACCEPTED, "%s", "");
}

/* An install ended: every service waiting for it hears. */
static void
sup_installed(struct sup_cmd *c)
{
	struct supfsm_event	ev;
	size_t			i;

	memset(&ev, 0, sizeof(ev));
	ev.kind = SE_INSTALLED;
	ev.ok = c->flag;
	ev.text = c->text;
	for (i = 0; i < sup_nsvcs; i++) {
		struct svc	*s = sup_svcs[i];

		if (s->f.install_job <= 0 || strcmp(json_string_value(
		    json_object_get(s->spec, "artifact")), c->coord) != 0)
			continue;
		ev.now = store_mono_ms();
		sup_step(s, &ev);
		/* sup_step may have forgotten s: look at the same slot. */
		if (i < sup_nsvcs && sup_svcs[i] != s)
			i--;
	}
}

static void
sup_handle(struct sup_cmd *c)
{
	struct supfsm_event	 ev;
	struct svc		*s;
	struct supfsm_out	 o;
	enum supfsm_state	 before;

	memset(&ev, 0, sizeof(ev));
	ev.now = store_mono_ms();
	switch (c->op) {
	case SUP_QUIT:
		sup_reply(c, ND_OK, "%s", "");
		return;
	case SUP_ARTIFACT:
		sup_installed(c);
		free(c);
		return;
	case SUP_PREPARED:
		if ((s = sup_find(c->coord)) != NULL && s->f.prep_job == c->job) {
			ev.kind = SE_PREPARED;
			ev.ok = c->flag;
			ev.text = c->text;
			sup_step(s, &ev);
		}
		free(c);
		return;
	case SUP_PURGED:
		/* Its processes are gone: the uid may serve another. */
		if (sup_uids_ok && sup_find_uid(c->job) == NULL)
			uid_release((unsigned)c->job);
		free(c);
		return;
	case SUP_PUT:
		sup_put(c);
		return;
	default:
		break;
	}
	if ((s = sup_find(c->coord)) == NULL) {
		sup_reply(c, ND_NOT_FOUND, "no service %s", c->coord);
		return;
	}
	if (c->op == SUP_SNAPSHOT) {
		sup_snapshot_cmd(s, c);
		return;
	}
	if (c->op == SUP_DELETE && sup_snapshot_busy(s, c))
		return;
	ev.kind = sup_op_event(c->op);
	ev.purge = c->flag;
	ev.rand = sup_rand();
	s->touched = sup_w.seq;
	before = s->f.state;
	supfsm_step(&s->f, &ev, &o);
	if (o.rc != ND_OK) {
		sup_reply(c, o.rc, "%s %s", s->c.name, o.msg);
		return;
	}
	sup_apply(s, &o, before);
	sup_reply(c, ND_OK, "%s", "");
}

/* A new spec: created, or replacing the one a service has. */
static void
sup_put(struct sup_cmd *c)
{
	struct supfsm_event	 ev;
	struct coord		 co;
	struct svc		*s;
	json_t			*j;
	const char		*js;
	int			 created = 0;

	if ((s = sup_find(c->coord)) == NULL) {
		if (coord_parse(c->coord, &co, c->err, sizeof(c->err)) != 0) {
			sup_reply(c, ND_INVALID, "%s", c->err);
			return;
		}
		if ((s = sup_new(&co, c->spec)) == NULL) {
			sup_reply(c, ND_INTERNAL, "out of memory");
			return;
		}
		created = 1;
		sup_insert_row(s);
	} else {
		json_decref(s->spec);
		s->spec = c->spec;
	}
	c->spec = NULL;
	sup_params(s);
	sup_event(s, created ? "service.created" : "service.updated",
	    json_pack("{s:o}", "spec", prepare_spec_redact(s->spec)));
	memset(&ev, 0, sizeof(ev));
	ev.kind = SE_PUT;
	ev.now = store_mono_ms();
	ev.job = c->job;
	sup_step(s, &ev);
	/* The install may have ended before this command came. */
	if (c->job > 0 && (s = sup_find(c->coord)) != NULL &&
	    (j = jobs_get(store_db(), c->job)) != NULL) {
		js = json_string_value(json_object_get(j, "state"));
		if (js != NULL && strcmp(js, "queued") != 0 &&
		    strcmp(js, "running") != 0) {
			ev.kind = SE_INSTALLED;
			ev.ok = strcmp(js, "succeeded") == 0;
			ev.text = json_string_value(json_object_get(j, "error"));
			if (ev.text == NULL)
				ev.text = js;
			sup_step(s, &ev);
		}
		json_decref(j);
	}
	sup_reply(c, created ? ND_CREATED : ND_OK, "%s", "");
}

/* ------------------------------------------------------------ executor */

/* Takes ev to the decision table for s and applies what it says. */
static void
sup_step(struct svc *s, struct supfsm_event *ev)
{
	struct supfsm_out	o;
	enum supfsm_state	before = s->f.state;

	if (ev->rand == 0)
		ev->rand = sup_rand();
	s->touched = sup_w.seq;
	supfsm_step(&s->f, ev, &o);
	sup_apply(s, &o, before);
}

/*
 * Applies the effects in order and writes the row.  A timer belongs to
 * the state that armed it, so a new state starts without one.  An
 * effect that fails is told to the table as SE_FAILED.  Returns 1 if s
 * was forgotten (and freed).
 */
static int
sup_apply(struct svc *s, const struct supfsm_out *o,
    enum supfsm_state before)
{
	int	i, r, now = 0;

	for (i = 0; i < o->nfx; i++) {
		if (o->fx[i].fx == FX_TIMER)
			continue;
		if ((r = sup_effect(s, &o->fx[i])) == 1)
			return 1;
		if (r == -1)
			return 0;	/* SE_FAILED was applied */
		now |= r == 2;
	}
	if (s->f.state != before)
		s->due = 0;
	for (i = 0; i < o->nfx; i++)
		if (o->fx[i].fx == FX_TIMER)
			s->due = store_mono_ms() + o->fx[i].ms;
	/* A drain command that could not start: its timer ends it now. */
	if (now)
		s->due = store_mono_ms();
	sup_save(s);
	return 0;
}

/* Tells the table that an effect failed (reason), and applies that. */
static void
sup_failed(struct svc *s, const char *reason)
{
	struct supfsm_event	ev;

	memset(&ev, 0, sizeof(ev));
	ev.kind = SE_FAILED;
	ev.now = store_mono_ms();
	ev.text = reason;
	sup_step(s, &ev);
}

/*
 * One effect: 0 done, 1 s is gone, -1 it failed and that was applied,
 * 2 the state's timer is due now.
 */
static int
sup_effect(struct svc *s, const struct supfsm_effect *e)
{
	switch (e->fx) {
	case FX_SPAWN:
		return sup_start_main(s, (enum supfsm_why)e->arg);
	case FX_PREPARE:
		return sup_prepare(s, (enum supfsm_why)e->arg);
	case FX_CANCEL_PREPARE: {
		char	err[256];

		if (s->f.prep_job > 0 && jobs_cancel(s->f.prep_job, err,
		    sizeof(err)) != 0)
			log_debug("sup", "%s: %s", s->c.name, err);
		return 0;
	}
	case FX_SIGNAL:
		if (e->arg == SIGKILL && s->f.p.stop_sig != SIGKILL)
			log_warn("sup", "%s: did not stop in time; SIGKILL",
			    s->c.name);
		sup_kill(s, e->arg);
		return 0;
	case FX_DRAIN:
		return sup_drain(s) == 0 ? 0 : 2;
	case FX_SNAPSHOT:
		sup_snapshot(s, e->arg == SS_DRAIN ? "drain" : "stop");
		return 0;
	case FX_FORGET:
		sup_forget(s);
		return 1;
	case FX_EVENT:
		sup_event_fx(s, e);
		return 0;
	default:
		return 0;
	}
}

static void
sup_event_fx(struct svc *s, const struct supfsm_effect *e)
{
	json_t	*d = json_object();

	if (e->key != NULL)
		json_object_set_new(d, e->key, json_integer(e->num));
	if ((e->flags & SUPFSM_EV_PID) && s->pid > 0)
		json_object_set_new(d, "pid", json_integer(s->pid));
	if ((e->flags & SUPFSM_EV_REASON) && s->f.reason != NULL)
		json_object_set_new(d, "reason", json_string(s->f.reason));
	if (e->flags & SUPFSM_EV_REASON)
		log_warn("sup", "%s: %s: %s", s->c.name, e->kind,
		    supfsm_reason(&s->f));
	if (json_object_size(d) == 0) {
		json_decref(d);
		d = NULL;
	}
	sup_event(s, e->kind, d);
}

/* The main process, started now; -1 if it could not be (applied). */
static int
sup_start_main(struct svc *s, enum supfsm_why why)
{
	char	err[1024];
	pid_t	pid;

	if (sup_spawn(s, NULL, &pid, err, sizeof(err)) != 0) {
		char	r[1100];

		snprintf(r, sizeof(r), "cannot start: %s", err);
		sup_failed(s, r);
		return -1;
	}
	sup_pid_set(s, pid);
	s->started_ms = store_now_ms();
	s->f.started = store_mono_ms();
	if (sup_proc_start(pid, &s->pstart) != 0)
		s->pstart = 0;
	if (why == SW_RESTART) {
		s->f.restarts++;
		metrics_add(MC_RESTARTS, 1);
	}
	sup_w.spawns++;
	if (sup_w.nspawned == sup_w.capspawned) {
		size_t	 cap = sup_w.capspawned ? sup_w.capspawned * 2 : 16;
		pid_t	*n = realloc(sup_w.spawned, cap * sizeof(*n));

		if (n != NULL) {
			sup_w.spawned = n;
			sup_w.capspawned = cap;
		}
	}
	if (sup_w.nspawned < sup_w.capspawned)
		sup_w.spawned[sup_w.nspawned++] = pid;
	sup_run_open(s, supfsm_why_name(why));
	sup_event(s, "service.started", json_pack("{s:i, s:s}", "pid",
	    (int)pid, "reason", supfsm_why_name(why)));
	log_info("sup", "%s: started pid %d (%s)", s->c.name, (int)pid,
	    supfsm_why_name(why));
	return 0;
}

/* Submits the prepare job of a start; -1 if it could not be (applied). */
static int
sup_prepare(struct svc *s, enum supfsm_why why)
{
	char	err[768];
	int64_t	id;
	json_t	*busy;

	/* The job of a service deleted and created again meanwhile. */
	if ((busy = jobs_active(store_db(), "service.prepare", s->c.name)) !=
	    NULL) {
		s->f.prep_job = json_integer_value(json_object_get(busy, "id"));
		s->f.prep_gen = 0;	/* it prepares another spec */
		json_decref(busy);
		return 0;
	}
	if (sup_assign_uid(s, err, sizeof(err)) != 0 ||
	    (id = prepare_submit(store_db(), &s->c, s->spec, s->uid, s->gid,
	    sup_root, err, sizeof(err))) < 0) {
		char	r[900];

		snprintf(r, sizeof(r), "cannot prepare: %s", err);
		sup_failed(s, r);
		return -1;
	}
	s->f.prep_job = id;
	sup_wake_jobs = 1;
	sup_event(s, "service.preparing", json_pack("{s:I, s:s}", "job",
	    (json_int_t)id, "reason", supfsm_why_name(why)));
	return 0;
}

/* The drain command, or the drain signal; -1 if the command failed. */
static int
sup_drain(struct svc *s)
{
	json_t		*drain = json_object_get(s->spec, "drain");
	const char	*cmd = json_string_value(json_object_get(drain,
	    "command"));
	char		 err[512];
	pid_t		 helper;

	if (cmd == NULL) {
		sup_kill(s, service_signal(json_string_value(json_object_get(
		    drain, "signal"))));
		return 0;
	}
	if (sup_spawn(s, cmd, &helper, err, sizeof(err)) != 0) {
		log_warn("sup", "%s: drain command: %s; stopping", s->c.name,
		    err);
		return -1;
	}
	return 0;
}

/* Queues the snapshot a drain or a stop asks for. */
static void
sup_snapshot(struct svc *s, const char *why)
{
	char	err[512];
	int64_t	id;

	if ((id = prepare_snapshot_submit(store_db(), &s->c, s->spec, why, err,
	    sizeof(err))) < 0) {
		log_warn("sup", "%s: no snapshot after %s: %s", s->c.name, why,
		    err);
		sup_event(s, "service.snapshot.failed", json_pack("{s:s, s:s}",
		    "why", why, "reason", err));
		return;
	}
	sup_wake_jobs = 1;
	log_info("sup", "%s: snapshot job %lld after %s", s->c.name,
	    (long long)id, why);
}

/*
 * Forks and execs the service's command (helper NULL) or its drain
 * command.  The runtime directory and the logs are opened through
 * descriptors that never follow a link the service planted (rundir.c);
 * the plan is made here and the child only applies it (spawn.c).
 */
static int
sup_spawn(struct svc *s, const char *helper, pid_t *pidp, char *err,
    size_t errlen)
{
	struct rundir		rd;
	struct spawn_plan	plan;
	int			outfd = -1, errfd = -1, rc = -1;

	memset(&plan, 0, sizeof(plan));
	if (sup_assign_uid(s, err, errlen) != 0)
		return -1;
	if (rundir_open(sup_cf, &s->c, s->uid, s->gid, sup_root, &rd, err,
	    errlen) != 0)
		return -1;
	if (rundir_logs(&rd, s->uid, s->gid, sup_root, &outfd, &errfd, err,
	    errlen) == 0 && spawn_plan_build(sup_cf, &s->c, s->spec, helper,
	    s->uid, s->gid, sup_root, rd.path, rd.dirfd, outfd, errfd, &plan,
	    err, errlen) == 0)
		rc = spawn_exec(&plan, pidp, err, errlen);
	spawn_plan_free(&plan);
	if (outfd != -1)
		close(outfd);
	if (errfd != -1)
		close(errfd);
	rundir_close(&rd);
	return rc;
}

/*
 * The main process ended.  known: status is from waitpid(); else the
 * process was adopted and its status is lost with its old parent.
 */
static void
sup_exited(struct svc *s, int known, int status)
{
	struct supfsm_event	 ev;
	char			*tail = NULL;

	s->exit_known = 1;
	s->exit_ms = store_now_ms();
	s->exit_code = known && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
	s->exit_sig = known && WIFSIGNALED(status) ? WTERMSIG(status) : 0;
	sup_run_close(s);
	log_info("sup", "%s: pid %d exited (%s %d)", s->c.name, (int)s->pid,
	    s->exit_sig ? "signal" : known ? "code" : "status unknown",
	    s->exit_sig ? s->exit_sig : s->exit_code);
	sup_event(s, "service.exited", json_pack("{s:i, s:o, s:o}", "pid",
	    (int)s->pid, "code", s->exit_code >= 0 ?
	    json_integer(s->exit_code) : json_null(), "signal", s->exit_sig ?
	    json_integer(s->exit_sig) : json_null()));
	sup_pid_set(s, 0);
	s->pstart = 0;
	s->unwatched = 0;
	s->recover = 0;
	sup_w.exits++;
	memset(&ev, 0, sizeof(ev));
	ev.kind = SE_EXIT;
	ev.now = store_mono_ms();
	ev.known = known;
	ev.code = s->exit_code;
	ev.sig = s->exit_sig;
	/* A crash says why: the last lines it wrote to stderr. */
	if (s->f.goal == SG_RUN && (s->f.state == SF_STARTING ||
	    s->f.state == SF_RUNNING))
		tail = rundir_tail(sup_cf, &s->c, "stderr", SUP_STDERR_TAIL);
	ev.text = tail;
	sup_step(s, &ev);
	free(tail);
}

/* To the whole process group (the service called setsid()). */
/*
 * In a wake-up, the signal waits for the commit: a stop the store could
 * not record must not have stopped the process (the API says nothing
 * changed).
 */
static void
sup_kill(struct svc *s, int sig)
{
	struct sup_signal	 k, *n;
	size_t			 cap;

	if (s->pid <= 0 || sig <= 0)
		return;
	k.pid = s->pid;
	k.sig = sig;
	snprintf(k.name, sizeof(k.name), "%s", s->c.name);
	if (sup_w.open && sup_w.nsignals == sup_w.capsignals) {
		cap = sup_w.capsignals ? sup_w.capsignals * 2 : 16;
		if ((n = realloc(sup_w.signals, cap * sizeof(*n))) != NULL) {
			sup_w.signals = n;
			sup_w.capsignals = cap;
		}
	}
	if (sup_w.open && sup_w.nsignals < sup_w.capsignals)
		sup_w.signals[sup_w.nsignals++] = k;
	else
		sup_signal(&k);
}

static void
sup_signal(const struct sup_signal *k)
{
	if (kill(-k->pid, k->sig) == -1 && kill(k->pid, k->sig) == -1 &&
	    errno != ESRCH)
		log_warn("sup", "%s: kill %d: %s", k->name, (int)k->pid,
		    strerror(errno));
}

/* What of the spec the decision table needs. */
static void
sup_params(struct svc *s)
{
	struct supfsm_params	*p = &s->f.p;
	json_t			*rst = json_object_get(s->spec, "restart");
	json_t			*stop = json_object_get(s->spec, "stop");
	json_t			*start = json_object_get(s->spec, "start");
	json_t			*mu = json_object_get(start, "min_uptime_ms");
	const char		*pol = json_string_value(json_object_get(rst,
	    "policy"));

	p->policy = pol == NULL || strcmp(pol, "always") == 0 ? SP_ALWAYS :
	    strcmp(pol, "never") == 0 ? SP_NEVER : SP_ON_FAILURE;
	p->max_restarts = (int)json_integer_value(json_object_get(rst,
	    "max_restarts"));
	p->period_ms = json_integer_value(json_object_get(rst, "period_s")) *
	    1000;
	p->delay_ms = json_integer_value(json_object_get(rst, "delay_ms"));
	p->max_delay_ms = json_integer_value(json_object_get(rst,
	    "max_delay_ms"));
	p->reset_after_ms = json_integer_value(json_object_get(rst,
	    "reset_after_s")) * 1000;
	/* Specs stored before start.min_uptime_ms existed: its default. */
	p->min_uptime_ms = mu != NULL ? json_integer_value(mu) : 1000;
	p->stop_sig = service_signal(json_string_value(json_object_get(stop,
	    "signal")));
	p->stop_timeout_ms = json_integer_value(json_object_get(stop,
	    "timeout_s")) * 1000;
	p->drain_timeout_ms = json_integer_value(json_object_get(
	    json_object_get(s->spec, "drain"), "timeout_s")) * 1000;
	p->needs_prepare = prepare_needed(s->spec);
	p->snap_on_stop = prepare_snapshot_on(s->spec, "stop");
	p->snap_on_drain = prepare_snapshot_on(s->spec, "drain");
}

/* ------------------------------------------------------------ kernel news */

/* Reaps every child that ended: services and orphans alike. */
static void
sup_reap(void)
{
	struct svc	*s;
	pid_t		 pid;
	int		 status;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		if ((s = sup_find_pid(pid)) != NULL && s->pidfd == -1 &&
		    !s->unwatched)
			sup_exited(s, 1, status);
		else
			log_debug("sup", "reaped pid %d", (int)pid);
	}
}

/* Every timer that is due, the log check, the poll. */
static void
sup_timers(void)
{
	struct supfsm_event	 ev;
	int64_t			 now = store_mono_ms();
	size_t			 i;

	if (now >= sup_rotate_due) {
		for (i = 0; i < sup_nsvcs; i++) {
			struct sup_task	*t;

			if (!sup_svcs[i]->has_uid)
				continue;
			if ((t = calloc(1, sizeof(*t))) == NULL)
				break;
			t->kind = TASK_ROTATE;
			t->c = sup_svcs[i]->c;
			t->uid = sup_svcs[i]->uid;
			sup_bg_post(t);
		}
		sup_rotate_due = now + (int64_t)sup_cf->log_check_s * 1000;
	}
	if (now >= sup_poll_due)
		sup_poll();
	for (i = 0; i < sup_nsvcs; i++) {
		struct svc	*s = sup_svcs[i];

		if (s->due == 0 || s->due > now)
			continue;
		s->due = 0;
		sup_w.timers++;
		memset(&ev, 0, sizeof(ev));
		ev.kind = SE_TIMER;
		ev.now = now;
		sup_step(s, &ev);
		if (i < sup_nsvcs && sup_svcs[i] != s)
			i--;
	}
}

/*
 * Once a second while needed: adopted processes without a pidfd (are
 * they alive? is there a descriptor for them now?) and services a failed
 * commit left to be looked at again.
 */
static void
sup_poll(void)
{
	unsigned long long	ps;
	size_t			i;

	sup_poll_due = INT64_MAX;
	for (i = 0; i < sup_nsvcs; i++) {
		struct svc	*s = sup_svcs[i];

		if (s->recover) {
			s->recover = 0;
			s->touched = sup_w.seq;
			sup_boot(s);
		} else if (s->unwatched && s->pid > 0) {
			if (sup_proc_start(s->pid, &ps) != 0 || ps != s->pstart)
				sup_exited(s, 0, 0);
			else
				sup_watch(s);
		}
		if (i < sup_nsvcs && sup_svcs[i] != s) {
			i--;
			continue;
		}
		if (i < sup_nsvcs && (sup_svcs[i]->unwatched ||
		    sup_svcs[i]->recover))
			sup_poll_due = store_mono_ms() + SUP_POLL_MS;
	}
}

static void
sup_arm(void)
{
	struct itimerspec	its;
	int64_t			due = sup_rotate_due, now = store_mono_ms(), d;
	size_t			i;

	if (sup_poll_due < due)
		due = sup_poll_due;
	for (i = 0; i < sup_nsvcs; i++) {
		if (sup_svcs[i]->due != 0 && sup_svcs[i]->due < due)
			due = sup_svcs[i]->due;
		if (sup_svcs[i]->unwatched && now + SUP_POLL_MS < due)
			due = sup_poll_due = now + SUP_POLL_MS;
	}
	d = due - now;
	if (d < 1)
		d = 1;
	memset(&its, 0, sizeof(its));
	its.it_value.tv_sec = d / 1000;
	its.it_value.tv_nsec = (d % 1000) * 1000000;
	if (timerfd_settime(sup_tfd, 0, &its, NULL) != 0)
		log_error("sup", "timerfd_settime: %s", strerror(errno));
}

/* ------------------------------------------------------------ services */

static size_t
sup_hash(const char *name)
{
	uint64_t	h = 1469598103934665603ULL;

	for (; *name != '\0'; name++)
		h = (h ^ (unsigned char)*name) * 1099511628211ULL;
	return (size_t)(h & (sup_nbuckets - 1));
}

static size_t
sup_hash_pid(pid_t pid)
{
	return (size_t)((uint32_t)pid * 2654435761U) & (sup_nbuckets - 1);
}

/* Both tables twice as large; every service rehashed. */
static int
sup_rehash(size_t nb)
{
	struct svc	**byname, **bypid;
	size_t		  i;

	byname = calloc(nb, sizeof(struct svc *));
	bypid = calloc(nb, sizeof(struct svc *));
	if (byname == NULL || bypid == NULL) {
		free(byname);
		free(bypid);
		return -1;
	}
	free(sup_byname);
	free(sup_bypid);
	sup_byname = byname;
	sup_bypid = bypid;
	sup_nbuckets = nb;
	for (i = 0; i < sup_nsvcs; i++) {
		struct svc	*s = sup_svcs[i];
		size_t		 h = sup_hash(s->c.name);

		s->hnext = sup_byname[h];
		sup_byname[h] = s;
		s->pnext = NULL;
		if (s->pid > 0) {
			h = sup_hash_pid(s->pid);
			s->pnext = sup_bypid[h];
			sup_bypid[h] = s;
		}
	}
	return 0;
}

static struct svc *
sup_find(const char *name)
{
	struct svc	*s;

	if (sup_nbuckets == 0)
		return NULL;
	for (s = sup_byname[sup_hash(name)]; s != NULL; s = s->hnext)
		if (strcmp(s->c.name, name) == 0)
			return s;
	return NULL;
}

static struct svc *
sup_find_pid(pid_t pid)
{
	struct svc	*s;

	if (sup_nbuckets == 0 || pid <= 0)
		return NULL;
	for (s = sup_bypid[sup_hash_pid(pid)]; s != NULL; s = s->pnext)
		if (s->pid == pid)
			return s;
	return NULL;
}

/* The service that holds dynamic uid u, if any. */
static struct svc *
sup_find_uid(int64_t u)
{
	size_t	i;

	for (i = 0; i < sup_nsvcs; i++)
		if (sup_svcs[i]->has_uid && sup_svcs[i]->uid == (uid_t)u)
			return sup_svcs[i];
	return NULL;
}

/* Sets s->pid, keeping the pid table in step. */
static void
sup_pid_set(struct svc *s, pid_t pid)
{
	struct svc	**pp;

	if (s->pid > 0)
		for (pp = &sup_bypid[sup_hash_pid(s->pid)]; *pp != NULL;
		    pp = &(*pp)->pnext)
			if (*pp == s) {
				*pp = s->pnext;
				break;
			}
	s->pid = pid;
	s->pnext = NULL;
	if (pid > 0) {
		size_t	h = sup_hash_pid(pid);

		s->pnext = sup_bypid[h];
		sup_bypid[h] = s;
	}
}

static struct svc *
sup_new(const struct coord *c, json_t *spec)
{
	struct svc	*s, **n;
	size_t		 h;

	if (sup_nsvcs == sup_capsvcs) {
		size_t	cap = sup_capsvcs ? sup_capsvcs * 2 : SUP_HASH_MIN;

		if ((n = realloc(sup_svcs, cap * sizeof(struct svc *))) ==
		    NULL)
			return NULL;
		sup_svcs = n;
		sup_capsvcs = cap;
	}
	if (sup_nsvcs >= sup_nbuckets && sup_rehash(sup_nbuckets ?
	    sup_nbuckets * 2 : SUP_HASH_MIN) != 0)
		return NULL;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	s->c = *c;
	s->spec = spec;
	s->pidfd = -1;
	supfsm_init(&s->f);
	s->touched = sup_w.seq;
	s->idx = sup_nsvcs;
	sup_svcs[sup_nsvcs++] = s;
	h = sup_hash(c->name);
	s->hnext = sup_byname[h];
	sup_byname[h] = s;
	return s;
}

/* Removes s from memory only (the row and the processes stay). */
static void
sup_drop(struct svc *s)
{
	struct svc	**pp;

	sup_pid_set(s, 0);
	for (pp = &sup_byname[sup_hash(s->c.name)]; *pp != NULL;
	    pp = &(*pp)->hnext)
		if (*pp == s) {
			*pp = s->hnext;
			break;
		}
	sup_svcs[s->idx] = sup_svcs[--sup_nsvcs];
	sup_svcs[s->idx]->idx = s->idx;
	if (s->pidfd != -1) {
		(void)epoll_ctl(sup_epfd, EPOLL_CTL_DEL, s->pidfd, NULL);
		close(s->pidfd);
		sup_npidfds--;
	}
	json_decref(s->spec);
	supfsm_free(&s->f);
	free(s);
}

/*
 * Deletes the service's record; with purge its runtime directory goes
 * too, moved aside at once (so a service of the same name created next
 * starts afresh) and removed on the background thread after every
 * process of its dynamic uid has ended.  The uid is kept until then.
 */
static void
sup_forget(struct svc *s)
{
	sqlite3		*db = store_db();
	sqlite3_stmt	*st;
	struct sup_task	*t = NULL;
	char		 dir[PATH_MAX];
	int		 keep_uid = 0;

	if (sqlite3_prepare_v2(db, "DELETE FROM services WHERE coordinate = ?",
	    -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_text(st, 1, s->c.name, -1, SQLITE_STATIC);
		if (sqlite3_step(st) != SQLITE_DONE)
			sup_store_failed(s, "delete");
		sqlite3_finalize(st);
	}
	if (s->f.purge && coord_runtime_dir(sup_cf, &s->c, dir,
	    sizeof(dir)) == 0 && (t = calloc(1, sizeof(*t))) != NULL) {
		t->kind = TASK_PURGE;
		t->c = s->c;
		t->uid = s->uid;
		/* Only a uid this service holds: never another's processes. */
		t->kill_uid = sup_root && s->has_uid && sup_dynamic(s) &&
		    sup_uids_ok && uid_held(s->uid);
		keep_uid = t->kill_uid;
		sup_purge_aside(s, dir, t->path, sizeof(t->path));
		t->next = sup_w.tasks;
		sup_w.tasks = t;
	}
	if (!keep_uid && s->has_uid && sup_dynamic(s) && sup_uids_ok)
		uid_release(s->uid);
	sup_event(s, "service.deleted", json_pack("{s:b}", "purged",
	    s->f.purge));
	if (sup_w.nforgot == sup_w.capforgot) {
		size_t	 cap = sup_w.capforgot ? sup_w.capforgot * 2 : 8;
		char	**n = realloc(sup_w.forgot, cap * sizeof(*n));

		if (n != NULL) {
			sup_w.forgot = n;
			sup_w.capforgot = cap;
		}
	}
	if (sup_w.nforgot < sup_w.capforgot)
		sup_w.forgot[sup_w.nforgot++] = strdup(s->c.name);
	sup_drop(s);
	sup_dirty = 1;
}

/*
 * Moves a purged runtime directory into PREFIX/tmp at once (its parents
 * are nodee's, so the rename is root's own business), so the API answers
 * with it gone and a service of the same name starts afresh; the
 * background thread removes it.  tmp/ is emptied at every start, so
 * nothing is left if nodee dies first.  If it cannot be moved, it is
 * removed where it is.
 */
static void
sup_purge_aside(struct svc *s, const char *dir, char *out, size_t outlen)
{
	static unsigned	n;

	if (snprintf(out, outlen, "%s/tmp/purge-%lld-%u", sup_cf->prefix,
	    (long long)store_now_ms(), n++) < (int)outlen &&
	    rename(dir, out) == 0)
		return;
	if (errno != ENOENT)
		log_warn("sup", "%s: cannot move %s aside (%s); removing it in "
		    "place", s->c.name, dir, strerror(errno));
	snprintf(out, outlen, "%s", dir);
}

/* 1 if the uid of s comes from the configured dynamic range. */
static int
sup_dynamic(const struct svc *s)
{
	return json_object_get(s->spec, "user") == NULL &&
	    s->uid >= sup_cf->uid_min && s->uid <= sup_cf->uid_max;
}

/*
 * As root: the spec's user, or a dynamic uid from the configured range
 * that is this service's alone on the machine (uid.c).  Otherwise
 * nodee's own user.
 */
static int
sup_assign_uid(struct svc *s, char *err, size_t errlen)
{
	const char	*user = json_string_value(json_object_get(s->spec,
	    "user"));
	struct passwd	 pw, *res = NULL;
	char		 buf[4096];
	unsigned	 u;

	if (!sup_root) {
		s->uid = geteuid();
		s->gid = getegid();
		s->has_uid = 1;
		return 0;
	}
	if (user != NULL) {
		if (getpwnam_r(user, &pw, buf, sizeof(buf), &res) != 0 ||
		    res == NULL) {
			snprintf(err, errlen, "user %s does not exist", user);
			return -1;
		}
		if (s->has_uid && sup_dynamic(s) && sup_uids_ok)
			uid_release(s->uid);
		s->uid = pw.pw_uid;
		s->gid = pw.pw_gid;
		s->has_uid = 1;
		return 0;
	}
	if (s->has_uid && s->uid >= sup_cf->uid_min &&
	    s->uid <= sup_cf->uid_max && sup_uids_ok && uid_held(s->uid))
		return 0;
	if (!sup_uids_ok) {
		snprintf(err, errlen, "no dynamic uid: the machine-wide lock "
		    "file %s cannot be used", UID_LOCK_PATH);
		return -1;
	}
	if (uid_alloc(sup_cf->uid_min, sup_cf->uid_max, &u, err, errlen) != 0)
		return -1;
	s->uid = u;
	s->gid = u;
	s->has_uid = 1;
	return 0;
}

/* ------------------------------------------------------------ the store */

static void
sup_insert_row(struct svc *s)
{
	sqlite3		*db = store_db();
	sqlite3_stmt	*st;

	if (sqlite3_prepare_v2(db, "INSERT INTO services (coordinate, spec, "
	    "created_at, updated_at) VALUES (?, '{}', ?, ?)", -1, &st, NULL) !=
	    SQLITE_OK)
		return;
	sqlite3_bind_text(st, 1, s->c.name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, store_now_ms());
	sqlite3_bind_int64(st, 3, store_now_ms());
	if (sqlite3_step(st) != SQLITE_DONE)
		sup_store_failed(s, "insert");
	sqlite3_finalize(st);
}

static void
sup_bind_row(sqlite3_stmt *st, struct svc *s, const char *spec,
    const char *secret)
{
	static const char *const snaps[] = { NULL, "stop", "drain" };
	int64_t	job = s->f.install_job > 0 ? s->f.install_job : s->f.prep_job;

	sqlite3_bind_text(st, 1, spec ? spec : "{}", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, s->f.goal == SG_RUN ? "running" : "stopped",
	    -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, supfsm_state_name(s->f.state), -1,
	    SQLITE_STATIC);
	if (s->pid > 0) {
		sqlite3_bind_int(st, 4, s->pid);
		sqlite3_bind_int64(st, 5, (sqlite3_int64)s->pstart);
		sqlite3_bind_int64(st, 6, s->started_ms);
	}
	sqlite3_bind_int64(st, 7, s->f.restarts);
	if (s->exit_known) {
		if (s->exit_code >= 0)
			sqlite3_bind_int(st, 8, s->exit_code);
		if (s->exit_sig > 0)
			sqlite3_bind_int(st, 9, s->exit_sig);
		sqlite3_bind_int64(st, 10, s->exit_ms);
	}
	if (s->has_uid) {
		sqlite3_bind_int(st, 11, (int)s->uid);
		sqlite3_bind_int(st, 12, (int)s->gid);
	}
	if (s->f.reason != NULL)
		sqlite3_bind_text(st, 13, s->f.reason, -1, SQLITE_STATIC);
	if (job > 0)
		sqlite3_bind_int64(st, 14, job);
	sqlite3_bind_int64(st, 15, store_now_ms());
	sqlite3_bind_text(st, 16, s->c.name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 17, secret ? secret : "{}", -1, SQLITE_STATIC);
	if (s->f.goal == SG_DELETE)
		sqlite3_bind_text(st, 18, s->f.purge ? "purge" : "delete", -1,
		    SQLITE_STATIC);
	else if (s->f.snap != SS_NONE)
		sqlite3_bind_text(st, 18, snaps[s->f.snap], -1, SQLITE_STATIC);
}

static void
sup_save(struct svc *s)
{
	sqlite3		*db = store_db();
	sqlite3_stmt	*st;
	json_t		*shown;
	char		*spec, *secret;

	if (db == NULL)
		return;
	s->touched = sup_w.seq;
	shown = prepare_spec_redact(s->spec);
	spec = json_dumps(shown, JSON_COMPACT);
	json_decref(shown);
	secret = json_dumps(s->spec, JSON_COMPACT);
	if (sqlite3_prepare_v2(db, "UPDATE services SET spec = ?1, "
	    "desired_state = ?2, state = ?3, pid = ?4, proc_start = ?5, "
	    "started_at = ?6, restarts = ?7, last_exit_code = ?8, "
	    "last_exit_signal = ?9, last_exit_at = ?10, uid = ?11, gid = ?12, "
	    "reason = ?13, job_id = ?14, updated_at = ?15, secret_spec = ?17, "
	    "ending = ?18 WHERE coordinate = ?16", -1, &st, NULL) !=
	    SQLITE_OK) {
		log_error("sup", "%s: %s", s->c.name, sqlite3_errmsg(db));
		free(spec);
		free(secret);
		return;
	}
	sup_bind_row(st, s, spec, secret);
	if (sqlite3_step(st) != SQLITE_DONE)
		sup_store_failed(s, "save");
	sqlite3_finalize(st);
	free(spec);
	free(secret);
	sup_dirty = 1;
}

/* Records an event; takes ownership of detail (may be NULL). */
static void
sup_event(struct svc *s, const char *kind, json_t *detail)
{
	store_event(kind, s->c.name, detail);
	json_decref(detail);
}

static void
sup_run_open(struct svc *s, const char *why)
{
	sqlite3		*db = store_db();
	sqlite3_stmt	*st;

	if (sqlite3_prepare_v2(db, "INSERT INTO service_runs (coordinate, "
	    "pid, proc_start, reason, started_at, artifact) VALUES "
	    "(?, ?, ?, ?, ?, ?)", -1, &st, NULL) != SQLITE_OK)
		return;
	sqlite3_bind_text(st, 1, s->c.name, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, s->pid);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)s->pstart);
	sqlite3_bind_text(st, 4, why, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, store_now_ms());
	sqlite3_bind_text(st, 6, json_string_value(json_object_get(s->spec,
	    "artifact")), -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		sup_store_failed(s, "run");
	sqlite3_finalize(st);
}

/* Ends every open incarnation row (an adoption opens a second one). */
static void
sup_run_close(struct svc *s)
{
	sqlite3		*db = store_db();
	sqlite3_stmt	*st;

	if (sqlite3_prepare_v2(db, "UPDATE service_runs SET ended_at = ?, "
	    "exit_code = ?, exit_signal = ? WHERE coordinate = ? AND pid = ? "
	    "AND ended_at IS NULL", -1, &st, NULL) != SQLITE_OK)
		return;
	sqlite3_bind_int64(st, 1, s->exit_ms);
	if (s->exit_code >= 0)
		sqlite3_bind_int(st, 2, s->exit_code);
	if (s->exit_sig > 0)
		sqlite3_bind_int(st, 3, s->exit_sig);
	sqlite3_bind_text(st, 4, s->c.name, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 5, s->pid);
	if (sqlite3_step(st) != SQLITE_DONE)
		sup_store_failed(s, "run");
	sqlite3_finalize(st);
}

/*
 * A write of this wake-up failed (a full disk, say): the whole wake-up
 * is undone at the commit, as if the commit had failed.
 */
static void
sup_store_failed(struct svc *s, const char *what)
{
	sqlite3	*db = store_db();

	log_error("sup", "%s: cannot %s: %s", s->c.name, what,
	    sqlite3_errmsg(db));
	if (sup_w.failed[0] == '\0')
		snprintf(sup_w.failed, sizeof(sup_w.failed), "%s",
		    sqlite3_errmsg(db));
}

static void
sup_begin(void)
{
	sqlite3	*db = store_db();

	sup_w.seq++;
	sup_w.failed[0] = '\0';
	sup_w.cmds = sup_w.exits = sup_w.timers = sup_w.spawns = 0;
	sup_w.nspawned = 0;
	sup_w.nsignals = 0;
	sup_w.open = 1;
	if (db != NULL && sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL,
	    NULL) != SQLITE_OK)
		log_error("sup", "begin: %s", sqlite3_errmsg(db));
}

/* Commits the wake-up's writes, then wakes those waiting on replies. */
static void
sup_commit(void)
{
	sqlite3		*db = store_db();
	struct sup_cmd	*c, *next;
	struct sup_task	*t;
	size_t		 i;

	if (db != NULL && (sup_w.failed[0] != '\0' ||
	    (!sqlite3_get_autocommit(db) && sqlite3_exec(db, "COMMIT", NULL,
	    NULL, NULL) != SQLITE_OK))) {
		char	why[512];

		snprintf(why, sizeof(why), "%s", sup_w.failed[0] != '\0' ?
		    sup_w.failed : sqlite3_errmsg(db));
		log_error("sup", "commit: %s: undoing this wake-up", why);
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		sup_undo(why);
	}
	sup_w.open = 0;
	/* Stops and drains the store now records (none after an undo). */
	for (i = 0; i < sup_w.nsignals; i++)
		sup_signal(&sup_w.signals[i]);
	sup_w.nsignals = 0;
	if (sup_svc_listen != NULL)
		sup_tell_services();
	/* Slow work for what is now committed (a purge). */
	while ((t = sup_w.tasks) != NULL) {
		sup_w.tasks = t->next;
		sup_bg_post(t);
	}
	for (i = 0; i < sup_w.nforgot; i++)
		free(sup_w.forgot[i]);
	sup_w.nforgot = 0;
	/* Workers claim committed rows only. */
	if (sup_wake_jobs)
		jobs_wake();
	sup_wake_jobs = 0;
	/* Listeners read the store: tell them once it holds the change. */
	if (sup_dirty && sup_listen != NULL)
		sup_listen();
	sup_dirty = 0;
	if (sup_replies == NULL)
		return;
	pthread_mutex_lock(&sup_mtx);
	for (c = sup_replies; c != NULL; c = next) {
		next = c->next;
		c->done = 1;
	}
	sup_replies = NULL;
	pthread_cond_broadcast(&sup_cond);
	pthread_mutex_unlock(&sup_mtx);
}

/* Reads the row of name back into memory, to be booted at the poll. */
static void
sup_reload(const char *name)
{
	sqlite3		*db = store_db();
	sqlite3_stmt	*st;
	struct svc	*s;

	if (sqlite3_prepare_v2(db, "SELECT coordinate, "
	    "coalesce(secret_spec, spec), "
	    "desired_state, state, pid, proc_start, started_at, restarts, "
	    "uid, gid, job_id, reason, last_exit_code, last_exit_signal, "
	    "last_exit_at, ending FROM services WHERE coordinate = ?", -1, &st,
	    NULL) != SQLITE_OK)
		return;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW) {
		sup_load_row(st);
		if ((s = sup_find(name)) != NULL) {
			/*
			 * The spec's settings now, not at the next poll: until
			 * then the decision table would see zeros (no prepare,
			 * no restarts, no stop signal).
			 */
			sup_params(s);
			s->recover = 1;
			sup_poll_due = store_mono_ms() + SUP_POLL_MS;
		}
	}
	sqlite3_finalize(st);
}

/*
 * The services this (committed) wake-up deleted, then those it changed
 * (one deleted and made again is last told as there).
 */
static void
sup_tell_services(void)
{
	size_t	i;

	for (i = 0; i < sup_w.nforgot; i++)
		if (sup_w.forgot[i] != NULL)
			sup_svc_listen(sup_w.forgot[i], 1);
	for (i = 0; i < sup_nsvcs; i++)
		if (sup_svcs[i]->touched == sup_w.seq)
			sup_svc_listen(sup_svcs[i]->c.name, 0);
}

/*
 * The commit failed: nothing this wake-up wrote is stored.  What it
 * started is killed (it would run untracked), the services it touched
 * are read back as the store has them and looked at again a second
 * later, and every command is answered that nothing changed.
 */
static void
sup_undo(const char *why)
{
	struct sup_cmd	*c;
	struct sup_task	*t;
	char		**names;
	size_t		  i, n = 0;

	for (i = 0; i < sup_w.nspawned; i++) {
		(void)kill(-sup_w.spawned[i], SIGKILL);
		(void)kill(sup_w.spawned[i], SIGKILL);
		(void)waitpid(sup_w.spawned[i], NULL, 0);
		log_warn("sup", "pid %d killed: its start could not be "
		    "recorded", (int)sup_w.spawned[i]);
	}
	while ((t = sup_w.tasks) != NULL) {
		sup_w.tasks = t->next;
		free(t);
	}
	if (sup_w.nsignals > 0)
		log_warn("sup", "%zu signals not sent: the change that asked "
		    "for them could not be recorded", sup_w.nsignals);
	sup_w.nsignals = 0;
	names = calloc(sup_nsvcs + sup_w.nforgot + 1, sizeof(*names));
	for (i = 0; names != NULL && i < sup_w.nforgot; i++)
		names[n++] = sup_w.forgot[i];
	for (i = 0; names != NULL && i < sup_nsvcs; i++)
		if (sup_svcs[i]->touched == sup_w.seq)
			names[n++] = strdup(sup_svcs[i]->c.name);
	for (i = 0; i < n; i++) {
		struct svc	*s = names[i] ? sup_find(names[i]) : NULL;

		if (s != NULL) {
			if (s->has_uid && sup_dynamic(s) && sup_uids_ok)
				uid_release(s->uid);
			sup_drop(s);
		}
	}
	for (i = 0; i < n; i++)
		if (names[i] != NULL)
			sup_reload(names[i]);
	for (i = sup_w.nforgot; i < n; i++)
		free(names[i]);
	free(names);
	for (c = sup_replies; c != NULL; c = c->next) {
		c->rc = ND_UNAVAILABLE;
		snprintf(c->err, sizeof(c->err), "the store could not save the "
		    "change (%.400s); nothing was changed", why);
	}
	sup_dirty = 0;
	sup_wake_jobs = 0;
}

/* ------------------------------------------------------------ processes */

/* Field 22 of /proc/<pid>/stat, the start time; -1 if gone or a zombie. */
static int
sup_proc_start(pid_t pid, unsigned long long *out)
{
	char	buf[1024], *p;
	int	field;

	if (sup_proc_read(pid, "stat", buf, sizeof(buf)) <= 0)
		return -1;
	/* The command name may hold spaces and ')': skip to the last ')'. */
	if ((p = strrchr(buf, ')')) == NULL || p[1] != ' ')
		return -1;
	p += 2;
	if (*p == 'Z' || *p == 'X')
		return -1;
	for (field = 3; field < 22 && p != NULL; field++) {
		p = strchr(p, ' ');
		if (p != NULL)
			p++;
	}
	if (p == NULL)
		return -1;
	*out = strtoull(p, NULL, 10);
	return 0;
}

/*
 * Services run as other uids and must reach their artifact and runtime
 * directory: the prefix and its parents need search permission for
 * others.  The prefix itself gets it (it may have been made 0700, as
 * mkdtemp does); a parent that lacks it is reported, not changed.
 */
static void
sup_reachable(const char *prefix)
{
	char		 path[PATH_MAX], *slash;
	struct stat	 st;

	if (stat(prefix, &st) == 0 && (st.st_mode & 0001) == 0) {
		if (chmod(prefix, (st.st_mode & 07777) | 0011) == 0)
			log_warn("sup", "%s: search permission for others "
			    "added, so services can reach their files",
			    prefix);
		else
			log_warn("sup", "%s: services will not reach their "
			    "files: %s", prefix, strerror(errno));
	}
	snprintf(path, sizeof(path), "%s", prefix);
	while ((slash = strrchr(path, '/')) != NULL && slash != path) {
		*slash = '\0';
		if (stat(path, &st) == 0 && (st.st_mode & 0001) == 0)
			log_warn("sup", "%s has no search permission for "
			    "others: services running as their own uid cannot "
			    "reach the prefix", path);
	}
}

/* A file of /proc/<pid>, read whole into buf; its length or -1. */
static ssize_t
sup_proc_read(pid_t pid, const char *what, char *buf, size_t len)
{
	char	path[64];
	ssize_t	n;
	int	fd;

	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, what);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return -1;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n >= 0)
		buf[n] = '\0';
	return n;
}

/* One process of /proc if it looks like a service: 0 and *o. */
static int
sup_orphan_read(pid_t pid, struct sup_orphan *o)
{
	static const char	 key[] = "NODEE_COORDINATE=";
	char			 env[65536], stat[1024], *p;
	char			 path[64];
	ssize_t			 len;
	size_t			 k;
	long			 sid;

	memset(o, 0, sizeof(*o));
	o->pid = pid;
	/* Field 6 of stat, after the command in parentheses. */
	if (sup_proc_read(pid, "stat", stat, sizeof(stat)) <= 0 ||
	    (p = strrchr(stat, ')')) == NULL ||
	    sscanf(p + 1, " %*c %*d %*d %ld", &sid) != 1 || sid != pid)
		return -1;
	if ((len = sup_proc_read(pid, "environ", env, sizeof(env))) <= 0)
		return -1;
	for (k = 0; k < (size_t)len; k += strlen(env + k) + 1)
		if (strncmp(env + k, key, sizeof(key) - 1) == 0) {
			snprintf(o->coord, sizeof(o->coord), "%s",
			    env + k + sizeof(key) - 1);
			break;
		}
	if (o->coord[0] == '\0')
		return -1;
	snprintf(path, sizeof(path), "/proc/%d/cwd", (int)pid);
	if ((len = readlink(path, o->cwd, sizeof(o->cwd) - 1)) <= 0)
		return -1;
	o->cwd[len] = '\0';
	return sup_proc_start(pid, &o->start);
}

/*
 * Processes that look like services nodee started: session leaders whose
 * environment carries NODEE_COORDINATE (set by spawn.c), with their
 * working directory.  Read from /proc once per start-up, however many
 * services need it.
 */
static void
sup_orphans_scan(void)
{
	DIR			*d;
	struct dirent		*de;
	struct sup_orphan	 o, *n;
	pid_t			 pid;
	char			*p;

	sup_orphans_read = 1;
	if ((d = opendir("/proc")) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if ((pid = (pid_t)strtol(de->d_name, &p, 10)) <= 0 ||
		    *p != '\0' || sup_orphan_read(pid, &o) != 0)
			continue;
		if ((n = realloc(sup_orphans, (sup_norphans + 1) *
		    sizeof(*n))) == NULL)
			break;
		sup_orphans = n;
		sup_orphans[sup_norphans++] = o;
	}
	closedir(d);
}

/*
 * A live process that is this service although no record says so: a
 * session leader whose working directory is the runtime directory and
 * whose environment carries NODEE_COORDINATE=<coordinate>.  (An
 * operator's shell in that directory has neither the session nor the
 * variable.)  Returns its pid, or 0.
 */
static pid_t
sup_unrecorded(struct svc *s, unsigned long long *start)
{
	char	rdir[PATH_MAX];
	size_t	i;

	if (coord_runtime_dir(sup_cf, &s->c, rdir, sizeof(rdir)) != 0)
		return 0;
	if (!sup_orphans_read)
		sup_orphans_scan();
	for (i = 0; i < sup_norphans; i++)
		if (strcmp(sup_orphans[i].coord, s->c.name) == 0 &&
		    strcmp(sup_orphans[i].cwd, rdir) == 0 &&
		    sup_find_pid(sup_orphans[i].pid) == NULL) {
			*start = sup_orphans[i].start;
			return sup_orphans[i].pid;
		}
	return 0;
}

/* xorshift64*, seeded from getrandom(): each daemon draws its own. */
static uint32_t
sup_rand(void)
{
	sup_rng ^= sup_rng >> 12;
	sup_rng ^= sup_rng << 25;
	sup_rng ^= sup_rng >> 27;
	return (uint32_t)((sup_rng * 2685821657736338717ULL) >> 32) | 1;
}

/*
 * Answers a command.  The caller is woken only after sup_commit(), so
 * what it then reads from the store is what the command did.
 */
static void
sup_reply(struct sup_cmd *c, enum nd_rc rc, const char *fmt, ...)
{
	char	buf[sizeof(c->err)];
	va_list	ap;

	json_decref(c->spec);
	c->spec = NULL;
	if (!c->wait) {
		free(c);
		return;
	}
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	memcpy(c->err, buf, sizeof(c->err));
	c->rc = rc;
	c->next = sup_replies;
	sup_replies = c;
}

/* ------------------------------------------------------------ background */

static void
sup_bg_post(struct sup_task *t)
{
	t->next = NULL;
	pthread_mutex_lock(&sup_bg_mtx);
	if (sup_bg_tail != NULL)
		sup_bg_tail->next = t;
	else
		sup_bg_head = t;
	sup_bg_tail = t;
	pthread_cond_signal(&sup_bg_cond);
	pthread_mutex_unlock(&sup_bg_mtx);
}

/*
 * The background thread: slow work the supervisor must not wait for,
 * one task at a time, in order.  It shares no state with the supervisor
 * but what a task carries; a purge's end comes back as a message.
 */
static void *
sup_bg_main(void *arg)
{
	struct sup_task	*t;

	(void)arg;
	for (;;) {
		pthread_mutex_lock(&sup_bg_mtx);
		while (sup_bg_head == NULL && !sup_bg_quit)
			pthread_cond_wait(&sup_bg_cond, &sup_bg_mtx);
		if ((t = sup_bg_head) != NULL && (sup_bg_head = t->next) ==
		    NULL)
			sup_bg_tail = NULL;
		pthread_mutex_unlock(&sup_bg_mtx);
		if (t == NULL)
			break;
		if (t->kind == TASK_ROTATE) {
			if (sup_bg_rotate_due(&t->c))
				(void)rundir_rotate(sup_cf, &t->c, t->uid,
				    sup_cf->log_max, sup_cf->log_keep);
		} else
			sup_bg_purge(t);
		free(t);
	}
	return NULL;
}

/*
 * Two lstat()s decide whether a service's logs need the careful walk of
 * rundir_rotate() (a descriptor per path component): with a thousand
 * services, every log check otherwise costs nine thousand opens.  Only
 * metadata is read here; nothing is done through the path, and a link
 * in place of a log is not followed, so it never looks due.
 */
static int
sup_bg_rotate_due(const struct coord *c)
{
	static const char *const streams[] = { "stdout", "stderr" };
	char		 dir[PATH_MAX], p[PATH_MAX + 16];
	struct stat	 st;
	size_t		 i;

	if (coord_runtime_dir(sup_cf, c, dir, sizeof(dir)) != 0)
		return 1;
	for (i = 0; i < 2; i++) {
		snprintf(p, sizeof(p), "%s/log/%s", dir, streams[i]);
		if (lstat(p, &st) == 0 && S_ISREG(st.st_mode) &&
		    (size_t)st.st_size >= sup_cf->log_max)
			return 1;
	}
	return 0;
}

/*
 * A purge: what the service left running (a child that made itself a
 * session leader outlives the stop) is ended first, so that it does not
 * write into the tree while it goes; then the tree, through descriptors
 * (fs_rmtree never follows a link).  Then the uid may be given out.
 */
static void
sup_bg_purge(const struct sup_task *t)
{
	char	name[32];

	if (t->kill_uid)
		sup_kill_uid(t->uid);
	if (fs_rmtree(t->path) != 0)
		log_warn("sup", "%s: cannot purge %s: %s", t->c.name, t->path,
		    strerror(errno));
	if (t->kill_uid) {
		snprintf(name, sizeof(name), "%u", (unsigned)t->uid);
		sup_post(SUP_PURGED, name, (int64_t)t->uid, 0, NULL);
	}
}

/* SIGKILL to every process of uid: kill(-1) from a child running as it. */
static void
sup_kill_uid(uid_t uid)
{
	pid_t	pid;

	if ((pid = fork()) == -1) {
		log_warn("sup", "cannot fork to end uid %u: %s", (unsigned)uid,
		    strerror(errno));
		return;
	}
	if (pid == 0) {
		if (setresgid(uid, uid, uid) == 0 && setresuid(uid, uid, uid) ==
		    0)
			(void)kill(-1, SIGKILL);
		_exit(0);
	}
	(void)waitpid(pid, NULL, 0);
}
