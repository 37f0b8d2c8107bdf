/* SPDX-License-Identifier: MIT */
/*
 * tb_common.h - helpers of the blocking-wait tests (tests/blocking/).
 *
 * Names: tb_name("tag") gives "tb-<runner pid>-<pid>-<tag>-<n>", unique per
 * test process (Criterion runs each test in its own worker), removes
 * anything stale of that name first and records it; the suite's .fini
 * (TB_SUITE) removes every recorded name, also after a failed assertion, and
 * a report hook in the runner removes what a worker killed by a timeout or
 * a crash left behind (every name of the run starts with tb-<runner pid>-).
 *
 * Children: tb_fork() forks a child that dies with its parent; the child
 * reports through its exit status and the shared tb_report page, never
 * through Criterion (its asserts belong to the test worker).
 */
#ifndef TB_COMMON_H
#define TB_COMMON_H

/* First include of every test source: before any system header. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <criterion/criterion.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "takt.h"

const char *tb_name(const char *tag);
void tb_remove(const char *name);
void tb_init(void);
void tb_fini(void);
#define TB_SUITE(suite, ...) TestSuite(suite, .init = tb_init, .fini = tb_fini, ##__VA_ARGS__)

void tb_create(const char *name, uint64_t capacity, uint32_t lanes, uint32_t max_record);

/* A page of shared memory (MAP_SHARED | MAP_ANONYMOUS) for child reports. */
void *tb_shared(size_t size);

/* Fork; in the child run fn(arg) and _exit with its return value. */
pid_t tb_fork(int (*fn)(void *), void *arg);
/* Wait for a child; its wait status. */
int tb_wait(pid_t pid);
const char *tb_status_str(int status);

/* Errors a child reports: the first one wins. */
struct tb_report {
	_Atomic int set;
	char msg[512];
};
void tb_fail(struct tb_report *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* An unsigned from the environment, or dflt. */
uint64_t tb_env_u64(const char *var, uint64_t dflt);
uint64_t tb_seed(void);

static inline uint64_t tb_rand(uint64_t *s)
{
	/* splitmix64 */
	uint64_t x = (*s += 0x9e3779b97f4a7c15ull);
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static inline void tb_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

/* Busy pause of about n relax instructions (no system call, no sleep). */
static inline void tb_pause(uint64_t n)
{
	for (uint64_t i = 0; i < n; i++)
		tb_relax();
}

/* The doorbell words in a channel's segment, through the library's own
 * mapping of that channel (tests look, never write, except where said). */
_Atomic uint32_t *tb_rx_bell(takt_channel *ch);
_Atomic uint32_t *tb_tx_bell(takt_channel *ch, unsigned lane);

/* Wait until bit 0 of *word is set (a waiter armed the doorbell) and, if
 * pid > 0, until that process sits in a futex wait (from /proc/<pid>/syscall;
 * skipped when that file cannot be read).  Returns true when both hold,
 * false if the process ended first. */
bool tb_wait_parked(_Atomic uint32_t *word, pid_t pid);

/* Fill / check a payload determined by (stream, seq). */
void tb_fill(void *buf, size_t len, uint64_t stream, uint64_t seq);
bool tb_check(const void *buf, size_t len, uint64_t stream, uint64_t seq);

#endif
