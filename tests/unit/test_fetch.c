/*
 * test_fetch: downloads and uploads against a tiny HTTP/1.1 server that
 * runs in a thread of the test on 127.0.0.1 (no other traffic) and
 * answers canned responses chosen by path.  The digests are checked
 * against GnuTLS's one-shot hash of the known body; retries, the size
 * limit, redirects, cancel and the text GET each get a path that
 * provokes them.  Backoff is the real one (200 ms, then 400 ms), so the
 * retry tests take about 0.6 s each.
 *
 * S3: the mapping of s3:// URLs is checked as a table; requests to the
 * loopback server as an S3 endpoint check the headers libcurl sends (the
 * SigV4 Authorization, x-amz-content-sha256, the session token) and how
 * S3's XML errors are reported.  Whether the signature is right is for
 * the integration tests, whose server checks it as S3 does.
 */
#include <sys/socket.h>
#include <sys/stat.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <gnutls/gnutls.h>
#include <gnutls/crypto.h>

#include "fetch.h"
#include "nodee.h"
#include "unit.h"

#define ERRLEN		1024
#define OK_LEN		70000		/* several write callbacks */
#define BIG_LEN		300000
#define LIMIT		100000
#define HALF_LEN	100		/* /close-halfway sends this of 1000 */
#define SLOW_WAIT_MS	5000
#define SIDECAR		"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08  ok\n"
#define EMPTY_SHA256	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define S3_KEY_ID	"AKIDUNITTEST"
#define S3_SECRET	"unit/test+secret"
#define S3_TOKEN	"unit-session-token"
#define S3_DENIED	"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error>" \
			"<Code>AccessDenied</Code><Message>Access &amp; " \
			"&quot;policy&quot; say no</Message></Error>"
#define S3_SLOWDOWN	"<Error><Code>SlowDown</Code><Message>Please reduce " \
			"your request rate.</Message></Error>"
#define S3_MOVED	"<Error><Code>PermanentRedirect</Code><Message>Use " \
			"the specified endpoint.</Message></Error>"

/* A URL, whether a check takes it, and what its refusal must say. */
struct url_case {
	const char	*url;
	int		 ok;
	const char	*why;
};

/* The server: one thread, one connection at a time, Connection: close. */
struct srv_route {
	const char	*path;
	void		(*fn)(int, int);
	int		 hits;
};

static void	srv_ok(int, int);
static void	srv_big(int, int);
static void	srv_big_chunked(int, int);
static void	srv_404(int, int);
static void	srv_500_then_ok(int, int);
static void	srv_partial_then_ok(int, int);
static void	srv_always_500(int, int);
static void	srv_close_halfway(int, int);
static void	srv_redirect_ftp(int, int);
static void	srv_redirect_ok(int, int);
static void	srv_redirect_loop(int, int);
static void	srv_slow(int, int);
static void	srv_sidecar(int, int);
static void	srv_500(int);
static void	srv_put(int, int);
static void	srv_put_403(int, int);
static void	srv_put_500_then_ok(int, int);
static void	srv_s3_denied(int, int);
static void	srv_s3_moved(int, int);
static void	srv_s3_slowdown_then_ok(int, int);
static void	srv_xml(int, const char *, const char *, const char *);

static struct srv_route	srv_routes[] = {
	{ "/ok", srv_ok, 0 },
	{ "/big", srv_big, 0 },
	{ "/big-chunked", srv_big_chunked, 0 },
	{ "/404", srv_404, 0 },
	{ "/500-then-ok", srv_500_then_ok, 0 },
	{ "/partial-then-ok", srv_partial_then_ok, 0 },
	{ "/always-500", srv_always_500, 0 },
	{ "/close-halfway", srv_close_halfway, 0 },
	{ "/redirect-to-ftp", srv_redirect_ftp, 0 },
	{ "/redirect-ok", srv_redirect_ok, 0 },
	{ "/redirect-loop", srv_redirect_loop, 0 },
	{ "/slow", srv_slow, 0 },
	{ "/ok.sha256", srv_sidecar, 0 },
	{ "/put", srv_put, 0 },
	{ "/put-403", srv_put_403, 0 },
	{ "/put-500-then-ok", srv_put_500_then_ok, 0 },
	{ "/bkt/obj", srv_ok, 0 },
	{ "/bkt/a%20b/c%2Bd/%C3%A9~x", srv_ok, 0 },
	{ "/bkt/denied", srv_s3_denied, 0 },
	{ "/bkt/moved", srv_s3_moved, 0 },
	{ "/bkt/slowdown-then-ok", srv_s3_slowdown_then_ok, 0 },
	{ "/bkt/up", srv_put, 0 },
};

static int		srv_fd = -1;
static int		srv_port;
static pthread_t	srv_thread;
static atomic_int	srv_stop;
static pthread_mutex_t	srv_mu = PTHREAD_MUTEX_INITIALIZER;
static char		srv_agent[128];
static char		srv_last[4096];	/* the last request's head */
static uint64_t		srv_put_len;	/* and its body */
static char		srv_put_sha[65];
static char		ok_body[OK_LEN];
static char		big_body[BIG_LEN];
static int		progress_calls;
static uint64_t		progress_done, progress_total;
static long		cancel_at_ms;

static int	group_setup(void **);
static int	group_teardown(void **);
static void	*srv_main(void *);
static void	srv_serve(int);
static void	srv_read_body(int, const char *, size_t);
static void	srv_header(const char *, char *, size_t);
static void	srv_send(int, const void *, size_t);
static void	srv_head(int, const char *, const char *, long);
static int	srv_hits(const char *);
static void	srv_reset(void);

static void	test_url_ok(void **);
static void	test_ok(void **);
static void	test_ok_sha1_truncates(void **);
static void	test_big_length(void **);
static void	test_big_chunked(void **);
static void	test_404(void **);
static void	test_500_then_ok(void **);
static void	test_partial_then_ok(void **);
static void	test_always_500(void **);
static void	test_close_halfway(void **);
static void	test_redirect_ftp(void **);
static void	test_redirect_ok(void **);
static void	test_redirect_loop(void **);
static void	test_cancel_slow(void **);
static void	test_cancel_in_backoff(void **);
static void	test_refused(void **);
static void	test_bad_url(void **);
static void	test_no_credentials(void **);
static void	test_text(void **);
static void	test_text_status(void **);
static void	test_text_too_big(void **);
static void	test_text_refused(void **);
static void	test_s3_url(void **);
static void	test_url_ok_s3(void **);
static void	test_s3_refused(void **);
static void	test_s3_get(void **);
static void	test_s3_error(void **);
static void	test_s3_no_redirect(void **);
static void	test_s3_retry(void **);
static void	test_put(void **);
static void	test_put_4xx(void **);
static void	test_put_5xx(void **);
static void	test_put_short(void **);
static void	test_put_cancel(void **);
static void	test_put_s3(void **);

static int	progress_count(void *, uint64_t, uint64_t);
static int	progress_cancel_on_bytes(void *, uint64_t, uint64_t);
static int	progress_cancel_later(void *, uint64_t, uint64_t);
static void	url_of(char *, size_t, const char *);
static void	check_urls(int (*)(const char *, char *, size_t),
		    const struct url_case *, size_t);
static int	out_open(void **);
static int	in_open(void **, const char *, size_t);
static void	s3_of(struct fetch_s3 *, char *, size_t);
static int	log_capture(void **, char *);
static void	log_release(int, const char *, char *, size_t);
static int	get(const char *, struct fetch_opts *, struct fetch_result *,
		    char *);
static void	assert_file(int, const char *, size_t);
static void	hex_digest(gnutls_digest_algorithm_t, const void *, size_t,
		    char *);
static int	closed_port(void);
static long	now_ms(void);

