/*
 * http: starts and stops the server, and dispatches every request.
 *
 * Ulfius gets one catch-all endpoint; nodee routes by itself from the table
 * api.c gives it.  That way the checks below run in one fixed order for
 * every path, and a path that exists with another method is told apart
 * (405 with Allow) from one that does not exist (404):
 *
 *   Host allowed? (403) -> login via ?token= -> /api/ authenticated? (401)
 *   -> Origin same as Host on a state-changing request? (403)
 *   -> body within max_body? (413) -> body JSON? (415) -> parses? (400)
 *   -> route (404, 405) -> handler
 *
 * One route takes a body Ulfius must not see: Ulfius keeps every body in
 * memory, and an artifact pushed to POST /api/v1/artifacts/{g}/{a}/{v}
 * can be gigabytes.  Ulfius starts libmicrohttpd with its own access
 * handler and no way to hook the body, so nodee defines MHD_start_daemon
 * (the executable's definition is the one libulfius binds to) and puts
 * http_access in front of Ulfius's handler: the body of such a request
 * goes to a file as it arrives (upload.c), and Ulfius sees an empty one.
 * The checks above still run, in the same order, when the body is over.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "auth.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "store.h"
#include "upload.h"

/*
 * libmicrohttpd's memory for one connection's request line and headers:
 * room for a request the checks below can still answer (414, 431)
 * rather than one it must drop.  Pages are touched only when used.
 */
#define HTTP_POOL_BYTES	(128 * 1024)
#define HTTP_MAX_QUERY	64	/* query parameters; more is 414 */
/*
 * Connections past http_max_connections that only 127.0.0.1 and ::1 may
 * take: when others hold them all (a flood), the operator on the machine
 * and the console through an SSH tunnel still get in.
 */
#define HTTP_LOOPBACK_RESERVE	16
#define HTTP_MAX_HEADERS	64	/* headers; more is 431 */

static struct _u_instance	 http_inst;
static const struct config	*http_cf;
static const struct http_route	*http_routes;
static void			*http_arg;
static char			 http_token[AUTH_TOKEN_LEN + 1];
static char			 http_session[AUTH_TOKEN_LEN + 1];
static char			 http_cookie[32];	/* its name */
static char			*http_tls_key, *http_tls_cert;
static atomic_int		 http_inflight;
static int			 http_running;
static void			(*http_after)(void);
static pthread_mutex_t		 http_stop_mtx = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t		 http_stop_cond = PTHREAD_COND_INITIALIZER;
static int			 http_stopped;

/* What nodee keeps per connection (libmicrohttpd's socket context). */
struct http_conn {
	void	*pending;	/* Ulfius's state of the request in flight */
	int	 upgraded;	/* a WebSocket now: leave its timeout alone */
};

/* Bodies being streamed to disk, one per connection at most. */
struct http_upload {
	struct MHD_Connection	*conn;
	struct upload		 up;
	struct http_upload	*next;
};
static MHD_AccessHandlerCallback	 http_ulfius_handler;
static pthread_mutex_t		 http_uploads_mtx = PTHREAD_MUTEX_INITIALIZER;
static struct http_upload	*http_uploads;
static atomic_int		 http_open;	/* connections */
static __thread struct upload	*http_upload_now;
static __thread struct MHD_Connection	*http_conn_now;

static void	http_utf8_fix(char *);
static int	http_dispatch(const struct _u_request *, struct _u_response *,
		    void *);
static void	http_handle(struct http_req *);
static int	http_authenticated(const struct http_req *);
static int	http_read_body(struct http_req *);
static void	http_route(struct http_req *);
static const char	*http_route_of(const char *);
static void	http_actor(const struct http_req *);
static void	http_upgraded(void);
static int	http_state_changing(const char *);
static const char	*http_reason(int);
static char	*http_read_file(const char *, char *, size_t);
static void	http_mhd_log(void *, const char *, va_list);
static void	http_completed(void *, struct MHD_Connection *, void **,
		    enum MHD_RequestTerminationCode);
static void	*http_stopper(void *);
static unsigned	 http_options(const struct config *, void *,
		    struct MHD_OptionItem *);
static void	*http_uri_logged(void *, const char *, struct MHD_Connection *);
static void	 http_connection(void *, struct MHD_Connection *, void **,
		    enum MHD_ConnectionNotificationCode);
static enum MHD_Result	http_access(void *, struct MHD_Connection *,
		    const char *, const char *, const char *, const char *,
		    size_t *, void **);
static enum MHD_Result	http_accept(void *, const struct sockaddr *,
		    socklen_t);
static struct http_upload	*http_upload_find(struct MHD_Connection *,
		    int);
static int	http_upload_route(const char *, const char *);
static int	http_upload_allowed(struct MHD_Connection *);
static int	 http_stop_server(unsigned);

/*
 * Starts serving on cf->listen.  token is the API token; routes and arg
 * are kept (not copied) until http_stop.
 */
