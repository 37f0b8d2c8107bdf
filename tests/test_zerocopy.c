/* SPDX-License-Identifier: MIT */
/*
 * test_zerocopy.c - takt_reserve / takt_commit and takt_peek / takt_release.
 */
#define _GNU_SOURCE
#include "common.h"
#include "layout.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

TT_SUITE(zerocopy);

static struct takt_lane_stats lane_stats(takt_channel *ch, unsigned lane)
{
	struct takt_lane_stats ls;
	cr_assert_eq(takt_lane_stats_get(ch, lane, &ls), 0);
	return ls;
}

static void expect_empty(takt_consumer *c)
{
	uint8_t buf[8];
	int rc = takt_try_recv(c, buf, sizeof buf, NULL);
	cr_assert_eq(rc, -EAGAIN, "expected nothing visible, try_recv = %d", rc);
}

Test(zerocopy, reserve_invisible_until_commit)
{
	const char *name = tt_name();
	tt_create(name, 4096, 1, 512);
	takt_producer *p = tt_producer(name);
	takt_consumer *c = tt_consumer(name);
	void *d = NULL;
	cr_assert_eq(takt_reserve(p, 100, &d), 0);
	cr_assert_not_null(d);
	cr_assert_eq((uintptr_t)d % 8, 0, "payload pointer not 8-byte aligned: %p", d);
	tt_fill(d, 100, 1, 1);
	expect_empty(c);
	struct takt_msg pm;
	cr_assert_eq(takt_peek(c, &pm), -EAGAIN);
	cr_assert_eq(lane_stats(takt_producer_channel(p), 0).records_sent, 0);
	cr_assert_eq(takt_commit(p, 42, 100), 0);
	uint8_t buf[512];
	struct takt_msg m;
	cr_assert_eq(takt_try_recv(c, buf, sizeof buf, &m), 100);
	cr_assert_eq(m.type, 42);
	cr_assert(tt_check(buf, 100, 1, 1));
	expect_empty(c);
	takt_producer_close(p);
	takt_consumer_close(c);
}

Test(zerocopy, commit_shorter_length)
{
	const char *name = tt_name();
	tt_create(name, 4096, 1, 512);
	takt_producer *p = tt_producer(name);
	takt_consumer *c = tt_consumer(name);
	void *d = NULL;
	cr_assert_eq(takt_reserve(p, 200, &d), 0);
	tt_fill(d, 200, 2, 2);
	cr_assert_eq(takt_commit(p, 5, 37), 0);
	struct takt_lane_stats ls = lane_stats(takt_producer_channel(p), 0);
	cr_expect_eq(ls.bytes_sent, 37);
	cr_expect_eq(ls.tail, TT_REC(37), "the tail moves by the committed size, not the reserved one");
	/* the next record follows right after the short one */
	cr_assert_eq(takt_try_send(p, 6, "next", 4), 0);
	uint8_t buf[512];
	struct takt_msg m;
	cr_assert_eq(takt_try_recv(c, buf, sizeof buf, &m), 37);
	cr_assert_eq(m.type, 5);
	cr_assert(tt_check(buf, 37, 2, 2));
	cr_assert_eq(takt_try_recv(c, buf, sizeof buf, &m), 4);
	cr_assert_eq(m.type, 6);
	cr_assert_eq(memcmp(buf, "next", 4), 0);
	expect_empty(c);
	/* commit 0 of a reservation */
	cr_assert_eq(takt_reserve(p, 64, &d), 0);
	cr_assert_eq(takt_commit(p, 7, 0), 0);
	cr_assert_eq(takt_try_recv(c, buf, sizeof buf, &m), 0);
	cr_assert_eq(m.type, 7);
	takt_producer_close(p);
	takt_consumer_close(c);
}

