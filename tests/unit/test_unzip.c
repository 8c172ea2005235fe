/*
 * test_unzip: unpacking archives, honest and hostile.  Archives are made
 * at test time: with libzip's writing API where libzip can make them,
 * and byte by byte (zb_*) where it will not (overlapping entries,
 * duplicate names, a NUL in a name, a bad CRC, a size that lies,
 * encryption flags, ZIP64 records).  Every hostile case must be refused
 * with a message that names the problem, and nothing may appear beside
 * the staging directory: each test has a sentinel directory next to it
 * that must stay empty.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zip.h>

#include "unzip.h"
#include "unit.h"

#define ERRLEN		1024
#define ZB_MAX		(64 * 1024)

/* An archive built by hand, in memory. */
struct zb {
	uint8_t	b[ZB_MAX];
	size_t	len;
};

/* What a test's progress function saw, and when it cancels. */
struct prog {
	int		calls;
	int		cancel_at;	/* 0: never */
	uint64_t	done, total;
};

/* tree_list's state: nftw passes none. */
static char	**tree_lines;
static size_t	  tree_n, tree_root;

/* Copies of the data given to libzip, which reads them at zip_close. */
static void	**zw_bufs;
static size_t	  zw_nbufs;

static void	test_name_ok(void **);
static void	test_link_ok(void **);
static void	test_normal(void **);
static void	test_empty_archive(void **);
static void	test_bad_names(void **);
static void	test_nul_name(void **);
static void	test_duplicate(void **);
static void	test_file_dir_clash(void **);
static void	test_overlap_same_header(void **);
static void	test_overlap_quoted(void **);
static void	test_crc(void **);
static void	test_size_lies(void **);
static void	test_encrypted(void **);
static void	test_max_entries(void **);
static void	test_max_bytes(void **);
static void	test_modes_stripped(void **);
static void	test_windows(void **);
static void	test_symlink_inside(void **);
static void	test_symlink_outside(void **);
static void	test_symlink_chain(void **);
static void	test_symlink_write_through(void **);
static void	test_threads(void **);
static void	test_cancel(void **);
static void	test_progress(void **);
static void	test_not_empty(void **);
static void	test_not_zip(void **);
static void	test_zip64(void **);

static int	fx_setup(void **);
static void	fx_paths(const char *, char *, char *);
static int	fx_extract(const char *, const struct unzip_limits *,
		    struct unzip_stats *, char *);
static void	fx_refused(const char *, const struct unzip_limits *,
		    const char *, const char *);
static void	fx_clean(const char *);
static struct unzip_limits	fx_limits(void);
static zip_t	*zw_new(const char *);
static zip_int64_t	zw_add(zip_t *, const char *, const void *, size_t,
		    zip_uint8_t, uint32_t);
static void	zw_link(zip_t *, const char *, const char *);
static void	zw_close(zip_t *);
static void	zb_put(struct zb *, const void *, size_t);
static void	zb_16(struct zb *, uint16_t);
static void	zb_32(struct zb *, uint32_t);
static void	zb_64(struct zb *, uint64_t);
static uint32_t	zb_local(struct zb *, const char *, size_t, const void *,
		    size_t, uint16_t, uint32_t, uint32_t);
static void	zb_central(struct zb *, const char *, size_t, size_t,
		    uint16_t, uint32_t, uint32_t, uint32_t);
static void	zb_end(struct zb *, uint16_t, uint32_t);
static void	zb_local64(struct zb *, const char *, const void *, size_t,
		    uint32_t);
static void	zb_central64(struct zb *, const char *, size_t, uint32_t,
		    uint64_t);
static void	zb_end64(struct zb *, uint64_t, uint64_t);
static void	zb_write(const struct zb *, const char *);
static uint32_t	crc32_of(const void *, size_t);
static void	expect_file(const char *, const char *, const void *, size_t,
		    mode_t);
static void	expect_mode(const char *, const char *, mode_t);
static char	*tree_list(const char *);
static int	tree_one(const char *, const struct stat *, int,
		    struct FTW *);
static int	tree_cmp(const void *, const void *);
static int	prog_fn(void *, uint64_t, uint64_t);

int
main(void)
{
	const struct CMUnitTest	tests[] = {
		cmocka_unit_test(test_name_ok),
		cmocka_unit_test(test_link_ok),
#define FX(t)	cmocka_unit_test_setup_teardown(t, fx_setup, unit_dir_teardown_ro)
		FX(test_normal),
		FX(test_empty_archive),
		FX(test_bad_names),
		FX(test_nul_name),
		FX(test_duplicate),
		FX(test_file_dir_clash),
		FX(test_overlap_same_header),
		FX(test_overlap_quoted),
		FX(test_crc),
		FX(test_size_lies),
		FX(test_encrypted),
		FX(test_max_entries),
		FX(test_max_bytes),
		FX(test_modes_stripped),
		FX(test_windows),
		FX(test_symlink_inside),
		FX(test_symlink_outside),
		FX(test_symlink_chain),
		FX(test_symlink_write_through),
		FX(test_threads),
		FX(test_cancel),
		FX(test_progress),
		FX(test_not_empty),
		FX(test_not_zip),
		FX(test_zip64),
#undef FX
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

static void
test_name_ok(void **state)
{
	static const char	*good[] = {
		"a", "a/b", "a/b/", "dir/", "a.b", ".hidden", "..a", "a..",
		"...", "a b", "ab:c", "\xc3\xbc", "node_modules/.bin/x",
	};
	static const struct {
		const char	*name;
		const char	*why;
	} bad[] = {
		{ "/a", "absolute" },
		{ "/", "absolute" },
		{ "a\\b", "backslash" },
		{ "..\\x", "backslash" },
		{ "C:/x", "drive" },
		{ "c:x", "drive" },
		{ "C:", "drive" },
		{ "..", "'..'" },
		{ "../a", "'..'" },
		{ "a/..", "'..'" },
		{ "a/../b", "'..'" },
		{ "../", "'..'" },
		{ ".", "'.'" },
		{ "./a", "'.'" },
		{ "a/./b", "'.'" },
		{ "a//b", "empty component" },
		{ "a/b//", "empty component" },
		{ "//", "absolute" },
		{ "a\x01", "control" },
		{ "a\x7f", "control" },
		{ "a\nb", "control" },
		{ "a\tb", "control" },
	};
	char	 why[128], *p;
	size_t	 i;

	(void)state;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		why[0] = '\0';
		if (!unzip_name_ok(good[i], strlen(good[i]), why,
		    sizeof(why)))
			fail_msg("'%s' refused: %s", good[i], why);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why[0] = '\0';
		if (unzip_name_ok(bad[i].name, strlen(bad[i].name), why,
		    sizeof(why)))
			fail_msg("'%s' accepted", bad[i].name);
		assert_contains(why, bad[i].why);
	}
	assert_int_equal(unzip_name_ok("", 0, why, sizeof(why)), 0);
	assert_contains(why, "empty");
	/* The true length shows a NUL that strlen would hide. */
	assert_int_equal(unzip_name_ok("a\0b", 3, why, sizeof(why)), 0);
	assert_contains(why, "NUL");

	assert_non_null(p = malloc(5000));
	memset(p, 'a', 4999);
	p[4999] = '\0';
	for (i = 255; i < 4999; i += 256)
		p[i] = '/';		/* components of 255 bytes */
	assert_int_equal(unzip_name_ok(p, 4096, why, sizeof(why)), 1);
	assert_int_equal(unzip_name_ok(p, 4097, why, sizeof(why)), 0);
	assert_contains(why, "longer than 4096");
	memset(p, 'a', 256);
	p[256] = '\0';
	assert_int_equal(unzip_name_ok(p, 255, why, sizeof(why)), 1);
	assert_int_equal(unzip_name_ok(p, 256, why, sizeof(why)), 0);
	assert_contains(why, "component longer than 255");
	free(p);
}

static void
test_link_ok(void **state)
{
	static const struct {
		const char	*name;
		const char	*target;
	} good[] = {
		{ "a/b", "../c" },
		{ "a", "b" },
		{ "a", "./b" },
		{ "a", "b/" },
		{ "a/b/c", "../../d" },
		{ "a", "b/../c" },
		{ "a/b", "../a/b/../c" },
		{ "a/b", ".." },
		{ "x", "." },
		{ "lib/libz.so", "libz.so.1.2.13" },
	};
	static const struct {
		const char	*name;
		const char	*target;
		const char	*why;
	} bad[] = {
		{ "a", "../x", "out of the tree" },
		{ "a", "..", "out of the tree" },
		{ "a/b", "../../x", "out of the tree" },
		{ "x", "y/../../z", "out of the tree" },
		{ "a/b", "c/../../../d", "out of the tree" },
		{ "x", "/etc/passwd", "absolute" },
		{ "x", "", "empty" },
		{ "x", "a\\b", "backslash" },
		{ "x", "a\x01", "control" },
		{ "../a", "b", "bad link name" },
		{ "/a", "b", "bad link name" },
	};
	char	why[256];
	size_t	i;

	(void)state;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		why[0] = '\0';
		if (!unzip_link_ok(good[i].name, good[i].target, why,
		    sizeof(why)))
			fail_msg("'%s' -> '%s' refused: %s", good[i].name,
			    good[i].target, why);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why[0] = '\0';
		if (unzip_link_ok(bad[i].name, bad[i].target, why,
		    sizeof(why)))
			fail_msg("'%s' -> '%s' accepted", bad[i].name,
			    bad[i].target);
		assert_contains(why, bad[i].why);
	}
}

