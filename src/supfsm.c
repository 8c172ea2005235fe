/*
 * supfsm: what the supervisor decides, and nothing of how it is done.
 *
 * The table at the end of this file names one action for every (state,
 * event) pair.  An action changes the service's data and appends
 * effects; the executor (sup.c) applies them in order and writes the
 * row.  An effect that fails comes back as SE_FAILED.  Nothing here
 * reads a clock, a file or the store, so tests/unit/test_supfsm.c walks
 * every pair in milliseconds.
 */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "supfsm.h"

typedef void	supfsm_action(struct supfsm *, const struct supfsm_event *,
		    struct supfsm_out *);

static const char *const supfsm_names[SF_NSTATES] = {
	[SF_STOPPED] = "stopped", [SF_WAITING] = "starting",
	[SF_PREPARING] = "preparing", [SF_STARTING] = "starting",
	[SF_RUNNING] = "running", [SF_BACKOFF] = "backoff",
	[SF_STOPPING] = "stopping", [SF_DRAINING] = "draining",
	[SF_EXITED] = "exited", [SF_FAILED] = "failed",
};

static void	fx(struct supfsm_out *, enum supfsm_fx, int, int64_t);
static void	fx_event(struct supfsm_out *, const char *, int, const char *,
		    int64_t);
static void	go(struct supfsm *, enum supfsm_state);
static void	fresh(struct supfsm *);
static void	start(struct supfsm *, enum supfsm_why, struct supfsm_out *);
static void	begin_stop(struct supfsm *, struct supfsm_out *);
static void	fail(struct supfsm *, const char *, struct supfsm_out *);
static void	ended(struct supfsm *, struct supfsm_out *);
static void	crashed(struct supfsm *, const struct supfsm_event *,
		    struct supfsm_out *);
static void	exit_text(const struct supfsm *, const struct supfsm_event *,
		    char *, size_t);

void
supfsm_init(struct supfsm *f)
{
	memset(f, 0, sizeof(*f));
	f->state = SF_STOPPED;
	f->goal = SG_STOP;
}

/* Frees what the service's data owns (its reason). */
void
supfsm_free(struct supfsm *f)
{
	free(f->reason);
	f->reason = NULL;
}

/*
 * The reason shown with the state, at most SUPFSM_REASON_MAX bytes;
 * fmt NULL clears it.  Kept on the heap: most services have none, and
 * one with a crash's stderr in it holds 2 KB.
 */
void
supfsm_set_reason(struct supfsm *f, const char *fmt, ...)
{
	va_list	 ap;
	char	*r = NULL;

	if (fmt != NULL) {
		va_start(ap, fmt);
		if (vasprintf(&r, fmt, ap) < 0)
			r = NULL;
		va_end(ap);
	}
	if (r != NULL && strlen(r) >= SUPFSM_REASON_MAX)
		r[SUPFSM_REASON_MAX - 1] = '\0';
	free(f->reason);
	f->reason = r;
}

/* The reason, "" when there is none. */
const char *
supfsm_reason(const struct supfsm *f)
{
	return f->reason != NULL ? f->reason : "";
}

const char *
supfsm_state_name(enum supfsm_state st)
{
	return st < SF_NSTATES ? supfsm_names[st] : "unknown";
}

/* A state as the store holds it; "starting" reads as SF_STARTING. */
int
supfsm_state_parse(const char *name, enum supfsm_state *out)
{
	int	i;

	for (i = SF_NSTATES - 1; i >= 0; i--)
		if (name != NULL && strcmp(name, supfsm_names[i]) == 0 &&
		    i != SF_WAITING) {
			*out = (enum supfsm_state)i;
			return 0;
		}
	return -1;
}

int
supfsm_has_process(enum supfsm_state st)
{
	return st == SF_STARTING || st == SF_RUNNING || st == SF_STOPPING ||
	    st == SF_DRAINING;
}

const char *
supfsm_why_name(enum supfsm_why why)
{
	return why == SW_RESTART ? "restart" : why == SW_BOOT ? "boot" : "api";
}

