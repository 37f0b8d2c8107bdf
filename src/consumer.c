/* SPDX-License-Identifier: MIT */
/*
 * consumer.c - the consumer endpoint: the consumer slot, round-robin
 * receive across lanes (fair, bounded work per call), copy-out, batch
 * receive, peek/release.  The ring algorithm itself is lane.h.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "consumer.h"
#include "producer.h" /* TAKT_DEFAULT_SPIN_NS */

static void close_sems(takt_consumer *c)
{
	takt_sem_close(c->rx_bell.sem);
	for (unsigned k = 0; k < c->lanes; k++)
		takt_sem_close(c->lane[k].wake_producer.sem);
}

int takt_consumer_attach(takt_channel *ch, takt_consumer **out)
{
	if (!ch || !out)
		return -EINVAL;
	if (ch->geo.kind != TAKT_KIND_QUEUE)
		return -EPROTOTYPE;
	if (ch->flags & TAKT_OPEN_RDONLY)
		return -EACCES;
	unsigned lanes = ch->geo.lanes;
	takt_consumer *c = calloc(1, sizeof *c + lanes * sizeof c->lane[0]);
	if (!c)
		return -ENOMEM;
	int rc = takt_slot_acquire(ch, TAKT_SLOT_CONSUMER);
	if (rc < 0) {
		free(c);
		return rc;
	}
	TAKT_FAULT_POINT(TAKT_FP_RX_OPEN_SLOT);
	c->ch = ch;
	c->lanes = lanes;
	c->burst = c->burst_left = TAKT_DEFAULT_LANE_BURST;
	c->spin_ns = TAKT_DEFAULT_SPIN_NS;
	c->seg = ch->consumer;
	c->empty_events = atomic_load_explicit(&c->seg->empty_events, memory_order_relaxed);
	char sem_name[TAKT_OBJ_NAME_MAX];
	takt_rx_sem_name(sem_name, ch->name);
	rc = takt_sem_open(sem_name, &c->rx_bell.sem);
	c->rx_bell.word = &c->seg->rx_doorbell;
	for (unsigned k = 0; k < lanes; k++) {
		struct takt_consumer_lane *l = &c->lane[k];
		struct takt_lane_rx *rx = &l->rx;
		rx->ctrl = takt_lane_ctrl(ch, k);
		rx->data = takt_lane_data(ch, k);
		rx->capacity = ch->geo.capacity;
		rx->mask = ch->geo.mask;
		rx->max_record = ch->geo.max_record;
		rx->release_step = rx->capacity / 8;
		/* Resume at the last consumer's position (a dead consumer's
		 * record in flight is delivered again: at-least-once on a
		 * consumer crash); what it read but had not released yet is
		 * released at our first empty poll.  acquire: pairs with the
		 * release of whoever released the head; the position and the
		 * tail come with the slot's lock hand-over. */
		uint64_t head = atomic_load_explicit(&rx->ctrl->head, memory_order_acquire);
		uint64_t pos = atomic_load_explicit(&rx->ctrl->consumed, memory_order_relaxed);
		uint64_t tail = atomic_load_explicit(&rx->ctrl->tail, memory_order_relaxed);
		rx->head = pos;
		rx->released = head;
		if (((head | pos) & (TAKT_REC_ALIGN - 1)) || head > pos || pos > tail ||
		    tail - pos > rx->capacity) {
			rx->released = pos; /* a broken lane owes nothing */
			takt_lane_rx_corrupt(rx);
			c->broken_lanes++;
		}
		rx->records = atomic_load_explicit(&rx->ctrl->records_received, memory_order_relaxed);
		rx->bytes = atomic_load_explicit(&rx->ctrl->bytes_received, memory_order_relaxed);
		l->wake_producer.word = &rx->ctrl->tx_doorbell;
		if (rc == 0) {
			takt_tx_sem_name(sem_name, ch->name, k);
			rc = takt_sem_open(sem_name, &l->wake_producer.sem);
		}
	}
	if (rc < 0) {
		close_sems(c);
		takt_slot_release(ch, TAKT_SLOT_CONSUMER);
		free(c);
		return rc;
	}
	atomic_store_explicit(&c->seg->pid, (uint32_t)getpid(), memory_order_relaxed);
	TAKT_FAULT_POINT(TAKT_FP_RX_OPEN_PID);
	atomic_store_explicit(&c->seg->start_time, takt_self_start_time(), memory_order_relaxed);
	atomic_fetch_add_explicit(&c->seg->epoch, 1, memory_order_relaxed);
	atomic_store_explicit(&c->seg->last_ns, takt_coarse_ns(), memory_order_relaxed);
	TAKT_FAULT_POINT(TAKT_FP_RX_OPEN_DONE);
	atomic_fetch_add_explicit(&ch->attached, 1, memory_order_relaxed);
	*out = c;
	return 0;
}

