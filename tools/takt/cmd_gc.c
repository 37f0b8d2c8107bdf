/* SPDX-License-Identifier: MIT */
/*
 * cmd_gc.c - `takt gc`: remove the channels no live process holds (stale:
 * every endpoint died or closed, or the creator died mid-creation), with
 * their semaphores.  Each removal is takt_unlink_stale(), which checks and
 * removes atomically against endpoints attaching, so a live channel is never
 * removed.
 */
#include <errno.h>
#include <getopt.h>

#include "cli.h"
#include "units.h"

const char usage_gc[] =
	"Usage: takt gc [--dry-run] [--min-age D] [PATTERN...]\n"
	"\n"
	"Remove stale channels: those no live process holds as consumer or producer\n"
	"(their endpoints exited or were killed), including unreadable ones whose\n"
	"creator died, together with their semaphores.  Prints \"removed NAME\" for\n"
	"each.  A channel just created and not yet opened by anyone is stale too:\n"
	"use --min-age to spare young channels, PATTERNs (shell globs, quote them)\n"
	"to limit gc to some names.  Without PATTERNs, semaphores left without their\n"
	"channel (by a crash during a removal) are removed too.\n"
	"\n"
	"Options:\n"
	"  -n, --dry-run    only print \"would remove NAME\" for each stale channel\n"
	"  --min-age D      spare channels younger than D (e.g. 10s, 5m); channels\n"
	"                   whose header cannot be read are then spared too\n"
	"  -h, --help       this help\n"
	"\n"
	"Exit status 0 unless a channel could not be checked (e.g. permission).\n";

/* Would gc consider it?  1 stale (and old enough), 0 no, negative errno. */
static int check_candidate(const char *name, uint64_t min_age_ns, uint64_t now_rt)
{
	takt_channel *ch;
	int rc = takt_channel_open(name, TAKT_OPEN_RDONLY, &ch);
	if (rc < 0) {
		/* Not ready or not readable as a channel: only the locks tell, which
		 * takt_unlink_stale checks; its age is unknown. */
		if ((rc == -EAGAIN || rc == -EBADMSG || rc == -EPROTONOSUPPORT) && min_age_ns == 0)
			return 1;
		return rc == -EAGAIN || rc == -EBADMSG || rc == -EPROTONOSUPPORT ? 0 : rc;
	}
	struct takt_channel_config cfg;
	rc = takt_channel_config_get(ch, &cfg);
	if (rc == 0)
		rc = takt_channel_is_stale(ch);
	takt_channel_close(ch);
	if (rc == 1 && min_age_ns && !(now_rt > cfg.created_ns && now_rt - cfg.created_ns >= min_age_ns))
		return 0;
	return rc;
}

static int print_orphan(const char *sem_name, void *arg)
{
	(void)arg;
	printf("removed orphaned semaphore %s\n", sem_name);
	return 0;
}

int cmd_gc(int argc, char **argv)
{
	static const struct option opts[] = {
		{"dry-run", no_argument, NULL, 'n'},
		{"min-age", required_argument, NULL, 'a'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	bool dry = false;
	uint64_t min_age = 0;
	int c;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":nh", opts, NULL)) != -1) {
		switch (c) {
		case 'n': dry = true; break;
		case 'a':
			if (units_parse_duration(optarg, &min_age, 0) < 0)
				return cli_usage_err("invalid --min-age \"%s\": a duration such as "
						     "30s or 10m", optarg);
			break;
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
	int status = EXIT_OK;
	uint64_t now_rt = cli_realtime_ns();
	for (int i = 0; i < n; i++) {
		const char *name = names[i];
		if (!cli_name_matches(name, patterns, npatterns))
			continue;
		int rc = check_candidate(name, min_age, now_rt);
		if (rc == -ENOENT || rc == 0)
			continue;
		if (rc < 0) {
			cli_chan_err(name, "cannot check it: %s", takt_strerror(rc));
			status = EXIT_RUNTIME;
			continue;
		}
		if (dry) {
			printf("would remove %s\n", name);
			continue;
		}
		rc = takt_unlink_stale(name);
		if (rc == 0) {
			printf("removed %s\n", name);
		} else if (rc != -EBUSY && rc != -ENOENT) {
			/* -EBUSY: an endpoint attached since; -ENOENT: removed since. */
			cli_chan_err(name, "cannot remove it: %s", takt_strerror(rc));
			status = EXIT_RUNTIME;
		}
	}
	cli_free_names(names, n);
	/* Semaphores whose segment is gone (a crash during a removal) belong to
	 * no channel: remove them too, unless only some names were asked for. */
	if (!dry && npatterns == 0) {
		int removed = takt_unlink_orphan_semaphores(print_orphan, NULL);
		if (removed < 0) {
			cli_err("cannot remove orphaned semaphores: %s", takt_strerror(removed));
			status = EXIT_RUNTIME;
		}
	}
	return status;
}