/*
 * delay_ms * 2^level with +-20% jitter from draw, so that a cell's
 * nodes spread their restarts; never above max_delay_ms (within 20%
 * below it once there).
 */
int64_t
supfsm_backoff_ms(const struct supfsm_params *p, int level, uint32_t draw)
{
	int64_t	d = p->delay_ms;
	int	i;

	for (i = 0; i < level && d < p->max_delay_ms; i++)
		d *= 2;
	if (d > p->max_delay_ms)
		d = p->max_delay_ms;
	if (d > 0)
		d += d * ((int64_t)(draw % 41) - 20) / 100;
	/*
	 * Above the cap the jitter is mirrored below it, not cut: services
	 * that all reached the cap still spread instead of half of them
	 * meeting at exactly max_delay_ms.
	 */
	if (d > p->max_delay_ms)
		d = p->max_delay_ms - (d - p->max_delay_ms);
	return d < 0 ? 0 : d;
}

/* ------------------------------------------------------------ actions */

/* Nothing to do: the event does not concern this state. */
static void
a_none(struct supfsm *f, const struct supfsm_event *e, struct supfsm_out *o)
{
	(void)f;
	(void)e;
	(void)o;
}

/* A new spec: it runs now, or once its artifact is installed. */
static void
a_put(struct supfsm *f, const struct supfsm_event *e, struct supfsm_out *o)
{
	f->goal = SG_RUN;
	f->snap = SS_NONE;
	supfsm_set_reason(f, NULL);
	f->gen++;
	f->install_job = e->job;
	if (supfsm_has_process(f->state)) {
		/* What runs goes on until the new artifact is there. */
		if (f->install_job == 0)
			begin_stop(f, o);
		return;
	}
	if (f->install_job > 0) {
		go(f, SF_WAITING);
		return;
	}
	fresh(f);
	start(f, SW_API, o);
}

static void
a_start_idle(struct supfsm *f, const struct supfsm_event *e,
    struct supfsm_out *o)
{
	(void)e;
	f->goal = SG_RUN;
	f->snap = SS_NONE;
	fresh(f);
	start(f, SW_API, o);
}

/* Already running or on its way: only the goal changes. */
static void
a_want_run(struct supfsm *f, const struct supfsm_event *e,
    struct supfsm_out *o)
{
	(void)e;
	(void)o;
	f->goal = SG_RUN;
	f->snap = SS_NONE;
}

static void
a_start_backoff(struct supfsm *f, const struct supfsm_event *e,
    struct supfsm_out *o)
{
	(void)e;
	f->goal = SG_RUN;
	f->snap = SS_NONE;
	start(f, SW_RESTART, o);
}

/* A stop cutting a drain short keeps the drain's snapshot. */
static void
stop_snap(struct supfsm *f)
{
	if (!(f->snap == SS_DRAIN && f->p.snap_on_drain))
		f->snap = SS_STOP;
}

static void
a_stop_proc(struct supfsm *f, const struct supfsm_event *e,
    struct supfsm_out *o)
{
	(void)e;
	f->goal = SG_STOP;
	stop_snap(f);
	begin_stop(f, o);
}

static void
a_stop_stopping(struct supfsm *f, const struct supfsm_event *e,
    struct supfsm_out *o)
{
	(void)e;
	(void)o;
	f->goal = SG_STOP;
	stop_snap(f);
}

/* It ran and died: what it left is its state, worth a snapshot. */
static void
a_stop_backoff(struct supfsm *f, const struct supfsm_event *e,
    struct supfsm_out *o)
{
	(void)e;
	f->goal = SG_STOP;
	f->snap = SS_NONE;
	go(f, SF_STOPPED);
	if (f->p.snap_on_stop)
		fx(o, FX_SNAPSHOT, SS_STOP, 0);
}

static void
a_stop_preparing(struct supfsm *f, const struct supfsm_event *e,
    struct supfsm_out *o)
{
	(void)e;
	f->goal = SG_STOP;
	f->snap = SS_NONE;
	fx(o, FX_CANCEL_PREPARE, 0, 0);
	f->prep_gen = 0;
	go(f, SF_STOPPED);
	if (f->why == SW_RESTART && f->p.snap_on_stop)
		fx(o, FX_SNAPSHOT, SS_STOP, 0);
}

