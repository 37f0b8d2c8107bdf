/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include "harness.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>
#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#define HAVE_TSC 1
static inline uint64_t read_tsc(void)
{
	unsigned aux;
	return __rdtscp(&aux);
}
#else
#define HAVE_TSC 0
static inline uint64_t read_tsc(void) { return 0; }
#endif

/* ---- timer ----------------------------------------------------------- */

static enum bench_timer timer_mode = TIMER_CLOCK;
static double tsc_ns_per_tick = 1.0;
static double timer_overhead = 0.0;
static double timer_resolution = 0.0;

uint64_t bench_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline uint64_t ticks(void)
{
	if (timer_mode == TIMER_TSC)
		return read_tsc();
	return bench_now_ns();
}

static inline uint64_t ticks_to_ns(uint64_t t)
{
	if (timer_mode == TIMER_TSC)
		return (uint64_t)((double)t * tsc_ns_per_tick + 0.5);
	return t;
}

void bench_timer_init(enum bench_timer t)
{
	if (!HAVE_TSC)
		t = TIMER_CLOCK;
	timer_mode = t;
	if (t == TIMER_TSC) {
		/* Calibrate over ~50 ms of CLOCK_MONOTONIC. */
		uint64_t n0 = bench_now_ns(), c0 = read_tsc(), n1, c1;
		do {
			n1 = bench_now_ns();
			c1 = read_tsc();
		} while (n1 - n0 < 50000000ull);
		tsc_ns_per_tick = (double)(n1 - n0) / (double)(c1 - c0);
	}
	/* Overhead of one reading: the minimum over many back-to-back pairs. */
	uint64_t best = UINT64_MAX;
	uint64_t sum = 0;
	const int reps = 100000;
	for (int i = 0; i < reps; i++) {
		uint64_t a = ticks(), b = ticks();
		sum += b - a;
		if (b - a > 0 && b - a < best)
			best = b - a;
	}
	/* The mean: the clock may tick in coarse steps (10 ns on some VMs). */
	timer_overhead = (double)sum / reps * (t == TIMER_TSC ? tsc_ns_per_tick : 1.0);
	timer_resolution = (double)best * (t == TIMER_TSC ? tsc_ns_per_tick : 1.0);
}

enum bench_timer bench_timer_mode(void) { return timer_mode; }
double bench_timer_overhead_ns(void) { return timer_overhead; }
double bench_timer_resolution_ns(void) { return timer_resolution; }
double bench_tsc_ghz(void) { return timer_mode == TIMER_TSC ? 1.0 / tsc_ns_per_tick : 0.0; }

/* ---- CPUs ---------------------------------------------------------------- */

int bench_pin(int cpu)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set) != 0)
		return -errno;
	return 0;
}

int bench_current_cpu(void) { return sched_getcpu(); }

/* ---- payload: sequence word, body pattern, check word ----------------------- */
/*
 * A record of `size` bytes:  [0, 8) sequence word;  [8, size - 8) a fixed
 * pattern (byte i = i * 131 + 7);  [size - 8, size) the check word
 * mix(seq) ^ sum(body) (records of 16 bytes and more).  The sender writes the
 * pattern once and two words per record; the receiver checks the sequence
 * and the check word on every record (a record torn between two sends fails
 * it) and recomputes the body sum on a sample.
 */
#define SEQ_MASK_ ((1ull << 48) - 1u)

static inline uint64_t mix(uint64_t x) { return x * 0x9E3779B97F4A7C15ull + 0x632BE59BD9B4E019ull; }

static uint64_t body_sum(const unsigned char *b, size_t size)
{
	if (size < 16)
		return 0;
	uint64_t s = 0;
	size_t i = 8, end = size - 8;
	for (; i + 8 <= end; i += 8) {
		uint64_t w;
		memcpy(&w, b + i, 8);
		s += w;
	}
	for (; i < end; i++)
		s += (uint64_t)b[i] << ((i & 7u) * 8u);
	return s;
}

static size_t body_size_cached;
static uint64_t body_sum_cached;

static uint64_t expected_body_sum(size_t size)
{
	if (size != body_size_cached || size < 16) {
		unsigned char *t = malloc(size ? size : 1);
		if (!t)
			abort();
		bench_payload_init(t, size);
		body_sum_cached = body_sum(t, size);
		body_size_cached = size;
		free(t);
	}
	return body_sum_cached;
}

