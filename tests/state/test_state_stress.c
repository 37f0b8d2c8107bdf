/* SPDX-License-Identifier: MIT */
/*
 * test_state_stress.c - the triple buffer under stress: a writer publishing
 * as fast as it can and a reader reading, peeking and waiting as fast as it
 * can, as two threads on ONE mapping (so ThreadSanitizer sees both sides at
 * the same addresses) and as two processes.  Every image carries its
 * generation and a checksum over all of it: the reader must never see a
 * torn image, generations must only increase, `fresh` must be set exactly
 * when the generation changes, and after the writer stops the reader must
 * get the last image.  Each case runs about a second (ten with TAKT_LONG=1).
 */
#include "ts_common.h"

#include <criterion/logging.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

TS_SUITE(stress, .timeout = 0);

static uint64_t duration_ns(void)
{
	return ts_env_u64("TS_STRESS_MS", 1000) * 1000000ull * ts_long();
}

/* What both sides share (in ordinary memory for threads, in a shared
 * anonymous mapping for processes). */
struct run {
	uint32_t size;
	uint64_t duration;
	_Atomic uint64_t final_gen; /* set by the writer when it is done */
	_Atomic int writer_done;
	_Atomic int reader_failed;
	/* writer's outcome */
	uint64_t published;
	int writer_err;
	/* reader's outcome */
	uint64_t reads, fresh_reads, peeks, waits, last_gen;
	char why[256];
};

/* ---- the two sides ---------------------------------------------------------- */

static int writer_loop(takt_state_writer *w, struct run *run)
{
	uint8_t *local = malloc(run->size);
	if (!local)
		return -ENOMEM;
	uint64_t end = ts_now_ns() + run->duration;
	uint64_t gen = 0;
	int rc = 0;
	while (rc == 0 && !atomic_load_explicit(&run->reader_failed, memory_order_relaxed)) {
		gen++;
		if (gen & 1) {
			/* zero-copy: build the image in place */
			ts_image_make(takt_state_buffer(w), run->size, gen);
			rc = takt_state_publish(w, run->size);
		} else {
			ts_image_make(local, run->size, gen);
			rc = takt_state_write(w, local, run->size);
		}
		if ((gen & 255) == 0 && ts_now_ns() >= end)
			break;
	}
	free(local);
	run->published = rc == 0 ? gen : gen - 1;
	run->writer_err = rc;
	atomic_store_explicit(&run->final_gen, run->published, memory_order_relaxed);
	atomic_store_explicit(&run->writer_done, 1, memory_order_release);
	return rc;
}

#define FAIL(...)                                                            \
	do {                                                                 \
		snprintf(run->why, sizeof run->why, __VA_ARGS__);            \
		goto fail;                                                   \
	} while (0)

/* Check one image the reader got; returns false (with run->why) on a violation. */
static bool check_one(struct run *run, int rc, const void *img, const struct takt_state_info *info)
{
	if (rc == -EAGAIN && run->last_gen == 0)
		return true; /* nothing published yet */
	if (rc < 0) {
		snprintf(run->why, sizeof run->why, "read/peek = %d (%s) after generation %" PRIu64, rc,
			 takt_strerror(rc), run->last_gen);
		return false;
	}
	if ((uint32_t)rc != run->size || info->len != run->size) {
		snprintf(run->why, sizeof run->why, "length %d/%u, expected %u", rc, info->len, run->size);
		return false;
	}
	const char *why = ts_image_check(img, run->size, info->generation);
	if (why) {
		snprintf(run->why, sizeof run->why, "generation %" PRIu64 " (image says %" PRIu64 "): %s",
			 info->generation, ts_image_gen(img), why);
		return false;
	}
	if (info->generation < run->last_gen) {
		snprintf(run->why, sizeof run->why, "generation went back from %" PRIu64 " to %" PRIu64,
			 run->last_gen, info->generation);
		return false;
	}
	bool newer = info->generation != run->last_gen;
	if (info->fresh != (uint32_t)newer) {
		snprintf(run->why, sizeof run->why, "fresh = %u for generation %" PRIu64 " after %" PRIu64,
			 info->fresh, info->generation, run->last_gen);
		return false;
	}
	uint64_t now = takt_now_ns();
	if (info->written_ns == 0 || info->written_ns > now) {
		snprintf(run->why, sizeof run->why, "written_ns %" PRIu64 " not in (0, now %" PRIu64 "]",
			 info->written_ns, now);
		return false;
	}
	run->fresh_reads += newer;
	run->last_gen = info->generation;
	return true;
}

