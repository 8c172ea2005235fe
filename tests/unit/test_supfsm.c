/*
 * test_supfsm: the supervisor's decisions.  First every (state, event)
 * pair against a table written from what the supervisor should do (not
 * from what supfsm.c does), then scenarios that follow one service
 * through many events with a model of the executor: it spawns, prepares
 * and forgets as told, and after every step a process exists exactly
 * when the state says one does.
 */
#include <signal.h>

#include "unit.h"

#include "supfsm.h"

#define NOW		200000	/* the table's events, monotonic ms */
#define STOP_SIG	SIGINT	/* not SIGTERM: the spec's signal must show */
#define STOP_MS		10000
#define DRAIN_MS	30000
#define UPTIME_MS	500
#define DRAW0		20	/* the jitter draw that adds 0% */

/* One expected effect; on == 0 ends the list. */
struct wfx {
	int		 on;
	enum supfsm_fx	 fx;
	int		 arg;
	int64_t		 ms;
	const char	*kind;
};

struct want {
	enum supfsm_state	 st;
	enum supfsm_event_kind	 ev;
	enum supfsm_state	 to;
	enum supfsm_goal	 goal;
	enum nd_rc		 rc;
	struct wfx		 fx[4];
};

/* The executor's view of one service, for the scenarios. */
struct run {
	struct supfsm		 f;
	struct supfsm_out	 o;
	int64_t			 now;
	int64_t			 jobs;
	int			 alive;
	int			 forgotten;
	int			 broken;	/* a process where none is */
};

#define W_NONE		{ 0, FX_SPAWN, 0, 0, NULL }
#define W_SPAWN(w)	{ 1, FX_SPAWN, (w), 0, NULL }
#define W_PREP(w)	{ 1, FX_PREPARE, (w), 0, NULL }
#define W_CANCEL	{ 1, FX_CANCEL_PREPARE, 0, 0, NULL }
#define W_SIG(s)	{ 1, FX_SIGNAL, (s), 0, NULL }
#define W_DRAIN		{ 1, FX_DRAIN, 0, 0, NULL }
#define W_TIMER(ms)	{ 1, FX_TIMER, 0, (ms), NULL }
#define W_SNAP(s)	{ 1, FX_SNAPSHOT, (s), 0, NULL }
#define W_FORGET	{ 1, FX_FORGET, 0, 0, NULL }
#define W_EV(k)		{ 1, FX_EVENT, 0, 0, (k) }
#define W_STARTS(w)	W_SPAWN(w), W_TIMER(UPTIME_MS)
#define W_STOPS		W_EV("service.stopping"), W_SIG(STOP_SIG), \
			W_TIMER(STOP_MS)
#define W_FAILS		W_EV("service.failed")
#define W_BACKOFF(ms)	W_EV("service.backoff"), W_TIMER(ms)

#define R(st, ev, to, goal, ...) \
	{ st, ev, to, goal, ND_OK, { __VA_ARGS__ } }
#define REFUSED(st, goal) \
	{ st, SE_DRAIN, st, goal, ND_CONFLICT, { W_NONE } }

/*
 * What each state starts from (fsm_in): a spec with min_uptime 500 ms,
 * stop signal SIGINT, snapshots on stop and drain, policy on-failure;
 * STOPPED, STOPPING and DRAINING have goal stop, the others goal run.
 * WAITING waits for install job 7; PREPARING (a spec with prepare
 * steps) has prepare job 9 for its current spec, started through the
 * API; STARTING's process is 200 ms old, every other one 10 s; STOPPING
 * and DRAINING were asked for by the API (snapshot stop / drain);
 * BACKOFF has one restart in its window.  The events (fsm_ev) come at
 * NOW: SE_PUT without an install job, SE_EXIT with code 1 and stderr
 * "boom", SE_INSTALLED and SE_PREPARED ok, SE_BOOT with no job, a
 * jitter draw of 0%.
 */
