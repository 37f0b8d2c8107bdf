/* SPDX-License-Identifier: MIT */
/*
 * test_taktd.c - taktd end to end: a real taktd (the built binary) per test,
 * a client written from docs/PROTOCOL.md, on both event loop backends.
 * Every test exists twice: suite "io_uring" (skipped, saying so, where
 * io_uring is unavailable) and suite "epoll".  Suite "fallback" starts
 * taktd without --backend, through no_uring.c where io_uring must look
 * unavailable.  A passing test ends with td_finish: taktd must stop cleanly
 * on SIGTERM and no sanitizer may have reported anything in it.
 */
#define _GNU_SOURCE

#include <criterion/criterion.h>
#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <grp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"
#include "layout.h" /* a record header, to corrupt a channel */
#include "tclient.h"

static void suite_fini(void)
{
	td_cleanup();
	tt_fini();
}
TestSuite(io_uring, .init = tt_init, .fini = suite_fini);
TestSuite(epoll, .init = tt_init, .fini = suite_fini);

#define TD_TEST(name, ...)                                                                         \
	static void name##_body(const char *backend);                                              \
	Test(io_uring, name, ##__VA_ARGS__)                                                       \
	{                                                                                          \
		td_require_backend("io_uring");                                                    \
		name##_body("io_uring");                                                           \
		td_finish();                                                                       \
	}                                                                                          \
	Test(epoll, name, ##__VA_ARGS__)                                                           \
	{                                                                                          \
		name##_body("epoll");                                                              \
		td_finish();                                                                       \
	}                                                                                          \
	static void name##_body(const char *backend)

static struct td T;

static const struct tc_attach_opts CREATE_SMALL = {
	.flags = A_CREATE, .lanes = 2, .capacity = 1 << 16, .max_record = 1024,
};

static void ready_client(struct tc *c)
{
	cr_assert_eq(tc_open(c, T.sock), 0);
	tc_hello(c, 1 << 20);
}

/* ---- frame types -------------------------------------------------------- */

TD_TEST(hello_ping_bye)
{
	td_start(&T, backend, NULL);
	struct tc c;
	ready_client(&c);
	struct tc_frame f;
	cr_assert_eq(tc_frame(&c, T_PING, 0, 0, 4242, "abcdef", 6), 0);
	tc_expect(&c, T_PONG, &f);
	cr_assert_eq(f.arg, 4242);
	cr_assert_eq(f.blen, 6);
	cr_assert_eq(memcmp(f.body, "abcdef", 6), 0);
	cr_assert_eq(tc_frame(&c, T_BYE, 0, 0, 0, NULL, 0), 0);
	tc_expect(&c, T_BYE, NULL);
	tc_expect_eof(&c);
	tc_close(&c);
}

TD_TEST(produce_data_and_batch_acked_in_ring)
{
	td_start(&T, backend, NULL);
	const char *name = tt_name();
	struct tc c;
	ready_client(&c);
	int id = tc_attach(&c, name, ROLE_PRODUCE, &CREATE_SMALL);
	cr_assert_gt(id, 0, "attach failed: %d", id);
	/* 10 single DATA frames, then a batch of 5 */
	for (uint32_t i = 0; i < 10; i++) {
		uint64_t v = i;
		cr_assert_eq(tc_data(&c, (uint32_t)id, 100 + i, &v, 8), 0);
	}
	uint8_t b[5 * 16];
	for (uint32_t i = 0; i < 5; i++) {
		le32(b + 16 * i, 8);
		le32(b + 16 * i + 4, 110 + i);
		le64(b + 16 * i + 8, 10 + i);
	}
	cr_assert_eq(tc_frame(&c, T_DATA_BATCH, 0, (uint32_t)id, 5, b, sizeof(b)), 0);
	cr_assert_eq(tc_wait_ack(&c, (uint32_t)id, 15, 10000), 15);
	/* Everything acknowledged is in the ring, in order. */
	takt_consumer *cons = tt_consumer(name);
	for (uint32_t i = 0; i < 15; i++) {
		uint64_t v;
		struct takt_msg m;
		cr_assert_eq(takt_recv(cons, &v, 8, &m, takt_deadline_in(2000000000)), 8);
		cr_assert_eq(v, i);
		cr_assert_eq(m.type, 100 + i);
	}
	/* DETACH answers DETACHED with the committed count. */
	struct tc_frame f;
	cr_assert_eq(tc_frame(&c, T_DETACH, 0, (uint32_t)id, 9, NULL, 0), 0);
	tc_expect(&c, T_DETACHED, &f);
	cr_assert_eq(f.arg, 9);
	cr_assert_eq(rd64(f.body), 15);
	/* The id is gone: DATA on it is fatal. */
	cr_assert_eq(tc_data(&c, (uint32_t)id, 1, "x", 1), 0);
	tc_expect_error(&c, E_BAD_CHANNEL, true);
	takt_consumer_close(cons);
	tc_close(&c);
}

static void produce_native(const char *name, uint32_t from, uint32_t n)
{
	takt_producer *p = tt_producer(name);
	for (uint32_t i = from; i < from + n; i++) {
		uint64_t v = i;
		cr_assert_eq(takt_send(p, 7, &v, 8, takt_deadline_in(5000000000ull)), 0);
	}
	takt_producer_close(p);
}

/* Read records of chan until n seen; checks 0,1,2... order; counts drops. */
static uint64_t consume_seq(struct tc *c, uint32_t chan, uint64_t first, uint64_t n, uint64_t *drops)
{
	uint64_t next = first, got = 0, dropped = 0;
	while (got + dropped < n) {
		struct tc_frame f;
		int r = tc_read(c, &f, 10000);
		cr_assert_eq(r, 1, "stream ended after %llu records", (unsigned long long)got);
		if (f.type == T_DROPPED) {
			cr_assert(drops, "unexpected DROPPED");
			cr_assert_eq(f.chan, chan);
			dropped += rd64(f.body);
			*drops = rd64(f.body + 8);
			continue;
		}
		if (f.type == T_ERROR)
			cr_assert_fail("ERROR %u: %.*s", rd32(f.body), (int)f.blen - 8, (const char *)f.body + 8);
		cr_assert(f.type == T_DATA || f.type == T_DATA_BATCH, "type 0x%x", f.type);
		cr_assert_eq(f.chan, chan);
		uint32_t cnt = f.type == T_DATA ? 1 : f.arg;
		const uint8_t *p = f.body;
		for (uint32_t k = 0; k < cnt; k++) {
			uint32_t len = 8, type = f.arg;
			if (f.type == T_DATA_BATCH) {
				len = rd32(p);
				type = rd32(p + 4);
				p += 8;
			}
			cr_assert_eq(len, 8);
			cr_assert_eq(type, 7);
			uint64_t v = rd64(p);
			p += len;
			if (drops)
				cr_assert_geq(v, next, "order broken: %llu < %llu", (unsigned long long)v,
					      (unsigned long long)next);
			else
				cr_assert_eq(v, next, "got %llu, expected %llu", (unsigned long long)v,
					     (unsigned long long)next);
			next = v + 1;
			got++;
		}
	}
	return got;
}

TD_TEST(consume_fan_out)
{
	td_start(&T, backend, NULL);
	const char *name = tt_name();
	tt_create(name, 1 << 16, 1, 256);
	struct tc a, b;
	ready_client(&a);
	ready_client(&b);
	int ida = tc_attach(&a, name, ROLE_CONSUME, NULL);
	int idb = tc_attach(&b, name, ROLE_CONSUME, NULL);
	cr_assert_gt(ida, 0);
	cr_assert_gt(idb, 0);
	produce_native(name, 0, 20000);
	cr_assert_eq(consume_seq(&a, (uint32_t)ida, 0, 20000, NULL), 20000);
	cr_assert_eq(consume_seq(&b, (uint32_t)idb, 0, 20000, NULL), 20000);
	struct tc_frame f;
	cr_assert_eq(tc_frame(&a, T_DETACH, 0, (uint32_t)ida, 5, NULL, 0), 0);
	tc_expect(&a, T_DETACHED, &f);
	cr_assert_eq(rd64(f.body), 20000);
	cr_assert_eq(rd64(f.body + 8), 0);
	tc_close(&a);
	tc_close(&b);
}

TD_TEST(backpressure_full_ring_loses_nothing)
{
	td_start(&T, backend, NULL);
	const char *name = tt_name();
	tt_create(name, 4096, 1, 64);
	struct tc c;
	ready_client(&c);
	int id = tc_attach(&c, name, ROLE_PRODUCE, NULL);
	cr_assert_gt(id, 0);
	/* 2000 records of 8 bytes (24 bytes each in the ring): far more than
	 * 4096 bytes.  One send, so the socket buffer surely holds them all. */
	static uint8_t frames[2000 * 24];
	for (uint32_t i = 0; i < 2000; i++) {
		uint8_t *f = frames + 24 * i;
		le32(f, 24);
		le16(f + 4, T_DATA);
		le16(f + 6, 0);
		le32(f + 8, (uint32_t)id);
		le32(f + 12, 7);
		le64(f + 16, i);
	}
	cr_assert_eq(tc_send(&c, frames, sizeof(frames)), 0);
	uint64_t acked = tc_wait_ack(&c, (uint32_t)id, 2000, 500);
	cr_assert_lt(acked, 2000, "ring of 4096 bytes cannot hold 2000 records");
	cr_assert_leq(acked, 4096 / 24 + 1);
	/* Drain: the rest flows, nothing lost, order kept. */
	takt_consumer *cons = tt_consumer(name);
	for (uint64_t i = 0; i < 2000; i++) {
		uint64_t v;
		cr_assert_eq(takt_recv(cons, &v, 8, NULL, takt_deadline_in(5000000000ull)), 8,
			     "record %llu missing", (unsigned long long)i);
		cr_assert_eq(v, i);
	}
	cr_assert_eq(tc_wait_ack(&c, (uint32_t)id, 2000, 10000), 2000);
	takt_consumer_close(cons);
	tc_close(&c);
}

TD_TEST(slow_consumer_drop_oldest)
{
	td_start(&T, backend, NULL);
	const char *name = tt_name();
	tt_create(name, 1 << 16, 1, 64);
	struct tc c;
	ready_client(&c);
	int one = 4096;
	setsockopt(c.fd, SOL_SOCKET, SO_RCVBUF, &one, sizeof(one));
	struct tc_attach_opts o = { .slow = SLOW_DROP_OLDEST, .queue_limit = 4096 };
	int id = tc_attach(&c, name, ROLE_CONSUME, &o);
	cr_assert_gt(id, 0);
	const uint32_t n = 200000;
	produce_native(name, 0, n); /* the client reads nothing meanwhile */
	uint64_t total_drops = 0;
	uint64_t got = consume_seq(&c, (uint32_t)id, 0, n, &total_drops);
	cr_assert_gt(total_drops, 0, "expected drops");
	cr_assert_eq(got + total_drops, n, "got %llu + dropped %llu != %u", (unsigned long long)got,
		     (unsigned long long)total_drops, n);
	tc_close(&c);
}

TD_TEST(slow_consumer_disconnect)
{
	td_start(&T, backend, NULL);
	const char *name = tt_name();
	tt_create(name, 1 << 16, 1, 64);
	struct tc c;
	ready_client(&c);
	int one = 4096;
	setsockopt(c.fd, SOL_SOCKET, SO_RCVBUF, &one, sizeof(one));
	struct tc_attach_opts o = { .slow = SLOW_DISCONNECT, .queue_limit = 4096 };
	int id = tc_attach(&c, name, ROLE_CONSUME, &o);
	cr_assert_gt(id, 0);
	produce_native(name, 0, 200000);
	/* Read everything: data, then the fatal SLOW_CONSUMER error, then EOF. */
	for (;;) {
		struct tc_frame f;
		int r = tc_read(&c, &f, 10000);
		cr_assert_eq(r, 1, "no SLOW_CONSUMER error before EOF");
		if (f.type == T_ERROR) {
			cr_assert_eq(rd32(f.body), E_SLOW_CONSUMER);
			tc_check_errno(&f);
			cr_assert(f.flags & F_FATAL);
			break;
		}
	}
	tc_expect_eof(&c);
	tc_close(&c);
}

/* ---- error paths ---------------------------------------------------------- */

static void expect_fatal_after(const void *bytes, size_t len, uint32_t code, bool hello_first,
			       bool shut_wr)
{
	struct tc c;
	cr_assert_eq(tc_open(&c, T.sock), 0);
	if (hello_first)
		tc_hello(&c, 1 << 20);
	cr_assert_eq(tc_send(&c, bytes, len), 0);
	if (shut_wr)
		shutdown(c.fd, SHUT_WR);
	tc_expect_error(&c, code, true);
	tc_close(&c);
}

static void frame_bytes(uint8_t *out, uint32_t len, uint16_t type, uint16_t flags, uint32_t chan,
			uint32_t arg)
{
	le32(out, len);
	le16(out + 4, type);
	le16(out + 6, flags);
	le32(out + 8, chan);
	le32(out + 12, arg);
}

TD_TEST(protocol_errors_close_only_that_connection)
{
	td_start(&T, backend, NULL);
	/* A bystander that must keep working throughout. */
	struct tc ok;
	ready_client(&ok);
	uint8_t b[64] = { 0 };

	frame_bytes(b, 16, T_PING, 0, 0, 1); /* before HELLO */
	expect_fatal_after(b, 16, E_STATE, false, false);
	frame_bytes(b, 16 + 8, T_HELLO, 0, 0, 1); /* bad version */
	le16(b + 16, 99);
	le32(b + 20, 1 << 20);
	expect_fatal_after(b, 24, E_VERSION, false, false);
	frame_bytes(b, 8, T_PING, 0, 0, 1); /* length below the header */
	expect_fatal_after(b, 16, E_BAD_FRAME, true, false);
	frame_bytes(b, 0x7fffffff, T_DATA, 0, 1, 1); /* oversized */
	expect_fatal_after(b, 16, E_TOO_LARGE, true, false);
	frame_bytes(b, 5000, T_HELLO, 0, 0, 1); /* oversized before HELLO */
	expect_fatal_after(b, 16, E_TOO_LARGE, false, false);
	frame_bytes(b, 16, 0x7777, 0, 0, 1); /* unknown type */
	expect_fatal_after(b, 16, E_BAD_TYPE, true, false);
	frame_bytes(b, 16, T_ACK, 0, 0, 1); /* a server-only type */
	expect_fatal_after(b, 16, E_BAD_TYPE, true, false);
	frame_bytes(b, 16, T_PING, 0x8000, 0, 1); /* reserved flags */
	expect_fatal_after(b, 16, E_BAD_FRAME, true, false);
	frame_bytes(b, 16 + 8, T_HELLO, 0, 0, 1); /* second HELLO */
	le16(b + 16, 1);
	le32(b + 20, 1 << 20);
	expect_fatal_after(b, 24, E_STATE, true, false);
	frame_bytes(b, 40, T_PING, 0, 0, 1); /* truncated frame, then EOF */
	expect_fatal_after(b, 30, E_BAD_FRAME, true, true);
	frame_bytes(b, 17, T_DATA, 0, 99, 1); /* DATA on an unknown channel */
	expect_fatal_after(b, 17, E_BAD_CHANNEL, true, false);
	frame_bytes(b, 16 + 12, T_DATA_BATCH, 0, 99, 2); /* batch that does not add up */
	expect_fatal_after(b, 28, E_BAD_FRAME, true, false);
	frame_bytes(b, 16 + 4, T_ATTACH, 0, 0, 1); /* ATTACH body too short */
	expect_fatal_after(b, 20, E_BAD_FRAME, true, false);

	struct tc_frame f;
	cr_assert_eq(tc_frame(&ok, T_PING, 0, 0, 5, "still", 5), 0);
	tc_expect(&ok, T_PONG, &f);
	cr_assert_eq(f.arg, 5);
	tc_close(&ok);
}

TD_TEST(attach_errors_are_not_fatal)
{
	td_start(&T, backend, NULL);
	const char *name = tt_name();
	struct tc c;
	ready_client(&c);
	cr_assert_eq(tc_attach(&c, name, ROLE_CONSUME, NULL), -E_NOENT);
	cr_assert_eq(tc_attach(&c, "bad/name", ROLE_PRODUCE, NULL), -E_INVALID);
	struct tc_attach_opts bad = CREATE_SMALL;
	bad.capacity = 1000; /* not a power of two */
	cr_assert_eq(tc_attach(&c, name, ROLE_PRODUCE, &bad), -E_INVALID);
	cr_assert_gt(tc_attach(&c, name, ROLE_PRODUCE, &CREATE_SMALL), 0);
	struct tc_attach_opts excl = CREATE_SMALL;
	excl.flags |= A_EXCL;
	cr_assert_eq(tc_attach(&c, name, ROLE_PRODUCE, &excl), -E_EXISTS);
	/* A native consumer holds the slot: taktd cannot consume. */
	takt_consumer *cons = tt_consumer(name);
	cr_assert_eq(tc_attach(&c, name, ROLE_CONSUME, NULL), -E_BUSY);
	takt_consumer_close(cons);
	/* Unknown DETACH id: error, not fatal. */
	cr_assert_eq(tc_frame(&c, T_DETACH, 0, 1234, 3, NULL, 0), 0);
	tc_expect_error(&c, E_BAD_CHANNEL, false);
	/* Record larger than the channel's max_record: fatal MSGSIZE. */
	int id = tc_attach(&c, name, ROLE_PRODUCE, NULL);
	cr_assert_gt(id, 0);
	static uint8_t big[2048];
	cr_assert_eq(tc_data(&c, (uint32_t)id, 1, big, sizeof(big)), 0);
	tc_expect_error(&c, E_MSGSIZE, true);
	tc_close(&c);
}

/* Fatal errors on produced records carry the errno of PROTOCOL.md §7 (the
 * record checks of tc_expect_error), after an ACK of everything before. */
TD_TEST(fatal_record_errors_carry_errno)
{
	td_start(&T, backend, NULL);
	const char *name = tt_name();
	tt_create(name, 1 << 16, 1, 64);
	struct tc c;
	/* A reserved record type in DATA: INVALID (EINVAL). */
	ready_client(&c);
	int id = tc_attach(&c, name, ROLE_PRODUCE, NULL);
	cr_assert_gt(id, 0);
	uint64_t v = 1;
	cr_assert_eq(tc_data(&c, (uint32_t)id, 7, &v, 8), 0);
	cr_assert_eq(tc_data(&c, (uint32_t)id, 0xffff0000u, &v, 8), 0);
	struct tc_frame f;
	tc_expect(&c, T_ACK, &f); /* tc_expect skips ACKs only for other types */
	cr_assert_eq(rd64(f.body), 1, "the record before the bad one is acknowledged");
	tc_expect_error(&c, E_INVALID, true);
	tc_close(&c);
	/* A DATA_BATCH whose second record exceeds max_record: MSGSIZE (EMSGSIZE). */
	ready_client(&c);
	id = tc_attach(&c, name, ROLE_PRODUCE, NULL);
	cr_assert_gt(id, 0);
	static uint8_t b[2 * 8 + 8 + 65];
	le32(b, 8);
	le32(b + 4, 7);
	le32(b + 16, 65);
	le32(b + 20, 7);
	cr_assert_eq(tc_frame(&c, T_DATA_BATCH, 0, (uint32_t)id, 2, b, sizeof(b)), 0);
	tc_expect(&c, T_ACK, &f);
	cr_assert_eq(rd64(f.body), 1);
	tc_expect_error(&c, E_MSGSIZE, true);
	tc_close(&c);
	takt_consumer *cons = tt_consumer(name);
	cr_assert_eq(takt_try_recv(cons, &v, 8, NULL), 8);
	cr_assert_eq(takt_try_recv(cons, &v, 8, NULL), 8);
	cr_assert_eq(takt_try_recv(cons, &v, 8, NULL), -EAGAIN, "a refused record is in the ring");
	takt_consumer_close(cons);
}

/* ATTACH and DETACH of a channel's only consumer in one send, many times:
 * each creates a consumer bridge and its waiter thread and stops it again
 * at once, while the thread is still starting (waiter.c: a stop must not
 * be lost between the thread's last look and its sleep). */
TD_TEST(consumer_attach_detach_churn)
{
	td_start(&T, backend, NULL);
	const char *name = tt_name();
	tt_create(name, 1 << 16, 1, 64);
	struct tc c;
	ready_client(&c);
	size_t nl = strlen(name);
	const unsigned rounds = 1500;
	for (unsigned k = 0; k < rounds; k++) {
		/* the connection's channel ids count up from 1: this one is k + 1 */
		uint8_t b[16 + 32 + 256 + 16];
		frame_bytes(b, (uint32_t)(16 + 32 + nl), T_ATTACH, 0, 0, 2 * k);
		memset(b + 16, 0, 32);
		le16(b + 16, ROLE_CONSUME);
		le16(b + 16 + 30, (uint16_t)nl);
		memcpy(b + 48, name, nl);
		frame_bytes(b + 48 + nl, 16, T_DETACH, 0, k + 1, 2 * k + 1);
		cr_assert_eq(tc_send(&c, b, 48 + nl + 16), 0);
		struct tc_frame f;
		tc_expect(&c, T_ATTACHED, &f);
		cr_assert_eq(f.chan, k + 1);
		tc_expect(&c, T_DETACHED, &f);
		cr_assert_eq(f.arg, 2 * k + 1, "round %u", k);
	}
	tc_close(&c);
}

/* ---- lifecycle ------------------------------------------------------------ */

TD_TEST(single_instance_and_stale_socket)
{
	td_start(&T, backend, NULL);
	int st = td_run_fail(&T, 10000);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 1, "second taktd: %s", tt_status_str(st));
	td_signal(&T, SIGKILL);
	td_wait(&T, 5000);
	cr_assert_eq(access(T.sock, F_OK), 0, "the killed taktd leaves its socket file");
	td_restart(&T, NULL); /* replaces the stale socket */
	struct tc c;
	ready_client(&c);
	tc_close(&c);
}

TD_TEST(sigterm_drains_and_exits_zero)
{
	td_start(&T, backend, NULL);
	const char *name = tt_name();
	tt_create(name, 1 << 20, 1, 64);
	struct tc p, c;
	ready_client(&p);
	ready_client(&c);
	int pid_ = tc_attach(&p, name, ROLE_PRODUCE, NULL);
	int cid = tc_attach(&c, name, ROLE_CONSUME, NULL);
	cr_assert_gt(pid_, 0);
	cr_assert_gt(cid, 0);
	const uint32_t n = 5000;
	for (uint32_t i = 0; i < n; i++) {
		uint64_t v = i;
		cr_assert_eq(tc_data(&p, (uint32_t)pid_, 7, &v, 8), 0);
	}
	cr_assert_eq(tc_wait_ack(&p, (uint32_t)pid_, n, 10000), n);
	td_signal(&T, SIGTERM);
	/* The consumer gets records taken from the ring, then BYE, then EOF; with
	 * whatever stayed in the ring, that is everything, in order. */
	uint64_t next = 0;
	for (;;) {
		struct tc_frame f;
		int r = tc_read(&c, &f, 10000);
		cr_assert_eq(r, 1, "no BYE before EOF");
		if (f.type == T_BYE)
			break;
		cr_assert(f.type == T_DATA || f.type == T_DATA_BATCH);
		uint32_t cnt = f.type == T_DATA ? 1 : f.arg;
		const uint8_t *q = f.body;
		for (uint32_t k = 0; k < cnt; k++) {
			if (f.type == T_DATA_BATCH)
				q += 8;
			cr_assert_eq(rd64(q), next);
			q += 8;
			next++;
		}
	}
	tc_expect_eof(&c);
	tc_expect(&p, T_BYE, NULL);
	int st = td_wait(&T, 10000);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "taktd: %s", tt_status_str(st));
	takt_consumer *cons = tt_consumer(name);
	uint64_t v;
	while (takt_try_recv(cons, &v, 8, NULL) == 8)
		cr_assert_eq(v, next++);
	cr_assert_eq(next, n, "records lost: %llu of %u", (unsigned long long)next, n);
	takt_consumer_close(cons);
	cr_assert_neq(access(T.sock, F_OK), 0, "socket removed on clean exit");
	tc_close(&p);
	tc_close(&c);
}

