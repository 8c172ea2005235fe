/*
 * uid: dynamic uids, exclusive machine-wide while a service holds one.
 *
 * One descriptor on the lock file serves every uid: the byte at offset
 * uid carries an OFD write lock while this daemon holds uid.  Locks of
 * one open file description never conflict with each other, so the
 * daemon also keeps the sorted set of uids it holds (uid_mine) and
 * refuses to hand one out twice itself.
 *
 * Releases must make every daemon's /proc scan stale, not only ours:
 * daemon A's scan may predate an escaped process of a service that
 * daemon B deletes and whose uid A then picks.  So a release first
 * writes a new value into the first 8 bytes of the lock file (byte-range
 * locks are advisory and leave its contents alone) and only then
 * unlocks; a scan remembers the value read before it began.  If A's lock
 * on u succeeds, B's unlock and so B's write came before; a value still
 * unchanged then means B's release predates the scan, whose walk saw
 * whatever of B's still ran as u.
 */
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "uid.h"

#define UID_SCAN_TTL_NS	1000000000LL	/* a /proc scan's longest use */
#define UID_DB_BUF_MAX	(1 << 22)	/* for a group with many members */
#define UID_NONE	((unsigned)-1)	/* (uid_t)-1 means "no change" */

/* Why a uid cannot be given to a service. */
enum uid_why {
	UID_FREE = 0,
	UID_OTHER,	/* another daemon holds the lock */
	UID_NAMED,	/* the user or group database names it */
	UID_PROCS,	/* a process runs as it */
};

/* A sorted set of uids. */
struct uid_set {
	unsigned	*v;
	size_t		 n, cap;
};

typedef int	(*uid_visit)(const unsigned *, void *);

static int		uid_fd = -1;
static char		uid_path[PATH_MAX];
static struct uid_set	uid_mine;	/* what this daemon holds */
static unsigned		uid_last;	/* the uid last given out */
static int		uid_has_last;
static uint64_t		uid_gen_base, uid_gen_count;

/* The last /proc scan: every uid a process ran as. */
static struct uid_set	uid_seen;
static int		uid_seen_ok;
static int64_t		uid_seen_at;	/* CLOCK_MONOTONIC, ns */
static uint64_t		uid_seen_gen;	/* the release value before it */
static uint64_t		uid_seen_serial;	/* counts scans */

static int	uid_open(const char *, char *, size_t);
static int	uid_ready(char *, size_t);
static int	uid_claim_begin(unsigned, char *, size_t);
static int	uid_why(unsigned, int, char *, size_t);
static int	uid_take(unsigned, int, char *, size_t);
static int	uid_round(unsigned, unsigned, unsigned, uint64_t, int *,
		    unsigned *, char *, size_t);
static int	uid_lockop(unsigned, int, short);
static int	uid_db_name(unsigned, int, char *, size_t);
static int	uid_gen_read(uint64_t *);
static void	uid_gen_bump(void);
static int64_t	uid_now(void);
static int	uid_scan_valid(void);
static int	uid_scan_fresh(char *, size_t);
static int	uid_scan(char *, size_t);
static int	uid_scan_add(const unsigned *, void *);
static int	uid_match(const unsigned *, void *);
static int	uid_proc_walk(uid_visit, void *);
static int	uid_proc_ids(int, const char *, unsigned *);
static int	uid_cmp(const void *, const void *);
static int	uid_set_find(const struct uid_set *, unsigned, size_t *);
static int	uid_set_reserve(struct uid_set *, size_t);
static void	uid_set_insert(struct uid_set *, unsigned);
static void	uid_set_remove(struct uid_set *, unsigned);
static void	uid_set_free(struct uid_set *);

