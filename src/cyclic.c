/* SPDX-License-Identifier: MIT */
/*
 * cyclic.c - preparing a process for cyclic work: the usual real-time
 * set-up (lock memory, prefault the stack, SCHED_FIFO, CPU affinity), each
 * step attempted and reported, none fatal by itself.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <sys/mman.h>

#include "internal.h"

#define TAKT_DEFAULT_STACK_PREFAULT (256u * 1024u)

/* Touch `bytes` of stack below us now, so the cycle never faults on it. */
__attribute__((noinline)) static int prefault_stack(uint32_t bytes)
{
	if (bytes > 8u * 1024u * 1024u)
		return -EINVAL;
	volatile unsigned char *area = __builtin_alloca(bytes);
	for (uint32_t i = 0; i < bytes; i += 4096)
		area[i] = 0;
	if (bytes)
		area[bytes - 1] = 0;
	return 0;
}

int takt_cyclic_prepare(const struct takt_cyclic_config *cfg, struct takt_cyclic_report *report)
{
	if (!cfg || (cfg->flags & ~(unsigned)(TAKT_CYCLIC_MLOCK | TAKT_CYCLIC_FIFO | TAKT_CYCLIC_AFFINITY)))
		return -EINVAL;
	struct takt_cyclic_report r = {1, 1, 1, 1};
	if (cfg->flags & TAKT_CYCLIC_MLOCK)
		r.mlock = mlockall(MCL_CURRENT | MCL_FUTURE) == 0 ? 0 : -errno;
	r.stack = prefault_stack(cfg->stack_prefault ? cfg->stack_prefault
						     : TAKT_DEFAULT_STACK_PREFAULT);
	if (cfg->flags & TAKT_CYCLIC_AFFINITY) {
		if (cfg->cpu < 0 || cfg->cpu >= CPU_SETSIZE) {
			r.affinity = -EINVAL;
		} else {
			cpu_set_t set;
			CPU_ZERO(&set);
			CPU_SET(cfg->cpu, &set);
			r.affinity = -pthread_setaffinity_np(pthread_self(), sizeof set, &set);
		}
	}
	if (cfg->flags & TAKT_CYCLIC_FIFO) {
		struct sched_param sp;
		memset(&sp, 0, sizeof sp);
		sp.sched_priority = cfg->priority;
		r.fifo = -pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp);
	}
	if (report)
		*report = r;
	const int32_t steps[] = {r.mlock, r.stack, r.affinity, r.fifo};
	for (unsigned i = 0; i < sizeof steps / sizeof steps[0]; i++)
		if (steps[i] < 0)
			return steps[i];
	return 0;
}
