/*
 * unzip: unpacks a ZIP archive into an empty staging directory, and
 * refuses any archive that would do more than put files inside it.
 *
 * libzip decodes the archive; it writes nothing and checks nothing about
 * names, modes, sizes or overlaps, so all of that happens here, in an
 * order that finishes every check that can be made up front before the
 * first byte is written:
 *
 *   1. A small parser of our own reads the central directory, because
 *      libzip keeps the local header offsets to itself and turns an
 *      embedded NUL in a name into a space.  It yields each entry's raw
 *      name and the span of the file the entry occupies; overlapping
 *      spans are the overlapping-file zip bomb (many entries inflating
 *      the same compressed bytes) and are refused.
 *   2. Names, duplicates, the entry count, the declared sizes,
 *      encryption, file-versus-directory clashes and symlink targets are
 *      checked, the targets both alone and as chains of links.
 *   3. Directories are made by one thread, files are written by
 *      lim->threads threads (each with its own libzip handle, as handles
 *      are not thread-safe), symlinks are made only after the last file,
 *      so no write can pass through one, and directories become
 *      read-only last, deepest first.
 *
 * Bytes are counted as they are written, across all threads, against
 * lim->max_bytes; the sizes in the headers only serve to refuse early.
 * Each entry is read to its end, which is when libzip checks its CRC.
 */
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zip.h>

#include "log.h"
#include "unzip.h"

#define UNZIP_NAME_MAX		4096
#define UNZIP_COMP_MAX		255
#define UNZIP_LINK_MAX		4095
#define UNZIP_LINK_HOPS		40	/* as the kernel's ELOOP limit */
#define UNZIP_BUFSZ		(256 * 1024)
#define UNZIP_STEP		(1024 * 1024)	/* progress at most this often */
#define UNZIP_STEP_ENTRIES	256		/* ...or after this many files */
#define UNZIP_THREADS_MAX	64
#define UNZIP_QUOTE_MAX		160
#define UNZIP_MSG_MAX		512

/* ZIP records (PKWARE APPNOTE.TXT, section 4.3): signatures and sizes. */
#define UNZIP_SIG_LOCAL		0x04034b50
#define UNZIP_SIG_CENTRAL	0x02014b50
#define UNZIP_SIG_EOCD		0x06054b50
#define UNZIP_SIG_EOCD64	0x06064b50
#define UNZIP_SIG_LOC64		0x07064b50
#define UNZIP_LEN_LOCAL		30
#define UNZIP_LEN_CENTRAL	46
#define UNZIP_LEN_EOCD		22
#define UNZIP_LEN_LOC64		20
#define UNZIP_LEN_EOCD64	56
#define UNZIP_LEN_DESC		12	/* data descriptor, at least */
#define UNZIP_FL_ENCRYPTED	0x0001
#define UNZIP_FL_DESC		0x0008
#define UNZIP_XF_ZIP64		0x0001
#define UNZIP_MAX16		0xffffU
#define UNZIP_MAX32		0xffffffffU

enum unzip_kind {
	UNZIP_FILE,
	UNZIP_DIR,
	UNZIP_LINK,
};

/* One entry as planned before anything is written. */
struct unzip_ent {
	char		*name;		/* raw; a directory's without its '/' */
	size_t		 len;
	int		 slash;		/* the stored name ended in '/' */
	zip_uint64_t	 index;
	uint16_t	 flags;		/* general purpose bits, central dir */
	uint64_t	 start;		/* its local header */
	uint64_t	 end;		/* past its data and descriptor */
	uint64_t	 size;		/* declared uncompressed size */
	enum unzip_kind	 kind;
	mode_t		 mode;		/* final mode */
	char		*target;	/* a symlink's */
};

/* An entry by name, for sorting and binary search. */
struct unzip_key {
	const char		*name;
	struct unzip_ent	*ent;
};

/* A run of the archive's bytes and who claims it (NULL: the directory). */
struct unzip_span {
	uint64_t		 start, end;
	const struct unzip_ent	*ent;
};

/*
 * One extraction.  The fields above "next" are set before any worker
 * starts and only read afterwards; the atomics and the mutex are what
 * the workers share.
 */
struct unzip_job {
	const char			*path;
	const struct unzip_limits	*lim;
	unzip_progress_fn		 progress;
	void				*arg;
	int				 rootfd;
	struct unzip_ent		*ents;		/* archive order */
	size_t				 nents;
	struct unzip_key		*sorted;	/* by name */
	size_t				*files;		/* in ents, in order */
	size_t				 nfiles;
	uint64_t			 nlinks;
	uint64_t			 declared;
	char				**dirs;		/* the ones we made */
	size_t				 ndirs, dirscap;

	atomic_size_t			 next;		/* next file to take */
	_Atomic uint64_t		 written;
	_Atomic uint64_t		 reported;
	atomic_uint			 since;		/* files since a report */
	atomic_int			 failed;
	pthread_mutex_t			 mtx;		/* err, progress calls */
	char				*err;
	size_t				 errlen;
};

struct unzip_worker {
	struct unzip_job	*job;
	zip_t			*za;		/* NULL: opens its own */
	pthread_t		 tid;
};

static int	unzip_open_root(struct unzip_job *, const char *);
static int	unzip_cdir_read(struct unzip_job *, uint64_t *, uint64_t *);
static int	unzip_eocd(struct unzip_job *, const uint8_t *, uint64_t,
		    uint64_t *, uint64_t *, uint64_t *);
static int	unzip_cdir_entry(struct unzip_job *, const uint8_t *,
		    uint64_t, uint64_t *, uint64_t, struct unzip_ent *);
static int	unzip_zip64_extra(const uint8_t *, size_t, uint32_t,
		    uint64_t *, uint64_t *);
static int	unzip_check_names(struct unzip_job *);
static int	unzip_check_overlap(struct unzip_job *, uint64_t, uint64_t);
static int	unzip_plan(struct unzip_job *, zip_t *);
static int	unzip_plan_entry(struct unzip_job *, zip_t *,
		    struct unzip_ent *);
static int	unzip_check_clashes(struct unzip_job *);
static int	unzip_read_links(struct unzip_job *, zip_t *);
static int	unzip_link_resolve(struct unzip_job *,
		    const struct unzip_ent *);
static int	unzip_mkdirs(struct unzip_job *);
static int	unzip_mkdir_p(struct unzip_job *, const char *, size_t);
static int	unzip_dir_made(struct unzip_job *, const char *);
static int	unzip_run(struct unzip_job *, zip_t *);
static void	*unzip_worker(void *);
static int	unzip_write_file(struct unzip_job *, zip_t *,
		    struct unzip_ent *, char *);
static int64_t	unzip_read_entry(struct unzip_job *, zip_t *,
		    struct unzip_ent *, char *, size_t, int);
static int	unzip_make_links(struct unzip_job *);
static int	unzip_finish_dirs(struct unzip_job *);
static void	unzip_progress(struct unzip_job *, int);
static struct unzip_ent	*unzip_find(const struct unzip_job *, const char *);
static int	unzip_is_dir(const struct unzip_job *, const char *, size_t);
static size_t	unzip_lower(const struct unzip_job *, const char *);
static int	unzip_fail(struct unzip_job *, const char *, ...)
		    __attribute__((format(printf, 2, 3)));
