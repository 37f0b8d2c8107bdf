/* SPDX-License-Identifier: MIT */
/*
 * fault.h - numbered crash points for the fault-injection tests.  In a
 * build with TAKT_FAULT_POINTS, TAKT_FAULT_POINT(k) kills the process with
 * SIGKILL when the environment variable TAKT_CRASH_AT names point k and
 * TAKT_CRASH_AFTER (default 0) calls of it have passed.  Normal builds
 * compile it to nothing.
 */
#ifndef TAKT_FAULT_H
#define TAKT_FAULT_H

#ifdef TAKT_FAULT_POINTS
void takt_fault_point(int k);
#define TAKT_FAULT_POINT(k) takt_fault_point(k)
#else
#define TAKT_FAULT_POINT(k) ((void)0)
#endif

#endif
