/* SPDX-License-Identifier: MIT */
/*
 * test_stream_threads.c - the stream tests between threads of one process,
 * with the producer(s) and the consumer attached to ONE takt_channel, so
 * that ThreadSanitizer sees every access to the ring at the same address.
 * Also: a batch becomes visible all at once.
 */
#define _GNU_SOURCE
#include "common.h"
#include "stream.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

TT_SUITE(stream_threads);

struct prod_arg {
	takt_producer *p;
	uint64_t stream, n, seed;
	uint32_t max;
	enum st_mode mode;
	double deadline;
	char err[256];
};

static void *producer_thread(void *arg)
{
	struct prod_arg *a = arg;
	const char *err = st_produce(a->p, a->stream, a->n, a->max, a->mode, a->seed, a->deadline);
	if (err)
		snprintf(a->err, sizeof a->err, "%s", err);
	return NULL;
}

static void run_threads(unsigned producers, uint64_t per_producer, uint64_t capacity, uint32_t max,
			enum st_mode mode)
{
	uint64_t seed = tt_seed();
	const char *name = tt_name();
	tt_create(name, capacity, producers, max);
	cr_log_info("%u producer thread(s) x %" PRIu64 " records, capacity %" PRIu64 ", max %u, mode %d",
		    producers, per_producer, capacity, max, (int)mode);
	takt_channel *ch = NULL;
	cr_assert_eq(takt_channel_open(name, 0, &ch), 0);
	takt_consumer *c = NULL;
	cr_assert_eq(takt_consumer_attach(ch, &c), 0);
	static struct prod_arg args[ST_MAX_STREAMS];
	pthread_t th[ST_MAX_STREAMS];
	double deadline = st_deadline(), t0 = tt_now();
	for (unsigned i = 0; i < producers; i++) {
		args[i] = (struct prod_arg){.stream = i, .n = per_producer, .seed = seed, .max = max,
					    .mode = mode, .deadline = deadline};
		cr_assert_eq(takt_producer_attach(ch, &args[i].p), 0);
	}
	for (unsigned i = 0; i < producers; i++)
		cr_assert_eq(pthread_create(&th[i], NULL, producer_thread, &args[i]), 0);
	static struct st_consumer_state st;
	st_consumer_init(&st, producers, per_producer, max);
	const char *err = st_consume(c, &st, mode, seed, deadline);
	char errcopy[512];
	if (err)
		snprintf(errcopy, sizeof errcopy, "%s", err);
	/* on a consumer failure, keep draining so that the producers finish
	 * (they would otherwise spin until their deadline) */
	int joined[ST_MAX_STREAMS] = {0};
	if (err) {
		uint8_t sink[4096];
		unsigned done = 0;
		while (done < producers && tt_now() < deadline) {
			(void)takt_try_recv(c, sink, sizeof sink, NULL);
			for (unsigned i = 0; i < producers; i++)
				if (!joined[i] && pthread_tryjoin_np(th[i], NULL) == 0) {
					joined[i] = 1;
					done++;
				}
		}
	}
	for (unsigned i = 0; i < producers; i++)
		if (!joined[i])
			pthread_join(th[i], NULL);
	cr_assert(!err, "%s (seed %" PRIu64 ")", errcopy, seed);
	for (unsigned i = 0; i < producers; i++)
		cr_assert_eq(args[i].err[0], '\0', "producer %u: %s", i, args[i].err);
	double dt = tt_now() - t0;
	cr_log_info("%" PRIu64 " records in %.2f s (%.2f M/s)", st.received, dt,
		    (double)st.received / dt / 1e6);
	for (unsigned l = 0; l < producers; l++) {
		struct takt_lane_stats ls;
		cr_assert_eq(takt_lane_stats_get(ch, l, &ls), 0);
		cr_expect_eq(ls.records_sent, per_producer);
		cr_expect_eq(ls.records_received, per_producer);
		cr_expect_eq(ls.head, ls.tail);
		cr_expect_eq(ls.broken, 0);
	}
	for (unsigned i = 0; i < producers; i++)
		takt_producer_close(args[i].p);
	takt_consumer_close(c);
	cr_assert_eq(takt_channel_close(ch), 0);
}

