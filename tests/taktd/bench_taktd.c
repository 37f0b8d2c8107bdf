/* SPDX-License-Identifier: MIT */
/*
 * bench_taktd.c - what taktd costs (not a test; numbers go to
 * docs/BENCHMARKS.md by hand).
 *
 *   bench_taktd [records]     (taktd binary: TAKTD_BIN, --backend from TAKTD_BACKEND,
 *                              --spin-us from TAKTD_SPIN_US, default taktd's; the C echo's
 *                              spin budget from ECHO_SPIN_US, default takt's)
 *
 * 1. Round trip of a 64-byte record: client -> taktd -> channel A -> C echo
 *    process -> channel B -> taktd -> client, against a raw Unix-socket echo
 *    of 64 bytes between two processes.
 * 2. Streaming 64-byte records from one client through taktd into a native
 *    C consumer, in DATA_BATCH frames of 512 records.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "takt.h"

static void die(const char *what)
{
	fprintf(stderr, "bench_taktd: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void le16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void le32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> 8 * i); }
static void le64(uint8_t *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> 8 * i); }
static uint32_t rd32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }

static void put_hdr(uint8_t *h, uint32_t len, uint16_t type, uint32_t chan, uint32_t arg)
{
	le32(h, len);
	le16(h + 4, type);
	le16(h + 6, 0);
	le32(h + 8, chan);
	le32(h + 12, arg);
}

static void xsend(int fd, const void *p, size_t n)
{
	const uint8_t *b = p;
	while (n) {
		ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			die("send");
		}
		b += w;
		n -= (size_t)w;
	}
}

static uint8_t rbuf[1 << 20];
static size_t rlen, roff;
/* Next frame from fd (blocking); returns its type, body in *body. */
static uint16_t next_frame(int fd, uint32_t *chan, const uint8_t **body, uint32_t *blen)
{
	if (roff) {
		memmove(rbuf, rbuf + roff, rlen - roff);
		rlen -= roff;
		roff = 0;
	}
	while (rlen < 16 || rlen < rd32(rbuf)) {
		ssize_t n = recv(fd, rbuf + rlen, sizeof(rbuf) - rlen, 0);
		if (n <= 0)
			die("recv");
		rlen += (size_t)n;
	}
	uint32_t len = rd32(rbuf);
	*chan = rd32(rbuf + 8);
	*body = rbuf + 16;
	*blen = len - 16;
	roff = len;
	return (uint16_t)(rbuf[4] | rbuf[5] << 8);
}

static int connect_to(const char *path)
{
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		die("connect");
	uint8_t h[24];
	put_hdr(h, 24, 0x01, 0, 1);
	le16(h + 16, 1);
	le16(h + 18, 0);
	le32(h + 20, 1 << 20);
	xsend(fd, h, 24);
	uint32_t chan, blen;
	const uint8_t *b;
	if (next_frame(fd, &chan, &b, &blen) != 0x02)
		die("no WELCOME");
	return fd;
}

