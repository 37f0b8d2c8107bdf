/* SPDX-License-Identifier: MIT */
/*
 * server.c - the event loop: accept, read and parse, protocol operations,
 * fan-out into send buffers, write, close, and the SIGTERM drain.
 */
#include <errno.h>
#include <linux/sockios.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "server.h"

#define RX_INIT (64u << 10)
#define RX_SLACK (64u << 10)
#define TX_HIGH (256u << 10)        /* fill the send buffer from queues up to this */
#define TX_STOP_READING (1u << 20)  /* stop reading a client whose replies pile up */
#define FRAME_OUT_MAX (256u << 10)  /* largest DATA_BATCH the server builds */
#define CLOSE_GRACE_MS 2000

uint64_t td_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static size_t tx_pending(const struct conn *c) { return c->tx_len - c->tx_head; }

/* Room for len more bytes at the end of the send buffer; NULL if out of memory. */
static uint8_t *tx_reserve(struct conn *c, size_t len)
{
	if (c->tx_head && c->tx_head == c->tx_len)
		c->tx_head = c->tx_len = 0;
	if (c->tx_cap - c->tx_len < len && c->tx_head) {
		memmove(c->tx, c->tx + c->tx_head, c->tx_len - c->tx_head);
		c->tx_len -= c->tx_head;
		c->tx_head = 0;
	}
	if (c->tx_cap - c->tx_len < len) {
		size_t cap = c->tx_cap ? c->tx_cap : 4096;
		while (cap - c->tx_len < len)
			cap *= 2;
		uint8_t *t = realloc(c->tx, cap);
		if (!t)
			return NULL;
		c->tx = t;
		c->tx_cap = cap;
	}
	uint8_t *p = c->tx + c->tx_len;
	c->tx_len += len;
	c->tx_total += len;
	return p;
}

static void conn_acks(struct conn *c);

static void op_emit(void *ctx, const void *frame, size_t len)
{
	struct conn *c = ctx;
	const uint8_t *f = frame;
	if (td_get16(f + 4) == TD_ERROR && (td_get16(f + 6) & TD_F_FATAL))
		conn_acks(c); /* tell what was committed before the last word */
	uint8_t *p = tx_reserve(c, len);
	if (p)
		memcpy(p, frame, len);
	else
		c->dead = true; /* closed at the next flush */
	conn_mark_dirty(c);
}

static void emit_error(struct conn *c, uint32_t chan, uint32_t req, uint32_t code, int sys_errno,
		       const char *msg)
{
	uint8_t out[TD_HDR_SIZE + TD_ERROR_BODY + TD_ERROR_MSG_MAX];
	op_emit(c, out, td_enc_error(out, 0, chan, req, code, (uint32_t)sys_errno, msg));
}

static void conn_acks(struct conn *c)
{
	uint8_t out[TD_HDR_SIZE + TD_ACK_BODY];
	for (struct attach *a = c->attaches; a; a = a->next)
		if ((a->role == TD_ROLE_PRODUCE || a->role == TD_ROLE_STATE_WRITE) &&
		    a->committed != a->acked) {
			a->acked = a->committed;
			uint8_t *p = tx_reserve(c, sizeof(out));
			if (p)
				td_enc_u64s(p, TD_ACK, a->id, 0, a->committed, 0, 1);
		}
}

struct attach *conn_find(struct conn *c, uint32_t id)
{
	for (struct attach *a = c->attaches; a; a = a->next)
		if (a->id == id)
			return a;
	return NULL;
}

/* ---- protocol operations ------------------------------------------------ */

static int op_hello(void *ctx, uint32_t req, const struct td_hello *h, uint32_t max_out)
{
	struct conn *c = ctx;
	struct server *s = c->srv;
	(void)max_out;
	const struct peer *pe = &c->peer;
	if (!policy_admits(&s->policy, &pe->who)) {
		LOGW("refused uid %u gid %u (%zu supplementary groups%s) pid %d: no policy rule",
		     (unsigned)pe->who.uid, (unsigned)pe->who.gid, pe->groups_total,
		     pe->groups_total > pe->who.ngroups ? ", not consulted: too many" : "",
		     (int)pe->pid);
		return -TD_E_DENIED;
	}
	LOGD("hello from pid %d uid %u (%.*s)", (int)pe->pid, (unsigned)pe->who.uid,
	     (int)h->name_len, (const char *)h->name);
	uint8_t out[TD_HDR_SIZE + TD_WELCOME_BODY];
	op_emit(c, out,
		td_enc_welcome(out, req, s->cfg.max_frame, s->policy.max_attach, s->policy.queue_limit,
			       (uint32_t)pe->who.uid, (uint32_t)pe->who.gid, (uint32_t)getpid()));
	return 0;
}

