/* SPDX-License-Identifier: MIT */
/*
 * takt-bench - takt against the hardware limit and every kernel IPC
 * mechanism, with one harness (harness.c), the same record sizes and counts.
 * `takt bench ARGS` executes this program.
 *
 *   takt-bench [compare] [options]   ping-pong round trips and one-way
 *                                    streaming for every mechanism, every
 *                                    --size, busy-poll and blocking modes
 *   takt-bench mpsc [options]        streaming with --producers N processes:
 *                                    takt MPSC against takt SPSC, ck_ring and
 *                                    the kernel mechanisms that take several
 *                                    writers
 *   takt-bench cyclic [options]      a period-T task: no IPC, takt queue,
 *                                    takt state; latency from the intended
 *                                    cycle start, deadline misses
 *   takt-bench list                  the mechanisms and the system's limits
 *
 * Output: a table (stdout), --json or --csv (stdout; the table then goes to
 * stderr).  docs/BENCHMARKS.md explains every figure.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <takt.h>

#include "cyclic.h"
#include "harness.h"
#include "mech.h"
#include "report.h"

/* ---- results ------------------------------------------------------------------ */

enum rkind { R_LAT, R_STREAM, R_CYC };
enum rstatus { S_OK, S_NA, S_FAILED };

struct row {
	const char *section;   /* "latency", "stream", "mpsc", "cyclic" */
	char mech[32];
	char label[64];
	const char *group;
	const char *mode;      /* "busy", "block", "-" */
	size_t size;
	unsigned producers;
	unsigned batch;        /* 0: per record */
	enum rkind kind;
	enum rstatus status;
	char reason[256];
	double dist_pct;       /* other processes + steal during this row */
	struct lat_result *lat;
	struct stream_result *st;
	/* cyclic */
	struct hist *cyc;
	const char *cyc_what;  /* "task wake-up" or "latency" */
	uint64_t misses, skipped, cycles;
	/* ratios: cost of this row / cost of takt's row, / cost of the limit */
	double r_takt, r_limit;
	int has_r_takt, has_r_limit;
};

static struct row *rows;
static size_t nrows, rows_cap;

static struct row *row_new(void)
{
	if (nrows == rows_cap) {
		rows_cap = rows_cap ? 2 * rows_cap : 64;
		rows = realloc(rows, rows_cap * sizeof(*rows));
		if (!rows) {
			perror("realloc");
			exit(2);
		}
	}
	struct row *r = &rows[nrows++];
	memset(r, 0, sizeof(*r));
	r->mode = "-";
	return r;
}

struct target {
	const char *issue, *name;
	double value, target;
	int le;          /* value <= target */
	int disturbed;
};
static struct target targets[32];
static size_t ntargets;

/* ---- options ------------------------------------------------------------------ */

enum cmd { C_COMPARE, C_MPSC, C_CYCLIC, C_LIST };
static const char *cmd_names[] = { "compare", "mpsc", "cyclic", "list" };

static struct bench_opts o = {
	.iterations = 100000,
	.warmup = 10000,
	.seconds = 1.0,
	.warmup_seconds = 0.2,
	.timeout_seconds = 60,
	.names = { "takt-bench", "takt-bench-peer" },
};
static size_t sizes[32];
static unsigned nsizes;
static int mode_busy = 1, mode_block = 1;
static uint64_t capacity = 65536;
static unsigned batch = 32, producers = 2;
static uint32_t spin_ns = 0;
static const char *only, *skip;
static int json, csv, buckets = 1, fifo_prio, want_mlock;
static enum bench_timer timer = TIMER_CLOCK;
static struct cyc_opts cy = {
	.period_ns = 1000000,
	.cycles = 10000,
	.warmup_cycles = 100,
	.size = 64,
	.spin_ns = 20000,
	.timeout_seconds = 60,
};
static int deadline_set;
static char prep_note[256];

static int in_list(const char *list, const char *name)
{
	if (!list)
		return 0;
	size_t n = strlen(name);
	for (const char *p = list; *p;) {
		const char *c = strchr(p, ',');
		size_t len = c ? (size_t)(c - p) : strlen(p);
		if (len == n && strncmp(p, name, n) == 0)
			return 1;
		if (!c)
			break;
		p = c + 1;
	}
	return 0;
}

static int selected(const struct bench_mech *m)
{
	if (only && !in_list(only, m->name))
		return 0;
	return !in_list(skip, m->name);
}

/* 1.5ms, 250us, 1000000ns, 2s, plain numbers are ns */
static int parse_duration(const char *s, uint64_t *ns)
{
	char *end;
	double v = strtod(s, &end);
	if (end == s || v < 0)
		return -1;
	double mul = 1;
	if (!*end || strcmp(end, "ns") == 0)
		mul = 1;
	else if (strcmp(end, "us") == 0)
		mul = 1e3;
	else if (strcmp(end, "ms") == 0)
		mul = 1e6;
	else if (strcmp(end, "s") == 0)
		mul = 1e9;
	else
		return -1;
	*ns = (uint64_t)(v * mul + 0.5);
	return 0;
}

/* 64, 1k, 64K, 1KiB, 65536 */
static int parse_size(const char *s, size_t *out)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	if (end == s)
		return -1;
	if (*end == 'k' || *end == 'K') {
		v *= 1024;
		end++;
		if (strcmp(end, "iB") == 0 || strcmp(end, "B") == 0)
			end += strlen(end);
	} else if (*end == 'B') {
		end++;
	}
	if (*end)
		return -1;
	*out = (size_t)v;
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: takt-bench [compare|mpsc|cyclic|list] [options]\n"
		"\n"
		"  compare (default)  round trips and streaming: the cache line (hardware limit,\n"
		"                     at the start and at the end), takt (queue and state), a\n"
		"                     minimal ring, ck_ring, and pipe, fifo, unix-stream,\n"
		"                     unix-seqpacket, unix-dgram, posix-mq, sysv-mq, eventfd, sem,\n"
		"                     futex, tcp (127.0.0.1)\n"
		"  mpsc               streaming from --producers N processes into one consumer\n"
		"  cyclic             a period-T task sending one record per cycle (no IPC, takt\n"
		"                     queue, takt state), latency from the intended start\n"
		"  list               mechanisms and this system's limits\n"
		"\n"
		"options:\n"
		"  --size LIST          record payload bytes, comma list, >= 8 (default 64);\n"
		"                       k/K suffix = 1024 (8,64,1024,64K)\n"
		"  --mode LIST          busy, block or busy,block (default busy,block)\n"
		"  --iterations N       timed round trips per row (default 100000)\n"
		"  --warmup N           round trips before them, not recorded (default 10000)\n"
		"  --seconds S          streaming window per row (default 1)\n"
		"  --warmup-seconds S   streaming warm-up, not counted (default 0.2)\n"
		"  --capacity B         ring bytes per direction (default 65536; raised to\n"
		"                       4 x (record + 16) rounded up to a power of two)\n"
		"  --batch N            records per takt batch call (default 32; 0: no batch row)\n"
		"  --producers N        mpsc: producer processes (default 2)\n"
		"  --spin-ns N          takt blocking mode: spin budget before parking (default 0:\n"
		"                       both sides park between messages)\n"
		"  --only LIST          only these mechanisms (names as in `list`)\n"
		"  --skip LIST          all but these\n"
		"  --cpu A,B            pin the parent (ping, consumer) to A, the peer(s) to B\n"
		"  --fifo PRIO          SCHED_FIFO at PRIO in every process (when permitted)\n"
		"  --mlock              mlockall in every process (when permitted)\n"
		"  --timer clock|tsc    clock_gettime(CLOCK_MONOTONIC) (default) or rdtscp\n"
		"  --poll tight|pause   busy round trips: poll back to back (default) or with a\n"
		"                       pause instruction after every empty poll (as takt_recv spins)\n"
		"  --verify-every N     checksum the whole payload of every Nth record (default\n"
		"                       1024; the sequence number and check word: every record)\n"
		"  --timeout S          give up on a row after S seconds (default 60)\n"
		"  --period T           cyclic: period (default 1ms; units ns, us, ms, s)\n"
		"  --cycles N           cyclic: measured cycles (default 10000)\n"
		"  --warmup-cycles N    cyclic: cycles before them, not recorded (default 100)\n"
		"  --deadline T         cyclic: a later record is a deadline miss (default: period)\n"
		"  --json               JSON on stdout (the table goes to stderr)\n"
		"  --csv                CSV on stdout (the table goes to stderr)\n"
		"  --no-buckets         leave the histogram buckets out of the JSON\n");
}

