// SPDX-License-Identifier: MIT
// Tests of the Java taktd client (tools/java) against a real taktd and the C peer
// (tests/peers/peer_c).  Environment: TAKTD_BIN, PEER_C (set by tests/peers/CMakeLists.txt).
import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.takt.peer.AttachOptions;
import io.takt.peer.Consumer;
import io.takt.peer.ErrorCode;
import io.takt.peer.Producer;
import io.takt.peer.TaktClient;
import io.takt.peer.TaktException;
import io.takt.peer.TaktRecord;
import java.io.BufferedReader;
import java.io.EOFException;
import java.io.File;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.zip.CRC32;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

class PeerTest {
    static final String TAKTD = System.getenv().getOrDefault("TAKTD_BIN", "taktd");
    static final String PEER_C = System.getenv().getOrDefault("PEER_C", "peer_c");
    static final int N = Integer.parseInt(System.getenv().getOrDefault("PEERS_RECORDS", "100000"));
    static final AtomicInteger counter = new AtomicInteger();

    final List<Taktd> daemons = new ArrayList<>();
    final List<String> channels = new ArrayList<>();
    final List<Process> peers = new ArrayList<>();
    final List<AutoCloseable> closeables = new ArrayList<>();

    // ---- harness ------------------------------------------------------------------------

    /** A real taktd on a socket in a private temp dir. */
    static final class Taktd {
        final Path dir, socket, log;
        final List<String> cmd = new ArrayList<>();
        Process proc;

        Taktd(String policy, Integer user) throws Exception {
            dir = Files.createTempDirectory("takt-peers-j-");
            socket = dir.resolve("taktd.sock");
            log = dir.resolve("taktd.log");
            if (user != null) {
                Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxrwxrwx"));
                cmd.addAll(List.of("setpriv", "--reuid=" + user, "--regid=" + user, "--clear-groups"));
            }
            cmd.addAll(List.of(TAKTD, "--socket", socket.toString(), "--ready-fd", "1", "--log-level", "info"));
            if (policy != null) {
                Path p = dir.resolve("policy");
                Files.writeString(p, policy);
                Files.setPosixFilePermissions(p, PosixFilePermissions.fromString("rw-r--r--"));
                cmd.addAll(List.of("--policy", p.toString()));
            }
            start();
        }

        /** Start and wait for "ready" on --ready-fd 1, with a bounded deadline. */
        void start() throws Exception {
            ProcessBuilder pb = new ProcessBuilder(cmd);
            pb.redirectError(ProcessBuilder.Redirect.appendTo(log.toFile()));
            proc = pb.start();
            BufferedReader r = new BufferedReader(new InputStreamReader(proc.getInputStream(), StandardCharsets.UTF_8));
            CompletableFuture<String> line = CompletableFuture.supplyAsync(() -> {
                try {
                    return r.readLine();
                } catch (IOException e) {
                    return null;
                }
            });
            String s;
            try {
                s = line.get(10, TimeUnit.SECONDS);
            } catch (Exception e) {
                s = null;
            }
            if (!"ready".equals(s)) {
                proc.destroyForcibly();
                fail("taktd did not become ready: " + Files.readString(log));
            }
        }

        void kill() throws InterruptedException {
            if (proc.isAlive()) {
                proc.destroyForcibly(); // SIGKILL
                proc.waitFor(10, TimeUnit.SECONDS);
            }
        }

        void cleanup() throws Exception {
            kill();
            for (File f : dir.toFile().listFiles())
                f.delete();
            Files.deleteIfExists(dir);
        }
    }

    Taktd taktd() throws Exception {
        Taktd d = new Taktd(null, null);
        daemons.add(d);
        return d;
    }

    String chan(String tag) {
        String n = "pj-" + ProcessHandle.current().pid() + "-" + counter.incrementAndGet() + "-" + tag;
        channels.add(n);
        return n;
    }

    static String run(String... args) throws Exception {
        Process p = new ProcessBuilder(args).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        p.waitFor();
        return out;
    }

    void createChannel(String name, String mode) throws Exception {
        String out = run(PEER_C, "create", name, String.valueOf(1 << 20), "4096", mode);
        assertTrue(out.contains(": ok"), out);
    }

    /** Start peer_c; if ready, wait for its "ready" line. */
    Process peer(boolean ready, String... args) throws Exception {
        List<String> cmd = new ArrayList<>();
        cmd.add(PEER_C);
        cmd.addAll(List.of(args));
        Process p = new ProcessBuilder(cmd).redirectError(ProcessBuilder.Redirect.INHERIT).start();
        peers.add(p);
        if (ready) {
            String line = readLine(p);
            assertEquals("ready", line);
        }
        return p;
    }

    static String readLine(Process p) throws IOException {
        StringBuilder sb = new StringBuilder();
        int c;
        while ((c = p.getInputStream().read()) >= 0 && c != '\n')
            sb.append((char) c);
        return sb.toString();
    }

    static String finish(Process p) throws Exception {
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
        assertTrue(p.waitFor(120, TimeUnit.SECONDS));
        String[] lines = out.split("\n");
        return p.exitValue() + " " + lines[lines.length - 1];
    }

    <T extends AutoCloseable> T closeLater(T c) {
        closeables.add(c);
        return c;
    }

    @BeforeEach
    void checkEnv() {
        assertTrue(new File(TAKTD).canExecute(), "TAKTD_BIN=" + TAKTD);
        assertTrue(new File(PEER_C).canExecute(), "PEER_C=" + PEER_C);
    }

