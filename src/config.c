/*
 * config: the table of keys, their parsers and the three sources (file,
 * environment, flags).  The table is the single list of keys: the file
 * parser, the environment loader and the documentation all follow it
 * (config_doc() prints it for doc/nodee.8, README.md and conf/nodee.conf,
 * so those cannot drift from the code).
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "config.h"
#include "fetch.h"

/* Wider comment lines in conf/nodee.conf are wrapped. */
#define CONFIG_DOC_WIDTH	76

enum config_type {
	CT_STRING,
	CT_BOOL,
	CT_SIZE,
	CT_UINT,
	CT_LEVEL,
	CT_LISTEN,
	CT_LABEL,	/* cell: [a-z0-9-] */
	CT_NAME,	/* instance: host-name characters */
	CT_URL,		/* http or https */
	CT_DEPOT,	/* depot.<groupId>: a family of keys, see config_set */
};

/*
 * def is the default as one would write it in the file ("" when empty);
 * def_doc, when set, says how a default that is computed at start-up is
 * found.  doc is one line, ASCII, a fragment without a final period;
 * `backquoted` parts are literal text (code in Markdown, bold in roff).
 */
struct config_key {
	const char		*name;
	enum config_type	 type;
	size_t			 offset;
	size_t			 size;
	unsigned long long	 min, max;
	const char		*def;
	const char		*def_doc;
	const char		*doc;
};

#define F(field)	offsetof(struct config, field), \
			    sizeof(((struct config *)0)->field)

