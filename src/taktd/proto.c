/* SPDX-License-Identifier: MIT */
/* proto.c - see proto.h. */
#include "proto.h"

#include <stdio.h>
#include <string.h>

#define CHUNK 64

void proto_init(struct proto *p, uint32_t server_max_frame)
{
	memset(p, 0, sizeof(*p));
	p->state = PROTO_HELLO;
	p->max_in = TD_PRE_HELLO_MAX;
	p->max_in_ready = server_max_frame;
	p->max_out = TD_PRE_HELLO_MAX;
}

void proto_fatal(struct proto *p, const struct proto_ops *ops, void *ctx, uint32_t code,
		 uint32_t chan, uint32_t req, uint32_t sys_errno, const char *msg)
{
	uint8_t out[TD_HDR_SIZE + TD_ERROR_BODY + TD_ERROR_MSG_MAX];
	if (p->state == PROTO_CLOSED)
		return;
	if (!sys_errno)
		sys_errno = td_code_errno(code);
	ops->emit(ctx, out, td_enc_error(out, TD_F_FATAL, chan, req, code, sys_errno, msg));
	p->state = PROTO_CLOSED;
	p->blocked = false;
}

void proto_eof(struct proto *p, size_t leftover, const struct proto_ops *ops, void *ctx)
{
	if (leftover && p->state != PROTO_CLOSED)
		proto_fatal(p, ops, ctx, TD_E_BAD_FRAME, 0, 0, 0, "truncated frame at end of stream");
}

/* Feed records to ops->produce; returns 1 when the frame is done, 0 when blocked, -1 closed. */
static int produce(struct proto *p, const struct td_frame *f, const struct proto_ops *ops, void *ctx)
{
	struct takt_msg m[CHUNK];
	if (f->type == TD_DATA) {
		m[0] = (struct takt_msg){ .data = f->body, .len = f->body_len, .type = f->arg };
		bool blocked = false;
		uint32_t err = 0;
		int r = ops->produce(ctx, f->chan, m, 1, &blocked, &err);
		if (r < 0) {
			proto_fatal(p, ops, ctx, (uint32_t)-r, f->chan, 0, err, "record refused");
			return -1;
		}
		if (r == 1) {
			p->blocked = blocked;
			return 1;
		}
		p->blocked = true;
		return 0;
	}
	if (p->resume == 0 && td_batch_validate(f) < 0) {
		proto_fatal(p, ops, ctx, TD_E_BAD_FRAME, f->chan, 0, 0,
			    "DATA_BATCH records do not fill the frame exactly");
		return -1;
	}
	while (p->resume < f->arg) {
		unsigned n = 0;
		uint32_t off = p->resume_off;
		uint32_t ends[CHUNK];
		while (n < CHUNK && p->resume + n < f->arg) {
			td_batch_next(f, &off, &m[n]);
			ends[n++] = off;
		}
		bool blocked = false;
		uint32_t err = 0;
		int r = ops->produce(ctx, f->chan, m, n, &blocked, &err);
		if (r < 0) {
			proto_fatal(p, ops, ctx, (uint32_t)-r, f->chan, 0, err, "record refused");
			return -1;
		}
		if ((unsigned)r > n)
			r = (int)n;
		if (r > 0)
			p->resume_off = ends[r - 1];
		p->resume += (uint32_t)r;
		if (blocked || (unsigned)r < n) {
			p->blocked = true;
			if (p->resume == f->arg)
				return 1; /* the frame is done; stop before the next */
			return 0;
		}
	}
	return 1;
}

