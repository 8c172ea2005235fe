/*
 * wsc: a WebSocket client (RFC 6455) just big enough for the CLI.  libcurl
 * 7.88 has no WebSocket API, but it makes the connection, TLS included
 * (CURLOPT_CONNECT_ONLY); wsc sends the upgrade request over it, checks
 * the 101 and its Sec-WebSocket-Accept, then reads frames: text messages
 * (fragments joined) go to the caller, pings get a pong, a close ends the
 * stream.  Frames the client sends are masked, as the RFC requires.
 */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

#include "wsc.h"

#define WSC_HEAD_MAX	16384
#define WSC_MSG_MAX	(16u << 20)
#define WSC_GUID	"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

static int	wsc_send(struct wsc *, const void *, size_t);
static int	wsc_fill(struct wsc *, size_t, char *, size_t);
static int	wsc_frame(struct wsc *, int, const void *, size_t);
static int	wsc_accept(const char *, char *, size_t);
static char	*wsc_header(char *, const char *);

/*
 * Connects to base (http[s]://host:port[/prefix]) and asks to upgrade
 * path.  0 when the stream is open; -1 with err otherwise, and when the
 * daemon answered something else, *status and *body (the caller frees)
 * are its answer.
 */
int
wsc_open(struct wsc *w, const char *base, const char *path,
    const char *token, long *status, char **body, char *err, size_t errlen)
{
	unsigned char	 nonce[16];
	gnutls_datum_t	 in = { nonce, sizeof(nonce) }, key = { NULL, 0 };
	char		 url[4096], req[8192], want[64], *end, *got, *hdrs;
	const char	*host, *slash;
	size_t		 hostlen, clen;
	CURLcode	 rc;

	memset(w, 0, sizeof(*w));
	*status = 0;
	*body = NULL;
	w->fd = CURL_SOCKET_BAD;
	if ((host = strstr(base, "://")) == NULL) {
		snprintf(err, errlen, "%s is not an http:// or https:// URL",
		    base);
		return -1;
	}
	host += 3;
	slash = strchr(host, '/');
	hostlen = slash ? (size_t)(slash - host) : strlen(host);
	snprintf(url, sizeof(url), "%s%s", base, path);
	if ((w->h = curl_easy_init()) == NULL) {
		snprintf(err, errlen, "cannot initialise libcurl");
		return -1;
	}
	curl_easy_setopt(w->h, CURLOPT_URL, url);
	curl_easy_setopt(w->h, CURLOPT_CONNECT_ONLY, 1L);
	curl_easy_setopt(w->h, CURLOPT_CONNECTTIMEOUT, 10L);
	curl_easy_setopt(w->h, CURLOPT_NOSIGNAL, 1L);
	if ((rc = curl_easy_perform(w->h)) != CURLE_OK ||
	    curl_easy_getinfo(w->h, CURLINFO_ACTIVESOCKET, &w->fd) !=
	    CURLE_OK || w->fd == CURL_SOCKET_BAD) {
		snprintf(err, errlen, "%s", curl_easy_strerror(rc));
		return -1;
	}
	if (gnutls_rnd(GNUTLS_RND_NONCE, nonce, sizeof(nonce)) != 0 ||
	    gnutls_base64_encode2(&in, &key) != 0) {
		snprintf(err, errlen, "cannot make a WebSocket key");
		return -1;
	}
	snprintf(req, sizeof(req), "GET %s%s HTTP/1.1\r\nHost: %.*s\r\n"
	    "Upgrade: websocket\r\nConnection: Upgrade\r\n"
	    "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: %.*s\r\n"
	    "%s%s%s\r\n", slash ? slash : "", path, (int)hostlen, host,
	    (int)key.size, (char *)key.data, token[0] ? "Authorization: "
	    "Bearer " : "", token, token[0] ? "\r\n" : "");
	if (wsc_accept((char *)key.data, want, sizeof(want)) != 0) {
		gnutls_free(key.data);
		snprintf(err, errlen, "cannot compute the WebSocket accept");
		return -1;
	}
	gnutls_free(key.data);
	if (wsc_send(w, req, strlen(req)) != 0) {
		snprintf(err, errlen, "cannot send the upgrade request: %s",
		    strerror(errno));
		return -1;
	}
	/* The answer's head, then (not 101) its body, for the problem. */
	for (;;) {
		if (w->len > 0 && (end = memmem(w->buf, w->len, "\r\n\r\n",
		    4)) != NULL)
			break;
		if (w->len >= WSC_HEAD_MAX || wsc_fill(w, w->len + 1, err,
		    errlen) != 0) {
			if (w->len >= WSC_HEAD_MAX)
				snprintf(err, errlen, "the answer's head is too "
				    "long");
			return -1;
		}
	}
	*end = '\0';
	hdrs = (char *)w->buf;
	if (sscanf(hdrs, "HTTP/1.%*d %ld", status) != 1) {
		snprintf(err, errlen, "not an HTTP answer");
		return -1;
	}
	clen = (size_t)(end + 4 - (char *)w->buf);
	if (*status != 101) {
		got = wsc_header(hdrs, "Content-Length");
		if (got != NULL && (size_t)atol(got) < WSC_HEAD_MAX)
			(void)wsc_fill(w, clen + (size_t)atol(got), err,
			    errlen);
		*body = strndup((char *)w->buf + clen, w->len - clen);
		snprintf(err, errlen, "the daemon answered %ld", *status);
		return -1;
	}
	if ((got = wsc_header(hdrs, "Sec-WebSocket-Accept")) == NULL ||
	    strcmp(got, want) != 0) {
		snprintf(err, errlen, "the daemon's Sec-WebSocket-Accept is "
		    "wrong");
		return -1;
	}
	memmove(w->buf, w->buf + clen, w->len - clen);
	w->len -= clen;
	return 0;
}