Test(zerocopy, commit_errors)
{
	const char *name = tt_name();
	tt_create(name, 4096, 1, 512);
	takt_producer *p = tt_producer(name);
	takt_consumer *c = tt_consumer(name);
	cr_assert_eq(takt_commit(p, 1, 0), -EALREADY, "commit without reserve");
	void *d = NULL;
	cr_assert_eq(takt_reserve(p, 10, &d), 0);
	memcpy(d, "0123456789", 10);
	cr_assert_eq(takt_commit(p, 1, 11), -EMSGSIZE, "commit longer than reserved");
	expect_empty(c);
	cr_assert_eq(takt_reserve(p, 10, &d), 0);
	memcpy(d, "0123456789", 10);
	cr_assert_eq(takt_commit(p, TAKT_TYPE_RESERVED, 10), -EINVAL);
	cr_assert_eq(takt_commit(p, 0xffffffffu, 10), -EINVAL);
	expect_empty(c);
	cr_assert_eq(takt_reserve(p, 10, &d), 0);
	memcpy(d, "0123456789", 10);
	cr_assert_eq(takt_commit(p, 2, 10), 0);
	cr_assert_eq(takt_commit(p, 2, 10), -EALREADY, "second commit of one reservation");
	uint8_t buf[64];
	struct takt_msg m;
	cr_assert_eq(takt_try_recv(c, buf, sizeof buf, &m), 10);
	cr_assert_eq(m.type, 2);
	expect_empty(c);
	takt_producer_close(p);
	takt_consumer_close(c);
}

Test(zerocopy, reserve_errors)
{
	const char *name = tt_name();
	tt_create(name, 1024, 1, 256);
	takt_producer *p = tt_producer(name);
	takt_consumer *c = tt_consumer(name);
	void *d = NULL;
	cr_assert_eq(takt_reserve(p, 257, &d), -EMSGSIZE);
	cr_assert_eq(takt_reserve(p, ((size_t)1 << 32) + 1, &d), -EMSGSIZE);
	cr_assert_eq(takt_reserve(p, SIZE_MAX, &d), -EMSGSIZE);
	cr_assert_eq(takt_commit(p, 1, 0), -EALREADY, "a refused reserve reserved something");
	/* full: 15 records of 64 bytes */
	uint8_t buf[256];
	unsigned n = 0;
	while (takt_try_send(p, n, buf, 48) == 0)
		n++;
	cr_assert_eq(n, 15);
	cr_assert_eq(takt_reserve(p, 48, &d), -EAGAIN);
	cr_assert_eq(takt_reserve(p, 41, &d), -EAGAIN);
	cr_assert_eq(takt_reserve(p, 40, &d), 0, "exactly the room left (56 bytes)");
	cr_assert_eq(takt_commit(p, 99, 40), 0);
	struct takt_msg m;
	for (unsigned i = 0; i < n; i++) {
		cr_assert_eq(takt_try_recv(c, buf, sizeof buf, &m), 48);
		cr_assert_eq(m.type, i);
	}
	cr_assert_eq(takt_try_recv(c, buf, sizeof buf, &m), 40);
	cr_assert_eq(m.type, 99);
	expect_empty(c);
	takt_producer_close(p);
	takt_consumer_close(c);
}

Test(zerocopy, new_reserve_replaces_old)
{
	const char *name = tt_name();
	tt_create(name, 4096, 1, 512);
	takt_producer *p = tt_producer(name);
	takt_consumer *c = tt_consumer(name);
	void *d = NULL;
	cr_assert_eq(takt_reserve(p, 100, &d), 0);
	memset(d, 'A', 100);
	cr_assert_eq(takt_reserve(p, 50, &d), 0);
	memset(d, 'B', 50);
	cr_assert_eq(takt_commit(p, 3, 50), 0);
	uint8_t buf[512], want[50];
	memset(want, 'B', 50);
	struct takt_msg m;
	cr_assert_eq(takt_try_recv(c, buf, sizeof buf, &m), 50);
	cr_assert_eq(memcmp(buf, want, 50), 0);
	expect_empty(c);
	takt_producer_close(p);
	takt_consumer_close(c);
}

/* A reservation that needed padding, abandoned for a smaller one that does
 * not: the consumer sees exactly the records that were committed. */
