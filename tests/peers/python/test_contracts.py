# SPDX-License-Identifier: MIT
"""Contracts of the Python client that its users rely on (docs/PEERS.md), each
a regression test of a bug found in review: bytes-like payloads, closing from
another thread, several threads receiving, what Timeout means for a record,
close() when the flush times out, a fatal ERROR seen as such, a timed-out
ATTACH, malformed frames from the server, timeout=0 polling, Client.close()
reporting records it could not confirm."""

import array
import os
import shutil
import signal
import socket
import struct
import sys
import tempfile
import threading
import time
import unittest

import harness as H
import takt_peer as T
from test_peers import PeerTest

HDR = struct.Struct("<IHHII")


def wait_until(pred, timeout=10.0, what="condition"):
    """Bounded polling of an observable state (not a sleep standing in for it)."""
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.001)


def frame(ftype, chan=0, arg=0, body=b"", flags=0):
    return HDR.pack(16 + len(body), ftype, flags, chan, arg) + body


class FakeTaktd:
    """A scripted server: says WELCOME, records every frame received after HELLO
    as (type, chan, arg, body) and lets ``handler(fake, conn, ftype, chan, arg, body)``
    answer it."""

    def __init__(self, handler):
        self.dir = tempfile.mkdtemp(prefix="takt-fake-")
        self.path = os.path.join(self.dir, "fake.sock")
        self.handler = handler
        self.received = []
        self.lock = threading.Lock()
        self.gate = threading.Event()
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(self.path)
        self.sock.listen(1)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def frames_of(self, ftype):
        with self.lock:
            return [f for f in self.received if f[0] == ftype]

    def _serve(self):
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        with conn:
            buf = b""
            while True:
                while len(buf) >= 16 and len(buf) >= HDR.unpack_from(buf)[0]:
                    n, ftype, _, chan, arg = HDR.unpack_from(buf)
                    body = buf[16:n]
                    buf = buf[n:]
                    if ftype == 0x0001:
                        w = struct.pack("<HHIIIIIII", 1, 0, 1 << 22, 64, 1 << 22, os.getuid(), os.getgid(),
                                        os.getpid(), 1)
                        conn.sendall(frame(0x0002, 0, arg, w))
                        continue
                    with self.lock:
                        self.received.append((ftype, chan, arg, body))
                    if ftype == 0x0040:                             # BYE -> BYE, close
                        conn.sendall(frame(0x0040))
                        return
                    if self.handler(self, conn, ftype, chan, arg, body) is False:
                        return
                try:
                    chunk = conn.recv(65536)
                except OSError:
                    return
                if not chunk:
                    return
                buf += chunk

    def close(self):
        self.gate.set()
        self.sock.close()
        self.thread.join(10)
        shutil.rmtree(self.dir, ignore_errors=True)


def attached(arg, chan, role, max_record=65536):
    return frame(0x0004, chan, arg, struct.pack("<QIIHBBIQ", 1 << 20, 1, max_record, role, 1, 0, 4 << 20, 0x1234))


class BytesLike(PeerTest):
    def test_bytes_like_payloads_send_their_bytes(self):
        """send/send_batch of a bytes-like object whose len() is not its byte count
        (array('I'), a memoryview of another format, a 2-D view) send all its bytes;
        the size check counts bytes (regression: len() went in the header, the stream
        desynchronised)."""
        name = self.chan("blike")
        c = self.client()
        p = c.producer(name, create=True, capacity=1 << 16, max_record=64)
        cons = c.consumer(name)
        a = array.array("I", [1, 2, 3])
        two_d = memoryview(bytes(range(12))).cast("B", (3, 4))
        p.send(a, type=5)
        p.send(memoryview(array.array("H", [7, 8])), type=6)
        p.send_batch([a, (two_d, 9), bytearray(b"xy"), memoryview(b"abcdef")[::2]])
        p.send(b"last", type=7)
        self.assertEqual(p.flush(timeout=10), 7)
        got = [(r.type, bytes(r.data)) for r in (cons.recv(timeout=10) for _ in range(7))]
        self.assertEqual(got, [(5, a.tobytes()), (6, array.array("H", [7, 8]).tobytes()),
                               (0, a.tobytes()), (9, bytes(range(12))), (0, b"xy"), (0, b"ace"),
                               (7, b"last")])
        big = array.array("I", range(17))                       # 68 bytes, len() 17
        with self.assertRaises(T.RecordTooLarge) as cm:
            p.send(big)
        self.assertEqual(cm.exception.size, 68)
        with self.assertRaises(T.RecordTooLarge):
            p.send_batch([b"ok", big])
        self.assertEqual(p.sent, 7)
        with self.assertRaises(TypeError):
            p.send("text")
        p.send(b"still usable", wait=True, timeout=10)


