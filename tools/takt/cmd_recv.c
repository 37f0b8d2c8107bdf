/* SPDX-License-Identifier: MIT */
/*
 * cmd_recv.c - `takt recv NAME`: receive records as the channel's consumer
 * and write them to stdout: as text lines (default), hex lines, raw bytes or
 * JSON lines.  Output is flushed whenever the channel runs empty, so a pipe
 * sees each record promptly without a write per record under load.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "json.h"
#include "units.h"

/* The longest a single wait lasts before looking at the stop flag (a signal
 * does not end a takt wait early). */
#define WAIT_SLICE_NS 100000000ull

const char usage_recv[] =
	"Usage: takt recv [--count N] [--timeout D] [--hex | --raw | --json] NAME\n"
	"\n"
	"Open the channel as its consumer and write the records it receives to\n"
	"stdout, until N records, a timeout, or Ctrl-C (which ends it cleanly).\n"
	"\n"
	"Output (default: text): each record on a line of its own, its bytes as they\n"
	"are except control characters (below 0x20 but tab, and 0x7f), which are\n"
	"written as \\xHH; so lines sent by `takt send` print back exactly.\n"
	"  -x, --hex    each record as one line of lowercase hex digits\n"
	"  -r, --raw    the records' bytes exactly as sent, nothing between them\n"
	"  --json       one JSON object per record: {\"lane\",\"type\",\"len\",\"hex\"} and\n"
	"               \"text\" when the payload is valid UTF-8\n"
	"\n"
	"Options:\n"
	"  -n, --count N    stop after N records (default 0: no limit)\n"
	"  -T, --timeout D  longest wait for each record (default: forever); when it\n"
	"                   passes, recv ends: exit 0 if it received a record and no\n"
	"                   --count was given, else exit 5\n"
	"  -h, --help       this help\n"
	"\n"
	"Exit status: 0 ok, 3 no such channel, 4 a live consumer already holds it,\n"
	"5 timed out before --count records (or before any record).\n";

enum out_mode { OUT_TEXT, OUT_HEX, OUT_RAW, OUT_JSON };

static void write_record(enum out_mode mode, const unsigned char *p, size_t len,
			 const struct takt_msg *msg)
{
	static const char digits[] = "0123456789abcdef";
	switch (mode) {
	case OUT_RAW:
		fwrite(p, 1, len, stdout);
		break;
	case OUT_HEX:
		for (size_t i = 0; i < len; i++) {
			putchar(digits[p[i] >> 4]);
			putchar(digits[p[i] & 15]);
		}
		putchar('\n');
		break;
	case OUT_TEXT:
		/* Escaped as \xHH: C0 controls but tab, DEL, the C1 controls
		 * U+0080..U+009F (an 8-bit terminal takes U+009B as CSI) and
		 * every byte that is not part of well-formed UTF-8 (a lone
		 * 0x9b is CSI too).  Everything else is written as it is. */
		for (size_t i = 0; i < len;) {
			unsigned char c = p[i];
			size_t n = c < 0x80 ? 1 : utf8_len(p + i, len - i);
			bool control = c < 0x80 ? (c < 0x20 && c != '\t') || c == 0x7f
						 : n == 0 || (n == 2 && c == 0xc2 && p[i + 1] < 0xa0);
			if (!control) {
				fwrite(p + i, 1, n, stdout);
				i += n;
				continue;
			}
			for (size_t k = 0; k < (n ? n : 1); k++)
				printf("\\x%02x", p[i + k]);
			i += n ? n : 1;
		}
		putchar('\n');
		break;
	case OUT_JSON: {
		struct json j;
		json_init(&j, stdout);
		json_obj_begin(&j);
		json_ku64(&j, "lane", msg->lane);
		json_ku64(&j, "type", msg->type);
		json_ku64(&j, "len", len);
		json_key(&j, "hex");
		json_hex(&j, p, len);
		if (json_is_utf8(p, len)) {
			json_key(&j, "text");
			json_strn(&j, p, len);
		}
		json_obj_end(&j);
		json_end_line(&j);
		break;
	}
	}
}

/* The output cannot be written: stop receiving (every further record would
 * be taken from the channel and lost) and say how far we got. */
static int output_failed(const char *name, uint64_t got)
{
	int e = errno;
	cli_chan_err(name, "cannot write the output (%s): stopped after %llu records received; "
		     "those not yet written are lost", e ? strerror(e) : "write error",
		     (unsigned long long)got);
	return EXIT_RUNTIME;
}

