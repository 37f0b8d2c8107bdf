/* SPDX-License-Identifier: MIT */
/*
 * takt-demo - a new user's first look at takt (scripts/demo.sh runs it).
 *
 * Two processes exchange 64-byte records through takt channels:
 *   latency:    "takt-ping" sends a record, "takt-pong" sends it back; every
 *               round trip is timed on its own;
 *   streaming:  "takt-producer" sends as fast as it can, "takt-consumer"
 *               receives and checks every sequence number.
 * Beside each figure: the same between two processes that only bounce one
 * cache line (the hardware limit for a round trip) and a minimal
 * hand-written ring (the simplest thing that can stream).
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

static void on_signal(int sig)
{
	for (size_t i = 0; bench_mechs[i]; i++)
		if (bench_mechs[i]->cleanup_all)
			bench_mechs[i]->cleanup_all();
	signal(sig, SIG_DFL);
	raise(sig);
}

static const char *fmt_ns(char *b, size_t n, uint64_t v)
{
	return bench_fmt_ns(b, n, v);
}

static void lat_row(const char *label, const struct hist *h, const char *note)
{
	struct hist_summary s;
	char a[5][24];
	hist_summarize(h, &s);
	printf("  %-22s %9s %9s %9s %9s %10s   %s\n", label, fmt_ns(a[0], 24, s.min),
	       fmt_ns(a[1], 24, s.p50), fmt_ns(a[2], 24, s.p99),
	       s.has_p999 ? fmt_ns(a[3], 24, s.p999) : "-", fmt_ns(a[4], 24, s.max), note);
}

static void st_row(const char *label, const struct stream_result *r, const char *note)
{
	printf("  %-22s %9.1f M %9.0f %10.1f ns   %s\n", label, r->rate / 1e6, r->mbps,
	       1e9 / r->rate, note);
}

static int die(const char *what, const char *msg)
{
	fprintf(stderr, "\ntakt-demo: %s failed: %s\n", what, msg);
	return 1;
}

/* One round-trip measurement between processes named <who>-ping and
 * <who>-pong (so that `ps` shows what runs); 0 or die()'s 1. */
