/*
 * test_prepare: the parts of runtime-directory preparation that need no
 * daemon: ${name} rendering, the checks of prepare, snapshot and
 * credentials when a spec is submitted, and what the API may show of it.
 */
#include "unit.h"

#include <jansson.h>

#include "config.h"
#include "coord.h"
#include "prepare.h"
#include "service.h"

static struct config	cf;

static json_t *
check(const char *text, char *err, size_t errlen)
{
	json_error_t	 je;
	json_t		*in, *out;

	config_defaults(&cf);
	snprintf(cf.instance, sizeof(cf.instance), "node7");
	prepare_init(&cf);
	in = json_loads(text, 0, &je);
	if (in == NULL)
		fail_msg("bad test JSON: %s: %s", je.text, text);
	err[0] = '\0';
	out = service_spec_check(&cf, in, err, errlen);
	json_decref(in);
	return out;
}

static void
refused(const char *text, const char *why)
{
	char	 err[512];
	json_t	*s = check(text, err, sizeof(err));

	if (s != NULL)
		fail_msg("accepted: %s", text);
	assert_contains(err, why);
}

static char *
render(const char *in, char *err, size_t errlen)
{
	struct prepare_vars	 v;
	struct coord		 c;
	json_t			*opts, *env;
	char			*out = NULL, e[256];
	size_t			 len;
	int			 rc;

	assert_int_equal(coord_parse("1.web.borud.fbu", &c, e, sizeof(e)), 0);
	opts = json_pack("{s:s}", "--port", "8080");
	env = json_pack("{s:s}", "JAVA_OPTS", "-Xmx1g");
	memset(&v, 0, sizeof(v));
	v.c = &c;
	v.node = "node7";
	v.runtime_dir = "/p/runtime/fbu/borud/web/1";
	v.artifact_dir = "/p/software/g/a/1";
	v.options = opts;
	v.env = env;
	err[0] = '\0';
	rc = prepare_render(in, strlen(in), &v, &out, &len, err, errlen);
	json_decref(opts);
	json_decref(env);
	if (rc != 0)
		return NULL;
	assert_int_equal(len, strlen(out));
	return out;
}

static void
test_render_names(void **state)
{
	char	 err[256], *out;

	(void)state;
	out = render("c=${coordinate} i=${instance} s=${service} u=${user} "
	    "cell=${cell}\nrt=${runtime_dir} art=${artifact_dir} "
	    "node=${node}\nport=${option:--port} java=${env:JAVA_OPTS}\n",
	    err, sizeof(err));
	assert_non_null(out);
	assert_string_equal(out, "c=1.web.borud.fbu i=1 s=web u=borud "
	    "cell=fbu\nrt=/p/runtime/fbu/borud/web/1 art=/p/software/g/a/1 "
	    "node=node7\nport=8080 java=-Xmx1g\n");
	free(out);
}

static void
test_render_literals(void **state)
{
	char	 err[256], *out;

	(void)state;
	/* "$${" is a literal "${"; a lone '$' or "$$" stays as it is. */
	out = render("a=$${x} b=$HOME c=$$ d=$ e=${node}$", err, sizeof(err));
	assert_non_null(out);
	assert_string_equal(out, "a=${x} b=$HOME c=$$ d=$ e=node7$");
	free(out);
	out = render("", err, sizeof(err));
	assert_non_null(out);
	assert_string_equal(out, "");
	free(out);
}

static void
test_render_errors(void **state)
{
	char	err[256];

	(void)state;
	assert_null(render("ok\nok\nv=${colour}\n", err, sizeof(err)));
	assert_contains(err, "line 3: unknown name ${colour}");
	assert_null(render("${option:--host}", err, sizeof(err)));
	assert_contains(err, "no option '--host'");
	assert_null(render("x\n${env:HOME}", err, sizeof(err)));
	assert_contains(err, "line 2: ${env:HOME}");
	assert_null(render("a ${node", err, sizeof(err)));
	assert_contains(err, "line 1: unclosed ${");
	assert_null(render("a ${no\nde}", err, sizeof(err)));
	assert_contains(err, "unclosed ${");
	assert_null(render("${}", err, sizeof(err)));
	assert_contains(err, "unknown name ${}");
}

static void
test_spec_defaults(void **state)
{
	char	 err[512];
	json_t	*s, *st;

	(void)state;
	s = check("{\"artifact\": \"g:a:1\", \"prepare\": ["
	    "{\"copy\": \"conf/\", \"to\": \"conf/\"},"
	    "{\"template\": \"conf/a.in\", \"to\": \"conf/a\"},"
	    "{\"fetch\": \"https://b.example/s.zip\", \"unpack\": \"data/\"}],"
	    "\"snapshot\": {\"paths\": [\"data/\"], \"to\": "
	    "\"https://b.example/${coordinate}.zip\"}}", err, sizeof(err));
	if (s == NULL)
		fail_msg("refused: %s", err);
	st = json_object_get(s, "prepare");
	assert_true(json_is_false(json_object_get(json_array_get(st, 0),
	    "overwrite")));
	assert_true(json_is_false(json_object_get(json_array_get(st, 0),
	    "once")));
	assert_true(json_is_false(json_object_get(json_array_get(st, 2),
	    "optional")));
	assert_int_equal(json_array_size(json_object_get(json_object_get(s,
	    "snapshot"), "on")), 2);
	assert_true(prepare_needed(s));
	assert_true(prepare_snapshot_on(s, "drain"));
	assert_true(prepare_snapshot_on(s, "stop"));
	json_decref(s);

	s = check("{\"artifact\": \"g:a:1\"}", err, sizeof(err));
	assert_non_null(s);
	assert_false(prepare_needed(s));
	json_decref(s);
}

