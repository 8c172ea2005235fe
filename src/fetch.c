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
 *
 * S3: s3://bucket/key goes to <endpoint>/<bucket>/<key> (path style, so
 * any S3-compatible server works), signed by libcurl with AWS Signature
 * V4.  libcurl 7.88 neither sends the x-amz-content-sha256 header S3
 * requires nor hashes a body it reads through a callback, but it signs a
 * header of that name we give and takes its value as the payload hash:
 * so a GET says the hash of nothing, and a PUT the SHA-256 of its file,
 * read once before sending so that S3 checks that what arrived is what
 * was signed.  A signed request never follows a redirect.  S3 explains a
 * refusal in an XML body; its Code and Message go into the error, and
 * the body never into the output file.  Credentials go to libcurl and
 * nowhere else: no message, no log line.
 *
 * PUT (fetch_put_file) reads its file with pread from offset 0 on each
 * attempt, so a retry sends the same bytes again, hashed as they go.
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
#define FETCH_WHY_LEN		(FETCH_URL_SHOWN + 1024)
#define FETCH_S3_KEY_MAX	1024		/* S3's own limit, in bytes */
#define FETCH_S3_ENDPOINT_MAX	1024
#define FETCH_S3_URL_MAX	(FETCH_S3_ENDPOINT_MAX + 64 + \
				    3 * FETCH_S3_KEY_MAX + 8)
#define FETCH_S3_ERR_MAX	4096		/* of an S3 error body */
#define FETCH_S3_BUCKET_CHARS	"abcdefghijklmnopqrstuvwxyz0123456789.-"
#define FETCH_S3_UNRESERVED	"ABCDEFGHIJKLMNOPQRSTUVWXYZ" \
				"abcdefghijklmnopqrstuvwxyz0123456789-._~"
#define FETCH_S3_NEEDS		"s3:// needs credentials: give an S3 " \
				"endpoint, region and access keys"
/* The SHA-256 of no bytes: the payload hash of a GET. */
#define FETCH_EMPTY_SHA256	"e3b0c44298fc1c149afbf4c8996fb924" \
				"27ae41e4649b934ca495991b7852b855"
#define FETCH_READ_CHUNK	65536

enum fetch_verdict {
	FETCH_DONE,		/* a 2xx with the whole body */
	FETCH_RETRY,		/* the next attempt may do better */
	FETCH_FAIL,		/* it will not: stop now */
};

/* One transfer (a download or a PUT), across its attempts. */
struct fetch_xfer {
	const struct fetch_opts	*opts;
	CURL			*curl;
	char			 url[FETCH_URL_SHOWN];	/* without credentials */
	const char		*verb;		/* "fetch", "upload to" */
	const char		*doing;		/* "fetching", "uploading to" */
	int			 fd;		/* -1: into buf, or a PUT */
	char			*buf;		/* max + 1 bytes */
	uint64_t		 max;		/* 0: no limit */
	int			 upload;	/* PUT put_size bytes of opts->fd */
	uint64_t		 put_size;
	int			 s3;		/* signed: keep S3's error body */
	struct curl_slist	*headers;	/* wiped when freed */
	int			 hashing;
	gnutls_hash_hd_t	 sha256;	/* NULL when not in use */
	gnutls_hash_hd_t	 sha1;

	/* Reset on each attempt. */
	uint64_t		 bytes;		/* received, or sent by a PUT */
	long			 status;
	int			 bad_status;	/* not a 2xx */
	int			 responded;	/* a whole response arrived */
	int			 too_big;
	int			 cancelled;
	int			 write_errno;
	int			 read_errno;	/* PUT: reading the file failed */
	int			 short_file;	/* PUT: the file ended early */
	int			 hash_err;
	char			 errbuf[CURL_ERROR_SIZE];
	char			 s3err[FETCH_S3_ERR_MAX + 1];
	size_t			 s3err_len;
};

static int	fetch_url_check(const char *, int, char *, size_t);
static int	fetch_is_s3(const char *);
static int	fetch_s3_parse(const char *, char *, const char **, char *,
		    size_t);
static int	fetch_s3_check(const struct fetch_s3 *, char *, size_t);
static int	fetch_s3_sign(struct fetch_xfer *, char *, size_t);
static int	fetch_file_sha256(struct fetch_xfer *, char *, char *, size_t);
static int	fetch_header(struct fetch_xfer *, const char *, const char *);
static int	fetch_printable(const char *, const char *);
static void	fetch_xml_text(const char *, const char *, char *, size_t);
static void	fetch_xfer_init(struct fetch_xfer *, const struct fetch_opts *,
		    int);
