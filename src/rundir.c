/*
 * rundir: the runtime directory as root may touch it.
 *
 * Root walks PREFIX/runtime/<cell>/<user>/<service>/<instance>/log one
 * component at a time, each opened from its parent's descriptor with
 * O_NOFOLLOW | O_DIRECTORY, and keeps the descriptors: whatever the
 * service renames or replaces afterwards, root acts on what it opened
 * and checked.  The parents are root's (the service cannot change them);
 * the instance directory and everything in it are the service's, so
 * there a link, a FIFO, a hard link or a file of somebody else is
 * refused with a message, never followed, written, truncated or chowned.
 *
 * The supervisor opens the directory and the logs before a start
 * (rundir_open, rundir_logs), a background thread rotates the logs
 * (rundir_rotate) and the API's threads read their ends (rundir_tail,
 * rundir_read_tail); nothing here keeps state between calls but the
 * memory of which warnings were logged already.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "rundir.h"

#define RUNDIR_COPY_BUF		65536
#define RUNDIR_WARNED_MAX	256	/* slots of the warned-once memory */

/* rundir_chain()'s answer when a component does not exist. */
#define RUNDIR_MISSING		1

static int	rundir_chain(const struct config *, const struct coord *, int,
		    struct rundir *, char *, size_t);
static int	rundir_sub(int, const char *, const char *, mode_t, char *,
		    size_t);
static int	rundir_give(int, uid_t, gid_t, int);
static int	rundir_log_aside(const struct rundir *, int, const char *, uid_t);
static int	rundir_log_open(const struct rundir *, const char *, uid_t,
		    gid_t, int, char *, size_t);
static int	rundir_check_file(int, const char *, const char *, uid_t, int,
		    struct stat *, char *, size_t);
static void	rundir_open_failed(int, const char *, const char *,
		    const char *, mode_t, int, char *, size_t);
static void	rundir_refused(const char *, const char *, mode_t, mode_t,
		    char *, size_t);
static const char	*rundir_kind(mode_t);
static int	rundir_stream_ok(const char *, char *, size_t);
static int	rundir_rotate_one(const struct rundir *, const struct coord *,
		    const char *, uid_t, size_t, unsigned);
static void	rundir_shift(int, const char *, unsigned);
static int	rundir_copy(int, int, const char *, const struct stat *, uid_t,
		    size_t, char *, size_t);
static void	rundir_warn(const char *, const char *, const char *);
static void	rundir_warned_clear(const char *, const char *);
static uint64_t	rundir_hash(uint64_t, const char *);
static size_t	rundir_utf8_len(const unsigned char *, size_t);
static char	*rundir_read(const struct config *, const struct coord *,
		    const char *, off_t, size_t, size_t *, struct rundir_pos *,
		    char *, size_t);

/*
 * A direct-mapped memory of the last warning per coordinate and stream:
 * a service that keeps log/stderr a symlink would otherwise add a line to
 * nodee's log at every check.  A collision only costs a repeated line.
 */
static struct {
	uint64_t	key;
	uint64_t	msg;
}			 rundir_warned[RUNDIR_WARNED_MAX];
static pthread_mutex_t	 rundir_warned_mtx = PTHREAD_MUTEX_INITIALIZER;

int
rundir_open(const struct config *cf, const struct coord *c, uid_t uid,
    gid_t gid, int chown_ids, struct rundir *rd, char *err, size_t errlen)
{
	const char	*what = NULL;

	if (rundir_chain(cf, c, 1, rd, err, errlen) != 0)
		return -1;
	/*
	 * Even a directory that was there is given over again: the uid of
	 * a service may have changed.  The instance directory sits in one
	 * of root's, so it is the one nodee made.  log/ may be one the
	 * service moved in, but renaming a directory needs write permission
	 * on it, so only one the service could write already; and it was
	 * opened without following a link.
	 */
	if (rundir_give(rd->dirfd, uid, gid, chown_ids) != 0)
		what = "";
	else if (rundir_give(rd->logfd, uid, gid, chown_ids) != 0)
		what = "/log";
	if (what != NULL) {
		snprintf(err, errlen, "cannot give %s%s to uid %u with mode "
		    "0750: %s", rd->path, what, (unsigned)uid,
		    strerror(errno));
		rundir_close(rd);
		return -1;
	}
	return 0;
}

