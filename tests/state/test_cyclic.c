/* SPDX-License-Identifier: MIT */
/*
 * test_cyclic.c - takt_cyclic_prepare: every step is attempted and
 * reported, none is fatal by itself, and the report says what the kernel
 * did (checked against sched_getcpu, pthread_getaffinity_np,
 * pthread_getschedparam and /proc/self/status).  Steps that change the
 * process (SCHED_FIFO, mlockall, dropping root) run in forked children that
 * report through shared memory.
 */
#include "ts_common.h"

#if defined(__SANITIZE_THREAD__)
#define TS_UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TS_UNDER_TSAN 1
#endif
#endif
#ifndef TS_UNDER_TSAN
#define TS_UNDER_TSAN 0
#endif


#include <criterion/logging.h>
#include <grp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

TS_SUITE(cyclic);

#define NOBODY 65534

struct outcome {
	int rc;
	struct takt_cyclic_report rep;
	int policy;       /* pthread_getschedparam after the call */
	int priority;
	int cpu;          /* sched_getcpu after the call */
	int cpus_in_mask;
	int mask_has_0;
	long vmlck_kb;    /* VmLck of /proc/self/status */
	int setup_failed; /* the child could not prepare (e.g. setuid) */
	int canary_ok;
};

static long vmlck_kb(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	if (!f)
		return -1;
	char line[256];
	long kb = -1;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "VmLck: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

static void observe(struct outcome *o)
{
	struct sched_param sp;
	memset(&sp, 0, sizeof sp);
	pthread_getschedparam(pthread_self(), &o->policy, &sp);
	o->priority = sp.sched_priority;
	o->cpu = sched_getcpu();
	cpu_set_t set;
	CPU_ZERO(&set);
	pthread_getaffinity_np(pthread_self(), sizeof set, &set);
	o->cpus_in_mask = CPU_COUNT(&set);
	o->mask_has_0 = CPU_ISSET(0, &set);
	o->vmlck_kb = vmlck_kb();
}

/* Drop root for good: no RT priority and no locked memory allowed by rlimit. */
static int become_nobody(void)
{
	struct rlimit zero = {0, 0};
	if (setrlimit(RLIMIT_RTPRIO, &zero) != 0 || setrlimit(RLIMIT_MEMLOCK, &zero) != 0)
		return -1;
	if (getuid() == 0) {
		if (setgroups(0, NULL) != 0 || setgid(NOBODY) != 0 || setuid(NOBODY) != 0)
			return -1;
	}
	return geteuid() == 0 ? -1 : 0;
}

/* Run takt_cyclic_prepare(cfg) in a child (as nobody if asked) and return what happened. */
static struct outcome in_child(const struct takt_cyclic_config *cfg, bool nobody)
{
	struct outcome *o = ts_shared(sizeof *o);
	pid_t pid = ts_fork();
	if (pid == 0) {
		if (nobody && become_nobody() != 0) {
			o->setup_failed = 1;
			_exit(0);
		}
		o->rc = takt_cyclic_prepare(cfg, &o->rep);
		observe(o);
		_exit(0);
	}
	int st = ts_wait(pid);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child: %s", ts_status_str(st));
	struct outcome out = *o;
	ts_shared_free(o, sizeof *o);
	cr_assert_eq(out.setup_failed, 0, "could not drop root in the child");
	return out;
}

/* The documented return: 0 if every requested step succeeded, else the first failure. */
static void assert_rc_matches_report(const struct outcome *o)
{
	const int32_t steps[] = {o->rep.mlock, o->rep.stack, o->rep.affinity, o->rep.fifo};
	int expect = 0;
	for (unsigned i = 0; i < 4 && expect == 0; i++)
		if (steps[i] < 0)
			expect = steps[i];
	cr_assert_eq(o->rc, expect, "returned %d; report mlock %d stack %d affinity %d fifo %d", o->rc,
		     o->rep.mlock, o->rep.stack, o->rep.affinity, o->rep.fifo);
}

Test(cyclic, no_flags_prefaults_stack_only)
{
	struct takt_cyclic_config cfg = {0};
	struct takt_cyclic_report rep;
	memset(&rep, 0x55, sizeof rep);
	cr_assert_eq(takt_cyclic_prepare(&cfg, &rep), 0);
	cr_assert_eq(rep.stack, 0);
	cr_assert_eq(rep.mlock, 1, "not asked: 1");
	cr_assert_eq(rep.fifo, 1);
	cr_assert_eq(rep.affinity, 1);
	cr_assert_eq(takt_cyclic_prepare(&cfg, NULL), 0, "report may be NULL");
	cfg.stack_prefault = 64 * 1024;
	cr_assert_eq(takt_cyclic_prepare(&cfg, &rep), 0);
	cr_assert_eq(rep.stack, 0);
	/* nothing about the thread changed */
	struct outcome o;
	memset(&o, 0, sizeof o);
	observe(&o);
	cr_assert_eq(o.policy, SCHED_OTHER);
}

Test(cyclic, invalid_arguments)
{
	struct takt_cyclic_report rep;
	cr_assert_eq(takt_cyclic_prepare(NULL, &rep), -EINVAL);
	struct takt_cyclic_config cfg = {.flags = 1u << 3};
	cr_assert_eq(takt_cyclic_prepare(&cfg, &rep), -EINVAL, "unknown flag");
	cfg.flags = 0x80000000u;
	cr_assert_eq(takt_cyclic_prepare(&cfg, &rep), -EINVAL, "unknown flag");
}

Test(cyclic, stack_prefault_too_large_reported)
{
	struct takt_cyclic_config cfg = {.stack_prefault = 64u << 20};
	struct takt_cyclic_report rep;
	int rc = takt_cyclic_prepare(&cfg, &rep);
	cr_assert_lt(rep.stack, 0, "a 64 MiB stack prefault must be refused");
	cr_assert_eq(rc, rep.stack);
}

/*
 * The prefault must stay inside the calling thread's stack.  A cyclic
 * thread with a 64 KiB stack (its own memory, with a canary area below it)
 * asks for the default prefault (256 KiB): the call must not write below
 * the stack (nor crash); refusing or clamping the prefault is fine.
 */
#define SMALL_STACK (64u * 1024u)
#define CANARY_AREA (1024u * 1024u)

static void *small_stack_thread(void *p)
{
	struct outcome *o = p;
	struct takt_cyclic_config cfg = {0};
	o->rc = takt_cyclic_prepare(&cfg, &o->rep);
	return NULL;
}

Test(cyclic, prefault_stays_inside_a_small_thread_stack)
{
	struct outcome *o = ts_shared(sizeof *o);
	pid_t pid = ts_fork();
	if (pid == 0) {
		uint8_t *area = mmap(NULL, CANARY_AREA + SMALL_STACK, PROT_READ | PROT_WRITE,
				     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (area == MAP_FAILED)
			_exit(2);
		memset(area, 0xab, CANARY_AREA);
		pthread_attr_t attr;
		pthread_attr_init(&attr);
		if (pthread_attr_setstack(&attr, area + CANARY_AREA, SMALL_STACK) != 0)
			_exit(3);
		pthread_t t;
		if (pthread_create(&t, &attr, small_stack_thread, o) != 0)
			_exit(TS_UNDER_TSAN ? 77 : 4); /* TSan refuses such small custom stacks */
		pthread_join(t, NULL);
		o->canary_ok = 1;
		for (size_t i = 0; i < CANARY_AREA; i++)
			if (area[i] != 0xab) {
				o->canary_ok = 0;
				break;
			}
		_exit(0);
	}
	int st = ts_wait(pid);
	if (TS_UNDER_TSAN && WIFEXITED(st) && WEXITSTATUS(st) == 77)
		cr_skip_test("ThreadSanitizer cannot run a thread on a 64 KiB custom stack");
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		  "takt_cyclic_prepare (default 256 KiB prefault) on a thread with a 64 KiB stack: %s",
		  ts_status_str(st));
	cr_assert(o->canary_ok, "takt_cyclic_prepare wrote below the calling thread's 64 KiB stack "
		  "(default 256 KiB prefault; report.stack = %d)", o->rep.stack);
	ts_shared_free(o, sizeof *o);
}

/* Same on the main thread: a prefault as large as the whole stack limit. */
Test(cyclic, prefault_as_large_as_the_stack_limit)
{
	struct outcome *o = ts_shared(sizeof *o);
	pid_t pid = ts_fork();
	if (pid == 0) {
		struct rlimit rl;
		if (getrlimit(RLIMIT_STACK, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY ||
		    rl.rlim_cur > (8u << 20)) {
			rl.rlim_cur = 8u << 20;
			if (setrlimit(RLIMIT_STACK, &rl) != 0)
				_exit(2);
		}
		struct takt_cyclic_config cfg = {.stack_prefault = (uint32_t)rl.rlim_cur};
		o->rc = takt_cyclic_prepare(&cfg, &o->rep);
		_exit(0);
	}
	int st = ts_wait(pid);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		  "takt_cyclic_prepare with stack_prefault = RLIMIT_STACK on the main thread: %s "
		  "(the prefault must be refused or clamped, not overflow the stack)", ts_status_str(st));
	cr_assert_eq(o->rc, o->rep.stack);
	ts_shared_free(o, sizeof *o);
}

/* ---- affinity ------------------------------------------------------------------ */

Test(cyclic, affinity_cpu0)
{
	struct takt_cyclic_config cfg = {.flags = TAKT_CYCLIC_AFFINITY, .cpu = 0};
	struct takt_cyclic_report rep;
	int rc = takt_cyclic_prepare(&cfg, &rep);
	cr_assert_eq(rc, 0, "affinity to CPU 0: %d", rc);
	cr_assert_eq(rep.affinity, 0);
	cr_assert_eq(rep.stack, 0);
	cr_assert_eq(rep.fifo, 1);
	cr_assert_eq(rep.mlock, 1);
	cr_assert_eq(sched_getcpu(), 0);
	struct outcome o;
	memset(&o, 0, sizeof o);
	observe(&o);
	cr_assert_eq(o.cpus_in_mask, 1);
	cr_assert(o.mask_has_0);
	/* and it stays there */
	for (int i = 0; i < 100; i++) {
		sched_yield();
		cr_assert_eq(sched_getcpu(), 0);
	}
}

Test(cyclic, affinity_last_cpu)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	cr_assert_eq(pthread_getaffinity_np(pthread_self(), sizeof set, &set), 0);
	int last = -1;
	for (int c = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, &set))
			last = c;
	cr_assert_geq(last, 0);
	struct takt_cyclic_config cfg = {.flags = TAKT_CYCLIC_AFFINITY, .cpu = last};
	struct takt_cyclic_report rep;
	cr_assert_eq(takt_cyclic_prepare(&cfg, &rep), 0);
	cr_assert_eq(rep.affinity, 0);
	cr_assert_eq(sched_getcpu(), last);
}

