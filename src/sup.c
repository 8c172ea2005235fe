/*
 * sup: the supervisor thread.
 *
 * Everything about a service process happens here and only here: fork and
 * exec, signals, reaping, the restart policy and its timers.  The thread
 * sleeps in epoll_wait() on four kinds of descriptors:
 *
 *   a signalfd for SIGCHLD      children (and, as we are a subreaper,
 *                               their orphans) that died: waitpid loop
 *   an eventfd                  a command was queued (sup_command)
 *   a timerfd                   the earliest backoff, kill or drain
 *                               deadline, or the log-size check
 *   a pidfd per adopted process a service a previous nodee started; it
 *                               is not our child, so no SIGCHLD comes
 *
 * Each state change is written to the services row before the next event
 * is handled, so a daemon killed at any moment finds in the store what
 * runs (pid and start time) and what should run.
 */
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <linux/close_range.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pthread.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "artifact.h"
#include "coord.h"
#include "fs.h"
#include "jobs.h"
#include "log.h"
#include "prepare.h"
#include "service.h"
#include "store.h"
#include "sup.h"

#define SUP_WINDOW_MAX		64
#define SUP_GROUPS_MAX		64

enum svc_state {
	ST_STARTING, ST_RUNNING, ST_BACKOFF, ST_DRAINING, ST_STOPPING,
	ST_STOPPED, ST_EXITED, ST_FAILED, ST_PREPARING,
};

static const char *const sup_state_names[] = { "starting", "running",
	"backoff", "draining", "stopping", "stopped", "exited", "failed",
	"preparing" };

enum svc_timer { TM_NONE, TM_START, TM_KILL, TM_DRAIN };
enum svc_after { AF_NONE, AF_RESTART, AF_DELETE };

struct svc {
	struct coord		 c;
	json_t			*spec;
	int			 desired;	/* 1: running */
	enum svc_state		 state;
	pid_t			 pid;
	unsigned long long	 pstart;	/* /proc/<pid>/stat field 22 */
	int			 pidfd;		/* adopted only, else -1 */
	int64_t			 started_ms;	/* wall clock */
	int64_t			 started_mono;
	int64_t			 restarts;
	int64_t			 window[SUP_WINDOW_MAX];
	int			 nwin;
	int			 level;		/* backoff doublings */
	enum svc_timer		 timer;
	int64_t			 due;		/* monotonic ms */
	enum svc_after		 after;
	int			 purge;
	int64_t			 job;		/* install waited for */
	int64_t			 prep_job;	/* prepare job in flight */
	int			 prep_again;	/* spec or start changed meanwhile */
	int			 prepared;	/* its job succeeded: exec now */
	char			 why[16];	/* of the start being prepared */
	char			 ending[8];	/* "drain", "stop": a snapshot? */
	uid_t			 uid;
	gid_t			 gid;
	int			 has_uid;
	char			 reason[512];
	int			 exit_known;
	int			 exit_code, exit_sig;
	int64_t			 exit_ms;
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
	int			 status;
	char			 err[512];
	struct sup_cmd		*next;
};

/* A process that looks like a service, found in /proc at start-up. */
struct sup_orphan {
	pid_t			 pid;
	unsigned long long	 start;
	char			 coord[4 * (COORD_LABEL_MAX + 1)];
	char			 cwd[PATH_MAX];
};

static const struct config	*sup_cf;
static struct sup_orphan	*sup_orphans;	/* during sup_load() only */
static size_t			 sup_norphans;
static int			 sup_orphans_read;
static pthread_t		 sup_thread;
static int			 sup_running;
static int			 sup_epfd = -1, sup_sigfd = -1, sup_evfd = -1;
static int			 sup_tfd = -1;
static pthread_mutex_t		 sup_mtx = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t		 sup_cond = PTHREAD_COND_INITIALIZER;
static struct sup_cmd		*sup_head, *sup_tail;
static struct svc		**sup_svcs;
static size_t			 sup_nsvcs, sup_capsvcs;
static int64_t			 sup_rotate_due;
static int			 sup_root;
static char			 sup_tag_sig, sup_tag_ev, sup_tag_timer;
static sup_listener		 sup_listen;
static int			 sup_loaded;
static struct sup_cmd		*sup_replies;	/* answered, not yet told */
static int			 sup_wake_jobs;	/* jobs queued this wake-up */
static int			 sup_dirty;	/* a change since the commit */

static void	*sup_main(void *);
static void	 sup_load(void);
static void	 sup_handle(struct sup_cmd *);
static void	 sup_enqueue(struct sup_cmd *);
static int	 sup_call(struct sup_cmd *, int64_t *, char *, size_t);
static void	 sup_begin(void);
static void	 sup_commit(void);
static int	 sup_job_ended(struct svc *);
static void	 sup_renew(struct svc *);
static void	 sup_reap(void);
static void	 sup_timers(void);
static void	 sup_arm(void);
static struct svc	*sup_find(const char *);
static struct svc	*sup_find_pid(pid_t);
static struct svc	*sup_new(const struct coord *, json_t *);
static void	 sup_forget(struct svc *);
static void	 sup_launch(struct svc *, const char *);
static void	 sup_prepare_ended(struct svc *, int, const char *);
static void	 sup_cancel_prepare(struct svc *);
static void	 sup_snapshot(struct svc *, const char *);
static void	 sup_kill_uid(uid_t);
static int	 sup_spawn(struct svc *, const char *, int, pid_t *, char *,
		    size_t);
static void	 sup_exited(struct svc *, int, int);
static void	 sup_begin_stop(struct svc *);
static void	 sup_begin_drain(struct svc *);
static void	 sup_kill(struct svc *, int);
static void	 sup_set_state(struct svc *, enum svc_state, const char *);
static void	 sup_save(struct svc *);
static void	 sup_event(struct svc *, const char *, json_t *);
static void	 sup_run_open(struct svc *, const char *);
static void	 sup_run_close(struct svc *);
static int	 sup_assign_uid(struct svc *, char *, size_t);
static int	 sup_rundir(struct svc *, char *, size_t, char *, size_t);
static void	 sup_rotate_logs(void);
static int	 sup_proc_start(pid_t, unsigned long long *);
static void	 sup_reachable(const char *);
static pid_t	 sup_unrecorded(struct svc *, unsigned long long *);
static void	 sup_orphans_scan(void);
static void	 sup_reply(struct sup_cmd *, int, const char *, ...)
		    __attribute__((format(printf, 3, 4)));

/* fn is called, on the supervisor thread, after a change is committed. */
void
sup_on_change(sup_listener fn)
{
	sup_listen = fn;
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
	sigset_t		set;

	sup_cf = cf;
	sup_root = geteuid() == 0;
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
	epoll_ctl(sup_epfd, EPOLL_CTL_ADD, sup_sigfd, &ev);
	ev.data.ptr = &sup_tag_ev;
	epoll_ctl(sup_epfd, EPOLL_CTL_ADD, sup_evfd, &ev);
	ev.data.ptr = &sup_tag_timer;
	epoll_ctl(sup_epfd, EPOLL_CTL_ADD, sup_tfd, &ev);
	if (!sup_root)
		log_warn("sup", "nodee is not root: services run as nodee's "
		    "own user, without a private mount namespace");
	else
		sup_reachable(cf->prefix);
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
	sup_running = 0;
	close(sup_epfd);
	close(sup_sigfd);
	close(sup_evfd);
	close(sup_tfd);
}

/*
 * Queues a command and waits until the supervisor has applied it.
 * Returns an HTTP-like status (200, 201, 404, 409, ...) with err.
 * Takes ownership of spec.
 */
int
sup_command(enum sup_op op, const char *coord, json_t *spec, int64_t job,
    int flag, char *err, size_t errlen)
{
	struct sup_cmd	*c;

	if ((c = calloc(1, sizeof(*c))) == NULL) {
		json_decref(spec);
		if (err != NULL)
			snprintf(err, errlen, "out of memory");
		return 500;
	}
	c->op = op;
	snprintf(c->coord, sizeof(c->coord), "%s", coord);
	c->spec = spec;
	c->job = job;
	c->flag = flag;
	return sup_call(c, NULL, err, errlen);
}