static const struct config_key config_keys[] = {
	{ "prefix", CT_STRING, F(prefix), 0, 0, "/var/lib/nodee", NULL,
	    "nodee's directory tree: `software/`, `runtime/`, `state/` and "
	    "`tmp/` (flag `--prefix`)" },
	{ "listen", CT_LISTEN, F(listen), 0, 0, "127.0.0.1:8080", NULL,
	    "HTTP address: an IPv4 address, `localhost` or `[IPv6]`, and a "
	    "port; anything but loopback needs TLS or `insecure_listen` (flag "
	    "`--listen`)" },
	{ "log_level", CT_LEVEL, F(log_level), 0, 0, "info", NULL,
	    "`error`, `warn`, `info` or `debug` (flag `--log-level`)" },
	{ "tls_cert", CT_STRING, F(tls_cert), 0, 0, "", NULL,
	    "PEM certificate file; with `tls_key`, nodee serves HTTPS" },
	{ "tls_key", CT_STRING, F(tls_key), 0, 0, "", NULL,
	    "PEM private key file of `tls_cert`" },
	{ "insecure_listen", CT_BOOL, F(insecure_listen), 0, 0, "no", NULL,
	    "allow plain HTTP on an address other machines can reach; "
	    "without it such a `listen` is refused" },
	{ "allowed_hosts", CT_STRING, F(allowed_hosts), 0, 0, "", NULL,
	    "extra names (comma-separated) accepted in the `Host` header, "
	    "besides `localhost`, `127.x.x.x`, `::1` and the listen address" },
	{ "metrics_public", CT_BOOL, F(metrics_public), 0, 0, "no", NULL,
	    "serve `/metrics` without the token" },
	{ "max_body", CT_SIZE, F(max_body), 64, 1ULL << 30, "1M", NULL,
	    "largest request body in bytes (suffixes K, M, G); a larger one "
	    "gets 413" },
	{ "http_threads", CT_UINT, F(http_threads), 1, 256, "4", NULL,
	    "HTTP worker threads (a libmicrohttpd thread pool)" },
	{ "http_max_connections", CT_UINT, F(http_max_connections), 16,
	    100000, "1000", NULL, "HTTP connections open at once; past it "
	    "new ones are closed at once, except 16 more kept for 127.0.0.1 "
	    "and ::1" },
	{ "http_max_per_ip", CT_UINT, F(http_max_per_ip), 1, 100000, "64",
	    NULL, "HTTP connections open at once from one client address, so "
	    "that one address cannot take them all" },
	{ "http_timeout_s", CT_UINT, F(http_timeout_s), 1, 3600, "30", NULL,
	    "seconds a connection may stay silent while a request is read or "
	    "answered" },
	{ "http_header_timeout_s", CT_UINT, F(http_header_timeout_s), 1, 3600,
	    "5", NULL, "seconds a connection may stay silent before its "
	    "request's headers are complete, and between requests" },
	{ "max_streams", CT_UINT, F(max_streams), 1, 4096, "64", NULL,
	    "WebSockets (`/api/v1/stream`, log follow) open at once; one more "
	    "gets 503" },
	{ "cell", CT_LABEL, F(cell), 0, 0, "cell", NULL,
	    "this node's cell: 1 to 63 characters of a-z, 0-9 and `-`" },
	{ "instance", CT_NAME, F(instance), 0, 0, "", "the host name",
	    "this node's instance name: 1 to 63 letters, digits, `.`, `_` and "
	    "`-`" },
	{ "zookeeper", CT_STRING, F(zookeeper), 0, 0, "", NULL,
	    "ZooKeeper ensemble, `host:port[,host:port...][/chroot]` (a chroot "
	    "must exist); empty: standalone, no registration" },
	{ "zookeeper_timeout_ms", CT_UINT, F(zookeeper_timeout_ms), 1000,
	    600000, "10000", NULL,
	    "ZooKeeper session timeout asked for, in ms (the servers clamp it "
	    "to 2 to 20 ticks): how long a crashed node stays registered" },
	{ "workers", CT_UINT, F(workers), 1, 64, "4", NULL,
	    "job worker threads (installs, removals, preparations, "
	    "snapshots)" },
	{ "depot", CT_URL, F(depot), 0, 0, "", NULL,
	    "default depot URL, http or https (flag `--depot URL`)" },
	{ "depot.<groupId>", CT_DEPOT, 0, 0, 0, 0, "", "none",
	    "depot URL for one group (flag `--depot GROUP=URL`); file or flag "
	    "only, as a group's dots do not survive the environment's naming" },
	{ "download_max", CT_SIZE, F(download_max), 1024, 1ULL << 40, "4G",
	    NULL, "largest download; a larger one fails the job" },
	{ "archive_max_entries", CT_SIZE, F(archive_max_entries), 1,
	    10000000, "200000", NULL,
	    "most entries an artifact zip may have" },
	{ "archive_max_bytes", CT_SIZE, F(archive_max_bytes), 1024,
	    1ULL << 42, "16G", NULL,
	    "most uncompressed bytes an artifact may unpack to, counted while "
	    "writing" },
	{ "unpack_threads", CT_UINT, F(unpack_threads), 1, 64, "2", NULL,
	    "threads unpacking one archive" },
	{ "service_uid_min", CT_UINT, F(uid_min), 1000, 4000000000U, "70000",
	    NULL, "lowest dynamic uid services run as when nodee is root "
	    "(above systemd's DynamicUser range, 61184 to 65519)" },
	{ "service_uid_max", CT_UINT, F(uid_max), 1000, 4000000000U, "79999",
	    NULL, "highest dynamic uid services run as (below the subordinate "
	    "uids Debian hands out from 100000); a uid is exclusive "
	    "machine-wide" },
	{ "log_max", CT_SIZE, F(log_max), 4096, 1ULL << 40, "10M", NULL,
	    "a service's `log/stdout` or `log/stderr` is rotated "
	    "(copy-truncate) past this size" },
	{ "log_keep", CT_UINT, F(log_keep), 1, 100, "3", NULL,
	    "rotated log generations kept (`stdout.1`, `stdout.2`, ...)" },
	{ "log_check_s", CT_UINT, F(log_check_s), 1, 3600, "30", NULL,
	    "how often, in seconds, log sizes are checked (a stat per log "
	    "file)" },
	{ "s3_endpoint", CT_URL, F(s3_endpoint), 0, 0, "",
	    "AWS for `s3_region`",
	    "S3 endpoint (http or https, path-style) for `s3://` URLs whose "
	    "spec names no credentials of its own" },
	{ "s3_region", CT_NAME, F(s3_region), 0, 0, "us-east-1", NULL,
	    "region signed into those requests (AWS Signature V4)" },
	{ "s3_access_key_id", CT_STRING, F(s3_access_key_id), 0, 0, "", NULL,
	    "access key id for those requests" },
	{ "s3_secret_access_key", CT_STRING, F(s3_secret_access_key), 0, 0,
	    "", NULL, "secret key for those requests: keep a file that holds "
	    "it unreadable to others" },
};

#undef F

static const struct config_key	*config_find(const char *);
static int	config_set_number(const struct config_key *, const char *,
		    char *, char *, size_t);
static int	config_set_text(const struct config_key *, const char *,
		    char *, char *, size_t);
static int	config_parse_listen(struct config *, const char *, char *,
		    size_t);
