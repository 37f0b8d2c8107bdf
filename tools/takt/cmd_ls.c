/* SPDX-License-Identifier: MIT */
/*
 * cmd_ls.c - `takt ls`: every channel with its geometry, fill level,
 * counters, liveness and age; channels that cannot be opened are listed with
 * the reason.  Read-only mappings only.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "snapshot.h"
#include "units.h"

const char usage_ls[] =
	"Usage: takt ls [--json] [PATTERN...]\n"
	"\n"
	"List every takt channel (like ipcs).  Queue channels: kind, lanes, capacity\n"
	"per lane, fill level (bytes queued over all lanes and % of their capacity),\n"
	"records in (sent) and out (received), whether the consumer is alive, live\n"
	"producers out of lanes, age, and STATE: live, stale (no live endpoint:\n"
	"`takt gc` removes it) or the reason it cannot be opened (permission denied,\n"
	"not ready, corrupt).  State channels follow in a table of their own: image\n"
	"size, writes, reads, writer and reader alive, time since the last write,\n"
	"age and STATE.  PATTERNs (shell globs, quote them) select names.\n"
	"\n"
	"Options:\n"
	"  --json      one JSON object: {\"channels\": [...]} (see docs/CLI.md)\n"
	"  -h, --help  this help\n";

struct row {
	const char *name;
	int err; /* 0 = snapshot valid */
	struct snapshot snap;
};

static void print_json(struct row *rows, int n)
{
	struct json j;
	json_init(&j, stdout);
	json_obj_begin(&j);
	json_key(&j, "channels");
	json_arr_begin(&j);
	for (int i = 0; i < n; i++) {
		json_obj_begin(&j);
		if (rows[i].err) {
			json_kstr(&j, "name", rows[i].name);
			json_kstr(&j, "error", cli_open_error_text(rows[i].err));
			json_kstr(&j, "errno", cli_errno_name(rows[i].err));
		} else {
			snapshot_json_summary(&j, rows[i].name, &rows[i].snap);
		}
		json_obj_end(&j);
	}
	json_arr_end(&j);
	json_obj_end(&j);
	json_end_line(&j);
}

static int name_width(const struct row *rows, int n)
{
	int w = 4;
	for (int i = 0; i < n; i++) {
		int len = (int)strlen(rows[i].name);
		if (len > w)
			w = len;
	}
	return w;
}

/* Queue channels, and those that cannot be opened (their kind is unknown). */
static void print_queue_table(const struct row *rows, int n, int w)
{
	printf("%-*s  %-5s %5s %9s %9s %6s %10s %10s %4s %7s %7s  %s\n", w, "NAME", "KIND",
	       "LANES", "CAPACITY", "USED", "FILL", "IN", "OUT", "CONS", "PROD", "AGE", "STATE");
	for (int i = 0; i < n; i++) {
		const struct row *r = &rows[i];
		if (r->err) {
			printf("%-*s  %-5s %5s %9s %9s %6s %10s %10s %4s %7s %7s  error: %s\n", w,
			       r->name, "-", "-", "-", "-", "-", "-", "-", "-", "-", "-",
			       cli_open_error_text(r->err));
			continue;
		}
		const struct snapshot *s = &r->snap;
		if (s->is_state)
			continue;
		char cap[32], used[32], fill[16], age[32], prod[24], kind[16];
		const char *kn = snapshot_kind_name(s->cfg.kind);
		if (kn)
			snprintf(kind, sizeof kind, "%s", kn);
		else
			snprintf(kind, sizeof kind, "%u", s->cfg.kind);
		units_fmt_size(cap, sizeof cap, s->cfg.capacity);
		units_fmt_size(used, sizeof used, s->fill);
		snprintf(fill, sizeof fill, "%.1f%%", snapshot_fill_percent(s));
		units_fmt_duration(age, sizeof age, snapshot_age_ns(s));
		snprintf(prod, sizeof prod, "%d/%u", s->producers_alive, s->cfg.lanes);
		const char *state = s->stale ? "stale" : "live";
		printf("%-*s  %-5s %5u %9s %9s %6s %10llu %10llu %4s %7s %7s  %s%s\n", w, r->name,
		       kind, s->cfg.lanes, cap, used, fill, (unsigned long long)s->records_in,
		       (unsigned long long)s->records_out, s->consumer.alive ? "yes" : "no", prod,
		       age, state, s->broken_lanes ? " (broken lanes)" : "");
	}
}

static void print_state_table(const struct row *rows, int n, int w)
{
	printf("%-*s  %-5s %9s %10s %10s %6s %6s %10s %7s  %s\n", w, "NAME", "KIND", "IMAGE",
	       "WRITES", "READS", "WRITER", "READER", "LAST-WRITE", "AGE", "STATE");
	for (int i = 0; i < n; i++) {
		const struct row *r = &rows[i];
		if (r->err || !r->snap.is_state)
			continue;
		const struct snapshot *s = &r->snap;
		char image[32], last[32], age[32];
		uint64_t lw = snapshot_last_write_age(s);
		units_fmt_size(image, sizeof image, s->state.image_size);
		if (lw == UINT64_MAX)
			snprintf(last, sizeof last, "never");
		else
			units_fmt_duration(last, sizeof last, lw);
		units_fmt_duration(age, sizeof age, snapshot_age_ns(s));
		printf("%-*s  %-5s %9s %10llu %10llu %6s %6s %10s %7s  %s\n", w, r->name, "state",
		       image, (unsigned long long)s->state.writes,
		       (unsigned long long)s->state.reads, s->state.writer_alive ? "yes" : "no",
		       s->state.reader_alive ? "yes" : "no", last, age,
		       s->stale ? "stale" : "live");
	}
}

/* Queue channels (and unreadable ones) first, then state channels in a table
 * of their own: their columns differ.  With no channel at all, the queue
 * table's header alone. */
static void print_table(const struct row *rows, int n)
{
	int w = name_width(rows, n), nstate = 0;
	for (int i = 0; i < n; i++)
		nstate += !rows[i].err && rows[i].snap.is_state;
	if (nstate < n || n == 0)
		print_queue_table(rows, n, w);
	if (nstate > 0) {
		if (nstate < n)
			putchar('\n');
		print_state_table(rows, n, w);
	}
}

int cmd_ls(int argc, char **argv)
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
	char **patterns = argv + optind;
	int npatterns = argc - optind;

	char **names;
	int n = cli_list_names(&names);
	if (n < 0) {
		cli_err("cannot list channels: %s", takt_strerror(n));
		return EXIT_RUNTIME;
	}
	struct row *rows = calloc(n > 0 ? (size_t)n : 1, sizeof *rows);
	if (!rows) {
		cli_free_names(names, n);
		return cli_fail(NULL, -ENOMEM);
	}
	int nrows = 0;
	for (int i = 0; i < n; i++) {
		if (!cli_name_matches(names[i], patterns, npatterns))
			continue;
		struct row *r = &rows[nrows];
		r->name = names[i];
		takt_channel *ch;
		int rc = takt_channel_open(names[i], TAKT_OPEN_RDONLY, &ch);
		if (rc == -ENOENT)
			continue; /* removed since it was listed */
		if (rc == 0) {
			rc = snapshot_take(ch, &r->snap);
			takt_channel_close(ch);
		}
		r->err = rc;
		nrows++;
	}
	if (json)
		print_json(rows, nrows);
	else
		print_table(rows, nrows);
	free(rows);
	cli_free_names(names, n);
	return EXIT_OK;
}
