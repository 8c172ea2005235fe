/*
 * cli: the `nodee` command-line client.  `nodee service ls`, `nodee
 * artifact install g:a:v` and the rest are thin front ends to the REST API
 * (libcurl, jansson): nothing here reads the store or the prefix, except
 * the API token file when no token is given.
 *
 * One table (cli_cmds) names every command, its arguments, its options
 * and, for the plain reads, the API path and how to show the answer; the
 * commands that act (install, put, stop, ...) have a function each.
 * Human output is aligned tables and key: value lines; --json prints the
 * API's document as it came.  Exit status: 0 success, 1 the API refused
 * (its problem detail on stderr), 2 bad usage, 3 daemon unreachable.
 */
#include <sys/stat.h>

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "cli.h"
#include "wsc.h"

#define CLI_OK		0
#define CLI_FAIL	1
#define CLI_USAGE	2
#define CLI_DOWN	3

#define CLI_WORDS	4
#define CLI_POLL_US	200000
#define CLI_SETTLE_S	30

/* Every option the client knows; globals are taken anywhere. */
enum cli_optid {
	O_URL, O_TOKEN, O_PREFIX, O_JSON, O_HELP, O_DEPOT_URL, O_SHA256,
	O_NO_WAIT, O_PURGE, O_STDERR, O_N, O_STATE, O_KIND, O_SUBJECT,
	O_SINCE, O_AS, O_FOLLOW, O_COUNT
};

struct cli_opt {
	const char	*name;
	int		 value;		/* takes a value */
	const char	*query;		/* query parameter of a GET, or NULL */
};

static const struct cli_opt cli_opts[O_COUNT] = {
	[O_URL] = { "--url", 1, NULL },
	[O_TOKEN] = { "--token", 1, NULL },
	[O_PREFIX] = { "--prefix", 1, NULL },
	[O_JSON] = { "--json", 0, NULL },
	[O_HELP] = { "--help", 0, NULL },
	[O_DEPOT_URL] = { "--url", 1, NULL },	/* of artifact install */
	[O_SHA256] = { "--sha256", 1, NULL },
	[O_NO_WAIT] = { "--no-wait", 0, NULL },
	[O_PURGE] = { "--purge", 0, NULL },
	[O_STDERR] = { "--stderr", 0, NULL },
	[O_N] = { "-n", 1, "limit" },
	[O_STATE] = { "--state", 1, "state" },
	[O_KIND] = { "--kind", 1, "kind" },
	[O_SUBJECT] = { "--subject", 1, "subject" },
	[O_SINCE] = { "--since", 1, "since" },
	[O_AS] = { "--as", 1, NULL },
	[O_FOLLOW] = { "-f", 0, NULL },
};

struct cli {
	char		 url[512];
	char		 token[512];
	int		 json;
	int		 tty;		/* stdout is a terminal */
	int		 color;
	const char	*val[O_COUNT];	/* option values ("" for flags) */
	const char	*words[CLI_WORDS];
	int		 nwords;
	const char	*arg;		/* the command's first argument */
	const char	*arg2;
	const struct cli_cmd	*cmd;
	FILE		*upload;	/* the body of the next request */
	curl_off_t	 upload_size;
	const char	*upload_sha;	/* X-Checksum-Sha256, or NULL */
	struct cli_meter *meter;	/* of the upload */
};

/* Progress of something long: rate and ETA from where the phase began. */
struct cli_meter {
	char		 label[128];
	double		 t0, last;	/* seconds */
	uint64_t	 d0;
	int		 step;		/* quarters printed, off a terminal */
};

/* How a table column shows its value. */
enum cli_fmt { F_TEXT, F_STATE, F_TIME, F_UPTIME, F_BYTES };

struct cli_col {
	const char	*head;
	const char	*key;
	enum cli_fmt	 fmt;
};

/* What the argument names: how it goes into the path. */
enum cli_argk { A_NONE, A_GAV, A_WORD };

struct cli_cmd {
	const char		*group;	/* "service", or NULL */
	const char		*name;
	int			(*run)(struct cli *);
	const char		*args;	/* for the usage line */
	enum cli_argk		 argk;
	unsigned		 opts;	/* bit per enum cli_optid */
	const char		*what;
	const char		*path;	/* GET path (%s: the argument) */
	const char		*list;	/* key of the array to tabulate */
	const struct cli_col	*cols;
};

struct cli_buf {
	char	*p;
	size_t	 len;
};

#define OPT(o)	(1u << (o))

static int	cli_args(struct cli *, int, char **);
static int	cli_setup(struct cli *);
static int	cli_find(struct cli *);
static int	cli_check_opts(const struct cli *);
static int	cli_usage(FILE *, const struct cli_cmd *, const char *,
		    const char *);
static size_t	cli_distance(const char *, const char *);
static int	cli_http(struct cli *, const char *, const char *, const char *,
		    struct cli_buf *, long *);
static int	cli_problem(long, const struct cli_buf *);
static int	cli_call(struct cli *, const char *, const char *, const char *,
		    json_t **);
static int	cli_path(struct cli *, const char *, char *, size_t);
static void	cli_query(const struct cli *, char *, size_t);
static void	cli_show(struct cli *, json_t *);
static void	cli_table(const struct cli *, json_t *, const struct cli_col *);
static void	cli_object(const struct cli *, json_t *, const char *);
static void	cli_value(json_t *, enum cli_fmt, char *, size_t);
static const char	*cli_color(const char *);
static int	cli_wait_job(struct cli *, json_int_t);
static double	cli_now(void);
static void	cli_bytes(char *, size_t, const char *, uint64_t, const char *);
static void	cli_meter_start(struct cli_meter *, const char *, uint64_t);
static void	cli_meter_show(const struct cli *, struct cli_meter *, uint64_t,
		    uint64_t, int);
static int	cli_upload_progress(void *, curl_off_t, curl_off_t, curl_off_t,
		    curl_off_t);
static int	cli_upload(struct cli *);
static int	cli_installed(struct cli *, json_t *);
static int	cli_follow(struct cli *, const char *,
		    int (*)(struct cli *, json_t *, void *), void *);
static int	cli_follow_open(struct cli *, const char *, struct wsc *);
static int	cli_follow_read(struct cli *, struct wsc *,
		    int (*)(struct cli *, json_t *, void *), void *);
static int	cli_log_msg(struct cli *, json_t *, void *);
static int	cli_events(struct cli *);
static int	cli_event_msg(struct cli *, json_t *, void *);
static void	cli_event_line(const struct cli *, json_t *);
static int	cli_job_answer(struct cli *, json_t *);
static int	cli_request(struct cli *, const char *, const char *,
		    const char *, const char *, json_t **);
static int	cli_done(struct cli *, json_t *, const char *);
static int	cli_state(struct cli *, json_t *);
static size_t	cli_collect(char *, size_t, size_t, void *);
static char	*cli_slurp(const char *);
static int	cli_settle(struct cli *, const char *, const char *);
static int	cli_get(struct cli *);
static int	cli_install(struct cli *);
static int	cli_artifact_rm(struct cli *);
static int	cli_put(struct cli *);
static int	cli_service_op(struct cli *);
static int	cli_service_rm(struct cli *);
static int	cli_logs(struct cli *);
static int	cli_job_cancel(struct cli *);
static int	cli_job_wait(struct cli *);
static int	cli_drain_node(struct cli *);

