/* SPDX-License-Identifier: MIT */
/*
 * bridge.c - channel bridges (loop thread side).
 *
 * Producer bridge: one takt_producer (one lane) per channel, shared by every
 * client that produces to it, so per-client order is the order of the
 * client's frames and the number of clients is not limited by lanes.  When
 * the ring is full, the client whose record did not fit and every other
 * client producing to the channel are paused (their sockets no longer read)
 * and the bridge's waiter is armed with takt_wait_writable; when it fires,
 * the paused clients resume in order and try again.
 *
 * Consumer bridge: one takt_consumer per channel, owned by the loop, which
 * takes batches with takt_try_recv_batch whenever the bridge is "ready"
 * (its waiter fired, or a client's input was just processed); when the ring
 * is empty the waiter is armed with takt_wait_readable.  Each batch is
 * shared (reference-counted) by the queues of every consuming client:
 * fan-out.  Each client's queue has a byte limit and a policy for when it
 * is exceeded: disconnect, or drop the oldest queued records and report how
 * many in a DROPPED frame.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "server.h"

#define RECV_BUF_MIN (256u << 10)

#define RECV_MSGS 1024
#define PUMP_BATCHES 4 /* batches per bridge per loop iteration */

static void waiter_init(struct waiter *w, enum waiter_kind kind, void *bridge, struct server *s)
{
	memset(w, 0, sizeof(*w));
	w->kind = kind;
	w->bridge = bridge;
	w->efd = s->wake_fd;
}

/*
 * Is the channel now under name the instance a bridge opened (same nonce)?
 * 1 yes, 0 no (removed and re-created: `takt rm --force` + create), or the
 * negative errno of opening it (-ENOENT: removed).  A bridge is found by
 * name, but a name can outlive its channel: an ATTACH must reach the
 * channel the name names now, not the unlinked segment a bridge still maps
 * (records produced there would be lost, ATTACHED would carry the old
 * nonce).  Costs a read-only map per ATTACH that finds a bridge.
 */
int bridge_same_channel(const char *name, uint64_t nonce)
{
	takt_channel *ch;
	int rc = takt_channel_open(name, TAKT_OPEN_RDONLY, &ch);
	if (rc < 0)
		return rc;
	struct takt_channel_config cfg;
	takt_channel_config_get(ch, &cfg);
	takt_channel_close(ch);
	return cfg.nonce == nonce;
}

/* ---- producer side ------------------------------------------------------ */

int pbridge_get(struct server *s, const char *name, struct pbridge **out)
{
	for (struct pbridge *pb = s->pbridges; pb; pb = pb->next) {
		if (pb->stale || strcmp(pb->name, name) != 0)
			continue;
		int same = bridge_same_channel(name, pb->cfg.nonce);
		if (same < 0)
			return same;
		if (!same) {
			/* Its clients keep it until they detach; new ones
			 * get a bridge of the new instance. */
			LOGI("channel %s was re-created: new producer bridge", name);
			pb->stale = true;
			break;
		}
		pb->users++;
		*out = pb;
		return 0;
	}
	struct pbridge *pb = calloc(1, sizeof(*pb));
	if (!pb)
		return -ENOMEM;
	int rc = takt_producer_open(name, &pb->prod);
	if (rc < 0) {
		free(pb);
		return rc;
	}
	takt_producer_set_spin_ns(pb->prod, 0); /* the loop spins, not the waiter */
	takt_channel_config_get(takt_producer_channel(pb->prod), &pb->cfg);
	pb->srv = s;
	strcpy(pb->name, name);
	pb->users = 1;
	waiter_init(&pb->w, W_PRODUCER, pb, s);
	pb->w.prod = pb->prod;
	pb->next = s->pbridges;
	s->pbridges = pb;
	LOGI("producer bridge for %s on lane %u", name, takt_producer_lane(pb->prod));
	*out = pb;
	return 0;
}

void pbridge_put(struct pbridge *pb)
{
	if (--pb->users)
		return;
	struct server *s = pb->srv;
	waiter_stop(&pb->w);
	for (struct pbridge **pp = &s->pbridges; *pp; pp = &(*pp)->next)
		if (*pp == pb) {
			*pp = pb->next;
			break;
		}
	takt_producer_close(pb->prod);
	LOGI("producer bridge for %s closed", pb->name);
	free(pb);
}

int pbridge_full(struct pbridge *pb, uint32_t len)
{
	pb->full = true;
	pb->want_len = len;
	if (pb->srv->stopping)
		return 0; /* nobody will resume: the drain only delivers */
	/* The loop polls for room while it spins and arms the waiter before
	 * it sleeps (server.c, arm_idle). */
	if (!pb->w.running) {
		int rc = waiter_start(&pb->w);
		if (rc < 0) {
			pb->full = false; /* the caller closes this client; others retry */
			return rc;
		}
	}
	return 0;
}