static const struct want table[] = {
	R(SF_STOPPED, SE_PUT, SF_STARTING, SG_RUN, W_STARTS(SW_API)),
	R(SF_STOPPED, SE_START, SF_STARTING, SG_RUN, W_STARTS(SW_API)),
	R(SF_STOPPED, SE_STOP, SF_STOPPED, SG_STOP, W_NONE),
	REFUSED(SF_STOPPED, SG_STOP),
	R(SF_STOPPED, SE_RESTART, SF_STARTING, SG_RUN, W_STARTS(SW_API)),
	R(SF_STOPPED, SE_DELETE, SF_STOPPED, SG_DELETE, W_FORGET),
	R(SF_STOPPED, SE_EXIT, SF_STOPPED, SG_STOP, W_NONE),
	R(SF_STOPPED, SE_TIMER, SF_STOPPED, SG_STOP, W_NONE),
	R(SF_STOPPED, SE_INSTALLED, SF_STOPPED, SG_STOP, W_NONE),
	R(SF_STOPPED, SE_PREPARED, SF_STOPPED, SG_STOP, W_NONE),
	R(SF_STOPPED, SE_FAILED, SF_FAILED, SG_STOP, W_FAILS),
	R(SF_STOPPED, SE_ADOPT, SF_STOPPING, SG_STOP, W_STOPS),
	R(SF_STOPPED, SE_BOOT, SF_STOPPED, SG_STOP, W_NONE),

	R(SF_WAITING, SE_PUT, SF_STARTING, SG_RUN, W_STARTS(SW_API)),
	R(SF_WAITING, SE_START, SF_WAITING, SG_RUN, W_NONE),
	R(SF_WAITING, SE_STOP, SF_STOPPED, SG_STOP, W_NONE),
	REFUSED(SF_WAITING, SG_RUN),
	R(SF_WAITING, SE_RESTART, SF_WAITING, SG_RUN, W_NONE),
	R(SF_WAITING, SE_DELETE, SF_WAITING, SG_DELETE, W_FORGET),
	R(SF_WAITING, SE_EXIT, SF_WAITING, SG_RUN, W_NONE),
	R(SF_WAITING, SE_TIMER, SF_WAITING, SG_RUN, W_NONE),
	R(SF_WAITING, SE_INSTALLED, SF_STARTING, SG_RUN, W_STARTS(SW_API)),
	R(SF_WAITING, SE_PREPARED, SF_WAITING, SG_RUN, W_NONE),
	R(SF_WAITING, SE_FAILED, SF_FAILED, SG_RUN, W_FAILS),
	R(SF_WAITING, SE_ADOPT, SF_RUNNING, SG_RUN, W_NONE),
	R(SF_WAITING, SE_BOOT, SF_STARTING, SG_RUN, W_STARTS(SW_BOOT)),

	/* The prepare job in flight prepares an older spec: again after. */
	R(SF_PREPARING, SE_PUT, SF_PREPARING, SG_RUN, W_NONE),
	R(SF_PREPARING, SE_START, SF_PREPARING, SG_RUN, W_NONE),
	R(SF_PREPARING, SE_STOP, SF_STOPPED, SG_STOP, W_CANCEL),
	REFUSED(SF_PREPARING, SG_RUN),
	R(SF_PREPARING, SE_RESTART, SF_PREPARING, SG_RUN, W_NONE),
	/* Forgotten once the job has ended (SE_PREPARED). */
	R(SF_PREPARING, SE_DELETE, SF_STOPPED, SG_DELETE, W_CANCEL),
	R(SF_PREPARING, SE_EXIT, SF_PREPARING, SG_RUN, W_NONE),
	R(SF_PREPARING, SE_TIMER, SF_PREPARING, SG_RUN, W_NONE),
	R(SF_PREPARING, SE_INSTALLED, SF_PREPARING, SG_RUN, W_NONE),
	R(SF_PREPARING, SE_PREPARED, SF_STARTING, SG_RUN, W_STARTS(SW_API)),
	R(SF_PREPARING, SE_FAILED, SF_FAILED, SG_RUN, W_FAILS),
	R(SF_PREPARING, SE_ADOPT, SF_RUNNING, SG_RUN, W_NONE),
	/* Job 9 is not active any more: nothing will end it; prepare anew. */
	R(SF_PREPARING, SE_BOOT, SF_PREPARING, SG_RUN, W_PREP(SW_BOOT)),

	R(SF_STARTING, SE_PUT, SF_STOPPING, SG_RUN, W_STOPS),
	R(SF_STARTING, SE_START, SF_STARTING, SG_RUN, W_NONE),
	R(SF_STARTING, SE_STOP, SF_STOPPING, SG_STOP, W_STOPS),
	REFUSED(SF_STARTING, SG_RUN),
	R(SF_STARTING, SE_RESTART, SF_STOPPING, SG_RUN, W_STOPS),
	R(SF_STARTING, SE_DELETE, SF_STOPPING, SG_DELETE, W_STOPS),
	/* 100 ms of backoff, raised to the floor: 1000 - 200 ms up. */
	R(SF_STARTING, SE_EXIT, SF_BACKOFF, SG_RUN, W_BACKOFF(800)),
	R(SF_STARTING, SE_TIMER, SF_RUNNING, SG_RUN,
	    W_EV("service.running")),
	R(SF_STARTING, SE_INSTALLED, SF_STOPPING, SG_RUN, W_STOPS),
	R(SF_STARTING, SE_PREPARED, SF_STARTING, SG_RUN, W_NONE),
	R(SF_STARTING, SE_FAILED, SF_FAILED, SG_RUN, W_FAILS),
	/* What is left of min_uptime after 200 ms. */
	R(SF_STARTING, SE_ADOPT, SF_STARTING, SG_RUN, W_TIMER(300)),
	R(SF_STARTING, SE_BOOT, SF_STARTING, SG_RUN, W_STARTS(SW_BOOT)),

	R(SF_RUNNING, SE_PUT, SF_STOPPING, SG_RUN, W_STOPS),
	R(SF_RUNNING, SE_START, SF_RUNNING, SG_RUN, W_NONE),
	R(SF_RUNNING, SE_STOP, SF_STOPPING, SG_STOP, W_STOPS),
	R(SF_RUNNING, SE_DRAIN, SF_DRAINING, SG_STOP, W_DRAIN,
	    W_EV("service.draining"), W_TIMER(DRAIN_MS)),
	R(SF_RUNNING, SE_RESTART, SF_STOPPING, SG_RUN, W_STOPS),
	R(SF_RUNNING, SE_DELETE, SF_STOPPING, SG_DELETE, W_STOPS),
	R(SF_RUNNING, SE_EXIT, SF_BACKOFF, SG_RUN, W_BACKOFF(100)),
	R(SF_RUNNING, SE_TIMER, SF_RUNNING, SG_RUN, W_NONE),
	R(SF_RUNNING, SE_INSTALLED, SF_STOPPING, SG_RUN, W_STOPS),
	R(SF_RUNNING, SE_PREPARED, SF_RUNNING, SG_RUN, W_NONE),
	R(SF_RUNNING, SE_FAILED, SF_FAILED, SG_RUN, W_FAILS),
	R(SF_RUNNING, SE_ADOPT, SF_RUNNING, SG_RUN, W_NONE),
	R(SF_RUNNING, SE_BOOT, SF_STARTING, SG_RUN, W_STARTS(SW_BOOT)),

	/* A start of any kind during the wait is a crash restart, at once. */
	R(SF_BACKOFF, SE_PUT, SF_STARTING, SG_RUN, W_STARTS(SW_API)),
	R(SF_BACKOFF, SE_START, SF_STARTING, SG_RUN, W_STARTS(SW_RESTART)),
	R(SF_BACKOFF, SE_STOP, SF_STOPPED, SG_STOP, W_SNAP(SS_STOP)),
	REFUSED(SF_BACKOFF, SG_RUN),
	R(SF_BACKOFF, SE_RESTART, SF_STARTING, SG_RUN,
	    W_STARTS(SW_RESTART)),
	R(SF_BACKOFF, SE_DELETE, SF_BACKOFF, SG_DELETE, W_FORGET),
	R(SF_BACKOFF, SE_EXIT, SF_BACKOFF, SG_RUN, W_NONE),
	R(SF_BACKOFF, SE_TIMER, SF_STARTING, SG_RUN, W_STARTS(SW_RESTART)),
	R(SF_BACKOFF, SE_INSTALLED, SF_STARTING, SG_RUN, W_STARTS(SW_API)),
	R(SF_BACKOFF, SE_PREPARED, SF_BACKOFF, SG_RUN, W_NONE),
	R(SF_BACKOFF, SE_FAILED, SF_FAILED, SG_RUN, W_FAILS),
	R(SF_BACKOFF, SE_ADOPT, SF_RUNNING, SG_RUN, W_NONE),
	R(SF_BACKOFF, SE_BOOT, SF_STARTING, SG_RUN, W_STARTS(SW_BOOT)),

	/* The stop under way goes on; the goal says what follows it. */
	R(SF_STOPPING, SE_PUT, SF_STOPPING, SG_RUN, W_NONE),
	R(SF_STOPPING, SE_START, SF_STOPPING, SG_RUN, W_NONE),
	R(SF_STOPPING, SE_STOP, SF_STOPPING, SG_STOP, W_NONE),
	REFUSED(SF_STOPPING, SG_STOP),
	R(SF_STOPPING, SE_RESTART, SF_STOPPING, SG_RUN, W_NONE),
	R(SF_STOPPING, SE_DELETE, SF_STOPPING, SG_DELETE, W_NONE),
	R(SF_STOPPING, SE_EXIT, SF_STOPPED, SG_STOP,
	    W_EV("service.stopped"), W_SNAP(SS_STOP)),
	R(SF_STOPPING, SE_TIMER, SF_STOPPING, SG_STOP, W_SIG(SIGKILL),
	    W_EV("service.killed")),
	R(SF_STOPPING, SE_INSTALLED, SF_STOPPING, SG_STOP, W_NONE),
	R(SF_STOPPING, SE_PREPARED, SF_STOPPING, SG_STOP, W_NONE),
	R(SF_STOPPING, SE_FAILED, SF_FAILED, SG_STOP, W_FAILS),
	R(SF_STOPPING, SE_ADOPT, SF_STOPPING, SG_STOP, W_STOPS),
	R(SF_STOPPING, SE_BOOT, SF_STOPPED, SG_STOP, W_SNAP(SS_STOP)),

	R(SF_DRAINING, SE_PUT, SF_STOPPING, SG_RUN, W_STOPS),
	R(SF_DRAINING, SE_START, SF_DRAINING, SG_RUN, W_NONE),
	R(SF_DRAINING, SE_STOP, SF_STOPPING, SG_STOP, W_STOPS),
	REFUSED(SF_DRAINING, SG_STOP),
	R(SF_DRAINING, SE_RESTART, SF_STOPPING, SG_RUN, W_STOPS),
	R(SF_DRAINING, SE_DELETE, SF_STOPPING, SG_DELETE, W_STOPS),
	R(SF_DRAINING, SE_EXIT, SF_STOPPED, SG_STOP,
	    W_EV("service.stopped"), W_SNAP(SS_DRAIN)),
	R(SF_DRAINING, SE_TIMER, SF_STOPPING, SG_STOP, W_STOPS),
	R(SF_DRAINING, SE_INSTALLED, SF_DRAINING, SG_STOP, W_NONE),
	R(SF_DRAINING, SE_PREPARED, SF_DRAINING, SG_STOP, W_NONE),
	R(SF_DRAINING, SE_FAILED, SF_FAILED, SG_STOP, W_FAILS),
	R(SF_DRAINING, SE_ADOPT, SF_STOPPING, SG_STOP, W_STOPS),
	R(SF_DRAINING, SE_BOOT, SF_STOPPED, SG_STOP, W_SNAP(SS_DRAIN)),

	/* Ended by its policy: so it stays until someone starts it. */
	R(SF_EXITED, SE_PUT, SF_STARTING, SG_RUN, W_STARTS(SW_API)),
	R(SF_EXITED, SE_START, SF_STARTING, SG_RUN, W_STARTS(SW_API)),
	R(SF_EXITED, SE_STOP, SF_EXITED, SG_STOP, W_NONE),
	REFUSED(SF_EXITED, SG_RUN),
	R(SF_EXITED, SE_RESTART, SF_STARTING, SG_RUN, W_STARTS(SW_API)),
	R(SF_EXITED, SE_DELETE, SF_EXITED, SG_DELETE, W_FORGET),
	R(SF_EXITED, SE_EXIT, SF_EXITED, SG_RUN, W_NONE),
	R(SF_EXITED, SE_TIMER, SF_EXITED, SG_RUN, W_NONE),
	R(SF_EXITED, SE_INSTALLED, SF_STARTING, SG_RUN, W_STARTS(SW_API)),
	R(SF_EXITED, SE_PREPARED, SF_EXITED, SG_RUN, W_NONE),
	R(SF_EXITED, SE_FAILED, SF_FAILED, SG_RUN, W_FAILS),
	R(SF_EXITED, SE_ADOPT, SF_RUNNING, SG_RUN, W_NONE),
	R(SF_EXITED, SE_BOOT, SF_EXITED, SG_RUN, W_NONE),

	R(SF_FAILED, SE_PUT, SF_STARTING, SG_RUN, W_STARTS(SW_API)),
	R(SF_FAILED, SE_START, SF_STARTING, SG_RUN, W_STARTS(SW_API)),
	R(SF_FAILED, SE_STOP, SF_FAILED, SG_STOP, W_NONE),
	REFUSED(SF_FAILED, SG_RUN),
	R(SF_FAILED, SE_RESTART, SF_STARTING, SG_RUN, W_STARTS(SW_API)),
	R(SF_FAILED, SE_DELETE, SF_FAILED, SG_DELETE, W_FORGET),
	R(SF_FAILED, SE_EXIT, SF_FAILED, SG_RUN, W_NONE),
	R(SF_FAILED, SE_TIMER, SF_FAILED, SG_RUN, W_NONE),
	R(SF_FAILED, SE_INSTALLED, SF_STARTING, SG_RUN, W_STARTS(SW_API)),
	R(SF_FAILED, SE_PREPARED, SF_FAILED, SG_RUN, W_NONE),
	R(SF_FAILED, SE_FAILED, SF_FAILED, SG_RUN, W_FAILS),
	R(SF_FAILED, SE_ADOPT, SF_RUNNING, SG_RUN, W_NONE),
	R(SF_FAILED, SE_BOOT, SF_FAILED, SG_RUN, W_NONE),
};

