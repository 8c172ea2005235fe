/*
 * fs: the installed tree is read-only (directories 0555), so removing it
 * means giving the owner write permission on each directory first; nftw
 * visits directories before their contents (FTW_PHYS: symlinks are never
 * followed), then a depth-first pass deletes.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "fs.h"

static int	fs_unlock(const char *, const struct stat *, int,
		    struct FTW *);
static int	fs_remove(const char *, const struct stat *, int,
		    struct FTW *);
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

	if (lstat(path, &st) != 0)
		return errno == ENOENT ? 0 : -1;
	if (!S_ISDIR(st.st_mode))
		return unlink(path);
	if (nftw(path, fs_unlock, 64, FTW_PHYS) != 0)
		return -1;
	return nftw(path, fs_remove, 64, FTW_PHYS | FTW_DEPTH);
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

static int
fs_unlock(const char *path, const struct stat *st, int type, struct FTW *f)
{
	(void)f;
	if (type == FTW_D && (st->st_mode & 0700) != 0700)
		(void)chmod(path, (st->st_mode & 07777) | 0700);
	return 0;
}

static int
fs_remove(const char *path, const struct stat *st, int type, struct FTW *f)
{
	(void)st;
	(void)f;
	if (type == FTW_DP || type == FTW_D)
		return rmdir(path) != 0 && errno != ENOENT ? -1 : 0;
	return unlink(path) != 0 && errno != ENOENT ? -1 : 0;
}