static int	config_parse_size(const char *, unsigned long long *);
static int	config_valid_label(const char *, int);
static int	config_set_depot(struct config *, const char *, const char *,
		    char *, size_t);
static int	config_url_ok(const char *);
static char	*config_trim(char *);
static void	config_doc_conf(FILE *, const struct config_key *,
		    const char *);
static void	config_doc_man(FILE *, const struct config_key *,
		    const char *);
static void	config_doc_markdown(FILE *, const struct config_key *,
		    const char *);
static void	config_doc_range(const struct config_key *, char *, size_t);
static void	config_doc_number(const struct config_key *,
		    unsigned long long, char *, size_t);
static void	config_doc_text(FILE *, const char *, enum config_doc, int);
static void	config_doc_wrap(FILE *, const char *, int, size_t *);

void
config_defaults(struct config *cf)
{
	char	err[128];

	memset(cf, 0, sizeof(*cf));
	snprintf(cf->prefix, sizeof(cf->prefix), "/var/lib/nodee");
	(void)config_parse_listen(cf, "127.0.0.1:8080", err, sizeof(err));
	cf->log_level = LOG_LVL_INFO;
	cf->max_body = 1024 * 1024;
	cf->http_threads = 4;
	cf->http_max_connections = 1000;
	cf->http_max_per_ip = 64;
	cf->http_timeout_s = 30;
	cf->http_header_timeout_s = 5;
	cf->max_streams = 64;
	cf->workers = 4;
	cf->download_max = 4ULL << 30;
	cf->archive_max_entries = 200000;
	cf->archive_max_bytes = 16ULL << 30;
	cf->unpack_threads = 2;
	/*
	 * Above systemd's DynamicUser range (61184-65519) and below the
	 * subordinate ids Debian hands out from 100000.
	 */
	cf->uid_min = 70000;
	cf->uid_max = 79999;
	cf->log_max = 10 * 1024 * 1024;
	cf->log_keep = 3;
	cf->log_check_s = 30;
	cf->zookeeper_timeout_ms = 10000;
	snprintf(cf->s3_region, sizeof(cf->s3_region), "us-east-1");
	snprintf(cf->cell, sizeof(cf->cell), "cell");
	if (gethostname(cf->instance, sizeof(cf->instance)) != 0 ||
	    config_valid_label(cf->instance, 0) != 0)
		snprintf(cf->instance, sizeof(cf->instance), "localhost");
}

/*
 * Sets one key from its text.  On error returns -1 with err saying what is
 * wrong with the value; the caller adds where the value came from.
 */
int
config_set(struct config *cf, const char *key, const char *value, char *err,
    size_t errlen)
{
	const struct config_key	*k;
	char			*field;
	enum log_level		 lvl;

	if (strncmp(key, "depot.", 6) == 0)
		return config_set_depot(cf, key + 6, value, err, errlen);
	if ((k = config_find(key)) == NULL) {
		snprintf(err, errlen, "unknown key '%s'", key);
		return -1;
	}
	field = (char *)cf + k->offset;
	switch (k->type) {
	case CT_BOOL:
		if (strcmp(value, "yes") == 0 || strcmp(value, "true") == 0 ||
		    strcmp(value, "1") == 0)
			*(int *)field = 1;
		else if (strcmp(value, "no") == 0 ||
		    strcmp(value, "false") == 0 || strcmp(value, "0") == 0)
			*(int *)field = 0;
		else {
			snprintf(err, errlen, "key '%s': '%s' is not yes or no",
			    key, value);
			return -1;
		}
		return 0;
	case CT_SIZE:
	case CT_UINT:
		return config_set_number(k, value, field, err, errlen);
	case CT_LEVEL:
		if (log_level_parse(value, &lvl) != 0) {
			snprintf(err, errlen, "key '%s': '%s' is not one of "
			    "error, warn, info, debug", key, value);
			return -1;
		}
		*(enum log_level *)field = lvl;
		return 0;
	case CT_LISTEN:
		return config_parse_listen(cf, value, err, errlen);
	case CT_STRING:
	case CT_URL:
	case CT_LABEL:
	case CT_NAME:
		return config_set_text(k, value, field, err, errlen);
	case CT_DEPOT:
		break;	/* taken by its "depot." prefix above */
	}
	snprintf(err, errlen, "key '%s': internal error", key);
	return -1;
}

