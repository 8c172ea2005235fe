/*
 * test_service: start specs are checked whole when submitted and stored
 * with every default filled in.
 */
#include "unit.h"

#include <linux/capability.h>
#include <signal.h>

#include <jansson.h>

#include "config.h"
#include "prepare.h"
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
	/* A start counts once the process has stayed up a second. */
	assert_int_equal(json_integer_value(json_object_get(json_object_get(
	    s, "start"), "min_uptime_ms")), 1000);
	/* No capability kept: the bounding set is emptied. */
	assert_true(json_is_array(json_object_get(s, "capabilities")));
	assert_int_equal(json_array_size(json_object_get(s, "capabilities")),
	    0);
	assert_true(service_caps(s) == 0);
	json_decref(s);
}

static void
test_start(void **state)
{
	char	 err[512];
	json_t	*s;

	(void)state;
	s = check("{\"artifact\": \"g:a:1\", \"start\": {\"min_uptime_ms\": "
	    "0}}", err, sizeof(err));
	assert_non_null(s);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(
	    s, "start"), "min_uptime_ms")), 0);
	json_decref(s);
	s = check("{\"artifact\": \"g:a:1\", \"start\": {\"min_uptime_ms\": "
	    "3600000}}", err, sizeof(err));
	assert_non_null(s);
	json_decref(s);
	/* An empty object takes the default. */
	s = check("{\"artifact\": \"g:a:1\", \"start\": {}}", err,
	    sizeof(err));
	assert_non_null(s);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(
	    s, "start"), "min_uptime_ms")), 1000);
	json_decref(s);
}

static void
test_capabilities(void **state)
{
	char	 err[512];
	json_t	*s, *caps;

	(void)state;
	s = check("{\"artifact\": \"g:a:1\", \"capabilities\": "
	    "[\"NET_BIND_SERVICE\", \"cap_sys_time\", \"Cap_Chown\", "
	    "\"checkpoint_restore\"]}", err, sizeof(err));
	assert_non_null(s);
	/* Stored as the kernel spells them, whatever was given. */
	caps = json_object_get(s, "capabilities");
	assert_int_equal(json_array_size(caps), 4);
	assert_string_equal(json_string_value(json_array_get(caps, 0)),
	    "CAP_NET_BIND_SERVICE");
	assert_string_equal(json_string_value(json_array_get(caps, 1)),
	    "CAP_SYS_TIME");
	assert_string_equal(json_string_value(json_array_get(caps, 2)),
	    "CAP_CHOWN");
	assert_true(service_caps(s) == ((1ULL << CAP_NET_BIND_SERVICE) |
	    (1ULL << CAP_SYS_TIME) | (1ULL << CAP_CHOWN) |
	    (1ULL << CAP_CHECKPOINT_RESTORE)));
	json_decref(s);
}

/* The table in service.c against the kernel's own header. */
/* secret_env: strings like env, never both, hidden in the shown spec. */
static void
test_secret_env(void **state)
{
	char	 err[512];
	json_t	*s, *shown;

	(void)state;
	s = check("{\"artifact\": \"g:a:1\", \"env\": {\"A\": \"1\"}, "
	    "\"secret_env\": {\"PW\": \"hunter2\"}}", err, sizeof(err));
	assert_non_null(s);
	assert_string_equal(json_string_value(json_object_get(json_object_get(
	    s, "secret_env"), "PW")), "hunter2");
	shown = prepare_spec_redact(s);
	assert_string_equal(json_string_value(json_object_get(json_object_get(
	    shown, "secret_env"), "PW")), "(hidden)");
	assert_string_equal(json_string_value(json_object_get(json_object_get(
	    shown, "env"), "A")), "1");
	json_decref(shown);
	json_decref(s);
	assert_null(check("{\"artifact\": \"g:a:1\", \"env\": {\"A\": "
	    "\"1\"}, \"secret_env\": {\"A\": \"2\"}}", err, sizeof(err)));
	assert_non_null(strstr(err, "secret_env.A: also in env"));
	assert_null(check("{\"artifact\": \"g:a:1\", \"secret_env\": "
	    "{\"A\": 2}}", err, sizeof(err)));
	assert_non_null(strstr(err, "secret_env.A"));
	assert_null(check("{\"artifact\": \"g:a:1\", \"secret_env\": "
	    "[]}", err, sizeof(err)));
}

