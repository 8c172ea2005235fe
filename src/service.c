/*
 * service: a start spec is checked completely when it is submitted, and
 * stored with every default filled in, so the supervisor never meets a
 * spec it cannot run and an operator reading the store sees what runs.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "artifact.h"
#include "fs.h"
#include "prepare.h"
#include "rundir.h"
#include "service.h"

#define SERVICE_LOG_TAIL_MAX	(1024 * 1024)
#define SERVICE_PW_BUF_MAX	(1024 * 1024)

static const struct {
	const char	*name;
	int		 sig;
} service_signals[] = {
	{ "TERM", SIGTERM }, { "INT", SIGINT }, { "HUP", SIGHUP },
	{ "QUIT", SIGQUIT }, { "KILL", SIGKILL }, { "USR1", SIGUSR1 },
	{ "USR2", SIGUSR2 }, { "WINCH", SIGWINCH },
};

/*
 * The capabilities of linux/capability.h, each at its number (CAP_CHOWN
 * is 0, CAP_CHECKPOINT_RESTORE 40).  Spelled out rather than taken from
 * the header, so that a spec means the same on every build.
 */
static const char *const service_cap_names[] = {
	/* 0 */	"CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER",
	/* 4 */	"FSETID", "KILL", "SETGID", "SETUID",
	/* 8 */	"SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE",
	/* 11 */ "NET_BROADCAST", "NET_ADMIN", "NET_RAW", "IPC_LOCK",
	/* 15 */ "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT",
	/* 19 */ "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT",
	/* 23 */ "SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG",
	/* 27 */ "MKNOD", "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL",
	/* 31 */ "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG",
	/* 35 */ "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON",
	/* 39 */ "BPF", "CHECKPOINT_RESTORE",
};

_Static_assert(sizeof(service_cap_names) / sizeof(service_cap_names[0]) ==
    41, "CAP_CHOWN (0) to CAP_CHECKPOINT_RESTORE (40)");

static int	service_int(json_t *, const char *, const char *, json_int_t,
		    json_int_t, json_int_t, char *, size_t);
static json_t	*service_row(sqlite3_stmt *);
static int	service_check_artifact(json_t *, char *, size_t);
static int	service_check_command(json_t *, char *, size_t);
static int	service_check_options(json_t *, char *, size_t);
static int	service_check_args(json_t *, char *, size_t);
static int	service_check_env(json_t *, char *, size_t);
static int	service_check_start(json_t *, char *, size_t);
static int	service_check_restart(json_t *, char *, size_t);
static int	service_check_stop(json_t *, char *, size_t);
static int	service_check_drain(json_t *, char *, size_t);
static int	service_check_user(json_t *, char *, size_t);
static int	service_check_limits(json_t *, char *, size_t);
static int	service_check_caps(json_t *, char *, size_t);
static int	service_user_exists(const char *);

/* One checker per part of a spec; each fills in its part's defaults. */
static int	(*const service_checks[])(json_t *, char *, size_t) = {
	service_check_artifact,
	service_check_command,
	service_check_options,
	service_check_args,
	service_check_env,
	service_check_start,
	service_check_restart,
	service_check_stop,
	service_check_drain,
	service_check_user,
	service_check_limits,
	service_check_caps,
};

/* "TERM" or "SIGTERM" -> SIGTERM; 0 if unknown. */
int
service_signal(const char *name)
{
	size_t	i;

	if (strncmp(name, "SIG", 3) == 0)
		name += 3;
	for (i = 0; i < sizeof(service_signals) / sizeof(service_signals[0]);
	    i++)
		if (strcmp(name, service_signals[i].name) == 0)
			return service_signals[i].sig;
	return 0;
}

/*
 * The number of a capability, "NET_BIND_SERVICE" or "CAP_NET_BIND_SERVICE"
 * in any case; -1 if there is no such capability.
 */
int
service_cap_bit(const char *name)
{
	size_t	i;

	if (name == NULL)
		return -1;
	if (strncasecmp(name, "CAP_", 4) == 0)
		name += 4;
	for (i = 0; i < sizeof(service_cap_names) /
	    sizeof(service_cap_names[0]); i++)
		if (strcasecmp(name, service_cap_names[i]) == 0)
			return (int)i;
	return -1;
}

