# SPDX-License-Identifier: MIT
"""State channels through taktd (PROTOCOL.md §12) from the Python client, against a
real taktd and a native state writer / reader (state_c.c)."""

import errno
import os
import shutil
import socket
import struct
import tempfile
import threading
import time
import unittest

import harness as H
import takt_peer as T
from test_peers import PeerTest


def collect_until(sub, last_seq, timeout=60.0):
    """Subscription updates until the one carrying image last_seq (bounded)."""
    deadline = time.monotonic() + timeout
    got = []
    while not got or H.check_image(got[-1].data) < last_seq:
        rem = deadline - time.monotonic()
        if rem <= 0:
            raise AssertionError("image %d never came; last update %r" % (last_seq, got[-1:]))
        got.extend(sub.recv_many(timeout=rem))
    return got


class StateChannels(PeerTest):
    def test_server_announces_state(self):
        c = self.client()
        self.assertTrue(c.server.state)
        self.assertEqual(c.server.features & 1, 1)

    def test_get_newest_image_from_c_writer(self):
        """STATE_GET returns the newest image a native writer published, intact;
        generation 0 before anything was published; a native reader is not disturbed."""
        name = self.chan("sget")
        H.create_state(name, 256)
        c = self.client()
        r = c.state_reader(name)
        self.assertEqual((r.image_size, r.info.role, r.info.created), (256, 3, False))
        empty = r.get()
        self.assertEqual((empty.generation, empty.data, empty.written_ns, empty.update), (0, b"", 0, False))

        rc, line = H.finish(H.state_peer("write", name, 500, "--period-us", "0"))
        self.assertEqual(rc, 0, line)
        img = r.get(timeout=10)
        self.assertEqual((img.generation, len(img.data), img.channel), (500, 256, name))
        self.assertEqual(H.check_image(img.data), 500)
        self.assertLessEqual(img.written_ns, time.monotonic_ns())
        self.assertGreater(img.age_ns, 0)

        # While a native writer publishes (and a native reader reads): generations
        # never go back, every image is intact and is the one of its generation.
        count = 4000
        reader = H.state_peer("read", name, count, "--after-gen", 500, "--ready", wait_ready=True)
        self.addCleanup(lambda: reader.poll() is None and reader.kill())
        writer = H.state_peer("write", name, count, "--period-us", "200")
        self.addCleanup(lambda: writer.poll() is None and writer.kill())
        prev, seen = 500, set()
        for _ in range(300):                   # sample while it writes (about 1 s of images)
            img = r.get(timeout=10)
            self.assertGreaterEqual(img.generation, prev)
            seq = H.check_image(img.data)      # the first writer's image 500, then the second's
            self.assertEqual(seq if img.generation == 500 else seq + 500, img.generation)
            prev = img.generation
            seen.add(img.generation)
        self.assertEqual(H.finish(writer)[0], 0)
        rc, line = H.finish(reader)
        self.assertEqual(rc, 0, line)          # the native reader kept its role and saw the last image
        self.assertIn("state_c: read ok", line)
        last = r.get(timeout=10)
        self.assertEqual((last.generation, H.check_image(last.data)), (500 + count, count))
        self.assertGreater(len(seen), 1)
        self.assertEqual(r.close(), 0)         # no subscription: 0 updates sent
        self.assertTrue(r.closed)
        with self.assertRaises(T.Closed):
            r.get()

    def test_subscription_sees_increasing_generations(self):
        """Updates of a native writer's images: generations only increase, images intact,
        the last image always arrives; unsubscribing reports the updates sent."""
        name = self.chan("ssub")
        H.create_state(name, 256)
        count = 3000
        c = self.client()
        with c.state_reader(name) as r:
            sub = r.subscribe(0.001)
            self.assertEqual(sub.interval, 0.001)
            self.assertIs(r.subscription, sub)
            with self.assertRaises(T.Timeout):     # nothing published yet: no update
                sub.recv(timeout=0.1)
            writer = H.state_peer("write", name, count, "--period-us", "200")
            self.addCleanup(lambda: writer.poll() is None and writer.kill())
            got = collect_until(sub, count)
            self.assertEqual(H.finish(writer)[0], 0)
            gens = [u.generation for u in got]
            self.assertEqual(gens, sorted(set(gens)), "generations must strictly increase")
            for u in got:
                self.assertTrue(u.update)
                self.assertEqual(len(u.data), 256)
                self.assertEqual(H.check_image(u.data), u.generation)
            written = [u.written_ns for u in got]
            self.assertEqual(written, sorted(written))
            self.assertGreater(len(got), 1)
            self.assertEqual(sub.updates, len(got))
            # unsubscribing: taktd reports exactly the updates we received; none follows
            self.assertEqual(sub.close(), len(got))
            self.assertTrue(sub.closed)
            self.assertIsNone(r.subscription)
            with self.assertRaises(T.Closed):
                sub.recv(timeout=1)
            self.assertEqual(list(sub), [])
            img = r.get()                           # the reader itself stays usable
            self.assertEqual(img.generation, count)

    def test_subscription_rate_limit_and_latest(self):
        """taktd sends at most one update per interval; subscribing again changes it."""
        name = self.chan("srate")
        H.create_state(name, 128)
        c = self.client()
        sub = c.subscribe_state(name, interval=0.05)
        self.addCleanup(sub.close)
        self.assertEqual(sub.interval, 0.05)
        count = 3000
        t0 = time.monotonic()
        writer = H.state_peer("write", name, count, "--period-us", "100")
        self.addCleanup(lambda: writer.poll() is None and writer.kill())
        got = collect_until(sub, count)
        elapsed = time.monotonic() - t0
        self.assertEqual(H.finish(writer)[0], 0)
        self.assertLessEqual(len(got), elapsed / 0.05 + 2, "more than one update per interval")
        self.assertEqual(H.check_image(got[-1].data), count)
        # a second SUBSCRIBE on the same attachment changes the interval (raised to 1 ms)
        self.assertIs(sub.reader.subscribe(0), sub)
        self.assertEqual(sub.interval, 0.001)
        # latest=True skips older updates: three images, the newest one returned
        with c.state_writer(name) as w:
            for i in range(1, 4):
                w.write(H.make_image(count + i, 128), wait=True, timeout=10)
                self.assertEqual(sub.wait(i, timeout=10), i)  # its update arrived, not taken
            self.assertEqual(sub.pending, 3)
            newest = sub.recv(timeout=10, latest=True)
            self.assertEqual(H.check_image(newest.data), count + 3)
            self.assertEqual(sub.pending, 0)
        sub.close()
        self.assertTrue(sub.reader.closed)          # subscribe_state owns its reader

    def test_python_writes_c_reads(self):
        """Images written from Python (various lengths) are read intact by a native reader;
        a native writer is refused while taktd writes the channel."""
        name = self.chan("swr")
        c = self.client()
        w = c.state_writer(name, create=True, image_size=512, mode=0o666)
        self.assertTrue(w.info.created)
        self.assertEqual(w.image_size, 512)
        count = 2000
        reader = H.state_peer("read", name, count, "--ready", wait_ready=True)
        self.addCleanup(lambda: reader.poll() is None and reader.kill())
        images = [H.make_image(i, 16 + (i * 37) % 497) for i in range(1, count + 1)]
        for i, im in enumerate(images[:1000], 1):
            self.assertEqual(w.write(im), i)
        self.assertEqual(w.write(images[1000], wait=True, timeout=10), 1001)
        for im in images[1001:]:
            w.write(im)
        self.assertEqual(w.flush(timeout=30), count)
        rc, line = H.finish(reader)
        self.assertEqual(rc, 0, line)
        self.assertIn("state_c: read ok", line)
        self.assertIn("last=%d generation=%d len=%d" % (count, count, len(images[-1])), line)
        # taktd holds the writer role: a native writer is refused
        rc, line = H.finish(H.state_peer("write", name, 1))
        self.assertEqual(rc, 1)
        self.assertIn("write failed", line)
        with c.state_reader(name) as r:
            img = r.get()
            self.assertEqual((img.generation, img.data), (count, images[-1]))
        self.assertEqual(w.close(), count)           # DETACHED: images published
        # taktd released the writer role: a native writer may write again
        rc, line = H.finish(H.state_peer("write", name, 5, "--len", "64"))
        self.assertEqual(rc, 0, line)


