/* SPDX-License-Identifier: MIT */
/*
 * internal.h - libtakt's private types: the per-process state behind the
 * public handles.  Nothing here is shared memory (that is layout.h); these
 * structs live in the process's own heap and hold the validated copy of the
 * geometry that the hot path uses instead of re-reading the segment.
 */
#ifndef TAKT_INTERNAL_H
#define TAKT_INTERNAL_H

#include <semaphore.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "takt.h"
#include "layout.h"

/* The coherence unit the hot path plans around (x86-64, arm64). */
#define TAKT_CACHE_LINE 64u

#define TAKT_LIKELY(x) __builtin_expect(!!(x), 1)
#define TAKT_UNLIKELY(x) __builtin_expect(!!(x), 0)

/* Length of "/takt." + name + ".tx63" + NUL, with room to spare. */
#define TAKT_OBJ_NAME_MAX (TAKT_NAME_MAX + 32)

/* The geometry of a validated segment, in private memory. */
struct takt_geometry {
	uint64_t capacity;
	uint64_t mask;
	uint64_t total_size;
	uint64_t created_ns;
	uint64_t nonce;
	uint32_t kind;
	uint32_t lanes;
	uint32_t max_record;
	uint32_t layout_minor;
};

struct takt_channel {
	char name[TAKT_NAME_MAX + 1];
	int fd;
	unsigned flags;            /* TAKT_OPEN_* */
	uint8_t *base;             /* this process's mapping of the segment */
	uint64_t map_size;
	struct takt_geometry geo;
	struct takt_seg_consumer *consumer;
	/* endpoint slots this mapping holds (bit k = OFD slot byte k); atomic so
	 * that two threads attaching to one mapping cannot both win a slot */
	_Atomic uint64_t held_lo;  /* slots 0..63 */
	_Atomic uint64_t held_hi;  /* slots 64..127 */
	_Atomic uint32_t attached; /* endpoints using this mapping */
};

/* ---- name.c ---- */
int takt_name_check(const char *name);
/* "/takt.<name><suffix>" into out (TAKT_OBJ_NAME_MAX bytes). */
void takt_obj_name(char *out, const char *name, const char *suffix);
void takt_rx_sem_name(char *out, const char *name);
void takt_tx_sem_name(char *out, const char *name, unsigned lane);

/* ---- segment.c ---- */
#define TAKT_SHM_DIR "/dev/shm"
/* A creator opens its segment (size 0) before it takes the creator lock:
 * for this long after the file's last change, a size-0 segment counts as
 * being created, not as stale. */
#define TAKT_CREATE_GRACE_NS (10ull * 1000000000ull)
/* Open the segment file object (TAKT_OBJ_NAME_MAX name) without blocking:
 * anything but a regular file (a FIFO, a socket, a symlink) is -EBADMSG,
 * never a hang.  st receives its fstat.  fd or negative errno. */
int takt_segment_open_file(const char *obj, int oflags, mode_t mode, struct stat *st);
/* Is the file a segment being created (size 0, changed within the grace)? */
bool takt_segment_maybe_creating(const struct stat *st);
/* Is the name obj still the file whose fstat is ours?  0 yes, -ESTALE
 * another file now, other -errno (-ENOENT: removed). */
int takt_segment_name_is(const char *obj, const struct stat *ours);
/* shm_unlink obj only if the name is still the file open on fd (a stale
 * name may have been removed and created anew meanwhile).  0 or -errno;
 * -ESTALE when the name is another file now. */
int takt_segment_unlink_if_same(int fd, const char *obj);
void takt_sems_unlink(const char *name, unsigned lanes);
int takt_segment_map(const char *name, unsigned flags, struct takt_channel *ch);
void takt_segment_unmap(struct takt_channel *ch);
int takt_geometry_check(const struct takt_seg_header *hdr, uint64_t file_size,
			struct takt_geometry *out);
static inline struct takt_seg_lane *takt_lane_ctrl(const struct takt_channel *ch, unsigned k)
{
	return (struct takt_seg_lane *)(ch->base + TAKT_LANES_OFFSET +
					(uint64_t)k * takt_lane_stride(ch->geo.capacity));
}
static inline uint8_t *takt_lane_data(const struct takt_channel *ch, unsigned k)
{
	return (uint8_t *)takt_lane_ctrl(ch, k) + TAKT_LANE_DATA_OFFSET;
}

