/* SPDX-License-Identifier: MIT */
/*
 * fuzz_segment.c - libFuzzer target: a whole segment image, as a peer that
 * is buggy or hostile could leave it, run through every call a consumer,
 * a producer and a monitor make.  It must never crash, hang, or touch
 * memory outside the mapping (built with ASan+UBSan by scripts/fuzz.sh).
 *
 * Input: an 8-byte control block, then the image.
 *   ctl[0] bit 0: keep the valid header the library wrote (only the body -
 *                 consumer block, lane control blocks, records - is fuzzed);
 *                 else the image's first 256 bytes are the header too
 *          bit 1: grow the file to the image's size if the image is longer
 *          bit 2: shrink the file to the image's size if it is shorter
 *                 (a truncated segment: must be refused, never SIGBUS)
 *   ctl[1]  lanes - 1 (mod 4)          ctl[2] capacity 1024 << (mod 3)
 *   ctl[3]  max_record = capacity/4 >> (mod 4)
 *   ctl[4..7] seed of the operation sequence
 * The channel is created properly first (segment and semaphores), then its
 * bytes are overwritten with the image.  tests/fuzz/gen_corpus.c writes
 * seeds in this format from real channels.
 */
#include <errno.h>
#include <fcntl.h>
#include <semaphore.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "takt.h"

#define HEADER 256u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint32_t next_rand(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

static void exercise_consumer(takt_consumer *c, uint32_t max_record, uint64_t budget, uint32_t *seed)
{
	static uint8_t buf[1 << 18];
	struct takt_msg msgs[16], m;
	volatile uint8_t sink = 0;
	takt_consumer_set_lane_burst(c, 1 + next_rand(seed) % 8);
	for (uint64_t i = 0; i < budget; i++) {
		int r;
		switch (next_rand(seed) % 5) {
		case 0:
		case 1:
			r = takt_try_recv(c, buf, max_record, &m);
			break;
		case 2:
			r = takt_peek(c, &m);
			if (r >= 0) {
				/* read every byte handed out: ASan checks the range */
				const uint8_t *p = m.data;
				for (uint32_t k = 0; k < m.len; k++)
					sink ^= p[k];
				if (next_rand(seed) & 1)
					takt_release(c);
			}
			break;
		case 3:
			r = takt_try_recv_batch(c, msgs, 1 + next_rand(seed) % 16, buf,
						next_rand(seed) % sizeof buf);
			for (int k = 0; k < r; k++) {
				const uint8_t *p = msgs[k].data;
				for (uint32_t j = 0; j < msgs[k].len; j++)
					sink ^= p[j];
			}
			break;
		default:
			r = takt_recv(c, buf, 8, &m, TAKT_NO_WAIT); /* small buffer: -EMSGSIZE */
			break;
		}
		if (r == -EAGAIN && (next_rand(seed) & 3) == 0)
			break;
	}
	(void)sink;
}

static void exercise_producer(takt_producer *p, uint32_t max_record, uint64_t budget, uint32_t *seed)
{
	static uint8_t buf[1 << 18];
	memset(buf, 0x5a, max_record < sizeof buf ? max_record : sizeof buf);
	for (uint64_t i = 0; i < budget; i++) {
		uint32_t len = next_rand(seed) % (max_record + 2);
		int r;
		switch (next_rand(seed) % 4) {
		case 0:
			r = takt_try_send(p, 1, buf, len);
			break;
		case 1: {
			struct takt_msg msgs[4];
			for (int k = 0; k < 4; k++)
				msgs[k] = (struct takt_msg){.data = buf, .len = len / (uint32_t)(k + 1),
							    .type = 2};
			r = takt_try_send_batch(p, msgs, 4);
			break;
		}
		case 2: {
			void *dst;
			r = takt_reserve(p, len, &dst);
			if (r == 0) {
				memset(dst, 0xa5, len);
				r = takt_commit(p, 3, len / 2);
			}
			break;
		}
		default:
			r = takt_send(p, 4, buf, len, TAKT_NO_WAIT);
			break;
		}
		if (r == -EAGAIN || r == -EBADMSG)
			break;
	}
}

