/* SPDX-License-Identifier: MIT */
/*
 * loop.h - the event loop interface, two backends: io_uring (poll requests
 * through liburing, every re-arm of one iteration submitted with the wait in
 * one io_uring_enter) and epoll (level-triggered).  Readiness semantics are
 * level-triggered on both: an fd whose interest is set is reported again for
 * as long as it is ready.
 */
#ifndef TAKTD_LOOP_H
#define TAKTD_LOOP_H

#include <stdint.h>

#define LOOP_IN 0x001u  /* = POLLIN = EPOLLIN */
#define LOOP_OUT 0x004u /* = POLLOUT = EPOLLOUT */
#define LOOP_ERR 0x008u
#define LOOP_HUP 0x010u

struct loop_event {
	void *tag;
	uint32_t events;
};

struct loop;
struct loop_ops {
	const char *name;
	/* Set the interest of fd (0 = none, but stay registered). */
	int (*set)(struct loop *l, int fd, uint32_t events, void *tag);
	/* Forget fd (before closing it). */
	void (*del)(struct loop *l, int fd);
	/* Wait up to timeout_ms (-1 = forever); returns events filled or -errno. */
	int (*wait)(struct loop *l, struct loop_event *ev, int max, int timeout_ms);
	/* Events ready now, without waiting; cheap enough to call in a spin
	 * (io_uring: a system call only when interest changed; epoll: one
	 * epoll_wait with timeout 0).  Returns events filled or -errno. */
	int (*peek)(struct loop *l, struct loop_event *ev, int max);
	void (*destroy)(struct loop *l);
};
struct loop {
	const struct loop_ops *ops;
};

/* backend: "io_uring", "epoll" or NULL (io_uring, else epoll).  0 or -errno. */
int loop_open(const char *backend, struct loop **out);
int loop_uring_open(struct loop **out);
int loop_epoll_open(struct loop **out);

#endif