int
http_start(const struct config *cf, const char *token,
    const struct http_route *routes, void *arg, char *err, size_t errlen)
{
	static struct sockaddr_in	 sin;
	static struct sockaddr_in6	 sin6;
	struct MHD_OptionItem		 ops[16];
	unsigned			 flags;
	int				 rc;

	http_cf = cf;
	http_routes = routes;
	http_arg = arg;
	snprintf(http_token, sizeof(http_token), "%s", token);
	auth_session_value(token, http_session, sizeof(http_session));
	/*
	 * Browsers keep cookies by host, not by port: two nodes on one
	 * host (a test cell, the cell page's links) need two names.
	 */
	snprintf(http_cookie, sizeof(http_cookie), "%s_%u", AUTH_COOKIE,
	    cf->listen_port);

	if (cf->tls_cert[0] != '\0') {
		if ((http_tls_cert = http_read_file(cf->tls_cert, err,
		    errlen)) == NULL ||
		    (http_tls_key = http_read_file(cf->tls_key, err,
		    errlen)) == NULL)
			return -1;
	}

	memset(&sin, 0, sizeof(sin));
	memset(&sin6, 0, sizeof(sin6));
	if (cf->listen_ipv6) {
		sin6.sin6_family = AF_INET6;
		sin6.sin6_port = htons((uint16_t)cf->listen_port);
		inet_pton(AF_INET6, cf->listen_host, &sin6.sin6_addr);
		rc = ulfius_init_instance_ipv6(&http_inst, cf->listen_port,
		    &sin6, U_USE_IPV6, NULL);
	} else {
		sin.sin_family = AF_INET;
		sin.sin_port = htons((uint16_t)cf->listen_port);
		if (strcmp(cf->listen_host, "localhost") == 0)
			sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		else
			inet_pton(AF_INET, cf->listen_host, &sin.sin_addr);
		rc = ulfius_init_instance(&http_inst, cf->listen_port, &sin,
		    NULL);
	}
	if (rc != U_OK) {
		snprintf(err, errlen, "cannot initialise the HTTP server");
		return -1;
	}
	/*
	 * One more byte than the limit: Ulfius truncates instead of
	 * refusing, so a body that reaches limit + 1 bytes was too long.
	 */
	http_inst.max_post_body_size = cf->max_body + 1;
	http_inst.allowed_post_processor = U_POST_PROCESS_NONE;
	http_inst.check_utf8 = 0;
	ulfius_add_endpoint_by_val(&http_inst, "*", NULL, "*", 0,
	    http_dispatch, NULL);
	ulfius_set_default_endpoint(&http_inst, http_dispatch, NULL);

	flags = http_options(cf, cf->listen_ipv6 ? (void *)&sin6 :
	    (void *)&sin, ops);

	if (ulfius_start_framework_with_mhd_options(&http_inst, flags,
	    ops) != U_OK) {
		snprintf(err, errlen, "cannot listen on %s: %s (is another "
		    "server using the port?)", cf->listen,
		    errno ? strerror(errno) : "see the log above");
		ulfius_clean_instance(&http_inst);
		return -1;
	}
	http_running = 1;
	log_info("http", "listening on %s://%s", http_tls_cert ? "https" :
	    "http", cf->listen);
	return 0;
}

/*
 * libmicrohttpd's options (ops: room for 16, MHD_OPTION_END last) and
 * flags for listening on addr: nodee's callbacks, the thread pool, the
 * timeouts and limits, TLS.
 */
static unsigned
http_options(const struct config *cf, void *addr, struct MHD_OptionItem *ops)
{
	unsigned	flags;
	int		n = 0;

	ops[n++] = (struct MHD_OptionItem){ MHD_OPTION_EXTERNAL_LOGGER,
	    (intptr_t)http_mhd_log, NULL };
	ops[n++] = (struct MHD_OptionItem){ MHD_OPTION_NOTIFY_COMPLETED,
	    (intptr_t)http_completed, NULL };
	ops[n++] = (struct MHD_OptionItem){ MHD_OPTION_URI_LOG_CALLBACK,
	    (intptr_t)http_uri_logged, NULL };
	ops[n++] = (struct MHD_OptionItem){ MHD_OPTION_NOTIFY_CONNECTION,
	    (intptr_t)http_connection, NULL };
	ops[n++] = (struct MHD_OptionItem){ MHD_OPTION_SOCK_ADDR, 0,
	    addr };
	ops[n++] = (struct MHD_OptionItem){ MHD_OPTION_THREAD_POOL_SIZE,
	    cf->http_threads, NULL };
	/*
	 * Until a request's headers are complete (and between requests) a
	 * connection gets the short timeout; http_access gives it the long
	 * one while its request runs.  With the limits, a slow or abandoned
	 * client costs one slot for a few seconds, and one address cannot
	 * hold them all.
	 */
	ops[n++] = (struct MHD_OptionItem){ MHD_OPTION_CONNECTION_TIMEOUT,
	    cf->http_header_timeout_s, NULL };
	ops[n++] = (struct MHD_OptionItem){ MHD_OPTION_CONNECTION_LIMIT,
	    cf->http_max_connections + HTTP_LOOPBACK_RESERVE, NULL };
	ops[n++] = (struct MHD_OptionItem){ MHD_OPTION_PER_IP_CONNECTION_LIMIT,
	    cf->http_max_per_ip, NULL };
	ops[n++] = (struct MHD_OptionItem){ MHD_OPTION_CONNECTION_MEMORY_LIMIT,
	    HTTP_POOL_BYTES, NULL };
	/*
	 * epoll.  (With epoll, libmicrohttpd 0.9.75 leaves a request too
	 * large for its pool unanswered until the timeout, which is why the
	 * pool is large and the header timeout short; with poll it closes
	 * such a connection at once, but a WebSocket's close then takes
	 * 30 s.)
	 */
	flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
	    MHD_ALLOW_UPGRADE | MHD_USE_ITC | MHD_USE_ERROR_LOG;
	if (cf->listen_ipv6)
		flags |= MHD_USE_IPv6;
	if (http_tls_cert != NULL) {
		flags |= MHD_USE_TLS;
		ops[n++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_KEY,
		    0, http_tls_key };
		ops[n++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_CERT,
		    0, http_tls_cert };
	}
	ops[n++] = (struct MHD_OptionItem){ MHD_OPTION_END, 0, NULL };
	return flags;
}

