/* SPDX-License-Identifier: MIT */
/*
 * test_stats.c - lane and consumer counters and liveness, read through a
 * separate read-only mapping, match what the test did.
 */
#define _GNU_SOURCE
#include "common.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

TT_SUITE(stats);

static struct takt_lane_stats lane_stats(takt_channel *ch, unsigned lane)
{
	struct takt_lane_stats ls;
	memset(&ls, 0xa5, sizeof ls);
	cr_assert_eq(takt_lane_stats_get(ch, lane, &ls), 0);
	return ls;
}

static struct takt_consumer_stats cons_stats(takt_channel *ch)
{
	struct takt_consumer_stats cs;
	memset(&cs, 0xa5, sizeof cs);
	cr_assert_eq(takt_consumer_stats_get(ch, &cs), 0);
	return cs;
}

/* Field 22 of /proc/<pid>/stat: start time in clock ticks after boot. */
static uint64_t proc_start_time(pid_t pid)
{
	char path[64], line[1024];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	cr_assert_not_null(f);
	cr_assert_not_null(fgets(line, sizeof line, f));
	fclose(f);
	char *s = strrchr(line, ')');
	cr_assert_not_null(s);
	s += 2; /* field 3 */
	for (int field = 3; field < 22; field++) {
		s = strchr(s, ' ');
		cr_assert_not_null(s);
		s++;
	}
	return strtoull(s, NULL, 10);
}

static takt_channel *open_ro(const char *name)
{
	takt_channel *ro = NULL;
	cr_assert_eq(takt_channel_open(name, TAKT_OPEN_RDONLY, &ro), 0);
	return ro;
}

Test(stats, fresh_channel_is_zero)
{
	const char *name = tt_name();
	tt_create(name, 4096, 2, 256);
	takt_channel *ro = open_ro(name);
	for (unsigned l = 0; l < 2; l++) {
		struct takt_lane_stats ls = lane_stats(ro, l);
		cr_expect_eq(ls.head, 0);
		cr_expect_eq(ls.tail, 0);
		cr_expect_eq(ls.records_sent, 0);
		cr_expect_eq(ls.bytes_sent, 0);
		cr_expect_eq(ls.full_events, 0);
		cr_expect_eq(ls.records_received, 0);
		cr_expect_eq(ls.bytes_received, 0);
		cr_expect_eq(ls.producer_alive, 0);
		cr_expect_eq(ls.broken, 0);
	}
	struct takt_consumer_stats cs = cons_stats(ro);
	cr_expect_eq(cs.empty_events, 0);
	cr_expect_eq(cs.alive, 0);
	struct takt_lane_stats ls;
	cr_expect_eq(takt_lane_stats_get(ro, 2, &ls), -EINVAL);
	cr_expect_eq(takt_lane_stats_get(ro, UINT32_MAX, &ls), -EINVAL);
	cr_assert_eq(takt_channel_close(ro), 0);
}

