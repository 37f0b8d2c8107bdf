/* SPDX-License-Identifier: MIT */
/*
 * mech_null.c - no IPC at all: send keeps the record in private memory and
 * receive hands it straight back.  Its "round trip" is what the harness
 * itself costs per sample (two indirect calls, the sequence check and one
 * timer reading, which alone is 20-30 ns on some VMs): the floor under every
 * other figure.  The pong process runs its loop alone and exits.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mech.h"

struct null_ep {
	size_t len;
	int full;
	unsigned char rec[];
};

static int null_setup(const struct bench_params *p, void **state)
{
	(void)p;
	*state = NULL;
	return 0;
}

static int null_open(void *state, const struct bench_params *p, enum bench_role role, void **out)
{
	(void)state;
	if (role != ROLE_PING && role != ROLE_PONG)
		return -EOPNOTSUPP;
	struct null_ep *e = calloc(1, sizeof(*e) + p->size);
	if (!e)
		return -ENOMEM;
	/* pong receives first: give it one record to start from */
	e->full = role == ROLE_PONG;
	e->len = p->size;
	uint64_t one = 1;
	memcpy(e->rec, &one, 8);
	*out = e;
	return 0;
}

static int null_try_send(void *ep, const void *buf, size_t len)
{
	struct null_ep *e = ep;
	memcpy(e->rec, buf, len);
	e->len = len;
	e->full = 1;
	return 0;
}

static int null_try_recv(void *ep, void *buf, size_t cap)
{
	struct null_ep *e = ep;
	if (!e->full)
		return -EAGAIN;
	size_t n = cap < e->len ? cap : e->len;
	memcpy(buf, e->rec, n);
	e->full = 0;
	return (int)n;
}

static void null_close(void *ep) { free(ep); }
static void null_teardown(void *state) { (void)state; }

const struct bench_mech mech_null = {
	.name = "null",
	.title = "no IPC: the harness's own cost per round trip (the floor)",
	.setup = null_setup,
	.open = null_open,
	.try_send = null_try_send,
	.try_recv = null_try_recv,
	.close = null_close,
	.teardown = null_teardown,
	.flags = MECH_BUSY | MECH_SEQ_ONLY | MECH_NO_STREAM,
	.group = "floor",
};
