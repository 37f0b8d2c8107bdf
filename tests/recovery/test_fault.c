/* SPDX-License-Identifier: MIT */
/*
 * test_fault.c - crash recovery under SIGKILL, against the library built
 * with numbered crash points (takt_fault, TAKT_FAULT_POINTS=1).
 *
 * A round: one MPSC channel (2 lanes), two producer processes and one
 * consumer process.  A stream is a lane: each producer continues the stream
 * of the lane it gets at open (the lane's OFD lock makes its incarnations
 * strictly sequential, so the claim below is race-free).  A victim is SIGKILLed, either by the library at
 * crash point k (TAKT_CRASH_AT=k, TAKT_CRASH_AFTER=n in its environment) or
 * by the parent at a random time.  The parent reaps it and starts a
 * replacement, which continues: a producer on the lane the dead one held, at
 * its tail; a consumer at the published heads.  Every process writes what it
 * did to shared memory the parent can read after its death:
 *
 *   producer incarnation i of lane r, claimed after open: base[r][i] (the
 *     first sequence number: what its predecessor confirmed), attempted[r][i] (stored *before* each send call:
 *     seq + records offered), confirmed[r][i] (stored *after* a send call
 *     returned success), lane[r][i];
 *   consumer: an append-only log of (role, inc, seq, consumer incarnation),
 *     an entry counting only once the count is bumped after it.
 *
 * Records are self-checking (tr_rec_check: magic, length, FNV checksum), and
 * carry (role, inc, seq); the record type is role + 1 and the lane it came
 * in must be the lane that incarnation held.  The checker then rebuilds each
 * role's stream (incarnation by incarnation, from base to the larger of
 * "confirmed" and "delivered") and walks the log:
 *
 *  - no torn record, no record that was never offered (seq < attempted);
 *  - no committed record lost: every confirmed sequence number arrives;
 *  - FIFO per role across producer incarnations (same lane, continued tail);
 *  - exactly once, except at the boundary between a killed consumer and its
 *    replacement: a peek/release consumer may see the one record it had
 *    logged but not released again (at-least-once), and a copy-out consumer
 *    may have consumed (head published) up to one call's worth of records it
 *    never got to log (it died inside the receive call or before logging;
 *    those records were delivered to the dead process) - nothing else;
 *  - survivors' blocking calls return by their deadline (+ slack for a
 *    loaded machine: a hang, not a latency, is what is checked);
 *  - no lane is ever marked broken;
 *  - a round ends within its watchdog (nobody hangs).
 *
 * Short form (default): every crash point x every send/receive mode, and
 * >= 1000 random-time kills.  TAKT_LONG=1: >= 10 000 random kills and more
 * crash-point repetitions.  TR_FAULT_KILLS overrides the random kill count.
 */
#include "tr_common.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fault.h"
#include "layout.h"

#define ROLES 2
#define MAX_INC 256
#define MAX_CINC 256
#define BATCH_MAX 8

enum pmode { PM_TRY, PM_BATCH, PM_RESERVE, PM_BLOCK, PM_COUNT };
enum cmode { CM_PEEK, CM_RECV, CM_BATCH, CM_BLOCK, CM_COUNT };
static const char *pmode_name[] __attribute__((unused)) = {"try_send", "send_batch", "reserve/commit", "send(deadline)"};
static const char *cmode_name[] = {"peek/release", "try_recv", "recv_batch", "recv(deadline)"};

struct log_entry {
	uint32_t role, inc;
	uint64_t seq;
	uint32_t cinc, pad;
};

struct shared {
	_Atomic uint64_t base[ROLES][MAX_INC];
	_Atomic uint64_t attempted[ROLES][MAX_INC];
	_Atomic uint64_t confirmed[ROLES][MAX_INC];
	_Atomic int32_t lane[ROLES][MAX_INC];
	_Atomic uint32_t pmode[ROLES][MAX_INC];
	_Atomic uint32_t cmode[MAX_CINC];
	_Atomic uint32_t n_inc[ROLES];   /* incarnations claimed per lane */
	_Atomic uint32_t producers_done;
	_Atomic uint32_t failed;
	char why[512];
	_Atomic uint64_t nlog;
	struct log_entry log[];
};