int cmd_recv(int argc, char **argv)
{
	static const struct option opts[] = {
		{"count", required_argument, NULL, 'n'},
		{"timeout", required_argument, NULL, 'T'},
		{"hex", no_argument, NULL, 'x'},
		{"raw", no_argument, NULL, 'r'},
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	uint64_t count = 0, timeout = TAKT_FOREVER;
	enum out_mode mode = OUT_TEXT;
	int nmodes = 0;
	int c;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":n:T:xrh", opts, NULL)) != -1) {
		switch (c) {
		case 'n':
			if (units_parse_uint(optarg, UINT64_MAX, &count) < 0)
				return cli_usage_err("invalid --count \"%s\": a whole number "
						     "(0 = no limit)", optarg);
			break;
		case 'T':
			if (units_parse_duration(optarg, &timeout, 1) < 0)
				return cli_usage_err("invalid --timeout \"%s\": a duration such as "
						     "500ms or 5s, or \"forever\"", optarg);
			break;
		case 'x': mode = OUT_HEX; nmodes++; break;
		case 'r': mode = OUT_RAW; nmodes++; break;
		case 'j': mode = OUT_JSON; nmodes++; break;
		case 'h': return cli_help();
		default: return cli_bad_option(c, argv);
		}
	}
	if (nmodes > 1)
		return cli_usage_err("--hex, --raw and --json exclude each other");
	if (argc - optind != 1)
		return cli_usage_err("expects one channel NAME (see takt recv --help)");
	const char *name = argv[optind];
	if (!cli_check_name(name))
		return EXIT_USAGE;

	/* Before the open: once the endpoint is visible, Ctrl-C must end us cleanly. */
	cli_catch_stop_signals();
	takt_consumer *cons;
	int rc = takt_consumer_open(name, &cons);
	if (rc == -EBUSY) {
		cli_chan_err(name, "a live consumer already holds it");
		return EXIT_BUSY;
	}
	if (rc == -EPROTOTYPE) {
		cli_chan_err(name, "a state channel, not a queue: use takt state get");
		return EXIT_RUNTIME;
	}
	if (rc < 0)
		return cli_open_fail(name, rc);
	struct takt_channel_config cfg;
	rc = takt_channel_config_get(takt_consumer_channel(cons), &cfg);
	if (rc < 0) {
		takt_consumer_close(cons);
		return cli_fail(name, rc);
	}
	size_t cap = cfg.max_record ? cfg.max_record : 1;
	unsigned char *buf = malloc(cap);
	if (!buf) {
		takt_consumer_close(cons);
		return cli_fail(name, -ENOMEM);
	}

	int code = EXIT_OK;
	uint64_t got = 0;
	bool broken = false;
	while (!cli_stop && (count == 0 || got < count)) {
		struct takt_msg msg;
		rc = takt_try_recv(cons, buf, cap, &msg);
		if (rc == -EAGAIN) {
			if (fflush(stdout) != 0 || ferror(stdout)) {
				code = output_failed(name, got);
				break;
			}
			uint64_t deadline = takt_deadline_in(timeout);
			do {
				uint64_t slice = takt_deadline_in(WAIT_SLICE_NS);
				rc = takt_recv(cons, buf, cap, &msg, slice < deadline ? slice : deadline);
			} while (rc == -ETIMEDOUT && !cli_stop && takt_now_ns() < deadline);
		}
		if (rc == -ETIMEDOUT) {
			if (cli_stop)
				break;
			if (count != 0 || got == 0) {
				char a[32];
				cli_chan_err(name, "timed out after %s waiting for record %llu",
					     units_fmt_duration(a, sizeof a, timeout),
					     (unsigned long long)got + 1);
				code = EXIT_TIMEOUT;
			}
			break;
		}
		if (rc == -EBADMSG) {
			/* Reported once per lane; the other lanes keep flowing. */
			cli_chan_err(name, "a lane is corrupted and was marked broken; "
				     "receiving from the others");
			broken = true;
			continue;
		}
		if (rc < 0) {
			code = cli_fail(name, rc);
			break;
		}
		write_record(mode, buf, (size_t)rc, &msg);
		got++;
		if (ferror(stdout)) {
			code = output_failed(name, got);
			break;
		}
	}
	if ((fflush(stdout) != 0 || ferror(stdout)) && code == EXIT_OK)
		code = output_failed(name, got);
	free(buf);
	takt_consumer_close(cons);
	if (code == EXIT_OK && broken)
		code = EXIT_RUNTIME;
	return code;
}
