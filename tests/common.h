/* SPDX-License-Identifier: MIT */
/*
 * common.h - helpers shared by the Criterion tests.
 *
 * Every test runs in its own process (Criterion forks a worker per test), so
 * the helpers keep per-process state:
 *
 *  - tt_name() makes a channel name that no other test, no other run and no
 *    other parallel ctest job can collide with:
 *        tt-<runner pid>-<worker pid>-<test name>-<counter>
 *    and records it, after removing anything stale of that name.
 *  - tt_fini() (the .fini of every suite, which Criterion runs even after a
 *    failed assertion) unlinks everything tt_name() handed out: through
 *    takt_unlink() and, in case the segment is corrupt or half-made, by
 *    removing /dev/shm/takt.<name> and /dev/shm/sem.takt.<name>.* directly.
 *  - a report hook in the runner process removes whatever a crashed worker
 *    left behind (every name of this run starts with tt-<runner pid>-).
 *
 * Tests that poke the segment include layout.h (src/ is on their include
 * path) and use tt_raw_map() for a third, raw mapping.
 */
#ifndef TAKT_TESTS_COMMON_H
#define TAKT_TESTS_COMMON_H

#include <criterion/criterion.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "takt.h"

/* ---- names and cleanup ---------------------------------------------- */

/* A fresh unique channel name (static storage, up to 8 per test live at once;
 * copy it if you need more).  Stale objects of that name are removed first. */
const char *tt_name(void);
/* Track a name the test made itself (e.g. a 200-character one). */
void tt_track(const char *name);
/* Forget a name the test removed itself. */
void tt_untrack(const char *name);
/* Remove the channel's segment and semaphores by every means. */
void tt_remove(const char *name);
/* Number of /dev/shm entries that belong to the channel: takt.<name> and
 * sem.takt.<name>.<suffix>. */
int tt_leftovers(const char *name);

void tt_init(void);
void tt_fini(void);

/* The suite every test file uses: cleanup on every exit path. */
#define TT_SUITE(suite, ...) TestSuite(suite, .init = tt_init, .fini = tt_fini, ##__VA_ARGS__)

/* ---- channel shortcuts ------------------------------------------------ */

/* Create a queue channel, asserting success. */
void tt_create(const char *name, uint64_t capacity, uint32_t lanes, uint32_t max_record);

/* Open a producer / consumer, asserting success. */
takt_producer *tt_producer(const char *name);
takt_consumer *tt_consumer(const char *name);

/* ---- raw access to the segment --------------------------------------- */

struct tt_raw {
	uint8_t *base;
	size_t size;
	int fd;
};
/* Map /dev/shm/takt.<name> read-write, bypassing the library. */
void tt_raw_map(const char *name, struct tt_raw *raw);
void tt_raw_unmap(struct tt_raw *raw);
/* Path of the segment file. */
void tt_seg_path(const char *name, char *out, size_t n);

/* ---- deterministic payloads ------------------------------------------ */

static inline uint64_t tt_mix64(uint64_t x)
{
	/* splitmix64 finaliser */
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* Fill buf[0..len) with bytes determined by (stream, seq). */
void tt_fill(void *buf, size_t len, uint64_t stream, uint64_t seq);
/* 1 if buf[0..len) is what tt_fill(stream, seq) wrote. */
bool tt_check(const void *buf, size_t len, uint64_t stream, uint64_t seq);

/* Payload of a stream record: length from (stream, seq), at most max;
 * first 8 bytes the sequence number (if len >= 8), the last 8 bytes an
 * FNV-1a checksum of the rest (if len >= 16), the middle from tt_fill. */
size_t tt_stream_len(uint64_t stream, uint64_t seq, uint32_t max);
void tt_stream_make(void *buf, size_t len, uint64_t stream, uint64_t seq);
/* 0 if good; else a short reason. */
const char *tt_stream_verify(const void *buf, size_t len, uint64_t stream, uint64_t seq);

/* ---- misc --------------------------------------------------------------- */

/* An unsigned from the environment, or dflt. */
uint64_t tt_env_u64(const char *var, uint64_t dflt);
/* Records for the stream tests: TAKT_STREAM_RECORDS, else the build's
 * default (TAKT_STREAM_RECORDS_DEFAULT, set by tests/CMakeLists.txt for
 * sanitizer builds), else 10 million. */
uint64_t tt_stream_records(void);
/* Seed for randomised tests: TAKT_SEED, else from the clock; printed. */
uint64_t tt_seed(void);
/* Back off after -EAGAIN in a spin loop (2 cores, parallel tests): pause,
 * then yield, then short naps; reset *spins to 0 after progress. */
void tt_backoff(unsigned *spins);
/* Monotonic seconds. */
double tt_now(void);
/* Kill this forked child when its parent (the test) dies. */
void tt_child_setup(void);
/* Wait for a forked child; returns its wait status.  A child that hangs is
 * ended by the test timeout (and tt_child_setup's death signal). */
int tt_wait_child(pid_t pid);
/* Describe a wait status ("exit 3", "signal 11"). */
const char *tt_status_str(int status);

#define TT_ALIGN8(x) (((x) + 7u) & ~(size_t)7u)
#define TT_REC(len) (16u + TT_ALIGN8(len))

#endif
