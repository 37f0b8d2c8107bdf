/* SPDX-License-Identifier: MIT */
/*
 * test_state_corrupt.c - a state channel's segment is untrusted input.
 * A header of kind 2 whose sizes disagree (with each other, with the file,
 * with the limits) is refused at open with -EBADMSG; hostile values in the
 * middle word, in writer_slot/reader_slot and in a slot's len make the
 * operations return -EBADMSG, never crash or read out of bounds (run this
 * under ASan+UBSan); a scribbler process writing random values while both
 * endpoints run gets only the documented return codes.
 */
#include "ts_common.h"

#include <criterion/logging.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

TS_SUITE(corrupt);

#define IMG 1000u

/* Both endpoints refuse to open with `expect`. */
static void expect_endpoints_refused(const char *name, int expect, const char *what)
{
	takt_state_writer *w = NULL;
	takt_state_reader *r = NULL;
	int rc = takt_state_writer_open(name, &w);
	cr_assert_eq(rc, expect, "%s: writer_open = %d (%s)", what, rc, takt_strerror(rc));
	rc = takt_state_reader_open(name, &r);
	cr_assert_eq(rc, expect, "%s: reader_open = %d (%s)", what, rc, takt_strerror(rc));
}

/* The segment itself is refused: any mapping, then both endpoints. */
static void expect_refused(const char *name, int expect, const char *what)
{
	takt_channel *ch = NULL;
	int rc = takt_channel_open(name, 0, &ch);
	cr_assert_eq(rc, expect, "%s: channel_open = %d (%s)", what, rc, takt_strerror(rc));
	rc = takt_channel_open(name, TAKT_OPEN_RDONLY, &ch);
	cr_assert_eq(rc, expect, "%s: channel_open(RDONLY) = %d (%s)", what, rc, takt_strerror(rc));
	expect_endpoints_refused(name, expect, what);
}

/* ---- headers ------------------------------------------------------------------ */

enum hdr_case {
	H_CAPACITY, H_STRIDE, H_BOTH_STRIDES, H_IMAGE_BIGGER, H_IMAGE_ZERO, H_IMAGE_HUGE,
	H_IMAGE_MAX_FILE_SMALL, H_LANES_2, H_LANES_0, H_DATA_OFFSET, H_TOTAL, H_KIND_3, H_KIND_0,
	H_CONSUMER_OFFSET, H_LANES_OFFSET, H_FLAGS, H_HEADER_SIZE, H_MAGIC, H_COUNT
};

static const char *const hdr_case_name[H_COUNT] = {
	"lane_capacity + 128", "lane_stride + 128", "both strides of a bigger image",
	"image size 2000 with the strides of 1000", "image size 0", "image size > IMAGE_MAX",
	"consistent header of a 64 MiB image in a small file", "lane_count 2", "lane_count 0",
	"lane_data_offset 0", "total_size + 4096", "kind 3", "kind 0", "consumer_offset 512",
	"lanes_offset 768", "flags 1", "header_size 128", "magic",
};

static void mutate(struct takt_seg_header *h, enum hdr_case c)
{
	switch (c) {
	case H_CAPACITY: h->lane_capacity += 128; break;
	case H_STRIDE: h->lane_stride += 128; break;
	case H_BOTH_STRIDES:
		h->lane_capacity = h->lane_stride = takt_state_slot_stride(2000);
		break;
	case H_IMAGE_BIGGER: h->max_record = 2000; break;
	case H_IMAGE_ZERO: h->max_record = 0; break;
	case H_IMAGE_HUGE:
		h->max_record = TAKT_STATE_IMAGE_MAX + 1;
		h->lane_capacity = h->lane_stride = takt_state_slot_stride(TAKT_STATE_IMAGE_MAX + 1ull);
		h->total_size = takt_state_total_size(TAKT_STATE_IMAGE_MAX + 1ull);
		break;
	case H_IMAGE_MAX_FILE_SMALL:
		h->max_record = TAKT_STATE_IMAGE_MAX;
		h->lane_capacity = h->lane_stride = takt_state_slot_stride(TAKT_STATE_IMAGE_MAX);
		h->total_size = takt_state_total_size(TAKT_STATE_IMAGE_MAX);
		break;
	case H_LANES_2: h->lane_count = 2; break;
	case H_LANES_0: h->lane_count = 0; break;
	case H_DATA_OFFSET: h->lane_data_offset = 0; break;
	case H_TOTAL: h->total_size += 4096; break;
	case H_KIND_3: h->kind = 3; break;
	case H_KIND_0: h->kind = 0; break;
	case H_CONSUMER_OFFSET: h->consumer_offset = 512; break;
	case H_LANES_OFFSET: h->lanes_offset = 768; break;
	case H_FLAGS: h->flags = 1; break;
	case H_HEADER_SIZE: h->header_size = 128; break;
	case H_MAGIC: h->magic ^= 1; break;
	case H_COUNT: break;
	}
}