int takt_consumer_open(const char *name, takt_consumer **out)
{
	if (!out)
		return -EINVAL;
	takt_channel *ch;
	int rc = takt_channel_open(name, 0, &ch);
	if (rc < 0)
		return rc;
	rc = takt_consumer_attach(ch, out);
	if (rc < 0) {
		takt_channel_close(ch);
		return rc;
	}
	(*out)->owns_channel = true;
	return 0;
}

/*
 * After a receive: store the position, release the head when it is due
 * (lane.h: takt_lane_rx_owes_release) or when the producer waits, and
 * tell whether to wake it.  The doorbell check is a relaxed load of the
 * head's line (a line the producer writes only to arm), without the
 * seq_cst fence the doorbell protocol asks for: it sees every arm that is
 * already visible, and one that races with this call is seen by the next
 * receive from the lane or, if there is none, by the fenced check that
 * publish_fenced() makes when a poll finds the lane empty (so before we
 * could wait).  A producer that armed lacks room by the released head, so
 * the lane holds records or space we owe it, and one of the two always
 * comes: no wake-up is lost, at worst it waits for the consumer's next
 * call.  This keeps the fence (~20 cycles) off every hop of the receive
 * path.
 */
static inline bool publish_lane_must_wake(takt_consumer *c, unsigned k)
{
	struct takt_consumer_lane *l = &c->lane[k];
	takt_lane_rx_store_position(&l->rx);
	bool armed = atomic_load_explicit(l->wake_producer.word, memory_order_relaxed) & 1u;
	if (TAKT_UNLIKELY(armed || takt_lane_rx_release_due(&l->rx))) {
		takt_lane_rx_release(&l->rx);
		if (!l->rx.unfenced)
			l->rx.unfenced = true; /* stored only when it changes: see takt_lane_rx_advance */
	}
	return armed;
}

static void publish_lane(takt_consumer *c, unsigned k)
{
	if (TAKT_UNLIKELY(publish_lane_must_wake(c, k)))
		takt_doorbell_post(&c->lane[k].wake_producer);
	TAKT_FAULT_POINT(TAKT_FP_RX_RUNG);
}

/* The full doorbell protocol: after an empty poll and at close. */
static void publish_fenced(takt_consumer *c, unsigned k)
{
	struct takt_consumer_lane *l = &c->lane[k];
	if (l->rx.dirty)
		takt_lane_rx_store_position(&l->rx);
	if (takt_lane_rx_owes_release(&l->rx))
		takt_lane_rx_release(&l->rx);
	l->rx.unfenced = false;
	takt_doorbell_ring(&l->wake_producer);
	TAKT_FAULT_POINT(TAKT_FP_RX_RUNG);
}

void takt_consumer_close(takt_consumer *c)
{
	if (!c)
		return;
	for (unsigned k = 0; k < c->lanes; k++)
		if ((takt_lane_rx_owes_release(&c->lane[k].rx) || c->lane[k].rx.unfenced) &&
		    !c->lane[k].rx.broken)
			publish_fenced(c, k);
	takt_channel *ch = c->ch;
	atomic_store_explicit(&c->seg->last_ns, takt_coarse_ns(), memory_order_relaxed);
	TAKT_FAULT_POINT(TAKT_FP_RX_CLOSE);
	close_sems(c);
	takt_slot_release(ch, TAKT_SLOT_CONSUMER);
	atomic_fetch_sub_explicit(&ch->attached, 1, memory_order_relaxed);
	bool owns = c->owns_channel;
	free(c);
	if (owns)
		takt_channel_close(ch);
}