/* Queues c, waits for its answer, frees it: status, *job and err. */
static int
sup_call(struct sup_cmd *c, int64_t *job, char *err, size_t errlen)
{
	int	status;

	c->wait = 1;
	sup_enqueue(c);
	pthread_mutex_lock(&sup_mtx);
	while (!c->done)
		pthread_cond_wait(&sup_cond, &sup_mtx);
	pthread_mutex_unlock(&sup_mtx);
	status = c->status;
	if (job != NULL)
		*job = c->job;
	if (err != NULL)
		snprintf(err, errlen, "%s", c->err);
	free(c);
	return status;
}

/* Called by the install job: services waiting for gav may start. */
void
sup_artifact_done(const char *gav, int ok, const char *error)
{
	struct sup_cmd	*c;

	if (!sup_running || (c = calloc(1, sizeof(*c))) == NULL)
		return;
	c->op = SUP_ARTIFACT;
	snprintf(c->coord, sizeof(c->coord), "%s", gav);
	c->flag = ok;
	snprintf(c->text, sizeof(c->text), "%s", error ? error : "");
	sup_enqueue(c);
}

/*
 * A snapshot now, queued by the supervisor so that it is ordered with a
 * delete.  Returns 202 with *job, or 404/409 with err.
 */
int
sup_snapshot_now(const char *coord, int64_t *job, char *err, size_t errlen)
{
	struct sup_cmd	*c;

	if ((c = calloc(1, sizeof(*c))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return 500;
	}
	c->op = SUP_SNAPSHOT;
	snprintf(c->coord, sizeof(c->coord), "%s", coord);
	return sup_call(c, job, err, errlen);
}

/* Called by the prepare job: the start it prepared may go on. */
void
sup_prepared(const char *coord, int64_t job, int ok, const char *error)
{
	struct sup_cmd	*c;

	if (!sup_running || (c = calloc(1, sizeof(*c))) == NULL)
		return;
	c->op = SUP_PREPARED;
	snprintf(c->coord, sizeof(c->coord), "%s", coord);
	c->job = job;
	c->flag = ok;
	snprintf(c->text, sizeof(c->text), "%s", error ? error : "");
	sup_enqueue(c);
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
	struct sup_cmd		*c, *next;
	uint64_t		 n;
	int			 i, k, quit = 0;

	(void)arg;
	sup_rotate_due = store_mono_ms() + (int64_t)sup_cf->log_check_s * 1000;
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
		/*
		 * Everything one wake-up writes is one transaction: one
		 * fsync, not five, between a crash and the restart.  The
		 * fork comes before the commit either way (a process must
		 * exist before its pid can be recorded).
		 */
		sup_begin();
		for (i = 0; i < k; i++) {
			void	*tag = evs[i].data.ptr;

			if (tag == &sup_tag_sig) {
				struct signalfd_siginfo	si;

				while (read(sup_sigfd, &si, sizeof(si)) > 0)
					;
				sup_reap();
			} else if (tag == &sup_tag_timer) {
				if (read(sup_tfd, &n, sizeof(n)) < 0 &&
				    errno != EAGAIN)
					log_warn("sup", "timerfd: %s",
					    strerror(errno));
				sup_timers();
			} else if (tag == &sup_tag_ev) {
				if (read(sup_evfd, &n, sizeof(n)) < 0 &&
				    errno != EAGAIN)
					log_warn("sup", "eventfd: %s",
					    strerror(errno));
				pthread_mutex_lock(&sup_mtx);
				c = sup_head;
				sup_head = sup_tail = NULL;
				pthread_mutex_unlock(&sup_mtx);
				for (; c != NULL; c = next) {
					next = c->next;
					if (c->op == SUP_QUIT)
						quit = 1;
					sup_handle(c);
				}
			} else {
				/* An adopted process ended. */
				struct svc	*s = tag;

				epoll_ctl(sup_epfd, EPOLL_CTL_DEL, s->pidfd,
				    NULL);
				close(s->pidfd);
				s->pidfd = -1;
				sup_exited(s, 0, 0);
			}
		}
		sup_commit();
	}
	/* Services keep running; only our bookkeeping goes. */
	while (sup_nsvcs > 0) {
		struct svc	*s = sup_svcs[--sup_nsvcs];

		if (s->pidfd != -1)
			close(s->pidfd);
		json_decref(s->spec);
		free(s);
	}
	free(sup_svcs);
	sup_svcs = NULL;
	sup_capsvcs = 0;
	store_close();
	return NULL;
}

/*
 * At start-up: every service in the store.  A live process (same pid and
 * same start time as recorded) is adopted; otherwise a service that
 * should run is started.
 */
