/* SPDX-License-Identifier: MIT */
/*
 * cmd_info.c - `takt info NAME`: the channel's configuration (its header) and
 * the state of the consumer and of each lane.  Read-only mapping.
 */
#include <getopt.h>
#include <inttypes.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "snapshot.h"
#include "units.h"

const char usage_info[] =
	"Usage: takt info [--json] NAME\n"
	"\n"
	"Show a channel's configuration (kind, layout version, lanes, capacity per\n"
	"lane, max record, segment size, creation time, instance nonce), its\n"
	"consumer (pid, alive, idle time, empty events) and each lane: head and\n"
	"tail positions, bytes queued, records/bytes sent and received, full events,\n"
	"producer pid, alive, broken.  For a state channel: image size, writes,\n"
	"reads, and its writer and reader (pid, alive, start time, time since the\n"
	"last write or read).  Opens the channel read-only.\n"
	"\n"
	"Options:\n"
	"  --json      one JSON object (see docs/CLI.md)\n"
	"  -h, --help  this help\n";

/* ns since a CLOCK_MONOTONIC stamp, or UINT64_MAX if never/unknown. */
static uint64_t idle_ns(uint64_t now, uint64_t last)
{
	return last != 0 && last <= now ? now - last : UINT64_MAX;
}

static void fmt_created(char *buf, size_t n, uint64_t realtime_ns)
{
	time_t t = (time_t)(realtime_ns / 1000000000u);
	struct tm tm;
	if (gmtime_r(&t, &tm))
		strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
	else
		snprintf(buf, n, "?");
}

static void print_json(const char *name, const struct snapshot *s)
{
	char created[64];
	fmt_created(created, sizeof created, s->cfg.created_ns);
	struct json j;
	json_init(&j, stdout);
	json_obj_begin(&j);
	snapshot_json_summary(&j, name, s);
	json_kstr(&j, "created", created);
	json_ku64(&j, "layout_major", s->cfg.layout_major);
	json_ku64(&j, "layout_minor", s->cfg.layout_minor);
	json_ku64(&j, "total_size", s->cfg.total_size);
	char nonce[24];
	snprintf(nonce, sizeof nonce, "%016" PRIx64, s->cfg.nonce);
	json_kstr(&j, "nonce", nonce);

	json_key(&j, "consumer");
	json_obj_begin(&j);
	json_ki64(&j, "pid", s->consumer.pid);
	json_kbool(&j, "alive", s->consumer.alive != 0);
	json_ku64(&j, "empty_events", s->consumer.empty_events);
	uint64_t idle = idle_ns(s->taken_ns, s->consumer.last_ns);
	json_key(&j, "idle_ns");
	if (idle == UINT64_MAX)
		json_null(&j);
	else
		json_u64(&j, idle);
	json_obj_end(&j);

	json_key(&j, "lane_stats");
	json_arr_begin(&j);
	for (unsigned k = 0; k < s->cfg.lanes && k < TAKT_LANES_MAX; k++) {
		const struct takt_lane_stats *l = &s->lane[k];
		json_obj_begin(&j);
		json_ku64(&j, "lane", k);
		json_ku64(&j, "head", l->head);
		json_ku64(&j, "tail", l->tail);
		json_ku64(&j, "fill_bytes", s->lane_fill[k]);
		json_ku64(&j, "records_sent", l->records_sent);
		json_ku64(&j, "bytes_sent", l->bytes_sent);
		json_ku64(&j, "records_received", l->records_received);
		json_ku64(&j, "bytes_received", l->bytes_received);
		json_ku64(&j, "full_events", l->full_events);
		json_ki64(&j, "producer_pid", l->producer_pid);
		json_kbool(&j, "producer_alive", l->producer_alive != 0);
		idle = idle_ns(s->taken_ns, l->producer_last_ns);
		json_key(&j, "producer_idle_ns");
		if (idle == UINT64_MAX)
			json_null(&j);
		else
			json_u64(&j, idle);
		json_kbool(&j, "broken", l->broken != 0);
		json_obj_end(&j);
	}
	json_arr_end(&j);
	json_obj_end(&j);
	json_end_line(&j);
}

/*
 * A process start time (clock ticks after boot, as /proc/PID/stat has it)
 * as CLOCK_REALTIME ns; 0 if unknown.
 */
static uint64_t start_realtime_ns(uint64_t start_ticks, uint64_t now_rt)
{
	long hz = sysconf(_SC_CLK_TCK);
	struct timespec boot;
	if (start_ticks == 0 || hz <= 0 || clock_gettime(CLOCK_BOOTTIME, &boot) != 0)
		return 0;
	uint64_t since_boot = (uint64_t)boot.tv_sec * 1000000000u + (uint64_t)boot.tv_nsec;
	uint64_t start = start_ticks / (uint64_t)hz * 1000000000u +
			 start_ticks % (uint64_t)hz * (1000000000u / (uint64_t)hz);
	if (start > since_boot || since_boot - start > now_rt)
		return 0;
	return now_rt - (since_boot - start);
}