TD_TEST(sigkill_restart_loses_no_acknowledged_record)
{
	td_start(&T, backend, NULL);
	const char *name = tt_name();
	tt_create(name, 1 << 22, 1, 64);
	struct tc p;
	ready_client(&p);
	int id = tc_attach(&p, name, ROLE_PRODUCE, NULL);
	cr_assert_gt(id, 0);
	uint64_t sent = 0, acked = 0;
	/* Stream, and kill taktd mid-stream. */
	for (int round = 0; round < 50; round++) {
		uint8_t b[64 * 16];
		for (int k = 0; k < 64; k++) {
			le32(b + 16 * k, 8);
			le32(b + 16 * k + 4, 7);
			le64(b + 16 * k + 8, sent++);
		}
		cr_assert_eq(tc_frame(&p, T_DATA_BATCH, 0, (uint32_t)id, 64, b, sizeof(b)), 0);
		if (round == 25) {
			acked = tc_wait_ack(&p, (uint32_t)id, sent, 5000);
			td_signal(&T, SIGKILL);
			break;
		}
	}
	td_wait(&T, 5000);
	cr_assert_gt(acked, 0);
	/* Drain what the client still had in flight (ACKs), then EOF. */
	struct tc_frame f;
	int r;
	while ((r = tc_read(&p, &f, 5000)) == 1)
		if (f.type == T_ACK)
			acked = rd64(f.body);
	cr_assert_eq(r, 0);
	tc_close(&p);
	/* Restart, reconnect and resend from the last ACK. */
	td_restart(&T, NULL);
	ready_client(&p);
	id = tc_attach(&p, name, ROLE_PRODUCE, NULL);
	cr_assert_gt(id, 0, "re-attach after restart: %d", id);
	for (uint64_t v = acked; v < acked + 100; v++)
		cr_assert_eq(tc_data(&p, (uint32_t)id, 7, &v, 8), 0);
	cr_assert_eq(tc_wait_ack(&p, (uint32_t)id, 100, 10000), 100);
	tc_close(&p);
	/* Every acknowledged record is in the ring, in order: 0..acked-1, then the resend. */
	takt_consumer *cons = tt_consumer(name);
	uint64_t v, expect = 0;
	while (expect < acked) {
		cr_assert_eq(takt_try_recv(cons, &v, 8, NULL), 8, "acknowledged record %llu lost",
			     (unsigned long long)expect);
		cr_assert_eq(v, expect++);
	}
	/* Records committed but not yet acknowledged may precede the resend. */
	uint64_t last = acked - 1;
	int n = 0;
	while (takt_try_recv(cons, &v, 8, NULL) == 8) {
		if (v <= last)
			cr_assert_geq(v, acked, "duplicate of an acknowledged record");
		last = v;
		n++;
	}
	cr_assert_eq(last, acked + 99);
	takt_consumer_close(cons);
}

