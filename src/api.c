/*
 * api: the route table and its handlers.  The table is what http.c routes
 * by, and the README's API section lists the same routes.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "embed.h"
#include "machine.h"
#include "nodee.h"
#include "store.h"

static void	api_healthz(struct http_req *, void *);
static void	api_node(struct http_req *, void *);
static void	api_index(struct http_req *, void *);

const struct http_route api_routes[] = {
	{ "GET",	"/healthz",		api_healthz },
	{ "GET",	"/api/v1/node",		api_node },
	{ "GET",	"/",			api_index },
	{ NULL,		NULL,			NULL },
};

static void
api_healthz(struct http_req *r, void *arg)
{
	(void)arg;
	http_body(r, 200, "text/plain; charset=utf-8", "ok\n", 3);
}

static void
api_node(struct http_req *r, void *arg)
{
	struct api_ctx	*ctx = arg;
	int64_t		 now = store_now_ms();

	http_json(r, 200, json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:s, s:s, "
	    "s:o}",
	    "instance", ctx->cf->instance,
	    "cell", ctx->cf->cell,
	    "version", NODEE_VERSION,
	    "pid", (json_int_t)getpid(),
	    "uptime_s", (json_int_t)((now - ctx->started_ms) / 1000),
	    "started_at", (json_int_t)ctx->started_ms,
	    "prefix", ctx->cf->prefix,
	    "listen", ctx->cf->listen,
	    "machine", machine_facts()));
}

/* The console page, embedded from assets/ at build time. */
static void
api_index(struct http_req *r, void *arg)
{
	const struct embed_file	*f;

	(void)arg;
	if ((f = embed_find("assets/index.html")) == NULL) {
		http_problem(r, 500, "the console page is missing from this "
		    "build");
		return;
	}
	u_map_put(r->res->map_header, "Content-Security-Policy",
	    "default-src 'self'; frame-ancestors 'none'");
	http_body(r, 200, "text/html; charset=utf-8", f->data, f->len);
}
