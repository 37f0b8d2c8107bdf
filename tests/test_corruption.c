/* SPDX-License-Identifier: MIT */
/*
 * test_corruption.c - a hostile third party writes adversarial values into a
 * live segment through its own raw mapping (offsets from src/layout.h).
 * Every operation must return an error (-EBADMSG for a corrupted lane) and
 * never crash, hang or touch memory it does not own; run under ASan.
 */
#define _GNU_SOURCE
#include "common.h"
#include "layout.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

TT_SUITE(corruption);

#define CAP 1024u
#define MAXREC 256u

static struct takt_seg_lane *raw_lane(struct tt_raw *raw, unsigned k, uint64_t cap)
{
	return (struct takt_seg_lane *)(raw->base + TAKT_LANES_OFFSET + (uint64_t)k * takt_lane_stride(cap));
}

static uint8_t *raw_data(struct tt_raw *raw, unsigned k, uint64_t cap)
{
	return (uint8_t *)raw_lane(raw, k, cap) + TAKT_LANE_DATA_OFFSET;
}

static struct takt_rec_header *raw_rec(struct tt_raw *raw, unsigned k, uint64_t cap, uint64_t pos)
{
	return (struct takt_rec_header *)(raw_data(raw, k, cap) + (pos & (cap - 1)));
}

static struct takt_lane_stats lane_stats(takt_channel *ch, unsigned lane)
{
	struct takt_lane_stats ls;
	cr_assert_eq(takt_lane_stats_get(ch, lane, &ls), 0);
	return ls;
}

struct live {
	const char *name;
	takt_producer *p;
	takt_consumer *c;
	takt_channel *ro;
	struct tt_raw raw;
};

static void live_open(struct live *l, uint64_t cap, uint32_t lanes, uint32_t max)
{
	l->name = tt_name();
	tt_create(l->name, cap, lanes, max);
	l->p = tt_producer(l->name);
	l->c = tt_consumer(l->name);
	cr_assert_eq(takt_channel_open(l->name, TAKT_OPEN_RDONLY, &l->ro), 0);
	tt_raw_map(l->name, &l->raw);
}

static void live_close(struct live *l)
{
	if (l->p)
		takt_producer_close(l->p);
	if (l->c)
		takt_consumer_close(l->c);
	cr_assert_eq(takt_channel_close(l->ro), 0);
	tt_raw_unmap(&l->raw);
	/* unlink works on a damaged channel and leaves nothing */
	cr_assert_eq(takt_unlink(l->name), 0);
	cr_assert_eq(tt_leftovers(l->name), 0);
	tt_untrack(l->name);
}

/* Fill lane 0 with 48-byte records (64 bytes each) until they no longer fit;
 * returns how many (15 in a 1 KiB ring; 56 bytes stay free). */
static unsigned fill(takt_producer *p)
{
	uint8_t buf[48] = {0};
	unsigned n = 0;
	int rc;
	while ((rc = takt_try_send(p, n, buf, sizeof buf)) == 0)
		n++;
	cr_assert_eq(rc, -EAGAIN);
	return n;
}

/* Fill lane 0 until not even an empty record fits; returns how many. */
static unsigned fill_full(takt_producer *p)
{
	unsigned n = fill(p);
	int rc;
	uint8_t z[8] = {0};
	while ((rc = takt_try_send(p, n, z, 0)) == 0)
		n++;
	cr_assert_eq(rc, -EAGAIN);
	return n;
}

/* Every producer operation reports the broken lane. */
static void expect_producer_broken(takt_producer *p, const char *what)
{
	uint8_t buf[16] = {0};
	int rc = takt_try_send(p, 1, buf, 8);
	cr_assert_eq(rc, -EBADMSG, "%s: try_send = %d (%s)", what, rc, takt_strerror(rc));
	rc = takt_try_send(p, 1, buf, 0);
	cr_expect_eq(rc, -EBADMSG, "%s: second try_send = %d", what, rc);
	void *d = NULL;
	rc = takt_reserve(p, 8, &d);
	cr_expect_eq(rc, -EBADMSG, "%s: reserve = %d", what, rc);
	struct takt_msg m = {.data = buf, .len = 8, .type = 1};
	rc = takt_try_send_batch(p, &m, 1);
	cr_expect_eq(rc, -EBADMSG, "%s: send_batch = %d", what, rc);
}

/* Every consumer operation reports the broken lane (1-lane channel), and the
 * lane shows broken=1 to other processes. */
static void expect_consumer_broken(struct live *l, const char *what)
{
	uint8_t buf[MAXREC + 64];
	struct takt_msg m, ms[4];
	for (int i = 0; i < 3; i++) {
		int rc = takt_try_recv(l->c, buf, sizeof buf, &m);
		cr_assert_eq(rc, -EBADMSG, "%s: try_recv #%d = %d (%s)", what, i, rc, takt_strerror(rc));
	}
	int rc = takt_peek(l->c, &m);
	cr_expect_eq(rc, -EBADMSG, "%s: peek = %d", what, rc);
	rc = takt_try_recv_batch(l->c, ms, 4, buf, sizeof buf);
	cr_expect_eq(rc, -EBADMSG, "%s: recv_batch = %d", what, rc);
	cr_expect_eq(lane_stats(l->ro, 0).broken, 1, "%s: lane not reported broken", what);
}

