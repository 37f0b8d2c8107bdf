/* SPDX-License-Identifier: MIT */
/*
 * plc.c - a 1 ms "PLC" loop on takt channels (example; see README.md).
 *
 * Every cycle it
 *   1. reads the motion process's newest 256-byte image from the state
 *      channel <prefix>.motion.out (takt_state_read: wait-free, never blocks),
 *   2. checks whether motion is alive and updating (takt_state_watch_writer
 *      against the 1 ms period) and says when it goes stale or comes back,
 *   3. computes setpoints (a square wave between 0 and 100 mm),
 *   4. writes its own 256-byte image (cycle counter, setpoints, checksum) to
 *      the state channel <prefix>.plc.out, in place (takt_state_buffer +
 *      takt_state_publish),
 *   5. sends events as text records on the queue channel <prefix>.events
 *      (every 100th cycle, when motion changes mode, goes stale or comes
 *      back) with takt_try_send: never blocks; a full queue drops the event
 *      and counts it.
 * It creates the channels if they are missing, runs for --seconds N or until
 * SIGINT/SIGTERM, and prints a report and one "summary: key=value ..." line.
 */
#include "demo.h"

#define EVENTS_CAPACITY (64u << 10)
#define EVENT_MAX 256u
#define SETPOINT_HALF_PERIOD 1000u /* cycles between setpoint changes */
#define HEARTBEAT_EVERY 100u

enum { EV_HEARTBEAT = 1, EV_MOTION_MODE = 2, EV_MOTION_STALE = 3, EV_MOTION_BACK = 4 };

struct plc {
	const struct demo_opts *o;
	takt_state_writer *out;
	takt_state_reader *in;
	takt_producer *events;
	/* what the cycle keeps */
	struct motion_image motion;
	bool have_motion;
	bool motion_stale;
	bool motion_broken;
	/* counters for the report */
	uint64_t images_read, bad_images, mode_changes, stale_transitions, comebacks;
	uint64_t events_sent, events_dropped, events_failed;
};

