/*
 * counter <outfile>
 *
 * Test workload for CRIU checkpoint/restore. Every 100 ms it increments a
 * counter and rewrites <outfile> in place with the current count, zero-padded
 * to 20 digits, followed by a newline. The first value written is 1. Runs
 * forever; end it with SIGKILL. <outfile> must exist at restore time.
 *
 * Start it so that CRIU can move it, e.g.:
 *   setsid unshare --pid --fork setsid ./counter out.txt </dev/null >/dev/null 2>&1 &
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/*
 * The count file is opened once and rewritten in place with a fixed-width number, so its size never
 * changes: CRIU checks the size of open files on restore, and a file that was truncated and
 * rewritten between checkpoint and restore would be refused ("bad size").
 */
#define COUNT_WIDTH 20

static int open_count_file(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	if (fd >= 0 && ftruncate(fd, COUNT_WIDTH + 1) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void write_count(int fd, unsigned long long count)
{
	char buf[COUNT_WIDTH + 2];
	snprintf(buf, sizeof(buf), "%0*llu\n", COUNT_WIDTH, count);
	while (pwrite(fd, buf, COUNT_WIDTH + 1, 0) < 0 && errno == EINTR)
		;
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
	int fd = open_count_file(argv[1]);
	if (fd < 0) {
		perror(argv[1]);
		return 1;
	}
	for (unsigned long long count = 1;; count++) {
		write_count(fd, count);
		sleep_100ms();
	}
}