/* ---- the consumer's head, seen by the producer ------------------------- */

Test(corruption, head_far_beyond_tail)
{
	struct live l;
	live_open(&l, CAP, 1, MAXREC);
	unsigned n = fill_full(l.p);
	struct takt_seg_lane *lane = raw_lane(&l.raw, 0, CAP);
	uint64_t tail = atomic_load(&lane->tail);
	atomic_store(&lane->head, tail + (1ull << 20));
	expect_producer_broken(l.p, "head = tail + 1 MiB");
	/* the consumer is unaffected: it never trusts the shared head */
	uint8_t buf[64];
	for (unsigned i = 0; i < n; i++)
		cr_assert_geq(takt_try_recv(l.c, buf, sizeof buf, NULL), 0);
	live_close(&l);
}

Test(corruption, head_ahead_of_tail_by_one_record)
{
	struct live l;
	live_open(&l, CAP, 1, MAXREC);
	fill_full(l.p);
	struct takt_seg_lane *lane = raw_lane(&l.raw, 0, CAP);
	uint64_t tail = atomic_load(&lane->tail);
	atomic_store(&lane->head, tail + 64);
	expect_producer_broken(l.p, "head = tail + 64");
	live_close(&l);
}

Test(corruption, head_max)
{
	struct live l;
	live_open(&l, CAP, 1, MAXREC);
	fill_full(l.p);
	atomic_store(&raw_lane(&l.raw, 0, CAP)->head, UINT64_MAX - 7);
	expect_producer_broken(l.p, "head = 2^64 - 8");
	live_close(&l);
}

Test(corruption, head_far_behind)
{
	struct live l;
	live_open(&l, CAP, 1, MAXREC);
	uint8_t buf[64] = {0};
	/* a few laps, so that the tail is well past 2 * capacity */
	for (int i = 0; i < 100; i++) {
		cr_assert_eq(takt_try_send(l.p, 1, buf, 48), 0);
		cr_assert_eq(takt_try_recv(l.c, buf, sizeof buf, NULL), 48);
	}
	fill_full(l.p);
	struct takt_seg_lane *lane = raw_lane(&l.raw, 0, CAP);
	uint64_t tail = atomic_load(&lane->tail);
	cr_assert_gt(tail, 4 * CAP);
	atomic_store(&lane->head, tail - 3 * CAP);
	expect_producer_broken(l.p, "head = tail - 3 * capacity");
	live_close(&l);
}

Test(corruption, head_misaligned)
{
	struct live l;
	live_open(&l, CAP, 1, MAXREC);
	fill_full(l.p);
	/* 68 would make room for one more record if it were believed, and the
	 * producer would overwrite record 0 that nobody consumed */
	atomic_store(&raw_lane(&l.raw, 0, CAP)->head, 68);
	expect_producer_broken(l.p, "head = 68 (misaligned)");
	live_close(&l);
}

Test(corruption, head_slightly_behind)
{
	struct live l;
	live_open(&l, CAP, 1, MAXREC);
	uint8_t buf[64];
	unsigned n = fill(l.p);
	cr_assert_eq(takt_try_recv(l.c, buf, sizeof buf, NULL), 48);
	cr_assert_eq(takt_try_recv(l.c, buf, sizeof buf, NULL), 48);
	/* the producer sees head 128 and fills the room */
	unsigned extra = 0;
	int rc;
	while ((rc = takt_try_send(l.p, 100 + extra, buf, 48)) == 0)
		extra++;
	cr_assert_eq(rc, -EAGAIN);
	cr_assert_eq(extra, 2);
	/* the head goes backwards: refused, or at least never trusted for room */
	atomic_store(&raw_lane(&l.raw, 0, CAP)->head, 64);
	rc = takt_try_send(l.p, 200, buf, 48);
	cr_assert(rc == -EAGAIN || rc == -EBADMSG, "head moved backwards: try_send = %d", rc);
	rc = takt_try_send(l.p, 201, buf, 0);
	cr_assert(rc == -EAGAIN || rc == -EBADMSG, "head moved backwards: try_send(0) = %d", rc);
	/* nothing was overwritten: every record arrives intact */
	struct takt_msg m;
	for (unsigned i = 2; i < n; i++) {
		cr_assert_eq(takt_try_recv(l.c, buf, sizeof buf, &m), 48);
		cr_assert_eq(m.type, i);
	}
	for (unsigned i = 0; i < extra; i++) {
		cr_assert_eq(takt_try_recv(l.c, buf, sizeof buf, &m), 48);
		cr_assert_eq(m.type, 100 + i);
	}
	cr_assert_eq(takt_try_recv(l.c, buf, sizeof buf, &m), -EAGAIN);
	live_close(&l);
}

/* ---- record headers, seen by the consumer ------------------------------ */

