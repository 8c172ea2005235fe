/*
 * test_prefix: nodee's directory tree and the lock that keeps a second
 * daemon off it.  The competing daemon is a forked child, a process of
 * its own as it is in real life: flock(2) locks belong to an open file
 * description, and what matters is that another process is kept out and
 * told the holder's pid.  The child reports through its exit status,
 * because cmocka's asserts belong to the parent.
 */
#include <sys/stat.h>
#include <sys/wait.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "prefix.h"
#include "unit.h"

#define ERRLEN	1024

/* Exit statuses of the child in the lock tests. */
#define CHILD_AS_EXPECTED	0
#define CHILD_LOCKED		10	/* took a lock it should not have */
#define CHILD_REFUSED		11	/* refused a lock it should have had */
#define CHILD_NO_IN_USE		12	/* message lacks "in use" */
#define CHILD_NO_PID		13	/* message lacks the holder's pid */

static void	test_absolute(void **);
static void	test_prepare(void **);
static void	test_prepare_again(void **);
static void	test_prepare_not_dir(void **);
static void	test_lock_held(void **);
static void	test_lock_released(void **);
static void	test_lock_no_state(void **);
static void	test_path(void **);

static void	assert_dir(const char *, const char *, mode_t);
static int	wait_child(pid_t);

int
main(void)
{
	const struct CMUnitTest	tests[] = {
		cmocka_unit_test(test_absolute),
		cmocka_unit_test_setup_teardown(test_prepare, unit_dir_setup,
		    unit_dir_teardown),
		cmocka_unit_test_setup_teardown(test_prepare_again,
		    unit_dir_setup, unit_dir_teardown),
		cmocka_unit_test_setup_teardown(test_prepare_not_dir,
		    unit_dir_setup, unit_dir_teardown),
		cmocka_unit_test_setup_teardown(test_lock_held,
		    unit_dir_setup, unit_dir_teardown),
		cmocka_unit_test_setup_teardown(test_lock_released,
		    unit_dir_setup, unit_dir_teardown),
		cmocka_unit_test_setup_teardown(test_lock_no_state,
		    unit_dir_setup, unit_dir_teardown),
		cmocka_unit_test(test_path),
	};

	/* Modes are checked exactly: the caller's umask must not vary them. */
	umask(022);
	return cmocka_run_group_tests(tests, NULL, NULL);
}

static void
test_absolute(void **state)
{
	char	cwd[PATH_MAX], out[PATH_MAX], want[PATH_MAX + 32];
	char	err[ERRLEN], small[8];

	(void)state;
	assert_non_null(getcwd(cwd, sizeof(cwd)));

	assert_int_equal(prefix_absolute("var", out, sizeof(out), err,
	    sizeof(err)), 0);
	snprintf(want, sizeof(want), "%s/var", cwd);
	assert_string_equal(out, want);

	/* "var/" and "var" are the same prefix, and so is "var///". */
	assert_int_equal(prefix_absolute("var/", out, sizeof(out), err,
	    sizeof(err)), 0);
	assert_string_equal(out, want);
	assert_int_equal(prefix_absolute("var///", out, sizeof(out), err,
	    sizeof(err)), 0);
	assert_string_equal(out, want);

	assert_int_equal(prefix_absolute("a/b/", out, sizeof(out), err,
	    sizeof(err)), 0);
	snprintf(want, sizeof(want), "%s/a/b", cwd);
	assert_string_equal(out, want);

	/* Absolute prefixes are kept as given, less trailing slashes. */
	assert_int_equal(prefix_absolute("/srv/nodee", out, sizeof(out), err,
	    sizeof(err)), 0);
	assert_string_equal(out, "/srv/nodee");
	assert_int_equal(prefix_absolute("/srv/nodee//", out, sizeof(out),
	    err, sizeof(err)), 0);
	assert_string_equal(out, "/srv/nodee");
	/* The root stays the root. */
	assert_int_equal(prefix_absolute("/", out, sizeof(out), err,
	    sizeof(err)), 0);
	assert_string_equal(out, "/");
	assert_int_equal(prefix_absolute("///", out, sizeof(out), err,
	    sizeof(err)), 0);
	assert_string_equal(out, "/");

	/* Too long for the buffer: refused, not cut to another path. */
	assert_int_equal(prefix_absolute("/srv/nodee", small, sizeof(small),
	    err, sizeof(err)), -1);
	assert_contains(err, "too long");
	assert_contains(err, "/srv/nodee");
}