static int	unzip_fail_ent(struct unzip_job *, const char *, size_t,
		    const char *, ...) __attribute__((format(printf, 4, 5)));
static int	unzip_why(char *, size_t, const char *, ...)
		    __attribute__((format(printf, 3, 4)));
static const char	*unzip_quote(const char *, size_t, char *, size_t);
static int	unzip_bad_char(const char *, size_t, char *, size_t);
static int	unzip_cmp_name(const void *, const void *);
static int	unzip_cmp_span(const void *, const void *);
static int	unzip_cmp_depth(const void *, const void *);
static uint16_t	unzip_get16(const uint8_t *);
static uint32_t	unzip_get32(const uint8_t *);
static uint64_t	unzip_get64(const uint8_t *);
static void	unzip_free(struct unzip_job *);

/*
 * Extracts zip_path into dir, which must exist and be empty.  On failure
 * dir may hold part of the tree, files read-only, directories writable
 * unless the failure came while they were being made read-only, and the
 * caller removes it.  dir itself keeps its mode: the caller renames it
 * into place, which needs it writable.  stats->dirs counts directories
 * listed or implied by a path; stats->bytes includes symlink targets.
 * progress is called from the extracting threads, never two at once.
 */
int
unzip_extract(const char *zip_path, const char *dir,
    const struct unzip_limits *lim, unzip_progress_fn progress, void *arg,
    struct unzip_stats *stats, char *err, size_t errlen)
{
	struct unzip_job	 job;
	zip_t			*za = NULL;
	zip_error_t		 zerr;
	uint64_t		 cdoff = 0, cdend = 0;
	int			 zrc, rc = -1;

	memset(&job, 0, sizeof(job));
	job.path = zip_path;
	job.lim = lim;
	job.progress = progress;
	job.arg = arg;
	job.rootfd = -1;
	job.err = err;
	job.errlen = errlen;
	atomic_init(&job.next, 0);
	atomic_init(&job.written, 0);
	atomic_init(&job.reported, 0);
	atomic_init(&job.since, 0);
	atomic_init(&job.failed, 0);
	pthread_mutex_init(&job.mtx, NULL);
	if (errlen > 0)
		err[0] = '\0';
	if (stats != NULL)
		memset(stats, 0, sizeof(*stats));

	if (unzip_open_root(&job, dir) == -1 ||
	    unzip_cdir_read(&job, &cdoff, &cdend) == -1 ||
	    unzip_check_names(&job) == -1 ||
	    unzip_check_overlap(&job, cdoff, cdend) == -1)
		goto out;
	if ((za = zip_open(zip_path, ZIP_RDONLY | ZIP_CHECKCONS, &zrc)) ==
	    NULL) {
		zip_error_init_with_code(&zerr, zrc);
		unzip_fail(&job, "cannot open archive: %s",
		    zip_error_strerror(&zerr));
		zip_error_fini(&zerr);
		goto out;
	}
	if (unzip_plan(&job, za) == -1 ||
	    unzip_check_clashes(&job) == -1 ||
	    unzip_read_links(&job, za) == -1 ||
	    unzip_mkdirs(&job) == -1 ||
	    unzip_run(&job, za) == -1 ||
	    unzip_make_links(&job) == -1 ||
	    unzip_finish_dirs(&job) == -1)
		goto out;
	if (stats != NULL) {
		stats->files = job.nfiles;
		stats->dirs = job.ndirs;
		stats->symlinks = job.nlinks;
		stats->bytes = atomic_load(&job.written);
	}
	rc = 0;
out:
	if (rc == -1)
		log_warn("unzip", "%s: %s", zip_path, errlen > 0 ? err : "?");
	if (za != NULL)
		zip_discard(za);
	unzip_free(&job);
	pthread_mutex_destroy(&job.mtx);
	return rc;
}

/*
 * A path inside an archive: one trailing '/' marks a directory; anything
 * that could reach outside the tree, or that different tools would read
 * differently (backslashes, drive letters, control characters), is
 * refused.  len is the stored length, so an embedded NUL shows.
 */
int
unzip_name_ok(const char *name, size_t len, char *why, size_t whylen)
{
	const char	*p, *end, *slash;
	size_t		 clen;

	if (len == 0)
		return unzip_why(why, whylen, "empty name");
	if (strnlen(name, len) != len)
		return unzip_why(why, whylen, "contains a NUL byte");
	if (len > UNZIP_NAME_MAX)
		return unzip_why(why, whylen, "longer than %d bytes",
		    UNZIP_NAME_MAX);
	if (name[0] == '/')
		return unzip_why(why, whylen, "absolute path");
	if (!unzip_bad_char(name, len, why, whylen))
		return 0;
	if (len >= 2 && name[1] == ':' &&
	    ((name[0] >= 'a' && name[0] <= 'z') ||
	    (name[0] >= 'A' && name[0] <= 'Z')))
		return unzip_why(why, whylen, "Windows drive prefix");
	end = name + len;
	if (end[-1] == '/')
		end--;
	for (p = name;; p = slash + 1) {
		slash = memchr(p, '/', (size_t)(end - p));
		clen = (size_t)((slash != NULL ? slash : end) - p);
		if (clen == 0)
			return unzip_why(why, whylen, "empty component");
		if (clen == 1 && p[0] == '.')
			return unzip_why(why, whylen, "'.' component");
		if (clen == 2 && p[0] == '.' && p[1] == '.')
			return unzip_why(why, whylen, "'..' component");
		if (clen > UNZIP_COMP_MAX)
			return unzip_why(why, whylen, "component longer than "
			    "%d bytes", UNZIP_COMP_MAX);
		if (slash == NULL)
			break;
	}
	return 1;
}

/*
 * Whether a symlink named linkname may point at target: resolved
 * lexically from linkname's directory, the target must never climb above
 * the root of the tree, not even for one step ("a/b" -> "../c" is fine,
 * "a" -> "../x" is not).  Chains of links are the extractor's business.
 */
int
unzip_link_ok(const char *linkname, const char *target, char *why,
    size_t whylen)
{
	const char	*p, *slash;
	size_t		 len, clen;
	long		 depth = 0;
	char		 sub[128];

	if (!unzip_name_ok(linkname, strlen(linkname), sub, sizeof(sub)))
		return unzip_why(why, whylen, "bad link name: %s", sub);
	len = strlen(target);
	if (len == 0)
		return unzip_why(why, whylen, "empty symlink target");
	if (len > UNZIP_LINK_MAX)
		return unzip_why(why, whylen, "symlink target longer than %d "
		    "bytes", UNZIP_LINK_MAX);
	if (target[0] == '/')
		return unzip_why(why, whylen, "absolute symlink target");
	if (!unzip_bad_char(target, len, sub, sizeof(sub)))
		return unzip_why(why, whylen, "symlink target %s", sub);
	/* Directories above the link: "a/b" sits one below the root. */
	for (p = linkname; *p != '\0'; p++)
		if (*p == '/' && p[1] != '\0')
			depth++;
	for (p = target;; p = slash + 1) {
		slash = strchr(p, '/');
		clen = slash != NULL ? (size_t)(slash - p) : strlen(p);
		if (clen == 2 && p[0] == '.' && p[1] == '.') {
			if (--depth < 0)
				return unzip_why(why, whylen, "symlink target "
				    "leads out of the tree");
		} else if (clen > 0 && !(clen == 1 && p[0] == '.'))
			depth++;
		if (slash == NULL)
			break;
	}
	return 1;
}

