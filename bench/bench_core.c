/* SPDX-License-Identifier: MIT */
/*
 * takt-bench-core - the core figures of takt against the hardware, in one run:
 *
 *   1. round trip of one bouncing cache line between two processes (start)
 *   1b. the same with one line per direction (the least two one-way
 *      channels can cost; mech_cacheline.c says why it differs)
 *   2. round trip of a 64-byte record through takt (two SPSC channels)
 *   3. the same through a minimal fixed-slot ring (two rings), for reference
 *   4. streaming through takt, per record
 *   5. streaming through takt, in batches (takt_try_send_batch/_recv_batch)
 *   6. streaming through the minimal ring
 *   7. the cache-line round trip again (end): core placement may have changed
 *
 * and the ratios takt-RT-p50 / cacheline-RT-p50 (the target),
 * takt-RT-p50 / line-pair-RT-p50 (reference) and takt-stream / ring-stream.
 * Only ratios measured within one run are meaningful on a VM whose vCPUs move.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "mech.h"
#include "report.h"

#define RT_TARGET 1.15
#define STREAM_TARGET 0.90

enum kind { LAT, STREAM, STREAM_BATCH };

struct step {
	const char *id;    /* JSON key */
	const char *label; /* table label */
	const char *mech;
	enum kind kind;
	int ran;
	struct lat_result lat;
	struct stream_result st;
};

static struct step plan[] = {
	{ .id = "null_rt", .label = "harness floor (no IPC)", .mech = "null", .kind = LAT },
	{ .id = "cacheline_rt_start", .label = "cacheline (start)", .mech = "cacheline", .kind = LAT },
	{ .id = "linepair_rt", .label = "line pair (one per way)", .mech = "linepair", .kind = LAT },
	{ .id = "takt_rt", .label = "takt", .mech = "takt", .kind = LAT },
	{ .id = "ring_rt", .label = "minimal ring", .mech = "ring", .kind = LAT },
	{ .id = "takt_stream", .label = "takt", .mech = "takt", .kind = STREAM },
	{ .id = "takt_stream_batch", .label = "takt batch", .mech = "takt", .kind = STREAM_BATCH },
	{ .id = "ring_stream", .label = "minimal ring", .mech = "ring", .kind = STREAM },
	{ .id = "cacheline_rt_end", .label = "cacheline (end)", .mech = "cacheline", .kind = LAT },
};
#define NSTEPS (sizeof(plan) / sizeof(plan[0]))

static struct step *find_step(const char *id)
{
	for (size_t i = 0; i < NSTEPS; i++)
		if (strcmp(plan[i].id, id) == 0)
			return plan[i].ran && !(plan[i].kind == LAT ? plan[i].lat.err : plan[i].st.err)
				       ? &plan[i]
				       : NULL;
	return NULL;
}

static void on_signal(int sig)
{
	for (size_t i = 0; bench_mechs[i]; i++)
		if (bench_mechs[i]->cleanup_all)
			bench_mechs[i]->cleanup_all();
	signal(sig, SIG_DFL);
	raise(sig);
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: takt-bench-core [options]\n"
		"  --iterations N     timed round trips per latency test (default 1000000)\n"
		"  --warmup N         untimed round trips before them (default 100000)\n"
		"  --seconds S        streaming window per test (default 2)\n"
		"  --warmup-seconds S streaming warm-up before the window (default 0.3)\n"
		"  --size B           record payload bytes, >= 8 (default 64)\n"
		"  --capacity B       ring bytes per direction, power of two (default 65536)\n"
		"  --batch N          records per batch call (default 32)\n"
		"  --cpu A,B          pin the parent (ping, consumer) to A, the child to B\n"
		"  --timer clock|tsc  clock_gettime(CLOCK_MONOTONIC) (default) or rdtscp\n"
		"  --poll tight|pause round trips: poll back to back (default) or with a\n"
		"                     pause instruction after every empty poll, as takt_recv spins\n"
		"  --only LIST        run only these mechanisms (comma list: cacheline,linepair,takt,ring)\n"
		"  --timeout S        give up on a test after S seconds (default 60)\n"
		"  --json             write JSON to stdout (the table goes to stderr)\n"
		"  --buckets          include histogram buckets in the JSON\n");
}