int
config_load_file(struct config *cf, const char *path, char *err,
    size_t errlen)
{
	FILE	*fp;
	char	 line[4096], msg[512], *key, *value, *eq;
	int	 lineno = 0;

	if ((fp = fopen(path, "r")) == NULL) {
		snprintf(err, errlen, "%s: cannot open configuration: %s", path,
		    strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), fp) != NULL) {
		lineno++;
		if (strchr(line, '\n') == NULL && !feof(fp)) {
			snprintf(err, errlen, "%s:%d: line longer than %zu "
			    "bytes", path, lineno, sizeof(line) - 2);
			fclose(fp);
			return -1;
		}
		key = config_trim(line);
		if (*key == '#' || *key == '\0')
			continue;
		if ((eq = strchr(key, '=')) == NULL) {
			snprintf(err, errlen, "%s:%d: expected 'key = value', "
			    "got '%s'", path, lineno, key);
			fclose(fp);
			return -1;
		}
		*eq = '\0';
		key = config_trim(key);
		value = config_trim(eq + 1);
		if (config_set(cf, key, value, msg, sizeof(msg)) != 0) {
			snprintf(err, errlen, "%s:%d: %s", path, lineno, msg);
			fclose(fp);
			return -1;
		}
	}
	fclose(fp);
	return 0;
}

/* NODEE_ plus the key in upper case, '.' and '-' turned into '_'. */
void
config_env_name(const char *key, char *out, size_t outlen)
{
	size_t	i, n;

	if (outlen < 7) {
		if (outlen > 0)
			out[0] = '\0';
		return;
	}
	n = (size_t)snprintf(out, outlen, "NODEE_");
	for (i = 0; key[i] != '\0' && n + 1 < outlen; i++, n++) {
		if (key[i] == '.' || key[i] == '-')
			out[n] = '_';
		else
			out[n] = (char)toupper((unsigned char)key[i]);
	}
	out[n] = '\0';
}

int
config_load_env(struct config *cf, char *const *envp, char *err,
    size_t errlen)
{
	char	 name[128], msg[512];
	size_t	 i, j, len;

	for (i = 0; i < sizeof(config_keys) / sizeof(config_keys[0]); i++) {
		/* A group's dots would not survive the variable's name. */
		if (config_keys[i].type == CT_DEPOT)
			continue;
		config_env_name(config_keys[i].name, name, sizeof(name));
		len = strlen(name);
		for (j = 0; envp[j] != NULL; j++) {
			if (strncmp(envp[j], name, len) != 0 ||
			    envp[j][len] != '=')
				continue;
			if (config_set(cf, config_keys[i].name,
			    envp[j] + len + 1, msg, sizeof(msg)) != 0) {
				snprintf(err, errlen, "environment %s: %s",
				    name, msg);
				return -1;
			}
		}
	}
	return 0;
}

/*
 * Checks that concern several keys, after all sources are applied: TLS
 * needs both files, and a listener that other machines can reach needs TLS
 * unless the operator said explicitly that plain HTTP is fine.
 */
int
config_check(const struct config *cf, char *err, size_t errlen)
{
	if ((cf->tls_cert[0] == '\0') != (cf->tls_key[0] == '\0')) {
		snprintf(err, errlen, "tls_cert and tls_key must be set "
		    "together");
		return -1;
	}
	if (cf->uid_min > cf->uid_max) {
		snprintf(err, errlen, "service_uid_min (%u) is above "
		    "service_uid_max (%u)", cf->uid_min, cf->uid_max);
		return -1;
	}
	if (cf->prefix[0] == '\0') {
		snprintf(err, errlen, "prefix must not be empty");
		return -1;
	}
	/* host:port[,host:port...][/chroot], as the ZooKeeper client takes. */
	if (cf->zookeeper[0] != '\0' && (strspn(cf->zookeeper,
	    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	    ".-_:,[]/") != strlen(cf->zookeeper) || cf->zookeeper[0] == '/' ||
	    strchr(cf->zookeeper, ':') == NULL)) {
		snprintf(err, errlen, "zookeeper: '%s' is not host:port[,host:"
		    "port...][/chroot]", cf->zookeeper);
		return -1;
	}
	if (!config_listen_is_loopback(cf) && cf->tls_cert[0] == '\0' &&
	    !cf->insecure_listen) {
		snprintf(err, errlen, "listen address %s is not loopback and no "
		    "TLS is configured: set tls_cert and tls_key, or set "
		    "insecure_listen = yes to serve plain HTTP anyway",
		    cf->listen);
		return -1;
	}
	return 0;
}

