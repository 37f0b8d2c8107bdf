/* SPDX-License-Identifier: MIT */
/*
 * units.h - sizes (B, KiB, MiB, GiB) and durations (ns, us, ms, s) as the
 * command line takes them and as the tool prints them.
 */
#ifndef TAKT_CLI_UNITS_H
#define TAKT_CLI_UNITS_H

#include <stddef.h>
#include <stdint.h>

/* "4096", "4KiB", "4 KiB", "1.5MiB", "1G": binary units only (K = KiB).
 * Returns 0, or -EINVAL (malformed, fractional bytes, decimal units such as
 * "KB") or -ERANGE (above 2^63). */
int units_parse_size(const char *s, uint64_t *out);

/* "250ms", "1.5s", "100us", "20ns", "2" (seconds); "forever"/"inf" give
 * UINT64_MAX when allow_forever.  Returns 0, -EINVAL or -ERANGE. */
int units_parse_duration(const char *s, uint64_t *out_ns, int allow_forever);

/* Decimal unsigned integer, no sign, no unit.  Returns 0, -EINVAL or -ERANGE. */
int units_parse_uint(const char *s, uint64_t max, uint64_t *out);

/* "512 B", "64 KiB", "1.5 MiB" (exact values print without decimals). */
char *units_fmt_size(char *buf, size_t n, uint64_t bytes);
/* "850 ns", "12.5 us", "3.20 ms", "1.50 s", "3m12s", "2h05m", "3d04h". */
char *units_fmt_duration(char *buf, size_t n, uint64_t ns);
/* A rate per second: "1.25 M", "830 k", "12.0" (SI, for records/s). */
char *units_fmt_rate(char *buf, size_t n, double per_s);

#endif
