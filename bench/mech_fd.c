/* SPDX-License-Identifier: MIT */
/*
 * mech_fd.c - the kernel's file-descriptor IPC: pipe, FIFO, Unix stream,
 * seqpacket and datagram sockets, TCP over 127.0.0.1.
 *
 * Latency: pipe and FIFO use two (one per direction); the sockets one
 * bidirectional connection (socketpair; TCP: connect/accept, TCP_NODELAY).
 * Streaming uses the ping -> pong direction alone.  Busy mode: O_NONBLOCK
 * descriptors polled with read/write (send/recv); blocking mode: the same
 * calls blocking.  Byte streams (pipe, FIFO, Unix stream, TCP) carry
 * fixed-size records: the receiver reads until a whole record is there,
 * directly into the caller's buffer; a partially written record is finished
 * before anything else is sent or received.  Each process closes the
 * descriptors it does not use, so a dead peer shows as EOF or EPIPE.
 *
 * MPSC (several producer processes sharing the write end): pipe and FIFO
 * for records up to PIPE_BUF (writes up to PIPE_BUF are atomic), seqpacket
 * and datagram sockets (each send is one message).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#include "mech.h"

enum fd_kind { K_PIPE, K_FIFO, K_USTREAM, K_USEQ, K_UDGRAM, K_TCP };

struct fd_state {
	enum fd_kind kind;
	int blocking;
	/* pipes/FIFOs: fd[0..1] direction a (read, write), fd[2..3] direction b.
	 * sockets: fd[0] the parent's end, fd[1] the child's end (TCP: fd[0] the
	 * listening socket). */
	int fd[4];
	char dir[64];          /* FIFO: the directory holding a and b */
	uint16_t port;         /* TCP */
};

struct fd_ep {
	int rfd, wfd;
	int stream;            /* byte stream: frame fixed-size records */
	int sock;              /* use send/recv (MSG_NOSIGNAL) */
	size_t size;
	size_t rhave;          /* bytes of the current record already received */
	unsigned char *pend;   /* unsent rest of a partially written record */
	size_t plen, poff;
};

static void xclose(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static int set_nonblock(int fd, int on)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0)
		return -errno;
	fl = on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK;
	return fcntl(fd, F_SETFL, fl) < 0 ? -errno : 0;
}

static int is_stream(enum fd_kind k) { return k == K_PIPE || k == K_FIFO || k == K_USTREAM || k == K_TCP; }

static int fd_check(const struct bench_params *p, char *why, size_t cap, enum fd_kind k)
{
	unsigned np = p->producers ? p->producers : 1;
	if (np > 1 && (k == K_PIPE || k == K_FIFO) && p->size > PIPE_BUF) {
		snprintf(why, cap, "writes above PIPE_BUF (%d) are not atomic", PIPE_BUF);
		return 1;
	}
	if (np > 1 && (k == K_USTREAM || k == K_TCP)) {
		snprintf(why, cap, "a byte stream interleaves several writers");
		return 1;
	}
	return 0;
}

static int fd_setup_kind(const struct bench_params *p, void **state, enum fd_kind k)
{
	struct fd_state *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->kind = k;
	s->blocking = p->blocking;
	for (int i = 0; i < 4; i++)
		s->fd[i] = -1;
	int e = 0;
	switch (k) {
	case K_PIPE:
		if (pipe2(s->fd, O_CLOEXEC) < 0 || pipe2(s->fd + 2, O_CLOEXEC) < 0)
			e = -errno;
		break;
	case K_FIFO: {
		snprintf(s->dir, sizeof(s->dir), "/tmp/takt-bench.XXXXXX");
		if (!mkdtemp(s->dir)) {
			e = -errno;
			s->dir[0] = 0;
			break;
		}
		char path[96];
		for (int i = 0; i < 2 && !e; i++) {
			snprintf(path, sizeof(path), "%s/%c", s->dir, 'a' + i);
			if (mkfifo(path, 0600) < 0)
				e = -errno;
		}
		break;
	}
	case K_USTREAM:
	case K_USEQ:
	case K_UDGRAM: {
		int type = k == K_USTREAM ? SOCK_STREAM : k == K_USEQ ? SOCK_SEQPACKET : SOCK_DGRAM;
		if (socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, s->fd) < 0)
			e = -errno;
		break;
	}
	case K_TCP: {
		s->fd[0] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		struct sockaddr_in a = { .sin_family = AF_INET };
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		socklen_t al = sizeof(a);
		if (s->fd[0] < 0 || bind(s->fd[0], (struct sockaddr *)&a, sizeof(a)) < 0 ||
		    listen(s->fd[0], 8) < 0 ||
		    getsockname(s->fd[0], (struct sockaddr *)&a, &al) < 0)
			e = -errno;
		s->port = ntohs(a.sin_port);
		break;
	}
	}
	if (e < 0) {
		for (int i = 0; i < 4; i++)
			xclose(&s->fd[i]);
		if (s->dir[0]) {
			char path[96];
			for (int i = 0; i < 2; i++) {
				snprintf(path, sizeof(path), "%s/%c", s->dir, 'a' + i);
				unlink(path);
			}
			rmdir(s->dir);
		}
		free(s);
		return e;
	}
	/* O_NONBLOCK lives in the open file description, which forked processes
	 * share: set it once here, for every process. */
	for (int i = 0; i < 4; i++)
		if (s->fd[i] >= 0 && k != K_TCP)
			set_nonblock(s->fd[i], !p->blocking);
	*state = s;
	return 0;
}

