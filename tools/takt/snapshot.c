/* SPDX-License-Identifier: MIT */
/* snapshot.c - reading a channel's state for display (snapshot.h). */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <string.h>

#include "cli.h"
#include "snapshot.h"

static int snapshot_read(takt_channel *ch, struct snapshot *s)
{
	memset(s, 0, sizeof *s);
	s->taken_ns = takt_now_ns();
	s->taken_realtime_ns = cli_realtime_ns();
	int rc = takt_channel_config_get(ch, &s->cfg);
	if (rc < 0)
		return rc;
	if (s->cfg.kind == CLI_KIND_STATE) {
		s->is_state = true;
		rc = takt_state_stats_get(ch, &s->state);
		if (rc < 0)
			return rc;
		rc = takt_channel_is_stale(ch);
		if (rc < 0)
			return rc;
		s->stale = rc == 1;
		return 0;
	}
	rc = takt_consumer_stats_get(ch, &s->consumer);
	if (rc < 0)
		return rc;
	unsigned lanes = s->cfg.lanes <= TAKT_LANES_MAX ? s->cfg.lanes : TAKT_LANES_MAX;
	for (unsigned k = 0; k < lanes; k++) {
		struct takt_lane_stats *l = &s->lane[k];
		rc = takt_lane_stats_get(ch, k, l);
		if (rc < 0)
			return rc;
		/* The positions are the peers' word: clamp what we show. */
		uint64_t fill = l->tail >= l->head ? l->tail - l->head : 0;
		if (fill > s->cfg.capacity)
			fill = s->cfg.capacity;
		s->lane_fill[k] = fill;
		s->fill += fill;
		s->records_in += l->records_sent;
		s->bytes_in += l->bytes_sent;
		s->records_out += l->records_received;
		s->bytes_out += l->bytes_received;
		s->full_events += l->full_events;
		s->broken_lanes += l->broken != 0;
	}
	s->fill_capacity = s->cfg.capacity * lanes;
	rc = takt_producers_alive(ch, NULL);
	if (rc < 0)
		return rc;
	s->producers_alive = rc;
	rc = takt_channel_is_stale(ch);
	if (rc < 0)
		return rc;
	s->stale = rc == 1;
	return 0;
}

/*
 * A peer with write access can shrink the segment file under our mapping;
 * reading a lost page raises SIGBUS (docs/RECOVERY.md).  The library cannot
 * catch that, but this program can: while a snapshot is read, SIGBUS jumps
 * back here and the channel is reported as shrunk (-EFAULT), so `takt ls` goes on
 * with the other channels and `takt stat` ends with an error instead of a
 * crash.  The reads are loads only (no lock, no allocation), so abandoning
 * them halfway leaves nothing inconsistent.  The jump target is the one
 * piece of global state the handler needs; the CLI is single-threaded.
 */
static sigjmp_buf *bus_target;

static void on_sigbus(int sig)
{
	(void)sig;
	siglongjmp(*bus_target, 1);
}

int snapshot_take(takt_channel *ch, struct snapshot *s)
{
	sigjmp_buf target;
	struct sigaction sa, old;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_sigbus;
	sigemptyset(&sa.sa_mask);
	if (sigsetjmp(target, 1)) {
		sigaction(SIGBUS, &old, NULL);
		bus_target = NULL;
		return -EFAULT; /* cli_open_error_text: "the segment shrank ..." */
	}
	bus_target = &target;
	sigaction(SIGBUS, &sa, &old);
	int rc = snapshot_read(ch, s);
	sigaction(SIGBUS, &old, NULL);
	bus_target = NULL;
	return rc;
}

const char *snapshot_kind_name(uint32_t kind)
{
	switch (kind) {
	case CLI_KIND_QUEUE: return "queue";
	case CLI_KIND_STATE: return "state";
	default: return NULL;
	}
}

uint64_t snapshot_since(uint64_t now, uint64_t stamp)
{
	if (stamp == 0)
		return UINT64_MAX;
	return now > stamp ? now - stamp : 0;
}

uint64_t snapshot_last_write_age(const struct snapshot *s)
{
	return snapshot_since(s->taken_ns, s->state.writer_last_ns);
}

void snapshot_json_ns_or_null(struct json *j, const char *key, uint64_t ns)
{
	json_key(j, key);
	if (ns == UINT64_MAX)
		json_null(j);
	else
		json_u64(j, ns);
}

double snapshot_fill_percent(const struct snapshot *s)
{
	return s->fill_capacity ? 100.0 * (double)s->fill / (double)s->fill_capacity : 0.0;
}

uint64_t snapshot_age_ns(const struct snapshot *s)
{
	return s->taken_realtime_ns > s->cfg.created_ns ? s->taken_realtime_ns - s->cfg.created_ns
							 : 0;
}

void snapshot_json_summary(struct json *j, const char *name, const struct snapshot *s)
{
	const char *kind = snapshot_kind_name(s->cfg.kind);
	json_kstr(j, "name", name);
	if (kind)
		json_kstr(j, "kind", kind);
	else
		json_ku64(j, "kind", s->cfg.kind);
	if (s->is_state) {
		const struct takt_state_stats *st = &s->state;
		json_ku64(j, "image_size", st->image_size);
		json_ku64(j, "writes", st->writes);
		json_ku64(j, "reads", st->reads);
		json_kbool(j, "writer_alive", st->writer_alive != 0);
		json_kbool(j, "reader_alive", st->reader_alive != 0);
		json_ki64(j, "writer_pid", st->writer_pid);
		json_ki64(j, "reader_pid", st->reader_pid);
		snapshot_json_ns_or_null(j, "last_write_age_ns", snapshot_last_write_age(s));
		snapshot_json_ns_or_null(j, "last_read_age_ns",
					 snapshot_since(s->taken_ns, st->reader_last_ns));
		json_ku64(j, "created_ns", s->cfg.created_ns);
		json_ku64(j, "age_ns", snapshot_age_ns(s));
		json_kbool(j, "stale", s->stale);
		return;
	}
	json_ku64(j, "lanes", s->cfg.lanes);
	json_ku64(j, "capacity", s->cfg.capacity);
	json_ku64(j, "max_record", s->cfg.max_record);
	json_ku64(j, "fill_bytes", s->fill);
	json_ku64(j, "fill_capacity", s->fill_capacity);
	json_kdouble(j, "fill_percent", snapshot_fill_percent(s));
	json_ku64(j, "records_in", s->records_in);
	json_ku64(j, "records_out", s->records_out);
	json_ku64(j, "bytes_in", s->bytes_in);
	json_ku64(j, "bytes_out", s->bytes_out);
	json_ku64(j, "full_events", s->full_events);
	json_kbool(j, "consumer_alive", s->consumer.alive != 0);
	json_ku64(j, "producers_alive", (uint64_t)s->producers_alive);
	json_ku64(j, "producers_total", s->cfg.lanes);
	json_ku64(j, "broken_lanes", s->broken_lanes);
	json_ku64(j, "created_ns", s->cfg.created_ns);
	json_ku64(j, "age_ns", snapshot_age_ns(s));
	json_kbool(j, "stale", s->stale);
}