void bench_payload_init(void *buf, size_t size)
{
	unsigned char *b = buf;
	for (size_t i = 0; i < size; i++)
		b[i] = (unsigned char)(i * 131u + 7u);
}

void bench_payload_stamp(void *buf, size_t size, uint64_t seq)
{
	unsigned char *b = buf;
	memcpy(b, &seq, 8);
	if (size >= 16) {
		uint64_t c = mix(seq) ^ expected_body_sum(size);
		memcpy(b + size - 8, &c, 8);
	}
}

int bench_payload_check(const void *buf, size_t size, uint64_t seq, int full)
{
	const unsigned char *b = buf;
	uint64_t s;
	memcpy(&s, b, 8);
	if (s != seq)
		return -1;
	if (size >= 16) {
		uint64_t c, want = expected_body_sum(size);
		memcpy(&c, b + size - 8, 8);
		if (c != (mix(seq) ^ want))
			return -2;
		if (full && body_sum(b, size) != want)
			return -3;
	}
	return 0;
}

/* Test hook: TAKT_BENCH_CORRUPT=N makes the sender damage one payload byte
 * of record N (after stamping it), so the tests can see the receiver catch
 * it.  Read once, before the fork. */
static uint64_t corrupt_at;

static void corrupt_init(void)
{
	const char *e = getenv("TAKT_BENCH_CORRUPT");
	corrupt_at = e ? strtoull(e, NULL, 0) : 0;
}

static inline void maybe_corrupt(unsigned char *b, size_t size, uint64_t seq)
{
	if (corrupt_at && (seq & SEQ_MASK_) == corrupt_at && size >= 24)
		b[size / 2] ^= 0x40;
}

static const char *check_what(int rc)
{
	return rc == -1 ? "wrong sequence number" : rc == -2 ? "bad check word" : "bad payload checksum";
}

/* ---- progress --------------------------------------------------------------- */

static char progress_label[160];
static uint64_t progress_t0, progress_last;
static int progress_shown, progress_tty = -1;

void bench_progress_label(const char *label)
{
	snprintf(progress_label, sizeof(progress_label), "%s", label);
	progress_t0 = bench_now_ns();
	progress_last = 0;
}

void bench_progress(double frac)
{
	if (progress_tty < 0)
		progress_tty = isatty(2);
	if (!progress_tty)
		return;
	uint64_t now = bench_now_ns();
	if (now - progress_t0 < 2000000000ull || now - progress_last < 250000000ull)
		return;
	progress_last = now;
	if (frac < 0)
		frac = 0;
	if (frac > 1)
		frac = 1;
	fprintf(stderr, "\r\033[K  %s: %3.0f%% (%.0f s)", progress_label, 100.0 * frac,
		(double)(now - progress_t0) / 1e9);
	progress_shown = 1;
}

void bench_progress_end(void)
{
	if (progress_shown)
		fprintf(stderr, "\r\033[K");
	progress_shown = 0;
}

/* ---- the processes ------------------------------------------------------------- */

#define MAX_CHILDREN 64

/* Shared between parent and children (MAP_SHARED anonymous, inherited by fork). */
struct ctl {
	alignas(128) atomic_uint arrived;
	alignas(128) atomic_int stop;   /* parent -> children: end of streaming */
	alignas(128) atomic_int abort;  /* either way: give up */
	char msg[256];
	atomic_ullong produced;
	atomic_ullong full_events;
	int child_cpu;
	int parent_cpu;
	pid_t parent_pid, child_pid;
};

struct run {
	struct ctl *ctl;
	const struct bench_opts *o;
	int is_parent;
	unsigned index;        /* child: its index */
	pid_t parent;
	unsigned nchild;
	pid_t child[MAX_CHILDREN];
	int reaped[MAX_CHILDREN];
	int status[MAX_CHILDREN];
	uint64_t deadline_ns;  /* hard limit */
	unsigned watch_mask;   /* polls between watchdog runs - 1 */
	int blocking;
};

