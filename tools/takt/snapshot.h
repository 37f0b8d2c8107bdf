/* SPDX-License-Identifier: MIT */
/*
 * snapshot.h - one reading of a channel's configuration, lanes, consumer and
 * liveness through a read-only mapping (TAKT_OPEN_RDONLY), with the totals
 * `ls`, `info` and `stat` print.  A state channel's reading is its
 * takt_state_stats instead of lanes and consumer.
 */
#ifndef TAKT_CLI_SNAPSHOT_H
#define TAKT_CLI_SNAPSHOT_H

#include <stdbool.h>
#include <stdint.h>

#include "json.h"
#include "takt.h"

/* Channel kinds (docs/FORMAT.md: the header's `kind`; takt.h names no
 * constants for them). */
enum { CLI_KIND_QUEUE = 1, CLI_KIND_STATE = 2 };

struct snapshot {
	struct takt_channel_config cfg;
	bool is_state;                      /* cfg.kind == CLI_KIND_STATE: only `state` is valid */
	struct takt_state_stats state;
	struct takt_consumer_stats consumer;
	struct takt_lane_stats lane[TAKT_LANES_MAX];
	uint64_t lane_fill[TAKT_LANES_MAX]; /* tail - head, clamped to [0, capacity] */
	uint64_t taken_ns;                  /* CLOCK_MONOTONIC when read */
	uint64_t taken_realtime_ns;         /* CLOCK_REALTIME when read */
	int producers_alive;
	bool stale;
	/* totals over the lanes */
	uint64_t fill, fill_capacity; /* bytes queued; capacity * lanes */
	uint64_t records_in, bytes_in, records_out, bytes_out, full_events;
	unsigned broken_lanes;
};

/* Read everything from an open channel.  Returns 0 or a negative errno. */
int snapshot_take(takt_channel *ch, struct snapshot *s);

/* The channel kind's name ("queue", "state"), or NULL if unknown. */
const char *snapshot_kind_name(uint32_t kind);
/* ns since a CLOCK_MONOTONIC stamp taken by a peer, or UINT64_MAX if the
 * stamp is 0 (never); 0 if the stamp looks ahead of `now`. */
uint64_t snapshot_since(uint64_t now, uint64_t stamp);
/* A state channel: ns since its last write, UINT64_MAX if never written. */
uint64_t snapshot_last_write_age(const struct snapshot *s);
/* Key and value: a duration in ns, or null for UINT64_MAX (never/unknown). */
void snapshot_json_ns_or_null(struct json *j, const char *key, uint64_t ns);
/* Fill as a percentage of fill_capacity. */
double snapshot_fill_percent(const struct snapshot *s);
/* Age of the channel in ns (0 if its clock looks ahead of ours). */
uint64_t snapshot_age_ns(const struct snapshot *s);

/* JSON members of the channel summary (as `ls --json` prints them). */
void snapshot_json_summary(struct json *j, const char *name, const struct snapshot *s);

#endif
