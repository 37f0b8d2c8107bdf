/* SPDX-License-Identifier: MIT */
/*
 * test_liveness.c - liveness by OFD locks: takt_consumer_alive,
 * takt_producers_alive, the stats' pid and start time, across open, close
 * and SIGKILL; a dead producer's lane reused at its tail; stale detection;
 * takt_unlink_stale refusing a live channel and removing a stale one with
 * its semaphores; takt_list.
 */
#include "tr_common.h"

#include <errno.h>
#include <fcntl.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "layout.h"

TR_SUITE(liveness, .timeout = 60);

struct endpoint_proc {
	pid_t pid;
	int ready_r; /* the child writes one byte when its endpoint is open */
	int hold_w;  /* the child exits (closing its endpoint) at EOF */
};

/* The parent's ends of every child's pipes: a child closes those of its
 * siblings, or a sibling's EOF would never come. */
static int parent_fds[64];
static unsigned n_parent_fds;

static void forget_fds(const struct endpoint_proc *e)
{
	unsigned j = 0;
	for (unsigned i = 0; i < n_parent_fds; i++)
		if (parent_fds[i] != e->ready_r && parent_fds[i] != e->hold_w)
			parent_fds[j++] = parent_fds[i];
	n_parent_fds = j;
}

/* Fork a child holding a consumer (kind 'c') or a producer ('p') that
 * first sends `records` records numbered from `first`. */
static struct endpoint_proc spawn_endpoint(const char *name, char kind, uint32_t first,
					   uint32_t records)
{
	int ready[2], hold[2];
	cr_assert_eq(pipe(ready), 0);
	cr_assert_eq(pipe(hold), 0);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		tr_child_setup();
		close(ready[0]);
		close(hold[1]);
		for (unsigned i = 0; i < n_parent_fds; i++)
			close(parent_fds[i]);
		char b = 0;
		if (kind == 'c') {
			takt_consumer *c;
			if (takt_consumer_open(name, &c) != 0)
				_exit(2);
			if (write(ready[1], &b, 1) != 1)
				_exit(3);
			while (read(hold[0], &b, 1) > 0)
				;
			takt_consumer_close(c);
		} else {
			takt_producer *p;
			if (takt_producer_open(name, &p) != 0)
				_exit(2);
			for (uint32_t i = first; i < first + records; i++)
				if (takt_try_send(p, 1, &i, 4) != 0)
					_exit(4);
			b = (char)takt_producer_lane(p);
			if (write(ready[1], &b, 1) != 1)
				_exit(3);
			while (read(hold[0], &b, 1) > 0)
				;
			takt_producer_close(p);
		}
		_exit(0);
	}
	close(ready[1]);
	close(hold[0]);
	cr_assert_leq(n_parent_fds + 2, 64u);
	{
		parent_fds[n_parent_fds++] = ready[0];
		parent_fds[n_parent_fds++] = hold[1];
	}
	return (struct endpoint_proc){pid, ready[0], hold[1]};
}

/* Wait until the child's endpoint is open; returns the byte it sent. */
static int endpoint_ready(struct endpoint_proc *e)
{
	char b;
	cr_assert_eq(read(e->ready_r, &b, 1), 1, "endpoint child failed to open");
	return b;
}

static void endpoint_close(struct endpoint_proc *e)
{
	forget_fds(e);
	close(e->hold_w);
	int st = tr_wait_timeout(e->pid, 10);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "endpoint child: %s", tr_status(st));
	close(e->ready_r);
}

static void endpoint_kill(struct endpoint_proc *e)
{
	forget_fds(e);
	kill(e->pid, SIGKILL);
	int st = tr_wait_timeout(e->pid, 10);
	cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "%s", tr_status(st));
	close(e->hold_w);
	close(e->ready_r);
}