void
rundir_close(struct rundir *rd)
{
	if (rd->dirfd != -1)
		close(rd->dirfd);
	if (rd->logfd != -1)
		close(rd->logfd);
	rd->dirfd = rd->logfd = -1;
}

int
rundir_logs(const struct rundir *rd, uid_t uid, gid_t gid, int chown_ids,
    int *outfd, int *errfd, char *err, size_t errlen)
{
	*outfd = *errfd = -1;
	if ((*outfd = rundir_log_open(rd, "stdout", uid, gid, chown_ids, err,
	    errlen)) == -1)
		return -1;
	if ((*errfd = rundir_log_open(rd, "stderr", uid, gid, chown_ids, err,
	    errlen)) == -1) {
		close(*outfd);
		*outfd = -1;
		return -1;
	}
	return 0;
}

int
rundir_rotate(const struct config *cf, const struct coord *c, uid_t uid,
    size_t max, unsigned keep)
{
	static const char *const streams[] = { "stdout", "stderr" };
	struct rundir	rd;
	char		err[512];
	size_t		i;
	int		rc;

	if ((rc = rundir_chain(cf, c, 0, &rd, err, sizeof(err))) != 0) {
		if (rc == RUNDIR_MISSING)
			return 0;
		rundir_warn(c->name, "", err);
		return -1;
	}
	rundir_warned_clear(c->name, "");
	rc = 0;
	for (i = 0; i < sizeof(streams) / sizeof(streams[0]); i++)
		if (rundir_rotate_one(&rd, c, streams[i], uid, max, keep) != 0)
			rc = -1;
	rundir_close(&rd);
	return rc;
}

char *
rundir_read_tail(const struct config *cf, const struct coord *c,
    const char *stream, size_t max, size_t *lenp, char *err, size_t errlen)
{
	return rundir_read(cf, c, stream, -1, max, lenp, NULL, err, errlen);
}

char *
rundir_read_from(const struct config *cf, const struct coord *c,
    const char *stream, off_t from, size_t max, size_t *lenp,
    struct rundir_pos *pos, char *err, size_t errlen)
{
	return rundir_read(cf, c, stream, from, max, lenp, pos, err, errlen);
}

/*
 * The two above: max bytes from offset from, or the last max bytes when
 * from is negative; pos (may be NULL) gets the file's size and the
 * identity of <stream>.1, which changes at each rotation.
 */
static char *
rundir_read(const struct config *cf, const struct coord *c,
    const char *stream, off_t from, size_t max, size_t *lenp,
    struct rundir_pos *pos, char *err, size_t errlen)
{
	struct rundir	 rd;
	struct stat	 dst, st;
	char		 shown[16], one[32], *buf = NULL;
	size_t		 want, got = 0;
	ssize_t		 n;
	off_t		 off;
	int		 fd = -1, rc;

