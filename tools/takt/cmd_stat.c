/* SPDX-License-Identifier: MIT */
/*
 * cmd_stat.c - `takt stat NAME`: live rates of one channel, one sample per
 * interval, until SIGINT/SIGTERM or --count samples.  It reads the counters
 * through a read-only mapping and never touches the endpoints' hot path.
 */
#include <errno.h>
#include <getopt.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "snapshot.h"
#include "units.h"

const char usage_stat[] =
	"Usage: takt stat [--interval D] [--count N] [--json] NAME\n"
	"\n"
	"Watch a channel: every interval, records/s and bytes/s in (sent) and out\n"
	"(received), bytes queued and fill %, full events/s (sends refused because\n"
	"a lane was full), empty events/s (receives that found nothing), consumer\n"
	"alive and live producers.  Runs until interrupted (Ctrl-C ends it cleanly,\n"
	"exit 0) or N samples.  Opens the channel read-only; the endpoints are\n"
	"never disturbed.  For a state channel: writes/s and reads/s (new images\n"
	"published and taken), writer and reader alive, time since the last write.\n"
	"\n"
	"Options:\n"
	"  -i, --interval D  time between samples (default 1s; e.g. 100ms, 2s)\n"
	"  -c, --count N     stop after N samples (default 0: until interrupted)\n"
	"  --json            one JSON object per line per sample (see docs/CLI.md)\n"
	"  -h, --help        this help\n";

static double per_s(uint64_t now, uint64_t before, uint64_t dt_ns)
{
	return now > before ? (double)(now - before) * 1e9 / (double)dt_ns : 0.0;
}

struct rates {
	double rec_in, rec_out, bytes_in, bytes_out, full, empty;
};

static void print_json_sample(const char *name, const struct snapshot *s, const struct rates *r,
			      uint64_t dt, uint64_t seq)
{
	struct json j;
	json_init(&j, stdout);
	json_obj_begin(&j);
	json_kstr(&j, "name", name);
	json_ku64(&j, "sample", seq);
	json_ku64(&j, "time_ns", s->taken_realtime_ns);
	json_ku64(&j, "interval_ns", dt);
	json_kdouble(&j, "records_in_per_s", r->rec_in);
	json_kdouble(&j, "records_out_per_s", r->rec_out);
	json_kdouble(&j, "bytes_in_per_s", r->bytes_in);
	json_kdouble(&j, "bytes_out_per_s", r->bytes_out);
	json_kdouble(&j, "full_events_per_s", r->full);
	json_kdouble(&j, "empty_events_per_s", r->empty);
	json_ku64(&j, "fill_bytes", s->fill);
	json_ku64(&j, "fill_capacity", s->fill_capacity);
	json_kdouble(&j, "fill_percent", snapshot_fill_percent(s));
	json_ku64(&j, "records_in", s->records_in);
	json_ku64(&j, "records_out", s->records_out);
	json_ku64(&j, "bytes_in", s->bytes_in);
	json_ku64(&j, "bytes_out", s->bytes_out);
	json_ku64(&j, "full_events", s->full_events);
	json_ku64(&j, "empty_events", s->consumer.empty_events);
	json_kbool(&j, "consumer_alive", s->consumer.alive != 0);
	json_ku64(&j, "producers_alive", (uint64_t)s->producers_alive);
	json_ku64(&j, "producers_total", s->cfg.lanes);
	json_kbool(&j, "stale", s->stale);
	json_obj_end(&j);
	json_end_line(&j);
}

static void print_state_json_sample(const char *name, const struct snapshot *s, double writes,
				    double reads, uint64_t dt, uint64_t seq)
{
	struct json j;
	json_init(&j, stdout);
	json_obj_begin(&j);
	json_kstr(&j, "name", name);
	json_kstr(&j, "kind", "state");
	json_ku64(&j, "sample", seq);
	json_ku64(&j, "time_ns", s->taken_realtime_ns);
	json_ku64(&j, "interval_ns", dt);
	json_kdouble(&j, "writes_per_s", writes);
	json_kdouble(&j, "reads_per_s", reads);
	json_ku64(&j, "writes", s->state.writes);
	json_ku64(&j, "reads", s->state.reads);
	json_kbool(&j, "writer_alive", s->state.writer_alive != 0);
	json_kbool(&j, "reader_alive", s->state.reader_alive != 0);
	snapshot_json_ns_or_null(&j, "last_write_age_ns", snapshot_last_write_age(s));
	json_kbool(&j, "stale", s->stale);
	json_obj_end(&j);
	json_end_line(&j);
}

static void print_state_text_header(void)
{
	printf("%8s %10s %10s %12s %12s %10s %6s %6s\n", "TIME", "WRITES/s", "READS/s", "WRITES",
	       "READS", "LAST-WRITE", "WRITER", "READER");
}

static void fmt_time(char *buf, size_t n, uint64_t realtime_ns)
{
	time_t t = (time_t)(realtime_ns / 1000000000u);
	struct tm tm;
	if (localtime_r(&t, &tm))
		strftime(buf, n, "%H:%M:%S", &tm);
	else
		snprintf(buf, n, "?");
}

static void print_state_text_sample(const struct snapshot *s, double writes, double reads)
{
	char when[16], w[16], r[16], last[32];
	fmt_time(when, sizeof when, s->taken_realtime_ns);
	units_fmt_rate(w, sizeof w, writes);
	units_fmt_rate(r, sizeof r, reads);
	uint64_t lw = snapshot_last_write_age(s);
	if (lw == UINT64_MAX)
		snprintf(last, sizeof last, "never");
	else
		units_fmt_duration(last, sizeof last, lw);
	printf("%8s %10s %10s %12llu %12llu %10s %6s %6s\n", when, w, r,
	       (unsigned long long)s->state.writes, (unsigned long long)s->state.reads, last,
	       s->state.writer_alive ? "yes" : "no", s->state.reader_alive ? "yes" : "no");
}

