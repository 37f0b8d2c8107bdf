/* SPDX-License-Identifier: MIT */
/*
 * cli.h - what the subcommands of the `takt` tool share: exit codes, error
 * reporting, option parsing helpers and the subcommand entry points.
 * The tool uses the public API (takt.h) only.
 */
#ifndef TAKT_CLI_H
#define TAKT_CLI_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "takt.h"

/* Exit codes (docs/CLI.md, "Exit status"). */
enum {
	EXIT_OK = 0,       /* success */
	EXIT_RUNTIME = 1,  /* any other failure: permission, corrupt channel, I/O, ... */
	EXIT_USAGE = 2,    /* bad command line: unknown option, bad name, size, duration */
	EXIT_NOTFOUND = 3, /* no such channel */
	EXIT_BUSY = 4,     /* refused: live endpoint, name exists, every slot taken */
	EXIT_TIMEOUT = 5,  /* a deadline passed (send/recv/state get) */
};

/* A subcommand: its name, entry point, one-line summary and usage text. */
struct cli_cmd {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
	const char *usage; /* full --help text */
};

/* The subcommand currently running ("ls", "create", ...), for messages. */
extern const char *cli_cmd_name;
/* Its --help text. */
extern const char *cli_cmd_usage;

/* "takt: <cmd>: <message>" on stderr, one line. */
void cli_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "takt: <cmd>: channel "<name>": <message>" on stderr, one line. */
void cli_chan_err(const char *name, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "takt: <cmd>: channel "<name>": <takt_strerror(err)>"; returns cli_exit_for(err). */
int cli_fail(const char *name, int err);
/* The exit code for a negative errno returned by libtakt. */
int cli_exit_for(int err);
/* Why a channel cannot be opened, in a few words (EACCES, EAGAIN, EBADMSG...). */
const char *cli_open_error_text(int err);
/* Report a failed open of a channel with cli_open_error_text; returns the exit code. */
int cli_open_fail(const char *name, int err);
/* The symbolic name of an errno value ("ENOENT"); "E<n>" if unknown. */
const char *cli_errno_name(int err);

/* Channel names: the rule of takt.h (1..TAKT_NAME_MAX of [A-Za-z0-9._-]).
 * Returns true if valid; otherwise reports it and returns false. */
bool cli_check_name(const char *name);

/* Option parsing (getopt_long).  cli_bad_option reports the last option
 * getopt_long refused ('?' or ':' return) and returns EXIT_USAGE. */
int cli_bad_option(int c, char **argv);
/* Print the usage of the current subcommand on stdout; returns EXIT_OK. */
int cli_help(void);
/* Report a usage error and return EXIT_USAGE. */
int cli_usage_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Shell-style glob match of a channel name against patterns (none = all). */
bool cli_name_matches(const char *name, char **patterns, int npatterns);

/* The names of every channel (takt_list), sorted; *out is malloc'ed, each
 * name too.  Returns the count or a negative errno. */
int cli_list_names(char ***out);
void cli_free_names(char **names, int n);

/* SIGINT/SIGTERM end loops cleanly: install the handler, then poll. */
void cli_catch_stop_signals(void);
extern volatile int cli_stop;

/* CLOCK_REALTIME now, in ns. */
uint64_t cli_realtime_ns(void);

/* The subcommands. */
int cmd_ls(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_stat(int argc, char **argv);
int cmd_create(int argc, char **argv);
int cmd_rm(int argc, char **argv);
int cmd_gc(int argc, char **argv);
int cmd_send(int argc, char **argv);
int cmd_recv(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_state(int argc, char **argv);

extern const char usage_ls[], usage_info[], usage_stat[], usage_create[], usage_rm[],
	usage_gc[], usage_send[], usage_recv[], usage_bench[], usage_state[];

#endif
