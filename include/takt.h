/* SPDX-License-Identifier: MIT */
/*
 * takt.h - the one public header of libtakt.
 *
 * Lock-free shared-memory channels between the processes of cyclic tasks.
 * A queue channel carries variable-length records from its producers (one
 * per lane; one lane = SPSC, N lanes = MPSC) to one consumer, in FIFO order
 * per producer.  The try_* calls, reserve/commit and peek/release are the hot
 * path: no system call, no lock, no allocation, never blocking.  The blocking
 * calls take an absolute CLOCK_MONOTONIC deadline.
 *
 * Conventions (as liburing): every function returning int returns 0 or a
 * non-negative count on success and a negative errno value on failure.  The
 * errors each call can return are listed beside it; takt_strerror() explains
 * them in takt's terms.  Handles are not thread-safe: use one handle per
 * thread, or serialise.  Handles are not inherited across fork(): open them
 * in the process that uses them.
 *
 * Compiles as C11 and as C++.
 */
#ifndef TAKT_H
#define TAKT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define TAKT_API __attribute__((visibility("default")))
#else
#define TAKT_API
#endif

#define TAKT_VERSION_MAJOR 0
#define TAKT_VERSION_MINOR 1
#define TAKT_VERSION_PATCH 0

/* ---- Limits ------------------------------------------------------------ */

/** Channel names: 1..TAKT_NAME_MAX characters from [A-Za-z0-9._-]. */
#define TAKT_NAME_MAX 200
/** Producer lanes per queue channel (1 = SPSC). */
#define TAKT_LANES_MAX 64
/** Data bytes per lane: a power of two in [TAKT_CAPACITY_MIN, TAKT_CAPACITY_MAX]. */
#define TAKT_CAPACITY_MIN 1024u
#define TAKT_CAPACITY_MAX (1ull << 30)
/** Bytes each record occupies in a lane beyond its payload (before 8-byte alignment). */
#define TAKT_RECORD_OVERHEAD 16u
/** Record type values at or above this are reserved for takt itself. */
#define TAKT_TYPE_RESERVED 0xffff0000u

/* ---- Deadlines ------------------------------------------------------- */

/** Deadline for "try once, never wait". */
#define TAKT_NO_WAIT ((uint64_t)0)
/** Deadline for "wait without limit". */
#define TAKT_FOREVER UINT64_MAX

/** Current CLOCK_MONOTONIC time in nanoseconds. */
TAKT_API uint64_t takt_now_ns(void);
/** Absolute deadline timeout_ns from now; saturates at TAKT_FOREVER. */
TAKT_API uint64_t takt_deadline_in(uint64_t timeout_ns);

/* ---- Errors ---------------------------------------------------------- */
/*
 * The negative errno values takt returns, and what they mean here:
 *   -EINVAL           bad name, bad geometry, bad argument; nothing was touched
 *   -EEXIST           create: a channel of that name exists
 *   -ENOENT           open/unlink: no such channel (or one of its semaphores is missing)
 *   -EACCES           the channel's file mode does not admit this process
 *   -ENOSPC           create: /dev/shm cannot hold the segment; nothing is left behind
 *   -EAGAIN           try_*: ring full (send) or empty (receive);
 *                     open: the channel is still being created (not ready yet)
 *   -EMSGSIZE         send: record larger than the channel's max_record;
 *                     receive: the caller's buffer is too small (record stays queued,
 *                     the needed size is reported)
 *   -EBADMSG          the segment is not a takt segment (not a regular file: a
 *                     FIFO, socket, symlink or directory under the name; or a
 *                     file whose pages were never reserved), is truncated or
 *                     inconsistent, or a lane holds corrupted positions/lengths
 *                     (the lane is then marked broken and skipped; other lanes
 *                     keep flowing)
 *   -EPROTONOSUPPORT  the segment's layout major version is not this library's
 *   -EBUSY            open: the consumer slot or every producer lane is held by a
 *                     live endpoint
 *   -ETIMEDOUT        a blocking call reached its deadline
 *   -EALREADY         commit/release without a matching reserve/peek
 *   -ENOMEM           out of process memory at open
 *   -EPROTOTYPE       a queue call on a state channel, or the reverse
 * Other negative errno values come straight from the system call that failed.
 */

