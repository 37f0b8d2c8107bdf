/* SPDX-License-Identifier: MIT */
/*
 * mech_mq.c - message queues: POSIX (mq_open, mq_send, mq_receive) and
 * System V (msgget, msgsnd, msgrcv).  Two queues for ping-pong (one per
 * direction), one for streaming; several producers may share it (MPSC).
 * Busy mode: O_NONBLOCK / IPC_NOWAIT; blocking mode: the plain calls.
 *
 * A message larger than the system's limit cannot be carried: the check
 * reports "n/a (limit)" with the limit (POSIX: /proc/sys/fs/mqueue/msgsize_max,
 * System V: /proc/sys/kernel/msgmax).  The POSIX queue depth is
 * /proc/sys/fs/mqueue/msg_max (capped at 64); the System V queue holds
 * msgmnb bytes.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <unistd.h>

#include "mech.h"

static long proc_long(const char *path, long dflt)
{
	FILE *f = fopen(path, "r");
	long v = dflt;
	if (f) {
		if (fscanf(f, "%ld", &v) != 1)
			v = dflt;
		fclose(f);
	}
	return v;
}

/* ---- POSIX ------------------------------------------------------------------ */

struct pmq_state {
	mqd_t q[2];
	char name[2][64];
};

struct pmq_ep {
	mqd_t tx, rx;
};

static char pmq_live[4][64];

static void pmq_unlink_all(void)
{
	for (int i = 0; i < 4; i++)
		if (pmq_live[i][0]) {
			mq_unlink(pmq_live[i]);
			pmq_live[i][0] = 0;
		}
}

static int pmq_check(const struct bench_params *p, char *why, size_t cap)
{
	long max = proc_long("/proc/sys/fs/mqueue/msgsize_max", 8192);
	if ((long)p->size > max) {
		snprintf(why, cap, "limit: msgsize_max %ld", max);
		return 1;
	}
	return 0;
}

static void pmq_teardown(void *state)
{
	struct pmq_state *s = state;
	for (int i = 0; i < 2; i++)
		if (s->q[i] != (mqd_t)-1)
			mq_close(s->q[i]);
	free(s);
}

static int pmq_setup(const struct bench_params *p, void **state)
{
	struct pmq_state *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->q[0] = s->q[1] = (mqd_t)-1;
	long depth = proc_long("/proc/sys/fs/mqueue/msg_max", 10);
	if (depth > 64)
		depth = 64;
	struct mq_attr a = { .mq_maxmsg = depth, .mq_msgsize = (long)p->size };
	for (int i = 0; i < 2; i++) {
		snprintf(s->name[i], sizeof(s->name[i]), "/takt-bench.%ld.%u.%c", (long)getpid(),
			 p->id, 'a' + i);
		mq_unlink(s->name[i]);
		s->q[i] = mq_open(s->name[i], O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC |
						      (p->blocking ? 0 : O_NONBLOCK), 0600, &a);
		if (s->q[i] == (mqd_t)-1) {
			int e = -errno;
			pmq_teardown(s);
			return e;
		}
		/* the descriptors are inherited over fork: the name is not needed */
		mq_unlink(s->name[i]);
	}
	*state = s;
	return 0;
}

static int pmq_open(void *state, const struct bench_params *p, enum bench_role role, void **out)
{
	(void)p;
	struct pmq_state *s = state;
	struct pmq_ep *e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	switch (role) {
	case ROLE_PING: e->tx = s->q[0]; e->rx = s->q[1]; break;
	case ROLE_PONG: e->tx = s->q[1]; e->rx = s->q[0]; break;
	case ROLE_PRODUCER: e->tx = s->q[0]; e->rx = (mqd_t)-1; break;
	case ROLE_CONSUMER: e->rx = s->q[0]; e->tx = (mqd_t)-1; break;
	}
	*out = e;
	return 0;
}

static int pmq_send(void *ep, const void *buf, size_t len)
{
	if (mq_send(((struct pmq_ep *)ep)->tx, buf, len, 0) < 0)
		return errno == EAGAIN || errno == EINTR || errno == ETIMEDOUT ? -EAGAIN : -errno;
	return 0;
}

static int pmq_recv(void *ep, void *buf, size_t cap)
{
	(void)cap;
	/* mq_receive wants room for mq_msgsize: the harness's buffer is
	 * size rounded up to 8, which is enough */
	ssize_t n = mq_receive(((struct pmq_ep *)ep)->rx, buf, cap, NULL);
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? -EAGAIN : -errno;
	return (int)n;
}

static void pmq_close(void *ep) { free(ep); }

