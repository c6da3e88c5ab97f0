/*
 * counter <outfile>
 *
 * Test workload for CRIU checkpoint/restore. Every 100 ms it increments a
 * counter and rewrites <outfile> with the current count followed by a newline
 * (open/O_TRUNC/write/close each time, so no file descriptor stays open between
 * writes). The first value written is 1. Runs forever; end it with SIGKILL.
 *
 * Start it so that CRIU can move it, e.g.:
 *   setsid unshare --pid --fork setsid ./counter out.txt </dev/null >/dev/null 2>&1 &
 * A reader may briefly see an empty file while it is being rewritten: retry.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void write_count(const char *path, unsigned long long count)
{
	char buf[32];
	int len = snprintf(buf, sizeof(buf), "%llu\n", count);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return; /* the directory may be gone for a moment: keep counting */
	ssize_t off = 0;
	while (off < len) {
		ssize_t n = write(fd, buf + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		off += n;
	}
	close(fd);
}

static void sleep_100ms(void)
{
	struct timespec ts = { 0, 100 * 1000 * 1000 };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s <outfile>\n", argv[0]);
		return 2;
	}
	for (unsigned long long count = 1;; count++) {
		write_count(argv[1], count);
		sleep_100ms();
	}
}
