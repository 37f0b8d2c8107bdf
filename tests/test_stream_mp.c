/* SPDX-License-Identifier: MIT */
/*
 * test_stream_mp.c - streams between processes (fork): producers in child
 * processes, the consumer in the test process; every endpoint is opened
 * after the fork.  TAKT_STREAM_RECORDS sets the number of records (default
 * 10 million; fewer in the sanitizer builds).
 */
#define _GNU_SOURCE
#include "common.h"
#include "stream.h"

#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

TT_SUITE(stream_mp);

/* Producer child: exit 0 on success, 1 with a message on stderr otherwise. */
static void producer_child(const char *name, uint64_t stream, uint64_t n, uint32_t max,
			   enum st_mode mode, uint64_t seed)
{
	tt_child_setup();
	takt_producer *p = NULL;
	int rc = takt_producer_open(name, &p);
	if (rc != 0) {
		fprintf(stderr, "producer %llu: open = %d (%s)\n", (unsigned long long)stream, rc,
			takt_strerror(rc));
		_exit(1);
	}
	const char *err = st_produce(p, stream, n, max, mode, seed, st_deadline());
	if (err) {
		fprintf(stderr, "producer child: %s\n", err);
		_exit(1);
	}
	takt_producer_close(p);
	_exit(0);
}

static void run_stream(unsigned producers, uint64_t per_producer, uint64_t capacity, uint32_t max,
		       enum st_mode mode)
{
	uint64_t seed = tt_seed();
	const char *name = tt_name();
	tt_create(name, capacity, producers, max);
	cr_log_info("%u producer process(es) x %" PRIu64 " records, capacity %" PRIu64 ", max %u, mode %d",
		    producers, per_producer, capacity, max, (int)mode);
	double t0 = tt_now();
	pid_t pids[ST_MAX_STREAMS];
	for (unsigned i = 0; i < producers; i++) {
		pids[i] = fork();
		cr_assert_geq(pids[i], 0, "fork");
		if (pids[i] == 0)
			producer_child(name, i, per_producer, max, mode, seed);
	}
	/* the consumer opens after the fork too */
	takt_consumer *c = tt_consumer(name);
	static struct st_consumer_state st;
	st_consumer_init(&st, producers, per_producer, max);
	const char *err = st_consume(c, &st, mode, seed, st_deadline());
	if (err) {
		for (unsigned i = 0; i < producers; i++)
			kill(pids[i], SIGKILL);
	}
	for (unsigned i = 0; i < producers; i++) {
		int status = tt_wait_child(pids[i]);
		if (!err)
			cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "producer %u: %s", i,
				  tt_status_str(status));
	}
	cr_assert_null(err, "%s (seed %" PRIu64 ")", err, seed);
	double dt = tt_now() - t0;
	cr_log_info("%" PRIu64 " records in %.2f s (%.2f M/s)", st.received, dt,
		    (double)st.received / dt / 1e6);

	/* the counters agree, seen through a read-only mapping */
	takt_channel *ro = NULL;
	cr_assert_eq(takt_channel_open(name, TAKT_OPEN_RDONLY, &ro), 0);
	for (unsigned l = 0; l < producers; l++) {
		struct takt_lane_stats ls;
		cr_assert_eq(takt_lane_stats_get(ro, l, &ls), 0);
		cr_expect_eq(ls.records_sent, per_producer, "lane %u records_sent", l);
		cr_expect_eq(ls.records_received, per_producer, "lane %u records_received", l);
		cr_expect_eq(ls.bytes_sent, ls.bytes_received, "lane %u bytes", l);
		cr_expect_eq(ls.head, ls.tail, "lane %u head/tail", l);
		cr_expect_eq(ls.producer_alive, 0, "lane %u: producer exited", l);
		cr_expect_eq(ls.broken, 0);
	}
	cr_assert_eq(takt_channel_close(ro), 0);
	takt_consumer_close(c);
}

Test(stream_mp, spsc)
{
	run_stream(1, tt_stream_records(), 65536, 256, ST_PLAIN);
}

Test(stream_mp, spsc_small_ring_large_records)
{
	/* records up to a quarter of the ring: full and wrap all the time */
	run_stream(1, tt_stream_records() / 20 + 1, 4096, 1024, ST_PLAIN);
}

Test(stream_mp, spsc_every_api)
{
	run_stream(1, tt_stream_records() / 4 + 1, 8192, 512, ST_MIXED);
}

Test(stream_mp, mpsc)
{
	run_stream(3, tt_stream_records() / 6 + 1, 8192, 256, ST_PLAIN);
}

Test(stream_mp, mpsc_every_api)
{
	run_stream(4, tt_stream_records() / 20 + 1, 4096, 256, ST_MIXED);
}
