/* SPDX-License-Identifier: MIT */
/*
 * demo.h - what the "PLC" (plc.c) and "motion" (motion.c) examples share:
 * the layout of their 256-byte process images, the channel names, the
 * command line, the cyclic loop's timing and its summary.
 *
 * Everything here uses the public API (takt.h) only.
 */
#ifndef TAKT_DEMO_H
#define TAKT_DEMO_H

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "takt.h"

#define DEMO_IMAGE_SIZE 256u
#define DEMO_PERIOD_NS 1000000ull /* 1 ms */

/* ---- Process images: 256 bytes each, checksummed ------------------------ */

#define PLC_MAGIC 0x31434c50u    /* "PLC1" */
#define MOTION_MAGIC 0x31544f4du /* "MOT1" */

/* demo.plc.out: written by the PLC every cycle, read by motion. */
struct plc_image {
	uint32_t magic;
	uint32_t mode;        /* 1 = run */
	uint64_t cycle;       /* the PLC's cycle counter */
	uint64_t time_ns;     /* CLOCK_MONOTONIC at the start of the cycle */
	double setpoint;      /* target position, mm */
	double max_velocity;  /* mm/s */
	uint32_t enable;      /* 1: motion may move */
	uint8_t spare[DEMO_IMAGE_SIZE - 48];
	uint32_t checksum;    /* demo_checksum() of the bytes before it */
};

/* Motion modes (demo.motion.out). */
enum { MOTION_WAITING = 0, MOTION_MOVING = 1, MOTION_IN_POSITION = 2, MOTION_HOLD = 3 };

/* demo.motion.out: written by motion every cycle, read by the PLC. */
struct motion_image {
	uint32_t magic;
	uint32_t mode;        /* MOTION_* */
	uint64_t cycle;       /* motion's cycle counter */
	uint64_t time_ns;
	double position;      /* mm */
	double velocity;      /* mm/s */
	uint64_t plc_cycle;   /* the PLC cycle whose setpoint it follows */
	uint8_t spare[DEMO_IMAGE_SIZE - 52];
	uint32_t checksum;
};

_Static_assert(sizeof(struct plc_image) == DEMO_IMAGE_SIZE, "plc image is 256 bytes");
_Static_assert(sizeof(struct motion_image) == DEMO_IMAGE_SIZE, "motion image is 256 bytes");

/* FNV-1a over the image but its last 4 bytes (the checksum itself). */
static inline uint32_t demo_checksum(const void *image)
{
	const uint8_t *p = image;
	uint32_t h = 2166136261u;
	for (unsigned i = 0; i < DEMO_IMAGE_SIZE - 4; i++)
		h = (h ^ p[i]) * 16777619u;
	return h;
}

static inline const char *motion_mode_name(uint32_t mode)
{
	switch (mode) {
	case MOTION_WAITING: return "waiting";
	case MOTION_MOVING: return "moving";
	case MOTION_IN_POSITION: return "in-position";
	case MOTION_HOLD: return "hold";
	default: return "?";
	}
}

/* ---- Command line -------------------------------------------------------- */

struct demo_opts {
	double seconds;        /* run time; 0 = until SIGINT/SIGTERM */
	const char *prefix;    /* channel names: <prefix>.plc.out, ... */
	bool rt;               /* ask for mlockall + SCHED_FIFO */
	int priority;
	int cpu;               /* -1: no affinity */
	bool quiet;            /* no per-event lines, only the summary */
};

static inline void demo_usage(const char *prog, const char *what, FILE *f)
{
	fprintf(f,
		"Usage: %s [--seconds N] [--prefix P] [--no-rt] [--priority N] [--cpu N] [--quiet]\n"
		"\n"
		"%s"
		"\n"
		"  -s, --seconds N   run for N seconds (default 10; 0 = until SIGINT/SIGTERM)\n"
		"  -p, --prefix P    channel names P.plc.out, P.motion.out, P.events (default demo)\n"
		"  --no-rt           do not ask for mlockall and SCHED_FIFO\n"
		"  --priority N      SCHED_FIFO priority (default: plc 50, motion 49)\n"
		"  --cpu N           pin the cyclic thread to CPU N\n"
		"  -q, --quiet       print only the report and the summary\n",
		prog, what);
}