struct round_cfg {
	uint64_t records;   /* per role */
	uint64_t capacity;
	uint32_t max_record;
	int crash_point;    /* 0: none */
	long crash_after;
	int crash_victim;   /* 0, 1: a producer process; 2: the consumer */
	int pmode, cmode;   /* -1: random per incarnation */
	unsigned random_kills;
	double kill_window;  /* seconds: random delay before each kill */
	double slack;        /* how late a blocking call may return (a hang check) */
	double watchdog;
};

struct round_result {
	unsigned kills;          /* victims that died of SIGKILL */
	unsigned crash_fired;    /* of those, at the crash point */
	unsigned dups, gaps;
	uint64_t delivered;
};

static struct shared *S;
static size_t S_size;
static uint64_t log_cap;
static const char *chan;

static void child_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void child_fail(const char *fmt, ...)
{
	uint32_t z = 0;
	if (atomic_compare_exchange_strong(&S->failed, &z, 1)) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(S->why, sizeof S->why, fmt, ap);
		va_end(ap);
	}
	_exit(3);
}

static void set_crash_env(const struct round_cfg *cfg)
{
	char v[32];
	snprintf(v, sizeof v, "%d", cfg->crash_point);
	setenv("TAKT_CRASH_AT", v, 1);
	snprintf(v, sizeof v, "%ld", cfg->crash_after);
	setenv("TAKT_CRASH_AFTER", v, 1);
}

static double g_slack = 5.0;
static int g_hold_w = -1; /* the hold pipe's write end: children close it */

static void check_late(uint64_t deadline, const char *what)
{
	uint64_t now = takt_now_ns();
	if (now > deadline + (uint64_t)(g_slack * 1e9))
		child_fail("%s returned %.3f s after its deadline", what,
			   (double)(now - deadline) / 1e9);
}

/* ---- producer ---------------------------------------------------------- */