Test(stats, counters_match)
{
	const char *name = tt_name();
	tt_create(name, 1024, 1, 256);
	takt_channel *ro = open_ro(name);
	uint64_t t0 = takt_now_ns();
	takt_producer *p = tt_producer(name);
	takt_consumer *c = tt_consumer(name);

	uint8_t buf[256];
	uint64_t sent = 0, bytes = 0, full = 0, recvd = 0, rbytes = 0, empty = 0;
	/* 3 empty receives */
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(takt_try_recv(c, buf, sizeof buf, NULL), -EAGAIN);
		empty++;
	}
	/* fill with sizes 0..; count refusals */
	for (uint32_t len = 0;; len = (len + 13) % 200) {
		int rc = takt_try_send(p, 1, buf, len);
		if (rc == -EAGAIN) {
			full++;
			break;
		}
		cr_assert_eq(rc, 0);
		sent++;
		bytes += len;
	}
	cr_assert_eq(takt_try_send(p, 1, buf, 200), -EAGAIN);
	full++;
	/* refused for size or type: not full events, not sent */
	cr_assert_eq(takt_try_send(p, 1, buf, 257), -EMSGSIZE);
	cr_assert_eq(takt_try_send(p, TAKT_TYPE_RESERVED, buf, 1), -EINVAL);
	/* receive half */
	for (uint64_t i = 0; i < sent / 2; i++) {
		int rc = takt_try_recv(c, buf, sizeof buf, NULL);
		cr_assert_geq(rc, 0);
		recvd++;
		rbytes += (uint64_t)rc;
	}
	uint64_t t1 = takt_now_ns();

	struct takt_lane_stats ls = lane_stats(ro, 0);
	cr_expect_eq(ls.records_sent, sent);
	cr_expect_eq(ls.bytes_sent, bytes);
	cr_expect_eq(ls.full_events, full);
	cr_expect_eq(ls.records_received, recvd);
	cr_expect_eq(ls.bytes_received, rbytes);
	cr_expect_leq(ls.head, ls.tail);
	cr_expect_leq(ls.tail - ls.head, 1024);
	cr_expect_eq(ls.producer_pid, getpid());
	cr_expect_eq(ls.producer_alive, 1);
	cr_expect_eq(ls.broken, 0);
	cr_expect_eq(ls.producer_start, proc_start_time(getpid()));
	/* coarse clock: allow a few ticks either way */
	cr_expect(ls.producer_last_ns + 50000000ull >= t0 && ls.producer_last_ns <= t1 + 50000000ull,
		  "producer_last_ns %llu outside [%llu, %llu]", (unsigned long long)ls.producer_last_ns,
		  (unsigned long long)t0, (unsigned long long)t1);

	struct takt_consumer_stats cs = cons_stats(ro);
	cr_expect_eq(cs.empty_events, empty);
	cr_expect_eq(cs.pid, getpid());
	cr_expect_eq(cs.alive, 1);
	cr_expect_eq(cs.start, proc_start_time(getpid()));
	cr_expect(cs.last_ns + 50000000ull >= t0 && cs.last_ns <= t1 + 50000000ull,
		  "consumer last_ns %llu outside [%llu, %llu]", (unsigned long long)cs.last_ns,
		  (unsigned long long)t0, (unsigned long long)t1);

	/* drain; two more empty receives */
	int rc;
	while ((rc = takt_try_recv(c, buf, sizeof buf, NULL)) >= 0) {
		recvd++;
		rbytes += (uint64_t)rc;
	}
	cr_assert_eq(rc, -EAGAIN);
	empty++;
	cr_assert_eq(takt_try_recv(c, buf, sizeof buf, NULL), -EAGAIN);
	empty++;
	ls = lane_stats(ro, 0);
	cr_expect_eq(ls.records_received, sent);
	cr_expect_eq(ls.bytes_received, bytes);
	cr_expect_eq(ls.head, ls.tail);
	cr_expect_eq(cons_stats(ro).empty_events, empty);

	/* closed endpoints are not alive; the pid stays for display */
	takt_producer_close(p);
	takt_consumer_close(c);
	ls = lane_stats(ro, 0);
	cr_expect_eq(ls.producer_alive, 0);
	cr_expect_eq(ls.records_sent, sent, "counters survive the producer");
	cr_expect_eq(cons_stats(ro).alive, 0);
	cr_assert_eq(takt_channel_close(ro), 0);
}

Test(stats, per_lane_counters)
{
	const unsigned lanes = 4;
	const char *name = tt_name();
	tt_create(name, 4096, lanes, 256);
	takt_channel *ro = open_ro(name);
	takt_producer *p[4];
	for (unsigned i = 0; i < lanes; i++)
		p[i] = tt_producer(name);
	takt_consumer *c = tt_consumer(name);
	uint8_t buf[256];
	uint64_t want_rec[64] = {0}, want_bytes[64] = {0};
	for (unsigned i = 0; i < lanes; i++) {
		unsigned lane = takt_producer_lane(p[i]);
		for (unsigned k = 0; k <= i * 3; k++) {
			cr_assert_eq(takt_try_send(p[i], 0, buf, 10 * (k + 1)), 0);
			want_rec[lane]++;
			want_bytes[lane] += 10 * (k + 1);
		}
	}
	/* close lane of p[1] (the others stay alive) */
	unsigned closed = takt_producer_lane(p[1]);
	takt_producer_close(p[1]);
	for (unsigned l = 0; l < lanes; l++) {
		struct takt_lane_stats ls = lane_stats(ro, l);
		cr_expect_eq(ls.records_sent, want_rec[l], "lane %u", l);
		cr_expect_eq(ls.bytes_sent, want_bytes[l], "lane %u", l);
		cr_expect_eq(ls.records_received, 0);
		cr_expect_eq(ls.producer_alive, l == closed ? 0u : 1u, "lane %u alive", l);
	}
	uint64_t got_rec[64] = {0}, got_bytes[64] = {0};
	struct takt_msg m;
	int rc;
	while ((rc = takt_try_recv(c, buf, sizeof buf, &m)) >= 0) {
		got_rec[m.lane]++;
		got_bytes[m.lane] += (uint64_t)rc;
	}
	for (unsigned l = 0; l < lanes; l++) {
		struct takt_lane_stats ls = lane_stats(ro, l);
		cr_expect_eq(got_rec[l], want_rec[l]);
		cr_expect_eq(ls.records_received, want_rec[l], "lane %u", l);
		cr_expect_eq(ls.bytes_received, want_bytes[l], "lane %u", l);
		cr_expect_eq(ls.head, ls.tail);
	}
	for (unsigned i = 0; i < lanes; i++)
		if (i != 1)
			takt_producer_close(p[i]);
	takt_consumer_close(c);
	cr_assert_eq(takt_channel_close(ro), 0);
}

