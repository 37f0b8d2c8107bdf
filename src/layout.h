/* SPDX-License-Identifier: MIT */
/*
 * layout.h - every byte of a takt segment (layout 1.0).  docs/FORMAT.md
 * describes the same bytes in prose; each field has a static_assert on its
 * offset and size below, so the two cannot drift apart silently.
 *
 * Segment = header (256 B) | consumer block (384 B) | lane 0 | lane 1 | ...
 * lane     = lane control (384 B) | data area (capacity bytes, power of two)
 *
 * Every block is 128-byte aligned and every word one side writes on its hot
 * path lives in a 128-byte block of its own: x86 prefetches cache lines in
 * adjacent pairs, so 64-byte separation still shares.
 *
 * Shared memory is untrusted: nothing here is ever used as a pointer, and
 * every value read from it is read once into a local and validated.
 */
#ifndef TAKT_LAYOUT_H
#define TAKT_LAYOUT_H

#include <assert.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* Every atomic in the segment must be lock-free: a lock inside an atomic
 * would be process-private and so no lock at all across processes. */
static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "64-bit atomics must be lock-free");
static_assert(ATOMIC_INT_LOCK_FREE == 2, "32-bit atomics must be lock-free");

#define TAKT_BLOCK 128u /* the unit of false-sharing separation */

#define TAKT_MAGIC 0x31474553544b4154ull /* "TAKTSEG1" read as little-endian */
#define TAKT_LAYOUT_MAJOR 2u
#define TAKT_LAYOUT_MINOR 0u
#define TAKT_READY_VALUE 0x59444552u     /* "REDY": stored last by the creator */
#define TAKT_KIND_QUEUE 1u
#define TAKT_KIND_STATE 2u

typedef _Atomic uint64_t takt_a64;
typedef _Atomic uint32_t takt_a32;
static_assert(sizeof(takt_a64) == 8 && alignof(takt_a64) == 8, "fixed-width atomic");
static_assert(sizeof(takt_a32) == 4 && alignof(takt_a32) == 4, "fixed-width atomic");

/* ---- Header: immutable after `ready` is set ---------------------------- */
struct takt_seg_header {
	uint64_t magic;           /* TAKT_MAGIC */
	uint16_t layout_major;    /* incompatible changes */
	uint16_t layout_minor;    /* compatible additions (in reserved space) */
	uint32_t header_size;     /* sizeof(struct takt_seg_header) */
	uint64_t total_size;      /* bytes of the whole segment */
	uint32_t kind;            /* TAKT_KIND_QUEUE */
	uint32_t lane_count;      /* 1..TAKT_LANES_MAX */
	uint64_t lane_capacity;   /* data bytes per lane, power of two */
	uint32_t max_record;      /* largest payload, <= lane_capacity / 4 */
	uint32_t flags;           /* 0 */
	uint64_t created_ns;      /* CLOCK_REALTIME at creation */
	uint64_t nonce;           /* random; new each time the name is created */
	uint64_t consumer_offset; /* offset of struct takt_seg_consumer */
	uint64_t lanes_offset;    /* offset of lane 0 */
	uint64_t lane_stride;     /* bytes from one lane to the next */
	uint64_t lane_data_offset;/* offset of the data area inside a lane */
	uint32_t creator_pid;     /* display only */
	uint32_t mode;            /* permission bits given at creation */
	uint8_t reserved[148];    /* zero; minor versions may define it */
	takt_a32 ready;           /* TAKT_READY_VALUE, release-stored last */
};

