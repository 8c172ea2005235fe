/*
 * spawn: the plan of a service's process and its executor.
 *
 * nodee is threaded, and the child of a threaded process may only make
 * async-signal-safe calls until it execs: no malloc, no stdio, no
 * getpwnam.  So everything that allocates, reads a file or can fail
 * with a message happens in spawn_plan_build(), and the child runs down
 * a fixed list of system calls.  The step it is at is an enum with a
 * name table; if a call fails, the child writes the step and errno to a
 * close-on-exec pipe, so a missing binary is an error spawn_exec()
 * returns, not a service that dies at once and is restarted forever.
 *
 * A service running as root keeps CAP_SYS_ADMIN unless its bounding set
 * is cut, and with it could remount its private view of PREFIX/software
 * read-write and write into every installed artifact.  The child
 * therefore drops from the bounding set every capability the spec does
 * not grant and clears the ambient and inheritable sets; after execve a
 * root service's permitted set is the granted capabilities only.
 */
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <linux/capability.h>
#include <linux/close_range.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "artifact.h"
#include "fs.h"
#include "service.h"
#include "spawn.h"

/* What the child is doing when a call fails; reported to the parent. */
enum spawn_step {
	SPAWN_SETSID, SPAWN_UNSHARE, SPAWN_MOUNT, SPAWN_BIND, SPAWN_REMOUNT,
	SPAWN_CAPBSET, SPAWN_AMBIENT, SPAWN_CAPGET, SPAWN_CAPSET,
	SPAWN_FCHDIR, SPAWN_DUP2, SPAWN_SETRLIMIT, SPAWN_SETGROUPS,
	SPAWN_SETGID, SPAWN_SETUID, SPAWN_EXECVE, SPAWN_NSTEPS
};

static const char *const spawn_step_names[SPAWN_NSTEPS] = {
	[SPAWN_SETSID] = "setsid",
	[SPAWN_UNSHARE] = "unshare",
	[SPAWN_MOUNT] = "mount",
	[SPAWN_BIND] = "bind",
	[SPAWN_REMOUNT] = "remount",
	[SPAWN_CAPBSET] = "capbset_drop",
	[SPAWN_AMBIENT] = "ambient_clear",
	[SPAWN_CAPGET] = "capget",
	[SPAWN_CAPSET] = "capset",
	[SPAWN_FCHDIR] = "fchdir",
	[SPAWN_DUP2] = "dup2",
	[SPAWN_SETRLIMIT] = "setrlimit",
	[SPAWN_SETGROUPS] = "setgroups",
	[SPAWN_SETGID] = "setgid",
	[SPAWN_SETUID] = "setuid",
	[SPAWN_EXECVE] = "execve",
};

/* The spec's "limits" and what they set. */
static const struct {
	const char	*name;
	int		 resource;
} spawn_rlimits[SPAWN_NLIMITS] = {
	{ "nofile", RLIMIT_NOFILE },
	{ "nproc", RLIMIT_NPROC },
	{ "core_bytes", RLIMIT_CORE },
	{ "memory_bytes", RLIMIT_AS },
};

static void	 spawn_plan_init(struct spawn_plan *);
static void	 spawn_unsearchable(const char *, char *, size_t);
static int	 spawn_command(const json_t *, const char *, const char *,
		    const char *, char *, size_t, char *, size_t);
static int	 spawn_manifest_command(const char *, const char *, char *,
		    size_t, char *, size_t);
static int	 spawn_argv(struct spawn_plan *, const json_t *, int);
static int	 spawn_env(struct spawn_plan *, const struct coord *,
		    const json_t *, const char *, const char *, const char *);
static int	 spawn_add(char **, size_t *, const char *, ...)
		    __attribute__((format(printf, 3, 4)));
static void	 spawn_nofile_default(struct spawn_plan *, const json_t *);
static int	 spawn_limits(struct spawn_plan *, const json_t *, char *,
		    size_t);
static int	 spawn_groups(struct spawn_plan *, const char *, char *,
		    size_t);
