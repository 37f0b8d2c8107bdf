/* SPDX-License-Identifier: MIT */
/*
 * lane.h - the single-producer/single-consumer ring over one lane, and its
 * memory-order rules.  Inline: this is the hot path of every send and
 * receive, and a call into another object file costs more than the work.
 *
 * THE PROTOCOL (docs/FORMAT.md has the byte layout)
 *
 * Positions are free-running 64-bit byte counts; index = position & mask,
 * the mask coming from private memory.  A record at position p is a 16-byte
 * header {commit, len, type} and its payload padded to 8 bytes.
 *
 * Producer, for a record of payload L at its tail p (next = p + 16 + pad8(L)):
 *   1. if the record would not fit before the end of the data area, a
 *      padding record at p fills the rest and the record goes to the start;
 *   2. room: next + HEADROOM - head <= capacity, by the cached head first,
 *      then by an acquire load of the consumer's released head (and, before
 *      a blocking send parks, of its position: lane.c);
 *   3. write payload, len and type;
 *   4. store 0 into the commit word at `next`;
 *   5. store the tail (bookkeeping; nobody polls it);
 *   6. release-store the commit word at p: p | COMMIT (| PADDING).
 * Steps 3-5 in any order before 6.  takt_try_send and takt_commit do 4
 * first, and takt_try_send stores the payload from its end down, so every
 * line of the record is written once, last line first (see
 * takt_lane_rx_touch_next for why).
 * Several records (a batch, or padding + record) are written the same way,
 * every commit word but the first stored as it is written and the first
 * stored last with release: the consumer reads in order, so that one
 * release publishes them all.
 *
 * Consumer, at its head h: acquire-load the commit word at h.  h | COMMIT:
 * read len and type once, validate them, copy the payload out, advance, and
 * store the new position (`consumed`, every record); release the head (the
 * `head` the producer reads) in steps (takt_lane_rx_owes_release).
 * h | COMMIT | PADDING: skip to the start of the data area.  Anything else:
 * nothing committed yet.
 *
 * WHY IT IS SAFE
 *  - A stale header from an earlier lap holds an older position: it never
 *    matches.  Zeroed memory never matches (bit 0 clear).
 *  - Stale *payload* bytes could hold the value h | COMMIT exactly where the
 *    next header will start.  Step 4 rules that out: the word at the
 *    producer's tail is always one the producer zeroed before it committed
 *    the record that ends there, hence the 8 bytes of headroom.
 *  - A producer that dies at any instruction leaves either a committed
 *    record or an uncommitted one that is never delivered; a new producer
 *    finds the true tail by walking committed records from the consumer's
 *    position (takt_lane_recover_tail, bounded by the capacity).
 *  - Every value read from the segment (commit, len, head, consumed) is read once
 *    into a local and validated before use; a violation marks the lane
 *    broken and returns -EBADMSG.  A matching commit word in the last 8
 *    bytes of the data area (where only padding fits) is a violation too,
 *    checked before len is read: len would lie past the data area, in the
 *    last lane possibly past the mapping.  No value from the segment can make us
 *    touch memory outside the lane's data area or loop without bound.
 *
 * MEMORY ORDERS (each one, and what it orders)
 *  - commit store, release (producer step 6): the payload, len, type, the
 *    zeroed next commit word and the batch's other commit words become
 *    visible no later than the commit word itself.
 *  - commit load, acquire (consumer): pairs with the above; our reads of
 *    len, type and payload see what the producer wrote.
 *  - head and consumed stores, release (consumer): our reads of the
 *    consumed payload happen before the producer, seeing either, overwrites
 *    it.
 *  - head load, acquire (producer; consumed too, before parking): pairs
 *    with the above; our overwrite of freed space cannot be hoisted above
 *    the load that freed it.
 *  - everything else (len, type, tail, counters, the zeroing store) is
 *    relaxed: ordered by the release/acquire pairs above or only statistics.
 *  - doorbells (internal.h, doorbell.c) add one seq_cst fence per publish.
 */
#ifndef TAKT_LANE_H
#define TAKT_LANE_H

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "fault.h"
#include "internal.h"

static inline uint64_t takt_rec_size(uint64_t len)
{
	return TAKT_REC_HEADER + ((len + (TAKT_REC_ALIGN - 1)) & ~(uint64_t)(TAKT_REC_ALIGN - 1));
}