class StateErrors(PeerTest):
    def test_unknown_channel_and_wrong_kind(self):
        c = self.client()
        missing = H.unique("nostate")
        with self.assertRaises(T.NoSuchChannel) as cm:
            c.state_reader(missing)
        e = cm.exception
        self.assertEqual((e.code, e.name, e.errno, e.fatal, e.channel), (22, "NOENT", 2, False, missing))
        with self.assertRaises(T.NoSuchChannel):
            c.state_writer(missing)
        with self.assertRaises(T.NoSuchChannel):
            c.subscribe_state(missing)
        with self.assertRaises(T.InvalidArgument):
            c.state_reader("bad/name")
        with self.assertRaises(ValueError):
            c.state_writer(self.chan("nosize"), create=True)     # needs image_size
        queue, state = self.chan("kq"), self.chan("ks")
        H.create_channel(queue)
        H.create_state(state, 64)
        for attach in (c.state_reader, c.state_writer):
            with self.assertRaises(T.WrongKind) as cm:
                attach(queue)
            e = cm.exception
            self.assertEqual((e.code, e.name, e.errno, e.fatal), (32, "KIND", errno.EPROTOTYPE, False))
            self.assertIsInstance(e, TypeError)
        for attach in (c.producer, c.consumer):
            with self.assertRaises(T.WrongKind):
                attach(state)
        c.ping()                                               # all non-fatal
        with c.state_reader(state) as r:
            self.assertEqual(r.get().generation, 0)

    def test_oversized_image(self):
        name = self.chan("sbig")
        c = self.client()
        w = c.state_writer(name, create=True, image_size=100)
        w.write(b"x" * 100, wait=True, timeout=10)
        with self.assertRaises(T.ImageTooLarge) as cm:
            w.write(b"x" * 101)
        e = cm.exception
        self.assertEqual((e.size, e.image_size, e.code), (101, 100, 26))
        self.assertIsInstance(e, T.MessageTooLarge)
        self.assertEqual(w.sent, 1)                             # nothing went out
        w.write(b"", wait=True, timeout=10)                     # 0 bytes is a valid image
        self.assertEqual(w.committed, 2)
        with c.state_reader(name) as r:
            img = r.get()
            self.assertEqual((img.generation, img.data), (2, b""))
        # an image the client cannot receive: ATTACH fails (non-fatal MSGSIZE)
        big = self.chan("sbig2")
        H.create_state(big, 8192)
        small = self.client(max_frame=4096)
        with self.assertRaises(T.MessageTooLarge) as cm:
            small.state_reader(big)
        self.assertFalse(cm.exception.fatal)
        small.ping()

    def test_oversized_image_server_side(self):
        """Bypass the client's check: taktd closes the connection with a fatal MSGSIZE
        after acknowledging the images before it."""
        name = self.chan("sbig3")
        c = self.client()
        w = c.state_writer(name, create=True, image_size=100)
        w.write(b"ok")
        w._att.info.max_record = 1000                          # lie to the client
        w.write(b"x" * 500)
        with self.assertRaises(T.MessageTooLarge) as cm:
            w.flush(timeout=10)
        self.assertTrue(cm.exception.fatal)
        self.assertEqual(w.committed, 1)
        with self.assertRaises(T.MessageTooLarge):
            c.ping()

    def test_busy_native_writer(self):
        name = self.chan("sbusy")
        H.create_state(name, 64)
        holder = H.state_peer("write", name, 1, "--len", "64", "--ready", "--hold-ms", "20000",
                              wait_ready=True)
        self.addCleanup(lambda: holder.poll() is None and holder.kill())
        c = self.client()
        with self.assertRaises(T.Busy) as cm:
            c.state_writer(name)
        self.assertEqual((cm.exception.code, cm.exception.fatal), (29, False))
        with c.state_reader(name) as r:                        # reading is fine meanwhile
            deadline = time.monotonic() + 10
            img = r.get()
            while img.generation == 0 and time.monotonic() < deadline:
                img = r.get()
            self.assertEqual(H.check_image(img.data), 1)
        holder.kill()
        holder.wait()
        with c.state_writer(name) as w:                         # a dead writer's role is free
            w.write(b"z" * 64, wait=True, timeout=10)


