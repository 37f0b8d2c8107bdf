// SPDX-License-Identifier: MIT
package io.takt.peer;

import java.io.IOException;
import java.net.ConnectException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.ClosedSelectorException;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.AccessDeniedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

/**
 * A connection to taktd (docs/PROTOCOL.md): attach producers and consumers to takt
 * channels over taktd's Unix domain socket.  JDK 17, no dependencies.
 *
 * <pre>{@code
 * try (TaktClient c = TaktClient.connect();                  // taktd's default socket
 *      Producer p = c.openProducer("plc.cmd")) {
 *     p.send("start".getBytes(), 1);
 *     p.flush(Duration.ofSeconds(5));                          // committed to the ring
 * }
 * }</pre>
 *
 * <p>Thread safety: a client, its producers and consumers may be used from several
 * threads.  A daemon reader thread per client reads every frame and hands records,
 * acknowledgements and answers to the waiting callers; writes are serialised by a lock.
 *
 * <p>Writes honour the caller's deadline: when taktd stops reading (a full ring:
 * back-pressure) a write with a timeout throws {@link TaktException.Timeout} if
 * nothing of its frame was written (the connection stays usable).  A frame
 * half-written at the deadline is not lost: its rest stays queued and is written
 * before any later frame (by the next write, or a background thread as soon as taktd
 * reads again), and the write counts as done.  A DETACH that cannot be written in
 * time is queued the same way, never dropped.  {@link #close()} is bounded by the
 * request timeout and wakes a thread blocked in a write without a timeout (it then
 * throws).
 *
 * <p>Connection loss (taktd killed, restarted or stopped) is reported, not hidden:
 * every call then throws {@link TaktException.ConnectionLost}, whose {@code committed}
 * tells what each producer got acknowledged.  Reconnect with a new client
 * ({@link Builder#connectTimeout} waits for taktd to come back) and resend from there.
 */
public final class TaktClient implements AutoCloseable {
    /** The maximum frame this client announces (and so the largest record it can consume). */
    public static final int DEFAULT_MAX_FRAME = 4 << 20;
    static final int CLIENT_BATCH_MAX = 256 << 10;
    /** The largest maxFrame a client accepts (its read buffer grows up to it). */
    public static final int MAX_FRAME_LIMIT = 1 << 30;
    static final long FOREVER = Long.MAX_VALUE;

    final Path socketPath;
    final Duration requestTimeout;
    final int maxFrame;
    private final SocketChannel ch;
    private final Selector readSel, writeSel;
    final ReentrantLock lock = new ReentrantLock();
    final Condition changed = lock.newCondition();
    private final ReentrantLock writeLock = new ReentrantLock();
    private final Map<Integer, Object> answers = new HashMap<>();
    final Map<Integer, Attachment> attachments = new HashMap<>();
    /** ATTACH requests sent and not answered yet: request id -> what was asked. */
    private final Map<Integer, PendingAttach> attaching = new HashMap<>();
    /**
     * Frames that must reach taktd but could not be written in time: DETACHes, and the
     * rest of a frame half-written at its deadline (guarded by lock; only the writeLock
     * holder writes or removes the head, which may be half-written).  Whoever writes
     * next writes them first; a flusher thread writes them when nobody else does.
     */
    private final ArrayDeque<Pending> pendingOut = new ArrayDeque<>();
    private boolean flusherRunning;
    private boolean readerDone;
    private int nextReq = 1;
    private volatile TaktException error;
    private volatile boolean closed;
    private boolean bye;
    private final Thread reader;
    private final ServerInfo server;
    private final ByteBuffer hdrOut = ByteBuffer.allocate(Wire.HDR).order(ByteOrder.LITTLE_ENDIAN);

    /** taktd's default socket: $XDG_RUNTIME_DIR/takt/taktd.sock, else /run/takt/taktd.sock. */
    public static Path defaultSocketPath() {
        String env = System.getenv("TAKTD_SOCKET");
        if (env != null && !env.isEmpty())
            return Paths.get(env);
        String xdg = System.getenv("XDG_RUNTIME_DIR");
        if (xdg != null && xdg.startsWith("/"))
            return Paths.get(xdg, "takt", "taktd.sock");
        return Paths.get("/run/takt/taktd.sock");
    }

    /** Connect to taktd's default socket. */
    public static TaktClient connect() throws TaktException {
        return builder().connect();
    }

    /** Connect to taktd at socket. */
    public static TaktClient connect(Path socket) throws TaktException {
        return builder().socket(socket).connect();
    }

    public static Builder builder() {
        return new Builder();
    }

    /** Options of a connection. */
    public static final class Builder {
        private Path socket;
        private String name;
        private Duration requestTimeout = Duration.ofSeconds(10);
        private Duration connectTimeout = Duration.ZERO;
        private int maxFrame = DEFAULT_MAX_FRAME;

