/* SPDX-License-Identifier: MIT */
/*
 * test_state_api.c - state channels: lifecycle, validation, modes and the
 * single-threaded semantics (newest image, fresh, generations, age,
 * zero-copy, peek, wait_newer, replacement of reader and writer).
 */
#include "ts_common.h"

#include <criterion/logging.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

TS_SUITE(api);

#define IMG 256u

/* Publish the test image of generation gen (length len) by copy. */
static void put(takt_state_writer *w, size_t len, uint64_t gen)
{
	uint8_t buf[4096];
	cr_assert_leq(len, sizeof buf);
	ts_image_make(buf, len, gen);
	int rc = takt_state_write(w, buf, len);
	cr_assert_eq(rc, 0, "takt_state_write(gen %" PRIu64 ") = %d (%s)", gen, rc, takt_strerror(rc));
}

/* Read, asserting a complete image of generation gen. */
static struct takt_state_info get(takt_state_reader *r, size_t len, uint64_t gen)
{
	uint8_t buf[4096];
	struct takt_state_info info;
	memset(&info, 0xa5, sizeof info);
	int rc = takt_state_read(r, buf, sizeof buf, &info);
	cr_assert_eq(rc, (int)len, "takt_state_read = %d (%s), expected %zu bytes of generation %" PRIu64,
		     rc, rc < 0 ? takt_strerror(rc) : "length", len, gen);
	cr_assert_eq(info.len, len);
	cr_assert_eq(info.generation, gen, "generation %" PRIu64 ", expected %" PRIu64,
		     info.generation, gen);
	const char *why = ts_image_check(buf, len, gen);
	cr_assert_null(why, "image of generation %" PRIu64 ": %s", gen, why);
	return info;
}

static mode_t file_mode(const char *path)
{
	struct stat st;
	cr_assert_eq(stat(path, &st), 0, "stat(%s): %s", path, strerror(errno));
	return st.st_mode & 07777;
}

/* ---- lifecycle and validation ------------------------------------------ */

Test(api, create_open_close)
{
	const char *name = ts_name("coc");
	ts_create(name, IMG);
	cr_assert_eq(ts_leftovers(name), 2, "a state channel is its segment and its .rx semaphore");

	takt_channel *ch = NULL;
	cr_assert_eq(takt_channel_open(name, 0, &ch), 0);
	struct takt_channel_config cc;
	cr_assert_eq(takt_channel_config_get(ch, &cc), 0);
	cr_assert_eq(cc.kind, 2u);
	cr_assert_eq(cc.lanes, 1u);
	cr_assert_eq(cc.max_record, IMG);
	cr_assert_eq(cc.total_size, takt_state_total_size(IMG));
	cr_assert_eq(takt_channel_close(ch), 0);

	for (int round = 0; round < 3; round++) {
		takt_state_writer *w = ts_writer(name);
		takt_state_reader *r = ts_reader(name);
		put(w, IMG, (uint64_t)round + 1);
		get(r, IMG, (uint64_t)round + 1);
		takt_state_writer_close(w);
		takt_state_reader_close(r);
	}
	takt_state_writer_close(NULL);
	takt_state_reader_close(NULL);

	cr_assert_eq(takt_unlink(name), 0);
	cr_assert_eq(ts_leftovers(name), 0, "unlink left objects behind");
	takt_state_writer *w = NULL;
	cr_assert_eq(takt_state_writer_open(name, &w), -ENOENT);
	cr_assert_eq(takt_unlink(name), -ENOENT);
}

Test(api, attach_to_one_mapping)
{
	const char *name = ts_name("attach");
	ts_create(name, IMG);
	takt_channel *ch = NULL;
	cr_assert_eq(takt_channel_open(name, 0, &ch), 0);
	takt_state_writer *w = NULL;
	takt_state_reader *r = NULL;
	cr_assert_eq(takt_state_writer_attach(ch, &w), 0);
	cr_assert_eq(takt_state_reader_attach(ch, &r), 0);
	takt_state_writer *w2 = NULL;
	takt_state_reader *r2 = NULL;
	cr_assert_eq(takt_state_writer_attach(ch, &w2), -EBUSY, "second writer on one mapping");
	cr_assert_eq(takt_state_reader_attach(ch, &r2), -EBUSY, "second reader on one mapping");
	cr_assert_eq(takt_channel_close(ch), -EBUSY, "close with endpoints attached");
	put(w, IMG, 1);
	get(r, IMG, 1);
	takt_state_writer_close(w);
	takt_state_reader_close(r);
	cr_assert_eq(takt_channel_close(ch), 0);
}

