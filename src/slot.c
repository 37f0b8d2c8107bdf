/* SPDX-License-Identifier: MIT */
/*
 * slot.c - endpoint slots held by OFD byte-range locks.
 *
 * Slot k is byte k of the segment's file: 0 for the consumer, 1 + lane for
 * each producer.  An endpoint holds a write lock on its byte for its whole
 * life.  OFD locks belong to the open file description, so the kernel drops
 * them when the last descriptor of it closes, i.e. when the process dies,
 * however it dies.  F_OFD_GETLK then tells anyone whether a slot's holder is
 * alive: no daemon, no pid reuse problem, and it works across pid namespaces.
 *
 * Two descriptions conflict even inside one process, but one description
 * does not conflict with itself: two endpoints attached to one mapping would
 * both "win" the same byte.  The mapping's own bitmap (held_lo/held_hi)
 * closes that hole.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

static _Atomic uint64_t *held_word(struct takt_channel *ch, unsigned slot)
{
	return slot < 64 ? &ch->held_lo : &ch->held_hi;
}

static uint64_t held_bit(unsigned slot)
{
	return 1ull << (slot % 64);
}

static int ofd_lock_range(int fd, short type, unsigned slot, unsigned count, int cmd,
			  struct flock *out)
{
	struct flock fl;
	memset(&fl, 0, sizeof fl);
	fl.l_type = type;
	fl.l_whence = SEEK_SET;
	fl.l_start = (off_t)slot;
	fl.l_len = (off_t)count;
	fl.l_pid = 0; /* required for OFD locks */
	if (fcntl(fd, cmd, &fl) != 0)
		return -errno;
	if (out)
		*out = fl;
	return 0;
}

static int ofd_lock(int fd, short type, unsigned slot, int cmd, struct flock *out)
{
	return ofd_lock_range(fd, type, slot, 1, cmd, out);
}

int takt_slot_lock_fd(int fd, unsigned first, unsigned count)
{
	int rc = ofd_lock_range(fd, F_WRLCK, first, count, F_OFD_SETLK, NULL);
	return (rc == -EAGAIN || rc == -EACCES) ? -EBUSY : rc;
}

int takt_slot_acquire(struct takt_channel *ch, unsigned slot)
{
	_Atomic uint64_t *w = held_word(ch, slot);
	/* relaxed suffices: the bitmap only arbitrates between threads of this
	 * process; the lock below is what the segment's state depends on. */
	if (atomic_fetch_or_explicit(w, held_bit(slot), memory_order_relaxed) & held_bit(slot))
		return -EBUSY;
	int rc = ofd_lock(ch->fd, F_WRLCK, slot, F_OFD_SETLK, NULL);
	if (rc < 0) {
		atomic_fetch_and_explicit(w, ~held_bit(slot), memory_order_relaxed);
		return (rc == -EAGAIN || rc == -EACCES) ? -EBUSY : rc;
	}
	return 0;
}

void takt_slot_release(struct takt_channel *ch, unsigned slot)
{
	ofd_lock(ch->fd, F_UNLCK, slot, F_OFD_SETLK, NULL);
	atomic_fetch_and_explicit(held_word(ch, slot), ~held_bit(slot), memory_order_relaxed);
}

int takt_slot_alive(struct takt_channel *ch, unsigned slot)
{
	if (atomic_load_explicit(held_word(ch, slot), memory_order_relaxed) & held_bit(slot))
		return 1; /* we hold it ourselves: GETLK would not see our own lock */
	struct flock fl = {.l_type = F_UNLCK};
	int rc = ofd_lock(ch->fd, F_WRLCK, slot, F_OFD_GETLK, &fl);
	if (rc < 0)
		return rc;
	return fl.l_type != F_UNLCK;
}

uint64_t takt_self_start_time(void)
{
	/* Field 22 of /proc/self/stat; the command name (field 2) may hold
	 * spaces and parentheses, so parse from the last ')'. */
	char buf[1024];
	int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	char *p = strrchr(buf, ')');
	if (!p)
		return 0;
	unsigned long long v = 0;
	/* after ')': state(3) ppid pgrp session tty tpgid flags minflt cminflt
	 * majflt cmajflt utime stime cutime cstime priority nice threads
	 * itrealvalue starttime(22) */
	if (sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu", &v) != 1)
		return 0;
	return v;
}
