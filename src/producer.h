/* SPDX-License-Identifier: MIT */
/* producer.h - the private state behind takt_producer. */
#ifndef TAKT_PRODUCER_H
#define TAKT_PRODUCER_H

#include "fault.h"
#include "lane.h"

#define TAKT_DEFAULT_SPIN_NS 20000u

struct takt_producer {
	struct takt_lane_tx tx;              /* hot: first */
	struct takt_doorbell wake_consumer;  /* the consumer's receive doorbell */
	bool light_ring;                     /* fence-free ring (membarrier registered) */
	bool reserved;                       /* a reserve awaits its commit */
	uint32_t res_len;
	uint64_t res_pos;
	uint64_t res_pad;
	struct takt_doorbell space;          /* this lane's space doorbell */
	_Atomic uint32_t interrupt;          /* takt_producer_interrupt() pending */
	uint32_t spin_ns;
	unsigned lane;
	takt_channel *ch;
	bool owns_channel;                   /* opened by takt_producer_open */
};

bool takt_producer_has_room(takt_producer *p, size_t len);
/* The same before parking: also takes space read but not yet released. */
bool takt_producer_has_room_parking(takt_producer *p, size_t len);

/* After a publish: must a parked consumer be woken (takt_doorbell_post on
 * wake_consumer)?  internal.h has both forms of the check. */
static inline bool takt_producer_must_wake(struct takt_producer *p)
{
	if (TAKT_LIKELY(p->light_ring))
		return takt_doorbell_check_light(&p->wake_consumer);
	return takt_doorbell_check(&p->wake_consumer);
}

/* Both: wake a parked consumer if one armed the bell. */
static inline void takt_producer_ring(struct takt_producer *p)
{
	if (TAKT_UNLIKELY(takt_producer_must_wake(p)))
		takt_doorbell_post(&p->wake_consumer);
}
bool takt_producer_has_room_shared(takt_producer *p, size_t len);
/* The same around a park: space read but not released counts, and the
 * owner's next send is asked to take it (takt_lane_tx.claim_wanted). */
bool takt_producer_has_room_shared_parking(takt_producer *p, size_t len);

#endif