static void
test_prepare(void **state)
{
	static const char	*subs[] = {
		"software", "runtime", "state", "tmp",
	};
	char			 prefix[PATH_MAX], probe[PATH_MAX + 32];
	char			 err[ERRLEN];
	size_t			 i;

	/* Parents that do not exist yet are made too (mkdir -p). */
	unit_path(prefix, *state, "a/b/prefix");
	if (prefix_prepare(prefix, err, sizeof(err)) != 0)
		fail_msg("prepare: %s", err);
	assert_dir(prefix, ".", 0755);
	assert_dir(prefix, "software", 0755);
	assert_dir(prefix, "runtime", 0755);
	/* The token and the database live in state: owner only. */
	assert_dir(prefix, "state", 0700);
	assert_dir(prefix, "tmp", 0700);

	/* The write probes are gone. */
	for (i = 0; i < nitems(subs); i++) {
		snprintf(probe, sizeof(probe), "%s/%s/.nodee-probe", prefix,
		    subs[i]);
		assert_int_equal(access(probe, F_OK), -1);
	}
}

static void
test_prepare_again(void **state)
{
	char	prefix[PATH_MAX], keep[PATH_MAX + 32], text[64], err[ERRLEN];

	/* A trailing slash, as an operator may type it. */
	snprintf(prefix, sizeof(prefix), "%s/", (char *)*state);
	if (prefix_prepare(prefix, err, sizeof(err)) != 0)
		fail_msg("prepare: %s", err);
	snprintf(keep, sizeof(keep), "%s/state/token", (char *)*state);
	unit_write(keep, "kept\n", 0600);

	/* Every start prepares again; nothing already there is lost. */
	if (prefix_prepare(prefix, err, sizeof(err)) != 0)
		fail_msg("second prepare: %s", err);
	unit_read(keep, text, sizeof(text));
	assert_string_equal(text, "kept\n");
	assert_dir(*state, "state", 0700);
}

static void
test_prepare_not_dir(void **state)
{
	char	prefix[PATH_MAX], sub[PATH_MAX], err[ERRLEN];

	unit_path(prefix, *state, "file");
	unit_write(prefix, "not a directory\n", 0644);
	err[0] = '\0';
	assert_int_equal(prefix_prepare(prefix, err, sizeof(err)), -1);
	assert_contains(err, prefix);
	assert_contains(err, strerror(ENOTDIR));

	/* A file where a parent should be. */
	unit_path(sub, *state, "file/prefix");
	err[0] = '\0';
	assert_int_equal(prefix_prepare(sub, err, sizeof(err)), -1);
	assert_contains(err, sub);

	/* A file where state/ should be. */
	unit_path(prefix, *state, "p");
	assert_int_equal(mkdir(prefix, 0755), 0);
	unit_path(sub, prefix, "state");
	unit_write(sub, "", 0644);
	err[0] = '\0';
	assert_int_equal(prefix_prepare(prefix, err, sizeof(err)), -1);
	assert_contains(err, "state");
}

static void
test_lock_held(void **state)
{
	char	prefix[PATH_MAX], pidfile[PATH_MAX], err[ERRLEN];
	char	mine[32], text[64];
	pid_t	pid;

	snprintf(prefix, sizeof(prefix), "%s", (char *)*state);
	if (prefix_prepare(prefix, err, sizeof(err)) != 0)
		fail_msg("prepare: %s", err);
	if (prefix_lock(prefix, err, sizeof(err)) != 0)
		fail_msg("lock: %s", err);
	unit_path(pidfile, prefix, "state/nodee.pid");
	snprintf(mine, sizeof(mine), "%ld\n", (long)getpid());
	unit_read(pidfile, text, sizeof(text));
	assert_string_equal(text, mine);

	/* A second daemon on the same prefix. */
	snprintf(mine, sizeof(mine), "pid %ld", (long)getpid());
	if ((pid = fork()) == -1)
		fail_msg("fork: %s", strerror(errno));
	if (pid == 0) {
		if (prefix_lock(prefix, err, sizeof(err)) == 0)
			_exit(CHILD_LOCKED);
		if (strstr(err, "in use") == NULL)
			_exit(CHILD_NO_IN_USE);
		if (strstr(err, mine) == NULL)
			_exit(CHILD_NO_PID);
		_exit(CHILD_AS_EXPECTED);
	}
	assert_int_equal(wait_child(pid), CHILD_AS_EXPECTED);

	/* The refused daemon did not overwrite the holder's pid. */
	snprintf(mine, sizeof(mine), "%ld\n", (long)getpid());
	unit_read(pidfile, text, sizeof(text));
	assert_string_equal(text, mine);
}

