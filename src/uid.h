/*
 * uid: the dynamic uids nodee gives services that name no "user", made
 * exclusive machine-wide for as long as a service holds one.  A purge
 * SIGKILLs every process of a dynamic uid, so a uid shared with another
 * nodee daemon, a user of the system or an escaped process of a deleted
 * service would make that purge kill what is not ours.
 *
 * A uid is held through an OFD write lock on the byte at offset uid of
 * one lock file (UID_LOCK_PATH); the kernel drops every lock when the
 * daemon dies, kill -9 included, and the next daemon claims again what
 * its services hold.  A uid is refused when this daemon holds it,
 * another daemon holds its lock, the user or group database names it (a
 * service's gid is its uid), or a process runs as it (real, effective,
 * saved or fs uid).
 *
 * Every function but uid_busy() keeps module state and must be called
 * from one thread, the supervisor's.  uid_busy() touches no state and
 * may be called from any thread.
 *
 * Processes are found by reading /proc, which costs a file per process:
 * a scan is reused for at most a second, and never once any daemon on
 * the same lock file has released a uid since it was taken.  A call
 * fails for processes only on a scan taken during it, so a process that
 * has gone never keeps a uid from a service.  A process that a root
 * outside nodee starts as a free uid may go unseen for that second, and
 * processes outside the daemon's PID namespace are never seen.
 */
#ifndef NODEE_UID_H
#define NODEE_UID_H

#include <stddef.h>

#define UID_LOCK_PATH	"/run/nodee/uid.lock"

/*
 * Opens the lock file (path, or UID_LOCK_PATH if NULL), creating it 0600
 * and its directory 0755 if missing.  0, or -1 with err.  The file must
 * be a regular file of nodee's user that no one else may write.
 */
int	uid_init(const char *, char *, size_t);

/* Closes the lock file: every uid this daemon held is free again. */
void	uid_fini(void);

/*
 * Claims u for a service that already has it (recorded at start-up, or
 * kept across a restart): 0, or -1 with err saying who has it.  0 at
 * once if this daemon holds u already.  check_procs: also refuse u if a
 * process runs as it; 0 at start-up, when the service's own live
 * processes run as its recorded uid.
 */
int	uid_claim(unsigned, int, char *, size_t);

/*
 * Takes the lock of u again for a service the store says holds it (at
 * start-up, when its own processes may run as it): nothing is looked
 * up, as u was checked when it was given out.  0, or -1 with err when
 * another daemon holds it.
 */
int	uid_reclaim(unsigned, char *, size_t);

/*
 * Picks a free uid in [min, max] and claims it: 0 with *out, or -1 with
 * err.  Candidates are tried from the one after the uid last given out,
 * round the range, so a uid just given back is the last to come again.
 */
int	uid_alloc(unsigned, unsigned, unsigned *, char *, size_t);

/*
 * Gives u back (nothing if this daemon does not hold it).  Every /proc
 * scan taken before, in any daemon on the lock file, is then stale: u
 * is not given out again while an escaped process still runs as it.
 */
void	uid_release(unsigned);

/* 1 if this daemon holds u, else 0. */
int	uid_held(unsigned);

/*
 * A fresh look at /proc: 1 if some process runs as u now, 0 if none,
 * -1 if /proc cannot be read (errno).  Any thread.
 */
int	uid_busy(unsigned);

#endif