static int op_attach(void *ctx, uint32_t req, const struct td_attach *a)
{
	struct conn *c = ctx;
	struct server *s = c->srv;
	char msg[TD_ERROR_MSG_MAX];
	bool state = a->role == TD_ROLE_STATE_READ || a->role == TD_ROLE_STATE_WRITE;
	/* Reading a state channel needs `consume`, writing it `produce`. */
	unsigned roles = a->role == TD_ROLE_PRODUCE || a->role == TD_ROLE_STATE_WRITE ? POL_PRODUCE
										      : POL_CONSUME;
	if (a->flags & TD_A_CREATE)
		roles |= POL_CREATE;
	if (!a->name[0]) {
		emit_error(c, 0, req, TD_E_INVALID, EINVAL, "bad channel name");
		return 0;
	}
	if (s->stopping) {
		emit_error(c, 0, req, TD_E_SHUTDOWN, 0, "server is stopping");
		return 0;
	}
	if (!policy_allows(&s->policy, &c->peer.who, a->name, roles)) {
		const struct peer *pe = &c->peer;
		/* (a long name may cut the message: it is for humans) */
		if (snprintf(msg, sizeof(msg), "policy does not allow uid %u to %s%s %s%s",
			 (unsigned)pe->who.uid, a->flags & TD_A_CREATE ? "create and " : "",
			 roles & POL_PRODUCE ? "produce to" : "consume from", a->name,
			 pe->groups_total > pe->who.ngroups
				 ? " (supplementary groups not consulted: too many)"
				 : "") < 0)
			msg[0] = '\0';
		emit_error(c, 0, req, TD_E_DENIED, EACCES, msg);
		return 0;
	}
	if (c->nattach >= s->policy.max_attach) {
		emit_error(c, 0, req, TD_E_LIMIT, 0, "too many attachments on this connection");
		return 0;
	}
	if ((a->flags & TD_A_EXCL) && !(a->flags & TD_A_CREATE)) {
		emit_error(c, 0, req, TD_E_INVALID, EINVAL, "EXCL without CREATE");
		return 0;
	}
	int created = 0, rc = 0;
	if (a->flags & TD_A_CREATE) {
		if (state) {
			struct takt_state_config sc = { .image_size = a->max_record, .mode = a->mode };
			rc = takt_state_create(a->name, &sc);
		} else {
			struct takt_queue_config qc = { .capacity = a->capacity, .lanes = a->lanes,
							.max_record = a->max_record, .mode = a->mode };
			rc = takt_queue_create(a->name, &qc);
		}
		if (rc == 0)
			created = 1;
		else if (rc != -EEXIST || (a->flags & TD_A_EXCL))
			goto fail;
	}
	struct attach *at = calloc(1, sizeof(*at));
	if (!at) {
		rc = -ENOMEM;
		goto fail_created;
	}
	const struct takt_channel_config *cfg;
	uint32_t limit = a->role == TD_ROLE_PRODUCE ? s->cfg.max_frame : c->proto.max_out;
	/* the largest frame this attachment carries, beyond max_record */
	uint32_t extra = TD_HDR_SIZE + TD_BATCH_REC_HDR;
	if (state) {
		struct sbridge *sb;
		rc = sbridge_get(s, a->name, a->role, &sb);
		if (rc < 0)
			goto fail_free;
		at->sb = sb;
		cfg = &sb->cfg;
		if (a->role == TD_ROLE_STATE_WRITE) {
			limit = s->cfg.max_frame;
			extra = TD_HDR_SIZE;
		} else {
			extra = TD_HDR_SIZE + TD_STATE_BODY;
		}
	} else if (a->role == TD_ROLE_PRODUCE) {
		struct pbridge *pb;
		rc = pbridge_get(s, a->name, &pb);
		if (rc < 0)
			goto fail_free;
		at->pb = pb;
		cfg = &pb->cfg;
	} else {
		struct cbridge *cb;
		rc = cbridge_get(s, a->name, &cb);
		if (rc < 0)
			goto fail_free;
		cfg = &cb->cfg;
		at->slow = a->slow ? a->slow : s->policy.slow;
		at->queue_limit = a->queue_limit ? a->queue_limit : s->policy.queue_limit;
		if (at->queue_limit > s->policy.max_queue_limit)
			at->queue_limit = s->policy.max_queue_limit;
		if (at->queue_limit < cfg->max_record + TD_BATCH_REC_HDR)
			at->queue_limit = cfg->max_record + TD_BATCH_REC_HDR;
		cbridge_sub(cb, at);
	}
	if ((uint64_t)cfg->max_record + extra > limit) {
		snprintf(msg, sizeof(msg), "channel %s %u does not fit in max_frame %u",
			 state ? "image_size" : "max_record", cfg->max_record, limit);
		if (at->pb)
			pbridge_put(at->pb);
		else if (at->sb)
			sbridge_put(at->sb);
		else
			cbridge_unsub(at);
		free(at);
		if (created) /* as on every failure: leave nothing behind */
			takt_unlink_stale(a->name);
		emit_error(c, 0, req, TD_E_MSGSIZE, EMSGSIZE, msg);
		return 0;
	}
	at->id = ++c->next_id;
	at->role = a->role;
	at->conn = c;
	at->next = c->attaches;
	c->attaches = at;
	c->nattach++;
	uint8_t out[TD_HDR_SIZE + TD_ATTACHED_BODY];
	uint8_t *b = out + TD_HDR_SIZE;
	td_put_hdr(out, sizeof(out), TD_ATTACHED, 0, at->id, req);
	memset(b, 0, TD_ATTACHED_BODY);
	td_put64(b, state ? cfg->max_record : cfg->capacity);
	td_put32(b + 8, state ? 0 : cfg->lanes);
	td_put32(b + 12, cfg->max_record);
	td_put16(b + 16, (uint16_t)a->role);
	b[18] = (uint8_t)at->slow;
	b[19] = (uint8_t)created;
	td_put32(b + 20, at->queue_limit);
	td_put64(b + 24, cfg->nonce);
	op_emit(c, out, sizeof(out));
	static const char *const role_names[] = { "?", "producer", "consumer", "state reader",
						  "state writer" };
	LOGD("pid %d attached %s as %s, id %u%s", (int)c->peer.pid, a->name, role_names[a->role], at->id,
	     created ? " (created)" : "");
	return 0;

fail_free:
	free(at);
fail_created:
	/* What this ATTACH created, unless somebody attached to it in the
	 * meantime (takt_unlink_stale: never a live channel). */
	if (created)
		takt_unlink_stale(a->name);
fail:
	snprintf(msg, sizeof(msg), "%s: %s", a->name, takt_strerror(rc));
	emit_error(c, 0, req, td_errno_code(rc), -rc, msg);
	return 0;
}