/*
 * The lock dies with its holder, even by SIGKILL, and the pid it left in
 * the file does not stop the next daemon.
 */
static void
test_lock_released(void **state)
{
	char	prefix[PATH_MAX], pidfile[PATH_MAX], err[ERRLEN];
	char	want[32], text[64];
	pid_t	pid;
	int	status;

	snprintf(prefix, sizeof(prefix), "%s", (char *)*state);
	if (prefix_prepare(prefix, err, sizeof(err)) != 0)
		fail_msg("prepare: %s", err);
	if ((pid = fork()) == -1)
		fail_msg("fork: %s", strerror(errno));
	if (pid == 0) {
		if (prefix_lock(prefix, err, sizeof(err)) != 0)
			_exit(CHILD_REFUSED);
		raise(SIGKILL);
		_exit(CHILD_AS_EXPECTED);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGKILL);

	/* The dead child's pid is still in the file... */
	unit_path(pidfile, prefix, "state/nodee.pid");
	snprintf(want, sizeof(want), "%ld\n", (long)pid);
	unit_read(pidfile, text, sizeof(text));
	assert_string_equal(text, want);

	/* ...but the lock is free, and taking it writes our pid. */
	if (prefix_lock(prefix, err, sizeof(err)) != 0)
		fail_msg("lock after the holder died: %s", err);
	snprintf(want, sizeof(want), "%ld\n", (long)getpid());
	unit_read(pidfile, text, sizeof(text));
	assert_string_equal(text, want);
}

static void
test_lock_no_state(void **state)
{
	char		err[ERRLEN], path[PATH_MAX], file[PATH_MAX];
	struct stat	st;

	/*
	 * The lock is taken before prefix_prepare (so a refused second
	 * daemon touches nothing): prefix_lock makes state/ itself, private.
	 */
	err[0] = '\0';
	assert_int_equal(prefix_lock(*state, err, sizeof(err)), 0);
	snprintf(path, sizeof(path), "%s/state", (char *)*state);
	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0700);
	/* A prefix that is a file cannot hold a lock. */
	snprintf(file, sizeof(file), "%s/file", (char *)*state);
	unit_write(file, "x", 0644);
	assert_int_equal(prefix_lock(file, err, sizeof(err)), -1);
	assert_contains(err, "cannot create prefix");
}

static void
test_path(void **state)
{
	char	out[16];

	(void)state;
	assert_int_equal(prefix_path(out, sizeof(out), "/p", "state"), 0);
	assert_string_equal(out, "/p/state");
	/* 15 characters fit in 16 bytes, 16 do not. */
	assert_int_equal(prefix_path(out, sizeof(out), "/prefix", "1234567"),
	    0);
	assert_int_equal(prefix_path(out, sizeof(out), "/prefix", "12345678"),
	    -1);
}

/* prefix/sub is a directory with exactly mode. */
static void
assert_dir(const char *prefix, const char *sub, mode_t mode)
{
	struct stat	st;
	char		path[PATH_MAX];

	unit_path(path, prefix, sub);
	if (stat(path, &st) != 0)
		fail_msg("%s: %s", path, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		fail_msg("%s is not a directory", path);
	if ((st.st_mode & 07777) != mode)
		fail_msg("%s has mode %04o, not %04o", path,
		    (unsigned)(st.st_mode & 07777), (unsigned)mode);
}

/* The child's exit status, or -1 if it did not exit normally. */
static int
wait_child(pid_t pid)
{
	int	status;

	if (waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}
