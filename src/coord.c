/*
 * coord: parsing is strict because a coordinate becomes four directory
 * names: labels of [a-z0-9-], 1 to 63 bytes, exactly four of them.
 */
#include <stdio.h>
#include <string.h>

#include "coord.h"

static const char	*coord_fields[] = { "instance", "service", "user",
			    "cell" };

/* err says which rule the coordinate broke. */
int
coord_parse(const char *s, struct coord *c, char *err, size_t errlen)
{
	char		*fields[4] = { c->instance, c->service, c->user,
			    c->cell };
	const char	*p = s, *dot;
	size_t		 n, i, k;

	for (i = 0; i < 4; i++) {
		dot = strchr(p, '.');
		if (i < 3 && dot == NULL) {
			snprintf(err, errlen, "coordinate '%.100s' must have "
			    "four labels: instance.service.user.cell", s);
			return -1;
		}
		if (i == 3) {
			if (dot != NULL) {
				snprintf(err, errlen, "coordinate '%.100s' has "
				    "more than four labels", s);
				return -1;
			}
			dot = p + strlen(p);
		}
		n = (size_t)(dot - p);
		if (n == 0 || n > COORD_LABEL_MAX) {
			snprintf(err, errlen, "coordinate '%.100s': %s must be "
			    "1 to %d characters", s, coord_fields[i],
			    COORD_LABEL_MAX);
			return -1;
		}
		for (k = 0; k < n; k++) {
			unsigned char	ch = (unsigned char)p[k];

			if ((ch < 'a' || ch > 'z') && (ch < '0' || ch > '9') &&
			    ch != '-') {
				snprintf(err, errlen, "coordinate '%.100s': %s "
				    "may contain only a-z, 0-9 and '-'", s,
				    coord_fields[i]);
				return -1;
			}
		}
		memcpy(fields[i], p, n);
		fields[i][n] = '\0';
		p = dot + 1;
	}
	snprintf(c->name, sizeof(c->name), "%s.%s.%s.%s", c->instance,
	    c->service, c->user, c->cell);
	return 0;
}

/* PREFIX/runtime/<cell>/<user>/<service>/<instance> */
int
coord_runtime_dir(const struct config *cf, const struct coord *c, char *out,
    size_t outlen)
{
	int	n;

	n = snprintf(out, outlen, "%s/runtime/%s/%s/%s/%s", cf->prefix,
	    c->cell, c->user, c->service, c->instance);
	return n < 0 || (size_t)n >= outlen ? -1 : 0;
}