int
uid_init(const char *path, char *err, size_t errlen)
{
	if (uid_fd != -1) {
		snprintf(err, errlen, "uid: lock file %s is already open",
		    uid_path);
		return -1;
	}
	if (path == NULL)
		path = UID_LOCK_PATH;
	if (snprintf(uid_path, sizeof(uid_path), "%s", path) >=
	    (int)sizeof(uid_path)) {
		snprintf(err, errlen, "uid lock file path too long: %.200s",
		    path);
		return -1;
	}
	if ((uid_fd = uid_open(uid_path, err, errlen)) == -1)
		return -1;
	/* Each release writes a value no other release wrote. */
	if (getrandom(&uid_gen_base, sizeof(uid_gen_base), GRND_NONBLOCK) !=
	    (ssize_t)sizeof(uid_gen_base))
		uid_gen_base = (uint64_t)getpid() << 32 ^ (uint64_t)uid_now();
	uid_gen_count = 0;
	uid_has_last = 0;
	uid_seen_ok = 0;
	return 0;
}

void
uid_fini(void)
{
	if (uid_fd == -1)
		return;
	/* Their processes may outlive us: other daemons must look again. */
	if (uid_mine.n > 0)
		uid_gen_bump();
	close(uid_fd);
	uid_fd = -1;
	uid_set_free(&uid_mine);
	uid_set_free(&uid_seen);
	uid_seen_ok = 0;
}

int
uid_claim(unsigned u, int check_procs, char *err, size_t errlen)
{
	uint64_t	serial = uid_seen_serial;
	int		r;

	if ((r = uid_claim_begin(u, err, errlen)) != 1)
		return r;
	if (check_procs && uid_scan_fresh(err, errlen) != 0)
		return -1;
	r = uid_why(u, check_procs, err, errlen);
	if (r == UID_PROCS && uid_seen_serial == serial) {
		/* Refused on a scan from before this call: look again. */
		if (uid_scan(err, errlen) != 0)
			return -1;
		r = uid_why(u, 1, err, errlen);
	}
	if (r == UID_FREE)
		r = uid_take(u, check_procs, err, errlen);
	return r == UID_FREE ? 0 : -1;
}

/*
 * At start-up, for a uid the store says a service holds: it was vetted
 * when it was given out, so only its lock is taken again (a user or
 * group lookup per service made a restart with 1 000 services slow).
 */
int
uid_reclaim(unsigned u, char *err, size_t errlen)
{
	int	r;

	if ((r = uid_claim_begin(u, err, errlen)) != 1)
		return r;
	return uid_take(u, 0, err, errlen) == UID_FREE ? 0 : -1;
}

/*
 * What a claim of u starts with: 0 if this daemon holds u already, -1
 * with err if it cannot go on, 1 to go on (with room to record u).
 */
static int
uid_claim_begin(unsigned u, char *err, size_t errlen)
{
	if (uid_ready(err, errlen) != 0)
		return -1;
	if (uid_set_find(&uid_mine, u, NULL))
		return 0;
	if (uid_set_reserve(&uid_mine, 1) != 0) {
		snprintf(err, errlen, "cannot claim uid %u: out of memory", u);
		return -1;
	}
	return 1;
}

int
uid_alloc(unsigned min, unsigned max, unsigned *out, char *err,
    size_t errlen)
{
	uint64_t	serial = uid_seen_serial;
	size_t		lo, hi;
	unsigned	start;
	int		r, stale = 0;

	if (uid_ready(err, errlen) != 0)
		return -1;
	if (min > max) {
		snprintf(err, errlen, "no uid range: service_uid_min (%u) is "
		    "above service_uid_max (%u)", min, max);
		return -1;
	}
	if (uid_set_reserve(&uid_mine, 1) != 0) {
		snprintf(err, errlen, "cannot pick a uid: out of memory");
		return -1;
	}
	if (uid_scan_fresh(err, errlen) != 0)
		return -1;
	start = uid_has_last && uid_last >= min && uid_last < max ?
	    uid_last + 1 : min;
	r = uid_round(min, max, start, serial, &stale, out, err, errlen);
	if (r > 0 && stale) {
		/* All refused, some on a scan from before the call. */
		if (uid_scan(err, errlen) != 0)
			return -1;
		r = uid_round(min, max, start, serial, &stale, out, err,
		    errlen);
	}
	if (r < 0)
		return -1;
	if (r > 0) {
		(void)uid_set_find(&uid_mine, min, &lo);
		for (hi = lo; hi < uid_mine.n && uid_mine.v[hi] <= max; hi++)
			;
		snprintf(err, errlen, "no free uid in %u-%u (service_uid_min, "
		    "service_uid_max): %zu held by this daemon, %llu by "
		    "others or in use; widen the range or delete services",
		    min, max, hi - lo,
		    (unsigned long long)((uint64_t)max - min + 1 - (hi - lo)));
		return -1;
	}
	uid_last = *out;
	uid_has_last = 1;
	return 0;
}

