/*
 * mapfile <data> <count-file> [<new-root>]
 *
 * Test workload for what a checkpoint records of mapped files. Maps <data> (read-only, shared) and
 * closes it, so that it is only mapped, not open on a descriptor; then, if given, chroots into
 * <new-root>, where <data>'s path may name something else entirely (a FIFO) while /proc/PID/maps
 * still shows it; then reads the mapping every 100 ms while it writes a count to <count-file>.
 * Runs forever; end it with SIGKILL.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "count_file.h"

int main(int argc, char **argv)
{
	if (argc != 3 && argc != 4) {
		fprintf(stderr, "usage: %s <data> <count-file> [<new-root>]\n", argv[0]);
		return 2;
	}
	int data_fd = open(argv[1], O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (data_fd < 0 || fstat(data_fd, &st) < 0 || st.st_size == 0) {
		perror(argv[1]);
		return 1;
	}
	volatile const char *data = mmap(NULL, st.st_size, PROT_READ, MAP_SHARED, data_fd, 0);
	if (data == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	close(data_fd);
	int fd = open_count_file(argv[2]);
	if (fd < 0) {
		perror(argv[2]);
		return 1;
	}
	if (argc == 4 && (chroot(argv[3]) < 0 || chdir("/") < 0)) {
		perror(argv[3]);
		return 1;
	}
	for (unsigned long long count = 1;; count++) {
		(void)data[count % st.st_size];
		write_count(fd, count);
		sleep_100ms();
	}
}