/* ---- running rows ---------------------------------------------------------------- */

static unsigned step_no, step_total;

static uint64_t eff_capacity(size_t size)
{
	uint64_t c = capacity;
	while (c < 4 * ((uint64_t)size + 16))
		c *= 2;
	return c;
}

static int na_reason(const struct bench_mech *m, const struct bench_params *p, enum rkind k,
		     char *why, size_t cap)
{
	if (p->blocking && !(m->flags & MECH_BLOCK)) {
		snprintf(why, cap, "no blocking mode");
		return 1;
	}
	if (!p->blocking && !(m->flags & MECH_BUSY)) {
		snprintf(why, cap, "no nonblocking mode");
		return 1;
	}
	if (k == R_LAT && (m->flags & MECH_NO_LAT)) {
		snprintf(why, cap, "no ping-pong");
		return 1;
	}
	if (k == R_STREAM && (m->flags & MECH_NO_STREAM)) {
		snprintf(why, cap, "keeps only the newest value: no stream");
		return 1;
	}
	if (p->producers > 1 && !(m->flags & MECH_MPSC)) {
		snprintf(why, cap, "single producer only");
		return 1;
	}
	if ((m->flags & MECH_SEQ_ONLY) == 0 && p->size < 8) {
		snprintf(why, cap, "records must be >= 8 bytes");
		return 1;
	}
	if (m->check && m->check(p, why, cap))
		return 1;
	return 0;
}

static void run_row(struct row *r, const struct bench_mech *m, struct bench_params *p)
{
	static unsigned id;
	p->id = ++id;
	snprintf(r->mech, sizeof(r->mech), "%s", m->name);
	if (!r->label[0])
		snprintf(r->label, sizeof(r->label), "%s", m->name);
	r->group = m->group;
	r->mode = p->blocking ? "block" : "busy";
	r->size = p->size;
	r->producers = p->producers ? p->producers : 1;
	r->batch = r->kind == R_STREAM && r->batch ? r->batch : 0;
	step_no++;
	char why[200];
	if (na_reason(m, p, r->kind, why, sizeof(why))) {
		r->status = S_NA;
		snprintf(r->reason, sizeof(r->reason), "%s", why);
		return;
	}
	char lab[160];
	snprintf(lab, sizeof(lab), "[%u/%u] %s %s %zu B %s", step_no, step_total, r->label,
		 r->mode, p->size, r->kind == R_LAT ? "round trips" : "stream");
	bench_progress_label(lab);
	struct bench_cpu_snap a, b;
	bench_cpu_snap(&a);
	int rc;
	if (r->kind == R_LAT) {
		r->lat = calloc(1, sizeof(*r->lat));
		rc = bench_latency(m, p, &o, r->lat);
		if (rc)
			snprintf(r->reason, sizeof(r->reason), "%s", r->lat->msg);
	} else {
		r->st = calloc(1, sizeof(*r->st));
		rc = bench_stream(m, p, &o, r->batch != 0, r->st);
		if (rc)
			snprintf(r->reason, sizeof(r->reason), "%s", r->st->msg);
	}
	bench_cpu_snap(&b);
	double f, s;
	bench_cpu_disturbance(&a, &b, &f, &s);
	r->dist_pct = f + s;
	r->status = rc ? S_FAILED : S_OK;
	if (rc)
		fprintf(stderr, "takt-bench: %s %s %zu B %s FAILED: %s\n", r->label, r->mode,
			p->size, r->kind == R_LAT ? "round trip" : "stream", r->reason);
}

static double row_cost(const struct row *r)
{
	if (r->status != S_OK)
		return 0;
	if (r->kind == R_LAT) {
		struct hist_summary s;
		hist_summarize(&r->lat->hist, &s);
		return (double)s.p50;
	}
	if (r->kind == R_STREAM)
		return r->st->rate > 0 ? 1e9 / r->st->rate : 0;
	return 0;
}

static const struct row *find_row(const char *section, const char *mech, const char *mode,
				  size_t size, unsigned prod, unsigned batch_, const char *label)
{
	for (size_t i = 0; i < nrows; i++) {
		const struct row *r = &rows[i];
		if (r->status != S_OK || strcmp(r->section, section) != 0 ||
		    strcmp(r->mech, mech) != 0)
			continue;
		if (mode && strcmp(r->mode, mode) != 0)
			continue;
		if (size && r->size != size)
			continue;
		if (prod && r->producers != prod)
			continue;
		if (r->batch != batch_)
			continue;
		if (label && strcmp(r->label, label) != 0)
			continue;
		return r;
	}
	return NULL;
}

/* Did the cache line's round trip move by more than 10 % between the start
 * and the end of the run?  Then the vCPUs moved, and no ratio against the
 * limit is meaningful (the limit is their mean). */
static int limit_moved(double *start, double *end)
{
	const struct row *a = find_row("latency", "cacheline", "busy", 0, 0, 0, "cacheline (start)");
	const struct row *b = find_row("latency", "cacheline", "busy", 0, 0, 0, "cacheline (end)");
	*start = a ? row_cost(a) : 0;
	*end = b ? row_cost(b) : 0;
	if (*start <= 0 || *end <= 0)
		return 0;
	return *start > *end * 1.10 || *end > *start * 1.10;
}

static double limit_rt(void)
{
	const struct row *a = find_row("latency", "cacheline", "busy", 0, 0, 0, "cacheline (start)");
	const struct row *b = find_row("latency", "cacheline", "busy", 0, 0, 0, "cacheline (end)");
	double ca = a ? row_cost(a) : 0, cb = b ? row_cost(b) : 0;
	if (ca > 0 && cb > 0)
		return (ca + cb) / 2;
	return ca > 0 ? ca : cb;
}

