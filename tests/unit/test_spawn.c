/*
 * test_spawn: the plan of a service's process (command, argv, env, ids,
 * groups, limits, capabilities) against a scratch prefix with one
 * "installed" artifact, then real processes started from plans: the uid,
 * groups, cwd, limits and capability sets they end up with, a root
 * service that tries to remount the software tree read-write, and the
 * errors of a child that fails before or at execve.  Runs as root.
 */
#include "unit.h"

#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <linux/capability.h>

#include <errno.h>
#include <grp.h>
#include <pwd.h>

#include <jansson.h>

#include "config.h"
#include "coord.h"
#include "service.h"
#include "spawn.h"

#define FAKE_UID	4243

/* A prefix with g:a:1 installed, a runtime directory and log files. */
struct fx {
	struct config	 cf;
	struct coord	 c;
	char		 adir[PATH_MAX];
	char		 rundir[PATH_MAX];
	char		 out[PATH_MAX];
	int		 cwdfd, outfd, errfd;
};

/* Prints what the tests look at: ids, groups, cwd, a limit, caps. */
static const char probe[] = "#!/bin/sh\n"
    "id -u\n"
    "id -G\n"
    "pwd -P\n"
    "ulimit -n\n"
    "grep Cap /proc/self/status\n";

static void
fx_open(struct fx *f, const char *dir)
{
	char	p[PATH_MAX], e[256];
	int	i;
	static const char *const dirs[] = { "software", "software/g",
	    "software/g/a", "software/g/a/1", "software/g/a/1/bin", "run" };

	memset(f, 0, sizeof(*f));
	config_defaults(&f->cf);
	snprintf(f->cf.prefix, sizeof(f->cf.prefix), "%s", dir);
	assert_int_equal(coord_parse("1.web.borud.fbu", &f->c, e, sizeof(e)),
	    0);
	/* The service's uid must reach its script. */
	assert_int_equal(chmod(dir, 0755), 0);
	for (i = 0; i < (int)nitems(dirs); i++) {
		unit_path(p, dir, dirs[i]);
		assert_int_equal(mkdir(p, 0755), 0);
		assert_int_equal(chmod(p, 0755), 0);
	}
	unit_path(f->adir, dir, "software/g/a/1");
	unit_path(f->rundir, dir, "run");
	unit_path(p, f->adir, "bin/start");
	unit_write(p, probe, 0755);
	unit_path(p, f->adir, "bin/run");
	unit_write(p, probe, 0755);
	unit_path(p, f->adir, "bin/data");
	unit_write(p, "not a program\n", 0644);
	unit_path(f->out, dir, "out");
	f->outfd = open(f->out, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
	    0644);
	unit_path(p, dir, "err");
	f->errfd = open(p, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	f->cwdfd = open(f->rundir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(f->outfd != -1 && f->errfd != -1 && f->cwdfd != -1);
}

static void
fx_close(struct fx *f)
{
	close(f->outfd);
	close(f->errfd);
	close(f->cwdfd);
}

/* The spec is freed before the plan is looked at: the plan copies. */
static int
build(struct fx *f, const char *spec, const char *helper, uid_t uid,
    int root, struct spawn_plan *p, char *err, size_t errlen)
{
	json_error_t	 je;
	json_t		*s;
	int		 rc;

	if ((s = json_loads(spec, 0, &je)) == NULL)
		fail_msg("bad test JSON: %s: %s", je.text, spec);
	err[0] = '\0';
	rc = spawn_plan_build(&f->cf, &f->c, s, helper, uid, uid, root,
	    f->rundir, f->cwdfd, f->outfd, f->errfd, p, err, errlen);
	json_decref(s);
	return rc;
}

static void
built(struct fx *f, const char *spec, const char *helper, uid_t uid,
    int root, struct spawn_plan *p)
{
	char	err[512];

	if (build(f, spec, helper, uid, root, p, err, sizeof(err)) != 0)
		fail_msg("refused: %s: %s", spec, err);
}

static void
refused(struct fx *f, const char *spec, const char *helper, const char *why)
{
	struct spawn_plan	p;
	char			err[512];

	if (build(f, spec, helper, 0, 1, &p, err, sizeof(err)) == 0) {
		spawn_plan_free(&p);
		fail_msg("accepted: %s", spec);
	}
	assert_contains(err, why);
	/* A failed build leaves nothing to free. */
	assert_null(p.argv);
	assert_int_equal(p.stdio[0], -1);
	spawn_plan_free(&p);
}

static void
assert_strv(char **v, const char *const *want, size_t n)
{
	size_t	i;

	for (i = 0; i < n; i++) {
		assert_non_null(v[i]);
		assert_string_equal(v[i], want[i]);
	}
	assert_null(v[n]);
}

/* Starts the plan of spec, waits for its end and reads its stdout. */
static void
run(struct fx *f, const char *spec, uid_t uid, int root, char *out,
    size_t outlen)
{
	struct spawn_plan	p;
	char			err[512];
	pid_t			pid;
	int			status;

	assert_int_equal(ftruncate(f->outfd, 0), 0);
	built(f, spec, NULL, uid, root, &p);
	if (spawn_exec(&p, &pid, err, sizeof(err)) != 0)
		fail_msg("spawn_exec: %s", err);
	spawn_plan_free(&p);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	unit_read(f->out, out, outlen);
	if (WEXITSTATUS(status) != 0)
		fail_msg("exit %d, output: %s", WEXITSTATUS(status), out);
}

/* A capability set from grep Cap /proc/self/status output. */
static unsigned long long
cap_set(const char *out, const char *name)
{
	char		 key[16];
	const char	*s;

	snprintf(key, sizeof(key), "%s:\t", name);
	if ((s = strstr(out, key)) == NULL)
		fail_msg("no %s in: %s", name, out);
	return strtoull(s + strlen(key), NULL, 16);
}

static void
test_plan_argv_env(void **state)
{
	struct fx		 f;
	struct spawn_plan	 p;
	struct stat		 a, b;
	char			 path[PATH_MAX], e[7][PATH_MAX + 32];
	const char		*spec = "{\"artifact\": \"g:a:1\", \"command\": "
				    "\"bin/run\", \"options\": {\"--port\": "
				    "\"8080\", \"-v\": \"\"}, \"args\": [\"a b\", "
				    "\"c\"], \"env\": {\"ZED\": \"1\", "
				    "\"ALPHA\": \"x=y\"}}";

	fx_open(&f, *state);
	built(&f, spec, NULL, FAKE_UID, 0, &p);
	unit_path(path, f.adir, "bin/run");
	assert_string_equal(p.path, path);
	{
		const char *const want[] = { path, "--port", "8080", "-v", "",
		    "a b", "c" };

		assert_strv(p.argv, want, nitems(want));
	}
	snprintf(e[0], sizeof(e[0]), "HOME=%s", f.rundir);
	snprintf(e[1], sizeof(e[1]), "NODEE_RUNTIME_DIR=%s", f.rundir);
	snprintf(e[2], sizeof(e[2]), "NODEE_ARTIFACT_DIR=%s", f.adir);
	{
		const char *const want[] = {
		    "PATH=/usr/local/bin:/usr/bin:/bin", e[0], "LANG=C.UTF-8",
		    "NODEE_COORDINATE=1.web.borud.fbu", e[1], e[2],
		    "NODEE_ARTIFACT=g:a:1", "ZED=1", "ALPHA=x=y" };

		assert_strv(p.envp, want, nitems(want));
	}
	/* nodee not root: no ids, mounts or capabilities to change. */
	assert_int_equal(p.setids, 0);
	assert_int_equal(p.isolate, 0);
	assert_int_equal(p.dropcaps, 0);
	assert_int_equal(p.cwdfd, f.cwdfd);
	assert_int_equal(p.stdio[1], f.outfd);
	assert_int_equal(p.stdio[2], f.errfd);
	assert_int_equal(fstat(p.stdio[0], &a), 0);
	assert_int_equal(stat("/dev/null", &b), 0);
	assert_true(S_ISCHR(a.st_mode) && a.st_rdev == b.st_rdev);
	spawn_plan_free(&p);
	spawn_plan_free(&p);

	/* A helper (the drain command) gets no options and no args. */
	built(&f, spec, "bin/start", FAKE_UID, 0, &p);
	unit_path(path, f.adir, "bin/start");
	{
		const char *const want[] = { path };

		assert_strv(p.argv, want, nitems(want));
	}
	assert_string_equal(p.envp[7], "ZED=1");
	spawn_plan_free(&p);
	fx_close(&f);
}

static void
test_plan_manifest(void **state)
{
	struct fx		 f;
	struct spawn_plan	 p;
	char			 m[PATH_MAX], want[PATH_MAX];
	const char		*spec = "{\"artifact\": \"g:a:1\"}";

	fx_open(&f, *state);
	unit_path(m, f.adir, "nodee.json");
	/* No manifest: bin/start. */
	built(&f, spec, NULL, 0, 1, &p);
	unit_path(want, f.adir, "bin/start");
	assert_string_equal(p.path, want);
	assert_string_equal(p.argv[0], want);
	spawn_plan_free(&p);
	/* A manifest without a command: bin/start too. */
	unit_write(m, "{\"name\": \"a\"}", 0644);
	built(&f, spec, NULL, 0, 1, &p);
	assert_string_equal(p.path, want);
	spawn_plan_free(&p);
	/* The manifest's command. */
	unit_write(m, "{\"command\": \"bin/run\"}", 0644);
	built(&f, spec, NULL, 0, 1, &p);
	unit_path(want, f.adir, "bin/run");
	assert_string_equal(p.path, want);
	spawn_plan_free(&p);
	/* The spec's command wins over the manifest's. */
	built(&f, "{\"artifact\": \"g:a:1\", \"command\": \"bin/start\"}",
	    NULL, 0, 1, &p);
	unit_path(want, f.adir, "bin/start");
	assert_string_equal(p.path, want);
	spawn_plan_free(&p);
	/* The one relative-path rule holds for the manifest as well. */
	unit_write(m, "{\"command\": \"../../../../../bin/sh\"}", 0644);
	refused(&f, spec, NULL, "command in nodee.json: '../../../../../bin/sh' "
	    "has an empty, '.' or '..' component");
	unit_write(m, "{\"command\": \"/bin/sh\"}", 0644);
	refused(&f, spec, NULL, "is absolute");
	unit_write(m, "{\"command\": 7}", 0644);
	refused(&f, spec, NULL, "command in nodee.json of g:a:1: must be a "
	    "string");
	unit_write(m, "{\"command\": ", 0644);
	refused(&f, spec, NULL, "nodee.json of g:a:1: line 1:");
	fx_close(&f);
}

static void
test_plan_refused(void **state)
{
	struct fx	f;

	fx_open(&f, *state);
	refused(&f, "{\"artifact\": \"g:a:1\", \"command\": \"bin/../bin/run\"}",
	    NULL, "command: 'bin/../bin/run' has an empty, '.' or '..' "
	    "component");
	refused(&f, "{\"artifact\": \"g:a:1\", \"command\": \"/bin/sh\"}",
	    NULL, "command: '/bin/sh' is absolute");
	refused(&f, "{\"artifact\": \"g:a:1\"}", "../../../../../bin/sh",
	    "drain.command: '../../../../../bin/sh' has an empty");
	refused(&f, "{\"artifact\": \"g:a:1\"}", "/bin/sh",
	    "drain.command: '/bin/sh' is absolute");
	refused(&f, "{\"artifact\": \"g:a:2\"}", NULL,
	    "artifact g:a:2 is not installed");
	refused(&f, "{\"artifact\": \"g:a\"}", NULL,
	    "is not groupId:artifactId:version");
	refused(&f, "{\"artifact\": \"g:a:1\", \"command\": \"bin/data\"}",
	    NULL, "bin/data: Permission denied");
	refused(&f, "{\"artifact\": \"g:a:1\", \"command\": \"bin/none\"}",
	    NULL, "bin/none: No such file or directory");
	refused(&f, "{\"artifact\": \"g:a:1\", \"command\": \"bin\"}", NULL,
	    "bin: not a regular file");
	refused(&f, "{\"artifact\": \"g:a:1\", \"command\": 3}", NULL,
	    "command: must be a string");
	fx_close(&f);
}

static void
test_plan_limits(void **state)
{
	struct fx		f;
	struct spawn_plan	p;

	fx_open(&f, *state);
	built(&f, "{\"artifact\": \"g:a:1\", \"limits\": {\"memory_bytes\": "
	    "1073741824, \"nofile\": 1024, \"core_bytes\": 0}}", NULL, 0, 1,
	    &p);
	/* In the table's order, whatever the spec's; nproc is not set. */
	assert_int_equal(p.nlimits, 3);
	assert_int_equal(p.limits[0].resource, RLIMIT_NOFILE);
	assert_int_equal(p.limits[0].value.rlim_cur, 1024);
	assert_int_equal(p.limits[0].value.rlim_max, 1024);
	assert_int_equal(p.limits[1].resource, RLIMIT_CORE);
	assert_int_equal(p.limits[1].value.rlim_cur, 0);
	assert_int_equal(p.limits[1].value.rlim_max, 0);
	assert_int_equal(p.limits[2].resource, RLIMIT_AS);
	assert_int_equal(p.limits[2].value.rlim_cur, 1073741824);
	assert_int_equal(p.limits[2].value.rlim_max, 1073741824);
	spawn_plan_free(&p);
	/*
	 * No "nofile": nodee's own raised soft limit is not passed on; the
	 * service gets 1024 soft under the same hard limit.
	 */
	{
		struct rlimit	rl, old;

		assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
		rl = old;
		if (rl.rlim_max < 4096)
			rl.rlim_max = 4096;
		rl.rlim_cur = rl.rlim_max;
		assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
		built(&f, "{\"artifact\": \"g:a:1\", \"limits\": "
		    "{\"nproc\": 50}}", NULL, 0, 1, &p);
		assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
		assert_int_equal(p.nlimits, 2);
		assert_int_equal(p.limits[0].resource, RLIMIT_NPROC);
		assert_int_equal(p.limits[0].value.rlim_max, 50);
		assert_int_equal(p.limits[1].resource, RLIMIT_NOFILE);
		assert_int_equal(p.limits[1].value.rlim_cur, SPAWN_NOFILE_SOFT);
		assert_int_equal(p.limits[1].value.rlim_max, rl.rlim_max);
		spawn_plan_free(&p);
	}
	refused(&f, "{\"artifact\": \"g:a:1\", \"limits\": {\"nofile\": -1}}",
	    NULL, "limits.nofile: must be a non-negative integer");
	fx_close(&f);
}

static void
test_plan_root(void **state)
{
	struct fx		 f;
	struct spawn_plan	 p;
	char			 sw[PATH_MAX], buf[16];
	size_t			 i;
	int			 found = 0;

	fx_open(&f, *state);
	built(&f, "{\"artifact\": \"g:a:1\", \"capabilities\": "
	    "[\"NET_BIND_SERVICE\", \"cap_chown\"]}", NULL, FAKE_UID, 1, &p);
	assert_int_equal(p.setids, 1);
	assert_int_equal(p.isolate, 1);
	assert_int_equal(p.dropcaps, 1);
	assert_int_equal(p.uid, FAKE_UID);
	assert_int_equal(p.gid, FAKE_UID);
	unit_path(sw, *state, "software");
	assert_string_equal(p.software, sw);
	assert_true(p.caps == ((1ULL << CAP_NET_BIND_SERVICE) |
	    (1ULL << CAP_CHOWN)));
	unit_read("/proc/sys/kernel/cap_last_cap", buf, sizeof(buf));
	assert_int_equal(p.cap_last, atoi(buf));
	/* No "user": no supplementary groups at all. */
	assert_int_equal(p.ngroups, 0);
	spawn_plan_free(&p);

	/* A user's groups include its primary group. */
	built(&f, "{\"artifact\": \"g:a:1\", \"user\": \"root\"}", NULL, 0,
	    1, &p);
	assert_true(p.ngroups >= 1);
	for (i = 0; i < p.ngroups; i++)
		found |= p.groups[i] == 0;
	assert_true(found);
	assert_true(p.caps == 0);
	spawn_plan_free(&p);

	refused(&f, "{\"artifact\": \"g:a:1\", \"user\": "
	    "\"nodee-no-such-user\"}", NULL,
	    "user nodee-no-such-user: no such user");
	refused(&f, "{\"artifact\": \"g:a:1\", \"capabilities\": "
	    "[\"NET_ADMIN\", \"FLY\"]}", NULL, "capabilities[1]: 'FLY' is "
	    "not a capability");
	refused(&f, "{\"artifact\": \"g:a:1\", \"capabilities\": "
	    "\"NET_ADMIN\"}", NULL, "capabilities: must be an array");
	fx_close(&f);
}


/* Sets this process's inheritable set; ambient needs it. */
static void
set_inheritable(uint32_t low)
{
	struct __user_cap_header_struct	hdr = { _LINUX_CAPABILITY_VERSION_3,
					    0 };
	struct __user_cap_data_struct	data[_LINUX_CAPABILITY_U32S_3];

	assert_int_equal(syscall(SYS_capget, &hdr, data), 0);
	data[0].inheritable = low;
	data[1].inheritable = 0;
	assert_int_equal(syscall(SYS_capset, &hdr, data), 0);
}

/*
 * The exec tests change this process's groups and capability sets; the
 * teardown puts back main()'s groups and empties the inheritable and
 * ambient sets (empty when the tests start), even after a failure.
 */
static gid_t	saved_groups[256];
static int	saved_ngroups;

static void
save_creds(void)
{
	saved_ngroups = getgroups((int)nitems(saved_groups), saved_groups);
	if (saved_ngroups < 0)
		saved_ngroups = 0;
}

static int
exec_teardown(void **state)
{
	(void)setgroups((size_t)saved_ngroups, saved_groups);
	(void)prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0UL, 0UL, 0UL);
	set_inheritable(0);
	return unit_dir_teardown(state);
}

/* A service's uid, groups, cwd, limit and bounding set, as it sees them. */
static void
test_exec_ids_caps(void **state)
{
	struct fx	f;
	char		out[4096], want[PATH_MAX + 64], real[PATH_MAX];
	gid_t		extra = 4244;

	fx_open(&f, *state);
	assert_non_null(realpath(f.rundir, real));
	/* A group of nodee's own that the service must not inherit. */
	assert_int_equal(setgroups(1, &extra), 0);
	run(&f, "{\"artifact\": \"g:a:1\", \"limits\": {\"nofile\": 123}}",
	    FAKE_UID, 1, out, sizeof(out));
	snprintf(want, sizeof(want), "%d\n%d\n%s\n123\n", FAKE_UID, FAKE_UID,
	    real);
	if (strncmp(out, want, strlen(want)) != 0)
		fail_msg("want \"%s...\", got \"%s\"", want, out);
	assert_true(cap_set(out, "CapBnd") == 0);
	assert_true(cap_set(out, "CapPrm") == 0);
	assert_true(cap_set(out, "CapAmb") == 0);

	/* The groups of the spec's user, here root's group 0. */
	run(&f, "{\"artifact\": \"g:a:1\", \"user\": \"root\", "
	    "\"capabilities\": [\"NET_BIND_SERVICE\"]}", FAKE_UID, 1, out,
	    sizeof(out));
	snprintf(want, sizeof(want), "%d\n%d 0\n", FAKE_UID, FAKE_UID);
	if (strncmp(out, want, strlen(want)) != 0)
		fail_msg("want \"%s...\", got \"%s\"", want, out);
	assert_true(cap_set(out, "CapBnd") == 1ULL << CAP_NET_BIND_SERVICE);
	/* Not root: the bounding set is a ceiling, nothing is held. */
	assert_true(cap_set(out, "CapPrm") == 0);
	fx_close(&f);
}

/*
 * A root service holds exactly what it was granted, whatever nodee's
 * own inheritable and ambient sets hold.
 */
static void
test_exec_root_caps(void **state)
{
	struct fx	f;
	char		out[4096];

	fx_open(&f, *state);
	set_inheritable(1U << CAP_SYS_ADMIN);
	assert_int_equal(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE,
	    (unsigned long)CAP_SYS_ADMIN, 0UL, 0UL), 0);
	run(&f, "{\"artifact\": \"g:a:1\", \"capabilities\": "
	    "[\"NET_BIND_SERVICE\"]}", 0, 1, out, sizeof(out));
	assert_true(strncmp(out, "0\n0\n", 4) == 0);
	assert_true(cap_set(out, "CapBnd") == 1ULL << CAP_NET_BIND_SERVICE);
	assert_true(cap_set(out, "CapPrm") == 1ULL << CAP_NET_BIND_SERVICE);
	assert_true(cap_set(out, "CapEff") == 1ULL << CAP_NET_BIND_SERVICE);
	assert_true(cap_set(out, "CapInh") == 0);
	assert_true(cap_set(out, "CapAmb") == 0);
	fx_close(&f);
}

