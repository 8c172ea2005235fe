/*
 * zkcli: a small ZooKeeper client for the registry tests and benchmark,
 * compiled by zk.js at test time (cc -DTHREADED ... -lzookeeper_mt).
 * Node has no ZooKeeper client, and zkCli.sh starts a JVM per call.
 *
 *   zkcli get HOSTS PATH         one line (see below), or "none"
 *   zkcli watch HOSTS PATH       a line now and after every change of the
 *                                node (created, written, deleted), until
 *                                stdin closes
 *   zkcli expire HOSTS FILE PATH forces the expiry of the session in FILE
 *                                ("0x<id> <password hex>"): a second
 *                                handle on that session, then closed, as
 *                                ZooKeeper's own tests do; again until
 *                                PATH (an ephemeral node of that session)
 *                                is no longer that session's
 *
 * A line is {"t":ms,"exists":bool,"owner":"0x..","version":n,"ctime":ms,
 * "mtime":ms,"len":n}, a tab, and the node's data.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <zookeeper/zookeeper.h>

#define ZKCLI_DATA_MAX	(1024 * 1024)

static pthread_mutex_t	 mtx = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t	 cond = PTHREAD_COND_INITIALIZER;
static int		 connected, expired;
static int		 evpipe[2];
static char		*buf;

static void	session_watcher(zhandle_t *, int, int, const char *, void *);
static void	node_watcher(zhandle_t *, int, int, const char *, void *);
static zhandle_t	*connect_to(const char *, const clientid_t *);
static int	print_node(zhandle_t *, const char *, int);
static int64_t	now_ms(void);
static int	cmd_expire(const char *, const char *, const char *);
static int	expire_once(const char *, const clientid_t *);

int
main(int argc, char **argv)
{
	struct pollfd	 p[2];
	zhandle_t	*zh;
	char		 c;

	zoo_set_debug_level(ZOO_LOG_LEVEL_ERROR);
	if (argc != 4 && !(argc == 5 && strcmp(argv[1], "expire") == 0)) {
		fprintf(stderr, "usage: zkcli get|watch HOSTS PATH\n"
		    "       zkcli expire HOSTS FILE PATH\n");
		return 2;
	}
	if ((buf = malloc(ZKCLI_DATA_MAX)) == NULL || pipe(evpipe) != 0)
		return 1;
	if (strcmp(argv[1], "expire") == 0)
		return cmd_expire(argv[2], argv[3], argv[4]);
	if ((zh = connect_to(argv[2], NULL)) == NULL)
		return 1;
	if (strcmp(argv[1], "get") == 0) {
		if (print_node(zh, argv[3], 0) != 0)
			return 1;
		zookeeper_close(zh);
		return 0;
	}
	if (strcmp(argv[1], "watch") != 0)
		return 2;
	if (print_node(zh, argv[3], 1) != 0)
		return 1;
	p[0].fd = evpipe[0];
	p[0].events = POLLIN;
	p[1].fd = STDIN_FILENO;
	p[1].events = POLLIN;
	for (;;) {
		if (poll(p, 2, -1) == -1 && errno != EINTR)
			return 1;
		if (p[1].revents != 0 && read(STDIN_FILENO, &c, 1) <= 0)
			break;
		if (p[0].revents != 0) {
			if (read(evpipe[0], &c, 1) != 1)
				return 1;
			if (expired) {
				fprintf(stderr, "zkcli: session expired\n");
				return 3;
			}
			if (print_node(zh, argv[3], 1) != 0)
				return 1;
		}
	}
	zookeeper_close(zh);
	return 0;
}

static void
session_watcher(zhandle_t *zh, int type, int state, const char *path,
    void *ctx)
{
	(void)zh;
	(void)path;
	(void)ctx;
	if (type != ZOO_SESSION_EVENT)
		return;
	pthread_mutex_lock(&mtx);
	if (state == ZOO_CONNECTED_STATE)
		connected = 1;
	if (state == ZOO_EXPIRED_SESSION_STATE) {
		expired = 1;
		if (write(evpipe[1], "x", 1) != 1)
			abort();
	}
	pthread_cond_broadcast(&cond);
	pthread_mutex_unlock(&mtx);
}

static void
node_watcher(zhandle_t *zh, int type, int state, const char *path, void *ctx)
{
	(void)zh;
	(void)state;
	(void)path;
	(void)ctx;
	if (type == ZOO_SESSION_EVENT)
		return;
	if (write(evpipe[1], "w", 1) != 1)
		abort();
}

/* A handle once connected (10 s at most); id resumes a session. */
static zhandle_t *
connect_to(const char *hosts, const clientid_t *id)
{
	struct timespec	 ts;
	zhandle_t	*zh;
	int		 rc = 0;

	if ((zh = zookeeper_init(hosts, session_watcher, 10000, id, NULL,
	    0)) == NULL) {
		fprintf(stderr, "zkcli: zookeeper_init: %s\n", strerror(errno));
		return NULL;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 10;
	pthread_mutex_lock(&mtx);
	while (!connected && !expired && rc != ETIMEDOUT)
		rc = pthread_cond_timedwait(&cond, &mtx, &ts);
	pthread_mutex_unlock(&mtx);
	if (!connected) {
		fprintf(stderr, "zkcli: cannot connect to %s%s\n", hosts,
		    expired ? ": session expired" : "");
		zookeeper_close(zh);
		return NULL;
	}
	return zh;
}

/* Prints the node (watching it if asked: data when it exists, else its
 * creation). */
static int
print_node(zhandle_t *zh, const char *path, int watch)
{
	struct Stat	st;
	int		rc, len = ZKCLI_DATA_MAX;

	for (;;) {
		rc = watch ? zoo_wget(zh, path, node_watcher, NULL, buf, &len,
		    &st) : zoo_get(zh, path, 0, buf, &len, &st);
		if (rc != ZNONODE)
			break;
		rc = watch ? zoo_wexists(zh, path, node_watcher, NULL, &st) :
		    ZNONODE;
		if (rc == ZNONODE) {
			printf("{\"t\":%" PRId64 ",\"exists\":false}\t\n",
			    now_ms());
			fflush(stdout);
			return 0;
		}
		if (rc != ZOK)
			break;
		len = ZKCLI_DATA_MAX;	/* created meanwhile: read it */
	}
	if (rc != ZOK) {
		fprintf(stderr, "zkcli: %s: %s\n", path, zerror(rc));
		return -1;
	}
	printf("{\"t\":%" PRId64 ",\"exists\":true,\"owner\":\"0x%" PRIx64
	    "\",\"version\":%d,\"ctime\":%" PRId64 ",\"mtime\":%" PRId64
	    ",\"len\":%d}\t", now_ms(), (uint64_t)st.ephemeralOwner,
	    st.version, st.ctime, st.mtime, len);
	fwrite(buf, 1, len > 0 ? (size_t)len : 0, stdout);
	printf("\n");
	fflush(stdout);
	return 0;
}

/*
 * The second handle takes the session over (the server drops the first
 * connection); its close ends the session.  If the owner's client comes
 * back first, the server drops our connection instead and the session
 * lives on: so we check the node and try again.
 */
static int
cmd_expire(const char *hosts, const char *file, const char *path)
{
	struct Stat	 st;
	clientid_t	 id;
	FILE		*fp;
	zhandle_t	*zh;
	char		 hex[64];
	unsigned long long sid;
	unsigned	 b;
	int		 i, try, rc;
	int64_t		 closed = 0, deadline;

	memset(&id, 0, sizeof(id));
	if ((fp = fopen(file, "r")) == NULL ||
	    fscanf(fp, "%llx %32s", &sid, hex) != 2 || strlen(hex) != 32) {
		fprintf(stderr, "zkcli: cannot read a session from %s\n", file);
		return 1;
	}
	fclose(fp);
	id.client_id = (int64_t)sid;
	for (i = 0; i < 16; i++) {
		if (sscanf(hex + 2 * i, "%2x", &b) != 1)
			return 1;
		id.passwd[i] = (char)b;
	}
	for (try = 1; try <= 10; try++) {
		if (expire_once(hosts, &id) == 0)
			closed = now_ms();
		connected = expired = 0;
		if ((zh = connect_to(hosts, NULL)) == NULL)
			return 1;
		deadline = now_ms() + 2000;
		do {
			rc = zoo_exists(zh, path, 0, &st);
			if (rc == ZNONODE || (rc == ZOK &&
			    st.ephemeralOwner != id.client_id)) {
				zookeeper_close(zh);
				printf("{\"t\":%" PRId64 ",\"expired\":\"0x%llx\","
				    "\"tries\":%d}\n", closed, sid, try);
				return 0;
			}
			usleep(20000);
		} while (now_ms() < deadline);
		zookeeper_close(zh);
		connected = expired = 0;
	}
	fprintf(stderr, "zkcli: session 0x%llx still owns %s\n", sid, path);
	return 1;
}

/* One takeover and close; -1 if the session could not be taken. */
static int
expire_once(const char *hosts, const clientid_t *id)
{
	zhandle_t	*zh;

	if ((zh = connect_to(hosts, id)) == NULL)
		return -1;
	if (zoo_client_id(zh)->client_id != id->client_id) {
		/* Already gone: the server gave us a new session. */
		zookeeper_close(zh);
		return -1;
	}
	zookeeper_close(zh);
	return 0;
}

static int64_t
now_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
