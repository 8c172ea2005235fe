/*
 * main: the nodee command line, start-up in a fixed order, and shutdown.
 *
 * Start-up: configuration (file < environment < flags), prefix layout and
 * lock, token, store (migrations), HTTP.  Any failure before the server
 * runs ends in fatal() with a message that says what to fix.  Signals are
 * blocked in every thread and taken here with sigwaitinfo(), so no handler
 * runs inside library code.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "api.h"
#include "artifact.h"
#include "auth.h"
#include "cli.h"
#include "config.h"
#include "fetch.h"
#include "http.h"
#include "jobs.h"
#include "log.h"
#include "nodee.h"
#include "prefix.h"
#include "prepare.h"
#include "registry.h"
#include "store.h"
#include "stream.h"
#include "sup.h"

/* Below this many descriptors, a node with many services runs short. */
#define DAEMON_NOFILE_MIN	4096

extern char	**environ;

#define DAEMON_FLAGS_MAX	32

/* The options that set keys, applied after the file and environment. */
struct daemon_flags {
	const char	*file;			/* --config */
	const char	*names[DAEMON_FLAGS_MAX];	/* for messages */
	const char	*keys[DAEMON_FLAGS_MAX];
	const char	*vals[DAEMON_FLAGS_MAX];
	char		 depot_keys[DAEMON_FLAGS_MAX][160];
	size_t		 n;
	int		 show_login;
};

static void	usage(FILE *);
static int	help_main(int, char **);
static void	daemon_ready(const struct config *);

static const char *const commands[] = { "daemon", "version", "help", NULL };
static int	daemon_main(int, char **);
static void	daemon_config(struct config *, int, char **, int *);
static void	daemon_flags(struct daemon_flags *, int, char **);
static void	daemon_flag(struct daemon_flags *, const char *, const char *,
		    const char *);
static void	daemon_nofile(void);
static void	daemon_signals(sigset_t *);
static void	daemon_open(const struct config *, char *, size_t);
static struct job_kind	*daemon_workers(struct config *);
static struct job_kind	*daemon_job_kinds(void);
static void	daemon_login(const struct config *, const char *);
static int	daemon_wait(const sigset_t *, siginfo_t *);
static void	daemon_stop(const struct config *, int64_t, int);

static const struct option daemon_opts[] = {
	{ "config",	required_argument,	NULL, 'c' },
	{ "prefix",	required_argument,	NULL, 'p' },
	{ "listen",	required_argument,	NULL, 'l' },
	{ "log-level",	required_argument,	NULL, 'L' },
	{ "depot",	required_argument,	NULL, 'd' },
	{ "show-login",	no_argument,		NULL, 's' },
	{ "help",	no_argument,		NULL, 'h' },
	{ "version",	no_argument,		NULL, 'V' },
	{ NULL,		0,			NULL, 0 },
};

int
main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "daemon") == 0)
		return daemon_main(argc - 1, argv + 1);
	/* node, service, job and the other client commands. */
	if (argc >= 2 && cli_handles(argv[1]))
		return cli_main(argc - 1, argv + 1);
	if (argc >= 2 && (strcmp(argv[1], "--version") == 0 ||
	    strcmp(argv[1], "version") == 0)) {
		printf("nodee %s\n", NODEE_VERSION);
		return 0;
	}
	if (argc >= 2 && strcmp(argv[1], "help") == 0)
		return help_main(argc - 1, argv + 1);
	if (argc >= 2 && (strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "-h") == 0)) {
		usage(stdout);
		return 0;
	}
	if (argc < 2)
		fprintf(stderr, "nodee: a command is needed\n");
	else
		fprintf(stderr, "nodee: unknown command '%s'; did you mean "
		    "'%s'?\n", argv[1], cli_nearest(argv[1], commands));
	usage(stderr);
	return 2;
}


