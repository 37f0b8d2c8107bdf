/* SPDX-License-Identifier: MIT */
/*
 * harness.h - the cross-process harness: forks the peer process, pins both,
 * synchronises their start, and runs the two workloads over any mechanism:
 *
 *   latency:  the parent (ping) sends a record, the child (pong) echoes it,
 *             the parent times each round trip individually into a histogram;
 *   stream:   the child (producer) sends records as fast as it can, the
 *             parent (consumer) receives and checks them and measures the
 *             rate over a fixed window after a warm-up.
 *
 * A watchdog in every spin loop (every 2^16 empty polls) aborts when the peer
 * died, reported an error, or the hard deadline passed: the harness never
 * hangs.
 */
#ifndef TAKT_BENCH_HARNESS_H
#define TAKT_BENCH_HARNESS_H

#include <stdint.h>
#include <time.h>

#include "histogram.h"
#include "mech.h"

enum bench_timer { TIMER_CLOCK, TIMER_TSC };

struct bench_opts {
	uint64_t iterations;      /* timed round trips per latency measurement */
	uint64_t warmup;          /* untimed round trips before them */
	double seconds;           /* streaming window */
	double warmup_seconds;    /* streaming warm-up before the window */
	double timeout_seconds;   /* hard limit per measurement */
	int pin;                  /* pin parent to cpu[0], child to cpu[1] */
	int cpu[2];
	const char *names[2];     /* process names: parent, child (prctl) */
	uint64_t verify_every;    /* full-payload checksum on every Nth record (power
				     of two; 0 = 1024); sequence and check word: always */
	int mlock;                /* children: mlockall(MCL_CURRENT | MCL_FUTURE) */
	int poll_pause;           /* latency: a pause instruction after every poll
				     that finds nothing (as takt_recv's spin does);
				     0: poll back to back */
};

struct lat_result {
	struct hist hist;         /* nanoseconds per round trip */
	double seconds;           /* wall time of the timed part */
	int pid[2], cpu[2];       /* parent, child: pid and CPU at the start */
	uint64_t verified;        /* records whose whole payload was checksummed */
	int err;                  /* 0 or negative errno */
	char msg[256];
};

struct stream_result {
	uint64_t records;         /* received in the window */
	double seconds;           /* length of the window */
	double rate;              /* records per second */
	double mbps;              /* payload MB/s (10^6 bytes) */
	uint64_t full_events;     /* producer: sends that found the ring full */
	uint64_t empty_polls;     /* consumer: receives that found it empty */
	uint64_t total_records;   /* received in all (warm-up and window), all checked */
	uint64_t total_bytes;     /* payload bytes of those */
	uint64_t verified;        /* records whose whole payload was checksummed */
	unsigned producers;
	int pid[2], cpu[2];       /* parent, child: pid and CPU at the start */
	int err;
	char msg[256];
};

/* Timer used for round trips: clock_gettime(CLOCK_MONOTONIC) or rdtscp
 * calibrated against it. */
void bench_timer_init(enum bench_timer t);
enum bench_timer bench_timer_mode(void);
double bench_timer_overhead_ns(void);  /* cost of one reading, measured (mean) */
double bench_timer_resolution_ns(void);/* smallest nonzero step seen */
double bench_tsc_ghz(void);            /* 0 unless TIMER_TSC */

uint64_t bench_now_ns(void);           /* CLOCK_MONOTONIC */

int bench_latency(const struct bench_mech *m, const struct bench_params *p,
		  const struct bench_opts *o, struct lat_result *out);
/* batched: use the mechanism's batch calls (p->batch records per call).
 * p->producers > 1: that many producer processes (MPSC); each record then
 * carries its producer's index in the sequence word's top 16 bits and the
 * consumer checks every producer's sequence. */
int bench_stream(const struct bench_mech *m, const struct bench_params *p,
		 const struct bench_opts *o, int batched, struct stream_result *out);

/* --poll's value: 1 for "pause", 0 for "tight", -1 for anything else. */
int bench_parse_poll(const char *s);

/* Pin the calling thread to one CPU; -errno on failure. */
int bench_pin(int cpu);
/* The CPU this thread runs on now. */
int bench_current_cpu(void);

/* Facts for reports: CPU model, kernel, date (UTC, ISO 8601). */
struct bench_sysinfo {
	char cpu_model[128];
	char kernel[256];
	char date[64];
	char host[80];
	int ncpu;
};
void bench_sysinfo_get(struct bench_sysinfo *s);

/* Disturbance check: CPU time other processes (and the hypervisor: steal)
 * took while we measured.  Busy-polling benchmarks on a shared machine are
 * only meaningful when this is near zero. */
struct bench_cpu_snap {
	double busy_s;   /* all CPUs: user+nice+system+irq+softirq */
	double steal_s;  /* all CPUs: stolen by the hypervisor */
	double own_s;    /* this process and its reaped children */
	double wall_s;
};
void bench_cpu_snap(struct bench_cpu_snap *s);
/* Percent of all CPUs' time, between two snapshots. */
void bench_cpu_disturbance(const struct bench_cpu_snap *a, const struct bench_cpu_snap *b,
			   double *foreign_pct, double *steal_pct);

/* Progress line on stderr (only when stderr is a terminal, and only once a
 * step has run for 2 s): bench_progress_label() names the step,
 * bench_progress() reports the fraction done, bench_progress_end() clears. */
void bench_progress_label(const char *label);
void bench_progress(double frac);
void bench_progress_end(void);

/* Payload stamping and checking, shared with the cyclic harness and tests. */
void bench_payload_init(void *buf, size_t size);  /* the fixed body pattern */
void bench_payload_stamp(void *buf, size_t size, uint64_t seq);
/* 0 if buf holds record seq intact (full: recompute the body checksum too). */
int bench_payload_check(const void *buf, size_t size, uint64_t seq, int full);

/* Format a nanosecond figure with 3 significant digits: "132 ns", "1.25 us". */
const char *bench_fmt_ns(char *buf, size_t cap, uint64_t ns);

#endif