static void
test_spec_paths(void **state)
{
	(void)state;
	refused("{\"artifact\": \"g:a:1\", \"prepare\": [{\"copy\": "
	    "\"../etc/\", \"to\": \"conf/\"}]}", "prepare[0].copy");
	refused("{\"artifact\": \"g:a:1\", \"prepare\": [{\"copy\": "
	    "\"conf/\", \"to\": \"/etc/\"}]}", "is absolute");
	refused("{\"artifact\": \"g:a:1\", \"prepare\": [{\"copy\": "
	    "\"conf/\", \"to\": \"a/../../b\"}]}", "'..' component");
	refused("{\"artifact\": \"g:a:1\", \"prepare\": [{\"copy\": "
	    "\"conf/\", \"to\": \"a//b\"}]}", "empty");
	refused("{\"artifact\": \"g:a:1\", \"prepare\": [{\"template\": "
	    "\"a.in\", \"to\": \"conf/\"}]}", "must name a file");
	refused("{\"artifact\": \"g:a:1\", \"prepare\": [{\"template\": "
	    "\"a.in\", \"to\": \".\"}]}", "prepare[0].to");
	refused("{\"artifact\": \"g:a:1\", \"prepare\": [{\"fetch\": "
	    "\"https://x.example/a.zip\", \"unpack\": \"./..\"}]}",
	    "prepare[0].unpack");
	refused("{\"artifact\": \"g:a:1\", \"snapshot\": {\"paths\": "
	    "[\"../x\"], \"to\": \"https://x.example/a.zip\"}}",
	    "snapshot.paths[0]");
	refused("{\"artifact\": \"g:a:1\", \"prepare\": [{\"copy\": "
	    "\"a\\u0001b\", \"to\": \"x\"}]}", "control character");
}

static void
test_spec_steps(void **state)
{
	(void)state;
	refused("{\"artifact\": \"g:a:1\", \"prepare\": {}}", "prepare: "
	    "must be a list");
	refused("{\"artifact\": \"g:a:1\", \"prepare\": [{\"copy\": \"a\", "
	    "\"template\": \"b\", \"to\": \"c\"}]}", "exactly one of copy");
	refused("{\"artifact\": \"g:a:1\", \"prepare\": [{\"to\": \"c\"}]}",
	    "exactly one of copy");
	refused("{\"artifact\": \"g:a:1\", \"prepare\": [{\"copy\": \"a\", "
	    "\"to\": \"c\", \"colour\": 1}]}", "prepare[0].colour: unknown");
	refused("{\"artifact\": \"g:a:1\", \"prepare\": [{\"copy\": \"a\", "
	    "\"to\": \"c\", \"once\": \"yes\"}]}", "prepare[0].once: must be "
	    "true or false");
	refused("{\"artifact\": \"g:a:1\", \"prepare\": [{\"fetch\": "
	    "\"https://x.example/a\"}]}", "exactly one of unpack");
	refused("{\"artifact\": \"g:a:1\", \"prepare\": [{\"fetch\": "
	    "\"https://x.example/a\", \"to\": \"a\", \"unpack\": \"b/\"}]}",
	    "exactly one of unpack");
	refused("{\"artifact\": \"g:a:1\", \"prepare\": [{\"fetch\": "
	    "\"ftp://x.example/a\", \"to\": \"a\"}]}", "prepare[0].fetch");
	refused("{\"artifact\": \"g:a:1\", \"prepare\": [{\"fetch\": "
	    "\"https://x.example/a\", \"to\": \"a\", \"sha256\": \"abc\"}]}",
	    "64 hex digits");
	refused("{\"artifact\": \"g:a:1\", \"prepare\": [{\"fetch\": "
	    "\"snapshot\", \"unpack\": \".\"}]}", "needs a snapshot rule");
	refused("{\"artifact\": \"g:a:1\", \"prepare\": [{\"fetch\": "
	    "\"https://x.example/${colour}\", \"to\": \"a\"}]}",
	    "unknown name ${colour}");
	refused("{\"artifact\": \"g:a:1\", \"prepare\": [{\"fetch\": "
	    "\"https://x.example/${option:--port}\", \"to\": \"a\"}]}",
	    "no option '--port'");
	refused("{\"artifact\": \"g:a:1\", \"snapshot\": {\"paths\": "
	    "[\"data/\"], \"to\": \"https://x.example/a\", \"on\": "
	    "[\"crash\"]}}", "snapshot.on[0]");
	refused("{\"artifact\": \"g:a:1\", \"snapshot\": {\"paths\": "
	    "[\"data/\"], \"to\": \"https://x.example/a\", \"on\": "
	    "[\"stop\", \"stop\"]}}", "each once");
	refused("{\"artifact\": \"g:a:1\", \"snapshot\": {\"paths\": [], "
	    "\"to\": \"https://x.example/a\"}}", "snapshot.paths");
}