static void
usage(FILE *fp)
{
	fprintf(fp,
	    "usage: nodee daemon [options]\n"
	    "       nodee --version | --help\n"
	    "       nodee help config [--format conf|man|markdown]\n"
	    "\n"
	    "Runs the nodee daemon in the foreground.\n"
	    "\n"
	    "options (each overrides the same key from the environment,\n"
	    "which overrides the configuration file):\n"
	    "  --config FILE       configuration file (default: $NODEE_CONFIG,\n"
	    "                      else /etc/nodee/nodee.conf if it exists)\n"
	    "  --prefix DIR        key prefix: nodee's directory tree\n"
	    "  --listen ADDR:PORT  key listen: HTTP address (127.0.0.1:8080)\n"
	    "  --log-level LEVEL   key log_level: error, warn, info, debug\n"
	    "  --depot [GROUP=]URL key depot, or depot.GROUP for one groupId\n"
	    "                      (may be given several times)\n"
	    "  --show-login        print the console's login URL (with the\n"
	    "                      API token) at start-up\n"
	    "  --help, --version\n");
}

/*
 * nodee help: the usage; nodee help config: every configuration key with
 * its default, as conf/nodee.conf, the man page or the README show it
 * (`make docs` copies it there).
 */
static int
help_main(int argc, char **argv)
{
	static const char *const	 topics[] = { "config", NULL };
	static const char *const	 formats[] = { "conf", "man", "markdown",
					    NULL };
	const char			*fmt = "conf";
	int				 i;

	if (argc < 2) {
		usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "config") != 0) {
		fprintf(stderr, "nodee help: unknown topic '%s'; did you mean "
		    "'%s'?\n", argv[1], cli_nearest(argv[1], topics));
		return 2;
	}
	for (i = 2; i < argc; i++) {
		if (strncmp(argv[i], "--format=", 9) == 0)
			fmt = argv[i] + 9;
		else if (strcmp(argv[i], "--format") == 0 && i + 1 < argc)
			fmt = argv[++i];
		else {
			fprintf(stderr, "nodee help config: unexpected '%s'\n"
			    "usage: nodee help config [--format conf|man|"
			    "markdown]\n", argv[i]);
			return 2;
		}
	}
	for (i = 0; formats[i] != NULL; i++)
		if (strcmp(fmt, formats[i]) == 0)
			break;
	if (formats[i] == NULL) {
		fprintf(stderr, "nodee help config: unknown format '%s'; did "
		    "you mean '%s'?\n", fmt, cli_nearest(fmt, formats));
		return 2;
	}
	config_doc(stdout, i == 0 ? CONFIG_DOC_CONF : i == 1 ?
	    CONFIG_DOC_MAN : CONFIG_DOC_MARKDOWN);
	return fflush(stdout) == 0 && !ferror(stdout) ? 0 : 1;
}

static int
daemon_main(int argc, char **argv)
{
	struct config	 cf;
	struct api_ctx	 ctx;
	struct job_kind	*kinds;
	char		 err[1024], token[AUTH_TOKEN_LEN + 1];
	sigset_t	 sigs;
	siginfo_t	 si;
	int		 show_login = 0, sig;

	daemon_config(&cf, argc, argv, &show_login);
	log_set_level(cf.log_level);
	daemon_nofile();
	/*
	 * glibc gives each thread that allocates an arena of its own, and
	 * keeps them: with a dozen threads that is tens of MB for nothing.
	 */
	mallopt(M_ARENA_MAX, 2);
	daemon_signals(&sigs);
	umask(022);

	daemon_open(&cf, token, sizeof(token));
	kinds = daemon_workers(&cf);
	memset(&ctx, 0, sizeof(ctx));
	ctx.cf = &cf;
	ctx.started_ms = store_now_ms();
	if (registry_start(&cf, ctx.started_ms, err, sizeof(err)) != 0)
		fatal("%s", err);
	if (stream_start(&cf) != 0)
		fatal("cannot start the live streams");
	if (http_start(&cf, token, api_routes, &ctx, err, sizeof(err)) != 0)
		fatal("%s", err);
	log_info("main", "nodee %s started: instance %s, cell %s, prefix %s",
	    NODEE_VERSION, cf.instance, cf.cell, cf.prefix);
	daemon_ready(&cf);
	if (show_login)
		daemon_login(&cf, token);

	sig = daemon_wait(&sigs, &si);
	log_info("main", "%s received from pid %ld: stopping",
	    strsignal(sig), (long)si.si_pid);
	daemon_stop(&cf, ctx.started_ms, sig);
	free(kinds);
	return 0;
}