/* Our own names: supfsm_state_name() shows WAITING as "starting". */
static const char *const st_names[SF_NSTATES] = {
	"STOPPED", "WAITING", "PREPARING", "STARTING", "RUNNING",
	"BACKOFF", "STOPPING", "DRAINING", "EXITED", "FAILED",
};
static const char *const ev_names[SE_NEVENTS] = {
	"PUT", "START", "STOP", "DRAIN", "RESTART", "DELETE", "EXIT",
	"TIMER", "INSTALLED", "PREPARED", "FAILED", "ADOPT", "BOOT",
};
static const char *const goal_names[] = { "run", "stop", "delete" };
static const char *const why_names[] = { "api", "restart", "boot" };
static const char *const snap_names[] = { "none", "stop", "drain" };

static char	mismatches[16384];

/* The state (SF_NSTATES: any) and the effects after the last step. */
#define run_expect(r, st, fx)	run_expect_at((r), (st), (fx), __LINE__)

static void	fsm_params(struct supfsm_params *);
static void	fsm_in(struct supfsm *, enum supfsm_state);
static struct supfsm_event fsm_ev(enum supfsm_event_kind);
static void	fx_fmt(char *, size_t, enum supfsm_fx, int, int64_t,
		    const char *);
static void	out_fmt(const struct supfsm_out *, char *, size_t);
static void	want_fmt(const struct wfx *, char *, size_t);
static void	check_pair(const struct want *);
static void	run_init(struct run *, enum supfsm_state);
static void	run_step(struct run *, struct supfsm_event *);
static void	run_ev(struct run *, struct supfsm_event *);
static void	run(struct run *, enum supfsm_event_kind);
static void	run_exit(struct run *, int64_t, int, int, const char *);
static void	run_expect_at(const struct run *, enum supfsm_state,
		    const char *, int);
static const struct supfsm_effect *run_fx(const struct run *,
		    enum supfsm_fx);

/* ------------------------------------------------------- every pair */

static void
test_every_pair(void **state)
{
	int	seen[SF_NSTATES][SE_NEVENTS];
	size_t	i;
	int	s, e;

	(void)state;
	memset(seen, 0, sizeof(seen));
	mismatches[0] = '\0';
	for (i = 0; i < nitems(table); i++) {
		seen[table[i].st][table[i].ev]++;
		check_pair(&table[i]);
	}
	for (s = 0; s < SF_NSTATES; s++)
		for (e = 0; e < SE_NEVENTS; e++)
			if (seen[s][e] != 1)
				fail_msg("%s x %s is in the table %d times",
				    st_names[s], ev_names[e], seen[s][e]);
	assert_int_equal(nitems(table), SF_NSTATES * SE_NEVENTS);
	if (mismatches[0] != '\0')
		fail_msg("pairs that differ from the table:\n%s", mismatches);
}