static void
test_normal(void **state)
{
	const char		*base = *state;
	struct unzip_limits	 lim = fx_limits();
	struct unzip_stats	 st;
	char			 zip[PATH_MAX], stage[PATH_MAX], err[ERRLEN];
	char			*big;
	zip_t			*za;
	size_t			 i, bigl = 3 * 1024 * 1024 + 17;

	fx_paths(base, zip, stage);
	assert_non_null(big = malloc(bigl));
	for (i = 0; i < bigl; i++)
		big[i] = (char)("compressible "[i % 13]);
	za = zw_new(zip);
	zw_add(za, "README", "hello\n", 6, ZIP_OPSYS_UNIX, 0100644);
	zw_add(za, "bin/run", "#!/bin/sh\n", 10, ZIP_OPSYS_UNIX, 0100755);
	assert_true(zip_dir_add(za, "lib", 0) >= 0);
	zw_add(za, "lib/x/y.txt", "deep", 4, ZIP_OPSYS_UNIX, 0100600);
	zw_add(za, "empty", "", 0, ZIP_OPSYS_UNIX, 0100644);
	zw_add(za, "share/big", big, bigl, ZIP_OPSYS_UNIX, 0100644);
	zw_close(za);

	memset(&st, 0xff, sizeof(st));
	if (unzip_extract(zip, stage, &lim, NULL, NULL, &st, err,
	    sizeof(err)) != 0)
		fail_msg("extract: %s", err);
	expect_file(stage, "README", "hello\n", 6, 0444);
	expect_file(stage, "bin/run", "#!/bin/sh\n", 10, 0555);
	expect_file(stage, "lib/x/y.txt", "deep", 4, 0444);
	expect_file(stage, "empty", "", 0, 0444);
	expect_file(stage, "share/big", big, bigl, 0444);
	expect_mode(stage, "bin", S_IFDIR | 0555);
	expect_mode(stage, "lib", S_IFDIR | 0555);
	expect_mode(stage, "lib/x", S_IFDIR | 0555);
	expect_mode(stage, "share", S_IFDIR | 0555);
	assert_int_equal(st.files, 5);
	assert_int_equal(st.dirs, 4);	/* bin, lib, lib/x, share */
	assert_int_equal(st.symlinks, 0);
	assert_int_equal(st.bytes, 6 + 10 + 4 + 0 + bigl);
	fx_clean(base);
	free(big);
}

static void
test_empty_archive(void **state)
{
	const char		*base = *state;
	struct unzip_limits	 lim = fx_limits();
	struct unzip_stats	 st;
	char			 zip[PATH_MAX], stage[PATH_MAX], err[ERRLEN];
	struct zb		 z;

	fx_paths(base, zip, stage);
	memset(&z, 0, sizeof(z));
	zb_end(&z, 0, 0);
	zb_write(&z, zip);
	if (fx_extract(base, &lim, &st, err) != 0)
		fail_msg("extract: %s", err);
	assert_int_equal(st.files + st.dirs + st.symlinks + st.bytes, 0);
}

/* Each hostile name alone in an archive, refused with its reason. */
static void
test_bad_names(void **state)
{
	static const struct {
		const char	*name;
		const char	*err;
	} cases[] = {
		{ "../evil", "entry '../evil': '..' component" },
		{ "a/../../evil", "'..' component" },
		{ "/tmp/evil", "entry '/tmp/evil': absolute path" },
		{ "..\\evil", "backslash" },
		{ "C:/evil", "drive" },
		{ "a//evil", "empty component" },
		{ "./evil", "'.' component" },
		{ "evil\x01", "entry 'evil\\x01': contains a control" },
	};
	const char		*base = *state;
	struct unzip_limits	 lim = fx_limits();
	char			 zip[PATH_MAX], stage[PATH_MAX];
	zip_t			*za;
	size_t			 i;

	fx_paths(base, zip, stage);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		za = zw_new(zip);
		zw_add(za, "fine", "x", 1, ZIP_OPSYS_UNIX, 0100644);
		zw_add(za, cases[i].name, "pwned", 5, ZIP_OPSYS_UNIX,
		    0100644);
		zw_close(za);
		fx_refused(base, &lim, cases[i].err, NULL);
		fx_clean(base);
	}
}

/* libzip shows "a\0b" as "a b"; the raw bytes must be what is judged. */
static void
test_nul_name(void **state)
{
	const char		*base = *state;
	struct unzip_limits	 lim = fx_limits();
	char			 zip[PATH_MAX], stage[PATH_MAX];
	struct zb		 z;
	uint32_t		 off, cd, crc = crc32_of("x", 1);

	fx_paths(base, zip, stage);
	memset(&z, 0, sizeof(z));
	off = zb_local(&z, "a\0b", 3, "x", 1, 0, crc, 1);
	cd = (uint32_t)z.len;
	zb_central(&z, "a\0b", 3, 1, 0, crc, 1, off);
	zb_end(&z, 1, cd);
	zb_write(&z, zip);
	fx_refused(base, &lim, "entry 'a\\x00b': contains a NUL byte", NULL);
}