static void
a_stop_waiting(struct supfsm *f, const struct supfsm_event *e,
    struct supfsm_out *o)
{
	(void)e;
	(void)o;
	f->goal = SG_STOP;
	f->snap = SS_NONE;
	f->install_job = 0;
	go(f, SF_STOPPED);
}

static void
a_stop_idle(struct supfsm *f, const struct supfsm_event *e,
    struct supfsm_out *o)
{
	(void)e;
	(void)o;
	f->goal = SG_STOP;
	f->snap = SS_NONE;
}

static void
a_drain(struct supfsm *f, const struct supfsm_event *e, struct supfsm_out *o)
{
	(void)e;
	f->goal = SG_STOP;
	f->snap = SS_DRAIN;
	go(f, SF_DRAINING);
	fx(o, FX_DRAIN, 0, 0);
	fx_event(o, "service.draining", SUPFSM_EV_PID, NULL, 0);
	fx(o, FX_TIMER, 0, f->p.drain_timeout_ms);
}

static void
a_drain_refused(struct supfsm *f, const struct supfsm_event *e,
    struct supfsm_out *o)
{
	(void)e;
	o->rc = ND_CONFLICT;
	snprintf(o->msg, sizeof(o->msg), "it is %s, not running: nothing to "
	    "drain", supfsm_state_name(f->state));
}

static void
a_restart_proc(struct supfsm *f, const struct supfsm_event *e,
    struct supfsm_out *o)
{
	(void)e;
	f->goal = SG_RUN;
	f->snap = SS_NONE;
	begin_stop(f, o);
}

static void
a_restart_idle(struct supfsm *f, const struct supfsm_event *e,
    struct supfsm_out *o)
{
	(void)e;
	f->goal = SG_RUN;
	f->snap = SS_NONE;
	fresh(f);
	start(f, f->state == SF_BACKOFF ? SW_RESTART : SW_API, o);
}

/* The prepare job in flight prepares what was; prepare again. */
static void
a_restart_preparing(struct supfsm *f, const struct supfsm_event *e,
    struct supfsm_out *o)
{
	(void)e;
	(void)o;
	f->goal = SG_RUN;
	f->snap = SS_NONE;
	f->prep_gen = 0;
}

static void
a_delete(struct supfsm *f, const struct supfsm_event *e, struct supfsm_out *o)
{
	f->goal = SG_DELETE;
	f->purge = e->purge;
	f->snap = SS_NONE;
	f->install_job = 0;
	if (f->prep_job > 0) {
		fx(o, FX_CANCEL_PREPARE, 0, 0);
		f->prep_gen = 0;
	}
	if (supfsm_has_process(f->state)) {
		begin_stop(f, o);
		return;
	}
	/*
	 * A prepare job may be moving files into the runtime directory right
	 * now: the service is forgotten (and purged) once the job ends.
	 */
	if (f->prep_job > 0) {
		go(f, SF_STOPPED);
		return;
	}
	fx(o, FX_FORGET, 0, 0);
}

/* The process ended while it should have run. */
static void
a_exit_crash(struct supfsm *f, const struct supfsm_event *e,
    struct supfsm_out *o)
{
	if (f->goal == SG_RUN)
		crashed(f, e, o);
	else
		ended(f, o);
}

/* The process ended after a stop, a drain or a restart asked it to. */
static void
a_exit_stopped(struct supfsm *f, const struct supfsm_event *e,
    struct supfsm_out *o)
{
	(void)e;
	ended(f, o);
}

static void
a_timer_backoff(struct supfsm *f, const struct supfsm_event *e,
    struct supfsm_out *o)
{
	(void)e;
	start(f, SW_RESTART, o);
}

