/* SPDX-License-Identifier: MIT */
/*
 * test_nosyscall.c - proof that the hot path makes no system call while
 * nobody is parked.
 *
 * A child process opens a producer and a consumer of one channel, runs the
 * hot-path calls once (so that every lazily allocated thing, of libc or of
 * a sanitizer runtime, exists), then installs a seccomp-BPF filter that
 * kills the whole process (SECCOMP_RET_KILL_PROCESS, status "killed by
 * SIGSYS") on any system call but exit/exit_group, and runs them again, many
 * times: try_send until full, try_recv until empty, both batch calls,
 * reserve/commit, peek/release, and the blocking calls where they need not
 * wait (record or room there; TAKT_NO_WAIT on empty/full).  It ends with a
 * raw exit_group(0).  Any futex (a sem_post), clock or other call would
 * kill it.
 *
 * Positive controls show the filter does catch what it must: a getpid()
 * after installing it kills the child, and so does a plain try_send while
 * a consumer is parked in another process (the send must post, and
 * sem_post then makes a futex call to wake it).
 */
#include "tb_common.h"

#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

TB_SUITE(nosyscall, .timeout = 60);

#if defined(__x86_64__)
#define TB_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define TB_AUDIT_ARCH AUDIT_ARCH_AARCH64
#endif

#define ROUNDS 3000u

/* Kill the process on every system call except exit and exit_group. */
static int install_filter(void)
{
#ifdef TB_AUDIT_ARCH
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, TB_AUDIT_ARCH, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_exit_group, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_exit, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
	};
	struct sock_fprog prog = {.len = (unsigned short)(sizeof f / sizeof f[0]), .filter = f};
	/* no core file for the SIGSYS kills the controls provoke */
	struct rlimit nocore = {0, 0};
	setrlimit(RLIMIT_CORE, &nocore);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		return -errno;
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0)
		return -errno;
	return 0;
#else
	return -ENOSYS;
#endif
}

static __attribute__((noreturn)) void raw_exit(int code)
{
	syscall(SYS_exit_group, code);
	__builtin_unreachable();
}

/* Exit codes of the exerciser: which step went wrong. */
enum {
	E_OK = 0, E_OPEN = 10, E_FILTER, E_SEND, E_RECV, E_COUNT, E_BATCH_SEND, E_BATCH_RECV,
	E_RESERVE, E_COMMIT, E_PEEK, E_RELEASE, E_BLOCK_SEND, E_BLOCK_RECV, E_NOWAIT, E_DATA,
};

#define CHECK(cond, code)                 \
	do {                              \
		if (!(cond))              \
			return (code);    \
	} while (0)

/* One round of every hot-path call.  No allocation, no printing: only
 * loads, stores and the library. */
static int exercise(takt_producer *p, takt_consumer *c, unsigned round)
{
	static uint8_t rec[256], buf[16 * 264];
	struct takt_msg msgs[16];
	size_t len = (round * 37u) % 201u; /* lengths vary: the ring wraps and pads */
	int rc;

	/* fill with try_send, drain with try_recv (both ends hit -EAGAIN) */
	unsigned n = 0;
	for (;; n++) {
		tb_fill(rec, len, round, n);
		rc = takt_try_send(p, 1, rec, len);
		if (rc == -EAGAIN)
			break;
		CHECK(rc == 0, E_SEND);
	}
	CHECK(n > 0, E_COUNT);
	CHECK(takt_send(p, 1, rec, len, TAKT_NO_WAIT) == -EAGAIN, E_NOWAIT);
	for (unsigned i = 0; i < n; i++) {
		struct takt_msg m;
		rc = takt_try_recv(c, buf, sizeof buf, &m);
		CHECK(rc == (int)len, E_RECV);
		CHECK(tb_check(buf, len, round, i), E_DATA);
	}
	CHECK(takt_try_recv(c, buf, sizeof buf, NULL) == -EAGAIN, E_RECV);
	CHECK(takt_recv(c, buf, sizeof buf, NULL, TAKT_NO_WAIT) == -EAGAIN, E_NOWAIT);
	CHECK(takt_recv_batch(c, msgs, 4, buf, sizeof buf, TAKT_NO_WAIT) == -EAGAIN, E_NOWAIT);

	/* batches */
	struct takt_msg out[8];
	for (unsigned i = 0; i < 8; i++)
		out[i] = (struct takt_msg){.data = rec, .len = (uint32_t)(len / 2), .type = 2};
	rc = takt_try_send_batch(p, out, 8);
	CHECK(rc >= 1, E_BATCH_SEND);
	unsigned sent = (unsigned)rc, got = 0;
	while (got < sent) {
		rc = takt_try_recv_batch(c, msgs, 16, buf, sizeof buf);
		CHECK(rc >= 1, E_BATCH_RECV);
		got += (unsigned)rc;
	}
	CHECK(got == sent, E_BATCH_RECV);

	/* zero copy both ways */
	void *dst;
	CHECK(takt_reserve(p, len, &dst) == 0, E_RESERVE);
	tb_fill(dst, len, round, 1000);
	CHECK(takt_commit(p, 3, len) == 0, E_COMMIT);
	struct takt_msg m;
	CHECK(takt_peek(c, &m) == (int)len && m.type == 3, E_PEEK);
	CHECK(tb_check(m.data, m.len, round, 1000), E_DATA);
	CHECK(takt_release(c) == 0, E_RELEASE);

	/* blocking calls that need not wait: they return from their first try */
	tb_fill(rec, len, round, 2000);
	CHECK(takt_send(p, 4, rec, len, TAKT_FOREVER) == 0, E_BLOCK_SEND);
	CHECK(takt_send(p, 4, rec, len, takt_deadline_in(1000000000u)) == 0, E_BLOCK_SEND);
	CHECK(takt_recv(c, buf, sizeof buf, &m, TAKT_FOREVER) == (int)len, E_BLOCK_RECV);
	CHECK(tb_check(buf, len, round, 2000), E_DATA);
	CHECK(takt_recv_batch(c, msgs, 16, buf, sizeof buf, takt_deadline_in(1000000000u)) == 1,
	      E_BLOCK_RECV);
	return E_OK;
}

