// SPDX-License-Identifier: MIT
package io.takt.peer;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.time.Duration;
import java.util.List;

/**
 * A producing attachment (docs/PROTOCOL.md §5).  Each record gets the next sequence
 * number of the attachment (1, 2, 3, ...); {@link #committed()} is the count taktd
 * acknowledged as committed to the ring.
 *
 * <p>{@code send} writes the record at once and returns its sequence number without
 * waiting for the acknowledgement; at most {@code window} records are unacknowledged
 * (a full ring blocks the next send: back-pressure).  {@link #flush(Duration)} waits
 * until everything sent is committed; {@link #sendAndWait} does both for one record.
 * {@link #sendBatch} packs many records into DATA_BATCH frames: the fast path.
 *
 * <p>A timeout bounds the wait for room in the window and the write itself (taktd
 * stops reading while the ring is full).  A record whose write timed out before any
 * of it was written is not counted as sent (Timeout); one half-written at the deadline
 * is sent: its rest stays queued on the connection and is written in order (see
 * {@link TaktClient}).  Of a {@code sendBatch} that times out, the frames written (or
 * half-written) before count as sent ({@link #sent()}).
 *
 * <p>Records above the channel's max_record throw {@link TaktException.RecordTooLarge}
 * before anything is sent.  Thread-safe.
 */
public final class Producer implements AutoCloseable {
    private static final long FOREVER = Long.MAX_VALUE;
    private final TaktClient client;
    private final TaktClient.Attachment att;
    private final int window;
    private final long windowBytes;
    private final int batchLimit;
    private final ByteBuffer batch;
    private final java.util.ArrayDeque<long[]> marks = new java.util.ArrayDeque<>(); // {endSeq, startBytes}
    private long sentBytes;

    Producer(TaktClient client, TaktClient.Attachment att, AttachOptions o) {
        this.client = client;
        this.att = att;
        this.window = Math.max(1, o.window);
        this.windowBytes = Math.max(1, o.windowBytes);
        int limit = Math.min(client.server().maxFrame(), TaktClient.CLIENT_BATCH_MAX);
        this.batchLimit = Math.max(limit, Wire.HDR + Wire.BATCH_REC + att.info.maxRecord());
        this.batch = ByteBuffer.allocate(batchLimit).order(ByteOrder.LITTLE_ENDIAN);
    }

    public String channel() { return att.name; }
    public ChannelInfo info() { return att.info; }
    public int maxRecord() { return att.info.maxRecord(); }

    /** Records sent on this attachment. */
    public long sent() {
        client.lock.lock();
        try { return att.sent; } finally { client.lock.unlock(); }
    }

    /** Records taktd acknowledged as committed to the ring. */
    public long committed() {
        client.lock.lock();
        try { return att.committed; } finally { client.lock.unlock(); }
    }

    /** Send one record of type 0; returns its sequence number. */
    public long send(byte[] data) throws TaktException {
        return send(data, 0, null);
    }

    /** Send one record of the given type (unsigned, below 0xFFFF0000); returns its sequence number. */
    public long send(byte[] data, int type) throws TaktException {
        return send(data, type, null);
    }

    /** Send one record; wait at most timeout (null: no limit) for room in the window and to write it. */
    public long send(byte[] data, int type, Duration timeout) throws TaktException {
        checkRecord(data.length, type);
        return sendFrame(Wire.DATA, type, ByteBuffer.wrap(data), 1, deadline(timeout));
    }

    /** Send one record and wait until it is committed to the ring. */
    public long sendAndWait(byte[] data, int type, Duration timeout) throws TaktException {
        long dl = deadline(timeout);
        checkRecord(data.length, type);
        long seq = sendFrame(Wire.DATA, type, ByteBuffer.wrap(data), 1, dl);
        awaitCommitted(seq, dl);
        return seq;
    }

    /** Send records (all of one type) in DATA_BATCH frames; returns the last sequence number. */
    public long sendBatch(List<byte[]> records, int type) throws TaktException {
        return sendBatch(records.toArray(new byte[0][]), null, type, null);
    }

    /**
     * Send records in DATA_BATCH frames.  types may be null (every record of type
     * defaultType) or give each record's type.  Every record is checked against
     * max_record first.  Returns the sequence number of the last record.
     */
    public synchronized long sendBatch(byte[][] records, int[] types, int defaultType, Duration timeout)
            throws TaktException {
        for (int i = 0; i < records.length; i++)
            checkRecord(records[i].length, types != null ? types[i] : defaultType);
        long dl = deadline(timeout);
        long seq = sent();
        batch.clear();
        batch.position(Wire.HDR);
        int n = 0;
        for (int i = 0; i < records.length; i++) {
            byte[] d = records[i];
            if (n > 0 && batch.remaining() < Wire.BATCH_REC + d.length) {
                seq = flushBatch(n, dl);
                n = 0;
            }
            batch.putInt(d.length).putInt(types != null ? types[i] : defaultType).put(d);
            n++;
        }
        if (n > 0)
            seq = flushBatch(n, dl);
        return seq;
    }

