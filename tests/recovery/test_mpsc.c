/* SPDX-License-Identifier: MIT */
/*
 * test_mpsc.c - MPSC queue channels as N per-producer SPSC lanes: lane
 * allocation (-EBUSY when all are live, up to 64 lanes), round-robin with a
 * per-lane burst (FIFO per producer, no lane starves), the whole SPSC API
 * on several lanes incl. blocking waits, and start order (either side may
 * start first, either may restart alone).
 */
#include "tr_common.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "layout.h"

TR_SUITE(mpsc, .timeout = 60);

static void send_u32(takt_producer *p, uint32_t v)
{
	int rc = takt_try_send(p, 7, &v, sizeof v);
	cr_assert_eq(rc, 0, "try_send = %d (%s)", rc, takt_strerror(rc));
}

static int recv_u32(takt_consumer *c, uint32_t *v, struct takt_msg *m)
{
	int rc = takt_try_recv(c, v, sizeof *v, m);
	if (rc >= 0)
		cr_assert_eq(rc, (int)sizeof *v);
	return rc;
}

Test(mpsc, lanes_busy_and_reuse)
{
	const char *n = tr_name("lanes");
	tr_create(n, 4096, 4, 256);
	takt_producer *p[4];
	for (unsigned k = 0; k < 4; k++) {
		cr_assert_eq(takt_producer_open(n, &p[k]), 0);
		cr_assert_eq(takt_producer_lane(p[k]), k, "first free lane");
	}
	takt_producer *extra = NULL;
	cr_assert_eq(takt_producer_open(n, &extra), -EBUSY);
	takt_producer_close(p[2]);
	cr_assert_eq(takt_producer_open(n, &p[2]), 0);
	cr_assert_eq(takt_producer_lane(p[2]), 2u, "the freed lane is taken again");
	/* attach to one shared mapping: the bitmap keeps two handles apart */
	takt_channel *ch;
	cr_assert_eq(takt_channel_open(n, 0, &ch), 0);
	cr_assert_eq(takt_producer_attach(ch, &extra), -EBUSY);
	takt_producer_close(p[3]);
	takt_producer *a, *b;
	cr_assert_eq(takt_producer_attach(ch, &a), 0);
	cr_assert_eq(takt_producer_lane(a), 3u);
	cr_assert_eq(takt_producer_attach(ch, &b), -EBUSY);
	cr_assert_eq(takt_channel_close(ch), -EBUSY, "an endpoint is attached");
	takt_producer_close(a);
	cr_assert_eq(takt_channel_close(ch), 0);
	for (unsigned k = 0; k < 3; k++)
		takt_producer_close(p[k]);
}

Test(mpsc, sixty_four_lanes)
{
	const char *n = tr_name("64");
	tr_create(n, 1024, TAKT_LANES_MAX, 64);
	takt_producer *p[TAKT_LANES_MAX];
	for (unsigned k = 0; k < TAKT_LANES_MAX; k++) {
		cr_assert_eq(takt_producer_open(n, &p[k]), 0, "lane %u", k);
		send_u32(p[k], k);
	}
	takt_producer *extra;
	cr_assert_eq(takt_producer_open(n, &extra), -EBUSY);
	takt_channel *ro;
	cr_assert_eq(takt_channel_open(n, TAKT_OPEN_RDONLY, &ro), 0);
	uint64_t mask = 0;
	cr_assert_eq(takt_producers_alive(ro, &mask), TAKT_LANES_MAX);
	cr_assert_eq(mask, UINT64_MAX);
	takt_consumer *c;
	cr_assert_eq(takt_consumer_open(n, &c), 0);
	uint64_t seen = 0;
	for (unsigned i = 0; i < TAKT_LANES_MAX; i++) {
		uint32_t v;
		struct takt_msg m;
		cr_assert_eq(recv_u32(c, &v, &m), 4);
		cr_assert_eq(v, m.lane, "lane %u delivered %u", m.lane, v);
		seen |= 1ull << v;
	}
	cr_assert_eq(seen, UINT64_MAX);
	uint32_t v;
	cr_assert_eq(recv_u32(c, &v, NULL), -EAGAIN);
	takt_consumer_close(c);
	for (unsigned k = 0; k < TAKT_LANES_MAX; k++)
		takt_producer_close(p[k]);
	cr_assert_eq(takt_producers_alive(ro, &mask), 0);
	takt_channel_close(ro);
}

/* Round-robin with a burst: each lane gives up to `burst` records, then
 * the next lane's turn comes; FIFO within each lane. */
