/* SPDX-License-Identifier: MIT */
/*
 * lane.c - the lane algorithm's slow paths: refreshing the producer's view
 * of the head when the ring looks full, taking over a lane whose producer
 * died, and marking a corrupted lane broken.  The fast paths are in lane.h.
 */
#include "lane.h"

void takt_lane_tx_mark_broken(struct takt_lane_tx *tx)
{
	tx->broken = true;
	atomic_store_explicit(&tx->broken_shared, true, memory_order_relaxed);
	atomic_store_explicit(&tx->ctrl->broken, 1, memory_order_relaxed);
}

/* Room up to `end` once the consumer has freed up to `base` (a released
 * head, which may lag a position we claimed, or a position). */
static int room_from(struct takt_lane_tx *tx, uint64_t base, uint64_t end)
{
	if (base > tx->head_cache)
		tx->head_cache = base;
	return takt_lane_tx_fits(tx, end, tx->head_cache) ? 0 : -EAGAIN;
}

/* The released head afresh, when the cached one says full; and the
 * consumer's position too when takt_wait_writable's thread asked for it
 * (claim_wanted). */
int takt_lane_tx_refresh(struct takt_lane_tx *tx, uint64_t end)
{
	/* acquire: pairs with the consumer's release of head (lane.h). */
	uint64_t head = atomic_load_explicit(&tx->ctrl->head, memory_order_acquire);
	/* The consumer only moves forward, over records we committed, and
	 * stops on record boundaries (8-aligned). */
	if (TAKT_UNLIKELY(head < tx->released_seen || head > tx->tail ||
			  (head & (TAKT_REC_ALIGN - 1)))) {
		takt_lane_tx_mark_broken(tx);
		return -EBADMSG;
	}
	tx->released_seen = head;
	int room = room_from(tx, head, end);
	/* relaxed: a request from a thread of ours; the claim acquires */
	if (room == -EAGAIN && atomic_exchange_explicit(&tx->claim_wanted, 0, memory_order_relaxed))
		room = takt_lane_tx_claim_consumed(tx, end);
	return room;
}

/*
 * Before a producer parks for room: take the space the consumer has read
 * but not released yet (lane.h, takt_lane_rx_owes_release), from its
 * position.  Only here, off the hot path: the position's line is written
 * on every record, and a producer reading it on every refusal would trade
 * it with the consumer once per record -- what the lazy release avoids.
 * A waiter must not wait for space the consumer withholds only until its
 * next call, which may never come (a consumer that stops receiving with
 * records left).
 */
int takt_lane_tx_claim_consumed(struct takt_lane_tx *tx, uint64_t end)
{
	/* acquire: pairs with the consumer's release of its position; its
	 * reads of what lies before it happen before our overwrite. */
	uint64_t pos = atomic_load_explicit(&tx->ctrl->consumed, memory_order_acquire);
	/* The consumer stores its position before it releases it, so the
	 * position is never behind a head we saw released, and it never
	 * moves backwards (a new consumer resumes at it). */
	if (TAKT_UNLIKELY(pos < tx->released_seen || pos < tx->consumed_seen || pos > tx->tail ||
			  (pos & (TAKT_REC_ALIGN - 1)))) {
		takt_lane_tx_mark_broken(tx);
		return -EBADMSG;
	}
	tx->consumed_seen = pos;
	return room_from(tx, pos, end);
}

int takt_lane_rx_corrupt(struct takt_lane_rx *rx)
{
	rx->broken = true;
	atomic_store_explicit(&rx->broken_shared, true, memory_order_relaxed);
	atomic_store_explicit(&rx->ctrl->broken, 1, memory_order_relaxed);
	return -EBADMSG;
}

/*
 * A new producer of a lane continues where the last one committed.  The
 * published tail cannot be trusted for that (the last producer may have
 * died between storing it and committing), so walk the committed records
 * from the consumer's stored position: the first position whose commit word
 * does not match is the true tail.  The walk covers at most one capacity of
 * bytes, each step at least 16, so it ends.
 */
int takt_lane_recover_tail(struct takt_lane_tx *tx)
{
	/* acquire (both): pair with the consumer's releases; the space
	 * before them is free.  Walk from the position, not from the
	 * released head: a producer that claimed the position before it
	 * parked (takt_lane_tx_claim_consumed) may have overwritten what lies
	 * between the two. */
	uint64_t released = atomic_load_explicit(&tx->ctrl->head, memory_order_acquire);
	uint64_t head = atomic_load_explicit(&tx->ctrl->consumed, memory_order_acquire);
	uint64_t tail_pub = atomic_load_explicit(&tx->ctrl->tail, memory_order_relaxed);
	if (((head | released) & (TAKT_REC_ALIGN - 1)) || released > head || head > tail_pub ||
	    tail_pub - head > tx->capacity)
		goto corrupt;
	uint64_t pos = head;
	while (pos - head < tx->capacity) {
		uint64_t idx = pos & tx->mask;
		struct takt_rec_header *h = (struct takt_rec_header *)(tx->data + idx);
		uint64_t word = atomic_load_explicit(&h->commit, memory_order_acquire);
		if (word == takt_rec_word(pos)) {
			/* as in takt_lane_rx_peek: no record header starts
			 * in the last 8 bytes, and len lies beyond them */
			if (idx > tx->capacity - TAKT_REC_HEADER)
				goto corrupt;
			uint32_t len = atomic_load_explicit(&h->len, memory_order_relaxed);
			if (len > tx->max_record || idx + takt_rec_size(len) > tx->capacity)
				goto corrupt;
			pos += takt_rec_size(len);
		} else if (word == takt_pad_word(pos) && idx != 0) {
			pos += tx->capacity - idx;
		} else {
			break;
		}
	}
	/* Every committed byte was covered by a tail stored before its commit. */
	if (pos > tail_pub || pos - head > tx->capacity - TAKT_HEADROOM)
		goto corrupt;
	tx->tail = pos;
	tx->head_cache = tx->consumed_seen = head;
	tx->released_seen = released;
	/* relaxed: bookkeeping (see lane.h).  The word at pos does not match,
	 * which is all the consumer needs; the next publish zeroes past it. */
	atomic_store_explicit(&tx->ctrl->tail, pos, memory_order_relaxed);
	TAKT_FAULT_POINT(TAKT_FP_TX_RECOVERED);
	return 0;
corrupt:
	takt_lane_tx_mark_broken(tx);
	return -EBADMSG;
}
