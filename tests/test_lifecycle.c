/* SPDX-License-Identifier: MIT */
/*
 * test_lifecycle.c - create, open, close, unlink; endpoint slots; modes;
 * nothing left behind on failure; one channel mapped twice in a process.
 */
#define _GNU_SOURCE
#include "common.h"
#include "layout.h"

#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

TT_SUITE(lifecycle);

static uint64_t realtime_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void send_str(takt_producer *p, const char *s)
{
	int rc = takt_try_send(p, 1, s, strlen(s));
	cr_assert_eq(rc, 0, "try_send(%s) = %d (%s)", s, rc, takt_strerror(rc));
}

static void expect_str(takt_consumer *c, const char *s)
{
	char buf[256];
	struct takt_msg m;
	int rc = takt_try_recv(c, buf, sizeof buf, &m);
	cr_assert_eq(rc, (int)strlen(s), "try_recv = %d (%s), expected \"%s\"", rc, takt_strerror(rc), s);
	cr_assert_eq(memcmp(buf, s, strlen(s)), 0, "expected \"%s\", got \"%.*s\"", s, rc, buf);
}

static void expect_empty(takt_consumer *c)
{
	char buf[256];
	int rc = takt_try_recv(c, buf, sizeof buf, NULL);
	cr_assert_eq(rc, -EAGAIN, "expected empty, try_recv = %d", rc);
}

Test(lifecycle, create_open_config)
{
	const char *name = tt_name();
	uint64_t before = realtime_ns();
	struct takt_queue_config cfg = {.capacity = 8192, .lanes = 3, .max_record = 2000, .mode = 0600};
	cr_assert_eq(takt_queue_create(name, &cfg), 0);
	uint64_t after = realtime_ns();

	takt_channel *ch = NULL;
	cr_assert_eq(takt_channel_open(name, 0, &ch), 0);
	cr_assert_not_null(ch);
	struct takt_channel_config cc;
	memset(&cc, 0xa5, sizeof cc);
	cr_assert_eq(takt_channel_config_get(ch, &cc), 0);
	cr_expect_eq(cc.capacity, 8192);
	cr_expect_eq(cc.lanes, 3);
	cr_expect_eq(cc.max_record, 2000);
	cr_expect_eq(cc.kind, 1);
	cr_expect_eq(cc.layout_major, TAKT_LAYOUT_MAJOR);
	cr_expect_eq(cc.layout_minor, TAKT_LAYOUT_MINOR);
	cr_expect_eq(cc.total_size, takt_total_size(3, 8192));
	cr_expect(cc.created_ns + 1000000000ull >= before && cc.created_ns <= after + 1000000000ull,
		  "created_ns %llu not within [%llu, %llu]", (unsigned long long)cc.created_ns,
		  (unsigned long long)before, (unsigned long long)after);

	char path[512];
	tt_seg_path(name, path, sizeof path);
	struct stat st;
	cr_assert_eq(stat(path, &st), 0, "%s: %s", path, strerror(errno));
	cr_expect_eq((uint64_t)st.st_size, cc.total_size);
	cr_expect_eq(st.st_mode & 07777, 0600);
	cr_assert_eq(takt_channel_close(ch), 0);
}

Test(lifecycle, create_twice_eexist)
{
	const char *name = tt_name();
	tt_create(name, 4096, 1, 512);
	takt_channel *ch = NULL;
	cr_assert_eq(takt_channel_open(name, TAKT_OPEN_RDONLY, &ch), 0);
	struct takt_channel_config a, b;
	cr_assert_eq(takt_channel_config_get(ch, &a), 0);
	cr_assert_eq(takt_channel_close(ch), 0);

	struct takt_queue_config other = {.capacity = 65536, .lanes = 4, .max_record = 100};
	cr_assert_eq(takt_queue_create(name, &other), -EEXIST);
	/* the existing channel is untouched */
	cr_assert_eq(takt_channel_open(name, TAKT_OPEN_RDONLY, &ch), 0);
	cr_assert_eq(takt_channel_config_get(ch, &b), 0);
	cr_expect_eq(b.nonce, a.nonce);
	cr_expect_eq(b.capacity, 4096);
	cr_expect_eq(b.lanes, 1);
	cr_assert_eq(takt_channel_close(ch), 0);
}