static const struct cli_col cli_services[] = {
	{ "COORDINATE", "coordinate", F_TEXT }, { "STATE", "state", F_STATE },
	{ "PID", "pid", F_TEXT }, { "RESTARTS", "restarts", F_TEXT },
	{ "UPTIME", "started_at", F_UPTIME }, { "REASON", "reason", F_TEXT },
	{ NULL, NULL, F_TEXT }
};
static const struct cli_col cli_artifacts[] = {
	{ "COORDINATE", "coordinate", F_TEXT }, { "SIZE", "size_bytes", F_BYTES },
	{ "FILES", "file_count", F_TEXT }, { "VERIFIED", "verified", F_TEXT },
	{ "INSTALLED", "installed_at", F_TIME }, { "SERVICES", "services", F_TEXT },
	{ NULL, NULL, F_TEXT }
};
static const struct cli_col cli_jobs[] = {
	{ "ID", "id", F_TEXT }, { "KIND", "kind", F_TEXT },
	{ "SUBJECT", "subject", F_TEXT }, { "STATE", "state", F_STATE },
	{ "PHASE", "phase", F_TEXT }, { "CREATED", "created_at", F_TIME },
	{ "ERROR", "error", F_TEXT }, { NULL, NULL, F_TEXT }
};
static const struct cli_col cli_event_cols[] = {
	{ "ID", "id", F_TEXT }, { "TIME", "time", F_TIME },
	{ "KIND", "kind", F_TEXT }, { "SUBJECT", "subject", F_TEXT },
	{ "DETAIL", "detail", F_TEXT }, { NULL, NULL, F_TEXT }
};
static const struct cli_col cli_runs[] = {
	{ "ID", "id", F_TEXT }, { "PID", "pid", F_TEXT },
	{ "REASON", "reason", F_TEXT }, { "STARTED", "started_at", F_TIME },
	{ "ENDED", "ended_at", F_TIME }, { "CODE", "exit_code", F_TEXT },
	{ "SIGNAL", "exit_signal", F_TEXT }, { "ARTIFACT", "artifact", F_TEXT },
	{ NULL, NULL, F_TEXT }
};
static const struct cli_col cli_nodes[] = {
	{ "INSTANCE", "instance", F_TEXT }, { "SELF", "self", F_TEXT },
	{ "SESSION", "session", F_TEXT }, { "MODIFIED", "modified_at", F_TIME },
	{ NULL, NULL, F_TEXT }
};
static const struct cli_col cli_drained[] = {
	{ "COORDINATE", "coordinate", F_TEXT }, { "STATUS", "status", F_STATE },
	{ "DETAIL", "detail", F_TEXT }, { NULL, NULL, F_TEXT }
};

static const struct cli_cmd cli_cmds[] = {
	{ NULL, "node", cli_get, "", A_NONE, 0, "this node: version, "
	    "uptime, machine, registry", "/api/v1/node", NULL, NULL },
	{ NULL, "cell", cli_get, "", A_NONE, 0, "the nodes of the cell",
	    "/api/v1/cell/nodes", "nodes", cli_nodes },
	{ NULL, "drain-node", cli_drain_node, "", A_NONE, 0, "mark the node "
	    "draining and drain every running service", NULL, NULL, NULL },
	{ NULL, "events", cli_events, "[--kind K] [--subject S] "
	    "[--since MS] [-n N] [-f]", A_NONE, OPT(O_KIND) | OPT(O_SUBJECT) |
	    OPT(O_SINCE) | OPT(O_N) | OPT(O_FOLLOW), "the audit history, "
	    "newest first; -f: the last N (20) oldest first, then each new "
	    "event as it happens", "/api/v1/events", "events", cli_event_cols },
	{ "artifact", "ls", cli_get, "", A_NONE, 0, "installed artifacts",
	    "/api/v1/artifacts", "artifacts", cli_artifacts },
	{ "artifact", "show", cli_get, "G:A:V", A_GAV, 0, "one artifact",
	    "/api/v1/artifacts/%s", NULL, NULL },
	{ "artifact", "install", cli_install, "G:A:V [--url U] "
	    "[--sha256 H] [--no-wait] | FILE.zip --as G:A:V [--sha256 H] "
	    "[--no-wait]", A_GAV, OPT(O_DEPOT_URL) | OPT(O_SHA256) |
	    OPT(O_NO_WAIT) | OPT(O_AS), "install an artifact from the depot, "
	    "or upload a zip (a path with a '/' or ending in .zip), and wait "
	    "for the job", NULL, NULL, NULL },
	{ "artifact", "rm", cli_artifact_rm, "G:A:V", A_GAV, 0, "remove an "
	    "artifact no service uses", NULL, NULL, NULL },
	{ "service", "ls", cli_get, "", A_NONE, 0, "every service",
	    "/api/v1/services", "services", cli_services },
	{ "service", "show", cli_get, "C", A_WORD, 0, "one service",
	    "/api/v1/services/%s", NULL, NULL },
	{ "service", "put", cli_put, "C [FILE|-] [--no-wait]", A_WORD,
	    OPT(O_NO_WAIT), "create or replace a service from its start spec "
	    "(a file, or stdin)", NULL, NULL, NULL },
	{ "service", "start", cli_service_op, "C", A_WORD, 0, "start a "
	    "service", NULL, NULL, NULL },
	{ "service", "stop", cli_service_op, "C [--no-wait]", A_WORD,
	    OPT(O_NO_WAIT), "stop a service and wait until it has stopped",
	    NULL, NULL, NULL },
	{ "service", "drain", cli_service_op, "C [--no-wait]", A_WORD,
	    OPT(O_NO_WAIT), "drain a service and wait until it settles", NULL,
	    NULL, NULL },
	{ "service", "restart", cli_service_op, "C [--no-wait]", A_WORD,
	    OPT(O_NO_WAIT), "restart a service and wait until it settles",
	    NULL, NULL, NULL },
	{ "service", "rm", cli_service_rm, "C [--purge]", A_WORD, OPT(O_PURGE),
	    "stop and forget a service (--purge: its runtime directory too)",
	    NULL, NULL, NULL },
	{ "service", "logs", cli_logs, "C [--stderr] [-n N] [-f]", A_WORD,
	    OPT(O_STDERR) | OPT(O_N) | OPT(O_FOLLOW), "the last lines of its "
	    "log; -f: then the lines as they are written, across rotations",
	    NULL, NULL, NULL },
	{ "service", "runs", cli_get, "C", A_WORD, 0, "every incarnation, "
	    "newest first", "/api/v1/services/%s/runs", "runs", cli_runs },
	{ "job", "ls", cli_get, "[--state S] [--kind K]", A_NONE,
	    OPT(O_STATE) | OPT(O_KIND), "jobs, newest first", "/api/v1/jobs",
	    "jobs", cli_jobs },
	{ "job", "show", cli_get, "ID", A_WORD, 0, "one job",
	    "/api/v1/jobs/%s", NULL, NULL },
	{ "job", "cancel", cli_job_cancel, "ID", A_WORD, 0, "cancel a queued "
	    "or running job", NULL, NULL, NULL },
	{ "job", "wait", cli_job_wait, "ID", A_WORD, 0, "wait until a job "
	    "ends", NULL, NULL, NULL },
	{ NULL, NULL, NULL, NULL, A_NONE, 0, NULL, NULL, NULL, NULL }
};

/* The top-level words of the client, for nearest() and cli_handles(). */
static const char *const cli_top[] = { "node", "artifact", "service", "job",
    "events", "cell", "drain-node", "daemon", "version", "help", NULL };

int
cli_handles(const char *word)
{
	size_t	i;

	if (strcmp(word, "--help") == 0 || strcmp(word, "-h") == 0)
		return 1;
	for (i = 0; i < O_COUNT; i++)
		if (i != O_DEPOT_URL && strncmp(word, cli_opts[i].name,
		    strlen(cli_opts[i].name)) == 0)
			return 1;
	/* daemon, version and help, or words nearest to them, are main's. */
	if (word[0] == '-')
		return 0;
	word = cli_nearest(word, cli_top);
	return strcmp(word, "daemon") != 0 && strcmp(word, "version") != 0 &&
	    strcmp(word, "help") != 0;
}

