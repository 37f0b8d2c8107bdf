/* SPDX-License-Identifier: MIT */
/*
 * test_state_liveness.c - who is alive on a state channel: the writer as
 * its reader's watchdog sees it (takt_state_watch_writer), the stats, and
 * stale-channel detection and removal (takt_channel_is_stale,
 * takt_unlink_stale).  No assertion is a timing: the stale flag is checked
 * against the age the same call measured, and waits loop on a
 * CLOCK_MONOTONIC condition with a generous deadline.
 */
#include "ts_common.h"

#include <criterion/logging.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

TS_SUITE(liveness);

#define IMG 128u
#define GENEROUS_NS 10000000000ull /* deadline of every wait for a condition */

struct ctl {
	_Atomic int cmd;      /* parent: number of publishes asked for */
	_Atomic int done;     /* child: number of publishes done */
	_Atomic int opened;
	_Atomic uint64_t last_publish_ns;
};

/* Child: open the writer (or the reader), publish as asked, live until killed. */
static void __attribute__((noreturn)) writer_child(const char *name, struct ctl *c)
{
	takt_state_writer *w = NULL;
	if (takt_state_writer_open(name, &w) != 0)
		_exit(2);
	atomic_store(&c->opened, 1);
	uint8_t img[IMG];
	uint64_t end = ts_now_ns() + 60000000000ull;
	while (ts_now_ns() < end) {
		int done = atomic_load(&c->done);
		if (atomic_load(&c->cmd) > done) {
			ts_image_make(img, IMG, (uint64_t)done + 1);
			uint64_t t = ts_now_ns();
			if (takt_state_write(w, img, IMG) != 0)
				_exit(3);
			atomic_store(&c->last_publish_ns, t);
			atomic_store(&c->done, done + 1);
		}
		ts_sleep_ns(200000);
	}
	_exit(4);
}

static void __attribute__((noreturn)) reader_child(const char *name, struct ctl *c)
{
	takt_state_reader *r = NULL;
	if (takt_state_reader_open(name, &r) != 0)
		_exit(2);
	atomic_store(&c->opened, 1);
	for (;;)
		ts_sleep_ns(1000000);
}

static void wait_for(_Atomic int *v, int value, const char *what)
{
	uint64_t deadline = ts_now_ns() + GENEROUS_NS;
	while (atomic_load(v) < value) {
		cr_assert_lt(ts_now_ns(), deadline, "timed out waiting for %s", what);
		ts_sleep_ns(100000);
	}
}

static void publish_in_child(struct ctl *c)
{
	int n = atomic_fetch_add(&c->cmd, 1) + 1;
	wait_for(&c->done, n, "the child's publish");
}

