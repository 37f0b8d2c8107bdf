/* SPDX-License-Identifier: MIT */
/*
 * cmd_create.c - `takt create NAME`: create a queue channel, or with --state
 * a state channel.  Every argument
 * is checked before the library is called, so a bad one creates nothing and
 * names the culprit.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "units.h"

#define DEFAULT_CAPACITY (1ull << 20)
#define DEFAULT_MAX_RECORD_CAP (64u << 10)

const char usage_create[] =
	"Usage: takt create [--lanes N] [--capacity SIZE] [--max-record SIZE]\n"
	"                   [--mode MODE] NAME\n"
	"       takt create --state --image-size SIZE [--mode MODE] NAME\n"
	"\n"
	"Create a queue channel (or with --state a state channel): /dev/shm/takt.NAME\n"
	"and its semaphores.  NAME is 1 to 200 characters from A-Z a-z 0-9 . _ -.\n"
	"Nothing is left behind on failure.\n"
	"\n"
	"Options:\n"
	"  -s, --state            a state channel: the newest image of a fixed size\n"
	"                         from one writer to one reader (takt state get/set)\n"
	"  -i, --image-size SIZE  the state channel's image size, 1 B to 64 MiB\n"
	"                         (required with --state)\n"
	"  -l, --lanes N          producer lanes, 1 (SPSC) to 64 (MPSC) (default 1)\n"
	"  -c, --capacity SIZE    data bytes per lane, a power of two from 1 KiB to\n"
	"                         1 GiB (default 1 MiB)\n"
	"  -m, --max-record SIZE  largest record payload, at most capacity/4\n"
	"                         (default: capacity/4, but at most 64 KiB)\n"
	"  --mode MODE            octal permission bits, set exactly, umask ignored\n"
	"                         (default 0600; 0660 lets the group use it)\n"
	"  -h, --help             this help\n"
	"\n"
	"Sizes take B, KiB, MiB, GiB (K, M, G too): 4096, 4KiB, 1MiB.\n";

static int bad_size(const char *opt, const char *arg, int err)
{
	if (err == -ERANGE)
		return cli_usage_err("invalid %s \"%s\": too large", opt, arg);
	return cli_usage_err("invalid %s \"%s\": expected a size such as 4096, 64KiB, 1MiB "
			     "(units B, KiB, MiB, GiB)", opt, arg);
}

int cmd_create(int argc, char **argv)
{
	static const struct option opts[] = {
		{"lanes", required_argument, NULL, 'l'},
		{"capacity", required_argument, NULL, 'c'},
		{"max-record", required_argument, NULL, 'm'},
		{"mode", required_argument, NULL, 'M'},
		{"state", no_argument, NULL, 's'},
		{"image-size", required_argument, NULL, 'i'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	uint64_t lanes = 1, capacity = DEFAULT_CAPACITY, max_record = 0, mode = 0600;
	uint64_t image_size = 0;
	bool have_max = false, state = false, have_image = false;
	const char *queue_opt = NULL; /* a queue-only option given (for --state's error) */
	int c, rc;
	opterr = 0;
	/* mode 0 would mean "0600" to the library; the user asking for 0000 is refused below. */
	while ((c = getopt_long(argc, argv, ":l:c:m:si:h", opts, NULL)) != -1) {
		switch (c) {
		case 'l':
			if (units_parse_uint(optarg, UINT32_MAX, &lanes) < 0 || lanes < 1 ||
			    lanes > TAKT_LANES_MAX)
				return cli_usage_err("invalid --lanes \"%s\": a number from 1 to %d",
						     optarg, TAKT_LANES_MAX);
			queue_opt = "--lanes";
			break;
		case 'c':
			rc = units_parse_size(optarg, &capacity);
			if (rc < 0)
				return bad_size("--capacity", optarg, rc);
			if (capacity < TAKT_CAPACITY_MIN || capacity > TAKT_CAPACITY_MAX ||
			    (capacity & (capacity - 1)) != 0)
				return cli_usage_err("invalid --capacity \"%s\": a power of two from "
						     "1 KiB to 1 GiB (e.g. 64KiB, 1MiB)", optarg);
			queue_opt = "--capacity";
			break;
		case 'm':
			rc = units_parse_size(optarg, &max_record);
			if (rc < 0)
				return bad_size("--max-record", optarg, rc);
			if (max_record == 0)
				return cli_usage_err("invalid --max-record \"%s\": must be at least "
						     "1 byte", optarg);
			have_max = true;
			queue_opt = "--max-record";
			break;
		case 's': state = true; break;
		case 'i':
			rc = units_parse_size(optarg, &image_size);
			if (rc < 0)
				return bad_size("--image-size", optarg, rc);
			if (image_size == 0 || image_size > TAKT_STATE_IMAGE_MAX)
				return cli_usage_err("invalid --image-size \"%s\": from 1 B to 64 MiB",
						     optarg);
			have_image = true;
			break;
		case 'M': {
			char *end;
			errno = 0;
			unsigned long v = strtoul(optarg, &end, 8);
			if (errno || end == optarg || *end || v > 07777 || optarg[0] == '-' ||
			    optarg[0] == '+' || optarg[0] == ' ')
				return cli_usage_err("invalid --mode \"%s\": octal permission bits "
						     "such as 0600 or 0660", optarg);
			mode = v;
			break;
		}
		case 'h': return cli_help();
		default: return cli_bad_option(c, argv);
		}
	}
	if (argc - optind != 1)
		return cli_usage_err("expects one channel NAME (see takt create --help)");
	const char *name = argv[optind];
	if (!cli_check_name(name))
		return EXIT_USAGE;
	if (mode == 0)
		return cli_usage_err("invalid --mode 0: nobody could open the channel");
	if (have_image && !state)
		return cli_usage_err("--image-size is for state channels: add --state");
	if (state) {
		if (queue_opt)
			return cli_usage_err("%s is for queue channels, not with --state", queue_opt);
		if (!have_image)
			return cli_usage_err("--state needs --image-size SIZE (e.g. 256, 4KiB)");
		struct takt_state_config scfg = {
			.image_size = (uint32_t)image_size,
			.mode = (uint32_t)mode,
		};
		rc = takt_state_create(name, &scfg);
		return rc < 0 ? cli_fail(name, rc) : EXIT_OK;
	}
	if (!have_max) {
		max_record = capacity / 4;
		if (max_record > DEFAULT_MAX_RECORD_CAP)
			max_record = DEFAULT_MAX_RECORD_CAP;
	} else if (max_record > capacity / 4) {
		char a[32], b[32], d[32];
		return cli_usage_err("invalid --max-record %s: at most a quarter of the capacity "
				     "(%s for --capacity %s)",
				     units_fmt_size(a, sizeof a, max_record),
				     units_fmt_size(b, sizeof b, capacity / 4),
				     units_fmt_size(d, sizeof d, capacity));
	}
	struct takt_queue_config cfg = {
		.capacity = capacity,
		.lanes = (uint32_t)lanes,
		.max_record = (uint32_t)max_record,
		.mode = (uint32_t)mode,
		.flags = 0,
	};
	rc = takt_queue_create(name, &cfg);
	if (rc < 0)
		return cli_fail(name, rc);
	return EXIT_OK;
}
