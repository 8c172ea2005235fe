/*
 * notifyd: a stand-in for systemd's notification socket in the tests.
 * Binds a datagram socket at the given path and prints each message it
 * receives, one per line with "\n" inside a message shown as "|", until
 * it is killed.  usage: notifyd PATH
 */
#include <sys/socket.h>
#include <sys/un.h>

#include <stdio.h>
#include <string.h>
#include <unistd.h>

int
main(int argc, char **argv)
{
	struct sockaddr_un	sun;
	char			buf[4096];
	ssize_t			n, i;
	int			fd;

	if (argc != 2 || strlen(argv[1]) >= sizeof(sun.sun_path)) {
		fprintf(stderr, "usage: notifyd PATH\n");
		return 2;
	}
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	strcpy(sun.sun_path, argv[1]);
	if ((fd = socket(AF_UNIX, SOCK_DGRAM, 0)) == -1 ||
	    bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		perror("notifyd");
		return 1;
	}
	printf("listening\n");
	fflush(stdout);
	while ((n = recv(fd, buf, sizeof(buf) - 1, 0)) >= 0) {
		for (i = 0; i < n; i++)
			if (buf[i] == '\n')
				buf[i] = '|';
		buf[n] = '\0';
		printf("%s\n", buf);
		fflush(stdout);
	}
	perror("notifyd: recv");
	return 1;
}
