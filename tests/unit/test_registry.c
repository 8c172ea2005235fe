/*
 * test_registry: the node's data and ZooKeeper's 1 MiB limit.  The data
 * must always fit (REGISTRY_DATA_MAX): services that do not fit are left
 * out, in order, and the data says how many there are and that the list
 * is cut.  Also how many services fit, typical and worst case, which the
 * README quotes.  And the registry's configuration keys.  The ZooKeeper
 * session itself is tested against real servers in
 * tests/integration/registry.test.js.
 */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "config.h"
#include "machine.h"
#include "registry.h"
#include "unit.h"

static void	test_empty(void **);
static void	test_all_fit(void **);
static void	test_truncated(void **);
static void	test_worst_case(void **);
static void	test_typical(void **);
static void	test_base_too_big(void **);
static void	test_config_keys(void **);

static json_t	*node_base(void);
static json_t	*entry(const char *, const char *, const char *, json_int_t,
		    json_int_t);
static json_t	*services(size_t, int);
static json_t	*decode(const char *, size_t);
static size_t	 fit(size_t, int);

int
main(void)
{
	const struct CMUnitTest	tests[] = {
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_all_fit),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_worst_case),
		cmocka_unit_test(test_typical),
		cmocka_unit_test(test_base_too_big),
		cmocka_unit_test(test_config_keys),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

static void
test_empty(void **state)
{
	json_t	*node = node_base(), *list = json_array(), *o;
	char	*text;
	size_t	 len;

	(void)state;
	text = registry_encode(node, list, REGISTRY_DATA_MAX, &len);
	assert_non_null(text);
	assert_int_equal(len, strlen(text));
	o = decode(text, len);
	assert_int_equal(json_array_size(json_object_get(o, "services")), 0);
	assert_int_equal(json_integer_value(json_object_get(o,
	    "services_total")), 0);
	assert_true(json_is_false(json_object_get(o, "services_truncated")));
	assert_int_equal(json_object_size(json_object_get(o,
	    "service_states")), 0);
	assert_string_equal(json_string_value(json_object_get(o, "instance")),
	    "n1");
	json_decref(o);
	free(text);
	json_decref(node);
	json_decref(list);
}

static void
test_all_fit(void **state)
{
	json_t	*node = node_base(), *list = json_array(), *o, *s;
	char	*text;
	size_t	 len;

	(void)state;
	json_array_append_new(list, entry("1.web.ops.cell", "g:a:1", "running",
	    4242, 3));
	json_array_append_new(list, entry("2.web.ops.cell", "g:a:1", "running",
	    4243, 0));
	json_array_append_new(list, entry("1.db.ops.cell", NULL, "stopped", 0,
	    0));
	text = registry_encode(node, list, REGISTRY_DATA_MAX, &len);
	assert_non_null(text);
	o = decode(text, len);
	s = json_object_get(o, "services");
	assert_int_equal(json_array_size(s), 3);
	assert_true(json_equal(s, list));
	assert_int_equal(json_integer_value(json_object_get(o,
	    "services_total")), 3);
	assert_true(json_is_false(json_object_get(o, "services_truncated")));
	assert_int_equal(json_integer_value(json_object_get(json_object_get(o,
	    "service_states"), "running")), 2);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(o,
	    "service_states"), "stopped")), 1);
	/* A stopped service has no pid and no artifact here: null, not 0. */
	assert_true(json_is_null(json_object_get(json_array_get(s, 2),
	    "pid")));
	assert_true(json_is_null(json_object_get(json_array_get(s, 2),
	    "artifact")));
	json_decref(o);
	free(text);
	json_decref(node);
	json_decref(list);
}

/*
 * Cut at the limit, in order, and only as much as needed: the next entry
 * would not have fitted.  The counts cover every service.
 */
static void
test_truncated(void **state)
{
	json_t	*node = node_base(), *list = services(20000, 0), *o, *s, *next;
	char	*text;
	size_t	 len, kept, max = 100000;

	(void)state;
	text = registry_encode(node, list, max, &len);
	assert_non_null(text);
	assert_true(len <= max);
	o = decode(text, len);
	s = json_object_get(o, "services");
	kept = json_array_size(s);
	assert_true(kept > 0 && kept < 20000);
	assert_true(json_equal(json_array_get(s, 0), json_array_get(list, 0)));
	assert_true(json_equal(json_array_get(s, kept - 1),
	    json_array_get(list, kept - 1)));
	next = json_array_get(list, kept);
	assert_true(len + json_dumpb(next, NULL, 0, JSON_COMPACT) + 1 > max);
	assert_true(json_is_true(json_object_get(o, "services_truncated")));
	assert_int_equal(json_integer_value(json_object_get(o,
	    "services_total")), 20000);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(o,
	    "service_states"), "running")), 20000);
	json_decref(o);
	free(text);
	json_decref(node);
	json_decref(list);
}

/*
 * Longest coordinate (4 labels of 63), longest artifact (3 parts of 128),
 * the longest state and the widest numbers: this many always fit.
 */
static void
test_worst_case(void **state)
{
	size_t	n;

	(void)state;
	n = fit(3000, 1);
	print_message("worst case: %zu services fit in %d bytes\n", n,
	    REGISTRY_DATA_MAX);
	assert_true(n >= 1300);
	assert_true(n < 3000);
}