static void
sup_load(void)
{
	sqlite3		*db = store_db();
	sqlite3_stmt	*st;
	json_error_t	 je;
	struct coord	 c;
	struct svc	*s;
	char		 err[256];
	size_t		 i;

	if (db == NULL || sqlite3_prepare_v2(db, "SELECT coordinate, "
	    "coalesce(secret_spec, spec), "
	    "desired_state, state, pid, proc_start, started_at, restarts, "
	    "uid, gid, job_id, reason, last_exit_code, last_exit_signal, "
	    "last_exit_at, ending FROM services ORDER BY coordinate", -1, &st,
	    NULL) !=
	    SQLITE_OK) {
		log_error("sup", "cannot load services");
		return;
	}
	while (sqlite3_step(st) == SQLITE_ROW) {
		json_t	*spec;

		if (coord_parse((const char *)sqlite3_column_text(st, 0), &c,
		    err, sizeof(err)) != 0) {
			log_warn("sup", "skipping a bad service row: %s", err);
			continue;
		}
		spec = json_loads((const char *)sqlite3_column_text(st, 1), 0,
		    &je);
		if (spec == NULL || (s = sup_new(&c, spec)) == NULL) {
			json_decref(spec);
			continue;
		}
		s->desired = strcmp((const char *)sqlite3_column_text(st, 2),
		    "running") == 0;
		for (i = 0; i < sizeof(sup_state_names) /
		    sizeof(sup_state_names[0]); i++)
			if (strcmp((const char *)sqlite3_column_text(st, 3),
			    sup_state_names[i]) == 0)
				s->state = (enum svc_state)i;
		s->pid = (pid_t)sqlite3_column_int(st, 4);
		s->pstart = (unsigned long long)sqlite3_column_int64(st, 5);
		s->started_ms = sqlite3_column_int64(st, 6);
		s->restarts = sqlite3_column_int64(st, 7);
		if (sqlite3_column_type(st, 8) != SQLITE_NULL) {
			s->uid = (uid_t)sqlite3_column_int(st, 8);
			s->gid = (gid_t)sqlite3_column_int(st, 9);
			s->has_uid = 1;
		}
		s->job = sqlite3_column_int64(st, 10);
		if (sqlite3_column_type(st, 11) != SQLITE_NULL)
			snprintf(s->reason, sizeof(s->reason), "%s",
			    sqlite3_column_text(st, 11));
		if (sqlite3_column_type(st, 14) != SQLITE_NULL) {
			s->exit_known = 1;
			s->exit_code = sqlite3_column_type(st, 12) ==
			    SQLITE_NULL ? -1 : sqlite3_column_int(st, 12);
			s->exit_sig = sqlite3_column_int(st, 13);
			s->exit_ms = sqlite3_column_int64(st, 14);
		}
		if (sqlite3_column_type(st, 15) != SQLITE_NULL)
			snprintf(s->ending, sizeof(s->ending), "%s",
			    sqlite3_column_text(st, 15));
	}
	sqlite3_finalize(st);

	for (i = 0; i < sup_nsvcs; i++) {
		unsigned long long	ps;
		pid_t			found;
		int			fd;

		s = sup_svcs[i];
		/*
		 * Not the recorded process: perhaps one nodee forked but
		 * died before it recorded the pid.  Adopting it is what
		 * keeps a service from running twice.
		 */
		if (!(s->pid > 0 && sup_proc_start(s->pid, &ps) == 0 &&
		    ps == s->pstart) && (found = sup_unrecorded(s, &ps)) > 0) {
			log_warn("sup", "%s: pid %d runs as this service but "
			    "was never recorded; adopting it", s->c.name,
			    (int)found);
			if (s->pid > 0) {
				s->exit_known = 1;
				s->exit_code = -1;
				s->exit_sig = 0;
				s->exit_ms = store_now_ms();
				sup_run_close(s);
			}
			s->pid = found;
			s->pstart = ps;
			s->started_ms = store_now_ms();
		}
		if (s->pid > 0 && sup_proc_start(s->pid, &ps) == 0 &&
		    ps == s->pstart &&
		    (fd = (int)syscall(SYS_pidfd_open, s->pid, 0)) != -1) {
			struct epoll_event	ev;

			s->pidfd = fd;
			ev.events = EPOLLIN;
			ev.data.ptr = s;
			epoll_ctl(sup_epfd, EPOLL_CTL_ADD, fd, &ev);
			s->started_mono = store_mono_ms() - (store_now_ms() -
			    s->started_ms);
			sup_run_open(s, "adopted");
			log_info("sup", "%s: adopted pid %d", s->c.name,
			    (int)s->pid);
			s->state = ST_RUNNING;
			sup_save(s);
			sup_event(s, "service.adopted", json_pack("{s:i}",
			    "pid", (int)s->pid));
			/*
			 * A stop or drain the last nodee began goes on, with
			 * a fresh signal and a fresh SIGKILL deadline.
			 */
			if (!s->desired)
				sup_begin_stop(s);
			continue;
		}
		if (s->pid > 0) {
			/* It died while no nodee watched: exit unknown. */
			s->exit_known = 1;
			s->exit_code = -1;
			s->exit_sig = 0;
			s->exit_ms = store_now_ms();
			sup_run_close(s);
			s->pid = 0;
			s->pstart = 0;
		}
		if (s->desired && s->job > 0) {
			json_t	*j = jobs_get(db, s->job);
			const char *js = json_string_value(json_object_get(j,
			    "state"));

			if (js != NULL && (strcmp(js, "queued") == 0 ||
			    strcmp(js, "running") == 0)) {
				/* Recovery queued it again; its end starts s. */
				if (strcmp(json_string_value(json_object_get(j,
				    "kind")), "service.prepare") == 0) {
					s->prep_job = s->job;
					s->job = 0;
					snprintf(s->why, sizeof(s->why), "boot");
					s->state = ST_PREPARING;
				} else
					s->state = ST_STARTING;
				json_decref(j);
				sup_save(s);
				continue;
			}
			/*
			 * A prepare job that ended while no supervisor heard
			 * of it: its outcome stands.  A failed one is not run
			 * again (that would also undo the limit on jobs a
			 * crash interrupts); a successful one starts s.
			 */
			if (js != NULL && s->state == ST_PREPARING &&
			    strcmp(json_string_value(json_object_get(j,
			    "kind")), "service.prepare") == 0) {
				s->job = 0;
				snprintf(s->why, sizeof(s->why), "boot");
				/* A PUT may have come after it began. */
				if (strcmp(js, "succeeded") == 0)
					s->prepared = prepare_job_spec_is(db,
					    s->job, s->spec);
				else {
					snprintf(s->reason, sizeof(s->reason),
					    "prepare %.490s", json_string_value(
					    json_object_get(j, "error")) ?
					    json_string_value(json_object_get(j,
					    "error")) : js);
					s->state = ST_FAILED;
				}
			}
			json_decref(j);
			s->job = 0;
		}
		/*
		 * What should run and did (or was about to) runs again; a
		 * service that gave up or ended by its policy stays so until
		 * someone starts it, across daemon restarts too.
		 */
		if (s->desired && s->state != ST_FAILED && s->state != ST_EXITED)
			sup_launch(s, "boot");
		else if (s->desired)
			sup_save(s);
		else if (s->state == ST_RUNNING || s->state == ST_STOPPING ||
		    s->state == ST_DRAINING || s->state == ST_BACKOFF ||
		    s->state == ST_STARTING || s->state == ST_PREPARING) {
			sup_set_state(s, ST_STOPPED, NULL);
			/* A stop or drain that ended while no nodee watched. */
			if (s->ending[0] != '\0' && prepare_snapshot_on(s->spec,
			    s->ending))
				sup_snapshot(s, s->ending);
			s->ending[0] = '\0';
			sup_save(s);
		}
	}
}

