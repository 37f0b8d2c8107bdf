/* SPDX-License-Identifier: MIT */
#include "histogram.h"

#include <math.h>
#include <string.h>

void hist_init(struct hist *h)
{
	memset(h, 0, sizeof(*h));
	h->min = UINT64_MAX;
}

void hist_merge(struct hist *into, const struct hist *from)
{
	for (unsigned i = 0; i < HIST_BUCKETS; i++)
		into->buckets[i] += from->buckets[i];
	into->count += from->count;
	into->sum += from->sum;
	if (from->count) {
		if (from->min < into->min)
			into->min = from->min;
		if (from->max > into->max)
			into->max = from->max;
	}
}

uint64_t hist_bucket_low(unsigned i)
{
	if (i < HIST_LINEAR)
		return i;
	unsigned k = i - HIST_LINEAR;
	unsigned octave = k >> HIST_SUB_BITS;             /* 0 = [128, 256) */
	unsigned sub = k & ((1u << HIST_SUB_BITS) - 1u);
	unsigned shift = octave + 1u;                     /* bucket width = 2^shift */
	return ((uint64_t)((1u << HIST_SUB_BITS) + sub)) << shift;
}

uint64_t hist_bucket_high(unsigned i)
{
	if (i + 1u >= HIST_BUCKETS)
		return UINT64_MAX;
	return hist_bucket_low(i + 1u) - 1u;
}

uint64_t hist_quantile(const struct hist *h, double q)
{
	if (h->count == 0)
		return 0;
	uint64_t rank = (uint64_t)ceil(q * (double)h->count);
	if (rank < 1)
		rank = 1;
	if (rank > h->count)
		rank = h->count;
	uint64_t seen = 0;
	for (unsigned i = 0; i < HIST_BUCKETS; i++) {
		seen += h->buckets[i];
		if (seen >= rank) {
			uint64_t v = hist_bucket_high(i);
			if (v > h->max)
				v = h->max;
			if (v < h->min)
				v = h->min;
			return v;
		}
	}
	return h->max;
}

void hist_summarize(const struct hist *h, struct hist_summary *s)
{
	memset(s, 0, sizeof(*s));
	s->count = h->count;
	if (!h->count)
		return;
	s->min = h->min;
	s->max = h->max;
	s->mean = (double)h->sum / (double)h->count;
	s->p50 = hist_quantile(h, 0.50);
	s->p90 = hist_quantile(h, 0.90);
	s->p99 = hist_quantile(h, 0.99);
	s->p999 = hist_quantile(h, 0.999);
	s->p9999 = hist_quantile(h, 0.9999);
	s->has_p999 = h->count >= 1000;
	s->has_p9999 = h->count >= 10000;
}

void hist_json_buckets(const struct hist *h, FILE *f)
{
	int first = 1;
	fputc('[', f);
	for (unsigned i = 0; i < HIST_BUCKETS; i++) {
		if (!h->buckets[i])
			continue;
		fprintf(f, "%s[%llu,%llu,%llu]", first ? "" : ",",
			(unsigned long long)hist_bucket_low(i),
			(unsigned long long)hist_bucket_high(i),
			(unsigned long long)h->buckets[i]);
		first = 0;
	}
	fputc(']', f);
}

double hist_trimmed_mean(const struct hist *h, double q)
{
	if (h->count == 0)
		return 0.0;
	uint64_t keep = (uint64_t)ceil(q * (double)h->count), seen = 0;
	double sum = 0.0;
	for (unsigned i = 0; i < HIST_BUCKETS && seen < keep; i++) {
		uint64_t n = h->buckets[i];
		if (!n)
			continue;
		if (n > keep - seen)
			n = keep - seen;
		double mid = i < HIST_LINEAR ? (double)i
					     : ((double)hist_bucket_low(i) + (double)hist_bucket_high(i)) / 2.0;
		sum += mid * (double)n;
		seen += n;
	}
	return seen ? sum / (double)seen : 0.0;
}