/* ---- state channels --------------------------------------------------- */

#define STATE_OUTQ_MAX (32u << 10) /* unread bytes in a subscriber's socket */

static void sub_remove(struct server *s, struct attach *a)
{
	if (!a->subscribed)
		return;
	if (a->ss_prev)
		a->ss_prev->ss_next = a->ss_next;
	else
		s->subs = a->ss_next;
	if (a->ss_next)
		a->ss_next->ss_prev = a->ss_prev;
	a->ss_next = a->ss_prev = NULL;
	a->subscribed = false;
}

/* Queue a STATE frame with the bridge's current image. */
static bool emit_state(struct conn *c, struct attach *a, uint16_t flags, uint32_t arg)
{
	const struct sbridge *sb = a->sb;
	uint32_t len = sb->info.generation ? sb->info.len : 0;
	uint8_t *p = tx_reserve(c, TD_HDR_SIZE + TD_STATE_BODY + len);
	if (!p) {
		c->dead = true;
		return false;
	}
	uint64_t now = takt_now_ns();
	uint64_t written = sb->info.generation ? sb->info.written_ns : 0;
	td_put_hdr(p, TD_HDR_SIZE + TD_STATE_BODY + len, TD_STATE, flags, a->id, arg);
	uint8_t *b = p + TD_HDR_SIZE;
	td_put64(b, sb->info.generation);
	td_put64(b + 8, written);
	td_put64(b + 16, written && now > written ? now - written : 0);
	td_put32(b + 24, len);
	td_put32(b + 28, 0);
	if (len)
		memcpy(b + TD_STATE_BODY, sb->img, len);
	conn_mark_dirty(c);
	return true;
}

static struct attach *state_attach(struct conn *c, uint32_t chan, uint32_t req)
{
	struct attach *a = conn_find(c, chan);
	if (!a || a->role != TD_ROLE_STATE_READ) {
		emit_error(c, chan, req, TD_E_BAD_CHANNEL, 0,
			   a ? "not a state reader attachment" : "no such channel id");
		return NULL;
	}
	return a;
}

static void op_state_get(void *ctx, uint32_t chan, uint32_t req)
{
	struct conn *c = ctx;
	struct attach *a = state_attach(c, chan, req);
	if (!a)
		return;
	struct sbridge *sb = a->sb;
	int r = sbridge_refresh(sb, takt_now_ns());
	if (r == -EAGAIN && !sb->info.generation) {
		struct takt_state_stats st;
		if (takt_state_stats_get(sb->ch, &st) == 0 && st.writes == 0)
			r = 0; /* nothing published yet: generation 0, empty image */
	}
	if (r < 0) {
		emit_error(c, chan, req, td_errno_code(r), -r,
			   r == -EAGAIN ? "the image changes faster than taktd can copy it; retry"
					: takt_strerror(r));
		return;
	}
	emit_state(c, a, 0, req);
}

static void op_subscribe(void *ctx, uint32_t chan, uint32_t req, uint32_t interval_us)
{
	struct conn *c = ctx;
	struct server *s = c->srv;
	struct attach *a = state_attach(c, chan, req);
	if (!a)
		return;
	if (interval_us < TD_MIN_INTERVAL_US)
		interval_us = TD_MIN_INTERVAL_US;
	a->interval_ns = (uint64_t)interval_us * 1000;
	a->sub_req = req;
	/* The first update goes now, unless one went less than an interval ago. */
	uint64_t now = takt_now_ns();
	a->next_ns = a->updates && a->last_ns + a->interval_ns > now ? a->last_ns + a->interval_ns : now;
	if (!a->subscribed) {
		a->subscribed = true;
		a->ss_prev = NULL;
		a->ss_next = s->subs;
		if (s->subs)
			s->subs->ss_prev = a;
		s->subs = a;
	}
	uint8_t out[TD_HDR_SIZE + TD_SUBSCRIBED_BODY];
	td_put_hdr(out, sizeof(out), TD_SUBSCRIBED, 0, chan, req);
	td_put32(out + TD_HDR_SIZE, interval_us);
	td_put32(out + TD_HDR_SIZE + 4, 0);
	op_emit(c, out, sizeof(out));
}

static void op_unsubscribe(void *ctx, uint32_t chan, uint32_t req)
{
	struct conn *c = ctx;
	struct attach *a = state_attach(c, chan, req);
	if (!a)
		return;
	sub_remove(c->srv, a);
	uint8_t out[TD_HDR_SIZE + TD_UNSUBSCRIBED_BODY];
	op_emit(c, out, td_enc_u64s(out, TD_UNSUBSCRIBED, chan, req, a->updates, 0, 1));
}

static int op_state_write(void *ctx, uint32_t chan, const uint8_t *image, uint32_t len,
			  uint32_t *sys_errno)
{
	struct conn *c = ctx;
	struct attach *a = conn_find(c, chan);
	if (!a || a->role != TD_ROLE_STATE_WRITE)
		return -TD_E_BAD_CHANNEL;
	if (len > a->sb->image_size)
		return -TD_E_MSGSIZE;
	int r = takt_state_write(a->sb->wr, image, len);
	if (r < 0) {
		*sys_errno = (uint32_t)-r;
		return -(int)td_errno_code(r);
	}
	a->committed++;
	return 0;
}

/* Subscriptions: look at each subscribed channel once per interval and
 * queue the newest image if it is newer than the last one sent, unless the
 * previous update has not left taktd yet or the client has not read what
 * its socket holds (per-client coalescing: a slow client gets the newest
 * image later, never a backlog, and never slows anybody). */
