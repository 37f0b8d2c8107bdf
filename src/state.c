/* SPDX-License-Identifier: MIT */
/*
 * state.c - state channels: the newest image of a process image, from one
 * writer to one reader, through a triple buffer in the segment.
 *
 * THE PROTOCOL
 * Three slots: one is the writer's, one the reader's, one the "middle",
 * which holds the newest published image.  The word `middle` holds the
 * middle's index and a NEW bit.
 *   writer: fill its slot; store the slot's generation, time and length;
 *           exchange(middle, its slot | NEW) -> the old middle is its new slot.
 *   reader: if NEW is set, exchange(middle, its slot) -> the old middle is
 *           its new slot (NEW cleared); then read its own slot.
 * One exchange each: wait-free both ways, no system call.  Nobody writes a
 * slot that is the middle or the reader's, so the reader never sees a torn
 * image, and a writer killed at any instruction leaves the middle holding
 * either the previous image or the new one, complete.
 *
 * MEMORY ORDERS
 *  - writer's exchange, acq_rel: release publishes the image and its slot
 *    header; acquire orders the reader's reads of the slot it gave back
 *    (before its own release exchange) before our overwriting of it.
 *  - reader's exchange, acq_rel: the mirror image of the above.
 *  - slot header fields, the owner indices and counters: relaxed; ordered
 *    by the exchanges or only statistics.
 *
 * RECOVERY
 * The indices the writer and reader own are private, but each also stores
 * its index in its own block: before every exchange it marks the stored
 * index MOVING (release-ordered before the exchange by the exchange
 * itself), after it stores the slot it got.  An opener (holding the
 * recovery lock byte, so two openers never race) takes the slot that is
 * neither the middle nor the other side's stored index.  A stored index
 * without MOVING is the other side's slot at the time it is read: if the
 * middle read before it had changed since, the other side exchanged in
 * between and its index equals the middle now or was MOVING.  (Without the
 * mark a stored index could stay stale across the *peer's* exchanges: the
 * writer preempted between its exchange and its store while the reader
 * takes the slot the stale index names, dies, and a new reader takes the
 * writer's slot.)  MOVING, or an index equal to the middle: if the other
 * side is alive the opener waits (bounded), if it is dead any non-middle
 * slot is free.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fault.h"
#include "internal.h"

#define TAKT_RECOVERY_WAIT_NS 1000000000ull /* bound on waiting for a peer's store */

struct state_view {
	takt_channel *ch;
	bool owns_channel;
	bool broken;
	struct takt_seg_state *st;
	uint8_t *slots;
	uint64_t stride;
	uint32_t image_size;
	unsigned slot;          /* the slot this side owns */
};

struct takt_state_writer {
	struct state_view v;
	uint64_t generation;    /* publish count; private truth */
	struct takt_doorbell wake_reader;
};

struct takt_state_reader {
	struct state_view v;
	uint64_t last_generation;
	uint64_t reads;
	bool sync;              /* take the middle at the next read, NEW or not */
	uint32_t spin_ns;
	struct takt_doorbell bell;
};

static struct takt_seg_state_slot *slot_header(const struct state_view *v, unsigned k)
{
	return (struct takt_seg_state_slot *)(v->slots + (uint64_t)k * v->stride);
}

static uint64_t slot_generation(const struct state_view *v, unsigned k)
{
	return atomic_load_explicit(&slot_header(v, k)->generation, memory_order_relaxed);
}

/*
 * The writer zeroes the generation of the slot it just took before it
 * writes anything into it, so a monitor copying that slot without owning it
 * (takt_state_snapshot) sees the generation change under its copy and
 * retries: a seqlock on each slot.  release fence: the zero is visible
 * before any of the writes that follow.  Generation 0 never names a
 * published image, and neither the middle nor the reader's slot is ever
 * the writer's, so readers are unaffected.
 */
