/*
 * fetch: HTTP(S) downloads for the job workers, with libcurl.
 *
 * Every download runs on the calling worker thread with its own easy
 * handle; nothing is shared between threads but libcurl's global state,
 * which main sets up before any thread starts.  Only http and https are
 * spoken, also after a redirect, so a depot cannot bounce nodee to
 * file:// or to another protocol.  The body is hashed in the write
 * callback while it arrives, so a large artifact is read from the
 * network once and never again from disk to verify it.
 *
 * Retries: a failure the next attempt may not repeat (no connection, a
 * timeout, a connection closed early, a 5xx) is tried again after a short
 * backoff; an answer that will not change (a 4xx, a redirect to another
 * protocol, a body over the limit, a full disk) fails at once.  Each
 * attempt starts the file and the digests from scratch, so a half-written
 * body never mixes with the next one.
 *
 * URLs may carry user:password; they are used but never logged: every
 * message names the URL without them.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <gnutls/gnutls.h>
#include <gnutls/crypto.h>

#include "fetch.h"
#include "log.h"
#include "nodee.h"

#define FETCH_TRIES		3
#define FETCH_CONNECT_S		10L
#define FETCH_LOW_SPEED_S	30L
#define FETCH_LOW_SPEED_BYTES	1024L
#define FETCH_MAX_REDIRS	5L
#define FETCH_BACKOFF_MS	200L
#define FETCH_BACKOFF_MAX_MS	2000L
#define FETCH_SLEEP_STEP_MS	50L
#define FETCH_PROTOCOLS		"http,https"
#define FETCH_USER_AGENT	"nodee/" NODEE_VERSION
#define FETCH_URL_SHOWN		512
#define FETCH_WHY_LEN		(FETCH_URL_SHOWN + CURL_ERROR_SIZE + 128)

enum fetch_verdict {
	FETCH_DONE,		/* a 2xx with the whole body */
	FETCH_RETRY,		/* the next attempt may do better */
	FETCH_FAIL,		/* it will not: stop now */
};

/* One download, across its attempts. */
struct fetch_xfer {
	const struct fetch_opts	*opts;
	CURL			*curl;
	char			 url[FETCH_URL_SHOWN];	/* without credentials */
	int			 fd;		/* -1: into buf */
	char			*buf;		/* max + 1 bytes */
	uint64_t		 max;		/* 0: no limit */
	int			 hashing;
	gnutls_hash_hd_t	 sha256;	/* NULL when not in use */
	gnutls_hash_hd_t	 sha1;

	/* Reset on each attempt. */
	uint64_t		 bytes;
	long			 status;
	int			 bad_status;	/* aborted: not a 2xx */
	int			 responded;	/* a whole response arrived */
	int			 too_big;
	int			 cancelled;
	int			 write_errno;
	int			 hash_err;
	char			 errbuf[CURL_ERROR_SIZE];
};

static int	fetch_setup(struct fetch_xfer *, const char *, char *, size_t);
static int	fetch_run(struct fetch_xfer *, int, int *, char *, size_t);
static int	fetch_start_attempt(struct fetch_xfer *, char *, size_t);
static enum fetch_verdict
		fetch_judge(struct fetch_xfer *, CURLcode, char *, size_t);
static int	fetch_retryable(CURLcode);
static int	fetch_backoff(struct fetch_xfer *, long);
static size_t	fetch_write(char *, size_t, size_t, void *);
static int	fetch_write_all(int, const char *, size_t);
static int	fetch_xferinfo(void *, curl_off_t, curl_off_t, curl_off_t,
		    curl_off_t);
static void	fetch_hash_free(struct fetch_xfer *);
static void	fetch_hash_hex(gnutls_hash_hd_t *, size_t, char *);
static void	fetch_xfer_free(struct fetch_xfer *);

/* Once, from main, before any thread starts: libcurl is not safe else. */
int
fetch_global_init(void)
{
	const curl_version_info_data	*v;

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		log_error("fetch", "cannot initialise libcurl");
		return -1;
	}
	v = curl_version_info(CURLVERSION_NOW);
	/* CURLOPT_PROTOCOLS_STR, which keeps redirects on http(s), is 7.85. */
	if (v->version_num < 0x075500) {
		log_error("fetch", "libcurl %s is too old: nodee needs 7.85.0 "
		    "or newer", v->version);
		curl_global_cleanup();
		return -1;
	}
	log_debug("fetch", "libcurl %s, %s", v->version,
	    v->ssl_version ? v->ssl_version : "no TLS");
	return 0;
}