/*
 * Blocks the signals we wait for before any thread exists, so every
 * thread inherits the mask and only sigwaitinfo() in daemon_wait() sees
 * them; *waited is that set (SIGCHLD is the supervisor's, through its
 * signalfd).
 */
static void
daemon_signals(sigset_t *waited)
{
	sigemptyset(waited);
	sigaddset(waited, SIGTERM);
	sigaddset(waited, SIGINT);
	sigaddset(waited, SIGHUP);
	sigaddset(waited, SIGCHLD);
	if (pthread_sigmask(SIG_BLOCK, waited, NULL) != 0)
		fatal("pthread_sigmask failed");
	sigdelset(waited, SIGCHLD);
	signal(SIGPIPE, SIG_IGN);
}

/* The prefix (locked first), the API token, the store and libcurl. */
static void
daemon_open(const struct config *cf, char *token, size_t tokenlen)
{
	char	 err[1024], path[PATH_MAX + 32];
	json_t	*detail;

	/* The lock first: a refused second daemon touches nothing. */
	if (prefix_lock(cf->prefix, err, sizeof(err)) != 0)
		fatal("%s", err);
	if (prefix_prepare(cf->prefix, err, sizeof(err)) != 0)
		fatal("%s", err);
	snprintf(path, sizeof(path), "%s/state/token", cf->prefix);
	if (auth_token_load(path, token, tokenlen, err, sizeof(err)) != 0)
		fatal("%s", err);
	snprintf(path, sizeof(path), "%s/state/nodee.db", cf->prefix);
	if (store_open(path, err, sizeof(err)) != 0)
		fatal("%s: %s", path, err);
	if (fetch_global_init() != 0)
		fatal("cannot initialise libcurl");
	/* First in the audit log, before what recovery and workers write. */
	detail = json_pack("{s:s, s:I, s:s, s:s}", "version", NODEE_VERSION,
	    "pid", (json_int_t)getpid(), "listen", cf->listen, "prefix",
	    cf->prefix);
	store_event("daemon.started", cf->instance, detail);
	json_decref(detail);
}

/*
 * The job workers (after the jobs of the last run are queued again) and
 * the supervisor.  Returns the job kinds table, to free after
 * jobs_stop().
 */
static struct job_kind *
daemon_workers(struct config *cf)
{
	struct job_kind	*kinds;
	char		 tmp[PATH_MAX + 8];

	artifact_init(cf);
	snprintf(tmp, sizeof(tmp), "%s/tmp", cf->prefix);
	if (jobs_recover(tmp) < 0)
		fatal("cannot recover the jobs of the last run");
	artifact_on_install(sup_artifact_done);
	prepare_init(cf);
	prepare_on_done(sup_prepared);
	kinds = daemon_job_kinds();
	if (jobs_start(tmp, cf->workers, kinds, NULL) != 0)
		fatal("cannot start the job workers");
	sup_on_change(registry_changed);	/* before the thread reads it */
	sup_on_service(stream_service_changed);
	if (sup_start(cf) != 0)
		fatal("cannot start the supervisor");
	return kinds;
}

/* --show-login: the console's URL with the token, for a browser. */
static void
daemon_login(const struct config *cf, const char *token)
{
	fprintf(stderr, "\n  console: %s://%s%s%s:%u/?token=%s\n\n",
	    cf->tls_cert[0] ? "https" : "http", cf->listen_ipv6 ? "[" : "",
	    config_listen_is_loopback(cf) || cf->listen_ipv6 ?
	    cf->listen_host : "127.0.0.1", cf->listen_ipv6 ? "]" : "",
	    cf->listen_port, token);
}