Test(liveness, consumer_alive)
{
	const char *n = tr_name("cons");
	tr_create(n, 4096, 2, 64);
	takt_channel *ro;
	cr_assert_eq(takt_channel_open(n, TAKT_OPEN_RDONLY, &ro), 0);
	cr_assert_eq(takt_consumer_alive(ro), 0);
	struct takt_consumer_stats cs;

	/* open and close */
	struct endpoint_proc e = spawn_endpoint(n, 'c', 0, 0);
	endpoint_ready(&e);
	cr_assert_eq(takt_consumer_alive(ro), 1);
	cr_assert_eq(takt_consumer_stats_get(ro, &cs), 0);
	cr_assert_eq(cs.alive, 1u);
	cr_assert_eq(cs.pid, e.pid, "display pid");
	cr_assert_neq(cs.start, 0u, "start time recorded");
	takt_consumer *c;
	cr_assert_eq(takt_consumer_open(n, &c), -EBUSY);
	endpoint_close(&e);
	cr_assert_eq(takt_consumer_alive(ro), 0);

	/* SIGKILL */
	e = spawn_endpoint(n, 'c', 0, 0);
	endpoint_ready(&e);
	cr_assert_eq(takt_consumer_alive(ro), 1);
	endpoint_kill(&e);
	cr_assert_eq(takt_consumer_alive(ro), 0, "the kernel dropped the dead consumer's lock");
	cr_assert_eq(takt_consumer_stats_get(ro, &cs), 0);
	cr_assert_eq(cs.alive, 0u);
	cr_assert_eq(cs.pid, e.pid, "the last holder stays on display");

	/* in-process: our own endpoint counts as alive */
	cr_assert_eq(takt_consumer_open(n, &c), 0);
	cr_assert_eq(takt_consumer_alive(ro), 1);
	cr_assert_eq(takt_consumer_alive(takt_consumer_channel(c)), 1);
	takt_consumer_close(c);
	cr_assert_eq(takt_consumer_alive(ro), 0);
	cr_assert_eq(takt_consumer_alive(NULL), -EINVAL);
	takt_channel_close(ro);
}

Test(liveness, producers_alive_busy_and_reuse)
{
	const char *n = tr_name("prod");
	tr_create(n, 4096, 3, 64);
	takt_channel *ro;
	cr_assert_eq(takt_channel_open(n, TAKT_OPEN_RDONLY, &ro), 0);
	uint64_t mask = 99;
	cr_assert_eq(takt_producers_alive(ro, &mask), 0);
	cr_assert_eq(mask, 0u);

	struct endpoint_proc e[3];
	for (int k = 0; k < 3; k++) {
		e[k] = spawn_endpoint(n, 'p', (uint32_t)k * 100, 3);
		cr_assert_eq(endpoint_ready(&e[k]), k, "first free lane");
		cr_assert_eq(takt_producers_alive(ro, &mask), k + 1);
		cr_assert_eq(mask, (1ull << (k + 1)) - 1);
	}
	takt_producer *p;
	cr_assert_eq(takt_producer_open(n, &p), -EBUSY, "every lane has a live producer");
	struct takt_lane_stats ls;
	cr_assert_eq(takt_lane_stats_get(ro, 1, &ls), 0);
	cr_assert_eq(ls.producer_alive, 1u);
	cr_assert_eq(ls.producer_pid, e[1].pid);
	cr_assert_neq(ls.producer_start, 0u);

	/* lane 1's producer dies: its lane is free, nothing it sent is lost,
	 * and the next producer continues at its tail */
	endpoint_kill(&e[1]);
	cr_assert_eq(takt_producers_alive(ro, &mask), 2);
	cr_assert_eq(mask, 0x5u);
	cr_assert_eq(takt_lane_stats_get(ro, 1, &ls), 0);
	cr_assert_eq(ls.producer_alive, 0u);
	cr_assert_eq(takt_producer_open(n, &p), 0);
	cr_assert_eq(takt_producer_lane(p), 1u, "the dead producer's lane");
	for (uint32_t i = 103; i < 106; i++)
		cr_assert_eq(takt_try_send(p, 1, &i, 4), 0);
	cr_assert_eq(takt_producers_alive(ro, &mask), 3);

	takt_consumer *c;
	cr_assert_eq(takt_consumer_open(n, &c), 0);
	cr_assert_eq(takt_consumer_set_lane_burst(c, 100), 0);
	uint32_t v;
	struct takt_msg m;
	for (uint32_t i = 0; i < 3; i++) {
		cr_assert_eq(takt_try_recv(c, &v, 4, &m), 4);
		cr_assert_eq(m.lane, 0u);
		cr_assert_eq(v, i);
	}
	for (uint32_t i = 100; i < 106; i++) {
		cr_assert_eq(takt_try_recv(c, &v, 4, &m), 4);
		cr_assert_eq(m.lane, 1u);
		cr_assert_eq(v, i, "lane 1 in order across the two producers");
	}
	for (uint32_t i = 200; i < 203; i++) {
		cr_assert_eq(takt_try_recv(c, &v, 4, &m), 4);
		cr_assert_eq(v, i);
	}
	cr_assert_eq(takt_try_recv(c, &v, 4, &m), -EAGAIN);
	takt_consumer_close(c);
	takt_producer_close(p);
	endpoint_close(&e[0]);
	endpoint_close(&e[2]);
	cr_assert_eq(takt_producers_alive(ro, NULL), 0);
	takt_channel_close(ro);
}

