/* SPDX-License-Identifier: MIT */
/*
 * cmd_send.c - `takt send NAME [DATA | -]`: send records as a producer.
 * DATA is one record; without DATA (or with "-") stdin is read: one record
 * per line (the newline stripped), or all of it as one record with --raw.
 * Each send blocks until there is room or its deadline passes.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "units.h"

#define DEFAULT_TIMEOUT_NS 5000000000ull

const char usage_send[] =
	"Usage: takt send [--type T] [--timeout D] [--raw] NAME [DATA | -]\n"
	"\n"
	"Open the channel as a producer (it takes a free lane) and send records.\n"
	"DATA is sent as one record (its bytes, no newline).  Without DATA, or with\n"
	"\"-\", stdin is read: each line is one record, its newline stripped (an empty\n"
	"line is an empty record; a last line without newline is a record too); with\n"
	"--raw all of stdin is one record, byte for byte.  Use \"--\" before DATA that\n"
	"starts with \"-\".\n"
	"\n"
	"Options:\n"
	"  -t, --type T     record type, 0 to 4294901759 (default 0)\n"
	"  -T, --timeout D  longest wait for room for each record (default 5s;\n"
	"                   \"forever\" waits without limit); exit 5 when it passes\n"
	"  -r, --raw        stdin is one record, not one record per line\n"
	"  -h, --help       this help\n"
	"\n"
	"Exit status: 0 all sent, 3 no such channel, 4 every lane has a live\n"
	"producer, 5 timed out (the ring stayed full), 1 record too large or other.\n";

struct sender {
	const char *name;
	takt_producer *p;
	uint32_t type;
	uint64_t timeout_ns;
	uint32_t max_record;
	uint64_t sent;
};

static int send_one(struct sender *s, const void *data, size_t len)
{
	if (len > s->max_record) {
		char a[32], b[32];
		cli_chan_err(s->name, "record %llu: %s is larger than the channel's max record (%s)",
			     (unsigned long long)s->sent + 1, units_fmt_size(a, sizeof a, len),
			     units_fmt_size(b, sizeof b, s->max_record));
		return EXIT_RUNTIME;
	}
	int rc = takt_send(s->p, s->type, data, len, takt_deadline_in(s->timeout_ns));
	if (rc == -ETIMEDOUT) {
		char a[32];
		cli_chan_err(s->name, "timed out after %s waiting for room for record %llu (the "
			     "ring stays full: is a consumer running?)",
			     units_fmt_duration(a, sizeof a, s->timeout_ns),
			     (unsigned long long)s->sent + 1);
		return EXIT_TIMEOUT;
	}
	if (rc < 0)
		return cli_fail(s->name, rc);
	s->sent++;
	return EXIT_OK;
}

static int send_lines(struct sender *s)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int code = EXIT_OK;
	while (code == EXIT_OK && (n = getline(&line, &cap, stdin)) >= 0) {
		if (n > 0 && line[n - 1] == '\n')
			n--;
		code = send_one(s, line, (size_t)n);
	}
	if (code == EXIT_OK && ferror(stdin)) {
		cli_err("cannot read stdin: %s", strerror(errno));
		code = EXIT_RUNTIME;
	}
	free(line);
	return code;
}

static int send_raw(struct sender *s)
{
	/* Read at most max_record + 1 bytes: one more tells "too large". */
	size_t cap = (size_t)s->max_record + 1, len = 0;
	char *buf = malloc(cap);
	if (!buf)
		return cli_fail(NULL, -ENOMEM);
	size_t got;
	while (len < cap && (got = fread(buf + len, 1, cap - len, stdin)) > 0)
		len += got;
	int code;
	if (ferror(stdin)) {
		cli_err("cannot read stdin: %s", strerror(errno));
		code = EXIT_RUNTIME;
	} else if (len == cap) {
		char b[32];
		cli_chan_err(s->name, "stdin is larger than the channel's max record (%s)",
			     units_fmt_size(b, sizeof b, s->max_record));
		code = EXIT_RUNTIME;
	} else {
		code = send_one(s, buf, len);
	}
	free(buf);
	return code;
}

int cmd_send(int argc, char **argv)
{
	static const struct option opts[] = {
		{"type", required_argument, NULL, 't'},
		{"timeout", required_argument, NULL, 'T'},
		{"raw", no_argument, NULL, 'r'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct sender s = {.timeout_ns = DEFAULT_TIMEOUT_NS};
	bool raw = false;
	uint64_t v;
	int c;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":t:T:rh", opts, NULL)) != -1) {
		switch (c) {
		case 't':
			if (units_parse_uint(optarg, TAKT_TYPE_RESERVED - 1, &v) < 0)
				return cli_usage_err("invalid --type \"%s\": a number from 0 to %u "
						     "(higher values are reserved)",
						     optarg, TAKT_TYPE_RESERVED - 1);
			s.type = (uint32_t)v;
			break;
		case 'T':
			if (units_parse_duration(optarg, &s.timeout_ns, 1) < 0)
				return cli_usage_err("invalid --timeout \"%s\": a duration such as "
						     "500ms or 5s, or \"forever\"", optarg);
			break;
		case 'r': raw = true; break;
		case 'h': return cli_help();
		default: return cli_bad_option(c, argv);
		}
	}
	int nargs = argc - optind;
	if (nargs < 1 || nargs > 2)
		return cli_usage_err("expects NAME and at most one DATA (see takt send --help)");
	s.name = argv[optind];
	const char *data = nargs == 2 ? argv[optind + 1] : NULL;
	if (data && strcmp(data, "-") == 0)
		data = NULL;
	if (data && raw)
		return cli_usage_err("--raw reads stdin: give no DATA (or \"-\")");
	if (!cli_check_name(s.name))
		return EXIT_USAGE;

	int rc = takt_producer_open(s.name, &s.p);
	if (rc == -EBUSY) {
		cli_chan_err(s.name, "every producer lane is held by a live process");
		return EXIT_BUSY;
	}
	if (rc == -EPROTOTYPE) {
		cli_chan_err(s.name, "a state channel, not a queue: use takt state set");
		return EXIT_RUNTIME;
	}
	if (rc < 0)
		return cli_open_fail(s.name, rc);
	struct takt_channel_config cfg;
	rc = takt_channel_config_get(takt_producer_channel(s.p), &cfg);
	if (rc < 0) {
		takt_producer_close(s.p);
		return cli_fail(s.name, rc);
	}
	s.max_record = cfg.max_record;

	int code;
	if (data)
		code = send_one(&s, data, strlen(data));
	else if (raw)
		code = send_raw(&s);
	else
		code = send_lines(&s);
	takt_producer_close(s.p);
	return code;
}