int
cli_main(int argc, char **argv)
{
	struct cli	c;
	int		rc;

	memset(&c, 0, sizeof(c));
	if ((rc = cli_args(&c, argc, argv)) != CLI_OK)
		return rc;
	if ((rc = cli_find(&c)) != CLI_OK || c.cmd == NULL)
		return rc;
	if (c.val[O_HELP] != NULL)
		return cli_usage(stdout, c.cmd, NULL, NULL);
	if ((rc = cli_setup(&c)) != CLI_OK)
		return rc;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	rc = c.cmd->run(&c);
	curl_global_cleanup();
	return rc;
}

/*
 * Splits the command line into words and options, in any order.  --url
 * after `artifact install` is the artifact's URL, not the daemon's.
 */
static int
cli_args(struct cli *c, int argc, char **argv)
{
	const char	*names[O_COUNT + 2], *a, *eq;
	size_t		 i, len;
	int		 k, id;

	for (k = 0; k < argc; k++) {
		a = argv[k];
		if (a[0] != '-' || strcmp(a, "-") == 0) {
			if (c->nwords == CLI_WORDS) {
				fprintf(stderr, "nodee: unexpected argument "
				    "'%s'\n", a);
				return CLI_USAGE;
			}
			c->words[c->nwords++] = a;
			continue;
		}
		len = (eq = strchr(a, '=')) ? (size_t)(eq - a) : strlen(a);
		for (id = -1, i = 0; i < O_COUNT && id < 0; i++)
			if (strlen(cli_opts[i].name) == len &&
			    strncmp(a, cli_opts[i].name, len) == 0)
				id = (int)i;
		if (strcmp(a, "-h") == 0)
			id = O_HELP;
		if (id < 0) {
			for (i = 0; i < O_COUNT; i++)
				names[i] = cli_opts[i].name;
			names[O_COUNT] = NULL;
			fprintf(stderr, "nodee: unknown option '%.*s'; did you "
			    "mean '%s'?\n", (int)len, a, cli_nearest(a, names));
			return CLI_USAGE;
		}
		if (id == O_URL && c->nwords >= 2 && strcmp(c->words[0],
		    "artifact") == 0 && strcmp(c->words[1], "install") == 0)
			id = O_DEPOT_URL;
		if (!cli_opts[id].value)
			c->val[id] = "";
		else if (eq != NULL)
			c->val[id] = eq + 1;
		else if (k + 1 < argc)
			c->val[id] = argv[++k];
		else {
			fprintf(stderr, "nodee: option %s needs a value\n", a);
			return CLI_USAGE;
		}
	}
	return CLI_OK;
}

/*
 * Finds the command the words name; an unknown one is named with the
 * nearest.  c->cmd stays NULL (with the status to exit with) when only a
 * usage was asked for or printed.
 */
static int
cli_find(struct cli *c)
{
	const char		*subs[32];
	const struct cli_cmd	*m;
	size_t			 n = 0;
	int			 nargs = 0, group = 0;

	if (c->nwords == 0)
		return cli_usage(c->val[O_HELP] ? stdout : stderr, NULL, NULL,
		    c->val[O_HELP] ? NULL : "a command is needed");
	for (m = cli_cmds; m->name != NULL; m++) {
		if (m->group == NULL && strcmp(m->name, c->words[0]) == 0)
			break;
		if (m->group == NULL || strcmp(m->group, c->words[0]) != 0)
			continue;
		group = 1;
		if (c->nwords > 1 && strcmp(m->name, c->words[1]) == 0)
			break;
		subs[n++] = m->name;
	}
	subs[n] = NULL;
	if (m->name == NULL && !group) {
		fprintf(stderr, "nodee: unknown command '%s'; did you mean "
		    "'%s'?\n", c->words[0], cli_nearest(c->words[0], cli_top));
		return CLI_USAGE;
	}
	if (m->name == NULL && c->nwords < 2)
		return cli_usage(c->val[O_HELP] ? stdout : stderr, NULL,
		    c->words[0], c->val[O_HELP] ? NULL :
		    "a subcommand is needed");
	if (m->name == NULL) {
		fprintf(stderr, "nodee %s: unknown subcommand '%s'; did you "
		    "mean '%s'?\n", c->words[0], c->words[1],
		    cli_nearest(c->words[1], subs));
		return CLI_USAGE;
	}
	c->cmd = m;
	if (cli_check_opts(c) != CLI_OK) {
		c->cmd = NULL;
		return CLI_USAGE;
	}
	nargs = c->nwords - (m->group ? 2 : 1);
	c->arg = nargs > 0 ? c->words[c->nwords - nargs] : NULL;
	c->arg2 = nargs > 1 ? c->words[c->nwords - nargs + 1] : NULL;
	if (c->val[O_HELP] == NULL && ((m->argk == A_NONE && nargs > 0) ||
	    (m->argk != A_NONE && nargs < 1) || nargs > 1 + (m->run ==
	    cli_put))) {
		c->cmd = NULL;
		return cli_usage(stderr, m, NULL, "wrong number of arguments");
	}
	return CLI_OK;
}

/* An option that is neither global nor the command's is bad usage. */
static int
cli_check_opts(const struct cli *c)
{
	size_t	i;

	for (i = O_HELP + 1; i < O_COUNT; i++)
		if (c->val[i] != NULL && !(c->cmd->opts & OPT(i))) {
			fprintf(stderr, "nodee: option %s does not apply to "
			    "nodee %s%s%s (see --help)\n", cli_opts[i].name,
			    c->cmd->group ? c->cmd->group : "",
			    c->cmd->group ? " " : "", c->cmd->name);
			return CLI_USAGE;
		}
	return CLI_OK;
}

/*
 * The usage of one command (cmd), of a group (group) or of everything;
 * with why, says it first and returns CLI_USAGE.
 */
static int
cli_usage(FILE *fp, const struct cli_cmd *cmd, const char *group,
    const char *why)
{
	const struct cli_cmd	*m;

	if (why != NULL)
		fprintf(fp, "nodee: %s\n", why);
	fprintf(fp, "usage:\n");
	if (cmd == NULL && group == NULL)
		fprintf(fp, "  nodee daemon [options]   (nodee daemon --help)\n"
		    "  nodee --version | --help\n");
	for (m = cli_cmds; m->name != NULL; m++) {
		if ((cmd != NULL && m != cmd) || (group != NULL &&
		    (m->group == NULL || strcmp(m->group, group) != 0)))
			continue;
		fprintf(fp, "  nodee %s%s%s%s%s\n", m->group ? m->group : "",
		    m->group ? " " : "", m->name, m->args[0] ? " " : "",
		    m->args);
		if (cmd != NULL)
			fprintf(fp, "\n%s.\n", m->what);
	}
	fprintf(fp, "\nglobal options (before or after the command):\n"
	    "  --url URL      the daemon's API (NODEE_URL; "
	    "http://127.0.0.1:8080)\n"
	    "  --token T      API token (NODEE_TOKEN; else PREFIX/state/token)\n"
	    "  --prefix DIR   the daemon's prefix (NODEE_PREFIX; "
	    "/var/lib/nodee)\n"
	    "  --json         print the API's JSON as it is\n"
	    "  --help         usage of any command\n");
	return why != NULL ? CLI_USAGE : CLI_OK;
}

/* The URL, the token (flag, environment, else the prefix's file), colour. */
static int
cli_setup(struct cli *c)
{
	const char	*v, *prefix;
	char		 path[4096];
	FILE		*fp;
	size_t		 n;

	if ((v = c->val[O_URL]) == NULL && (v = getenv("NODEE_URL")) == NULL)
		v = "http://127.0.0.1:8080";
	snprintf(c->url, sizeof(c->url), "%s", v);
	n = strlen(c->url);
	while (n > 0 && c->url[n - 1] == '/')
		c->url[--n] = '\0';
	if ((v = c->val[O_TOKEN]) != NULL || ((v = getenv("NODEE_TOKEN")) !=
	    NULL && v[0] != '\0'))
		snprintf(c->token, sizeof(c->token), "%s", v);
	else {
		if ((prefix = c->val[O_PREFIX]) == NULL && (prefix =
		    getenv("NODEE_PREFIX")) == NULL)
			prefix = "/var/lib/nodee";
		snprintf(path, sizeof(path), "%s/state/token", prefix);
		if ((fp = fopen(path, "r")) != NULL) {
			if (fgets(c->token, sizeof(c->token), fp) == NULL)
				c->token[0] = '\0';
			fclose(fp);
		}
	}
	c->token[strcspn(c->token, " \t\r\n")] = '\0';
	c->json = c->val[O_JSON] != NULL;
	c->tty = isatty(STDOUT_FILENO);
	v = getenv("NO_COLOR");
	c->color = c->tty && (v == NULL || v[0] == '\0');
	return CLI_OK;
}

