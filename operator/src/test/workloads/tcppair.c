/*
 * tcppair <outfile>
 *
 * Test workload for CRIU checkpoint/restore of established TCP connections
 * (--tcp-established). The process listens on 127.0.0.1 (an ephemeral port),
 * forks a client that connects to it, and closes the listening socket, so the
 * tree holds exactly one established connection, both ends of it. Every 100 ms
 * the client sends its count over the connection, the server answers with
 * count + 1, and the client rewrites <outfile> with the answer
 * (open/O_TRUNC/write/close). The first value written is 1.
 *
 * Either side exits as soon as the connection breaks (EOF or an error), and the
 * server exits when the client does: the count only goes on while the very
 * same connection lives. Runs forever otherwise; end it with SIGKILL.
 *
 *   setsid unshare --pid --fork setsid ./tcppair out.txt </dev/null >/dev/null 2>&1 &
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "loopback_pair.h"

static void write_count(const char *path, unsigned long long count)
{
	char buf[32];
	snprintf(buf, sizeof(buf), "%llu\n", count);
	rewrite_file(path, buf);
}

/* 1 when all of buf moved, 0 when the connection is gone. */
static int transfer(int fd, void *buf, size_t len, int sending)
{
	size_t off = 0;
	while (off < len) {
		ssize_t n = sending ? write(fd, (char *)buf + off, len - off) : read(fd, (char *)buf + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return 0;
		off += n;
	}
	return 1;
}

static void sleep_100ms(void)
{
	struct timespec ts = { 0, 100 * 1000 * 1000 };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static int client(const char *outfile, int fd)
{
	uint64_t count = 0;
	for (;;) {
		if (!transfer(fd, &count, sizeof(count), 1) || !transfer(fd, &count, sizeof(count), 0))
			return 3;
		write_count(outfile, count);
		sleep_100ms();
	}
}

static int serve(int fd)
{
	uint64_t count;
	for (;;) {
		if (!transfer(fd, &count, sizeof(count), 0))
			return 0;
		count++;
		if (!transfer(fd, &count, sizeof(count), 1))
			return 3;
	}
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s <outfile>\n", argv[0]);
		return 2;
	}
	pid_t child;
	int conn = loopback_pair(&child);
	if (conn < 0)
		return 1;
	if (child == 0)
		return client(argv[1], conn);
	int rc = serve(conn);
	close(conn);
	waitpid(child, NULL, 0);
	return rc;
}