static void mark_rewriting(struct state_view *v, unsigned k)
{
	atomic_store_explicit(&slot_header(v, k)->generation, 0, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
}

static uint8_t *slot_data(const struct state_view *v, unsigned k)
{
	return v->slots + (uint64_t)k * v->stride + TAKT_STATE_SLOT_HEADER;
}

static void view_init(struct state_view *v, takt_channel *ch)
{
	v->ch = ch;
	v->st = (struct takt_seg_state *)(ch->base + TAKT_CONSUMER_OFFSET);
	v->slots = ch->base + TAKT_LANES_OFFSET;
	v->stride = ch->geo.capacity;
	v->image_size = ch->geo.max_record;
}

static void pause_briefly(void)
{
	struct timespec ts = {0, 50000};
	nanosleep(&ts, NULL);
}

/* Take the recovery lock byte (bounded wait: a peer holds it only while it
 * opens; a hostile holder costs us the bound). */
static int recovery_lock(takt_channel *ch)
{
	uint64_t deadline = takt_now_ns() + TAKT_RECOVERY_WAIT_NS;
	for (;;) {
		int rc = takt_slot_acquire(ch, TAKT_SLOT_RECOVERY);
		if (rc != -EBUSY)
			return rc;
		if (takt_now_ns() >= deadline)
			return -EBUSY;
		pause_briefly();
	}
}

/*
 * Pick this side's slot: neither the middle nor the other side's.  other_idx
 * is the other side's stored index, other_slot its liveness slot.
 */
static int recover_slot(struct state_view *v, takt_a32 *other_idx, unsigned other_slot,
			unsigned *out)
{
	uint64_t deadline = takt_now_ns() + TAKT_RECOVERY_WAIT_NS;
	for (;;) {
		unsigned m = (unsigned)(atomic_load_explicit(&v->st->middle, memory_order_acquire) &
					TAKT_STATE_MIDDLE_MASK);
		unsigned o = atomic_load_explicit(other_idx, memory_order_acquire);
		bool moving = o & TAKT_STATE_SLOT_MOVING;
		if (moving)
			o &= ~TAKT_STATE_SLOT_MOVING;
		if (m > 2 || o > 2)
			return -EBADMSG;
		if (o != m && !moving) {
			*out = 3 - m - o;
			return 0;
		}
		int alive = takt_slot_alive(v->ch, other_slot);
		if (alive < 0)
			return alive;
		if (!alive) {
			*out = (m + 1) % 3; /* the other side died mid-exchange: both others are free */
			return 0;
		}
		if (takt_now_ns() >= deadline)
			return -EBUSY;
		pause_briefly();
	}
}

static int check_kind(takt_channel *ch)
{
	if (!ch)
		return -EINVAL;
	if (ch->geo.kind != TAKT_KIND_STATE)
		return -EPROTOTYPE;
	if (ch->flags & TAKT_OPEN_RDONLY)
		return -EACCES;
	return 0;
}

int takt_state_writer_attach(takt_channel *ch, takt_state_writer **out)
{
	int rc = check_kind(ch);
	if (rc < 0 || !out)
		return rc < 0 ? rc : -EINVAL;
	takt_state_writer *w = calloc(1, sizeof *w);
	if (!w)
		return -ENOMEM;
	view_init(&w->v, ch);
	rc = takt_slot_acquire(ch, TAKT_SLOT_LANE(0));
	if (rc < 0)
		goto fail_free;
	rc = recovery_lock(ch);
	if (rc < 0)
		goto fail_slot;
	rc = recover_slot(&w->v, &w->v.st->reader_slot, TAKT_SLOT_CONSUMER, &w->v.slot);
	if (rc == 0)
		atomic_store_explicit(&w->v.st->writer_slot, w->v.slot, memory_order_release);
	takt_slot_release(ch, TAKT_SLOT_RECOVERY);
	if (rc < 0)
		goto fail_slot;
	/* Continue after the newest generation published: `writes` lags it by
	 * one if the last writer died between its exchange and its store, so
	 * also look at the slots it may have published (not the one we own
	 * now: it may hold a generation that was never published). */
	w->generation = atomic_load_explicit(&w->v.st->writes, memory_order_relaxed);
	for (unsigned k = 0; k < 3; k++) {
		uint64_t g = slot_generation(&w->v, k);
		if (k != w->v.slot && g > w->generation)
			w->generation = g;
	}
	atomic_store_explicit(&w->v.st->writes, w->generation, memory_order_relaxed);
	mark_rewriting(&w->v, w->v.slot);
	char sem_name[TAKT_OBJ_NAME_MAX];
	takt_rx_sem_name(sem_name, ch->name);
	rc = takt_sem_open(sem_name, &w->wake_reader.sem);
	if (rc < 0)
		goto fail_slot;
	w->wake_reader.word = &w->v.st->rx_doorbell;
	atomic_store_explicit(&w->v.st->writer_pid, (uint32_t)getpid(), memory_order_relaxed);
	atomic_store_explicit(&w->v.st->writer_start_time, takt_self_start_time(), memory_order_relaxed);
	atomic_fetch_add_explicit(&w->v.st->writer_epoch, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&ch->attached, 1, memory_order_relaxed);
	*out = w;
	return 0;
fail_slot:
	takt_slot_release(ch, TAKT_SLOT_LANE(0));
fail_free:
	free(w);
	return rc;
}

int takt_state_reader_attach(takt_channel *ch, takt_state_reader **out)
{
	int rc = check_kind(ch);
	if (rc < 0 || !out)
		return rc < 0 ? rc : -EINVAL;
	takt_state_reader *r = calloc(1, sizeof *r);
	if (!r)
		return -ENOMEM;
	view_init(&r->v, ch);
	r->spin_ns = 20000;
	rc = takt_slot_acquire(ch, TAKT_SLOT_CONSUMER);
	if (rc < 0)
		goto fail_free;
	rc = recovery_lock(ch);
	if (rc < 0)
		goto fail_slot;
	rc = recover_slot(&r->v, &r->v.st->writer_slot, TAKT_SLOT_LANE(0), &r->v.slot);
	if (rc == 0)
		atomic_store_explicit(&r->v.st->reader_slot, r->v.slot, memory_order_release);
	takt_slot_release(ch, TAKT_SLOT_RECOVERY);
	if (rc < 0)
		goto fail_slot;
	r->sync = true; /* our slot may be older than the middle: take the middle first */
	r->reads = atomic_load_explicit(&r->v.st->reads, memory_order_relaxed);
	char sem_name[TAKT_OBJ_NAME_MAX];
	takt_rx_sem_name(sem_name, ch->name);
	rc = takt_sem_open(sem_name, &r->bell.sem);
	if (rc < 0)
		goto fail_slot;
	r->bell.word = &r->v.st->rx_doorbell;
	atomic_store_explicit(&r->v.st->reader_pid, (uint32_t)getpid(), memory_order_relaxed);
	atomic_store_explicit(&r->v.st->reader_start_time, takt_self_start_time(), memory_order_relaxed);
	atomic_store_explicit(&r->v.st->reader_last_ns, takt_coarse_ns(), memory_order_relaxed);
	atomic_fetch_add_explicit(&r->v.st->reader_epoch, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&ch->attached, 1, memory_order_relaxed);
	*out = r;
	return 0;
fail_slot:
	takt_slot_release(ch, TAKT_SLOT_CONSUMER);
fail_free:
	free(r);
	return rc;
}

int takt_state_writer_open(const char *name, takt_state_writer **out)
{
	takt_channel *ch;
	int rc = takt_channel_open(name, 0, &ch);
	if (rc < 0)
		return rc;
	rc = takt_state_writer_attach(ch, out);
	if (rc < 0) {
		takt_channel_close(ch);
		return rc;
	}
	(*out)->v.owns_channel = true;
	return 0;
}

int takt_state_reader_open(const char *name, takt_state_reader **out)
{
	takt_channel *ch;
	int rc = takt_channel_open(name, 0, &ch);
	if (rc < 0)
		return rc;
	rc = takt_state_reader_attach(ch, out);
	if (rc < 0) {
		takt_channel_close(ch);
		return rc;
	}
	(*out)->v.owns_channel = true;
	return 0;
}

static void view_close(struct state_view *v, unsigned slot)
{
	takt_channel *ch = v->ch;
	takt_slot_release(ch, slot);
	atomic_fetch_sub_explicit(&ch->attached, 1, memory_order_relaxed);
	if (v->owns_channel)
		takt_channel_close(ch);
}

void takt_state_writer_close(takt_state_writer *w)
{
	if (!w)
		return;
	takt_sem_close(w->wake_reader.sem);
	struct state_view v = w->v;
	free(w);
	view_close(&v, TAKT_SLOT_LANE(0));
}

void takt_state_reader_close(takt_state_reader *r)
{
	if (!r)
		return;
	takt_sem_close(r->bell.sem);
	struct state_view v = r->v;
	free(r);
	view_close(&v, TAKT_SLOT_CONSUMER);
}

void *takt_state_buffer(takt_state_writer *w)
{
	return slot_data(&w->v, w->v.slot);
}

int takt_state_publish(takt_state_writer *w, size_t len)
{
	struct state_view *v = &w->v;
	if (TAKT_UNLIKELY(v->broken))
		return -EBADMSG;
	if (TAKT_UNLIKELY(len > v->image_size))
		return -EMSGSIZE;
	uint64_t now = takt_now_ns();
	struct takt_seg_state_slot *h = slot_header(v, v->slot);
	atomic_store_explicit(&h->generation, w->generation + 1, memory_order_relaxed);
	atomic_store_explicit(&h->written_ns, now, memory_order_relaxed);
	atomic_store_explicit(&h->len, (uint32_t)len, memory_order_relaxed);
	/* relaxed: the exchange's release orders it before the exchange (RECOVERY) */
	atomic_store_explicit(&v->st->writer_slot, v->slot | TAKT_STATE_SLOT_MOVING,
			      memory_order_relaxed);
	TAKT_FAULT_POINT(20);
	/* acq_rel: see MEMORY ORDERS above */
	uint64_t old = atomic_exchange_explicit(&v->st->middle, v->slot | TAKT_STATE_NEW,
						memory_order_acq_rel);
	TAKT_FAULT_POINT(21);
	unsigned got = (unsigned)(old & TAKT_STATE_MIDDLE_MASK);
	w->generation++;
	atomic_store_explicit(&v->st->writes, w->generation, memory_order_relaxed);
	atomic_store_explicit(&v->st->writer_last_ns, now, memory_order_relaxed);
	if (TAKT_UNLIKELY(got > 2 || got == v->slot)) {
		/* the published image is out; but the slot handed back is not one
		 * we may own: stop writing rather than tear the reader's */
		v->broken = true;
		return -EBADMSG;
	}
	v->slot = got;
	atomic_store_explicit(&v->st->writer_slot, got, memory_order_relaxed);
	mark_rewriting(v, got);
	TAKT_FAULT_POINT(22);
	takt_doorbell_ring(&w->wake_reader);
	return 0;
}

int takt_state_write(takt_state_writer *w, const void *image, size_t len)
{
	if (TAKT_UNLIKELY(len > w->v.image_size))
		return -EMSGSIZE;
	if (TAKT_UNLIKELY(w->v.broken))
		return -EBADMSG;
	if (len)
		memcpy(slot_data(&w->v, w->v.slot), image, len);
	return takt_state_publish(w, len);
}

/*
 * Does the middle hold a newer image than our own slot?  Set NEW says so.
 * Without NEW it can still be true right after we opened: our slot is the
 * dead reader's, which may be older than the middle (or newer: it may have
 * taken the newest image just before it died).  The generations decide;
 * reading the middle's header races only with the writer exchanging it
 * away, after which NEW is set and the next read takes the newer image.
 */
static bool middle_is_newer(const struct state_view *v, uint64_t word)
{
	if (word & TAKT_STATE_NEW)
		return true;
	unsigned m = (unsigned)(word & TAKT_STATE_MIDDLE_MASK);
	return m <= 2 && m != v->slot && slot_generation(v, m) > slot_generation(v, v->slot);
}

/*
 * Start fetching the slot we are about to take (the middle, named in the
 * word we just read) so that its header and the start of its image travel
 * while our exchange waits for the middle's line, not after it.  A prefetch
 * is a hint: it orders nothing and cannot fault; m <= 2 was checked, and
 * the addresses lie inside that slot.
 */
static void prefetch_slot(const struct state_view *v, unsigned m)
{
	const uint8_t *slot = v->slots + (uint64_t)m * v->stride;
	uint64_t end = TAKT_STATE_SLOT_HEADER + v->image_size;
	if (end > TAKT_STATE_SLOT_HEADER + 4 * TAKT_CACHE_LINE)
		end = TAKT_STATE_SLOT_HEADER + 4 * TAKT_CACHE_LINE; /* the rest streams in behind */
	__builtin_prefetch(slot, 0, 3);
	for (uint64_t off = TAKT_STATE_SLOT_HEADER; off < end; off += TAKT_CACHE_LINE)
		__builtin_prefetch(slot + off, 0, 3);
}

/* Take the newest image into our slot; fill info; return its length, or
 * -EMSGSIZE when it is larger than cap (then it is not marked as read). */
static int take_newest(takt_state_reader *r, struct takt_state_info *info, size_t cap)
{
	struct state_view *v = &r->v;
	if (TAKT_UNLIKELY(v->broken))
		return -EBADMSG;
	uint64_t word = atomic_load_explicit(&v->st->middle, memory_order_relaxed);
	if (TAKT_UNLIKELY((word & TAKT_STATE_MIDDLE_MASK) > 2)) {
		v->broken = true; /* no such slot: the triple buffer is corrupted */
		return -EBADMSG;
	}
	if ((word & TAKT_STATE_NEW) || (r->sync && middle_is_newer(v, word))) {
		prefetch_slot(v, (unsigned)(word & TAKT_STATE_MIDDLE_MASK));
		/* relaxed: ordered before the exchange by its release (RECOVERY) */
		atomic_store_explicit(&v->st->reader_slot, v->slot | TAKT_STATE_SLOT_MOVING,
				      memory_order_relaxed);
		/* acq_rel: see MEMORY ORDERS above */
		uint64_t old = atomic_exchange_explicit(&v->st->middle, v->slot, memory_order_acq_rel);
		unsigned got = (unsigned)(old & TAKT_STATE_MIDDLE_MASK);
		if (TAKT_UNLIKELY(got > 2 || got == v->slot)) {
			v->broken = true;
			return -EBADMSG;
		}
		v->slot = got;
		atomic_store_explicit(&v->st->reader_slot, got, memory_order_relaxed);
	}
	r->sync = false;
	struct takt_seg_state_slot *h = slot_header(v, v->slot);
	/* acquire: if the image came from an exchange earlier than ours (a dead
	 * reader's), this pairs with the release of the writer's exchange
	 * through the slot header store order */
	uint64_t gen = atomic_load_explicit(&h->generation, memory_order_acquire);
	uint64_t written = atomic_load_explicit(&h->written_ns, memory_order_relaxed);
	uint32_t len = atomic_load_explicit(&h->len, memory_order_relaxed);
	if (gen == 0)
		return -EAGAIN; /* nothing published yet */
	if (TAKT_UNLIKELY(len > v->image_size)) {
		v->broken = true;
		return -EBADMSG;
	}
	bool fresh = gen != r->last_generation;
	if (info) {
		uint64_t now = takt_now_ns();
		info->generation = gen;
		info->written_ns = written;
		info->age_ns = now > written ? now - written : 0;
		info->len = len;
		info->fresh = fresh;
	}
	if (len > cap)
		return -EMSGSIZE; /* not read: it stays fresh for the retry */
	if (fresh) {
		r->last_generation = gen;
		r->reads++;
		atomic_store_explicit(&v->st->reads, r->reads, memory_order_relaxed);
		atomic_store_explicit(&v->st->reader_last_ns, takt_coarse_ns(), memory_order_relaxed);
	}
	return (int)len;
}

int takt_state_read(takt_state_reader *r, void *buf, size_t cap, struct takt_state_info *info)
{
	int len = take_newest(r, info, cap);
	if (len < 0)
		return len;
	memcpy(buf, slot_data(&r->v, r->v.slot), (size_t)len);
	return len;
}

int takt_state_peek(takt_state_reader *r, const void **image, struct takt_state_info *info)
{
	int len = take_newest(r, info, SIZE_MAX);
	if (len >= 0)
		*image = slot_data(&r->v, r->v.slot);
	return len;
}

/* Is an image newer than the last one this reader read available?  Either
 * the middle holds an unread one (NEW), or (after an open, or a read refused
 * with -EMSGSIZE) our own slot or the middle holds a generation above it. */
static bool newer_ready(void *arg)
{
	takt_state_reader *r = arg;
	uint64_t word = atomic_load_explicit(&r->v.st->middle, memory_order_acquire);
	if (word & TAKT_STATE_NEW)
		return true;
	uint64_t newest = slot_generation(&r->v, r->v.slot);
	unsigned m = (unsigned)(word & TAKT_STATE_MIDDLE_MASK);
	if (m <= 2 && slot_generation(&r->v, m) > newest)
		newest = slot_generation(&r->v, m);
	return newest > r->last_generation;
}

int takt_state_wait_newer(takt_state_reader *r, uint64_t deadline_ns)
{
	for (;;) {
		if (newer_ready(r))
			return 0;
		if (deadline_ns == TAKT_NO_WAIT || takt_now_ns() >= deadline_ns)
			return -ETIMEDOUT;
		if (takt_spin_until(newer_ready, r, r->spin_ns, deadline_ns))
			return 0;
		int rc = takt_doorbell_wait(&r->bell, newer_ready, r, deadline_ns);
		if (rc < 0)
			return newer_ready(r) ? 0 : rc;
	}
}

int takt_state_stats_get(takt_channel *ch, struct takt_state_stats *out)
{
	if (!ch || !out)
		return -EINVAL;
	if (ch->geo.kind != TAKT_KIND_STATE)
		return -EPROTOTYPE;
	struct takt_seg_state *st = (struct takt_seg_state *)(ch->base + TAKT_CONSUMER_OFFSET);
	int writer = takt_slot_alive(ch, TAKT_SLOT_LANE(0));
	int reader = takt_slot_alive(ch, TAKT_SLOT_CONSUMER);
	if (writer < 0 || reader < 0)
		return writer < 0 ? writer : reader;
	*out = (struct takt_state_stats){
		.writes = atomic_load_explicit(&st->writes, memory_order_relaxed),
		.reads = atomic_load_explicit(&st->reads, memory_order_relaxed),
		.writer_last_ns = atomic_load_explicit(&st->writer_last_ns, memory_order_relaxed),
		.reader_last_ns = atomic_load_explicit(&st->reader_last_ns, memory_order_relaxed),
		.writer_start = atomic_load_explicit(&st->writer_start_time, memory_order_relaxed),
		.reader_start = atomic_load_explicit(&st->reader_start_time, memory_order_relaxed),
		.writer_pid = (int32_t)atomic_load_explicit(&st->writer_pid, memory_order_relaxed),
		.reader_pid = (int32_t)atomic_load_explicit(&st->reader_pid, memory_order_relaxed),
		.writer_alive = (uint32_t)writer,
		.reader_alive = (uint32_t)reader,
		.image_size = ch->geo.max_record,
	};
	return 0;
}

int takt_state_watch_writer(takt_state_reader *r, uint64_t period_ns, struct takt_peer_watch *out)
{
	if (!r || !out)
		return -EINVAL;
	/* One fcntl (F_OFD_GETLK) per call: the kernel's word on liveness.  A
	 * cyclic task that wants no system call per cycle watches every Nth
	 * cycle; the age and stale flag need only the segment. */
	int alive = takt_slot_alive(r->v.ch, TAKT_SLOT_LANE(0));
	if (alive < 0)
		return alive;
	uint64_t last = atomic_load_explicit(&r->v.st->writer_last_ns, memory_order_relaxed);
	uint64_t now = takt_now_ns();
	out->age_ns = (last && now > last) ? now - last : (last ? 0 : UINT64_MAX);
	uint64_t limit = period_ns > UINT64_MAX / 2 ? UINT64_MAX : 2 * period_ns;
	out->alive = (uint32_t)alive;
	out->stale = !alive || out->age_ns > limit;
	return 0;
}

void takt_state_reader_set_spin_ns(takt_state_reader *r, uint32_t spin_ns)
{
	r->spin_ns = spin_ns;
}

takt_channel *takt_state_writer_channel(takt_state_writer *w)
{
	return w->v.ch;
}

takt_channel *takt_state_reader_channel(takt_state_reader *r)
{
	return r->v.ch;
}

#define TAKT_SNAPSHOT_TRIES 8

int takt_state_snapshot(takt_channel *ch, void *buf, size_t cap, struct takt_state_info *info)
{
	if (!ch || !buf)
		return -EINVAL;
	if (ch->geo.kind != TAKT_KIND_STATE)
		return -EPROTOTYPE;
	struct state_view v;
	memset(&v, 0, sizeof v);
	view_init(&v, ch);
	for (int attempt = 0; attempt < TAKT_SNAPSHOT_TRIES; attempt++) {
		/* The newest image is in the middle or, once the reader has
		 * taken it, in the reader's slot: take the higher generation. */
		uint64_t word = atomic_load_explicit(&v.st->middle, memory_order_acquire);
		unsigned m = (unsigned)(word & TAKT_STATE_MIDDLE_MASK);
		unsigned r = atomic_load_explicit(&v.st->reader_slot, memory_order_acquire);
		if (m > 2)
			return -EBADMSG;
		unsigned k = m;
		if (r <= 2 && r != m && slot_generation(&v, r) > slot_generation(&v, m))
			k = r;
		struct takt_seg_state_slot *h = slot_header(&v, k);
		/* acquire: pairs with the writer's release (exchange, or the
		 * fence after zeroing the generation) */
		uint64_t gen = atomic_load_explicit(&h->generation, memory_order_acquire);
		uint64_t written = atomic_load_explicit(&h->written_ns, memory_order_relaxed);
		uint32_t len = atomic_load_explicit(&h->len, memory_order_relaxed);
		if (gen == 0) {
			if (atomic_load_explicit(&v.st->writes, memory_order_relaxed) == 0)
				return -EAGAIN; /* nothing published yet */
			continue;           /* being rewritten: look again */
		}
		if (len > v.image_size)
			continue;
		if (len > cap) {
			if (info)
				info->len = len;
			return -EMSGSIZE;
		}
		memcpy(buf, slot_data(&v, k), len);
		/* acquire fence: the copy is complete before the re-check.  The
		 * writer zeroes a slot's generation before it writes into it and
		 * gives it a new one when it publishes it, so an unchanged
		 * generation means nobody wrote the slot during the copy. */
		atomic_thread_fence(memory_order_acquire);
		if (atomic_load_explicit(&h->generation, memory_order_relaxed) != gen)
			continue;
		if (info) {
			uint64_t now = takt_now_ns();
			info->generation = gen;
			info->written_ns = written;
			info->age_ns = now > written ? now - written : 0;
			info->len = len;
			info->fresh = 1;
		}
		return (int)len;
	}
	return -EAGAIN;
}
