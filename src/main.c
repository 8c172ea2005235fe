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
#include <sys/stat.h>
#include <unistd.h>

#include "api.h"
#include "artifact.h"
#include "auth.h"
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
#include "sup.h"

extern char	**environ;

static void	usage(FILE *);
static int	daemon_main(int, char **);
static void	daemon_config(struct config *, int, char **, int *);

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
	if (argc >= 2 && (strcmp(argv[1], "--version") == 0 ||
	    strcmp(argv[1], "version") == 0)) {
		printf("nodee %s\n", NODEE_VERSION);
		return 0;
	}
	if (argc >= 2 && (strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0)) {
		usage(stdout);
		return 0;
	}
	usage(stderr);
	return 2;
}

static void
usage(FILE *fp)
{
	fprintf(fp,
	    "usage: nodee daemon [options]\n"
	    "       nodee --version | --help\n"
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

static int
daemon_main(int argc, char **argv)
{
	struct config	 cf;
	struct api_ctx	 ctx;
	char		 err[1024], path[PATH_MAX + 32], tmp[PATH_MAX + 8];
	char		 token[AUTH_TOKEN_LEN + 1];
	sigset_t	 sigs;
	siginfo_t	 si;
	json_t		*detail;
	struct job_kind	 kinds[8];
	size_t		 n, nk = 0;
	int		 show_login = 0, sig;

	daemon_config(&cf, argc, argv, &show_login);
	log_set_level(cf.log_level);
	/*
	 * glibc gives each thread that allocates an arena of its own, and
	 * keeps them: with a dozen threads that is tens of MB for nothing.
	 */
	mallopt(M_ARENA_MAX, 2);

	/*
	 * Block the signals we wait for before any thread exists, so every
	 * thread inherits the mask and only sigwaitinfo() below sees them.
	 */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	sigaddset(&sigs, SIGCHLD);	/* the supervisor's signalfd */
	if (pthread_sigmask(SIG_BLOCK, &sigs, NULL) != 0)
		fatal("pthread_sigmask failed");
	sigdelset(&sigs, SIGCHLD);
	signal(SIGPIPE, SIG_IGN);
	umask(022);

	/* The lock first: a refused second daemon touches nothing. */
	if (prefix_lock(cf.prefix, err, sizeof(err)) != 0)
		fatal("%s", err);
	if (prefix_prepare(cf.prefix, err, sizeof(err)) != 0)
		fatal("%s", err);
	snprintf(path, sizeof(path), "%s/state/token", cf.prefix);
	if (auth_token_load(path, token, sizeof(token), err, sizeof(err)) != 0)
		fatal("%s", err);
	snprintf(path, sizeof(path), "%s/state/nodee.db", cf.prefix);
	if (store_open(path, err, sizeof(err)) != 0)
		fatal("%s: %s", path, err);
	if (fetch_global_init() != 0)
		fatal("cannot initialise libcurl");
	/* First in the audit log, before what recovery and workers write. */
	detail = json_pack("{s:s, s:I, s:s, s:s}", "version", NODEE_VERSION,
	    "pid", (json_int_t)getpid(), "listen", cf.listen, "prefix",
	    cf.prefix);
	store_event("daemon.started", cf.instance, detail);
	json_decref(detail);
	artifact_init(&cf);
	snprintf(tmp, sizeof(tmp), "%s/tmp", cf.prefix);
	if (jobs_recover(tmp) < 0)
		fatal("cannot recover the jobs of the last run");
	artifact_on_install(sup_artifact_done);
	prepare_init(&cf);
	prepare_on_done(sup_prepared);
	for (n = 0; artifact_job_kinds[n].kind != NULL; n++)
		kinds[nk++] = artifact_job_kinds[n];
	for (n = 0; prepare_job_kinds[n].kind != NULL; n++)
		kinds[nk++] = prepare_job_kinds[n];
	if (jobs_start(tmp, cf.workers, kinds, NULL) != 0)
		fatal("cannot start the job workers");
	sup_on_change(registry_changed);	/* before the thread reads it */
	if (sup_start(&cf) != 0)
		fatal("cannot start the supervisor");

	memset(&ctx, 0, sizeof(ctx));
	ctx.cf = &cf;
	ctx.started_ms = store_now_ms();
	if (registry_start(&cf, ctx.started_ms, err, sizeof(err)) != 0)
		fatal("%s", err);
	if (http_start(&cf, token, api_routes, &ctx, err, sizeof(err)) != 0)
		fatal("%s", err);

	log_info("main", "nodee %s started: instance %s, cell %s, prefix %s",
	    NODEE_VERSION, cf.instance, cf.cell, cf.prefix);
	if (show_login)
		fprintf(stderr, "\n  console: %s://%s%s%s:%u/?token=%s\n\n",
		    cf.tls_cert[0] ? "https" : "http",
		    cf.listen_ipv6 ? "[" : "",
		    config_listen_is_loopback(&cf) || cf.listen_ipv6 ?
		    cf.listen_host : "127.0.0.1", cf.listen_ipv6 ? "]" : "",
		    cf.listen_port, token);

	for (;;) {
		if ((sig = sigwaitinfo(&sigs, &si)) == -1) {
			if (errno == EINTR)
				continue;
			fatal("sigwaitinfo: %s", strerror(errno));
		}
		if (sig == SIGHUP) {
			log_info("main", "SIGHUP ignored: restart nodee to apply "
			    "configuration changes");
			continue;
		}
		break;
	}
	log_info("main", "%s received from pid %ld: stopping",
	    strsignal(sig), (long)si.si_pid);
	registry_stopping();
	http_stop(NODEE_SHUTDOWN_GRACE_S);
	jobs_stop();
	sup_stop();
	registry_stop();
	detail = json_pack("{s:s, s:I}", "signal", sigabbrev_np(sig),
	    "uptime_s", (json_int_t)((store_now_ms() - ctx.started_ms) / 1000));
	store_event("daemon.stopped", cf.instance, detail);
	json_decref(detail);
	store_close();
	fetch_global_cleanup();
	log_info("main", "stopped");
	return 0;
}

/*
 * Builds the configuration: defaults, then the file, then NODEE_*
 * variables, then flags.  Flags are parsed first (to find --config) and
 * applied last.
 */
static void
daemon_config(struct config *cf, int argc, char **argv, int *show_login)
{
	const char	*file = NULL, *flag_keys[32], *flag_vals[32];
	const char	*flag_names[32], *eq, *scheme;
	static char	 depot_keys[32][160];
	char		 err[1024], abs[PATH_MAX];
	struct stat	 st;
	size_t		 nflags = 0, i;
	int		 ch;

	while ((ch = getopt_long(argc, argv, "c:p:l:L:d:shV", daemon_opts,
	    NULL)) != -1) {
		switch (ch) {
		case 'c':
			file = optarg;
			break;
		case 'p':
			flag_names[nflags] = "prefix";
			flag_keys[nflags] = "prefix";
			flag_vals[nflags++] = optarg;
			break;
		case 'l':
			flag_names[nflags] = "listen";
			flag_keys[nflags] = "listen";
			flag_vals[nflags++] = optarg;
			break;
		case 'L':
			flag_names[nflags] = "log-level";
			flag_keys[nflags] = "log_level";
			flag_vals[nflags++] = optarg;
			break;
		case 'd':
			/* GROUP=URL, as the original nodee's --depot. */
			flag_names[nflags] = "depot";
			eq = strchr(optarg, '=');
			scheme = strstr(optarg, "://");
			if (eq != NULL && scheme != NULL && eq < scheme) {
				snprintf(depot_keys[nflags],
				    sizeof(depot_keys[nflags]), "depot.%.*s",
				    (int)(eq - optarg), optarg);
				flag_keys[nflags] = depot_keys[nflags];
				flag_vals[nflags++] = eq + 1;
			} else {
				flag_keys[nflags] = "depot";
				flag_vals[nflags++] = optarg;
			}
			break;
		case 's':
			*show_login = 1;
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
		if (nflags == sizeof(flag_keys) / sizeof(flag_keys[0]))
			fatal("too many options");
	}
	if (optind < argc) {
		fprintf(stderr, "nodee daemon: unexpected argument '%s'\n",
		    argv[optind]);
		usage(stderr);
		exit(2);
	}

	config_defaults(cf);
	if (file == NULL && (file = getenv("NODEE_CONFIG")) == NULL &&
	    stat("/etc/nodee/nodee.conf", &st) == 0)
		file = "/etc/nodee/nodee.conf";
	if (file != NULL && config_load_file(cf, file, err, sizeof(err)) != 0)
		fatal("%s", err);
	if (config_load_env(cf, environ, err, sizeof(err)) != 0)
		fatal("%s", err);
	for (i = 0; i < nflags; i++) {
		if (config_set(cf, flag_keys[i], flag_vals[i], err,
		    sizeof(err)) != 0)
			fatal("option --%s: %s", flag_names[i], err);
	}
	if (config_check(cf, err, sizeof(err)) != 0)
		fatal("configuration%s%s: %s", file ? " " : "", file ? file : "",
		    err);
	if (prefix_absolute(cf->prefix, abs, sizeof(abs), err,
	    sizeof(err)) != 0)
		fatal("%s", err);
	snprintf(cf->prefix, sizeof(cf->prefix), "%s", abs);
}
