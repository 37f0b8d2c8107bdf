/* SPDX-License-Identifier: MIT */
/* tr_common.c - see tr_common.h. */
#include "tr_common.h"

#include <criterion/hooks.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TR_MAX 32
static char names[TR_MAX][TAKT_NAME_MAX + 1];
static unsigned n_names, counter;

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

void tr_remove(const char *name)
{
	char buf[TAKT_NAME_MAX + 64];
	(void)takt_unlink(name);
	snprintf(buf, sizeof buf, "/takt.%s", name);
	(void)shm_unlink(buf);
	snprintf(buf, sizeof buf, "sem.takt.%s.", name);
	remove_prefixed(buf);
}

int tr_leftovers(const char *name)
{
	char seg[TAKT_NAME_MAX + 64], sem[TAKT_NAME_MAX + 64];
	snprintf(seg, sizeof seg, "takt.%s", name);
	snprintf(sem, sizeof sem, "sem.takt.%s.", name);
	int count = 0;
	DIR *d = opendir("/dev/shm");
	if (!d)
		return -1;
	struct dirent *e;
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, seg) == 0 || strncmp(e->d_name, sem, strlen(sem)) == 0)
			count++;
	closedir(d);
	return count;
}

void tr_init(void)
{
	n_names = 0;
}

void tr_cleanup(void)
{
	for (unsigned i = 0; i < n_names; i++)
		tr_remove(names[i]);
	n_names = 0;
}

const char *tr_name(const char *what)
{
	cr_assert_lt(n_names, TR_MAX);
	char *out = names[n_names++];
	/* tr-<runner pid>-<worker pid>-...: the runner's report hook below
	 * finds what a crashed worker (no .fini) left behind */
	snprintf(out, TAKT_NAME_MAX + 1, "tr-%d-%d-%.60s-%u", (int)getppid(), (int)getpid(), what,
		 counter++);
	tr_remove(out);
	return out;
}

/* In the runner, after every test: remove what crashed workers left. */
ReportHook(POST_ALL)(struct criterion_global_stats *stats)
{
	(void)stats;
	char prefix[64];
	snprintf(prefix, sizeof prefix, "takt.tr-%d-", (int)getpid());
	remove_prefixed(prefix);
	snprintf(prefix, sizeof prefix, "sem.takt.tr-%d-", (int)getpid());
	remove_prefixed(prefix);
}

void tr_create(const char *name, uint64_t capacity, uint32_t lanes, uint32_t max_record)
{
	struct takt_queue_config cfg = {
		.capacity = capacity, .lanes = lanes, .max_record = max_record, .mode = 0600};
	int rc = takt_queue_create(name, &cfg);
	cr_assert_eq(rc, 0, "takt_queue_create(%s) = %d (%s)", name, rc, takt_strerror(rc));
}

/* ---- records ---- */

#define TR_MAGIC 0x5245434fu

static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static uint64_t fnv(const uint8_t *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	return h;
}

size_t tr_rec_len(uint32_t stream, uint64_t seq, uint32_t max)
{
	uint64_t r = mix(((uint64_t)stream << 48) ^ seq);
	size_t span = max - TR_REC_MIN + 1;
	/* mostly short records, now and then a long one (wraps, padding) */
	if ((r & 15) == 0)
		return TR_REC_MIN + (size_t)((r >> 8) % span);
	size_t small = span < 64 ? span : 64;
	return TR_REC_MIN + (size_t)((r >> 8) % small);
}

/* layout: u32 magic, u32 len, u32 stream, u32 inc, u64 seq, filler, u64 fnv */
void tr_rec_make(void *buf, size_t len, struct tr_rec_id id)
{
	uint8_t *b = buf;
	uint32_t w[4] = {TR_MAGIC, (uint32_t)len, id.stream, id.inc};
	memcpy(b, w, 16);
	memcpy(b + 16, &id.seq, 8);
	uint64_t x = mix(id.seq ^ ((uint64_t)id.stream << 40) ^ ((uint64_t)id.inc << 20));
	for (size_t i = 24; i < len - 8; i++) {
		b[i] = (uint8_t)x;
		x = (x >> 8) | (x << 56);
		if ((i & 7) == 7)
			x = mix(x);
	}
	uint64_t h = fnv(b, len - 8);
	memcpy(b + len - 8, &h, 8);
}

const char *tr_rec_check(const void *buf, size_t len, struct tr_rec_id *id)
{
	const uint8_t *b = buf;
	if (len < TR_REC_MIN)
		return "too short";
	uint32_t w[4];
	memcpy(w, b, 16);
	if (w[0] != TR_MAGIC)
		return "bad magic";
	if (w[1] != len)
		return "length mismatch";
	uint64_t h;
	memcpy(&h, b + len - 8, 8);
	if (h != fnv(b, len - 8))
		return "checksum mismatch (torn record)";
	id->stream = w[2];
	id->inc = w[3];
	memcpy(&id->seq, b + 16, 8);
	return NULL;
}

/* ---- processes ---- */

void tr_child_setup(void)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
}

int tr_wait_timeout(pid_t pid, double timeout_s)
{
	int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pfd >= 0) {
		struct pollfd p = {.fd = pfd, .events = POLLIN};
		double end = tr_now() + timeout_s;
		for (;;) {
			double left = end - tr_now();
			if (left <= 0)
				break;
			int r = poll(&p, 1, (int)(left * 1000) + 1);
			if (r > 0)
				break;
			if (r < 0 && errno != EINTR)
				break;
		}
		close(pfd);
	}
	int st;
	pid_t r = waitpid(pid, &st, WNOHANG);
	if (r == pid)
		return st;
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	return -1;
}

const char *tr_status(int st)
{
	static char buf[64];
	if (st == -1)
		snprintf(buf, sizeof buf, "hung (killed at timeout)");
	else if (WIFEXITED(st))
		snprintf(buf, sizeof buf, "exit %d", WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		snprintf(buf, sizeof buf, "signal %d", WTERMSIG(st));
	else
		snprintf(buf, sizeof buf, "status 0x%x", st);
	return buf;
}

void *tr_shared(size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(p, MAP_FAILED);
	return p;
}

void tr_unshared(void *p, size_t size)
{
	munmap(p, size);
}

/* ---- misc ---- */

uint64_t tr_env_u64(const char *var, uint64_t dflt)
{
	const char *v = getenv(var);
	if (!v || !*v)
		return dflt;
	return strtoull(v, NULL, 0);
}

bool tr_long(void)
{
	return tr_env_u64("TAKT_LONG", 0) == 1;
}

uint64_t tr_seed(void)
{
	uint64_t s = tr_env_u64("TAKT_SEED", 0);
	if (!s) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		s = mix((uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)getpid());
	}
	if (!s)
		s = 1;
	cr_log_info("TAKT_SEED=%" PRIu64, s);
	fprintf(stderr, "TAKT_SEED=%" PRIu64 "\n", s);
	return s;
}

double tr_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void tr_yield(void)
{
	sched_yield();
}
