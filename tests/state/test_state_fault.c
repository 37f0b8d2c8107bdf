/* SPDX-License-Identifier: MIT */
/*
 * test_state_fault.c - state channels when an endpoint is SIGKILLed.
 *
 * Linked against takt_state_fault (the library with TAKT_FAULT_POINTS), so
 * a writer child with TAKT_CRASH_AT=k TAKT_CRASH_AFTER=n dies at crash
 * point k of its (n+1)-th publish:
 *   20  slot header stored, exchange not yet done  -> the previous image stays newest
 *   21  exchange done, `writes`/`writer_slot` not  -> the new image is newest
 *   22  everything stored, doorbell not rung       -> the new image is newest
 * The child stores in shared memory the last generation whose publish
 * returned 0 ("confirmed", c).  After the death a reader must see a
 * complete image of generation c or c + 1 (exactly c at 20, c + 1 at 21 and
 * 22); a replacement writer must open (the dead one's slot is free) and its
 * images must reach the reader with generations still increasing.
 *
 * The same with kills at random times, and with the reader killed at
 * random times and replaced while the writer keeps writing.
 */
#include "ts_common.h"

#include <criterion/logging.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

TS_SUITE(fault, .timeout = 0);

#define SIZE 4096u

struct shared {
	_Atomic uint64_t confirmed;     /* last generation whose publish returned 0 */
	_Atomic uint64_t final_gen;     /* writer done: its last generation */
	_Atomic int writer_done;
	_Atomic int writer_err;
	_Atomic uint64_t max_publish_ns;
	_Atomic uint64_t publishes;
	_Atomic int reader_state;       /* reader child: 1 opened, 2 read the newest */
	_Atomic uint64_t reader_gen;
};

/* Writer child exit codes */
enum { W_OPEN = 2, W_PUBLISH = 3, W_NO_CRASH = 4, W_TIMEOUT = 5, W_STATS = 6 };

static const char *writer_exit_str(int code)
{
	switch (code) {
	case W_OPEN: return "writer open failed";
	case W_PUBLISH: return "a publish failed";
	case W_NO_CRASH: return "the crash point was never hit (is the library built with TAKT_FAULT_POINTS?)";
	case W_TIMEOUT: return "the writer was never killed";
	case W_STATS: return "stats failed";
	default: return "?";
	}
}

/* The generation the next publish of a newly opened writer gets is
 * `writes` + 1 (generation = publish count). */
static uint64_t writes_now(const char *name)
{
	takt_channel *ch = NULL;
	struct takt_state_stats s;
	if (takt_channel_open(name, TAKT_OPEN_RDONLY, &ch) != 0)
		return UINT64_MAX;
	int rc = takt_state_stats_get(ch, &s);
	takt_channel_close(ch);
	return rc == 0 ? s.writes : UINT64_MAX;
}

/*
 * In a child: open the writer and publish images until killed.  With
 * crash_at, give up after crash_after + 10 publishes; with only a time
 * limit, after limit_ns.  Alternates zero-copy publish and write.
 */
static void __attribute__((noreturn))
writer_child(const char *name, struct shared *sh, int crash_at, uint64_t crash_after,
	     uint64_t limit_ns)
{
	if (crash_at) {
		char v[32];
		snprintf(v, sizeof v, "%d", crash_at);
		setenv("TAKT_CRASH_AT", v, 1);
		snprintf(v, sizeof v, "%" PRIu64, crash_after);
		setenv("TAKT_CRASH_AFTER", v, 1);
	}
	takt_state_writer *w = NULL;
	if (takt_state_writer_open(name, &w) != 0)
		_exit(W_OPEN);
	uint64_t gen = writes_now(name);
	if (gen == UINT64_MAX)
		_exit(W_STATS);
	static uint8_t local[SIZE];
	uint64_t end = ts_now_ns() + limit_ns;
	for (uint64_t i = 0;; i++) {
		gen++;
		int rc;
		uint64_t t0 = ts_now_ns();
		if (i & 1) {
			ts_image_make(takt_state_buffer(w), SIZE, gen);
			rc = takt_state_publish(w, SIZE);
		} else {
			ts_image_make(local, SIZE, gen);
			rc = takt_state_write(w, local, SIZE);
		}
		uint64_t dt = ts_now_ns() - t0;
		if (rc != 0) {
			atomic_store(&sh->writer_err, rc);
			_exit(W_PUBLISH);
		}
		atomic_store(&sh->confirmed, gen);
		atomic_fetch_add(&sh->publishes, 1);
		if (dt > atomic_load(&sh->max_publish_ns))
			atomic_store(&sh->max_publish_ns, dt);
		if (crash_at && i > crash_after + 10)
			_exit(W_NO_CRASH);
		if ((i & 63) == 0 && ts_now_ns() > end) {
			if (crash_at || limit_ns > 20000000000ull)
				_exit(W_TIMEOUT);
			atomic_store(&sh->final_gen, gen);
			atomic_store(&sh->writer_done, 1);
			takt_state_writer_close(w);
			_exit(0);
		}
	}
}

