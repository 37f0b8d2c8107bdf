/* SPDX-License-Identifier: MIT */
/*
 * policy.h - who may use which channel (docs/PROTOCOL.md §7).
 *
 * File format, one directive per line, '#' starts a comment:
 *   allow <who> <channel-pattern> <role>[,<role>...]
 *       who:  uid:<n> | gid:<n> | user:<name> | group:<name> | *
 *             (a group rule names the peer if it is the peer's primary gid
 *             or one of its supplementary groups, see struct policy_peer)
 *       pattern: fnmatch(3) pattern over channel names
 *       role: produce | consume | create | all
 *   set slow disconnect|drop-oldest     default slow-consumer policy
 *   set queue_limit <bytes>             default per-consumer queue limit
 *   set max_queue_limit <bytes>         largest queue_limit a client may ask
 *   set max_attach <n>                  attachments per connection
 * taktd's own uid is always admitted with every role.
 */
#ifndef TAKTD_POLICY_H
#define TAKTD_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define POL_PRODUCE 1u
#define POL_CONSUME 2u
#define POL_CREATE 4u

/*
 * The peer a decision is about: SO_PEERCRED's uid and primary gid, and the
 * supplementary groups from SO_PEERGROUPS (all of them, or none: a peer in
 * more than POLICY_MAX_GROUPS groups, or on a kernel without SO_PEERGROUPS,
 * has groups = NULL, ngroups = 0, and group rules match its primary gid
 * only).  Rules only ever allow, so a group not seen can refuse a peer but
 * never admit one.
 */
#define POLICY_MAX_GROUPS 256
struct policy_peer {
	uid_t uid;
	gid_t gid;
	const gid_t *groups;
	size_t ngroups;
};

struct policy_rule {
	int kind; /* 0 any, 1 uid, 2 gid */
	uint32_t id;
	unsigned roles;
	char *pattern;
};

struct policy {
	uid_t own_uid;
	struct policy_rule *rules;
	size_t nrules;
	int slow;              /* TD_SLOW_DISCONNECT or TD_SLOW_DROP_OLDEST */
	uint32_t queue_limit;  /* default bytes per consuming attachment */
	uint32_t max_queue_limit;
	uint32_t max_attach;
};

/* Defaults only (own uid).  */
void policy_init(struct policy *p, uid_t own_uid);
/* Parse a file into p (after policy_init).  0, or -1 with a message in err. */
int policy_load(struct policy *p, const char *path, char *err, size_t errlen);
/* Parse text (the fuzzable core of policy_load). */
int policy_parse(struct policy *p, const char *text, char *err, size_t errlen);
void policy_free(struct policy *p);
/* Does any rule name this peer? */
bool policy_admits(const struct policy *p, const struct policy_peer *who);
/* May this peer take all of roles on the channel? */
bool policy_allows(const struct policy *p, const struct policy_peer *who, const char *name,
		   unsigned roles);

#endif