    @AfterEach
    void cleanup() throws Exception {
        AutoCloseable hung = null;
        for (AutoCloseable c : closeables) { // each close bounded: a hang must not stop the clean-up
            Thread t = new Thread(() -> {
                try {
                    c.close();
                } catch (Exception ignored) {
                    // best effort
                }
            });
            t.setDaemon(true);
            t.start();
            t.join(15000);
            if (t.isAlive() && hung == null)
                hung = c;
        }
        for (Process p : peers)
            p.destroyForcibly();
        for (Taktd d : daemons)
            d.cleanup();
        for (String ch : channels)
            run(PEER_C, "rm", ch);
        assertNull(hung, "close() hung for 15 s");
    }

    // ---- raw frames, and a fake taktd (for what a real one never sends) -------------------

    static final int HELLO = 0x0001, WELCOME = 0x0002, ATTACH = 0x0003, ATTACHED = 0x0004, DATA_BATCH = 0x0011,
            ERROR = 0x0030;

    record Frame(int type, int flags, int chan, int arg, ByteBuffer body) {}

    static ByteBuffer le(int n) {
        return ByteBuffer.allocate(n).order(ByteOrder.LITTLE_ENDIAN);
    }

    static ByteBuffer frame(int type, int flags, int chan, int arg, ByteBuffer body) {
        body.flip();
        ByteBuffer b = le(16 + body.remaining());
        b.putInt(16 + body.remaining()).putShort((short) type).putShort((short) flags).putInt(chan).putInt(arg)
                .put(body).flip();
        return b;
    }

    static void writeAll(SocketChannel s, ByteBuffer b) throws IOException {
        while (b.hasRemaining())
            s.write(b);
    }

    static void readFully(SocketChannel s, ByteBuffer b) throws IOException {
        while (b.hasRemaining())
            if (s.read(b) < 0)
                throw new EOFException();
    }

    static Frame readFrame(SocketChannel s) throws IOException {
        ByteBuffer h = le(16);
        readFully(s, h);
        ByteBuffer b = le(h.getInt(0) - 16);
        readFully(s, b);
        return new Frame(h.getShort(4) & 0xffff, h.getShort(6) & 0xffff, h.getInt(8), h.getInt(12), b);
    }

    /** A fake taktd on a Unix socket in a temp dir: the test plays the server's side. */
    static final class FakeTaktd implements AutoCloseable {
        final Path dir = Files.createTempDirectory("takt-peers-fake-");
        final Path socket = dir.resolve("fake.sock");
        final ServerSocketChannel srv = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
        SocketChannel conn;

        FakeTaktd() throws IOException {
            srv.bind(UnixDomainSocketAddress.of(socket));
        }

        /** Accept the client and answer its HELLO. */
        void acceptAndWelcome() throws IOException {
            conn = srv.accept();
            Frame h = readFrame(conn);
            assertEquals(HELLO, h.type());
            ByteBuffer w = le(32);
            w.putShort((short) 1).putShort((short) 0).putInt(4 << 20).putInt(64).putInt(4 << 20).putInt(0).putInt(0)
                    .putInt(1).putInt(0);
            writeAll(conn, frame(WELCOME, 0, 0, h.arg(), w));
        }

        /** Answer the next ATTACH with channel id chan (max_record 4096). */
        void attached(int chan) throws IOException {
            Frame a = readFrame(conn);
            assertEquals(ATTACH, a.type());
            int role = a.body().getShort(0);
            ByteBuffer b = le(32);
            b.putLong(1 << 20).putInt(1).putInt(4096).putShort((short) role).put((byte) (role == 2 ? 1 : 0))
                    .put((byte) 0).putInt(role == 2 ? 4 << 20 : 0).putLong(1);
            writeAll(conn, frame(ATTACHED, 0, chan, a.arg(), b));
        }

        @Override
        public void close() throws IOException {
            if (conn != null)
                conn.close();
            srv.close();
            Files.deleteIfExists(socket);
            Files.deleteIfExists(dir);
        }
    }

    interface Step<T> {
        T run() throws Exception;
    }

    /** Run a client call in another thread (while the test plays the server). */
    static <T> CompletableFuture<T> async(Step<T> s) {
        CompletableFuture<T> f = new CompletableFuture<>();
        Thread t = new Thread(() -> {
            try {
                f.complete(s.run());
            } catch (Throwable e) {
                f.completeExceptionally(e);
            }
        });
        t.setDaemon(true);
        t.start();
        return f;
    }

    /** Is t blocked in the client's socket write (a native wait inside TaktClient.writeFully)? */
    static boolean blockedInWrite(Thread t) {
        StackTraceElement[] st = t.getStackTrace();
        if (st.length == 0 || !st[0].isNativeMethod())
            return false;
        for (StackTraceElement e : st)
            if (e.getClassName().equals("io.takt.peer.TaktClient") && e.getMethodName().equals("writeFully"))
                return true;
        return false;
    }

    /**
     * Poll (bounded: 10 s) until a native peer_c run prints expect: e.g. until taktd has
     * really detached the client's endpoint and a native one can open the channel.
     */
    static void awaitNative(String expect, String why, String... args) throws Exception {
        List<String> cmd = new ArrayList<>();
        cmd.add(PEER_C);
        cmd.addAll(List.of(args));
        long until = System.nanoTime() + 10_000_000_000L;
        String out;
        while (!(out = run(cmd.toArray(new String[0]))).contains(expect)) {
            assertTrue(System.nanoTime() < until, why + ": " + out);
            Thread.sleep(50); // polling interval: waits for the observed state above
        }
    }

