/*
 * openfile <path>
 *
 * Test workload for CRIU restore of an open regular file. Opens <path>
 * (O_WRONLY|O_APPEND|O_CREAT) once, keeps it open the whole time and every
 * 100 ms appends one line "<count>\n" (first line is 1). Runs forever; end it
 * with SIGKILL. <path> must exist at restore time (CRIU reopens it by path;
 * for O_WRONLY|O_APPEND files CRIU does not check the size, so the file may
 * have grown since the dump).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s <path>\n", argv[0]);
		return 2;
	}
	int fd = open(argv[1], O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		perror(argv[1]);
		return 1;
	}
	for (unsigned long long count = 1;; count++) {
		char buf[32];
		int len = snprintf(buf, sizeof(buf), "%llu\n", count);
		while (write(fd, buf, len) < 0 && errno == EINTR)
			;
		struct timespec ts = { 0, 100 * 1000 * 1000 };
		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
	}
}