    private long flushBatch(int n, long dl) throws TaktException {
        int len = batch.position();
        batch.putInt(0, len).putShort(4, (short) Wire.DATA_BATCH).putShort(6, (short) 0).putInt(8, att.chan)
                .putInt(12, n);
        batch.flip();
        long seq = reserve(n, len, dl);
        try {
            client.writeRaw(batch, dl, "send to " + att.name);
        } catch (TaktException e) {
            unreserve(n, len);
            throw e;
        }
        batch.clear();
        batch.position(Wire.HDR);
        return seq;
    }

    private long sendFrame(int type, int rtype, ByteBuffer body, int n, long dl) throws TaktException {
        synchronized (this) {
            long bytes = Wire.HDR + body.remaining();
            long seq = reserve(n, bytes, dl);
            try {
                client.writeFrame(type, att.chan, rtype, body, dl, "send to " + att.name);
            } catch (TaktException e) {
                unreserve(n, bytes);
                throw e;
            }
            return seq;
        }
    }

    /** Wait for room in the window, then count n records as sent; returns the last one's number. */
    private long reserve(int n, long bytes, long dl) throws TaktException {
        client.awaitUntil(() -> room(n, bytes), dl, "no room in the window of " + att.name
                + " (records unacknowledged: is the channel's consumer running?)");
        client.lock.lock();
        try {
            if (att.detached)
                throw new TaktException.Closed("producer of " + att.name + " is closed");
            marks.add(new long[] {att.sent + n, sentBytes});
            att.sent += n;
            sentBytes += bytes;
            return att.sent;
        } finally {
            client.lock.unlock();
        }
    }

    /**
     * A write that failed with nothing written (the connection still usable) leaves no
     * record sent: take the reservation back (this producer's monitor held, so it is the
     * last one).  A failed connection keeps the count: nothing more is sent anyway.
     */
    private void unreserve(int n, long bytes) {
        client.lock.lock();
        try {
            if (client.error() != null || marks.isEmpty())
                return;
            marks.pollLast();
            att.sent -= n;
            sentBytes -= bytes;
            client.changed.signalAll();
        } finally {
            client.lock.unlock();
        }
    }

    /** Called with the client's lock held. */
    private boolean room(int n, long bytes) {
        if (att.detached)
            return true;
        long unacked = att.sent - att.committed;
        if (unacked == 0)
            return true;
        while (!marks.isEmpty() && marks.peekFirst()[0] <= att.committed)
            marks.pollFirst();
        long unackedBytes = marks.isEmpty() ? 0 : sentBytes - marks.peekFirst()[1];
        return unacked + n <= window && unackedBytes + bytes <= windowBytes;
    }

    private void checkRecord(int len, int type) throws TaktException {
        if ((type & 0xffffffffL) >= Wire.TYPE_RESERVED)
            throw TaktException.ServerError.of(ErrorCode.INVALID.code, 22, false, att.name,
                    "record type " + Integer.toUnsignedString(type) + " is reserved (>= 0xFFFF0000)");
        if (len > att.info.maxRecord())
            throw new TaktException.RecordTooLarge(len, att.info.maxRecord(), att.name);
    }

    private static long deadline(Duration timeout) {
        return timeout == null ? FOREVER : System.nanoTime() + timeout.toNanos();
    }

    private void awaitCommitted(long seq, long dl) throws TaktException {
        client.awaitUntil(() -> att.committed >= seq || att.detached, dl,
                "record " + seq + " of " + att.name + " not acknowledged in time");
    }

    /** Wait until record seq is committed; returns the committed count. */
    public long awaitCommitted(long seq, Duration timeout) throws TaktException {
        awaitCommitted(seq, deadline(timeout));
        return committed();
    }

    /** Wait until every record sent is committed (timeout null: no limit); returns the count. */
    public long flush(Duration timeout) throws TaktException {
        return awaitCommitted(sent(), timeout);
    }

    /**
     * Flush (bounded by the client's request timeout), then DETACH (bounded too).  The
     * producer is closed afterwards whatever happened (a second close does nothing).
     * Throws {@link TaktException.Timeout} if records were still unacknowledged at the
     * timeout ({@link #committed()} {@code <} {@link #sent()}: they may or may not have
     * reached the ring), {@link TaktException.ConnectionLost} if the connection was lost
     * with records unacknowledged, or what DETACH threw.
     */
    @Override
    public void close() throws TaktException {
        client.lock.lock();
        try {
            if (att.detached)
                return;
        } finally {
            client.lock.unlock();
        }
        TaktException report = null;
        try {
            flush(client.requestTimeout);
        } catch (TaktException.ConnectionLost e) {
            if (committed() < sent())
                report = e; // records may be lost: say so
        } catch (TaktException.Closed e) {
            // the client was closed (it flushed)
        } catch (TaktException e) {
            report = new TaktException.Timeout("closing the producer of " + att.name + ": " + (sent() - committed())
                    + " of " + sent() + " records not acknowledged within " + client.requestTimeout.toMillis()
                    + " ms (detached anyway; they may or may not be in the ring)", e);
        }
        long[] r = null;
        try {
            r = client.detach(att, client.requestTimeout);
        } catch (TaktException.ConnectionLost | TaktException.Closed e) {
            // the connection is gone: detached
        } catch (TaktException e) {
            if (report == null)
                report = e;
            else
                report.addSuppressed(e);
        }
        if (r != null) {
            client.lock.lock();
            try {
                att.committed = Math.max(att.committed, r[0]);
            } finally {
                client.lock.unlock();
            }
        }
        if (report != null)
            throw report;
    }
}
