/* SPDX-License-Identifier: MIT */
/*
 * mech_cacheline.c - the hardware limit: two processes bouncing one cache
 * line.  A single 64-byte-aligned 64-bit word in a MAP_SHARED anonymous
 * mapping; ping stores 2*seq, pong waits until the word changes and stores
 * 2*seq+1, ping waits until it changes.  A round trip therefore moves the
 * line pong-ward and back once each, which is the least any shared-memory
 * round trip can cost between these two cores.  No ring, no index, no copy:
 * only the sequence number travels (the harness still copies it into the
 * caller's buffer).
 *
 * mech_linepair is the same with one line per direction (ping stores into
 * line 0 and polls line 1, pong the other way round): the least any pair of
 * one-way channels can cost.  One shared line is cheaper still: the side
 * that has just read it writes it next, and the coherence protocol can hand
 * the line over for writing with that read (its minimum is ~200 ns here
 * against ~350 ns for the pair); a queue per direction cannot profit, as
 * its reader writes a different line.  Both are shown so that a ratio can
 * be read against either.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "mech.h"

struct line {
	alignas(128) _Atomic uint64_t word; /* the one bouncing line */
	uint8_t pad[128 - 8];
};

struct ep {
	struct line *l;   /* two lines: [0] ping's, [1] pong's */
	uint64_t mine;    /* last value this side stored */
	uint64_t theirs;  /* last value seen from the other side */
	unsigned odd;     /* pong stores odd values, ping even */
	unsigned pair;    /* 1: write line [odd], poll line [!odd]; 0: both use [0] */
};

static int cl_setup(const struct bench_params *p, void **state)
{
	(void)p;
	void *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return -errno;
	memset(m, 0, 4096);
	*state = m;
	return 0;
}

static int open_ep(void *state, enum bench_role role, unsigned pair, void **out)
{
	if (role != ROLE_PING && role != ROLE_PONG)
		return -EOPNOTSUPP;
	struct ep *e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->l = state;
	e->odd = role == ROLE_PONG;
	e->pair = pair;
	e->mine = 0; /* the initial word: pong waits for ping's first store */
	*out = e;
	return 0;
}

static int cl_try_send(void *ep, const void *buf, size_t len)
{
	struct ep *e = ep;
	uint64_t seq;
	(void)len;
	memcpy(&seq, buf, 8);
	e->mine = seq * 2u + e->odd;
	atomic_store_explicit(&e->l[e->pair ? e->odd : 0].word, e->mine, memory_order_release);
	return 0;
}

static int cl_try_recv(void *ep, void *buf, size_t cap)
{
	struct ep *e = ep;
	uint64_t v = atomic_load_explicit(&e->l[e->pair ? !e->odd : 0].word, memory_order_acquire);
	if (v == e->mine || v == e->theirs)
		return -EAGAIN;
	e->theirs = v;
	uint64_t seq = v / 2u;
	memcpy(buf, &seq, 8);
	return (int)(cap < 8 ? cap : 8);
}

static int cl_open(void *state, const struct bench_params *p, enum bench_role role, void **out)
{
	(void)p;
	return open_ep(state, role, 0, out);
}

static int lp_open(void *state, const struct bench_params *p, enum bench_role role, void **out)
{
	(void)p;
	return open_ep(state, role, 1, out);
}

static void cl_close(void *ep) { free(ep); }
static void cl_teardown(void *state) { munmap(state, 4096); }

const struct bench_mech mech_cacheline = {
	.name = "cacheline",
	.title = "two processes bouncing one cache line (hardware limit)",
	.setup = cl_setup,
	.open = cl_open,
	.try_send = cl_try_send,
	.try_recv = cl_try_recv,
	.close = cl_close,
	.teardown = cl_teardown,
	.flags = MECH_BUSY | MECH_SEQ_ONLY | MECH_NO_STREAM,
	.group = "limit",
};

const struct bench_mech mech_linepair = {
	.name = "linepair",
	.title = "two processes, one cache line per direction (limit for one-way channels)",
	.setup = cl_setup,
	.open = lp_open,
	.try_send = cl_try_send,
	.try_recv = cl_try_recv,
	.close = cl_close,
	.teardown = cl_teardown,
	.flags = MECH_BUSY | MECH_SEQ_ONLY | MECH_NO_STREAM,
	.group = "limit",
};