Test(zerocopy, abandoned_reserve_at_the_end)
{
	const char *name = tt_name();
	tt_create(name, 1024, 1, 256);
	takt_producer *p = tt_producer(name);
	takt_consumer *c = tt_consumer(name);
	uint8_t buf[256];
	for (int i = 0; i < 7; i++) { /* head = tail = 896 */
		cr_assert_eq(takt_try_send(p, 1, buf, 112), 0);
		cr_assert_eq(takt_try_recv(c, buf, sizeof buf, NULL), 112);
	}
	void *d = NULL;
	cr_assert_eq(takt_reserve(p, 200, &d), 0); /* 216 > 128 left: padding */
	memset(d, 'P', 200);
	expect_empty(c);
	cr_assert_eq(takt_reserve(p, 50, &d), 0); /* fits before the end */
	memset(d, 'S', 50);
	cr_assert_eq(takt_commit(p, 10, 50), 0);
	cr_assert_eq(takt_try_send(p, 11, "after", 5), 0);
	cr_assert_eq(lane_stats(takt_producer_channel(p), 0).tail, 896 + 72 + 24);
	struct takt_msg m;
	cr_assert_eq(takt_try_recv(c, buf, sizeof buf, &m), 50);
	cr_assert_eq(m.type, 10);
	cr_assert_eq(buf[0], 'S');
	cr_assert_eq(buf[49], 'S');
	cr_assert_eq(takt_try_recv(c, buf, sizeof buf, &m), 5);
	cr_assert_eq(m.type, 11);
	expect_empty(c);
	/* and a reservation across the end, committed */
	cr_assert_eq(takt_reserve(p, 200, &d), 0); /* at 992: padding 32, record at 1024 */
	tt_fill(d, 200, 9, 9);
	cr_assert_eq(takt_commit(p, 12, 200), 0);
	cr_assert_eq(lane_stats(takt_producer_channel(p), 0).tail, 1024 + 216);
	cr_assert_eq(takt_try_recv(c, buf, sizeof buf, &m), 200);
	cr_assert_eq(m.type, 12);
	cr_assert(tt_check(buf, 200, 9, 9));
	expect_empty(c);
	takt_producer_close(p);
	takt_consumer_close(c);
}

Test(zerocopy, peek_release_basic)
{
	const char *name = tt_name();
	tt_create(name, 4096, 1, 512);
	takt_producer *p = tt_producer(name);
	takt_consumer *c = tt_consumer(name);
	struct takt_msg m, m2;
	cr_assert_eq(takt_peek(c, &m), -EAGAIN);
	cr_assert_eq(takt_release(c), -EALREADY, "release without peek");
	uint8_t payload[300];
	for (uint32_t i = 0; i < 3; i++) {
		tt_fill(payload, 100 + i, 6, i);
		cr_assert_eq(takt_try_send(p, 20 + i, payload, 100 + i), 0);
	}
	cr_assert_eq(takt_try_send(p, 23, payload, 0), 0);
	for (uint32_t i = 0; i < 3; i++) {
		memset(&m, 0, sizeof m);
		cr_assert_eq(takt_peek(c, &m), (int)(100 + i));
		cr_assert_eq(m.len, 100 + i);
		cr_assert_eq(m.type, 20 + i);
		cr_assert_eq(m.lane, 0);
		cr_assert_not_null(m.data);
		cr_assert(tt_check(m.data, 100 + i, 6, i));
		/* peeking again returns the same record */
		cr_assert_eq(takt_peek(c, &m2), (int)(100 + i));
		cr_assert_eq(m2.data, m.data);
		cr_assert_eq(m2.type, m.type);
		cr_assert_eq(takt_release(c), 0);
		cr_assert_eq(takt_release(c), -EALREADY, "second release");
	}
	cr_assert_eq(takt_peek(c, &m), 0);
	cr_assert_eq(m.type, 23);
	cr_assert_eq(takt_release(c), 0);
	cr_assert_eq(takt_peek(c, &m), -EAGAIN);
	struct takt_lane_stats ls = lane_stats(takt_producer_channel(p), 0);
	cr_expect_eq(ls.records_received, 4);
	cr_expect_eq(ls.bytes_received, 303);
	cr_expect_eq(ls.head, ls.tail);
	takt_producer_close(p);
	takt_consumer_close(c);
}