struct child_arg {
	const char *name;
	bool control_getpid;
};

static int hot_path_child(void *v)
{
	struct child_arg *a = v;
	takt_producer *p;
	takt_consumer *c;
	if (takt_producer_open(a->name, &p) != 0 || takt_consumer_open(a->name, &c) != 0)
		return E_OPEN;
	/* warm up: the same calls once, before the filter */
	for (unsigned r = 0; r < 64; r++) {
		int e = exercise(p, c, r);
		if (e)
			return e;
	}
	if (install_filter() != 0)
		return E_FILTER;
	if (a->control_getpid)
		syscall(SYS_getpid); /* must kill us */
	for (unsigned r = 0; r < ROUNDS; r++) {
		int e = exercise(p, c, r);
		if (e)
			raw_exit(e);
	}
	raw_exit(0);
}

static void skip_without_seccomp(void)
{
#ifndef TB_AUDIT_ARCH
	cr_skip_test("no seccomp architecture constant for this CPU");
#endif
}

Test(nosyscall, hot_path_makes_no_system_call)
{
	skip_without_seccomp();
	const char *name = tb_name("hot");
	tb_create(name, 4096, 1, 256);
	struct child_arg a = {.name = name};
	int st = tb_wait(tb_fork(hot_path_child, &a));
	if (WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS)
		cr_assert_fail("the hot path made a system call (killed by seccomp: SIGSYS)");
	cr_assert(WIFEXITED(st), "child: %s", tb_status_str(st));
	cr_assert_neq(WEXITSTATUS(st), E_FILTER, "could not install the seccomp filter");
	cr_assert_eq(WEXITSTATUS(st), 0, "hot-path step %d failed", WEXITSTATUS(st));
}

/* Control 1: the filter kills on a plain system call. */
Test(nosyscall, control_filter_catches_getpid)
{
	skip_without_seccomp();
	const char *name = tb_name("ctl");
	tb_create(name, 4096, 1, 256);
	struct child_arg a = {.name = name, .control_getpid = true};
	int st = tb_wait(tb_fork(hot_path_child, &a));
	cr_assert_neq(WIFEXITED(st) ? WEXITSTATUS(st) : 0, E_FILTER, "could not install the filter");
	cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS,
		  "getpid() under the filter did not kill the child: %s", tb_status_str(st));
}

static int parked_consumer(void *v)
{
	const char *name = v;
	takt_consumer *c;
	if (takt_consumer_open(name, &c) != 0)
		return 2;
	takt_consumer_set_spin_ns(c, 0);
	uint8_t buf[256];
	int rc = takt_recv(c, buf, sizeof buf, NULL, takt_deadline_in(30000000000ull));
	takt_consumer_close(c);
	return rc >= 0 ? 0 : 3;
}

static int send_under_filter(void *v)
{
	const char *name = v;
	takt_producer *p;
	if (takt_producer_open(name, &p) != 0)
		return E_OPEN;
	if (install_filter() != 0)
		return E_FILTER;
	uint8_t rec[16] = {0};
	int rc = takt_try_send(p, 1, rec, sizeof rec); /* must post: futex */
	raw_exit(rc == 0 ? 0 : E_SEND);
}

/* Control 2: with a consumer parked, the same try_send must make a system
 * call (the post), and the filter catches it. */
Test(nosyscall, control_send_to_parked_consumer_is_caught)
{
	skip_without_seccomp();
	const char *name = tb_name("ctl2");
	tb_create(name, 4096, 1, 256);
	takt_channel *ch;
	cr_assert_eq(takt_channel_open(name, TAKT_OPEN_RDONLY, &ch), 0);
	pid_t cons = tb_fork(parked_consumer, (void *)name);
	cr_assert(tb_wait_parked(tb_rx_bell(ch), cons), "the consumer did not park");
	int st = tb_wait(tb_fork(send_under_filter, (void *)name));
	kill(cons, SIGKILL);
	tb_wait(cons);
	takt_channel_close(ch);
	cr_assert_neq(WIFEXITED(st) ? WEXITSTATUS(st) : 0, E_FILTER, "could not install the filter");
	cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS,
		  "a send to a parked consumer was not caught by the filter: %s", tb_status_str(st));
}
