/* SPDX-License-Identifier: MIT */
/*
 * test_hotpath.c - try_send / try_recv in one thread: empty, full, every
 * record size, wrap-around with padding records (checked against a model of
 * the documented lane protocol, byte for byte), size and type errors, and
 * round-robin fairness across lanes.
 */
#define _GNU_SOURCE
#include "common.h"
#include "layout.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

TT_SUITE(hotpath);

static struct takt_lane_stats lane_stats(takt_channel *ch, unsigned lane)
{
	struct takt_lane_stats ls;
	cr_assert_eq(takt_lane_stats_get(ch, lane, &ls), 0);
	return ls;
}

Test(hotpath, empty)
{
	const char *name = tt_name();
	tt_create(name, 4096, 1, 1024);
	takt_consumer *c = tt_consumer(name);
	char buf[64];
	struct takt_msg m;
	for (int i = 0; i < 10; i++)
		cr_assert_eq(takt_try_recv(c, buf, sizeof buf, &m), -EAGAIN);
	cr_assert_eq(takt_try_recv(c, buf, sizeof buf, NULL), -EAGAIN);
	/* a producer that opened and sent nothing changes nothing */
	takt_producer *p = tt_producer(name);
	cr_assert_eq(takt_try_recv(c, buf, sizeof buf, &m), -EAGAIN);
	takt_producer_close(p);
	takt_consumer_close(c);
}

Test(hotpath, one_record)
{
	const char *name = tt_name();
	tt_create(name, 4096, 1, 1024);
	takt_producer *p = tt_producer(name);
	takt_consumer *c = tt_consumer(name);
	cr_assert_eq(takt_producer_lane(p), 0);
	cr_assert_eq(takt_try_send(p, 0x1234, "0123456789abc", 13), 0);
	char buf[64];
	memset(buf, 0, sizeof buf);
	struct takt_msg m;
	memset(&m, 0xff, sizeof m);
	cr_assert_eq(takt_try_recv(c, buf, sizeof buf, &m), 13);
	cr_assert_eq(memcmp(buf, "0123456789abc", 13), 0);
	cr_assert_eq(m.data, buf);
	cr_assert_eq(m.len, 13);
	cr_assert_eq(m.type, 0x1234);
	cr_assert_eq(m.lane, 0);
	cr_assert_eq(takt_try_recv(c, buf, sizeof buf, &m), -EAGAIN);
	/* msg may be NULL */
	cr_assert_eq(takt_try_send(p, 1, "xy", 2), 0);
	cr_assert_eq(takt_try_recv(c, buf, sizeof buf, NULL), 2);
	cr_assert_eq(memcmp(buf, "xy", 2), 0);
	takt_producer_close(p);
	takt_consumer_close(c);
}

Test(hotpath, every_size_0_to_max)
{
	const uint32_t max = 1024;
	const char *name = tt_name();
	tt_create(name, 4096, 1, max);
	takt_producer *p = tt_producer(name);
	takt_consumer *c = tt_consumer(name);
	uint8_t *want = malloc(max + 64), *buf = malloc(max + 64);
	cr_assert(want && buf);
	/* one at a time, then in pairs so that every size also meets the end
	 * of the data area at a different offset */
	for (int pass = 0; pass < 2; pass++) {
		for (uint32_t len = 0; len <= max; len++) {
			uint64_t seq = (uint64_t)pass << 32 | len;
			tt_stream_make(want, len, 7, seq);
			cr_assert_eq(takt_try_send(p, len, want, len), 0, "send len %u", len);
			if (pass == 1 && len < max) {
				cr_assert_eq(takt_try_send(p, len + 1, want, len), 0, "send2 len %u", len);
			}
			struct takt_msg m;
			memset(buf, 0xee, max + 64);
			int rc = takt_try_recv(c, buf, max + 64, &m);
			cr_assert_eq(rc, (int)len, "recv len %u = %d", len, rc);
			cr_assert_eq(m.len, len);
			cr_assert_eq(m.type, len);
			cr_assert_eq(memcmp(buf, want, len), 0, "payload of len %u", len);
			cr_assert_eq(buf[len], 0xee, "wrote past the payload of len %u", len);
			if (pass == 1 && len < max) {
				rc = takt_try_recv(c, buf, max + 64, &m);
				cr_assert_eq(rc, (int)len);
				cr_assert_eq(m.type, len + 1);
				cr_assert_eq(memcmp(buf, want, len), 0);
			}
		}
	}
	cr_assert_eq(takt_try_recv(c, buf, max, NULL), -EAGAIN);
	free(want);
	free(buf);
	takt_producer_close(p);
	takt_consumer_close(c);
}

