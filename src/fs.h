/*
 * fs: file-system helpers shared by the jobs: recursive removal of trees
 * that may be read-only, mkdir -p, fsync of a directory so that a rename
 * in it is durable, and the one rule for a relative path a spec gives.
 */
#ifndef NODEE_FS_H
#define NODEE_FS_H

#include <sys/types.h>

int	fs_rmtree(const char *);
int	fs_mkdirs(const char *, mode_t);
int	fs_fsync_dir(const char *);
int	fs_parent_fsync(const char *);
int	fs_exists(const char *);
int	fs_chown_tree(const char *, uid_t, gid_t);

#define FS_RELPATH_MAX	1024
#define FS_REL_DOT	0x1	/* "." alone names the directory itself */
#define FS_REL_DIR	0x2	/* a trailing '/' is allowed */
int	fs_relpath_ok(const char *, const char *, int, char *, size_t);

#endif
