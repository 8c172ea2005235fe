/*
 * unit: what the unit tests share.  Each test that touches the file system
 * gets its own scratch directory under /tmp (cmocka setup and teardown),
 * so tests neither see each other's files nor leave any behind, and an
 * assertion for error texts, which are what users read.  Included only by
 * tests/unit/test_*.c; everything is static inline so that a test file
 * that does not use a helper still compiles with -Werror.
 */
#ifndef NODEE_UNIT_H
#define NODEE_UNIT_H

#include <sys/stat.h>

#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* cmocka.h needs these first. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#ifndef nitems
#define nitems(a)	(sizeof(a) / sizeof((a)[0]))
#endif

/*
 * A message must name what was wrong; the test names the part that has
 * to be there and prints the whole message when it is not.
 */
#define assert_contains(hay, needle) do {				\
	const char	*unit_h = (hay), *unit_n = (needle);		\
									\
	if (unit_h == NULL || strstr(unit_h, unit_n) == NULL)		\
		fail_msg("\"%s\" does not contain \"%s\"",		\
		    unit_h ? unit_h : "(null)", unit_n);		\
} while (0)

static inline int
unit_rm_one(const char *path, const struct stat *st, int type,
    struct FTW *ftw)
{
	(void)st;
	(void)type;
	(void)ftw;
	return remove(path);
}

/* rm -rf: a failed test may leave anything, read-only modes included. */
static inline void
unit_rmtree(const char *dir)
{
	(void)nftw(dir, unit_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* setup: *state becomes a new empty directory, its path (PATH_MAX). */
static inline int
unit_dir_setup(void **state)
{
	char	*dir;

	if ((dir = malloc(PATH_MAX)) == NULL)
		return -1;
	snprintf(dir, PATH_MAX, "/tmp/nodee-unit-XXXXXX");
	if (mkdtemp(dir) == NULL) {
		free(dir);
		return -1;
	}
	*state = dir;
	return 0;
}

/* teardown: removes the directory, whatever the test left in it. */
static inline int
unit_dir_teardown(void **state)
{
	unit_rmtree(*state);
	free(*state);
	return 0;
}

static inline int
unit_unlock_one(const char *path, const struct stat *st, int type,
    struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (type == FTW_D || type == FTW_DNR)
		(void)chmod(path, 0700);
	return 0;
}

/* teardown for trees made read-only (extracted archives): unlock first. */
static inline int
unit_dir_teardown_ro(void **state)
{
	(void)nftw(*state, unit_unlock_one, 16, FTW_PHYS);
	return unit_dir_teardown(state);
}

/* "dir/name" into out, which has PATH_MAX bytes. */
static inline void
unit_path(char *out, const char *dir, const char *name)
{
	assert_true(snprintf(out, PATH_MAX, "%s/%s", dir, name) < PATH_MAX);
}

/* Writes text to path with exactly mode, whatever the umask. */
static inline void
unit_write(const char *path, const char *text, mode_t mode)
{
	size_t	len = strlen(text);
	int	fd;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	assert_true(fd != -1);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	assert_int_equal(fchmod(fd, mode), 0);
	assert_int_equal(close(fd), 0);
}

/* Reads all of a small file into buf as a string. */
static inline void
unit_read(const char *path, char *buf, size_t len)
{
	ssize_t	n;
	int	fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(fd != -1);
	n = read(fd, buf, len - 1);
	assert_true(n >= 0);
	buf[n] = '\0';
	close(fd);
}

#endif
