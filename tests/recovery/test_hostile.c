/* SPDX-License-Identifier: MIT */
/*
 * test_hostile.c - what a hostile or buggy peer can do to you.
 *
 *  - scribbler: a process writes random and adversarial values into a live
 *    segment through its own raw mapping (lane 0's control blocks, record
 *    headers at lane 0's head, lane 0's data area) while a consumer (this
 *    process) and two producers (lane 0, lane 1) run; in the ASan+UBSan
 *    build this proves no out-of-bounds access and no UB.  Asserted: no
 *    crash, no call returning past its deadline (a hang), -EBADMSG returned,
 *    lane 0 marked broken, lane 1's records all arrive complete and in order.
 *  - a record header in the last 8 bytes of the last lane's data area,
 *    where reading its length would leave the mapping (regression test of
 *    the bound check in takt_lane_rx_peek / takt_lane_recover_tail).
 *  - corrupt positions at open: the consumer and a new producer refuse the
 *    lane (-EBADMSG, broken), the other lanes work.
 *  - the documented limit: a peer that shrinks the file makes our next
 *    access to the lost pages raise SIGBUS; an open after it is -EBADMSG.
 *
 * TR_HOSTILE_SECONDS sets the scribbling time (default 3; TAKT_LONG=1: 30).
 */
#include "tr_common.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h" /* struct takt_channel: where the mapping lies */
#include "layout.h"

TR_SUITE(hostile, .timeout = 0);

#define CAP 4096u
#define MAXREC 256u

struct raw {
	uint8_t *base;
	size_t size;
	int fd;
};

static void raw_map(const char *name, struct raw *r)
{
	char obj[TAKT_NAME_MAX + 16];
	snprintf(obj, sizeof obj, "/takt.%s", name);
	r->fd = shm_open(obj, O_RDWR, 0);
	cr_assert_geq(r->fd, 0);
	struct stat st;
	cr_assert_eq(fstat(r->fd, &st), 0);
	r->size = (size_t)st.st_size;
	r->base = mmap(NULL, r->size, PROT_READ | PROT_WRITE, MAP_SHARED, r->fd, 0);
	cr_assert_neq(r->base, MAP_FAILED);
}

static struct takt_seg_lane *lane_ctrl(const struct raw *r, unsigned k, uint64_t cap)
{
	return (struct takt_seg_lane *)(r->base + TAKT_LANES_OFFSET + k * takt_lane_stride(cap));
}

static uint8_t *lane_data(const struct raw *r, unsigned k, uint64_t cap)
{
	return (uint8_t *)lane_ctrl(r, k, cap) + TAKT_LANE_DATA_OFFSET;
}

struct hshared {
	_Atomic int stop;       /* the scribbling time is over */
	_Atomic int scribbling; /* phase 2: control blocks too */
	_Atomic uint64_t a_sent, a_badmsg, b_sent;
	_Atomic int failed;
	char why[256];
};

static void hfail(struct hshared *h, const char *msg, int rc)
{
	int z = 0;
	if (atomic_compare_exchange_strong(&h->failed, &z, 1))
		snprintf(h->why, sizeof h->why, "%s: %d (%s)", msg, rc, takt_strerror(rc));
	_exit(3);
}

static double slack(void)
{
#if defined(__SANITIZE_ADDRESS__)
	return 8.0;
#else
	return 3.0;
#endif
}

static void check_late(struct hshared *h, uint64_t deadline, const char *what)
{
	if (takt_now_ns() > deadline + (uint64_t)(slack() * 1e9))
		hfail(h, what, -ETIMEDOUT);
}

/* Producer on lane `want`: records {stream=lane, seq}; lane 1 ends with a
 * type-99 end marker. */
