/* SPDX-License-Identifier: MIT */
/* frame.c - see frame.h. */
#include "frame.h"

#include <errno.h>
#include <string.h>

int td_frame_parse(const uint8_t *buf, size_t avail, uint32_t max_frame, struct td_frame *f)
{
	if (avail < 4)
		return 0;
	uint32_t len = td_get32(buf);
	if (len < TD_HDR_SIZE)
		return -TD_E_BAD_FRAME;
	if (len > max_frame)
		return -TD_E_TOO_LARGE;
	if (avail < len)
		return 0;
	f->len = len;
	f->type = td_get16(buf + 4);
	f->flags = td_get16(buf + 6);
	f->chan = td_get32(buf + 8);
	f->arg = td_get32(buf + 12);
	f->body = buf + TD_HDR_SIZE;
	f->body_len = len - TD_HDR_SIZE;
	return (int)len;
}

int td_hello_decode(const struct td_frame *f, struct td_hello *h)
{
	if (f->body_len < TD_HELLO_BODY || f->body_len > TD_HELLO_BODY + TD_CLIENT_NAME_MAX ||
	    f->chan != 0 || td_get16(f->body + 2) != 0)
		return -TD_E_BAD_FRAME;
	h->version = td_get16(f->body);
	h->max_frame = td_get32(f->body + 4);
	h->name = f->body + TD_HELLO_BODY;
	h->name_len = f->body_len - TD_HELLO_BODY;
	return 0;
}

int td_attach_decode(const struct td_frame *f, struct td_attach *a)
{
	const uint8_t *b = f->body;
	if (f->body_len < TD_ATTACH_BODY || f->chan != 0)
		return -TD_E_BAD_FRAME;
	uint16_t name_len = td_get16(b + 30);
	if (f->body_len != TD_ATTACH_BODY + (uint32_t)name_len || b[29] != 0)
		return -TD_E_BAD_FRAME;
	a->role = td_get16(b);
	a->flags = td_get16(b + 2);
	a->lanes = td_get32(b + 4);
	a->capacity = td_get64(b + 8);
	a->max_record = td_get32(b + 16);
	a->mode = td_get32(b + 20);
	a->queue_limit = td_get32(b + 24);
	a->slow = b[28];
	if (a->role < TD_ROLE_PRODUCE || a->role > TD_ROLE_STATE_WRITE || (a->flags & ~TD_A_KNOWN) ||
	    a->slow > TD_SLOW_DROP_OLDEST)
		return -TD_E_BAD_FRAME;
	/* An impossible name is a takt error (INVALID), reported without closing. */
	if (name_len > TAKT_NAME_MAX)
		name_len = 0;
	memcpy(a->name, b + TD_ATTACH_BODY, name_len);
	a->name[name_len] = '\0';
	if (memchr(b + TD_ATTACH_BODY, 0, name_len))
		a->name[0] = '\0';
	return 0;
}

int td_batch_validate(const struct td_frame *f)
{
	uint32_t n = f->arg, off = 0;
	if (n == 0 || n > f->body_len / TD_BATCH_REC_HDR)
		return -TD_E_BAD_FRAME;
	for (uint32_t i = 0; i < n; i++) {
		if (f->body_len - off < TD_BATCH_REC_HDR)
			return -TD_E_BAD_FRAME;
		uint32_t len = td_get32(f->body + off);
		off += TD_BATCH_REC_HDR;
		if (len > f->body_len - off)
			return -TD_E_BAD_FRAME;
		off += len;
	}
	return off == f->body_len ? 0 : -TD_E_BAD_FRAME;
}

void td_batch_next(const struct td_frame *f, uint32_t *off, struct takt_msg *m)
{
	const uint8_t *p = f->body + *off;
	m->len = td_get32(p);
	m->type = td_get32(p + 4);
	m->data = p + TD_BATCH_REC_HDR;
	m->lane = 0;
	m->reserved_ = 0;
	*off += TD_BATCH_REC_HDR + m->len;
}

size_t td_enc_welcome(uint8_t *out, uint32_t req, uint32_t max_frame, uint32_t max_attach,
		      uint32_t queue_limit, uint32_t uid, uint32_t gid, uint32_t pid)
{
	uint8_t *b = out + TD_HDR_SIZE;
	td_put_hdr(out, TD_HDR_SIZE + TD_WELCOME_BODY, TD_WELCOME, 0, 0, req);
	memset(b, 0, TD_WELCOME_BODY);
	td_put16(b, TD_PROTO_VERSION);
	td_put32(b + 4, max_frame);
	td_put32(b + 8, max_attach);
	td_put32(b + 12, queue_limit);
	td_put32(b + 16, uid);
	td_put32(b + 20, gid);
	td_put32(b + 24, pid);
	td_put32(b + 28, TD_FEAT_STATE);
	return TD_HDR_SIZE + TD_WELCOME_BODY;
}

