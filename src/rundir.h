/*
 * rundir: how root touches a service's runtime directory,
 * PREFIX/runtime/<cell>/<user>/<service>/<instance>, and its log/.
 *
 * The instance directory belongs to the service's uid, which can put
 * anything there: a symlink to /etc in place of log/, a FIFO or a hard
 * link to a file of root's in place of log/stderr.  So nothing here
 * resolves a path: every component is opened from its parent's
 * descriptor with O_NOFOLLOW, a file is checked with fstat() on the
 * descriptor that was opened, and chown, chmod and truncate act on that
 * descriptor.  A link the service planted is refused, never followed;
 * nothing outside the runtime directory is ever changed.
 */
#ifndef NODEE_RUNDIR_H
#define NODEE_RUNDIR_H

#include <sys/types.h>

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "coord.h"

/* An open instance directory; -1 in a descriptor that is not open. */
struct rundir {
	int	dirfd;		/* the instance directory (O_RDONLY) */
	int	logfd;		/* its log/ (O_RDONLY) */
	char	path[PATH_MAX];	/* its path, for messages and $HOME */
};

/*
 * Opens the instance directory and its log/, creating what is missing:
 * the parents (runtime/, <cell>/, <user>/, <service>/) owned by nodee,
 * 0755; the instance directory and log/ mode 0750 and, when chown_ids
 * (nodee is root), given to uid:gid whether they were made now or not.
 * The prefix is trusted and opened by path; every component below it is
 * opened from its parent's descriptor with O_NOFOLLOW | O_DIRECTORY.  A
 * component that is a link or not a directory fails, e.g. "log/ in
 * /p/runtime/c/u/s/1 is a symbolic link, not a directory: refusing to
 * follow it".  Returns 0, or -1 with err and rd closed.
 */
int	rundir_open(const struct config *, const struct coord *, uid_t, gid_t,
	    int, struct rundir *, char *, size_t);
void	rundir_close(struct rundir *);

/*
 * Opens log/stdout and log/stderr of rd for appending (created 0640 if
 * missing), as the service's stdout and stderr: blocking, close-on-exec
 * (dup2 clears that in the child).  Each must be a regular file with one
 * link, owned by uid or created just now, and is given to uid:gid when
 * chown_ids.  A link, a FIFO (opened without blocking, so it cannot hang
 * the caller), a hard link or a file of another uid fails with err naming
 * the file and saying why.  Returns 0 with *outfd and *errfd, which the
 * caller closes, or -1 with err and neither open.
 */
int	rundir_logs(const struct rundir *, uid_t, gid_t, int, int *, int *,
	    char *, size_t);

/*
 * Copy-truncate rotation of one service's log/stdout and log/stderr:
 * a stream of max bytes or more is copied to a new <stream>.1 (given to
 * uid when nodee is root) after <stream>.1 .. <stream>.(keep-1) moved
 * up one (at most keep old files; keep 0 keeps none), then truncated
 * through its descriptor, so the service's O_APPEND descriptor goes on
 * writing at the start.  Creates nothing but <stream>.1; a directory that
 * does not exist is not an error.  A live file that is a link, not a
 * regular file, has more than one link or is not owned by uid is left
 * alone with a warning (logged once for the same file) and the call
 * returns -1; otherwise 0.  It copies up to max bytes and more: call it
 * from a background thread, never the supervisor's.
 */
int	rundir_rotate(const struct config *, const struct coord *, uid_t,
	    size_t, unsigned);

/*
 * The last at most max bytes of log/<stream> ("stdout", "stderr"), as
 * they are, read through descriptors without following a link and only
 * from a regular file with one link, owned by the instance directory's
 * owner.  Returns a malloc'ed string (NUL-terminated; *lenp bytes,
 * which may hold NULs) the caller frees: "" when the directory or the
 * file does not exist, NULL with err when it cannot or must not be read.
 */
char	*rundir_read_tail(const struct config *, const struct coord *,
	    const char *, size_t, size_t *, char *, size_t);

/*
 * Where a log stands: its size, and the identity (0 when there is none)
 * and size of <stream>.1, which a rotation makes anew.
 */
struct rundir_pos {
	off_t		size;
	uint64_t	rotated;
	off_t		rotated_size;	/* of <stream>.1 */
};

/*
 * Like rundir_read_tail, but at most max bytes from offset from (none
 * when the file is shorter), and where the log stands in pos.
 */
char	*rundir_read_from(const struct config *, const struct coord *,
	    const char *, off_t, size_t, size_t *, struct rundir_pos *, char *,
	    size_t);

/* Replaces, in place, each byte that is not valid UTF-8 or a NUL by '?'. */
void	rundir_utf8_clean(char *, size_t);

/*
 * The same last at most max bytes made fit for a message: from the
 * first line start in them (unless they are the whole file), bytes that
 * are not valid UTF-8 replaced by '?', trailing newlines trimmed.
 * Returns a malloc'ed string the caller frees, or NULL when there is
 * nothing to show or the log cannot be read.
 */
char	*rundir_tail(const struct config *, const struct coord *,
	    const char *, size_t);

#endif
