/*
 * fuzz_artifact: artifact ids, "g:a:v" from a body or a job's subject
 * (artifact_parse) and three path segments of a URL (artifact_from_parts;
 * here the input split at NUL bytes, which a segment cannot hold).  The
 * parts become directory names under software/: an accepted id must
 * have three parts without '/', "..", a leading '.' or control
 * characters, and say the same g:a:v it was given.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "artifact.h"

int	LLVMFuzzerInitialize(int *, char ***);
int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void	check(const struct artifact_coord *);
static int	part_ok(const char *);

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
	struct artifact_coord	 c;
	char			*s, *p[3], err[512] = "";
	size_t			 i, n;

	/* Three NULs more: missing parts are empty strings. */
	if ((s = calloc(1, size + 3)) == NULL)
		return 0;
	memcpy(s, data, size);
	if (artifact_parse(s, &c, err, sizeof(err)) == 0) {
		if (strcmp(c.gav, s) != 0)
			abort();
		check(&c);
	} else if (err[0] == '\0')
		abort();	/* a refusal always says why */

	for (i = 0, n = 0; i < 3; i++) {
		p[i] = s + n;
		n += strlen(p[i]) + 1;
	}
	err[0] = '\0';
	if (artifact_from_parts(p[0], p[1], p[2], &c, err, sizeof(err)) == 0) {
		if (strcmp(c.group, p[0]) != 0 ||
		    strcmp(c.artifact, p[1]) != 0 ||
		    strcmp(c.version, p[2]) != 0)
			abort();
		check(&c);
	} else if (err[0] == '\0')
		abort();
	free(s);
	return 0;
}

static void
check(const struct artifact_coord *c)
{
	char	dir[PATH_MAX];

	if (!part_ok(c->group) || !part_ok(c->artifact) ||
	    !part_ok(c->version) ||
	    artifact_dir(&cf, c, dir, sizeof(dir)) != 0)
		abort();
}

static int
part_ok(const char *s)
{
	size_t	i, n = strlen(s);

	if (n == 0 || n > ARTIFACT_PART_MAX || s[0] == '.' ||
	    strstr(s, "..") != NULL)
		return 0;
	for (i = 0; i < n; i++)
		if (s[i] == '/' || s[i] == '\\' || s[i] == ':' ||
		    (unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return 0;
	return 1;
}