static void compute_ratios(void)
{
	double lim = limit_rt();
	for (size_t i = 0; i < nrows; i++) {
		struct row *r = &rows[i];
		double c = row_cost(r);
		if (r->status != S_OK || c <= 0 || r->kind == R_CYC)
			continue;
		const struct row *t = NULL, *l = NULL;
		if (r->kind == R_LAT) {
			t = find_row("latency", "takt", r->mode, r->size, 0, 0, NULL);
			if (lim > 0 && strcmp(r->mech, "null") != 0) {
				r->r_limit = c / lim;
				r->has_r_limit = 1;
			}
		} else if (strcmp(r->section, "stream") == 0) {
			t = find_row("stream", "takt", r->mode, r->size, 1, 0, NULL);
			l = find_row("stream", "ring", "busy", r->size, 1, 0, NULL);
		} else if (strcmp(r->section, "mpsc") == 0) {
			t = find_row("mpsc", "takt", r->mode, r->size, r->producers, 0, NULL);
			l = find_row("mpsc", "takt", r->mode, r->size, 1, 0, NULL);
		}
		if (t && row_cost(t) > 0 && strcmp(r->mech, "null") != 0) {
			r->r_takt = c / row_cost(t);
			r->has_r_takt = 1;
		}
		if (l && row_cost(l) > 0) {
			r->r_limit = c / row_cost(l);
			r->has_r_limit = 1;
		}
	}
}

static int run_disturbed; /* the whole run: other processes or steal > 5 % */

static int disturbed_rows(const struct row *a, const struct row *b)
{
	return run_disturbed || (a && a->dist_pct > 5) || (b && b->dist_pct > 5);
}

static void add_target(const char *issue, const char *name, double v, double t, int le, int dist)
{
	if (ntargets < sizeof(targets) / sizeof(targets[0]))
		targets[ntargets++] = (struct target){ issue, name, v, t, le, dist };
}

static void compute_targets(enum cmd cmd)
{
	if (cmd == C_COMPARE) {
		double lim = limit_rt(), l0, l1;
		int moved = limit_moved(&l0, &l1);
		const struct row *tk = find_row("latency", "takt", "busy", 64, 0, 0, NULL);
		if (tk && lim > 0)
			add_target("2", "takt busy RT p50 / cache-line RT p50, 64 B", row_cost(tk) / lim,
				   1.15, 1, moved || disturbed_rows(tk, NULL));
		const struct row *lp = find_row("latency", "linepair", "busy", 0, 0, 0, NULL);
		if (tk && lp && row_cost(lp) > 0)
			add_target("2", "takt busy RT p50 / line-pair RT p50, 64 B (reference)",
				   row_cost(tk) / row_cost(lp), NAN, 1, disturbed_rows(tk, lp));
		const struct row *ts = find_row("stream", "takt", "busy", 64, 1, 0, NULL);
		const struct row *rs = find_row("stream", "ring", "busy", 64, 1, 0, NULL);
		if (ts && rs)
			add_target("2", "takt busy stream / minimal ring stream, 64 B",
				   rs->st->rate > 0 ? ts->st->rate / rs->st->rate : 0, 0.90, 0,
				   disturbed_rows(ts, rs));
		const struct row *tb = find_row("latency", "takt", "block", 64, 0, 0, NULL);
		const struct row *sb = find_row("latency", "sem", "block", 64, 0, 0, NULL);
		if (tb && sb)
			add_target("3", "takt blocking RT p50 / named-semaphore RT p50, 64 B",
				   row_cost(tb) / row_cost(sb), 1.10, 1, disturbed_rows(tb, sb));
		const struct row *tbs = find_row("stream", "takt", "block", 64, 1, 0, NULL);
		const struct row *sbs = find_row("stream", "sem", "block", 64, 1, 0, NULL);
		if (tbs && sbs)
			add_target("3", "takt blocking stream / semaphore-per-record stream, 64 B",
				   sbs->st->rate > 0 ? tbs->st->rate / sbs->st->rate : 0, 3.0, 0,
				   disturbed_rows(tbs, sbs));
		for (int b = 0; b < 2; b++) {
			const char *md = b ? "block" : "busy";
			for (unsigned k = 0; k < nsizes; k++) {
				const struct row *q = find_row("latency", "takt", md, sizes[k], 0, 0, NULL);
				const struct row *s = find_row("latency", "takt-state", md, sizes[k], 0, 0, NULL);
				if (q && s) {
					static char names[2][32][96];
					snprintf(names[b][k], sizeof(names[b][k]),
						 "takt state RT p50 / takt queue RT p50, %s, %zu B", md,
						 sizes[k]);
					add_target("9", names[b][k], row_cost(s) / row_cost(q), NAN, 1,
						   disturbed_rows(q, s));
				}
			}
		}
	} else if (cmd == C_MPSC) {
		const struct row *m = find_row("mpsc", "takt", "busy", 64, producers, 0, NULL);
		const struct row *s = find_row("mpsc", "takt", "busy", 64, 1, 0, NULL);
		const struct row *ck = find_row("mpsc", "ck-ring", "busy", 64, producers, 0, NULL);
		static char n1[96], n2[96];
		snprintf(n1, sizeof(n1), "takt MPSC (%u producers) / takt SPSC, aggregate records/s, 64 B",
			 producers);
		snprintf(n2, sizeof(n2), "takt MPSC / ck_ring MPSC (%u producers), records/s, 64 B",
			 producers);
		if (m && s)
			add_target("4", n1, m->st->rate / s->st->rate, NAN, 0, disturbed_rows(m, s));
		if (m && ck)
			add_target("4", n2, m->st->rate / ck->st->rate, NAN, 0, disturbed_rows(m, ck));
	}
}

/* ---- commands -------------------------------------------------------------------- */

static void params_for(struct bench_params *p, size_t size, int blocking, unsigned prod)
{
	memset(p, 0, sizeof(*p));
	p->size = size;
	p->capacity = eff_capacity(size);
	p->batch = batch ? batch : 1;
	p->blocking = blocking;
	p->producers = prod;
	p->spin_ns = spin_ns;
}

static void lat_row_for(const struct bench_mech *m, size_t size, int blocking, const char *label)
{
	struct bench_params p;
	params_for(&p, size, blocking, 1);
	struct row *r = row_new();
	r->section = "latency";
	r->kind = R_LAT;
	if (label)
		snprintf(r->label, sizeof(r->label), "%s", label);
	run_row(r, m, &p);
}

static void stream_row_for(const struct bench_mech *m, const char *section, size_t size,
			   int blocking, unsigned prod, unsigned b, const char *label)
{
	struct bench_params p;
	params_for(&p, size, blocking, prod);
	struct row *r = row_new();
	r->section = section;
	r->kind = R_STREAM;
	r->batch = b;
	if (label)
		snprintf(r->label, sizeof(r->label), "%s", label);
	run_row(r, m, &p);
}

static void cmd_compare(void)
{
	const struct bench_mech *cl = bench_mech_find("cacheline");
	const struct bench_mech *nl = bench_mech_find("null");
	const struct bench_mech *lp = bench_mech_find("linepair");
	unsigned nm = 0;
	for (size_t i = 0; bench_mechs[i]; i++)
		nm += selected(bench_mechs[i]) && bench_mechs[i] != cl && bench_mechs[i] != nl &&
		      bench_mechs[i] != lp;
	step_total = 4 + nsizes * (unsigned)(mode_busy + mode_block) * (2 * nm + 1);
	lat_row_for(nl, 64, 0, "harness floor (no IPC)");
	lat_row_for(cl, 64, 0, "cacheline (start)");
	lat_row_for(lp, 64, 0, "line pair (one per way)");
	for (unsigned k = 0; k < nsizes; k++) {
		for (int b = 0; b < 2; b++) {
			if ((b == 0 && !mode_busy) || (b == 1 && !mode_block))
				continue;
			for (size_t i = 0; bench_mechs[i]; i++) {
				const struct bench_mech *m = bench_mechs[i];
				if (m == cl || m == nl || m == lp || !selected(m))
					continue;
				lat_row_for(m, sizes[k], b, NULL);
			}
		}
		for (int b = 0; b < 2; b++) {
			if ((b == 0 && !mode_busy) || (b == 1 && !mode_block))
				continue;
			for (size_t i = 0; bench_mechs[i]; i++) {
				const struct bench_mech *m = bench_mechs[i];
				if (m == cl || m == nl || m == lp || !selected(m))
					continue;
				stream_row_for(m, "stream", sizes[k], b, 1, 0, NULL);
				if (strcmp(m->name, "takt") == 0 && b == 0 && batch > 1) {
					char lab[64];
					snprintf(lab, sizeof(lab), "takt batch %u", batch);
					stream_row_for(m, "stream", sizes[k], b, 1, batch, lab);
				}
			}
		}
	}
	lat_row_for(cl, 64, 0, "cacheline (end)");
}

