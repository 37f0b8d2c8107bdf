# SPDX-License-Identifier: MIT
"""Exceptions of takt_peer.

Every error code of docs/PROTOCOL.md §7 has a class; ``error_from_frame``
builds the right one from an ERROR frame.  The hierarchy::

    TaktError
    ├── ConnectError (also ConnectionError)      connecting to taktd failed
    │   ├── NotRunning                           no socket / nobody listening
    │   └── SocketPermissionError (also PermissionError)
    ├── ConnectionLost (also ConnectionError)    taktd went away (EOF, reset, BYE)
    ├── Timeout (also TimeoutError)              a deadline passed
    ├── Closed                                   the client or attachment is closed
    ├── Unsupported                              taktd lacks a feature (state channels)
    └── ServerError                              an ERROR frame (code, name, errno, fatal)
        ├── BadFrame, BadType, TooLarge, StateError, VersionError, BadChannel,
        │   Denied, SlowConsumer, LimitExceeded, ShuttingDown          (protocol)
        └── InvalidArgument, ChannelExists, NoSuchChannel, AccessDenied, NoSpace,
            TryAgain, MessageTooLarge (RecordTooLarge), BadMessage, LayoutMismatch,
            Busy, TimedOut, OutOfMemory, WrongKind, SystemFailure       (takt)
"""

import errno as _errno


class TaktError(Exception):
    """Base class of every takt_peer error."""


class ConnectError(TaktError, ConnectionError):
    """Connecting to taktd failed."""

    def __init__(self, message, path=None, os_error=None):
        super().__init__(message)
        self.path = path
        self.os_error = os_error


class NotRunning(ConnectError):
    """taktd is not running: its socket does not exist or nobody listens on it."""


class SocketPermissionError(ConnectError, PermissionError):
    """The socket's mode does not let this process connect."""


class ConnectionLost(TaktError, ConnectionError):
    """The connection ended: taktd closed it (BYE on shutdown), died or was
    restarted.  ``committed`` maps channel name -> records the server
    acknowledged on each producing attachment (resend the rest after
    reconnecting; see docs/PEERS.md)."""

    def __init__(self, message, committed=None, cause=None):
        super().__init__(message)
        self.committed = dict(committed or {})
        self.cause = cause


class Timeout(TaktError, TimeoutError):
    """A deadline passed before the operation completed.

    ``seq`` tells producers and state writers what became of the record
    (image): None when it was not queued (``send``, ``send_batch``,
    ``write`` raise Timeout only before queueing it, unless ``wait=True``);
    otherwise the sequence number of the last record of the call that was
    queued (it will be written in order and may still be committed), e.g.
    when ``wait=True`` or ``flush()`` ran out of time waiting for the
    acknowledgement.  ``committed`` is set by ``Client.close()`` when it
    closed before taktd confirmed every record: channel -> acknowledged
    count of each open producer (else None)."""

    def __init__(self, message="", seq=None, committed=None):
        super().__init__(message)
        self.seq = seq
        self.committed = committed

    def __str__(self):
        return str(self.args[0]) if self.args else ""


class Closed(TaktError):
    """The client, producer or consumer was closed."""


class Unsupported(TaktError):
    """taktd does not offer what was asked: state channels need a taktd whose
    WELCOME announces the ``STATE`` feature (bit 0 of ``features``,
    PROTOCOL.md §3.2).  Nothing was sent; the connection stays usable."""

    def __init__(self, message, feature=None):
        super().__init__(message)
        self.feature = feature


class ServerError(TaktError):
    """An ERROR frame from taktd.

    Attributes: ``code`` (PROTOCOL.md §7), ``name`` ("NOENT", ...),
    ``errno`` (positive Linux errno or 0), ``message`` (taktd's text),
    ``fatal`` (the connection was closed), ``channel`` (the channel name
    when known)."""

    code = 0
    name = "UNKNOWN"

    def __init__(self, message="", code=None, sys_errno=0, fatal=False, channel=None):
        if code is not None:
            self.code = code
            self.name = _NAMES.get(code, "UNKNOWN(%d)" % code)
        self.message = message
        self.errno = sys_errno
        self.fatal = fatal
        self.channel = channel
        super().__init__(self._text())

    def _text(self):
        return "%s (code %d%s%s)%s" % (
            self.message or self.name, self.code,
            ", " + _errno.errorcode.get(self.errno, str(self.errno)) if self.errno else "",
            ", fatal" if self.fatal else "",
            " on channel %r" % self.channel if self.channel else "")

    def __str__(self):
        # the channel may be filled in after construction (an ATTACH refused: the
        # ERROR frame does not name it)
        return self._text()


def _cls(name, code, *bases, doc=""):
    cls = type(name, (ServerError,) + bases, {"code": code, "name": _NAME_OF[name], "__doc__": doc})
    return cls


