/* SPDX-License-Identifier: MIT */
/*
 * doorbell.pml - a Promela model of takt's doorbell protocol (src/doorbell.c,
 * src/internal.h; docs/WAITING.md explains it), checked with spin by
 * scripts/model-check.sh.
 *
 * One lane of capacity CAP carries N records from a producer to a consumer.
 * Both sides wait the way the library does: the consumer on the receive
 * doorbell (rx) when the ring is empty, the producer on the lane's space
 * doorbell (tx) when it is full.  Positions are counts of records.
 *
 * Memory model: x86-TSO, as far as it matters here.  Each process's
 * publication store (the producer's commit word / tail, the consumer's head)
 * goes into that process's store buffer and reaches memory only when the
 * buffer is flushed: at any moment (the flusher process), by a fence
 * (mfence drains the buffer) or by a locked read-modify-write (fetch_or,
 * fetch_and, exchange: they drain it too and act on memory at once).  Loads
 * read memory; the only loads of a location a process itself stores through
 * its buffer are of its own private counters, so store forwarding never
 * matters.  A single buffer slot per process is enough: each buffers one
 * location, and a newer store to it may replace the buffered one (the
 * flusher can always flush first, so no behaviour is lost).
 *
 * The waiter (doorbell.c, takt_doorbell_wait):
 *   drain stale tokens (sem_trywait, bounded); fetch_or(armed) [locked RMW];
 *   seq_cst fence; re-check the ring: ready -> fetch_and(~armed), return;
 *   else sem_clockwait; when it returns (woken) -> fetch_and(~armed).
 * The waker (internal.h, takt_doorbell_ring), after its publication store:
 *   seq_cst fence; relaxed load of armed; if set: exchange(armed, 0)
 *   [locked RMW], sem_post if it was set.
 *
 * Deadlines: a real wait ends at its deadline with -ETIMEDOUT.  Here a wait
 * may end that way only when nothing else in the system can move (Promela's
 * `timeout`), and then the process asserts that it was right to wait: the
 * consumer that nothing is published beyond what it took, the producer that
 * the ring is still full.  A timeout with a record published (or room freed)
 * and nobody coming to post is a lost wake-up: the assertion fails.  Each
 * side also ends in a valid end state only after all N records passed.
 *
 * The semaphore bound: with one waker per doorbell (SPSC) a semaphore never
 * holds more than 2 tokens (asserted at every post; docs/WAITING.md).
 *
 * Variants (spin -D...):
 *   NO_FENCE       the waker skips its seq_cst fence: a plain release store
 *                  of the commit word then a relaxed load of armed.  spin
 *                  finds the lost wake-up (the store still in the buffer
 *                  when the load reads "not armed"; the waiter arms and
 *                  re-checks in between).  The script expects this to FAIL.
 *   RMW_EVERY      DESIGN.md's waker: exchange(armed, 0) on every publish
 *                  instead of fence + load.  Also correct.
 *   LIGHT_RING     the fence-free producer (internal.h,
 *                  takt_doorbell_check_light): no fence before its load of
 *                  armed; the consumer's park is cut by the backstop
 *                  (membarrier, then a re-check; doorbell.c).  Correct.
 *   LIGHT_RING + NO_BACKSTOP  the same without the backstop: spin finds
 *                  the lost wake-up.  The script expects this to FAIL.
 *   NO_WAKE_DISARM the waiter does not clear the bit after a wake-up (the
 *                  library before issue 3's fix): still no lost wake-up,
 *                  only extra posts.
 */

#ifndef N
#define N 4     /* records */
#endif
#ifndef CAP
#define CAP 2   /* ring capacity in records */
#endif
#define DRAIN 64 /* TAKT_DRAIN_MAX */
#define SEM_BOUND 2

/* memory */
byte tail_mem = 0;   /* records committed, as visible to the consumer */
byte head_mem = 0;   /* records consumed, as visible to the producer */
bit rx_armed = 0;    /* consumer's doorbell word, bit 0 */
bit tx_armed = 0;    /* lane's space doorbell word, bit 0 */
byte rx_sem = 0;     /* /takt.<name>.rx */
byte tx_sem = 0;     /* /takt.<name>.tx0 */

/* store buffers: the producer's tail store, the consumer's head store */
bool p_sb = false;
byte p_sbv = 0;
bool c_sb = false;
byte c_sbv = 0;

bool p_done = false;
bool c_done = false;

inline p_flush() { if :: p_sb -> tail_mem = p_sbv; p_sb = false :: else -> skip fi }
inline c_flush() { if :: c_sb -> head_mem = c_sbv; c_sb = false :: else -> skip fi }

/* waker side: after the publication store (in the buffer) */
#define RING(FLUSH, ARMED, SEM)                                            \
	RING_FENCE(FLUSH);                                                 \
	RING_CHECK(FLUSH, ARMED, SEM)

#ifdef NO_FENCE
#define RING_FENCE(FLUSH) skip
#else
#define RING_FENCE(FLUSH) atomic { FLUSH() }   /* seq_cst fence = mfence */
#endif

