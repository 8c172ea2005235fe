/*
 * log: formats and writes log lines to stderr.  The level is global and set
 * once at start-up (before any thread starts), so it is read without a lock.
 */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static enum log_level	 log_level = LOG_LVL_INFO;
static const char	*log_names[] = { "error", "warn", "info", "debug" };

static void	log_vwrite(enum log_level, const char *, const char *, va_list);

int
log_level_parse(const char *s, enum log_level *out)
{
	size_t	i;

	for (i = 0; i < sizeof(log_names) / sizeof(log_names[0]); i++) {
		if (strcasecmp(s, log_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

const char *
log_level_name(enum log_level lvl)
{
	return log_names[lvl];
}

void
log_set_level(enum log_level lvl)
{
	log_level = lvl;
}

enum log_level
log_get_level(void)
{
	return log_level;
}

void
log_msg(enum log_level lvl, const char *module, const char *fmt, ...)
{
	va_list	ap;

	if (lvl > log_level)
		return;
	va_start(ap, fmt);
	log_vwrite(lvl, module, fmt, ap);
	va_end(ap);
}

/*
 * One line per interval_ms for lim: "<message> (N times since the last
 * line)" when it happened more than once.
 */
void
log_limited(struct log_limit *lim, int interval_ms, enum log_level lvl,
    const char *module, const char *fmt, ...)
{
	char		 msg[1024];
	struct timespec	 ts;
	long long	 now, last = atomic_load(&lim->last_ms);
	int		 n;
	va_list		 ap;

	if (lvl > log_level)
		return;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	n = atomic_fetch_add(&lim->count, 1) + 1;
	if ((last != 0 && now - last < interval_ms) ||
	    !atomic_compare_exchange_strong(&lim->last_ms, &last, now))
		return;
	atomic_fetch_sub(&lim->count, n);
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n > 1)
		log_msg(lvl, module, "%s (%d times since this was last "
		    "logged)", msg, n);
	else
		log_msg(lvl, module, "%s", msg);
}

void
fatal(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	log_vwrite(LOG_LVL_ERROR, "main", fmt, ap);
	va_end(ap);
	exit(1);
}

static void
log_vwrite(enum log_level lvl, const char *module, const char *fmt, va_list ap)
{
	char		 line[2048];
	struct timespec	 ts;
	struct tm	 tm;
	size_t		 n;
	int		 r;
	ssize_t		 w;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
	r = snprintf(line + n, sizeof(line) - n, ".%03ldZ %-5s %s: ",
	    ts.tv_nsec / 1000000, log_names[lvl], module);
	if (r > 0)
		n += (size_t)r;
	if (n < sizeof(line)) {
		r = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
		if (r > 0)
			n += (size_t)r;
	}
	if (n >= sizeof(line) - 1)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	w = write(STDERR_FILENO, line, n);
	(void)w;
}