Test(liveness, watch_writer_goes_stale_and_dead)
{
	const char *name = ts_name("watch");
	ts_create(name, IMG);
	takt_state_reader *r = ts_reader(name);
	struct ctl *c = ts_shared(sizeof *c);
	pid_t pid = ts_fork();
	if (pid == 0)
		writer_child(name, c);
	wait_for(&c->opened, 1, "the writer to open");
	publish_in_child(c);

	const uint64_t period = 20000000; /* 20 ms */
	struct takt_peer_watch pw;
	cr_assert_eq(takt_state_watch_writer(r, period, NULL), -EINVAL);
	cr_assert_eq(takt_state_watch_writer(NULL, period, &pw), -EINVAL);

	/* the writer stops publishing: the flag must flip once the age passes 2 periods */
	uint64_t deadline = ts_now_ns() + GENEROUS_NS;
	unsigned samples = 0, fresh_samples = 0;
	for (;;) {
		cr_assert_eq(takt_state_watch_writer(r, period, &pw), 0);
		uint64_t after = takt_now_ns();
		samples++;
		uint64_t published = atomic_load(&c->last_publish_ns);
		cr_assert_eq(pw.alive, 1u, "the writer is alive");
		cr_assert_eq(pw.stale, (uint32_t)(pw.age_ns > 2 * period),
			     "stale = %u with age %" PRIu64 " ns and period %" PRIu64 " ns", pw.stale,
			     pw.age_ns, period);
		cr_assert_leq(pw.age_ns, after - published, "age %" PRIu64 " ns beyond the time since "
			      "the publish began", pw.age_ns);
		if (pw.stale)
			break;
		fresh_samples++;
		cr_assert_lt(ts_now_ns(), deadline, "never became stale (age %" PRIu64 ")", pw.age_ns);
		ts_sleep_ns(2000000);
	}
	cr_log_info("stale after %u samples (%u not stale), age %" PRIu64 " ms", samples, fresh_samples,
		    pw.age_ns / 1000000);

	/* it publishes again: not stale while fresh (retry: this VM may pause us) */
	bool seen_fresh = false;
	for (int i = 0; i < 50 && !seen_fresh; i++) {
		publish_in_child(c);
		cr_assert_eq(takt_state_watch_writer(r, period, &pw), 0);
		cr_assert_eq(pw.alive, 1u);
		cr_assert_eq(pw.stale, (uint32_t)(pw.age_ns > 2 * period));
		seen_fresh = !pw.stale;
	}
	cr_assert(seen_fresh, "a writer that just published is still reported stale");

	/* SIGKILL: dead, hence stale, whatever the age and period */
	int st = ts_kill_wait(pid);
	cr_assert(WIFSIGNALED(st), "writer child: %s", ts_status_str(st));
	cr_assert_eq(takt_state_watch_writer(r, period, &pw), 0);
	cr_assert_eq(pw.alive, 0u, "a killed writer is reported alive");
	cr_assert_eq(pw.stale, 1u);
	cr_assert_eq(takt_state_watch_writer(r, 3600000000000ull, &pw), 0);
	cr_assert_eq(pw.alive, 0u);
	cr_assert_eq(pw.stale, 1u, "a dead writer is stale even within its period");

	/* the last image stays readable */
	uint8_t buf[IMG];
	struct takt_state_info info;
	int n = atomic_load(&c->done);
	cr_assert_eq(takt_state_read(r, buf, sizeof buf, &info), (int)IMG);
	cr_assert_eq(info.generation, (uint64_t)n);
	cr_assert_null(ts_image_check(buf, IMG, info.generation));
	takt_state_reader_close(r);
	ts_shared_free(c, sizeof *c);
}

Test(liveness, stats_show_peers)
{
	const char *name = ts_name("stats");
	ts_create(name, IMG);
	struct ctl *wc = ts_shared(sizeof *wc);
	struct ctl *rc_ = ts_shared(sizeof *rc_);
	pid_t wpid = ts_fork();
	if (wpid == 0)
		writer_child(name, wc);
	pid_t rpid = ts_fork();
	if (rpid == 0)
		reader_child(name, rc_);
	wait_for(&wc->opened, 1, "the writer to open");
	wait_for(&rc_->opened, 1, "the reader to open");
	publish_in_child(wc);
	publish_in_child(wc);

	struct takt_state_stats s = ts_stats(name);
	cr_assert_eq(s.writer_pid, (int32_t)wpid);
	cr_assert_eq(s.reader_pid, (int32_t)rpid);
	cr_assert_eq(s.writer_alive, 1u);
	cr_assert_eq(s.reader_alive, 1u);
	cr_assert_neq(s.writer_start, 0u);
	cr_assert_neq(s.reader_start, 0u);
	cr_assert_eq(s.writes, 2u);
	cr_assert_eq(s.image_size, IMG);
	cr_assert_geq(s.writer_last_ns, atomic_load(&wc->last_publish_ns));
	cr_assert_leq(s.writer_last_ns, takt_now_ns());

	int st = ts_kill_wait(wpid);
	cr_assert(WIFSIGNALED(st));
	s = ts_stats(name);
	cr_assert_eq(s.writer_alive, 0u);
	cr_assert_eq(s.reader_alive, 1u);
	st = ts_kill_wait(rpid);
	cr_assert(WIFSIGNALED(st));
	s = ts_stats(name);
	cr_assert_eq(s.writer_alive, 0u);
	cr_assert_eq(s.reader_alive, 0u);
	cr_assert_eq(s.writes, 2u);
	ts_shared_free(wc, sizeof *wc);
	ts_shared_free(rc_, sizeof *rc_);
}