    static long ms(long t0) {
        return (System.nanoTime() - t0) / 1_000_000;
    }

    // ---- test records (the layout peer_c checks) ------------------------------------------

    static int recLen(long seq) {
        return (int) (16 + (seq * 2654435761L) % 185);
    }

    static byte[] record(long seq) {
        int len = recLen(seq);
        ByteBuffer b = ByteBuffer.allocate(len).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(seq);
        for (int i = 8; i < len - 4; i++)
            b.put((byte) (i + seq));
        CRC32 c = new CRC32();
        c.update(b.array(), 0, len - 4);
        b.putInt((int) c.getValue());
        return b.array();
    }

    static long check(TaktRecord r) {
        byte[] d = r.data();
        ByteBuffer b = ByteBuffer.wrap(d).order(ByteOrder.LITTLE_ENDIAN);
        long seq = b.getLong(0);
        CRC32 c = new CRC32();
        c.update(d, 0, d.length - 4);
        assertEquals((int) c.getValue(), b.getInt(d.length - 4), "checksum of record " + seq);
        assertEquals(recLen(seq), d.length, "length of record " + seq);
        assertEquals((int) (seq & 0xffffff), r.type(), "type of record " + seq);
        for (int i = 8; i < d.length - 4; i++)
            if (d[i] != (byte) (i + seq))
                fail("pattern of record " + seq);
        return seq;
    }

    // ---- tests ----------------------------------------------------------------------------

    @Test
    void javaToC() throws Exception {
        Taktd d = taktd();
        String name = chan("j2c");
        TaktClient c = closeLater(TaktClient.connect(d.socket));
        Producer p = c.openProducer(name, AttachOptions.create().capacity(1 << 20).maxRecord(4096).mode(0666));
        assertTrue(p.info().created());
        Process cons = peer(true, "consume", name, String.valueOf(N), "--ready");
        for (long s = 1; s <= 1000; s++)
            assertEquals(s, p.send(record(s), (int) (s & 0xffffff)));
        assertEquals(1001, p.sendAndWait(record(1001), 1001, Duration.ofSeconds(10)));
        int chunk = 5000;
        for (long s = 1002; s <= N; s += chunk) {
            int n = (int) Math.min(chunk, N - s + 1);
            byte[][] recs = new byte[n][];
            int[] types = new int[n];
            for (int i = 0; i < n; i++) {
                recs[i] = record(s + i);
                types[i] = (int) ((s + i) & 0xffffff);
            }
            p.sendBatch(recs, types, 0, Duration.ofSeconds(30));
        }
        assertEquals(N, p.flush(Duration.ofSeconds(60)));
        String res = finish(cons);
        assertTrue(res.startsWith("0 peer_c: consume ok records=" + N + " errors=0"), res);
        p.close();
    }

    @Test
    void cToJava() throws Exception {
        Taktd d = taktd();
        String name = chan("c2j");
        createChannel(name, "666");
        TaktClient c = closeLater(TaktClient.connect(d.socket));
        try (Consumer cons = c.openConsumer(name, new AttachOptions().queueLimit(64 << 20))) {
            assertEquals(4096, cons.info().maxRecord());
            Process prod = peer(false, "produce", name, String.valueOf(N));
            long last = 0;
            while (last < N) {
                List<TaktRecord> l = cons.receiveMany(10000, Duration.ofSeconds(30));
                assertFalse(l.isEmpty(), "no record within 30 s after " + last);
                for (TaktRecord r : l) {
                    long seq = check(r);
                    assertEquals(last + 1, seq);
                    assertEquals(seq, r.index());
                    last = seq;
                }
            }
            assertTrue(finish(prod).startsWith("0 "));
            assertNull(cons.receive(Duration.ofMillis(200)));
            assertEquals(0, cons.dropped());
        }
    }

    @Test
    void notRunning() throws Exception {
        Path dir = Files.createTempDirectory("takt-peers-none-");
        Path sock = dir.resolve("none.sock");
        try {
            TaktException.NotRunning e = assertThrows(TaktException.NotRunning.class, () -> TaktClient.connect(sock));
            assertTrue(e.getMessage().contains("not running"), e.getMessage());
            long t0 = System.nanoTime();
            assertThrows(TaktException.NotRunning.class,
                    () -> TaktClient.builder().socket(sock).connectTimeout(Duration.ofMillis(300)).connect());
            assertTrue(System.nanoTime() - t0 >= 250_000_000L);
        } finally {
            Files.deleteIfExists(dir);
        }
    }

    @Test
    void unknownChannel() throws Exception {
        Taktd d = taktd();
        TaktClient c = closeLater(TaktClient.connect(d.socket));
        String name = "pj-missing-" + counter.incrementAndGet();
        TaktException.NoSuchChannel e = assertThrows(TaktException.NoSuchChannel.class, () -> c.openProducer(name));
        assertEquals(ErrorCode.NOENT, e.code);
        assertEquals(2, e.errno);
        assertFalse(e.fatal);
        assertEquals(name, e.channel);
        assertThrows(TaktException.NoSuchChannel.class, () -> c.openConsumer(name));
        assertThrows(TaktException.InvalidArgument.class, () -> c.openProducer("bad/name"));
        c.ping(); // still usable
    }

