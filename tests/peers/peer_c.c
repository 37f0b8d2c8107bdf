/* SPDX-License-Identifier: MIT */
/*
 * peer_c - the native (shared-memory) side of the peer tests and benchmarks.
 *
 * It talks to takt channels through include/takt.h only, while the Python
 * or Java client under test talks to the same channels through taktd.
 *
 *   peer_c produce NAME COUNT [MIN MAX]   send records 1..COUNT (sizes MIN..MAX)
 *   peer_c consume NAME COUNT [options]   receive and verify COUNT records
 *   peer_c echo IN OUT COUNT              receive from IN, send each record to OUT
 *   peer_c create NAME [CAPACITY [MAX_RECORD [MODE]]]   create a 1-lane queue channel (mode 0666)
 *   peer_c rm NAME                        remove a channel
 *
 * Test records (the same layout in every client):
 *   [0, 8)       sequence number, u64 little-endian, 1, 2, 3, ...
 *   [8, len-4)   byte i = (i + seq) & 0xff
 *   [len-4, len) CRC-32 (zlib's) of [0, len-4), u32 little-endian
 *   record type  seq & 0xffffff;  length  MIN + (seq * 2654435761) % (MAX - MIN + 1)
 *
 * consume options:
 *   --dups          records resent after a taktd crash may repeat: a
 *                   sequence number may go back, but never skip ahead
 *   --any-size      do not check the length formula (only the checksum)
 *   --idle-ms MS    give up when no record came for MS (default 20000)
 *   --ready         print "ready" once the consumer is open
 *
 * Each mode prints one result line, e.g.
 *   peer_c: consume ok records=100000 errors=0 dups=0 seconds=0.412 rate=242718/s
 * and exits 0 on success, 1 on a verification error or timeout, 2 on usage.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "takt.h"
#include "peer_wire.h"

static uint32_t rec_len(uint64_t seq, uint32_t min, uint32_t max)
{
	return min + (uint32_t)((seq * 2654435761u) % (uint64_t)(max - min + 1));
}

/* 0 if the record is a valid test record (its type the low 24 bits of its
 * number); *seq gets its number. */
static int rec_check(const uint8_t *p, uint32_t len, uint32_t type, uint64_t *seq)
{
	if (len < 12)
		return -1;
	int bad = body_check(p, len, seq);
	if (bad)
		return bad;
	if (type != (uint32_t)(*seq & 0xffffff))
		return -4;
	return 0;
}

static double now_s(void) { return (double)takt_now_ns() / 1e9; }

static int usage(void)
{
	fprintf(stderr, "usage: peer_c produce NAME COUNT [MIN MAX]\n"
			"       peer_c consume NAME COUNT [--dups] [--any-size] [--idle-ms MS] [--ready]\n"
			"               [--min MIN --max MAX]\n"
			"       peer_c echo IN OUT COUNT\n"
			"       peer_c create NAME [CAPACITY [MAX_RECORD [MODE]]]\n"
			"       peer_c rm NAME\n");
	return 2;
}

static int do_produce(const char *name, uint64_t count, uint32_t min, uint32_t max)
{
	takt_producer *p;
	int rc = takt_producer_open(name, &p);
	if (rc < 0) {
		printf("peer_c: produce failed: open %s: %s\n", name, takt_strerror(rc));
		return 1;
	}
	uint8_t *buf = malloc(max);
	double t0 = now_s();
	for (uint64_t seq = 1; seq <= count; seq++) {
		uint32_t len = rec_len(seq, min, max);
		body_fill(buf, seq, len);
		rc = takt_send(p, (uint32_t)(seq & 0xffffff), buf, len, takt_deadline_in(30000000000ull));
		if (rc < 0) {
			printf("peer_c: produce failed: record %llu: %s\n", (unsigned long long)seq,
			       takt_strerror(rc));
			takt_producer_close(p);
			free(buf);
			return 1;
		}
	}
	double dt = now_s() - t0;
	printf("peer_c: produce ok records=%llu seconds=%.3f rate=%.0f/s\n", (unsigned long long)count,
	       dt, dt > 0 ? (double)count / dt : 0.0);
	takt_producer_close(p);
	free(buf);
	return 0;
}

