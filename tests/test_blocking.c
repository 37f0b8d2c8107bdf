/* SPDX-License-Identifier: MIT */
/*
 * test_blocking.c - takt_send / takt_recv / takt_recv_batch: deadlines,
 * wake-ups from a parked state (the doorbell word in the segment tells the
 * test when the other side is parked: no sleeps), signals during a wait, and
 * a blocking ping-pong between processes where a lost wake-up would show up
 * as -ETIMEDOUT.
 */
#define _GNU_SOURCE
#include "common.h"
#include "layout.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

TT_SUITE(blocking);

#define MS 1000000ull

Test(blocking, clock_helpers)
{
	uint64_t a = takt_now_ns();
	uint64_t b = takt_now_ns();
	cr_assert_geq(b, a);
	cr_assert_gt(a, 0);
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	uint64_t mono = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	cr_assert_leq(b, mono + 1000, "takt_now_ns is not CLOCK_MONOTONIC");
	cr_assert_geq(b + 100 * MS, mono);
	uint64_t d = takt_deadline_in(5 * MS);
	cr_assert_geq(d, b + 5 * MS);
	cr_assert_leq(d, takt_now_ns() + 5 * MS);
	cr_assert_eq(takt_deadline_in(UINT64_MAX), TAKT_FOREVER);
	cr_assert_eq(takt_deadline_in(UINT64_MAX - 10), TAKT_FOREVER, "must saturate, not wrap");
}

Test(blocking, recv_times_out)
{
	const char *name = tt_name();
	tt_create(name, 4096, 1, 256);
	takt_consumer *c = tt_consumer(name);
	takt_consumer_set_spin_ns(c, 1000);
	uint8_t buf[64];
	uint64_t t0 = takt_now_ns();
	int rc = takt_recv(c, buf, sizeof buf, NULL, t0 + 50 * MS);
	uint64_t dt = takt_now_ns() - t0;
	cr_assert_eq(rc, -ETIMEDOUT, "recv on an empty channel = %d", rc);
	cr_assert_geq(dt, 50 * MS, "returned %llu ns before the deadline", (unsigned long long)(50 * MS - dt));
	cr_assert_lt(dt, 5000 * MS);
	struct takt_msg ms[4];
	t0 = takt_now_ns();
	rc = takt_recv_batch(c, ms, 4, buf, sizeof buf, t0 + 20 * MS);
	cr_assert_eq(rc, -ETIMEDOUT);
	cr_assert_geq(takt_now_ns() - t0, 20 * MS);
	/* a deadline in the past, or no wait at all: one try */
	rc = takt_recv(c, buf, sizeof buf, NULL, TAKT_NO_WAIT);
	cr_assert(rc == -EAGAIN || rc == -ETIMEDOUT, "TAKT_NO_WAIT = %d", rc);
	rc = takt_recv(c, buf, sizeof buf, NULL, 1);
	cr_assert(rc == -EAGAIN || rc == -ETIMEDOUT, "deadline 1 ns after boot = %d", rc);
	takt_consumer_close(c);
}

Test(blocking, send_times_out_when_full)
{
	const char *name = tt_name();
	tt_create(name, 1024, 1, 256);
	takt_producer *p = tt_producer(name);
	takt_producer_set_spin_ns(p, 0);
	uint8_t buf[64] = {0};
	while (takt_try_send(p, 1, buf, 48) == 0)
		;
	uint64_t t0 = takt_now_ns();
	int rc = takt_send(p, 1, buf, 48, t0 + 30 * MS);
	cr_assert_eq(rc, -ETIMEDOUT, "send on a full channel = %d", rc);
	cr_assert_geq(takt_now_ns() - t0, 30 * MS);
	rc = takt_send(p, 1, buf, 48, TAKT_NO_WAIT);
	cr_assert(rc == -EAGAIN || rc == -ETIMEDOUT, "TAKT_NO_WAIT = %d", rc);
	cr_assert_eq(takt_send(p, 1, buf, 257, takt_deadline_in(10 * MS)), -EMSGSIZE);
	cr_assert_eq(takt_send(p, TAKT_TYPE_RESERVED, buf, 1, takt_deadline_in(10 * MS)), -EINVAL);
	takt_producer_close(p);
}

Test(blocking, blocking_calls_return_at_once_when_ready)
{
	const char *name = tt_name();
	tt_create(name, 4096, 1, 256);
	takt_producer *p = tt_producer(name);
	takt_consumer *c = tt_consumer(name);
	cr_assert_eq(takt_send(p, 4, "abc", 3, TAKT_FOREVER), 0);
	cr_assert_eq(takt_send(p, 5, "defg", 4, takt_deadline_in(1000 * MS)), 0);
	uint8_t buf[64];
	struct takt_msg m;
	cr_assert_eq(takt_recv(c, buf, sizeof buf, &m, TAKT_FOREVER), 3);
	cr_assert_eq(m.type, 4);
	struct takt_msg ms[4];
	cr_assert_eq(takt_recv_batch(c, ms, 4, buf, sizeof buf, TAKT_FOREVER), 1);
	cr_assert_eq(ms[0].type, 5);
	/* too small a buffer is reported at once, not waited on */
	cr_assert_eq(takt_send(p, 6, "hijkl", 5, TAKT_FOREVER), 0);
	cr_assert_eq(takt_recv(c, buf, 2, &m, TAKT_FOREVER), -EMSGSIZE);
	cr_assert_eq(m.len, 5);
	takt_producer_close(p);
	takt_consumer_close(c);
}

