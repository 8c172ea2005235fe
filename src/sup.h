/*
 * sup: the supervisor.  One thread owns every service process: it is the
 * only code that forks, signals or reaps.  It learns of deaths from the
 * kernel (SIGCHLD through a signalfd, pidfds for re-adopted processes) in
 * an epoll loop, applies the restart policy, and takes commands from the
 * API through a queue.  Specs, desired states and what runs are kept in
 * the store, so a restarted daemon re-adopts live services (pid plus
 * process start time) and starts those that should run.
 */
#ifndef NODEE_SUP_H
#define NODEE_SUP_H

#include <stdint.h>

#include <jansson.h>

#include "config.h"
#include "nodee.h"

enum sup_op {
	SUP_PUT,
	SUP_START,
	SUP_STOP,
	SUP_DRAIN,
	SUP_RESTART,
	SUP_DELETE,
	SUP_ARTIFACT,	/* an install finished: start who waits for it */
	SUP_PREPARED,	/* a prepare job ended: start or fail */
	SUP_SNAPSHOT,	/* a snapshot on demand */
	SUP_PURGED,	/* a purge ended: its uid may serve again */
	SUP_QUIT,
};

/* Told (on the supervisor thread) once a state change is committed. */
typedef void	(*sup_listener)(void);
typedef void	(*sup_svc_listener)(const char *, int);

void	sup_on_change(sup_listener);
void	sup_on_service(sup_svc_listener);
int	sup_start(const struct config *);
void	sup_stop(void);
enum nd_rc	sup_command(enum sup_op, const char *, json_t *, int64_t, int,
		    char *, size_t);
void	sup_artifact_done(const char *, int, const char *);
void	sup_prepared(const char *, int64_t, int, const char *);
enum nd_rc	sup_snapshot_now(const char *, int64_t *, char *, size_t);

#endif
