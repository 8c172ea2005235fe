/*
 * zipw: snapshots part of a service's runtime directory into a ZIP
 * archive (libzip).  The tree belongs to an untrusted uid and nodee reads
 * it as root, so the service may try to make nodee read something else,
 * by planting symlinks or by swapping names while the archive is written:
 *
 *   - root is opened once (O_DIRECTORY | O_NOFOLLOW) and every other name
 *     is reached from it one component at a time, each opened with
 *     O_NOFOLLOW: no symlink is followed at any depth and ".." is never
 *     walked, so no rename can lead nodee above root;
 *   - the walk decides types with fstatat(AT_SYMLINK_NOFOLLOW) and opens
 *     only directories; file data is read only when zip_close asks for
 *     it, through a source that reaches the file the same way again,
 *     checks before opening that it is still a regular file (a FIFO is
 *     never opened) and after opening that the descriptor is that file,
 *     and fails the whole archive otherwise;
 *   - symlinks in the tree are stored as links, never read through, and
 *     only if unzip_extract will accept them; FIFOs, sockets, devices and
 *     names unzip_extract refuses are skipped and counted, so that every
 *     archive made here can be restored by this project.
 *
 * libzip reads its sources one after the other, so at most one descriptor
 * for file data is open however many files there are, and the walk holds
 * at most two directory descriptors besides root's.  Entries are sorted by
 * name, which makes the archive independent of readdir order and lets
 * overlapping paths ("data/", "data/a.db") be stored once.
 */
#include <sys/stat.h>
#include <sys/types.h>

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/crypto.h>
#include <zip.h>

#include "log.h"
#include "unzip.h"
#include "zipw.h"

#define ZIPW_NAME_MAX	4096	/* unzip_extract's limit */
#define ZIPW_LEVEL	1	/* deflate: a snapshot wants speed, not size */
#define ZIPW_STEP	(4 * 1024 * 1024)	/* progress at most this often */
#define ZIPW_STEP_FILES	1024			/* ...or after this many files */
#define ZIPW_BUFSZ	(256 * 1024)
#define ZIPW_WHY_MAX	128
#define ZIPW_MSDOS_DIR	0x10	/* the low byte of the external attributes */

enum zipw_kind {
	ZIPW_DIR,
	ZIPW_FILE,
	ZIPW_LINK,
	ZIPW_SKIP,
};

struct zipw_ent {
	char		*name;		/* relative to root, no '/' at the end */
	enum zipw_kind	 kind;
	mode_t		 mode;		/* permission bits */
	time_t		 mtime;
	uint64_t	 size;		/* a file's, as the walk saw it */
	char		*target;	/* a symlink's */
};

struct zipw_job {
	int			 rootfd;
	struct zipw_ent		*ents;
	size_t			 nents, entscap;
	char			**todo;		/* directories still to list */
	size_t			 ntodo, todocap;
	uint64_t		 max_bytes;
	uint64_t		 total;		/* file bytes, as the walk saw */
	uint64_t		 done;		/* file bytes read */
	uint64_t		 reported;
	unsigned		 since;		/* files opened since a report */
	zipw_progress_fn	 progress;
	void			*arg;
	int			 failed;
	char			*err;
	size_t			 errlen;
};

/* One file's libzip source, opened only when zip_close reads it. */
struct zipw_src {
	struct zipw_job		*job;
	const struct zipw_ent	*ent;
	int			 fd;
	uint64_t		 left;	/* to read: the size when opened */
	zip_error_t		 error;
};

static int	zipw_path_check(struct zipw_job *, const char *);
static int	zipw_is_root(const char *);
static int	zipw_walk_path(struct zipw_job *, const char *);
static int	zipw_walk(struct zipw_job *);
static int	zipw_walk_dir(struct zipw_job *, const char *);
static int	zipw_walk_child(struct zipw_job *, int, const char *,
		    const char *);
static int	zipw_link_inside(const char *, const char *);
static int	zipw_open_dir(struct zipw_job *, const char *, size_t, int,
		    int *, size_t *);
static int	zipw_openat_dir(int, const char *);
static int	zipw_add(struct zipw_job *, const char *, enum zipw_kind,
		    const struct stat *, const char *);
static int	zipw_todo(struct zipw_job *, const char *);
static int	zipw_plan(struct zipw_job *, struct zipw_stats *);
static int	zipw_write(struct zipw_job *, const char *);
static int	zipw_write_entry(struct zipw_job *, zip_t *,
		    const struct zipw_ent *);
static zip_int64_t	zipw_source(void *, void *, zip_uint64_t,
		    zip_source_cmd_t);