TD_TEST(idle_uses_no_cpu)
{
	td_start(&T, backend, NULL);
	const char *name = tt_name();
	tt_create(name, 1 << 16, 1, 64);
	struct tc c;
	ready_client(&c);
	int cid = tc_attach(&c, name, ROLE_CONSUME, NULL); /* a waiter thread exists */
	int pid = tc_attach(&c, name, ROLE_PRODUCE, NULL);
	cr_assert_gt(cid, 0);
	cr_assert_gt(pid, 0);
	/* Some traffic first: the loop spins briefly after activity, then
	 * arms the waiters and sleeps. */
	for (int i = 0; i < 100; i++)
		cr_assert_eq(tc_data(&c, (uint32_t)pid, 1, "ping", 4), 0);
	cr_assert_eq(tc_wait_ack(&c, (uint32_t)pid, 100, 5000), 100);
	usleep(300000);
	uint64_t t0 = td_cpu_ticks(T.pid);
	sleep(3);
	uint64_t t1 = td_cpu_ticks(T.pid);
	long hz = sysconf(_SC_CLK_TCK);
	/* No periodic wake-up at all (waiters block without a deadline and
	 * are stopped by takt_*_interrupt): allow 1% of one CPU for noise. */
	cr_assert_leq(t1 - t0, (uint64_t)(3 * hz / 100), "idle taktd used %llu ticks in 3 s",
		      (unsigned long long)(t1 - t0));
	tc_close(&c);
}

/* ---- backend choice: io_uring, else epoll ---------------------------------- */

TestSuite(fallback, .init = tt_init, .fini = suite_fini);

/* Records both ways through the running taktd: a client produces, another
 * consumes what a native producer sent, and both see the records whole. */
static void exchange_records(void)
{
	const char *in = tt_name(), *out = tt_name();
	tt_create(out, 1 << 16, 1, 64);
	struct tc p, c;
	ready_client(&p);
	ready_client(&c);
	int pid = tc_attach(&p, in, ROLE_PRODUCE, &CREATE_SMALL);
	int cid = tc_attach(&c, out, ROLE_CONSUME, NULL);
	cr_assert_gt(pid, 0, "attach producer: %d", pid);
	cr_assert_gt(cid, 0, "attach consumer: %d", cid);
	for (uint64_t v = 0; v < 100; v++)
		cr_assert_eq(tc_data(&p, (uint32_t)pid, 7, &v, 8), 0);
	cr_assert_eq(tc_wait_ack(&p, (uint32_t)pid, 100, 10000), 100);
	takt_consumer *cons = tt_consumer(in);
	for (uint64_t i = 0; i < 100; i++) {
		uint64_t v;
		cr_assert_eq(takt_recv(cons, &v, 8, NULL, takt_deadline_in(2000000000)), 8);
		cr_assert_eq(v, i);
	}
	takt_consumer_close(cons);
	produce_native(out, 0, 100);
	cr_assert_eq(consume_seq(&c, (uint32_t)cid, 0, 100, NULL), 100);
	tc_close(&p);
	tc_close(&c);
}

/* Start taktd without --backend under no_uring (io_uring_* fail with err),
 * logging at info level into its temp dir. */
static void start_without_uring(const char *err)
{
	td_prepare(&T);
	T.wrap[0] = NO_URING_BIN;
	T.wrap[1] = err;
	snprintf(T.log, sizeof(T.log), "%s/taktd.log", T.dir);
	td_start(&T, NULL, "--log-level", "info", NULL);
}

static void check_fell_back(const char *why)
{
	char want[128];
	snprintf(want, sizeof(want), "io_uring unavailable (%s); falling back to epoll", why);
	cr_assert(td_file_contains(T.log, want), "no \"%s\" in %s", want, T.log);
	cr_assert(td_file_contains(T.log, "(backend epoll,"), "taktd did not log the epoll backend");
	/* What the process really holds, not only what it says. */
	cr_assert_eq(td_count_anon_fds(T.pid, "[io_uring]"), 0);
	cr_assert_geq(td_count_anon_fds(T.pid, "[eventpoll]"), 1);
}

