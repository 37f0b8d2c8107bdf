/* SPDX-License-Identifier: MIT */
/*
 * mech_takt.c - takt SPSC queue channels through the public API only.
 * Latency: two channels, <base>.a (ping -> pong) and <base>.b (pong -> ping),
 * busy-polling takt_try_send / takt_try_recv, or (blocking mode) takt_send /
 * takt_recv with the spin budget of --spin-ns (0: park at once).  MPSC: one
 * lane per producer process.  Streaming: <base>.a alone,
 * per record or with takt_try_send_batch / takt_try_recv_batch.
 * Channels are created in the parent before the fork; each process opens
 * its own endpoints after it (takt handles are not inherited).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <takt.h>

#include "mech.h"

struct takt_state {
	char name[2][TAKT_NAME_MAX + 1];
	int created[2];
};

struct takt_ep {
	int blocking;
	takt_producer *tx;
	takt_consumer *rx;
	unsigned nmsgs;
	struct takt_msg *msgs; /* batch scratch */
};

/* Channels alive in this process, for tk_unlink_all() on a signal. */
#define MAX_LIVE 8
static char live[MAX_LIVE][TAKT_NAME_MAX + 1];

static void live_add(const char *n)
{
	for (int i = 0; i < MAX_LIVE; i++)
		if (!live[i][0]) {
			snprintf(live[i], sizeof(live[i]), "%s", n);
			return;
		}
}

static void live_del(const char *n)
{
	for (int i = 0; i < MAX_LIVE; i++)
		if (strcmp(live[i], n) == 0)
			live[i][0] = 0;
}

static void tk_unlink_all(void)
{
	for (int i = 0; i < MAX_LIVE; i++)
		if (live[i][0]) {
			takt_unlink(live[i]);
			live[i][0] = 0;
		}
}

static void tk_teardown(void *state)
{
	struct takt_state *s = state;
	for (int i = 0; i < 2; i++)
		if (s->created[i]) {
			takt_unlink(s->name[i]);
			live_del(s->name[i]);
		}
	free(s);
}

static int tk_setup(const struct bench_params *p, void **state)
{
	struct takt_state *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	struct takt_queue_config cfg = {
		.capacity = p->capacity,
		.lanes = p->producers > 1 ? p->producers : 1,
		.max_record = (uint32_t)p->size,
		.mode = 0600,
	};
	for (int i = 0; i < 2; i++) {
		snprintf(s->name[i], sizeof(s->name[i]), "takt-bench.%ld.%u.%c", (long)getpid(),
			 p->id, i ? 'b' : 'a');
		int e = takt_queue_create(s->name[i], &cfg);
		if (e == -EEXIST) { /* left over from a killed run with a recycled pid */
			takt_unlink(s->name[i]);
			e = takt_queue_create(s->name[i], &cfg);
		}
		if (e < 0) {
			tk_teardown(s);
			return e;
		}
		s->created[i] = 1;
		live_add(s->name[i]);
	}
	*state = s;
	return 0;
}

static void tk_close(void *ep)
{
	struct takt_ep *e = ep;
	if (!e)
		return;
	if (e->tx)
		takt_producer_close(e->tx);
	if (e->rx)
		takt_consumer_close(e->rx);
	free(e->msgs);
	free(e);
}

static int tk_open(void *state, const struct bench_params *p, enum bench_role role, void **out)
{
	struct takt_state *s = state;
	struct takt_ep *e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->nmsgs = p->batch ? p->batch : 1;
	e->msgs = calloc(e->nmsgs, sizeof(*e->msgs));
	if (!e->msgs) {
		free(e);
		return -ENOMEM;
	}
	int err = 0;
	switch (role) {
	case ROLE_PING:
		err = takt_producer_open(s->name[0], &e->tx);
		if (!err)
			err = takt_consumer_open(s->name[1], &e->rx);
		break;
	case ROLE_PONG:
		err = takt_consumer_open(s->name[0], &e->rx);
		if (!err)
			err = takt_producer_open(s->name[1], &e->tx);
		break;
	case ROLE_PRODUCER:
		err = takt_producer_open(s->name[0], &e->tx);
		break;
	case ROLE_CONSUMER:
		err = takt_consumer_open(s->name[0], &e->rx);
		break;
	}
	if (err < 0) {
		tk_close(e);
		return err;
	}
	e->blocking = p->blocking;
	if (p->blocking) {
		if (e->tx)
			takt_producer_set_spin_ns(e->tx, p->spin_ns);
		if (e->rx)
			takt_consumer_set_spin_ns(e->rx, p->spin_ns);
	}
	*out = e;
	return 0;
}

/* Blocking mode: wait at most 200 ms, so the harness's watchdog runs. */
#define TK_WAIT_NS 200000000ull

static int tk_try_send(void *ep, const void *buf, size_t len)
{
	struct takt_ep *e = ep;
	if (!e->blocking)
		return takt_try_send(e->tx, 1, buf, len);
	int rc = takt_send(e->tx, 1, buf, len, takt_deadline_in(TK_WAIT_NS));
	return rc == -ETIMEDOUT ? -EAGAIN : rc;
}

static int tk_try_recv(void *ep, void *buf, size_t cap)
{
	struct takt_ep *e = ep;
	if (!e->blocking)
		return takt_try_recv(e->rx, buf, cap, NULL);
	int rc = takt_recv(e->rx, buf, cap, NULL, takt_deadline_in(TK_WAIT_NS));
	return rc == -ETIMEDOUT ? -EAGAIN : rc;
}

static int tk_try_send_batch(void *ep, const struct bench_rec *recs, unsigned n)
{
	struct takt_ep *e = ep;
	if (n > e->nmsgs)
		n = e->nmsgs;
	for (unsigned i = 0; i < n; i++) {
		e->msgs[i].data = recs[i].data;
		e->msgs[i].len = recs[i].len;
		e->msgs[i].type = 1;
	}
	return takt_try_send_batch(e->tx, e->msgs, n);
}

static int tk_try_recv_batch(void *ep, struct bench_rec *recs, unsigned n, void *buf, size_t cap)
{
	struct takt_ep *e = ep;
	if (n > e->nmsgs)
		n = e->nmsgs;
	int got = takt_try_recv_batch(e->rx, e->msgs, n, buf, cap);
	for (int i = 0; i < got; i++) {
		recs[i].data = e->msgs[i].data;
		recs[i].len = e->msgs[i].len;
	}
	return got;
}

const struct bench_mech mech_takt = {
	.name = "takt",
	.title = "takt SPSC queue channel, busy-polling try_send/try_recv",
	.setup = tk_setup,
	.open = tk_open,
	.try_send = tk_try_send,
	.try_recv = tk_try_recv,
	.try_send_batch = tk_try_send_batch,
	.try_recv_batch = tk_try_recv_batch,
	.close = tk_close,
	.teardown = tk_teardown,
	.cleanup_all = tk_unlink_all,
	.flags = MECH_BUSY | MECH_BLOCK | MECH_MPSC,
	.group = "takt",
};
