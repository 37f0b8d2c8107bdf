# SPDX-License-Identifier: MIT
"""A blocking client of taktd (docs/PROTOCOL.md), standard library only.

Thread safety: a :class:`Client` and the producers and consumers it opened
may be used from several threads at once.  Frames are written whole under a
lock; socket I/O is done by whichever calling thread needs it (one at a
time: the "I/O owner" reads every frame, for every attachment, and wakes
the others), so there is no background thread and a single-threaded caller
pays no hand-off.  A thread blocked in ``recv()`` does not stop another
thread from sending: queued output wakes the owner through a pipe, and so
does closing (a thread blocked on a consumer or subscription that another
thread closes returns).  Several threads may receive on one consumer:
each record goes to one of them.

Producers are pipelined: ``send()`` queues the record, hands it to the
kernel and returns its sequence number without waiting for the
acknowledgement, unless ``wait=True``; at most ``window`` records are
unacknowledged at any time.  Back-pressure (a full window, or taktd not
reading because the ring is full) blocks ``send()`` up to its timeout;
``Timeout`` then means the record was *not* queued (``Timeout.seq`` is
None).  A record ``send()`` returned for is queued and written in order,
even if the socket took it only after the deadline.  ``flush()`` waits
until every record sent is committed to the ring; ``close()`` detaches
even when that wait times out (and then raises Timeout).  A deadline that
has passed (``timeout=0``) still gets one non-blocking I/O round before
Timeout, so polling with ``timeout=0`` writes and reads.
``Client.close()`` closes the connection within its timeout and raises
Timeout (after closing) if records may be left uncommitted.

State channels (PROTOCOL.md §12, when taktd's WELCOME announces them):
``state_reader()`` reads the newest image (``get()``) and subscribes to
its changes (``subscribe()``: a :class:`StateSubscription`, rate-limited
by taktd); ``state_writer()`` publishes images (``write()``, acknowledged
like records).  ``subscribe_state()`` does both steps at once.

Connection loss (taktd killed, restarted, or shut down) is reported, not
hidden: every call on the connection raises :class:`ConnectionLost`, whose
``committed`` tells how many records of each producer taktd acknowledged;
open a new :class:`Client` (``connect_timeout`` waits for taktd to come
back) and resend from there (at-least-once, PROTOCOL.md §9).
"""

import collections
import errno as _errno
import itertools
import os
import select
import socket
import threading
import time

from . import errors
from . import protocol as P

_POLLIN = select.POLLIN
_POLLOUT = select.POLLOUT
_POLLERR = select.POLLERR | select.POLLHUP | select.POLLNVAL

DEFAULT_MAX_FRAME = 4 << 20
CLIENT_BATCH_MAX = 256 << 10


# The least body of each frame type from taktd whose body is parsed (a shorter
# one is malformed: the connection ends with ConnectionLost).
_MIN_BODY = {
    P.WELCOME: P.WELCOME_BODY.size,
    P.ATTACHED: P.ATTACHED_BODY.size,
    P.DETACHED: P.U64X2.size,
    P.ACK: P.U64.size,
    P.DROPPED: P.U64X2.size,
    P.ERROR: P.ERROR_BODY.size,
    P.STATE: P.STATE_BODY_SIZE,         # + the image length it announces
    P.SUBSCRIBED: P.SUBSCRIBE_BODY.size,
    P.UNSUBSCRIBED: P.U64.size,
}


def _deadline(timeout):
    if timeout is None:
        return None
    return time.monotonic() + max(0.0, timeout)


def _take(client, att, take, is_closed, timeout, closed_msg, timeout_msg):
    """Wait until ``att.queue`` holds something, then return ``take(queue)``,
    checked and taken under the client's lock (several threads may receive
    on one attachment).  Raises Closed once ``is_closed()`` holds with
    nothing queued, Timeout at the deadline; a connection error is raised
    only when nothing is queued (what arrived before it is returned first)."""

    def ready():
        return bool(att.queue) or is_closed()

    def take_or_closed():
        if att.queue:
            return take(att.queue)
        raise errors.Closed(closed_msg)

    return client._wait_for(ready, _deadline(timeout), timeout_msg, take_or_closed)


def _flat(data):
    """A bytes-like payload as bytes or a flat byte view whose len() is its byte
    count (array('I', ...), a memoryview of another format, ...)."""
    if type(data) is bytes:
        return data
    if isinstance(data, str):
        raise TypeError("a record is bytes-like, not str (encode it)")
    mv = memoryview(data)
    if mv.format == "B" and mv.ndim == 1 and mv.c_contiguous:
        return mv
    return mv.cast("B") if mv.c_contiguous else mv.tobytes()


def _remaining(deadline):
    if deadline is None:
        return None
    return deadline - time.monotonic()


class Record:
    """One record received from a channel.

    ``data`` (bytes), ``type`` (the record type chosen by the producer),
    ``channel`` (its name), ``index`` (1, 2, 3, ... per consumer
    attachment, counting records delivered to this client),
    ``dropped_before`` (records taktd discarded just before this one under
    the drop-oldest policy, else 0).  ``lane`` is None: protocol version 1
    does not carry the producer lane."""

    __slots__ = ("data", "type", "channel", "index", "dropped_before")
    lane = None

    def __init__(self, data, rtype, channel, index, dropped_before=0):
        self.data = data
        self.type = rtype
        self.channel = channel
        self.index = index
        self.dropped_before = dropped_before

    def __repr__(self):
        d = self.data if len(self.data) <= 32 else self.data[:32] + b"..."
        return "Record(channel=%r, index=%d, type=%d, len=%d, data=%r)" % (
            self.channel, self.index, self.type, len(self.data), d)


class ChannelInfo:
    """What ATTACHED reported (PROTOCOL.md §3.4)."""

    __slots__ = ("capacity", "lanes", "max_record", "role", "slow", "created", "queue_limit", "nonce")

    def __init__(self, capacity, lanes, max_record, role, slow, created, queue_limit, nonce):
        self.capacity, self.lanes, self.max_record = capacity, lanes, max_record
        self.role, self.slow, self.created = role, slow, bool(created)
        self.queue_limit, self.nonce = queue_limit, nonce

    def __repr__(self):
        return ("ChannelInfo(capacity=%d, lanes=%d, max_record=%d, role=%d, slow=%d, created=%s, "
                "queue_limit=%d, nonce=%#x)" % (self.capacity, self.lanes, self.max_record, self.role,
                                                self.slow, self.created, self.queue_limit, self.nonce))


class ServerInfo:
    """What WELCOME reported (PROTOCOL.md §3.2).  ``features`` is the
    feature bit set; ``state`` tells whether state channels are supported
    (bit 0)."""

    __slots__ = ("version", "max_frame", "max_attach", "queue_limit", "uid", "gid", "pid", "features")

    def __init__(self, version, max_frame, max_attach, queue_limit, uid, gid, pid, features=0):
        self.version, self.max_frame, self.max_attach = version, max_frame, max_attach
        self.queue_limit, self.uid, self.gid, self.pid = queue_limit, uid, gid, pid
        self.features = features

    @property
    def state(self):
        """True if taktd supports state channels (WELCOME features bit 0)."""
        return bool(self.features & P.FEATURE_STATE)

    def __repr__(self):
        return ("ServerInfo(version=%d, max_frame=%d, max_attach=%d, queue_limit=%d, uid=%d, gid=%d, pid=%d, "
                "features=%#x)" % (self.version, self.max_frame, self.max_attach, self.queue_limit, self.uid,
                                   self.gid, self.pid, self.features))