int
main(void)
{
	const struct CMUnitTest	tests[] = {
		cmocka_unit_test(test_url_ok),
#define T(f)	cmocka_unit_test_setup_teardown(f, unit_dir_setup, \
		    unit_dir_teardown)
		T(test_ok),
		T(test_ok_sha1_truncates),
		T(test_big_length),
		T(test_big_chunked),
		T(test_404),
		T(test_500_then_ok),
		T(test_partial_then_ok),
		T(test_always_500),
		T(test_close_halfway),
		T(test_redirect_ftp),
		T(test_redirect_ok),
		T(test_redirect_loop),
		T(test_cancel_slow),
		T(test_cancel_in_backoff),
		T(test_refused),
		T(test_bad_url),
		T(test_no_credentials),
		T(test_s3_refused),
		T(test_s3_get),
		T(test_s3_error),
		T(test_s3_no_redirect),
		T(test_s3_retry),
		T(test_put),
		T(test_put_4xx),
		T(test_put_5xx),
		T(test_put_short),
		T(test_put_cancel),
		T(test_put_s3),
#undef T
		cmocka_unit_test(test_text),
		cmocka_unit_test(test_text_status),
		cmocka_unit_test(test_text_too_big),
		cmocka_unit_test(test_text_refused),
		cmocka_unit_test(test_s3_url),
		cmocka_unit_test(test_url_ok_s3),
	};

	/* A proxy from the environment must not see the test's traffic. */
	setenv("no_proxy", "*", 1);
	setenv("NO_PROXY", "*", 1);
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