static int	 spawn_caps(struct spawn_plan *, const json_t *, char *,
		    size_t);
static int	 spawn_cap_last(int *, char *, size_t);
static void	 spawn_child(const struct spawn_plan *, int)
		    __attribute__((noreturn));
static void	 spawn_child_signals(void);
static int	 spawn_child_isolate(const struct spawn_plan *,
		    enum spawn_step *);
static int	 spawn_child_caps(const struct spawn_plan *,
		    enum spawn_step *);
static int	 spawn_child_stdio(const struct spawn_plan *);
static int	 spawn_child_ids(const struct spawn_plan *, enum spawn_step *);

int
spawn_plan_build(const struct config *cf, const struct coord *c,
    const json_t *spec, const char *helper, uid_t uid, gid_t gid, int root,
    const char *rundir_path, int cwdfd, int outfd, int errfd,
    struct spawn_plan *p, char *err, size_t errlen)
{
	struct artifact_coord	 ac;
	const char		*gav;
	char			 adir[PATH_MAX];

	spawn_plan_init(p);
	p->uid = uid;
	p->gid = gid;
	p->setids = p->isolate = p->dropcaps = root;
	p->cwdfd = cwdfd;
	p->stdio[1] = outfd;
	p->stdio[2] = errfd;
	if ((gav = json_string_value(json_object_get(spec, "artifact"))) ==
	    NULL)
		gav = "";
	if (artifact_parse(gav, &ac, err, errlen) != 0)
		goto fail;
	if (artifact_dir(cf, &ac, adir, sizeof(adir)) != 0 ||
	    snprintf(p->software, sizeof(p->software), "%s/software",
	    cf->prefix) >= (int)sizeof(p->software)) {
		snprintf(err, errlen, "the path of artifact %s is too long",
		    ac.gav);
		goto fail;
	}
	if (!fs_exists(adir)) {
		snprintf(err, errlen, "artifact %s is not installed", ac.gav);
		goto fail;
	}
	if (spawn_command(spec, helper, adir, ac.gav, p->path,
	    sizeof(p->path), err, errlen) != 0)
		goto fail;
	if (spawn_argv(p, spec, helper == NULL) != 0 ||
	    spawn_env(p, c, spec, rundir_path, adir, ac.gav) != 0) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if (spawn_limits(p, json_object_get(spec, "limits"), err, errlen) !=
	    0 || (root && spawn_groups(p, json_string_value(json_object_get(
	    spec, "user")), err, errlen) != 0) ||
	    spawn_caps(p, json_object_get(spec, "capabilities"), err,
	    errlen) != 0)
		goto fail;
	if (root && spawn_cap_last(&p->cap_last, err, errlen) != 0)
		goto fail;
	if ((p->stdio[0] = open("/dev/null", O_RDWR | O_CLOEXEC)) == -1) {
		snprintf(err, errlen, "cannot open /dev/null: %s",
		    strerror(errno));
		goto fail;
	}
	return 0;
fail:
	spawn_plan_free(p);
	return -1;
}

void
spawn_plan_free(struct spawn_plan *p)
{
	size_t	i;

	for (i = 0; p->argv != NULL && p->argv[i] != NULL; i++)
		free(p->argv[i]);
	for (i = 0; p->envp != NULL && p->envp[i] != NULL; i++)
		free(p->envp[i]);
	free(p->argv);
	free(p->envp);
	free(p->groups);
	if (p->stdio[0] != -1)
		close(p->stdio[0]);
	spawn_plan_init(p);
}