const struct bench_mech mech_posix_mq = {
	.name = "posix-mq",
	.title = "POSIX message queues (mq_send/mq_receive)",
	.setup = pmq_setup,
	.open = pmq_open,
	.try_send = pmq_send,
	.try_recv = pmq_recv,
	.close = pmq_close,
	.teardown = pmq_teardown,
	.cleanup_all = pmq_unlink_all,
	.flags = MECH_BUSY | MECH_BLOCK | MECH_MPSC,
	.group = "kernel",
	.check = pmq_check,
};

/* ---- System V ------------------------------------------------------------------ */

struct smq_state {
	int q[2];
};

struct smq_ep {
	int tx, rx;
	int flags;             /* IPC_NOWAIT in busy mode */
	size_t size;
	struct { long mtype; unsigned char mtext[]; } *msg;
};

static int smq_live[4] = { -1, -1, -1, -1 };

static void smq_unlink_all(void)
{
	for (int i = 0; i < 4; i++)
		if (smq_live[i] >= 0) {
			msgctl(smq_live[i], IPC_RMID, NULL);
			smq_live[i] = -1;
		}
}

static int smq_check(const struct bench_params *p, char *why, size_t cap)
{
	long max = proc_long("/proc/sys/kernel/msgmax", 8192);
	long mnb = proc_long("/proc/sys/kernel/msgmnb", 16384);
	if ((long)p->size > max || (long)p->size > mnb) {
		snprintf(why, cap, "limit: msgmax %ld, msgmnb %ld", max, mnb);
		return 1;
	}
	return 0;
}

static void smq_teardown(void *state)
{
	struct smq_state *s = state;
	for (int i = 0; i < 2; i++)
		if (s->q[i] >= 0) {
			msgctl(s->q[i], IPC_RMID, NULL);
			for (int k = 0; k < 4; k++)
				if (smq_live[k] == s->q[i])
					smq_live[k] = -1;
		}
	free(s);
}

static int smq_setup(const struct bench_params *p, void **state)
{
	(void)p;
	struct smq_state *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->q[0] = s->q[1] = -1;
	for (int i = 0; i < 2; i++) {
		s->q[i] = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
		if (s->q[i] < 0) {
			int e = -errno;
			smq_teardown(s);
			return e;
		}
		for (int k = 0; k < 4; k++)
			if (smq_live[k] < 0) {
				smq_live[k] = s->q[i];
				break;
			}
	}
	*state = s;
	return 0;
}

static int smq_open(void *state, const struct bench_params *p, enum bench_role role, void **out)
{
	struct smq_state *s = state;
	struct smq_ep *e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->msg = malloc(sizeof(long) + p->size + 8);
	if (!e->msg) {
		free(e);
		return -ENOMEM;
	}
	e->size = p->size;
	e->flags = p->blocking ? 0 : IPC_NOWAIT;
	switch (role) {
	case ROLE_PING: e->tx = s->q[0]; e->rx = s->q[1]; break;
	case ROLE_PONG: e->tx = s->q[1]; e->rx = s->q[0]; break;
	case ROLE_PRODUCER: e->tx = s->q[0]; e->rx = -1; break;
	case ROLE_CONSUMER: e->rx = s->q[0]; e->tx = -1; break;
	}
	*out = e;
	return 0;
}

/* msgsnd/msgrcv take the type word in front of the text: one copy each way
 * through the caller's buffer, as any System V user does. */
static int smq_send(void *ep, const void *buf, size_t len)
{
	struct smq_ep *e = ep;
	e->msg->mtype = 1;
	memcpy(e->msg->mtext, buf, len);
	if (msgsnd(e->tx, e->msg, len, e->flags) < 0)
		return errno == EAGAIN || errno == EINTR ? -EAGAIN : -errno;
	return 0;
}

static int smq_recv(void *ep, void *buf, size_t cap)
{
	struct smq_ep *e = ep;
	ssize_t n = msgrcv(e->rx, e->msg, e->size, 0, e->flags);
	if (n < 0)
		return errno == ENOMSG || errno == EAGAIN || errno == EINTR ? -EAGAIN : -errno;
	if ((size_t)n > cap)
		return -EMSGSIZE;
	memcpy(buf, e->msg->mtext, (size_t)n);
	return (int)n;
}

static void smq_close(void *ep)
{
	struct smq_ep *e = ep;
	free(e->msg);
	free(e);
}

const struct bench_mech mech_sysv_mq = {
	.name = "sysv-mq",
	.title = "System V message queues (msgsnd/msgrcv)",
	.setup = smq_setup,
	.open = smq_open,
	.try_send = smq_send,
	.try_recv = smq_recv,
	.close = smq_close,
	.teardown = smq_teardown,
	.cleanup_all = smq_unlink_all,
	.flags = MECH_BUSY | MECH_BLOCK | MECH_MPSC,
	.group = "kernel",
	.check = smq_check,
};