static int	zipw_src_open(struct zipw_src *);
static zip_int64_t	zipw_src_read(struct zipw_src *, void *,
		    zip_uint64_t);
static int	zipw_src_err(struct zipw_src *, int, int);
static int	zipw_progress(struct zipw_job *, int);
static int	zipw_finish(struct zipw_job *, const char *,
		    struct zipw_stats *);
static int	zipw_sync_dir(struct zipw_job *, const char *);
static int	zipw_fail(struct zipw_job *, const char *, ...)
		    __attribute__((format(printf, 2, 3)));
static const char	*zipw_why(int, char *, size_t);
static const char	*zipw_printable(const char *, char *, size_t);
static int	zipw_cmp_ent(const void *, const void *);
static void	zipw_free(struct zipw_job *);

/*
 * Archives paths (relative to root; "." for all of it) into out.  out is
 * written through a temporary file that libzip renames at the end; on
 * failure it does not exist afterwards, even if it did before.  Names
 * that vanish during the walk are left out; a name that changes type
 * before its data is read fails the archive.  stats is filled in either
 * case (on failure with what was known).
 */
int
zipw_create(const char *root, const char *const *paths, size_t npaths,
    const char *out, uint64_t max_bytes, zipw_progress_fn progress,
    void *arg, struct zipw_stats *stats, char *err, size_t errlen)
{
	struct zipw_job		job;
	struct zipw_stats	st;
	char			why[ZIPW_WHY_MAX];
	size_t			i;
	int			rc = -1;

	memset(&job, 0, sizeof(job));
	memset(&st, 0, sizeof(st));
	job.rootfd = -1;
	job.max_bytes = max_bytes;
	job.progress = progress;
	job.arg = arg;
	job.err = err;
	job.errlen = errlen;
	if (errlen > 0)
		err[0] = '\0';

	if (root[0] != '/') {
		zipw_fail(&job, "%s: not an absolute path", root);
		goto out;
	}
	if (npaths == 0) {
		zipw_fail(&job, "nothing to archive: no paths given");
		goto out;
	}
	for (i = 0; i < npaths; i++)
		if (zipw_path_check(&job, paths[i]) == -1)
			goto out;
	if ((job.rootfd = zipw_openat_dir(AT_FDCWD, root)) == -1) {
		zipw_fail(&job, "cannot open %s: %s", root,
		    zipw_why(errno, why, sizeof(why)));
		goto out;
	}
	for (i = 0; i < npaths; i++)
		if (zipw_walk_path(&job, paths[i]) == -1 ||
		    zipw_walk(&job) == -1)
			goto out;
	if (zipw_plan(&job, &st) == -1 ||
	    zipw_write(&job, out) == -1 ||
	    zipw_finish(&job, out, &st) == -1)
		goto out;
	rc = 0;
out:
	st.bytes_in = job.done;
	if (rc == -1) {
		if (unlink(out) == -1 && errno != ENOENT)
			log_warn("zipw", "cannot remove %s: %s", out,
			    zipw_why(errno, why, sizeof(why)));
		log_warn("zipw", "%s: %s", out, errlen > 0 ? err : "?");
	}
	if (stats != NULL)
		*stats = st;
	zipw_free(&job);
	return rc;
}

/*
 * A path as the caller gave it: "." or "./" for root, or a relative
 * name that unzip_extract would accept (no "..", "." or empty
 * components, not absolute), with one '/' allowed at the end.
 */
static int
zipw_path_check(struct zipw_job *job, const char *p)
{
	char	why[ZIPW_WHY_MAX], q[ZIPW_WHY_MAX];

	if (p == NULL || p[0] == '\0')
		return zipw_fail(job, "an empty path; use \".\" for the "
		    "whole directory");
	if (zipw_is_root(p))
		return 0;
	if (!unzip_name_ok(p, strlen(p), why, sizeof(why)))
		return zipw_fail(job, "%s: %s", zipw_printable(p, q,
		    sizeof(q)), why);
	return 0;
}

static int
zipw_is_root(const char *p)
{
	return strcmp(p, ".") == 0 || strcmp(p, "./") == 0;
}

/*
 * One listed path: its parent directories become entries too (so their
 * modes survive), and a listed symlink or special file is an error,
 * since the caller asked for it by name.
 */
