/*
 * test_config: the settings a daemon starts with.  Every key's parser
 * with good and bad values, the three sources and their order (file <
 * environment < flags), the error texts that tell an operator where a bad
 * value came from, and the cross-key checks that keep a plain-HTTP
 * listener off the network; and the documentation config_doc() prints
 * from the table of keys, in each of its three formats.
 */
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "unit.h"

/* Larger than any key's longest message, so nothing is cut off. */
#define ERRLEN	1024

/* A value for a numeric key and what it must set the field to. */
struct value {
	const char		*text;
	unsigned long long	 want;
};

static void	test_defaults(void **);
static void	test_set_bool(void **);
static void	test_set_size(void **);
static void	test_set_uint(void **);
static void	test_set_level(void **);
static void	test_set_listen(void **);
static void	test_set_listen_bad(void **);
static void	test_set_string(void **);
static void	test_set_url(void **);
static void	test_set_cell(void **);
static void	test_set_instance(void **);
static void	test_set_unknown_key(void **);
static void	test_file(void **);
static void	test_file_precedence(void **);
static void	test_file_unknown_key(void **);
static void	test_file_bad_value(void **);
static void	test_file_no_equals(void **);
static void	test_file_missing(void **);
static void	test_env(void **);
static void	test_env_bad_value(void **);
static void	test_env_name(void **);
static void	test_check(void **);
static void	test_loopback(void **);
static void	test_doc_conf(void **);
static void	test_doc_man(void **);
static void	test_doc_markdown(void **);

static void	set_ok(struct config *, const char *, const char *);
static void	set_bad(struct config *, const char *, const char *);
static void	set_bad_list(struct config *, const char *,
		    const char *const *, size_t);
static void	check_values(const char *, const struct value *, size_t,
		    const char *const *, size_t);
static unsigned long long	field_of(const struct config *, const char *);
static void	check_label(struct config *, const char *, const char *,
		    const char *const *, size_t, const char *const *, size_t);
static void	write_conf(const char *, const char *, char *);
static char	*doc_text(enum config_doc);
static size_t	doc_count(const char *, const char *);