static void	fetch_result_of(struct fetch_xfer *, int, struct fetch_result *);
static int	fetch_setup(struct fetch_xfer *, const char *, char *, size_t);
static int	fetch_run(struct fetch_xfer *, int, int *, char *, size_t);
static int	fetch_start_attempt(struct fetch_xfer *, char *, size_t);
static enum fetch_verdict
		fetch_judge(struct fetch_xfer *, CURLcode, char *, size_t);
static void	fetch_status_why(struct fetch_xfer *, char *, size_t);
static int	fetch_retryable(CURLcode);
static int	fetch_backoff(struct fetch_xfer *, long);
static size_t	fetch_write(char *, size_t, size_t, void *);
static int	fetch_write_all(int, const char *, size_t);
static size_t	fetch_read(char *, size_t, size_t, void *);
static int	fetch_seek(void *, curl_off_t, int);
static int	fetch_xferinfo(void *, curl_off_t, curl_off_t, curl_off_t,
		    curl_off_t);
static int	fetch_hash_start(struct fetch_xfer *);
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
	return fetch_url_check(url, 0, why, whylen);
}

/*
 * fetch_url_ok that also takes a well-formed s3://bucket/key, for specs
 * checked when they are submitted, before any credentials are at hand.
 */
int
fetch_url_ok_s3(const char *url, char *why, size_t whylen)
{
	return fetch_url_check(url, 1, why, whylen);
}

/*
 * The http(s) URL an s3://bucket/key URL is fetched from: path style on
 * s3->endpoint, the key percent-encoded as SigV4 canonicalises a path
 * (all but A-Z a-z 0-9 - . _ ~ and '/'), so that the path libcurl signs
 * is the one S3 computes.  The key is taken as written: "%20" in it is
 * the three characters, as for the AWS CLI.  0, or -1 with err.
 */
int
fetch_s3_url(const struct fetch_s3 *s3, const char *s3url, char *out,
    size_t outlen, char *err, size_t errlen)
{
	const unsigned char	*k;
	const char		*key;
	char			 bucket[64], shown[FETCH_URL_SHOWN];
	size_t			 len, o;
	int			 n;

	if (outlen > 0)
		out[0] = '\0';
	if (s3 == NULL) {
		snprintf(err, errlen, "%s", FETCH_S3_NEEDS);
		return -1;
	}
	if (fetch_s3_parse(s3url, bucket, &key, err, errlen) == -1)
		return -1;
	if (s3->endpoint == NULL || s3->endpoint[0] == '\0') {
		snprintf(err, errlen, "%s (the endpoint is empty)",
		    FETCH_S3_NEEDS);
		return -1;
	}
	fetch_url_redact(s3->endpoint, shown, sizeof(shown));
	/* Keys and tokens are given apart, never in the endpoint. */
	if (!fetch_url_ok(s3->endpoint, err, errlen) ||
	    strpbrk(s3->endpoint, "@?#") != NULL ||
	    strlen(s3->endpoint) > FETCH_S3_ENDPOINT_MAX) {
		snprintf(err, errlen, "the S3 endpoint %s is not "
		    "http(s)://host[:port][/path] without user, query or "
		    "fragment", shown);
		return -1;
	}
	len = strlen(s3->endpoint);
	while (len > 0 && s3->endpoint[len - 1] == '/')
		len--;
	n = snprintf(out, outlen, "%.*s/%s/", (int)len, s3->endpoint, bucket);
	if (n < 0 || (size_t)n >= outlen)
		goto toolong;
	o = (size_t)n;
	for (k = (const unsigned char *)key; *k != '\0'; k++) {
		if (o + 4 > outlen)
			goto toolong;
		if (*k == '/' || strchr(FETCH_S3_UNRESERVED, *k) != NULL)
			out[o++] = (char)*k;
		else {
			snprintf(out + o, 4, "%%%02X", *k);
			o += 3;
		}
	}
	out[o] = '\0';
	return 0;
toolong:
	if (outlen > 0)
		out[0] = '\0';
	snprintf(err, errlen, "the S3 URL is too long");
	return -1;
}

