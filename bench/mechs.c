/* SPDX-License-Identifier: MIT */
/* The mechanisms of this build, in the order tables show them. */
#include <stddef.h>
#include <string.h>

#include "mech.h"

const struct bench_mech *const bench_mechs[] = {
	&mech_null,
	&mech_cacheline,
	&mech_linepair,
#ifndef BENCH_NO_TAKT
	&mech_takt,
	&mech_state,
#endif
	&mech_ring,
#ifdef BENCH_HAVE_CK
	&mech_ck,
#endif
	&mech_pipe,
	&mech_fifo,
	&mech_unix_stream,
	&mech_unix_seqpacket,
	&mech_unix_dgram,
	&mech_posix_mq,
	&mech_sysv_mq,
	&mech_eventfd,
	&mech_sem,
	&mech_futex,
	&mech_tcp,
	NULL,
};

const struct bench_mech *bench_mech_find(const char *name)
{
	for (size_t i = 0; bench_mechs[i]; i++)
		if (strcmp(bench_mechs[i]->name, name) == 0)
			return bench_mechs[i];
	return NULL;
}
