# SPDX-License-Identifier: MIT
"""Tests of the Python taktd client (tools/python) against a real taktd and a C peer."""

import os
import shutil
import socket
import tempfile
import threading
import time
import unittest

import harness as H
import takt_peer as T

N = int(os.environ.get("PEERS_RECORDS", "100000"))


class PeerTest(unittest.TestCase):
    def setUp(self):
        self.taktd = H.Taktd()
        self.addCleanup(self.taktd.cleanup)
        self.channels = []
        self.addCleanup(self._rm_channels)

    def _rm_channels(self):
        for ch in self.channels:
            H.remove_channel(ch)

    def chan(self, tag):
        name = H.unique(tag)
        self.channels.append(name)
        return name

    def client(self, **kw):
        c = T.Client(self.taktd.socket, **kw)
        self.addCleanup(c.close, 2.0)
        return c


class Streaming(PeerTest):
    def test_python_to_c(self):
        """>= 100 000 records Python -> taktd -> C, sizes 16..200, checksummed."""
        name = self.chan("py2c")
        c = self.client()
        p = c.producer(name, create=True, capacity=1 << 20, max_record=4096, mode=0o666)
        self.assertTrue(p.info.created)
        cons = H.peer("consume", name, N, "--ready", wait_ready=True)
        self.addCleanup(lambda: cons.poll() is None and cons.kill())
        recs = [H.make_record(i) for i in range(1, N + 1)]
        for i in range(1000):                       # single DATA frames
            self.assertEqual(p.send(recs[i][0], type=recs[i][1]), i + 1)
        p.send(*recs[1000], wait=True)              # waits for its ACK
        self.assertGreaterEqual(p.committed, 1001)
        for i in range(1001, N, 7000):              # DATA_BATCH frames
            p.send_batch(recs[i:i + 7000])
        self.assertEqual(p.flush(timeout=60), N)
        rc, line = H.finish(cons)
        self.assertEqual(rc, 0, line)
        self.assertIn("consume ok records=%d errors=0" % N, line)
        self.assertEqual(p.close(), N)

    def test_c_to_python(self):
        """>= 100 000 records C -> taktd -> Python, every one verified, in order."""
        name = self.chan("c2py")
        H.create_channel(name)
        c = self.client()
        with c.consumer(name, queue_limit=64 << 20) as cons:
            self.assertEqual(cons.info.max_record, 4096)
            prod = H.peer("produce", name, N)
            last = 0
            while last < N:
                for rec in cons.recv_many(timeout=30):
                    seq = H.check_record(rec)
                    self.assertEqual(seq, last + 1)
                    self.assertEqual(rec.index, seq)
                    self.assertEqual(rec.channel, name)
                    last = seq
            rc, line = H.finish(prod)
            self.assertEqual(rc, 0, line)
            with self.assertRaises(T.Timeout):
                cons.recv(timeout=0.2)
            self.assertEqual(cons.dropped, 0)
        self.assertTrue(cons.closed)

    def test_records_already_in_the_ring(self):
        """The first consumer gets what the ring held before it attached: those records
        follow ATTACHED at once (regression: they were dropped by the client)."""
        name = self.chan("held")
        H.create_channel(name)
        rc, line = H.finish(H.peer("produce", name, 500))
        self.assertEqual(rc, 0, line)
        c = self.client()
        with c.consumer(name) as cons:
            got = []
            while len(got) < 500:
                got.extend(H.check_record(r) for r in cons.recv_many(timeout=10))
            self.assertEqual(got, list(range(1, 501)))

    def test_iteration_and_context_managers(self):
        name = self.chan("iter")
        with T.Client(self.taktd.socket) as c:
            with c.producer(name, create=True, capacity=1 << 16, mode=0o600) as p, c.consumer(name) as cons:
                for i in range(10):
                    p.send(b"rec %d" % i, type=i)
                got = []
                for rec in cons:
                    got.append((rec.type, rec.data))
                    if len(got) == 10:
                        break
                self.assertEqual(got, [(i, b"rec %d" % i) for i in range(10)])
        self.assertTrue(c.closed)
        with self.assertRaises(T.Closed):
            c.ping()

    def test_threads_share_a_connection(self):
        """A producer thread and a consumer thread on one Client, through a C echo."""
        a, b = self.chan("tha"), self.chan("thb")
        H.create_channel(a)
        H.create_channel(b)
        count = 20000
        echo = H.peer("echo", a, b, count, wait_ready=True)
        self.addCleanup(lambda: echo.poll() is None and echo.kill())
        c = self.client()
        cons = c.consumer(b, queue_limit=64 << 20)
        p = c.producer(a)
        got = []
        err = []

        def consume():
            try:
                while len(got) < count:
                    got.extend(H.check_record(r) for r in cons.recv_many(timeout=30))
            except Exception as e:  # reported below
                err.append(e)

        t = threading.Thread(target=consume)
        t.start()
        recs = [H.make_record(i) for i in range(1, count + 1)]
        for i in range(0, count, 500):
            p.send_batch(recs[i:i + 500])
            time.sleep(0.001)
        p.flush(30)
        t.join(60)
        self.assertFalse(err, err)
        self.assertEqual(got, list(range(1, count + 1)))
        self.assertEqual(H.finish(echo)[0], 0)