static void producer_main(const struct round_cfg *cfg, int pmode, int hold_fd, int done_fd,
			  uint64_t seed)
{
	takt_producer *p = NULL;
	int rc = takt_producer_open(chan, &p);
	if (rc != 0)
		child_fail("producer: open = %d (%s)", rc, takt_strerror(rc));
	/* Claim the next incarnation of this lane's stream.  We hold the
	 * lane, and every earlier holder is dead or closed, so nobody else
	 * writes these words now. */
	int role = (int)takt_producer_lane(p);
	int inc = (int)atomic_load(&S->n_inc[role]);
	if (inc >= MAX_INC)
		child_fail("too many incarnations");
	uint64_t base = inc ? atomic_load(&S->confirmed[role][inc - 1]) : 0;
	atomic_store(&S->base[role][inc], base);
	atomic_store(&S->attempted[role][inc], base);
	atomic_store(&S->confirmed[role][inc], base);
	atomic_store(&S->lane[role][inc], role);
	atomic_store(&S->pmode[role][inc], (uint32_t)pmode);
	atomic_store(&S->n_inc[role], (uint32_t)inc + 1); /* records may carry inc now */
	takt_producer_set_spin_ns(p, 0);
	int mode = pmode;
	uint64_t seq = base;
	uint8_t buf[BATCH_MAX][1024];
	struct takt_msg msgs[BATCH_MAX];
	uint32_t type = (uint32_t)role + 1;
	while (seq < cfg->records) {
		struct tr_rec_id id = {(uint32_t)role, (uint32_t)inc, seq};
		size_t len = tr_rec_len((uint32_t)role, seq ^ ((uint64_t)inc << 32), cfg->max_record);
		switch (mode) {
		case PM_TRY:
			tr_rec_make(buf[0], len, id);
			atomic_store(&S->attempted[role][inc], seq + 1);
			rc = takt_try_send(p, type, buf[0], len);
			if (rc == 0) {
				atomic_store(&S->confirmed[role][inc], ++seq);
			} else if (rc == -EAGAIN) {
				tr_yield();
			} else {
				child_fail("producer %d.%d: try_send = %d (%s)", role, inc, rc, takt_strerror(rc));
			}
			break;
		case PM_BATCH: {
			unsigned n = 1 + (unsigned)(tr_rand(&seed) % BATCH_MAX);
			if (seq + n > cfg->records)
				n = (unsigned)(cfg->records - seq);
			for (unsigned i = 0; i < n; i++) {
				struct tr_rec_id bid = {(uint32_t)role, (uint32_t)inc, seq + i};
				size_t bl = tr_rec_len((uint32_t)role, (seq + i) ^ ((uint64_t)inc << 32),
						       cfg->max_record);
				tr_rec_make(buf[i], bl, bid);
				msgs[i] = (struct takt_msg){.data = buf[i], .len = (uint32_t)bl, .type = type};
			}
			atomic_store(&S->attempted[role][inc], seq + n);
			rc = takt_try_send_batch(p, msgs, n);
			if (rc > 0) {
				if ((unsigned)rc > n)
					child_fail("batch returned %d > %u", rc, n);
				seq += (unsigned)rc;
				atomic_store(&S->confirmed[role][inc], seq);
			} else if (rc == -EAGAIN) {
				tr_yield();
			} else {
				child_fail("producer %d.%d: send_batch = %d (%s)", role, inc, rc, takt_strerror(rc));
			}
			break;
		}
		case PM_RESERVE: {
			void *dst;
			atomic_store(&S->attempted[role][inc], seq + 1);
			rc = takt_reserve(p, cfg->max_record, &dst);
			if (rc == 0) {
				tr_rec_make(dst, len, id);
				rc = takt_commit(p, type, len);
				if (rc != 0)
					child_fail("producer %d.%d: commit = %d", role, inc, rc);
				atomic_store(&S->confirmed[role][inc], ++seq);
			} else if (rc == -EAGAIN) {
				tr_yield();
			} else {
				child_fail("producer %d.%d: reserve = %d (%s)", role, inc, rc, takt_strerror(rc));
			}
			break;
		}
		default: {
			tr_rec_make(buf[0], len, id);
			atomic_store(&S->attempted[role][inc], seq + 1);
			uint64_t dl = takt_deadline_in(20 * 1000 * 1000);
			rc = takt_send(p, type, buf[0], len, dl);
			check_late(dl, "takt_send");
			if (rc == 0)
				atomic_store(&S->confirmed[role][inc], ++seq);
			else if (rc != -ETIMEDOUT)
				child_fail("producer %d.%d: send = %d (%s)", role, inc, rc, takt_strerror(rc));
			break;
		}
		}
	}
	char b = (char)role;
	if (write(done_fd, &b, 1) != 1)
		child_fail("done pipe");
	/* Keep the lane until the round ends: a replacement of the other
	 * process then finds its dead predecessor's lane, and only it, free. */
	while (read(hold_fd, &b, 1) > 0)
		;
	takt_producer_close(p);
	_exit(0);
}

/* ---- consumer ---------------------------------------------------------- */

static void log_record(const void *data, uint32_t len, uint32_t type, uint32_t lane, int cinc)
{
	struct tr_rec_id id;
	const char *bad = tr_rec_check(data, len, &id);
	if (bad)
		child_fail("consumer %d: bad record (len %u, lane %u): %s", cinc, len, lane, bad);
	if (id.stream >= ROLES || id.inc >= MAX_INC || type != id.stream + 1)
		child_fail("consumer %d: record of unknown origin (stream %u inc %u type %u)", cinc,
			   id.stream, id.inc, type);
	int32_t want = atomic_load(&S->lane[id.stream][id.inc]);
	if (want != (int32_t)lane)
		child_fail("consumer %d: record %u.%u.%" PRIu64 " came in lane %u, its producer holds %d",
			   cinc, id.stream, id.inc, id.seq, lane, want);
	uint64_t n = atomic_load_explicit(&S->nlog, memory_order_relaxed);
	if (n >= log_cap)
		child_fail("log overflow");
	S->log[n] = (struct log_entry){id.stream, id.inc, id.seq, (uint32_t)cinc, 0};
	atomic_store_explicit(&S->nlog, n + 1, memory_order_release);
}