static void corrupt_len(uint32_t bad_len, const char *what)
{
	struct live l;
	live_open(&l, CAP, 1, MAXREC);
	uint8_t buf[64] = {0};
	cr_assert_eq(takt_try_send(l.p, 1, "good", 4), 0);
	cr_assert_eq(takt_try_send(l.p, 2, buf, 10), 0);
	cr_assert_eq(takt_try_send(l.p, 3, buf, 10), 0);
	/* the second record: its commit word stays valid */
	struct takt_rec_header *h = raw_rec(&l.raw, 0, CAP, TT_REC(4));
	cr_assert_eq(atomic_load(&h->commit), TT_REC(4) | TAKT_COMMIT_BIT);
	atomic_store(&h->len, bad_len);
	cr_assert_eq(takt_try_recv(l.c, buf, sizeof buf, NULL), 4, "the record before is fine");
	expect_consumer_broken(&l, what);
	live_close(&l);
}

Test(corruption, record_len_huge)
{
	corrupt_len(UINT32_MAX, "len 0xffffffff");
}

Test(corruption, record_len_2g)
{
	corrupt_len(0x80000000u, "len 2^31");
}

Test(corruption, record_len_capacity)
{
	corrupt_len(CAP, "len = capacity");
}

Test(corruption, record_len_max_plus_one)
{
	corrupt_len(MAXREC + 1, "len = max_record + 1");
}

/* A record whose (valid, <= max_record) length runs past the end of the
 * data area. */
Test(corruption, record_runs_past_the_end)
{
	struct live l;
	live_open(&l, CAP, 1, MAXREC);
	uint8_t buf[MAXREC];
	/* head = tail = 960, 64 bytes to the end */
	for (int i = 0; i < 15; i++) {
		cr_assert_eq(takt_try_send(l.p, 1, buf, 48), 0);
		cr_assert_eq(takt_try_recv(l.c, buf, sizeof buf, NULL), 48);
	}
	cr_assert_eq(takt_try_send(l.p, 2, buf, 8), 0); /* at 960, 24 bytes */
	struct takt_rec_header *h = raw_rec(&l.raw, 0, CAP, 960);
	cr_assert_eq(atomic_load(&h->commit), 960 | TAKT_COMMIT_BIT);
	atomic_store(&h->len, 100); /* 16 + 104 > 64 */
	expect_consumer_broken(&l, "len runs past the end of the data area");
	live_close(&l);
}

/* Forged headers for the position the consumer expects next, on an empty
 * ring (no producer involved). */
static void forge_at_head(uint64_t word_bits, uint32_t len, const char *what, int advance)
{
	struct live l;
	live_open(&l, CAP, 1, MAXREC);
	uint8_t buf[MAXREC];
	for (int i = 0; i < advance; i++) {
		cr_assert_eq(takt_try_send(l.p, 1, buf, 112), 0);
		cr_assert_eq(takt_try_recv(l.c, buf, sizeof buf, NULL), 112);
	}
	uint64_t head = lane_stats(l.ro, 0).head;
	cr_assert_eq(head, (uint64_t)advance * 128);
	struct takt_rec_header *h = raw_rec(&l.raw, 0, CAP, head);
	atomic_store(&h->len, len);
	atomic_store(&h->type, 5);
	atomic_store(&h->commit, head | word_bits);
	expect_consumer_broken(&l, what);
	live_close(&l);
}

Test(corruption, forged_commit_len_over_max)
{
	forge_at_head(TAKT_COMMIT_BIT, MAXREC + 1, "forged record, len max+1", 3);
}

Test(corruption, forged_commit_len_huge)
{
	forge_at_head(TAKT_COMMIT_BIT, 0xfffffff0u, "forged record, len huge", 5);
}

Test(corruption, forged_padding_at_lap_start)
{
	/* padding at index 0 would fill a whole lap: never written */
	forge_at_head(TAKT_COMMIT_BIT | TAKT_PADDING_BIT, 0, "padding at index 0", 8);
}

Test(corruption, forged_two_paddings)
{
	/* padding at 512 leads to the start of the next lap, where another
	 * padding is forged */
	struct live l;
	live_open(&l, CAP, 1, MAXREC);
	uint8_t buf[MAXREC];
	for (int i = 0; i < 4; i++) {
		cr_assert_eq(takt_try_send(l.p, 1, buf, 112), 0);
		cr_assert_eq(takt_try_recv(l.c, buf, sizeof buf, NULL), 112);
	}
	struct takt_rec_header *h0 = raw_rec(&l.raw, 0, CAP, 0);
	atomic_store(&h0->commit, CAP | TAKT_COMMIT_BIT | TAKT_PADDING_BIT);
	struct takt_rec_header *h = raw_rec(&l.raw, 0, CAP, 512);
	atomic_store(&h->commit, 512 | TAKT_COMMIT_BIT | TAKT_PADDING_BIT);
	expect_consumer_broken(&l, "two paddings in a row");
	live_close(&l);
}