static void reader_loop(takt_state_reader *r, struct run *run)
{
	uint8_t *buf = malloc(run->size);
	if (!buf) {
		snprintf(run->why, sizeof run->why, "out of memory");
		atomic_store(&run->reader_failed, 1);
		return;
	}
	for (uint64_t i = 0;; i++) {
		int done = atomic_load_explicit(&run->writer_done, memory_order_acquire);
		struct takt_state_info info;
		int rc;
		if (i % 3 == 2) {
			const void *img = NULL;
			rc = takt_state_peek(r, &img, &info);
			run->peeks++;
			if (!check_one(run, rc, img, &info))
				goto fail;
		} else {
			rc = takt_state_read(r, buf, run->size, &info);
			run->reads++;
			if (!check_one(run, rc, buf, &info))
				goto fail;
		}
		if (done)
			break;
		if (i % 64 == 63) {
			/* the blocking path too: either something newer, or the deadline */
			int wrc = takt_state_wait_newer(r, takt_deadline_in(50000000));
			if (wrc != 0 && wrc != -ETIMEDOUT)
				FAIL("wait_newer = %d (%s)", wrc, takt_strerror(wrc));
			run->waits++;
		}
	}
	/* the writer is done: the newest image is the last one published */
	{
		uint64_t final = atomic_load_explicit(&run->final_gen, memory_order_relaxed);
		struct takt_state_info info;
		int rc = takt_state_read(r, buf, run->size, &info);
		if (final == 0)
			FAIL("the writer published nothing");
		if (!check_one(run, rc, buf, &info))
			goto fail;
		if (info.generation != final)
			FAIL("after the writer stopped the reader got generation %" PRIu64
			     ", the newest is %" PRIu64, info.generation, final);
	}
	free(buf);
	return;
fail:
	atomic_store(&run->reader_failed, 1);
	free(buf);
}

/* ---- threads on one mapping ------------------------------------------------- */

struct thread_arg {
	struct run *run;
	takt_state_writer *w;
	takt_state_reader *r;
};

static void *writer_thread(void *p)
{
	struct thread_arg *a = p;
	writer_loop(a->w, a->run);
	return NULL;
}

static void *reader_thread(void *p)
{
	struct thread_arg *a = p;
	reader_loop(a->r, a->run);
	return NULL;
}

static void thread_stress(const char *tag, uint32_t size)
{
	const char *name = ts_name(tag);
	ts_create(name, size);
	takt_channel *ch = NULL;
	cr_assert_eq(takt_channel_open(name, 0, &ch), 0);
	struct thread_arg a = {0};
	struct run *run = calloc(1, sizeof *run);
	cr_assert_not_null(run);
	run->size = size;
	run->duration = duration_ns();
	a.run = run;
	cr_assert_eq(takt_state_writer_attach(ch, &a.w), 0);
	cr_assert_eq(takt_state_reader_attach(ch, &a.r), 0);
	pthread_t tw, tr;
	cr_assert_eq(pthread_create(&tr, NULL, reader_thread, &a), 0);
	cr_assert_eq(pthread_create(&tw, NULL, writer_thread, &a), 0);
	pthread_join(tw, NULL);
	pthread_join(tr, NULL);
	cr_log_info("%s: %u B: %" PRIu64 " published, %" PRIu64 " reads, %" PRIu64 " peeks, %" PRIu64
		    " new images seen, %" PRIu64 " waits", tag, size, run->published, run->reads,
		    run->peeks, run->fresh_reads, run->waits);
	cr_assert_eq(run->writer_err, 0, "writer: %d (%s)", run->writer_err,
		     takt_strerror(run->writer_err));
	cr_assert(!atomic_load(&run->reader_failed), "reader: %s", run->why);
	cr_assert_geq(run->fresh_reads, 2u, "the reader saw too few images to mean anything");
	struct takt_state_stats s;
	cr_assert_eq(takt_state_stats_get(ch, &s), 0);
	cr_assert_eq(s.writes, run->published, "writes %" PRIu64 " != publishes %" PRIu64, s.writes,
		     run->published);
	cr_assert_eq(s.reads, run->fresh_reads);
	takt_state_writer_close(a.w);
	takt_state_reader_close(a.r);
	cr_assert_eq(takt_channel_close(ch), 0);
	free(run);
}

Test(stress, threads_256)
{
	thread_stress("thr-256", 256);
}

Test(stress, threads_64k)
{
	thread_stress("thr-64k", 65536);
}

/* ---- processes ------------------------------------------------------------------ */

