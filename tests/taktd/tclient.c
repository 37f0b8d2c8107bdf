/* SPDX-License-Identifier: MIT */
/* tclient.c - see tclient.h. */
#define _GNU_SOURCE

#include "tclient.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

#define RX_CAP (9u << 20)

int tc_open(struct tc *c, const char *path)
{
	memset(c, 0, sizeof(*c));
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return -errno;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = -errno;
		close(c->fd);
		c->fd = -1;
		return e;
	}
	c->cap = RX_CAP;
	c->buf = malloc(c->cap);
	cr_assert(c->buf);
	return 0;
}

void tc_close(struct tc *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	free(c->buf);
	c->buf = NULL;
}

int tc_send(struct tc *c, const void *data, size_t len)
{
	const uint8_t *p = data;
	while (len) {
		ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int tc_frame(struct tc *c, uint16_t type, uint16_t flags, uint32_t chan, uint32_t arg,
	     const void *body, size_t blen)
{
	/* One send per frame: many small sends cost socket buffer space far
	 * beyond their bytes. */
	uint8_t stack[4096];
	uint8_t *h = 16 + blen <= sizeof(stack) ? stack : malloc(16 + blen);
	cr_assert(h);
	le32(h, (uint32_t)(16 + blen));
	le16(h + 4, type);
	le16(h + 6, flags);
	le32(h + 8, chan);
	le32(h + 12, arg);
	if (blen)
		memcpy(h + 16, body, blen);
	int rc = tc_send(c, h, 16 + blen);
	if (h != stack)
		free(h);
	return rc;
}

int tc_read(struct tc *c, struct tc_frame *f, int timeout_ms)
{
	if (c->off) {
		memmove(c->buf, c->buf + c->off, c->len - c->off);
		c->len -= c->off;
		c->off = 0;
	}
	uint64_t end = takt_deadline_in((uint64_t)timeout_ms * 1000000);
	for (;;) {
		if (c->len >= 16) {
			uint32_t len = rd32(c->buf);
			cr_assert_geq(len, 16, "server sent a frame shorter than its header");
			cr_assert_leq(len, c->cap, "server frame of %u bytes exceeds our max_frame", len);
			if (c->len >= len) {
				f->len = len;
				f->type = rd16(c->buf + 4);
				f->flags = rd16(c->buf + 6);
				f->chan = rd32(c->buf + 8);
				f->arg = rd32(c->buf + 12);
				f->body = c->buf + 16;
				f->blen = len - 16;
				c->off = len;
				c->last = *f;
				return 1;
			}
		}
		uint64_t now = takt_now_ns();
		if (now >= end)
			return -ETIMEDOUT;
		struct pollfd p = { .fd = c->fd, .events = POLLIN };
		int ms = (int)((end - now) / 1000000) + 1;
		if (poll(&p, 1, ms) <= 0)
			continue;
		ssize_t n = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
		if (n == 0 || (n < 0 && errno == ECONNRESET))
			return 0;
		if (n < 0) {
			cr_assert(errno == EINTR || errno == EAGAIN, "recv: %s", strerror(errno));
			continue;
		}
		c->len += (size_t)n;
	}
}

void tc_expect(struct tc *c, uint16_t type, struct tc_frame *f)
{
	struct tc_frame tmp;
	if (!f)
		f = &tmp;
	for (;;) {
		int r = tc_read(c, f, 10000);
		cr_assert_eq(r, 1, "expected frame type 0x%x, got %s", type, r == 0 ? "EOF" : "timeout");
		if (f->type == T_ACK && type != T_ACK)
			continue;
		if (f->type == T_ERROR && type != T_ERROR)
			cr_assert_fail("expected frame type 0x%x, got ERROR %u: %.*s", type, rd32(f->body),
				       (int)f->blen - 8, (const char *)f->body + 8);
		cr_assert_eq(f->type, type, "expected frame type 0x%x, got 0x%x", type, f->type);
		return;
	}
}

void tc_expect_eof(struct tc *c)
{
	struct tc_frame f;
	int r = tc_read(c, &f, 10000);
	cr_assert_eq(r, 0, "expected EOF, got %s (type 0x%x)", r < 0 ? "timeout" : "a frame", f.type);
}

/* PROTOCOL.md §7: the errno an ERROR of this code carries. */
static bool doc_errno_ok(uint32_t code, uint32_t err)
{
	switch (code) {
	case E_DENIED: return err == EACCES;
	case E_INVALID: return err == EINVAL;
	case E_EXISTS: return err == EEXIST;
	case E_NOENT: return err == ENOENT;
	case E_ACCESS: return err == EACCES || err == EPERM;
	case 24: return err == ENOSPC;
	case E_AGAIN: return err == EAGAIN;
	case E_MSGSIZE: return err == EMSGSIZE;
	case 27: return err == EBADMSG;
	case 28: return err == EPROTONOSUPPORT;
	case E_BUSY: return err == EBUSY;
	case 30: return err == ETIMEDOUT;
	case 31: return err == ENOMEM;
	case E_KIND: return err == EPROTOTYPE;
	case 99: return err != 0;
	default: return err == 0; /* the other protocol errors */
	}
}

void tc_check_errno(const struct tc_frame *f)
{
	cr_assert_geq(f->blen, 8, "ERROR body of %u bytes", f->blen);
	uint32_t code = rd32(f->body), err = rd32(f->body + 4);
	cr_assert(doc_errno_ok(code, err), "ERROR %u carries errno %u (%s), not the one PROTOCOL.md "
		  "documents (%.*s)", code, err, strerror((int)err), (int)f->blen - 8,
		  (const char *)f->body + 8);
}

void tc_expect_error(struct tc *c, uint32_t code, bool fatal)
{
	struct tc_frame f;
	tc_expect(c, T_ERROR, &f);
	cr_assert_geq(f.blen, 8);
	cr_assert_eq(rd32(f.body), code, "expected error %u, got %u (%.*s)", code, rd32(f.body),
		     (int)f.blen - 8, (const char *)f.body + 8);
	tc_check_errno(&f);
	cr_assert_eq(!!(f.flags & F_FATAL), fatal, "error %u: fatal flag %d", code, f.flags);
	if (fatal)
		tc_expect_eof(c);
}

void tc_hello(struct tc *c, uint32_t max_frame)
{
	uint8_t b[8 + 6];
	le16(b, 1);
	le16(b + 2, 0);
	le32(b + 4, max_frame);
	memcpy(b + 8, "tester", 6);
	cr_assert_eq(tc_frame(c, T_HELLO, 0, 0, 77, b, sizeof(b)), 0);
	struct tc_frame f;
	tc_expect(c, T_WELCOME, &f);
	cr_assert_eq(f.arg, 77);
	cr_assert_eq(f.blen, 32);
	cr_assert_eq(rd16(f.body), 1);
	cr_assert_geq(rd32(f.body + 4), 4096);
	cr_assert_eq(rd32(f.body + 16), getuid());
	c->features = rd32(f.body + 28);
}

int tc_attach(struct tc *c, const char *name, int role, const struct tc_attach_opts *o)
{
	static const struct tc_attach_opts none;
	static _Atomic uint32_t req = 1000; /* shared by client threads */
	if (!o)
		o = &none;
	uint8_t b[32 + 256];
	size_t nl = strlen(name);
	cr_assert_leq(nl, 256);
	memset(b, 0, 32);
	le16(b, (uint16_t)role);
	le16(b + 2, o->flags);
	le32(b + 4, o->lanes);
	le64(b + 8, o->capacity);
	le32(b + 16, o->max_record);
	le32(b + 20, 0600);
	le32(b + 24, o->queue_limit);
	b[28] = o->slow;
	le16(b + 30, (uint16_t)nl);
	memcpy(b + 32, name, nl);
	uint32_t r = atomic_fetch_add(&req, 1) + 1;
	cr_assert_eq(tc_frame(c, T_ATTACH, 0, 0, r, b, 32 + nl), 0);
	struct tc_frame f;
	for (;;) {
		cr_assert_eq(tc_read(c, &f, 10000), 1, "no answer to ATTACH");
		if (f.type == T_ACK || f.type == T_DATA || f.type == T_DATA_BATCH)
			continue;
		break;
	}
	cr_assert_eq(f.arg, r, "answer to another request");
	if (f.type == T_ERROR) {
		cr_assert_eq(f.flags & F_FATAL, 0);
		tc_check_errno(&f);
		return -(int)rd32(f.body);
	}
	cr_assert_eq(f.type, T_ATTACHED);
	cr_assert_eq(f.blen, 32);
	cr_assert_eq(rd16(f.body + 16), role);
	cr_assert_gt(f.chan, 0);
	c->last = f; /* the ATTACHED frame (body valid until the next read) */
	return (int)f.chan;
}

int tc_data(struct tc *c, uint32_t chan, uint32_t type, const void *p, uint32_t len)
{
	return tc_frame(c, T_DATA, 0, chan, type, p, len);
}

uint64_t tc_wait_ack(struct tc *c, uint32_t chan, uint64_t count, int timeout_ms)
{
	uint64_t seen = 0;
	uint64_t end = takt_deadline_in((uint64_t)timeout_ms * 1000000);
	while (seen < count) {
		uint64_t now = takt_now_ns();
		if (now >= end)
			break;
		struct tc_frame f;
		int r = tc_read(c, &f, (int)((end - now) / 1000000) + 1);
		if (r <= 0)
			break;
		if (f.type == T_ERROR)
			cr_assert_fail("ERROR %u while waiting for ACK: %.*s", rd32(f.body), (int)f.blen - 8,
				       (const char *)f.body + 8);
		if (f.type == T_ACK && f.chan == chan) {
			cr_assert_eq(f.blen, 8);
			uint64_t v = rd64(f.body);
			cr_assert_geq(v, seen, "ACK went backwards");
			seen = v;
		}
	}
	return seen;
}

/* ---- the taktd process ------------------------------------------------- */

#define MAX_TD 8
static struct td *started[MAX_TD];
static unsigned nstarted;

void td_require_backend(const char *backend)
{
	if (strcmp(backend, "io_uring") != 0)
		return;
	struct io_uring r;
	int rc = io_uring_queue_init(4, &r, 0);
	if (rc < 0)
		cr_skip_test("SKIPPED: io_uring unavailable here (%s); only the epoll variant runs",
			     strerror(-rc));
	io_uring_queue_exit(&r);
}

/*
 * taktd's environment: ours, with the sanitizers (if any are configured)
 * told to write their reports into t->dir (log_path=DIR/san, files
 * san.<pid>) instead of stderr, where td_finish finds them: a report of a
 * taktd that is killed at the end of a test would otherwise pass unseen.
 * Built before fork: the child only execs.
 */
#define ENV_MAX 512
static char **taktd_env(const struct td *t)
{
	static char *env[ENV_MAX];
	static char san[3][1024];
	static const char *const vars[3] = { "ASAN_OPTIONS", "UBSAN_OPTIONS", "TSAN_OPTIONS" };
	size_t n = 0;
	for (char **e = environ; *e && n < ENV_MAX - 4; e++) {
		bool skip = false;
		for (int i = 0; i < 3; i++)
			skip |= strncmp(*e, vars[i], strlen(vars[i])) == 0 && (*e)[strlen(vars[i])] == '=';
		if (!skip)
			env[n++] = *e;
	}
	for (int i = 0; i < 3; i++) {
		const char *v = getenv(vars[i]);
		if (!v)
			continue;
		snprintf(san[i], sizeof(san[i]), "%s=%s%slog_path=%s/san", vars[i], v, v[0] ? ":" : "",
			 t->dir);
		env[n++] = san[i];
	}
	env[n] = NULL;
	return env;
}

/* The wrapper (if any), taktd, its socket and its backend: what every start
 * of taktd passes.  Fills argv from 0 (at most 8 entries); returns the count. */
static int base_argv(const struct td *t, const char **argv)
{
	int n = 0;
	for (int i = 0; i < 3 && t->wrap[i]; i++)
		argv[n++] = t->wrap[i];
	/* argv[0] of taktd; with a wrapper, the path the wrapper execs */
	argv[n++] = t->wrap[0] ? TAKTD_BIN : "taktd";
	argv[n++] = "--socket";
	argv[n++] = t->sock;
	if (t->backend[0]) {
		argv[n++] = "--backend";
		argv[n++] = t->backend;
	}
	return n;
}

static void launch(struct td *t, va_list ap)
{
	int pfd[2];
	cr_assert_eq(pipe2(pfd, O_CLOEXEC), 0);
	const char *argv[40];
	char fdstr[16];
	int n = base_argv(t, argv);
	argv[n++] = "--log-level";
	argv[n++] = getenv("TAKTD_TEST_LOG") ? getenv("TAKTD_TEST_LOG") : "warn";
	argv[n++] = "--ready-fd";
	argv[n++] = fdstr;
	const char *a;
	while ((a = va_arg(ap, const char *)) && n < 38)
		argv[n++] = a;
	argv[n] = NULL;
	int logfd = -1;
	if (t->log[0]) {
		logfd = open(t->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		cr_assert_geq(logfd, 0, "%s: %s", t->log, strerror(errno));
	}
	char **env = taktd_env(t);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		int fd = dup(pfd[1]); /* without CLOEXEC */
		snprintf(fdstr, sizeof(fdstr), "%d", fd);
		if (logfd >= 0)
			dup2(logfd, STDERR_FILENO);
		execve(t->wrap[0] ? t->wrap[0] : TAKTD_BIN, (char *const *)argv, env);
		_exit(127);
	}
	if (logfd >= 0)
		close(logfd);
	close(pfd[1]);
	t->pid = pid;
	char buf[8] = { 0 };
	struct pollfd p = { .fd = pfd[0], .events = POLLIN };
	int pr = poll(&p, 1, 15000);
	ssize_t r = pr > 0 ? read(pfd[0], buf, sizeof(buf) - 1) : -1;
	close(pfd[0]);
	cr_assert(r == 6 && strcmp(buf, "ready\n") == 0, "taktd (%s) did not become ready",
		  t->backend[0] ? t->backend : "default backend");
}

void td_prepare(struct td *t)
{
	bool known = false;
	for (unsigned i = 0; i < nstarted; i++)
		known |= started[i] == t;
	if (!known) {
		cr_assert_lt(nstarted, MAX_TD);
		started[nstarted++] = t; /* td_cleanup removes its dir, kills it */
	}
	if (!t->dir[0]) {
		strcpy(t->dir, "/tmp/taktd-test-XXXXXX");
		cr_assert(mkdtemp(t->dir));
		chmod(t->dir, 0755);
		snprintf(t->sock, sizeof(t->sock), "%s/taktd.sock", t->dir);
	}
}

void td_start(struct td *t, const char *backend, ...)
{
	td_prepare(t);
	snprintf(t->backend, sizeof(t->backend), "%s", backend ? backend : "");
	va_list ap;
	va_start(ap, backend);
	launch(t, ap);
	va_end(ap);
}

void td_restart(struct td *t, ...)
{
	va_list ap;
	va_start(ap, t);
	launch(t, ap);
	va_end(ap);
}

int td_run_fail(struct td *t, int timeout_ms)
{
	char **env = taktd_env(t);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		int null = open(t->log[0] ? t->log : "/dev/null", O_WRONLY | O_CREAT | O_APPEND, 0644);
		dup2(null, 2);
		const char *argv[12];
		int n = base_argv(t, argv);
		argv[n] = NULL;
		execve(t->wrap[0] ? t->wrap[0] : TAKTD_BIN, (char *const *)argv, env);
		_exit(127);
	}
	struct td tmp = { .pid = pid };
	return td_wait(&tmp, timeout_ms);
}

void td_signal(struct td *t, int sig)
{
	if (t->pid > 0)
		kill(t->pid, sig);
}

int td_wait(struct td *t, int timeout_ms)
{
	int st = 0;
	for (int waited = 0;; waited += 10) {
		pid_t r = waitpid(t->pid, &st, WNOHANG);
		if (r == t->pid)
			break;
		if (waited >= timeout_ms) {
			kill(t->pid, SIGKILL);
			waitpid(t->pid, &st, 0);
			t->pid = 0;
			cr_assert_fail("taktd did not exit within %d ms", timeout_ms);
		}
		usleep(10000);
	}
	t->pid = 0;
	return st;
}

bool td_file_contains(const char *path, const char *needle)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return false;
	char line[2048];
	bool found = false;
	while (!found && fgets(line, sizeof(line), f))
		found = strstr(line, needle) != NULL;
	fclose(f);
	return found;
}