/* One broken lane is skipped; the others keep flowing. */
Test(corruption, other_lanes_keep_flowing)
{
	const char *name = tt_name();
	tt_create(name, CAP, 2, MAXREC);
	takt_producer *a = tt_producer(name), *b = tt_producer(name);
	takt_consumer *c = tt_consumer(name);
	takt_channel *ro = NULL;
	cr_assert_eq(takt_channel_open(name, TAKT_OPEN_RDONLY, &ro), 0);
	struct tt_raw raw;
	tt_raw_map(name, &raw);
	unsigned la = takt_producer_lane(a), lb = takt_producer_lane(b);
	for (uint32_t i = 0; i < 10; i++) {
		cr_assert_eq(takt_try_send(a, i, &i, 4), 0);
		cr_assert_eq(takt_try_send(b, 100 + i, &i, 4), 0);
	}
	/* break lane a at its 4th record (20 bytes each: 24-byte records) */
	struct takt_rec_header *h = raw_rec(&raw, la, CAP, 3 * 24);
	cr_assert_eq(atomic_load(&h->commit), (3 * 24) | TAKT_COMMIT_BIT);
	atomic_store(&h->len, MAXREC + 8);
	uint32_t next_a = 0, next_b = 100, badmsg = 0;
	uint8_t buf[MAXREC];
	struct takt_msg m;
	while (next_b < 110) {
		int rc = takt_try_recv(c, buf, sizeof buf, &m);
		if (rc == -EBADMSG) {
			badmsg++;
			cr_assert_leq(badmsg, 1, "-EBADMSG reported more than once for one lane");
			continue;
		}
		cr_assert_eq(rc, 4, "try_recv = %d with lane %u still full", rc, lb);
		if (m.lane == la) {
			cr_assert_eq(m.type, next_a);
			next_a++;
		} else {
			cr_assert_eq(m.lane, lb);
			cr_assert_eq(m.type, next_b);
			next_b++;
		}
	}
	cr_assert_eq(badmsg, 1, "the broken lane was never reported");
	cr_assert_leq(next_a, 3, "records after the corrupted one were delivered");
	/* lane b goes on; lane a's records never come */
	cr_assert_eq(takt_try_send(b, 200, "more", 4), 0);
	int rc;
	do
		rc = takt_try_recv(c, buf, sizeof buf, &m);
	while (rc == -EBADMSG && ++badmsg < 100);
	cr_assert_eq(rc, 4, "lane b after lane a broke: %d", rc);
	cr_assert_eq(m.type, 200);
	rc = takt_try_recv(c, buf, sizeof buf, &m);
	cr_assert(rc == -EAGAIN || rc == -EBADMSG, "nothing left but the broken lane: %d", rc);
	cr_expect_eq(lane_stats(ro, la).broken, 1);
	cr_expect_eq(lane_stats(ro, lb).broken, 0);
	tt_raw_unmap(&raw);
	takt_producer_close(a);
	takt_producer_close(b);
	takt_consumer_close(c);
	cr_assert_eq(takt_channel_close(ro), 0);
}

/* ---- what a new consumer or producer finds ------------------------------ */

static void new_consumer_with_head(uint64_t head, const char *what)
{
	struct live l;
	live_open(&l, CAP, 1, MAXREC);
	uint8_t buf[64] = {0};
	for (int i = 0; i < 5; i++)
		cr_assert_eq(takt_try_send(l.p, 1, buf, 48), 0);
	takt_consumer_close(l.c);
	l.c = NULL;
	atomic_store(&raw_lane(&l.raw, 0, CAP)->head, head);
	takt_consumer *c = NULL;
	int rc = takt_consumer_open(l.name, &c);
	if (rc == 0) {
		rc = takt_try_recv(c, buf, sizeof buf, NULL);
		cr_assert_eq(rc, -EBADMSG, "%s: open succeeded, then try_recv = %d", what, rc);
		takt_consumer_close(c);
	} else {
		cr_assert_eq(rc, -EBADMSG, "%s: consumer_open = %d (%s)", what, rc, takt_strerror(rc));
	}
	live_close(&l);
}

Test(corruption, new_consumer_head_misaligned)
{
	new_consumer_with_head(4, "head 4");
}

Test(corruption, new_consumer_head_far_beyond)
{
	new_consumer_with_head(1ull << 40, "head 2^40");
}

Test(corruption, new_consumer_head_max)
{
	new_consumer_with_head(UINT64_MAX, "head 2^64-1");
}

/* A producer taking over a lane walks the committed records from the head;
 * a garbage tail or a chain of forged records must not mislead it. */
static void takeover_after(void (*damage)(struct live *), const char *what)
{
	struct live l;
	live_open(&l, CAP, 1, MAXREC);
	uint8_t buf[64];
	for (uint32_t i = 0; i < 5; i++) {
		memset(buf, (int)i, sizeof buf);
		cr_assert_eq(takt_try_send(l.p, i, buf, 40), 0);
	}
	takt_producer_close(l.p);
	l.p = NULL;
	damage(&l);
	takt_producer *p = NULL;
	int rc = takt_producer_open(l.name, &p);
	if (rc != 0) {
		cr_assert_eq(rc, -EBADMSG, "%s: producer_open = %d (%s)", what, rc, takt_strerror(rc));
		live_close(&l);
		return;
	}
	rc = takt_try_send(p, 99, "new", 3);
	if (rc == 0) {
		/* it found the true tail: the old records, then the new one */
		struct takt_msg m;
		for (uint32_t i = 0; i < 5; i++) {
			int r = takt_try_recv(l.c, buf, sizeof buf, &m);
			cr_assert_eq(r, 40, "%s: old record %u = %d", what, i, r);
			cr_assert_eq(m.type, i);
			cr_assert_eq(buf[39], (uint8_t)i);
		}
		/* records forged beyond the published tail look committed; a
		 * walk that believed them delivers them, which is no worse than
		 * what a scribbler can do anyway; but the new record must come */
		int r, forged = 0;
		while ((r = takt_try_recv(l.c, buf, sizeof buf, &m)) == 8 && m.type == 7 && forged < 3)
			forged++;
		cr_assert_eq(r, 3, "%s: the new record = %d", what, r);
		cr_assert_eq(m.type, 99);
	} else {
		cr_assert_eq(rc, -EBADMSG, "%s: try_send = %d", what, rc);
	}
	takt_producer_close(p);
	live_close(&l);
}

