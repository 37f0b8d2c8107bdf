/* SPDX-License-Identifier: MIT */
/*
 * server.h - taktd's objects: the server, connections, attachments, channel
 * bridges, waiter threads and their mailbox.
 *
 * Threads: the event loop thread owns everything here except what a waiter
 * thread holds while it runs: a consumer bridge's takt_consumer (the waiter
 * receives batches with takt_recv_batch and hands copies to the loop), and a
 * producer bridge's takt_producer while one record waits for room in a full
 * ring (takt_send in the waiter; the loop does not touch the handle until
 * the waiter reports back).  Waiters talk to the loop through the mailbox:
 * a mutex-protected list plus an eventfd the loop polls.
 */
#ifndef TAKTD_SERVER_H
#define TAKTD_SERVER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "loop.h"
#include "policy.h"
#include "proto.h"
#include "takt.h"

struct server;
struct conn;

/* ---- records a consumer waiter took from a ring ------------------------ */
struct brec {
	uint32_t off, len, type;
};
struct batch {
	unsigned refs; /* loop thread only */
	unsigned n;
	struct brec *rec;
	uint8_t *data;
};
void batch_unref(struct batch *b);

/* A run of records [lo, hi) of a batch, queued for one consuming client. */
struct span {
	struct batch *b;
	unsigned lo, hi;
	struct span *next;
};

/* ---- waiter threads and the mailbox ------------------------------------ */
enum mbox_kind { MB_BATCH, MB_SENT, MB_EXITED };
struct mbox_item {
	enum mbox_kind kind;
	struct waiter *w;
	int result;
	struct batch *batch;
	struct mbox_item *next;
};
struct mailbox {
	pthread_mutex_t mu;
	struct mbox_item *head, *tail;
	int efd;
};
int mbox_init(struct mailbox *mb);
void mbox_destroy(struct mailbox *mb);
void mbox_post(struct mailbox *mb, struct mbox_item *it);
struct mbox_item *mbox_take(struct mailbox *mb);

enum waiter_kind { W_PRODUCER, W_CONSUMER };
struct waiter {
	enum waiter_kind kind;
	void *bridge;
	struct mailbox *mb;
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	atomic_bool stop;
	bool running; /* a thread exists (loop thread's view) */
	/* producer: one record waiting for room */
	takt_producer *prod;
	bool job;
	uint32_t type;
	uint32_t len;
	uint8_t *data;
	size_t data_cap;
	/* consumer */
	takt_consumer *cons;
	unsigned outstanding; /* batches posted, not yet taken by the loop */
	uint8_t *buf;
	size_t buf_cap;
	struct takt_msg *msgs;
};
int waiter_start(struct waiter *w);
/* Ask the thread to stop; it posts MB_EXITED. */
void waiter_stop(struct waiter *w);
void waiter_join(struct waiter *w);
/* Hand one record to a producer waiter (copies it). 0 or -ENOMEM. */
int waiter_give(struct waiter *w, uint32_t type, const void *data, uint32_t len);
/* The loop took one batch: let the consumer waiter receive more. */
void waiter_batch_taken(struct waiter *w);

/* ---- attachments ------------------------------------------------------- */
struct attach {
	uint32_t id;
	int role;
	struct conn *conn;
	struct attach *next; /* in conn */
	struct pbridge *pb;
	struct cbridge *cb;
	/* producer */
	uint64_t committed, acked;
	/* consumer */
	struct attach *sub_next, *sub_prev;
	struct span *head, *tail;
	size_t pending;
	uint32_t queue_limit;
	int slow;
	uint64_t dropped_new, dropped_total, delivered;
};

/* ---- channel bridges --------------------------------------------------- */
struct pbridge {
	struct server *srv;
	char name[TAKT_NAME_MAX + 1];
	takt_producer *prod;
	unsigned users;
	bool busy;     /* the waiter holds prod with one record */
	struct conn *owner;
	uint32_t owner_attach;
	struct conn *wait_head, *wait_tail;
	struct waiter w;
	struct takt_channel_config cfg;
	struct pbridge *next;
};

struct cbridge {
	struct server *srv;
	char name[TAKT_NAME_MAX + 1];
	struct attach *subs;
	unsigned nsubs;
	bool stopping;
	struct waiter w;
	struct takt_channel_config cfg;
	struct cbridge *next;
};

int pbridge_get(struct server *s, const char *name, struct pbridge **out);
void pbridge_put(struct pbridge *pb);
int cbridge_get(struct server *s, const char *name, struct cbridge **out);
void cbridge_sub(struct cbridge *cb, struct attach *a);
void cbridge_unsub(struct attach *a);
/* Handle a waiter's mailbox item (loop thread). */
void bridge_mail(struct server *s, struct mbox_item *it);
/* Append records of a batch to one consuming attachment, applying its policy. */
void attach_enqueue(struct attach *a, struct batch *b);
void attach_free_spans(struct attach *a);
/* Apply the slow-consumer policy once the send buffer took what it could. */
void attach_enforce(struct attach *a);
/* Queue conn until pb has room (the caller stops reading it). */
void pbridge_wait(struct pbridge *pb, struct conn *c);
void pbridge_unwait(struct conn *c);

/* ---- connections -------------------------------------------------------- */
enum tag_kind { TAG_LISTEN, TAG_SIGNAL, TAG_MBOX, TAG_CONN };
struct tag {
	enum tag_kind kind;
	void *obj;
};

struct conn {
	struct server *srv;
	struct tag tag;
	int fd;
	uid_t uid;
	gid_t gid;
	pid_t pid;
	struct proto proto;
	uint8_t *rx;
	size_t rx_len, rx_cap;
	uint8_t *tx;
	size_t tx_head, tx_len, tx_cap;
	struct attach *attaches;
	unsigned nattach;
	uint32_t next_id;
	struct attach *rr; /* next consuming attachment to serve */
	bool paused;       /* waiting for room in a producer bridge */
	bool closing, dead, in_dirty, in_wait;
	uint64_t close_deadline;
	uint32_t interest;
	struct conn *next, *prev;
	struct conn *dirty_next;
	struct conn *wait_next;
	struct pbridge *wait_pb;
};

void conn_mark_dirty(struct conn *c);
/* Continue parsing buffered input (after a producer bridge unblocked it). */
void conn_resume(struct conn *c);
void conn_fatal(struct conn *c, uint32_t code, uint32_t chan, const char *msg);
struct attach *conn_find(struct conn *c, uint32_t id);

/* ---- the server --------------------------------------------------------- */
struct server_config {
	const char *socket_path;
	const char *backend;
	unsigned socket_mode;
	uint32_t max_frame;
	unsigned drain_ms;
	int ready_fd;
};

struct server {
	struct server_config cfg;
	struct policy policy;
	struct loop *loop;
	int listen_fd, signal_fd;
	struct tag listen_tag, signal_tag, mbox_tag;
	struct mailbox mb;
	struct conn *conns;
	unsigned nconns;
	struct conn *dirty;
	struct conn *zombies;
	struct pbridge *pbridges;
	struct cbridge *cbridges;
	unsigned threads; /* consumer waiters running */
	unsigned nclosing;
	bool accept_paused;
	bool stopping;
	int drain_phase;
	uint64_t drain_deadline;
};

int server_init(struct server *s);
int server_run(struct server *s);
void server_fini(struct server *s);

uint64_t td_now_ms(void);

#endif