class StateImage:
    """One image of a state channel (a STATE frame, PROTOCOL.md §3.8).

    ``data`` (bytes: the image, up to the image size; a writer may publish
    fewer bytes), ``generation`` (publish count of the image on the
    channel: 1 = the first ever published; 0 = nothing was published yet,
    and ``data`` is empty), ``written_ns`` (when the writer published it,
    CLOCK_MONOTONIC of the host, comparable with ``time.monotonic_ns()``),
    ``age_ns`` (its age when taktd sent it), ``channel`` (the name) and
    ``update`` (True for a subscription update, False for the answer to
    ``get()``)."""

    __slots__ = ("data", "generation", "written_ns", "age_ns", "channel", "update")

    def __init__(self, data, generation, written_ns, age_ns, channel, update=False):
        self.data = data
        self.generation = generation
        self.written_ns = written_ns
        self.age_ns = age_ns
        self.channel = channel
        self.update = update

    @property
    def age(self):
        """``age_ns`` in seconds."""
        return self.age_ns / 1e9

    def __len__(self):
        return len(self.data)

    def __repr__(self):
        d = self.data if len(self.data) <= 16 else self.data[:16] + b"..."
        return "StateImage(channel=%r, generation=%d, len=%d, age_ns=%d%s, data=%r)" % (
            self.channel, self.generation, len(self.data), self.age_ns, ", update" if self.update else "", d)


class _Closing:
    """`with` support: close on leaving the block.  Closing happens whatever
    the block did, but a TaktError from close() does not hide the block's
    own exception."""

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
            return
        try:
            self.close()
        except errors.TaktError:
            pass