static void
sup_handle(struct sup_cmd *c)
{
	struct coord	 co;
	struct svc	*s;
	size_t		 i;
	int		 created = 0;

	switch (c->op) {
	case SUP_QUIT:
		sup_reply(c, 200, "%s", "");
		return;
	case SUP_ARTIFACT:
		for (i = 0; i < sup_nsvcs; i++) {
			s = sup_svcs[i];
			if (s->job <= 0 || strcmp(json_string_value(
			    json_object_get(s->spec, "artifact")), c->coord)
			    != 0)
				continue;
			s->job = 0;
			if (!c->flag) {
				snprintf(s->reason, sizeof(s->reason),
				    "artifact install failed: %.400s", c->text);
				sup_set_state(s, ST_FAILED, s->reason);
				continue;
			}
			if (!s->desired)
				sup_save(s);
			else
				sup_renew(s);
		}
		free(c);
		return;
	case SUP_PREPARED:
		if ((s = sup_find(c->coord)) != NULL && s->prep_job == c->job)
			sup_prepare_ended(s, c->flag, c->text);
		free(c);
		return;
	default:
		break;
	}

	s = sup_find(c->coord);
	if (c->op == SUP_PUT) {
		if (s == NULL) {
			if (coord_parse(c->coord, &co, c->err,
			    sizeof(c->err)) != 0) {
				json_decref(c->spec);
				sup_reply(c, 400, "%s", c->err);
				return;
			}
			if ((s = sup_new(&co, c->spec)) == NULL) {
				sup_reply(c, 500, "out of memory");
				return;
			}
			s->state = ST_STOPPED;
			created = 1;
		} else {
			json_decref(s->spec);
			s->spec = c->spec;
		}
		c->spec = NULL;
		s->desired = 1;
		s->after = AF_NONE;
		s->ending[0] = '\0';
		s->job = c->job;
		/* A prepare job in flight prepared the old spec. */
		if (s->prep_job > 0)
			s->prep_again = 1;
		s->reason[0] = '\0';
		if (created) {
			sqlite3		*db = store_db();
			sqlite3_stmt	*st;

			if (sqlite3_prepare_v2(db, "INSERT INTO services "
			    "(coordinate, spec, created_at, updated_at) VALUES "
			    "(?, '{}', ?, ?)", -1, &st, NULL) == SQLITE_OK) {
				sqlite3_bind_text(st, 1, s->c.name, -1,
				    SQLITE_STATIC);
				sqlite3_bind_int64(st, 2, store_now_ms());
				sqlite3_bind_int64(st, 3, store_now_ms());
				if (sqlite3_step(st) != SQLITE_DONE)
					log_error("sup", "%s: %s", s->c.name,
					    sqlite3_errmsg(db));
				sqlite3_finalize(st);
			}
		}
		sup_event(s, created ? "service.created" : "service.updated",
		    json_pack("{s:o}", "spec", prepare_spec_redact(s->spec)));
		if (s->job > 0 && sup_job_ended(s)) {
			/* The install ended before this command came. */
		} else if (s->job > 0) {
			if (s->pid <= 0)
				s->state = ST_STARTING;
			s->timer = TM_NONE;
			sup_save(s);
		} else
			sup_renew(s);
		sup_reply(c, created ? 201 : 200, "%s", "");
		return;
	}
	if (s == NULL) {
		sup_reply(c, 404, "no service %s", c->coord);
		return;
	}
	switch (c->op) {
	case SUP_START:
		s->desired = 1;
		s->ending[0] = '\0';
		if (s->state == ST_STOPPING || s->state == ST_DRAINING)
			s->after = AF_RESTART;
		else if (s->state == ST_BACKOFF) {
			s->timer = TM_NONE;
			sup_launch(s, "restart");
		} else if (s->state == ST_STOPPED || s->state == ST_EXITED ||
		    s->state == ST_FAILED) {
			s->nwin = 0;
			s->level = 0;
			sup_launch(s, "api");
		}
		sup_save(s);
		break;
	case SUP_STOP:
		s->desired = 0;
		s->after = AF_NONE;
		/* A stop cutting a drain short keeps the drain's snapshot. */
		if (strcmp(s->ending, "drain") != 0 ||
		    !prepare_snapshot_on(s->spec, "drain"))
			snprintf(s->ending, sizeof(s->ending), "stop");
		if (s->pid > 0) {
			sup_begin_stop(s);
			sup_save(s);	/* already stopping: desired changed */
		} else {
			int	was_backoff = s->state == ST_BACKOFF ||
			    (s->state == ST_PREPARING &&
			    strcmp(s->why, "restart") == 0);

			s->timer = TM_NONE;
			s->job = 0;
			sup_cancel_prepare(s);
			s->ending[0] = '\0';
			if (s->state != ST_EXITED && s->state != ST_FAILED)
				sup_set_state(s, ST_STOPPED, NULL);
			else
				sup_save(s);
			/* It ran and died; what it left is its state. */
			if (was_backoff && prepare_snapshot_on(s->spec, "stop"))
				sup_snapshot(s, "stop");
		}
		break;
	case SUP_DRAIN:
		if (s->pid <= 0 || s->state != ST_RUNNING) {
			sup_reply(c, 409, "%s is %s, not running: nothing to "
			    "drain", s->c.name, sup_state_names[s->state]);
			return;
		}
		s->desired = 0;
		s->after = AF_NONE;
		snprintf(s->ending, sizeof(s->ending), "drain");
		sup_begin_drain(s);
		break;
	case SUP_RESTART:
		s->desired = 1;
		s->ending[0] = '\0';
		if (s->pid > 0) {
			s->after = AF_RESTART;
			sup_begin_stop(s);
		} else if (s->state != ST_STARTING) {
			s->timer = TM_NONE;
			s->nwin = 0;
			s->level = 0;
			sup_launch(s, s->state == ST_BACKOFF ? "restart" :
			    "api");
		}
		sup_save(s);
		break;
	case SUP_SNAPSHOT: {
		char	err[512];

		if (s->after == AF_DELETE) {
			sup_reply(c, 409, "%s is being deleted", s->c.name);
			return;
		}
		if ((c->job = prepare_snapshot_submit(store_db(), &s->c,
		    s->spec, "api", err, sizeof(err))) < 0) {
			sup_reply(c, 409, "%s", err);
			return;
		}
		sup_wake_jobs = 1;
		sup_event(s, "service.snapshot.requested", json_pack("{s:I}",
		    "job", (json_int_t)c->job));
		sup_reply(c, 202, "%s", "");
		return;
	}
	case SUP_DELETE: {
		json_t	*busy = jobs_active(store_db(), "service.snapshot",
		    s->c.name);

		if (busy != NULL) {
			sup_reply(c, 409, "snapshot job %lld of %s is %s: wait "
			    "for it or cancel it (DELETE /api/v1/jobs/%lld) "
			    "first", (long long)json_integer_value(
			    json_object_get(busy, "id")), s->c.name,
			    json_string_value(json_object_get(busy, "state")),
			    (long long)json_integer_value(json_object_get(busy,
			    "id")));
			json_decref(busy);
			return;
		}
		sup_cancel_prepare(s);
		s->desired = 0;
		s->purge = c->flag;
		/*
		 * A prepare job may be moving files into the runtime directory
		 * right now: it is forgotten (and purged) once the job ends.
		 */
		if (s->pid <= 0 && s->prep_job > 0) {
			s->after = AF_DELETE;
			sup_save(s);
			break;
		}
		if (s->pid > 0) {
			s->after = AF_DELETE;
			sup_begin_stop(s);
		} else
			sup_forget(s);
		break;
	}
	default:
		break;
	}
	sup_reply(c, 200, "%s", "");
}

/*
 * If the install s waits for has already ended (its news may have come
 * before the command that made s wait), acts on it now and returns 1.
 */
static int
sup_job_ended(struct svc *s)
{
	json_t		*j = jobs_get(store_db(), s->job);
	const char	*st = json_string_value(json_object_get(j, "state"));

	if (st == NULL || strcmp(st, "queued") == 0 ||
	    strcmp(st, "running") == 0) {
		json_decref(j);
		return 0;
	}
	s->job = 0;
	if (strcmp(st, "succeeded") == 0)
		sup_renew(s);
	else {
		snprintf(s->reason, sizeof(s->reason), "artifact install "
		    "%s: %.400s", st, json_string_value(json_object_get(j,
		    "error")) ? json_string_value(json_object_get(j,
		    "error")) : "");
		sup_set_state(s, ST_FAILED, s->reason);
	}
	json_decref(j);
	return 1;
}

/*
 * A new spec or a newly installed artifact: what runs is restarted (once
 * it has stopped), what does not run starts with a clean slate.
 */
static void
sup_renew(struct svc *s)
{
	if (s->pid > 0) {
		s->after = AF_RESTART;
		sup_begin_stop(s);
		return;
	}
	s->timer = TM_NONE;
	s->nwin = 0;
	s->level = 0;
	sup_launch(s, "api");
}

/* Reaps every child that ended: services and orphans alike. */
static void
sup_reap(void)
{
	struct svc	*s;
	pid_t		 pid;
	int		 status;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		if ((s = sup_find_pid(pid)) != NULL && s->pidfd == -1)
			sup_exited(s, 1, status);
		else
			log_debug("sup", "reaped pid %d", (int)pid);
	}
}

static void
sup_timers(void)
{
	struct svc	*s;
	int64_t		 now = store_mono_ms();
	size_t		 i;

	if (now >= sup_rotate_due) {
		sup_rotate_logs();
		sup_rotate_due = now + (int64_t)sup_cf->log_check_s * 1000;
	}
	for (i = 0; i < sup_nsvcs; i++) {
		s = sup_svcs[i];
		if (s->timer == TM_NONE || s->due > now)
			continue;
		switch (s->timer) {
		case TM_START:
			s->timer = TM_NONE;
			sup_launch(s, "restart");
			break;
		case TM_KILL:
			s->timer = TM_NONE;
			log_warn("sup", "%s: did not stop in time; SIGKILL",
			    s->c.name);
			sup_kill(s, SIGKILL);
			break;
		case TM_DRAIN:
			s->timer = TM_NONE;
			sup_begin_stop(s);
			break;
		default:
			break;
		}
	}
}

static void
sup_arm(void)
{
	struct itimerspec	its;
	int64_t			due = sup_rotate_due, now = store_mono_ms(), d;
	size_t			i;

	for (i = 0; i < sup_nsvcs; i++)
		if (sup_svcs[i]->timer != TM_NONE && sup_svcs[i]->due < due)
			due = sup_svcs[i]->due;
	d = due - now;
	if (d < 1)
		d = 1;
	memset(&its, 0, sizeof(its));
	its.it_value.tv_sec = d / 1000;
	its.it_value.tv_nsec = (d % 1000) * 1000000;
	timerfd_settime(sup_tfd, 0, &its, NULL);
}

static struct svc *
sup_find(const char *name)
{
	size_t	i;

	for (i = 0; i < sup_nsvcs; i++)
		if (strcmp(sup_svcs[i]->c.name, name) == 0)
			return sup_svcs[i];
	return NULL;
}

static struct svc *
sup_find_pid(pid_t pid)
{
	size_t	i;

	for (i = 0; i < sup_nsvcs; i++)
		if (sup_svcs[i]->pid == pid)
			return sup_svcs[i];
	return NULL;
}

