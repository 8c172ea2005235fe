/*
 * fuzz_coord: service coordinates as the API takes them from a URL path
 * (api.c, stream.c) and the supervisor from the store.  A coordinate
 * becomes four directory names, so an accepted one must be exactly the
 * input, four labels of [a-z0-9-], and make a runtime directory path.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "coord.h"

int	LLVMFuzzerInitialize(int *, char ***);
int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static int	label_ok(const char *);

static struct config	cf;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	config_defaults(&cf);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct coord	c;
	char		*s, err[512] = "", dir[PATH_MAX];

	/* The daemon only ever has a C string: a NUL ends it. */
	if ((s = strndup((const char *)data, size)) == NULL)
		return 0;
	if (coord_parse(s, &c, err, sizeof(err)) == 0) {
		if (strcmp(c.name, s) != 0 || !label_ok(c.instance) ||
		    !label_ok(c.service) || !label_ok(c.user) ||
		    !label_ok(c.cell) ||
		    coord_runtime_dir(&cf, &c, dir, sizeof(dir)) != 0)
			abort();
	} else if (err[0] == '\0')
		abort();	/* a refusal always says why */
	free(s);
	return 0;
}

static int
label_ok(const char *l)
{
	size_t	n = strlen(l);

	return n >= 1 && n <= COORD_LABEL_MAX &&
	    strspn(l, "abcdefghijklmnopqrstuvwxyz0123456789-") == n;
}