static void state_tick(struct server *s)
{
	if (!s->subs)
		return;
	uint64_t now = takt_now_ns();
	for (struct attach *a = s->subs; a; a = a->ss_next) {
		if (now < a->next_ns)
			continue;
		a->next_ns = now + a->interval_ns;
		struct conn *c = a->conn;
		if (c->closing || c->dead || c->proto.state != PROTO_READY)
			continue;
		if (a->update_end > c->tx_sent)
			continue; /* the previous update is still in our buffer */
		int outq = 0;
		if (ioctl(c->fd, SIOCOUTQ, &outq) == 0 && outq > (int)STATE_OUTQ_MAX)
			continue; /* the client is not reading */
		if (sbridge_refresh(a->sb, now) < 0 || a->sb->info.generation <= a->sent_gen)
			continue;
		if (!emit_state(c, a, TD_F_UPDATE, a->sub_req))
			continue;
		a->sent_gen = a->sb->info.generation;
		a->last_ns = now;
		a->updates++;
		a->update_end = c->tx_total;
	}
}

/* The loop's wait timeout, shortened to the next subscription look. */
static int state_timeout(struct server *s, int timeout)
{
	if (!s->subs || timeout == 0)
		return timeout;
	uint64_t now = takt_now_ns(), next = UINT64_MAX;
	for (struct attach *a = s->subs; a; a = a->ss_next)
		if (a->next_ns < next)
			next = a->next_ns;
	if (next <= now)
		return 0;
	uint64_t ms = (next - now + 999999) / 1000000;
	if (ms > INT32_MAX)
		ms = INT32_MAX;
	return timeout < 0 || (int)ms < timeout ? (int)ms : timeout;
}

static void attach_drop(struct conn *c, struct attach *a)
{
	for (struct attach **pp = &c->attaches; *pp; pp = &(*pp)->next)
		if (*pp == a) {
			*pp = a->next;
			break;
		}
	if (c->rr == a)
		c->rr = NULL;
	c->nattach--;
	if (a->pb) {
		pbridge_put(a->pb);
	} else if (a->cb) {
		cbridge_unsub(a);
	} else if (a->sb) {
		sub_remove(c->srv, a);
		sbridge_put(a->sb);
	}
	attach_free_spans(a);
	free(a);
}

static void op_detach(void *ctx, uint32_t chan, uint32_t req)
{
	struct conn *c = ctx;
	struct attach *a = conn_find(c, chan);
	if (!a) {
		emit_error(c, chan, req, TD_E_BAD_CHANNEL, 0, "no such channel id");
		return;
	}
	uint8_t out[TD_HDR_SIZE + TD_DETACHED_BODY];
	conn_acks(c);
	if (a->role == TD_ROLE_PRODUCE || a->role == TD_ROLE_STATE_WRITE)
		td_enc_u64s(out, TD_DETACHED, chan, req, a->committed, 0, 2);
	else if (a->role == TD_ROLE_STATE_READ)
		td_enc_u64s(out, TD_DETACHED, chan, req, a->updates, 0, 2);
	else
		td_enc_u64s(out, TD_DETACHED, chan, req, a->delivered, a->dropped_total, 2);
	op_emit(c, out, sizeof(out));
	attach_drop(c, a);
}

static int op_produce(void *ctx, uint32_t chan, const struct takt_msg *m, unsigned n, bool *blocked,
		      uint32_t *sys_errno)
{
	struct conn *c = ctx;
	struct attach *a = conn_find(c, chan);
	if (!a || a->role != TD_ROLE_PRODUCE)
		return -TD_E_BAD_CHANNEL;
	struct pbridge *pb = a->pb;
	if (pb->full || c->srv->stopping) {
		/* Clients take turns in the order they found the ring full. */
		if (!c->srv->stopping)
			pbridge_wait(pb, c);
		*blocked = true;
		return 0;
	}
	unsigned done = 0;
	while (done < n) {
		int r = takt_try_send_batch(pb->prod, m + done, n - done);
		if (r > 0) {
			done += (unsigned)r;
			a->committed += (unsigned)r;
			continue;
		}
		if (r != -EAGAIN) {
			*sys_errno = (uint32_t)-r;
			return -(int)td_errno_code(r);
		}
		/* Full: pause this client (and the channel's other producing
		 * clients) until the waiter sees room for this record. */
		if (m[done].len > pb->cfg.max_record)
			return -TD_E_MSGSIZE;
		if (m[done].type >= TAKT_TYPE_RESERVED)
			return -TD_E_INVALID;
		if (pbridge_full(pb, m[done].len) < 0)
			return -TD_E_NOMEM;
		pbridge_wait(pb, c);
		*blocked = true;
		return (int)done;
	}
	return (int)done;
}

static void op_bye(void *ctx)
{
	struct conn *c = ctx;
	uint8_t out[TD_HDR_SIZE];
	conn_acks(c);
	op_emit(c, out, td_enc_empty(out, TD_BYE, 0, 0));
}

/* Stop parsing while the client's answers pile up (see conn_process). */
static bool op_hold(void *ctx)
{
	const struct conn *c = ctx;
	return tx_pending(c) >= TX_STOP_READING;
}

static const struct proto_ops ops = {
	.emit = op_emit,
	.hello = op_hello,
	.attach = op_attach,
	.detach = op_detach,
	.produce = op_produce,
	.bye = op_bye,
	.state_get = op_state_get,
	.subscribe = op_subscribe,
	.unsubscribe = op_unsubscribe,
	.state_write = op_state_write,
	.hold = op_hold,
};

/* ---- connection I/O ------------------------------------------------------ */

