#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Watch the PLC example (tools/examples, scripts/plc-demo.sh) through taktd.

Protocol version 1 of taktd carries queue channels only (docs/PROTOCOL.md has
no state channels), so this consumes the PLC's event queue `demo.events`
(text records: cycle reports, motion mode changes, stale/back) rather than the
state channel `demo.plc.out`.

    build/tools/examples/motion --seconds 30 &
    build/tools/examples/plc --seconds 30 &
    build/src/taktd/taktd &                      # as the same user
    python3 tools/python/examples/watch_plc.py   # Ctrl-C to stop

taktd is the queue's one consumer, so do not run `takt recv demo.events` (or
scripts/plc-demo.sh, which does) at the same time.  The events queue is created
by the PLC; this waits for it (--wait S).
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))
import takt_peer  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--socket")
    ap.add_argument("--prefix", default="demo", help="channel prefix of the demo (default demo)")
    ap.add_argument("--wait", type=float, default=30.0, help="seconds to wait for the PLC's queue")
    a = ap.parse_args()
    channel = a.prefix + ".events"
    deadline = time.monotonic() + a.wait
    try:
        with takt_peer.Client(a.socket, connect_timeout=a.wait) as client:
            while True:
                try:
                    cons = client.consumer(channel, slow="drop-oldest")
                    break
                except (takt_peer.NoSuchChannel, takt_peer.TryAgain):
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
            print("watching %s through taktd at %s" % (channel, client.socket_path), flush=True)
            with cons:
                for rec in cons:
                    if rec.dropped_before:
                        print("(%d events dropped)" % rec.dropped_before)
                    print("%s  [type %d] %s" % (time.strftime("%H:%M:%S"), rec.type,
                                                rec.data.decode("utf-8", "backslashreplace").rstrip()),
                          flush=True)
    except KeyboardInterrupt:
        return 0
    except takt_peer.ConnectionLost as e:
        print("watch_plc: %s" % e, file=sys.stderr)
        return 1
    except takt_peer.TaktError as e:
        print("watch_plc: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
