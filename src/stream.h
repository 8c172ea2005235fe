/*
 * stream: live updates over WebSockets.  GET /api/v1/stream pushes new
 * events, service state changes and job progress to every subscriber;
 * GET /api/v1/services/{c}/logs/follow follows one log.  Both are
 * authenticated and checked like the rest of /api/ by http.c, and
 * refused past max_streams open at once.
 */
#ifndef NODEE_STREAM_H
#define NODEE_STREAM_H

#include "config.h"
#include "http.h"

int	stream_start(const struct config *);
void	stream_stop(void);
void	stream_service_changed(const char *, int);
void	stream_events(struct http_req *, void *);
void	stream_logs(struct http_req *, void *);

#endif
