/*
 * auth: token storage and the pure checks the HTTP layer applies to every
 * request.  The checks take strings and return yes or no, so they are
 * tested without a server.
 */
#include <sys/random.h>
#include <sys/stat.h>

#include <arpa/inet.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

#include "auth.h"
#include "log.h"

static int	auth_token_create(const char *, char *, size_t, char *,
		    size_t);
static void	auth_hex(const unsigned char *, size_t, char *, size_t);
static int	auth_host_in_list(const char *, const char *);

/*
 * Reads the API token from path, creating it (random, mode 0600) if the
 * file does not exist.  A token file readable by others is tightened to
 * 0600 with a warning rather than refused: the token is still secret.
 */
int
auth_token_load(const char *path, char *token, size_t tokenlen, char *err,
    size_t errlen)
{
	char		buf[AUTH_TOKEN_LEN + 2];
	struct stat	st;
	ssize_t		n;
	int		fd;

	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1) {
		if (errno == ENOENT)
			return auth_token_create(path, token, tokenlen, err,
			    errlen);
		snprintf(err, errlen, "cannot read token %s: %s", path,
		    strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == 0 && (st.st_mode & 077) != 0) {
		log_warn("auth", "token %s was readable by others; mode set "
		    "to 0600", path);
		if (fchmod(fd, 0600) != 0)
			log_warn("auth", "chmod %s: %s", path, strerror(errno));
	}
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0) {
		snprintf(err, errlen, "cannot read token %s: %s", path,
		    strerror(errno));
		return -1;
	}
	buf[n] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	if (!auth_token_valid(buf)) {
		snprintf(err, errlen, "token file %s is damaged (expected %d "
		    "hex characters): remove it to make a new token", path,
		    AUTH_TOKEN_LEN);
		return -1;
	}
	snprintf(token, tokenlen, "%s", buf);
	return 0;
}

int
auth_token_valid(const char *s)
{
	size_t	i;

	for (i = 0; i < AUTH_TOKEN_LEN; i++)
		if (!isxdigit((unsigned char)s[i]))
			return 0;
	return s[i] == '\0';
}

/*
 * The console's cookie value: a hash of the token, so the cookie is bound
 * to the token (a new token logs every browser out) without being it.
 */
void
auth_session_value(const char *token, char *out, size_t outlen)
{
	unsigned char	digest[32];
	char		input[AUTH_TOKEN_LEN + 32];
	int		n;

	n = snprintf(input, sizeof(input), "nodee-session:%s", token);
	if (n < 0 || gnutls_hash_fast(GNUTLS_DIG_SHA256, input, (size_t)n,
	    digest) != 0) {
		/* Fails closed: an empty value matches no cookie. */
		snprintf(out, outlen, "%s", "");
		return;
	}
	auth_hex(digest, sizeof(digest), out, outlen);
}

/* Constant-time string comparison for secrets. */
int
auth_equal(const char *a, const char *b)
{
	size_t		la = strlen(a), lb = strlen(b), i;
	unsigned char	d;

	d = la != lb;
	for (i = 0; i < la && i < lb; i++)
		d |= (unsigned char)(a[i] ^ b[i]);
	return d == 0;
}

/* "Bearer <token>", the scheme case-insensitive (RFC 9110). */
int
auth_bearer_ok(const char *authorization, const char *token)
{
	if (authorization == NULL ||
	    strncasecmp(authorization, "Bearer ", 7) != 0)
		return 0;
	authorization += 7;
	while (*authorization == ' ')
		authorization++;
	return auth_equal(authorization, token);
}

/*
 * The name part of a Host header value: "[::1]:8080" -> "::1",
 * "Example:80" -> "example".  Returns -1 for a value that is no host.
 */
