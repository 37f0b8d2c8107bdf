#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Peer benchmarks, all in one run (ratios are what count on a noisy VM):

 1. streaming 64-byte records, one Python producer -> taktd -> C consumer (send_batch);
 2. the same from one Java producer (tools/java/bench/JavaBench.java), if --java-jar;
 3. round trip Python -> taktd -> C echo -> taktd -> Python, one 64-byte record at a
    time, against a raw Python Unix-socket echo (a Python echo process) measured
    in the same run; the C echo once with takt's default spin budget and once
    spinning 200 us before it parks (PEER_C_SPIN_US).

    python3 tools/python/bench/bench_peers.py --taktd build/src/taktd/taktd \
        --peer-c build/tests/peers/peer_c [--java-jar build/tools/java/takt-peer.jar]

A private taktd is started on a socket in a temp dir and stopped at the end.
"""

import argparse
import os
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
sys.path.insert(0, os.path.join(ROOT, "tools", "python", "src"))
import takt_peer  # noqa: E402

PAT = bytes(range(256)) * 3


def record(seq, size):
    s = (8 + seq) & 0xFF
    body = struct.pack("<Q", seq) + PAT[s:s + size - 12]
    return body + struct.pack("<I", zlib.crc32(body)), seq & 0xFFFFFF


def start_taktd(binary, d):
    sock = os.path.join(d, "taktd.sock")
    p = subprocess.Popen([binary, "--socket", sock, "--ready-fd", "1", "--log-level", "warn"],
                         stdout=subprocess.PIPE, stderr=open(os.path.join(d, "taktd.log"), "wb"))
    if p.stdout.readline() != b"ready\n":
        raise SystemExit("taktd did not start")
    return p, sock


def run(cmd, **kw):
    return subprocess.run([str(c) for c in cmd], check=True, capture_output=True, text=True, **kw).stdout


def stream_python(sock, peer_c, count, size, batch):
    name = "bench-py-%d" % os.getpid()
    run([peer_c, "create", name, 1 << 22, 4096])
    try:
        cons = subprocess.Popen([str(x) for x in (peer_c, "consume", name, count, "--min", size, "--max", size, "--ready")],
                                stdout=subprocess.PIPE, text=True)
        assert cons.stdout.readline().strip() == "ready"
        recs = [record(i, size) for i in range(1, count + 1)]
        with takt_peer.Client(sock) as c:
            p = c.producer(name)
            t0 = time.perf_counter()
            for i in range(0, count, batch):
                p.send_batch(recs[i:i + batch])
            p.flush(60)
            dt = time.perf_counter() - t0
        line = cons.communicate(timeout=60)[0].strip()
        assert "consume ok" in line, line
        return count / dt, line
    finally:
        run([peer_c, "rm", name])


def stream_java(sock, peer_c, jar, count, size):
    name = "bench-java-%d" % os.getpid()
    run([peer_c, "create", name, 1 << 22, 4096])
    try:
        cons = subprocess.Popen([str(x) for x in (peer_c, "consume", name, count, "--min", size, "--max", size, "--ready")],
                                stdout=subprocess.PIPE, text=True)
        assert cons.stdout.readline().strip() == "ready"
        out = run(["java", "-cp", jar, os.path.join(ROOT, "tools", "java", "bench", "JavaBench.java"),
                   sock, name, count, size])
        line = cons.communicate(timeout=60)[0].strip()
        assert "consume ok" in line, line
        rate = float(out.split("rate=")[1].split("/")[0])
        return rate, out.strip()
    finally:
        run([peer_c, "rm", name])


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def rt_taktd(sock, peer_c, n, size, echo_spin_us=None):
    a, b = "bench-rta-%d" % os.getpid(), "bench-rtb-%d" % os.getpid()
    run([peer_c, "create", a, 1 << 16, 1024])
    run([peer_c, "create", b, 1 << 16, 1024])
    try:
        env = dict(os.environ)
        if echo_spin_us is not None:
            env["PEER_C_SPIN_US"] = str(echo_spin_us)
        echo = subprocess.Popen([str(x) for x in (peer_c, "echo", a, b, n + 200)], stdout=subprocess.PIPE,
                                text=True, env=env)
        assert echo.stdout.readline().strip() == "ready"
        data = b"x" * size
        lat = []
        with takt_peer.Client(sock) as c:
            cons = c.consumer(b)
            p = c.producer(a)
            for i in range(n + 200):
                t0 = time.perf_counter()
                p.send(data)
                cons.recv(10)
                if i >= 200:
                    lat.append(time.perf_counter() - t0)
        echo.communicate(timeout=30)
        return lat
    finally:
        run([peer_c, "rm", a])
        run([peer_c, "rm", b])


ECHO_SERVER = r"""
import os, socket, sys
s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(1)
print("ready", flush=True)
c, _ = s.accept()
while True:
    d = c.recv(65536)
    if not d: break
    c.sendall(d)