static void
test_duplicate(void **state)
{
	const char		*base = *state;
	struct unzip_limits	 lim = fx_limits();
	char			 zip[PATH_MAX], stage[PATH_MAX];
	struct zb		 z;
	uint32_t		 o1, o2, cd, c1, c2;
	zip_t			*za;

	fx_paths(base, zip, stage);
	/* Same name twice: libzip will not write it. */
	memset(&z, 0, sizeof(z));
	c1 = crc32_of("one", 3);
	c2 = crc32_of("two", 3);
	o1 = zb_local(&z, "dup", 3, "one", 3, 0, c1, 3);
	o2 = zb_local(&z, "dup", 3, "two", 3, 0, c2, 3);
	cd = (uint32_t)z.len;
	zb_central(&z, "dup", 3, 3, 0, c1, 3, o1);
	zb_central(&z, "dup", 3, 3, 0, c2, 3, o2);
	zb_end(&z, 2, cd);
	zb_write(&z, zip);
	fx_refused(base, &lim, "entry 'dup': appears twice", NULL);

	/* A file and a directory of the same name. */
	za = zw_new(zip);
	zw_add(za, "x", "file", 4, ZIP_OPSYS_UNIX, 0100644);
	assert_true(zip_dir_add(za, "x", 0) >= 0);
	zw_close(za);
	fx_refused(base, &lim, "entry 'x': appears twice", NULL);
}

static void
test_file_dir_clash(void **state)
{
	const char		*base = *state;
	struct unzip_limits	 lim = fx_limits();
	char			 zip[PATH_MAX], stage[PATH_MAX];
	zip_t			*za;

	fx_paths(base, zip, stage);
	za = zw_new(zip);
	zw_add(za, "a", "file", 4, ZIP_OPSYS_UNIX, 0100644);
	zw_add(za, "a-b", "file", 4, ZIP_OPSYS_UNIX, 0100644);
	zw_add(za, "a/b", "file", 4, ZIP_OPSYS_UNIX, 0100644);
	zw_close(za);
	fx_refused(base, &lim, "entry 'a': is a file, but other entries use "
	    "it as a directory", NULL);
}

/* Two central entries pointing at one local header. */
static void
test_overlap_same_header(void **state)
{
	const char		*base = *state;
	struct unzip_limits	 lim = fx_limits();
	char			 zip[PATH_MAX], stage[PATH_MAX];
	struct zb		 z;
	uint32_t		 off, cd, crc = crc32_of("bomb", 4);

	fx_paths(base, zip, stage);
	memset(&z, 0, sizeof(z));
	off = zb_local(&z, "a", 1, "bomb", 4, 0, crc, 4);
	cd = (uint32_t)z.len;
	zb_central(&z, "a", 1, 4, 0, crc, 4, off);
	zb_central(&z, "b", 1, 4, 0, crc, 4, off);
	zb_end(&z, 2, cd);
	zb_write(&z, zip);
	fx_refused(base, &lim, "entries 'a' and 'b' overlap", "zip bomb");
}

/*
 * David Fifield's construction: each entry's data quotes the next
 * entry's local header, so every header matches its central entry (and
 * libzip's consistency check) while the data overlaps.
 */
static void
test_overlap_quoted(void **state)
{
	const char		*base = *state;
	struct unzip_limits	 lim = fx_limits();
	char			 zip[PATH_MAX], stage[PATH_MAX];
	struct zb		 inner, z;
	uint32_t		 cd, ci, co, offb;

	fx_paths(base, zip, stage);
	memset(&inner, 0, sizeof(inner));
	ci = crc32_of("kernel", 6);
	(void)zb_local(&inner, "b", 1, "kernel", 6, 0, ci, 6);
	memset(&z, 0, sizeof(z));
	co = crc32_of(inner.b, inner.len);
	(void)zb_local(&z, "a", 1, inner.b, inner.len, 0, co,
	    (uint32_t)inner.len);
	offb = 30 + 1;		/* b's header is a's data */
	cd = (uint32_t)z.len;
	zb_central(&z, "a", 1, inner.len, 0, co, (uint32_t)inner.len, 0);
	zb_central(&z, "b", 1, 6, 0, ci, 6, offb);
	zb_end(&z, 2, cd);
	zb_write(&z, zip);
	fx_refused(base, &lim, "entries 'a' and 'b' overlap", NULL);
}

static void
test_crc(void **state)
{
	const char		*base = *state;
	struct unzip_limits	 lim = fx_limits();
	char			 zip[PATH_MAX], stage[PATH_MAX];
	struct zb		 z;
	uint32_t		 off, cd, crc = crc32_of("payload", 7);

	fx_paths(base, zip, stage);
	memset(&z, 0, sizeof(z));
	off = zb_local(&z, "f", 1, "payload", 7, 0, crc, 7);
	z.b[off + 30 + 1 + 3] ^= 0x20;	/* "payload" -> "paYload" */
	cd = (uint32_t)z.len;
	zb_central(&z, "f", 1, 7, 0, crc, 7, off);
	zb_end(&z, 1, cd);
	zb_write(&z, zip);
	fx_refused(base, &lim, "entry 'f'", "CRC");
}

/* The uncompressed size in both headers says more, then less. */
static void
test_size_lies(void **state)
{
	const char		*base = *state;
	struct unzip_limits	 lim = fx_limits();
	char			 zip[PATH_MAX], stage[PATH_MAX];
	struct zb		 z;
	uint32_t		 off, cd, crc = crc32_of("0123456789", 10);
	static const uint32_t	 sizes[] = { 15, 4 };
	size_t			 i;

	fx_paths(base, zip, stage);
	for (i = 0; i < 2; i++) {
		memset(&z, 0, sizeof(z));
		off = zb_local(&z, "f", 1, "0123456789", 10, 0, crc,
		    sizes[i]);
		cd = (uint32_t)z.len;
		zb_central(&z, "f", 1, 10, 0, crc, sizes[i], off);
		zb_end(&z, 1, cd);
		zb_write(&z, zip);
		fx_refused(base, &lim, "entry 'f'", i == 0 ?
		    "10 bytes of data, but its header declares 15" :
		    "more data than the 4 bytes its header declares");
		fx_clean(base);
	}
}

static void
test_encrypted(void **state)
{
	const char		*base = *state;
	struct unzip_limits	 lim = fx_limits();
	char			 zip[PATH_MAX], stage[PATH_MAX];
	struct zb		 z;
	uint32_t		 off, cd, crc = crc32_of("secret", 6);

	fx_paths(base, zip, stage);
	memset(&z, 0, sizeof(z));
	off = zb_local(&z, "s", 1, "secret", 6, 1, crc, 6);
	cd = (uint32_t)z.len;
	zb_central(&z, "s", 1, 6, 1, crc, 6, off);
	zb_end(&z, 1, cd);
	zb_write(&z, zip);
	fx_refused(base, &lim, "entry 's': encrypted", NULL);
}

