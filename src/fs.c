/*
 * fs: file-system helpers for the jobs and the supervisor.
 *
 * Removal walks descriptors, never paths: a tree being removed may belong
 * to a service (a purged runtime directory, an old directory a prepare job
 * moved aside), and a service process still running could swap one of its
 * directories for a symlink while root walks it.  Each directory is
 * opened with O_NOFOLLOW from its parent's descriptor and emptied through
 * that descriptor (unlinkat), so a swap can at worst leave something
 * behind, never reach outside.  An installed artifact is read-only
 * (directories 0555): a directory nodee's own user owns gets owner write
 * permission, on its descriptor, before it is emptied.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "fs.h"

/*
 * Two descriptors per level; a directory deeper than this is moved up to
 * the top of the tree being removed and emptied from there, so a service
 * nesting directories thousands deep costs passes, not descriptors.
 */
#define FS_DEPTH_MAX	64
#define FS_PASSES_MAX	10000

static int	fs_rm_at(int, int, int, unsigned *);
static int	fs_move_up(int, int, const char *, unsigned *);
static int	fs_chown_one(const char *, const struct stat *, int,
		    struct FTW *);

/* nftw() passes no argument to its callback; one walk per thread. */
static _Thread_local uid_t	fs_chown_uid;
static _Thread_local gid_t	fs_chown_gid;

/* rm -rf; a path that does not exist is not an error. */
int
fs_rmtree(const char *path)
{
	struct stat	st;
	unsigned	moved = 0;
	int		fd, rc;

	if (lstat(path, &st) != 0)
		return errno == ENOENT ? 0 : -1;
	if (!S_ISDIR(st.st_mode))
		return unlink(path) != 0 && errno != ENOENT ? -1 : 0;
	if ((fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC)) == -1)
		return errno == ENOENT ? 0 : -1;
	if (fstat(fd, &st) == 0 && st.st_uid == geteuid() &&
	    (st.st_mode & 0700) != 0700)
		(void)fchmod(fd, (st.st_mode & 07777) | 0700);
	rc = fs_rm_at(fd, fd, 0, &moved);
	close(fd);
	if (rc != 0)
		return -1;
	return rmdir(path) != 0 && errno != ENOENT ? -1 : 0;
}

/* Empties the directory dfd, of the tree whose top is topfd. */
static int
fs_rm_at(int topfd, int dfd, int depth, unsigned *moved)
{
	DIR		*d;
	struct dirent	*de;
	struct stat	 st;
	unsigned	 moved_last = *moved;
	int		 fd, dupfd, rc = 0, pass, seen = 1;

	/*
	 * Entries removed while reading may hide others, and the top takes
	 * directories moved up from below: read again until empty.
	 */
	for (pass = 0; seen && pass < FS_PASSES_MAX; pass++) {
		unsigned	before = *moved;

		/*
		 * Three reads, and at the top as many more as directories
		 * keep being moved up; not forever for a process that keeps
		 * adding entries.
		 */
		if (pass >= 3 && (depth > 0 || *moved == moved_last))
			break;
		moved_last = before;
		seen = 0;
		if ((dupfd = dup(dfd)) == -1)
			return -1;
		if ((d = fdopendir(dupfd)) == NULL) {
			close(dupfd);
			return -1;
		}
		rewinddir(d);
		rc = 0;
		while ((de = readdir(d)) != NULL) {
			if (strcmp(de->d_name, ".") == 0 ||
			    strcmp(de->d_name, "..") == 0)
				continue;
			seen = 1;
			if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) !=
			    0) {
				if (errno != ENOENT)
					rc = -1;
				continue;
			}
			if (!S_ISDIR(st.st_mode)) {
				if (unlinkat(dfd, de->d_name, 0) != 0 &&
				    errno != ENOENT)
					rc = -1;
				continue;
			}
			if (depth + 1 >= FS_DEPTH_MAX) {
				if (fs_move_up(topfd, dfd, de->d_name, moved) !=
				    0)
					rc = -1;
				continue;
			}
			fd = openat(dfd, de->d_name, O_RDONLY | O_DIRECTORY |
			    O_NOFOLLOW | O_CLOEXEC);
			if (fd == -1) {
				/* Swapped for a link or a file: that goes. */
				if ((errno == ELOOP || errno == ENOTDIR) &&
				    unlinkat(dfd, de->d_name, 0) == 0)
					continue;
				if (errno != ENOENT)
					rc = -1;
				continue;
			}
			if (fstat(fd, &st) == 0 && st.st_uid == geteuid() &&
			    (st.st_mode & 0700) != 0700)
				(void)fchmod(fd, (st.st_mode & 07777) | 0700);
			if (fs_rm_at(topfd, fd, depth + 1, moved) != 0)
				rc = -1;
			close(fd);
			if (unlinkat(dfd, de->d_name, AT_REMOVEDIR) != 0 &&
			    errno != ENOENT)
				rc = -1;
		}
		closedir(d);
		if (rc != 0)
			return -1;
	}
	return 0;
}

