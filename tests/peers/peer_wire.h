/* SPDX-License-Identifier: MIT */
/*
 * peer_wire.h - what the native test peers (peer_c.c, state_c.c) share with
 * the Python and Java tests' record formats: CRC-32 (zlib's, as Python's
 * zlib.crc32 and Java's CRC32 compute it), little-endian integers, and the
 * test body every peer writes and checks: the sequence number (8 bytes),
 * byte i = (i + seq) mod 256, and the CRC-32 of all that (4 bytes).
 * Included by one source file per program: the table is per program.
 */
#ifndef TAKT_PEER_WIRE_H
#define TAKT_PEER_WIRE_H

#include <stddef.h>
#include <stdint.h>

static uint32_t crc_table[256];

static void crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
		crc_table[i] = c;
	}
}

static uint32_t crc32_of(const uint8_t *p, size_t n)
{
	uint32_t c = 0xffffffffu;
	for (size_t i = 0; i < n; i++)
		c = crc_table[(c ^ p[i]) & 0xff] ^ (c >> 8);
	return c ^ 0xffffffffu;
}

static inline void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t get64(const uint8_t *p)
{
	return get32(p) | (uint64_t)get32(p + 4) << 32;
}

/* Write the test body of `len` (>= 12) bytes for sequence number seq. */
static void body_fill(uint8_t *p, uint64_t seq, uint32_t len)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(seq >> (8 * i));
	for (uint32_t i = 8; i < len - 4; i++)
		p[i] = (uint8_t)(i + seq);
	put32(p + len - 4, crc32_of(p, len - 4));
}

/* 0 if p holds a valid test body of len (>= 12) bytes; *seq gets its number.
 * -2: wrong CRC, -3: wrong pattern. */
static int body_check(const uint8_t *p, uint32_t len, uint64_t *seq)
{
	*seq = get64(p);
	if (get32(p + len - 4) != crc32_of(p, len - 4))
		return -2;
	for (uint32_t i = 8; i < len - 4; i++)
		if (p[i] != (uint8_t)(i + *seq))
			return -3;
	return 0;
}

#endif
