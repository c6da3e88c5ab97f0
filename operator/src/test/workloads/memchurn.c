/*
 * memchurn <MiB> <outfile>
 *
 * Workload for the deduplication bench (bench/dedup-criu.sh): memory that changes between
 * checkpoints the ways issue 18 measures. Maps <MiB> MiB of pseudo-random (incompressible) bytes,
 * then writes <outfile> with a generation number, 0 first, and waits. Each signal changes memory
 * and then writes the next generation:
 *   SIGUSR1  rewrites 5% of the memory in 1 MiB blocks at page-aligned random places;
 *   SIGUSR2  maps and fills a new region of 1/16 of the memory (the kernel places it below the
 *            others, so its pages land in the middle of CRIU's pages image);
 *   SIGHUP   rewrites 5% of the pages, each at a random place.
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
#include <unistd.h>

#define XORSHIFT_SEED 0x6d656d636875726eULL
#include "xorshift.h"

#define PAGE 4096
#define MIB (1UL << 20)

static volatile sig_atomic_t pending;

static void on_signal(int sig)
{
	pending = sig;
}

static void write_generation(const char *path, unsigned gen)
{
	char line[32];
	int len = snprintf(line, sizeof(line), "%u\n", gen);
	char tmp[4096];
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, line, len) != len)
		exit(1);
	close(fd);
	rename(tmp, path); /* a reader never sees a half-written number */
}

static unsigned char *map(size_t bytes)
{
	unsigned char *at = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (at == MAP_FAILED) {
		perror("mmap");
		exit(1);
	}
	fill(at, bytes);
	return at;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: %s <MiB> <outfile>\n", argv[0]);
		return 2;
	}
	size_t size = strtoull(argv[1], NULL, 10) * MIB;
	if (size < 32 * MIB) {
		fprintf(stderr, "memchurn needs at least 32 MiB\n");
		return 2;
	}
	unsigned char *memory = map(size);
	struct sigaction sa = { .sa_handler = on_signal };
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGUSR2, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	/* Signals wait blocked until sigsuspend, so one sent right after a generation is written is not lost. */
	sigset_t blocked, waiting;
	sigemptyset(&blocked);
	sigaddset(&blocked, SIGUSR1);
	sigaddset(&blocked, SIGUSR2);
	sigaddset(&blocked, SIGHUP);
	sigprocmask(SIG_BLOCK, &blocked, &waiting);
	unsigned gen = 0;
	write_generation(argv[2], gen);
	for (;;) {
		sigsuspend(&waiting);
		int sig = pending;
		pending = 0;
		if (sig == SIGUSR1) {
			/* One block in each of size/2MiB slots, 5% of them, so blocks never overlap. */
			size_t slots = size / (2 * MIB), blocks = (size / MIB * 5 + 50) / 100;
			for (size_t b = 0; b < blocks; b++) {
				size_t slot = (b * slots) / blocks + next() % (slots / blocks);
				fill(memory + slot * 2 * MIB + (next() % (MIB / PAGE)) * PAGE, MIB);
			}
		} else if (sig == SIGUSR2) {
			map(size / 16);
		} else if (sig == SIGHUP) {
			size_t pages = size / PAGE;
			for (size_t p = 0; p < pages / 20; p++)
				fill(memory + (next() % pages) * PAGE, PAGE);
		} else {
			continue;
		}
		write_generation(argv[2], ++gen);
	}
}
