/* SPDX-License-Identifier: MIT */
/*
 * wire.h - the taktd protocol on the wire (docs/PROTOCOL.md is normative).
 * Little-endian, length-prefixed frames over a Unix stream socket.
 */
#ifndef TAKTD_WIRE_H
#define TAKTD_WIRE_H

#include <stdint.h>
#include <string.h>

#define TD_PROTO_VERSION 1u
#define TD_HDR_SIZE 16u
/* Largest frame either side may send before HELLO/WELCOME is exchanged. */
#define TD_PRE_HELLO_MAX 1024u
/* The smallest max_frame a client may announce. */
#define TD_MIN_FRAME 4096u
#define TD_DEFAULT_MAX_FRAME (4u << 20)
#define TD_PING_MAX 256u
#define TD_CLIENT_NAME_MAX 64u

/* Frame types. */
enum td_type {
	TD_HELLO = 0x0001,
	TD_WELCOME = 0x0002,
	TD_ATTACH = 0x0003,
	TD_ATTACHED = 0x0004,
	TD_DETACH = 0x0005,
	TD_DETACHED = 0x0006,
	TD_DATA = 0x0010,
	TD_DATA_BATCH = 0x0011,
	TD_ACK = 0x0012,
	TD_DROPPED = 0x0013,
	TD_PING = 0x0020,
	TD_PONG = 0x0021,
	TD_ERROR = 0x0030,
	TD_BYE = 0x0040,
	/* state channels (additions to version 1; WELCOME feature TD_FEAT_STATE) */
	TD_STATE_GET = 0x0050,
	TD_STATE = 0x0051,
	TD_SUBSCRIBE = 0x0052,
	TD_SUBSCRIBED = 0x0053,
	TD_UNSUBSCRIBE = 0x0054,
	TD_UNSUBSCRIBED = 0x0055,
	TD_STATE_WRITE = 0x0056,
};

/* Header flags. */
#define TD_F_FATAL 0x0001u  /* ERROR: the server closes the connection after it */
#define TD_F_UPDATE 0x0002u /* STATE: a subscription update (not a STATE_GET answer) */

/* WELCOME features (body offset 28). */
#define TD_FEAT_STATE 0x0001u /* state channels: roles 3 and 4, frames 0x0050..0x0056 */

/* ATTACH roles and flags. */
enum { TD_ROLE_PRODUCE = 1, TD_ROLE_CONSUME = 2, TD_ROLE_STATE_READ = 3, TD_ROLE_STATE_WRITE = 4 };
#define TD_A_CREATE 0x0001u
#define TD_A_EXCL 0x0002u
#define TD_A_KNOWN (TD_A_CREATE | TD_A_EXCL)
/* Slow-consumer policies. */
enum { TD_SLOW_DEFAULT = 0, TD_SLOW_DISCONNECT = 1, TD_SLOW_DROP_OLDEST = 2 };

#define TD_HELLO_BODY 8u
#define TD_WELCOME_BODY 32u
#define TD_ATTACH_BODY 32u /* fixed part; the name follows */
#define TD_ATTACHED_BODY 32u
#define TD_DETACHED_BODY 16u
#define TD_ACK_BODY 8u
#define TD_DROPPED_BODY 16u
#define TD_ERROR_BODY 8u /* fixed part; the message follows */
#define TD_BATCH_REC_HDR 8u
#define TD_ERROR_MSG_MAX 256u
#define TD_STATE_BODY 32u /* fixed part; the image follows */
#define TD_SUBSCRIBE_BODY 8u
#define TD_SUBSCRIBED_BODY 8u
#define TD_UNSUBSCRIBED_BODY 8u
/* Shortest subscription interval the server grants, in microseconds. */
#define TD_MIN_INTERVAL_US 1000u

/* Error codes (ERROR frame, u32 at body offset 0). */
enum td_err {
	/* protocol errors: always fatal */
	TD_E_BAD_FRAME = 1,     /* bad length, nonzero reserved bits, malformed body, truncated */
	TD_E_BAD_TYPE = 2,      /* unknown type, or a type the client must not send */
	TD_E_TOO_LARGE = 3,     /* length above the negotiated maximum */
	TD_E_STATE = 4,         /* frame not allowed in this state (before HELLO, second HELLO) */
	TD_E_VERSION = 5,       /* unsupported protocol version */
	TD_E_BAD_CHANNEL = 6,   /* unknown channel id, or the wrong role for this frame */
	TD_E_DENIED = 7,        /* policy refuses (fatal at HELLO, not at ATTACH) */
	TD_E_SLOW_CONSUMER = 8, /* disconnected for falling behind */
	TD_E_LIMIT = 9,         /* too many attachments on this connection */
	TD_E_SHUTDOWN = 10,     /* the server is stopping */
	/* takt's errno values */
	TD_E_INVALID = 20,   /* -EINVAL */
	TD_E_EXISTS = 21,    /* -EEXIST */
	TD_E_NOENT = 22,     /* -ENOENT */
	TD_E_ACCESS = 23,    /* -EACCES */
	TD_E_NOSPC = 24,     /* -ENOSPC */
	TD_E_AGAIN = 25,     /* -EAGAIN: channel not ready yet */
	TD_E_MSGSIZE = 26,   /* -EMSGSIZE */
	TD_E_BADMSG = 27,    /* -EBADMSG: corrupted channel or lane */
	TD_E_LAYOUT = 28,    /* -EPROTONOSUPPORT: segment layout version */
	TD_E_BUSY = 29,      /* -EBUSY */
	TD_E_TIMEDOUT = 30,  /* -ETIMEDOUT */
	TD_E_NOMEM = 31,     /* -ENOMEM */
	TD_E_KIND = 32,      /* -EPROTOTYPE: not a queue channel (a state channel) */
	TD_E_SYSTEM = 99,    /* any other errno (in the errno field) */
};

static inline void td_put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static inline void td_put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}
static inline void td_put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint16_t td_get16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static inline uint32_t td_get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t td_get64(const uint8_t *p)
{
	return (uint64_t)td_get32(p) | (uint64_t)td_get32(p + 4) << 32;
}

static inline void td_put_hdr(uint8_t *p, uint32_t len, uint16_t type, uint16_t flags, uint32_t chan,
			      uint32_t arg)
{
	td_put32(p, len);
	td_put16(p + 4, type);
	td_put16(p + 6, flags);
	td_put32(p + 8, chan);
	td_put32(p + 12, arg);
}

#endif