_NAME_OF = {
    "BadFrame": "BAD_FRAME", "BadType": "BAD_TYPE", "TooLarge": "TOO_LARGE", "StateError": "STATE",
    "VersionError": "VERSION", "BadChannel": "BAD_CHANNEL", "Denied": "DENIED",
    "SlowConsumer": "SLOW_CONSUMER", "LimitExceeded": "LIMIT", "ShuttingDown": "SHUTDOWN",
    "InvalidArgument": "INVALID", "ChannelExists": "EXISTS", "NoSuchChannel": "NOENT",
    "AccessDenied": "ACCESS", "NoSpace": "NOSPC", "TryAgain": "AGAIN", "MessageTooLarge": "MSGSIZE",
    "BadMessage": "BADMSG", "LayoutMismatch": "LAYOUT", "Busy": "BUSY", "TimedOut": "TIMEDOUT",
    "OutOfMemory": "NOMEM", "WrongKind": "KIND", "SystemFailure": "SYSTEM",
}

# protocol errors
BadFrame = _cls("BadFrame", 1, doc="Malformed frame (fatal).")
BadType = _cls("BadType", 2, doc="Unknown or server-only frame type (fatal).")
TooLarge = _cls("TooLarge", 3, doc="Frame above the server's max_frame (fatal).")
StateError = _cls("StateError", 4, doc="Frame not allowed now: not HELLO first, second HELLO (fatal).")
VersionError = _cls("VersionError", 5, doc="Protocol version not supported by taktd (fatal).")
BadChannel = _cls("BadChannel", 6, doc="Unknown channel id or wrong role (fatal on DATA).")
Denied = _cls("Denied", 7, PermissionError,
              doc="The access policy refuses this uid (HELLO, fatal) or this role on this channel (ATTACH).")
SlowConsumer = _cls("SlowConsumer", 8, doc="Consumer exceeded its queue limit (fatal, disconnect policy).")
LimitExceeded = _cls("LimitExceeded", 9, doc="Too many attachments on this connection.")
ShuttingDown = _cls("ShuttingDown", 10, doc="ATTACH while taktd is stopping.")
# takt errors
InvalidArgument = _cls("InvalidArgument", 20, ValueError, doc="Bad name, geometry or reserved record type.")
ChannelExists = _cls("ChannelExists", 21, FileExistsError, doc="CREATE with EXCL: the channel exists.")
NoSuchChannel = _cls("NoSuchChannel", 22, LookupError, doc="No such channel (ATTACH without CREATE).")
AccessDenied = _cls("AccessDenied", 23, PermissionError, doc="The channel's mode does not admit taktd's uid.")
NoSpace = _cls("NoSpace", 24, doc="/dev/shm cannot hold the new channel.")
TryAgain = _cls("TryAgain", 25, doc="The channel is still being created; or (STATE_GET) the image "
               "changes faster than taktd can copy it.  Retry.")
MessageTooLarge = _cls("MessageTooLarge", 26, ValueError,
                       doc="Record above max_record, image above the image size, or a channel whose "
                       "max_record (image size) does not fit a frame.")
BadMessage = _cls("BadMessage", 27, doc="The channel or taktd's lane is corrupted.")
LayoutMismatch = _cls("LayoutMismatch", 28, doc="The segment's layout version is not taktd's.")
Busy = _cls("Busy", 29, doc="consume: a live consumer holds the channel; produce: every lane is held; "
           "state write: a live writer other than taktd holds the channel.")
TimedOut = _cls("TimedOut", 30, doc="Reserved (not sent by protocol version 1).")
OutOfMemory = _cls("OutOfMemory", 31, MemoryError, doc="taktd is out of memory.")
WrongKind = _cls("WrongKind", 32, TypeError,
                 doc="A queue role on a state channel, or a state role on a queue channel (ATTACH).")
SystemFailure = _cls("SystemFailure", 99, OSError, doc="Another system error; see errno and the message.")


class RecordTooLarge(MessageTooLarge):
    """Raised by the client itself, before sending, for a record above the
    channel's max_record (from ATTACHED).  Nothing was sent; the connection
    stays usable."""

    def __init__(self, size, max_record, channel=None):
        super().__init__("record of %d bytes exceeds the channel's max_record %d" % (size, max_record),
                         sys_errno=_errno.EMSGSIZE, channel=channel)
        self.size = size
        self.max_record = max_record


class ImageTooLarge(MessageTooLarge):
    """Raised by the client itself, before sending, for an image above the
    state channel's image size (from ATTACHED).  Nothing was sent; the
    connection stays usable."""

    def __init__(self, size, image_size, channel=None):
        super().__init__("image of %d bytes exceeds the channel's image size %d" % (size, image_size),
                         sys_errno=_errno.EMSGSIZE, channel=channel)
        self.size = size
        self.image_size = image_size


ERROR_CLASSES = {c.code: c for c in (
    BadFrame, BadType, TooLarge, StateError, VersionError, BadChannel, Denied, SlowConsumer,
    LimitExceeded, ShuttingDown, InvalidArgument, ChannelExists, NoSuchChannel, AccessDenied,
    NoSpace, TryAgain, MessageTooLarge, BadMessage, LayoutMismatch, Busy, TimedOut, OutOfMemory,
    WrongKind, SystemFailure)}
_NAMES = {c.code: c.name for c in ERROR_CLASSES.values()}


def error_for(code, message="", sys_errno=0, fatal=False, channel=None):
    """The exception for an ERROR frame's code (ServerError for unknown codes)."""
    cls = ERROR_CLASSES.get(code)
    if cls is None:
        return ServerError(message, code=code, sys_errno=sys_errno, fatal=fatal, channel=channel)
    return cls(message, sys_errno=sys_errno, fatal=fatal, channel=channel)
