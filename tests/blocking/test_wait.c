/* SPDX-License-Identifier: MIT */
/*
 * test_wait.c - the semantics of the blocking calls (takt_send, takt_recv,
 * takt_recv_batch):
 *
 *  - TAKT_NO_WAIT tries once (-EAGAIN); a deadline in the past, or one that
 *    passes with nothing arriving, gives -ETIMEDOUT and never before the
 *    deadline, whatever the spin budget;
 *  - signals (SIGALRM from an interval timer, handler installed without
 *    SA_RESTART) during the wait neither end nor shorten it, with a deadline
 *    or TAKT_FOREVER;
 *  - a consumer parked in another process is woken by every way of
 *    publishing (try_send, batch, reserve/commit, takt_send), on any lane of
 *    an MPSC channel; a producer parked on a full ring is woken by every way
 *    of freeing space (try_recv, batch, peek/release, takt_recv);
 *  - each of those calls, through its fast and its general path, posts to
 *    a bell armed by hand (a skipped post would only cost a waiter time);
 *  - a lost post (a waker that dies after taking the armed bit) costs the
 *    waiter one deadline, after which it still gets the record;
 *  - a channel whose semaphores are missing cannot be opened (-ENOENT) and
 *    the failed open leaves no endpoint slot held.
 *
 * "Parked" is established, not assumed: the test waits until the waiter's
 * doorbell word is armed and /proc/<pid>/syscall shows it inside futex().
 */
#include "tb_common.h"

#include <errno.h>
#include <inttypes.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

TB_SUITE(wait, .timeout = 60);

#define MS 1000000ull
#define LONG_WAIT (10000 * MS) /* a wake-up that is not lost arrives well before */

/* ---- helpers ----------------------------------------------------------- */

/* Records of 48 payload bytes take 64 bytes of a lane: 15 fill a 1 KiB lane
 * (the 16th would overrun the headroom) and freeing one makes room for one
 * -- at once for a blocking send, which takes the consumer's position; for
 * takt_try_send once the consumer releases its head (lane.h). */
#define REC_LEN 48u
#define REC_FILL 15u

static void open_pair(const char *name, takt_producer **p, takt_consumer **c)
{
	int rc = takt_producer_open(name, p);
	cr_assert_eq(rc, 0, "producer_open: %s", takt_strerror(rc));
	rc = takt_consumer_open(name, c);
	cr_assert_eq(rc, 0, "consumer_open: %s", takt_strerror(rc));
}

static unsigned fill(takt_producer *p)
{
	uint8_t rec[REC_LEN];
	unsigned n = 0;
	for (;;) {
		tb_fill(rec, sizeof rec, 0, n);
		int rc = takt_try_send(p, 1, rec, sizeof rec);
		if (rc == -EAGAIN)
			break;
		cr_assert_eq(rc, 0, "try_send: %s", takt_strerror(rc));
		n++;
	}
	return n;
}

static void assert_not_early(uint64_t deadline, const char *what)
{
	uint64_t now = takt_now_ns();
	cr_assert_geq(now, deadline, "%s returned -ETIMEDOUT %.3f ms before its deadline", what,
		      (double)(deadline - now) / 1e6);
}

/* ---- try once, past deadlines, timeouts --------------------------------- */

Test(wait, no_wait_tries_once)
{
	const char *name = tb_name("nowait");
	tb_create(name, 1024, 1, 256);
	takt_producer *p;
	takt_consumer *c;
	open_pair(name, &p, &c);
	uint8_t buf[256];
	struct takt_msg msgs[4];
	cr_expect_eq(takt_recv(c, buf, sizeof buf, NULL, TAKT_NO_WAIT), -EAGAIN);
	cr_expect_eq(takt_recv_batch(c, msgs, 4, buf, sizeof buf, TAKT_NO_WAIT), -EAGAIN);
	cr_assert_eq(fill(p), REC_FILL);
	cr_expect_eq(takt_send(p, 1, buf, REC_LEN, TAKT_NO_WAIT), -EAGAIN);
	/* ready: the blocking calls return at once */
	cr_expect_eq(takt_recv(c, buf, sizeof buf, NULL, TAKT_FOREVER), (int)REC_LEN);
	cr_expect_eq(takt_send(p, 1, buf, REC_LEN, TAKT_FOREVER), 0);
	cr_expect_eq(takt_recv_batch(c, msgs, 4, buf, sizeof buf, TAKT_FOREVER), 4);
	/* errors are not waited on */
	cr_expect_eq(takt_send(p, 1, buf, 257, TAKT_FOREVER), -EMSGSIZE);
	cr_expect_eq(takt_send(p, TAKT_TYPE_RESERVED, buf, 8, TAKT_FOREVER), -EINVAL);
	cr_expect_eq(takt_recv(c, buf, 8, NULL, TAKT_FOREVER), -EMSGSIZE);
	cr_expect_eq(takt_recv_batch(c, msgs, 0, buf, sizeof buf, TAKT_FOREVER), -EINVAL);
	takt_consumer_close(c);
	takt_producer_close(p);
}

