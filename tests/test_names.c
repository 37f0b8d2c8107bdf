/* SPDX-License-Identifier: MIT */
/*
 * test_names.c - channel names and queue geometry: every way to get them
 * wrong returns -EINVAL and leaves nothing behind; the edges that are
 * right work end to end.
 */
#define _GNU_SOURCE
#include "common.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

TT_SUITE(names, .timeout = 30);
TT_SUITE(geometry, .timeout = 30);

static const struct takt_queue_config good = {
	.capacity = 4096, .lanes = 1, .max_record = 1024, .mode = 0600,
};

/* Every open-style call refuses a bad name with -EINVAL. */
static void expect_bad_name(const char *name, const char *what)
{
	takt_channel *ch = NULL;
	takt_producer *p = NULL;
	takt_consumer *c = NULL;
	int rc = takt_queue_create(name, &good);
	cr_expect_eq(rc, -EINVAL, "create(%s) = %d (%s)", what, rc, takt_strerror(rc));
	rc = takt_channel_open(name, 0, &ch);
	cr_expect_eq(rc, -EINVAL, "channel_open(%s) = %d", what, rc);
	rc = takt_channel_open(name, TAKT_OPEN_RDONLY, &ch);
	cr_expect_eq(rc, -EINVAL, "channel_open rdonly(%s) = %d", what, rc);
	rc = takt_producer_open(name, &p);
	cr_expect_eq(rc, -EINVAL, "producer_open(%s) = %d", what, rc);
	rc = takt_consumer_open(name, &c);
	cr_expect_eq(rc, -EINVAL, "consumer_open(%s) = %d", what, rc);
	rc = takt_unlink(name);
	cr_expect_eq(rc, -EINVAL, "unlink(%s) = %d", what, rc);
}

Test(names, empty)
{
	expect_bad_name("", "empty");
}

Test(names, too_long_201)
{
	char name[TAKT_NAME_MAX + 2];
	memset(name, 'a', TAKT_NAME_MAX + 1);
	name[TAKT_NAME_MAX + 1] = '\0';
	cr_assert_eq(strlen(name), 201);
	expect_bad_name(name, "201 chars");
}

Test(names, very_long)
{
	static char name[5000];
	memset(name, 'b', sizeof name - 1);
	expect_bad_name(name, "4999 chars");
}

Test(names, bad_characters)
{
	static const char *bad[] = {
		"/",       "/abc",   "abc/",   "a/b",   "a b",    " ",      "abc ",  "\tabc",
		"a\nb",    "a*b",    "a?b",    "a:b",   "a\\b",   "a%b",    "a+b",   "a~b",
		"\xc3\xa9", "a\x7f", "a\x01",  "@",     "a,b",    "a;b",    "\"q\"", "a'b",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char what[64];
		snprintf(what, sizeof what, "bad[%zu]", i);
		expect_bad_name(bad[i], what);
	}
}

Test(names, null_arguments)
{
	takt_channel *ch = NULL;
	cr_expect_eq(takt_queue_create(NULL, &good), -EINVAL);
	cr_expect_eq(takt_queue_create(tt_name(), NULL), -EINVAL);
	cr_expect_eq(takt_channel_open(NULL, 0, &ch), -EINVAL);
	cr_expect_eq(takt_unlink(NULL), -EINVAL);
}

/* All 64 allowed characters, and the longest allowed name, work end to end
 * (create, open both ends, carry a record, unlink, nothing left). */