/*
 * The capabilities a checked spec grants, bit n for capability n: what
 * stays in the service's bounding set.  0 when it grants none.
 */
uint64_t
service_caps(const json_t *spec)
{
	json_t		*v;
	uint64_t	 mask = 0;
	size_t		 i;
	int		 bit;

	json_array_foreach(json_object_get(spec, "capabilities"), i, v)
		if ((bit = service_cap_bit(json_string_value(v))) >= 0)
			mask |= (uint64_t)1 << bit;
	return mask;
}

/*
 * Checks a start spec and returns a new spec with every default filled
 * in, or NULL with err naming the field.  Each part has its checker, in
 * the order the spec's documentation lists the parts; the prepare
 * module checks its own ("credentials", "prepare", "snapshot").
 */
json_t *
service_spec_check(const struct config *cf, const json_t *in, char *err,
    size_t errlen)
{
	static const char *const top[] = { "artifact", "command", "options",
	    "args", "env", "secret_env", "start", "restart", "stop", "drain",
	    "user",
	    "limits", "capabilities", "prepare", "snapshot", "credentials",
	    NULL };
	json_t	*s;
	size_t	 i;

	if (!json_is_object(in)) {
		snprintf(err, errlen, "the body must be a JSON object (a start "
		    "spec with at least \"artifact\")");
		return NULL;
	}
	if (service_only_keys(in, "", top, err, errlen) != 0)
		return NULL;
	s = json_deep_copy(in);
	for (i = 0; i < sizeof(service_checks) / sizeof(service_checks[0]);
	    i++)
		if (service_checks[i](s, err, errlen) != 0)
			goto fail;
	if (prepare_spec_check(cf, s, err, errlen) != 0)
		goto fail;
	return s;
fail:
	json_decref(s);
	return NULL;
}

#define SERVICE_COLUMNS	"coordinate, spec, desired_state, state, pid, " \
	"started_at, restarts, last_exit_code, last_exit_signal, " \
	"last_exit_at, uid, gid, reason, job_id, created_at, updated_at"

json_t *
service_get(sqlite3 *db, const char *coordinate)
{
	sqlite3_stmt	*st;
	json_t		*o = NULL;

	if (sqlite3_prepare_v2(db, "SELECT " SERVICE_COLUMNS " FROM services "
	    "WHERE coordinate = ?", -1, &st, NULL) != SQLITE_OK)
		return NULL;
	sqlite3_bind_text(st, 1, coordinate, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW)
		o = service_row(st);
	sqlite3_finalize(st);
	return o;
}

json_t *
service_list(sqlite3 *db)
{
	sqlite3_stmt	*st;
	json_t		*a = json_array();

	if (sqlite3_prepare_v2(db, "SELECT " SERVICE_COLUMNS " FROM services "
	    "ORDER BY coordinate", -1, &st, NULL) != SQLITE_OK)
		return a;
	while (sqlite3_step(st) == SQLITE_ROW)
		json_array_append_new(a, service_row(st));
	sqlite3_finalize(st);
	return a;
}

/*
 * The service's incarnations (service_runs), newest first, before the
 * run id before (0: from the newest), at most limit of them.
 */
json_t *
service_runs(sqlite3 *db, const char *name, int64_t before, int limit)
{
	sqlite3_stmt	*st;
	json_t		*a = json_array(), *o;
	int		 i;
	static const char *const cols[] = { "id", "pid", "reason",
	    "started_at", "ended_at", "exit_code", "exit_signal", "artifact" };

	if (sqlite3_prepare_v2(db, "SELECT id, pid, reason, started_at, "
	    "ended_at, exit_code, exit_signal, artifact FROM service_runs "
	    "WHERE coordinate = ?1 AND (?2 = 0 OR id < ?2) ORDER BY id DESC "
	    "LIMIT ?3", -1, &st, NULL) != SQLITE_OK)
		return a;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, before);
	sqlite3_bind_int(st, 3, limit);
	while (sqlite3_step(st) == SQLITE_ROW) {
		o = json_object();
		for (i = 0; i < 8; i++)
			json_object_set_new(o, cols[i],
			    sqlite3_column_type(st, i) == SQLITE_NULL ?
			    json_null() : sqlite3_column_type(st, i) ==
			    SQLITE_INTEGER ? json_integer(
			    sqlite3_column_int64(st, i)) : json_string(
			    (const char *)sqlite3_column_text(st, i)));
		json_array_append_new(a, o);
	}
	sqlite3_finalize(st);
	return a;
}

