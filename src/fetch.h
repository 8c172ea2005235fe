/*
 * fetch: HTTP(S) and S3 transfers with libcurl for jobs.  Only http and
 * https (also on redirects), connect and low-speed timeouts, a size
 * limit, at most `tries` attempts with backoff on connection errors and
 * 5xx (a 4xx fails at once), and SHA-256 (optionally SHA-1) computed
 * while the bytes go by, so a file is never read twice.  s3://bucket/key
 * URLs go to a path-style endpoint, signed with AWS Signature V4.
 */
#ifndef NODEE_FETCH_H
#define NODEE_FETCH_H

#include <stddef.h>
#include <stdint.h>

/* Returns non-zero to cancel the transfer. */
typedef int	(*fetch_progress_fn)(void *, uint64_t, uint64_t);

/* s3:// URLs: s3://bucket/key, path-style on endpoint, signed with SigV4. */
struct fetch_s3 {
	const char	*endpoint;	/* "https://s3.us-east-1.amazonaws.com" */
	const char	*region;	/* "us-east-1" */
	const char	*access_key_id;
	const char	*secret_access_key;
	const char	*session_token;	/* NULL or x-amz-security-token */
};

struct fetch_opts {
	const char		*url;
	int			 fd;		/* output (input of a PUT) */
	uint64_t		 max_bytes;	/* 0: no limit */
	long			 connect_timeout_s;	/* 0: 10 */
	long			 low_speed_time_s;	/* 0: 30 */
	long			 low_speed_bytes;	/* 0: 1024 per second */
	int			 tries;			/* 0: 3 */
	int			 want_sha1;
	fetch_progress_fn	 progress;	/* may be NULL */
	void			*arg;
	const struct fetch_s3	*s3;		/* NULL: s3:// is refused */
	const char		*content_type;	/* PUT; NULL: octet-stream */
	const char		*sha256;	/* PUT: the body's, if known */
};

struct fetch_result {
	long		http_status;	/* of the last attempt, 0 if none */
	uint64_t	bytes;		/* body bytes in fd (sent by a PUT) */
	char		sha256[65];	/* lower-case hex of the body */
	char		sha1[41];	/* when want_sha1 */
	int		cancelled;	/* the progress callback said stop */
	int		attempts;
};

int	fetch_global_init(void);
void	fetch_global_cleanup(void);
int	fetch_url_ok(const char *, char *, size_t);
int	fetch_url_ok_s3(const char *, char *, size_t);
int	fetch_s3_url(const struct fetch_s3 *, const char *, char *, size_t,
	    char *, size_t);
int	fetch_file(const struct fetch_opts *, struct fetch_result *, char *,
	    size_t);
int	fetch_put_file(const struct fetch_opts *, uint64_t,
	    struct fetch_result *, char *, size_t);
int	fetch_text(const char *, char *, size_t, long *, char *, size_t);
int	fetch_text_cb(const char *, char *, size_t, long *, fetch_progress_fn,
	    void *, char *, size_t);
void	fetch_url_redact(const char *, char *, size_t);
int	fetch_url_suffix(const char *, const char *, char *, size_t);

#endif