static uint32_t attach(int fd, const char *name, int role)
{
	uint8_t f[16 + 32 + 64] = { 0 };
	size_t nl = strlen(name);
	put_hdr(f, (uint32_t)(48 + nl), 0x03, 0, 2);
	le16(f + 16, (uint16_t)role);
	le16(f + 46, (uint16_t)nl);
	memcpy(f + 48, name, nl);
	xsend(fd, f, 48 + nl);
	for (;;) {
		uint32_t chan, blen;
		const uint8_t *b;
		uint16_t t = next_frame(fd, &chan, &b, &blen);
		if (t == 0x04)
			return chan;
		if (t == 0x30) {
			fprintf(stderr, "attach %s: error %u\n", name, rd32(b));
			exit(1);
		}
	}
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void report(const char *what, uint64_t *ns, unsigned n)
{
	qsort(ns, n, sizeof(*ns), cmp_u64);
	printf("%-28s n=%u  min %.1f us  p50 %.1f us  p99 %.1f us  max %.1f us\n", what, n,
	       ns[0] / 1e3, ns[n / 2] / 1e3, ns[n * 99 / 100] / 1e3, ns[n - 1] / 1e3);
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IONBF, 0);
	uint64_t stream_n = argc > 1 ? strtoull(argv[1], NULL, 10) : 5000000;
	const char *bin = getenv("TAKTD_BIN") ? getenv("TAKTD_BIN") : TAKTD_BIN;
	const char *backend = getenv("TAKTD_BACKEND") ? getenv("TAKTD_BACKEND") : "io_uring";
	char dir[] = "/tmp/taktd-bench-XXXXXX", sock[128], a[64], b[64];
	if (!mkdtemp(dir))
		die("mkdtemp");
	snprintf(sock, sizeof(sock), "%s/s.sock", dir);
	snprintf(a, sizeof(a), "taktd-bench-%d-a", (int)getpid());
	snprintf(b, sizeof(b), "taktd-bench-%d-b", (int)getpid());
	struct takt_queue_config qc = { .capacity = 1 << 20, .lanes = 1, .max_record = 1024 };
	if (takt_queue_create(a, &qc) < 0 || takt_queue_create(b, &qc) < 0)
		die("create");

	int pfd[2];
	if (pipe(pfd) < 0)
		die("pipe");
	pid_t td = fork();
	if (td == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		char fds[16];
		snprintf(fds, sizeof(fds), "%d", pfd[1]);
		/* TAKTD_SPIN_US: taktd's --spin-us, for experiments (else taktd's default) */
		const char *spin = getenv("TAKTD_SPIN_US");
		execl(bin, "taktd", "--socket", sock, "--backend", backend, "--log-level", "warn",
		      "--ready-fd", fds, spin ? "--spin-us" : (char *)NULL, spin, (char *)NULL);
		_exit(127);
	}
	close(pfd[1]);
	char rd[8] = { 0 };
	if (read(pfd[0], rd, 6) != 6)
		die("taktd not ready");

	/* --- 1. round trip ---------------------------------------------------- */
	pid_t echo = fork();
	if (echo == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		takt_consumer *c;
		takt_producer *p;
		if (takt_consumer_open(a, &c) < 0 || takt_producer_open(b, &p) < 0)
			_exit(1);
		/* ECHO_SPIN_US: the echo's spin budget before it parks (takt's
		 * default otherwise: 20 us, shorter than a round trip here, so
		 * the echo parks and is woken for every record). */
		const char *spin = getenv("ECHO_SPIN_US");
		if (spin)
			takt_consumer_set_spin_ns(c, (uint32_t)strtoul(spin, NULL, 10) * 1000u);
		uint8_t buf[1024];
		struct takt_msg m;
		for (;;) {
			int n = takt_recv(c, buf, sizeof(buf), &m, TAKT_FOREVER);
			if (n < 0)
				_exit(2);
			takt_send(p, m.type, buf, (size_t)n, TAKT_FOREVER);
		}
	}
	int fd = connect_to(sock);
	uint32_t pa = attach(fd, a, 1), cb = attach(fd, b, 2);
	enum { RT = 20000 };
	static uint64_t lat[RT];
	uint8_t frame[16 + 64];
	memset(frame, 0x5a, sizeof(frame));
	put_hdr(frame, sizeof(frame), 0x10, pa, 1);
	for (unsigned i = 0; i < RT + 1000; i++) {
		uint64_t t0 = takt_now_ns();
		xsend(fd, frame, sizeof(frame));
		for (;;) {
			uint32_t chan, blen;
			const uint8_t *body;
			uint16_t t = next_frame(fd, &chan, &body, &blen);
			if ((t == 0x10 || t == 0x11) && chan == cb)
				break;
		}
		if (i >= 1000)
			lat[i - 1000] = takt_now_ns() - t0;
	}
	report("taktd round trip (64 B)", lat, RT);
	close(fd);
	kill(echo, SIGKILL);
	waitpid(echo, NULL, 0);

	int sp[2];
	socketpair(AF_UNIX, SOCK_STREAM, 0, sp);
	pid_t raw = fork();
	if (raw == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		uint8_t x[64];
		for (;;) {
			size_t got = 0;
			while (got < 64) {
				ssize_t n = read(sp[1], x + got, 64 - got);
				if (n <= 0)
					_exit(0);
				got += (size_t)n;
			}
			if (write(sp[1], x, 64) != 64)
				_exit(1);
		}
	}
	for (unsigned i = 0; i < RT + 1000; i++) {
		uint8_t x[64] = { 1 };
		uint64_t t0 = takt_now_ns();
		if (write(sp[0], x, 64) != 64)
			die("write");
		size_t got = 0;
		while (got < 64) {
			ssize_t n = read(sp[0], x + got, 64 - got);
			if (n <= 0)
				die("read");
			got += (size_t)n;
		}
		if (i >= 1000)
			lat[i - 1000] = takt_now_ns() - t0;
	}
	report("raw Unix socket echo (64 B)", lat, RT);
	close(sp[0]);
	kill(raw, SIGKILL);
	waitpid(raw, NULL, 0);

	/* --- 2. streaming ------------------------------------------------------ */
	int done[2];
	if (pipe(done) < 0)
		die("pipe");
	pid_t cons = fork();
	if (cons == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		takt_consumer *c;
		if (takt_consumer_open(a, &c) < 0)
			_exit(1);
		static uint8_t buf[1 << 18];
		static struct takt_msg m[1024];
		uint64_t got = 0;
		while (got < stream_n) {
			int n = takt_recv_batch(c, m, 1024, buf, sizeof(buf), TAKT_FOREVER);
			if (n < 0)
				_exit(2);
			got += (uint64_t)n;
		}
		uint64_t t = takt_now_ns();
		if (write(done[1], &t, 8) != 8)
			_exit(3);
		_exit(0);
	}
	fd = connect_to(sock);
	pa = attach(fd, a, 1);
	enum { PER = 512, REC = 8 + 64 };
	static uint8_t batch[16 + PER * REC];
	put_hdr(batch, sizeof(batch), 0x11, pa, PER);
	for (unsigned k = 0; k < PER; k++) {
		le32(batch + 16 + k * REC, 64);
		le32(batch + 16 + k * REC + 4, 1);
		le64(batch + 16 + k * REC + 8, k);
	}
	uint64_t t0 = takt_now_ns();
	for (uint64_t sent = 0; sent < stream_n; sent += PER) {
		xsend(fd, batch, sizeof(batch));
		/* swallow ACKs without blocking */
		struct pollfd p = { .fd = fd, .events = POLLIN };
		while (poll(&p, 1, 0) == 1) {
			ssize_t n = recv(fd, rbuf, sizeof(rbuf), MSG_DONTWAIT);
			if (n <= 0)
				break;
		}
	}
	uint64_t t1;
	if (read(done[0], &t1, 8) != 8)
		die("consumer");
	stream_n = (stream_n + PER - 1) / PER * PER;
	printf("streaming 64 B via taktd     %llu records in %.3f s: %.2f M records/s\n",
	       (unsigned long long)stream_n, (t1 - t0) / 1e9, stream_n / ((t1 - t0) / 1e3));
	waitpid(cons, NULL, 0);
	close(fd);
	kill(td, SIGTERM);
	int st;
	waitpid(td, &st, 0);
	takt_unlink(a);
	takt_unlink(b);
	rmdir(dir);
	return 0;
}