void conn_mark_dirty(struct conn *c)
{
	/* Dead connections too: after_events closes them (a receive error
	 * such as ECONNRESET marks one dead; it must not stay registered). */
	if (c->in_dirty || c->fd < 0)
		return;
	c->in_dirty = true;
	c->dirty_next = c->srv->dirty;
	c->srv->dirty = c;
}

static void conn_interest(struct conn *c)
{
	if (c->dead)
		return;
	uint32_t want = 0;
	if (!c->closing && !c->paused && !c->srv->stopping && tx_pending(c) < TX_STOP_READING)
		want |= LOOP_IN;
	if (tx_pending(c))
		want |= LOOP_OUT;
	if (want != c->interest) {
		c->interest = want;
		c->srv->loop->ops->set(c->srv->loop, c->fd, want, &c->tag);
	}
}

static void conn_close_now(struct conn *c)
{
	struct server *s = c->srv;
	if (c->dead && c->fd < 0)
		return;
	c->dead = true;
	if (c->closing)
		s->nclosing--;
	s->loop->ops->del(s->loop, c->fd);
	close(c->fd);
	c->fd = -1;
	pbridge_unwait(c);
	while (c->attaches)
		attach_drop(c, c->attaches);
	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	s->nconns--;
	if (s->accept_paused && s->listen_fd >= 0) {
		s->accept_paused = false;
		s->loop->ops->set(s->loop, s->listen_fd, LOOP_IN, &s->listen_tag);
	}
	c->next = s->zombies;
	s->zombies = c;
	LOGD("connection of pid %d closed", (int)c->peer.pid);
}

static void conn_begin_close(struct conn *c, unsigned grace_ms)
{
	if (c->closing || c->dead)
		return;
	c->closing = true;
	c->srv->nclosing++;
	c->close_deadline = td_now_ms() + grace_ms;
	pbridge_unwait(c);
	conn_mark_dirty(c);
}

void conn_fatal(struct conn *c, uint32_t code, uint32_t chan, const char *msg)
{
	if (c->dead || c->closing)
		return;
	proto_fatal(&c->proto, &ops, c, code, chan, 0, 0, msg);
	conn_begin_close(c, CLOSE_GRACE_MS);
}

/* Encode one DATA or DATA_BATCH frame from a's queue into the send buffer. */
static bool encode_frame(struct conn *c, struct attach *a)
{
	uint32_t limit = c->proto.max_out < FRAME_OUT_MAX ? c->proto.max_out : FRAME_OUT_MAX;
	uint64_t size = TD_HDR_SIZE;
	unsigned n = 0;
	for (struct span *sp = a->head; sp; sp = sp->next) {
		unsigned i;
		for (i = sp->lo; i < sp->hi; i++) {
			uint64_t need = TD_BATCH_REC_HDR + sp->b->rec[i].len;
			if (n && size + need > limit)
				break;
			size += need;
			n++;
		}
		if (i < sp->hi)
			break;
	}
	if (!n)
		return false;
	if (n == 1)
		size -= TD_BATCH_REC_HDR;
	uint8_t *p = tx_reserve(c, size);
	if (!p) {
		c->dead = true;
		return false;
	}
	if (n == 1) {
		struct span *sp = a->head;
		const struct brec *r = &sp->b->rec[sp->lo];
		td_put_hdr(p, (uint32_t)size, TD_DATA, 0, a->id, r->type);
		memcpy(p + TD_HDR_SIZE, sp->b->data + r->off, r->len);
	} else {
		td_put_hdr(p, (uint32_t)size, TD_DATA_BATCH, 0, a->id, n);
	}
	p += TD_HDR_SIZE;
	for (unsigned k = 0; k < n; k++) {
		struct span *sp = a->head;
		const struct brec *r = &sp->b->rec[sp->lo];
		if (n > 1) {
			td_put32(p, r->len);
			td_put32(p + 4, r->type);
			memcpy(p + TD_BATCH_REC_HDR, sp->b->data + r->off, r->len);
			p += TD_BATCH_REC_HDR + r->len;
		}
		a->pending -= TD_BATCH_REC_HDR + r->len;
		a->delivered++;
		if (++sp->lo == sp->hi) {
			a->head = sp->next;
			if (!a->head)
				a->tail = NULL;
			batch_unref(sp->b);
			free(sp);
		}
	}
	return true;
}

/* Move queued records into the send buffer, round-robin over attachments. */
static void conn_fill(struct conn *c)
{
	if (c->closing || c->proto.state == PROTO_CLOSED)
		return;
	bool progress = true;
	while (progress && tx_pending(c) < TX_HIGH && !c->dead) {
		progress = false;
		for (struct attach *a = c->attaches; a && tx_pending(c) < TX_HIGH; a = a->next) {
			if (a->role != TD_ROLE_CONSUME)
				continue;
			if (a->dropped_new) {
				uint8_t *p = tx_reserve(c, TD_HDR_SIZE + TD_DROPPED_BODY);
				if (!p) {
					c->dead = true;
					return;
				}
				td_enc_u64s(p, TD_DROPPED, a->id, 0, a->dropped_new, a->dropped_total, 2);
				a->dropped_new = 0;
				progress = true;
			}
			if (a->head && encode_frame(c, a))
				progress = true;
		}
	}
}

static void conn_flush(struct conn *c)
{
	for (;;) {
		conn_fill(c);
		if (c->dead || !tx_pending(c))
			break;
		ssize_t n = send(c->fd, c->tx + c->tx_head, tx_pending(c), MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				c->dead = true;
			break;
		}
		c->tx_head += (size_t)n;
		c->tx_sent += (uint64_t)n;
	}
	if (!c->dead && !c->closing && c->proto.state != PROTO_CLOSED)
		for (struct attach *a = c->attaches; a; a = a->next)
			if (a->role == TD_ROLE_CONSUME) {
				attach_enforce(a);
				if (c->closing)
					break;
			}
}