    @Test
    void oversizedRecord() throws Exception {
        Taktd d = taktd();
        String name = chan("big");
        TaktClient c = closeLater(TaktClient.connect(d.socket));
        Producer p = c.openProducer(name, AttachOptions.create().capacity(1 << 16).maxRecord(1000));
        assertEquals(1000, p.maxRecord());
        p.sendAndWait(new byte[1000], 0, Duration.ofSeconds(10));
        TaktException.RecordTooLarge e = assertThrows(TaktException.RecordTooLarge.class, () -> p.send(new byte[1001]));
        assertEquals(1001, e.size);
        assertEquals(1000, e.maxRecord);
        assertEquals(ErrorCode.MSGSIZE, e.code);
        assertThrows(TaktException.RecordTooLarge.class,
                () -> p.sendBatch(List.of(new byte[1], new byte[2000], new byte[3]), 0));
        assertEquals(1, p.sent());
        p.sendAndWait(new byte[5], 0, Duration.ofSeconds(10));
        assertEquals(2, p.committed());
        assertThrows(TaktException.InvalidArgument.class, () -> p.send(new byte[1], 0xFFFF0000));
    }

    @Test
    void killedAndRestarted() throws Exception {
        Taktd d = taktd();
        String name = chan("crash");
        createChannel(name, "666");
        Process cons = peer(true, "consume", name, String.valueOf(N), "--dups", "--ready", "--idle-ms", "30000");
        TaktClient c = TaktClient.connect(d.socket);
        Producer p = c.openProducer(name);
        TaktException.ConnectionLost lost = null;
        long sent = 0;
        try {
            while (sent < N) {
                byte[][] recs = new byte[2000][];
                int[] types = new int[2000];
                for (int i = 0; i < 2000; i++) {
                    recs[i] = record(sent + 1 + i);
                    types[i] = (int) ((sent + 1 + i) & 0xffffff);
                }
                p.sendBatch(recs, types, 0, Duration.ofSeconds(30));
                sent += 2000;
                if (sent == 40000) {
                    p.flush(Duration.ofSeconds(30));
                    d.kill();
                }
            }
        } catch (TaktException.ConnectionLost e) {
            lost = e;
        }
        assertNotNull(lost, "no ConnectionLost after kill -9");
        assertTrue(lost.getMessage().contains("without BYE") || lost.getMessage().contains("reset"), lost.getMessage());
        long committed = lost.committed.get(name);
        assertTrue(committed >= 40000, "committed " + committed);
        assertThrows(TaktException.ConnectionLost.class, () -> p.send(new byte[1]));
        c.close();
        // Right after kill -9 the dead taktd's listening socket may still accept
        // for a moment (io_uring tears down asynchronously): the connect then
        // fails on its HELLO with ConnectionLost instead of NotRunning.  Both are
        // the clear error this test asks for.
        TaktException refused = assertThrows(TaktException.class, () -> TaktClient.connect(d.socket));
        assertTrue(refused instanceof TaktException.NotRunning
                || refused instanceof TaktException.ConnectionLost, "got " + refused);
        CompletableFuture.runAsync(() -> {
            try {
                Thread.sleep(300);
                d.start();
            } catch (Exception e) {
                throw new RuntimeException(e);
            }
        });
        try (TaktClient c2 = TaktClient.builder().socket(d.socket).connectTimeout(Duration.ofSeconds(15)).connect();
             Producer p2 = c2.openProducer(name)) {
            for (long s = committed + 1; s <= N; s += 5000) {
                int n = (int) Math.min(5000, N - s + 1);
                byte[][] recs = new byte[n][];
                int[] types = new int[n];
                for (int i = 0; i < n; i++) {
                    recs[i] = record(s + i);
                    types[i] = (int) ((s + i) & 0xffffff);
                }
                p2.sendBatch(recs, types, 0, Duration.ofSeconds(30));
            }
            assertEquals(N - committed, p2.flush(Duration.ofSeconds(60)));
        }
        String res = finish(cons);
        assertTrue(res.startsWith("0 peer_c: consume ok"), res);
    }

    static boolean rootWithSetpriv() {
        return "root".equals(System.getProperty("user.name")) && new File("/usr/bin/setpriv").canExecute();
    }

    @Test
    void deniedByPolicy() throws Exception {
        assumeTrue(rootWithSetpriv(), "needs root and setpriv: taktd must run as another uid than the client");
        String ok = chan("ok"), denied = chan("deny");
        // taktd admits its own uid for everything: run it as nobody, the test (uid 0) is foreign
        Taktd d = new Taktd("allow uid:0 pj-*-ok produce,consume,create\n", 65534);
        daemons.add(d);
        try (TaktClient c = TaktClient.connect(d.socket)) {
            TaktException.Denied e = assertThrows(TaktException.Denied.class,
                    () -> c.openProducer(denied, AttachOptions.create()));
            assertEquals(ErrorCode.DENIED, e.code);
            assertFalse(e.fatal);
            assertThrows(TaktException.Denied.class, () -> c.openConsumer(denied));
            try (Producer p = c.openProducer(ok, AttachOptions.create().mode(0666))) {
                p.sendAndWait("fine".getBytes(StandardCharsets.UTF_8), 0, Duration.ofSeconds(10));
            }
        }
        Taktd d2 = new Taktd("allow uid:12345 * all\n", 65534);
        daemons.add(d2);
        TaktException.Denied e = assertThrows(TaktException.Denied.class, () -> TaktClient.connect(d2.socket));
        assertTrue(e.fatal);
    }

