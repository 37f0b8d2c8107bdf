/* SPDX-License-Identifier: MIT */
/*
 * waiter.c - the threads that turn channel doorbell waits into eventfd
 * wake-ups of the loop.
 *
 * The loop thread owns every takt handle and calls only the try_* functions
 * on them.  When a consumer's ring is empty (or a producer's ring is full)
 * the loop *arms* that bridge's waiter; the waiter then blocks in
 * takt_wait_readable (takt_wait_writable) on the same handle, which the API
 * allows from one thread other than the owner.  When the ring has a record
 * (room) the waiter disarms, sets its `fired` flag and writes the server's
 * eventfd; the loop then tries the ring again and re-arms the waiter only
 * once it finds it empty (full) again.  A waiter that is not armed sleeps on
 * a futex, so it never spins on a ring the loop has not drained yet.
 *
 * Waiters do not spin (their handles' spin budget is 0): after activity
 * the loop itself polls the rings and its event source for --spin-us and
 * arms the waiters only when it is about to sleep, so a request/response
 * client is served without any thread hand-off, and on a small machine no
 * second spinner competes with the peers for a CPU.  There are no
 * deadlines: stopping sets `stop`, wakes the futex and calls
 * takt_*_interrupt, which ends the wait in progress with -EINTR.  An idle
 * taktd therefore has no periodic wake-up at all.
 */
#include <errno.h>
#include <linux/futex.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "server.h"

static void futex_wait(_Atomic uint32_t *word, uint32_t val)
{
	syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
}

static void futex_wake(_Atomic uint32_t *word)
{
	syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

/* Wait until the loop arms us or asks us to stop. */
static void wait_armed(struct waiter *w)
{
	while (!atomic_load(&w->arm) && !atomic_load(&w->stop)) {
		/* seq_cst store then load, mirrored by waiter_arm: either we
		 * see the arming or the loop sees us asleep and wakes us. */
		atomic_store(&w->sleeping, 1);
		if (!atomic_load(&w->arm) && !atomic_load(&w->stop))
			futex_wait(&w->arm, 0);
		atomic_store(&w->sleeping, 0);
	}
}

static void *waiter_main(void *arg)
{
	struct waiter *w = arg;
	unsigned errors = 0;
	for (;;) {
		wait_armed(w);
		if (atomic_load(&w->stop))
			break;
		int r;
		if (w->kind == W_CONSUMER)
			r = takt_wait_readable(w->cons, TAKT_FOREVER);
		else
			r = takt_wait_writable(w->prod, atomic_load(&w->want_len), TAKT_FOREVER);
		if (r == -EINTR)
			continue; /* stop, or a stale interrupt: look again */
		if (r < 0) {
			/* The semaphore failed: let the loop try the ring (it
			 * reports real errors); slow down a persistent failure. */
			if (++errors > 3) {
				LOGW("waiter: %s; retrying", takt_strerror(r));
				usleep(100000);
			}
		} else {
			errors = 0;
		}
		atomic_store(&w->arm, 0);
		atomic_store(&w->fired, 1);
		uint64_t one = 1;
		ssize_t n = write(w->efd, &one, sizeof(one));
		(void)n; /* EAGAIN: the counter is already non-zero */
	}
	return NULL;
}

int waiter_start(struct waiter *w)
{
	atomic_store(&w->stop, 0);
	atomic_store(&w->arm, 0);
	atomic_store(&w->fired, 0);
	atomic_store(&w->sleeping, 0);
	int rc = pthread_create(&w->th, NULL, waiter_main, w);
	if (rc)
		return -rc;
	w->running = true;
	return 0;
}

void waiter_arm(struct waiter *w, uint32_t want_len)
{
	atomic_store(&w->want_len, want_len);
	atomic_store(&w->arm, 1);
	if (atomic_load(&w->sleeping))
		futex_wake(&w->arm);
}

void waiter_stop(struct waiter *w)
{
	if (!w->running)
		return;
	atomic_store(&w->stop, 1);
	/* The thread sleeps on `arm`, and FUTEX_WAIT sleeps only while the
	 * word still holds 0: a wake-up without changing the word is lost if
	 * the thread has checked `stop` but not yet entered the kernel (then
	 * pthread_join below never returns).  Set the word, then wake; the
	 * thread, seeing arm set, checks `stop` before it waits on the ring. */
	atomic_store(&w->arm, 1);
	futex_wake(&w->arm);
	if (w->kind == W_CONSUMER)
		takt_consumer_interrupt(w->cons);
	else
		takt_producer_interrupt(w->prod);
	pthread_join(w->th, NULL);
	w->running = false;
	atomic_store(&w->fired, 0);
}

bool waiter_take_fired(struct waiter *w)
{
	return atomic_load_explicit(&w->fired, memory_order_relaxed) &&
	       atomic_exchange(&w->fired, 0);
}
