/*
 * test_http: routing and path decoding, the part of the HTTP layer that
 * works on strings alone.  A route must match exactly (no trailing slash,
 * no extra or missing segment), and a parameter reaches a handler only
 * as a whole, well-formed C string: malformed escapes and an encoded NUL
 * are refused.  Parameters that come back are freed here, so the
 * sanitized build also checks that a refused match frees its own.
 */
#include <stdio.h>
#include <string.h>

#include "http.h"
#include "unit.h"

static void	test_match_exact(void **);
static void	test_match_params(void **);
static void	test_match_decoded(void **);
static void	test_match_bad_escape(void **);
static void	test_match_shape(void **);
static void	test_match_too_many(void **);
static void	test_decode(void **);

static void	match_ok(const char *, const char *, size_t, ...);
static void	match_no(const char *, const char *);
static int	decode(const char *, char *, size_t);

int
main(void)
{
	const struct CMUnitTest	tests[] = {
		cmocka_unit_test(test_match_exact),
		cmocka_unit_test(test_match_params),
		cmocka_unit_test(test_match_decoded),
		cmocka_unit_test(test_match_bad_escape),
		cmocka_unit_test(test_match_shape),
		cmocka_unit_test(test_match_too_many),
		cmocka_unit_test(test_decode),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

static void
test_match_exact(void **state)
{
	(void)state;
	match_ok("/api/v1/health", "/api/v1/health", 0);
	match_ok("/", "/", 0);
	match_no("/api/v1/health", "/api/v1/healthz");
	match_no("/api/v1/health", "/api/v1/healt");
	match_no("/api/v1/health", "/api/v1/Health");
	match_no("/api/v1/health", "/api/v2/health");
	match_no("/api/v1/health", "");
	match_no("/", "");
	match_no("/", "/x");
	/* Segments are compared whole, not as prefixes. */
	match_no("/api/v1/jobs", "/api/v1/job");
	match_no("/api/v1/job", "/api/v1/jobs");
	/* Percent-escapes in a literal segment are not decoded. */
	match_no("/api/v1/health", "/api/v1/h%65alth");
}

static void
test_match_params(void **state)
{
	(void)state;
	match_ok("/api/v1/jobs/:id", "/api/v1/jobs/42", 1, "42");
	match_ok("/:a", "/x", 1, "x");
	match_ok("/api/v1/services/:coord/runs/:run",
	    "/api/v1/services/cell.svc/runs/7", 2, "cell.svc", "7");
	match_ok("/:a/:b/:c", "/1/2/3", 3, "1", "2", "3");
	/*
	 * Any characters of one segment, dots too: what a parameter may
	 * hold is for the handler to check (coord), not the router.
	 */
	match_ok("/files/:name", "/files/..", 1, "..");
}

static void
test_match_decoded(void **state)
{
	(void)state;
	match_ok("/api/v1/jobs/:id", "/api/v1/jobs/a%20b", 1, "a b");
	match_ok("/api/v1/services/:coord/runs/:run",
	    "/api/v1/services/g%3Aa%3a1.0/runs/%37", 2, "g:a:1.0", "7");
	/* Upper- and lower-case hex, multi-byte UTF-8. */
	match_ok("/x/:p", "/x/%E2%82%AC", 1, "\xe2\x82\xac");
	match_ok("/x/:p", "/x/%e2%82%ac", 1, "\xe2\x82\xac");
	/* An encoded slash stays inside its parameter. */
	match_ok("/x/:p/y", "/x/a%2Fb/y", 1, "a/b");
	/* '+' is a space only in query strings, not in a path. */
	match_ok("/x/:p", "/x/a+b", 1, "a+b");
	match_ok("/x/:p", "/x/%25", 1, "%");
	match_ok("/x/:p", "/x/%2525", 1, "%25");
}

static void
test_match_bad_escape(void **state)
{
	(void)state;
	/* An encoded NUL would cut the string short. */
	match_no("/x/:p", "/x/%00");
	match_no("/x/:p", "/x/ab%00cd");
	match_no("/x/:p", "/x/%zz");
	match_no("/x/:p", "/x/%g0");
	match_no("/x/:p", "/x/%0g");
	match_no("/x/:p", "/x/%");
	match_no("/x/:p", "/x/%4");
	match_no("/x/:p", "/x/ab%4");
	match_no("/x/:p", "/x/%41%");
	/* The escape must not borrow the '/' of the next segment. */
	match_no("/x/:p/y", "/x/%4/y");
	/* A later bad parameter undoes the earlier good ones. */
	match_no("/x/:a/:b", "/x/fine/%00");
	match_no("/x/:a/:b/:c", "/x/one/two/%zz");
}

static void
test_match_shape(void **state)
{
	(void)state;
	/* Trailing slash, either side. */
	match_no("/api/v1/jobs", "/api/v1/jobs/");
	match_no("/api/v1/jobs/", "/api/v1/jobs");
	match_no("/api/v1/jobs/:id", "/api/v1/jobs/42/");
	/* Extra and missing segments. */
	match_no("/api/v1/jobs/:id", "/api/v1/jobs/42/extra");
	match_no("/api/v1/jobs/:id", "/api/v1/jobs");
	match_no("/api/v1/jobs", "/api/v1/jobs/42");
	/* A parameter needs a non-empty segment. */
	match_no("/api/v1/jobs/:id", "/api/v1/jobs/");
	match_no("/x/:p/y", "/x//y");
	match_no("/:a/:b", "/x/");
	match_no("/:a", "/");
	/* Doubled slashes are not folded. */
	match_no("/api/v1/jobs", "/api//v1/jobs");
	match_no("/api/v1/jobs", "//api/v1/jobs");
	/* Paths are absolute. */
	match_no("/api/v1/jobs", "api/v1/jobs");
}

static void
test_match_too_many(void **state)
{
	char	*params[HTTP_MAX_PARAMS], pattern[256], path[256];
	size_t	 i, n;
	int	 plen = 0, slen = 0;

	(void)state;
	/* Exactly HTTP_MAX_PARAMS fill the array... */
	for (i = 0; i < HTTP_MAX_PARAMS; i++) {
		plen += snprintf(pattern + plen, sizeof(pattern) - plen,
		    "/:p%zu", i);
		slen += snprintf(path + slen, sizeof(path) - slen, "/v%zu", i);
	}
	assert_int_equal(http_match(pattern, path, params, &n), 1);
	assert_int_equal(n, HTTP_MAX_PARAMS);
	for (i = 0; i < n; i++) {
		assert_int_equal(params[i][0], 'v');
		free(params[i]);
	}
	/* ...and one more is refused rather than written past its end. */
	snprintf(pattern + plen, sizeof(pattern) - plen, "/:more");
	snprintf(path + slen, sizeof(path) - slen, "/v");
	n = 99;
	assert_int_equal(http_match(pattern, path, params, &n), 0);
	assert_int_equal(n, 0);
}

static void
test_decode(void **state)
{
	char	out[64], small[4];

	(void)state;
	assert_int_equal(decode("a%41b", out, sizeof(out)), 0);
	assert_string_equal(out, "aAb");
	assert_int_equal(decode("", out, sizeof(out)), 0);
	assert_string_equal(out, "");
	assert_int_equal(decode("%7e%7E", out, sizeof(out)), 0);
	assert_string_equal(out, "~~");
	assert_int_equal(decode("%ff", out, sizeof(out)), 0);
	assert_string_equal(out, "\xff");

	/* Only len bytes of the input are read. */
	assert_int_equal(http_decode("abc%41", 2, out, sizeof(out)), 0);
	assert_string_equal(out, "ab");
	/* ...so an escape cut by len is malformed. */
	assert_int_equal(http_decode("%41", 2, out, sizeof(out)), -1);

	/* The output and its NUL must fit. */
	assert_int_equal(decode("abc", small, sizeof(small)), 0);
	assert_string_equal(small, "abc");
	assert_int_equal(decode("abcd", small, sizeof(small)), -1);
	assert_int_equal(decode("%41%42%43", small, sizeof(small)), 0);
	assert_string_equal(small, "ABC");
	assert_int_equal(decode("%41%42%43%44", small, sizeof(small)), -1);

	assert_int_equal(decode("%00", out, sizeof(out)), -1);
	assert_int_equal(decode("%zz", out, sizeof(out)), -1);
	assert_int_equal(decode("%", out, sizeof(out)), -1);
	assert_int_equal(decode("%4", out, sizeof(out)), -1);
	assert_int_equal(decode("%-1", out, sizeof(out)), -1);
	assert_int_equal(decode("% 1", out, sizeof(out)), -1);
	assert_int_equal(decode("%\xc1\xc1", out, sizeof(out)), -1);
}

/* pattern matches path with exactly n parameters, the given strings. */
static void
match_ok(const char *pattern, const char *path, size_t n, ...)
{
	va_list		 ap;
	char		*params[HTTP_MAX_PARAMS];
	const char	*want;
	size_t		 got, i;

	got = 99;
	if (!http_match(pattern, path, params, &got))
		fail_msg("'%s' does not match '%s'", path, pattern);
	assert_int_equal(got, n);
	va_start(ap, n);
	for (i = 0; i < n; i++) {
		want = va_arg(ap, const char *);
		if (strcmp(params[i], want) != 0)
			fail_msg("'%s' on '%s': parameter %zu is '%s', not "
			    "'%s'", path, pattern, i, params[i], want);
	}
	va_end(ap);
	for (i = 0; i < got; i++)
		free(params[i]);
}

/* No match, and nothing for the caller to free. */
static void
match_no(const char *pattern, const char *path)
{
	char	*params[HTTP_MAX_PARAMS];
	size_t	 n = 99;

	if (http_match(pattern, path, params, &n))
		fail_msg("'%s' matches '%s'", path, pattern);
	assert_int_equal(n, 0);
}

static int
decode(const char *in, char *out, size_t outlen)
{
	return http_decode(in, strlen(in), out, outlen);
}