/* ---- wake-ups from a parked state -------------------------------------- */

struct waiter {
	takt_consumer *c;
	takt_producer *p;
	int rc;
	struct takt_msg m;
	uint8_t buf[64];
	uint64_t deadline;
};

static void *recv_thread(void *arg)
{
	struct waiter *w = arg;
	w->rc = takt_recv(w->c, w->buf, sizeof w->buf, &w->m, w->deadline);
	return NULL;
}

static void *send_thread(void *arg)
{
	struct waiter *w = arg;
	w->rc = takt_send(w->p, 9, "wake", 4, w->deadline);
	return NULL;
}

/* Wait until a doorbell word has its armed bit set (the waiter is parked or
 * about to park), with a deadline. */
static void await_armed(takt_a32 *word, const char *what)
{
	double end = tt_now() + 10;
	unsigned spins = 0;
	while (!(atomic_load(word) & 1u)) {
		tt_backoff(&spins);
		cr_assert_lt(tt_now(), end, "%s never armed its doorbell", what);
	}
}

Test(blocking, parked_consumer_wakes_on_send)
{
	const char *name = tt_name();
	tt_create(name, 4096, 1, 256);
	takt_channel *ch = NULL;
	cr_assert_eq(takt_channel_open(name, 0, &ch), 0);
	static struct waiter w;
	cr_assert_eq(takt_consumer_attach(ch, &w.c), 0);
	cr_assert_eq(takt_producer_attach(ch, &w.p), 0);
	takt_consumer_set_spin_ns(w.c, 0);
	struct tt_raw raw;
	tt_raw_map(name, &raw);
	struct takt_seg_consumer *cb = (struct takt_seg_consumer *)(raw.base + TAKT_CONSUMER_OFFSET);
	for (int round = 0; round < 20; round++) {
		w.deadline = takt_deadline_in(20000 * MS);
		w.rc = 12345;
		pthread_t th;
		cr_assert_eq(pthread_create(&th, NULL, recv_thread, &w), 0);
		await_armed(&cb->rx_doorbell, "the consumer");
		uint64_t t0 = takt_now_ns();
		cr_assert_eq(takt_try_send(w.p, (uint32_t)round, "ring", 4), 0);
		pthread_join(th, NULL);
		cr_assert_eq(w.rc, 4, "round %d: parked recv = %d (%s)", round, w.rc, takt_strerror(w.rc));
		cr_assert_eq(w.m.type, (uint32_t)round);
		cr_assert_lt(takt_now_ns() - t0, 10000 * MS, "woken only by the deadline?");
	}
	tt_raw_unmap(&raw);
	takt_consumer_close(w.c);
	takt_producer_close(w.p);
	cr_assert_eq(takt_channel_close(ch), 0);
}

Test(blocking, parked_producer_wakes_on_recv)
{
	const char *name = tt_name();
	tt_create(name, 1024, 1, 256);
	takt_channel *ch = NULL;
	cr_assert_eq(takt_channel_open(name, 0, &ch), 0);
	static struct waiter w;
	cr_assert_eq(takt_consumer_attach(ch, &w.c), 0);
	cr_assert_eq(takt_producer_attach(ch, &w.p), 0);
	takt_producer_set_spin_ns(w.p, 0);
	struct tt_raw raw;
	tt_raw_map(name, &raw);
	struct takt_seg_lane *lane = (struct takt_seg_lane *)(raw.base + TAKT_LANES_OFFSET);
	uint8_t buf[64] = {0};
	/* full even for the smallest record */
	while (takt_try_send(w.p, 1, buf, 48) == 0)
		;
	while (takt_try_send(w.p, 1, buf, 0) == 0)
		;
	for (int round = 0; round < 20; round++) {
		w.deadline = takt_deadline_in(20000 * MS);
		w.rc = 12345;
		pthread_t th;
		cr_assert_eq(pthread_create(&th, NULL, send_thread, &w), 0);
		await_armed(&lane->tx_doorbell, "the producer");
		/* drain: the parked send must now go through */
		int rc;
		unsigned drained = 0;
		while ((rc = takt_try_recv(w.c, buf, sizeof buf, NULL)) >= 0)
			drained++;
		cr_assert_eq(rc, -EAGAIN);
		cr_assert_gt(drained, 0);
		pthread_join(th, NULL);
		cr_assert_eq(w.rc, 0, "round %d: parked send = %d (%s)", round, w.rc, takt_strerror(w.rc));
		/* the woken send's record, then full again */
		while (takt_try_send(w.p, 1, buf, 0) == 0)
			;
	}
	tt_raw_unmap(&raw);
	takt_consumer_close(w.c);
	takt_producer_close(w.p);
	cr_assert_eq(takt_channel_close(ch), 0);
}