static void tail_huge(struct live *l)
{
	atomic_store(&raw_lane(&l->raw, 0, CAP)->tail, 1ull << 50);
}

static void tail_misaligned(struct live *l)
{
	atomic_store(&raw_lane(&l->raw, 0, CAP)->tail, 3 * 56 + 4);
}

static void tail_zero(struct live *l)
{
	atomic_store(&raw_lane(&l->raw, 0, CAP)->tail, 0);
}

/* Records forged after the true tail (at 280): valid commit words, and one
 * whose length runs off. */
static void forged_chain(struct live *l)
{
	uint64_t pos = 5 * 56;
	for (int i = 0; i < 3; i++) {
		struct takt_rec_header *h = raw_rec(&l->raw, 0, CAP, pos);
		atomic_store(&h->len, 8);
		atomic_store(&h->type, 7);
		atomic_store(&h->commit, pos | TAKT_COMMIT_BIT);
		pos += 24;
	}
	struct takt_rec_header *h = raw_rec(&l->raw, 0, CAP, pos);
	atomic_store(&h->len, 0xffffff00u);
	atomic_store(&h->commit, pos | TAKT_COMMIT_BIT);
}

static void self_loop(struct live *l)
{
	/* a forged record at the tail claiming to be a whole lap long */
	uint64_t pos = 5 * 56;
	struct takt_rec_header *h = raw_rec(&l->raw, 0, CAP, pos);
	atomic_store(&h->len, CAP - 16);
	atomic_store(&h->commit, pos | TAKT_COMMIT_BIT);
}

Test(corruption, takeover_tail_huge)
{
	takeover_after(tail_huge, "tail 2^50");
}

Test(corruption, takeover_tail_misaligned)
{
	takeover_after(tail_misaligned, "tail misaligned");
}

Test(corruption, takeover_tail_zero)
{
	takeover_after(tail_zero, "tail 0");
}

Test(corruption, takeover_forged_chain)
{
	takeover_after(forged_chain, "forged records after the tail");
}

Test(corruption, takeover_lap_long_record)
{
	takeover_after(self_loop, "a record a lap long");
}

/* ---- the header, while endpoints are live -------------------------------- */

Test(corruption, header_garbage_live_endpoints_unaffected)
{
	struct live l;
	live_open(&l, CAP, 1, MAXREC);
	struct takt_seg_header *h = (struct takt_seg_header *)l.raw.base;
	h->lane_capacity = 1ull << 40;
	h->max_record = 0xffffffffu;
	h->lane_count = 64;
	h->total_size = 1ull << 45;
	h->lane_stride = 8;
	h->lanes_offset = 1ull << 44;
	/* new opens refuse the segment */
	takt_channel *ch = NULL;
	takt_producer *p = NULL;
	takt_consumer *c = NULL;
	int rc = takt_channel_open(l.name, TAKT_OPEN_RDONLY, &ch);
	cr_expect_eq(rc, -EBADMSG, "open of a damaged header = %d", rc);
	if (rc == 0)
		takt_channel_close(ch);
	cr_expect_eq(takt_producer_open(l.name, &p), -EBADMSG);
	cr_expect_eq(takt_consumer_open(l.name, &c), -EBADMSG);
	/* the live endpoints use their private copy of the geometry */
	uint8_t want[MAXREC], buf[MAXREC];
	for (uint64_t i = 0; i < 500; i++) {
		size_t len = tt_stream_len(9, i, MAXREC);
		tt_stream_make(want, len, 9, i);
		cr_assert_eq(takt_try_send(l.p, (uint32_t)i, want, len), 0, "send %llu", (unsigned long long)i);
		rc = takt_try_recv(l.c, buf, sizeof buf, NULL);
		cr_assert_eq(rc, (int)len);
		cr_assert_null(tt_stream_verify(buf, len, 9, i));
	}
	cr_assert_eq(takt_try_send(l.p, 1, want, MAXREC + 1), -EMSGSIZE, "max_record re-read from shm");
	struct takt_lane_stats ls = lane_stats(l.ro, 0);
	cr_expect_eq(ls.records_sent, 500);
	struct takt_lane_stats dummy;
	cr_expect_eq(takt_lane_stats_get(l.ro, 1, &dummy), -EINVAL, "lane count re-read from shm");
	h->magic = 0;
	h->layout_major = 9;
	rc = takt_channel_open(l.name, TAKT_OPEN_RDONLY, &ch);
	cr_expect(rc == -EBADMSG || rc == -EPROTONOSUPPORT, "open = %d", rc);
	if (rc == 0)
		takt_channel_close(ch);
	live_close(&l);
}