Test(api, largest_image)
{
	const char *name = ts_name("max");
	struct takt_state_config cfg = {.image_size = TAKT_STATE_IMAGE_MAX, .mode = 0600};
	cr_assert_eq(takt_state_create(name, &cfg), 0);
	takt_state_writer *w = ts_writer(name);
	takt_state_reader *r = ts_reader(name);
	uint8_t *img = malloc(TAKT_STATE_IMAGE_MAX);
	cr_assert_not_null(img);
	ts_image_make(img, TAKT_STATE_IMAGE_MAX, 1);
	cr_assert_eq(takt_state_write(w, img, TAKT_STATE_IMAGE_MAX), 0);
	memset(img, 0, TAKT_STATE_IMAGE_MAX);
	struct takt_state_info info;
	cr_assert_eq(takt_state_read(r, img, TAKT_STATE_IMAGE_MAX, &info), (int)TAKT_STATE_IMAGE_MAX);
	cr_assert_null(ts_image_check(img, TAKT_STATE_IMAGE_MAX, 1));
	free(img);
	takt_state_writer_close(w);
	takt_state_reader_close(r);
}

Test(api, bad_names)
{
	struct takt_state_config cfg = {.image_size = IMG};
	char longname[TAKT_NAME_MAX + 2];
	memset(longname, 'a', sizeof longname);
	longname[TAKT_NAME_MAX + 1] = '\0';
	const char *bad[] = {NULL, "", "a/b", "with space", "..", ".", "bad*", longname, "\xc3\xa9"};
	for (unsigned i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		cr_assert_eq(takt_state_create(bad[i], &cfg), -EINVAL, "create name #%u", i);
		takt_state_writer *w = NULL;
		takt_state_reader *r = NULL;
		cr_assert_eq(takt_state_writer_open(bad[i], &w), -EINVAL, "writer_open name #%u", i);
		cr_assert_eq(takt_state_reader_open(bad[i], &r), -EINVAL, "reader_open name #%u", i);
		cr_assert_null(w);
		cr_assert_null(r);
	}
}

Test(api, bad_config)
{
	const char *name = ts_name("badcfg");
	cr_assert_eq(takt_state_create(name, NULL), -EINVAL);
	struct takt_state_config cfg = {.image_size = 0};
	cr_assert_eq(takt_state_create(name, &cfg), -EINVAL, "image_size 0");
	cfg.image_size = TAKT_STATE_IMAGE_MAX + 1;
	cr_assert_eq(takt_state_create(name, &cfg), -EINVAL, "image_size > TAKT_STATE_IMAGE_MAX");
	cfg.image_size = UINT32_MAX;
	cr_assert_eq(takt_state_create(name, &cfg), -EINVAL, "image_size UINT32_MAX");
	cfg.image_size = IMG;
	cfg.flags = 1;
	cr_assert_eq(takt_state_create(name, &cfg), -EINVAL, "flags 1");
	cfg.flags = 0x80000000u;
	cr_assert_eq(takt_state_create(name, &cfg), -EINVAL, "flags high bit");
	cfg.flags = 0;
	cfg.mode = 010000;
	cr_assert_eq(takt_state_create(name, &cfg), -EINVAL, "mode beyond 07777");
	cr_assert_eq(ts_leftovers(name), 0, "a refused create left objects behind");
	cfg.mode = 0;
	cfg.image_size = 1;
	cr_assert_eq(takt_state_create(name, &cfg), 0, "image_size 1 is valid");

	/* attach with NULL arguments */
	takt_state_writer *w = NULL;
	takt_state_reader *r = NULL;
	cr_assert_eq(takt_state_writer_attach(NULL, &w), -EINVAL);
	cr_assert_eq(takt_state_reader_attach(NULL, &r), -EINVAL);
	takt_channel *ch = NULL;
	cr_assert_eq(takt_channel_open(name, 0, &ch), 0);
	cr_assert_eq(takt_state_writer_attach(ch, NULL), -EINVAL);
	cr_assert_eq(takt_state_reader_attach(ch, NULL), -EINVAL);
	cr_assert_eq(takt_state_stats_get(ch, NULL), -EINVAL);
	cr_assert_eq(takt_channel_close(ch), 0);
}

Test(api, eexist)
{
	const char *name = ts_name("exist");
	ts_create(name, IMG);
	struct takt_state_config cfg = {.image_size = 512};
	cr_assert_eq(takt_state_create(name, &cfg), -EEXIST);
	struct takt_queue_config qc = {.capacity = 4096, .lanes = 1, .max_record = 64};
	cr_assert_eq(takt_queue_create(name, &qc), -EEXIST);
	const char *qname = ts_name("exist-q");
	cr_assert_eq(takt_queue_create(qname, &qc), 0);
	cr_assert_eq(takt_state_create(qname, &cfg), -EEXIST);
	/* the original is untouched */
	struct takt_state_stats s = ts_stats(name);
	cr_assert_eq(s.image_size, IMG);
}

Test(api, enoent)
{
	const char *name = ts_name("noent");
	takt_state_writer *w = NULL;
	takt_state_reader *r = NULL;
	cr_assert_eq(takt_state_writer_open(name, &w), -ENOENT);
	cr_assert_eq(takt_state_reader_open(name, &r), -ENOENT);
	cr_assert_eq(takt_unlink(name), -ENOENT);
	cr_assert_eq(takt_unlink_stale(name), -ENOENT);
}

