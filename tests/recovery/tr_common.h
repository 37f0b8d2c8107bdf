/* SPDX-License-Identifier: MIT */
/*
 * tr_common.h - helpers of the recovery tests.
 *
 * Names: tr_name("x") gives "tr-<runner pid>-<pid>-x-<n>", records it, removes
 * anything stale of that name; tr_cleanup() (every suite's .fini, which
 * Criterion runs after failed assertions too) removes every recorded
 * channel with its semaphores, by takt_unlink and by hand.
 *
 * Records: tr_rec_make()/tr_rec_check() build and verify self-describing
 * payloads {magic, stream, inc, seq, filler..., checksum}, so a torn or
 * misplaced record is always detected.
 */
#ifndef TR_COMMON_H
#define TR_COMMON_H

#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "takt.h"

#define TR_SUITE(suite, ...) TestSuite(suite, .init = tr_init, .fini = tr_cleanup, ##__VA_ARGS__)

void tr_init(void);
void tr_cleanup(void);
const char *tr_name(const char *what);
void tr_remove(const char *name);
/* /dev/shm entries of the channel (segment + semaphores). */
int tr_leftovers(const char *name);

void tr_create(const char *name, uint64_t capacity, uint32_t lanes, uint32_t max_record);

/* ---- records ---- */
#define TR_REC_MIN 32u
struct tr_rec_id {
	uint32_t stream; /* producer role */
	uint32_t inc;    /* producer incarnation */
	uint64_t seq;
};
/* Length of record (stream, seq) in [TR_REC_MIN, max]. */
size_t tr_rec_len(uint32_t stream, uint64_t seq, uint32_t max);
void tr_rec_make(void *buf, size_t len, struct tr_rec_id id);
/* NULL if buf is a well-formed record (id filled in), else why not. */
const char *tr_rec_check(const void *buf, size_t len, struct tr_rec_id *id);

/* ---- processes ---- */
/* In a forked child: die with the parent. */
void tr_child_setup(void);
/* Wait for pid up to timeout_s; returns the wait status, or -1 on timeout
 * (the child is then killed and reaped). */
int tr_wait_timeout(pid_t pid, double timeout_s);
const char *tr_status(int status);
/* Shared anonymous memory, inherited across fork. */
void *tr_shared(size_t size);
void tr_unshared(void *p, size_t size);

/* ---- misc ---- */
uint64_t tr_env_u64(const char *var, uint64_t dflt);
bool tr_long(void);
uint64_t tr_seed(void);
static inline uint64_t tr_rand(uint64_t *s)
{
	/* xorshift64* */
	uint64_t x = *s;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545f4914f6cdd1dull;
}
double tr_now(void);
/* After -EAGAIN in a polling loop on 2 cores: yield. */
void tr_yield(void);

#endif
