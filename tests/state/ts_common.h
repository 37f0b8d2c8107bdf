/* SPDX-License-Identifier: MIT */
/*
 * ts_common.h - helpers of the state-channel tests (issue 9).
 *
 * Names and cleanup.  Criterion runs every test case in a worker process of
 * its own.  ts_name("x") gives the channel name "ts-<worker pid>-x", removes
 * anything stale of that name first (unlink-before-create) and records it;
 * the suite's .fini (run even after a failed assertion) removes every name
 * the test made, and a POST_ALL hook in the runner removes the names of
 * workers that crashed (their pid no longer exists).
 *
 * Images.  A test image of len >= TS_IMAGE_MIN bytes carries its generation
 * in bytes 0..7, its length in 8..15, bytes derived from the generation in
 * the middle, and in its last 8 bytes a checksum over everything before
 * them: a torn image (parts of two generations) fails the checksum.
 *
 * Children.  Forked children never use Criterion's assertions: they report
 * through their exit status (and shared memory from ts_shared()).  They
 * call ts_child_setup() so that they die with the test.
 */
#ifndef TAKT_TESTS_STATE_COMMON_H
#define TAKT_TESTS_STATE_COMMON_H

#include <criterion/criterion.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "takt.h"
#include "layout.h"

/* gcc defines __SANITIZE_*__; clang answers __has_feature */
#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define TS_SANITIZED 1
#endif
#endif
#if !defined(TS_SANITIZED) && (defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__))
#define TS_SANITIZED 1
#endif
#ifndef TS_SANITIZED
#define TS_SANITIZED 0
#endif

/* ---- names and cleanup ------------------------------------------------ */

const char *ts_name(const char *tag);
void ts_remove(const char *name);
/* /dev/shm entries of the channel: takt.<name> and sem.takt.<name>.* */
int ts_leftovers(const char *name);
void ts_init(void);
void ts_fini(void);
#define TS_SUITE(suite, ...) TestSuite(suite, .init = ts_init, .fini = ts_fini, ##__VA_ARGS__)

/* ---- channel shortcuts (asserting) ------------------------------------ */

void ts_create(const char *name, uint32_t image_size);
takt_state_writer *ts_writer(const char *name);
takt_state_reader *ts_reader(const char *name);
/* A read-only mapping for stats and liveness. */
takt_channel *ts_inspect(const char *name);
struct takt_state_stats ts_stats(const char *name);

/* ---- raw access to the segment ---------------------------------------- */

struct ts_raw {
	uint8_t *base;
	size_t size;
	int fd;
};
void ts_raw_map(const char *name, struct ts_raw *raw);
void ts_raw_unmap(struct ts_raw *raw);
static inline struct takt_seg_header *ts_hdr(const struct ts_raw *r)
{
	return (struct takt_seg_header *)r->base;
}
static inline struct takt_seg_state *ts_ctl(const struct ts_raw *r)
{
	return (struct takt_seg_state *)(r->base + TAKT_CONSUMER_OFFSET);
}
static inline struct takt_seg_state_slot *ts_slot(const struct ts_raw *r, uint32_t image_size,
						  unsigned k)
{
	return (struct takt_seg_state_slot *)(r->base + TAKT_LANES_OFFSET +
					      (uint64_t)k * takt_state_slot_stride(image_size));
}

/* ---- images ------------------------------------------------------------- */

#define TS_IMAGE_MIN 24u
void ts_image_make(void *buf, size_t len, uint64_t gen);
/* NULL if buf is the complete image of generation gen and length len;
 * otherwise a short reason. */
const char *ts_image_check(const void *buf, size_t len, uint64_t gen);
/* The generation an image says it has (bytes 0..7). */
uint64_t ts_image_gen(const void *buf);

/* ---- misc --------------------------------------------------------------- */

uint64_t ts_env_u64(const char *var, uint64_t dflt);
/* Seed of the randomised tests: TAKT_SEED, else from the clock; logged. */
uint64_t ts_seed(void);
/* xorshift-style PRNG step. */
uint64_t ts_rand(uint64_t *state);
/* 10 with TAKT_LONG=1 in the environment, else 1. */
unsigned ts_long(void);
/* Monotonic nanoseconds (same clock as takt_now_ns). */
uint64_t ts_now_ns(void);
void ts_sleep_ns(uint64_t ns);
/* Zeroed MAP_SHARED|MAP_ANONYMOUS memory, inherited by forked children. */
void *ts_shared(size_t size);
void ts_shared_free(void *p, size_t size);
/* In a forked child: die with the parent. */
void ts_child_setup(void);
/* fork(), asserting success. */
pid_t ts_fork(void);
/* waitpid, retrying EINTR; returns the status. */
int ts_wait(pid_t pid);
/* SIGKILL and reap. */
int ts_kill_wait(pid_t pid);
const char *ts_status_str(int status);

#endif
