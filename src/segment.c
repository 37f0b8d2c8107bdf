/* SPDX-License-Identifier: MIT */
/*
 * segment.c - the life of a segment: create (exclusive, exact mode, memory
 * reserved, header written with `ready` last), map and validate (every size
 * against every other and against the file), unlink.
 */
#include <errno.h>
#include <fcntl.h>
#include <semaphore.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

static int config_check(const struct takt_queue_config *cfg)
{
	if (!cfg || cfg->flags != 0)
		return -EINVAL;
	if (cfg->lanes < 1 || cfg->lanes > TAKT_LANES_MAX)
		return -EINVAL;
	uint64_t cap = cfg->capacity;
	if (cap < TAKT_CAPACITY_MIN || cap > TAKT_CAPACITY_MAX || (cap & (cap - 1)) != 0)
		return -EINVAL;
	if (cfg->max_record == 0 || cfg->max_record > cap / 4)
		return -EINVAL;
	if (cfg->mode & ~07777u)
		return -EINVAL;
	return 0;
}

static uint64_t realtime_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t random_nonce(void)
{
	uint64_t v = 0;
	if (getrandom(&v, sizeof v, GRND_NONBLOCK) != (ssize_t)sizeof v)
		v = realtime_ns() ^ ((uint64_t)getpid() << 32);
	return v ? v : 1;
}

int takt_segment_open_file(const char *obj, int oflags, mode_t mode, struct stat *st)
{
	/* O_NONBLOCK: a FIFO planted under a channel's name (/dev/shm is
	 * world-writable) would otherwise block the open until a writer
	 * comes.  glibc's shm_open adds O_NOFOLLOW: a symlink is ELOOP. */
	int fd = shm_open(obj, oflags | O_NONBLOCK | O_CLOEXEC, mode);
	if (fd < 0)
		return (errno == ELOOP || errno == ENXIO) ? -EBADMSG : -errno;
	if (fstat(fd, st) != 0) {
		int rc = -errno;
		close(fd);
		return rc;
	}
	if (!S_ISREG(st->st_mode)) {
		close(fd);
		return -EBADMSG;
	}
	return fd;
}

bool takt_segment_maybe_creating(const struct stat *st)
{
	if (st->st_size != 0)
		return false;
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	int64_t age = ((int64_t)now.tv_sec - (int64_t)st->st_ctim.tv_sec) * 1000000000 +
		      ((int64_t)now.tv_nsec - (int64_t)st->st_ctim.tv_nsec);
	return age < (int64_t)TAKT_CREATE_GRACE_NS;
}

int takt_segment_name_is(const char *obj, const struct stat *ours)
{
	struct stat now;
	char path[TAKT_OBJ_NAME_MAX + 16];
	snprintf(path, sizeof path, TAKT_SHM_DIR "%s", obj);
	if (stat(path, &now) != 0)
		return -errno;
	return ours->st_ino == now.st_ino && ours->st_dev == now.st_dev ? 0 : -ESTALE;
}

int takt_segment_unlink_if_same(int fd, const char *obj)
{
	struct stat ours;
	if (fstat(fd, &ours) != 0)
		return -errno;
	int rc = takt_segment_name_is(obj, &ours);
	if (rc < 0)
		return rc;
	return shm_unlink(obj) == 0 ? 0 : -errno;
}

/* The path glibc gives a named semaphore, so its mode can be set exactly. */
static void sem_path(char *out, size_t n, const char *sem_name)
{
	snprintf(out, n, "/dev/shm/sem.%s", sem_name + 1);
}

/* Create one semaphore of the channel with value 0 and the exact mode.  A
 * stale one (left by an earlier instance of the name) is replaced: we hold
 * the segment name exclusively, so nobody can be using it legitimately. */
static int sem_create(const char *sem_name, mode_t mode)
{
	sem_t *s = sem_open(sem_name, O_CREAT | O_EXCL, mode, 0);
	if (s == SEM_FAILED && errno == EEXIST) {
		/* Another user's file in the sticky /dev/shm cannot be removed:
		 * that is a permission problem, not an existing channel. */
		if (sem_unlink(sem_name) != 0 && (errno == EACCES || errno == EPERM))
			return -EACCES;
		s = sem_open(sem_name, O_CREAT | O_EXCL, mode, 0);
	}
	if (s == SEM_FAILED)
		return -errno;
	sem_close(s);
	char path[TAKT_OBJ_NAME_MAX + 16];
	sem_path(path, sizeof path, sem_name);
	if (chmod(path, mode) != 0)
		return -errno;
	return 0;
}

void takt_sems_unlink(const char *name, unsigned lanes)
{
	char obj[TAKT_OBJ_NAME_MAX];
	takt_rx_sem_name(obj, name);
	sem_unlink(obj);
	for (unsigned k = 0; k < lanes; k++) {
		takt_tx_sem_name(obj, name, k);
		sem_unlink(obj);
	}
}

