/* SPDX-License-Identifier: MIT */
/*
 * stats.c - counters and liveness as any process sees them.  Reads only:
 * relaxed loads of lines the endpoints write, so a monitor never slows the
 * hot path beyond the cache misses its reads cause.
 */
#include <errno.h>

#include "internal.h"

#define LOAD(x) atomic_load_explicit(&(x), memory_order_relaxed)

int takt_lane_stats_get(takt_channel *ch, unsigned lane, struct takt_lane_stats *out)
{
	if (!ch || !out || lane >= ch->geo.lanes)
		return -EINVAL;
	if (ch->geo.kind != TAKT_KIND_QUEUE)
		return -EPROTOTYPE;
	struct takt_seg_lane *l = takt_lane_ctrl(ch, lane);
	int alive = takt_slot_alive(ch, TAKT_SLOT_LANE(lane));
	if (alive < 0)
		return alive;
	*out = (struct takt_lane_stats){
		.head = LOAD(l->consumed),
		.tail = LOAD(l->tail),
		.records_sent = LOAD(l->records_sent),
		.bytes_sent = LOAD(l->bytes_sent),
		.full_events = LOAD(l->full_events),
		.records_received = LOAD(l->records_received),
		.bytes_received = LOAD(l->bytes_received),
		.producer_last_ns = LOAD(l->last_ns),
		.producer_start = LOAD(l->start_time),
		.producer_pid = (int32_t)LOAD(l->pid),
		.producer_alive = (uint32_t)alive,
		.broken = LOAD(l->broken) != 0,
	};
	return 0;
}

int takt_consumer_stats_get(takt_channel *ch, struct takt_consumer_stats *out)
{
	if (!ch || !out)
		return -EINVAL;
	if (ch->geo.kind != TAKT_KIND_QUEUE)
		return -EPROTOTYPE;
	struct takt_seg_consumer *c = ch->consumer;
	int alive = takt_slot_alive(ch, TAKT_SLOT_CONSUMER);
	if (alive < 0)
		return alive;
	*out = (struct takt_consumer_stats){
		.empty_events = LOAD(c->empty_events),
		.last_ns = LOAD(c->last_ns),
		.start = LOAD(c->start_time),
		.pid = (int32_t)LOAD(c->pid),
		.alive = (uint32_t)alive,
	};
	return 0;
}
