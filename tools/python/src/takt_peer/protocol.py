# SPDX-License-Identifier: MIT
"""Wire constants and codecs of the taktd protocol, version 1 (docs/PROTOCOL.md).

Everything is little-endian; a frame is a 16-byte header
(length u32, type u16, flags u16, chan u32, arg u32) and a body.
"""

import os
import struct

VERSION = 1
HDR = struct.Struct("<IHHII")
HDR_SIZE = 16
PRE_HELLO_MAX = 1024
MIN_FRAME = 4096
BATCH_REC = struct.Struct("<II")
SERVER_BATCH_MAX = 256 << 10   # the server builds DATA_BATCH frames up to this size

HELLO = 0x0001
WELCOME = 0x0002
ATTACH = 0x0003
ATTACHED = 0x0004
DETACH = 0x0005
DETACHED = 0x0006
DATA = 0x0010
DATA_BATCH = 0x0011
ACK = 0x0012
DROPPED = 0x0013
PING = 0x0020
PONG = 0x0021
ERROR = 0x0030
BYE = 0x0040
STATE_GET = 0x0050
STATE = 0x0051
SUBSCRIBE = 0x0052
SUBSCRIBED = 0x0053
UNSUBSCRIBE = 0x0054
UNSUBSCRIBED = 0x0055
STATE_WRITE = 0x0056

FLAG_FATAL = 0x0001
FLAG_UPDATE = 0x0002            # STATE: a subscription update

FEATURE_STATE = 0x0001          # WELCOME features bit 0: state channels (§12)

ROLE_PRODUCE = 1
ROLE_CONSUME = 2
ROLE_STATE_READ = 3
ROLE_STATE_WRITE = 4
STATE_ROLES = (ROLE_STATE_READ, ROLE_STATE_WRITE)
ATTACH_CREATE = 0x0001
ATTACH_EXCL = 0x0002

SLOW_DEFAULT = 0
SLOW_DISCONNECT = 1
SLOW_DROP_OLDEST = 2
SLOW_POLICIES = {None: SLOW_DEFAULT, "default": SLOW_DEFAULT, "disconnect": SLOW_DISCONNECT,
                 "drop-oldest": SLOW_DROP_OLDEST}

TYPE_RESERVED = 0xFFFF0000
NAME_MAX = 200
_NAME_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-")

WELCOME_BODY = struct.Struct("<HHIIIIIII")      # 32 bytes
ATTACH_BODY = struct.Struct("<HHIQIIIBBH")     # 32 bytes + name
ATTACHED_BODY = struct.Struct("<QIIHBBIQ")     # 32 bytes
U64 = struct.Struct("<Q")
U64X2 = struct.Struct("<QQ")
ERROR_BODY = struct.Struct("<II")
STATE_BODY = struct.Struct("<QQQII")            # 32 bytes + image
STATE_BODY_SIZE = 32
SUBSCRIBE_BODY = struct.Struct("<II")           # interval_us, reserved
MIN_INTERVAL_US = 1000
IMAGE_MAX = 64 << 20


def default_socket_path():
    """taktd's default: $XDG_RUNTIME_DIR/takt/taktd.sock if XDG_RUNTIME_DIR is
    set and absolute, else /run/takt/taktd.sock."""
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg and xdg.startswith("/"):
        return os.path.join(xdg, "takt", "taktd.sock")
    return "/run/takt/taktd.sock"


def valid_name(name):
    return 1 <= len(name) <= NAME_MAX and name not in (".", "..") and all(c in _NAME_CHARS for c in name)


def frame(ftype, chan=0, arg=0, body=b"", flags=0):
    return HDR.pack(HDR_SIZE + len(body), ftype, flags, chan, arg) + body


def hello(req, max_frame, client_name=b""):
    return frame(HELLO, 0, req, struct.pack("<HHI", VERSION, 0, max_frame) + client_name[:64])


def attach(req, role, name, create=False, exclusive=False, lanes=0, capacity=0, max_record=0,
           mode=0, queue_limit=0, slow=0):
    raw = name.encode("utf-8")
    flags = (ATTACH_CREATE if create else 0) | (ATTACH_EXCL if exclusive else 0)
    if not create:
        lanes = capacity = max_record = mode = 0
    if role != ROLE_CONSUME:
        queue_limit = slow = 0
    if role in STATE_ROLES:
        lanes = capacity = 0            # a state channel: max_record is the image size
    body = ATTACH_BODY.pack(role, flags, lanes, capacity, max_record, mode, queue_limit, slow, 0,
                            len(raw)) + raw
    return frame(ATTACH, 0, req, body)