static int sems_create(const char *name, unsigned lanes, mode_t mode)
{
	char obj[TAKT_OBJ_NAME_MAX];
	takt_rx_sem_name(obj, name);
	int rc = sem_create(obj, mode);
	for (unsigned k = 0; rc == 0 && k < lanes; k++) {
		takt_tx_sem_name(obj, name, k);
		rc = sem_create(obj, mode);
	}
	return rc;
}

/* What a new segment looks like; filled by the kind-specific create calls. */
struct segment_spec {
	uint32_t kind;
	uint32_t lanes;          /* semaphores: one .rx, and one .tx<k> per lane (queues) */
	uint32_t tx_sems;        /* how many .tx<k> semaphores */
	uint64_t capacity;
	uint32_t max_record;
	uint64_t lane_stride;
	uint64_t lane_data_offset;
	uint64_t total;
	mode_t mode;
	/* initialise the body (fresh zero pages) before `ready` is stored */
	void (*init_body)(uint8_t *base);
};

static int segment_create(const char *name, const struct segment_spec *spec)
{
	char obj[TAKT_OBJ_NAME_MAX];
	takt_obj_name(obj, name, "");
	struct stat st;
	int fd = takt_segment_open_file(obj, O_RDWR | O_CREAT | O_EXCL, spec->mode, &st);
	if (fd < 0)
		return fd == -EBADMSG ? -EEXIST : fd; /* a non-file of that name */
	/* From here on every failure unlinks what it made: a failed create
	 * leaves nothing behind.  Openers meanwhile see size 0 or ready unset
	 * and get -EAGAIN; stale-channel removal sees the creator lock. */
	int rc;
	uint8_t *base = MAP_FAILED;
	rc = takt_slot_lock_fd(fd, TAKT_SLOT_CREATOR, 1);
	if (rc < 0)
		goto fail;
	if (fchmod(fd, spec->mode) != 0) { /* the umask must not strip the mode */
		rc = -errno;
		goto fail;
	}
	/* Reserve every page now: on a full tmpfs this fails with ENOSPC here
	 * rather than raising SIGBUS in a peer's hot path later. */
	rc = -posix_fallocate(fd, 0, (off_t)spec->total);
	if (rc < 0)
		goto fail;
	base = mmap(NULL, spec->total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (base == MAP_FAILED) {
		rc = -errno;
		goto fail;
	}
	rc = sems_create(name, spec->tx_sems, spec->mode);
	if (rc < 0)
		goto fail;

	/* The memory is zero (fresh tmpfs pages): every commit word is 0, which
	 * never matches a position, and every head, tail and counter is 0. */
	struct takt_seg_header *hdr = (struct takt_seg_header *)base;
	hdr->magic = TAKT_MAGIC;
	hdr->layout_major = TAKT_LAYOUT_MAJOR;
	hdr->layout_minor = TAKT_LAYOUT_MINOR;
	hdr->header_size = TAKT_SEG_HEADER_SIZE;
	hdr->total_size = spec->total;
	hdr->kind = spec->kind;
	hdr->lane_count = spec->lanes;
	hdr->lane_capacity = spec->capacity;
	hdr->max_record = spec->max_record;
	hdr->flags = 0;
	hdr->created_ns = realtime_ns();
	hdr->nonce = random_nonce();
	hdr->consumer_offset = TAKT_CONSUMER_OFFSET;
	hdr->lanes_offset = TAKT_LANES_OFFSET;
	hdr->lane_stride = spec->lane_stride;
	hdr->lane_data_offset = spec->lane_data_offset;
	hdr->creator_pid = (uint32_t)getpid();
	hdr->mode = (uint32_t)spec->mode;
	if (spec->init_body)
		spec->init_body(base);
	/* release: an opener that acquire-loads `ready` sees every header
	 * field above (and the initialised body) complete. */
	atomic_store_explicit(&hdr->ready, TAKT_READY_VALUE, memory_order_release);
	munmap(base, spec->total);
	close(fd); /* drops the creator lock */
	return 0;
fail:
	if (base != MAP_FAILED)
		munmap(base, spec->total);
	/* Semaphores first, the name last: while the name is ours nobody can
	 * create the channel anew and lose its semaphores to this clean-up.
	 * The name only if it is still our file (`takt rm --force` may have
	 * removed it and someone created it again). */
	takt_sems_unlink(name, spec->tx_sems);
	takt_segment_unlink_if_same(fd, obj);
	close(fd);
	return rc;
}

int takt_queue_create(const char *name, const struct takt_queue_config *cfg)
{
	int rc = takt_name_check(name);
	if (rc < 0)
		return rc;
	rc = config_check(cfg);
	if (rc < 0)
		return rc;
	struct segment_spec spec = {
		.kind = TAKT_KIND_QUEUE,
		.lanes = cfg->lanes,
		.tx_sems = cfg->lanes,
		.capacity = cfg->capacity,
		.max_record = cfg->max_record,
		.lane_stride = takt_lane_stride(cfg->capacity),
		.lane_data_offset = TAKT_LANE_DATA_OFFSET,
		.total = takt_total_size(cfg->lanes, cfg->capacity),
		.mode = cfg->mode ? (mode_t)cfg->mode : 0600,
	};
	return segment_create(name, &spec);
}

static void state_init_body(uint8_t *base)
{
	struct takt_seg_state *st = (struct takt_seg_state *)(base + TAKT_CONSUMER_OFFSET);
	/* slot 0 is the middle (empty, generation 0), 1 the writer's, 2 the reader's */
	atomic_store_explicit(&st->middle, 0, memory_order_relaxed);
	atomic_store_explicit(&st->writer_slot, 1, memory_order_relaxed);
	atomic_store_explicit(&st->reader_slot, 2, memory_order_relaxed);
}

int takt_state_create(const char *name, const struct takt_state_config *cfg)
{
	int rc = takt_name_check(name);
	if (rc < 0)
		return rc;
	if (!cfg || cfg->flags != 0 || cfg->image_size == 0 || cfg->image_size > TAKT_STATE_IMAGE_MAX ||
	    (cfg->mode & ~07777u))
		return -EINVAL;
	struct segment_spec spec = {
		.kind = TAKT_KIND_STATE,
		.lanes = 1,
		.tx_sems = 0,
		.capacity = takt_state_slot_stride(cfg->image_size),
		.max_record = cfg->image_size,
		.lane_stride = takt_state_slot_stride(cfg->image_size),
		.lane_data_offset = TAKT_STATE_SLOT_HEADER,
		.total = takt_state_total_size(cfg->image_size),
		.mode = cfg->mode ? (mode_t)cfg->mode : 0600,
		.init_body = state_init_body,
	};
	return segment_create(name, &spec);
}

static int queue_geometry_check(const struct takt_seg_header *h, uint64_t *total)
{
	uint64_t cap = h->lane_capacity;
	if (h->lane_count < 1 || h->lane_count > TAKT_LANES_MAX)
		return -EBADMSG;
	if (cap < TAKT_CAPACITY_MIN || cap > TAKT_CAPACITY_MAX || (cap & (cap - 1)) != 0)
		return -EBADMSG;
	if (h->max_record == 0 || h->max_record > cap / 4)
		return -EBADMSG;
	if (h->lane_stride != takt_lane_stride(cap) || h->lane_data_offset != TAKT_LANE_DATA_OFFSET)
		return -EBADMSG;
	*total = takt_total_size(h->lane_count, cap);
	return 0;
}

static int state_geometry_check(const struct takt_seg_header *h, uint64_t *total)
{
	uint64_t image = h->max_record;
	if (h->lane_count != 1 || image == 0 || image > TAKT_STATE_IMAGE_MAX)
		return -EBADMSG;
	uint64_t stride = takt_state_slot_stride(image);
	if (h->lane_capacity != stride || h->lane_stride != stride ||
	    h->lane_data_offset != TAKT_STATE_SLOT_HEADER)
		return -EBADMSG;
	*total = takt_state_total_size(image);
	return 0;
}

int takt_geometry_check(const struct takt_seg_header *h, uint64_t file_size,
			struct takt_geometry *out)
{
	if (h->magic != TAKT_MAGIC)
		return -EBADMSG;
	if (h->layout_major != TAKT_LAYOUT_MAJOR)
		return -EPROTONOSUPPORT;
	/* A later minor version may define reserved bytes; it never moves a
	 * field, so the header stays 256 bytes. */
	if (h->header_size != TAKT_SEG_HEADER_SIZE || h->flags != 0)
		return -EBADMSG;
	if (h->consumer_offset != TAKT_CONSUMER_OFFSET || h->lanes_offset != TAKT_LANES_OFFSET)
		return -EBADMSG;
	uint64_t total;
	int rc;
	if (h->kind == TAKT_KIND_QUEUE)
		rc = queue_geometry_check(h, &total);
	else if (h->kind == TAKT_KIND_STATE)
		rc = state_geometry_check(h, &total);
	else
		rc = -EBADMSG;
	if (rc < 0)
		return rc;
	if (h->total_size != total || file_size < total)
		return -EBADMSG;
	out->capacity = h->lane_capacity;
	out->mask = h->lane_capacity - 1;
	out->total_size = total;
	out->created_ns = h->created_ns;
	out->nonce = h->nonce;
	out->kind = h->kind;
	out->lanes = h->lane_count;
	out->max_record = h->max_record;
	out->layout_minor = h->layout_minor;
	return 0;
}

int takt_segment_map(const char *name, unsigned flags, struct takt_channel *ch)
{
	int rc = takt_name_check(name);
	if (rc < 0)
		return rc;
	bool rdonly = flags & TAKT_OPEN_RDONLY;
	char obj[TAKT_OBJ_NAME_MAX];
	takt_obj_name(obj, name, "");
	struct stat st;
	int fd = takt_segment_open_file(obj, rdonly ? O_RDONLY : O_RDWR, 0, &st);
	if (fd < 0)
		return fd;
	/* Size 0: the creator has not reserved the memory yet (or died before
	 * it did).  Not ready, like an unset `ready` word. */
	if (st.st_size == 0) {
		rc = -EAGAIN;
		goto fail_fd;
	}
	if ((uint64_t)st.st_size < TAKT_SEG_HEADER_SIZE) {
		rc = -EBADMSG;
		goto fail_fd;
	}
	/* Map the header page alone first: the file size is the peer's word
	 * too, and we map no more than the validated geometry needs. */
	struct takt_seg_header *hp =
		mmap(NULL, TAKT_SEG_HEADER_SIZE, PROT_READ, MAP_SHARED, fd, 0);
	if (hp == MAP_FAILED) {
		rc = -errno;
		goto fail_fd;
	}
	/* acquire: pairs with the creator's release store of `ready`. */
	uint32_t ready = atomic_load_explicit(&hp->ready, memory_order_acquire);
	struct takt_seg_header copy;
	memcpy(&copy, hp, sizeof copy); /* read once; validate the copy only */
	munmap(hp, TAKT_SEG_HEADER_SIZE);
	if (ready != TAKT_READY_VALUE) {
		/* A foreign file is not "not ready": tell them apart by magic. */
		rc = (copy.magic == TAKT_MAGIC || copy.magic == 0) ? -EAGAIN : -EBADMSG;
		goto fail_fd;
	}
	rc = takt_geometry_check(&copy, (uint64_t)st.st_size, &ch->geo);
	if (rc < 0)
		goto fail_fd;
	/* A creator reserves every page (posix_fallocate), and tmpfs counts
	 * them (swapped-out ones too).  A file with holes was not made by a
	 * creator: mapping it would allocate its pages on our first touch
	 * (MAP_POPULATE: at once, possibly filling /dev/shm) and raise SIGBUS
	 * when the tmpfs is full. */
	if ((uint64_t)st.st_blocks * 512u < ch->geo.total_size) {
		rc = -EBADMSG;
		goto fail_fd;
	}
	/* MAP_POPULATE prefaults the page tables now, so an endpoint's hot
	 * path never takes a page fault.  An inspector reads a few control
	 * blocks only: it maps lazily rather than touch gigabytes of rings. */
	int prot = PROT_READ | (rdonly ? 0 : PROT_WRITE);
	int mflags = MAP_SHARED | (rdonly ? 0 : MAP_POPULATE);
	void *base = mmap(NULL, ch->geo.total_size, prot, mflags, fd, 0);
	if (base == MAP_FAILED) {
		rc = -errno;
		goto fail_fd;
	}
	snprintf(ch->name, sizeof ch->name, "%s", name);
	ch->fd = fd;
	ch->flags = flags;
	ch->base = base;
	ch->map_size = ch->geo.total_size;
	ch->consumer = (struct takt_seg_consumer *)(ch->base + TAKT_CONSUMER_OFFSET);
	return 0;
fail_fd:
	close(fd);
	return rc;
}

void takt_segment_unmap(struct takt_channel *ch)
{
	if (ch->base)
		munmap(ch->base, ch->map_size);
	if (ch->fd >= 0)
		close(ch->fd); /* also drops every OFD lock this description held */
	ch->base = NULL;
	ch->fd = -1;
}

int takt_unlink(const char *name)
{
	int rc = takt_name_check(name);
	if (rc < 0)
		return rc;
	char obj[TAKT_OBJ_NAME_MAX];
	takt_obj_name(obj, name, "");
	/* Semaphores first, the segment last: once the name is free, a new
	 * channel of that name may be created, and its semaphores must not
	 * be ours to remove.  Every possible semaphore name: the header's
	 * lane count may be corrupted, and a missing name costs one ENOENT. */
	struct stat st;
	int fd = takt_segment_open_file(obj, O_RDONLY, 0, &st);
	if (fd < 0 && fd != -EBADMSG && fd != -EACCES)
		return fd; /* -ENOENT: nothing to remove */
	if (fd >= 0)
		close(fd);
	takt_sems_unlink(name, TAKT_LANES_MAX);
	if (shm_unlink(obj) != 0)
		return -errno;
	return 0;
}
