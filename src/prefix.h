/*
 * prefix: nodee's directory tree (software/, runtime/, state/, tmp/) and
 * the lock that keeps a second daemon off the same prefix.
 */
#ifndef NODEE_PREFIX_H
#define NODEE_PREFIX_H

#include <stddef.h>

int	prefix_absolute(const char *, char *, size_t, char *, size_t);
int	prefix_prepare(const char *, char *, size_t);
int	prefix_lock(const char *, char *, size_t);
int	prefix_path(char *, size_t, const char *, const char *);

#endif
