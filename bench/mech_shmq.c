/* SPDX-License-Identifier: MIT */
/*
 * mech_shmq.c - shared memory for the payload plus a kernel notification
 * per record: eventfd, POSIX named semaphores, futex.
 *
 * One ring per direction in a MAP_SHARED mapping: slots of the record size
 * (plus an 8-byte length) rounded up to 64 bytes, as many as fit in
 * --capacity (at least 2).  Two counting notifiers per ring: "data" (records
 * ready) and "space" (free slots, initially the slot count).
 *   send:  take a space credit (wait), copy into the slot, post data.
 *   recv:  take a data credit (wait), copy out, post space.
 * This is the classic "semaphore per message" design a blocking queue is
 * built from; issue 3 compares takt's blocking mode with it.
 *
 *   eventfd: post = write(1), wait = read() (takes the whole count at once);
 *            busy mode: EFD_NONBLOCK, so every empty poll is a system call.
 *   sem:     sem_post / sem_wait (busy: sem_trywait, no system call);
 *            glibc's sem_post enters the kernel only when a waiter sleeps.
 *   futex:   a 32-bit counter and a waiter count in the shared mapping;
 *            post = atomic add + FUTEX_WAKE only when someone waits;
 *            wait = take the whole count with a CAS, else FUTEX_WAIT
 *            (busy: never sleeps).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <semaphore.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "mech.h"

enum nkind { N_EVENTFD, N_SEM, N_FUTEX };

struct fx {
	alignas(64) _Atomic uint32_t count;
	_Atomic uint32_t waiters;
};

struct ringhdr {
	alignas(128) _Atomic uint64_t head;
	alignas(128) _Atomic uint64_t tail;
	alignas(128) struct fx fx[2]; /* futex: [0] data, [1] space */
};

struct notif {
	enum nkind kind;
	int fd;          /* eventfd */
	sem_t *sem;      /* named semaphore */
	struct fx *fx;   /* futex word */
};

struct shmq_state {
	enum nkind kind;
	void *map;
	size_t map_size, ring_size, slot;
	uint64_t nslots;
	struct notif n[2][2]; /* [direction][0 data, 1 space] */
	char semname[2][2][64];
};

struct end {
	struct ringhdr *h;
	unsigned char *slots;
	size_t slot;
	uint64_t nslots, pos;
	uint32_t credits;
	struct notif *take, *give; /* send: take space, give data; recv: the reverse */
};

struct shmq_ep {
	int blocking;
	struct end tx, rx;
};

static char sem_live[8][64];

static void sem_unlink_all(void)
{
	for (int i = 0; i < 8; i++)
		if (sem_live[i][0]) {
			sem_unlink(sem_live[i]);
			sem_live[i][0] = 0;
		}
}

static long futex(_Atomic uint32_t *w, int op, uint32_t v)
{
	return syscall(SYS_futex, (uint32_t *)w, op, v, NULL, NULL, 0);
}

static int notif_post(struct notif *n)
{
	switch (n->kind) {
	case N_EVENTFD: {
		uint64_t one = 1;
		while (write(n->fd, &one, 8) < 0)
			if (errno != EINTR)
				return -errno;
		return 0;
	}
	case N_SEM:
		return sem_post(n->sem) < 0 ? -errno : 0;
	case N_FUTEX:
		atomic_fetch_add(&n->fx->count, 1); /* seq_cst: against the waiter's */
		if (atomic_load(&n->fx->waiters))
			futex(&n->fx->count, FUTEX_WAKE, 1);
		return 0;
	}
	return -EINVAL;
}