void
fetch_global_cleanup(void)
{
	curl_global_cleanup();
}

/*
 * 1 if url is an http or https URL with a host, else 0 with the reason
 * in why.  Stricter than libcurl, which would read "http:///x" as the host
 * x: a URL nodee fetches must say plainly where it goes.
 */
int
fetch_url_ok(const char *url, char *why, size_t whylen)
{
	CURLU		*u;
	CURLUcode	 rc;
	char		*scheme = NULL, *host = NULL, dummy[1];
	const char	*auth;
	int		 ok = 0;

	if (why == NULL || whylen == 0) {
		why = dummy;
		whylen = sizeof(dummy);
	}
	if (url == NULL || url[0] == '\0') {
		snprintf(why, whylen, "the URL is empty");
		return 0;
	}
	if ((u = curl_url()) == NULL) {
		snprintf(why, whylen, "out of memory");
		return 0;
	}
	rc = curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME);
	if (rc == CURLUE_OK)
		rc = curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
	if (rc == CURLUE_OK && strcmp(scheme, "http") != 0 &&
	    strcmp(scheme, "https") != 0) {
		snprintf(why, whylen, "only http and https URLs are allowed, "
		    "not %.32s", scheme);
		goto out;
	}
	if (rc == CURLUE_OK && (curl_url_get(u, CURLUPART_HOST, &host, 0) !=
	    CURLUE_OK || host[0] == '\0'))
		rc = CURLUE_NO_HOST;
	if (rc == CURLUE_OK) {
		/* curl accepts "http:/h" and "http:///h"; RFC 3986 does not. */
		auth = url + strlen(scheme);
		if (strncmp(auth, "://", 3) != 0 || auth[3] == '\0' ||
		    strchr("/?#", auth[3]) != NULL)
			rc = CURLUE_NO_HOST;
	}

	if (rc == CURLUE_OK)
		ok = 1;
	else if (rc == CURLUE_NO_HOST)
		snprintf(why, whylen, "the URL has no host: it must start with "
		    "http://host or https://host");
	else if ((rc == CURLUE_BAD_SCHEME || rc == CURLUE_NO_SCHEME) &&
	    strstr(url, "://") == NULL)
		snprintf(why, whylen, "the URL has no scheme: only http and "
		    "https URLs are allowed (http://host/path)");
	else
		snprintf(why, whylen, "not a valid URL: %s",
		    curl_url_strerror(rc));
out:
	curl_free(scheme);
	curl_free(host);
	curl_url_cleanup(u);
	return ok;
}

/*
 * Downloads opts->url into opts->fd, which is truncated first and again
 * before each retry.  0 when a 2xx arrived whole, with its size and
 * digests in res; -1 with err otherwise (res->cancelled tells a cancel
 * from a failure).  Blocks the calling thread for the whole download.
 */
int
fetch_file(const struct fetch_opts *opts, struct fetch_result *res,
    char *err, size_t errlen)
{
	struct fetch_xfer	x;
	int			rc;

	memset(res, 0, sizeof(*res));
	memset(&x, 0, sizeof(x));
	if (opts->fd < 0) {
		fetch_url_redact(opts->url, x.url, sizeof(x.url));
		snprintf(err, errlen, "cannot fetch %s: no output file", x.url);
		return -1;
	}
	x.opts = opts;
	x.fd = opts->fd;
	x.max = opts->max_bytes;
	x.hashing = 1;
	if (fetch_setup(&x, opts->url, err, errlen) == -1) {
		fetch_xfer_free(&x);
		return -1;
	}
	rc = fetch_run(&x, 0, &res->attempts, err, errlen);
	res->http_status = x.status;
	res->bytes = x.bytes;
	res->cancelled = x.cancelled;
	if (rc == 0) {
		fetch_hash_hex(&x.sha256, gnutls_hash_get_len(GNUTLS_DIG_SHA256),
		    res->sha256);
		if (opts->want_sha1)
			fetch_hash_hex(&x.sha1,
			    gnutls_hash_get_len(GNUTLS_DIG_SHA1), res->sha1);
		log_info("fetch", "%s: %" PRIu64 " bytes, sha256 %s", x.url,
		    x.bytes, res->sha256);
	}
	fetch_xfer_free(&x);
	return rc;
}