class Errors(PeerTest):
    def test_taktd_not_running(self):
        d = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, d, True)
        path = os.path.join(d, "none.sock")
        with self.assertRaises(T.NotRunning) as cm:
            T.Client(path)
        self.assertIn("not running", str(cm.exception))
        self.assertIn(path, str(cm.exception))
        # a stale socket file nobody listens on
        s = socket.socket(socket.AF_UNIX)
        s.bind(path)
        s.close()
        with self.assertRaises(T.NotRunning):
            T.Client(path)
        t0 = time.monotonic()
        with self.assertRaises(T.NotRunning):
            T.Client(path, connect_timeout=0.3)
        self.assertGreaterEqual(time.monotonic() - t0, 0.25)
        # the default path follows XDG_RUNTIME_DIR
        old = os.environ.get("XDG_RUNTIME_DIR")
        os.environ["XDG_RUNTIME_DIR"] = d
        try:
            self.assertEqual(T.default_socket_path(), os.path.join(d, "takt", "taktd.sock"))
        finally:
            if old is None:
                del os.environ["XDG_RUNTIME_DIR"]
            else:
                os.environ["XDG_RUNTIME_DIR"] = old

    def test_unknown_channel(self):
        c = self.client()
        name = H.unique("missing")
        with self.assertRaises(T.NoSuchChannel) as cm:
            c.producer(name)
        e = cm.exception
        self.assertEqual((e.code, e.name, e.errno, e.fatal, e.channel), (22, "NOENT", 2, False, name))
        with self.assertRaises(T.NoSuchChannel):
            c.consumer(name)
        with self.assertRaises(T.InvalidArgument):
            c.producer("bad/name")
        c.ping()  # the connection is still usable

    def test_oversized_record(self):
        name = self.chan("big")
        c = self.client()
        p = c.producer(name, create=True, capacity=1 << 16, max_record=1000)
        self.assertEqual(p.max_record, 1000)
        p.send(b"x" * 1000, wait=True, timeout=10)
        with self.assertRaises(T.RecordTooLarge) as cm:
            p.send(b"x" * 1001)
        self.assertEqual((cm.exception.size, cm.exception.max_record), (1001, 1000))
        self.assertIsInstance(cm.exception, T.MessageTooLarge)
        with self.assertRaises(T.RecordTooLarge):
            p.send_batch([b"a", b"b" * 2000, b"c"])
        self.assertEqual(p.sent, 1)            # nothing of the refused batch went out
        p.send(b"y", wait=True, timeout=10)   # still usable
        self.assertEqual(p.committed, 2)
        with self.assertRaises(T.InvalidArgument):
            p.send(b"z", type=0xFFFF0000)

    def test_oversized_record_server_side(self):
        """Bypass the client's check: taktd answers with a fatal MSGSIZE after ACKing the rest."""
        name = self.chan("big2")
        c = self.client()
        p = c.producer(name, create=True, capacity=1 << 16, max_record=1000)
        p.send(b"ok")
        p._att.info.max_record = 5000          # lie to the client
        p.send(b"x" * 3000)
        with self.assertRaises(T.MessageTooLarge) as cm:
            p.flush(timeout=10)
        self.assertTrue(cm.exception.fatal)
        self.assertEqual(cm.exception.code, 26)
        self.assertEqual(p.committed, 1)
        with self.assertRaises(T.MessageTooLarge):
            c.ping()

    def test_busy_consumer(self):
        name = self.chan("busy")
        H.create_channel(name)
        holder = H.peer("consume", name, 1, "--ready", "--idle-ms", "20000", wait_ready=True)
        self.addCleanup(lambda: holder.poll() is None and holder.kill())
        c = self.client()
        with self.assertRaises(T.Busy):
            c.consumer(name)
        holder.kill()
        holder.wait()

    def test_taktd_killed_and_restarted(self):
        """kill -9 mid-stream: ConnectionLost with the committed count; after the
        restart, a new client resends from there; C sees every record (dups allowed)."""
        name = self.chan("crash")
        total = N
        H.create_channel(name, capacity=1 << 22)
        cons = H.peer("consume", name, total, "--dups", "--ready", "--idle-ms", "30000", wait_ready=True)
        self.addCleanup(lambda: cons.poll() is None and cons.kill())
        recs = [H.make_record(i) for i in range(1, total + 1)]
        c = T.Client(self.taktd.socket)
        p = c.producer(name)
        sent = 0
        lost = None
        try:
            while sent < total:
                p.send_batch(recs[sent:sent + 2000])
                sent += 2000
                if sent == 40000:
                    p.flush(30)
                    self.taktd.kill()
        except T.ConnectionLost as e:
            lost = e
        self.assertIsNotNone(lost, "no ConnectionLost after kill -9")
        self.assertIn("without BYE", str(lost))
        committed = lost.committed[name]
        self.assertGreaterEqual(committed, 40000)
        self.assertEqual(p.committed, committed)
        with self.assertRaises(T.ConnectionLost):
            p.send(b"more")
        c.close()
        # Right after kill -9 the dead taktd's listening socket may still accept
        # for a moment (io_uring tears down asynchronously): the connect then
        # fails on its HELLO with ConnectionLost instead of NotRunning.
        with self.assertRaises((T.NotRunning, T.ConnectionLost)):
            T.Client(self.taktd.socket)
        threading.Timer(0.3, self.taktd.start).start()
        with T.Client(self.taktd.socket, connect_timeout=15) as c2:
            p2 = c2.producer(name)
            for i in range(committed, total, 5000):
                p2.send_batch(recs[i:i + 5000])
            self.assertEqual(p2.flush(60), total - committed)
        rc, line = H.finish(cons)
        self.assertEqual(rc, 0, line)

    def test_consumer_sees_shutdown(self):
        """SIGTERM: taktd says BYE; records already received are still returned, then ConnectionLost."""
        name = self.chan("term")
        H.create_channel(name)
        c = self.client()
        cons = c.consumer(name)
        H.finish(H.peer("produce", name, 10))
        first = cons.recv(timeout=10)
        self.assertEqual(H.check_record(first), 1)
        time.sleep(0.2)
        self.assertEqual(self.taktd.stop(), 0)
        got = 1
        with self.assertRaises(T.ConnectionLost) as cm:
            while True:
                H.check_record(cons.recv(timeout=10))
                got += 1
        self.assertEqual(got, 10)
        self.assertIn("BYE", str(cm.exception))