Test(corrupt, header_of_kind_2_with_wrong_sizes)
{
	const char *name = ts_name("hdr");
	for (int c = 0; c < H_COUNT; c++) {
		ts_create(name, IMG);
		struct ts_raw raw;
		ts_raw_map(name, &raw);
		mutate(ts_hdr(&raw), (enum hdr_case)c);
		ts_raw_unmap(&raw);
		expect_refused(name, -EBADMSG, hdr_case_name[c]);
		ts_remove(name);
	}
}

Test(corrupt, queue_header_relabelled_as_state)
{
	const char *name = ts_name("q-as-s");
	struct takt_queue_config qc = {.capacity = 4096, .lanes = 1, .max_record = 64};
	cr_assert_eq(takt_queue_create(name, &qc), 0);
	struct ts_raw raw;
	ts_raw_map(name, &raw);
	ts_hdr(&raw)->kind = TAKT_KIND_STATE;
	ts_raw_unmap(&raw);
	expect_refused(name, -EBADMSG, "queue header with kind 2");
}

Test(corrupt, state_header_relabelled_as_queue)
{
	const char *name = ts_name("s-as-q");
	ts_create(name, IMG);
	struct ts_raw raw;
	ts_raw_map(name, &raw);
	ts_hdr(&raw)->kind = TAKT_KIND_QUEUE;
	ts_raw_unmap(&raw);
	expect_refused(name, -EBADMSG, "state header with kind 1");
}

Test(corrupt, truncated_file)
{
	const char *name = ts_name("trunc");
	ts_create(name, 10000);
	struct ts_raw raw;
	ts_raw_map(name, &raw);
	cr_assert_eq(ftruncate(raw.fd, 4096), 0);
	ts_raw_unmap(&raw);
	expect_refused(name, -EBADMSG, "file truncated to 4096 bytes");
}

/* ---- hostile control words --------------------------------------------------------- */

struct fixture {
	const char *name;
	struct ts_raw raw;
	struct takt_seg_state *st;
};

static void setup(struct fixture *f, const char *tag)
{
	f->name = ts_name(tag);
	ts_create(f->name, IMG);
	ts_raw_map(f->name, &f->raw);
	f->st = ts_ctl(&f->raw);
}

static void put(takt_state_writer *w, uint64_t gen)
{
	uint8_t buf[IMG];
	ts_image_make(buf, IMG, gen);
	cr_assert_eq(takt_state_write(w, buf, IMG), 0);
}

static int read_rc(takt_state_reader *r)
{
	uint8_t buf[IMG];
	struct takt_state_info info;
	return takt_state_read(r, buf, sizeof buf, &info);
}

static int peek_rc(takt_state_reader *r)
{
	const void *img = NULL;
	struct takt_state_info info;
	return takt_state_peek(r, &img, &info);
}

Test(corrupt, middle_index_3_at_open)
{
	struct fixture f;
	setup(&f, "mid3-open");
	atomic_store(&f.st->middle, 3);
	expect_endpoints_refused(f.name, -EBADMSG, "middle index 3");
	atomic_store(&f.st->middle, 3 | TAKT_STATE_NEW);
	expect_endpoints_refused(f.name, -EBADMSG, "middle index 3 | NEW");
	/* the refusals left the slots free */
	atomic_store(&f.st->middle, 0);
	takt_state_writer *w = ts_writer(f.name);
	takt_state_reader *r = ts_reader(f.name);
	takt_state_writer_close(w);
	takt_state_reader_close(r);
	ts_raw_unmap(&f.raw);
}