int
main(void)
{
	const struct CMUnitTest	tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_set_bool),
		cmocka_unit_test(test_set_size),
		cmocka_unit_test(test_set_uint),
		cmocka_unit_test(test_set_level),
		cmocka_unit_test(test_set_listen),
		cmocka_unit_test(test_set_listen_bad),
		cmocka_unit_test(test_set_string),
		cmocka_unit_test(test_set_url),
		cmocka_unit_test(test_set_cell),
		cmocka_unit_test(test_set_instance),
		cmocka_unit_test(test_set_unknown_key),
		cmocka_unit_test_setup_teardown(test_file, unit_dir_setup,
		    unit_dir_teardown),
		cmocka_unit_test_setup_teardown(test_file_precedence,
		    unit_dir_setup, unit_dir_teardown),
		cmocka_unit_test_setup_teardown(test_file_unknown_key,
		    unit_dir_setup, unit_dir_teardown),
		cmocka_unit_test_setup_teardown(test_file_bad_value,
		    unit_dir_setup, unit_dir_teardown),
		cmocka_unit_test_setup_teardown(test_file_no_equals,
		    unit_dir_setup, unit_dir_teardown),
		cmocka_unit_test_setup_teardown(test_file_missing,
		    unit_dir_setup, unit_dir_teardown),
		cmocka_unit_test(test_env),
		cmocka_unit_test(test_env_bad_value),
		cmocka_unit_test(test_env_name),
		cmocka_unit_test(test_check),
		cmocka_unit_test(test_loopback),
		cmocka_unit_test_setup_teardown(test_doc_conf, unit_dir_setup,
		    unit_dir_teardown),
		cmocka_unit_test(test_doc_man),
		cmocka_unit_test(test_doc_markdown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

static void
test_defaults(void **state)
{
	struct config	cf;
	char		err[ERRLEN];
	size_t		i;

	(void)state;
	/* Garbage first: config_defaults must set every field itself. */
	memset(&cf, 0xa5, sizeof(cf));
	config_defaults(&cf);
	assert_string_equal(cf.prefix, "/var/lib/nodee");
	assert_string_equal(cf.listen, "127.0.0.1:8080");
	assert_string_equal(cf.listen_host, "127.0.0.1");
	assert_int_equal(cf.listen_port, 8080);
	assert_int_equal(cf.listen_ipv6, 0);
	assert_int_equal(cf.log_level, LOG_LVL_INFO);
	assert_string_equal(cf.tls_cert, "");
	assert_string_equal(cf.tls_key, "");
	assert_int_equal(cf.insecure_listen, 0);
	assert_string_equal(cf.allowed_hosts, "");
	assert_int_equal(cf.metrics_public, 0);
	assert_int_equal(cf.max_body, 1024 * 1024);
	assert_int_equal(cf.http_threads, 4);
	assert_string_equal(cf.cell, "cell");
	/* Dynamic uids clear of systemd's DynamicUser 61184-65519. */
	assert_int_equal(cf.uid_min, 70000);
	assert_int_equal(cf.uid_max, 79999);
	assert_true(cf.uid_min > 65519 || cf.uid_max < 61184);

	/* The host name or "localhost": never empty, always a valid name. */
	assert_true(strlen(cf.instance) > 0);
	for (i = 0; cf.instance[i] != '\0'; i++)
		assert_non_null(strchr("abcdefghijklmnopqrstuvwxyz"
		    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-",
		    cf.instance[i]));

	/* The defaults alone must be a configuration the daemon accepts. */
	assert_int_equal(config_check(&cf, err, sizeof(err)), 0);
	assert_true(config_listen_is_loopback(&cf));
}

static void
test_set_bool(void **state)
{
	/* Ends with "0": a refused value must not switch anything on. */
	static const struct value	good[] = {
		{ "yes", 1 }, { "no", 0 }, { "true", 1 }, { "false", 0 },
		{ "1", 1 }, { "0", 0 },
	};
	static const char		*bad[] = {
		"maybe", "", "yess", "2", "on",
	};
	struct config			 cf;
	char				 err[ERRLEN];

	(void)state;
	check_values("insecure_listen", good, nitems(good), bad, nitems(bad));
	check_values("metrics_public", good, nitems(good), bad, nitems(bad));
	config_defaults(&cf);
	assert_int_equal(config_set(&cf, "insecure_listen", "garbage", err,
	    sizeof(err)), -1);
	assert_contains(err, "insecure_listen");
	assert_contains(err, "'garbage'");
}

static void
test_set_size(void **state)
{
	static const struct value	good[] = {
		{ "64", 64 },			/* the minimum */
		{ "1K", 1024 },
		{ "2k", 2048 },
		{ "3KiB", 3 * 1024 },
		{ "5M", 5 * 1024 * 1024 },
		{ "7mib", 7 * 1024 * 1024 },
		{ "1G", 1024 * 1024 * 1024 },	/* the maximum */
		{ "1073741824", 1024 * 1024 * 1024 },
		{ "1M", 1024 * 1024 },
	};
	static const char		*bad[] = {
		"63", "0",			/* below the minimum */
		"2G", "1073741825", "1048577K",	/* above the maximum */
		"", "K", "-1", " 1M", "1.5M", "10KB", "10T",
		"99999999999999999999",
		/*
		 * (2^34 + 1) G is 2^64 + 2^30 bytes: without the overflow
		 * check it would wrap to exactly 1G and be accepted.
		 */
		"17179869185G",
	};
	struct config			 cf;
	char				 err[ERRLEN];

	(void)state;
	check_values("max_body", good, nitems(good), bad, nitems(bad));
	config_defaults(&cf);
	assert_int_equal(config_set(&cf, "max_body", "2G", err, sizeof(err)),
	    -1);
	assert_contains(err, "max_body");
	assert_contains(err, "'2G'");
	assert_contains(err, "1073741824");
}

static void
test_set_uint(void **state)
{
	static const struct value	good[] = {
		{ "1", 1 }, { "256", 256 }, { "8", 8 },
	};
	static const char		*bad[] = {
		"0", "257", "-1", "", "4x", "four", "1K",
		"4294967300",	/* 4 if cut to 32 bits before the check */
		"99999999999999999999999",
	};
	struct config			 cf;
	char				 err[ERRLEN];

	(void)state;
	check_values("http_threads", good, nitems(good), bad, nitems(bad));
	config_defaults(&cf);
	assert_int_equal(config_set(&cf, "http_threads", "0", err,
	    sizeof(err)), -1);
	assert_contains(err, "http_threads");
	assert_contains(err, "between 1 and 256");
}

static void
test_set_level(void **state)
{
	static const struct value	good[] = {
		{ "debug", LOG_LVL_DEBUG }, { "error", LOG_LVL_ERROR },
		{ "WARN", LOG_LVL_WARN }, { "info", LOG_LVL_INFO },
	};
	static const char		*bad[] = { "verbose", "", "warning" };
	struct config			 cf;
	char				 err[ERRLEN];

	(void)state;
	check_values("log_level", good, nitems(good), bad, nitems(bad));
	config_defaults(&cf);
	assert_int_equal(config_set(&cf, "log_level", "loud", err,
	    sizeof(err)), -1);
	assert_contains(err, "log_level");
	assert_contains(err, "'loud'");
}

static void
test_set_listen(void **state)
{
	struct config	cf;

	(void)state;
	config_defaults(&cf);

	set_ok(&cf, "listen", "0.0.0.0:80");
	assert_string_equal(cf.listen, "0.0.0.0:80");
	assert_string_equal(cf.listen_host, "0.0.0.0");
	assert_int_equal(cf.listen_port, 80);
	assert_int_equal(cf.listen_ipv6, 0);

	set_ok(&cf, "listen", "[::1]:8080");
	assert_string_equal(cf.listen, "[::1]:8080");
	assert_string_equal(cf.listen_host, "::1");
	assert_int_equal(cf.listen_port, 8080);
	assert_int_equal(cf.listen_ipv6, 1);

	/* Going back to IPv4 must clear the IPv6 flag. */
	set_ok(&cf, "listen", "localhost:9000");
	assert_string_equal(cf.listen_host, "localhost");
	assert_int_equal(cf.listen_port, 9000);
	assert_int_equal(cf.listen_ipv6, 0);

	set_ok(&cf, "listen", "[::]:1");
	assert_string_equal(cf.listen_host, "::");
	assert_int_equal(cf.listen_port, 1);
	assert_int_equal(cf.listen_ipv6, 1);

	set_ok(&cf, "listen", "192.168.1.20:65535");
	assert_string_equal(cf.listen_host, "192.168.1.20");
	assert_int_equal(cf.listen_port, 65535);
	assert_int_equal(cf.listen_ipv6, 0);
}

static void
test_set_listen_bad(void **state)
{
	static const char	*bad[] = {
		"127.0.0.1",		/* no port */
		"127.0.0.1:",
		"127.0.0.1:0",
		"127.0.0.1:65536",
		"127.0.0.1:70000",
		"127.0.0.1:-1",
		"127.0.0.1:80x",
		"127.0.0.1:http",
		":8080",		/* no host */
		"example.com:80",	/* names need resolving: not here */
		"256.0.0.1:80",
		"127.1:80",
		"::1:8080",		/* IPv6 needs brackets */
		"[::1]",
		"[::1]:",
		"[::1]8080",
		"[]:80",
		"[127.0.0.1]:80",
		"[localhost]:80",
		"[::1:80",
		"",
	};
	struct config		 cf;
	char			 err[ERRLEN];

	(void)state;
	config_defaults(&cf);
	set_bad_list(&cf, "listen", bad, nitems(bad));

	/* A refused value leaves the previous one whole. */
	assert_string_equal(cf.listen, "127.0.0.1:8080");
	assert_string_equal(cf.listen_host, "127.0.0.1");
	assert_int_equal(cf.listen_port, 8080);
	assert_int_equal(cf.listen_ipv6, 0);

	assert_int_equal(config_set(&cf, "listen", "127.0.0.1:70000", err,
	    sizeof(err)), -1);
	assert_contains(err, "'127.0.0.1:70000'");
	assert_contains(err, "1-65535");
}

static void
test_set_string(void **state)
{
	struct config	cf;
	char		err[ERRLEN], *big;

	(void)state;
	config_defaults(&cf);
	set_ok(&cf, "prefix", "/srv/nodee");
	assert_string_equal(cf.prefix, "/srv/nodee");
	set_ok(&cf, "tls_cert", "/etc/nodee/cert.pem");
	assert_string_equal(cf.tls_cert, "/etc/nodee/cert.pem");
	set_ok(&cf, "allowed_hosts", "a.example, b.example");
	assert_string_equal(cf.allowed_hosts, "a.example, b.example");

	/* One byte too long for the field must be refused, not cut. */
	big = malloc(sizeof(cf.prefix) + 1);
	assert_non_null(big);
	memset(big, 'p', sizeof(cf.prefix));
	big[sizeof(cf.prefix)] = '\0';
	assert_int_equal(config_set(&cf, "prefix", big, err, sizeof(err)), -1);
	assert_contains(err, "prefix");
	assert_contains(err, "longer");
	assert_string_equal(cf.prefix, "/srv/nodee");
	big[sizeof(cf.prefix) - 1] = '\0';
	set_ok(&cf, "prefix", big);
	assert_int_equal(strlen(cf.prefix), sizeof(cf.prefix) - 1);
	free(big);
}

/*
 * A depot or S3 endpoint is refused at start unless fetch.c would take
 * it: tests/fuzz/fuzz_config.c found ones that every transfer refused.
 */
static void
test_set_url(void **state)
{
	static const char	*good[] = { "http://127.0.0.1:9/depot",
	    "https://depot.example/a/", "http://[::1]:8080" };
	static const char	*bad[] = { "https://'", "http://:80/x",
	    "http://[::1", "ftp://depot.example/", "http://a b/",
	    "depot.example" };
	/* Keys go apart from an S3 endpoint, never in it. */
	static const char	*endpoint_bad[] = { "http://u:p@h:9000/",
	    "http://h/?x", "http://wo#rkers1" };
	struct config		 cf;
	size_t			 i;

	(void)state;
	config_defaults(&cf);
	for (i = 0; i < nitems(good); i++) {
		set_ok(&cf, "depot", good[i]);
		set_ok(&cf, "depot.com.example", good[i]);
		set_ok(&cf, "s3_endpoint", good[i]);
	}
	set_ok(&cf, "depot", "https://u:p@depot.example/a/");
	set_ok(&cf, "depot", good[nitems(good) - 1]);
	set_bad_list(&cf, "depot", bad, nitems(bad));
	set_bad_list(&cf, "depot.com.example", bad, nitems(bad));
	set_bad_list(&cf, "s3_endpoint", bad, nitems(bad));
	set_bad_list(&cf, "s3_endpoint", endpoint_bad, nitems(endpoint_bad));
	assert_string_equal(cf.depot, "http://[::1]:8080");
	assert_string_equal(cf.s3_endpoint, "http://[::1]:8080");
}

static void
test_set_cell(void **state)
{
	static const char	*good[] = { "eu-west-1", "a", "0-9" };
	/* A cell is a coordinate label: lower case, digits and '-' only. */
	static const char	*bad[] = {
		"", "Prod", "eu_west", "eu.west", ".x", "a b", "a/b",
		"caf\xc3\xa9",
	};
	struct config		 cf;
	char			 err[ERRLEN];

	(void)state;
	config_defaults(&cf);
	check_label(&cf, "cell", cf.cell, good, nitems(good), bad,
	    nitems(bad));
	assert_int_equal(config_set(&cf, "cell", "Prod", err, sizeof(err)),
	    -1);
	assert_contains(err, "cell");
	assert_contains(err, "'Prod'");
}

static void
test_set_instance(void **state)
{
	/* Host names as EC2 and people write them. */
	static const char	*good[] = {
		"ip-10-0-0-1.eu-west-1.compute.internal", "Build_Host-2", "a",
	};
	static const char	*bad[] = {
		"", ".hidden", "a b", "a/b", "../x", "a:b", "caf\xc3\xa9",
	};
	struct config		 cf;
	char			 err[ERRLEN];

	(void)state;
	config_defaults(&cf);
	check_label(&cf, "instance", cf.instance, good, nitems(good), bad,
	    nitems(bad));
	assert_int_equal(config_set(&cf, "instance", ".x", err, sizeof(err)),
	    -1);
	assert_contains(err, "instance");
	assert_contains(err, "'.x'");
}

static void
test_set_unknown_key(void **state)
{
	struct config	cf, before;
	char		err[ERRLEN];

	(void)state;
	config_defaults(&cf);
	memcpy(&before, &cf, sizeof(cf));
	assert_int_equal(config_set(&cf, "lisen", "127.0.0.1:1", err,
	    sizeof(err)), -1);
	assert_contains(err, "unknown key 'lisen'");
	/* Keys are exact: no case folding, no prefix match. */
	assert_int_equal(config_set(&cf, "LISTEN", "127.0.0.1:1", err,
	    sizeof(err)), -1);
	assert_contains(err, "'LISTEN'");
	assert_int_equal(config_set(&cf, "list", "127.0.0.1:1", err,
	    sizeof(err)), -1);
	assert_int_equal(config_set(&cf, "", "x", err, sizeof(err)), -1);
	assert_memory_equal(&cf, &before, sizeof(cf));
}

static void
test_file(void **state)
{
	struct config	cf;
	char		path[PATH_MAX], err[ERRLEN];

	config_defaults(&cf);
	write_conf(*state, "# nodee test configuration\n"
	    "\n"
	    "   \n"
	    "   listen   =   0.0.0.0:9000   \n"
	    "\tlog_level=debug\n"
	    "# max_body = 5M\n"
	    "    # indented comment = with an equals sign\n"
	    "max_body = 2M\r\n"
	    "insecure_listen = yes\n"
	    "allowed_hosts = a.example, b.example\n"
	    "cell = eu-1\n"
	    "cell = eu-2\n"
	    "http_threads = 16", path);

	assert_int_equal(config_load_file(&cf, path, err, sizeof(err)), 0);
	assert_string_equal(cf.listen, "0.0.0.0:9000");
	assert_string_equal(cf.listen_host, "0.0.0.0");
	assert_int_equal(cf.listen_port, 9000);
	assert_int_equal(cf.log_level, LOG_LVL_DEBUG);
	assert_int_equal(cf.max_body, 2 * 1024 * 1024);
	assert_int_equal(cf.insecure_listen, 1);
	/* Inner spaces are part of the value; only the ends are trimmed. */
	assert_string_equal(cf.allowed_hosts, "a.example, b.example");
	/* The later line wins, as a later source does. */
	assert_string_equal(cf.cell, "eu-2");
	/* The last line needs no newline. */
	assert_int_equal(cf.http_threads, 16);
	/* Keys the file does not mention keep their defaults. */
	assert_string_equal(cf.prefix, "/var/lib/nodee");

	/* A file with only comments changes nothing. */
	config_defaults(&cf);
	write_conf(*state, "# nothing\n\n#listen = 0.0.0.0:1\n", path);
	assert_int_equal(config_load_file(&cf, path, err, sizeof(err)), 0);
	assert_string_equal(cf.listen, "127.0.0.1:8080");
}

/* The order main.c applies them in: file, environment, flags. */
static void
test_file_precedence(void **state)
{
	char *const	envp[] = {
		"NODEE_LISTEN=127.0.0.1:9001",
		"NODEE_PREFIX=/from/env",
		NULL,
	};
	struct config	cf;
	char		path[PATH_MAX], err[ERRLEN];

	config_defaults(&cf);
	write_conf(*state, "listen = 0.0.0.0:9000\n"
	    "prefix = /from/file\n"
	    "log_level = debug\n"
	    "http_threads = 2\n", path);
	assert_int_equal(config_load_file(&cf, path, err, sizeof(err)), 0);
	assert_int_equal(config_load_env(&cf, envp, err, sizeof(err)), 0);
	set_ok(&cf, "prefix", "/from/flag");
	set_ok(&cf, "http_threads", "3");

	assert_string_equal(cf.listen, "127.0.0.1:9001");	/* env */
	assert_int_equal(cf.listen_port, 9001);
	assert_string_equal(cf.prefix, "/from/flag");		/* flag */
	assert_int_equal(cf.http_threads, 3);			/* flag */
	assert_int_equal(cf.log_level, LOG_LVL_DEBUG);		/* file */
	assert_int_equal(cf.max_body, 1024 * 1024);		/* default */
}

static void
test_file_unknown_key(void **state)
{
	struct config	cf;
	char		path[PATH_MAX], err[ERRLEN], want[PATH_MAX + 16];

	config_defaults(&cf);
	write_conf(*state, "# comment\n"
	    "listen = 127.0.0.1:8081\n"
	    "  bogus_key = 1\n"
	    "prefix = /never/reached\n", path);
	assert_int_equal(config_load_file(&cf, path, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s:3:", path);
	assert_contains(err, want);
	assert_contains(err, "'bogus_key'");
	/* Loading stops at the bad line. */
	assert_string_equal(cf.prefix, "/var/lib/nodee");
}

static void
test_file_bad_value(void **state)
{
	struct config	cf;
	char		path[PATH_MAX], err[ERRLEN], want[PATH_MAX + 16];

	config_defaults(&cf);
	write_conf(*state, "listen = 127.0.0.1:8081\n"
	    "max_body = lots\n", path);
	assert_int_equal(config_load_file(&cf, path, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s:2:", path);
	assert_contains(err, want);
	assert_contains(err, "max_body");
	assert_contains(err, "'lots'");

	/* A value that is empty after '=' is still checked. */
	config_defaults(&cf);
	write_conf(*state, "\n\n\nhttp_threads =\n", path);
	assert_int_equal(config_load_file(&cf, path, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s:4:", path);
	assert_contains(err, want);
	assert_contains(err, "http_threads");
}

static void
test_file_no_equals(void **state)
{
	struct config	cf;
	char		path[PATH_MAX], err[ERRLEN], want[PATH_MAX + 16];

	config_defaults(&cf);
	write_conf(*state, "listen = 127.0.0.1:8081\n"
	    "\n"
	    "listen 127.0.0.1:9\n", path);
	assert_int_equal(config_load_file(&cf, path, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s:3:", path);
	assert_contains(err, want);
	assert_contains(err, "key = value");
	assert_contains(err, "listen 127.0.0.1:9");
}

static void
test_file_missing(void **state)
{
	struct config	cf;
	char		path[PATH_MAX], err[ERRLEN];

	config_defaults(&cf);
	unit_path(path, *state, "absent.conf");
	assert_int_equal(config_load_file(&cf, path, err, sizeof(err)), -1);
	assert_contains(err, path);
	assert_contains(err, "No such file");
}

static void
test_env(void **state)
{
	char *const	envp[] = {
		"PATH=/usr/bin:/bin",
		"NODEE_LISTEN=[::1]:7000",
		"NODEE_HTTP_THREADS=8",
		"NODEE_MAX_BODY=4K",
		"NODEE_INSECURE_LISTEN=yes",
		/* Not keys: a longer name, a prefix, the --config variable. */
		"NODEE_LISTENER=garbage",
		"XNODEE_CELL=garbage",
		"NODEE_CONFIG=/etc/nodee/nodee.conf",
		"NODEE_CELL",
		"nodee_instance=garbage",
		NULL,
	};
	char *const	empty[] = { NULL };
	struct config	cf;
	char		err[ERRLEN];

	(void)state;
	config_defaults(&cf);
	assert_int_equal(config_load_env(&cf, envp, err, sizeof(err)), 0);
	assert_string_equal(cf.listen, "[::1]:7000");
	assert_string_equal(cf.listen_host, "::1");
	assert_int_equal(cf.listen_port, 7000);
	assert_int_equal(cf.listen_ipv6, 1);
	assert_int_equal(cf.http_threads, 8);
	assert_int_equal(cf.max_body, 4096);
	assert_int_equal(cf.insecure_listen, 1);
	assert_string_equal(cf.cell, "cell");
	assert_string_equal(cf.prefix, "/var/lib/nodee");

	config_defaults(&cf);
	assert_int_equal(config_load_env(&cf, empty, err, sizeof(err)), 0);
	assert_string_equal(cf.listen, "127.0.0.1:8080");
}

static void
test_env_bad_value(void **state)
{
	char *const	envp[] = {
		"NODEE_LISTEN=127.0.0.1:9",
		"NODEE_HTTP_THREADS=0",
		NULL,
	};
	char *const	envp2[] = { "NODEE_LISTEN=nowhere", NULL };
	struct config	cf;
	char		err[ERRLEN];

	(void)state;
	config_defaults(&cf);
	assert_int_equal(config_load_env(&cf, envp, err, sizeof(err)), -1);
	assert_contains(err, "NODEE_HTTP_THREADS");
	assert_contains(err, "'0'");

	config_defaults(&cf);
	assert_int_equal(config_load_env(&cf, envp2, err, sizeof(err)), -1);
	assert_contains(err, "NODEE_LISTEN");
	assert_contains(err, "'nowhere'");
	assert_string_equal(cf.listen, "127.0.0.1:8080");
}

static void
test_env_name(void **state)
{
	char	name[128], small[10];

	(void)state;
	config_env_name("depot.com-x", name, sizeof(name));
	assert_string_equal(name, "NODEE_DEPOT_COM_X");
	config_env_name("listen", name, sizeof(name));
	assert_string_equal(name, "NODEE_LISTEN");
	config_env_name("max_body", name, sizeof(name));
	assert_string_equal(name, "NODEE_MAX_BODY");
	config_env_name("Mixed.Case-9", name, sizeof(name));
	assert_string_equal(name, "NODEE_MIXED_CASE_9");

	/* A short buffer gets a terminated prefix of the name. */
	config_env_name("listen", small, sizeof(small));
	assert_string_equal(small, "NODEE_LIS");
}

static void
test_check(void **state)
{
	struct config	cf;
	char		err[ERRLEN];

	(void)state;
	config_defaults(&cf);
	assert_int_equal(config_check(&cf, err, sizeof(err)), 0);

	/* Plain HTTP on the network is refused unless asked for. */
	set_ok(&cf, "listen", "0.0.0.0:8080");
	assert_int_equal(config_check(&cf, err, sizeof(err)), -1);
	assert_contains(err, "0.0.0.0:8080");
	assert_contains(err, "insecure_listen");
	assert_contains(err, "tls_cert");
	set_ok(&cf, "insecure_listen", "yes");
	assert_int_equal(config_check(&cf, err, sizeof(err)), 0);

	config_defaults(&cf);
	set_ok(&cf, "listen", "[::]:8080");
	assert_int_equal(config_check(&cf, err, sizeof(err)), -1);
	set_ok(&cf, "tls_cert", "/etc/nodee/cert.pem");
	set_ok(&cf, "tls_key", "/etc/nodee/key.pem");
	assert_int_equal(config_check(&cf, err, sizeof(err)), 0);

	/* Half a TLS configuration is an error even on loopback. */
	config_defaults(&cf);
	set_ok(&cf, "tls_cert", "/etc/nodee/cert.pem");
	assert_int_equal(config_check(&cf, err, sizeof(err)), -1);
	assert_contains(err, "tls_cert and tls_key");
	config_defaults(&cf);
	set_ok(&cf, "tls_key", "/etc/nodee/key.pem");
	assert_int_equal(config_check(&cf, err, sizeof(err)), -1);
	assert_contains(err, "tls_cert and tls_key");
	/* insecure_listen does not excuse a missing key. */
	set_ok(&cf, "insecure_listen", "yes");
	assert_int_equal(config_check(&cf, err, sizeof(err)), -1);

	config_defaults(&cf);
	set_ok(&cf, "prefix", "");
	assert_int_equal(config_check(&cf, err, sizeof(err)), -1);
	assert_contains(err, "prefix");

	config_defaults(&cf);
	set_ok(&cf, "listen", "[::1]:8080");
	assert_int_equal(config_check(&cf, err, sizeof(err)), 0);
	set_ok(&cf, "listen", "localhost:8080");
	assert_int_equal(config_check(&cf, err, sizeof(err)), 0);
}

static void
test_loopback(void **state)
{
	static const struct {
		const char	*listen;
		int		 loopback;
	} cases[] = {
		{ "127.0.0.1:80", 1 },
		{ "127.0.0.2:80", 1 },
		{ "127.255.255.254:80", 1 },
		{ "localhost:80", 1 },
		{ "[::1]:80", 1 },
		{ "0.0.0.0:80", 0 },
		{ "126.255.255.255:80", 0 },
		{ "128.0.0.1:80", 0 },
		{ "10.0.0.1:80", 0 },
		{ "[::]:80", 0 },
		{ "[::2]:80", 0 },
		{ "[fe80::1]:80", 0 },
	};
	struct config	cf;
	size_t		i;

	(void)state;
	for (i = 0; i < nitems(cases); i++) {
		config_defaults(&cf);
		set_ok(&cf, "listen", cases[i].listen);
		if (config_listen_is_loopback(&cf) != cases[i].loopback)
			fail_msg("%s: loopback should be %d", cases[i].listen,
			    cases[i].loopback);
	}
}

static void
set_ok(struct config *cf, const char *key, const char *value)
{
	char	err[ERRLEN];

	if (config_set(cf, key, value, err, sizeof(err)) != 0)
		fail_msg("%s = '%s' refused: %s", key, value, err);
}

/* A refused value must come with a message naming the key. */
static void
set_bad(struct config *cf, const char *key, const char *value)
{
	char	err[ERRLEN];

	err[0] = '\0';
	if (config_set(cf, key, value, err, sizeof(err)) == 0)
		fail_msg("%s = '%s' accepted", key, value);
	assert_contains(err, key);
}

static void
set_bad_list(struct config *cf, const char *key, const char *const *values,
    size_t n)
{
	size_t	i;

	for (i = 0; i < n; i++)
		set_bad(cf, key, values[i]);
}

/*
 * Each good value sets the key's field to what it should; each bad one
 * is refused and leaves the last good one in place.
 */
static void
check_values(const char *key, const struct value *good, size_t ngood,
    const char *const *bad, size_t nbad)
{
	struct config		cf;
	unsigned long long	last;
	size_t			i;

	config_defaults(&cf);
	for (i = 0; i < ngood; i++) {
		set_ok(&cf, key, good[i].text);
		if (field_of(&cf, key) != good[i].want)
			fail_msg("%s = '%s' gives %llu, not %llu", key,
			    good[i].text, field_of(&cf, key), good[i].want);
	}
	last = field_of(&cf, key);
	set_bad_list(&cf, key, bad, nbad);
	assert_int_equal(field_of(&cf, key), last);
}

/* The field behind a numeric key, whatever its C type. */
static unsigned long long
field_of(const struct config *cf, const char *key)
{
	if (strcmp(key, "insecure_listen") == 0)
		return (unsigned long long)cf->insecure_listen;
	if (strcmp(key, "metrics_public") == 0)
		return (unsigned long long)cf->metrics_public;
	if (strcmp(key, "max_body") == 0)
		return cf->max_body;
	if (strcmp(key, "http_threads") == 0)
		return cf->http_threads;
	if (strcmp(key, "log_level") == 0)
		return (unsigned long long)cf->log_level;
	fail_msg("%s is not a numeric key", key);
	return 0;
}

/*
 * A label key (field is its place in cf) takes each good value and 1 to
 * 63 characters, and refuses each bad one, keeping the value it had.
 */
static void
check_label(struct config *cf, const char *key, const char *field,
    const char *const *good, size_t ngood, const char *const *bad,
    size_t nbad)
{
	char	longest[CONFIG_LABEL_MAX + 1];
	size_t	i;

	for (i = 0; i < ngood; i++) {
		set_ok(cf, key, good[i]);
		assert_string_equal(field, good[i]);
	}
	memset(longest, 'x', 64);
	longest[64] = '\0';
	set_bad(cf, key, longest);
	longest[63] = '\0';
	set_ok(cf, key, longest);
	assert_string_equal(field, longest);
	set_bad_list(cf, key, bad, nbad);
	assert_string_equal(field, longest);
}

/*
 * The conf format is a configuration file: uncommenting every key whose
 * default is a value (not one computed at start-up) gives a file the
 * parser takes and that changes nothing, so the defaults it shows are the
 * defaults config_defaults() sets.  Lines are comments, wrapped, without
 * the table's backquotes.
 */
static void
test_doc_conf(void **state)
{
	struct config	 cf, defaults;
	char		 path[PATH_MAX], err[ERRLEN], *text, *out, *line, *next;
	size_t		 keys = 0, uncommented = 0, o = 0;
	int		 computed = 0, described = 0;

	text = doc_text(CONFIG_DOC_CONF);
	assert_non_null(out = malloc(strlen(text) + 1));
	for (line = text; *line != '\0'; line = next) {
		next = strchr(line, '\n');
		assert_non_null(next);	/* every line ends */
		*next++ = '\0';
		assert_true(strlen(line) <= 76);
		assert_null(strchr(line, '`'));
		if (line[0] == '\0') {
			assert_false(described);	/* a key follows its text */
			continue;
		}
		assert_int_equal(line[0], '#');
		if (line[1] == ' ') {
			described = 1;
			if (strstr(line, "(default:") != NULL)
				computed = 1;
			continue;
		}
		/* "#key = value": the key's line, after its description. */
		assert_true(described);
		assert_non_null(strstr(line, " ="));
		keys++;
		if (!computed) {
			o += (size_t)sprintf(out + o, "%s\n", line + 1);
			uncommented++;
		}
		described = computed = 0;
	}
	out[o] = '\0';
	assert_true(keys >= 30);
	assert_int_equal(doc_count(out, "\n"), uncommented);
	/* Computed: the host name, the depot of a group, the S3 endpoint. */
	assert_int_equal(keys - uncommented, 3);
	assert_non_null(strstr(out, "metrics_public = no\n"));
	assert_non_null(strstr(out, "max_body = 1M\n"));
	assert_non_null(strstr(out, "tls_cert =\n"));
	assert_null(strstr(out, "instance ="));

	write_conf(*state, out, path);
	config_defaults(&defaults);
	config_defaults(&cf);
	if (config_load_file(&cf, path, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	assert_memory_equal(&cf, &defaults, sizeof(cf));
	free(out);
	free(text);
}

/*
 * roff: a .TP paragraph per key (as many as conf has keys), nothing else
 * that troff would read as a request, literals in bold with their
 * hyphens as \- (so that options copy as they read), ranges from the
 * table's bounds.
 */
static void
test_doc_man(void **state)
{
	char		*text, *md, *p;
	int		 bold = 0;

	(void)state;
	text = doc_text(CONFIG_DOC_MAN);
	md = doc_text(CONFIG_DOC_MARKDOWN);
	assert_int_equal(strncmp(text, ".TP\n", 4), 0);
	/* As many paragraphs as the Markdown table has rows of keys. */
	assert_int_equal(doc_count(text, ".TP\n"), doc_count(md, "\n| `"));
	assert_int_equal(doc_count(text, "\n.") + 1, doc_count(text, ".TP\n"));
	assert_int_equal(doc_count(text, "\n'"), 0);
	assert_null(strchr(text, '`'));
	assert_non_null(strstr(text, ".TP\n\\fBprefix\\fR (default: "
	    "\\fB/var/lib/nodee\\fR)\nnodee's directory tree: "));
	assert_non_null(strstr(text, "\\fBmax_body\\fR (default: \\fB1M\\fR; "
	    "64 to 1G)\n"));
	assert_non_null(strstr(text, "\\fBdownload_max\\fR (default: "
	    "\\fB4G\\fR; 1K to 1024G)\n"));
	assert_non_null(strstr(text, "\\fBarchive_max_entries\\fR (default: "
	    "\\fB200000\\fR; 1 to 10000000)\n"));
	assert_non_null(strstr(text, "\\fBs3_region\\fR (default: "
	    "\\fBus\\-east\\-1\\fR)\n"));
	assert_non_null(strstr(text, "\\fBinstance\\fR (default: the host "
	    "name)\n"));
	assert_non_null(strstr(text, "\\fBtls_cert\\fR (default: empty)\n"));
	assert_non_null(strstr(text, "(flag \\fB\\-\\-log\\-level\\fR)"));
	assert_non_null(strstr(text, "\\fBmetrics_public\\fR (default: "
	    "\\fBno\\fR)\nserve \\fB/metrics\\fR without the token\n"));
	/* Inside bold, every hyphen is escaped; bold always ends. */
	for (p = text; *p != '\0'; p++) {
		assert_true((unsigned char)*p < 0x80);
		if (strncmp(p, "\\fB", 3) == 0)
			bold = 1;
		else if (strncmp(p, "\\fR", 3) == 0)
			bold = 0;
		else if (*p == '\n')
			assert_false(bold);
		else if (bold && *p == '-')
			assert_int_equal(p[-1], '\\');
	}
	free(md);
	free(text);
}

/*
 * Markdown: a header and a row of three cells per key; '|' escaped and
 * '<' outside code (it would open an HTML tag), ranges in the default
 * cell.
 */
static void
test_doc_markdown(void **state)
{
	char		*text, *line, *next, *p;
	size_t		 rows = 0, bars;
	int		 code;

	(void)state;
	text = doc_text(CONFIG_DOC_MARKDOWN);
	assert_int_equal(strncmp(text, "| key | default | meaning |\n"
	    "|---|---|---|\n", 42), 0);
	for (line = text + 42; *line != '\0'; line = next) {
		assert_non_null(next = strchr(line, '\n'));
		*next++ = '\0';
		assert_int_equal(strncmp(line, "| `", 3), 0);
		assert_int_equal(strcmp(line + strlen(line) - 2, " |"), 0);
		for (bars = 0, code = 0, p = line; *p != '\0'; p++) {
			assert_true((unsigned char)*p < 0x80);
			if (*p == '`')
				code = !code;
			else if (*p == '|' && (p == line || p[-1] != '\\'))
				bars++;
			else if (*p == '<')
				assert_true(code);
		}
		assert_int_equal(bars, 4);
		assert_false(code);
		rows++;
	}
	assert_true(rows >= 30);
	free(text);
	text = doc_text(CONFIG_DOC_MARKDOWN);
	assert_non_null(strstr(text, "\n| `download_max` | `4G` (1K to 1024G) "
	    "| largest download"));
	assert_non_null(strstr(text, "\n| `depot.<groupId>` | none | "));
	assert_non_null(strstr(text, "\n| `instance` | the host name | "));
	assert_non_null(strstr(text, "\n| `s3_endpoint` | AWS for `s3_region` "
	    "| "));
	assert_non_null(strstr(text, "\n| `metrics_public` | `no` | serve "
	    "`/metrics` without the token |\n"));
	free(text);
}

/* What config_doc() prints in a format; the caller frees it. */
static char *
doc_text(enum config_doc fmt)
{
	char	*text = NULL;
	size_t	 len = 0;
	FILE	*fp;

	assert_non_null(fp = open_memstream(&text, &len));
	config_doc(fp, fmt);
	assert_int_equal(fclose(fp), 0);
	assert_true(len > 0);
	return text;
}

/* How many times needle occurs in hay. */
static size_t
doc_count(const char *hay, const char *needle)
{
	size_t	n = 0;

	while ((hay = strstr(hay, needle)) != NULL) {
		n++;
		hay += strlen(needle);
	}
	return n;
}

/* Writes dir/nodee.conf; path gets its name (PATH_MAX bytes). */
static void
write_conf(const char *dir, const char *text, char *path)
{
	unit_path(path, dir, "nodee.conf");
	unit_write(path, text, 0644);
}
