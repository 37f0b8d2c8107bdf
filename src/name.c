/* SPDX-License-Identifier: MIT */
/*
 * name.c - channel names and the names of the objects behind a channel:
 *   segment            /takt.<name>        (/dev/shm/takt.<name>)
 *   receive doorbell   /takt.<name>.rx     (/dev/shm/sem.takt.<name>.rx)
 *   space doorbell k   /takt.<name>.tx<k>  (/dev/shm/sem.takt.<name>.tx<k>)
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

static int name_char_ok(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '_' || c == '-';
}

int takt_name_check(const char *name)
{
	if (!name)
		return -EINVAL;
	size_t n = 0;
	for (; n <= TAKT_NAME_MAX && name[n]; n++)
		if (!name_char_ok(name[n]))
			return -EINVAL;
	if (n == 0 || n > TAKT_NAME_MAX)
		return -EINVAL;
	/* "." and ".." would name directories-like entries; refuse them too. */
	if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return -EINVAL;
	return 0;
}

void takt_obj_name(char *out, const char *name, const char *suffix)
{
	snprintf(out, TAKT_OBJ_NAME_MAX, "/takt.%s%s", name, suffix);
}

void takt_rx_sem_name(char *out, const char *name)
{
	takt_obj_name(out, name, ".rx");
}

void takt_tx_sem_name(char *out, const char *name, unsigned lane)
{
	char suffix[16];
	snprintf(suffix, sizeof suffix, ".tx%u", lane);
	takt_obj_name(out, name, suffix);
}