/*
 * The definition libulfius's call binds to (see the top of the file): for
 * nodee's own server, http_access goes in front of Ulfius's handler; any
 * other caller gets libmicrohttpd's function unchanged.
 */
struct MHD_Daemon *
MHD_start_daemon(unsigned int flags, uint16_t port,
    MHD_AcceptPolicyCallback apc, void *apc_cls,
    MHD_AccessHandlerCallback dh, void *dh_cls, ...)
{
	struct MHD_Daemon	*d;
	va_list			 ap;

	if (dh_cls == &http_inst) {
		http_ulfius_handler = dh;
		dh = http_access;
		if (apc == NULL)
			apc = http_accept;
	}
	va_start(ap, dh_cls);
	d = MHD_start_daemon_va(flags, port, apc, apc_cls, dh, dh_cls, ap);
	va_end(ap);
	return d;
}

/* The last HTTP_LOOPBACK_RESERVE connections are for loopback only. */
static enum MHD_Result
http_accept(void *cls, const struct sockaddr *sa, socklen_t len)
{
	static const unsigned char	 v6lo[16] = { [15] = 1 };
	static struct log_limit		 refused;

	(void)cls;
	if (atomic_load(&http_open) < (int)http_cf->http_max_connections)
		return MHD_YES;
	if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in) &&
	    ((const struct sockaddr_in *)sa)->sin_addr.s_addr ==
	    htonl(INADDR_LOOPBACK))
		return MHD_YES;
	if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6) &&
	    memcmp(&((const struct sockaddr_in6 *)sa)->sin6_addr, v6lo, 16) ==
	    0)
		return MHD_YES;
	log_limited(&refused, 10000, LOG_LVL_WARN, "http", "%d connections "
	    "(http_max_connections): a new one refused", atomic_load(
	    &http_open));
	return MHD_NO;
}

/* Did the server start with http_access in front?  Uploads need it. */
int
http_uploads_work(void)
{
	return http_ulfius_handler != NULL;
}

/*
 * Stops accepting connections at once, lets requests in flight finish
 * (for at most grace_s seconds), then stops the server.
 */
void
http_stop(unsigned grace_s)
{
	struct timespec	ts = { 0, 20 * 1000 * 1000 };
	unsigned	waited_ms = 0;
	MHD_socket	fd;

	if (!http_running)
		return;
	fd = MHD_quiesce_daemon(http_inst.mhd_daemon);
	if (fd != MHD_INVALID_SOCKET)
		close(fd);
	while (atomic_load(&http_inflight) > 0 && waited_ms < grace_s * 1000) {
		nanosleep(&ts, NULL);
		waited_ms += 20;
	}
	if (atomic_load(&http_inflight) > 0)
		log_warn("http", "%d requests still running after %u s; "
		    "stopping anyway", atomic_load(&http_inflight), grace_s);
	if (http_stop_server(grace_s) == 0)
		ulfius_clean_instance(&http_inst);
	http_running = 0;
	free(http_tls_key);
	free(http_tls_cert);
	http_tls_key = http_tls_cert = NULL;
	log_info("http", "stopped");
}

/* fn runs on the HTTP thread at the end of every request. */
void
http_on_completed(void (*fn)(void))
{
	http_after = fn;
}

/*
 * Ulfius waits, with no limit, until every WebSocket it listed has
 * ended, and one whose connection closed before the upgrade never ends
 * (Ulfius 2.7).  So it stops on a thread of its own, given grace_s
 * seconds; -1 (and the server left as it is) when it did not end.
 */
