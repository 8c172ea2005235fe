/*
 * fuzz_unzip: arbitrary bytes as an artifact's zip, through the same
 * unzip_extract() call the installer makes (artifact.c): the archive in
 * a file, a new empty staging directory, the configured limits and
 * threads.  Each input gets a fresh directory, removed after.  Whatever
 * the archive, nothing may appear beside the staging directory, and no
 * symlink in an accepted tree may resolve outside it.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "fs.h"
#include "log.h"
#include "unzip.h"

int	LLVMFuzzerInitialize(int *, char ***);
int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static int	progress(void *, uint64_t, uint64_t);
static int	link_inside(const char *, const struct stat *, int,
		    struct FTW *);
static void	beside_empty(void);
static void	cleanup(void);

static struct unzip_limits	lim;
static char			base[PATH_MAX], zip[PATH_MAX + 8];
static char			staging[PATH_MAX + 8];

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct config	cf;
	char		real[PATH_MAX];

	(void)argc;
	(void)argv;
	config_defaults(&cf);
	log_set_level(LOG_LVL_ERROR);
	lim.max_entries = cf.archive_max_entries;
	/* The configured 16 GiB would let one input fill the disk. */
	lim.max_bytes = 64ULL << 20;
	lim.threads = cf.unpack_threads;
	/* tmpfs: unzip_extract ends with syncfs(), cheap only there. */
	snprintf(base, sizeof(base), "%s/nodee-fuzz-unzip.XXXXXX",
	    access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
	/* Resolved, as realpath() gives the links' destinations. */
	if (mkdtemp(base) == NULL || realpath(base, real) == NULL) {
		perror(base);
		exit(1);
	}
	snprintf(base, sizeof(base), "%s", real);
	snprintf(zip, sizeof(zip), "%s/in.zip", base);
	snprintf(staging, sizeof(staging), "%s/staging", base);
	atexit(cleanup);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct unzip_stats	us;
	char			err[1024] = "";
	int			fd;

	if ((fd = open(zip, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0600)) == -1 || write(fd, data, size) != (ssize_t)size ||
	    close(fd) != 0 || mkdir(staging, 0755) != 0) {
		perror(base);
		abort();
	}
	if (unzip_extract(zip, staging, &lim, progress, NULL, &us, err,
	    sizeof(err)) == 0) {
		if (nftw(staging, link_inside, 16, FTW_PHYS) != 0)
			abort();
	} else if (err[0] == '\0')
		abort();	/* a refusal always says why */
	beside_empty();
	if (fs_rmtree(staging) != 0) {
		perror(staging);
		abort();
	}
	return 0;
}

static int
progress(void *arg, uint64_t done, uint64_t total)
{
	(void)arg;
	(void)done;
	(void)total;
	return 0;
}

/* A link that resolves (a dangling one leads nowhere) stays inside. */
static int
link_inside(const char *path, const struct stat *st, int type,
    struct FTW *ftw)
{
	char	real[PATH_MAX];
	size_t	n = strlen(staging);

	(void)st;
	(void)ftw;
	if (type != FTW_SL || realpath(path, real) == NULL)
		return 0;
	if (strncmp(real, staging, n) != 0 || (real[n] != '\0' &&
	    real[n] != '/')) {
		fprintf(stderr, "%s leads out, to %s\n", path, real);
		return -1;
	}
	return 0;
}

/* Only the archive and the staging directory may be in base. */
static void
beside_empty(void)
{
	struct dirent	*de;
	DIR		*d;

	if ((d = opendir(base)) == NULL)
		abort();
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 &&
		    strcmp(de->d_name, "..") != 0 &&
		    strcmp(de->d_name, "in.zip") != 0 &&
		    strcmp(de->d_name, "staging") != 0) {
			fprintf(stderr, "%s/%s was written beside the staging "
			    "directory\n", base, de->d_name);
			abort();
		}
	closedir(d);
}

static void
cleanup(void)
{
	(void)fs_rmtree(base);
}
