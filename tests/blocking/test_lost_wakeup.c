/* SPDX-License-Identifier: MIT */
/*
 * test_lost_wakeup.c - the doorbell under stress, across processes.
 *
 * A consumer process and one (SPSC) or three (MPSC) producer processes run
 * the blocking calls with a spin budget of 0, so every wait arms the
 * doorbell and parks on the semaphore.  Random burst sizes, batch and single
 * calls, and random busy pauses on both sides make both of them wait often:
 * the consumer on an empty ring, the producers on a full one.  Every wait
 * has a 10 s deadline; a wake-up that is not lost arrives within
 * microseconds, so a wait that reaches its deadline is reported as a lost
 * wake-up (and the test says whether the awaited record or space was there).
 *
 * Parks: each process counts the waits it entered (a try_* call said
 * -EAGAIN, so the blocking call armed the doorbell and re-checked) and,
 * from getrusage(), its voluntary context switches: the number of times it
 * really slept in the kernel, which in these processes only a futex wait on
 * the semaphore does; that is the park count.  The run goes on until the
 * record minimum is met and both counts reach the park minimum (TB_RECORDS, TB_PARKS; defaults 1e6 and 1e5 in the plain
 * build), and fails if a cap of 20 times the records passes first.
 *
 * Meanwhile the test process samples sem_getvalue() of /takt.<name>.rx and
 * of every /takt.<name>.tx<k>: the protocol bounds them by the number of
 * wakers + 1 (docs/WAITING.md), here 2 for SPSC and 4 for the MPSC receive
 * doorbell.
 *
 * Every record carries (lane, sequence) in its payload: the consumer checks
 * no loss, no duplicate, FIFO per producer and the bytes.
 */
#include "tb_common.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <semaphore.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

TB_SUITE(stress, .timeout = 1200);

#define MAX_LANES 4
#define DEADLINE_NS 10000000000ull
#define TYPE_DATA 1u
#define TYPE_END 2u

struct stress {
	struct tb_report rep;
	const char *name;
	unsigned lanes;
	uint32_t max_record;
	uint64_t seed;
	uint64_t min_records, min_parks, max_records;
	_Atomic int stop;             /* consumer -> producers: send END and exit */
	_Atomic uint64_t received;
	_Atomic uint64_t waits_rx;    /* consumer waits entered */
	_Atomic uint64_t waits_tx;    /* producer waits entered (all lanes) */
	_Atomic uint64_t sleeps_rx;   /* voluntary context switches, consumer */
	_Atomic uint64_t sleeps_tx[MAX_LANES]; /* ... each producer */
	_Atomic uint64_t sent[MAX_LANES];
};

static uint64_t waits(struct stress *s)
{
	return atomic_load(&s->waits_rx) + atomic_load(&s->waits_tx);
}

static uint64_t sleeps(struct stress *s)
{
	uint64_t n = atomic_load(&s->sleeps_rx);
	for (unsigned k = 0; k < MAX_LANES; k++)
		n += atomic_load(&s->sleeps_tx[k]);
	return n;
}

static uint64_t vol_switches(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (uint64_t)ru.ru_nvcsw;
}

/* Busy pauses of random length: mostly none, sometimes long enough for the
 * other side to run dry and park. */
static void random_pause(uint64_t *rng)
{
	uint64_t r = tb_rand(rng);
	switch (r & 15) {
	case 10: case 11: case 12:
		tb_pause((r >> 8) % 256);
		break;
	case 13: case 14:
		tb_pause((r >> 8) % 4096);
		break;
	case 15:
		tb_pause((r >> 8) % 32768);
		break;
	default:
		break;
	}
}

/* ---- producer ------------------------------------------------------------ */

static uint64_t sw0_tx;