static void cmd_mpsc(void)
{
	unsigned nm = 0;
	for (size_t i = 0; bench_mechs[i]; i++)
		nm += selected(bench_mechs[i]) && (bench_mechs[i]->flags & MECH_MPSC);
	step_total = nsizes * (unsigned)(mode_busy + mode_block) * (nm + 1);
	for (unsigned k = 0; k < nsizes; k++)
		for (int b = 0; b < 2; b++) {
			if ((b == 0 && !mode_busy) || (b == 1 && !mode_block))
				continue;
			const struct bench_mech *tk = bench_mech_find("takt");
			if (tk && selected(tk))
				stream_row_for(tk, "mpsc", sizes[k], b, 1, 0, "takt SPSC");
			for (size_t i = 0; bench_mechs[i]; i++) {
				const struct bench_mech *m = bench_mechs[i];
				if (!selected(m) || !(m->flags & MECH_MPSC))
					continue;
				char lab[64];
				snprintf(lab, sizeof(lab), "%s%s", m->name,
					 strcmp(m->name, "takt") == 0 ? " MPSC" : "");
				stream_row_for(m, "mpsc", sizes[k], b, producers, 0, lab);
			}
		}
}

static void cmd_cyclic(void)
{
	static const struct { enum cyc_variant v; const char *name; } vs[] = {
		{ CYC_NONE, "no IPC" }, { CYC_QUEUE, "takt queue" }, { CYC_STATE, "takt state" },
	};
	if (!deadline_set)
		cy.deadline_ns = cy.period_ns;
	cy.pin = o.pin;
	cy.cpu[0] = o.cpu[0];
	cy.cpu[1] = o.cpu[1];
	cy.fifo_prio = fifo_prio;
	cy.mlock = want_mlock;
	cy.timeout_seconds = o.timeout_seconds;
	cy.size = nsizes ? sizes[0] : 64;
	if (cy.size < 16)
		cy.size = 16;
	for (size_t i = 0; i < sizeof(vs) / sizeof(vs[0]); i++) {
		if (vs[i].v == CYC_QUEUE && only && !in_list(only, "takt"))
			continue;
		if (vs[i].v == CYC_STATE && only && !in_list(only, "takt-state"))
			continue;
		char lab[128];
		snprintf(lab, sizeof(lab), "[%zu/3] cyclic, %s", i + 1, vs[i].name);
		bench_progress_label(lab);
		struct cyc_result *res = calloc(1, sizeof(*res));
		struct bench_cpu_snap a, b;
		bench_cpu_snap(&a);
		int rc = bench_cyclic(vs[i].v, &cy, (unsigned)i, res);
		bench_cpu_snap(&b);
		double f, s;
		bench_cpu_disturbance(&a, &b, &f, &s);
		if (res->prep[0])
			snprintf(prep_note, sizeof(prep_note), "%s", res->prep);
		for (int w = 0; w < (vs[i].v == CYC_NONE ? 1 : 2); w++) {
			struct row *r = row_new();
			r->section = "cyclic";
			r->kind = R_CYC;
			r->group = vs[i].v == CYC_NONE ? "platform" : "takt";
			snprintf(r->mech, sizeof(r->mech), "%s",
				 vs[i].v == CYC_NONE ? "none" : vs[i].v == CYC_QUEUE ? "takt" : "takt-state");
			r->size = cy.size;
			r->producers = 1;
			r->dist_pct = f + s;
			r->cycles = cy.cycles;
			if (w == 0) {
				snprintf(r->label, sizeof(r->label), "%s: task wake-up", vs[i].name);
				r->cyc = &res->task;
				r->cyc_what = "task wake-up lateness";
				r->misses = res->task_misses;
			} else {
				snprintf(r->label, sizeof(r->label), "%s: latency", vs[i].name);
				r->cyc = &res->lat;
				r->cyc_what = "receipt - intended cycle start";
				r->misses = res->misses;
				r->skipped = res->skipped;
			}
			r->mode = "block";
			r->status = rc ? S_FAILED : S_OK;
			if (rc) {
				snprintf(r->reason, sizeof(r->reason), "%s", res->msg);
				if (w == 0)
					fprintf(stderr, "takt-bench: cyclic %s FAILED: %s\n", vs[i].name,
						res->msg);
			}
		}
	}
}

