/* SPDX-License-Identifier: MIT */
/* policy.c - see policy.h. */
#include "policy.h"

#include <errno.h>
#include <fnmatch.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wire.h"

void policy_init(struct policy *p, uid_t own_uid)
{
	memset(p, 0, sizeof(*p));
	p->own_uid = own_uid;
	p->slow = TD_SLOW_DISCONNECT;
	p->queue_limit = 4u << 20;
	p->max_queue_limit = 64u << 20;
	p->max_attach = 64;
}

void policy_free(struct policy *p)
{
	for (size_t i = 0; i < p->nrules; i++)
		free(p->rules[i].pattern);
	free(p->rules);
	p->rules = NULL;
	p->nrules = 0;
}

static int parse_u32(const char *s, uint32_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s || *end || v > UINT32_MAX || s[0] == '-')
		return -1;
	*out = (uint32_t)v;
	return 0;
}

static int parse_who(const char *s, struct policy_rule *r)
{
	if (strcmp(s, "*") == 0) {
		r->kind = 0;
		return 0;
	}
	if (strncmp(s, "uid:", 4) == 0) {
		r->kind = 1;
		return parse_u32(s + 4, &r->id);
	}
	if (strncmp(s, "gid:", 4) == 0) {
		r->kind = 2;
		return parse_u32(s + 4, &r->id);
	}
	if (strncmp(s, "user:", 5) == 0) {
		struct passwd *pw = getpwnam(s + 5);
		if (!pw)
			return -1;
		r->kind = 1;
		r->id = pw->pw_uid;
		return 0;
	}
	if (strncmp(s, "group:", 6) == 0) {
		struct group *gr = getgrnam(s + 6);
		if (!gr)
			return -1;
		r->kind = 2;
		r->id = gr->gr_gid;
		return 0;
	}
	return -1;
}

static int parse_roles(char *s, unsigned *out)
{
	*out = 0;
	char *save = NULL;
	for (char *t = strtok_r(s, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		if (strcmp(t, "produce") == 0)
			*out |= POL_PRODUCE;
		else if (strcmp(t, "consume") == 0)
			*out |= POL_CONSUME;
		else if (strcmp(t, "create") == 0)
			*out |= POL_CREATE;
		else if (strcmp(t, "all") == 0)
			*out |= POL_PRODUCE | POL_CONSUME | POL_CREATE;
		else
			return -1;
	}
	return *out ? 0 : -1;
}

static int parse_line(struct policy *p, char *line, char *err, size_t errlen, int lineno)
{
	char *tok[6];
	int n = 0;
	char *save = NULL;
	char *hash = strchr(line, '#');
	if (hash)
		*hash = '\0';
	for (char *t = strtok_r(line, " \t\r\n", &save); t && n < 6; t = strtok_r(NULL, " \t\r\n", &save))
		tok[n++] = t;
	if (n == 0)
		return 0;
	if (strcmp(tok[0], "allow") == 0 && n == 4) {
		struct policy_rule r = { 0 };
		if (parse_who(tok[1], &r) < 0) {
			snprintf(err, errlen, "line %d: bad subject '%s'", lineno, tok[1]);
			return -1;
		}
		if (parse_roles(tok[3], &r.roles) < 0) {
			snprintf(err, errlen, "line %d: bad roles", lineno);
			return -1;
		}
		struct policy_rule *nr = realloc(p->rules, (p->nrules + 1) * sizeof(*nr));
		if (!nr || !(r.pattern = strdup(tok[2]))) {
			if (nr)
				p->rules = nr;
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		p->rules = nr;
		p->rules[p->nrules++] = r;
		return 0;
	}
	if (strcmp(tok[0], "set") == 0 && n == 3) {
		uint32_t v;
		if (strcmp(tok[1], "slow") == 0) {
			if (strcmp(tok[2], "disconnect") == 0)
				p->slow = TD_SLOW_DISCONNECT;
			else if (strcmp(tok[2], "drop-oldest") == 0)
				p->slow = TD_SLOW_DROP_OLDEST;
			else
				goto bad;
			return 0;
		}
		if (parse_u32(tok[2], &v) < 0 || v == 0)
			goto bad;
		if (strcmp(tok[1], "queue_limit") == 0)
			p->queue_limit = v;
		else if (strcmp(tok[1], "max_queue_limit") == 0)
			p->max_queue_limit = v;
		else if (strcmp(tok[1], "max_attach") == 0)
			p->max_attach = v;
		else
			goto bad;
		if (p->queue_limit > p->max_queue_limit)
			p->max_queue_limit = p->queue_limit;
		return 0;
	}
bad:
	snprintf(err, errlen, "line %d: cannot parse", lineno);
	return -1;
}

int policy_parse(struct policy *p, const char *text, char *err, size_t errlen)
{
	int lineno = 0;
	const char *s = text;
	while (*s) {
		const char *e = strchr(s, '\n');
		size_t len = e ? (size_t)(e - s) : strlen(s);
		char line[1024];
		lineno++;
		if (len >= sizeof(line)) {
			snprintf(err, errlen, "line %d: too long", lineno);
			return -1;
		}
		memcpy(line, s, len);
		line[len] = '\0';
		if (parse_line(p, line, err, errlen, lineno) < 0)
			return -1;
		s += len + (e ? 1 : 0);
	}
	return 0;
}

int policy_load(struct policy *p, const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "re");
	if (!f) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	char *text = NULL;
	size_t cap = 0;
	ssize_t n = getdelim(&text, &cap, '\0', f);
	fclose(f);
	if (n < 0) {
		free(text);
		text = strdup("");
		if (!text)
			return -1;
	}
	int rc = policy_parse(p, text, err, errlen);
	free(text);
	return rc;
}

static bool in_groups(const struct policy_peer *who, gid_t gid)
{
	if (who->gid == gid)
		return true;
	for (size_t i = 0; i < who->ngroups; i++)
		if (who->groups[i] == gid)
			return true;
	return false;
}

static bool rule_names(const struct policy_rule *r, const struct policy_peer *who)
{
	return r->kind == 0 || (r->kind == 1 && r->id == who->uid) ||
	       (r->kind == 2 && in_groups(who, (gid_t)r->id));
}

bool policy_admits(const struct policy *p, const struct policy_peer *who)
{
	if (who->uid == p->own_uid)
		return true;
	for (size_t i = 0; i < p->nrules; i++)
		if (rule_names(&p->rules[i], who))
			return true;
	return false;
}

bool policy_allows(const struct policy *p, const struct policy_peer *who, const char *name,
		   unsigned roles)
{
	if (who->uid == p->own_uid)
		return true;
	unsigned have = 0;
	for (size_t i = 0; i < p->nrules; i++) {
		const struct policy_rule *r = &p->rules[i];
		if (rule_names(r, who) && fnmatch(r->pattern, name, 0) == 0)
			have |= r->roles;
	}
	return (have & roles) == roles;
}