static void producer_proc(const char *name, struct hshared *h, unsigned want)
{
	takt_producer *p;
	int rc = takt_producer_open(name, &p);
	if (rc != 0 || takt_producer_lane(p) != want)
		hfail(h, "producer open", rc);
	takt_producer_set_spin_ns(p, 0);
	uint8_t buf[MAXREC];
	uint64_t seq = 0;
	bool broken = false;
	while (!atomic_load(&h->stop)) {
		if (broken) {
			/* take the lane over again: the takeover walk runs over
			 * whatever the scribbler left, and may refuse it */
			takt_producer_close(p);
			for (;;) {
				rc = takt_producer_open(name, &p);
				if (rc == 0 && takt_producer_lane(p) != want) {
					/* lane `want` refused as corrupted and passed
					 * over for a free healthy one (the other
					 * producer has finished): not ours, retry */
					takt_producer_close(p);
					rc = -EBADMSG;
				}
				if (rc == 0 || atomic_load(&h->stop))
					break;
				if (rc != -EBADMSG)
					hfail(h, "producer reopen", rc);
				tr_yield();
			}
			if (rc != 0)
				_exit(0);
			takt_producer_set_spin_ns(p, 0);
			broken = false;
			continue;
		}
		size_t len = tr_rec_len(want, seq, MAXREC);
		tr_rec_make(buf, len, (struct tr_rec_id){want, 0, seq});
		uint64_t dl = takt_deadline_in(20 * 1000 * 1000);
		rc = takt_send(p, 1, buf, len, dl);
		check_late(h, dl, "takt_send returned past its deadline");
		if (rc == 0) {
			seq++;
			atomic_store(want ? &h->b_sent : &h->a_sent, seq);
		} else if (rc == -EBADMSG && want == 0) {
			/* the scribbled lane: broken from now on, and says so */
			atomic_fetch_add(&h->a_badmsg, 1);
			broken = true;
			if (takt_try_send(p, 1, buf, len) != -EBADMSG)
				hfail(h, "a broken lane accepted a send", 0);
		} else if (rc != -ETIMEDOUT && rc != -EAGAIN) {
			hfail(h, want ? "lane 1 send" : "lane 0 send", rc);
		}
	}
	if (want == 1) {
		uint64_t dl = takt_deadline_in(10ull * 1000000000);
		rc = takt_send(p, 99, &seq, sizeof seq, dl);
		if (rc != 0)
			hfail(h, "end marker", rc);
	}
	takt_producer_close(p);
	_exit(0);
}

static void scribbler_proc(const char *name, struct hshared *h, uint64_t seed)
{
	struct raw r;
	raw_map(name, &r);
	struct takt_seg_lane *l0 = lane_ctrl(&r, 0, CAP);
	uint8_t *d0 = lane_data(&r, 0, CAP);
	uint64_t writes = 0;
	while (!atomic_load(&h->stop)) {
		uint64_t x = tr_rand(&seed);
		/* until phase 2 the published head is the consumer's own */
		uint64_t head = atomic_load_explicit(&l0->head, memory_order_relaxed);
		uint64_t idx = head & (CAP - 1) & ~7ull;
		struct takt_rec_header *at = (struct takt_rec_header *)(d0 + idx);
		/* lane 0 only: the last 8 bytes hold a commit word at most */
		unsigned action = (unsigned)(x % 10);
		if (idx > CAP - TAKT_REC_HEADER && action <= 3)
			action = 2;
		switch (action) {
		case 0: /* a committed-looking header with an impossible length */
			atomic_store(&at->len, (uint32_t)(x >> 32) | MAXREC);
			atomic_store(&at->commit, head | TAKT_COMMIT_BIT);
			break;
		case 1: /* a length that runs past the end of the data area */
			atomic_store(&at->len, (uint32_t)(CAP - idx));
			atomic_store(&at->commit, head | TAKT_COMMIT_BIT);
			break;
		case 2: /* padding at index 0, or two in a row */
			atomic_store(&at->commit, (head & ~(uint64_t)(CAP - 1)) | 3u);
			*(_Atomic uint64_t *)d0 = (head & ~(uint64_t)(CAP - 1)) | 3u;
			break;
		case 3: /* a well-formed but wrong record */
			atomic_store(&at->len, (uint32_t)(x >> 40) % MAXREC);
			atomic_store(&at->commit, head | TAKT_COMMIT_BIT);
			break;
		case 4:
		case 5: /* random bytes anywhere in lane 0's data area */
			for (int i = 0; i < 8; i++)
				d0[(x >> (8 * i)) % CAP] ^= (uint8_t)(x >> 3);
			break;
		case 6: /* random 8-byte words at aligned places */
			*(_Atomic uint64_t *)(d0 + ((x >> 16) % (CAP / 8)) * 8) = tr_rand(&seed);
			break;
		default: /* lane 0's control blocks (phase 2) */
			if (!atomic_load(&h->scribbling))
				break;
			switch ((x >> 8) % 8) {
			case 0: atomic_store(&l0->head, tr_rand(&seed)); break;
			case 1: atomic_store(&l0->head, head + 8 * ((x >> 20) % 1024)); break;
			case 2: atomic_store(&l0->tail, tr_rand(&seed)); break;
			case 3: atomic_store(&l0->tx_doorbell, (uint32_t)x); break;
			case 4: atomic_store(&l0->broken, 0); break;
			case 5: atomic_store(&l0->records_sent, UINT64_MAX); break;
			case 6: atomic_store(&l0->head, UINT64_MAX - 7); break;
			default: atomic_store(&l0->epoch, (uint32_t)x); break;
			}
		}
		if ((++writes & 63) == 0)
			tr_yield();
	}
	_exit(0);
}