/*
 * A small GET, such as a "<url>.sha256" sidecar, into buf (at most
 * buflen - 1 bytes, NUL-terminated; a longer body is an error).  0 when a
 * response arrived, whatever its status, which goes to *status: the
 * caller decides what a 404 means.  buf holds only a 2xx body; for any
 * other status it is empty.  -1 with err when no response arrived.
 */
int
fetch_text(const char *url, char *buf, size_t buflen, long *status,
    char *err, size_t errlen)
{
	return fetch_text_cb(url, buf, buflen, status, NULL, NULL, err,
	    errlen);
}

/*
 * fetch_text with a progress callback, so that a job's cancel (or the
 * daemon's shutdown) also interrupts a small fetch that hangs.
 */
int
fetch_text_cb(const char *url, char *buf, size_t buflen, long *status,
    fetch_progress_fn progress, void *arg, char *err, size_t errlen)
{
	struct fetch_opts	opts;
	struct fetch_xfer	x;
	int			attempts, rc;

	*status = 0;
	memset(&opts, 0, sizeof(opts));
	opts.url = url;
	opts.fd = -1;
	opts.progress = progress;
	opts.arg = arg;
	memset(&x, 0, sizeof(x));
	x.opts = &opts;
	x.fd = -1;
	x.buf = buf;
	/* At least one byte of body: a max_bytes of 0 would mean no limit. */
	if (buflen < 2) {
		fetch_url_redact(url, x.url, sizeof(x.url));
		snprintf(err, errlen, "cannot fetch %s: no room for the answer",
		    x.url);
		return -1;
	}
	buf[0] = '\0';
	x.max = buflen - 1;
	if (fetch_setup(&x, url, err, errlen) == -1) {
		fetch_xfer_free(&x);
		return -1;
	}
	rc = fetch_run(&x, 1, &attempts, err, errlen);
	*status = x.status;
	fetch_xfer_free(&x);
	return rc;
}

/* Checks url and makes the easy handle every attempt uses. */
static int
fetch_setup(struct fetch_xfer *x, const char *url, char *err, size_t errlen)
{
	const struct fetch_opts	*o = x->opts;
	CURL			*c;
	char			 why[256];

	fetch_url_redact(url, x->url, sizeof(x->url));
	if (!fetch_url_ok(url, why, sizeof(why))) {
		snprintf(err, errlen, "cannot fetch %s: %s", x->url, why);
		return -1;
	}
	if ((x->curl = c = curl_easy_init()) == NULL) {
		snprintf(err, errlen, "cannot fetch %s: cannot create a "
		    "libcurl handle (out of memory?)", x->url);
		return -1;
	}
	/*
	 * The protocol limits are the one thing that must not silently fail
	 * to apply (an old libcurl would follow a redirect anywhere).
	 */
	if (curl_easy_setopt(c, CURLOPT_URL, url) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, FETCH_PROTOCOLS) !=
	    CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, FETCH_PROTOCOLS) !=
	    CURLE_OK) {
		snprintf(err, errlen, "cannot fetch %s: libcurl refuses the URL "
		    "or the http/https restriction", x->url);
		return -1;
	}
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(c, CURLOPT_MAXREDIRS, FETCH_MAX_REDIRS);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_FAILONERROR, 0L);
	curl_easy_setopt(c, CURLOPT_USERAGENT, FETCH_USER_AGENT);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, x->errbuf);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, o->connect_timeout_s > 0 ?
	    o->connect_timeout_s : FETCH_CONNECT_S);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, o->low_speed_time_s > 0 ?
	    o->low_speed_time_s : FETCH_LOW_SPEED_S);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, o->low_speed_bytes > 0 ?
	    o->low_speed_bytes : FETCH_LOW_SPEED_BYTES);
	/* Refuses early on a Content-Length; fetch_write catches the rest. */
	if (x->max > 0 && x->max <= INT64_MAX)
		curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE,
		    (curl_off_t)x->max);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, fetch_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, x);
	if (o->progress != NULL) {
		curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, fetch_xferinfo);
		curl_easy_setopt(c, CURLOPT_XFERINFODATA, x);
		curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	}
	return 0;
}