Test(lifecycle, missing_enoent)
{
	const char *name = tt_name();
	takt_channel *ch = NULL;
	takt_producer *p = NULL;
	takt_consumer *c = NULL;
	cr_expect_eq(takt_channel_open(name, 0, &ch), -ENOENT);
	cr_expect_eq(takt_channel_open(name, TAKT_OPEN_RDONLY, &ch), -ENOENT);
	cr_expect_eq(takt_producer_open(name, &p), -ENOENT);
	cr_expect_eq(takt_consumer_open(name, &c), -ENOENT);
	cr_expect_eq(takt_unlink(name), -ENOENT);
}

Test(lifecycle, unlink_removes_everything)
{
	const char *name = tt_name();
	tt_create(name, 4096, 3, 512);
	/* the segment and the semaphores: rx and one per lane */
	cr_assert_eq(tt_leftovers(name), 1 + 1 + 3, "expected segment, rx and 3 tx semaphores");
	cr_assert_eq(takt_unlink(name), 0);
	cr_assert_eq(tt_leftovers(name), 0);
	cr_assert_eq(takt_unlink(name), -ENOENT);
	/* the name can be created anew */
	tt_create(name, 4096, 1, 512);
}

Test(lifecycle, unlink_while_open_and_recreate)
{
	const char *name = tt_name();
	tt_create(name, 4096, 1, 512);
	takt_producer *p = tt_producer(name);
	takt_consumer *c = tt_consumer(name);
	struct takt_channel_config old_cfg, new_cfg;
	cr_assert_eq(takt_channel_config_get(takt_producer_channel(p), &old_cfg), 0);

	cr_assert_eq(takt_unlink(name), 0);
	takt_channel *ch = NULL;
	cr_assert_eq(takt_channel_open(name, TAKT_OPEN_RDONLY, &ch), -ENOENT);
	/* the open endpoints keep working */
	send_str(p, "after unlink");
	expect_str(c, "after unlink");

	/* a new channel of the same name is a different channel */
	tt_create(name, 4096, 1, 512);
	takt_producer *p2 = tt_producer(name);
	takt_consumer *c2 = tt_consumer(name);
	cr_assert_eq(takt_channel_config_get(takt_producer_channel(p2), &new_cfg), 0);
	cr_expect_neq(new_cfg.nonce, old_cfg.nonce, "nonce must change when the name is created anew");
	send_str(p, "old");
	send_str(p2, "new");
	expect_str(c, "old");
	expect_empty(c);
	expect_str(c2, "new");
	expect_empty(c2);
	takt_producer_close(p);
	takt_consumer_close(c);
	takt_producer_close(p2);
	takt_consumer_close(c2);
}

Test(lifecycle, close_channel_with_endpoints_ebusy)
{
	const char *name = tt_name();
	tt_create(name, 4096, 2, 512);
	takt_channel *ch = NULL;
	cr_assert_eq(takt_channel_open(name, 0, &ch), 0);
	takt_producer *p = NULL;
	takt_consumer *c = NULL;
	cr_assert_eq(takt_producer_attach(ch, &p), 0);
	cr_assert_eq(takt_consumer_attach(ch, &c), 0);
	cr_assert_eq(takt_producer_channel(p), ch);
	cr_assert_eq(takt_consumer_channel(c), ch);
	cr_assert_eq(takt_channel_close(ch), -EBUSY);
	takt_producer_close(p);
	cr_assert_eq(takt_channel_close(ch), -EBUSY);
	/* the mapping still works after the refused close */
	cr_assert_eq(takt_producer_attach(ch, &p), 0);
	send_str(p, "x");
	expect_str(c, "x");
	takt_producer_close(p);
	takt_consumer_close(c);
	cr_assert_eq(takt_channel_close(ch), 0);
}

