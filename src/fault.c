/* SPDX-License-Identifier: MIT */
/*
 * fault.c - the crash points of fault-injection builds (see fault.h).  Only
 * compiled into the library when TAKT_FAULT_POINTS is set; never in a
 * release build.  The environment is read on every call: this is a test
 * build, and it keeps the library free of global state.
 */
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include "fault.h"

#ifdef TAKT_FAULT_POINTS
static _Thread_local long calls_seen;

void takt_fault_point(int k)
{
	const char *at = getenv("TAKT_CRASH_AT");
	if (!at || atoi(at) != k)
		return;
	const char *after = getenv("TAKT_CRASH_AFTER");
	if (calls_seen++ >= (after ? atol(after) : 0))
		kill(getpid(), SIGKILL);
}
#endif