Test(fallback, io_uring_enosys_picks_epoll)
{
	start_without_uring("ENOSYS");
	check_fell_back(strerror(ENOSYS));
	exchange_records();
	td_finish();
}

/* EPERM is io_uring_setup's answer under sysctl kernel.io_uring_disabled=2
 * (or =1 outside io_uring_group): the same fallback. */
Test(fallback, io_uring_eperm_picks_epoll)
{
	start_without_uring("EPERM");
	check_fell_back(strerror(EPERM));
	exchange_records();
	td_finish();
}

/* A ring that can be set up but not entered (a sandbox filtering only
 * io_uring_enter) is found out at start, not at the first wait. */
Test(fallback, io_uring_enter_filtered_picks_epoll)
{
	td_require_backend("io_uring"); /* the ring must be possible to set up */
	start_without_uring("ENTER");
	check_fell_back(strerror(ENOSYS));
	exchange_records();
	td_finish();
}

/* The filter is what makes io_uring unavailable: forcing the backend under
 * it fails, and nothing falls back behind the operator's choice. */
Test(fallback, forced_io_uring_does_not_fall_back)
{
	td_prepare(&T);
	T.wrap[0] = NO_URING_BIN;
	T.wrap[1] = "ENOSYS";
	snprintf(T.log, sizeof(T.log), "%s/taktd.log", T.dir);
	snprintf(T.backend, sizeof(T.backend), "io_uring");
	int st = td_run_fail(&T, 10000);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 1, "taktd: %s", tt_status_str(st));
	cr_assert(td_file_contains(T.log, "io_uring backend unavailable"), "no error logged");
	cr_assert_neq(access(T.sock, F_OK), 0, "no socket left behind");
	td_finish(); /* (sanitizer reports of the failed start) */
}

/* Without the filter, the default is io_uring where the kernel has it. */
Test(fallback, default_is_io_uring_where_available)
{
	td_require_backend("io_uring");
	td_prepare(&T);
	snprintf(T.log, sizeof(T.log), "%s/taktd.log", T.dir);
	td_start(&T, NULL, "--log-level", "info", NULL);
	cr_assert(td_file_contains(T.log, "(backend io_uring,"), "taktd did not log io_uring");
	cr_assert_eq(td_count_anon_fds(T.pid, "[io_uring]"), 1);
	exchange_records();
	td_finish();
}

/* ---- security ------------------------------------------------------------- */

/*
 * In a child: become uid 65534 with primary gid `gid` and exactly the
 * supplementary groups groups[0..ngroups), connect, HELLO and (if name)
 * ATTACH as consumer.  Returns 0 if welcomed (*attach_rc: ATTACH's result,
 * a channel id or minus the ERROR code), else the ERROR code at HELLO
 * (*attach_rc: 1 if it was fatal and followed by EOF).
 */
static int as_peer(const char *sock, const char *name, gid_t gid, const gid_t *groups,
		   size_t ngroups, int *attach_rc)
{
	int pfd[2];
	cr_assert_eq(pipe(pfd), 0);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		close(pfd[0]);
		/* setgroups first: it needs root, as setgid does. */
		if (setgroups(ngroups, groups) || setgid(gid) || setuid(65534))
			_exit(90);
		struct tc c;
		int out[3] = { -1, 0, -1 };
		if (tc_open(&c, sock) < 0)
			_exit(91);
		uint8_t b[8];
		le16(b, 1);
		le16(b + 2, 0);
		le32(b + 4, 1 << 20);
		tc_frame(&c, T_HELLO, 0, 0, 1, b, 8);
		struct tc_frame f;
		if (tc_read(&c, &f, 5000) != 1)
			_exit(92);
		if (f.type == T_ERROR) {
			out[0] = (int)rd32(f.body);
			out[2] = f.blen >= 8 ? (int)rd32(f.body + 4) : -1;
			out[1] = (f.flags & F_FATAL) && tc_read(&c, &f, 5000) == 0;
		} else if (f.type == T_WELCOME) {
			out[0] = 0;
			out[1] = name ? tc_attach(&c, name, ROLE_CONSUME, NULL) : 0;
		}
		if (write(pfd[1], out, sizeof(out)) != sizeof(out))
			_exit(93);
		_exit(0);
	}
	close(pfd[1]);
	int out[3] = { -100, 0, -1 };
	ssize_t r = read(pfd[0], out, sizeof(out));
	close(pfd[0]);
	int st = tt_wait_child(pid);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0 && r == sizeof(out), "child: %s",
		  tt_status_str(st));
	*attach_rc = out[1];
	if (out[0] == E_DENIED)
		cr_assert_eq(out[2], EACCES, "DENIED at HELLO carries errno %d, not EACCES", out[2]);
	return out[0];
}

/* uid and gid 65534 (nobody, nogroup) without supplementary groups. */
static int as_nobody(const char *sock, const char *name, int *attach_rc)
{
	return as_peer(sock, name, 65534, NULL, 0, attach_rc);
}

TD_TEST(unauthorized_uid_refused_others_continue)
{
	cr_assert_eq(getuid(), 0, "this test runs as root (CI) to switch to uid 65534");
	td_start(&T, backend, "--socket-mode", "0666", NULL);
	const char *name = tt_name();
	struct tc p;
	ready_client(&p);
	int id = tc_attach(&p, name, ROLE_PRODUCE, &CREATE_SMALL);
	cr_assert_gt(id, 0);
	uint64_t v = 1;
	cr_assert_eq(tc_data(&p, (uint32_t)id, 7, &v, 8), 0);
	int extra;
	int code = as_nobody(T.sock, NULL, &extra);
	cr_assert_eq(code, E_DENIED, "nobody got %d", code);
	cr_assert_eq(extra, 1, "DENIED at HELLO is fatal and followed by EOF");
	v = 2;
	cr_assert_eq(tc_data(&p, (uint32_t)id, 7, &v, 8), 0);
	cr_assert_eq(tc_wait_ack(&p, (uint32_t)id, 2, 5000), 2);
	tc_close(&p);
}

TD_TEST(policy_file_roles)
{
	cr_assert_eq(getuid(), 0);
	static char pol[128];
	static struct td dummy;
	(void)dummy;
	const char *name = tt_name();
	char other[TAKT_NAME_MAX + 1];
	snprintf(other, sizeof(other), "%s-other", name);
	tt_track(other);
	tt_create(name, 1 << 16, 1, 64);
	tt_create(other, 1 << 16, 1, 64);
	/* Write the policy into the taktd temp dir, made before starting. */
	td_prepare(&T);
	snprintf(pol, sizeof(pol), "%s/policy", T.dir);
	FILE *f = fopen(pol, "w");
	cr_assert(f);
	fprintf(f, "# test policy\nallow uid:65534 %s consume\nset slow drop-oldest\n", name);
	fclose(f);
	td_start(&T, backend, "--socket-mode", "0666", "--policy", pol, NULL);
	int arc;
	cr_assert_eq(as_nobody(T.sock, name, &arc), 0);
	cr_assert_gt(arc, 0, "nobody may consume %s: %d", name, arc);
	cr_assert_eq(as_nobody(T.sock, other, &arc), 0);
	cr_assert_eq(arc, -E_DENIED, "nobody may not consume the other channel: %d", arc);
}

/* Group rules match the peer's primary gid or any of its supplementary
 * groups (SO_PEERGROUPS), with all the roles of every matching rule. */
TD_TEST(policy_group_rules_match_supplementary_groups)
{
	cr_assert_eq(getuid(), 0, "this test runs as root (CI) to switch to uid 65534");
	static char pol[128];
	/* gids no account on the machine is likely to have; gid: rules need no
	 * /etc/group entry. */
	const gid_t ops = 47011, view = 47012, other = 47013;
	const char *name = tt_name();
	char extra[TAKT_NAME_MAX + 1];
	snprintf(extra, sizeof(extra), "%s-x", name);
	tt_track(extra);
	tt_create(name, 1 << 16, 1, 64);
	tt_create(extra, 1 << 16, 1, 64);
	td_prepare(&T);
	snprintf(pol, sizeof(pol), "%s/policy", T.dir);
	FILE *f = fopen(pol, "w");
	cr_assert(f);
	fprintf(f, "allow gid:%u %s consume\nallow gid:%u %s-x consume\n", (unsigned)ops, name,
		(unsigned)view, name);
	fclose(f);
	td_start(&T, backend, "--socket-mode", "0666", "--policy", pol, NULL);
	int arc, code;

	/* nobody in no group: refused at HELLO (fatal, then EOF). */
	code = as_peer(T.sock, NULL, 65534, NULL, 0, &arc);
	cr_assert_eq(code, E_DENIED, "nobody without groups got %d", code);
	cr_assert_eq(arc, 1);
	/* ... also in an unrelated supplementary group. */
	code = as_peer(T.sock, NULL, 65534, &other, 1, &arc);
	cr_assert_eq(code, E_DENIED, "nobody in gid %u got %d", (unsigned)other, code);

	/* nobody with the authorized group as a supplementary group only. */
	const gid_t g1[] = { other, ops };
	code = as_peer(T.sock, name, 65534, g1, 2, &arc);
	cr_assert_eq(code, 0, "nobody in supplementary gid %u refused: %d", (unsigned)ops, code);
	cr_assert_gt(arc, 0, "nobody in supplementary gid %u may consume %s: %d", (unsigned)ops,
		     name, arc);
	/* ... but only where a rule of one of its groups allows. */
	code = as_peer(T.sock, extra, 65534, g1, 2, &arc);
	cr_assert_eq(code, 0);
	cr_assert_eq(arc, -E_DENIED, "gid %u may not consume %s: %d", (unsigned)ops, extra, arc);
	/* Two supplementary groups: the roles of both rules. */
	const gid_t g2[] = { ops, view };
	cr_assert_eq(as_peer(T.sock, extra, 65534, g2, 2, &arc), 0);
	cr_assert_gt(arc, 0, "gids %u+%u may consume %s: %d", (unsigned)ops, (unsigned)view, extra,
		     arc);
	/* The primary gid still counts, with no supplementary group at all. */
	cr_assert_eq(as_peer(T.sock, name, ops, NULL, 0, &arc), 0);
	cr_assert_gt(arc, 0, "primary gid %u may consume %s: %d", (unsigned)ops, name, arc);

	/* A peer in more supplementary groups than taktd keeps (256): none of
	 * them is consulted (documented, PROTOCOL.md §8); it is refused, never
	 * admitted by mistake, while its primary gid still works. */
	static gid_t many[300];
	for (unsigned i = 0; i < 300; i++)
		many[i] = 48000 + i;
	many[150] = ops;
	code = as_peer(T.sock, NULL, 65534, many, 300, &arc);
	cr_assert_eq(code, E_DENIED, "a peer in 300 groups got %d", code);
	cr_assert_eq(as_peer(T.sock, name, ops, many, 300, &arc), 0);
	cr_assert_gt(arc, 0, "primary gid %u in 300 groups: %d", (unsigned)ops, arc);
	/* 256 groups are all kept (the authorized one last). */
	many[150] = 48150;
	many[255] = ops;
	cr_assert_eq(as_peer(T.sock, name, 65534, many + 0, 256, &arc), 0, "256 groups refused");
	cr_assert_gt(arc, 0);
}

