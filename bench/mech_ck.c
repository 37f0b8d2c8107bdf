/* SPDX-License-Identifier: MIT */
/*
 * mech_ck.c - Concurrency Kit's ck_ring in shared memory (issue 4's
 * reference for MPSC): the typed interface (CK_RING_PROTOTYPE) with 64-byte
 * entries copied into the ring's buffer, so records of up to 64 bytes.
 * SPSC (ping-pong, streaming): ck_ring_enqueue_spsc / ck_ring_dequeue_spsc;
 * MPSC (several producer processes): ck_ring_enqueue_mpsc (a CAS on the
 * producer head, then each producer waits for the earlier ones to publish)
 * and ck_ring_dequeue_mpsc.  Busy mode only: ck has no blocking calls.
 * Built only when libck-dev is found (BENCH_HAVE_CK).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "mech.h"

#ifdef BENCH_HAVE_CK
#include <ck_ring.h>

struct ck_rec {
	unsigned char b[64];
};
CK_RING_PROTOTYPE(rec64, ck_rec)

#define CK_SLOTS_MAX 65536u

struct ck_state {
	void *map;
	size_t map_size, ring_bytes;
	unsigned nslots;
	int mpsc;
};

struct ck_dir {
	struct ck_ring *ring;
	struct ck_rec *buf;
};

struct ck_ep {
	struct ck_dir tx, rx;
	int mpsc;
	size_t size;
};

static int ck_check(const struct bench_params *p, char *why, size_t cap)
{
	if (p->size > sizeof(struct ck_rec)) {
		snprintf(why, cap, "the ring's entries here are %zu bytes", sizeof(struct ck_rec));
		return 1;
	}
	return 0;
}

static int ck_setup(const struct bench_params *p, void **state)
{
	struct ck_state *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	unsigned n = 2;
	while ((uint64_t)n * 2 * sizeof(struct ck_rec) <= p->capacity && n < CK_SLOTS_MAX)
		n *= 2;
	s->nslots = n;
	s->mpsc = p->producers > 1;
	s->ring_bytes = (256 + (size_t)n * sizeof(struct ck_rec) + 4095u) & ~(size_t)4095u;
	s->map_size = 2 * s->ring_bytes;
	s->map = mmap(NULL, s->map_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (s->map == MAP_FAILED) {
		int e = -errno;
		free(s);
		return e;
	}
	memset(s->map, 0, s->map_size);
	for (int d = 0; d < 2; d++)
		ck_ring_init((struct ck_ring *)((unsigned char *)s->map + d * s->ring_bytes), n);
	*state = s;
	return 0;
}

static void dir_init(struct ck_dir *d, struct ck_state *s, int which)
{
	unsigned char *base = (unsigned char *)s->map + which * s->ring_bytes;
	d->ring = (struct ck_ring *)base;
	d->buf = (struct ck_rec *)(base + 256);
}

static int ck_open(void *state, const struct bench_params *p, enum bench_role role, void **out)
{
	struct ck_state *s = state;
	struct ck_ep *e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->mpsc = s->mpsc;
	e->size = p->size;
	switch (role) {
	case ROLE_PING: dir_init(&e->tx, s, 0); dir_init(&e->rx, s, 1); break;
	case ROLE_PONG: dir_init(&e->tx, s, 1); dir_init(&e->rx, s, 0); break;
	case ROLE_PRODUCER: dir_init(&e->tx, s, 0); break;
	case ROLE_CONSUMER: dir_init(&e->rx, s, 0); break;
	}
	*out = e;
	return 0;
}

static int ck_send(void *ep, const void *buf, size_t len)
{
	struct ck_ep *e = ep;
	struct ck_rec r;
	memcpy(r.b, buf, len);
	bool ok = e->mpsc ? ck_ring_enqueue_mpsc_rec64(e->tx.ring, e->tx.buf, &r)
			  : ck_ring_enqueue_spsc_rec64(e->tx.ring, e->tx.buf, &r);
	return ok ? 0 : -EAGAIN;
}

static int ck_recv(void *ep, void *buf, size_t cap)
{
	struct ck_ep *e = ep;
	struct ck_rec r;
	bool ok = e->mpsc ? ck_ring_dequeue_mpsc_rec64(e->rx.ring, e->rx.buf, &r)
			  : ck_ring_dequeue_spsc_rec64(e->rx.ring, e->rx.buf, &r);
	if (!ok)
		return -EAGAIN;
	size_t n = cap < e->size ? cap : e->size;
	memcpy(buf, r.b, n);
	return (int)n;
}

static void ck_close(void *ep) { free(ep); }

static void ck_teardown(void *state)
{
	struct ck_state *s = state;
	munmap(s->map, s->map_size);
	free(s);
}

const struct bench_mech mech_ck = {
	.name = "ck-ring",
	.title = "Concurrency Kit ck_ring, 64-byte entries (spsc / mpsc)",
	.setup = ck_setup,
	.open = ck_open,
	.try_send = ck_send,
	.try_recv = ck_recv,
	.close = ck_close,
	.teardown = ck_teardown,
	.flags = MECH_BUSY | MECH_MPSC,
	.group = "reference",
	.check = ck_check,
};
#endif