/* ---- Consumer block ----------------------------------------------------- */
struct takt_seg_consumer {
	/* block 0: the receive doorbell.  Written only by a consumer about to
	 * park (and by the producer that wakes it), so every producer keeps a
	 * clean shared copy of this line and checking it costs no miss. */
	takt_a32 rx_doorbell;     /* bit 0: the consumer is (about to be) parked */
	uint32_t pad0;
	uint8_t pad0b[TAKT_BLOCK - 8];
	/* block 1: written on the consumer's hot path */
	takt_a64 empty_events;    /* receives that found every lane empty */
	takt_a64 last_ns;         /* CLOCK_MONOTONIC_COARSE of last open/receive */
	uint8_t pad1[TAKT_BLOCK - 16];
	/* block 2: who holds the consumer slot (display only; liveness is the OFD lock) */
	takt_a64 start_time;      /* /proc/<pid>/stat starttime of the holder */
	takt_a32 pid;             /* pid of the holder (in its pid namespace) */
	takt_a32 epoch;           /* incremented at each consumer open */
	uint8_t pad2[TAKT_BLOCK - 16];
};

/* ---- Lane control --------------------------------------------------------- */
struct takt_seg_lane {
	/* block 0: written only by the lane's producer, read off the fast path */
	takt_a64 tail;            /* end of the last reserved+committed record (bytes) */
	takt_a64 records_sent;
	takt_a64 bytes_sent;      /* payload bytes */
	takt_a64 full_events;     /* sends refused for lack of space */
	takt_a64 last_ns;         /* CLOCK_MONOTONIC_COARSE of last open/send */
	uint8_t pad0[TAKT_BLOCK - 40];
	/* block 1, first line: who holds the producer slot (display only) */
	takt_a64 start_time;
	takt_a32 pid;
	takt_a32 epoch;           /* incremented at each producer open of this lane */
	uint8_t pad1[TAKT_BLOCK / 2 - 16];
	/* block 1, second line: the consumer's position, stored on every
	 * record and read by nobody on the hot path (a new consumer resumes
	 * here; stats and waits read it).  Not in block 2: a producer reading
	 * block 2's head may pull the adjacent line of the same 128-byte block
	 * with it (adjacent-line prefetch), and then every record's store here
	 * would wait for that line (measured: half the streaming rate). */
	takt_a64 consumed;        /* consumer's position: every record before it was received */
	takt_a64 records_received;
	takt_a64 bytes_received;
	uint8_t pad1b[TAKT_BLOCK / 2 - 24];
	/* block 2: written by the consumer about once per capacity/8 bytes;
	 * read by the producer only when its cached head says the ring is full */
	takt_a64 head;            /* released position: the producer may reuse what lies before it */
	takt_a32 tx_doorbell;     /* bit 0: this lane's producer is (about to be) parked */
	takt_a32 broken;          /* 1: a consumer found this lane corrupted */
	uint8_t pad2[TAKT_BLOCK - 16];
};

/* ---- Records in a lane's data area ------------------------------------ */
/*
 * A record is a 16-byte header and its payload, padded to 8 bytes.  The
 * commit word is stored last, with release order, and is what the consumer
 * polls: it is the record's own position with bit 0 set (bit 1 too for a
 * padding record, which fills the data area up to its end).  A header left
 * from an earlier lap holds an older position and never matches; zeroed
 * memory never matches because bit 0 is clear.
 */
struct takt_rec_header {
	takt_a64 commit;          /* position | TAKT_COMMIT_BIT [| TAKT_PADDING_BIT] */
	takt_a32 len;             /* payload bytes */
	takt_a32 type;            /* sender's record type */
};
#define TAKT_REC_HEADER 16u
#define TAKT_REC_ALIGN 8u
#define TAKT_COMMIT_BIT 1ull
#define TAKT_PADDING_BIT 2ull
/* Room the producer keeps free after every record to overwrite the next
 * commit word (see lane.h: "headroom"). */
#define TAKT_HEADROOM 8u

#define TAKT_SEG_HEADER_SIZE 256u
#define TAKT_SEG_CONSUMER_SIZE (3u * TAKT_BLOCK)
#define TAKT_SEG_LANE_CTRL_SIZE (3u * TAKT_BLOCK)

