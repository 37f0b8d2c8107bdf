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
#include <semaphore.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

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
	struct stat st;
	int fd = takt_segment_open_file(obj, O_RDONLY, 0, &st);
	if (fd < 0)
		return fd;
	/* A creator opens the name before it takes the creator lock (below):
	 * a fresh empty segment may be one still being created. */
	if (takt_segment_maybe_creating(&st)) {
		close(fd);
		return -EBUSY;
	}
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
	if (takt_segment_name_is(obj, &st) != 0) {
		close(fd);
		return -EBUSY;
	}
	/* Semaphores first, the name last: while this stale segment holds the
	 * name, no channel of that name can be created, so the semaphores we
	 * remove are this channel's.  (In the other order a create between
	 * the two steps would lose its semaphores to us.)  Every possible
	 * name: the header may be corrupted. */
	takt_sems_unlink(name, TAKT_LANES_MAX);
	rc = takt_segment_unlink_if_same(fd, obj);
	close(fd);
	return rc == -ESTALE ? -EBUSY : rc;
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

/* The channel a semaphore file "sem.takt.<name>.rx|.tx<k>" belongs to, in
 * out; 0 if the file name has that shape, -1 otherwise. */
static int sem_owner(const char *file, char *out, size_t n)
{
	if (strncmp(file, "sem.takt.", 9) != 0)
		return -1;
	const char *name = file + 9;
	const char *dot = strrchr(name, '.');
	if (!dot || dot == name)
		return -1;
	const char *suffix = dot + 1;
	if (strcmp(suffix, "rx") != 0) {
		if (strncmp(suffix, "tx", 2) != 0 || !suffix[2])
			return -1;
		for (const char *c = suffix + 2; *c; c++)
			if (*c < '0' || *c > '9')
				return -1;
	}
	size_t len = (size_t)(dot - name);
	if (len >= n)
		return -1;
	memcpy(out, name, len);
	out[len] = '\0';
	return takt_name_check(out) == 0 ? 0 : -1;
}

int takt_unlink_orphan_semaphores(int (*cb)(const char *sem_name, void *arg), void *arg)
{
	DIR *d = opendir(TAKT_SHM_DIR);
	if (!d)
		return -errno;
	int removed = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		char owner[TAKT_NAME_MAX + 1];
		if (sem_owner(e->d_name, owner, sizeof owner) != 0)
			continue;
		/* A channel's semaphores are created after its segment and
		 * removed before it: a semaphore without a segment belongs to
		 * no channel that exists or is being created.  To keep it so
		 * while we remove it, we hold the channel's name ourselves: a
		 * placeholder segment created exclusively and locked like a
		 * creator's (a concurrent create gets -EEXIST, as it would
		 * from any create in progress; gc leaves it alone).  Without
		 * it, a create between our check and the unlink would lose
		 * the semaphore it had just made. */
		char obj[TAKT_OBJ_NAME_MAX];
		takt_obj_name(obj, owner, "");
		struct stat st;
		int fd = takt_segment_open_file(obj, O_RDWR | O_CREAT | O_EXCL, 0600, &st);
		if (fd < 0)
			continue; /* the segment exists (or cannot be made): not ours */
		int locked = takt_slot_lock_fd(fd, TAKT_SLOT_CREATOR, 1);
		char sem[TAKT_OBJ_NAME_MAX + 8];
		snprintf(sem, sizeof sem, "/%s", e->d_name + 4);
		int gone = locked == 0 && sem_unlink(sem) == 0;
		takt_segment_unlink_if_same(fd, obj);
		close(fd);
		if (gone) {
			removed++;
			if (cb && cb(sem, arg) != 0)
				break;
		}
	}
	closedir(d);
	return removed;
}