static int
http_stop_server(unsigned grace_s)
{
	struct timespec	ts;
	pthread_t	t;
	int		rc = 0;

	http_stopped = 0;
	if (pthread_create(&t, NULL, http_stopper, NULL) != 0) {
		ulfius_stop_framework(&http_inst);
		return 0;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += grace_s;
	pthread_mutex_lock(&http_stop_mtx);
	while (!http_stopped && rc == 0)
		rc = pthread_cond_timedwait(&http_stop_cond, &http_stop_mtx,
		    &ts);
	pthread_mutex_unlock(&http_stop_mtx);
	if (!http_stopped) {
		log_warn("http", "a WebSocket whose connection closed before "
		    "it opened keeps the HTTP server from stopping (a fault "
		    "of Ulfius 2.7); going on without it");
		pthread_detach(t);
		return -1;
	}
	pthread_join(t, NULL);
	return 0;
}

static void *
http_stopper(void *unused)
{
	(void)unused;
	ulfius_stop_framework(&http_inst);
	pthread_mutex_lock(&http_stop_mtx);
	http_stopped = 1;
	pthread_cond_signal(&http_stop_cond);
	pthread_mutex_unlock(&http_stop_mtx);
	return NULL;
}

/* Sends body as JSON with the given status; takes ownership of body. */
void
http_json(struct http_req *r, int status, json_t *body)
{
	char	*text;

	text = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	if (text == NULL) {
		http_problem(r, 500, "cannot encode the answer as JSON");
		return;
	}
	http_body(r, status, "application/json", text, strlen(text));
	free(text);
}

/* An RFC 9457 problem answer: title from the status, detail as given. */
void
http_problem(struct http_req *r, int status, const char *fmt, ...)
{
	char	 detail[1024], instance[1024], *text;
	json_t	*o;
	va_list	 ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	http_utf8_fix(detail);
	snprintf(instance, sizeof(instance), "%s", r->path ? r->path : "");
	http_utf8_fix(instance);
	o = json_pack("{s:s, s:s, s:i, s:s, s:s}", "type", "about:blank",
	    "title", http_reason(status), "status", status, "detail", detail,
	    "instance", instance);
	if (o == NULL)	/* what http_utf8_fix lets through, jansson may not */
		o = json_pack("{s:s, s:s, s:i, s:s}", "type", "about:blank",
		    "title", http_reason(status), "status", status, "detail",
		    "(the detail is not valid UTF-8)");
	text = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	http_body(r, status, "application/problem+json", text,
	    text ? strlen(text) : 0);
	free(text);
}

/*
 * JSON strings must be UTF-8: a detail quoting a user's bytes, or cut in
 * the middle of a character, gets '?' for each byte that is not.
 */
static void
http_utf8_fix(char *s)
{
	unsigned char	*p = (unsigned char *)s;
	size_t		 n, i;

	while (*p != '\0') {
		if (*p < 0x80) {
			p++;
			continue;
		}
		n = (*p & 0xe0) == 0xc0 && *p >= 0xc2 ? 1 :
		    (*p & 0xf0) == 0xe0 ? 2 : (*p & 0xf8) == 0xf0 &&
		    *p <= 0xf4 ? 3 : 0;
		for (i = 1; i <= n; i++)
			if ((p[i] & 0xc0) != 0x80)
				break;
		if (n == 0 || i <= n) {
			*p++ = '?';
			continue;
		}
		p += n + 1;
	}
}

void
http_body(struct http_req *r, int status, const char *type, const void *data,
    size_t len)
{
	/* Ulfius ignores an empty body, status and all. */
	if (len == 0) {
		ulfius_set_empty_body_response(r->res, (unsigned)status);
		if (status == 204 || status == 304)
			return;
	} else
		ulfius_set_binary_body_response(r->res, (unsigned)status, data,
		    len);
	u_map_put(r->res->map_header, "Content-Type", type);
}

const char *
http_header(const struct http_req *r, const char *name)
{
	return u_map_get_case(r->u->map_header, name);
}

const char *
http_query(const struct http_req *r, const char *name)
{
	return u_map_get(r->u->map_url, name);
}

/*
 * Matches path against pattern segment by segment; ":name" segments match
 * one non-empty segment, which is percent-decoded into a new string in
 * params (the caller frees them).  Returns 1 on a match.
 */
int
http_match(const char *pattern, const char *path, char **params,
    size_t *nparams)
{
	const char	*p = pattern, *s = path, *pe, *se;
	size_t		 n = 0, i, len;

	*nparams = 0;
	while (*p == '/' && *s == '/') {
		p++;
		s++;
		pe = p + strcspn(p, "/");
		se = s + strcspn(s, "/");
		len = (size_t)(se - s);
		if (*p == ':') {
			if (len == 0 || n == HTTP_MAX_PARAMS)
				goto nomatch;
			if ((params[n] = malloc(len + 1)) == NULL)
				goto nomatch;
			if (http_decode(s, len, params[n], len + 1) != 0) {
				free(params[n]);
				goto nomatch;
			}
			n++;
		} else if ((size_t)(pe - p) != len || strncmp(p, s, len) != 0)
			goto nomatch;
		p = pe;
		s = se;
	}
	if (*p != '\0' || *s != '\0')
		goto nomatch;
	*nparams = n;
	return 1;
nomatch:
	for (i = 0; i < n; i++)
		free(params[i]);
	return 0;
}

/*
 * Percent-decodes in[0..len) into out.  Refuses malformed escapes and an
 * encoded NUL, so a decoded parameter is always a whole C string.
 */
int
http_decode(const char *in, size_t len, char *out, size_t outlen)
{
	size_t	i, o = 0;
	int	hi, lo;

	for (i = 0; i < len; i++) {
		if (o + 1 >= outlen)
			return -1;
		if (in[i] != '%') {
			out[o++] = in[i];
			continue;
		}
		if (i + 2 >= len)
			return -1;
		hi = (unsigned char)in[i + 1];
		lo = (unsigned char)in[i + 2];
		hi = hi >= '0' && hi <= '9' ? hi - '0' : (hi | 32) >= 'a' &&
		    (hi | 32) <= 'f' ? (hi | 32) - 'a' + 10 : -1;
		lo = lo >= '0' && lo <= '9' ? lo - '0' : (lo | 32) >= 'a' &&
		    (lo | 32) <= 'f' ? (lo | 32) - 'a' + 10 : -1;
		if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
			return -1;
		out[o++] = (char)(hi * 16 + lo);
		i += 2;
	}
	out[o] = '\0';
	return 0;
}

static int
http_dispatch(const struct _u_request *u, struct _u_response *res,
    void *unused)
{
	struct http_req	r;
	struct timespec	t0, t1;
	size_t		i;

	(void)unused;
	atomic_fetch_add(&http_inflight, 1);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	memset(&r, 0, sizeof(r));
	r.u = u;
	r.res = res;
	r.method = u->http_verb;
	r.path = u->url_path;
	r.upload = http_upload_now;
	u_map_put(res->map_header, "X-Content-Type-Options", "nosniff");
	u_map_put(res->map_header, "Referrer-Policy", "no-referrer");
	u_map_put(res->map_header, "X-Frame-Options", "DENY");
	u_map_put(res->map_header, "Cache-Control", "no-store");
	http_handle(&r);
	store_actor_set(NULL);
	if (res->websocket_handle != NULL && ((struct _websocket_handle *)
	    res->websocket_handle)->websocket_manager_callback != NULL)
		http_upgraded();
	clock_gettime(CLOCK_MONOTONIC, &t1);
	metrics_http(r.method, r.route != NULL ? r.route : http_route_of(r.path),
	    (int)res->status, (double)(t1.tv_sec - t0.tv_sec) +
	    (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	for (i = 0; i < r.nparams; i++)
		free(r.params[i]);
	json_decref(r.body);
	log_debug("http", "%s %s -> %ld", r.method, r.path, res->status);
	atomic_fetch_sub(&http_inflight, 1);
	return U_CALLBACK_COMPLETE;
}

static void
http_handle(struct http_req *r)
{
	const char	*host = http_header(r, "Host");
	const char	*token;
	unsigned	 n;

	if ((n = u_map_count(r->u->map_url)) > HTTP_MAX_QUERY) {
		http_problem(r, 414, "%u query parameters: at most %d", n,
		    HTTP_MAX_QUERY);
		return;
	}
	if ((n = u_map_count(r->u->map_header)) > HTTP_MAX_HEADERS) {
		http_problem(r, 431, "%u headers: at most %d", n,
		    HTTP_MAX_HEADERS);
		return;
	}
	if (!auth_host_allowed(host, http_cf->listen_host,
	    http_cf->allowed_hosts)) {
		http_problem(r, 403, "Host '%s' is not a name of this node; "
		    "add it to allowed_hosts if it is", host ? host : "");
		return;
	}
	if (strcmp(r->path, "/") == 0 && strcmp(r->method, "GET") == 0 &&
	    (token = http_query(r, "token")) != NULL) {
		http_login(r, token, 303);
		return;
	}
	if (strncmp(r->path, "/api/", 5) == 0 && !http_authenticated(r)) {
		u_map_put(r->res->map_header, "WWW-Authenticate",
		    "Bearer realm=\"nodee\"");
		http_problem(r, 401, "this API needs 'Authorization: Bearer "
		    "<token>' (the token is in PREFIX/state/token) or a "
		    "console session");
		return;
	}
	http_actor(r);
	if (http_state_changing(r->method) &&
	    !auth_origin_ok(http_header(r, "Origin"), host,
	    http_tls_cert != NULL)) {
		http_problem(r, 403, "Origin '%s' is not this node's console; "
		    "cross-site requests are refused",
		    http_header(r, "Origin"));
		return;
	}
	if (http_read_body(r) != 0)
		return;
	http_route(r);
}

static int
http_authenticated(const struct http_req *r)
{
	const char	*cookie;

	if (auth_bearer_ok(http_header(r, "Authorization"), http_token))
		return 1;
	cookie = u_map_get(r->u->map_cookie, http_cookie);
	return cookie != NULL && http_session[0] != '\0' &&
	    auth_equal(cookie, http_session);
}

/*
 * The console login: the URL printed at start-up carries the token once
 * (it is traded for the cookie and the browser is sent to "/", so the
 * token leaves the address bar and the history), or the login form posts
 * it (answered 204).  The cookie is HttpOnly and SameSite=Strict.
 */
void
http_login(struct http_req *r, const char *token, int status)
{
	static struct log_limit	refused;

	if (token == NULL || !auth_equal(token, http_token)) {
		u_map_put(r->res->map_header, "WWW-Authenticate",
		    "Bearer realm=\"nodee\"");
		http_problem(r, 401, "the token is wrong: use the URL nodee "
		    "printed at start-up, or the token in PREFIX/state/token");
		log_limited(&refused, 10000, LOG_LVL_INFO, "http",
		    "console login refused: wrong token");
		return;
	}
	ulfius_add_same_site_cookie_to_response(r->res, http_cookie,
	    http_session, NULL, 0, NULL, "/", http_tls_cert != NULL, 1,
	    U_COOKIE_SAME_SITE_STRICT);
	if (status == 303) {
		u_map_put(r->res->map_header, "Location", "/");
		http_body(r, 303, "text/plain; charset=utf-8", "logged in\n",
		    10);
	} else
		http_body(r, status, "text/plain; charset=utf-8", "", 0);
	log_info("http", "console login");
}

/* Logout: the browser is told to forget the cookie at once. */
void
http_logout(struct http_req *r)
{
	ulfius_add_same_site_cookie_to_response(r->res, http_cookie, "",
	    "Thu, 01 Jan 1970 00:00:00 GMT", 0, NULL, "/",
	    http_tls_cert != NULL, 1, U_COOKIE_SAME_SITE_STRICT);
	http_body(r, 204, "text/plain; charset=utf-8", "", 0);
}

/*
 * Whether a request comes from this node's own pages: no Origin (a
 * script, curl) or an Origin naming the Host it was sent to.  Browsers
 * send Origin on every WebSocket, which CORS does not guard.
 */
int
http_same_origin(const struct http_req *r)
{
	return auth_origin_ok(http_header(r, "Origin"), http_header(r,
	    "Host"), http_tls_cert != NULL);
}

/*
 * An embedded file, revalidated by its ETag (304 when the browser has
 * it), under a policy that allows only this origin's scripts and styles
 * and no framing.
 */
void
http_static(struct http_req *r, const char *type, const void *data,
    size_t len, const char *etag)
{
	const char	*inm = http_header(r, "If-None-Match");

	u_map_put(r->res->map_header, "Content-Security-Policy",
	    "default-src 'self'; script-src 'self'; style-src 'self'; "
	    "img-src 'self' data:; connect-src 'self'; object-src 'none'; "
	    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'");
	u_map_put(r->res->map_header, "Cache-Control", "no-cache");
	u_map_put(r->res->map_header, "ETag", etag);
	if (inm != NULL && strstr(inm, etag) != NULL) {
		http_body(r, 304, type, "", 0);
		return;
	}
	http_body(r, 200, type, data, len);
}

/*
 * A body is refused unless it is JSON within max_body.  Forms in
 * particular are refused: a foreign page can post a form without CORS,
 * but cannot send application/json without asking first.
 */
static int
http_read_body(struct http_req *r)
{
	const char	*type;
	json_error_t	 je;
	size_t		 len = r->u->binary_body_length;

	if (len == 0)
		return 0;
	if (len > http_cf->max_body) {
		http_problem(r, 413, "the body is larger than max_body (%zu "
		    "bytes)", http_cf->max_body);
		return -1;
	}
	type = http_header(r, "Content-Type");
	/*
	 * A zip for the upload route that http_access did not take (a path
	 * it could not recognise, such as one with an encoded '/'): the
	 * handler answers for the path, not a complaint about JSON.
	 */
	if (type != NULL && strncasecmp(type, "application/zip", 15) == 0 &&
	    strcmp(r->method, "POST") == 0 &&
	    strncmp(r->path, "/api/v1/artifacts/", 18) == 0)
		return 0;
	if (type == NULL || strncasecmp(type, "application/json", 16) != 0 ||
	    (type[16] != '\0' && type[16] != ';' && type[16] != ' ')) {
		http_problem(r, 415, "the body must be JSON with Content-Type "
		    "application/json, not '%s'", type ? type : "(none)");
		return -1;
	}
	r->body = json_loadb(r->u->binary_body, len, JSON_REJECT_DUPLICATES,
	    &je);
	if (r->body == NULL) {
		http_problem(r, 400, "malformed JSON at line %d, column %d: %s",
		    je.line, je.column, je.text);
		return -1;
	}
	return 0;
}

/*
 * The pattern path would match, for the metrics of a request answered
 * before routing (401, 403); NULL if none.
 */
static const char *
http_route_of(const char *path)
{
	const struct http_route	*rt;
	char			*params[HTTP_MAX_PARAMS];
	size_t			 n, i;

	for (rt = http_routes; rt->method != NULL; rt++)
		if (http_match(rt->pattern, path, params, &n)) {
			for (i = 0; i < n; i++)
				free(params[i]);
			return rt->pattern;
		}
	return NULL;
}

/*
 * The audit trail's "by" for what this request causes: the client's
 * address (from libmicrohttpd: Ulfius keeps only 16 bytes of it, too few
 * for IPv6) and how it proved itself.
 */
static void
http_actor(const struct http_req *r)
{
	const union MHD_ConnectionInfo	*ci;
	struct store_actor		 a;
	const struct sockaddr		*sa = NULL;

	if (!http_authenticated(r))
		return;
	memset(&a, 0, sizeof(a));
	snprintf(a.via, sizeof(a.via), "%s", auth_bearer_ok(http_header(r,
	    "Authorization"), http_token) ? "token" : "cookie");
	if (http_conn_now != NULL && (ci = MHD_get_connection_info(
	    http_conn_now, MHD_CONNECTION_INFO_CLIENT_ADDRESS)) != NULL)
		sa = ci->client_addr;
	if (sa != NULL && sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->
		    sin6_addr, a.addr, sizeof(a.addr));
	else if (sa != NULL && sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr,
		    a.addr, sizeof(a.addr));
	else
		snprintf(a.addr, sizeof(a.addr), "unknown");
	store_actor_set(&a);
}

/* The request on this thread became a WebSocket (see http_completed). */
static void
http_upgraded(void)
{
	const union MHD_ConnectionInfo	*ci;

	if (http_conn_now != NULL && (ci = MHD_get_connection_info(
	    http_conn_now, MHD_CONNECTION_INFO_SOCKET_CONTEXT)) != NULL &&
	    ci->socket_context != NULL)
		((struct http_conn *)ci->socket_context)->upgraded = 1;
}

/* Did the request come with the token or the console's session? */
int
http_authorized(const struct http_req *r)
{
	return http_authenticated(r);
}

static void
http_route(struct http_req *r)
{
	const struct http_route	*rt;
	char			 allow[128] = "";
	char			*params[HTTP_MAX_PARAMS];
	size_t			 n, i;

	for (rt = http_routes; rt->method != NULL; rt++) {
		if (!http_match(rt->pattern, r->path, params, &n))
			continue;
		r->route = rt->pattern;
		/* HEAD is GET without the body (libmicrohttpd drops it). */
		if (strcmp(rt->method, r->method) == 0 ||
		    (strcmp(r->method, "HEAD") == 0 &&
		    strcmp(rt->method, "GET") == 0)) {
			memcpy(r->params, params, n * sizeof(params[0]));
			r->nparams = n;
			rt->fn(r, http_arg);
			return;
		}
		for (i = 0; i < n; i++)
			free(params[i]);
		if (strstr(allow, rt->method) == NULL &&
		    strlen(allow) + strlen(rt->method) + 3 < sizeof(allow)) {
			if (allow[0] != '\0')
				strcat(allow, ", ");
			strcat(allow, rt->method);
		}
	}
	if (allow[0] != '\0') {
		u_map_put(r->res->map_header, "Allow", allow);
		http_problem(r, 405, "%s is not allowed on %s; allowed: %s",
		    r->method, r->path, allow);
		return;
	}
	http_problem(r, 404, "no such path: %s", r->path);
}

static int
http_state_changing(const char *method)
{
	return strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0 &&
	    strcmp(method, "OPTIONS") != 0;
}

static const char *
http_reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 204: return "No Content";
	case 303: return "See Other";
	case 304: return "Not Modified";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 409: return "Conflict";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 415: return "Unsupported Media Type";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 503: return "Service Unavailable";
	case 507: return "Insufficient Storage";
	default: return "Error";
	}
}

/* Reads a whole PEM file into a new NUL-terminated string. */
static char *
http_read_file(const char *path, char *err, size_t errlen)
{
	char	*buf = NULL;
	size_t	 len = 0;
	ssize_t	 n;
	int	 fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		goto fail;
	for (;;) {
		char	*nb;

		if ((nb = realloc(buf, len + 65536 + 1)) == NULL)
			goto fail;
		buf = nb;
		if ((n = read(fd, buf + len, 65536)) < 0)
			goto fail;
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > 1024 * 1024) {
			errno = EFBIG;
			goto fail;
		}
	}
	close(fd);
	buf[len] = '\0';
	return buf;
fail:
	snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
	if (fd != -1)
		close(fd);
	free(buf);
	return NULL;
}

/*
 * libmicrohttpd's messages, at most one line per kind (its format
 * string) every 10 s with a count: a flood of dropped connections must
 * not become a flood of log lines.
 */
static void
http_mhd_log(void *cls, const char *fmt, va_list ap)
{
	static struct {
		_Atomic(const char *)	fmt;
		struct log_limit	lim;
	}		kinds[16];
	const char	*none;
	char		line[512];
	size_t		n, i;

	(void)cls;
	vsnprintf(line, sizeof(line), fmt, ap);
	n = strlen(line);
	while (n > 0 && line[n - 1] == '\n')
		line[--n] = '\0';
	for (i = 0; i < 15; i++) {
		none = NULL;	/* a free slot, or the one fmt already has */
		if (atomic_compare_exchange_strong(&kinds[i].fmt, &none, fmt) ||
		    none == fmt)
			break;
	}
	log_limited(&kinds[i].lim, 10000, LOG_LVL_WARN, "mhd", "%s", line);
}

/*
 * Ulfius's per-request state is made when the request line is in (its
 * URI logger) and freed when the request completes.  libmicrohttpd
 * 0.9.75 never completes a request whose headers overflow its memory
 * (it answers 431 and closes): each such request leaked some 86 KB.
 * So each connection remembers the state of its request in flight
 * (socket context), and its close frees what completion did not.
 */
static void *
http_uri_logged(void *cls, const char *uri, struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo	*ci;
	void				*con_cls;

	con_cls = ulfius_uri_logger(cls, uri);
	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	if (ci != NULL && ci->socket_context != NULL)
		((struct http_conn *)ci->socket_context)->pending = con_cls;
	return con_cls;
}

static void
http_connection(void *cls, struct MHD_Connection *c, void **socket_context,
    enum MHD_ConnectionNotificationCode toe)
{
	struct http_conn	*hc;

	(void)cls;
	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		atomic_fetch_add(&http_open, 1);
		*socket_context = calloc(1, sizeof(struct http_conn));
		return;
	}
	atomic_fetch_sub(&http_open, 1);
	if ((hc = *socket_context) == NULL)
		return;
	if (hc->pending != NULL)	/* a request that never completed */
		mhd_request_completed(&http_inst, c, &hc->pending,
		    MHD_REQUEST_TERMINATED_WITH_ERROR);
	free(hc);
	*socket_context = NULL;
}

