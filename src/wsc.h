/*
 * wsc: the WebSocket client of the command line's -f (nodee service logs
 * -f, nodee events -f): text messages from the daemon's live streams.
 */
#ifndef NODEE_WSC_H
#define NODEE_WSC_H

#include <stddef.h>

#include <curl/curl.h>

struct wsc {
	CURL		*h;
	curl_socket_t	 fd;
	unsigned char	*buf;		/* received, not yet taken */
	size_t		 len, cap;
	char		*msg;		/* a message being put together */
	size_t		 msglen;
};

int	wsc_open(struct wsc *, const char *, const char *, const char *,
	    long *, char **, char *, size_t);
int	wsc_read(struct wsc *, char **, size_t *, char *, size_t);
void	wsc_close(struct wsc *);

#endif
