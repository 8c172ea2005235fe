/*
 * artifact: coordinates (groupId:artifactId:version), their place under
 * PREFIX/software and in the depot, and the install and removal jobs that
 * keep PREFIX/software/<g>/<a>/<v>/ filled with whole, verified,
 * read-only artifacts.
 */
#ifndef NODEE_ARTIFACT_H
#define NODEE_ARTIFACT_H

#include <jansson.h>
#include <sqlite3.h>

#include "config.h"
#include "jobs.h"
#include "nodee.h"

#define ARTIFACT_PART_MAX	128
/* The url an uploaded artifact records: it came from no depot. */
#define ARTIFACT_UPLOAD_URL	"upload"

struct artifact_coord {
	char	group[ARTIFACT_PART_MAX + 1];
	char	artifact[ARTIFACT_PART_MAX + 1];
	char	version[ARTIFACT_PART_MAX + 1];
	char	gav[3 * ARTIFACT_PART_MAX + 3];	/* "g:a:v" */
};

extern const struct job_kind	artifact_job_kinds[];

typedef void	(*artifact_listener)(const char *, int, const char *);

void	 artifact_init(const struct config *);
void	 artifact_on_install(artifact_listener);
int	 artifact_parse(const char *, struct artifact_coord *, char *,
	    size_t);
int	 artifact_from_parts(const char *, const char *, const char *,
	    struct artifact_coord *, char *, size_t);
int	 artifact_dir(const struct config *, const struct artifact_coord *,
	    char *, size_t);
int	 artifact_url(const struct config *, const struct artifact_coord *,
	    char *, size_t, char *, size_t);
json_t	*artifact_get(sqlite3 *, const struct artifact_coord *);
int	 artifact_installed(sqlite3 *, const struct artifact_coord *);
json_t	*artifact_list(sqlite3 *);
json_t	*artifact_users(sqlite3 *, const struct artifact_coord *);
enum nd_rc artifact_submit_install(const struct artifact_coord *,
	    const char *, const char *, json_t **, char *, size_t);
enum nd_rc artifact_submit_upload(const struct artifact_coord *,
	    const char *, const char *, int, int *, json_t **, char *, size_t);
enum nd_rc artifact_submit_remove(const struct artifact_coord *, json_t **,
	    char *, size_t);

#endif