/* Credits taken (>= 1), or -EAGAIN (busy: none now; blocking: interrupted). */
static int notif_wait(struct notif *n, int blocking)
{
	switch (n->kind) {
	case N_EVENTFD: {
		uint64_t v;
		if (read(n->fd, &v, 8) < 0)
			return errno == EAGAIN || errno == EINTR ? -EAGAIN : -errno;
		return (int)v;
	}
	case N_SEM:
		if ((blocking ? sem_wait(n->sem) : sem_trywait(n->sem)) < 0)
			return errno == EAGAIN || errno == EINTR ? -EAGAIN : -errno;
		return 1;
	case N_FUTEX:
		for (;;) {
			uint32_t v = atomic_load(&n->fx->count);
			if (v > 0) {
				if (atomic_compare_exchange_weak(&n->fx->count, &v, 0))
					return (int)v;
				continue;
			}
			if (!blocking)
				return -EAGAIN;
			atomic_fetch_add(&n->fx->waiters, 1);
			long r = futex(&n->fx->count, FUTEX_WAIT, 0);
			int err = r < 0 ? errno : 0;
			atomic_fetch_sub(&n->fx->waiters, 1);
			if (r < 0 && err == EINTR)
				return -EAGAIN;
		}
	}
	return -EINVAL;
}

static void shmq_teardown(void *state)
{
	struct shmq_state *s = state;
	for (int d = 0; d < 2; d++)
		for (int k = 0; k < 2; k++) {
			struct notif *n = &s->n[d][k];
			if (n->kind == N_EVENTFD && n->fd >= 0)
				close(n->fd);
			if (n->kind == N_SEM && n->sem)
				sem_close(n->sem);
		}
	if (s->map)
		munmap(s->map, s->map_size);
	free(s);
}