/** A static description of a takt error code (negative or positive errno). */
TAKT_API const char *takt_strerror(int err);

/* ---- Records ----------------------------------------------------------- */

/**
 * One record: its payload, length and type.  Used to pass records in
 * (batch send) and to describe records handed out (receive, peek).
 */
struct takt_msg {
	const void *data; /**< payload (receive: in the caller's buffer; peek: in the segment) */
	uint32_t len;     /**< payload length in bytes */
	uint32_t type;    /**< chosen by the sender; values >= TAKT_TYPE_RESERVED are refused */
	uint32_t lane;    /**< receive: the lane (producer slot) it came from */
	uint32_t reserved_;
};

/* ---- Channels --------------------------------------------------------- */

/** Geometry and permissions of a new queue channel. */
struct takt_queue_config {
	uint64_t capacity;   /**< data bytes per lane: a power of two */
	uint32_t lanes;      /**< producer lanes: 1 = SPSC, up to TAKT_LANES_MAX */
	uint32_t max_record; /**< largest payload in bytes, 0 < max_record <= capacity / 4 */
	uint32_t mode;       /**< permission bits, set exactly (umask ignored); 0 means 0600 */
	uint32_t flags;      /**< must be 0 */
};

/**
 * Create a queue channel.  The segment /dev/shm/takt.<name> is created
 * exclusively, its memory reserved (so a full /dev/shm fails here and never
 * with SIGBUS later), and its semaphores created; on any failure nothing is
 * left behind.
 * Errors: -EINVAL, -EEXIST, -ENOSPC, -EACCES, other errno from shm_open/sem_open.
 */
TAKT_API int takt_queue_create(const char *name, const struct takt_queue_config *cfg);

/**
 * Remove a channel's name and its semaphores.  Processes that have it open
 * keep using it until they close it.  Errors: -EINVAL, -ENOENT, -EACCES.
 */
TAKT_API int takt_unlink(const char *name);

/**
 * A mapping of one channel.  Endpoints (producers, consumers) can attach to
 * one shared mapping, or open their own with takt_producer_open() and
 * takt_consumer_open().  A read-only mapping serves inspection (stats,
 * liveness) and takes no endpoint slot.
 */
typedef struct takt_channel takt_channel;

enum takt_open_flags {
	TAKT_OPEN_RDONLY = 1u << 0, /**< inspection only: no endpoint can attach */
	/**
	 * Producers attached through this mapping publish with the fenced
	 * doorbell and do not register the process for membarrier (by default
	 * a producer skips that fence and relies on the waiters' barrier, an
	 * inter-processor interrupt to the CPUs running registered processes
	 * when a waiter has been parked 2 ms: docs/WAITING.md).  For a cyclic
	 * task that must not take such an interrupt; registration is per
	 * process, so every producer of the process must be attached this way.
	 */
	TAKT_OPEN_FENCED = 1u << 1,
};

/**
 * Map a channel and validate its header (magic, version, every size against
 * every other and against the file).  The geometry is copied into private
 * memory and never read from the segment again.
 * Errors: -EINVAL, -ENOENT, -EACCES, -EAGAIN (not ready), -EBADMSG, -EPROTONOSUPPORT, -ENOMEM.
 */
TAKT_API int takt_channel_open(const char *name, unsigned flags, takt_channel **out);
/** Unmap.  Endpoints attached to it must be closed first; returns -EBUSY otherwise. */
TAKT_API int takt_channel_close(takt_channel *ch);

/** What a channel carries (struct takt_channel_config.kind). */
enum takt_channel_kind {
	TAKT_CHANNEL_QUEUE = 1, /**< records, FIFO per producer */
	TAKT_CHANNEL_STATE = 2, /**< the newest value of a fixed-size image */
};