int
config_listen_is_loopback(const struct config *cf)
{
	struct in_addr	 a4;
	struct in6_addr	 a6;

	if (strcmp(cf->listen_host, "localhost") == 0)
		return 1;
	if (cf->listen_ipv6)
		return inet_pton(AF_INET6, cf->listen_host, &a6) == 1 &&
		    IN6_IS_ADDR_LOOPBACK(&a6);
	if (inet_pton(AF_INET, cf->listen_host, &a4) != 1)
		return 0;
	return (ntohl(a4.s_addr) >> 24) == 127;
}

/*
 * The depot for groupId: its own depot.<groupId> if one is configured,
 * else the default depot; NULL when there is neither.
 */
const char *
config_depot_for(const struct config *cf, const char *group)
{
	size_t	i;

	for (i = 0; i < cf->ndepots; i++)
		if (strcmp(cf->depots[i].group, group) == 0)
			return cf->depots[i].url;
	return cf->depot[0] != '\0' ? cf->depot : NULL;
}

/*
 * Prints every key with its default and description: commented lines for
 * conf/nodee.conf, .TP paragraphs for the man page, or a Markdown table
 * for the README.  `make docs` puts the output between markers in those
 * files, and a test checks that they still say the same.
 */
void
config_doc(FILE *fp, enum config_doc fmt)
{
	const struct config_key	*k;
	char			 range[96];
	size_t			 i, n = sizeof(config_keys) /
				    sizeof(config_keys[0]);

	if (fmt == CONFIG_DOC_MARKDOWN)
		fprintf(fp, "| key | default | meaning |\n|---|---|---|\n");
	for (i = 0; i < n; i++) {
		k = &config_keys[i];
		config_doc_range(k, range, sizeof(range));
		switch (fmt) {
		case CONFIG_DOC_CONF:
			if (i > 0)
				fputc('\n', fp);
			config_doc_conf(fp, k, range);
			break;
		case CONFIG_DOC_MAN:
			config_doc_man(fp, k, range);
			break;
		case CONFIG_DOC_MARKDOWN:
			config_doc_markdown(fp, k, range);
			break;
		}
	}
}

/* depot.<groupId> = URL; a later setting for the same group wins. */
static int
config_set_depot(struct config *cf, const char *group, const char *url,
    char *err, size_t errlen)
{
	size_t	i, n = strlen(group);

	if (n == 0 || n >= sizeof(cf->depots[0].group) ||
	    strspn(group, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "0123456789._-") != n || strstr(group, "..") != NULL ||
	    group[0] == '.') {
		snprintf(err, errlen, "key 'depot.%s': '%s' is not a groupId",
		    group, group);
		return -1;
	}
	if (!config_url_ok(url) || strlen(url) >= CONFIG_URL_MAX) {
		snprintf(err, errlen, "key 'depot.%s': '%s' is not an http:// "
		    "or https:// URL", group, url);
		return -1;
	}
	for (i = 0; i < cf->ndepots; i++)
		if (strcmp(cf->depots[i].group, group) == 0)
			break;
	if (i == CONFIG_DEPOTS_MAX) {
		snprintf(err, errlen, "key 'depot.%s': more than %d group "
		    "depots", group, CONFIG_DEPOTS_MAX);
		return -1;
	}
	snprintf(cf->depots[i].group, sizeof(cf->depots[i].group), "%s",
	    group);
	snprintf(cf->depots[i].url, sizeof(cf->depots[i].url), "%s", url);
	if (i == cf->ndepots)
		cf->ndepots++;
	return 0;
}

/* CT_SIZE (with K, M, G suffixes) and CT_UINT, within the key's range. */
static int
config_set_number(const struct config_key *k, const char *value, char *field,
    char *err, size_t errlen)
{
	unsigned long long	 n;
	char			*end;

	if (k->type == CT_SIZE) {
		if (config_parse_size(value, &n) != 0 || n < k->min ||
		    n > k->max) {
			snprintf(err, errlen, "key '%s': '%s' is not a size "
			    "between %llu and %llu bytes (suffixes K, M, G)",
			    k->name, value, k->min, k->max);
			return -1;
		}
		*(size_t *)field = (size_t)n;
		return 0;
	}
	/* strtoull() takes "-1" and " 1": only digits are numbers here. */
	if (!isdigit((unsigned char)value[0]))
		goto bad;
	errno = 0;
	n = strtoull(value, &end, 10);
	if (errno != 0 || *end != '\0' || n < k->min || n > k->max)
		goto bad;
	*(unsigned *)field = (unsigned)n;
	return 0;
bad:
	snprintf(err, errlen, "key '%s': '%s' is not a number between %llu "
	    "and %llu", k->name, value, k->min, k->max);
	return -1;
}