static volatile sig_atomic_t alarms;
static void on_alarm(int sig)
{
	(void)sig;
	alarms++;
}

Test(blocking, signals_do_not_end_the_wait)
{
	const char *name = tt_name();
	tt_create(name, 4096, 1, 256);
	takt_consumer *c = tt_consumer(name);
	takt_consumer_set_spin_ns(c, 0);
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_alarm; /* no SA_RESTART: sem waits see EINTR */
	cr_assert_eq(sigaction(SIGALRM, &sa, NULL), 0);
	struct itimerval it = {.it_interval = {0, 10000}, .it_value = {0, 10000}};
	cr_assert_eq(setitimer(ITIMER_REAL, &it, NULL), 0);
	uint8_t buf[64];
	uint64_t t0 = takt_now_ns();
	int rc = takt_recv(c, buf, sizeof buf, NULL, t0 + 120 * MS);
	uint64_t dt = takt_now_ns() - t0;
	struct itimerval off = {{0, 0}, {0, 0}};
	setitimer(ITIMER_REAL, &off, NULL);
	cr_assert_eq(rc, -ETIMEDOUT, "recv interrupted by signals = %d (%s)", rc, takt_strerror(rc));
	cr_assert_geq(dt, 120 * MS, "the wait ended %llu ns early", (unsigned long long)(120 * MS - dt));
#ifndef __SANITIZE_THREAD__
	/* (ThreadSanitizer defers signal handlers past blocking calls) */
	cr_assert_gt(alarms, 2, "the signals did not arrive during the wait");
#endif
	takt_consumer_close(c);
}

/* ---- ping-pong between processes, parking every time ----------------------- */

Test(blocking, ping_pong_processes)
{
	uint64_t rounds = tt_stream_records() / 500;
	if (rounds < 2000)
		rounds = 2000;
	if (rounds > 20000)
		rounds = 20000;
	char ping[TAKT_NAME_MAX + 1], pong[TAKT_NAME_MAX + 1];
	snprintf(ping, sizeof ping, "%s", tt_name());
	snprintf(pong, sizeof pong, "%s", tt_name());
	tt_create(ping, 4096, 1, 64);
	tt_create(pong, 4096, 1, 64);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		tt_child_setup();
		takt_consumer *c = NULL;
		takt_producer *p = NULL;
		if (takt_consumer_open(ping, &c) != 0 || takt_producer_open(pong, &p) != 0)
			_exit(2);
		takt_consumer_set_spin_ns(c, 0);
		takt_producer_set_spin_ns(p, 0);
		for (uint64_t i = 0; i < rounds; i++) {
			uint64_t v;
			int rc = takt_recv(c, &v, sizeof v, NULL, takt_deadline_in(10000 * MS));
			if (rc != 8) {
				fprintf(stderr, "child: recv %llu = %d (%s)\n", (unsigned long long)i, rc,
					takt_strerror(rc));
				_exit(3);
			}
			if (v != i)
				_exit(4);
			v++;
			rc = takt_send(p, 1, &v, sizeof v, takt_deadline_in(10000 * MS));
			if (rc != 0)
				_exit(5);
		}
		takt_consumer_close(c);
		takt_producer_close(p);
		_exit(0);
	}
	takt_producer *p = tt_producer(ping);
	takt_consumer *c = tt_consumer(pong);
	takt_consumer_set_spin_ns(c, 0);
	takt_producer_set_spin_ns(p, 0);
	const char *fail = NULL;
	int rc = 0;
	uint64_t i;
	for (i = 0; i < rounds; i++) {
		uint64_t v = i;
		rc = takt_send(p, 1, &v, sizeof v, takt_deadline_in(10000 * MS));
		if (rc != 0) {
			fail = "send";
			break;
		}
		rc = takt_recv(c, &v, sizeof v, NULL, takt_deadline_in(10000 * MS));
		if (rc != 8) {
			fail = "recv (a lost wake-up shows as -ETIMEDOUT)";
			break;
		}
		if (v != i + 1) {
			fail = "wrong value";
			break;
		}
	}
	if (fail)
		kill(pid, SIGKILL);
	int st = tt_wait_child(pid);
	cr_assert_null(fail, "round %llu: %s: %d (%s)", (unsigned long long)i, fail, rc, takt_strerror(rc));
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child: %s", tt_status_str(st));
	takt_producer_close(p);
	takt_consumer_close(c);
}