/* FIFO: open the read end without blocking, then the write end, retrying
 * while the peer has not opened its read end yet (ENXIO), for up to 10 s. */
static int fifo_open_pair(const char *rpath, const char *wpath, int blocking, int *rfd, int *wfd)
{
	*rfd = open(rpath, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (*rfd < 0)
		return -errno;
	for (int tries = 0;; tries++) {
		*wfd = open(wpath, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
		if (*wfd >= 0)
			break;
		if (errno != ENXIO || tries > 10000)
			return -errno;
		struct timespec ts = { 0, 1000000 };
		nanosleep(&ts, NULL);
	}
	if (blocking) {
		set_nonblock(*rfd, 0);
		set_nonblock(*wfd, 0);
	}
	return 0;
}

static int fd_open(void *state, const struct bench_params *p, enum bench_role role, void **out)
{
	struct fd_state *s = state;
	struct fd_ep *e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->rfd = e->wfd = -1;
	e->size = p->size;
	e->stream = is_stream(s->kind);
	e->sock = s->kind >= K_USTREAM;
	int parent = role == ROLE_PING || role == ROLE_CONSUMER;
	int err = 0;
	switch (s->kind) {
	case K_PIPE:
		/* a: ping/producer -> pong/consumer; b: pong -> ping */
		if (role == ROLE_PING) {
			e->wfd = s->fd[1], s->fd[1] = -1;
			e->rfd = s->fd[2], s->fd[2] = -1;
		} else if (role == ROLE_PONG) {
			e->rfd = s->fd[0], s->fd[0] = -1;
			e->wfd = s->fd[3], s->fd[3] = -1;
		} else if (role == ROLE_PRODUCER) {
			e->wfd = s->fd[1], s->fd[1] = -1;
		} else {
			e->rfd = s->fd[0], s->fd[0] = -1;
		}
		break;
	case K_FIFO: {
		char a[96], b[96];
		snprintf(a, sizeof(a), "%s/a", s->dir);
		snprintf(b, sizeof(b), "%s/b", s->dir);
		if (role == ROLE_PING)
			err = fifo_open_pair(b, a, p->blocking, &e->rfd, &e->wfd);
		else if (role == ROLE_PONG)
			err = fifo_open_pair(a, b, p->blocking, &e->rfd, &e->wfd);
		else if (role == ROLE_CONSUMER) {
			/* O_RDWR would hide the producers' end: open read-only, nonblocking
			 * (never waits for a writer) */
			e->rfd = open(a, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
			if (e->rfd < 0)
				err = -errno;
			else if (p->blocking)
				set_nonblock(e->rfd, 0);
		} else {
			for (int tries = 0;; tries++) {
				e->wfd = open(a, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
				if (e->wfd >= 0 || errno != ENXIO || tries > 10000)
					break;
				struct timespec ts = { 0, 1000000 };
				nanosleep(&ts, NULL);
			}
			if (e->wfd < 0)
				err = -errno;
			else if (p->blocking)
				set_nonblock(e->wfd, 0);
		}
		break;
	}
	case K_USTREAM:
	case K_USEQ:
	case K_UDGRAM:
		e->rfd = e->wfd = parent ? s->fd[0] : s->fd[1];
		if (parent)
			s->fd[0] = -1;
		else
			s->fd[1] = -1;
		break;
	case K_TCP: {
		int one = 1;
		if (parent) {
			struct pollfd pf = { .fd = s->fd[0], .events = POLLIN };
			if (poll(&pf, 1, 10000) != 1) {
				err = -ETIMEDOUT;
				break;
			}
			e->rfd = accept4(s->fd[0], NULL, NULL, SOCK_CLOEXEC);
		} else {
			e->rfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
			struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(s->port) };
			a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
			if (e->rfd >= 0 && connect(e->rfd, (struct sockaddr *)&a, sizeof(a)) < 0)
				xclose(&e->rfd);
		}
		if (e->rfd < 0) {
			err = err ? err : -errno;
			break;
		}
		xclose(&s->fd[0]);
		setsockopt(e->rfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		set_nonblock(e->rfd, !p->blocking);
		e->wfd = e->rfd;
		break;
	}
	}
	/* what this process does not use */
	for (int i = 0; i < 4; i++)
		xclose(&s->fd[i]);
	if (err < 0) {
		if (e->rfd >= 0)
			close(e->rfd);
		if (e->wfd >= 0 && e->wfd != e->rfd)
			close(e->wfd);
		free(e);
		return err;
	}
	*out = e;
	return 0;
}

static ssize_t do_write(struct fd_ep *e, const void *b, size_t n)
{
	return e->sock ? send(e->wfd, b, n, MSG_NOSIGNAL) : write(e->wfd, b, n);
}

/* Finish a partially written record: 0 when nothing is pending. */
static int flush(struct fd_ep *e)
{
	while (e->poff < e->plen) {
		ssize_t n = do_write(e, e->pend + e->poff, e->plen - e->poff);
		if (n < 0)
			return errno == EAGAIN || errno == EINTR ? -EAGAIN : -errno;
		e->poff += (size_t)n;
	}
	return 0;
}

static int fd_try_send(void *ep, const void *buf, size_t len)
{
	struct fd_ep *e = ep;
	int f = flush(e);
	if (f < 0)
		return f;
	ssize_t n = do_write(e, buf, len);
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? -EAGAIN : -errno;
	if ((size_t)n < len) {
		if (!e->stream)
			return -EMSGSIZE;
		/* keep the rest; the record counts as sent */
		if (!e->pend) {
			e->pend = malloc(e->size);
			if (!e->pend)
				return -ENOMEM;
		}
		memcpy(e->pend, (const unsigned char *)buf + n, len - (size_t)n);
		e->plen = len - (size_t)n;
		e->poff = 0;
	}
	return 0;
}

static int fd_try_recv(void *ep, void *buf, size_t cap)
{
	struct fd_ep *e = ep;
	if (e->wfd >= 0 && e->poff < e->plen) {
		int f = flush(e);
		if (f < 0 && f != -EAGAIN)
			return f;
	}
	if (!e->stream) {
		ssize_t n = e->sock ? recv(e->rfd, buf, cap, 0) : read(e->rfd, buf, cap);
		if (n < 0)
			return errno == EAGAIN || errno == EINTR ? -EAGAIN : -errno;
		if (n == 0 && e->size)
			return -EPIPE;
		return (int)n;
	}
	if (cap < e->size)
		return -EMSGSIZE;
	while (e->rhave < e->size) {
		unsigned char *at = (unsigned char *)buf + e->rhave;
		size_t want = e->size - e->rhave;
		ssize_t n = e->sock ? recv(e->rfd, at, want, 0) : read(e->rfd, at, want);
		if (n < 0)
			return errno == EAGAIN || errno == EINTR ? -EAGAIN : -errno;
		if (n == 0)
			return -EPIPE; /* EOF: every writer is gone */
		e->rhave += (size_t)n;
	}
	e->rhave = 0;
	return (int)e->size;
}

static void fd_close(void *ep)
{
	struct fd_ep *e = ep;
	if (!e)
		return;
	if (e->rfd >= 0)
		close(e->rfd);
	if (e->wfd >= 0 && e->wfd != e->rfd)
		close(e->wfd);
	free(e->pend);
	free(e);
}

static void fd_teardown(void *state)
{
	struct fd_state *s = state;
	for (int i = 0; i < 4; i++)
		xclose(&s->fd[i]);
	if (s->dir[0]) {
		char path[96];
		for (int i = 0; i < 2; i++) {
			snprintf(path, sizeof(path), "%s/%c", s->dir, 'a' + i);
			unlink(path);
		}
		rmdir(s->dir);
	}
	free(s);
}

#define FD_MECH(var, id, kind, ttl, extra)                                                   \
	static int var##_setup(const struct bench_params *p, void **st)                       \
	{                                                                                     \
		return fd_setup_kind(p, st, kind);                                            \
	}                                                                                     \
	static int var##_check(const struct bench_params *p, char *why, size_t cap)           \
	{                                                                                     \
		return fd_check(p, why, cap, kind);                                           \
	}                                                                                     \
	const struct bench_mech var = {                                                       \
		.name = id,                                                                   \
		.title = ttl,                                                                 \
		.setup = var##_setup,                                                         \
		.open = fd_open,                                                              \
		.try_send = fd_try_send,                                                      \
		.try_recv = fd_try_recv,                                                      \
		.close = fd_close,                                                            \
		.teardown = fd_teardown,                                                      \
		.flags = MECH_BUSY | MECH_BLOCK | (extra),                                    \
		.group = "kernel",                                                            \
		.check = var##_check,                                                         \
	};

FD_MECH(mech_pipe, "pipe", K_PIPE, "pipe(2), one per direction", MECH_MPSC)
FD_MECH(mech_fifo, "fifo", K_FIFO, "named pipes (mkfifo), one per direction", MECH_MPSC)
FD_MECH(mech_unix_stream, "unix-stream", K_USTREAM, "Unix stream socketpair", 0)
FD_MECH(mech_unix_seqpacket, "unix-seqpacket", K_USEQ, "Unix seqpacket socketpair", MECH_MPSC)
FD_MECH(mech_unix_dgram, "unix-dgram", K_UDGRAM, "Unix datagram socketpair", MECH_MPSC)
FD_MECH(mech_tcp, "tcp", K_TCP, "TCP over 127.0.0.1, TCP_NODELAY", 0)
