/* SPDX-License-Identifier: MIT */
/*
 * loop_uring.c - the io_uring backend (liburing 2.3).
 *
 * Each fd with a non-empty interest has one one-shot IORING_OP_POLL_ADD in
 * flight.  A completion reports the fd and marks it for re-arming; the
 * re-arms (and cancels after an interest change) of a whole iteration go to
 * the kernel in the same io_uring_enter as the wait.  user_data packs the fd
 * with a generation number, so completions of a forgotten fd (closed, maybe
 * reused) are recognised and dropped.
 *
 * An fd registered with an empty interest (a client paused on a full
 * channel) still has a poll in flight, so that its hangup or error is
 * reported as epoll reports EPOLLHUP/EPOLLERR: a multishot poll, since the
 * kernel always adds POLLRDHUP to a poll's mask and a one-shot poll re-armed
 * on a half-closed socket would complete at once, forever.  The multishot
 * poll completes only on wake-ups (the peer's shutdown, its close), each
 * completion flagged IORING_CQE_F_MORE while it stays armed.
 */
#include <errno.h>
#include <liburing.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "loop.h"

#define CANCEL_BIT (1ull << 63)

struct ureg {
	void *tag;
	uint32_t want, armed, gen;
	bool registered, inflight, cancel_sent, dirty;
};

/* poll mask of the empty-interest watch: the kernel adds ERR, HUP, RDHUP */
#define WATCH_MASK 0u

struct loop_uring {
	struct loop base;
	struct io_uring ring;
	struct ureg *regs;
	int nregs;
	int *dirty;
	int ndirty, cap_dirty;
	bool no_multishot; /* the kernel refused a multishot poll (< 5.13) */
};

static uint64_t ud_of(int fd, uint32_t gen)
{
	return (uint64_t)(gen & 0x7fffffffu) << 32 | (uint32_t)fd;
}

static struct io_uring_sqe *get_sqe(struct loop_uring *u)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
	if (!sqe) {
		io_uring_submit(&u->ring);
		sqe = io_uring_get_sqe(&u->ring);
	}
	return sqe;
}

static void mark_dirty(struct loop_uring *u, int fd)
{
	struct ureg *r = &u->regs[fd];
	if (r->dirty)
		return;
	if (u->ndirty == u->cap_dirty) {
		int cap = u->cap_dirty ? 2 * u->cap_dirty : 64;
		int *d = realloc(u->dirty, (size_t)cap * sizeof(int));
		if (!d)
			return; /* re-armed at the next change instead */
		u->dirty = d;
		u->cap_dirty = cap;
	}
	r->dirty = true;
	u->dirty[u->ndirty++] = fd;
}

static void send_cancel(struct loop_uring *u, int fd)
{
	struct ureg *r = &u->regs[fd];
	struct io_uring_sqe *sqe = get_sqe(u);
	if (!sqe)
		return;
	io_uring_prep_poll_remove(sqe, ud_of(fd, r->gen));
	io_uring_sqe_set_data64(sqe, CANCEL_BIT);
	r->cancel_sent = true;
}

static int ur_set(struct loop *l, int fd, uint32_t events, void *tag)
{
	struct loop_uring *u = (struct loop_uring *)l;
	if (fd < 0)
		return -EBADF;
	if (fd >= u->nregs) {
		int n = u->nregs ? u->nregs : 64;
		while (n <= fd)
			n *= 2;
		struct ureg *r = realloc(u->regs, (size_t)n * sizeof(*r));
		if (!r)
			return -ENOMEM;
		memset(r + u->nregs, 0, (size_t)(n - u->nregs) * sizeof(*r));
		u->regs = r;
		u->nregs = n;
	}
	struct ureg *r = &u->regs[fd];
	r->registered = true;
	r->tag = tag;
	r->want = events & (LOOP_IN | LOOP_OUT);
	mark_dirty(u, fd);
	return 0;
}

static void ur_del(struct loop *l, int fd)
{
	struct loop_uring *u = (struct loop_uring *)l;
	if (fd < 0 || fd >= u->nregs || !u->regs[fd].registered)
		return;
	struct ureg *r = &u->regs[fd];
	if (r->inflight && !r->cancel_sent)
		send_cancel(u, fd);
	r->gen++;
	r->registered = r->inflight = r->cancel_sent = false;
	r->want = r->armed = 0;
	r->tag = NULL;
}

static void arm_dirty(struct loop_uring *u)
{
	for (int i = 0; i < u->ndirty; i++) {
		int fd = u->dirty[i];
		struct ureg *r = &u->regs[fd];
		r->dirty = false;
		if (!r->registered)
			continue;
		if (r->inflight) {
			if (r->armed != r->want && !r->cancel_sent)
				send_cancel(u, fd);
			continue;
		}
		if (!r->want && u->no_multishot)
			continue; /* (no hangup watch without multishot polls) */
		struct io_uring_sqe *sqe = get_sqe(u);
		if (!sqe)
			continue;
		if (r->want)
			io_uring_prep_poll_add(sqe, fd, r->want);
		else
			io_uring_prep_poll_multishot(sqe, fd, WATCH_MASK);
		io_uring_sqe_set_data64(sqe, ud_of(fd, r->gen));
		r->inflight = true;
		r->armed = r->want;
	}
	u->ndirty = 0;
}

