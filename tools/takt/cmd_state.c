/* SPDX-License-Identifier: MIT */
/*
 * cmd_state.c - `takt state get|set NAME`: read the newest image of a state
 * channel as its reader, or publish images as its writer (for debugging).
 * A state channel has one reader and one writer: while a live process holds
 * the role, the command is refused (exit 4), never shared.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "json.h"
#include "snapshot.h"
#include "units.h"

const char usage_state[] =
	"Usage: takt state get [--hex | --raw | --json] [--newer] [--timeout D] NAME\n"
	"       takt state set [--raw | --hex] NAME [DATA | -]\n"
	"\n"
	"Read or write the image of a state channel (takt create --state).\n"
	"\n"
	"get: open the channel as its reader and print its newest image.  Only one\n"
	"reader may be live: if a process holds the reader role, get is refused\n"
	"(exit 4).  Output (default: a hex dump with offsets and ASCII, as\n"
	"hexdump -C):\n"
	"  -x, --hex        the image as one line of lowercase hex digits\n"
	"  -r, --raw        the image's bytes exactly, nothing else\n"
	"  --json           {\"name\",\"generation\",\"len\",\"written_ns\",\"age_ns\",\"hex\"}\n"
	"                   and \"text\" when the image is valid UTF-8\n"
	"  -n, --newer      wait for an image newer than the one current when get\n"
	"                   started, then print it\n"
	"  -T, --timeout D  longest wait: for a newer image with --newer (default\n"
	"                   forever), else for the first image of a channel never\n"
	"                   written (default 0: do not wait); exit 5 when it passes\n"
	"\n"
	"set: open the channel as its writer (refused with exit 4 if a live writer\n"
	"holds it) and publish images: DATA as one image (its bytes, no newline);\n"
	"without DATA or with \"-\", each line of stdin in turn (newline stripped);\n"
	"with --raw all of stdin as one image.  An image may be shorter than the\n"
	"channel's image size, never longer (exit 1).\n"
	"  -r, --raw        stdin is one image, byte for byte\n"
	"  -x, --hex        DATA (or each line) is hex digits: \"0a0b0c\"\n"
	"\n"
	"  -h, --help       this help\n"
	"\n"
	"Exit status: 0 ok, 1 not a state channel, image too large, corrupt, 2 usage,\n"
	"3 no such channel, 4 a live reader (get) or writer (set) holds it,\n"
	"5 timed out (no image, or no newer image, before the deadline).\n";

/* Open a state channel read-write and check its kind.  Returns 0 or an exit
 * code (reported). */
static int open_state_channel(const char *name, takt_channel **ch,
			      struct takt_channel_config *cfg)
{
	int rc = takt_channel_open(name, 0, ch);
	if (rc < 0)
		return cli_open_fail(name, rc);
	rc = takt_channel_config_get(*ch, cfg);
	if (rc < 0) {
		takt_channel_close(*ch);
		return cli_fail(name, rc);
	}
	if (cfg->kind != CLI_KIND_STATE) {
		const char *kind = snapshot_kind_name(cfg->kind);
		cli_chan_err(name, "not a state channel (it is a %s channel%s)",
			     kind ? kind : "unknown",
			     cfg->kind == CLI_KIND_QUEUE ? ": use takt send/recv" : "");
		takt_channel_close(*ch);
		return EXIT_RUNTIME;
	}
	return 0;
}

enum get_mode { GET_DUMP, GET_HEX, GET_RAW, GET_JSON };

static void dump(const unsigned char *p, size_t len)
{
	for (size_t off = 0; off < len; off += 16) {
		size_t n = len - off < 16 ? len - off : 16;
		printf("%08zx ", off);
		for (size_t i = 0; i < 16; i++) {
			if (i == 8)
				putchar(' ');
			if (i < n)
				printf(" %02x", p[off + i]);
			else
				fputs("   ", stdout);
		}
		fputs("  |", stdout);
		for (size_t i = 0; i < n; i++) {
			unsigned char c = p[off + i];
			putchar(c >= 0x20 && c < 0x7f ? c : '.');
		}
		puts("|");
	}
	printf("%08zx\n", len);
}