Test(cyclic, affinity_invalid_cpu)
{
	cpu_set_t before;
	CPU_ZERO(&before);
	cr_assert_eq(pthread_getaffinity_np(pthread_self(), sizeof before, &before), 0);
	const int32_t bad[] = {-1, INT32_MIN, CPU_SETSIZE, CPU_SETSIZE - 1, 100000};
	for (unsigned i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		if (bad[i] >= 0 && bad[i] < CPU_SETSIZE && bad[i] < sysconf(_SC_NPROCESSORS_CONF))
			continue; /* exists on this machine after all */
		struct takt_cyclic_config cfg = {.flags = TAKT_CYCLIC_AFFINITY, .cpu = bad[i]};
		struct takt_cyclic_report rep;
		memset(&rep, 0, sizeof rep);
		int rc = takt_cyclic_prepare(&cfg, &rep);
		cr_assert_eq(rep.affinity, -EINVAL, "cpu %d: report.affinity = %d", bad[i], rep.affinity);
		cr_assert_eq(rc, -EINVAL, "cpu %d: returned %d", bad[i], rc);
		cr_assert_eq(rep.stack, 0, "cpu %d: the other steps are still done", bad[i]);
		cpu_set_t after;
		CPU_ZERO(&after);
		cr_assert_eq(pthread_getaffinity_np(pthread_self(), sizeof after, &after), 0);
		cr_assert(CPU_EQUAL(&before, &after), "cpu %d: a refused affinity changed the mask", bad[i]);
	}
}

