/*
 * fuzz_url: the URL checks a depot, fetch or snapshot URL passes
 * (fetch_url_ok, fetch_url_ok_s3), the s3:// to path-style mapping,
 * the sidecar URL (fetch_url_suffix) and the redaction every message
 * and log line uses (fetch_url_redact), called as artifact.c and
 * prepare.c call them.  Redirects are limited by libcurl's options, not
 * parsed here.  Redaction must never show a password libcurl found, and
 * an accepted URL must have a checksum sidecar URL that is accepted too.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "config.h"
#include "fetch.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void	redact(const char *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct fetch_s3	s3 = { "http://127.0.0.1:9000/s3/",
	    "us-east-1", "AKIAEXAMPLE", "secret", NULL };
	char	*url, why[1024], side[CONFIG_URL_MAX + 600];
	char	out[4096];
	int	ok;

	/* The daemon only ever has a C string: a NUL ends it. */
	if ((url = strndup((const char *)data, size)) == NULL)
		return 0;
	why[0] = '\0';
	ok = fetch_url_ok(url, why, sizeof(why));
	if (!ok && why[0] == '\0')
		abort();	/* a refusal always says why */
	why[0] = '\0';
	if (!fetch_url_ok_s3(url, why, sizeof(why)) && why[0] == '\0')
		abort();
	if (strncasecmp(url, "s3://", 5) == 0)
		(void)fetch_s3_url(&s3, url, out, sizeof(out), why,
		    sizeof(why));
	redact(url, 512);		/* the size of a transfer's */
	redact(url, strlen(url) / 2 + 1);
	/* An install from an accepted URL asks for its sidecar. */
	if (fetch_url_suffix(url, ".sha256", side, sizeof(side)) == 0) {
		redact(side, CONFIG_URL_MAX + 600);
		if (ok && !fetch_url_ok(side, why, sizeof(why))) {
			fprintf(stderr, "sidecar %s: %s\n", side, why);
			abort();
		}
	} else if (ok && strlen(url) < CONFIG_URL_MAX) {
		fprintf(stderr, "no sidecar URL for %s\n", url);
		abort();
	}
	free(url);
	return 0;
}

/* Into a buffer of exactly len bytes, so that a byte past it shows. */
static void
redact(const char *url, size_t len)
{
	CURLU		*u;
	char		*out, *pw = NULL, *needle = NULL;
	const char	*at;

	if ((out = malloc(len)) == NULL)
		return;
	fetch_url_redact(url, out, len);
	if (strlen(out) >= len)
		abort();
	/* ":password@" once in the URL is its user information. */
	if ((u = curl_url()) != NULL && curl_url_set(u, CURLUPART_URL, url,
	    CURLU_NON_SUPPORT_SCHEME) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_PASSWORD, &pw, 0) == CURLUE_OK &&
	    asprintf(&needle, ":%s@", pw) > 0 &&
	    (at = strstr(url, needle)) != NULL &&
	    strstr(at + 1, needle) == NULL && strstr(out, needle) != NULL)
		abort();
	free(needle);
	curl_free(pw);
	curl_url_cleanup(u);
	free(out);
}
