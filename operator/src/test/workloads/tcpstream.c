/*
 * tcpstream <statusfile>
 *
 * Test workload for TCP connections with data in flight both ways, like CRIU's zdtm test
 * socket-tcpbuf: the process listens on 127.0.0.1, forks a client that connects, and closes the
 * listener, so the tree holds exactly one established connection, both ends of it. Each end sends
 * a known byte stream (byte k of it is a function of k) faster than the other end reads it, so
 * that both ends' send and receive queues stay full: a checkpoint always finds data in flight in
 * both directions. Each end checks every byte it receives against the stream.
 *
 * The server rewrites <statusfile> about every 100 ms with one line:
 *
 *   ok <bytes the server verified> <bytes the client verified>
 *
 * A byte that is not the expected one (data lost, duplicated or reordered) ends both with
 * "lost <end> <offset>" in <statusfile>; a connection that breaks (EOF, reset) with "broken
 * <end>". Runs forever otherwise; end it with SIGKILL.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "loopback_pair.h"

#define CHUNK 65536
#define READ_PER_ROUND 16384

/* What the two ends share: how far each got, and whether one failed. */
struct progress {
	volatile uint64_t verified[2];
	volatile int failed;
};

static const char *status_path;
static struct progress *progress;

static uint8_t stream_byte(uint64_t offset, int end)
{
	uint64_t word = (offset / 8 + 1) * 0x9e3779b97f4a7c15ULL + (uint64_t)end * 0xbf58476d1ce4e5b9ULL;
	return (uint8_t)(word >> ((offset % 8) * 8));
}

static void fail(const char *what, int end, uint64_t offset)
{
	char line[96];
	snprintf(line, sizeof(line), "%s %s %llu\n", what, end == 0 ? "server" : "client", (unsigned long long)offset);
	progress->failed = 1;
	rewrite_file(status_path, line);
	exit(3);
}

static void sleep_ms(long ms)
{
	struct timespec ts = { 0, ms * 1000 * 1000 };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Sends stream `end`, receives and checks the other end's, forever. */
static void run(int fd, int end)
{
	uint8_t out[CHUNK], in[READ_PER_ROUND];
	uint64_t sent = 0, received = 0;
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	for (long round = 0;; round++) {
		/* As much as the send queue takes, four helpings at most. */
		for (int helping = 0; helping < 4; helping++) {
			for (size_t i = 0; i < CHUNK; i++)
				out[i] = stream_byte(sent + i, end);
			ssize_t n = send(fd, out, CHUNK, MSG_NOSIGNAL);
			if (n < 0 && (errno == EAGAIN || errno == EINTR))
				break;
			if (n <= 0)
				fail("broken", end, sent);
			sent += n;
			if (n < CHUNK)
				break;
		}
		/* The server drains what came (its receive queue empties, the client's send queue does
		 * not), the client takes one helping a round (its receive queue stays full). */
		ssize_t n;
		do {
			n = recv(fd, in, sizeof(in), 0);
			if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
				fail("broken", end, received);
			for (ssize_t i = 0; i < n; i++) {
				if (in[i] != stream_byte(received + i, 1 - end))
					fail("lost", end, received + i);
			}
			if (n > 0)
				received += n;
		} while (end == 0 && n > 0);
		progress->verified[end] = received;
		if (progress->failed)
			exit(3);
		if (end == 0 && round % 10 == 0) {
			char line[96];
			snprintf(line, sizeof(line), "ok %llu %llu\n", (unsigned long long)progress->verified[0],
				 (unsigned long long)progress->verified[1]);
			rewrite_file(status_path, line);
		}
		sleep_ms(10);
	}
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s <statusfile>\n", argv[0]);
		return 2;
	}
	status_path = argv[1];
	progress = mmap(NULL, sizeof(*progress), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (progress == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	pid_t child;
	int conn = loopback_pair(&child);
	if (conn < 0)
		return 1;
	if (child == 0)
		run(conn, 1);
	run(conn, 0);
}