size_t td_enc_error(uint8_t *out, uint16_t flags, uint32_t chan, uint32_t req, uint32_t code,
		    uint32_t sys_errno, const char *msg)
{
	size_t n = msg ? strnlen(msg, TD_ERROR_MSG_MAX) : 0;
	uint32_t len = (uint32_t)(TD_HDR_SIZE + TD_ERROR_BODY + n);
	td_put_hdr(out, len, TD_ERROR, flags, chan, req);
	td_put32(out + TD_HDR_SIZE, code);
	td_put32(out + TD_HDR_SIZE + 4, sys_errno);
	if (n)
		memcpy(out + TD_HDR_SIZE + TD_ERROR_BODY, msg, n);
	return len;
}

size_t td_enc_u64s(uint8_t *out, uint16_t type, uint32_t chan, uint32_t arg, uint64_t a, uint64_t b,
		   unsigned count)
{
	uint32_t len = TD_HDR_SIZE + 8u * count;
	td_put_hdr(out, len, type, 0, chan, arg);
	td_put64(out + TD_HDR_SIZE, a);
	if (count > 1)
		td_put64(out + TD_HDR_SIZE + 8, b);
	return len;
}

size_t td_enc_empty(uint8_t *out, uint16_t type, uint32_t chan, uint32_t arg)
{
	td_put_hdr(out, TD_HDR_SIZE, type, 0, chan, arg);
	return TD_HDR_SIZE;
}

uint32_t td_errno_code(int e)
{
	switch (-e) {
	case EINVAL: return TD_E_INVALID;
	case EEXIST: return TD_E_EXISTS;
	case ENOENT: return TD_E_NOENT;
	case EACCES: case EPERM: return TD_E_ACCESS;
	case ENOSPC: return TD_E_NOSPC;
	case EAGAIN: return TD_E_AGAIN;
	case EMSGSIZE: return TD_E_MSGSIZE;
	case EBADMSG: return TD_E_BADMSG;
	case EPROTONOSUPPORT: return TD_E_LAYOUT;
	case EBUSY: return TD_E_BUSY;
	case ETIMEDOUT: return TD_E_TIMEDOUT;
	case ENOMEM: return TD_E_NOMEM;
	case EPROTOTYPE: return TD_E_KIND;
	default: return TD_E_SYSTEM;
	}
}

uint32_t td_code_errno(uint32_t code)
{
	switch (code) {
	case TD_E_DENIED: return EACCES;
	case TD_E_INVALID: return EINVAL;
	case TD_E_EXISTS: return EEXIST;
	case TD_E_NOENT: return ENOENT;
	case TD_E_ACCESS: return EACCES;
	case TD_E_NOSPC: return ENOSPC;
	case TD_E_AGAIN: return EAGAIN;
	case TD_E_MSGSIZE: return EMSGSIZE;
	case TD_E_BADMSG: return EBADMSG;
	case TD_E_LAYOUT: return EPROTONOSUPPORT;
	case TD_E_BUSY: return EBUSY;
	case TD_E_TIMEDOUT: return ETIMEDOUT;
	case TD_E_NOMEM: return ENOMEM;
	case TD_E_KIND: return EPROTOTYPE;
	default: return 0;
	}
}

const char *td_err_name(uint32_t code)
{
	switch (code) {
	case TD_E_BAD_FRAME: return "BAD_FRAME";
	case TD_E_BAD_TYPE: return "BAD_TYPE";
	case TD_E_TOO_LARGE: return "TOO_LARGE";
	case TD_E_STATE: return "STATE";
	case TD_E_VERSION: return "VERSION";
	case TD_E_BAD_CHANNEL: return "BAD_CHANNEL";
	case TD_E_DENIED: return "DENIED";
	case TD_E_SLOW_CONSUMER: return "SLOW_CONSUMER";
	case TD_E_LIMIT: return "LIMIT";
	case TD_E_SHUTDOWN: return "SHUTDOWN";
	case TD_E_INVALID: return "INVALID";
	case TD_E_EXISTS: return "EXISTS";
	case TD_E_NOENT: return "NOENT";
	case TD_E_ACCESS: return "ACCESS";
	case TD_E_NOSPC: return "NOSPC";
	case TD_E_AGAIN: return "AGAIN";
	case TD_E_MSGSIZE: return "MSGSIZE";
	case TD_E_BADMSG: return "BADMSG";
	case TD_E_LAYOUT: return "LAYOUT";
	case TD_E_BUSY: return "BUSY";
	case TD_E_TIMEDOUT: return "TIMEDOUT";
	case TD_E_NOMEM: return "NOMEM";
	case TD_E_KIND: return "KIND";
	case TD_E_SYSTEM: return "SYSTEM";
	default: return "UNKNOWN";
	}
}