void
uid_release(unsigned u)
{
	if (uid_fd == -1 || !uid_set_find(&uid_mine, u, NULL))
		return;
	/* The new value before the unlock: see the top of the file. */
	uid_gen_bump();
	(void)uid_lockop(u, F_OFD_SETLK, F_UNLCK);
	uid_set_remove(&uid_mine, u);
	uid_seen_ok = 0;
}

int
uid_held(unsigned u)
{
	return uid_set_find(&uid_mine, u, NULL);
}

int
uid_busy(unsigned u)
{
	return uid_proc_walk(uid_match, &u);
}

/* Opens (creating) the lock file and checks who may write it. */
static int
uid_open(const char *path, char *err, size_t errlen)
{
	char		 dir[PATH_MAX], *slash;
	struct stat	 st;
	int		 fd;

	snprintf(dir, sizeof(dir), "%s", path);
	if ((slash = strrchr(dir, '/')) != NULL && slash != dir) {
		*slash = '\0';
		/* Where it is created, whatever the umask. */
		if (mkdir(dir, 0755) == 0)
			(void)chmod(dir, 0755);
		else if (errno != EEXIST) {
			snprintf(err, errlen, "cannot create %s for the uid "
			    "lock file: %s", dir, strerror(errno));
			return -1;
		}
	}
	if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW,
	    0600)) == -1) {
		snprintf(err, errlen, "cannot open uid lock file %s: %s", path,
		    strerror(errno));
		return -1;
	}
	/* Whoever may write it could lock every uid away from us. */
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
	    st.st_uid != geteuid() || (st.st_mode & 022) != 0) {
		snprintf(err, errlen, "uid lock file %s must be a regular "
		    "file of uid %u that no one else may write: remove it",
		    path, (unsigned)geteuid());
		close(fd);
		return -1;
	}
	return fd;
}

static int
uid_ready(char *err, size_t errlen)
{
	if (uid_fd != -1)
		return 0;
	snprintf(err, errlen, "uid: no lock file open (uid_init)");
	return -1;
}

/*
 * Why u cannot go to a service: UID_FREE, a reason with err, or -1 with
 * err.  The caller has checked uid_mine and, for procs, the scan.
 */
static int
uid_why(unsigned u, int procs, char *err, size_t errlen)
{
	char	name[256];
	int	r, group;

	if ((r = uid_lockop(u, F_OFD_GETLK, F_WRLCK)) != 0) {
		if (r < 0) {
			snprintf(err, errlen, "cannot test the lock of uid %u "
			    "in %s: %s", u, uid_path, strerror(errno));
			return -1;
		}
		snprintf(err, errlen, "uid %u is held by another nodee daemon "
		    "on this machine", u);
		return UID_OTHER;
	}
	if (procs && uid_set_find(&uid_seen, u, NULL)) {
		snprintf(err, errlen, "uid %u is in use: processes run as it",
		    u);
		return UID_PROCS;
	}
	if (u == UID_NONE) {
		snprintf(err, errlen, "uid %u is not a uid (it means none)", u);
		return UID_NAMED;
	}
	for (group = 0; group < 2; group++) {
		if ((r = uid_db_name(u, group, name, sizeof(name))) < 0) {
			snprintf(err, errlen, "cannot look uid %u up in the %s "
			    "database: %s", u, group ? "group" : "user",
			    strerror(errno));
			return -1;
		}
		if (r > 0) {
			snprintf(err, errlen, "uid %u is named in %s (%s %s)%s",
			    u, group ? "/etc/group" : "/etc/passwd",
			    group ? "group" : "user", name, group ?
			    "; a service's gid is its uid" : "");
			return UID_NAMED;
		}
	}
	return UID_FREE;
}