struct consume_opts {
	int dups, any_size, ready;
	uint64_t idle_ms;
	uint32_t min, max;
};

static int do_consume(const char *name, uint64_t count, const struct consume_opts *o)
{
	takt_consumer *c;
	int rc = takt_consumer_open(name, &c);
	if (rc < 0) {
		printf("peer_c: consume failed: open %s: %s\n", name, takt_strerror(rc));
		return 1;
	}
	if (o->ready) {
		printf("ready\n");
		fflush(stdout);
	}
	size_t cap = 1u << 20;
	uint8_t *buf = malloc(cap);
	struct takt_msg msgs[256];
	uint64_t got = 0, last = 0, errors = 0, dups = 0, maxseq = 0;
	double t0 = 0, t1 = 0;
	char first_err[160] = "";
	while (maxseq < count) {
		rc = takt_recv_batch(c, msgs, 256, buf, cap, takt_deadline_in(o->idle_ms * 1000000ull));
		if (rc == -ETIMEDOUT)
			break;
		if (rc == -EMSGSIZE) {
			cap = msgs[0].len * 2 + 4096;
			buf = realloc(buf, cap);
			continue;
		}
		if (rc < 0) {
			snprintf(first_err, sizeof(first_err), "recv: %s", takt_strerror(rc));
			errors++;
			break;
		}
		if (!got)
			t0 = now_s();
		for (int i = 0; i < rc; i++) {
			uint64_t seq = 0;
			int bad = rec_check(msgs[i].data, msgs[i].len, msgs[i].type, &seq);
			got++;
			if (!bad && !o->any_size && msgs[i].len != rec_len(seq, o->min, o->max))
				bad = -5;
			if (!bad) {
				if (seq == last + 1) {
					/* in order */
				} else if (o->dups && seq >= 1 && seq <= last) {
					dups++;
				} else {
					bad = -6;
				}
			}
			if (bad) {
				if (!errors)
					snprintf(first_err, sizeof(first_err),
						 "record %llu (seq %llu after %llu, len %u, type %u): check %d",
						 (unsigned long long)got, (unsigned long long)seq,
						 (unsigned long long)last, msgs[i].len, msgs[i].type, bad);
				errors++;
				if (seq > last && seq <= count)
					last = seq;
			} else {
				last = seq;
			}
			if (last > maxseq)
				maxseq = last;
		}
		t1 = now_s();
		if (errors > 100)
			break;
	}
	takt_consumer_close(c);
	free(buf);
	double dt = t1 - t0;
	int ok = errors == 0 && maxseq == count && (o->dups || got == count);
	printf("peer_c: consume %s records=%llu errors=%llu dups=%llu last=%llu seconds=%.3f rate=%.0f/s%s%s\n",
	       ok ? "ok" : "FAILED", (unsigned long long)got, (unsigned long long)errors,
	       (unsigned long long)dups, (unsigned long long)maxseq, dt,
	       dt > 0 ? (double)got / dt : 0.0, first_err[0] ? " first_error=" : "", first_err);
	return ok ? 0 : 1;
}

