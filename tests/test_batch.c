/* SPDX-License-Identifier: MIT */
/*
 * test_batch.c - takt_try_send_batch and takt_try_recv_batch: partial
 * batches, batches across the end of the data area, errors in the middle of
 * a batch, the receive buffer layout, and a randomised run of both.
 * (That a batch becomes visible all at once is checked across threads in
 * test_stream_threads.c.)
 */
#define _GNU_SOURCE
#include "common.h"
#include "layout.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

TT_SUITE(batch);

static struct takt_lane_stats lane_stats(takt_channel *ch, unsigned lane)
{
	struct takt_lane_stats ls;
	cr_assert_eq(takt_lane_stats_get(ch, lane, &ls), 0);
	return ls;
}

/* n records of stream `stream` from seq first, payloads in store. */
static void make_msgs(struct takt_msg *msgs, uint8_t (*store)[512], unsigned n, uint64_t stream,
		      uint64_t first, uint32_t max)
{
	for (unsigned i = 0; i < n; i++) {
		size_t len = tt_stream_len(stream, first + i, max);
		tt_stream_make(store[i], len, stream, first + i);
		msgs[i] = (struct takt_msg){.data = store[i], .len = (uint32_t)len,
					    .type = (uint32_t)(first + i)};
	}
}

static void expect_record(takt_consumer *c, uint64_t stream, uint64_t seq, uint32_t max)
{
	uint8_t buf[512];
	struct takt_msg m;
	int rc = takt_try_recv(c, buf, sizeof buf, &m);
	cr_assert_eq(rc, (int)tt_stream_len(stream, seq, max), "seq %llu: recv = %d", (unsigned long long)seq, rc);
	cr_assert_eq(m.type, (uint32_t)seq);
	cr_assert_null(tt_stream_verify(buf, (size_t)rc, stream, seq));
}

Test(batch, send_all)
{
	const char *name = tt_name();
	tt_create(name, 8192, 1, 256);
	takt_producer *p = tt_producer(name);
	takt_consumer *c = tt_consumer(name);
	static uint8_t store[16][512];
	struct takt_msg msgs[16];
	make_msgs(msgs, store, 16, 1, 0, 256);
	uint64_t bytes = 0;
	for (int i = 0; i < 16; i++)
		bytes += msgs[i].len;
	cr_assert_eq(takt_try_send_batch(p, msgs, 16), 16);
	for (uint64_t i = 0; i < 16; i++)
		expect_record(c, 1, i, 256);
	uint8_t buf[8];
	cr_assert_eq(takt_try_recv(c, buf, sizeof buf, NULL), -EAGAIN);
	struct takt_lane_stats ls = lane_stats(takt_producer_channel(p), 0);
	cr_expect_eq(ls.records_sent, 16);
	cr_expect_eq(ls.bytes_sent, bytes);
	/* a batch of one */
	cr_assert_eq(takt_try_send_batch(p, msgs, 1), 1);
	expect_record(c, 1, 0, 256);
	takt_producer_close(p);
	takt_consumer_close(c);
}

Test(batch, send_partial_when_full)
{
	const uint64_t cap = 1024;
	const char *name = tt_name();
	tt_create(name, cap, 1, 256);
	takt_producer *p = tt_producer(name);
	takt_consumer *c = tt_consumer(name);
	static uint8_t payload[100];
	struct takt_msg msgs[12];
	for (unsigned i = 0; i < 12; i++)
		msgs[i] = (struct takt_msg){.data = payload, .len = 100, .type = i};
	/* 120 bytes a record: 8 fit (960 + 8 <= 1024), a 9th would need padding */
	cr_assert_eq(takt_try_send_batch(p, msgs, 12), 8);
	cr_assert_eq(takt_try_send_batch(p, msgs, 12), -EAGAIN);
	cr_assert_eq(lane_stats(takt_producer_channel(p), 0).tail, 960);
	uint8_t buf[128];
	struct takt_msg m;
	for (unsigned i = 0; i < 8; i++) {
		cr_assert_eq(takt_try_recv(c, buf, sizeof buf, &m), 100);
		cr_assert_eq(m.type, i);
	}
	cr_assert_eq(takt_try_recv(c, buf, sizeof buf, &m), -EAGAIN);
	takt_producer_close(p);
	takt_consumer_close(c);
}

