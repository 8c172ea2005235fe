/*
 * unzip: unpacks a ZIP archive (libzip) into an empty staging directory,
 * refusing hostile archives: names with "..", "\", absolute paths, empty
 * or "." components, NUL or control characters; symlinks whose target
 * leaves the tree; duplicate names; overlapping entries (the
 * overlapping-file zip bomb); more entries or more uncompressed bytes than
 * the limits (counted while writing, not taken from the headers); CRC and
 * length errors (every entry is read to its end).
 */
#ifndef NODEE_UNZIP_H
#define NODEE_UNZIP_H

#include <stddef.h>
#include <stdint.h>

struct unzip_limits {
	uint64_t	max_entries;
	uint64_t	max_bytes;	/* uncompressed, whole archive */
	unsigned	threads;	/* 0 or 1: one thread */
	int		writable;	/* 0644/0755, not the read-only 0444/0555 */
};

struct unzip_stats {
	uint64_t	files;
	uint64_t	dirs;
	uint64_t	symlinks;
	uint64_t	bytes;		/* uncompressed bytes written */
};

/* bytes written so far, bytes declared in total; non-zero cancels. */
typedef int	(*unzip_progress_fn)(void *, uint64_t, uint64_t);

int	unzip_extract(const char *, const char *, const struct unzip_limits *,
	    unzip_progress_fn, void *, struct unzip_stats *, char *, size_t);
int	unzip_name_ok(const char *, size_t, char *, size_t);
int	unzip_link_ok(const char *, const char *, char *, size_t);

#endif