static int count_cb(const char *name, void *arg)
{
	const char *want = ((const char **)arg)[0];
	if (strcmp(name, want) == 0)
		((const char **)arg)[1] = "found";
	return 0;
}

Test(liveness, stale_and_unlink_stale)
{
	const char *n = tr_name("stale");
	tr_create(n, 4096, 3, 64);
	cr_assert_eq(tr_leftovers(n), 1 + 1 + 3, "segment, rx semaphore, 3 tx semaphores");
	const char *arg[2] = {n, NULL};
	cr_assert_geq(takt_list(count_cb, arg), 1);
	cr_assert_str_eq(arg[1], "found");

	takt_channel *ro;
	cr_assert_eq(takt_channel_open(n, TAKT_OPEN_RDONLY, &ro), 0);
	cr_assert_eq(takt_channel_is_stale(ro), 1, "never used: no live endpoint");

	/* a live consumer: not stale, not removable */
	struct endpoint_proc e = spawn_endpoint(n, 'c', 0, 0);
	endpoint_ready(&e);
	cr_assert_eq(takt_channel_is_stale(ro), 0);
	cr_assert_eq(takt_unlink_stale(n), -EBUSY);
	endpoint_kill(&e);
	cr_assert_eq(takt_channel_is_stale(ro), 1);

	/* a live producer on the last lane only */
	struct endpoint_proc pe[3];
	for (int k = 0; k < 3; k++) {
		pe[k] = spawn_endpoint(n, 'p', 0, 1);
		endpoint_ready(&pe[k]);
	}
	endpoint_kill(&pe[0]);
	endpoint_close(&pe[1]);
	cr_assert_eq(takt_channel_is_stale(ro), 0);
	cr_assert_eq(takt_unlink_stale(n), -EBUSY);
	cr_assert_eq(tr_leftovers(n), 5, "nothing removed");
	endpoint_kill(&pe[2]);
	cr_assert_eq(takt_channel_is_stale(ro), 1);

	/* our own endpoint makes it live too */
	takt_producer *p;
	cr_assert_eq(takt_producer_open(n, &p), 0);
	cr_assert_eq(takt_unlink_stale(n), -EBUSY);
	takt_producer_close(p);

	/* a creation in progress (creator byte locked) is never stale */
	char obj[TAKT_NAME_MAX + 16];
	snprintf(obj, sizeof obj, "/takt.%s", n);
	int fd = shm_open(obj, O_RDWR, 0);
	cr_assert_geq(fd, 0);
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = TAKT_SLOT_CREATOR,
			   .l_len = 1};
	cr_assert_eq(fcntl(fd, F_OFD_SETLK, &fl), 0);
	cr_assert_eq(takt_unlink_stale(n), -EBUSY);
	close(fd);

	/* stale: removed, semaphores included; the open mapping still works */
	cr_assert_eq(takt_unlink_stale(n), 0);
	cr_assert_eq(tr_leftovers(n), 0, "segment and every semaphore removed");
	cr_assert_eq(takt_channel_is_stale(ro), 1);
	takt_channel_close(ro);
	cr_assert_eq(takt_unlink_stale(n), -ENOENT);
	cr_assert_eq(takt_unlink_stale("bad/name"), -EINVAL);
	arg[1] = NULL;
	takt_list(count_cb, arg);
	cr_assert_null(arg[1], "no longer listed");

	/* and while it was being checked, nobody could attach: an endpoint
	 * opening a removed name gets -ENOENT */
	takt_consumer *c;
	cr_assert_eq(takt_consumer_open(n, &c), -ENOENT);
}