/* Read once; check the image; return its generation (0 for -EAGAIN when allowed). */
static uint64_t read_checked(takt_state_reader *r, uint64_t last_seen, bool eagain_ok,
			     struct takt_state_info *out, const char *ctx)
{
	static uint8_t buf[SIZE];
	struct takt_state_info info;
	memset(&info, 0, sizeof info);
	int rc = takt_state_read(r, buf, sizeof buf, &info);
	if (rc == -EAGAIN && eagain_ok) {
		memset(out, 0, sizeof *out);
		return 0;
	}
	cr_assert_eq(rc, (int)SIZE, "%s: read = %d (%s)", ctx, rc, rc < 0 ? takt_strerror(rc) : "len");
	const char *why = ts_image_check(buf, SIZE, info.generation);
	cr_assert_null(why, "%s: generation %" PRIu64 ": %s", ctx, info.generation, why);
	cr_assert_geq(info.generation, last_seen, "%s: generation went back from %" PRIu64 " to %" PRIu64,
		      ctx, last_seen, info.generation);
	*out = info;
	return info.generation;
}

/*
 * After a writer died: a replacement writer opens in this process and
 * publishes; the reader gets each of its images, fresh, with generations
 * above everything seen before.  Returns the last generation seen.
 */
static uint64_t replacement_writer(const char *name, takt_state_reader *r, uint64_t last_seen,
				   const char *ctx)
{
	takt_state_writer *w = NULL;
	int rc = takt_state_writer_open(name, &w);
	cr_assert_eq(rc, 0, "%s: replacement writer_open = %d (%s): the dead writer's slot is not free",
		     ctx, rc, takt_strerror(rc));
	uint64_t gen = writes_now(name);
	static uint8_t img[SIZE];
	for (int i = 0; i < 3; i++) {
		ts_image_make(img, SIZE, ++gen);
		rc = takt_state_write(w, img, SIZE);
		cr_assert_eq(rc, 0, "%s: replacement write = %d (%s)", ctx, rc, takt_strerror(rc));
		struct takt_state_info info;
		uint64_t g = read_checked(r, last_seen, false, &info, ctx);
		cr_assert_gt(g, last_seen, "%s: after the replacement writer's publish #%d the reader got "
			     "generation %" PRIu64 " again (fresh = %u): generations must keep increasing "
			     "across a writer's death", ctx, i + 1, g, info.fresh);
		cr_assert_eq(info.fresh, 1u, "%s: replacement image not fresh", ctx);
		cr_assert_eq(g, gen, "%s: reader got %" PRIu64 ", replacement published %" PRIu64, ctx, g, gen);
		last_seen = g;
	}
	takt_state_writer_close(w);
	return last_seen;
}

/* ---- crash points ------------------------------------------------------------- */

