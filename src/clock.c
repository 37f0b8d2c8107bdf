/* SPDX-License-Identifier: MIT */
/* clock.c - CLOCK_MONOTONIC time and deadlines. */
#include <time.h>

#include "internal.h"

static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t takt_now_ns(void)
{
	return clock_ns(CLOCK_MONOTONIC);
}

/* Coarse (jiffy-resolution) monotonic time for activity stamps off the hot
 * path; the vDSO serves it without a system call. */
uint64_t takt_coarse_ns(void)
{
	return clock_ns(CLOCK_MONOTONIC_COARSE);
}

uint64_t takt_deadline_in(uint64_t timeout_ns)
{
	if (timeout_ns == TAKT_FOREVER)
		return TAKT_FOREVER;
	uint64_t now = takt_now_ns();
	return (timeout_ns > TAKT_FOREVER - now) ? TAKT_FOREVER : now + timeout_ns;
}