/** Immutable facts about a channel, from the validated private copy. */
struct takt_channel_config {
	uint64_t capacity;
	uint64_t total_size;  /**< bytes of the segment */
	uint64_t created_ns;  /**< CLOCK_REALTIME at creation */
	uint64_t nonce;       /**< random, new each time the name is created */
	uint32_t kind;        /**< enum takt_channel_kind */
	uint32_t lanes;
	uint32_t max_record;
	uint32_t layout_major;
	uint32_t layout_minor;
	uint32_t reserved_;
};
TAKT_API int takt_channel_config_get(const takt_channel *ch, struct takt_channel_config *out);

/* ---- Producers --------------------------------------------------------- */

typedef struct takt_producer takt_producer;

/**
 * Open a channel as a producer: take the first free lane (a lane whose
 * producer died is free, and the new producer continues at its tail).  A
 * free lane whose positions are found corrupted is marked broken and
 * passed over for the next free one.
 * Errors: as takt_channel_open, -EBUSY when every lane has a live producer,
 * -EBADMSG when every free lane is corrupted.
 */
TAKT_API int takt_producer_open(const char *name, takt_producer **out);
/** Attach a producer to an open (read-write) mapping. */
TAKT_API int takt_producer_attach(takt_channel *ch, takt_producer **out);
/** Release the lane and free the handle (and the mapping if it opened its own). */
TAKT_API void takt_producer_close(takt_producer *p);
/** The lane this producer owns. */
TAKT_API unsigned takt_producer_lane(const takt_producer *p);
/** The channel mapping this producer uses (for stats and liveness). */
TAKT_API takt_channel *takt_producer_channel(takt_producer *p);

/**
 * Copy one record into the ring and publish it.  Never blocks.
 * Returns 0; -EAGAIN if the ring is full; -EMSGSIZE if len > max_record;
 * -EINVAL for a reserved type; -EBADMSG if the lane is broken.
 * "Full" counts space the consumer has received but not yet released: it
 * releases in steps of capacity / 8, at once when it finds its lane empty
 * or a producer waiting, and at close (docs/FORMAT.md).  The blocking
 * takt_send takes that space before it parks: it never waits for it.
 */
TAKT_API int takt_try_send(takt_producer *p, uint32_t type, const void *data, size_t len);

/**
 * Publish as many of n records as fit, in order, all at once (the consumer
 * sees none of them before it can see all of them).  Returns the number
 * published (>= 1), or -EAGAIN if not even the first fits, or an error of
 * takt_try_send for the first record.  A later record that is too large or
 * has a reserved type ends the batch before it.
 */
TAKT_API int takt_try_send_batch(takt_producer *p, const struct takt_msg *msgs, unsigned n);

/**
 * Zero-copy send: reserve room for a payload of up to len bytes and return a
 * pointer to it in *data.  Nothing is visible to the consumer until
 * takt_commit().  A new reserve replaces an uncommitted one.
 * Returns 0, -EAGAIN (full), -EMSGSIZE, -EBADMSG.
 */
TAKT_API int takt_reserve(takt_producer *p, size_t len, void **data);
/**
 * Publish the reserved record with its final length (<= the reserved length)
 * and type.  Returns 0, -EALREADY (nothing reserved), -EMSGSIZE, -EINVAL.
 */
TAKT_API int takt_commit(takt_producer *p, uint32_t type, size_t len);

/* ---- Consumers --------------------------------------------------------- */

typedef struct takt_consumer takt_consumer;

/**
 * Open a channel as its consumer.  A new consumer after a dead one resumes
 * at the position the dead one stored after its last record (the record it
 * was taking when it died may come again: at-least-once on a crash).
 * Errors: as takt_channel_open, and -EBUSY when a live consumer exists.
 */
TAKT_API int takt_consumer_open(const char *name, takt_consumer **out);
TAKT_API int takt_consumer_attach(takt_channel *ch, takt_consumer **out);
TAKT_API void takt_consumer_close(takt_consumer *c);
TAKT_API takt_channel *takt_consumer_channel(takt_consumer *c);