Test(hotpath, too_large_emsgsize)
{
	const uint32_t max = 300;
	const char *name = tt_name();
	tt_create(name, 4096, 1, max);
	takt_producer *p = tt_producer(name);
	takt_consumer *c = tt_consumer(name);
	static uint8_t big[8192];
	cr_assert_eq(takt_try_send(p, 1, big, max + 1), -EMSGSIZE);
	cr_assert_eq(takt_try_send(p, 1, big, 1024), -EMSGSIZE);
	cr_assert_eq(takt_try_send(p, 1, big, 4096), -EMSGSIZE);
	/* lengths beyond 32 bits must not wrap around to small ones */
	cr_assert_eq(takt_try_send(p, 1, big, ((size_t)1 << 32) + 5), -EMSGSIZE);
	cr_assert_eq(takt_try_send(p, 1, big, SIZE_MAX), -EMSGSIZE);
	char buf[512];
	cr_assert_eq(takt_try_recv(c, buf, sizeof buf, NULL), -EAGAIN, "a refused record was delivered");
	cr_assert_eq(takt_try_send(p, 1, big, max), 0);
	cr_assert_eq(takt_try_recv(c, buf, sizeof buf, NULL), (int)max);
	struct takt_lane_stats ls = lane_stats(takt_producer_channel(p), 0);
	cr_expect_eq(ls.records_sent, 1);
	cr_expect_eq(ls.bytes_sent, max);
	takt_producer_close(p);
	takt_consumer_close(c);
}

Test(hotpath, recv_buffer_too_small_keeps_record)
{
	const char *name = tt_name();
	tt_create(name, 4096, 1, 1024);
	takt_producer *p = tt_producer(name);
	takt_consumer *c = tt_consumer(name);
	uint8_t want[1000], buf[1000];
	tt_fill(want, sizeof want, 3, 3);
	cr_assert_eq(takt_try_send(p, 77, want, 1000), 0);
	cr_assert_eq(takt_try_send(p, 78, "next", 4), 0);
	struct takt_msg m;
	memset(&m, 0, sizeof m);
	cr_assert_eq(takt_try_recv(c, buf, 999, &m), -EMSGSIZE);
	cr_assert_eq(m.len, 1000, "the size needed must be reported, got %u", m.len);
	memset(&m, 0, sizeof m);
	cr_assert_eq(takt_try_recv(c, buf, 0, &m), -EMSGSIZE);
	cr_assert_eq(m.len, 1000);
	cr_assert_eq(takt_try_recv(c, buf, 1, NULL), -EMSGSIZE);
	/* still queued, whole */
	cr_assert_eq(takt_try_recv(c, buf, 1000, &m), 1000);
	cr_assert_eq(m.type, 77);
	cr_assert_eq(memcmp(buf, want, 1000), 0);
	cr_assert_eq(takt_try_recv(c, buf, 4, &m), 4);
	cr_assert_eq(m.type, 78);
	/* a zero-length record fits any buffer */
	cr_assert_eq(takt_try_send(p, 79, want, 0), 0);
	cr_assert_eq(takt_try_recv(c, buf, 0, &m), 0);
	cr_assert_eq(m.type, 79);
	cr_assert_eq(m.len, 0);
	struct takt_lane_stats ls = lane_stats(takt_producer_channel(p), 0);
	cr_expect_eq(ls.records_received, 3, "refused receives must not count");
	cr_expect_eq(ls.bytes_received, 1004);
	takt_producer_close(p);
	takt_consumer_close(c);
}

Test(hotpath, reserved_types_einval)
{
	const char *name = tt_name();
	tt_create(name, 4096, 1, 256);
	takt_producer *p = tt_producer(name);
	takt_consumer *c = tt_consumer(name);
	static const uint32_t bad[] = {TAKT_TYPE_RESERVED, TAKT_TYPE_RESERVED + 1, 0xfffffffeu, 0xffffffffu};
	for (size_t i = 0; i < 4; i++)
		cr_assert_eq(takt_try_send(p, bad[i], "r", 1), -EINVAL, "type 0x%x", bad[i]);
	char buf[16];
	cr_assert_eq(takt_try_recv(c, buf, sizeof buf, NULL), -EAGAIN);
	struct takt_msg m;
	cr_assert_eq(takt_try_send(p, TAKT_TYPE_RESERVED - 1, "ok", 2), 0);
	cr_assert_eq(takt_try_send(p, 0, "z", 1), 0);
	cr_assert_eq(takt_try_recv(c, buf, sizeof buf, &m), 2);
	cr_assert_eq(m.type, TAKT_TYPE_RESERVED - 1);
	cr_assert_eq(takt_try_recv(c, buf, sizeof buf, &m), 1);
	cr_assert_eq(m.type, 0);
	takt_producer_close(p);
	takt_consumer_close(c);
}

/* Full: with records that divide the capacity, exactly (capacity - HEADROOM)
 * / record bytes fit; then the exact remaining room is usable. */
