/*
 * fuzz_config: the configuration file as the daemon reads it at start
 * (main.c): defaults, config_load_file(), then config_check().  The
 * parser reads only files, so each input is written to a memfd and read
 * back through /proc/self/fd.  A value is checked when it is read so that
 * the daemon never starts with a bad one: every depot it accepts must
 * give artifact URLs that fetch.c will fetch, and its S3 endpoint must
 * be one that fetch.c will sign for.
 */
#include <sys/mman.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "artifact.h"
#include "config.h"
#include "fetch.h"

int	LLVMFuzzerInitialize(int *, char ***);
int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void	depot_ok(const struct config *, const char *);

static int	fd = -1;
static char	path[64];

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if ((fd = memfd_create("nodee.conf", MFD_CLOEXEC)) == -1) {
		perror("memfd_create");
		exit(1);
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct config	cf;
	struct fetch_s3		s3 = { 0 };
	char			err[1024] = "", url[4096];
	size_t			i;

	if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) !=
	    (ssize_t)size)
		abort();
	config_defaults(&cf);
	if (config_load_file(&cf, path, err, sizeof(err)) != 0 ||
	    config_check(&cf, err, sizeof(err)) != 0) {
		if (err[0] == '\0')
			abort();	/* a refusal always says why */
		return 0;
	}
	if (cf.ndepots > CONFIG_DEPOTS_MAX || cf.listen_port == 0 ||
	    cf.listen_port > 65535)
		abort();
	(void)config_listen_is_loopback(&cf);
	depot_ok(&cf, "com.example");
	for (i = 0; i < cf.ndepots; i++)
		depot_ok(&cf, cf.depots[i].group);
	s3.endpoint = cf.s3_endpoint;
	if (cf.s3_endpoint[0] != '\0' && fetch_s3_url(&s3, "s3://b/k", url,
	    sizeof(url), err, sizeof(err)) != 0) {
		fprintf(stderr, "s3_endpoint: %s\n", err);
		abort();
	}
	return 0;
}

/* The URL of an artifact of group g, as an install job makes it. */
static void
depot_ok(const struct config *cf, const char *g)
{
	struct artifact_coord	c;
	char			url[CONFIG_URL_MAX + 600], err[1024];

	if (config_depot_for(cf, g) == NULL)
		return;
	if (artifact_from_parts(g, "hello", "1.0.0", &c, err,
	    sizeof(err)) != 0 ||
	    artifact_url(cf, &c, url, sizeof(url), err, sizeof(err)) != 0)
		abort();
	if (!fetch_url_ok(url, err, sizeof(err))) {
		fprintf(stderr, "depot of %s: %s: %s\n", g, url, err);
		abort();
	}
}