/* Levenshtein distance, two rows. */
static size_t
cli_distance(const char *a, const char *b)
{
	size_t	row[2][64], i, j, la = strlen(a), lb = strlen(b), cost;

	if (la >= 63 || lb >= 63)
		return la > lb ? la : lb;
	for (j = 0; j <= lb; j++)
		row[0][j] = j;
	for (i = 1; i <= la; i++) {
		size_t	*prev = row[(i - 1) % 2], *cur = row[i % 2];

		cur[0] = i;
		for (j = 1; j <= lb; j++) {
			cost = prev[j - 1] + (a[i - 1] != b[j - 1]);
			if (prev[j] + 1 < cost)
				cost = prev[j] + 1;
			if (cur[j - 1] + 1 < cost)
				cost = cur[j - 1] + 1;
			cur[j] = cost;
		}
	}
	return row[la % 2][lb];
}

/* The word of words (NULL-terminated) fewest edits away from s. */
const char *
cli_nearest(const char *s, const char *const *words)
{
	const char	*best = words[0];
	size_t		 i, d, bestd = (size_t)-1;

	for (i = 0; words[i] != NULL; i++)
		if ((d = cli_distance(s, words[i])) < bestd) {
			bestd = d;
			best = words[i];
		}
	return best ? best : "";
}

static size_t
cli_collect(char *data, size_t size, size_t n, void *arg)
{
	struct cli_buf	*b = arg;
	char		*p;

	if ((p = realloc(b->p, b->len + size * n + 1)) == NULL)
		return 0;
	memcpy(p + b->len, data, size * n);
	b->len += size * n;
	p[b->len] = '\0';
	b->p = p;
	return size * n;
}

/*
 * One request; out gets the body (the caller frees out->p).  A daemon
 * that does not answer is CLI_DOWN, with a message naming the URL.
 */
static int
cli_http(struct cli *c, const char *method, const char *path,
    const char *body, struct cli_buf *out, long *status)
{
	CURL			*h;
	struct curl_slist	*hdr = NULL;
	char			 url[4096], auth[600];
	CURLcode		 rc;

	memset(out, 0, sizeof(*out));
	if ((h = curl_easy_init()) == NULL) {
		fprintf(stderr, "nodee: cannot initialise libcurl\n");
		return CLI_FAIL;
	}
	snprintf(url, sizeof(url), "%s%s", c->url, path);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 120L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, cli_collect);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
	if (c->token[0] != '\0') {
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s",
		    c->token);
		hdr = curl_slist_append(hdr, auth);
	}
	if (body != NULL) {
		hdr = curl_slist_append(hdr, "Content-Type: application/json");
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
	} else if (c->upload != NULL) {
		hdr = curl_slist_append(hdr, "Content-Type: application/zip");
		if (c->upload_sha != NULL) {
			snprintf(auth, sizeof(auth), "X-Checksum-Sha256: %s",
			    c->upload_sha);
			hdr = curl_slist_append(hdr, auth);
		}
		curl_easy_setopt(h, CURLOPT_POST, 1L);
		curl_easy_setopt(h, CURLOPT_READDATA, c->upload);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
		    c->upload_size);
		/* Big zips take their time: no total limit, but no stall. */
		curl_easy_setopt(h, CURLOPT_TIMEOUT, 0L);
		curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
		curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 60L);
		curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
		curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION,
		    cli_upload_progress);
		curl_easy_setopt(h, CURLOPT_XFERINFODATA, c);
	}
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
	rc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
	curl_easy_cleanup(h);
	curl_slist_free_all(hdr);
	if (rc == CURLE_OK)
		return CLI_OK;
	fprintf(stderr, "nodee: cannot reach the nodee daemon at %s: %s\n"
	    "(is it running? give its address with --url or NODEE_URL)\n",
	    c->url, curl_easy_strerror(rc));
	free(out->p);
	out->p = NULL;
	return CLI_DOWN;
}

/*
 * A request whose answer is JSON: *doc is it (the caller decrefs).  An
 * error status prints the problem's detail and is CLI_FAIL.
 */
static int
cli_call(struct cli *c, const char *method, const char *path,
    const char *body, json_t **doc)
{
	struct cli_buf	 b;
	long		 status = 0;
	int		 rc;

	*doc = NULL;
	if ((rc = cli_http(c, method, path, body, &b, &status)) != CLI_OK)
		return rc;
	if (b.p != NULL)
		*doc = json_loadb(b.p, b.len, 0, NULL);
	if (status >= 200 && status < 300) {
		free(b.p);
		return CLI_OK;
	}
	json_decref(*doc);
	*doc = NULL;
	rc = cli_problem(status, &b);
	free(b.p);
	return rc;
}

/* An error answer: the problem's detail and the status on stderr. */
static int
cli_problem(long status, const struct cli_buf *b)
{
	json_t		*doc = b->p ? json_loadb(b->p, b->len, 0, NULL) : NULL;
	const char	*detail;

	if ((detail = json_string_value(json_object_get(doc, "detail"))) ==
	    NULL && (detail = json_string_value(json_object_get(doc,
	    "title"))) == NULL)
		detail = b->p ? b->p : "no answer";
	fprintf(stderr, "nodee: %s (HTTP %ld)\n", detail, status);
	if (status == 401)
		fprintf(stderr, "(give the API token with --token or "
		    "NODEE_TOKEN, or the daemon's --prefix to read it)\n");
	json_decref(doc);
	return CLI_FAIL;
}

/*
 * The command's API path: its format with the argument escaped (a G:A:V
 * becomes G/A/V), then the query its options make.
 */
static int
cli_path(struct cli *c, const char *fmt, char *path, size_t len)
{
	char	 arg[1024] = "", *part, *dup, *save = NULL, *e;
	int	 n = 0;

	if (c->arg != NULL && (dup = strdup(c->arg)) != NULL) {
		for (part = strtok_r(dup, c->cmd->argk == A_GAV ? ":" : "",
		    &save); part != NULL; part = strtok_r(NULL, ":", &save)) {
			e = curl_easy_escape(NULL, part, 0);
			snprintf(arg + strlen(arg), sizeof(arg) - strlen(arg),
			    "%s%s", n++ ? "/" : "", e ? e : "");
			curl_free(e);
		}
		free(dup);
	}
	if (c->cmd->argk == A_GAV && (n != 3 || strstr(c->arg, "::"))) {
		fprintf(stderr, "nodee: '%s' is not a coordinate "
		    "groupId:artifactId:version\n", c->arg);
		return CLI_USAGE;
	}
	/* fmt is one of cli_cmds' paths, with at most one %s. */
	snprintf(path, len, fmt, arg);	/* NOLINT(clang-diagnostic-format-nonliteral) */
	cli_query(c, path, len);
	return CLI_OK;
}

/* ?state=...&limit=... from the options that map to query parameters. */
static void
cli_query(const struct cli *c, char *path, size_t len)
{
	size_t	 i;
	char	*e;

	for (i = 0; i < O_COUNT; i++) {
		if (cli_opts[i].query == NULL || c->val[i] == NULL)
			continue;
		if ((e = curl_easy_escape(NULL, c->val[i], 0)) == NULL)
			continue;
		snprintf(path + strlen(path), len - strlen(path), "%s%s=%s",
		    strchr(path, '?') ? "&" : "?", cli_opts[i].query, e);
		curl_free(e);
	}
}

