/*
 * test_auth: who may talk to nodee.  The token file (created once, kept
 * private, refused when damaged), the cookie derived from it, and the
 * Authorization, Host and Origin checks every request passes through;
 * these are what stand between a foreign web page and the API, so the
 * tests try the near misses an attacker would.
 */
#include <sys/stat.h>

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "auth.h"
#include "unit.h"

#define ERRLEN	1024
#define TOKEN_A	"0123456789abcdef0123456789abcdef" \
		"0123456789abcdef0123456789abcdef"
#define TOKEN_B	"fedcba9876543210fedcba9876543210" \
		"fedcba9876543210fedcba9876543210"
#define ZEROS	"00000000000000000000000000000000" \
		"00000000000000000000000000000000"

static void	test_token_create(void **);
static void	test_token_tighten(void **);
static void	test_token_damaged(void **);
static void	test_token_unusable_path(void **);
static void	test_token_valid(void **);
static void	test_session_value(void **);
static void	test_equal(void **);
static void	test_bearer(void **);
static void	test_host_name(void **);
static void	test_host_allowed(void **);
static void	test_origin(void **);

static int	is_lower_hex(const char *, size_t);

int
main(void)
{
	const struct CMUnitTest	tests[] = {
		cmocka_unit_test_setup_teardown(test_token_create,
		    unit_dir_setup, unit_dir_teardown),
		cmocka_unit_test_setup_teardown(test_token_tighten,
		    unit_dir_setup, unit_dir_teardown),
		cmocka_unit_test_setup_teardown(test_token_damaged,
		    unit_dir_setup, unit_dir_teardown),
		cmocka_unit_test_setup_teardown(test_token_unusable_path,
		    unit_dir_setup, unit_dir_teardown),
		cmocka_unit_test(test_token_valid),
		cmocka_unit_test(test_session_value),
		cmocka_unit_test(test_equal),
		cmocka_unit_test(test_bearer),
		cmocka_unit_test(test_host_name),
		cmocka_unit_test(test_host_allowed),
		cmocka_unit_test(test_origin),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

static void
test_token_create(void **state)
{
	struct stat	st;
	char		path[PATH_MAX], tmp[PATH_MAX], other[PATH_MAX];
	char		token[AUTH_TOKEN_LEN + 1], again[AUTH_TOKEN_LEN + 1];
	char		second[AUTH_TOKEN_LEN + 1], text[256], err[ERRLEN];

	unit_path(path, *state, "token");
	if (auth_token_load(path, token, sizeof(token), err, sizeof(err)) != 0)
		fail_msg("create: %s", err);
	assert_int_equal(strlen(token), AUTH_TOKEN_LEN);
	assert_true(is_lower_hex(token, AUTH_TOKEN_LEN));

	/* Private whatever the umask, one line, no temporary left over. */
	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0600);
	unit_read(path, text, sizeof(text));
	assert_int_equal(strlen(text), AUTH_TOKEN_LEN + 1);
	assert_memory_equal(text, token, AUTH_TOKEN_LEN);
	assert_int_equal(text[AUTH_TOKEN_LEN], '\n');
	unit_path(tmp, *state, "token.new");
	assert_int_equal(access(tmp, F_OK), -1);

	/* The next start reads the same token instead of making one. */
	if (auth_token_load(path, again, sizeof(again), err, sizeof(err)) != 0)
		fail_msg("load: %s", err);
	assert_string_equal(again, token);

	/* Another prefix gets its own random token. */
	unit_path(other, *state, "token2");
	if (auth_token_load(other, second, sizeof(second), err,
	    sizeof(err)) != 0)
		fail_msg("create: %s", err);
	assert_string_not_equal(second, token);
}

static void
test_token_tighten(void **state)
{
	struct stat	st;
	char		path[PATH_MAX], token[AUTH_TOKEN_LEN + 1], err[ERRLEN];

	unit_path(path, *state, "token");
	unit_write(path, TOKEN_A "\n", 0644);
	if (auth_token_load(path, token, sizeof(token), err, sizeof(err)) != 0)
		fail_msg("load: %s", err);
	assert_string_equal(token, TOKEN_A);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);

	/* Group-readable is as bad as world-readable. */
	unit_write(path, TOKEN_B, 0640);
	if (auth_token_load(path, token, sizeof(token), err, sizeof(err)) != 0)
		fail_msg("load: %s", err);
	assert_string_equal(token, TOKEN_B);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);

	/* An editor may have saved it with CRLF. */
	unit_write(path, TOKEN_A "\r\n", 0600);
	if (auth_token_load(path, token, sizeof(token), err, sizeof(err)) != 0)
		fail_msg("load: %s", err);
	assert_string_equal(token, TOKEN_A);
}