/* ---- SCHED_FIFO ------------------------------------------------------------------ */

Test(cyclic, fifo_as_root_reported_as_the_kernel_says)
{
	if (geteuid() != 0)
		cr_skip_test("not root");
	struct takt_cyclic_config cfg = {.flags = TAKT_CYCLIC_FIFO, .priority = 10};
	struct outcome o = in_child(&cfg, false);
	assert_rc_matches_report(&o);
	cr_log_info("SCHED_FIFO as root: report.fifo = %d", o.rep.fifo);
	if (o.rep.fifo == 0) {
		cr_assert_eq(o.policy, SCHED_FIFO, "reported done, but the policy is %d", o.policy);
		cr_assert_eq(o.priority, 10);
	} else {
		cr_assert_lt(o.rep.fifo, 0);
		cr_assert_neq(o.rep.fifo, 1);
		cr_assert_eq(o.policy, SCHED_OTHER, "reported refused, but the policy is %d", o.policy);
	}
	cr_assert_eq(o.rep.stack, 0);

	/* priorities outside 1..99 are refused by the kernel with EINVAL */
	const int32_t bad[] = {0, 100, -1};
	for (unsigned i = 0; i < 3; i++) {
		cfg.priority = bad[i];
		o = in_child(&cfg, false);
		cr_assert_eq(o.rep.fifo, -EINVAL, "priority %d: report.fifo = %d", bad[i], o.rep.fifo);
		cr_assert_eq(o.rc, -EINVAL);
		cr_assert_eq(o.policy, SCHED_OTHER);
	}
}