/* Handle one frame.  Returns 1 if consumed, 0 if blocked inside it, -1 if closed. */
static int dispatch(struct proto *p, const struct td_frame *f, const struct proto_ops *ops, void *ctx)
{
	uint8_t out[TD_HDR_SIZE + TD_PING_MAX];
	if (p->state == PROTO_HELLO) {
		struct td_hello h;
		if (f->type != TD_HELLO) {
			proto_fatal(p, ops, ctx, TD_E_STATE, 0, f->arg, 0, "the first frame must be HELLO");
			return -1;
		}
		if (f->flags || td_hello_decode(f, &h) < 0) {
			proto_fatal(p, ops, ctx, TD_E_BAD_FRAME, 0, f->arg, 0, "malformed HELLO");
			return -1;
		}
		if (h.version != TD_PROTO_VERSION) {
			char msg[64];
			snprintf(msg, sizeof(msg), "protocol version %u unsupported; server speaks %u",
				 h.version, TD_PROTO_VERSION);
			proto_fatal(p, ops, ctx, TD_E_VERSION, 0, f->arg, 0, msg);
			return -1;
		}
		if (h.max_frame < TD_MIN_FRAME) {
			proto_fatal(p, ops, ctx, TD_E_BAD_FRAME, 0, f->arg, 0, "max_frame below 4096");
			return -1;
		}
		int r = ops->hello(ctx, f->arg, &h, h.max_frame);
		if (r < 0) {
			proto_fatal(p, ops, ctx, (uint32_t)-r, 0, f->arg, 0, "connection refused by policy");
			return -1;
		}
		p->max_out = h.max_frame;
		p->max_in = p->max_in_ready;
		p->state = PROTO_READY;
		return 1;
	}
	if (f->flags) {
		proto_fatal(p, ops, ctx, TD_E_BAD_FRAME, f->chan, f->arg, 0, "reserved flags set");
		return -1;
	}
	switch (f->type) {
	case TD_HELLO:
		proto_fatal(p, ops, ctx, TD_E_STATE, 0, f->arg, 0, "second HELLO");
		return -1;
	case TD_ATTACH: {
		struct td_attach a;
		if (td_attach_decode(f, &a) < 0) {
			proto_fatal(p, ops, ctx, TD_E_BAD_FRAME, 0, f->arg, 0, "malformed ATTACH");
			return -1;
		}
		int r = ops->attach(ctx, f->arg, &a);
		if (r < 0) {
			proto_fatal(p, ops, ctx, (uint32_t)-r, 0, f->arg, 0, "attach failed");
			return -1;
		}
		return 1;
	}
	case TD_DETACH:
		if (f->body_len) {
			proto_fatal(p, ops, ctx, TD_E_BAD_FRAME, f->chan, f->arg, 0, "DETACH has a body");
			return -1;
		}
		ops->detach(ctx, f->chan, f->arg);
		return 1;
	case TD_DATA:
	case TD_DATA_BATCH:
		return produce(p, f, ops, ctx);
	case TD_PING:
		if (f->body_len > TD_PING_MAX || f->chan) {
			proto_fatal(p, ops, ctx, TD_E_BAD_FRAME, f->chan, f->arg, 0, "malformed PING");
			return -1;
		}
		td_put_hdr(out, f->len, TD_PONG, 0, 0, f->arg);
		memcpy(out + TD_HDR_SIZE, f->body, f->body_len);
		ops->emit(ctx, out, f->len);
		return 1;
	case TD_BYE:
		if (f->body_len || f->chan || f->arg) { /* §3: chan and arg 0, empty */
			proto_fatal(p, ops, ctx, TD_E_BAD_FRAME, f->chan, f->arg, 0, "malformed BYE");
			return -1;
		}
		ops->bye(ctx);
		p->state = PROTO_CLOSED;
		return -1;
	case TD_STATE_GET:
	case TD_UNSUBSCRIBE:
		if (f->body_len) {
			proto_fatal(p, ops, ctx, TD_E_BAD_FRAME, f->chan, f->arg, 0,
				    f->type == TD_STATE_GET ? "STATE_GET has a body"
							    : "UNSUBSCRIBE has a body");
			return -1;
		}
		if (f->type == TD_STATE_GET)
			ops->state_get(ctx, f->chan, f->arg);
		else
			ops->unsubscribe(ctx, f->chan, f->arg);
		return 1;
	case TD_SUBSCRIBE:
		if (f->body_len != TD_SUBSCRIBE_BODY || td_get32(f->body + 4) != 0) {
			proto_fatal(p, ops, ctx, TD_E_BAD_FRAME, f->chan, f->arg, 0, "malformed SUBSCRIBE");
			return -1;
		}
		ops->subscribe(ctx, f->chan, f->arg, td_get32(f->body));
		return 1;
	case TD_STATE_WRITE: {
		if (f->arg) {
			proto_fatal(p, ops, ctx, TD_E_BAD_FRAME, f->chan, 0, 0, "STATE_WRITE arg must be 0");
			return -1;
		}
		uint32_t err = 0;
		int r = ops->state_write(ctx, f->chan, f->body, f->body_len, &err);
		if (r < 0) {
			proto_fatal(p, ops, ctx, (uint32_t)-r, f->chan, 0, err, "image refused");
			return -1;
		}
		return 1;
	}
	case TD_WELCOME:
	case TD_ATTACHED:
	case TD_DETACHED:
	case TD_ACK:
	case TD_DROPPED:
	case TD_PONG:
	case TD_ERROR:
	case TD_STATE:
	case TD_SUBSCRIBED:
	case TD_UNSUBSCRIBED:
		proto_fatal(p, ops, ctx, TD_E_BAD_TYPE, f->chan, f->arg, 0,
			    "frame type only the server sends");
		return -1;
	default:
		proto_fatal(p, ops, ctx, TD_E_BAD_TYPE, f->chan, f->arg, 0, "unknown frame type");
		return -1;
	}
}

size_t proto_input(struct proto *p, const uint8_t *buf, size_t len, const struct proto_ops *ops,
		   void *ctx)
{
	size_t used = 0;
	p->blocked = false;
	p->held = false;
	while (p->state != PROTO_CLOSED && !p->blocked) {
		struct td_frame f;
		int n = td_frame_parse(buf + used, len - used, p->max_in, &f);
		if (n == 0)
			break;
		if (n < 0) {
			proto_fatal(p, ops, ctx, (uint32_t)-n, 0, 0, 0,
				    n == -TD_E_TOO_LARGE ? "frame longer than max_frame"
							 : "frame length below 16");
			break;
		}
		if (ops->hold && ops->hold(ctx)) {
			p->held = true; /* a whole frame waits: keep it */
			break;
		}
		int r = dispatch(p, &f, ops, ctx);
		if (r == 0)
			break; /* blocked inside this frame: keep it */
		used += (size_t)n;
		p->resume = 0;
		p->resume_off = 0;
		if (r < 0)
			break;
	}
	return used;
}