static void consumer_main(int cinc, uint64_t seed)
{
	takt_consumer *c = NULL;
	int rc = takt_consumer_open(chan, &c);
	if (rc != 0)
		child_fail("consumer %d: open = %d (%s)", cinc, rc, takt_strerror(rc));
	takt_consumer_set_spin_ns(c, 0);
	takt_consumer_set_lane_burst(c, 1 + (unsigned)(tr_rand(&seed) % 8));
	int mode = (int)atomic_load(&S->cmode[cinc]);
	static uint8_t buf[BATCH_MAX * 1024];
	struct takt_msg msgs[BATCH_MAX], m;
	for (;;) {
		uint32_t done = atomic_load_explicit(&S->producers_done, memory_order_acquire);
		switch (mode) {
		case CM_PEEK:
			rc = takt_peek(c, &m);
			if (rc >= 0) {
				log_record(m.data, m.len, m.type, m.lane, cinc);
				int r2 = takt_release(c);
				if (r2 != 0)
					child_fail("release = %d", r2);
			}
			break;
		case CM_RECV:
			rc = takt_try_recv(c, buf, sizeof buf, &m);
			if (rc >= 0)
				log_record(buf, m.len, m.type, m.lane, cinc);
			break;
		case CM_BATCH: {
			unsigned n = 1 + (unsigned)(tr_rand(&seed) % BATCH_MAX);
			rc = takt_try_recv_batch(c, msgs, n, buf, sizeof buf);
			for (int i = 0; i < rc; i++)
				log_record(msgs[i].data, msgs[i].len, msgs[i].type, msgs[i].lane, cinc);
			break;
		}
		default: {
			uint64_t dl = done ? TAKT_NO_WAIT : takt_deadline_in(10 * 1000 * 1000);
			rc = takt_recv(c, buf, sizeof buf, &m, dl);
			if (dl != TAKT_NO_WAIT)
				check_late(dl, "takt_recv");
			if (rc >= 0)
				log_record(buf, m.len, m.type, m.lane, cinc);
			if (rc == -ETIMEDOUT)
				rc = -EAGAIN;
			break;
		}
		}
		if (rc == -EAGAIN) {
			if (done)
				break;
			tr_yield();
		} else if (rc < 0) {
			child_fail("consumer %d (%s): receive = %d (%s)", cinc, cmode_name[mode], rc,
				   takt_strerror(rc));
		}
	}
	takt_consumer_close(c);
	_exit(0);
}

/* ---- the parent -------------------------------------------------------- */

struct child {
	pid_t pid;
	int pidfd;
	int kind;    /* 0, 1: producer process; 2: consumer */
	int inc;     /* consumer incarnation */
	bool armed;  /* carries the crash-point environment */
};

static pid_t spawn(const struct round_cfg *cfg, int kind, int inc, bool arm, int hold_fd,
		   int done_fd, uint64_t seed)
{
	pid_t pid = fork();
	cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		tr_child_setup();
		close(g_hold_w);
		if (arm)
			set_crash_env(cfg);
		if (kind < 2) {
			int m = cfg->pmode >= 0 ? cfg->pmode : (int)(tr_rand(&seed) % PM_COUNT);
			producer_main(cfg, m, hold_fd, done_fd, seed);
		}
		consumer_main(inc, seed);
	}
	return pid;
}

static int start_child(struct child *ch, const struct round_cfg *cfg, int kind, int inc, bool arm,
		       int hold_fd, int done_fd, uint64_t *rng)
{
	ch->kind = kind;
	ch->inc = inc;
	ch->armed = arm;
	ch->pid = spawn(cfg, kind, inc, arm, hold_fd, done_fd, tr_rand(rng));
	ch->pidfd = (int)syscall(SYS_pidfd_open, ch->pid, 0);
	cr_assert_geq(ch->pidfd, 0, "pidfd_open: %s", strerror(errno));
	return 0;
}

