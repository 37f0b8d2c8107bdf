/* SPDX-License-Identifier: MIT */
/*
 * liveness.c - who is alive on a channel, which channels are stale (no live
 * endpoint), and removing stale channels safely.  Liveness is the OFD locks
 * of slot.c: the kernel's word, not a heartbeat's guess.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

#define TAKT_SHM_DIR "/dev/shm"

int takt_producers_alive(takt_channel *ch, uint64_t *mask)
{
	if (!ch)
		return -EINVAL;
	uint64_t m = 0;
	int count = 0;
	for (unsigned k = 0; k < ch->geo.lanes; k++) {
		int alive = takt_slot_alive(ch, TAKT_SLOT_LANE(k));
		if (alive < 0)
			return alive;
		if (alive) {
			m |= 1ull << k;
			count++;
		}
	}
	if (mask)
		*mask = m;
	return count;
}

int takt_consumer_alive(takt_channel *ch)
{
	if (!ch)
		return -EINVAL;
	return takt_slot_alive(ch, TAKT_SLOT_CONSUMER);
}

int takt_channel_is_stale(takt_channel *ch)
{
	int alive = takt_consumer_alive(ch);
	if (alive != 0)
		return alive < 0 ? alive : 0;
	int producers = takt_producers_alive(ch, NULL);
	if (producers < 0)
		return producers;
	return producers == 0;
}

int takt_unlink_stale(const char *name)
{
	int rc = takt_name_check(name);
	if (rc < 0)
		return rc;
	char obj[TAKT_OBJ_NAME_MAX];
	takt_obj_name(obj, name, "");
	int fd = shm_open(obj, O_RDONLY | O_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* A read lock over every slot byte (creator included) fails if any
	 * endpoint holds its write lock, and while we hold it no endpoint can
	 * take a slot: the check and the removal see the same state. */
	struct flock fl = {.l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 0,
			   .l_len = TAKT_SLOT_COUNT};
	if (fcntl(fd, F_OFD_SETLK, &fl) != 0) {
		rc = (errno == EAGAIN || errno == EACCES) ? -EBUSY : -errno;
		close(fd);
		return rc;
	}
	/* The name must still be this segment: a stale one may have been
	 * removed and the name created anew (and live) meanwhile. */
	struct stat ours, now;
	char path[TAKT_OBJ_NAME_MAX + 16];
	snprintf(path, sizeof path, TAKT_SHM_DIR "%s", obj);
	if (fstat(fd, &ours) != 0 || stat(path, &now) != 0 || ours.st_ino != now.st_ino ||
	    ours.st_dev != now.st_dev) {
		close(fd);
		return -EBUSY;
	}
	unsigned lanes = takt_lane_count_hint(fd);
	rc = shm_unlink(obj) == 0 ? 0 : -errno;
	if (rc == 0)
		takt_sems_unlink(name, lanes);
	close(fd);
	return rc;
}

int takt_list(int (*cb)(const char *name, void *arg), void *arg)
{
	if (!cb)
		return -EINVAL;
	DIR *d = opendir(TAKT_SHM_DIR);
	if (!d)
		return -errno;
	int count = 0, rc = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		/* Segments are "takt.<name>"; semaphores are "sem.takt.<...>". */
		if (strncmp(e->d_name, "takt.", 5) != 0 || takt_name_check(e->d_name + 5) < 0)
			continue;
		count++;
		rc = cb(e->d_name + 5, arg);
		if (rc != 0)
			break;
	}
	closedir(d);
	return rc < 0 ? rc : count;
}