static int
group_setup(void **state)
{
	struct sockaddr_in	sin;
	socklen_t		len = sizeof(sin);
	size_t			i;

	(void)state;
	for (i = 0; i < sizeof(ok_body); i++)
		ok_body[i] = "abcdefghijklmnopqrstuvwxyz0123456789\n"[i % 37];
	for (i = 0; i < sizeof(big_body); i++)
		big_body[i] = (char)('A' + i % 26);
	if (fetch_global_init() != 0)
		return -1;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((srv_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
	    bind(srv_fd, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
	    listen(srv_fd, 16) == -1 ||
	    getsockname(srv_fd, (struct sockaddr *)&sin, &len) == -1)
		return -1;
	srv_port = ntohs(sin.sin_port);
	if (pthread_create(&srv_thread, NULL, srv_main, NULL) != 0)
		return -1;
	return 0;
}

static int
group_teardown(void **state)
{
	(void)state;
	atomic_store(&srv_stop, 1);
	pthread_join(srv_thread, NULL);
	close(srv_fd);
	fetch_global_cleanup();
	return 0;
}

static void
test_url_ok(void **state)
{
	static const struct url_case	t[] = {
		{ "http://example.com/a.zip", 1, NULL },
		{ "https://example.com/a.zip", 1, NULL },
		{ "HTTPS://example.com:8443/a?b=c#d", 1, NULL },
		{ "http://user:pw@example.com/", 1, NULL },
		{ "http://[::1]:8080/x", 1, NULL },
		{ "ftp://example.com/a.zip", 0, "only http and https" },
		{ "file:///etc/passwd", 0, "only http and https" },
		{ "gopher://example.com/", 0, "only http and https" },
		{ "example.com/a.zip", 0, "no scheme" },
		{ "//example.com/a.zip", 0, "no scheme" },
		{ "http://", 0, "no host" },
		{ "http:///a.zip", 0, "no host" },
		{ "https://:443/a.zip", 0, "no host" },
		{ "http:/example.com/a.zip", 0, "no host" },
		{ "http://example.com/a b", 0, "not a valid URL" },
		{ "", 0, "empty" },
		{ NULL, 0, "empty" },
	};
	(void)state;
	check_urls(fetch_url_ok, t, nitems(t));
	/* No room for a reason is no reason to crash. */
	assert_int_equal(fetch_url_ok("ftp://x/", NULL, 0), 0);
}

static void
test_ok(void **state)
{
	struct fetch_opts	o = { .progress = progress_count };
	struct fetch_result	res;
	char			err[ERRLEN], hex[65], agent[128];

	o.fd = out_open(state);
	progress_calls = 0;
	progress_done = progress_total = 0;
	if (get("/ok", &o, &res, err) != 0)
		fail_msg("%s", err);
	assert_int_equal(res.http_status, 200);
	assert_int_equal(res.bytes, OK_LEN);
	assert_int_equal(res.attempts, 1);
	assert_int_equal(res.cancelled, 0);
	hex_digest(GNUTLS_DIG_SHA256, ok_body, OK_LEN, hex);
	assert_string_equal(res.sha256, hex);
	assert_string_equal(res.sha1, "");
	assert_file(o.fd, ok_body, OK_LEN);
	assert_true(progress_calls > 0);
	assert_int_equal(progress_done, OK_LEN);
	assert_int_equal(progress_total, OK_LEN);
	pthread_mutex_lock(&srv_mu);
	snprintf(agent, sizeof(agent), "%s", srv_agent);
	pthread_mutex_unlock(&srv_mu);
	assert_string_equal(agent, "nodee/" NODEE_VERSION);
	close(o.fd);
}

/* Whatever the file held before is gone: it is written from its start. */
static void
test_ok_sha1_truncates(void **state)
{
	struct fetch_opts	o = { .want_sha1 = 1 };
	struct fetch_result	res;
	char			err[ERRLEN], hex[65];

	o.fd = out_open(state);
	assert_int_equal(write(o.fd, big_body, BIG_LEN), BIG_LEN);
	if (get("/ok", &o, &res, err) != 0)
		fail_msg("%s", err);
	hex_digest(GNUTLS_DIG_SHA256, ok_body, OK_LEN, hex);
	assert_string_equal(res.sha256, hex);
	hex_digest(GNUTLS_DIG_SHA1, ok_body, OK_LEN, hex);
	assert_string_equal(res.sha1, hex);
	assert_int_equal(strlen(res.sha1), 40);
	assert_file(o.fd, ok_body, OK_LEN);
	close(o.fd);
}

static void
test_big_length(void **state)
{
	struct fetch_opts	o = { .max_bytes = LIMIT };
	struct fetch_result	res;
	char			err[ERRLEN];

	o.fd = out_open(state);
	srv_reset();
	assert_int_equal(get("/big", &o, &res, err), -1);
	assert_contains(err, "larger than the limit of 100000 bytes");
	assert_contains(err, "/big");
	assert_int_equal(res.attempts, 1);
	assert_int_equal(srv_hits("/big"), 1);
	assert_true(res.bytes <= LIMIT);
	assert_string_equal(res.sha256, "");
	close(o.fd);
}

/* No Content-Length to refuse early: the limit holds while bytes arrive. */
static void
test_big_chunked(void **state)
{
	struct fetch_opts	o = { .max_bytes = LIMIT };
	struct fetch_result	res;
	struct stat		st;
	char			err[ERRLEN];

	o.fd = out_open(state);
	srv_reset();
	assert_int_equal(get("/big-chunked", &o, &res, err), -1);
	assert_contains(err, "larger than the limit of 100000 bytes");
	assert_int_equal(res.attempts, 1);
	assert_int_equal(srv_hits("/big-chunked"), 1);
	assert_true(res.bytes <= LIMIT);
	assert_int_equal(fstat(o.fd, &st), 0);
	assert_true(st.st_size <= LIMIT);

	/* The same body fits under a larger limit. */
	o.max_bytes = BIG_LEN;
	if (get("/big-chunked", &o, &res, err) != 0)
		fail_msg("%s", err);
	assert_file(o.fd, big_body, BIG_LEN);
	close(o.fd);
}

static void
test_404(void **state)
{
	struct fetch_opts	o = { 0 };
	struct fetch_result	res;
	char			err[ERRLEN], url[256];

	o.fd = out_open(state);
	srv_reset();
	assert_int_equal(get("/404", &o, &res, err), -1);
	url_of(url, sizeof(url), "/404");
	assert_contains(err, "HTTP 404");
	assert_contains(err, url);
	assert_int_equal(res.attempts, 1);
	assert_int_equal(srv_hits("/404"), 1);
	assert_int_equal(res.http_status, 404);
	/* The error page is not the file. */
	assert_file(o.fd, "", 0);
	close(o.fd);
}

static void
test_500_then_ok(void **state)
{
	struct fetch_opts	o = { 0 };
	struct fetch_result	res;
	char			err[ERRLEN], hex[65];

	o.fd = out_open(state);
	assert_int_equal(write(o.fd, big_body, 1000), 1000);
	srv_reset();
	if (get("/500-then-ok", &o, &res, err) != 0)
		fail_msg("%s", err);
	assert_int_equal(res.attempts, 2);
	assert_int_equal(srv_hits("/500-then-ok"), 2);
	assert_int_equal(res.http_status, 200);
	hex_digest(GNUTLS_DIG_SHA256, ok_body, OK_LEN, hex);
	assert_string_equal(res.sha256, hex);
	assert_file(o.fd, ok_body, OK_LEN);
	close(o.fd);
}

/*
 * Half of the body, then the connection drops: the retry must not append
 * to those bytes, nor hash them.
 */
static void
test_partial_then_ok(void **state)
{
	struct fetch_opts	o = { 0 };
	struct fetch_result	res;
	char			err[ERRLEN], hex[65];

	o.fd = out_open(state);
	srv_reset();
	if (get("/partial-then-ok", &o, &res, err) != 0)
		fail_msg("%s", err);
	assert_int_equal(res.attempts, 2);
	assert_int_equal(srv_hits("/partial-then-ok"), 2);
	assert_int_equal(res.bytes, OK_LEN);
	hex_digest(GNUTLS_DIG_SHA256, ok_body, OK_LEN, hex);
	assert_string_equal(res.sha256, hex);
	assert_file(o.fd, ok_body, OK_LEN);
	close(o.fd);
}

static void
test_always_500(void **state)
{
	struct fetch_opts	o = { 0 };
	struct fetch_result	res;
	char			err[ERRLEN], url[256];
	long			t0;

	o.fd = out_open(state);
	srv_reset();
	t0 = now_ms();
	assert_int_equal(get("/always-500", &o, &res, err), -1);
	/* Waits of 200 and 400 ms between the three attempts. */
	if (now_ms() - t0 < 550)
		fail_msg("three attempts in %ld ms: no backoff", now_ms() - t0);
	url_of(url, sizeof(url), "/always-500");
	assert_contains(err, "HTTP 500");
	assert_contains(err, url);
	assert_contains(err, "gave up after 3 attempts");
	assert_int_equal(res.attempts, 3);
	assert_int_equal(srv_hits("/always-500"), 3);
	assert_int_equal(res.http_status, 500);

	/* tries is the caller's. */
	srv_reset();
	o.tries = 2;
	assert_int_equal(get("/always-500", &o, &res, err), -1);
	assert_int_equal(res.attempts, 2);
	assert_int_equal(srv_hits("/always-500"), 2);
	close(o.fd);
}

static void
test_close_halfway(void **state)
{
	struct fetch_opts	o = { 0 };
	struct fetch_result	res;
	char			err[ERRLEN], url[256];

	o.fd = out_open(state);
	srv_reset();
	assert_int_equal(get("/close-halfway", &o, &res, err), -1);
	url_of(url, sizeof(url), "/close-halfway");
	assert_contains(err, url);
	assert_contains(err, "transfer closed with 900 bytes remaining");
	assert_contains(err, "gave up after 3 attempts");
	assert_int_equal(res.attempts, 3);
	assert_int_equal(srv_hits("/close-halfway"), 3);
	assert_string_equal(res.sha256, "");
	close(o.fd);
}

static void
test_redirect_ftp(void **state)
{
	struct fetch_opts	o = { 0 };
	struct fetch_result	res;
	char			err[ERRLEN];

	o.fd = out_open(state);
	srv_reset();
	assert_int_equal(get("/redirect-to-ftp", &o, &res, err), -1);
	assert_contains(err, "redirects to a URL that is not http or https");
	assert_contains(err, "/redirect-to-ftp");
	assert_int_equal(res.attempts, 1);
	assert_int_equal(srv_hits("/redirect-to-ftp"), 1);
	assert_file(o.fd, "", 0);
	close(o.fd);
}

static void
test_redirect_ok(void **state)
{
	struct fetch_opts	o = { 0 };
	struct fetch_result	res;
	char			err[ERRLEN], hex[65];

	o.fd = out_open(state);
	srv_reset();
	if (get("/redirect-ok", &o, &res, err) != 0)
		fail_msg("%s", err);
	assert_int_equal(srv_hits("/redirect-ok"), 1);
	assert_int_equal(srv_hits("/ok"), 1);
	assert_int_equal(res.http_status, 200);
	assert_int_equal(res.attempts, 1);
	hex_digest(GNUTLS_DIG_SHA256, ok_body, OK_LEN, hex);
	assert_string_equal(res.sha256, hex);
	assert_file(o.fd, ok_body, OK_LEN);
	close(o.fd);
}

static void
test_redirect_loop(void **state)
{
	struct fetch_opts	o = { 0 };
	struct fetch_result	res;
	char			err[ERRLEN];

	o.fd = out_open(state);
	srv_reset();
	assert_int_equal(get("/redirect-loop", &o, &res, err), -1);
	assert_contains(err, "more than 5 redirects");
	assert_int_equal(res.attempts, 1);
	/* The first request and five redirects, not one more. */
	assert_int_equal(srv_hits("/redirect-loop"), 6);
	close(o.fd);
}

/* /slow sends a few bytes of a large body, then waits for 5 s. */
static void
test_cancel_slow(void **state)
{
	struct fetch_opts	o = { .progress = progress_cancel_on_bytes };
	struct fetch_result	res;
	char			err[ERRLEN];
	long			t0;
	int			cancels = 0;

	o.fd = out_open(state);
	o.arg = &cancels;
	srv_reset();
	t0 = now_ms();
	assert_int_equal(get("/slow", &o, &res, err), -1);
	if (now_ms() - t0 > 2000)
		fail_msg("the cancel took %ld ms", now_ms() - t0);
	assert_int_equal(res.cancelled, 1);
	assert_int_equal(res.attempts, 1);
	assert_int_equal(cancels, 1);
	assert_contains(err, "cancelled");
	assert_contains(err, "/slow");
	close(o.fd);
}

/*
 * /always-500 answers in a few ms, then fetch waits 200 ms: a cancel
 * 50 ms in arrives during that wait and ends the retries there.
 */
static void
test_cancel_in_backoff(void **state)
{
	struct fetch_opts	o = { .progress = progress_cancel_later };
	struct fetch_result	res;
	char			err[ERRLEN];

	o.fd = out_open(state);
	srv_reset();
	cancel_at_ms = now_ms() + 50;
	assert_int_equal(get("/always-500", &o, &res, err), -1);
	assert_int_equal(res.cancelled, 1);
	assert_int_equal(res.attempts, 1);
	assert_int_equal(srv_hits("/always-500"), 1);
	assert_contains(err, "cancelled");
	assert_contains(err, "/always-500");
	close(o.fd);
}

static void
test_refused(void **state)
{
	struct fetch_opts	o = { 0 };
	struct fetch_result	res;
	char			err[ERRLEN], url[256];

	o.fd = out_open(state);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/x.zip", closed_port());
	o.url = url;
	assert_int_equal(fetch_file(&o, &res, err, sizeof(err)), -1);
	assert_contains(err, url);
	assert_contains(err, "onnect");
	assert_contains(err, "gave up after 3 attempts");
	assert_int_equal(res.attempts, 3);
	assert_int_equal(res.http_status, 0);
	assert_int_equal(res.cancelled, 0);
	close(o.fd);
}

static void
test_bad_url(void **state)
{
	struct fetch_opts	o = { .url = "file:///etc/passwd" };
	struct fetch_result	res;
	char			err[ERRLEN];

	o.fd = out_open(state);
	assert_int_equal(fetch_file(&o, &res, err, sizeof(err)), -1);
	assert_contains(err, "only http and https URLs are allowed");
	assert_contains(err, "file:///etc/passwd");
	assert_int_equal(res.attempts, 0);
	assert_file(o.fd, "", 0);
	close(o.fd);

	o.fd = -1;
	o.url = "http://127.0.0.1/";
	assert_int_equal(fetch_file(&o, &res, err, sizeof(err)), -1);
	assert_contains(err, "no output file");
}

/* user:password in a URL goes to the server, never to err or the log. */
static void
test_no_credentials(void **state)
{
	struct fetch_opts	o = { .tries = 2 };
	struct fetch_result	res;
	char			err[ERRLEN], url[256], logged[4096], path[PATH_MAX];
	int			saved;

	o.fd = out_open(state);
	snprintf(url, sizeof(url), "http://alice:s3cret@127.0.0.1:%d/always-500",
	    srv_port);
	o.url = url;
	saved = log_capture(state, path);
	assert_int_equal(fetch_file(&o, &res, err, sizeof(err)), -1);
	log_release(saved, path, logged, sizeof(logged));

	assert_contains(err, "HTTP 500");
	assert_contains(err, "127.0.0.1");
	assert_null(strstr(err, "s3cret"));
	assert_null(strstr(err, "alice"));
	assert_contains(logged, "/always-500");
	assert_null(strstr(logged, "s3cret"));
	assert_null(strstr(logged, "alice"));
	close(o.fd);
}

static void
test_text(void **state)
{
	char	buf[256], err[ERRLEN], url[256];
	long	status = 0;

	(void)state;
	url_of(url, sizeof(url), "/ok.sha256");
	if (fetch_text(url, buf, sizeof(buf), &status, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	assert_int_equal(status, 200);
	assert_string_equal(buf, SIDECAR);

	/* Exactly buflen - 1 bytes fit. */
	if (fetch_text(url, buf, strlen(SIDECAR) + 1, &status, err,
	    sizeof(err)) != 0)
		fail_msg("%s", err);
	assert_string_equal(buf, SIDECAR);
}

/*
 * Any complete response is an answer, its body kept only for a 2xx; a
 * 5xx is first retried like in fetch_file.
 */
static void
test_text_status(void **state)
{
	static const struct {
		const char	*path;
		long		 status;
		int		 hits;
	} t[] = {
		{ "/404", 404, 1 },
		{ "/always-500", 500, 3 },
	};
	char	buf[256], err[ERRLEN], url[256];
	size_t	i;
	long	status;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		srv_reset();
		status = 0;
		url_of(url, sizeof(url), t[i].path);
		if (fetch_text(url, buf, sizeof(buf), &status, err,
		    sizeof(err)) != 0)
			fail_msg("%s: %s", t[i].path, err);
		assert_int_equal(status, t[i].status);
		assert_string_equal(buf, "");
		assert_int_equal(srv_hits(t[i].path), t[i].hits);
	}
}

static void
test_text_too_big(void **state)
{
	char	buf[64], err[ERRLEN], url[256];
	long	status = 0;

	(void)state;
	url_of(url, sizeof(url), "/ok");
	assert_int_equal(fetch_text(url, buf, sizeof(buf), &status, err,
	    sizeof(err)), -1);
	assert_contains(err, "larger than the limit of 63 bytes");
	assert_contains(err, url);

	url_of(url, sizeof(url), "/ok.sha256");
	assert_int_equal(fetch_text(url, buf, strlen(SIDECAR), &status, err,
	    sizeof(err)), -1);
	assert_contains(err, "larger than the limit");
	assert_int_equal(fetch_text(url, buf, 1, &status, err, sizeof(err)),
	    -1);
	assert_contains(err, "no room");
}

static void
test_text_refused(void **state)
{
	char	buf[64], err[ERRLEN], url[256];
	long	status = 0;

	(void)state;
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/x.sha256",
	    closed_port());
	assert_int_equal(fetch_text(url, buf, sizeof(buf), &status, err,
	    sizeof(err)), -1);
	assert_contains(err, url);
	assert_contains(err, "gave up after 3 attempts");
	assert_int_equal(status, 0);

	assert_int_equal(fetch_text("ftp://127.0.0.1/x.sha256", buf,
	    sizeof(buf), &status, err, sizeof(err)), -1);
	assert_contains(err, "only http and https URLs are allowed");
}

static void
test_s3_url(void **state)
{
	static const struct {
		const char	*endpoint;
		const char	*url;
		const char	*want;	/* NULL: refused */
		const char	*why;
	} t[] = {
		{ "http://127.0.0.1:4568", "s3://b1/x/state.zip",
		    "http://127.0.0.1:4568/b1/x/state.zip", NULL },
		{ "https://s3.us-east-1.amazonaws.com", "s3://my.bucket-1/k",
		    "https://s3.us-east-1.amazonaws.com/my.bucket-1/k", NULL },
		{ "http://h:1/", "s3://bkt/k", "http://h:1/bkt/k", NULL },
		{ "http://h:1//", "s3://bkt/k", "http://h:1/bkt/k", NULL },
		{ "http://h/prefix", "s3://bkt/k", "http://h/prefix/bkt/k", NULL },
		{ "http://h", "S3://bkt/k", "http://h/bkt/k", NULL },
		{ "http://h", "s3://bkt/a b/c+d/\xc3\xa9~x",
		    "http://h/bkt/a%20b/c%2Bd/%C3%A9~x", NULL },
		{ "http://h", "s3://bkt/g:a:1.0/snap=1&x?y#z%20",
		    "http://h/bkt/g%3Aa%3A1.0/snap%3D1%26x%3Fy%23z%2520", NULL },
		{ "http://h", "s3://bkt//a//", "http://h/bkt//a//", NULL },
		{ "http://h", "s3://bkt/.a/..b/c.", "http://h/bkt/.a/..b/c.",
		    NULL },
		{ "http://h", "s3://Bkt/k", NULL, "bucket must be" },
		{ "http://h", "s3://b_k/k", NULL, "bucket must be" },
		{ "http://h", "s3://-bk/k", NULL, "bucket must be" },
		{ "http://h", "s3://bk./k", NULL, "bucket must be" },
		{ "http://h", "s3://../k", NULL, "bucket must be" },
		{ "http://h", "s3:///k", NULL, "bucket must be" },
		{ "http://h", "s3://id:secret@bkt/k", NULL, "bucket must be" },
		{ "http://h", "s3://"
		    "a123456789012345678901234567890123456789012345678901234567890123"
		    "/k", NULL, "bucket must be" },
		{ "http://h", "s3://bkt/", NULL, "key is empty" },
		{ "http://h", "s3://bkt", NULL, "has no key" },
		{ "http://h", "s3://bkt/a/../b", NULL, "'..' segment" },
		{ "http://h", "s3://bkt/./b", NULL, "'..' segment" },
		{ "http://h", "s3://bkt/a/.", NULL, "'..' segment" },
		{ "http://h", "s3://bkt/a\nb", NULL, "control character" },
		{ "http://h", "http://h/bkt/k", NULL, "not an s3:// URL" },
		{ "ftp://h", "s3://bkt/k", NULL, "S3 endpoint ftp://h" },
		{ "http://u:p@h", "s3://bkt/k", NULL, "without user" },
		{ "http://h/?x=1", "s3://bkt/k", NULL, "without user" },
		{ "h:4568", "s3://bkt/k", NULL, "S3 endpoint" },
		{ "", "s3://bkt/k", NULL, "endpoint is empty" },
		{ NULL, "s3://bkt/k", NULL, "endpoint is empty" },
	};
	struct fetch_s3	s3 = { .region = "us-east-1" };
	char		out[512], err[ERRLEN], key[1100];
	size_t		i;
	int		rc;

	(void)state;
	for (i = 0; i < nitems(t); i++) {
		s3.endpoint = t[i].endpoint;
		err[0] = '\0';
		rc = fetch_s3_url(&s3, t[i].url, out, sizeof(out), err,
		    sizeof(err));
		if (t[i].want != NULL) {
			if (rc != 0)
				fail_msg("%s: %s", t[i].url, err);
			assert_string_equal(out, t[i].want);
		} else {
			if (rc != -1)
				fail_msg("%s: accepted as %s", t[i].url, out);
			assert_contains(err, t[i].why);
			assert_null(strstr(err, "secret"));
			assert_string_equal(out, "");
		}
	}

	/* No credentials at all. */
	assert_int_equal(fetch_s3_url(NULL, "s3://bkt/k", out, sizeof(out),
	    err, sizeof(err)), -1);
	assert_contains(err, "s3:// needs credentials");

	/* S3 keys go up to 1024 bytes; the encoded URL must fit out. */
	s3.endpoint = "http://h";
	memset(key, 'k', sizeof(key));
	snprintf(key, sizeof(key), "s3://bkt/");
	key[9] = 'k';
	key[9 + 1024] = '\0';
	assert_int_equal(fetch_s3_url(&s3, key, out, sizeof(out), err,
	    sizeof(err)), -1);
	assert_contains(err, "too long");
	key[9 + 1024] = 'k';
	key[9 + 1025] = '\0';
	assert_int_equal(fetch_s3_url(&s3, key, out, sizeof(out), err,
	    sizeof(err)), -1);
	assert_contains(err, "longer than 1024 bytes");
	assert_int_equal(fetch_s3_url(&s3, "s3://bkt/k", out, 10, err,
	    sizeof(err)), -1);
	assert_string_equal(out, "");
}

static void
test_url_ok_s3(void **state)
{
	static const struct url_case	t[] = {
		{ "http://example.com/a.zip", 1, NULL },
		{ "https://example.com/a.zip", 1, NULL },
		{ "s3://b1/x/state.zip", 1, NULL },
		{ "S3://bucket.name/a b", 1, NULL },
		{ "ftp://example.com/a.zip", 0, "only http, https and s3" },
		{ "example.com/a.zip", 0, "s3://bucket/key" },
		{ "http:///a.zip", 0, "no host" },
		{ "s3://Bucket/k", 0, "bucket must be" },
		{ "s3://bkt/", 0, "key is empty" },
		{ "s3://bkt", 0, "has no key" },
		{ "s3://", 0, "has no key" },
		{ "", 0, "empty" },
		{ NULL, 0, "empty" },
	};
	char	why[256];

	(void)state;
	check_urls(fetch_url_ok_s3, t, nitems(t));
	assert_int_equal(fetch_url_ok_s3("s3://x", NULL, 0), 0);
	/* Where credentials cannot be given, s3 stays refused. */
	assert_int_equal(fetch_url_ok("s3://b1/k", why, sizeof(why)), 0);
	assert_contains(why, "only http and https URLs are allowed, not s3");
}

/* s3:// without credentials, or with unusable ones: no request at all. */
static void
test_s3_refused(void **state)
{
	static const struct {
		struct fetch_s3	 s3;
		const char	*why;
	} t[] = {
		{ { "http://h", "", "id", "secret", NULL }, "region" },
		{ { "http://h", "us:east", "id", "secret", NULL }, "region" },
		{ { "http://h", "us-east-1", "", "secret", NULL },
		    "access key id" },
		{ { "http://h", "us-east-1", "i/d", "secret", NULL },
		    "access key id" },
		{ { "http://h", "us-east-1", "id", "", NULL }, "secret" },
		{ { "http://h", "us-east-1", "id", "secret", "to\r\nken" },
		    "session token" },
	};
	struct fetch_opts	o = { .url = "s3://bkt/obj" };
	struct fetch_result	res;
	char			err[ERRLEN];
	size_t			i;

	o.fd = out_open(state);
	srv_reset();
	assert_int_equal(fetch_file(&o, &res, err, sizeof(err)), -1);
	assert_contains(err, "cannot fetch s3://bkt/obj: s3:// needs "
	    "credentials");
	assert_int_equal(res.attempts, 0);
	assert_int_equal(fetch_put_file(&o, 0, &res, err, sizeof(err)), -1);
	assert_contains(err, "cannot upload to s3://bkt/obj: s3:// needs "
	    "credentials");
	for (i = 0; i < nitems(t); i++) {
		o.s3 = &t[i].s3;
		assert_int_equal(fetch_file(&o, &res, err, sizeof(err)), -1);
		assert_contains(err, t[i].why);
		assert_null(strstr(err, "secret:"));
		assert_int_equal(res.attempts, 0);
	}
	assert_int_equal(srv_hits("/bkt/obj"), 0);
	close(o.fd);
}

/*
 * A signed GET: libcurl's SigV4 header for service s3 in the region,
 * with x-amz-content-sha256 (the hash of no body) and the session token
 * among the signed headers, and neither the secret nor a redirect.
 */
static void
test_s3_get(void **state)
{
	struct fetch_s3		s3;
	struct fetch_opts	o = { .url = "s3://bkt/obj", .s3 = &s3 };
	struct fetch_result	res;
	char			err[ERRLEN], hex[65], endpoint[64], h[1024];
	char			head[sizeof(srv_last)];

	s3_of(&s3, endpoint, sizeof(endpoint));
	o.fd = out_open(state);
	srv_reset();
	if (fetch_file(&o, &res, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	assert_int_equal(res.http_status, 200);
	hex_digest(GNUTLS_DIG_SHA256, ok_body, OK_LEN, hex);
	assert_string_equal(res.sha256, hex);
	assert_file(o.fd, ok_body, OK_LEN);

	srv_header("Authorization", h, sizeof(h));
	assert_contains(h, "AWS4-HMAC-SHA256 Credential=" S3_KEY_ID "/");
	assert_contains(h, "/us-east-1/s3/aws4_request, ");
	assert_contains(h, "SignedHeaders=host;x-amz-content-sha256;"
	    "x-amz-date;x-amz-security-token, Signature=");
	srv_header("x-amz-content-sha256", h, sizeof(h));
	assert_string_equal(h, EMPTY_SHA256);
	srv_header("x-amz-security-token", h, sizeof(h));
	assert_string_equal(h, S3_TOKEN);
	srv_header("X-Amz-Date", h, sizeof(h));
	assert_int_equal(strlen(h), 16);
	pthread_mutex_lock(&srv_mu);
	memcpy(head, srv_last, sizeof(head));
	pthread_mutex_unlock(&srv_mu);
	assert_null(strstr(head, S3_SECRET));
	assert_null(strstr(head, "Basic"));

	/* The key as S3 canonicalises it, so that the signature holds. */
	o.url = "s3://bkt/a b/c+d/\xc3\xa9~x";
	if (fetch_file(&o, &res, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	assert_int_equal(srv_hits("/bkt/a%20b/c%2Bd/%C3%A9~x"), 1);

	/* No token, no header. */
	s3.session_token = NULL;
	o.url = "s3://bkt/obj";
	if (fetch_file(&o, &res, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	srv_header("Authorization", h, sizeof(h));
	assert_contains(h, "SignedHeaders=host;x-amz-content-sha256;"
	    "x-amz-date, ");
	srv_header("x-amz-security-token", h, sizeof(h));
	assert_string_equal(h, "");
	close(o.fd);
}

/* S3's reason goes into the message; its XML never into the file. */
static void
test_s3_error(void **state)
{
	struct fetch_s3		s3;
	struct fetch_opts	o = { .url = "s3://bkt/denied", .s3 = &s3 };
	struct fetch_result	res;
	char			err[ERRLEN], endpoint[64], logged[4096];
	char			path[PATH_MAX];
	int			saved;

	s3_of(&s3, endpoint, sizeof(endpoint));
	o.fd = out_open(state);
	srv_reset();
	saved = log_capture(state, path);
	assert_int_equal(fetch_file(&o, &res, err, sizeof(err)), -1);
	log_release(saved, path, logged, sizeof(logged));
	assert_string_equal(err, "s3://bkt/denied: HTTP 403 AccessDenied: "
	    "Access & \"policy\" say no");
	assert_int_equal(res.http_status, 403);
	assert_int_equal(res.attempts, 1);
	assert_int_equal(srv_hits("/bkt/denied"), 1);
	assert_file(o.fd, "", 0);
	assert_null(strstr(err, S3_SECRET));
	assert_null(strstr(logged, S3_SECRET));
	assert_null(strstr(logged, S3_TOKEN));
	close(o.fd);
}

/* A signed request is for its URL: a 301 is reported, not followed. */
static void
test_s3_no_redirect(void **state)
{
	struct fetch_s3		s3;
	struct fetch_opts	o = { .url = "s3://bkt/moved", .s3 = &s3 };
	struct fetch_result	res;
	char			err[ERRLEN], endpoint[64];

	s3_of(&s3, endpoint, sizeof(endpoint));
	o.fd = out_open(state);
	srv_reset();
	assert_int_equal(fetch_file(&o, &res, err, sizeof(err)), -1);
	assert_contains(err, "s3://bkt/moved: HTTP 301 PermanentRedirect: Use "
	    "the specified endpoint.");
	assert_int_equal(srv_hits("/bkt/moved"), 1);
	assert_int_equal(srv_hits("/ok"), 0);
	assert_file(o.fd, "", 0);
	close(o.fd);
}

/* A 503 SlowDown is tried again, and its XML is not in the file. */
static void
test_s3_retry(void **state)
{
	struct fetch_s3		s3;
	struct fetch_opts	o = { .url = "s3://bkt/slowdown-then-ok",
				    .s3 = &s3 };
	struct fetch_result	res;
	char			err[ERRLEN], endpoint[64];

	s3_of(&s3, endpoint, sizeof(endpoint));
	o.fd = out_open(state);
	srv_reset();
	if (fetch_file(&o, &res, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	assert_int_equal(res.attempts, 2);
	assert_file(o.fd, ok_body, OK_LEN);

	/* Every attempt a 503: the last one's reason is the error. */
	srv_reset();
	o.tries = 1;
	assert_int_equal(fetch_file(&o, &res, err, sizeof(err)), -1);
	assert_contains(err, "HTTP 503 SlowDown: Please reduce your request "
	    "rate. (gave up after 1 attempts)");
	close(o.fd);
}

/*
 * A PUT sends the file from its first byte whatever its offset, says
 * what it sent and its digest, and shows the progress of the upload.
 */
static void
test_put(void **state)
{
	struct fetch_opts	o = { .progress = progress_count };
	struct fetch_result	res;
	char			err[ERRLEN], url[256], hex[65], h[256];

	o.fd = in_open(state, ok_body, OK_LEN);
	url_of(url, sizeof(url), "/put");
	o.url = url;
	progress_calls = 0;
	progress_done = progress_total = 0;
	srv_reset();
	if (fetch_put_file(&o, OK_LEN, &res, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	hex_digest(GNUTLS_DIG_SHA256, ok_body, OK_LEN, hex);
	assert_int_equal(res.http_status, 200);
	assert_int_equal(res.bytes, OK_LEN);
	assert_int_equal(res.attempts, 1);
	assert_string_equal(res.sha256, hex);
	assert_int_equal(srv_hits("/put"), 1);
	pthread_mutex_lock(&srv_mu);
	assert_int_equal(srv_put_len, OK_LEN);
	assert_string_equal(srv_put_sha, hex);
	assert_true(strncmp(srv_last, "PUT /put HTTP/1.1\r\n", 19) == 0);
	pthread_mutex_unlock(&srv_mu);
	srv_header("Content-Type", h, sizeof(h));
	assert_string_equal(h, "application/octet-stream");
	assert_true(progress_calls > 0);
	assert_int_equal(progress_done, OK_LEN);
	assert_int_equal(progress_total, OK_LEN);

	/* The first size bytes only; and a given type. */
	o.content_type = "application/zip";
	if (fetch_put_file(&o, 1000, &res, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	hex_digest(GNUTLS_DIG_SHA256, ok_body, 1000, hex);
	assert_string_equal(res.sha256, hex);
	pthread_mutex_lock(&srv_mu);
	assert_int_equal(srv_put_len, 1000);
	pthread_mutex_unlock(&srv_mu);
	srv_header("Content-Type", h, sizeof(h));
	assert_string_equal(h, "application/zip");
	close(o.fd);
}

static void
test_put_4xx(void **state)
{
	struct fetch_opts	o = { 0 };
	struct fetch_result	res;
	char			err[ERRLEN], url[256];

	o.fd = in_open(state, ok_body, OK_LEN);
	url_of(url, sizeof(url), "/put-403");
	o.url = url;
	srv_reset();
	assert_int_equal(fetch_put_file(&o, OK_LEN, &res, err, sizeof(err)),
	    -1);
	assert_contains(err, "HTTP 403");
	assert_contains(err, url);
	assert_int_equal(res.attempts, 1);
	assert_int_equal(res.http_status, 403);
	assert_int_equal(srv_hits("/put-403"), 1);
	close(o.fd);
}

/* The retry sends the whole file again, and hashes only that. */
static void
test_put_5xx(void **state)
{
	struct fetch_opts	o = { 0 };
	struct fetch_result	res;
	char			err[ERRLEN], url[256], hex[65];

	o.fd = in_open(state, ok_body, OK_LEN);
	url_of(url, sizeof(url), "/put-500-then-ok");
	o.url = url;
	srv_reset();
	if (fetch_put_file(&o, OK_LEN, &res, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	assert_int_equal(res.attempts, 2);
	assert_int_equal(srv_hits("/put-500-then-ok"), 2);
	assert_int_equal(res.bytes, OK_LEN);
	hex_digest(GNUTLS_DIG_SHA256, ok_body, OK_LEN, hex);
	assert_string_equal(res.sha256, hex);
	pthread_mutex_lock(&srv_mu);
	assert_int_equal(srv_put_len, OK_LEN);
	assert_string_equal(srv_put_sha, hex);
	pthread_mutex_unlock(&srv_mu);

	url_of(url, sizeof(url), "/always-500");
	o.tries = 2;
	assert_int_equal(fetch_put_file(&o, OK_LEN, &res, err, sizeof(err)),
	    -1);
	assert_contains(err, "gave up after 2 attempts");
	close(o.fd);
}

/* A file shorter than promised fails at once, plainly. */
static void
test_put_short(void **state)
{
	struct fetch_opts	o = { 0 };
	struct fetch_result	res;
	struct fetch_s3		s3;
	char			err[ERRLEN], url[256], endpoint[64];

	o.fd = in_open(state, ok_body, 1000);
	url_of(url, sizeof(url), "/put");
	o.url = url;
	assert_int_equal(fetch_put_file(&o, 2000, &res, err, sizeof(err)), -1);
	assert_contains(err, "cannot upload to");
	assert_contains(err, "has fewer than 2000 bytes");
	assert_int_equal(res.attempts, 1);

	/* For S3 it is found while hashing, before any request. */
	s3_of(&s3, endpoint, sizeof(endpoint));
	o.s3 = &s3;
	o.url = "s3://bkt/up";
	srv_reset();
	assert_int_equal(fetch_put_file(&o, 2000, &res, err, sizeof(err)), -1);
	assert_contains(err, "cannot upload to s3://bkt/up: the file to send "
	    "has fewer than 2000 bytes");
	assert_int_equal(res.attempts, 0);
	assert_int_equal(srv_hits("/bkt/up"), 0);

	o.fd = -1;
	assert_int_equal(fetch_put_file(&o, 1, &res, err, sizeof(err)), -1);
	assert_contains(err, "no input file");
}

static void
test_put_cancel(void **state)
{
	struct fetch_opts	o = { .progress = progress_cancel_on_bytes };
	struct fetch_result	res;
	char			err[ERRLEN], url[256];
	int			cancels = 0;

	o.fd = in_open(state, big_body, BIG_LEN);
	o.arg = &cancels;
	url_of(url, sizeof(url), "/put");
	o.url = url;
	assert_int_equal(fetch_put_file(&o, BIG_LEN, &res, err, sizeof(err)),
	    -1);
	assert_int_equal(res.cancelled, 1);
	assert_int_equal(res.attempts, 1);
	assert_contains(err, "cancelled while uploading to");
	close(o.fd);
}

/*
 * A signed PUT says the SHA-256 of its body in x-amz-content-sha256,
 * signed with Content-Type, so that S3 can check what arrived.
 */
static void
test_put_s3(void **state)
{
	struct fetch_s3		s3;
	struct fetch_opts	o = { .url = "s3://bkt/up", .s3 = &s3,
				    .content_type = "application/zip" };
	struct fetch_result	res;
	char			err[ERRLEN], endpoint[64], hex[65], h[1024];

	s3_of(&s3, endpoint, sizeof(endpoint));
	s3.session_token = NULL;
	o.fd = in_open(state, ok_body, OK_LEN);
	srv_reset();
	if (fetch_put_file(&o, OK_LEN, &res, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	hex_digest(GNUTLS_DIG_SHA256, ok_body, OK_LEN, hex);
	assert_string_equal(res.sha256, hex);
	assert_int_equal(srv_hits("/bkt/up"), 1);
	srv_header("x-amz-content-sha256", h, sizeof(h));
	assert_string_equal(h, hex);
	srv_header("Authorization", h, sizeof(h));
	assert_contains(h, "SignedHeaders=content-type;host;"
	    "x-amz-content-sha256;x-amz-date, ");
	pthread_mutex_lock(&srv_mu);
	assert_int_equal(srv_put_len, OK_LEN);
	assert_string_equal(srv_put_sha, hex);
	pthread_mutex_unlock(&srv_mu);

	/* S3's reason, as for a GET. */
	o.url = "s3://bkt/denied";
	assert_int_equal(fetch_put_file(&o, OK_LEN, &res, err, sizeof(err)),
	    -1);
	assert_contains(err, "s3://bkt/denied: HTTP 403 AccessDenied: Access");
	assert_int_equal(res.attempts, 1);
	close(o.fd);
}

static int
progress_count(void *arg, uint64_t done, uint64_t total)
{
	(void)arg;
	progress_calls++;
	progress_done = done;
	if (total != 0)
		progress_total = total;
	return 0;
}

static int
progress_cancel_on_bytes(void *arg, uint64_t done, uint64_t total)
{
	(void)total;
	if (done > 0)
		*(int *)arg += 1;
	return done > 0;
}

static int
progress_cancel_later(void *arg, uint64_t done, uint64_t total)
{
	(void)arg;
	(void)done;
	(void)total;
	return now_ms() >= cancel_at_ms;
}

static void
check_urls(int (*ok)(const char *, char *, size_t),
    const struct url_case *t, size_t n)
{
	char	why[256];
	size_t	i;

	for (i = 0; i < n; i++) {
		why[0] = '\0';
		if (ok(t[i].url, why, sizeof(why)) != t[i].ok)
			fail_msg("%s: expected %d (%s)", t[i].url ? t[i].url :
			    "NULL", t[i].ok, why);
		if (t[i].why != NULL)
			assert_contains(why, t[i].why);
	}
}

static void
url_of(char *url, size_t len, const char *path)
{
	snprintf(url, len, "http://127.0.0.1:%d%s", srv_port, path);
}

/* A new empty file in the test's directory. */
static int
out_open(void **state)
{
	char	path[PATH_MAX];
	int	fd;

	unit_path(path, *state, "out");
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd != -1);
	return fd;
}

/* A file in the test's directory holding len bytes of body, its offset
 * at the end (a PUT must not care). */
static int
in_open(void **state, const char *body, size_t len)
{
	char	path[PATH_MAX];
	int	fd;

	unit_path(path, *state, "in");
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd != -1);
	assert_int_equal(write(fd, body, len), (ssize_t)len);
	return fd;
}

/* The loopback server as an S3 endpoint, with a key pair and a token. */
static void
s3_of(struct fetch_s3 *s3, char *endpoint, size_t len)
{
	snprintf(endpoint, len, "http://127.0.0.1:%d/", srv_port);
	s3->endpoint = endpoint;
	s3->region = "us-east-1";
	s3->access_key_id = S3_KEY_ID;
	s3->secret_access_key = S3_SECRET;
	s3->session_token = S3_TOKEN;
}

/* Sends stderr, where the log goes, to a file path in the test's
 * directory until log_release; returns the saved stderr. */
static int
log_capture(void **state, char *path)
{
	int	saved, fd;

	unit_path(path, *state, "stderr");
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd != -1);
	fflush(stderr);
	saved = dup(STDERR_FILENO);
	assert_true(saved != -1);
	dup2(fd, STDERR_FILENO);
	close(fd);
	return saved;
}

/* Puts stderr back and reads what was logged into out. */
static void
log_release(int saved, const char *path, char *out, size_t outlen)
{
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	unit_read(path, out, outlen);
}

static int
get(const char *path, struct fetch_opts *o, struct fetch_result *res,
    char *err)
{
	static char	url[256];

	url_of(url, sizeof(url), path);
	o->url = url;
	err[0] = '\0';
	return fetch_file(o, res, err, ERRLEN);
}

static void
assert_file(int fd, const char *want, size_t len)
{
	struct stat	st;
	char		*got;

	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(st.st_size, len);
	got = malloc(len + 1);
	assert_non_null(got);
	assert_int_equal(pread(fd, got, len, 0), (ssize_t)len);
	assert_memory_equal(got, want, len);
	free(got);
}

static void
hex_digest(gnutls_digest_algorithm_t alg, const void *p, size_t len,
    char *out)
{
	unsigned char	d[64];
	size_t		i, n = gnutls_hash_get_len(alg);

	assert_int_equal(gnutls_hash_fast(alg, p, len, d), 0);
	for (i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", d[i]);
}

/* A port on 127.0.0.1 that nothing listens on (just bound and closed). */
static int
closed_port(void)
{
	struct sockaddr_in	sin;
	socklen_t		len = sizeof(sin);
	int			fd, port;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd != -1);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	port = ntohs(sin.sin_port);
	close(fd);
	return port;
}

static long
now_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void *
srv_main(void *arg)
{
	struct pollfd	pfd;
	int		c;

	(void)arg;
	pfd.fd = srv_fd;
	pfd.events = POLLIN;
	while (!atomic_load(&srv_stop)) {
		if (poll(&pfd, 1, 50) <= 0)
			continue;
		if ((c = accept4(srv_fd, NULL, NULL, SOCK_CLOEXEC)) == -1)
			continue;
		srv_serve(c);
		/* The request was read whole, so this is a FIN, not a RST. */
		shutdown(c, SHUT_WR);
		close(c);
	}
	return NULL;
}

/* Reads one request and answers it from srv_routes. */
static void
srv_serve(int c)
{
	struct pollfd	pfd = { c, POLLIN, 0 };
	struct srv_route	*r = NULL;
	char		req[4096], method[8], path[256], *ua, *end;
	size_t		len = 0, i;
	ssize_t		n;
	int		hit = 0;

	while (len < sizeof(req) - 1) {
		if (poll(&pfd, 1, 2000) <= 0)
			return;
		if ((n = recv(c, req + len, sizeof(req) - 1 - len, 0)) <= 0)
			return;
		len += (size_t)n;
		req[len] = '\0';
		if (strstr(req, "\r\n\r\n") != NULL)
			break;
	}
	if (sscanf(req, "%7s %255s HTTP/1.1", method, path) != 2 ||
	    (strcmp(method, "GET") != 0 && strcmp(method, "PUT") != 0))
		return;
	if (strcmp(method, "PUT") == 0)
		srv_read_body(c, req, len);

	pthread_mutex_lock(&srv_mu);
	end = strstr(req, "\r\n\r\n");
	snprintf(srv_last, sizeof(srv_last), "%.*s", (int)(end - req + 2),
	    req);
	if ((ua = strstr(req, "\r\nUser-Agent: ")) != NULL) {
		ua += strlen("\r\nUser-Agent: ");
		if ((end = strstr(ua, "\r\n")) != NULL)
			snprintf(srv_agent, sizeof(srv_agent), "%.*s",
			    (int)(end - ua), ua);
	}
	for (i = 0; i < sizeof(srv_routes) / sizeof(srv_routes[0]); i++)
		if (strcmp(srv_routes[i].path, path) == 0) {
			r = &srv_routes[i];
			hit = ++r->hits;
		}
	pthread_mutex_unlock(&srv_mu);
	if (r == NULL)
		srv_404(c, 1);
	else
		r->fn(c, hit);
}

/*
 * The body of a PUT whose head (and perhaps the body's start) is in req:
 * answers "Expect: 100-continue", reads Content-Length bytes and keeps
 * their length and SHA-256 for the test to check.
 */
static void
srv_read_body(int c, const char *req, size_t len)
{
	struct pollfd		 pfd = { c, POLLIN, 0 };
	gnutls_hash_hd_t	 h;
	const char		*body, *cl;
	unsigned char		 d[32];
	char			 buf[8192], hex[65];
	uint64_t		 want = 0, got;
	ssize_t			 n;
	size_t			 i;

	body = strstr(req, "\r\n\r\n") + 4;
	if ((cl = strcasestr(req, "\r\nContent-Length: ")) != NULL)
		want = strtoull(cl + 18, NULL, 10);
	if (strcasestr(req, "\r\nExpect: 100-continue") != NULL)
		srv_send(c, "HTTP/1.1 100 Continue\r\n\r\n", 25);
	if (gnutls_hash_init(&h, GNUTLS_DIG_SHA256) < 0)
		return;
	got = len - (size_t)(body - req);
	gnutls_hash(h, body, (size_t)got);
	while (got < want && poll(&pfd, 1, 2000) > 0) {
		if ((n = recv(c, buf, sizeof(buf), 0)) <= 0)
			break;
		gnutls_hash(h, buf, (size_t)n);
		got += (uint64_t)n;
	}
	gnutls_hash_deinit(h, d);
	for (i = 0; i < sizeof(d); i++)
		snprintf(hex + 2 * i, 3, "%02x", d[i]);
	pthread_mutex_lock(&srv_mu);
	srv_put_len = got;
	memcpy(srv_put_sha, hex, sizeof(srv_put_sha));
	pthread_mutex_unlock(&srv_mu);
}

/* The value of header name in the last request, or "". */
static void
srv_header(const char *name, char *out, size_t outlen)
{
	char	pat[128];
	char	*p, *end;

	snprintf(pat, sizeof(pat), "\r\n%s: ", name);
	out[0] = '\0';
	pthread_mutex_lock(&srv_mu);
	if ((p = strcasestr(srv_last, pat)) != NULL) {
		p += strlen(pat);
		if ((end = strstr(p, "\r\n")) != NULL)
			snprintf(out, outlen, "%.*s", (int)(end - p), p);
	}
	pthread_mutex_unlock(&srv_mu);
}

/* Writes it all, or stops quietly when the client has gone. */
static void
srv_send(int c, const void *p, size_t len)
{
	const char	*s = p;
	ssize_t		 n;

	while (len > 0) {
		if ((n = send(c, s, len, MSG_NOSIGNAL)) <= 0) {
			if (n == -1 && errno == EINTR)
				continue;
			return;
		}
		s += n;
		len -= (size_t)n;
	}
}

/* Status line and headers; length -1: chunked. */
static void
srv_head(int c, const char *status, const char *extra, long length)
{
	char	h[512];
	int	n;

	if (length >= 0)
		n = snprintf(h, sizeof(h), "HTTP/1.1 %s\r\nContent-Length: "
		    "%ld\r\nConnection: close\r\n%s\r\n", status, length,
		    extra ? extra : "");
	else
		n = snprintf(h, sizeof(h), "HTTP/1.1 %s\r\nTransfer-Encoding: "
		    "chunked\r\nConnection: close\r\n%s\r\n", status,
		    extra ? extra : "");
	srv_send(c, h, (size_t)n);
}

static void
srv_ok(int c, int hit)
{
	(void)hit;
	srv_head(c, "200 OK", "Content-Type: application/zip\r\n", OK_LEN);
	srv_send(c, ok_body, OK_LEN);
}

static void
srv_big(int c, int hit)
{
	(void)hit;
	srv_head(c, "200 OK", NULL, BIG_LEN);
	srv_send(c, big_body, BIG_LEN);
}

static void
srv_big_chunked(int c, int hit)
{
	char	h[32];
	size_t	off, n;
	int	len;

	(void)hit;
	srv_head(c, "200 OK", NULL, -1);
	for (off = 0; off < BIG_LEN; off += n) {
		n = BIG_LEN - off < 8192 ? BIG_LEN - off : 8192;
		len = snprintf(h, sizeof(h), "%zx\r\n", n);
		srv_send(c, h, (size_t)len);
		srv_send(c, big_body + off, n);
		srv_send(c, "\r\n", 2);
	}
	srv_send(c, "0\r\n\r\n", 5);
}

static void
srv_404(int c, int hit)
{
	(void)hit;
	srv_head(c, "404 Not Found", NULL, 10);
	srv_send(c, "not found\n", 10);
}

static void
srv_500(int c)
{
	srv_head(c, "500 Internal Server Error", NULL, 5);
	srv_send(c, "oops\n", 5);
}

static void
srv_500_then_ok(int c, int hit)
{
	if (hit == 1)
		srv_500(c);
	else
		srv_ok(c, hit);
}

static void
srv_partial_then_ok(int c, int hit)
{
	if (hit == 1) {
		srv_head(c, "200 OK", NULL, OK_LEN);
		srv_send(c, ok_body, OK_LEN / 2);
	} else
		srv_ok(c, hit);
}

static void
srv_always_500(int c, int hit)
{
	(void)hit;
	srv_500(c);
}

static void
srv_close_halfway(int c, int hit)
{
	(void)hit;
	srv_head(c, "200 OK", NULL, 1000);
	srv_send(c, big_body, HALF_LEN);
}

static void
srv_redirect_ftp(int c, int hit)
{
	(void)hit;
	srv_head(c, "302 Found", "Location: ftp://127.0.0.1/x\r\n", 0);
}

static void
srv_redirect_ok(int c, int hit)
{
	(void)hit;
	srv_head(c, "302 Found", "Location: /ok\r\n", 0);
}

static void
srv_redirect_loop(int c, int hit)
{
	(void)hit;
	srv_head(c, "302 Found", "Location: /redirect-loop\r\n", 0);
}

/* Some bytes of a large body, then nothing until the client leaves. */
static void
srv_slow(int c, int hit)
{
	struct pollfd	pfd = { c, POLLIN, 0 };
	char		b[256];
	long		t0 = now_ms();

	(void)hit;
	srv_head(c, "200 OK", NULL, 1000000);
	srv_send(c, big_body, 100);
	while (now_ms() - t0 < SLOW_WAIT_MS) {
		if (poll(&pfd, 1, 50) > 0 && recv(c, b, sizeof(b), 0) <= 0)
			return;
	}
}

static void
srv_sidecar(int c, int hit)
{
	(void)hit;
	srv_head(c, "200 OK", "Content-Type: text/plain\r\n",
	    (long)strlen(SIDECAR));
	srv_send(c, SIDECAR, strlen(SIDECAR));
}

static void
srv_put(int c, int hit)
{
	(void)hit;
	srv_head(c, "200 OK", "ETag: \"x\"\r\n", 0);
}

static void
srv_put_403(int c, int hit)
{
	(void)hit;
	srv_head(c, "403 Forbidden", NULL, 7);
	srv_send(c, "denied\n", 7);
}

static void
srv_put_500_then_ok(int c, int hit)
{
	if (hit == 1)
		srv_500(c);
	else
		srv_put(c, hit);
}

/* An S3 error: status, extra headers and the XML body. */
static void
srv_xml(int c, const char *status, const char *extra, const char *xml)
{
	char	h[256];

	snprintf(h, sizeof(h), "Content-Type: application/xml\r\n%s",
	    extra ? extra : "");
	srv_head(c, status, h, (long)strlen(xml));
	srv_send(c, xml, strlen(xml));
}

static void
srv_s3_denied(int c, int hit)
{
	(void)hit;
	srv_xml(c, "403 Forbidden", NULL, S3_DENIED);
}

static void
srv_s3_moved(int c, int hit)
{
	(void)hit;
	srv_xml(c, "301 Moved Permanently", "Location: /ok\r\n", S3_MOVED);
}

static void
srv_s3_slowdown_then_ok(int c, int hit)
{
	if (hit == 1)
		srv_xml(c, "503 Slow Down", NULL, S3_SLOWDOWN);
	else
		srv_ok(c, hit);
}

static int
srv_hits(const char *path)
{
	size_t	i;
	int	n = -1;

	pthread_mutex_lock(&srv_mu);
	for (i = 0; i < sizeof(srv_routes) / sizeof(srv_routes[0]); i++)
		if (strcmp(srv_routes[i].path, path) == 0)
			n = srv_routes[i].hits;
	pthread_mutex_unlock(&srv_mu);
	return n;
}

static void
srv_reset(void)
{
	size_t	i;

	pthread_mutex_lock(&srv_mu);
	for (i = 0; i < sizeof(srv_routes) / sizeof(srv_routes[0]); i++)
		srv_routes[i].hits = 0;
	pthread_mutex_unlock(&srv_mu);
}