#ifdef RMW_EVERY
/* exchange on every publish: the locked RMW drains the buffer */
#define RING_CHECK(FLUSH, ARMED, SEM)                                      \
	atomic {                                                           \
		FLUSH();                                                   \
		if                                                         \
		:: ARMED -> ARMED = 0; SEM++; assert(SEM <= SEM_BOUND)     \
		:: else -> skip                                            \
		fi                                                         \
	}
#else
/* relaxed load; only if armed, the exchange, and the post if we won it */
#define RING_CHECK(FLUSH, ARMED, SEM)                                      \
	if                                                                 \
	:: ARMED ->                                                        \
		atomic {                                                   \
			FLUSH();                                           \
			won = ARMED;                                       \
			ARMED = 0                                          \
		};                                                         \
		if                                                         \
		:: won -> atomic { SEM++; assert(SEM <= SEM_BOUND) }      \
		:: else -> skip                                            \
		fi                                                         \
	:: else -> skip                                                    \
	fi
#endif

#ifdef NO_WAKE_DISARM
#define WAKE_DISARM(FLUSH, ARMED) skip
#else
#define WAKE_DISARM(FLUSH, ARMED) atomic { FLUSH(); ARMED = 0 }
#endif

/* waiter side: READY is the re-check of the ring, OK_TO_WAIT what must hold
 * if the wait runs into its deadline */
#define WAIT(BACKSTOP, FLUSH, ARMED, SEM, READY, OK_TO_WAIT)               \
	i = 0;                                                             \
	do                                                                 \
	:: atomic { i < DRAIN && SEM > 0 -> SEM--; i++ }                   \
	:: else -> break                                                   \
	od;                                                                \
	atomic { FLUSH(); ARMED = 1 };   /* fetch_or, locked */            \
	atomic { FLUSH() };              /* seq_cst fence */               \
	if                                                                 \
	:: READY -> atomic { FLUSH(); ARMED = 0 }   /* fetch_and */        \
	:: else ->                                                         \
		if                                                         \
		:: atomic { SEM > 0 -> SEM-- };  /* woken */               \
		   WAKE_DISARM(FLUSH, ARMED)                               \
		:: timeout -> assert(OK_TO_WAIT)  /* deadline: lost? */    \
		BACKSTOP(FLUSH, ARMED, SEM, READY, OK_TO_WAIT)             \
		fi                                                         \
	fi

/* The consumer's backstop for fence-free producers (LIGHT_RING): its park
 * may be cut at any moment (the backstop period can expire anywhere in the
 * interleaving); then membarrier -- a barrier on every CPU, which drains
 * every store buffer -- and a re-check, and a park to the deadline. */
#if defined(LIGHT_RING) && !defined(NO_BACKSTOP)
#define RX_BACKSTOP(FLUSH, ARMED, SEM, READY, OK_TO_WAIT)                  \
		:: true ->                                                 \
			atomic { p_flush(); c_flush() };  /* membarrier */ \
			if                                                 \
			:: READY -> atomic { FLUSH(); ARMED = 0 }          \
			:: else ->                                         \
				if                                         \
				:: atomic { SEM > 0 -> SEM-- };            \
				   WAKE_DISARM(FLUSH, ARMED)               \
				:: timeout -> assert(OK_TO_WAIT)           \
				fi                                         \
			fi
#else
#define RX_BACKSTOP(FLUSH, ARMED, SEM, READY, OK_TO_WAIT)
#endif
#define NO_BACKSTOP_HERE(FLUSH, ARMED, SEM, READY, OK_TO_WAIT)

active proctype producer()
{
	byte sent = 0;
	byte i;
	bit won;
	do
	:: sent == N -> break
	:: else ->
		if
		:: sent - head_mem < CAP ->
			/* write the record, release-store its commit word */
			sent++;
			atomic { p_sb = true; p_sbv = sent };
#ifdef LIGHT_RING
			/* fence-free: relaxed load of armed, exchange if set */
			RING_CHECK(p_flush, rx_armed, rx_sem)
#else
			RING(p_flush, rx_armed, rx_sem)
#endif
		:: else ->
			WAIT(NO_BACKSTOP_HERE, p_flush, tx_armed, tx_sem,
			     (sent - head_mem < CAP),
			     (sent - head_mem >= CAP))
		fi
	od;
	p_done = true
}

active proctype consumer()
{
	byte taken = 0;
	byte i;
	bit won;
	do
	:: taken == N -> break
	:: else ->
		if
		:: tail_mem > taken ->
			/* copy the record out, release-store the head */
			taken++;
			atomic { c_sb = true; c_sbv = taken };
			RING(c_flush, tx_armed, tx_sem)
		:: else ->
			WAIT(RX_BACKSTOP, c_flush, rx_armed, rx_sem,
			     (tail_mem > taken),
			     (tail_mem == taken))
		fi
	od;
	c_done = true
}

/* Store buffers drain on their own, at any time. */
active proctype flusher()
{
end:
	do
	:: atomic { p_sb -> tail_mem = p_sbv; p_sb = false }
	:: atomic { c_sb -> head_mem = c_sbv; c_sb = false }
	od
}