static int send_one(struct stress *s, takt_producer *p, uint32_t type, const void *buf, size_t len)
{
	int rc = takt_try_send(p, type, buf, len);
	if (rc != -EAGAIN)
		return rc;
	atomic_fetch_add_explicit(&s->waits_tx, 1, memory_order_relaxed);
	uint64_t d = takt_deadline_in(DEADLINE_NS);
	rc = takt_send(p, type, buf, len, d);
	/* after the wait, not on the hot path: one getrusage() */
	atomic_store_explicit(&s->sleeps_tx[takt_producer_lane(p)], vol_switches() - sw0_tx,
			      memory_order_relaxed);
	if (rc == 0 && takt_now_ns() >= d) {
		/* the space was there at the deadline's re-check: nobody woke us */
		tb_fail(&s->rep, "lost wake-up: producer of lane %u was not woken, its send "
			"succeeded only at its 10 s deadline", takt_producer_lane(p));
		return -ETIMEDOUT;
	}
	if (rc == -ETIMEDOUT) {
		struct takt_lane_stats st;
		takt_lane_stats_get(takt_producer_channel(p), takt_producer_lane(p), &st);
		tb_fail(&s->rep,
			"lost wake-up: producer of lane %u waited 10 s for room for %zu bytes; "
			"head %" PRIu64 " tail %" PRIu64 " (%" PRIu64 " bytes queued)",
			takt_producer_lane(p), len, st.head, st.tail, st.tail - st.head);
	}
	return rc;
}

static int producer_main(void *v)
{
	struct stress *s = v;
	takt_producer *p;
	int rc = takt_producer_open(s->name, &p);
	if (rc < 0) {
		tb_fail(&s->rep, "producer_open: %s", takt_strerror(rc));
		return 2;
	}
	takt_producer_set_spin_ns(p, 0);
	unsigned lane = takt_producer_lane(p);
	uint64_t rng = s->seed ^ (0x1000u + lane);
	uint64_t seq = 0;
	sw0_tx = vol_switches();
	static uint8_t bufs[8][512];
	while (!atomic_load_explicit(&s->stop, memory_order_relaxed)) {
		uint64_t r = tb_rand(&rng);
		unsigned burst = 1 + (unsigned)((r >> 8) % ((r & 3) == 0 ? 64 : 8));
		if ((r & 0x30) == 0) {
			/* a batch of up to 8; what does not fit goes one by one */
			unsigned n = burst > 8 ? 8 : burst;
			struct takt_msg m[8];
			for (unsigned i = 0; i < n; i++) {
				size_t len = (size_t)(tb_rand(&rng) % (s->max_record + 1u));
				tb_fill(bufs[i], len, lane, seq + i);
				m[i] = (struct takt_msg){.data = bufs[i], .len = (uint32_t)len, .type = TYPE_DATA};
			}
			rc = takt_try_send_batch(p, m, n);
			unsigned done = rc > 0 ? (unsigned)rc : 0;
			if (rc < 0 && rc != -EAGAIN) {
				tb_fail(&s->rep, "try_send_batch: %s", takt_strerror(rc));
				return 3;
			}
			for (unsigned i = done; i < n; i++) {
				rc = send_one(s, p, TYPE_DATA, bufs[i], m[i].len);
				if (rc < 0)
					goto fail;
			}
			seq += n;
		} else {
			for (unsigned i = 0; i < burst; i++) {
				size_t len = (size_t)(tb_rand(&rng) % (s->max_record + 1u));
				tb_fill(bufs[0], len, lane, seq);
				rc = send_one(s, p, TYPE_DATA, bufs[0], len);
				if (rc < 0)
					goto fail;
				seq++;
			}
		}
		atomic_store_explicit(&s->sent[lane], seq, memory_order_relaxed);
		random_pause(&rng);
	}
	rc = send_one(s, p, TYPE_END, &seq, sizeof seq);
	if (rc < 0)
		goto fail;
	atomic_store(&s->sleeps_tx[lane], vol_switches() - sw0_tx);
	takt_producer_close(p);
	return 0;
fail:
	tb_fail(&s->rep, "producer lane %u, record %" PRIu64 ": send = %d (%s)", lane, seq, rc,
		takt_strerror(rc));
	return 4;
}

/* ---- consumer ------------------------------------------------------------ */