/* The end of a request: nodee's hook, then Ulfius's own bookkeeping. */
static void
http_completed(void *cls, struct MHD_Connection *c, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	const union MHD_ConnectionInfo	*ci;
	struct http_upload		*h;
	struct http_conn		*hc;

	if ((h = http_upload_find(c, 1)) != NULL) {
		upload_close(&h->up);
		free(h);
	}
	if (http_after != NULL)
		http_after();
	mhd_request_completed(cls, c, con_cls, toe);
	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	hc = ci != NULL ? ci->socket_context : NULL;
	if (hc != NULL)
		hc->pending = NULL;
	/*
	 * Waiting for the next request: the short timeout again.  Not for
	 * a WebSocket: libmicrohttpd then keeps its closed connection until
	 * that timeout.
	 */
	if (hc != NULL && !hc->upgraded && toe ==
	    MHD_REQUEST_TERMINATED_COMPLETED_OK)
		(void)MHD_set_connection_option(c,
		    MHD_CONNECTION_OPTION_TIMEOUT, http_cf->http_header_timeout_s);
}

/*
 * In front of Ulfius's handler.  libmicrohttpd calls it once when the
 * headers are in, once per piece of body, and once when the body is over.
 * The body of an upload is taken here (and reported consumed); at the
 * end, Ulfius runs the request with the upload in http_upload_now, which
 * http_dispatch hands to the handler through r->upload.
 */