/*
 * The hole this module closes: a root service remounting its read-only
 * view of the software tree read-write.  With CAP_SYS_ADMIN granted the
 * same script does write, which shows that the check can see it.
 */
static void
test_exec_root_remount(void **state)
{
	struct fx	f;
	char		p[PATH_MAX], x[PATH_MAX], script[3 * PATH_MAX];
	char		out[4096];
	struct stat	st;

	fx_open(&f, *state);
	unit_path(x, *state, "software/x");
	snprintf(script, sizeof(script), "#!/bin/sh\n"
	    "mount -o remount,bind,rw %s/software && touch %s\n"
	    "echo done\n", (const char *)*state, x);
	unit_path(p, f.adir, "bin/start");
	unit_write(p, script, 0755);
	run(&f, "{\"artifact\": \"g:a:1\"}", 0, 1, out, sizeof(out));
	assert_contains(out, "done");
	assert_int_equal(lstat(x, &st), -1);
	assert_int_equal(errno, ENOENT);

	run(&f, "{\"artifact\": \"g:a:1\", \"capabilities\": "
	    "[\"SYS_ADMIN\"]}", 0, 1, out, sizeof(out));
	assert_int_equal(lstat(x, &st), 0);
	fx_close(&f);
}

/* The executable went between plan and fork: spawn_exec says so. */
static void
test_exec_missing(void **state)
{
	struct fx		f;
	struct spawn_plan	p;
	char			err[512], path[PATH_MAX], want[PATH_MAX + 64];
	pid_t			pid = 0;

	fx_open(&f, *state);
	built(&f, "{\"artifact\": \"g:a:1\"}", NULL, FAKE_UID, 1, &p);
	unit_path(path, f.adir, "bin/start");
	assert_int_equal(unlink(path), 0);
	assert_int_equal(spawn_exec(&p, &pid, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "execve %s failed: No such file or "
	    "directory", path);
	assert_string_equal(err, want);
	assert_int_equal(pid, 0);
	/* The failed child was reaped. */
	assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
	assert_int_equal(errno, ECHILD);
	spawn_plan_free(&p);
	fx_close(&f);
}

/*
 * A directory on the way that the service's uid cannot search (a home
 * directory of mode 0700): the error names it and says what to do.
 */
static void
test_exec_unsearchable(void **state)
{
	struct fx		f;
	struct spawn_plan	p;
	char			err[1024];
	pid_t			pid = 0;

	fx_open(&f, *state);
	built(&f, "{\"artifact\": \"g:a:1\"}", NULL, FAKE_UID, 1, &p);
	assert_int_equal(chmod(f.adir, 0700), 0);
	assert_int_equal(spawn_exec(&p, &pid, err, sizeof(err)), -1);
	assert_contains(err, "Permission denied");
	assert_contains(err, f.adir);
	assert_contains(err, "chmod o+x");
	assert_int_equal(chmod(f.adir, 0755), 0);
	spawn_plan_free(&p);
	fx_close(&f);
}

/* A step before execve names itself: a cwd that is not a directory. */
static void
test_exec_step(void **state)
{
	struct fx		f;
	struct spawn_plan	p;
	char			err[512];
	pid_t			pid = 0;

	fx_open(&f, *state);
	built(&f, "{\"artifact\": \"g:a:1\"}", NULL, 0, 0, &p);
	p.cwdfd = f.outfd;
	assert_int_equal(spawn_exec(&p, &pid, err, sizeof(err)), -1);
	assert_contains(err, "fchdir ");
	assert_contains(err, "/software/g/a/1/bin/start failed: Not a "
	    "directory");
	assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
	assert_int_equal(errno, ECHILD);
	spawn_plan_free(&p);
	fx_close(&f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_plan_argv_env,
		    unit_dir_setup, unit_dir_teardown),
		cmocka_unit_test_setup_teardown(test_plan_manifest,
		    unit_dir_setup, unit_dir_teardown),
		cmocka_unit_test_setup_teardown(test_plan_refused,
		    unit_dir_setup, unit_dir_teardown),
		cmocka_unit_test_setup_teardown(test_plan_limits,
		    unit_dir_setup, unit_dir_teardown),
		cmocka_unit_test_setup_teardown(test_plan_root,
		    unit_dir_setup, unit_dir_teardown),
		cmocka_unit_test_setup_teardown(test_exec_ids_caps,
		    unit_dir_setup, exec_teardown),
		cmocka_unit_test_setup_teardown(test_exec_root_caps,
		    unit_dir_setup, exec_teardown),
		cmocka_unit_test_setup_teardown(test_exec_root_remount,
		    unit_dir_setup, unit_dir_teardown),
		cmocka_unit_test_setup_teardown(test_exec_missing,
		    unit_dir_setup, unit_dir_teardown),
		cmocka_unit_test_setup_teardown(test_exec_unsearchable,
		    unit_dir_setup, unit_dir_teardown),
		cmocka_unit_test_setup_teardown(test_exec_step,
		    unit_dir_setup, unit_dir_teardown),
	};

	save_creds();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
