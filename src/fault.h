/* SPDX-License-Identifier: MIT */
/*
 * fault.h - numbered crash points for the fault-injection tests.  In a
 * build with TAKT_FAULT_POINTS, TAKT_FAULT_POINT(k) kills the process with
 * SIGKILL when the environment variable TAKT_CRASH_AT names point k and
 * TAKT_CRASH_AFTER (default 0) calls of it have passed.  Normal builds
 * compile it to nothing.
 *
 * The points sit between consecutive stores to shared memory on the
 * producer and consumer paths, so a crash at point k leaves the segment
 * exactly as a SIGKILL between those two stores would.  Random-time kills
 * (tests/recovery/test_fault.c) cover everything in between, including
 * the middle of payload copies and of the doorbell code.
 *
 * The numbering is part of the test interface: tests/recovery iterates
 * over [TAKT_FP_TX_FIRST, TAKT_FP_TX_END) and [TAKT_FP_RX_FIRST,
 * TAKT_FP_RX_END).  Append new points before the *_END markers (at most
 * 19 and 63).  Numbers 20..31 belong to the state channels (src/state.c).
 */
#ifndef TAKT_FAULT_H
#define TAKT_FAULT_H

enum takt_fault_point_id {
	/* ---- producer ---- */
	TAKT_FP_TX_FIRST = 1,
	TAKT_FP_TX_OPEN_SLOT = TAKT_FP_TX_FIRST, /* attach: lane slot locked, nothing stored */
	TAKT_FP_TX_RECOVERED,     /* attach: true tail found and stored */
	TAKT_FP_TX_OPEN_PID,      /* attach: pid stored, start time not yet */
	TAKT_FP_TX_OPEN_DONE,     /* attach: start time, epoch, last_ns stored */
	TAKT_FP_TX_PAYLOAD,       /* send: payload copied into the ring */
	TAKT_FP_TX_LEN,           /* header: len stored, type not yet */
	TAKT_FP_TX_TYPE,          /* header: type stored */
	TAKT_FP_TX_EARLY_COMMIT,  /* a commit word other than the publishing one stored
				   * (record after padding, later records of a batch) */
	TAKT_FP_TX_ZERO_NEXT,     /* commit word at the new tail zeroed (try_send: before
				   * the payload; commit: before the header; batch: in
				   * publish) */
	TAKT_FP_TX_TAIL,          /* publish: tail stored */
	TAKT_FP_TX_RECORDS,       /* publish: records_sent stored */
	TAKT_FP_TX_BYTES,         /* publish: bytes_sent stored, commit not yet */
	TAKT_FP_TX_COMMITTED,     /* publish: commit word release-stored (record is out) */
	TAKT_FP_TX_RUNG,          /* doorbell rung; the call has not returned yet */
	TAKT_FP_TX_FULL,          /* full_events stored on a refused send */
	TAKT_FP_TX_COMMIT_CALL,   /* takt_commit entered: payload written by the caller */
	TAKT_FP_TX_CLOSE,         /* close: last_ns stored, lane not yet released */
	TAKT_FP_TX_END,
	/* 20..31: src/state.c */
	/* ---- consumer ---- */
	TAKT_FP_RX_FIRST = 32,
	TAKT_FP_RX_OPEN_SLOT = TAKT_FP_RX_FIRST, /* attach: consumer slot locked */
	TAKT_FP_RX_OPEN_PID,      /* attach: pid stored */
	TAKT_FP_RX_OPEN_DONE,     /* attach: start time, epoch, last_ns stored */
	TAKT_FP_RX_COPIED,        /* receive: payload copied out, head not advanced */
	TAKT_FP_RX_PAD_SKIPPED,   /* a padding record skipped, head not yet published */
	TAKT_FP_RX_RECORDS,       /* position: records_received stored */
	TAKT_FP_RX_BYTES,         /* position: bytes_received stored, consumed not yet */
	TAKT_FP_RX_HEAD,          /* position: consumed stored */
	TAKT_FP_RX_RUNG,          /* doorbell rung; the call has not returned yet */
	TAKT_FP_RX_EMPTY,         /* empty_events stored */
	TAKT_FP_RX_BATCH_MID,     /* batch: a record consumed, head not yet published */
	TAKT_FP_RX_RELEASE_CALL,  /* takt_release entered: the peeked record was used */
	TAKT_FP_RX_CLOSE,         /* close: heads published, slot not yet released */
	TAKT_FP_RX_RELEASED,      /* release: head release-stored */
	TAKT_FP_RX_END,
};

_Static_assert(TAKT_FP_TX_END <= 20, "producer crash points collide with src/state.c's");
_Static_assert(TAKT_FP_RX_FIRST >= 32, "consumer crash points collide with src/state.c's");

#ifdef TAKT_FAULT_POINTS
void takt_fault_point(int k);
#define TAKT_FAULT_POINT(k) takt_fault_point(k)
#else
#define TAKT_FAULT_POINT(k) ((void)0)
#endif

#endif
