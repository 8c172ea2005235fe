/*
 * spawn: starting a service's process, in two halves.  The plan is every
 * decision (what to run, with which arguments, environment, ids, groups,
 * limits, mounts and capabilities), made in the parent where it may
 * allocate, read files and fail with a clear message, and where cmocka
 * can look at it.  The executor forks; its child only applies the plan
 * with async-signal-safe calls and reports the step that failed, with
 * errno, over a close-on-exec pipe.
 */
#ifndef NODEE_SPAWN_H
#define NODEE_SPAWN_H

#include <sys/resource.h>
#include <sys/types.h>

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "config.h"
#include "coord.h"

#define SPAWN_NLIMITS	4	/* nofile, nproc, core_bytes, memory_bytes */
#define SPAWN_NOFILE_SOFT	1024	/* a service's soft nofile by default */

/* One setrlimit() the child makes: soft and hard limits alike. */
struct spawn_limit {
	int		 resource;	/* RLIMIT_NOFILE, ... */
	struct rlimit	 value;
};

/*
 * Everything the child does, decided before fork().  The plan owns its
 * strings and arrays (copied from the spec: the spec may go away) and
 * stdio[0], a descriptor of /dev/null; it borrows cwdfd, stdio[1] and
 * stdio[2], which stay the caller's to close.
 */
struct spawn_plan {
	char			 path[PATH_MAX];	/* absolute executable */
	char			**argv;		/* argv[0] is path; NULL ends */
	char			**envp;		/* "NAME=value"; NULL ends */
	int			 setids;	/* setgroups, setgid, setuid */
	uid_t			 uid;
	gid_t			 gid;
	gid_t			*groups;	/* supplementary, if setids */
	size_t			 ngroups;
	struct spawn_limit	 limits[SPAWN_NLIMITS];
	size_t			 nlimits;
	int			 isolate;	/* private mount namespace */
	char			 software[PATH_MAX];	/* made read-only */
	int			 dropcaps;	/* bounding, ambient, inheritable */
	uint64_t		 caps;		/* bounding set kept: 1 << CAP_x */
	int			 cap_last;	/* the kernel's highest cap */
	int			 cwdfd;		/* borrowed: the child fchdir()s */
	int			 stdio[3];	/* [0] owned, [1] [2] borrowed */
};

/*
 * Builds the plan for a service's main process (helper NULL: the spec's
 * "command", else the artifact's nodee.json "command", else bin/start;
 * then the options as "key value" pairs, then the args) or for a helper
 * command (the drain "command": no options, no args).  Every command is
 * a path relative to the artifact directory, checked by fs_relpath_ok(),
 * and must be executable; the artifact must be installed.
 *
 * spec: a checked start spec (artifact, command, options, args, env,
 * user, limits, capabilities).  uid, gid: the ids the service runs as.
 * root: nodee runs as root, so the child sets ids and groups (those of
 * the spec's "user", else none), gets a private mount namespace where
 * PREFIX/software is read-only, and keeps in its bounding set only the
 * capabilities the spec grants.  rundir_path: the runtime directory
 * (HOME, NODEE_RUNTIME_DIR); cwdfd: a descriptor of it; outfd, errfd:
 * the service's stdout and stderr.  The three descriptors are borrowed
 * and must stay open until spawn_exec() has returned.
 *
 * 0, or -1 with err.  Either way the plan is initialised and
 * spawn_plan_free() may be called on it (a failed build has already
 * freed it).
 */
int	spawn_plan_build(const struct config *, const struct coord *,
	    const json_t *, const char *, uid_t, gid_t, int, const char *, int,
	    int, int, struct spawn_plan *, char *, size_t);

/* Frees what the plan owns; it may be called again. */
void	spawn_plan_free(struct spawn_plan *);

/*
 * Forks; the child applies the plan and execs.  0 with *pid once the
 * exec succeeded (the caller reaps the process), or -1 with err such as
 * "execve /p/bin/start failed: No such file or directory" or "setuid
 * /p/bin/start failed: Operation not permitted"; a child that failed
 * has been reaped.  The child gets its own session, so a signal to its
 * process group reaches the whole service and not nodee.
 */
int	spawn_exec(const struct spawn_plan *, pid_t *, char *, size_t);


#endif
