/*
 * supfsm: the supervisor's decisions, as a pure function.
 *
 * supfsm_step() takes a service's state and one event and returns the
 * new state and the effects to apply, in order.  It does no I/O and
 * reads no clock: time and the jitter draw come in the event, and what
 * the effects do (fork, signal, submit a job, write the row) is the
 * executor's, in sup.c.  The decisions are a table, one action per
 * (state, event) pair, in the spirit of s6-supervise's
 * actions[state][event], so every pair can be tested on its own.
 *
 * A process exists exactly in SF_STARTING, SF_RUNNING, SF_STOPPING and
 * SF_DRAINING.  What the operator wants is the goal (run, stop, delete),
 * kept apart from the state: "stopping with goal run" is a restart.
 */
#ifndef NODEE_SUPFSM_H
#define NODEE_SUPFSM_H

#include <stdint.h>

#include "nodee.h"

#define SUPFSM_WINDOW_MAX	64
#define SUPFSM_REASON_MAX	2560
#define SUPFSM_FX_MAX		8
/* A service that died at once waits at least this long (as s6 does). */
#define SUPFSM_RESTART_FLOOR_MS	1000

enum supfsm_state {
	SF_STOPPED,	/* no process, none wanted or none yet */
	SF_WAITING,	/* for its artifact's install job (shown "starting") */
	SF_PREPARING,	/* its prepare job runs; then it starts */
	SF_STARTING,	/* a process, younger than start.min_uptime_ms */
	SF_RUNNING,
	SF_BACKOFF,	/* died; a timer restarts it */
	SF_STOPPING,	/* stop signal sent; SIGKILL at the timer */
	SF_DRAINING,	/* drain signal or command; stop at the timer */
	SF_EXITED,	/* ended as its restart policy allows */
	SF_FAILED,	/* gave up, or could not start */
	SF_NSTATES
};

enum supfsm_event_kind {
	SE_PUT,		/* a new spec (job: its install, or 0) */
	SE_START,
	SE_STOP,
	SE_DRAIN,
	SE_RESTART,
	SE_DELETE,	/* purge: with its runtime directory */
	SE_EXIT,	/* the process ended (known, code, sig, text) */
	SE_TIMER,	/* the state's timer fired */
	SE_INSTALLED,	/* the install waited for ended (ok, text) */
	SE_PREPARED,	/* the prepare job ended (ok, text) */
	SE_FAILED,	/* an effect failed (text): spawn, prepare submit */
	SE_ADOPT,	/* daemon start: the recorded process lives */
	SE_BOOT,	/* daemon start: no process (boot says what of the job) */
	SE_NEVENTS
};

enum supfsm_goal { SG_RUN, SG_STOP, SG_DELETE };
enum supfsm_snap { SS_NONE, SS_STOP, SS_DRAIN };
enum supfsm_why { SW_API, SW_RESTART, SW_BOOT };
enum supfsm_policy { SP_ALWAYS, SP_ON_FAILURE, SP_NEVER };

/* What the recorded job of a service was when the daemon started. */
enum supfsm_boot {
	SB_NONE,
	SB_INSTALL_ACTIVE,	/* queued or running again: its end starts it */
	SB_PREPARE_ACTIVE,
	SB_PREPARE_OK,		/* ended unheard, for the spec it has now */
	SB_PREPARE_FAILED,	/* ended unheard; text says why */
};

enum supfsm_fx {
	FX_SPAWN,		/* the main process (why) */
	FX_PREPARE,		/* submit a prepare job (why) */
	FX_CANCEL_PREPARE,	/* the prepare job's work is not wanted */
	FX_SIGNAL,		/* sig to the process group */
	FX_DRAIN,		/* the drain command, or the drain signal */
	FX_TIMER,		/* the state's timer in ms */
	FX_SNAPSHOT,		/* the snapshot a stop or drain asks for */
	FX_FORGET,		/* delete the record (purge: and the tree) */
	FX_EVENT,		/* record an event */
};

/* FX_EVENT details: the executor adds them from what it knows. */
#define SUPFSM_EV_PID		0x1	/* "pid" of the process */
#define SUPFSM_EV_REASON	0x2	/* "reason": the service's reason */

struct supfsm_effect {
	enum supfsm_fx	 fx;
	int		 arg;	/* why, signal, snap */
	int64_t		 ms;	/* FX_TIMER */
	const char	*kind;	/* FX_EVENT */
	const char	*key;	/* FX_EVENT: one integer detail, or NULL */
	int64_t		 num;
	int		 flags;	/* FX_EVENT: SUPFSM_EV_* */
};

/* What of the spec the decisions need; the executor fills it. */
struct supfsm_params {
	enum supfsm_policy	 policy;
	int			 max_restarts;
	int64_t			 period_ms;
	int64_t			 delay_ms;
	int64_t			 max_delay_ms;
	int64_t			 reset_after_ms;
	int64_t			 min_uptime_ms;
	int			 stop_sig;
	int64_t			 stop_timeout_ms;
	int64_t			 drain_timeout_ms;
	int			 needs_prepare;	/* prepare steps or snapshots */
	int			 snap_on_stop;
	int			 snap_on_drain;
};

struct supfsm {
	enum supfsm_state	 state;
	enum supfsm_goal	 goal;
	enum supfsm_snap	 snap;	/* asked by the stop/drain under way */
	enum supfsm_why		 why;	/* of the start being prepared */
	int			 purge;
	int64_t			 install_job;
	int64_t			 prep_job;
	unsigned		 gen;	/* bumped by every new spec and start */
	unsigned		 prep_gen;	/* the gen prep_job prepares */
	int64_t			 started;	/* monotonic ms of the process */
	int64_t			 restarts;
	int64_t			 window[SUPFSM_WINDOW_MAX];
	int			 nwin;
	int			 level;		/* backoff doublings */
	char			*reason;	/* malloc'ed; NULL: none */
	struct supfsm_params	 p;
};

struct supfsm_event {
	enum supfsm_event_kind	 kind;
	int64_t			 now;	/* monotonic ms */
	int64_t			 job;
	int			 ok;
	int			 purge;
	int			 known;	/* SE_EXIT: code/sig are real */
	int			 code;
	int			 sig;
	enum supfsm_boot	 boot;
	uint32_t		 rand;	/* the jitter draw */
	const char		*text;
};

struct supfsm_out {
	enum nd_rc		 rc;	/* the answer to an API command */
	char			 msg[256];
	struct supfsm_effect	 fx[SUPFSM_FX_MAX];
	int			 nfx;
};

void		 supfsm_init(struct supfsm *);
void		 supfsm_free(struct supfsm *);
void		 supfsm_set_reason(struct supfsm *, const char *, ...)
		    __attribute__((format(printf, 2, 3)));
const char	*supfsm_reason(const struct supfsm *);
void		 supfsm_step(struct supfsm *, const struct supfsm_event *,
		    struct supfsm_out *);
const char	*supfsm_state_name(enum supfsm_state);
int		 supfsm_state_parse(const char *, enum supfsm_state *);
int		 supfsm_has_process(enum supfsm_state);
const char	*supfsm_why_name(enum supfsm_why);
int64_t		 supfsm_backoff_ms(const struct supfsm_params *, int, uint32_t);

#endif
