/* SPDX-License-Identifier: MIT */
/*
 * fuzz_proto.c - libFuzzer target for taktd's frame parser and protocol
 * state machine (src/taktd/frame.c, proto.c) and its policy parser.
 *
 * Input layout: byte 0 = chunking seed, byte 1 = behaviour bits of the stub
 * operations (deny HELLO, block producers, fail attaches, refuse large
 * state images, fail producing with a system error), byte 2 = policy
 * text length; then the policy text; the rest is the client's byte stream,
 * fed in chunks as a socket would deliver it.  Every frame the state machine
 * emits is checked for a well-formed header.  Build with
 * scripts/fuzz-taktd.sh.
 */
#undef NDEBUG
#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "policy.h"
#include "proto.h"

struct ctx {
	uint8_t bits;
	unsigned calls;
	uint32_t next_id;
	uint32_t ids[8];
	unsigned nids;
	bool closed_emitted;
};

static void emit(void *c_, const void *frame, size_t len)
{
	struct ctx *c = c_;
	const uint8_t *f = frame;
	assert(len >= TD_HDR_SIZE);
	assert(td_get32(f) == len);
	assert(!c->closed_emitted); /* nothing after a fatal ERROR */
	if (td_get16(f + 4) == TD_ERROR && (td_get16(f + 6) & TD_F_FATAL)) {
		c->closed_emitted = true;
		/* A fatal ERROR carries the errno PROTOCOL.md §7 documents. */
		assert(len >= TD_HDR_SIZE + TD_ERROR_BODY);
		uint32_t code = td_get32(f + TD_HDR_SIZE), err = td_get32(f + TD_HDR_SIZE + 4);
		assert(err == td_code_errno(code) || (code == TD_E_SYSTEM && err != 0));
	}
}

static int hello(void *c_, uint32_t req, const struct td_hello *h, uint32_t max_out)
{
	struct ctx *c = c_;
	uint8_t out[TD_HDR_SIZE + TD_WELCOME_BODY];
	(void)h;
	assert(max_out >= TD_MIN_FRAME);
	if (c->bits & 1)
		return -TD_E_DENIED;
	emit(c, out, td_enc_welcome(out, req, 1u << 16, 8, 4096, 0, 0, 1));
	return 0;
}

static int attach(void *c_, uint32_t req, const struct td_attach *a)
{
	struct ctx *c = c_;
	uint8_t out[TD_HDR_SIZE + TD_ERROR_BODY + TD_ERROR_MSG_MAX];
	assert(strlen(a->name) <= TAKT_NAME_MAX);
	if ((c->bits & 2) || c->nids == 8) {
		emit(c, out, td_enc_error(out, 0, 0, req, TD_E_NOENT, 0, a->name));
		return 0;
	}
	c->ids[c->nids++] = ++c->next_id;
	emit(c, out, td_enc_empty(out, TD_ATTACHED, c->next_id, req));
	return 0;
}

static void detach(void *c_, uint32_t chan, uint32_t req)
{
	struct ctx *c = c_;
	uint8_t out[TD_HDR_SIZE + TD_DETACHED_BODY];
	for (unsigned i = 0; i < c->nids; i++)
		if (c->ids[i] == chan) {
			c->ids[i] = c->ids[--c->nids];
			emit(c, out, td_enc_u64s(out, TD_DETACHED, chan, req, 0, 0, 2));
			return;
		}
	emit(c, out, td_enc_error(out, 0, chan, req, TD_E_BAD_CHANNEL, 0, "x"));
}

static int produce(void *c_, uint32_t chan, const struct takt_msg *m, unsigned n, bool *blocked,
		   uint32_t *sys_errno)
{
	struct ctx *c = c_;
	bool known = false;
	for (unsigned i = 0; i < c->nids; i++)
		known |= c->ids[i] == chan;
	if (!known)
		return -TD_E_BAD_CHANNEL;
	assert(n >= 1 && n <= 64);
	volatile uint8_t sink = 0;
	for (unsigned i = 0; i < n; i++) {
		const uint8_t *d = m[i].data;
		for (uint32_t k = 0; k < m[i].len; k++)
			sink ^= d[k]; /* touches every payload byte: ASan checks bounds */
		if (m[i].type >= TAKT_TYPE_RESERVED)
			return -TD_E_INVALID;
	}
	if ((c->bits & 32) && c->calls % 7 == 3) {
		*sys_errno = EIO; /* a system error only the operation knows */
		return -TD_E_SYSTEM;
	}
	(void)sink;
	c->calls++;
	if ((c->bits & 4) && c->calls % 3 == 1) {
		*blocked = true;
		return (int)(c->calls % n); /* 0..n-1 accepted, then blocked */
	}
	if ((c->bits & 8) && c->calls % 5 == 2) {
		*blocked = true; /* the last accepted one went to a waiter */
		return (int)n;
	}
	return (int)n;
}

static bool known_id(struct ctx *c, uint32_t chan)
{
	for (unsigned i = 0; i < c->nids; i++)
		if (c->ids[i] == chan)
			return true;
	return false;
}

/* State channels: a known id gets its answer, an unknown one a non-fatal
 * BAD_CHANNEL, as in taktd. */
