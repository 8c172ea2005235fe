/*
 * test_fs: removal of trees that may be read-only or belong to a service:
 * everything inside goes, nothing a link points to is touched, and a tree
 * thousands of directories deep goes too, without a descriptor per level.
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

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_rmtree_readonly_and_links,
		    unit_dir_setup, unit_dir_teardown),
		cmocka_unit_test_setup_teardown(test_rmtree_deep,
		    unit_dir_setup, unit_dir_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