Test(lifecycle, rdonly_takes_no_endpoint)
{
	const char *name = tt_name();
	tt_create(name, 4096, 1, 512);
	takt_channel *ro = NULL;
	cr_assert_eq(takt_channel_open(name, TAKT_OPEN_RDONLY, &ro), 0);
	takt_producer *p = NULL;
	takt_consumer *c = NULL;
	int rc = takt_producer_attach(ro, &p);
	cr_expect_lt(rc, 0, "producer_attach on a read-only mapping = %d", rc);
	rc = takt_consumer_attach(ro, &c);
	cr_expect_lt(rc, 0, "consumer_attach on a read-only mapping = %d", rc);
	/* and it holds no slot: both ends can still be opened */
	p = tt_producer(name);
	c = tt_consumer(name);
	send_str(p, "ro");
	expect_str(c, "ro");
	struct takt_lane_stats ls;
	cr_assert_eq(takt_lane_stats_get(ro, 0, &ls), 0);
	cr_expect_eq(ls.records_sent, 1);
	takt_producer_close(p);
	takt_consumer_close(c);
	cr_assert_eq(takt_channel_close(ro), 0);
}

Test(lifecycle, second_consumer_other_mapping_ebusy)
{
	const char *name = tt_name();
	tt_create(name, 4096, 1, 512);
	takt_consumer *c1 = tt_consumer(name);
	takt_consumer *c2 = NULL;
	cr_assert_eq(takt_consumer_open(name, &c2), -EBUSY);
	takt_channel *ch = NULL;
	cr_assert_eq(takt_channel_open(name, 0, &ch), 0);
	cr_assert_eq(takt_consumer_attach(ch, &c2), -EBUSY);
	takt_consumer_close(c1);
	/* the slot is free again */
	cr_assert_eq(takt_consumer_attach(ch, &c2), 0);
	cr_assert_eq(takt_consumer_open(name, &c1), -EBUSY);
	takt_consumer_close(c2);
	cr_assert_eq(takt_channel_close(ch), 0);
}

Test(lifecycle, second_consumer_same_mapping_ebusy)
{
	const char *name = tt_name();
	tt_create(name, 4096, 1, 512);
	takt_channel *ch = NULL;
	cr_assert_eq(takt_channel_open(name, 0, &ch), 0);
	takt_consumer *c1 = NULL, *c2 = NULL;
	cr_assert_eq(takt_consumer_attach(ch, &c1), 0);
	cr_assert_eq(takt_consumer_attach(ch, &c2), -EBUSY,
		     "a second consumer on the same mapping must be refused");
	takt_consumer_close(c1);
	cr_assert_eq(takt_consumer_attach(ch, &c2), 0);
	takt_consumer_close(c2);
	cr_assert_eq(takt_channel_close(ch), 0);
}

Test(lifecycle, producer_lanes_exhausted)
{
	const char *name = tt_name();
	tt_create(name, 4096, 2, 512);
	takt_producer *a = tt_producer(name);
	takt_producer *b = tt_producer(name);
	cr_assert_neq(takt_producer_lane(a), takt_producer_lane(b));
	cr_assert_lt(takt_producer_lane(a), 2);
	cr_assert_lt(takt_producer_lane(b), 2);
	takt_producer *x = NULL;
	cr_assert_eq(takt_producer_open(name, &x), -EBUSY);
	unsigned freed = takt_producer_lane(a);
	takt_producer_close(a);
	a = tt_producer(name);
	cr_assert_eq(takt_producer_lane(a), freed);
	takt_producer_close(a);
	takt_producer_close(b);
}

