/*
 * What counter.c and forktree.c share: the count file they rewrite and their 100 ms tick.
 * Include after <errno.h>, <fcntl.h>, <stdio.h>, <time.h> and <unistd.h>.
 */
#ifndef STASIS_COUNT_FILE_H
#define STASIS_COUNT_FILE_H

/*
 * The count file is opened once and rewritten in place with a fixed-width number, so its size never
 * changes: CRIU checks the size of open files on restore, and a file that was truncated and
 * rewritten between checkpoint and restore would be refused ("bad size").
 */
#define COUNT_WIDTH 20

static int open_count_file(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	if (fd >= 0 && ftruncate(fd, COUNT_WIDTH + 1) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void write_count(int fd, unsigned long long count)
{
	char buf[COUNT_WIDTH + 2];
	snprintf(buf, sizeof(buf), "%0*llu\n", COUNT_WIDTH, count);
	while (pwrite(fd, buf, COUNT_WIDTH + 1, 0) < 0 && errno == EINTR)
		;
}

static void sleep_100ms(void)
{
	struct timespec ts = { 0, 100 * 1000 * 1000 };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

#endif