takt_channel *takt_consumer_channel(takt_consumer *c)
{
	return c->ch;
}

int takt_consumer_set_lane_burst(takt_consumer *c, unsigned records)
{
	if (records == 0)
		return -EINVAL;
	c->burst = c->burst_left = records;
	return 0;
}

void takt_consumer_set_spin_ns(takt_consumer *c, uint32_t spin_ns)
{
	c->spin_ns = spin_ns;
}

static inline void next_lane(takt_consumer *c)
{
	c->cursor = (c->cursor + 1 == c->lanes) ? 0 : c->cursor + 1;
	c->burst_left = c->burst;
}

static inline void count_empty(takt_consumer *c)
{
	c->empty_events++;
	atomic_store_explicit(&c->seg->empty_events, c->empty_events, memory_order_relaxed);
	TAKT_FAULT_POINT(TAKT_FP_RX_EMPTY);
}

/*
 * Poll lane k (not broken): 1 with a record, 0 when it is empty, -EBADMSG
 * when it was just found corrupted.
 */
__attribute__((always_inline)) static inline int poll_lane(takt_consumer *c, unsigned k,
							   uint32_t *len, uint32_t *type,
							   uint64_t *payload)
{
	struct takt_lane_rx *rx = &c->lane[k].rx;
	int r = takt_lane_rx_peek(rx, len, type, payload);
	if (TAKT_LIKELY(r > 0))
		return 1;
	if (r < 0) {
		c->broken_lanes++;
		return -EBADMSG;
	}
	/* empty: release what we owe (padding skipped included), and a
	 * producer's arm may have raced an unfenced release */
	if (takt_lane_rx_owes_release(rx) || rx->unfenced)
		publish_fenced(c, k);
	return 0;
}

/*
 * Find the next record, round-robin: the cursor lane gives up to `burst`
 * records, then the next lane's turn comes.  Each lane is visited at most
 * once per call, so the work is bounded by the lane count.  Returns 1 with
 * the lane in *lane, -EAGAIN when every lane is empty, -EBADMSG when a lane
 * was just found corrupted or every lane is broken.
 */
__attribute__((always_inline)) static inline int find_record(takt_consumer *c, unsigned *lane,
							     uint32_t *len, uint32_t *type,
							     uint64_t *payload)
{
	if (TAKT_LIKELY(c->lanes == 1)) {
		/* SPSC: no round robin to keep */
		if (TAKT_UNLIKELY(c->lane[0].rx.broken))
			return -EBADMSG;
		int r = poll_lane(c, 0, len, type, payload);
		if (TAKT_LIKELY(r > 0)) {
			*lane = 0;
			return 1;
		}
		if (r < 0)
			return r;
	} else {
		for (unsigned visited = 0; visited < c->lanes; visited++) {
			unsigned k = c->cursor;
			if (TAKT_LIKELY(!c->lane[k].rx.broken)) {
				int r = poll_lane(c, k, len, type, payload);
				if (TAKT_LIKELY(r > 0)) {
					*lane = k;
					return 1;
				}
				if (r < 0) {
					next_lane(c);
					return r;
				}
			}
			next_lane(c);
		}
		if (c->broken_lanes == c->lanes)
			return -EBADMSG;
	}
	count_empty(c);
	return -EAGAIN;
}

/* Account one delivered record from the cursor lane. */
static inline void took_one(takt_consumer *c)
{
	if (c->lanes > 1 && --c->burst_left == 0)
		next_lane(c);
}

/* Every case of takt_try_recv (the fast path below handles the common ones). */
static __attribute__((noinline)) int recv_general(takt_consumer *c, void *buf, size_t cap,
						  struct takt_msg *msg)
{
	unsigned k = 0;
	uint32_t len = 0, type = 0;
	uint64_t payload = 0;
	if (TAKT_UNLIKELY(c->peeked))
		c->peeked = false; /* a copy-out receive supersedes an unreleased peek */
	int r = find_record(c, &k, &len, &type, &payload);
	if (TAKT_UNLIKELY(r < 0))
		return r;
	struct takt_lane_rx *rx = &c->lane[k].rx;
	if (TAKT_UNLIKELY(len > cap)) {
		if (msg) {
			msg->data = NULL;
			msg->len = len;
			msg->type = type;
			msg->lane = k;
		}
		return -EMSGSIZE; /* the record stays queued */
	}
	takt_copy(buf, rx->data + payload, len);
	TAKT_FAULT_POINT(TAKT_FP_RX_COPIED);
	takt_lane_rx_consume(rx, len);
	publish_lane(c, k);
	took_one(c);
	if (msg) {
		msg->data = buf;
		msg->len = len;
		msg->type = type;
		msg->lane = k;
	}
	return (int)len;
}