@unittest.skipUnless(hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("setpriv"),
                     "needs root and setpriv: taktd must run as another uid than the client")
class Permissions(unittest.TestCase):
    """taktd admits its own uid for everything, so it runs as nobody (65534) here
    and the test (root) is a foreign uid the policy file names."""

    def start(self, policy):
        d = H.Taktd(policy=policy, user=65534)
        self.addCleanup(d.cleanup)
        return d

    def test_denied_channel(self):
        ok, denied = H.unique("ok"), H.unique("deny")
        d = self.start("allow uid:%d pp-*-ok produce,consume,create\n" % os.getuid())
        for ch in (ok, denied):
            self.addCleanup(H.remove_channel, ch)
        with T.Client(d.socket) as c:
            with self.assertRaises(T.Denied) as cm:
                c.producer(denied, create=True)
            self.assertEqual((cm.exception.code, cm.exception.fatal), (7, False))
            self.assertIsInstance(cm.exception, PermissionError)
            with self.assertRaises(T.Denied):
                c.consumer(denied)
            with c.producer(ok, create=True, mode=0o666) as p:   # still usable, allowed channel
                p.send(b"fine", wait=True, timeout=10)

    def test_denied_uid(self):
        d = self.start("allow uid:12345 * all\n")
        with self.assertRaises(T.Denied) as cm:
            T.Client(d.socket)
        self.assertTrue(cm.exception.fatal)

    def test_channel_mode_refuses_taktd(self):
        name = H.unique("mode")
        self.addCleanup(H.remove_channel, name)
        H.create_channel(name, capacity=1 << 16, max_record=1024, mode="600")
        d = self.start("allow uid:%d * all\n" % os.getuid())
        with T.Client(d.socket) as c:
            with self.assertRaises(T.AccessDenied) as cm:
                c.producer(name)
            self.assertEqual(cm.exception.code, 23)


if __name__ == "__main__":
    unittest.main()