Test(hotpath, full_exact_room)
{
	const uint64_t cap = 1024;
	const char *name = tt_name();
	tt_create(name, cap, 1, 256);
	takt_producer *p = tt_producer(name);
	takt_consumer *c = tt_consumer(name);
	uint8_t want[256], buf[256];
	const uint32_t len = 48; /* 64 bytes a record */
	unsigned n = 0;
	int rc;
	while ((rc = takt_try_send(p, n, want, len)) == 0) {
		n++;
		cr_assert_lt(n, 100, "the ring never fills");
	}
	cr_assert_eq(rc, -EAGAIN);
	cr_assert_eq(n, (cap - TAKT_HEADROOM) / TT_REC(len), "records of %u bytes that fit: %u", TT_REC(len), n);
	cr_assert_eq(takt_try_send(p, 0, want, len), -EAGAIN, "still full");
	/* 1024 - 15*64 = 64 bytes left, 8 of them headroom: a 56-byte record fits */
	uint64_t used = (uint64_t)n * TT_REC(len);
	uint32_t fit = (uint32_t)(cap - used - TAKT_HEADROOM - TAKT_REC_HEADER);
	cr_assert_eq(takt_try_send(p, 1000, want, fit + 1), -EAGAIN);
	cr_assert_eq(takt_try_send(p, 1000, want, fit), 0, "a record of exactly the remaining room (%u)", fit);
	cr_assert_eq(takt_try_send(p, 1001, want, 0), -EAGAIN);
	struct takt_lane_stats ls = lane_stats(takt_producer_channel(p), 0);
	cr_expect_eq(ls.full_events, 4);
	cr_expect_eq(ls.tail, cap - TAKT_HEADROOM);
	/* one out is not enough for the next 64-byte record: the tail is 8
	 * bytes before the end, so it needs 8 bytes of padding as well */
	struct takt_msg m;
	cr_assert_eq(takt_try_recv(c, buf, sizeof buf, &m), (int)len);
	cr_assert_eq(m.type, 0);
	cr_assert_eq(takt_try_send(p, 2000, want, len), -EAGAIN);
	cr_assert_eq(takt_try_recv(c, buf, sizeof buf, &m), (int)len);
	cr_assert_eq(m.type, 1);
	cr_assert_eq(takt_try_send(p, 2000, want, len), 0, "two out, one in (with 8 bytes of padding)");
	cr_expect_eq(lane_stats(takt_producer_channel(p), 0).tail, cap + TT_REC(len));
	for (unsigned i = 2; i < n; i++) {
		cr_assert_eq(takt_try_recv(c, buf, sizeof buf, &m), (int)len);
		cr_assert_eq(m.type, i);
	}
	cr_assert_eq(takt_try_recv(c, buf, sizeof buf, &m), (int)fit);
	cr_assert_eq(m.type, 1000);
	cr_assert_eq(takt_try_recv(c, buf, sizeof buf, &m), (int)len);
	cr_assert_eq(m.type, 2000);
	cr_assert_eq(takt_try_recv(c, buf, sizeof buf, &m), -EAGAIN);
	takt_producer_close(p);
	takt_consumer_close(c);
}

/*
 * A model of one lane, from lane.h and layout.h: a record of payload L at
 * tail p takes rec = 16 + pad8(L) bytes; if rec exceeds the bytes left to
 * the end of the data area, a padding record fills them first; it fits if
 * end + HEADROOM - released <= capacity.  The consumer's head moves past
 * each record it takes (and the padding before it); it releases the head
 * to the producer once it owes capacity / 8 bytes or more, and when a
 * receive finds the lane empty.
 */
struct model_rec {
	uint64_t seq;
	uint32_t len;
	uint64_t start; /* where the record header is (after padding) */
	uint64_t end;
	uint64_t pad_at; /* position of the padding before it, or UINT64_MAX */
};

struct model {
	uint64_t cap, head, released, tail;
	struct model_rec q[4096];
	unsigned qh, qt;
};

static int model_send(struct model *md, uint64_t seq, uint32_t len)
{
	uint64_t rec = TT_REC(len);
	uint64_t to_end = md->cap - (md->tail & (md->cap - 1));
	uint64_t pad = rec <= to_end ? 0 : to_end;
	uint64_t end = md->tail + pad + rec;
	if (end + TAKT_HEADROOM - md->released > md->cap)
		return -EAGAIN;
	struct model_rec *r = &md->q[md->qt++ % 4096];
	r->seq = seq;
	r->len = len;
	r->pad_at = pad ? md->tail : UINT64_MAX;
	r->start = md->tail + pad;
	r->end = end;
	md->tail = end;
	return 0;
}