/* fetch_url_ok, with s3 also for s3://bucket/key. */
static int
fetch_url_check(const char *url, int s3, char *why, size_t whylen)
{
	CURLU		*u;
	CURLUcode	 rc;
	char		*scheme = NULL, *host = NULL, dummy[1], bucket[64];
	const char	*auth, *key, *schemes;
	int		 ok = 0;

	if (why == NULL || whylen == 0) {
		why = dummy;
		whylen = sizeof(dummy);
	}
	if (url == NULL || url[0] == '\0') {
		snprintf(why, whylen, "the URL is empty");
		return 0;
	}
	if (s3 && fetch_is_s3(url))
		return fetch_s3_parse(url, bucket, &key, why, whylen) == 0;
	schemes = s3 ? "http, https and s3" : "http and https";
	if ((u = curl_url()) == NULL) {
		snprintf(why, whylen, "out of memory");
		return 0;
	}
	rc = curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME);
	if (rc == CURLUE_OK)
		rc = curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
	if (rc == CURLUE_OK && strcmp(scheme, "http") != 0 &&
	    strcmp(scheme, "https") != 0) {
		snprintf(why, whylen, "only %s URLs are allowed, not %.32s",
		    schemes, scheme);
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
		snprintf(why, whylen, "the URL has no scheme: only %s URLs are "
		    "allowed (http://host/path%s)", schemes,
		    s3 ? " or s3://bucket/key" : "");
	else
		snprintf(why, whylen, "not a valid URL: %s",
		    curl_url_strerror(rc));
out:
	curl_free(scheme);
	curl_free(host);
	curl_url_cleanup(u);
	return ok;
}

static int
fetch_is_s3(const char *url)
{
	return url != NULL && strncasecmp(url, "s3://", 5) == 0;
}

/*
 * Splits s3://bucket/key: the bucket into bucket (64 bytes), *key to the
 * key in url.  A bucket is 1 to 63 of [a-z0-9.-] from and to a letter or
 * digit (so never "." or ".."): S3 wants at least 3, but other servers
 * take shorter names and S3 refuses them itself; a key is 1 to 1024
 * bytes without control
 * characters or "." and ".." segments, which libcurl would resolve away
 * before signing and so fetch another object than the one named.
 */
static int
fetch_s3_parse(const char *url, char *bucket, const char **key, char *why,
    size_t whylen)
{
	const char	*b, *slash, *k, *seg, *p;
	size_t		 blen, slen;

	if (!fetch_is_s3(url)) {
		snprintf(why, whylen, "not an s3:// URL");
		return -1;
	}
	b = url + 5;
	if ((slash = strchr(b, '/')) == NULL) {
		snprintf(why, whylen, "the URL has no key: an S3 URL is "
		    "s3://bucket/key");
		return -1;
	}
	blen = (size_t)(slash - b);
	if (blen < 1 || blen > 63 || strspn(b, FETCH_S3_BUCKET_CHARS) < blen ||
	    b[0] == '.' || b[0] == '-' || b[blen - 1] == '.' ||
	    b[blen - 1] == '-') {
		snprintf(why, whylen, "the bucket must be up to 63 characters "
		    "of a-z, 0-9, '.' and '-' that start and end with a letter "
		    "or digit");
		return -1;
	}
	k = slash + 1;
	if (*k == '\0') {
		snprintf(why, whylen, "the key is empty: an S3 URL is "
		    "s3://bucket/key");
		return -1;
	}
	if (strlen(k) > FETCH_S3_KEY_MAX) {
		snprintf(why, whylen, "the key is longer than %d bytes",
		    FETCH_S3_KEY_MAX);
		return -1;
	}
	for (p = k; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f) {
			snprintf(why, whylen, "the key has a control "
			    "character");
			return -1;
		}
	for (seg = k; seg != NULL; seg = p != NULL ? p + 1 : NULL) {
		p = strchr(seg, '/');
		slen = p != NULL ? (size_t)(p - seg) : strlen(seg);
		if ((slen == 1 && seg[0] == '.') ||
		    (slen == 2 && seg[0] == '.' && seg[1] == '.')) {
			snprintf(why, whylen, "the key has a '.' or '..' "
			    "segment, which would not reach S3 as written");
			return -1;
		}
	}
	memcpy(bucket, b, blen);
	bucket[blen] = '\0';
	*key = k;
	return 0;
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
	fetch_xfer_init(&x, opts, 0);
	if (opts->fd < 0) {
		fetch_url_redact(opts->url, x.url, sizeof(x.url));
		snprintf(err, errlen, "cannot fetch %s: no output file", x.url);
		return -1;
	}
	x.fd = opts->fd;
	x.max = opts->max_bytes;
	x.hashing = 1;
	if (fetch_setup(&x, opts->url, err, errlen) == -1) {
		fetch_xfer_free(&x);
		return -1;
	}
	rc = fetch_run(&x, 0, &res->attempts, err, errlen);
	fetch_result_of(&x, rc, res);
	fetch_xfer_free(&x);
	return rc;
}