/* ---- many clients ----------------------------------------------------------- */

#define NCHAN 8
#define NPROD 20 /* per channel */
#define NCONS 5  /* per channel */
#define PER_PROD 3000

struct worker {
	pthread_t th;
	const char *name;
	int role, index;
	pthread_barrier_t *bar;
	char err[160];
};

static void *producer_thread(void *arg)
{
	struct worker *w = arg;
	struct tc c;
	pthread_barrier_wait(w->bar); /* consumers are attached */
	if (tc_open(&c, T.sock) < 0) {
		snprintf(w->err, sizeof(w->err), "connect failed");
		return NULL;
	}
	tc_hello(&c, 1 << 20);
	int id = tc_attach(&c, w->name, ROLE_PRODUCE, NULL);
	if (id <= 0) {
		snprintf(w->err, sizeof(w->err), "attach: %d", id);
		tc_close(&c);
		return NULL;
	}
	uint8_t b[16 * 24];
	uint32_t seq = 0;
	while (seq < PER_PROD) {
		uint32_t n = 0;
		for (; n < 16 && seq < PER_PROD; n++, seq++) {
			le32(b + 24 * n, 16);
			le32(b + 24 * n + 4, 7);
			le64(b + 24 * n + 8, (uint64_t)w->index);
			le64(b + 24 * n + 16, seq);
		}
		if (tc_frame(&c, T_DATA_BATCH, 0, (uint32_t)id, n, b, 24 * n) < 0) {
			snprintf(w->err, sizeof(w->err), "send failed");
			break;
		}
	}
	uint64_t a = tc_wait_ack(&c, (uint32_t)id, PER_PROD, 60000);
	if (a != PER_PROD)
		snprintf(w->err, sizeof(w->err), "acked %llu of %u", (unsigned long long)a, PER_PROD);
	tc_close(&c);
	return NULL;
}

static void *consumer_thread(void *arg)
{
	struct worker *w = arg;
	struct tc c;
	uint32_t next[NPROD] = { 0 };
	uint64_t total = 0;
	int id = -1;
	if (tc_open(&c, T.sock) == 0) {
		tc_hello(&c, 1 << 20);
		struct tc_attach_opts o = { .slow = SLOW_DISCONNECT, .queue_limit = 64u << 20 };
		id = tc_attach(&c, w->name, ROLE_CONSUME, &o);
	}
	pthread_barrier_wait(w->bar);
	if (id <= 0) {
		snprintf(w->err, sizeof(w->err), "consumer attach: %d", id);
		return NULL;
	}
	while (total < (uint64_t)NPROD * PER_PROD) {
		struct tc_frame f;
		if (tc_read(&c, &f, 30000) != 1) {
			snprintf(w->err, sizeof(w->err), "stream ended at %llu", (unsigned long long)total);
			break;
		}
		if (f.type != T_DATA && f.type != T_DATA_BATCH) {
			snprintf(w->err, sizeof(w->err), "frame 0x%x code %u", f.type,
				 f.blen >= 4 ? rd32(f.body) : 0);
			break;
		}
		uint32_t cnt = f.type == T_DATA ? 1 : f.arg;
		const uint8_t *q = f.body;
		for (uint32_t k = 0; k < cnt; k++) {
			if (f.type == T_DATA_BATCH)
				q += 8;
			uint64_t prod = rd64(q), seq = rd64(q + 8);
			q += 16;
			if (prod >= NPROD || seq != next[prod]) {
				snprintf(w->err, sizeof(w->err), "producer %llu: seq %llu, expected %u",
					 (unsigned long long)prod, (unsigned long long)seq,
					 prod < NPROD ? next[prod] : 0);
				goto out;
			}
			next[prod]++;
			total++;
		}
	}
out:
	tc_close(&c);
	return NULL;
}

TD_TEST(two_hundred_clients_no_loss_per_client_order, .timeout = 240)
{
	td_start(&T, backend, NULL);
	static char names[NCHAN][TAKT_NAME_MAX + 1];
	static struct worker w[NCHAN * (NPROD + NCONS)];
	static pthread_barrier_t bars[NCHAN];
	unsigned nw = 0;
	for (int ch = 0; ch < NCHAN; ch++) {
		strcpy(names[ch], tt_name());
		tt_create(names[ch], 1 << 16, 1, 64);
		pthread_barrier_init(&bars[ch], NULL, NPROD + NCONS);
		for (int i = 0; i < NCONS; i++)
			w[nw++] = (struct worker){ .name = names[ch], .role = ROLE_CONSUME, .index = i,
						   .bar = &bars[ch] };
		for (int i = 0; i < NPROD; i++)
			w[nw++] = (struct worker){ .name = names[ch], .role = ROLE_PRODUCE, .index = i,
						   .bar = &bars[ch] };
	}
	cr_assert_eq(nw, 200);
	for (unsigned i = 0; i < nw; i++) {
		pthread_attr_t at;
		pthread_attr_init(&at);
		pthread_attr_setstacksize(&at, 256 << 10);
		cr_assert_eq(pthread_create(&w[i].th, &at,
					    w[i].role == ROLE_PRODUCE ? producer_thread : consumer_thread,
					    &w[i]), 0);
	}
	for (unsigned i = 0; i < nw; i++)
		pthread_join(w[i].th, NULL);
	for (unsigned i = 0; i < nw; i++)
		cr_expect_eq(w[i].err[0], 0, "%s client %d on %s: %s",
			     w[i].role == ROLE_PRODUCE ? "producing" : "consuming", w[i].index, w[i].name,
			     w[i].err);
}

/* ---- state channels ------------------------------------------------------- */

static uint32_t state_req = 5000;

static void state_create(const char *name, uint32_t image_size)
{
	struct takt_state_config sc = { .image_size = image_size };
	cr_assert_eq(takt_state_create(name, &sc), 0);
}

/* Next frame of type (others skipped), or -ETIMEDOUT / 0 at EOF. */
static int read_type(struct tc *c, uint16_t type, struct tc_frame *f, int timeout_ms)
{
	for (;;) {
		int r = tc_read(c, f, timeout_ms);
		if (r != 1)
			return r;
		if (f->type == T_ERROR)
			cr_assert_fail("unexpected ERROR %u: %.*s", rd32(f->body), (int)f->blen - 8,
				       (const char *)f->body + 8);
		if (f->type == type)
			return 1;
	}
}

/* STATE_GET; returns the STATE frame (generation in *gen). */
static void state_get(struct tc *c, uint32_t chan, struct tc_frame *f, uint64_t *gen)
{
	uint32_t req = ++state_req;
	cr_assert_eq(tc_frame(c, T_STATE_GET, 0, chan, req, NULL, 0), 0);
	tc_expect(c, T_STATE, f);
	cr_assert_eq(f->arg, req);
	cr_assert_eq(f->chan, chan);
	cr_assert_eq(f->flags, 0, "a STATE_GET answer carries no UPDATE flag");
	cr_assert_geq(f->blen, 32);
	cr_assert_eq(rd32(f->body + 24), f->blen - 32, "len field and body disagree");
	*gen = rd64(f->body);
}

static uint32_t subscribe(struct tc *c, uint32_t chan, uint32_t interval_us)
{
	uint8_t b[8];
	le32(b, interval_us);
	le32(b + 4, 0);
	uint32_t req = ++state_req;
	cr_assert_eq(tc_frame(c, T_SUBSCRIBE, 0, chan, req, b, 8), 0);
	struct tc_frame f;
	cr_assert_eq(read_type(c, T_SUBSCRIBED, &f, 10000), 1);
	cr_assert_eq(f.arg, req);
	cr_assert_eq(f.blen, 8);
	cr_assert_eq(rd32(f.body), interval_us < 1000 ? 1000 : interval_us);
	return req;
}

TD_TEST(state_get_latest_image_byte_exact)
{
	td_start(&T, backend, NULL);
	const char *name = tt_name();
	state_create(name, 4096);
	struct tc c;
	ready_client(&c);
	cr_assert(c.features & FEAT_STATE, "WELCOME announces state channels");
	int id = tc_attach(&c, name, ROLE_STATE_READ, NULL);
	cr_assert_gt(id, 0, "attach: %d", id);
	struct tc_frame f;
	uint64_t gen;
	state_get(&c, (uint32_t)id, &f, &gen);
	cr_assert_eq(gen, 0, "nothing published yet");
	cr_assert_eq(f.blen, 32);

	/* taktd is not the reader: a native reader still gets the role. */
	takt_state_reader *rd;
	cr_assert_eq(takt_state_reader_open(name, &rd), 0);
	takt_state_writer *w;
	cr_assert_eq(takt_state_writer_open(name, &w), 0);
	static uint8_t img[4096];
	for (unsigned round = 1; round <= 5; round++) {
		uint32_t len = round == 3 ? 1000 : 4096; /* a shorter image too */
		for (unsigned i = 0; i < len; i++)
			img[i] = (uint8_t)(i * 7 + round * 13);
		uint64_t before = takt_now_ns();
		cr_assert_eq(takt_state_write(w, img, len), 0);
		state_get(&c, (uint32_t)id, &f, &gen);
		cr_assert_eq(gen, round);
		cr_assert_eq(f.blen, 32 + len);
		cr_assert_eq(memcmp(f.body + 32, img, len), 0, "image differs");
		uint64_t written = rd64(f.body + 8), age = rd64(f.body + 16);
		cr_assert_geq(written, before);
		cr_assert_leq(written, takt_now_ns());
		cr_assert_lt(age, 10ull * 1000000000, "age %llu", (unsigned long long)age);
	}
	takt_state_writer_close(w);
	takt_state_reader_close(rd);
	/* DETACH answers with the updates sent (none: no subscription). */
	cr_assert_eq(tc_frame(&c, T_DETACH, 0, (uint32_t)id, 9, NULL, 0), 0);
	tc_expect(&c, T_DETACHED, &f);
	cr_assert_eq(rd64(f.body), 0);
	tc_close(&c);
}

