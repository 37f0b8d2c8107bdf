/* SPDX-License-Identifier: MIT */
/*
 * cmd_rm.c - `takt rm NAME...`: remove channels.  Without --force only a
 * channel no live endpoint holds (takt_unlink_stale: the check and the
 * removal are atomic against endpoints attaching); with --force any
 * (takt_unlink: processes that have it open keep using it until they close).
 */
#include <errno.h>
#include <getopt.h>

#include "cli.h"

const char usage_rm[] =
	"Usage: takt rm [--force] [--verbose] NAME...\n"
	"\n"
	"Remove channels and their semaphores.  A channel a live process holds (as\n"
	"consumer or producer, or while it is being created) is refused (exit 4)\n"
	"unless --force.  A missing channel is exit 3.  With several NAMEs each is\n"
	"tried; the exit status is that of the first failure.\n"
	"\n"
	"Options:\n"
	"  -f, --force    remove even if live endpoints hold it: they keep their\n"
	"                 mapping until they close it, new opens fail\n"
	"  -v, --verbose  print \"removed NAME\" for each channel removed\n"
	"  -h, --help     this help\n";

int cmd_rm(int argc, char **argv)
{
	static const struct option opts[] = {
		{"force", no_argument, NULL, 'f'},
		{"verbose", no_argument, NULL, 'v'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	bool force = false, verbose = false;
	int c;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":fvh", opts, NULL)) != -1) {
		switch (c) {
		case 'f': force = true; break;
		case 'v': verbose = true; break;
		case 'h': return cli_help();
		default: return cli_bad_option(c, argv);
		}
	}
	if (optind >= argc)
		return cli_usage_err("expects at least one channel NAME (see takt rm --help)");
	for (int i = optind; i < argc; i++)
		if (!cli_check_name(argv[i]))
			return EXIT_USAGE;
	int status = EXIT_OK;
	for (int i = optind; i < argc; i++) {
		const char *name = argv[i];
		int rc = force ? takt_unlink(name) : takt_unlink_stale(name);
		int code = EXIT_OK;
		if (rc == -EBUSY) {
			cli_chan_err(name, "a live endpoint holds it (use --force to remove it anyway)");
			code = EXIT_BUSY;
		} else if (rc == -ENOENT) {
			cli_chan_err(name, "no such channel");
			code = EXIT_NOTFOUND;
		} else if (rc < 0) {
			code = cli_fail(name, rc);
		} else if (verbose) {
			printf("removed %s\n", name);
		}
		if (status == EXIT_OK)
			status = code;
	}
	return status;
}
