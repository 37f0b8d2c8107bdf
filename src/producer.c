/* SPDX-License-Identifier: MIT */
/*
 * producer.c - the producer endpoint: lane ownership, try_send, batch send,
 * reserve/commit.  The ring algorithm itself is lane.h.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lane.h"
#include "producer.h"

static int type_ok(uint32_t type)
{
	return type < TAKT_TYPE_RESERVED;
}

int takt_producer_attach(takt_channel *ch, takt_producer **out)
{
	if (!ch || !out)
		return -EINVAL;
	if (ch->geo.kind != TAKT_KIND_QUEUE)
		return -EPROTOTYPE;
	if (ch->flags & TAKT_OPEN_RDONLY)
		return -EACCES;
	struct takt_producer *p = calloc(1, sizeof *p);
	if (!p)
		return -ENOMEM;
	/* The first free lane whose takeover walk succeeds.  A lane the walk
	 * finds corrupted is marked broken and passed over: one scribbled
	 * lane must not keep every new producer out of the healthy ones.
	 * -EBADMSG only if every free lane was corrupted; -EBUSY if none was
	 * free. */
	int rc = -EBUSY;
	unsigned lane = 0;
	struct takt_lane_tx *tx = &p->tx;
	for (; lane < ch->geo.lanes; lane++) {
		int got = takt_slot_acquire(ch, TAKT_SLOT_LANE(lane));
		if (got == -EBUSY)
			continue;
		rc = got;
		if (got < 0)
			break;
		TAKT_FAULT_POINT(TAKT_FP_TX_OPEN_SLOT);
		memset(tx, 0, sizeof *tx);
		tx->ctrl = takt_lane_ctrl(ch, lane);
		tx->data = takt_lane_data(ch, lane);
		tx->capacity = ch->geo.capacity;
		tx->mask = ch->geo.mask;
		tx->max_record = ch->geo.max_record;
		rc = takt_lane_recover_tail(tx);
		if (rc == 0)
			break;
		takt_slot_release(ch, TAKT_SLOT_LANE(lane));
		if (rc != -EBADMSG)
			break;
	}
	if (rc < 0)
		goto fail_free;
	p->ch = ch;
	p->lane = lane;
	p->spin_ns = TAKT_DEFAULT_SPIN_NS;
	/* Counters run since creation: continue from what the lane shows. */
	tx->records = atomic_load_explicit(&tx->ctrl->records_sent, memory_order_relaxed);
	tx->bytes = atomic_load_explicit(&tx->ctrl->bytes_sent, memory_order_relaxed);
	tx->full_events = atomic_load_explicit(&tx->ctrl->full_events, memory_order_relaxed);

	char sem_name[TAKT_OBJ_NAME_MAX];
	takt_rx_sem_name(sem_name, ch->name);
	rc = takt_sem_open(sem_name, &p->wake_consumer.sem);
	if (rc < 0)
		goto fail_slot;
	p->wake_consumer.word = &ch->consumer->rx_doorbell;
	/* Fence-free publishing if the waiters' heavy barrier reaches us;
	 * otherwise (or when the mapping asks for it) the fenced doorbell
	 * (internal.h). */
	p->light_ring = !(ch->flags & TAKT_OPEN_FENCED) && takt_membarrier_register() == 0;
	takt_tx_sem_name(sem_name, ch->name, lane);
	rc = takt_sem_open(sem_name, &p->space.sem);
	if (rc < 0)
		goto fail_sem;
	p->space.word = &tx->ctrl->tx_doorbell;

	/* display only: who holds the lane now */
	atomic_store_explicit(&tx->ctrl->pid, (uint32_t)getpid(), memory_order_relaxed);
	TAKT_FAULT_POINT(TAKT_FP_TX_OPEN_PID);
	atomic_store_explicit(&tx->ctrl->start_time, takt_self_start_time(), memory_order_relaxed);
	atomic_fetch_add_explicit(&tx->ctrl->epoch, 1, memory_order_relaxed);
	atomic_store_explicit(&tx->ctrl->last_ns, takt_coarse_ns(), memory_order_relaxed);
	TAKT_FAULT_POINT(TAKT_FP_TX_OPEN_DONE);
	atomic_fetch_add_explicit(&ch->attached, 1, memory_order_relaxed);
	*out = p;
	return 0;
fail_sem:
	takt_sem_close(p->wake_consumer.sem);
fail_slot:
	takt_slot_release(ch, TAKT_SLOT_LANE(lane));
fail_free:
	free(p);
	return rc;
}

