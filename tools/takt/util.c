/* SPDX-License-Identifier: MIT */
/*
 * util.c - error reporting, exit codes, name checks, option errors, channel
 * enumeration and stop signals shared by the subcommands.
 */
#include <errno.h>
#include <fnmatch.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli.h"

const char *cli_cmd_name = "";
const char *cli_cmd_usage = "";
volatile int cli_stop;

static void vreport(const char *name, const char *fmt, va_list ap)
{
	fputs("takt: ", stderr);
	if (cli_cmd_name[0])
		fprintf(stderr, "%s: ", cli_cmd_name);
	if (name)
		fprintf(stderr, "channel \"%s\": ", name);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

void cli_err(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vreport(NULL, fmt, ap);
	va_end(ap);
}

void cli_chan_err(const char *name, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vreport(name, fmt, ap);
	va_end(ap);
}

int cli_exit_for(int err)
{
	switch (err < 0 ? -err : err) {
	case 0: return EXIT_OK;
	case EINVAL: return EXIT_USAGE;
	case ENOENT: return EXIT_NOTFOUND;
	case EBUSY:
	case EEXIST: return EXIT_BUSY;
	case ETIMEDOUT: return EXIT_TIMEOUT;
	default: return EXIT_RUNTIME;
	}
}

int cli_fail(const char *name, int err)
{
	/* takt_strerror does not know these: strerror's words are about
	 * sockets and addresses */
	if (err == -EPROTOTYPE || err == -EFAULT)
		return cli_open_fail(name, err);
	if (name)
		cli_chan_err(name, "%s", takt_strerror(err));
	else
		cli_err("%s", takt_strerror(err));
	return cli_exit_for(err);
}

const char *cli_open_error_text(int err)
{
	switch (err < 0 ? -err : err) {
	case EACCES: return "permission denied";
	case EAGAIN: return "not ready (being created, or its creator died)";
	case EBADMSG: return "corrupt or not a takt segment";
	case EPROTONOSUPPORT: return "unsupported layout version";
	case EPROTOTYPE: return "wrong kind of channel (a queue call on a state channel, or the reverse)";
	case EFAULT: return "its segment shrank while being read (truncated by another process)";
	default: return takt_strerror(err);
	}
}

int cli_open_fail(const char *name, int err)
{
	/* -ENOENT with the segment present: an endpoint's semaphore is gone
	 * (removed by hand, or by a crash in the middle of a removal). */
	char path[TAKT_NAME_MAX + 32];
	struct stat st;
	snprintf(path, sizeof path, "/dev/shm/takt.%s", name);
	if (err == -ENOENT && lstat(path, &st) == 0)
		cli_chan_err(name, "its semaphores are missing (removed by hand, or a removal "
			     "was interrupted): remove it with takt rm --force and create it again");
	else
		cli_chan_err(name, "%s", err == -ENOENT ? "no such channel" : cli_open_error_text(err));
	return cli_exit_for(err);
}

const char *cli_errno_name(int err)
{
	static char buf[16];
	switch (err < 0 ? -err : err) {
	case EINVAL: return "EINVAL";
	case EEXIST: return "EEXIST";
	case ENOENT: return "ENOENT";
	case EACCES: return "EACCES";
	case EPERM: return "EPERM";
	case ENOSPC: return "ENOSPC";
	case EAGAIN: return "EAGAIN";
	case EMSGSIZE: return "EMSGSIZE";
	case EBADMSG: return "EBADMSG";
	case EPROTONOSUPPORT: return "EPROTONOSUPPORT";
	case EBUSY: return "EBUSY";
	case EPROTOTYPE: return "EPROTOTYPE";
	case EFAULT: return "EFAULT";
	case ETIMEDOUT: return "ETIMEDOUT";
	case EALREADY: return "EALREADY";
	case ENOMEM: return "ENOMEM";
	case EMFILE: return "EMFILE";
	case ENFILE: return "ENFILE";
	case EIO: return "EIO";
	default:
		snprintf(buf, sizeof buf, "E%d", err < 0 ? -err : err);
		return buf;
	}
}

static bool name_char_ok(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '_' || c == '-';
}

bool cli_check_name(const char *name)
{
	size_t n = strlen(name);
	bool ok = n >= 1 && n <= TAKT_NAME_MAX && strcmp(name, ".") != 0 && strcmp(name, "..") != 0;
	for (size_t i = 0; ok && i < n; i++)
		ok = name_char_ok(name[i]);
	if (!ok) {
		/* Print an over-long name shortened: the line stays readable. */
		if (n > 64)
			cli_err("channel \"%.40s...\" (%zu characters): invalid name: at most %d "
				"characters from A-Z a-z 0-9 . _ -",
				name, n, TAKT_NAME_MAX);
		else
			cli_chan_err(name, "invalid name: 1 to %d characters from A-Z a-z 0-9 . _ - "
				     "(not \".\" or \"..\")", TAKT_NAME_MAX);
	}
	return ok;
}

int cli_usage_err(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vreport(NULL, fmt, ap);
	va_end(ap);
	return EXIT_USAGE;
}

int cli_bad_option(int c, char **argv)
{
	const char *opt = argv[optind - 1];
	if (c == ':')
		return cli_usage_err("option \"%s\" needs a value (see takt %s --help)", opt,
				     cli_cmd_name);
	if (strncmp(opt, "--", 2) == 0) {
		/* A known long option given a value it does not take: optopt is set. */
		if (optopt && strchr(opt, '='))
			return cli_usage_err("option \"%.*s\" takes no value (see takt %s --help)",
					     (int)(strchr(opt, '=') - opt), opt, cli_cmd_name);
		return cli_usage_err("unknown option \"%s\" (see takt %s --help)", opt,
				     cli_cmd_name);
	}
	if (optopt && optopt != '?')
		return cli_usage_err("unknown option \"-%c\" (see takt %s --help)", optopt,
				     cli_cmd_name);
	return cli_usage_err("unknown option \"%s\" (see takt %s --help)", opt, cli_cmd_name);
}

int cli_help(void)
{
	fputs(cli_cmd_usage, stdout);
	return EXIT_OK;
}

bool cli_name_matches(const char *name, char **patterns, int npatterns)
{
	if (npatterns == 0)
		return true;
	for (int i = 0; i < npatterns; i++)
		if (fnmatch(patterns[i], name, 0) == 0)
			return true;
	return false;
}

struct name_list {
	char **v;
	int n, cap;
	int err;
};

static int collect(const char *name, void *arg)
{
	struct name_list *l = arg;
	if (l->n == l->cap) {
		int cap = l->cap ? 2 * l->cap : 32;
		char **v = realloc(l->v, (size_t)cap * sizeof *v);
		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	char *copy = strdup(name);
	if (!copy)
		return -ENOMEM;
	l->v[l->n++] = copy;
	return 0;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int cli_list_names(char ***out)
{
	struct name_list l = {0};
	int rc = takt_list(collect, &l);
	if (rc < 0) {
		cli_free_names(l.v, l.n);
		return rc;
	}
	if (l.n > 1)
		qsort(l.v, (size_t)l.n, sizeof *l.v, cmp_names);
	*out = l.v;
	return l.n;
}

void cli_free_names(char **names, int n)
{
	for (int i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

static void on_stop(int sig)
{
	(void)sig;
	cli_stop = 1;
}

void cli_catch_stop_signals(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_stop;
	sigemptyset(&sa.sa_mask);
	/* SA_RESTART keeps stdio writes whole; clock_nanosleep is never restarted
	 * (signal(7)), so a sleeping `stat` still wakes with EINTR. */
	sa.sa_flags = SA_RESTART;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

uint64_t cli_realtime_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