/*
 * The staging directory, opened once: every path below is relative to
 * this descriptor.  It must be empty, as the contract says, because a
 * symlink already in it is one we did not check.
 */
static int
unzip_open_root(struct unzip_job *job, const char *dir)
{
	struct dirent	*de;
	DIR		*d;
	char		 ebuf[128];
	int		 fd, empty = 1;

	job->rootfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC);
	if (job->rootfd == -1)
		return unzip_fail(job, "cannot open %s: %s", dir,
		    strerror_r(errno, ebuf, sizeof(ebuf)));
	if ((fd = dup(job->rootfd)) == -1 || (d = fdopendir(fd)) == NULL) {
		if (fd != -1)
			close(fd);
		return unzip_fail(job, "cannot read %s: %s", dir,
		    strerror_r(errno, ebuf, sizeof(ebuf)));
	}
	while (empty && (de = readdir(d)) != NULL)
		empty = strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0;
	closedir(d);
	if (!empty)
		return unzip_fail(job, "%s is not empty", dir);
	return 0;
}

/*
 * Reads the central directory with our own parser, into job->ents in
 * archive order; *cdoff and *cdend bound the directory itself.  The file
 * is mapped rather than read so that only the pages with headers are
 * touched.  Every access is bounds-checked: the bytes are hostile.
 */
static int
unzip_cdir_read(struct unzip_job *job, uint64_t *cdoff, uint64_t *cdend)
{
	struct stat	 st;
	const uint8_t	*map = MAP_FAILED;
	uint64_t	 n = 0, cdlen = 0, pos, i;
	char		 ebuf[128];
	int		 fd, rc = -1;

	if ((fd = open(job->path, O_RDONLY | O_CLOEXEC)) == -1)
		return unzip_fail(job, "cannot open archive: %s",
		    strerror_r(errno, ebuf, sizeof(ebuf)));
	if (fstat(fd, &st) == -1) {
		unzip_fail(job, "cannot open archive: %s",
		    strerror_r(errno, ebuf, sizeof(ebuf)));
		goto out;
	}
	if (st.st_size < UNZIP_LEN_EOCD) {
		unzip_fail(job, "not a zip archive: %jd bytes is too short",
		    (intmax_t)st.st_size);
		goto out;
	}
	map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (map == MAP_FAILED) {
		unzip_fail(job, "cannot map archive: %s",
		    strerror_r(errno, ebuf, sizeof(ebuf)));
		goto out;
	}
	if (unzip_eocd(job, map, (uint64_t)st.st_size, &n, cdoff, &cdlen) ==
	    -1)
		goto out;
	if (n > job->lim->max_entries) {
		unzip_fail(job, "archive has %" PRIu64 " entries, more than "
		    "the limit of %" PRIu64, n, job->lim->max_entries);
		goto out;
	}
	/* Each entry takes 46 bytes at least: n cannot be made up. */
	if (n > cdlen / UNZIP_LEN_CENTRAL) {
		unzip_fail(job, "malformed archive: %" PRIu64 " entries do "
		    "not fit in its central directory", n);
		goto out;
	}
	*cdend = *cdoff + cdlen;
	if (n > 0 && (job->ents = calloc(n, sizeof(*job->ents))) == NULL) {
		unzip_fail(job, "out of memory");
		goto out;
	}
	job->nents = n;
	for (i = 0, pos = *cdoff; i < n; i++) {
		job->ents[i].index = i;
		if (unzip_cdir_entry(job, map, (uint64_t)st.st_size, &pos,
		    *cdend, &job->ents[i]) == -1)
			goto out;
	}
	rc = 0;
out:
	if (map != MAP_FAILED)
		munmap((void *)map, (size_t)st.st_size);
	close(fd);
	return rc;
}

/*
 * Finds the End of Central Directory record: it is followed only by the
 * archive comment, so it lies in the last 65535 + 22 bytes, and its
 * comment length must reach the end of the file exactly (as libzip
 * requires with ZIP_CHECKCONS).  Were there two such records, libzip
 * could pick the other one and our checks would be about a directory it
 * does not use: that is refused.  A ZIP64 locator just before the
 * record, when present, gives the real values, as libzip also reads them.
 */
static int
unzip_eocd(struct unzip_job *job, const uint8_t *map, uint64_t size,
    uint64_t *n, uint64_t *cdoff, uint64_t *cdlen)
{
	const uint8_t	*p = NULL, *q;
	uint64_t	 pos, lo, off;

	lo = size > UNZIP_LEN_EOCD + UNZIP_MAX16 ?
	    size - UNZIP_LEN_EOCD - UNZIP_MAX16 : 0;
	for (off = size - UNZIP_LEN_EOCD;; off--) {
		q = map + off;
		if (unzip_get32(q) == UNZIP_SIG_EOCD &&
		    off + UNZIP_LEN_EOCD + unzip_get16(q + 20) == size) {
			if (p != NULL)
				return unzip_fail(job, "ambiguous archive: "
				    "more than one end of central directory "
				    "record");
			p = q;
		}
		if (off == lo)
			break;
	}
	if (p == NULL)
		return unzip_fail(job, "not a zip archive: no end of central "
		    "directory record");
	pos = (uint64_t)(p - map);
	*n = unzip_get16(p + 10);
	*cdlen = unzip_get32(p + 12);
	*cdoff = unzip_get32(p + 16);
	if (pos >= UNZIP_LEN_LOC64 &&
	    unzip_get32(p - UNZIP_LEN_LOC64) == UNZIP_SIG_LOC64) {
		off = unzip_get64(p - UNZIP_LEN_LOC64 + 8);
		if (off > pos || pos - off < UNZIP_LEN_EOCD64 ||
		    unzip_get32(map + off) != UNZIP_SIG_EOCD64)
			return unzip_fail(job, "malformed archive: bad ZIP64 "
			    "end of central directory record");
		q = map + off;
		*n = unzip_get64(q + 32);
		*cdlen = unzip_get64(q + 40);
		*cdoff = unzip_get64(q + 48);
		pos = off;
	}
	if (*cdoff > pos || *cdlen > pos - *cdoff)
		return unzip_fail(job, "malformed archive: its central "
		    "directory lies outside the file");
	return 0;
}

/*
 * One central directory entry at *pos (advanced past it): its raw name,
 * and where its local header, name, extra field, data and data
 * descriptor lie in the file.
 */