/* Appends what differs to mismatches, so one run shows every pair. */
static void
check_pair(const struct want *w)
{
	struct run		r = { 0 };
	struct supfsm_event	e = fsm_ev(w->ev);
	char			got[512], exp[512];
	size_t			n = strlen(mismatches);

	run_init(&r, w->st);
	run_step(&r, &e);
	out_fmt(&r.o, got, sizeof(got));
	want_fmt(w->fx, exp, sizeof(exp));
	if (r.broken)
		snprintf(mismatches + n, sizeof(mismatches) - n, "  %s x %s: "
		    "%s with%s a process\n", st_names[w->st], ev_names[w->ev],
		    st_names[r.f.state], r.alive ? "" : "out");
	n = strlen(mismatches);
	if (r.f.state == w->to && r.f.goal == w->goal && r.o.rc == w->rc &&
	    strcmp(got, exp) == 0) {
		supfsm_free(&r.f);
		return;
	}
	snprintf(mismatches + n, sizeof(mismatches) - n, "  %s x %s: "
	    "expected %s goal %s rc %d [%s], got %s goal %s rc %d [%s]\n",
	    st_names[w->st], ev_names[w->ev], st_names[w->to],
	    goal_names[w->goal], (int)w->rc, exp, st_names[r.f.state],
	    goal_names[r.f.goal], (int)r.o.rc, got);
	supfsm_free(&r.f);
}

/* ------------------------------------------------------- scenarios */

/* Exits within the window: longer waits, then it gives up. */
static void
test_crash_loop(void **state)
{
	struct run	r = { 0 };
	int64_t		prev = 0, ms;
	int		i;

	(void)state;
	run_init(&r, SF_STOPPED);
	r.f.p.min_uptime_ms = 0;
	run(&r, SE_START);
	run_expect(&r, SF_RUNNING, "SPAWN(api)");
	for (i = 0; i < r.f.p.max_restarts; i++) {
		run_exit(&r, 2000, 1, 0, "boom");
		assert_int_equal(r.f.state, SF_BACKOFF);
		ms = run_fx(&r, FX_TIMER)->ms;
		assert_int_equal(ms, supfsm_backoff_ms(&r.f.p, i, DRAW0));
		assert_true(ms > prev);
		assert_int_equal(run_fx(&r, FX_EVENT)->num, ms);
		prev = ms;
		r.now += ms;
		run(&r, SE_TIMER);
		run_expect(&r, SF_RUNNING, "SPAWN(restart)");
	}
	run_exit(&r, 2000, 1, 0, "boom");
	run_expect(&r, SF_FAILED, "EVENT(service.gave_up)");
	assert_contains(r.f.reason, "gave up after 3 restarts");
	assert_contains(r.f.reason, "exited with code 1");
	/* Failed until someone starts it, then with a clean slate. */
	run(&r, SE_START);
	run_expect(&r, SF_RUNNING, "SPAWN(api)");
	run_exit(&r, 2000, 1, 0, "boom");
	assert_int_equal(run_fx(&r, FX_TIMER)->ms, r.f.p.delay_ms);
	supfsm_free(&r.f);
}

/* Exits older than period_ms no longer count. */
static void
test_crash_window_slides(void **state)
{
	struct run	r = { 0 };
	int		i;

	(void)state;
	run_init(&r, SF_STOPPED);
	r.f.p.min_uptime_ms = 0;
	r.f.p.max_restarts = 2;
	r.f.p.period_ms = 5000;
	run(&r, SE_START);
	for (i = 0; i < 10; i++) {
		run_exit(&r, 3000, 1, 0, NULL);
		assert_int_equal(r.f.state, SF_BACKOFF);
		r.now += run_fx(&r, FX_TIMER)->ms;
		run(&r, SE_TIMER);
	}
	supfsm_free(&r.f);
}

/* A run of reset_after_ms forgets the doublings. */
static void
test_crash_reset_after(void **state)
{
	struct run	r = { 0 };

	(void)state;
	run_init(&r, SF_STOPPED);
	r.f.p.min_uptime_ms = 0;
	run(&r, SE_START);
	run_exit(&r, 2000, 1, 0, NULL);
	r.now += run_fx(&r, FX_TIMER)->ms;
	run(&r, SE_TIMER);
	run_exit(&r, 2000, 1, 0, NULL);
	assert_int_equal(run_fx(&r, FX_TIMER)->ms, 2 * r.f.p.delay_ms);
	r.now += run_fx(&r, FX_TIMER)->ms;
	run(&r, SE_TIMER);
	run_exit(&r, r.f.p.reset_after_ms, 1, 0, NULL);
	assert_int_equal(run_fx(&r, FX_TIMER)->ms, r.f.p.delay_ms);
	supfsm_free(&r.f);
}

/* One start a second at most, whatever delay_ms says. */
static void
test_restart_floor(void **state)
{
	struct run	r = { 0 };

	(void)state;
	run_init(&r, SF_STOPPED);
	r.f.p.min_uptime_ms = 0;
	r.f.p.delay_ms = 0;
	run(&r, SE_START);
	run_exit(&r, 200, 1, 0, NULL);
	assert_int_equal(r.f.state, SF_BACKOFF);
	assert_true(run_fx(&r, FX_TIMER)->ms >= 800);
	r.now += run_fx(&r, FX_TIMER)->ms;
	run(&r, SE_TIMER);
	run_expect(&r, SF_RUNNING, "SPAWN(restart)");
	run_exit(&r, 5000, 1, 0, NULL);
	run_expect(&r, SF_RUNNING, "SPAWN(restart)");
	supfsm_free(&r.f);
}

static void
test_min_uptime(void **state)
{
	struct run	r = { 0 };

	(void)state;
	run_init(&r, SF_STOPPED);
	run(&r, SE_START);
	run_expect(&r, SF_STARTING, "SPAWN(api) TIMER(500)");
	r.now += UPTIME_MS;
	run(&r, SE_TIMER);
	run_expect(&r, SF_RUNNING, "EVENT(service.running)");

	run_init(&r, SF_STOPPED);
	run(&r, SE_START);
	run_exit(&r, 120, 1, 0, "panic: no config");
	assert_int_equal(r.f.state, SF_BACKOFF);
	assert_contains(r.f.reason, "exited with code 1 after 120 ms");
	assert_contains(r.f.reason, "panic: no config");

	run_init(&r, SF_STOPPED);
	r.f.p.min_uptime_ms = 0;
	run(&r, SE_START);
	run_expect(&r, SF_RUNNING, "SPAWN(api)");
	supfsm_free(&r.f);
}