Test(wait, past_deadline_times_out)
{
	const char *name = tb_name("past");
	tb_create(name, 1024, 1, 256);
	takt_producer *p;
	takt_consumer *c;
	open_pair(name, &p, &c);
	uint8_t buf[256];
	struct takt_msg msgs[4];
	uint64_t past = takt_now_ns() - 1;
	cr_expect_eq(takt_recv(c, buf, sizeof buf, NULL, 1), -ETIMEDOUT);
	cr_expect_eq(takt_recv(c, buf, sizeof buf, NULL, past), -ETIMEDOUT);
	cr_expect_eq(takt_recv_batch(c, msgs, 4, buf, sizeof buf, past), -ETIMEDOUT);
	fill(p);
	cr_expect_eq(takt_send(p, 1, buf, REC_LEN, past), -ETIMEDOUT);
	takt_consumer_close(c);
	takt_producer_close(p);
}

Test(wait, deadline_in_saturates)
{
	cr_expect_eq(takt_deadline_in(TAKT_FOREVER), TAKT_FOREVER);
	cr_expect_eq(takt_deadline_in(TAKT_FOREVER - 1), TAKT_FOREVER);
	uint64_t before = takt_now_ns();
	uint64_t d = takt_deadline_in(5 * MS);
	uint64_t after = takt_now_ns();
	cr_expect(d >= before + 5 * MS && d <= after + 5 * MS);
}

/* A wait with nothing arriving ends with -ETIMEDOUT at (not before) its
 * deadline, for a spin budget of 0 (park at once), the default, and one
 * longer than the wait itself (spinning stops at the deadline). */
Test(wait, timeout_not_before_deadline)
{
	const char *name = tb_name("timeout");
	tb_create(name, 1024, 1, 256);
	takt_producer *p;
	takt_consumer *c;
	open_pair(name, &p, &c);
	uint8_t buf[256];
	struct takt_msg msgs[4];
	const uint32_t spins[] = {0, 20000, 100 * MS};
	for (unsigned i = 0; i < 3; i++) {
		takt_consumer_set_spin_ns(c, spins[i]);
		uint64_t d = takt_deadline_in(20 * MS);
		cr_expect_eq(takt_recv(c, buf, sizeof buf, NULL, d), -ETIMEDOUT);
		assert_not_early(d, "takt_recv");
		d = takt_deadline_in(20 * MS);
		cr_expect_eq(takt_recv_batch(c, msgs, 4, buf, sizeof buf, d), -ETIMEDOUT);
		assert_not_early(d, "takt_recv_batch");
	}
	unsigned n = fill(p);
	for (unsigned i = 0; i < 3; i++) {
		takt_producer_set_spin_ns(p, spins[i]);
		uint64_t d = takt_deadline_in(20 * MS);
		cr_expect_eq(takt_send(p, 1, buf, REC_LEN, d), -ETIMEDOUT);
		assert_not_early(d, "takt_send");
	}
	/* nothing was lost or added by the timed-out sends */
	unsigned got = 0;
	while (takt_try_recv(c, buf, sizeof buf, NULL) == (int)REC_LEN) {
		cr_expect(tb_check(buf, REC_LEN, 0, got), "record %u differs", got);
		got++;
	}
	cr_expect_eq(got, n);
	takt_consumer_close(c);
	takt_producer_close(p);
}

/* ---- signals ------------------------------------------------------------ */

static volatile sig_atomic_t alarms;

static void on_alarm(int sig)
{
	(void)sig;
	alarms = alarms + 1;
}

/* SIGALRM every `period` us, handler without SA_RESTART: each one makes the
 * futex wait return EINTR. */
static void start_alarms(unsigned period_us)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_alarm;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0; /* no SA_RESTART */
	cr_assert_eq(sigaction(SIGALRM, &sa, NULL), 0);
	struct itimerval it = {{0, period_us}, {0, period_us}};
	cr_assert_eq(setitimer(ITIMER_REAL, &it, NULL), 0);
}

static void stop_alarms(void)
{
	struct itimerval it = {{0, 0}, {0, 0}};
	setitimer(ITIMER_REAL, &it, NULL);
	signal(SIGALRM, SIG_IGN);
}

