/* SPDX-License-Identifier: MIT */
#include "report.h"

#include <string.h>

void report_lat_header(FILE *f)
{
	fprintf(f, "%-24s %7s %7s %7s %7s %7s %7s %9s %7s %8s\n", "round trip [ns]", "min", "p50",
		"p90", "p99", "p99.9", "p99.99", "max", "mean", "samples");
}

void report_lat_row(FILE *f, const char *label, const struct lat_result *r)
{
	if (r->err) {
		fprintf(f, "%-24s FAILED: %s\n", label, r->msg);
		return;
	}
	struct hist_summary s;
	hist_summarize(&r->hist, &s);
	char p999[24] = "-", p9999[24] = "-";
	if (s.has_p999)
		snprintf(p999, sizeof(p999), "%llu", (unsigned long long)s.p999);
	if (s.has_p9999)
		snprintf(p9999, sizeof(p9999), "%llu", (unsigned long long)s.p9999);
	fprintf(f, "%-24s %7llu %7llu %7llu %7llu %7s %7s %9llu %7.1f %8llu\n", label,
		(unsigned long long)s.min, (unsigned long long)s.p50, (unsigned long long)s.p90,
		(unsigned long long)s.p99, p999, p9999, (unsigned long long)s.max, s.mean,
		(unsigned long long)s.count);
}

void report_stream_header(FILE *f)
{
	fprintf(f, "%-24s %14s %10s %9s %12s %12s\n", "streaming", "records/s", "MB/s",
		"ns/rec", "full (prod)", "empty (cons)");
}

void report_stream_row(FILE *f, const char *label, const struct stream_result *r)
{
	if (r->err) {
		fprintf(f, "%-24s FAILED: %s\n", label, r->msg);
		return;
	}
	fprintf(f, "%-24s %14.0f %10.1f %9.2f %12llu %12llu\n", label, r->rate, r->mbps,
		r->rate > 0 ? 1e9 / r->rate : 0.0, (unsigned long long)r->full_events,
		(unsigned long long)r->empty_polls);
}

void json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

void json_lat(FILE *f, const struct lat_result *r, int with_buckets)
{
	if (r->err) {
		fprintf(f, "{\"error\":%d,\"message\":", r->err);
		json_string(f, r->msg);
		fputc('}', f);
		return;
	}
	struct hist_summary s;
	hist_summarize(&r->hist, &s);
	fprintf(f,
		"{\"unit\":\"ns\",\"samples\":%llu,\"seconds\":%.6f,\"min\":%llu,\"p50\":%llu,"
		"\"p90\":%llu,\"p99\":%llu",
		(unsigned long long)s.count, r->seconds, (unsigned long long)s.min,
		(unsigned long long)s.p50, (unsigned long long)s.p90, (unsigned long long)s.p99);
	if (s.has_p999)
		fprintf(f, ",\"p99.9\":%llu", (unsigned long long)s.p999);
	if (s.has_p9999)
		fprintf(f, ",\"p99.99\":%llu", (unsigned long long)s.p9999);
	fprintf(f, ",\"max\":%llu,\"mean\":%.2f,\"mean99\":%.2f", (unsigned long long)s.max, s.mean,
		hist_trimmed_mean(&r->hist, 0.99));
	if (with_buckets) {
		fprintf(f, ",\"buckets\":");
		hist_json_buckets(&r->hist, f);
	}
	fputc('}', f);
}

void json_stream(FILE *f, const struct stream_result *r)
{
	if (r->err) {
		fprintf(f, "{\"error\":%d,\"message\":", r->err);
		json_string(f, r->msg);
		fputc('}', f);
		return;
	}
	fprintf(f,
		"{\"records\":%llu,\"seconds\":%.6f,\"records_per_s\":%.1f,\"mb_per_s\":%.3f,"
		"\"ns_per_record\":%.3f,\"full_events\":%llu,\"empty_polls\":%llu}",
		(unsigned long long)r->records, r->seconds, r->rate, r->mbps,
		r->rate > 0 ? 1e9 / r->rate : 0.0, (unsigned long long)r->full_events,
		(unsigned long long)r->empty_polls);
}