int
auth_host_name(const char *host, char *out, size_t outlen)
{
	const char	*end;
	size_t		 n, i;

	if (host == NULL || *host == '\0')
		return -1;
	if (*host == '[') {
		if ((end = strchr(host, ']')) == NULL ||
		    (end[1] != '\0' && end[1] != ':'))
			return -1;
		host++;
	} else if ((end = strchr(host, ':')) == NULL)
		end = host + strlen(host);
	n = (size_t)(end - host);
	if (n == 0 || n >= outlen)
		return -1;
	for (i = 0; i < n; i++) {
		if (isspace((unsigned char)host[i]) || host[i] == '/' ||
		    host[i] == '@')
			return -1;
		out[i] = (char)tolower((unsigned char)host[i]);
	}
	out[n] = '\0';
	/* A trailing dot names the same host. */
	if (n > 1 && out[n - 1] == '.')
		out[n - 1] = '\0';
	return 0;
}

/*
 * A browser sends the name it resolved in Host; answering only to names we
 * know defeats DNS rebinding, where a foreign name resolves to 127.0.0.1.
 */
int
auth_host_allowed(const char *host, const char *listen_host,
    const char *allowed)
{
	char		name[256];
	struct in_addr	a4;

	if (auth_host_name(host, name, sizeof(name)) != 0)
		return 0;
	if (strcmp(name, "localhost") == 0 || strcmp(name, "::1") == 0)
		return 1;
	if (inet_pton(AF_INET, name, &a4) == 1 &&
	    (ntohl(a4.s_addr) >> 24) == 127)
		return 1;
	if (listen_host != NULL && strcmp(listen_host, "0.0.0.0") != 0 &&
	    strcmp(listen_host, "::") != 0 &&
	    strcasecmp(name, listen_host) == 0)
		return 1;
	return auth_host_in_list(name, allowed);
}

/*
 * A state-changing request that carries an Origin must come from the page
 * nodee served itself: the same scheme and authority as the Host header.
 * No Origin (curl, scripts) is fine; "null" (sandboxed frames, file://) is
 * not.
 */
int
auth_origin_ok(const char *origin, const char *host, int tls)
{
	const char	*scheme = tls ? "https://" : "http://";
	size_t		 sl = strlen(scheme);

	if (origin == NULL)
		return 1;
	if (host == NULL || strncasecmp(origin, scheme, sl) != 0)
		return 0;
	return strcasecmp(origin + sl, host) == 0;
}

static int
auth_token_create(const char *path, char *token, size_t tokenlen, char *err,
    size_t errlen)
{
	unsigned char	raw[AUTH_TOKEN_LEN / 2];
	char		hex[AUTH_TOKEN_LEN + 2], tmp[4096];
	ssize_t		n;
	int		fd;

	if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw)) {
		snprintf(err, errlen, "getrandom: %s", strerror(errno));
		return -1;
	}
	auth_hex(raw, sizeof(raw), hex, sizeof(hex));
	snprintf(tmp, sizeof(tmp), "%s.new", path);
	(void)unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	    0600);
	if (fd == -1) {
		snprintf(err, errlen, "cannot create token %s: %s", tmp,
		    strerror(errno));
		return -1;
	}
	strcat(hex, "\n");
	n = write(fd, hex, strlen(hex));
	if (n != (ssize_t)strlen(hex) || fsync(fd) != 0) {
		snprintf(err, errlen, "cannot write token %s: %s", tmp,
		    strerror(errno));
		close(fd);
		unlink(tmp);
		return -1;
	}
	close(fd);
	if (rename(tmp, path) != 0) {
		snprintf(err, errlen, "cannot create token %s: %s", path,
		    strerror(errno));
		unlink(tmp);
		return -1;
	}
	hex[AUTH_TOKEN_LEN] = '\0';
	snprintf(token, tokenlen, "%s", hex);
	log_info("auth", "created a new API token in %s", path);
	return 0;
}

static void
auth_hex(const unsigned char *in, size_t n, char *out, size_t outlen)
{
	static const char	digits[] = "0123456789abcdef";
	size_t			i;

	for (i = 0; i < n && 2 * i + 2 < outlen; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * i] = '\0';
}

static int
auth_host_in_list(const char *name, const char *list)
{
	const char	*p = list, *e;
	size_t		 n;

	while (p != NULL && *p != '\0') {
		while (*p == ' ' || *p == ',')
			p++;
		e = p + strcspn(p, ", ");
		n = (size_t)(e - p);
		if (n > 0 && strlen(name) == n && strncasecmp(name, p, n) == 0)
			return 1;
		p = e;
	}
	return 0;
}
