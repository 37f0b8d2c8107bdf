/* SPDX-License-Identifier: MIT */
/* report.h - printing latency and streaming results as a table or JSON. */
#ifndef TAKT_BENCH_REPORT_H
#define TAKT_BENCH_REPORT_H

#include <stdio.h>

#include "harness.h"

void report_lat_header(FILE *f);
void report_lat_row(FILE *f, const char *label, const struct lat_result *r);
void report_stream_header(FILE *f);
void report_stream_row(FILE *f, const char *label, const struct stream_result *r);

/* JSON fragments (no trailing comma handling: the caller joins them). */
void json_string(FILE *f, const char *s);
void json_lat(FILE *f, const struct lat_result *r, int with_buckets);
void json_stream(FILE *f, const struct stream_result *r);

#endif