static struct model_rec *model_recv(struct model *md)
{
	if (md->qh == md->qt) {
		md->released = md->head;
		return NULL;
	}
	struct model_rec *r = &md->q[md->qh++ % 4096];
	md->head = r->end;
	if (md->head - md->released >= md->cap / 8)
		md->released = md->head;
	return r;
}

static void model_run(uint64_t cap, uint32_t max, unsigned ops, uint64_t seed, int bias_sizes)
{
	const char *name = tt_name();
	tt_create(name, cap, 1, max);
	takt_producer *p = tt_producer(name);
	takt_consumer *c = tt_consumer(name);
	takt_channel *ch = takt_producer_channel(p);
	struct tt_raw raw;
	tt_raw_map(name, &raw);
	uint8_t *data = raw.base + TAKT_LANES_OFFSET + TAKT_LANE_DATA_OFFSET;
	static struct model md;
	memset(&md, 0, sizeof md);
	md.cap = cap;
	uint8_t *want = malloc(max + 8), *buf = malloc(max + 8);
	cr_assert(want && buf);
	uint64_t seq = 0, x = seed;
	unsigned paddings = 0, fulls = 0;
	for (unsigned op = 0; op < ops; op++) {
		x = tt_mix64(x);
		unsigned burst = 1 + (unsigned)(x % 7);
		if ((x >> 8) & 1) {
			/* send a burst */
			for (unsigned k = 0; k < burst; k++) {
				x = tt_mix64(x);
				uint32_t len = bias_sizes ? (uint32_t)tt_stream_len(seed, seq, max)
							  : (uint32_t)(x % (max + 1));
				tt_stream_make(want, len, seed, seq);
				int expect = model_send(&md, seq, len);
				int rc = takt_try_send(p, (uint32_t)(seq & 0x7fffffff), want, len);
				cr_assert_eq(rc, expect,
					     "op %u: send seq %llu len %u at tail %llu head %llu: got %d, model %d (seed %llu)",
					     op, (unsigned long long)seq, len, (unsigned long long)md.tail,
					     (unsigned long long)md.head, rc, expect, (unsigned long long)seed);
				if (rc == -EAGAIN) {
					fulls++;
					break;
				}
				struct model_rec *r = &md.q[(md.qt - 1) % 4096];
				if (r->pad_at != UINT64_MAX) {
					/* the padding record the protocol describes */
					paddings++;
					uint64_t w;
					memcpy(&w, data + (r->pad_at & (cap - 1)), 8);
					cr_assert_eq(w, r->pad_at | TAKT_COMMIT_BIT | TAKT_PADDING_BIT,
						     "padding commit word at %llu: 0x%llx",
						     (unsigned long long)r->pad_at, (unsigned long long)w);
				}
				uint64_t w;
				memcpy(&w, data + (r->start & (cap - 1)), 8);
				cr_assert_eq(w, r->start | TAKT_COMMIT_BIT, "commit word at %llu",
					     (unsigned long long)r->start);
				struct takt_lane_stats ls = lane_stats(ch, 0);
				cr_assert_eq(ls.tail, md.tail, "published tail %llu, model %llu",
					     (unsigned long long)ls.tail, (unsigned long long)md.tail);
				seq++;
			}
		} else {
			for (unsigned k = 0; k < burst; k++) {
				struct model_rec *r = model_recv(&md);
				struct takt_msg m;
				int rc = takt_try_recv(c, buf, max + 8, &m);
				if (!r) {
					cr_assert_eq(rc, -EAGAIN, "op %u: model empty, recv = %d", op, rc);
					break;
				}
				cr_assert_eq(rc, (int)r->len, "op %u: recv seq %llu = %d, want len %u (seed %llu)",
					     op, (unsigned long long)r->seq, rc, r->len,
					     (unsigned long long)seed);
				cr_assert_eq(m.type, (uint32_t)(r->seq & 0x7fffffff));
				const char *why = tt_stream_verify(buf, (size_t)rc, seed, r->seq);
				cr_assert_null(why, "seq %llu: %s", (unsigned long long)r->seq, why);
				struct takt_lane_stats ls = lane_stats(ch, 0);
				cr_assert_eq(ls.head, md.head, "stored position %llu, model %llu",
					     (unsigned long long)ls.head, (unsigned long long)md.head);
				struct takt_seg_lane *lc = (struct takt_seg_lane *)(raw.base + TAKT_LANES_OFFSET);
				cr_assert_eq(atomic_load(&lc->head), md.released,
					     "released head %llu, model %llu",
					     (unsigned long long)atomic_load(&lc->head),
					     (unsigned long long)md.released);
			}
		}
	}
	/* drain */
	struct model_rec *r;
	while ((r = model_recv(&md)) != NULL) {
		int rc = takt_try_recv(c, buf, max + 8, NULL);
		cr_assert_eq(rc, (int)r->len);
		cr_assert_null(tt_stream_verify(buf, (size_t)rc, seed, r->seq));
	}
	cr_assert_eq(takt_try_recv(c, buf, max + 8, NULL), -EAGAIN);
	cr_assert_gt(md.tail / cap, 10, "too few laps to mean anything");
	cr_assert_gt(paddings, 0, "no padding record was ever needed");
	cr_assert_gt(fulls, 0, "the ring was never full");
	tt_raw_unmap(&raw);
	free(want);
	free(buf);
	takt_producer_close(p);
	takt_consumer_close(c);
}