/*
 * Parse what the client sent.  Parsing stops between frames once the
 * answers queued for this client reach TX_STOP_READING (op_hold): a 16-byte
 * STATE_GET can queue a whole image, so one read of buffered requests must
 * not queue thousands of answers.  The rest stays in rx (proto.held) and is
 * parsed when the send buffer drains (after_events), before any more is read.
 */
static void conn_process(struct conn *c)
{
	if (c->closing || c->dead || c->paused)
		return;
	size_t used = proto_input(&c->proto, c->rx, c->rx_len, &ops, c);
	if (used) {
		memmove(c->rx, c->rx + used, c->rx_len - used);
		c->rx_len -= used;
	}
	if (c->proto.state == PROTO_CLOSED)
		conn_begin_close(c, CLOSE_GRACE_MS);
	else if (c->proto.blocked)
		c->paused = true;
	conn_acks(c);
	conn_mark_dirty(c);
}

void conn_resume(struct conn *c)
{
	if (c->dead)
		return;
	c->paused = false;
	conn_process(c);
	conn_mark_dirty(c);
}

static void conn_read(struct conn *c)
{
	for (int i = 0; i < 8 && !c->paused && !c->closing && !c->dead; i++) {
		if (c->proto.held) {
			/* whole frames wait in rx: parse them before reading more
			 * (and before an EOF would call them truncated) */
			conn_process(c);
			if (c->proto.held || c->paused || c->closing || c->dead)
				break;
		}
		if (tx_pending(c) >= TX_STOP_READING)
			break;
		if (c->rx_len == c->rx_cap) {
			size_t cap = c->rx_cap ? c->rx_cap * 2 : RX_INIT;
			if (cap > (size_t)c->proto.max_in + RX_SLACK)
				cap = (size_t)c->proto.max_in + RX_SLACK;
			if (cap <= c->rx_cap) {
				conn_fatal(c, TD_E_BAD_FRAME, 0, "receive buffer overrun");
				break;
			}
			uint8_t *r = realloc(c->rx, cap);
			if (!r) {
				conn_fatal(c, TD_E_NOMEM, 0, "out of memory");
				break;
			}
			c->rx = r;
			c->rx_cap = cap;
		}
		ssize_t n = recv(c->fd, c->rx + c->rx_len, c->rx_cap - c->rx_len, MSG_DONTWAIT);
		if (n == 0) {
			proto_eof(&c->proto, c->rx_len, &ops, c);
			conn_begin_close(c, CLOSE_GRACE_MS);
			break;
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				c->dead = true;
			break;
		}
		c->rx_len += (size_t)n;
		conn_process(c);
	}
	conn_mark_dirty(c);
}

static void accept_all(struct server *s)
{
	for (;;) {
		int fd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EMFILE || errno == ENFILE) {
				/* Out of descriptors: stop accepting until a connection closes. */
				LOGW("accept: %s; pausing accepts", strerror(errno));
				s->accept_paused = true;
				s->loop->ops->set(s->loop, s->listen_fd, 0, &s->listen_tag);
			} else if (errno != EAGAIN) {
				LOGW("accept: %s", strerror(errno));
			}
			return;
		}
		struct conn *c = calloc(1, sizeof(*c));
		int prc = c ? peer_identify(fd, &c->peer) : -ENOMEM;
		if (prc < 0) {
			LOGW("dropping a connection: %s", strerror(-prc));
			if (c)
				peer_release(&c->peer);
			free(c);
			close(fd);
			continue;
		}
		if (c->peer.groups_total > c->peer.who.ngroups)
			LOGD("pid %d uid %u is in %zu supplementary groups, more than the %u taktd "
			     "keeps: its group rules match its primary gid %u only",
			     (int)c->peer.pid, (unsigned)c->peer.who.uid, c->peer.groups_total,
			     (unsigned)POLICY_MAX_GROUPS, (unsigned)c->peer.who.gid);
		c->srv = s;
		c->fd = fd;
		c->tag = (struct tag){ TAG_CONN, c };
		proto_init(&c->proto, s->cfg.max_frame);
		c->next = s->conns;
		if (s->conns)
			s->conns->prev = c;
		s->conns = c;
		s->nconns++;
		LOGD("connection from pid %d uid %u", (int)c->peer.pid, (unsigned)c->peer.who.uid);
		conn_interest(c);
	}
}

/* ---- drain on SIGTERM ------------------------------------------------------ */

static void start_drain(struct server *s, int sig)
{
	if (s->stopping)
		return;
	LOGI("signal %d: draining %u connections", sig, s->nconns);
	s->stopping = true;
	s->drain_phase = 1;
	s->drain_deadline = td_now_ms() + s->cfg.drain_ms;
	if (s->listen_fd >= 0) {
		s->loop->ops->del(s->loop, s->listen_fd);
		close(s->listen_fd);
		s->listen_fd = -1;
		unlink(s->cfg.socket_path);
	}
	/* Take nothing more from rings and commit nothing more: the waiters
	 * end at once (takt_*_interrupt), nothing they hold is lost. */
	for (struct cbridge *cb = s->cbridges; cb; cb = cb->next)
		waiter_stop(&cb->w);
	for (struct pbridge *pb = s->pbridges; pb; pb = pb->next)
		waiter_stop(&pb->w);
	for (struct conn *c = s->conns; c; c = c->next)
		conn_mark_dirty(c);
}

