/*
 * prefix: creates the layout at start-up, proves it is writable, and
 * holds an flock on state/nodee.pid for the daemon's lifetime.  The lock
 * goes away with the process, even after kill -9, so a stale pid file
 * never blocks a start.
 */
#include <sys/file.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs.h"
#include "prefix.h"

static const struct {
	const char	*name;
	mode_t		 mode;
} prefix_dirs[] = {
	{ "software", 0755 },
	{ "runtime", 0755 },
	{ "state", 0700 },	/* token and database */
	{ "tmp", 0700 },
};

/* Makes a relative prefix absolute against the working directory. */
int
prefix_absolute(const char *in, char *out, size_t outlen, char *err,
    size_t errlen)
{
	char	cwd[PATH_MAX];
	int	n;

	/* "./var" is "var": the prefix shows in logs and the API. */
	while (in[0] == '.' && in[1] == '/')
		in += 2;
	if (in[0] == '/')
		n = snprintf(out, outlen, "%s", in);
	else if (getcwd(cwd, sizeof(cwd)) == NULL) {
		snprintf(err, errlen, "getcwd: %s", strerror(errno));
		return -1;
	} else
		n = snprintf(out, outlen, "%s/%s", cwd, in);
	if (n < 0 || (size_t)n >= outlen) {
		snprintf(err, errlen, "prefix %s: path too long", in);
		return -1;
	}
	/* "./var/" and "./var" are the same prefix. */
	while (n > 1 && out[n - 1] == '/')
		out[--n] = '\0';
	return 0;
}

/* "PREFIX/sub"; -1 if it does not fit. */
int
prefix_path(char *out, size_t outlen, const char *prefix, const char *sub)
{
	int	n;

	n = snprintf(out, outlen, "%s/%s", prefix, sub);
	return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

/*
 * Creates the prefix and its directories and checks that nodee can write
 * there, by creating and removing a file in each: a read-only file system
 * or a directory owned by someone else is found now, not at the first job.
 */
int
prefix_prepare(const char *prefix, char *err, size_t errlen)
{
	char	path[PATH_MAX], probe[PATH_MAX + 16];
	size_t	i;
	int	fd;

	if (fs_mkdirs(prefix, 0755) != 0) {
		snprintf(err, errlen, "cannot create prefix %s: %s", prefix,
		    strerror(errno));
		return -1;
	}
	for (i = 0; i < sizeof(prefix_dirs) / sizeof(prefix_dirs[0]); i++) {
		if (prefix_path(path, sizeof(path), prefix,
		    prefix_dirs[i].name) != 0) {
			snprintf(err, errlen, "prefix %s: path too long",
			    prefix);
			return -1;
		}
		if (mkdir(path, prefix_dirs[i].mode) != 0 && errno != EEXIST) {
			snprintf(err, errlen, "cannot create %s: %s", path,
			    strerror(errno));
			return -1;
		}
		/* An existing state/ or tmp/ is made private again. */
		if (prefix_dirs[i].mode == 0700 && chmod(path, 0700) != 0) {
			snprintf(err, errlen, "cannot make %s private: %s", path,
			    strerror(errno));
			return -1;
		}
		snprintf(probe, sizeof(probe), "%s/.nodee-probe", path);
		fd = open(probe, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW |
		    O_CLOEXEC, 0600);
		if (fd == -1) {
			snprintf(err, errlen, "cannot write in prefix %s (%s): "
			    "%s; choose a prefix this user can write", prefix,
			    path, strerror(errno));
			return -1;
		}
		close(fd);
		unlink(probe);
	}
	return 0;
}

/*
 * Takes the prefix lock, or fails naming the pid that holds it.  The fd is
 * left open on purpose: the lock lives as long as the process.
 */
int
prefix_lock(const char *prefix, char *err, size_t errlen)
{
	char	path[PATH_MAX], dir[PATH_MAX + 8], buf[32];
	ssize_t	n;
	int	fd;

	if (prefix_path(path, sizeof(path), prefix, "state/nodee.pid") != 0) {
		snprintf(err, errlen, "prefix %s: path too long", prefix);
		return -1;
	}
	/* state/ must exist to hold the lock; prefix_prepare does the rest. */
	snprintf(dir, sizeof(dir), "%s/state", prefix);
	if (fs_mkdirs(dir, 0700) != 0) {
		snprintf(err, errlen, "cannot create prefix %s: %s", prefix,
		    strerror(errno));
		return -1;
	}
	if ((fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC,
	    0644)) == -1) {
		snprintf(err, errlen, "cannot open lock file %s: %s", path,
		    strerror(errno));
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		n = read(fd, buf, sizeof(buf) - 1);
		buf[n > 0 ? n : 0] = '\0';
		buf[strcspn(buf, "\n")] = '\0';
		snprintf(err, errlen, "prefix %s is in use by another nodee "
		    "(pid %s, lock %s): stop it first or choose another prefix",
		    prefix, buf[0] ? buf : "unknown", path);
		close(fd);
		return -1;
	}
	n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) != 0 || pwrite(fd, buf, (size_t)n, 0) != n) {
		snprintf(err, errlen, "cannot write lock file %s: %s", path,
		    strerror(errno));
		close(fd);
		return -1;
	}
	return 0;
}