struct state_writer_arg {
	const char *name;
	uint32_t size;
	unsigned period_us; /* 0: as fast as possible */
	/* shared with the test's thread: atomics (TSan checks the tests too) */
	_Atomic bool stop;
	_Atomic uint64_t writes;
	uint64_t max_write_ns; /* read after the join */
};

static void *state_writer_thread(void *arg)
{
	struct state_writer_arg *a = arg;
	takt_state_writer *w;
	if (takt_state_writer_open(a->name, &w) < 0)
		return (void *)1;
	uint8_t *img = calloc(1, a->size);
	while (!atomic_load(&a->stop)) {
		uint64_t stamp = atomic_load(&a->writes);
		memcpy(img, &stamp, sizeof(stamp));
		uint64_t t0 = takt_now_ns();
		if (takt_state_write(w, img, a->size) < 0)
			break;
		uint64_t d = takt_now_ns() - t0;
		if (d > a->max_write_ns)
			a->max_write_ns = d;
		a->writes++;
		if (a->period_us)
			usleep(a->period_us);
	}
	free(img);
	takt_state_writer_close(w);
	return NULL;
}

TD_TEST(state_subscription_rate_limited_increasing)
{
	td_start(&T, backend, NULL);
	const char *name = tt_name();
	state_create(name, 256);
	struct state_writer_arg wa = { .name = name, .size = 256, .period_us = 500 };
	pthread_t th;
	cr_assert_eq(pthread_create(&th, NULL, state_writer_thread, &wa), 0);
	struct tc c;
	ready_client(&c);
	int id = tc_attach(&c, name, ROLE_STATE_READ, NULL);
	cr_assert_gt(id, 0);
	const uint32_t interval_us = 10000;
	uint64_t t0 = takt_now_ns();
	uint32_t req = subscribe(&c, (uint32_t)id, interval_us);
	uint64_t last_gen = 0, n = 0;
	struct tc_frame f;
	while (takt_now_ns() - t0 < 1000000000ull) {
		int r = read_type(&c, T_STATE, &f, 2000);
		cr_assert_eq(r, 1, "no update within 2 s");
		cr_assert_eq(f.flags, F_UPDATE);
		cr_assert_eq(f.arg, req, "updates carry the SUBSCRIBE request id");
		uint64_t gen = rd64(f.body);
		cr_assert_gt(gen, last_gen, "generations increase: %llu after %llu",
			     (unsigned long long)gen, (unsigned long long)last_gen);
		uint64_t stamp;
		memcpy(&stamp, f.body + 32, 8);
		cr_assert_eq(stamp + 1, gen, "image matches its generation");
		last_gen = gen;
		n++;
	}
	uint64_t elapsed = takt_now_ns() - t0;
	/* The rate limiter: at most one update per interval (+2 for the edges). */
	uint64_t bound = elapsed / (interval_us * 1000ull) + 2;
	cr_assert_leq(n, bound, "%llu updates in %.3f s with a 10 ms interval",
		      (unsigned long long)n, elapsed / 1e9);
	cr_assert_geq(n, 10, "only %llu updates in %.3f s", (unsigned long long)n, elapsed / 1e9);
	/* UNSUBSCRIBE: the answer counts what was sent, then nothing more. */
	uint32_t ureq = ++state_req;
	cr_assert_eq(tc_frame(&c, T_UNSUBSCRIBE, 0, (uint32_t)id, ureq, NULL, 0), 0);
	for (;;) {
		cr_assert_eq(tc_read(&c, &f, 5000), 1);
		if (f.type == T_STATE) {
			n++;
			continue;
		}
		cr_assert_eq(f.type, T_UNSUBSCRIBED);
		break;
	}
	cr_assert_eq(f.arg, ureq);
	cr_assert_eq(rd64(f.body), n);
	cr_assert_eq(tc_read(&c, &f, 100), -ETIMEDOUT, "an update after UNSUBSCRIBED");
	wa.stop = true;
	pthread_join(th, NULL);
	tc_close(&c);
}

static void *ping_thread(void *arg)
{
	struct state_writer_arg *wa = arg; /* stop flag only */
	struct tc c;
	if (tc_open(&c, T.sock) < 0)
		return (void *)1;
	tc_hello(&c, 1 << 20);
	uintptr_t worst = 0;
	for (uint32_t i = 0; !atomic_load(&wa->stop); i++) {
		uint64_t t0 = takt_now_ns();
		tc_frame(&c, T_PING, 0, 0, i, "x", 1);
		struct tc_frame f;
		if (tc_read(&c, &f, 2000) != 1 || f.type != T_PONG || f.arg != i) {
			worst = UINTPTR_MAX;
			break;
		}
		uintptr_t d = (uintptr_t)((takt_now_ns() - t0) / 1000);
		if (d > worst)
			worst = d;
		usleep(2000);
	}
	tc_close(&c);
	return (void *)worst;
}

TD_TEST(state_stalled_subscriber_slows_nobody)
{
	td_start(&T, backend, NULL);
	const char *name = tt_name();
	const uint32_t size = 64 << 10;
	state_create(name, size);
	/* The writer alone. */
	/* A fast cyclic writer (a writer publishing back to back faster than
	 * taktd copies the image makes GET answer AGAIN: documented). */
	struct state_writer_arg wa = { .name = name, .size = size, .period_us = 20 };
	pthread_t th;
	cr_assert_eq(pthread_create(&th, NULL, state_writer_thread, &wa), 0);
	usleep(300000);
	wa.stop = true;
	pthread_join(th, NULL);
	double alone = wa.writes / 0.3;

	/* A subscriber that never reads, 1 ms interval, 64 KiB images. */
	struct tc slow;
	ready_client(&slow);
	int sid = tc_attach(&slow, name, ROLE_STATE_READ, NULL);
	cr_assert_gt(sid, 0);
	uint8_t b[8];
	le32(b, 1000);
	le32(b + 4, 0);
	cr_assert_eq(tc_frame(&slow, T_SUBSCRIBE, 0, (uint32_t)sid, 1, b, 8), 0);
	struct state_writer_arg wb = { .name = name, .size = size, .period_us = 20 };
	struct state_writer_arg pa = { 0 };
	pthread_t th2, pt;
	cr_assert_eq(pthread_create(&th2, NULL, state_writer_thread, &wb), 0);
	cr_assert_eq(pthread_create(&pt, NULL, ping_thread, &pa), 0);
	/* Another client reads the newest image meanwhile. */
	struct tc other;
	ready_client(&other);
	int oid = tc_attach(&other, name, ROLE_STATE_READ, NULL);
	cr_assert_gt(oid, 0);
	uint64_t t0 = takt_now_ns(), w0 = atomic_load(&wb.writes), prev = 0;
	unsigned gets = 0;
	while (takt_now_ns() - t0 < 1000000000ull) {
		struct tc_frame f;
		uint64_t gen;
		state_get(&other, (uint32_t)oid, &f, &gen);
		cr_assert_geq(gen, prev);
		prev = gen;
		gets++;
		usleep(10000);
	}
	double with = (double)(atomic_load(&wb.writes) - w0) / ((takt_now_ns() - t0) / 1e9);
	atomic_store(&wb.stop, true);
	atomic_store(&pa.stop, true);
	pthread_join(th2, NULL);
	void *worst;
	pthread_join(pt, &worst);
	cr_log_info("writer alone %.0f/s, with a stalled subscriber %.0f/s, longest write %llu us, "
		    "worst PING %lu us, %u GETs", alone, with,
		    (unsigned long long)wb.max_write_ns / 1000, (unsigned long)(uintptr_t)worst, gets);
	cr_assert_gt(alone, 500, "writer alone: %.0f/s", alone);
	cr_assert_gt(with, 500, "writer with a stalled subscriber: %.0f/s", with);
	cr_assert_neq((uintptr_t)worst, UINTPTR_MAX, "taktd stopped answering PING");
	cr_assert_lt((uintptr_t)worst, 1000000, "a PING took %lu us", (unsigned long)(uintptr_t)worst);
	cr_assert_gt(prev, 0);
	struct tc_frame f;
	uint64_t newest;
	state_get(&other, (uint32_t)oid, &f, &newest);

	/* The stalled client holds only a few updates, then gets the newest:
	 * coalescing, not a backlog. */
	cr_assert_eq(read_type(&slow, T_SUBSCRIBED, &f, 5000), 1);
	unsigned backlog = 0;
	uint64_t last = 0;
	while (tc_read(&slow, &f, 0) == 1) {
		cr_assert_eq(f.type, T_STATE);
		last = rd64(f.body);
		backlog++;
	}
	cr_assert_leq(backlog, 8, "%u updates piled up", backlog);
	cr_assert_eq(read_type(&slow, T_STATE, &f, 5000), 1);
	cr_assert_geq(rd64(f.body), last, "generations increase");
	cr_assert_eq(rd64(f.body), newest, "the update after the stall is the newest image");
	tc_close(&other);
	tc_close(&slow);
}