Test(mpsc, round_robin_burst)
{
	const char *n = tr_name("rr");
	tr_create(n, 8192, 3, 256);
	takt_producer *p[3];
	for (unsigned k = 0; k < 3; k++) {
		cr_assert_eq(takt_producer_open(n, &p[k]), 0);
		for (uint32_t i = 0; i < 40; i++)
			send_u32(p[k], k * 1000 + i);
	}
	takt_consumer *c;
	cr_assert_eq(takt_consumer_open(n, &c), 0);
	cr_assert_eq(takt_consumer_set_lane_burst(c, 0), -EINVAL);
	cr_assert_eq(takt_consumer_set_lane_burst(c, 5), 0);
	uint32_t next[3] = {0, 0, 0};
	for (unsigned i = 0; i < 120; i++) {
		uint32_t v;
		struct takt_msg m;
		cr_assert_eq(recv_u32(c, &v, &m), 4);
		unsigned want_lane = (i / 5) % 3;
		cr_assert_eq(m.lane, want_lane, "record %u from lane %u, expected lane %u", i, m.lane,
			     want_lane);
		cr_assert_eq(v, m.lane * 1000 + next[m.lane]++, "FIFO per lane");
	}
	takt_consumer_close(c);
	for (unsigned k = 0; k < 3; k++)
		takt_producer_close(p[k]);
}

/* A flooded lane cannot starve a quiet one, whatever the consumer calls. */
Test(mpsc, no_starvation)
{
	const char *n = tr_name("starve");
	tr_create(n, 65536, 2, 256);
	takt_producer *busy, *quiet;
	cr_assert_eq(takt_producer_open(n, &busy), 0);
	cr_assert_eq(takt_producer_open(n, &quiet), 0);
	takt_consumer *c;
	cr_assert_eq(takt_consumer_open(n, &c), 0);
	cr_assert_eq(takt_consumer_set_lane_burst(c, 4), 0);
	uint32_t sent = 0;
	while (takt_try_send(busy, 1, &sent, 4) == 0)
		sent++;
	cr_assert_gt(sent, 100);
	for (int mode = 0; mode < 3; mode++) {
		send_u32(quiet, 42 + (uint32_t)mode);
		bool got = false;
		/* within one round of bursts: at most burst records of the busy lane */
		for (int i = 0; i < 6 && !got; i++) {
			uint32_t v[8];
			struct takt_msg m[8];
			int r;
			if (mode == 0) {
				r = recv_u32(c, v, m);
				r = r > 0 ? 1 : r;
			} else if (mode == 1) {
				r = takt_peek(c, m);
				cr_assert_eq(r, 4);
				memcpy(v, m[0].data, 4);
				cr_assert_eq(takt_release(c), 0);
				r = 1;
			} else {
				r = takt_try_recv_batch(c, m, 3, v, sizeof v);
				cr_assert_gt(r, 0);
				for (int j = 0; j < r; j++)
					memcpy(&v[j], m[j].data, 4);
			}
			cr_assert_gt(r, 0);
			for (int j = 0; j < r; j++)
				if (m[j].lane == 1) {
					cr_assert_eq(v[j], 42 + (uint32_t)mode);
					got = true;
				}
		}
		cr_assert(got, "mode %d: the quiet lane starved", mode);
		while (takt_try_send(busy, 1, &sent, 4) == 0)
			sent++;
	}
	takt_consumer_close(c);
	takt_producer_close(busy);
	takt_producer_close(quiet);
}

/* The SPSC API on several lanes: batch, reserve/commit, peek/release,
 * -EMSGSIZE leaves the record queued, stats per lane. */