static void drain_step(struct server *s)
{
	uint64_t now = td_now_ms();
	if (s->drain_phase == 1)
		s->drain_phase = 2; /* (no record is held outside a ring or a queue) */
	if (s->drain_phase == 2) {
		for (struct conn *c = s->conns; c; c = c->next) {
			if (c->closing || c->dead)
				continue;
			bool pending = false;
			for (struct attach *a = c->attaches; a; a = a->next)
				pending |= a->head != NULL || a->dropped_new;
			if (pending && now < s->drain_deadline)
				continue; /* still flushing records taken from rings */
			conn_acks(c);
			if (c->proto.state == PROTO_READY) {
				uint8_t out[TD_HDR_SIZE];
				op_emit(c, out, td_enc_empty(out, TD_BYE, 0, 0));
			}
			c->proto.state = PROTO_CLOSED;
			uint64_t left = s->drain_deadline > now ? s->drain_deadline - now : 0;
			conn_begin_close(c, (unsigned)(left < 500 ? 500 : left));
		}
	}
}

/* ---- the loop ---------------------------------------------------------- */

static void handle_signal(struct server *s)
{
	struct signalfd_siginfo si;
	while (read(s->signal_fd, &si, sizeof(si)) == sizeof(si))
		start_drain(s, (int)si.ssi_signo);
}

/*
 * Resume the paused clients of every producer bridge marked `room`.  Never
 * from inside a walk of the bridge list: a resumed client processes the
 * frames it had buffered, and a DETACH among them can free any producer
 * bridge (pbridge_put), the walk's next one included.  So the walks only
 * mark bridges, and each round here starts again from the list head (a
 * handful of bridges: the rescans cost nothing next to the resumes).
 */
static void resume_room(struct server *s)
{
	for (;;) {
		struct pbridge *pb = s->pbridges;
		while (pb && !pb->room)
			pb = pb->next;
		if (!pb)
			return;
		pb->room = false;
		pbridge_room(pb);
	}
}

/* Waiters fired: the rings they watch have records (room) now. */
static void handle_wake(struct server *s)
{
	uint64_t v;
	ssize_t r = read(s->wake_fd, &v, sizeof(v));
	(void)r;
	for (struct cbridge *cb = s->cbridges; cb; cb = cb->next)
		if (waiter_take_fired(&cb->w)) {
			cb->w.armed = false;
			cb->ready = true;
			s->pump = true;
		}
	for (struct pbridge *pb = s->pbridges; pb; pb = pb->next)
		if (waiter_take_fired(&pb->w))
			pb->room = true;
	resume_room(s);
}

/*
 * A consumer bridge that can take nothing more (a corrupted channel,
 * PROTOCOL.md §7 BADMSG): each client gets the records already taken for it
 * (they are in no ring any more), then a non-fatal ERROR on the
 * attachment's id, which is gone after it.  The last detach frees the bridge
 * and takes it off the list, so the next ATTACH opens the channel afresh
 * (and gets the error itself if the channel is still corrupted).
 */
static void cbridge_fail(struct cbridge *cb)
{
	int err = cb->err ? cb->err : -EBADMSG;
	char msg[TD_ERROR_MSG_MAX];
	snprintf(msg, sizeof(msg), "channel %s: %s; detached", cb->name, takt_strerror(err));
	/* Every bridge in the list has a subscriber (the last one's unsub
	 * frees it); count them down, since that last detach frees cb. */
	for (unsigned n = cb->nsubs; n; n--) {
		struct attach *a = cb->subs;
		struct conn *c = a->conn;
		if (!c->closing && !c->dead && c->proto.state != PROTO_CLOSED) {
			if (a->dropped_new) {
				uint8_t *p = tx_reserve(c, TD_HDR_SIZE + TD_DROPPED_BODY);
				if (p)
					td_enc_u64s(p, TD_DROPPED, a->id, 0, a->dropped_new,
						    a->dropped_total, 2);
				else
					c->dead = true;
				a->dropped_new = 0;
			}
			while (a->head && !c->dead && encode_frame(c, a))
				;
			emit_error(c, a->id, 0, td_errno_code(err), -err, msg);
		}
		attach_drop(c, a);
		conn_mark_dirty(c);
	}
}

/* Take records from consumer bridges whose waiter is not armed (ready or
 * idle ones), and from every bridge after client input (an answer may
 * already be in a ring: no need to wait for its waiter).  True if records
 * were taken. */
static bool pump_all(struct server *s, bool all)
{
	bool took = false;
	s->pump = false;
	bool dead = false;
	for (struct cbridge *cb = s->cbridges; cb; cb = cb->next) {
		if (cb->ready || all || !cb->w.armed)
			took |= cbridge_pump(cb);
		dead |= cb->dead;
	}
	/* After the walk: failing a bridge frees it.  Each round starts again
	 * from the head (cbridge_fail removes the bridge from the list). */
	while (dead) {
		struct cbridge *cb = s->cbridges;
		while (cb && !cb->dead)
			cb = cb->next;
		if (!cb)
			break;
		cbridge_fail(cb);
	}
	return took;
}

/* Full producer bridges whose ring has room now (polled while spinning). */
static bool poll_room(struct server *s)
{
	bool room = false;
	for (struct pbridge *pb = s->pbridges; pb; pb = pb->next)
		if (pb->full && !pb->w.armed &&
		    takt_wait_writable(pb->prod, pb->want_len, TAKT_NO_WAIT) == 0) {
			pb->room = true;
			room = true;
		}
	resume_room(s);
	return room;
}

/* About to sleep: every empty consumer ring and full producer ring gets its
 * waiter armed. */
