/* SPDX-License-Identifier: MIT */
/*
 * motion.c - the "motion" process of the PLC example (see README.md).
 *
 * Its own 1 ms loop: every cycle it reads the PLC's newest image from the
 * state channel <prefix>.plc.out (setpoint, speed limit, enable), moves a
 * fake axis toward the setpoint at the speed limit, and writes its own
 * 256-byte image (position, velocity, mode, checksum) to <prefix>.motion.out.
 * When the PLC goes stale (takt_state_watch_writer against the 1 ms period:
 * dead, or no write for two periods) it holds its position until the PLC
 * comes back.  It creates the channels if they are missing, runs for
 * --seconds N or until SIGINT/SIGTERM, and prints a report and one
 * "summary: key=value ..." line.
 */
#include <math.h>

#include "demo.h"

struct motion {
	const struct demo_opts *o;
	takt_state_writer *out;
	takt_state_reader *in;
	struct plc_image plc;
	bool have_plc, plc_stale, plc_broken;
	double position, velocity;
	uint32_t mode;
	uint64_t images_read, bad_images, stale_transitions, comebacks, mode_changes;
};

static void say(const struct motion *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void say(const struct motion *m, const char *fmt, ...)
{
	if (m->o->quiet)
		return;
	va_list ap;
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fflush(stdout);
}

static void read_plc(struct motion *m, uint64_t cycle)
{
	if (m->plc_broken)
		return;
	struct plc_image img;
	struct takt_state_info info;
	int rc = takt_state_read(m->in, &img, sizeof img, &info);
	if (rc == -EAGAIN)
		return;
	if (rc < 0) {
		m->plc_broken = true;
		say(m, "motion: cycle %llu: cannot read the PLC's image: %s\n",
		    (unsigned long long)cycle, takt_strerror(rc));
		return;
	}
	if (!info.fresh)
		return;
	m->images_read++;
	if (rc != (int)sizeof img || img.magic != PLC_MAGIC || img.checksum != demo_checksum(&img)) {
		m->bad_images++;
		return;
	}
	m->plc = img;
	m->have_plc = true;
}

static void watch_plc(struct motion *m, uint64_t cycle)
{
	struct takt_peer_watch w;
	if (takt_state_watch_writer(m->in, DEMO_PERIOD_NS, &w) < 0)
		return;
	if ((bool)w.stale == m->plc_stale)
		return;
	m->plc_stale = w.stale;
	if (w.stale) {
		m->stale_transitions++;
		say(m, "motion: cycle %llu: PLC went stale (%s, last write %.1f ms ago): holding\n",
		    (unsigned long long)cycle, w.alive ? "alive but not writing" : "process gone",
		    w.age_ns == UINT64_MAX ? 0.0 : (double)w.age_ns / 1e6);
	} else {
		m->comebacks++;
		say(m, "motion: cycle %llu: PLC is %s\n", (unsigned long long)cycle,
		    m->comebacks == 1 ? "up" : "back");
	}
}

/* The fake axis: move toward the setpoint at the speed limit. */
static void move(struct motion *m)
{
	uint32_t mode;
	if (!m->have_plc) {
		mode = MOTION_WAITING;
		m->velocity = 0;
	} else if (m->plc_stale || !m->plc.enable) {
		mode = MOTION_HOLD;
		m->velocity = 0;
	} else {
		double dt = (double)DEMO_PERIOD_NS / 1e9;
		double vmax = m->plc.max_velocity > 0 ? m->plc.max_velocity : 0;
		double err = m->plc.setpoint - m->position, step = vmax * dt;
		if (fabs(err) <= step) {
			m->position = m->plc.setpoint;
			m->velocity = 0;
			mode = MOTION_IN_POSITION;
		} else {
			m->velocity = err > 0 ? vmax : -vmax;
			m->position += err > 0 ? step : -step;
			mode = MOTION_MOVING;
		}
	}
	if (mode != m->mode)
		m->mode_changes++;
	m->mode = mode;
}

static void write_image(struct motion *m, uint64_t cycle, uint64_t now)
{
	struct motion_image img;
	memset(&img, 0, sizeof img);
	img.magic = MOTION_MAGIC;
	img.mode = m->mode;
	img.cycle = cycle;
	img.time_ns = now;
	img.position = m->position;
	img.velocity = m->velocity;
	img.plc_cycle = m->have_plc ? m->plc.cycle : 0;
	img.checksum = demo_checksum(&img);
	takt_state_write(m->out, &img, sizeof img);
}

int main(int argc, char **argv)
{
	struct demo_opts o = {.seconds = 10, .prefix = "demo", .rt = true, .priority = 49,
			      .cpu = -1};
	int code = demo_parse(argc, argv, &o,
			      "The motion process: a 1 ms loop that follows the PLC's setpoint from\n"
			      "state channel P.plc.out and writes its axis to P.motion.out.\n");
	if (code >= 0)
		return code;
	char out[TAKT_NAME_MAX + 1], in[TAKT_NAME_MAX + 1];
	demo_name(out, sizeof out, &o, "motion.out");
	demo_name(in, sizeof in, &o, "plc.out");

	struct motion m = {.o = &o, .plc_stale = true, .mode = MOTION_WAITING};
	demo_catch_signals();
	int rc = demo_create_state(out);
	if (rc == 0)
		rc = demo_create_state(in);
	if (rc < 0) {
		fprintf(stderr, "motion: cannot create the state channels: %s\n", takt_strerror(rc));
		return 1;
	}
	uint64_t until = takt_deadline_in(1000000000ull);
	while (demo_retry(rc = takt_state_writer_open(out, &m.out), until))
		;
	if (rc < 0) {
		fprintf(stderr, "motion: cannot write %s: %s%s\n", out, takt_strerror(rc),
			rc == -EBUSY ? " (is another motion running?)" : "");
		return 1;
	}
	while (demo_retry(rc = takt_state_reader_open(in, &m.in), until))
		;
	if (rc < 0) {
		fprintf(stderr, "motion: cannot read %s: %s%s\n", in, takt_strerror(rc),
			rc == -EBUSY ? " (another reader holds it)" : "");
		takt_state_writer_close(m.out);
		return 1;
	}
	demo_prepare("motion", &o);
	printf("motion: running %s%.1f s: %s -> axis -> %s\n",
	       o.seconds > 0 ? "" : "until interrupted, at most ", o.seconds > 0 ? o.seconds : 0.0,
	       in, out);
	fflush(stdout);

	struct demo_timing t;
	uint64_t end = demo_end_ns(o.seconds);
	demo_timing_start(&t, DEMO_PERIOD_NS);
	uint64_t t0 = t.next_ns;
	while (!demo_stop && t.next_ns < end) {
		demo_wait_cycle(&t);
		uint64_t cycle = t.cycles, now = takt_now_ns();
		read_plc(&m, cycle);
		watch_plc(&m, cycle);
		move(&m);
		write_image(&m, cycle, now);
	}
	double ran = (double)(takt_now_ns() - t0) / 1e9;
	takt_state_reader_close(m.in);
	takt_state_writer_close(m.out);

	printf("motion: %llu cycles in %.2f s (period 1 ms): deadline misses %llu (started more "
	       "than a period late), max lateness %.1f us, mean %.1f us, skipped %llu\n",
	       (unsigned long long)t.cycles, ran, (unsigned long long)t.misses,
	       (double)t.max_late_ns / 1e3,
	       t.cycles ? (double)t.sum_late_ns / (double)t.cycles / 1e3 : 0.0,
	       (unsigned long long)t.skipped);
	printf("motion: PLC images read %llu (bad %llu), mode changes %llu, stale transitions "
	       "%llu, final position %.2f mm\n", (unsigned long long)m.images_read,
	       (unsigned long long)m.bad_images, (unsigned long long)m.mode_changes,
	       (unsigned long long)m.stale_transitions, m.position);
	printf("summary: role=motion cycles=%llu misses=%llu max_late_us=%.1f skipped=%llu "
	       "images_read=%llu bad_images=%llu mode_changes=%llu stale_transitions=%llu\n",
	       (unsigned long long)t.cycles, (unsigned long long)t.misses,
	       (double)t.max_late_ns / 1e3, (unsigned long long)t.skipped,
	       (unsigned long long)m.images_read, (unsigned long long)m.bad_images,
	       (unsigned long long)m.mode_changes, (unsigned long long)m.stale_transitions);
	return m.bad_images || m.plc_broken ? 1 : 0;
}
