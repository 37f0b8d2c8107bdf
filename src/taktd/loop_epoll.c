/* SPDX-License-Identifier: MIT */
/* loop_epoll.c - the epoll backend (level-triggered). */
#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "loop.h"

struct loop_epoll {
	struct loop base;
	int epfd;
	struct epoll_event evs[256];
};

static int ep_set(struct loop *l, int fd, uint32_t events, void *tag)
{
	struct loop_epoll *e = (struct loop_epoll *)l;
	struct epoll_event ev = { .events = events & (LOOP_IN | LOOP_OUT), .data.ptr = tag };
	if (epoll_ctl(e->epfd, EPOLL_CTL_MOD, fd, &ev) == 0)
		return 0;
	if (errno == ENOENT && epoll_ctl(e->epfd, EPOLL_CTL_ADD, fd, &ev) == 0)
		return 0;
	return -errno;
}

static void ep_del(struct loop *l, int fd)
{
	struct loop_epoll *e = (struct loop_epoll *)l;
	epoll_ctl(e->epfd, EPOLL_CTL_DEL, fd, NULL);
}

static int ep_wait(struct loop *l, struct loop_event *out, int max, int timeout_ms)
{
	struct loop_epoll *e = (struct loop_epoll *)l;
	if (max > 256)
		max = 256;
	int n = epoll_wait(e->epfd, e->evs, max, timeout_ms);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	for (int i = 0; i < n; i++) {
		out[i].tag = e->evs[i].data.ptr;
		out[i].events = e->evs[i].events & (LOOP_IN | LOOP_OUT | LOOP_ERR | LOOP_HUP);
	}
	return n;
}

static int ep_peek(struct loop *l, struct loop_event *out, int max)
{
	return ep_wait(l, out, max, 0);
}

static void ep_destroy(struct loop *l)
{
	struct loop_epoll *e = (struct loop_epoll *)l;
	close(e->epfd);
	free(e);
}

static const struct loop_ops ep_ops = {
	.name = "epoll", .set = ep_set, .del = ep_del, .wait = ep_wait, .peek = ep_peek, .destroy = ep_destroy,
};

int loop_epoll_open(struct loop **out)
{
	struct loop_epoll *e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (e->epfd < 0) {
		int err = -errno;
		free(e);
		return err;
	}
	e->base.ops = &ep_ops;
	*out = &e->base;
	return 0;
}