Test(hotpath, wrap_model_small_ring)
{
	model_run(1024, 256, 20000, tt_seed(), 0);
}

Test(hotpath, wrap_model_edge_sizes)
{
	model_run(2048, 512, 20000, tt_seed(), 1);
}

Test(hotpath, wrap_model_larger_ring)
{
	model_run(16384, 4096, 20000, tt_seed(), 0);
}

/* The record that exactly reaches the end of the data area needs no
 * padding; one byte more needs it. */
Test(hotpath, wrap_exact_fit_and_padding)
{
	const uint64_t cap = 1024;
	const char *name = tt_name();
	tt_create(name, cap, 1, 256);
	takt_producer *p = tt_producer(name);
	takt_consumer *c = tt_consumer(name);
	takt_channel *ch = takt_producer_channel(p);
	uint8_t buf[256];
	/* 7 records of 128 bytes (payload 112) -> tail 896, consume them */
	for (int i = 0; i < 7; i++) {
		cr_assert_eq(takt_try_send(p, 1, buf, 112), 0);
		cr_assert_eq(takt_try_recv(c, buf, sizeof buf, NULL), 112);
	}
	/* 128 left to the end: a 128-byte record fits exactly, no padding */
	cr_assert_eq(takt_try_send(p, 2, buf, 112), 0);
	cr_assert_eq(lane_stats(ch, 0).tail, 1024);
	cr_assert_eq(takt_try_recv(c, buf, sizeof buf, NULL), 112);
	/* again to 896 + 1024, then 120 bytes of payload: 136 > 128 -> padding */
	for (int i = 0; i < 7; i++) {
		cr_assert_eq(takt_try_send(p, 1, buf, 112), 0);
		cr_assert_eq(takt_try_recv(c, buf, sizeof buf, NULL), 112);
	}
	cr_assert_eq(lane_stats(ch, 0).tail, 1024 + 896);
	cr_assert_eq(takt_try_send(p, 3, buf, 120), 0);
	cr_assert_eq(lane_stats(ch, 0).tail, 2048 + 136, "padding of 128 then a record of 136");
	struct takt_msg m;
	cr_assert_eq(takt_try_recv(c, buf, sizeof buf, &m), 120);
	cr_assert_eq(m.type, 3);
	cr_assert_eq(lane_stats(ch, 0).head, 2048 + 136);
	takt_producer_close(p);
	takt_consumer_close(c);
}

/* Padding plus record must fit as a whole; nothing is half-published. */
Test(hotpath, wrap_when_nearly_full)
{
	const uint64_t cap = 1024;
	const char *name = tt_name();
	tt_create(name, cap, 1, 256);
	takt_producer *p = tt_producer(name);
	takt_consumer *c = tt_consumer(name);
	takt_channel *ch = takt_producer_channel(p);
	uint8_t buf[256];
	/* tail at 896 with head at 896 */
	for (int i = 0; i < 7; i++) {
		cr_assert_eq(takt_try_send(p, 1, buf, 112), 0);
		cr_assert_eq(takt_try_recv(c, buf, sizeof buf, NULL), 112);
	}
	/* fill: 112 bytes at 896 (to 1008, 16 left) ... */
	cr_assert_eq(takt_try_send(p, 10, buf, 96), 0); /* 896..1008 */
	/* ... then a record that needs padding (16 bytes) plus 256+16 bytes at 1024 */
	cr_assert_eq(takt_try_send(p, 11, buf, 256), 0); /* pad 1008..1024, rec 1024..1296 */
	for (int i = 0; i < 2; i++)
		cr_assert_eq(takt_try_send(p, 12 + i, buf, 256), 0); /* ..1568, ..1840 */
	/* at 1840 the next needs 208 bytes of padding and 272 of record:
	 * 2320 + 8 - 896 > 1024 */
	cr_assert_eq(takt_try_send(p, 99, buf, 256), -EAGAIN);
	cr_assert_eq(lane_stats(ch, 0).tail, 1840);
	struct takt_msg m;
	for (uint32_t t = 10; t < 14; t++) {
		int rc = takt_try_recv(c, buf, sizeof buf, &m);
		cr_assert_eq(m.type, t, "type %u, want %u (rc %d)", m.type, t, rc);
	}
	cr_assert_eq(takt_try_recv(c, buf, sizeof buf, &m), -EAGAIN);
	takt_producer_close(p);
	takt_consumer_close(c);
}

