/* SPDX-License-Identifier: MIT */
/*
 * test_stream4.c - MPSC stream: 4 producer processes x TR_STREAM_RECORDS
 * records each (default 2 M) into one 4-lane channel; the consumer checks
 * FIFO per producer (sequence numbers), no loss, no duplicate, and every
 * record's integrity (checksum).  On -EAGAIN everybody yields (2 cores).
 * TR_STREAM_PRODUCERS (1..8, default 4) changes the producer count, e.g. to
 * compare MPSC with SPSC throughput (printed; never asserted).
 */
#include "tr_common.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define PRODUCERS_MAX 8

TR_SUITE(stream4, .timeout = 0);

/* Light records for volume: {seq, producer, len} + filler + FNV-1a. */
static uint64_t fnv(const uint8_t *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	return h;
}

static size_t rec_len(uint64_t seq, uint32_t prod)
{
	return 24 + ((seq * 7 + prod * 13) % 41); /* 24..64 bytes */
}

static void rec_make(uint8_t *b, size_t len, uint64_t seq, uint32_t prod)
{
	memcpy(b, &seq, 8);
	uint32_t w[2] = {prod, (uint32_t)len};
	memcpy(b + 8, w, 8);
	for (size_t i = 16; i < len - 8; i++)
		b[i] = (uint8_t)(seq * 31 + i * prod + i);
	uint64_t h = fnv(b, len - 8);
	memcpy(b + len - 8, &h, 8);
}

static void run_stream(bool batch_consumer, bool batch_producer)
{
	uint64_t n = tr_env_u64("TR_STREAM_RECORDS", 2000000);
	if (tr_long())
		n *= 5;
	const unsigned PRODUCERS = (unsigned)tr_env_u64("TR_STREAM_PRODUCERS", 4);
	cr_assert(PRODUCERS >= 1 && PRODUCERS <= PRODUCERS_MAX);
	const char *name = tr_name(batch_consumer ? "s4b" : "s4");
	tr_create(name, 1 << 16, PRODUCERS, 1024);
	pid_t pids[PRODUCERS_MAX];
	double t0 = tr_now();
	for (uint32_t k = 0; k < PRODUCERS; k++) {
		pids[k] = fork();
		cr_assert_geq(pids[k], 0);
		if (pids[k] == 0) {
			tr_child_setup();
			takt_producer *p;
			if (takt_producer_open(name, &p) != 0)
				_exit(2);
			uint32_t prod = takt_producer_lane(p);
			uint8_t buf[8][64];
			struct takt_msg msgs[8];
			for (uint64_t seq = 0; seq < n;) {
				int rc;
				if (batch_producer && n - seq >= 8) {
					for (int i = 0; i < 8; i++) {
						size_t l = rec_len(seq + (uint64_t)i, prod);
						rec_make(buf[i], l, seq + (uint64_t)i, prod);
						msgs[i] = (struct takt_msg){.data = buf[i], .len = (uint32_t)l,
									    .type = prod};
					}
					rc = takt_try_send_batch(p, msgs, 8);
					if (rc > 0) {
						seq += (uint64_t)rc;
						continue;
					}
				} else {
					size_t l = rec_len(seq, prod);
					rec_make(buf[0], l, seq, prod);
					rc = takt_try_send(p, prod, buf[0], l);
					if (rc == 0) {
						seq++;
						continue;
					}
				}
				if (rc != -EAGAIN)
					_exit(3);
				tr_yield();
			}
			takt_producer_close(p);
			_exit(0);
		}
	}
	takt_consumer *c;
	cr_assert_eq(takt_consumer_open(name, &c), 0);
	uint64_t next[PRODUCERS_MAX] = {0};
	uint64_t total = 0, want = n * PRODUCERS;
	static uint8_t buf[64 * 1024];
	struct takt_msg m[64];
	while (total < want) {
		int r;
		if (batch_consumer) {
			r = takt_try_recv_batch(c, m, 64, buf, sizeof buf);
		} else {
			r = takt_try_recv(c, buf, sizeof buf, &m[0]);
			if (r >= 0) {
				m[0].data = buf;
				r = 1;
			}
		}
		if (r == -EAGAIN) {
			tr_yield();
			continue;
		}
		cr_assert_gt(r, 0, "receive = %d (%s)", r, takt_strerror(r));
		for (int i = 0; i < r; i++) {
			const uint8_t *b = m[i].data;
			uint32_t len = m[i].len;
			cr_assert(len >= 24 && len <= 64, "length %u", len);
			uint64_t seq, h;
			uint32_t w[2];
			memcpy(&seq, b, 8);
			memcpy(w, b + 8, 8);
			memcpy(&h, b + len - 8, 8);
			cr_assert_eq(h, fnv(b, len - 8), "torn record (lane %u)", m[i].lane);
			cr_assert_eq(w[0], m[i].lane, "record of producer %u in lane %u", w[0], m[i].lane);
			cr_assert_eq(w[0], m[i].type);
			cr_assert_eq(w[1], len);
			cr_assert_eq(seq, next[w[0]],
				     "producer %u: got %" PRIu64 ", expected %" PRIu64 " (%s)", w[0], seq,
				     next[w[0]], seq < next[w[0]] ? "duplicate/reorder" : "loss");
			next[w[0]]++;
			total++;
		}
	}
	for (unsigned k = 0; k < PRODUCERS; k++) {
		int st = tr_wait_timeout(pids[k], 30);
		cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "producer %u: %s", k, tr_status(st));
		cr_assert_eq(next[k], n);
	}
	cr_assert_eq(takt_try_recv(c, buf, sizeof buf, NULL), -EAGAIN, "nothing extra");
	takt_channel *ch = takt_consumer_channel(c);
	for (unsigned k = 0; k < PRODUCERS; k++) {
		struct takt_lane_stats st;
		cr_assert_eq(takt_lane_stats_get(ch, k, &st), 0);
		cr_assert_eq(st.records_sent, n);
		cr_assert_eq(st.records_received, n);
		cr_assert_eq(st.broken, 0u);
	}
	double dt = tr_now() - t0;
	fprintf(stderr, "stream (%u producers, %s consumer, %s producers): %" PRIu64 " records in %.2f s: %.2f M/s\n",
		PRODUCERS, batch_consumer ? "batch" : "single", batch_producer ? "batch" : "single", want, dt,
		(double)want / dt / 1e6);
	takt_consumer_close(c);
}

Test(stream4, four_producers)
{
	run_stream(false, false);
}

Test(stream4, four_producers_batched)
{
	run_stream(true, true);
}
