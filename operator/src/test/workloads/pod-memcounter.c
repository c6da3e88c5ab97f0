/*
 * pod-memcounter <MiB>
 *
 * pod-counter's count (every 100 ms, printed to stdout, the first value 1) in a process that also
 * holds <MiB> MiB of pseudo-random (incompressible) memory, the same bytes on every run: the
 * workload of deduplicated pod checkpoints (PodDeduplicationOnNodeIT). Every 20 counts it checks
 * that memory against the checksum it took when it filled it, and exits with status 3 when they
 * differ, so a restored copy that counts on past a check holds exactly the memory it was
 * checkpointed with.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#define XORSHIFT_SEED 0x706f646d656d6374ULL
#include "xorshift.h"
#include "memsum.h"

#define MIB (1UL << 20)
#define CHECK_EVERY 20

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s <MiB>\n", argv[0]);
		return 2;
	}
	size_t size = strtoull(argv[1], NULL, 10) * MIB;
	if (size == 0) {
		fprintf(stderr, "pod-memcounter needs at least 1 MiB\n");
		return 2;
	}
	unsigned char *memory = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (memory == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	fill(memory, size);
	uint64_t expected = memory_sum(memory, size);
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (unsigned long long count = 1;; count++) {
		if (count % CHECK_EVERY == 0 && memory_sum(memory, size) != expected) {
			fprintf(stderr, "the memory changed at count %llu\n", count);
			return 3;
		}
		printf("%llu\n", count);
		struct timespec ts = { 0, 100 * 1000 * 1000 };
		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
	}
}