static int
zipw_walk_path(struct zipw_job *job, const char *p)
{
	struct stat	 sb;
	const char	*base;
	char		 rel[ZIPW_NAME_MAX + 1], why[ZIPW_WHY_MAX];
	size_t		 len, cut, bad;
	int		 dfd, e, rc;

	if (zipw_is_root(p))
		return zipw_todo(job, "");
	len = strlen(p);
	if (p[len - 1] == '/')
		len--;
	memcpy(rel, p, len);	/* unzip_name_ok bounds len */
	rel[len] = '\0';
	base = strrchr(rel, '/');
	cut = base != NULL ? (size_t)(base - rel) : 0;
	base = base != NULL ? base + 1 : rel;
	if ((e = zipw_open_dir(job, rel, cut, 1, &dfd, &bad)) != 0) {
		if (job->failed)
			return -1;
		return zipw_fail(job, "%.*s: %s", (int)bad, rel,
		    zipw_why(e, why, sizeof(why)));
	}
	if (fstatat(dfd, base, &sb, AT_SYMLINK_NOFOLLOW) == -1) {
		e = errno;
		close(dfd);
		return zipw_fail(job, "%s: %s", p, zipw_why(e, why,
		    sizeof(why)));
	}
	close(dfd);
	if (S_ISLNK(sb.st_mode))
		return zipw_fail(job, "%s: %s", p, zipw_why(ELOOP, why,
		    sizeof(why)));
	if (S_ISDIR(sb.st_mode)) {
		if ((rc = zipw_add(job, rel, ZIPW_DIR, &sb, NULL)) == 0)
			rc = zipw_todo(job, rel);
		return rc;
	}
	if (S_ISREG(sb.st_mode))
		return zipw_add(job, rel, ZIPW_FILE, &sb, NULL);
	return zipw_fail(job, "%s: not a regular file or a directory", p);
}

/* Lists the directories found so far, and those they hold. */
static int
zipw_walk(struct zipw_job *job)
{
	char	*rel;
	int	 rc;

	while (job->ntodo > 0) {
		rel = job->todo[--job->ntodo];
		rc = zipw_walk_dir(job, rel);
		free(rel);
		if (rc == -1)
			return -1;
	}
	return 0;
}

static int
zipw_walk_dir(struct zipw_job *job, const char *rel)
{
	struct dirent	*de;
	DIR		*d;
	char		 why[ZIPW_WHY_MAX];
	size_t		 bad;
	int		 dfd, e;

	if ((e = zipw_open_dir(job, rel, strlen(rel), 0, &dfd, &bad)) != 0) {
		if (e == ENOENT && bad == strlen(rel))
			return 0;	/* gone since it was listed */
		return zipw_fail(job, "%.*s: %s; it changed while being "
		    "archived", (int)bad, rel, zipw_why(e, why, sizeof(why)));
	}
	if ((d = fdopendir(dfd)) == NULL) {
		e = errno;
		close(dfd);
		return zipw_fail(job, "%s: cannot read: %s", rel[0] != '\0' ?
		    rel : ".", zipw_why(e, why, sizeof(why)));
	}
	for (;;) {
		errno = 0;
		if ((de = readdir(d)) == NULL)
			break;
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		if (zipw_walk_child(job, dirfd(d), rel, de->d_name) == -1) {
			closedir(d);
			return -1;
		}
	}
	e = errno;
	closedir(d);
	if (e != 0)
		return zipw_fail(job, "%s: cannot read: %s", rel[0] != '\0' ?
		    rel : ".", zipw_why(e, why, sizeof(why)));
	return 0;
}

/* name in the directory dfd, which is rel: what it is and whether to keep. */
static int
zipw_walk_child(struct zipw_job *job, int dfd, const char *rel,
    const char *name)
{
	struct stat	sb;
	char		path[ZIPW_NAME_MAX + NAME_MAX + 2];
	char		target[ZIPW_NAME_MAX + 1], why[ZIPW_WHY_MAX];
	ssize_t		n;
	int		len, rc;

	len = snprintf(path, sizeof(path), "%s%s%s", rel, rel[0] != '\0' ?
	    "/" : "", name);
	if (len < 0 || (size_t)len >= sizeof(path))
		return zipw_fail(job, "%s: name too long", rel);
	if (fstatat(dfd, name, &sb, AT_SYMLINK_NOFOLLOW) == -1) {
		if (errno == ENOENT)
			return 0;	/* gone since readdir */
		return zipw_fail(job, "%s: %s", zipw_printable(path, target,
		    sizeof(target)), zipw_why(errno, why, sizeof(why)));
	}
	/* A name unzip_extract refuses would make the archive useless. */
	if (!unzip_name_ok(path, (size_t)len, NULL, 0))
		return zipw_add(job, path, ZIPW_SKIP, &sb, NULL);
	switch (sb.st_mode & S_IFMT) {
	case S_IFDIR:
		if ((rc = zipw_add(job, path, ZIPW_DIR, &sb, NULL)) == 0)
			rc = zipw_todo(job, path);
		return rc;
	case S_IFREG:
		return zipw_add(job, path, ZIPW_FILE, &sb, NULL);
	case S_IFLNK:
		n = readlinkat(dfd, name, target, sizeof(target));
		if (n == -1 && errno == ENOENT)
			return 0;
		if (n == -1)
			return zipw_fail(job, "%s: cannot read the symlink: %s",
			    path, zipw_why(errno, why, sizeof(why)));
		if ((size_t)n == sizeof(target))
			return zipw_add(job, path, ZIPW_SKIP, &sb, NULL);
		target[n] = '\0';
		if (!zipw_link_inside(path, target))
			return zipw_add(job, path, ZIPW_SKIP, &sb, NULL);
		return zipw_add(job, path, ZIPW_LINK, &sb, target);
	default:
		return zipw_add(job, path, ZIPW_SKIP, &sb, NULL);
	}
}