/* A peeked record's memory is not reused before its release. */
Test(zerocopy, peek_holds_the_space)
{
	const char *name = tt_name();
	tt_create(name, 1024, 1, 256);
	takt_producer *p = tt_producer(name);
	takt_consumer *c = tt_consumer(name);
	uint8_t buf[256];
	unsigned n = 0;
	for (;;) {
		tt_fill(buf, 48, 8, n);
		if (takt_try_send(p, n, buf, 48) != 0)
			break;
		n++;
	}
	cr_assert_eq(n, 15);
	struct takt_msg m;
	cr_assert_eq(takt_peek(c, &m), 48);
	cr_assert_eq(lane_stats(takt_producer_channel(p), 0).records_received, 0,
		     "a peek is not a receive");
	for (int i = 0; i < 3; i++)
		cr_assert_eq(takt_try_send(p, 100, buf, 48), -EAGAIN, "space of a peeked record reused");
	cr_assert(tt_check(m.data, 48, 8, 0), "peeked payload changed");
	cr_assert_eq(takt_release(c), 0);
	/* released: 64 + 56 bytes free, room for one more 48-byte record.
	 * The consumer hands it back to try_send in steps of capacity / 8
	 * (here 128 bytes) or at its next empty poll; a sender about to park
	 * takes it from the consumer's position at once. */
	tt_fill(buf, 48, 8, n);
	cr_assert_eq(takt_try_send(p, n, buf, 48), -EAGAIN, "64 bytes owed: not released yet");
	cr_assert_eq(takt_send(p, n, buf, 48, takt_deadline_in(10ull * 1000 * 1000 * 1000)), 0,
		     "a parking sender takes the consumed space");
	for (unsigned i = 1; i <= n; i++) {
		cr_assert_eq(takt_peek(c, &m), 48);
		cr_assert_eq(m.type, i);
		cr_assert(tt_check(m.data, 48, 8, i));
		cr_assert_eq(takt_release(c), 0);
	}
	cr_assert_eq(takt_peek(c, &m), -EAGAIN);
	takt_producer_close(p);
	takt_consumer_close(c);
}

Test(zerocopy, peek_across_lanes)
{
	const char *name = tt_name();
	tt_create(name, 4096, 2, 256);
	takt_producer *a = tt_producer(name);
	takt_producer *b = tt_producer(name);
	takt_consumer *c = tt_consumer(name);
	cr_assert_eq(takt_try_send(a, 1, "a", 1), 0);
	cr_assert_eq(takt_try_send(b, 2, "b", 1), 0);
	unsigned seen = 0;
	for (int i = 0; i < 2; i++) {
		struct takt_msg m;
		cr_assert_eq(takt_peek(c, &m), 1);
		const char *d = m.data;
		if (d[0] == 'a')
			cr_assert_eq(m.lane, takt_producer_lane(a));
		else
			cr_assert_eq(m.lane, takt_producer_lane(b));
		seen |= 1u << (d[0] - 'a');
		cr_assert_eq(takt_release(c), 0);
	}
	cr_assert_eq(seen, 3);
	struct takt_msg m;
	cr_assert_eq(takt_peek(c, &m), -EAGAIN);
	takt_producer_close(a);
	takt_producer_close(b);
	takt_consumer_close(c);
}

/* reserve/commit against peek/release, random sizes, many laps. */
Test(zerocopy, random_stream)
{
	uint64_t seed = tt_seed();
	const uint32_t max = 512;
	const char *name = tt_name();
	tt_create(name, 4096, 1, max);
	takt_producer *p = tt_producer(name);
	takt_consumer *c = tt_consumer(name);
	uint64_t sent = 0, got = 0, x = seed;
	for (int op = 0; op < 50000; op++) {
		x = tt_mix64(x);
		if (x & 1) {
			size_t len = tt_stream_len(seed, sent, max);
			size_t res = len + (size_t)((x >> 8) % (max - len + 1));
			void *d = NULL;
			int rc = takt_reserve(p, res, &d);
			if (rc == -EAGAIN)
				continue;
			cr_assert_eq(rc, 0, "reserve = %d", rc);
			tt_stream_make(d, len, seed, sent);
			cr_assert_eq(takt_commit(p, (uint32_t)sent, len), 0);
			sent++;
		} else {
			struct takt_msg m;
			int rc = takt_peek(c, &m);
			if (rc == -EAGAIN) {
				cr_assert_eq(got, sent);
				continue;
			}
			cr_assert_eq(rc, (int)tt_stream_len(seed, got, max), "peek = %d", rc);
			cr_assert_eq(m.type, (uint32_t)got);
			const char *why = tt_stream_verify(m.data, m.len, seed, got);
			cr_assert_null(why, "seq %llu: %s (seed %llu)", (unsigned long long)got, why,
				       (unsigned long long)seed);
			cr_assert_eq(takt_release(c), 0);
			got++;
		}
	}
	cr_assert_gt(got, 1000);
	takt_producer_close(p);
	takt_consumer_close(c);
}
