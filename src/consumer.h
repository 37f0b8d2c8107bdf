/* SPDX-License-Identifier: MIT */
/* consumer.h - the private state behind takt_consumer. */
#ifndef TAKT_CONSUMER_H
#define TAKT_CONSUMER_H

#include "fault.h"
#include "lane.h"

#define TAKT_DEFAULT_LANE_BURST 16u

struct takt_consumer_lane {
	struct takt_lane_rx rx;
	struct takt_doorbell wake_producer;  /* this lane's space doorbell */
};

struct takt_consumer {
	unsigned lanes;
	unsigned cursor;         /* lane the round-robin visits next */
	unsigned burst_left;     /* records the cursor lane may still give */
	unsigned burst;
	unsigned broken_lanes;
	uint64_t empty_events;   /* private mirror of the segment counter */
	struct takt_seg_consumer *seg;
	bool peeked;             /* a peek awaits its release */
	unsigned peek_lane;
	uint32_t peek_len;
	uint32_t spin_ns;
	struct takt_doorbell rx_bell;        /* our receive doorbell */
	_Atomic uint32_t interrupt;          /* takt_consumer_interrupt() pending */
	takt_channel *ch;
	bool owns_channel;
	struct takt_consumer_lane lane[];
};

bool takt_consumer_has_record(takt_consumer *c);
bool takt_consumer_has_record_shared(takt_consumer *c);

#endif
