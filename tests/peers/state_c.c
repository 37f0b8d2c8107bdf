/* SPDX-License-Identifier: MIT */
/*
 * state_c - the native (shared-memory) side of the state-channel peer tests.
 *
 * peer_c covers queue channels; this covers state channels (a process image
 * with one writer and one reader), through include/takt.h only, while the
 * Python client under test reads and writes the same channel through taktd.
 *
 *   state_c create NAME SIZE [MODE]            create a state channel (mode 0666)
 *   state_c write NAME COUNT [options]         publish images 1..COUNT
 *       --len N        image bytes (default: the image size; at least 16)
 *       --period-us U  pause between two images (default 100)
 *       --ready        print "ready" once the writer is open
 *       --hold-ms MS   keep the writer open MS after the last image
 *   state_c read NAME LAST [options]           read images until image LAST
 *       --after-gen G    the writer's image 1 is the channel's generation G+1:
 *                        skip older images (default 0: a new channel)
 *       --timeout-ms MS  give up when no newer image came for MS (default 20000)
 *       --ready          print "ready" once the reader is open
 *
 * Test images (the layout of peer_c's records, sequence = image number):
 *   [0, 8)       sequence number, u64 little-endian, 1, 2, 3, ...
 *   [8, len-4)   byte i = (i + seq) & 0xff
 *   [len-4, len) CRC-32 (zlib's) of [0, len-4), u32 little-endian
 *
 * read takes every new image it sees (takt_state_read, waiting with
 * takt_state_wait_newer), checks its checksum and pattern, that it is the
 * image of its generation (sequence = generation - G) and that generations
 * only increase, and stops at sequence LAST.
 * Each mode prints one result line, e.g.
 *   state_c: read ok images=812 last=5000 generation=5000 len=256 errors=0
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
#include <time.h>

#include "takt.h"
#include "peer_wire.h"

/* 0 if p is a valid test image (a test body of at least 16 bytes). */
static int image_check(const uint8_t *p, uint32_t len, uint64_t *seq)
{
	if (len < 16)
		return -1;
	return body_check(p, len, seq);
}

static int usage(void)
{
	fprintf(stderr, "usage: state_c create NAME SIZE [MODE]\n"
			"       state_c write NAME COUNT [--len N] [--period-us U] [--ready] [--hold-ms MS]\n"
			"       state_c read NAME LAST [--after-gen G] [--timeout-ms MS] [--ready]\n");
	return 2;
}