TD_TEST(state_writer_through_taktd)
{
	td_start(&T, backend, NULL);
	const char *name = tt_name();
	struct tc c;
	ready_client(&c);
	struct tc_attach_opts o = { .flags = A_CREATE, .max_record = 256 };
	int id = tc_attach(&c, name, ROLE_STATE_WRITE, &o);
	cr_assert_gt(id, 0, "attach: %d", id);
	takt_state_reader *rd;
	cr_assert_eq(takt_state_reader_open(name, &rd), 0);
	uint8_t img[256], got[256];
	for (unsigned k = 1; k <= 100; k++) {
		for (unsigned i = 0; i < sizeof(img); i++)
			img[i] = (uint8_t)(i ^ k);
		cr_assert_eq(tc_frame(&c, T_STATE_WRITE, 0, (uint32_t)id, 0, img, k == 50 ? 10 : 256), 0);
	}
	cr_assert_eq(tc_wait_ack(&c, (uint32_t)id, 100, 5000), 100);
	struct takt_state_info info;
	cr_assert_eq(takt_state_read(rd, got, sizeof(got), &info), 256);
	cr_assert_eq(info.generation, 100);
	cr_assert_eq(memcmp(got, img, 256), 0);
	/* A second taktd client writes through the same writer. */
	struct tc c2;
	ready_client(&c2);
	int id2 = tc_attach(&c2, name, ROLE_STATE_WRITE, NULL);
	cr_assert_gt(id2, 0);
	cr_assert_eq(tc_frame(&c2, T_STATE_WRITE, 0, (uint32_t)id2, 0, "hello", 5), 0);
	cr_assert_eq(tc_wait_ack(&c2, (uint32_t)id2, 1, 5000), 1);
	cr_assert_eq(takt_state_read(rd, got, sizeof(got), &info), 5);
	cr_assert_eq(info.generation, 101);
	cr_assert_eq(memcmp(got, "hello", 5), 0);
	/* An image above image_size is fatal (like a record above max_record). */
	static uint8_t big[257];
	cr_assert_eq(tc_frame(&c2, T_STATE_WRITE, 0, (uint32_t)id2, 0, big, sizeof(big)), 0);
	tc_expect_error(&c2, E_MSGSIZE, true);
	tc_close(&c2);
	/* DETACH reports the images published. */
	struct tc_frame f;
	cr_assert_eq(tc_frame(&c, T_DETACH, 0, (uint32_t)id, 3, NULL, 0), 0);
	tc_expect(&c, T_DETACHED, &f);
	cr_assert_eq(rd64(f.body), 100);
	/* The writer slot is free again once taktd's last writer client left. */
	takt_state_writer *w;
	cr_assert_eq(takt_state_writer_open(name, &w), 0);
	takt_state_writer_close(w);
	takt_state_reader_close(rd);
	tc_close(&c);
}

TD_TEST(state_kind_and_channel_errors)
{
	td_start(&T, backend, NULL);
	const char *q = tt_name(), *st = tt_name();
	tt_create(q, 1 << 16, 1, 64);
	state_create(st, 64);
	struct tc c;
	ready_client(&c);
	cr_assert_eq(tc_attach(&c, q, ROLE_STATE_READ, NULL), -E_KIND);
	cr_assert_eq(tc_attach(&c, q, ROLE_STATE_WRITE, NULL), -E_KIND);
	cr_assert_eq(tc_attach(&c, st, ROLE_PRODUCE, NULL), -E_KIND);
	cr_assert_eq(tc_attach(&c, st, ROLE_CONSUME, NULL), -E_KIND);
	struct tc_attach_opts o = { .flags = A_CREATE | A_EXCL, .max_record = 64 };
	cr_assert_eq(tc_attach(&c, st, ROLE_STATE_READ, &o), -E_EXISTS);
	/* STATE_GET / SUBSCRIBE on a queue attachment: non-fatal BAD_CHANNEL. */
	int pid = tc_attach(&c, q, ROLE_PRODUCE, NULL);
	cr_assert_gt(pid, 0);
	cr_assert_eq(tc_frame(&c, T_STATE_GET, 0, (uint32_t)pid, 1, NULL, 0), 0);
	tc_expect_error(&c, E_BAD_CHANNEL, false);
	uint8_t b[8] = { 0 };
	cr_assert_eq(tc_frame(&c, T_SUBSCRIBE, 0, 999, 2, b, 8), 0);
	tc_expect_error(&c, E_BAD_CHANNEL, false);
	struct tc_frame f;
	cr_assert_eq(tc_frame(&c, T_PING, 0, 0, 3, NULL, 0), 0);
	tc_expect(&c, T_PONG, &f);
	/* DATA on a state reader attachment: fatal, as DATA on any non-producer. */
	int rid = tc_attach(&c, st, ROLE_STATE_READ, NULL);
	cr_assert_gt(rid, 0);
	cr_assert_eq(tc_frame(&c, T_STATE_WRITE, 0, (uint32_t)rid, 0, "x", 1), 0);
	tc_expect_error(&c, E_BAD_CHANNEL, true);
	tc_close(&c);
	/* A malformed SUBSCRIBE (reserved field set) is BAD_FRAME. */
	ready_client(&c);
	rid = tc_attach(&c, st, ROLE_STATE_READ, NULL);
	le32(b + 4, 1);
	cr_assert_eq(tc_frame(&c, T_SUBSCRIBE, 0, (uint32_t)rid, 4, b, 8), 0);
	tc_expect_error(&c, E_BAD_FRAME, true);
	tc_close(&c);
	/* A server-only frame from the client is BAD_TYPE. */
	ready_client(&c);
	cr_assert_eq(tc_frame(&c, T_STATE, 0, 0, 0, NULL, 0), 0);
	tc_expect_error(&c, E_BAD_TYPE, true);
	tc_close(&c);
}

/* ---- regressions: review findings ------------------------------------------ */

/* Open descriptors of pid. */
static int fd_count(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	DIR *d = opendir(path);
	cr_assert(d, "opendir %s", path);
	int n = 0;
	for (struct dirent *e; (e = readdir(d));)
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

/* Resident memory of pid, in KiB. */
static uint64_t rss_kb(pid_t pid)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "r");
	cr_assert(f, "fopen %s", path);
	unsigned long long kb = 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %llu kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

/* Poll (a condition with a deadline, not a sleep) until taktd holds want fds. */
static bool wait_fds(int want, int timeout_ms)
{
	for (int t = 0; t < timeout_ms; t += 10) {
		if (fd_count(T.pid) == want)
			return true;
		usleep(10000);
	}
	return fd_count(T.pid) == want;
}

/* Send n DATA frames of len bytes (payload byte = index) in one send. */
static void send_data_burst(struct tc *c, uint32_t chan, unsigned n, uint32_t len)
{
	size_t fl = 16 + len;
	uint8_t *b = malloc(n * fl);
	cr_assert(b);
	for (unsigned i = 0; i < n; i++) {
		frame_bytes(b + i * fl, (uint32_t)fl, T_DATA, 0, chan, 1);
		memset(b + i * fl + 16, (int)i, len);
	}
	int rc = tc_send(c, b, n * fl);
	free(b);
	cr_assert_eq(rc, 0);
}

/*
 * A client paused on a full channel A has "DETACH B" buffered behind its
 * blocked DATA, B being its only other producer channel (sole user).  When
 * A gets room the client resumes and its DETACH frees bridge B while the
 * loop walks the producer bridges (B right after A): a use after free that
 * ASan reports in taktd (td_finish then fails the test).
 */
TD_TEST(resume_detaching_another_bridge_during_room_walk)
{
	td_start(&T, backend, NULL);
	const char *a = tt_name(), *b = tt_name();
	struct tc c;
	ready_client(&c);
	struct tc_attach_opts o = { .flags = A_CREATE, .lanes = 1, .capacity = 4096, .max_record = 1024 };
	int bid = tc_attach(&c, b, ROLE_PRODUCE, &o); /* B first: the list is then A, B */
	int aid = tc_attach(&c, a, ROLE_PRODUCE, &o);
	cr_assert_gt(bid, 0);
	cr_assert_gt(aid, 0);
	/* 6 records of 1000 bytes do not fit in 4096, then DETACH B: one send. */
	size_t fl = 16 + 1000;
	uint8_t *buf = malloc(6 * fl + 16);
	cr_assert(buf);
	for (unsigned i = 0; i < 6; i++) {
		frame_bytes(buf + i * fl, (uint32_t)fl, T_DATA, 0, (uint32_t)aid, 1);
		memset(buf + i * fl + 16, (int)i, 1000);
	}
	frame_bytes(buf + 6 * fl, 16, T_DETACH, 0, (uint32_t)bid, 77);
	int rc = tc_send(&c, buf, 6 * fl + 16);
	free(buf);
	cr_assert_eq(rc, 0);
	/* The first ACK follows the burst taktd processed up to the full ring. */
	uint64_t acked = tc_wait_ack(&c, (uint32_t)aid, 1, 10000);
	cr_assert_geq(acked, 1);
	cr_assert_lt(acked, 6);
	/* Room in A resumes the client: its DETACH of B runs in the walk. */
	takt_consumer *cons = tt_consumer(a);
	for (unsigned i = 0; i < 6; i++) {
		uint8_t r[1024];
		cr_assert_eq(takt_recv(cons, r, sizeof(r), NULL, takt_deadline_in(5000000000ull)), 1000);
		cr_assert_eq(r[0], i);
	}
	/* ACK of all 6 (ACKs come before DETACHED), then DETACHED of B. */
	struct tc_frame f;
	uint64_t last = acked;
	for (;;) {
		cr_assert_eq(tc_read(&c, &f, 10000), 1, "no DETACHED");
		if (f.type != T_ACK)
			break;
		if (f.chan == (uint32_t)aid)
			last = rd64(f.body);
	}
	cr_assert_eq(f.type, T_DETACHED, "type 0x%x", f.type);
	cr_assert_eq(f.chan, (uint32_t)bid);
	cr_assert_eq(f.arg, 77);
	cr_assert_eq(last, 6);
	/* taktd still serves the connection (and td_finish checks ASan). */
	cr_assert_eq(tc_frame(&c, T_PING, 0, 0, 5, NULL, 0), 0);
	tc_expect(&c, T_PONG, NULL);
	takt_consumer_close(cons);
	tc_close(&c);
}

/*
 * Each 16-byte STATE_GET queues an image-sized answer: a client that sends
 * thousands in one write and reads nothing must not make taktd queue them
 * all (the cap on pending answers holds between frames, not only between
 * reads).  Every answer still comes, in order, while the client only
 * reads: parsing resumes as the send buffer drains.
 */
