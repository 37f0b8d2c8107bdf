/* SPDX-License-Identifier: MIT */
/*
 * doorbell.c - spin-then-park waiting on named POSIX semaphores.
 *
 * A doorbell is a word in the segment (bit 0: "armed", a waiter is parked
 * or about to park) and a named semaphore.  The protocol never loses a
 * wake-up and keeps the semaphore count bounded:
 *
 *   waiter                                  waker (after publishing)
 *   drain stale tokens (sem_trywait, <=64)  seq_cst fence
 *   fetch_or(armed)          [seq_cst]      load armed  [relaxed]
 *   seq_cst fence                           if armed:
 *   re-check the ring: ready -> disarm,       exchange(0) [seq_cst]
 *                      return                 post if it was armed
 *   sem_clockwait(deadline), EINTR: again
 *   woken -> disarm; timeout -> disarm, re-check
 *
 * This is the store-buffer pattern: each side stores (publication / arm)
 * then loads what the other stored (armed / the ring).  With a seq_cst
 * fence between store and load on both sides, at least one side sees the
 * other's store: either the waker sees the bell armed and posts, or the
 * waiter's re-check sees the publication and does not park.  DESIGN.md
 * asks the waker for a read-and-clear RMW on every publish; we do the
 * fence and a plain load instead, and the RMW only when armed.  It is as
 * safe (the fence gives the ordering the RMW would) and cheaper for MPSC:
 * an RMW on every send would bounce the doorbell's line between all the
 * producers, while a load keeps a clean shared copy in each of them.
 *
 * Only the one who clears the armed bit posts, so at most one token is
 * posted per arming; stale tokens (a post racing a timeout) are drained
 * before the next arming, so a semaphore never holds more than (wakers + 1)
 * tokens.  EOVERFLOW from sem_post means the count is already at its
 * maximum: the waiter is signalled anyway.
 *
 * TAKT_DOORBELL_RMW (TSan builds, which cannot model fences): the waker
 * does the exchange on every publish instead, and the waiter needs no
 * fence.  docs/WAITING.md has the full argument for both forms; the
 * Promela model (tests/model/doorbell.pml) checks both.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define TAKT_DRAIN_MAX 64

int takt_sem_open(const char *sem_name, sem_t **out)
{
	sem_t *s = sem_open(sem_name, 0);
	if (s == SEM_FAILED)
		return -errno;
	*out = s;
	return 0;
}

void takt_sem_close(sem_t *sem)
{
	if (sem)
		sem_close(sem);
}

void takt_doorbell_post(struct takt_doorbell *db)
{
	/* seq_cst RMW: exactly one waker wins the armed bit and posts. */
	if (atomic_exchange_explicit(db->word, 0, memory_order_seq_cst) & 1u) {
		if (sem_post(db->sem) != 0 && errno != EOVERFLOW) {
			/* EINVAL would mean a broken semaphore: nothing
			 * better to do than let the waiter's deadline end
			 * its wait. */
		}
	}
}

int takt_membarrier_register(void)
{
#ifdef TAKT_DOORBELL_RMW
	return -EOPNOTSUPP; /* TSan builds: the waker does an RMW on every publish */
#else
	/* The waiters' MEMBARRIER_CMD_GLOBAL_EXPEDITED reaches only the CPUs
	 * running a process that registered: register before the first
	 * fence-free publish.  Registration is per process and idempotent. */
	if (syscall(__NR_membarrier, MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED, 0, 0) != 0)
		return -errno;
	return 0;
#endif
}

/* A full memory barrier on every CPU that runs a registered process (and
 * on ours, before and after): what the fence-free producers skipped. */
static int takt_heavy_barrier(void)
{
	if (syscall(__NR_membarrier, MEMBARRIER_CMD_GLOBAL_EXPEDITED, 0, 0) != 0)
		return -errno;
	return 0;
}

static void disarm(struct takt_doorbell *db)
{
	atomic_fetch_and_explicit(db->word, ~1u, memory_order_relaxed);
}