/*
 * Locks u and records it as ours: UID_FREE, a reason with err, or -1
 * with err.  uid_mine has room for one more.
 */
static int
uid_take(unsigned u, int procs, char *err, size_t errlen)
{
	int	busy;

	if (uid_lockop(u, F_OFD_SETLK, F_WRLCK) != 0) {
		if (errno != EAGAIN && errno != EACCES) {
			snprintf(err, errlen, "cannot lock uid %u in %s: %s",
			    u, uid_path, strerror(errno));
			return -1;
		}
		snprintf(err, errlen, "uid %u is held by another nodee daemon "
		    "on this machine", u);
		return UID_OTHER;
	}
	/* Released elsewhere since the scan (see the top of the file). */
	if (procs && !uid_scan_valid()) {
		busy = uid_scan(err, errlen) != 0 ? -1 :
		    uid_set_find(&uid_seen, u, NULL);
		if (busy != 0) {
			(void)uid_lockop(u, F_OFD_SETLK, F_UNLCK);
			if (busy < 0)
				return -1;
			snprintf(err, errlen, "uid %u is in use: processes "
			    "run as it", u);
			return UID_PROCS;
		}
	}
	uid_set_insert(&uid_mine, u);
	return UID_FREE;
}

/*
 * One round of [min, max] from start: UID_FREE with *out claimed, a
 * reason (UID_OTHER) if every candidate was refused, -1 with err.
 * *stale is set if a candidate was refused for processes seen by a scan
 * older than the call (serial: uid_seen_serial when it began).
 */
static int
uid_round(unsigned min, unsigned max, unsigned start, uint64_t serial,
    int *stale, unsigned *out, char *err, size_t errlen)
{
	uint64_t	i, span = (uint64_t)max - min + 1;
	unsigned	u;
	int		r;

	for (i = 0, u = start; i < span; i++, u = u == max ? min : u + 1) {
		if (uid_set_find(&uid_mine, u, NULL))
			continue;
		if ((r = uid_why(u, 1, err, errlen)) == UID_FREE)
			r = uid_take(u, 1, err, errlen);
		if (r == UID_FREE) {
			*out = u;
			return UID_FREE;
		}
		if (r < 0)
			return -1;
		if (r == UID_PROCS && uid_seen_serial == serial)
			*stale = 1;
	}
	return UID_OTHER;
}

/*
 * cmd on u's byte.  F_OFD_SETLK: 0, or -1 with EAGAIN or EACCES if
 * another open file description holds it.  F_OFD_GETLK (type F_WRLCK):
 * 1 if another description holds it, else 0.  Or -1 with errno.
 */
static int
uid_lockop(unsigned u, int cmd, short type)
{
	struct flock	fl;

	memset(&fl, 0, sizeof(fl));
	fl.l_type = type;
	fl.l_whence = SEEK_SET;
	fl.l_start = (off_t)u;
	fl.l_len = 1;
	if (fcntl(uid_fd, cmd, &fl) != 0)
		return -1;
	return cmd == F_OFD_GETLK && fl.l_type != F_UNLCK;
}

/*
 * The name the user (group 0) or group database gives id: 1 with name,
 * 0 if none, -1 with errno.  Any NSS source, so through getpwuid_r.
 */