void pbridge_wait(struct pbridge *pb, struct conn *c)
{
	if (c->in_wait)
		return;
	c->in_wait = true;
	c->wait_pb = pb;
	c->wait_next = NULL;
	if (pb->wait_tail)
		pb->wait_tail->wait_next = c;
	else
		pb->wait_head = c;
	pb->wait_tail = c;
}

void pbridge_unwait(struct conn *c)
{
	if (!c->in_wait)
		return;
	struct pbridge *pb = c->wait_pb;
	struct conn *prev = NULL;
	for (struct conn *x = pb->wait_head; x; prev = x, x = x->wait_next)
		if (x == c) {
			if (prev)
				prev->wait_next = c->wait_next;
			else
				pb->wait_head = c->wait_next;
			if (pb->wait_tail == c)
				pb->wait_tail = prev;
			break;
		}
	c->in_wait = false;
	c->wait_pb = NULL;
	c->wait_next = NULL;
}

/* The waiter saw room: resume paused clients in order while there is room.
 * A resumed client may DETACH and free pb if it is the last user; that can
 * only be the last client resumed here (every client still waiting is
 * attached to pb), after which the loop does not touch pb again. */
void pbridge_room(struct pbridge *pb)
{
	pb->w.armed = false;
	pb->full = false;
	if (pb->srv->stopping)
		return;
	/* Resume only the clients waiting now: one that fills the ring again
	 * queues itself behind them. */
	struct conn *tail = pb->wait_tail;
	while (!pb->full && pb->wait_head) {
		struct conn *c = pb->wait_head;
		pb->wait_head = c->wait_next;
		if (!pb->wait_head)
			pb->wait_tail = NULL;
		c->in_wait = false;
		c->wait_pb = NULL;
		c->wait_next = NULL;
		conn_resume(c);
		if (c == tail)
			break;
	}
}

/* ---- consumer side ------------------------------------------------------ */

int cbridge_get(struct server *s, const char *name, struct cbridge **out)
{
	for (struct cbridge *cb = s->cbridges; cb; cb = cb->next) {
		if (cb->stale || cb->dead || strcmp(cb->name, name) != 0)
			continue;
		int same = bridge_same_channel(name, cb->cfg.nonce);
		if (same < 0)
			return same;
		if (!same) {
			LOGI("channel %s was re-created: new consumer bridge", name);
			cb->stale = true;
			break;
		}
		*out = cb;
		return 0;
	}
	struct cbridge *cb = calloc(1, sizeof(*cb));
	if (!cb)
		return -ENOMEM;
	int rc = takt_consumer_open(name, &cb->cons);
	if (rc < 0) {
		free(cb);
		return rc;
	}
	takt_consumer_set_spin_ns(cb->cons, 0); /* the loop spins, not the waiter */
	takt_channel_config_get(takt_consumer_channel(cb->cons), &cb->cfg);
	cb->srv = s;
	strcpy(cb->name, name);
	cb->buf_cap = RECV_BUF_MIN;
	if (cb->buf_cap < (size_t)cb->cfg.max_record + 64)
		cb->buf_cap = (size_t)cb->cfg.max_record + 64;
	cb->buf = malloc(cb->buf_cap);
	cb->msgs = calloc(RECV_MSGS, sizeof(*cb->msgs));
	waiter_init(&cb->w, W_CONSUMER, cb, s);
	cb->w.cons = cb->cons;
	if (!cb->buf || !cb->msgs || (rc = waiter_start(&cb->w)) < 0) {
		takt_consumer_close(cb->cons);
		free(cb->buf);
		free(cb->msgs);
		free(cb);
		return rc < 0 ? rc : -ENOMEM;
	}
	cb->ready = true; /* whatever the ring holds goes to the first client */
	s->pump = true;
	cb->next = s->cbridges;
	s->cbridges = cb;
	LOGI("consumer bridge for %s", name);
	*out = cb;
	return 0;
}

static void cbridge_free(struct cbridge *cb)
{
	struct server *s = cb->srv;
	waiter_stop(&cb->w);
	for (struct cbridge **pp = &s->cbridges; *pp; pp = &(*pp)->next)
		if (*pp == cb) {
			*pp = cb->next;
			break;
		}
	takt_consumer_close(cb->cons);
	free(cb->buf);
	free(cb->msgs);
	LOGI("consumer bridge for %s closed", cb->name);
	free(cb);
}

void cbridge_sub(struct cbridge *cb, struct attach *a)
{
	a->cb = cb;
	a->sub_prev = NULL;
	a->sub_next = cb->subs;
	if (cb->subs)
		cb->subs->sub_prev = a;
	cb->subs = a;
	cb->nsubs++;
}

void cbridge_unsub(struct attach *a)
{
	struct cbridge *cb = a->cb;
	if (a->sub_prev)
		a->sub_prev->sub_next = a->sub_next;
	else
		cb->subs = a->sub_next;
	if (a->sub_next)
		a->sub_next->sub_prev = a->sub_prev;
	a->cb = NULL;
	attach_free_spans(a);
	/* The last client gone: release the consumer slot.  Nothing is lost:
	 * the loop takes records from the ring only while clients consume. */
	if (--cb->nsubs == 0)
		cbridge_free(cb);
}