static void
test_max_entries(void **state)
{
	const char		*base = *state;
	struct unzip_limits	 lim = fx_limits();
	struct unzip_stats	 st;
	char			 zip[PATH_MAX], stage[PATH_MAX], err[ERRLEN];
	char			 name[32];
	zip_t			*za;
	int			 i;

	fx_paths(base, zip, stage);
	za = zw_new(zip);
	for (i = 0; i < 5; i++) {
		snprintf(name, sizeof(name), "f%d", i);
		zw_add(za, name, "x", 1, ZIP_OPSYS_UNIX, 0100644);
	}
	zw_close(za);
	lim.max_entries = 4;
	fx_refused(base, &lim, "5 entries, more than the limit of 4", NULL);
	lim.max_entries = 5;
	if (fx_extract(base, &lim, &st, err) != 0)
		fail_msg("extract: %s", err);
	assert_int_equal(st.files, 5);
}

/*
 * 8 MiB of zeros deflate to a few KiB.  Told the truth, the headers
 * refuse it before writing; told a lie (a 1000-byte size), the bytes
 * are counted as they come and it stops at the declared size.
 */
static void
test_max_bytes(void **state)
{
	const char		*base = *state;
	struct unzip_limits	 lim = fx_limits();
	struct unzip_stats	 st;
	struct stat		 sb;
	char			 zip[PATH_MAX], stage[PATH_MAX], err[ERRLEN];
	char			 path[PATH_MAX];
	uint8_t			*buf;
	size_t			 len, zlen, i;
	zip_t			*za;
	FILE			*f;
	int			 patched = 0;

	fx_paths(base, zip, stage);
	len = 8 << 20;
	assert_non_null(buf = calloc(1, len));
	za = zw_new(zip);
	zw_add(za, "small", "x", 1, ZIP_OPSYS_UNIX, 0100644);
	zw_add(za, "zeros", buf, len, ZIP_OPSYS_UNIX, 0100644);
	zw_close(za);
	free(buf);

	lim.max_bytes = 1 << 20;
	fx_refused(base, &lim, "declares 8388609 bytes uncompressed, more "
	    "than the limit of 1048576", NULL);
	lim.max_bytes = len + 1;
	if (fx_extract(base, &lim, &st, err) != 0)
		fail_msg("extract: %s", err);
	assert_int_equal(st.bytes, len + 1);
	fx_clean(base);

	/* Now the headers lie: 8 MiB declared as 1000 bytes, both headers. */
	assert_non_null(f = fopen(zip, "r+b"));
	assert_non_null(buf = malloc(1 << 20));
	zlen = fread(buf, 1, 1 << 20, f);
	for (i = 0; i + 46 < zlen; i++) {
		if (memcmp(buf + i, "PK\3\4", 4) == 0 &&
		    memcmp(buf + i + 30, "zeros", 5) == 0) {
			memcpy(buf + i + 22, "\xe8\3\0\0", 4);
			patched++;
		}
		if (memcmp(buf + i, "PK\1\2", 4) == 0 &&
		    memcmp(buf + i + 46, "zeros", 5) == 0) {
			memcpy(buf + i + 24, "\xe8\3\0\0", 4);
			patched++;
		}
	}
	assert_int_equal(patched, 2);
	rewind(f);
	assert_int_equal(fwrite(buf, 1, zlen, f), zlen);
	assert_int_equal(fclose(f), 0);
	free(buf);
	assert_int_equal(fx_extract(base, &lim, NULL, err), -1);
	assert_contains(err, "entry 'zeros': more data than the 1000 bytes "
	    "its header declares");
	/* What was written stayed within the declared size. */
	unit_path(path, stage, "zeros");
	if (lstat(path, &sb) == 0)
		assert_true(sb.st_size <= 1000);
}

static void
test_modes_stripped(void **state)
{
	const char		*base = *state;
	struct unzip_limits	 lim = fx_limits();
	char			 zip[PATH_MAX], stage[PATH_MAX], err[ERRLEN];
	zip_t			*za;
	zip_int64_t		 i;

	fx_paths(base, zip, stage);
	za = zw_new(zip);
	zw_add(za, "suid", "x", 1, ZIP_OPSYS_UNIX, 0104755);
	zw_add(za, "sgid", "x", 1, ZIP_OPSYS_UNIX, 0102644);
	zw_add(za, "world", "x", 1, ZIP_OPSYS_UNIX, 0100666);
	zw_add(za, "all", "x", 1, ZIP_OPSYS_UNIX, 0107777);
	zw_add(za, "grpx", "x", 1, ZIP_OPSYS_UNIX, 0100610);
	zw_add(za, "nomode", "x", 1, ZIP_OPSYS_UNIX, 0);
	zw_add(za, "permsonly", "x", 1, ZIP_OPSYS_UNIX, 0755);
	assert_true((i = zip_dir_add(za, "sticky", 0)) >= 0);
	assert_int_equal(zip_file_set_external_attributes(za, (zip_uint64_t)i,
	    0, ZIP_OPSYS_UNIX, (uint32_t)(041777) << 16), 0);
	zw_close(za);
	if (fx_extract(base, &lim, NULL, err) != 0)
		fail_msg("extract: %s", err);
	expect_mode(stage, "suid", S_IFREG | 0555);
	expect_mode(stage, "sgid", S_IFREG | 0444);
	expect_mode(stage, "world", S_IFREG | 0444);
	expect_mode(stage, "all", S_IFREG | 0555);
	expect_mode(stage, "grpx", S_IFREG | 0555);
	expect_mode(stage, "nomode", S_IFREG | 0444);
	expect_mode(stage, "permsonly", S_IFREG | 0555);
	expect_mode(stage, "sticky", S_IFDIR | 0555);
}

/* A mode in a Windows entry's high bits means nothing, even S_IFLNK. */
static void
test_windows(void **state)
{
	const char		*base = *state;
	struct unzip_limits	 lim = fx_limits();
	struct unzip_stats	 st;
	char			 zip[PATH_MAX], stage[PATH_MAX], err[ERRLEN];
	zip_t			*za;
	zip_int64_t		 i;

	fx_paths(base, zip, stage);
	za = zw_new(zip);
	zw_add(za, "win.txt", "dos", 3, ZIP_OPSYS_DOS, 0x20);
	zw_add(za, "notlink", "/etc/passwd", 11, ZIP_OPSYS_WINDOWS_NTFS,
	    (uint32_t)0120777 << 16);
	assert_true((i = zip_dir_add(za, "windir", 0)) >= 0);
	assert_int_equal(zip_file_set_external_attributes(za, (zip_uint64_t)i,
	    0, ZIP_OPSYS_DOS, 0x10), 0);
	zw_add(za, "windir/in", "y", 1, ZIP_OPSYS_DOS, 0x20);
	zw_close(za);
	if (fx_extract(base, &lim, &st, err) != 0)
		fail_msg("extract: %s", err);
	expect_file(stage, "win.txt", "dos", 3, 0444);
	expect_file(stage, "notlink", "/etc/passwd", 11, 0444);
	expect_mode(stage, "windir", S_IFDIR | 0555);
	expect_file(stage, "windir/in", "y", 1, 0444);
	assert_int_equal(st.symlinks, 0);
}