static void process_stress(const char *tag, uint32_t size)
{
	const char *name = ts_name(tag);
	ts_create(name, size);
	struct run *run = ts_shared(sizeof *run);
	run->size = size;
	run->duration = duration_ns();
	pid_t pid = ts_fork();
	if (pid == 0) {
		takt_state_writer *w = NULL;
		int rc = takt_state_writer_open(name, &w);
		if (rc != 0) {
			run->writer_err = rc;
			atomic_store(&run->writer_done, 1);
			_exit(2);
		}
		rc = writer_loop(w, run);
		takt_state_writer_close(w);
		_exit(rc == 0 ? 0 : 3);
	}
	takt_state_reader *r = NULL;
	int rc = takt_state_reader_open(name, &r);
	if (rc != 0)
		ts_kill_wait(pid);
	cr_assert_eq(rc, 0, "reader_open = %d", rc);
	reader_loop(r, run);
	if (atomic_load(&run->reader_failed))
		ts_kill_wait(pid);
	cr_assert(!atomic_load(&run->reader_failed), "reader: %s", run->why);
	int st = ts_wait(pid);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "writer child: %s, err %d", ts_status_str(st),
		  run->writer_err);
	cr_log_info("%s: %u B: %" PRIu64 " published, %" PRIu64 " reads, %" PRIu64 " peeks, %" PRIu64
		    " new images seen", tag, size, run->published, run->reads, run->peeks,
		    run->fresh_reads);
	cr_assert_geq(run->fresh_reads, 2u, "the reader saw too few images to mean anything");
	struct takt_state_stats s = ts_stats(name);
	cr_assert_eq(s.writes, run->published);
	cr_assert_eq(s.reads, run->fresh_reads);
	takt_state_reader_close(r);
	ts_shared_free(run, sizeof *run);
}

Test(stress, processes_256)
{
	process_stress("proc-256", 256);
}

Test(stress, processes_64k)
{
	process_stress("proc-64k", 65536);
}

/* Several processes in turn on one channel: readers and writers come and go
 * (closing cleanly) while the other side keeps running. */
Test(stress, processes_endpoints_come_and_go)
{
	const char *name = ts_name("comego");
	const uint32_t size = 4096;
	ts_create(name, size);
	struct run *run = ts_shared(sizeof *run);
	run->size = size;
	run->duration = duration_ns() / 4;
	uint64_t last = 0;
	for (int round = 0; round < 4; round++) {
		atomic_store(&run->writer_done, 0);
		pid_t pid = ts_fork();
		if (pid == 0) {
			takt_state_writer *w = NULL;
			if (takt_state_writer_open(name, &w) != 0)
				_exit(2);
			/* continue the generations of the previous writer */
			uint8_t *img = malloc(size);
			takt_channel *ch = NULL;
			struct takt_state_stats s;
			if (!img || takt_channel_open(name, TAKT_OPEN_RDONLY, &ch) != 0 ||
			    takt_state_stats_get(ch, &s) != 0)
				_exit(4);
			uint64_t gen = s.writes;
			uint64_t end = ts_now_ns() + run->duration;
			int rc = 0;
			while (rc == 0 && ts_now_ns() < end) {
				ts_image_make(img, size, ++gen);
				rc = takt_state_write(w, img, size);
			}
			atomic_store(&run->final_gen, gen);
			atomic_store_explicit(&run->writer_done, 1, memory_order_release);
			takt_channel_close(ch);
			takt_state_writer_close(w);
			free(img);
			_exit(rc == 0 ? 0 : 3);
		}
		takt_state_reader *r = ts_reader(name);
		run->last_gen = last;
		run->fresh_reads = 0;
		/* a new reader's first image is new to it */
		uint8_t *buf = malloc(size);
		struct takt_state_info info;
		int rc;
		while ((rc = takt_state_read(r, buf, size, &info)) == -EAGAIN)
			ts_sleep_ns(100000);
		cr_assert_eq(rc, (int)size, "round %d: first read = %d", round, rc);
		cr_assert_eq(info.fresh, 1u);
		cr_assert_null(ts_image_check(buf, size, info.generation));
		cr_assert_geq(info.generation, last, "round %d: generation went back from %" PRIu64
			      " to %" PRIu64, round, last, info.generation);
		run->last_gen = info.generation;
		free(buf);
		reader_loop(r, run);
		cr_assert(!atomic_load(&run->reader_failed), "round %d: reader: %s", round, run->why);
		int st = ts_wait(pid);
		cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "writer child: %s", ts_status_str(st));
		last = run->last_gen;
		takt_state_reader_close(r);
	}
	ts_shared_free(run, sizeof *run);
}
