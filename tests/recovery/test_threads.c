/* SPDX-License-Identifier: MIT */
/*
 * test_threads.c - the MPSC stream with threads in one process, so
 * ThreadSanitizer can check the memory orders of lane.h and doorbell.c:
 * 4 producer threads and a consumer thread, each with its own handle, on
 * their own mappings or attached to one shared mapping; polling and
 * blocking variants.  Records checked as in test_stream4 (sequence per
 * producer, checksum).
 */
#include "tr_common.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#define PRODUCERS 4

TR_SUITE(threads, .timeout = 0);

struct ctx {
	const char *name;
	takt_channel *shared; /* attach here if set */
	uint64_t n;
	bool blocking;
	_Atomic int failed;
};

static uint64_t fnv(const uint8_t *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	return h;
}

static void *producer(void *arg)
{
	struct ctx *x = arg;
	takt_producer *p;
	int rc = x->shared ? takt_producer_attach(x->shared, &p) : takt_producer_open(x->name, &p);
	if (rc != 0) {
		x->failed = 1;
		return NULL;
	}
	uint32_t prod = takt_producer_lane(p);
	uint8_t b[96];
	for (uint64_t seq = 0; seq < x->n && !x->failed;) {
		size_t len = 24 + (seq * 5 + prod) % 64;
		memcpy(b, &seq, 8);
		memcpy(b + 8, &prod, 4);
		memset(b + 12, (int)(seq & 0xff), len - 20);
		uint64_t h = fnv(b, len - 8);
		memcpy(b + len - 8, &h, 8);
		rc = x->blocking ? takt_send(p, prod, b, len, takt_deadline_in(50 * 1000 * 1000))
				 : takt_try_send(p, prod, b, len);
		if (rc == 0)
			seq++;
		else if (rc == -EAGAIN || rc == -ETIMEDOUT)
			tr_yield();
		else
			x->failed = 2;
	}
	takt_producer_close(p);
	return NULL;
}

static void run(bool shared, bool blocking)
{
	struct ctx x = {.n = tr_env_u64("TR_THREAD_RECORDS", 200000), .blocking = blocking};
	if (tr_long())
		x.n *= 10;
	x.name = tr_name("thr");
	tr_create(x.name, 1 << 14, PRODUCERS, 256);
	if (shared)
		cr_assert_eq(takt_channel_open(x.name, 0, &x.shared), 0);
	takt_consumer *c;
	cr_assert_eq(shared ? takt_consumer_attach(x.shared, &c) : takt_consumer_open(x.name, &c), 0);
	takt_consumer_set_lane_burst(c, 3);
	pthread_t t[PRODUCERS];
	for (int k = 0; k < PRODUCERS; k++)
		cr_assert_eq(pthread_create(&t[k], NULL, producer, &x), 0);
	uint64_t next[PRODUCERS] = {0}, total = 0;
	uint8_t buf[256];
	struct takt_msg m;
	while (total < x.n * PRODUCERS && !x.failed) {
		int r = blocking ? takt_recv(c, buf, sizeof buf, &m, takt_deadline_in(50 * 1000 * 1000))
				 : takt_try_recv(c, buf, sizeof buf, &m);
		if (r == -EAGAIN || r == -ETIMEDOUT) {
			tr_yield();
			continue;
		}
		cr_assert_geq(r, 20, "receive = %d (%s)", r, takt_strerror(r));
		uint64_t seq, h;
		uint32_t prod;
		memcpy(&seq, buf, 8);
		memcpy(&prod, buf + 8, 4);
		memcpy(&h, buf + r - 8, 8);
		cr_assert_eq(h, fnv(buf, (size_t)r - 8), "torn record");
		cr_assert_eq(prod, m.lane);
		cr_assert_eq(seq, next[prod], "lane %u: %" PRIu64 " != %" PRIu64, prod, seq, next[prod]);
		next[prod]++;
		total++;
	}
	for (int k = 0; k < PRODUCERS; k++)
		pthread_join(t[k], NULL);
	cr_assert_eq(x.failed, 0);
	cr_assert_eq(takt_try_recv(c, buf, sizeof buf, &m), -EAGAIN);
	takt_consumer_close(c);
	if (shared)
		cr_assert_eq(takt_channel_close(x.shared), 0);
}

Test(threads, own_mappings_polling)
{
	run(false, false);
}

Test(threads, shared_mapping_polling)
{
	run(true, false);
}

Test(threads, own_mappings_blocking)
{
	run(false, true);
}

Test(threads, shared_mapping_blocking)
{
	run(true, true);
}