static int round_trips(const struct bench_mech *m, struct bench_params *p, struct bench_opts *o,
		       unsigned id, const char *ping, const char *pong, struct lat_result *out)
{
	o->names[0] = ping;
	o->names[1] = pong;
	p->id = id;
	if (bench_latency(m, p, o, out)) {
		char what[64];
		snprintf(what, sizeof what, "%s round trips", m->name);
		return die(what, out->msg);
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct bench_opts o = {
		.iterations = 300000,
		.warmup = 50000,
		.seconds = 1.5,
		.warmup_seconds = 0.3,
		.timeout_seconds = 30,
	};
	struct bench_params p = { .size = 64, .capacity = 65536, .batch = 32 };
	static const struct option lopts[] = {
		{ "cpu", required_argument, 0, 'p' },
		{ "quick", no_argument, 0, 'q' },
		{ "help", no_argument, 0, 'h' },
		{ 0, 0, 0, 0 },
	};
	int c;
	while ((c = getopt_long(argc, argv, "hq", lopts, NULL)) != -1) {
		switch (c) {
		case 'p':
			if (sscanf(optarg, "%d,%d", &o.cpu[0], &o.cpu[1]) != 2) {
				fprintf(stderr, "--cpu wants A,B\n");
				return 2;
			}
			o.pin = 1;
			break;
		case 'q':
			o.iterations = 100000;
			o.warmup = 20000;
			o.seconds = 0.5;
			o.warmup_seconds = 0.2;
			break;
		case 'h':
			printf("usage: takt-demo [--quick] [--cpu A,B]\n");
			return 0;
		default:
			return 2;
		}
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	if (o.pin && bench_pin(o.cpu[0]) < 0) {
		fprintf(stderr, "cannot pin to CPU %d\n", o.cpu[0]);
		return 2;
	}
	bench_timer_init(TIMER_CLOCK);
	struct bench_sysinfo si;
	bench_sysinfo_get(&si);
	const struct bench_mech *cl = bench_mech_find("cacheline"), *tk = bench_mech_find("takt"),
				*rg = bench_mech_find("ring"), *lp = bench_mech_find("linepair");

	printf("takt demo: two processes exchanging 64-byte records through shared memory\n");
	printf("  machine: %s, %d CPUs, %s\n", si.cpu_model, si.ncpu, si.kernel);
	if (si.ncpu < 2)
		printf("  WARNING: one CPU only: busy-polling processes take turns, figures are meaningless\n");
	printf("  both processes busy-poll (no system calls); %s\n\n",
	       o.pin ? "each is pinned to its own CPU" : "the kernel places them on the CPUs");

	struct lat_result *l_cl0 = calloc(1, sizeof(*l_cl0)), *l_cl1 = calloc(1, sizeof(*l_cl1)),
			  *l_tk = calloc(1, sizeof(*l_tk)), *l_lp = calloc(1, sizeof(*l_lp));
	struct stream_result s_tk, s_rg;
	if (!l_cl0 || !l_cl1 || !l_tk || !l_lp)
		return 1;

	printf("measuring ...\n");
	fflush(stdout);
	struct bench_cpu_snap snap0, snap1;
	bench_cpu_snap(&snap0);
	if (round_trips(cl, &p, &o, 0, "cacheline-ping", "cacheline-pong", l_cl0))
		return 1;
	printf("  [1/6] cache line: %llu round trips between cacheline-ping (pid %d) and cacheline-pong (pid %d)\n",
	       (unsigned long long)l_cl0->hist.count, l_cl0->pid[0], l_cl0->pid[1]);
	if (round_trips(lp, &p, &o, 5, "linepair-ping", "linepair-pong", l_lp))
		return 1;
	printf("  [2/6] line pair:  %llu round trips, one cache line each way\n",
	       (unsigned long long)l_lp->hist.count);
	if (round_trips(tk, &p, &o, 1, "takt-ping", "takt-pong", l_tk))
		return 1;
	printf("  [3/6] takt:       %llu round trips between takt-ping (pid %d) and takt-pong (pid %d)\n",
	       (unsigned long long)l_tk->hist.count, l_tk->pid[0], l_tk->pid[1]);
	o.names[0] = "takt-consumer";
	o.names[1] = "takt-producer";
	p.id = 2;
	if (bench_stream(tk, &p, &o, 0, &s_tk))
		return die("takt streaming", s_tk.msg);
	printf("  [4/6] takt:       %.1f s of streaming from takt-producer (pid %d) to takt-consumer (pid %d)\n",
	       s_tk.seconds, s_tk.pid[1], s_tk.pid[0]);
	o.names[0] = "ring-consumer";
	o.names[1] = "ring-producer";
	p.id = 3;
	if (bench_stream(rg, &p, &o, 0, &s_rg))
		return die("minimal ring streaming", s_rg.msg);
	printf("  [5/6] ring:       %.1f s of streaming from ring-producer (pid %d) to ring-consumer (pid %d)\n",
	       s_rg.seconds, s_rg.pid[1], s_rg.pid[0]);
	if (round_trips(cl, &p, &o, 4, "cacheline-ping", "cacheline-pong", l_cl1))
		return 1;
	printf("  [6/6] cache line again (the CPUs of a VM may have moved meanwhile)\n\n");
	bench_cpu_snap(&snap1);
	double foreign_pct, steal_pct;
	bench_cpu_disturbance(&snap0, &snap1, &foreign_pct, &steal_pct);

	struct hist_summary a, b, t, lps;
	hist_summarize(&l_lp->hist, &lps);
	hist_summarize(&l_cl0->hist, &a);
	hist_summarize(&l_cl1->hist, &b);
	struct hist *clh = &l_cl0->hist;
	hist_merge(clh, &l_cl1->hist); /* both cache-line runs together */
	struct hist_summary cs;
	hist_summarize(clh, &cs);
	hist_summarize(&l_tk->hist, &t);

	printf("ROUND TRIP  (send 64 bytes, get them back; lower is better)\n");
	printf("  %-22s %9s %9s %9s %9s %10s\n", "", "min", "median", "p99", "p99.9", "max");
	lat_row("takt channel", &l_tk->hist, "");
	lat_row("one cache line", clh, "<- hardware limit");
	lat_row("a line each way", &l_lp->hist, "<- limit for a channel per direction");
	double ratio = (double)t.p50 / (double)cs.p50;
	printf("  => takt's median round trip is %.2fx the hardware limit (%+lld ns),\n"
	       "     %.2fx the limit for two one-way channels",
	       ratio, (long long)t.p50 - (long long)cs.p50, (double)t.p50 / (double)lps.p50);
	if (a.p50 && b.p50 && (a.p50 > b.p50 * 1.1 || b.p50 > a.p50 * 1.1))
		printf(";\n     note: the cache line took %llu ns at the start and %llu ns at the end: "
		       "the VM moved its CPUs", (unsigned long long)a.p50, (unsigned long long)b.p50);
	printf("\n\n");

	printf("STREAMING  (64-byte records, one direction, as fast as possible; higher is better)\n");
	printf("  %-22s %11s %9s %13s\n", "", "records/s", "MB/s", "per record");
	st_row("takt channel", &s_tk, "");
	st_row("minimal ring", &s_rg, "<- simplest possible ring");
	printf("  => takt streams %.2fx the rate of the minimal ring\n\n", s_tk.rate / s_rg.rate);

	if (foreign_pct > 5 || steal_pct > 5)
		printf("NOTE: other processes used %.0f%% and the hypervisor %.0f%% of the CPUs while we\n"
		       "      measured: the figures above are disturbed; run the demo again when idle.\n\n",
		       foreign_pct, steal_pct);
	printf("What this means:\n"
	       "  * A round trip cannot be faster than moving one cache line from one core to the\n"
	       "    other and back: that is the \"one cache line\" row, two processes doing nothing\n"
	       "    but flip one shared word.  takt does real work on top (record header, length\n"
	       "    and bounds checks against a hostile peer, statistics) and should stay close.\n"
	       "  * \"a line each way\" is the same with one line per direction, as any pair of\n"
	       "    queues has: the word just read is no longer the one written next, which costs\n"
	       "    the hardware a little more.  No pair of one-way channels can beat that row.\n"
	       "  * \"minimal ring\" is a bare ring buffer with fixed 64-byte slots and no checks at\n"
	       "    all; takt carries variable-length, typed, validated records and should match it.\n"
	       "  * median = half of the round trips were faster; p99 = 99%% were faster.  The\n"
	       "    rare large values (p99.9, max) are the OS or hypervisor taking the CPU away.\n"
	       "  * Figures depend on which cores the processes run on; on a VM, compare only the\n"
	       "    ratios of one run.  More: build-*/bench/takt-bench-core, docs/BENCHMARKS.md.\n");
	free(l_cl0);
	free(l_cl1);
	free(l_tk);
	free(l_lp);
	return 0;
}