Test(stream_threads, spsc)
{
	run_threads(1, tt_stream_records(), 65536, 256, ST_PLAIN);
}

Test(stream_threads, spsc_every_api)
{
	run_threads(1, tt_stream_records() / 4 + 1, 4096, 1024, ST_MIXED);
}

Test(stream_threads, mpsc)
{
	run_threads(3, tt_stream_records() / 6 + 1, 8192, 256, ST_PLAIN);
}

Test(stream_threads, mpsc_every_api)
{
	run_threads(3, tt_stream_records() / 20 + 1, 4096, 512, ST_MIXED);
}

/* ---- a batch is visible all at once ------------------------------------ */
/*
 * The producer publishes batches of 1..8 records and always has room for the
 * whole batch (it keeps at most 64 records outstanding in a 64 KiB ring);
 * record i of a batch of k carries (i, k).  Once the consumer has seen
 * record i < k-1, record i+1 must be there at once: -EAGAIN would mean the
 * consumer saw part of a publication.
 */
#define VIS_CAP 65536u
#define VIS_MAX 64u
#define VIS_OUTSTANDING 64u

struct vis {
	takt_producer *p;
	uint64_t n;
	_Atomic uint64_t consumed;
	_Atomic int failed;
	char err[256];
	uint64_t seed;
	double deadline;
};

struct vis_rec {
	uint64_t seq;
	uint32_t idx, k;
};

static void *vis_producer(void *arg)
{
	struct vis *v = arg;
	struct takt_msg msgs[ST_BATCH];
	struct vis_rec recs[ST_BATCH];
	uint8_t payload[ST_BATCH][VIS_MAX];
	uint64_t seq = 0, x = v->seed;
	unsigned spins = 0;
	while (seq < v->n && !atomic_load(&v->failed)) {
		if (seq - atomic_load_explicit(&v->consumed, memory_order_acquire) > VIS_OUTSTANDING) {
			tt_backoff(&spins);
			if ((spins & 1023) == 0 && tt_now() > v->deadline) {
				snprintf(v->err, sizeof v->err, "producer: deadline");
				atomic_store(&v->failed, 1);
			}
			continue;
		}
		spins = 0;
		x = tt_mix64(x);
		unsigned k = 1 + (unsigned)(x % ST_BATCH);
		for (unsigned i = 0; i < k; i++) {
			recs[i] = (struct vis_rec){.seq = seq + i, .idx = i, .k = k};
			uint32_t len = (uint32_t)sizeof recs[i] + (uint32_t)((x >> (4 * i)) % (VIS_MAX - 16));
			memset(payload[i], (int)(seq + i), len);
			memcpy(payload[i], &recs[i], sizeof recs[i]);
			msgs[i] = (struct takt_msg){.data = payload[i], .len = len, .type = 1};
		}
		int rc = takt_try_send_batch(v->p, msgs, k);
		if (rc != (int)k) {
			snprintf(v->err, sizeof v->err, "send_batch of %u with room for all = %d", k, rc);
			atomic_store(&v->failed, 1);
			break;
		}
		seq += k;
	}
	return NULL;
}