class Threads(PeerTest):
    def test_close_from_another_thread_ends_iteration(self):
        """`for rec in cons` in a thread that is blocked doing the I/O ends when
        another thread closes the consumer (regression: it stayed blocked in poll)."""
        name = self.chan("cwake")
        H.create_channel(name)
        c = self.client(timeout=5)
        cons = c.consumer(name)
        got, done = [], threading.Event()

        def iterate():
            for rec in cons:
                got.append(rec)
            done.set()

        t = threading.Thread(target=iterate, daemon=True)
        t.start()
        wait_until(lambda: c._io_owner, what="the iterating thread to own the I/O")
        self.assertEqual(cons.close(), (0, 0))
        self.assertTrue(done.wait(10), "iteration did not end after close()")
        t.join(5)
        self.assertEqual(got, [])
        c.ping(timeout=5)                                       # the connection is fine

    def test_threads_share_a_consumer(self):
        """Several threads recv() on one consumer: every record goes to exactly one,
        none raises Closed before the consumer is closed (regression: the check and
        the pop were not atomic, a thread got a spurious Closed)."""
        name = self.chan("mtrecv")
        H.create_channel(name)
        count = 2000
        c = self.client()
        cons = c.consumer(name)
        old = sys.getswitchinterval()
        sys.setswitchinterval(1e-6)                             # preempt often: expose races
        self.addCleanup(sys.setswitchinterval, old)
        closing = threading.Event()
        got, errs = [], []
        lock = threading.Lock()

        def worker():
            while True:
                try:
                    r = cons.recv(timeout=30)
                except T.Closed:
                    if not closing.is_set():
                        errs.append("spurious Closed")
                    return
                except Exception as e:  # reported below
                    errs.append(repr(e))
                    return
                with lock:
                    got.append(r.index)

        ts = [threading.Thread(target=worker, daemon=True) for _ in range(6)]
        for t in ts:
            t.start()
        with T.Client(self.taktd.socket) as pc, pc.producer(name) as p:
            for i in range(count):                              # one record at a time
                p.send(b"r%d" % i, wait=True, timeout=10)
        wait_until(lambda: len(got) >= count or errs, 30, "every record")
        closing.set()
        cons.close()
        for t in ts:
            t.join(10)
        self.assertEqual(errs, [])
        self.assertEqual(sorted(got), list(range(1, count + 1)))


