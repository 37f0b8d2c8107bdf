/* SPDX-License-Identifier: MIT */
/*
 * test_handoff.c - waiting from a thread that does not own the handle
 * (takt_wait_readable, takt_wait_writable), interrupting a blocked call
 * (takt_*_interrupt), and the blocking batch send.  These are what an event
 * loop such as taktd needs to hand waiting to a thread of its own.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "tb_common.h"

TB_SUITE(handoff);

struct waiter {
	takt_consumer *c;
	takt_producer *p;
	size_t len;
	uint64_t deadline;
	int rc;
	uint64_t returned_ns;
};

static void *wait_readable_thread(void *arg)
{
	struct waiter *w = arg;
	w->rc = takt_wait_readable(w->c, w->deadline);
	w->returned_ns = takt_now_ns();
	return NULL;
}

static void *wait_writable_thread(void *arg)
{
	struct waiter *w = arg;
	w->rc = takt_wait_writable(w->p, w->len, w->deadline);
	return NULL;
}

static void *recv_forever_thread(void *arg)
{
	struct waiter *w = arg;
	char buf[64];
	w->rc = takt_recv(w->c, buf, sizeof buf, NULL, TAKT_FOREVER);
	return NULL;
}

static void *send_forever_thread(void *arg)
{
	struct waiter *w = arg;
	char buf[64] = {0};
	w->rc = takt_send(w->p, 0, buf, sizeof buf, TAKT_FOREVER);
	return NULL;
}

static void open_pair(const char *name, uint64_t capacity, takt_producer **p, takt_consumer **c)
{
	tb_create(name, capacity, 1, 256);
	cr_assert_eq(takt_producer_open(name, p), 0);
	cr_assert_eq(takt_consumer_open(name, c), 0);
	takt_producer_set_spin_ns(*p, 0);
	takt_consumer_set_spin_ns(*c, 0);
}

Test(handoff, wait_readable_from_another_thread)
{
	const char *name = tb_name("readable");
	takt_producer *p;
	takt_consumer *c;
	open_pair(name, 4096, &p, &c);
	takt_channel *view;
	cr_assert_eq(takt_channel_open(name, TAKT_OPEN_RDONLY, &view), 0);

	struct waiter w = {.c = c, .deadline = takt_deadline_in(10ull * 1000000000u), .rc = 1};
	pthread_t t;
	cr_assert_eq(pthread_create(&t, NULL, wait_readable_thread, &w), 0);
	/* the waiter arms the receive doorbell before it parks */
	cr_assert(tb_wait_parked(tb_rx_bell(view), 0));
	cr_assert_eq(takt_try_send(p, 3, "abc", 3), 0);
	pthread_join(t, NULL);
	cr_assert_eq(w.rc, 0, "wait_readable returned %d", w.rc);
	cr_assert(w.returned_ns < w.deadline, "woken by the send, not by its deadline");
	/* it only waited: the record is still there for the owner */
	char buf[16];
	struct takt_msg m;
	cr_assert_eq(takt_try_recv(c, buf, sizeof buf, &m), 3);
	cr_assert_eq(m.type, 3u);
	cr_assert_eq(takt_try_recv(c, buf, sizeof buf, &m), -EAGAIN);

	takt_channel_close(view);
	takt_producer_close(p);
	takt_consumer_close(c);
}

Test(handoff, wait_readable_times_out_not_before_deadline)
{
	const char *name = tb_name("rtimeout");
	takt_producer *p;
	takt_consumer *c;
	open_pair(name, 4096, &p, &c);
	uint64_t deadline = takt_deadline_in(30 * 1000000u);
	cr_assert_eq(takt_wait_readable(c, deadline), -ETIMEDOUT);
	cr_assert_geq(takt_now_ns(), deadline);
	cr_assert_eq(takt_wait_readable(c, TAKT_NO_WAIT), -ETIMEDOUT);
	cr_assert_eq(takt_try_send(p, 0, "x", 1), 0);
	cr_assert_eq(takt_wait_readable(c, TAKT_NO_WAIT), 0);
	takt_producer_close(p);
	takt_consumer_close(c);
}

Test(handoff, interrupt_ends_a_forever_receive)
{
	const char *name = tb_name("intr");
	takt_producer *p;
	takt_consumer *c;
	open_pair(name, 4096, &p, &c);
	takt_channel *view;
	cr_assert_eq(takt_channel_open(name, TAKT_OPEN_RDONLY, &view), 0);

	struct waiter w = {.c = c, .rc = 1};
	pthread_t t;
	cr_assert_eq(pthread_create(&t, NULL, recv_forever_thread, &w), 0);
	cr_assert(tb_wait_parked(tb_rx_bell(view), 0));
	takt_consumer_interrupt(c);
	pthread_join(t, NULL);
	cr_assert_eq(w.rc, -EINTR, "interrupted receive returned %d", w.rc);
	/* consumed by that call: the next one behaves normally */
	char buf[8];
	cr_assert_eq(takt_recv(c, buf, sizeof buf, NULL, takt_deadline_in(1000000)), -ETIMEDOUT);
	takt_channel_close(view);
	takt_producer_close(p);
	takt_consumer_close(c);
}