Test(hotpath, lane_burst_zero_einval)
{
	const char *name = tt_name();
	tt_create(name, 4096, 2, 256);
	takt_consumer *c = tt_consumer(name);
	cr_assert_eq(takt_consumer_set_lane_burst(c, 0), -EINVAL);
	cr_assert_eq(takt_consumer_set_lane_burst(c, 1), 0);
	cr_assert_eq(takt_consumer_set_lane_burst(c, 1000000), 0);
	takt_consumer_close(c);
}

/* Round robin: never more than `burst` records in a row from one lane while
 * another lane has records waiting; FIFO within each lane. */
static void check_fairness(unsigned lanes, unsigned per_lane, unsigned burst)
{
	const char *name = tt_name();
	tt_create(name, 16384, lanes, 256);
	takt_producer *p[8];
	cr_assert_leq(lanes, 8);
	for (unsigned i = 0; i < lanes; i++)
		p[i] = tt_producer(name);
	takt_consumer *c = tt_consumer(name);
	if (burst)
		cr_assert_eq(takt_consumer_set_lane_burst(c, burst), 0);
	else
		burst = 16; /* the documented default */
	for (unsigned k = 0; k < per_lane; k++)
		for (unsigned i = 0; i < lanes; i++) {
			uint32_t v[2] = {takt_producer_lane(p[i]), k};
			cr_assert_eq(takt_try_send(p[i], 5, v, sizeof v), 0);
		}
	unsigned next[64] = {0}, left[64];
	for (unsigned i = 0; i < 64; i++)
		left[i] = 0;
	for (unsigned i = 0; i < lanes; i++)
		left[takt_producer_lane(p[i])] = per_lane;
	unsigned run = 0, last = ~0u, total = lanes * per_lane;
	for (unsigned n = 0; n < total; n++) {
		uint32_t v[2];
		struct takt_msg m;
		cr_assert_eq(takt_try_recv(c, v, sizeof v, &m), (int)sizeof v, "record %u", n);
		cr_assert_eq(m.lane, v[0], "record from lane %u says lane %u", m.lane, v[0]);
		cr_assert_eq(v[1], next[m.lane], "lane %u: got #%u, want #%u", m.lane, v[1], next[m.lane]);
		next[m.lane]++;
		left[m.lane]--;
		if (m.lane == last) {
			run++;
		} else {
			run = 1;
			last = m.lane;
		}
		unsigned others = 0;
		for (unsigned i = 0; i < 64; i++)
			if (i != m.lane)
				others += left[i];
		if (others)
			cr_assert_leq(run, burst, "%u records in a row from lane %u with burst %u", run,
				      m.lane, burst);
	}
	uint32_t spare[2];
	cr_assert_eq(takt_try_recv(c, spare, sizeof spare, NULL), -EAGAIN);
	for (unsigned i = 0; i < lanes; i++)
		takt_producer_close(p[i]);
	takt_consumer_close(c);
}

Test(hotpath, fairness_burst_1)
{
	check_fairness(3, 20, 1);
}

Test(hotpath, fairness_burst_3)
{
	check_fairness(4, 30, 3);
}

Test(hotpath, fairness_default_burst)
{
	check_fairness(2, 100, 0);
}

/* Many lanes, random sends and receives: FIFO per lane, nothing lost. */
Test(hotpath, mpsc_interleaved)
{
	uint64_t seed = tt_seed();
	const unsigned lanes = 5;
	const char *name = tt_name();
	tt_create(name, 2048, lanes, 256);
	takt_producer *p[5];
	uint64_t sent[64] = {0}, got[64] = {0};
	for (unsigned i = 0; i < lanes; i++)
		p[i] = tt_producer(name);
	takt_consumer *c = tt_consumer(name);
	cr_assert_eq(takt_consumer_set_lane_burst(c, 2), 0);
	uint8_t buf[256 + 8], want[256];
	uint64_t x = seed;
	for (unsigned op = 0; op < 30000; op++) {
		x = tt_mix64(x);
		if (x % 3) {
			unsigned i = (unsigned)((x >> 8) % lanes);
			unsigned lane = takt_producer_lane(p[i]);
			size_t len = tt_stream_len(lane, sent[lane], 256);
			tt_stream_make(want, len, lane, sent[lane]);
			int rc = takt_try_send(p[i], (uint32_t)(sent[lane] & 0xffffff), want, len);
			cr_assert(rc == 0 || rc == -EAGAIN, "send = %d", rc);
			if (rc == 0)
				sent[lane]++;
		} else {
			struct takt_msg m;
			int rc = takt_try_recv(c, buf, sizeof buf, &m);
			if (rc == -EAGAIN)
				continue;
			cr_assert_geq(rc, 0, "recv = %d", rc);
			cr_assert_lt(m.lane, lanes);
			cr_assert_eq(m.type, (uint32_t)(got[m.lane] & 0xffffff));
			cr_assert_eq((size_t)rc, tt_stream_len(m.lane, got[m.lane], 256));
			const char *why = tt_stream_verify(buf, (size_t)rc, m.lane, got[m.lane]);
			cr_assert_null(why, "lane %u #%llu: %s (seed %llu)", m.lane,
				       (unsigned long long)got[m.lane], why, (unsigned long long)seed);
			got[m.lane]++;
		}
	}
	struct takt_msg m;
	int rc;
	while ((rc = takt_try_recv(c, buf, sizeof buf, &m)) >= 0) {
		cr_assert_null(tt_stream_verify(buf, (size_t)rc, m.lane, got[m.lane]));
		got[m.lane]++;
	}
	cr_assert_eq(rc, -EAGAIN);
	for (unsigned l = 0; l < lanes; l++)
		cr_assert_eq(got[l], sent[l], "lane %u: sent %llu, received %llu", l,
			     (unsigned long long)sent[l], (unsigned long long)got[l]);
	for (unsigned i = 0; i < lanes; i++)
		takt_producer_close(p[i]);
	takt_consumer_close(c);
}