/*
 * Whether the symlink name -> target stays inside the archive.
 * unzip_link_ok judges the target alone; unzip_extract also follows
 * chains of the archive's links, where "d/up" -> ".." and "e" ->
 * "d/up/.." each look fine and "e" is root's parent.  Such a climb
 * needs a ".." after a name, which is refused here: a ".." at the start
 * climbs from the link's own directory, a real one, by no more than
 * unzip_link_ok allows, and then no link in the chain can climb past
 * root.  Targets like "a/../b" are rare enough to be skipped.
 */
static int
zipw_link_inside(const char *name, const char *target)
{
	const char	*p, *slash;
	size_t		 clen;
	int		 down = 0;

	if (!unzip_link_ok(name, target, NULL, 0))
		return 0;
	for (p = target;; p = slash + 1) {
		slash = strchr(p, '/');
		clen = slash != NULL ? (size_t)(slash - p) : strlen(p);
		if (clen == 2 && p[0] == '.' && p[1] == '.') {
			if (down)
				return 0;
		} else if (clen > 0 && !(clen == 1 && p[0] == '.'))
			down = 1;
		if (slash == NULL)
			break;
	}
	return 1;
}

/*
 * Opens the directory made of the first len bytes of path, one
 * component at a time from root, none of them followed if a symlink.
 * With add, each one becomes an entry (its mode from the open
 * descriptor).  Returns 0 and *fdp, or an errno value (ELOOP for a
 * symlink) and in *bad the length of path that failed; a failure of
 * zipw_add is already recorded.
 */
static int
zipw_open_dir(struct zipw_job *job, const char *path, size_t len, int add,
    int *fdp, size_t *bad)
{
	struct stat	 sb;
	const char	*p, *end = path + len, *slash;
	char		 comp[NAME_MAX + 1], name[ZIPW_NAME_MAX + 1];
	size_t		 clen;
	int		 fd, next, e;

	*fdp = -1;
	*bad = 0;
	/* A descriptor of its own, since the caller closes it. */
	if ((fd = openat(job->rootfd, ".", O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC)) == -1)
		return errno;
	for (p = path; p < end; p = slash + 1) {
		if ((slash = memchr(p, '/', (size_t)(end - p))) == NULL)
			slash = end;
		clen = (size_t)(slash - p);
		*bad = (size_t)(slash - path);
		if (clen == 0 || clen > NAME_MAX || *bad > ZIPW_NAME_MAX) {
			close(fd);
			return ENAMETOOLONG;
		}
		memcpy(comp, p, clen);
		comp[clen] = '\0';
		if ((next = zipw_openat_dir(fd, comp)) == -1) {
			e = errno;
			close(fd);
			return e;
		}
		close(fd);
		fd = next;
		if (add) {
			memcpy(name, path, *bad);
			name[*bad] = '\0';
			if (fstat(fd, &sb) == -1 ||
			    zipw_add(job, name, ZIPW_DIR, &sb, NULL) == -1) {
				e = job->failed ? EIO : errno;
				close(fd);
				return e;
			}
		}
	}
	*fdp = fd;
	return 0;
}

/*
 * A directory that is not a symlink.  Linux says ENOTDIR for a symlink
 * opened with O_DIRECTORY | O_NOFOLLOW; errno is ELOOP then, so that
 * messages can tell the two apart.
 */
static int
zipw_openat_dir(int dfd, const char *name)
{
	struct stat	sb;
	int		fd;

	fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC);
	if (fd == -1 && errno == ENOTDIR && fstatat(dfd, name, &sb,
	    AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(sb.st_mode))
		errno = ELOOP;
	return fd;
}