int takt_producer_open(const char *name, takt_producer **out)
{
	if (!out)
		return -EINVAL;
	takt_channel *ch;
	int rc = takt_channel_open(name, 0, &ch);
	if (rc < 0)
		return rc;
	rc = takt_producer_attach(ch, out);
	if (rc < 0) {
		takt_channel_close(ch);
		return rc;
	}
	(*out)->owns_channel = true;
	return 0;
}

void takt_producer_close(takt_producer *p)
{
	if (!p)
		return;
	takt_channel *ch = p->ch;
	atomic_store_explicit(&p->tx.ctrl->last_ns, takt_coarse_ns(), memory_order_relaxed);
	TAKT_FAULT_POINT(TAKT_FP_TX_CLOSE);
	takt_sem_close(p->space.sem);
	takt_sem_close(p->wake_consumer.sem);
	takt_slot_release(ch, TAKT_SLOT_LANE(p->lane));
	atomic_fetch_sub_explicit(&ch->attached, 1, memory_order_relaxed);
	bool owns = p->owns_channel;
	free(p);
	if (owns)
		takt_channel_close(ch);
}

unsigned takt_producer_lane(const takt_producer *p)
{
	return p->lane;
}

takt_channel *takt_producer_channel(takt_producer *p)
{
	return p->ch;
}

void takt_producer_set_spin_ns(takt_producer *p, uint32_t spin_ns)
{
	p->spin_ns = spin_ns;
}

/* Room for one record of len bytes at the tail: its position and padding. */
static inline int plan_one(takt_producer *p, size_t len, uint64_t *pos, uint64_t *pad)
{
	struct takt_lane_tx *tx = &p->tx;
	if (TAKT_UNLIKELY(tx->broken))
		return -EBADMSG;
	if (TAKT_UNLIKELY(len > tx->max_record))
		return -EMSGSIZE;
	uint64_t rec = takt_rec_size(len);
	*pad = takt_lane_pad_before(tx, tx->tail, rec);
	*pos = tx->tail + *pad;
	int rc = takt_lane_tx_room(tx, *pos + rec);
	if (TAKT_UNLIKELY(rc == -EAGAIN))
		takt_lane_tx_count_full(tx);
	return rc;
}

/* Publish the record at pos (after pad bytes of padding), whose following
 * commit word the caller has zeroed, and wake a parked consumer. */
static inline void publish_one(takt_producer *p, uint64_t pos, uint64_t pad, uint32_t len,
			       uint32_t type)
{
	struct takt_lane_tx *tx = &p->tx;
	takt_lane_tx_header(tx, pos, len, type);
	uint64_t first = takt_rec_word(pos);
	if (TAKT_UNLIKELY(pad)) {
		/* The record is committed now and the padding, first in the
		 * ring, last: the consumer meets the padding first. */
		atomic_store_explicit(&takt_rec_at(tx->data, tx->mask, pos)->commit, first,
				      memory_order_relaxed);
		TAKT_FAULT_POINT(TAKT_FP_TX_EARLY_COMMIT);
		first = takt_pad_word(tx->tail);
	}
	takt_lane_tx_publish_zeroed(tx, pos + takt_rec_size(len), first, 1, len);
	takt_producer_ring(p);
	TAKT_FAULT_POINT(TAKT_FP_TX_RUNG);
}

/* Every case of takt_try_send (the fast path below handles the common one). */
static __attribute__((noinline)) int send_general(takt_producer *p, uint32_t type,
						  const void *data, size_t len)
{
	if (TAKT_UNLIKELY(!type_ok(type)))
		return -EINVAL;
	uint64_t pos, pad;
	int rc = plan_one(p, len, &pos, &pad);
	if (TAKT_UNLIKELY(rc < 0))
		return rc;
	p->reserved = false; /* a send replaces an uncommitted reservation */
	/* The record's lines are written from its end down to its commit word,
	 * each once: the next record's zeroed commit word, the payload (stored
	 * from its end: takt_copy), the header, the commit.  A consumer that
	 * pulls a line it will read (takt_lane_rx_touch_next) while we write
	 * then never makes us fetch that line back. */
	takt_lane_tx_zero_next(&p->tx, pos + takt_rec_size(len));
	takt_copy(p->tx.data + (pos & p->tx.mask) + TAKT_REC_HEADER, data, len);
	TAKT_FAULT_POINT(TAKT_FP_TX_PAYLOAD);
	publish_one(p, pos, pad, (uint32_t)len, type);
	return 0;
}