static inline struct takt_rec_header *takt_rec_at(uint8_t *data, uint64_t mask, uint64_t pos)
{
	return (struct takt_rec_header *)(data + (pos & mask));
}

/*
 * Copy a payload.  Most records are short, and for them a few inline
 * moves, the last ones overlapping, beat a call into libc: a 64-byte
 * payload is four 16-byte loads and four stores, and no length up to
 * TAKT_COPY_INLINE_MAX makes a call (so the fast paths that use it need no
 * saved registers).  Every load happens before any store, so it would even
 * be right for overlapping buffers; it never touches a byte outside
 * [0, len) of either side.  The stores go from the end of the payload
 * down, so that a record written into the ring finishes each cache line
 * before it starts the one below: the consumer may pull a line it is about
 * to read (takt_lane_rx_touch_next) and the producer should not need that
 * line back.
 */
#define TAKT_COPY_INLINE_MAX 64u

static inline void takt_copy_small(void *dst, const void *src, size_t len)
{
	unsigned char *d = dst;
	const unsigned char *s = src;
	if (len >= 16) {
		unsigned char a[16], b[16], c[16], e[16];
		__builtin_memcpy(a, s, 16);
		__builtin_memcpy(e, s + len - 16, 16);
		if (len > 32) {
			__builtin_memcpy(b, s + 16, 16);
			__builtin_memcpy(c, s + len - 32, 16);
			/* every load done; stores from the end down: see above */
			__builtin_memcpy(d + len - 16, e, 16);
			__builtin_memcpy(d + len - 32, c, 16);
			__builtin_memcpy(d + 16, b, 16);
			__builtin_memcpy(d, a, 16);
			return;
		}
		__builtin_memcpy(d + len - 16, e, 16);
		__builtin_memcpy(d, a, 16);
		return;
	}
	if (len >= 8) {
		uint64_t a, e;
		__builtin_memcpy(&a, s, 8);
		__builtin_memcpy(&e, s + len - 8, 8);
		__builtin_memcpy(d + len - 8, &e, 8);
		__builtin_memcpy(d, &a, 8);
		return;
	}
	if (len >= 4) {
		uint32_t a, e;
		__builtin_memcpy(&a, s, 4);
		__builtin_memcpy(&e, s + len - 4, 4);
		__builtin_memcpy(d + len - 4, &e, 4);
		__builtin_memcpy(d, &a, 4);
		return;
	}
	if (len) {
		/* 1..3 bytes: first, middle and last (some the same byte) */
		unsigned char a = s[0], m = s[len / 2], e = s[len - 1];
		d[len - 1] = e;
		d[len / 2] = m;
		d[0] = a;
	}
}

static inline void takt_copy(void *dst, const void *src, size_t len)
{
	if (len <= TAKT_COPY_INLINE_MAX)
		takt_copy_small(dst, src, len);
	else
		memcpy(dst, src, len);
}

/* ---- Producer side ----------------------------------------------------- */

struct takt_lane_tx {
	uint8_t *data;               /* this lane's data area in our mapping */
	struct takt_seg_lane *ctrl;  /* this lane's control blocks */
	uint64_t capacity;           /* private copies of the geometry */
	uint64_t mask;
	uint32_t max_record;
	bool broken;
	/* broken, for takt_wait_writable's thread: the segment's `broken` flag
	 * is display (anyone may set it, and it stays set), so the shared
	 * check asks the owner's verdict instead.  Relaxed: a hint that only
	 * decides whether the waiter wakes the owner to report -EBADMSG. */
	_Atomic bool broken_shared;
	uint64_t tail;               /* the truth: next position to write */
	uint64_t head_cache;         /* room ends here + capacity: the consumer's head or position as last seen */
	uint64_t released_seen;      /* the released head as last read and validated */
	uint64_t consumed_seen;      /* the consumer's position as last claimed */
	_Atomic uint32_t claim_wanted; /* set by takt_wait_writable's thread: claim the position */
	uint64_t records;            /* private mirrors of our counters: stored, */
	uint64_t bytes;              /* never read back from the segment */
	uint64_t full_events;
};

int takt_lane_tx_refresh(struct takt_lane_tx *tx, uint64_t end);
int takt_lane_tx_claim_consumed(struct takt_lane_tx *tx, uint64_t end);
void takt_lane_tx_mark_broken(struct takt_lane_tx *tx);
/* Find the true tail of a lane whose previous producer may have died. */
int takt_lane_recover_tail(struct takt_lane_tx *tx);

