/*
 * shmjob <segment> <log> <steps> [<step-ms> [<mib>]]
 *
 * Test workload shaped like an MPI job on one node: two processes (rank 0, the one started, and
 * rank 1, its child) that talk only through a file on tmpfs both map shared and writable, as
 * OpenMPI's vader transport does with /dev/shm/vader_segment.*. <segment> is created (O_RDWR,
 * truncated to 64 KiB), mapped MAP_SHARED and closed again: from then on it exists only as a
 * mapping. The ranks take turns on a value in the segment, each step one deterministic update by
 * each rank; rank 0 writes one line per step to <log>, which it opened O_WRONLY|O_TRUNC (not for
 * appending, so CRIU records and checks its size, as for a LAMMPS log or a trajectory):
 *
 *   step <n> value <hex>
 *
 * and after <steps> steps "done <hex>" and exits 0, as rank 1 does. The log of a run that was
 * checkpointed, ended and restored is byte for byte that of an uninterrupted run. <step-ms>
 * (default 20) paces the steps; <mib> (default 0) MiB of private memory each rank fills, as a
 * solver holds its share of a model, so that a dump has that much to write.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SEGMENT_BYTES (64 * 1024)

struct segment {
	volatile uint64_t turn; /* even: rank 0's move, odd: rank 1's */
	volatile uint64_t value;
};

static void sleep_us(long us)
{
	struct timespec ts = { us / 1000000, (us % 1000000) * 1000 };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static void await_turn(struct segment *s, uint64_t turn)
{
	while (s->turn != turn)
		sleep_us(200);
	__sync_synchronize();
}

static void write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			exit(3);
		buf += n;
		len -= n;
	}
}

int main(int argc, char **argv)
{
	if (argc < 4 || argc > 6) {
		fprintf(stderr, "usage: %s <segment> <log> <steps> [<step-ms> [<mib>]]\n", argv[0]);
		return 2;
	}
	uint64_t steps = strtoull(argv[3], NULL, 10);
	long step_us = (argc >= 5 ? atol(argv[4]) : 20) * 1000;
	size_t model_bytes = (argc == 6 ? strtoull(argv[5], NULL, 10) : 0) << 20;
	int fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || ftruncate(fd, SEGMENT_BYTES) < 0) {
		perror(argv[1]);
		return 1;
	}
	struct segment *s = mmap(NULL, SEGMENT_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (s == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	close(fd);
	s->value = 0x9e3779b97f4a7c15ULL;
	int log = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (log < 0) {
		perror(argv[2]);
		return 1;
	}
	pid_t child = fork();
	if (child < 0) {
		perror("fork");
		return 1;
	}
	/* Each rank its own share, filled after the fork so that neither shares the other's pages. */
	unsigned char *model = model_bytes ? malloc(model_bytes) : NULL;
	for (size_t i = 0; i < model_bytes; i++)
		model[i] = (unsigned char)(i * 2654435761u >> 13) ^ (unsigned char)(child == 0);
	if (child == 0) {
		close(log);
		for (uint64_t step = 0; step < steps; step++) {
			await_turn(s, 2 * step + 1);
			s->value = (s->value ^ (s->value >> 29)) * 0xbf58476d1ce4e5b9ULL;
			__sync_synchronize();
			s->turn = 2 * step + 2;
		}
		return 0;
	}
	for (uint64_t step = 0; step < steps; step++) {
		await_turn(s, 2 * step);
		s->value = s->value * 6364136223846793005ULL + step;
		__sync_synchronize();
		s->turn = 2 * step + 1;
		await_turn(s, 2 * step + 2);
		char line[64];
		int len = snprintf(line, sizeof(line), "step %llu value %016llx\n", (unsigned long long)step + 1,
				   (unsigned long long)s->value);
		write_all(log, line, len);
		sleep_us(step_us);
	}
	char line[64];
	int len = snprintf(line, sizeof(line), "done %016llx\n", (unsigned long long)s->value);
	write_all(log, line, len);
	close(log);
	int status;
	waitpid(child, &status, 0);
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 4;
}
