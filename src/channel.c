/* SPDX-License-Identifier: MIT */
/* channel.c - takt_channel: one process's validated mapping of a segment. */
#include <errno.h>
#include <stdlib.h>

#include "internal.h"

int takt_channel_open(const char *name, unsigned flags, takt_channel **out)
{
	if (!out || (flags & ~(unsigned)(TAKT_OPEN_RDONLY | TAKT_OPEN_FENCED)))
		return -EINVAL;
	takt_channel *ch = calloc(1, sizeof *ch);
	if (!ch)
		return -ENOMEM;
	ch->fd = -1;
	int rc = takt_segment_map(name, flags, ch);
	if (rc < 0) {
		free(ch);
		return rc;
	}
	*out = ch;
	return 0;
}

int takt_channel_close(takt_channel *ch)
{
	if (!ch)
		return 0;
	if (atomic_load_explicit(&ch->attached, memory_order_relaxed) != 0)
		return -EBUSY;
	takt_segment_unmap(ch);
	free(ch);
	return 0;
}

int takt_channel_config_get(const takt_channel *ch, struct takt_channel_config *out)
{
	if (!ch || !out)
		return -EINVAL;
	*out = (struct takt_channel_config){
		.capacity = ch->geo.capacity,
		.total_size = ch->geo.total_size,
		.created_ns = ch->geo.created_ns,
		.nonce = ch->geo.nonce,
		.kind = ch->geo.kind,
		.lanes = ch->geo.lanes,
		.max_record = ch->geo.max_record,
		.layout_major = TAKT_LAYOUT_MAJOR,
		.layout_minor = ch->geo.layout_minor,
	};
	return 0;
}