static struct batch *batch_copy(const struct takt_msg *msgs, unsigned n)
{
	size_t bytes = 0;
	for (unsigned i = 0; i < n; i++)
		bytes += msgs[i].len;
	struct batch *b = malloc(sizeof(*b) + n * sizeof(struct brec) + bytes);
	if (!b)
		return NULL;
	b->refs = 0;
	b->n = n;
	b->rec = (struct brec *)(b + 1);
	b->data = (uint8_t *)(b->rec + n);
	uint32_t off = 0;
	for (unsigned i = 0; i < n; i++) {
		b->rec[i] = (struct brec){ .off = off, .len = msgs[i].len, .type = msgs[i].type };
		memcpy(b->data + off, msgs[i].data, msgs[i].len);
		off += msgs[i].len;
	}
	return b;
}

void batch_unref(struct batch *b)
{
	if (b->refs <= 1)
		free(b);
	else
		b->refs--;
}

bool cbridge_pump(struct cbridge *cb)
{
	struct server *s = cb->srv;
	bool took = false;
	cb->ready = false;
	if (!cb->nsubs || cb->dead || s->stopping)
		return false;
	for (unsigned k = 0; k < PUMP_BATCHES; k++) {
		int r = takt_try_recv_batch(cb->cons, cb->msgs, RECV_MSGS, cb->buf, cb->buf_cap);
		if (r == -EAGAIN) {
			/* Empty: the loop polls it while it spins and arms the
			 * waiter before it sleeps (server.c, arm_idle). */
			cb->badmsg = 0;
			return took;
		}
		if (r < 0) {
			if (r == -EBADMSG && ++cb->badmsg < 64) {
				LOGW("channel %s: a corrupted lane was found and is skipped", cb->name);
				continue;
			}
			LOGE("channel %s: receive failed: %s; no longer consuming", cb->name,
			     takt_strerror(r));
			/* The loop tells the clients and frees the bridge after
			 * its walk of the bridge list (server.c, pump_all). */
			cb->dead = true;
			cb->err = r;
			return took;
		}
		took = true;
		struct batch *b = batch_copy(cb->msgs, (unsigned)r);
		if (!b) {
			/* The records are taken: tell every client what it lost. */
			for (struct attach *a = cb->subs; a; a = a->sub_next) {
				a->dropped_new += (unsigned)r;
				a->dropped_total += (unsigned)r;
				conn_mark_dirty(a->conn);
			}
			LOGE("channel %s: out of memory, %d records dropped", cb->name, r);
			continue;
		}
		b->refs = 1; /* held while fanning out */
		for (struct attach *a = cb->subs; a; a = a->sub_next)
			attach_enqueue(a, b);
		batch_unref(b);
	}
	cb->ready = true; /* more may be waiting: again next iteration */
	s->pump = true;
	return took;
}

void attach_free_spans(struct attach *a)
{
	while (a->head) {
		struct span *sp = a->head;
		a->head = sp->next;
		batch_unref(sp->b);
		free(sp);
	}
	a->tail = NULL;
	a->pending = 0;
}

void attach_enqueue(struct attach *a, struct batch *b)
{
	struct conn *c = a->conn;
	if (c->closing || c->dead)
		return;
	struct span *sp = malloc(sizeof(*sp));
	if (!sp) {
		conn_fatal(c, TD_E_NOMEM, a->id, "out of memory queueing records");
		return;
	}
	b->refs++;
	*sp = (struct span){ .b = b, .lo = 0, .hi = b->n };
	if (a->tail)
		a->tail->next = sp;
	else
		a->head = sp;
	a->tail = sp;
	for (unsigned i = 0; i < b->n; i++)
		a->pending += b->rec[i].len + TD_BATCH_REC_HDR;
	conn_mark_dirty(c);
}

void attach_enforce(struct attach *a)
{
	if (a->pending <= a->queue_limit)
		return;
	if (a->slow == TD_SLOW_DISCONNECT) {
		LOGW("client pid %d too slow on %s: disconnecting", (int)a->conn->peer.pid, a->cb->name);
		conn_fatal(a->conn, TD_E_SLOW_CONSUMER, a->id,
			   "consumer fell behind by more than its queue limit");
		return;
	}
	while (a->head && a->pending > a->queue_limit) {
		struct span *sp = a->head;
		a->pending -= sp->b->rec[sp->lo].len + TD_BATCH_REC_HDR;
		a->dropped_new++;
		a->dropped_total++;
		if (++sp->lo == sp->hi) {
			a->head = sp->next;
			if (!a->head)
				a->tail = NULL;
			batch_unref(sp->b);
			free(sp);
		}
	}
}
