/*
 * nodee: things every module may need to know about the daemon as a whole.
 */
#ifndef NODEE_H
#define NODEE_H

#ifndef NODEE_VERSION
#define NODEE_VERSION	"0.1.0"
#endif

#define NODEE_SHUTDOWN_GRACE_S	10

/*
 * The one outcome convention of the domain modules (sup, artifact,
 * prepare, registry, jobs): a function returns one of these plus a
 * message in the caller's err buffer.  Only api.c maps them to HTTP
 * statuses (api_status()).
 */
enum nd_rc {
	ND_OK = 0,		/* done; nothing new was created */
	ND_CREATED,		/* done; something new exists */
	ND_ACCEPTED,		/* queued as a job; it ends later */
	ND_INVALID,		/* the request itself is wrong */
	ND_NOT_FOUND,		/* what it names does not exist */
	ND_CONFLICT,		/* not now: the state forbids it */
	ND_UNAVAILABLE,		/* the daemon cannot now (store, ZooKeeper) */
	ND_INTERNAL,		/* out of memory, a bug */
};

#endif