static long proc_long(const char *path)
{
	FILE *f = fopen(path, "r");
	long v = -1;
	if (f) {
		if (fscanf(f, "%ld", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

static void print_limits_json(FILE *f)
{
	fprintf(f, "\"limits\":{\"posix_mq_msgsize_max\":%ld,\"posix_mq_msg_max\":%ld,"
		   "\"sysv_msgmax\":%ld,\"sysv_msgmnb\":%ld,\"pipe_buf\":%d,\"pipe_max_size\":%ld}",
		proc_long("/proc/sys/fs/mqueue/msgsize_max"), proc_long("/proc/sys/fs/mqueue/msg_max"),
		proc_long("/proc/sys/kernel/msgmax"), proc_long("/proc/sys/kernel/msgmnb"), PIPE_BUF,
		proc_long("/proc/sys/fs/pipe-max-size"));
}

static void cmd_list(FILE *f)
{
	fprintf(f, "%-16s %-10s %-5s %-5s %-5s  %s\n", "mechanism", "group", "busy", "block", "mpsc",
		"what");
	for (size_t i = 0; bench_mechs[i]; i++) {
		const struct bench_mech *m = bench_mechs[i];
		fprintf(f, "%-16s %-10s %-5s %-5s %-5s  %s\n", m->name, m->group ? m->group : "-",
			m->flags & MECH_BUSY ? "yes" : "-", m->flags & MECH_BLOCK ? "yes" : "-",
			m->flags & MECH_MPSC ? "yes" : "-", m->title);
	}
#ifndef BENCH_HAVE_CK
	fprintf(f, "(ck-ring: not built, Concurrency Kit (libck-dev) was not found)\n");
#endif
	fprintf(f, "\nlimits: POSIX mq msgsize_max %ld, msg_max %ld; System V msgmax %ld, msgmnb %ld;"
		   " PIPE_BUF %d\n",
		proc_long("/proc/sys/fs/mqueue/msgsize_max"), proc_long("/proc/sys/fs/mqueue/msg_max"),
		proc_long("/proc/sys/kernel/msgmax"), proc_long("/proc/sys/kernel/msgmnb"), PIPE_BUF);
}

/* ---- output ---------------------------------------------------------------------- */

static void fmt_ratio(char *b, size_t n, int has, double v)
{
	if (!has)
		snprintf(b, n, "-");
	else
		snprintf(b, n, "%.2f", v);
}

/* The floor and the hardware limits share one table section. */
static int is_limit(const char *mech)
{
	return strcmp(mech, "null") == 0 || strcmp(mech, "cacheline") == 0 ||
	       strcmp(mech, "linepair") == 0;
}

static void table(FILE *f, enum cmd cmd)
{
	const struct row *prev = NULL;
	for (size_t i = 0; i < nrows; i++) {
		const struct row *r = &rows[i];
		int newsec = !prev || strcmp(prev->section, r->section) != 0 ||
			     prev->size != r->size || strcmp(prev->mode, r->mode) != 0 ||
			     prev->kind != r->kind;
		if (r->kind == R_LAT && prev && prev->kind == R_LAT) {
			int a = is_limit(prev->mech);
			int b = is_limit(r->mech);
			newsec |= a != b;
		}
		if (newsec) {
			fprintf(f, "\n");
			if (r->kind == R_LAT) {
				if (is_limit(r->mech))
					fprintf(f, "== floor and hardware limit: round trip, busy-poll [ns] ==\n");
				else
					fprintf(f, "== round trip, %zu B, %s [ns]   (x takt, x limit: p50 / takt's p50,"
						   " / the cache line's p50) ==\n",
						r->size, strcmp(r->mode, "busy") == 0 ? "busy-poll" : "blocking");
				fprintf(f, "%-24s %7s %7s %7s %7s %7s %7s %9s %8s %7s %7s\n", "mechanism",
					"min", "p50", "p90", "p99", "p99.9", "p99.99", "max", "samples",
					"x takt", "x limit");
			} else if (r->kind == R_STREAM) {
				if (strcmp(r->section, "mpsc") == 0)
					fprintf(f, "== streaming from %u producers, %zu B, %s   (x takt: ns/record /"
						   " takt MPSC's; x SPSC: / takt SPSC's) ==\n",
						producers, r->size,
						strcmp(r->mode, "busy") == 0 ? "busy-poll" : "blocking");
				else
					fprintf(f, "== streaming, %zu B, %s   (x takt: ns/record / takt's; x limit:"
						   " / the minimal ring's) ==\n",
						r->size, strcmp(r->mode, "busy") == 0 ? "busy-poll" : "blocking");
				fprintf(f, "%-24s %5s %12s %10s %9s %7s %7s\n", "mechanism", "prod",
					"records/s", "MB/s", "ns/rec", "x takt",
					strcmp(r->section, "mpsc") == 0 ? "x SPSC" : "x limit");
			} else {
				fprintf(f, "== cyclic: period %.3f ms, %llu cycles (%llu warm-up excluded), %zu B,"
					   " deadline %.3f ms [ns] ==\n",
					(double)cy.period_ns / 1e6, (unsigned long long)cy.cycles,
					(unsigned long long)cy.warmup_cycles, r->size,
					(double)cy.deadline_ns / 1e6);
				fprintf(f, "%-26s %7s %7s %7s %7s %7s %7s %9s %8s %7s %7s\n", "what", "min",
					"p50", "p90", "p99", "p99.9", "p99.99", "max", "samples", "misses",
					"skipped");
			}
		}
		prev = r;
		char rt[16], rl[16];
		fmt_ratio(rt, sizeof(rt), r->has_r_takt, r->r_takt);
		fmt_ratio(rl, sizeof(rl), r->has_r_limit, r->r_limit);
		const char *dmark = r->dist_pct > 5 ? " (disturbed)" : "";
		if (r->status == S_NA) {
			fprintf(f, "%-24s n/a (%s)\n", r->label, r->reason);
			continue;
		}
		if (r->status == S_FAILED) {
			fprintf(f, "%-24s FAILED: %s\n", r->label, r->reason);
			continue;
		}
		if (r->kind == R_LAT || r->kind == R_CYC) {
			const struct hist *h = r->kind == R_LAT ? &r->lat->hist : r->cyc;
			struct hist_summary s;
			hist_summarize(h, &s);
			char p999[24] = "-", p9999[24] = "-";
			if (s.has_p999)
				snprintf(p999, sizeof(p999), "%llu", (unsigned long long)s.p999);
			if (s.has_p9999)
				snprintf(p9999, sizeof(p9999), "%llu", (unsigned long long)s.p9999);
			if (r->kind == R_LAT)
				fprintf(f, "%-24s %7llu %7llu %7llu %7llu %7s %7s %9llu %8llu %7s %7s%s\n",
					r->label, (unsigned long long)s.min, (unsigned long long)s.p50,
					(unsigned long long)s.p90, (unsigned long long)s.p99, p999, p9999,
					(unsigned long long)s.max, (unsigned long long)s.count, rt, rl, dmark);
			else
				fprintf(f, "%-26s %7llu %7llu %7llu %7llu %7s %7s %9llu %8llu %7llu %7llu%s\n",
					r->label, (unsigned long long)s.min, (unsigned long long)s.p50,
					(unsigned long long)s.p90, (unsigned long long)s.p99, p999, p9999,
					(unsigned long long)s.max, (unsigned long long)s.count,
					(unsigned long long)r->misses, (unsigned long long)r->skipped, dmark);
		} else {
			fprintf(f, "%-24s %5u %12.0f %10.1f %9.2f %7s %7s%s\n", r->label, r->producers,
				r->st->rate, r->st->mbps, r->st->rate > 0 ? 1e9 / r->st->rate : 0.0, rt, rl,
				dmark);
		}
	}
	if (cmd == C_CYCLIC) {
		/* what takt adds to the platform, from the same run */
		const struct row *pl = NULL;
		for (size_t i = 0; i < nrows; i++)
			if (rows[i].status == S_OK && strcmp(rows[i].mech, "none") == 0)
				pl = &rows[i];
		if (pl) {
			struct hist_summary ps;
			hist_summarize(pl->cyc, &ps);
			fprintf(f, "\nwhat takt adds to the platform's own wake-up jitter (same run):\n");
			for (size_t i = 0; i < nrows; i++) {
				const struct row *r = &rows[i];
				if (r->status != S_OK || strcmp(r->mech, "none") == 0 ||
				    strstr(r->label, "latency") == NULL)
					continue;
				struct hist_summary s;
				hist_summarize(r->cyc, &s);
				fprintf(f, "  %-22s p50 %+lld ns, p99 %+lld ns, max %+lld ns, misses %llu vs %llu\n",
					r->label, (long long)s.p50 - (long long)ps.p50,
					(long long)s.p99 - (long long)ps.p99,
					(long long)s.max - (long long)ps.max, (unsigned long long)r->misses,
					(unsigned long long)pl->misses);
			}
		}
		if (prep_note[0])
			fprintf(f, "consumer process: %s\n", prep_note);
	}
	if (ntargets) {
		fprintf(f, "\nratios and targets (same run):\n");
		double l0, l1;
		if (limit_moved(&l0, &l1))
			fprintf(f, "  note: the cache-line round trip moved from %.0f to %.0f ns during the"
				   " run: the vCPUs moved, so no verdict against the limit\n", l0, l1);
		for (size_t i = 0; i < ntargets; i++) {
			const struct target *t = &targets[i];
			const char *v;
			char tg[32];
			if (isnan(t->target)) {
				v = t->disturbed ? "(disturbed)" : "";
				snprintf(tg, sizeof(tg), "no target");
			} else {
				int ok = t->le ? t->value <= t->target : t->value >= t->target;
				v = t->disturbed ? "DISTURBED (no verdict)" : ok ? "MET" : "MISSED";
				snprintf(tg, sizeof(tg), "target %s %.2f", t->le ? "<=" : ">=", t->target);
			}
			fprintf(f, "  issue %-2s %-66s %7.3f  %-14s %s\n", t->issue, t->name, t->value, tg, v);
		}
	}
}

static void json_num(FILE *f, const char *key, double v, int comma)
{
	if (isnan(v) || isinf(v))
		fprintf(f, "%s\"%s\":null", comma ? "," : "", key);
	else
		fprintf(f, "%s\"%s\":%.6g", comma ? "," : "", key, v);
}

static void json_hist(FILE *f, const struct hist *h)
{
	struct hist_summary s;
	hist_summarize(h, &s);
	fprintf(f, "{\"unit\":\"ns\",\"samples\":%llu,\"min\":%llu,\"p50\":%llu,\"p90\":%llu,\"p99\":%llu",
		(unsigned long long)s.count, (unsigned long long)(s.count ? s.min : 0),
		(unsigned long long)s.p50, (unsigned long long)s.p90, (unsigned long long)s.p99);
	if (s.has_p999)
		fprintf(f, ",\"p99.9\":%llu", (unsigned long long)s.p999);
	if (s.has_p9999)
		fprintf(f, ",\"p99.99\":%llu", (unsigned long long)s.p9999);
	fprintf(f, ",\"max\":%llu,\"mean\":%.2f,\"mean99\":%.2f", (unsigned long long)s.max, s.mean,
		hist_trimmed_mean(h, 0.99));
	if (buckets) {
		fprintf(f, ",\"buckets\":");
		hist_json_buckets(h, f);
	}
	fputc('}', f);
}

static void json_out(FILE *f, enum cmd cmd, const struct bench_sysinfo *si, double fp, double sp)
{
	fprintf(f, "{\"benchmark\":\"takt-bench\",\"format\":1,\"command\":\"%s\",\"date\":",
		cmd_names[cmd]);
	json_string(f, si->date);
	fprintf(f, ",\"host\":");
	json_string(f, si->host);
	fprintf(f, ",\"cpu_model\":");
	json_string(f, si->cpu_model);
	fprintf(f, ",\"kernel\":");
	json_string(f, si->kernel);
	fprintf(f, ",\"ncpu\":%d,\"params\":{\"sizes\":[", si->ncpu);
	for (unsigned k = 0; k < nsizes; k++)
		fprintf(f, "%s%zu", k ? "," : "", sizes[k]);
	fprintf(f, "],\"modes\":[%s%s%s],\"iterations\":%llu,\"warmup\":%llu,\"seconds\":%.3f,"
		   "\"warmup_seconds\":%.3f,\"capacity\":%llu,\"batch\":%u,\"producers\":%u,"
		   "\"spin_ns\":%u,\"verify_every\":%llu,\"timer\":\"%s\",\"timer_overhead_ns\":%.1f,"
		   "\"timer_step_ns\":%.1f,\"poll\":\"%s\",\"pinned\":%s,\"cpu\":[%d,%d],\"fifo_priority\":%d,"
		   "\"mlock\":%s,\"period_ns\":%llu,\"cycles\":%llu,\"warmup_cycles\":%llu,"
		   "\"deadline_ns\":%llu},",
		mode_busy ? "\"busy\"" : "", mode_busy && mode_block ? "," : "",
		mode_block ? "\"block\"" : "", (unsigned long long)o.iterations,
		(unsigned long long)o.warmup, o.seconds, o.warmup_seconds,
		(unsigned long long)capacity, batch, producers, spin_ns,
		(unsigned long long)(o.verify_every ? o.verify_every : 1024),
		timer == TIMER_TSC ? "tsc" : "clock", bench_timer_overhead_ns(),
		bench_timer_resolution_ns(), o.poll_pause ? "pause" : "tight",
		o.pin ? "true" : "false", o.pin ? o.cpu[0] : -1,
		o.pin ? o.cpu[1] : -1, fifo_prio, want_mlock ? "true" : "false",
		(unsigned long long)cy.period_ns, (unsigned long long)cy.cycles,
		(unsigned long long)cy.warmup_cycles, (unsigned long long)cy.deadline_ns);
	print_limits_json(f);
	fprintf(f, ",\"disturbance\":{\"foreign_cpu_pct\":%.2f,\"steal_pct\":%.2f,\"disturbed\":%s}",
		fp, sp, fp > 5 || sp > 5 ? "true" : "false");
	fprintf(f, ",\"results\":[");
	for (size_t i = 0; i < nrows; i++) {
		const struct row *r = &rows[i];
		fprintf(f, "%s\n{\"section\":\"%s\",\"mechanism\":", i ? "," : "", r->section);
		json_string(f, r->mech);
		fprintf(f, ",\"label\":");
		json_string(f, r->label);
		fprintf(f, ",\"group\":\"%s\",\"mode\":\"%s\",\"size\":%zu,\"producers\":%u,\"batch\":%u,"
			   "\"status\":\"%s\",\"reason\":",
			r->group ? r->group : "-", r->mode, r->size, r->producers, r->batch,
			r->status == S_OK ? "ok" : r->status == S_NA ? "n/a" : "failed");
		json_string(f, r->reason);
		json_num(f, "disturbance_pct", r->dist_pct, 1);
		if (r->has_r_takt)
			json_num(f, "ratio_to_takt", r->r_takt, 1);
		else
			fprintf(f, ",\"ratio_to_takt\":null");
		if (r->has_r_limit)
			json_num(f, "ratio_to_limit", r->r_limit, 1);
		else
			fprintf(f, ",\"ratio_to_limit\":null");
		if (r->status == S_OK && r->kind == R_LAT) {
			fprintf(f, ",\"latency\":");
			json_hist(f, &r->lat->hist);
			fprintf(f, ",\"verified\":%llu", (unsigned long long)r->lat->verified);
		} else if (r->status == S_OK && r->kind == R_STREAM) {
			const struct stream_result *s = r->st;
			fprintf(f, ",\"stream\":{\"records\":%llu,\"seconds\":%.6f,\"records_per_s\":%.1f,"
				   "\"mb_per_s\":%.3f,\"ns_per_record\":%.3f,\"full_events\":%llu,"
				   "\"empty_polls\":%llu,\"total_records\":%llu,\"total_bytes\":%llu,"
				   "\"verified\":%llu}",
				(unsigned long long)s->records, s->seconds, s->rate, s->mbps,
				s->rate > 0 ? 1e9 / s->rate : 0.0, (unsigned long long)s->full_events,
				(unsigned long long)s->empty_polls, (unsigned long long)s->total_records,
				(unsigned long long)s->total_bytes, (unsigned long long)s->verified);
		} else if (r->status == S_OK && r->kind == R_CYC) {
			fprintf(f, ",\"cyclic\":{\"what\":\"%s\",\"period_ns\":%llu,\"deadline_ns\":%llu,"
				   "\"cycles\":%llu,\"misses\":%llu,\"skipped\":%llu,\"latency\":",
				r->cyc_what, (unsigned long long)cy.period_ns,
				(unsigned long long)cy.deadline_ns, (unsigned long long)r->cycles,
				(unsigned long long)r->misses, (unsigned long long)r->skipped);
			json_hist(f, r->cyc);
			fputc('}', f);
		}
		fputc('}', f);
	}
	fprintf(f, "\n],\"targets\":[");
	for (size_t i = 0; i < ntargets; i++) {
		const struct target *t = &targets[i];
		fprintf(f, "%s{\"issue\":\"%s\",\"name\":", i ? "," : "", t->issue);
		json_string(f, t->name);
		json_num(f, "value", t->value, 1);
		json_num(f, "target", t->target, 1);
		const char *v = isnan(t->target) ? "report"
				: t->disturbed ? "disturbed"
				: (t->le ? t->value <= t->target : t->value >= t->target) ? "met" : "missed";
		fprintf(f, ",\"op\":\"%s\",\"verdict\":\"%s\"}", t->le ? "<=" : ">=", v);
	}
	fprintf(f, "]}\n");
}

static void csv_out(FILE *f, enum cmd cmd)
{
	fprintf(f, "command,section,mechanism,label,mode,size,producers,batch,status,reason,"
		   "samples,min_ns,p50_ns,p90_ns,p99_ns,p999_ns,p9999_ns,max_ns,mean_ns,"
		   "records,records_per_s,mb_per_s,ns_per_record,misses,skipped,"
		   "ratio_to_takt,ratio_to_limit,disturbance_pct\n");
	for (size_t i = 0; i < nrows; i++) {
		const struct row *r = &rows[i];
		char reason[256];
		size_t j = 0;
		for (const char *c = r->reason; *c && j + 1 < sizeof(reason); c++)
			reason[j++] = *c == '"' || *c == ',' ? ';' : *c;
		reason[j] = 0;
		fprintf(f, "%s,%s,%s,%s,%s,%zu,%u,%u,%s,%s,", cmd_names[cmd], r->section, r->mech,
			r->label, r->mode, r->size, r->producers, r->batch,
			r->status == S_OK ? "ok" : r->status == S_NA ? "n/a" : "failed", reason);
		const struct hist *h = r->status != S_OK ? NULL
				       : r->kind == R_LAT ? &r->lat->hist
				       : r->kind == R_CYC ? r->cyc : NULL;
		if (h) {
			struct hist_summary s;
			hist_summarize(h, &s);
			fprintf(f, "%llu,%llu,%llu,%llu,%llu,", (unsigned long long)s.count,
				(unsigned long long)(s.count ? s.min : 0), (unsigned long long)s.p50,
				(unsigned long long)s.p90, (unsigned long long)s.p99);
			if (s.has_p999)
				fprintf(f, "%llu", (unsigned long long)s.p999);
			fputc(',', f);
			if (s.has_p9999)
				fprintf(f, "%llu", (unsigned long long)s.p9999);
			fprintf(f, ",%llu,%.2f,", (unsigned long long)s.max, s.mean);
		} else {
			fprintf(f, ",,,,,,,,,");
		}
		if (r->status == S_OK && r->kind == R_STREAM)
			fprintf(f, "%llu,%.1f,%.3f,%.3f,", (unsigned long long)r->st->records, r->st->rate,
				r->st->mbps, r->st->rate > 0 ? 1e9 / r->st->rate : 0.0);
		else
			fprintf(f, ",,,,");
		if (r->kind == R_CYC && r->status == S_OK)
			fprintf(f, "%llu,%llu,", (unsigned long long)r->misses,
				(unsigned long long)r->skipped);
		else
			fprintf(f, ",,");
		if (r->has_r_takt)
			fprintf(f, "%.4f", r->r_takt);
		fputc(',', f);
		if (r->has_r_limit)
			fprintf(f, "%.4f", r->r_limit);
		fprintf(f, ",%.2f\n", r->dist_pct);
	}
}

/* ---- main ---------------------------------------------------------------------- */

static void on_signal(int sig)
{
	for (size_t i = 0; bench_mechs[i]; i++)
		if (bench_mechs[i]->cleanup_all)
			bench_mechs[i]->cleanup_all();
	signal(sig, SIG_DFL);
	raise(sig);
}

int main(int argc, char **argv)
{
	enum cmd cmd = C_COMPARE;
	int argi = 1;
	if (argc > 1 && argv[1][0] != '-') {
		int found = 0;
		for (int c = 0; c < 4; c++)
			if (strcmp(argv[1], cmd_names[c]) == 0) {
				cmd = (enum cmd)c;
				found = 1;
			}
		if (!found) {
			fprintf(stderr, "takt-bench: unknown command '%s' (compare, mpsc, cyclic, list)\n",
				argv[1]);
			return 2;
		}
		argi = 2;
	}
	static const struct option lopts[] = {
		{ "size", required_argument, 0, 'z' },
		{ "mode", required_argument, 0, 'm' },
		{ "iterations", required_argument, 0, 'i' },
		{ "warmup", required_argument, 0, 'w' },
		{ "seconds", required_argument, 0, 's' },
		{ "warmup-seconds", required_argument, 0, 'W' },
		{ "capacity", required_argument, 0, 'c' },
		{ "batch", required_argument, 0, 'b' },
		{ "producers", required_argument, 0, 'P' },
		{ "spin-ns", required_argument, 0, 'S' },
		{ "only", required_argument, 0, 'o' },
		{ "skip", required_argument, 0, 'x' },
		{ "cpu", required_argument, 0, 'p' },
		{ "fifo", required_argument, 0, 'F' },
		{ "mlock", no_argument, 0, 'L' },
		{ "timer", required_argument, 0, 't' },
		{ "poll", required_argument, 0, 'Q' },
		{ "verify-every", required_argument, 0, 'v' },
		{ "timeout", required_argument, 0, 'T' },
		{ "period", required_argument, 0, 'R' },
		{ "cycles", required_argument, 0, 'C' },
		{ "warmup-cycles", required_argument, 0, 'U' },
		{ "deadline", required_argument, 0, 'D' },
		{ "json", no_argument, 0, 'j' },
		{ "csv", no_argument, 0, 'V' },
		{ "no-buckets", no_argument, 0, 'N' },
		{ "help", no_argument, 0, 'h' },
		{ 0, 0, 0, 0 },
	};
	optind = argi;
	int c;
	while ((c = getopt_long(argc, argv, "h", lopts, NULL)) != -1) {
		switch (c) {
		case 'z': {
			nsizes = 0;
			char *dup = strdup(optarg), *save = NULL;
			for (char *t = strtok_r(dup, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
				if (nsizes >= sizeof(sizes) / sizeof(sizes[0]) ||
				    parse_size(t, &sizes[nsizes]) < 0 || sizes[nsizes] < 8 ||
				    sizes[nsizes] > (64u << 20)) {
					fprintf(stderr, "takt-bench: bad --size '%s' (8 bytes .. 64 MiB)\n", t);
					free(dup);
					return 2;
				}
				nsizes++;
			}
			free(dup);
			break;
		}
		case 'm':
			mode_busy = in_list(optarg, "busy");
			mode_block = in_list(optarg, "block");
			if (!mode_busy && !mode_block) {
				fprintf(stderr, "takt-bench: --mode wants busy, block or busy,block\n");
				return 2;
			}
			break;
		case 'i': o.iterations = strtoull(optarg, NULL, 0); break;
		case 'w': o.warmup = strtoull(optarg, NULL, 0); break;
		case 's': o.seconds = atof(optarg); break;
		case 'W': o.warmup_seconds = atof(optarg); break;
		case 'c': capacity = strtoull(optarg, NULL, 0); break;
		case 'b': batch = (unsigned)strtoul(optarg, NULL, 0); break;
		case 'P': producers = (unsigned)strtoul(optarg, NULL, 0); break;
		case 'S': spin_ns = (uint32_t)strtoul(optarg, NULL, 0); break;
		case 'o': only = optarg; break;
		case 'x': skip = optarg; break;
		case 'p':
			if (sscanf(optarg, "%d,%d", &o.cpu[0], &o.cpu[1]) != 2) {
				fprintf(stderr, "takt-bench: --cpu wants A,B\n");
				return 2;
			}
			o.pin = 1;
			break;
		case 'F': fifo_prio = atoi(optarg); break;
		case 'L': want_mlock = 1; break;
		case 't':
			if (strcmp(optarg, "tsc") == 0)
				timer = TIMER_TSC;
			else if (strcmp(optarg, "clock") == 0)
				timer = TIMER_CLOCK;
			else {
				fprintf(stderr, "takt-bench: --timer wants clock or tsc\n");
				return 2;
			}
			break;
		case 'Q':
			if ((o.poll_pause = bench_parse_poll(optarg)) < 0) {
				fprintf(stderr, "takt-bench: --poll wants tight or pause\n");
				return 2;
			}
			break;
		case 'v': o.verify_every = strtoull(optarg, NULL, 0); break;
		case 'T': o.timeout_seconds = atof(optarg); break;
		case 'R':
			if (parse_duration(optarg, &cy.period_ns) < 0 || cy.period_ns == 0) {
				fprintf(stderr, "takt-bench: bad --period '%s' (e.g. 1ms, 250us)\n", optarg);
				return 2;
			}
			break;
		case 'C': cy.cycles = strtoull(optarg, NULL, 0); break;
		case 'U': cy.warmup_cycles = strtoull(optarg, NULL, 0); break;
		case 'D':
			if (parse_duration(optarg, &cy.deadline_ns) < 0) {
				fprintf(stderr, "takt-bench: bad --deadline '%s'\n", optarg);
				return 2;
			}
			deadline_set = 1;
			break;
		case 'j': json = 1; break;
		case 'V': csv = 1; break;
		case 'N': buckets = 0; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "takt-bench: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	if (json && csv) {
		fprintf(stderr, "takt-bench: --json and --csv exclude each other\n");
		return 2;
	}
	if (nsizes == 0)
		sizes[nsizes++] = 64;
	if (o.iterations == 0 || o.seconds <= 0 || producers == 0 || producers > 64 ||
	    (capacity & (capacity - 1)) != 0 || capacity < 1024 || cy.cycles == 0) {
		fprintf(stderr, "takt-bench: bad option value (iterations, seconds, producers 1..64,"
				" capacity a power of two >= 1024, cycles)\n");
		return 2;
	}
	FILE *tab = json || csv ? stderr : stdout;
	if (cmd == C_LIST) {
		cmd_list(tab);
		return 0;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	if (o.pin) {
		int e = bench_pin(o.cpu[0]);
		if (e < 0) {
			fprintf(stderr, "takt-bench: cannot pin to CPU %d: %s\n", o.cpu[0], strerror(-e));
			return 2;
		}
	}
	if (cmd != C_CYCLIC && (fifo_prio > 0 || want_mlock)) {
		/* the children inherit the scheduling policy; they lock their own memory */
		struct takt_cyclic_config cfg = { 0 };
		cfg.flags = (fifo_prio > 0 ? TAKT_CYCLIC_FIFO : 0) | (want_mlock ? TAKT_CYCLIC_MLOCK : 0);
		cfg.priority = fifo_prio;
		struct takt_cyclic_report rep;
		takt_cyclic_prepare(&cfg, &rep);
		if (fifo_prio > 0 && rep.fifo != 0) {
			fprintf(stderr, "takt-bench: SCHED_FIFO priority %d not permitted (%s): running"
					" SCHED_OTHER (needs root, CAP_SYS_NICE or an rtprio limit)\n",
				fifo_prio, strerror(-rep.fifo));
			fifo_prio = 0;
		}
		if (want_mlock && rep.mlock != 0) {
			fprintf(stderr, "takt-bench: mlockall not permitted (%s): memory not locked"
					" (needs CAP_IPC_LOCK or a memlock limit)\n",
				strerror(-rep.mlock));
			want_mlock = 0;
		}
		o.mlock = want_mlock;
		if (fifo_prio > 0)
			fprintf(stderr, "takt-bench: SCHED_FIFO %d: two busy-polling processes at real-time"
					" priority can starve everything else on their CPUs\n",
				fifo_prio);
	}
	bench_timer_init(timer);
	struct bench_sysinfo si;
	bench_sysinfo_get(&si);
	fprintf(tab, "takt-bench %s: %s, %s, %d CPUs, %s\n", cmd_names[cmd], si.cpu_model, si.kernel,
		si.ncpu, si.date);
	if (cmd == C_CYCLIC)
		fprintf(tab, "  period %.3f ms, %llu cycles after %llu warm-up, record %zu B\n",
			(double)cy.period_ns / 1e6, (unsigned long long)cy.cycles,
			(unsigned long long)cy.warmup_cycles, nsizes ? (sizes[0] < 16 ? 16 : sizes[0]) : 64);
	else
		fprintf(tab, "  %llu timed round trips after %llu warm-up; streams %.2f s after %.2f s"
			     " warm-up; timer %s (%.1f ns per reading, steps of %.0f ns)\n",
			(unsigned long long)o.iterations, (unsigned long long)o.warmup, o.seconds,
			o.warmup_seconds, timer == TIMER_TSC ? "rdtscp" : "CLOCK_MONOTONIC",
			bench_timer_overhead_ns(), bench_timer_resolution_ns());
	if (o.poll_pause && cmd != C_CYCLIC)
		fprintf(tab, "  busy round trips poll with a pause after every empty poll (--poll pause)\n");
	if (o.pin)
		fprintf(tab, "  parent (ping, consumer) on CPU %d, peer on CPU %d\n", o.cpu[0], o.cpu[1]);
	else
		fprintf(tab, "  not pinned: the scheduler places the processes\n");
	fflush(tab);

	struct bench_cpu_snap s0, s1;
	bench_cpu_snap(&s0);
	switch (cmd) {
	case C_COMPARE: cmd_compare(); break;
	case C_MPSC: cmd_mpsc(); break;
	case C_CYCLIC: cmd_cyclic(); break;
	case C_LIST: break;
	}
	bench_cpu_snap(&s1);
	double fp, sp;
	bench_cpu_disturbance(&s0, &s1, &fp, &sp);
	run_disturbed = fp > 5 || sp > 5;
	compute_ratios();
	compute_targets(cmd);

	table(tab, cmd);
	fprintf(tab, "\nother processes used %.1f%% and the hypervisor stole %.1f%% of the CPUs during"
		     " the run%s\n",
		fp, sp, fp > 5 || sp > 5 ? ": FIGURES DISTURBED, run again on a quiet machine" : "");
	fflush(tab);
	if (json)
		json_out(stdout, cmd, &si, fp, sp);
	if (csv)
		csv_out(stdout, cmd);
	int failed = 0;
	for (size_t i = 0; i < nrows; i++)
		failed += rows[i].status == S_FAILED;
	return failed ? 1 : 0;
}