Test(mpsc, whole_api_on_lanes)
{
	const char *n = tr_name("api");
	tr_create(n, 4096, 3, 512);
	takt_producer *p[3];
	for (unsigned k = 0; k < 3; k++)
		cr_assert_eq(takt_producer_open(n, &p[k]), 0);
	uint32_t vals[4] = {1, 2, 3, 4};
	struct takt_msg in[4];
	for (int i = 0; i < 4; i++)
		in[i] = (struct takt_msg){.data = &vals[i], .len = 4, .type = 1};
	cr_assert_eq(takt_try_send_batch(p[0], in, 4), 4);
	void *dst;
	cr_assert_eq(takt_reserve(p[1], 100, &dst), 0);
	memset(dst, 0xab, 100);
	cr_assert_eq(takt_commit(p[1], 2, 60), 0);
	cr_assert_eq(takt_try_send(p[2], 3, "hello, lane two", 16), 0);
	cr_assert_eq(takt_try_send(p[2], TAKT_TYPE_RESERVED, "x", 1), -EINVAL);
	cr_assert_eq(takt_try_send(p[2], 3, dst, 513), -EMSGSIZE);

	takt_consumer *c;
	cr_assert_eq(takt_consumer_open(n, &c), 0);
	cr_assert_eq(takt_consumer_set_lane_burst(c, 1), 0);
	uint8_t buf[1024];
	struct takt_msg m;
	/* lane 0 first: 4 bytes */
	cr_assert_eq(takt_try_recv(c, buf, 2, &m), -EMSGSIZE);
	cr_assert_eq(m.len, 4u);
	cr_assert_eq(m.lane, 0u);
	cr_assert_eq(takt_try_recv(c, buf, sizeof buf, &m), 4);
	cr_assert_eq(*(uint32_t *)buf, 1u);
	/* lane 1: the committed record, as peeked */
	cr_assert_eq(takt_peek(c, &m), 60);
	cr_assert_eq(m.lane, 1u);
	cr_assert_eq(m.type, 2u);
	cr_assert_eq(((const uint8_t *)m.data)[59], 0xab);
	cr_assert_eq(takt_peek(c, &m), 60, "peek again: the same record");
	cr_assert_eq(m.lane, 1u);
	cr_assert_eq(takt_release(c), 0);
	cr_assert_eq(takt_release(c), -EALREADY);
	/* batch: lane 2, then lane 0's rest */
	struct takt_msg out[8];
	int r = takt_try_recv_batch(c, out, 8, buf, sizeof buf);
	cr_assert_eq(r, 4);
	cr_assert_eq(out[0].lane, 2u);
	cr_assert_str_eq(out[0].data, "hello, lane two");
	for (int i = 1; i < 4; i++) {
		cr_assert_eq(out[i].lane, 0u);
		cr_assert_eq(*(const uint32_t *)out[i].data, (uint32_t)i + 1);
	}
	cr_assert_eq(takt_try_recv_batch(c, out, 8, buf, sizeof buf), -EAGAIN);
	struct takt_lane_stats st;
	takt_channel *ch = takt_consumer_channel(c);
	for (unsigned k = 0; k < 3; k++) {
		cr_assert_eq(takt_lane_stats_get(ch, k, &st), 0);
		cr_assert_eq(st.head, st.tail, "lane %u drained", k);
		cr_assert_eq(st.records_sent, st.records_received);
		cr_assert_eq(st.producer_alive, 1u);
		cr_assert_eq(st.producer_pid, getpid());
		cr_assert_eq(st.broken, 0u);
	}
	cr_assert_eq(takt_lane_stats_get(ch, 3, &st), -EINVAL);
	takt_consumer_close(c);
	for (unsigned k = 0; k < 3; k++)
		takt_producer_close(p[k]);
}

/* Blocking waits on MPSC: a consumer parked in takt_recv is woken by a
 * producer on any lane; a producer parked on its full lane is woken by
 * the consumer; with no consumer at all a blocking send times out. */
Test(mpsc, blocking_waits)
{
	const char *n = tr_name("block");
	tr_create(n, 1024, 4, 64);
	takt_consumer *c;
	cr_assert_eq(takt_consumer_open(n, &c), 0);
	takt_consumer_set_spin_ns(c, 0);
	takt_producer *hold[3];
	for (int k = 0; k < 3; k++)
		cr_assert_eq(takt_producer_open(n, &hold[k]), 0); /* lanes 0..2 */
	int go[2];
	cr_assert_eq(pipe(go), 0);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		tr_child_setup();
		char b;
		takt_producer *p;
		if (takt_producer_open(n, &p) != 0 || takt_producer_lane(p) != 3)
			_exit(2);
		takt_producer_set_spin_ns(p, 0);
		if (read(go[0], &b, 1) != 1) /* the consumer is about to park */
			_exit(3);
		uint32_t v = 77;
		if (takt_send(p, 1, &v, 4, takt_deadline_in(10ull * 1000000000)) != 0)
			_exit(4);
		/* now fill the lane and block on it until the consumer drains */
		uint32_t i = 0;
		while (takt_try_send(p, 1, &i, 4) == 0)
			i++;
		if (takt_send(p, 1, &i, 4, takt_deadline_in(10ull * 1000000000)) != 0)
			_exit(5);
		i = UINT32_MAX; /* the end */
		if (takt_send(p, 1, &i, 4, takt_deadline_in(10ull * 1000000000)) != 0)
			_exit(6);
		takt_producer_close(p);
		_exit(0);
	}
	uint32_t v;
	struct takt_msg m;
	cr_assert_eq(write(go[1], "x", 1), 1);
	int rc = takt_recv(c, &v, 4, &m, takt_deadline_in(10ull * 1000000000));
	cr_assert_eq(rc, 4, "takt_recv = %d (%s)", rc, takt_strerror(rc));
	cr_assert_eq(v, 77u);
	cr_assert_eq(m.lane, 3u);
	/* drain the filled lane as it comes, until the blocked send got through */
	uint32_t want = 0;
	for (;;) {
		rc = takt_recv(c, &v, 4, &m, takt_deadline_in(10ull * 1000000000));
		cr_assert_eq(rc, 4, "takt_recv = %d (%s)", rc, takt_strerror(rc));
		if (v == UINT32_MAX)
			break;
		cr_assert_eq(v, want, "FIFO");
		want++;
	}
	cr_assert_gt(want, 10u, "the lane was filled");
	int st = tr_wait_timeout(pid, 10);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child: %s", tr_status(st));
	/* a blocking receive with nothing coming ends at its deadline */
	uint64_t t0 = takt_now_ns();
	cr_assert_eq(takt_recv(c, &v, 4, &m, takt_deadline_in(30 * 1000000)), -ETIMEDOUT);
	cr_assert_geq(takt_now_ns() - t0, 30u * 1000000);
	takt_consumer_close(c);
	/* no consumer: a blocking send on a full lane times out */
	while (takt_try_send(hold[0], 1, &v, 4) == 0)
		;
	cr_assert_eq(takt_send(hold[0], 1, &v, 4, takt_deadline_in(30 * 1000000)), -ETIMEDOUT);
	cr_assert_eq(takt_try_send(hold[0], 1, &v, 4), -EAGAIN);
	for (int k = 0; k < 3; k++)
		takt_producer_close(hold[k]);
}