class Timeouts(PeerTest):
    def test_send_timeout_means_not_queued(self):
        """send(timeout) into a full ring: Timeout is raised only for a record that was
        not queued (seq None, `sent` unchanged); every send that returned is delivered,
        nothing more (regression: the record of the Timeout was queued and delivered)."""
        name = self.chan("sendto")
        H.create_channel(name, capacity=65536, max_record=4096)
        c = self.client(timeout=5)
        p = c.producer(name)
        ok = 0
        while True:
            try:
                self.assertEqual(p.send(b"%08d" % (ok + 1) + b"x" * 992, timeout=0.2), ok + 1)
                ok += 1
            except T.Timeout as e:
                timeout = e
                break
            self.assertLess(ok, 100000, "the ring never filled")
        self.assertEqual(p.sent, ok)
        self.assertIsNone(timeout.seq)
        with T.Client(self.taktd.socket) as c2, c2.consumer(name, queue_limit=64 << 20) as cons:
            self.assertEqual(p.flush(timeout=30), ok)         # the consumer drains the ring
            seqs = []
            while len(seqs) < ok:
                seqs.extend(int(r.data[:8]) for r in cons.recv_many(timeout=10))
            self.assertEqual(seqs, list(range(1, ok + 1)))
            self.assertEqual(p.close(), ok)                    # DETACHED: committed = ok, not ok + 1

    def test_close_detaches_when_flush_times_out(self):
        """Producer.close() whose flush times out (ring full, no consumer) still
        detaches, then raises Timeout; the records stay queued behind DETACH and are
        committed once a consumer drains; a `with` block's own exception is not
        replaced (regression: close raised and never detached)."""
        name = self.chan("closeto")
        H.create_channel(name, capacity=65536, max_record=4096)
        c = self.client(timeout=1)
        p = c.producer(name)
        for i in range(100):                                   # 64 of them fit in the ring
            p.send(b"%08d" % (i + 1) + b"z" * 992)
        with self.assertRaises(T.Timeout) as cm:
            p.close(timeout=0.3)
        self.assertTrue(p.closed)
        self.assertEqual(cm.exception.seq, 100)
        with self.assertRaises(T.Closed):
            p.send(b"after close")
        c3 = self.client(timeout=0.3)                           # c is stalled (one ordered stream)
        with self.assertRaises(RuntimeError):
            with c3.producer(name) as p2:
                p2.send(b"%08d" % 101 + b"z" * 992)
                raise RuntimeError("the application's own error")
        self.assertTrue(p2.closed)
        with T.Client(self.taktd.socket) as c2, c2.consumer(name, queue_limit=64 << 20) as cons:
            seqs = []
            while len(seqs) < 101:
                seqs.extend(int(r.data[:8]) for r in cons.recv_many(timeout=10))
            self.assertEqual(sorted(seqs), list(range(1, 102)))
            self.assertEqual([q for q in seqs if q <= 100], list(range(1, 101)))
        c.ping(timeout=5)                                       # DETACHED came and was ignored

    def test_timed_out_attach_is_not_left_attached(self):
        """A consumer ATTACH that timed out before it was written is never sent: a
        retry gets every record the ring held (regression: taktd attached a consumer
        nobody read, which took the ring's records)."""
        name = self.chan("attto")
        H.create_channel(name)
        rc, line = H.finish(H.peer("produce", name, 500))
        self.assertEqual(rc, 0, line)
        c = self.client()
        c._write = lambda: False                                # the socket takes nothing
        try:
            with self.assertRaises(T.Timeout):
                c.consumer(name, timeout=0)
        finally:
            del c._write
        c.ping(timeout=5)
        with c.consumer(name) as cons:
            got = []
            while len(got) < 500:
                got.extend(H.check_record(r) for r in cons.recv_many(timeout=10))
            self.assertEqual(got, list(range(1, 501)))


    def test_timed_out_attach_that_was_sent_is_detached(self):
        """A consumer ATTACH written to taktd but not answered by its deadline (taktd
        stopped) is detached when its ATTACHED comes: a retry attaches (no Busy) and
        gets the records produced after it."""
        name = self.chan("attsent")
        H.create_channel(name)
        c = self.client(timeout=5)
        pid = self.taktd.proc.pid
        os.kill(pid, signal.SIGSTOP)
        self.addCleanup(os.kill, pid, signal.SIGCONT)
        try:
            with self.assertRaises(T.Timeout):
                c.consumer(name, timeout=0)
            self.assertEqual(c._out_sent, c._out_queued)          # the ATTACH was written
            self.assertEqual(len(c._abandoned), 1)
        finally:
            os.kill(pid, signal.SIGCONT)
        c.ping(timeout=5)                                       # ATTACHED came: DETACH queued
        c.ping(timeout=5)                                       # ... and answered, in order
        self.assertEqual(c._atts, {})
        self.assertEqual(c._abandoned, set())
        with c.consumer(name) as cons:                          # not Busy: nothing left attached
            rc, line = H.finish(H.peer("produce", name, 300))
            self.assertEqual(rc, 0, line)
            got = []
            while len(got) < 300:
                got.extend(H.check_record(r) for r in cons.recv_many(timeout=10))
            self.assertEqual(got, list(range(1, 301)))


