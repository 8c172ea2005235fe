/*
 * test_service: start specs are checked whole when submitted and stored
 * with every default filled in.
 */
#include "unit.h"

#include <signal.h>

#include <jansson.h>

#include "config.h"
#include "service.h"

static json_t *
check(const char *text, char *err, size_t errlen)
{
	struct config	 cf;
	json_error_t	 je;
	json_t		*in, *out;

	config_defaults(&cf);
	in = json_loads(text, 0, &je);
	assert_non_null(in);
	err[0] = '\0';
	out = service_spec_check(&cf, in, err, errlen);
	json_decref(in);
	return out;
}

static void
test_defaults(void **state)
{
	char	 err[512];
	json_t	*s;

	(void)state;
	s = check("{\"artifact\": \"com.example:hello:1.0\"}", err,
	    sizeof(err));
	assert_non_null(s);
	assert_string_equal(json_string_value(json_object_get(json_object_get(
	    s, "restart"), "policy")), "on-failure");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(
	    s, "restart"), "max_restarts")), 10);
	assert_string_equal(json_string_value(json_object_get(json_object_get(
	    s, "stop"), "signal")), "TERM");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(
	    s, "stop"), "timeout_s")), 10);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(
	    s, "drain"), "timeout_s")), 30);
	assert_true(json_is_object(json_object_get(s, "options")));
	assert_true(json_is_array(json_object_get(s, "args")));
	assert_true(json_is_object(json_object_get(s, "env")));
	/* No command: the artifact's nodee.json or bin/start decides later. */
	assert_null(json_object_get(s, "command"));
	json_decref(s);
}

static void
test_full(void **state)
{
	char	 err[512];
	json_t	*s, *o;

	(void)state;
	s = check("{\"artifact\": \"g:a:1\", \"command\": \"bin/run\", "
	    "\"options\": {\"--port\": \"8080\", \"--workers\": 4}, "
	    "\"args\": [\"x\"], \"env\": {\"JAVA_OPTS\": \"-Xmx1g\"}, "
	    "\"restart\": {\"policy\": \"always\", \"delay_ms\": 0}, "
	    "\"stop\": {\"signal\": \"SIGINT\", \"timeout_s\": 3}, "
	    "\"drain\": {\"command\": \"bin/drain\", \"timeout_s\": 5}, "
	    "\"user\": \"root\", \"limits\": {\"nofile\": 1024}}", err,
	    sizeof(err));
	assert_non_null(s);
	o = json_object_get(s, "options");
	/* Integers become the strings passed on the command line. */
	assert_string_equal(json_string_value(json_object_get(o,
	    "--workers")), "4");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(
	    s, "restart"), "delay_ms")), 0);
	json_decref(s);
}

static void
test_bad(void **state)
{
	static const struct {
		const char	*spec;
		const char	*why;
	} cases[] = {
		{ "[]", "JSON object" },
		{ "{}", "artifact: required" },
		{ "{\"artifact\": \"nope\"}", "groupId:artifactId:version" },
		{ "{\"artifact\": \"g:a:1\", \"bogus\": 1}",
		    "bogus: unknown field" },
		{ "{\"artifact\": \"g:a:1\", \"command\": \"../x\"}",
		    "command: '../x' has an empty, '.' or '..' component" },
		{ "{\"artifact\": \"g:a:1\", \"command\": \"bin/../../x\"}",
		    "command: 'bin/../../x' has an empty, '.' or '..'" },
		{ "{\"artifact\": \"g:a:1\", \"command\": \"/bin/sh\"}",
		    "command: '/bin/sh' is absolute" },
		{ "{\"artifact\": \"g:a:1\", \"command\": \"\"}",
		    "command: must be a non-empty relative path" },
		{ "{\"artifact\": \"g:a:1\", \"command\": \"bin/\"}",
		    "command: 'bin/' must name a file" },
		{ "{\"artifact\": \"g:a:1\", \"command\": \"./run\"}",
		    "command: './run' has an empty, '.' or '..'" },
		{ "{\"artifact\": \"g:a:1\", \"command\": 7}",
		    "command: must be a string" },
		{ "{\"artifact\": \"g:a:1\", \"options\": {\"--a\": []}}",
		    "options.--a" },
		{ "{\"artifact\": \"g:a:1\", \"args\": [1]}", "args[0]" },
		{ "{\"artifact\": \"g:a:1\", \"env\": {\"A=B\": \"x\"}}",
		    "env.A=B" },
		{ "{\"artifact\": \"g:a:1\", \"restart\": {\"policy\": "
		    "\"sometimes\"}}", "restart.policy" },
		{ "{\"artifact\": \"g:a:1\", \"restart\": {\"max_restarts\": "
		    "-1}}", "restart.max_restarts" },
		{ "{\"artifact\": \"g:a:1\", \"restart\": {\"when\": 1}}",
		    "restart.when: unknown field" },
		{ "{\"artifact\": \"g:a:1\", \"stop\": {\"signal\": \"NOPE\"}}",
		    "stop.signal" },
		{ "{\"artifact\": \"g:a:1\", \"stop\": {\"timeout_s\": 1e3}}",
		    "stop.timeout_s" },
		{ "{\"artifact\": \"g:a:1\", \"drain\": {\"command\": "
		    "\"/x\"}}", "drain.command: '/x' is absolute" },
		{ "{\"artifact\": \"g:a:1\", \"drain\": {\"command\": "
		    "\"bin/../../x\"}}", "drain.command: 'bin/../../x' has" },
		{ "{\"artifact\": \"g:a:1\", \"drain\": {\"command\": "
		    "3}}", "drain.command: must be a path" },
		{ "{\"artifact\": \"g:a:1\", \"user\": "
		    "\"no-such-user-here\"}", "user: 'no-such-user-here'" },
		{ "{\"artifact\": \"g:a:1\", \"limits\": {\"nofile\": -1}}",
		    "limits.nofile" },
		{ "{\"artifact\": \"g:a:1\", \"limits\": {\"cpu\": 1}}",
		    "limits.cpu: unknown field" },
	};
	char	 err[512];
	json_t	*s;
	size_t	 i;

	(void)state;
	for (i = 0; i < nitems(cases); i++) {
		s = check(cases[i].spec, err, sizeof(err));
		if (s != NULL)
			fail_msg("accepted: %s", cases[i].spec);
		assert_contains(err, cases[i].why);
	}
}

static void
test_signals(void **state)
{
	(void)state;
	assert_int_equal(service_signal("TERM"), SIGTERM);
	assert_int_equal(service_signal("SIGUSR1"), SIGUSR1);
	assert_int_equal(service_signal("KILL"), SIGKILL);
	assert_int_equal(service_signal("term"), 0);
	assert_int_equal(service_signal("SEGV"), 0);
}

int
main(void)
{
	const struct CMUnitTest	tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_full),
		cmocka_unit_test(test_bad),
		cmocka_unit_test(test_signals),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
