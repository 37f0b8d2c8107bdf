/* SPDX-License-Identifier: MIT */
/*
 * test_header.c - validation of the segment header at open: wrong version,
 * truncation, garbage, inconsistent sizes, not ready yet.  The segments are
 * made by takt_queue_create() and then damaged through a raw mapping, or
 * written from scratch with shm_open().
 */
#define _GNU_SOURCE
#include "common.h"
#include "layout.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

TT_SUITE(header);

#define CAP 4096u
#define LANES 2u
#define MAXREC 512u

/* Every kind of open refuses the channel with err (or one of err/alt). */
static void expect_open_err2(const char *name, int err, int alt, const char *what)
{
	takt_channel *ch = NULL;
	takt_producer *p = NULL;
	takt_consumer *c = NULL;
	int rc = takt_channel_open(name, TAKT_OPEN_RDONLY, &ch);
	cr_expect(rc == err || rc == alt, "%s: channel_open(RDONLY) = %d (%s), expected %d", what, rc,
		  takt_strerror(rc), err);
	if (rc == 0)
		takt_channel_close(ch);
	rc = takt_channel_open(name, 0, &ch);
	cr_expect(rc == err || rc == alt, "%s: channel_open = %d (%s), expected %d", what, rc,
		  takt_strerror(rc), err);
	if (rc == 0)
		takt_channel_close(ch);
	rc = takt_producer_open(name, &p);
	cr_expect(rc == err || rc == alt, "%s: producer_open = %d (%s), expected %d", what, rc,
		  takt_strerror(rc), err);
	if (rc == 0)
		takt_producer_close(p);
	rc = takt_consumer_open(name, &c);
	cr_expect(rc == err || rc == alt, "%s: consumer_open = %d (%s), expected %d", what, rc,
		  takt_strerror(rc), err);
	if (rc == 0)
		takt_consumer_close(c);
}

static void expect_open_err(const char *name, int err, const char *what)
{
	expect_open_err2(name, err, err, what);
}

static void expect_open_ok(const char *name, const char *what)
{
	takt_channel *ch = NULL;
	int rc = takt_channel_open(name, 0, &ch);
	cr_assert_eq(rc, 0, "%s: channel_open = %d (%s)", what, rc, takt_strerror(rc));
	takt_channel_close(ch);
}

static struct takt_seg_header *hdr_of(struct tt_raw *raw)
{
	return (struct takt_seg_header *)raw->base;
}

static void set_ready(struct takt_seg_header *h, uint32_t v)
{
	atomic_store_explicit(&h->ready, v, memory_order_release);
}

/* A fresh valid channel and a raw mapping of it. */
static const char *fresh(struct tt_raw *raw)
{
	const char *name = tt_name();
	tt_create(name, CAP, LANES, MAXREC);
	expect_open_ok(name, "fresh");
	tt_raw_map(name, raw);
	cr_assert_eq(raw->size, takt_total_size(LANES, CAP));
	return name;
}

Test(header, valid_header_fields)
{
	/* the creator wrote what layout.h describes */
	struct tt_raw raw;
	fresh(&raw);
	struct takt_seg_header *h = hdr_of(&raw);
	cr_expect_eq(h->magic, TAKT_MAGIC);
	cr_expect_eq(h->layout_major, TAKT_LAYOUT_MAJOR);
	cr_expect_eq(h->header_size, TAKT_SEG_HEADER_SIZE);
	cr_expect_eq(h->total_size, raw.size);
	cr_expect_eq(h->kind, TAKT_KIND_QUEUE);
	cr_expect_eq(h->lane_count, LANES);
	cr_expect_eq(h->lane_capacity, CAP);
	cr_expect_eq(h->max_record, MAXREC);
	cr_expect_eq(h->consumer_offset, TAKT_CONSUMER_OFFSET);
	cr_expect_eq(h->lanes_offset, TAKT_LANES_OFFSET);
	cr_expect_eq(h->lane_stride, takt_lane_stride(CAP));
	cr_expect_eq(h->lane_data_offset, TAKT_LANE_DATA_OFFSET);
	cr_expect_eq(h->creator_pid, (uint32_t)getpid());
	cr_expect_eq(atomic_load(&h->ready), TAKT_READY_VALUE);
	tt_raw_unmap(&raw);
}

Test(header, wrong_major_version)
{
	struct tt_raw raw;
	const char *name = fresh(&raw);
	static const uint16_t majors[] = {0, TAKT_LAYOUT_MAJOR + 1, 0xffff};
	for (size_t i = 0; i < 3; i++) {
		hdr_of(&raw)->layout_major = majors[i];
		char what[32];
		snprintf(what, sizeof what, "major %u", majors[i]);
		expect_open_err(name, -EPROTONOSUPPORT, what);
	}
	hdr_of(&raw)->layout_major = TAKT_LAYOUT_MAJOR;
	expect_open_ok(name, "major restored");
	tt_raw_unmap(&raw);
}