/*
 * The last `lines` lines of log/<stream> (at most 1 MiB of them), as a new
 * string the caller frees; "" if there is none yet; NULL with err if the
 * log cannot be read or must not be (a link, a FIFO, a hard link).  pos
 * (may be NULL) gets where the log ended, for a follower.
 */
char *
service_log_tail(const struct config *cf, const struct coord *c,
    const char *stream, long lines, size_t *lenp, struct rundir_pos *pos,
    char *err, size_t errlen)
{
	char	*buf, *p;
	size_t	 len;
	long	 seen = 0;

	/*
	 * Root reading a directory the service owns: through descriptors,
	 * never following a link it planted there (rundir.c).
	 */
	if ((buf = rundir_read_from(cf, c, stream, -1, SERVICE_LOG_TAIL_MAX,
	    &len, pos, err, errlen)) == NULL)
		return NULL;
	/* Walk back over `lines` newlines (a final newline ends a line). */
	p = buf + len;
	if (p > buf && p[-1] == '\n')
		p--;
	while (p > buf) {
		if (p[-1] == '\n' && ++seen == lines)
			break;
		p--;
	}
	len = (size_t)(buf + len - p);
	memmove(buf, p, len);
	buf[len] = '\0';
	*lenp = len;
	return buf;
}

/* Refuses any key of o not in keys; where prefixes the field's name. */
int
service_only_keys(const json_t *o, const char *where,
    const char *const *keys, char *err, size_t errlen)
{
	const char	*k;
	json_t		*v;
	size_t		 i;

	if (!json_is_object(o)) {
		snprintf(err, errlen, "%.*s: must be an object",
		    (int)(strlen(where) ? strlen(where) - 1 : 0), where);
		return -1;
	}
	json_object_foreach((json_t *)o, k, v) {
		for (i = 0; keys[i] != NULL; i++)
			if (strcmp(k, keys[i]) == 0)
				break;
		if (keys[i] == NULL) {
			snprintf(err, errlen, "%s%.100s: unknown field", where,
			    k);
			return -1;
		}
	}
	return 0;
}

static int
service_int(json_t *o, const char *where, const char *key, json_int_t min,
    json_int_t max, json_int_t dflt, char *err, size_t errlen)
{
	json_t	*v = json_object_get(o, key);

	if (v == NULL) {
		json_object_set_new(o, key, json_integer(dflt));
		return 0;
	}
	if (!json_is_integer(v) || json_integer_value(v) < min ||
	    json_integer_value(v) > max) {
		snprintf(err, errlen, "%s%s: must be an integer from %lld to "
		    "%lld", where, key, (long long)min, (long long)max);
		return -1;
	}
	return 0;
}

static int
service_check_artifact(json_t *s, char *err, size_t errlen)
{
	struct artifact_coord	 ac;
	json_t			*v = json_object_get(s, "artifact");

	if (!json_is_string(v)) {
		snprintf(err, errlen, "artifact: required, a string "
		    "\"groupId:artifactId:version\"");
		return -1;
	}
	return artifact_parse(json_string_value(v), &ac, err, errlen);
}

/* No command: the artifact's nodee.json or bin/start decides at start. */
static int
service_check_command(json_t *s, char *err, size_t errlen)
{
	json_t	*v = json_object_get(s, "command");

	if (v == NULL)
		return 0;
	if (!json_is_string(v)) {
		snprintf(err, errlen, "command: must be a string, a path "
		    "relative to the artifact");
		return -1;
	}
	return fs_relpath_ok("command", json_string_value(v), 0, err, errlen);
}

