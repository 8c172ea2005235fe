/*
 * test_fs: removal of trees that may be read-only or belong to a service:
 * everything inside goes, nothing a link points to is touched, and a tree
 * thousands of directories deep goes too, without a descriptor per level.
 * And the one rule for relative paths (fs_relpath_ok): what it takes,
 * what it refuses, and that its message names the field and the fault.
 */
#include "unit.h"

#include "fs.h"

static void
test_rmtree_readonly_and_links(void **state)
{
	const char	*dir = *state;
	char		 t[PATH_MAX], p[PATH_MAX], out[PATH_MAX], v[PATH_MAX];
	char		 buf[64];
	struct stat	 st;

	unit_path(out, dir, "outside");
	assert_int_equal(mkdir(out, 0750), 0);
	unit_path(v, dir, "outside/victim");
	unit_write(v, "keep\n", 0600);
	unit_path(t, dir, "tree");
	assert_int_equal(mkdir(t, 0755), 0);
	unit_path(p, dir, "tree/sub");
	assert_int_equal(mkdir(p, 0755), 0);
	unit_path(p, dir, "tree/sub/f");
	unit_write(p, "x\n", 0444);
	unit_path(p, dir, "tree/dirlink");
	assert_int_equal(symlink(out, p), 0);
	unit_path(p, dir, "tree/filelink");
	assert_int_equal(symlink(v, p), 0);
	unit_path(p, dir, "tree/sub");
	assert_int_equal(chmod(p, 0555), 0);
	assert_int_equal(chmod(t, 0555), 0);

	assert_int_equal(fs_rmtree(t), 0);
	assert_int_equal(lstat(t, &st), -1);
	/* What the links pointed to is untouched, mode included. */
	assert_int_equal(stat(out, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0750);
	unit_read(v, buf, sizeof(buf));
	assert_string_equal(buf, "keep\n");
	/* A path that is not there, or a plain file, is fine too. */
	assert_int_equal(fs_rmtree(t), 0);
	assert_int_equal(fs_rmtree(v), 0);
	assert_int_equal(lstat(v, &st), -1);
}

static void
test_rmtree_deep(void **state)
{
	const char	*dir = *state;
	char		 t[PATH_MAX], p[PATH_MAX];
	int		 i, fd, next;

	unit_path(t, dir, "deep");
	assert_int_equal(mkdir(t, 0755), 0);
	fd = open(t, O_RDONLY | O_DIRECTORY);
	assert_true(fd != -1);
	for (i = 0; i < 1000; i++) {
		assert_int_equal(mkdirat(fd, "d", 0755), 0);
		next = openat(fd, "d", O_RDONLY | O_DIRECTORY);
		assert_true(next != -1);
		close(fd);
		fd = next;
	}
	close(fd);
	assert_int_equal(fs_rmtree(t), 0);
	unit_path(p, dir, "deep");
	assert_false(fs_exists(p));
}

static void
test_relpath_ok(void **state)
{
	static const struct {
		const char	*path;
		int		 flags;
	} ok[] = {
		{ "a", 0 }, { "bin/run", 0 }, { "a.b/c-d_e", 0 },
		{ ".hidden", 0 }, { "..a", 0 }, { "a..", 0 }, { "a/...", 0 },
		{ "conf/", FS_REL_DIR }, { "a/b/", FS_REL_DIR },
		{ ".", FS_REL_DOT }, { "./", FS_REL_DOT },
		{ ".", FS_REL_DOT | FS_REL_DIR }, { "a/b", FS_REL_DIR },
		{ "with space/and\\backslash", 0 },
	};
	char	err[256], longest[FS_RELPATH_MAX + 1];
	size_t	i;

	(void)state;
	for (i = 0; i < nitems(ok); i++) {
		err[0] = '\0';
		if (fs_relpath_ok("f", ok[i].path, ok[i].flags, err,
		    sizeof(err)) != 0)
			fail_msg("refused '%s' (flags %d): %s", ok[i].path,
			    ok[i].flags, err);
	}
	memset(longest, 'x', FS_RELPATH_MAX);
	longest[FS_RELPATH_MAX] = '\0';
	assert_int_equal(fs_relpath_ok("f", longest, 0, err, sizeof(err)), 0);
}

static void
test_relpath_refused(void **state)
{
	static const struct {
		const char	*path;
		int		 flags;
		const char	*why;
	} bad[] = {
		{ "", FS_REL_DOT | FS_REL_DIR,
		    "f.x: must be a non-empty relative path of at most 1024" },
		{ "/etc/passwd", FS_REL_DIR, "f.x: '/etc/passwd' is absolute" },
		{ "/", FS_REL_DOT | FS_REL_DIR, "f.x: '/' is absolute" },
		{ "a\nb", 0, "f.x: contains a control character" },
		{ "a\x7f", 0, "f.x: contains a control character" },
		{ "..", FS_REL_DOT | FS_REL_DIR, "f.x: '..' has an empty, '.' "
		    "or '..' component" },
		{ "../x", 0, "'../x' has an empty, '.' or '..' component" },
		{ "a/../../x", 0, "'a/../../x' has an empty" },
		{ "a/..", FS_REL_DIR, "'a/..' has an empty" },
		{ "a/../", FS_REL_DIR, "'a/../' has an empty" },
		{ "./a", FS_REL_DOT, "'./a' has an empty" },
		{ "a/./b", 0, "'a/./b' has an empty" },
		{ "a//b", FS_REL_DIR, "'a//b' has an empty" },
		{ ".", 0, "'.' has an empty" },
		{ "./", FS_REL_DIR, "'./' has an empty" },
		{ "conf/", 0,
		    "f.x: 'conf/' must name a file, not a directory" },
	};
	char	err[256], toolong[FS_RELPATH_MAX + 2];
	size_t	i;

	(void)state;
	for (i = 0; i < nitems(bad); i++) {
		err[0] = '\0';
		if (fs_relpath_ok("f.x", bad[i].path, bad[i].flags, err,
		    sizeof(err)) == 0)
			fail_msg("accepted '%s' (flags %d)", bad[i].path,
			    bad[i].flags);
		assert_contains(err, bad[i].why);
	}
	assert_int_equal(fs_relpath_ok("f.x", NULL, FS_REL_DOT, err,
	    sizeof(err)), -1);
	assert_contains(err, "f.x: must be a non-empty relative path");
	memset(toolong, 'x', FS_RELPATH_MAX + 1);
	toolong[FS_RELPATH_MAX + 1] = '\0';
	assert_int_equal(fs_relpath_ok("f.x", toolong, 0, err, sizeof(err)),
	    -1);
	assert_contains(err, "at most 1024 bytes");
	/* A short buffer gets a cut message, never an overflow. */
	assert_int_equal(fs_relpath_ok("f.x", "/x", 0, err, 8), -1);
	assert_int_equal(strlen(err), 7);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_rmtree_readonly_and_links,
		    unit_dir_setup, unit_dir_teardown),
		cmocka_unit_test_setup_teardown(test_rmtree_deep,
		    unit_dir_setup, unit_dir_teardown),
		cmocka_unit_test(test_relpath_ok),
		cmocka_unit_test(test_relpath_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