class Client(_Closing):
    """A connection to taktd.

    ``Client(socket_path=None, name=None, timeout=10.0, connect_timeout=0,
    max_frame=4 MiB)``: connects and says HELLO.  ``socket_path`` defaults
    to taktd's default (``$XDG_RUNTIME_DIR/takt/taktd.sock``, else
    ``/run/takt/taktd.sock``); the environment variable ``TAKTD_SOCKET``
    overrides the default.  ``timeout`` bounds the control requests
    (HELLO, ATTACH, DETACH, PING, the close handshake).  An ATTACH that
    times out leaves nothing attached: not sent if it was still in the
    client's buffer, else detached as soon as its ATTACHED arrives (records
    taktd delivered to it meanwhile are lost for this client).
    ``connect_timeout`` > 0 retries connecting while taktd is not running
    (e.g. while it restarts), for that many seconds.

    Use as a context manager; ``close()`` flushes producers, detaches and
    says BYE.
    """

    def __init__(self, socket_path=None, name=None, timeout=10.0, connect_timeout=0.0,
                 max_frame=DEFAULT_MAX_FRAME):
        if max_frame < P.MIN_FRAME:
            raise ValueError("max_frame must be at least %d" % P.MIN_FRAME)
        self.socket_path = socket_path or os.environ.get("TAKTD_SOCKET") or P.default_socket_path()
        self.timeout = timeout
        self.max_frame = max_frame
        self._mu = threading.Lock()
        self._cv = threading.Condition(self._mu)
        self._io_owner = False
        self._error = None          # the exception every call raises once the connection is dead
        self._closed = False
        self._bye = False
        self._out = bytearray()     # frames not yet handed to the kernel
        self._out_queued = 0        # bytes ever queued
        self._out_sent = 0          # bytes ever sent
        self._data_end = 0          # _out_queued just after the last record frame queued
        self._rest = b""            # start of an incomplete frame
        self._writes = 0
        self._rbuf = bytearray(1 << 20)
        self._rview = memoryview(self._rbuf)
        self._answers = {}
        self._attaching = {}        # ATTACH request id -> (channel name, role)
        self._abandoned = set()     # ATTACH request ids that timed out after being written
        self._write_busy = False    # a chunk of _out is out of the buffer, being written
        self._req = itertools.count(1)
        self._atts = {}             # chan id -> _Attachment
        self.server = None
        self._sock = self._connect(connect_timeout)
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._poll = select.poll()
        self._poll.register(self._sock.fileno(), _POLLIN)
        self._poll.register(self._wake_r, _POLLIN)
        self._poll_out = False
        try:
            req = self._next_req()
            cname = (name if name is not None else "python-%d" % os.getpid()).encode("utf-8")[:64]
            body = self._request(P.hello(req, max_frame, cname), req, self.timeout, "HELLO")
            w = P.WELCOME_BODY.unpack_from(body)
            self.server = ServerInfo(w[0], *w[2:9])
        except BaseException:
            self._teardown()
            raise

    # ---- connecting ---------------------------------------------------------------

    def _connect(self, connect_timeout):
        deadline = time.monotonic() + max(0.0, connect_timeout or 0.0)
        delay = 0.01
        while True:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
            try:
                s.connect(self.socket_path)
                s.setblocking(False)
                return s
            except (FileNotFoundError, ConnectionRefusedError) as e:
                s.close()
                if time.monotonic() < deadline:
                    time.sleep(delay)
                    delay = min(delay * 2, 0.2)
                    continue
                raise errors.NotRunning(
                    "taktd is not running: cannot connect to %s (%s); start taktd, or pass "
                    "socket_path= / set TAKTD_SOCKET" % (self.socket_path, e.strerror),
                    self.socket_path, e) from None
            except PermissionError as e:
                s.close()
                raise errors.SocketPermissionError(
                    "cannot connect to taktd at %s: %s (the socket's mode, 0660 by default, needs "
                    "its owner or group)" % (self.socket_path, e.strerror), self.socket_path, e) from None
            except OSError as e:
                s.close()
                raise errors.ConnectError("cannot connect to taktd at %s: %s" % (self.socket_path, e),
                                          self.socket_path, e) from None

    # ---- public API -----------------------------------------------------------------

    def producer(self, channel, create=False, exclusive=False, lanes=1, capacity=1 << 20,
                 max_record=None, mode=0o600, window=65536, window_bytes=8 << 20, timeout=None):
        """Attach to ``channel`` as a producer (PROTOCOL.md §5) and return a
        :class:`Producer`.  With ``create=True`` the channel is created if
        missing (``exclusive=True``: fail with ChannelExists if it exists)
        with ``lanes``, ``capacity`` (bytes per lane, a power of two),
        ``max_record`` (default min(capacity/4, 64 KiB)) and ``mode``."""
        att = self._attach(P.ROLE_PRODUCE, channel, create, exclusive, lanes, capacity, max_record,
                           mode, 0, 0, timeout)
        return Producer(self, att, window, window_bytes)

    def consumer(self, channel, create=False, exclusive=False, lanes=1, capacity=1 << 20,
                 max_record=None, mode=0o600, queue_limit=0, slow=None, timeout=None):
        """Attach to ``channel`` as a consumer (PROTOCOL.md §6) and return a
        :class:`Consumer`.  ``queue_limit`` (bytes, 0 = server default) and
        ``slow`` ("disconnect" or "drop-oldest", None = server default)
        choose the slow-consumer policy."""
        if slow not in P.SLOW_POLICIES:
            raise ValueError("slow must be None, 'disconnect' or 'drop-oldest'")
        att = self._attach(P.ROLE_CONSUME, channel, create, exclusive, lanes, capacity, max_record,
                           mode, queue_limit, P.SLOW_POLICIES[slow], timeout)
        return Consumer(self, att)

    def state_reader(self, channel, create=False, exclusive=False, image_size=None, mode=0o600,
                     timeout=None):
        """Attach to the state channel ``channel`` as a reader (PROTOCOL.md
        §12) and return a :class:`StateReader` (``get()``, ``subscribe()``).
        Reading through taktd does not take the channel's reader role: a
        native reader may run at the same time.  With ``create=True`` the
        channel is created if missing with ``image_size`` bytes (required)
        and ``mode``.  Raises Unsupported if taktd has no state channels,
        WrongKind for a queue channel."""
        att = self._attach(P.ROLE_STATE_READ, channel, create, exclusive, 0, 0,
                           self._image_size(create, image_size), mode, 0, 0, timeout)
        return StateReader(self, att)

    def state_writer(self, channel, create=False, exclusive=False, image_size=None, mode=0o600,
                     timeout=None, window=1024):
        """Attach to the state channel ``channel`` as its writer (through
        taktd's writer: Busy if a native writer is alive) and return a
        :class:`StateWriter` (``write()``).  ``create``, ``image_size`` and
        ``mode`` as for :meth:`state_reader`."""
        att = self._attach(P.ROLE_STATE_WRITE, channel, create, exclusive, 0, 0,
                           self._image_size(create, image_size), mode, 0, 0, timeout)
        return StateWriter(self, att, window, 64 << 20)

    def subscribe_state(self, channel, interval=0.001, timeout=None):
        """Attach to a state channel as a reader and subscribe to its updates
        at most once per ``interval`` seconds (at least 0.001): returns a
        :class:`StateSubscription` that owns the attachment (closing it
        detaches).  ``for image in client.subscribe_state(name): ...``"""
        reader = self.state_reader(channel, timeout=timeout)
        try:
            sub = reader.subscribe(interval, timeout=timeout)
        except BaseException:
            try:
                reader.close()
            except errors.TaktError:
                pass
            raise
        sub._owns_reader = True
        return sub

    @staticmethod
    def _image_size(create, image_size):
        if not create:
            return 0
        if image_size is None or not 1 <= image_size <= P.IMAGE_MAX:
            raise ValueError("create=True needs image_size, 1..%d bytes" % P.IMAGE_MAX)
        return image_size

    def ping(self, payload=b"", timeout=None):
        """Round trip through taktd; returns the seconds it took."""
        payload = bytes(_flat(payload))
        if len(payload) > 256:
            raise ValueError("PING payload is at most 256 bytes")
        req = self._next_req()
        t0 = time.monotonic()
        body = self._request(P.frame(P.PING, 0, req, payload), req,
                             self.timeout if timeout is None else timeout, "PING")
        if body != payload:
            raise errors.TaktError("PONG does not echo the PING")
        return time.monotonic() - t0

    @property
    def closed(self):
        return self._closed

    def close(self, timeout=None):
        """Flush producers (up to ``timeout``, default the client's timeout),
        detach everything, say BYE and close.  Never raises for a connection
        that is already dead.  The connection is closed when this returns or
        raises.  If taktd's BYE did not come by the deadline while records
        ``send()`` returned for may not be committed (unacknowledged, or
        still unwritten in the client's buffer: those are discarded), raises
        Timeout after closing; its ``committed`` maps each open producer's
        channel to the count acknowledged."""
        if self._closed:
            return
        timeout = self.timeout if timeout is None else timeout
        deadline = _deadline(timeout)
        unsure = None
        try:
            if self._error is None:
                for att in list(self._atts.values()):
                    if att.role in (P.ROLE_PRODUCE, P.ROLE_STATE_WRITE) and not att.detached:
                        try:
                            self._wait_for(lambda a=att: a.committed >= a.sent, deadline)
                        except errors.TaktError:
                            pass
                with self._cv:
                    if self._error is None:
                        self._queue(P.frame(P.BYE))
                try:
                    self._wait_for(lambda: self._bye, deadline)
                except errors.TaktError:
                    pass
                with self._cv:
                    if self._error is None and not self._bye:
                        unsure = self._unconfirmed()
        finally:
            self._teardown()
        if unsure:
            raise errors.Timeout("client closed within %s s before taktd confirmed every record: %s"
                                 % (timeout, unsure), committed=self._committed_map())

    def _unconfirmed(self):
        """What close() would leave unconfirmed, as text, or None (lock held)."""
        parts = ["%r: %d sent, %d committed" % (a.name, a.sent, a.committed)
                 for a in self._atts.values()
                 if a.role in (P.ROLE_PRODUCE, P.ROLE_STATE_WRITE) and a.committed < a.sent]
        if self._out_sent < self._data_end:
            parts.append("%d bytes of queued records never written (discarded)"
                         % (self._data_end - self._out_sent))
        return "; ".join(parts) or None


    def __del__(self):
        try:
            if not self._closed and getattr(self, "_sock", None) is not None:
                self._teardown()
        except Exception:
            pass

    # ---- internals: requests --------------------------------------------------------

    def _next_req(self):
        return next(self._req) & 0xFFFFFFFF

    def _attach(self, role, channel, create, exclusive, lanes, capacity, max_record, mode,
                queue_limit, slow, timeout):
        if not isinstance(channel, str) or not P.valid_name(channel):
            raise errors.InvalidArgument("bad channel name %r: 1..200 characters from [A-Za-z0-9._-]"
                                         % (channel,), sys_errno=_errno.EINVAL, channel=channel)
        if role in P.STATE_ROLES and not self.server.state:
            raise errors.Unsupported(
                "taktd at %s does not support state channels (its WELCOME announces features %#x, "
                "without bit 0 STATE; PROTOCOL.md §12): use a newer taktd" % (self.socket_path,
                                                                             self.server.features),
                feature="STATE")
        if create and max_record is None:
            max_record = min(capacity // 4, 65536)
        req = self._next_req()
        fr = P.attach(req, role, channel, create, exclusive, lanes, capacity, max_record or 0,
                      mode, queue_limit, slow)
        timeout = self.timeout if timeout is None else timeout
        with self._cv:
            self._check()
            self._answers[req] = None
            self._attaching[req] = (channel, role)
            pos = self._queue(fr) - len(fr)
        try:
            self._wait_for(lambda: self._answers.get(req) is not None, _deadline(timeout),
                           "no answer to ATTACH of %r from taktd within %s s" % (channel, timeout))
        except BaseException as e:
            with self._cv:
                ans = self._answers.pop(req, None)
                self._attaching.pop(req, None)
                if ans is None:
                    # No answer (yet): make sure no attachment is left behind that
                    # nobody reads (a consumer would take the ring's records for
                    # nothing).  Still in our buffer: never send it; else DETACH it
                    # when its ATTACHED comes.
                    if self._error is None and not self._cancel_queued(pos, fr):
                        self._abandoned.add(req)
                    raise
                if not isinstance(e, errors.Timeout):
                    # interrupted (KeyboardInterrupt, a connection error, ...): that
                    # is what the caller sees; an attachment made meanwhile goes
                    if isinstance(ans, _Attachment):
                        self._drop_attachment(ans)
                    raise
            # the answer came while the timeout was being raised: use it
        else:
            with self._cv:
                ans = self._answers.pop(req)
                self._attaching.pop(req, None)
        if isinstance(ans, errors.ServerError):
            if ans.channel is None:
                ans.channel = channel
            raise ans
        return ans

    def _cancel_queued(self, pos, frame):
        """Neutralise a request frame queued at byte ``pos`` that no byte of has
        been written yet (lock held): overwrite it with a PING of the same
        length whose PONG nobody waits for.  False if it is (partly) written
        or a write is in progress."""
        if self._write_busy or pos < self._out_sent or len(frame) - P.HDR_SIZE > 256:
            return False
        off = pos - self._out_sent
        if bytes(self._out[off:off + len(frame)]) != frame:
            return False
        self._out[off:off + len(frame)] = P.frame(P.PING, 0, self._next_req(),
                                                  bytes(len(frame) - P.HDR_SIZE))
        return True

    def _drop_attachment(self, att):
        """Forget an attachment nobody will use and DETACH it, not waiting for
        DETACHED (lock held)."""
        att.detached = True
        self._atts.pop(att.chan, None)
        if self._error is None:
            self._queue(P.frame(P.DETACH, att.chan, self._next_req()))

    def _request(self, frame, req, timeout, what, channel=None):
        """Queue a request frame and wait for its answer (by request id)."""
        with self._cv:
            self._check()
            self._answers[req] = None
            self._queue(frame)
        try:
            self._wait_for(lambda: self._answers.get(req) is not None, _deadline(timeout),
                           "no answer to %s from taktd" % what)
        except BaseException as e:
            with self._cv:
                ans = self._answers.pop(req, None)
            if ans is None or not isinstance(e, errors.Timeout):
                raise
            # the answer came while the timeout was being raised: use it
        else:
            with self._cv:
                ans = self._answers.pop(req)
        if isinstance(ans, errors.ServerError):
            if channel and ans.channel is None:
                ans.channel = channel
            raise ans
        return ans

    def _detach(self, att, timeout, wait=True):
        """DETACH ``att`` and wait up to ``timeout`` for DETACHED (its answer, or
        None).  The attachment is closed on return, whatever happened; a thread
        blocked on it wakes.  ``wait=False``: queue DETACH, do not wait."""
        with self._cv:
            queued = False
            early = att.detached or self._error is not None or not wait
            if early:
                if not att.detached and self._error is None:
                    self._queue(P.frame(P.DETACH, att.chan, self._next_req()))
                    queued = True
                att.detached = True
                self._atts.pop(att.chan, None)
                self._poke()
            else:
                req = self._next_req()
                self._answers[req] = None
                self._queue(P.frame(P.DETACH, att.chan, req))
        if early:
            if queued:
                self._poll_io()         # try to write it now, without waiting
            return None
        try:
            self._wait_for(lambda: self._answers.get(req) is not None, _deadline(timeout),
                           "no answer to DETACH of %r" % att.name)
            with self._cv:
                ans = self._answers.pop(req)
            if isinstance(ans, errors.ServerError):
                raise ans
            return ans
        finally:
            with self._cv:
                self._answers.pop(req, None)
                att.detached = True
                self._atts.pop(att.chan, None)
                self._poke()

    # ---- internals: I/O ---------------------------------------------------------------

    def _check(self):
        if self._error is not None:
            raise self._error
        if self._closed:
            raise errors.Closed("the client is closed")

    def _queue(self, data):
        """Append whole frames to the output (lock held)."""
        self._out += data
        self._out_queued += len(data)
        self._wake()
        return self._out_queued

    def _wake(self):
        """Interrupt the I/O owner's poll (lock held): it re-checks what it
        waits for.  Needed whenever state another thread may wait on changes
        outside a frame from taktd (queued output, a close)."""
        if self._io_owner and self._wake_w is not None:
            try:
                os.write(self._wake_w, b"x")
            except (BlockingIOError, OSError):
                pass

    def _poke(self):
        """Wake every waiting thread, the I/O owner included (lock held)."""
        self._cv.notify_all()
        self._wake()

    def _wait_for(self, pred, deadline, what="timed out", then=None):
        """Do I/O (or let the I/O owner do it) until pred() holds (checked
        with the lock held), then return ``then()`` (None without it), called
        with the lock still held.  Raises the connection's error, or Timeout.
        Once the deadline has passed (at once for a timeout of 0), one
        non-blocking I/O round is done before Timeout is raised (unless
        another thread owns the I/O: it does it), so that polling with
        timeout 0 writes and reads."""
        with self._cv:
            polled = False
            while True:
                if pred():
                    return then() if then is not None else None
                self._check()
                rem = _remaining(deadline)
                if rem is not None and rem <= 0:
                    if polled or self._io_owner:
                        raise errors.Timeout(what)
                    polled = True
                    rem = 0.0
                elif self._io_owner:
                    self._cv.wait(rem)
                    continue
                self._io_owner = True
                self._mu.release()
                try:
                    if rem == 0.0:
                        self._io_poll()
                    else:
                        self._io_round(rem)
                except BaseException as e:
                    self._mu.acquire()
                    self._io_owner = False
                    self._cv.notify_all()
                    if not isinstance(e, errors.TaktError):
                        raise
                    continue
                self._mu.acquire()
                self._io_owner = False
                self._cv.notify_all()

    def _io_poll(self):
        """One non-blocking round of socket I/O by the owner, without the lock:
        write what the socket takes, read and dispatch what is there."""
        if self._out:
            self._write()
        self._read()
        wake_r = self._wake_r
        if wake_r is not None:
            try:
                os.read(wake_r, 4096)       # its wake-ups are served by this round
            except OSError:
                pass

    def _poll_io(self):
        """Do one non-blocking I/O round now (no lock held), unless another
        thread owns the I/O (it does it).  A connection error is left for the
        next call to raise."""
        try:
            self._wait_for(lambda: False, _deadline(0))
        except errors.TaktError:
            pass

    def _io_round(self, timeout):
        """One round of socket I/O by the owner, without the lock."""
        sock = self._sock
        if self._out:
            if self._write():
                self._writes += 1
                if self._writes & 15 == 0:
                    self._read()  # pick up ACKs now and then while streaming
                return  # wrote something: let the caller re-check
        want_out = bool(self._out)
        if want_out != self._poll_out:
            self._poll.modify(sock.fileno(), _POLLIN | (_POLLOUT if want_out else 0))
            self._poll_out = want_out
        ms = -1 if timeout is None else max(0, int(timeout * 1000 + 0.999))
        try:
            events = self._poll.poll(ms)
        except InterruptedError:
            return
        for fd, ev in events:
            if fd == self._wake_r:
                try:
                    os.read(self._wake_r, 4096)
                except BlockingIOError:
                    pass
            elif ev & _POLLIN or ev & _POLLERR:
                self._read()
            elif ev & _POLLOUT:
                self._write()

    def _write(self):
        with self._mu:
            if not self._out:
                return False
            chunk = self._out
            self._out = bytearray()
            self._write_busy = True
        n = 0
        err = None
        try:
            try:
                n = self._sock.send(chunk)
            except (BlockingIOError, InterruptedError):
                n = 0
            except OSError as e:
                n = -1
                err = e
            if n < 0 and isinstance(err, (BrokenPipeError, ConnectionResetError)):
                # taktd closed the connection: why is likely in what it sent last
                # (a fatal ERROR), still unread in the socket.  Dispatch that first.
                self._drain_input()
        finally:
            # whatever happened (even KeyboardInterrupt), what the socket did
            # not take goes back in front of the output, in order
            with self._mu:
                self._write_busy = False
                if n <= 0:
                    self._out[0:0] = chunk
                else:
                    if n < len(chunk):
                        self._out[0:0] = memoryview(chunk)[n:]
                    self._out_sent += n
                    self._cv.notify_all()
        if n < 0:
            with self._mu:
                self._fail(errors.ConnectionLost(self._lost_text(self._why(err)), self._committed_map(), err))
                raise self._error
        return n > 0

    def _drain_input(self):
        """Read and dispatch whatever taktd sent before the connection broke
        (no lock held; the caller owns the I/O)."""
        try:
            while self._read():
                pass
        except errors.TaktError:
            pass

    def _read(self):
        """Read once and dispatch the whole frames; returns the byte count
        (0: nothing to read).  Raises the connection's error at EOF."""
        try:
            n = self._sock.recv_into(self._rbuf)
        except (BlockingIOError, InterruptedError):
            return 0
        except OSError as e:
            with self._mu:
                self._fail(errors.ConnectionLost(self._lost_text(self._why(e)), self._committed_map(), e))
            raise self._error
        if n == 0:
            with self._mu:
                if self._bye:
                    why = "taktd closed the connection (it said BYE: shutting down)"
                else:
                    why = "taktd closed the connection without BYE (killed or restarted?)"
                self._fail(errors.ConnectionLost(self._lost_text(why), self._committed_map()))
            raise self._error
        data = self._rview[:n].tobytes()
        if self._rest:
            data = self._rest + data
        frames = []
        off, end = 0, len(data)
        unpack = P.HDR.unpack_from
        bad = None
        while end - off >= 16:
            length, ftype, flags, chan, arg = unpack(data, off)
            if length < 16 or length > self.max_frame:
                bad = length
                break
            if end - off < length:
                break
            frames.append((ftype, flags, chan, arg, data, off + 16, off + length))
            off += length
        self._rest = data[off:] if off < end and bad is None else b""
        if frames or bad is not None:
            with self._mu:
                try:
                    for f in frames:
                        if self._error is not None:
                            break           # a fatal ERROR or a malformed frame ended it
                        self._dispatch(*f)
                    if bad is not None:
                        self._fail(errors.ConnectionLost(
                            self._lost_text("taktd sent an impossible frame length %d (max_frame %d)"
                                            % (bad, self.max_frame)), self._committed_map()))
                finally:
                    self._cv.notify_all()
                if self._error is not None:
                    raise self._error
        return n

    def _dispatch(self, ftype, flags, chan, arg, buf, start, end):
        """Apply one frame from taktd (lock held)."""
        need = _MIN_BODY.get(ftype)
        if need is not None and (end - start < need or (
                ftype == P.STATE and end - start < need + P.STATE_BODY.unpack_from(buf, start)[3])):
            # a body too short for its type (PROTOCOL.md §3): the stream cannot be trusted
            self._fail(errors.ConnectionLost(self._lost_text(
                "taktd sent a malformed frame (type %#06x with a %d-byte body, at least %d expected)"
                % (ftype, end - start, need)), self._committed_map()))
            return
        if ftype == P.DATA_BATCH:
            att = self._atts.get(chan)
            if att is None or att.detached:
                return
            q, name, unpack = att.queue, att.name, P.BATCH_REC.unpack_from
            off = start
            gap = att.gap
            idx = att.delivered
            recs = []
            for _ in range(arg):
                if end - off < 8:
                    break
                ln, rt = unpack(buf, off)
                off += 8
                if end - off < ln:
                    off = -1
                    break
                idx += 1
                recs.append(Record(buf[off:off + ln], rt, name, idx, gap))
                gap = 0
                off += ln
            if off != end or len(recs) != arg:
                # PROTOCOL.md §3.6: the records fill the body exactly
                self._fail(errors.ConnectionLost(self._lost_text(
                    "taktd sent a malformed DATA_BATCH for %r (%d records announced in %d bytes)"
                    % (name, arg, end - start)), self._committed_map()))
                return
            q.extend(recs)
            att.gap = 0
            att.delivered = idx
        elif ftype == P.DATA:
            att = self._atts.get(chan)
            if att is None or att.detached:
                return
            att.delivered += 1
            att.queue.append(Record(buf[start:end], arg, att.name, att.delivered, att.gap))
            att.gap = 0
        elif ftype == P.STATE:
            gen, written, age, ln, _ = P.STATE_BODY.unpack_from(buf, start)
            off = start + P.STATE_BODY_SIZE
            att = self._atts.get(chan)
            name = att.name if att is not None else None
            if flags & P.FLAG_UPDATE:
                if att is None or att.detached or not att.subscribed:
                    return
                att.updates += 1
                att.queue.append(StateImage(buf[off:off + ln], gen, written, age, name, True))
            elif arg in self._answers:
                self._answers[arg] = StateImage(buf[off:off + ln], gen, written, age, name, False)
        elif ftype == P.SUBSCRIBED:
            att = self._atts.get(chan)
            if att is not None:
                att.subscribed = True
            if arg in self._answers:
                self._answers[arg] = ("subscribed", P.SUBSCRIBE_BODY.unpack_from(buf, start)[0])
        elif ftype == P.UNSUBSCRIBED:
            att = self._atts.get(chan)
            if att is not None:
                att.subscribed = False
            if arg in self._answers:
                self._answers[arg] = ("unsubscribed", P.U64.unpack_from(buf, start)[0])
        elif ftype == P.ACK:
            att = self._atts.get(chan)
            if att is not None:
                (c,) = P.U64.unpack_from(buf, start)
                if c > att.committed:
                    att.committed = c
        elif ftype == P.DROPPED:
            att = self._atts.get(chan)
            if att is not None:
                now, total = P.U64X2.unpack_from(buf, start)
                att.gap += now
                att.dropped = total
        elif ftype == P.ERROR:
            code, sys_errno = P.ERROR_BODY.unpack_from(buf, start)
            msg = buf[start + 8:end].decode("utf-8", "replace")
            att = self._atts.get(chan)
            fatal = bool(flags & P.FLAG_FATAL)
            exc = errors.error_for(code, msg, sys_errno, fatal, att.name if att else None)
            if fatal:
                if att is not None:
                    att.error = exc
                self._fail(exc)
            elif arg in self._answers:
                self._answers[arg] = exc
            else:
                self._abandoned.discard(arg)    # a timed-out ATTACH refused
        elif ftype == P.ATTACHED:
            pending = self._attaching.pop(arg, None)
            if arg in self._answers and pending is not None:
                # Register the attachment now: its first DATA (records already in the
                # ring) or ACK can follow ATTACHED in the same read.
                att = _Attachment(chan, pending[0], pending[1],
                                  ChannelInfo(*P.ATTACHED_BODY.unpack_from(buf, start)))
                self._atts[chan] = att
                self._answers[arg] = att
            elif arg in self._abandoned:
                # the answer to an ATTACH that timed out: nobody uses it, DETACH
                # it (what taktd delivers until then is dropped)
                self._abandoned.discard(arg)
                if self._error is None:
                    self._queue(P.frame(P.DETACH, chan, self._next_req()))
        elif ftype == P.DETACHED:
            if arg in self._answers:
                self._answers[arg] = P.U64X2.unpack_from(buf, start)
        elif ftype == P.WELCOME or ftype == P.PONG:
            if arg in self._answers:
                self._answers[arg] = buf[start:end]
        elif ftype == P.BYE:
            self._bye = True
        # unknown types from a newer server are ignored

    def _why(self, e):
        if isinstance(e, (ConnectionResetError, BrokenPipeError)):
            return "taktd closed the connection without BYE (killed or restarted?): %s" % e.strerror
        return "socket error: %s" % e

    def _committed_map(self):
        return {a.name: a.committed for a in self._atts.values()
                if a.role in (P.ROLE_PRODUCE, P.ROLE_STATE_WRITE)}

    def _lost_text(self, why):
        return "connection to taktd at %s lost: %s" % (self.socket_path, why)

    def _fail(self, exc):
        """The connection is dead (lock held): remember why, wake everybody.
        The first reason stays, except that taktd's own fatal ERROR replaces a
        ConnectionLost (the socket broke while the ERROR was still unread)."""
        if self._error is None or (isinstance(self._error, errors.ConnectionLost)
                                   and isinstance(exc, errors.ServerError) and exc.fatal
                                   and not self._closed):
            self._error = exc
            self._poke()

    def _teardown(self):
        with self._mu:
            self._closed = True
            if self._error is None:
                self._error = errors.Closed("the client is closed")
            self._poke()
            # let a thread polling the socket and the pipe leave before they close
            # (bounded: it only has to notice the pipe)
            end = time.monotonic() + 1.0
            while self._io_owner and time.monotonic() < end:
                self._cv.wait(end - time.monotonic())
        try:
            self._sock.close()
        except Exception:
            pass
        for fd in (getattr(self, "_wake_r", None), getattr(self, "_wake_w", None)):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._wake_r = self._wake_w = None


class _Attachment:
    __slots__ = ("chan", "name", "role", "info", "queue", "committed", "sent", "sent_bytes",
                 "acked_bytes_marks", "delivered", "dropped", "gap", "detached", "error",
                 "subscribed", "updates")

    def __init__(self, chan, name, role, info):
        self.chan, self.name, self.role, self.info = chan, name, role, info
        self.queue = collections.deque()
        self.committed = 0
        self.sent = 0
        self.sent_bytes = 0
        self.acked_bytes_marks = collections.deque()   # (seq, cumulative bytes) per frame
        self.delivered = 0
        self.dropped = 0
        self.gap = 0
        self.detached = False
        self.error = None
        self.subscribed = False     # state read: a subscription is active
        self.updates = 0            # state read: subscription updates received


class _Endpoint(_Closing):
    def __init__(self, client, att):
        self._client = client
        self._att = att

    @property
    def channel(self):
        """The channel's name."""
        return self._att.name

    @property
    def info(self):
        """The channel's ChannelInfo from ATTACHED (capacity, lanes, max_record, ...)."""
        return self._att.info

    @property
    def max_record(self):
        return self._att.info.max_record

    @property
    def closed(self):
        return self._att.detached



class _Sender(_Endpoint):
    """What producers and state writers share: the window of
    unacknowledged records (images), ACK tracking, flush and close."""

    _what = "producer"

    def __init__(self, client, att, window, window_bytes):
        super().__init__(client, att)
        self.window = max(1, int(window))
        self.window_bytes = max(1, int(window_bytes))

    @property
    def sent(self):
        """Records sent on this attachment."""
        return self._att.sent

    @property
    def committed(self):
        """Records taktd acknowledged as committed to the ring."""
        return self._att.committed

    def _room(self, n, nbytes):
        att = self._att
        unacked = att.sent - att.committed
        return unacked == 0 or (unacked + n <= self.window and self._unacked_bytes() + nbytes <= self.window_bytes)

    def _unacked_bytes(self):
        att = self._att
        marks = att.acked_bytes_marks
        while marks and marks[0][0] <= att.committed:
            marks.popleft()
        if not marks:
            return 0
        # bytes of frames not yet fully acknowledged (approximate: whole frames)
        return att.sent_bytes - marks[0][2]

    def _send_frame(self, frame, n, deadline):
        """Queue one frame of ``n`` records and hand it to the kernel.

        Contract (PEERS.md): Timeout is raised only *before* the frame is
        queued (no room in the window, or earlier output not yet taken by
        taktd by the deadline): nothing of it was sent and ``sent`` did not
        count it.  Once queued, the records are counted as sent and will be
        written in order; if the socket does not take the frame by the
        deadline, it stays queued (written by the next call that does I/O:
        send, flush, recv, close) and this returns normally; ``flush()``
        reports a delay."""
        cl, att = self._client, self._att
        with cl._cv:
            cl._check()
            if att.detached:
                raise errors.Closed("%s of %r is closed" % (self._what, att.name))

        def ready():
            return att.detached or (self._room(n, len(frame)) and cl._out_sent >= cl._out_queued)

        try:
            cl._wait_for(ready, deadline)
        except errors.Timeout:
            with cl._cv:
                unacked = att.sent - att.committed
                backlog = cl._out_queued - cl._out_sent
            if backlog:
                why = ("taktd does not read (back-pressure from a full ring?): %d bytes queued earlier "
                       "are still unwritten" % backlog)
            else:
                why = "no room in the window: %d records unacknowledged" % unacked
            raise errors.Timeout("%s of %r: not sent within the timeout, %s (is the channel's consumer "
                                 "running?)" % (self._what, att.name, why)) from None
        with cl._cv:
            cl._check()
            if att.detached:
                raise errors.Closed("%s of %r is closed" % (self._what, att.name))
            start_bytes = att.sent_bytes
            att.sent += n
            att.sent_bytes += len(frame)
            att.acked_bytes_marks.append((att.sent, att.sent_bytes, start_bytes))
            end = cl._data_end = cl._queue(frame)
            seq = att.sent
        try:
            cl._wait_for(lambda: cl._out_sent >= end, deadline)
        except errors.Timeout:
            pass                        # queued: written later, in order (see above)
        return seq

    def wait_committed(self, seq, timeout=None):
        """Wait until record ``seq`` is committed (acknowledged).  Returns the
        committed count."""
        att = self._att
        try:
            self._client._wait_for(lambda: att.committed >= seq or att.detached, _deadline(timeout))
        except errors.Timeout:
            raise errors.Timeout("record %d of %r not acknowledged within %s s (committed %d): it is "
                                 "queued and may still be committed" % (seq, att.name, timeout, att.committed),
                                 seq=seq) from None
        return att.committed

    def flush(self, timeout=None):
        """Wait until every record sent is committed; returns the count."""
        return self.wait_committed(self._att.sent, timeout)

    def close(self, timeout=None):
        """Flush (up to ``timeout``, default the client's), then DETACH, always:
        the attachment is closed when this returns or raises.  Returns the
        committed count taktd reported in DETACHED (or the last ACK if the
        connection is gone).  If the flush timed out, DETACH is queued
        behind the unacknowledged records (taktd may still commit them;
        DETACHED is not waited for) and Timeout is raised with ``seq`` = the
        last record sent; ``committed`` is what was acknowledged.  A ``with``
        block that raised gets its own exception, not this Timeout."""
        att = self._att
        if att.detached:
            return att.committed
        cl = self._client
        timeout = cl.timeout if timeout is None else timeout
        deadline = _deadline(timeout)
        late = None
        try:
            self.flush(_remaining(deadline))
        except errors.Timeout as e:
            late = e
        except (errors.ConnectionLost, errors.Closed, errors.ServerError):
            pass
        except BaseException:
            cl._detach(att, 0, wait=False)
            raise
        if late is not None:
            cl._detach(att, 0, wait=False)     # DETACHED comes only after their ACK
            raise errors.Timeout("%s of %r closed with records unacknowledged: %d sent, %d committed "
                                 "within %s s (those queued may still be committed)"
                                 % (self._what, att.name, att.sent, att.committed, timeout),
                                 seq=att.sent) from None
        ans = cl._detach(att, max(0.0, _remaining(deadline) or 0.0) or 1.0)
        if ans:
            att.committed = max(att.committed, ans[0])
        return att.committed


class Producer(_Sender):
    """A producing attachment (PROTOCOL.md §5).  Sequence numbers count this
    attachment's records from 1; ``committed`` is the last acknowledged."""

    def __init__(self, client, att, window, window_bytes):
        super().__init__(client, att, window, window_bytes)
        limit = min(client.server.max_frame, CLIENT_BATCH_MAX)
        self._batch_limit = max(limit, P.HDR_SIZE + 8 + att.info.max_record)

    def _check_record(self, data, rtype):
        if rtype < 0 or rtype >= P.TYPE_RESERVED:
            raise errors.InvalidArgument("record type %d out of range 0..0x%x" % (rtype, P.TYPE_RESERVED - 1),
                                         sys_errno=_errno.EINVAL, channel=self._att.name)
        if len(data) > self._att.info.max_record:
            raise errors.RecordTooLarge(len(data), self._att.info.max_record, self._att.name)

    def send(self, data, type=0, timeout=None, wait=False):
        """Send one record (bytes-like: its bytes are sent, e.g. the 12 bytes
        of ``array('I', [1, 2, 3])``) with record ``type``; returns its
        sequence number once the record is queued on the connection.
        Blocks while the window is full or taktd does not read (a full
        ring), up to ``timeout`` seconds (None: no limit) -> Timeout, and
        then the record was *not* queued (``Timeout.seq`` is None).
        ``wait=True`` also waits until taktd acknowledged it as committed
        (a Timeout then has ``seq`` = this record's number: it was queued).
        A record above the channel's max_record raises RecordTooLarge
        before anything is sent."""
        data = _flat(data)
        self._check_record(data, type)
        deadline = _deadline(timeout)
        seq = self._send_frame(P.HDR.pack(P.HDR_SIZE + len(data), P.DATA, 0, self._att.chan, type)
                               + data, 1, deadline)
        if wait:
            self.wait_committed(seq, _remaining(deadline))
        return seq

    def send_batch(self, records, type=0, timeout=None, wait=False):
        """Send many records in DATA_BATCH frames (the efficient way).
        ``records``: an iterable of bytes-like payloads (all of record type
        ``type``) or of ``(payload, type)`` pairs.  Every record is checked
        against max_record first.  Returns the sequence number of the last
        record (or of the last record before, if empty).  A Timeout has
        ``seq`` = the last record of the batch that was queued (None: none
        was); the records after it were not."""
        att = self._att
        chan = att.chan
        maxrec = att.info.max_record
        pack = P.BATCH_REC.pack
        parts = []
        items = []
        for r in records:
            if isinstance(r, tuple):
                d, t = r
            else:
                d, t = r, type
            if d.__class__ is not bytes:       # (``type`` is the argument here)
                d = _flat(d)
            if len(d) > maxrec or t < 0 or t >= P.TYPE_RESERVED:
                self._check_record(d, t)
            items.append((d, t))
        deadline = _deadline(timeout)
        seq = att.sent
        queued = None
        limit = self._batch_limit - P.HDR_SIZE
        size = 0
        try:
            for d, t in items:
                need = 8 + len(d)
                if parts and size + need > limit:
                    seq = queued = self._flush_parts(parts, size, chan, deadline)
                    parts = []
                    size = 0
                parts.append(pack(len(d), t))
                parts.append(d)
                size += need
            if parts:
                seq = queued = self._flush_parts(parts, size, chan, deadline)
        except errors.Timeout as e:
            raise errors.Timeout(str(e) + ("; records of this batch queued up to %d, the rest not"
                                           % queued if queued is not None else ""), seq=queued) from None
        if wait:
            self.wait_committed(seq, _remaining(deadline))
        return seq

    def _flush_parts(self, parts, size, chan, deadline):
        n = len(parts) // 2
        if n == 1:
            hdr = parts[0]
            _, t = P.BATCH_REC.unpack(hdr)
            frame = P.HDR.pack(P.HDR_SIZE + size - 8, P.DATA, 0, chan, t) + parts[1]
        else:
            frame = b"".join([P.HDR.pack(P.HDR_SIZE + size, P.DATA_BATCH, 0, chan, n)] + parts)
        return self._send_frame(frame, n, deadline)


class Consumer(_Endpoint):
    """A consuming attachment (PROTOCOL.md §6).  Iterate over it, or call
    ``recv()``.  Records received before a connection error are still
    returned before the error is raised."""

    @property
    def dropped(self):
        """Records taktd discarded for this client (drop-oldest policy)."""
        return self._att.dropped

    @property
    def delivered(self):
        return self._att.delivered

    def _take(self, take, timeout):
        att = self._att
        return _take(self._client, att, take, lambda: att.detached, timeout,
                     "consumer of %r is closed" % att.name,
                     "no record from %r within %s s" % (att.name, timeout))

    def recv(self, timeout=None):
        """The next record; waits up to ``timeout`` seconds (None: forever)
        and raises Timeout when none came, Closed once the consumer is
        closed (also by another thread) and every record received is
        taken.  Several threads may call it: each record goes to one."""
        return self._take(collections.deque.popleft, timeout)

    def recv_many(self, max_records=None, timeout=None):
        """Every record received so far (at most ``max_records``), waiting up
        to ``timeout`` for the first one."""
        def take(q):
            if max_records is None or max_records >= len(q):
                out = list(q)
                q.clear()
                return out
            return [q.popleft() for _ in range(max_records)]
        return self._take(take, timeout)

    def __iter__(self):
        while True:
            try:
                yield self.recv()
            except errors.Closed:
                return

    def close(self, timeout=None):
        """DETACH; returns (delivered, dropped) as taktd reported them."""
        att = self._att
        if att.detached:
            return att.delivered, att.dropped
        ans = self._client._detach(att, self._client.timeout if timeout is None else timeout)
        return tuple(ans) if ans else (att.delivered, att.dropped)


class StateWriter(_Sender):
    """A state-write attachment (PROTOCOL.md §12.4): publishes images of a
    state channel through taktd's writer.  Each image published counts as
    one record for the acknowledgements: ``write()`` returns its number on
    this attachment (1, 2, 3, ...), ``committed`` is the count taktd
    acknowledged as published in shared memory, ``flush()`` waits for all."""

    _what = "state writer"

    @property
    def image_size(self):
        """The channel's image size: the largest image ``write()`` takes."""
        return self._att.info.max_record

    def write(self, image, timeout=None, wait=False):
        """Publish ``image`` (bytes-like, 0..image_size bytes) as the
        channel's newest image; it replaces the previous one (nothing
        queues).  Returns its number on this attachment.  ``wait=True``
        returns once taktd acknowledged it as published.  An image above
        the image size (in bytes: ``array('I')`` counts 4 per item) raises
        ImageTooLarge before anything is sent.  Timeout as for
        :meth:`Producer.send`: before queueing, the image was not queued."""
        att = self._att
        image = _flat(image)
        if len(image) > att.info.max_record:
            raise errors.ImageTooLarge(len(image), att.info.max_record, att.name)
        deadline = _deadline(timeout)
        seq = self._send_frame(P.HDR.pack(P.HDR_SIZE + len(image), P.STATE_WRITE, 0, att.chan, 0)
                               + image, 1, deadline)
        if wait:
            self.wait_committed(seq, _remaining(deadline))
        return seq


class StateReader(_Endpoint):
    """A state-read attachment (PROTOCOL.md §12.2, §12.3).  ``get()`` returns
    the newest image; ``subscribe()`` asks taktd for updates.  taktd reads
    the channel as a monitor, so a native reader keeps its role."""

    def __init__(self, client, att):
        super().__init__(client, att)
        self._sub = None

    @property
    def image_size(self):
        """The channel's image size."""
        return self._att.info.max_record

    @property
    def subscription(self):
        """The active :class:`StateSubscription`, or None."""
        sub = self._sub
        return sub if sub is not None and not sub.closed else None

    def get(self, timeout=None, retry=True):
        """The newest image (STATE_GET): a :class:`StateImage`, generation 0
        with empty data if nothing was ever published.  taktd answers
        TryAgain when the writer publishes faster than it can copy the
        image; with ``retry`` (the default) the request is repeated until
        ``timeout`` (default the client's timeout) has passed."""
        cl, att = self._client, self._att
        timeout = cl.timeout if timeout is None else timeout
        deadline = _deadline(timeout)
        delay = 0.0005
        while True:
            if att.detached:
                raise errors.Closed("state reader of %r is closed" % att.name)
            req = cl._next_req()
            try:
                return cl._request(P.frame(P.STATE_GET, att.chan, req), req, _remaining(deadline),
                                   "STATE_GET", att.name)
            except errors.TryAgain:
                rem = _remaining(deadline)
                if not retry or rem is None or rem <= delay:
                    raise
                time.sleep(delay)       # the writer is mid-burst: back off briefly
                delay = min(delay * 2, 0.02)

    def subscribe(self, interval=0.001, timeout=None):
        """Subscribe to the channel's updates, at most one per ``interval``
        seconds (taktd raises it to at least 0.001): returns a
        :class:`StateSubscription`.  The first update (if anything was
        published) comes at once, then only changed images.  Subscribing
        again changes the interval of the same subscription."""
        us = int(round(interval * 1e6))
        if not 0 <= us <= 0xFFFFFFFF:
            raise ValueError("interval must be 0 .. 4294 s")
        cl, att = self._client, self._att
        if att.detached:
            raise errors.Closed("state reader of %r is closed" % att.name)
        req = cl._next_req()
        _, granted = cl._request(P.frame(P.SUBSCRIBE, att.chan, req, P.SUBSCRIBE_BODY.pack(us, 0)), req,
                                 cl.timeout if timeout is None else timeout, "SUBSCRIBE", att.name)
        sub = self.subscription
        if sub is None:
            sub = self._sub = StateSubscription(self)
        sub.interval_us = granted
        return sub

    def close(self, timeout=None):
        """DETACH (ends the subscription too); returns the count of updates
        taktd sent on this attachment."""
        att = self._att
        if self._sub is not None:
            self._sub._closed = True
        if att.detached:
            with self._client._cv:
                self._client._poke()
            return att.updates
        ans = self._client._detach(att, self._client.timeout if timeout is None else timeout)
        return ans[0] if ans else att.updates


class StateSubscription(_Closing):
    """Updates of a state channel (PROTOCOL.md §12.3), from
    :meth:`StateReader.subscribe` or :meth:`Client.subscribe_state`.

    taktd sends at most one update per ``interval`` and only newer images;
    a client that reads slowly finds a few older updates, then the newest,
    never a backlog.  Generations of successive updates only increase.
    ``recv(timeout)`` returns the next :class:`StateImage` (``latest=True``:
    the newest received, skipping older ones); iterate to get them all
    until the subscription is closed.  Images received before a
    connection error are still returned before the error is raised.
    Closing unsubscribes (and detaches, if the subscription owns its
    reader, as from ``subscribe_state``)."""

    def __init__(self, reader):
        self.reader = reader
        self._att = reader._att
        self._client = reader._client
        self._closed = False
        self._owns_reader = False
        self.interval_us = 0

    @property
    def channel(self):
        return self._att.name

    @property
    def interval(self):
        """The interval taktd granted, in seconds."""
        return self.interval_us / 1e6

    @property
    def updates(self):
        """Updates received so far on this attachment."""
        return self._att.updates

    @property
    def pending(self):
        """Updates received and not yet returned by recv()."""
        return len(self._att.queue)

    @property
    def closed(self):
        return self._closed or self._att.detached

    def _ended(self):
        return self.closed or not self._att.subscribed

    def _take(self, take, timeout):
        att = self._att
        return _take(self._client, att, take, self._ended, timeout,
                     "subscription to %r is closed" % att.name,
                     "no update of %r within %s s" % (att.name, timeout))

    def wait(self, count=1, timeout=None):
        """Wait until at least ``count`` updates are pending (received, not
        yet returned by recv()), without taking them; returns the pending
        count.  Raises Timeout, or Closed once the subscription is closed."""
        att, cl = self._att, self._client

        def pending():
            if len(att.queue) < count:
                raise errors.Closed("subscription to %r is closed" % att.name)
            return len(att.queue)
        return cl._wait_for(lambda: len(att.queue) >= count or self._ended(), _deadline(timeout),
                            "fewer than %d updates of %r within %s s" % (count, att.name, timeout), pending)

    def recv(self, timeout=None, latest=False):
        """The next update (a :class:`StateImage`); waits up to ``timeout``
        seconds (None: forever) and raises Timeout when none came.  With
        ``latest=True`` older updates already received are skipped."""
        if latest:
            def take(q):
                img = q.pop()
                q.clear()
                return img
            return self._take(take, timeout)
        return self._take(collections.deque.popleft, timeout)

    def recv_many(self, timeout=None):
        """Every update received so far, waiting up to ``timeout`` for the
        first one."""
        def take(q):
            out = list(q)
            q.clear()
            return out
        return self._take(take, timeout)

    def __iter__(self):
        while True:
            try:
                yield self.recv()
            except errors.Closed:
                return

    def close(self, timeout=None):
        """UNSUBSCRIBE (and DETACH if this subscription owns its reader).
        Returns the count of updates taktd sent.  No update follows; those
        already received can still be read with recv()."""
        if self._closed:
            return self._att.updates
        cl, att = self._client, self._att
        timeout = cl.timeout if timeout is None else timeout
        count = att.updates
        try:
            if not att.detached and cl._error is None:
                req = cl._next_req()
                _, count = cl._request(P.frame(P.UNSUBSCRIBE, att.chan, req), req, timeout,
                                       "UNSUBSCRIBE", att.name)
        finally:
            self._closed = True
            with cl._cv:
                cl._poke()              # a thread iterating it ends
            if self._owns_reader:
                try:
                    self.reader.close(timeout)
                except (errors.ConnectionLost, errors.Closed):
                    pass
        return count

    unsubscribe = close

