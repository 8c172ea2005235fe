/*
 * log: one line per event on stderr, "time level module: message".
 * Every thread may log; a line is written with one write(2) so lines from
 * different threads never interleave.
 */
#ifndef NODEE_LOG_H
#define NODEE_LOG_H

enum log_level {
	LOG_LVL_ERROR = 0,
	LOG_LVL_WARN,
	LOG_LVL_INFO,
	LOG_LVL_DEBUG,
};

int		 log_level_parse(const char *, enum log_level *);
const char	*log_level_name(enum log_level);
void		 log_set_level(enum log_level);
enum log_level	 log_get_level(void);
void		 log_msg(enum log_level, const char *, const char *, ...)
		    __attribute__((format(printf, 3, 4)));
/*
 * A line that outsiders can make nodee write again and again (a refused
 * login, a refused stream): written at most once per interval, with how
 * many times it happened meanwhile.  Zero-initialised, static.
 */
struct log_limit {
	_Atomic long long	last_ms;
	_Atomic int		count;
};

void		 log_limited(struct log_limit *, int, enum log_level,
		    const char *, const char *, ...)
		    __attribute__((format(printf, 5, 6)));
void		 fatal(const char *, ...)
		    __attribute__((format(printf, 1, 2), noreturn));

#define log_error(mod, ...)	log_msg(LOG_LVL_ERROR, (mod), __VA_ARGS__)
#define log_warn(mod, ...)	log_msg(LOG_LVL_WARN, (mod), __VA_ARGS__)
#define log_info(mod, ...)	log_msg(LOG_LVL_INFO, (mod), __VA_ARGS__)
#define log_debug(mod, ...)	log_msg(LOG_LVL_DEBUG, (mod), __VA_ARGS__)

#endif
