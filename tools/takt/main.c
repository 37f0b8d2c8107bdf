/* SPDX-License-Identifier: MIT */
/*
 * main.c - `takt`: entry point and dispatch to the subcommands.
 *
 *   takt [--help | --version]
 *   takt <command> [options] [arguments]
 *   takt help [<command>]
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

#ifndef TAKT_CLI_VERSION
#define TAKT_CLI_VERSION "unknown"
#endif

static const struct cli_cmd commands[] = {
	{"ls", cmd_ls, "list channels with liveness, fill level and counters", usage_ls},
	{"info", cmd_info, "show one channel's configuration and the state of each lane", usage_info},
	{"stat", cmd_stat, "watch one channel's rates (records/s, bytes/s, fill)", usage_stat},
	{"create", cmd_create, "create a queue or state channel", usage_create},
	{"rm", cmd_rm, "remove channels (refuses live ones unless --force)", usage_rm},
	{"gc", cmd_gc, "remove stale channels (no live endpoint)", usage_gc},
	{"send", cmd_send, "send records from the command line or stdin", usage_send},
	{"recv", cmd_recv, "receive records to stdout", usage_recv},
	{"state", cmd_state, "read or write the image of a state channel (get, set)", usage_state},
	{"bench", cmd_bench, "run the benchmark suite (takt-bench)", usage_bench},
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void print_main_help(FILE *f)
{
	fprintf(f,
		"Usage: takt <command> [options] [arguments]\n"
		"       takt --help | --version\n"
		"       takt help <command>\n"
		"\n"
		"Inspect and manage takt shared-memory channels.\n"
		"\n"
		"Commands:\n");
	for (size_t i = 0; i < NCOMMANDS; i++)
		fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].summary);
	fprintf(f,
		"\n"
		"Every command takes --help.  Sizes take B, KiB, MiB, GiB (K, M, G too);\n"
		"durations take ns, us, ms, s (a bare number is seconds).\n"
		"\n"
		"Exit status: 0 ok, 1 runtime error, 2 usage error, 3 no such channel,\n"
		"4 busy or refused (live endpoint, name exists), 5 timeout.\n"
		"See docs/CLI.md.\n");
}

static const struct cli_cmd *find_cmd(const char *name)
{
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		print_main_help(stderr);
		return EXIT_USAGE;
	}
	const char *arg = argv[1];
	if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
		print_main_help(stdout);
		return EXIT_OK;
	}
	if (strcmp(arg, "--version") == 0 || strcmp(arg, "-V") == 0) {
		printf("takt %s (libtakt %d.%d.%d)\n", TAKT_CLI_VERSION, TAKT_VERSION_MAJOR,
		       TAKT_VERSION_MINOR, TAKT_VERSION_PATCH);
		return EXIT_OK;
	}
	if (strcmp(arg, "help") == 0) {
		if (argc < 3) {
			print_main_help(stdout);
			return EXIT_OK;
		}
		const struct cli_cmd *c = find_cmd(argv[2]);
		if (!c) {
			fprintf(stderr, "takt: help: unknown command \"%s\" (see takt --help)\n", argv[2]);
			return EXIT_USAGE;
		}
		fputs(c->usage, stdout);
		return EXIT_OK;
	}
	const struct cli_cmd *c = find_cmd(arg);
	if (!c) {
		if (arg[0] == '-')
			fprintf(stderr, "takt: unknown option \"%s\" (see takt --help)\n", arg);
		else
			fprintf(stderr, "takt: unknown command \"%s\" (see takt --help)\n", arg);
		return EXIT_USAGE;
	}
	cli_cmd_name = c->name;
	cli_cmd_usage = c->usage;
	int rc = c->run(argc - 1, argv + 1);
	/* ferror too: a write that failed in an earlier flush leaves nothing
	 * for this one to fail on (e.g. takt stat > /dev/full). */
	errno = 0;
	if ((fflush(stdout) != 0 || ferror(stdout)) && rc == EXIT_OK) {
		cli_err("cannot write the output: %s", errno ? strerror(errno) : "write error");
		rc = EXIT_RUNTIME;
	}
	return rc;
}
