/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include "cyclic.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <takt.h>

#include "harness.h"

struct cyc_ctl {
	atomic_uint arrived;
	atomic_int abort;
	atomic_ullong done;       /* cycles the task completed */
	uint64_t t0;              /* intended start of cycle 0 */
	uint64_t task_misses, send_full;
	char msg[256];
	struct hist task;
};

/* record: [0,8) cycle number from 1; [8,16) intended start; [16,size) pattern */
static void cyc_fail(struct cyc_ctl *c, int err, const char *what)
{
	int z = 0;
	if (atomic_compare_exchange_strong(&c->abort, &z, err ? err : -EIO))
		snprintf(c->msg, sizeof(c->msg), "%s", what);
}

static int prepare(const struct cyc_opts *o, int cpu, char *rep, size_t cap)
{
	struct takt_cyclic_config cfg = { 0 };
	if (o->mlock)
		cfg.flags |= TAKT_CYCLIC_MLOCK;
	if (o->fifo_prio > 0) {
		cfg.flags |= TAKT_CYCLIC_FIFO;
		cfg.priority = o->fifo_prio;
	}
	if (o->pin) {
		cfg.flags |= TAKT_CYCLIC_AFFINITY;
		cfg.cpu = cpu;
	}
	struct takt_cyclic_report r;
	int rc = takt_cyclic_prepare(&cfg, &r);
	if (rep)
		snprintf(rep, cap, "mlockall: %s; SCHED_FIFO: %s; affinity: %s",
			 r.mlock == 1 ? "not asked" : r.mlock == 0 ? "done" : strerror(-r.mlock),
			 r.fifo == 1 ? "not asked" : r.fifo == 0 ? "done" : strerror(-r.fifo),
			 r.affinity == 1 ? "not asked" : r.affinity == 0 ? "done"
								 : strerror(-r.affinity));
	return rc;
}

static int wait_barrier(struct cyc_ctl *c)
{
	atomic_fetch_add(&c->arrived, 1);
	uint64_t until = bench_now_ns() + 10000000000ull;
	while (atomic_load(&c->arrived) < 2) {
		if (atomic_load(&c->abort) || bench_now_ns() > until)
			return -1;
		usleep(100);
	}
	return 0;
}

static void task_main(enum cyc_variant v, const struct cyc_opts *o, const char *name,
		      struct cyc_ctl *c, pid_t parent)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(1);
	prctl(PR_SET_NAME, "takt-cyclic");
	prepare(o, o->cpu[1], NULL, 0);
	takt_producer *p = NULL;
	takt_state_writer *w = NULL;
	int e = 0;
	if (v == CYC_QUEUE)
		e = takt_producer_open(name, &p);
	else if (v == CYC_STATE)
		e = takt_state_writer_open(name, &w);
	if (e < 0) {
		cyc_fail(c, e, "task: cannot open the channel");
		_exit(1);
	}
	unsigned char *rec = calloc(1, o->size);
	if (!rec || wait_barrier(c) != 0)
		_exit(1);
	bench_payload_init(rec, o->size);
	/* The parent sets t0 before the barrier. */
	const uint64_t total = o->warmup_cycles + o->cycles;
	for (uint64_t k = 0; k < total; k++) {
		uint64_t intended = c->t0 + k * o->period_ns;
		struct timespec ts = { (time_t)(intended / 1000000000ull),
				       (long)(intended % 1000000000ull) };
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
			;
		uint64_t now = takt_now_ns();
		uint64_t late = now > intended ? now - intended : 0;
		if (k >= o->warmup_cycles) {
			hist_record(&c->task, late);
			if (late > o->deadline_ns)
				c->task_misses++;
		}
		uint64_t seq = k + 1;
		memcpy(rec, &seq, 8);
		memcpy(rec + 8, &intended, 8);
		if (v == CYC_QUEUE) {
			int rc = takt_try_send(p, 1, rec, o->size);
			if (rc == -EAGAIN)
				c->send_full++;
			else if (rc < 0) {
				cyc_fail(c, rc, "task: takt_try_send failed");
				break;
			}
		} else if (v == CYC_STATE) {
			int rc = takt_state_write(w, rec, o->size);
			if (rc < 0) {
				cyc_fail(c, rc, "task: takt_state_write failed");
				break;
			}
		}
		atomic_store_explicit(&c->done, seq, memory_order_relaxed);
		if (atomic_load_explicit(&c->abort, memory_order_relaxed))
			break;
	}
	if (p)
		takt_producer_close(p);
	if (w)
		takt_state_writer_close(w);
	free(rec);
	_exit(atomic_load(&c->abort) ? 1 : 0);
}