static void print_image(enum get_mode mode, const char *name, const unsigned char *p, size_t len,
			const struct takt_state_info *info)
{
	static const char digits[] = "0123456789abcdef";
	switch (mode) {
	case GET_RAW:
		fwrite(p, 1, len, stdout);
		break;
	case GET_HEX:
		for (size_t i = 0; i < len; i++) {
			putchar(digits[p[i] >> 4]);
			putchar(digits[p[i] & 15]);
		}
		putchar('\n');
		break;
	case GET_DUMP:
		dump(p, len);
		break;
	case GET_JSON: {
		struct json j;
		json_init(&j, stdout);
		json_obj_begin(&j);
		json_kstr(&j, "name", name);
		json_ku64(&j, "generation", info->generation);
		json_ku64(&j, "len", len);
		json_ku64(&j, "written_ns", info->written_ns);
		json_ku64(&j, "age_ns", info->age_ns);
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

static int state_get(int argc, char **argv)
{
	static const struct option opts[] = {
		{"hex", no_argument, NULL, 'x'},
		{"raw", no_argument, NULL, 'r'},
		{"json", no_argument, NULL, 'j'},
		{"newer", no_argument, NULL, 'n'},
		{"timeout", required_argument, NULL, 'T'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	enum get_mode mode = GET_DUMP;
	int nmodes = 0;
	bool newer = false, have_timeout = false;
	uint64_t timeout = 0;
	int c;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":xrnT:h", opts, NULL)) != -1) {
		switch (c) {
		case 'x': mode = GET_HEX; nmodes++; break;
		case 'r': mode = GET_RAW; nmodes++; break;
		case 'j': mode = GET_JSON; nmodes++; break;
		case 'n': newer = true; break;
		case 'T':
			if (units_parse_duration(optarg, &timeout, 1) < 0)
				return cli_usage_err("invalid --timeout \"%s\": a duration such as "
						     "500ms or 5s, or \"forever\"", optarg);
			have_timeout = true;
			break;
		case 'h': return cli_help();
		default: return cli_bad_option(c, argv);
		}
	}
	if (nmodes > 1)
		return cli_usage_err("--hex, --raw and --json exclude each other");
	if (argc - optind != 1)
		return cli_usage_err("expects one channel NAME (see takt state --help)");
	const char *name = argv[optind];
	if (!cli_check_name(name))
		return EXIT_USAGE;
	if (newer && !have_timeout)
		timeout = TAKT_FOREVER;

	takt_channel *ch;
	struct takt_channel_config cfg;
	int code = open_state_channel(name, &ch, &cfg);
	if (code)
		return code;
	takt_state_reader *r;
	int rc = takt_state_reader_attach(ch, &r);
	if (rc < 0) {
		takt_channel_close(ch);
		if (rc == -EBUSY) {
			cli_chan_err(name, "a live reader already holds it (a state channel has "
				     "one reader)");
			return EXIT_BUSY;
		}
		return cli_fail(name, rc);
	}
	size_t cap = cfg.max_record ? cfg.max_record : 1;
	unsigned char *buf = malloc(cap);
	if (!buf) {
		code = cli_fail(name, -ENOMEM);
		goto out;
	}
	uint64_t deadline = takt_deadline_in(timeout);
	struct takt_state_info info;
	rc = takt_state_read(r, buf, cap, &info);
	uint64_t current = rc >= 0 ? info.generation : 0;
	if (newer || rc == -EAGAIN) {
		/* Wait for an image newer than the one just read (or for the first). */
		if (rc >= 0 || rc == -EAGAIN)
			rc = takt_state_wait_newer(r, deadline);
		if (rc == 0)
			rc = takt_state_read(r, buf, cap, &info);
	}
	if (rc == -ETIMEDOUT || rc == -EAGAIN) {
		char a[32];
		if (current)
			cli_chan_err(name, "timed out after %s waiting for an image newer than "
				     "generation %llu", units_fmt_duration(a, sizeof a, timeout),
				     (unsigned long long)current);
		else if (timeout)
			cli_chan_err(name, "timed out after %s: no image was ever published",
				     units_fmt_duration(a, sizeof a, timeout));
		else
			cli_chan_err(name, "no image was ever published (--timeout D waits for "
				     "the first)");
		code = EXIT_TIMEOUT;
	} else if (rc == -EBADMSG) {
		cli_chan_err(name, "the segment is corrupted (bad slot index or image length)");
		code = EXIT_RUNTIME;
	} else if (rc < 0) {
		code = cli_fail(name, rc);
	} else {
		print_image(mode, name, buf, (size_t)rc, &info);
	}
	free(buf);
out:
	takt_state_reader_close(r);
	takt_channel_close(ch);
	return code;
}

struct setter {
	const char *name;
	takt_state_writer *w;
	uint32_t image_size;
	bool hex;
	uint64_t images;
};

static int hex_digit(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decode hex in place (whitespace between bytes allowed); -1 if malformed. */
static long decode_hex(char *s, size_t len)
{
	size_t out = 0, i = 0;
	while (i < len) {
		if (s[i] == ' ' || s[i] == '\t' || s[i] == '\r') {
			i++;
			continue;
		}
		if (i + 1 >= len)
			return -1;
		int hi = hex_digit((unsigned char)s[i]), lo = hex_digit((unsigned char)s[i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		s[out++] = (char)(hi << 4 | lo);
		i += 2;
	}
	return (long)out;
}

static int set_one(struct setter *s, char *data, size_t len)
{
	if (s->hex) {
		long n = decode_hex(data, len);
		if (n < 0) {
			cli_chan_err(s->name, "image %llu: not hex digits (e.g. \"0a0b0c\")",
				     (unsigned long long)s->images + 1);
			return EXIT_USAGE;
		}
		len = (size_t)n;
	}
	if (len > s->image_size) {
		char a[32], b[32];
		cli_chan_err(s->name, "image %llu: %s is larger than the channel's image size (%s)",
			     (unsigned long long)s->images + 1, units_fmt_size(a, sizeof a, len),
			     units_fmt_size(b, sizeof b, s->image_size));
		return EXIT_RUNTIME;
	}
	int rc = takt_state_write(s->w, data, len);
	if (rc < 0)
		return cli_fail(s->name, rc);
	s->images++;
	return EXIT_OK;
}

static int set_lines(struct setter *s)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int code = EXIT_OK;
	while (code == EXIT_OK && (n = getline(&line, &cap, stdin)) >= 0) {
		if (n > 0 && line[n - 1] == '\n')
			n--;
		code = set_one(s, line, (size_t)n);
	}
	if (code == EXIT_OK && ferror(stdin)) {
		cli_err("cannot read stdin: %s", strerror(errno));
		code = EXIT_RUNTIME;
	}
	free(line);
	return code;
}

static int set_raw(struct setter *s)
{
	/* One byte more than fits tells "too large". */
	size_t cap = (size_t)s->image_size + 1, len = 0, got;
	char *buf = malloc(cap);
	if (!buf)
		return cli_fail(NULL, -ENOMEM);
	while (len < cap && (got = fread(buf + len, 1, cap - len, stdin)) > 0)
		len += got;
	int code;
	if (ferror(stdin)) {
		cli_err("cannot read stdin: %s", strerror(errno));
		code = EXIT_RUNTIME;
	} else if (len == cap) {
		char b[32];
		cli_chan_err(s->name, "stdin is larger than the channel's image size (%s)",
			     units_fmt_size(b, sizeof b, s->image_size));
		code = EXIT_RUNTIME;
	} else {
		code = set_one(s, buf, len);
	}
	free(buf);
	return code;
}

static int state_set(int argc, char **argv)
{
	static const struct option opts[] = {
		{"raw", no_argument, NULL, 'r'},
		{"hex", no_argument, NULL, 'x'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct setter s = {0};
	bool raw = false;
	int c;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":rxh", opts, NULL)) != -1) {
		switch (c) {
		case 'r': raw = true; break;
		case 'x': s.hex = true; break;
		case 'h': return cli_help();
		default: return cli_bad_option(c, argv);
		}
	}
	int nargs = argc - optind;
	if (nargs < 1 || nargs > 2)
		return cli_usage_err("expects NAME and at most one DATA (see takt state --help)");
	if (raw && s.hex)
		return cli_usage_err("--raw and --hex exclude each other");
	s.name = argv[optind];
	char *data = nargs == 2 ? argv[optind + 1] : NULL;
	if (data && strcmp(data, "-") == 0)
		data = NULL;
	if (data && raw)
		return cli_usage_err("--raw reads stdin: give no DATA (or \"-\")");
	if (!cli_check_name(s.name))
		return EXIT_USAGE;

	takt_channel *ch;
	struct takt_channel_config cfg;
	int code = open_state_channel(s.name, &ch, &cfg);
	if (code)
		return code;
	s.image_size = cfg.max_record;
	int rc = takt_state_writer_attach(ch, &s.w);
	if (rc < 0) {
		takt_channel_close(ch);
		if (rc == -EBUSY) {
			cli_chan_err(s.name, "a live writer already holds it (a state channel has "
				     "one writer)");
			return EXIT_BUSY;
		}
		return cli_fail(s.name, rc);
	}
	if (data)
		code = set_one(&s, data, strlen(data));
	else if (raw)
		code = set_raw(&s);
	else
		code = set_lines(&s);
	takt_state_writer_close(s.w);
	takt_channel_close(ch);
	return code;
}

int cmd_state(int argc, char **argv)
{
	if (argc < 2)
		return cli_usage_err("expects get or set (see takt state --help)");
	const char *sub = argv[1];
	if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0)
		return cli_help();
	if (strcmp(sub, "get") == 0) {
		cli_cmd_name = "state get";
		return state_get(argc - 1, argv + 1);
	}
	if (strcmp(sub, "set") == 0) {
		cli_cmd_name = "state set";
		return state_set(argc - 1, argv + 1);
	}
	if (sub[0] == '-')
		return cli_usage_err("unknown option \"%s\": expects get or set first (see takt "
				     "state --help)", sub);
	return cli_usage_err("unknown subcommand \"%s\": expects get or set (see takt state "
			     "--help)", sub);
}