static void event(struct plc *p, uint32_t type, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void event(struct plc *p, uint32_t type, const char *fmt, ...)
{
	char buf[EVENT_MAX];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	size_t len = (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1;
	int rc = takt_try_send(p->events, type, buf, len);
	if (rc == 0)
		p->events_sent++;
	else if (rc == -EAGAIN)
		p->events_dropped++; /* the queue is full: nobody consumes fast enough */
	else
		p->events_failed++;
}

static void say(const struct plc *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void say(const struct plc *p, const char *fmt, ...)
{
	if (p->o->quiet)
		return;
	va_list ap;
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fflush(stdout);
}

/* Inputs: the newest motion image, if a new one arrived. */
static void read_motion(struct plc *p, uint64_t cycle)
{
	if (p->motion_broken)
		return;
	struct motion_image m;
	struct takt_state_info info;
	int rc = takt_state_read(p->in, &m, sizeof m, &info);
	if (rc == -EAGAIN)
		return; /* motion never published yet */
	if (rc < 0) {
		p->motion_broken = true;
		say(p, "plc: cycle %llu: cannot read motion's image: %s\n",
		    (unsigned long long)cycle, takt_strerror(rc));
		return;
	}
	if (!info.fresh)
		return; /* the same image as last cycle: motion has not written since */
	p->images_read++;
	if (rc != (int)sizeof m || m.magic != MOTION_MAGIC || m.checksum != demo_checksum(&m)) {
		p->bad_images++;
		return;
	}
	if (p->have_motion && m.mode != p->motion.mode) {
		p->mode_changes++;
		event(p, EV_MOTION_MODE, "cycle=%llu motion mode %s -> %s position=%.2f",
		      (unsigned long long)cycle, motion_mode_name(p->motion.mode),
		      motion_mode_name(m.mode), m.position);
	}
	p->motion = m;
	p->have_motion = true;
}

/* The watchdog: is motion alive and writing at its period? */
static void watch_motion(struct plc *p, uint64_t cycle)
{
	struct takt_peer_watch w;
	if (takt_state_watch_writer(p->in, DEMO_PERIOD_NS, &w) < 0)
		return;
	if ((bool)w.stale == p->motion_stale)
		return;
	p->motion_stale = w.stale;
	char age[32];
	if (w.age_ns == UINT64_MAX)
		snprintf(age, sizeof age, "never");
	else
		snprintf(age, sizeof age, "%.1f ms", (double)w.age_ns / 1e6);
	if (w.stale) {
		p->stale_transitions++;
		say(p, "plc: cycle %llu: motion went stale (%s, last write %s ago)\n",
		    (unsigned long long)cycle, w.alive ? "alive but not writing" : "process gone",
		    age);
		event(p, EV_MOTION_STALE, "cycle=%llu motion stale alive=%u age=%s",
		      (unsigned long long)cycle, w.alive, age);
	} else {
		p->comebacks++;
		say(p, "plc: cycle %llu: motion is %s\n", (unsigned long long)cycle,
		    p->comebacks == 1 ? "up" : "back");
		event(p, EV_MOTION_BACK, "cycle=%llu motion %s", (unsigned long long)cycle,
		      p->comebacks == 1 ? "up" : "back");
	}
}

/* Outputs: our image, filled in place and published. */
static void write_image(struct plc *p, uint64_t cycle, uint64_t now)
{
	struct plc_image img;
	memset(&img, 0, sizeof img);
	img.magic = PLC_MAGIC;
	img.mode = 1;
	img.cycle = cycle;
	img.time_ns = now;
	img.setpoint = (cycle / SETPOINT_HALF_PERIOD) % 2 ? 100.0 : 0.0;
	img.max_velocity = 400.0;
	img.enable = 1;
	img.checksum = demo_checksum(&img);
	memcpy(takt_state_buffer(p->out), &img, sizeof img);
	takt_state_publish(p->out, sizeof img);
}

static int open_channels(struct plc *p, const char *out, const char *in, const char *events)
{
	int rc = demo_create_state(out);
	if (rc == 0)
		rc = demo_create_state(in);
	if (rc < 0) {
		fprintf(stderr, "plc: cannot create the state channels: %s\n", takt_strerror(rc));
		return -1;
	}
	struct takt_queue_config qc = {.capacity = EVENTS_CAPACITY, .lanes = 1,
				       .max_record = EVENT_MAX, .mode = 0660};
	rc = takt_queue_create(events, &qc);
	if (rc < 0 && rc != -EEXIST) {
		fprintf(stderr, "plc: cannot create %s: %s\n", events, takt_strerror(rc));
		return -1;
	}
	uint64_t until = takt_deadline_in(1000000000ull);
	while (demo_retry(rc = takt_state_writer_open(out, &p->out), until))
		;
	if (rc < 0) {
		fprintf(stderr, "plc: cannot write %s: %s%s\n", out, takt_strerror(rc),
			rc == -EBUSY ? " (is another plc running?)" : "");
		return -1;
	}
	while (demo_retry(rc = takt_state_reader_open(in, &p->in), until))
		;
	if (rc < 0) {
		fprintf(stderr, "plc: cannot read %s: %s%s\n", in, takt_strerror(rc),
			rc == -EBUSY ? " (another reader holds it)" : "");
		return -1;
	}
	while (demo_retry(rc = takt_producer_open(events, &p->events), until))
		;
	if (rc < 0) {
		fprintf(stderr, "plc: cannot send to %s: %s\n", events, takt_strerror(rc));
		return -1;
	}
	return 0;
}

static void close_channels(struct plc *p)
{
	takt_producer_close(p->events);
	takt_state_reader_close(p->in);
	takt_state_writer_close(p->out);
}

int main(int argc, char **argv)
{
	struct demo_opts o = {.seconds = 10, .prefix = "demo", .rt = true, .priority = 50,
			      .cpu = -1};
	int code = demo_parse(argc, argv, &o,
			      "A 1 ms PLC loop: writes its image to state channel P.plc.out, reads\n"
			      "motion's from P.motion.out, sends events to queue channel P.events.\n");
	if (code >= 0)
		return code;
	char out[TAKT_NAME_MAX + 1], in[TAKT_NAME_MAX + 1], events[TAKT_NAME_MAX + 1];
	demo_name(out, sizeof out, &o, "plc.out");
	demo_name(in, sizeof in, &o, "motion.out");
	demo_name(events, sizeof events, &o, "events");

	struct plc p = {.o = &o, .motion_stale = true};
	demo_catch_signals();
	if (open_channels(&p, out, in, events) < 0) {
		close_channels(&p);
		return 1;
	}
	demo_prepare("plc", &o);
	printf("plc: running %s%.1f s: %s -> %s, %s -> events on %s\n",
	       o.seconds > 0 ? "" : "until interrupted, at most ", o.seconds > 0 ? o.seconds : 0.0,
	       "image", out, in, events);
	fflush(stdout);

	struct demo_timing t;
	uint64_t end = demo_end_ns(o.seconds);
	demo_timing_start(&t, DEMO_PERIOD_NS);
	uint64_t t0 = t.next_ns;
	while (!demo_stop && t.next_ns < end) {
		demo_wait_cycle(&t);
		uint64_t cycle = t.cycles, now = takt_now_ns();
		read_motion(&p, cycle);
		watch_motion(&p, cycle);
		write_image(&p, cycle, now);
		if (cycle % HEARTBEAT_EVERY == 0)
			event(&p, EV_HEARTBEAT, "cycle=%llu heartbeat setpoint=%.1f motion=%s "
			      "position=%.2f", (unsigned long long)cycle,
			      (cycle / SETPOINT_HALF_PERIOD) % 2 ? 100.0 : 0.0,
			      p.have_motion ? motion_mode_name(p.motion.mode) : "none",
			      p.have_motion ? p.motion.position : 0.0);
	}
	double ran = (double)(takt_now_ns() - t0) / 1e9;
	close_channels(&p);

	printf("plc: %llu cycles in %.2f s (period 1 ms): deadline misses %llu (started more than "
	       "a period late), max lateness %.1f us, mean %.1f us, skipped %llu\n",
	       (unsigned long long)t.cycles, ran, (unsigned long long)t.misses,
	       (double)t.max_late_ns / 1e3,
	       t.cycles ? (double)t.sum_late_ns / (double)t.cycles / 1e3 : 0.0,
	       (unsigned long long)t.skipped);
	printf("plc: motion images read %llu (bad %llu), mode changes %llu, stale transitions "
	       "%llu\n", (unsigned long long)p.images_read, (unsigned long long)p.bad_images,
	       (unsigned long long)p.mode_changes, (unsigned long long)p.stale_transitions);
	printf("plc: events sent %llu, dropped %llu (queue full)%s\n",
	       (unsigned long long)p.events_sent, (unsigned long long)p.events_dropped,
	       p.events_failed ? ", some failed" : "");
	printf("summary: role=plc cycles=%llu misses=%llu max_late_us=%.1f skipped=%llu "
	       "images_read=%llu bad_images=%llu mode_changes=%llu stale_transitions=%llu "
	       "events_sent=%llu events_dropped=%llu\n",
	       (unsigned long long)t.cycles, (unsigned long long)t.misses,
	       (double)t.max_late_ns / 1e3, (unsigned long long)t.skipped,
	       (unsigned long long)p.images_read, (unsigned long long)p.bad_images,
	       (unsigned long long)p.mode_changes, (unsigned long long)p.stale_transitions,
	       (unsigned long long)p.events_sent, (unsigned long long)p.events_dropped);
	return p.bad_images || p.motion_broken || p.events_failed ? 1 : 0;
}