/* Different draws spread the restarts by at most 20% either way. */
static void
test_backoff_jitter(void **state)
{
	struct supfsm_params	p;
	int64_t			base, d;
	uint32_t		draw;
	int			level;

	(void)state;
	fsm_params(&p);
	p.delay_ms = 1000;
	assert_int_not_equal(supfsm_backoff_ms(&p, 0, 0),
	    supfsm_backoff_ms(&p, 0, 40));
	assert_int_not_equal(supfsm_backoff_ms(&p, 0, 7),
	    supfsm_backoff_ms(&p, 0, 33));
	for (level = 0; level < 8; level++) {
		base = p.delay_ms << level;
		if (base > p.max_delay_ms)
			base = p.max_delay_ms;
		for (draw = 0; draw < 1000; draw += 7) {
			d = supfsm_backoff_ms(&p, level, draw);
			assert_in_range(d, base - base / 5, base + base / 5);
		}
	}
}

/* max_delay_ms is the longest wait, jitter included. */
static void
test_backoff_cap(void **state)
{
	struct supfsm_params	p;
	int64_t			d;
	uint32_t		draw;
	int			level;

	(void)state;
	fsm_params(&p);
	for (level = 0; level <= 40; level++)
		for (draw = 0; draw < 41; draw++) {
			d = supfsm_backoff_ms(&p, level, draw);
			if (d < 0 || d > p.max_delay_ms)
				fail_msg("level %d draw %u: %lld ms, more than "
				    "max_delay_ms %lld", level, draw,
				    (long long)d, (long long)p.max_delay_ms);
		}
	assert_true(supfsm_backoff_ms(&p, 40, 0) >= p.max_delay_ms * 4 / 5);
	/* At the cap the draws still spread: no pile-up at the maximum. */
	assert_int_equal(supfsm_backoff_ms(&p, 40, 40), p.max_delay_ms * 4 / 5);
	assert_int_equal(supfsm_backoff_ms(&p, 40, 30), p.max_delay_ms * 9 / 10);
	assert_int_equal(supfsm_backoff_ms(&p, 40, 10), p.max_delay_ms * 9 / 10);
	assert_int_equal(supfsm_backoff_ms(&p, 40, 20), p.max_delay_ms);
}

static enum supfsm_state
crash_with(enum supfsm_policy policy, int code, int sig)
{
	struct run	r = { 0 };

	run_init(&r, SF_STOPPED);
	r.f.p.policy = policy;
	r.f.p.min_uptime_ms = 0;
	run(&r, SE_START);
	if (code == -1) {
		/* An adopted process: its status died with its parent. */
		struct supfsm_event	e = fsm_ev(SE_EXIT);

		e.known = 0;
		r.now += 5000;
		run_ev(&r, &e);
		assert_contains(r.f.reason, "status unknown");
	} else
		run_exit(&r, 5000, code, sig, NULL);
	supfsm_free(&r.f);
	return r.f.state;
}

static void
test_policy(void **state)
{
	(void)state;
	assert_int_equal(crash_with(SP_NEVER, 1, 0), SF_EXITED);
	assert_int_equal(crash_with(SP_NEVER, 0, 0), SF_EXITED);
	assert_int_equal(crash_with(SP_ON_FAILURE, 0, 0), SF_EXITED);
	assert_int_equal(crash_with(SP_ON_FAILURE, 1, 0), SF_BACKOFF);
	assert_int_equal(crash_with(SP_ON_FAILURE, 0, SIGSEGV), SF_BACKOFF);
	assert_int_equal(crash_with(SP_ALWAYS, 0, 0), SF_BACKOFF);
	assert_int_equal(crash_with(SP_ON_FAILURE, -1, 0), SF_BACKOFF);
}

static void
test_stop_during_drain(void **state)
{
	struct run	r = { 0 };

	(void)state;
	run_init(&r, SF_RUNNING);
	run(&r, SE_DRAIN);
	run_expect(&r, SF_DRAINING,
	    "DRAIN EVENT(service.draining) TIMER(30000)");
	run(&r, SE_STOP);
	run_expect(&r, SF_STOPPING,
	    "EVENT(service.stopping) SIGNAL(2) TIMER(10000)");
	run_exit(&r, 100, 0, 0, NULL);
	run_expect(&r, SF_STOPPED, "EVENT(service.stopped) SNAPSHOT(drain)");

	/* Without a snapshot on drain, the stop's own counts. */
	run_init(&r, SF_RUNNING);
	r.f.p.snap_on_drain = 0;
	run(&r, SE_DRAIN);
	run(&r, SE_STOP);
	run_exit(&r, 100, 0, 0, NULL);
	run_expect(&r, SF_STOPPED, "EVENT(service.stopped) SNAPSHOT(stop)");

	/* The drain timer begins the stop. */
	run_init(&r, SF_RUNNING);
	run(&r, SE_DRAIN);
	run(&r, SE_TIMER);
	assert_int_equal(r.f.state, SF_STOPPING);
	run(&r, SE_TIMER);
	run_expect(&r, SF_STOPPING, "SIGNAL(9) EVENT(service.killed)");
	run_exit(&r, 100, 0, SIGKILL, NULL);
	run_expect(&r, SF_STOPPED, "EVENT(service.stopped) SNAPSHOT(drain)");
	supfsm_free(&r.f);
}

/* A start or restart while stopping is kept: it starts after the exit. */
static void
test_restart_while_stopping(void **state)
{
	static const enum supfsm_event_kind	again[] = {
		SE_RESTART, SE_START, SE_PUT
	};
	struct run	r = { 0 };
	size_t		i;

	(void)state;
	for (i = 0; i < nitems(again); i++) {
		run_init(&r, SF_RUNNING);
		run(&r, SE_STOP);
		run(&r, again[i]);
		run_expect(&r, SF_STOPPING, "");
		assert_int_equal(r.f.goal, SG_RUN);
		run_exit(&r, 100, 0, 0, NULL);
		run_expect(&r, SF_STARTING, "SPAWN(api) TIMER(500)");
	}
	supfsm_free(&r.f);
}

static void
test_delete_while_preparing(void **state)
{
	struct run		r = { 0 };
	struct supfsm_event	e = fsm_ev(SE_DELETE);

	(void)state;
	run_init(&r, SF_STOPPED);
	r.f.p.needs_prepare = 1;
	run(&r, SE_START);
	run_expect(&r, SF_PREPARING, "PREPARE(api)");
	e.purge = 1;
	run_ev(&r, &e);
	run_expect(&r, SF_STOPPED, "CANCEL_PREPARE");
	assert_int_equal(r.f.goal, SG_DELETE);
	assert_int_equal(r.f.purge, 1);
	assert_int_equal(r.forgotten, 0);
	e = fsm_ev(SE_PREPARED);
	e.ok = 0;
	e.text = "cancelled";
	run_ev(&r, &e);
	run_expect(&r, SF_STOPPED, "FORGET");
	assert_int_equal(r.forgotten, 1);
	supfsm_free(&r.f);
}

