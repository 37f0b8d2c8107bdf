/* SPDX-License-Identifier: MIT */
/*
 * tclient.h - a test client for taktd written from docs/PROTOCOL.md alone
 * (it includes nothing from src/taktd), and helpers that start taktd.
 */
#ifndef TAKTD_TCLIENT_H
#define TAKTD_TCLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Frame types and codes, as PROTOCOL.md lists them. */
enum {
	T_HELLO = 0x01, T_WELCOME = 0x02, T_ATTACH = 0x03, T_ATTACHED = 0x04,
	T_DETACH = 0x05, T_DETACHED = 0x06, T_DATA = 0x10, T_DATA_BATCH = 0x11,
	T_ACK = 0x12, T_DROPPED = 0x13, T_PING = 0x20, T_PONG = 0x21,
	T_ERROR = 0x30, T_BYE = 0x40,
	T_STATE_GET = 0x50, T_STATE = 0x51, T_SUBSCRIBE = 0x52, T_SUBSCRIBED = 0x53,
	T_UNSUBSCRIBE = 0x54, T_UNSUBSCRIBED = 0x55, T_STATE_WRITE = 0x56,
};
enum {
	E_BAD_FRAME = 1, E_BAD_TYPE = 2, E_TOO_LARGE = 3, E_STATE = 4, E_VERSION = 5,
	E_BAD_CHANNEL = 6, E_DENIED = 7, E_SLOW_CONSUMER = 8, E_LIMIT = 9, E_SHUTDOWN = 10,
	E_INVALID = 20, E_EXISTS = 21, E_NOENT = 22, E_ACCESS = 23, E_AGAIN = 25, E_MSGSIZE = 26,
	E_BADMSG = 27,
	E_BUSY = 29, E_KIND = 32,
};
#define F_FATAL 1
#define F_UPDATE 2
#define FEAT_STATE 1
enum { ROLE_PRODUCE = 1, ROLE_CONSUME = 2, ROLE_STATE_READ = 3, ROLE_STATE_WRITE = 4 };
#define A_CREATE 1
#define A_EXCL 2
enum { SLOW_DEFAULT = 0, SLOW_DISCONNECT = 1, SLOW_DROP_OLDEST = 2 };

struct tc_frame {
	uint32_t len;
	uint16_t type, flags;
	uint32_t chan, arg;
	const uint8_t *body;
	uint32_t blen;
};

struct tc {
	int fd;
	uint8_t *buf;
	size_t len, cap, off;
	struct tc_frame last;
	uint32_t features; /* WELCOME offset 28 */
};

static inline void le16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static inline void le32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> 8 * i); }
static inline void le64(uint8_t *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> 8 * i); }
static inline uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static inline uint32_t rd32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static inline uint64_t rd64(const uint8_t *p) { return rd32(p) | (uint64_t)rd32(p + 4) << 32; }

/* Connect (returns -errno on failure instead of asserting). */
int tc_open(struct tc *c, const char *path);
void tc_close(struct tc *c);
/* Send bytes / one frame; returns 0 or -errno (EPIPE after the server closed). */
int tc_send(struct tc *c, const void *data, size_t len);
int tc_frame(struct tc *c, uint16_t type, uint16_t flags, uint32_t chan, uint32_t arg,
	     const void *body, size_t blen);
/* Next frame: 1, 0 at EOF, -ETIMEDOUT.  The body stays valid until the next call. */
int tc_read(struct tc *c, struct tc_frame *f, int timeout_ms);
/* Read, asserting a frame of that type arrives (skipping ACKs if skip_acks). */
void tc_expect(struct tc *c, uint16_t type, struct tc_frame *f);
/* Assert an ERROR frame's errno field is the one PROTOCOL.md §7 documents
 * for its code (tc_expect_error and tc_attach check every ERROR they see). */
void tc_check_errno(const struct tc_frame *f);
/* Expect an ERROR with code; if fatal, also the FATAL flag and then EOF. */
void tc_expect_error(struct tc *c, uint32_t code, bool fatal);
/* Expect EOF within the timeout. */
void tc_expect_eof(struct tc *c);

/* HELLO / WELCOME (asserting). */
void tc_hello(struct tc *c, uint32_t max_frame);
struct tc_attach_opts {
	uint16_t flags;
	uint32_t lanes;
	uint64_t capacity;
	uint32_t max_record;
	uint32_t queue_limit;
	uint8_t slow;
};
/* Send ATTACH; returns the channel id (> 0, the ATTACHED frame in c->last)
 * or minus the ERROR code. */
int tc_attach(struct tc *c, const char *name, int role, const struct tc_attach_opts *o);
/* Produce: one DATA frame / one DATA_BATCH of n records of len bytes each. */
int tc_data(struct tc *c, uint32_t chan, uint32_t type, const void *p, uint32_t len);
/* Wait for an ACK of chan reaching at least count; returns the last value seen. */
uint64_t tc_wait_ack(struct tc *c, uint32_t chan, uint64_t count, int timeout_ms);

/* ---- the taktd process ------------------------------------------------- */
struct td {
	pid_t pid;
	char dir[64];
	char sock[128];
	char backend[16]; /* "" (td_start with NULL): no --backend, taktd chooses */
	/* Optional: a program (and its leading arguments, NULL-terminated)
	 * that execs taktd's command line, e.g. the no_uring helper. */
	const char *wrap[4];
	/* Optional: taktd's stderr goes to this file instead of the test's. */
	char log[160];
};
/* Skip the current test (clearly) if io_uring is unavailable here. */
void td_require_backend(const char *backend);
/* Make t's temp dir (once) and register t for td_cleanup. */
void td_prepare(struct td *t);
/* Start taktd in a fresh temp dir (or t->dir if set); extra args NULL-terminated.
 * backend NULL: no --backend option (taktd's own choice). */
void td_start(struct td *t, const char *backend, ...);
/* Start taktd on t->sock again (after a kill): same dir. */
void td_restart(struct td *t, ...);
/* Run taktd to completion on t's socket; returns its wait status. */
int td_run_fail(struct td *t, int timeout_ms);
void td_signal(struct td *t, int sig);
/* Wait for exit; returns the wait status (asserts it exits within timeout). */
int td_wait(struct td *t, int timeout_ms);
/* Does file contain needle?  (e.g. a line of t->log) */
bool td_file_contains(const char *path, const char *needle);
/* The anon inode kinds among pid's descriptors ("[io_uring]", "[eventpoll]"):
 * how many of pid's fds are links to anon_inode:<kind>. */
int td_count_anon_fds(pid_t pid, const char *kind);
/* CPU ticks (utime + stime) of the process. */
uint64_t td_cpu_ticks(pid_t pid);
/* End of a passing test: stop every taktd it started with SIGTERM, assert
 * each exits 0, and that no sanitizer reported anything in any of them
 * (their reports go to files in the temp dirs). */
void td_finish(void);
/* Kill every taktd started by this test and remove the temp dirs (suite fini). */
void td_cleanup(void);

#endif