/**
 * Most records taken from one lane before the consumer moves to the next
 * (round-robin fairness across producers).  Default 16; 0 is -EINVAL.
 */
TAKT_API int takt_consumer_set_lane_burst(takt_consumer *c, unsigned records);

/**
 * Copy the next record into buf.  Never blocks.
 * Returns the payload length; -EAGAIN if every lane is empty; -EMSGSIZE if
 * cap is too small (the record stays queued, msg->len tells the size
 * needed); -EBADMSG when a lane is found corrupted (reported once for that
 * lane, which is then skipped while other lanes have data; when every lane
 * is broken, every call returns it).  msg may be NULL; when given it receives
 * data (= buf), len, type and lane.
 */
TAKT_API int takt_try_recv(takt_consumer *c, void *buf, size_t cap, struct takt_msg *msg);

/**
 * Receive up to n records into buf, laid out one after another at 8-byte
 * aligned offsets; msgs[i].data points at each.  Head positions are
 * published once for the whole batch.  Returns the number received (>= 1),
 * -EAGAIN if empty, -EMSGSIZE if not even the first record fits in cap
 * (msgs[0].len tells its size), -EBADMSG as takt_try_recv.
 */
TAKT_API int takt_try_recv_batch(takt_consumer *c, struct takt_msg *msgs, unsigned n,
				 void *buf, size_t cap);

/**
 * Zero-copy receive: describe the next record without consuming it;
 * msg->data points into the segment and stays valid until takt_release().
 * The producer cannot reuse that memory before the release, but a hostile
 * peer could write it: copy what you must trust.
 * Returns the payload length, -EAGAIN, -EBADMSG.  Peeking again without a
 * release returns the same record.
 */
TAKT_API int takt_peek(takt_consumer *c, struct takt_msg *msg);
/** Consume the peeked record.  Returns 0 or -EALREADY (nothing peeked). */
TAKT_API int takt_release(takt_consumer *c);

/* ---- Blocking calls ----------------------------------------------------- */
/*
 * Each blocking call spins for the handle's spin budget, then parks on the
 * channel's named semaphore until the absolute CLOCK_MONOTONIC deadline
 * (TAKT_NO_WAIT: try once; TAKT_FOREVER: no limit).  A signal does not end
 * the wait early (takt_*_interrupt does: -EINTR).  At the deadline:
 * -ETIMEDOUT.  Nothing is posted to a
 * semaphore unless somebody is parked, so the try_* calls stay free of
 * system calls.
 */
TAKT_API int takt_send(takt_producer *p, uint32_t type, const void *data, size_t len,
		       uint64_t deadline_ns);
TAKT_API int takt_recv(takt_consumer *c, void *buf, size_t cap, struct takt_msg *msg,
		       uint64_t deadline_ns);
TAKT_API int takt_recv_batch(takt_consumer *c, struct takt_msg *msgs, unsigned n, void *buf,
			     size_t cap, uint64_t deadline_ns);
/** Blocking takt_try_send_batch: waits for room for the first record,
 *  then publishes as many as fit (returns that count). */
TAKT_API int takt_send_batch(takt_producer *p, const struct takt_msg *msgs, unsigned n,
			     uint64_t deadline_ns);

/**
 * Wait until a record is available (0), or the deadline (-ETIMEDOUT),
 * without receiving it.  Safe from one thread other than the handle's
 * owner while the owner calls the try_* functions (it reads shared state
 * only): for event loops that delegate waiting to a thread.  May return 0
 * early when the owner is mid-batch; try, then wait again.  A lane this
 * consumer skips as corrupted has nothing to wait for; the segment's
 * `broken` flag alone (display, set by anyone) wakes nobody.
 */
TAKT_API int takt_wait_readable(takt_consumer *c, uint64_t deadline_ns);
/**
 * Wait until a record of len bytes fits in the producer's lane; same rules.
 * Space the consumer has received but not released (see takt_try_send)
 * counts, and the owner's next takt_try_send takes it.
 */
