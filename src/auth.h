/*
 * auth: who may talk to nodee.  The API token (PREFIX/state/token, created
 * at first start), the console's session cookie derived from it, and the
 * Host and Origin checks that keep a browser on a foreign page (DNS
 * rebinding, cross-site requests) away from the API.
 */
#ifndef NODEE_AUTH_H
#define NODEE_AUTH_H

#include <stddef.h>

#define AUTH_TOKEN_LEN		64	/* hex characters */
#define AUTH_COOKIE		"nodee_session"

int	auth_token_load(const char *, char *, size_t, char *, size_t);
int	auth_token_valid(const char *);
void	auth_session_value(const char *, char *, size_t);
int	auth_equal(const char *, const char *);
int	auth_bearer_ok(const char *, const char *);
int	auth_host_name(const char *, char *, size_t);
int	auth_host_allowed(const char *, const char *, const char *);
int	auth_origin_ok(const char *, const char *, int);

#endif