	*lenp = 0;
	if (pos != NULL)
		memset(pos, 0, sizeof(*pos));
	if (rundir_stream_ok(stream, err, errlen) != 0)
		return NULL;
	if ((rc = rundir_chain(cf, c, 0, &rd, err, errlen)) != 0)
		goto empty;
	snprintf(shown, sizeof(shown), "log/%s", stream);
	if ((fd = openat(rd.logfd, stream, O_RDONLY | O_NOFOLLOW | O_NONBLOCK |
	    O_NOCTTY | O_CLOEXEC)) == -1) {
		rc = errno == ENOENT ? RUNDIR_MISSING : -1;
		if (rc == -1)
			rundir_open_failed(rd.logfd, stream, shown, rd.path,
			    S_IFREG, errno, err, errlen);
		goto out;
	}
	/*
	 * Only the service's own file: a hard link it made to a file of
	 * root's, or one it moved in, must not be read out through the API.
	 */
	if (fstat(rd.dirfd, &dst) != 0) {
		snprintf(err, errlen, "cannot read %s: %s", rd.path,
		    strerror(errno));
		rc = -1;
		goto out;
	}
	if ((rc = rundir_check_file(fd, shown, rd.path, dst.st_uid, 0, &st,
	    err, errlen)) != 0)
		goto out;
	if (pos != NULL) {
		struct statx	ox;

		pos->size = st.st_size;
		snprintf(one, sizeof(one), "%s.1", stream);
		/*
		 * Only its identity, inode and birth (the service can change
		 * a file's other times), and size; never opened, so a link
		 * is harmless.
		 */
		if (statx(rd.logfd, one, AT_SYMLINK_NOFOLLOW, STATX_INO |
		    STATX_BTIME | STATX_SIZE, &ox) == 0) {
			pos->rotated = ox.stx_ino ^ ((ox.stx_mask &
			    STATX_BTIME) ? (uint64_t)ox.stx_btime.tv_nsec <<
			    32 ^ (uint64_t)ox.stx_btime.tv_sec : 0);
			pos->rotated_size = (off_t)ox.stx_size;
		}
	}
	if (from < 0) {
		want = (size_t)st.st_size > max ? max : (size_t)st.st_size;
		off = st.st_size - (off_t)want;
	} else {
		off = from;
		want = st.st_size <= from ? 0 : (size_t)(st.st_size - from) >
		    max ? max : (size_t)(st.st_size - from);
	}
	if ((buf = malloc(want + 1)) == NULL) {
		snprintf(err, errlen, "out of memory");
		rc = -1;
		goto out;
	}
	/* The file may shrink meanwhile (rotation): EOF ends it early. */
	while (got < want && (n = pread(fd, buf + got, want - got,
	    off + (off_t)got)) > 0)
		got += (size_t)n;
	buf[got] = '\0';
	*lenp = got;
 out:
	if (fd != -1)
		close(fd);
	rundir_close(&rd);
 empty:
	if (rc == RUNDIR_MISSING && (buf = strdup("")) == NULL)
		snprintf(err, errlen, "out of memory");
	return buf;
}