/* Either side may start first; missing is -ENOENT, not ready is -EAGAIN. */
Test(mpsc, start_order)
{
	const char *n = tr_name("order");
	takt_producer *p;
	takt_consumer *c;
	takt_channel *ch;
	cr_assert_eq(takt_producer_open(n, &p), -ENOENT);
	cr_assert_eq(takt_consumer_open(n, &c), -ENOENT);
	cr_assert_eq(takt_channel_open(n, 0, &ch), -ENOENT);

	/* a creation in progress: the file exists, size 0, then zero bytes */
	char obj[TAKT_NAME_MAX + 16];
	snprintf(obj, sizeof obj, "/takt.%s", n);
	int fd = shm_open(obj, O_RDWR | O_CREAT | O_EXCL, 0600);
	cr_assert_geq(fd, 0);
	cr_assert_eq(takt_producer_open(n, &p), -EAGAIN);
	cr_assert_eq(takt_consumer_open(n, &c), -EAGAIN);
	cr_assert_eq(ftruncate(fd, 8192), 0);
	cr_assert_eq(takt_consumer_open(n, &c), -EAGAIN, "ready unset: not ready");
	close(fd);
	shm_unlink(obj);

	/* producer first: it sends before any consumer exists */
	tr_create(n, 4096, 2, 64);
	cr_assert_eq(takt_producer_open(n, &p), 0);
	for (uint32_t i = 0; i < 10; i++)
		send_u32(p, i);
	cr_assert_eq(takt_consumer_open(n, &c), 0);
	uint32_t v;
	for (uint32_t i = 0; i < 5; i++) {
		cr_assert_eq(recv_u32(c, &v, NULL), 4);
		cr_assert_eq(v, i);
	}
	/* the consumer restarts alone */
	takt_consumer_close(c);
	for (uint32_t i = 10; i < 15; i++)
		send_u32(p, i);
	cr_assert_eq(takt_consumer_open(n, &c), 0);
	for (uint32_t i = 5; i < 12; i++) {
		cr_assert_eq(recv_u32(c, &v, NULL), 4);
		cr_assert_eq(v, i);
	}
	/* the producer restarts alone: same lane, continues at its tail */
	unsigned lane = takt_producer_lane(p);
	takt_producer_close(p);
	cr_assert_eq(takt_producer_open(n, &p), 0);
	cr_assert_eq(takt_producer_lane(p), lane);
	for (uint32_t i = 15; i < 20; i++)
		send_u32(p, i);
	for (uint32_t i = 12; i < 20; i++) {
		cr_assert_eq(recv_u32(c, &v, NULL), 4);
		cr_assert_eq(v, i);
	}
	cr_assert_eq(recv_u32(c, &v, NULL), -EAGAIN);
	takt_consumer_close(c);
	takt_producer_close(p);

	/* consumer first: it waits, a producer appears later */
	cr_assert_eq(takt_consumer_open(n, &c), 0);
	cr_assert_eq(recv_u32(c, &v, NULL), -EAGAIN);
	cr_assert_eq(takt_producer_open(n, &p), 0);
	send_u32(p, 99);
	cr_assert_eq(recv_u32(c, &v, NULL), 4);
	cr_assert_eq(v, 99u);
	takt_consumer_close(c);
	takt_producer_close(p);
}