Test(api, ebusy_second_endpoint)
{
	const char *name = ts_name("busy");
	ts_create(name, IMG);
	takt_state_writer *w = ts_writer(name);
	takt_state_reader *r = ts_reader(name);
	takt_state_writer *w2 = NULL;
	takt_state_reader *r2 = NULL;
	cr_assert_eq(takt_state_writer_open(name, &w2), -EBUSY, "second writer, same process");
	cr_assert_eq(takt_state_reader_open(name, &r2), -EBUSY, "second reader, same process");
	cr_assert_null(w2);
	cr_assert_null(r2);

	pid_t pid = ts_fork();
	if (pid == 0) {
		takt_state_writer *cw = NULL;
		takt_state_reader *cr = NULL;
		int a = takt_state_writer_open(name, &cw);
		int b = takt_state_reader_open(name, &cr);
		_exit(a == -EBUSY && b == -EBUSY ? 0 : 1);
	}
	int st = ts_wait(pid);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		  "another process could open a second writer or reader (%s)", ts_status_str(st));

	/* the first ones keep working, and closing frees the slots */
	put(w, IMG, 1);
	get(r, IMG, 1);
	takt_state_writer_close(w);
	takt_state_reader_close(r);
	w = ts_writer(name);
	r = ts_reader(name);
	takt_state_writer_close(w);
	takt_state_reader_close(r);
}

Test(api, eprototype)
{
	const char *sname = ts_name("proto-s");
	const char *qname = ts_name("proto-q");
	ts_create(sname, IMG);
	struct takt_queue_config qc = {.capacity = 4096, .lanes = 1, .max_record = 64};
	cr_assert_eq(takt_queue_create(qname, &qc), 0);

	/* queue calls on a state channel */
	takt_producer *p = NULL;
	takt_consumer *c = NULL;
	cr_assert_eq(takt_producer_open(sname, &p), -EPROTOTYPE);
	cr_assert_eq(takt_consumer_open(sname, &c), -EPROTOTYPE);
	takt_channel *sch = NULL;
	cr_assert_eq(takt_channel_open(sname, 0, &sch), 0);
	cr_assert_eq(takt_producer_attach(sch, &p), -EPROTOTYPE);
	cr_assert_eq(takt_consumer_attach(sch, &c), -EPROTOTYPE);
	struct takt_lane_stats ls;
	struct takt_consumer_stats cs;
	cr_assert_eq(takt_lane_stats_get(sch, 0, &ls), -EPROTOTYPE);
	cr_assert_eq(takt_consumer_stats_get(sch, &cs), -EPROTOTYPE);
	cr_assert_null(p);
	cr_assert_null(c);

	/* state calls on a queue channel */
	takt_state_writer *w = NULL;
	takt_state_reader *r = NULL;
	cr_assert_eq(takt_state_writer_open(qname, &w), -EPROTOTYPE);
	cr_assert_eq(takt_state_reader_open(qname, &r), -EPROTOTYPE);
	takt_channel *qch = NULL;
	cr_assert_eq(takt_channel_open(qname, 0, &qch), 0);
	cr_assert_eq(takt_state_writer_attach(qch, &w), -EPROTOTYPE);
	cr_assert_eq(takt_state_reader_attach(qch, &r), -EPROTOTYPE);
	struct takt_state_stats ss;
	cr_assert_eq(takt_state_stats_get(qch, &ss), -EPROTOTYPE);
	cr_assert_null(w);
	cr_assert_null(r);

	/* and the refusals left both channels usable */
	cr_assert_eq(takt_channel_close(sch), 0);
	cr_assert_eq(takt_channel_close(qch), 0);
	w = ts_writer(sname);
	r = ts_reader(sname);
	put(w, IMG, 1);
	get(r, IMG, 1);
	takt_state_writer_close(w);
	takt_state_reader_close(r);
	p = NULL;
	cr_assert_eq(takt_producer_open(qname, &p), 0);
	takt_producer_close(p);
}

Test(api, rdonly_mapping_takes_no_endpoint)
{
	const char *name = ts_name("rdonly");
	ts_create(name, IMG);
	takt_channel *ch = ts_inspect(name);
	takt_state_writer *w = NULL;
	takt_state_reader *r = NULL;
	cr_assert_eq(takt_state_writer_attach(ch, &w), -EACCES);
	cr_assert_eq(takt_state_reader_attach(ch, &r), -EACCES);
	struct takt_state_stats s;
	cr_assert_eq(takt_state_stats_get(ch, &s), 0);
	cr_assert_eq(s.writer_alive, 0u);
	cr_assert_eq(s.reader_alive, 0u);
	cr_assert_eq(takt_channel_close(ch), 0);
}