static void fail(struct run *r, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void fail(struct run *r, int err, const char *fmt, ...)
{
	int expected = 0;
	if (!atomic_compare_exchange_strong(&r->ctl->abort, &expected, err ? err : -EIO))
		return; /* the first failure wins */
	va_list ap;
	va_start(ap, fmt);
	int n = snprintf(r->ctl->msg, sizeof(r->ctl->msg), "%s: ",
			 r->is_parent ? (r->o->names[0] ? r->o->names[0] : "parent")
				      : (r->o->names[1] ? r->o->names[1] : "child"));
	if (n > 0 && (size_t)n < sizeof(r->ctl->msg))
		vsnprintf(r->ctl->msg + n, sizeof(r->ctl->msg) - (size_t)n, fmt, ap);
	va_end(ap);
}

/* Called every watch_mask + 1 unsuccessful polls.  Nonzero: give up. */
static int __attribute__((noinline)) watchdog(struct run *r)
{
	if (atomic_load_explicit(&r->ctl->abort, memory_order_relaxed))
		return 1;
	if (bench_now_ns() > r->deadline_ns) {
		fail(r, -ETIMEDOUT, "no progress before the %.0f s timeout",
		     r->o->timeout_seconds);
		return 1;
	}
	if (r->is_parent) {
		for (unsigned k = 0; k < r->nchild; k++) {
			if (r->reaped[k])
				continue;
			pid_t w = waitpid(r->child[k], &r->status[k], WNOHANG);
			if (w == r->child[k]) {
				r->reaped[k] = 1;
				fail(r, -EPIPE, "a peer process exited early (status 0x%x)",
				     r->status[k]);
				return 1;
			}
		}
	} else if (getppid() != r->parent) {
		fail(r, -EPIPE, "the parent process died");
		return 1;
	}
	return 0;
}

#define WATCH_MASK 0xffffu

static int barrier(struct run *r)
{
	atomic_fetch_add(&r->ctl->arrived, 1);
	uint64_t spins = 0;
	while (atomic_load(&r->ctl->arrived) < r->nchild + 1u) {
		if ((++spins & 0xfffu) == 0) {
			if (watchdog(r))
				return -1;
			sched_yield();
		}
	}
	return 0;
}

static struct ctl *ctl_new(void)
{
	void *p = mmap(NULL, sizeof(struct ctl), PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	memset(p, 0, sizeof(struct ctl));
	return p;
}

static void *xaligned(size_t n)
{
	void *p = NULL;
	if (posix_memalign(&p, 128, n ? n : 1) != 0)
		return NULL;
	memset(p, 0xa5, n);
	return p;
}

static size_t align8(size_t n) { return (n + 7u) & ~(size_t)7u; }

/* Blocking mode: a SIGALRM every 250 ms interrupts blocking system calls
 * (no SA_RESTART), so every process reaches its watchdog and stop checks. */
static void on_alarm(int sig) { (void)sig; }

static void alarm_arm(int on)
{
	struct itimerval it;
	memset(&it, 0, sizeof(it));
	if (on) {
		struct sigaction sa;
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = on_alarm;
		sigemptyset(&sa.sa_mask);
		sigaction(SIGALRM, &sa, NULL);
		it.it_interval.tv_usec = 250000;
		it.it_value.tv_usec = 250000;
	}
	setitimer(ITIMER_REAL, &it, NULL);
}

static uint64_t verify_mask(const struct bench_opts *o)
{
	uint64_t v = o->verify_every ? o->verify_every : 1024;
	uint64_t p = 1;
	while (p * 2 <= v)
		p *= 2;
	return p - 1;
}

typedef int (*child_fn)(struct run *r, const struct bench_mech *m,
			const struct bench_params *p, void *ep);

static int child_main(struct run *r, const struct bench_mech *m, const struct bench_params *p,
		      void *state, enum bench_role role, child_fn fn)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != r->parent)
		return 1;
	if (r->o->names[1])
		prctl(PR_SET_NAME, r->o->names[1]);
	if (r->o->mlock)
		mlockall(MCL_CURRENT | MCL_FUTURE);
	if (r->o->pin) {
		/* Every peer on cpu[1], several producers too: they then share
		 * the CPU that one SPSC producer has to itself, and the consumer
		 * keeps cpu[0] alone, so an MPSC run compares with the SPSC run
		 * on equal CPU time (on two CPUs, spreading producers over the
		 * consumer's CPU would measure the consumer losing its CPU). */
		int cpu = r->o->cpu[1];
		int e = bench_pin(cpu);
		if (e < 0) {
			fail(r, e, "cannot pin to CPU %d: %s", cpu, strerror(-e));
			return 1;
		}
	}
	if (r->blocking)
		alarm_arm(1);
	void *ep = NULL;
	int e = m->open(state, p, role, &ep);
	if (e < 0) {
		fail(r, e, "%s open: %s", m->name, strerror(-e));
		return 1;
	}
	if (r->index == 0)
		r->ctl->child_cpu = bench_current_cpu();
	int rc = 1;
	if (barrier(r) == 0)
		rc = fn(r, m, p, ep);
	m->close(ep);
	return rc;
}