static struct svc *
sup_new(const struct coord *c, json_t *spec)
{
	struct svc	*s, **n;

	if (sup_nsvcs == sup_capsvcs) {
		size_t	cap = sup_capsvcs ? sup_capsvcs * 2 : 64;

		if ((n = realloc(sup_svcs, cap * sizeof(struct svc *))) ==
		    NULL)
			return NULL;
		sup_svcs = n;
		sup_capsvcs = cap;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	s->c = *c;
	s->spec = spec;
	s->pidfd = -1;
	s->state = ST_STOPPED;
	sup_svcs[sup_nsvcs++] = s;
	return s;
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

/* Deletes the service's record (and with purge its runtime directory). */
static void
sup_forget(struct svc *s)
{
	sqlite3		*db = store_db();
	sqlite3_stmt	*st;
	char		 dir[PATH_MAX];
	size_t		 i;

	if (sqlite3_prepare_v2(db, "DELETE FROM services WHERE coordinate = ?",
	    -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_text(st, 1, s->c.name, -1, SQLITE_STATIC);
		if (sqlite3_step(st) != SQLITE_DONE)
			log_error("sup", "%s: %s", s->c.name,
			    sqlite3_errmsg(db));
		sqlite3_finalize(st);
	}
	/*
	 * What a service left running (a child that made itself a session
	 * leader outlives the stop) must not write into the tree while it
	 * goes; a dynamic uid is this service's alone.
	 */
	if (s->purge && sup_root && s->has_uid && s->uid >= sup_cf->uid_min &&
	    s->uid <= sup_cf->uid_max)
		sup_kill_uid(s->uid);
	if (s->purge && coord_runtime_dir(sup_cf, &s->c, dir,
	    sizeof(dir)) == 0 && fs_rmtree(dir) != 0)
		log_warn("sup", "%s: cannot purge %s: %s", s->c.name, dir,
		    strerror(errno));
	sup_event(s, "service.deleted", json_pack("{s:b}", "purged",
	    s->purge));
	for (i = 0; i < sup_nsvcs; i++)
		if (sup_svcs[i] == s) {
			sup_svcs[i] = sup_svcs[--sup_nsvcs];
			break;
		}
	json_decref(s->spec);
	free(s);
	sup_dirty = 1;
}

/* Starts the service's main process; on failure the service is failed. */
static void
sup_launch(struct svc *s, const char *why)
{
	char	err[768];
	pid_t	pid;

	s->timer = TM_NONE;
	/*
	 * A start with prepare steps (or a snapshot rule, whose job must end
	 * before the service writes again) goes through a prepare job; its
	 * end comes back as SUP_PREPARED and calls this again.
	 */
	if (s->prep_job > 0 || (prepare_needed(s->spec) && !s->prepared)) {
		json_t	*busy;

		snprintf(s->why, sizeof(s->why), "%s", why);
		if (s->prep_job > 0) {
			/*
			 * One in flight (for an older spec, or cancelled by
			 * a stop): it ends first, moving nothing if it was
			 * cancelled, then this start goes on.
			 */
			s->prep_again = 1;
			sup_set_state(s, ST_PREPARING, NULL);
			return;
		}
		/* The job of a service deleted and created again meanwhile. */
		if ((busy = jobs_active(store_db(), "service.prepare",
		    s->c.name)) != NULL) {
			s->prep_job = json_integer_value(json_object_get(busy,
			    "id"));
			json_decref(busy);
			s->prep_again = 1;
			sup_set_state(s, ST_PREPARING, NULL);
			return;
		}
		if (sup_assign_uid(s, err, sizeof(err)) != 0 ||
		    (s->prep_job = prepare_submit(store_db(), &s->c, s->spec,
		    s->uid, s->gid, sup_root, err, sizeof(err))) < 0) {
			s->prep_job = 0;
			log_warn("sup", "%s: cannot prepare: %s", s->c.name,
			    err);
			sup_set_state(s, ST_FAILED, err);
			sup_event(s, "service.failed", json_pack("{s:s}",
			    "reason", err));
			return;
		}
		s->prep_again = 0;
		sup_wake_jobs = 1;
		s->reason[0] = '\0';
		sup_set_state(s, ST_PREPARING, NULL);
		sup_event(s, "service.preparing", json_pack("{s:I, s:s}",
		    "job", (json_int_t)s->prep_job, "reason", why));
		return;
	}
	s->prepared = 0;
	if (sup_spawn(s, NULL, 1, &pid, err, sizeof(err)) != 0) {
		log_warn("sup", "%s: cannot start: %s", s->c.name, err);
		snprintf(s->reason, sizeof(s->reason), "%.500s", err);
		sup_set_state(s, ST_FAILED, s->reason);
		sup_event(s, "service.failed", json_pack("{s:s}", "reason",
		    err));
		return;
	}
	s->pid = pid;
	s->started_ms = store_now_ms();
	s->started_mono = store_mono_ms();
	if (sup_proc_start(pid, &s->pstart) != 0)
		s->pstart = 0;
	if (strcmp(why, "restart") == 0)
		s->restarts++;
	s->reason[0] = '\0';
	s->state = ST_RUNNING;
	sup_run_open(s, why);
	sup_save(s);
	sup_event(s, "service.started", json_pack("{s:i, s:s}", "pid",
	    (int)pid, "reason", why));
	log_info("sup", "%s: started pid %d (%s)", s->c.name, (int)pid, why);
}

/* The prepare job of s ended: start, prepare again, or fail. */
static void
sup_prepare_ended(struct svc *s, int ok, const char *error)
{
	s->prep_job = 0;
	if (s->after == AF_DELETE) {
		sup_forget(s);
		return;
	}
	if (s->job > 0) {
		/* A new spec waits for its artifact; that install starts it. */
		s->prep_again = 0;
		if (s->state == ST_PREPARING)
			sup_set_state(s, ST_STARTING, NULL);
		return;
	}
	if (s->prep_again && s->desired) {
		s->prep_again = 0;
		sup_launch(s, s->why);
		return;
	}
	s->prep_again = 0;
	if (!s->desired || s->pid > 0) {
		if (s->state == ST_PREPARING)
			sup_set_state(s, ST_STOPPED, NULL);
		return;
	}
	if (ok) {
		s->prepared = 1;
		sup_launch(s, s->why[0] ? s->why : "api");
		return;
	}
	snprintf(s->reason, sizeof(s->reason), "prepare %.490s", error);
	log_warn("sup", "%s: %s", s->c.name, s->reason);
	sup_set_state(s, ST_FAILED, s->reason);
	sup_event(s, "service.failed", json_pack("{s:s}", "reason",
	    s->reason));
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

/* A stop or delete while preparing: the job's work is not wanted. */
static void
sup_cancel_prepare(struct svc *s)
{
	char	err[256];

	if (s->prep_job > 0 && jobs_cancel(s->prep_job, err, sizeof(err)) !=
	    0)
		log_debug("sup", "%s: %s", s->c.name, err);
	s->prep_again = 0;
}

/*
 * Forks and execs the service's command (main) or its drain command
 * (helper, not supervised).  Everything the child needs is prepared
 * before fork(): the child of a threaded process may only make
 * async-signal-safe calls.  A pipe with O_CLOEXEC reports a failure of
 * any step after fork, so a missing binary is an error here, not a
 * crash loop.
 *
 * The child gets its own session and process group, so stop signals
 * reach the whole group and the service is not killed with nodee.  The
 * systemd unit must say KillMode=process for the same reason: stopping
 * nodee must not stop the services; the next nodee re-adopts them.
 */
static int
sup_spawn(struct svc *s, const char *helper_cmd, int main, pid_t *pidp,
    char *err, size_t errlen)
{
	struct artifact_coord	 ac;
	struct rlimit		 rl[4];
	static const int	 rl_res[4] = { RLIMIT_NOFILE, RLIMIT_NPROC,
				    RLIMIT_CORE, RLIMIT_AS };
	static const char *const rl_names[4] = { "nofile", "nproc",
				    "core_bytes", "memory_bytes" };
	static const char *const steps[] = { "setsid", "unshare",
				    "mount", "bind", "remount", "dup2",
				    "chdir", "setrlimit", "setgroups",
				    "setgid", "setuid", "execve" };
	gid_t			 groups[SUP_GROUPS_MAX];
	int			 ngroups = 0, has_rl[4], i, fds[2];
	int			 nullfd = -1, outfd = -1, errfd = -1, isolate;
	char			 adir[PATH_MAX], rdir[PATH_MAX], sw[PATH_MAX];
	char			 path[PATH_MAX], logp[PATH_MAX + 16];
	const char		*cmd = helper_cmd, *k;
	char			**argv = NULL, **envp = NULL;
	size_t			 argc = 0, envc = 0, n;
	json_t			*v, *o, *manifest;
	json_error_t		 je;
	int			 report[2], rc = -1;
	ssize_t			 r;
	pid_t			 pid;

	if (artifact_parse(json_string_value(json_object_get(s->spec,
	    "artifact")), &ac, err, errlen) != 0)
		return -1;
	if (artifact_dir(sup_cf, &ac, adir, sizeof(adir)) != 0 ||
	    snprintf(sw, sizeof(sw), "%s/software", sup_cf->prefix) >=
	    (int)sizeof(sw)) {
		snprintf(err, errlen, "path too long");
		return -1;
	}
	if (!fs_exists(adir)) {
		snprintf(err, errlen, "artifact %s is not installed", ac.gav);
		return -1;
	}
	if (cmd == NULL)
		cmd = json_string_value(json_object_get(s->spec, "command"));
	if (cmd == NULL) {
		/* The artifact may name its own command in nodee.json. */
		if (snprintf(path, sizeof(path), "%.4000s/nodee.json", adir) >=
		    (int)sizeof(path))
			path[0] = '\0';
		manifest = json_load_file(path, 0, &je);
		cmd = json_string_value(json_object_get(manifest, "command"));
		if (snprintf(path, sizeof(path), "%.3000s/%.1000s", adir, cmd &&
		    cmd[0] != '/' && strstr(cmd, "..") == NULL ? cmd :
		    "bin/start") >= (int)sizeof(path))
			path[0] = '\0';
		json_decref(manifest);
	} else if (snprintf(path, sizeof(path), "%s/%s", adir, cmd) >=
	    (int)sizeof(path)) {
		snprintf(err, errlen, "command path too long");
		return -1;
	}
	if (access(path, X_OK) != 0) {
		snprintf(err, errlen, "cannot execute %.400s: %s", path,
		    strerror(errno));
		return -1;
	}
	if (sup_assign_uid(s, err, errlen) != 0 ||
	    sup_rundir(s, rdir, sizeof(rdir), err, errlen) != 0)
		return -1;

	/* argv: the command, options as "key value", then args. */
	o = json_object_get(s->spec, "options");
	n = 2 + 2 * json_object_size(o) + json_array_size(json_object_get(
	    s->spec, "args"));
	if ((argv = calloc(n, sizeof(*argv))) == NULL)
		goto oom;
	argv[argc++] = path;
	if (main) {
		json_object_foreach(o, k, v) {
			argv[argc++] = (char *)k;
			argv[argc++] = (char *)json_string_value(v);
		}
		json_array_foreach(json_object_get(s->spec, "args"), n, v)
			argv[argc++] = (char *)json_string_value(v);
	}
	argv[argc] = NULL;

	o = json_object_get(s->spec, "env");
	if ((envp = calloc(12 + json_object_size(o), sizeof(*envp))) == NULL)
		goto oom;
#define ENV(...) do {							\
	if (asprintf(&envp[envc], __VA_ARGS__) < 0)			\
		goto oom;						\
	envc++;								\
} while (0)
	ENV("PATH=/usr/local/bin:/usr/bin:/bin");
	ENV("HOME=%s", rdir);
	ENV("LANG=C.UTF-8");
	ENV("NODEE_COORDINATE=%s", s->c.name);
	ENV("NODEE_RUNTIME_DIR=%s", rdir);
	ENV("NODEE_ARTIFACT_DIR=%s", adir);
	ENV("NODEE_ARTIFACT=%s", ac.gav);
	json_object_foreach(o, k, v)
		ENV("%s=%s", k, json_string_value(v));
#undef ENV
	envp[envc] = NULL;

	o = json_object_get(s->spec, "limits");
	for (i = 0; i < 4; i++) {
		v = json_object_get(o, rl_names[i]);
		has_rl[i] = v != NULL;
		if (v != NULL)
			rl[i].rlim_cur = rl[i].rlim_max =
			    (rlim_t)json_integer_value(v);
	}
	if (sup_root) {
		struct passwd	*pw;
		const char	*user = json_string_value(json_object_get(
		    s->spec, "user"));

		ngroups = SUP_GROUPS_MAX;
		if (user != NULL && (pw = getpwnam(user)) != NULL &&
		    getgrouplist(user, pw->pw_gid, groups, &ngroups) == -1)
			ngroups = 0;
		if (user == NULL)
			ngroups = 0;
	}
	isolate = sup_root;

	nullfd = open("/dev/null", O_RDWR | O_CLOEXEC);
	snprintf(logp, sizeof(logp), "%s/log/stdout", rdir);
	outfd = open(logp, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC |
	    O_NOFOLLOW, 0640);
	snprintf(logp, sizeof(logp), "%s/log/stderr", rdir);
	errfd = open(logp, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC |
	    O_NOFOLLOW, 0640);
	if (nullfd == -1 || outfd == -1 || errfd == -1) {
		snprintf(err, errlen, "cannot open the logs in %.400s/log: %s",
		    rdir, strerror(errno));
		goto out;
	}
	if (sup_root) {
		(void)fchown(outfd, s->uid, s->gid);
		(void)fchown(errfd, s->uid, s->gid);
	}
	if (pipe2(report, O_CLOEXEC) != 0) {
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		goto out;
	}

	pid = fork();
	if (pid == -1) {
		snprintf(err, errlen, "fork: %s", strerror(errno));
		close(report[0]);
		close(report[1]);
		goto out;
	}
	if (pid == 0) {
		sigset_t		 none;
		struct sigaction	 sa;
		int			 step = 0, e;

		close(report[0]);
		sigemptyset(&none);
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = SIG_DFL;
		for (i = 1; i < NSIG; i++)
			(void)sigaction(i, &sa, NULL);
		sigprocmask(SIG_SETMASK, &none, NULL);
		if (setsid() == -1)
			goto fail;
		step++;
		if (isolate) {
			/*
			 * A private mount namespace where the software
			 * tree is read-only, even for a service running as
			 * root.
			 */
			if (unshare(CLONE_NEWNS) == -1)
				goto fail;
			step++;
			if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE,
			    NULL) == -1)
				goto fail;
			step++;
			if (mount(sw, sw, NULL, MS_BIND | MS_REC, NULL) == -1)
				goto fail;
			step++;
			if (mount(NULL, sw, NULL, MS_REMOUNT | MS_BIND |
			    MS_RDONLY, NULL) == -1)
				goto fail;
			step++;
		} else
			step = 5;
		if (dup2(nullfd, 0) == -1 || dup2(outfd, 1) == -1 ||
		    dup2(errfd, 2) == -1)
			goto fail;
		/*
		 * No descriptor of nodee's may reach the service, whatever a
		 * library forgot to mark close-on-exec (sockets, say).
		 */
		(void)syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC);
		step++;
		if (chdir(rdir) == -1)
			goto fail;
		step++;
		for (i = 0; i < 4; i++)
			if (has_rl[i] && setrlimit(rl_res[i], &rl[i]) == -1)
				goto fail;
		step++;
		if (sup_root) {
			if (setgroups((size_t)ngroups, groups) == -1)
				goto fail;
			step++;
			if (setgid(s->gid) == -1)
				goto fail;
			step++;
			if (setuid(s->uid) == -1)
				goto fail;
			step++;
		} else
			step = 11;
		execve(path, argv, envp);
fail:
		e = errno;
		fds[0] = step;
		fds[1] = e;
		if (write(report[1], fds, sizeof(fds)) < 0)
			_exit(126);
		_exit(127);
	}
	close(report[1]);
	r = read(report[0], fds, sizeof(fds));
	close(report[0]);
	if (r == (ssize_t)sizeof(fds)) {
		int	status;

		(void)waitpid(pid, &status, 0);
		snprintf(err, errlen, "%s %.400s failed: %s",
		    steps[fds[0] < 12 ? fds[0] : 11], path, strerror(fds[1]));
		goto out;
	}
	*pidp = pid;
	rc = 0;
	goto out;
oom:
	snprintf(err, errlen, "out of memory");
out:
	if (nullfd != -1)
		close(nullfd);
	if (outfd != -1)
		close(outfd);
	if (errfd != -1)
		close(errfd);
	if (envp != NULL)
		for (n = 0; n < envc; n++)
			free(envp[n]);
	free(envp);
	free(argv);
	return rc;
}