/* A new spec or a restart during a prepare: prepare again, then spawn. */
static void
test_stale_prepare(void **state)
{
	static const enum supfsm_event_kind	news[] = {
		SE_PUT, SE_RESTART
	};
	struct run	r = { 0 };
	size_t		i;

	(void)state;
	for (i = 0; i < nitems(news); i++) {
		run_init(&r, SF_STOPPED);
		r.f.p.needs_prepare = 1;
		run(&r, SE_START);
		run(&r, news[i]);
		run_expect(&r, SF_PREPARING, "");
		run(&r, SE_PREPARED);
		run_expect(&r, SF_PREPARING, "PREPARE(api)");
		run(&r, SE_PREPARED);
		run_expect(&r, SF_STARTING, "SPAWN(api) TIMER(500)");
	}
	supfsm_free(&r.f);
}

/*
 * A crash restart prepares again (every start does); a stop while it
 * prepares counts as a stop of a crashed service: a snapshot.
 */
static void
test_crash_restart_prepares(void **state)
{
	struct run	r = { 0 };

	(void)state;
	run_init(&r, SF_STOPPED);
	r.f.p.needs_prepare = 1;
	run(&r, SE_START);
	run(&r, SE_PREPARED);
	run_expect(&r, SF_STARTING, "SPAWN(api) TIMER(500)");
	run_exit(&r, 2000, 1, 0, NULL);
	r.now += run_fx(&r, FX_TIMER)->ms;
	run(&r, SE_TIMER);
	run_expect(&r, SF_PREPARING, "PREPARE(restart)");
	run(&r, SE_STOP);
	run_expect(&r, SF_STOPPED, "CANCEL_PREPARE SNAPSHOT(stop)");
	/* The cancelled job ends; nothing more happens. */
	run(&r, SE_PREPARED);
	run_expect(&r, SF_STOPPED, "");
	supfsm_free(&r.f);
}

static void
test_prepare_failed(void **state)
{
	struct run		r = { 0 };
	struct supfsm_event	e = fsm_ev(SE_PREPARED);

	(void)state;
	run_init(&r, SF_STOPPED);
	r.f.p.needs_prepare = 1;
	run(&r, SE_START);
	e.ok = 0;
	e.text = "step 2 (template conf/app.properties.in): line 3: "
	    "unknown name ${colour}";
	run_ev(&r, &e);
	run_expect(&r, SF_FAILED, "EVENT(service.failed)");
	assert_contains(r.f.reason, "prepare step 2 (template");
	assert_contains(r.f.reason, "${colour}");
	supfsm_free(&r.f);
}

static void
test_boot_prepare_ended(void **state)
{
	struct run		r = { 0 };
	struct supfsm_event	e = fsm_ev(SE_BOOT);

	(void)state;
	run_init(&r, SF_PREPARING);
	e.boot = SB_PREPARE_OK;
	run_ev(&r, &e);
	run_expect(&r, SF_STARTING, "SPAWN(boot) TIMER(500)");

	run_init(&r, SF_PREPARING);
	e.boot = SB_PREPARE_FAILED;
	e.text = "step 1 (copy conf/): no such file in the artifact";
	run_ev(&r, &e);
	run_expect(&r, SF_FAILED, "EVENT(service.failed)");
	assert_contains(r.f.reason, "prepare step 1 (copy conf/)");
	supfsm_free(&r.f);
}

/*
 * The job a boot found ended (or gone) is not waited for again: the
 * next start prepares, the next restart spawns.
 */
static void
test_boot_prepare_ok_then_restart(void **state)
{
	struct run		r = { 0 };
	struct supfsm_event	e = fsm_ev(SE_BOOT);

	(void)state;
	run_init(&r, SF_PREPARING);
	e.boot = SB_PREPARE_OK;
	run_ev(&r, &e);
	run(&r, SE_RESTART);
	run_exit(&r, 100, 0, 0, NULL);
	run_expect(&r, SF_PREPARING, "PREPARE(api)");
	supfsm_free(&r.f);
}

static void
test_boot_prepare_failed_then_start(void **state)
{
	struct run		r = { 0 };
	struct supfsm_event	e = fsm_ev(SE_BOOT);

	(void)state;
	run_init(&r, SF_PREPARING);
	e.boot = SB_PREPARE_FAILED;
	run_ev(&r, &e);
	run(&r, SE_START);
	run_expect(&r, SF_PREPARING, "PREPARE(api)");
	supfsm_free(&r.f);
}

static void
test_boot_install_gone_then_restart(void **state)
{
	struct run	r = { 0 };

	(void)state;
	run_init(&r, SF_WAITING);
	run(&r, SE_BOOT);
	run_expect(&r, SF_STARTING, "SPAWN(boot) TIMER(500)");
	run(&r, SE_RESTART);
	run_exit(&r, 100, 0, 0, NULL);
	run_expect(&r, SF_STARTING, "SPAWN(api) TIMER(500)");
	supfsm_free(&r.f);
}

/* What gave up or ended by its policy stays so across daemon starts. */
static void
test_boot_keeps_ended(void **state)
{
	static const enum supfsm_state	ended[] = { SF_FAILED, SF_EXITED };
	struct run	r = { 0 };
	size_t		i;

	(void)state;
	for (i = 0; i < nitems(ended); i++) {
		run_init(&r, ended[i]);
		assert_int_equal(r.f.goal, SG_RUN);
		run(&r, SE_BOOT);
		run_expect(&r, ended[i], "");
	}
	supfsm_free(&r.f);
}

static void
test_adopt(void **state)
{
	struct run	r = { 0 };

	(void)state;
	/* A stop the last nodee began goes on, with a new deadline. */
	run_init(&r, SF_STOPPING);
	run(&r, SE_ADOPT);
	run_expect(&r, SF_STOPPING,
	    "EVENT(service.stopping) SIGNAL(2) TIMER(10000)");
	run(&r, SE_TIMER);
	run_expect(&r, SF_STOPPING, "SIGNAL(9) EVENT(service.killed)");
	run_exit(&r, 100, 0, SIGKILL, NULL);
	run_expect(&r, SF_STOPPED, "EVENT(service.stopped) SNAPSHOT(stop)");

	/* A young process still has to prove itself. */
	run_init(&r, SF_STARTING);
	run(&r, SE_ADOPT);
	run_expect(&r, SF_STARTING, "TIMER(300)");

	/* A delete under way goes on. */
	run_init(&r, SF_RUNNING);
	run(&r, SE_DELETE);
	run(&r, SE_ADOPT);
	run_expect(&r, SF_STOPPING,
	    "EVENT(service.stopping) SIGNAL(2) TIMER(10000)");
	run_exit(&r, 100, 0, 0, NULL);
	run_expect(&r, SF_NSTATES, "FORGET");
	supfsm_free(&r.f);
}

/* A restart the last nodee began (a new spec) goes on too. */
static void
test_adopt_restart_under_way(void **state)
{
	struct run	r = { 0 };

	(void)state;
	run_init(&r, SF_RUNNING);
	run(&r, SE_PUT);
	run_expect(&r, SF_STOPPING,
	    "EVENT(service.stopping) SIGNAL(2) TIMER(10000)");
	run(&r, SE_ADOPT);
	run_expect(&r, SF_STOPPING,
	    "EVENT(service.stopping) SIGNAL(2) TIMER(10000)");
	run_exit(&r, 100, 0, 0, NULL);
	run_expect(&r, SF_STARTING, "SPAWN(api) TIMER(500)");
	supfsm_free(&r.f);
}

