/* SPDX-License-Identifier: MIT */
/*
 * stream.h - the producer and consumer loops of the stream tests (processes
 * and threads).  No Criterion assertions in here: the loops run in forked
 * children and in threads, and report failure as a message.
 *
 * Record `seq` of stream `s` has the length tt_stream_len(s, seq, max), the
 * payload tt_stream_make(s, seq) (sequence number, deterministic bytes,
 * checksum) and the type (s << 24) | (seq & 0xffffff).  The consumer knows
 * what every next record of every stream must be, so it detects loss,
 * duplication, reordering and corruption at the first wrong record.
 */
#ifndef TAKT_TESTS_STREAM_H
#define TAKT_TESTS_STREAM_H

#include "common.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ST_MAX_STREAMS 16
#define ST_BATCH 8

enum st_mode {
	ST_PLAIN = 0, /* try_send / try_recv only */
	ST_MIXED = 1, /* every API: send, reserve/commit, batches, peek/release */
};

static inline uint32_t st_type(uint64_t stream, uint64_t seq)
{
	return (uint32_t)(stream << 24) | (uint32_t)(seq & 0xffffff);
}

/* Seconds the loops may take before they give up (never a hang). */
static inline double st_deadline(void)
{
	return tt_now() + (double)tt_env_u64("TAKT_STREAM_DEADLINE_S", 600);
}

/*
 * Send records [0, n) of `stream`.  Returns NULL or a failure message
 * (static storage; one producer loop per thread/process).
 */
static inline const char *st_produce(takt_producer *p, uint64_t stream, uint64_t n, uint32_t max,
				     enum st_mode mode, uint64_t seed, double deadline)
{
	static _Thread_local char err[256];
	uint8_t *store = malloc((size_t)ST_BATCH * (max + 8));
	if (!store)
		return "out of memory";
	struct takt_msg msgs[ST_BATCH];
	unsigned spins = 0;
	uint64_t seq = 0, x = seed ^ (stream * 0x51ed27u);
	const char *ret = NULL;
	while (seq < n) {
		x = tt_mix64(x);
		unsigned op = mode == ST_MIXED ? (unsigned)(x % 4) : 0;
		int rc;
		if (op == 0 || op == 3) {
			size_t len = tt_stream_len(stream, seq, max);
			tt_stream_make(store, len, stream, seq);
			rc = takt_try_send(p, st_type(stream, seq), store, len);
			if (rc == 0)
				seq++;
		} else if (op == 1) {
			size_t len = tt_stream_len(stream, seq, max);
			size_t extra = (size_t)((x >> 8) % (max - len + 1));
			void *d = NULL;
			rc = takt_reserve(p, len + extra, &d);
			if (rc == 0) {
				tt_stream_make(d, len, stream, seq);
				rc = takt_commit(p, st_type(stream, seq), len);
				if (rc != 0) {
					snprintf(err, sizeof err, "commit seq %llu = %d",
						 (unsigned long long)seq, rc);
					ret = err;
					break;
				}
				seq++;
			}
		} else {
			unsigned k = 1 + (unsigned)((x >> 8) % ST_BATCH);
			if (k > n - seq)
				k = (unsigned)(n - seq);
			for (unsigned i = 0; i < k; i++) {
				uint8_t *b = store + (size_t)i * (max + 8);
				size_t len = tt_stream_len(stream, seq + i, max);
				tt_stream_make(b, len, stream, seq + i);
				msgs[i] = (struct takt_msg){.data = b, .len = (uint32_t)len,
							    .type = st_type(stream, seq + i)};
			}
			rc = takt_try_send_batch(p, msgs, k);
			if (rc > 0) {
				if ((unsigned)rc > k) {
					snprintf(err, sizeof err, "send_batch of %u = %d", k, rc);
					ret = err;
					break;
				}
				seq += (uint64_t)rc;
				rc = 0;
			}
		}
		if (rc == 0) {
			spins = 0;
			continue;
		}
		if (rc != -EAGAIN) {
			snprintf(err, sizeof err, "producer %llu: op %u at seq %llu = %d (%s)",
				 (unsigned long long)stream, op, (unsigned long long)seq, rc,
				 takt_strerror(rc));
			ret = err;
			break;
		}
		tt_backoff(&spins);
		if ((spins & 1023) == 0 && tt_now() > deadline) {
			snprintf(err, sizeof err, "producer %llu: deadline at seq %llu (ring stays full)",
				 (unsigned long long)stream, (unsigned long long)seq);
			ret = err;
			break;
		}
	}
	free(store);
	return ret;
}

struct st_consumer_state {
	uint64_t next[ST_MAX_STREAMS];   /* next expected seq per stream */
	uint64_t want[ST_MAX_STREAMS];   /* records per stream */
	int lane_of[ST_MAX_STREAMS];     /* the lane a stream arrives on (-1: not yet) */
	unsigned streams;
	uint64_t total, received;
	uint32_t max;
};

static inline void st_consumer_init(struct st_consumer_state *st, unsigned streams,
				    uint64_t per_stream, uint32_t max)
{
	memset(st, 0, sizeof *st);
	st->streams = streams;
	st->max = max;
	for (unsigned s = 0; s < streams; s++) {
		st->want[s] = per_stream;
		st->lane_of[s] = -1;
		st->total += per_stream;
	}
}

