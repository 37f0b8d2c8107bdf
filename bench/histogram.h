/* SPDX-License-Identifier: MIT */
/*
 * histogram.h - a log-linear latency histogram (HdrHistogram-like).
 *
 * Values (nanoseconds, or any unsigned 64-bit quantity) below 128 are kept
 * exactly; above, each power-of-two octave is split into 64 equal buckets, so
 * a reported percentile is within 1/64 (1.6 %) of the true value.  min and
 * max are exact.  Recording is a few instructions and never allocates.
 */
#ifndef TAKT_BENCH_HISTOGRAM_H
#define TAKT_BENCH_HISTOGRAM_H

#include <stdint.h>
#include <stdio.h>

#define HIST_SUB_BITS 6u                          /* 64 buckets per octave */
#define HIST_LINEAR (2u << HIST_SUB_BITS)         /* 0..127 exact */
#define HIST_BUCKETS (HIST_LINEAR + (64u - (HIST_SUB_BITS + 1u)) * (1u << HIST_SUB_BITS))

struct hist {
	uint64_t count;
	uint64_t min;
	uint64_t max;
	uint64_t sum;   /* for the mean, reported beside the percentiles */
	uint64_t buckets[HIST_BUCKETS];
};

/* Percentiles a summary carries; p99.99 only when there are enough samples. */
struct hist_summary {
	uint64_t count;
	uint64_t min, p50, p90, p99, p999, p9999, max;
	double mean;
	int has_p999;  /* count >= 1 000 */
	int has_p9999; /* count >= 10 000 */
};

void hist_init(struct hist *h);
static inline unsigned hist_index(uint64_t v)
{
	if (v < HIST_LINEAR)
		return (unsigned)v;
	unsigned msb = 63u - (unsigned)__builtin_clzll(v);  /* >= HIST_SUB_BITS + 1 */
	unsigned shift = msb - HIST_SUB_BITS;
	return HIST_LINEAR + (msb - (HIST_SUB_BITS + 1u)) * (1u << HIST_SUB_BITS) +
	       (unsigned)((v >> shift) & ((1u << HIST_SUB_BITS) - 1u));
}
static inline void hist_record(struct hist *h, uint64_t v)
{
	h->buckets[hist_index(v)]++;
	h->count++;
	h->sum += v;
	if (v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
}
void hist_merge(struct hist *into, const struct hist *from);
/* Lowest and highest value that fall into bucket i. */
uint64_t hist_bucket_low(unsigned i);
uint64_t hist_bucket_high(unsigned i);
/* The value at quantile q (0 < q <= 1): the highest value of the bucket that
 * holds the ceil(q * count)-th sample, clamped to [min, max]. 0 when empty. */
uint64_t hist_quantile(const struct hist *h, double q);
/* Mean of the lowest fraction q of the samples (bucket midpoints): a central
 * figure finer than a coarse clock's step and robust to preemption outliers. */
double hist_trimmed_mean(const struct hist *h, double q);
void hist_summarize(const struct hist *h, struct hist_summary *s);
/* Write the non-empty buckets as a JSON array of [low, high, count]. */
void hist_json_buckets(const struct hist *h, FILE *f);

#endif
