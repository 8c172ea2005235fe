/*
 * machine: facts about the host nodee runs on (cores, memory, load,
 * uptime, kernel), read from the kernel on every call.
 */
#ifndef NODEE_MACHINE_H
#define NODEE_MACHINE_H

#include <jansson.h>

json_t	*machine_facts(void);

#endif
