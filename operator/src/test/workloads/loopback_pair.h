/*
 * What tcppair.c and tcpstream.c share: one established loopback TCP connection with both ends in
 * one process tree, and the whole-file rewrite of their status file.
 * Include after <arpa/inet.h>, <errno.h>, <fcntl.h>, <netinet/in.h>, <stdio.h>, <string.h>,
 * <sys/socket.h> and <unistd.h>.
 */
#ifndef STASIS_LOOPBACK_PAIR_H
#define STASIS_LOOPBACK_PAIR_H

/*
 * Listens on 127.0.0.1 (an ephemeral port), forks a client that connects, and closes the listener,
 * so the tree holds exactly one connection, both ends of it. Returns the connected socket: the
 * server's end in the parent (*child: the client's PID), the client's in the child (*child: 0);
 * -1 on failure, said on stderr.
 */
static inline int loopback_pair(pid_t *child)
{
	struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = 0 };
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t addrlen = sizeof(addr);
	int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (listener < 0 || bind(listener, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(listener, 1) < 0 ||
	    getsockname(listener, (struct sockaddr *)&addr, &addrlen) < 0) {
		perror("listen");
		return -1;
	}
	*child = fork();
	if (*child < 0) {
		perror("fork");
		return -1;
	}
	if (*child == 0) {
		close(listener);
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
			perror("connect");
			return -1;
		}
		return fd;
	}
	int conn = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
	close(listener);
	if (conn < 0)
		perror("accept");
	return conn;
}

/* Replaces the content of path with line (open, truncate, write, close). */
static inline void rewrite_file(const char *path, const char *line)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return;
	size_t len = strlen(line), off = 0;
	while (off < len) {
		ssize_t n = write(fd, line + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		off += n;
	}
	close(fd);
}

#endif
