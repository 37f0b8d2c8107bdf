#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Consume a takt channel through taktd and print its records.

    takt create demo.q                                  # a channel, from C's side
    python3 tools/python/examples/consume.py demo.q &   # this consumer (via taktd)
    takt send demo.q "hello from C"                     # a C process produces

Options: --socket PATH (default: taktd's default socket), --count N, --timeout S,
--hex (print payloads in hex).
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))
import takt_peer  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("channel")
    ap.add_argument("--socket", help="taktd's socket (default %s)" % takt_peer.default_socket_path())
    ap.add_argument("--count", type=int, default=0, help="stop after N records (default: run forever)")
    ap.add_argument("--timeout", type=float, help="stop when no record came for S seconds")
    ap.add_argument("--hex", action="store_true")
    a = ap.parse_args()
    try:
        with takt_peer.Client(a.socket) as client, client.consumer(a.channel) as cons:
            n = 0
            while not a.count or n < a.count:
                try:
                    rec = cons.recv(timeout=a.timeout)
                except takt_peer.Timeout:
                    break
                n += 1
                text = rec.data.hex() if a.hex else rec.data.decode("utf-8", "backslashreplace")
                gap = " (%d dropped before)" % rec.dropped_before if rec.dropped_before else ""
                print("#%d type %d len %d: %s%s" % (rec.index, rec.type, len(rec.data), text, gap), flush=True)
    except KeyboardInterrupt:
        pass
    except takt_peer.TaktError as e:
        print("consume: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