/*
 * Uploads the first size bytes of opts->fd with an HTTP PUT to
 * opts->url (http, https, or s3:// with opts->s3), with the retries of
 * fetch_file; the progress callback sees the bytes sent.  0 on a 2xx,
 * with the bytes sent and their SHA-256 in res; -1 with err otherwise.
 * Never follows a redirect: the body would have to go again, and a
 * signed request only where it was signed for.
 */
int
fetch_put_file(const struct fetch_opts *opts, uint64_t size,
    struct fetch_result *res, char *err, size_t errlen)
{
	struct fetch_xfer	x;
	int			rc;

	memset(res, 0, sizeof(*res));
	fetch_xfer_init(&x, opts, 1);
	fetch_url_redact(opts->url, x.url, sizeof(x.url));
	if (opts->fd < 0) {
		snprintf(err, errlen, "cannot upload to %s: no input file",
		    x.url);
		return -1;
	}
	if (size > INT64_MAX) {
		snprintf(err, errlen, "cannot upload to %s: %" PRIu64 " bytes "
		    "is too large", x.url, size);
		return -1;
	}
	if (opts->content_type != NULL &&
	    !fetch_printable(opts->content_type, "")) {
		snprintf(err, errlen, "cannot upload to %s: the content type "
		    "has a control character", x.url);
		return -1;
	}
	x.put_size = size;
	x.hashing = 1;
	if (fetch_setup(&x, opts->url, err, errlen) == -1) {
		res->cancelled = x.cancelled;
		fetch_xfer_free(&x);
		return -1;
	}
	rc = fetch_run(&x, 0, &res->attempts, err, errlen);
	fetch_result_of(&x, rc, res);
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
	fetch_xfer_init(&x, &opts, 0);
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

static void
fetch_xfer_init(struct fetch_xfer *x, const struct fetch_opts *o, int upload)
{
	memset(x, 0, sizeof(*x));
	x->opts = o;
	x->fd = -1;
	x->upload = upload;
	x->verb = upload ? "upload to" : "fetch";
	x->doing = upload ? "uploading to" : "fetching";
}

/* res from the last attempt; with the digests, and logged, on success. */
static void
fetch_result_of(struct fetch_xfer *x, int rc, struct fetch_result *res)
{
	res->http_status = x->status;
	res->bytes = x->bytes;
	res->cancelled = x->cancelled;
	if (rc != 0)
		return;
	fetch_hash_hex(&x->sha256, gnutls_hash_get_len(GNUTLS_DIG_SHA256),
	    res->sha256);
	if (x->opts->want_sha1)
		fetch_hash_hex(&x->sha1, gnutls_hash_get_len(GNUTLS_DIG_SHA1),
		    res->sha1);
	log_info("fetch", "%s: %s%" PRIu64 " bytes, sha256 %s", x->url,
	    x->upload ? "uploaded " : "", x->bytes, res->sha256);
}

/* Checks url and makes the easy handle every attempt uses. */
static int
fetch_setup(struct fetch_xfer *x, const char *url, char *err, size_t errlen)
{
	const struct fetch_opts	*o = x->opts;
	CURL			*c;
	const char		*target = url;
	char			 why[FETCH_WHY_LEN], s3url[FETCH_S3_URL_MAX];

	fetch_url_redact(url, x->url, sizeof(x->url));
	if (fetch_is_s3(url)) {
		x->s3 = 1;
		if (fetch_s3_url(o->s3, url, s3url, sizeof(s3url), why,
		    sizeof(why)) == -1 ||
		    fetch_s3_check(o->s3, why, sizeof(why)) == -1) {
			snprintf(err, errlen, "cannot %s %s: %s", x->verb,
			    x->url, why);
			return -1;
		}
		target = s3url;
	} else if (!fetch_url_ok(url, why, sizeof(why))) {
		snprintf(err, errlen, "cannot %s %s: %s", x->verb, x->url, why);
		return -1;
	}
	if ((x->curl = c = curl_easy_init()) == NULL) {
		snprintf(err, errlen, "cannot %s %s: cannot create a libcurl "
		    "handle (out of memory?)", x->verb, x->url);
		return -1;
	}
	/*
	 * The protocol limits are the one thing that must not silently fail
	 * to apply (an old libcurl would follow a redirect anywhere).
	 */
	if (curl_easy_setopt(c, CURLOPT_URL, target) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, FETCH_PROTOCOLS) !=
	    CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, FETCH_PROTOCOLS) !=
	    CURLE_OK) {
		snprintf(err, errlen, "cannot %s %s: libcurl refuses the URL "
		    "or the http/https restriction", x->verb, x->url);
		return -1;
	}
	/* A signed request is for its URL alone; a PUT's body went once. */
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, x->s3 || x->upload ? 0L :
	    1L);
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
	if (x->upload) {
		curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE,
		    (curl_off_t)x->put_size);
		curl_easy_setopt(c, CURLOPT_READFUNCTION, fetch_read);
		curl_easy_setopt(c, CURLOPT_READDATA, x);
		curl_easy_setopt(c, CURLOPT_SEEKFUNCTION, fetch_seek);
		curl_easy_setopt(c, CURLOPT_SEEKDATA, x);
		if (fetch_header(x, "Content-Type", o->content_type != NULL ?
		    o->content_type : "application/octet-stream") == -1) {
			snprintf(err, errlen, "cannot %s %s: out of memory",
			    x->verb, x->url);
			return -1;
		}
	}
	/* After Content-Type, which libcurl then signs as well. */
	if (x->s3 && fetch_s3_sign(x, why, sizeof(why)) == -1) {
		if (x->cancelled)
			snprintf(err, errlen, "cancelled while %s %s", x->doing,
			    x->url);
		else
			snprintf(err, errlen, "cannot %s %s: %s", x->verb,
			    x->url, why);
		return -1;
	}
	if (x->headers != NULL)
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, x->headers);
	return 0;
}