Test(api, read_before_write)
{
	const char *name = ts_name("eagain");
	ts_create(name, IMG);
	takt_state_reader *r = ts_reader(name);
	uint8_t buf[IMG];
	struct takt_state_info info;
	cr_assert_eq(takt_state_read(r, buf, sizeof buf, &info), -EAGAIN);
	cr_assert_eq(takt_state_read(r, buf, sizeof buf, NULL), -EAGAIN);
	const void *img = NULL;
	cr_assert_eq(takt_state_peek(r, &img, &info), -EAGAIN);
	cr_assert_eq(takt_state_wait_newer(r, TAKT_NO_WAIT), -ETIMEDOUT);
	/* a writer that opened but never published changes nothing */
	takt_state_writer *w = ts_writer(name);
	cr_assert_eq(takt_state_read(r, buf, sizeof buf, &info), -EAGAIN);
	put(w, IMG, 1);
	get(r, IMG, 1);
	takt_state_writer_close(w);
	takt_state_reader_close(r);
}

Test(api, emsgsize)
{
	const char *name = ts_name("msgsize");
	ts_create(name, IMG);
	takt_state_writer *w = ts_writer(name);
	takt_state_reader *r = ts_reader(name);
	uint8_t big[IMG + 8];
	ts_image_make(big, sizeof big, 1);
	cr_assert_eq(takt_state_write(w, big, IMG + 1), -EMSGSIZE);
	cr_assert_eq(takt_state_write(w, big, SIZE_MAX), -EMSGSIZE);
	cr_assert_eq(takt_state_publish(w, IMG + 1), -EMSGSIZE);
	cr_assert_eq(takt_state_publish(w, SIZE_MAX), -EMSGSIZE);
	uint8_t buf[IMG];
	cr_assert_eq(takt_state_read(r, buf, sizeof buf, NULL), -EAGAIN,
		     "a refused write published something");
	struct takt_state_stats s = ts_stats(name);
	cr_assert_eq(s.writes, 0u, "a refused write was counted");

	put(w, IMG, 1);
	struct takt_state_info info;
	memset(&info, 0, sizeof info);
	cr_assert_eq(takt_state_read(r, buf, IMG - 1, &info), -EMSGSIZE);
	cr_assert_eq(info.len, IMG, "info.len must say the size needed");
	cr_assert_eq(takt_state_read(r, buf, 0, &info), -EMSGSIZE);
	/* the image stays readable with a big enough buffer */
	get(r, IMG, 1);
	takt_state_writer_close(w);
	takt_state_reader_close(r);
}

/*
 * A read refused with -EMSGSIZE delivered nothing: the image must still
 * count as new for the next read (fresh == 1 exactly once per image, on the
 * read that returns it).
 */
Test(api, emsgsize_keeps_image_fresh)
{
	const char *name = ts_name("msgfresh");
	ts_create(name, IMG);
	takt_state_writer *w = ts_writer(name);
	takt_state_reader *r = ts_reader(name);
	put(w, IMG, 1);
	uint8_t small[16];
	struct takt_state_info info;
	cr_assert_eq(takt_state_read(r, small, sizeof small, &info), -EMSGSIZE);
	info = get(r, IMG, 1);
	cr_assert_eq(info.fresh, 1u,
		     "the first read that returns an image must report fresh = 1, even after a "
		     "read refused with -EMSGSIZE");
	struct takt_state_stats s = ts_stats(name);
	cr_assert_eq(s.reads, 1u);
	takt_state_writer_close(w);
	takt_state_reader_close(r);
}

Test(api, modes_exact_under_umask)
{
	mode_t old = umask(077);
	const struct {
		uint32_t asked;
		mode_t expect;
	} cases[] = {{0666, 0666}, {0, 0600}, {0640, 0640}, {0604, 0604}, {0660, 0660}};
	for (unsigned i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char tag[32];
		snprintf(tag, sizeof tag, "mode-%u", i);
		const char *name = ts_name(tag);
		struct takt_state_config cfg = {.image_size = IMG, .mode = cases[i].asked};
		int rc = takt_state_create(name, &cfg);
		if (rc != 0)
			umask(old);
		cr_assert_eq(rc, 0, "create mode 0%o = %d", cases[i].asked, rc);
		char path[TAKT_NAME_MAX + 64];
		snprintf(path, sizeof path, "/dev/shm/takt.%s", name);
		mode_t seg = file_mode(path);
		snprintf(path, sizeof path, "/dev/shm/sem.takt.%s.rx", name);
		mode_t sem = file_mode(path);
		if (seg != cases[i].expect || sem != cases[i].expect)
			umask(old);
		cr_assert_eq(seg, cases[i].expect, "segment mode 0%o, asked 0%o", seg, cases[i].asked);
		cr_assert_eq(sem, cases[i].expect, "semaphore mode 0%o, asked 0%o", sem, cases[i].asked);
	}
	umask(old);
}

/* ---- semantics ------------------------------------------------------------ */

