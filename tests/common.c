/* SPDX-License-Identifier: MIT */
/* common.c - see common.h. */
#define _GNU_SOURCE
#include "common.h"

#include <criterion/hooks.h>
#include <criterion/logging.h>
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TT_MAX_NAMES 64
#define TT_NAME_SLOTS 8

static char tracked[TT_MAX_NAMES][TAKT_NAME_MAX + 1];
static unsigned n_tracked;
static unsigned counter;

void tt_track(const char *name)
{
	cr_assert_lt(n_tracked, TT_MAX_NAMES, "too many channels in one test");
	cr_assert_leq(strlen(name), TAKT_NAME_MAX);
	strcpy(tracked[n_tracked++], name);
}

void tt_untrack(const char *name)
{
	for (unsigned i = 0; i < n_tracked; i++)
		if (strcmp(tracked[i], name) == 0) {
			memmove(tracked[i], tracked[i + 1], (size_t)(n_tracked - i - 1) * sizeof tracked[0]);
			n_tracked--;
			return;
		}
}

/* Remove /dev/shm entries whose names start with prefix. */
static void remove_prefixed(const char *prefix)
{
	DIR *d = opendir("/dev/shm");
	if (!d)
		return;
	size_t n = strlen(prefix);
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (strncmp(e->d_name, prefix, n) == 0)
			unlinkat(dirfd(d), e->d_name, 0);
	}
	closedir(d);
}

void tt_remove(const char *name)
{
	char buf[TAKT_NAME_MAX + 64];
	(void)takt_unlink(name);
	snprintf(buf, sizeof buf, "/takt.%s", name);
	(void)shm_unlink(buf);
	snprintf(buf, sizeof buf, "sem.takt.%s.", name);
	remove_prefixed(buf);
}

int tt_leftovers(const char *name)
{
	char seg[TAKT_NAME_MAX + 64], sem[TAKT_NAME_MAX + 64];
	snprintf(seg, sizeof seg, "takt.%s", name);
	snprintf(sem, sizeof sem, "sem.takt.%s.", name);
	size_t nsem = strlen(sem);
	int count = 0;
	DIR *d = opendir("/dev/shm");
	cr_assert_not_null(d, "opendir /dev/shm: %s", strerror(errno));
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, seg) == 0 || strncmp(e->d_name, sem, nsem) == 0)
			count++;
	}
	closedir(d);
	return count;
}

const char *tt_name(void)
{
	static char names[TT_NAME_SLOTS][TAKT_NAME_MAX + 1];
	char *out = names[counter % TT_NAME_SLOTS];
	const char *test = criterion_current_test ? criterion_current_test->name : "x";
	snprintf(out, TAKT_NAME_MAX + 1, "tt-%d-%d-%.120s-%u", (int)getppid(), (int)getpid(), test,
		 counter++);
	tt_remove(out); /* anything stale of that name */
	tt_track(out);
	return out;
}

void tt_init(void)
{
	n_tracked = 0;
	counter = 0;
}

void tt_fini(void)
{
	for (unsigned i = 0; i < n_tracked; i++)
		tt_remove(tracked[i]);
	n_tracked = 0;
}

/* In the runner: remove whatever workers that crashed left behind. */
ReportHook(POST_ALL)(struct criterion_global_stats *stats)
{
	(void)stats;
	char prefix[64];
	snprintf(prefix, sizeof prefix, "takt.tt-%d-", (int)getpid());
	remove_prefixed(prefix);
	snprintf(prefix, sizeof prefix, "sem.takt.tt-%d-", (int)getpid());
	remove_prefixed(prefix);
}

void tt_create(const char *name, uint64_t capacity, uint32_t lanes, uint32_t max_record)
{
	struct takt_queue_config cfg = {
		.capacity = capacity, .lanes = lanes, .max_record = max_record, .mode = 0600,
	};
	int rc = takt_queue_create(name, &cfg);
	cr_assert_eq(rc, 0, "takt_queue_create(%s, cap %" PRIu64 ", lanes %u, max %u) = %d (%s)",
		     name, capacity, lanes, max_record, rc, takt_strerror(rc));
}

takt_producer *tt_producer(const char *name)
{
	takt_producer *p = NULL;
	int rc = takt_producer_open(name, &p);
	cr_assert_eq(rc, 0, "takt_producer_open = %d (%s)", rc, takt_strerror(rc));
	cr_assert_not_null(p);
	return p;
}

takt_consumer *tt_consumer(const char *name)
{
	takt_consumer *c = NULL;
	int rc = takt_consumer_open(name, &c);
	cr_assert_eq(rc, 0, "takt_consumer_open = %d (%s)", rc, takt_strerror(rc));
	cr_assert_not_null(c);
	return c;
}

void tt_seg_path(const char *name, char *out, size_t n)
{
	snprintf(out, n, "/dev/shm/takt.%s", name);
}

void tt_raw_map(const char *name, struct tt_raw *raw)
{
	char obj[TAKT_NAME_MAX + 16];
	snprintf(obj, sizeof obj, "/takt.%s", name);
	raw->fd = shm_open(obj, O_RDWR, 0);
	cr_assert_geq(raw->fd, 0, "shm_open(%s): %s", obj, strerror(errno));
	struct stat st;
	cr_assert_eq(fstat(raw->fd, &st), 0);
	raw->size = (size_t)st.st_size;
	cr_assert_gt(raw->size, 0);
	raw->base = mmap(NULL, raw->size, PROT_READ | PROT_WRITE, MAP_SHARED, raw->fd, 0);
	cr_assert_neq(raw->base, MAP_FAILED, "mmap: %s", strerror(errno));
}