static void
test_symlink_inside(void **state)
{
	const char		*base = *state;
	struct unzip_limits	 lim = fx_limits();
	struct unzip_stats	 st;
	char			 zip[PATH_MAX], stage[PATH_MAX], err[ERRLEN];
	char			 path[PATH_MAX], buf[64];
	ssize_t			 n;
	zip_t			*za;

	fx_paths(base, zip, stage);
	za = zw_new(zip);
	zw_link(za, "a/b", "../c");
	zw_add(za, "c", "target", 6, ZIP_OPSYS_UNIX, 0100644);
	zw_link(za, "top", "a/b");
	zw_link(za, "Versions/Current", "A");
	zw_add(za, "Versions/A/Headers/h", "h", 1, ZIP_OPSYS_UNIX, 0100644);
	zw_link(za, "Headers", "Versions/Current/Headers");
	zw_close(za);
	if (fx_extract(base, &lim, &st, err) != 0)
		fail_msg("extract: %s", err);
	unit_path(path, stage, "a/b");
	assert_int_equal(n = readlink(path, buf, sizeof(buf) - 1), 4);
	buf[n] = '\0';
	assert_string_equal(buf, "../c");
	expect_mode(stage, "a/b", S_IFLNK | 0777);
	/* Through two links to c. */
	unit_path(path, stage, "top");
	unit_read(path, buf, sizeof(buf));
	assert_string_equal(buf, "target");
	unit_path(path, stage, "Headers/h");
	unit_read(path, buf, sizeof(buf));
	assert_string_equal(buf, "h");
	assert_int_equal(st.symlinks, 4);
	assert_int_equal(st.files, 2);
	assert_int_equal(st.bytes, 6 + 1 + 4 + 3 + 1 + 24);
}

static void
test_symlink_outside(void **state)
{
	static const struct {
		const char	*name;
		const char	*target;
		const char	*err;
	} cases[] = {
		{ "x", "/etc/passwd", "entry 'x': symlink to '/etc/passwd': "
		    "absolute symlink target" },
		{ "a", "../x", "entry 'a': symlink to '../x': symlink target "
		    "leads out of the tree" },
		{ "a/b", "../../x", "leads out of the tree" },
		{ "a/b", "c/../../../x", "leads out of the tree" },
		{ "e", "", "empty symlink target" },
	};
	const char		*base = *state;
	struct unzip_limits	 lim = fx_limits();
	char			 zip[PATH_MAX], stage[PATH_MAX];
	zip_t			*za;
	size_t			 i;

	fx_paths(base, zip, stage);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		za = zw_new(zip);
		zw_add(za, "fine", "x", 1, ZIP_OPSYS_UNIX, 0100644);
		zw_link(za, cases[i].name, cases[i].target);
		zw_close(za);
		fx_refused(base, &lim, cases[i].err, NULL);
		fx_clean(base);
	}
	za = zw_new(zip);
	zw_add(za, "l", "a\0b", 3, ZIP_OPSYS_UNIX, 0120777);
	zw_close(za);
	fx_refused(base, &lim, "entry 'l': symlink target contains a NUL",
	    NULL);
}

/* Every link stays inside on its own, yet the chain leaves. */
static void
test_symlink_chain(void **state)
{
	const char		*base = *state;
	struct unzip_limits	 lim = fx_limits();
	char			 zip[PATH_MAX], stage[PATH_MAX];
	zip_t			*za;

	fx_paths(base, zip, stage);
	za = zw_new(zip);
	zw_link(za, "d/up", "..");
	zw_link(za, "e", "d/up/..");
	zw_close(za);
	fx_refused(base, &lim, "entry 'e': symlink leads out of the tree "
	    "through other symlinks", NULL);
	fx_clean(base);

	/* Deeper: each hop climbs one more level through the last. */
	za = zw_new(zip);
	zw_link(za, "p/q/r1", "..");
	zw_link(za, "p/q/r2", "r1/..");
	zw_link(za, "z", "p/q/r2/../x");
	zw_close(za);
	fx_refused(base, &lim, "through other symlinks", NULL);
	fx_clean(base);

	za = zw_new(zip);
	zw_link(za, "l1", "l2/x");
	zw_link(za, "l2", "l1/x");
	zw_close(za);
	fx_refused(base, &lim, "too many levels of symlinks", NULL);
}

/* A file below a symlink would be written through it: refused. */
static void
test_symlink_write_through(void **state)
{
	const char		*base = *state;
	struct unzip_limits	 lim = fx_limits();
	char			 zip[PATH_MAX], stage[PATH_MAX];
	zip_t			*za;

	fx_paths(base, zip, stage);
	za = zw_new(zip);
	zw_link(za, "l", "sub");
	assert_true(zip_dir_add(za, "sub", 0) >= 0);
	zw_add(za, "l/x", "through", 7, ZIP_OPSYS_UNIX, 0100644);
	zw_close(za);
	fx_refused(base, &lim, "entry 'l': is a symlink, but other entries "
	    "use it as a directory", NULL);
}

/* A few hundred files: two threads make exactly what one makes. */
static void
test_threads(void **state)
{
	const char		*base = *state;
	struct unzip_limits	 lim = fx_limits();
	struct unzip_stats	 s1, s2;
	char			 zip[PATH_MAX], stage[PATH_MAX], err[ERRLEN];
	char			 stage2[PATH_MAX], name[64];
	char			*l1, *l2, *d;
	zip_t			*za;
	size_t			 len, j;
	int			 i;

	fx_paths(base, zip, stage);
	unit_path(stage2, base, "stage2");
	assert_int_equal(mkdir(stage2, 0700), 0);
	za = zw_new(zip);
	for (i = 0; i < 400; i++) {
		snprintf(name, sizeof(name), "d%d/s%d/f%03d", i % 7, i % 3, i);
		len = (size_t)(i * 997) % 20000 + (i % 50 == 0 ? 400000 : 0);
		assert_non_null(d = malloc(len + 1));
		for (j = 0; j < len; j++)
			d[j] = (char)(i % 2 ? (j * 31 + (size_t)i) >> 3 :
			    (size_t)"abc"[j % 3]);
		zw_add(za, name, d, len, ZIP_OPSYS_UNIX, i % 3 ? 0100644 :
		    0100755);
		free(d);
	}
	zw_link(za, "d0/latest", "s0/f000");
	zw_close(za);

	lim.threads = 1;
	if (unzip_extract(zip, stage, &lim, NULL, NULL, &s1, err,
	    sizeof(err)) != 0)
		fail_msg("threads=1: %s", err);
	lim.threads = 2;
	if (unzip_extract(zip, stage2, &lim, NULL, NULL, &s2, err,
	    sizeof(err)) != 0)
		fail_msg("threads=2: %s", err);
	assert_memory_equal(&s1, &s2, sizeof(s1));
	assert_int_equal(s1.files, 400);
	assert_int_equal(s1.symlinks, 1);
	assert_int_equal(s1.dirs, 7 + 21);
	l1 = tree_list(stage);
	l2 = tree_list(stage2);
	assert_string_equal(l1, l2);
	assert_non_null(strstr(l1, "d0/latest l 0777"));
	free(l1);
	free(l2);

	/* Many threads, more than files in a small archive. */
	za = zw_new(zip);
	zw_add(za, "one", "1", 1, ZIP_OPSYS_UNIX, 0100644);
	zw_close(za);
	fx_clean(base);
	lim.threads = 16;
	if (fx_extract(base, &lim, &s1, err) != 0)
		fail_msg("threads=16: %s", err);
	assert_int_equal(s1.files, 1);
}