        /** The socket (default {@link #defaultSocketPath()}). */
        public Builder socket(Path p) { socket = p; return this; }
        /** A client name for taktd's logs. */
        public Builder name(String n) { name = n; return this; }
        /** Bound of control requests: HELLO, ATTACH, DETACH, PING, the close handshake. */
        public Builder requestTimeout(Duration d) { requestTimeout = d; return this; }
        /** Keep retrying to connect while taktd is not running, this long (default: no retry). */
        public Builder connectTimeout(Duration d) { connectTimeout = d; return this; }
        /** The largest frame this client accepts: 4096 .. {@link #MAX_FRAME_LIMIT} (1 GiB). */
        public Builder maxFrame(int n) { maxFrame = n; return this; }

        public TaktClient connect() throws TaktException {
            return new TaktClient(socket != null ? socket : defaultSocketPath(),
                    name != null ? name : "java-" + ProcessHandle.current().pid(), requestTimeout,
                    connectTimeout, maxFrame);
        }
    }

    private TaktClient(Path socket, String name, Duration requestTimeout, Duration connectTimeout, int maxFrame)
            throws TaktException {
        if (maxFrame < Wire.MIN_FRAME || maxFrame > MAX_FRAME_LIMIT)
            throw new IllegalArgumentException("maxFrame must be " + Wire.MIN_FRAME + " .. " + MAX_FRAME_LIMIT
                    + ", not " + maxFrame);
        this.socketPath = socket;
        this.requestTimeout = requestTimeout;
        this.maxFrame = maxFrame;
        this.ch = open(socket, connectTimeout);
        Selector rs = null, ws = null;
        try {
            rs = Selector.open();
            ws = Selector.open();
            ch.configureBlocking(false);
            ch.register(rs, SelectionKey.OP_READ);
            ch.register(ws, SelectionKey.OP_WRITE);
        } catch (IOException e) {
            closeQuietly(ch);
            closeQuietly(rs);
            closeQuietly(ws);
            throw new TaktException("cannot set up the connection to taktd at " + socket + ": " + e.getMessage(), e);
        }
        this.readSel = rs;
        this.writeSel = ws;
        this.reader = new Thread(this::readLoop, "taktd-reader-" + socket);
        this.reader.setDaemon(true);
        this.reader.start();
        try {
            byte[] nm = name.getBytes(StandardCharsets.UTF_8);
            int nlen = Math.min(nm.length, 64);
            ByteBuffer body = le(8 + nlen);
            body.putShort((short) Wire.VERSION).putShort((short) 0).putInt(maxFrame).put(nm, 0, nlen).flip();
            ByteBuffer w = (ByteBuffer) request(Wire.HELLO, 0, body, requestTimeout, "HELLO", null, null);
            server = new ServerInfo(w.getShort(0) & 0xffff, w.getInt(4), w.getInt(8), w.getInt(12) & 0xffffffffL,
                    w.getInt(16) & 0xffffffffL, w.getInt(20) & 0xffffffffL, w.getInt(24) & 0xffffffffL);
        } catch (TaktException | RuntimeException e) {
            teardown();
            throw e;
        }
    }

    private static SocketChannel open(Path socket, Duration connectTimeout) throws TaktException {
        long deadline = System.nanoTime() + connectTimeout.toNanos();
        long delayMs = 10;
        while (true) {
            SocketChannel c = null;
            try {
                c = SocketChannel.open(StandardProtocolFamily.UNIX);
                c.connect(UnixDomainSocketAddress.of(socket));
                return c;
            } catch (IOException e) {
                closeQuietly(c);
                boolean missing = !Files.exists(socket) || e instanceof ConnectException
                        && String.valueOf(e.getMessage()).contains("refused");
                boolean denied = e instanceof AccessDeniedException
                        || String.valueOf(e.getMessage()).contains("ermission denied");
                if (denied)
                    throw new TaktException.SocketPermission(socket, e);
                if (missing && System.nanoTime() < deadline) {
                    sleep(delayMs);
                    delayMs = Math.min(delayMs * 2, 200);
                    continue;
                }
                if (missing || e instanceof ConnectException)
                    throw new TaktException.NotRunning(socket, e);
                throw new TaktException("cannot connect to taktd at " + socket + ": " + e.getMessage(), e);
            }
        }
    }

    /** What WELCOME reported. */
    public ServerInfo server() {
        return server;
    }

    public Path socketPath() {
        return socketPath;
    }

    /** Attach to an existing channel as a producer. */
    public Producer openProducer(String channel) throws TaktException {
        return openProducer(channel, new AttachOptions());
    }

    /** Attach as a producer; {@code AttachOptions.create()} creates the channel if missing. */
    public Producer openProducer(String channel, AttachOptions o) throws TaktException {
        return new Producer(this, attach(Wire.ROLE_PRODUCE, channel, o), o);
    }