void tt_raw_unmap(struct tt_raw *raw)
{
	if (raw->base && raw->base != MAP_FAILED)
		munmap(raw->base, raw->size);
	if (raw->fd >= 0)
		close(raw->fd);
	raw->base = NULL;
	raw->fd = -1;
}

/* ---- payloads ------------------------------------------------------------ */

void tt_fill(void *buf, size_t len, uint64_t stream, uint64_t seq)
{
	uint8_t *b = buf;
	uint64_t x = tt_mix64(stream * 0x2545f4914f6cdd1dull ^ seq);
	size_t i = 0;
	for (; i + 8 <= len; i += 8) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		memcpy(b + i, &x, 8);
	}
	if (i < len) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		memcpy(b + i, &x, len - i);
	}
}

bool tt_check(const void *buf, size_t len, uint64_t stream, uint64_t seq)
{
	uint8_t tmp[4096];
	const uint8_t *b = buf;
	/* regenerate in chunks: tt_fill's words depend only on their index */
	if (len <= sizeof tmp) {
		tt_fill(tmp, len, stream, seq);
		return memcmp(tmp, b, len) == 0;
	}
	uint8_t *big = malloc(len);
	cr_assert_not_null(big);
	tt_fill(big, len, stream, seq);
	bool ok = memcmp(big, b, len) == 0;
	free(big);
	return ok;
}

size_t tt_stream_len(uint64_t stream, uint64_t seq, uint32_t max)
{
	uint64_t h = tt_mix64(seq * 0x9e3779b97f4a7c15ull + stream);
	if ((h & 15) == 0) {
		/* edges: 0, 1, 7, 8, 9, 15, 16, 17, max-1, max */
		static const int64_t edge[] = {0, 1, 7, 8, 9, 15, 16, 17, -1, 0};
		unsigned k = (unsigned)((h >> 8) % 10);
		if (k == 8)
			return max ? max - 1 : 0;
		if (k == 9)
			return max;
		return (size_t)edge[k] <= max ? (size_t)edge[k] : max;
	}
	return (size_t)((h >> 8) % ((uint64_t)max + 1));
}

static uint64_t checksum64(const uint8_t *b, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull ^ n;
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		uint64_t w;
		memcpy(&w, b + i, 8);
		h = (h ^ w) * 0x100000001b3ull;
		h ^= h >> 29;
	}
	for (; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ull;
	return h;
}

void tt_stream_make(void *buf, size_t len, uint64_t stream, uint64_t seq)
{
	uint8_t *b = buf;
	tt_fill(b, len, stream, seq);
	if (len >= 8)
		memcpy(b, &seq, 8);
	if (len >= 16) {
		uint64_t sum = checksum64(b, len - 8);
		memcpy(b + len - 8, &sum, 8);
	}
}

const char *tt_stream_verify(const void *buf, size_t len, uint64_t stream, uint64_t seq)
{
	const uint8_t *b = buf;
	if (len >= 8) {
		uint64_t got;
		memcpy(&got, b, 8);
		if (got != seq)
			return "sequence number in payload differs (lost, duplicated or reordered)";
	}
	if (len >= 16) {
		uint64_t sum;
		memcpy(&sum, b + len - 8, 8);
		if (sum != checksum64(b, len - 8))
			return "checksum mismatch";
	}
	uint8_t tmp[65536];
	if (len > sizeof tmp)
		return "record too long for the checker";
	tt_stream_make(tmp, len, stream, seq);
	if (memcmp(tmp, b, len) != 0)
		return "payload bytes differ";
	return NULL;
}

/* ---- misc ------------------------------------------------------------------ */

uint64_t tt_env_u64(const char *var, uint64_t dflt)
{
	const char *s = getenv(var);
	if (!s || !*s)
		return dflt;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 0);
	if (errno || *end)
		return dflt;
	return v;
}

uint64_t tt_stream_records(void)
{
	return tt_env_u64("TAKT_STREAM_RECORDS", tt_env_u64("TAKT_STREAM_RECORDS_DEFAULT", 10000000u));
}

uint64_t tt_seed(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	uint64_t dflt = tt_mix64((uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ (uint64_t)getpid());
	uint64_t seed = tt_env_u64("TAKT_SEED", dflt);
	cr_log_info("%s: seed %" PRIu64 " (set TAKT_SEED to repeat)",
		    criterion_current_test ? criterion_current_test->name : "?", seed);
	return seed;
}

void tt_backoff(unsigned *spins)
{
	unsigned n = ++*spins;
	if (n < 16) {
#if defined(__x86_64__) || defined(__i386__)
		__builtin_ia32_pause();
#endif
	} else if (n < 64) {
		sched_yield();
	} else {
		/* the peer is not running (2 cores, parallel tests): get out of
		 * its way rather than burn the core it needs */
		struct timespec ts = {0, 20000};
		nanosleep(&ts, NULL);
	}
}

double tt_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void tt_child_setup(void)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
}

int tt_wait_child(pid_t pid)
{
	int status = 0;
	pid_t r;
	do
		r = waitpid(pid, &status, 0);
	while (r < 0 && errno == EINTR);
	cr_assert_eq(r, pid, "waitpid: %s", strerror(errno));
	return status;
}

const char *tt_status_str(int status)
{
	static char buf[64];
	if (WIFEXITED(status))
		snprintf(buf, sizeof buf, "exit %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, sizeof buf, "signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
	else
		snprintf(buf, sizeof buf, "status 0x%x", status);
	return buf;
}
