/* SPDX-License-Identifier: MIT */
/* The mechanisms of this build.  Issue 8 adds the kernel IPC mechanisms here. */
#include <stddef.h>
#include <string.h>

#include "mech.h"

const struct bench_mech *const bench_mechs[] = {
	&mech_null,
	&mech_cacheline,
	&mech_ring,
#ifndef BENCH_NO_TAKT
	&mech_takt,
#endif
	NULL,
};

const struct bench_mech *bench_mech_find(const char *name)
{
	for (size_t i = 0; bench_mechs[i]; i++)
		if (strcmp(bench_mechs[i]->name, name) == 0)
			return bench_mechs[i];
	return NULL;
}