/* Sleeps until a signal that stops the daemon; SIGHUP changes nothing. */
static int
daemon_wait(const sigset_t *sigs, siginfo_t *si)
{
	int	sig;

	for (;;) {
		if ((sig = sigwaitinfo(sigs, si)) == -1) {
			if (errno == EINTR)
				continue;
			fatal("sigwaitinfo: %s", strerror(errno));
		}
		if (sig != SIGHUP)
			return sig;
		log_info("main", "SIGHUP ignored: restart nodee to apply "
		    "configuration changes");
	}
}

/*
 * systemd (Type=notify) learns that the store, the supervisor and the
 * HTTP server are up, with a status line; nothing without NOTIFY_SOCKET.
 */
static void
daemon_ready(const struct config *cf)
{
	sqlite3_stmt	*st;
	sqlite3		*db = store_db();
	long long	 n = 0;

	if (db != NULL && sqlite3_prepare_v2(db, "SELECT count(*) FROM "
	    "services", -1, &st, NULL) == SQLITE_OK) {
		if (sqlite3_step(st) == SQLITE_ROW)
			n = sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
	}
	(void)sd_notifyf(0, "READY=1\nSTATUS=serving on %s; %lld service%s",
	    cf->listen, n, n == 1 ? "" : "s");
}

/*
 * Shutdown: the cell hears that the node is stopping before the API
 * goes away.  The services keep running; the next nodee adopts them.
 */
static void
daemon_stop(const struct config *cf, int64_t started_ms, int sig)
{
	json_t	*detail;

	(void)sd_notify(0, "STOPPING=1");
	registry_stopping();
	http_stop(NODEE_SHUTDOWN_GRACE_S);
	stream_stop();
	jobs_stop();
	sup_stop();
	registry_stop();
	detail = json_pack("{s:s, s:I}", "signal", sigabbrev_np(sig),
	    "uptime_s", (json_int_t)((store_now_ms() - started_ms) / 1000));
	store_event("daemon.stopped", cf->instance, detail);
	json_decref(detail);
	store_close();
	fetch_global_cleanup();
	log_info("main", "stopped");
}

/*
 * Builds the configuration: defaults, then the file, then NODEE_*
 * variables, then flags.  Flags are parsed first (to find --config) and
 * applied last.
 */
static void
daemon_config(struct config *cf, int argc, char **argv, int *show_login)
{
	struct daemon_flags	 fl;
	const char		*file;
	char			 err[1024], abs[PATH_MAX];
	struct stat		 st;
	size_t			 i;

	daemon_flags(&fl, argc, argv);
	*show_login = fl.show_login;
	config_defaults(cf);
	if ((file = fl.file) == NULL && (file = getenv("NODEE_CONFIG")) ==
	    NULL && stat("/etc/nodee/nodee.conf", &st) == 0)
		file = "/etc/nodee/nodee.conf";
	if (file != NULL && config_load_file(cf, file, err, sizeof(err)) != 0)
		fatal("%s", err);
	if (config_load_env(cf, environ, err, sizeof(err)) != 0)
		fatal("%s", err);
	for (i = 0; i < fl.n; i++) {
		if (config_set(cf, fl.keys[i], fl.vals[i], err,
		    sizeof(err)) != 0)
			fatal("option --%s: %s", fl.names[i], err);
	}
	if (config_check(cf, err, sizeof(err)) != 0)
		fatal("configuration%s%s: %s", file ? " " : "", file ? file : "",
		    err);
	if (prefix_absolute(cf->prefix, abs, sizeof(abs), err,
	    sizeof(err)) != 0)
		fatal("%s", err);
	snprintf(cf->prefix, sizeof(cf->prefix), "%s", abs);
}

/*
 * The command line of "nodee daemon": each option that sets a key, in
 * order, as (flag name, key, value); --help, --version and a bad option
 * end the program here.
 */