static int
unzip_cdir_entry(struct unzip_job *job, const uint8_t *map, uint64_t size,
    uint64_t *pos, uint64_t cdend, struct unzip_ent *e)
{
	const uint8_t	*p, *lh;
	uint64_t	 comp, off;
	uint32_t	 usize;
	size_t		 nlen, xlen, clen;

	if (cdend - *pos < UNZIP_LEN_CENTRAL ||
	    unzip_get32(map + *pos) != UNZIP_SIG_CENTRAL)
		return unzip_fail(job, "malformed archive: central directory "
		    "entry %" PRIu64 " is damaged", e->index);
	p = map + *pos;
	nlen = unzip_get16(p + 28);
	xlen = unzip_get16(p + 30);
	clen = unzip_get16(p + 32);
	if (cdend - *pos - UNZIP_LEN_CENTRAL < nlen + xlen + clen)
		return unzip_fail(job, "malformed archive: central directory "
		    "entry %" PRIu64 " is cut short", e->index);
	*pos += UNZIP_LEN_CENTRAL + nlen + xlen + clen;

	if ((e->name = malloc(nlen + 1)) == NULL)
		return unzip_fail(job, "out of memory");
	memcpy(e->name, p + UNZIP_LEN_CENTRAL, nlen);
	e->name[nlen] = '\0';
	e->len = nlen;
	e->flags = unzip_get16(p + 8);
	comp = unzip_get32(p + 20);
	usize = unzip_get32(p + 24);
	off = unzip_get32(p + 42);
	if (unzip_zip64_extra(p + UNZIP_LEN_CENTRAL + nlen, xlen, usize,
	    &comp, &off) == -1)
		return unzip_fail_ent(job, e->name, nlen, "damaged ZIP64 extra "
		    "field");

	if (off > size || size - off < UNZIP_LEN_LOCAL ||
	    unzip_get32(map + off) != UNZIP_SIG_LOCAL)
		return unzip_fail_ent(job, e->name, nlen, "no local header at "
		    "offset %" PRIu64, off);
	lh = map + off;
	if (comp > size - off)
		return unzip_fail_ent(job, e->name, nlen, "its data runs past "
		    "the end of the archive");
	e->start = off;
	e->end = off + UNZIP_LEN_LOCAL + unzip_get16(lh + 26) +
	    unzip_get16(lh + 28) + comp;
	if (e->flags & UNZIP_FL_DESC)
		e->end += UNZIP_LEN_DESC;
	if (e->end > size)
		return unzip_fail_ent(job, e->name, nlen, "its data runs past "
		    "the end of the archive");
	return 0;
}

/*
 * A 32-bit size or offset of 0xffffffff means the real value is in the
 * ZIP64 extra field, whose values appear in a fixed order and only for
 * the fields that overflowed.
 */
static int
unzip_zip64_extra(const uint8_t *x, size_t xlen, uint32_t usize,
    uint64_t *comp, uint64_t *off)
{
	size_t	id, dlen;

	if (*comp != UNZIP_MAX32 && *off != UNZIP_MAX32)
		return 0;
	while (xlen >= 4) {
		id = unzip_get16(x);
		dlen = unzip_get16(x + 2);
		if (dlen > xlen - 4)
			return -1;
		x += 4;
		xlen -= 4;
		if (id != UNZIP_XF_ZIP64) {
			x += dlen;
			xlen -= dlen;
			continue;
		}
		if (usize == UNZIP_MAX32) {
			if (dlen < 8)
				return -1;
			x += 8;
			dlen -= 8;
		}
		if (*comp == UNZIP_MAX32) {
			if (dlen < 8)
				return -1;
			*comp = unzip_get64(x);
			x += 8;
			dlen -= 8;
		}
		if (*off == UNZIP_MAX32) {
			if (dlen < 8)
				return -1;
			*off = unzip_get64(x);
		}
		return 0;
	}
	return -1;
}

/*
 * Every name, in archive order so the first bad one is the one reported;
 * then a directory's trailing '/' goes, and the names are sorted so that
 * "a" and "a/" count as the same path.
 */
static int
unzip_check_names(struct unzip_job *job)
{
	struct unzip_ent	*e;
	char			 why[128];
	size_t			 i;

	for (i = 0; i < job->nents; i++) {
		e = &job->ents[i];
		if (!unzip_name_ok(e->name, e->len, why, sizeof(why)))
			return unzip_fail_ent(job, e->name, e->len, "%s",
			    why);
		if (e->name[e->len - 1] == '/') {
			e->name[--e->len] = '\0';
			e->slash = 1;
		}
	}
	if (job->nents == 0)
		return 0;
	if ((job->sorted = calloc(job->nents, sizeof(*job->sorted))) == NULL)
		return unzip_fail(job, "out of memory");
	for (i = 0; i < job->nents; i++) {
		job->sorted[i].name = job->ents[i].name;
		job->sorted[i].ent = &job->ents[i];
	}
	qsort(job->sorted, job->nents, sizeof(*job->sorted), unzip_cmp_name);
	for (i = 1; i < job->nents; i++)
		if (strcmp(job->sorted[i - 1].name, job->sorted[i].name) == 0)
			return unzip_fail_ent(job, job->sorted[i].name,
			    job->sorted[i].ent->len, "appears twice in the "
			    "archive");
	return 0;
}

/*
 * The overlapping-file zip bomb points many entries at the same
 * compressed bytes, so a small file inflates to terabytes.  In an honest
 * archive every entry, and the central directory, has bytes of its own:
 * sorted by start, each run must end before the next begins.
 */
static int
unzip_check_overlap(struct unzip_job *job, uint64_t cdoff, uint64_t cdend)
{
	struct unzip_span	*s;
	const struct unzip_ent	*a, *b;
	char			 qa[UNZIP_QUOTE_MAX], qb[UNZIP_QUOTE_MAX];
	size_t			 i, n = job->nents + 1;
	int			 rc = 0;

	if ((s = calloc(n, sizeof(*s))) == NULL)
		return unzip_fail(job, "out of memory");
	for (i = 0; i < job->nents; i++) {
		s[i].start = job->ents[i].start;
		s[i].end = job->ents[i].end;
		s[i].ent = &job->ents[i];
	}
	s[i].start = cdoff;
	s[i].end = cdend;
	qsort(s, n, sizeof(*s), unzip_cmp_span);
	for (i = 1; i < n; i++) {
		if (s[i].start >= s[i - 1].end)
			continue;
		a = s[i - 1].ent;
		b = s[i].ent;
		if (a == NULL || b == NULL)
			rc = unzip_fail_ent(job, a ? a->name : b->name,
			    a ? a->len : b->len, "overlaps the central "
			    "directory");
		else
			rc = unzip_fail(job, "entries '%s' and '%s' overlap "
			    "in the archive (an overlapping-entry zip bomb)",
			    unzip_quote(a->name, a->len, qa, sizeof(qa)),
			    unzip_quote(b->name, b->len, qb, sizeof(qb)));
		break;
	}
	free(s);
	return rc;
}

/*
 * What libzip says about each entry: it must have read the same names we
 * did (else the two parsers disagree and our overlap check proved
 * nothing), and it gives the declared size, encryption and unix mode.
 */