Test(wait, signals_do_not_shorten_the_wait)
{
	const char *name = tb_name("eintr");
	tb_create(name, 1024, 1, 256);
	takt_producer *p;
	takt_consumer *c;
	open_pair(name, &p, &c);
	uint8_t buf[256];
	struct takt_msg msgs[4];
	takt_consumer_set_spin_ns(c, 0);
	takt_producer_set_spin_ns(p, 0);
	/* Every alarm interrupts the futex wait (EINTR).  Under TSan the
	 * handler itself runs deferred, so the count can be as low as 1 there;
	 * in the other builds it is about 100 per wait. */
	start_alarms(1000);

	alarms = 0;
	uint64_t d = takt_deadline_in(100 * MS);
	int rc = takt_recv(c, buf, sizeof buf, NULL, d);
	int seen = alarms;
	cr_expect_eq(rc, -ETIMEDOUT, "takt_recv = %d (%s)", rc, takt_strerror(rc));
	assert_not_early(d, "takt_recv");
	cr_expect_geq(seen, 1, "no signal arrived during the wait");

	alarms = 0;
	d = takt_deadline_in(100 * MS);
	rc = takt_recv_batch(c, msgs, 4, buf, sizeof buf, d);
	seen = alarms;
	cr_expect_eq(rc, -ETIMEDOUT, "takt_recv_batch = %d (%s)", rc, takt_strerror(rc));
	assert_not_early(d, "takt_recv_batch");
	cr_expect_geq(seen, 1, "no signal arrived during the wait");

	fill(p);
	alarms = 0;
	d = takt_deadline_in(100 * MS);
	rc = takt_send(p, 1, buf, REC_LEN, d);
	seen = alarms;
	cr_expect_eq(rc, -ETIMEDOUT, "takt_send = %d (%s)", rc, takt_strerror(rc));
	assert_not_early(d, "takt_send");
	cr_expect_geq(seen, 1, "no signal arrived during the wait");

	stop_alarms();
	takt_consumer_close(c);
	takt_producer_close(p);
}

/* ---- wake-ups across processes ----------------------------------------- */

enum pub_mode { PUB_TRY_SEND, PUB_BATCH, PUB_COMMIT, PUB_SEND, PUB_MODES };
enum free_mode { FREE_TRY_RECV, FREE_BATCH, FREE_PEEK, FREE_RECV, FREE_MODES };
static const char *const pub_names[] = {"try_send", "try_send_batch", "reserve/commit", "takt_send"};
static const char *const free_names[] = {"try_recv", "try_recv_batch", "peek/release", "takt_recv"};

struct waiter_arg {
	const char *name;
	int how;                 /* 0 takt_recv, 1 takt_recv_batch, 2 takt_recv FOREVER */
	bool signals;            /* install SIGALRM handler, no SA_RESTART */
	uint64_t deadline;       /* for the lost-post test */
	struct tb_report *rep;
	_Atomic int rc;
	_Atomic uint64_t returned_ns;
};

static int consumer_waiter(void *v)
{
	struct waiter_arg *a = v;
	if (a->signals) {
		struct sigaction sa;
		memset(&sa, 0, sizeof sa);
		sa.sa_handler = on_alarm;
		sigaction(SIGALRM, &sa, NULL);
	}
	takt_consumer *c;
	int rc = takt_consumer_open(a->name, &c);
	if (rc < 0) {
		tb_fail(a->rep, "child consumer_open: %s", takt_strerror(rc));
		return 2;
	}
	takt_consumer_set_spin_ns(c, 0);
	uint8_t buf[256];
	struct takt_msg msg, msgs[4];
	uint64_t d = a->deadline ? a->deadline : takt_deadline_in(LONG_WAIT);
	if (a->how == 1) {
		rc = takt_recv_batch(c, msgs, 4, buf, sizeof buf, d);
		msg = msgs[0];
		if (rc > 0)
			rc = (int)msg.len;
	} else {
		rc = takt_recv(c, buf, sizeof buf, &msg, a->how == 2 ? TAKT_FOREVER : d);
	}
	uint64_t now = takt_now_ns();
	atomic_store(&a->returned_ns, now);
	atomic_store(&a->rc, rc);
	int ret = 0;
	if (!a->deadline && now >= d) {
		/* the record is there at the deadline's re-check, but nobody
		 * woke us: a lost wake-up */
		tb_fail(a->rep, "child was not woken: its receive returned at its deadline");
		ret = 5;
	} else if (rc != (int)REC_LEN) {
		tb_fail(a->rep, "child receive = %d (%s)", rc, takt_strerror(rc));
		ret = 3;
	} else if (!tb_check(msg.data, msg.len, 7, msg.lane)) {
		tb_fail(a->rep, "child received a wrong payload");
		ret = 4;
	}
	takt_consumer_close(c);
	return ret;
}

/* Send one record of len bytes (<= 256) carrying (stream, seq), the way
 * `mode` says. */