static void state_get(void *c_, uint32_t chan, uint32_t req)
{
	struct ctx *c = c_;
	uint8_t out[TD_HDR_SIZE + TD_STATE_BODY + 16];
	if (!known_id(c, chan)) {
		emit(c, out, td_enc_error(out, 0, chan, req, TD_E_BAD_CHANNEL, 0, "x"));
		return;
	}
	td_put_hdr(out, sizeof(out), TD_STATE, 0, chan, req);
	memset(out + TD_HDR_SIZE, 0, sizeof(out) - TD_HDR_SIZE);
	td_put32(out + TD_HDR_SIZE + 24, 16);
	emit(c, out, sizeof(out));
}

static void subscribe(void *c_, uint32_t chan, uint32_t req, uint32_t interval_us)
{
	struct ctx *c = c_;
	uint8_t out[TD_HDR_SIZE + TD_ERROR_BODY + TD_ERROR_MSG_MAX];
	(void)interval_us;
	if (!known_id(c, chan)) {
		emit(c, out, td_enc_error(out, 0, chan, req, TD_E_BAD_CHANNEL, 0, "x"));
		return;
	}
	emit(c, out, td_enc_u64s(out, TD_SUBSCRIBED, chan, req, interval_us, 0, 1));
}

static void unsubscribe(void *c_, uint32_t chan, uint32_t req)
{
	struct ctx *c = c_;
	uint8_t out[TD_HDR_SIZE + TD_ERROR_BODY + TD_ERROR_MSG_MAX];
	if (!known_id(c, chan)) {
		emit(c, out, td_enc_error(out, 0, chan, req, TD_E_BAD_CHANNEL, 0, "x"));
		return;
	}
	emit(c, out, td_enc_u64s(out, TD_UNSUBSCRIBED, chan, req, 0, 0, 1));
}

static int state_write(void *c_, uint32_t chan, const uint8_t *image, uint32_t len,
		       uint32_t *sys_errno)
{
	struct ctx *c = c_;
	if (!known_id(c, chan))
		return -TD_E_BAD_CHANNEL;
	volatile uint8_t sink = 0;
	for (uint32_t k = 0; k < len; k++)
		sink ^= image[k]; /* ASan checks the image bounds */
	(void)sink;
	(void)sys_errno; /* MSGSIZE: proto.c supplies EMSGSIZE */
	if ((c->bits & 16) && len > 100)
		return -TD_E_MSGSIZE;
	return 0;
}

static void bye(void *c_)
{
	uint8_t out[TD_HDR_SIZE];
	emit(c_, out, td_enc_empty(out, TD_BYE, 0, 0));
}

static const struct proto_ops ops = {
	.emit = emit, .hello = hello, .attach = attach, .detach = detach, .produce = produce, .bye = bye,
	.state_get = state_get, .subscribe = subscribe, .unsubscribe = unsubscribe,
	.state_write = state_write,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 3)
		return 0;
	uint8_t seed = data[0];
	struct ctx c = { .bits = data[1] };
	size_t plen = data[2];
	data += 3;
	size -= 3;
	if (plen > size)
		plen = size;

	/* The policy parser takes the first plen bytes as text. */
	char *text = malloc(plen + 1);
	memcpy(text, data, plen);
	text[plen] = '\0';
	struct policy pol;
	char err[128];
	policy_init(&pol, 0);
	if (policy_parse(&pol, text, err, sizeof(err)) == 0) {
		static const gid_t groups[] = { 2, 3, 100 };
		const struct policy_peer who = { .uid = 1, .gid = 1, .groups = groups, .ngroups = 3 };
		(void)policy_admits(&pol, &who);
		(void)policy_allows(&pol, &who, "abc", POL_CONSUME);
	}
	policy_free(&pol);
	free(text);
	data += plen;
	size -= plen;

	struct proto p;
	proto_init(&p, 1u << 16);
	uint8_t *buf = malloc(size + 1);
	size_t have = 0, fed = 0;
	unsigned rounds = 0;
	while (p.state != PROTO_CLOSED && rounds++ < 100000) {
		size_t chunk = (size_t)(seed % 61) + 1;
		seed = (uint8_t)(seed * 37 + 11);
		if (fed < size) {
			if (chunk > size - fed)
				chunk = size - fed;
			memcpy(buf + have, data + fed, chunk);
			have += chunk;
			fed += chunk;
		}
		size_t used = proto_input(&p, buf, have, &ops, &c);
		assert(used <= have);
		memmove(buf, buf + used, have - used);
		have -= used;
		if (fed == size && !used && !p.blocked)
			break;
	}
	if (p.state != PROTO_CLOSED)
		proto_eof(&p, have, &ops, &c);
	free(buf);
	return 0;
}

#ifdef FUZZ_STANDALONE
/* Replay files given on the command line (no libFuzzer, e.g. with gcc). */
#include <stdio.h>
int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		FILE *f = fopen(argv[i], "rb");
		if (!f)
			return 1;
		static uint8_t d[1 << 20];
		size_t n = fread(d, 1, sizeof(d), f);
		fclose(f);
		LLVMFuzzerTestOneInput(d, n);
	}
	return 0;
}
#endif
