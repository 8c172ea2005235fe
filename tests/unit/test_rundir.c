/*
 * test_rundir: root in a directory a service owns.  What a service can
 * plant there (a symlink for log/ or a log, a FIFO, a hard link, a file
 * of another uid) is refused, and what it points to keeps its owner, mode,
 * size and bytes; what is the service's own is created, given to its uid,
 * rotated and read.  Runs as root: 4242 stands for the service's uid.
 */
#include "unit.h"

#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <signal.h>

#include "config.h"
#include "coord.h"
#include "rundir.h"
#include "service.h"

#define SVC_UID		4242
#define SVC_GID		4243
#define BIG		(11 * 1024 * 1024)

static struct config	cf;
static struct coord	co;

/* cf.prefix becomes the test's directory; the service is 1.web.borud.fbu. */
static void
fix(const char *dir)
{
	char	err[256];

	config_defaults(&cf);
	snprintf(cf.prefix, sizeof(cf.prefix), "%s", dir);
	assert_int_equal(coord_parse("1.web.borud.fbu", &co, err,
	    sizeof(err)), 0);
}

/* PREFIX/runtime/fbu/borud/web/1/rel into out (PATH_MAX). */
static void
rpath(char *out, const char *rel)
{
	assert_true(snprintf(out, PATH_MAX, "%s/runtime/fbu/borud/web/1%s%s",
	    cf.prefix, rel[0] ? "/" : "", rel) < PATH_MAX);
}

/* The tree, made as the supervisor makes it, with both logs. */
static void
make_tree(void)
{
	struct rundir	rd;
	char		err[512];
	int		o, e;

	if (rundir_open(&cf, &co, SVC_UID, SVC_GID, 1, &rd, err,
	    sizeof(err)) != 0)
		fail_msg("rundir_open: %s", err);
	if (rundir_logs(&rd, SVC_UID, SVC_GID, 1, &o, &e, err,
	    sizeof(err)) != 0)
		fail_msg("rundir_logs: %s", err);
	close(o);
	close(e);
	rundir_close(&rd);
}

