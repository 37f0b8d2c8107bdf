/* SPDX-License-Identifier: MIT */
/*
 * cmd_bench.c - `takt bench ...`: the entry point of the benchmark suite.
 * It executes the `takt-bench` program with the same arguments, found
 *   1. in $TAKT_BENCH, if set (a path);
 *   2. next to this executable (/proc/self/exe): the installed layout;
 *   3. at ../../bench/takt-bench from it: the CMake build tree
 *      (build/tools/takt/takt and build/bench/takt-bench);
 *   4. in PATH.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

#define BENCH_PROG "takt-bench"

const char usage_bench[] =
	"Usage: takt bench [ARGS...]\n"
	"\n"
	"Run the benchmark suite: executes `takt-bench ARGS...` (see its --help and\n"
	"docs/BENCHMARKS.md).  takt-bench is looked up in $TAKT_BENCH, next to the\n"
	"takt executable, in the build tree (../../bench/ from it), then in PATH.\n";

static bool executable(const char *path)
{
	return access(path, X_OK) == 0;
}

/* The directory of this executable, with a trailing '/'; false if unknown. */
static bool self_dir(char *out, size_t n)
{
	ssize_t len = readlink("/proc/self/exe", out, n - 1);
	if (len <= 0 || (size_t)len >= n - 1)
		return false;
	out[len] = '\0';
	char *slash = strrchr(out, '/');
	if (!slash)
		return false;
	slash[1] = '\0';
	return true;
}

int cmd_bench(int argc, char **argv)
{
	char path[PATH_MAX + 64];
	const char *found = NULL;
	const char *env = getenv("TAKT_BENCH");
	if (env && *env) {
		if (!executable(env)) {
			cli_err("TAKT_BENCH=%s is not an executable program", env);
			return EXIT_RUNTIME;
		}
		found = env;
	}
	char dir[PATH_MAX];
	if (!found && self_dir(dir, sizeof dir)) {
		snprintf(path, sizeof path, "%s%s", dir, BENCH_PROG);
		if (executable(path)) {
			found = path;
		} else {
			snprintf(path, sizeof path, "%s../../bench/%s", dir, BENCH_PROG);
			if (executable(path))
				found = path;
		}
	}
	argv[0] = (char *)BENCH_PROG;
	if (found)
		execv(found, argv);
	else
		execvp(BENCH_PROG, argv);
	int err = errno;
	/* Here only when nothing could be executed. */
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			fputs(usage_bench, stdout);
			printf("\n(%s was not found: build the benchmarks with\n"
			       "-DTAKT_BUILD_BENCH=ON, or set TAKT_BENCH.)\n", BENCH_PROG);
			return EXIT_OK;
		}
	}
	if (found)
		cli_err("cannot run %s: %s", found, strerror(err));
	else
		cli_err("the benchmark program %s was not found next to takt, in the build tree "
			"or in PATH (build it with -DTAKT_BUILD_BENCH=ON, or set TAKT_BENCH)",
			BENCH_PROG);
	return EXIT_RUNTIME;
}