/* The plain reads: a GET, then a table or key: value lines. */
static int
cli_get(struct cli *c)
{
	char	 path[2048];
	json_t	*doc;
	int	 rc;

	if ((rc = cli_path(c, c->cmd->path, path, sizeof(path))) != CLI_OK)
		return rc;
	if ((rc = cli_call(c, "GET", path, NULL, &doc)) != CLI_OK)
		return rc;
	if (c->json || c->cmd->list == NULL)
		cli_show(c, doc);
	else
		cli_table(c, json_object_get(doc, c->cmd->list), c->cmd->cols);
	json_decref(doc);
	return CLI_OK;
}

/* A document as JSON (--json) or as key: value lines. */
static void
cli_show(struct cli *c, json_t *doc)
{
	if (c->json) {
		json_dumpf(doc, stdout, JSON_INDENT(2));
		putchar('\n');
	} else
		cli_object(c, doc, "");
}

/* Aligned columns, widths from the widest cell; state coloured on a tty. */
static void
cli_table(const struct cli *c, json_t *rows, const struct cli_col *cols)
{
	size_t	 ncol, nrow = json_array_size(rows), r, k, w[16] = { 0 };
	char	*cell, *cells;
	json_t	*row;

	for (ncol = 0; ncol < 16 && cols[ncol].head != NULL; ncol++)
		w[ncol] = strlen(cols[ncol].head);
	if (ncol == 0 || (cells = calloc((nrow + 1) * ncol, 256)) == NULL)
		return;
	for (r = 0; r <= nrow; r++)
		for (k = 0; k < ncol; k++) {
			cell = cells + (r * ncol + k) * 256;
			row = json_array_get(rows, r - 1);
			if (r == 0)
				snprintf(cell, 256, "%s", cols[k].head);
			else
				cli_value(json_object_get(row, cols[k].key),
				    cols[k].fmt, cell, 256);
			if (strlen(cell) > w[k])
				w[k] = strlen(cell);
		}
	for (r = 0; r <= nrow; r++)
		for (k = 0; k < ncol; k++) {
			const char	*col;

			cell = cells + (r * ncol + k) * 256;
			col = r > 0 && c->color && cols[k].fmt == F_STATE ?
			    cli_color(cell) : NULL;
			printf("%s%-*s%s%s", col ? col : "", k + 1 == ncol ? 0 :
			    (int)w[k], cell, col ? "\033[0m" : "",
			    k + 1 == ncol ? "\n" : "  ");
		}
	free(cells);
}

/* key: value lines; nested objects as parent.key. */
static void
cli_object(const struct cli *c, json_t *o, const char *prefix)
{
	const char	*key, *col;
	json_t		*v;
	char		 name[256], text[1024];
	enum cli_fmt	 fmt;

	json_object_foreach(o, key, v) {
		snprintf(name, sizeof(name), "%s%s", prefix, key);
		if (json_is_object(v) && json_object_size(v) > 0) {
			snprintf(name + strlen(name), sizeof(name) -
			    strlen(name), ".");
			cli_object(c, v, name);
			continue;
		}
		fmt = strcmp(key, "state") == 0 ? F_STATE : F_TEXT;
		if (strlen(key) > 3 && strcmp(key + strlen(key) - 3, "_at") ==
		    0)
			fmt = F_TIME;
		cli_value(v, fmt, text, sizeof(text));
		col = c->color && fmt == F_STATE ? cli_color(text) : NULL;
		printf("%s:%*s %s%s%s\n", name, strlen(name) < 23 ? (int)(23 -
		    strlen(name)) : 0, "", col ? col : "", text, col ?
		    "\033[0m" : "");
	}
}

/* One value as text: "-" for null, lists joined with commas. */
static void
cli_value(json_t *v, enum cli_fmt fmt, char *buf, size_t len)
{
	json_int_t	 n = json_integer_value(v);
	time_t		 t;
	struct tm	 tm;
	char		*s;
	size_t		 i;

	if (v == NULL || json_is_null(v) || (json_is_array(v) &&
	    json_array_size(v) == 0))
		snprintf(buf, len, "-");
	else if (fmt == F_TIME && json_is_integer(v)) {
		t = (time_t)(n / 1000);
		localtime_r(&t, &tm);
		strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm);
	} else if (fmt == F_UPTIME && json_is_integer(v)) {
		n = (json_int_t)time(NULL) - n / 1000;
		snprintf(buf, len, n >= 86400 ? "%lldd%lldh" : n >= 3600 ?
		    "%lldh%lldm" : "%lldm%llds", (long long)(n >= 86400 ?
		    n / 86400 : n >= 3600 ? n / 3600 : n / 60), (long long)(n >=
		    86400 ? n % 86400 / 3600 : n >= 3600 ? n % 3600 / 60 :
		    n % 60));
	} else if (fmt == F_BYTES && json_is_integer(v))
		snprintf(buf, len, "%.1f MB", (double)n / 1e6);
	else if (json_is_string(v))
		snprintf(buf, len, "%s", json_string_value(v));
	else if (json_is_boolean(v))
		snprintf(buf, len, "%s", json_is_true(v) ? "yes" : "no");
	else if (json_is_array(v) && json_is_string(json_array_get(v, 0))) {
		buf[0] = '\0';
		for (i = 0; i < json_array_size(v); i++)
			snprintf(buf + strlen(buf), len - strlen(buf), "%s%s",
			    i ? "," : "", json_string_value(json_array_get(v,
			    i)));
	} else {
		s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
		snprintf(buf, len, "%s", s ? s : "?");
		free(s);
	}
}

/* The escape that colours a state: green good, red bad, yellow moving. */
static const char *
cli_color(const char *state)
{
	static const char *const good[] = { "running", "succeeded", "up",
	    "drained", NULL };
	static const char *const bad[] = { "failed", "backoff", "exited",
	    "cancelled", "error", NULL };
	size_t	i;

	for (i = 0; good[i] != NULL; i++)
		if (strcmp(state, good[i]) == 0)
			return "\033[32m";
	for (i = 0; bad[i] != NULL; i++)
		if (strcmp(state, bad[i]) == 0)
			return "\033[31m";
	return strcmp(state, "stopped") == 0 ? NULL : "\033[33m";
}

/*
 * Polls the job every 200 ms until it ends: a progress line redrawn on a
 * terminal, a line per phase otherwise.  CLI_OK if it succeeded.
 */
static int
cli_wait_job(struct cli *c, json_int_t id)
{
	struct cli_meter m;
	char		 path[64], last[128] = "", now[128], label[160];
	const char	*state = NULL, *phase;
	json_t		*job = NULL;
	json_int_t	 done, total;
	int		 rc, ended;

	snprintf(path, sizeof(path), "/api/v1/jobs/%lld", (long long)id);
	cli_meter_start(&m, "", 0);
	for (;;) {
		json_decref(job);
		if ((rc = cli_call(c, "GET", path, NULL, &job)) != CLI_OK)
			return rc;
		state = json_string_value(json_object_get(job, "state"));
		phase = json_string_value(json_object_get(job, "phase"));
		done = json_integer_value(json_object_get(job, "bytes_done"));
		total = json_integer_value(json_object_get(job, "bytes_total"));
		ended = state != NULL && strcmp(state, "queued") != 0 &&
		    strcmp(state, "running") != 0;
		if (ended)
			phase = NULL;
		snprintf(now, sizeof(now), "%s%s%s", state ? state : "?",
		    phase ? " " : "", phase ? phase : "");
		if (strcmp(now, last) != 0) {
			snprintf(label, sizeof(label), "job %lld: %s",
			    (long long)id, now);
			cli_meter_start(&m, label, (uint64_t)done);
			if (!c->tty && !c->json && !ended)
				printf("%s\n", label);
		}
		if (c->tty || (total > 0 && !ended))
			cli_meter_show(c, &m, (uint64_t)done, (uint64_t)total,
			    0);
		snprintf(last, sizeof(last), "%s", now);
		if (ended)
			break;
		usleep(CLI_POLL_US);
	}
	if (c->json)
		cli_show(c, job);
	else
		printf("%sjob %lld %s\n", c->tty ? "\n" : "", (long long)id,
		    state);
	rc = strcmp(state, "succeeded") == 0 ? CLI_OK : CLI_FAIL;
	if (rc != CLI_OK)
		fprintf(stderr, "nodee: job %lld %s: %s\n", (long long)id, state,
		    json_string_value(json_object_get(job, "error")) ?
		    json_string_value(json_object_get(job, "error")) : "-");
	json_decref(job);
	return rc;
}