Test(hostile, scribbler)
{
	double secs = (double)tr_env_u64("TR_HOSTILE_SECONDS", tr_long() ? 30 : 3);
	uint64_t seed = tr_seed();
	const char *n = tr_name("scrib");
	tr_create(n, CAP, 2, MAXREC);
	struct hshared *h = tr_shared(sizeof *h);
	takt_consumer *c;
	cr_assert_eq(takt_consumer_open(n, &c), 0);
	takt_consumer_set_spin_ns(c, 0);
	pid_t pa = fork();
	if (pa == 0) {
		tr_child_setup();
		producer_proc(n, h, 0);
	}
	/* lane 0 first: the child reports its lane; wait until it holds it */
	takt_channel *ch = takt_consumer_channel(c);
	uint64_t mask = 0;
	double t_open = tr_now();
	while (takt_producers_alive(ch, &mask) >= 0 && !(mask & 1)) {
		cr_assert_lt(tr_now() - t_open, 10.0, "producer A never opened");
		tr_yield();
	}
	pid_t pb = fork();
	if (pb == 0) {
		tr_child_setup();
		producer_proc(n, h, 1);
	}
	/* and B on lane 1 before anything is scribbled: a reopening A passes
	 * over a corrupted lane 0 to any free lane */
	while (takt_producers_alive(ch, &mask) >= 0 && !(mask & 2)) {
		cr_assert_lt(tr_now() - t_open, 10.0, "producer B never opened");
		tr_yield();
	}
	pid_t ps = fork();
	if (ps == 0) {
		tr_child_setup();
		scribbler_proc(n, h, seed);
	}

	uint8_t buf[MAXREC];
	uint64_t next_b = 0, lane0 = 0, badmsg = 0, reopens = 0;
	double t0 = tr_now(), last_open = t0;
	bool end = false;
	unsigned i = 0;
	while (!end) {
		double now = tr_now();
		if (now - t0 > secs / 2)
			atomic_store(&h->scribbling, 1);
		if (now - t0 > secs)
			atomic_store(&h->stop, 1);
		cr_assert_lt(now - t0, secs + 30 * slack(), "lane 1's end marker never came");
		cr_assert_eq(atomic_load(&h->failed), 0, "%s", h->why);
		if (tr_env_u64("TR_VERBOSE", 0) && (i & 0xfffff) == 0) {
			struct takt_lane_stats s0, s1;
			takt_lane_stats_get(ch, 0, &s0);
			takt_lane_stats_get(ch, 1, &s1);
			fprintf(stderr, "%.2f: lane0 h %" PRIu64 " t %" PRIu64 " br %u; lane1 h %" PRIu64
				" t %" PRIu64 " br %u; next_b %" PRIu64 " lane0 %" PRIu64 "\n",
				now - t0, s0.head, s0.tail, s0.broken, s1.head, s1.tail, s1.broken, next_b,
				lane0);
		}
		struct takt_msg m;
		const uint8_t *data = buf;
		int r;
		uint64_t dl = 0;
		switch (i++ % 4) {
		case 0:
			dl = takt_deadline_in(10 * 1000 * 1000);
			r = takt_recv(c, buf, sizeof buf, &m, dl);
			check_late(h, dl, "takt_recv returned past its deadline");
			break;
		case 1:
			r = takt_peek(c, &m);
			if (r >= 0) {
				memcpy(buf, m.data, m.len); /* copy what you must trust */
				cr_assert_eq(takt_release(c), 0);
			}
			break;
		case 2: {
			struct takt_msg ms[1];
			r = takt_try_recv_batch(c, ms, 1, buf, sizeof buf);
			if (r == 1) {
				m = ms[0];
				data = ms[0].data;
				r = (int)m.len;
			}
			break;
		}
		default:
			r = takt_try_recv(c, buf, sizeof buf, &m);
		}
		if (r == -EAGAIN || r == -ETIMEDOUT) {
			tr_yield();
			continue;
		}
		if (r == -EBADMSG) {
			if (badmsg++ == 0 && !atomic_load(&h->scribbling)) {
				struct takt_lane_stats st;
				cr_assert_eq(takt_lane_stats_get(ch, 0, &st), 0);
				cr_assert_eq(st.broken, 1u, "lane 0 marked broken");
				cr_assert_eq(takt_lane_stats_get(ch, 1, &st), 0);
				cr_assert_eq(st.broken, 0u, "lane 1 not");
			}
			continue;
		}
		if (now - last_open > 0.1 && !atomic_load(&h->stop)) {
			/* a new consumer re-validates lane 0 from the published
			 * head and reads on into the scribbled data */
			takt_consumer_close(c);
			cr_assert_eq(takt_consumer_open(n, &c), 0);
			takt_consumer_set_spin_ns(c, 0);
			ch = takt_consumer_channel(c);
			last_open = now;
			reopens++;
		}
		cr_assert_geq(r, 0, "receive = %d (%s)", r, takt_strerror(r));
		cr_assert_leq(m.len, MAXREC, "a record longer than max_record was delivered");
		cr_assert_lt(m.lane, 2u);
		if (m.lane == 0) {
			lane0++; /* whatever it holds: wrong but well-formed is possible */
			continue;
		}
		if (m.type == 99) {
			end = true;
			continue;
		}
		struct tr_rec_id id;
		const char *bad = tr_rec_check(data, m.len, &id);
		cr_assert_null(bad, "lane 1 record %" PRIu64 ": %s", next_b, bad);
		cr_assert_eq(id.stream, 1u);
		cr_assert_eq(id.seq, next_b, "lane 1 out of order: %" PRIu64 " != %" PRIu64, id.seq,
			     next_b);
		next_b++;
	}
	cr_assert_eq(next_b, atomic_load(&h->b_sent), "every lane 1 record arrived");
	cr_assert_gt(next_b, 100, "lane 1 kept flowing");
	cr_assert_gt(badmsg, 0, "the consumer reported the corruption");
	cr_assert_eq(takt_try_recv(c, buf, sizeof buf, NULL), -EAGAIN);
	struct takt_lane_stats st;
	cr_assert_eq(takt_lane_stats_get(ch, 1, &st), 0);
	cr_assert_eq(st.broken, 0u, "lane 1 untouched");
	pid_t kids[3] = {pa, pb, ps};
	for (int k = 0; k < 3; k++) {
		int s = tr_wait_timeout(kids[k], 10 * slack());
		cr_assert(WIFEXITED(s) && WEXITSTATUS(s) == 0, "child %d: %s %s", k, tr_status(s),
			  h->why);
	}
	/* the scribbler may have cleared the flag; the consumer's own verdict
	 * is that it skips lane 0: a fresh record there stays unread */
	fprintf(stderr, "scribbler: %.0f s, lane 1 %" PRIu64 " records, lane 0 %" PRIu64
		" delivered / %" PRIu64 " sent, %" PRIu64 " -EBADMSG (%" PRIu64
		" consumer reopens), producer A saw %" PRIu64 "\n",
		secs, next_b, lane0, (uint64_t)atomic_load(&h->a_sent), badmsg, reopens,
		(uint64_t)atomic_load(&h->a_badmsg));
	takt_consumer_close(c);
	tr_unshared(h, sizeof *h);
}

