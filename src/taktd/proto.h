/* SPDX-License-Identifier: MIT */
/*
 * proto.h - the per-connection protocol state machine (docs/PROTOCOL.md §4).
 *
 * Pure: it turns the bytes a client sent into calls of struct proto_ops and
 * frames to emit; it touches no socket and no channel, so the fuzzer drives
 * it with stub operations.
 */
#ifndef TAKTD_PROTO_H
#define TAKTD_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "frame.h"

enum proto_state { PROTO_HELLO, PROTO_READY, PROTO_CLOSED };

struct proto {
	enum proto_state state;
	uint32_t max_in;       /* largest frame accepted now */
	uint32_t max_in_ready; /* ... after HELLO (the server's max_frame) */
	uint32_t max_out;      /* largest frame the client accepts */
	uint32_t resume;       /* records of the current frame already accepted */
	uint32_t resume_off;   /* byte offset of the next record in a DATA_BATCH body */
	bool blocked;          /* stopped on a full ring: call proto_input again later */
	bool held;             /* stopped by ops->hold: call proto_input again later */
};

struct proto_ops {
	/* Queue a whole frame for the client. */
	void (*emit)(void *ctx, const void *frame, size_t len);
	/* Admit the client (emit WELCOME) and return 0, or return -TD_E_DENIED. */
	int (*hello)(void *ctx, uint32_t req, const struct td_hello *h, uint32_t max_out);
	/* Emit ATTACHED or a non-fatal ERROR and return 0; or return -TD_E_* to close. */
	int (*attach)(void *ctx, uint32_t req, const struct td_attach *a);
	/* Emit DETACHED or a non-fatal ERROR. */
	void (*detach)(void *ctx, uint32_t chan, uint32_t req);
	/*
	 * Accept msgs[0..n) for channel chan, in order.  Returns how many were
	 * accepted (committed to the ring, or the last of them handed to a
	 * waiter that completes it later); sets *blocked when the caller must
	 * stop reading until the channel has room.  A negative -TD_E_* closes
	 * the connection; *sys_errno (0 on entry) may name the errno behind
	 * it, else the ERROR carries td_code_errno(code).
	 */
	int (*produce)(void *ctx, uint32_t chan, const struct takt_msg *msgs, unsigned n,
		       bool *blocked, uint32_t *sys_errno);
	/* The client said BYE: emit final ACKs and BYE. */
	void (*bye)(void *ctx);
	/* State channels: emit the answer (STATE, SUBSCRIBED, UNSUBSCRIBED) or
	 * a non-fatal ERROR. */
	void (*state_get)(void *ctx, uint32_t chan, uint32_t req);
	void (*subscribe)(void *ctx, uint32_t chan, uint32_t req, uint32_t interval_us);
	void (*unsubscribe)(void *ctx, uint32_t chan, uint32_t req);
	/* Publish one image; 0, or -TD_E_* to close the connection (with
	 * *sys_errno as for produce). */
	int (*state_write)(void *ctx, uint32_t chan, const uint8_t *image, uint32_t len,
			   uint32_t *sys_errno);
	/* Optional: true to stop before the next frame (the caller's output
	 * for this client piles up; each small request may queue a large
	 * answer, so the check must come between frames, not only between
	 * reads).  proto_input then returns with p->held set. */
	bool (*hold)(void *ctx);
};

void proto_init(struct proto *p, uint32_t server_max_frame);
/*
 * Consume whole frames from buf[0..len).  Returns the bytes consumed; the
 * caller keeps the rest and calls again when more arrives (or, if
 * p->blocked, after clearing it when the channel has room; if p->held,
 * once ops->hold no longer holds).  Stops at PROTO_CLOSED (a fatal ERROR
 * or BYE was emitted).
 */
size_t proto_input(struct proto *p, const uint8_t *buf, size_t len, const struct proto_ops *ops,
		   void *ctx);
/* The client closed its side with leftover bytes of an incomplete frame. */
void proto_eof(struct proto *p, size_t leftover, const struct proto_ops *ops, void *ctx);
/* Emit a fatal ERROR and close.  sys_errno 0: the code's documented errno
 * (td_code_errno), so every ERROR carries what PROTOCOL.md §7 says. */
void proto_fatal(struct proto *p, const struct proto_ops *ops, void *ctx, uint32_t code,
		 uint32_t chan, uint32_t req, uint32_t sys_errno, const char *msg);

#endif
