/*
 * upload: a request body streamed into PREFIX/tmp/upload-XXXXXX (0600,
 * made by root in a directory only root can enter), SHA-256 computed on
 * the way.  Past max bytes nothing more is written and the finish says
 * so; the rest of the body is read and dropped, so that the client gets
 * its 413 instead of a reset connection.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "upload.h"

/*
 * Starts an upload into a new file in dir.  Never fails by itself: a
 * file that cannot be made is recorded in u->error, and upload_finish
 * reports it when the body is over.
 */
void
upload_open(struct upload *u, const char *dir, uint64_t max)
{
	memset(u, 0, sizeof(*u));
	u->fd = -1;
	u->max = max;
	if (snprintf(u->path, sizeof(u->path), "%s/upload-XXXXXX", dir) >=
	    (int)sizeof(u->path)) {
		u->path[0] = '\0';
		u->error = ENAMETOOLONG;
		return;
	}
	if ((u->fd = mkostemp(u->path, O_CLOEXEC)) == -1) {
		u->error = errno;
		u->path[0] = '\0';
		return;
	}
	if (gnutls_hash_init(&u->sha256, GNUTLS_DIG_SHA256) != 0) {
		u->sha256 = NULL;
		u->error = ENOMEM;
	}
}

/* A body from a client that may not upload: counted, never written. */
void
upload_refuse(struct upload *u)
{
	memset(u, 0, sizeof(*u));
	u->fd = -1;
	u->refused = 1;
}

void
upload_write(struct upload *u, const void *data, size_t len)
{
	const char	*p = data;
	ssize_t		 n;

	u->bytes += len;
	if (u->fd == -1 || u->error != 0)
		return;
	if (u->bytes > u->max) {
		u->error = EFBIG;
		return;
	}
	gnutls_hash(u->sha256, data, len);
	while (len > 0) {
		if ((n = write(u->fd, p, len)) == -1) {
			if (errno == EINTR)
				continue;
			u->error = errno;
			return;
		}
		p += n;
		len -= (size_t)n;
	}
}

/*
 * The body is over: the file is synced and u->hex holds its SHA-256.
 * -1 with err when the body was empty, too large or not written.
 */
int
upload_finish(struct upload *u, char *err, size_t errlen)
{
	unsigned char	 d[32];
	size_t		 i;

	if (u->error == EFBIG) {
		snprintf(err, errlen, "the zip is larger than download_max "
		    "(%llu bytes)", (unsigned long long)u->max);
		return -1;
	}
	if (u->error != 0) {
		snprintf(err, errlen, "cannot keep the upload in the prefix's "
		    "tmp/: %s", strerror(u->error));
		return -1;
	}
	if (u->fd == -1 || u->bytes == 0) {
		snprintf(err, errlen, "the body is empty: send the zip itself");
		return -1;
	}
	if (fsync(u->fd) != 0) {
		snprintf(err, errlen, "cannot sync the upload: %s",
		    strerror(errno));
		return -1;
	}
	gnutls_hash_output(u->sha256, d);
	for (i = 0; i < sizeof(d); i++)
		snprintf(u->hex + 2 * i, 3, "%02x", d[i]);
	return 0;
}

/* The file now belongs to whoever took u->path; upload_close keeps it. */
void
upload_keep(struct upload *u)
{
	u->kept = 1;
}

/* The end of the request: the file goes unless it was kept. */
void
upload_close(struct upload *u)
{
	if (u->sha256 != NULL)
		gnutls_hash_deinit(u->sha256, NULL);
	u->sha256 = NULL;
	if (u->fd != -1)
		close(u->fd);
	u->fd = -1;
	if (u->path[0] != '\0' && !u->kept)
		unlink(u->path);
	u->path[0] = '\0';
}