static void round_trip(const char *name)
{
	/* all 64 lanes: the longest semaphore names */
	struct takt_queue_config cfg = good;
	cfg.lanes = TAKT_LANES_MAX;
	int rc = takt_queue_create(name, &cfg);
	cr_assert_eq(rc, 0, "create(%s) = %d (%s)", name, rc, takt_strerror(rc));
	takt_producer *p = tt_producer(name);
	takt_consumer *c = tt_consumer(name);
	cr_assert_eq(takt_try_send(p, 7, "hello", 5), 0);
	char buf[16];
	struct takt_msg m;
	cr_assert_eq(takt_try_recv(c, buf, sizeof buf, &m), 5);
	cr_assert_eq(memcmp(buf, "hello", 5), 0);
	cr_assert_eq(m.type, 7);
	takt_producer_close(p);
	takt_consumer_close(c);
	cr_assert_eq(takt_unlink(name), 0);
	cr_assert_eq(tt_leftovers(name), 0, "files left after unlink of %s", name);
	cr_assert_eq(takt_unlink(name), -ENOENT);
}

Test(names, every_allowed_character)
{
	char name[TAKT_NAME_MAX + 1];
	snprintf(name, sizeof name, "tt-%d-%d-ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-",
		 (int)getppid(), (int)getpid());
	tt_remove(name);
	tt_track(name);
	round_trip(name);
}

Test(names, exactly_200)
{
	char name[TAKT_NAME_MAX + 1];
	int n = snprintf(name, sizeof name, "tt-%d-%d-", (int)getppid(), (int)getpid());
	memset(name + n, 'z', (size_t)(TAKT_NAME_MAX - n));
	name[TAKT_NAME_MAX] = '\0';
	cr_assert_eq(strlen(name), 200);
	tt_remove(name);
	tt_track(name);
	round_trip(name);
}

/* A C string ends at its NUL: what follows is not part of the name. */
Test(names, nul_truncated)
{
	const char *base = tt_name();
	char buf[TAKT_NAME_MAX + 32];
	size_t n = strlen(base);
	memcpy(buf, base, n);
	memcpy(buf + n, "\0/ bad", 7);
	int rc = takt_queue_create(buf, &good);
	cr_assert_eq(rc, 0, "create = %d (%s)", rc, takt_strerror(rc));
	takt_channel *ch = NULL;
	cr_assert_eq(takt_channel_open(base, TAKT_OPEN_RDONLY, &ch), 0);
	cr_assert_eq(takt_channel_close(ch), 0);
	cr_assert_eq(takt_queue_create(base, &good), -EEXIST);
}

/* ---- geometry -------------------------------------------------------- */

static void expect_bad_cfg(struct takt_queue_config cfg, const char *what)
{
	const char *name = tt_name();
	int rc = takt_queue_create(name, &cfg);
	cr_expect_eq(rc, -EINVAL, "%s: create = %d (%s)", what, rc, takt_strerror(rc));
	cr_expect_eq(tt_leftovers(name), 0, "%s: files left behind", what);
	takt_channel *ch = NULL;
	cr_expect_eq(takt_channel_open(name, TAKT_OPEN_RDONLY, &ch), -ENOENT, "%s: channel exists", what);
}

Test(geometry, capacity_not_power_of_two)
{
	static const uint64_t caps[] = {1025, 1536, 3000, 4095, 4097, 65535, 100000, (1ull << 20) + 8};
	for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++) {
		struct takt_queue_config c = good;
		c.capacity = caps[i];
		c.max_record = 64;
		char what[64];
		snprintf(what, sizeof what, "capacity %llu", (unsigned long long)caps[i]);
		expect_bad_cfg(c, what);
	}
}

Test(geometry, capacity_too_small)
{
	static const uint64_t caps[] = {0, 1, 8, 256, 512};
	for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++) {
		struct takt_queue_config c = good;
		c.capacity = caps[i];
		c.max_record = 1;
		char what[64];
		snprintf(what, sizeof what, "capacity %llu", (unsigned long long)caps[i]);
		expect_bad_cfg(c, what);
	}
}

Test(geometry, capacity_too_large)
{
	static const uint64_t caps[] = {1ull << 31, 1ull << 32, 1ull << 40, 1ull << 63,
					UINT64_MAX};
	for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++) {
		struct takt_queue_config c = good;
		c.capacity = caps[i];
		char what[64];
		snprintf(what, sizeof what, "capacity %llu", (unsigned long long)caps[i]);
		expect_bad_cfg(c, what);
	}
}