/*
 * The main process ended.  known: status is from waitpid(); else the
 * process was adopted and its status is lost with its old parent.
 */
static void
sup_exited(struct svc *s, int known, int status)
{
	json_t		*rst = json_object_get(s->spec, "restart");
	const char	*policy = json_string_value(json_object_get(rst,
	    "policy"));
	int64_t		 now = store_mono_ms(), period, delay, cap, base;
	int		 max, i, j;

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
	s->pid = 0;
	s->pstart = 0;
	s->timer = TM_NONE;

	if (s->after == AF_DELETE) {
		sup_forget(s);
		return;
	}
	if (s->after == AF_RESTART) {
		s->after = AF_NONE;
		s->desired = 1;
		s->nwin = 0;
		s->level = 0;
		sup_launch(s, "api");
		return;
	}
	if (!s->desired || s->state == ST_STOPPING ||
	    s->state == ST_DRAINING) {
		s->desired = 0;
		sup_set_state(s, ST_STOPPED, NULL);
		sup_event(s, "service.stopped", NULL);
		if (s->ending[0] != '\0' && prepare_snapshot_on(s->spec,
		    s->ending))
			sup_snapshot(s, s->ending);
		s->ending[0] = '\0';
		sup_save(s);
		return;
	}
	if (strcmp(policy, "never") == 0 || (strcmp(policy, "on-failure") ==
	    0 && known && s->exit_code == 0)) {
		sup_set_state(s, ST_EXITED, NULL);
		return;
	}
	/* A service that ran steadily starts again with a clean slate. */
	if (now - s->started_mono >= json_integer_value(json_object_get(rst,
	    "reset_after_s")) * 1000) {
		s->nwin = 0;
		s->level = 0;
	}
	period = json_integer_value(json_object_get(rst, "period_s")) * 1000;
	for (i = j = 0; i < s->nwin; i++)
		if (now - s->window[i] < period)
			s->window[j++] = s->window[i];
	s->nwin = j;
	max = (int)json_integer_value(json_object_get(rst, "max_restarts"));
	if (s->nwin >= max) {
		snprintf(s->reason, sizeof(s->reason), "gave up after %d "
		    "restarts in %lld s", s->nwin, (long long)(period / 1000));
		sup_set_state(s, ST_FAILED, s->reason);
		sup_event(s, "service.gave_up", json_pack("{s:i}", "restarts",
		    s->nwin));
		log_warn("sup", "%s: %s", s->c.name, s->reason);
		return;
	}
	if (s->nwin == SUP_WINDOW_MAX) {
		memmove(s->window, s->window + 1, (SUP_WINDOW_MAX - 1) *
		    sizeof(s->window[0]));
		s->nwin--;
	}
	s->window[s->nwin++] = now;
	/* base * 2^level, capped, with +-20% jitter so a fleet spreads. */
	base = json_integer_value(json_object_get(rst, "delay_ms"));
	cap = json_integer_value(json_object_get(rst, "max_delay_ms"));
	delay = base;
	for (i = 0; i < s->level && delay < cap; i++)
		delay *= 2;
	if (delay > cap)
		delay = cap;
	if (s->level < 30)
		s->level++;
	if (delay > 0)
		delay += (delay * ((random() % 41) - 20)) / 100;
	if (delay <= 0) {
		sup_launch(s, "restart");
		return;
	}
	s->timer = TM_START;
	s->due = now + delay;
	sup_set_state(s, ST_BACKOFF, NULL);
	sup_event(s, "service.backoff", json_pack("{s:I}", "delay_ms",
	    (json_int_t)delay));
}

