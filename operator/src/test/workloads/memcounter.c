/*
 * memcounter <MiB> <outfile> [<rewrite MiB>]
 *
 * Workload for deduplicated checkpoints (DeduplicationIT): a counter, as counter.c, that also holds
 * <MiB> MiB of pseudo-random (incompressible) memory. Signals change or report that memory:
 *   SIGUSR1  rewrites <rewrite MiB> (default 4) of it, in 1 MiB blocks at spread-out page-aligned places;
 *   SIGUSR2  writes a checksum of all of it to <outfile>.sum (16 hex digits and a newline), so a
 *            test can tell that a restored copy holds exactly the memory it was checkpointed with.
 * Runs until SIGKILL.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define XORSHIFT_SEED 0x6d656d636f756e74ULL
#include "xorshift.h"
#include "memsum.h"

#include "count_file.h"

#define PAGE 4096
#define MIB (1UL << 20)

static volatile sig_atomic_t rewrite, report;

static void on_signal(int sig)
{
	if (sig == SIGUSR1)
		rewrite = 1;
	else
		report = 1;
}

static void write_sum(const char *out, const unsigned char *memory, size_t size)
{
	uint64_t sum = memory_sum(memory, size);
	char path[4096], tmp[4100], line[32];
	snprintf(path, sizeof(path), "%s.sum", out);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	int len = snprintf(line, sizeof(line), "%016llx\n", (unsigned long long)sum);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, line, len) != len)
		exit(1);
	close(fd);
	rename(tmp, path); /* a reader never sees a half-written sum */
}

int main(int argc, char **argv)
{
	if (argc != 3 && argc != 4) {
		fprintf(stderr, "usage: %s <MiB> <outfile> [<rewrite MiB>]\n", argv[0]);
		return 2;
	}
	size_t size = strtoull(argv[1], NULL, 10) * MIB;
	size_t blocks = argc == 4 ? strtoull(argv[3], NULL, 10) : 4;
	if (size < 8 * MIB) {
		fprintf(stderr, "memcounter needs at least 8 MiB\n");
		return 2;
	}
	if (blocks < 1 || blocks > size / (4 * MIB)) {
		fprintf(stderr, "memcounter rewrites 1 MiB to a quarter of its memory\n");
		return 2;
	}
	unsigned char *memory = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (memory == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	fill(memory, size);
	int fd = open_count_file(argv[2]);
	if (fd < 0) {
		perror(argv[2]);
		return 1;
	}
	struct sigaction sa = { .sa_handler = on_signal };
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGUSR2, &sa, NULL);
	for (unsigned long long count = 1;; count++) {
		if (rewrite) {
			rewrite = 0;
			size_t slots = size / (4 * MIB);
			for (size_t b = 0; b < blocks; b++)
				fill(memory + ((b * slots / blocks) * 4 * MIB) + (next() % (MIB / PAGE)) * PAGE, MIB);
		}
		if (report) {
			report = 0;
			write_sum(argv[2], memory, size);
		}
		write_count(fd, count);
		sleep_100ms();
	}
}
