/*
 * service: start specs (validation and defaults), services as the API
 * shows them (read from the store), and their logs.  The supervisor
 * (sup.c) owns the processes; this module only reads and checks.
 */
#ifndef NODEE_SERVICE_H
#define NODEE_SERVICE_H

#include <sys/types.h>

#include <stdint.h>

#include <jansson.h>
#include <sqlite3.h>

#include "config.h"
#include "coord.h"
#include "rundir.h"

json_t	*service_spec_check(const struct config *, const json_t *, char *,
	    size_t);
int	 service_signal(const char *);
int	 service_cap_bit(const char *);
uint64_t service_caps(const json_t *);
int	 service_only_keys(const json_t *, const char *,
	    const char *const *, char *, size_t);
json_t	*service_get(sqlite3 *, const char *);
json_t	*service_list(sqlite3 *);
json_t	*service_runs(sqlite3 *, const char *, int64_t, int);
char	*service_log_tail(const struct config *, const struct coord *,
	    const char *, long, size_t *, struct rundir_pos *, char *,
	    size_t);

#endif