/* The fast path's rare last step, out of line: wake the parked consumer. */
static __attribute__((noinline)) int wake_consumer(takt_producer *p)
{
	takt_doorbell_post(&p->wake_consumer);
	TAKT_FAULT_POINT(TAKT_FP_TX_RUNG);
	return 0;
}

/*
 * The common case -- a valid record of at most TAKT_COPY_INLINE_MAX bytes
 * that fits before the end of the data area, with room by the cached head
 * -- in straight-line code that calls nothing (but for the rare post, a
 * tail call): the compiler then saves no registers, and a send of a
 * 64-byte record is about half the instructions of the general path.
 * Every other case (an error, padding, a stale cached head, a long record,
 * a broken lane) goes to send_general, which decides everything afresh.
 * The steps and their order are publish_one's; the protocol is lane.h's.
 */
int takt_try_send(takt_producer *p, uint32_t type, const void *data, size_t len)
{
	struct takt_lane_tx *tx = &p->tx;
	if (TAKT_UNLIKELY(!type_ok(type) || tx->broken || len > TAKT_COPY_INLINE_MAX ||
			  len > tx->max_record))
		return send_general(p, type, data, len);
	uint64_t pos = tx->tail, end = pos + takt_rec_size(len);
	if (TAKT_UNLIKELY(!takt_lane_fits_before_end(tx, pos, end - pos)))
		return send_general(p, type, data, len); /* padding first */
	int room = takt_lane_tx_room_cached(tx, end);
	if (TAKT_UNLIKELY(room != 0)) {
		if (room > 0)
			return send_general(p, type, data, len); /* the head moved: refresh */
		takt_lane_tx_count_full(tx);
		return -EAGAIN;
	}
	p->reserved = false; /* a send replaces an uncommitted reservation */
	/* every private field read before the first shared store */
	struct takt_rec_header *rec = takt_rec_at(tx->data, tx->mask, pos);
	struct takt_rec_header *next = takt_rec_at(tx->data, tx->mask, end);
	struct takt_lane_tx_pub pub = takt_lane_tx_plan(tx, end, takt_rec_word(pos), 1, len);
	/* lines from the record's end down (see send_general) */
	takt_rec_zero_commit(next);
	takt_copy_small((uint8_t *)rec + TAKT_REC_HEADER, data, len);
	TAKT_FAULT_POINT(TAKT_FP_TX_PAYLOAD);
	takt_rec_set_header(rec, (uint32_t)len, type);
	takt_lane_tx_store(&pub);
	if (TAKT_UNLIKELY(takt_producer_must_wake(p)))
		return wake_consumer(p);
	TAKT_FAULT_POINT(TAKT_FP_TX_RUNG);
	return 0;
}

int takt_reserve(takt_producer *p, size_t len, void **data)
{
	if (!data)
		return -EINVAL;
	uint64_t pos, pad;
	int rc = plan_one(p, len, &pos, &pad);
	if (rc < 0)
		return rc;
	p->reserved = true;
	p->res_pos = pos;
	p->res_pad = pad;
	p->res_len = (uint32_t)len;
	*data = p->tx.data + (pos & p->tx.mask) + TAKT_REC_HEADER;
	return 0;
}

int takt_commit(takt_producer *p, uint32_t type, size_t len)
{
	if (!p->reserved)
		return -EALREADY;
	if (len > p->res_len)
		return -EMSGSIZE;
	if (!type_ok(type))
		return -EINVAL;
	if (p->tx.broken)
		return -EBADMSG;
	TAKT_FAULT_POINT(TAKT_FP_TX_COMMIT_CALL);
	p->reserved = false;
	takt_lane_tx_zero_next(&p->tx, p->res_pos + takt_rec_size(len));
	publish_one(p, p->res_pos, p->res_pad, (uint32_t)len, type);
	return 0;
}