static int
zipw_add(struct zipw_job *job, const char *name, enum zipw_kind kind,
    const struct stat *sb, const char *target)
{
	struct zipw_ent	*e;
	size_t		 cap;

	if (job->nents == job->entscap) {
		cap = job->entscap > 0 ? job->entscap * 2 : 64;
		if ((e = reallocarray(job->ents, cap, sizeof(*e))) == NULL)
			return zipw_fail(job, "out of memory");
		job->ents = e;
		job->entscap = cap;
	}
	e = &job->ents[job->nents];
	memset(e, 0, sizeof(*e));
	if ((e->name = strdup(name)) == NULL ||
	    (target != NULL && (e->target = strdup(target)) == NULL)) {
		free(e->name);
		return zipw_fail(job, "out of memory");
	}
	e->kind = kind;
	e->mode = sb->st_mode & 0777;
	e->mtime = sb->st_mtime;
	e->size = S_ISREG(sb->st_mode) ? (uint64_t)sb->st_size : 0;
	job->nents++;
	return 0;
}

static int
zipw_todo(struct zipw_job *job, const char *rel)
{
	char	**t;
	size_t	  cap;

	if (job->ntodo == job->todocap) {
		cap = job->todocap > 0 ? job->todocap * 2 : 16;
		if ((t = reallocarray(job->todo, cap, sizeof(*t))) == NULL)
			return zipw_fail(job, "out of memory");
		job->todo = t;
		job->todocap = cap;
	}
	if ((job->todo[job->ntodo] = strdup(rel)) == NULL)
		return zipw_fail(job, "out of memory");
	job->ntodo++;
	return 0;
}

/*
 * Sorts the entries, drops the second sight of a name (overlapping
 * paths), counts them and checks the size limit before anything is
 * written.
 */
static int
zipw_plan(struct zipw_job *job, struct zipw_stats *st)
{
	struct zipw_ent	*e;
	size_t		 i, n = 0;

	if (job->nents > 0)
		qsort(job->ents, job->nents, sizeof(*job->ents),
		    zipw_cmp_ent);
	for (i = 0; i < job->nents; i++) {
		e = &job->ents[i];
		if (n > 0 && strcmp(job->ents[n - 1].name, e->name) == 0) {
			free(e->name);
			free(e->target);
			continue;
		}
		job->ents[n++] = *e;
		switch (e->kind) {
		case ZIPW_DIR:
			st->dirs++;
			break;
		case ZIPW_FILE:
			st->files++;
			job->total += e->size;
			break;
		case ZIPW_LINK:
			st->symlinks++;
			break;
		case ZIPW_SKIP:
			if (st->skipped++ == 0)
				zipw_printable(e->name, st->first_skipped,
				    sizeof(st->first_skipped));
			break;
		}
	}
	job->nents = n;
	if (st->files + st->dirs + st->symlinks == 0)
		return zipw_fail(job, "nothing to archive: the paths hold "
		    "no files, directories or symlinks");
	if (job->max_bytes > 0 && job->total > job->max_bytes)
		return zipw_fail(job, "the files hold %" PRIu64 " bytes, more "
		    "than the limit of %" PRIu64, job->total, job->max_bytes);
	return 0;
}

/*
 * Adds every entry, then lets zip_close read the files (one at a time,
 * through zipw_source) and rename the archive into place.
 */
static int
zipw_write(struct zipw_job *job, const char *out)
{
	zip_error_t	 zerr;
	zip_t		*za;
	size_t		 i;
	int		 zrc;

	if ((za = zip_open(out, ZIP_CREATE | ZIP_TRUNCATE, &zrc)) == NULL) {
		zip_error_init_with_code(&zerr, zrc);
		zipw_fail(job, "cannot create %s: %s", out,
		    zip_error_strerror(&zerr));
		zip_error_fini(&zerr);
		return -1;
	}
	for (i = 0; i < job->nents; i++)
		if (job->ents[i].kind != ZIPW_SKIP &&
		    zipw_write_entry(job, za, &job->ents[i]) == -1) {
			zip_discard(za);
			return -1;
		}
	if (zipw_progress(job, 1) == -1) {
		zip_discard(za);
		return -1;
	}
	if (zip_close(za) != 0) {
		/* Our sources' own failures say more than libzip's text. */
		if (!job->failed)
			zipw_fail(job, "cannot write %s: %s", out,
			    zip_strerror(za));
		zip_discard(za);
		return -1;
	}
	return zipw_progress(job, 1);
}

