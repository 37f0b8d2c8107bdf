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

#define TAKT_STACK_MARGIN (64u * 1024u) /* left untouched below the prefault */

/* Bytes of this thread's stack still free below the caller's frame. */
static size_t stack_room(void)
{
	pthread_attr_t attr;
	void *lo;
	size_t size;
	if (pthread_getattr_np(pthread_self(), &attr) != 0)
		return 0;
	int rc = pthread_attr_getstack(&attr, &lo, &size);
	pthread_attr_destroy(&attr);
	uintptr_t here = (uintptr_t)__builtin_frame_address(0);
	if (rc != 0 || here < (uintptr_t)lo)
		return 0;
	size_t room = here - (uintptr_t)lo;
	return room > TAKT_STACK_MARGIN ? room - TAKT_STACK_MARGIN : 0;
}

/* Touch `bytes` of stack below us now, so the cycle never faults on it. */
__attribute__((noinline)) static int touch_stack(size_t bytes)
{
	volatile unsigned char *area = __builtin_alloca(bytes);
	for (size_t i = 0; i < bytes; i += 4096)
		area[i] = 0;
	if (bytes)
		area[bytes - 1] = 0;
	return 0;
}

/* An explicit request must fit in the thread's stack (-ENOSPC otherwise);
 * the default shrinks to what fits. */
static int prefault_stack(uint32_t requested)
{
	size_t room = stack_room();
	size_t bytes = requested ? requested : TAKT_DEFAULT_STACK_PREFAULT;
	if (bytes > room) {
		if (requested)
			return -ENOSPC;
		bytes = room;
	}
	return touch_stack(bytes);
}

int takt_cyclic_prepare(const struct takt_cyclic_config *cfg, struct takt_cyclic_report *report)
{
	if (!cfg || (cfg->flags & ~(unsigned)(TAKT_CYCLIC_MLOCK | TAKT_CYCLIC_FIFO | TAKT_CYCLIC_AFFINITY)))
		return -EINVAL;
	struct takt_cyclic_report r = {1, 1, 1, 1};
	if (cfg->flags & TAKT_CYCLIC_MLOCK)
		r.mlock = mlockall(MCL_CURRENT | MCL_FUTURE) == 0 ? 0 : -errno;
	r.stack = prefault_stack(cfg->stack_prefault);
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