"""


def rt_raw(d, n, size):
    path = os.path.join(d, "echo-%d.sock" % time.monotonic_ns())
    srv = subprocess.Popen([sys.executable, "-c", ECHO_SERVER, path], stdout=subprocess.PIPE, text=True)
    assert srv.stdout.readline().strip() == "ready"
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
    data = b"x" * size
    lat = []
    for i in range(n + 200):
        t0 = time.perf_counter()
        s.sendall(data)
        got = 0
        while got < size:
            got += len(s.recv(65536))
        if i >= 200:
            lat.append(time.perf_counter() - t0)
    s.close()
    srv.wait(10)
    return lat


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--taktd", default=os.path.join(ROOT, "build", "src", "taktd", "taktd"))
    ap.add_argument("--peer-c", default=os.path.join(ROOT, "build", "tests", "peers", "peer_c"))
    ap.add_argument("--java-jar", help="takt-peer.jar: also run the Java producer")
    ap.add_argument("--count", type=int, default=1000000, help="records streamed (default 1000000)")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--batch", type=int, default=4096, help="records per send_batch call")
    ap.add_argument("--round-trips", type=int, default=5000)
    ap.add_argument("--repeat", type=int, default=3, help="streaming runs (the best is kept)")
    a = ap.parse_args()
    d = tempfile.mkdtemp(prefix="takt-bench-")
    proc, sock = start_taktd(a.taktd, d)
    try:
        print("streaming %d records of %d bytes through taktd into a C consumer (best of %d):"
              % (a.count, a.size, a.repeat))
        py = max(stream_python(sock, a.peer_c, a.count, a.size, a.batch) for _ in range(a.repeat))
        print("  python producer: %10.0f records/s   (%s)" % py)
        if a.java_jar:
            jv = max(stream_java(sock, a.peer_c, a.java_jar, a.count, a.size) for _ in range(a.repeat))
            print("  java producer:   %10.0f records/s   (%s)" % jv)
        print("round trip of one %d-byte record, %d times (after 200 warm-up):" % (a.size, a.round_trips))
        # The C echo twice: with takt's default spin (20 us: it parks between
        # round trips longer than that, so every record costs it a wake-up)
        # and spinning 200 us first (a latency-tuned peer).  The raw echo
        # before, between and after, so a drift of the machine shows.
        raw = rt_raw(d, a.round_trips, a.size)
        tk = rt_taktd(sock, a.peer_c, a.round_trips, a.size)
        raw += rt_raw(d, a.round_trips, a.size)
        tk_spin = rt_taktd(sock, a.peer_c, a.round_trips, a.size, echo_spin_us=200)
        raw += rt_raw(d, a.round_trips, a.size)
        rows = (("raw python unix echo", raw),
                ("python->taktd->C->taktd->python", tk),
                ("  the same, C echo spins 200 us", tk_spin))
        for label, lat in rows:
            print("  %-34s p50 %7.1f us  p90 %7.1f us  p99 %7.1f us  mean %7.1f us"
                  % (label, pct(lat, .5) * 1e6, pct(lat, .9) * 1e6, pct(lat, .99) * 1e6,
                     statistics.mean(lat) * 1e6))
        for label, lat in rows[1:]:
            print("  ratio %-32s / raw: p50 %.2fx  mean %.2fx"
                  % (label.strip(), pct(lat, .5) / pct(raw, .5), statistics.mean(lat) / statistics.mean(raw)))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