    /** Attach to an existing channel as a consumer. */
    public Consumer openConsumer(String channel) throws TaktException {
        return openConsumer(channel, new AttachOptions());
    }

    /** Attach as a consumer with options (queue limit, slow policy, create). */
    public Consumer openConsumer(String channel, AttachOptions o) throws TaktException {
        return new Consumer(this, attach(Wire.ROLE_CONSUME, channel, o));
    }

    /** A PING round trip; returns its duration. */
    public Duration ping() throws TaktException {
        long t0 = System.nanoTime();
        request(Wire.PING, 0, le(0), requestTimeout, "PING", null, null);
        return Duration.ofNanos(System.nanoTime() - t0);
    }

    public boolean isClosed() {
        return closed;
    }

    /**
     * Flush producers, say BYE and close; the whole is bounded by the request timeout.
     * A thread blocked in a write or a wait on this client is woken and throws.
     */
    @Override
    public void close() {
        if (closed)
            return;
        long deadline = System.nanoTime() + requestTimeout.toNanos();
        try {
            if (error == null) {
                Attachment[] atts;
                lock.lock();
                try {
                    atts = attachments.values().toArray(new Attachment[0]);
                } finally {
                    lock.unlock();
                }
                for (Attachment a : atts)
                    if (a.role == Wire.ROLE_PRODUCE && !a.orphan) {
                        try {
                            awaitUntil(() -> a.committed >= a.sent || a.detached, deadline, "flush");
                        } catch (TaktException e) {
                            break;
                        }
                    }
                try {
                    writeFrame(Wire.BYE, 0, 0, null, deadline, "BYE");
                    awaitUntil(() -> bye, deadline, "BYE");
                } catch (TaktException e) {
                    // the connection ends either way
                }
            }
        } finally {
            teardown();
        }
    }

    // ---- internals --------------------------------------------------------------------------

    static ByteBuffer le(int n) {
        return ByteBuffer.allocate(n).order(ByteOrder.LITTLE_ENDIAN);
    }

