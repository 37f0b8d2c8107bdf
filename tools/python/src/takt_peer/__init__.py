# SPDX-License-Identifier: MIT
"""takt_peer: use takt channels through taktd, from Python (standard library only).

    import takt_peer
    with takt_peer.Client() as c:                 # $XDG_RUNTIME_DIR/takt/taktd.sock or /run/takt/taktd.sock
        with c.producer("plc.cmd") as p:
            p.send(b"start", type=1, wait=True)   # committed to the ring when it returns
        with c.consumer("plc.events") as cons:
            for rec in cons:                      # Record: data, type, channel, index, dropped_before
                print(rec.type, rec.data)
        with c.state_writer("plc.in") as w:        # state channels (PROTOCOL.md §12)
            w.write(b"\\x01" * 256, wait=True)
        with c.state_reader("plc.out") as r:
            img = r.get()                         # StateImage: data, generation, written_ns, age_ns
        for img in c.subscribe_state("plc.out", interval=0.1):
            print(img.generation, img.data[:8])

See docs/PEERS.md and docs/PROTOCOL.md.
"""

from .client import (Client, Producer, Consumer, Record, ChannelInfo, ServerInfo, StateImage, StateReader,
                     StateWriter, StateSubscription)
from .protocol import default_socket_path, VERSION as PROTOCOL_VERSION
from .errors import *  # noqa: F401,F403
from . import errors

__version__ = "0.2.0"

__all__ = ["Client", "Producer", "Consumer", "Record", "ChannelInfo", "ServerInfo", "StateImage",
           "StateReader", "StateWriter", "StateSubscription",
           "default_socket_path", "PROTOCOL_VERSION", "errors"] + [
    n for n in dir(errors) if isinstance(getattr(errors, n), type) and issubclass(getattr(errors, n), Exception)]