/*
 * The next text message: 1 with *text (the caller frees, NUL-terminated)
 * and *len; 0 when the daemon closed the stream; -1 with err.
 */
int
wsc_read(struct wsc *w, char **text, size_t *len, char *err, size_t errlen)
{
	uint64_t	 plen;
	size_t		 head, i;
	unsigned char	*p, op, fin, mask[4];
	char		*m;

	for (;;) {
		if (wsc_fill(w, 2, err, errlen) != 0) {
			if (err[0] != '\0')
				return -1;
			if (w->len == 0)
				return 0;
			snprintf(err, errlen, "the stream ended inside a frame");
			return -1;
		}
		p = w->buf;
		fin = p[0] & 0x80;
		op = p[0] & 0x0f;
		plen = p[1] & 0x7f;
		head = 2;
		if (plen == 126)
			head = 4;
		else if (plen == 127)
			head = 10;
		if (p[1] & 0x80)
			head += 4;
		if (wsc_fill(w, head, err, errlen) != 0)
			return -1;
		p = w->buf;
		if (plen == 126)
			plen = (uint64_t)p[2] << 8 | p[3];
		else if (plen == 127)
			for (plen = 0, i = 2; i < 10; i++)
				plen = plen << 8 | p[i];
		if (plen > WSC_MSG_MAX || w->msglen + plen > WSC_MSG_MAX) {
			snprintf(err, errlen, "a message of more than %u bytes",
			    WSC_MSG_MAX);
			return -1;
		}
		if (wsc_fill(w, head + (size_t)plen, err, errlen) != 0)
			return -1;
		p = w->buf;
		if (p[1] & 0x80) {
			memcpy(mask, p + head - 4, 4);
			for (i = 0; i < plen; i++)
				p[head + i] ^= mask[i % 4];
		}
		if (op == 0x8) {	/* close: answer it, the stream ends */
			(void)wsc_frame(w, 0x8, p + head, plen > 2 ? 2 :
			    (size_t)plen);
			return 0;
		}
		if (op == 0x9 && wsc_frame(w, 0xa, p + head, (size_t)plen) !=
		    0) {
			snprintf(err, errlen, "cannot answer a ping");
			return -1;
		}
		if (op <= 0x2) {	/* continuation, text, binary */
			if ((m = realloc(w->msg, w->msglen + plen + 1)) ==
			    NULL) {
				snprintf(err, errlen, "out of memory");
				return -1;
			}
			memcpy(m + w->msglen, p + head, (size_t)plen);
			w->msglen += plen;
			m[w->msglen] = '\0';
			w->msg = m;
		}
		memmove(w->buf, w->buf + head + plen, w->len - head - plen);
		w->len -= head + (size_t)plen;
		if (op <= 0x2 && fin) {
			*text = w->msg;
			*len = w->msglen;
			w->msg = NULL;
			w->msglen = 0;
			return 1;
		}
	}
}