/* A job answer: its id with --no-wait, else wait for it to end. */
static int
cli_job_answer(struct cli *c, json_t *job)
{
	json_int_t	id = json_integer_value(json_object_get(job, "id"));

	if (c->val[O_NO_WAIT] == NULL)
		return cli_wait_job(c, id);
	if (c->json)
		cli_show(c, job);
	else
		printf("%lld\n", (long long)id);
	return CLI_OK;
}

static int
cli_install(struct cli *c)
{
	char	 path[2048], *body;
	json_t	*req, *doc;
	size_t	 n = strlen(c->arg);
	int	 rc;

	if (strchr(c->arg, '/') != NULL || (n > 4 && strcmp(c->arg + n - 4,
	    ".zip") == 0))
		return cli_upload(c);
	if (c->val[O_AS] != NULL) {
		fprintf(stderr, "nodee: --as names the artifact a zip file is "
		    "installed as; '%s' is not a file (a path with a '/' or "
		    "ending in .zip)\n", c->arg);
		return CLI_USAGE;
	}
	if ((rc = cli_path(c, "%s", path, sizeof(path))) != CLI_OK)
		return rc;
	req = json_pack("{s:s}", "artifact", c->arg);
	if (c->val[O_DEPOT_URL] != NULL)
		json_object_set_new(req, "url", json_string(c->val[O_DEPOT_URL]));
	if (c->val[O_SHA256] != NULL)
		json_object_set_new(req, "sha256", json_string(c->val[O_SHA256]));
	body = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	rc = cli_call(c, "POST", "/api/v1/artifacts", body, &doc);
	free(body);
	if (rc != CLI_OK)
		return rc;
	return cli_installed(c, doc);
}

/* An install's answer: a job to wait for, or the artifact already there. */
static int
cli_installed(struct cli *c, json_t *doc)
{
	int	rc = CLI_OK;

	if (json_object_get(doc, "kind") != NULL)	/* a job */
		rc = cli_job_answer(c, doc);
	else if (c->json)
		cli_show(c, doc);
	else
		printf("%s is installed\n", c->arg);
	json_decref(doc);
	return rc;
}

/*
 * artifact install FILE.zip --as G:A:V: the zip is the body of a POST to
 * the artifact's path, streamed from the file with a progress line; the
 * daemon then installs it as a job.
 */
static int
cli_upload(struct cli *c)
{
	const char	*file = c->arg;
	struct cli_meter m;
	struct stat	 st;
	char		 path[2048];
	json_t		*doc;
	int		 rc;

	if (c->val[O_AS] == NULL || c->val[O_DEPOT_URL] != NULL) {
		fprintf(stderr, "nodee: a zip is installed with --as "
		    "G:A:V (and no --url): nodee artifact install %s --as "
		    "group:artifact:version\n", file);
		return CLI_USAGE;
	}
	if ((c->upload = fopen(file, "rb")) == NULL ||
	    fstat(fileno(c->upload), &st) != 0 || !S_ISREG(st.st_mode)) {
		fprintf(stderr, "nodee: %s: %s\n", file, c->upload ?
		    "not a regular file" : strerror(errno));
		if (c->upload != NULL)
			fclose(c->upload);
		return CLI_USAGE;
	}
	c->arg = c->val[O_AS];
	if ((rc = cli_path(c, "/api/v1/artifacts/%s", path, sizeof(path))) !=
	    CLI_OK) {
		fclose(c->upload);
		return rc;
	}
	c->upload_size = (curl_off_t)st.st_size;
	c->upload_sha = c->val[O_SHA256];
	cli_meter_start(&m, "upload", 0);
	snprintf(m.label, sizeof(m.label), "upload %s", file);
	c->meter = &m;
	rc = cli_call(c, "POST", path, NULL, &doc);
	fclose(c->upload);
	c->upload = NULL;
	c->meter = NULL;
	if (rc != CLI_OK) {
		if (c->tty && !c->json)
			putchar('\n');
		return rc;
	}
	cli_meter_show(c, &m, (uint64_t)st.st_size, (uint64_t)st.st_size, 1);
	return cli_installed(c, doc);
}

static int
cli_upload_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow,
    curl_off_t ultotal, curl_off_t ulnow)
{
	struct cli	*c = arg;

	(void)dltotal;
	(void)dlnow;
	if (c->meter != NULL && ulnow > 0)
		cli_meter_show(c, c->meter, (uint64_t)ulnow, (uint64_t)ultotal,
		    0);
	return 0;
}

/* Appends pre, n bytes in the unit that suits them, and post to buf. */
static void
cli_bytes(char *buf, size_t len, const char *pre, uint64_t n, const char *post)
{
	static const char *const units[] = { "B", "KB", "MB", "GB", "TB" };
	double	v = (double)n;
	size_t	u = 0, at = strlen(buf);

	while (v >= 1000 && u + 1 < sizeof(units) / sizeof(units[0])) {
		v /= 1000;
		u++;
	}
	snprintf(buf + at, len - at, u == 0 ? "%s%.0f %s%s" : "%s%.1f %s%s",
	    pre, v, units[u], post);
}