static int consumer_main(void *v)
{
	struct stress *s = v;
	takt_consumer *c;
	int rc = takt_consumer_open(s->name, &c);
	if (rc < 0) {
		tb_fail(&s->rep, "consumer_open: %s", takt_strerror(rc));
		return 2;
	}
	takt_consumer_set_spin_ns(c, 0);
	uint64_t rng = s->seed ^ 0x2000u;
	uint64_t expect[MAX_LANES] = {0};
	unsigned ended = 0;
	uint64_t received = 0;
	uint64_t sw0 = vol_switches();
	static uint8_t buf[16 * 520];
	struct takt_msg msgs[16];
	while (ended < s->lanes) {
		uint64_t r = tb_rand(&rng);
		unsigned burst = 1 + (unsigned)((r >> 8) % ((r & 3) == 0 ? 64 : 8));
		for (unsigned b = 0; b < burst && ended < s->lanes; b++) {
			bool batch = ((r >> 4) & 3) == 0;
			unsigned n = batch ? 1 + (unsigned)((r >> 20) % 16) : 1;
			rc = batch ? takt_try_recv_batch(c, msgs, n, buf, sizeof buf)
				   : takt_try_recv(c, buf, sizeof buf, &msgs[0]);
			if (rc == -EAGAIN) {
				atomic_fetch_add_explicit(&s->waits_rx, 1, memory_order_relaxed);
				uint64_t d = takt_deadline_in(DEADLINE_NS);
				rc = batch ? takt_recv_batch(c, msgs, n, buf, sizeof buf, d)
					   : takt_recv(c, buf, sizeof buf, &msgs[0], d);
				atomic_store_explicit(&s->sleeps_rx, vol_switches() - sw0,
						      memory_order_relaxed);
				if (rc >= 0 && takt_now_ns() >= d) {
					tb_fail(&s->rep, "lost wake-up: the consumer was not woken, its "
						"receive got a record only at its 10 s deadline");
					return 5;
				}
				if (rc == -ETIMEDOUT) {
					struct takt_msg m;
					int q = takt_try_recv(c, buf, sizeof buf, &m);
					tb_fail(&s->rep,
						"%s: receive waited 10 s; a try_recv right after %s",
						q >= 0 ? "lost wake-up" : "stalled",
						q >= 0 ? "found a record queued"
						       : "found none (a producer is stuck?)");
					return 5;
				}
			}
			if (rc < 0) {
				tb_fail(&s->rep, "receive = %d (%s)", rc, takt_strerror(rc));
				return 6;
			}
			unsigned got = batch ? (unsigned)rc : 1;
			for (unsigned i = 0; i < got; i++) {
				struct takt_msg *m = &msgs[i];
				if (!batch)
					m->len = (uint32_t)rc;
				unsigned k = m->lane;
				if (k >= s->lanes) {
					tb_fail(&s->rep, "record from lane %u", k);
					return 7;
				}
				if (m->type == TYPE_END) {
					uint64_t total;
					memcpy(&total, m->data, sizeof total);
					if (m->len != sizeof total || total != expect[k]) {
						tb_fail(&s->rep,
							"lane %u ended after %" PRIu64 " records, we got %" PRIu64,
							k, total, expect[k]);
						return 8;
					}
					ended++;
					continue;
				}
				if (m->len > s->max_record ||
				    !tb_check(m->data, m->len, k, expect[k])) {
					tb_fail(&s->rep,
						"lane %u record %" PRIu64 " (len %u) is not the one expected: "
						"lost, duplicated, reordered or torn",
						k, expect[k], m->len);
					return 9;
				}
				expect[k]++;
				received++;
			}
		}
		atomic_store_explicit(&s->received, received, memory_order_relaxed);
		if (!atomic_load_explicit(&s->stop, memory_order_relaxed) &&
		    ((received >= s->min_records && waits(s) >= s->min_parks &&
		      sleeps(s) >= s->min_parks) ||
		     received >= s->max_records))
			atomic_store(&s->stop, 1);
		random_pause(&rng);
	}
	atomic_store(&s->sleeps_rx, vol_switches() - sw0);
	takt_consumer_close(c);
	return 0;
}

/* ---- the test process ---------------------------------------------------- */

static bool child_running(pid_t pid)
{
	siginfo_t info;
	memset(&info, 0, sizeof info);
	if (waitid(P_PID, (id_t)pid, &info, WEXITED | WNOHANG | WNOWAIT) != 0)
		return false;
	return info.si_pid == 0;
}