/*
 * The attempts.  any_status: a complete non-2xx response is an answer
 * (fetch_text), not a failure.  *attempts counts the transfers started.
 */
static int
fetch_run(struct fetch_xfer *x, int any_status, int *attempts, char *err,
    size_t errlen)
{
	enum fetch_verdict	v;
	CURLcode		rc;
	char			why[FETCH_WHY_LEN];
	long			delay_ms = FETCH_BACKOFF_MS;
	int			tries, attempt;

	tries = x->opts->tries > 0 ? x->opts->tries : FETCH_TRIES;
	for (attempt = 1;; attempt++) {
		*attempts = attempt;
		if (fetch_start_attempt(x, err, errlen) == -1)
			return -1;
		rc = curl_easy_perform(x->curl);
		curl_easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, &x->status);
		v = fetch_judge(x, rc, why, sizeof(why));
		if (v == FETCH_DONE)
			return 0;
		if (any_status && x->responded &&
		    (v == FETCH_FAIL || attempt >= tries))
			return 0;
		if (v == FETCH_FAIL) {
			snprintf(err, errlen, "%s", why);
			return -1;
		}
		if (attempt >= tries) {
			snprintf(err, errlen, "%s (gave up after %d attempts)",
			    why, attempt);
			return -1;
		}
		log_warn("fetch", "%s; trying again in %ld ms (attempt %d of "
		    "%d)", why, delay_ms, attempt + 1, tries);
		if (fetch_backoff(x, delay_ms) == -1) {
			snprintf(err, errlen, "cancelled while fetching %s",
			    x->url);
			return -1;
		}
		delay_ms *= 2;
		if (delay_ms > FETCH_BACKOFF_MAX_MS)
			delay_ms = FETCH_BACKOFF_MAX_MS;
	}
}

/* Empties the output and restarts the digests for a new attempt. */
static int
fetch_start_attempt(struct fetch_xfer *x, char *err, size_t errlen)
{
	x->bytes = 0;
	x->status = 0;
	x->bad_status = x->responded = x->too_big = x->cancelled = 0;
	x->write_errno = x->hash_err = 0;
	x->errbuf[0] = '\0';
	if (x->fd == -1)
		x->buf[0] = '\0';
	else if (ftruncate(x->fd, 0) == -1 ||
	    lseek(x->fd, 0, SEEK_SET) == -1) {
		snprintf(err, errlen, "cannot fetch %s: cannot empty the "
		    "output file: %s", x->url, strerror(errno));
		return -1;
	}
	fetch_hash_free(x);
	if (!x->hashing)
		return 0;
	if (gnutls_hash_init(&x->sha256, GNUTLS_DIG_SHA256) < 0) {
		x->sha256 = NULL;
		snprintf(err, errlen, "cannot fetch %s: GnuTLS has no SHA-256",
		    x->url);
		return -1;
	}
	if (x->opts->want_sha1 &&
	    gnutls_hash_init(&x->sha1, GNUTLS_DIG_SHA1) < 0) {
		x->sha1 = NULL;
		snprintf(err, errlen, "cannot fetch %s: GnuTLS has no SHA-1",
		    x->url);
		return -1;
	}
	return 0;
}

/* What an attempt came to; why says it for the user (and the log). */
static enum fetch_verdict
fetch_judge(struct fetch_xfer *x, CURLcode rc, char *why, size_t whylen)
{
	const char	*detail;

	if (x->cancelled) {
		snprintf(why, whylen, "cancelled while fetching %s", x->url);
		return FETCH_FAIL;
	}
	if (x->too_big || rc == CURLE_FILESIZE_EXCEEDED) {
		snprintf(why, whylen, "%s is larger than the limit of %" PRIu64
		    " bytes", x->url, x->max);
		return FETCH_FAIL;
	}
	if (x->write_errno != 0) {
		snprintf(why, whylen, "cannot save the download of %s: %s",
		    x->url, strerror(x->write_errno));
		return FETCH_FAIL;
	}
	if (x->hash_err) {
		snprintf(why, whylen, "cannot fetch %s: the digest failed",
		    x->url);
		return FETCH_FAIL;
	}
	if (rc == CURLE_OK || x->bad_status) {
		x->responded = 1;
		if (x->status >= 200 && x->status <= 299)
			return FETCH_DONE;
		snprintf(why, whylen, "HTTP %ld from %s", x->status, x->url);
		return x->status >= 500 && x->status <= 599 ? FETCH_RETRY :
		    FETCH_FAIL;
	}

	detail = x->errbuf[0] != '\0' ? x->errbuf : curl_easy_strerror(rc);
	if (rc == CURLE_UNSUPPORTED_PROTOCOL) {
		/* The first URL was checked: a redirect went elsewhere. */
		snprintf(why, whylen, "cannot fetch %s: it redirects to a URL "
		    "that is not http or https (%s)", x->url, detail);
		return FETCH_FAIL;
	}
	if (rc == CURLE_TOO_MANY_REDIRECTS) {
		snprintf(why, whylen, "cannot fetch %s: more than %ld "
		    "redirects", x->url, FETCH_MAX_REDIRS);
		return FETCH_FAIL;
	}
	snprintf(why, whylen, "cannot fetch %s: %s", x->url, detail);
	return fetch_retryable(rc) ? FETCH_RETRY : FETCH_FAIL;
}