static void publish_len(takt_producer *p, enum pub_mode mode, uint64_t stream, uint64_t seq,
			uint32_t len)
{
	uint8_t rec[256];
	cr_assert_leq(len, sizeof rec);
	tb_fill(rec, len, stream, seq);
	int rc;
	switch (mode) {
	case PUB_TRY_SEND:
		rc = takt_try_send(p, 1, rec, len);
		break;
	case PUB_BATCH: {
		struct takt_msg m = {.data = rec, .len = len, .type = 1};
		rc = takt_try_send_batch(p, &m, 1);
		rc = rc == 1 ? 0 : rc;
		break;
	}
	case PUB_COMMIT: {
		void *dst;
		rc = takt_reserve(p, len, &dst);
		if (rc == 0) {
			memcpy(dst, rec, len);
			rc = takt_commit(p, 1, len);
		}
		break;
	}
	default:
		rc = takt_send(p, 1, rec, len, takt_deadline_in(LONG_WAIT));
		break;
	}
	cr_assert_eq(rc, 0, "%s of %u bytes: %s", pub_names[mode], len, takt_strerror(rc));
}

static void publish(takt_producer *p, enum pub_mode mode, uint64_t stream, uint64_t seq)
{
	publish_len(p, mode, stream, seq, REC_LEN);
}

static void expect_child_ok(pid_t pid, struct tb_report *rep, const char *what)
{
	int st = tb_wait(pid);
	cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s: child %s: %s", what, tb_status_str(st),
		  rep->set ? rep->msg : "");
}

/* A consumer parked in another process is woken by each way of publishing,
 * from a producer with the fence-free doorbell (the default where
 * membarrier works) and from one attached through a TAKT_OPEN_FENCED
 * mapping. */
Test(wait, parked_consumer_woken_by_every_publish)
{
	struct tb_report *rep = tb_shared(sizeof *rep);
	struct waiter_arg *a = tb_shared(sizeof *a);
	for (int fenced = 0; fenced < 2; fenced++)
	for (int how = 0; how < 3; how++) {
		for (int mode = 0; mode < PUB_MODES; mode++) {
			const char *name = tb_name("wakec");
			tb_create(name, 1024, 1, 256);
			takt_producer *p;
			takt_channel *ch = NULL;
			int rc;
			if (fenced) {
				rc = takt_channel_open(name, TAKT_OPEN_FENCED, &ch);
				cr_assert_eq(rc, 0, "channel_open(FENCED): %s", takt_strerror(rc));
				rc = takt_producer_attach(ch, &p);
			} else {
				rc = takt_producer_open(name, &p);
			}
			cr_assert_eq(rc, 0);
			memset(a, 0, sizeof *a);
			a->name = name;
			a->how = how;
			a->rep = rep;
			pid_t pid = tb_fork(consumer_waiter, a);
			cr_assert(tb_wait_parked(tb_rx_bell(takt_producer_channel(p)), pid),
				  "the consumer ended before it parked");
			/* stream 7, seq = lane 0 */
			publish(p, (enum pub_mode)mode, 7, 0);
			char what[64];
			snprintf(what, sizeof what, "recv mode %d woken by %s%s", how, pub_names[mode],
				 fenced ? " (fenced)" : "");
			expect_child_ok(pid, rep, what);
			takt_producer_close(p);
			if (ch)
				cr_assert_eq(takt_channel_close(ch), 0);
			tb_remove(name);
		}
	}
}

/* MPSC: the consumer waits on all lanes at once; a record on the last lane
 * wakes it. */
Test(wait, parked_consumer_woken_by_any_lane)
{
	struct tb_report *rep = tb_shared(sizeof *rep);
	struct waiter_arg *a = tb_shared(sizeof *a);
	const char *name = tb_name("lanes");
	tb_create(name, 1024, 3, 256);
	takt_producer *p[3];
	for (int k = 0; k < 3; k++)
		cr_assert_eq(takt_producer_open(name, &p[k]), 0);
	cr_assert_eq(takt_producer_lane(p[2]), 2u);
	a->name = name;
	a->rep = rep;
	pid_t pid = tb_fork(consumer_waiter, a);
	cr_assert(tb_wait_parked(tb_rx_bell(takt_producer_channel(p[2])), pid));
	publish(p[2], PUB_TRY_SEND, 7, 2); /* the payload's seq is the lane */
	expect_child_ok(pid, rep, "woken by lane 2");
	for (int k = 0; k < 3; k++)
		takt_producer_close(p[k]);
}

/* Signals during a TAKT_FOREVER wait: the wait goes on, and ends with the
 * record when it comes. */