static void pause_ns(uint64_t ns)
{
	struct timespec ts = { .tv_sec = (time_t)(ns / 1000000000u), .tv_nsec = (long)(ns % 1000000000u) };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static int do_write(const char *name, uint64_t count, int argc, char **argv)
{
	uint32_t len = 0;
	uint64_t period_us = 100, hold_ms = 0;
	int ready = 0;
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--len") == 0 && i + 1 < argc)
			len = (uint32_t)strtoul(argv[++i], NULL, 0);
		else if (strcmp(argv[i], "--period-us") == 0 && i + 1 < argc)
			period_us = strtoull(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--hold-ms") == 0 && i + 1 < argc)
			hold_ms = strtoull(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--ready") == 0)
			ready = 1;
		else
			return usage();
	}
	takt_state_writer *w;
	int rc = takt_state_writer_open(name, &w);
	if (rc < 0) {
		printf("state_c: write failed: open %s: %s\n", name, takt_strerror(rc));
		return 1;
	}
	struct takt_channel_config cfg;
	takt_channel_config_get(takt_state_writer_channel(w), &cfg);
	if (!len)
		len = cfg.max_record;
	if (len < 16 || len > cfg.max_record) {
		printf("state_c: write failed: --len %u outside 16..%u\n", len, cfg.max_record);
		takt_state_writer_close(w);
		return 2;
	}
	if (ready) {
		printf("ready\n");
		fflush(stdout);
	}
	uint8_t *buf = malloc(len);
	for (uint64_t seq = 1; seq <= count; seq++) {
		body_fill(buf, seq, len);
		rc = takt_state_write(w, buf, len);
		if (rc < 0) {
			printf("state_c: write failed: image %llu: %s\n", (unsigned long long)seq,
			       takt_strerror(rc));
			free(buf);
			takt_state_writer_close(w);
			return 1;
		}
		if (period_us && seq < count)
			pause_ns(period_us * 1000u);
	}
	free(buf);
	if (hold_ms)
		pause_ns(hold_ms * 1000000u);
	takt_state_writer_close(w);
	printf("state_c: write ok images=%llu len=%u\n", (unsigned long long)count, len);
	return 0;
}

static int do_read(const char *name, uint64_t last_wanted, int argc, char **argv)
{
	uint64_t timeout_ms = 20000, after_gen = 0;
	int ready = 0;
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--timeout-ms") == 0 && i + 1 < argc)
			timeout_ms = strtoull(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--after-gen") == 0 && i + 1 < argc)
			after_gen = strtoull(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--ready") == 0)
			ready = 1;
		else
			return usage();
	}
	takt_state_reader *r;
	int rc = takt_state_reader_open(name, &r);
	if (rc < 0) {
		printf("state_c: read failed: open %s: %s\n", name, takt_strerror(rc));
		return 1;
	}
	if (ready) {
		printf("ready\n");
		fflush(stdout);
	}
	struct takt_channel_config cfg;
	takt_channel_config_get(takt_state_reader_channel(r), &cfg);
	uint8_t *buf = malloc(cfg.max_record);
	uint64_t images = 0, errors = 0, last = 0, gen = 0;
	uint32_t len = 0;
	char first_err[160] = "";
	while (last < last_wanted) {
		struct takt_state_info info;
		rc = takt_state_read(r, buf, cfg.max_record, &info);
		if (rc >= 0 && info.fresh && info.generation <= after_gen)
			rc = -EAGAIN; /* an older writer's image: wait for a newer one */
		if (rc >= 0 && info.fresh) {
			uint64_t seq = 0;
			int bad = image_check(buf, (uint32_t)rc, &seq);
			if (!bad && seq != info.generation - after_gen)
				bad = -4;
			if (!bad && (seq <= last || info.generation <= gen))
				bad = -5;
			if (bad) {
				if (!errors)
					snprintf(first_err, sizeof first_err,
						 "image seq %llu (after %llu) generation %llu len %d: check %d",
						 (unsigned long long)seq, (unsigned long long)last,
						 (unsigned long long)info.generation, rc, bad);
				errors++;
				if (errors > 100)
					break;
			}
			images++;
			if (seq > last)
				last = seq;
			gen = info.generation;
			len = (uint32_t)rc;
			continue;
		}
		if (rc < 0 && rc != -EAGAIN) {
			snprintf(first_err, sizeof first_err, "read: %s", takt_strerror(rc));
			errors++;
			break;
		}
		rc = takt_state_wait_newer(r, takt_deadline_in(timeout_ms * 1000000ull));
		if (rc == -ETIMEDOUT) {
			snprintf(first_err, sizeof first_err, "no newer image for %llu ms",
				 (unsigned long long)timeout_ms);
			errors++;
			break;
		}
	}
	takt_state_reader_close(r);
	free(buf);
	int ok = errors == 0 && last == last_wanted;
	printf("state_c: read %s images=%llu last=%llu generation=%llu len=%u errors=%llu%s%s\n",
	       ok ? "ok" : "FAILED", (unsigned long long)images, (unsigned long long)last,
	       (unsigned long long)gen, len, (unsigned long long)errors,
	       first_err[0] ? " first_error=" : "", first_err);
	return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
	crc_init();
	if (argc < 4)
		return usage();
	const char *cmd = argv[1], *name = argv[2];
	if (strcmp(cmd, "create") == 0 && argc <= 5) {
		struct takt_state_config sc = { .image_size = (uint32_t)strtoul(argv[3], NULL, 0),
						.mode = argc > 4 ? (uint32_t)strtoul(argv[4], NULL, 8) : 0666 };
		int rc = takt_state_create(name, &sc);
		printf("state_c: create %s: %s\n", name, rc < 0 ? takt_strerror(rc) : "ok");
		return rc < 0 ? 1 : 0;
	}
	if (strcmp(cmd, "write") == 0)
		return do_write(name, strtoull(argv[3], NULL, 10), argc - 4, argv + 4);
	if (strcmp(cmd, "read") == 0)
		return do_read(name, strtoull(argv[3], NULL, 10), argc - 4, argv + 4);
	return usage();
}