static int
uid_db_name(unsigned id, int group, char *name, size_t namelen)
{
	struct passwd	 pw, *pwp = NULL;
	struct group	 gr, *grp = NULL;
	const char	*found;
	size_t		 len;
	char		*buf;
	int		 rc = ERANGE;

	for (len = 4096; rc == ERANGE && len <= UID_DB_BUF_MAX; len *= 2) {
		if ((buf = malloc(len)) == NULL)
			return -1;
		if (group) {
			rc = getgrgid_r(id, &gr, buf, len, &grp);
			found = rc == 0 && grp != NULL ? gr.gr_name : NULL;
		} else {
			rc = getpwuid_r(id, &pw, buf, len, &pwp);
			found = rc == 0 && pwp != NULL ? pw.pw_name : NULL;
		}
		if (found != NULL)
			snprintf(name, namelen, "%s", found);
		free(buf);
		if (found != NULL)
			return 1;
	}
	/* Some NSS modules say "not found" with an error (getpwuid_r(3)). */
	if (rc == 0 || rc == ENOENT || rc == ESRCH)
		return 0;
	errno = rc;
	return -1;
}

/* The value the last release wrote; 0 before any.  -1 on error. */
static int
uid_gen_read(uint64_t *gen)
{
	ssize_t	n;

	*gen = 0;
	if ((n = pread(uid_fd, gen, sizeof(*gen), 0)) < 0)
		return -1;
	if (n != (ssize_t)sizeof(*gen))
		*gen = 0;
	return 0;
}

static void
uid_gen_bump(void)
{
	uint64_t	gen = uid_gen_base + ++uid_gen_count;

	/* Unwritten, other daemons keep a scan up to a second: tolerable. */
	(void)pwrite(uid_fd, &gen, sizeof(gen), 0);
}