static void
test_cancel(void **state)
{
	const char		*base = *state;
	struct unzip_limits	 lim = fx_limits();
	struct prog		 pr;
	char			 zip[PATH_MAX], stage[PATH_MAX], err[ERRLEN];
	char			*buf;
	zip_t			*za;
	size_t			 len = 6 << 20;
	unsigned		 t;

	fx_paths(base, zip, stage);
	assert_non_null(buf = calloc(1, len));
	za = zw_new(zip);
	zw_add(za, "a", buf, len, ZIP_OPSYS_UNIX, 0100644);
	zw_add(za, "b", buf, len, ZIP_OPSYS_UNIX, 0100644);
	zw_close(za);
	free(buf);
	for (t = 1; t <= 2; t++) {
		/* At once, and after some bytes. */
		memset(&pr, 0, sizeof(pr));
		pr.cancel_at = 1;
		lim.threads = t;
		assert_int_equal(unzip_extract(zip, stage, &lim, prog_fn, &pr,
		    NULL, err, sizeof(err)), -1);
		assert_string_equal(err, "cancelled");
		assert_int_equal(pr.calls, 1);
		fx_clean(base);

		memset(&pr, 0, sizeof(pr));
		pr.cancel_at = 3;
		assert_int_equal(unzip_extract(zip, stage, &lim, prog_fn, &pr,
		    NULL, err, sizeof(err)), -1);
		assert_string_equal(err, "cancelled");
		assert_int_equal(pr.calls, 3);
		assert_true(pr.done >= 1 << 20 && pr.done < 2 * len);
		fx_clean(base);
	}
}

static void
test_progress(void **state)
{
	const char		*base = *state;
	struct unzip_limits	 lim = fx_limits();
	struct prog		 pr;
	char			 zip[PATH_MAX], stage[PATH_MAX], err[ERRLEN];
	char			*buf;
	zip_t			*za;
	size_t			 len = 5 << 20;

	fx_paths(base, zip, stage);
	assert_non_null(buf = calloc(1, len));
	za = zw_new(zip);
	zw_add(za, "a", buf, len, ZIP_OPSYS_UNIX, 0100644);
	zw_add(za, "b", "bb", 2, ZIP_OPSYS_UNIX, 0100644);
	zw_close(za);
	free(buf);
	memset(&pr, 0, sizeof(pr));
	if (unzip_extract(zip, stage, &lim, prog_fn, &pr, NULL, err,
	    sizeof(err)) != 0)
		fail_msg("extract: %s", err);
	/* A start, about one per MiB, an end; not one per read. */
	assert_true(pr.calls >= 5 && pr.calls <= 10);
	assert_int_equal(pr.total, len + 2);
	assert_int_equal(pr.done, len + 2);
}

static void
test_not_empty(void **state)
{
	const char		*base = *state;
	struct unzip_limits	 lim = fx_limits();
	char			 zip[PATH_MAX], stage[PATH_MAX], err[ERRLEN];
	char			 path[PATH_MAX];
	zip_t			*za;

	fx_paths(base, zip, stage);
	za = zw_new(zip);
	zw_add(za, "f", "x", 1, ZIP_OPSYS_UNIX, 0100644);
	zw_close(za);
	unit_path(path, stage, "leftover");
	assert_int_equal(symlink("/", path), 0);
	assert_int_equal(unzip_extract(zip, stage, &lim, NULL, NULL, NULL,
	    err, sizeof(err)), -1);
	assert_contains(err, "is not empty");
}

static void
test_not_zip(void **state)
{
	const char		*base = *state;
	struct unzip_limits	 lim = fx_limits();
	char			 zip[PATH_MAX], stage[PATH_MAX];
	struct zb		 z;

	fx_paths(base, zip, stage);
	unit_write(zip, "this is not a zip archive at all", 0600);
	fx_refused(base, &lim, "not a zip archive", NULL);
	unit_write(zip, "PK", 0600);
	fx_refused(base, &lim, "not a zip archive", NULL);
	unit_write(zip, "", 0600);
	fx_refused(base, &lim, "not a zip archive", NULL);

	/* A directory that says it is bigger than the file. */
	memset(&z, 0, sizeof(z));
	zb_end(&z, 1, 0);
	memcpy(z.b + 12, "\xff\0\0\0", 4);
	zb_write(&z, zip);
	fx_refused(base, &lim, "malformed archive", NULL);

	/* Two end records, each consistent with the end of the file. */
	memset(&z, 0, sizeof(z));
	zb_end(&z, 0, 0);
	z.b[20] = 22;		/* its comment is the next record */
	zb_end(&z, 0, 0);
	zb_write(&z, zip);
	fx_refused(base, &lim, "ambiguous archive", NULL);
}

/*
 * ZIP64 as a writer must use it past 4 GiB, made small: the sizes and the
 * offset live in the extra field, the counts in the ZIP64 end record.
 */
static void
test_zip64(void **state)
{
	const char		*base = *state;
	struct unzip_limits	 lim = fx_limits();
	struct unzip_stats	 st;
	char			 zip[PATH_MAX], stage[PATH_MAX], err[ERRLEN];
	struct zb		 z;
	uint32_t		 crc = crc32_of("sixty-four", 10);
	uint64_t		 cd;

	fx_paths(base, zip, stage);
	memset(&z, 0, sizeof(z));
	zb_local64(&z, "zz", "sixty-four", 10, crc);
	cd = z.len;
	zb_central64(&z, "zz", 10, crc, 0);
	zb_end64(&z, 1, cd);
	zb_write(&z, zip);
	if (fx_extract(base, &lim, &st, err) != 0)
		fail_msg("extract: %s", err);
	expect_file(stage, "zz", "sixty-four", 10, 0444);
	assert_int_equal(st.bytes, 10);
	fx_clean(base);

	/* The same data claimed by a second entry, via its ZIP64 offset. */
	memset(&z, 0, sizeof(z));
	zb_local64(&z, "zz", "sixty-four", 10, crc);
	cd = z.len;
	zb_central64(&z, "zz", 10, crc, 0);
	zb_central64(&z, "zy", 10, crc, 0);
	zb_end64(&z, 2, cd);
	zb_write(&z, zip);
	fx_refused(base, &lim, "entries 'zz' and 'zy' overlap", NULL);
}