Test(wait, forever_survives_signals)
{
	struct tb_report *rep = tb_shared(sizeof *rep);
	struct waiter_arg *a = tb_shared(sizeof *a);
	const char *name = tb_name("forever");
	tb_create(name, 1024, 1, 256);
	takt_producer *p;
	cr_assert_eq(takt_producer_open(name, &p), 0);
	a->name = name;
	a->how = 2;
	a->signals = true;
	a->rep = rep;
	pid_t pid = tb_fork(consumer_waiter, a);
	_Atomic uint32_t *bell = tb_rx_bell(takt_producer_channel(p));
	for (int i = 0; i < 20; i++) {
		cr_assert(tb_wait_parked(bell, pid), "the consumer ended early: rc %d",
			  atomic_load(&a->rc));
		kill(pid, SIGALRM);
	}
	cr_assert(tb_wait_parked(bell, pid));
	cr_expect_eq(atomic_load(&a->returned_ns), 0u, "the wait ended without a record");
	publish(p, PUB_TRY_SEND, 7, 0);
	expect_child_ok(pid, rep, "TAKT_FOREVER wait with signals");
	takt_producer_close(p);
}

struct sender_arg {
	const char *name;
	struct tb_report *rep;
};

/* Fill the lane, then one blocking send (spin 0: it parks at once). */
static int producer_waiter(void *v)
{
	struct sender_arg *a = v;
	takt_producer *p;
	int rc = takt_producer_open(a->name, &p);
	if (rc < 0) {
		tb_fail(a->rep, "child producer_open: %s", takt_strerror(rc));
		return 2;
	}
	takt_producer_set_spin_ns(p, 0);
	uint8_t rec[REC_LEN];
	unsigned n = 0;
	for (;; n++) {
		tb_fill(rec, sizeof rec, 0, n);
		rc = takt_try_send(p, 1, rec, sizeof rec);
		if (rc == -EAGAIN)
			break;
		if (rc != 0) {
			tb_fail(a->rep, "child try_send: %s", takt_strerror(rc));
			return 3;
		}
	}
	if (n != REC_FILL) {
		tb_fail(a->rep, "child filled %u records, expected %u", n, REC_FILL);
		return 4;
	}
	tb_fill(rec, sizeof rec, 0, n);
	uint64_t d = takt_deadline_in(LONG_WAIT);
	rc = takt_send(p, 1, rec, sizeof rec, d);
	if (takt_now_ns() >= d) {
		tb_fail(a->rep, "child was not woken: its send returned at its deadline (rc %d)", rc);
		return 6;
	}
	if (rc != 0) {
		tb_fail(a->rep, "child blocking send = %d (%s)", rc, takt_strerror(rc));
		return 5;
	}
	takt_producer_close(p);
	return 0;
}

/* Free exactly one record's worth of space. */
/* Receive one record, the way `mode` says; it must be len bytes carrying
 * (stream, seq). */
static void receive_one(takt_consumer *c, enum free_mode mode, uint64_t stream, uint64_t seq,
			uint32_t len)
{
	uint8_t buf[256];
	struct takt_msg msg;
	int rc;
	switch (mode) {
	case FREE_TRY_RECV:
		rc = takt_try_recv(c, buf, sizeof buf, &msg);
		break;
	case FREE_BATCH:
		rc = takt_try_recv_batch(c, &msg, 1, buf, sizeof buf);
		rc = rc == 1 ? (int)msg.len : rc;
		break;
	case FREE_PEEK:
		rc = takt_peek(c, &msg);
		if (rc >= 0) {
			memcpy(buf, msg.data, msg.len);
			msg.data = buf;
			cr_assert_eq(takt_release(c), 0);
		}
		break;
	default:
		rc = takt_recv(c, buf, sizeof buf, &msg, takt_deadline_in(LONG_WAIT));
		break;
	}
	cr_assert_eq(rc, (int)len, "%s = %d (%s)", free_names[mode], rc, takt_strerror(rc));
	cr_assert(tb_check(msg.data, msg.len, stream, seq), "record %" PRIu64 " differs", seq);
}

static void free_one(takt_consumer *c, enum free_mode mode)
{
	receive_one(c, mode, 0, 0, REC_LEN);
}

