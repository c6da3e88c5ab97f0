/*
 * forktree <outdir> <n>
 *
 * Test workload for CRIU checkpoint/restore of a process tree. The parent forks
 * n children, then the parent (index 0) and every child (index 1..n) each count
 * like `counter`: every 100 ms the process increments its own counter and
 * rewrites <outdir>/count.<index> with it (in place, fixed width). The
 * parent reaps children that die. Runs forever; end it with SIGKILL (killing
 * the init of its PID namespace ends them all).
 *
 *   setsid unshare --pid --fork setsid ./forktree outdir 3 </dev/null >/dev/null 2>&1 &
 * gives a tree of 4 processes.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "count_file.h"

static void count_forever(const char *outdir, int index, int is_parent)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/count.%d", outdir, index);
	int fd = open_count_file(path);
	if (fd < 0) {
		perror(path);
		_exit(1);
	}
	for (unsigned long long count = 1;; count++) {
		write_count(fd, count);
		if (is_parent)
			while (waitpid(-1, NULL, WNOHANG) > 0)
				;
		sleep_100ms();
	}
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: %s <outdir> <n>\n", argv[0]);
		return 2;
	}
	int n = atoi(argv[2]);
	if (n < 0) {
		fprintf(stderr, "n must be >= 0\n");
		return 2;
	}
	for (int i = 1; i <= n; i++) {
		pid_t pid = fork();
		if (pid < 0) {
			perror("fork");
			return 1;
		}
		if (pid == 0)
			count_forever(argv[1], i, 0);
	}
	count_forever(argv[1], 0, 1);
	return 0;
}