/* ---- slot.c: endpoint slots held by OFD locks ---- */
int takt_slot_acquire(struct takt_channel *ch, unsigned slot);
void takt_slot_release(struct takt_channel *ch, unsigned slot);
/* 1 if a live process holds the slot, 0 if free, negative errno on error. */
int takt_slot_alive(struct takt_channel *ch, unsigned slot);
/* Lock slots [first, first+count) on a descriptor; -EBUSY if any is held. */
int takt_slot_lock_fd(int fd, unsigned first, unsigned count);
/* Process start time of the caller (clock ticks after boot), 0 if unknown. */
uint64_t takt_self_start_time(void);

/* ---- doorbell.c ---- */
struct takt_doorbell {
	takt_a32 *word;   /* in the segment: bit 0 = armed */
	sem_t *sem;       /* the named semaphore behind it */
};
int takt_sem_open(const char *sem_name, sem_t **out);
void takt_sem_close(sem_t *sem);
/* Slow half of takt_doorbell_ring(): clear the armed bit, post if it was set. */
void takt_doorbell_post(struct takt_doorbell *db);
/* ThreadSanitizer does not model fences (GCC even refuses to compile them
 * under -fsanitize=thread): TSan builds use the fence-free form of the
 * doorbell, an exchange on every publish (docs/WAITING.md). */
#if defined(__SANITIZE_THREAD__)
#define TAKT_DOORBELL_RMW 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TAKT_DOORBELL_RMW 1
#endif
#endif

/*
 * Waker side, after publishing, in two halves: takt_doorbell_check() says
 * whether a waiter armed the bell, takt_doorbell_post() wakes it.  Split so
 * that a fast path can leave the (rare) post to an out-of-line tail call.
 */
static inline bool takt_doorbell_check(struct takt_doorbell *db)
{
#ifdef TAKT_DOORBELL_RMW
	(void)db;
	return true; /* the post's exchange is the check */
#else
	/* seq_cst fence: orders our publication (the commit word or head
	 * store before this call) before the load of the armed bit.  Without
	 * it the load could be satisfied before the publication leaves our
	 * store buffer, the waiter could arm and re-check without seeing it,
	 * and we would skip the post: a lost wake-up.  Pairs with the fence
	 * in takt_doorbell_wait(). */
	atomic_thread_fence(memory_order_seq_cst);
	/* relaxed: a plain check of a line nobody writes unless parked keeps
	 * every waker's copy clean (no RMW, no line bouncing between the
	 * producers of an MPSC channel).  Only when armed do we pay the RMW. */
	return atomic_load_explicit(db->word, memory_order_relaxed) & 1u;
#endif
}

/* Both halves: posts only if the waiter armed the bell. */
static inline void takt_doorbell_ring(struct takt_doorbell *db)
{
	if (TAKT_UNLIKELY(takt_doorbell_check(db)))
		takt_doorbell_post(db);
}
/*
 * Waker side without the fence, for producers whose process registered for
 * membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED) (takt_membarrier_register):
 * the asymmetric form of the doorbell (docs/WAITING.md, "The fence-free
 * producer").  The load of the armed bit may be satisfied before our commit
 * word leaves the store buffer; a waiter that armed in that window and
 * re-checked without seeing the commit is not woken by us, but its park is
 * cut at TAKT_PARK_BACKSTOP_NS, where it issues membarrier -- a full barrier
 * on every CPU running a registered process, ours included -- and re-checks:
 * the commit is visible then.  The fence's cost (it waits for every
 * buffered store of the payload to reach the cache, one ownership miss per
 * line when the consumer has just read it) moves from every publish to the
 * rare park longer than the backstop.
 */
static inline bool takt_doorbell_check_light(struct takt_doorbell *db)
{
	/* relaxed: see above; the heavy barrier on the waiter's side supplies
	 * the store-load order the fence would have. */
	return atomic_load_explicit(db->word, memory_order_relaxed) & 1u;
}
/* Register this process for the waiters' heavy barrier.  0 if the fence-free
 * ring may be used, a negative errno (no membarrier, seccomp) if not. */
int takt_membarrier_register(void);
/* A park longer than this is cut for the heavy barrier and a re-check. */
#define TAKT_PARK_BACKSTOP_NS 2000000ull
/* Waiter side.  ready(arg) re-checks the ring; returns 0 when ready() became
 * true, -ETIMEDOUT at the deadline, or another negative errno. */
int takt_doorbell_wait(struct takt_doorbell *db, bool (*ready)(void *), void *arg,
		       uint64_t deadline_ns);
/* Spin until ready() or spin_ns elapsed; true if ready. */
bool takt_spin_until(bool (*ready)(void *), void *arg, uint32_t spin_ns, uint64_t deadline_ns);

/* ---- clock.c ---- */
uint64_t takt_coarse_ns(void);

#endif /* TAKT_INTERNAL_H */