/* Writes len bytes of a pattern seeded by seed, owned by uid, with mode. */
static void
write_big(const char *path, size_t len, int seed, uid_t uid, mode_t mode)
{
	char	buf[4096];
	size_t	i, n;
	int	fd;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	assert_true(fd != -1);
	for (i = 0; i < sizeof(buf); i++)
		buf[i] = (char)('a' + (i * 7 + (size_t)seed) % 26);
	buf[sizeof(buf) - 1] = '\n';
	for (i = 0; i < len; i += n) {
		n = len - i < sizeof(buf) ? len - i : sizeof(buf);
		assert_int_equal(write(fd, buf, n), (ssize_t)n);
	}
	assert_int_equal(fchown(fd, uid, uid), 0);
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

/* Exactly len bytes into path, which exists (NULs allowed). */
static void
write_bytes(const char *path, const char *bytes, size_t len)
{
	int	fd;

	fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
	assert_true(fd != -1);
	assert_int_equal(write(fd, bytes, len), (ssize_t)len);
	close(fd);
}

/* A checksum of the whole file, to prove it is byte for byte the same. */
static unsigned long long
sum_of(const char *path)
{
	unsigned long long	h = 1469598103934665603ULL;
	char			buf[65536];
	ssize_t			n, i;
	int			fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(fd != -1);
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		for (i = 0; i < n; i++)
			h = (h ^ (unsigned char)buf[i]) * 1099511628211ULL;
	close(fd);
	return h;
}

static void
assert_owner_mode(const char *path, uid_t uid, mode_t mode)
{
	struct stat	st;

	if (lstat(path, &st) != 0)
		fail_msg("%s: %s", path, strerror(errno));
	if (st.st_uid != uid || (st.st_mode & 07777) != mode)
		fail_msg("%s: uid %u mode %04o, want uid %u mode %04o", path,
		    (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777),
		    (unsigned)uid, (unsigned)mode);
}

static off_t
size_of(const char *path)
{
	struct stat	st;

	if (lstat(path, &st) != 0)
		return -1;
	return st.st_size;
}

/* A root-owned directory outside the runtime tree, holding "secret". */
static void
make_victim_dir(char *v, const char *dir)
{
	char	p[PATH_MAX];

	unit_path(v, dir, "victim");
	assert_int_equal(mkdir(v, 0700), 0);
	assert_int_equal(chmod(v, 0700), 0);
	unit_path(p, dir, "victim/secret");
	unit_write(p, "root's\n", 0600);
}

/*
 * A file of root's, dir/name (0600, text), and log/<log> replaced by a
 * link to it, symbolic or hard: what a service would plant.
 */
static void
plant(char *v, const char *dir, const char *name, const char *text,
    const char *log, int hard)
{
	char	p[PATH_MAX];

	unit_path(v, dir, name);
	unit_write(v, text, 0600);
	rpath(p, log);
	assert_true(unlink(p) == 0 || errno == ENOENT);
	assert_int_equal(hard ? link(v, p) : symlink(v, p), 0);
}

/* What a planted link pointed to is root's, 0600 and holds text still. */
static void
assert_untouched(const char *v, const char *text)
{
	char	buf[256];

	assert_owner_mode(v, 0, 0600);
	unit_read(v, buf, sizeof(buf));
	assert_string_equal(buf, text);
}

/* rundir_logs() on the tree must fail; err says why. */
static void
logs_refused(char *err, size_t errlen)
{
	struct rundir	rd;
	int		o = 7, e = 7;

	if (rundir_open(&cf, &co, SVC_UID, SVC_GID, 1, &rd, err, errlen) != 0)
		fail_msg("rundir_open: %s", err);
	assert_int_equal(rundir_logs(&rd, SVC_UID, SVC_GID, 1, &o, &e, err,
	    errlen), -1);
	assert_int_equal(o, -1);
	assert_int_equal(e, -1);
	rundir_close(&rd);
}

static void
test_open_creates(void **state)
{
	const char	*dir = *state;
	struct rundir	 rd;
	char		 p[PATH_MAX], err[512];
	mode_t		 old;
	int		 o, e, fl;

	fix(dir);
	/* Modes are set on the descriptor, whatever the umask. */
	old = umask(077);
	if (rundir_open(&cf, &co, SVC_UID, SVC_GID, 1, &rd, err,
	    sizeof(err)) != 0)
		fail_msg("rundir_open: %s", err);
	umask(old);
	rpath(p, "");
	assert_string_equal(rd.path, p);
	assert_owner_mode(p, SVC_UID, 0750);
	rpath(p, "log");
	assert_owner_mode(p, SVC_UID, 0750);
	snprintf(p, sizeof(p), "%s/runtime/fbu/borud/web", dir);
	assert_owner_mode(p, 0, 0755);
	snprintf(p, sizeof(p), "%s/runtime", dir);
	assert_owner_mode(p, 0, 0755);

	assert_int_equal(rundir_logs(&rd, SVC_UID, SVC_GID, 1, &o, &e, err,
	    sizeof(err)), 0);
	/* Blocking for the service, not inherited by anything else. */
	fl = fcntl(o, F_GETFL);
	assert_int_equal(fl & O_NONBLOCK, 0);
	assert_true((fl & O_APPEND) != 0);
	assert_true((fcntl(e, F_GETFD) & FD_CLOEXEC) != 0);
	assert_int_equal(write(o, "hello\n", 6), 6);
	close(o);
	close(e);
	rundir_close(&rd);
	assert_int_equal(rd.dirfd, -1);
	rpath(p, "log/stdout");
	assert_owner_mode(p, SVC_UID, 0640);
	assert_int_equal(size_of(p), 6);
	rpath(p, "log/stderr");
	assert_owner_mode(p, SVC_UID, 0640);

	/* Opened again for another uid: the directories follow. */
	rpath(p, "");
	assert_int_equal(chmod(p, 0777), 0);
	assert_int_equal(rundir_open(&cf, &co, SVC_UID + 1, SVC_GID, 1, &rd,
	    err, sizeof(err)), 0);
	rundir_close(&rd);
	rpath(p, "log");
	assert_owner_mode(p, SVC_UID + 1, 0750);
	rpath(p, "");
	assert_owner_mode(p, SVC_UID + 1, 0750);
}

static void
test_open_refuses_links(void **state)
{
	const char	*dir = *state;
	struct rundir	 rd;
	char		 p[PATH_MAX], v[PATH_MAX], err[512], buf[64];
	DIR		*d;
	struct dirent	*de;
	int		 n = 0;

	fix(dir);
	make_tree();
	make_victim_dir(v, dir);
	rpath(p, "log");
	unit_rmtree(p);
	assert_int_equal(symlink(v, p), 0);

	rd.dirfd = rd.logfd = 1000;
	assert_int_equal(rundir_open(&cf, &co, SVC_UID, SVC_GID, 1, &rd, err,
	    sizeof(err)), -1);
	assert_contains(err, "log/");
	assert_contains(err, "symbolic link");
	rpath(p, "");
	assert_contains(err, p);
	assert_int_equal(rd.dirfd, -1);
	assert_int_equal(rd.logfd, -1);
	/* The target: root's, 0700, and only what it held. */
	assert_owner_mode(v, 0, 0700);
	d = opendir(v);
	assert_non_null(d);
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 &&
		    strcmp(de->d_name, "..") != 0) {
			assert_string_equal(de->d_name, "secret");
			n++;
		}
	closedir(d);
	assert_int_equal(n, 1);
	unit_path(p, dir, "victim/secret");
	assert_owner_mode(p, 0, 0600);
	unit_read(p, buf, sizeof(buf));
	assert_string_equal(buf, "root's\n");

	/* log/ a regular file: named as what it is. */
	rpath(p, "log");
	assert_int_equal(unlink(p), 0);
	unit_write(p, "x", 0644);
	assert_int_equal(rundir_open(&cf, &co, SVC_UID, SVC_GID, 1, &rd, err,
	    sizeof(err)), -1);
	assert_contains(err, "log/ in ");
	assert_contains(err, "is a regular file, not a directory");

	/* Any component: the instance directory itself a link. */
	rpath(p, "");
	unit_rmtree(p);
	assert_int_equal(symlink(v, p), 0);
	assert_int_equal(rundir_open(&cf, &co, SVC_UID, SVC_GID, 1, &rd, err,
	    sizeof(err)), -1);
	assert_contains(err, "1/ in ");
	assert_contains(err, "symbolic link");
	assert_owner_mode(v, 0, 0700);
}