/* *state: a scratch directory holding stage/ and sentinel/. */
static int
fx_setup(void **state)
{
	char	path[PATH_MAX];

	if (unit_dir_setup(state) != 0)
		return -1;
	snprintf(path, sizeof(path), "%s/stage", (char *)*state);
	if (mkdir(path, 0700) != 0)
		return -1;
	snprintf(path, sizeof(path), "%s/sentinel", (char *)*state);
	return mkdir(path, 0700);
}

static void
fx_paths(const char *base, char *zip, char *stage)
{
	unit_path(zip, base, "t.zip");
	unit_path(stage, base, "stage");
}

static struct unzip_limits
fx_limits(void)
{
	struct unzip_limits	lim;

	/* Every field: writable was once left to chance here. */
	memset(&lim, 0, sizeof(lim));
	lim.max_entries = 100000;
	lim.max_bytes = 1ULL << 30;
	lim.threads = 1;
	return lim;
}

static int
fx_extract(const char *base, const struct unzip_limits *lim,
    struct unzip_stats *st, char *err)
{
	char	zip[PATH_MAX], stage[PATH_MAX];

	fx_paths(base, zip, stage);
	return unzip_extract(zip, stage, lim, NULL, NULL, st, err, ERRLEN);
}

/*
 * The archive must be refused, with a message holding want (and also, if
 * not NULL), and nothing may exist beside the staging directory.
 */
static void
fx_refused(const char *base, const struct unzip_limits *lim,
    const char *want, const char *also)
{
	struct dirent	*de;
	char		 err[ERRLEN], path[PATH_MAX];
	DIR		*d;
	int		 rc;

	err[0] = '\0';
	rc = fx_extract(base, lim, NULL, err);
	if (rc != -1)
		fail_msg("accepted; wanted \"%s\"", want);
	assert_contains(err, want);
	if (also != NULL)
		assert_contains(err, also);
	unit_path(path, base, "sentinel");
	assert_non_null(d = opendir(path));
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 &&
		    strcmp(de->d_name, "..") != 0)
			fail_msg("sentinel/%s exists", de->d_name);
	closedir(d);
	assert_non_null(d = opendir(base));
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 &&
		    strcmp(de->d_name, "..") != 0 &&
		    strcmp(de->d_name, "stage") != 0 &&
		    strcmp(de->d_name, "stage2") != 0 &&
		    strcmp(de->d_name, "sentinel") != 0 &&
		    strcmp(de->d_name, "t.zip") != 0)
			fail_msg("%s/%s exists", base, de->d_name);
	closedir(d);
	fx_clean(base);
}

/* Empties stage/ again, as the caller of a failed extraction would. */
static void
fx_clean(const char *base)
{
	char	path[PATH_MAX];

	unit_path(path, base, "stage");
	(void)nftw(path, unit_unlock_one, 16, FTW_PHYS);
	unit_rmtree(path);
	assert_int_equal(mkdir(path, 0700), 0);
}

static zip_t *
zw_new(const char *path)
{
	zip_t	*za;
	int	 zerr;

	za = zip_open(path, ZIP_CREATE | ZIP_TRUNCATE, &zerr);
	assert_non_null(za);
	return za;
}

/* Adds a file; data is copied and need not outlive the call. */
static zip_int64_t
zw_add(zip_t *za, const char *name, const void *data, size_t len,
    zip_uint8_t opsys, uint32_t mode)
{
	zip_source_t	*src;
	zip_int64_t	 i;
	void		*copy;

	/* libzip reads the data at zip_close; zw_close frees the copies. */
	assert_non_null(copy = malloc(len > 0 ? len : 1));
	memcpy(copy, data, len);
	assert_non_null(zw_bufs = realloc(zw_bufs, (zw_nbufs + 1) *
	    sizeof(*zw_bufs)));
	zw_bufs[zw_nbufs++] = copy;
	assert_non_null(src = zip_source_buffer(za, copy, len, 0));
	if ((i = zip_file_add(za, name, src, ZIP_FL_ENC_RAW)) < 0) {
		zip_source_free(src);
		fail_msg("zip_file_add %s: %s", name, zip_strerror(za));
	}
	assert_int_equal(zip_file_set_external_attributes(za,
	    (zip_uint64_t)i, 0, opsys, opsys == ZIP_OPSYS_UNIX ?
	    mode << 16 : mode), 0);
	return i;
}

static void
zw_link(zip_t *za, const char *name, const char *target)
{
	(void)zw_add(za, name, target, strlen(target), ZIP_OPSYS_UNIX,
	    0120777);
}

static void
zw_close(zip_t *za)
{
	if (zip_close(za) != 0)
		fail_msg("zip_close: %s", zip_strerror(za));
	while (zw_nbufs > 0)
		free(zw_bufs[--zw_nbufs]);
	free(zw_bufs);
	zw_bufs = NULL;
}

static void
zb_put(struct zb *z, const void *p, size_t len)
{
	assert_true(z->len + len <= sizeof(z->b));
	memcpy(z->b + z->len, p, len);
	z->len += len;
}

static void
zb_16(struct zb *z, uint16_t v)
{
	uint8_t	b[2] = { (uint8_t)v, (uint8_t)(v >> 8) };

	zb_put(z, b, 2);
}

static void
zb_32(struct zb *z, uint32_t v)
{
	zb_16(z, (uint16_t)v);
	zb_16(z, (uint16_t)(v >> 16));
}

static void
zb_64(struct zb *z, uint64_t v)
{
	zb_32(z, (uint32_t)v);
	zb_32(z, (uint32_t)(v >> 32));
}

/* A stored entry's local header and data; returns its offset. */
static uint32_t
zb_local(struct zb *z, const char *name, size_t nlen, const void *data,
    size_t dlen, uint16_t flags, uint32_t crc, uint32_t usize)
{
	uint32_t	off = (uint32_t)z->len;

	zb_32(z, 0x04034b50);
	zb_16(z, 20);
	zb_16(z, flags);
	zb_16(z, 0);			/* stored */
	zb_32(z, 0);			/* time, date */
	zb_32(z, crc);
	zb_32(z, (uint32_t)dlen);
	zb_32(z, usize);
	zb_16(z, (uint16_t)nlen);
	zb_16(z, 0);
	zb_put(z, name, nlen);
	zb_put(z, data, dlen);
	return off;
}

static void
zb_central(struct zb *z, const char *name, size_t nlen, size_t clen,
    uint16_t flags, uint32_t crc, uint32_t usize, uint32_t off)
{
	zb_32(z, 0x02014b50);
	zb_16(z, 0x0300 | 20);		/* made on unix */
	zb_16(z, 20);
	zb_16(z, flags);
	zb_16(z, 0);
	zb_32(z, 0);
	zb_32(z, crc);
	zb_32(z, (uint32_t)clen);
	zb_32(z, usize);
	zb_16(z, (uint16_t)nlen);
	zb_16(z, 0);
	zb_16(z, 0);
	zb_16(z, 0);
	zb_16(z, 0);
	zb_32(z, (uint32_t)0100644 << 16);
	zb_32(z, off);
	zb_put(z, name, nlen);
}