static int harvest(struct loop_uring *u, struct loop_event *out, int max)
{
	struct io_uring_cqe *cqe;
	int n = 0;
	unsigned head, seen = 0;
	io_uring_for_each_cqe(&u->ring, head, cqe) {
		if (n == max)
			break;
		seen++;
		uint64_t ud = io_uring_cqe_get_data64(cqe);
		if (ud & CANCEL_BIT)
			continue;
		int fd = (int)(uint32_t)ud;
		uint32_t gen = (uint32_t)(ud >> 32);
		if (fd < 0 || fd >= u->nregs)
			continue;
		struct ureg *r = &u->regs[fd];
		if (!r->registered || (r->gen & 0x7fffffffu) != gen)
			continue;
		if (!(cqe->flags & IORING_CQE_F_MORE)) {
			/* the poll is done (a multishot one: cancelled, or
			 * refused by an old kernel): re-arm */
			if (cqe->res == -EINVAL && !r->armed)
				u->no_multishot = true;
			r->inflight = r->cancel_sent = false;
			mark_dirty(u, fd);
		}
		if (cqe->res > 0) {
			uint32_t ev = (uint32_t)cqe->res & (r->want | LOOP_ERR | LOOP_HUP);
			if (ev) {
				out[n].tag = r->tag;
				out[n].events = ev;
				n++;
			}
		}
	}
	io_uring_cq_advance(&u->ring, seen);
	return n;
}

static int ur_wait(struct loop *l, struct loop_event *out, int max, int timeout_ms)
{
	struct loop_uring *u = (struct loop_uring *)l;
	struct io_uring_cqe *cqe;
	arm_dirty(u);
	struct __kernel_timespec ts = { .tv_sec = timeout_ms / 1000,
					.tv_nsec = (long long)(timeout_ms % 1000) * 1000000 };
	int rc = io_uring_submit_and_wait_timeout(&u->ring, &cqe, 1, timeout_ms < 0 ? NULL : &ts, NULL);
	if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY)
		return rc;
	return harvest(u, out, max);
}

/* Poll requests already in the kernel complete into the shared CQ ring;
 * re-arms are submitted, and one non-waiting enter runs completions that
 * are still pending as task work. */
static int ur_peek(struct loop *l, struct loop_event *out, int max)
{
	struct loop_uring *u = (struct loop_uring *)l;
	arm_dirty(u);
	if (io_uring_sq_ready(&u->ring)) {
		int rc = io_uring_submit(&u->ring);
		if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY)
			return rc;
	}
	if (!io_uring_cq_ready(&u->ring)) {
		/* A poll completion for a task that runs in user space waits
		 * as task work until the task enters the kernel: enter once,
		 * without waiting, to run it (as epoll_wait(0) would). */
		io_uring_get_events(&u->ring);
		if (!io_uring_cq_ready(&u->ring))
			return 0;
	}
	return harvest(u, out, max);
}

static void ur_destroy(struct loop *l)
{
	struct loop_uring *u = (struct loop_uring *)l;
	io_uring_queue_exit(&u->ring);
	free(u->regs);
	free(u->dirty);
	free(u);
}

static const struct loop_ops ur_ops = {
	.name = "io_uring", .set = ur_set, .del = ur_del, .wait = ur_wait, .peek = ur_peek, .destroy = ur_destroy,
};

static int probe_enter(struct io_uring *ring)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
	if (!sqe)
		return -EBUSY;
	io_uring_prep_nop(sqe);
	io_uring_sqe_set_data64(sqe, CANCEL_BIT); /* ignored by harvest, like a cancel */
	int rc = io_uring_submit_and_wait(ring, 1);
	if (rc < 0)
		return rc;
	struct io_uring_cqe *cqe;
	rc = io_uring_peek_cqe(ring, &cqe);
	if (rc < 0)
		return rc;
	rc = cqe->res;
	io_uring_cqe_seen(ring, cqe);
	return rc < 0 ? rc : 0;
}

int loop_uring_open(struct loop **out)
{
	struct loop_uring *u = calloc(1, sizeof(*u));
	if (!u)
		return -ENOMEM;
	int rc = io_uring_queue_init(1024, &u->ring, 0);
	if (rc < 0) {
		free(u);
		return rc;
	}
	/* A sandbox may let io_uring_setup through and filter io_uring_enter
	 * (seccomp profiles that list the calls one by one): find out now,
	 * with one NOP, while loop_open can still fall back to epoll, rather
	 * than at the first wait. */
	if ((rc = probe_enter(&u->ring)) < 0) {
		io_uring_queue_exit(&u->ring);
		free(u);
		return rc;
	}
	u->base.ops = &ur_ops;
	*out = &u->base;
	return 0;
}
