/*
 * metrics: GET /metrics in the Prometheus text format.  Counters the
 * other modules bump as things happen (cheap, lock-free or one short
 * lock), and gauges read from the store and the registry at scrape time.
 */
#ifndef NODEE_METRICS_H
#define NODEE_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

enum metrics_counter {
	MC_RESTARTS,		/* a service started again after it ended */
	MC_DOWNLOAD_BYTES,	/* artifact bytes from depots */
	MC_UPLOAD_BYTES,	/* artifact bytes pushed to the API */
	MC_STORE_BUSY_WAITS,	/* a statement found the store locked */
	MC_STORE_BUSY_TIMEOUTS,	/* ... and gave up */
	MC_COUNT
};

void	 metrics_add(enum metrics_counter, uint64_t);
void	 metrics_install(double);
void	 metrics_http(const char *, const char *, int, double);
char	*metrics_render(sqlite3 *, int64_t, size_t *);

#endif