Test(header, newer_minor_version_accepted)
{
	struct tt_raw raw;
	const char *name = fresh(&raw);
	hdr_of(&raw)->layout_minor = TAKT_LAYOUT_MINOR + 3;
	takt_channel *ch = NULL;
	cr_assert_eq(takt_channel_open(name, TAKT_OPEN_RDONLY, &ch), 0,
		     "a newer minor version is compatible by definition");
	struct takt_channel_config cc;
	cr_assert_eq(takt_channel_config_get(ch, &cc), 0);
	cr_expect_eq(cc.layout_minor, TAKT_LAYOUT_MINOR + 3);
	takt_channel_close(ch);
	tt_raw_unmap(&raw);
}

Test(header, wrong_magic)
{
	struct tt_raw raw;
	const char *name = fresh(&raw);
	hdr_of(&raw)->magic ^= 1;
	expect_open_err(name, -EBADMSG, "magic ^ 1");
	hdr_of(&raw)->magic = 0;
	expect_open_err(name, -EBADMSG, "magic 0");
	tt_raw_unmap(&raw);
}

Test(header, truncated)
{
	struct tt_raw raw;
	const char *name = fresh(&raw);
	uint64_t total = raw.size;
	static const uint64_t less[] = {4096, 8, 1};
	for (size_t i = 0; i < 3; i++) {
		cr_assert_eq(ftruncate(raw.fd, (off_t)(total - less[i])), 0);
		char what[64];
		snprintf(what, sizeof what, "truncated by %llu", (unsigned long long)less[i]);
		expect_open_err(name, -EBADMSG, what);
	}
	/* down to the header alone, then less than a header */
	cr_assert_eq(ftruncate(raw.fd, TAKT_SEG_HEADER_SIZE), 0);
	expect_open_err(name, -EBADMSG, "header only");
	/* the mapping beyond the file is gone now: unmap before touching it */
	tt_raw_unmap(&raw);
	int fd;
	{
		char obj[512];
		snprintf(obj, sizeof obj, "/takt.%s", name);
		fd = shm_open(obj, O_RDWR, 0);
		cr_assert_geq(fd, 0);
	}
	cr_assert_eq(ftruncate(fd, 100), 0);
	/* the ready word is beyond the end of the file: not a valid segment,
	 * or (the creator may not have sized it yet) not ready */
	expect_open_err2(name, -EBADMSG, -EAGAIN, "100 bytes");
	close(fd);
}

Test(header, garbage)
{
	uint64_t seed = tt_seed();
	struct tt_raw raw;
	const char *name = fresh(&raw);
	for (int round = 0; round < 64; round++) {
		uint64_t x = tt_mix64(seed + (uint64_t)round);
		/* the whole header random (round < 32) or only after the magic and
		 * version (a plausible-looking segment with garbage sizes) */
		size_t from = round < 32 ? 0 : 12;
		tt_fill(raw.base + from, TAKT_SEG_HEADER_SIZE - 4 - from, x, 0);
		if (round >= 32) {
			hdr_of(&raw)->magic = TAKT_MAGIC;
			hdr_of(&raw)->layout_major = TAKT_LAYOUT_MAJOR;
		}
		set_ready(hdr_of(&raw), TAKT_READY_VALUE);
		char what[64];
		snprintf(what, sizeof what, "garbage round %d (seed %llu)", round, (unsigned long long)seed);
		if (round < 32 && hdr_of(&raw)->magic == TAKT_MAGIC)
			continue; /* 2^-64 */
		expect_open_err(name, -EBADMSG, what);
	}
	/* garbage everywhere, not just in the header */
	tt_fill(raw.base, raw.size, seed, 1);
	set_ready(hdr_of(&raw), TAKT_READY_VALUE);
	expect_open_err(name, -EBADMSG, "whole segment garbage");
	tt_raw_unmap(&raw);
}

/* Each field of the header made inconsistent on its own. */
struct field_case {
	const char *what;
	size_t off;
	unsigned size;
	uint64_t value;
};