Test(lifecycle, producers_same_mapping_distinct_lanes)
{
	const char *name = tt_name();
	tt_create(name, 4096, 3, 512);
	takt_channel *ch = NULL;
	cr_assert_eq(takt_channel_open(name, 0, &ch), 0);
	takt_producer *p[3], *x = NULL;
	for (int i = 0; i < 3; i++)
		cr_assert_eq(takt_producer_attach(ch, &p[i]), 0);
	cr_assert_eq(takt_producer_attach(ch, &x), -EBUSY);
	/* and a producer from another mapping finds every lane held */
	cr_assert_eq(takt_producer_open(name, &x), -EBUSY);
	unsigned seen = 0;
	for (int i = 0; i < 3; i++) {
		unsigned l = takt_producer_lane(p[i]);
		cr_assert_lt(l, 3);
		cr_assert_eq(seen & (1u << l), 0, "lane %u handed out twice", l);
		seen |= 1u << l;
	}
	/* each writes its own lane: the consumer sees which */
	takt_consumer *c = tt_consumer(name);
	for (int i = 0; i < 3; i++) {
		char s[8] = {(char)('a' + i)};
		send_str(p[i], s);
	}
	for (int i = 0; i < 3; i++) {
		char buf[8];
		struct takt_msg m;
		cr_assert_eq(takt_try_recv(c, buf, sizeof buf, &m), 1);
		int who = buf[0] - 'a';
		cr_assert(who >= 0 && who < 3);
		cr_expect_eq(m.lane, takt_producer_lane(p[who]));
	}
	expect_empty(c);
	takt_consumer_close(c);
	for (int i = 0; i < 3; i++)
		takt_producer_close(p[i]);
	cr_assert_eq(takt_channel_close(ch), 0);
}

Test(lifecycle, all_64_lanes)
{
	const char *name = tt_name();
	tt_create(name, 1024, TAKT_LANES_MAX, 64);
	takt_channel *ch = NULL;
	cr_assert_eq(takt_channel_open(name, 0, &ch), 0);
	static takt_producer *p[TAKT_LANES_MAX];
	uint64_t seen = 0;
	for (unsigned i = 0; i < TAKT_LANES_MAX; i++) {
		int rc = takt_producer_attach(ch, &p[i]);
		cr_assert_eq(rc, 0, "producer %u: %d (%s)", i, rc, takt_strerror(rc));
		unsigned l = takt_producer_lane(p[i]);
		cr_assert_lt(l, TAKT_LANES_MAX);
		cr_assert_eq(seen & (1ull << l), 0, "lane %u twice", l);
		seen |= 1ull << l;
	}
	takt_producer *x = NULL;
	cr_assert_eq(takt_producer_attach(ch, &x), -EBUSY);
	cr_assert_eq(takt_producer_open(name, &x), -EBUSY);
	takt_consumer *c = tt_consumer(name);
	for (unsigned i = 0; i < TAKT_LANES_MAX; i++) {
		uint32_t l = takt_producer_lane(p[i]);
		cr_assert_eq(takt_try_send(p[i], l, &l, 4), 0);
	}
	seen = 0;
	for (unsigned i = 0; i < TAKT_LANES_MAX; i++) {
		uint32_t v;
		struct takt_msg m;
		cr_assert_eq(takt_try_recv(c, &v, sizeof v, &m), 4);
		cr_assert_eq(m.lane, v);
		cr_assert_eq(m.type, v);
		cr_assert_eq(seen & (1ull << v), 0);
		seen |= 1ull << v;
	}
	cr_assert_eq(seen, UINT64_MAX);
	expect_empty(c);
	/* the last lane is free again after its close, and only it */
	unsigned last = 0;
	for (unsigned i = 0; i < TAKT_LANES_MAX; i++)
		if (takt_producer_lane(p[i]) == TAKT_LANES_MAX - 1)
			last = i;
	takt_producer_close(p[last]);
	cr_assert_eq(takt_producer_open(name, &p[last]), 0);
	cr_assert_eq(takt_producer_lane(p[last]), TAKT_LANES_MAX - 1);
	takt_consumer_close(c);
	for (unsigned i = 0; i < TAKT_LANES_MAX; i++)
		takt_producer_close(p[i]);
	cr_assert_eq(takt_channel_close(ch), 0);
	cr_assert_eq(takt_unlink(name), 0);
	cr_assert_eq(tt_leftovers(name), 0, "semaphores of 64 lanes left behind");
}

