/* SPDX-License-Identifier: MIT */
/* ts_common.c - see ts_common.h. */
#include "ts_common.h"

#include <criterion/hooks.h>
#include <criterion/logging.h>
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
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

#define TS_MAX_NAMES 16

static char tracked[TS_MAX_NAMES][TAKT_NAME_MAX + 1];
static unsigned n_tracked;

/* Remove /dev/shm entries whose names start with prefix. */
static void remove_prefixed(const char *prefix)
{
	DIR *d = opendir("/dev/shm");
	if (!d)
		return;
	size_t n = strlen(prefix);
	struct dirent *e;
	while ((e = readdir(d)) != NULL)
		if (strncmp(e->d_name, prefix, n) == 0)
			unlinkat(dirfd(d), e->d_name, 0);
	closedir(d);
}

void ts_remove(const char *name)
{
	char buf[TAKT_NAME_MAX + 64];
	(void)takt_unlink(name);
	snprintf(buf, sizeof buf, "/takt.%s", name);
	(void)shm_unlink(buf);
	snprintf(buf, sizeof buf, "sem.takt.%s.", name);
	remove_prefixed(buf);
}

int ts_leftovers(const char *name)
{
	char seg[TAKT_NAME_MAX + 64], sem[TAKT_NAME_MAX + 64];
	snprintf(seg, sizeof seg, "takt.%s", name);
	snprintf(sem, sizeof sem, "sem.takt.%s.", name);
	size_t nsem = strlen(sem);
	int count = 0;
	DIR *d = opendir("/dev/shm");
	cr_assert_not_null(d, "opendir /dev/shm: %s", strerror(errno));
	struct dirent *e;
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, seg) == 0 || strncmp(e->d_name, sem, nsem) == 0)
			count++;
	closedir(d);
	return count;
}

const char *ts_name(const char *tag)
{
	cr_assert_lt(n_tracked, TS_MAX_NAMES, "too many channels in one test");
	char *out = tracked[n_tracked];
	int n = snprintf(out, TAKT_NAME_MAX + 1, "ts-%d-%s", (int)getpid(), tag);
	cr_assert(n > 0 && n <= TAKT_NAME_MAX, "channel name too long: %s", tag);
	ts_remove(out);
	n_tracked++;
	return out;
}

void ts_init(void)
{
	n_tracked = 0;
}

void ts_fini(void)
{
	for (unsigned i = 0; i < n_tracked; i++)
		ts_remove(tracked[i]);
	n_tracked = 0;
}

/* In the runner, after every test: remove what crashed workers left (names
 * "ts-<pid>-..." whose pid no longer exists). */
ReportHook(POST_ALL)(struct criterion_global_stats *stats)
{
	(void)stats;
	DIR *d = opendir("/dev/shm");
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		const char *p = e->d_name;
		if (strncmp(p, "sem.", 4) == 0)
			p += 4;
		if (strncmp(p, "takt.ts-", 8) != 0)
			continue;
		char *end;
		long pid = strtol(p + 8, &end, 10);
		if (pid <= 0 || *end != '-')
			continue;
		if (kill((pid_t)pid, 0) != 0 && errno == ESRCH)
			unlinkat(dirfd(d), e->d_name, 0);
	}
	closedir(d);
}

/* ---- channel shortcuts -------------------------------------------------- */

void ts_create(const char *name, uint32_t image_size)
{
	struct takt_state_config cfg = {.image_size = image_size, .mode = 0600};
	int rc = takt_state_create(name, &cfg);
	cr_assert_eq(rc, 0, "takt_state_create(%s, %u) = %d (%s)", name, image_size, rc,
		     takt_strerror(rc));
}

takt_state_writer *ts_writer(const char *name)
{
	takt_state_writer *w = NULL;
	int rc = takt_state_writer_open(name, &w);
	cr_assert_eq(rc, 0, "takt_state_writer_open(%s) = %d (%s)", name, rc, takt_strerror(rc));
	cr_assert_not_null(w);
	return w;
}

takt_state_reader *ts_reader(const char *name)
{
	takt_state_reader *r = NULL;
	int rc = takt_state_reader_open(name, &r);
	cr_assert_eq(rc, 0, "takt_state_reader_open(%s) = %d (%s)", name, rc, takt_strerror(rc));
	cr_assert_not_null(r);
	return r;
}