    /** Records the ring held before the consumer attached come with ATTACHED: none may be lost. */
    @Test
    void recordsAlreadyInTheRing() throws Exception {
        Taktd d = taktd();
        for (int round = 0; round < 6; round++) {
            String name = chan("ring" + round);
            createChannel(name, "666");
            assertTrue(finish(peer(false, "produce", name, "2000")).startsWith("0 "));
            try (TaktClient c = TaktClient.connect(d.socket); Consumer cons = c.openConsumer(name)) {
                for (long s = 1; s <= 2000; s++) {
                    TaktRecord r = cons.receive(Duration.ofSeconds(10));
                    assertNotNull(r, "round " + round + ": record " + s + " of 2000 missing");
                    assertEquals(s, check(r));
                    assertEquals(s, r.index());
                }
                assertNull(cons.receive(Duration.ofMillis(100)));
            }
        }
    }

    /** A full ring: taktd stops reading; send(timeout), ping and close must still return. */
    @Test
    void sendTimeoutOnFullRing() throws Exception {
        Taktd d = taktd();
        String name = chan("full");
        assertTrue(run(PEER_C, "create", name, "4096", "1024", "666").contains(": ok"));
        TaktClient c = closeLater(TaktClient.builder().socket(d.socket).requestTimeout(Duration.ofSeconds(1)).connect());
        Producer p = c.openProducer(name);
        TaktException.Timeout to = assertTimeoutPreemptively(Duration.ofSeconds(30), () -> {
            long n = 0;
            while (true) {
                long t0 = System.nanoTime();
                try {
                    p.send(new byte[1000], 0, Duration.ofMillis(300));
                    n++;
                } catch (TaktException.Timeout e) {
                    assertTrue(ms(t0) < 3000, "send(300 ms) took " + ms(t0) + " ms");
                    assertTrue(n > 3, "only " + n + " records before the timeout");
                    if (e.getCause() == null)
                        assertEquals(n, p.sent(), "a record not written must not count as sent");
                    return e;
                }
            }
        }, "send(..., 300 ms) hangs on a full ring");
        assertTrue(to.getCause() == null || to.getCause() instanceof TaktException.ConnectionLost, "" + to.getCause());
        long t0 = System.nanoTime();
        TaktException pe = assertTimeoutPreemptively(Duration.ofSeconds(10),
                () -> assertThrows(TaktException.class, c::ping), "ping hangs");
        assertTrue(ms(t0) < 3000, "ping (request timeout 1 s) took " + ms(t0) + " ms");
        if (to.getCause() != null) // the timeout left a half-written frame: the connection is gone
            assertTrue(pe instanceof TaktException.ConnectionLost, "" + pe);
        else
            assertTrue(pe instanceof TaktException.Timeout, "" + pe);
        t0 = System.nanoTime();
        assertTimeoutPreemptively(Duration.ofSeconds(10), c::close, "close hangs");
        assertTrue(ms(t0) < 3000, "close (request timeout 1 s) took " + ms(t0) + " ms");
        assertThrows(TaktException.class, () -> p.send(new byte[1]));
    }

    /**
     * A sendBatch whose deadline passes with a 256 KiB frame half-written (bigger than the
     * socket buffer): the rest of that frame stays queued and its records count as sent;
     * the batch throws Timeout for the frames not written; the connection stays usable and
     * every record counted as sent reaches the ring, in order, once taktd reads again.
     */
    @Test
    void writeTimeoutMidFrame() throws Exception {
        Taktd d = taktd();
        String name = chan("midframe");
        assertTrue(run(PEER_C, "create", name, "4096", "1024", "666").contains(": ok"));
        TaktClient c = closeLater(TaktClient.builder().socket(d.socket).requestTimeout(Duration.ofSeconds(1)).connect());
        Producer p = c.openProducer(name);
        int total = 40000; // ~4.6 MB of test records in DATA_BATCH frames of 256 KiB
        byte[][] recs = new byte[total][];
        int[] types = new int[total];
        for (int i = 0; i < total; i++) {
            recs[i] = record(i + 1);
            types[i] = (i + 1) & 0xffffff;
        }
        long t0 = System.nanoTime();
        TaktException.Timeout e = assertTimeoutPreemptively(Duration.ofSeconds(20), () -> assertThrows(
                TaktException.Timeout.class, () -> p.sendBatch(recs, types, 0, Duration.ofMillis(500))));
        assertTrue(ms(t0) < 3000, "sendBatch(500 ms) took " + ms(t0) + " ms");
        assertNull(e.getCause(), "the connection must survive a half-written frame");
        long sent = p.sent();
        assertTrue(sent > 0 && sent < total, "sent " + sent);
        assertTrue(p.committed() < sent, "committed " + p.committed());
        // drain the ring: taktd reads again, the queued rest of the frame is written
        assertTrue(finish(peer(false, "consume", name, String.valueOf(sent))).startsWith("0 "));
        assertEquals(sent, p.flush(Duration.ofSeconds(10)));
        c.ping();
        Process more = peer(true, "consume", name, "1", "--ready");
        assertEquals(sent + 1, p.sendAndWait(record(1), 1, Duration.ofSeconds(10)));
        assertTrue(finish(more).startsWith("0 "));
        t0 = System.nanoTime();
        c.close();
        assertTrue(ms(t0) < 2000, "close took " + ms(t0) + " ms");
    }

