/*
 * pod-counter <outfile>
 *
 * The counter as a container's process: every 100 ms it increments a count, rewrites <outfile>
 * in place with it (as counter.c does) and prints it to stdout, so both the container's file
 * system and its log show where it is. The first value is 1. Built static: it is the only file
 * of its image.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
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
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (unsigned long long count = 1;; count++) {
		write_count(fd, count);
		printf("%llu\n", count);
		sleep_100ms();
	}
}
