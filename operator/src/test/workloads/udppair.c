/*
 * udppair <outfile>
 *
 * Test workload for CRIU checkpoint/restore of UDP sockets on one host: the process binds a UDP
 * socket on 127.0.0.1 (an ephemeral port) and forks a client with a socket of its own, connected
 * to the server's address. Every 100 ms the client sends its count, the server answers with
 * count + 1 to whoever asked, and the client rewrites <outfile> with the answer. A datagram lost
 * on the way (UDP promises nothing, and a checkpoint may catch one in flight) is sent again after
 * 200 ms. The first value written is 1. Runs forever; end it with SIGKILL.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "loopback_pair.h"

static void sleep_100ms(void)
{
	struct timespec ts = { 0, 100 * 1000 * 1000 };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static int client(const char *outfile, struct sockaddr_in *server)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)server, sizeof(*server)) < 0) {
		perror("client");
		return 1;
	}
	uint64_t count = 0;
	for (;;) {
		uint64_t answer;
		for (;;) {
			if (send(fd, &count, sizeof(count), 0) < 0 && errno != EINTR && errno != ECONNREFUSED)
				return 3;
			struct pollfd p = { .fd = fd, .events = POLLIN };
			if (poll(&p, 1, 200) > 0 && recv(fd, &answer, sizeof(answer), 0) == sizeof(answer) &&
			    answer == count + 1)
				break;
		}
		count = answer;
		char line[32];
		snprintf(line, sizeof(line), "%llu\n", (unsigned long long)count);
		rewrite_file(outfile, line);
		sleep_100ms();
	}
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s <outfile>\n", argv[0]);
		return 2;
	}
	struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = 0 };
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t addrlen = sizeof(addr);
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&addr, &addrlen) < 0) {
		perror("bind");
		return 1;
	}
	pid_t child = fork();
	if (child < 0) {
		perror("fork");
		return 1;
	}
	if (child == 0) {
		close(fd);
		return client(argv[1], &addr);
	}
	for (;;) {
		uint64_t count;
		struct sockaddr_in from;
		socklen_t fromlen = sizeof(from);
		ssize_t n = recvfrom(fd, &count, sizeof(count), 0, (struct sockaddr *)&from, &fromlen);
		if (n != sizeof(count))
			continue;
		count++;
		sendto(fd, &count, sizeof(count), 0, (struct sockaddr *)&from, fromlen);
	}
}