/* A padding record of only 8 bytes (less than a record header) at the end of
 * a lane, and at the end of the last lane, whose data area ends exactly at
 * the end of the segment (9 lanes of 4 KiB: 640 + 9 * 384 = 4096, so the
 * segment has no slack after the last data area). */
Test(hotpath, padding_of_8_bytes_at_segment_end)
{
	const uint64_t cap = 4096;
	const unsigned lanes = 9;
	cr_assert_eq((TAKT_LANES_OFFSET + lanes * takt_lane_stride(cap)) % 4096, 0,
		     "the last lane must end at the end of the segment");
	const char *name = tt_name();
	tt_create(name, cap, lanes, 256);
	takt_channel *ch = NULL;
	cr_assert_eq(takt_channel_open(name, 0, &ch), 0);
	takt_producer *p[9];
	for (unsigned i = 0; i < lanes; i++)
		cr_assert_eq(takt_producer_attach(ch, &p[i]), 0);
	takt_producer *last = NULL, *prev = NULL;
	for (unsigned i = 0; i < lanes; i++) {
		if (takt_producer_lane(p[i]) == lanes - 1)
			last = p[i];
		if (takt_producer_lane(p[i]) == lanes - 2)
			prev = p[i];
	}
	cr_assert(last && prev);
	takt_consumer *c = tt_consumer(name);
	uint8_t buf[256];
	struct takt_msg m;
	/* the last lane and the one before it */
	takt_producer *two[2] = {prev, last};
	unsigned sent_last = 0;
	for (int k = 0; k < 2; k++) {
		uint64_t t = 0;
		unsigned sent = 0;
		while (cap - 8 - t > 256) {
			cr_assert_eq(takt_try_send(two[k], 1, buf, 120), 0);
			cr_assert_eq(takt_try_recv(c, buf, sizeof buf, NULL), 120);
			t += 136;
			sent++;
		}
		uint32_t fill = (uint32_t)(cap - 8 - t - 16);
		cr_assert_eq(takt_try_send(two[k], 2, buf, fill), 0);
		cr_assert_eq(takt_try_recv(c, buf, sizeof buf, NULL), (int)fill);
		sent += 2;
		sent_last = sent;
		unsigned lane = takt_producer_lane(two[k]);
		cr_assert_eq(lane_stats(ch, lane).tail, cap - 8);
		/* 8 bytes to the end: padding of 8, record at the start */
		tt_fill(buf, 100, lane, 9);
		cr_assert_eq(takt_try_send(two[k], 3, buf, 100), 0);
		cr_assert_eq(lane_stats(ch, lane).tail, cap + TT_REC(100));
		uint8_t got[256];
		cr_assert_eq(takt_try_recv(c, got, sizeof got, &m), 100);
		cr_assert_eq(m.lane, lane);
		cr_assert_eq(m.type, 3);
		cr_assert(tt_check(got, 100, lane, 9));
		cr_assert_eq(lane_stats(ch, lane).head, cap + TT_REC(100));
	}
	/* the padding did not spill into the next lane's control block */
	struct takt_lane_stats ls = lane_stats(ch, lanes - 1);
	cr_assert_eq(ls.records_sent, sent_last);
	cr_assert_eq(ls.broken, 0);
	for (unsigned i = 0; i < lanes; i++) {
		cr_assert_eq(takt_try_send(p[i], 4, "z", 1), 0);
		cr_assert_eq(takt_try_recv(c, buf, sizeof buf, &m), 1);
	}
	cr_assert_eq(takt_try_recv(c, buf, sizeof buf, &m), -EAGAIN);
	takt_consumer_close(c);
	for (unsigned i = 0; i < lanes; i++)
		takt_producer_close(p[i]);
	cr_assert_eq(takt_channel_close(ch), 0);
}