static int
unzip_plan(struct unzip_job *job, zip_t *za)
{
	zip_int64_t	n;
	size_t		i;

	n = zip_get_num_entries(za, 0);
	if (n < 0 || (uint64_t)n != job->nents)
		return unzip_fail(job, "malformed archive: libzip reads %jd "
		    "entries, its central directory lists %zu", (intmax_t)n,
		    job->nents);
	if (job->nents > 0 &&
	    (job->files = calloc(job->nents, sizeof(*job->files))) == NULL)
		return unzip_fail(job, "out of memory");
	for (i = 0; i < job->nents; i++)
		if (unzip_plan_entry(job, za, &job->ents[i]) == -1)
			return -1;
	if (job->declared > job->lim->max_bytes)
		return unzip_fail(job, "archive declares %" PRIu64 " bytes "
		    "uncompressed, more than the limit of %" PRIu64,
		    job->declared, job->lim->max_bytes);
	return 0;
}

static int
unzip_plan_entry(struct unzip_job *job, zip_t *za, struct unzip_ent *e)
{
	zip_stat_t	 st;
	const char	*raw;
	zip_uint32_t	 attr;
	zip_uint8_t	 opsys;
	mode_t		 mode;

	raw = zip_get_name(za, e->index, ZIP_FL_ENC_RAW);
	if (raw == NULL || strlen(raw) != e->len + (size_t)e->slash ||
	    memcmp(raw, e->name, e->len) != 0)
		return unzip_fail_ent(job, e->name, e->len, "libzip reads its "
		    "name differently; the archive is ambiguous");
	zip_stat_init(&st);
	if (zip_stat_index(za, e->index, 0, &st) == -1)
		return unzip_fail_ent(job, e->name, e->len, "%s",
		    zip_strerror(za));
	if ((e->flags & UNZIP_FL_ENCRYPTED) ||
	    ((st.valid & ZIP_STAT_ENCRYPTION_METHOD) &&
	    st.encryption_method != ZIP_EM_NONE))
		return unzip_fail_ent(job, e->name, e->len, "encrypted "
		    "entries are not supported");
	if (!(st.valid & ZIP_STAT_SIZE))
		return unzip_fail_ent(job, e->name, e->len, "no size");
	e->size = st.size;
	if (zip_file_get_external_attributes(za, e->index, 0, &opsys,
	    &attr) == -1)
		return unzip_fail_ent(job, e->name, e->len, "%s",
		    zip_strerror(za));
	/* Only unix-made entries carry a mode; others get defaults. */
	mode = opsys == ZIP_OPSYS_UNIX ? (mode_t)(attr >> 16) : 0;

	if (mode != 0 && S_ISLNK(mode)) {
		if (e->slash)
			return unzip_fail_ent(job, e->name, e->len, "a "
			    "symlink with a directory's name");
		e->kind = UNZIP_LINK;
		job->nlinks++;
	} else if (e->slash || (mode != 0 && S_ISDIR(mode)))
		e->kind = UNZIP_DIR;
	else if (mode != 0 && (mode & S_IFMT) != 0 && !S_ISREG(mode))
		return unzip_fail_ent(job, e->name, e->len, "devices, FIFOs "
		    "and sockets are not supported");
	else {
		e->kind = UNZIP_FILE;
		job->files[job->nfiles++] = (size_t)(e - job->ents);
	}
	if (mode == 0)
		mode = e->kind == UNZIP_DIR ? 0755 : 0644;
	/*
	 * The installed tree is read-only: only "executable or not"
	 * survives, never setuid, setgid, sticky or write bits.  Saved state
	 * unpacked into a runtime directory is the service's to change.
	 */
	e->mode = e->kind == UNZIP_DIR || (mode & 0111) ? 0555 : 0444;
	if (job->lim->writable)
		e->mode |= 0200;
	if (e->kind != UNZIP_DIR)
		job->declared = e->size > UINT64_MAX - job->declared ?
		    UINT64_MAX : job->declared + e->size;
	return 0;
}

/*
 * "a" as a file or symlink and "a/b" in the same archive cannot both be
 * made; say so now rather than fail half-way with EEXIST.
 */
static int
unzip_check_clashes(struct unzip_job *job)
{
	const struct unzip_ent	*e;
	size_t			 i;

	for (i = 0; i < job->nents; i++) {
		e = &job->ents[i];
		if (e->kind != UNZIP_DIR && unzip_is_dir(job, e->name, e->len))
			return unzip_fail_ent(job, e->name, e->len, "is a %s, "
			    "but other entries use it as a directory",
			    e->kind == UNZIP_LINK ? "symlink" : "file");
	}
	return 0;
}

/*
 * Symlink targets are small: read them now, before any file is written,
 * so a bad one costs nothing.  Their bytes count against the limit like
 * any others.
 */
static int
unzip_read_links(struct unzip_job *job, zip_t *za)
{
	struct unzip_ent	*e;
	char			 buf[UNZIP_LINK_MAX + 2], why[256];
	char			 q[UNZIP_QUOTE_MAX];
	int64_t			 n;
	size_t			 i;

	for (i = 0; i < job->nents; i++) {
		e = &job->ents[i];
		if (e->kind != UNZIP_LINK)
			continue;
		if (e->size > UNZIP_LINK_MAX)
			return unzip_fail_ent(job, e->name, e->len, "symlink "
			    "target longer than %d bytes", UNZIP_LINK_MAX);
		if ((n = unzip_read_entry(job, za, e, buf, sizeof(buf) - 1,
		    -1)) == -1)
			return -1;
		if (memchr(buf, '\0', (size_t)n) != NULL)
			return unzip_fail_ent(job, e->name, e->len, "symlink "
			    "target contains a NUL byte");
		buf[n] = '\0';
		if (!unzip_link_ok(e->name, buf, why, sizeof(why)))
			return unzip_fail_ent(job, e->name, e->len, "symlink "
			    "to '%s': %s", unzip_quote(buf, (size_t)n, q,
			    sizeof(q)), why);
		if ((e->target = strdup(buf)) == NULL)
			return unzip_fail(job, "out of memory");
	}
	/* All targets are known now: the chains can be followed. */
	for (i = 0; i < job->nents; i++)
		if (job->ents[i].kind == UNZIP_LINK &&
		    unzip_link_resolve(job, &job->ents[i]) == -1)
			return -1;
	return 0;
}

/*
 * Follows e's target from its directory the way the kernel will once the
 * tree exists, expanding the archive's own symlinks on the way.  Each
 * target passed unzip_link_ok alone, but a chain can still leave:
 * "d/up" -> ".." and "e" -> "d/up/.." are each fine lexically, yet "e"
 * is the root's parent.  A path that names nothing in the archive ends
 * the walk: the kernel stops there too (ENOENT, ENOTDIR), and no name
 * longer than UNZIP_NAME_MAX exists, which bounds path.
 */