/* The keys held as text: plain strings, URLs, cell and instance names. */
static int
config_set_text(const struct config_key *k, const char *value, char *field,
    char *err, size_t errlen)
{
	if (k->type == CT_URL && value[0] != '\0' && !config_url_ok(value)) {
		snprintf(err, errlen, "key '%s': '%s' is not an http:// or "
		    "https:// URL", k->name, value);
		return -1;
	}
	/*
	 * fetch_s3_url() refuses an endpoint with user information, a query
	 * or a fragment (keys go apart): refused at start rather than by
	 * every S3 transfer (found by tests/fuzz/fuzz_config.c).
	 */
	if (strcmp(k->name, "s3_endpoint") == 0 &&
	    strpbrk(value, "@?#") != NULL) {
		/* Not the value: it may hold a password. */
		snprintf(err, errlen, "key '%s': an S3 endpoint is http(s)://"
		    "host[:port][/path], without user information (the keys "
		    "are set apart), query or fragment", k->name);
		return -1;
	}
	if ((k->type == CT_LABEL || k->type == CT_NAME) &&
	    config_valid_label(value, k->type == CT_LABEL) != 0) {
		snprintf(err, errlen, "key '%s': '%s' must be 1 to 63 "
		    "characters of %s", k->name, value, k->type == CT_LABEL ?
		    "a-z, 0-9 and '-'" : "letters, digits, '.', '_' and '-', "
		    "not starting with '.'");
		return -1;
	}
	if (strlen(value) >= k->size) {
		snprintf(err, errlen, "key '%s': %s longer than %zu bytes",
		    k->name, k->type == CT_URL ? "URL" : "value", k->size - 1);
		return -1;
	}
	snprintf(field, k->size, "%s", value);
	return 0;
}

/*
 * fetch_url_ok() too: a depot its own checks passed ("https://'",
 * "http://:80") gave artifact URLs that every install then refused
 * (found by tests/fuzz/fuzz_config.c).  A bad value is refused here, at
 * start, with where it came from.
 */
static int
config_url_ok(const char *url)
{
	const char	*host;

	if (strncmp(url, "http://", 7) == 0)
		host = url + 7;
	else if (strncmp(url, "https://", 8) == 0)
		host = url + 8;
	else
		return 0;
	return *host != '\0' && *host != '/' &&
	    strpbrk(url, " \t\r\n\"<>\\") == NULL &&
	    fetch_url_ok(url, NULL, 0);
}

static const struct config_key *
config_find(const char *key)
{
	size_t	i;

	for (i = 0; i < sizeof(config_keys) / sizeof(config_keys[0]); i++)
		if (strcmp(config_keys[i].name, key) == 0)
			return &config_keys[i];
	return NULL;
}

/* ADDR:PORT with ADDR an IPv4 literal, "localhost" or [IPv6]. */
static int
config_parse_listen(struct config *cf, const char *value, char *err,
    size_t errlen)
{
	char		 host[64], *end;
	const char	*colon, *hs;
	size_t		 hl;
	unsigned long	 port;
	struct in_addr	 a4;
	struct in6_addr	 a6;
	int		 v6 = 0;

	if (value[0] == '[') {
		if ((colon = strstr(value, "]:")) == NULL)
			goto bad;
		hs = value + 1;
		hl = (size_t)(colon - hs);
		colon++;
		v6 = 1;
	} else {
		if ((colon = strrchr(value, ':')) == NULL)
			goto bad;
		hs = value;
		hl = (size_t)(colon - value);
	}
	if (hl == 0 || hl >= sizeof(host))
		goto bad;
	memcpy(host, hs, hl);
	host[hl] = '\0';
	if (!isdigit((unsigned char)colon[1]))
		goto bad;
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	if (errno != 0 || end == colon + 1 || *end != '\0' || port == 0 ||
	    port > 65535)
		goto bad;
	if (v6 ? inet_pton(AF_INET6, host, &a6) != 1 :
	    (strcmp(host, "localhost") != 0 &&
	    inet_pton(AF_INET, host, &a4) != 1))
		goto bad;
	if (strlen(value) >= sizeof(cf->listen))
		goto bad;
	snprintf(cf->listen, sizeof(cf->listen), "%s", value);
	snprintf(cf->listen_host, sizeof(cf->listen_host), "%s", host);
	cf->listen_port = (unsigned)port;
	cf->listen_ipv6 = v6;
	return 0;
bad:
	snprintf(err, errlen, "key 'listen': '%s' is not ADDR:PORT (an IPv4 "
	    "address, localhost or [IPv6], and a port 1-65535)", value);
	return -1;
}