    /** close() wakes a thread blocked writing to a taktd that stopped reading. */
    @Test
    void closeWakesBlockedWriter() throws Exception {
        Taktd d = taktd();
        String name = chan("wake");
        assertTrue(run(PEER_C, "create", name, "4096", "1024", "666").contains(": ok"));
        TaktClient c = closeLater(TaktClient.builder().socket(d.socket).requestTimeout(Duration.ofSeconds(1)).connect());
        Producer p = c.openProducer(name);
        AtomicReference<Throwable> err = new AtomicReference<>();
        Thread w = new Thread(() -> {
            try {
                while (true)
                    p.send(new byte[1000]); // no timeout
            } catch (Throwable e) {
                err.set(e);
            }
        });
        w.setDaemon(true);
        w.start();
        long until = System.nanoTime() + 20_000_000_000L;
        while (!blockedInWrite(w)) {
            assertTrue(w.isAlive(), "the writer ended: " + err.get());
            assertTrue(System.nanoTime() < until, "the writer never blocked in a write");
            Thread.sleep(20); // polling interval: waits for the observed state above
        }
        long t0 = System.nanoTime();
        assertTimeoutPreemptively(Duration.ofSeconds(10), c::close, "close hangs behind a blocked writer");
        assertTrue(ms(t0) < 3000, "close (request timeout 1 s) took " + ms(t0) + " ms");
        w.join(5000);
        assertFalse(w.isAlive(), "the blocked writer was not woken by close()");
        assertTrue(err.get() instanceof TaktException.Closed, "writer got " + err.get());
    }

    /** Producer.close() after a flush timeout still detaches (taktd sees it), reports the timeout once. */
    @Test
    void producerCloseAfterFlushTimeout() throws Exception {
        Taktd d = taktd();
        String name = chan("pclose");
        assertTrue(run(PEER_C, "create", name, "4096", "1024", "666").contains(": ok"));
        TaktClient c = closeLater(TaktClient.builder().socket(d.socket).requestTimeout(Duration.ofMillis(500)).connect());
        Producer p = c.openProducer(name);
        int n = 100; // ~12 KB of test records: more than the 4 KiB ring, less than the socket buffers
        for (long s = 1; s <= n; s++)
            p.send(record(s), (int) (s & 0xffffff), Duration.ofSeconds(5));
        TaktException.Timeout e = assertThrows(TaktException.Timeout.class, p::close);
        assertTrue(e.getMessage().contains("not acknowledged"), e.getMessage());
        assertDoesNotThrow(p::close); // closed: nothing more to report
        assertThrows(TaktException.Closed.class, () -> p.send(new byte[1]));
        assertTrue(p.committed() < n);
        // drain the ring: taktd reads the rest, then the DETACH; the lane is free again
        assertTrue(finish(peer(false, "consume", name, String.valueOf(n))).startsWith("0 "));
        awaitNative("produce ok", "taktd still holds the producer of " + name, "produce", name, "0");
        c.ping();
    }

    /**
     * A consumer's close while another thread's write (send without a timeout) is stalled
     * on a full ring: DETACH cannot be written in time, close() throws Timeout, but the
     * DETACH is not dropped: taktd gets it once it reads again, the client still open.
     */
    @Test
    void consumerDetachQueuedBehindStalledWriter() throws Exception {
        Taktd d = taktd();
        String full = chan("jam"), other = chan("detq");
        assertTrue(run(PEER_C, "create", full, "4096", "1024", "666").contains(": ok"));
        createChannel(other, "666");
        TaktClient c = closeLater(TaktClient.builder().socket(d.socket).requestTimeout(Duration.ofMillis(500)).connect());
        Consumer cons = c.openConsumer(other);
        Producer p = c.openProducer(full);
        AtomicBoolean stop = new AtomicBoolean();
        AtomicLong sent = new AtomicLong();
        AtomicReference<Throwable> err = new AtomicReference<>();
        Thread w = new Thread(() -> {
            try {
                for (long s = 1; !stop.get(); s++) {
                    p.send(record(s), (int) (s & 0xffffff)); // no timeout: holds the write lock while stalled
                    sent.set(s);
                }
            } catch (Throwable e) {
                err.set(e);
            }
        });
        w.setDaemon(true);
        w.start();
        long until = System.nanoTime() + 20_000_000_000L;
        while (!blockedInWrite(w)) {
            assertTrue(w.isAlive(), "the writer ended: " + err.get());
            assertTrue(System.nanoTime() < until, "the writer never blocked in a write");
            Thread.sleep(20); // polling interval: waits for the observed state above
        }
        long t0 = System.nanoTime();
        TaktException.Timeout e = assertTimeoutPreemptively(Duration.ofSeconds(10),
                () -> assertThrows(TaktException.Timeout.class, cons::close));
        assertTrue(ms(t0) < 3000, "close (request timeout 500 ms) took " + ms(t0) + " ms");
        assertTrue(e.getMessage().contains("DETACH"), e.getMessage());
        assertThrows(TaktException.Closed.class, () -> cons.receive(Duration.ZERO));
        assertDoesNotThrow(cons::close); // closed: nothing more to report
        // let taktd read again: stop the writer after its stalled record, drain the ring
        stop.set(true);
        Process drain = peer(false, "consume", full, "1000000000", "--idle-ms", "1000");
        w.join(20000);
        assertFalse(w.isAlive(), "the writer is still blocked");
        assertNull(err.get());
        assertEquals(sent.get(), p.flush(Duration.ofSeconds(10)));
        // the queued DETACH reached taktd: a native consumer can open the channel
        awaitNative("consume ok", "taktd still consumes " + other, "consume", other, "0");
        finish(drain);
        c.ping();
        try (Consumer again = c.openConsumer(other)) {
            assertNull(again.receive(Duration.ofMillis(50)));
        }
    }