/* Check the log against what the producers offered and confirmed. */
static void check_round(const struct round_cfg *cfg, int n_cinc, const bool ckilled[],
			struct round_result *res)
{
	int n_inc[ROLES];
	for (int r = 0; r < ROLES; r++)
		n_inc[r] = (int)atomic_load(&S->n_inc[r]);
	uint64_t n = atomic_load(&S->nlog);
	res->delivered = n;
	unsigned gap_budget[MAX_CINC];
	for (int c = 0; c < n_cinc; c++) {
		int m = (int)atomic_load(&S->cmode[c]);
		gap_budget[c] = !ckilled[c] ? 0 : m == CM_PEEK ? 0 : m == CM_BATCH ? BATCH_MAX : 1;
	}
	for (int r = 0; r < ROLES; r++) {
		uint64_t off[MAX_INC + 1], maxdel[MAX_INC];
		for (int i = 0; i < n_inc[r]; i++)
			maxdel[i] = atomic_load(&S->base[r][i]);
		for (uint64_t k = 0; k < n; k++) {
			struct log_entry *e = &S->log[k];
			if (e->role != (uint32_t)r)
				continue;
			cr_assert_lt(e->inc, (uint32_t)n_inc[r], "record of a producer that never ran");
			uint64_t base = atomic_load(&S->base[r][e->inc]);
			uint64_t att = atomic_load(&S->attempted[r][e->inc]);
			cr_assert(e->seq >= base && e->seq < att,
				  "role %d inc %u: record %" PRIu64 " was never offered (base %" PRIu64
				  ", attempted %" PRIu64 ")", r, e->inc, e->seq, base, att);
			if (e->seq + 1 > maxdel[e->inc])
				maxdel[e->inc] = e->seq + 1;
		}
		off[0] = 0;
		for (int i = 0; i < n_inc[r]; i++) {
			uint64_t base = atomic_load(&S->base[r][i]);
			uint64_t conf = atomic_load(&S->confirmed[r][i]);
			uint64_t end = maxdel[i] > conf ? maxdel[i] : conf;
			off[i + 1] = off[i] + (end - base);
		}
		uint64_t total = off[n_inc[r]];
		int64_t prev = -1;
		uint32_t prev_cinc = 0;
		for (uint64_t k = 0; k <= n; k++) {
			uint64_t x;
			uint32_t cinc;
			if (k < n) {
				struct log_entry *e = &S->log[k];
				if (e->role != (uint32_t)r)
					continue;
				x = off[e->inc] + (e->seq - atomic_load(&S->base[r][e->inc]));
				cinc = e->cinc;
			} else {
				x = total; /* the end of the stream */
				cinc = (uint32_t)n_cinc;
			}
			if ((int64_t)x == prev + 1) {
				prev = (int64_t)x;
				prev_cinc = cinc;
				continue;
			}
			/* Only a killed consumer between the two may explain it. */
			int dup_ok = 0;
			unsigned gap_ok = 0;
			for (uint32_t c = prev_cinc; c < cinc && c < (uint32_t)n_cinc; c++) {
				if (!ckilled[c])
					continue;
				if (atomic_load(&S->cmode[c]) == CM_PEEK)
					dup_ok = 1;
				gap_ok += gap_budget[c];
			}
			int64_t d = (int64_t)x - (prev + 1);
			if (d < 0 && d >= -dup_ok && (int64_t)x == prev) {
				res->dups++;
			} else if (d > 0 && (uint64_t)d <= gap_ok) {
				/* records the dead consumer took but never logged */
				unsigned left = (unsigned)d;
				for (uint32_t c = prev_cinc; c < cinc && left; c++) {
					unsigned take = gap_budget[c] < left ? gap_budget[c] : left;
					gap_budget[c] -= take;
					left -= take;
				}
				res->gaps += (unsigned)d;
			} else {
				const char *what = k < n ? "record" : "end of stream";
				cr_assert_fail("role %d: %s at stream index %" PRIu64 " after index %" PRId64
					" (consumer %u -> %u, killed consumers between allow dup %d, gap %u)%s",
					r, what, x, prev, prev_cinc, cinc, dup_ok, gap_ok,
					d > 0 ? ": a committed record was LOST"
					      : ": DUPLICATE or out of order");
			}
			prev = (int64_t)x;
			prev_cinc = cinc;
		}
	}
	(void)cfg;
}