static int do_echo(const char *in, const char *out, uint64_t count)
{
	takt_consumer *c;
	takt_producer *p;
	int rc = takt_consumer_open(in, &c);
	if (rc < 0) {
		printf("peer_c: echo failed: open %s: %s\n", in, takt_strerror(rc));
		return 1;
	}
	rc = takt_producer_open(out, &p);
	if (rc < 0) {
		printf("peer_c: echo failed: open %s: %s\n", out, takt_strerror(rc));
		takt_consumer_close(c);
		return 1;
	}
	/* PEER_C_SPIN_US: the echo's spin budget before it parks (takt's
	 * default otherwise); bench_peers.py sets it for the latency run. */
	const char *spin = getenv("PEER_C_SPIN_US");
	if (spin)
		takt_consumer_set_spin_ns(c, (uint32_t)strtoul(spin, NULL, 10) * 1000u);
	printf("ready\n");
	fflush(stdout);
	size_t cap = 1u << 20;
	uint8_t *buf = malloc(cap);
	struct takt_msg msgs[256];
	uint64_t n = 0;
	while (count == 0 || n < count) {
		rc = takt_recv_batch(c, msgs, 256, buf, cap, takt_deadline_in(60000000000ull));
		if (rc < 0) {
			printf("peer_c: echo stopped after %llu records: %s\n", (unsigned long long)n,
			       takt_strerror(rc));
			break;
		}
		for (int i = 0; i < rc; i++) {
			int s = takt_send(p, msgs[i].type, msgs[i].data, msgs[i].len,
					  takt_deadline_in(60000000000ull));
			if (s < 0) {
				printf("peer_c: echo send failed: %s\n", takt_strerror(s));
				rc = s;
				break;
			}
		}
		if (rc < 0)
			break;
		n += (uint64_t)rc;
	}
	printf("peer_c: echo %s records=%llu\n", count && n >= count ? "ok" : "ended",
	       (unsigned long long)n);
	takt_producer_close(p);
	takt_consumer_close(c);
	free(buf);
	return count && n >= count ? 0 : 1;
}

int main(int argc, char **argv)
{
	crc_init();
	if (argc < 3)
		return usage();
	const char *cmd = argv[1];
	if (strcmp(cmd, "create") == 0) {
		struct takt_queue_config qc = { .capacity = argc > 3 ? strtoull(argv[3], NULL, 0) : 1u << 20,
						.lanes = 1, .mode = argc > 5 ? (uint32_t)strtoul(argv[5], NULL, 8) : 0666 };
		qc.max_record = argc > 4 ? (uint32_t)strtoul(argv[4], NULL, 0) : 4096;
		int rc = takt_queue_create(argv[2], &qc);
		printf("peer_c: create %s: %s\n", argv[2], rc < 0 ? takt_strerror(rc) : "ok");
		return rc < 0 ? 1 : 0;
	}
	if (strcmp(cmd, "rm") == 0) {
		int rc = takt_unlink(argv[2]);
		return rc < 0 && rc != -ENOENT ? 1 : 0;
	}
	if (strcmp(cmd, "produce") == 0 && (argc == 4 || argc == 6)) {
		uint32_t min = argc == 6 ? (uint32_t)atoi(argv[4]) : 16;
		uint32_t max = argc == 6 ? (uint32_t)atoi(argv[5]) : 200;
		if (min < 12 || max < min)
			return usage();
		return do_produce(argv[2], strtoull(argv[3], NULL, 10), min, max);
	}
	if (strcmp(cmd, "consume") == 0 && argc >= 4) {
		struct consume_opts o = { .idle_ms = 20000, .min = 16, .max = 200 };
		for (int i = 4; i < argc; i++) {
			if (strcmp(argv[i], "--dups") == 0)
				o.dups = 1;
			else if (strcmp(argv[i], "--any-size") == 0)
				o.any_size = 1;
			else if (strcmp(argv[i], "--ready") == 0)
				o.ready = 1;
			else if (strcmp(argv[i], "--idle-ms") == 0 && i + 1 < argc)
				o.idle_ms = strtoull(argv[++i], NULL, 10);
			else if (strcmp(argv[i], "--min") == 0 && i + 1 < argc)
				o.min = (uint32_t)atoi(argv[++i]);
			else if (strcmp(argv[i], "--max") == 0 && i + 1 < argc)
				o.max = (uint32_t)atoi(argv[++i]);
			else
				return usage();
		}
		return do_consume(argv[2], strtoull(argv[3], NULL, 10), &o);
	}
	if (strcmp(cmd, "echo") == 0 && argc == 5)
		return do_echo(argv[2], argv[3], strtoull(argv[4], NULL, 10));
	return usage();
}