Test(lifecycle, one_channel_mapped_twice)
{
	const char *name = tt_name();
	tt_create(name, 4096, 1, 256);
	takt_channel *m1 = NULL, *m2 = NULL;
	cr_assert_eq(takt_channel_open(name, 0, &m1), 0);
	cr_assert_eq(takt_channel_open(name, 0, &m2), 0);
	takt_producer *p = NULL;
	takt_consumer *c = NULL, *x = NULL;
	cr_assert_eq(takt_producer_attach(m1, &p), 0);
	cr_assert_eq(takt_consumer_attach(m2, &c), 0);
	cr_assert_eq(takt_consumer_attach(m1, &x), -EBUSY);
	/* several laps through the ring, one mapping to the other */
	char buf[256], want[256];
	for (uint64_t i = 0; i < 2000; i++) {
		size_t len = tt_stream_len(1, i, 256);
		tt_stream_make(want, len, 1, i);
		cr_assert_eq(takt_try_send(p, (uint32_t)i, want, len), 0, "send %llu", (unsigned long long)i);
		struct takt_msg m;
		int rc = takt_try_recv(c, buf, sizeof buf, &m);
		cr_assert_eq(rc, (int)len, "recv %llu = %d", (unsigned long long)i, rc);
		cr_assert_eq(m.type, (uint32_t)i);
		cr_assert_eq(memcmp(buf, want, len), 0);
	}
	expect_empty(c);
	takt_producer_close(p);
	takt_consumer_close(c);
	cr_assert_eq(takt_channel_close(m1), 0);
	cr_assert_eq(takt_channel_close(m2), 0);
}

Test(lifecycle, consumer_resumes_at_published_head)
{
	const char *name = tt_name();
	tt_create(name, 4096, 1, 256);
	takt_producer *p = tt_producer(name);
	takt_consumer *c = tt_consumer(name);
	char s[16];
	for (int i = 0; i < 10; i++) {
		snprintf(s, sizeof s, "r%d", i);
		send_str(p, s);
	}
	for (int i = 0; i < 3; i++) {
		snprintf(s, sizeof s, "r%d", i);
		expect_str(c, s);
	}
	takt_consumer_close(c);
	c = tt_consumer(name);
	for (int i = 3; i < 10; i++) {
		snprintf(s, sizeof s, "r%d", i);
		expect_str(c, s);
	}
	expect_empty(c);
	takt_consumer_close(c);
	takt_producer_close(p);
}

Test(lifecycle, producer_continues_at_tail)
{
	const char *name = tt_name();
	tt_create(name, 4096, 1, 256);
	takt_consumer *c = tt_consumer(name);
	char s[16];
	for (int round = 0; round < 4; round++) {
		takt_producer *p = tt_producer(name);
		cr_assert_eq(takt_producer_lane(p), 0);
		for (int i = 0; i < 5; i++) {
			snprintf(s, sizeof s, "p%d-%d", round, i);
			send_str(p, s);
		}
		takt_producer_close(p);
	}
	for (int round = 0; round < 4; round++)
		for (int i = 0; i < 5; i++) {
			snprintf(s, sizeof s, "p%d-%d", round, i);
			expect_str(c, s);
		}
	expect_empty(c);
	takt_consumer_close(c);
}