    /**
     * Producer.close() with the ring and the socket buffer full: neither the flush nor
     * the DETACH get through in time; the DETACH is queued and reaches taktd once the
     * ring drains, the client still open and idle.
     */
    @Test
    void producerCloseDetachQueuedOnFullSocket() throws Exception {
        Taktd d = taktd();
        String name = chan("pfull");
        assertTrue(run(PEER_C, "create", name, "4096", "1024", "666").contains(": ok"));
        TaktClient c = closeLater(TaktClient.builder().socket(d.socket).requestTimeout(Duration.ofMillis(500)).connect());
        Producer p = c.openProducer(name);
        long n = assertTimeoutPreemptively(Duration.ofSeconds(30), () -> {
            long s = 0;
            while (true) {
                try {
                    p.send(record(s + 1), (int) ((s + 1) & 0xffffff), Duration.ofMillis(300));
                    s++;
                } catch (TaktException.Timeout e) {
                    assertNull(e.getCause(), "a small record half-written"); // nothing of it was written
                    return s;
                }
            }
        }, "send(..., 300 ms) hangs on a full ring");
        assertEquals(n, p.sent());
        long t0 = System.nanoTime();
        TaktException.Timeout e = assertTimeoutPreemptively(Duration.ofSeconds(10),
                () -> assertThrows(TaktException.Timeout.class, p::close));
        assertTrue(ms(t0) < 3000, "close (request timeout 500 ms) took " + ms(t0) + " ms");
        assertTrue(e.getMessage().contains("not acknowledged"), e.getMessage());
        assertEquals(1, e.getSuppressed().length, "the DETACH timed out too");
        assertTrue(e.getSuppressed()[0].getMessage().contains("DETACH"), e.getSuppressed()[0].getMessage());
        assertThrows(TaktException.Closed.class, () -> p.send(new byte[1]));
        // drain the ring: taktd reads the records, then the queued DETACH
        assertTrue(finish(peer(false, "consume", name, String.valueOf(n))).startsWith("0 "));
        awaitNative("produce ok", "taktd still holds the producer of " + name, "produce", name, "0");
        c.ping();
    }

    /** KIND (32): a queue role on a state channel. */
    @Test
    void wrongKindOfChannel() throws Exception {
        Taktd d = taktd();
        String name = chan("kind");
        try (SocketChannel s = SocketChannel.open(UnixDomainSocketAddress.of(d.socket))) {
            ByteBuffer hello = le(8);
            hello.putShort((short) 1).putShort((short) 0).putInt(1 << 20);
            writeAll(s, frame(HELLO, 0, 0, 1, hello));
            Frame w = readFrame(s);
            assertEquals(WELCOME, w.type());
            assumeTrue((w.body().getInt(28) & 1) != 0, "taktd without state channels");
            byte[] nm = name.getBytes(StandardCharsets.US_ASCII);
            ByteBuffer a = le(32 + nm.length); // role 3 (state read), CREATE, image of 64 bytes
            a.putShort((short) 3).putShort((short) 1).putInt(0).putLong(0).putInt(64).putInt(0666).putInt(0)
                    .put((byte) 0).put((byte) 0).putShort((short) nm.length).put(nm);
            writeAll(s, frame(ATTACH, 0, 0, 2, a));
            assertEquals(ATTACHED, readFrame(s).type(), "creating the state channel");
        }
        TaktClient c = closeLater(TaktClient.connect(d.socket));
        for (boolean produce : new boolean[] {true, false}) {
            TaktException.ServerError e = assertThrows(TaktException.ServerError.class,
                    () -> { if (produce) c.openProducer(name); else c.openConsumer(name); });
            assertEquals("KIND", e.code.name(), e.getMessage());
            assertEquals(32, e.rawCode);
            assertFalse(e.fatal);
            assertEquals(name, e.channel);
            assertTrue(e.getMessage().contains("KIND"), e.getMessage());
        }
        c.ping(); // still usable
    }