static void
sup_begin_stop(struct svc *s)
{
	json_t	*stop = json_object_get(s->spec, "stop");
	int	 sig = service_signal(json_string_value(json_object_get(stop,
	    "signal")));

	if (s->state == ST_STOPPING)
		return;
	sup_set_state(s, ST_STOPPING, NULL);
	sup_event(s, "service.stopping", json_pack("{s:i}", "pid",
	    (int)s->pid));
	sup_kill(s, sig ? sig : SIGTERM);
	s->timer = TM_KILL;
	s->due = store_mono_ms() + json_integer_value(json_object_get(stop,
	    "timeout_s")) * 1000;
}

static void
sup_begin_drain(struct svc *s)
{
	json_t		*drain = json_object_get(s->spec, "drain");
	const char	*cmd = json_string_value(json_object_get(drain,
	    "command"));
	char		 err[512];
	pid_t		 helper;

	sup_set_state(s, ST_DRAINING, NULL);
	if (cmd != NULL) {
		if (sup_spawn(s, cmd, 0, &helper, err, sizeof(err)) != 0) {
			log_warn("sup", "%s: drain command: %s; stopping",
			    s->c.name, err);
			sup_begin_stop(s);
			return;
		}
	} else
		sup_kill(s, service_signal(json_string_value(json_object_get(
		    drain, "signal"))));
	sup_event(s, "service.draining", json_pack("{s:i}", "pid",
	    (int)s->pid));
	s->timer = TM_DRAIN;
	s->due = store_mono_ms() + json_integer_value(json_object_get(drain,
	    "timeout_s")) * 1000;
}

/* To the whole process group (the service called setsid()). */
static void
sup_kill(struct svc *s, int sig)
{
	if (s->pid <= 0)
		return;
	if (kill(-s->pid, sig) == -1 && kill(s->pid, sig) == -1 &&
	    errno != ESRCH)
		log_warn("sup", "%s: kill %d: %s", s->c.name, (int)s->pid,
		    strerror(errno));
}

