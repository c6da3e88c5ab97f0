/*
 * memhog <MiB> <compressible:0|1> <outfile>
 *
 * Test workload for CRIU dumps of a large memory image. Allocates <MiB> MiB
 * (anonymous private mapping) and writes to every byte of it: with
 * compressible=1 a repeating text pattern (compresses very well), with 0
 * pseudo-random bytes (does not compress). Only then does it start counting
 * like `counter` (count_file.h: in place, fixed width, so that the file's size
 * never changes): the appearance of <outfile> means the memory is fully
 * populated. Every count it also checks one page of the buffer against the
 * pattern, so a restore that lost memory is noticed: it then writes
 * "CORRUPT <count>\n" (the same width) and exits 3.
 * Runs forever otherwise; end it with SIGKILL.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "count_file.h"

#define PAGE 4096

/* Content of byte i of the buffer, a pure function of i so that it can be checked. */
static inline uint64_t word_at(size_t word_index, int compressible)
{
	if (compressible)
		return 0x2e6e69616d2f6b72ULL; /* "rk/main." repeated */
	uint64_t x = word_index * 0x9E3779B97F4A7C15ULL + 0x632BE59BD9B4E019ULL;
	x ^= x >> 31;
	x *= 0xBF58476D1CE4E5B9ULL;
	x ^= x >> 27;
	return x;
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: %s <MiB> <compressible:0|1> <outfile>\n", argv[0]);
		return 2;
	}
	size_t mib = strtoull(argv[1], NULL, 10);
	int compressible = atoi(argv[2]) != 0;
	size_t size = mib << 20;
	size_t words = size / sizeof(uint64_t);
	uint64_t *buf = NULL;
	if (size) {
		buf = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (buf == MAP_FAILED) {
			perror("mmap");
			return 1;
		}
		for (size_t i = 0; i < words; i++)
			buf[i] = word_at(i, compressible);
	}
	size_t pages = size / PAGE, words_per_page = PAGE / sizeof(uint64_t);
	int fd = open_count_file(argv[3]);
	if (fd < 0) {
		perror(argv[3]);
		return 1;
	}
	for (unsigned long long count = 1;; count++) {
		if (pages) {
			size_t page = (count * 7919) % pages;
			for (size_t w = page * words_per_page; w < (page + 1) * words_per_page; w++) {
				if (buf[w] != word_at(w, compressible)) {
					char line[COUNT_WIDTH + 2];
					snprintf(line, sizeof(line), "CORRUPT %0*llu\n", COUNT_WIDTH - 8, count);
					while (pwrite(fd, line, COUNT_WIDTH + 1, 0) < 0 && errno == EINTR)
						;
					return 3;
				}
			}
		}
		write_count(fd, count);
		sleep_100ms();
	}
}