/*
 * Room for everything up to `end` (plus the headroom), without a call:
 * 0 by the cached head; -EAGAIN when not, and the published head has not
 * moved since it was validated -- "still full", the answer a sender
 * spinning on a full ring gets again and again, in a few instructions
 * (docs/BENCHMARKS.md); 1 when the head moved: takt_lane_tx_refresh must
 * read it afresh and validate it (the value read here is only compared).
 */
/* Does everything up to `end`, plus the headroom, fit before `base` +
 * capacity?  `base` is a head or position the consumer has freed up to. */
static inline bool takt_lane_tx_fits(const struct takt_lane_tx *tx, uint64_t end, uint64_t base)
{
	return end + TAKT_HEADROOM - base <= tx->capacity;
}

static inline int takt_lane_tx_room_cached(struct takt_lane_tx *tx, uint64_t end)
{
	if (TAKT_LIKELY(takt_lane_tx_fits(tx, end, tx->head_cache)))
		return 0;
	/* acquire: as in takt_lane_tx_refresh (pairs with the consumer's
	 * release of head). */
	uint64_t head = atomic_load_explicit(&tx->ctrl->head, memory_order_acquire);
	/* relaxed: a request from a thread of ours; the claim acquires */
	if (TAKT_LIKELY(head == tx->released_seen) &&
	    TAKT_LIKELY(!atomic_load_explicit(&tx->claim_wanted, memory_order_relaxed)))
		return -EAGAIN;
	return 1;
}

/* Is there room for everything up to `end` (plus the headroom)? */
static inline int takt_lane_tx_room(struct takt_lane_tx *tx, uint64_t end)
{
	int room = takt_lane_tx_room_cached(tx, end);
	if (TAKT_LIKELY(room <= 0))
		return room;
	return takt_lane_tx_refresh(tx, end);
}

/* Does a record of `rec` bytes starting at `from` fit before the end of
 * the data area? */
static inline bool takt_lane_fits_before_end(const struct takt_lane_tx *tx, uint64_t from,
					     uint64_t rec)
{
	return (from & tx->mask) + rec <= tx->capacity;
}

/* Where a record of `rec` bytes starting at `from` goes: the padding bytes
 * needed before it (0 if it fits before the end of the data area). */
static inline uint64_t takt_lane_pad_before(const struct takt_lane_tx *tx, uint64_t from, uint64_t rec)
{
	return takt_lane_fits_before_end(tx, from, rec) ? 0 : tx->capacity - (from & tx->mask);
}

/* Where a record of payload `len` written at `from` ends (padding before
 * it included). */
static inline uint64_t takt_lane_tx_end_of(const struct takt_lane_tx *tx, uint64_t from, size_t len)
{
	uint64_t rec = takt_rec_size(len);
	return from + takt_lane_pad_before(tx, from, rec) + rec;
}

/* Write a record's header, except its commit word. */
static inline void takt_rec_set_header(struct takt_rec_header *h, uint32_t len, uint32_t type)
{
	atomic_store_explicit(&h->len, len, memory_order_relaxed);
	TAKT_FAULT_POINT(TAKT_FP_TX_LEN);
	atomic_store_explicit(&h->type, type, memory_order_relaxed);
	TAKT_FAULT_POINT(TAKT_FP_TX_TYPE);
}

static inline void takt_lane_tx_header(struct takt_lane_tx *tx, uint64_t pos, uint32_t len, uint32_t type)
{
	takt_rec_set_header(takt_rec_at(tx->data, tx->mask, pos), len, type);
}

/* Commit word of a padding record at pos; relaxed unless it is the first of
 * what is being published (then the caller stores it with release). */
static inline uint64_t takt_pad_word(uint64_t pos)
{
	return pos | TAKT_COMMIT_BIT | TAKT_PADDING_BIT;
}

static inline uint64_t takt_rec_word(uint64_t pos)
{
	return pos | TAKT_COMMIT_BIT;
}

/* Step 4 of the protocol: zero the commit word at `next`, the header after
 * the record (free space, by the headroom the room check kept). */
static inline void takt_rec_zero_commit(struct takt_rec_header *next)
{
	/* relaxed: ordered before the consumer's view by the commit's release. */
	atomic_store_explicit(&next->commit, 0, memory_order_relaxed);
	TAKT_FAULT_POINT(TAKT_FP_TX_ZERO_NEXT);
}