static void
a_timer_kill(struct supfsm *f, const struct supfsm_event *e,
    struct supfsm_out *o)
{
	(void)f;
	(void)e;
	fx(o, FX_SIGNAL, SIGKILL, 0);
	fx_event(o, "service.killed", SUPFSM_EV_PID, NULL, 0);
}

static void
a_timer_drained(struct supfsm *f, const struct supfsm_event *e,
    struct supfsm_out *o)
{
	(void)e;
	begin_stop(f, o);
}

/* It stayed up for start.min_uptime_ms: the start succeeded. */
static void
a_timer_started(struct supfsm *f, const struct supfsm_event *e,
    struct supfsm_out *o)
{
	(void)e;
	supfsm_set_reason(f, NULL);
	go(f, SF_RUNNING);
	fx_event(o, "service.running", SUPFSM_EV_PID, NULL, 0);
}

static void
a_installed(struct supfsm *f, const struct supfsm_event *e,
    struct supfsm_out *o)
{
	f->install_job = 0;
	if (!e->ok) {
		supfsm_set_reason(f, "artifact install failed: %.2400s",
		    e->text ? e->text : "");
		/* What runs keeps running the artifact it has. */
		if (!supfsm_has_process(f->state) && f->goal == SG_RUN)
			fail(f, f->reason, o);
		return;
	}
	if (f->goal != SG_RUN)
		return;
	if (supfsm_has_process(f->state)) {
		begin_stop(f, o);
		return;
	}
	fresh(f);
	start(f, SW_API, o);
}

static void
a_prepared(struct supfsm *f, const struct supfsm_event *e,
    struct supfsm_out *o)
{
	int	stale = f->prep_gen != f->gen;

	f->prep_job = 0;
	f->prep_gen = 0;
	if (f->goal == SG_DELETE) {
		fx(o, FX_FORGET, 0, 0);
		return;
	}
	if (f->state != SF_PREPARING)
		return;
	if (f->goal != SG_RUN) {
		go(f, SF_STOPPED);
		return;
	}
	if (f->install_job > 0) {
		/* A new spec waits for its artifact; that install starts it. */
		go(f, SF_WAITING);
		return;
	}
	if (stale) {
		start(f, f->why, o);
		return;
	}
	if (!e->ok) {
		char	r[SUPFSM_REASON_MAX];

		snprintf(r, sizeof(r), "prepare %.2500s", e->text ? e->text :
		    "failed");
		fail(f, r, o);
		return;
	}
	go(f, f->p.min_uptime_ms > 0 ? SF_STARTING : SF_RUNNING);
	fx(o, FX_SPAWN, (int)f->why, 0);
	if (f->p.min_uptime_ms > 0)
		fx(o, FX_TIMER, 0, f->p.min_uptime_ms);
}

/* An effect failed: the service cannot start. */
static void
a_failed(struct supfsm *f, const struct supfsm_event *e, struct supfsm_out *o)
{
	if (f->goal == SG_DELETE) {
		fx(o, FX_FORGET, 0, 0);
		return;
	}
	fail(f, e->text ? e->text : "cannot start", o);
}

/* The recorded process lives: adopt it, and go on with a stop. */
static void
a_adopt(struct supfsm *f, const struct supfsm_event *e, struct supfsm_out *o)
{
	supfsm_set_reason(f, NULL);
	/* A stop, or a restart (goal run), under way: it goes on. */
	if (f->goal != SG_RUN || f->state == SF_STOPPING) {
		/* A fresh signal and a fresh SIGKILL deadline. */
		go(f, SF_RUNNING);
		begin_stop(f, o);
		return;
	}
	if (f->p.min_uptime_ms > 0 && e->now - f->started <
	    f->p.min_uptime_ms) {
		go(f, SF_STARTING);
		fx(o, FX_TIMER, 0, f->p.min_uptime_ms - (e->now - f->started));
	} else
		go(f, SF_RUNNING);
}