class FakeTaktd:
    """A socket that speaks just enough of the protocol to say WELCOME with the
    given features, and records every frame type it receives after HELLO."""

    def __init__(self, features):
        self.dir = tempfile.mkdtemp(prefix="takt-fake-")
        self.path = os.path.join(self.dir, "fake.sock")
        self.features = features
        self.received = []
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(self.path)
        self.sock.listen(1)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _frames(self, conn):
        buf = b""
        while True:
            while len(buf) >= 16 and len(buf) >= struct.unpack_from("<I", buf)[0]:
                n, ftype, _, _, arg = struct.unpack_from("<IHHII", buf)
                yield ftype, arg
                buf = buf[n:]
            chunk = conn.recv(65536)
            if not chunk:
                return
            buf += chunk

    def _serve(self):
        conn, _ = self.sock.accept()
        with conn:
            for ftype, arg in self._frames(conn):
                if ftype == 0x0001:                               # HELLO -> WELCOME, features
                    body = struct.pack("<HHIIIIIII", 1, 0, 1 << 22, 64, 1 << 22, os.getuid(), os.getgid(),
                                       os.getpid(), self.features)
                    conn.sendall(struct.pack("<IHHII", 16 + len(body), 0x0002, 0, 0, arg) + body)
                    continue
                self.received.append(ftype)
                if ftype == 0x0020:                               # PING -> PONG (empty)
                    conn.sendall(struct.pack("<IHHII", 16, 0x0021, 0, 0, arg))
                elif ftype == 0x0040:                             # BYE -> BYE, close
                    conn.sendall(struct.pack("<IHHII", 16, 0x0040, 0, 0, 0))
                    return

    def close(self):
        self.sock.close()
        self.thread.join(5)
        shutil.rmtree(self.dir, ignore_errors=True)


