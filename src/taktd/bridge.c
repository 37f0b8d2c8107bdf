/* SPDX-License-Identifier: MIT */
/*
 * bridge.c - channel bridges (loop thread side).
 *
 * Producer bridge: one takt_producer (one lane) per channel, shared by every
 * client that produces to it, so per-client order is the order of the
 * client's frames and the number of clients is not limited by lanes.  When
 * the ring is full the record is handed to the bridge's waiter thread and
 * every client producing to the channel is paused (its socket no longer
 * read) until the waiter reports the record committed.
 *
 * Consumer bridge: one takt_consumer per channel, owned by its waiter
 * thread; each batch it receives is shared (reference-counted) by the
 * queues of every consuming client: fan-out.  Each client's queue has a
 * byte limit and a policy for when it is exceeded: disconnect, or drop the
 * oldest queued records and report how many in a DROPPED frame.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "server.h"

#define RECV_BUF_MIN (256u << 10)

static void waiter_init(struct waiter *w, enum waiter_kind kind, void *bridge, struct mailbox *mb)
{
	memset(w, 0, sizeof(*w));
	w->kind = kind;
	w->bridge = bridge;
	w->mb = mb;
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
}

static void waiter_fini(struct waiter *w)
{
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->cv);
	free(w->data);
	free(w->buf);
	free(w->msgs);
}

/* ---- producer side ------------------------------------------------------ */