/*
 * Moves the directory name of dfd up to the top of the tree, under a
 * name of its own (.rm-<n>), to be emptied from there on a later pass.
 * One that went meanwhile is not an error.
 */
static int
fs_move_up(int topfd, int dfd, const char *name, unsigned *moved)
{
	char	up[32];

	for (;;) {
		snprintf(up, sizeof(up), ".rm-%u", (*moved)++);
		if (renameat2(dfd, name, topfd, up, RENAME_NOREPLACE) == 0)
			return 0;
		if (errno != EEXIST)
			return errno == ENOENT ? 0 : -1;
	}
}

/* mkdir -p; an existing directory is fine, anything else there is not. */
int
fs_mkdirs(const char *path, mode_t mode)
{
	char		buf[PATH_MAX], *p;
	struct stat	st;

	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	for (p = buf + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, mode) != 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(buf, mode) != 0 && errno != EEXIST)
		return -1;
	if (stat(buf, &st) != 0)
		return -1;
	if (!S_ISDIR(st.st_mode)) {
		errno = ENOTDIR;
		return -1;
	}
	return 0;
}

int
fs_fsync_dir(const char *path)
{
	int	fd, rc;

	if ((fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

/* fsync the directory that holds path, after a rename into or out of it. */
int
fs_parent_fsync(const char *path)
{
	char	buf[PATH_MAX], *slash;

	snprintf(buf, sizeof(buf), "%s", path);
	if ((slash = strrchr(buf, '/')) == NULL)
		return fs_fsync_dir(".");
	if (slash == buf)
		slash[1] = '\0';
	else
		*slash = '\0';
	return fs_fsync_dir(buf);
}

int
fs_exists(const char *path)
{
	struct stat	st;

	return lstat(path, &st) == 0;
}

/* chown -hR: links themselves, never what they point to. */
int
fs_chown_tree(const char *path, uid_t uid, gid_t gid)
{
	fs_chown_uid = uid;
	fs_chown_gid = gid;
	return nftw(path, fs_chown_one, 64, FTW_PHYS);
}

static int
fs_chown_one(const char *path, const struct stat *st, int type,
    struct FTW *f)
{
	(void)st;
	(void)type;
	(void)f;
	return lchown(path, fs_chown_uid, fs_chown_gid);
}


/*
 * The one rule for a relative path (the spec's command and drain command,
 * prepare steps, snapshot paths, the command spawn runs): relative, at
 * most FS_RELPATH_MAX bytes, no control characters, no empty, "." or
 * ".." component, so it can never leave the directory it is taken in.
 * flags: FS_REL_DIR allows a trailing '/' (a directory), FS_REL_DOT "."
 * alone (the directory itself).  err names the field and the fault.
 */
int
fs_relpath_ok(const char *field, const char *p, int flags, char *err,
    size_t errlen)
{
	int		 dot_ok = (flags & FS_REL_DOT) != 0;
	int		 dir_ok = (flags & FS_REL_DIR) != 0;
	const char	*s, *e;
	size_t		 i, n;

	if (p == NULL || p[0] == '\0' || strlen(p) > FS_RELPATH_MAX) {
		snprintf(err, errlen, "%s: must be a non-empty relative path "
		    "of at most %d bytes", field, FS_RELPATH_MAX);
		return -1;
	}
	if (dot_ok && (strcmp(p, ".") == 0 || strcmp(p, "./") == 0))
		return 0;
	if (p[0] == '/') {
		snprintf(err, errlen, "%s: '%.200s' is absolute; paths are "
		    "relative to the artifact or the runtime directory", field,
		    p);
		return -1;
	}
	for (i = 0; p[i] != '\0'; i++)
		if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f) {
			snprintf(err, errlen, "%s: contains a control "
			    "character", field);
			return -1;
		}
	for (s = p; *s != '\0'; s = *e ? e + 1 : e) {
		e = strchr(s, '/');
		if (e == NULL)
			e = s + strlen(s);
		n = (size_t)(e - s);
		if (n == 0 && *e == '\0')
			break;
		if (n == 0 && *e == '/' && e[1] == '\0' && dir_ok)
			break;
		if (n == 0 || (n == 1 && s[0] == '.') || (n == 2 &&
		    s[0] == '.' && s[1] == '.')) {
			snprintf(err, errlen, "%s: '%.200s' has an empty, '.' "
			    "or '..' component; paths may not leave their "
			    "directory", field, p);
			return -1;
		}
	}
	if (!dir_ok && p[strlen(p) - 1] == '/') {
		snprintf(err, errlen, "%s: '%.200s' must name a file, not a "
		    "directory", field, p);
		return -1;
	}
	return 0;
}