/* A delete the last nodee began ends in FORGET at the next boot. */
static void
test_boot_finishes_delete(void **state)
{
	struct run	r = { 0 };

	(void)state;
	run_init(&r, SF_RUNNING);
	run(&r, SE_DELETE);
	run(&r, SE_BOOT);
	run_expect(&r, SF_NSTATES, "FORGET");
	supfsm_free(&r.f);
}

/* ... and a drain it cut short takes no snapshot of a deleted service. */
static void
test_boot_finishes_delete_drain(void **state)
{
	struct run	r = { 0 };

	(void)state;
	run_init(&r, SF_RUNNING);
	run(&r, SE_DRAIN);
	run(&r, SE_DELETE);
	run_expect(&r, SF_STOPPING,
	    "EVENT(service.stopping) SIGNAL(2) TIMER(10000)");
	run(&r, SE_BOOT);
	run_expect(&r, SF_NSTATES, "FORGET");
	supfsm_free(&r.f);
}

static void
test_installed(void **state)
{
	struct run		r = { 0 };
	struct supfsm_event	e = fsm_ev(SE_PUT);

	(void)state;
	/* What runs keeps running until the new artifact is there. */
	run_init(&r, SF_RUNNING);
	e.job = 7;
	run_ev(&r, &e);
	run_expect(&r, SF_RUNNING, "");
	e = fsm_ev(SE_INSTALLED);
	e.ok = 0;
	e.text = "HTTP 404 from the repository";
	run_ev(&r, &e);
	run_expect(&r, SF_RUNNING, "");
	assert_contains(r.f.reason, "artifact install failed: HTTP 404");

	/* Installed: restart into it. */
	e = fsm_ev(SE_PUT);
	e.job = 8;
	run_ev(&r, &e);
	run(&r, SE_INSTALLED);
	run_expect(&r, SF_STOPPING,
	    "EVENT(service.stopping) SIGNAL(2) TIMER(10000)");
	run_exit(&r, 100, 0, 0, NULL);
	run_expect(&r, SF_STARTING, "SPAWN(api) TIMER(500)");

	/* Nothing runs: a failed install fails it. */
	run_init(&r, SF_WAITING);
	e = fsm_ev(SE_INSTALLED);
	e.ok = 0;
	e.text = "checksum mismatch";
	run_ev(&r, &e);
	run_expect(&r, SF_FAILED, "EVENT(service.failed)");
	assert_contains(r.f.reason, "checksum mismatch");
	supfsm_free(&r.f);
}

static void
test_put_waits_for_install(void **state)
{
	struct run		r = { 0 };
	struct supfsm_event	e = fsm_ev(SE_PUT);

	(void)state;
	run_init(&r, SF_STOPPED);
	e.job = 7;
	run_ev(&r, &e);
	run_expect(&r, SF_WAITING, "");
	assert_int_equal(r.f.goal, SG_RUN);
	assert_string_equal(supfsm_state_name(r.f.state), "starting");
	run(&r, SE_INSTALLED);
	run_expect(&r, SF_STARTING, "SPAWN(api) TIMER(500)");
	supfsm_free(&r.f);
}

static void
test_drain_refused(void **state)
{
	struct run	r = { 0 };
	int		s;

	(void)state;
	for (s = 0; s < SF_NSTATES; s++) {
		run_init(&r, (enum supfsm_state)s);
		run(&r, SE_DRAIN);
		if (s == SF_RUNNING) {
			assert_int_equal(r.o.rc, ND_OK);
			continue;
		}
		assert_int_equal(r.o.rc, ND_CONFLICT);
		assert_contains(r.o.msg, "not running");
		assert_contains(r.o.msg, supfsm_state_name(
		    (enum supfsm_state)s));
		run_expect(&r, (enum supfsm_state)s, "");
	}
	supfsm_free(&r.f);
}

static void
test_state_names(void **state)
{
	enum supfsm_state	st;
	int			s;

	(void)state;
	for (s = 0; s < SF_NSTATES; s++) {
		if (s == SF_WAITING)
			continue;
		assert_int_equal(supfsm_state_parse(supfsm_state_name(
		    (enum supfsm_state)s), &st), 0);
		assert_int_equal(st, s);
	}
	assert_string_equal(supfsm_state_name(SF_WAITING), "starting");
	assert_int_equal(supfsm_state_parse("starting", &st), 0);
	assert_int_equal(st, SF_STARTING);
	assert_int_equal(supfsm_state_parse("waiting", &st), -1);
	assert_int_equal(supfsm_state_parse("", &st), -1);
	assert_int_equal(supfsm_state_parse(NULL, &st), -1);
	assert_string_equal(supfsm_state_name(SF_NSTATES), "unknown");
}

/* ------------------------------------------------------- helpers */

static void
fsm_params(struct supfsm_params *p)
{
	memset(p, 0, sizeof(*p));
	p->policy = SP_ON_FAILURE;
	p->max_restarts = 3;
	p->period_ms = 120000;
	p->delay_ms = 100;
	p->max_delay_ms = 30000;
	p->reset_after_ms = 60000;
	p->min_uptime_ms = UPTIME_MS;
	p->stop_sig = STOP_SIG;
	p->stop_timeout_ms = STOP_MS;
	p->drain_timeout_ms = DRAIN_MS;
	p->snap_on_stop = 1;
	p->snap_on_drain = 1;
}

/* A service as it is in st (see the comment above the table). */
static void
fsm_in(struct supfsm *f, enum supfsm_state st)
{
	supfsm_init(f);
	fsm_params(&f->p);
	f->state = st;
	f->gen = 3;
	f->started = NOW - 10000;
	f->goal = st == SF_STOPPED || st == SF_STOPPING ||
	    st == SF_DRAINING ? SG_STOP : SG_RUN;
	if (st == SF_WAITING)
		f->install_job = 7;
	else if (st == SF_PREPARING) {
		f->p.needs_prepare = 1;
		f->prep_job = 9;
		f->prep_gen = f->gen;
		f->why = SW_API;
	} else if (st == SF_STARTING)
		f->started = NOW - 200;
	else if (st == SF_BACKOFF) {
		f->window[f->nwin++] = NOW - 1000;
		f->level = 1;
	} else if (st == SF_STOPPING)
		f->snap = SS_STOP;
	else if (st == SF_DRAINING)
		f->snap = SS_DRAIN;
	if (st == SF_BACKOFF || st == SF_EXITED || st == SF_FAILED)
		supfsm_set_reason(f, "exited with code 1");
}

static struct supfsm_event
fsm_ev(enum supfsm_event_kind kind)
{
	struct supfsm_event	e;

	memset(&e, 0, sizeof(e));
	e.kind = kind;
	e.now = NOW;
	e.job = kind == SE_INSTALLED ? 7 : kind == SE_PREPARED ? 9 : 0;
	e.ok = 1;
	e.known = 1;
	e.code = 1;
	e.boot = SB_NONE;
	e.rand = DRAW0;
	e.text = "boom";
	return e;
}