int pbridge_get(struct server *s, const char *name, struct pbridge **out)
{
	for (struct pbridge *pb = s->pbridges; pb; pb = pb->next)
		if (strcmp(pb->name, name) == 0) {
			pb->users++; /* a stopping waiter still exits; a new one starts on demand */
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
	takt_channel_config_get(takt_producer_channel(pb->prod), &pb->cfg);
	pb->srv = s;
	strcpy(pb->name, name);
	pb->users = 1;
	waiter_init(&pb->w, W_PRODUCER, pb, &s->mb);
	pb->w.prod = pb->prod;
	pb->next = s->pbridges;
	s->pbridges = pb;
	LOGI("producer bridge for %s on lane %u", name, takt_producer_lane(pb->prod));
	*out = pb;
	return 0;
}

static void pbridge_free(struct pbridge *pb)
{
	struct server *s = pb->srv;
	for (struct pbridge **pp = &s->pbridges; *pp; pp = &(*pp)->next)
		if (*pp == pb) {
			*pp = pb->next;
			break;
		}
	takt_producer_close(pb->prod);
	waiter_fini(&pb->w);
	LOGI("producer bridge for %s closed", pb->name);
	free(pb);
}

void pbridge_put(struct pbridge *pb)
{
	if (--pb->users)
		return;
	if (pb->w.running) {
		waiter_stop(&pb->w);
		if (pb->busy)
			return; /* gives up within 200 ms; freed at MB_SENT */
		waiter_join(&pb->w); /* idle: exits at once */
	}
	pbridge_free(pb);
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

/* Resume paused clients in order while the bridge has room. */
static void pbridge_wake(struct pbridge *pb)
{
	while (!pb->busy && pb->wait_head) {
		struct conn *c = pb->wait_head;
		pb->wait_head = c->wait_next;
		if (!pb->wait_head)
			pb->wait_tail = NULL;
		c->in_wait = false;
		c->wait_pb = NULL;
		c->wait_next = NULL;
		conn_resume(c);
	}
}

static void pbridge_sent(struct server *s, struct pbridge *pb, int result)
{
	struct conn *c = pb->owner;
	pb->busy = false;
	pb->owner = NULL;
	if (atomic_load(&pb->w.stop)) {
		waiter_join(&pb->w);
		if (pb->users == 0) {
			pbridge_free(pb);
			return;
		}
	}
	if (c && !c->dead) {
		struct attach *a = conn_find(c, pb->owner_attach);
		if (result == 0) {
			if (a)
				a->committed++;
			if (!s->stopping)
				conn_resume(c);
		} else if (!s->stopping) {
			conn_fatal(c, td_errno_code(result), pb->owner_attach, "record refused by the channel");
		}
	}
	if (!s->stopping)
		pbridge_wake(pb);
}

/* ---- consumer side ------------------------------------------------------ */

int cbridge_get(struct server *s, const char *name, struct cbridge **out)
{
	for (struct cbridge *cb = s->cbridges; cb; cb = cb->next)
		if (strcmp(cb->name, name) == 0) {
			if (cb->stopping && cb->nsubs == 0)
				atomic_store(&cb->w.stop, false); /* revive; MB_EXITED restarts if too late */
			cb->stopping = false;
			*out = cb;
			return 0;
		}
	struct cbridge *cb = calloc(1, sizeof(*cb));
	if (!cb)
		return -ENOMEM;
	takt_consumer *cons;
	int rc = takt_consumer_open(name, &cons);
	if (rc < 0) {
		free(cb);
		return rc;
	}
	takt_channel_config_get(takt_consumer_channel(cons), &cb->cfg);
	cb->srv = s;
	strcpy(cb->name, name);
	waiter_init(&cb->w, W_CONSUMER, cb, &s->mb);
	cb->w.cons = cons;
	cb->w.buf_cap = RECV_BUF_MIN;
	if (cb->w.buf_cap < (size_t)cb->cfg.max_record + 64)
		cb->w.buf_cap = (size_t)cb->cfg.max_record + 64;
	rc = waiter_start(&cb->w);
	if (rc < 0) {
		takt_consumer_close(cons);
		waiter_fini(&cb->w);
		free(cb);
		return rc;
	}
	s->threads++;
	cb->next = s->cbridges;
	s->cbridges = cb;
	LOGI("consumer bridge for %s", name);
	*out = cb;
	return 0;
}

static void cbridge_free(struct cbridge *cb);

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
	if (--cb->nsubs == 0) {
		if (!cb->w.running) {
			cbridge_free(cb); /* its waiter already exited (shutdown) */
		} else if (!cb->stopping) {
			cb->stopping = true;
			waiter_stop(&cb->w); /* freed at MB_EXITED */
		}
	}
}

static void cbridge_free(struct cbridge *cb)
{
	struct server *s = cb->srv;
	for (struct cbridge **pp = &s->cbridges; *pp; pp = &(*pp)->next)
		if (*pp == cb) {
			*pp = cb->next;
			break;
		}
	takt_consumer_close(cb->w.cons);
	waiter_fini(&cb->w);
	LOGI("consumer bridge for %s closed", cb->name);
	free(cb);
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
		LOGW("client pid %d too slow on %s: disconnecting", (int)a->conn->pid, a->cb->name);
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

/* ---- mail from the waiters ---------------------------------------------- */

void bridge_mail(struct server *s, struct mbox_item *it)
{
	struct waiter *w = it->w;
	if (w->kind == W_CONSUMER) {
		struct cbridge *cb = w->bridge;
		if (it->kind == MB_BATCH) {
			waiter_batch_taken(w);
			struct batch *b = it->batch;
			it->batch = NULL;
			b->refs = 1; /* held while fanning out */
			for (struct attach *a = cb->subs; a; a = a->sub_next)
				attach_enqueue(a, b);
			batch_unref(b);
			if (!cb->subs)
				LOGW("channel %s: %d records taken while no client consumed", cb->name,
				     it->result);
		} else if (it->kind == MB_EXITED) {
			waiter_join(w);
			s->threads--;
			if (cb->nsubs == 0) {
				cbridge_free(cb);
			} else if (!s->stopping) {
				if (waiter_start(w) == 0)
					s->threads++;
				cb->stopping = false;
			}
		}
		return;
	}
	if (it->kind == MB_SENT)
		pbridge_sent(s, w->bridge, it->result);
}