/* The fast path's rare last step, out of line: wake the parked producer. */
static __attribute__((noinline)) int wake_producer(takt_consumer *c, int len)
{
	takt_doorbell_post(&c->lane[0].wake_producer);
	TAKT_FAULT_POINT(TAKT_FP_RX_RUNG);
	return len;
}

/*
 * The common cases of a one-lane channel with no peek pending -- a record
 * of at most TAKT_COPY_INLINE_MAX bytes at the head that fits the buffer,
 * or an empty lane that owes no publication -- in straight-line code that
 * calls nothing (but for the rare post, a tail call): the compiler then
 * saves no registers, and the round-robin bookkeeping of several lanes is
 * skipped.  Everything else (padding, a corrupt or long record, a small
 * buffer, more lanes, an empty poll that owes the fenced doorbell check)
 * goes to recv_general, which starts over: it reads and validates the
 * commit word and the header afresh and uses nothing read here.  The steps
 * and their order are those of recv_general; the protocol is lane.h's.
 */
int takt_try_recv(takt_consumer *c, void *buf, size_t cap, struct takt_msg *msg)
{
	struct takt_lane_rx *rx = &c->lane[0].rx;
	if (TAKT_UNLIKELY(c->lanes != 1 || c->peeked || rx->broken))
		return recv_general(c, buf, cap, msg);
	uint64_t h = rx->head, idx = h & rx->mask;
	struct takt_rec_header *hdr = (struct takt_rec_header *)(rx->data + idx);
	/* acquire: pairs with the producer's release of this word (lane.h). */
	uint64_t word = atomic_load_explicit(&hdr->commit, memory_order_acquire);
	if (TAKT_UNLIKELY(word != takt_rec_word(h))) {
		if (word == takt_pad_word(h) || takt_lane_rx_owes_release(rx) || rx->unfenced)
			return recv_general(c, buf, cap, msg);
		takt_lane_rx_touch_next(rx, idx);
		count_empty(c);
		return -EAGAIN;
	}
	uint32_t len, type;
	if (TAKT_UNLIKELY(!takt_lane_rx_header(rx, idx, &len, &type) || len > cap ||
			  len > TAKT_COPY_INLINE_MAX))
		return recv_general(c, buf, cap, msg);
	takt_copy_small(buf, rx->data + idx + TAKT_REC_HEADER, len);
	TAKT_FAULT_POINT(TAKT_FP_RX_COPIED);
	takt_lane_rx_advance(rx, len); /* stored below: never dirty */
	if (msg) {
		msg->data = buf;
		msg->len = len;
		msg->type = type;
		msg->lane = 0;
	}
	if (TAKT_UNLIKELY(publish_lane_must_wake(c, 0)))
		return wake_producer(c, (int)len);
	TAKT_FAULT_POINT(TAKT_FP_RX_RUNG);
	return (int)len;
}

