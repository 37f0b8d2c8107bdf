/* SPDX-License-Identifier: MIT */
/*
 * waiter.c - the threads that turn channel semaphore waits into eventfd
 * wake-ups of the loop, and the mailbox they post to.
 *
 * A consumer waiter owns its bridge's takt_consumer while it runs: it
 * blocks in takt_recv_batch (deadline 200 ms, to notice a stop request),
 * copies each batch into an exact-size allocation and posts it.  At most
 * MAX_OUTSTANDING batches wait for the loop; then the waiter pauses (the
 * ring, not taktd's memory, absorbs a burst the loop cannot take yet).
 *
 * A producer waiter sleeps on its condition variable until the loop hands
 * it one record that did not fit; it then blocks in takt_send (parks on the
 * lane's space doorbell) until the record is committed, and posts MB_SENT.
 * Idle waiters sleep in the kernel: an idle taktd uses no CPU beyond one
 * wake-up per consumer waiter every 200 ms.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "log.h"
#include "server.h"

#define WAIT_SLICE_NS 200000000ull
#define MAX_OUTSTANDING 4
#define RECV_MSGS 1024
#define RECV_BUF (256u << 10)

int mbox_init(struct mailbox *mb)
{
	mb->head = mb->tail = NULL;
	mb->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (mb->efd < 0)
		return -errno;
	pthread_mutex_init(&mb->mu, NULL);
	return 0;
}

void mbox_destroy(struct mailbox *mb)
{
	struct mbox_item *it = mbox_take(mb);
	while (it) {
		struct mbox_item *n = it->next;
		if (it->batch)
			batch_unref(it->batch);
		free(it);
		it = n;
	}
	close(mb->efd);
	pthread_mutex_destroy(&mb->mu);
}

void mbox_post(struct mailbox *mb, struct mbox_item *it)
{
	it->next = NULL;
	pthread_mutex_lock(&mb->mu);
	bool was_empty = !mb->head;
	if (mb->tail)
		mb->tail->next = it;
	else
		mb->head = it;
	mb->tail = it;
	pthread_mutex_unlock(&mb->mu);
	if (was_empty) {
		uint64_t one = 1;
		ssize_t w = write(mb->efd, &one, sizeof(one));
		(void)w; /* EAGAIN: the counter is already non-zero */
	}
}

struct mbox_item *mbox_take(struct mailbox *mb)
{
	uint64_t v;
	ssize_t r = read(mb->efd, &v, sizeof(v));
	(void)r;
	pthread_mutex_lock(&mb->mu);
	struct mbox_item *it = mb->head;
	mb->head = mb->tail = NULL;
	pthread_mutex_unlock(&mb->mu);
	return it;
}

/* Allocation failures in a waiter are retried: nothing taken from a ring is dropped. */
static struct mbox_item *item_new(enum mbox_kind kind, struct waiter *w, int result)
{
	struct mbox_item *it;
	while (!(it = calloc(1, sizeof(*it))))
		usleep(10000);
	it->kind = kind;
	it->w = w;
	it->result = result;
	return it;
}

static struct batch *batch_copy(const struct takt_msg *msgs, unsigned n)
{
	size_t bytes = 0;
	for (unsigned i = 0; i < n; i++)
		bytes += msgs[i].len;
	struct batch *b;
	while (!(b = malloc(sizeof(*b) + n * sizeof(struct brec) + bytes)))
		usleep(10000);
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

static void *consumer_main(void *arg)
{
	struct waiter *w = arg;
	while (!atomic_load(&w->stop)) {
		pthread_mutex_lock(&w->mu);
		while (w->outstanding >= MAX_OUTSTANDING && !atomic_load(&w->stop))
			pthread_cond_wait(&w->cv, &w->mu);
		pthread_mutex_unlock(&w->mu);
		if (atomic_load(&w->stop))
			break;
		int r = takt_recv_batch(w->cons, w->msgs, RECV_MSGS, w->buf, w->buf_cap,
					takt_deadline_in(WAIT_SLICE_NS));
		if (r > 0) {
			struct mbox_item *it = item_new(MB_BATCH, w, r);
			it->batch = batch_copy(w->msgs, (unsigned)r);
			pthread_mutex_lock(&w->mu);
			w->outstanding++;
			pthread_mutex_unlock(&w->mu);
			mbox_post(w->mb, it);
		} else if (r == -ETIMEDOUT || r == -EAGAIN) {
			continue;
		} else if (r == -EBADMSG) {
			LOGW("channel %s: a corrupted lane was found and is skipped",
			     ((struct cbridge *)w->bridge)->name);
		} else {
			LOGE("channel %s: receive failed: %s", ((struct cbridge *)w->bridge)->name,
			     takt_strerror(r));
			usleep(100000);
			break;
		}
	}
	mbox_post(w->mb, item_new(MB_EXITED, w, 0));
	return NULL;
}

static void *producer_main(void *arg)
{
	struct waiter *w = arg;
	pthread_mutex_lock(&w->mu);
	for (;;) {
		while (!w->job && !atomic_load(&w->stop))
			pthread_cond_wait(&w->cv, &w->mu);
		if (!w->job)
			break;
		pthread_mutex_unlock(&w->mu);
		int r;
		do
			r = takt_send(w->prod, w->type, w->data, w->len, takt_deadline_in(WAIT_SLICE_NS));
		while (r == -ETIMEDOUT && !atomic_load(&w->stop));
		pthread_mutex_lock(&w->mu);
		w->job = false;
		mbox_post(w->mb, item_new(MB_SENT, w, r));
	}
	pthread_mutex_unlock(&w->mu);
	return NULL; /* the loop joins it (it never waits long once stopped) */
}

int waiter_start(struct waiter *w)
{
	atomic_store(&w->stop, false);
	w->outstanding = 0;
	w->job = false;
	if (w->kind == W_CONSUMER && !w->buf) {
		w->buf = malloc(w->buf_cap);
		w->msgs = calloc(RECV_MSGS, sizeof(*w->msgs));
		if (!w->buf || !w->msgs)
			return -ENOMEM;
	}
	int rc = pthread_create(&w->th, NULL, w->kind == W_CONSUMER ? consumer_main : producer_main, w);
	if (rc)
		return -rc;
	w->running = true;
	return 0;
}

void waiter_stop(struct waiter *w)
{
	pthread_mutex_lock(&w->mu);
	atomic_store(&w->stop, true);
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

void waiter_join(struct waiter *w)
{
	if (w->running)
		pthread_join(w->th, NULL);
	w->running = false;
}

int waiter_give(struct waiter *w, uint32_t type, const void *data, uint32_t len)
{
	if (len > w->data_cap) {
		uint8_t *d = realloc(w->data, len);
		if (!d)
			return -ENOMEM;
		w->data = d;
		w->data_cap = len;
	}
	pthread_mutex_lock(&w->mu);
	if (len)
		memcpy(w->data, data, len);
	w->type = type;
	w->len = len;
	w->job = true;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	return 0;
}

void waiter_batch_taken(struct waiter *w)
{
	pthread_mutex_lock(&w->mu);
	if (w->outstanding)
		w->outstanding--;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}
