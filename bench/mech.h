/* SPDX-License-Identifier: MIT */
/*
 * mech.h - an IPC mechanism as the harness sees it: a small table of
 * callbacks.  Adding a mechanism (pipe, socket, mq, futex, ...) means one
 * file that fills a struct bench_mech; the harness (harness.c) forks the two
 * processes, synchronises them, times round trips into a histogram and
 * measures streaming throughput, identically for every mechanism.
 *
 * Lifecycle, per measurement:
 *   parent:  setup()                        create the shared object(s)
 *   fork
 *   each:    open(role)                     attach its endpoint (after fork:
 *                                           takt handles are not inherited)
 *   each:    try_send / try_recv ...        the measured loop
 *   each:    close()
 *   parent:  teardown()                     after the child exited
 *
 * try_send/try_recv return -EAGAIN when the operation cannot complete now
 * (full / empty); the harness busy-polls.  In blocking mode (p->blocking)
 * they block in the mechanism's natural way and return -EAGAIN only when
 * interrupted (EINTR: the harness arms a 250 ms SIGALRM interval timer in
 * blocking mode, without SA_RESTART) or after a bounded timed wait; the
 * harness then runs its watchdog and calls again.  After -EAGAIN the harness
 * calls try_recv again with the same buffer, so a byte-stream mechanism may
 * keep a partial record in it.
 *
 * Payloads carry a 64-bit sequence number in their first 8 bytes and, from
 * 16 bytes on, a check word in their last 8 (harness.c: stamp/verify): the
 * receiving side verifies both on every record and the whole payload's
 * checksum on a sample (--verify-every).
 */
#ifndef TAKT_BENCH_MECH_H
#define TAKT_BENCH_MECH_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum bench_role {
	ROLE_PING,     /* latency: sends first, times the round trip */
	ROLE_PONG,     /* latency: echoes what it receives */
	ROLE_PRODUCER, /* streaming: sends as fast as it can */
	ROLE_CONSUMER, /* streaming: receives and checks the sequence */
};

struct bench_params {
	size_t size;        /* payload bytes per record (>= 8) */
	uint64_t capacity;  /* ring bytes per direction */
	unsigned batch;     /* records per batch call (batch variants) */
	unsigned id;        /* unique per measurement (for object names) */
	int blocking;       /* 0: nonblocking calls, busy-polled; 1: natural blocking */
	unsigned producers; /* streaming: producer processes (0 or 1 = SPSC) */
	unsigned producer;  /* ROLE_PRODUCER: this process's index (0..producers-1) */
	uint32_t spin_ns;   /* takt blocking calls: spin budget before parking */
};

/* What a mechanism supports (struct bench_mech.flags). */
enum bench_mech_flags {
	MECH_BUSY = 1u << 0,      /* nonblocking calls (busy-poll mode) */
	MECH_BLOCK = 1u << 1,     /* blocking mode */
	MECH_MPSC = 1u << 2,      /* several producer processes into one consumer */
	MECH_SEQ_ONLY = 1u << 3,  /* carries only the sequence number (cache line, null) */
	MECH_NO_STREAM = 1u << 4, /* no streaming (a latest-value channel) */
	MECH_NO_LAT = 1u << 5,    /* no ping-pong */
};

/* One record for the batch calls: what to send / what was received. */
struct bench_rec {
	const void *data;
	uint32_t len;
};

struct bench_mech {
	const char *name;  /* short id used in tables and JSON: "cacheline", "takt" */
	const char *title; /* one line for humans */
	int (*setup)(const struct bench_params *p, void **state);
	int (*open)(void *state, const struct bench_params *p, enum bench_role role, void **ep);
	int (*try_send)(void *ep, const void *buf, size_t len);    /* 0 or -errno */
	int (*try_recv)(void *ep, void *buf, size_t cap);          /* length or -errno */
	/* Optional (NULL): publish up to n records; return how many (>= 1) or -errno. */
	int (*try_send_batch)(void *ep, const struct bench_rec *recs, unsigned n);
	/* Optional (NULL): receive up to n records into buf (cap bytes), filling recs. */
	int (*try_recv_batch)(void *ep, struct bench_rec *recs, unsigned n, void *buf, size_t cap);
	void (*close)(void *ep);
	void (*teardown)(void *state);
	/* Optional: remove every named object this process still holds (called
	 * from a SIGINT/SIGTERM handler, so keep it to unlink calls). */
	void (*cleanup_all)(void);
	unsigned flags;    /* enum bench_mech_flags */
	const char *group; /* "limit", "takt", "reference", "kernel" */
	/* Optional: 0 if the mechanism can carry these parameters, else nonzero
	 * with the reason in why ("msgsize_max is 8192"): reported as n/a. */
	int (*check)(const struct bench_params *p, char *why, size_t cap);
};

/* The mechanisms of this build. */
extern const struct bench_mech mech_null;      /* no IPC: the harness floor */
extern const struct bench_mech mech_cacheline; /* one bouncing cache line: the hardware limit */
extern const struct bench_mech mech_linepair;  /* one line per direction: the one-way-channel limit */
extern const struct bench_mech mech_ring;      /* minimal fixed-slot SPSC ring */
extern const struct bench_mech mech_takt;      /* takt SPSC queue channel(s) */
extern const struct bench_mech mech_state;     /* takt state channels (latest value) */
extern const struct bench_mech mech_ck;        /* Concurrency Kit ck_ring (optional) */
extern const struct bench_mech mech_pipe, mech_fifo, mech_unix_stream, mech_unix_seqpacket,
	mech_unix_dgram, mech_tcp, mech_posix_mq, mech_sysv_mq, mech_eventfd, mech_sem,
	mech_futex;

/* Every mechanism of this build, NULL-terminated (mechs.c). */
extern const struct bench_mech *const bench_mechs[];
const struct bench_mech *bench_mech_find(const char *name);

#ifdef __cplusplus
}
#endif

#endif