static inline void takt_lane_tx_zero_next(struct takt_lane_tx *tx, uint64_t end)
{
	takt_rec_zero_commit(takt_rec_at(tx->data, tx->mask, end));
}

/*
 * Publishing everything written in [tx->tail, end), in two halves: the
 * plan reads and advances the private state; the store makes the shared
 * stores.  Split so that a caller can plan before its first store to the
 * segment: the compiler must assume an atomic store may change *tx, and
 * reloads every private field it reads after one.
 */
struct takt_lane_tx_pub {
	struct takt_seg_lane *ctrl;
	takt_a64 *first;             /* commit word of the first record */
	uint64_t first_word;
	uint64_t end;
	uint64_t records;            /* the counters' new values */
	uint64_t bytes;
};

static inline struct takt_lane_tx_pub takt_lane_tx_plan(struct takt_lane_tx *tx, uint64_t end,
							uint64_t first_word, uint64_t records,
							uint64_t bytes)
{
	struct takt_lane_tx_pub pub = {
		.ctrl = tx->ctrl,
		.first = &takt_rec_at(tx->data, tx->mask, tx->tail)->commit,
		.first_word = first_word,
		.end = end,
		.records = tx->records + records,
		.bytes = tx->bytes + bytes,
	};
	tx->tail = end;
	tx->records = pub.records;
	tx->bytes = pub.bytes;
	return pub;
}

/* The stores of a publication, once the commit word at its end is zeroed
 * (takt_rec_zero_commit) and every record after the first has its commit
 * word stored: the tail, the counters, and last, with release, the first
 * record's commit word. */
static inline void takt_lane_tx_store(const struct takt_lane_tx_pub *pub)
{
	/* relaxed: bookkeeping for stats and takeover, never polled.  Stored
	 * before the commit so a committed end never exceeds the published
	 * tail (the takeover walk checks that). */
	atomic_store_explicit(&pub->ctrl->tail, pub->end, memory_order_relaxed);
	TAKT_FAULT_POINT(TAKT_FP_TX_TAIL);
	atomic_store_explicit(&pub->ctrl->records_sent, pub->records, memory_order_relaxed);
	TAKT_FAULT_POINT(TAKT_FP_TX_RECORDS);
	atomic_store_explicit(&pub->ctrl->bytes_sent, pub->bytes, memory_order_relaxed);
	TAKT_FAULT_POINT(TAKT_FP_TX_BYTES);
	/* release: publishes payloads, headers, the zeroed next word and the
	 * other commit words of this publication (see the protocol above). */
	atomic_store_explicit(pub->first, pub->first_word, memory_order_release);
	TAKT_FAULT_POINT(TAKT_FP_TX_COMMITTED);
}

/* Both halves at once. */
static inline void takt_lane_tx_publish_zeroed(struct takt_lane_tx *tx, uint64_t end,
					       uint64_t first_word, uint64_t records,
					       uint64_t bytes)
{
	struct takt_lane_tx_pub pub = takt_lane_tx_plan(tx, end, first_word, records, bytes);
	takt_lane_tx_store(&pub);
}

/* Both: zero the commit word at end, then publish (the batch send). */
static inline void takt_lane_tx_publish(struct takt_lane_tx *tx, uint64_t end, uint64_t first_word,
					uint64_t records, uint64_t bytes)
{
	takt_lane_tx_zero_next(tx, end);
	takt_lane_tx_publish_zeroed(tx, end, first_word, records, bytes);
}

static inline void takt_lane_tx_count_full(struct takt_lane_tx *tx)
{
	tx->full_events++;
	atomic_store_explicit(&tx->ctrl->full_events, tx->full_events, memory_order_relaxed);
	TAKT_FAULT_POINT(TAKT_FP_TX_FULL);
}

/* ---- Consumer side ----------------------------------------------------- */

struct takt_lane_rx {
	uint8_t *data;
	struct takt_seg_lane *ctrl;
	uint64_t capacity;
	uint64_t mask;
	uint32_t max_record;
	bool broken;
	/* broken, for takt_wait_readable's thread (see takt_lane_tx): a lane
	 * this consumer skips has nothing for a waiter, whatever the segment's
	 * flag says; a lane it still reads is judged by its commit words. */
	_Atomic bool broken_shared;
	bool dirty;                  /* head moved since the position was last stored */
	uint64_t head;               /* the truth: next position to read */
	uint64_t released;           /* the head as last released to the producer */
	uint64_t release_step;       /* release at least once per this many bytes: capacity / 8 */
	bool unfenced;               /* released without the doorbell's fence since the last fenced check */
	uint32_t empty_polls;        /* polls that found nothing since the last record (capped) */
	uint64_t records;
	uint64_t bytes;
};