void
wsc_close(struct wsc *w)
{
	if (w->h != NULL)
		curl_easy_cleanup(w->h);
	free(w->buf);
	free(w->msg);
	memset(w, 0, sizeof(*w));
}

static int
wsc_send(struct wsc *w, const void *data, size_t len)
{
	const char	*p = data;
	struct pollfd	 pfd;
	size_t		 n;
	CURLcode	 rc;

	while (len > 0) {
		rc = curl_easy_send(w->h, p, len, &n);
		if (rc == CURLE_AGAIN) {
			pfd.fd = w->fd;
			pfd.events = POLLOUT;
			if (poll(&pfd, 1, 10000) <= 0) {
				errno = ETIMEDOUT;
				return -1;
			}
			continue;
		}
		if (rc != CURLE_OK) {
			errno = EIO;
			return -1;
		}
		p += n;
		len -= n;
	}
	return 0;
}

/*
 * Reads until w->buf holds at least want bytes.  -1 when the stream ends
 * first: err empty when the daemon closed it, else why.
 */
static int
wsc_fill(struct wsc *w, size_t want, char *err, size_t errlen)
{
	struct pollfd	 pfd;
	unsigned char	*b;
	size_t		 n;
	CURLcode	 rc;

	err[0] = '\0';
	while (w->len < want) {
		if (w->cap - w->len < 16384) {
			if ((b = realloc(w->buf, w->cap + 65536)) == NULL) {
				snprintf(err, errlen, "out of memory");
				return -1;
			}
			w->buf = b;
			w->cap += 65536;
		}
		rc = curl_easy_recv(w->h, w->buf + w->len, w->cap - w->len,
		    &n);
		if (rc == CURLE_AGAIN) {
			pfd.fd = w->fd;
			pfd.events = POLLIN;
			if (poll(&pfd, 1, -1) == -1 && errno != EINTR) {
				snprintf(err, errlen, "poll: %s",
				    strerror(errno));
				return -1;
			}
			continue;
		}
		if (rc != CURLE_OK) {
			snprintf(err, errlen, "%s", curl_easy_strerror(rc));
			return -1;
		}
		if (n == 0)
			return -1;	/* closed */
		w->len += n;
	}
	return 0;
}

/* A control frame from the client (masked): pong, close. */
static int
wsc_frame(struct wsc *w, int op, const void *payload, size_t len)
{
	unsigned char	f[2 + 4 + 125];
	const unsigned char *p = payload;
	size_t		i;

	if (len > 125)
		len = 125;
	f[0] = (unsigned char)(0x80 | op);
	f[1] = (unsigned char)(0x80 | len);
	if (gnutls_rnd(GNUTLS_RND_NONCE, f + 2, 4) != 0)
		return -1;
	for (i = 0; i < len; i++)
		f[6 + i] = p[i] ^ f[2 + i % 4];
	return wsc_send(w, f, 6 + len);
}

/* base64(SHA-1(key GUID)), the answer a server must give to key. */
static int
wsc_accept(const char *key, char *out, size_t outlen)
{
	unsigned char	 d[20];
	char		 in[128];
	gnutls_datum_t	 b = { d, sizeof(d) }, r = { NULL, 0 };

	snprintf(in, sizeof(in), "%s%s", key, WSC_GUID);
	if (gnutls_hash_fast(GNUTLS_DIG_SHA1, in, strlen(in), d) != 0 ||
	    gnutls_base64_encode2(&b, &r) != 0)
		return -1;
	snprintf(out, outlen, "%.*s", (int)r.size, (char *)r.data);
	gnutls_free(r.data);
	return 0;
}

/* The value of header name in an answer's head (NUL-terminated), cut. */
static char *
wsc_header(char *head, const char *name)
{
	char	*line, *v;
	size_t	 n = strlen(name);

	for (line = strstr(head, "\r\n"); line != NULL;
	    line = strstr(line, "\r\n")) {
		line += 2;
		if (strncasecmp(line, name, n) != 0 || line[n] != ':')
			continue;
		v = line + n + 1;
		v += strspn(v, " \t");
		v[strcspn(v, "\r\n")] = '\0';
		return v;
	}
	return NULL;
}
