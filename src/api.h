/*
 * api: the REST handlers and the console's page.  They validate input and
 * answer from the store; they never fork, download or wait on a child.
 */
#ifndef NODEE_API_H
#define NODEE_API_H

#include <stdint.h>

#include "config.h"
#include "http.h"

struct api_ctx {
	const struct config	*cf;
	int64_t			 started_ms;
};

extern const struct http_route	api_routes[];

#endif