static int
config_parse_size(const char *s, unsigned long long *out)
{
	char			*end;
	unsigned long long	 n, mul = 1;

	if (!isdigit((unsigned char)s[0]))
		return -1;
	errno = 0;
	n = strtoull(s, &end, 10);
	if (errno != 0)
		return -1;
	if (strcasecmp(end, "k") == 0 || strcasecmp(end, "kib") == 0)
		mul = 1024ULL;
	else if (strcasecmp(end, "m") == 0 || strcasecmp(end, "mib") == 0)
		mul = 1024ULL * 1024;
	else if (strcasecmp(end, "g") == 0 || strcasecmp(end, "gib") == 0)
		mul = 1024ULL * 1024 * 1024;
	else if (*end != '\0')
		return -1;
	if (n > (unsigned long long)-1 / mul)
		return -1;
	*out = n * mul;
	return 0;
}

/*
 * A cell is a coordinate label: [a-z0-9-].  An instance name is a host
 * name (EC2 instance names included): letters, digits, '.', '_', '-'.
 */
static int
config_valid_label(const char *s, int strict)
{
	size_t	i, n = strlen(s);

	if (n == 0 || n > 63 || s[0] == '.')
		return -1;
	for (i = 0; i < n; i++) {
		unsigned char	c = (unsigned char)s[i];

		if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '-')
			continue;
		if (!strict && ((c >= 'A' && c <= 'Z') || c == '.' ||
		    c == '_'))
			continue;
		return -1;
	}
	return 0;
}