class ZeroTimeout(PeerTest):
    """timeout=0 polls: one non-blocking I/O round before Timeout (regression: no
    I/O at all was done once the deadline had passed)."""

    def test_send_timeout_zero_polling_delivers_every_record(self):
        name = self.chan("send0")
        H.create_channel(name, capacity=1 << 20, max_record=4096)
        c = self.client()
        p = c.producer(name, window=64)                         # ACKs must be read too
        c2 = self.client()
        cons = c2.consumer(name)
        n = 3000
        deadline = time.monotonic() + 15
        seq = 0
        while seq < n:
            self.assertLess(time.monotonic(), deadline, "send(timeout=0) stuck at %d of %d" % (seq, n))
            try:
                seq = p.send(b"%08d" % (seq + 1) + b"p" * 92, timeout=0)
            except T.Timeout as e:
                self.assertIsNone(e.seq)
        self.assertEqual(p.sent, n)
        got = []
        while len(got) < n:
            got.extend(int(r.data[:8]) for r in cons.recv_many(timeout=10))
        self.assertEqual(got, list(range(1, n + 1)))
        self.assertEqual(p.flush(timeout=10), n)

    def test_recv_timeout_zero_polling_receives(self):
        name = self.chan("recv0")
        H.create_channel(name)
        c = self.client()
        cons = c.consumer(name)
        with T.Client(self.taktd.socket) as pc, pc.producer(name) as p:
            for i in range(10):
                p.send(b"r%d" % i)
            self.assertEqual(p.flush(timeout=10), 10)
        got = []
        deadline = time.monotonic() + 10
        while len(got) < 10:
            self.assertLess(time.monotonic(), deadline, "recv(timeout=0) got %d of 10" % len(got))
            try:
                got.append(bytes(cons.recv(timeout=0).data))
            except T.Timeout:
                pass
        self.assertEqual(got, [b"r%d" % i for i in range(10)])

    def test_client_close_after_flush_timeout_reports_records(self):
        """Client.close() whose flush runs out of time (full ring, no consumer) closes
        and raises Timeout naming the producer and its committed count (regression:
        it discarded records send() had returned for, silently)."""
        name = self.chan("cclose")
        H.create_channel(name, capacity=65536, max_record=4096)
        c = T.Client(self.taktd.socket, timeout=5)
        self.addCleanup(c.close)
        p = c.producer(name)
        for i in range(100):                                    # 64 fit in the ring
            p.send(b"%08d" % (i + 1) + b"c" * 992, timeout=5)
        self.assertEqual(p.sent, 100)
        with self.assertRaises(T.Timeout) as cm:
            c.close(timeout=0.3)
        self.assertTrue(c.closed)
        self.assertIn(name, str(cm.exception))
        self.assertLess(cm.exception.committed[name], 100)
        self.assertEqual(cm.exception.committed[name], p.committed)
        c.close()                                               # closed: a no-op
        with self.assertRaises(T.Closed):
            p.send(b"after close")


class ServerErrors(PeerTest):
    def test_fatal_error_not_masked_by_broken_pipe(self):
        """taktd refuses a record (fatal MSGSIZE) and closes while the client is still
        writing: the client reports MessageTooLarge, not ConnectionLost "killed or
        restarted?" (regression: EPIPE on the write won over the unread ERROR)."""
        name = self.chan("fatalw")
        H.create_channel(name, capacity=1 << 22, max_record=1000)
        for _ in range(3):
            c = T.Client(self.taktd.socket)
            try:
                p = c.producer(name)
                p._att.info.max_record = 5000                 # lie to the client
                p.send(b"x" * 3000)
                with self.assertRaises(T.MessageTooLarge) as cm:
                    for _ in range(200000):
                        p.send(b"y" * 200)
                self.assertTrue(cm.exception.fatal)
                with self.assertRaises(T.MessageTooLarge):
                    c.ping()
            finally:
                c.close()

    def test_refused_attach_names_the_channel(self):
        """An ATTACH refused with MSGSIZE (the image does not fit the client's
        max_frame): the exception's text names the channel (taktd's does not)."""
        name = self.chan("nofit")
        H.create_state(name, 8192)
        c = self.client(max_frame=4096)
        with self.assertRaises(T.MessageTooLarge) as cm:
            c.state_reader(name)
        self.assertEqual(cm.exception.channel, name)
        self.assertIn(name, str(cm.exception))
        c.ping()