static void json_state_peer(struct json *j, const char *key, int32_t pid, uint32_t alive,
			    uint64_t start_ticks, const char *age_key, uint64_t age,
			    uint64_t now_rt)
{
	json_key(j, key);
	json_obj_begin(j);
	json_ki64(j, "pid", pid);
	json_kbool(j, "alive", alive != 0);
	json_ku64(j, "start_ticks", start_ticks);
	uint64_t started = pid ? start_realtime_ns(start_ticks, now_rt) : 0;
	json_key(j, "started_ns");
	if (started)
		json_u64(j, started);
	else
		json_null(j);
	snapshot_json_ns_or_null(j, age_key, age);
	json_obj_end(j);
}

static void print_state_json(const char *name, const struct snapshot *s)
{
	const struct takt_state_stats *st = &s->state;
	char created[64], nonce[24];
	fmt_created(created, sizeof created, s->cfg.created_ns);
	snprintf(nonce, sizeof nonce, "%016" PRIx64, s->cfg.nonce);
	struct json j;
	json_init(&j, stdout);
	json_obj_begin(&j);
	snapshot_json_summary(&j, name, s);
	json_kstr(&j, "created", created);
	json_ku64(&j, "layout_major", s->cfg.layout_major);
	json_ku64(&j, "layout_minor", s->cfg.layout_minor);
	json_ku64(&j, "total_size", s->cfg.total_size);
	json_kstr(&j, "nonce", nonce);
	json_state_peer(&j, "writer", st->writer_pid, st->writer_alive, st->writer_start,
			"last_write_age_ns", snapshot_last_write_age(s), s->taken_realtime_ns);
	json_state_peer(&j, "reader", st->reader_pid, st->reader_alive, st->reader_start,
			"last_read_age_ns", snapshot_since(s->taken_ns, st->reader_last_ns),
			s->taken_realtime_ns);
	json_obj_end(&j);
	json_end_line(&j);
}

static void print_state_peer(const char *role, int32_t pid, uint32_t alive, uint64_t start_ticks,
			     const char *what, uint64_t age, uint64_t now_rt)
{
	char a[64], b[80], c[64];
	if (pid == 0 && !alive) {
		printf("%-12s none yet\n", role);
		return;
	}
	uint64_t started = start_realtime_ns(start_ticks, now_rt);
	b[0] = '\0';
	if (started)
		snprintf(b, sizeof b, ", started %s ago",
			 units_fmt_duration(a, sizeof a, now_rt - started));
	if (age == UINT64_MAX)
		snprintf(c, sizeof c, "never");
	else
		snprintf(c, sizeof c, "%s ago", units_fmt_duration(a, sizeof a, age));
	printf("%-12s pid %d, %s%s, %s %s\n", role, pid, alive ? "alive" : "dead", b, what, c);
}

static void print_state_text(const char *name, const struct snapshot *s)
{
	const struct takt_state_stats *st = &s->state;
	char a[64], created[64];
	uint64_t lw = snapshot_last_write_age(s);
	printf("channel      %s\n", name);
	printf("kind         state (layout %u.%u)\n", s->cfg.layout_major, s->cfg.layout_minor);
	printf("image size   %s\n", units_fmt_size(a, sizeof a, st->image_size));
	printf("segment      %s\n", units_fmt_size(a, sizeof a, s->cfg.total_size));
	fmt_created(created, sizeof created, s->cfg.created_ns);
	printf("created      %s (%s ago)\n", created,
	       units_fmt_duration(a, sizeof a, snapshot_age_ns(s)));
	printf("nonce        %016" PRIx64 "\n", s->cfg.nonce);
	printf("state        %s\n", s->stale ? "stale (no live endpoint)" : "live");
	printf("writes       %llu (generation of the newest image)\n",
	       (unsigned long long)st->writes);
	printf("reads        %llu (new images taken by readers)\n", (unsigned long long)st->reads);
	print_state_peer("writer", st->writer_pid, st->writer_alive, st->writer_start,
			 "last write", lw, s->taken_realtime_ns);
	print_state_peer("reader", st->reader_pid, st->reader_alive, st->reader_start,
			 "last read", snapshot_since(s->taken_ns, st->reader_last_ns),
			 s->taken_realtime_ns);
}

static const char *fmt_idle(char *buf, size_t n, uint64_t idle)
{
	if (idle == UINT64_MAX)
		return "-";
	return units_fmt_duration(buf, n, idle);
}