static void run_stress(unsigned lanes, uint64_t min_records, uint64_t min_parks)
{
	struct stress *s = tb_shared(sizeof *s);
	const char *name = tb_name(lanes == 1 ? "spsc" : "mpsc");
	const uint64_t capacity = 4096;
	s->name = name;
	s->lanes = lanes;
	s->max_record = 200;
	s->seed = tb_seed();
	s->min_records = min_records;
	s->min_parks = min_parks;
	s->max_records = 20 * min_records;
	tb_create(name, capacity, lanes, s->max_record);

	/* the semaphores, opened before the children start */
	sem_t *sems[MAX_LANES + 1];
	char sem_name[TAKT_NAME_MAX + 32];
	snprintf(sem_name, sizeof sem_name, "/takt.%s.rx", name);
	sems[0] = sem_open(sem_name, 0);
	cr_assert_neq(sems[0], SEM_FAILED, "sem_open %s: %s", sem_name, strerror(errno));
	for (unsigned k = 0; k < lanes; k++) {
		snprintf(sem_name, sizeof sem_name, "/takt.%s.tx%u", name, k);
		sems[1 + k] = sem_open(sem_name, 0);
		cr_assert_neq(sems[1 + k], SEM_FAILED, "sem_open %s: %s", sem_name, strerror(errno));
	}

	double t0 = (double)takt_now_ns() / 1e9;
	pid_t pids[MAX_LANES + 1];
	pids[0] = tb_fork(consumer_main, s);
	for (unsigned k = 0; k < lanes; k++)
		pids[1 + k] = tb_fork(producer_main, s);

	/* Sample the semaphore values while the children run (a sampling
	 * period, not a synchronisation: any interleaving is fine). */
	int maxv[MAX_LANES + 1] = {0};
	uint64_t samples = 0;
	for (;;) {
		bool running = false;
		for (unsigned i = 0; i <= lanes; i++)
			running |= child_running(pids[i]);
		if (!running)
			break;
		for (unsigned i = 0; i <= lanes; i++) {
			int v = 0;
			cr_assert_eq(sem_getvalue(sems[i], &v), 0);
			if (v > maxv[i])
				maxv[i] = v;
		}
		samples++;
		struct timespec ts = {0, 20000};
		nanosleep(&ts, NULL);
	}
	double secs = (double)takt_now_ns() / 1e9 - t0;

	bool ok = true;
	for (unsigned i = 0; i <= lanes; i++) {
		int st = tb_wait(pids[i]);
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			cr_log_error("%s %u: %s", i ? "producer" : "consumer", i, tb_status_str(st));
			ok = false;
		}
	}
	for (unsigned i = 0; i <= lanes; i++)
		sem_close(sems[i]);

	uint64_t received = atomic_load(&s->received);
	cr_log_info("%s: %" PRIu64 " records in %.2f s; waits: consumer %" PRIu64 ", producers %" PRIu64
		    "; sleeps (voluntary switches): consumer %" PRIu64 ", producers %" PRIu64
		    "; max semaphore value rx %d tx0 %d (%" PRIu64 " samples)",
		    name, received, secs, atomic_load(&s->waits_rx), atomic_load(&s->waits_tx),
		    atomic_load(&s->sleeps_rx), sleeps(s) - atomic_load(&s->sleeps_rx), maxv[0], maxv[1],
		    samples);
	cr_assert(!s->rep.set, "%s", s->rep.msg);
	cr_assert(ok, "a child failed (see above)");
	cr_expect_geq(received, min_records);
	cr_expect_geq(waits(s), min_parks, "only %" PRIu64 " waits in %" PRIu64 " records", waits(s),
		      received);
	/* Parks: real sleeps in the kernel, not only armed doorbells. */
	cr_expect_geq(sleeps(s), min_parks, "only %" PRIu64 " sleeps (parks) for %" PRIu64 " waits",
		      sleeps(s), waits(s));
	/* One waker per bell in SPSC (so at most 2 tokens: docs/WAITING.md);
	 * the MPSC receive bell has `lanes` wakers. */
	cr_expect_leq(maxv[0], (int)lanes + 1, "rx semaphore reached %d", maxv[0]);
	for (unsigned k = 0; k < lanes; k++)
		cr_expect_leq(maxv[1 + k], 2, "tx%u semaphore reached %d", k, maxv[1 + k]);
}

static uint64_t scaled(const char *var, const char *dflt_var, uint64_t dflt)
{
	uint64_t v = tb_env_u64(var, tb_env_u64(dflt_var, dflt));
	if (tb_env_u64("TAKT_LONG", 0) == 1)
		v *= 10;
	return v;
}

Test(stress, spsc_no_lost_wakeup)
{
	run_stress(1, scaled("TB_RECORDS", "TB_RECORDS_DEFAULT", 1000000),
		   scaled("TB_PARKS", "TB_PARKS_DEFAULT", 100000));
}

Test(stress, mpsc_no_lost_wakeup)
{
	run_stress(3, scaled("TB_RECORDS", "TB_RECORDS_DEFAULT", 1000000) / 4,
		   scaled("TB_PARKS", "TB_PARKS_DEFAULT", 100000) / 4);
}