Test(corrupt, middle_index_3_writer)
{
	struct fixture f;
	setup(&f, "mid3-w");
	takt_state_writer *w = ts_writer(f.name);
	atomic_store(&f.st->middle, 3);
	uint8_t buf[IMG];
	ts_image_make(buf, IMG, 1);
	cr_assert_eq(takt_state_write(w, buf, IMG), -EBADMSG, "publish that got slot 3 back");
	cr_assert_eq(takt_state_write(w, buf, IMG), -EBADMSG, "a broken writer stays broken");
	cr_assert_eq(takt_state_publish(w, IMG), -EBADMSG);
	(void)takt_state_buffer(w);
	takt_state_writer_close(w);
	ts_raw_unmap(&f.raw);
}

Test(corrupt, middle_index_3_reader)
{
	struct fixture f;
	setup(&f, "mid3-r");
	takt_state_writer *w = ts_writer(f.name);
	takt_state_reader *r = ts_reader(f.name);
	put(w, 1);
	/* a new image announced in slot 3 */
	atomic_store(&f.st->middle, 3 | TAKT_STATE_NEW);
	cr_assert_eq(read_rc(r), -EBADMSG);
	cr_assert_eq(read_rc(r), -EBADMSG, "a broken reader stays broken");
	cr_assert_eq(peek_rc(r), -EBADMSG);
	(void)takt_state_wait_newer(r, TAKT_NO_WAIT);
	takt_state_reader_close(r);

	/* a new reader's first read takes the middle even without NEW */
	unsigned ws = atomic_load(&f.st->writer_slot);
	cr_assert_leq(ws, 2u);
	atomic_store(&f.st->middle, (ws + 1) % 3);
	r = ts_reader(f.name);
	atomic_store(&f.st->middle, 3);
	cr_assert_eq(peek_rc(r), -EBADMSG);
	cr_assert_eq(read_rc(r), -EBADMSG);
	takt_state_reader_close(r);
	takt_state_writer_close(w);
	ts_raw_unmap(&f.raw);
}

Test(corrupt, middle_is_own_slot)
{
	struct fixture f;
	setup(&f, "mid-own");
	takt_state_writer *w = ts_writer(f.name);
	takt_state_reader *r = ts_reader(f.name);
	put(w, 1);
	cr_assert_eq(read_rc(r), (int)IMG);
	/* the middle names the reader's own slot, NEW */
	unsigned rs = atomic_load(&f.st->reader_slot);
	cr_assert_leq(rs, 2u);
	atomic_store(&f.st->middle, rs | TAKT_STATE_NEW);
	cr_assert_eq(read_rc(r), -EBADMSG, "reader given its own slot back");
	takt_state_reader_close(r);
	/* the middle names the writer's own slot */
	unsigned ws = atomic_load(&f.st->writer_slot);
	cr_assert_leq(ws, 2u);
	atomic_store(&f.st->middle, ws);
	uint8_t buf[IMG];
	ts_image_make(buf, IMG, 2);
	cr_assert_eq(takt_state_write(w, buf, IMG), -EBADMSG, "writer given its own slot back");
	takt_state_writer_close(w);
	ts_raw_unmap(&f.raw);
}

Test(corrupt, owner_slot_indices_out_of_range)
{
	struct fixture f;
	setup(&f, "owner7");
	const uint32_t bad[] = {3, 7, 0x80000001u, UINT32_MAX};
	for (unsigned i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		/* the reader recovers its slot from the writer's stored index */
		atomic_store(&f.st->writer_slot, bad[i]);
		takt_state_reader *r = NULL;
		int rc = takt_state_reader_open(f.name, &r);
		cr_assert_eq(rc, -EBADMSG, "writer_slot %u: reader_open = %d", bad[i], rc);
		atomic_store(&f.st->writer_slot, 1);
		/* the writer from the reader's */
		atomic_store(&f.st->reader_slot, bad[i]);
		takt_state_writer *w = NULL;
		rc = takt_state_writer_open(f.name, &w);
		cr_assert_eq(rc, -EBADMSG, "reader_slot %u: writer_open = %d", bad[i], rc);
		atomic_store(&f.st->reader_slot, 2);
	}
	/* the refusals left the slots free: with sane values both open */
	takt_state_writer *w = ts_writer(f.name);
	takt_state_reader *r = ts_reader(f.name);
	put(w, 1);
	cr_assert_eq(read_rc(r), (int)IMG);
	/* a hostile stored index while both are open is not used: no harm */
	atomic_store(&f.st->writer_slot, 7);
	atomic_store(&f.st->reader_slot, 7);
	put(w, 2);
	uint8_t buf[IMG];
	struct takt_state_info info;
	cr_assert_eq(takt_state_read(r, buf, sizeof buf, &info), (int)IMG);
	cr_assert_eq(info.generation, 2u);
	cr_assert_null(ts_image_check(buf, IMG, 2));
	takt_state_writer_close(w);
	takt_state_reader_close(r);
	ts_raw_unmap(&f.raw);
}