/* Integer options become the strings passed on the command line. */
static int
service_check_options(json_t *s, char *err, size_t errlen)
{
	const char	*k;
	json_t		*o, *v;
	char		 buf[32];

	if ((o = json_object_get(s, "options")) == NULL)
		json_object_set_new(s, "options", o = json_object());
	if (!json_is_object(o)) {
		snprintf(err, errlen, "options: must be an object of strings");
		return -1;
	}
	json_object_foreach(o, k, v) {
		if (json_is_integer(v)) {
			snprintf(buf, sizeof(buf), "%lld",
			    (long long)json_integer_value(v));
			json_object_set_new(o, k, json_string(buf));
		} else if (!json_is_string(v)) {
			snprintf(err, errlen, "options.%.100s: must be a string "
			    "or an integer", k);
			return -1;
		}
	}
	return 0;
}

static int
service_check_args(json_t *s, char *err, size_t errlen)
{
	json_t	*o, *v;
	size_t	 i;

	if ((o = json_object_get(s, "args")) == NULL)
		json_object_set_new(s, "args", o = json_array());
	if (!json_is_array(o)) {
		snprintf(err, errlen, "args: must be an array of strings");
		return -1;
	}
	json_array_foreach(o, i, v) {
		if (!json_is_string(v)) {
			snprintf(err, errlen, "args[%zu]: must be a string", i);
			return -1;
		}
	}
	return 0;
}

/*
 * env and secret_env: objects of strings.  secret_env reaches the process
 * like env but the API, the events and ZooKeeper show its values as
 * "(hidden)"; a name in both would make one silently win, so it is
 * refused.
 */
static int
service_check_env(json_t *s, char *err, size_t errlen)
{
	static const char *const keys[] = { "env", "secret_env" };
	const char	*k;
	json_t		*o, *v;
	size_t		 i;

	for (i = 0; i < 2; i++) {
		if ((o = json_object_get(s, keys[i])) == NULL)
			json_object_set_new(s, keys[i], o = json_object());
		if (!json_is_object(o)) {
			snprintf(err, errlen, "%s: must be an object of strings",
			    keys[i]);
			return -1;
		}
		json_object_foreach(o, k, v) {
			if (!json_is_string(v) || k[0] == '\0' ||
			    strchr(k, '=') != NULL) {
				snprintf(err, errlen, "%s.%.100s: names must be "
				    "non-empty without '=', values strings",
				    keys[i], k);
				return -1;
			}
			if (i == 1 && json_object_get(json_object_get(s,
			    "env"), k) != NULL) {
				snprintf(err, errlen, "secret_env.%.100s: also in "
				    "env; give it once", k);
				return -1;
			}
		}
	}
	return 0;
}

/*
 * A start counts as successful only once the process has stayed up
 * min_uptime_ms (0: at once), as supervisord's startsecs.
 */
static int
service_check_start(json_t *s, char *err, size_t errlen)
{
	static const char *const keys[] = { "min_uptime_ms", NULL };
	json_t	*o;

	if ((o = json_object_get(s, "start")) == NULL)
		json_object_set_new(s, "start", o = json_object());
	if (service_only_keys(o, "start.", keys, err, errlen) != 0)
		return -1;
	return service_int(o, "start.", "min_uptime_ms", 0, 3600000, 1000, err,
	    errlen);
}

static int
service_check_restart(json_t *s, char *err, size_t errlen)
{
	static const char *const keys[] = { "policy", "max_restarts",
	    "period_s", "delay_ms", "max_delay_ms", "reset_after_s", NULL };
	const char	*pol;
	json_t		*o;

	if ((o = json_object_get(s, "restart")) == NULL)
		json_object_set_new(s, "restart", o = json_object());
	if (service_only_keys(o, "restart.", keys, err, errlen) != 0)
		return -1;
	if (json_object_get(o, "policy") == NULL)
		json_object_set_new(o, "policy", json_string("on-failure"));
	pol = json_string_value(json_object_get(o, "policy"));
	if (pol == NULL || (strcmp(pol, "on-failure") != 0 &&
	    strcmp(pol, "always") != 0 && strcmp(pol, "never") != 0)) {
		snprintf(err, errlen, "restart.policy: must be on-failure, "
		    "always or never");
		return -1;
	}
	if (service_int(o, "restart.", "max_restarts", 0, 1000000, 10, err,
	    errlen) != 0 ||
	    service_int(o, "restart.", "period_s", 1, 86400, 120, err,
	    errlen) != 0 ||
	    service_int(o, "restart.", "delay_ms", 0, 3600000, 100, err,
	    errlen) != 0 ||
	    service_int(o, "restart.", "max_delay_ms", 0, 3600000, 30000, err,
	    errlen) != 0 ||
	    service_int(o, "restart.", "reset_after_s", 1, 86400, 60, err,
	    errlen) != 0)
		return -1;
	return 0;
}

