/*
 * ghost-file <path>
 *
 * A process CRIU refuses to checkpoint with its default settings: it writes 2 MiB to <path>,
 * deletes it and keeps it open. CRIU carries such deleted ("ghost") files in the checkpoint only
 * up to --ghost-limit, 1 MiB by default, and fails the dump otherwise. Then it sleeps forever.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s <path>\n", argv[0]);
		return 2;
	}
	int fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0) {
		perror(argv[1]);
		return 1;
	}
	static char block[1 << 16];
	memset(block, 'g', sizeof(block));
	for (int i = 0; i < 32; i++) {
		if (write(fd, block, sizeof(block)) != sizeof(block)) {
			perror("write");
			return 1;
		}
	}
	unlink(argv[1]);
	for (;;)
		pause();
}
