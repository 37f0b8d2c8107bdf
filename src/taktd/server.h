/* SPDX-License-Identifier: MIT */
/*
 * server.h - taktd's objects: the server, connections, attachments, channel
 * bridges and waiter threads.
 *
 * Threads: the event loop thread owns everything here, every takt handle
 * included, and calls only the non-blocking try_* functions.  Each bridge
 * has a waiter thread that, when the loop arms it, waits on the bridge's
 * handle with takt_wait_readable / takt_wait_writable (safe from a second
 * thread) and then wakes the loop through one eventfd shared by all
 * waiters (waiter.c).
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
#include "peer.h"
#include "policy.h"
#include "proto.h"
#include "takt.h"

struct server;
struct conn;

/* ---- records the loop took from a ring --------------------------------- */
struct brec {
	uint32_t off, len, type;
};
struct batch {
	unsigned refs;
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

/* ---- waiter threads ------------------------------------------------------ */
enum waiter_kind { W_PRODUCER, W_CONSUMER };
struct waiter {
	enum waiter_kind kind;
	void *bridge;
	int efd;          /* the server's eventfd */
	pthread_t th;
	bool running;     /* a thread exists (loop thread's view) */
	bool armed;       /* loop's view: armed and not yet seen fired */
	takt_consumer *cons;
	takt_producer *prod;
	_Atomic uint32_t arm;      /* futex word: 1 = the loop asks for a wait */
	_Atomic uint32_t sleeping; /* the thread sleeps (or is about to) on `arm` */
	_Atomic uint32_t fired;    /* the ring is ready: the loop should try it */
	_Atomic uint32_t stop;
	_Atomic uint32_t want_len; /* producer: room for a record of this size */
};
int waiter_start(struct waiter *w);
/* Ask the thread to wait for the ring (loop thread; the thread must run). */
void waiter_arm(struct waiter *w, uint32_t want_len);
/* Stop and join the thread (interrupts the wait in progress). */
void waiter_stop(struct waiter *w);
/* Did the waiter fire since the last call?  (loop thread) */
bool waiter_take_fired(struct waiter *w);

/* ---- attachments ------------------------------------------------------- */
struct attach {
	uint32_t id;
	int role;
	struct conn *conn;
	struct attach *next; /* in conn */
	struct pbridge *pb;
	struct cbridge *cb;
	struct sbridge *sb;
	/* producer, state writer: records / images committed and acknowledged */
	uint64_t committed, acked;
	/* consumer */
	struct attach *sub_next, *sub_prev;
	struct span *head, *tail;
	size_t pending;
	uint32_t queue_limit;
	int slow;
	uint64_t dropped_new, dropped_total, delivered;
	/* state reader: subscription (at most one update per interval) */
	bool subscribed;
	uint32_t sub_req;
	uint64_t interval_ns;
	uint64_t next_ns;   /* next look at the channel (CLOCK_MONOTONIC) */
	uint64_t last_ns;   /* when the last update was queued */
	uint64_t sent_gen;  /* generation of the last image sent (GET or update) */
	uint64_t updates;   /* updates queued */
	uint64_t update_end; /* conn->tx_total at the end of the last queued update */
	struct attach *ss_next, *ss_prev; /* in the server's subscription list */
};

/* ---- channel bridges --------------------------------------------------- */
struct pbridge {
	struct server *srv;
	char name[TAKT_NAME_MAX + 1];
	takt_producer *prod;
	unsigned users;
	bool full;     /* the ring had no room: clients wait (for want_len bytes) */
	bool room;     /* room seen: resume the waiting clients (server.c, resume_room) */
	bool stale;    /* the name now names another instance: found no more */
	uint32_t want_len;
	struct conn *wait_head, *wait_tail;
	struct waiter w;
	struct takt_channel_config cfg;
	struct pbridge *next;
};

struct cbridge {
	struct server *srv;
	char name[TAKT_NAME_MAX + 1];
	takt_consumer *cons;
	struct attach *subs;
	unsigned nsubs;
	bool ready;   /* the ring may hold records: pump it */
	bool dead;    /* every lane is broken: nothing more to take (server.c fails
		       * the clients with err and frees the bridge: cbridge_fail) */
	bool stale;   /* the name now names another instance: found no more */
	int err;      /* dead: the receive error (negative errno) */
	unsigned badmsg;
	uint8_t *buf;
	size_t buf_cap;
	struct takt_msg *msgs;
	struct waiter w;
	struct takt_channel_config cfg;
	struct cbridge *next;
};

/* State channel bridge: one per channel and role (reader or writer). */
struct sbridge {
	struct server *srv;
	char name[TAKT_NAME_MAX + 1];
	int role;                /* TD_ROLE_STATE_READ or TD_ROLE_STATE_WRITE */
	unsigned users;
	bool stale;              /* the name now names another instance: found no more */
	takt_channel *ch;        /* reader: a read-only mapping (takt_state_snapshot) */
	takt_state_writer *wr;   /* writer */
	struct takt_channel_config cfg;
	uint32_t image_size;
	/* reader: the newest snapshot taken, shared by every client */
	uint8_t *img, *scratch;
	struct takt_state_info info; /* generation 0: nothing published (yet) */
	uint64_t writes_seen;    /* large images: the writes counter at the last snapshot */
	uint64_t looked_ns;      /* when the channel was last looked at */
	struct sbridge *next;
};

/* Bridges are found by name, checked against the instance (nonce) the name
 * names now: 1 same, 0 re-created, or a negative errno (bridge.c). */
int bridge_same_channel(const char *name, uint64_t nonce);
int pbridge_get(struct server *s, const char *name, struct pbridge **out);
void pbridge_put(struct pbridge *pb);
int cbridge_get(struct server *s, const char *name, struct cbridge **out);
void cbridge_sub(struct cbridge *cb, struct attach *a);
void cbridge_unsub(struct attach *a);
/* Take records from a consumer bridge's ring and fan them out (loop thread). */
bool cbridge_pump(struct cbridge *cb); /* true if records were taken */
/* A producer bridge's waiter fired: the ring has room again. */
void pbridge_room(struct pbridge *pb);
/* The ring is full: wait for room for a record of len bytes. */
int pbridge_full(struct pbridge *pb, uint32_t len);
/* Append records of a batch to one consuming attachment, applying its policy. */
void attach_enqueue(struct attach *a, struct batch *b);
void attach_free_spans(struct attach *a);
/* Apply the slow-consumer policy once the send buffer took what it could. */
void attach_enforce(struct attach *a);
/* Queue conn until pb has room (the caller stops reading it). */
void pbridge_wait(struct pbridge *pb, struct conn *c);
void pbridge_unwait(struct conn *c);

/* State bridges (state.c in taktd: sbridge.c). */
int sbridge_get(struct server *s, const char *name, int role, struct sbridge **out);
void sbridge_put(struct sbridge *sb);
/* Look at the channel: refresh the snapshot if it may have changed.
 * 0 (info is current), or a negative errno of takt_state_snapshot. */
int sbridge_refresh(struct sbridge *sb, uint64_t now_ns);

/* ---- connections -------------------------------------------------------- */
enum tag_kind { TAG_LISTEN, TAG_SIGNAL, TAG_WAKE, TAG_CONN };
struct tag {
	enum tag_kind kind;
	void *obj;
};

struct conn {
	struct server *srv;
	struct tag tag;
	int fd;
	struct peer peer; /* the client's credentials at connect (peer.h) */
	struct proto proto;
	uint8_t *rx;
	size_t rx_len, rx_cap;
	uint8_t *tx;
	size_t tx_head, tx_len, tx_cap;
	uint64_t tx_total;  /* bytes ever queued in tx */
	uint64_t tx_sent;   /* bytes ever handed to the socket */
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
	uint32_t spin_ns; /* the loop polls this long after activity before sleeping */
};

struct server {
	struct server_config cfg;
	struct policy policy;
	struct loop *loop;
	int listen_fd, signal_fd;
	struct tag listen_tag, signal_tag, wake_tag;
	int wake_fd; /* eventfd the waiters write */
	struct conn *conns;
	unsigned nconns;
	struct conn *dirty;
	struct conn *zombies;
	struct pbridge *pbridges;
	struct cbridge *cbridges;
	struct sbridge *sbridges;
	struct attach *subs; /* state subscriptions */
	bool pump;           /* some consumer bridge is ready */
	uint64_t active_ns;  /* when the loop last had something to do */
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
