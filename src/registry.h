/*
 * registry: the node's presence in ZooKeeper.  One thread owns the session
 * and the ephemeral node /meta/<cell>/nodes/<instance>, whose data (JSON:
 * the machine's facts, the node's status, its services, its API URL) it
 * rewrites when any of that changes, coalesced, and at least every 30 s.
 * The same thread keeps an in-memory copy of the whole cell, current
 * through watches, which the API serves without a ZooKeeper read.  With
 * no zookeeper configured the node runs standalone (state "disabled").
 */
#ifndef NODEE_REGISTRY_H
#define NODEE_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "config.h"
#include "nodee.h"

/*
 * The node's data stays below ZooKeeper's 1 MiB limit (jute.maxbuffer,
 * which covers the whole request, path and header included) by design:
 * services that do not fit are left out of the list, and the data says so.
 */
#define REGISTRY_DATA_MAX	1000000

int	 registry_start(const struct config *, int64_t, char *, size_t);
void	 registry_stopping(void);
void	 registry_stop(void);
void	 registry_changed(void);
json_t	*registry_status(void);
char	*registry_cell(size_t *, enum nd_rc *, char *, size_t);
enum nd_rc registry_node_drain(json_t **, char *, size_t);
char	*registry_encode(json_t *, const json_t *, size_t, size_t *);

#endif
