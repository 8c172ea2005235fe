/*
 * test_coord: service coordinates, the rules an API client meets first,
 * and the runtime directory each coordinate names.
 */
#include "unit.h"

#include "config.h"
#include "coord.h"

static void
test_good(void **state)
{
	struct coord	c;
	char		err[256];

	(void)state;
	assert_int_equal(coord_parse("1.myservice.borud.fbu", &c, err,
	    sizeof(err)), 0);
	assert_string_equal(c.instance, "1");
	assert_string_equal(c.service, "myservice");
	assert_string_equal(c.user, "borud");
	assert_string_equal(c.cell, "fbu");
	assert_string_equal(c.name, "1.myservice.borud.fbu");
	assert_int_equal(coord_parse("web-a.svc-2.ops.eu-west-1", &c, err,
	    sizeof(err)), 0);
	assert_string_equal(c.instance, "web-a");
}

static void
test_bad(void **state)
{
	static const struct {
		const char	*in;
		const char	*why;
	} cases[] = {
		{ "1.svc.user", "four labels" },
		{ "svc", "four labels" },
		{ "", "four labels" },
		{ "1.svc.user.cell.extra", "more than four" },
		{ "1..user.cell", "service must be 1 to 63" },
		{ ".svc.user.cell", "instance must be 1 to 63" },
		{ "1.svc.user.", "cell must be 1 to 63" },
		{ "1.Svc.user.cell", "service may contain only" },
		{ "1.svc.us_er.cell", "user may contain only" },
		{ "1.svc.user.c/ll", "cell may contain only" },
		{ "1.s vc.user.cell", "service may contain only" },
		{ "1.svc.user.ce\x01ll", "cell may contain only" },
	};
	struct coord	c;
	char		err[256];
	size_t		i;

	(void)state;
	for (i = 0; i < nitems(cases); i++) {
		err[0] = '\0';
		assert_int_equal(coord_parse(cases[i].in, &c, err,
		    sizeof(err)), -1);
		assert_contains(err, cases[i].why);
	}
}

static void
test_label_length(void **state)
{
	struct coord	c;
	char		in[256], err[256];

	(void)state;
	/* 63 is the limit of a label, as in DNS. */
	snprintf(in, sizeof(in), "1.%.*s.u.c", 63,
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
	assert_int_equal(coord_parse(in, &c, err, sizeof(err)), 0);
	snprintf(in, sizeof(in), "1.%.*s.u.c", 64,
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
	assert_int_equal(coord_parse(in, &c, err, sizeof(err)), -1);
	assert_contains(err, "1 to 63");
}

static void
test_runtime_dir(void **state)
{
	struct config	cf;
	struct coord	c;
	char		err[256], out[4096];

	(void)state;
	config_defaults(&cf);
	snprintf(cf.prefix, sizeof(cf.prefix), "/srv/nodee");
	assert_int_equal(coord_parse("1.myservice.borud.fbu", &c, err,
	    sizeof(err)), 0);
	assert_int_equal(coord_runtime_dir(&cf, &c, out, sizeof(out)), 0);
	assert_string_equal(out, "/srv/nodee/runtime/fbu/borud/myservice/1");
	assert_int_equal(coord_runtime_dir(&cf, &c, out, 10), -1);
}

int
main(void)
{
	const struct CMUnitTest	tests[] = {
		cmocka_unit_test(test_good),
		cmocka_unit_test(test_bad),
		cmocka_unit_test(test_label_length),
		cmocka_unit_test(test_runtime_dir),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