Test(batch, across_the_end)
{
	const uint64_t cap = 1024;
	const char *name = tt_name();
	tt_create(name, cap, 1, 256);
	takt_producer *p = tt_producer(name);
	takt_consumer *c = tt_consumer(name);
	uint8_t buf[256];
	for (int i = 0; i < 7; i++) { /* head = tail = 896 */
		cr_assert_eq(takt_try_send(p, 1, buf, 112), 0);
		cr_assert_eq(takt_try_recv(c, buf, sizeof buf, NULL), 112);
	}
	static uint8_t store[16][512];
	struct takt_msg msgs[5];
	make_msgs(msgs, store, 5, 2, 0, 256);
	for (int i = 0; i < 5; i++)
		msgs[i].len = 100; /* 120 bytes each: 896..1016, pad 8, 1024.. */
	for (int i = 0; i < 5; i++)
		tt_stream_make(store[i], 100, 3, (uint64_t)i);
	cr_assert_eq(takt_try_send_batch(p, msgs, 5), 5);
	cr_assert_eq(lane_stats(takt_producer_channel(p), 0).tail, 1024 + 4 * 120);
	struct takt_msg m;
	for (int i = 0; i < 5; i++) {
		cr_assert_eq(takt_try_recv(c, buf, sizeof buf, &m), 100);
		cr_assert_eq(m.type, (uint32_t)i);
		cr_assert_null(tt_stream_verify(buf, 100, 3, (uint64_t)i));
	}
	cr_assert_eq(takt_try_recv(c, buf, sizeof buf, &m), -EAGAIN);
	takt_producer_close(p);
	takt_consumer_close(c);
}

Test(batch, errors_end_the_batch)
{
	const char *name = tt_name();
	tt_create(name, 8192, 1, 256);
	takt_producer *p = tt_producer(name);
	takt_consumer *c = tt_consumer(name);
	static uint8_t payload[512];
	struct takt_msg msgs[4];
	for (unsigned i = 0; i < 4; i++)
		msgs[i] = (struct takt_msg){.data = payload, .len = 10, .type = i};
	uint8_t buf[512];
	struct takt_msg m;

	msgs[0].len = 257;
	cr_assert_eq(takt_try_send_batch(p, msgs, 4), -EMSGSIZE);
	msgs[0].len = 10;
	msgs[0].type = TAKT_TYPE_RESERVED;
	cr_assert_eq(takt_try_send_batch(p, msgs, 4), -EINVAL);
	msgs[0].type = 0;
	cr_assert_eq(takt_try_recv(c, buf, sizeof buf, &m), -EAGAIN, "a refused batch published something");

	msgs[2].len = 300;
	cr_assert_eq(takt_try_send_batch(p, msgs, 4), 2);
	msgs[2].len = 10;
	msgs[1].type = 0xffffffffu;
	cr_assert_eq(takt_try_send_batch(p, msgs, 4), 1);
	msgs[1].type = 1;
	for (unsigned want = 0; want < 3; want++) {
		cr_assert_eq(takt_try_recv(c, buf, sizeof buf, &m), 10);
		cr_assert_eq(m.type, want < 2 ? want : 0);
	}
	cr_assert_eq(takt_try_recv(c, buf, sizeof buf, &m), -EAGAIN);
	struct takt_lane_stats ls = lane_stats(takt_producer_channel(p), 0);
	cr_expect_eq(ls.records_sent, 3);
	takt_producer_close(p);
	takt_consumer_close(c);
}

