/*
 * test_zipw: snapshots of a tree its owner may be hostile in.  Trees are
 * built at test time under a scratch directory (root/), archived into
 * out.zip and read back two ways: with libzip, for names, modes and
 * times as stored, and with the project's own unzip_extract into
 * stage/, which proves every archive passes the hostile-archive rules
 * it will be restored under.  Races are staged from the progress
 * callback, which runs while zip_close reads the files.
 */
#include <sys/resource.h>
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/crypto.h>
#include <zip.h>

#include "unzip.h"
#include "zipw.h"
#include "unit.h"

#define ERRLEN		1024
#define BIG		(5 * 1024 * 1024 + 3)	/* past one progress step */
#define MTIME		1600000000		/* even: DOS time has 2 s */
#define MANY		2000

/* What a progress function saw, and what it does on its n-th call. */
struct prog {
	int		 calls;
	int		 cancel_at;	/* 0: never */
	uint64_t	 done, total;
	int		 acted;
	const char	*base;
	void		(*act)(const char *);	/* on the first call past 0 */
};

/* act_resize's choice: prog_fn passes only the base directory. */
static int	resize_shrink;

static void	test_round_trip(void **);
static void	test_whole_root(void **);
static void	test_checksum(void **);
static void	test_bad_paths(void **);
static void	test_overlap(void **);
static void	test_fd_bound(void **);
static void	test_max_bytes(void **);
static void	test_grew_past_max(void **);
static void	test_cancel(void **);
static void	test_progress(void **);
static void	test_swap_file_for_link(void **);
static void	test_swap_dir_for_link(void **);
static void	test_swap_file_for_fifo(void **);
static void	test_size_changes(void **);

static int	fx_setup(void **);
static void	fx_tree(const char *);
static int	fx_zip(const char *, const char *const *, size_t, uint64_t,
		    struct prog *, struct zipw_stats *, char *);
static void	fx_refused(const char *, const char *const *, size_t,
		    uint64_t, struct prog *, const char *);
static void	fx_swap(const char *, void (*)(const char *), const char *);
static void	fx_extract(const char *);
static void	fx_same(const char *, const char *, const char *);
static void	fx_no_output(const char *);
static void	mk_dir(const char *, const char *, mode_t);
static void	mk_file(const char *, const char *, const void *, size_t,
		    mode_t);
static void	mk_link(const char *, const char *, const char *);
static char	*slurp(const char *, size_t *);
static char	*pattern(size_t);
static void	expect_entry(zip_t *, const char *, mode_t);
static void	expect_absent(zip_t *, const char *);
static zip_t	*open_out(const char *);
static int	prog_fn(void *, uint64_t, uint64_t);
static void	act_file_to_link(const char *);
static void	act_dir_to_link(const char *);
static void	act_file_to_fifo(const char *);
static void	act_grow_b(const char *);
static void	act_resize(const char *);