/* A producer parked on a full ring is woken by each way of freeing space. */
Test(wait, parked_producer_woken_by_every_free)
{
	struct tb_report *rep = tb_shared(sizeof *rep);
	struct sender_arg *a = tb_shared(sizeof *a);
	for (int mode = 0; mode < FREE_MODES; mode++) {
		const char *name = tb_name("wakep");
		tb_create(name, 1024, 1, 256);
		takt_consumer *c;
		cr_assert_eq(takt_consumer_open(name, &c), 0);
		memset(a, 0, sizeof *a);
		a->name = name;
		a->rep = rep;
		pid_t pid = tb_fork(producer_waiter, a);
		cr_assert(tb_wait_parked(tb_tx_bell(takt_consumer_channel(c), 0), pid),
			  "the producer ended before it parked: %s", rep->set ? rep->msg : "");
		free_one(c, (enum free_mode)mode);
		expect_child_ok(pid, rep, free_names[mode]);
		/* everything else arrives, in order, the blocked record last */
		uint8_t buf[256];
		for (unsigned i = 1; i <= REC_FILL; i++) {
			int rc = takt_try_recv(c, buf, sizeof buf, NULL);
			cr_assert_eq(rc, (int)REC_LEN, "record %u: %s", i, takt_strerror(rc));
			cr_assert(tb_check(buf, REC_LEN, 0, i), "record %u differs", i);
		}
		cr_expect_eq(takt_try_recv(c, buf, sizeof buf, NULL), -EAGAIN);
		takt_consumer_close(c);
		tb_remove(name);
	}
}

/* ---- each publishing call posts to an armed bell ------------------------ */

/*
 * The tests above show that a parked waiter wakes, not that the publishing
 * call posted: a skipped post only delays the waiter to its backstop
 * (TAKT_PARK_BACKSTOP_NS, 2 ms) or the consumer's next empty poll, and no
 * assertion may time that.  Here the bell is armed by hand (the test
 * stores the bit, as a waiter's arm would), nothing waits, and after each
 * way of publishing the armed bit must be cleared and exactly one token
 * posted.  The steps take both the call-free fast paths of takt_try_send
 * and takt_try_recv (one lane, records of at most 64 bytes) and the general
 * paths behind them (a long record, padding at the end of the lane).
 */
static sem_t *open_bell_sem(const char *name, int lane)
{
	char sem_name[TAKT_NAME_MAX + 32];
	if (lane < 0)
		snprintf(sem_name, sizeof sem_name, "/takt.%s.rx", name);
	else
		snprintf(sem_name, sizeof sem_name, "/takt.%s.tx%d", name, lane);
	sem_t *sem = sem_open(sem_name, 0);
	cr_assert_neq(sem, SEM_FAILED, "sem_open %s: %s", sem_name, strerror(errno));
	return sem;
}

static void expect_posted(_Atomic uint32_t *bell, sem_t *sem, const char *what, uint32_t len)
{
	cr_expect_eq(atomic_load(bell) & 1u, 0, "%s of %u bytes left the bell armed", what, len);
	int v = -1;
	cr_assert_eq(sem_getvalue(sem, &v), 0);
	cr_expect_eq(v, 1, "%s of %u bytes: %d tokens posted, 1 expected", what, len, v);
	while (sem_trywait(sem) == 0)
		;
}

Test(wait, every_publish_posts_to_an_armed_bell)
{
	const char *name = tb_name("armed");
	tb_create(name, 1024, 1, 256);
	takt_producer *p;
	takt_consumer *c;
	open_pair(name, &p, &c);
	takt_channel *ch = takt_consumer_channel(c);
	_Atomic uint32_t *rx_bell = tb_rx_bell(ch), *tx_bell = tb_tx_bell(ch, 0);
	sem_t *rx_sem = open_bell_sem(name, -1), *tx_sem = open_bell_sem(name, 0);
	static const struct {
		enum pub_mode send;
		enum free_mode recv;
		uint32_t len;
		bool padded;  /* the record follows padding at the end of the lane */
	} steps[] = {
		{ PUB_TRY_SEND, FREE_TRY_RECV, 48, false },  /* both fast paths */
		{ PUB_TRY_SEND, FREE_TRY_RECV, 0, false },
		{ PUB_TRY_SEND, FREE_TRY_RECV, 200, false }, /* long: general paths */
		{ PUB_COMMIT, FREE_PEEK, 48, false },
		{ PUB_BATCH, FREE_BATCH, 48, false },
		{ PUB_SEND, FREE_RECV, 48, false },
		{ PUB_TRY_SEND, FREE_TRY_RECV, 56, true },   /* padding: general paths */
	};
	uint64_t seq = 0;
	for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
		uint32_t len = steps[i].len;
		if (steps[i].padded) {
			/* unarmed 48-byte records (64 bytes in the lane) until the
			 * tail is 64 bytes short of the end: a 56-byte record (72)
			 * then needs padding first */
			struct takt_lane_stats ls;
			for (;;) {
				cr_assert_eq(takt_lane_stats_get(ch, 0, &ls), 0);
				if (ls.tail % 1024 == 1024 - 64)
					break;
				publish_len(p, PUB_TRY_SEND, 0, seq, 48);
				receive_one(c, FREE_TRY_RECV, 0, seq++, 48);
			}
			while (sem_trywait(rx_sem) == 0 || sem_trywait(tx_sem) == 0)
				;
		}
		atomic_store(rx_bell, 1u);
		publish_len(p, steps[i].send, 0, seq, len);
		expect_posted(rx_bell, rx_sem, pub_names[steps[i].send], len);
		if (steps[i].padded) {
			struct takt_lane_stats ls;
			cr_assert_eq(takt_lane_stats_get(ch, 0, &ls), 0);
			cr_assert_eq(ls.tail % 1024, 16 + 56, "the record did not follow padding");
		}
		atomic_store(tx_bell, 1u);
		receive_one(c, steps[i].recv, 0, seq++, len);
		expect_posted(tx_bell, tx_sem, free_names[steps[i].recv], len);
	}
	sem_close(rx_sem);
	sem_close(tx_sem);
	takt_producer_close(p);
	takt_consumer_close(c);
	tb_remove(name);
}