static int
unzip_link_resolve(struct unzip_job *job, const struct unzip_ent *e)
{
	struct unzip_ent	*hit;
	const char		*p, *next, *cut;
	char			 path[UNZIP_NAME_MAX + 1];
	char			*rest, *more;
	size_t			 len, clen;
	int			 hops = 0, rc = 0;

	cut = strrchr(e->name, '/');
	len = cut != NULL ? (size_t)(cut - e->name) : 0;
	memcpy(path, e->name, len);
	path[len] = '\0';
	if ((rest = strdup(e->target)) == NULL)
		return unzip_fail(job, "out of memory");
	for (p = rest; p != NULL; p = next) {
		next = strchr(p, '/');
		clen = next != NULL ? (size_t)(next - p) : strlen(p);
		if (next != NULL)
			next++;
		if (clen == 0 || (clen == 1 && p[0] == '.'))
			continue;
		if (clen == 2 && p[0] == '.' && p[1] == '.') {
			if (len == 0) {
				rc = unzip_fail_ent(job, e->name, e->len,
				    "symlink leads out of the tree through "
				    "other symlinks");
				break;
			}
			cut = memrchr(path, '/', len);
			len = cut != NULL ? (size_t)(cut - path) : 0;
			path[len] = '\0';
			continue;
		}
		/* The last component is a link checked on its own, or not. */
		if (next == NULL || len + 1 + clen > UNZIP_NAME_MAX)
			break;
		cut = path + len;	/* where this component starts */
		if (len > 0)
			path[len++] = '/';
		memcpy(path + len, p, clen);
		path[len + clen] = '\0';
		if ((hit = unzip_find(job, path)) != NULL &&
		    hit->kind == UNZIP_LINK) {
			if (++hops > UNZIP_LINK_HOPS) {
				rc = unzip_fail_ent(job, e->name, e->len,
				    "too many levels of symlinks");
				break;
			}
			/* Go on from the link's directory, with its target. */
			len = (size_t)(cut - path);
			path[len] = '\0';
			if (asprintf(&more, "%s/%s", hit->target, next) == -1) {
				rc = unzip_fail(job, "out of memory");
				break;
			}
			free(rest);
			rest = more;
			next = rest;
			continue;
		}
		if (hit == NULL ? !unzip_is_dir(job, path, len + clen) :
		    hit->kind != UNZIP_DIR)
			break;	/* ENOENT or ENOTDIR: the kernel stops too */
		len += clen;
	}
	free(rest);
	return rc;
}

/*
 * Makes every directory the tree needs, listed or implied by a path, in
 * one thread before any file, with 0700 so files can go in; the final
 * modes come last.  Entries of one directory usually follow each other,
 * so the last one made saves most of the mkdir calls.
 */
static int
unzip_mkdirs(struct unzip_job *job)
{
	const struct unzip_ent	*e;
	const char		*cut;
	char			 last[UNZIP_NAME_MAX + 1] = "";
	size_t			 i, len;

	for (i = 0; i < job->nents; i++) {
		e = &job->ents[i];
		if (e->kind == UNZIP_DIR)
			len = e->len;
		else if ((cut = strrchr(e->name, '/')) != NULL)
			len = (size_t)(cut - e->name);
		else
			continue;
		if (strncmp(last, e->name, len) == 0 && last[len] == '\0')
			continue;
		if (unzip_mkdir_p(job, e->name, len) == -1)
			return -1;
		memcpy(last, e->name, len);
		last[len] = '\0';
	}
	return 0;
}

/*
 * mkdir -p of the first len bytes of name, relative to the root.  It
 * tries the deepest directory first and climbs only while a parent is
 * missing, so an existing parent costs one call, not one per level.
 * EEXIST can only mean a directory made earlier: the root was empty, no
 * file or symlink exists yet, and clashes were refused.
 */
static int
unzip_mkdir_p(struct unzip_job *job, const char *name, size_t len)
{
	char		 path[UNZIP_NAME_MAX + 1], ebuf[128];
	const char	*cut;
	size_t		 end = len;
	int		 made;

	memcpy(path, name, len);
	path[len] = '\0';
	for (;;) {
		if ((made = mkdirat(job->rootfd, path, 0700) == 0) ||
		    errno == EEXIST)
			break;
		if (errno != ENOENT || (cut = memrchr(path, '/', end)) == NULL)
			return unzip_fail_ent(job, path, end, "cannot create "
			    "directory: %s", strerror_r(errno, ebuf,
			    sizeof(ebuf)));
		end = (size_t)(cut - path);
		path[end] = '\0';
	}
	for (;;) {
		if (made && unzip_dir_made(job, path) == -1)
			return -1;
		if (end == len)
			return 0;
		/* Down again: the NUL at end was a '/'. */
		path[end] = '/';
		end += strlen(path + end);
		if (mkdirat(job->rootfd, path, 0700) == -1)
			return unzip_fail_ent(job, path, end, "cannot create "
			    "directory: %s", strerror_r(errno, ebuf,
			    sizeof(ebuf)));
		made = 1;
	}
}

/* Remembers a directory we made, for its final mode. */
static int
unzip_dir_made(struct unzip_job *job, const char *path)
{
	char	**nd;

	if (job->ndirs == job->dirscap) {
		job->dirscap = job->dirscap > 0 ? job->dirscap * 2 : 64;
		nd = reallocarray(job->dirs, job->dirscap, sizeof(*nd));
		if (nd == NULL)
			return unzip_fail(job, "out of memory");
		job->dirs = nd;
	}
	if ((job->dirs[job->ndirs] = strdup(path)) == NULL)
		return unzip_fail(job, "out of memory");
	job->ndirs++;
	return 0;
}

/*
 * Writes the files with lim->threads threads; the calling thread is one
 * of them and uses za.  Threads take files in archive order from one
 * counter, so the archive is still read mostly front to back.
 */
static int
unzip_run(struct unzip_job *job, zip_t *za)
{
	struct unzip_worker	w[UNZIP_THREADS_MAX];
	size_t			nt, i, started;

	nt = job->lim->threads > 1 ? job->lim->threads : 1;
	if (nt > UNZIP_THREADS_MAX)
		nt = UNZIP_THREADS_MAX;
	if (nt > job->nfiles)
		nt = job->nfiles > 0 ? job->nfiles : 1;
	unzip_progress(job, 1);
	for (i = 1, started = 1; i < nt; i++, started++) {
		w[i].job = job;
		w[i].za = NULL;
		if (pthread_create(&w[i].tid, NULL, unzip_worker, &w[i]) !=
		    0) {
			log_warn("unzip", "cannot start thread %zu; going on "
			    "with %zu", i, started);
			break;
		}
	}
	w[0].job = job;
	w[0].za = za;
	unzip_worker(&w[0]);
	for (i = 1; i < started; i++)
		pthread_join(w[i].tid, NULL);
	if (atomic_load(&job->failed))
		return -1;
	unzip_progress(job, 1);
	return atomic_load(&job->failed) ? -1 : 0;
}