class StateContracts(PeerTest):
    def test_write_bytes_like_image(self):
        """StateWriter.write of array('I') publishes its bytes; the image size check
        counts bytes (regression: len() went in the header)."""
        name = self.chan("sblike")
        c = self.client()
        w = c.state_writer(name, create=True, image_size=64)
        r = c.state_reader(name)
        a = array.array("I", [1, 2, 3])
        self.assertEqual(w.write(a, wait=True, timeout=10), 1)
        self.assertEqual(r.get().data, a.tobytes())
        with self.assertRaises(T.ImageTooLarge) as cm:
            w.write(array.array("Q", range(9)))                 # 72 bytes, len() 9
        self.assertEqual(cm.exception.size, 72)
        w.write(memoryview(bytes(range(16))).cast("I"), wait=True, timeout=10)
        self.assertEqual(r.get().data, bytes(range(16)))

    def _iterate_then_close(self, close):
        name = self.chan("swake")
        H.create_state(name, 64)
        c = self.client(timeout=5)
        reader = c.state_reader(name)
        sub = reader.subscribe(0.001)
        done = threading.Event()

        def iterate():
            for _ in sub:
                pass
            done.set()

        t = threading.Thread(target=iterate, daemon=True)
        t.start()
        wait_until(lambda: c._io_owner, what="the iterating thread to own the I/O")
        close(reader, sub)
        self.assertTrue(done.wait(10), "iteration did not end after close()")
        t.join(5)
        self.assertTrue(sub.closed)
        c.ping(timeout=5)

    def test_reader_close_ends_subscription_iteration(self):
        """`for img in sub` in a thread blocked doing the I/O ends when another thread
        closes the reader (regression: it stayed blocked in poll)."""
        self._iterate_then_close(lambda reader, sub: reader.close())

    def test_unsubscribe_ends_subscription_iteration(self):
        self._iterate_then_close(lambda reader, sub: sub.close())