    /** maxFrame is checked; the read buffer grows for a frame above its initial size. */
    @Test
    void largeMaxFrame() throws Exception {
        Taktd d = taktd();
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> TaktClient.builder()
                .socket(d.socket).maxFrame(Integer.MAX_VALUE).requestTimeout(Duration.ofSeconds(2)).connect());
        assertTrue(e.getMessage().contains("maxFrame"), e.getMessage());
        String name = chan("huge");
        try (TaktClient c = TaktClient.builder().socket(d.socket).maxFrame(1 << 30).connect()) {
            int size = Math.min(1_500_000, c.server().maxFrame() - 64);
            Producer p = c.openProducer(name, AttachOptions.create().capacity(8 << 20).maxRecord(2 << 20));
            Consumer cons = c.openConsumer(name, new AttachOptions().queueLimit(16 << 20));
            byte[] big = new byte[size];
            for (int i = 0; i < size; i++)
                big[i] = (byte) (i * 31 + 7);
            p.sendAndWait(big, 5, Duration.ofSeconds(10));
            TaktRecord r = cons.receive(Duration.ofSeconds(10));
            assertNotNull(r);
            assertArrayEquals(big, r.data());
            assertEquals(5, r.type());
            p.close();
            cons.close();
        }
    }

    /** A frame the reader cannot take ends the connection with an error, not a silent hang. */
    @Test
    void badFrameFailsTheConnection() throws Exception {
        try (FakeTaktd f = new FakeTaktd()) {
            CompletableFuture<TaktClient> cf = async(() -> TaktClient.builder().socket(f.socket)
                    .requestTimeout(Duration.ofSeconds(5)).connect());
            f.acceptAndWelcome();
            TaktClient c = closeLater(cf.get(10, TimeUnit.SECONDS));
            CompletableFuture<Consumer> cc = async(() -> c.openConsumer("fake-c"));
            f.attached(1);
            Consumer cons = cc.get(10, TimeUnit.SECONDS);
            ByteBuffer b = le(12); // a DATA_BATCH that claims 2 records and holds 1
            b.putInt(4).putInt(7).put("abcd".getBytes(StandardCharsets.US_ASCII));
            writeAll(f.conn, frame(DATA_BATCH, 0, 1, 2, b));
            TaktException.ConnectionLost e = assertTimeoutPreemptively(Duration.ofSeconds(20),
                    () -> assertThrows(TaktException.ConnectionLost.class, () -> cons.receive(Duration.ofSeconds(10))));
            assertTrue(e.getMessage().contains("bad frame"), e.getMessage());
            assertThrows(TaktException.ConnectionLost.class, c::ping);
        }
    }

    /** taktd's fatal ERROR, then close: a write failing on the closed socket must not hide it. */
    @Test
    void fatalErrorNotMaskedByWriteFailure() throws Exception {
        try (FakeTaktd f = new FakeTaktd()) {
            CompletableFuture<TaktClient> cf = async(() -> TaktClient.builder().socket(f.socket)
                    .requestTimeout(Duration.ofSeconds(5)).connect());
            f.acceptAndWelcome();
            TaktClient c = closeLater(cf.get(10, TimeUnit.SECONDS));
            CompletableFuture<Consumer> cc = async(() -> c.openConsumer("fake-c"));
            f.attached(1);
            Consumer cons = cc.get(10, TimeUnit.SECONDS);
            CompletableFuture<Producer> pc = async(() -> c.openProducer("fake-p"));
            f.attached(2);
            Producer p = pc.get(10, TimeUnit.SECONDS);
            AtomicReference<Throwable> err = new AtomicReference<>();
            Thread w = new Thread(() -> {
                try {
                    while (true)
                        p.send(new byte[1000]); // the fake never reads: this blocks
                } catch (Throwable e) {
                    err.set(e);
                }
            });
            w.setDaemon(true);
            w.start();
            // Many small records keep the reader busy while the fake closes: the
            // writer's broken pipe comes before the reader reaches the ERROR.
            int batches = 256, per = 1000;
            for (int i = 0; i < batches; i++) {
                ByteBuffer b = le(8 * per);
                for (int j = 0; j < per; j++)
                    b.putInt(0).putInt(j);
                writeAll(f.conn, frame(DATA_BATCH, 0, 1, per, b));
            }
            ByteBuffer eb = le(8 + 4);
            eb.putInt(8).putInt(0).put("slow".getBytes(StandardCharsets.US_ASCII)); // SLOW_CONSUMER, fatal
            writeAll(f.conn, frame(ERROR, 1, 1, 0, eb));
            f.conn.close(); // with the producer's records unread
            w.join(10000);
            assertFalse(w.isAlive(), "the writer did not fail");
            assertTrue(err.get() instanceof TaktException.SlowConsumer, "the writer got " + err.get());
            assertThrows(TaktException.SlowConsumer.class, c::ping);
            long n = 0;
            try {
                while (true) {
                    List<TaktRecord> l = cons.receiveMany(100000, Duration.ofSeconds(10));
                    assertFalse(l.isEmpty(), "no error after " + n + " records");
                    n += l.size();
                }
            } catch (TaktException.SlowConsumer e) {
                assertTrue(e.fatal);
            }
            assertEquals((long) batches * per, n, "records received before the error");
        }
    }

    /** An ATTACH that timed out: when its ATTACHED comes late, the client detaches it. */
    @Test
    void lateAttachedIsDetached() throws Exception {
        Taktd d = taktd();
        String full = chan("stall"), late = chan("late");
        assertTrue(run(PEER_C, "create", full, "4096", "1024", "666").contains(": ok"));
        createChannel(late, "666");
        TaktClient c = closeLater(TaktClient.builder().socket(d.socket).requestTimeout(Duration.ofMillis(500)).connect());
        Producer p = c.openProducer(full);
        int n = 100; // ~12 KB of test records: the 4 KiB ring fills, taktd stops reading this connection
        for (long s = 1; s <= n; s++)
            p.send(record(s), (int) (s & 0xffffff), Duration.ofSeconds(5));
        assertThrows(TaktException.Timeout.class, () -> c.openConsumer(late));
        // drain the ring: taktd reads again and attaches the consumer (too late)
        assertTrue(finish(peer(false, "consume", full, String.valueOf(n))).startsWith("0 "));
        assertEquals(n, p.flush(Duration.ofSeconds(10)));
        // the client must DETACH it: then a native consumer can open the channel
        long until = System.nanoTime() + 10_000_000_000L;
        String out;
        while (!(out = run(PEER_C, "consume", late, "0")).contains("consume ok")) {
            assertTrue(System.nanoTime() < until, "taktd still consumes " + late + ": " + out);
            Thread.sleep(50); // polling interval: waits for the observed state above
        }
        c.ping();
        try (Consumer cons = c.openConsumer(late)) {
            assertNull(cons.receive(Duration.ofMillis(50)));
        }
    }
}