/* One effect as the messages show it: "SPAWN(api)", "TIMER(500)". */
static void
fx_fmt(char *buf, size_t len, enum supfsm_fx fx, int arg, int64_t ms,
    const char *kind)
{
	static const char *const names[] = {
		"SPAWN", "PREPARE", "CANCEL_PREPARE", "SIGNAL", "DRAIN",
		"TIMER", "SNAPSHOT", "FORGET", "EVENT",
	};
	size_t	n = strlen(buf);

	if (n > 0 && n < len - 1)
		buf[n++] = ' ';
	buf[n] = '\0';
	if (fx == FX_SPAWN || fx == FX_PREPARE)
		snprintf(buf + n, len - n, "%s(%s)", names[fx],
		    arg >= 0 && arg <= SW_BOOT ? why_names[arg] : "?");
	else if (fx == FX_SIGNAL)
		snprintf(buf + n, len - n, "SIGNAL(%d)", arg);
	else if (fx == FX_SNAPSHOT)
		snprintf(buf + n, len - n, "SNAPSHOT(%s)",
		    arg >= 0 && arg <= SS_DRAIN ? snap_names[arg] : "?");
	else if (fx == FX_TIMER)
		snprintf(buf + n, len - n, "TIMER(%lld)", (long long)ms);
	else if (fx == FX_EVENT)
		snprintf(buf + n, len - n, "EVENT(%s)", kind ? kind : "?");
	else
		snprintf(buf + n, len - n, "%s", names[fx]);
}

static void
out_fmt(const struct supfsm_out *o, char *buf, size_t len)
{
	int	i;

	buf[0] = '\0';
	for (i = 0; i < o->nfx; i++)
		fx_fmt(buf, len, o->fx[i].fx, o->fx[i].arg, o->fx[i].ms,
		    o->fx[i].kind);
}

static void
want_fmt(const struct wfx *w, char *buf, size_t len)
{
	int	i;

	buf[0] = '\0';
	for (i = 0; i < 4 && w[i].on; i++)
		fx_fmt(buf, len, w[i].fx, w[i].arg, w[i].ms, w[i].kind);
}

/* The service in st, as fsm_in makes it, at NOW. */
static void
run_init(struct run *r, enum supfsm_state st)
{
	/* A run used again (declared = { 0 } by every test) frees first. */
	supfsm_free(&r->f);
	memset(r, 0, sizeof(*r));
	fsm_in(&r->f, st);
	r->now = NOW;
	r->jobs = 100;
	r->alive = supfsm_has_process(st);
}

/*
 * One step and what the executor makes of it: an SE_EXIT or SE_BOOT
 * means the process is gone, SE_ADOPT that it lives, SE_FAILED that a
 * spawn failed.  Then the promise of supfsm.h: a process exists
 * exactly in the states that say so (until the service is forgotten).
 */
static void
run_step(struct run *r, struct supfsm_event *e)
{
	int	i;

	e->now = r->now;
	if (e->kind == SE_EXIT || e->kind == SE_BOOT || e->kind == SE_FAILED)
		r->alive = 0;
	else if (e->kind == SE_ADOPT)
		r->alive = 1;
	supfsm_step(&r->f, e, &r->o);
	for (i = 0; i < r->o.nfx; i++) {
		if (r->o.fx[i].fx == FX_SPAWN) {
			r->alive = 1;
			r->f.started = r->now;
		} else if (r->o.fx[i].fx == FX_PREPARE)
			r->f.prep_job = ++r->jobs;
		else if (r->o.fx[i].fx == FX_FORGET)
			r->forgotten = 1;
	}
	r->broken = !r->forgotten && r->alive !=
	    supfsm_has_process(r->f.state);
}

static void
run_ev(struct run *r, struct supfsm_event *e)
{
	run_step(r, e);
	if (r->broken)
		fail_msg("after %s: state %s but %s process",
		    ev_names[e->kind], st_names[r->f.state],
		    r->alive ? "a" : "no");
}

/* An event as fsm_ev makes it, with the ids of the jobs r submitted. */
static void
run(struct run *r, enum supfsm_event_kind kind)
{
	struct supfsm_event	e = fsm_ev(kind);

	if (kind == SE_PREPARED)
		e.job = r->f.prep_job;
	else if (kind == SE_INSTALLED)
		e.job = r->f.install_job;
	run_ev(r, &e);
}

/* The process ends ms later with code or sig and stderr text. */
static void
run_exit(struct run *r, int64_t ms, int code, int sig, const char *text)
{
	struct supfsm_event	e = fsm_ev(SE_EXIT);

	r->now += ms;
	e.code = code;
	e.sig = sig;
	e.text = text;
	run_ev(r, &e);
}

/* The effects formatted as in the table's messages. */
static void
run_expect_at(const struct run *r, enum supfsm_state st, const char *fx,
    int line)
{
	char	got[512];

	out_fmt(&r->o, got, sizeof(got));
	if ((st != SF_NSTATES && r->f.state != st) || strcmp(got, fx) != 0)
		fail_msg("line %d: expected %s [%s], got %s [%s] (reason "
		    "\"%s\")", line, st == SF_NSTATES ? "any" : st_names[st],
		    fx, st_names[r->f.state], got, supfsm_reason(&r->f));
}

static const struct supfsm_effect *
run_fx(const struct run *r, enum supfsm_fx fx)
{
	int	i;

	for (i = 0; i < r->o.nfx; i++)
		if (r->o.fx[i].fx == fx)
			return &r->o.fx[i];
	return NULL;
}

int
main(void)
{
	const struct CMUnitTest	tests[] = {
		cmocka_unit_test(test_every_pair),
		cmocka_unit_test(test_crash_loop),
		cmocka_unit_test(test_crash_window_slides),
		cmocka_unit_test(test_crash_reset_after),
		cmocka_unit_test(test_restart_floor),
		cmocka_unit_test(test_min_uptime),
		cmocka_unit_test(test_backoff_jitter),
		cmocka_unit_test(test_backoff_cap),
		cmocka_unit_test(test_policy),
		cmocka_unit_test(test_stop_during_drain),
		cmocka_unit_test(test_restart_while_stopping),
		cmocka_unit_test(test_delete_while_preparing),
		cmocka_unit_test(test_stale_prepare),
		cmocka_unit_test(test_crash_restart_prepares),
		cmocka_unit_test(test_prepare_failed),
		cmocka_unit_test(test_boot_prepare_ended),
		cmocka_unit_test(test_boot_prepare_ok_then_restart),
		cmocka_unit_test(test_boot_prepare_failed_then_start),
		cmocka_unit_test(test_boot_install_gone_then_restart),
		cmocka_unit_test(test_boot_keeps_ended),
		cmocka_unit_test(test_adopt),
		cmocka_unit_test(test_adopt_restart_under_way),
		cmocka_unit_test(test_boot_finishes_delete),
		cmocka_unit_test(test_boot_finishes_delete_drain),
		cmocka_unit_test(test_installed),
		cmocka_unit_test(test_put_waits_for_install),
		cmocka_unit_test(test_drain_refused),
		cmocka_unit_test(test_state_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