class FakeServer(unittest.TestCase):
    def fake(self, handler):
        f = FakeTaktd(handler)
        self.addCleanup(f.close)
        return f

    def test_late_attached_is_detached(self):
        """An ATTACH written but answered after its timeout: the client DETACHes the
        attachment taktd made (regression: it was left attached, taking records)."""
        def handler(fake, conn, ftype, chan, arg, body):
            if ftype == 0x0003:                                 # ATTACH: answer late
                fake.gate.wait(30)
                conn.sendall(attached(arg, 7, 2) + frame(0x0010, 7, 1, b"lost"))
            elif ftype == 0x0020:                               # PING -> PONG
                conn.sendall(frame(0x0021, 0, arg, body))
            elif ftype == 0x0005:                               # DETACH -> DETACHED
                conn.sendall(frame(0x0006, chan, arg, struct.pack("<QQ", 1, 0)))

        f = self.fake(handler)
        c = T.Client(f.path, timeout=5)
        self.addCleanup(c.close, 2.0)
        with self.assertRaises(T.Timeout):
            c.consumer("late", timeout=0.2)
        wait_until(lambda: len(f.frames_of(0x0003)) == 1, what="the ATTACH")   # it was written
        f.gate.set()
        c.ping()
        c.ping()                                                # after the DETACH, in order
        self.assertEqual([(ft, ch) for ft, ch, _, _ in f.frames_of(0x0005)], [(0x0005, 7)])
        self.assertEqual(c._atts, {})

    def test_malformed_data_batch(self):
        """A DATA_BATCH whose record claims more bytes than the frame holds ends the
        connection; the record before it is still returned (regression: a short
        record was delivered and the stream went on)."""
        def handler(fake, conn, ftype, chan, arg, body):
            if ftype == 0x0003:
                conn.sendall(attached(arg, 9, 2) + frame(0x0010, 9, 1, b"first")
                             + frame(0x0011, 9, 1, struct.pack("<II", 100000, 0) + b"short")
                             + frame(0x0010, 9, 1, b"second"))

        f = self.fake(handler)
        c = T.Client(f.path, timeout=5)
        self.addCleanup(c.close, 2.0)
        cons = c.consumer("x")
        self.assertEqual(cons.recv(timeout=5).data, b"first")
        with self.assertRaises(T.ConnectionLost) as cm:
            cons.recv(timeout=5)
        self.assertIn("malformed DATA_BATCH", str(cm.exception))

    def test_short_bodies_end_the_connection(self):
        """A frame whose body is too short for its type (ACK, ATTACHED, ERROR, DETACHED)
        ends the connection with ConnectionLost carrying the committed map
        (regression: struct.error reached the caller and the stream went on)."""
        def answer(short):
            def handler(fake, conn, ftype, chan, arg, body):
                if ftype == 0x0003:                             # ATTACH
                    conn.sendall(frame(0x0004, 4, arg, b"\0" * 31) if short == 0x0004
                                 else frame(0x0030, 0, arg, b"\0" * 4) if short == 0x0030
                                 else attached(arg, 4, 1))
                elif ftype == 0x0010:                           # DATA -> ACK 1, short ACK
                    conn.sendall(frame(0x0012, 4, 0, struct.pack("<Q", 1)) + frame(0x0012, 4, 0, b"\0" * 4))
                elif ftype == 0x0005:                           # DETACH -> short DETACHED
                    conn.sendall(frame(0x0006, chan, arg, b"\0" * 8))
            return handler

        for short, what in ((0x0004, "ATTACHED"), (0x0030, "ERROR"), (0x0012, "ACK"), (0x0006, "DETACHED")):
            with self.subTest(what):
                f = self.fake(answer(short))
                c = T.Client(f.path, timeout=5)
                self.addCleanup(c.close, 2.0)
                with self.assertRaises(T.ConnectionLost) as cm:
                    p = c.producer("out")
                    if short == 0x0012:
                        p.send(b"one")
                        p.flush(timeout=5)
                    else:
                        p.close()
                    c.ping()
                self.assertIn("malformed frame", str(cm.exception))
                self.assertEqual(cm.exception.committed, {0x0012: {"out": 1}, 0x0006: {"out": 0}}.get(short, {}))
                with self.assertRaises(T.ConnectionLost):
                    c.ping()

    def test_interrupt_while_attach_is_refused(self):
        """An exception that interrupts an ATTACH (KeyboardInterrupt, ...) after its
        refusal arrived is the one raised (regression: the ServerError replaced it)."""
        class Interrupt(BaseException):
            pass

        def handler(fake, conn, ftype, chan, arg, body):
            if ftype == 0x0003:                                 # ATTACH -> NOENT (non-fatal)
                conn.sendall(frame(0x0030, 0, arg, struct.pack("<II", 22, 2) + b"no such channel"))
            elif ftype == 0x0020:
                conn.sendall(frame(0x0021, 0, arg, body))

        f = self.fake(handler)
        c = T.Client(f.path, timeout=5)
        self.addCleanup(c.close, 2.0)
        read = c._read

        def read_then_interrupt():
            n = read()
            if n:
                raise Interrupt()
            return n
        c._read = read_then_interrupt
        try:
            with self.assertRaises(Interrupt):
                c.consumer("missing")
        finally:
            del c._read
        self.assertEqual(c._answers, {})
        c.ping()

    def test_timed_out_close_writes_detach(self):
        """Producer.close() whose flush times out writes its DETACH at once, not at
        the next call that does I/O (regression: it only queued it)."""
        def handler(fake, conn, ftype, chan, arg, body):
            if ftype == 0x0003:
                conn.sendall(attached(arg, 5, 1))               # DATA is never acknowledged

        f = self.fake(handler)
        c = T.Client(f.path, timeout=5)
        self.addCleanup(c.close, 0.5)
        p = c.producer("slow")
        p.send(b"one")
        with self.assertRaises(T.Timeout):
            p.close(timeout=0.2)
        wait_until(lambda: f.frames_of(0x0005), what="the DETACH")
        self.assertEqual([fr[1] for fr in f.frames_of(0x0005)], [5])

    def test_impossible_frame_length_reports_committed(self):
        """A frame length below the header: ConnectionLost carries the committed map."""
        def handler(fake, conn, ftype, chan, arg, body):
            if ftype == 0x0003:
                conn.sendall(attached(arg, 4, 1))
            elif ftype == 0x0010:                               # DATA -> ACK 1, then garbage
                conn.sendall(frame(0x0012, 4, 0, struct.pack("<Q", 1)) + HDR.pack(8, 0x0010, 0, 4, 0))

        f = self.fake(handler)
        c = T.Client(f.path, timeout=5)
        self.addCleanup(c.close, 2.0)
        p = c.producer("out")
        p.send(b"one")
        with self.assertRaises(T.ConnectionLost) as cm:
            p.flush(timeout=5)
            c.ping()
        self.assertIn("impossible frame length 8", str(cm.exception))
        self.assertEqual(cm.exception.committed, {"out": 1})


if __name__ == "__main__":
    unittest.main()