int takt_try_send_batch(takt_producer *p, const struct takt_msg *msgs, unsigned n)
{
	struct takt_lane_tx *tx = &p->tx;
	if (n == 0)
		return -EINVAL;
	if (TAKT_UNLIKELY(tx->broken))
		return -EBADMSG;
	/* Plan: how many records fit, and where the batch ends. */
	uint64_t end = tx->tail, bytes = 0;
	unsigned count = 0;
	for (; count < n; count++) {
		const struct takt_msg *m = &msgs[count];
		if (!type_ok(m->type) || m->len > tx->max_record) {
			if (count == 0)
				return !type_ok(m->type) ? -EINVAL : -EMSGSIZE;
			break;
		}
		uint64_t rec = takt_rec_size(m->len);
		uint64_t at = end + takt_lane_pad_before(tx, end, rec);
		int rc = takt_lane_tx_room(tx, at + rec);
		if (rc == -EBADMSG)
			return rc;
		if (rc == -EAGAIN)
			break;
		end = at + rec;
		bytes += m->len;
	}
	if (count == 0) {
		takt_lane_tx_count_full(tx);
		return -EAGAIN;
	}
	p->reserved = false;
	/* Write every record; store every commit word but the first. */
	uint64_t cur = tx->tail, first = 0;
	for (unsigned i = 0; i < count; i++) {
		const struct takt_msg *m = &msgs[i];
		uint64_t rec = takt_rec_size(m->len);
		uint64_t pad = takt_lane_pad_before(tx, cur, rec);
		if (pad) {
			if (cur == tx->tail)
				first = takt_pad_word(cur);
			else {
				atomic_store_explicit(&takt_rec_at(tx->data, tx->mask, cur)->commit,
						      takt_pad_word(cur), memory_order_relaxed);
				TAKT_FAULT_POINT(TAKT_FP_TX_EARLY_COMMIT);
			}
			cur += pad;
		}
		if (m->len)
			takt_copy(tx->data + (cur & tx->mask) + TAKT_REC_HEADER, m->data, m->len);
		TAKT_FAULT_POINT(TAKT_FP_TX_PAYLOAD);
		takt_lane_tx_header(tx, cur, m->len, m->type);
		if (cur == tx->tail) {
			first = takt_rec_word(cur);
		} else {
			atomic_store_explicit(&takt_rec_at(tx->data, tx->mask, cur)->commit,
					      takt_rec_word(cur), memory_order_relaxed);
			TAKT_FAULT_POINT(TAKT_FP_TX_EARLY_COMMIT);
		}
		cur += rec;
	}
	takt_lane_tx_publish(tx, end, first, count, bytes);
	takt_producer_ring(p);
	TAKT_FAULT_POINT(TAKT_FP_TX_RUNG);
	return (int)count;
}

/* For blocking sends: is there room for a record of len bytes now? */
bool takt_producer_has_room(takt_producer *p, size_t len)
{
	struct takt_lane_tx *tx = &p->tx;
	if (tx->broken || len > tx->max_record)
		return true; /* let the send report the error */
	return takt_lane_tx_room(tx, takt_lane_tx_end_of(tx, tx->tail, len)) != -EAGAIN;
}

bool takt_producer_has_room_parking(takt_producer *p, size_t len)
{
	if (takt_producer_has_room(p, len))
		return true;
	struct takt_lane_tx *tx = &p->tx;
	return takt_lane_tx_claim_consumed(tx, takt_lane_tx_end_of(tx, tx->tail, len)) != -EAGAIN;
}

/* The same from shared state only (the published tail and head), for a
 * thread other than the handle's owner: takt_wait_writable. */
bool takt_producer_has_room_shared(takt_producer *p, size_t len)
{
	struct takt_lane_tx *tx = &p->tx; /* immutable fields and broken_shared */
	/* The owner's verdict, not the segment's display flag (see
	 * takt_lane_tx.broken_shared): a flag some consumer once set made this
	 * answer "room" forever while the owner's send said -EAGAIN. */
	if (atomic_load_explicit(&tx->broken_shared, memory_order_relaxed) || len > tx->max_record)
		return true; /* let the owner's send report it */
	uint64_t tail = atomic_load_explicit(&tx->ctrl->tail, memory_order_relaxed);
	uint64_t head = atomic_load_explicit(&tx->ctrl->head, memory_order_acquire);
	return takt_lane_tx_fits(tx, takt_lane_tx_end_of(tx, tail, len), head);
}

bool takt_producer_has_room_shared_parking(takt_producer *p, size_t len)
{
	if (takt_producer_has_room_shared(p, len))
		return true;
	struct takt_lane_tx *tx = &p->tx;
	uint64_t tail = atomic_load_explicit(&tx->ctrl->tail, memory_order_relaxed);
	/* relaxed: only compared here; the owner acquires it when it claims */
	uint64_t pos = atomic_load_explicit(&tx->ctrl->consumed, memory_order_relaxed);
	if (pos > tail || !takt_lane_tx_fits(tx, takt_lane_tx_end_of(tx, tail, len), pos))
		return false; /* no room, or a value the owner's claim will judge */
	atomic_store_explicit(&tx->claim_wanted, 1, memory_order_relaxed);
	return true;
}