Test(api, reader_gets_newest_image)
{
	const char *name = ts_name("newest");
	ts_create(name, IMG);
	takt_state_writer *w = ts_writer(name);
	takt_state_reader *r = ts_reader(name);
	for (uint64_t g = 1; g <= 7; g++)
		put(w, IMG, g);
	struct takt_state_info info = get(r, IMG, 7);
	cr_assert_eq(info.fresh, 1u);
	for (uint64_t g = 8; g <= 100; g++) {
		put(w, IMG, g);
		if (g % 3 == 0) {
			info = get(r, IMG, g);
			cr_assert_eq(info.fresh, 1u);
		}
	}
	get(r, IMG, 100);
	takt_state_writer_close(w);
	takt_state_reader_close(r);
}

Test(api, fresh_once_per_image)
{
	const char *name = ts_name("fresh");
	ts_create(name, IMG);
	takt_state_writer *w = ts_writer(name);
	takt_state_reader *r = ts_reader(name);
	put(w, IMG, 1);
	cr_assert_eq(get(r, IMG, 1).fresh, 1u);
	cr_assert_eq(get(r, IMG, 1).fresh, 0u);
	cr_assert_eq(get(r, IMG, 1).fresh, 0u);
	put(w, IMG, 2);
	const void *img = NULL;
	struct takt_state_info info;
	cr_assert_eq(takt_state_peek(r, &img, &info), (int)IMG);
	cr_assert_eq(info.generation, 2u);
	cr_assert_eq(info.fresh, 1u, "peek of a new image is fresh");
	cr_assert_null(ts_image_check(img, IMG, 2));
	cr_assert_eq(get(r, IMG, 2).fresh, 0u, "read after peek of the same image is not fresh");
	cr_assert_eq(takt_state_peek(r, &img, &info), (int)IMG);
	cr_assert_eq(info.fresh, 0u);
	put(w, IMG, 3);
	put(w, IMG, 4);
	cr_assert_eq(get(r, IMG, 4).fresh, 1u);
	cr_assert_eq(get(r, IMG, 4).fresh, 0u);
	/* info may be NULL; the image is then still consumed as read */
	uint8_t buf[IMG];
	put(w, IMG, 5);
	cr_assert_eq(takt_state_read(r, buf, sizeof buf, NULL), (int)IMG);
	cr_assert_null(ts_image_check(buf, IMG, 5));
	cr_assert_eq(get(r, IMG, 5).fresh, 0u);
	takt_state_writer_close(w);
	takt_state_reader_close(r);
}

Test(api, generations_count_publishes)
{
	const char *name = ts_name("gens");
	ts_create(name, IMG);
	takt_state_writer *w = ts_writer(name);
	takt_state_reader *r = ts_reader(name);
	uint64_t last = 0, fresh = 0;
	for (uint64_t g = 1; g <= 1000; g++) {
		put(w, IMG, g);
		if (g % 7 == 0 || g % 11 == 0) {
			struct takt_state_info info = get(r, IMG, g);
			cr_assert_gt(info.generation, last);
			last = info.generation;
			fresh += info.fresh;
		}
	}
	struct takt_state_stats s = ts_stats(name);
	cr_assert_eq(s.writes, 1000u, "writes = number of publishes");
	cr_assert_eq(s.reads, fresh, "reads = new images taken");
	cr_assert_eq(s.image_size, IMG);
	cr_assert_eq(s.writer_pid, (int32_t)getpid());
	cr_assert_eq(s.reader_pid, (int32_t)getpid());
	cr_assert_eq(s.writer_alive, 1u);
	cr_assert_eq(s.reader_alive, 1u);
	takt_state_writer_close(w);
	s = ts_stats(name);
	cr_assert_eq(s.writer_alive, 0u);
	cr_assert_eq(s.reader_alive, 1u);
	takt_state_reader_close(r);
	s = ts_stats(name);
	cr_assert_eq(s.reader_alive, 0u);
	cr_assert_eq(s.writes, 1000u);
}

Test(api, age_and_written_ns)
{
	const char *name = ts_name("age");
	ts_create(name, IMG);
	takt_state_writer *w = ts_writer(name);
	takt_state_reader *r = ts_reader(name);
	uint64_t before = takt_now_ns();
	put(w, IMG, 1);
	uint64_t after = takt_now_ns();
	struct takt_state_info info = get(r, IMG, 1);
	uint64_t after_read = takt_now_ns();
	cr_assert_geq(info.written_ns, before);
	cr_assert_leq(info.written_ns, after);
	cr_assert_leq(info.age_ns, after_read - info.written_ns, "age beyond now - written_ns");
	struct takt_state_stats s = ts_stats(name);
	cr_assert_eq(s.writer_last_ns, info.written_ns, "writer_last_ns is the last publish");

	ts_sleep_ns(30000000);
	uint64_t t0 = takt_now_ns();
	struct takt_state_info again = get(r, IMG, 1);
	uint64_t t1 = takt_now_ns();
	cr_assert_eq(again.written_ns, info.written_ns);
	cr_assert_eq(again.fresh, 0u);
	cr_assert_geq(again.age_ns, t0 - info.written_ns, "age %" PRIu64 " ns too small", again.age_ns);
	cr_assert_leq(again.age_ns, t1 - info.written_ns, "age %" PRIu64 " ns too large", again.age_ns);
	cr_assert_geq(again.age_ns, 30000000u);
	takt_state_writer_close(w);
	takt_state_reader_close(r);
}