int bench_cyclic(enum cyc_variant v, const struct cyc_opts *o, unsigned id,
		 struct cyc_result *out)
{
	memset(out, 0, sizeof(*out));
	hist_init(&out->task);
	hist_init(&out->lat);
	if (o->size < 16 || o->period_ns == 0 || o->cycles == 0) {
		out->err = -EINVAL;
		snprintf(out->msg, sizeof(out->msg), "record size must be >= 16, period and cycles > 0");
		return out->err;
	}
	struct cyc_ctl *c = mmap(NULL, sizeof(*c), PROT_READ | PROT_WRITE,
				 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (c == MAP_FAILED)
		return out->err = -errno;
	memset(c, 0, sizeof(*c));
	hist_init(&c->task);
	char name[TAKT_NAME_MAX + 1];
	snprintf(name, sizeof(name), "takt-bench.%ld.%u.cyc", (long)getpid(), id);
	int e = 0;
	if (v == CYC_QUEUE) {
		uint64_t cap = 65536;
		while (cap < 4 * ((uint64_t)o->size + 16))
			cap *= 2;
		struct takt_queue_config qc = { .capacity = cap, .lanes = 1,
						.max_record = (uint32_t)o->size, .mode = 0600 };
		takt_unlink(name);
		e = takt_queue_create(name, &qc);
	} else if (v == CYC_STATE) {
		struct takt_state_config sc = { .image_size = (uint32_t)o->size, .mode = 0600 };
		takt_unlink(name);
		e = takt_state_create(name, &sc);
	}
	if (e < 0) {
		out->err = e;
		snprintf(out->msg, sizeof(out->msg), "cannot create the channel: %s", takt_strerror(e));
		munmap(c, sizeof(*c));
		return e;
	}
	takt_consumer *qc = NULL;
	takt_state_reader *sr = NULL;
	if (v == CYC_QUEUE)
		e = takt_consumer_open(name, &qc);
	else if (v == CYC_STATE)
		e = takt_state_reader_open(name, &sr);
	if (e < 0) {
		out->err = e;
		snprintf(out->msg, sizeof(out->msg), "cannot open the channel: %s", takt_strerror(e));
		if (v != CYC_NONE)
			takt_unlink(name);
		munmap(c, sizeof(*c));
		return e;
	}
	if (qc)
		takt_consumer_set_spin_ns(qc, o->spin_ns);
	const uint64_t total = o->warmup_cycles + o->cycles;
	/* start 20 ms from now, on a period boundary */
	uint64_t now = takt_now_ns() + 20000000ull;
	c->t0 = now - now % o->period_ns + o->period_ns;
	int status = 0, reaped = 0;
	unsigned char *buf = NULL;
	fflush(NULL);
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid < 0) {
		out->err = -errno;
		snprintf(out->msg, sizeof(out->msg), "fork: %s", strerror(errno));
		reaped = 1;
		goto cleanup;
	}
	if (pid == 0)
		task_main(v, o, name, c, parent);
	prepare(o, o->cpu[0], out->prep, sizeof(out->prep));
	if (wait_barrier(c) != 0) {
		cyc_fail(c, -ETIMEDOUT, "the task did not start");
		goto reap;
	}
	uint64_t expected = 1, last = 0;
	const uint64_t hard = takt_now_ns() + (uint64_t)(o->timeout_seconds * 1e9) +
			      total * o->period_ns;
	buf = malloc(o->size + 8);
	if (!buf) {
		cyc_fail(c, -ENOMEM, "out of memory");
		goto reap;
	}
	while (!atomic_load(&c->abort)) {
		uint64_t t = takt_now_ns();
		bench_progress((double)atomic_load_explicit(&c->done, memory_order_relaxed) /
			       (double)total);
		if (t > hard) {
			cyc_fail(c, -ETIMEDOUT, "consumer: timeout");
			break;
		}
		if (v == CYC_NONE) {
			pid_t w = waitpid(pid, &status, WNOHANG);
			if (w == pid) {
				reaped = 1;
				break;
			}
			usleep(10000);
			continue;
		}
		uint64_t dl = takt_deadline_in(200000000ull);
		int n;
		struct takt_state_info info;
		if (v == CYC_QUEUE) {
			n = takt_recv(qc, buf, o->size + 8, NULL, dl);
		} else {
			n = takt_state_wait_newer(sr, dl);
			if (n == 0)
				n = takt_state_read(sr, buf, o->size + 8, &info);
		}
		uint64_t at = takt_now_ns();
		if (n == -ETIMEDOUT) {
			pid_t w = waitpid(pid, &status, WNOHANG);
			if (w == pid) {
				reaped = 1;
				cyc_fail(c, -EPIPE, "the task exited before its last record arrived");
				break;
			}
			continue;
		}
		if (n < 0) {
			cyc_fail(c, n, "consumer: receive failed");
			break;
		}
		uint64_t seq, intended;
		memcpy(&seq, buf, 8);
		memcpy(&intended, buf + 8, 8);
		if ((size_t)n != o->size || intended != c->t0 + (seq - 1) * o->period_ns ||
		    (v == CYC_QUEUE && seq != expected) || (v == CYC_STATE && seq <= last)) {
			cyc_fail(c, -EBADMSG, "consumer: wrong record (sequence or start time)");
			break;
		}
		if (v == CYC_STATE && seq > last + 1)
			out->skipped += seq - last - 1;
		last = seq;
		expected = seq + 1;
		out->received++;
		if (seq > o->warmup_cycles) {
			uint64_t lat = at > intended ? at - intended : 0;
			hist_record(&out->lat, lat);
			if (lat > o->deadline_ns)
				out->misses++;
		}
		if (seq == total)
			break;
	}
reap:
	free(buf);
	if (!reaped) {
		uint64_t until = bench_now_ns() + 5000000000ull;
		for (;;) {
			pid_t w = waitpid(pid, &status, WNOHANG);
			if (w == pid || (w < 0 && errno != EINTR))
				break;
			if (bench_now_ns() > until || atomic_load(&c->abort)) {
				kill(pid, SIGKILL);
				waitpid(pid, &status, 0);
				break;
			}
			usleep(1000);
		}
	}
	if (!atomic_load(&c->abort) && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
		cyc_fail(c, -EPIPE, "the task failed");
	if (c->send_full && !atomic_load(&c->abort))
		cyc_fail(c, -ENOBUFS, "the task found the ring full");
cleanup:
	if (qc)
		takt_consumer_close(qc);
	if (sr)
		takt_state_reader_close(sr);
	if (v != CYC_NONE)
		takt_unlink(name);
	hist_merge(&out->task, &c->task);
	out->task_misses = c->task_misses;
	out->send_full = c->send_full;
	if (atomic_load(&c->abort) && !out->err) {
		out->err = atomic_load(&c->abort);
		snprintf(out->msg, sizeof(out->msg), "%s", c->msg);
	}
	munmap(c, sizeof(*c));
	bench_progress_end();
	return out->err;
}