/* Liveness across processes: alive while the child holds the endpoint,
 * not alive once it was killed (no clean close). */
Test(stats, liveness_of_killed_peers)
{
	const char *name = tt_name();
	tt_create(name, 4096, 1, 256);
	takt_channel *ro = open_ro(name);
	int ready[2], hold[2];
	cr_assert_eq(pipe(ready), 0);
	cr_assert_eq(pipe(hold), 0);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		tt_child_setup();
		close(ready[0]);
		close(hold[1]);
		takt_producer *p = NULL;
		takt_consumer *c = NULL;
		if (takt_producer_open(name, &p) != 0 || takt_consumer_open(name, &c) != 0)
			_exit(2);
		if (takt_try_send(p, 1, "alive", 5) != 0)
			_exit(3);
		char ok = 1;
		if (write(ready[1], &ok, 1) != 1)
			_exit(4);
		char x;
		(void)read(hold[0], &x, 1); /* until the parent kills us */
		_exit(0);
	}
	close(ready[1]);
	close(hold[0]);
	char ok = 0;
	cr_assert_eq(read(ready[0], &ok, 1), 1, "child failed before it was ready");
	struct takt_lane_stats ls = lane_stats(ro, 0);
	cr_expect_eq(ls.producer_alive, 1);
	cr_expect_eq(ls.producer_pid, pid);
	cr_expect_eq(ls.producer_start, proc_start_time(pid));
	cr_expect_eq(ls.records_sent, 1);
	struct takt_consumer_stats cs = cons_stats(ro);
	cr_expect_eq(cs.alive, 1);
	cr_expect_eq(cs.pid, pid);
	/* and its slots are held against us */
	takt_consumer *c = NULL;
	takt_producer *p = NULL;
	cr_expect_eq(takt_consumer_open(name, &c), -EBUSY);
	cr_expect_eq(takt_producer_open(name, &p), -EBUSY);

	kill(pid, SIGKILL);
	int st = tt_wait_child(pid);
	cr_assert(WIFSIGNALED(st), "%s", tt_status_str(st));
	ls = lane_stats(ro, 0);
	cr_expect_eq(ls.producer_alive, 0, "a killed producer is not alive");
	cr_expect_eq(ls.producer_pid, pid, "the last producer's pid stays for display");
	cs = cons_stats(ro);
	cr_expect_eq(cs.alive, 0, "a killed consumer is not alive");
	/* the slots are free; the committed record is still there */
	c = tt_consumer(name);
	p = tt_producer(name);
	char buf[16];
	cr_assert_eq(takt_try_recv(c, buf, sizeof buf, NULL), 5);
	cr_assert_eq(memcmp(buf, "alive", 5), 0);
	cr_assert_eq(takt_try_send(p, 1, "again", 5), 0);
	cr_assert_eq(takt_try_recv(c, buf, sizeof buf, NULL), 5);
	cr_assert_eq(memcmp(buf, "again", 5), 0);
	takt_producer_close(p);
	takt_consumer_close(c);
	close(ready[0]);
	close(hold[1]);
	cr_assert_eq(takt_channel_close(ro), 0);
}