class StateFeature(unittest.TestCase):
    def test_server_without_state_feature(self):
        """A taktd that does not announce features bit 0: the state calls raise
        Unsupported without sending anything; the connection stays usable."""
        fake = FakeTaktd(features=0x0)
        self.addCleanup(fake.close)
        c = T.Client(fake.path, timeout=5)
        self.assertFalse(c.server.state)
        for call in (lambda: c.state_reader("x"), lambda: c.state_writer("x"),
                     lambda: c.subscribe_state("x"),
                     lambda: c.state_writer("x", create=True, image_size=8)):
            with self.assertRaises(T.Unsupported) as cm:
                call()
            self.assertIn("does not support state channels", str(cm.exception))
            self.assertEqual(cm.exception.feature, "STATE")
        c.ping()
        c.close()
        fake.thread.join(5)
        self.assertEqual(fake.received, [0x0020, 0x0040])       # PING and BYE, no ATTACH

    def test_unknown_feature_bits_ignored(self):
        fake = FakeTaktd(features=0xFFFFFFFE)                    # bits we do not know, no STATE
        self.addCleanup(fake.close)
        with T.Client(fake.path, timeout=5) as c:
            self.assertFalse(c.server.state)
            with self.assertRaises(T.Unsupported):
                c.state_reader("x")


if __name__ == "__main__":
    unittest.main()