Test(liveness, is_stale_and_unlink_stale)
{
	const char *name = ts_name("stale");
	ts_create(name, IMG);
	takt_channel *ch = ts_inspect(name);
	cr_assert_eq(takt_channel_is_stale(ch), 1, "a new channel nobody opened is stale");

	/* a live writer in another process */
	struct ctl *c = ts_shared(sizeof *c);
	pid_t pid = ts_fork();
	if (pid == 0)
		writer_child(name, c);
	wait_for(&c->opened, 1, "the writer to open");
	uint64_t mask = 0;
	cr_assert_eq(takt_channel_is_stale(ch), 0, "stale with a live writer");
	cr_assert_eq(takt_producers_alive(ch, &mask), 1);
	cr_assert_eq(mask, 1u);
	cr_assert_eq(takt_consumer_alive(ch), 0);
	cr_assert_eq(takt_unlink_stale(name), -EBUSY, "removed a channel with a live writer");
	cr_assert_eq(ts_leftovers(name), 2);
	publish_in_child(c);
	int st = ts_kill_wait(pid);
	cr_assert(WIFSIGNALED(st));
	cr_assert_eq(takt_channel_is_stale(ch), 1, "not stale after the writer was killed");
	cr_assert_eq(takt_producers_alive(ch, &mask), 0);

	/* a live reader in this process (its own mapping) */
	takt_state_reader *r = ts_reader(name);
	cr_assert_eq(takt_channel_is_stale(ch), 0, "stale with a live reader");
	cr_assert_eq(takt_consumer_alive(ch), 1);
	cr_assert_eq(takt_unlink_stale(name), -EBUSY, "removed a channel with a live reader");
	takt_state_reader_close(r);
	cr_assert_eq(takt_channel_is_stale(ch), 1);

	/* a reader killed in another process */
	memset(c, 0, sizeof *c);
	pid = ts_fork();
	if (pid == 0)
		reader_child(name, c);
	wait_for(&c->opened, 1, "the reader to open");
	cr_assert_eq(takt_channel_is_stale(ch), 0);
	cr_assert_eq(takt_unlink_stale(name), -EBUSY);
	st = ts_kill_wait(pid);
	cr_assert(WIFSIGNALED(st));
	cr_assert_eq(takt_channel_is_stale(ch), 1);

	/* now it goes, segment and semaphore; our mapping stays usable until closed */
	cr_assert_eq(takt_unlink_stale(name), 0);
	cr_assert_eq(ts_leftovers(name), 0, "takt_unlink_stale left objects of a state channel");
	cr_assert_eq(takt_unlink_stale(name), -ENOENT);
	struct takt_state_stats s;
	cr_assert_eq(takt_state_stats_get(ch, &s), 0);
	cr_assert_eq(s.writes, 1u);
	cr_assert_eq(takt_channel_close(ch), 0);
	ts_shared_free(c, sizeof *c);
}

/* "no update for more than 2 expected periods": 2 * period must not wrap. */
Test(liveness, watch_writer_huge_period)
{
	const char *name = ts_name("hugeper");
	ts_create(name, IMG);
	takt_state_writer *w = ts_writer(name);
	takt_state_reader *r = ts_reader(name);
	uint8_t img[IMG];
	ts_image_make(img, IMG, 1);
	cr_assert_eq(takt_state_write(w, img, IMG), 0);
	const uint64_t periods[] = {3600000000000ull, 1ull << 62, (1ull << 63) + 1, UINT64_MAX / 2 + 1,
				    UINT64_MAX};
	for (unsigned i = 0; i < sizeof periods / sizeof periods[0]; i++) {
		struct takt_peer_watch pw;
		cr_assert_eq(takt_state_watch_writer(r, periods[i], &pw), 0);
		cr_assert_eq(pw.alive, 1u);
		cr_assert_lt(pw.age_ns, 3600000000000ull);
		cr_assert_eq(pw.stale, 0u, "period %" PRIu64 " ns: a live writer that published %" PRIu64
			     " ns ago is reported stale", periods[i], pw.age_ns);
	}
	takt_state_writer_close(w);
	takt_state_reader_close(r);
}