int
main(void)
{
	const struct CMUnitTest	tests[] = {
#define FX(t)	cmocka_unit_test_setup_teardown(t, fx_setup, unit_dir_teardown_ro)
		FX(test_round_trip),
		FX(test_whole_root),
		FX(test_checksum),
		FX(test_bad_paths),
		FX(test_overlap),
		FX(test_fd_bound),
		FX(test_max_bytes),
		FX(test_grew_past_max),
		FX(test_cancel),
		FX(test_progress),
		FX(test_swap_file_for_link),
		FX(test_swap_dir_for_link),
		FX(test_swap_file_for_fifo),
		FX(test_size_changes),
#undef FX
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * Two listed paths: a directory with everything a service can leave in
 * one, and a file whose parent comes along as a directory entry.
 */
static void
test_round_trip(void **state)
{
	static const char	*paths[] = { "data/", "conf/x.properties" };
	const char		*base = *state;
	struct zipw_stats	 st;
	zip_stat_t		 zs;
	char			 err[ERRLEN];
	zip_t			*za;

	fx_tree(base);
	memset(&st, 0xff, sizeof(st));
	if (fx_zip(base, paths, nitems(paths), 0, NULL, &st, err) != 0)
		fail_msg("zipw: %s", err);
	assert_int_equal(st.files, 5);
	assert_int_equal(st.dirs, 5);	/* data sub deep hollow conf */
	assert_int_equal(st.symlinks, 3);
	assert_int_equal(st.skipped, 5);
	assert_string_equal(st.first_skipped, "data/chain");
	assert_int_equal(st.bytes_in, 5 + 0 + BIG + 4 + 4);

	za = open_out(base);
	assert_int_equal(zip_get_num_entries(za, 0), 5 + 5 + 3);
	expect_entry(za, "data/", S_IFDIR | 0755);
	expect_entry(za, "data/a.db", S_IFREG | 0600);
	expect_entry(za, "data/empty", S_IFREG | 0644);
	expect_entry(za, "data/big.bin", S_IFREG | 0644);
	expect_entry(za, "data/sub/", S_IFDIR | 0700);
	expect_entry(za, "data/sub/deep/", S_IFDIR | 0755);
	expect_entry(za, "data/sub/deep/x.txt", S_IFREG | 0755);
	expect_entry(za, "data/sub/hollow/", S_IFDIR | 0750);
	expect_entry(za, "data/link-in", S_IFLNK | 0777);
	expect_entry(za, "data/link-up", S_IFLNK | 0777);
	expect_entry(za, "data/sub/up", S_IFLNK | 0777);
	expect_entry(za, "conf/", S_IFDIR | 0750);
	expect_entry(za, "conf/x.properties", S_IFREG | 0640);
	expect_absent(za, "data/out-rel");
	expect_absent(za, "data/out-abs");
	expect_absent(za, "data/fifo");
	expect_absent(za, "data/chain");
	expect_absent(za, "data/we\\ird");
	expect_absent(za, "conf/other");
	expect_absent(za, "top.txt");
	assert_int_equal(zip_stat(za, "data/a.db", 0, &zs), 0);
	assert_int_equal(zs.mtime, MTIME);
	assert_int_equal(zs.comp_method, ZIP_CM_DEFLATE);
	zip_discard(za);

	fx_extract(base);
	fx_same(base, "data/a.db", NULL);
	fx_same(base, "data/empty", NULL);
	fx_same(base, "data/big.bin", NULL);
	fx_same(base, "data/sub/deep/x.txt", NULL);
	fx_same(base, "conf/x.properties", NULL);
	fx_same(base, "data/link-in", "sub/deep/x.txt");
	fx_same(base, "data/link-up", "../conf/x.properties");
	fx_same(base, "data/sub/up", "../..");
	fx_same(base, "data/sub/hollow", "");
}

/* "." archives root's children, and nothing of /etc. */
static void
test_whole_root(void **state)
{
	static const char	*paths[] = { "." };
	const char		*base = *state;
	struct zipw_stats	 st;
	char			 err[ERRLEN], path[PATH_MAX];
	char			*all;
	size_t			 len;
	zip_t			*za;
	zip_int64_t		 i, n;

	fx_tree(base);
	if (fx_zip(base, paths, 1, 0, NULL, &st, err) != 0)
		fail_msg("zipw: %s", err);
	assert_int_equal(st.files, 7);
	assert_int_equal(st.dirs, 5);
	assert_int_equal(st.symlinks, 3);
	assert_int_equal(st.skipped, 5);
	assert_string_equal(st.first_skipped, "data/chain");

	za = open_out(base);
	n = zip_get_num_entries(za, 0);
	assert_int_equal(n, 7 + 5 + 3);
	for (i = 0; i < n; i++) {
		const char	*name = zip_get_name(za, (zip_uint64_t)i, 0);

		assert_non_null(name);
		if (strstr(name, "etc") != NULL || name[0] == '/' ||
		    strncmp(name, "./", 2) == 0)
			fail_msg("entry %s", name);
	}
	expect_entry(za, "top.txt", S_IFREG | 0644);
	expect_entry(za, "conf/other", S_IFREG | 0644);
	zip_discard(za);

	/* Not one byte of /etc/passwd, compressed or not. */
	unit_path(path, base, "out.zip");
	all = slurp(path, &len);
	assert_null(memmem(all, len, "root:", 5));
	free(all);

	fx_extract(base);
	fx_same(base, "top.txt", NULL);
	fx_same(base, "conf/other", NULL);
	fx_same(base, "data/big.bin", NULL);
	fx_same(base, "data/link-in", "sub/deep/x.txt");
}

/* sha256 and bytes_out describe the file on disk. */
static void
test_checksum(void **state)
{
	static const char	*paths[] = { "data" };
	const char		*base = *state;
	struct zipw_stats	 st;
	unsigned char		 d[32];
	char			 err[ERRLEN], path[PATH_MAX], hex[65];
	char			*all;
	size_t			 len, i;
	struct stat		 sb;

	fx_tree(base);
	if (fx_zip(base, paths, 1, 0, NULL, &st, err) != 0)
		fail_msg("zipw: %s", err);
	unit_path(path, base, "out.zip");
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(st.bytes_out, (uint64_t)sb.st_size);
	all = slurp(path, &len);
	assert_int_equal(len, (size_t)sb.st_size);
	assert_int_equal(gnutls_hash_fast(GNUTLS_DIG_SHA256, all, len, d), 0);
	free(all);
	for (i = 0; i < sizeof(d); i++)
		snprintf(hex + 2 * i, 3, "%02x", d[i]);
	assert_string_equal(st.sha256, hex);
}

/* Refused before anything is written, with the path and the reason. */
static void
test_bad_paths(void **state)
{
	static const struct {
		const char	*path;
		const char	*err;
	} cases[] = {
		{ "../x", "../x: '..' component" },
		{ "data/../../x", "'..' component" },
		{ "/etc", "/etc: absolute path" },
		{ "a//b", "a//b: empty component" },
		{ "./data", "'.' component" },
		{ "", "empty path" },
		{ "data/\n", "data/?: contains a control character" },
		{ "data/missing/", "data/missing/: no such file or directory" },
		{ "nowhere/x", "nowhere: no such file or directory" },
		{ "data/link-in", "data/link-in: is a symlink (not followed)" },
		{ "lnk/a.db", "lnk: is a symlink (not followed)" },
		{ "data/a.db/x", "data/a.db: not a directory" },
		{ "data/fifo", "data/fifo: not a regular file or a directory" },
	};
	const char		*base = *state;
	const char		*paths[2];
	char			 path[PATH_MAX], root[PATH_MAX];
	char			 err[ERRLEN];
	size_t			 i;

	fx_tree(base);
	unit_path(root, base, "root");
	mk_link(root, "lnk", "data");
	for (i = 0; i < nitems(cases); i++) {
		/* A good path first: nothing of it may be written either. */
		paths[0] = "conf";
		paths[1] = cases[i].path;
		fx_refused(base, paths, 2, 0, NULL, cases[i].err);
	}
	/* A stale archive from an earlier attempt goes too. */
	unit_path(path, base, "out.zip");
	unit_write(path, "stale", 0600);
	paths[0] = "../x";
	fx_refused(base, paths, 1, 0, NULL, "'..' component");

	paths[0] = ".";
	assert_int_equal(zipw_create("relative/root", paths, 1, path, 0, NULL,
	    NULL, NULL, err, sizeof(err)), -1);
	assert_contains(err, "relative/root: not an absolute path");
	unit_path(root, base, "root/lnk");
	assert_int_equal(zipw_create(root, paths, 1, path, 0, NULL, NULL,
	    NULL, err, sizeof(err)), -1);
	assert_contains(err, "is a symlink (not followed)");
	assert_int_equal(zipw_create(root, paths, 0, path, 0, NULL, NULL,
	    NULL, err, sizeof(err)), -1);
	assert_contains(err, "no paths given");
	fx_no_output(base);

	/* An empty tree gives nothing to archive. */
	unit_path(root, base, "root/data/sub/hollow");
	assert_int_equal(zipw_create(root, paths, 1, path, 0, NULL, NULL,
	    NULL, err, sizeof(err)), -1);
	assert_contains(err, "nothing to archive");
	fx_no_output(base);
}

/* Paths that overlap store each entry once. */
static void
test_overlap(void **state)
{
	static const char	*paths[] = {
		"data/sub/deep/x.txt", "data/sub/", "data/sub", "data/sub/deep",
	};
	const char		*base = *state;
	struct zipw_stats	 st;
	char			 err[ERRLEN];
	zip_t			*za;

	fx_tree(base);
	if (fx_zip(base, paths, nitems(paths), 0, NULL, &st, err) != 0)
		fail_msg("zipw: %s", err);
	assert_int_equal(st.files, 1);
	assert_int_equal(st.dirs, 4);	/* data sub deep hollow */
	assert_int_equal(st.symlinks, 1);
	za = open_out(base);
	assert_int_equal(zip_get_num_entries(za, 0), 6);
	expect_entry(za, "data/", S_IFDIR | 0755);
	zip_discard(za);
	fx_extract(base);
}

/* Files are opened one at a time, when libzip reads them. */
static void
test_fd_bound(void **state)
{
	static const char	*paths[] = { "." };
	const char		*base = *state;
	struct zipw_stats	 st;
	struct rlimit		 old, low;
	char			 root[PATH_MAX], dir[PATH_MAX], name[32];
	char			 err[ERRLEN];
	int			 i, rc;

	unit_path(root, base, "root");
	mk_dir(root, "", 0755);
	mk_dir(root, "many", 0755);
	mk_dir(root, "many/nested", 0755);
	for (i = 0; i < MANY; i++) {
		snprintf(name, sizeof(name), "%s/f%04d", i % 2 ? "many" :
		    "many/nested", i);
		mk_file(root, name, name, strlen(name), 0644);
	}
	unit_path(dir, root, "many");
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
	low = old;
	low.rlim_cur = 40;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
	rc = fx_zip(base, paths, 1, 0, NULL, &st, err);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
	if (rc != 0)
		fail_msg("zipw: %s", err);
	assert_int_equal(st.files, MANY);
	assert_int_equal(st.dirs, 2);
	fx_extract(base);
	fx_same(base, "many/f0001", NULL);
	fx_same(base, "many/nested/f1998", NULL);
}

static void
test_max_bytes(void **state)
{
	static const char	*paths[] = { "data", "conf" };
	const char		*base = *state;
	struct zipw_stats	 st;
	char			 err[ERRLEN];
	uint64_t		 total = 5 + BIG + 4 + 4 + 3;

	fx_tree(base);
	fx_refused(base, paths, 2, total - 1, NULL, "more than the limit of");
	if (fx_zip(base, paths, 2, total, NULL, &st, err) != 0)
		fail_msg("zipw: %s", err);
	assert_int_equal(st.bytes_in, total);
}

/* A file that grows after the walk still meets the limit. */
static void
test_grew_past_max(void **state)
{
	static const char	*paths[] = { "." };
	const char		*base = *state;
	struct prog		 pr;
	char			 root[PATH_MAX];
	char			*big;

	unit_path(root, base, "root");
	mk_dir(root, "", 0755);
	big = pattern(BIG);
	mk_file(root, "a", big, BIG, 0644);
	free(big);
	mk_file(root, "b", "b", 1, 0644);
	memset(&pr, 0, sizeof(pr));
	pr.base = base;
	pr.act = act_grow_b;
	fx_refused(base, paths, 1, BIG + 10, &pr,
	    "grew past the limit of");
	assert_int_equal(pr.acted, 1);
}

static void
test_cancel(void **state)
{
	static const char	*paths[] = { "data" };
	const char		*base = *state;
	struct prog		 pr;

	fx_tree(base);
	memset(&pr, 0, sizeof(pr));
	pr.cancel_at = 1;	/* before the first byte */
	fx_refused(base, paths, 1, 0, &pr, "cancelled");
	assert_int_equal(pr.calls, 1);
	memset(&pr, 0, sizeof(pr));
	pr.cancel_at = 2;	/* half-way through big.bin */
	fx_refused(base, paths, 1, 0, &pr, "cancelled");
	assert_int_equal(pr.calls, 2);
	assert_true(pr.done > 0 && pr.done < pr.total);
	memset(&pr, 0, sizeof(pr));
	pr.cancel_at = 3;	/* the last call, all read */
	fx_refused(base, paths, 1, 0, &pr, "cancelled");
	assert_int_equal(pr.done, pr.total);
}

static void
test_progress(void **state)
{
	static const char	*paths[] = { "data" };
	const char		*base = *state;
	struct zipw_stats	 st;
	struct prog		 pr;
	char			 err[ERRLEN];

	fx_tree(base);
	memset(&pr, 0, sizeof(pr));
	if (fx_zip(base, paths, 1, 0, &pr, &st, err) != 0)
		fail_msg("zipw: %s", err);
	/* A start, one step into big.bin, an end; not one per read. */
	assert_int_equal(pr.calls, 3);
	assert_int_equal(pr.total, 5 + BIG + 4);
	assert_int_equal(pr.done, pr.total);
	assert_int_equal(st.bytes_in, pr.total);
}

/*
 * z_file becomes a symlink to a secret outside root while a_big is
 * being read: the archive fails and the secret is never read.
 */
static void
test_swap_file_for_link(void **state)
{
	fx_swap(*state, act_file_to_link,
	    "z_file: is a symlink now (not followed); it changed");
}

/* The same with a directory on the way to the file. */
static void
test_swap_dir_for_link(void **state)
{
	fx_swap(*state, act_dir_to_link,
	    "zdir: is a symlink (not followed); it changed");
}

/* A FIFO in a file's place is not opened (that would block). */
static void
test_swap_file_for_fifo(void **state)
{
	fx_swap(*state, act_file_to_fifo,
	    "z_file: is no longer a regular file");
}

/*
 * A file cut short while it is read is stored as read; one that grows
 * is stored up to its size when opened.  Both archives extract.
 */
static void
test_size_changes(void **state)
{
	static const char	*paths[] = { "." };
	const char		*base = *state;
	struct zipw_stats	 st;
	struct prog		 pr;
	zip_stat_t		 zs;
	char			 root[PATH_MAX], err[ERRLEN];
	char			*big;
	zip_t			*za;
	int			 shrink;

	unit_path(root, base, "root");
	for (shrink = 1; shrink >= 0; shrink--) {
		unit_rmtree(root);
		mk_dir(root, "", 0755);
		big = pattern(2 * BIG);
		mk_file(root, "a_big", big, 2 * BIG, 0644);
		free(big);
		memset(&pr, 0, sizeof(pr));
		pr.base = base;
		pr.act = act_resize;
		resize_shrink = shrink;
		if (fx_zip(base, paths, 1, 0, &pr, &st, err) != 0)
			fail_msg("zipw: %s", err);
		assert_int_equal(pr.acted, 1);
		za = open_out(base);
		assert_int_equal(zip_stat(za, "a_big", 0, &zs), 0);
		assert_int_equal(zs.size, st.bytes_in);
		if (shrink)
			assert_true(zs.size > 1024 && zs.size < 2 * BIG);
		else
			assert_int_equal(zs.size, 2 * BIG);
		zip_discard(za);
		fx_extract(base);
	}
}

/* *state: a scratch directory for root/, stage/ and out.zip. */
static int
fx_setup(void **state)
{
	char	path[PATH_MAX];

	if (unit_dir_setup(state) != 0)
		return -1;
	snprintf(path, sizeof(path), "%s/stage", (char *)*state);
	return mkdir(path, 0700);
}

/*
 * root/ as a service might leave it:
 *
 *   data/            0755
 *     a.db           0600 "alpha", mtime MTIME
 *     empty          0644 0 bytes
 *     big.bin        0644 BIG bytes
 *     sub/           0700
 *       deep/        0755
 *         x.txt      0755 "deep"
 *       hollow/      0750 empty
 *       up        -> ../..               inside (root)
 *     link-in     -> sub/deep/x.txt      inside
 *     link-up     -> ../conf/x.properties inside
 *     out-rel     -> ../../etc/passwd    skipped
 *     out-abs     -> /etc/passwd         skipped
 *     chain       -> sub/up/..           skipped: leaves through sub/up
 *     fifo           FIFO                skipped
 *     we\ird         a name unzip refuses, skipped
 *   conf/            0750
 *     x.properties   0640 "k=v\n"
 *     other          0644 "oth"
 *   top.txt          0644 "top\n"
 */
static void
fx_tree(const char *base)
{
	struct timespec	 ts[2];
	char		 root[PATH_MAX], path[PATH_MAX];
	char		*big;

	unit_path(root, base, "root");
	mk_dir(root, "", 0755);
	mk_dir(root, "data", 0755);
	mk_file(root, "data/a.db", "alpha", 5, 0600);
	mk_file(root, "data/empty", "", 0, 0644);
	big = pattern(BIG);
	mk_file(root, "data/big.bin", big, BIG, 0644);
	free(big);
	mk_dir(root, "data/sub", 0700);
	mk_dir(root, "data/sub/deep", 0755);
	mk_file(root, "data/sub/deep/x.txt", "deep", 4, 0755);
	mk_dir(root, "data/sub/hollow", 0750);
	mk_link(root, "data/sub/up", "../..");
	mk_link(root, "data/link-in", "sub/deep/x.txt");
	mk_link(root, "data/link-up", "../conf/x.properties");
	mk_link(root, "data/out-rel", "../../etc/passwd");
	mk_link(root, "data/out-abs", "/etc/passwd");
	mk_link(root, "data/chain", "sub/up/..");
	unit_path(path, root, "data/fifo");
	assert_int_equal(mkfifo(path, 0644), 0);
	mk_file(root, "data/we\\ird", "w", 1, 0644);
	mk_dir(root, "conf", 0750);
	mk_file(root, "conf/x.properties", "k=v\n", 4, 0640);
	mk_file(root, "conf/other", "oth", 3, 0644);
	mk_file(root, "top.txt", "top\n", 4, 0644);

	unit_path(path, root, "data/a.db");
	ts[0].tv_sec = ts[1].tv_sec = MTIME;
	ts[0].tv_nsec = ts[1].tv_nsec = 0;
	assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
}

static int
fx_zip(const char *base, const char *const *paths, size_t n, uint64_t max,
    struct prog *pr, struct zipw_stats *st, char *err)
{
	char	root[PATH_MAX], out[PATH_MAX];

	unit_path(root, base, "root");
	unit_path(out, base, "out.zip");
	err[0] = '\0';
	return zipw_create(root, paths, n, out, max, pr != NULL ? prog_fn :
	    NULL, pr, st, err, ERRLEN);
}

/*
 * root/a_big, then z_file and zdir/f, which act changes into something
 * else (leading to base/secret or base/outside/f) while a_big is read,
 * after the walk: the archive must fail saying want.
 */
static void
fx_swap(const char *base, void (*act)(const char *), const char *want)
{
	static const char	*paths[] = { "." };
	struct prog		 pr;
	char			 root[PATH_MAX];
	char			*big;

	unit_path(root, base, "root");
	mk_dir(root, "", 0755);
	mk_file(base, "secret", "SECRET", 6, 0600);
	mk_dir(base, "outside", 0755);
	mk_file(base, "outside/f", "SECRET", 6, 0600);
	big = pattern(BIG);
	mk_file(root, "a_big", big, BIG, 0644);
	free(big);
	mk_file(root, "z_file", "harmless", 8, 0644);
	mk_dir(root, "zdir", 0755);
	mk_file(root, "zdir/f", "harmless", 8, 0644);
	memset(&pr, 0, sizeof(pr));
	pr.base = base;
	pr.act = act;
	fx_refused(base, paths, 1, 0, &pr, want);
	assert_int_equal(pr.acted, 1);
}

/* Must fail saying want, leaving no archive and no temporary file. */
static void
fx_refused(const char *base, const char *const *paths, size_t n,
    uint64_t max, struct prog *pr, const char *want)
{
	struct zipw_stats	st;
	char			err[ERRLEN];

	if (fx_zip(base, paths, n, max, pr, &st, err) != -1)
		fail_msg("accepted; wanted \"%s\"", want);
	assert_contains(err, want);
	fx_no_output(base);
}

/* Only root/, stage/ and files the test made lie in base. */
static void
fx_no_output(const char *base)
{
	struct dirent	*de;
	DIR		*d;

	assert_non_null(d = opendir(base));
	while ((de = readdir(d)) != NULL)
		if (strncmp(de->d_name, "out.zip", 7) == 0)
			fail_msg("%s/%s exists", base, de->d_name);
	closedir(d);
}

/* out.zip through the hostile-archive checks, into an empty stage/. */
static void
fx_extract(const char *base)
{
	struct unzip_limits	lim;
	struct unzip_stats	st;
	char			out[PATH_MAX], stage[PATH_MAX];
	char			err[ERRLEN];

	memset(&lim, 0, sizeof(lim));
	lim.max_entries = 100000;
	lim.max_bytes = 1ULL << 30;
	lim.threads = 1;
	unit_path(out, base, "out.zip");
	unit_path(stage, base, "stage");
	(void)nftw(stage, unit_unlock_one, 16, FTW_PHYS);
	unit_rmtree(stage);
	assert_int_equal(mkdir(stage, 0700), 0);
	if (unzip_extract(out, stage, &lim, NULL, NULL, &st, err,
	    sizeof(err)) != 0)
		fail_msg("unzip_extract: %s", err);
}

/*
 * stage/name is what root/name is: the same bytes, the same symlink
 * target (link != NULL), or an empty directory (link "").
 */
static void
fx_same(const char *base, const char *name, const char *link)
{
	struct stat	 sb;
	char		 a[PATH_MAX], b[PATH_MAX], buf[PATH_MAX];
	char		*x, *y;
	size_t		 xl, yl;
	ssize_t		 n;

	snprintf(a, sizeof(a), "%s/root/%s", base, name);
	snprintf(b, sizeof(b), "%s/stage/%s", base, name);
	if (lstat(b, &sb) != 0)
		fail_msg("%s not extracted: %s", name, strerror(errno));
	if (link != NULL && link[0] == '\0') {
		assert_true(S_ISDIR(sb.st_mode));
		return;
	}
	if (link != NULL) {
		assert_true(S_ISLNK(sb.st_mode));
		assert_true((n = readlink(b, buf, sizeof(buf) - 1)) > 0);
		buf[n] = '\0';
		assert_string_equal(buf, link);
		return;
	}
	assert_true(S_ISREG(sb.st_mode));
	x = slurp(a, &xl);
	y = slurp(b, &yl);
	assert_int_equal(xl, yl);
	assert_memory_equal(x, y, xl);
	free(x);
	free(y);
}

/* dir/name with exactly mode; name "" is dir itself. */
static void
mk_dir(const char *dir, const char *name, mode_t mode)
{
	char	path[PATH_MAX];

	unit_path(path, dir, name);
	assert_int_equal(mkdir(path, 0700), 0);
	assert_int_equal(chmod(path, mode), 0);
}

static void
mk_file(const char *dir, const char *name, const void *data, size_t len,
    mode_t mode)
{
	char	path[PATH_MAX];
	int	fd;

	unit_path(path, dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd != -1);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	assert_int_equal(fchmod(fd, mode), 0);
	assert_int_equal(close(fd), 0);
}

static void
mk_link(const char *dir, const char *name, const char *target)
{
	char	path[PATH_MAX];

	unit_path(path, dir, name);
	assert_int_equal(symlink(target, path), 0);
}

/* All of a file; the caller frees it. */
static char *
slurp(const char *path, size_t *len)
{
	struct stat	 sb;
	char		*buf;
	ssize_t		 n;
	size_t		 got = 0;
	int		 fd;

	assert_true((fd = open(path, O_RDONLY | O_CLOEXEC)) != -1);
	assert_int_equal(fstat(fd, &sb), 0);
	assert_non_null(buf = malloc((size_t)sb.st_size + 1));
	while ((n = read(fd, buf + got, (size_t)sb.st_size + 1 - got)) > 0)
		got += (size_t)n;
	assert_true(n == 0);
	close(fd);
	*len = got;
	return buf;
}

/* Bytes that compress a little, and not to nothing. */
static char *
pattern(size_t len)
{
	uint32_t	 x = 2463534242u;
	char		*p;
	size_t		 i;

	assert_non_null(p = malloc(len));
	for (i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		p[i] = (char)('a' + x % 8);
	}
	return p;
}

/* name is stored as a unix entry with exactly mode (type included). */
static void
expect_entry(zip_t *za, const char *name, mode_t mode)
{
	zip_int64_t	i;
	zip_uint8_t	opsys;
	zip_uint32_t	attr;

	if ((i = zip_name_locate(za, name, ZIP_FL_ENC_RAW)) < 0)
		fail_msg("no entry %s", name);
	assert_int_equal(zip_file_get_external_attributes(za,
	    (zip_uint64_t)i, 0, &opsys, &attr), 0);
	assert_int_equal(opsys, ZIP_OPSYS_UNIX);
	if ((attr >> 16) != mode)
		fail_msg("%s: mode 0%o, want 0%o", name, attr >> 16,
		    (unsigned)mode);
}

static void
expect_absent(zip_t *za, const char *name)
{
	char	dir[PATH_MAX];

	snprintf(dir, sizeof(dir), "%s/", name);
	if (zip_name_locate(za, name, ZIP_FL_ENC_RAW) >= 0 ||
	    zip_name_locate(za, dir, ZIP_FL_ENC_RAW) >= 0)
		fail_msg("%s is in the archive", name);
}

static zip_t *
open_out(const char *base)
{
	char	 path[PATH_MAX];
	zip_t	*za;
	int	 zerr;

	unit_path(path, base, "out.zip");
	assert_non_null(za = zip_open(path, ZIP_RDONLY | ZIP_CHECKCONS,
	    &zerr));
	return za;
}

static int
prog_fn(void *arg, uint64_t done, uint64_t total)
{
	struct prog	*pr = arg;

	pr->calls++;
	pr->done = done;
	pr->total = total;
	if (pr->act != NULL && !pr->acted && done > 0) {
		pr->act(pr->base);
		pr->acted = 1;
	}
	return pr->cancel_at > 0 && pr->calls >= pr->cancel_at;
}

static void
act_file_to_link(const char *base)
{
	char	path[PATH_MAX], secret[PATH_MAX];

	unit_path(path, base, "root/z_file");
	unit_path(secret, base, "secret");
	assert_int_equal(unlink(path), 0);
	assert_int_equal(symlink(secret, path), 0);
}

static void
act_dir_to_link(const char *base)
{
	char	path[PATH_MAX], old[PATH_MAX], outside[PATH_MAX];

	unit_path(path, base, "root/zdir");
	unit_path(old, base, "zdir.old");
	unit_path(outside, base, "outside");
	assert_int_equal(rename(path, old), 0);
	assert_int_equal(symlink(outside, path), 0);
}

static void
act_file_to_fifo(const char *base)
{
	char	path[PATH_MAX];

	unit_path(path, base, "root/z_file");
	assert_int_equal(unlink(path), 0);
	assert_int_equal(mkfifo(path, 0644), 0);
}

static void
act_grow_b(const char *base)
{
	char	path[PATH_MAX];
	int	fd;

	unit_path(path, base, "root/b");
	assert_true((fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC)) != -1);
	assert_int_equal(write(fd, "0123456789abcdef", 16), 16);
	close(fd);
}

/* a_big, while it is read: cut to 1 KiB, or grown by 1 MiB. */
static void
act_resize(const char *base)
{
	char	 path[PATH_MAX];
	char	*more;
	int	 fd;

	unit_path(path, base, "root/a_big");
	assert_true((fd = open(path, O_WRONLY | O_CLOEXEC)) != -1);
	if (resize_shrink) {
		assert_int_equal(ftruncate(fd, 1024), 0);
	} else {
		more = pattern(1 << 20);
		assert_true(lseek(fd, 0, SEEK_END) > 0);
		assert_int_equal(write(fd, more, 1 << 20), 1 << 20);
		free(more);
	}
	close(fd);
}