/* Fork the children, open the parent's endpoint, meet at the barrier. */
static int start(struct run *r, const struct bench_mech *m, const struct bench_params *p,
		 void *state, enum bench_role parent_role, enum bench_role child_role,
		 unsigned nchild, child_fn fn, void **ep)
{
	fflush(NULL);
	r->parent = getpid();
	r->is_parent = 1;
	r->ctl->parent_pid = r->parent;
	r->nchild = nchild; /* before the forks: the children's barrier counts on it */
	for (unsigned k = 0; k < nchild; k++) {
		pid_t pid = fork();
		if (pid < 0) {
			fail(r, -errno, "fork: %s", strerror(errno));
			r->nchild = k;
			return -1;
		}
		if (pid == 0) {
			r->is_parent = 0;
			r->index = k;
			struct bench_params pc = *p;
			pc.producer = k;
			_exit(child_main(r, m, &pc, state, child_role, fn));
		}
		r->child[k] = pid;
		if (k == 0)
			r->ctl->child_pid = pid;
	}
	if (r->o->names[0])
		prctl(PR_SET_NAME, r->o->names[0]);
	if (r->blocking)
		alarm_arm(1);
	int e = m->open(state, p, parent_role, ep);
	if (e < 0) {
		fail(r, e, "%s open: %s", m->name, strerror(-e));
		*ep = NULL;
		return e;
	}
	r->ctl->parent_cpu = bench_current_cpu();
	if (barrier(r) != 0)
		return -1;
	return 0;
}

static void finish(struct run *r)
{
	uint64_t until = bench_now_ns() + 5000000000ull;
	for (unsigned k = 0; k < r->nchild; k++) {
		while (!r->reaped[k]) {
			pid_t w = waitpid(r->child[k], &r->status[k], WNOHANG);
			if (w == r->child[k] || (w < 0 && errno != EINTR)) {
				r->reaped[k] = 1;
				break;
			}
			if (bench_now_ns() > until) {
				kill(r->child[k], SIGKILL);
				waitpid(r->child[k], &r->status[k], 0);
				r->reaped[k] = 1;
				break;
			}
			usleep(1000);
		}
	}
	if (r->blocking)
		alarm_arm(0);
	if (!atomic_load(&r->ctl->abort))
		for (unsigned k = 0; k < r->nchild; k++)
			if (!(WIFEXITED(r->status[k]) && WEXITSTATUS(r->status[k]) == 0)) {
				fail(r, -EPIPE, "a peer process failed (status 0x%x)", r->status[k]);
				break;
			}
}

static void copy_msg(char *dst, size_t cap, const struct ctl *c)
{
	snprintf(dst, cap, "%s", c->msg[0] ? c->msg : "failed");
}

static void run_init(struct run *r, struct ctl *ctl, const struct bench_opts *o,
		     const struct bench_params *p)
{
	memset(r, 0, sizeof(*r));
	r->ctl = ctl;
	r->o = o;
	r->deadline_ns = bench_now_ns() + (uint64_t)(o->timeout_seconds * 1e9);
	r->blocking = p->blocking;
	r->watch_mask = p->blocking ? 0 : WATCH_MASK;
	corrupt_init();
	signal(SIGPIPE, SIG_IGN); /* a closed pipe or socket is an error return */
}

/* ---- latency ------------------------------------------------------------- */

int bench_parse_poll(const char *s)
{
	return strcmp(s, "pause") == 0 ? 1 : strcmp(s, "tight") == 0 ? 0 : -1;
}

/*
 * After a poll that found nothing, optionally a pause instruction: the spin
 * of takt_recv and of most user loops.  It changes what the coherence
 * protocol sees (fewer read requests while the writer is acquiring the
 * line), so both ways are offered and every mechanism polls the same way.
 */
static inline void poll_pause(const struct run *r)
{
	if (r->o->poll_pause) {
#if defined(__x86_64__) || defined(__i386__)
		__builtin_ia32_pause();
#elif defined(__aarch64__)
		__asm__ __volatile__("yield");
#endif
	}
}