static char *
config_trim(char *s)
{
	char	*e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

/*
 * "# description" wrapped, then "#key = default": uncommenting the line
 * sets the default, unless it is computed (then it is left empty).
 */
static void
config_doc_conf(FILE *fp, const struct config_key *k, const char *range)
{
	char	text[128];
	size_t	col = 0;

	config_doc_wrap(fp, k->doc, 0, &col);
	if (range[0] != '\0') {
		config_doc_wrap(fp, ";", 0, &col);
		snprintf(text, sizeof(text), " %s", range);
		config_doc_wrap(fp, text, 1, &col);
	}
	if (k->def_doc != NULL) {
		config_doc_wrap(fp, " (default:", 0, &col);
		config_doc_wrap(fp, k->def_doc, 0, &col);
		config_doc_wrap(fp, ")", 0, &col);
	}
	fprintf(fp, "\n#%s =%s%s\n", k->name, k->def[0] ? " " : "",
	    k->def);
}

/* A tagged paragraph; "\&" keeps a line from reading as a request. */
static void
config_doc_man(FILE *fp, const struct config_key *k, const char *range)
{
	fprintf(fp, ".TP\n");
	config_doc_text(fp, k->name, CONFIG_DOC_MAN, 1);
	fprintf(fp, " (default: ");
	if (k->def_doc != NULL)
		config_doc_text(fp, k->def_doc, CONFIG_DOC_MAN, 0);
	else if (k->def[0] != '\0')
		config_doc_text(fp, k->def, CONFIG_DOC_MAN, 1);
	else
		fprintf(fp, "empty");
	fprintf(fp, "%s%s)\n", range[0] ? "; " : "", range);
	/* A line that starts with a dot or a quote would be a request. */
	if (k->doc[0] == '.' || k->doc[0] == '\'')
		fprintf(fp, "\\&");
	config_doc_text(fp, k->doc, CONFIG_DOC_MAN, 0);
	fputc('\n', fp);
}

static void
config_doc_markdown(FILE *fp, const struct config_key *k,
    const char *range)
{
	fprintf(fp, "| ");
	config_doc_text(fp, k->name, CONFIG_DOC_MARKDOWN, 1);
	fprintf(fp, " | ");
	if (k->def_doc != NULL)
		config_doc_text(fp, k->def_doc, CONFIG_DOC_MARKDOWN, 0);
	else if (k->def[0] != '\0')
		config_doc_text(fp, k->def, CONFIG_DOC_MARKDOWN, 1);
	else
		fprintf(fp, "empty");
	if (range[0] != '\0')
		fprintf(fp, " (%s)", range);
	fprintf(fp, " | ");
	config_doc_text(fp, k->doc, CONFIG_DOC_MARKDOWN, 0);
	fprintf(fp, " |\n");
}

/* "MIN to MAX" for the numeric keys, from the bounds config_set uses. */
static void
config_doc_range(const struct config_key *k, char *out, size_t outlen)
{
	char	lo[32], hi[32];

	out[0] = '\0';
	if (k->type != CT_SIZE && k->type != CT_UINT)
		return;
	config_doc_number(k, k->min, lo, sizeof(lo));
	config_doc_number(k, k->max, hi, sizeof(hi));
	snprintf(out, outlen, "%s to %s", lo, hi);
}

/* A size in the largest suffix that says it exactly: 1G, 4K, 200000. */
static void
config_doc_number(const struct config_key *k, unsigned long long n,
    char *out, size_t outlen)
{
	static const char	 suffix[] = "GMK";
	unsigned long long	 unit;
	size_t			 i;

	for (i = 0; k->type == CT_SIZE && n != 0 && i < 3; i++) {
		unit = 1ULL << (10 * (3 - i));
		if (n % unit == 0) {
			snprintf(out, outlen, "%llu%c", n / unit, suffix[i]);
			return;
		}
	}
	snprintf(out, outlen, "%llu", n);
}

/*
 * Text of the table in one format: `literal` parts (or all of s, when
 * literal is set) become code in Markdown and bold in roff, whose hyphens
 * in literals are minus signs (so that options copy as they read); what
 * either format would take as markup is escaped.  conf has its own
 * printer, config_doc_wrap().
 */
static void
config_doc_text(FILE *fp, const char *s, enum config_doc fmt, int literal)
{
	static const char	*const open[] = { [CONFIG_DOC_CONF] = "",
				    [CONFIG_DOC_MAN] = "\\fB",
				    [CONFIG_DOC_MARKDOWN] = "`" };
	static const char	*const close[] = { [CONFIG_DOC_CONF] = "",
				    [CONFIG_DOC_MAN] = "\\fR",
				    [CONFIG_DOC_MARKDOWN] = "`" };
	int			 code = literal;

	if (literal)
		fputs(open[fmt], fp);
	for (; *s != '\0'; s++) {
		if (*s == '`' && !literal) {
			code = !code;
			fputs(code ? open[fmt] : close[fmt], fp);
		} else if (fmt == CONFIG_DOC_MAN && *s == '\\')
			fputs("\\e", fp);
		else if (fmt == CONFIG_DOC_MAN && code && *s == '-')
			fputs("\\-", fp);
		else if (fmt == CONFIG_DOC_MAN && code && *s == '\'')
			fputs("\\(aq", fp);
		else if (fmt == CONFIG_DOC_MARKDOWN && *s == '|')
			fputs("\\|", fp);
		else if (fmt == CONFIG_DOC_MARKDOWN && !code && *s == '<')
			fputs("&lt;", fp);
		else if (fmt == CONFIG_DOC_MARKDOWN && !code &&
		    strchr("*_[]\\", *s) != NULL)
			fprintf(fp, "\\%c", *s);
		else
			fputc(*s, fp);
	}
	if (literal)
		fputs(close[fmt], fp);
}

/*
 * Comment text for conf/nodee.conf: words (backquotes dropped) filled
 * into "# " lines of at most CONFIG_DOC_WIDTH columns, or with glue all
 * of s as one word; *col is where the current line stands, 0 before the
 * first word.  A word longer than a line gets a line of its own.
 */
static void
config_doc_wrap(FILE *fp, const char *s, int glue, size_t *col)
{
	size_t	len, vis, i;
	int	space;

	while (*s != '\0') {
		space = *s == ' ';
		while (*s == ' ')
			s++;
		len = glue ? strlen(s) : strcspn(s, " ");
		for (vis = 0, i = 0; i < len; i++)
			vis += s[i] != '`';
		if (vis == 0)
			break;
		if (*col == 0 || *col + (space ? 1 : 0) + vis >
		    CONFIG_DOC_WIDTH) {
			fprintf(fp, "%s# ", *col == 0 ? "" : "\n");
			*col = 2;
		} else if (space) {
			fputc(' ', fp);
			(*col)++;
		}
		for (i = 0; i < len; i++)
			if (s[i] != '`')
				fputc(s[i], fp);
		*col += vis;
		s += len;
	}
}