static void print_text_header(void)
{
	printf("%8s %9s %11s %9s %11s %9s %6s %8s %8s %4s %5s\n", "TIME", "REC-IN/s", "BYTES-IN/s",
	       "REC-OUT/s", "BYTES-OUT/s", "USED", "FILL", "FULL/s", "EMPTY/s", "CONS", "PROD");
}

static void print_text_sample(const struct snapshot *s, const struct rates *r)
{
	char when[16], rin[16], rout[16], bin[32], bout[32], used[32], full[16], empty[16],
		prod[16];
	fmt_time(when, sizeof when, s->taken_realtime_ns);
	units_fmt_rate(rin, sizeof rin, r->rec_in);
	units_fmt_rate(rout, sizeof rout, r->rec_out);
	units_fmt_size(bin, sizeof bin, (uint64_t)(r->bytes_in + 0.5));
	units_fmt_size(bout, sizeof bout, (uint64_t)(r->bytes_out + 0.5));
	units_fmt_size(used, sizeof used, s->fill);
	units_fmt_rate(full, sizeof full, r->full);
	units_fmt_rate(empty, sizeof empty, r->empty);
	snprintf(prod, sizeof prod, "%d/%u", s->producers_alive, s->cfg.lanes);
	printf("%8s %9s %9s/s %9s %9s/s %9s %5.1f%% %8s %8s %4s %5s\n", when, rin, bin, rout, bout,
	       used, snapshot_fill_percent(s), full, empty, s->consumer.alive ? "yes" : "no", prod);
}

/* Sleep until an absolute CLOCK_MONOTONIC time; false if a stop signal came. */
static bool sleep_until(uint64_t t_ns)
{
	struct timespec ts = {.tv_sec = (time_t)(t_ns / 1000000000u),
			      .tv_nsec = (long)(t_ns % 1000000000u)};
	while (!cli_stop) {
		int rc = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
		if (rc == 0)
			return !cli_stop;
		if (rc != EINTR)
			return false;
	}
	return false;
}

int cmd_stat(int argc, char **argv)
{
	static const struct option opts[] = {
		{"interval", required_argument, NULL, 'i'},
		{"count", required_argument, NULL, 'c'},
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	bool json = false;
	uint64_t interval = 1000000000ull, count = 0;
	int c;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":i:c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'i':
			if (units_parse_duration(optarg, &interval, 0) < 0 || interval < 1000000)
				return cli_usage_err("invalid --interval \"%s\": a duration of at "
						     "least 1ms (e.g. 100ms, 1s)", optarg);
			break;
		case 'c':
			if (units_parse_uint(optarg, UINT32_MAX, &count) < 0)
				return cli_usage_err("invalid --count \"%s\": a whole number "
						     "(0 = until interrupted)", optarg);
			break;
		case 'j': json = true; break;
		case 'h': return cli_help();
		default: return cli_bad_option(c, argv);
		}
	}
	if (argc - optind != 1)
		return cli_usage_err("expects one channel NAME (see takt stat --help)");
	const char *name = argv[optind];
	if (!cli_check_name(name))
		return EXIT_USAGE;
	/* From the start: Ctrl-C at any time ends us cleanly. */
	cli_catch_stop_signals();
	takt_channel *ch;
	int rc = takt_channel_open(name, TAKT_OPEN_RDONLY, &ch);
	if (rc < 0)
		return cli_open_fail(name, rc);

	static struct snapshot snaps[2];
	struct snapshot *prev = &snaps[0], *cur = &snaps[1];
	rc = snapshot_take(ch, prev);
	if (rc < 0)
		goto out;
	if (!json && prev->is_state)
		print_state_text_header();
	else if (!json)
		print_text_header();
	fflush(stdout);
	uint64_t start = prev->taken_ns;
	for (uint64_t seq = 1; count == 0 || seq <= count; seq++) {
		if (!sleep_until(start + seq * interval))
			break;
		rc = snapshot_take(ch, cur);
		if (rc < 0)
			goto out;
		uint64_t dt = cur->taken_ns - prev->taken_ns;
		if (dt == 0)
			dt = 1;
		if (cur->is_state) {
			double w = per_s(cur->state.writes, prev->state.writes, dt);
			double r = per_s(cur->state.reads, prev->state.reads, dt);
			if (json)
				print_state_json_sample(name, cur, w, r, dt, seq);
			else
				print_state_text_sample(cur, w, r);
			fflush(stdout);
			struct snapshot *t = prev;
			prev = cur;
			cur = t;
			continue;
		}
		struct rates r = {
			.rec_in = per_s(cur->records_in, prev->records_in, dt),
			.rec_out = per_s(cur->records_out, prev->records_out, dt),
			.bytes_in = per_s(cur->bytes_in, prev->bytes_in, dt),
			.bytes_out = per_s(cur->bytes_out, prev->bytes_out, dt),
			.full = per_s(cur->full_events, prev->full_events, dt),
			.empty = per_s(cur->consumer.empty_events, prev->consumer.empty_events, dt),
		};
		if (json)
			print_json_sample(name, cur, &r, dt, seq);
		else
			print_text_sample(cur, &r);
		fflush(stdout);
		struct snapshot *t = prev;
		prev = cur;
		cur = t;
	}
	rc = 0;
out:
	takt_channel_close(ch);
	if (rc < 0)
		return cli_fail(name, rc);
	return EXIT_OK;
}