static void run_round(const struct round_cfg *cfg, uint64_t *rng, struct round_result *res)
{
	memset(res, 0, sizeof *res);
	memset(S, 0, sizeof(struct shared));
	g_slack = cfg->slack;
	tr_create(chan, cfg->capacity, ROLES, cfg->max_record);

	int hold[2], done[2];
	cr_assert_eq(pipe(hold), 0);
	cr_assert_eq(pipe2(done, O_NONBLOCK), 0);
	g_hold_w = hold[1];

	struct child kids[3];
	int n_cinc = 0;
	bool ckilled[MAX_CINC] = {0};
	bool lane_done[ROLES] = {false, false};
	for (int k = 0; k < 2; k++)
		start_child(&kids[k], cfg, k, 0, cfg->crash_point && cfg->crash_victim == k, hold[0],
			    done[1], rng);
	atomic_store(&S->cmode[0],
		     (uint32_t)(cfg->cmode >= 0 ? cfg->cmode : (int)(tr_rand(rng) % CM_COUNT)));
	n_cinc = 1;
	start_child(&kids[2], cfg, 2, 0, cfg->crash_point && cfg->crash_victim == 2, hold[0],
		    done[1], rng);

	unsigned kills_left = cfg->random_kills;
	double next_kill = kills_left ? tr_now() + cfg->kill_window * (double)(tr_rand(rng) % 1000) / 1000.0 : 0;
	double start = tr_now();
	bool consumer_done = false, all_sent = false;
	while (!consumer_done) {
		cr_assert_lt(tr_now() - start, cfg->watchdog,
			     "round hung: consumer still running after %.1f s", cfg->watchdog);
		if (atomic_load(&S->failed))
			break;
		struct pollfd pf[4];
		for (int k = 0; k < 3; k++)
			pf[k] = (struct pollfd){.fd = kids[k].pidfd, .events = POLLIN};
		pf[3] = (struct pollfd){.fd = done[0], .events = POLLIN};
		int timeout = 200;
		if (kills_left) {
			double dt = next_kill - tr_now();
			timeout = dt <= 0 ? 0 : (int)(dt * 1000) + 0;
		}
		int pr = poll(pf, 4, timeout);
		cr_assert(pr >= 0 || errno == EINTR);
		/* Drain every "done" byte before looking at deaths: a byte
		 * written by a producer that died since belongs to it, not to
		 * its replacement. */
		char b;
		while (read(done[0], &b, 1) == 1) {
			lane_done[(int)b] = true;
			if (lane_done[0] && lane_done[1] && !all_sent) {
				all_sent = true;
				atomic_store_explicit(&S->producers_done, 1, memory_order_release);
			}
		}
		for (int k = 0; k < 3; k++) {
			if (!(pf[k].revents & POLLIN))
				continue;
			int st;
			cr_assert_eq(waitpid(kids[k].pid, &st, 0), kids[k].pid);
			close(kids[k].pidfd);
			if (WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL) {
				res->kills++;
				if (kids[k].armed)
					res->crash_fired++;
			} else {
				cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0,
					  "%s %d died: %s%s%s", k < 2 ? "producer" : "consumer",
					  kids[k].inc, tr_status(st), S->failed ? ": " : "", S->why);
			}
			if (k == 2) {
				if (WIFEXITED(st)) {
					consumer_done = true;
					kids[k].pidfd = -1;
					continue;
				}
				ckilled[kids[k].inc] = true;
				cr_assert_lt(n_cinc, MAX_CINC);
				atomic_store(&S->cmode[n_cinc],
					     (uint32_t)(cfg->cmode >= 0 ? cfg->cmode
									: (int)(tr_rand(rng) % CM_COUNT)));
				start_child(&kids[2], cfg, 2, n_cinc++, false, hold[0], done[1], rng);
			} else {
				/* Replace it, even if its lane was complete: every
				 * lane must have a holder, or the other replacement
				 * could take the wrong one. */
				cr_assert(!WIFEXITED(st), "producer exited before the round ended");
				start_child(&kids[k], cfg, k, 0, false, hold[0], done[1], rng);
			}
		}
		if (kills_left && tr_now() >= next_kill) {
			/* a random victim among those still running */
			int v = (int)(tr_rand(rng) % 3);
			if (kids[v].pidfd >= 0)
				kill(kids[v].pid, SIGKILL);
			kills_left--;
			next_kill = tr_now() + cfg->kill_window * (double)(tr_rand(rng) % 1000) / 1000.0;
		}
	}
	/* the round is over: let the producers close and exit */
	close(hold[1]);
	close(hold[0]);
	close(done[0]);
	close(done[1]);
	for (int k = 0; k < 2; k++) {
		if (kids[k].pidfd < 0)
			continue;
		close(kids[k].pidfd);
		int st = tr_wait_timeout(kids[k].pid, cfg->watchdog);
		if (WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL && st != -1) {
			res->kills++; /* a random kill or TX_CLOSE at the very end */
			if (kids[k].armed)
				res->crash_fired++;
			continue;
		}
		cr_assert(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "producer %d at close: %s %s",
			  k, tr_status(st), S->why);
	}
	cr_assert_eq(atomic_load(&S->failed), 0, "%s", S->why);

	/* No lane may have been marked broken by a crash. */
	takt_channel *ch;
	cr_assert_eq(takt_channel_open(chan, TAKT_OPEN_RDONLY, &ch), 0);
	for (unsigned l = 0; l < ROLES; l++) {
		struct takt_lane_stats st;
		cr_assert_eq(takt_lane_stats_get(ch, l, &st), 0);
		cr_assert_eq(st.broken, 0, "lane %u marked broken after a crash", l);
		cr_assert_eq(st.producer_alive, 0);
	}
	cr_assert_eq(takt_channel_is_stale(ch), 1);
	takt_channel_close(ch);
	check_round(cfg, n_cinc, ckilled, res);
	if (tr_env_u64("TR_VERBOSE", 0))
		fprintf(stderr, "round: point %d victim %d pmode %d cmode %d: %.3f s, %u kills\n",
			cfg->crash_point, cfg->crash_victim, cfg->pmode, cfg->cmode, tr_now() - start,
			res->kills);
	cr_assert_eq(takt_unlink_stale(chan), 0);
	cr_assert_eq(tr_leftovers(chan), 0);
}