static void
test_logs_refuse_links(void **state)
{
	const char	*dir = *state;
	char		 p[PATH_MAX], v[PATH_MAX], err[512];

	fix(dir);
	make_tree();
	plant(v, dir, "passwd", "root:x:0:0\n", "log/stdout", 0);
	logs_refused(err, sizeof(err));
	assert_contains(err, "log/stdout in ");
	assert_contains(err, "symbolic link");
	assert_untouched(v, "root:x:0:0\n");

	/* A dangling link: nothing is created where it points. */
	rpath(p, "log/stdout");
	assert_int_equal(unlink(p), 0);
	unit_path(v, dir, "created-by-root");
	assert_int_equal(symlink(v, p), 0);
	logs_refused(err, sizeof(err));
	assert_contains(err, "symbolic link");
	assert_int_equal(size_of(v), -1);
}

static void
test_logs_refuse_fifo(void **state)
{
	const char	*dir = *state;
	struct rundir	 rd;
	char		 p[PATH_MAX], err[512];
	int		 o, e, r;

	fix(dir);
	make_tree();
	rpath(p, "log/stderr");
	assert_int_equal(unlink(p), 0);
	assert_int_equal(mkfifo(p, 0666), 0);
	assert_int_equal(rundir_open(&cf, &co, SVC_UID, SVC_GID, 1, &rd, err,
	    sizeof(err)), 0);
	/* A hang is a failure, not a stuck test run. */
	alarm(20);
	assert_int_equal(rundir_logs(&rd, SVC_UID, SVC_GID, 1, &o, &e, err,
	    sizeof(err)), -1);
	assert_contains(err, "log/stderr in ");
	assert_contains(err, "is a FIFO, not a regular file");
	assert_int_equal(o, -1);
	/* With a reader the open succeeds: fstat() refuses it then. */
	r = open(p, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	assert_true(r != -1);
	assert_int_equal(rundir_logs(&rd, SVC_UID, SVC_GID, 1, &o, &e, err,
	    sizeof(err)), -1);
	assert_contains(err, "is a FIFO");
	assert_null(rundir_tail(&cf, &co, "stderr", 100));
	alarm(0);
	close(r);
	rundir_close(&rd);
}

static void
test_logs_refuse_hardlink_and_owner(void **state)
{
	const char	*dir = *state;
	char		 p[PATH_MAX], v[PATH_MAX], err[512];

	fix(dir);
	make_tree();
	plant(v, dir, "shadow", "root:secret\n", "log/stdout", 1);
	logs_refused(err, sizeof(err));
	assert_contains(err, "log/stdout in ");
	assert_contains(err, "2 hard links");
	assert_untouched(v, "root:secret\n");
	/* Nor read out through the API. */
	assert_null(rundir_tail(&cf, &co, "stdout", 100));

	/*
	 * One link, but an earlier uid's (the service's "user" changed): kept
	 * aside as log/stdout.uid4343, untouched, and a fresh log made.
	 */
	rpath(p, "log/stdout");
	assert_int_equal(unlink(p), 0);
	unit_write(p, "theirs\n", 0600);
	assert_int_equal(chown(p, 4343, 4343), 0);
	{
		struct rundir	rd;
		char		q[PATH_MAX], buf[64];
		int		o = -1, e = -1;

		assert_int_equal(rundir_open(&cf, &co, SVC_UID, SVC_GID, 1, &rd,
		    err, sizeof(err)), 0);
		assert_int_equal(rundir_logs(&rd, SVC_UID, SVC_GID, 1, &o, &e,
		    err, sizeof(err)), 0);
		close(o);
		close(e);
		rundir_close(&rd);
		rpath(q, "log/stdout.uid4343");
		assert_owner_mode(q, 4343, 0600);
		unit_read(q, buf, sizeof(buf));
		assert_string_equal(buf, "theirs\n");
		assert_owner_mode(p, SVC_UID, 0640);
	}
}

/* Rotates as the supervisor's background thread would, with keep 2. */
static void
test_rotate(void **state)
{
	const char	*dir = *state;
	struct rundir	 rd;
	char		 p[PATH_MAX], q[PATH_MAX], err[512], buf[64];
	int		 o, e;

	fix(dir);
	assert_int_equal(rundir_open(&cf, &co, SVC_UID, SVC_GID, 1, &rd, err,
	    sizeof(err)), 0);
	assert_int_equal(rundir_logs(&rd, SVC_UID, SVC_GID, 1, &o, &e, err,
	    sizeof(err)), 0);
	rundir_close(&rd);
	rpath(p, "log/stdout");
	rpath(q, "log/stdout.1");

	/* Under max: nothing moves. */
	assert_int_equal(write(o, "first\n", 6), 6);
	assert_int_equal(rundir_rotate(&cf, &co, SVC_UID, 4096, 2), 0);
	assert_int_equal(size_of(p), 6);
	assert_int_equal(size_of(q), -1);

	/* Over max: the old bytes in .1, the live file empty, still open. */
	write_big(q, 0, 0, 0, 0600);	/* a stale .1 is replaced */
	assert_int_equal(write(o, "one\n", 4), 4);
	assert_int_equal(ftruncate(o, 5000), 0);
	assert_int_equal(rundir_rotate(&cf, &co, SVC_UID, 4096, 2), 0);
	assert_int_equal(size_of(p), 0);
	assert_owner_mode(p, SVC_UID, 0640);
	assert_int_equal(size_of(q), 5000);
	assert_owner_mode(q, SVC_UID, 0640);
	unit_read(q, buf, 11);
	assert_string_equal(buf, "first\none\n");
	/* The service's O_APPEND descriptor writes at the new start. */
	assert_int_equal(write(o, "two\n", 4), 4);
	assert_int_equal(size_of(p), 4);

	/* Twice more: .1 -> .2, and never a .3 with keep 2. */
	assert_int_equal(ftruncate(o, 4096), 0);
	assert_int_equal(rundir_rotate(&cf, &co, SVC_UID, 4096, 2), 0);
	unit_read(q, buf, 5);
	assert_string_equal(buf, "two\n");
	rpath(q, "log/stdout.2");
	assert_int_equal(size_of(q), 5000);
	assert_int_equal(write(o, "three\n", 6), 6);
	assert_int_equal(ftruncate(o, 8000), 0);
	assert_int_equal(rundir_rotate(&cf, &co, SVC_UID, 4096, 2), 0);
	assert_int_equal(size_of(q), 4096);
	rpath(q, "log/stdout.3");
	assert_int_equal(size_of(q), -1);
	/* stderr was small all along. */
	rpath(q, "log/stderr.1");
	assert_int_equal(size_of(q), -1);
	close(o);
	close(e);
}

static void
test_rotate_leaves_planted_files(void **state)
{
	const char		*dir = *state;
	char			 p[PATH_MAX], v[PATH_MAX], h[PATH_MAX];
	unsigned long long	 sum;

	fix(dir);
	make_tree();
	/* stderr: a link to 11 MB of root's, over the default 10 MB max. */
	unit_path(v, dir, "big");
	write_big(v, BIG, 1, 0, 0600);
	sum = sum_of(v);
	rpath(p, "log/stderr");
	assert_int_equal(unlink(p), 0);
	assert_int_equal(symlink(v, p), 0);
	/* stdout: a hard link to another of root's. */
	unit_path(h, dir, "big2");
	write_big(h, 8192, 2, 0, 0600);
	rpath(p, "log/stdout");
	assert_int_equal(unlink(p), 0);
	assert_int_equal(link(h, p), 0);

	assert_int_equal(rundir_rotate(&cf, &co, SVC_UID, cf.log_max,
	    cf.log_keep), -1);
	assert_int_equal(size_of(v), BIG);
	assert_true(sum_of(v) == sum);
	assert_owner_mode(v, 0, 0600);
	assert_int_equal(rundir_rotate(&cf, &co, SVC_UID, 4096, 3), -1);
	assert_int_equal(size_of(h), 8192);
	assert_owner_mode(h, 0, 0600);
	rpath(p, "log/stderr.1");
	assert_int_equal(size_of(p), -1);
	rpath(p, "log/stdout.1");
	assert_int_equal(size_of(p), -1);

	/* A link to a file the service owns, elsewhere: left alone too. */
	unit_path(v, dir, "its-own");
	write_big(v, 8192, 5, SVC_UID, 0640);
	sum = sum_of(v);
	rpath(p, "log/stderr");
	assert_int_equal(unlink(p), 0);
	assert_int_equal(symlink(v, p), 0);
	assert_int_equal(rundir_rotate(&cf, &co, SVC_UID, 4096, 3), -1);
	assert_int_equal(size_of(v), 8192);
	assert_true(sum_of(v) == sum);
	unit_path(p, dir, "its-own.1");
	assert_int_equal(size_of(p), -1);
	rpath(p, "log/stderr.1");
	assert_int_equal(size_of(p), -1);

	/* A plain file of root's in the service's place is left too. */
	rpath(p, "log/stdout");
	assert_int_equal(unlink(p), 0);
	write_big(p, 8192, 3, 0, 0600);
	assert_int_equal(rundir_rotate(&cf, &co, SVC_UID, 4096, 3), -1);
	assert_int_equal(size_of(p), 8192);
	/* The same file as the service's own is rotated: the check is real. */
	assert_int_equal(chown(p, SVC_UID, SVC_UID), 0);
	rpath(p, "log/stderr");
	assert_int_equal(unlink(p), 0);
	assert_int_equal(rundir_rotate(&cf, &co, SVC_UID, 4096, 3), 0);
	rpath(p, "log/stdout");
	assert_int_equal(size_of(p), 0);
}

static void
test_rotate_log_dir_link(void **state)
{
	const char		*dir = *state;
	char			 p[PATH_MAX], v[PATH_MAX], s[PATH_MAX];
	unsigned long long	 sum;

	fix(dir);
	/* Nothing there yet: not an error, and nothing is made. */
	assert_int_equal(rundir_rotate(&cf, &co, SVC_UID, 4096, 3), 0);
	snprintf(p, sizeof(p), "%s/runtime", dir);
	assert_int_equal(size_of(p), -1);

	make_tree();
	make_victim_dir(v, dir);
	unit_path(s, dir, "victim/stdout");
	write_big(s, 9000, 4, SVC_UID, 0640);
	sum = sum_of(s);
	unit_path(p, dir, "victim/stdout.1");
	unit_write(p, "older\n", 0600);
	rpath(p, "log");
	unit_rmtree(p);
	assert_int_equal(symlink(v, p), 0);

	assert_int_equal(rundir_rotate(&cf, &co, SVC_UID, 4096, 3), -1);
	assert_int_equal(size_of(s), 9000);
	assert_true(sum_of(s) == sum);
	unit_path(p, dir, "victim/stdout.1");
	assert_int_equal(size_of(p), 6);
	unit_path(p, dir, "victim/stdout.2");
	assert_int_equal(size_of(p), -1);
	assert_owner_mode(v, 0, 0700);
}

static void
test_tail(void **state)
{
	const char	*dir = *state;
	char		 p[PATH_MAX], v[PATH_MAX], *t;

	fix(dir);
	/* No directory, then an empty log: nothing to show. */
	assert_null(rundir_tail(&cf, &co, "stderr", 100));
	make_tree();
	assert_null(rundir_tail(&cf, &co, "stderr", 100));

	rpath(p, "log/stderr");
	unit_write(p, "first line\nsecond\nthird\n\n", 0640);
	assert_int_equal(chown(p, SVC_UID, SVC_UID), 0);
	t = rundir_tail(&cf, &co, "stderr", 1000);
	assert_string_equal(t, "first line\nsecond\nthird");
	free(t);
	/* Exactly the whole file: its first line is whole. */
	t = rundir_tail(&cf, &co, "stderr", 25);
	assert_string_equal(t, "first line\nsecond\nthird");
	free(t);
	/* The last 12 bytes, "cond\nthird\n\n": from the next line start. */
	t = rundir_tail(&cf, &co, "stderr", 12);
	assert_string_equal(t, "third");
	free(t);

	/* Bad bytes: invalid, overlong, surrogate, cut, NUL. */
	unit_write(p, "ok \xff\xfe caf\xc3\xa9 \xc0\xaf \xed\xa0\x80 x", 0640);
	t = rundir_tail(&cf, &co, "stderr", 1000);
	assert_string_equal(t, "ok ?? caf\xc3\xa9 ?? ??? x");
	free(t);
	unit_write(p, "a\xe2\x82\n", 0640);
	t = rundir_tail(&cf, &co, "stderr", 1000);
	assert_string_equal(t, "a??");
	free(t);
	/* A NUL would end the string early. */
	write_bytes(p, "a\0b\n", 4);
	t = rundir_tail(&cf, &co, "stderr", 1000);
	assert_string_equal(t, "a?b");
	free(t);
	/* Cut inside a character and no newline: from the next one. */
	unit_write(p, "\xc3\xa9\xc3\xa9\xc3\xa9", 0640);
	t = rundir_tail(&cf, &co, "stderr", 3);
	assert_string_equal(t, "\xc3\xa9");
	free(t);

	/* A symlink to a file of root's: nothing. */
	plant(v, dir, "secret", "root's\n", "log/stderr", 0);
	assert_null(rundir_tail(&cf, &co, "stderr", 100));
	assert_null(rundir_tail(&cf, &co, "../../secret", 100));
}

/* The API's GET …/logs reads through rundir now. */
static void
test_service_log_tail(void **state)
{
	const char	*dir = *state;
	char		 p[PATH_MAX], v[PATH_MAX], err[512], *t;
	size_t		 len = 99;

	fix(dir);
	t = service_log_tail(&cf, &co, "stdout", 2, &len, NULL, err, sizeof(err));
	assert_non_null(t);
	assert_int_equal(len, 0);
	free(t);
	make_tree();
	rpath(p, "log/stdout");
	unit_write(p, "a\nb\nc\n", 0640);
	assert_int_equal(chown(p, SVC_UID, SVC_UID), 0);
	t = service_log_tail(&cf, &co, "stdout", 2, &len, NULL, err, sizeof(err));
	assert_non_null(t);
	assert_int_equal(len, 4);
	assert_string_equal(t, "b\nc\n");
	free(t);

	plant(v, dir, "secret", "root's\n", "log/stdout", 0);
	err[0] = '\0';
	assert_null(service_log_tail(&cf, &co, "stdout", 2, &len, NULL, err,
	    sizeof(err)));
	assert_contains(err, "log/stdout in ");
	assert_contains(err, "symbolic link");

	rpath(p, "log");
	unit_rmtree(p);
	unit_path(v, dir, "victim");
	assert_int_equal(mkdir(v, 0700), 0);
	unit_path(p, dir, "victim/stdout");
	unit_write(p, "root's\n", 0600);
	rpath(p, "log");
	assert_int_equal(symlink(v, p), 0);
	assert_null(service_log_tail(&cf, &co, "stdout", 2, &len, NULL, err,
	    sizeof(err)));
	assert_contains(err, "log/ in ");
	assert_contains(err, "symbolic link");
}

/* A log follower's reads: from an offset, with where the log stands. */
static void
test_read_from(void **state)
{
	const char		*dir = *state;
	struct rundir		 rd;
	struct rundir_pos	 pos, before;
	char			 p[PATH_MAX], err[512], *t;
	size_t			 len;
	int			 o, e;

	fix(dir);
	t = rundir_read_from(&cf, &co, "stdout", 0, 100, &len, &pos, err,
	    sizeof(err));
	assert_non_null(t);	/* no directory yet: nothing, no error */
	assert_int_equal(len, 0);
	assert_int_equal(pos.size, 0);
	free(t);
	assert_int_equal(rundir_open(&cf, &co, SVC_UID, SVC_GID, 1, &rd, err,
	    sizeof(err)), 0);
	assert_int_equal(rundir_logs(&rd, SVC_UID, SVC_GID, 1, &o, &e, err,
	    sizeof(err)), 0);
	rundir_close(&rd);
	assert_int_equal(write(o, "a\nbb\nccc\n", 9), 9);

	t = rundir_read_from(&cf, &co, "stdout", 2, 3, &len, &pos, err,
	    sizeof(err));
	assert_non_null(t);
	assert_int_equal(len, 3);
	assert_memory_equal(t, "bb\n", 3);
	assert_int_equal(pos.size, 9);
	assert_int_equal(pos.rotated, 0);
	free(t);
	t = rundir_read_from(&cf, &co, "stdout", 9, 100, &len, &pos, err,
	    sizeof(err));
	assert_int_equal(len, 0);
	free(t);
	t = rundir_read_from(&cf, &co, "stdout", -1, 4, &len, &pos, err,
	    sizeof(err));
	assert_memory_equal(t, "ccc\n", 4);	/* negative: the tail */
	free(t);

	/* A rotation: the log shrinks and <stream>.1 is a new file. */
	before = pos;
	assert_int_equal(ftruncate(o, 5000), 0);
	assert_int_equal(rundir_rotate(&cf, &co, SVC_UID, 4096, 2), 0);
	free(rundir_read_from(&cf, &co, "stdout", 9, 100, &len, &pos, err,
	    sizeof(err)));
	assert_int_equal(pos.size, 0);
	assert_true(pos.rotated != 0 && pos.rotated != before.rotated);
	before = pos;
	assert_int_equal(ftruncate(o, 5000), 0);
	assert_int_equal(rundir_rotate(&cf, &co, SVC_UID, 4096, 2), 0);
	free(rundir_read_from(&cf, &co, "stdout", 0, 100, &len, &pos, err,
	    sizeof(err)));
	assert_true(pos.rotated != before.rotated);
	close(o);
	close(e);

	/* A link planted for the log: refused, never followed. */
	rpath(p, "log/stdout");
	assert_int_equal(unlink(p), 0);
	assert_int_equal(symlink("/etc/shadow", p), 0);
	assert_null(rundir_read_from(&cf, &co, "stdout", 0, 100, &len, &pos,
	    err, sizeof(err)));
	assert_contains(err, "symbolic link");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_open_creates,
		    unit_dir_setup, unit_dir_teardown),
		cmocka_unit_test_setup_teardown(test_open_refuses_links,
		    unit_dir_setup, unit_dir_teardown),
		cmocka_unit_test_setup_teardown(test_logs_refuse_links,
		    unit_dir_setup, unit_dir_teardown),
		cmocka_unit_test_setup_teardown(test_logs_refuse_fifo,
		    unit_dir_setup, unit_dir_teardown),
		cmocka_unit_test_setup_teardown(
		    test_logs_refuse_hardlink_and_owner, unit_dir_setup,
		    unit_dir_teardown),
		cmocka_unit_test_setup_teardown(test_rotate, unit_dir_setup,
		    unit_dir_teardown),
		cmocka_unit_test_setup_teardown(
		    test_rotate_leaves_planted_files, unit_dir_setup,
		    unit_dir_teardown),
		cmocka_unit_test_setup_teardown(test_rotate_log_dir_link,
		    unit_dir_setup, unit_dir_teardown),
		cmocka_unit_test_setup_teardown(test_tail, unit_dir_setup,
		    unit_dir_teardown),
		cmocka_unit_test_setup_teardown(test_read_from, unit_dir_setup,
		    unit_dir_teardown),
		cmocka_unit_test_setup_teardown(test_service_log_tail,
		    unit_dir_setup, unit_dir_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