char *
rundir_tail(const struct config *cf, const struct coord *c,
    const char *stream, size_t max)
{
	char	 err[512], *buf, *nl, *p;
	size_t	 len;

	/* One byte more tells whether the file is longer than max. */
	if (max == SIZE_MAX || (buf = rundir_read_tail(cf, c, stream,
	    max + 1, &len, err, sizeof(err))) == NULL)
		return NULL;
	p = buf;
	if (len > max) {
		/* The first line is cut: the next one, else a character. */
		if ((nl = memchr(buf, '\n', len)) != NULL && nl + 1 < buf + len)
			p = nl + 1;
		else
			for (p = buf + 1; p < buf + 4 && p < buf + len &&
			    ((unsigned char)*p & 0xc0) == 0x80; p++)
				continue;
	}
	len -= (size_t)(p - buf);
	memmove(buf, p, len);
	rundir_utf8_clean(buf, len);
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
		len--;
	buf[len] = '\0';
	if (len == 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

/*
 * Opens (creating if create) every component from the prefix down to
 * log/, into rd.  Returns 0, RUNDIR_MISSING when not create and one does
 * not exist, or -1 with err.  rd is closed unless 0 is returned.
 */
static int
rundir_chain(const struct config *cf, const struct coord *c, int create,
    struct rundir *rd, char *err, size_t errlen)
{
	const char	*names[] = { "runtime", c->cell, c->user, c->service,
			    c->instance, "log" };
	char		 where[PATH_MAX];
	size_t		 i, n;
	int		 fd, next, e;

	rd->dirfd = rd->logfd = -1;
	if (coord_runtime_dir(cf, c, rd->path, sizeof(rd->path)) != 0) {
		snprintf(err, errlen, "the runtime directory of %s: path too "
		    "long", c->name);
		return -1;
	}
	if ((fd = open(cf->prefix, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) ==
	    -1) {
		snprintf(err, errlen, "cannot open the prefix %s: %s",
		    cf->prefix, strerror(errno));
		return !create && errno == ENOENT ? RUNDIR_MISSING : -1;
	}
	/* A prefix of rd->path, which fits. */
	n = (size_t)snprintf(where, sizeof(where), "%s", cf->prefix);
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		next = rundir_sub(fd, where, names[i], !create ? 0 :
		    i < 4 ? 0755 : 0750, err, errlen);
		e = errno;
		if (fd != rd->dirfd)
			close(fd);
		if (next == -1) {
			rundir_close(rd);
			return !create && e == ENOENT ? RUNDIR_MISSING : -1;
		}
		if (i == 4)
			rd->dirfd = next;
		fd = next;
		n += (size_t)snprintf(where + n, sizeof(where) - n, "/%s",
		    names[i]);
	}
	rd->logfd = fd;
	return 0;
}

/*
 * The directory name in pfd (where, for messages), made with mode first
 * unless mode is 0, opened without following a link.  Returns its
 * descriptor, or -1 with err and errno.
 */
static int
rundir_sub(int pfd, const char *where, const char *name, mode_t mode,
    char *err, size_t errlen)
{
	char	shown[COORD_LABEL_MAX + 2];
	int	fd, made = 0, e;

	snprintf(shown, sizeof(shown), "%s/", name);
	if (mode != 0) {
		if (mkdirat(pfd, name, mode) == 0)
			made = 1;
		else if (errno != EEXIST) {
			e = errno;
			snprintf(err, errlen, "cannot create %s in %s: %s",
			    shown, where, strerror(e));
			errno = e;
			return -1;
		}
	}
	if ((fd = openat(pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC)) == -1) {
		e = errno;
		rundir_open_failed(pfd, name, shown, where, S_IFDIR, e, err,
		    errlen);
		errno = e;
		return -1;
	}
	/* The umask may have taken bits away; an old directory is kept. */
	if (made && fchmod(fd, mode) != 0)
		log_warn("rundir", "cannot chmod %s/%s: %s", where, name,
		    strerror(errno));
	return fd;
}

/* 0750, and uid:gid when chown_ids, on a directory we opened ourselves. */
static int
rundir_give(int fd, uid_t uid, gid_t gid, int chown_ids)
{
	if (chown_ids && fchown(fd, uid, gid) != 0)
		return -1;
	return fchmod(fd, 0750);
}

/*
 * log/<name> for appending.  O_CREAT | O_EXCL first, so that a file
 * still owned by root is known to be the one made now, not one of root's
 * the service moved in; the service may remove or recreate the name
 * between the two opens, so a few rounds.
 */
static int
rundir_log_open(const struct rundir *rd, const char *name, uid_t uid,
    gid_t gid, int chown_ids, char *err, size_t errlen)
{
	const int	flags = O_WRONLY | O_APPEND | O_NOFOLLOW | O_NONBLOCK |
			    O_NOCTTY | O_CLOEXEC;
	struct stat	st;
	char		shown[16];
	int		fd = -1, made = 0, tries, fl;

	snprintf(shown, sizeof(shown), "log/%s", name);
	for (tries = 0; fd == -1 && tries < 4; tries++) {
		if ((fd = openat(rd->logfd, name, flags | O_CREAT | O_EXCL,
		    0640)) != -1) {
			made = 1;
			break;
		}
		if (errno != EEXIST)
			break;
		if ((fd = openat(rd->logfd, name, flags)) == -1 &&
		    errno != ENOENT)
			break;
		if (fd != -1 && rundir_log_aside(rd, fd, name, chown_ids ?
		    uid : geteuid()) == 1) {
			close(fd);
			fd = -1;
		}
	}
	if (fd == -1) {
		rundir_open_failed(rd->logfd, name, shown, rd->path, S_IFREG,
		    errno, err, errlen);
		return -1;
	}
	if (rundir_check_file(fd, shown, rd->path, chown_ids ? uid :
	    geteuid(), made, &st, err, errlen) != 0) {
		close(fd);
		return -1;
	}
	/* Non-blocking was for the open; the service's writes may block. */
	if ((fl = fcntl(fd, F_GETFL)) == -1 ||
	    fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) == -1 ||
	    (chown_ids && fchown(fd, uid, gid) != 0)) {
		snprintf(err, errlen, "cannot give %s in %s to uid %u: %s",
		    shown, rd->path, (unsigned)uid, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * The log of an earlier uid of the service (its spec named another
 * "user", or a start that could not be recorded got a uid it then gave
 * back): a regular file with one link, so only a name in the service's
 * own log/, is renamed to <name>.uid<N> within log/ (renameat follows
 * nothing) and a fresh one is made.  Returns 1 if moved aside.
 */
static int
rundir_log_aside(const struct rundir *rd, int fd, const char *name,
    uid_t owner)
{
	struct stat	st;
	char		aside[64];

	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1 ||
	    st.st_uid == owner || st.st_uid == geteuid())
		return 0;
	snprintf(aside, sizeof(aside), "%s.uid%u", name, (unsigned)st.st_uid);
	if (renameat(rd->logfd, name, rd->logfd, aside) != 0)
		return 0;
	log_info("rundir", "%s: log/%s of uid %u kept as log/%s", rd->path,
	    name, (unsigned)st.st_uid, aside);
	return 1;
}

/*
 * A file root may write, read or chown for a service: regular, one link
 * (another name could be a file the service must not have), owned by
 * owner, or by us if made is set.  Returns 0 with *st, or -1 with err.
 */
static int
rundir_check_file(int fd, const char *shown, const char *where, uid_t owner,
    int made, struct stat *st, char *err, size_t errlen)
{
	if (fstat(fd, st) != 0) {
		snprintf(err, errlen, "cannot stat %s in %s: %s", shown, where,
		    strerror(errno));
		return -1;
	}
	if (!S_ISREG(st->st_mode)) {
		rundir_refused(shown, where, st->st_mode, S_IFREG, err,
		    errlen);
		return -1;
	}
	if (st->st_nlink != 1) {
		snprintf(err, errlen, "%s in %s has %lu hard links, not 1: "
		    "refusing to use it", shown, where,
		    (unsigned long)st->st_nlink);
		return -1;
	}
	if (st->st_uid != owner && !(made && st->st_uid == geteuid())) {
		snprintf(err, errlen, "%s in %s belongs to uid %u, not the "
		    "service's uid %u: refusing to use it (remove it if it is "
		    "an old log)", shown, where, (unsigned)st->st_uid,
		    (unsigned)owner);
		return -1;
	}
	return 0;
}

/*
 * err for an openat(pfd, name) that failed with e: what is there
 * instead of the kind wanted (S_IFDIR, S_IFREG), or the error.
 */
static void
rundir_open_failed(int pfd, const char *name, const char *shown,
    const char *where, mode_t want, int e, char *err, size_t errlen)
{
	struct stat	st;

	if (e != ENOENT && fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    (st.st_mode & S_IFMT) != want)
		rundir_refused(shown, where, st.st_mode, want, err, errlen);
	else
		snprintf(err, errlen, "cannot open %s in %s: %s", shown, where,
		    strerror(e));
}

/* "log/ in DIR is a symbolic link, not a directory: refusing to follow it" */
static void
rundir_refused(const char *shown, const char *where, mode_t is, mode_t want,
    char *err, size_t errlen)
{
	snprintf(err, errlen, "%s in %s is %s, not %s: refusing to %s it",
	    shown, where, rundir_kind(is), rundir_kind(want),
	    S_ISLNK(is) ? "follow" : "use");
}

static const char *
rundir_kind(mode_t m)
{
	switch (m & S_IFMT) {
	case S_IFREG:
		return "a regular file";
	case S_IFDIR:
		return "a directory";
	case S_IFLNK:
		return "a symbolic link";
	case S_IFIFO:
		return "a FIFO";
	case S_IFSOCK:
		return "a socket";
	case S_IFCHR:
	case S_IFBLK:
		return "a device";
	default:
		return "of an unknown kind";
	}
}

/* A stream is a name in log/, never a path. */
static int
rundir_stream_ok(const char *stream, char *err, size_t errlen)
{
	if (strcmp(stream, "stdout") == 0 || strcmp(stream, "stderr") == 0)
		return 0;
	snprintf(err, errlen, "stream: must be stdout or stderr");
	return -1;
}

/* One stream of rundir_rotate(). */
static int
rundir_rotate_one(const struct rundir *rd, const struct coord *c,
    const char *stream, uid_t uid, size_t max, unsigned keep)
{
	struct stat	st;
	char		shown[16], err[512];
	int		fd, rc = -1;

	snprintf(shown, sizeof(shown), "log/%s", stream);
	/* Read-write for ftruncate(); a FIFO does not block opened so. */
	if ((fd = openat(rd->logfd, stream, O_RDWR | O_NOFOLLOW | O_NONBLOCK |
	    O_NOCTTY | O_CLOEXEC)) == -1) {
		if (errno == ENOENT)
			return 0;
		rundir_open_failed(rd->logfd, stream, shown, rd->path,
		    S_IFREG, errno, err, sizeof(err));
		rundir_warn(c->name, stream, err);
		return -1;
	}
	if (rundir_check_file(fd, shown, rd->path, uid, 0, &st, err,
	    sizeof(err)) != 0) {
		rundir_warn(c->name, stream, err);
		close(fd);
		return -1;
	}
	rundir_warned_clear(c->name, stream);
	if ((size_t)st.st_size < max) {
		close(fd);
		return 0;
	}
	rundir_shift(rd->logfd, stream, keep);
	/* Without a copy the old lines would be lost: keep the file. */
	if (keep > 0 && rundir_copy(rd->logfd, fd, stream, &st, uid, max,
	    err, sizeof(err)) != 0)
		log_warn("rundir", "not rotating %s in %s: %s", shown,
		    rd->path, err);
	else if (ftruncate(fd, 0) != 0)
		log_warn("rundir", "cannot truncate %s in %s: %s", shown,
		    rd->path, strerror(errno));
	else
		rc = 0;
	close(fd);
	return rc;
}

/* <stream>.(keep-1) -> <stream>.keep, ..., <stream>.1 -> <stream>.2. */
static void
rundir_shift(int logfd, const char *stream, unsigned keep)
{
	char		from[32], to[32];
	unsigned	g;

	for (g = keep; g > 1; g--) {
		snprintf(from, sizeof(from), "%s.%u", stream, g - 1);
		snprintf(to, sizeof(to), "%s.%u", stream, g);
		/* Names in logfd: a link is renamed, never followed. */
		if (renameat(logfd, from, logfd, to) != 0 && errno != ENOENT)
			log_warn("rundir", "cannot rename log/%s to %s: %s",
			    from, to, strerror(errno));
	}
}

/*
 * Copies the live file fd (checked: st) into a new <stream>.1 in logfd,
 * given to uid.  Up to what it held plus max: a service writing faster
 * than the copy must not keep it going for ever.
 */
static int
rundir_copy(int logfd, int fd, const char *stream, const struct stat *st,
    uid_t uid, size_t max, char *err, size_t errlen)
{
	char	 one[32], *buf;
	size_t	 limit = (size_t)st->st_size + max, done = 0;
	ssize_t	 n = 0;
	int	 out, rc = 0;

	snprintf(one, sizeof(one), "%s.1", stream);
	if (unlinkat(logfd, one, 0) != 0 && errno != ENOENT) {
		snprintf(err, errlen, "cannot remove log/%s: %s", one,
		    strerror(errno));
		return -1;
	}
	if ((out = openat(logfd, one, O_WRONLY | O_CREAT | O_EXCL |
	    O_NOFOLLOW | O_NOCTTY | O_CLOEXEC, 0640)) == -1) {
		snprintf(err, errlen, "cannot create log/%s: %s", one,
		    strerror(errno));
		return -1;
	}
	if ((buf = malloc(RUNDIR_COPY_BUF)) == NULL ||
	    (geteuid() == 0 && fchown(out, uid, st->st_gid) != 0)) {
		snprintf(err, errlen, "log/%s: %s", one, buf == NULL ?
		    "out of memory" : strerror(errno));
		free(buf);
		close(out);
		return -1;
	}
	while (done < limit && (n = read(fd, buf, RUNDIR_COPY_BUF)) > 0) {
		if (write(out, buf, (size_t)n) != n) {
			n = -1;
			break;
		}
		done += (size_t)n;
	}
	if (n < 0 || close(out) != 0) {
		snprintf(err, errlen, "cannot copy to log/%s: %s", one,
		    strerror(errno));
		rc = -1;
	}
	free(buf);
	return rc;
}

/* log_warn() once for the same coordinate, stream and message. */
static void
rundir_warn(const char *coord, const char *stream, const char *msg)
{
	uint64_t	key = rundir_hash(rundir_hash(0, coord), stream);
	uint64_t	h = rundir_hash(key, msg);
	size_t		slot = (size_t)(key % RUNDIR_WARNED_MAX);
	int		seen;

	pthread_mutex_lock(&rundir_warned_mtx);
	seen = rundir_warned[slot].key == key && rundir_warned[slot].msg == h;
	rundir_warned[slot].key = key;
	rundir_warned[slot].msg = h;
	pthread_mutex_unlock(&rundir_warned_mtx);
	if (!seen)
		log_warn("rundir", "%s: leaving the logs alone: %s", coord,
		    msg);
}

/* The stream is fine again: a new fault is worth a new warning. */
static void
rundir_warned_clear(const char *coord, const char *stream)
{
	uint64_t	key = rundir_hash(rundir_hash(0, coord), stream);
	size_t		slot = (size_t)(key % RUNDIR_WARNED_MAX);

	pthread_mutex_lock(&rundir_warned_mtx);
	if (rundir_warned[slot].key == key)
		rundir_warned[slot].key = rundir_warned[slot].msg = 0;
	pthread_mutex_unlock(&rundir_warned_mtx);
}

/* FNV-1a, continued from h (0 starts one), with a separator. */
static uint64_t
rundir_hash(uint64_t h, const char *s)
{
	if (h == 0)
		h = 14695981039346656037ULL;
	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return (h ^ 0xff) * 1099511628211ULL;
}

/* The length of the valid UTF-8 sequence at s, or 0 if it is not one. */
static size_t
rundir_utf8_len(const unsigned char *s, size_t n)
{
	unsigned char	lo = 0x80, hi = 0xbf;
	size_t		len, i;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		len = 3;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4;
	else
		return 0;
	/* No overlong forms, no surrogates, nothing above U+10FFFF. */
	if (s[0] == 0xe0)
		lo = 0xa0;
	else if (s[0] == 0xed)
		hi = 0x9f;
	else if (s[0] == 0xf0)
		lo = 0x90;
	else if (s[0] == 0xf4)
		hi = 0x8f;
	if (n < len || s[1] < lo || s[1] > hi)
		return 0;
	for (i = 2; i < len; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	return len;
}

/*
 * In place: each byte that does not start a valid UTF-8 sequence becomes
 * '?', and so does a NUL, which would end the string early.
 */
void
rundir_utf8_clean(char *buf, size_t len)
{
	unsigned char	*s = (unsigned char *)buf;
	size_t		 i = 0, n;

	while (i < len) {
		if (s[i] == '\0' || (n = rundir_utf8_len(s + i, len - i)) == 0) {
			s[i++] = '?';
			continue;
		}
		i += n;
	}
}