static void exercise_monitor(takt_channel *ch, unsigned lanes)
{
	struct takt_channel_config cfg;
	takt_channel_config_get(ch, &cfg);
	for (unsigned k = 0; k <= lanes; k++) { /* one past the end: -EINVAL */
		struct takt_lane_stats st;
		takt_lane_stats_get(ch, k, &st);
	}
	struct takt_consumer_stats cs;
	takt_consumer_stats_get(ch, &cs);
	uint64_t mask;
	takt_producers_alive(ch, &mask);
	takt_consumer_alive(ch);
	takt_channel_is_stale(ch);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static unsigned counter;
	if (size < 8)
		return 0;
	const uint8_t *ctl = data;
	const uint8_t *img = data + 8;
	size_t img_len = size - 8;
	uint32_t lanes = 1 + ctl[1] % 4;
	uint64_t cap = 1024ull << (ctl[2] % 3);
	uint32_t max_record = (uint32_t)(cap / 4) >> (ctl[3] % 4);
	uint32_t seed;
	memcpy(&seed, ctl + 4, 4);
	seed |= 1;

	char name[64], obj[96];
	snprintf(name, sizeof name, "fz-%d-%u", (int)getpid(), counter++);
	struct takt_queue_config qc = {.capacity = cap, .lanes = lanes, .max_record = max_record};
	takt_unlink(name);
	if (takt_queue_create(name, &qc) != 0)
		return 0;

	snprintf(obj, sizeof obj, "/takt.%s", name);
	int fd = shm_open(obj, O_RDWR, 0);
	if (fd < 0)
		goto out;
	struct stat st;
	if (fstat(fd, &st) != 0)
		goto out_fd;
	size_t total = (size_t)st.st_size;
	size_t from = (ctl[0] & 1) ? HEADER : 0;
	size_t n = img_len < total ? img_len : total;
	if (n > from) {
		uint8_t *seg = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (seg == MAP_FAILED)
			goto out_fd;
		memcpy(seg + from, img + from, n - from);
		munmap(seg, total);
	}
	if ((ctl[0] & 2) && img_len > total && img_len <= (1u << 20)) {
		if (ftruncate(fd, (off_t)img_len) == 0 &&
		    pwrite(fd, img + total, img_len - total, (off_t)total) < 0) {
			/* ignore: the size is what matters */
		}
	}
	if ((ctl[0] & 4) && img_len < total) {
		if (ftruncate(fd, (off_t)img_len) != 0) {
			/* ignore */
		}
	}

	takt_channel *ch = NULL;
	if (takt_channel_open(name, 0, &ch) == 0) {
		struct takt_channel_config cfg;
		takt_channel_config_get(ch, &cfg);
		/* the geometry is the validated header's, not ours */
		uint64_t budget = 4 * (uint64_t)cfg.lanes * (cfg.capacity / 16) + 16;
		if (budget > 200000)
			budget = 200000;
		exercise_monitor(ch, cfg.lanes);
		takt_consumer *c = NULL;
		if (takt_consumer_attach(ch, &c) == 0)
			exercise_consumer(c, cfg.max_record, budget, &seed);
		takt_producer *p = NULL;
		if (takt_producer_attach(ch, &p) == 0) {
			exercise_producer(p, cfg.max_record, budget, &seed);
			if (c)
				exercise_consumer(c, cfg.max_record, budget, &seed);
			takt_producer_close(p);
		}
		exercise_monitor(ch, cfg.lanes);
		if (c)
			takt_consumer_close(c);
		takt_channel_close(ch);
	}
	if (takt_channel_open(name, TAKT_OPEN_RDONLY, &ch) == 0) {
		struct takt_channel_config cfg;
		takt_channel_config_get(ch, &cfg);
		exercise_monitor(ch, cfg.lanes);
		takt_consumer *c;
		takt_consumer_attach(ch, &c); /* -EACCES */
		takt_channel_close(ch);
	}
out_fd:
	close(fd);
out:
	takt_unlink_stale(name);
	takt_unlink(name);
	/* takt_unlink takes the lane count from the (fuzzed) header: remove
	 * the semaphores of the lanes we created ourselves */
	for (uint32_t k = 0; k < lanes; k++) {
		snprintf(obj, sizeof obj, "/takt.%s.tx%u", name, k);
		sem_unlink(obj);
	}
	snprintf(obj, sizeof obj, "/takt.%s.rx", name);
	sem_unlink(obj);
	return 0;
}