Test(batch, recv_layout)
{
	const char *name = tt_name();
	tt_create(name, 8192, 1, 256);
	takt_producer *p = tt_producer(name);
	takt_consumer *c = tt_consumer(name);
	static uint8_t store[16][512];
	struct takt_msg in[10];
	make_msgs(in, store, 10, 4, 0, 256);
	cr_assert_eq(takt_try_send_batch(p, in, 10), 10);
	static uint8_t buf[16 * 264];
	struct takt_msg out[16];
	memset(out, 0, sizeof out);
	int n = takt_try_recv_batch(c, out, 16, buf, sizeof buf);
	cr_assert_eq(n, 10);
	size_t off = 0;
	for (int i = 0; i < n; i++) {
		const uint8_t *d = out[i].data;
		cr_assert_eq(out[i].len, in[i].len);
		cr_assert_eq(out[i].type, in[i].type);
		cr_assert_eq(out[i].lane, 0);
		if (out[i].len) {
			cr_assert(d >= buf && d + out[i].len <= buf + sizeof buf, "record %d outside buf", i);
			cr_assert_eq((size_t)(d - buf), off, "record %d at offset %zu, expected %zu", i,
				     (size_t)(d - buf), off);
			cr_assert_null(tt_stream_verify(d, out[i].len, 4, (uint64_t)i));
		}
		off += TT_ALIGN8(out[i].len);
	}
	cr_assert_eq(takt_try_recv_batch(c, out, 16, buf, sizeof buf), -EAGAIN);
	struct takt_lane_stats ls = lane_stats(takt_producer_channel(p), 0);
	cr_expect_eq(ls.head, ls.tail, "the whole batch is consumed");
	cr_expect_eq(ls.records_received, 10);
	takt_producer_close(p);
	takt_consumer_close(c);
}

Test(batch, recv_limited_by_n)
{
	const char *name = tt_name();
	tt_create(name, 8192, 1, 256);
	takt_producer *p = tt_producer(name);
	takt_consumer *c = tt_consumer(name);
	for (uint32_t i = 0; i < 10; i++)
		cr_assert_eq(takt_try_send(p, i, &i, sizeof i), 0);
	uint8_t buf[1024];
	struct takt_msg out[3];
	static const int want[] = {3, 3, 3, 1};
	uint32_t next = 0;
	for (int k = 0; k < 4; k++) {
		int n = takt_try_recv_batch(c, out, 3, buf, sizeof buf);
		cr_assert_eq(n, want[k]);
		for (int i = 0; i < n; i++) {
			uint32_t v;
			memcpy(&v, out[i].data, 4);
			cr_assert_eq(v, next);
			cr_assert_eq(out[i].type, next);
			next++;
		}
	}
	cr_assert_eq(takt_try_recv_batch(c, out, 3, buf, sizeof buf), -EAGAIN);
	takt_producer_close(p);
	takt_consumer_close(c);
}

Test(batch, recv_limited_by_cap)
{
	const char *name = tt_name();
	tt_create(name, 8192, 1, 256);
	takt_producer *p = tt_producer(name);
	takt_consumer *c = tt_consumer(name);
	uint8_t payload[100];
	for (uint32_t i = 0; i < 6; i++) {
		tt_fill(payload, sizeof payload, 5, i);
		cr_assert_eq(takt_try_send(p, i, payload, sizeof payload), 0);
	}
	static uint8_t buf[1024];
	struct takt_msg out[8];
	/* 100 + 4 pad + 100 = 204 */
	cr_assert_eq(takt_try_recv_batch(c, out, 8, buf, 250), 2);
	cr_assert_eq(takt_try_recv_batch(c, out, 8, buf, 204), 2);
	cr_assert_eq(takt_try_recv_batch(c, out, 8, buf, 203), 1);
	cr_assert_eq(out[0].type, 4);
	cr_assert(tt_check(out[0].data, 100, 5, 4));
	memset(out, 0, sizeof out);
	cr_assert_eq(takt_try_recv_batch(c, out, 8, buf, 99), -EMSGSIZE);
	cr_assert_eq(out[0].len, 100, "the size needed must be reported");
	cr_assert_eq(takt_try_recv_batch(c, out, 8, buf, 0), -EMSGSIZE);
	cr_assert_eq(takt_try_recv_batch(c, out, 8, buf, 100), 1);
	cr_assert_eq(out[0].type, 5);
	cr_assert(tt_check(out[0].data, 100, 5, 5));
	cr_assert_eq(takt_try_recv_batch(c, out, 8, buf, sizeof buf), -EAGAIN);
	takt_producer_close(p);
	takt_consumer_close(c);
}