static void
test_token_damaged(void **state)
{
	static const char	*bad[] = {
		"",
		"\n",
		"not a token\n",
		TOKEN_A "0\n",				/* 65 characters */
		"0123456789abcdef0123456789abcdef"
		    "0123456789abcdef0123456789abcde\n",	/* 63 */
		"0123456789abcdef0123456789abcdef"
		    "0123456789abcdef0123456789abcdeg\n",
		" " TOKEN_A "\n",
		TOKEN_A " \n",
	};
	char			 path[PATH_MAX], text[256], err[ERRLEN];
	char			 token[AUTH_TOKEN_LEN + 1];
	size_t			 i;

	unit_path(path, *state, "token");
	for (i = 0; i < nitems(bad); i++) {
		unit_write(path, bad[i], 0600);
		err[0] = '\0';
		if (auth_token_load(path, token, sizeof(token), err,
		    sizeof(err)) == 0)
			fail_msg("damaged token '%s' accepted", bad[i]);
		assert_contains(err, path);
		assert_contains(err, "damaged");
		/* Refused, never silently replaced: the operator decides. */
		unit_read(path, text, sizeof(text));
		assert_string_equal(text, bad[i]);
	}
}

static void
test_token_unusable_path(void **state)
{
	char	path[PATH_MAX], target[PATH_MAX], err[ERRLEN];
	char	token[AUTH_TOKEN_LEN + 1];

	/* Its directory does not exist: no token, and the reason. */
	unit_path(path, *state, "missing/token");
	err[0] = '\0';
	assert_int_equal(auth_token_load(path, token, sizeof(token), err,
	    sizeof(err)), -1);
	assert_contains(err, "missing/token");

	/*
	 * A symbolic link is not followed, so a token cannot be read from or
	 * planted in a file someone else chose.
	 */
	unit_path(target, *state, "elsewhere");
	unit_write(target, TOKEN_A "\n", 0600);
	unit_path(path, *state, "token");
	assert_int_equal(symlink(target, path), 0);
	err[0] = '\0';
	assert_int_equal(auth_token_load(path, token, sizeof(token), err,
	    sizeof(err)), -1);
	assert_contains(err, path);
}

static void
test_token_valid(void **state)
{
	(void)state;
	assert_true(auth_token_valid(TOKEN_A));
	assert_true(auth_token_valid(ZEROS));
	assert_true(auth_token_valid("0123456789ABCDEF0123456789ABCDEF"
	    "0123456789ABCDEF0123456789ABCDEF"));
	assert_false(auth_token_valid(""));
	assert_false(auth_token_valid(TOKEN_A "0"));
	assert_false(auth_token_valid(TOKEN_A + 1));
	assert_false(auth_token_valid("0123456789abcdef0123456789abcdef"
	    "0123456789abcdef0123456789abcdex"));
}

static void
test_session_value(void **state)
{
	char	a[AUTH_TOKEN_LEN + 1], a2[AUTH_TOKEN_LEN + 1];
	char	b[AUTH_TOKEN_LEN + 1], z[AUTH_TOKEN_LEN + 1];

	(void)state;
	auth_session_value(TOKEN_A, a, sizeof(a));
	auth_session_value(TOKEN_A, a2, sizeof(a2));
	auth_session_value(TOKEN_B, b, sizeof(b));

	assert_int_equal(strlen(a), 64);
	assert_true(is_lower_hex(a, 64));
	assert_string_equal(a, a2);		/* survives a restart */
	assert_string_not_equal(a, TOKEN_A);	/* the cookie is not the token */
	assert_string_not_equal(a, b);		/* a new token logs out */
	assert_true(is_lower_hex(b, 64));

	/*
	 * SHA-256("nodee-session:" + token), computed with sha256sum: a
	 * change here would log every browser out on upgrade.
	 */
	auth_session_value(ZEROS, z, sizeof(z));
	assert_string_equal(z, "5e44048871f52c57605f2edd754a97fe"
	    "7bc9ce11ac77915a5dceb25a5131e3f8");
}