static int pong_loop(struct run *r, const struct bench_mech *m, const struct bench_params *p,
		     void *ep)
{
	const uint64_t total = r->o->warmup + r->o->iterations;
	const uint64_t vmask = verify_mask(r->o);
	const int seq_only = (m->flags & MECH_SEQ_ONLY) != 0;
	size_t cap = align8(p->size);
	unsigned char *buf = xaligned(cap);
	if (!buf)
		return 1;
	for (uint64_t i = 1; i <= total; i++) {
		int n;
		uint64_t spins = 0;
		while ((n = m->try_recv(ep, buf, cap)) == -EAGAIN) {
			poll_pause(r);
			if ((++spins & r->watch_mask) == 0 && watchdog(r))
				goto out;
		}
		if (n < 0) {
			fail(r, n, "receive: %s", strerror(-n));
			goto out;
		}
		if (!seq_only) {
			int c = (size_t)n != p->size ? -4
				: bench_payload_check(buf, p->size, i, (i & vmask) == 0 || i == total);
			if (c) {
				fail(r, -EBADMSG, "record %llu: %s", (unsigned long long)i,
				     c == -4 ? "wrong length" : check_what(c));
				goto out;
			}
		}
		int e;
		while ((e = m->try_send(ep, buf, (size_t)n)) == -EAGAIN) {
			poll_pause(r);
			if ((++spins & r->watch_mask) == 0 && watchdog(r))
				goto out;
		}
		if (e < 0) {
			fail(r, e, "send: %s", strerror(-e));
			goto out;
		}
	}
	free(buf);
	return 0;
out:
	free(buf);
	return 1;
}

int bench_latency(const struct bench_mech *m, const struct bench_params *p,
		  const struct bench_opts *o, struct lat_result *out)
{
	memset(out, 0, sizeof(*out));
	hist_init(&out->hist);
	if (p->size < 8) {
		out->err = -EINVAL;
		snprintf(out->msg, sizeof(out->msg), "record size must be >= 8");
		return out->err;
	}
	struct ctl *ctl = ctl_new();
	if (!ctl)
		return out->err = -ENOMEM;
	struct run r;
	run_init(&r, ctl, o, p);
	void *state = NULL, *ep = NULL;
	int e = m->setup(p, &state);
	if (e < 0) {
		out->err = e;
		snprintf(out->msg, sizeof(out->msg), "%s setup: %s", m->name, strerror(-e));
		munmap(ctl, sizeof(*ctl));
		return e;
	}
	const int seq_only = (m->flags & MECH_SEQ_ONLY) != 0;
	const uint64_t vmask = verify_mask(o);
	size_t cap = align8(p->size);
	unsigned char *sbuf = xaligned(cap), *rbuf = xaligned(cap);
	if (!sbuf || !rbuf) {
		fail(&r, -ENOMEM, "out of memory");
		goto done;
	}
	bench_payload_init(sbuf, p->size);
	expected_body_sum(p->size); /* before the fork: the children inherit it */
	if (start(&r, m, p, state, ROLE_PING, ROLE_PONG, 1, pong_loop, &ep) != 0)
		goto done;

	const uint64_t warm = o->warmup, total = o->warmup + o->iterations;
	uint64_t t_begin = 0;
	for (uint64_t i = 1; i <= total; i++) {
		if (i == warm + 1)
			t_begin = bench_now_ns();
		if ((i & 0xffffu) == 0)
			bench_progress((double)i / (double)total);
		bench_payload_stamp(sbuf, p->size, i);
		maybe_corrupt(sbuf, p->size, i);
		uint64_t spins = 0;
		int n;
		uint64_t t0 = ticks();
		while ((n = m->try_send(ep, sbuf, p->size)) == -EAGAIN) {
			poll_pause(&r);
			if ((++spins & r.watch_mask) == 0 && watchdog(&r))
				goto done;
		}
		if (n >= 0)
			while ((n = m->try_recv(ep, rbuf, cap)) == -EAGAIN) {
				poll_pause(&r);
				if ((++spins & r.watch_mask) == 0 && watchdog(&r))
					goto done;
			}
		uint64_t t1 = ticks();
		if (n < 0) {
			fail(&r, n, "round trip %llu: %s", (unsigned long long)i, strerror(-n));
			goto done;
		}
		int c;
		if (seq_only) {
			uint64_t seq;
			memcpy(&seq, rbuf, 8);
			c = seq == i ? 0 : -1;
		} else {
			int full = (i & vmask) == 0 || i == total;
			c = (size_t)n != p->size ? -4 : bench_payload_check(rbuf, p->size, i, full);
			out->verified += full;
		}
		if (c) {
			fail(&r, -EBADMSG, "round trip %llu: %s", (unsigned long long)i,
			     c == -4 ? "wrong length" : check_what(c));
			goto done;
		}
		if (i > warm)
			hist_record(&out->hist, ticks_to_ns(t1 - t0));
	}
	out->seconds = (double)(bench_now_ns() - t_begin) / 1e9;
done:
	if (ep)
		m->close(ep);
	finish(&r);
	m->teardown(state);
	if (atomic_load(&ctl->abort)) {
		out->err = atomic_load(&ctl->abort);
		copy_msg(out->msg, sizeof(out->msg), ctl);
	}
	out->pid[0] = ctl->parent_pid;
	out->pid[1] = ctl->child_pid;
	out->cpu[0] = ctl->parent_cpu;
	out->cpu[1] = ctl->child_cpu;
	free(sbuf);
	free(rbuf);
	munmap(ctl, sizeof(*ctl));
	bench_progress_end();
	return out->err;
}