static void
daemon_flags(struct daemon_flags *fl, int argc, char **argv)
{
	const char	*eq, *scheme;
	int		 ch;

	memset(fl, 0, sizeof(*fl));
	while ((ch = getopt_long(argc, argv, "c:p:l:L:d:shV", daemon_opts,
	    NULL)) != -1) {
		switch (ch) {
		case 'c':
			fl->file = optarg;
			break;
		case 'p':
			daemon_flag(fl, "prefix", "prefix", optarg);
			break;
		case 'l':
			daemon_flag(fl, "listen", "listen", optarg);
			break;
		case 'L':
			daemon_flag(fl, "log-level", "log_level", optarg);
			break;
		case 'd':
			/* GROUP=URL, as the original nodee's --depot. */
			eq = strchr(optarg, '=');
			scheme = strstr(optarg, "://");
			if (eq != NULL && scheme != NULL && eq < scheme) {
				snprintf(fl->depot_keys[fl->n],
				    sizeof(fl->depot_keys[fl->n]), "depot.%.*s",
				    (int)(eq - optarg), optarg);
				daemon_flag(fl, "depot", fl->depot_keys[fl->n],
				    eq + 1);
			} else
				daemon_flag(fl, "depot", "depot", optarg);
			break;
		case 's':
			fl->show_login = 1;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case 'V':
			printf("nodee %s\n", NODEE_VERSION);
			exit(0);
		default:
			usage(stderr);
			exit(2);
		}
	}
	if (optind < argc) {
		fprintf(stderr, "nodee daemon: unexpected argument '%s'\n",
		    argv[optind]);
		usage(stderr);
		exit(2);
	}
}

static void
daemon_flag(struct daemon_flags *fl, const char *name, const char *key,
    const char *value)
{
	if (fl->n == DAEMON_FLAGS_MAX)
		fatal("too many options");
	fl->names[fl->n] = name;
	fl->keys[fl->n] = key;
	fl->vals[fl->n++] = value;
}

/*
 * The supervisor holds a pidfd per live service, the registry and HTTP
 * a few more: the default soft limit of 1024 descriptors is too few for
 * a thousand services.  The soft limit goes up to the hard one, as
 * systemd advises daemons to do (it keeps 1024 as the soft default only
 * for the sake of programs that still use select()).
 */
static void
daemon_nofile(void)
{
	struct rlimit	rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
		log_warn("main", "getrlimit(RLIMIT_NOFILE): %s",
		    strerror(errno));
		return;
	}
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
			log_warn("main", "cannot raise the open files limit "
			    "to %llu: %s", (unsigned long long)rl.rlim_max,
			    strerror(errno));
			(void)getrlimit(RLIMIT_NOFILE, &rl);
		}
	}
	log_info("main", "open files limit: %llu",
	    (unsigned long long)rl.rlim_cur);
	if (rl.rlim_cur < DAEMON_NOFILE_MIN)
		log_warn("main", "open files limit %llu is below %d: with many "
		    "services nodee runs out of descriptors; raise the hard "
		    "limit (LimitNOFILE= in the systemd unit, or ulimit -Hn)",
		    (unsigned long long)rl.rlim_cur, DAEMON_NOFILE_MIN);
}

/*
 * The job kinds of every module in one table, ended by a NULL kind as
 * jobs_start() reads it.  Lives until jobs_stop(); the caller frees it.
 */
static struct job_kind *
daemon_job_kinds(void)
{
	const struct job_kind	*tables[] = { artifact_job_kinds,
				    prepare_job_kinds };
	struct job_kind		*kinds;
	size_t			 t, i, n = 0;

	for (t = 0; t < sizeof(tables) / sizeof(tables[0]); t++)
		for (i = 0; tables[t][i].kind != NULL; i++)
			n++;
	if ((kinds = calloc(n + 1, sizeof(*kinds))) == NULL)
		fatal("out of memory");
	n = 0;
	for (t = 0; t < sizeof(tables) / sizeof(tables[0]); t++)
		for (i = 0; tables[t][i].kind != NULL; i++)
			kinds[n++] = tables[t][i];
	kinds[n].kind = NULL;
	kinds[n].run = NULL;
	kinds[n].done = NULL;
	return kinds;
}