Test(cyclic, fifo_as_nobody_refused_with_eperm)
{
	if (geteuid() != 0)
		cr_skip_test("needs root to become nobody");
	struct takt_cyclic_config cfg = {.flags = TAKT_CYCLIC_FIFO | TAKT_CYCLIC_AFFINITY,
					 .priority = 10, .cpu = 0};
	struct outcome o = in_child(&cfg, true);
	cr_assert_eq(o.rep.fifo, -EPERM, "report.fifo = %d", o.rep.fifo);
	cr_assert_eq(o.rc, -EPERM, "returned %d", o.rc);
	cr_assert_eq(o.policy, SCHED_OTHER);
	/* not fatal: the other steps were done */
	cr_assert_eq(o.rep.affinity, 0);
	cr_assert_eq(o.cpu, 0);
	cr_assert_eq(o.rep.stack, 0);
	cr_assert_eq(o.rep.mlock, 1);
	assert_rc_matches_report(&o);
}

/* ---- mlockall ----------------------------------------------------------------------- */

Test(cyclic, mlock_as_root_reported_as_the_kernel_says)
{
	if (geteuid() != 0)
		cr_skip_test("not root");
	if (TS_SANITIZED)
		cr_skip_test("the sanitizers intercept mlockall() as a no-op returning 0");
	struct takt_cyclic_config cfg = {.flags = TAKT_CYCLIC_MLOCK};
	struct outcome o = in_child(&cfg, false);
	assert_rc_matches_report(&o);
	cr_log_info("mlockall as root: report.mlock = %d, VmLck %ld kB", o.rep.mlock, o.vmlck_kb);
	if (o.rep.mlock == 0)
		cr_assert_gt(o.vmlck_kb, 0, "reported locked, but VmLck is %ld kB", o.vmlck_kb);
	else
		cr_assert_lt(o.rep.mlock, 0);
	cr_assert_eq(o.rep.stack, 0);
}

Test(cyclic, mlock_as_nobody_reported_not_fatal)
{
	if (geteuid() != 0)
		cr_skip_test("needs root to become nobody");
	struct takt_cyclic_config cfg = {.flags = TAKT_CYCLIC_MLOCK | TAKT_CYCLIC_AFFINITY |
						  TAKT_CYCLIC_FIFO,
					 .priority = 5, .cpu = 0};
	struct outcome o = in_child(&cfg, true);
	if (TS_SANITIZED) {
		/* the sanitizers' mlockall() interceptor does nothing and returns 0 */
		cr_assert(o.rep.mlock == 0 || o.rep.mlock == -EPERM, "report.mlock = %d", o.rep.mlock);
	} else {
		cr_assert_eq(o.rep.mlock, -EPERM, "report.mlock = %d (RLIMIT_MEMLOCK 0, no CAP_IPC_LOCK)",
			     o.rep.mlock);
	}
	cr_assert_eq(o.vmlck_kb, 0);
	cr_assert_eq(o.rep.fifo, -EPERM);
	cr_assert_eq(o.rep.affinity, 0, "affinity is still done after a refused mlock");
	cr_assert_eq(o.cpu, 0);
	cr_assert_eq(o.rep.stack, 0);
	cr_assert_eq(o.rc, -EPERM, "returns the first failure");
	assert_rc_matches_report(&o);
}