int
spawn_exec(const struct spawn_plan *p, pid_t *pidp, char *err,
    size_t errlen)
{
	int	report[2], msg[2], status;
	ssize_t	r;
	pid_t	pid;

	if (pipe2(report, O_CLOEXEC) != 0) {
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		return -1;
	}
	if ((pid = fork()) == -1) {
		snprintf(err, errlen, "fork: %s", strerror(errno));
		close(report[0]);
		close(report[1]);
		return -1;
	}
	if (pid == 0) {
		close(report[0]);
		spawn_child(p, report[1]);
	}
	close(report[1]);
	/* End of file: execve closed the pipe, the service runs. */
	do
		r = read(report[0], msg, sizeof(msg));
	while (r == -1 && errno == EINTR);
	close(report[0]);
	if (r == 0) {
		*pidp = pid;
		return 0;
	}
	if (r == (ssize_t)sizeof(msg)) {
		char	dir[PATH_MAX] = "";

		if (msg[1] == EACCES)
			spawn_unsearchable(p->path, dir, sizeof(dir));
		snprintf(err, errlen, "%s %.400s failed: %s%s%.300s%s",
		    msg[0] >= 0 && msg[0] < SPAWN_NSTEPS ?
		    spawn_step_names[msg[0]] : "start", p->path,
		    strerror(msg[1]), dir[0] ? " (" : "", dir, dir[0] ?
		    " lets only its owner and group through: allow others "
		    "to search it, chmod o+x, or use a prefix outside it)" :
		    "");
	} else {
		/* Whether it execs is unknown: it must not run unwatched. */
		snprintf(err, errlen, "cannot learn whether %.400s started: "
		    "%s", p->path, r == -1 ? strerror(errno) : "short read");
		(void)kill(pid, SIGKILL);
	}
	while (waitpid(pid, &status, 0) == -1 && errno == EINTR)
		;
	return -1;
}


/*
 * The first directory on the way to path that others (a service's own
 * uid) cannot search, such as a home directory of mode 0700, into dir;
 * "" when there is none.
 */
static void
spawn_unsearchable(const char *path, char *dir, size_t dirlen)
{
	struct stat	st;
	char		buf[PATH_MAX], *slash;

	snprintf(buf, sizeof(buf), "%s", path);
	dir[0] = '\0';
	for (slash = buf; (slash = strchr(slash + 1, '/')) != NULL;) {
		*slash = '\0';
		if (stat(buf, &st) == 0 && S_ISDIR(st.st_mode) &&
		    (st.st_mode & 0001) == 0) {
			snprintf(dir, dirlen, "%s", buf);
			return;
		}
		*slash = '/';
	}
}

/* An empty plan: what spawn_plan_free() leaves and may free again. */
static void
spawn_plan_init(struct spawn_plan *p)
{
	memset(p, 0, sizeof(*p));
	p->cwdfd = -1;
	p->stdio[0] = p->stdio[1] = p->stdio[2] = -1;
}

/*
 * The absolute path of what to run into path: helper, or the spec's
 * command, or the manifest's, or bin/start, inside the artifact.
 */
static int
spawn_command(const json_t *spec, const char *helper, const char *adir,
    const char *gav, char *path, size_t pathlen, char *err, size_t errlen)
{
	const json_t	*v = json_object_get(spec, "command");
	const char	*field = "command", *rel;
	char		 mcmd[FS_RELPATH_MAX + 1];
	struct stat	 st;

	if (helper != NULL) {
		field = "drain.command";
		rel = helper;
	} else if (v != NULL) {
		if ((rel = json_string_value(v)) == NULL) {
			snprintf(err, errlen, "command: must be a string, a "
			    "path relative to the artifact");
			return -1;
		}
	} else {
		if (spawn_manifest_command(adir, gav, mcmd, sizeof(mcmd), err,
		    errlen) != 0)
			return -1;
		field = "command in nodee.json";
		rel = mcmd;
	}
	if (fs_relpath_ok(field, rel, 0, err, errlen) != 0)
		return -1;
	if (snprintf(path, pathlen, "%s/%s", adir, rel) >= (int)pathlen) {
		snprintf(err, errlen, "%s: the path is too long", field);
		return -1;
	}
	if (stat(path, &st) != 0 || access(path, X_OK) != 0) {
		snprintf(err, errlen, "cannot execute %.400s: %s", path,
		    strerror(errno));
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "cannot execute %.400s: not a regular "
		    "file", path);
		return -1;
	}
	return 0;
}

/*
 * The artifact may name its command in nodee.json; without the file or
 * the key it is bin/start.  A manifest that is there but unreadable is
 * an error, not a silent bin/start.
 */