static void setup_shared(uint64_t records)
{
	log_cap = records * ROLES * 2 + 4096;
	S_size = sizeof(struct shared) + log_cap * sizeof(struct log_entry);
	S = tr_shared(S_size);
}

static double scale(void)
{
#if defined(__SANITIZE_ADDRESS__)
	return 4.0;
#else
	return 1.0;
#endif
}

TR_SUITE(fault, .timeout = 0);

/* Every numbered crash point, in each send or receive mode. */
Test(fault, crash_points)
{
	uint64_t rng = tr_seed();
	unsigned reps = tr_long() ? 4 : 1;
	struct round_cfg cfg = {
		.records = 1500, .capacity = 1024, .max_record = 192,
		.slack = 5.0 * scale(), .watchdog = 30.0 * scale(),
	};
	setup_shared(cfg.records);
	chan = tr_name("cp");
	unsigned fired_total = 0, rounds = 0, dups = 0, gaps = 0;
	for (int k = TAKT_FP_TX_FIRST; k < TAKT_FP_RX_END; k++) {
		if (k == TAKT_FP_TX_END)
			k = TAKT_FP_RX_FIRST;
		bool tx = k < TAKT_FP_TX_END;
		bool once = k == TAKT_FP_TX_OPEN_SLOT || k == TAKT_FP_TX_RECOVERED ||
			    k == TAKT_FP_TX_OPEN_PID || k == TAKT_FP_TX_OPEN_DONE ||
			    k == TAKT_FP_TX_CLOSE || k == TAKT_FP_RX_OPEN_SLOT ||
			    k == TAKT_FP_RX_OPEN_PID || k == TAKT_FP_RX_OPEN_DONE ||
			    k == TAKT_FP_RX_CLOSE;
		unsigned fired = 0;
		for (unsigned rep = 0; rep < reps; rep++) {
			for (int m = 0; m < (tx ? PM_COUNT : CM_COUNT); m++) {
				cfg.crash_point = k;
				/* points passed on every record: anywhere in the
				 * run; those that depend on timing (full, empty) or
				 * geometry (padding): early, so they surely fire */
				bool rare = k == TAKT_FP_TX_FULL || k == TAKT_FP_TX_EARLY_COMMIT ||
					    k == TAKT_FP_RX_EMPTY || k == TAKT_FP_RX_PAD_SKIPPED;
				cfg.crash_after = once ? 0 : (long)(tr_rand(&rng) % (rare ? 8 : 200));
				cfg.crash_victim = tx ? (int)(tr_rand(&rng) % ROLES) : 2;
				cfg.pmode = tx ? m : (int)(tr_rand(&rng) % PM_COUNT);
				cfg.cmode = tx ? (int)(tr_rand(&rng) % CM_COUNT) : m;
				struct round_result res;
				run_round(&cfg, &rng, &res);
				fired += res.crash_fired;
				dups += res.dups;
				gaps += res.gaps;
				rounds++;
			}
		}
		/* Points reachable in some mode must have fired. */
		cr_assert_gt(fired, 0, "crash point %d never fired", k);
		fired_total += fired;
	}
	cr_log_info("crash points: %u rounds, %u crashes, %u redeliveries, %u taken-unlogged",
		    rounds, fired_total, dups, gaps);
	fprintf(stderr, "crash points: %u rounds, %u crashes, %u redeliveries, %u taken-unlogged\n",
		rounds, fired_total, dups, gaps);
	tr_unshared(S, S_size);
}