static void crash_point(int k)
{
	char tag[32];
	snprintf(tag, sizeof tag, "cp%d", k);
	const char *name = ts_name(tag);
	ts_create(name, SIZE);
	uint64_t seed = ts_seed();
	takt_state_reader *r = ts_reader(name);
	struct shared *sh = ts_shared(sizeof *sh);
	uint64_t last_seen = 0;
	unsigned iters = 16 * ts_long();
	for (unsigned it = 0; it < iters; it++) {
		char ctx[96];
		uint64_t n = it == 0 ? 0 : ts_rand(&seed) % 300;
		snprintf(ctx, sizeof ctx, "point %d, iteration %u, TAKT_CRASH_AFTER=%" PRIu64, k, it, n);
		uint64_t before = writes_now(name);
		atomic_store(&sh->confirmed, before);
		pid_t pid = ts_fork();
		if (pid == 0)
			writer_child(name, sh, k, n, 30000000000ull);
		/* read while it writes */
		int st = 0;
		struct takt_state_info info;
		while (waitpid(pid, &st, WNOHANG) == 0) {
			last_seen = read_checked(r, last_seen, last_seen == 0, &info, ctx);
			ts_sleep_ns(20000);
		}
		cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "%s: writer child: %s: %s", ctx,
			  ts_status_str(st), WIFEXITED(st) ? writer_exit_str(WEXITSTATUS(st)) : "");
		uint64_t c = atomic_load(&sh->confirmed);
		cr_assert_eq(c, before + n, "%s: the writer confirmed %" PRIu64 " publishes, expected %" PRIu64,
			     ctx, c - before, n);
		uint64_t expect = k == 20 ? c : c + 1;
		uint64_t g = read_checked(r, last_seen, expect == 0, &info, ctx);
		cr_assert(g == c || g == c + 1, "%s: reader got generation %" PRIu64 ", confirmed %" PRIu64,
			  ctx, g, c);
		cr_assert_eq(g, expect, "%s: reader got generation %" PRIu64 ", expected %" PRIu64, ctx, g,
			     expect);
		if (g)
			last_seen = g;
		last_seen = replacement_writer(name, r, last_seen, ctx);
	}
	takt_state_reader_close(r);
	ts_shared_free(sh, sizeof *sh);
}

Test(fault, writer_killed_at_point_20)
{
	crash_point(20);
}

Test(fault, writer_killed_at_point_21)
{
	crash_point(21);
}

Test(fault, writer_killed_at_point_22)
{
	crash_point(22);
}

/* ---- random-time kills ------------------------------------------------------------ */

Test(fault, writer_killed_at_random_times)
{
	const char *name = ts_name("wrand");
	ts_create(name, SIZE);
	uint64_t seed = ts_seed();
	takt_state_reader *r = ts_reader(name);
	struct shared *sh = ts_shared(sizeof *sh);
	uint64_t last_seen = 0;
	unsigned iters = 25 * ts_long();
	for (unsigned it = 0; it < iters; it++) {
		char ctx[64];
		uint64_t delay = ts_rand(&seed) % 15000000; /* 0..15 ms after fork */
		snprintf(ctx, sizeof ctx, "iteration %u, kill after %" PRIu64 " us", it, delay / 1000);
		atomic_store(&sh->confirmed, writes_now(name));
		pid_t pid = ts_fork();
		if (pid == 0)
			writer_child(name, sh, 0, 0, 25000000000ull);
		ts_sleep_ns(delay);
		int st = ts_kill_wait(pid);
		cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "%s: writer child: %s: %s", ctx,
			  ts_status_str(st), WIFEXITED(st) ? writer_exit_str(WEXITSTATUS(st)) : "");
		uint64_t c = atomic_load(&sh->confirmed);
		struct takt_state_info info;
		uint64_t g = read_checked(r, last_seen, c == 0, &info, ctx);
		if (g || c) /* -EAGAIN only while nothing was ever published */
			cr_assert(g == c || g == c + 1,
				  "%s: reader got generation %" PRIu64 ", confirmed %" PRIu64, ctx, g, c);
		if (g)
			last_seen = g;
		last_seen = replacement_writer(name, r, last_seen, ctx);
	}
	takt_state_reader_close(r);
	ts_shared_free(sh, sizeof *sh);
}

/* Reader child: open, read and check until killed.  Exit codes: */
enum { R_OPEN = 2, R_BAD = 3, R_TIMEOUT = 4 };

static void __attribute__((noreturn)) reader_child(const char *name, struct shared *sh)
{
	takt_state_reader *r = NULL;
	if (takt_state_reader_open(name, &r) != 0)
		_exit(R_OPEN);
	atomic_store(&sh->reader_state, 1);
	static uint8_t buf[SIZE];
	uint64_t last = 0, end = ts_now_ns() + 20000000000ull;
	for (uint64_t i = 0;; i++) {
		struct takt_state_info info;
		int rc = takt_state_read(r, buf, sizeof buf, &info);
		if (rc == -EAGAIN && last == 0)
			continue;
		if (rc != (int)SIZE || ts_image_check(buf, SIZE, info.generation) ||
		    info.generation < last)
			_exit(R_BAD);
		last = info.generation;
		atomic_store(&sh->reader_gen, last);
		if (atomic_load(&sh->writer_done) && last == atomic_load(&sh->final_gen))
			atomic_store(&sh->reader_state, 2);
		if ((i & 63) == 0 && ts_now_ns() > end)
			_exit(R_TIMEOUT);
	}
}