/* ---- streaming ------------------------------------------------------------- */

static int stream_batched; /* set before fork; read by the children */

#define PROD_SHIFT 48
#define SEQ_MASK ((1ull << PROD_SHIFT) - 1u)

static int producer_loop(struct run *r, const struct bench_mech *m, const struct bench_params *p,
			 void *ep)
{
	const unsigned B = stream_batched ? (p->batch ? p->batch : 1) : 1;
	const uint64_t tag = (uint64_t)p->producer << PROD_SHIFT;
	const unsigned smask = r->blocking ? 0 : 1023u;
	size_t stride = align8(p->size);
	unsigned char *bufs = xaligned(stride * B);
	struct bench_rec *recs = calloc(B, sizeof(*recs));
	if (!bufs || !recs) {
		fail(r, -ENOMEM, "out of memory");
		free(bufs);
		free(recs);
		return 1;
	}
	for (unsigned k = 0; k < B; k++) {
		bench_payload_init(bufs + k * stride, p->size);
		recs[k].data = bufs + k * stride;
		recs[k].len = (uint32_t)p->size;
	}
	uint64_t seq = 1, full = 0;
	int rc = 0;
#define STOPPED() atomic_load_explicit(&r->ctl->stop, memory_order_relaxed)
	if (!stream_batched) {
		for (;;) {
			bench_payload_stamp(bufs, p->size, tag | seq);
			maybe_corrupt(bufs, p->size, seq);
			int e;
			while ((e = m->try_send(ep, bufs, p->size)) == -EAGAIN) {
				if ((++full & smask) == 0 &&
				    (STOPPED() || ((full & r->watch_mask) == 0 && watchdog(r))))
					goto out;
			}
			if (e < 0) {
				if (!STOPPED()) { /* after the stop, the consumer may be gone */
					fail(r, e, "send: %s", strerror(-e));
					rc = 1;
				}
				goto out;
			}
			if ((++seq & smask) == 0 && STOPPED())
				goto out;
		}
	} else {
		for (;;) {
			for (unsigned k = 0; k < B; k++) {
				bench_payload_stamp(bufs + k * stride, p->size, tag | (seq + k));
				maybe_corrupt(bufs + k * stride, p->size, seq + k);
			}
			int n;
			while ((n = m->try_send_batch(ep, recs, B)) == -EAGAIN) {
				if ((++full & smask) == 0 &&
				    (STOPPED() || ((full & r->watch_mask) == 0 && watchdog(r))))
					goto out;
			}
			if (n <= 0) {
				if (!STOPPED()) {
					fail(r, n, "send batch: %s", strerror(-n));
					rc = 1;
				}
				goto out;
			}
			uint64_t before = seq;
			seq += (uint64_t)n;
			if (((before >> 10) != (seq >> 10) || r->blocking) && STOPPED())
				goto out;
		}
	}
#undef STOPPED
out:
	atomic_fetch_add(&r->ctl->produced, seq - 1);
	atomic_fetch_add(&r->ctl->full_events, full);
	free(bufs);
	free(recs);
	return rc;
}

