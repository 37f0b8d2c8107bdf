/* SPDX-License-Identifier: MIT */
/*
 * frame.h - the pure frame parser: bytes in, frames or protocol errors out.
 * No I/O, no allocation, no global state (fuzzed by tests/taktd/fuzz).
 */
#ifndef TAKTD_FRAME_H
#define TAKTD_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "takt.h"
#include "wire.h"

struct td_frame {
	uint32_t len; /* whole frame, header included */
	uint16_t type;
	uint16_t flags;
	uint32_t chan;
	uint32_t arg;
	const uint8_t *body;
	uint32_t body_len;
};

/*
 * Parse one frame header at buf[0..avail).  Returns the frame length (> 0)
 * when a whole frame is present, 0 when more bytes are needed, or
 * -TD_E_BAD_FRAME / -TD_E_TOO_LARGE when the length is impossible (checked
 * as soon as the 4 length bytes are in, before the body arrives).
 */
int td_frame_parse(const uint8_t *buf, size_t avail, uint32_t max_frame, struct td_frame *f);

struct td_hello {
	uint16_t version;
	uint32_t max_frame;
	const uint8_t *name; /* client name, not NUL-terminated */
	uint32_t name_len;
};
/* 0 or -TD_E_*. */
int td_hello_decode(const struct td_frame *f, struct td_hello *h);

struct td_attach {
	uint16_t role;
	uint16_t flags;
	uint32_t lanes;
	uint64_t capacity;
	uint32_t max_record;
	uint32_t mode;
	uint32_t queue_limit;
	uint8_t slow;
	char name[TAKT_NAME_MAX + 1]; /* NUL-terminated copy */
};
int td_attach_decode(const struct td_frame *f, struct td_attach *a);

/* Check a DATA_BATCH body: arg records (>= 1) exactly fill it.  0 or -TD_E_BAD_FRAME. */
int td_batch_validate(const struct td_frame *f);
/* Decode record *idx at byte offset *off of a validated batch; advances both. */
void td_batch_next(const struct td_frame *f, uint32_t *off, struct takt_msg *m);

/* Encoders: write a whole frame into out (which has room); return its length. */
size_t td_enc_welcome(uint8_t *out, uint32_t req, uint32_t max_frame, uint32_t max_attach,
		      uint32_t queue_limit, uint32_t uid, uint32_t gid, uint32_t pid);
size_t td_enc_error(uint8_t *out, uint16_t flags, uint32_t chan, uint32_t req, uint32_t code,
		    uint32_t sys_errno, const char *msg);
size_t td_enc_u64s(uint8_t *out, uint16_t type, uint32_t chan, uint32_t arg, uint64_t a, uint64_t b,
		   unsigned count);
size_t td_enc_empty(uint8_t *out, uint16_t type, uint32_t chan, uint32_t arg);

/* Map a negative errno from libtakt to a protocol error code. */
uint32_t td_errno_code(int neg_errno);
/* The errno PROTOCOL.md §7 documents for an ERROR code: EINVAL for INVALID,
 * ..., EACCES for DENIED and ACCESS; 0 for the other protocol errors and
 * for SYSTEM (whose errno only the failing call knows). */
uint32_t td_code_errno(uint32_t code);
const char *td_err_name(uint32_t code);

#endif
