/*
 * tiny: the supervised program of tests/bench/services.js.
 *
 * The first thing it does is read CLOCK_MONOTONIC (the clock of node's
 * process.hrtime), then it connects to the bench's unix socket, sends one
 * line "tag pid seconds.nanoseconds" and sleeps until it is killed.  The
 * same binary runs under nodee, supervisord and runit, so "running
 * again" is detected the same way for all three.
 *
 *   tiny SOCKET TAG        as nodee and supervisord start it
 *   tiny                   as runit's ./run (a copy of this binary): the
 *                          socket from $BENCH_SOCK, the tag from the name
 *                          of the service directory (runsv's cwd)
 */
#include <sys/socket.h>
#include <sys/un.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int
main(int argc, char **argv)
{
	struct timespec		ts;
	struct sockaddr_un	sa;
	char			cwd[4096], line[512];
	const char		*sock, *tag;
	int			fd, n;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	if (argc >= 3) {
		sock = argv[1];
		tag = argv[2];
	} else {
		sock = getenv("BENCH_SOCK");
		if (getcwd(cwd, sizeof(cwd)) == NULL)
			cwd[0] = '\0';
		tag = strrchr(cwd, '/') ? strrchr(cwd, '/') + 1 : cwd;
	}
	if (sock != NULL && strlen(sock) < sizeof(sa.sun_path) &&
	    (fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) != -1) {
		memset(&sa, 0, sizeof(sa));
		sa.sun_family = AF_UNIX;
		memcpy(sa.sun_path, sock, strlen(sock));
		n = snprintf(line, sizeof(line), "%s %d %lld.%09ld\n", tag,
		    (int)getpid(), (long long)ts.tv_sec, ts.tv_nsec);
		/* A failure needs no handling: the bench notices the silence. */
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
		    write(fd, line, (size_t)n) != n)
			n = -1;
		close(fd);
	}
	for (;;)
		pause();
}