Test(header, inconsistent_fields)
{
	const uint64_t total = takt_total_size(LANES, CAP);
	const struct field_case cases[] = {
		{"header_size 0", 12, 4, 0},
		{"header_size 255", 12, 4, 255},
		{"header_size 4096", 12, 4, 4096},
		{"total_size 0", 16, 8, 0},
		{"total_size +4096", 16, 8, total + 4096},
		{"total_size -4096", 16, 8, total - 4096},
		{"total_size max", 16, 8, UINT64_MAX},
		{"kind 0", 24, 4, 0},
		{"kind 2", 24, 4, 2},
		{"kind max", 24, 4, UINT32_MAX},
		{"lane_count 0", 28, 4, 0},
		{"lane_count 1", 28, 4, 1},
		{"lane_count 3", 28, 4, 3},
		{"lane_count 65", 28, 4, TAKT_LANES_MAX + 1},
		{"lane_count max", 28, 4, UINT32_MAX},
		{"lane_capacity 0", 32, 8, 0},
		{"lane_capacity 1024", 32, 8, 1024},
		{"lane_capacity 2048", 32, 8, 2048},
		{"lane_capacity 4097", 32, 8, 4097},
		{"lane_capacity 8192", 32, 8, 8192},
		{"lane_capacity 2^40", 32, 8, 1ull << 40},
		{"lane_capacity 2^63", 32, 8, 1ull << 63},
		{"max_record 0", 40, 4, 0},
		{"max_record cap/4+1", 40, 4, CAP / 4 + 1},
		{"max_record cap", 40, 4, CAP},
		{"max_record max", 40, 4, UINT32_MAX},
		{"consumer_offset +128", 64, 8, TAKT_CONSUMER_OFFSET + 128},
		{"consumer_offset 0", 64, 8, 0},
		{"consumer_offset huge", 64, 8, 1ull << 62},
		{"lanes_offset +128", 72, 8, TAKT_LANES_OFFSET + 128},
		{"lanes_offset 0", 72, 8, 0},
		{"lanes_offset huge", 72, 8, UINT64_MAX - 64},
		{"lane_stride -128", 80, 8, takt_lane_stride(CAP) - 128},
		{"lane_stride 0", 80, 8, 0},
		{"lane_stride huge", 80, 8, 1ull << 63},
		{"lane_data_offset +128", 88, 8, TAKT_LANE_DATA_OFFSET + 128},
		{"lane_data_offset 0", 88, 8, 0},
	};
	struct tt_raw raw;
	const char *name = fresh(&raw);
	uint8_t saved[TAKT_SEG_HEADER_SIZE];
	memcpy(saved, raw.base, sizeof saved);
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const struct field_case *fc = &cases[i];
		if (fc->size == 4) {
			uint32_t v = (uint32_t)fc->value;
			memcpy(raw.base + fc->off, &v, 4);
		} else {
			memcpy(raw.base + fc->off, &fc->value, 8);
		}
		expect_open_err(name, -EBADMSG, fc->what);
		memcpy(raw.base, saved, sizeof saved);
		expect_open_ok(name, "restored");
	}
	tt_raw_unmap(&raw);
}

Test(header, ready_unset_eagain)
{
	struct tt_raw raw;
	const char *name = fresh(&raw);
	set_ready(hdr_of(&raw), 0);
	expect_open_err(name, -EAGAIN, "ready 0");
	set_ready(hdr_of(&raw), TAKT_READY_VALUE ^ 0x100);
	expect_open_err2(name, -EAGAIN, -EBADMSG, "ready wrong value");
	set_ready(hdr_of(&raw), TAKT_READY_VALUE);
	expect_open_ok(name, "ready again");
	tt_raw_unmap(&raw);
}

/* Segments a creator could leave mid-way: just made (size 0), or sized but
 * not yet written (all zero). */
Test(header, size_zero_eagain)
{
	const char *name = tt_name();
	char obj[512];
	snprintf(obj, sizeof obj, "/takt.%s", name);
	int fd = shm_open(obj, O_RDWR | O_CREAT | O_EXCL, 0600);
	cr_assert_geq(fd, 0, "shm_open: %s", strerror(errno));
	expect_open_err(name, -EAGAIN, "size 0");
	cr_assert_eq(ftruncate(fd, (off_t)takt_total_size(LANES, CAP)), 0);
	expect_open_err(name, -EAGAIN, "all zero");
	/* create still refuses the name, the file exists */
	struct takt_queue_config cfg = {.capacity = CAP, .lanes = 1, .max_record = 64};
	cr_expect_eq(takt_queue_create(name, &cfg), -EEXIST);
	close(fd);
}

Test(header, unlink_garbage_segment)
{
	uint64_t seed = tt_seed();
	struct tt_raw raw;
	const char *name = fresh(&raw);
	tt_fill(raw.base, raw.size, seed, 2);
	set_ready(hdr_of(&raw), TAKT_READY_VALUE);
	tt_raw_unmap(&raw);
	int rc = takt_unlink(name);
	cr_expect_eq(rc, 0, "unlink of a garbage segment = %d (%s)", rc, takt_strerror(rc));
	char path[512];
	tt_seg_path(name, path, sizeof path);
	cr_expect_neq(access(path, F_OK), 0, "segment file still there");
	cr_expect_eq(tt_leftovers(name), 0, "semaphores left behind by unlink of a garbage segment");
}

Test(header, unlink_raw_file_without_semaphores)
{
	const char *name = tt_name();
	char obj[512];
	snprintf(obj, sizeof obj, "/takt.%s", name);
	int fd = shm_open(obj, O_RDWR | O_CREAT | O_EXCL, 0600);
	cr_assert_geq(fd, 0);
	close(fd);
	int rc = takt_unlink(name);
	cr_expect(rc == 0 || rc == -ENOENT, "unlink = %d", rc);
	cr_expect_eq(tt_leftovers(name), 0);
}
