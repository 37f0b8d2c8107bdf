/* SPDX-License-Identifier: MIT */
/*
 * mech_ring.c - the simplest correct SPSC ring in shared memory, as the
 * reference a general-purpose channel is measured against: fixed 64-byte
 * slots (the record size rounded up to 64), free-running head and tail
 * counters on 128-byte blocks of their own, each side caching the other's
 * index and re-reading it (acquire) only when its cached copy says empty /
 * full, one release store per record.  No record header, no validation, no
 * statistics, no liveness: what takt adds on top is what the comparison
 * shows.
 *
 * Latency uses two rings (one per direction); streaming uses one.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "mech.h"

struct ring_ctl {
	alignas(128) _Atomic uint64_t head; /* consumer: next slot to read */
	uint8_t pad0[128 - 8];
	alignas(128) _Atomic uint64_t tail; /* producer: next slot to write */
	uint8_t pad1[128 - 8];
	/* slots follow, 128-byte aligned */
};

struct ring_state {
	void *map;
	size_t map_size;
	size_t ring_size;   /* bytes of one ring (control + slots) */
	uint64_t nslots;    /* power of two */
	size_t slot;        /* bytes per slot, multiple of 64 */
};

struct ring_end {
	struct ring_ctl *c;
	unsigned char *slots;
	uint64_t mask, nslots;
	size_t slot;
	size_t len;         /* record size (fixed) */
	uint64_t pos;       /* own index (private copy) */
	uint64_t other;     /* cached index of the other side */
};

struct ring_ep {
	struct ring_end tx, rx;
};

static uint64_t pow2_floor(uint64_t v)
{
	uint64_t p = 1;
	while (p * 2 <= v)
		p *= 2;
	return p;
}

static int ring_setup(const struct bench_params *p, void **state)
{
	struct ring_state *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->slot = (p->size + 63u) & ~(size_t)63u;
	uint64_t n = p->capacity / s->slot;
	s->nslots = pow2_floor(n < 2 ? 2 : n);
	s->ring_size = sizeof(struct ring_ctl) + s->nslots * s->slot;
	s->ring_size = (s->ring_size + 4095u) & ~(size_t)4095u;
	s->map_size = 2 * s->ring_size;
	s->map = mmap(NULL, s->map_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (s->map == MAP_FAILED) {
		int e = -errno;
		free(s);
		return e;
	}
	memset(s->map, 0, s->map_size); /* fault every page in before forking */
	*state = s;
	return 0;
}

static void end_init(struct ring_end *e, const struct ring_state *s, unsigned which, size_t len)
{
	e->len = len;
	unsigned char *base = (unsigned char *)s->map + which * s->ring_size;
	e->c = (struct ring_ctl *)base;
	e->slots = base + sizeof(struct ring_ctl);
	e->nslots = s->nslots;
	e->mask = s->nslots - 1;
	e->slot = s->slot;
	e->pos = 0;
	e->other = 0;
}

static int ring_open(void *state, const struct bench_params *p, enum bench_role role, void **out)
{
	struct ring_state *s = state;
	size_t n = p->size;
	struct ring_ep *e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	/* ring 0 carries ping->pong and producer->consumer; ring 1 pong->ping */
	switch (role) {
	case ROLE_PING: end_init(&e->tx, s, 0, n); end_init(&e->rx, s, 1, n); break;
	case ROLE_PONG: end_init(&e->tx, s, 1, n); end_init(&e->rx, s, 0, n); break;
	case ROLE_PRODUCER: end_init(&e->tx, s, 0, n); break;
	case ROLE_CONSUMER: end_init(&e->rx, s, 0, n); break;
	}
	*out = e;
	return 0;
}

static int ring_try_send(void *ep, const void *buf, size_t len)
{
	struct ring_end *t = &((struct ring_ep *)ep)->tx;
	if (len > t->slot)
		return -EMSGSIZE;
	if (t->pos - t->other == t->nslots) {
		t->other = atomic_load_explicit(&t->c->head, memory_order_acquire);
		if (t->pos - t->other == t->nslots)
			return -EAGAIN;
	}
	memcpy(t->slots + (t->pos & t->mask) * t->slot, buf, len);
	t->pos++;
	atomic_store_explicit(&t->c->tail, t->pos, memory_order_release);
	return 0;
}

static int ring_try_recv(void *ep, void *buf, size_t cap)
{
	struct ring_end *r = &((struct ring_ep *)ep)->rx;
	if (r->pos == r->other) {
		r->other = atomic_load_explicit(&r->c->tail, memory_order_acquire);
		if (r->pos == r->other)
			return -EAGAIN;
	}
	size_t n = cap < r->len ? cap : r->len;
	memcpy(buf, r->slots + (r->pos & r->mask) * r->slot, n);
	r->pos++;
	atomic_store_explicit(&r->c->head, r->pos, memory_order_release);
	return (int)n;
}

static void ring_close(void *ep) { free(ep); }

static void ring_teardown(void *state)
{
	struct ring_state *s = state;
	munmap(s->map, s->map_size);
	free(s);
}

const struct bench_mech mech_ring = {
	.name = "ring",
	.title = "minimal fixed-slot SPSC ring, cached indices (reference)",
	.setup = ring_setup,
	.open = ring_open,
	.try_send = ring_try_send,
	.try_recv = ring_try_recv,
	.close = ring_close,
	.teardown = ring_teardown,
	.flags = MECH_BUSY,
	.group = "reference",
};