int takt_lane_rx_corrupt(struct takt_lane_rx *rx);

/*
 * While a lane stays empty, keep the line after the head's line in our
 * cache.  The consumer polls the commit word in the head's line; a record
 * of more than a few bytes continues into the next line, which the
 * producer writes in the same publication.  Without this, the consumer
 * learns of the record from the first line's miss and only then misses on
 * the second: two transfers back to back.  Touching the second line on
 * each empty poll makes the poll after the publication miss on both lines
 * at once, so a 64-byte record costs about one transfer, like the bare
 * cache line (docs/BENCHMARKS.md).  Only after 16 empty polls in a row
 * (a ping-pong wait is 30-60 polls here): a consumer that has just caught
 * up with a streaming producer would pull the line the producer is
 * writing away from it, and cost it a transfer per record (after 4 polls
 * streamed slower than after 16).  A prefetch is a hint: no ordering, no
 * fault, no effect on what we read; the address is inside the data area
 * (private state only).
 */
#define TAKT_TOUCH_AFTER_POLLS 16u

static inline void takt_lane_rx_touch_next(struct takt_lane_rx *rx, uint64_t idx)
{
	if (rx->empty_polls < TAKT_TOUCH_AFTER_POLLS) {
		rx->empty_polls++;
		return;
	}
	uint64_t next_line = (idx | (TAKT_CACHE_LINE - 1)) + 1;
	if (TAKT_LIKELY(next_line < rx->capacity))
		__builtin_prefetch(rx->data + next_line, 0, 3);
}

/*
 * Read the len and type of the record committed at index idx, once each,
 * and validate them: false if they cannot be true (the lane is corrupt).
 * The caller uses only the values returned here.
 */
static inline bool takt_lane_rx_header(const struct takt_lane_rx *rx, uint64_t idx, uint32_t *len,
				       uint32_t *type)
{
	/* A record header needs 16 bytes before the end of the data area;
	 * only padding (8 bytes) can start later.  Checked before len is
	 * read: in the last lane the 8 bytes after the data area may lie past
	 * the end of the mapping. */
	if (TAKT_UNLIKELY(idx > rx->capacity - TAKT_REC_HEADER))
		return false;
	struct takt_rec_header *hdr = (struct takt_rec_header *)(rx->data + idx);
	uint32_t l = atomic_load_explicit(&hdr->len, memory_order_relaxed);
	uint32_t t = atomic_load_explicit(&hdr->type, memory_order_relaxed);
	if (TAKT_UNLIKELY(l > rx->max_record || idx + takt_rec_size(l) > rx->capacity))
		return false;
	*len = l;
	*type = t;
	return true;
}

/*
 * Look at the next record without consuming it.  Returns 1 and its length,
 * type and payload index when one is committed, 0 when none is, -EBADMSG
 * when the lane is corrupted.  A padding record is consumed on the way
 * (it carries nothing); at most one can precede a record.
 */
static inline int takt_lane_rx_peek(struct takt_lane_rx *rx, uint32_t *len, uint32_t *type,
				    uint64_t *payload)
{
	for (int hop = 0; hop < 2; hop++) {
		uint64_t h = rx->head;
		uint64_t idx = h & rx->mask;
		struct takt_rec_header *hdr = (struct takt_rec_header *)(rx->data + idx);
		/* acquire: pairs with the producer's release of this word. */
		uint64_t word = atomic_load_explicit(&hdr->commit, memory_order_acquire);
		if (TAKT_LIKELY(word == takt_rec_word(h))) {
			if (TAKT_UNLIKELY(!takt_lane_rx_header(rx, idx, len, type)))
				return takt_lane_rx_corrupt(rx);
			*payload = idx + TAKT_REC_HEADER;
			return 1;
		}
		if (word != takt_pad_word(h)) {
			takt_lane_rx_touch_next(rx, idx);
			return 0;
		}
		/* Padding at index 0 would fill a whole lap: never written. */
		if (TAKT_UNLIKELY(idx == 0))
			return takt_lane_rx_corrupt(rx);
		rx->head = h + (rx->capacity - idx);
		rx->dirty = true;
		TAKT_FAULT_POINT(TAKT_FP_RX_PAD_SKIPPED);
	}
	return takt_lane_rx_corrupt(rx); /* two paddings in a row: never written */
}