static void
test_spec_s3(void **state)
{
	char	 err[512];
	json_t	*s;

	(void)state;
	/* No credentials anywhere: refused when submitted, not at start. */
	refused("{\"artifact\": \"g:a:1\", \"prepare\": [{\"fetch\": "
	    "\"s3://bucket/k.zip\", \"unpack\": \"data/\"}]}",
	    "needs credentials");
	refused("{\"artifact\": \"g:a:1\", \"prepare\": [{\"fetch\": "
	    "\"s3://bucket/k.zip\", \"unpack\": \"data/\", \"credentials\": "
	    "\"nope\"}]}", "'nope' are not in the spec's credentials");
	refused("{\"artifact\": \"g:a:1\", \"credentials\": {\"b\": "
	    "{\"access_key_id\": \"AK\"}}}", "secret_access_key are required");
	refused("{\"artifact\": \"g:a:1\", \"credentials\": {\"b\": "
	    "{\"access_key_id\": \"AK\", \"secret_access_key\": "
	    "\"(hidden)\"}}}", "give the secret itself");
	refused("{\"artifact\": \"g:a:1\", \"credentials\": {\"B!\": {}}}",
	    "credentials: names");
	refused("{\"artifact\": \"g:a:1\", \"credentials\": {\"b\": "
	    "{\"access_key_id\": \"AK\", \"secret_access_key\": \"S\", "
	    "\"endpoint\": \"file:///etc\"}}}", "credentials.b.endpoint");
	refused("{\"artifact\": \"g:a:1\", \"credentials\": {\"b\": "
	    "{\"access_key_id\": \"AK\", \"secret_access_key\": \"S\", "
	    "\"endpoint\": \"http://admin:pw@127.0.0.1:9000/?t=1\"}}}",
	    "no user information, query or fragment");
	refused("{\"artifact\": \"g:a:1\", \"prepare\": [{\"fetch\": "
	    "\"s3://B_ad/k\", \"to\": \"a\"}]}", "prepare[0].fetch");

	s = check("{\"artifact\": \"g:a:1\", \"credentials\": {\"backup\": "
	    "{\"access_key_id\": \"AKID\", \"secret_access_key\": \"SeCrEt\", "
	    "\"session_token\": \"ToKeN\", \"endpoint\": "
	    "\"http://127.0.0.1:9000\"}}, \"prepare\": [{\"fetch\": "
	    "\"s3://bucket/${coordinate}/s.zip\", \"unpack\": \".\", "
	    "\"credentials\": \"backup\"}, {\"fetch\": "
	    "\"https://u:pw@x.example/a.zip?X-Amz-Signature=abc\", \"to\": "
	    "\"a.zip\"}], \"snapshot\": {\"paths\": [\".\"], \"to\": "
	    "\"s3://bucket/${coordinate}/s.zip\", \"credentials\": "
	    "\"backup\"}}", err, sizeof(err));
	if (s == NULL)
		fail_msg("refused: %s", err);
	{
		json_t	*shown = prepare_spec_redact(s);
		char	*text = json_dumps(shown, 0);

		assert_null(strstr(text, "SeCrEt"));
		assert_null(strstr(text, "ToKeN"));
		assert_null(strstr(text, "pw@"));
		assert_null(strstr(text, "X-Amz-Signature"));
		assert_contains(text, "(hidden)");
		assert_contains(text, "AKID");
		assert_contains(text, "s3://bucket/${coordinate}/s.zip");
		free(text);
		json_decref(shown);
		/* The spec nodee runs keeps the secrets. */
		text = json_dumps(s, 0);
		assert_contains(text, "SeCrEt");
		free(text);
	}
	json_decref(s);

	/* Configured credentials are enough for an s3:// URL. */
	config_defaults(&cf);
	s = NULL;
	{
		json_error_t	 je;
		json_t		*in = json_loads("{\"artifact\": \"g:a:1\", "
				    "\"prepare\": [{\"fetch\": "
				    "\"s3://bucket/k.zip\", \"unpack\": "
				    "\"data/\"}]}", 0, &je);

		snprintf(cf.s3_access_key_id, sizeof(cf.s3_access_key_id),
		    "AK");
		snprintf(cf.s3_secret_access_key,
		    sizeof(cf.s3_secret_access_key), "SK");
		prepare_init(&cf);
		s = service_spec_check(&cf, in, err, sizeof(err));
		json_decref(in);
	}
	if (s == NULL)
		fail_msg("refused: %s", err);
	json_decref(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_render_names),
		cmocka_unit_test(test_render_literals),
		cmocka_unit_test(test_render_errors),
		cmocka_unit_test(test_spec_defaults),
		cmocka_unit_test(test_spec_paths),
		cmocka_unit_test(test_spec_steps),
		cmocka_unit_test(test_spec_s3),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