static void
test_cap_bits(void **state)
{
	static const struct {
		const char	*name;
		int		 bit;
	} caps[] = {
		{ "CHOWN", CAP_CHOWN }, { "DAC_OVERRIDE", CAP_DAC_OVERRIDE },
		{ "DAC_READ_SEARCH", CAP_DAC_READ_SEARCH },
		{ "FOWNER", CAP_FOWNER }, { "FSETID", CAP_FSETID },
		{ "KILL", CAP_KILL }, { "SETGID", CAP_SETGID },
		{ "SETUID", CAP_SETUID }, { "SETPCAP", CAP_SETPCAP },
		{ "LINUX_IMMUTABLE", CAP_LINUX_IMMUTABLE },
		{ "NET_BIND_SERVICE", CAP_NET_BIND_SERVICE },
		{ "NET_BROADCAST", CAP_NET_BROADCAST },
		{ "NET_ADMIN", CAP_NET_ADMIN }, { "NET_RAW", CAP_NET_RAW },
		{ "IPC_LOCK", CAP_IPC_LOCK }, { "IPC_OWNER", CAP_IPC_OWNER },
		{ "SYS_MODULE", CAP_SYS_MODULE },
		{ "SYS_RAWIO", CAP_SYS_RAWIO },
		{ "SYS_CHROOT", CAP_SYS_CHROOT },
		{ "SYS_PTRACE", CAP_SYS_PTRACE },
		{ "SYS_PACCT", CAP_SYS_PACCT },
		{ "SYS_ADMIN", CAP_SYS_ADMIN }, { "SYS_BOOT", CAP_SYS_BOOT },
		{ "SYS_NICE", CAP_SYS_NICE },
		{ "SYS_RESOURCE", CAP_SYS_RESOURCE },
		{ "SYS_TIME", CAP_SYS_TIME },
		{ "SYS_TTY_CONFIG", CAP_SYS_TTY_CONFIG },
		{ "MKNOD", CAP_MKNOD }, { "LEASE", CAP_LEASE },
		{ "AUDIT_WRITE", CAP_AUDIT_WRITE },
		{ "AUDIT_CONTROL", CAP_AUDIT_CONTROL },
		{ "SETFCAP", CAP_SETFCAP },
		{ "MAC_OVERRIDE", CAP_MAC_OVERRIDE },
		{ "MAC_ADMIN", CAP_MAC_ADMIN }, { "SYSLOG", CAP_SYSLOG },
		{ "WAKE_ALARM", CAP_WAKE_ALARM },
		{ "BLOCK_SUSPEND", CAP_BLOCK_SUSPEND },
		{ "AUDIT_READ", CAP_AUDIT_READ }, { "PERFMON", CAP_PERFMON },
		{ "BPF", CAP_BPF },
		{ "CHECKPOINT_RESTORE", CAP_CHECKPOINT_RESTORE },
	};
	char	name[64];
	size_t	i;

	(void)state;
	assert_int_equal(nitems(caps), CAP_LAST_CAP + 1);
	for (i = 0; i < nitems(caps); i++) {
		assert_int_equal(service_cap_bit(caps[i].name), caps[i].bit);
		snprintf(name, sizeof(name), "cap_%s", caps[i].name);
		assert_int_equal(service_cap_bit(name), caps[i].bit);
	}
	assert_int_equal(service_cap_bit("net_bind_service"),
	    CAP_NET_BIND_SERVICE);
	assert_int_equal(service_cap_bit("NET_BIND"), -1);
	assert_int_equal(service_cap_bit("CAP_"), -1);
	assert_int_equal(service_cap_bit("CAP_CAP_CHOWN"), -1);
	assert_int_equal(service_cap_bit(""), -1);
	assert_int_equal(service_cap_bit(NULL), -1);
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
		{ "{\"artifact\": \"g:a:1\", \"start\": 5}",
		    "start: must be an object" },
		{ "{\"artifact\": \"g:a:1\", \"start\": {\"startsecs\": 1}}",
		    "start.startsecs: unknown field" },
		{ "{\"artifact\": \"g:a:1\", \"start\": {\"min_uptime_ms\": "
		    "-1}}", "start.min_uptime_ms: must be an integer from 0 to "
		    "3600000" },
		{ "{\"artifact\": \"g:a:1\", \"start\": {\"min_uptime_ms\": "
		    "3600001}}", "start.min_uptime_ms" },
		{ "{\"artifact\": \"g:a:1\", \"start\": {\"min_uptime_ms\": "
		    "\"1s\"}}", "start.min_uptime_ms" },
		{ "{\"artifact\": \"g:a:1\", \"capabilities\": "
		    "\"NET_ADMIN\"}", "capabilities: must be an array" },
		{ "{\"artifact\": \"g:a:1\", \"capabilities\": "
		    "[\"NET_ADMIN\", \"NET_FLY\"]}",
		    "capabilities[1]: 'NET_FLY' is not a Linux capability" },
		{ "{\"artifact\": \"g:a:1\", \"capabilities\": [10]}",
		    "capabilities[0]: '?' is not a Linux capability" },
		{ "{\"artifact\": \"g:a:1\", \"capabilities\": [\"\"]}",
		    "capabilities[0]" },
		{ "{\"artifact\": \"g:a:1\", \"capabilities\": [\"CAP_\"]}",
		    "capabilities[0]: 'CAP_'" },
		{ "{\"artifact\": \"g:a:1\", \"user\": 7}", "user: '?'" },
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
		cmocka_unit_test(test_start),
		cmocka_unit_test(test_capabilities),
		cmocka_unit_test(test_cap_bits),
		cmocka_unit_test(test_secret_env),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
