/*
 * http: the HTTP server (Ulfius on GNU libmicrohttpd, epoll and a thread
 * pool) and everything every request goes through before a handler sees
 * it: Host check, login, authentication, Origin check, body limits and
 * JSON parsing, routing with 404 and 405.  Handlers live in api.c.
 */
#ifndef NODEE_HTTP_H
#define NODEE_HTTP_H

#include <jansson.h>
#include <ulfius.h>

#include "config.h"

struct upload;

#define HTTP_MAX_PARAMS	8

struct http_req {
	const struct _u_request	*u;
	struct _u_response	*res;
	const char		*method;
	const char		*path;
	char			*params[HTTP_MAX_PARAMS];	/* decoded */
	size_t			 nparams;
	json_t			*body;	/* parsed JSON body or NULL */
	struct upload		*upload; /* a body streamed to disk, or NULL */
	const char		*route;	/* the pattern that matched, or NULL */
};

typedef void	(*http_handler)(struct http_req *, void *);

struct http_route {
	const char	*method;
	const char	*pattern;	/* "/api/v1/jobs/:id" */
	http_handler	 fn;
};

int	 http_start(const struct config *, const char *,
	    const struct http_route *, void *, char *, size_t);
void	 http_stop(unsigned);
void	 http_on_completed(void (*)(void));
void	 http_json(struct http_req *, int, json_t *);
void	 http_problem(struct http_req *, int, const char *, ...)
	    __attribute__((format(printf, 3, 4)));
void	 http_body(struct http_req *, int, const char *, const void *,
	    size_t);
void	 http_login(struct http_req *, const char *, int);
void	 http_logout(struct http_req *);
int	 http_same_origin(const struct http_req *);
int	 http_uploads_work(void);
int	 http_authorized(const struct http_req *);
void	 http_static(struct http_req *, const char *, const void *, size_t,
	    const char *);
const char	*http_header(const struct http_req *, const char *);
const char	*http_query(const struct http_req *, const char *);
int	 http_match(const char *, const char *, char **, size_t *);
int	 http_decode(const char *, size_t, char *, size_t);

#endif