static int
spawn_manifest_command(const char *adir, const char *gav, char *out,
    size_t outlen, char *err, size_t errlen)
{
	char		 mpath[PATH_MAX];
	json_error_t	 je;
	json_t		*m, *v;
	int		 fd, rc = -1;

	snprintf(out, outlen, "bin/start");
	if (snprintf(mpath, sizeof(mpath), "%s/nodee.json", adir) >=
	    (int)sizeof(mpath)) {
		snprintf(err, errlen, "the path of artifact %s is too long",
		    gav);
		return -1;
	}
	/* Not a link: its text may end up in an error message. */
	if ((fd = open(mpath, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1) {
		if (errno == ENOENT)
			return 0;
		snprintf(err, errlen, "nodee.json of %s: %s", gav,
		    strerror(errno));
		return -1;
	}
	if ((m = json_loadfd(fd, 0, &je)) == NULL)
		snprintf(err, errlen, "nodee.json of %s: line %d: %.200s", gav,
		    je.line, je.text);
	else if ((v = json_object_get(m, "command")) != NULL &&
	    !json_is_string(v))
		snprintf(err, errlen, "command in nodee.json of %s: must be a "
		    "string, a path relative to the artifact", gav);
	else if (v != NULL && snprintf(out, outlen, "%s",
	    json_string_value(v)) >= (int)outlen)
		snprintf(err, errlen, "command in nodee.json of %s: longer "
		    "than %d bytes", gav, FS_RELPATH_MAX);
	else
		rc = 0;
	json_decref(m);
	close(fd);
	return rc;
}

/* argv: the command, then for the main process options and args. */
static int
spawn_argv(struct spawn_plan *p, const json_t *spec, int main)
{
	const json_t	*opts = json_object_get(spec, "options");
	const json_t	*args = json_object_get(spec, "args");
	const char	*k;
	json_t		*v;
	size_t		 n = 0, i;

	if ((p->argv = calloc(2 + (main ? 2 * json_object_size(opts) +
	    json_array_size(args) : 0), sizeof(*p->argv))) == NULL)
		return -1;
	if (spawn_add(p->argv, &n, "%s", p->path) != 0)
		return -1;
	if (!main)
		return 0;
	/* A checked spec has strings only; "" keeps argv's shape if not. */
	json_object_foreach((json_t *)opts, k, v)
		if (spawn_add(p->argv, &n, "%s", k) != 0 ||
		    spawn_add(p->argv, &n, "%s", json_string_value(v) ?
		    json_string_value(v) : "") != 0)
			return -1;
	json_array_foreach(args, i, v)
		if (spawn_add(p->argv, &n, "%s", json_string_value(v) ?
		    json_string_value(v) : "") != 0)
			return -1;
	return 0;
}

/*
 * nodee's variables first, then the spec's, in their order.  sup.c finds
 * its services again after a restart by NODEE_COORDINATE.
 */
static int
spawn_env(struct spawn_plan *p, const struct coord *c, const json_t *spec,
    const char *rundir, const char *adir, const char *gav)
{
	const json_t	*env = json_object_get(spec, "env");
	const json_t	*secret = json_object_get(spec, "secret_env");
	const char	*k;
	json_t		*v;
	size_t		 n = 0;

	if ((p->envp = calloc(8 + json_object_size(env) +
	    json_object_size(secret), sizeof(*p->envp))) == NULL)
		return -1;
	if (spawn_add(p->envp, &n, "PATH=/usr/local/bin:/usr/bin:/bin") != 0 ||
	    spawn_add(p->envp, &n, "HOME=%s", rundir) != 0 ||
	    spawn_add(p->envp, &n, "LANG=C.UTF-8") != 0 ||
	    spawn_add(p->envp, &n, "NODEE_COORDINATE=%s", c->name) != 0 ||
	    spawn_add(p->envp, &n, "NODEE_RUNTIME_DIR=%s", rundir) != 0 ||
	    spawn_add(p->envp, &n, "NODEE_ARTIFACT_DIR=%s", adir) != 0 ||
	    spawn_add(p->envp, &n, "NODEE_ARTIFACT=%s", gav) != 0)
		return -1;
	json_object_foreach((json_t *)env, k, v)
		if (spawn_add(p->envp, &n, "%s=%s", k, json_string_value(v) ?
		    json_string_value(v) : "") != 0)
			return -1;
	json_object_foreach((json_t *)secret, k, v)
		if (spawn_add(p->envp, &n, "%s=%s", k, json_string_value(v) ?
		    json_string_value(v) : "") != 0)
			return -1;
	return 0;
}

/* A new string at v[*n]; v was allocated one longer, so NULL ends it. */
static int
spawn_add(char **v, size_t *n, const char *fmt, ...)
{
	va_list	ap;
	int	r;

	va_start(ap, fmt);
	r = vasprintf(&v[*n], fmt, ap);
	va_end(ap);
	if (r < 0) {
		v[*n] = NULL;
		return -1;
	}
	(*n)++;
	return 0;
}

static int
spawn_limits(struct spawn_plan *p, const json_t *limits, char *err,
    size_t errlen)
{
	const json_t	*v;
	size_t		 i;

	for (i = 0; i < SPAWN_NLIMITS; i++) {
		if ((v = json_object_get(limits, spawn_rlimits[i].name)) ==
		    NULL)
			continue;
		if (!json_is_integer(v) || json_integer_value(v) < 0) {
			snprintf(err, errlen, "limits.%s: must be a "
			    "non-negative integer", spawn_rlimits[i].name);
			return -1;
		}
		p->limits[p->nlimits].resource = spawn_rlimits[i].resource;
		p->limits[p->nlimits].value.rlim_cur =
		    p->limits[p->nlimits].value.rlim_max =
		    (rlim_t)json_integer_value(v);
		p->nlimits++;
	}
	spawn_nofile_default(p, limits);
	return 0;
}

/*
 * nodee raises its own soft open-files limit to the hard one (it holds a
 * pidfd per adopted service); a service that names no "nofile" gets the
 * usual soft limit back, for programs that still select().
 */
static void
spawn_nofile_default(struct spawn_plan *p, const json_t *limits)
{
	struct rlimit	rl;

	if (json_object_get(limits, "nofile") != NULL ||
	    p->nlimits == SPAWN_NLIMITS || getrlimit(RLIMIT_NOFILE, &rl) != 0 ||
	    rl.rlim_cur <= SPAWN_NOFILE_SOFT)
		return;
	p->limits[p->nlimits].resource = RLIMIT_NOFILE;
	p->limits[p->nlimits].value.rlim_cur = SPAWN_NOFILE_SOFT;
	p->limits[p->nlimits].value.rlim_max = rl.rlim_max;
	p->nlimits++;
}

/*
 * The supplementary groups of the spec's user, none without one.
 * getpwnam() is not reentrant and this runs beside other threads.
 */
static int
spawn_groups(struct spawn_plan *p, const char *user, char *err,
    size_t errlen)
{
	struct passwd	 pw, *pwp = NULL;
	char		*buf = NULL, *nbuf;
	size_t		 blen;
	gid_t		*g;
	int		 n = 64, had, e = ERANGE, rc = -1;

	if (user == NULL)
		return 0;
	for (blen = 4096; e == ERANGE && blen <= 1024 * 1024; blen *= 2) {
		if ((nbuf = realloc(buf, blen)) == NULL) {
			e = ENOMEM;
			break;
		}
		buf = nbuf;
		e = getpwnam_r(user, &pw, buf, blen, &pwp);
	}
	if (pwp == NULL) {
		snprintf(err, errlen, "user %.100s: %s", user, e != 0 &&
		    e != ENOENT && e != ESRCH ? strerror(e) :
		    "no such user on this machine");
		goto out;
	}
	for (;;) {
		if ((g = reallocarray(p->groups, (size_t)n, sizeof(*g))) ==
		    NULL) {
			snprintf(err, errlen, "out of memory");
			goto out;
		}
		p->groups = g;
		had = n;
		/* On -1, n is the number of groups the user has. */
		if (getgrouplist(user, pw.pw_gid, p->groups, &n) != -1)
			break;
		if (n <= had) {
			snprintf(err, errlen, "user %.100s: cannot list its "
			    "groups", user);
			goto out;
		}
	}
	p->ngroups = (size_t)n;
	rc = 0;
out:
	free(buf);
	return rc;
}

/* The spec's "capabilities": the bounding set the service keeps. */
static int
spawn_caps(struct spawn_plan *p, const json_t *caps, char *err,
    size_t errlen)
{
	const json_t	*v;
	size_t		 i;
	int		 bit;

	if (caps == NULL)
		return 0;
	if (!json_is_array(caps)) {
		snprintf(err, errlen, "capabilities: must be an array of "
		    "names such as \"NET_BIND_SERVICE\"");
		return -1;
	}
	json_array_foreach(caps, i, v) {
		if ((bit = service_cap_bit(json_string_value(v))) == -1) {
			snprintf(err, errlen, "capabilities[%zu]: '%.100s' is "
			    "not a capability name such as NET_BIND_SERVICE",
			    i, json_string_value(v) ? json_string_value(v) :
			    "?");
			return -1;
		}
		p->caps |= (uint64_t)1 << bit;
	}
	return 0;
}

/*
 * The running kernel may know more capabilities than our headers; the
 * child must drop those too, so it is read here, not assumed.
 */
static int
spawn_cap_last(int *last, char *err, size_t errlen)
{
	char	buf[16];
	ssize_t	n;
	long	v;
	int	fd;

	if ((fd = open("/proc/sys/kernel/cap_last_cap", O_RDONLY |
	    O_CLOEXEC)) == -1) {
		snprintf(err, errlen, "cannot read "
		    "/proc/sys/kernel/cap_last_cap: %s", strerror(errno));
		return -1;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	v = strtol(buf, NULL, 10);
	if (n <= 0 || v < CAP_CHOWN || v > 1023) {
		snprintf(err, errlen, "/proc/sys/kernel/cap_last_cap: not a "
		    "capability number");
		return -1;
	}
	*last = (int)v;
	return 0;
}

/*
 * The child: only async-signal-safe calls from here on.  It never
 * returns: execve() succeeds, or the failed step and errno go to the
 * parent.
 */
static void
spawn_child(const struct spawn_plan *p, int report)
{
	enum spawn_step	 at = SPAWN_SETSID;
	size_t		 i;
	int		 msg[2], fd;

	/* A pipe end among 0-2 would be overwritten by the stdio dup2s. */
	if (report < 3 && (fd = fcntl(report, F_DUPFD_CLOEXEC, 3)) != -1)
		report = fd;
	spawn_child_signals();
	if (setsid() == -1)
		goto fail;
	/*
	 * Into the runtime directory before the mount namespace is made:
	 * unshare() moves the working directory into the copy, whereas a
	 * directory entered after it would be a mount of nodee's namespace,
	 * where getcwd() finds no path (pwd fails with EACCES).
	 */
	at = SPAWN_FCHDIR;
	if (fchdir(p->cwdfd) == -1)
		goto fail;
	if (p->isolate && spawn_child_isolate(p, &at) == -1)
		goto fail;
	if (p->dropcaps && spawn_child_caps(p, &at) == -1)
		goto fail;
	at = SPAWN_DUP2;
	if (spawn_child_stdio(p) == -1)
		goto fail;
	at = SPAWN_SETRLIMIT;
	for (i = 0; i < p->nlimits; i++)
		if (setrlimit(p->limits[i].resource, &p->limits[i].value) == -1)
			goto fail;
	if (p->setids && spawn_child_ids(p, &at) == -1)
		goto fail;
	at = SPAWN_EXECVE;
	execve(p->path, p->argv, p->envp);
fail:
	msg[1] = errno;
	msg[0] = (int)at;
	if (write(report, msg, sizeof(msg)) < 0)
		_exit(126);
	_exit(127);
}

/* nodee's handlers and blocked signals are not the service's. */
static void
spawn_child_signals(void)
{
	struct sigaction	 sa;
	sigset_t		 none;
	int			 i;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	for (i = 1; i < NSIG; i++)
		(void)sigaction(i, &sa, NULL);
	sigemptyset(&none);
	(void)sigprocmask(SIG_SETMASK, &none, NULL);
}

/*
 * A private mount namespace where the software tree is read-only, even
 * for a service running as root; changes do not propagate to the host.
 */
static int
spawn_child_isolate(const struct spawn_plan *p, enum spawn_step *at)
{
	*at = SPAWN_UNSHARE;
	if (unshare(CLONE_NEWNS) == -1)
		return -1;
	*at = SPAWN_MOUNT;
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == -1)
		return -1;
	*at = SPAWN_BIND;
	if (mount(p->software, p->software, NULL, MS_BIND | MS_REC, NULL) ==
	    -1)
		return -1;
	*at = SPAWN_REMOUNT;
	return mount(NULL, p->software, NULL, MS_REMOUNT | MS_BIND |
	    MS_RDONLY, NULL);
}

/*
 * Only what the spec grants stays in the bounding set, so neither a root
 * service nor a setuid-root program it runs can get CAP_SYS_ADMIN back
 * (and remount the software tree read-write).  Ambient and inheritable
 * capabilities would pass the bounding set by at execve.
 */
static int
spawn_child_caps(const struct spawn_plan *p, enum spawn_step *at)
{
	struct __user_cap_header_struct	hdr;
	struct __user_cap_data_struct	data[_LINUX_CAPABILITY_U32S_3];
	int				cap, i;

	*at = SPAWN_CAPBSET;
	for (cap = 0; cap <= p->cap_last; cap++)
		if ((cap >= 64 || (p->caps & (uint64_t)1 << cap) == 0) &&
		    prctl(PR_CAPBSET_DROP, (unsigned long)cap, 0UL, 0UL,
		    0UL) == -1)
			return -1;
	*at = SPAWN_AMBIENT;
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0UL, 0UL, 0UL) ==
	    -1)
		return -1;
	memset(&hdr, 0, sizeof(hdr));
	hdr.version = _LINUX_CAPABILITY_VERSION_3;
	*at = SPAWN_CAPGET;
	if (syscall(SYS_capget, &hdr, data) == -1)
		return -1;
	for (i = 0; i < _LINUX_CAPABILITY_U32S_3; i++)
		data[i].inheritable = 0;
	*at = SPAWN_CAPSET;
	return syscall(SYS_capset, &hdr, data) == -1 ? -1 : 0;
}