    private static void sleep(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private static void closeQuietly(java.io.Closeable c) {
        if (c != null)
            try {
                c.close();
            } catch (IOException ignored) {
                // nothing to do
            }
    }

    private Attachment attach(int role, String channel, AttachOptions o) throws TaktException {
        if (!Wire.validName(channel))
            throw TaktException.ServerError.of(ErrorCode.INVALID.code, 22, false, channel,
                    "bad channel name \"" + channel + "\": 1..200 characters from [A-Za-z0-9._-]");
        byte[] nm = channel.getBytes(StandardCharsets.UTF_8);
        ByteBuffer b = le(32 + nm.length);
        int flags = (o.create ? Wire.ATTACH_CREATE : 0) | (o.create && o.exclusive ? Wire.ATTACH_EXCL : 0);
        int maxRecord = o.maxRecord != 0 ? o.maxRecord : (int) Math.min(o.capacity / 4, 65536);
        boolean consume = role == Wire.ROLE_CONSUME;
        b.putShort((short) role).putShort((short) flags);
        b.putInt(o.create ? o.lanes : 0).putLong(o.create ? o.capacity : 0).putInt(o.create ? maxRecord : 0)
                .putInt(o.create ? o.mode : 0);
        b.putInt(consume ? (int) o.queueLimit : 0).put((byte) (consume ? o.slow.ordinal() : 0)).put((byte) 0)
                .putShort((short) nm.length).put(nm).flip();
        // The reader registers the attachment when it handles ATTACHED: records already
        // in the ring (DATA) can follow ATTACHED in the same read.
        return (Attachment) request(Wire.ATTACH, 0, b, requestTimeout, "ATTACH", channel,
                new PendingAttach(channel, role));
    }

    /**
     * An ATTACHED that came for a request given up on (timed out): taktd attached,
     * nobody uses it; DETACH it (a consumer would take records from the ring).
     * Lock held; the DETACH is sent by a short-lived thread, never by the reader.
     */
    private void orphan(Attachment a) {
        a.orphan = true;
        if (error != null)
            return;
        Thread t = new Thread(() -> {
            try {
                detach(a, requestTimeout);
            } catch (TaktException ignored) {
                // the connection failed, taktd did not answer, or the DETACH could not be
                // written yet (it stays queued: the flusher thread writes it)
            }
        }, "taktd-detach-" + a.name);
        t.setDaemon(true);
        t.start();
    }

    /**
     * DETACH a; returns {delivered, dropped} as taktd reported them (null if the connection
     * is gone or a DETACH of it was already queued).  The attachment is closed for its user
     * afterwards whatever happened.  The DETACH is never dropped: if it cannot be written
     * within timeout (taktd is not reading: back-pressure, or another thread's write is
     * stalled) it stays queued, is written before any later frame (or by a flusher thread
     * as soon as taktd reads again) and this throws Timeout; records taktd delivers to the
     * attachment meanwhile are dropped.
     */
    long[] detach(Attachment a, Duration timeout) throws TaktException {
        long deadline = System.nanoTime() + timeout.toNanos();
        String what = "DETACH of " + a.name;
        int req;
        Pending pd;
        lock.lock();
        try {
            if (a.detached || error != null) {
                a.detached = true;
                if (!a.detachQueued || error != null)
                    attachments.remove(a.chan, a);
                changed.signalAll();
                return null;
            }
            if (a.detachQueued) // another thread is detaching it
                return null;
            if (closed)
                throw new TaktException.Closed("the client is closed");
            req = nextReq++;
            answers.put(req, null);
            ByteBuffer f = le(Wire.HDR);
            f.putInt(Wire.HDR).putShort((short) Wire.DETACH).putShort((short) 0).putInt(a.chan).putInt(req).flip();
            pd = new Pending(f, a);
            pendingOut.add(pd);
            a.detachQueued = true;
        } finally {
            lock.unlock();
        }
        try {
            try {
                lockWrites(deadline, what);
                try {
                    check();
                    drainPending(deadline, what);
                } finally {
                    writeLock.unlock();
                }
            } catch (TaktException e) {
                boolean queued;
                lock.lock();
                try {
                    queued = error == null && pendingOut.contains(pd);
                } finally {
                    lock.unlock();
                }
                if (!queued) {
                    if (error != null)
                        throw e;
                    // written meanwhile by another thread: wait for the answer below
                } else {
                    kickFlusher();
                    throw new TaktException.Timeout(what + ": not sent within " + timeout.toMillis()
                            + " ms (taktd is not reading: back-pressure); the DETACH stays queued and is sent as "
                            + "soon as taktd reads again (the channel stays attached until then); "
                            + "the attachment is closed: " + e.getMessage());
                }
            }
            ByteBuffer d = (ByteBuffer) takeAnswer(req, deadline, what, a.name);
            return new long[] {d.getLong(0), d.getLong(8)};
        } finally {
            lock.lock();
            try {
                answers.remove(req);
                a.detached = true;
                // forgotten once its DETACH is written (else drainPending forgets it then)
                if (error != null || !pendingOut.contains(pd))
                    attachments.remove(a.chan, a);
                changed.signalAll();
            } finally {
                lock.unlock();
            }
        }
    }

    /** Start the flusher thread if queued frames wait and none runs (lock not held). */
    private void kickFlusher() {
        lock.lock();
        try {
            if (flusherRunning || pendingOut.isEmpty() || error != null)
                return;
            flusherRunning = true;
        } finally {
            lock.unlock();
        }
        Thread t = new Thread(this::flushLoop, "taktd-flush-" + socketPath);
        t.setDaemon(true);
        t.start();
    }

    /**
     * The flusher: writes queued frames, waiting as long as it takes (for the
     * write lock and for taktd to read), until none is left or the connection ends
     * (close() wakes it).
     */
    private void flushLoop() {
        try {
            while (true) {
                lock.lock();
                try {
                    if (pendingOut.isEmpty() || error != null || closed) {
                        flusherRunning = false;
                        return;
                    }
                } finally {
                    lock.unlock();
                }
                lockWrites(FOREVER, "queued output");
                try {
                    check();
                    drainPending(FOREVER, "queued output");
                } finally {
                    writeLock.unlock();
                }
            }
        } catch (TaktException | RuntimeException e) {
            lock.lock();
            try {
                flusherRunning = false;
            } finally {
                lock.unlock();
            }
            // the connection is gone: taktd detaches everything
        }
    }

    /**
     * Wait (until deadline) for the answer to request req and take it; a ServerError
     * answer is thrown, naming channel (may be null) when taktd's error did not.
     */
    private Object takeAnswer(int req, long deadline, String what, String channel) throws TaktException {
        awaitUntil(() -> answers.get(req) != null, deadline, "no answer to " + what + " from taktd");
        Object ans;
        lock.lock();
        try {
            ans = answers.remove(req);
        } finally {
            lock.unlock();
        }
        if (ans instanceof TaktException.ServerError) {
            TaktException.ServerError e = (TaktException.ServerError) ans;
            if (e.channel == null && channel != null)
                throw TaktException.ServerError.of(e.rawCode, e.errno, e.fatal, channel, e.serverMessage);
            throw e;
        }
        return ans;
    }

    /** Send a request and wait for its answer; the whole is bounded by timeout. */
    private Object request(int type, int chan, ByteBuffer body, Duration timeout, String what, String channel,
            PendingAttach pending) throws TaktException {
        long deadline = System.nanoTime() + timeout.toNanos();
        int req;
        lock.lock();
        try {
            check();
            req = nextReq++;
            answers.put(req, null);
            if (pending != null)
                attaching.put(req, pending);
        } finally {
            lock.unlock();
        }
        boolean ok = false;
        try {
            try {
                writeFrame(type, chan, req, body, deadline, what);
            } catch (TaktException e) {
                // not sent (or the connection is gone): no ATTACHED will come
                lock.lock();
                try {
                    attaching.remove(req);
                } finally {
                    lock.unlock();
                }
                throw e;
            }
            Object ans = takeAnswer(req, deadline, what, channel);
            ok = true;
            return ans;
        } finally {
            lock.lock();
            try {
                // An ATTACHED that came just as this request gave up: nobody takes it.
                Object late = answers.remove(req);
                if (!ok && late instanceof Attachment)
                    orphan((Attachment) late);
            } finally {
                lock.unlock();
            }
        }
    }

    interface Pred {
        boolean test();
    }

    /** Wait (lock taken here) until pred holds; deadline is System.nanoTime() based, Long.MAX_VALUE = none. */
    void awaitUntil(Pred pred, long deadline, String what) throws TaktException {
        lock.lock();
        try {
            while (!pred.test()) {
                check();
                long rem = deadline == Long.MAX_VALUE ? Long.MAX_VALUE : deadline - System.nanoTime();
                if (rem <= 0)
                    throw new TaktException.Timeout(what);
                try {
                    if (rem == Long.MAX_VALUE)
                        changed.await();
                    else
                        changed.awaitNanos(rem);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new TaktException.Timeout("interrupted: " + what);
                }
            }
        } finally {
            lock.unlock();
        }
    }

    void check() throws TaktException {
        TaktException e = error;
        if (e != null)
            throw e;
        if (closed)
            throw new TaktException.Closed("the client is closed");
    }

    TaktException error() {
        return error;
    }

    /**
     * Write one frame: the header built here, the body as given (may be null).  deadline:
     * System.nanoTime() based, {@link #FOREVER} = none.  See {@link #writeFully}.
     */
    void writeFrame(int type, int chan, int arg, ByteBuffer body, long deadline, String what) throws TaktException {
        lockWrites(deadline, what);
        try {
            check();
            hdrOut.clear();
            hdrOut.putInt(Wire.HDR + (body == null ? 0 : body.remaining())).putShort((short) type)
                    .putShort((short) 0).putInt(chan).putInt(arg).flip();
            if (body == null)
                writeFully(new ByteBuffer[] {hdrOut}, deadline, what);
            else
                writeFully(new ByteBuffer[] {hdrOut, body}, deadline, what);
        } finally {
            writeLock.unlock();
        }
    }

    /** Write whole frames already encoded in buf (position..limit); see {@link #writeFully}. */
    void writeRaw(ByteBuffer buf, long deadline, String what) throws TaktException {
        lockWrites(deadline, what);
        try {
            check();
            writeFully(new ByteBuffer[] {buf}, deadline, what);
        } finally {
            writeLock.unlock();
        }
    }

    private void lockWrites(long deadline, String what) throws TaktException {
        try {
            if (deadline == FOREVER)
                writeLock.lockInterruptibly();
            else if (!writeLock.tryLock(Math.max(0, deadline - System.nanoTime()), TimeUnit.NANOSECONDS))
                throw new TaktException.Timeout(what + ": timed out waiting to write (another thread's write "
                        + "is stalled: taktd is not reading, back-pressure); nothing was sent");
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new TaktException.Timeout("interrupted: " + what + "; nothing was sent");
        }
    }

    /**
     * Write bufs (writeLock held) on the non-blocking socket, waiting for room until
     * deadline; queued frames are written first.  At the deadline (or an interrupt):
     * with nothing of the frame written, Timeout and the connection stays usable (a
     * queued frame half-written stays queued: the next writer finishes it); with the
     * frame half-written its rest is queued (written by the next writer or the flusher)
     * and this returns: the frame counts as written.
     */
    private void writeFully(ByteBuffer[] bufs, long deadline, String what) throws TaktException {
        drainPending(deadline, what);
        long total = remaining(bufs);
        if (writeSome(bufs, deadline))
            return;
        long left = remaining(bufs);
        if (left == total)
            throw new TaktException.Timeout((Thread.currentThread().isInterrupted() ? "interrupted: " : "") + what
                    + ": taktd is not reading (back-pressure: a full ring?); nothing was sent");
        // Half-written: the stream must continue with the rest of this frame.  Queue it
        // (a copy: the caller reuses its buffers) at the head, before any DETACH queued
        // meanwhile; the next writer or the flusher writes it.  The frame counts as sent.
        ByteBuffer rest = ByteBuffer.allocate((int) left);
        for (ByteBuffer b : bufs)
            rest.put(b);
        rest.flip();
        lock.lock();
        try {
            pendingOut.addFirst(new Pending(rest, null));
        } finally {
            lock.unlock();
        }
        kickFlusher();
    }

    /** Write the queued frames (writeLock held); Timeout (nothing of what was sent) at the deadline. */
    private void drainPending(long deadline, String what) throws TaktException {
        while (true) {
            Pending p;
            lock.lock();
            try {
                p = pendingOut.peekFirst();
            } finally {
                lock.unlock();
            }
            if (p == null)
                return;
            if (!writeSome(new ByteBuffer[] {p.frame}, deadline))
                throw new TaktException.Timeout((Thread.currentThread().isInterrupted() ? "interrupted: " : "")
                        + what + ": taktd is not reading (back-pressure: a full ring?); earlier output is still "
                        + "queued; nothing was sent");
            lock.lock();
            try {
                pendingOut.pollFirst();
                if (p.att != null && p.att.detached) // its detach() gave up: forget it now
                    attachments.remove(p.att.chan, p.att);
            } finally {
                lock.unlock();
            }
        }
    }

    private static long remaining(ByteBuffer[] bufs) {
        long n = 0;
        for (ByteBuffer b : bufs)
            n += b.remaining();
        return n;
    }

    /**
     * Write bufs until all is written (true) or the deadline passes or the thread is
     * interrupted (false, bufs' positions tell what was written).  Throws if the
     * connection failed or was closed.
     */
    private boolean writeSome(ByteBuffer[] bufs, long deadline) throws TaktException {
        try {
            while (remaining(bufs) > 0) {
                long n = ch.write(bufs);
                if (n > 0)
                    continue;
                // the socket buffer is full: taktd is not reading (back-pressure)
                long rem = deadline == FOREVER ? 0 : deadline - System.nanoTime();
                if (Thread.currentThread().isInterrupted() || deadline != FOREVER && rem <= 0)
                    return false;
                writeSel.select(deadline == FOREVER ? 0 : Math.max(1, (rem + 999_999) / 1_000_000));
                writeSel.selectedKeys().clear();
                TaktException e = error;
                if (e != null)
                    throw e; // closed or failed meanwhile (close() wakes a blocked writer)
            }
            return true;
        } catch (IOException | ClosedSelectorException e) {
            if (e instanceof TaktException)
                throw (TaktException) e;
            throw writeFailed(e);
        }
    }

    /**
     * A write failed (broken pipe, reset): taktd closed the connection.  A fatal ERROR it
     * sent first explains why: let the reader reach it (bounded) before reporting.
     */
    private TaktException writeFailed(Exception e) {
        if (error == null) {
            long deadline = System.nanoTime() + Math.min(requestTimeout.toNanos(), 2_000_000_000L);
            lock.lock();
            try {
                while (!readerDone && error == null) {
                    long rem = deadline - System.nanoTime();
                    if (rem <= 0)
                        break;
                    changed.awaitNanos(rem);
                }
            } catch (InterruptedException ie) {
                Thread.currentThread().interrupt();
            } finally {
                lock.unlock();
            }
        }
        fail(new TaktException.ConnectionLost(lostText(e instanceof IOException ? why((IOException) e)
                : "socket error: " + e), committedMap(), e));
        return error;
    }

    private static String why(IOException e) {
        String m = String.valueOf(e.getMessage());
        if (m.contains("Broken pipe") || m.contains("reset"))
            return "taktd closed the connection without BYE (killed or restarted?): " + m;
        return "socket error: " + m;
    }

    private String lostText(String why) {
        return "connection to taktd at " + socketPath + " lost: " + why;
    }

    private Map<String, Long> committedMap() {
        Map<String, Long> m = new HashMap<>();
        lock.lock();
        try {
            for (Attachment a : attachments.values())
                if (a.role == Wire.ROLE_PRODUCE && !a.orphan)
                    m.put(a.name, a.committed);
        } finally {
            lock.unlock();
        }
        return m;
    }

    private void fail(TaktException e) {
        lock.lock();
        try {
            if (error == null)
                error = e;
            changed.signalAll();
        } finally {
            lock.unlock();
        }
        writeSel.wakeup(); // a writer waiting for room
    }

    /** Close the socket and wake the reader and a blocked writer (their selectors closed). */
    private void closeSocket() {
        closeQuietly(ch);
        readSel.wakeup();
        writeSel.wakeup();
        // a registered channel is closed for good once deregistered: closing the
        // selectors does it (waiting for a select in progress to return)
        closeQuietly(readSel);
        closeQuietly(writeSel);
    }

    private void teardown() {
        lock.lock();
        try {
            closed = true;
            if (error == null)
                error = new TaktException.Closed("the client is closed");
            changed.signalAll();
        } finally {
            lock.unlock();
        }
        closeSocket();
        if (Thread.currentThread() != reader) {
            try {
                reader.join(2000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }

    // ---- the reader thread ----------------------------------------------------------------

    /** A frame taktd should not have sent (its body does not match its type). */
    private static final class BadFrame extends RuntimeException {
        private static final long serialVersionUID = 1L;

        BadFrame(String m) {
            super(m);
        }
    }

    private static void need(int blen, int n, String type) {
        if (blen < n)
            throw new BadFrame(type + " with a body of " + blen + " bytes (at least " + n + " expected)");
    }

    private void readLoop() {
        // the buffer holds at least a whole frame: it grows (up to maxFrame) when one does not fit
        ByteBuffer buf = ByteBuffer.allocateDirect(Math.min(maxFrame, 1 << 20) + (64 << 10))
                .order(ByteOrder.LITTLE_ENDIAN);
        try {
            while (true) {
                int n = ch.read(buf);
                if (n == 0) {
                    readSel.select();
                    readSel.selectedKeys().clear();
                    continue; // a read on a closed channel throws
                }
                if (n < 0) {
                    boolean b;
                    lock.lock();
                    try {
                        b = bye;
                    } finally {
                        lock.unlock();
                    }
                    fail(new TaktException.ConnectionLost(lostText(b
                            ? "taktd closed the connection (it said BYE: shutting down)"
                            : "taktd closed the connection without BYE (killed or restarted?)"), committedMap(), null));
                    return;
                }
                buf.flip();
                lock.lock();
                try {
                    boolean any = false;
                    while (buf.remaining() >= Wire.HDR) {
                        int p = buf.position();
                        long len = buf.getInt(p) & 0xffffffffL;
                        if (len < Wire.HDR || len > maxFrame)
                            throw new BadFrame("a frame length of " + len + " (max_frame " + maxFrame + ")");
                        if (buf.remaining() < len)
                            break;
                        dispatch(buf, p, (int) len);
                        buf.position(p + (int) len);
                        any = true;
                    }
                    if (any)
                        changed.signalAll();
                } finally {
                    lock.unlock();
                }
                buf.compact();
                if (buf.position() >= Wire.HDR) {
                    long len = buf.getInt(0) & 0xffffffffL;
                    if (len > buf.capacity())
                        buf = grow(buf, (int) len);
                }
            }
        } catch (Throwable t) {
            // Whatever ends the reader ends the connection: nobody would read taktd's answers.
            if (closed && !(t instanceof BadFrame)) {
                fail(new TaktException.Closed("the client is closed"));
            } else {
                String why = t instanceof BadFrame ? "taktd sent a bad frame: " + t.getMessage()
                        : t instanceof IOException ? why((IOException) t)
                        : "the client's reader failed: " + t;
                Map<String, Long> m;
                try {
                    m = committedMap();
                } catch (Throwable t2) {
                    m = Map.of();
                }
                fail(new TaktException.ConnectionLost(lostText(why), m, t));
            }
        } finally {
            lock.lock();
            try {
                readerDone = true;
                changed.signalAll();
            } finally {
                lock.unlock();
            }
            closeSocket();
        }
    }

    private ByteBuffer grow(ByteBuffer buf, int len) {
        long cap = Math.min(Math.max((long) len + (64 << 10), 2L * buf.capacity()), (long) maxFrame + (64 << 10));
        ByteBuffer b = ByteBuffer.allocateDirect((int) cap).order(ByteOrder.LITTLE_ENDIAN);
        buf.flip();
        b.put(buf);
        return b;
    }

    private static ByteBuffer copyBody(ByteBuffer buf, int start, int len) {
        ByteBuffer b = le(len);
        for (int i = 0; i < len; i++)
            b.put(i, buf.get(start + i));
        return b;
    }

    /** Apply one frame at buf[p, p+len) (lock held). */
    private void dispatch(ByteBuffer buf, int p, int len) {
        int type = buf.getShort(p + 4) & 0xffff;
        int flags = buf.getShort(p + 6) & 0xffff;
        int chan = buf.getInt(p + 8);
        int arg = buf.getInt(p + 12);
        int body = p + Wire.HDR;
        int blen = len - Wire.HDR;
        Attachment a;
        switch (type) {
            case Wire.DATA_BATCH: {
                // check the whole batch first: a bad one delivers nothing
                int end = p + len, off = body;
                long n = arg & 0xffffffffL;
                for (long i = 0; i < n; i++) {
                    int rlen = end - off < Wire.BATCH_REC ? -1 : buf.getInt(off);
                    if (rlen < 0 || rlen > end - off - Wire.BATCH_REC)
                        throw new BadFrame("DATA_BATCH whose " + n + " records do not fit its " + blen + " bytes");
                    off += Wire.BATCH_REC + rlen;
                }
                if (n == 0 || off != end)
                    throw new BadFrame("DATA_BATCH whose " + n + " records do not fill its " + blen + " bytes");
                a = attachments.get(chan);
                if (a == null || a.detached || a.orphan)
                    return;
                off = body;
                for (long i = 0; i < n; i++) {
                    int rlen = buf.getInt(off);
                    int rtype = buf.getInt(off + 4);
                    byte[] d = new byte[rlen];
                    buf.get(off + Wire.BATCH_REC, d);
                    off += Wire.BATCH_REC + rlen;
                    a.queue.add(new TaktRecord(a.name, ++a.delivered, rtype, d, a.gap));
                    a.gap = 0;
                }
                return;
            }
            case Wire.DATA: {
                a = attachments.get(chan);
                if (a == null || a.detached || a.orphan)
                    return;
                byte[] d = new byte[blen];
                buf.get(body, d);
                a.queue.add(new TaktRecord(a.name, ++a.delivered, arg, d, a.gap));
                a.gap = 0;
                return;
            }
            case Wire.ACK:
                need(blen, 8, "ACK");
                a = attachments.get(chan);
                if (a != null) {
                    long c = buf.getLong(body);
                    if (c > a.committed)
                        a.committed = c;
                }
                return;
            case Wire.DROPPED:
                need(blen, 16, "DROPPED");
                a = attachments.get(chan);
                if (a != null) {
                    a.gap += buf.getLong(body);
                    a.dropped = buf.getLong(body + 8);
                }
                return;
            case Wire.ERROR: {
                need(blen, 8, "ERROR");
                int code = buf.getInt(body);
                int errno = buf.getInt(body + 4);
                byte[] m = new byte[Math.max(0, blen - 8)];
                buf.get(body + 8, m);
                a = attachments.get(chan);
                boolean fatal = (flags & Wire.FLAG_FATAL) != 0;
                TaktException.ServerError e = TaktException.ServerError.of(code, errno, fatal, a != null ? a.name : null,
                        new String(m, StandardCharsets.UTF_8));
                if (fatal) {
                    if (error == null)
                        error = e;
                } else {
                    attaching.remove(arg);
                    if (answers.containsKey(arg))
                        answers.put(arg, e);
                }
                return;
            }
            case Wire.ATTACHED: {
                need(blen, 32, "ATTACHED");
                PendingAttach pd = attaching.remove(arg);
                if (pd == null)
                    return; // not an ATTACH of ours
                ChannelInfo info = new ChannelInfo(buf.getLong(body), buf.getInt(body + 8), buf.getInt(body + 12),
                        buf.getShort(body + 16) & 0xffff, buf.get(body + 18) & 0xff, buf.get(body + 19) != 0,
                        buf.getInt(body + 20) & 0xffffffffL, buf.getLong(body + 24));
                // Registered here, under the reader's lock: DATA of records already in the
                // ring may follow in the same read.
                a = new Attachment(chan, pd.name(), pd.role(), info);
                attachments.put(chan, a);
                if (answers.containsKey(arg))
                    answers.put(arg, a);
                else
                    orphan(a); // its ATTACH timed out: nobody will use it
                return;
            }
            case Wire.DETACHED:
                need(blen, 16, "DETACHED");
                if (answers.containsKey(arg))
                    answers.put(arg, copyBody(buf, body, blen));
                return;
            case Wire.WELCOME:
                need(blen, 28, "WELCOME");
                if (answers.containsKey(arg))
                    answers.put(arg, copyBody(buf, body, blen));
                return;
            case Wire.PONG:
                if (answers.containsKey(arg))
                    answers.put(arg, copyBody(buf, body, blen));
                return;
            case Wire.BYE:
                bye = true;
                return;
            default:
                // unknown frame types from a newer server are ignored
        }
    }

    /**
     * A control frame queued for writing (att: the attachment a DETACH is for).  A class,
     * not a record: pendingOut.contains must compare identity, not frame contents.
     */
    private static final class Pending {
        final ByteBuffer frame;
        final Attachment att;

        Pending(ByteBuffer frame, Attachment att) {
            this.frame = frame;
            this.att = att;
        }
    }

    /** An ATTACH sent and not yet answered. */
    private record PendingAttach(String name, int role) {}

    /** Per-attachment state, guarded by the client's lock. */
    static final class Attachment {
        final int chan;
        final String name;
        final int role;
        final ChannelInfo info;
        final java.util.ArrayDeque<TaktRecord> queue = new java.util.ArrayDeque<>();
        long committed, sent, delivered, dropped, gap;
        /** Closed for its user (records taktd still delivers are dropped). */
        boolean detached;
        /** A DETACH of it was queued (it stays in attachments until that is written). */
        boolean detachQueued;
        /** Attached by an ATTACH that timed out: being detached, its records dropped. */
        boolean orphan;

        Attachment(int chan, String name, int role, ChannelInfo info) {
            this.chan = chan;
            this.name = name;
            this.role = role;
            this.info = info;
        }
    }
}