Test(corrupt, slot_len_beyond_image)
{
	struct fixture f;
	setup(&f, "len");
	takt_state_writer *w = ts_writer(f.name);
	takt_state_reader *r = ts_reader(f.name);
	const uint32_t bad[] = {IMG + 1, IMG + 128, 0x7fffffffu, UINT32_MAX};
	for (unsigned i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		put(w, 2 * i + 1);
		unsigned m = (unsigned)(atomic_load(&f.st->middle) & TAKT_STATE_MIDDLE_MASK);
		cr_assert_leq(m, 2u);
		/* len == image size is fine */
		atomic_store(&ts_slot(&f.raw, IMG, m)->len, IMG);
		cr_assert_eq(peek_rc(r), (int)IMG);
		/* beyond it, in the reader's slot now (peek took the middle) */
		unsigned rs = atomic_load(&f.st->reader_slot);
		cr_assert_leq(rs, 2u);
		atomic_store(&ts_slot(&f.raw, IMG, rs)->len, bad[i]);
		cr_assert_eq(read_rc(r), -EBADMSG, "len %u in the reader's slot", bad[i]);
		cr_assert_eq(peek_rc(r), -EBADMSG);
		takt_state_reader_close(r);
		/* and in the middle, for a new reader */
		put(w, 2 * i + 2);
		m = (unsigned)(atomic_load(&f.st->middle) & TAKT_STATE_MIDDLE_MASK);
		atomic_store(&ts_slot(&f.raw, IMG, m)->len, bad[i]);
		r = ts_reader(f.name);
		cr_assert_eq(peek_rc(r), -EBADMSG, "len %u in the middle", bad[i]);
		cr_assert_eq(read_rc(r), -EBADMSG);
		takt_state_reader_close(r);
		r = ts_reader(f.name);
	}
	takt_state_writer_close(w);
	takt_state_reader_close(r);
	ts_raw_unmap(&f.raw);
}

/* ---- a scribbler while both sides run ------------------------------------------------ */