static void *
unzip_worker(void *arg)
{
	struct unzip_worker	*w = arg;
	struct unzip_job	*job = w->job;
	zip_t			*za = w->za;
	zip_error_t		 zerr;
	char			*buf = NULL;
	size_t			 i;
	int			 zrc;

	if (za == NULL) {
		/*
		 * A handle of our own, opened by path: a dup'd descriptor
		 * would share the file offset.  The first open checked
		 * consistency already; this one need not again.
		 */
		if ((za = zip_open(job->path, ZIP_RDONLY, &zrc)) == NULL) {
			zip_error_init_with_code(&zerr, zrc);
			unzip_fail(job, "cannot open archive again: %s",
			    zip_error_strerror(&zerr));
			zip_error_fini(&zerr);
			return NULL;
		}
		if (zip_get_num_entries(za, 0) != (zip_int64_t)job->nents) {
			unzip_fail(job, "archive changed during extraction");
			goto out;
		}
	}
	if ((buf = malloc(UNZIP_BUFSZ)) == NULL) {
		unzip_fail(job, "out of memory");
		goto out;
	}
	while (!atomic_load(&job->failed)) {
		if ((i = atomic_fetch_add(&job->next, 1)) >= job->nfiles)
			break;
		if (unzip_write_file(job, za, &job->ents[job->files[i]],
		    buf) == -1)
			break;
		unzip_progress(job, atomic_fetch_add(&job->since, 1) + 1 >=
		    UNZIP_STEP_ENTRIES);
	}
out:
	free(buf);
	if (w->za == NULL)
		zip_discard(za);
	return NULL;
}

/*
 * O_EXCL fails on anything already there, a symlink included, and there
 * is none yet anyway.  The file is 0600 while written and gets its final
 * mode before it is synced, so the mode is durable with the data.
 */
static int
unzip_write_file(struct unzip_job *job, zip_t *za, struct unzip_ent *e,
    char *buf)
{
	char	ebuf[128];
	int	fd;

	fd = openat(job->rootfd, e->name, O_WRONLY | O_CREAT | O_EXCL |
	    O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd == -1)
		return unzip_fail_ent(job, e->name, e->len, "cannot create: "
		    "%s", strerror_r(errno, ebuf, sizeof(ebuf)));
	if (unzip_read_entry(job, za, e, buf, UNZIP_BUFSZ, fd) == -1) {
		close(fd);
		return -1;
	}
	/* Made durable all at once by syncfs() in unzip_finish_dirs(). */
	if (fchmod(fd, e->mode) == -1) {
		unzip_fail_ent(job, e->name, e->len, "cannot write: %s",
		    strerror_r(errno, ebuf, sizeof(ebuf)));
		close(fd);
		return -1;
	}
	if (close(fd) == -1)
		return unzip_fail_ent(job, e->name, e->len, "cannot write: %s",
		    strerror_r(errno, ebuf, sizeof(ebuf)));
	return 0;
}

/*
 * Reads e to its end, into fd, or into buf when fd is -1 (buf must then
 * hold more than e's declared size).  Reading to the end is what makes
 * libzip compare the CRC; the length is compared with the header here,
 * and every byte counts against the archive's limit before it is
 * written.  Returns the bytes read, or -1.
 */
static int64_t
unzip_read_entry(struct unzip_job *job, zip_t *za, struct unzip_ent *e,
    char *buf, size_t bufsz, int fd)
{
	zip_file_t	*zf;
	zip_int64_t	 n;
	uint64_t	 got = 0, total;
	ssize_t		 w;
	size_t		 off;
	char		 ebuf[128];
	int		 zrc;

	if ((zf = zip_fopen_index(za, e->index, 0)) == NULL)
		return unzip_fail_ent(job, e->name, e->len, "cannot read: %s",
		    zip_strerror(za));
	for (;;) {
		if (fd == -1)
			n = zip_fread(zf, buf + got, bufsz - got);
		else
			n = zip_fread(zf, buf, bufsz);
		if (n <= 0 || atomic_load(&job->failed))
			break;
		if ((uint64_t)n > e->size - got) {
			unzip_fail_ent(job, e->name, e->len, "more data than "
			    "the %" PRIu64 " bytes its header declares",
			    e->size);
			goto fail;
		}
		total = atomic_fetch_add(&job->written, (uint64_t)n) +
		    (uint64_t)n;
		if (total > job->lim->max_bytes) {
			unzip_fail(job, "archive expands to more than the "
			    "limit of %" PRIu64 " bytes", job->lim->max_bytes);
			goto fail;
		}
		got += (uint64_t)n;
		for (off = 0; fd != -1 && off < (size_t)n; off += (size_t)w) {
			w = write(fd, buf + off, (size_t)n - off);
			if (w == -1 && errno == EINTR)
				w = 0;
			else if (w == -1) {
				unzip_fail_ent(job, e->name, e->len, "cannot "
				    "write: %s", strerror_r(errno, ebuf,
				    sizeof(ebuf)));
				goto fail;
			}
		}
		if (fd != -1)
			unzip_progress(job, 0);
	}
	if (atomic_load(&job->failed))
		goto fail;
	/* libzip notices a short entry too, but says less about it. */
	if (got != e->size) {
		unzip_fail_ent(job, e->name, e->len, "%" PRIu64 " bytes of "
		    "data, but its header declares %" PRIu64 "%s%s%s", got,
		    e->size, n < 0 ? " (" : "", n < 0 ?
		    zip_file_strerror(zf) : "", n < 0 ? ")" : "");
		goto fail;
	}
	if (n < 0) {
		unzip_fail_ent(job, e->name, e->len, "cannot read: %s",
		    zip_file_strerror(zf));
		goto fail;
	}
	if ((zrc = zip_fclose(zf)) != 0) {
		zip_error_t	zerr;

		zip_error_init_with_code(&zerr, zrc);
		unzip_fail_ent(job, e->name, e->len, "cannot read: %s",
		    zip_error_strerror(&zerr));
		zip_error_fini(&zerr);
		return -1;
	}
	return (int64_t)got;
fail:
	zip_fclose(zf);
	return -1;
}

/* Only now, with every file closed, may the tree contain symlinks. */
static int
unzip_make_links(struct unzip_job *job)
{
	const struct unzip_ent	*e;
	char			 ebuf[128];
	size_t			 i;

	for (i = 0; i < job->nents; i++) {
		e = &job->ents[i];
		if (e->kind == UNZIP_LINK &&
		    symlinkat(e->target, job->rootfd, e->name) == -1)
			return unzip_fail_ent(job, e->name, e->len, "cannot "
			    "create symlink: %s", strerror_r(errno, ebuf,
			    sizeof(ebuf)));
	}
	return 0;
}

/*
 * Directories become read-only last, as a read-only directory takes no
 * new entries.  The root keeps its mode (the caller's rename needs it
 * writable).  Then one syncfs() makes every file and directory of the
 * tree durable: an fsync per file forces a cache flush per file and made
 * archives of many small files twice as slow as unzip(1), for the same
 * guarantee.  syncfs() also flushes other dirty data of the file system,
 * and since Linux 5.8 reports any write-back error there since rootfd was
 * opened; either is an acceptable price before a rename into place.
 */
static int
unzip_finish_dirs(struct unzip_job *job)
{
	char	ebuf[128];
	size_t	i;
	int	fd;

	if (job->ndirs > 0)
		qsort(job->dirs, job->ndirs, sizeof(*job->dirs),
		    unzip_cmp_depth);
	for (i = 0; i < job->ndirs; i++) {
		fd = openat(job->rootfd, job->dirs[i], O_RDONLY | O_DIRECTORY |
		    O_NOFOLLOW | O_CLOEXEC);
		if (fd == -1 || fchmod(fd, job->lim->writable ? 0755 : 0555) ==
		    -1) {
			unzip_fail_ent(job, job->dirs[i], strlen(job->dirs[i]),
			    "cannot finish directory: %s", strerror_r(errno,
			    ebuf, sizeof(ebuf)));
			if (fd != -1)
				close(fd);
			return -1;
		}
		close(fd);
	}
	if (syncfs(job->rootfd) == -1)
		return unzip_fail(job, "cannot sync the staging directory: %s",
		    strerror_r(errno, ebuf, sizeof(ebuf)));
	return 0;
}