static int
zipw_write_entry(struct zipw_job *job, zip_t *za, const struct zipw_ent *e)
{
	struct zipw_src	*s;
	zip_source_t	*src = NULL;
	zip_int64_t	 idx = -1;
	uint32_t	 attr;

	switch (e->kind) {
	case ZIPW_DIR:
		idx = zip_dir_add(za, e->name, ZIP_FL_ENC_GUESS);
		attr = (uint32_t)(S_IFDIR | e->mode) << 16 | ZIPW_MSDOS_DIR;
		break;
	case ZIPW_LINK:
		/* The target lives in job->ents until after zip_close. */
		src = zip_source_buffer(za, e->target, strlen(e->target), 0);
		attr = (uint32_t)(S_IFLNK | e->mode) << 16;
		break;
	default:
		if ((s = calloc(1, sizeof(*s))) == NULL)
			return zipw_fail(job, "out of memory");
		s->job = job;
		s->ent = e;
		s->fd = -1;
		zip_error_init(&s->error);
		if ((src = zip_source_function(za, zipw_source, s)) == NULL) {
			zip_error_fini(&s->error);
			free(s);
		}
		attr = (uint32_t)(S_IFREG | e->mode) << 16;
		break;
	}
	if (e->kind != ZIPW_DIR) {
		if (src == NULL)
			return zipw_fail(job, "%s: %s", e->name,
			    zip_strerror(za));
		/* A failed add leaves src ours; freeing it frees s. */
		if ((idx = zip_file_add(za, e->name, src, ZIP_FL_ENC_GUESS)) <
		    0)
			zip_source_free(src);
	}
	if (idx < 0 ||
	    zip_set_file_compression(za, (zip_uint64_t)idx, e->kind ==
	    ZIPW_FILE ? ZIP_CM_DEFLATE : ZIP_CM_STORE, e->kind == ZIPW_FILE ?
	    ZIPW_LEVEL : 0) == -1 ||
	    zip_file_set_external_attributes(za, (zip_uint64_t)idx, 0,
	    ZIP_OPSYS_UNIX, attr) == -1 ||
	    zip_file_set_mtime(za, (zip_uint64_t)idx, e->mtime, 0) == -1)
		return zipw_fail(job, "%s: cannot add to the archive: %s",
		    e->name, zip_strerror(za));
	return 0;
}

/*
 * A file's data for libzip.  No size is given in ZIP_SOURCE_STAT: the
 * file may change before it is read, and libzip then takes the size
 * from what was read (and writes ZIP64 local headers, as it must for an
 * unknown size).
 */
static zip_int64_t
zipw_source(void *ud, void *data, zip_uint64_t len, zip_source_cmd_t cmd)
{
	struct zipw_src	*s = ud;
	zip_stat_t	*st;

	switch (cmd) {
	case ZIP_SOURCE_OPEN:
		return zipw_src_open(s);
	case ZIP_SOURCE_READ:
		return zipw_src_read(s, data, len);
	case ZIP_SOURCE_CLOSE:
		if (s->fd != -1)
			close(s->fd);
		s->fd = -1;
		return 0;
	case ZIP_SOURCE_STAT:
		if ((st = ZIP_SOURCE_GET_ARGS(zip_stat_t, data, len,
		    &s->error)) == NULL)
			return -1;
		zip_stat_init(st);
		st->valid |= ZIP_STAT_MTIME;
		st->mtime = s->ent->mtime;
		return (zip_int64_t)sizeof(*st);
	case ZIP_SOURCE_ERROR:
		return zip_error_to_data(&s->error, data, len);
	case ZIP_SOURCE_FREE:
		if (s->fd != -1)
			close(s->fd);
		zip_error_fini(&s->error);
		free(s);
		return 0;
	case ZIP_SOURCE_SUPPORTS:
		return zip_source_make_command_bitmap(ZIP_SOURCE_OPEN,
		    ZIP_SOURCE_READ, ZIP_SOURCE_CLOSE, ZIP_SOURCE_STAT,
		    ZIP_SOURCE_ERROR, ZIP_SOURCE_FREE, ZIP_SOURCE_SUPPORTS, -1);
	default:
		zip_error_set(&s->error, ZIP_ER_OPNOTSUPP, 0);
		return -1;
	}
}

/*
 * Reaches the file again from root, as the walk did, because anything
 * may have changed since: a symlink or a FIFO in its place is never
 * opened, and the descriptor must be the regular file just looked at.
 * Only as many bytes as it holds now are read, so a file that keeps
 * growing (a log) cannot keep the archive open forever.
 */
