/* SPDX-License-Identifier: MIT */
/* tb_common.c - see tb_common.h. */
#include "tb_common.h"

#include <criterion/hooks.h>
#include <criterion/logging.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "internal.h" /* struct takt_channel, takt_lane_ctrl */

#define TB_MAX_NAMES 32

static char names[TB_MAX_NAMES][TAKT_NAME_MAX + 1];
static unsigned n_names;
static pid_t owner; /* only the test worker cleans up, never a child */

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

void tb_remove(const char *name)
{
	char buf[TAKT_NAME_MAX + 64];
	(void)takt_unlink(name);
	snprintf(buf, sizeof buf, "/takt.%s", name);
	(void)shm_unlink(buf);
	/* "sem.takt.<name>.rx", "sem.takt.<name>.tx<k>": the trailing dot
	 * keeps "tb-1-x-1" from matching "tb-1-x-10". */
	snprintf(buf, sizeof buf, "sem.takt.%s.", name);
	remove_prefixed(buf);
}

const char *tb_name(const char *tag)
{
	cr_assert_lt(n_names, TB_MAX_NAMES, "too many channels in one test");
	char *out = names[n_names];
	/* tb-<runner pid>-<worker pid>-...: the runner's report hook below
	 * removes what a worker killed by a timeout or a crash left behind */
	snprintf(out, TAKT_NAME_MAX + 1, "tb-%d-%d-%s-%u", (int)getppid(), (int)getpid(), tag,
		 n_names);
	n_names++;
	tb_remove(out);
	return out;
}

void tb_init(void)
{
	owner = getpid();
	n_names = 0;
}

void tb_fini(void)
{
	if (getpid() != owner)
		return;
	for (unsigned i = 0; i < n_names; i++)
		tb_remove(names[i]);
	n_names = 0;
}

/* In the runner, after every test: whatever this run's workers left. */
ReportHook(POST_ALL)(struct criterion_global_stats *stats)
{
	(void)stats;
	char prefix[64];
	snprintf(prefix, sizeof prefix, "takt.tb-%d-", (int)getpid());
	remove_prefixed(prefix);
	snprintf(prefix, sizeof prefix, "sem.takt.tb-%d-", (int)getpid());
	remove_prefixed(prefix);
}

void tb_create(const char *name, uint64_t capacity, uint32_t lanes, uint32_t max_record)
{
	struct takt_queue_config cfg = {
		.capacity = capacity, .lanes = lanes, .max_record = max_record, .mode = 0600,
	};
	int rc = takt_queue_create(name, &cfg);
	cr_assert_eq(rc, 0, "takt_queue_create(%s) = %d (%s)", name, rc, takt_strerror(rc));
}

void *tb_shared(size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(p, MAP_FAILED, "mmap: %s", strerror(errno));
	return p;
}

pid_t tb_fork(int (*fn)(void *), void *arg)
{
	pid_t parent = getpid();
	fflush(NULL);
	pid_t pid = fork();
	cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(99);
		_exit(fn(arg));
	}
	return pid;
}

int tb_wait(pid_t pid)
{
	int status = 0;
	pid_t r;
	do
		r = waitpid(pid, &status, 0);
	while (r < 0 && errno == EINTR);
	cr_assert_eq(r, pid, "waitpid: %s", strerror(errno));
	return status;
}

const char *tb_status_str(int status)
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

void tb_fail(struct tb_report *r, const char *fmt, ...)
{
	int expected = 0;
	if (!atomic_compare_exchange_strong(&r->set, &expected, 1))
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->msg, sizeof r->msg, fmt, ap);
	va_end(ap);
}

uint64_t tb_env_u64(const char *var, uint64_t dflt)
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

uint64_t tb_seed(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	uint64_t x = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ (uint64_t)getpid();
	uint64_t seed = tb_env_u64("TAKT_SEED", tb_rand(&x));
	cr_log_info("seed %" PRIu64 " (set TAKT_SEED to repeat)", seed);
	return seed;
}

_Atomic uint32_t *tb_rx_bell(takt_channel *ch)
{
	return &ch->consumer->rx_doorbell;
}

_Atomic uint32_t *tb_tx_bell(takt_channel *ch, unsigned lane)
{
	return &takt_lane_ctrl(ch, lane)->tx_doorbell;
}

/* Still running (not exited, not yet reaped)?  Leaves a zombie waitable. */
static bool alive(pid_t pid)
{
	siginfo_t info;
	memset(&info, 0, sizeof info);
	if (waitid(P_PID, (id_t)pid, &info, WEXITED | WNOHANG | WNOWAIT) != 0)
		return false;
	return info.si_pid == 0;
}

/* 1: in futex(), 0: not, -1: cannot tell. */
static int in_futex(pid_t pid)
{
	char path[64], buf[128];
	snprintf(path, sizeof path, "/proc/%d/syscall", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	char *end;
	long nr = strtol(buf, &end, 10);
	if (end == buf)
		return 0; /* "running" */
#ifdef SYS_futex_waitv
	if (nr == SYS_futex_waitv)
		return 1;
#endif
	return nr == SYS_futex;
}

bool tb_wait_parked(_Atomic uint32_t *word, pid_t pid)
{
	unsigned spins = 0;
	for (;;) {
		if (atomic_load_explicit(word, memory_order_acquire) & 1u) {
			int f = pid > 0 ? in_futex(pid) : -1;
			if (f != 0)
				return true;
		}
		if (pid > 0 && (++spins & 255) == 0 && !alive(pid))
			return false;
		sched_yield();
	}
}

void tb_fill(void *buf, size_t len, uint64_t stream, uint64_t seq)
{
	uint8_t *b = buf;
	uint64_t s = stream * 0x100000001b3ull ^ seq;
	for (size_t i = 0; i < len; i += 8) {
		uint64_t v = tb_rand(&s);
		size_t k = len - i < 8 ? len - i : 8;
		memcpy(b + i, &v, k);
	}
	if (len >= 8)
		memcpy(b, &seq, 8);
}

bool tb_check(const void *buf, size_t len, uint64_t stream, uint64_t seq)
{
	uint8_t tmp[65536];
	if (len > sizeof tmp)
		return false;
	tb_fill(tmp, len, stream, seq);
	return memcmp(tmp, buf, len) == 0;
}