Test(stream_threads, batch_visible_at_once)
{
	const char *name = tt_name();
	tt_create(name, VIS_CAP, 1, VIS_MAX);
	takt_channel *ch = NULL;
	cr_assert_eq(takt_channel_open(name, 0, &ch), 0);
	static struct vis v;
	memset(&v, 0, sizeof v);
	v.n = tt_stream_records() / 10 + 100;
	v.seed = tt_seed();
	v.deadline = st_deadline();
	takt_consumer *c = NULL;
	cr_assert_eq(takt_consumer_attach(ch, &c), 0);
	cr_assert_eq(takt_producer_attach(ch, &v.p), 0);
	pthread_t th;
	cr_assert_eq(pthread_create(&th, NULL, vis_producer, &v), 0);
	uint8_t buf[VIS_MAX];
	uint64_t seq = 0, torn = 0;
	unsigned spins = 0;
	uint32_t expect_idx = 0, expect_k = 0; /* inside a batch when expect_idx < expect_k */
	char err[256] = "";
	while (seq < v.n && !atomic_load(&v.failed)) {
		int rc = takt_try_recv(c, buf, sizeof buf, NULL);
		if (rc == -EAGAIN) {
			if (expect_idx < expect_k) {
				torn++;
				snprintf(err, sizeof err,
					 "seq %llu: record %u of a batch of %u not visible with the ones before it",
					 (unsigned long long)seq, expect_idx, expect_k);
				break;
			}
			tt_backoff(&spins);
			if ((spins & 1023) == 0 && tt_now() > v.deadline) {
				snprintf(err, sizeof err, "consumer: deadline at %llu", (unsigned long long)seq);
				break;
			}
			continue;
		}
		spins = 0;
		if (rc < (int)sizeof(struct vis_rec)) {
			snprintf(err, sizeof err, "try_recv = %d", rc);
			break;
		}
		struct vis_rec r;
		memcpy(&r, buf, sizeof r);
		if (r.seq != seq) {
			snprintf(err, sizeof err, "got seq %llu, want %llu", (unsigned long long)r.seq,
				 (unsigned long long)seq);
			break;
		}
		if (expect_idx < expect_k && (r.idx != expect_idx || r.k != expect_k)) {
			snprintf(err, sizeof err, "seq %llu: batch position %u/%u, want %u/%u",
				 (unsigned long long)seq, r.idx, r.k, expect_idx, expect_k);
			break;
		}
		if (expect_idx >= expect_k && r.idx != 0) {
			snprintf(err, sizeof err, "seq %llu: batch starts at position %u", (unsigned long long)seq,
				 r.idx);
			break;
		}
		for (int i = (int)sizeof r; i < rc; i++)
			if (buf[i] != (uint8_t)seq) {
				snprintf(err, sizeof err, "seq %llu: payload byte %d", (unsigned long long)seq, i);
				break;
			}
		if (err[0])
			break;
		expect_idx = r.idx + 1;
		expect_k = r.k;
		seq++;
		atomic_store_explicit(&v.consumed, seq, memory_order_release);
	}
	if (err[0])
		atomic_store(&v.failed, 1);
	pthread_join(th, NULL);
	cr_assert_eq(err[0], '\0', "%s", err);
	cr_assert_eq(v.err[0], '\0', "%s", v.err);
	cr_assert_eq(seq, v.n);
	cr_assert_eq(torn, 0);
	takt_producer_close(v.p);
	takt_consumer_close(c);
	cr_assert_eq(takt_channel_close(ch), 0);
}

/* Two mappings of one channel in one process, producer thread on one and
 * consumer on the other. */
Test(stream_threads, two_mappings)
{
	uint64_t seed = tt_seed();
	const char *name = tt_name();
	tt_create(name, 8192, 1, 256);
	takt_channel *m1 = NULL, *m2 = NULL;
	cr_assert_eq(takt_channel_open(name, 0, &m1), 0);
	cr_assert_eq(takt_channel_open(name, 0, &m2), 0);
	static struct prod_arg a;
	uint64_t n = tt_stream_records() / 10 + 1;
	a = (struct prod_arg){.stream = 0, .n = n, .seed = seed, .max = 256, .mode = ST_PLAIN,
			      .deadline = st_deadline()};
	cr_assert_eq(takt_producer_attach(m1, &a.p), 0);
	takt_consumer *c = NULL;
	cr_assert_eq(takt_consumer_attach(m2, &c), 0);
	pthread_t th;
	cr_assert_eq(pthread_create(&th, NULL, producer_thread, &a), 0);
	static struct st_consumer_state st;
	st_consumer_init(&st, 1, n, 256);
	const char *err = st_consume(c, &st, ST_PLAIN, seed, a.deadline);
	char errcopy[512] = "";
	if (err)
		snprintf(errcopy, sizeof errcopy, "%s", err);
	pthread_join(th, NULL);
	cr_assert(!err, "%s", errcopy);
	cr_assert_eq(a.err[0], '\0', "%s", a.err);
	takt_producer_close(a.p);
	takt_consumer_close(c);
	cr_assert_eq(takt_channel_close(m1), 0);
	cr_assert_eq(takt_channel_close(m2), 0);
}
