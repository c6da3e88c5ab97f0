/*
 * spawn_at <pid> <program> [args...]
 *
 * Test helper: starts <program> as a new process with exactly the PID <pid> (clone3 with set_tid,
 * Linux 5.5+, needs CAP_SYS_ADMIN), in a session of its own, and waits for it. Tests use it to
 * give the PID of a process that ended to another process, as the kernel may do at any time.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: spawn_at <pid> <program> [args...]\n");
		return 2;
	}
	pid_t tid[1] = { (pid_t)atoi(argv[1]) };
	struct clone_args args;
	memset(&args, 0, sizeof(args));
	args.exit_signal = SIGCHLD;
	args.set_tid = (uint64_t)(uintptr_t)tid;
	args.set_tid_size = 1;
	long pid = syscall(SYS_clone3, &args, sizeof(args));
	if (pid < 0) {
		perror("clone3");
		return 1;
	}
	if (pid == 0) {
		setsid();
		execv(argv[2], argv + 2);
		perror("execv");
		_exit(127);
	}
	int status;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return 0;
}
