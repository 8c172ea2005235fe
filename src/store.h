/*
 * store: nodee's SQLite database (PREFIX/state/nodee.db).  WAL mode, one
 * connection per thread (opened on first use, closed when the thread
 * ends), schema from the numbered migrations in sql/, applied at start-up.
 */
#ifndef NODEE_STORE_H
#define NODEE_STORE_H

#include <stdint.h>

#include <jansson.h>
#include <sqlite3.h>

/*
 * Who asked for what the events of this thread record (the API's client):
 * each event gets "by": {"addr", "via": "token" | "cookie"} while set.
 */
struct store_actor {
	char	addr[64];
	char	via[8];
};

int		 store_open(const char *, char *, size_t);
void		 store_close(void);
sqlite3		*store_db(void);
int		 store_migrate(sqlite3 *, char *, size_t);
int		 store_schema_version(sqlite3 *);
int		 store_latest_version(void);
int		 store_configure(sqlite3 *, char *, size_t);
int		 store_event(const char *, const char *, const json_t *);
void		 store_actor_set(const struct store_actor *);
int		 store_health(char *, size_t);
const struct store_actor	*store_actor_get(void);

/* Which events: NULL and 0 match everything; kind "x.*" is a prefix. */
struct store_event_query {
	const char	*kind;
	const char	*subject;
	int64_t		 since;		/* time >= since (ms) */
	int64_t		 before;	/* id < before */
	int64_t		 after;		/* id > after, oldest first */
	int		 limit;
};

json_t		*store_events(sqlite3 *, const struct store_event_query *);
int64_t		 store_last_event(sqlite3 *);
int64_t		 store_now_ms(void);
int64_t		 store_mono_ms(void);

#endif
