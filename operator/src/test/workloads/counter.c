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

#include "count_file.h"

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