static enum MHD_Result
http_access(void *cls, struct MHD_Connection *c, const char *url,
    const char *method, const char *version, const char *data, size_t *size,
    void **con_cls)
{
	struct http_upload	*h;
	enum MHD_Result		 rc;

	http_conn_now = c;	/* for the audit trail's client address */
	if (*size == 0) {
		/* The headers are in: the request gets the long timeout. */
		(void)MHD_set_connection_option(c, MHD_CONNECTION_OPTION_TIMEOUT,
		    http_cf->http_timeout_s);
		if ((h = http_upload_find(c, 0)) == NULL)
			return http_ulfius_handler(cls, c, url, method, version,
			    data, size, con_cls);
		http_upload_now = &h->up;
		rc = http_ulfius_handler(cls, c, url, method, version, data,
		    size, con_cls);
		http_upload_now = NULL;
		return rc;
	}
	if ((h = http_upload_find(c, 0)) == NULL) {
		if (!http_upload_route(method, url))
			return http_ulfius_handler(cls, c, url, method, version,
			    data, size, con_cls);
		if ((h = calloc(1, sizeof(*h))) == NULL)
			return MHD_NO;
		h->conn = c;
		if (http_upload_allowed(c)) {
			char	tmp[PATH_MAX + 8];

			snprintf(tmp, sizeof(tmp), "%s/tmp", http_cf->prefix);
			upload_open(&h->up, tmp, http_cf->download_max);
		} else
			upload_refuse(&h->up);
		pthread_mutex_lock(&http_uploads_mtx);
		h->next = http_uploads;
		http_uploads = h;
		pthread_mutex_unlock(&http_uploads_mtx);
	}
	upload_write(&h->up, data, *size);
	*size = 0;
	return MHD_YES;
}