/* A stale channel left by killed endpoints, removed while a new instance
 * of the name is created: the new, live one is never removed. */
Test(liveness, unlink_stale_never_removes_a_live_one)
{
	const char *n = tr_name("race");
	for (int round = 0; round < 50; round++) {
		tr_create(n, 1024, 1, 64);
		struct endpoint_proc e = spawn_endpoint(n, round & 1 ? 'c' : 'p', 0, 1);
		endpoint_ready(&e);
		cr_assert_eq(takt_unlink_stale(n), -EBUSY);
		endpoint_kill(&e);
		cr_assert_eq(takt_unlink_stale(n), 0);
		cr_assert_eq(tr_leftovers(n), 0);
	}
}

/* /dev/shm is world-writable: anything can sit under a channel's name.  A
 * FIFO would block a plain open until a writer came; a symlink could point
 * anywhere.  Every entry point refuses them at once with -EBADMSG. */
Test(liveness, not_a_segment_never_blocks)
{
	const char *n = tr_name("fifo");
	char path[TAKT_NAME_MAX + 32];
	snprintf(path, sizeof path, "/dev/shm/takt.%s", n);
	cr_assert_eq(mkfifo(path, 0600), 0);
	takt_channel *ch;
	takt_producer *p;
	takt_consumer *c;
	cr_assert_eq(takt_channel_open(n, TAKT_OPEN_RDONLY, &ch), -EBADMSG);
	cr_assert_eq(takt_channel_open(n, 0, &ch), -EBADMSG);
	cr_assert_eq(takt_producer_open(n, &p), -EBADMSG);
	cr_assert_eq(takt_consumer_open(n, &c), -EBADMSG);
	cr_assert_eq(takt_unlink_stale(n), -EBADMSG);
	struct takt_queue_config cfg = {.lanes = 1, .capacity = 4096, .max_record = 64,
					.mode = 0600};
	cr_assert_eq(takt_queue_create(n, &cfg), -EEXIST);
	cr_assert_eq(tr_leftovers(n), 1, "the FIFO is left alone");
	cr_assert_eq(takt_unlink(n), 0, "takt rm --force removes whatever has the name");
	cr_assert_eq(tr_leftovers(n), 0);

	/* a symlink to a real channel's segment */
	const char *real = tr_name("real");
	tr_create(real, 4096, 1, 64);
	char target[TAKT_NAME_MAX + 32];
	snprintf(target, sizeof target, "/dev/shm/takt.%s", real);
	cr_assert_eq(symlink(target, path), 0);
	cr_assert_eq(takt_channel_open(n, TAKT_OPEN_RDONLY, &ch), -EBADMSG);
	cr_assert_eq(takt_producer_open(n, &p), -EBADMSG);
	cr_assert_eq(takt_unlink_stale(n), -EBADMSG);
	cr_assert_eq(takt_channel_open(real, TAKT_OPEN_RDONLY, &ch), 0, "the target is fine");
	takt_channel_close(ch);
}

/* A file with a valid header whose pages were never reserved (holes): no
 * creator makes one.  Mapping it would allocate its pages on first touch
 * (an endpoint's MAP_POPULATE at once: a sparse "64 GiB channel" fills
 * /dev/shm) and raise SIGBUS once the tmpfs is full.  Refused at open, and
 * nothing is allocated. */