int bench_stream(const struct bench_mech *m, const struct bench_params *p,
		 const struct bench_opts *o, int batched, struct stream_result *out)
{
	memset(out, 0, sizeof(*out));
	const unsigned np = p->producers ? p->producers : 1;
	out->producers = np;
	if (p->size < 8 || (batched && (!m->try_send_batch || !m->try_recv_batch)) ||
	    np > MAX_CHILDREN) {
		out->err = -EINVAL;
		snprintf(out->msg, sizeof(out->msg), "%s",
			 p->size < 8 ? "record size must be >= 8"
			 : np > MAX_CHILDREN ? "too many producers" : "no batch calls");
		return out->err;
	}
	struct ctl *ctl = ctl_new();
	if (!ctl)
		return out->err = -ENOMEM;
	struct run r;
	run_init(&r, ctl, o, p);
	void *state = NULL, *ep = NULL;
	uint64_t got = 0;
	int e = m->setup(p, &state);
	if (e < 0) {
		out->err = e;
		snprintf(out->msg, sizeof(out->msg), "%s setup: %s", m->name, strerror(-e));
		munmap(ctl, sizeof(*ctl));
		return e;
	}
	const unsigned B = batched ? (p->batch ? p->batch : 1) : 1;
	const uint64_t vmask = verify_mask(o);
	size_t stride = align8(p->size), cap = stride * B;
	unsigned char *buf = xaligned(cap);
	struct bench_rec *recs = calloc(B, sizeof(*recs));
	uint64_t expect[MAX_CHILDREN];
	for (unsigned k = 0; k < MAX_CHILDREN; k++)
		expect[k] = 1;
	if (!buf || !recs) {
		fail(&r, -ENOMEM, "out of memory");
		goto done;
	}
	stream_batched = batched;
	expected_body_sum(p->size);
	if (start(&r, m, p, state, ROLE_CONSUMER, ROLE_PRODUCER, np, producer_loop, &ep) != 0)
		goto done;

	const uint64_t warm_ns = (uint64_t)(o->warmup_seconds * 1e9);
	const uint64_t win_ns = (uint64_t)(o->seconds * 1e9);
	const unsigned tmask = p->blocking ? 15u : 255u;
	uint64_t empty = 0, polls = 0;
	uint64_t t_first = 0, t0 = 0, t1 = 0, c0 = 0, c1 = 0, empty0 = 0;
	int phase = 0; /* 0: before the first record, 1: warm-up, 2: window */
	for (;;) {
		int n;
		if (!batched) {
			n = m->try_recv(ep, buf, cap);
			if (n >= 0) {
				recs[0].data = buf;
				recs[0].len = (uint32_t)n;
				n = 1;
			}
		} else {
			n = m->try_recv_batch(ep, recs, B, buf, cap);
		}
		for (int k = 0; k < n; k++) {
			uint64_t word;
			memcpy(&word, recs[k].data, 8);
			unsigned idx = (unsigned)(word >> PROD_SHIFT);
			if (idx >= np || recs[k].len != p->size) {
				fail(&r, -EBADMSG, "record %llu: producer %u, length %u",
				     (unsigned long long)got + 1, idx, recs[k].len);
				goto done;
			}
			uint64_t want = ((uint64_t)idx << PROD_SHIFT) | expect[idx];
			int full = (got & vmask) == 0;
			int c = bench_payload_check(recs[k].data, p->size, want, full);
			if (c) {
				fail(&r, -EBADMSG, "producer %u record %llu: %s (got seq %llu)", idx,
				     (unsigned long long)expect[idx], check_what(c),
				     (unsigned long long)(word & SEQ_MASK));
				goto done;
			}
			out->verified += full;
			expect[idx]++;
			got++;
		}
		if (n == -EAGAIN) {
			empty++;
			if ((empty & r.watch_mask) == 0 && watchdog(&r))
				goto done;
		} else if (n < 0) {
			fail(&r, n, "receive: %s", strerror(-n));
			goto done;
		}
		if ((++polls & tmask) != 0 && phase != 0)
			continue;
		if (phase == 0) {
			if (got == 0)
				continue;
			t_first = bench_now_ns();
			phase = 1;
			continue;
		}
		uint64_t t = bench_now_ns();
		bench_progress((double)(t - t_first) / (double)(warm_ns + win_ns));
		if (phase == 1 && t - t_first >= warm_ns) {
			t0 = t;
			c0 = got;
			empty0 = empty;
			phase = 2;
		} else if (phase == 2 && t - t0 >= win_ns && got > c0) {
			/* A window must hold at least one record: on a loaded
			 * machine a tiny window can fall entirely in a time
			 * slice where the producer did not run, and a rate of
			 * zero measures the scheduler.  The watchdog ends a
			 * window whose producer is really stuck. */
			t1 = t;
			c1 = got;
			break;
		}
	}
	atomic_store(&ctl->stop, 1);
	out->records = c1 - c0;
	out->seconds = (double)(t1 - t0) / 1e9;
	out->rate = (double)out->records / out->seconds;
	out->mbps = out->rate * (double)p->size / 1e6;
	out->empty_polls = empty - empty0;
done:
	atomic_store(&ctl->stop, 1);
	out->total_records = got;
	out->total_bytes = got * p->size;
	if (ep)
		m->close(ep);
	finish(&r);
	out->full_events = atomic_load(&ctl->full_events);
	m->teardown(state);
	if (atomic_load(&ctl->abort)) {
		out->err = atomic_load(&ctl->abort);
		copy_msg(out->msg, sizeof(out->msg), ctl);
	}
	out->pid[0] = ctl->parent_pid;
	out->pid[1] = ctl->child_pid;
	out->cpu[0] = ctl->parent_cpu;
	out->cpu[1] = ctl->child_cpu;
	free(buf);
	free(recs);
	munmap(ctl, sizeof(*ctl));
	bench_progress_end();
	return out->err;
}