static void
test_equal(void **state)
{
	(void)state;
	assert_true(auth_equal(TOKEN_A, TOKEN_A));
	assert_true(auth_equal("", ""));
	assert_false(auth_equal(TOKEN_A, TOKEN_B));
	/* A prefix of the secret is not the secret, either way round. */
	assert_false(auth_equal("abc", "abcd"));
	assert_false(auth_equal("abcd", "abc"));
	assert_false(auth_equal("", "a"));
	assert_false(auth_equal("a", ""));
	/* One bit off in the last byte. */
	assert_false(auth_equal("abcd", "abce"));
	assert_false(auth_equal("Abcd", "abcd"));
}

static void
test_bearer(void **state)
{
	(void)state;
	assert_true(auth_bearer_ok("Bearer " TOKEN_A, TOKEN_A));
	assert_true(auth_bearer_ok("bearer " TOKEN_A, TOKEN_A));
	assert_true(auth_bearer_ok("BEARER " TOKEN_A, TOKEN_A));
	assert_true(auth_bearer_ok("Bearer   " TOKEN_A, TOKEN_A));

	assert_false(auth_bearer_ok("Basic " TOKEN_A, TOKEN_A));
	assert_false(auth_bearer_ok(NULL, TOKEN_A));
	assert_false(auth_bearer_ok("", TOKEN_A));
	assert_false(auth_bearer_ok("Bearer", TOKEN_A));
	assert_false(auth_bearer_ok("Bearer ", TOKEN_A));
	assert_false(auth_bearer_ok("Bearer" TOKEN_A, TOKEN_A));
	assert_false(auth_bearer_ok(TOKEN_A, TOKEN_A));
	assert_false(auth_bearer_ok("Bearer " TOKEN_B, TOKEN_A));
	assert_false(auth_bearer_ok("Bearer " TOKEN_A "0", TOKEN_A));
	assert_false(auth_bearer_ok("Bearer " TOKEN_A " ", TOKEN_A));
	assert_false(auth_bearer_ok("Bearer 0123456789abcdef", TOKEN_A));
}

static void
test_host_name(void **state)
{
	char	out[256], tiny[4];

	(void)state;
	assert_int_equal(auth_host_name("[::1]:8080", out, sizeof(out)), 0);
	assert_string_equal(out, "::1");
	assert_int_equal(auth_host_name("[::1]", out, sizeof(out)), 0);
	assert_string_equal(out, "::1");
	assert_int_equal(auth_host_name("Example.COM:80", out, sizeof(out)),
	    0);
	assert_string_equal(out, "example.com");
	assert_int_equal(auth_host_name("example.com.", out, sizeof(out)), 0);
	assert_string_equal(out, "example.com");
	assert_int_equal(auth_host_name("LocalHost.:8080", out, sizeof(out)),
	    0);
	assert_string_equal(out, "localhost");
	assert_int_equal(auth_host_name("127.0.0.1", out, sizeof(out)), 0);
	assert_string_equal(out, "127.0.0.1");

	assert_int_equal(auth_host_name("", out, sizeof(out)), -1);
	assert_int_equal(auth_host_name(NULL, out, sizeof(out)), -1);
	assert_int_equal(auth_host_name("a b", out, sizeof(out)), -1);
	assert_int_equal(auth_host_name("a\tb", out, sizeof(out)), -1);
	assert_int_equal(auth_host_name(":8080", out, sizeof(out)), -1);
	assert_int_equal(auth_host_name("[]:8080", out, sizeof(out)), -1);
	assert_int_equal(auth_host_name("[::1", out, sizeof(out)), -1);
	assert_int_equal(auth_host_name("[::1]x", out, sizeof(out)), -1);
	assert_int_equal(auth_host_name("user@evil.com", out, sizeof(out)),
	    -1);
	assert_int_equal(auth_host_name("evil.com/x", out, sizeof(out)), -1);
	/* Too long for the buffer is refused, not cut to a shorter name. */
	assert_int_equal(auth_host_name("abcd", tiny, sizeof(tiny)), -1);
	assert_int_equal(auth_host_name("abc", tiny, sizeof(tiny)), 0);
	assert_string_equal(tiny, "abc");
}