/* Check one received record; NULL or a failure message. */
static inline const char *st_check(struct st_consumer_state *st, const void *data, uint32_t len,
				   uint32_t type, uint32_t lane, char *err, size_t errsz)
{
	uint32_t s = type >> 24;
	if (s >= st->streams) {
		snprintf(err, errsz, "record of unknown stream %u (type 0x%x, len %u, lane %u)", s, type,
			 len, lane);
		return err;
	}
	uint64_t seq = st->next[s];
	if (seq >= st->want[s]) {
		snprintf(err, errsz, "stream %u: extra record after all %llu (duplicate?)", s,
			 (unsigned long long)st->want[s]);
		return err;
	}
	if (type != st_type(s, seq)) {
		snprintf(err, errsz, "stream %u: expected seq %llu (type 0x%x), got type 0x%x: %s", s,
			 (unsigned long long)seq, st_type(s, seq), type,
			 (type & 0xffffff) < (seq & 0xffffff) ? "duplicate/reordered" : "lost records");
		return err;
	}
	if (st->lane_of[s] < 0)
		st->lane_of[s] = (int)lane;
	else if ((uint32_t)st->lane_of[s] != lane) {
		snprintf(err, errsz, "stream %u moved from lane %d to lane %u", s, st->lane_of[s], lane);
		return err;
	}
	size_t want_len = tt_stream_len(s, seq, st->max);
	if (len != want_len) {
		snprintf(err, errsz, "stream %u seq %llu: length %u, expected %zu", s,
			 (unsigned long long)seq, len, want_len);
		return err;
	}
	const char *why = tt_stream_verify(data, len, s, seq);
	if (why) {
		snprintf(err, errsz, "stream %u seq %llu (len %u): %s", s, (unsigned long long)seq, len,
			 why);
		return err;
	}
	st->next[s]++;
	st->received++;
	return NULL;
}

/* Receive until every stream is complete.  NULL or a failure message. */
static inline const char *st_consume(takt_consumer *c, struct st_consumer_state *st,
				     enum st_mode mode, uint64_t seed, double deadline)
{
	static _Thread_local char err[512];
	size_t cap = (size_t)ST_BATCH * (st->max + 8);
	uint8_t *buf = malloc(cap);
	if (!buf)
		return "out of memory";
	struct takt_msg msgs[ST_BATCH];
	unsigned spins = 0;
	uint64_t x = seed ^ 0xc0ffee;
	const char *ret = NULL;
	while (st->received < st->total) {
		x = tt_mix64(x);
		unsigned op = mode == ST_MIXED ? (unsigned)(x % 3) : 0;
		int rc;
		if (op == 0) {
			struct takt_msg m;
			rc = takt_try_recv(c, buf, st->max + 8, &m);
			if (rc >= 0) {
				if ((uint32_t)rc != m.len || m.data != buf) {
					snprintf(err, sizeof err, "try_recv = %d but msg.len %u", rc, m.len);
					ret = err;
					break;
				}
				if ((ret = st_check(st, buf, m.len, m.type, m.lane, err, sizeof err)))
					break;
			}
		} else if (op == 1) {
			unsigned n = 1 + (unsigned)((x >> 8) % ST_BATCH);
			rc = takt_try_recv_batch(c, msgs, n, buf, cap);
			if (rc > (int)n) {
				snprintf(err, sizeof err, "recv_batch of %u = %d", n, rc);
				ret = err;
				break;
			}
			for (int i = 0; i < rc && !ret; i++) {
				const uint8_t *d = msgs[i].data;
				if (msgs[i].len && (d < buf || d + msgs[i].len > buf + cap)) {
					snprintf(err, sizeof err, "recv_batch: record %d outside buffer", i);
					ret = err;
					break;
				}
				ret = st_check(st, d, msgs[i].len, msgs[i].type, msgs[i].lane, err, sizeof err);
			}
			if (ret)
				break;
		} else {
			struct takt_msg m;
			rc = takt_peek(c, &m);
			if (rc >= 0) {
				/* copy out before checking: the segment is not ours */
				memcpy(buf, m.data, m.len);
				if ((ret = st_check(st, buf, m.len, m.type, m.lane, err, sizeof err)))
					break;
				int r2 = takt_release(c);
				if (r2 != 0) {
					snprintf(err, sizeof err, "release = %d", r2);
					ret = err;
					break;
				}
			}
		}
		if (rc >= 0) {
			spins = 0;
			continue;
		}
		if (rc != -EAGAIN) {
			snprintf(err, sizeof err, "consumer: op %u after %llu records = %d (%s)", op,
				 (unsigned long long)st->received, rc, takt_strerror(rc));
			ret = err;
			break;
		}
		tt_backoff(&spins);
		if ((spins & 1023) == 0 && tt_now() > deadline) {
			snprintf(err, sizeof err, "consumer: deadline after %llu of %llu records",
				 (unsigned long long)st->received, (unsigned long long)st->total);
			ret = err;
			break;
		}
	}
	if (!ret) {
		/* nothing more: no duplicates, no records from nowhere */
		int rc = takt_try_recv(c, buf, st->max + 8, NULL);
		if (rc != -EAGAIN) {
			snprintf(err, sizeof err, "after the last record: try_recv = %d", rc);
			ret = err;
		}
	}
	free(buf);
	return ret;
}

#endif