static int64_t
uid_now(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Whether the last scan may still be used to give a uid out. */
static int
uid_scan_valid(void)
{
	uint64_t	gen;

	if (!uid_seen_ok || uid_now() - uid_seen_at >= UID_SCAN_TTL_NS)
		return 0;
	return uid_gen_read(&gen) == 0 && gen == uid_seen_gen;
}

static int
uid_scan_fresh(char *err, size_t errlen)
{
	return uid_scan_valid() ? 0 : uid_scan(err, errlen);
}

/* Reads every process's uids into uid_seen. */
static int
uid_scan(char *err, size_t errlen)
{
	struct uid_set	 s = { NULL, 0, 0 };
	size_t		 i, n;
	int		 r;

	uid_seen_ok = 0;
	uid_seen_serial++;
	/* Before the walk: a release after this read shows as a change. */
	if (uid_gen_read(&uid_seen_gen) != 0) {
		snprintf(err, errlen, "cannot read uid lock file %s: %s",
		    uid_path, strerror(errno));
		return -1;
	}
	uid_seen_at = uid_now();
	if ((r = uid_proc_walk(uid_scan_add, &s)) != 0) {
		snprintf(err, errlen, "cannot list the processes in /proc: %s",
		    r == -2 ? "out of memory" : strerror(errno));
		uid_set_free(&s);
		return -1;
	}
	if (s.n > 0)
		qsort(s.v, s.n, sizeof(*s.v), uid_cmp);
	for (i = n = 0; i < s.n; i++)
		if (n == 0 || s.v[n - 1] != s.v[i])
			s.v[n++] = s.v[i];
	s.n = n;
	uid_set_free(&uid_seen);
	uid_seen = s;
	uid_seen_ok = 1;
	return 0;
}

/* Walk callback: appends a process's uids, unsorted; -2 out of memory. */
static int
uid_scan_add(const unsigned *ids, void *arg)
{
	struct uid_set	*s = arg;
	int		 i;

	if (uid_set_reserve(s, 4) != 0)
		return -2;
	for (i = 0; i < 4; i++)
		s->v[s->n++] = ids[i];
	return 0;
}

/* Walk callback: 1 (stop) if the process runs as *arg. */
static int
uid_match(const unsigned *ids, void *arg)
{
	unsigned	u = *(const unsigned *)arg;

	return ids[0] == u || ids[1] == u || ids[2] == u || ids[3] == u;
}

/*
 * Calls fn with the real, effective, saved and fs uid of every process
 * until fn returns non-zero, which it returns; 0 after all, -1 with
 * errno if /proc cannot be read whole.  No state: any thread.
 */
static int
uid_proc_walk(uid_visit fn, void *arg)
{
	struct dirent	*de;
	unsigned	 ids[4];
	DIR		*d;
	int		 rc = 0, saved;

	if ((d = opendir("/proc")) == NULL)
		return -1;
	for (;;) {
		errno = 0;
		if ((de = readdir(d)) == NULL) {
			rc = errno != 0 ? -1 : 0;
			break;
		}
		if (de->d_name[0] < '1' || de->d_name[0] > '9')
			continue;
		/* A process that ended meanwhile runs as no one. */
		if (uid_proc_ids(dirfd(d), de->d_name, ids) == 0 &&
		    (rc = fn(ids, arg)) != 0)
			break;
	}
	saved = errno;
	closedir(d);
	errno = saved;
	return rc;
}

/* The four uids of the "Uid:" line of /proc/<pid>/status; -1 if gone. */
static int
uid_proc_ids(int procfd, const char *pid, unsigned *ids)
{
	struct stat	 st;
	char		 path[64], buf[1024];
	const char	*p;
	ssize_t		 n;
	int		 fd;

	/*
	 * /proc/<pid> belongs to the effective uid of a dumpable process;
	 * a process whose ids differ was made non-dumpable when they
	 * changed (unless it asked otherwise), and its directory is root's.
	 * So one stat answers for most processes, and the status file is
	 * read for root's (a scan with thousands of service processes was
	 * 30-130 ms, most of it those reads).
	 */
	if (fstatat(procfd, pid, &st, 0) == 0 && st.st_uid != 0) {
		ids[0] = ids[1] = ids[2] = ids[3] = (unsigned)st.st_uid;
		return 0;
	}
	snprintf(path, sizeof(path), "%s/status", pid);
	if ((fd = openat(procfd, path, O_RDONLY | O_CLOEXEC)) == -1)
		return -1;
	/* Name, Umask, State and the pids come first: 1 KiB holds Uid. */
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	if ((p = strstr(buf, "\nUid:")) == NULL ||
	    sscanf(p + 5, "%u %u %u %u", &ids[0], &ids[1], &ids[2],
	    &ids[3]) != 4)
		return -1;
	return 0;
}

static int
uid_cmp(const void *a, const void *b)
{
	unsigned	x = *(const unsigned *)a, y = *(const unsigned *)b;

	return x < y ? -1 : x > y;
}

/* 1 if u is in s, else 0; *pos (if not NULL) is where u is or would go. */
static int
uid_set_find(const struct uid_set *s, unsigned u, size_t *pos)
{
	size_t	lo = 0, hi = s->n, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (s->v[mid] < u)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (pos != NULL)
		*pos = lo;
	return lo < s->n && s->v[lo] == u;
}

/* Room for more entries; -1 if out of memory. */
static int
uid_set_reserve(struct uid_set *s, size_t more)
{
	unsigned	*v;
	size_t		 cap;

	if (s->cap - s->n >= more)
		return 0;
	cap = s->cap < 64 ? 64 : s->cap;
	while (cap - s->n < more)
		cap *= 2;
	if ((v = reallocarray(s->v, cap, sizeof(*v))) == NULL)
		return -1;
	s->v = v;
	s->cap = cap;
	return 0;
}

/* Adds u, which is not in s; the caller reserved room. */
static void
uid_set_insert(struct uid_set *s, unsigned u)
{
	size_t	pos;

	(void)uid_set_find(s, u, &pos);
	memmove(s->v + pos + 1, s->v + pos, (s->n - pos) * sizeof(*s->v));
	s->v[pos] = u;
	s->n++;
}

static void
uid_set_remove(struct uid_set *s, unsigned u)
{
	size_t	pos;

	if (!uid_set_find(s, u, &pos))
		return;
	memmove(s->v + pos, s->v + pos + 1, (s->n - pos - 1) * sizeof(*s->v));
	s->n--;
}

static void
uid_set_free(struct uid_set *s)
{
	free(s->v);
	s->v = NULL;
	s->n = s->cap = 0;
}