takt_channel *ts_inspect(const char *name)
{
	takt_channel *ch = NULL;
	int rc = takt_channel_open(name, TAKT_OPEN_RDONLY, &ch);
	cr_assert_eq(rc, 0, "takt_channel_open(%s, RDONLY) = %d (%s)", name, rc, takt_strerror(rc));
	return ch;
}

struct takt_state_stats ts_stats(const char *name)
{
	takt_channel *ch = ts_inspect(name);
	struct takt_state_stats s;
	memset(&s, 0, sizeof s);
	int rc = takt_state_stats_get(ch, &s);
	cr_assert_eq(rc, 0, "takt_state_stats_get = %d (%s)", rc, takt_strerror(rc));
	cr_assert_eq(takt_channel_close(ch), 0);
	return s;
}

/* ---- raw access ------------------------------------------------------------ */

void ts_raw_map(const char *name, struct ts_raw *raw)
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

void ts_raw_unmap(struct ts_raw *raw)
{
	if (raw->base && raw->base != MAP_FAILED)
		munmap(raw->base, raw->size);
	if (raw->fd >= 0)
		close(raw->fd);
	raw->base = NULL;
	raw->fd = -1;
}

/* ---- images ----------------------------------------------------------------- */

static uint64_t mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static uint64_t checksum(const uint8_t *b, size_t n)
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

void ts_image_make(void *buf, size_t len, uint64_t gen)
{
	uint8_t *b = buf;
	uint64_t l = len;
	memcpy(b, &gen, 8);
	memcpy(b + 8, &l, 8);
	uint64_t x = mix64(gen) | 1;
	size_t i = 16;
	for (; i + 8 <= len - 8; i += 8) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		memcpy(b + i, &x, 8);
	}
	for (; i < len - 8; i++)
		b[i] = (uint8_t)(gen + i);
	uint64_t sum = checksum(b, len - 8);
	memcpy(b + len - 8, &sum, 8);
}

const char *ts_image_check(const void *buf, size_t len, uint64_t gen)
{
	const uint8_t *b = buf;
	if (len < TS_IMAGE_MIN)
		return "image shorter than a test image";
	uint64_t g, l, sum;
	memcpy(&g, b, 8);
	memcpy(&l, b + 8, 8);
	memcpy(&sum, b + len - 8, 8);
	if (sum != checksum(b, len - 8))
		return "checksum mismatch (torn or corrupted image)";
	if (l != len)
		return "length in the image differs from the length read";
	if (g != gen)
		return "generation in the image differs from info.generation";
	return NULL;
}

uint64_t ts_image_gen(const void *buf)
{
	uint64_t g;
	memcpy(&g, buf, 8);
	return g;
}

/* ---- misc ---------------------------------------------------------------------- */

uint64_t ts_env_u64(const char *var, uint64_t dflt)
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

uint64_t ts_seed(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	uint64_t dflt = mix64((uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ (uint64_t)getpid());
	uint64_t seed = ts_env_u64("TAKT_SEED", dflt);
	cr_log_info("%s: seed %" PRIu64 " (set TAKT_SEED to repeat)",
		    criterion_current_test ? criterion_current_test->name : "?", seed);
	return seed;
}

uint64_t ts_rand(uint64_t *state)
{
	*state += 0x9e3779b97f4a7c15ull;
	return mix64(*state);
}

unsigned ts_long(void)
{
	return ts_env_u64("TAKT_LONG", 0) == 1 ? 10 : 1;
}

uint64_t ts_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void ts_sleep_ns(uint64_t ns)
{
	struct timespec ts = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

void *ts_shared(size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(p, MAP_FAILED, "mmap shared: %s", strerror(errno));
	return p;
}

void ts_shared_free(void *p, size_t size)
{
	munmap(p, size);
}

void ts_child_setup(void)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
}

pid_t ts_fork(void)
{
	pid_t pid = fork();
	cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
	if (pid == 0)
		ts_child_setup();
	return pid;
}

int ts_wait(pid_t pid)
{
	int status = 0;
	pid_t r;
	do
		r = waitpid(pid, &status, 0);
	while (r < 0 && errno == EINTR);
	cr_assert_eq(r, pid, "waitpid(%d): %s", (int)pid, strerror(errno));
	return status;
}

int ts_kill_wait(pid_t pid)
{
	kill(pid, SIGKILL);
	return ts_wait(pid);
}

const char *ts_status_str(int status)
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