/* A waker that takes the armed bit and dies before posting (simulated by
 * clearing the bit ourselves before publishing): the parked consumer is
 * not woken, its wait runs to the deadline, and then it finds the record
 * and returns it (it re-checks the ring at the deadline). */
/*
 * A waker that won the armed bit and died before posting: the parked
 * consumer is not woken by a post.  Its park is cut at the backstop
 * (TAKT_PARK_BACKSTOP_NS, 2 ms, src/internal.h; docs/WAITING.md "The
 * fence-free producer"), where it re-checks and finds the record: the lost
 * post costs the backstop, not the 300 ms deadline.
 */
Test(wait, lost_post_costs_one_backstop)
{
	struct tb_report *rep = tb_shared(sizeof *rep);
	struct waiter_arg *a = tb_shared(sizeof *a);
	const char *name = tb_name("lost");
	tb_create(name, 1024, 1, 256);
	takt_producer *p;
	cr_assert_eq(takt_producer_open(name, &p), 0);
	a->name = name;
	a->rep = rep;
	a->deadline = takt_deadline_in(300 * MS);
	pid_t pid = tb_fork(consumer_waiter, a);
	_Atomic uint32_t *bell = tb_rx_bell(takt_producer_channel(p));
	if (!tb_wait_parked(bell, pid)) {
		int st = tb_wait(pid);
		cr_skip_test("the consumer did not park before its deadline (%s): machine too slow",
			     tb_status_str(st));
	}
	/* the dying waker's exchange: it won the bit and never posts */
	cr_assert(atomic_exchange(bell, 0) & 1u);
	uint64_t published = takt_now_ns();
	publish(p, PUB_TRY_SEND, 7, 0); /* sees the bell clear: no post */
	expect_child_ok(pid, rep, "lost post");
	uint64_t returned = atomic_load(&a->returned_ns);
	cr_expect_geq(returned, published, "the consumer returned before the record existed");
	cr_expect_lt(returned, a->deadline - 100 * MS,
		     "the lost post cost the deadline: no backstop cut the park");
	takt_producer_close(p);
}

/* ---- missing semaphores ------------------------------------------------- */

static void expect_open_fails(const char *name, bool producer_fails, bool consumer_fails,
			      const char *what)
{
	takt_producer *p = NULL;
	takt_consumer *c = NULL;
	int rc = takt_consumer_open(name, &c);
	if (consumer_fails)
		cr_expect_eq(rc, -ENOENT, "%s: consumer_open = %d (%s)", what, rc, takt_strerror(rc));
	else
		cr_expect_eq(rc, 0, "%s: consumer_open = %d (%s)", what, rc, takt_strerror(rc));
	rc = takt_producer_open(name, &p);
	if (producer_fails)
		cr_expect_eq(rc, -ENOENT, "%s: producer_open = %d (%s)", what, rc, takt_strerror(rc));
	else
		cr_expect_eq(rc, 0, "%s: producer_open = %d (%s)", what, rc, takt_strerror(rc));
	/* a failed open holds no slot */
	takt_channel *ch;
	cr_assert_eq(takt_channel_open(name, TAKT_OPEN_RDONLY, &ch), 0);
	cr_expect_eq(takt_consumer_alive(ch), c ? 1 : 0, "%s: consumer slot", what);
	cr_expect_eq(takt_producers_alive(ch, NULL), p ? 1 : 0, "%s: producer slots", what);
	takt_channel_close(ch);
	if (c)
		takt_consumer_close(c);
	if (p)
		takt_producer_close(p);
}

