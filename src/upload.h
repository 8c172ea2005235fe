/*
 * upload: one request body on its way to a file under PREFIX/tmp, hashed
 * as the bytes arrive and bounded in size, so that a zip pushed to
 * POST /api/v1/artifacts/{g}/{a}/{v} is never held in memory.  http.c
 * feeds it; the handler finishes it and hands the file to the install
 * job (upload_keep), or the end of the request deletes it.
 */
#ifndef NODEE_UPLOAD_H
#define NODEE_UPLOAD_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include <gnutls/crypto.h>

struct upload {
	int			 fd;		/* -1 when nothing is kept */
	char			 path[PATH_MAX];
	uint64_t		 bytes;		/* received, kept or not */
	uint64_t		 max;
	gnutls_hash_hd_t	 sha256;
	int			 error;		/* errno of the first failure */
	int			 refused;	/* not authenticated: dropped */
	int			 kept;		/* the file now belongs to a job */
	char			 hex[65];	/* after upload_finish */
};

void	upload_open(struct upload *, const char *, uint64_t);
void	upload_refuse(struct upload *);
void	upload_write(struct upload *, const void *, size_t);
int	upload_finish(struct upload *, char *, size_t);
void	upload_keep(struct upload *);
void	upload_close(struct upload *);

#endif