TAKT_API int takt_wait_writable(takt_producer *p, size_t len, uint64_t deadline_ns);
/**
 * Ask the blocking call in progress on this handle (from another thread),
 * or else the next one, to return -EINTR.  Signals never do that; this does.
 */
TAKT_API void takt_consumer_interrupt(takt_consumer *c);
TAKT_API void takt_producer_interrupt(takt_producer *p);

/** Spin budget before parking, in ns (default 20000; 0 parks at once). */
TAKT_API void takt_producer_set_spin_ns(takt_producer *p, uint32_t spin_ns);
TAKT_API void takt_consumer_set_spin_ns(takt_consumer *c, uint32_t spin_ns);

/* ---- Statistics and liveness ------------------------------------------ */

/** One lane as seen from any process (all counters since creation). */
struct takt_lane_stats {
	uint64_t head;             /**< consumer's position: every record before it received (bytes) */
	uint64_t tail;             /**< producer's published position (bytes) */
	uint64_t records_sent;
	uint64_t bytes_sent;       /**< payload bytes */
	uint64_t full_events;      /**< sends refused because the ring was full */
	uint64_t records_received;
	uint64_t bytes_received;
	uint64_t producer_last_ns; /**< CLOCK_MONOTONIC of the producer's last open/send (coarse) */
	uint64_t producer_start;   /**< producer's process start time (clock ticks after boot) */
	int32_t producer_pid;      /**< last producer's pid (display only) */
	uint32_t producer_alive;   /**< 1 if a live process holds this lane */
	uint32_t broken;           /**< 1 if a consumer found this lane corrupted */
	uint32_t reserved_;
};
TAKT_API int takt_lane_stats_get(takt_channel *ch, unsigned lane, struct takt_lane_stats *out);

/** The consumer side as seen from any process. */
struct takt_consumer_stats {
	uint64_t empty_events;     /**< receives that found every lane empty */
	uint64_t last_ns;          /**< CLOCK_MONOTONIC of the consumer's last open/receive (coarse) */
	uint64_t start;            /**< consumer's process start time (clock ticks after boot) */
	int32_t pid;               /**< last consumer's pid (display only) */
	uint32_t alive;            /**< 1 if a live process holds the consumer slot */
};
TAKT_API int takt_consumer_stats_get(takt_channel *ch, struct takt_consumer_stats *out);

/* ---- State channels ------------------------------------------------------ */
/*
 * A state channel carries the latest value of a fixed-size image (a
 * process image) from one writer to one reader: a triple buffer.  Writing
 * and reading are wait-free (one atomic exchange each) and make no system
 * call; the reader always gets the newest complete image; a writer killed
 * at any instruction leaves the previous or the new image complete, never a
 * torn one.  Naming, modes, validation, liveness and recovery work as for
 * queue channels.  Queue calls on a state channel (and the reverse) return
 * -EPROTOTYPE.
 */

/** Largest state image, in bytes. */
#define TAKT_STATE_IMAGE_MAX (64u << 20)

struct takt_state_config {
	uint32_t image_size; /**< bytes of the image, 1..TAKT_STATE_IMAGE_MAX */
	uint32_t mode;       /**< permission bits, set exactly; 0 means 0600 */
	uint32_t flags;      /**< must be 0 */
	uint32_t reserved_;
};

/** Create a state channel.  Errors as takt_queue_create. */
TAKT_API int takt_state_create(const char *name, const struct takt_state_config *cfg);

typedef struct takt_state_writer takt_state_writer;
typedef struct takt_state_reader takt_state_reader;

/**
 * Open the writer or the reader of a state channel (one each; -EBUSY if a
 * live one exists).  A new writer or reader after a dead one takes over its
 * buffer; the last published image stays readable.
 */
TAKT_API int takt_state_writer_open(const char *name, takt_state_writer **out);
TAKT_API int takt_state_writer_attach(takt_channel *ch, takt_state_writer **out);
TAKT_API void takt_state_writer_close(takt_state_writer *w);
TAKT_API int takt_state_reader_open(const char *name, takt_state_reader **out);
TAKT_API int takt_state_reader_attach(takt_channel *ch, takt_state_reader **out);
TAKT_API void takt_state_reader_close(takt_state_reader *r);