/* The upload of c, or NULL; with unlink, taken off the list too. */
static struct http_upload *
http_upload_find(struct MHD_Connection *c, int unlink)
{
	struct http_upload	**pp, *h;

	pthread_mutex_lock(&http_uploads_mtx);
	for (pp = &http_uploads; (h = *pp) != NULL; pp = &h->next)
		if (h->conn == c) {
			if (unlink)
				*pp = h->next;
			break;
		}
	pthread_mutex_unlock(&http_uploads_mtx);
	return h;
}

/* POST /api/v1/artifacts/{g}/{a}/{v}: three non-empty segments. */
static int
http_upload_route(const char *method, const char *url)
{
	static const char	 base[] = "/api/v1/artifacts/";
	const char		*p;
	size_t			 n;
	int			 segs = 0;

	if (strcmp(method, "POST") != 0 ||
	    strncmp(url, base, sizeof(base) - 1) != 0)
		return 0;
	for (p = url + sizeof(base) - 1;; p++) {
		if ((n = strcspn(p, "/?")) == 0)
			return 0;
		segs++;
		p += n;
		if (*p != '/')
			break;
	}
	return segs == 3;
}

/*
 * The checks of http_handle that decide whether bytes may reach the disk
 * at all (Host, credentials, Origin); the request gets its answer from
 * http_handle itself when the body is over.
 */
static int
http_upload_allowed(struct MHD_Connection *c)
{
	const char	*host, *cookie;

	host = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Host");
	if (!auth_host_allowed(host, http_cf->listen_host,
	    http_cf->allowed_hosts))
		return 0;
	if (!auth_origin_ok(MHD_lookup_connection_value(c, MHD_HEADER_KIND,
	    "Origin"), host, http_tls_cert != NULL))
		return 0;
	if (auth_bearer_ok(MHD_lookup_connection_value(c, MHD_HEADER_KIND,
	    "Authorization"), http_token))
		return 1;
	cookie = MHD_lookup_connection_value(c, MHD_COOKIE_KIND, http_cookie);
	return cookie != NULL && http_session[0] != '\0' &&
	    auth_equal(cookie, http_session);
}