static double
cli_now(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
cli_meter_start(struct cli_meter *m, const char *label, uint64_t done)
{
	memset(m, 0, sizeof(*m));
	snprintf(m->label, sizeof(m->label), "%s", label);
	m->t0 = cli_now();
	m->d0 = done;
}

/*
 * One progress report: on a terminal a line redrawn at most 10 times a
 * second, with a bar, the rate since the phase began and the time left;
 * otherwise a line at each quarter of the total.  final: the last one.
 */
static void
cli_meter_show(const struct cli *c, struct cli_meter *m, uint64_t done,
    uint64_t total, int final)
{
	char	 line[512], bar[24];
	double	 now = cli_now(), rate = 0;
	int	 pct = total > 0 ? (int)(done * 100 / total) : -1, i;

	if (c->json || (!final && c->tty && now - m->last < 0.1))
		return;
	if (!c->tty && (pct < 0 || pct / 25 <= m->step) && (!final ||
	    m->step == 4))
		return;
	m->last = now;
	if (now - m->t0 > 0.2 && done > m->d0)
		rate = (double)(done - m->d0) / (now - m->t0);
	snprintf(line, sizeof(line), "%s", m->label);
	if (pct >= 0 && c->tty) {
		for (i = 0; i < 20; i++)
			bar[i] = i < pct / 5 ? '#' : '.';
		bar[20] = '\0';
		snprintf(line + strlen(line), sizeof(line) - strlen(line),
		    " [%s]", bar);
	}
	if (done > 0 || total > 0)
		cli_bytes(line, sizeof(line), " ", done, "");
	if (pct >= 0) {
		cli_bytes(line, sizeof(line), " of ", total, "");
		snprintf(line + strlen(line), sizeof(line) - strlen(line),
		    " (%d%%)", pct);
	}
	if (rate > 0)
		cli_bytes(line, sizeof(line), ", ", (uint64_t)rate, "/s");
	if (rate > 0 && pct >= 0 && done < total)
		snprintf(line + strlen(line), sizeof(line) - strlen(line),
		    ", ETA %.0f s", (double)(total - done) / rate);
	if (c->tty)
		printf("\r\033[K%s%s", line, final ? "\n" : "");
	else {
		printf("%s\n", line);
		m->step = pct >= 0 ? pct / 25 : m->step;
	}
	fflush(stdout);
}

/*
 * method on the command's path (fmt with its argument) and tail; *doc is
 * the answer.
 */
static int
cli_request(struct cli *c, const char *method, const char *fmt,
    const char *tail, const char *body, json_t **doc)
{
	char	path[2048];
	int	rc;

	*doc = NULL;
	if ((rc = cli_path(c, fmt, path, sizeof(path))) != CLI_OK)
		return rc;
	snprintf(path + strlen(path), sizeof(path) - strlen(path), "%s", tail);
	return cli_call(c, method, path, body, doc);
}

/* Ends a command: the answer with --json, else msg (with the argument). */
static int
cli_done(struct cli *c, json_t *doc, const char *msg)
{
	if (c->json)
		cli_show(c, doc);
	else
		printf(msg, c->arg);	/* NOLINT(clang-diagnostic-format-nonliteral) */
	json_decref(doc);
	return CLI_OK;
}

static int
cli_artifact_rm(struct cli *c)
{
	json_t	*job;
	int	 rc;

	rc = cli_request(c, "DELETE", "/api/v1/artifacts/%s", "", NULL, &job);
	if (rc == CLI_OK)
		rc = cli_job_answer(c, job);
	json_decref(job);
	return rc;
}

/* The start spec from a file, or stdin for "-" or none. */
static char *
cli_slurp(const char *file)
{
	struct cli_buf	 b = { NULL, 0 };
	FILE		*fp = stdin;
	char		 chunk[8192];
	size_t		 n;

	if (file != NULL && strcmp(file, "-") != 0 && (fp = fopen(file,
	    "r")) == NULL) {
		fprintf(stderr, "nodee: %s: %s\n", file, strerror(errno));
		return NULL;
	}
	while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0)
		if (cli_collect(chunk, 1, n, &b) != n)
			break;
	if (fp != stdin)
		fclose(fp);
	return b.p ? b.p : strdup("");
}

static int
cli_put(struct cli *c)
{
	char	*body;
	json_t	*doc, *job;
	int	 rc;

	if ((body = cli_slurp(c->arg2)) == NULL)
		return CLI_USAGE;
	rc = cli_request(c, "PUT", "/api/v1/services/%s", "", body, &doc);
	free(body);
	if (rc != CLI_OK)
		return rc;
	if ((job = json_object_get(doc, "install_job")) == NULL)
		return cli_state(c, doc);
	rc = cli_job_answer(c, job);
	json_decref(doc);
	if (rc != CLI_OK || c->val[O_NO_WAIT] != NULL)
		return rc;
	/* Installed: the service as it is now, not as it was queued. */
	if ((rc = cli_request(c, "GET", "/api/v1/services/%s", "", NULL,
	    &doc)) != CLI_OK)
		return rc;
	return cli_state(c, doc);
}

/* Ends a command with the service: --json, else "C: state". */
static int
cli_state(struct cli *c, json_t *doc)
{
	const char	*state = json_string_value(json_object_get(doc, "state"));

	if (!c->json)
		printf("%s: %s\n", c->arg, state ? state : "?");
	return cli_done(c, doc, "");
}

/* start, stop, drain, restart; all but start wait for a settled state. */
static int
cli_service_op(struct cli *c)
{
	char	 path[2048], op[64];
	json_t	*doc;
	int	 rc;

	snprintf(op, sizeof(op), "/%s", c->cmd->name);
	if ((rc = cli_request(c, "POST", "/api/v1/services/%s", op, NULL,
	    &doc)) != CLI_OK)
		return rc;
	if (c->val[O_NO_WAIT] != NULL || strcmp(c->cmd->name, "start") == 0)
		return cli_state(c, doc);
	json_decref(doc);
	(void)cli_path(c, "/api/v1/services/%s", path, sizeof(path));
	return cli_settle(c, path, c->cmd->name);
}

/*
 * Polls the service until its state settles for op (at most 30 s) and
 * prints it.  A stop settles when nothing runs; a restart or a drain
 * when the service is no longer on its way somewhere.
 */
static int
cli_settle(struct cli *c, const char *path, const char *op)
{
	static const char *const moving[] = { "preparing", "starting",
	    "draining", "stopping", NULL };
	const char	*state = NULL;
	json_t		*doc = NULL;
	time_t		 end = time(NULL) + CLI_SETTLE_S;
	int		 rc, settled = 0;
	size_t		 i;

	while (!settled && time(NULL) < end) {
		json_decref(doc);
		if ((rc = cli_call(c, "GET", path, NULL, &doc)) != CLI_OK)
			return rc;
		state = json_string_value(json_object_get(doc, "state"));
		settled = state != NULL;
		for (i = 0; settled && moving[i] != NULL; i++)
			settled = strcmp(state, moving[i]) != 0;
		if (settled && strcmp(op, "stop") == 0)
			settled = strcmp(state, "running") != 0 &&
			    strcmp(state, "backoff") != 0;
		if (settled && strcmp(op, "restart") == 0)
			settled = strcmp(state, "stopped") != 0;
		if (!settled)
			usleep(CLI_POLL_US);
	}
	if (!settled)
		fprintf(stderr, "nodee: %s is still %s after %d s\n", c->arg,
		    state ? state : "?", CLI_SETTLE_S);
	(void)cli_state(c, doc);
	return settled ? CLI_OK : CLI_FAIL;
}

static int
cli_service_rm(struct cli *c)
{
	json_t	*doc;
	int	 rc;

	if ((rc = cli_request(c, "DELETE", "/api/v1/services/%s",
	    c->val[O_PURGE] ? "?purge=true" : "", NULL, &doc)) != CLI_OK)
		return rc;
	return cli_done(c, doc, "%s: deleted\n");
}

/* The log is text, not JSON: --json wraps it in a document. */
static int
cli_logs(struct cli *c)
{
	char		 path[2048];
	const char	*stream = c->val[O_STDERR] ? "stderr" : "stdout";
	const char	*tail = c->val[O_N];
	struct cli_buf	 b;
	long		 status = 0;
	json_t		*doc;
	int		 rc;

	c->val[O_N] = NULL;	/* -n is the tail here, not a limit */
	if ((rc = cli_path(c, c->val[O_FOLLOW] != NULL ?
	    "/api/v1/services/%s/logs/follow" : "/api/v1/services/%s/logs",
	    path, sizeof(path))) != CLI_OK)
		return rc;
	snprintf(path + strlen(path), sizeof(path) - strlen(path),
	    "?stream=%s", stream);
	if (tail != NULL && strspn(tail, "0123456789") == strlen(tail))
		snprintf(path + strlen(path), sizeof(path) - strlen(path),
		    "&tail=%s", tail);
	else if (tail != NULL) {
		fprintf(stderr, "nodee: -n: '%s' is not a number\n", tail);
		return CLI_USAGE;
	}
	if (c->val[O_FOLLOW] != NULL)
		return cli_follow(c, path, cli_log_msg, NULL);
	if ((rc = cli_http(c, "GET", path, NULL, &b, &status)) != CLI_OK)
		return rc;
	if (status != 200)
		rc = cli_problem(status, &b);
	else if (c->json) {
		doc = json_pack("{s:s, s:s, s:s#}", "coordinate", c->arg,
		    "stream", stream, "text", b.p ? b.p : "", b.len);
		cli_show(c, doc);
		json_decref(doc);
	} else if (b.p != NULL)
		fwrite(b.p, 1, b.len, stdout);
	free(b.p);
	return rc;
}

/*
 * Follows a live stream of the daemon (a WebSocket at path) until it
 * ends: each message goes to fn, which says whether to go on (CLI_OK)
 * or the status to end with.  A stream the daemon closes is CLI_DOWN.
 */
