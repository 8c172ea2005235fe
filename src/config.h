/*
 * config: nodee's settings.  Defaults, then conf/nodee.conf ("key = value",
 * "#" comments), then NODEE_* environment variables, then command-line
 * flags; the last one wins.  Every value is validated when it is set, so a
 * bad value is reported with where it came from (file and line, variable or
 * flag) and the daemon never starts with it.
 */
#ifndef NODEE_CONFIG_H
#define NODEE_CONFIG_H

#include <limits.h>
#include <stddef.h>
#include <stdio.h>

#include "log.h"

#define CONFIG_LABEL_MAX	64
#define CONFIG_HOSTS_MAX	512
#define CONFIG_URL_MAX		1024
#define CONFIG_DEPOTS_MAX	64

/* depot.<groupId> = URL: where one group's artifacts come from. */
struct config_depot {
	char	group[129];
	char	url[CONFIG_URL_MAX];
};

/* The formats config_doc() prints the keys in. */
enum config_doc {
	CONFIG_DOC_CONF,	/* commented lines for conf/nodee.conf */
	CONFIG_DOC_MAN,		/* roff for doc/nodee.8 */
	CONFIG_DOC_MARKDOWN,	/* a table for README.md */
};

struct config {
	char		prefix[PATH_MAX];
	char		listen[128];
	char		listen_host[64];	/* from listen, no brackets */
	unsigned	listen_port;
	int		listen_ipv6;
	enum log_level	log_level;
	char		tls_cert[PATH_MAX];
	char		tls_key[PATH_MAX];
	int		insecure_listen;
	char		allowed_hosts[CONFIG_HOSTS_MAX];
	int		metrics_public;	/* /metrics without the token */
	size_t		max_body;
	unsigned	http_threads;
	unsigned	http_max_connections;
	unsigned	http_max_per_ip;	/* connections from one address */
	unsigned	http_timeout_s;		/* silence while a request runs */
	unsigned	http_header_timeout_s;	/* ... before its headers */
	unsigned	max_streams;	/* open WebSockets at most */
	char		cell[CONFIG_LABEL_MAX];
	char		instance[CONFIG_LABEL_MAX];
	char		zookeeper[CONFIG_URL_MAX];	/* empty: standalone */
	unsigned	zookeeper_timeout_ms;

	unsigned	workers;
	char		depot[CONFIG_URL_MAX];
	struct config_depot depots[CONFIG_DEPOTS_MAX];
	size_t		ndepots;
	size_t		download_max;
	size_t		archive_max_entries;
	size_t		archive_max_bytes;
	unsigned	unpack_threads;
	unsigned	uid_min;
	unsigned	uid_max;
	size_t		log_max;
	unsigned	log_keep;
	unsigned	log_check_s;
	char		s3_endpoint[CONFIG_URL_MAX];	/* empty: AWS */
	char		s3_region[64];
	char		s3_access_key_id[256];
	char		s3_secret_access_key[256];
};

void	config_defaults(struct config *);
int	config_set(struct config *, const char *, const char *, char *,
	    size_t);
int	config_load_file(struct config *, const char *, char *, size_t);
int	config_load_env(struct config *, char *const *, char *, size_t);
int	config_check(const struct config *, char *, size_t);
void	config_env_name(const char *, char *, size_t);
int	config_listen_is_loopback(const struct config *);
const char	*config_depot_for(const struct config *, const char *);
void	config_doc(FILE *, enum config_doc);

#endif