Test(api, variable_length)
{
	const char *name = ts_name("varlen");
	ts_create(name, 1000);
	takt_state_writer *w = ts_writer(name);
	takt_state_reader *r = ts_reader(name);
	const size_t lens[] = {1000, 24, 999, 513, 100, 1000};
	uint64_t g = 0;
	for (unsigned i = 0; i < sizeof lens / sizeof lens[0]; i++) {
		put(w, lens[i], ++g);
		get(r, lens[i], g);
	}
	/* length 0 is an image too: published, counted, fresh */
	cr_assert_eq(takt_state_write(w, NULL, 0), 0);
	g++;
	uint8_t buf[8];
	struct takt_state_info info;
	cr_assert_eq(takt_state_read(r, buf, 0, &info), 0);
	cr_assert_eq(info.generation, g);
	cr_assert_eq(info.len, 0u);
	cr_assert_eq(info.fresh, 1u);
	takt_state_writer_close(w);
	takt_state_reader_close(r);
}

Test(api, zero_copy_publish)
{
	const char *name = ts_name("zc");
	const uint32_t size = 5000;
	ts_create(name, size);
	takt_state_writer *w = ts_writer(name);
	takt_state_reader *r = ts_reader(name);
	void *seen[4] = {0};
	unsigned distinct = 0;
	for (uint64_t g = 1; g <= 30; g++) {
		uint8_t *b = takt_state_buffer(w);
		cr_assert_not_null(b);
		unsigned k = 0;
		while (k < distinct && seen[k] != b)
			k++;
		if (k == distinct) {
			cr_assert_lt(distinct, 3u, "more than 3 distinct writer buffers");
			seen[distinct++] = b;
		}
		ts_image_make(b, size, g); /* the whole image_size is ours */
		cr_assert_eq(takt_state_publish(w, size), 0);
		cr_assert_neq(takt_state_buffer(w), b, "the buffer must change after publish");
		if (g % 2 == 0) {
			const void *img = NULL;
			struct takt_state_info info;
			cr_assert_eq(takt_state_peek(r, &img, &info), (int)size);
			cr_assert_eq(info.generation, g);
			cr_assert_null(ts_image_check(img, size, g));
			cr_assert_neq(img, takt_state_buffer(w), "peeked image is the writer's buffer");
		}
	}
	/* a partial publish of the zero-copy buffer */
	uint8_t *b = takt_state_buffer(w);
	ts_image_make(b, 100, 31);
	cr_assert_eq(takt_state_publish(w, 100), 0);
	uint8_t buf[5000];
	struct takt_state_info info;
	cr_assert_eq(takt_state_read(r, buf, sizeof buf, &info), 100);
	cr_assert_eq(info.generation, 31u);
	cr_assert_null(ts_image_check(buf, 100, 31));
	takt_state_writer_close(w);
	takt_state_reader_close(r);
}

Test(api, peek_stable_until_next_read)
{
	const char *name = ts_name("peek");
	ts_create(name, IMG);
	takt_state_writer *w = ts_writer(name);
	takt_state_reader *r = ts_reader(name);
	put(w, IMG, 1);
	const void *img = NULL;
	struct takt_state_info info;
	cr_assert_eq(takt_state_peek(r, &img, &info), (int)IMG);
	uint8_t copy[IMG];
	memcpy(copy, img, IMG);
	for (uint64_t g = 2; g <= 50; g++)
		put(w, IMG, g);
	cr_assert_eq(memcmp(copy, img, IMG), 0, "the peeked image changed before the next read");
	cr_assert_null(ts_image_check(img, IMG, 1));
	const void *img2 = NULL;
	cr_assert_eq(takt_state_peek(r, &img2, &info), (int)IMG);
	cr_assert_eq(info.generation, 50u);
	cr_assert_eq(info.fresh, 1u);
	cr_assert_null(ts_image_check(img2, IMG, 50));
	takt_state_writer_close(w);
	takt_state_reader_close(r);
}

/* ---- wait_newer ------------------------------------------------------------- */

Test(api, wait_newer_same_process)
{
	const char *name = ts_name("waitsp");
	ts_create(name, IMG);
	takt_state_writer *w = ts_writer(name);
	takt_state_reader *r = ts_reader(name);
	cr_assert_eq(takt_state_wait_newer(r, TAKT_NO_WAIT), -ETIMEDOUT);
	put(w, IMG, 1);
	cr_assert_eq(takt_state_wait_newer(r, TAKT_NO_WAIT), 0);
	cr_assert_eq(takt_state_wait_newer(r, takt_deadline_in(1000000000)), 0);
	get(r, IMG, 1);
	cr_assert_eq(takt_state_wait_newer(r, TAKT_NO_WAIT), -ETIMEDOUT, "nothing newer after a read");
	put(w, IMG, 2);
	put(w, IMG, 3);
	cr_assert_eq(takt_state_wait_newer(r, TAKT_FOREVER), 0);
	get(r, IMG, 3);
	takt_state_writer_close(w);
	takt_state_reader_close(r);
}