/* ---- reports ------------------------------------------------------------- */

void bench_sysinfo_get(struct bench_sysinfo *s)
{
	memset(s, 0, sizeof(*s));
	snprintf(s->cpu_model, sizeof(s->cpu_model), "unknown");
	FILE *f = fopen("/proc/cpuinfo", "r");
	if (f) {
		char line[512];
		while (fgets(line, sizeof(line), f)) {
			if (strncmp(line, "model name", 10) == 0) {
				char *c = strchr(line, ':');
				if (c) {
					c++;
					while (*c == ' ' || *c == '\t')
						c++;
					c[strcspn(c, "\n")] = 0;
					snprintf(s->cpu_model, sizeof(s->cpu_model), "%s", c);
				}
				break;
			}
		}
		fclose(f);
	}
	struct utsname u;
	if (uname(&u) == 0) {
		snprintf(s->kernel, sizeof(s->kernel), "%s %s %s", u.sysname, u.release, u.machine);
		snprintf(s->host, sizeof(s->host), "%s", u.nodename);
	}
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(s->date, sizeof(s->date), "%Y-%m-%dT%H:%M:%SZ", &tm);
	s->ncpu = (int)sysconf(_SC_NPROCESSORS_ONLN);
}

const char *bench_fmt_ns(char *buf, size_t cap, uint64_t ns)
{
	if (ns < 10000)
		snprintf(buf, cap, "%llu ns", (unsigned long long)ns);
	else if (ns < 10000000)
		snprintf(buf, cap, "%.1f us", (double)ns / 1e3);
	else
		snprintf(buf, cap, "%.1f ms", (double)ns / 1e6);
	return buf;
}

/* ---- disturbance ---------------------------------------------------------- */

void bench_cpu_snap(struct bench_cpu_snap *s)
{
	memset(s, 0, sizeof(*s));
	double hz = (double)sysconf(_SC_CLK_TCK);
	FILE *f = fopen("/proc/stat", "r");
	if (f) {
		unsigned long long v[8] = { 0 };
		if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2],
			   &v[3], &v[4], &v[5], &v[6], &v[7]) == 8) {
			s->busy_s = (double)(v[0] + v[1] + v[2] + v[5] + v[6]) / hz;
			s->steal_s = (double)v[7] / hz;
		}
		fclose(f);
	}
	struct rusage a, b;
	getrusage(RUSAGE_SELF, &a);
	getrusage(RUSAGE_CHILDREN, &b);
	s->own_s = (double)(a.ru_utime.tv_sec + a.ru_stime.tv_sec + b.ru_utime.tv_sec +
			    b.ru_stime.tv_sec) +
		   (double)(a.ru_utime.tv_usec + a.ru_stime.tv_usec + b.ru_utime.tv_usec +
			    b.ru_stime.tv_usec) / 1e6;
	s->wall_s = (double)bench_now_ns() / 1e9;
}

void bench_cpu_disturbance(const struct bench_cpu_snap *a, const struct bench_cpu_snap *b,
			   double *foreign_pct, double *steal_pct)
{
	double cap = (b->wall_s - a->wall_s) * (double)sysconf(_SC_NPROCESSORS_ONLN);
	double foreign = (b->busy_s - a->busy_s) - (b->own_s - a->own_s);
	if (foreign < 0)
		foreign = 0;
	*foreign_pct = cap > 0 ? 100.0 * foreign / cap : 0;
	*steal_pct = cap > 0 ? 100.0 * (b->steal_s - a->steal_s) / cap : 0;
}