/* ---- Offsets and sizes, asserted ---------------------------------------- */
#define TAKT_ASSERT_FIELD(type, field, off, size)                                     \
	static_assert(offsetof(type, field) == (off), #type "." #field " offset");   \
	static_assert(sizeof(((type *)0)->field) == (size), #type "." #field " size")

TAKT_ASSERT_FIELD(struct takt_seg_header, magic, 0, 8);
TAKT_ASSERT_FIELD(struct takt_seg_header, layout_major, 8, 2);
TAKT_ASSERT_FIELD(struct takt_seg_header, layout_minor, 10, 2);
TAKT_ASSERT_FIELD(struct takt_seg_header, header_size, 12, 4);
TAKT_ASSERT_FIELD(struct takt_seg_header, total_size, 16, 8);
TAKT_ASSERT_FIELD(struct takt_seg_header, kind, 24, 4);
TAKT_ASSERT_FIELD(struct takt_seg_header, lane_count, 28, 4);
TAKT_ASSERT_FIELD(struct takt_seg_header, lane_capacity, 32, 8);
TAKT_ASSERT_FIELD(struct takt_seg_header, max_record, 40, 4);
TAKT_ASSERT_FIELD(struct takt_seg_header, flags, 44, 4);
TAKT_ASSERT_FIELD(struct takt_seg_header, created_ns, 48, 8);
TAKT_ASSERT_FIELD(struct takt_seg_header, nonce, 56, 8);
TAKT_ASSERT_FIELD(struct takt_seg_header, consumer_offset, 64, 8);
TAKT_ASSERT_FIELD(struct takt_seg_header, lanes_offset, 72, 8);
TAKT_ASSERT_FIELD(struct takt_seg_header, lane_stride, 80, 8);
TAKT_ASSERT_FIELD(struct takt_seg_header, lane_data_offset, 88, 8);
TAKT_ASSERT_FIELD(struct takt_seg_header, creator_pid, 96, 4);
TAKT_ASSERT_FIELD(struct takt_seg_header, mode, 100, 4);
TAKT_ASSERT_FIELD(struct takt_seg_header, reserved, 104, 148);
TAKT_ASSERT_FIELD(struct takt_seg_header, ready, 252, 4);
static_assert(sizeof(struct takt_seg_header) == TAKT_SEG_HEADER_SIZE, "header size");

TAKT_ASSERT_FIELD(struct takt_seg_consumer, rx_doorbell, 0, 4);
TAKT_ASSERT_FIELD(struct takt_seg_consumer, empty_events, 128, 8);
TAKT_ASSERT_FIELD(struct takt_seg_consumer, last_ns, 136, 8);
TAKT_ASSERT_FIELD(struct takt_seg_consumer, start_time, 256, 8);
TAKT_ASSERT_FIELD(struct takt_seg_consumer, pid, 264, 4);
TAKT_ASSERT_FIELD(struct takt_seg_consumer, epoch, 268, 4);
static_assert(sizeof(struct takt_seg_consumer) == TAKT_SEG_CONSUMER_SIZE, "consumer size");

TAKT_ASSERT_FIELD(struct takt_seg_lane, tail, 0, 8);
TAKT_ASSERT_FIELD(struct takt_seg_lane, records_sent, 8, 8);
TAKT_ASSERT_FIELD(struct takt_seg_lane, bytes_sent, 16, 8);
TAKT_ASSERT_FIELD(struct takt_seg_lane, full_events, 24, 8);
TAKT_ASSERT_FIELD(struct takt_seg_lane, last_ns, 32, 8);
TAKT_ASSERT_FIELD(struct takt_seg_lane, start_time, 128, 8);
TAKT_ASSERT_FIELD(struct takt_seg_lane, pid, 136, 4);
TAKT_ASSERT_FIELD(struct takt_seg_lane, epoch, 140, 4);
TAKT_ASSERT_FIELD(struct takt_seg_lane, consumed, 192, 8);
TAKT_ASSERT_FIELD(struct takt_seg_lane, records_received, 200, 8);
TAKT_ASSERT_FIELD(struct takt_seg_lane, bytes_received, 208, 8);
TAKT_ASSERT_FIELD(struct takt_seg_lane, head, 256, 8);
TAKT_ASSERT_FIELD(struct takt_seg_lane, tx_doorbell, 264, 4);
TAKT_ASSERT_FIELD(struct takt_seg_lane, broken, 268, 4);
static_assert(sizeof(struct takt_seg_lane) == TAKT_SEG_LANE_CTRL_SIZE, "lane control size");

TAKT_ASSERT_FIELD(struct takt_rec_header, commit, 0, 8);
TAKT_ASSERT_FIELD(struct takt_rec_header, len, 8, 4);
TAKT_ASSERT_FIELD(struct takt_rec_header, type, 12, 4);
static_assert(sizeof(struct takt_rec_header) == TAKT_REC_HEADER, "record header size");

/* The fixed geometry every valid segment has; an opener recomputes it from
 * lane_count and lane_capacity and insists the header says the same. */
#define TAKT_CONSUMER_OFFSET ((uint64_t)TAKT_SEG_HEADER_SIZE)
#define TAKT_LANES_OFFSET (TAKT_CONSUMER_OFFSET + TAKT_SEG_CONSUMER_SIZE)
#define TAKT_LANE_DATA_OFFSET ((uint64_t)TAKT_SEG_LANE_CTRL_SIZE)
static inline uint64_t takt_lane_stride(uint64_t capacity)
{
	return TAKT_LANE_DATA_OFFSET + capacity; /* capacity >= 1024 keeps 128-alignment */
}
static inline uint64_t takt_total_size(uint32_t lanes, uint64_t capacity)
{
	uint64_t raw = TAKT_LANES_OFFSET + (uint64_t)lanes * takt_lane_stride(capacity);
	return (raw + 4095u) & ~(uint64_t)4095u; /* whole pages */
}

/* ---- State channels (kind 2) ------------------------------------------ */
/*
 * Segment = header (256 B) | state control (384 B) | 3 slots.
 * Header fields for kind 2: lane_count = 1, max_record = image size,
 * lane_capacity = slot stride (128-byte slot header + image rounded up to
 * 128), consumer_offset = 256, lanes_offset = 640 (slot 0),
 * lane_stride = slot stride, lane_data_offset = 128.
 *
 * A triple buffer: at any time one slot is the writer's, one is the
 * reader's, and one is the "middle", holding the newest published image.
 * The middle's index and a NEW bit live in one word that each side swaps
 * with a single atomic exchange, so both sides are wait-free.
 */
struct takt_seg_state {
	/* block 0: the exchange word and the reader's doorbell */
	takt_a64 middle;          /* bits 0-1: middle slot; bit 2: NEW (unread) */
	takt_a32 rx_doorbell;     /* bit 0: the reader is (about to be) parked */
	uint32_t pad0;
	uint8_t pad0b[TAKT_BLOCK - 16];
	/* block 1: the writer */
	takt_a32 writer_slot;     /* the slot the writer owns (recovery) */
	takt_a32 writer_pid;
	takt_a64 writes;          /* images published */
	takt_a64 writer_last_ns;  /* CLOCK_MONOTONIC of the last publish */
	takt_a64 writer_start_time;
	takt_a32 writer_epoch;
	uint8_t pad1[TAKT_BLOCK - 36];
	/* block 2: the reader */
	takt_a32 reader_slot;     /* the slot the reader owns (recovery) */
	takt_a32 reader_pid;
	takt_a64 reads;           /* images taken (new ones only) */
	takt_a64 reader_last_ns;
	takt_a64 reader_start_time;
	takt_a32 reader_epoch;
	uint8_t pad2[TAKT_BLOCK - 36];
};

struct takt_seg_state_slot {
	takt_a64 generation;      /* publish count when this image was published */
	takt_a64 written_ns;      /* CLOCK_MONOTONIC when it was published */
	takt_a32 len;             /* image bytes, <= image size */
	uint32_t pad;
	uint8_t pad1[TAKT_BLOCK - 24];
};

#define TAKT_STATE_MIDDLE_MASK 3ull
/* writer_slot / reader_slot while their owner exchanges: its slot before the
 * exchange with this bit set (docs/FORMAT.md, "State channels"). */
#define TAKT_STATE_SLOT_MOVING 0x10u
#define TAKT_STATE_NEW 4ull
#define TAKT_SEG_STATE_SIZE (3u * TAKT_BLOCK)
#define TAKT_STATE_SLOT_HEADER ((uint64_t)TAKT_BLOCK)

TAKT_ASSERT_FIELD(struct takt_seg_state, middle, 0, 8);
TAKT_ASSERT_FIELD(struct takt_seg_state, rx_doorbell, 8, 4);
TAKT_ASSERT_FIELD(struct takt_seg_state, writer_slot, 128, 4);
TAKT_ASSERT_FIELD(struct takt_seg_state, writer_pid, 132, 4);
TAKT_ASSERT_FIELD(struct takt_seg_state, writes, 136, 8);
TAKT_ASSERT_FIELD(struct takt_seg_state, writer_last_ns, 144, 8);
TAKT_ASSERT_FIELD(struct takt_seg_state, writer_start_time, 152, 8);
TAKT_ASSERT_FIELD(struct takt_seg_state, writer_epoch, 160, 4);
TAKT_ASSERT_FIELD(struct takt_seg_state, reader_slot, 256, 4);
TAKT_ASSERT_FIELD(struct takt_seg_state, reader_pid, 260, 4);
TAKT_ASSERT_FIELD(struct takt_seg_state, reads, 264, 8);
TAKT_ASSERT_FIELD(struct takt_seg_state, reader_last_ns, 272, 8);
TAKT_ASSERT_FIELD(struct takt_seg_state, reader_start_time, 280, 8);
TAKT_ASSERT_FIELD(struct takt_seg_state, reader_epoch, 288, 4);
static_assert(sizeof(struct takt_seg_state) == TAKT_SEG_STATE_SIZE, "state control size");
TAKT_ASSERT_FIELD(struct takt_seg_state_slot, generation, 0, 8);
TAKT_ASSERT_FIELD(struct takt_seg_state_slot, written_ns, 8, 8);
TAKT_ASSERT_FIELD(struct takt_seg_state_slot, len, 16, 4);
static_assert(sizeof(struct takt_seg_state_slot) == TAKT_BLOCK, "state slot header size");

static inline uint64_t takt_state_slot_stride(uint64_t image_size)
{
	return TAKT_STATE_SLOT_HEADER + ((image_size + TAKT_BLOCK - 1) & ~(uint64_t)(TAKT_BLOCK - 1));
}
static inline uint64_t takt_state_total_size(uint64_t image_size)
{
	uint64_t raw = TAKT_LANES_OFFSET + 3u * takt_state_slot_stride(image_size);
	return (raw + 4095u) & ~(uint64_t)4095u;
}

/* OFD-lock slot bytes: byte 0 is the consumer, byte 1 + k the producer of
 * lane k; the creator holds byte 127 until the segment is ready, so a
 * half-created segment is never mistaken for a stale one. */
#define TAKT_SLOT_CONSUMER 0u
#define TAKT_SLOT_LANE(k) (1u + (unsigned)(k))
#define TAKT_SLOT_CREATOR 127u
/* State channels: whoever recovers a slot index (writer or reader opening)
 * holds byte 126 while it does, so two openers never pick the same slot. */
#define TAKT_SLOT_RECOVERY 126u
#define TAKT_SLOT_COUNT 128u

#endif /* TAKT_LAYOUT_H */
