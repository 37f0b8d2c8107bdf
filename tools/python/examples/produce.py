#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Produce records into a takt channel through taktd (a C process consumes them).

    takt create demo.q
    takt recv demo.q &                                   # the C consumer
    python3 tools/python/examples/produce.py demo.q "hello from Python" --count 3

Options: --socket PATH, --count N, --type T, --create (create the channel if missing).
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))
import takt_peer  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("channel")
    ap.add_argument("text", nargs="?", default="hello from Python")
    ap.add_argument("--socket")
    ap.add_argument("--count", type=int, default=1)
    ap.add_argument("--type", type=int, default=0)
    ap.add_argument("--create", action="store_true")
    a = ap.parse_args()
    try:
        with takt_peer.Client(a.socket) as client:
            with client.producer(a.channel, create=a.create, capacity=1 << 16, mode=0o666) as p:
                for i in range(1, a.count + 1):
                    p.send(("%s %d" % (a.text, i) if a.count > 1 else a.text).encode(), type=a.type)
                print("produced %d records into %s (committed)" % (p.flush(timeout=10), a.channel))
    except takt_peer.TaktError as e:
        print("produce: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