/** The channel mappings the handles use (for stats and liveness). */
TAKT_API takt_channel *takt_state_writer_channel(takt_state_writer *w);
TAKT_API takt_channel *takt_state_reader_channel(takt_state_reader *r);

/** Copy len <= image_size bytes in and publish them as the newest image. */
TAKT_API int takt_state_write(takt_state_writer *w, const void *image, size_t len);
/** Zero-copy: the writer's buffer (image_size bytes) to fill before takt_state_publish(). */
TAKT_API void *takt_state_buffer(takt_state_writer *w);
/** Publish the first len bytes of the writer's buffer.  Afterwards
 *  takt_state_buffer() returns a different buffer (its contents are stale). */
TAKT_API int takt_state_publish(takt_state_writer *w, size_t len);

/** What a read returned. */
struct takt_state_info {
	uint64_t generation; /**< publish count of this image (1 = first); only increases */
	uint64_t written_ns; /**< CLOCK_MONOTONIC when it was published */
	uint64_t age_ns;     /**< now - written_ns */
	uint32_t len;        /**< image bytes */
	uint32_t fresh;      /**< 1 if newer than what the previous read returned */
};

/**
 * Copy the newest image into buf.  Returns its length; -EAGAIN if nothing
 * was ever published; -EMSGSIZE if cap is too small (info->len says what
 * is needed); -EBADMSG if the segment is corrupted.  info may be NULL.
 */
TAKT_API int takt_state_read(takt_state_reader *r, void *buf, size_t cap,
			     struct takt_state_info *info);
/**
 * Zero-copy: point *image at the newest image, in the segment; it stays
 * unchanged until the next read or peek by this reader.
 */
TAKT_API int takt_state_peek(takt_state_reader *r, const void **image,
			     struct takt_state_info *info);
/**
 * Wait until an image newer than the last one read is published, or the
 * deadline: 0 or -ETIMEDOUT (spin, then park on the channel's .rx semaphore).
 */
TAKT_API int takt_state_wait_newer(takt_state_reader *r, uint64_t deadline_ns);

/**
 * Copy the newest published image without being the reader: for monitors
 * (any mapping, read-only included).  The copy is taken optimistically and
 * kept only if the image did not change under it; after 8 changed attempts
 * (a writer publishing faster than we copy) -EAGAIN.  Returns the length,
 * -EAGAIN also when nothing was published, -EMSGSIZE, -EBADMSG.
 */
TAKT_API int takt_state_snapshot(takt_channel *ch, void *buf, size_t cap,
				 struct takt_state_info *info);

/** Spin budget of takt_state_wait_newer before it parks, in ns (default 20000). */
TAKT_API void takt_state_reader_set_spin_ns(takt_state_reader *r, uint32_t spin_ns);

struct takt_state_stats {
	uint64_t writes;         /**< images published */
	uint64_t reads;          /**< new images taken by readers */
	uint64_t writer_last_ns; /**< CLOCK_MONOTONIC of the last publish */
	uint64_t reader_last_ns; /**< CLOCK_MONOTONIC_COARSE of the reader's last open or new image */
	uint64_t writer_start;
	uint64_t reader_start;
	int32_t writer_pid;
	int32_t reader_pid;
	uint32_t writer_alive;
	uint32_t reader_alive;
	uint32_t image_size;
	uint32_t reserved_;
};
TAKT_API int takt_state_stats_get(takt_channel *ch, struct takt_state_stats *out);

/** A watchdog's view of a peer. */
struct takt_peer_watch {
	uint64_t age_ns;   /**< time since the peer's last update */
	uint32_t alive;    /**< its process holds its slot */
	uint32_t stale;    /**< dead, or no update for more than 2 expected periods */
};
/** The writer as its reader sees it, against the writer's expected period.
 *  Makes one fcntl() call (the liveness lock query): in a cyclic task, watch
 *  every Nth cycle rather than every cycle. */