/* A commit word in the last 8 bytes of the last lane, whose data area ends
 * exactly at the end of the mapping (9 lanes of 4096: 40960 bytes). */
Test(hostile, header_at_end_of_mapping)
{
	const char *n = tr_name("edge");
	tr_create(n, 4096, 9, 1024);
	struct raw r;
	raw_map(n, &r);
	cr_assert_eq(r.size, takt_total_size(9, 4096));
	cr_assert_eq((size_t)(lane_data(&r, 8, 4096) + 4096 - r.base), r.size,
		     "the last data area ends the segment");
	struct takt_seg_lane *l8 = lane_ctrl(&r, 8, 4096);
	uint64_t pos = 4096 - 8;
	atomic_store(&l8->head, pos);
	atomic_store(&l8->consumed, pos);
	atomic_store(&l8->tail, pos);
	*(_Atomic uint64_t *)(lane_data(&r, 8, 4096) + pos) = pos | TAKT_COMMIT_BIT;
	munmap(r.base, r.size);
	close(r.fd);

	/* A guard page right after the consumer's mapping, so that reading
	 * past it faults instead of reading whatever mapping is adjacent:
	 * leave a hole of the mapping's size just below a PROT_NONE page;
	 * mmap places a mapping at the top of the highest hole that fits, so
	 * fill the higher holes it finds first with placeholders and retry. */
	size_t total = takt_total_size(9, 4096);
	uint8_t *x = mmap(NULL, total + 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(x, MAP_FAILED);
	munmap(x, total);
	uint8_t *guard = x + total;
	void *placeholders[32];
	int n_ph = 0;
	takt_consumer *c;
	takt_channel *cch;
	for (;;) {
		cr_assert_eq(takt_consumer_open(n, &c), 0);
		cch = takt_consumer_channel(c);
		if (cch->base + cch->map_size == guard || n_ph == 32)
			break;
		void *at = cch->base;
		takt_consumer_close(c);
		void *ph = mmap(at, total, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
				-1, 0);
		cr_assert_eq(ph, at);
		placeholders[n_ph++] = ph;
	}
	if (cch->base + cch->map_size != guard)
		cr_log_warn("the mapping did not land below the guard page: the test is weaker");
	uint8_t buf[1024];
	cr_assert_eq(takt_try_recv(c, buf, sizeof buf, NULL), -EBADMSG);
	cr_assert_eq(takt_try_recv(c, buf, sizeof buf, NULL), -EAGAIN, "reported once, then skipped");
	struct takt_lane_stats st;
	cr_assert_eq(takt_lane_stats_get(takt_consumer_channel(c), 8, &st), 0);
	cr_assert_eq(st.broken, 1u);
	takt_consumer_close(c);

	/* the producer's takeover walk meets the same word */
	takt_producer *p[9];
	for (int k = 0; k < 8; k++)
		cr_assert_eq(takt_producer_open(n, &p[k]), 0);
	takt_producer *p8;
	cr_assert_eq(takt_producer_open(n, &p8), -EBADMSG);
	for (int k = 0; k < 8; k++)
		takt_producer_close(p[k]);
	munmap(guard, 4096);
	for (int i = 0; i < n_ph; i++)
		munmap(placeholders[i], total);
}

/* Corrupt positions found at open: those lanes are marked broken and passed
 * over, the others work. */
Test(hostile, corrupt_positions_at_open)
{
	const char *n = tr_name("pos");
	tr_create(n, CAP, 3, MAXREC);
	struct raw r;
	raw_map(n, &r);
	atomic_store(&lane_ctrl(&r, 0, CAP)->head, 12);                /* misaligned */
	atomic_store(&lane_ctrl(&r, 1, CAP)->tail, 10 * (uint64_t)CAP); /* beyond a lap */
	/* lanes 0 and 1 fail the takeover walk: marked broken and passed
	 * over, the open gets healthy lane 2 */
	takt_producer *p1, *p2;
	cr_assert_eq(takt_producer_open(n, &p2), 0);
	cr_assert_eq(takt_producer_lane(p2), 2u);
	/* with lane 2 taken, every free lane is corrupted: -EBADMSG, not -EBUSY */
	cr_assert_eq(takt_producer_open(n, &p1), -EBADMSG);
	/* with lanes 0 and 1 held too (raw OFD locks), none is free: -EBUSY */
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = TAKT_SLOT_LANE(0),
			   .l_len = 2};
	cr_assert_eq(fcntl(r.fd, F_OFD_SETLK, &fl), 0);
	cr_assert_eq(takt_producer_open(n, &p1), -EBUSY);
	fl.l_type = F_UNLCK;
	cr_assert_eq(fcntl(r.fd, F_OFD_SETLK, &fl), 0);
	cr_assert_eq(takt_try_send(p2, 1, "ok", 3), 0);
	takt_consumer *c;
	cr_assert_eq(takt_consumer_open(n, &c), 0);
	char buf[8];
	struct takt_msg m;
	cr_assert_eq(takt_try_recv(c, buf, sizeof buf, &m), 3);
	cr_assert_eq(m.lane, 2u);
	cr_assert_str_eq(buf, "ok");
	takt_channel *cc = takt_consumer_channel(c);
	struct takt_lane_stats st;
	for (unsigned k = 0; k < 3; k++) {
		cr_assert_eq(takt_lane_stats_get(cc, k, &st), 0);
		cr_assert_eq(st.broken, k < 2 ? 1u : 0u, "lane %u", k);
	}
	takt_consumer_close(c);
	takt_producer_close(p2);
	munmap(r.base, r.size);
	close(r.fd);
}