static void
a_boot(struct supfsm *f, const struct supfsm_event *e, struct supfsm_out *o)
{
	int	was_live = supfsm_has_process(f->state) ||
	    f->state == SF_BACKOFF || f->state == SF_PREPARING ||
	    f->state == SF_WAITING;

	f->why = SW_BOOT;
	/* Only the job boot names is still of interest. */
	f->install_job = f->prep_job = 0;
	f->prep_gen = 0;
	/* A delete the last nodee began (its row says so) ends now. */
	if (f->goal == SG_DELETE) {
		fx(o, FX_FORGET, 0, 0);
		return;
	}
	if (f->goal != SG_RUN) {
		if (was_live)
			go(f, SF_STOPPED);
		/* A stop or drain that ended while no nodee watched. */
		if (f->snap != SS_NONE && (f->snap == SS_DRAIN ?
		    f->p.snap_on_drain : f->p.snap_on_stop))
			fx(o, FX_SNAPSHOT, (int)f->snap, 0);
		f->snap = SS_NONE;
		return;
	}
	switch (e->boot) {
	case SB_INSTALL_ACTIVE:
		f->install_job = e->job;
		go(f, SF_WAITING);
		return;
	case SB_PREPARE_ACTIVE:
		f->prep_job = e->job;
		f->prep_gen = f->gen;
		go(f, SF_PREPARING);
		return;
	case SB_PREPARE_OK:
		if (f->state == SF_PREPARING) {
			go(f, f->p.min_uptime_ms > 0 ? SF_STARTING :
			    SF_RUNNING);
			fx(o, FX_SPAWN, SW_BOOT, 0);
			if (f->p.min_uptime_ms > 0)
				fx(o, FX_TIMER, 0, f->p.min_uptime_ms);
			return;
		}
		break;
	case SB_PREPARE_FAILED:
		if (f->state == SF_PREPARING) {
			char	r[SUPFSM_REASON_MAX];

			snprintf(r, sizeof(r), "prepare %.2500s", e->text ?
			    e->text : "failed");
			fail(f, r, o);
			return;
		}
		break;
	default:
		break;
	}
	/* What gave up or ended by its policy stays so until started. */
	if (f->state == SF_FAILED || f->state == SF_EXITED)
		return;
	start(f, SW_BOOT, o);
}

/* ------------------------------------------------------------ helpers */

static void
fx(struct supfsm_out *o, enum supfsm_fx kind, int arg, int64_t ms)
{
	if (o->nfx == SUPFSM_FX_MAX)
		return;
	memset(&o->fx[o->nfx], 0, sizeof(o->fx[0]));
	o->fx[o->nfx].fx = kind;
	o->fx[o->nfx].arg = arg;
	o->fx[o->nfx].ms = ms;
	o->nfx++;
}

static void
fx_event(struct supfsm_out *o, const char *kind, int flags, const char *key,
    int64_t num)
{
	if (o->nfx == SUPFSM_FX_MAX)
		return;
	fx(o, FX_EVENT, 0, 0);
	o->fx[o->nfx - 1].kind = kind;
	o->fx[o->nfx - 1].flags = flags;
	o->fx[o->nfx - 1].key = key;
	o->fx[o->nfx - 1].num = num;
}

static void
go(struct supfsm *f, enum supfsm_state st)
{
	f->state = st;
}

/* A start asked for by someone: the restart history starts anew. */
static void
fresh(struct supfsm *f)
{
	f->nwin = 0;
	f->level = 0;
}

/*
 * Starts the service: through a prepare job when its spec has prepare
 * steps (the job's end comes back as SE_PREPARED), else at once.
 */
static void
start(struct supfsm *f, enum supfsm_why why, struct supfsm_out *o)
{
	f->why = why;
	f->gen++;
	if (f->p.needs_prepare) {
		/* One still in flight (cancelled, or for an older spec) ends
		 * first; then this start prepares again. */
		if (f->prep_job == 0) {
			fx(o, FX_PREPARE, (int)why, 0);
			f->prep_gen = f->gen;
		}
		go(f, SF_PREPARING);
		return;
	}
	go(f, f->p.min_uptime_ms > 0 ? SF_STARTING : SF_RUNNING);
	fx(o, FX_SPAWN, (int)why, 0);
	if (f->p.min_uptime_ms > 0)
		fx(o, FX_TIMER, 0, f->p.min_uptime_ms);
}