/*
 * Calls the caller's progress function when ~1 MiB more was written, or
 * enough files, or when forced; the mutex keeps calls from overlapping.
 * A non-zero answer cancels every thread, and is recorded before the
 * mutex is let go so that no call follows it.
 */
static void
unzip_progress(struct unzip_job *job, int force)
{
	uint64_t	w, r;

	if (job->progress == NULL)
		return;
	w = atomic_load(&job->written);
	r = atomic_load(&job->reported);
	if (!force && (w < r || w - r < UNZIP_STEP))
		return;
	pthread_mutex_lock(&job->mtx);
	w = atomic_load(&job->written);
	r = atomic_load(&job->reported);
	if (!atomic_load(&job->failed) &&
	    (force || (w >= r && w - r >= UNZIP_STEP))) {
		atomic_store(&job->reported, w);
		atomic_store(&job->since, 0);
		if (job->progress(job->arg, w, job->declared) != 0) {
			snprintf(job->err, job->errlen, "cancelled");
			atomic_store(&job->failed, 1);
		}
	}
	pthread_mutex_unlock(&job->mtx);
}

/* The entry named key exactly, or NULL. */
static struct unzip_ent *
unzip_find(const struct unzip_job *job, const char *key)
{
	size_t	i;

	i = unzip_lower(job, key);
	if (i < job->nents && strcmp(job->sorted[i].name, key) == 0)
		return job->sorted[i].ent;
	return NULL;
}

/* Whether the first len bytes of name are a directory in the tree. */
static int
unzip_is_dir(const struct unzip_job *job, const char *name, size_t len)
{
	const struct unzip_ent	*e;
	char			 key[UNZIP_NAME_MAX + 2];
	size_t			 i;

	memcpy(key, name, len);
	key[len] = '\0';
	if ((e = unzip_find(job, key)) != NULL && e->kind == UNZIP_DIR)
		return 1;
	/* Implied by a longer name: "a/" sorts right before all of "a/...". */
	key[len] = '/';
	key[len + 1] = '\0';
	i = unzip_lower(job, key);
	return i < job->nents &&
	    strncmp(job->sorted[i].name, key, len + 1) == 0;
}

/* The first sorted entry whose name is not less than key. */
static size_t
unzip_lower(const struct unzip_job *job, const char *key)
{
	size_t	lo = 0, hi = job->nents, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (strcmp(job->sorted[mid].name, key) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Records the first failure; later ones (other threads') are dropped. */
static int
unzip_fail(struct unzip_job *job, const char *fmt, ...)
{
	va_list	ap;

	pthread_mutex_lock(&job->mtx);
	if (!atomic_load(&job->failed)) {
		va_start(ap, fmt);
		vsnprintf(job->err, job->errlen, fmt, ap);
		va_end(ap);
		atomic_store(&job->failed, 1);
	}
	pthread_mutex_unlock(&job->mtx);
	return -1;
}

/* A failure about one entry: "entry 'name': message". */
static int
unzip_fail_ent(struct unzip_job *job, const char *name, size_t len,
    const char *fmt, ...)
{
	va_list	ap;
	char	msg[UNZIP_MSG_MAX], q[UNZIP_QUOTE_MAX];

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return unzip_fail(job, "entry '%s': %s",
	    unzip_quote(name, len, q, sizeof(q)), msg);
}

static int
unzip_why(char *why, size_t whylen, const char *fmt, ...)
{
	va_list	ap;

	if (why != NULL && whylen > 0) {
		va_start(ap, fmt);
		vsnprintf(why, whylen, fmt, ap);
		va_end(ap);
	}
	return 0;
}

/*
 * A name fit for an error message: hostile names carry control
 * characters, and the message ends up in JSON and logs, so every byte
 * outside printable ASCII is shown as \xNN (UTF-8 names too: this is
 * only for messages).  Long names are cut with "...".
 */
static const char *
unzip_quote(const char *s, size_t len, char *buf, size_t buflen)
{
	unsigned char	c;
	size_t		i, o = 0;

	for (i = 0; i < len; i++) {
		if (buflen - o < 9) {
			memcpy(buf + o, "...", 4);
			return buf;
		}
		c = (unsigned char)s[i];
		if (c < 0x20 || c >= 0x7f)
			o += (size_t)snprintf(buf + o, buflen - o, "\\x%02x",
			    c);
		else
			buf[o++] = (char)c;
	}
	buf[o] = '\0';
	return buf;
}

/* Refuses backslashes and control characters; 1 if there are none. */
static int
unzip_bad_char(const char *s, size_t len, char *why, size_t whylen)
{
	unsigned char	c;
	size_t		i;

	for (i = 0; i < len; i++) {
		c = (unsigned char)s[i];
		if (c == '\\')
			return unzip_why(why, whylen, "contains a backslash");
		if (c < 0x20 || c == 0x7f)
			return unzip_why(why, whylen, "contains a control "
			    "character");
	}
	return 1;
}

static int
unzip_cmp_name(const void *a, const void *b)
{
	const struct unzip_key	*x = a, *y = b;

	return strcmp(x->name, y->name);
}

static int
unzip_cmp_span(const void *a, const void *b)
{
	const struct unzip_span	*x = a, *y = b;

	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	if (x->end != y->end)
		return x->end < y->end ? -1 : 1;
	/* Same run: archive order, so the message does not vary. */
	if (x->ent == NULL || y->ent == NULL)
		return x->ent == NULL ? 1 : -1;
	return x->ent->index < y->ent->index ? -1 : 1;
}

/* Deepest first: more slashes sort earlier. */
static int
unzip_cmp_depth(const void *a, const void *b)
{
	const char	*x = *(char *const *)a, *y = *(char *const *)b;
	size_t		 dx = 0, dy = 0;

	for (; *x != '\0'; x++)
		dx += *x == '/';
	for (; *y != '\0'; y++)
		dy += *y == '/';
	return dx > dy ? -1 : dx < dy ? 1 : 0;
}

static uint16_t
unzip_get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t
unzip_get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	    (uint32_t)p[3] << 24;
}

static uint64_t
unzip_get64(const uint8_t *p)
{
	return (uint64_t)unzip_get32(p) | (uint64_t)unzip_get32(p + 4) << 32;
}

static void
unzip_free(struct unzip_job *job)
{
	size_t	i;

	if (job->rootfd != -1)
		close(job->rootfd);
	for (i = 0; i < job->nents; i++) {
		free(job->ents[i].name);
		free(job->ents[i].target);
	}
	free(job->ents);
	free(job->sorted);
	free(job->files);
	for (i = 0; i < job->ndirs; i++)
		free(job->dirs[i]);
	free(job->dirs);
}