/* ---- values that change after the library has read them ------------------- */

/* A peeked record's header is rewritten before the release: the release
 * must advance by the length the peek validated, not re-read it. */
Test(corruption, release_uses_the_peeked_length)
{
	struct live l;
	live_open(&l, CAP, 1, MAXREC);
	cr_assert_eq(takt_try_send(l.p, 1, "0123456789", 10), 0);
	cr_assert_eq(takt_try_send(l.p, 2, "abc", 3), 0);
	struct takt_msg m;
	cr_assert_eq(takt_peek(l.c, &m), 10);
	struct takt_rec_header *h = raw_rec(&l.raw, 0, CAP, 0);
	atomic_store(&h->len, 200);
	cr_assert_eq(takt_release(l.c), 0);
	uint8_t buf[MAXREC];
	int rc = takt_try_recv(l.c, buf, sizeof buf, &m);
	cr_assert_eq(rc, 3, "after a release, the next record = %d", rc);
	cr_assert_eq(m.type, 2);
	cr_assert_eq(memcmp(buf, "abc", 3), 0);
	cr_assert_eq(lane_stats(l.ro, 0).head, TT_REC(10) + TT_REC(3));
	live_close(&l);
}

/* The peeked length is what peek returned, whatever the header says later:
 * peeking again without a release returns the same record. */
Test(corruption, second_peek_after_scribble)
{
	struct live l;
	live_open(&l, CAP, 1, MAXREC);
	cr_assert_eq(takt_try_send(l.p, 1, "0123456789", 10), 0);
	cr_assert_eq(takt_try_send(l.p, 2, "abc", 3), 0);
	struct takt_msg m;
	cr_assert_eq(takt_peek(l.c, &m), 10);
	struct takt_rec_header *h = raw_rec(&l.raw, 0, CAP, 0);
	atomic_store(&h->len, 0xfffffff0u);
	int rc = takt_peek(l.c, &m);
	cr_assert(rc == 10 || rc == -EBADMSG, "second peek after the length was scribbled = %d", rc);
	if (rc == 10) {
		cr_assert_eq(takt_release(l.c), 0);
		uint8_t buf[MAXREC];
		cr_assert_eq(takt_try_recv(l.c, buf, sizeof buf, &m), 3);
	}
	live_close(&l);
}

/* ---- a scribbler ------------------------------------------------------------ */
/*
 * Random forged headers at the consumer's head, against random receive
 * calls with receive buffers of random size (on the heap, so ASan sees any
 * overflow).  Each call returns a record that fits the buffer and the
 * channel's limits, -EAGAIN, -EMSGSIZE with the size, or -EBADMSG; after
 * -EBADMSG the lane stays broken.
 */
Test(corruption, scribbler)
{
	uint64_t seed = tt_seed(), x = seed;
	unsigned channels = 0, broken = 0, delivered = 0;
	struct live l;
	int open = 0;
	for (int iter = 0; iter < 400; iter++) {
		if (!open) {
			live_open(&l, CAP, 1, MAXREC);
			open = 1;
			channels++;
		}
		x = tt_mix64(x);
		/* sometimes a genuine record first */
		if (x & 1) {
			uint8_t g[64] = {0};
			int rc = takt_try_send(l.p, 1, g, (x >> 1) % 64);
			cr_assert(rc == 0 || rc == -EAGAIN || rc == -EBADMSG, "send = %d", rc);
		}
		struct takt_lane_stats ls = lane_stats(l.ro, 0);
		uint64_t head = ls.head;
		/* forge at the head or at a random aligned spot in the ring */
		uint64_t pos = (x >> 8) & 1 ? head : head + (((x >> 9) % (CAP / 8)) * 8);
		struct takt_rec_header *h = raw_rec(&l.raw, 0, CAP, pos);
		x = tt_mix64(x);
		static const uint32_t lens[] = {0, 1, 7, 8, MAXREC - 1, MAXREC, MAXREC + 1, CAP - 16, CAP,
						UINT32_MAX, 0x80000000u, 0x7fffffffu};
		uint32_t len = (x & 3) ? lens[(x >> 2) % 12] : (uint32_t)(x >> 32);
		uint64_t word;
		switch ((x >> 6) % 5) {
		case 0: word = pos | TAKT_COMMIT_BIT; break;
		case 1: word = pos | TAKT_COMMIT_BIT | TAKT_PADDING_BIT; break;
		case 2: word = (pos + CAP) | TAKT_COMMIT_BIT; break;
		case 3: word = tt_mix64(x); break;
		default: word = pos | TAKT_COMMIT_BIT | ((x >> 12) & 4); break;
		}
		if (pos + TAKT_REC_HEADER <= ((pos | (CAP - 1)) + 1)) {
			atomic_store(&h->len, len);
			atomic_store(&h->type, (uint32_t)(x >> 16));
		}
		atomic_store(&h->commit, word);

		size_t cap = (size_t)((x >> 20) % (MAXREC + 32));
		uint8_t *buf = malloc(cap ? cap : 1);
		cr_assert_not_null(buf);
		struct takt_msg m, ms[4];
		memset(&m, 0, sizeof m);
		int rc;
		unsigned op = (unsigned)((x >> 40) % 3);
		if (op == 0) {
			rc = takt_try_recv(l.c, buf, cap, &m);
		} else if (op == 1) {
			rc = takt_peek(l.c, &m);
			if (rc >= 0) {
				memcpy(buf, m.data, m.len <= cap ? m.len : cap);
				cr_assert_eq(takt_release(l.c), 0);
			}
		} else {
			memset(ms, 0, sizeof ms);
			rc = takt_try_recv_batch(l.c, ms, 4, buf, cap);
			m = ms[0];
		}
		free(buf);
		if (rc >= 0) {
			delivered++;
			cr_assert_leq(m.len, MAXREC, "delivered a record of %u bytes", m.len);
			if (op != 1)
				cr_assert_leq(m.len, cap, "delivered %u bytes into %zu", m.len, cap);
		} else if (rc == -EMSGSIZE) {
			cr_assert_neq(op, 1, "peek returned -EMSGSIZE");
			cr_assert_gt(m.len, cap);
			cr_assert_leq(m.len, MAXREC, "reported a need of %u bytes", m.len);
		} else if (rc == -EBADMSG) {
			broken++;
			expect_consumer_broken(&l, "scribbler");
			live_close(&l);
			open = 0;
		} else {
			cr_assert_eq(rc, -EAGAIN, "iter %d: op %u = %d (%s) (seed %llu)", iter, op, rc,
				     takt_strerror(rc), (unsigned long long)seed);
		}
	}
	if (open)
		live_close(&l);
	cr_log_info("scribbler: %u channels, %u broken, %u records delivered", channels, broken, delivered);
	cr_assert_gt(broken, 10, "the scribbler never broke a lane: the test is not testing");
}