/* "7.myservice.borud.fbu" running "com.example:hello:1.0.0". */
static void
test_typical(void **state)
{
	size_t	n;

	(void)state;
	n = fit(20000, 0);
	print_message("typical: %zu services fit in %d bytes\n", n,
	    REGISTRY_DATA_MAX);
	assert_true(n >= 6500);
}

static void
test_base_too_big(void **state)
{
	json_t	*node = node_base(), *list = services(1, 0);
	size_t	 len = 0;

	(void)state;
	assert_null(registry_encode(node, list, 100, &len));
	json_decref(node);
	json_decref(list);
}

/* zookeeper: empty is standalone; else host:port list, maybe a chroot. */
static void
test_config_keys(void **state)
{
	static const char *const good[] = { "127.0.0.1:2181",
	    "zk1:2181,zk2:2181,zk3:2181", "zk1.example.com:2181/nodee",
	    "[::1]:2181" };
	static const char *const bad[] = { "zk1", "/chroot", "zk 1:2181",
	    "zk1:2181;rm", "zk1:2181\"" };
	struct config	 cf;
	char		 err[512];
	size_t		 i;

	(void)state;
	config_defaults(&cf);
	assert_string_equal(cf.zookeeper, "");
	assert_int_equal(cf.zookeeper_timeout_ms, 10000);
	assert_int_equal(config_check(&cf, err, sizeof(err)), 0);
	for (i = 0; i < nitems(good); i++) {
		config_defaults(&cf);
		assert_int_equal(config_set(&cf, "zookeeper", good[i], err,
		    sizeof(err)), 0);
		assert_int_equal(config_check(&cf, err, sizeof(err)), 0);
	}
	for (i = 0; i < nitems(bad); i++) {
		config_defaults(&cf);
		assert_int_equal(config_set(&cf, "zookeeper", bad[i], err,
		    sizeof(err)), 0);
		assert_int_equal(config_check(&cf, err, sizeof(err)), -1);
		assert_contains(err, "zookeeper");
		assert_contains(err, "host:port");
	}
	assert_int_equal(config_set(&cf, "zookeeper_timeout_ms", "999", err,
	    sizeof(err)), -1);
	assert_contains(err, "zookeeper_timeout_ms");
	assert_int_equal(config_set(&cf, "zookeeper_timeout_ms", "4000", err,
	    sizeof(err)), 0);
	assert_int_equal(cf.zookeeper_timeout_ms, 4000);
}

/* A node as the registry makes it, machine facts included. */
static json_t *
node_base(void)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:i, s:s, "
	    "s:s, s:I, s:I, s:o}",
	    "instance", "n1", "cell", "cell", "host", "host.example.com",
	    "version", "0.1.0", "status", "up",
	    "console", "http://192.0.2.10:8080/",
	    "api", "http://192.0.2.10:8080/api/v1/", "port", 8080,
	    "pid", 4194304, "prefix", "/var/lib/nodee",
	    "machine_id", "0123456789abcdef0123456789abcdef",
	    "started_at", (json_int_t)1700000000000LL,
	    "updated_at", (json_int_t)1700000000000LL,
	    "machine", machine_facts());
}

static json_t *
entry(const char *coord, const char *artifact, const char *state,
    json_int_t pid, json_int_t restarts)
{
	return json_pack("{s:s, s:o, s:s, s:o, s:I, s:I}",
	    "coordinate", coord,
	    "artifact", artifact ? json_string(artifact) : json_null(),
	    "state", state,
	    "pid", pid > 0 ? json_integer(pid) : json_null(),
	    "since", (json_int_t)1700000000000LL,
	    "restarts", restarts);
}

/* n distinct services, typical or as long as they can be. */
static json_t *
services(size_t n, int worst)
{
	json_t	*list = json_array();
	char	 coord[300], art[400], label[64], part[129];
	size_t	 i;

	memset(label, 'a', 63);
	label[63] = '\0';
	memset(part, 'x', 128);
	part[128] = '\0';
	for (i = 0; i < n; i++) {
		if (worst) {
			snprintf(coord, sizeof(coord), "%06zu%.57s.%s.%s.%s", i,
			    label, label, label, label);
			snprintf(art, sizeof(art), "%s:%s:%s", part, part,
			    part);
			json_array_append_new(list, entry(coord, art,
			    "draining", 4194304, 4294967295LL));
		} else {
			snprintf(coord, sizeof(coord), "%zu.myservice.borud.fbu",
			    i);
			json_array_append_new(list, entry(coord,
			    "com.example:hello:1.0.0", "running", 123456, 0));
		}
	}
	return list;
}

static json_t *
decode(const char *text, size_t len)
{
	json_error_t	 je;
	json_t		*o;

	o = json_loadb(text, len, 0, &je);
	if (o == NULL)
		fail_msg("not JSON: %s", je.text);
	return o;
}

/* How many of n services the encoded data holds. */
static size_t
fit(size_t n, int worst)
{
	json_t	*node = node_base(), *list = services(n, worst), *o;
	char	*text;
	size_t	 len, kept;

	text = registry_encode(node, list, REGISTRY_DATA_MAX, &len);
	assert_non_null(text);
	assert_true(len <= REGISTRY_DATA_MAX);
	o = decode(text, len);
	kept = json_array_size(json_object_get(o, "services"));
	json_decref(o);
	free(text);
	json_decref(node);
	json_decref(list);
	return kept;
}