/* The limit: shrinking the file under a live mapping makes the next access
 * to the lost pages raise SIGBUS (the kernel's rule for shared mappings;
 * takt cannot catch it without a signal handler, which a library must not
 * install).  Opening the shrunk segment is refused. */
Test(hostile, truncation_is_sigbus)
{
	const char *n = tr_name("trunc");
	tr_create(n, CAP, 1, MAXREC);
	int go[2], ready[2];
	cr_assert_eq(pipe(go), 0);
	cr_assert_eq(pipe(ready), 0);
	pid_t pid = fork();
	if (pid == 0) {
		tr_child_setup();
		takt_consumer *c;
		if (takt_consumer_open(n, &c) != 0)
			_exit(2);
		char b = 0;
		if (write(ready[1], &b, 1) != 1)
			_exit(4);
		if (read(go[0], &b, 1) != 1)
			_exit(3);
		uint8_t buf[MAXREC];
		takt_try_recv(c, buf, sizeof buf, NULL); /* touches the data area */
		_exit(0);
	}
	struct raw r;
	raw_map(n, &r);
	char b;
	cr_assert_eq(read(ready[0], &b, 1), 1, "the child's consumer did not open");
	cr_assert_eq(ftruncate(r.fd, 0), 0);
	cr_assert_eq(write(go[1], "x", 1), 1);
	int st = tr_wait_timeout(pid, 10);
#if defined(__SANITIZE_ADDRESS__)
	/* ASan reports the SIGBUS ("BUS on unknown address") and exits 1 */
	bool bus = (WIFSIGNALED(st) && WTERMSIG(st) == SIGBUS) || (WIFEXITED(st) && WEXITSTATUS(st) == 1);
#else
	bool bus = WIFSIGNALED(st) && WTERMSIG(st) == SIGBUS;
#endif
	cr_assert(bus, "expected SIGBUS, got %s", tr_status(st));
	takt_channel *ch;
	cr_assert_eq(takt_channel_open(n, 0, &ch), -EAGAIN, "size 0 reads as 'not ready'");
	/* shrunk but not emptied: the header is there, the file too short */
	const char *n2 = tr_name("trunc2");
	tr_create(n2, CAP, 1, MAXREC);
	struct raw r2;
	raw_map(n2, &r2);
	cr_assert_eq(ftruncate(r2.fd, 4096), 0);
	cr_assert_eq(takt_channel_open(n2, 0, &ch), -EBADMSG, "the file is shorter than its header says");
	munmap(r2.base, r2.size);
	close(r2.fd);
	munmap(r.base, r.size);
	close(r.fd);
}