static int
service_check_stop(json_t *s, char *err, size_t errlen)
{
	static const char *const keys[] = { "signal", "timeout_s", NULL };
	json_t	*o, *x;

	if ((o = json_object_get(s, "stop")) == NULL)
		json_object_set_new(s, "stop", o = json_object());
	if (service_only_keys(o, "stop.", keys, err, errlen) != 0)
		return -1;
	if (json_object_get(o, "signal") == NULL)
		json_object_set_new(o, "signal", json_string("TERM"));
	if (!json_is_string(x = json_object_get(o, "signal")) ||
	    service_signal(json_string_value(x)) == 0) {
		snprintf(err, errlen, "stop.signal: must be a signal name such "
		    "as TERM, INT, HUP, QUIT, USR1, USR2");
		return -1;
	}
	return service_int(o, "stop.", "timeout_s", 0, 3600, 10, err, errlen);
}

/* A drain is a command of the artifact's, or else a signal (TERM). */
static int
service_check_drain(json_t *s, char *err, size_t errlen)
{
	static const char *const keys[] = { "signal", "command", "timeout_s",
	    NULL };
	json_t	*o, *x;

	if ((o = json_object_get(s, "drain")) == NULL)
		json_object_set_new(s, "drain", o = json_object());
	if (service_only_keys(o, "drain.", keys, err, errlen) != 0)
		return -1;
	if ((x = json_object_get(o, "command")) != NULL) {
		if (!json_is_string(x)) {
			snprintf(err, errlen, "drain.command: must be a path "
			    "relative to the artifact");
			return -1;
		}
		if (fs_relpath_ok("drain.command", json_string_value(x), 0,
		    err, errlen) != 0)
			return -1;
	} else {
		if (json_object_get(o, "signal") == NULL)
			json_object_set_new(o, "signal", json_string("TERM"));
		if (!json_is_string(x = json_object_get(o, "signal")) ||
		    service_signal(json_string_value(x)) == 0) {
			snprintf(err, errlen, "drain.signal: must be a signal "
			    "name such as USR1 or TERM");
			return -1;
		}
	}
	return service_int(o, "drain.", "timeout_s", 0, 86400, 30, err,
	    errlen);
}