Test(api, wait_newer_times_out_not_before_deadline)
{
	const char *name = ts_name("waitto");
	ts_create(name, IMG);
	takt_state_writer *w = ts_writer(name);
	takt_state_reader *r = ts_reader(name);
	const uint64_t spans[] = {1000000, 20000000, 60000000};
	for (int pass = 0; pass < 2; pass++) {
		for (unsigned i = 0; i < sizeof spans / sizeof spans[0]; i++) {
			uint64_t deadline = takt_deadline_in(spans[i]);
			int rc = takt_state_wait_newer(r, deadline);
			uint64_t now = takt_now_ns();
			cr_assert_eq(rc, -ETIMEDOUT, "wait_newer = %d", rc);
			cr_assert_geq(now, deadline, "returned %" PRIu64 " ns before the deadline",
				      deadline - now);
		}
		/* second pass: an image exists but was read already */
		put(w, IMG, (uint64_t)pass + 1);
		get(r, IMG, (uint64_t)pass + 1);
	}
	/* a deadline in the past */
	cr_assert_eq(takt_state_wait_newer(r, 1), -ETIMEDOUT);
	takt_state_writer_close(w);
	takt_state_reader_close(r);
}

struct wn_shared {
	_Atomic uint64_t publish_start_ns;
	_Atomic int rounds_done;
};

Test(api, wait_newer_other_process)
{
	const char *name = ts_name("waitxp");
	ts_create(name, IMG);
	takt_state_reader *r = ts_reader(name);
	struct wn_shared *sh = ts_shared(sizeof *sh);
	const int rounds = 5;
	pid_t pid = ts_fork();
	if (pid == 0) {
		takt_state_writer *w = NULL;
		if (takt_state_writer_open(name, &w) != 0)
			_exit(2);
		uint8_t buf[IMG];
		for (int i = 1; i <= rounds; i++) {
			/* wait until the parent has read the previous image */
			while (atomic_load(&sh->rounds_done) < i - 1)
				ts_sleep_ns(1000000);
			ts_sleep_ns(40000000); /* the parent is parked by now */
			ts_image_make(buf, IMG, (uint64_t)i);
			atomic_store(&sh->publish_start_ns, ts_now_ns());
			if (takt_state_write(w, buf, IMG) != 0)
				_exit(3);
		}
		takt_state_writer_close(w);
		_exit(0);
	}
	for (int i = 1; i <= rounds; i++) {
		int rc = takt_state_wait_newer(r, takt_deadline_in(10000000000ull));
		uint64_t woke = ts_now_ns();
		cr_assert_eq(rc, 0, "round %d: wait_newer = %d (%s)", i, rc, takt_strerror(rc));
		uint64_t start = atomic_load(&sh->publish_start_ns);
		cr_assert(start != 0 && woke >= start, "round %d: woke before the publish", i);
		get(r, IMG, (uint64_t)i);
		atomic_store(&sh->rounds_done, i);
	}
	int st = ts_wait(pid);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "writer child: %s", ts_status_str(st));
	/* the writer is gone: nothing newer comes */
	cr_assert_eq(takt_state_wait_newer(r, takt_deadline_in(20000000)), -ETIMEDOUT);
	takt_state_reader_close(r);
	ts_shared_free(sh, sizeof *sh);
}

/* ---- replacement of endpoints ------------------------------------------------ */

/*
 * "A new writer or reader after a dead one takes over its buffer; the last
 * published image stays readable."  Here the reader closes after reading
 * the newest image (so that image now sits in the reader's own slot, not in
 * the middle), and a new reader opens: it must read that image again, not
 * an older one nor "nothing published".
 */
Test(api, new_reader_reads_newest_after_reader_took_it)
{
	const char *name = ts_name("reopen1");
	ts_create(name, IMG);
	takt_state_writer *w = ts_writer(name);
	takt_state_reader *r = ts_reader(name);
	put(w, IMG, 1);
	get(r, IMG, 1);
	takt_state_reader_close(r);
	r = ts_reader(name);
	uint8_t buf[IMG];
	struct takt_state_info info;
	memset(&info, 0, sizeof info);
	int rc = takt_state_read(r, buf, sizeof buf, &info);
	cr_assert_eq(rc, (int)IMG,
		     "new reader after one that read generation 1: read = %d (%s), generation %" PRIu64,
		     rc, rc < 0 ? takt_strerror(rc) : "-", info.generation);
	cr_assert_eq(info.generation, 1u);
	cr_assert_null(ts_image_check(buf, IMG, 1));
	takt_state_writer_close(w);
	takt_state_reader_close(r);
}