static void deadline_ts(uint64_t ns, struct timespec *ts)
{
	ts->tv_sec = (time_t)(ns / 1000000000u);
	ts->tv_nsec = (long)(ns % 1000000000u);
}

int takt_doorbell_wait(struct takt_doorbell *db, bool (*ready)(void *), void *arg,
		       uint64_t deadline_ns)
{
	for (int i = 0; i < TAKT_DRAIN_MAX && sem_trywait(db->sem) == 0; i++)
		;
	/* seq_cst RMW then fence: the arm is globally visible before the
	 * re-check's loads (pairs with the fence in takt_doorbell_ring). */
	atomic_fetch_or_explicit(db->word, 1u, memory_order_seq_cst);
#ifndef TAKT_DOORBELL_RMW
	atomic_thread_fence(memory_order_seq_cst);
#else
	/* The waker does a seq_cst exchange on every publish: our fetch_or
	 * and its exchange are ordered in the word's modification order, and
	 * whichever comes second sees the first (docs/WAITING.md).  No fence
	 * is needed, and ThreadSanitizer, which does not model fences, can
	 * follow the synchronisation. */
#endif
	if (ready(arg)) {
		disarm(db);
		return 0;
	}
	/*
	 * Park.  The first park is cut at the backstop: a fence-free producer
	 * (takt_doorbell_check_light) may have checked the bell before its
	 * commit left its store buffer, and then nobody posts for that
	 * record.  At the backstop one heavy barrier makes every such commit
	 * visible; the re-check after it sees it, and any later publish sees
	 * our arm (docs/WAITING.md).  Then park until the deadline.  Without
	 * membarrier (seccomp, old kernel) we re-check at every backstop
	 * period instead: stores leave a store buffer in bounded time, so
	 * the record is seen at the next one.
	 */
	uint64_t backstop = takt_now_ns() + TAKT_PARK_BACKSTOP_NS;
	bool barrier_done = false;
	for (;;) {
		uint64_t until = deadline_ns;
		if (!barrier_done && backstop < until)
			until = backstop;
		struct timespec ts;
		deadline_ts(until, &ts);
		int rc = until == TAKT_FOREVER ? sem_wait(db->sem)
					       : sem_clockwait(db->sem, CLOCK_MONOTONIC, &ts);
		if (rc == 0) {
			/* Woken.  The waker cleared the bit when it posted; but the
			 * token may be a stale one (posted for an earlier arming
			 * after our drain), and then the bit is still set.  Clear
			 * it so later publishes do not post to nobody (we are the
			 * only one who sets it, so this cannot undo a newer arm).
			 * The caller re-checks the ring and re-arms if it waits
			 * again. */
			disarm(db);
			return 0;
		}
		if (errno == EINTR)
			continue; /* same absolute deadline: a signal never shortens it */
		int err = errno;
		if (err == ETIMEDOUT && until != deadline_ns) {
			/* The backstop.  The bell stays armed: a post from now on
			 * still wakes us. */
			if (takt_heavy_barrier() == 0)
				barrier_done = true;
			else
				backstop = takt_now_ns() + TAKT_PARK_BACKSTOP_NS;
			if (ready(arg)) {
				disarm(db);
				return 0;
			}
			continue;
		}
		disarm(db);
		if (err == ETIMEDOUT)
			return ready(arg) ? 0 : -ETIMEDOUT;
		return -err;
	}
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

bool takt_spin_until(bool (*ready)(void *), void *arg, uint32_t spin_ns, uint64_t deadline_ns)
{
	if (spin_ns == 0)
		return ready(arg);
	uint64_t start = takt_now_ns();
	uint64_t stop = start + spin_ns;
	if (stop > deadline_ns)
		stop = deadline_ns;
	for (;;) {
		/* read the clock every 64 polls: it costs more than a poll */
		for (int i = 0; i < 64; i++) {
			if (ready(arg))
				return true;
			cpu_relax();
		}
		if (takt_now_ns() >= stop)
			return ready(arg);
	}
}