static int selected(const char *only, const char *mech)
{
	if (!only)
		return 1;
	size_t n = strlen(mech);
	for (const char *p = only; *p;) {
		const char *c = strchr(p, ',');
		size_t len = c ? (size_t)(c - p) : strlen(p);
		if (len == n && strncmp(p, mech, n) == 0)
			return 1;
		if (!c)
			break;
		p = c + 1;
	}
	return 0;
}

static int disturbed; /* other processes or the hypervisor took > 5 % of the CPUs */

static void verdict(FILE *f, const char *what, double lo, double hi, double target, int le)
{
	int ok_lo = le ? lo <= target : lo >= target, ok_hi = le ? hi <= target : hi >= target;
	const char *v = disturbed ? "DISTURBED (no verdict)"
		      : ok_lo && ok_hi ? "MET" : (!ok_lo && !ok_hi ? "MISSED" : "INCONCLUSIVE");
	if (lo == hi)
		fprintf(f, "  %-44s %6.3f          target %s %.2f   %s\n", what, lo, le ? "<=" : ">=",
			target, v);
	else
		fprintf(f, "  %-44s %6.3f .. %-6.3f target %s %.2f   %s\n", what, lo, hi,
			le ? "<=" : ">=", target, v);
}

int main(int argc, char **argv)
{
	struct bench_opts o = {
		.iterations = 1000000,
		.warmup = 100000,
		.seconds = 2.0,
		.warmup_seconds = 0.3,
		.timeout_seconds = 60,
		.names = { "takt-bench", "takt-bench-peer" },
	};
	struct bench_params p = { .size = 64, .capacity = 65536, .batch = 32 };
	const char *only = NULL;
	int json = 0, buckets = 0;
	enum bench_timer timer = TIMER_CLOCK;

	static const struct option lopts[] = {
		{ "iterations", required_argument, 0, 'i' },
		{ "warmup", required_argument, 0, 'w' },
		{ "seconds", required_argument, 0, 's' },
		{ "warmup-seconds", required_argument, 0, 'W' },
		{ "size", required_argument, 0, 'z' },
		{ "capacity", required_argument, 0, 'c' },
		{ "batch", required_argument, 0, 'b' },
		{ "cpu", required_argument, 0, 'p' },
		{ "timer", required_argument, 0, 't' },
		{ "poll", required_argument, 0, 'P' },
		{ "only", required_argument, 0, 'o' },
		{ "timeout", required_argument, 0, 'T' },
		{ "json", no_argument, 0, 'j' },
		{ "buckets", no_argument, 0, 'B' },
		{ "help", no_argument, 0, 'h' },
		{ 0, 0, 0, 0 },
	};
	int c;
	while ((c = getopt_long(argc, argv, "h", lopts, NULL)) != -1) {
		switch (c) {
		case 'i': o.iterations = strtoull(optarg, NULL, 0); break;
		case 'w': o.warmup = strtoull(optarg, NULL, 0); break;
		case 's': o.seconds = atof(optarg); break;
		case 'W': o.warmup_seconds = atof(optarg); break;
		case 'z': p.size = strtoull(optarg, NULL, 0); break;
		case 'c': p.capacity = strtoull(optarg, NULL, 0); break;
		case 'b': p.batch = (unsigned)strtoul(optarg, NULL, 0); break;
		case 'p':
			if (sscanf(optarg, "%d,%d", &o.cpu[0], &o.cpu[1]) != 2) {
				fprintf(stderr, "--cpu wants A,B\n");
				return 2;
			}
			o.pin = 1;
			break;
		case 't':
			if (strcmp(optarg, "tsc") == 0)
				timer = TIMER_TSC;
			else if (strcmp(optarg, "clock") == 0)
				timer = TIMER_CLOCK;
			else {
				fprintf(stderr, "--timer wants clock or tsc\n");
				return 2;
			}
			break;
		case 'P':
			if ((o.poll_pause = bench_parse_poll(optarg)) < 0) {
				fprintf(stderr, "--poll wants tight or pause\n");
				return 2;
			}
			break;
		case 'o': only = optarg; break;
		case 'T': o.timeout_seconds = atof(optarg); break;
		case 'j': json = 1; break;
		case 'B': buckets = 1; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (p.size < 8 || o.iterations == 0 || o.seconds <= 0 || p.batch == 0 ||
	    (p.capacity & (p.capacity - 1)) != 0) {
		fprintf(stderr, "bad option value (size >= 8, capacity a power of two, ...)\n");
		return 2;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	if (o.pin) {
		int e = bench_pin(o.cpu[0]);
		if (e < 0) {
			fprintf(stderr, "cannot pin to CPU %d: %s\n", o.cpu[0], strerror(-e));
			return 2;
		}
	}
	bench_timer_init(timer);
	FILE *tab = json ? stderr : stdout;
	struct bench_sysinfo si;
	bench_sysinfo_get(&si);

	fprintf(tab, "takt-bench-core: %zu-byte records, ring %llu bytes per direction\n", p.size,
		(unsigned long long)p.capacity);
	fprintf(tab, "  %s, %s, %d CPUs, %s\n", si.cpu_model, si.kernel, si.ncpu, si.date);
	if (timer == TIMER_TSC)
		fprintf(tab, "  timer rdtscp at %.3f GHz", bench_tsc_ghz());
	else
		fprintf(tab, "  timer clock_gettime(CLOCK_MONOTONIC)");
	fprintf(tab, ": %.1f ns per reading, steps of %.0f ns (each round trip includes about one reading)\n",
		bench_timer_overhead_ns(), bench_timer_resolution_ns());
	if (o.pin)
		fprintf(tab, "  parent (ping, consumer) on CPU %d, child (pong, producer) on CPU %d\n",
			o.cpu[0], o.cpu[1]);
	else
		fprintf(tab, "  not pinned: the scheduler places the two processes\n");
	fprintf(tab, "  round trips poll %s\n",
		o.poll_pause ? "with a pause after every empty poll (--poll pause)"
			     : "back to back (--poll tight)");
	fprintf(tab, "  %llu timed round trips after %llu warm-up; streams %.1f s after %.1f s warm-up\n\n",
		(unsigned long long)o.iterations, (unsigned long long)o.warmup, o.seconds,
		o.warmup_seconds);
	fflush(tab);

	int failures = 0;
	struct bench_cpu_snap snap0, snap1;
	bench_cpu_snap(&snap0);
	for (size_t i = 0; i < NSTEPS; i++) {
		struct step *s = &plan[i];
		const struct bench_mech *m = bench_mech_find(s->mech);
		if (!m || !selected(only, s->mech))
			continue;
		p.id = (unsigned)i;
		fprintf(stderr, "  running %-10s %s ...\n", s->label,
			s->kind == LAT ? "round trips" : s->kind == STREAM ? "stream" : "batch stream");
		if (s->kind == LAT)
			failures += bench_latency(m, &p, &o, &s->lat) != 0;
		else
			failures += bench_stream(m, &p, &o, s->kind == STREAM_BATCH, &s->st) != 0;
		s->ran = 1;
	}
	bench_cpu_snap(&snap1);
	double foreign_pct, steal_pct;
	bench_cpu_disturbance(&snap0, &snap1, &foreign_pct, &steal_pct);
	disturbed = foreign_pct > 5 || steal_pct > 5;
	fprintf(stderr, "\n");

	report_lat_header(tab);
	for (size_t i = 0; i < NSTEPS; i++)
		if (plan[i].ran && plan[i].kind == LAT)
			report_lat_row(tab, plan[i].label, &plan[i].lat);
	fprintf(tab, "\n");
	char title[64];
	snprintf(title, sizeof(title), "streaming %zu B", p.size);
	report_stream_header(tab);
	for (size_t i = 0; i < NSTEPS; i++)
		if (plan[i].ran && plan[i].kind != LAT) {
			char label[64];
			if (plan[i].kind == STREAM_BATCH)
				snprintf(label, sizeof(label), "%s %u", plan[i].label, p.batch);
			else
				snprintf(label, sizeof(label), "%s", plan[i].label);
			report_stream_row(tab, label, &plan[i].st);
		}

	/* Ratios.  The cache line is measured at the start and at the end of the
	 * run; a ratio is shown against both (lo .. hi). */
	struct lat_fig { int ok; double p50, m99; } fl = {0}, c0 = {0}, c1 = {0}, lp = {0}, tk = {0},
						       rg = {0};
	struct { const char *id; struct lat_fig *f; } figs[] = {
		{ "null_rt", &fl }, { "cacheline_rt_start", &c0 }, { "cacheline_rt_end", &c1 },
		{ "linepair_rt", &lp }, { "takt_rt", &tk }, { "ring_rt", &rg },
	};
	for (size_t i = 0; i < sizeof(figs) / sizeof(figs[0]); i++) {
		struct step *st = find_step(figs[i].id);
		if (!st)
			continue;
		struct hist_summary hs;
		hist_summarize(&st->lat.hist, &hs);
		figs[i].f->ok = 1;
		figs[i].f->p50 = (double)hs.p50;
		figs[i].f->m99 = hist_trimmed_mean(&st->lat.hist, 0.99);
	}
	struct step *ts = find_step("takt_stream"), *tb = find_step("takt_stream_batch");
	struct step *rs = find_step("ring_stream");
	struct lat_fig clo = c0.ok ? c0 : c1, chi = c1.ok ? c1 : c0; /* lo/hi by p50 */
	if (clo.ok && chi.ok && clo.p50 > chi.p50) {
		struct lat_fig t = clo;
		clo = chi;
		chi = t;
	}
	double floor_p50 = fl.ok ? fl.p50 : 0, floor_m99 = fl.ok ? fl.m99 : 0;

	fprintf(tab, "\nratios (against the cache line at start and at end of the run: lo .. hi)\n");
	if (c0.ok && c1.ok && chi.p50 / clo.p50 > 1.10)
		fprintf(tab, "  note: the cache-line round trip moved %.0f%% between start and end:"
			     " core placement changed during the run\n",
			100.0 * (chi.p50 / clo.p50 - 1.0));
	if (clo.ok && tk.ok) {
		verdict(tab, "takt RT p50 / cacheline RT p50", tk.p50 / chi.p50, tk.p50 / clo.p50,
			RT_TARGET, 1);
		fprintf(tab, "  %-44s %6.3f .. %-6.3f (finer than the clock step)\n",
			"takt RT mean99 / cacheline RT mean99", tk.m99 / chi.m99, tk.m99 / clo.m99);
		if (fl.ok && clo.p50 > floor_p50 && tk.p50 > floor_p50)
			fprintf(tab, "  %-44s %6.3f .. %-6.3f (floor %.0f ns subtracted from both)\n",
				"takt RT p50 / cacheline RT p50, net", (tk.p50 - floor_p50) / (chi.p50 - floor_p50),
				(tk.p50 - floor_p50) / (clo.p50 - floor_p50), floor_p50);
		if (fl.ok && clo.m99 > floor_m99 && tk.m99 > floor_m99)
			fprintf(tab, "  %-44s %6.3f .. %-6.3f (floor %.1f ns subtracted from both)\n",
				"takt RT mean99 / cacheline RT mean99, net",
				(tk.m99 - floor_m99) / (chi.m99 - floor_m99),
				(tk.m99 - floor_m99) / (clo.m99 - floor_m99), floor_m99);
		fprintf(tab, "  %-44s %+6.1f .. %+-6.1f ns per round trip\n", "takt RT p50 - cacheline RT p50",
			tk.p50 - chi.p50, tk.p50 - clo.p50);
	}
	if (lp.ok && tk.ok) {
		fprintf(tab, "  %-44s %6.3f          (reference: one line per way, no target)\n",
			"takt RT p50 / line-pair RT p50", tk.p50 / lp.p50);
		fprintf(tab, "  %-44s %6.3f          (reference, no target)\n",
			"takt RT mean99 / line-pair RT mean99", tk.m99 / lp.m99);
	}
	if (clo.ok && rg.ok) {
		fprintf(tab, "  %-44s %6.3f .. %-6.3f (reference, no target)\n",
			"ring RT p50 / cacheline RT p50", rg.p50 / chi.p50, rg.p50 / clo.p50);
		fprintf(tab, "  %-44s %6.3f .. %-6.3f (reference, no target)\n",
			"ring RT mean99 / cacheline RT mean99", rg.m99 / chi.m99, rg.m99 / clo.m99);
	}
	if (ts && rs)
		verdict(tab, "takt stream / ring stream", ts->st.rate / rs->st.rate,
			ts->st.rate / rs->st.rate, STREAM_TARGET, 0);
	if (tb && rs)
		fprintf(tab, "  %-44s %6.3f          (batch %u, no target)\n",
			"takt batch stream / ring stream", tb->st.rate / rs->st.rate, p.batch);
	fprintf(tab, "  mean99 = mean of the fastest 99%% of round trips; floor = the harness"
		     " itself (timer, calls), no IPC\n");
	fprintf(tab, "\nother processes used %.1f%% and the hypervisor stole %.1f%% of the CPUs"
		     " during the run%s\n", foreign_pct, steal_pct,
		foreign_pct > 5 || steal_pct > 5 ? ": FIGURES DISTURBED, run again on a quiet machine"
						  : "");
	fflush(tab);

	if (json) {
		FILE *f = stdout;
		fprintf(f, "{\"benchmark\":\"takt-bench-core\",\"date\":");
		json_string(f, si.date);
		fprintf(f, ",\"cpu_model\":");
		json_string(f, si.cpu_model);
		fprintf(f, ",\"kernel\":");
		json_string(f, si.kernel);
		fprintf(f, ",\"ncpu\":%d,\"params\":{\"size\":%zu,\"capacity\":%llu,\"batch\":%u,"
			   "\"iterations\":%llu,\"warmup\":%llu,\"seconds\":%.3f,"
			   "\"warmup_seconds\":%.3f,\"timer\":\"%s\",\"timer_overhead_ns\":%.1f,"
			   "\"timer_step_ns\":%.1f,\"poll\":\"%s\",\"pinned\":%s",
			si.ncpu, p.size, (unsigned long long)p.capacity, p.batch,
			(unsigned long long)o.iterations, (unsigned long long)o.warmup, o.seconds,
			o.warmup_seconds, timer == TIMER_TSC ? "tsc" : "clock",
			bench_timer_overhead_ns(), bench_timer_resolution_ns(),
			o.poll_pause ? "pause" : "tight", o.pin ? "true" : "false");
		if (o.pin)
			fprintf(f, ",\"cpu\":[%d,%d]", o.cpu[0], o.cpu[1]);
		fprintf(f, "},\"disturbance\":{\"foreign_cpu_pct\":%.2f,\"steal_pct\":%.2f}",
			foreign_pct, steal_pct);
		fprintf(f, ",\"results\":{");
		int first = 1;
		for (size_t i = 0; i < NSTEPS; i++) {
			if (!plan[i].ran)
				continue;
			fprintf(f, "%s\"%s\":", first ? "" : ",", plan[i].id);
			if (plan[i].kind == LAT)
				json_lat(f, &plan[i].lat, buckets);
			else
				json_stream(f, &plan[i].st);
			first = 0;
		}
		fprintf(f, "},\"ratios\":{");
		first = 1;
#define JR(name, val)                                                                        \
	do {                                                                                 \
		fprintf(f, "%s\"%s\":%.4f", first ? "" : ",", name, (double)(val));          \
		first = 0;                                                                   \
	} while (0)
		if (c0.ok && tk.ok)
			JR("takt_rt_p50_over_cacheline_start", tk.p50 / c0.p50);
		if (c1.ok && tk.ok)
			JR("takt_rt_p50_over_cacheline_end", tk.p50 / c1.p50);
		if (c0.ok && tk.ok)
			JR("takt_rt_mean99_over_cacheline_start", tk.m99 / c0.m99);
		if (c1.ok && tk.ok)
			JR("takt_rt_mean99_over_cacheline_end", tk.m99 / c1.m99);
		if (c0.ok && tk.ok && fl.ok)
			JR("takt_rt_p50_net_over_cacheline_start",
			   (tk.p50 - floor_p50) / (c0.p50 - floor_p50));
		if (c1.ok && tk.ok && fl.ok)
			JR("takt_rt_p50_net_over_cacheline_end",
			   (tk.p50 - floor_p50) / (c1.p50 - floor_p50));
		if (lp.ok && tk.ok)
			JR("takt_rt_p50_over_linepair", tk.p50 / lp.p50);
		if (lp.ok && tk.ok)
			JR("takt_rt_mean99_over_linepair", tk.m99 / lp.m99);
		if (c0.ok && rg.ok)
			JR("ring_rt_p50_over_cacheline_start", rg.p50 / c0.p50);
		if (c1.ok && rg.ok)
			JR("ring_rt_p50_over_cacheline_end", rg.p50 / c1.p50);
		if (ts && rs)
			JR("takt_stream_over_ring_stream", ts->st.rate / rs->st.rate);
		if (tb && rs)
			JR("takt_batch_stream_over_ring_stream", tb->st.rate / rs->st.rate);
#undef JR
		fprintf(f, "},\"targets\":{\"rt_ratio_max\":%.2f,\"stream_ratio_min\":%.2f}}\n",
			RT_TARGET, STREAM_TARGET);
	}
	return failures ? 1 : 0;
}