TAKT_API int takt_state_watch_writer(takt_state_reader *r, uint64_t period_ns,
				     struct takt_peer_watch *out);

/* ---- Cyclic-task kit -------------------------------------------------- */

enum takt_cyclic_flags {
	TAKT_CYCLIC_MLOCK = 1u << 0,    /**< mlockall(MCL_CURRENT | MCL_FUTURE) */
	TAKT_CYCLIC_FIFO = 1u << 1,     /**< SCHED_FIFO at `priority` for the calling thread */
	TAKT_CYCLIC_AFFINITY = 1u << 2, /**< pin the calling thread to `cpu` */
};

struct takt_cyclic_config {
	uint32_t flags;          /**< TAKT_CYCLIC_* */
	int32_t priority;        /**< SCHED_FIFO priority (1..99) */
	int32_t cpu;             /**< CPU for TAKT_CYCLIC_AFFINITY */
	uint32_t stack_prefault; /**< bytes of stack to touch now (0: up to 256 KiB, as the
				      thread's stack allows); more than fits is -ENOSPC */
};

/** Outcome of each step: 0 done, -EPERM/-EINVAL/... refused, 1 not asked. */
struct takt_cyclic_report {
	int32_t mlock;
	int32_t fifo;
	int32_t affinity;
	int32_t stack;
};

/**
 * Prepare the calling thread and process for cyclic work: lock memory,
 * prefault the stack, set SCHED_FIFO and CPU affinity, as asked.  Channels
 * are prefaulted when their endpoints open.  Every step is attempted; the
 * report says what each did.  Returns 0 if every requested step succeeded,
 * else the first failure's negative errno.
 */
TAKT_API int takt_cyclic_prepare(const struct takt_cyclic_config *cfg,
				 struct takt_cyclic_report *report);

/**
 * Liveness comes from the kernel: each endpoint holds an OFD lock on its
 * slot for its life, released whatever way its process ends.
 * takt_consumer_alive: 1 if a live consumer holds the channel, else 0.
 * takt_producers_alive: the number of lanes with a live producer; bit k of
 * *mask (may be NULL) is set for each.
 */
TAKT_API int takt_consumer_alive(takt_channel *ch);
TAKT_API int takt_producers_alive(takt_channel *ch, uint64_t *mask);
/** 1 if no live endpoint holds the channel (nobody will use it again), else 0. */
TAKT_API int takt_channel_is_stale(takt_channel *ch);

/**
 * Remove a channel (and its semaphores) only if it is stale: no live
 * endpoint and no creation in progress (the creator's lock, or an empty
 * segment changed less than 10 s ago: a creator opens the name before it
 * locks).  While it checks, no endpoint can attach, so a live channel is
 * never removed; the semaphores go first and the name last, so a channel
 * created anew under the name never loses its semaphores to the removal.
 * Returns 0, -EBUSY (a live endpoint or a creation in progress), -ENOENT,
 * -EINVAL, -EACCES, -EBADMSG (not a regular file: left alone).
 */
TAKT_API int takt_unlink_stale(const char *name);

/**
 * Remove named semaphores of takt channels whose segment no longer exists
 * (left by a crash during removal or creation).  cb (may be NULL) is told
 * each removed semaphore's name.  While it removes one, it holds the
 * channel's name with an empty, creator-locked placeholder segment, so a
 * create of that name cannot slip in between the check and the removal
 * (such a create gets -EEXIST, as with any creation in progress).
 * Returns the number removed or a negative errno.
 */
TAKT_API int takt_unlink_orphan_semaphores(int (*cb)(const char *sem_name, void *arg), void *arg);

/**
 * Call cb(name, arg) for every takt channel in /dev/shm (any state, even
 * unreadable ones).  Stops early when cb returns non-zero.  Returns the
 * number of channels visited, or cb's negative return, or a negative errno.
 */
TAKT_API int takt_list(int (*cb)(const char *name, void *arg), void *arg);

#ifdef __cplusplus
}
#endif
#endif /* TAKT_H */