static void __attribute__((noreturn)) scribbler(const char *name, uint64_t seed, uint64_t ns)
{
	struct ts_raw raw;
	/* no Criterion asserts in a child: map by hand */
	char obj[TAKT_NAME_MAX + 16];
	snprintf(obj, sizeof obj, "/takt.%s", name);
	int fd = shm_open(obj, O_RDWR, 0);
	if (fd < 0)
		_exit(2);
	raw.size = (size_t)takt_state_total_size(IMG);
	raw.base = mmap(NULL, raw.size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (raw.base == MAP_FAILED)
		_exit(3);
	struct takt_seg_state *st = ts_ctl(&raw);
	uint64_t end = ts_now_ns() + ns;
	while (ts_now_ns() < end) {
		uint64_t x = ts_rand(&seed);
		uint64_t v = ts_rand(&seed);
		/* small values most of the time: they are the dangerous ones */
		if (x & 0x100)
			v &= 0xf;
		else if (x & 0x200)
			v = IMG + (v & 0xff) - 0x80;
		switch (x % 10) {
		case 0: atomic_store(&st->middle, v); break;
		case 1: atomic_store(&st->writer_slot, (uint32_t)v); break;
		case 2: atomic_store(&st->reader_slot, (uint32_t)v); break;
		case 3: atomic_store(&st->rx_doorbell, (uint32_t)v); break;
		case 4: case 5: {
			struct takt_seg_state_slot *s = ts_slot(&raw, IMG, (unsigned)((x >> 8) % 3));
			atomic_store(&s->len, (uint32_t)v);
			break;
		}
		case 6: {
			struct takt_seg_state_slot *s = ts_slot(&raw, IMG, (unsigned)((x >> 8) % 3));
			atomic_store(&s->generation, v);
			break;
		}
		case 7: atomic_store(&st->writes, v); break;
		case 8: {
			uint8_t *img = (uint8_t *)ts_slot(&raw, IMG, (unsigned)((x >> 8) % 3)) +
				       TAKT_STATE_SLOT_HEADER;
			img[(x >> 16) % IMG] = (uint8_t)v;
			break;
		}
		default: atomic_store(&st->writer_epoch, (uint32_t)v); break;
		}
		if ((x & 7) == 0)
			ts_sleep_ns(10000);
	}
	_exit(0);
}

Test(corrupt, scribbler_while_both_run)
{
	const char *name = ts_name("scribble");
	ts_create(name, IMG);
	uint64_t seed = ts_seed();
	uint64_t run_ns = 700000000ull * ts_long();
	pid_t pid = ts_fork();
	if (pid == 0)
		scribbler(name, seed, run_ns);
	takt_channel *ch = NULL;
	cr_assert_eq(takt_channel_open(name, 0, &ch), 0);
	takt_state_writer *w = NULL;
	takt_state_reader *r = NULL;
	uint8_t img[IMG], buf[IMG];
	uint64_t ops = 0, bad = 0, reopen = 0, gen = 0;
	uint64_t end = ts_now_ns() + run_ns;
	while (ts_now_ns() < end) {
		int rc;
		if (!w) {
			rc = takt_state_writer_attach(ch, &w);
			cr_assert(rc == 0 || rc == -EBADMSG || rc == -EBUSY, "writer attach = %d", rc);
			reopen++;
		}
		if (!r) {
			rc = takt_state_reader_attach(ch, &r);
			cr_assert(rc == 0 || rc == -EBADMSG || rc == -EBUSY, "reader attach = %d", rc);
			reopen++;
		}
		if (w) {
			ts_image_make(img, IMG, ++gen);
			rc = (gen & 1) ? takt_state_write(w, img, IMG)
				       : (memcpy(takt_state_buffer(w), img, IMG), takt_state_publish(w, IMG));
			cr_assert(rc == 0 || rc == -EBADMSG, "write = %d", rc);
			if (rc == -EBADMSG) {
				bad++;
				takt_state_writer_close(w);
				w = NULL;
			}
		}
		if (r) {
			struct takt_state_info info;
			const void *p = NULL;
			if (ops & 1) {
				rc = takt_state_read(r, buf, sizeof buf, &info);
			} else {
				rc = takt_state_peek(r, &p, &info);
				if (rc >= 0)
					memcpy(buf, p, (size_t)rc); /* ASan: must be inside the mapping */
			}
			cr_assert(rc == -EAGAIN || rc == -EBADMSG || (rc >= 0 && rc <= (int)IMG),
				  "read/peek = %d", rc);
			if (rc >= 0)
				cr_assert_eq(info.len, (uint32_t)rc);
			if (ops % 16 == 0) {
				int wrc = takt_state_wait_newer(r, takt_deadline_in(100000));
				cr_assert(wrc == 0 || wrc == -ETIMEDOUT, "wait_newer = %d", wrc);
			}
			if (rc == -EBADMSG) {
				bad++;
				takt_state_reader_close(r);
				r = NULL;
			}
		}
		struct takt_state_stats s;
		cr_assert_eq(takt_state_stats_get(ch, &s), 0);
		ops++;
	}
	int st = ts_wait(pid);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "scribbler: %s", ts_status_str(st));
	cr_log_info("%" PRIu64 " rounds, %" PRIu64 " -EBADMSG, %" PRIu64 " (re)attach attempts", ops, bad,
		    reopen);
	takt_state_writer_close(w);
	takt_state_reader_close(r);
	cr_assert_eq(takt_channel_close(ch), 0);
}