static int
zipw_src_open(struct zipw_src *s)
{
	struct zipw_job	*job = s->job;
	struct stat	 sb, fsb;
	const char	*name = s->ent->name, *base;
	char		 why[ZIPW_WHY_MAX];
	size_t		 cut, bad;
	int		 dfd, fd, e;

	base = strrchr(name, '/');
	cut = base != NULL ? (size_t)(base - name) : 0;
	base = base != NULL ? base + 1 : name;
	if ((e = zipw_open_dir(job, name, cut, 0, &dfd, &bad)) != 0) {
		zipw_fail(job, "%.*s: %s; it changed while being archived",
		    (int)bad, name, zipw_why(e, why, sizeof(why)));
		return zipw_src_err(s, ZIP_ER_OPEN, e);
	}
	if (fstatat(dfd, base, &sb, AT_SYMLINK_NOFOLLOW) == -1) {
		e = errno;
		close(dfd);
		zipw_fail(job, "%s: %s; it changed while being archived",
		    name, zipw_why(e, why, sizeof(why)));
		return zipw_src_err(s, ZIP_ER_OPEN, e);
	}
	if (!S_ISREG(sb.st_mode)) {
		close(dfd);
		zipw_fail(job, "%s: %s; it changed while being archived", name,
		    S_ISLNK(sb.st_mode) ? "is a symlink now (not followed)" :
		    "is no longer a regular file");
		return zipw_src_err(s, ZIP_ER_CHANGED, 0);
	}
	fd = openat(dfd, base, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY |
	    O_CLOEXEC);
	e = errno;
	close(dfd);
	if (fd == -1) {
		zipw_fail(job, "%s: cannot open: %s", name, zipw_why(e, why,
		    sizeof(why)));
		return zipw_src_err(s, ZIP_ER_OPEN, e);
	}
	if (fstat(fd, &fsb) == -1 || !S_ISREG(fsb.st_mode) ||
	    fsb.st_dev != sb.st_dev || fsb.st_ino != sb.st_ino) {
		close(fd);
		zipw_fail(job, "%s: replaced while being opened; it changed "
		    "while being archived", name);
		return zipw_src_err(s, ZIP_ER_CHANGED, 0);
	}
	s->fd = fd;
	s->left = (uint64_t)fsb.st_size;
	job->since++;
	if (zipw_progress(job, 0) == -1)
		return zipw_src_err(s, ZIP_ER_CANCELLED, 0);
	return 0;
}

/* A file that shrank ends early: what was read is what is stored. */
static zip_int64_t
zipw_src_read(struct zipw_src *s, void *buf, zip_uint64_t len)
{
	struct zipw_job	*job = s->job;
	char		 why[ZIPW_WHY_MAX];
	ssize_t		 n;

	if (len > s->left)
		len = s->left;
	if (len > ZIPW_BUFSZ)
		len = ZIPW_BUFSZ;
	if (len == 0)
		return 0;
	do
		n = read(s->fd, buf, (size_t)len);
	while (n == -1 && errno == EINTR);
	if (n == -1) {
		zipw_fail(job, "%s: cannot read: %s", s->ent->name,
		    zipw_why(errno, why, sizeof(why)));
		return zipw_src_err(s, ZIP_ER_READ, errno);
	}
	if (n == 0) {
		s->left = 0;
		return 0;
	}
	s->left -= (uint64_t)n;
	job->done += (uint64_t)n;
	if (job->max_bytes > 0 && job->done > job->max_bytes) {
		zipw_fail(job, "the files grew past the limit of %" PRIu64
		    " bytes while being archived", job->max_bytes);
		return zipw_src_err(s, ZIP_ER_READ, 0);
	}
	if (zipw_progress(job, 0) == -1)
		return zipw_src_err(s, ZIP_ER_CANCELLED, 0);
	return n;
}

/* What libzip learns of a failure; job->err says it in full. */
static int
zipw_src_err(struct zipw_src *s, int zer, int sys)
{
	zip_error_set(&s->error, zer, sys);
	return -1;
}

/*
 * Calls the caller's function when ZIPW_STEP more bytes were read, or
 * ZIPW_STEP_FILES more files opened, or when forced (start and end).
 * -1 when cancelled, or already failed.
 */
static int
zipw_progress(struct zipw_job *job, int force)
{
	if (job->failed)
		return -1;
	if (job->progress == NULL)
		return 0;
	if (!force && job->done - job->reported < ZIPW_STEP &&
	    job->since < ZIPW_STEP_FILES)
		return 0;
	job->reported = job->done;
	job->since = 0;
	if (job->progress(job->arg, job->done, job->total) != 0)
		return zipw_fail(job, "cancelled");
	return 0;
}

