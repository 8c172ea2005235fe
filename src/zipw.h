/*
 * zipw: writes a snapshot of part of a directory tree as a ZIP archive
 * (libzip), for trees an untrusted user owns and may change while they
 * are read: no symlink is ever followed, every name is opened relative
 * to a descriptor of the root, and the archive is one that unzip_extract
 * accepts.
 */
#ifndef NODEE_ZIPW_H
#define NODEE_ZIPW_H

#include <stddef.h>
#include <stdint.h>

struct zipw_stats {
	uint64_t	files, dirs, symlinks;
	uint64_t	skipped;	/* special files, links leading out */
	uint64_t	bytes_in;	/* file bytes read */
	uint64_t	bytes_out;	/* size of the archive */
	char		sha256[65];	/* of the archive, lower-case hex */
	char		first_skipped[256];	/* a name, for the event */
};

/* bytes read so far, file bytes found by the walk; non-zero cancels. */
typedef int	(*zipw_progress_fn)(void *, uint64_t, uint64_t);

int	zipw_create(const char *, const char *const *, size_t, const char *,
	    uint64_t, zipw_progress_fn, void *, struct zipw_stats *, char *,
	    size_t);

#endif