static void
begin_stop(struct supfsm *f, struct supfsm_out *o)
{
	if (f->state == SF_STOPPING)
		return;
	go(f, SF_STOPPING);
	fx_event(o, "service.stopping", SUPFSM_EV_PID, NULL, 0);
	fx(o, FX_SIGNAL, f->p.stop_sig ? f->p.stop_sig : SIGTERM, 0);
	fx(o, FX_TIMER, 0, f->p.stop_timeout_ms);
}

static void
fail(struct supfsm *f, const char *reason, struct supfsm_out *o)
{
	if (reason != f->reason)
		supfsm_set_reason(f, "%s", reason);
	go(f, SF_FAILED);
	fx_event(o, "service.failed", SUPFSM_EV_REASON, NULL, 0);
}

/* The process is gone and was meant to go (or to be replaced). */
static void
ended(struct supfsm *f, struct supfsm_out *o)
{
	if (f->goal == SG_DELETE) {
		fx(o, FX_FORGET, 0, 0);
		return;
	}
	if (f->goal == SG_RUN) {
		/* A restart, a new spec, a start during a stop. */
		f->snap = SS_NONE;
		fresh(f);
		if (f->install_job > 0)
			go(f, SF_WAITING);
		else
			start(f, SW_API, o);
		return;
	}
	go(f, SF_STOPPED);
	fx_event(o, "service.stopped", 0, NULL, 0);
	if (f->snap != SS_NONE && (f->snap == SS_DRAIN ? f->p.snap_on_drain :
	    f->p.snap_on_stop))
		fx(o, FX_SNAPSHOT, (int)f->snap, 0);
	f->snap = SS_NONE;
}

/* "exited with code 1 after 312 ms" and the last lines of its stderr. */
static void
exit_text(const struct supfsm *f, const struct supfsm_event *e, char *buf,
    size_t len)
{
	int	n;

	if (!e->known)
		n = snprintf(buf, len, "ended (status unknown: adopted)");
	else if (e->sig)
		n = snprintf(buf, len, "killed by signal %d", e->sig);
	else
		n = snprintf(buf, len, "exited with code %d", e->code);
	if (n > 0 && (size_t)n < len && f->started > 0)
		n += snprintf(buf + n, len - (size_t)n, " after %lld ms",
		    (long long)(e->now - f->started));
	if (n > 0 && (size_t)n < len && e->text != NULL && e->text[0] != '\0')
		snprintf(buf + n, len - (size_t)n, "; stderr: %s", e->text);
}

/* Died while it should run: the restart policy decides. */
static void
crashed(struct supfsm *f, const struct supfsm_event *e, struct supfsm_out *o)
{
	char	what[SUPFSM_REASON_MAX - 100];
	int64_t	up = e->now - f->started, delay;
	int	i, j;

	exit_text(f, e, what, sizeof(what));
	if (f->p.policy == SP_NEVER || (f->p.policy == SP_ON_FAILURE &&
	    e->known && e->code == 0 && e->sig == 0)) {
		supfsm_set_reason(f, "%s", what);
		go(f, SF_EXITED);
		return;
	}
	/* A service that ran steadily starts again with a clean slate. */
	if (up >= f->p.reset_after_ms)
		fresh(f);
	for (i = j = 0; i < f->nwin; i++)
		if (e->now - f->window[i] < f->p.period_ms)
			f->window[j++] = f->window[i];
	f->nwin = j;
	if (f->nwin >= f->p.max_restarts) {
		supfsm_set_reason(f, "gave up after %d restarts in %lld s; "
		    "last: %s", f->nwin,
		    (long long)(f->p.period_ms / 1000), what);
		go(f, SF_FAILED);
		fx_event(o, "service.gave_up", SUPFSM_EV_REASON, "restarts",
		    f->nwin);
		return;
	}
	if (f->nwin == SUPFSM_WINDOW_MAX) {
		memmove(f->window, f->window + 1, (SUPFSM_WINDOW_MAX - 1) *
		    sizeof(f->window[0]));
		f->nwin--;
	}
	f->window[f->nwin++] = e->now;
	delay = supfsm_backoff_ms(&f->p, f->level, e->rand);
	if (f->level < 30)
		f->level++;
	/* Never a fork storm: one start a second at most, when it dies. */
	if (delay < SUPFSM_RESTART_FLOOR_MS - up)
		delay = SUPFSM_RESTART_FLOOR_MS - up;
	supfsm_set_reason(f, "%s", what);
	if (delay <= 0) {
		start(f, SW_RESTART, o);
		return;
	}
	go(f, SF_BACKOFF);
	fx_event(o, "service.backoff", SUPFSM_EV_REASON, "delay_ms", delay);
	fx(o, FX_TIMER, 0, delay);
}