/*
 * stdin, stdout, stderr.  Each is first copied above 2, so that a plan
 * descriptor that already is 0, 1 or 2 is neither overwritten before it
 * is used nor left close-on-exec by a dup2() onto itself.
 */
static int
spawn_child_stdio(const struct spawn_plan *p)
{
	int	tmp[3], i;

	for (i = 0; i < 3; i++)
		if ((tmp[i] = fcntl(p->stdio[i], F_DUPFD_CLOEXEC, 3)) == -1)
			return -1;
	for (i = 0; i < 3; i++)
		if (dup2(tmp[i], i) == -1)
			return -1;
	/*
	 * No descriptor of nodee's may reach the service, whatever a library
	 * forgot to mark close-on-exec (sockets, say).  Kernels before 5.11
	 * refuse the flag; nodee's own descriptors are close-on-exec anyway.
	 */
	(void)syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC);
	return 0;
}

/* Groups first: once the uid is not root, setgroups() is refused. */
static int
spawn_child_ids(const struct spawn_plan *p, enum spawn_step *at)
{
	*at = SPAWN_SETGROUPS;
	if (setgroups(p->ngroups, p->groups) == -1)
		return -1;
	*at = SPAWN_SETGID;
	if (setgid(p->gid) == -1)
		return -1;
	*at = SPAWN_SETUID;
	return setuid(p->uid);
}