/*
 * Errors of the path to the server, which a moment later may be gone.
 * A failed TLS handshake is often a reset in the middle; a certificate
 * that does not verify (CURLE_PEER_FAILED_VERIFICATION) is not retried.
 */
static int
fetch_retryable(CURLcode rc)
{
	switch (rc) {
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_PARTIAL_FILE:
	case CURLE_GOT_NOTHING:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		return 1;
	default:
		return 0;
	}
}

/*
 * Waits ms before the next attempt, in short steps so that a cancel is
 * seen within FETCH_SLEEP_STEP_MS.  -1 if the job was cancelled.  The
 * progress reads 0: the next attempt starts the file again.
 */
static int
fetch_backoff(struct fetch_xfer *x, long ms)
{
	const struct fetch_opts	*o = x->opts;
	struct timespec		 ts;
	long			 step;

	while (ms > 0) {
		if (o->progress != NULL && o->progress(o->arg, 0, 0) != 0) {
			x->cancelled = 1;
			return -1;
		}
		step = ms < FETCH_SLEEP_STEP_MS ? ms : FETCH_SLEEP_STEP_MS;
		ts.tv_sec = 0;
		ts.tv_nsec = step * 1000000L;
		while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
			;
		ms -= step;
	}
	if (o->progress != NULL && o->progress(o->arg, 0, 0) != 0) {
		x->cancelled = 1;
		return -1;
	}
	return 0;
}

/*
 * libcurl's write callback: the body of the final response only (libcurl
 * skips the bodies of redirects it follows).  Returning less than it was
 * given aborts the transfer; the flags say why.
 */
static size_t
fetch_write(char *p, size_t size, size_t n, void *arg)
{
	struct fetch_xfer	*x = arg;
	size_t			 len = size * n;

	curl_easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, &x->status);
	if (x->status < 200 || x->status > 299) {
		/* Error pages are not the file; the status says enough. */
		x->bad_status = 1;
		return 0;
	}
	/* Chunked or lying servers get past CURLOPT_MAXFILESIZE; not this. */
	if (x->max > 0 && len > x->max - x->bytes) {
		x->too_big = 1;
		return 0;
	}
	if (x->fd == -1) {
		memcpy(x->buf + x->bytes, p, len);
		x->buf[x->bytes + len] = '\0';
	} else if (fetch_write_all(x->fd, p, len) == -1) {
		x->write_errno = errno ? errno : EIO;
		return 0;
	}
	if (x->sha256 != NULL && gnutls_hash(x->sha256, p, len) < 0)
		x->hash_err = 1;
	if (x->sha1 != NULL && gnutls_hash(x->sha1, p, len) < 0)
		x->hash_err = 1;
	if (x->hash_err)
		return 0;
	x->bytes += len;
	return len;
}