int td_count_anon_fds(pid_t pid, const char *kind)
{
	char path[64], want[64], link[128];
	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	snprintf(want, sizeof(want), "anon_inode:%s", kind);
	DIR *d = opendir(path);
	cr_assert(d, "%s: %s", path, strerror(errno));
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char fdp[320];
		snprintf(fdp, sizeof(fdp), "%s/%s", path, e->d_name);
		ssize_t len = readlink(fdp, link, sizeof(link) - 1);
		if (len <= 0)
			continue;
		link[len] = '\0';
		n += strcmp(link, want) == 0;
	}
	closedir(d);
	return n;
}

uint64_t td_cpu_ticks(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY);
	cr_assert_geq(fd, 0);
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	cr_assert_gt(n, 0);
	buf[n] = '\0';
	const char *p = strrchr(buf, ')');
	cr_assert(p);
	/* fields after the command: state(3) ... utime(14) stime(15) */
	unsigned long long ut = 0, st = 0;
	int field = 2;
	for (const char *q = p + 1; *q; q++)
		if (*q == ' ') {
			field++;
			if (field == 14)
				ut = strtoull(q + 1, NULL, 10);
			else if (field == 15)
				st = strtoull(q + 1, NULL, 10);
		}
	return ut + st;
}

/* Print and count the sanitizer reports in dir (see taktd_env). */
static int san_reports(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return 0;
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (strncmp(e->d_name, "san.", 4) != 0)
			continue;
		char path[320], buf[4096];
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		FILE *f = fopen(path, "re");
		if (!f)
			continue;
		fprintf(stderr, "---- sanitizer report of taktd (%s) ----\n", path);
		size_t k;
		while ((k = fread(buf, 1, sizeof(buf), f)) > 0)
			fwrite(buf, 1, k, stderr);
		fclose(f);
		n++;
	}
	closedir(d);
	return n;
}

void td_finish(void)
{
	for (unsigned i = 0; i < nstarted; i++) {
		struct td *t = started[i];
		int st = 0;
		if (t->pid > 0) {
			/* A clean stop: the sanitizers' exit checks (leaks) run. */
			td_signal(t, SIGTERM);
			st = td_wait(t, 30000);
		}
		int reports = t->dir[0] ? san_reports(t->dir) : 0;
		cr_assert_eq(reports, 0, "taktd had sanitizer reports (above)");
		cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "taktd on SIGTERM: %s",
			  tt_status_str(st));
	}
}

void td_cleanup(void)
{
	for (unsigned i = 0; i < nstarted; i++) {
		struct td *t = started[i];
		if (t->pid > 0) {
			kill(t->pid, SIGKILL);
			waitpid(t->pid, NULL, 0);
			t->pid = 0;
		}
		if (t->dir[0]) {
			/* After a failed test: show why taktd may have died. */
			san_reports(t->dir);
			char cmd[128];
			snprintf(cmd, sizeof(cmd), "rm -rf '%s'", t->dir);
			if (system(cmd) != 0)
				fprintf(stderr, "cleanup of %s failed\n", t->dir);
		}
	}
	nstarted = 0;
}