Test(handoff, interrupt_before_the_call_is_kept_for_it)
{
	const char *name = tb_name("sticky");
	takt_producer *p;
	takt_consumer *c;
	open_pair(name, 4096, &p, &c);
	takt_consumer_interrupt(c);
	char buf[8];
	cr_assert_eq(takt_recv(c, buf, sizeof buf, NULL, takt_deadline_in(5ull * 1000000000u)), -EINTR);
	/* a record that is there is received without consulting the interrupt */
	takt_consumer_interrupt(c);
	cr_assert_eq(takt_try_send(p, 0, "y", 1), 0);
	cr_assert_eq(takt_recv(c, buf, sizeof buf, NULL, TAKT_FOREVER), 1);
	cr_assert_eq(takt_wait_readable(c, TAKT_FOREVER), -EINTR);
	takt_producer_close(p);
	takt_consumer_close(c);
}

/* Fill the ring; return how many 64-byte records it took. */
static int fill(takt_producer *p)
{
	char rec[64] = {0};
	int n = 0;
	while (takt_try_send(p, 0, rec, sizeof rec) == 0)
		n++;
	return n;
}

Test(handoff, interrupt_ends_a_blocked_send)
{
	const char *name = tb_name("pintr");
	takt_producer *p;
	takt_consumer *c;
	open_pair(name, 1024, &p, &c);
	takt_channel *view;
	cr_assert_eq(takt_channel_open(name, TAKT_OPEN_RDONLY, &view), 0);
	cr_assert_gt(fill(p), 0);
	struct waiter w = {.p = p, .rc = 1};
	pthread_t t;
	cr_assert_eq(pthread_create(&t, NULL, send_forever_thread, &w), 0);
	cr_assert(tb_wait_parked(tb_tx_bell(view, 0), 0));
	takt_producer_interrupt(p);
	pthread_join(t, NULL);
	cr_assert_eq(w.rc, -EINTR, "interrupted send returned %d", w.rc);
	takt_channel_close(view);
	takt_producer_close(p);
	takt_consumer_close(c);
}

Test(handoff, wait_writable_from_another_thread)
{
	const char *name = tb_name("writable");
	takt_producer *p;
	takt_consumer *c;
	open_pair(name, 1024, &p, &c);
	takt_channel *view;
	cr_assert_eq(takt_channel_open(name, TAKT_OPEN_RDONLY, &view), 0);
	int n = fill(p);
	cr_assert_gt(n, 0);
	cr_assert_eq(takt_wait_writable(p, 64, TAKT_NO_WAIT), -ETIMEDOUT);
	struct waiter w = {.p = p, .len = 64, .deadline = takt_deadline_in(10ull * 1000000000u),
			   .rc = 1};
	pthread_t t;
	cr_assert_eq(pthread_create(&t, NULL, wait_writable_thread, &w), 0);
	cr_assert(tb_wait_parked(tb_tx_bell(view, 0), 0));
	/* free the whole ring: one record's space may not be enough, as the
	 * next record may need padding up to the end of the data area */
	char buf[64];
	for (int i = 0; i < n; i++)
		cr_assert_eq(takt_try_recv(c, buf, sizeof buf, NULL), 64);
	pthread_join(t, NULL);
	cr_assert_eq(w.rc, 0, "wait_writable returned %d", w.rc);
	cr_assert_eq(takt_try_send(p, 0, buf, sizeof buf), 0, "the room it waited for is there");
	takt_channel_close(view);
	takt_producer_close(p);
	takt_consumer_close(c);
}

struct drainer {
	const char *name;
	_Atomic uint32_t *bell;
	int received;
};

static void *drain_after_park(void *arg)
{
	struct drainer *d = arg;
	takt_consumer *c;
	if (takt_consumer_open(d->name, &c) != 0)
		return NULL;
	/* free space only once the producer is parked in takt_send_batch */
	if (tb_wait_parked(d->bell, 0)) {
		char buf[64];
		while (takt_try_recv(c, buf, sizeof buf, NULL) == 64)
			d->received++;
	}
	takt_consumer_close(c);
	return NULL;
}

Test(handoff, blocking_batch_send_waits_for_room)
{
	const char *name = tb_name("sbatch");
	tb_create(name, 1024, 1, 256);
	takt_producer *p;
	cr_assert_eq(takt_producer_open(name, &p), 0);
	takt_producer_set_spin_ns(p, 0);
	takt_channel *view;
	cr_assert_eq(takt_channel_open(name, TAKT_OPEN_RDONLY, &view), 0);
	int n = fill(p);
	cr_assert_gt(n, 0);
	char recs[4][64];
	struct takt_msg msgs[4];
	for (int i = 0; i < 4; i++) {
		memset(recs[i], 'a' + i, sizeof recs[i]);
		msgs[i] = (struct takt_msg){.data = recs[i], .len = 64, .type = (uint32_t)i};
	}
	cr_assert_eq(takt_send_batch(p, msgs, 4, TAKT_NO_WAIT), -EAGAIN);
	struct drainer d = {.name = name, .bell = tb_tx_bell(view, 0)};
	pthread_t t;
	cr_assert_eq(pthread_create(&t, NULL, drain_after_park, &d), 0);
	int sent = takt_send_batch(p, msgs, 4, takt_deadline_in(10ull * 1000000000u));
	pthread_join(t, NULL);
	cr_assert(sent >= 1 && sent <= 4, "blocking batch send returned %d", sent);
	/* the drainer emptied the full ring, and may also have taken some of
	 * the batch the woken producer published meanwhile */
	cr_assert(d.received >= n && d.received <= n + sent, "drainer received %d of %d + %d",
		  d.received, n, sent);
	cr_assert_eq(takt_send_batch(p, msgs, 0, TAKT_FOREVER), -EINVAL);
	takt_channel_close(view);
	takt_producer_close(p);
}