/*
 * What signing needs besides the endpoint, checked before any request:
 * the region and the key id end up in the Credential= of a header, the
 * token in a header of its own, so none may carry a separator of theirs.
 */
static int
fetch_s3_check(const struct fetch_s3 *s3, char *why, size_t whylen)
{
	const char	*r;

	if (s3 == NULL) {
		snprintf(why, whylen, "%s", FETCH_S3_NEEDS);
		return -1;
	}
	r = s3->region;
	if (r == NULL || r[0] == '\0' || strlen(r) > 64 ||
	    strspn(r, "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") < strlen(r)) {
		snprintf(why, whylen, "%s (the region must be letters, digits, "
		    "'-' and '_', such as us-east-1)", FETCH_S3_NEEDS);
		return -1;
	}
	if (s3->access_key_id == NULL || s3->access_key_id[0] == '\0' ||
	    strlen(s3->access_key_id) > 256 ||
	    !fetch_printable(s3->access_key_id, " /,")) {
		snprintf(why, whylen, "%s (the access key id must be printable "
		    "ASCII without spaces, '/' or ',')", FETCH_S3_NEEDS);
		return -1;
	}
	if (s3->secret_access_key == NULL || s3->secret_access_key[0] ==
	    '\0') {
		snprintf(why, whylen, "%s (the secret access key is empty)",
		    FETCH_S3_NEEDS);
		return -1;
	}
	if (s3->session_token != NULL && !fetch_printable(s3->session_token,
	    "")) {
		snprintf(why, whylen, "the S3 session token is not printable "
		    "ASCII");
		return -1;
	}
	return 0;
}

/*
 * Has libcurl sign the request (SigV4 for service s3) and adds the
 * headers S3 wants signed with it; see the comment at the top for
 * x-amz-content-sha256.  The key pair goes to libcurl as user and
 * password, so it is never joined into a string of ours to wipe.
 */
