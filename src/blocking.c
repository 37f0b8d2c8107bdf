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

/* has_room while spinning; has_room_parking in the re-checks around a
 * park (after arming, at each backstop), where a producer may also take
 * space the consumer has read but not released (lane.c,
 * takt_lane_tx_claim_consumed): never while spinning, where it would pull
 * the consumer's position line on every iteration. */
struct room_query {
	takt_producer *p;
	size_t len;
	bool (*has_room)(takt_producer *p, size_t len);
	bool (*has_room_parking)(takt_producer *p, size_t len);
};

static bool room_ready(void *arg)
{
	struct room_query *q = arg;
	return atomic_load_explicit(&q->p->interrupt, memory_order_seq_cst) ||
	       q->has_room(q->p, q->len);
}

static bool room_ready_parking(void *arg)
{
	struct room_query *q = arg;
	return atomic_load_explicit(&q->p->interrupt, memory_order_seq_cst) ||
	       q->has_room_parking(q->p, q->len);
}

struct record_query {
	takt_consumer *c;
	bool (*has_record)(takt_consumer *c);
};

static bool record_ready(void *arg)
{
	struct record_query *q = arg;
	return atomic_load_explicit(&q->c->interrupt, memory_order_seq_cst) || q->has_record(q->c);
}

/* A pending interrupt ends the call with -EINTR (and is consumed by it). */
static bool take_interrupt(_Atomic uint32_t *flag)
{
	return atomic_exchange_explicit(flag, 0, memory_order_seq_cst) != 0;
}

/* One wait round: spin until ready(), then park until park_ready().  0
 * when worth retrying, -ETIMEDOUT, or another negative errno from the
 * semaphore. */
static int wait_round(struct takt_doorbell *db, bool (*ready)(void *), bool (*park_ready)(void *),
		      void *arg, uint32_t spin_ns, uint64_t deadline_ns, takt_a64 *last_ns)
{
	if (takt_spin_until(ready, arg, spin_ns, deadline_ns))
		return 0;
	if (takt_now_ns() >= deadline_ns) /* no park: its re-check once */
		return park_ready(arg) ? 0 : -ETIMEDOUT;
	atomic_store_explicit(last_ns, takt_coarse_ns(), memory_order_relaxed);
	int rc = takt_doorbell_wait(db, park_ready, arg, deadline_ns);
	atomic_store_explicit(last_ns, takt_coarse_ns(), memory_order_relaxed);
	return rc;
}

/* Wait for room for len bytes, then call try(); the blocking skeleton of
 * every producer call. */
#define PRODUCER_BLOCKING(p, len, deadline_ns, try_expr)                                  \
	do {                                                                               \
		int rc_ = (try_expr);                                                      \
		if (rc_ != -EAGAIN || (deadline_ns) == TAKT_NO_WAIT)                       \
			return rc_;                                                        \
		struct room_query q_ = {(p), (len), takt_producer_has_room,                \
					takt_producer_has_room_parking};                   \
		for (;;) {                                                                 \
			if (take_interrupt(&(p)->interrupt))                               \
				return -EINTR;                                             \
			int w_ = wait_round(&(p)->space, room_ready, room_ready_parking,   \
					    &q_, (p)->spin_ns, (deadline_ns),              \
					    &(p)->tx.ctrl->last_ns);                       \
			rc_ = (try_expr);                                                  \
			if (rc_ != -EAGAIN)                                                \
				return rc_;                                                \
			if (w_ < 0)                                                        \
				return w_;                                                 \
		}                                                                          \
	} while (0)