/*
 * The consumer stores its position after every record but releases its
 * head to the producer lazily (lane.h, takt_lane_rx_owes_release): once
 * it owes capacity / 8 bytes, at an empty poll, and at close.
 */
Test(hotpath, head_released_in_steps)
{
	const char *name = tt_name();
	const uint64_t cap = 4096, step = cap / 8, rec = TT_REC(48);
	tt_create(name, cap, 1, 256);
	takt_producer *p = tt_producer(name);
	takt_consumer *c = tt_consumer(name);
	struct tt_raw raw;
	tt_raw_map(name, &raw);
	struct takt_seg_lane *lc = (struct takt_seg_lane *)(raw.base + TAKT_LANES_OFFSET);
	uint8_t buf[256] = {0};
	for (unsigned i = 0; i < 41; i++) /* 41 x 64 bytes: not a multiple of the step */
		cr_assert_eq(takt_try_send(p, 1, buf, 48), 0);
	uint64_t released = 0;
	for (uint64_t k = 1; k <= 30; k++) {
		cr_assert_eq(takt_try_recv(c, buf, sizeof buf, NULL), 48);
		cr_assert_eq(atomic_load(&lc->consumed), k * rec, "position after every record");
		if (k * rec - released >= step)
			released = k * rec;
		cr_assert_eq(atomic_load(&lc->head), released, "record %llu: released %llu, want %llu",
			     (unsigned long long)k, (unsigned long long)atomic_load(&lc->head),
			     (unsigned long long)released);
	}
	cr_assert_lt(released, 30 * rec, "the last records are still owed");
	for (unsigned k = 0; k < 11; k++)
		cr_assert_eq(takt_try_recv(c, buf, sizeof buf, NULL), 48);
	cr_assert_eq(atomic_load(&lc->head), 40 * rec, "released at the step");
	cr_assert_eq(takt_try_recv(c, buf, sizeof buf, NULL), -EAGAIN);
	cr_assert_eq(atomic_load(&lc->head), 41 * rec, "an empty poll releases everything");
	/* one record owed, then close */
	cr_assert_eq(takt_try_send(p, 1, buf, 48), 0);
	cr_assert_eq(takt_try_recv(c, buf, sizeof buf, NULL), 48);
	cr_assert_eq(atomic_load(&lc->head), 41 * rec);
	takt_consumer_close(c);
	cr_assert_eq(atomic_load(&lc->head), 42 * rec, "close releases");
	takt_producer_close(p);
	tt_raw_unmap(&raw);
}

/*
 * A producer that parked took space the consumer had read but not
 * released, so records lie beyond released head + capacity.  A new
 * producer of the lane must find the true tail by walking from the
 * consumer's position, not from the released head (which would meet the
 * overwritten record and stop, or call the lane corrupt).
 */
Test(hotpath, takeover_after_claimed_space)
{
	const char *name = tt_name();
	tt_create(name, 1024, 1, 256);
	takt_producer *p = tt_producer(name);
	takt_consumer *c = tt_consumer(name);
	uint8_t buf[256];
	uint32_t n = 0;
	for (;; n++) {
		tt_fill(buf, 48, 8, n);
		if (takt_try_send(p, n, buf, 48) != 0)
			break;
	}
	cr_assert_eq(takt_try_recv(c, buf, sizeof buf, NULL), 48);
	tt_fill(buf, 48, 8, n);
	cr_assert_eq(takt_send(p, n, buf, 48, takt_deadline_in(10ull * 1000 * 1000 * 1000)), 0);
	n++;
	uint64_t tail = lane_stats(takt_producer_channel(p), 0).tail;
	cr_assert_gt(tail + TAKT_HEADROOM, 1024, "beyond what the released head (0) allowed");
	takt_producer_close(p);
	p = tt_producer(name);
	cr_assert_eq(lane_stats(takt_producer_channel(p), 0).tail, tail,
		     "the new producer continues at the true tail");
	for (uint32_t want = 1; want < n; want++) {
		struct takt_msg m;
		cr_assert_eq(takt_try_recv(c, buf, sizeof buf, &m), 48, "record %u", want);
		cr_assert_eq(m.type, want);
		cr_assert(tt_check(buf, 48, 8, want), "record %u intact", want);
	}
	cr_assert_eq(takt_try_recv(c, buf, sizeof buf, NULL), -EAGAIN);
	takt_producer_close(p);
	takt_consumer_close(c);
}
