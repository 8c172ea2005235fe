/*
 * cli: the `nodee` command-line client (node, artifact, service, job,
 * events, cell, drain-node), a thin front end to the REST API.
 */
#ifndef NODEE_CLI_H
#define NODEE_CLI_H

/* Non-zero when argv[1] of the program belongs to the client. */
int	cli_handles(const char *);

/* Runs a client command (argv[0] is the command); the exit status. */
int	cli_main(int, char **);

/* The word of words (NULL-terminated) fewest edits away from a word. */
const char	*cli_nearest(const char *, const char *const *);

#endif
