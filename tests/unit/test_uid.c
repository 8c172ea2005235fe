/*
 * test_uid: dynamic uids stay exclusive machine-wide.  Tests run as root
 * beside other tests and perhaps real nodee daemons, so each uses a lock
 * file of its own and uids around 3.9 billion at a random offset, and
 * nothing assumes it is alone on the machine.  The competing daemon is a
 * forked child that runs the module itself, commanded through pipes; a
 * process "running as" a uid is a forked child that setresuid()s to it
 * and pauses.  Every child is killed by its pid at the end.
 */
#include <sys/fsuid.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "uid.h"
#include "unit.h"

#define ERRLEN		1024
#define KIDS_MAX	8

struct fixture {
	char		dir[PATH_MAX];
	char		lock[PATH_MAX];
	unsigned	base;		/* of a range no one else uses */
	pid_t		kids[KIDS_MAX];
	size_t		nkids;
	int		fd2;		/* a second open file description */
};

/* The competing daemon: a child running the module on the same file. */
struct peer {
	pid_t	pid;
	int	to, from;
};

struct peer_cmd {
	char		op;	/* 'a' alloc a-b, 'c' claim a, 'r' release a */
	unsigned	a, b;
};

static int	setup(void **);
static int	teardown(void **);
static void	test_init(void **);
static void	test_alloc_distinct(void **);
static void	test_claim_idempotent(void **);
static void	test_other_description(void **);
static void	test_other_daemon(void **);
static void	test_release_reuse(void **);
static void	test_named(void **);
static void	test_procs(void **);
static void	test_procs_any_id(void **);
static void	test_release_elsewhere(void **);

static void	add_kid(struct fixture *, pid_t);
static pid_t	run_as(struct fixture *, unsigned);
static pid_t	run_ids(struct fixture *, unsigned, unsigned, unsigned,
		    unsigned);
static void	end_kid(struct fixture *, pid_t);
static int	lock_other(const char *, unsigned);
static void	peer_start(struct fixture *, struct peer *);
static void	peer_serve(const char *, int, int);
static long long peer_call(struct peer *, char, unsigned, unsigned);
static unsigned	alloc_ok(unsigned, unsigned);
static void	alloc_none(unsigned, unsigned, const char *);

int
main(void)
{
	const struct CMUnitTest	tests[] = {
		cmocka_unit_test_setup_teardown(test_init, setup, teardown),
		cmocka_unit_test_setup_teardown(test_alloc_distinct, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_claim_idempotent, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_other_description, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_other_daemon, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_release_reuse, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_named, setup, teardown),
		cmocka_unit_test_setup_teardown(test_procs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_procs_any_id, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_release_elsewhere, setup,
		    teardown),
	};

	if (geteuid() != 0) {
		fprintf(stderr, "test_uid: needs root (setresuid, locks)\n");
		return 1;
	}
	umask(022);
	return cmocka_run_group_tests(tests, NULL, NULL);
}

static int
setup(void **state)
{
	struct fixture	*f;
	char		 err[ERRLEN];
	uint32_t	 r;

	if ((f = calloc(1, sizeof(*f))) == NULL)
		return -1;
	f->fd2 = -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/nodee-unit-XXXXXX");
	if (mkdtemp(f->dir) == NULL ||
	    getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r)) {
		free(f);
		return -1;
	}
	f->base = 3900000000U + r % 500000 * 100;
	unit_path(f->lock, f->dir, "uid.lock");
	*state = f;
	if (uid_init(f->lock, err, sizeof(err)) != 0) {
		fprintf(stderr, "uid_init: %s\n", err);
		return -1;
	}
	return 0;
}

static int
teardown(void **state)
{
	struct fixture	*f = *state;

	while (f->nkids > 0)
		end_kid(f, f->kids[0]);
	if (f->fd2 != -1)
		close(f->fd2);
	uid_fini();
	unit_rmtree(f->dir);
	free(f);
	return 0;
}