Test(lifecycle, uncommitted_reserve_dies_with_producer)
{
	const char *name = tt_name();
	tt_create(name, 4096, 1, 256);
	takt_consumer *c = tt_consumer(name);
	takt_producer *p = tt_producer(name);
	send_str(p, "before");
	void *d = NULL;
	cr_assert_eq(takt_reserve(p, 100, &d), 0);
	memset(d, 'X', 100);
	takt_producer_close(p);
	p = tt_producer(name);
	send_str(p, "after");
	expect_str(c, "before");
	expect_str(c, "after");
	expect_empty(c);
	takt_producer_close(p);
	takt_consumer_close(c);
}

/* ---- modes and permissions ------------------------------------------------ */

static mode_t file_mode(const char *path)
{
	struct stat st;
	cr_assert_eq(stat(path, &st), 0, "stat %s: %s", path, strerror(errno));
	return st.st_mode & 07777;
}

static void create_mode(const char *name, uint32_t mode)
{
	struct takt_queue_config cfg = {.capacity = 4096, .lanes = 2, .max_record = 512, .mode = mode};
	int rc = takt_queue_create(name, &cfg);
	cr_assert_eq(rc, 0, "create mode %o = %d (%s)", mode, rc, takt_strerror(rc));
}

Test(lifecycle, mode_exact_under_umask)
{
	static const uint32_t modes[] = {0666, 0660, 0640, 0644, 0600, 0400};
	umask(077);
	for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
		const char *name = tt_name();
		create_mode(name, modes[i]);
		char path[512];
		tt_seg_path(name, path, sizeof path);
		cr_expect_eq(file_mode(path), modes[i], "segment mode %o, asked for %o", file_mode(path),
			     modes[i]);
	}
}

Test(lifecycle, mode_zero_means_0600)
{
	umask(0);
	const char *name = tt_name();
	create_mode(name, 0);
	char path[512];
	tt_seg_path(name, path, sizeof path);
	cr_expect_eq(file_mode(path), 0600);
}

Test(lifecycle, semaphore_modes_exact_under_umask)
{
	umask(077);
	const char *name = tt_name();
	create_mode(name, 0666);
	char path[512];
	snprintf(path, sizeof path, "/dev/shm/sem.takt.%s.rx", name);
	cr_expect_eq(file_mode(path), 0666, "%s mode %o", path, file_mode(path));
	for (int k = 0; k < 2; k++) {
		snprintf(path, sizeof path, "/dev/shm/sem.takt.%s.tx%d", name, k);
		cr_expect_eq(file_mode(path), 0666, "%s mode %o", path, file_mode(path));
	}
}

/* A child that drops to uid/gid 65534 and reports what it could do:
 * bit 0: RW open result mismatch, bit 1: RDONLY open mismatch,
 * bit 2: producer/send failed when it should work. */
static int child_as_nobody(const char *name, int want_rw, int want_ro, int do_send)
{
	tt_child_setup();
	if (setgroups(0, NULL) != 0 || setgid(65534) != 0 || setuid(65534) != 0)
		_exit(100);
	int bad = 0;
	takt_channel *ch = NULL;
	int rc = takt_channel_open(name, 0, &ch);
	if (rc != want_rw)
		bad |= 1;
	if (rc == 0)
		takt_channel_close(ch);
	rc = takt_channel_open(name, TAKT_OPEN_RDONLY, &ch);
	if (rc != want_ro)
		bad |= 2;
	if (rc == 0)
		takt_channel_close(ch);
	if (do_send) {
		takt_producer *p = NULL;
		if (takt_producer_open(name, &p) != 0 || takt_try_send(p, 3, "nobody", 6) != 0)
			bad |= 4;
		if (p)
			takt_producer_close(p);
	}
	_exit(bad);
}