static void
sup_set_state(struct svc *s, enum svc_state st, const char *reason)
{
	s->state = st;
	if (reason != NULL && reason != s->reason)
		snprintf(s->reason, sizeof(s->reason), "%.*s",
		    (int)sizeof(s->reason) - 1, reason);
	sup_save(s);
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
	sqlite3_bind_text(st, 1, spec ? spec : "{}", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 17, secret ? secret : "{}", -1, SQLITE_STATIC);
	if (s->ending[0] != '\0')
		sqlite3_bind_text(st, 18, s->ending, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, s->desired ? "running" : "stopped", -1,
	    SQLITE_STATIC);
	sqlite3_bind_text(st, 3, sup_state_names[s->state], -1, SQLITE_STATIC);
	if (s->pid > 0) {
		sqlite3_bind_int(st, 4, s->pid);
		sqlite3_bind_int64(st, 5, (sqlite3_int64)s->pstart);
		sqlite3_bind_int64(st, 6, s->started_ms);
	}
	sqlite3_bind_int64(st, 7, s->restarts);
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
	if (s->reason[0] != '\0')
		sqlite3_bind_text(st, 13, s->reason, -1, SQLITE_STATIC);
	if (s->job > 0 || s->prep_job > 0)
		sqlite3_bind_int64(st, 14, s->job > 0 ? s->job : s->prep_job);
	sqlite3_bind_int64(st, 15, store_now_ms());
	sqlite3_bind_text(st, 16, s->c.name, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		log_error("sup", "%s: cannot save: %s", s->c.name,
		    sqlite3_errmsg(db));
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
		log_error("sup", "%s: run: %s", s->c.name, sqlite3_errmsg(db));
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
		log_error("sup", "%s: run: %s", s->c.name, sqlite3_errmsg(db));
	sqlite3_finalize(st);
}

/*
 * As root: the spec's user, or a uid of its own from the configured
 * range that no other service holds.  Otherwise nodee's own user.
 */
static int
sup_assign_uid(struct svc *s, char *err, size_t errlen)
{
	const char	*user = json_string_value(json_object_get(s->spec,
	    "user"));
	struct passwd	*pw;
	unsigned	 u;
	size_t		 i;

	if (!sup_root) {
		s->uid = geteuid();
		s->gid = getegid();
		s->has_uid = 1;
		return 0;
	}
	if (user != NULL) {
		if ((pw = getpwnam(user)) == NULL) {
			snprintf(err, errlen, "user %s does not exist", user);
			return -1;
		}
		s->uid = pw->pw_uid;
		s->gid = pw->pw_gid;
		s->has_uid = 1;
		return 0;
	}
	if (s->has_uid && s->uid >= sup_cf->uid_min &&
	    s->uid <= sup_cf->uid_max) {
		for (i = 0; i < sup_nsvcs; i++)
			if (sup_svcs[i] != s && sup_svcs[i]->has_uid &&
			    sup_svcs[i]->uid == s->uid)
				break;
		if (i == sup_nsvcs)
			return 0;
	}
	for (u = sup_cf->uid_min; u <= sup_cf->uid_max; u++) {
		for (i = 0; i < sup_nsvcs; i++)
			if (sup_svcs[i] != s && sup_svcs[i]->has_uid &&
			    sup_svcs[i]->uid == u)
				break;
		if (i == sup_nsvcs) {
			s->uid = u;
			s->gid = u;
			s->has_uid = 1;
			return 0;
		}
	}
	snprintf(err, errlen, "no free uid in %u-%u (service_uid_min, "
	    "service_uid_max)", sup_cf->uid_min, sup_cf->uid_max);
	return -1;
}

/* Creates the runtime directory and log/, owned by the service's uid. */
static int
sup_rundir(struct svc *s, char *out, size_t outlen, char *err, size_t errlen)
{
	char	logd[PATH_MAX + 8];

	if (coord_runtime_dir(sup_cf, &s->c, out, outlen) != 0) {
		snprintf(err, errlen, "runtime path too long");
		return -1;
	}
	snprintf(logd, sizeof(logd), "%s/log", out);
	if (fs_mkdirs(logd, 0755) != 0) {
		snprintf(err, errlen, "cannot create %.400s: %s", logd,
		    strerror(errno));
		return -1;
	}
	if (sup_root && (chown(out, s->uid, s->gid) != 0 ||
	    chown(logd, s->uid, s->gid) != 0)) {
		snprintf(err, errlen, "cannot give %.400s to uid %u: %s", out,
		    (unsigned)s->uid, strerror(errno));
		return -1;
	}
	(void)chmod(out, 0750);
	return 0;
}

/*
 * Copy-truncate rotation: the service keeps its descriptor (opened with
 * O_APPEND), so the file is copied to .1 (older ones shifted) and then
 * truncated in place.
 */
static void
sup_rotate_logs(void)
{
	static const char *const streams[] = { "stdout", "stderr" };
	char		 dir[PATH_MAX], p[PATH_MAX + 32], q[PATH_MAX + 32];
	struct stat	 st;
	size_t		 i, k;
	unsigned	 g;

	for (i = 0; i < sup_nsvcs; i++) {
		if (coord_runtime_dir(sup_cf, &sup_svcs[i]->c, dir,
		    sizeof(dir)) != 0)
			continue;
		for (k = 0; k < 2; k++) {
			int	in, out;
			char	buf[65536];
			ssize_t	n;

			snprintf(p, sizeof(p), "%s/log/%s", dir, streams[k]);
			if (stat(p, &st) != 0 ||
			    (size_t)st.st_size < sup_cf->log_max)
				continue;
			for (g = sup_cf->log_keep; g > 1; g--) {
				snprintf(p, sizeof(p), "%s/log/%s.%u", dir,
				    streams[k], g - 1);
				snprintf(q, sizeof(q), "%s/log/%s.%u", dir,
				    streams[k], g);
				(void)rename(p, q);
			}
			snprintf(p, sizeof(p), "%s/log/%s", dir, streams[k]);
			snprintf(q, sizeof(q), "%s/log/%s.1", dir, streams[k]);
			in = open(p, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
			out = open(q, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW |
			    O_CLOEXEC, 0640);
			while (in != -1 && out != -1 &&
			    (n = read(in, buf, sizeof(buf))) > 0)
				if (write(out, buf, (size_t)n) != n)
					break;
			if (in != -1)
				close(in);
			if (out != -1)
				close(out);
			if (truncate(p, 0) != 0)
				log_warn("sup", "cannot truncate %s: %s", p,
				    strerror(errno));
		}
	}
}

/* Field 22 of /proc/<pid>/stat, the start time; -1 if gone or a zombie. */
static int
sup_proc_start(pid_t pid, unsigned long long *out)
{
	char	path[64], buf[1024], *p;
	ssize_t	n;
	int	fd, field;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
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

/*
 * Processes that look like services nodee started: session leaders whose
 * environment carries NODEE_COORDINATE (set by sup_spawn()), with their
 * working directory.  Read from /proc once per start-up, however many
 * services need it.
 */
static void
sup_orphans_scan(void)
{
	static const char	 key[] = "NODEE_COORDINATE=";
	DIR			*d;
	struct dirent		*de;
	struct sup_orphan	 o, *n;
	char			 path[64], env[65536], stat[1024], *p;
	ssize_t			 len;
	size_t			 k;
	long			 sid;
	int			 fd;

	sup_orphans_read = 1;
	if ((d = opendir("/proc")) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		memset(&o, 0, sizeof(o));
		if ((o.pid = (pid_t)strtol(de->d_name, &p, 10)) <= 0 ||
		    *p != '\0')
			continue;
		/* Field 6 of stat, after the command in parentheses. */
		snprintf(path, sizeof(path), "/proc/%d/stat", (int)o.pid);
		if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
			continue;
		len = read(fd, stat, sizeof(stat) - 1);
		close(fd);
		if (len <= 0)
			continue;
		stat[len] = '\0';
		if ((p = strrchr(stat, ')')) == NULL ||
		    sscanf(p + 1, " %*c %*d %*d %ld", &sid) != 1 ||
		    sid != o.pid)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/environ", (int)o.pid);
		if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
			continue;
		len = read(fd, env, sizeof(env) - 1);
		close(fd);
		if (len <= 0)
			continue;
		env[len] = '\0';
		for (k = 0; k < (size_t)len; k += strlen(env + k) + 1)
			if (strncmp(env + k, key, sizeof(key) - 1) == 0) {
				snprintf(o.coord, sizeof(o.coord), "%s",
				    env + k + sizeof(key) - 1);
				break;
			}
		if (o.coord[0] == '\0')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/cwd", (int)o.pid);
		if ((len = readlink(path, o.cwd, sizeof(o.cwd) - 1)) <= 0)
			continue;
		o.cwd[len] = '\0';
		if (sup_proc_start(o.pid, &o.start) != 0)
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
		    strcmp(sup_orphans[i].cwd, rdir) == 0) {
			*start = sup_orphans[i].start;
			return sup_orphans[i].pid;
		}
	return 0;
}


/*
 * Answers a command.  The caller is woken only after sup_commit(), so
 * what it then reads from the store is what the command did.
 */
static void
sup_reply(struct sup_cmd *c, int status, const char *fmt, ...)
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
	c->status = status;
	c->next = sup_replies;
	sup_replies = c;
}

static void
sup_begin(void)
{
	sqlite3	*db = store_db();

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

	if (db != NULL && !sqlite3_get_autocommit(db) &&
	    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		log_error("sup", "commit: %s", sqlite3_errmsg(db));
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	}
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
