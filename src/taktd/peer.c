/* SPDX-License-Identifier: MIT */
/* peer.c - see peer.h. */
#include "peer.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#ifndef SO_PEERGROUPS
#define SO_PEERGROUPS 59 /* Linux >= 4.13; older headers lack it */
#endif

int peer_identify(int fd, struct peer *p)
{
	memset(p, 0, sizeof(*p));
	struct ucred cred;
	socklen_t len = sizeof(cred);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return -errno;
	p->who.uid = cred.uid;
	p->who.gid = cred.gid;
	p->pid = cred.pid;

	/* Like SO_PEERCRED, the groups are those of the client when it called
	 * connect(): a later setgroups() in the client changes nothing here.
	 * The kernel fills the buffer only if all groups fit (else ERANGE with
	 * the size needed), so a peer in more groups than the policy keeps
	 * gets none kept: group rules then see only its primary gid, which
	 * can refuse it but never admit it by mistake (rules only allow). */
	gid_t buf[POLICY_MAX_GROUPS];
	len = sizeof(buf);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, buf, &len) < 0) {
		if (errno == ERANGE)
			p->groups_total = len / sizeof(gid_t);
		return 0; /* ENOPROTOOPT (kernel < 4.13): primary gid only */
	}
	size_t n = len / sizeof(gid_t);
	p->groups_total = n;
	if (n == 0)
		return 0;
	gid_t *g = malloc(n * sizeof(gid_t));
	if (!g)
		return -ENOMEM;
	memcpy(g, buf, n * sizeof(gid_t));
	p->who.groups = g;
	p->who.ngroups = n;
	return 0;
}

void peer_release(struct peer *p)
{
	free((gid_t *)p->who.groups);
	p->who.groups = NULL;
	p->who.ngroups = 0;
}
