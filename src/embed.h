/*
 * embed: files compiled into the binary (sql/ migrations, assets/), so that
 * an installed nodee needs nothing beside itself.  The table is generated
 * by tools/embed.sh at build time and ends with a NULL name.
 */
#ifndef NODEE_EMBED_H
#define NODEE_EMBED_H

#include <stddef.h>

struct embed_file {
	const char		*name;
	const unsigned char	*data;
	size_t			 len;
	const char		*etag;	/* "\"<sha-256 prefix>\"" */
};

extern const struct embed_file	embed_files[];

const struct embed_file	*embed_find(const char *);

#endif