Test(liveness, segment_with_holes_refused)
{
	const char *real = tr_name("real");
	tr_create(real, 65536, 2, 64);
	const char *n = tr_name("holes");
	char path[TAKT_NAME_MAX + 32];
	snprintf(path, sizeof path, "/dev/shm/takt.%s", real);
	int rfd = open(path, O_RDONLY);
	cr_assert_geq(rfd, 0);
	struct stat rst;
	cr_assert_eq(fstat(rfd, &rst), 0);
	unsigned char header[4096];
	cr_assert_eq(read(rfd, header, sizeof header), (ssize_t)sizeof header);
	close(rfd);
	snprintf(path, sizeof path, "/dev/shm/takt.%s", n);
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, header, sizeof header), (ssize_t)sizeof header);
	cr_assert_eq(ftruncate(fd, rst.st_size), 0, "same size, one page allocated");
	struct stat before, after;
	cr_assert_eq(fstat(fd, &before), 0);
	cr_assert_lt((uint64_t)before.st_blocks * 512u, (uint64_t)rst.st_size);
	takt_channel *ch;
	takt_producer *p;
	cr_assert_eq(takt_channel_open(n, TAKT_OPEN_RDONLY, &ch), -EBADMSG);
	cr_assert_eq(takt_channel_open(n, 0, &ch), -EBADMSG);
	cr_assert_eq(takt_producer_open(n, &p), -EBADMSG);
	cr_assert_eq(fstat(fd, &after), 0);
	cr_assert_eq(after.st_blocks, before.st_blocks, "nothing allocated");
	close(fd);
	/* the real one, every page reserved, opens */
	cr_assert_eq(takt_channel_open(real, 0, &ch), 0);
	takt_channel_close(ch);
}

/* A creator opens the name (size 0) before it takes the creator lock: a
 * fresh empty segment is a creation in progress, never stale. */
Test(liveness, fresh_empty_segment_is_not_stale)
{
	const char *n = tr_name("young");
	char obj[TAKT_NAME_MAX + 16];
	snprintf(obj, sizeof obj, "/takt.%s", n);
	int fd = shm_open(obj, O_RDWR | O_CREAT | O_EXCL, 0600);
	cr_assert_geq(fd, 0);
	cr_assert_eq(takt_unlink_stale(n), -EBUSY);
	cr_assert_eq(tr_leftovers(n), 1, "not removed");
	close(fd);
}

static int sem_seen_cb(const char *sem, void *arg)
{
	const char **want = arg;
	if (strcmp(sem, want[0]) == 0)
		want[1] = "removed";
	return 0;
}

/* The orphan sweep removes a semaphore whose channel is gone, leaves the
 * semaphores of a channel that exists or is being created, and leaves no
 * trace of the name it held while it removed the orphan. */
Test(liveness, orphan_semaphore_sweep)
{
	const char *gone = tr_name("orphan");
	char sem[TAKT_NAME_MAX + 32];
	snprintf(sem, sizeof sem, "/takt.%s.rx", gone);
	sem_t *s = sem_open(sem, O_CREAT | O_EXCL, 0600, 0);
	cr_assert_neq(s, SEM_FAILED);
	sem_close(s);
	const char *live = tr_name("live");
	tr_create(live, 4096, 2, 64);
	const char *creating = tr_name("creating");
	char obj[TAKT_NAME_MAX + 16], csem[TAKT_NAME_MAX + 32];
	snprintf(obj, sizeof obj, "/takt.%s", creating);
	int fd = shm_open(obj, O_RDWR | O_CREAT | O_EXCL, 0600);
	cr_assert_geq(fd, 0);
	snprintf(csem, sizeof csem, "/takt.%s.tx0", creating);
	s = sem_open(csem, O_CREAT | O_EXCL, 0600, 0);
	cr_assert_neq(s, SEM_FAILED);
	sem_close(s);

	const char *arg[2] = {sem, NULL};
	cr_assert_geq(takt_unlink_orphan_semaphores(sem_seen_cb, arg), 1);
	cr_assert_str_eq(arg[1], "removed");
	cr_assert_eq(tr_leftovers(gone), 0, "the orphan is gone and no placeholder is left");
	cr_assert_eq(tr_leftovers(live), 1 + 1 + 2, "a live channel keeps its semaphores");
	cr_assert_eq(tr_leftovers(creating), 2, "a creation in progress keeps its semaphore");
	close(fd);
}