/*
 * takt_wait_readable may run on another thread than the consumer's owner,
 * so it reads the lanes' published heads from the segment.  With 9 lanes
 * of 4 KiB the last lane's data area ends exactly at the end of the
 * mapping: a head of capacity - 1 there would make an 8-byte read cross it.
 * Hostile heads in every lane must give an answer, not a fault.
 */
Test(corruption, wait_readable_with_hostile_heads)
{
	const uint64_t cap = 4096;
	const uint32_t lanes = 9;
	const char *name = tt_name();
	tt_create(name, cap, lanes, MAXREC);
	struct tt_raw raw;
	tt_raw_map(name, &raw);
	cr_assert_eq((uint64_t)(raw_data(&raw, lanes - 1, cap) + cap - raw.base), raw.size,
		     "the last data area should end at the end of the mapping");
	/* Make the consumer's mapping end at an inaccessible page: reserve
	 * room for it (and for the small mappings an open makes) below a
	 * PROT_NONE page, then free the room.  mmap fills the highest gap
	 * that fits, so the mapping lands right under the guard; we check. */
	const size_t page = (size_t)sysconf(_SC_PAGESIZE), room = raw.size + 16 * page;
	uint8_t *res = mmap(NULL, room + page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(res, MAP_FAILED);
	cr_assert_eq(munmap(res, room), 0);
	takt_consumer *c = tt_consumer(name);
	takt_producer *p = tt_producer(name);
	cr_assert_eq(takt_try_send(p, 1, "x", 1), 0);
	struct takt_msg m;
	cr_assert_eq(takt_peek(c, &m), 1);
	uint8_t *base = (uint8_t *)m.data - (raw_data(&raw, 0, cap) + TAKT_REC_HEADER - raw.base);
	/* Under ASan and TSan their own mappings can land in the room first;
	 * the test then still runs, without the certainty of a fault (a
	 * Criterion warning would fail the run, hence stderr). */
	if (base + raw.size != res + room)
		fprintf(stderr, "note: the consumer's mapping ends at %p, not at the guard %p\n",
			(void *)(base + raw.size), (void *)(res + room));
	/* misaligned ones near the end, and aligned ones whose commit word is
	 * the last 8 bytes of the mapping */
	const uint64_t heads[] = {cap - 1, cap - 4, 2 * cap - 1, UINT64_MAX, 12345,
				  cap - 8, UINT64_MAX & ~(uint64_t)7};
	for (size_t i = 0; i < sizeof heads / sizeof heads[0]; i++) {
		for (uint32_t k = 0; k < lanes; k++) {
			/* the waiter reads the position (the released head lags it) */
			atomic_store(&raw_lane(&raw, k, cap)->consumed, heads[i]);
			atomic_store(&raw_lane(&raw, k, cap)->head, heads[i]);
		}
		int rc = takt_wait_readable(c, TAKT_NO_WAIT);
		cr_assert(rc == -ETIMEDOUT || rc == 0, "head %#llx: wait_readable = %d",
			  (unsigned long long)heads[i], rc);
	}
	takt_producer_close(p);
	takt_consumer_close(c);
	munmap(res + room, page);
	tt_raw_unmap(&raw);
	cr_assert_eq(takt_unlink(name), 0);
	tt_untrack(name);
}

/*
 * The consumer's position (`consumed`) never moves backwards.  A producer
 * about to park takes the space before it; a position scribbled below one
 * it has already taken is corruption, not "no room".
 */
Test(corruption, position_moving_backwards)
{
	const uint64_t cap = 1024;
	const char *name = tt_name();
	tt_create(name, cap, 1, 256);
	takt_producer *p = tt_producer(name);
	takt_consumer *c = tt_consumer(name);
	struct tt_raw raw;
	tt_raw_map(name, &raw);
	uint8_t buf[256] = {0};
	while (takt_try_send(p, 1, buf, 48) == 0)
		;
	cr_assert_eq(takt_try_recv(c, buf, sizeof buf, NULL), 48);
	cr_assert_eq(atomic_load(&raw_lane(&raw, 0, cap)->consumed), 64);
	cr_assert_eq(atomic_load(&raw_lane(&raw, 0, cap)->head), 0, "64 bytes owed");
	uint64_t dl = takt_deadline_in(10ull * 1000 * 1000 * 1000);
	cr_assert_eq(takt_send(p, 1, buf, 48, dl), 0, "took the 64 bytes");
	/* aligned, not below the released head, not past the tail: only the
	 * history tells it is wrong */
	atomic_store(&raw_lane(&raw, 0, cap)->consumed, 0);
	cr_assert_eq(takt_send(p, 1, buf, 48, dl), -EBADMSG);
	cr_assert_eq(atomic_load(&raw_lane(&raw, 0, cap)->broken), 1);
	takt_producer_close(p);
	takt_consumer_close(c);
	tt_raw_unmap(&raw);
}

/*
 * Waits from another thread (takt_wait_readable / takt_wait_writable) judge
 * a lane by the owner's verdict, not by the segment's `broken` flag: that
 * flag is display, anyone may set it and nobody clears it.  When the shared
 * check answered "ready" for every flagged lane, a waiter whose owner still
 * said -EAGAIN (taktd's loop) woke at once, forever.  Each wait below must
 * run to its deadline; the old code returned 0 at once.
 */
Test(corruption, broken_flag_does_not_wake_waiters)
{
	struct live l;
	live_open(&l, CAP, 2, MAXREC);
	uint8_t buf[MAXREC];
	/* a flag set in the segment (by a producer's takeover walk, a former
	 * consumer or anyone) on lanes this consumer reads */
	atomic_store(&raw_lane(&l.raw, 0, CAP)->broken, 1);
	atomic_store(&raw_lane(&l.raw, 1, CAP)->broken, 1);
	cr_assert_eq(takt_wait_readable(l.c, takt_deadline_in(20 * 1000 * 1000)), -ETIMEDOUT,
		     "nothing to read: the flag alone must not wake the waiter");
	cr_assert_eq(takt_try_send(l.p, 1, "x", 1), 0);
	cr_assert_eq(takt_wait_readable(l.c, takt_deadline_in(1000ull * 1000 * 1000)), 0,
		     "a record in a flagged lane this consumer reads is ready");
	cr_assert_eq(takt_try_recv(l.c, buf, sizeof buf, NULL), 1);

	/* the producer side: a full lane and the flag set */
	fill_full(l.p);
	cr_assert_eq(takt_wait_writable(l.p, 8, takt_deadline_in(20 * 1000 * 1000)), -ETIMEDOUT,
		     "no room: the flag alone must not wake the waiter");

	/* the consumer's own verdict: lane 1 found corrupted and skipped */
	takt_producer *p1 = tt_producer(l.name);
	cr_assert_eq(takt_producer_lane(p1), 1u);
	cr_assert_eq(takt_try_send(p1, 2, buf, 10), 0);
	atomic_store(&raw_rec(&l.raw, 1, CAP, 0)->len, UINT32_MAX);
	int rc;
	while ((rc = takt_try_recv(l.c, buf, sizeof buf, NULL)) >= 0)
		; /* lane 0's records */
	cr_assert_eq(rc, -EBADMSG, "lane 1 reported once");
	while ((rc = takt_try_recv(l.c, buf, sizeof buf, NULL)) >= 0)
		;
	cr_assert_eq(rc, -EAGAIN, "then nothing: %d", rc);
	cr_assert_eq(takt_try_send(p1, 3, buf, 10), 0, "lane 1 looks fine to its producer");
	cr_assert_eq(takt_wait_readable(l.c, takt_deadline_in(20 * 1000 * 1000)), -ETIMEDOUT,
		     "a lane this consumer skips has nothing for a waiter");
	/* and a producer whose own send found its lane corrupted: the waiter
	 * wakes (at once) so the owner's send reports it */
	atomic_store(&raw_lane(&l.raw, 1, CAP)->head, 12);
	while ((rc = takt_try_send(p1, 4, buf, 10)) == 0)
		;
	cr_assert_eq(rc, -EBADMSG, "the misaligned head, read when the lane looked full");
	cr_assert_eq(takt_wait_writable(p1, 8, takt_deadline_in(1000ull * 1000 * 1000)), 0);
	cr_assert_eq(takt_try_send(p1, 5, buf, 10), -EBADMSG);
	takt_producer_close(p1);
	live_close(&l);
}