static int
cli_follow(struct cli *c, const char *path,
    int (*fn)(struct cli *, json_t *, void *), void *arg)
{
	struct wsc	w;
	int		rc;

	if ((rc = cli_follow_open(c, path, &w)) != CLI_OK)
		return rc;
	return cli_follow_read(c, &w, fn, arg);
}

/* Opens a live stream: CLI_OK, or the status to end with (said why). */
static int
cli_follow_open(struct cli *c, const char *path, struct wsc *w)
{
	struct cli_buf	 b;
	long		 status;
	char		 err[512];
	int		 rc;

	if (wsc_open(w, c->url, path, c->token, &status, &b.p, err,
	    sizeof(err)) == 0)
		return CLI_OK;
	wsc_close(w);
	if (status != 0) {
		b.len = b.p ? strlen(b.p) : 0;
		rc = cli_problem(status, &b);
		free(b.p);
		return rc;
	}
	fprintf(stderr, "nodee: cannot follow %s%s: %s\n", c->url, path, err);
	return CLI_DOWN;
}

/*
 * Reads the open stream until it ends: each message goes to fn, which
 * says whether to go on (CLI_OK) or the status to end with.  A stream
 * the daemon closes is CLI_DOWN.  Closes w.
 */
static int
cli_follow_read(struct cli *c, struct wsc *w,
    int (*fn)(struct cli *, json_t *, void *), void *arg)
{
	char		 err[512], *text;
	size_t		 len;
	json_t		*msg;
	int		 rc = CLI_OK, got;

	while (rc == CLI_OK && (got = wsc_read(w, &text, &len, err,
	    sizeof(err))) == 1) {
		if ((msg = json_loadb(text, len, 0, NULL)) != NULL) {
			rc = fn(c, msg, arg);
			json_decref(msg);
			fflush(stdout);
		}
		free(text);
	}
	wsc_close(w);
	if (rc != CLI_OK)
		return rc;
	fprintf(stderr, "nodee: the daemon ended the stream%s%s\n",
	    got < 0 ? ": " : "", got < 0 ? err : "");
	return CLI_DOWN;
}

/* A message of a log stream: lines to stdout, the rest to stderr. */
static int
cli_log_msg(struct cli *c, json_t *msg, void *arg)
{
	const char	*type = json_string_value(json_object_get(msg, "type"));
	json_t		*text = json_object_get(msg, "text");

	(void)arg;
	if (type == NULL)
		return CLI_OK;
	if (c->json) {	/* one message a line */
		json_dumpf(msg, stdout, JSON_COMPACT);
		putchar('\n');
	}
	if (strcmp(type, "lines") == 0 && !c->json)
		fwrite(json_string_value(text), 1, json_string_length(text),
		    stdout);
	else if (strcmp(type, "rotated") == 0 && !c->json)
		fprintf(stderr, "nodee: (the log was rotated)\n");
	else if (strcmp(type, "error") == 0) {
		fprintf(stderr, "nodee: %s\n", json_string_value(
		    json_object_get(msg, "detail")));
		return CLI_FAIL;
	}
	return CLI_OK;
}

/*
 * nodee events: a table, newest first; with -f, the last N oldest first
 * then every new event from the live stream, filtered here as the API
 * filters (a kind ending in '*' is a prefix).  The stream opens before
 * the history is read, so that nothing falls between the two.
 */
static int
cli_events(struct cli *c)
{
	struct wsc	 w;
	char		 path[2048];
	json_t		*doc, *list;
	json_int_t	 last = 0;
	size_t		 i;
	int		 rc;

	if (c->val[O_FOLLOW] == NULL)
		return cli_get(c);
	if (c->val[O_N] == NULL)
		c->val[O_N] = "20";
	if ((rc = cli_path(c, c->cmd->path, path, sizeof(path))) != CLI_OK ||
	    (rc = cli_follow_open(c, "/api/v1/stream", &w)) != CLI_OK)
		return rc;
	if ((rc = cli_call(c, "GET", path, NULL, &doc)) != CLI_OK) {
		wsc_close(&w);
		return rc;
	}
	list = json_object_get(doc, "events");
	for (i = json_array_size(list); i > 0; i--) {
		cli_event_line(c, json_array_get(list, i - 1));
		if (json_integer_value(json_object_get(json_array_get(list,
		    i - 1), "id")) > last)
			last = json_integer_value(json_object_get(
			    json_array_get(list, i - 1), "id"));
	}
	json_decref(doc);
	fflush(stdout);
	return cli_follow_read(c, &w, cli_event_msg, &last);
}

static int
cli_event_msg(struct cli *c, json_t *msg, void *arg)
{
	json_int_t	*last = arg, id;
	const char	*type = json_string_value(json_object_get(msg, "type"));
	const char	*want, *kind, *subject;
	json_t		*e = json_object_get(msg, "event");
	size_t		 n;

	if (type != NULL && strcmp(type, "dropped") == 0) {
		fprintf(stderr, "nodee: %s\n", json_string_value(
		    json_object_get(msg, "detail")));
		return CLI_OK;
	}
	if (type == NULL || strcmp(type, "event") != 0 ||
	    (id = json_integer_value(json_object_get(e, "id"))) <= *last)
		return CLI_OK;
	*last = id;
	kind = json_string_value(json_object_get(e, "kind"));
	subject = json_string_value(json_object_get(e, "subject"));
	if ((want = c->val[O_KIND]) != NULL) {
		n = strlen(want);
		if (kind == NULL || (n > 0 && want[n - 1] == '*' ?
		    strncmp(kind, want, n - 1) != 0 : strcmp(kind, want) != 0))
			return CLI_OK;
	}
	if ((want = c->val[O_SUBJECT]) != NULL && (subject == NULL ||
	    strcmp(subject, want) != 0))
		return CLI_OK;
	cli_event_line(c, e);
	return CLI_OK;
}

/* One event as a line: time, kind, subject, detail. */
static void
cli_event_line(const struct cli *c, json_t *e)
{
	char	when[64], detail[2048];

	if (c->json) {
		json_dumpf(e, stdout, JSON_COMPACT);
		putchar('\n');
		return;
	}
	cli_value(json_object_get(e, "time"), F_TIME, when, sizeof(when));
	cli_value(json_object_get(e, "detail"), F_TEXT, detail, sizeof(detail));
	printf("%-19s  %-30s  %-28s  %s\n", when, json_string_value(
	    json_object_get(e, "kind")), json_string_value(json_object_get(e,
	    "subject")) ? json_string_value(json_object_get(e, "subject")) :
	    "-", detail);
}

static int
cli_job_cancel(struct cli *c)
{
	json_t	*job;
	int	 rc = cli_request(c, "DELETE", "/api/v1/jobs/%s", "", NULL, &job);

	return rc != CLI_OK ? rc : cli_done(c, job, "job %s: cancel "
	    "requested\n");
}

static int
cli_job_wait(struct cli *c)
{
	char	*end;
	long long	id;

	errno = 0;
	id = strtoll(c->arg, &end, 10);
	if (errno != 0 || *end != '\0' || id < 1) {
		fprintf(stderr, "nodee: '%s' is not a job id\n", c->arg);
		return CLI_USAGE;
	}
	return cli_wait_job(c, (json_int_t)id);
}

static int
cli_drain_node(struct cli *c)
{
	json_t	*doc;
	int	 rc;

	if ((rc = cli_call(c, "POST", "/api/v1/node/drain", NULL, &doc)) !=
	    CLI_OK)
		return rc;
	if (c->json)
		cli_show(c, doc);
	else {
		printf("node: %s (zookeeper: %s)\n", json_string_value(
		    json_object_get(doc, "status")), json_string_value(
		    json_object_get(doc, "zookeeper")));
		cli_table(c, json_object_get(doc, "services"), cli_drained);
	}
	json_decref(doc);
	return CLI_OK;
}