/*
 * The archive as it is on disk: its size and SHA-256, read back rather
 * than counted on the way out, since libzip seeks back to fix headers.
 * Then it and its directory are made durable: the caller uploads it and
 * records the checksum.
 */
static int
zipw_finish(struct zipw_job *job, const char *out, struct zipw_stats *st)
{
	static const char	 hex[] = "0123456789abcdef";
	gnutls_hash_hd_t	 h;
	unsigned char		 d[32];
	char			 why[ZIPW_WHY_MAX];
	char			*buf;
	ssize_t			 n;
	uint64_t		 size = 0;
	size_t			 i;
	int			 fd, rc = -1;

	if ((fd = open(out, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1)
		return zipw_fail(job, "cannot open %s: %s", out,
		    zipw_why(errno, why, sizeof(why)));
	if ((buf = malloc(ZIPW_BUFSZ)) == NULL) {
		close(fd);
		return zipw_fail(job, "out of memory");
	}
	if (gnutls_hash_init(&h, GNUTLS_DIG_SHA256) < 0) {
		zipw_fail(job, "cannot compute SHA-256");
		goto out;
	}
	for (;;) {
		if ((n = read(fd, buf, ZIPW_BUFSZ)) == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (gnutls_hash(h, buf, (size_t)n) < 0) {
			n = -1;
			errno = EIO;
			break;
		}
		size += (uint64_t)n;
	}
	gnutls_hash_deinit(h, d);
	if (n == -1) {
		zipw_fail(job, "cannot read %s: %s", out, zipw_why(errno, why,
		    sizeof(why)));
		goto out;
	}
	if (fsync(fd) == -1) {
		zipw_fail(job, "cannot sync %s: %s", out, zipw_why(errno, why,
		    sizeof(why)));
		goto out;
	}
	for (i = 0; i < sizeof(d); i++) {
		st->sha256[2 * i] = hex[d[i] >> 4];
		st->sha256[2 * i + 1] = hex[d[i] & 0xf];
	}
	st->sha256[2 * sizeof(d)] = '\0';
	st->bytes_out = size;
	rc = zipw_sync_dir(job, out);
out:
	free(buf);
	close(fd);
	return rc;
}

/* The rename libzip made is durable once out's directory is synced. */
static int
zipw_sync_dir(struct zipw_job *job, const char *out)
{
	char	 dir[PATH_MAX], why[ZIPW_WHY_MAX];
	char	*slash;
	int	 fd;

	if (snprintf(dir, sizeof(dir), "%s", out) >= (int)sizeof(dir))
		return zipw_fail(job, "%s: name too long", out);
	if ((slash = strrchr(dir, '/')) == NULL)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == dir)
		dir[1] = '\0';
	else
		*slash = '\0';
	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1 ||
	    fsync(fd) == -1) {
		zipw_fail(job, "cannot sync %s: %s", dir, zipw_why(errno, why,
		    sizeof(why)));
		if (fd != -1)
			close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

/* Records the first failure; later ones follow from it. */
static int
zipw_fail(struct zipw_job *job, const char *fmt, ...)
{
	va_list	ap;

	if (!job->failed && job->errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(job->err, job->errlen, fmt, ap);
		va_end(ap);
	}
	job->failed = 1;
	return -1;
}

/* errno as the tail of "path: ...", ELOOP in the words of O_NOFOLLOW. */
static const char *
zipw_why(int e, char *buf, size_t len)
{
	const char	*s;

	if (e == ELOOP)
		return "is a symlink (not followed)";
	s = strerror_r(e, buf, len);
	if (s != buf)
		snprintf(buf, len, "%s", s);
	buf[0] = (char)tolower((unsigned char)buf[0]);
	return buf;
}

/*
 * A name fit for messages and events, which end up in logs: control
 * characters become '?'.  Names that reach here unchecked are only the
 * caller's paths and skipped entries.
 */
static const char *
zipw_printable(const char *s, char *buf, size_t len)
{
	size_t	i;

	for (i = 0; s[i] != '\0' && i + 1 < len; i++)
		buf[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' :
		    s[i];
	buf[i] = '\0';
	return buf;
}

static int
zipw_cmp_ent(const void *a, const void *b)
{
	const struct zipw_ent	*x = a, *y = b;

	return strcmp(x->name, y->name);
}

static void
zipw_free(struct zipw_job *job)
{
	size_t	i;

	if (job->rootfd != -1)
		close(job->rootfd);
	for (i = 0; i < job->nents; i++) {
		free(job->ents[i].name);
		free(job->ents[i].target);
	}
	free(job->ents);
	for (i = 0; i < job->ntodo; i++)
		free(job->todo[i]);
	free(job->todo);
}