int takt_try_recv_batch(takt_consumer *c, struct takt_msg *msgs, unsigned n, void *buf, size_t cap)
{
	if (n == 0)
		return -EINVAL;
	c->peeked = false;
	unsigned got = 0;
	size_t used = 0;
	int r = 0;
	while (got < n) {
		unsigned k = 0;
		uint32_t len = 0, type = 0;
		uint64_t payload = 0;
		r = find_record(c, &k, &len, &type, &payload);
		if (r < 0)
			break;
		struct takt_lane_rx *rx = &c->lane[k].rx;
		if (len > cap - used) {
			if (got == 0) {
				msgs[0].data = NULL;
				msgs[0].len = len;
				msgs[0].type = type;
				msgs[0].lane = k;
				r = -EMSGSIZE;
			}
			break;
		}
		uint8_t *dst = (uint8_t *)buf + used;
		takt_copy(dst, rx->data + payload, len);
		TAKT_FAULT_POINT(TAKT_FP_RX_COPIED);
		takt_lane_rx_consume(rx, len);
		TAKT_FAULT_POINT(TAKT_FP_RX_BATCH_MID);
		if (c->cursor != k || c->burst_left == 1)
			publish_lane(c, k); /* about to leave this lane */
		msgs[got].data = dst;
		msgs[got].len = len;
		msgs[got].type = type;
		msgs[got].lane = k;
		got++;
		used += (len + 7u) & ~(size_t)7u;
		if (used > cap)
			used = cap;
		took_one(c);
	}
	/* what the batch consumed is stored once per lane visit */
	for (unsigned k = 0; k < c->lanes; k++)
		if (c->lane[k].rx.dirty && !c->lane[k].rx.broken)
			publish_lane(c, k);
	if (got > 0)
		return (int)got;
	return r;
}

int takt_peek(takt_consumer *c, struct takt_msg *msg)
{
	unsigned k = 0;
	uint32_t len = 0, type = 0;
	uint64_t payload = 0;
	int r = find_record(c, &k, &len, &type, &payload);
	if (r < 0) {
		c->peeked = false;
		return r;
	}
	c->peeked = true;
	c->peek_lane = k;
	c->peek_len = len;
	msg->data = c->lane[k].rx.data + payload;
	msg->len = len;
	msg->type = type;
	msg->lane = k;
	return (int)len;
}

int takt_release(takt_consumer *c)
{
	if (!c->peeked)
		return -EALREADY;
	TAKT_FAULT_POINT(TAKT_FP_RX_RELEASE_CALL);
	c->peeked = false;
	struct takt_lane_rx *rx = &c->lane[c->peek_lane].rx;
	takt_lane_rx_consume(rx, c->peek_len);
	publish_lane(c, c->peek_lane);
	if (c->peek_lane == c->cursor)
		took_one(c);
	return 0;
}

bool takt_consumer_has_record(takt_consumer *c)
{
	for (unsigned k = 0; k < c->lanes; k++)
		if (takt_lane_rx_ready(&c->lane[k].rx))
			return true;
	return false;
}

/*
 * The same question from shared state only (the stored positions, the
 * commit words, the lanes' broken flags), for a thread other than the
 * handle's owner: takt_wait_readable.  A record the owner has consumed but
 * whose position it has not stored yet (mid-batch) makes it answer true
 * early; its caller simply tries and waits again.
 */
bool takt_consumer_has_record_shared(takt_consumer *c)
{
	for (unsigned k = 0; k < c->lanes; k++) {
		struct takt_lane_rx *rx = &c->lane[k].rx; /* immutable fields and broken_shared */
		/* A lane the owner skips has nothing for us: its -EBADMSG was
		 * reported by the receive that found it.  Not the segment's
		 * flag: set by anyone and never cleared, it answered "ready"
		 * forever while the owner's receive said -EAGAIN (a waiter
		 * such as taktd's then spun). */
		if (atomic_load_explicit(&rx->broken_shared, memory_order_relaxed))
			continue;
		/* The position, not the released head (which may lag by a
		 * step and would answer true for records already taken).
		 * Relaxed: it only picks the commit word, which is acquired. */
		uint64_t head = atomic_load_explicit(&rx->ctrl->consumed, memory_order_relaxed);
		/* Only the owner stores this position, always 8-aligned; anything
		 * else is a scribble.  An aligned index is at most capacity - 8,
		 * so the commit word read below stays inside the data area (the
		 * last lane's can end exactly where the mapping ends).  Such a
		 * lane answers "nothing" until the owner stores its position
		 * again (its next receive from the lane): the waiter still
		 * wakes on the doorbell, and spurious wake-ups on every call
		 * would turn a waiting thread into a spinning one. */
		if (TAKT_UNLIKELY(head & (TAKT_REC_ALIGN - 1)))
			continue;
		struct takt_rec_header *hdr = takt_rec_at(rx->data, rx->mask, head);
		uint64_t word = atomic_load_explicit(&hdr->commit, memory_order_acquire);
		if ((word | TAKT_PADDING_BIT) == takt_pad_word(head))
			return true;
	}
	return false;
}