static void
test_host_allowed(void **state)
{
	static const struct {
		const char	*host, *listen, *allowed;
		int		 want;
	} cases[] = {
		/* Loopback names need no configuration. */
		{ "localhost", "127.0.0.1", "", 1 },
		{ "localhost:8080", "127.0.0.1", "", 1 },
		{ "LOCALHOST", "127.0.0.1", "", 1 },
		{ "127.0.0.1:8080", "127.0.0.1", "", 1 },
		{ "127.1.2.3", "127.0.0.1", "", 1 },
		{ "[::1]:9", "127.0.0.1", "", 1 },
		{ "localhost", NULL, NULL, 1 },

		/* DNS rebinding: a foreign name that resolves to us. */
		{ "evil.com", "127.0.0.1", "", 0 },
		{ "evil.com:8080", "127.0.0.1", NULL, 0 },
		{ "127.0.0.1.evil.com", "127.0.0.1", "", 0 },
		{ "localhost.evil.com", "127.0.0.1", "", 0 },
		{ "128.0.0.1", "127.0.0.1", "", 0 },
		{ "[::2]", "127.0.0.1", "", 0 },
		{ NULL, "127.0.0.1", "", 0 },
		{ "", "127.0.0.1", "", 0 },

		/* Names the operator allowed, whole names only. */
		{ "evil.com", "127.0.0.1", "a.example, evil.com", 1 },
		{ "A.Example:443", "127.0.0.1", "a.example, evil.com", 1 },
		{ "b.example", "127.0.0.1", "a.example,b.example", 1 },
		{ "vil.com", "127.0.0.1", "a.example, evil.com", 0 },
		{ "evil.co", "127.0.0.1", "a.example, evil.com", 0 },
		{ "x.evil.com", "127.0.0.1", "a.example, evil.com", 0 },
		{ "example", "127.0.0.1", "a.example, evil.com", 0 },

		/* The address nodee listens on is its own name... */
		{ "10.1.2.3:8080", "10.1.2.3", "", 1 },
		{ "10.1.2.4:8080", "10.1.2.3", "", 0 },
		{ "[fe80::1]:8080", "fe80::1", "", 1 },
		/* ...but a wildcard listener names no host. */
		{ "0.0.0.0", "0.0.0.0", "", 0 },
		{ "0.0.0.0:8080", "0.0.0.0", "", 0 },
		{ "[::]:8080", "::", "", 0 },
	};
	size_t			 i;

	(void)state;
	for (i = 0; i < nitems(cases); i++)
		if (auth_host_allowed(cases[i].host, cases[i].listen,
		    cases[i].allowed) != cases[i].want)
			fail_msg("Host '%s' (listen %s, allowed_hosts '%s') "
			    "should be %s", cases[i].host ? cases[i].host :
			    "(none)", cases[i].listen ? cases[i].listen :
			    "(none)", cases[i].allowed ? cases[i].allowed :
			    "(none)", cases[i].want ? "allowed" : "refused");
}

static void
test_origin(void **state)
{
	(void)state;
	/* curl and scripts send no Origin. */
	assert_true(auth_origin_ok(NULL, "127.0.0.1:8080", 0));
	assert_true(auth_origin_ok("http://127.0.0.1:8080", "127.0.0.1:8080",
	    0));
	assert_true(auth_origin_ok("https://node.example:8443",
	    "node.example:8443", 1));
	assert_true(auth_origin_ok("http://LOCALHOST:8080", "localhost:8080",
	    0));

	assert_false(auth_origin_ok("http://127.0.0.1:8081", "127.0.0.1:8080",
	    0));
	assert_false(auth_origin_ok("http://127.0.0.1", "127.0.0.1:8080", 0));
	assert_false(auth_origin_ok("https://127.0.0.1:8080",
	    "127.0.0.1:8080", 0));
	assert_false(auth_origin_ok("http://node.example:8443",
	    "node.example:8443", 1));
	assert_false(auth_origin_ok("http://evil.com", "127.0.0.1:8080", 0));
	assert_false(auth_origin_ok("http://127.0.0.1:8080.evil.com",
	    "127.0.0.1:8080", 0));
	assert_false(auth_origin_ok("null", "127.0.0.1:8080", 0));
	assert_false(auth_origin_ok("", "127.0.0.1:8080", 0));
	assert_false(auth_origin_ok("http://127.0.0.1:8080", NULL, 0));
}

static int
is_lower_hex(const char *s, size_t n)
{
	size_t	i;

	for (i = 0; i < n; i++)
		if (!isxdigit((unsigned char)s[i]) ||
		    isupper((unsigned char)s[i]))
			return 0;
	return 1;
}