static int
fetch_s3_sign(struct fetch_xfer *x, char *why, size_t whylen)
{
	const struct fetch_s3	*s3 = x->opts->s3;
	char			 sigv4[96], hash[65];

	if (x->upload && x->opts->sha256 != NULL)
		snprintf(hash, sizeof(hash), "%s", x->opts->sha256);
	else if (x->upload) {
		if (fetch_file_sha256(x, hash, why, whylen) == -1)
			return -1;
	} else
		snprintf(hash, sizeof(hash), "%s", FETCH_EMPTY_SHA256);
	snprintf(sigv4, sizeof(sigv4), "aws:amz:%s:s3", s3->region);
	if (curl_easy_setopt(x->curl, CURLOPT_AWS_SIGV4, sigv4) != CURLE_OK ||
	    curl_easy_setopt(x->curl, CURLOPT_USERNAME, s3->access_key_id) !=
	    CURLE_OK ||
	    curl_easy_setopt(x->curl, CURLOPT_PASSWORD,
	    s3->secret_access_key) != CURLE_OK) {
		snprintf(why, whylen, "this libcurl cannot sign with AWS "
		    "Signature V4");
		return -1;
	}
	if (fetch_header(x, "x-amz-content-sha256", hash) == -1 ||
	    (s3->session_token != NULL && s3->session_token[0] != '\0' &&
	    fetch_header(x, "x-amz-security-token", s3->session_token) ==
	    -1)) {
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	return 0;
}

/*
 * The SHA-256 of the put_size bytes to upload, as hex into hex (65
 * bytes).  A large file takes a while, so a cancel is looked for between
 * reads.  -1 with why (x->cancelled set for a cancel).
 */
static int
fetch_file_sha256(struct fetch_xfer *x, char *hex, char *why, size_t whylen)
{
	const struct fetch_opts	*o = x->opts;
	gnutls_hash_hd_t	 h;
	char			*buf;
	uint64_t		 off = 0;
	size_t			 want;
	ssize_t			 n;
	int			 rc = -1;

	if ((buf = malloc(FETCH_READ_CHUNK)) == NULL) {
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	if (gnutls_hash_init(&h, GNUTLS_DIG_SHA256) < 0) {
		free(buf);
		snprintf(why, whylen, "GnuTLS has no SHA-256");
		return -1;
	}
	while (off < x->put_size) {
		if (o->progress != NULL && o->progress(o->arg, 0,
		    x->put_size) != 0) {
			x->cancelled = 1;
			snprintf(why, whylen, "cancelled");
			goto out;
		}
		want = x->put_size - off < FETCH_READ_CHUNK ?
		    (size_t)(x->put_size - off) : FETCH_READ_CHUNK;
		if ((n = pread(o->fd, buf, want, (off_t)off)) == -1) {
			if (errno == EINTR)
				continue;
			snprintf(why, whylen, "cannot read the file to send: "
			    "%s", strerror(errno));
			goto out;
		}
		if (n == 0) {
			snprintf(why, whylen, "the file to send has fewer than "
			    "%" PRIu64 " bytes", x->put_size);
			goto out;
		}
		if (gnutls_hash(h, buf, (size_t)n) < 0) {
			snprintf(why, whylen, "the digest failed");
			goto out;
		}
		off += (uint64_t)n;
	}
	rc = 0;
out:
	free(buf);
	if (rc == 0)
		fetch_hash_hex(&h, gnutls_hash_get_len(GNUTLS_DIG_SHA256), hex);
	else
		gnutls_hash_deinit(h, NULL);
	return rc;
}

/* Appends "name: value" to the request's headers; -1 out of memory. */
static int
fetch_header(struct fetch_xfer *x, const char *name, const char *value)
{
	struct curl_slist	*l;
	char			*h;

	if (asprintf(&h, "%s: %s", name, value) < 0)
		return -1;
	l = curl_slist_append(x->headers, h);
	/* It may be the session token: libcurl has its own copy now. */
	explicit_bzero(h, strlen(h));
	free(h);
	if (l == NULL)
		return -1;
	x->headers = l;
	return 0;
}

/* 1 if s is printable ASCII without any of the characters in but. */
static int
fetch_printable(const char *s, const char *but)
{
	for (; *s != '\0'; s++)
		if (*s < 0x20 || *s > 0x7e || strchr(but, *s) != NULL)
			return 0;
	return 1;
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
			snprintf(err, errlen, "cancelled while %s %s",
			    x->doing, x->url);
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
	x->write_errno = x->read_errno = x->short_file = x->hash_err = 0;
	x->errbuf[0] = '\0';
	x->s3err[0] = '\0';
	x->s3err_len = 0;
	/* A PUT has no output: fetch_read starts its file from 0 again. */
	if (x->buf != NULL)
		x->buf[0] = '\0';
	else if (x->fd != -1 && (ftruncate(x->fd, 0) == -1 ||
	    lseek(x->fd, 0, SEEK_SET) == -1)) {
		snprintf(err, errlen, "cannot fetch %s: cannot empty the "
		    "output file: %s", x->url, strerror(errno));
		return -1;
	}
	if (fetch_hash_start(x) == -1) {
		snprintf(err, errlen, "cannot %s %s: GnuTLS has no SHA-256 or "
		    "SHA-1", x->verb, x->url);
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
		snprintf(why, whylen, "cancelled while %s %s", x->doing,
		    x->url);
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
	if (x->read_errno != 0) {
		snprintf(why, whylen, "cannot upload to %s: cannot read the "
		    "file to send: %s", x->url, strerror(x->read_errno));
		return FETCH_FAIL;
	}
	if (x->short_file) {
		snprintf(why, whylen, "cannot upload to %s: the file to send "
		    "has fewer than %" PRIu64 " bytes", x->url, x->put_size);
		return FETCH_FAIL;
	}
	if (x->hash_err) {
		snprintf(why, whylen, "cannot %s %s: the digest failed",
		    x->verb, x->url);
		return FETCH_FAIL;
	}
	if (rc == CURLE_OK || x->bad_status) {
		x->responded = 1;
		if (x->status >= 200 && x->status <= 299)
			return FETCH_DONE;
		fetch_status_why(x, why, whylen);
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
	snprintf(why, whylen, "cannot %s %s: %s", x->verb, x->url, detail);
	return fetch_retryable(rc) ? FETCH_RETRY : FETCH_FAIL;
}

/*
 * A status that is not a 2xx, for the user: from S3 with its Code and
 * Message ("…: HTTP 403 SignatureDoesNotMatch: The request signature…"),
 * which say what to fix; from others the status alone.
 */
static void
fetch_status_why(struct fetch_xfer *x, char *why, size_t whylen)
{
	char	code[64], msg[512];

	code[0] = msg[0] = '\0';
	if (x->s3) {
		fetch_xml_text(x->s3err, "Code", code, sizeof(code));
		fetch_xml_text(x->s3err, "Message", msg, sizeof(msg));
	}
	if (code[0] != '\0' && msg[0] != '\0')
		snprintf(why, whylen, "%s: HTTP %ld %s: %s", x->url, x->status,
		    code, msg);
	else if (code[0] != '\0')
		snprintf(why, whylen, "%s: HTTP %ld %s", x->url, x->status,
		    code);
	else
		snprintf(why, whylen, "HTTP %ld from %s", x->status, x->url);
}

/*
 * The text of the first <tag>…</tag> in xml into out, with the five XML
 * entities decoded and anything but printable ASCII as '?', since it
 * comes from the server and goes into messages, logs and JSON.  Empty if
 * there is no such element.
 */
static void
fetch_xml_text(const char *xml, const char *tag, char *out, size_t outlen)
{
	static const struct {
		const char	*ent;
		char		 c;
	} ents[] = {
		{ "&amp;", '&' }, { "&lt;", '<' }, { "&gt;", '>' },
		{ "&quot;", '"' }, { "&apos;", '\'' },
	};
	const char	*p, *end;
	char		 open[32], close[32];
	size_t		 o = 0, i, n;

	out[0] = '\0';
	snprintf(open, sizeof(open), "<%s>", tag);
	snprintf(close, sizeof(close), "</%s>", tag);
	if ((p = strstr(xml, open)) == NULL)
		return;
	p += strlen(open);
	if ((end = strstr(p, close)) == NULL)
		return;
	while (p < end && o + 1 < outlen) {
		for (i = 0; i < sizeof(ents) / sizeof(ents[0]); i++) {
			n = strlen(ents[i].ent);
			if ((size_t)(end - p) >= n &&
			    strncmp(p, ents[i].ent, n) == 0)
				break;
		}
		if (i < sizeof(ents) / sizeof(ents[0])) {
			out[o++] = ents[i].c;
			p += strlen(ents[i].ent);
			continue;
		}
		out[o++] = *p >= 0x20 && *p <= 0x7e ? *p : *p == '\n' ||
		    *p == '\t' ? ' ' : '?';
		p++;
	}
	out[o] = '\0';
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
	size_t			 len = size * n, room;

	curl_easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, &x->status);
	if (x->status < 200 || x->status > 299) {
		/*
		 * Error pages are not the file; the status says enough, but
		 * for S3's XML, which says why, kept apart up to a limit.
		 */
		x->bad_status = 1;
		if (!x->s3)
			return 0;
		room = FETCH_S3_ERR_MAX - x->s3err_len;
		memcpy(x->s3err + x->s3err_len, p, len < room ? len : room);
		x->s3err_len += len < room ? len : room;
		x->s3err[x->s3err_len] = '\0';
		return len <= room ? len : 0;
	}
	/* What a server answers to a PUT is not kept. */
	if (x->upload)
		return len;
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

/*
 * libcurl's read callback for a PUT: the next bytes of the file by
 * offset (pread), so that each attempt sends from the start whatever
 * else moves the file's offset, hashed as they go.
 */
static size_t
fetch_read(char *p, size_t size, size_t n, void *arg)
{
	struct fetch_xfer	*x = arg;
	size_t			 want = size * n;
	ssize_t			 r;

	if (want > x->put_size - x->bytes)
		want = (size_t)(x->put_size - x->bytes);
	if (want == 0)
		return 0;
	while ((r = pread(x->opts->fd, p, want, (off_t)x->bytes)) == -1 &&
	    errno == EINTR)
		;
	if (r == -1) {
		x->read_errno = errno ? errno : EIO;
		return CURL_READFUNC_ABORT;
	}
	/* Content-Length promised put_size: less would hang the server. */
	if (r == 0) {
		x->short_file = 1;
		return CURL_READFUNC_ABORT;
	}
	if (x->sha256 != NULL && gnutls_hash(x->sha256, p, (size_t)r) < 0)
		x->hash_err = 1;
	if (x->sha1 != NULL && gnutls_hash(x->sha1, p, (size_t)r) < 0)
		x->hash_err = 1;
	if (x->hash_err)
		return CURL_READFUNC_ABORT;
	x->bytes += (uint64_t)r;
	return (size_t)r;
}

/*
 * libcurl rewinds the body to send it again on a new connection (a
 * reused one that had closed); only back to the start, with new digests.
 */
static int
fetch_seek(void *arg, curl_off_t off, int origin)
{
	struct fetch_xfer	*x = arg;

	if (origin != SEEK_SET || off != 0)
		return CURL_SEEKFUNC_CANTSEEK;
	x->bytes = 0;
	if (fetch_hash_start(x) == -1) {
		x->hash_err = 1;
		return CURL_SEEKFUNC_FAIL;
	}
	return CURL_SEEKFUNC_OK;
}

/*
 * libcurl's progress callback, passing on the bytes received (or sent,
 * for a PUT); total is 0 while the size is unknown.
 */
static int
fetch_xferinfo(void *arg, curl_off_t dltotal, curl_off_t dlnow,
    curl_off_t ultotal, curl_off_t ulnow)
{
	struct fetch_xfer	*x = arg;
	const struct fetch_opts	*o = x->opts;
	curl_off_t		 now, total;

	now = x->upload ? ulnow : dlnow;
	total = x->upload ? ultotal : dltotal;
	if (o->progress(o->arg, now > 0 ? (uint64_t)now : 0,
	    total > 0 ? (uint64_t)total : 0) != 0) {
		x->cancelled = 1;
		return 1;
	}
	return 0;
}

/* New digests for bytes that start again from the first. */
static int
fetch_hash_start(struct fetch_xfer *x)
{
	fetch_hash_free(x);
	if (!x->hashing)
		return 0;
	if (gnutls_hash_init(&x->sha256, GNUTLS_DIG_SHA256) < 0) {
		x->sha256 = NULL;
		return -1;
	}
	if (x->opts->want_sha1 &&
	    gnutls_hash_init(&x->sha1, GNUTLS_DIG_SHA1) < 0) {
		x->sha1 = NULL;
		return -1;
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

/* Frees x's handle and headers; the headers may hold a session token. */
static void
fetch_xfer_free(struct fetch_xfer *x)
{
	struct curl_slist	*l;

	fetch_hash_free(x);
	if (x->curl != NULL)
		curl_easy_cleanup(x->curl);
	x->curl = NULL;
	for (l = x->headers; l != NULL; l = l->next)
		explicit_bzero(l->data, strlen(l->data));
	curl_slist_free_all(x->headers);
	x->headers = NULL;
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
