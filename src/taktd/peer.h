/* SPDX-License-Identifier: MIT */
/*
 * peer.h - who is at the other end of an accepted connection: the kernel's
 * credentials of the client at connect time (SO_PEERCRED: uid, primary gid,
 * pid; SO_PEERGROUPS: supplementary groups, Linux >= 4.13).
 */
#ifndef TAKTD_PEER_H
#define TAKTD_PEER_H

#include <stddef.h>
#include <sys/types.h>

#include "policy.h"

struct peer {
	struct policy_peer who; /* what the policy judges; who.groups is ours (heap) */
	pid_t pid;
	/* Supplementary groups the kernel reported: who.ngroups if all were
	 * kept, more if the peer has more than POLICY_MAX_GROUPS (then none
	 * are kept: see policy.h), 0 if the kernel does not tell. */
	size_t groups_total;
};

/* Fill p for the connected socket fd.  0, or -errno if SO_PEERCRED fails
 * (a failing SO_PEERGROUPS only leaves the supplementary groups empty). */
int peer_identify(int fd, struct peer *p);
void peer_release(struct peer *p);

#endif