/* The end record; the directory runs from cdoff to here. */
static void
zb_end(struct zb *z, uint16_t n, uint32_t cdoff)
{
	uint32_t	cdlen = (uint32_t)z->len - cdoff;

	zb_32(z, 0x06054b50);
	zb_16(z, 0);
	zb_16(z, 0);
	zb_16(z, n);
	zb_16(z, n);
	zb_32(z, cdlen);
	zb_32(z, cdoff);
	zb_16(z, 0);
}

/* A stored entry whose sizes are in its ZIP64 extra field. */
static void
zb_local64(struct zb *z, const char *name, const void *data, size_t dlen,
    uint32_t crc)
{
	zb_32(z, 0x04034b50);
	zb_16(z, 45);
	zb_16(z, 0);
	zb_16(z, 0);
	zb_32(z, 0);
	zb_32(z, crc);
	zb_32(z, 0xffffffff);
	zb_32(z, 0xffffffff);
	zb_16(z, (uint16_t)strlen(name));
	zb_16(z, 4 + 16);
	zb_put(z, name, strlen(name));
	zb_16(z, 0x0001);
	zb_16(z, 16);
	zb_64(z, dlen);
	zb_64(z, dlen);
	zb_put(z, data, dlen);
}

/* Its central entry: sizes and offset in the extra field. */
static void
zb_central64(struct zb *z, const char *name, size_t dlen, uint32_t crc,
    uint64_t off)
{
	zb_32(z, 0x02014b50);
	zb_16(z, 0x0300 | 45);
	zb_16(z, 45);
	zb_16(z, 0);
	zb_16(z, 0);
	zb_32(z, 0);
	zb_32(z, crc);
	zb_32(z, 0xffffffff);
	zb_32(z, 0xffffffff);
	zb_16(z, (uint16_t)strlen(name));
	zb_16(z, 4 + 24);
	zb_16(z, 0);
	zb_16(z, 0);
	zb_16(z, 0);
	zb_32(z, (uint32_t)0100644 << 16);
	zb_32(z, 0xffffffff);
	zb_put(z, name, strlen(name));
	zb_16(z, 0x0001);
	zb_16(z, 24);
	zb_64(z, dlen);
	zb_64(z, dlen);
	zb_64(z, off);
}

/* ZIP64 end record, its locator, and an end record that defers to it. */
static void
zb_end64(struct zb *z, uint64_t n, uint64_t cd)
{
	uint64_t	e64 = z->len;

	zb_32(z, 0x06064b50);
	zb_64(z, 56 - 12);
	zb_16(z, 0x0300 | 45);
	zb_16(z, 45);
	zb_32(z, 0);
	zb_32(z, 0);
	zb_64(z, n);
	zb_64(z, n);
	zb_64(z, e64 - cd);
	zb_64(z, cd);
	zb_32(z, 0x07064b50);
	zb_32(z, 0);
	zb_64(z, e64);
	zb_32(z, 1);
	zb_32(z, 0x06054b50);
	zb_16(z, 0);
	zb_16(z, 0);
	zb_16(z, 0xffff);
	zb_16(z, 0xffff);
	zb_32(z, 0xffffffff);
	zb_32(z, 0xffffffff);
	zb_16(z, 0);
}

static void
zb_write(const struct zb *z, const char *path)
{
	FILE	*f;

	assert_non_null(f = fopen(path, "wb"));
	assert_int_equal(fwrite(z->b, 1, z->len, f), z->len);
	assert_int_equal(fclose(f), 0);
}

static uint32_t
crc32_of(const void *p, size_t len)
{
	const uint8_t	*b = p;
	uint32_t	 c = 0xffffffff;
	size_t		 i;
	int		 k;

	for (i = 0; i < len; i++) {
		c ^= b[i];
		for (k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0xedb88320 : c >> 1;
	}
	return ~c;
}

static void
expect_file(const char *dir, const char *name, const void *data,
    size_t len, mode_t mode)
{
	char	 path[PATH_MAX];
	char	*buf;
	ssize_t	 n;
	int	 fd;

	expect_mode(dir, name, S_IFREG | mode);
	unit_path(path, dir, name);
	assert_true((fd = open(path, O_RDONLY | O_CLOEXEC)) != -1);
	assert_non_null(buf = malloc(len + 1));
	n = read(fd, buf, len + 1);
	close(fd);
	assert_int_equal(n, (ssize_t)len);
	assert_memory_equal(buf, data, len);
	free(buf);
}

static void
expect_mode(const char *dir, const char *name, mode_t mode)
{
	struct stat	sb;
	char		path[PATH_MAX];

	unit_path(path, dir, name);
	if (lstat(path, &sb) != 0)
		fail_msg("%s: %s", name, strerror(errno));
	if (sb.st_mode != mode)
		fail_msg("%s: mode 0%o, want 0%o", name,
		    (unsigned)sb.st_mode, (unsigned)mode);
}

static int
tree_one(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	char		 link[256] = "";
	char		*line, *data = NULL;
	uint32_t	 crc = 0;
	ssize_t		 n;
	int		 fd;

	(void)ftw;
	if (strlen(path) <= tree_root)
		return 0;
	if (type == FTW_SL) {
		n = readlink(path, link, sizeof(link) - 1);
		link[n > 0 ? n : 0] = '\0';
	} else if (type == FTW_F) {
		assert_non_null(data = malloc((size_t)sb->st_size + 1));
		assert_true((fd = open(path, O_RDONLY)) != -1);
		assert_int_equal(read(fd, data, (size_t)sb->st_size + 1),
		    sb->st_size);
		close(fd);
		crc = crc32_of(data, (size_t)sb->st_size);
		free(data);
	}
	assert_true(asprintf(&line, "%s %c %04o %jd %08x %s\n",
	    path + tree_root + 1, type == FTW_SL ? 'l' : type == FTW_D ? 'd' :
	    'f', (unsigned)(sb->st_mode & 07777), (intmax_t)(type == FTW_F ?
	    sb->st_size : 0), crc, link) != -1);
	assert_non_null(tree_lines = realloc(tree_lines, (tree_n + 1) *
	    sizeof(*tree_lines)));
	tree_lines[tree_n++] = line;
	return 0;
}

static int
tree_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Everything under dir, one sorted line each: type, mode, size, CRC. */
static char *
tree_list(const char *dir)
{
	char	*all;
	size_t	 i, len = 1;

	tree_lines = NULL;
	tree_n = 0;
	tree_root = strlen(dir);
	assert_int_equal(nftw(dir, tree_one, 16, FTW_PHYS), 0);
	if (tree_n > 0)
		qsort(tree_lines, tree_n, sizeof(*tree_lines), tree_cmp);
	for (i = 0; i < tree_n; i++)
		len += strlen(tree_lines[i]);
	assert_non_null(all = malloc(len));
	all[0] = '\0';
	for (i = 0; i < tree_n; i++) {
		strcat(all, tree_lines[i]);
		free(tree_lines[i]);
	}
	free(tree_lines);
	return all;
}

static int
prog_fn(void *arg, uint64_t done, uint64_t total)
{
	struct prog	*pr = arg;

	pr->calls++;
	pr->done = done;
	pr->total = total;
	return pr->cancel_at != 0 && pr->calls >= pr->cancel_at;
}
