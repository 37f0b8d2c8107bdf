/* SPDX-License-Identifier: MIT */
/*
 * sbridge.c - state channel bridges (loop thread only).
 *
 * Reader bridge: a read-only mapping of the channel; taktd copies the
 * newest image with takt_state_snapshot, so it never takes the reader role
 * (a native reader can attach, restart and keep its role while clients
 * read through taktd).  The copy is shared by every client reading the
 * channel: a channel is looked at most once per loop iteration, and large
 * images are copied only when the channel's write counter moved.
 *
 * Writer bridge: taktd's takt_state_writer, shared by every client writing
 * the channel through taktd (takt allows one writer per channel).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "server.h"

/* Images above this size are copied only after the write counter moved
 * (reading it costs two fcntl calls; copying a small image is cheaper). */
#define COPY_FREELY_MAX (64u << 10)
#define SNAPSHOT_CALLS 4

int sbridge_get(struct server *s, const char *name, int role, struct sbridge **out)
{
	for (struct sbridge *sb = s->sbridges; sb; sb = sb->next) {
		if (sb->stale || sb->role != role || strcmp(sb->name, name) != 0)
			continue;
		/* the name may now name another instance (bridge.c) */
		int same = bridge_same_channel(name, sb->cfg.nonce);
		if (same < 0)
			return same;
		if (!same) {
			LOGI("state channel %s was re-created: new bridge", name);
			sb->stale = true;
			break;
		}
		sb->users++;
		*out = sb;
		return 0;
	}
	struct sbridge *sb = calloc(1, sizeof(*sb));
	if (!sb)
		return -ENOMEM;
	int rc;
	if (role == TD_ROLE_STATE_READ) {
		rc = takt_channel_open(name, TAKT_OPEN_RDONLY, &sb->ch);
		if (rc < 0)
			goto fail;
	} else {
		/* takt_state_writer_open refuses a queue channel (-EPROTOTYPE). */
		rc = takt_state_writer_open(name, &sb->wr);
		if (rc < 0)
			goto fail;
		sb->ch = takt_state_writer_channel(sb->wr);
	}
	takt_channel_config_get(sb->ch, &sb->cfg);
	if (sb->cfg.kind != TAKT_CHANNEL_STATE) {
		rc = -EPROTOTYPE;
		goto fail_close;
	}
	sb->image_size = sb->cfg.max_record;
	if (role == TD_ROLE_STATE_READ) {
		sb->img = malloc(sb->image_size);
		sb->scratch = malloc(sb->image_size);
		if (!sb->img || !sb->scratch) {
			rc = -ENOMEM;
			goto fail_close;
		}
	}
	sb->srv = s;
	sb->role = role;
	strcpy(sb->name, name);
	sb->users = 1;
	sb->next = s->sbridges;
	s->sbridges = sb;
	LOGI("state %s bridge for %s (%u bytes)", role == TD_ROLE_STATE_READ ? "reader" : "writer", name,
	     sb->image_size);
	*out = sb;
	return 0;

fail_close:
	if (sb->wr)
		takt_state_writer_close(sb->wr);
	else
		takt_channel_close(sb->ch);
fail:
	free(sb->img);
	free(sb->scratch);
	free(sb);
	return rc;
}

void sbridge_put(struct sbridge *sb)
{
	if (--sb->users)
		return;
	struct server *s = sb->srv;
	for (struct sbridge **pp = &s->sbridges; *pp; pp = &(*pp)->next)
		if (*pp == sb) {
			*pp = sb->next;
			break;
		}
	if (sb->wr)
		takt_state_writer_close(sb->wr);
	else
		takt_channel_close(sb->ch);
	LOGI("state bridge for %s closed", sb->name);
	free(sb->img);
	free(sb->scratch);
	free(sb);
}

int sbridge_refresh(struct sbridge *sb, uint64_t now_ns)
{
	if (sb->looked_ns == now_ns && sb->info.generation)
		return 0;
	uint64_t writes = 0;
	if (sb->image_size > COPY_FREELY_MAX) {
		struct takt_state_stats st;
		if (takt_state_stats_get(sb->ch, &st) == 0) {
			writes = st.writes;
			if (writes == sb->writes_seen && sb->info.generation) {
				sb->looked_ns = now_ns;
				return 0;
			}
		}
	}
	struct takt_state_info info;
	int r;
	/* Each call makes 8 optimistic copies; a writer publishing faster
	 * than we copy makes them all fail: try a few calls, then -EAGAIN. */
	for (int k = 0; k < SNAPSHOT_CALLS; k++)
		if ((r = takt_state_snapshot(sb->ch, sb->scratch, sb->image_size, &info)) != -EAGAIN)
			break;
	if (r < 0)
		return r;
	sb->looked_ns = now_ns;
	sb->writes_seen = writes;
	/* Keep only a newer image: generations a client sees never go back. */
	if (info.generation > sb->info.generation) {
		uint8_t *t = sb->img;
		sb->img = sb->scratch;
		sb->scratch = t;
		sb->info = info;
	}
	return 0;
}