Test(api, new_reader_reads_newest_after_many)
{
	const char *name = ts_name("reopen5");
	ts_create(name, IMG);
	takt_state_writer *w = ts_writer(name);
	takt_state_reader *r = ts_reader(name);
	for (uint64_t g = 1; g <= 5; g++)
		put(w, IMG, g);
	get(r, IMG, 5);
	takt_state_reader_close(r);
	takt_state_writer_close(w);
	r = ts_reader(name);
	uint8_t buf[IMG];
	struct takt_state_info info;
	memset(&info, 0, sizeof info);
	int rc = takt_state_read(r, buf, sizeof buf, &info);
	cr_assert_eq(rc, (int)IMG, "read = %d (%s)", rc, rc < 0 ? takt_strerror(rc) : "-");
	cr_assert_eq(info.generation, 5u, "new reader got generation %" PRIu64 ", newest is 5",
		     info.generation);
	cr_assert_null(ts_image_check(buf, IMG, 5));
	takt_state_reader_close(r);
}

/* A new reader while an unread image waits in the middle takes that one. */
Test(api, new_reader_reads_unread_image)
{
	const char *name = ts_name("reopen-unread");
	ts_create(name, IMG);
	takt_state_writer *w = ts_writer(name);
	takt_state_reader *r = ts_reader(name);
	put(w, IMG, 1);
	get(r, IMG, 1);
	put(w, IMG, 2);
	takt_state_reader_close(r);
	r = ts_reader(name);
	struct takt_state_info info = get(r, IMG, 2);
	cr_assert_eq(info.fresh, 1u);
	put(w, IMG, 3);
	get(r, IMG, 3);
	takt_state_writer_close(w);
	takt_state_reader_close(r);
}

Test(api, new_writer_continues_generations)
{
	const char *name = ts_name("wreopen");
	ts_create(name, IMG);
	takt_state_reader *r = ts_reader(name);
	takt_state_writer *w = ts_writer(name);
	for (uint64_t g = 1; g <= 3; g++)
		put(w, IMG, g);
	takt_state_writer_close(w);
	get(r, IMG, 3);
	w = ts_writer(name);
	put(w, IMG, 4);
	struct takt_state_info info = get(r, IMG, 4);
	cr_assert_eq(info.fresh, 1u);
	takt_state_writer_close(w);
	/* the last published image stays readable without a writer */
	info = get(r, IMG, 4);
	cr_assert_eq(info.fresh, 0u);
	struct takt_state_stats s = ts_stats(name);
	cr_assert_eq(s.writes, 4u);
	takt_state_reader_close(r);
}

/*
 * wait_newer waits for "an image newer than the last one read".  A reader
 * that has read nothing yet, on a channel whose newest image was taken by
 * its predecessor (so the NEW bit is clear), has an image newer than the
 * last one it read: waiting must not block until the writer's next publish
 * (a writer that has stopped would leave it waiting forever).
 */
Test(api, wait_newer_new_reader_sees_existing_image)
{
	const char *name = ts_name("waitnew");
	ts_create(name, IMG);
	takt_state_writer *w = ts_writer(name);
	takt_state_reader *r = ts_reader(name);
	put(w, IMG, 1);
	get(r, IMG, 1);
	takt_state_writer_close(w);
	takt_state_reader_close(r);
	r = ts_reader(name);
	int rc = takt_state_wait_newer(r, takt_deadline_in(50000000));
	cr_assert_eq(rc, 0, "a new reader waits (%d) although generation 1 was never read by it", rc);
	takt_state_reader_close(r);
}

/* A monitor's snapshot returns the newest image even after the reader has
 * taken it (it then sits in the reader's slot, not the middle), and never
 * an older one than before. */
Test(api, snapshot_sees_newest_with_a_reader_attached)
{
	const char *name = ts_name("snap");
	ts_create(name, 32);
	takt_state_writer *w;
	takt_state_reader *r;
	takt_channel *mon;
	cr_assert_eq(takt_state_writer_open(name, &w), 0);
	cr_assert_eq(takt_state_reader_open(name, &r), 0);
	cr_assert_eq(takt_channel_open(name, TAKT_OPEN_RDONLY, &mon), 0);
	char buf[32];
	struct takt_state_info info;
	cr_assert_eq(takt_state_snapshot(mon, buf, sizeof buf, &info), -EAGAIN, "nothing published");
	for (uint64_t g = 1; g <= 5; g++) {
		char img[32];
		memset(img, (int)g, sizeof img);
		cr_assert_eq(takt_state_write(w, img, sizeof img), 0);
		cr_assert_eq(takt_state_snapshot(mon, buf, sizeof buf, &info), 32);
		cr_assert_eq(info.generation, g, "before the reader took it");
		cr_assert_eq(takt_state_read(r, buf, sizeof buf, NULL), 32);
		cr_assert_eq(takt_state_snapshot(mon, buf, sizeof buf, &info), 32);
		cr_assert_eq(info.generation, g, "after the reader took it: %llu",
			     (unsigned long long)info.generation);
		cr_assert_eq(buf[0], (char)g);
	}
	takt_channel_close(mon);
	takt_state_reader_close(r);
	takt_state_writer_close(w);
}