Test(wait, missing_semaphores_fail_open)
{
	char sem[TAKT_NAME_MAX + 32];
	const char *name = tb_name("nosem");
	tb_create(name, 1024, 2, 256);
	snprintf(sem, sizeof sem, "/takt.%s.rx", name);
	cr_assert_eq(sem_unlink(sem), 0);
	expect_open_fails(name, true, true, "no .rx");
	cr_expect_eq(takt_unlink(name), 0, "unlink must cope with a missing semaphore");

	name = tb_name("nosem");
	tb_create(name, 1024, 2, 256);
	snprintf(sem, sizeof sem, "/takt.%s.tx0", name);
	cr_assert_eq(sem_unlink(sem), 0);
	expect_open_fails(name, true, true, "no .tx0");

	/* Lane 1's semaphore missing: the consumer (which needs every lane's)
	 * fails; a producer takes lane 0 and works. */
	name = tb_name("nosem");
	tb_create(name, 1024, 2, 256);
	snprintf(sem, sizeof sem, "/takt.%s.tx1", name);
	cr_assert_eq(sem_unlink(sem), 0);
	expect_open_fails(name, false, true, "no .tx1");
	takt_producer *p0, *p1;
	cr_assert_eq(takt_producer_open(name, &p0), 0);
	int rc = takt_producer_open(name, &p1);
	cr_expect_eq(rc, -ENOENT, "second producer (lane 1) = %d (%s)", rc, takt_strerror(rc));
	takt_producer_close(p0);
}

/* The semaphores come and go with the channel. */
Test(wait, semaphores_follow_the_channel)
{
	const char *name = tb_name("sems");
	char path[TAKT_NAME_MAX + 64];
	const char *const sfx[] = {"rx", "tx0", "tx1", "tx2"};
	tb_create(name, 1024, 3, 256);
	for (unsigned i = 0; i < 4; i++) {
		snprintf(path, sizeof path, "/dev/shm/sem.takt.%s.%s", name, sfx[i]);
		cr_expect_eq(access(path, F_OK), 0, "%s missing after create", path);
	}
	snprintf(path, sizeof path, "/dev/shm/sem.takt.%s.tx3", name);
	cr_expect_neq(access(path, F_OK), 0, "%s exists for a 3-lane channel", path);
	cr_assert_eq(takt_unlink(name), 0);
	for (unsigned i = 0; i < 4; i++) {
		snprintf(path, sizeof path, "/dev/shm/sem.takt.%s.%s", name, sfx[i]);
		cr_expect_neq(access(path, F_OK), 0, "%s left behind by takt_unlink", path);
	}
}

/* ---- space the consumer has read but not released ----------------------- */

/* A full 1 KiB lane whose consumer took one record and stopped: it owes
 * the producer 64 bytes (it releases in steps of capacity / 8, lane.h). */
static void open_full_owing_one(const char *name, takt_producer **p, takt_consumer **c)
{
	tb_create(name, 1024, 1, 256);
	open_pair(name, p, c);
	cr_assert_eq(fill(*p), REC_FILL);
	uint8_t buf[REC_LEN];
	cr_assert_eq(takt_try_recv(*c, buf, sizeof buf, NULL), (int)REC_LEN);
	cr_assert_eq(takt_try_send(*p, 1, buf, REC_LEN), -EAGAIN, "not released yet");
}

/*
 * The consumer took one record and stopped: it owes the producer 64
 * bytes (it releases in steps of capacity / 8, lane.h).  A blocking send
 * takes them from the consumer's position even when its deadline ends
 * inside the spin, before any park.
 */
Test(wait, send_takes_unreleased_space_before_the_deadline)
{
	takt_producer *p;
	takt_consumer *c;
	open_full_owing_one(tb_name("unrel"), &p, &c);
	uint8_t buf[REC_LEN] = {0};
	takt_producer_set_spin_ns(p, 4000000000u); /* the deadline ends the spin */
	cr_assert_eq(takt_send(p, 1, buf, REC_LEN, takt_deadline_in(1 * MS)), 0);
	cr_assert_eq(takt_send(p, 1, buf, REC_LEN, takt_deadline_in(1 * MS)), -ETIMEDOUT,
		     "and nothing more");
	takt_consumer_close(c);
	takt_producer_close(p);
}

/*
 * takt_wait_writable, from another thread than the sender's, counts the
 * unreleased space too, and the owner's next takt_try_send takes it.
 */
Test(wait, wait_writable_sees_unreleased_space)
{
	takt_producer *p;
	takt_consumer *c;
	open_full_owing_one(tb_name("unrelw"), &p, &c);
	uint8_t buf[REC_LEN] = {0};
	cr_assert_eq(takt_wait_writable(p, 3 * REC_LEN, TAKT_NO_WAIT), -ETIMEDOUT,
		     "64 bytes owed: no room for a record of 160");
	cr_assert_eq(takt_wait_writable(p, REC_LEN, takt_deadline_in(LONG_WAIT)), 0);
	cr_assert_eq(takt_try_send(p, 1, buf, REC_LEN), 0, "the owner takes what the wait saw");
	cr_assert_eq(takt_try_send(p, 1, buf, REC_LEN), -EAGAIN);
	takt_consumer_close(c);
	takt_producer_close(p);
}
