/* SPDX-License-Identifier: MIT */
/*
 * blocking.c - the blocking send and receive: try, spin for the handle's
 * budget, then park on the doorbell until the deadline.  Every wait has a
 * deadline unless the caller asked for TAKT_FOREVER, so a peer that dies
 * between publishing and posting costs at most that deadline.
 */
#include <errno.h>

#include "consumer.h"
#include "producer.h"

struct room_query {
	takt_producer *p;
	size_t len;
};

static bool room_ready(void *arg)
{
	struct room_query *q = arg;
	return takt_producer_has_room(q->p, q->len);
}

static bool record_ready(void *arg)
{
	return takt_consumer_has_record(arg);
}

/* One wait round: spin, then park.  0 when worth retrying, -ETIMEDOUT, or
 * another negative errno from the semaphore. */
static int wait_round(struct takt_doorbell *db, bool (*ready)(void *), void *arg, uint32_t spin_ns,
		      uint64_t deadline_ns, takt_a64 *last_ns)
{
	if (takt_spin_until(ready, arg, spin_ns, deadline_ns))
		return 0;
	if (takt_now_ns() >= deadline_ns)
		return -ETIMEDOUT;
	atomic_store_explicit(last_ns, takt_coarse_ns(), memory_order_relaxed);
	int rc = takt_doorbell_wait(db, ready, arg, deadline_ns);
	atomic_store_explicit(last_ns, takt_coarse_ns(), memory_order_relaxed);
	return rc;
}

int takt_send(takt_producer *p, uint32_t type, const void *data, size_t len, uint64_t deadline_ns)
{
	int rc = takt_try_send(p, type, data, len);
	if (rc != -EAGAIN || deadline_ns == TAKT_NO_WAIT)
		return rc;
	struct room_query q = {p, len};
	for (;;) {
		int w = wait_round(&p->space, room_ready, &q, p->spin_ns, deadline_ns,
				   &p->tx.ctrl->last_ns);
		rc = takt_try_send(p, type, data, len);
		if (rc != -EAGAIN)
			return rc;
		if (w < 0)
			return w;
	}
}

int takt_recv(takt_consumer *c, void *buf, size_t cap, struct takt_msg *msg, uint64_t deadline_ns)
{
	int rc = takt_try_recv(c, buf, cap, msg);
	if (rc != -EAGAIN || deadline_ns == TAKT_NO_WAIT)
		return rc;
	for (;;) {
		int w = wait_round(&c->rx_bell, record_ready, c, c->spin_ns, deadline_ns,
				   &c->seg->last_ns);
		rc = takt_try_recv(c, buf, cap, msg);
		if (rc != -EAGAIN)
			return rc;
		if (w < 0)
			return w;
	}
}

int takt_recv_batch(takt_consumer *c, struct takt_msg *msgs, unsigned n, void *buf, size_t cap,
		    uint64_t deadline_ns)
{
	int rc = takt_try_recv_batch(c, msgs, n, buf, cap);
	if (rc != -EAGAIN || deadline_ns == TAKT_NO_WAIT)
		return rc;
	for (;;) {
		int w = wait_round(&c->rx_bell, record_ready, c, c->spin_ns, deadline_ns,
				   &c->seg->last_ns);
		rc = takt_try_recv_batch(c, msgs, n, buf, cap);
		if (rc != -EAGAIN)
			return rc;
		if (w < 0)
			return w;
	}
}