static int
service_check_user(json_t *s, char *err, size_t errlen)
{
	json_t	*v = json_object_get(s, "user");
	int	 known;

	if (v == NULL)
		return 0;
	if (!json_is_string(v) || (known = service_user_exists(
	    json_string_value(v))) == 0) {
		snprintf(err, errlen, "user: '%.100s' is not a user of this "
		    "machine", json_is_string(v) ? json_string_value(v) : "?");
		return -1;
	}
	if (known == -1) {
		snprintf(err, errlen, "user: cannot look up '%.100s': %s",
		    json_string_value(v), strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * 1 if the user exists, 0 if not, -1 (errno) if the lookup failed.
 * getpwnam_r(): specs are checked on the HTTP threads, and getpwnam()'s
 * answer lives in one static buffer for all of them.
 */
static int
service_user_exists(const char *name)
{
	struct passwd	 pw, *found = NULL;
	char		*buf = NULL, *n;
	size_t		 len = 4096;
	int		 rc;

	for (;;) {
		if ((n = realloc(buf, len)) == NULL) {
			free(buf);
			errno = ENOMEM;
			return -1;
		}
		buf = n;
		rc = getpwnam_r(name, &pw, buf, len, &found);
		/* An entry larger than the buffer: again with a larger one. */
		if (rc != ERANGE || len >= SERVICE_PW_BUF_MAX)
			break;
		len *= 2;
	}
	free(buf);
	if (found != NULL)
		return 1;
	/* "Not found" may come as 0 or as one of these, by NSS module. */
	if (rc == 0 || rc == ENOENT || rc == ESRCH || rc == EBADF ||
	    rc == EPERM)
		return 0;
	errno = rc;
	return -1;
}

static int
service_check_limits(json_t *s, char *err, size_t errlen)
{
	static const char *const keys[] = { "nofile", "nproc", "core_bytes",
	    "memory_bytes", NULL };
	const char	*k;
	json_t		*o, *v;

	if ((o = json_object_get(s, "limits")) == NULL)
		json_object_set_new(s, "limits", o = json_object());
	if (service_only_keys(o, "limits.", keys, err, errlen) != 0)
		return -1;
	json_object_foreach(o, k, v) {
		if (!json_is_integer(v) || json_integer_value(v) < 0) {
			snprintf(err, errlen, "limits.%s: must be a "
			    "non-negative integer", k);
			return -1;
		}
	}
	return 0;
}

/*
 * The capabilities kept in the service's bounding set; every other one
 * is dropped.  Stored as "CAP_<NAME>", whatever spelling was given.
 */
static int
service_check_caps(json_t *s, char *err, size_t errlen)
{
	json_t	*o, *v;
	char	 name[64];
	size_t	 i;
	int	 bit;

	if ((o = json_object_get(s, "capabilities")) == NULL)
		json_object_set_new(s, "capabilities", o = json_array());
	if (!json_is_array(o)) {
		snprintf(err, errlen, "capabilities: must be an array of "
		    "capability names such as \"NET_BIND_SERVICE\"");
		return -1;
	}
	json_array_foreach(o, i, v) {
		if ((bit = service_cap_bit(json_string_value(v))) < 0) {
			snprintf(err, errlen, "capabilities[%zu]: '%.64s' is "
			    "not a Linux capability (see capabilities(7): "
			    "CHOWN, NET_BIND_SERVICE, SYS_NICE..., with or "
			    "without CAP_)", i, json_is_string(v) ?
			    json_string_value(v) : "?");
			return -1;
		}
		snprintf(name, sizeof(name), "CAP_%s", service_cap_names[bit]);
		json_array_set_new(o, i, json_string(name));
	}
	return 0;
}

static json_t *
service_row(sqlite3_stmt *st)
{
	json_error_t	 je;
	json_t		*o, *spec, *exit;

	spec = json_loads((const char *)sqlite3_column_text(st, 1), 0, &je);
	o = json_pack("{s:s, s:o, s:s, s:s}",
	    "coordinate", (const char *)sqlite3_column_text(st, 0),
	    "spec", spec ? spec : json_object(),
	    "desired_state", (const char *)sqlite3_column_text(st, 2),
	    "state", (const char *)sqlite3_column_text(st, 3));
	json_object_set(o, "artifact", json_object_get(json_object_get(o,
	    "spec"), "artifact"));
#define COL_INT(name, i) json_object_set_new(o, name, \
	sqlite3_column_type(st, i) == SQLITE_NULL ? json_null() : \
	json_integer(sqlite3_column_int64(st, i)))
	COL_INT("pid", 4);
	COL_INT("started_at", 5);
	COL_INT("restarts", 6);
	COL_INT("uid", 10);
	COL_INT("gid", 11);
	COL_INT("job", 13);
	COL_INT("created_at", 14);
	COL_INT("updated_at", 15);
#undef COL_INT
	if (sqlite3_column_type(st, 9) != SQLITE_NULL) {
		exit = json_pack("{s:I}", "at",
		    (json_int_t)sqlite3_column_int64(st, 9));
		json_object_set_new(exit, "code", sqlite3_column_type(st, 7) ==
		    SQLITE_NULL ? json_null() :
		    json_integer(sqlite3_column_int(st, 7)));
		json_object_set_new(exit, "signal", sqlite3_column_type(st, 8)
		    == SQLITE_NULL ? json_null() :
		    json_integer(sqlite3_column_int(st, 8)));
		json_object_set_new(o, "last_exit", exit);
	} else
		json_object_set_new(o, "last_exit", json_null());
	json_object_set_new(o, "reason", sqlite3_column_type(st, 12) ==
	    SQLITE_NULL ? json_null() :
	    json_string((const char *)sqlite3_column_text(st, 12)));
	if (geteuid() != 0)
		json_object_set_new(o, "isolation", json_string("none: nodee "
		    "is not root, so the service runs as nodee's own user"));
	return o;
}