TD_TEST(state_get_flood_answers_stay_bounded)
{
	td_start(&T, backend, NULL);
	const char *name = tt_name();
	const uint32_t size = 64 << 10, n = 2000;
	state_create(name, size);
	static uint8_t img[64 << 10];
	for (uint32_t i = 0; i < size; i++)
		img[i] = (uint8_t)(i * 31 + 7);
	takt_state_writer *w;
	cr_assert_eq(takt_state_writer_open(name, &w), 0);
	cr_assert_eq(takt_state_write(w, img, size), 0);
	takt_state_writer_close(w);
	struct tc c;
	ready_client(&c);
	int id = tc_attach(&c, name, ROLE_STATE_READ, NULL);
	cr_assert_gt(id, 0);
	uint64_t rss0 = rss_kb(T.pid);
	static uint8_t reqs[2000 * 16 + 16];
	for (uint32_t i = 0; i < n; i++)
		frame_bytes(reqs + 16 * i, 16, T_STATE_GET, 0, (uint32_t)id, 100000 + i);
	frame_bytes(reqs + 16 * n, 16, T_PING, 0, 0, 4242);
	cr_assert_eq(tc_send(&c, reqs, sizeof(reqs)), 0);
	struct tc_frame f;
	/* The first answer leaves taktd after it parsed what it read. */
	tc_expect(&c, T_STATE, &f);
	cr_assert_eq(f.arg, 100000);
	uint64_t rss1 = rss_kb(T.pid);
	/* Unbounded: 2000 images of 64 KiB, 128 MiB.  The cap: ~1 MiB. */
	cr_assert_lt(rss1 > rss0 ? rss1 - rss0 : 0, 32u << 10, "taktd grew by %llu KiB",
		     (unsigned long long)(rss1 - rss0));
	for (uint32_t i = 1; i < n; i++) {
		tc_expect(&c, T_STATE, &f);
		cr_assert_eq(f.arg, 100000 + i);
		cr_assert_eq(f.blen, 32 + size);
		if (i == n - 1)
			cr_assert_eq(memcmp(f.body + 32, img, size), 0);
	}
	tc_expect(&c, T_PONG, &f);
	cr_assert_eq(f.arg, 4242);
	tc_close(&c);
}

/*
 * A producer paused on a full ring has nothing to send and is not read:
 * io_uring had no poll armed for it, so a client that hung up then was
 * never closed (its descriptor and buffers stayed until accept hit EMFILE).
 * Also a half-closed one (shutdown(SHUT_WR)): taktd must not spin on it,
 * and must see its close.
 */
TD_TEST(paused_producer_hangup_is_closed)
{
	td_start(&T, backend, NULL);
	const char *name = tt_name();
	tt_create(name, 4096, 1, 64);
	struct tc keep;
	ready_client(&keep);
	int kid = tc_attach(&keep, name, ROLE_PRODUCE, NULL); /* the bridge stays */
	cr_assert_gt(kid, 0);
	int fds0 = fd_count(T.pid);
	for (int half = 0; half < 2; half++) {
		struct tc c;
		ready_client(&c);
		int id = tc_attach(&c, name, ROLE_PRODUCE, NULL);
		cr_assert_gt(id, 0);
		send_data_burst(&c, (uint32_t)id, 200, 48); /* 4096 bytes hold ~64 */
		uint64_t acked = tc_wait_ack(&c, (uint32_t)id, 1, 10000);
		cr_assert(acked >= 1 && acked < 200, "acked %llu", (unsigned long long)acked);
		if (half) {
			shutdown(c.fd, SHUT_WR);
			/* taktd saw the half-close (a round trip behind it) */
			cr_assert_eq(tc_frame(&keep, T_PING, 0, 0, 1, NULL, 0), 0);
			tc_expect(&keep, T_PONG, NULL);
			uint64_t t0 = td_cpu_ticks(T.pid);
			usleep(500000); /* a measurement window, not a synchronisation */
			uint64_t t1 = td_cpu_ticks(T.pid);
			long hz = sysconf(_SC_CLK_TCK);
			cr_assert_leq(t1 - t0, (uint64_t)(hz / 10),
				      "taktd used %llu ticks in 0.5 s with a half-closed paused client",
				      (unsigned long long)(t1 - t0));
		}
		tc_close(&c);
		cr_assert(wait_fds(fds0, 10000), "the paused client's connection stays open (%d fds, %d before)",
			  fd_count(T.pid), fds0);
		/* Empty the ring for the next round. */
		takt_consumer *cons = tt_consumer(name);
		uint8_t r[64];
		while (takt_try_recv(cons, r, sizeof(r), NULL) >= 0)
			;
		takt_consumer_close(cons);
	}
	tc_close(&keep);
}

/* The nonce of the channel a name names now. */
static uint64_t chan_nonce(const char *name)
{
	takt_channel *ch;
	cr_assert_eq(takt_channel_open(name, TAKT_OPEN_RDONLY, &ch), 0);
	struct takt_channel_config cfg;
	takt_channel_config_get(ch, &cfg);
	takt_channel_close(ch);
	return cfg.nonce;
}

/*
 * A channel removed and created again under the same name while taktd has
 * bridges to it: new ATTACHes reach the new instance (its nonce in
 * ATTACHED, records produced land in it, records in it are delivered);
 * the old attachments keep working on the old one until they detach.
 */
TD_TEST(recreated_channel_gets_new_bridges)
{
	td_start(&T, backend, NULL);
	const char *name = tt_name(), *st = tt_name();
	tt_create(name, 1 << 16, 2, 1000);
	state_create(st, 64);
	struct tc old;
	ready_client(&old);
	int op = tc_attach(&old, name, ROLE_PRODUCE, NULL);
	int oc = tc_attach(&old, name, ROLE_CONSUME, NULL);
	int os = tc_attach(&old, st, ROLE_STATE_READ, NULL);
	cr_assert(op > 0 && oc > 0 && os > 0);
	uint64_t n0 = chan_nonce(name), s0 = chan_nonce(st);
	/* takt rm --force + create */
	cr_assert_eq(takt_unlink(name), 0);
	cr_assert_eq(takt_unlink(st), 0);
	tt_create(name, 1 << 16, 2, 1000);
	state_create(st, 64);
	uint64_t n1 = chan_nonce(name), s1 = chan_nonce(st);
	cr_assert_neq(n0, n1);
	struct tc c;
	ready_client(&c);
	int np = tc_attach(&c, name, ROLE_PRODUCE, NULL);
	cr_assert_gt(np, 0);
	cr_assert_eq(rd64(c.last.body + 24), n1, "producer ATTACHED carries the old nonce");
	int ns = tc_attach(&c, st, ROLE_STATE_READ, NULL);
	cr_assert_gt(ns, 0);
	cr_assert_eq(rd64(c.last.body + 24), s1, "state ATTACHED carries the old nonce");
	(void)s0;
	/* Produced through taktd: in the new channel. */
	cr_assert_eq(tc_data(&c, (uint32_t)np, 7, "new", 3), 0);
	cr_assert_eq(tc_wait_ack(&c, (uint32_t)np, 1, 10000), 1);
	takt_consumer *cons = tt_consumer(name);
	uint8_t r[16];
	cr_assert_eq(takt_recv(cons, r, sizeof(r), NULL, takt_deadline_in(5000000000ull)), 3,
		     "the acknowledged record is not in the new channel");
	cr_assert_eq(memcmp(r, "new", 3), 0);
	takt_consumer_close(cons);
	/* Consumed through taktd: from the new channel. */
	int nc = tc_attach(&c, name, ROLE_CONSUME, NULL);
	cr_assert_gt(nc, 0);
	cr_assert_eq(rd64(c.last.body + 24), n1, "consumer ATTACHED carries the old nonce");
	produce_native(name, 0, 3);
	cr_assert_eq(consume_seq(&c, (uint32_t)nc, 0, 3, NULL), 3);
	/* The old attachments still work on the old instance. */
	cr_assert_eq(tc_data(&old, (uint32_t)op, 7, "old", 3), 0);
	cr_assert_eq(tc_wait_ack(&old, (uint32_t)op, 1, 10000), 1);
	tc_close(&c);
	tc_close(&old);
}

/*
 * A corrupted channel: once taktd gives up on it, each consuming client
 * gets ERROR BADMSG on its attachment id (PROTOCOL.md §7) and loses the
 * attachment; a new ATTACH opens the channel again rather than joining a
 * dead bridge, and gets BADMSG too while the channel stays corrupted.
 */
TD_TEST(corrupted_channel_reports_badmsg)
{
	td_start(&T, backend, NULL);
	const char *name = tt_name();
	tt_create(name, 4096, 1, 64);
	takt_producer *p = tt_producer(name);
	cr_assert_eq(takt_try_send(p, 1, "rec1", 4), 0);
	takt_producer_close(p);
	/* the first record's length beyond max_record */
	struct tt_raw raw;
	tt_raw_map(name, &raw);
	struct takt_rec_header *h =
		(struct takt_rec_header *)(raw.base + TAKT_LANES_OFFSET + TAKT_LANE_DATA_OFFSET);
	atomic_store(&h->len, 0xffffu);
	tt_raw_unmap(&raw);
	for (int round = 0; round < 2; round++) {
		struct tc c;
		ready_client(&c);
		int id = tc_attach(&c, name, ROLE_CONSUME, NULL);
		if (id < 0) {
			/* (the open itself may see the corruption) */
			cr_assert_eq(-id, E_BADMSG);
		} else {
			struct tc_frame f;
			tc_expect(&c, T_ERROR, &f);
			cr_assert_eq(rd32(f.body), E_BADMSG);
			tc_check_errno(&f);
			cr_assert_eq(f.chan, (uint32_t)id);
			cr_assert_eq(f.flags & F_FATAL, 0);
			/* the attachment is gone, the connection is not */
			cr_assert_eq(tc_frame(&c, T_DETACH, 0, (uint32_t)id, 3, NULL, 0), 0);
			tc_expect_error(&c, E_BAD_CHANNEL, false);
		}
		tc_close(&c);
	}
}

/* ATTACH with CREATE that fails with MSGSIZE removes what it created. */
TD_TEST(attach_create_msgsize_leaves_no_channel)
{
	td_start(&T, backend, NULL);
	const char *name = tt_name();
	struct tc c;
	cr_assert_eq(tc_open(&c, T.sock), 0);
	tc_hello(&c, 4096);
	struct tc_attach_opts o = { .flags = A_CREATE, .lanes = 1, .capacity = 1 << 16,
				    .max_record = 8192 };
	cr_assert_eq(tc_attach(&c, name, ROLE_CONSUME, &o), -E_MSGSIZE);
	takt_channel *ch;
	cr_assert_eq(takt_channel_open(name, TAKT_OPEN_RDONLY, &ch), -ENOENT, "the channel was left behind");
	cr_assert_eq(tt_leftovers(name), 0);
	tc_close(&c);
}

/* PROTOCOL.md §3: BYE's chan and arg are 0. */
TD_TEST(bye_with_arg_is_bad_frame)
{
	td_start(&T, backend, NULL);
	uint8_t b[16];
	frame_bytes(b, 16, T_BYE, 0, 0, 1);
	expect_fatal_after(b, 16, E_BAD_FRAME, true, false);
}