static void arm_idle(struct server *s)
{
	if (s->stopping)
		return;
	for (struct cbridge *cb = s->cbridges; cb; cb = cb->next)
		if (cb->nsubs && !cb->dead && !cb->ready && !cb->w.armed) {
			cb->w.armed = true;
			waiter_arm(&cb->w, 0);
		}
	for (struct pbridge *pb = s->pbridges; pb; pb = pb->next)
		if (pb->full && !pb->w.armed && pb->w.running) {
			pb->w.armed = true;
			waiter_arm(&pb->w, pb->want_len);
		}
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

/*
 * Wait for events.  After activity the loop first polls, for up to
 * spin_ns since the last activity, its event source (no system call on
 * io_uring) and the rings; only then does it arm the waiters and sleep.
 * A request/response exchange is thus served without waking a thread, and
 * a peer's publish finds no doorbell armed (no sem_post).  An idle loop
 * sleeps at once: no periodic wake-ups.
 */
static int loop_wait(struct server *s, struct loop_event *ev, int max, int timeout, bool *took)
{
	struct loop *l = s->loop;
	*took = false;
	if (timeout == 0)
		return l->ops->peek(l, ev, max);
	if (s->cfg.spin_ns && !s->stopping) {
		uint64_t end = s->active_ns + s->cfg.spin_ns;
		unsigned k = 0;
		while (takt_now_ns() < end) {
			int n = l->ops->peek(l, ev, max);
			if (n != 0)
				return n;
			/* both, every round (not short-circuited) */
			bool any = pump_all(s, false);
			any |= poll_room(s);
			if (any) {
				*took = true;
				return 0;
			}
			for (k = 0; k < 16; k++)
				cpu_relax();
		}
	}
	arm_idle(s);
	return l->ops->wait(l, ev, max, timeout);
}

static void after_events(struct server *s)
{
	while (s->dirty) {
		struct conn *c = s->dirty;
		s->dirty = c->dirty_next;
		c->in_dirty = false;
		if (c->fd < 0)
			continue;
		if (!c->dead) {
			conn_flush(c);
			/* The send buffer drained below the limit: parse the
			 * frames held back (conn_process marks c dirty again,
			 * so its answers are flushed in this same loop). */
			if (c->proto.held && !c->dead && tx_pending(c) < TX_STOP_READING)
				conn_process(c);
		}
		if (c->dead || (c->closing && !tx_pending(c)))
			conn_close_now(c);
		else
			conn_interest(c);
	}
	if (s->nclosing) {
		uint64_t now = td_now_ms();
		for (struct conn *c = s->conns, *n; c; c = n) {
			n = c->next;
			if (c->closing && now >= c->close_deadline)
				conn_close_now(c);
		}
	}
	while (s->zombies) {
		struct conn *c = s->zombies;
		s->zombies = c->next;
		free(c->rx);
		free(c->tx);
		peer_release(&c->peer);
		free(c);
	}
}

int server_run(struct server *s)
{
	struct loop_event ev[256];
	for (;;) {
		if (s->stopping) {
			drain_step(s);
			after_events(s);
			if (s->drain_phase == 2 && s->nconns == 0)
				break;
		}
		int timeout = -1;
		if (s->pump)
			timeout = 0; /* rings still hold records */
		else if (s->stopping || s->nclosing)
			timeout = 50;
		timeout = state_timeout(s, timeout);
		bool took;
		int n = loop_wait(s, ev, 256, timeout, &took);
		if (n < 0) {
			LOGE("event loop: %s", strerror(-n));
			return -1;
		}
		bool input = false;
		for (int i = 0; i < n; i++) {
			struct tag *t = ev[i].tag;
			switch (t->kind) {
			case TAG_LISTEN:
				if (s->listen_fd >= 0)
					accept_all(s);
				break;
			case TAG_SIGNAL:
				handle_signal(s);
				break;
			case TAG_WAKE:
				handle_wake(s);
				break;
			case TAG_CONN: {
				struct conn *c = t->obj;
				if (c->dead) {
					conn_mark_dirty(c); /* closed in after_events */
					break;
				}
				if (ev[i].events & (LOOP_IN | LOOP_HUP | LOOP_ERR)) {
					conn_read(c);
					input = true;
				}
				if (ev[i].events & (LOOP_OUT | LOOP_ERR | LOOP_HUP))
					conn_mark_dirty(c);
				if ((ev[i].events & (LOOP_ERR | LOOP_HUP)) && !(c->interest & LOOP_IN))
					c->dead = true; /* peer gone and we are not reading */
				break;
			}
			}
		}
		took |= pump_all(s, input);
		if (n > 0 || took)
			s->active_ns = takt_now_ns();
		state_tick(s);
		after_events(s);
	}
	return 0;
}

int server_init(struct server *s)
{
	int rc;
	s->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (s->wake_fd < 0)
		return -errno;
	s->listen_tag = (struct tag){ TAG_LISTEN, s };
	s->signal_tag = (struct tag){ TAG_SIGNAL, s };
	s->wake_tag = (struct tag){ TAG_WAKE, s };
	struct loop *l = s->loop;
	if ((rc = l->ops->set(l, s->listen_fd, LOOP_IN, &s->listen_tag)) < 0 ||
	    (rc = l->ops->set(l, s->signal_fd, LOOP_IN, &s->signal_tag)) < 0 ||
	    (rc = l->ops->set(l, s->wake_fd, LOOP_IN, &s->wake_tag)) < 0)
		return rc;
	return 0;
}

void server_fini(struct server *s)
{
	/* Closing the connections drops every attachment; the last user of
	 * a bridge stops its waiter and closes its takt handle. */
	while (s->conns)
		conn_close_now(s->conns);
	after_events(s);
	if (s->wake_fd >= 0)
		close(s->wake_fd);
}
