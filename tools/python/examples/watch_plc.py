#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Watch the PLC example (tools/examples, scripts/plc-demo.sh) through taktd.

On one taktd connection it
  - consumes the PLC's event queue `demo.events` (text records: cycle
    reports, motion mode changes, stale/back) and prints each event,
  - subscribes to the PLC's process image, the state channel `demo.plc.out`
    (256 bytes: magic, mode, cycle, time, setpoint, speed limit, enable,
    checksum; tools/examples/demo.h), checks every update it gets (magic and
    FNV-1a checksum) and prints a few decoded fields every --print-every
    seconds, together with motion's newest image (`demo.motion.out`, read
    with STATE_GET).

    build/tools/examples/motion --seconds 30 &
    build/tools/examples/plc --seconds 30 &
    build/src/taktd/taktd &                      # as the same user
    python3 tools/python/examples/watch_plc.py   # Ctrl-C to stop

taktd becomes the events queue's one consumer, so `takt recv demo.events`
cannot run at the same time (reading the state channels through taktd takes
no role: the PLC and motion keep theirs).  The channels are created by the
PLC and motion; this waits for them (--wait S).  At the end (Ctrl-C,
SIGTERM, --seconds, or --until-idle: the PLC's image stopped changing) it
prints one machine-readable line:

    watch_plc: summary events=52 events_dropped=0 images=480 bad_images=0 last_cycle=4999
"""

import argparse
import os
import signal
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))
import takt_peer  # noqa: E402

IMAGE_SIZE = 256
PLC_MAGIC = 0x31434C50       # "PLC1"
MOTION_MAGIC = 0x31544F4D    # "MOT1"
PLC_IMAGE = struct.Struct("<IIQQddI")      # magic, mode, cycle, time_ns, setpoint, max_velocity, enable
MOTION_IMAGE = struct.Struct("<IIQQddQ")   # magic, mode, cycle, time_ns, position, velocity, plc_cycle
MOTION_MODES = {0: "waiting", 1: "moving", 2: "in-position", 3: "hold"}


def checksum(image):
    """demo_checksum(): FNV-1a over the image but its last 4 bytes."""
    h = 2166136261
    for b in image[:IMAGE_SIZE - 4]:
        h = ((h ^ b) * 16777619) & 0xFFFFFFFF
    return h


def valid(image, magic):
    return (len(image) == IMAGE_SIZE and struct.unpack_from("<I", image)[0] == magic
            and struct.unpack_from("<I", image, IMAGE_SIZE - 4)[0] == checksum(image))


class Stop(Exception):
    pass


def attach(what, deadline):
    """Call what() until the channel exists (the PLC creates it) or the deadline."""
    while True:
        try:
            return what()
        except (takt_peer.NoSuchChannel, takt_peer.TryAgain):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--socket", help="taktd's socket (default: TAKTD_SOCKET, else taktd's default)")
    ap.add_argument("--prefix", default="demo", help="channel prefix of the demo (default demo)")
    ap.add_argument("--wait", type=float, default=30.0, help="seconds to wait for taktd and the channels")
    ap.add_argument("--interval", type=float, default=0.01,
                    help="subscription interval: at most one image per this many seconds (default 0.01)")
    ap.add_argument("--print-every", type=float, default=0.5, help="print the image every S seconds")
    ap.add_argument("--until-idle", type=float, default=0.0,
                    help="stop when the PLC's image has not changed for S seconds (default: never)")
    ap.add_argument("--seconds", type=float, default=0.0, help="stop after S seconds (default: never)")
    a = ap.parse_args()
    events_ch, plc_ch, motion_ch = a.prefix + ".events", a.prefix + ".plc.out", a.prefix + ".motion.out"

    def on_term(signum, frame):
        raise Stop()
    signal.signal(signal.SIGTERM, on_term)

    out_mu = threading.Lock()

    def say(text):
        with out_mu:
            print("%s  %s" % (time.strftime("%H:%M:%S"), text), flush=True)

    counts = {"events": 0, "events_dropped": 0, "images": 0, "bad_images": 0, "last_cycle": 0}
    failure = []
    status = 0
    client = None
    try:
        client = takt_peer.Client(a.socket, connect_timeout=a.wait, name="watch_plc")
        deadline = time.monotonic() + a.wait
        cons = attach(lambda: client.consumer(events_ch, slow="drop-oldest"), deadline)
        sub = attach(lambda: client.subscribe_state(plc_ch, interval=a.interval), deadline)
        motion = attach(lambda: client.state_reader(motion_ch), deadline)
        say("watching %s (events) and %s (image, every %g s) through taktd at %s"
            % (events_ch, plc_ch, sub.interval, client.socket_path))

        def events():
            try:
                for rec in cons:
                    if rec.dropped_before:
                        counts["events_dropped"] += rec.dropped_before
                        say("(%d events dropped)" % rec.dropped_before)
                    counts["events"] += 1
                    say("event [type %d] %s" % (rec.type, rec.data.decode("utf-8", "backslashreplace").rstrip()))
            except takt_peer.TaktError as e:
                failure.append(e)

        t = threading.Thread(target=events, name="events", daemon=True)
        t.start()
        started = time.monotonic()
        next_print = 0.0
        while not failure:
            now = time.monotonic()
            wait = None
            if a.until_idle > 0 and counts["images"]:
                wait = a.until_idle
            if a.seconds > 0:
                left = started + a.seconds - now
                if left <= 0:
                    break
                wait = left if wait is None else min(wait, left)
            try:
                img = sub.recv(timeout=wait)
            except takt_peer.Timeout:
                if a.seconds <= 0 or time.monotonic() - started < a.seconds:
                    say("the PLC's image has not changed for %g s: the PLC stopped" % a.until_idle)
                break
            counts["images"] += 1
            if not valid(img.data, PLC_MAGIC):
                counts["bad_images"] += 1
                say("BAD image generation %d (%d bytes): wrong magic or checksum" % (img.generation, len(img.data)))
                continue
            _, mode, cycle, _, setpoint, vmax, enable = PLC_IMAGE.unpack_from(img.data)
            counts["last_cycle"] = cycle
            now = time.monotonic()
            if now >= next_print:
                next_print = now + a.print_every
                m = motion.get()
                if m.generation and valid(m.data, MOTION_MAGIC):
                    _, mmode, _, _, pos, vel, _ = MOTION_IMAGE.unpack_from(m.data)
                    mtext = "%s at %.2f mm, %.1f mm/s" % (MOTION_MODES.get(mmode, "?"), pos, vel)
                else:
                    mtext = "no image yet" if not m.generation else "bad image"
                say("image %s gen %d: cycle=%d mode=%d setpoint=%.1f vmax=%.1f enable=%d age=%.2f ms | motion: %s"
                    % (plc_ch, img.generation, cycle, mode, setpoint, vmax, enable, img.age_ns / 1e6, mtext))
        sub.close()
        motion.close()
        cons.close()             # ends the events thread's loop
        t.join(5)
        if failure:
            raise failure[0]
    except (KeyboardInterrupt, Stop):
        pass
    except takt_peer.TaktError as e:
        print("watch_plc: %s" % e, file=sys.stderr, flush=True)
        status = 1
    finally:
        if client is not None:
            client.close(timeout=2)
    print("watch_plc: summary events=%(events)d events_dropped=%(events_dropped)d images=%(images)d "
          "bad_images=%(bad_images)d last_cycle=%(last_cycle)d" % counts, flush=True)
    if counts["bad_images"]:
        status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
