// SPDX-License-Identifier: MIT
package io.takt.peer;

import java.io.IOException;
import java.net.ConnectException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.AccessDeniedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
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
 * <p>Connection loss (taktd killed, restarted or stopped) is reported, not hidden:
 * every call then throws {@link TaktException.ConnectionLost}, whose {@code committed}
 * tells what each producer got acknowledged.  Reconnect with a new client
 * ({@link Builder#connectTimeout} waits for taktd to come back) and resend from there.
 */
public final class TaktClient implements AutoCloseable {
    /** The maximum frame this client announces (and so the largest record it can consume). */
    public static final int DEFAULT_MAX_FRAME = 4 << 20;
    static final int CLIENT_BATCH_MAX = 256 << 10;

    final Path socketPath;
    final Duration requestTimeout;
    final int maxFrame;
    private final SocketChannel ch;
    final ReentrantLock lock = new ReentrantLock();
    final Condition changed = lock.newCondition();
    private final ReentrantLock writeLock = new ReentrantLock();
    private final Map<Integer, Object> answers = new HashMap<>();
    final Map<Integer, Attachment> attachments = new HashMap<>();
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
        /** The largest frame this client accepts (at least 4096). */
        public Builder maxFrame(int n) { maxFrame = n; return this; }

        public TaktClient connect() throws TaktException {
            return new TaktClient(socket != null ? socket : defaultSocketPath(),
                    name != null ? name : "java-" + ProcessHandle.current().pid(), requestTimeout,
                    connectTimeout, maxFrame);
        }
    }

    private TaktClient(Path socket, String name, Duration requestTimeout, Duration connectTimeout, int maxFrame)
            throws TaktException {
        if (maxFrame < Wire.MIN_FRAME)
            throw new IllegalArgumentException("maxFrame must be at least " + Wire.MIN_FRAME);
        this.socketPath = socket;
        this.requestTimeout = requestTimeout;
        this.maxFrame = maxFrame;
        this.ch = open(socket, connectTimeout);
        this.reader = new Thread(this::readLoop, "taktd-reader-" + socket);
        this.reader.setDaemon(true);
        this.reader.start();
        try {
            byte[] nm = name.getBytes(StandardCharsets.UTF_8);
            int nlen = Math.min(nm.length, 64);
            ByteBuffer body = le(8 + nlen);
            body.putShort((short) Wire.VERSION).putShort((short) 0).putInt(maxFrame).put(nm, 0, nlen).flip();
            ByteBuffer w = (ByteBuffer) request(Wire.HELLO, 0, body, requestTimeout, "HELLO", null);
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
        request(Wire.PING, 0, le(0), requestTimeout, "PING", null);
        return Duration.ofNanos(System.nanoTime() - t0);
    }

    public boolean isClosed() {
        return closed;
    }

    /** Flush producers (bounded by the request timeout), detach, say BYE, close. */
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
                    if (a.role == Wire.ROLE_PRODUCE) {
                        try {
                            awaitUntil(() -> a.committed >= a.sent || a.detached, deadline, "flush");
                        } catch (TaktException e) {
                            break;
                        }
                    }
                try {
                    writeFrame(Wire.BYE, 0, 0, null);
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

    private static void closeQuietly(SocketChannel c) {
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
        Object[] ans = (Object[]) request(Wire.ATTACH, 0, b, requestTimeout, "ATTACH", channel);
        int chan = (Integer) ans[0];
        ByteBuffer a = (ByteBuffer) ans[1];
        ChannelInfo info = new ChannelInfo(a.getLong(0), a.getInt(8), a.getInt(12), a.getShort(16) & 0xffff,
                a.get(18) & 0xff, a.get(19) != 0, a.getInt(20) & 0xffffffffL, a.getLong(24));
        Attachment att = new Attachment(chan, channel, role, info);
        lock.lock();
        try {
            attachments.put(chan, att);
        } finally {
            lock.unlock();
        }
        return att;
    }

    long[] detach(Attachment a, Duration timeout) throws TaktException {
        lock.lock();
        try {
            if (a.detached || error != null) {
                a.detached = true;
                attachments.remove(a.chan);
                changed.signalAll();
                return null;
            }
        } finally {
            lock.unlock();
        }
        try {
            ByteBuffer d = (ByteBuffer) request(Wire.DETACH, a.chan, le(0), timeout, "DETACH", a.name);
            return new long[] {d.getLong(0), d.getLong(8)};
        } finally {
            lock.lock();
            try {
                a.detached = true;
                attachments.remove(a.chan);
                changed.signalAll();
            } finally {
                lock.unlock();
            }
        }
    }

    private Object request(int type, int chan, ByteBuffer body, Duration timeout, String what, String channel)
            throws TaktException {
        int req;
        lock.lock();
        try {
            check();
            req = nextReq++;
            answers.put(req, null);
        } finally {
            lock.unlock();
        }
        try {
            writeFrame(type, chan, req, body);
            awaitUntil(() -> answers.get(req) != null, System.nanoTime() + timeout.toNanos(),
                    "no answer to " + what + " from taktd");
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
        } finally {
            lock.lock();
            try {
                answers.remove(req);
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

    /** Write one frame: the header built here, the body as given (may be null). */
    void writeFrame(int type, int chan, int arg, ByteBuffer body) throws TaktException {
        writeLock.lock();
        try {
            check();
            hdrOut.clear();
            hdrOut.putInt(Wire.HDR + (body == null ? 0 : body.remaining())).putShort((short) type)
                    .putShort((short) 0).putInt(chan).putInt(arg).flip();
            if (body == null)
                writeFully(new ByteBuffer[] {hdrOut});
            else
                writeFully(new ByteBuffer[] {hdrOut, body});
        } finally {
            writeLock.unlock();
        }
    }

    /** Write whole frames already encoded in buf (position..limit). */
    void writeRaw(ByteBuffer buf) throws TaktException {
        writeLock.lock();
        try {
            check();
            writeFully(new ByteBuffer[] {buf});
        } finally {
            writeLock.unlock();
        }
    }

    private void writeFully(ByteBuffer[] bufs) throws TaktException {
        try {
            ByteBuffer last = bufs[bufs.length - 1];
            while (last.hasRemaining() || bufs[0].hasRemaining())
                ch.write(bufs);
        } catch (IOException e) {
            fail(new TaktException.ConnectionLost(lostText(why(e)), committedMap(), e));
            throw error;
        }
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
                if (a.role == Wire.ROLE_PRODUCE)
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
        closeQuietly(ch);
        if (Thread.currentThread() != reader) {
            try {
                reader.join(2000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }

    // ---- the reader thread ----------------------------------------------------------------

    private void readLoop() {
        ByteBuffer buf = ByteBuffer.allocateDirect(maxFrame + (64 << 10)).order(ByteOrder.LITTLE_ENDIAN);
        try {
            while (true) {
                int n = ch.read(buf);
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
                        if (len < Wire.HDR || len > maxFrame) {
                            error = new TaktException.ConnectionLost(
                                    lostText("taktd sent an impossible frame length " + len), committedMap(), null);
                            changed.signalAll();
                            return;
                        }
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
            }
        } catch (IOException e) {
            if (!closed)
                fail(new TaktException.ConnectionLost(lostText(why(e)), committedMap(), e));
            else
                fail(new TaktException.Closed("the client is closed"));
        }
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
                a = attachments.get(chan);
                if (a == null || a.detached)
                    return;
                int off = body;
                long n = arg & 0xffffffffL;
                for (long i = 0; i < n; i++) {
                    int rlen = buf.getInt(off);
                    int rtype = buf.getInt(off + 4);
                    byte[] d = new byte[rlen];
                    buf.get(off + 8, d);
                    off += 8 + rlen;
                    a.queue.add(new TaktRecord(a.name, ++a.delivered, rtype, d, a.gap));
                    a.gap = 0;
                }
                return;
            }
            case Wire.DATA: {
                a = attachments.get(chan);
                if (a == null || a.detached)
                    return;
                byte[] d = new byte[blen];
                buf.get(body, d);
                a.queue.add(new TaktRecord(a.name, ++a.delivered, arg, d, a.gap));
                a.gap = 0;
                return;
            }
            case Wire.ACK:
                a = attachments.get(chan);
                if (a != null) {
                    long c = buf.getLong(body);
                    if (c > a.committed)
                        a.committed = c;
                }
                return;
            case Wire.DROPPED:
                a = attachments.get(chan);
                if (a != null) {
                    a.gap += buf.getLong(body);
                    a.dropped = buf.getLong(body + 8);
                }
                return;
            case Wire.ERROR: {
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
                } else if (answers.containsKey(arg)) {
                    answers.put(arg, e);
                }
                return;
            }
            case Wire.ATTACHED:
                if (answers.containsKey(arg))
                    answers.put(arg, new Object[] {chan, copyBody(buf, body, blen)});
                return;
            case Wire.WELCOME:
            case Wire.DETACHED:
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

    /** Per-attachment state, guarded by the client's lock. */
    static final class Attachment {
        final int chan;
        final String name;
        final int role;
        final ChannelInfo info;
        final java.util.ArrayDeque<TaktRecord> queue = new java.util.ArrayDeque<>();
        long committed, sent, delivered, dropped, gap;
        boolean detached;

        Attachment(int chan, String name, int role, ChannelInfo info) {
            this.chan = chan;
            this.name = name;
            this.role = role;
            this.info = info;
        }
    }
}