static void print_text(const char *name, const struct snapshot *s)
{
	char a[64], b[64], created[64];
	const char *kind = snapshot_kind_name(s->cfg.kind);
	printf("channel      %s\n", name);
	if (kind)
		printf("kind         %s (layout %u.%u)\n", kind, s->cfg.layout_major,
		       s->cfg.layout_minor);
	else
		printf("kind         %u (layout %u.%u)\n", s->cfg.kind, s->cfg.layout_major,
		       s->cfg.layout_minor);
	printf("lanes        %u (%d with a live producer)\n", s->cfg.lanes, s->producers_alive);
	printf("capacity     %s per lane, %s in all\n",
	       units_fmt_size(a, sizeof a, s->cfg.capacity),
	       units_fmt_size(b, sizeof b, s->fill_capacity));
	printf("max record   %s\n", units_fmt_size(a, sizeof a, s->cfg.max_record));
	printf("segment      %s\n", units_fmt_size(a, sizeof a, s->cfg.total_size));
	fmt_created(created, sizeof created, s->cfg.created_ns);
	printf("created      %s (%s ago)\n", created,
	       units_fmt_duration(a, sizeof a, snapshot_age_ns(s)));
	printf("nonce        %016" PRIx64 "\n", s->cfg.nonce);
	printf("state        %s%s\n", s->stale ? "stale (no live endpoint)" : "live",
	       s->broken_lanes ? ", has broken lanes" : "");
	printf("fill         %s (%.1f%%)\n", units_fmt_size(a, sizeof a, s->fill),
	       snapshot_fill_percent(s));
	printf("records      in %llu (%s), out %llu (%s), full events %llu\n",
	       (unsigned long long)s->records_in, units_fmt_size(a, sizeof a, s->bytes_in),
	       (unsigned long long)s->records_out, units_fmt_size(b, sizeof b, s->bytes_out),
	       (unsigned long long)s->full_events);
	if (s->consumer.pid == 0 && !s->consumer.alive)
		printf("consumer     none yet\n");
	else
		printf("consumer     pid %d, %s, idle %s, empty events %llu\n", s->consumer.pid,
		       s->consumer.alive ? "alive" : "dead",
		       fmt_idle(a, sizeof a, idle_ns(s->taken_ns, s->consumer.last_ns)),
		       (unsigned long long)s->consumer.empty_events);
	printf("\n%4s %8s %5s %6s %14s %14s %9s %10s %10s %10s %10s %8s %8s\n", "LANE", "PID",
	       "ALIVE", "BROKEN", "HEAD", "TAIL", "USED", "REC-IN", "BYTES-IN", "REC-OUT",
	       "BYTES-OUT", "FULL", "IDLE");
	for (unsigned k = 0; k < s->cfg.lanes && k < TAKT_LANES_MAX; k++) {
		const struct takt_lane_stats *l = &s->lane[k];
		char used[32], bin[32], bout[32], pid[16];
		if (l->producer_pid)
			snprintf(pid, sizeof pid, "%d", l->producer_pid);
		else
			snprintf(pid, sizeof pid, "-");
		printf("%4u %8s %5s %6s %14llu %14llu %9s %10llu %10s %10llu %10s %8llu %8s\n", k,
		       pid, l->producer_alive ? "yes" : "no", l->broken ? "yes" : "no",
		       (unsigned long long)l->head, (unsigned long long)l->tail,
		       units_fmt_size(used, sizeof used, s->lane_fill[k]),
		       (unsigned long long)l->records_sent,
		       units_fmt_size(bin, sizeof bin, l->bytes_sent),
		       (unsigned long long)l->records_received,
		       units_fmt_size(bout, sizeof bout, l->bytes_received),
		       (unsigned long long)l->full_events,
		       fmt_idle(a, sizeof a, idle_ns(s->taken_ns, l->producer_last_ns)));
	}
}

int cmd_info(int argc, char **argv)
{
	static const struct option opts[] = {
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	bool json = false;
	int c;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case 'j': json = true; break;
		case 'h': return cli_help();
		default: return cli_bad_option(c, argv);
		}
	}
	if (argc - optind != 1)
		return cli_usage_err("expects one channel NAME (see takt info --help)");
	const char *name = argv[optind];
	if (!cli_check_name(name))
		return EXIT_USAGE;
	takt_channel *ch;
	int rc = takt_channel_open(name, TAKT_OPEN_RDONLY, &ch);
	if (rc < 0)
		return cli_open_fail(name, rc);
	struct snapshot s;
	rc = snapshot_take(ch, &s);
	takt_channel_close(ch);
	if (rc < 0)
		return cli_fail(name, rc);
	if (s.is_state && json)
		print_state_json(name, &s);
	else if (s.is_state)
		print_state_text(name, &s);
	else if (json)
		print_json(name, &s);
	else
		print_text(name, &s);
	return EXIT_OK;
}