/* The lock file and its directory are made safely, and checked. */
static void
test_init(void **state)
{
	struct fixture	*f = *state;
	char		 err[ERRLEN], run[PATH_MAX], lock[PATH_MAX];
	char		 link[PATH_MAX];
	struct stat	 st;
	mode_t		 old;

	assert_int_equal(uid_init(f->lock, err, sizeof(err)), -1);
	assert_contains(err, "already open");
	uid_fini();

	/* The directory is 0755 whatever the umask; the file 0600. */
	unit_path(run, f->dir, "run");
	unit_path(lock, f->dir, "run/uid.lock");
	old = umask(077);
	if (uid_init(lock, err, sizeof(err)) != 0)
		fail_msg("init: %s", err);
	umask(old);
	assert_int_equal(stat(run, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0755);
	assert_int_equal(lstat(lock, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0600);
	uid_fini();

	/* A symlink is not followed. */
	unit_path(link, f->dir, "link");
	assert_int_equal(symlink(lock, link), 0);
	assert_int_equal(uid_init(link, err, sizeof(err)), -1);
	assert_contains(err, link);
	assert_contains(err, strerror(ELOOP));

	/* A file others may write would let them lock every uid away. */
	assert_int_equal(chmod(lock, 0666), 0);
	assert_int_equal(uid_init(lock, err, sizeof(err)), -1);
	assert_contains(err, "no one else may write");
	assert_int_equal(chmod(lock, 0600), 0);
	if (uid_init(lock, err, sizeof(err)) != 0)
		fail_msg("init: %s", err);
}

/* Distinct uids in order, each really locked, until the range is out. */
static void
test_alloc_distinct(void **state)
{
	struct fixture	*f = *state;
	char		 want[128];
	unsigned	 i, b = f->base;

	for (i = 0; i < 10; i++) {
		assert_int_equal(alloc_ok(b, b + 9), b + i);
		assert_true(uid_held(b + i));
	}
	assert_false(uid_held(b + 10));
	/* The lock is the machine's: another description cannot take it. */
	assert_int_equal(lock_other(f->lock, b + 3), -1);
	snprintf(want, sizeof(want), "no free uid in %u-%u (service_uid_min, "
	    "service_uid_max): 10 held by this daemon, 0 by others", b, b + 9);
	alloc_none(b, b + 9, want);
}

static void
test_claim_idempotent(void **state)
{
	struct fixture	*f = *state;
	char		 err[ERRLEN];
	unsigned	 b = f->base;
	int		 fd;

	if (uid_claim(b, 1, err, sizeof(err)) != 0)
		fail_msg("claim: %s", err);
	assert_int_equal(uid_claim(b, 1, err, sizeof(err)), 0);
	assert_int_equal(uid_claim(b, 0, err, sizeof(err)), 0);
	assert_true(uid_held(b));
	assert_int_equal(lock_other(f->lock, b), -1);
	/* Claimed is held: alloc does not give it out again. */
	alloc_none(b, b, "1 held by this daemon, 0 by others");

	uid_release(b);
	assert_false(uid_held(b));
	assert_true((fd = lock_other(f->lock, b)) != -1);
	close(fd);
	uid_release(b);
	assert_int_equal(uid_claim(b, 1, err, sizeof(err)), 0);
	assert_true(uid_held(b));
}

/* OFD locks of another open file description conflict with ours. */
static void
test_other_description(void **state)
{
	struct fixture	*f = *state;
	char		 err[ERRLEN], want[128];
	unsigned	 b = f->base;

	assert_true((f->fd2 = lock_other(f->lock, b + 1)) != -1);
	assert_int_equal(uid_claim(b + 1, 0, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "uid %u is held by another nodee daemon "
	    "on this machine", b + 1);
	assert_contains(err, want);
	assert_false(uid_held(b + 1));

	assert_int_equal(alloc_ok(b, b + 2), b);
	assert_int_equal(alloc_ok(b, b + 2), b + 2);
	alloc_none(b, b + 2, "2 held by this daemon, 1 by others or in use");

	/* A reclaim at start-up takes only the lock, and is refused too. */
	assert_int_equal(uid_reclaim(b + 1, err, sizeof(err)), -1);
	assert_contains(err, want);
	close(f->fd2);
	f->fd2 = -1;
	if (uid_claim(b + 1, 0, err, sizeof(err)) != 0)
		fail_msg("claim once the other let go: %s", err);
	uid_release(b + 1);
	if (uid_reclaim(b + 1, err, sizeof(err)) != 0)
		fail_msg("reclaim once the other let go: %s", err);
	assert_true(uid_held(b + 1));
	assert_int_equal(uid_reclaim(b + 1, err, sizeof(err)), 0);
	assert_true((f->fd2 = lock_other(f->lock, b + 1)) == -1);
}

/* Two daemons never share a uid; a daemon's death frees its uids. */
static void
test_other_daemon(void **state)
{
	struct fixture	*f = *state;
	struct peer	 p;
	char		 err[ERRLEN];
	unsigned	 b = f->base;
	pid_t		 c;

	peer_start(f, &p);
	assert_int_equal(peer_call(&p, 'a', b, b + 2), b);
	assert_int_equal(alloc_ok(b, b + 2), b + 1);
	assert_int_equal(peer_call(&p, 'c', b + 1, 0), -1);
	assert_int_equal(uid_claim(b, 0, err, sizeof(err)), -1);
	assert_contains(err, "held by another nodee daemon");
	/*
	 * Its service runs, and our next look at /proc (after a release)
	 * sees it: still the daemon is named, the better lead.
	 */
	c = run_as(f, b);
	uid_release(b + 1);
	assert_int_equal(uid_claim(b, 1, err, sizeof(err)), -1);
	assert_contains(err, "held by another nodee daemon");
	end_kid(f, c);

	/* kill -9: the kernel drops the peer's locks. */
	end_kid(f, p.pid);
	close(p.to);
	close(p.from);
	if (uid_claim(b, 0, err, sizeof(err)) != 0)
		fail_msg("claim after the other daemon died: %s", err);
}

/* A released uid comes back, but only after the others were tried. */
static void
test_release_reuse(void **state)
{
	struct fixture	*f = *state;
	unsigned	 b = f->base;

	assert_int_equal(alloc_ok(b, b + 2), b);
	uid_release(b);
	assert_false(uid_held(b));
	assert_int_equal(alloc_ok(b, b + 2), b + 1);
	assert_int_equal(alloc_ok(b, b + 2), b + 2);
	assert_int_equal(alloc_ok(b, b + 2), b);
	alloc_none(b, b + 2, "3 held by this daemon");
	uid_release(b + 1);
	assert_int_equal(alloc_ok(b, b + 2), b + 1);
}

/* A uid the user or group database names is never a service's. */
static void
test_named(void **state)
{
	struct passwd	*pw;
	struct group	*gr;
	char		 err[ERRLEN], want[512], group[256];
	unsigned	 u, i;

	(void)state;
	assert_int_equal(uid_claim(0, 0, err, sizeof(err)), -1);
	assert_contains(err, "uid 0 is named in /etc/passwd (user root)");
	alloc_none(0, 0, "0 held by this daemon, 1 by others or in use");

	if ((pw = getpwuid(65534)) == NULL) {
		fail_msg("this test needs uid 65534 (nobody) in /etc/passwd");
		return;
	}
	snprintf(want, sizeof(want), "uid 65534 is named in /etc/passwd "
	    "(user %s)", pw->pw_name);
	assert_int_equal(uid_claim(65534, 0, err, sizeof(err)), -1);
	assert_contains(err, want);
	for (i = 0; i < 3; i++) {
		if (uid_alloc(65533, 65535, &u, err, sizeof(err)) != 0)
			break;
		assert_int_not_equal(u, 65534);
	}
	assert_contains(err, "no free uid in 65533-65535");

	/* A group's gid: a service's gid is its uid. */
	group[0] = '\0';
	setgrent();
	while ((gr = getgrent()) != NULL)
		if (getpwuid(gr->gr_gid) == NULL) {
			snprintf(group, sizeof(group), "%s", gr->gr_name);
			u = gr->gr_gid;
			break;
		}
	endgrent();
	if (group[0] == '\0')
		fail_msg("this test needs a group whose gid is no user's uid");
	snprintf(want, sizeof(want), "uid %u is named in /etc/group (group "
	    "%s)", u, group);
	assert_int_equal(uid_claim(u, 0, err, sizeof(err)), -1);
	assert_contains(err, want);
}

/*
 * A uid a process runs as is refused, also when the process outlives the
 * service that held the uid; once the process is gone the uid is free.
 */
static void
test_procs(void **state)
{
	struct fixture	*f = *state;
	char		 err[ERRLEN], want[128];
	unsigned	 b = f->base;
	pid_t		 c1, c2;

	c1 = run_as(f, b + 1);
	assert_int_equal(uid_busy(b + 1), 1);
	assert_int_equal(uid_busy(b), 0);
	/* At start-up a recorded uid's own service runs as it. */
	if (uid_claim(b + 1, 0, err, sizeof(err)) != 0)
		fail_msg("claim of a recorded uid: %s", err);
	uid_release(b + 1);
	assert_int_equal(uid_claim(b + 1, 1, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "uid %u is in use: processes run as it",
	    b + 1);
	assert_contains(err, want);
	assert_false(uid_held(b + 1));

	assert_int_equal(alloc_ok(b, b + 3), b);
	assert_int_equal(alloc_ok(b, b + 3), b + 2);
	assert_int_equal(alloc_ok(b, b + 3), b + 3);
	alloc_none(b, b + 3, "3 held by this daemon, 1 by others or in use");

	/*
	 * A service of b + 2 leaves a process behind after the last scan;
	 * released, b + 2 must not go out on that scan.
	 */
	c2 = run_as(f, b + 2);
	assert_int_equal(uid_busy(b + 2), 1);
	uid_release(b + 2);
	alloc_none(b, b + 3, "2 held by this daemon, 2 by others or in use");

	/* Gone: free again, though the last scan still saw it. */
	end_kid(f, c2);
	assert_int_equal(uid_busy(b + 2), 0);
	assert_int_equal(alloc_ok(b, b + 3), b + 2);
	end_kid(f, c1);
	if (uid_claim(b + 1, 1, err, sizeof(err)) != 0)
		fail_msg("claim once the process is gone: %s", err);
}

/*
 * Another daemon releases a uid that its service's escaped process still
 * runs as: our scan, taken before that process, must not be used.
 */
static void
test_release_elsewhere(void **state)
{
	struct fixture	*f = *state;
	struct peer	 p;
	unsigned	 b = f->base;
	pid_t		 c;

	peer_start(f, &p);
	/* Our scan, before the peer's service leaves a process behind. */
	assert_int_equal(alloc_ok(b, b + 1), b);
	assert_int_equal(peer_call(&p, 'c', b + 1, 0), 0);
	c = run_as(f, b + 1);
	assert_int_equal(peer_call(&p, 'r', b + 1, 0), 0);
	alloc_none(b, b + 1, "1 held by this daemon, 1 by others or in use");
	end_kid(f, c);
	assert_int_equal(alloc_ok(b, b + 1), b + 1);
}

/* Any of the four uids of a process makes it run as that uid. */
static void
test_procs_any_id(void **state)
{
	struct fixture	*f = *state;
	unsigned	 b = f->base;

	(void)run_ids(f, b, 0, 0, 0);
	(void)run_ids(f, 0, b + 1, 0, b + 1);
	(void)run_ids(f, 0, 0, b + 2, 0);
	(void)run_ids(f, 0, 0, 0, b + 3);
	assert_int_equal(uid_busy(b), 1);
	assert_int_equal(uid_busy(b + 1), 1);
	assert_int_equal(uid_busy(b + 2), 1);
	assert_int_equal(uid_busy(b + 3), 1);
	assert_int_equal(uid_busy(b + 4), 0);
	assert_int_equal(alloc_ok(b, b + 4), b + 4);
	alloc_none(b, b + 4, "1 held by this daemon, 4 by others or in use");
}

static void
add_kid(struct fixture *f, pid_t pid)
{
	assert_true(f->nkids < KIDS_MAX);
	f->kids[f->nkids++] = pid;
}

/* A child running as u (every uid of it) until killed. */
static pid_t
run_as(struct fixture *f, unsigned u)
{
	return run_ids(f, u, u, u, u);
}

/* A child with real, effective, saved and fs uid r, e, s, fs. */
static pid_t
run_ids(struct fixture *f, unsigned r, unsigned e, unsigned s, unsigned fs)
{
	pid_t	parent = getpid(), pid;
	int	p[2];
	char	c;

	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	if ((pid = fork()) == -1)
		fail_msg("fork: %s", strerror(errno));
	if (pid == 0) {
		if (setresuid(r, e, s) != 0)
			_exit(1);
		/* setfsuid says nothing of failure: read it back. */
		(void)setfsuid(fs);
		if ((unsigned)setfsuid(fs) != fs)
			_exit(1);
		/* Set after setresuid, which clears it; and a backstop. */
		(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(1);
		alarm(600);
		(void)write(p[1], "x", 1);
		/* Nothing of the test's, the uid lock file included. */
		(void)close_range(0, ~0U, 0);
		for (;;)
			pause();
	}
	add_kid(f, pid);
	close(p[1]);
	assert_int_equal(read(p[0], &c, 1), 1);
	close(p[0]);
	return pid;
}

static void
end_kid(struct fixture *f, pid_t pid)
{
	size_t	i;

	for (i = 0; i < f->nkids && f->kids[i] != pid; i++)
		;
	assert_true(i < f->nkids);
	f->kids[i] = f->kids[--f->nkids];
	(void)kill(pid, SIGKILL);
	assert_int_equal(waitpid(pid, NULL, 0), pid);
}

/* u's byte locked through a new open file description: its fd, or -1. */
static int
lock_other(const char *path, unsigned u)
{
	struct flock	fl;
	int		fd;

	assert_true((fd = open(path, O_RDWR | O_CLOEXEC)) != -1);
	memset(&fl, 0, sizeof(fl));
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;
	fl.l_start = (off_t)u;
	fl.l_len = 1;
	if (fcntl(fd, F_OFD_SETLK, &fl) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void
peer_start(struct fixture *f, struct peer *p)
{
	int		down[2], up[2];
	long long	r;

	assert_int_equal(pipe2(down, O_CLOEXEC), 0);
	assert_int_equal(pipe2(up, O_CLOEXEC), 0);
	if ((p->pid = fork()) == -1)
		fail_msg("fork: %s", strerror(errno));
	if (p->pid == 0) {
		close(down[1]);
		close(up[0]);
		peer_serve(f->lock, down[0], up[1]);
	}
	add_kid(f, p->pid);
	close(down[0]);
	close(up[1]);
	p->to = down[1];
	p->from = up[0];
	assert_int_equal(read(p->from, &r, sizeof(r)), sizeof(r));
	assert_int_equal(r, 0);
}

/*
 * The peer: the module of its own on the same lock file, its result of
 * uid_init first, then one reply per command until the pipe closes.
 */
static void
peer_serve(const char *lock, int in, int out)
{
	struct peer_cmd	cmd;
	long long	r;
	unsigned	u;
	char		err[ERRLEN];

	/* The parent's descriptor is not ours to use, nor its locks. */
	uid_fini();
	r = uid_init(lock, err, sizeof(err));
	(void)write(out, &r, sizeof(r));
	while (read(in, &cmd, sizeof(cmd)) == (ssize_t)sizeof(cmd)) {
		if (cmd.op == 'a')
			r = uid_alloc(cmd.a, cmd.b, &u, err, sizeof(err)) ==
			    0 ? (long long)u : -1;
		else if (cmd.op == 'c')
			r = uid_claim(cmd.a, 0, err, sizeof(err));
		else {
			uid_release(cmd.a);
			r = 0;
		}
		if (write(out, &r, sizeof(r)) != (ssize_t)sizeof(r))
			break;
	}
	_exit(0);
}

static long long
peer_call(struct peer *p, char op, unsigned a, unsigned b)
{
	struct peer_cmd	cmd;
	long long	r;

	memset(&cmd, 0, sizeof(cmd));
	cmd.op = op;
	cmd.a = a;
	cmd.b = b;
	assert_int_equal(write(p->to, &cmd, sizeof(cmd)), sizeof(cmd));
	assert_int_equal(read(p->from, &r, sizeof(r)), sizeof(r));
	return r;
}

static unsigned
alloc_ok(unsigned min, unsigned max)
{
	char		err[ERRLEN];
	unsigned	u;

	if (uid_alloc(min, max, &u, err, sizeof(err)) != 0)
		fail_msg("alloc in %u-%u: %s", min, max, err);
	assert_true(u >= min && u <= max);
	return u;
}

/* No uid in [min, max], with a message containing want. */
static void
alloc_none(unsigned min, unsigned max, const char *want)
{
	char		err[ERRLEN];
	unsigned	u = 0;

	if (uid_alloc(min, max, &u, err, sizeof(err)) == 0)
		fail_msg("alloc in %u-%u gave %u", min, max, u);
	assert_contains(err, want);
}