static void run_as_nobody(const char *name, int want_rw, int want_ro, int do_send)
{
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0)
		child_as_nobody(name, want_rw, want_ro, do_send);
	int st = tt_wait_child(pid);
	cr_assert(WIFEXITED(st), "child: %s", tt_status_str(st));
	cr_assert_neq(WEXITSTATUS(st), 100, "could not drop privileges");
	cr_assert_eq(WEXITSTATUS(st) & 1, 0, "read-write open as another user: expected %d", want_rw);
	cr_assert_eq(WEXITSTATUS(st) & 2, 0, "read-only open as another user: expected %d", want_ro);
	cr_assert_eq(WEXITSTATUS(st) & 4, 0, "producer as another user failed");
}

Test(lifecycle, eacces_for_other_users)
{
	if (geteuid() != 0)
		cr_skip_test("needs root to act as another user");
	umask(077);
	const char *n600 = tt_name();
	create_mode(n600, 0600);
	run_as_nobody(n600, -EACCES, -EACCES, 0);

	const char *n644 = tt_name();
	create_mode(n644, 0644);
	run_as_nobody(n644, -EACCES, 0, 0);

	const char *n666 = tt_name();
	create_mode(n666, 0666);
	run_as_nobody(n666, 0, 0, 1);
	takt_consumer *c = tt_consumer(n666);
	expect_str(c, "nobody");
	takt_consumer_close(c);
}

/* ---- resources -------------------------------------------------------- */

Test(lifecycle, enospc_leaves_nothing)
{
	const uint64_t cap = TAKT_CAPACITY_MAX;
	const uint32_t lanes = TAKT_LANES_MAX;
	struct statvfs vfs;
	cr_assert_eq(statvfs("/dev/shm", &vfs), 0);
	uint64_t avail = (uint64_t)vfs.f_bavail * vfs.f_frsize;
	if (avail >= takt_total_size(lanes, cap))
		cr_skip_test("/dev/shm has %llu bytes free: cannot provoke ENOSPC",
			     (unsigned long long)avail);
	const char *name = tt_name();
	struct takt_queue_config cfg = {.capacity = cap, .lanes = lanes, .max_record = 1024, .mode = 0600};
	int rc = takt_queue_create(name, &cfg);
	cr_assert_eq(rc, -ENOSPC, "create 64 x 1 GiB on a %llu-byte /dev/shm = %d (%s)",
		     (unsigned long long)avail, rc, takt_strerror(rc));
	cr_assert_eq(tt_leftovers(name), 0, "a failed create left files behind");
	takt_channel *ch = NULL;
	cr_assert_eq(takt_channel_open(name, TAKT_OPEN_RDONLY, &ch), -ENOENT);
	/* and the space really is given back */
	cr_assert_eq(statvfs("/dev/shm", &vfs), 0);
	uint64_t avail2 = (uint64_t)vfs.f_bavail * vfs.f_frsize;
	cr_expect_geq(avail2 + (4ull << 30), avail, "free space went from %llu to %llu",
		      (unsigned long long)avail, (unsigned long long)avail2);
	/* the name is still usable */
	tt_create(name, 4096, 1, 512);
}

Test(lifecycle, missing_semaphores_enoent)
{
	const char *name = tt_name();
	tt_create(name, 4096, 1, 512);
	char path[512];
	snprintf(path, sizeof path, "/dev/shm/sem.takt.%s.rx", name);
	cr_assert_eq(unlink(path), 0, "%s: %s", path, strerror(errno));
	snprintf(path, sizeof path, "/dev/shm/sem.takt.%s.tx0", name);
	cr_assert_eq(unlink(path), 0, "%s: %s", path, strerror(errno));
	takt_producer *p = NULL;
	takt_consumer *c = NULL;
	cr_expect_eq(takt_consumer_open(name, &c), -ENOENT);
	cr_expect_eq(takt_producer_open(name, &p), -ENOENT);
	/* takt_unlink still removes what is left (and may report the missing
	 * semaphores with -ENOENT) */
	int rc = takt_unlink(name);
	cr_expect(rc == 0 || rc == -ENOENT, "unlink = %d", rc);
	cr_expect_eq(tt_leftovers(name), 0);
}