/* SIGKILL at random times: producers and the consumer, in random modes. */
Test(fault, random_kills)
{
	uint64_t rng = tr_seed();
	uint64_t want = tr_env_u64("TR_FAULT_KILLS", tr_long() ? 10000 : 1000);
	struct round_cfg cfg = {
		.records = 2000, .max_record = 192, .pmode = -1, .cmode = -1,
		.random_kills = 10, .slack = 5.0 * scale(), .watchdog = 30.0 * scale(),
	};
	setup_shared(cfg.records);
	chan = tr_name("rk");
	uint64_t kills = 0, rounds = 0, dups = 0, gaps = 0, delivered = 0;
	while (kills < want) {
		cfg.capacity = (tr_rand(&rng) & 1) ? 1024 : 4096;
		/* from "at once" to "well into the run" */
		cfg.kill_window = (double)(1 + tr_rand(&rng) % 4) * 1e-3 * scale();
		struct round_result res;
		run_round(&cfg, &rng, &res);
		kills += res.kills;
		dups += res.dups;
		gaps += res.gaps;
		delivered += res.delivered;
		rounds++;
		cr_assert_lt(rounds, want, "kills do not land: %" PRIu64 " in %" PRIu64 " rounds", kills,
			     rounds);
	}
	cr_log_info("random kills: %" PRIu64 " rounds, %" PRIu64 " kills, %" PRIu64
		    " records, %" PRIu64 " redeliveries, %" PRIu64 " taken-unlogged",
		    rounds, kills, delivered, dups, gaps);
	fprintf(stderr,
		"random kills: %" PRIu64 " rounds, %" PRIu64 " kills, %" PRIu64 " records, %" PRIu64
		" redeliveries, %" PRIu64 " taken-unlogged\n",
		rounds, kills, delivered, dups, gaps);
	tr_unshared(S, S_size);
}
