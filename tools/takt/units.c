/* SPDX-License-Identifier: MIT */
/*
 * units.c - parsing and printing of sizes and durations.  Numbers are parsed
 * exactly (integer mantissa and decimal scale), never through floating point.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "units.h"

struct unit {
	const char *name;
	uint64_t mult;
};

static const struct unit size_units[] = {
	{"", 1},	   {"B", 1},
	{"K", 1ull << 10}, {"KiB", 1ull << 10},
	{"M", 1ull << 20}, {"MiB", 1ull << 20},
	{"G", 1ull << 30}, {"GiB", 1ull << 30},
	{"T", 1ull << 40}, {"TiB", 1ull << 40},
	{NULL, 0},
};

static const struct unit time_units[] = {
	{"", 1000000000ull}, /* a bare number is seconds */
	{"ns", 1},
	{"us", 1000},
	{"\xc2\xb5s", 1000}, /* µs */
	{"ms", 1000000},
	{"s", 1000000000ull},
	{"sec", 1000000000ull},
	{"m", 60000000000ull},
	{"min", 60000000000ull},
	{"h", 3600000000000ull},
	{NULL, 0},
};

/* Parse "<digits>[.<digits>][ ]<unit>" exactly: value = mant / 10^scale * mult.
 * Returns 0, -EINVAL (malformed or unknown unit), -ERANGE (overflow) or
 * -EDOM (not a whole number of the base unit and !allow_round). */
static int parse_scaled(const char *s, const struct unit *units, int allow_round,
			uint64_t *out)
{
	const char *p = s;
	unsigned __int128 mant = 0, scale = 1;
	int digits = 0, frac = 0;
	while (*p >= '0' && *p <= '9') {
		mant = mant * 10 + (unsigned)(*p - '0');
		/* 2^84 times the largest unit (< 2^42) still fits in 128 bits. */
		if (mant > ((unsigned __int128)1 << 84))
			return -ERANGE;
		p++;
		digits++;
	}
	if (*p == '.') {
		p++;
		while (*p >= '0' && *p <= '9') {
			if (frac < 18) {
				mant = mant * 10 + (unsigned)(*p - '0');
				scale *= 10;
				if (mant > ((unsigned __int128)1 << 84))
					return -ERANGE;
			} else if (*p != '0' && !allow_round) {
				return -EDOM;
			}
			p++;
			frac++;
			digits++;
		}
		if (frac == 0)
			return -EINVAL;
	}
	if (digits == 0)
		return -EINVAL;
	if (*p == ' ')
		p++;
	for (const struct unit *u = units; u->name; u++) {
		if (strcmp(p, u->name) != 0 && !(u->name[0] && strcasecmp(p, u->name) == 0 &&
						 strcmp(u->name, "m") != 0))
			continue;
		unsigned __int128 v = mant * u->mult;
		if (v % scale != 0 && !allow_round)
			return -EDOM;
		v /= scale;
		if (v > (unsigned __int128)INT64_MAX)
			return -ERANGE;
		*out = (uint64_t)v;
		return 0;
	}
	return -EINVAL;
}

int units_parse_size(const char *s, uint64_t *out)
{
	int rc = parse_scaled(s, size_units, 0, out);
	return rc == -EDOM ? -EINVAL : rc;
}

int units_parse_duration(const char *s, uint64_t *out_ns, int allow_forever)
{
	if (allow_forever && (strcmp(s, "forever") == 0 || strcmp(s, "inf") == 0 ||
			      strcmp(s, "infinity") == 0)) {
		*out_ns = UINT64_MAX;
		return 0;
	}
	return parse_scaled(s, time_units, 1, out_ns);
}

int units_parse_uint(const char *s, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;
	if (!*s)
		return -EINVAL;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return -EINVAL;
		unsigned d = (unsigned)(*p - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
	}
	if (v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

char *units_fmt_size(char *buf, size_t n, uint64_t bytes)
{
	static const char *names[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
	int i = 0;
	while (i < 6 && bytes >= (1ull << (10 * (i + 1))))
		i++;
	if (i == 0) {
		snprintf(buf, n, "%llu B", (unsigned long long)bytes);
		return buf;
	}
	uint64_t unit = 1ull << (10 * i);
	if (bytes % unit == 0)
		snprintf(buf, n, "%llu %s", (unsigned long long)(bytes / unit), names[i]);
	else
		snprintf(buf, n, "%.1f %s", (double)bytes / (double)unit, names[i]);
	return buf;
}

char *units_fmt_duration(char *buf, size_t n, uint64_t ns)
{
	const uint64_t S = 1000000000ull;
	if (ns < 1000)
		snprintf(buf, n, "%llu ns", (unsigned long long)ns);
	else if (ns < 1000000)
		snprintf(buf, n, "%.1f us", (double)ns / 1e3);
	else if (ns < S)
		snprintf(buf, n, "%.1f ms", (double)ns / 1e6);
	else if (ns < 60 * S)
		snprintf(buf, n, "%.1f s", (double)ns / 1e9);
	else if (ns < 3600 * S)
		snprintf(buf, n, "%llum%02llus", (unsigned long long)(ns / (60 * S)),
			 (unsigned long long)(ns / S % 60));
	else if (ns < 86400 * S)
		snprintf(buf, n, "%lluh%02llum", (unsigned long long)(ns / (3600 * S)),
			 (unsigned long long)(ns / (60 * S) % 60));
	else
		snprintf(buf, n, "%llud%02lluh", (unsigned long long)(ns / (86400 * S)),
			 (unsigned long long)(ns / (3600 * S) % 24));
	return buf;
}

char *units_fmt_rate(char *buf, size_t n, double v)
{
	if (v < 1000)
		snprintf(buf, n, "%.1f", v);
	else if (v < 1e6)
		snprintf(buf, n, "%.1fk", v / 1e3);
	else if (v < 1e9)
		snprintf(buf, n, "%.2fM", v / 1e6);
	else
		snprintf(buf, n, "%.2fG", v / 1e9);
	return buf;
}
