/* SPDX-License-Identifier: MIT */
/*
 * cyclic.h - the cyclic harness: a period-T task (clock_nanosleep with
 * TIMER_ABSTIME on CLOCK_MONOTONIC) in one process sends one record per
 * cycle; the consumer in another measures each record's latency from the
 * cycle's intended start time, which the record carries (so a late cycle
 * counts in full: no coordinated omission), and counts deadline misses.
 *
 *   CYC_NONE   no IPC: the task's own wake-up lateness (the platform)
 *   CYC_QUEUE  takt queue channel: takt_try_send per cycle; the consumer
 *              blocks in takt_recv
 *   CYC_STATE  takt state channel: takt_state_write per cycle; the consumer
 *              blocks in takt_state_wait_newer, then takt_state_read
 *
 * Every variant also records the task's wake-up lateness in the same run.
 */
#ifndef TAKT_BENCH_CYCLIC_H
#define TAKT_BENCH_CYCLIC_H

#include <stddef.h>
#include <stdint.h>

#include "histogram.h"

enum cyc_variant { CYC_NONE, CYC_QUEUE, CYC_STATE };

struct cyc_opts {
	uint64_t period_ns;
	uint64_t cycles;        /* measured cycles */
	uint64_t warmup_cycles; /* before them, not recorded */
	uint64_t deadline_ns;   /* a record (or wake-up) later than this after its
				   intended start is a deadline miss */
	size_t size;            /* record bytes (>= 16) */
	int pin, cpu[2];        /* consumer on cpu[0], task on cpu[1] */
	int fifo_prio;          /* 0: SCHED_OTHER; else SCHED_FIFO in both processes */
	int mlock;
	uint32_t spin_ns;       /* consumer's spin budget before parking (queue) */
	double timeout_seconds;
};

struct cyc_result {
	struct hist task;       /* task wake-up lateness, ns */
	struct hist lat;        /* consumer: receipt - intended start, ns (queue, state) */
	uint64_t task_misses;   /* wake-ups later than the deadline */
	uint64_t misses;        /* records received later than the deadline */
	uint64_t skipped;       /* state: images overwritten before the reader saw them */
	uint64_t send_full;     /* queue: sends refused (ring full) */
	uint64_t received;
	char prep[160];         /* what SCHED_FIFO / mlockall did */
	int err;
	char msg[256];
};

int bench_cyclic(enum cyc_variant v, const struct cyc_opts *o, unsigned id,
		 struct cyc_result *out);

#endif
