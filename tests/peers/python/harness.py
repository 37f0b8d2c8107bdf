# SPDX-License-Identifier: MIT
"""Shared helpers of the peer tests: a real taktd per test, the C peer, test records.

Environment (set by tests/peers/CMakeLists.txt):
  TAKTD_BIN   the built taktd        PEER_C   the built tests/peers/peer_c
  STATE_C     the built tests/peers/state_c (state channels)
  TAKT_PEER_PYTHONPATH  tools/python/src (prepended to sys.path here)
"""

import itertools
import os
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
sys.path.insert(0, os.environ.get("TAKT_PEER_PYTHONPATH", os.path.join(ROOT, "tools", "python", "src")))

TAKTD = os.environ.get("TAKTD_BIN", os.path.join(ROOT, "build", "src", "taktd", "taktd"))
PEER_C = os.environ.get("PEER_C", os.path.join(ROOT, "build", "tests", "peers", "peer_c"))
STATE_C = os.environ.get("STATE_C", os.path.join(os.path.dirname(PEER_C), "state_c"))

_counter = itertools.count(1)
PAT = bytes(range(256)) * 3


def unique(tag):
    """A channel name no other test (or parallel run) uses."""
    return "pp-%d-%d-%s" % (os.getpid(), next(_counter), tag)


def rec_len(seq, mn=16, mx=200):
    return mn + (seq * 2654435761) % (mx - mn + 1)


def make_record(seq, mn=16, mx=200):
    """(payload, type) of test record seq: the layout peer_c checks."""
    ln = rec_len(seq, mn, mx)
    s = (8 + seq) & 0xFF
    body = struct.pack("<Q", seq) + PAT[s:s + ln - 12]
    return body + struct.pack("<I", zlib.crc32(body)), seq & 0xFFFFFF


def check_record(rec, mn=16, mx=200):
    """The record's sequence number, or raise AssertionError."""
    d = rec.data
    if len(d) < 12:
        raise AssertionError("record too short: %d" % len(d))
    (seq,) = struct.unpack_from("<Q", d)
    (crc,) = struct.unpack_from("<I", d, len(d) - 4)
    if crc != zlib.crc32(d[:-4]):
        raise AssertionError("bad checksum in record seq %d" % seq)
    if rec.type != seq & 0xFFFFFF:
        raise AssertionError("record %d has type %d" % (seq, rec.type))
    if mn is not None and len(d) != rec_len(seq, mn, mx):
        raise AssertionError("record %d has length %d" % (seq, len(d)))
    s = (8 + seq) & 0xFF
    if d[8:-4] != PAT[s:s + len(d) - 12]:
        raise AssertionError("record %d has a bad pattern" % seq)
    return seq


class Taktd:
    """A real taktd on a socket in a private temp dir, started and stopped by a test."""

    def __init__(self, policy=None, user=None, extra=()):
        self.dir = tempfile.mkdtemp(prefix="takt-peers-")
        self.user = user
        if user is not None:
            os.chmod(self.dir, 0o777)
        self.socket = os.path.join(self.dir, "taktd.sock")
        self.policy = None
        if policy is not None:
            self.policy = os.path.join(self.dir, "policy")
            with open(self.policy, "w") as f:
                f.write(policy)
            os.chmod(self.policy, 0o644)
        self.extra = list(extra)
        self.proc = None
        self.log = os.path.join(self.dir, "taktd.log")
        self.start()

    def start(self, timeout=10.0):
        cmd = [TAKTD, "--socket", self.socket, "--ready-fd", "1", "--log-level", "info"] + self.extra
        if self.policy:
            cmd += ["--policy", self.policy]
        if self.user is not None:
            cmd = ["setpriv", "--reuid=%d" % self.user, "--regid=%d" % self.user, "--clear-groups"] + cmd
        logf = open(self.log, "ab")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=logf, stdin=subprocess.DEVNULL)
        logf.close()
        # readiness: taktd writes "ready\n" to --ready-fd once it listens (bounded wait)
        deadline = time.monotonic() + timeout
        buf = b""
        while b"ready\n" not in buf:
            rem = deadline - time.monotonic()
            if rem <= 0 or self.proc.poll() is not None:
                self.kill()
                raise RuntimeError("taktd did not become ready; log:\n" + self.read_log())
            r, _, _ = select.select([self.proc.stdout], [], [], rem)
            if r:
                chunk = os.read(self.proc.stdout.fileno(), 64)
                if not chunk and b"ready\n" not in buf:
                    continue
                buf += chunk
        return self

    def read_log(self):
        try:
            with open(self.log, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def kill(self):
        """SIGKILL (a crash)."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        if self.proc and self.proc.stdout:
            self.proc.stdout.close()

    def stop(self):
        """SIGTERM (a clean shutdown); returns the exit status."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc and self.proc.stdout:
            self.proc.stdout.close()
        return self.proc.returncode if self.proc else None

    def cleanup(self):
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


def _start_native(binary, label, args, wait_ready):
    """Start a native peer; with wait_ready, return once it printed 'ready'."""
    p = subprocess.Popen([binary] + [str(a) for a in args], stdout=subprocess.PIPE, text=True)
    if wait_ready:
        line = p.stdout.readline()
        if line.strip() != "ready":
            out = line + p.communicate(timeout=30)[0]
            raise RuntimeError("%s did not start: %s" % (label, out))
    return p


def peer(*args, wait_ready=False):
    """Start peer_c; with wait_ready, return once it printed 'ready'."""
    return _start_native(PEER_C, "peer_c", args, wait_ready)


def finish(p, timeout=120):
    out = p.communicate(timeout=timeout)[0]
    return p.returncode, out.strip().splitlines()[-1] if out.strip() else ""


def create_channel(name, capacity=1 << 20, max_record=4096, mode="666"):
    r = subprocess.run([PEER_C, "create", name, str(capacity), str(max_record), mode],
                       capture_output=True, text=True)
    if r.returncode:
        raise RuntimeError(r.stdout + r.stderr)


def remove_channel(name):
    subprocess.run([PEER_C, "rm", name], capture_output=True)


# ---- state channels (state_c) ------------------------------------------------------

def make_image(seq, ln):
    """Test image seq of ln >= 16 bytes: the layout state_c writes and checks."""
    body = struct.pack("<Q", seq) + bytes((i + seq) & 0xFF for i in range(8, ln - 4))
    return body + struct.pack("<I", zlib.crc32(body))


def check_image(data):
    """The image's sequence number, or raise AssertionError."""
    if len(data) < 16:
        raise AssertionError("image too short: %d bytes" % len(data))
    (seq,) = struct.unpack_from("<Q", data)
    (crc,) = struct.unpack_from("<I", data, len(data) - 4)
    if crc != zlib.crc32(data[:-4]):
        raise AssertionError("bad checksum in image seq %d" % seq)
    if data[8:-4] != bytes((i + seq) & 0xFF for i in range(8, len(data) - 4)):
        raise AssertionError("image %d has a bad pattern" % seq)
    return seq


def state_peer(*args, wait_ready=False):
    """Start state_c; with wait_ready, return once it printed 'ready'."""
    return _start_native(STATE_C, "state_c", args, wait_ready)


def create_state(name, image_size=256, mode="666"):
    r = subprocess.run([STATE_C, "create", name, str(image_size), mode], capture_output=True, text=True)
    if r.returncode:
        raise RuntimeError(r.stdout + r.stderr)