static int
fetch_write_all(int fd, const char *p, size_t len)
{
	ssize_t	w;

	while (len > 0) {
		if ((w = write(fd, p, len)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (w == 0) {
			errno = ENOSPC;
			return -1;
		}
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

/* libcurl's progress callback; total is 0 while the size is unknown. */
static int
fetch_xferinfo(void *arg, curl_off_t dltotal, curl_off_t dlnow,
    curl_off_t ultotal, curl_off_t ulnow)
{
	struct fetch_xfer	*x = arg;
	const struct fetch_opts	*o = x->opts;

	(void)ultotal;
	(void)ulnow;
	if (o->progress(o->arg, dlnow > 0 ? (uint64_t)dlnow : 0,
	    dltotal > 0 ? (uint64_t)dltotal : 0) != 0) {
		x->cancelled = 1;
		return 1;
	}
	return 0;
}

static void
fetch_hash_free(struct fetch_xfer *x)
{
	if (x->sha256 != NULL)
		gnutls_hash_deinit(x->sha256, NULL);
	if (x->sha1 != NULL)
		gnutls_hash_deinit(x->sha1, NULL);
	x->sha256 = x->sha1 = NULL;
}

/* Finishes *h into lower-case hex in out (2 * len + 1 bytes). */
static void
fetch_hash_hex(gnutls_hash_hd_t *h, size_t len, char *out)
{
	static const char	hex[] = "0123456789abcdef";
	unsigned char		d[64];
	size_t			i;

	out[0] = '\0';
	if (*h == NULL || len > sizeof(d))
		return;
	gnutls_hash_deinit(*h, d);
	*h = NULL;
	for (i = 0; i < len; i++) {
		out[2 * i] = hex[d[i] >> 4];
		out[2 * i + 1] = hex[d[i] & 0x0f];
	}
	out[2 * len] = '\0';
}

/*
 * url as messages, logs, the API and the audit log may show it: without
 * user:password and without the query (which may carry a signature or a
 * token).  A URL libcurl cannot parse is shown with anything before an
 * '@' masked and control characters replaced, as it came from a user.
 */
void
fetch_url_redact(const char *url, char *out, size_t outlen)
{
	CURLU		*u;
	char		*s = NULL;
	const char	*at, *start;
	size_t		 i, o = 0;

	if (url == NULL) {
		snprintf(out, outlen, "(no URL)");
		return;
	}
	if ((u = curl_url()) != NULL && curl_url_set(u, CURLUPART_URL, url,
	    CURLU_NON_SUPPORT_SCHEME) == CURLUE_OK) {
		curl_url_set(u, CURLUPART_USER, NULL, 0);
		curl_url_set(u, CURLUPART_PASSWORD, NULL, 0);
		curl_url_set(u, CURLUPART_OPTIONS, NULL, 0);
		curl_url_set(u, CURLUPART_QUERY, NULL, 0);
		if (curl_url_get(u, CURLUPART_URL, &s, 0) != CURLUE_OK)
			s = NULL;
	}
	curl_url_cleanup(u);
	if (s != NULL) {
		snprintf(out, outlen, "%s", s);
		curl_free(s);
		return;
	}

	start = strstr(url, "://");
	start = start != NULL ? start + 3 : url;
	at = strrchr(start, '@');
	for (i = 0; url[i] != '\0' && o + 4 < outlen; i++) {
		if (at != NULL && url + i == start) {
			memcpy(out + o, "***", 3);
			o += 3;
			i = (size_t)(at - url) - 1;
			at = NULL;
			continue;
		}
		out[o++] = (url[i] > 0x20 && url[i] < 0x7f) ? url[i] : '?';
	}
	out[o] = '\0';
}

static void
fetch_xfer_free(struct fetch_xfer *x)
{
	fetch_hash_free(x);
	if (x->curl != NULL)
		curl_easy_cleanup(x->curl);
	x->curl = NULL;
}

/*
 * url with suffix appended to its path (".sha256" for a checksum
 * sidecar), keeping the query where it is: "…/a.zip?sig=x" gives
 * "…/a.zip.sha256?sig=x".  -1 if the URL cannot be parsed.
 */
int
fetch_url_suffix(const char *url, const char *suffix, char *out,
    size_t outlen)
{
	CURLU	*u;
	char	*path = NULL, *np = NULL, *s = NULL;
	int	 rc = -1;

	if ((u = curl_url()) == NULL)
		return -1;
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PATH, &path, 0) != CURLUE_OK ||
	    asprintf(&np, "%s%s", path, suffix) < 0)
		goto out;
	if (curl_url_set(u, CURLUPART_PATH, np, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_URL, &s, 0) != CURLUE_OK)
		goto out;
	if (snprintf(out, outlen, "%s", s) < (int)outlen)
		rc = 0;
out:
	free(np);
	curl_free(path);
	curl_free(s);
	curl_url_cleanup(u);
	return rc;
}