static int shmq_setup_kind(const struct bench_params *p, void **state, enum nkind kind)
{
	struct shmq_state *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->kind = kind;
	s->slot = (p->size + 8u + 63u) & ~(size_t)63u;
	uint64_t n = p->capacity / s->slot;
	s->nslots = n < 2 ? 2 : n;
	if (s->nslots > 1u << 20)
		s->nslots = 1u << 20;
	s->ring_size = (sizeof(struct ringhdr) + s->nslots * s->slot + 4095u) & ~(size_t)4095u;
	s->map_size = 2 * s->ring_size;
	for (int d = 0; d < 2; d++)
		for (int k = 0; k < 2; k++) {
			s->n[d][k].kind = kind;
			s->n[d][k].fd = -1;
		}
	s->map = mmap(NULL, s->map_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (s->map == MAP_FAILED) {
		int e = -errno;
		s->map = NULL;
		shmq_teardown(s);
		return e;
	}
	memset(s->map, 0, s->map_size);
	for (int d = 0; d < 2; d++) {
		struct ringhdr *h = (struct ringhdr *)((unsigned char *)s->map + d * s->ring_size);
		for (int k = 0; k < 2; k++) {
			struct notif *nt = &s->n[d][k];
			uint32_t init = k == 1 ? (uint32_t)s->nslots : 0;
			int e = 0;
			if (kind == N_EVENTFD) {
				nt->fd = eventfd(init, EFD_CLOEXEC | (p->blocking ? 0 : EFD_NONBLOCK));
				if (nt->fd < 0)
					e = -errno;
			} else if (kind == N_SEM) {
				char *nm = s->semname[d][k];
				snprintf(nm, 64, "/takt-bench.%ld.%u.%d%d", (long)getpid(), p->id, d, k);
				sem_unlink(nm);
				nt->sem = sem_open(nm, O_CREAT | O_EXCL, 0600, init);
				if (nt->sem == SEM_FAILED) {
					nt->sem = NULL;
					e = -errno;
				} else {
					/* the mapping is inherited over fork: drop the name now */
					sem_unlink(nm);
				}
			} else {
				nt->fx = &h->fx[k];
				atomic_store(&nt->fx->count, init);
			}
			if (e < 0) {
				shmq_teardown(s);
				return e;
			}
		}
	}
	*state = s;
	return 0;
}

static void end_init(struct end *e, struct shmq_state *s, int d, int sender)
{
	e->h = (struct ringhdr *)((unsigned char *)s->map + d * s->ring_size);
	e->slots = (unsigned char *)e->h + sizeof(struct ringhdr);
	e->slot = s->slot;
	e->nslots = s->nslots;
	e->pos = 0;
	e->credits = 0;
	e->take = &s->n[d][sender ? 1 : 0];
	e->give = &s->n[d][sender ? 0 : 1];
}

static int shmq_open(void *state, const struct bench_params *p, enum bench_role role, void **out)
{
	struct shmq_state *s = state;
	struct shmq_ep *e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->blocking = p->blocking;
	switch (role) {
	case ROLE_PING: end_init(&e->tx, s, 0, 1); end_init(&e->rx, s, 1, 0); break;
	case ROLE_PONG: end_init(&e->tx, s, 1, 1); end_init(&e->rx, s, 0, 0); break;
	case ROLE_PRODUCER: end_init(&e->tx, s, 0, 1); break;
	case ROLE_CONSUMER: end_init(&e->rx, s, 0, 0); break;
	}
	*out = e;
	return 0;
}

static int shmq_send(void *ep, const void *buf, size_t len)
{
	struct shmq_ep *e = ep;
	struct end *t = &e->tx;
	if (len + 8 > t->slot)
		return -EMSGSIZE;
	if (t->credits == 0) {
		int n = notif_wait(t->take, e->blocking);
		if (n < 0)
			return n;
		t->credits += (uint32_t)n;
	}
	unsigned char *slot = t->slots + (t->pos % t->nslots) * t->slot;
	uint64_t l = len;
	memcpy(slot, &l, 8);
	memcpy(slot + 8, buf, len);
	t->pos++;
	t->credits--;
	/* the notifier's system call or atomic orders the payload before it */
	atomic_store_explicit(&t->h->tail, t->pos, memory_order_release);
	return notif_post(t->give);
}

static int shmq_recv(void *ep, void *buf, size_t cap)
{
	struct shmq_ep *e = ep;
	struct end *r = &e->rx;
	if (r->credits == 0) {
		int n = notif_wait(r->take, e->blocking);
		if (n < 0)
			return n;
		r->credits += (uint32_t)n;
	}
	/* pairs with the sender's release (the notifier synchronises too) */
	(void)atomic_load_explicit(&r->h->tail, memory_order_acquire);
	const unsigned char *slot = r->slots + (r->pos % r->nslots) * r->slot;
	uint64_t l;
	memcpy(&l, slot, 8);
	if (l > cap)
		return -EMSGSIZE;
	memcpy(buf, slot + 8, (size_t)l);
	r->pos++;
	r->credits--;
	int pe = notif_post(r->give);
	return pe < 0 ? pe : (int)l;
}

static void shmq_close(void *ep) { free(ep); }

#define SHMQ_MECH(var, id, kind, ttl, cleanup)                                            \
	static int var##_setup(const struct bench_params *p, void **st)                    \
	{                                                                                  \
		return shmq_setup_kind(p, st, kind);                                       \
	}                                                                                  \
	const struct bench_mech var = {                                                    \
		.name = id,                                                                \
		.title = ttl,                                                              \
		.setup = var##_setup,                                                      \
		.open = shmq_open,                                                         \
		.try_send = shmq_send,                                                     \
		.try_recv = shmq_recv,                                                     \
		.close = shmq_close,                                                       \
		.teardown = shmq_teardown,                                                 \
		.cleanup_all = cleanup,                                                    \
		.flags = MECH_BUSY | MECH_BLOCK,                                           \
		.group = "kernel",                                                         \
	};

SHMQ_MECH(mech_eventfd, "eventfd", N_EVENTFD, "shared-memory ring + eventfd per record", NULL)
SHMQ_MECH(mech_sem, "sem", N_SEM, "shared-memory ring + named semaphore post per record",
	  sem_unlink_all)
SHMQ_MECH(mech_futex, "futex", N_FUTEX, "shared-memory ring + futex counter per record", NULL)