#define CONSUMER_BLOCKING(c, deadline_ns, try_expr)                                        \
	do {                                                                               \
		int rc_ = (try_expr);                                                      \
		if (rc_ != -EAGAIN || (deadline_ns) == TAKT_NO_WAIT)                       \
			return rc_;                                                        \
		struct record_query q_ = {(c), takt_consumer_has_record};                  \
		for (;;) {                                                                 \
			if (take_interrupt(&(c)->interrupt))                               \
				return -EINTR;                                             \
			int w_ = wait_round(&(c)->rx_bell, record_ready, record_ready, &q_, \
					    (c)->spin_ns, (deadline_ns), &(c)->seg->last_ns); \
			rc_ = (try_expr);                                                  \
			if (rc_ != -EAGAIN)                                                \
				return rc_;                                                \
			if (w_ < 0)                                                        \
				return w_;                                                 \
		}                                                                          \
	} while (0)

int takt_send(takt_producer *p, uint32_t type, const void *data, size_t len, uint64_t deadline_ns)
{
	PRODUCER_BLOCKING(p, len, deadline_ns, takt_try_send(p, type, data, len));
}

int takt_send_batch(takt_producer *p, const struct takt_msg *msgs, unsigned n, uint64_t deadline_ns)
{
	if (n == 0)
		return -EINVAL;
	/* waits for room for the first record; publishes as many as then fit */
	PRODUCER_BLOCKING(p, msgs[0].len, deadline_ns, takt_try_send_batch(p, msgs, n));
}

int takt_recv(takt_consumer *c, void *buf, size_t cap, struct takt_msg *msg, uint64_t deadline_ns)
{
	CONSUMER_BLOCKING(c, deadline_ns, takt_try_recv(c, buf, cap, msg));
}

int takt_recv_batch(takt_consumer *c, struct takt_msg *msgs, unsigned n, void *buf, size_t cap,
		    uint64_t deadline_ns)
{
	CONSUMER_BLOCKING(c, deadline_ns, takt_try_recv_batch(c, msgs, n, buf, cap));
}

/*
 * Waiting without receiving, from any one thread (the owner may meanwhile
 * call the try_* functions): for event loops that hand the waiting to a
 * thread of their own.  Only shared state is read.
 */
int takt_wait_readable(takt_consumer *c, uint64_t deadline_ns)
{
	struct record_query q = {c, takt_consumer_has_record_shared};
	for (;;) {
		if (take_interrupt(&c->interrupt))
			return -EINTR;
		if (q.has_record(c))
			return 0;
		if (deadline_ns == TAKT_NO_WAIT)
			return -ETIMEDOUT;
		int w = wait_round(&c->rx_bell, record_ready, record_ready, &q, c->spin_ns,
				   deadline_ns, &c->seg->last_ns);
		if (w < 0)
			return q.has_record(c) ? 0 : w;
	}
}

int takt_wait_writable(takt_producer *p, size_t len, uint64_t deadline_ns)
{
	/* Around the park, space the consumer has read but not released
	 * counts too: the check asks the owner's next send to take it. */
	struct room_query q = {p, len, takt_producer_has_room_shared,
			       takt_producer_has_room_shared_parking};
	for (;;) {
		if (take_interrupt(&p->interrupt))
			return -EINTR;
		if (q.has_room_parking(p, len)) /* what the park's re-check saw */
			return 0;
		if (deadline_ns == TAKT_NO_WAIT)
			return -ETIMEDOUT;
		int w = wait_round(&p->space, room_ready, room_ready_parking, &q, p->spin_ns,
				   deadline_ns, &p->tx.ctrl->last_ns);
		if (w < 0)
			return q.has_room_parking(p, len) ? 0 : w;
	}
}

/*
 * Interrupts: set the flag, then ring the handle's own doorbell.  The
 * flag is stored (seq_cst) before the doorbell's check of the armed bit,
 * and a waiter re-checks the flag after arming, so by the doorbell's own
 * argument either the waiter sees the flag or we see it armed and post.
 */
void takt_consumer_interrupt(takt_consumer *c)
{
	atomic_store_explicit(&c->interrupt, 1, memory_order_seq_cst);
	takt_doorbell_post(&c->rx_bell);
}

void takt_producer_interrupt(takt_producer *p)
{
	atomic_store_explicit(&p->interrupt, 1, memory_order_seq_cst);
	takt_doorbell_post(&p->space);
}
