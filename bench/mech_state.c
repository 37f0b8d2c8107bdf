/* SPDX-License-Identifier: MIT */
/*
 * mech_state.c - takt state channels (issue 9): the update latency of a
 * latest-value channel, next to the queue channel in the same run.
 * Latency only (a state channel keeps the newest image, not a stream): two
 * channels, <base>.a (ping -> pong) and <base>.b (pong -> ping), each image
 * the record itself.  Busy mode: the reader polls takt_state_peek until the
 * image is fresh, then copies it out; blocking mode: takt_state_wait_newer
 * (spin budget --spin-ns, then park) and takt_state_read.  The writer uses
 * takt_state_write.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <takt.h>

#include "mech.h"

struct st_state {
	char name[2][TAKT_NAME_MAX + 1];
	int created[2];
};

struct st_ep {
	int blocking;
	takt_state_writer *w;
	takt_state_reader *r;
};

static char live[4][TAKT_NAME_MAX + 1];

static void st_unlink_all(void)
{
	for (int i = 0; i < 4; i++)
		if (live[i][0]) {
			takt_unlink(live[i]);
			live[i][0] = 0;
		}
}

static void st_teardown(void *state)
{
	struct st_state *s = state;
	for (int i = 0; i < 2; i++)
		if (s->created[i]) {
			takt_unlink(s->name[i]);
			for (int k = 0; k < 4; k++)
				if (strcmp(live[k], s->name[i]) == 0)
					live[k][0] = 0;
		}
	free(s);
}

static int st_setup(const struct bench_params *p, void **state)
{
	struct st_state *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	struct takt_state_config cfg = { .image_size = (uint32_t)p->size, .mode = 0600 };
	for (int i = 0; i < 2; i++) {
		snprintf(s->name[i], sizeof(s->name[i]), "takt-bench.%ld.%u.s%c", (long)getpid(),
			 p->id, i ? 'b' : 'a');
		int e = takt_state_create(s->name[i], &cfg);
		if (e == -EEXIST) {
			takt_unlink(s->name[i]);
			e = takt_state_create(s->name[i], &cfg);
		}
		if (e < 0) {
			st_teardown(s);
			return e;
		}
		s->created[i] = 1;
		for (int k = 0; k < 4; k++)
			if (!live[k][0]) {
				snprintf(live[k], sizeof(live[k]), "%s", s->name[i]);
				break;
			}
	}
	*state = s;
	return 0;
}

static void st_close(void *ep)
{
	struct st_ep *e = ep;
	if (!e)
		return;
	if (e->w)
		takt_state_writer_close(e->w);
	if (e->r)
		takt_state_reader_close(e->r);
	free(e);
}

static int st_open(void *state, const struct bench_params *p, enum bench_role role, void **out)
{
	struct st_state *s = state;
	if (role != ROLE_PING && role != ROLE_PONG)
		return -EOPNOTSUPP;
	struct st_ep *e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	int a = role == ROLE_PING ? 0 : 1; /* the channel this side writes */
	int err = takt_state_writer_open(s->name[a], &e->w);
	if (!err)
		err = takt_state_reader_open(s->name[1 - a], &e->r);
	if (err < 0) {
		st_close(e);
		return err;
	}
	takt_state_reader_set_spin_ns(e->r, p->spin_ns); /* the same budget as the queue rows */
	e->blocking = p->blocking;
	*out = e;
	return 0;
}

static int st_try_send(void *ep, const void *buf, size_t len)
{
	return takt_state_write(((struct st_ep *)ep)->w, buf, len);
}

static int st_try_recv(void *ep, void *buf, size_t cap)
{
	struct st_ep *e = ep;
	if (e->blocking) {
		int rc = takt_state_wait_newer(e->r, takt_deadline_in(200000000ull));
		if (rc < 0)
			return rc == -ETIMEDOUT ? -EAGAIN : rc;
		struct takt_state_info info;
		rc = takt_state_read(e->r, buf, cap, &info);
		return rc >= 0 && !info.fresh ? -EAGAIN : rc;
	}
	const void *img;
	struct takt_state_info info;
	int n = takt_state_peek(e->r, &img, &info);
	if (n < 0)
		return n;
	if (!info.fresh)
		return -EAGAIN;
	if ((size_t)n > cap)
		return -EMSGSIZE;
	memcpy(buf, img, (size_t)n);
	return n;
}

const struct bench_mech mech_state = {
	.name = "takt-state",
	.title = "takt state channels (latest value), update round trip",
	.setup = st_setup,
	.open = st_open,
	.try_send = st_try_send,
	.try_recv = st_try_recv,
	.close = st_close,
	.teardown = st_teardown,
	.cleanup_all = st_unlink_all,
	.flags = MECH_BUSY | MECH_BLOCK | MECH_NO_STREAM,
	.group = "takt",
};