/*
 * Move past a record (private state only).  Fields that usually hold the
 * value already are stored only when they change: every store occupies the
 * store buffer until it commits, and a consumer whose head line is being
 * read by a producer on a full ring waits for that line's ownership at
 * every publish -- fewer stores in flight, fewer stalls.
 */
static inline void takt_lane_rx_advance(struct takt_lane_rx *rx, uint32_t len)
{
	rx->head += takt_rec_size(len);
	if (rx->empty_polls)
		rx->empty_polls = 0;
	rx->records++;
	rx->bytes += len;
}

/* The same, to be stored later (the position is dirty until then). */
static inline void takt_lane_rx_consume(struct takt_lane_rx *rx, uint32_t len)
{
	takt_lane_rx_advance(rx, len);
	rx->dirty = true;
}

/*
 * Store the position and the counters: after every record (or batch).
 * A new consumer resumes at the position; stats and other-thread waits
 * read it; a producer reads it only before it parks.
 */
static inline void takt_lane_rx_store_position(struct takt_lane_rx *rx)
{
	/* locals: the compiler must assume an atomic store may change *rx */
	struct takt_seg_lane *ctrl = rx->ctrl;
	uint64_t records = rx->records, bytes = rx->bytes, head = rx->head;
	if (rx->dirty)
		rx->dirty = false; /* stored only when it changes: see takt_lane_rx_advance */
	atomic_store_explicit(&ctrl->records_received, records, memory_order_relaxed);
	TAKT_FAULT_POINT(TAKT_FP_RX_RECORDS);
	atomic_store_explicit(&ctrl->bytes_received, bytes, memory_order_relaxed);
	TAKT_FAULT_POINT(TAKT_FP_RX_BYTES);
	/* release: our reads of the consumed payloads happen before a
	 * producer about to park, acquiring this position, reuses their space
	 * (takt_lane_tx_claim_consumed). */
	atomic_store_explicit(&ctrl->consumed, head, memory_order_release);
	TAKT_FAULT_POINT(TAKT_FP_RX_HEAD);
}

/*
 * Has the consumer read past what it has released to the producer?  The
 * release is lazy: the head line is the one a producer on a full ring
 * keeps reading, and a store to it on every record made producer and
 * consumer trade that line once per record -- on a full ring that halved
 * the streaming rate (docs/BENCHMARKS.md, "the released head").  The
 * consumer releases once it owes release_step bytes (capacity / 8), when
 * it finds the lane empty, when the producer waits (its doorbell is
 * armed), and at close: takt_try_send sees freed space in steps of at
 * most capacity / 8.  A waiting producer does not depend on any of that:
 * before it parks it takes the space up to the consumer's position
 * (lane.c, takt_lane_tx_claim_consumed).
 */
static inline bool takt_lane_rx_owes_release(const struct takt_lane_rx *rx)
{
	return rx->head != rx->released;
}

static inline bool takt_lane_rx_release_due(const struct takt_lane_rx *rx)
{
	return rx->head - rx->released >= rx->release_step;
}

/* Release the head: hands the consumed space back to the producer. */
static inline void takt_lane_rx_release(struct takt_lane_rx *rx)
{
	uint64_t head = rx->head;
	rx->released = head;
	/* release: our reads of the consumed payloads happen before the
	 * producer, acquiring this head, reuses their space. */
	atomic_store_explicit(&rx->ctrl->head, head, memory_order_release);
	TAKT_FAULT_POINT(TAKT_FP_RX_RELEASED);
}

/* Is a record (or padding) committed at the head?  For waits; no side
 * effect but the touch of the next line. */
static inline bool takt_lane_rx_ready(struct takt_lane_rx *rx)
{
	if (rx->broken)
		return false;
	struct takt_rec_header *hdr = takt_rec_at(rx->data, rx->mask, rx->head);
	uint64_t word = atomic_load_explicit(&hdr->commit, memory_order_acquire);
	bool ready = (word | TAKT_PADDING_BIT) == takt_pad_word(rx->head);
	if (!ready)
		takt_lane_rx_touch_next(rx, rx->head & rx->mask);
	return ready;
}

#endif /* TAKT_LANE_H */