Test(batch, recv_across_lanes)
{
	const unsigned lanes = 3;
	const char *name = tt_name();
	tt_create(name, 8192, lanes, 256);
	takt_producer *p[3];
	for (unsigned i = 0; i < lanes; i++)
		p[i] = tt_producer(name);
	takt_consumer *c = tt_consumer(name);
	uint64_t sent[64] = {0}, got[64] = {0};
	uint8_t payload[256];
	for (unsigned k = 0; k < 20; k++)
		for (unsigned i = 0; i < lanes; i++) {
			unsigned lane = takt_producer_lane(p[i]);
			size_t len = tt_stream_len(lane, sent[lane], 256);
			tt_stream_make(payload, len, lane, sent[lane]);
			cr_assert_eq(takt_try_send(p[i], (uint32_t)sent[lane], payload, len), 0);
			sent[lane]++;
		}
	static uint8_t buf[64 * 264];
	struct takt_msg out[64];
	unsigned total = 0;
	int n;
	while ((n = takt_try_recv_batch(c, out, 7, buf, sizeof buf)) > 0) {
		for (int i = 0; i < n; i++) {
			unsigned lane = out[i].lane;
			cr_assert_lt(lane, lanes);
			cr_assert_eq(out[i].type, (uint32_t)got[lane]);
			cr_assert_null(tt_stream_verify(out[i].data, out[i].len, lane, got[lane]));
			got[lane]++;
		}
		total += (unsigned)n;
	}
	cr_assert_eq(n, -EAGAIN);
	cr_assert_eq(total, 60);
	for (unsigned l = 0; l < lanes; l++)
		cr_assert_eq(got[l], sent[l]);
	for (unsigned i = 0; i < lanes; i++)
		takt_producer_close(p[i]);
	takt_consumer_close(c);
}

/* Random batch sizes both ways over many laps of a small ring. */
Test(batch, random_batches)
{
	uint64_t seed = tt_seed();
	const uint32_t max = 200;
	const char *name = tt_name();
	tt_create(name, 2048, 1, max);
	takt_producer *p = tt_producer(name);
	takt_consumer *c = tt_consumer(name);
	static uint8_t store[16][512];
	struct takt_msg in[16], out[16];
	static uint8_t buf[16 * 208];
	uint64_t next_send = 0, next_recv = 0, x = seed;
	for (int op = 0; op < 20000; op++) {
		x = tt_mix64(x);
		unsigned n = 1 + (unsigned)(x % 16);
		if ((x >> 16) & 1) {
			make_msgs(in, store, n, seed, next_send, max);
			int rc = takt_try_send_batch(p, in, n);
			cr_assert(rc == -EAGAIN || (rc >= 1 && rc <= (int)n), "send_batch = %d", rc);
			if (rc > 0)
				next_send += (uint64_t)rc;
		} else {
			size_t cap = (x >> 20) % sizeof buf;
			int rc = takt_try_recv_batch(c, out, n, buf, cap);
			if (rc == -EAGAIN) {
				cr_assert_eq(next_recv, next_send, "empty with records outstanding");
				continue;
			}
			if (rc == -EMSGSIZE) {
				cr_assert_gt(out[0].len, cap);
				cr_assert_eq(out[0].len, tt_stream_len(seed, next_recv, max));
				continue;
			}
			cr_assert(rc >= 1 && rc <= (int)n, "recv_batch = %d", rc);
			for (int i = 0; i < rc; i++) {
				const uint8_t *d = out[i].data;
				if (out[i].len)
					cr_assert(d >= buf && d + out[i].len <= buf + cap,
						  "record %d outside the %zu-byte buffer", i, cap);
				cr_assert_eq(out[i].len, tt_stream_len(seed, next_recv, max));
				cr_assert_eq(out[i].type, (uint32_t)next_recv);
				cr_assert_null(tt_stream_verify(out[i].data, out[i].len, seed, next_recv),
					       "seq %llu (seed %llu)", (unsigned long long)next_recv,
					       (unsigned long long)seed);
				next_recv++;
			}
		}
	}
	cr_assert_gt(next_recv, 1000);
	takt_producer_close(p);
	takt_consumer_close(c);
}
