/* SPDX-License-Identifier: MIT */
/*
 * gen_corpus.c - writes the seed corpus of fuzz_segment.c: real segment
 * images (empty, partly consumed, wrapped with padding, full, batches, an
 * uncommitted reservation, several lanes) in the target's input format
 * (8-byte control block + image).  Usage: gen_corpus <dir>.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "takt.h"

static const char *dir;
static int written;

static void die(const char *what, int rc)
{
	fprintf(stderr, "gen_corpus: %s: %d (%s)\n", what, rc, takt_strerror(rc));
	exit(1);
}

/* ctl[1..3] must select the geometry the channel was made with. */
static void dump(const char *name, const char *file, uint8_t flags, uint8_t lanes_sel,
		 uint8_t cap_sel, uint8_t max_sel, size_t cut)
{
	char obj[128], path[4096];
	snprintf(obj, sizeof obj, "/takt.%s", name);
	int fd = shm_open(obj, O_RDONLY, 0);
	if (fd < 0)
		die("shm_open", -errno);
	struct stat st;
	fstat(fd, &st);
	size_t n = (size_t)st.st_size;
	uint8_t *seg = mmap(NULL, n, PROT_READ, MAP_SHARED, fd, 0);
	if (seg == MAP_FAILED)
		die("mmap", -errno);
	if (cut && cut < n)
		n = cut;
	uint8_t ctl[8] = {flags, lanes_sel, cap_sel, max_sel, 0x13, 0x37, (uint8_t)written, 0x42};
	snprintf(path, sizeof path, "%s/%s", dir, file);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(ctl, 1, 8, f) != 8 || fwrite(seg, 1, n, f) != n || fclose(f) != 0)
		die(path, -errno);
	munmap(seg, st.st_size);
	close(fd);
	written++;
}

static void make(const char *name, uint32_t lanes, uint64_t cap, uint32_t max)
{
	takt_unlink(name);
	struct takt_queue_config cfg = {.capacity = cap, .lanes = lanes, .max_record = max};
	int rc = takt_queue_create(name, &cfg);
	if (rc)
		die("create", rc);
}

static void send_n(takt_producer *p, unsigned n, uint32_t len)
{
	uint8_t buf[4096];
	for (unsigned i = 0; i < n; i++) {
		memset(buf, (int)i, len);
		int rc = takt_try_send(p, i, buf, len);
		if (rc)
			die("send", rc);
	}
}

static void recv_n(takt_consumer *c, unsigned n)
{
	uint8_t buf[4096];
	for (unsigned i = 0; i < n; i++) {
		int rc = takt_try_recv(c, buf, sizeof buf, NULL);
		if (rc < 0)
			die("recv", rc);
	}
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: gen_corpus <dir>\n");
		return 2;
	}
	dir = argv[1];
	char name[64];
	snprintf(name, sizeof name, "gen-corpus-%d", (int)getpid());
	takt_producer *p, *q;
	takt_consumer *c;

	/* 1 lane, 1024, max 256: some consumed, some queued */
	make(name, 1, 1024, 256);
	if (takt_producer_open(name, &p) || takt_consumer_open(name, &c))
		die("open", -1);
	send_n(p, 10, 40);
	recv_n(c, 4);
	takt_producer_close(p);
	takt_consumer_close(c);
	dump(name, "spsc-partial.bin", 0, 0, 0, 0, 0);
	dump(name, "spsc-partial-body.bin", 1, 0, 0, 0, 0);
	dump(name, "spsc-truncated.bin", 4, 0, 0, 0, 2000);

	/* 2 lanes, 1024, max 256: lane 0 wrapped (padding), lane 1 a batch,
	 * and an uncommitted reservation left behind */
	make(name, 2, 1024, 256);
	if (takt_producer_open(name, &p) || takt_producer_open(name, &q) ||
	    takt_consumer_open(name, &c))
		die("open", -1);
	for (int lap = 0; lap < 5; lap++) {
		send_n(p, 5, 100 + (uint32_t)lap * 7);
		recv_n(c, 5);
	}
	send_n(p, 3, 200);
	struct takt_msg msgs[3] = {{.data = "abc", .len = 3, .type = 1},
				   {.data = "defgh", .len = 5, .type = 2},
				   {.data = "", .len = 0, .type = 3}};
	if (takt_try_send_batch(q, msgs, 3) != 3)
		die("batch", -1);
	void *dst;
	if (takt_reserve(q, 64, &dst))
		die("reserve", -1);
	memset(dst, 0xee, 64);
	takt_producer_close(p);
	takt_producer_close(q);
	takt_consumer_close(c);
	dump(name, "mpsc2-wrapped.bin", 1, 1, 0, 0, 0);
	dump(name, "mpsc2-wrapped-full.bin", 0, 1, 0, 0, 0);

	/* 3 lanes, 2048, max 128 */
	make(name, 3, 2048, 128);
	takt_producer *ps[3];
	for (int k = 0; k < 3; k++)
		if (takt_producer_open(name, &ps[k]))
			die("open", -1);
	if (takt_consumer_open(name, &c))
		die("open", -1);
	for (int k = 0; k < 3; k++)
		send_n(ps[k], 4 + (unsigned)k * 3, 16 + (uint32_t)k * 40);
	recv_n(c, 7);
	for (int k = 0; k < 3; k++)
		takt_producer_close(ps[k]);
	takt_consumer_close(c);
	dump(name, "mpsc3.bin", 1, 2, 1, 2, 0);

	/* 4 lanes, 4096, max 1024: empty */
	make(name, 4, 4096, 1024);
	dump(name, "mpsc4-empty.bin", 0, 3, 2, 0, 0);
	dump(name, "mpsc4-empty-grown.bin", 3, 3, 2, 0, 0);

	/* 1 lane, 4096, max 512: full */
	make(name, 1, 4096, 512);
	if (takt_producer_open(name, &p))
		die("open", -1);
	uint8_t buf[512] = {0};
	unsigned i = 0;
	while (takt_try_send(p, i, buf, (i * 37) % 512) == 0)
		i++;
	takt_producer_close(p);
	dump(name, "spsc-full.bin", 1, 0, 2, 1, 0);

	takt_unlink(name);
	printf("gen_corpus: %d seeds in %s\n", written, dir);
	return 0;
}