/* Returns -1 to continue, else an exit status. */
static inline int demo_parse(int argc, char **argv, struct demo_opts *o, const char *what)
{
	static const struct option opts[] = {
		{"seconds", required_argument, NULL, 's'},
		{"prefix", required_argument, NULL, 'p'},
		{"no-rt", no_argument, NULL, 'R'},
		{"priority", required_argument, NULL, 'P'},
		{"cpu", required_argument, NULL, 'c'},
		{"quiet", no_argument, NULL, 'q'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int c;
	char *end;
	while ((c = getopt_long(argc, argv, "s:p:qh", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			o->seconds = strtod(optarg, &end);
			if (*end || o->seconds < 0 || o->seconds > 1e6) {
				fprintf(stderr, "%s: bad --seconds \"%s\"\n", argv[0], optarg);
				return 2;
			}
			break;
		case 'p': o->prefix = optarg; break;
		case 'R': o->rt = false; break;
		case 'P': o->priority = atoi(optarg); break;
		case 'c': o->cpu = atoi(optarg); break;
		case 'q': o->quiet = true; break;
		case 'h': demo_usage(argv[0], what, stdout); return 0;
		default: demo_usage(argv[0], what, stderr); return 2;
		}
	}
	if (optind != argc) {
		demo_usage(argv[0], what, stderr);
		return 2;
	}
	return -1;
}

static inline void demo_name(char *buf, size_t n, const struct demo_opts *o, const char *suffix)
{
	snprintf(buf, n, "%s.%s", o->prefix, suffix);
}

/* ---- Set-up ------------------------------------------------------------------ */

static volatile sig_atomic_t demo_stop;

static void demo_on_signal(int sig)
{
	(void)sig;
	demo_stop = 1;
}

static inline void demo_catch_signals(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = demo_on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

/* Create a state channel unless it exists (the peer may create it first). */
static inline int demo_create_state(const char *name)
{
	struct takt_state_config cfg = {.image_size = DEMO_IMAGE_SIZE, .mode = 0660};
	int rc = takt_state_create(name, &cfg);
	return rc == -EEXIST ? 0 : rc;
}

/* Open calls meet -EAGAIN while the peer is still creating the channel:
 *   uint64_t until = takt_deadline_in(1000000000ull);
 *   while (demo_retry(rc = takt_state_reader_open(name, &r), until)) ;
 * retries for up to a second. */
static inline bool demo_retry(int rc, uint64_t until)
{
	if (rc != -EAGAIN || takt_now_ns() >= until)
		return false;
	struct timespec ts = {0, 1000000};
	nanosleep(&ts, NULL);
	return true;
}

static inline const char *demo_step(int32_t v, char *buf, size_t n)
{
	if (v == 1)
		snprintf(buf, n, "not asked");
	else if (v == 0)
		snprintf(buf, n, "ok");
	else
		snprintf(buf, n, "refused (%s)", strerror(-v));
	return buf;
}

/* Ask for what a real-time task wants; print what was granted.  Refusals
 * (no CAP_SYS_NICE, RLIMIT_MEMLOCK, a container) are not fatal: the loop
 * runs anyway, with more jitter. */
static inline void demo_prepare(const char *role, const struct demo_opts *o)
{
	struct takt_cyclic_config cfg = {.priority = o->priority, .cpu = o->cpu};
	if (o->rt)
		cfg.flags |= TAKT_CYCLIC_MLOCK | TAKT_CYCLIC_FIFO;
	if (o->cpu >= 0)
		cfg.flags |= TAKT_CYCLIC_AFFINITY;
	struct takt_cyclic_report r;
	int rc = takt_cyclic_prepare(&cfg, &r);
	char a[64], b[64], c[64], d[64];
	printf("%s: cyclic prepare: mlock %s, stack %s, SCHED_FIFO(%d) %s, affinity %s%s\n", role,
	       demo_step(r.mlock, a, sizeof a), demo_step(r.stack, b, sizeof b), o->priority,
	       demo_step(r.fifo, c, sizeof c), demo_step(r.affinity, d, sizeof d),
	       rc < 0 ? " (running without it)" : "");
	fflush(stdout);
}

/* ---- The cycle's timing -------------------------------------------------- */

struct demo_timing {
	uint64_t period_ns;
	uint64_t next_ns;       /* intended start of the next cycle */
	uint64_t cycles;
	uint64_t misses;        /* cycles that started more than a period late */
	uint64_t skipped;       /* cycles dropped to catch up after a long stall */
	uint64_t max_late_ns;
	uint64_t sum_late_ns;
};

static inline void demo_timing_start(struct demo_timing *t, uint64_t period_ns)
{
	memset(t, 0, sizeof *t);
	t->period_ns = period_ns;
	/* start on a period boundary of the monotonic clock: two processes
	 * with the same period then run in a fixed phase to each other */
	uint64_t now = takt_now_ns();
	t->next_ns = (now / period_ns + 1) * period_ns;
}

/* Sleep until the next cycle's intended time (TIMER_ABSTIME: no drift);
 * account its lateness.  Returns the lateness in ns. */
static inline uint64_t demo_wait_cycle(struct demo_timing *t)
{
	struct timespec ts = {.tv_sec = (time_t)(t->next_ns / 1000000000u),
			      .tv_nsec = (long)(t->next_ns % 1000000000u)};
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR && !demo_stop)
		;
	uint64_t now = takt_now_ns();
	uint64_t late = now > t->next_ns ? now - t->next_ns : 0;
	t->cycles++;
	t->sum_late_ns += late;
	if (late > t->max_late_ns)
		t->max_late_ns = late;
	if (late > t->period_ns)
		t->misses++;
	t->next_ns += t->period_ns;
	/* After a stall of several periods, do not run the missed cycles back to
	 * back: resume at the next boundary after now. */
	if (now >= t->next_ns) {
		uint64_t behind = (now - t->next_ns) / t->period_ns + 1;
		t->skipped += behind;
		t->next_ns += behind * t->period_ns;
	}
	return late;
}

/* When a run of `seconds` (0: no limit) that starts now ends. */
static inline uint64_t demo_end_ns(double seconds)
{
	return seconds > 0 ? takt_deadline_in((uint64_t)(seconds * 1e9)) : TAKT_FOREVER;
}

#endif