/* ------------------------------------------------------------ the table */

/*
 * actions[state][event].  Rows are states, columns events in the order
 * of enum supfsm_event_kind:
 *   PUT START STOP DRAIN RESTART DELETE EXIT TIMER INSTALLED PREPARED
 *   FAILED ADOPT BOOT
 */
static supfsm_action *const supfsm_actions[SF_NSTATES][SE_NEVENTS] = {
	[SF_STOPPED] = { a_put, a_start_idle, a_stop_idle, a_drain_refused,
	    a_restart_idle, a_delete, a_none, a_none, a_installed,
	    a_prepared, a_failed, a_adopt, a_boot },
	[SF_WAITING] = { a_put, a_want_run, a_stop_waiting, a_drain_refused,
	    a_want_run, a_delete, a_none, a_none, a_installed, a_prepared,
	    a_failed, a_adopt, a_boot },
	[SF_PREPARING] = { a_put, a_want_run, a_stop_preparing,
	    a_drain_refused, a_restart_preparing, a_delete, a_none, a_none,
	    a_installed, a_prepared, a_failed, a_adopt, a_boot },
	[SF_STARTING] = { a_put, a_want_run, a_stop_proc, a_drain_refused,
	    a_restart_proc, a_delete, a_exit_crash, a_timer_started,
	    a_installed, a_prepared, a_failed, a_adopt, a_boot },
	[SF_RUNNING] = { a_put, a_want_run, a_stop_proc, a_drain,
	    a_restart_proc, a_delete, a_exit_crash, a_none, a_installed,
	    a_prepared, a_failed, a_adopt, a_boot },
	[SF_BACKOFF] = { a_put, a_start_backoff, a_stop_backoff,
	    a_drain_refused, a_restart_idle, a_delete, a_none,
	    a_timer_backoff, a_installed, a_prepared, a_failed, a_adopt,
	    a_boot },
	[SF_STOPPING] = { a_put, a_want_run, a_stop_stopping,
	    a_drain_refused, a_want_run, a_delete, a_exit_stopped,
	    a_timer_kill, a_installed, a_prepared, a_failed, a_adopt,
	    a_boot },
	[SF_DRAINING] = { a_put, a_want_run, a_stop_proc, a_drain_refused,
	    a_restart_proc, a_delete, a_exit_stopped, a_timer_drained,
	    a_installed, a_prepared, a_failed, a_adopt, a_boot },
	[SF_EXITED] = { a_put, a_start_idle, a_stop_idle, a_drain_refused,
	    a_restart_idle, a_delete, a_none, a_none, a_installed,
	    a_prepared, a_failed, a_adopt, a_boot },
	[SF_FAILED] = { a_put, a_start_idle, a_stop_idle, a_drain_refused,
	    a_restart_idle, a_delete, a_none, a_none, a_installed,
	    a_prepared, a_failed, a_adopt, a_boot },
};

void
supfsm_step(struct supfsm *f, const struct supfsm_event *e,
    struct supfsm_out *o)
{
	memset(o, 0, sizeof(*o));
	o->rc = ND_OK;
	if (f->state >= SF_NSTATES || e->kind >= SE_NEVENTS)
		return;
	supfsm_actions[f->state][e->kind](f, e, o);
}
