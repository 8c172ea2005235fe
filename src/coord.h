/*
 * coord: service coordinates, instance.service.user.cell (e.g.
 * 1.myservice.borud.fbu), and the runtime directory each one names,
 * PREFIX/runtime/<cell>/<user>/<service>/<instance>.
 */
#ifndef NODEE_COORD_H
#define NODEE_COORD_H

#include <stddef.h>

#include "config.h"

#define COORD_LABEL_MAX	63

struct coord {
	char	instance[COORD_LABEL_MAX + 1];
	char	service[COORD_LABEL_MAX + 1];
	char	user[COORD_LABEL_MAX + 1];
	char	cell[COORD_LABEL_MAX + 1];
	char	name[4 * (COORD_LABEL_MAX + 1)];	/* the whole coordinate */
};

int	coord_parse(const char *, struct coord *, char *, size_t);
int	coord_runtime_dir(const struct config *, const struct coord *, char *,
	    size_t);

#endif