Test(fault, reader_killed_at_random_times)
{
	const char *name = ts_name("rrand");
	ts_create(name, SIZE);
	uint64_t seed = ts_seed();
	struct shared *sh = ts_shared(sizeof *sh);
	uint64_t run_ns = ts_env_u64("TS_STRESS_MS", 1000) * 1000000ull * ts_long();
	pid_t wpid = ts_fork();
	if (wpid == 0)
		writer_child(name, sh, 0, 0, run_ns);
	unsigned kills = 0;
	int st;
	while (waitpid(wpid, &st, WNOHANG) == 0) {
		atomic_store(&sh->reader_state, 0);
		pid_t rpid = ts_fork();
		if (rpid == 0)
			reader_child(name, sh);
		ts_sleep_ns(ts_rand(&seed) % 8000000);
		int rst = ts_kill_wait(rpid);
		cr_assert(WIFSIGNALED(rst) && WTERMSIG(rst) == SIGKILL,
			  "reader child #%u: %s (2: open failed, 3: bad image, 4: timeout)", kills,
			  ts_status_str(rst));
		kills++;
	}
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "writer: %s: %s (err %d)", ts_status_str(st),
		  WIFEXITED(st) ? writer_exit_str(WEXITSTATUS(st)) : "", atomic_load(&sh->writer_err));
	uint64_t final = atomic_load(&sh->final_gen);
	uint64_t max_ns = atomic_load(&sh->max_publish_ns);
	cr_log_info("%u readers killed; %" PRIu64 " images published; slowest publish %" PRIu64 " us",
		    kills, final, max_ns / 1000);
	cr_assert_geq(kills, 5u);
	cr_assert_eq(atomic_load(&sh->publishes), final);
	/* "never blocks": a publish is one exchange; a whole second means it waited */
	cr_assert_lt(max_ns, 1000000000u, "a publish took %" PRIu64 " ms", max_ns / 1000000);

	/* the writer is done: a new reader reads the newest image */
	takt_state_reader *r = ts_reader(name);
	struct takt_state_info info;
	uint64_t g = read_checked(r, 0, false, &info, "new reader after the writer finished");
	cr_assert_eq(g, final, "new reader got generation %" PRIu64 ", the newest is %" PRIu64, g, final);
	takt_state_reader_close(r);
}

/*
 * A reader that has taken the newest image is killed; its replacement must
 * read that image (the newest), not an older one and not "nothing yet".
 */
Test(fault, reader_killed_after_taking_newest)
{
	const char *name = ts_name("rnewest");
	ts_create(name, SIZE);
	struct shared *sh = ts_shared(sizeof *sh);
	pid_t wpid = ts_fork();
	if (wpid == 0)
		writer_child(name, sh, 0, 0, 100000000);
	int st = ts_wait(wpid);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "writer: %s", ts_status_str(st));
	uint64_t final = atomic_load(&sh->final_gen);
	cr_assert_gt(final, 0u);
	pid_t rpid = ts_fork();
	if (rpid == 0)
		reader_child(name, sh);
	while (atomic_load(&sh->reader_state) != 2)
		ts_sleep_ns(100000); /* ended by the test timeout if it never happens */
	int rst = ts_kill_wait(rpid);
	cr_assert(WIFSIGNALED(rst), "reader child: %s", ts_status_str(rst));
	takt_state_reader *r = ts_reader(name);
	uint8_t buf[SIZE];
	struct takt_state_info info;
	memset(&info, 0, sizeof info);
	int rc = takt_state_read(r, buf, sizeof buf, &info);
	cr_assert_eq(rc, (int)SIZE, "replacement reader: read = %d (%s); the newest image is generation %"
		     PRIu64, rc, rc < 0 ? takt_strerror(rc) : "-", final);
	cr_assert_null(ts_image_check(buf, SIZE, info.generation));
	cr_assert_eq(info.generation, final, "replacement reader got generation %" PRIu64
		     ", the newest is %" PRIu64, info.generation, final);
	takt_state_reader_close(r);
}