Test(geometry, capacity_limits_ok)
{
	/* the smallest capacity, with the largest record it allows */
	const char *name = tt_name();
	struct takt_queue_config c = {.capacity = TAKT_CAPACITY_MIN, .lanes = 1,
				      .max_record = TAKT_CAPACITY_MIN / 4};
	cr_assert_eq(takt_queue_create(name, &c), 0);
	takt_channel *ch = NULL;
	cr_assert_eq(takt_channel_open(name, TAKT_OPEN_RDONLY, &ch), 0);
	struct takt_channel_config cc;
	cr_assert_eq(takt_channel_config_get(ch, &cc), 0);
	cr_expect_eq(cc.capacity, TAKT_CAPACITY_MIN);
	cr_expect_eq(cc.max_record, TAKT_CAPACITY_MIN / 4);
	cr_expect_eq(cc.lanes, 1);
	cr_assert_eq(takt_channel_close(ch), 0);
}

Test(geometry, max_record_bounds)
{
	struct takt_queue_config c = good;
	c.max_record = 0;
	expect_bad_cfg(c, "max_record 0");
	c.max_record = (uint32_t)(good.capacity / 4 + 1);
	expect_bad_cfg(c, "max_record capacity/4+1");
	c.max_record = (uint32_t)good.capacity;
	expect_bad_cfg(c, "max_record capacity");
	c.max_record = UINT32_MAX;
	expect_bad_cfg(c, "max_record UINT32_MAX");
	c.max_record = (uint32_t)(good.capacity / 4);
	const char *name = tt_name();
	cr_assert_eq(takt_queue_create(name, &c), 0, "max_record = capacity/4 must be accepted");
}

Test(geometry, lanes_bounds)
{
	struct takt_queue_config c = good;
	c.lanes = 0;
	expect_bad_cfg(c, "lanes 0");
	c.lanes = TAKT_LANES_MAX + 1;
	expect_bad_cfg(c, "lanes 65");
	c.lanes = UINT32_MAX;
	expect_bad_cfg(c, "lanes UINT32_MAX");
	c.lanes = TAKT_LANES_MAX;
	const char *name = tt_name();
	cr_assert_eq(takt_queue_create(name, &c), 0, "64 lanes must be accepted");
	takt_channel *ch = NULL;
	cr_assert_eq(takt_channel_open(name, TAKT_OPEN_RDONLY, &ch), 0);
	struct takt_channel_config cc;
	cr_assert_eq(takt_channel_config_get(ch, &cc), 0);
	cr_expect_eq(cc.lanes, TAKT_LANES_MAX);
	struct takt_lane_stats ls;
	cr_expect_eq(takt_lane_stats_get(ch, TAKT_LANES_MAX - 1, &ls), 0);
	cr_expect_eq(takt_lane_stats_get(ch, TAKT_LANES_MAX, &ls), -EINVAL);
	cr_assert_eq(takt_channel_close(ch), 0);
}

Test(geometry, flags_nonzero)
{
	struct takt_queue_config c = good;
	for (unsigned bit = 0; bit < 32; bit++) {
		c.flags = 1u << bit;
		char what[64];
		snprintf(what, sizeof what, "flags 1<<%u", bit);
		expect_bad_cfg(c, what);
	}
}

Test(geometry, open_flags_unknown)
{
	const char *name = tt_name();
	cr_assert_eq(takt_queue_create(name, &good), 0);
	takt_channel *ch = NULL;
	int rc = takt_channel_open(name, 1u << 7, &ch);
	cr_expect_eq(rc, -EINVAL, "unknown open flag: %d", rc);
	if (rc == 0)
		takt_channel_close(ch);
}
