"""The server side of RFC 6455 on a plain non-blocking socket, parsed by wsproto.

The gateway used trio-websocket until the bench showed its per-frame cost set
the server's ceiling (a lock, a checkpointed ``send_all`` and one system call
per frame, and a second task per connection to read; bench/RESULTS.md). Here:

- Reading: the connection's own task calls ``receive``; ``FrameReader``
  (gateway/frames.py) parses client frames by hand, with every rule wsproto
  enforced (the profile showed wsproto's per-frame objects were most of the
  cost of reading a message).
- Writing: ``send`` appends a frame to the socket's outbox and never blocks.
  The ``Flusher`` (one task per listener) writes every outbox that got frames,
  once per scheduler tick, with one non-blocking ``send()`` of all that is
  queued. Only when the kernel's buffer is full does a task wait: the
  socket's ``writer``, which awaits ``wait_writable`` and writes the rest.
  Every write takes bytes from the front of the one outbox in one synchronous
  call, so frames leave whole and in order whichever of them makes the call,
  and at most one task ever waits on the socket.
- Closing: ``aclose`` finishes the frame being written (or everything queued),
  writes the close frame, waits for the peer's, then closes the socket.

All frames are encoded here (a server's frames are unmasked and no extension
is negotiated); only the opening handshake goes through wsproto.
"""

from __future__ import annotations

import logging
import socket
import struct
from collections import deque
from dataclasses import dataclass

import trio
from wsproto import ConnectionType
from wsproto.connection import ConnectionState
from wsproto.events import AcceptConnection, RejectConnection, RejectData, Request
from wsproto.handshake import H11Handshake
from wsproto.utilities import RemoteProtocolError

from sandcat.gateway.frames import (
    NO_STATUS,
    PING,
    PONG,
    FrameReader,
    close_frame,
    control_frame,
)

log = logging.getLogger(__name__)

#: Bytes asked of the kernel per receive.
_RECV_BYTES = 65536
#: What a client gets whose opening handshake is not HTTP wsproto can parse.
_BAD_REQUEST = b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n"
#: Unsent bytes the kernel may hold per socket (TCP_NOTSENT_LOWAT).
_NOTSENT_LOWAT = 2**14
#: How long the peer may take to answer this side's close frame.
PEER_CLOSE_TIMEOUT_S = 1.0
#: 1006: the connection dropped without a close frame (never sent on the wire).
ABNORMAL = 1006


class ConnectionClosed(Exception):
    """The WebSocket is closed for reading; ``code`` is the close code seen."""

    def __init__(self, code: int, reason: str = "") -> None:
        super().__init__(f"{code} {reason}".strip())
        self.code = code
        self.reason = reason


class WriteTimeout(Exception):
    """The peer took no bytes for the whole send timeout."""


def data_frame(payload: bytes, *, text: bool = False) -> bytes:
    """One unmasked, final frame holding ``payload`` (RFC 6455 §5.2)."""
    first = 0x81 if text else 0x82
    size = len(payload)
    if size < 126:
        return bytes((first, size)) + payload
    if size < 65536:
        return struct.pack("!BBH", first, 126, size) + payload
    return struct.pack("!BBQ", first, 127, size) + payload


class Flusher:
    """Writes the outbox of every socket that got frames, once per tick."""

    def __init__(self) -> None:
        self._dirty: list[WebSocket] = []
        self._lot = trio.lowlevel.ParkingLot()

    def schedule(self, ws: WebSocket) -> None:
        if not self._dirty:
            self._lot.unpark_all()
        self._dirty.append(ws)

    async def run(self) -> None:
        while True:
            if not self._dirty:
                await self._lot.park()
            else:
                await trio.lowlevel.checkpoint()
            dirty, self._dirty = self._dirty, []
            for ws in dirty:
                ws.flush()


class WebSocket:
    """One accepted WebSocket; see the module docstring for who reads and writes."""

    def __init__(self, sock: socket.socket, flusher: Flusher, *, max_message_bytes: int) -> None:
        self._sock = sock
        #: RFC 6455's connection state, as wsproto names it.
        self._state = ConnectionState.OPEN
        self._reader = FrameReader(max_message_bytes)
        self._flusher = flusher
        # The outbox: unsent bytes, and the absolute end offset of every frame
        # in it that is not fully sent yet (``appended``/``sent`` count all
        # bytes ever queued/written; ``done`` is the end of the last whole frame).
        self._out = bytearray()
        self._ends: deque[int] = deque()
        self._appended = 0
        self._sent = 0
        self._done = 0
        self._dirty = False
        self._blocked = trio.lowlevel.ParkingLot()
        #: Tasks waiting for the outbox to shrink (``wait_queued_at_most``).
        self._drained = trio.lowlevel.ParkingLot()
        self._pongs = trio.lowlevel.ParkingLot()
        self._messages = self._reader.messages
        self._ending: ConnectionClosed | None = None
        self._broken = False
        self._closed = False

    @property
    def backlog(self) -> int:
        """Frames queued and not yet fully handed to the kernel."""
        return len(self._ends)

    @property
    def queued_bytes(self) -> int:
        """Bytes queued and not yet handed to the kernel."""
        return len(self._out)

    async def wait_queued_at_most(self, limit: int) -> None:
        """Return once at most ``limit`` bytes are queued (at once if so already)."""
        while len(self._out) > limit and not (self._broken or self._closed):
            await self._drained.park()

    # -- writing -----------------------------------------------------------------------

    def send(self, message: bytes) -> None:
        """Queue one binary message; dropped once this side has sent its close frame."""
        if self._state is ConnectionState.OPEN:
            self._append(data_frame(message))

    def send_text(self, message: str) -> None:
        if self._state is ConnectionState.OPEN:
            self._append(data_frame(message.encode(), text=True))

    def _append(self, frame: bytes | bytearray) -> None:
        if self._broken or self._closed:
            return
        self._out += frame
        self._appended += len(frame)
        self._ends.append(self._appended)
        if not self._dirty:
            self._dirty = True
            self._flusher.schedule(self)

    def flush(self) -> bool:
        """Write what the kernel takes now, without blocking; True once nothing is left."""
        self._dirty = False
        if not self._out:
            return True
        if self._broken or self._closed:
            self._out.clear()
            self._ends.clear()
            self._drained.unpark_all()
            return True
        try:
            written = self._sock.send(self._out)
        except BlockingIOError:
            written = 0
        except OSError:
            # The peer is gone: the reader sees the same and ends the connection.
            self._broken = True
            self._out.clear()
            self._ends.clear()
            self._drained.unpark_all()
            return True
        if written:
            self._drained.unpark_all()
            del self._out[:written]
            self._sent += written
            ends = self._ends
            while ends and ends[0] <= self._sent:
                self._done = ends.popleft()
        if self._out:
            self._blocked.unpark_all()
            return False
        return True

    async def writer(self, timeout_s: float) -> None:
        """Write out whatever the kernel could not take at once; runs until cancelled.

        Raises ``WriteTimeout`` if the peer takes nothing for ``timeout_s``.
        """
        while True:
            if not self._out or self._broken:
                await self._blocked.park()
                continue
            with trio.move_on_after(timeout_s) as waiting:
                await trio.lowlevel.wait_writable(self._sock)
            if waiting.cancelled_caught:
                raise WriteTimeout(f"the peer took nothing for {timeout_s} s")
            self.flush()

    async def _write_out(self) -> None:
        while not self.flush():
            await trio.lowlevel.wait_writable(self._sock)

    def _drop_queued(self) -> None:
        """Forget queued frames, except the rest of one the peer has seen part of."""
        if self._sent > self._done and self._ends:
            end = self._ends[0]
            del self._out[end - self._sent :]
            self._ends = deque([end])
            self._appended = end
        else:
            self._out.clear()
            self._ends.clear()
            self._appended = self._sent

    # -- reading -----------------------------------------------------------------------

    async def receive(self) -> bytes | str:
        """The next whole message; ``ConnectionClosed`` once there are no more."""
        while not self._messages:
            if self._ending is not None:
                self._finish_reading()
            self._take(await self._recv())
        return self._messages.popleft()

    async def ping(self, payload: bytes = b"") -> None:
        """Send a ping; return once a pong (any pong) has arrived."""
        if self._state is not ConnectionState.OPEN or self._broken or self._closed:
            raise ConnectionClosed(ABNORMAL, "not open")
        self._append(control_frame(PING, payload))
        await self._pongs.park()

    async def _recv(self) -> bytes:
        while True:
            try:
                data = self._sock.recv(_RECV_BYTES)
            except BlockingIOError:
                await trio.lowlevel.wait_readable(self._sock)
                continue
            except OSError:
                return b""  # reset by the peer: as good as the end of the stream
            await trio.lowlevel.checkpoint()
            return data

    def _take(self, data: bytes) -> None:
        """Parse ``data``: messages queue up, pings are answered, a close ends reading."""
        if not data:
            # The stream ended without a close frame (RFC 6455 §7.1.5).
            self._state = ConnectionState.CLOSED
            self._end(ABNORMAL, "")
            return
        reader = self._reader
        for opcode, payload in reader.feed(data):
            if opcode == PING:
                if self._state is ConnectionState.OPEN:
                    self._append(control_frame(PONG, payload))
            else:
                self._pongs.unpark_all()
        if reader.closed is not None:
            self._state = ConnectionState.REMOTE_CLOSING
            self._end(*reader.closed)
        elif reader.error is not None:
            # This side closes with the rule's code once the messages before it are served.
            self._end(reader.error.code, reader.error.reason)

    def _end(self, code: int, reason: str) -> None:
        """Reading is over after the messages already taken (they are served first)."""
        if self._ending is None:
            self._ending = ConnectionClosed(code, reason)

    def _finish_reading(self) -> None:
        """Answer the peer's close, or close with the code reading ended on; raise it."""
        ending = self._ending
        assert ending is not None
        if self._state is ConnectionState.REMOTE_CLOSING:
            self._send_close(None if ending.code == NO_STATUS else ending.code, "")
        elif self._state is ConnectionState.OPEN:
            self._send_close(ending.code, ending.reason)
        raise ConnectionClosed(ending.code, ending.reason)

    # -- closing -----------------------------------------------------------------------

    async def aclose(self, code: int, reason: str, *, keep_queued: bool, timeout_s: float) -> None:
        """The closing handshake, bounded whatever the peer does; idempotent.

        The frame being written is always finished first (a frame cut in half
        would turn the close frame after it into garbage); the rest of what is
        queued only if ``keep_queued``. Writing gets ``timeout_s``, waiting for
        the peer's close frame ``PEER_CLOSE_TIMEOUT_S`` more.
        """
        if self._closed:
            return
        try:
            with trio.CancelScope(shield=True):
                with trio.move_on_after(timeout_s):
                    if self._state is ConnectionState.OPEN:
                        if not keep_queued:
                            self._drop_queued()
                        self._send_close(code, reason)
                    elif self._state is ConnectionState.REMOTE_CLOSING:
                        self._send_close(code, "")
                    await self._write_out()
                # RFC 6455 §7.1.1: the server closes TCP once the close
                # handshake is done, i.e. when the peer's close frame is in.
                with trio.move_on_after(PEER_CLOSE_TIMEOUT_S):
                    while self._state is ConnectionState.LOCAL_CLOSING and not self._out:
                        if self._answered(await self._recv()):
                            break
        finally:
            self._close_socket()

    def _send_close(self, code: int | None, reason: str) -> None:
        """Queue this side's close frame: it closes, or answers the peer's close."""
        self._append(close_frame(code, reason))
        if self._state is ConnectionState.REMOTE_CLOSING:
            self._state = ConnectionState.CLOSED
        else:
            self._state = ConnectionState.LOCAL_CLOSING

    def _answered(self, data: bytes) -> bool:
        """After this side's close: True once the peer's close (or the end, or a
        newly broken rule) arrived; what came before it is dropped."""
        reader = self._reader
        if data:
            if reader.done:
                return False  # a rule broke earlier: nothing more is read, wait for the end
            reader.feed(data)
            if not reader.done:
                return False
        self._state = ConnectionState.CLOSED
        return True

    def _close_socket(self) -> None:
        if not self._closed:
            self._closed = True
            self._pongs.unpark_all()
            self._drained.unpark_all()
            trio.lowlevel.notify_closing(self._sock)
            self._sock.close()


@dataclass(slots=True)
class Upgrade:
    """An opening handshake read off a new socket, to accept or to reject."""

    request: Request
    _sock: socket.socket
    _handshake: H11Handshake
    _flusher: Flusher

    @property
    def path(self) -> str:
        return self.request.target.partition("?")[0]

    def header(self, name: bytes) -> bytes | None:
        """The first value of header ``name`` (lower case)."""
        for key, value in self.request.extra_headers:
            if key.lower() == name:
                return value
        return None

    def accept(self, subprotocol: str | None, *, max_message_bytes: int) -> WebSocket:
        data = self._handshake.send(AcceptConnection(subprotocol=subprotocol))
        ws = WebSocket(self._sock, self._flusher, max_message_bytes=max_message_bytes)
        ws._append(data)  # the 101 response
        ws.flush()
        return ws

    async def reject(self, status: int, body: bytes, *, timeout_s: float) -> None:
        headers = [(b"content-type", b"text/plain"), (b"content-length", b"%d" % len(body))]
        data = self._handshake.send(
            RejectConnection(status_code=status, headers=headers, has_body=True)
        )
        data += self._handshake.send(RejectData(data=body))
        await _write_and_close(self._sock, data, timeout_s)


def adopt(accepted: trio.socket.SocketType) -> socket.socket:
    """Take an accepted socket over from trio: non-blocking, no Nagle delay, and (as
    trio's SocketStream does) at most 16 KiB unsent in the kernel, so a client that
    stops reading shows up as the outbox's backlog, not as megabytes of kernel
    memory per socket."""
    sock = socket.socket(fileno=accepted.detach())
    sock.setblocking(False)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    lowat = getattr(socket, "TCP_NOTSENT_LOWAT", None)
    if lowat is not None:  # pragma: no branch - Linux has it
        sock.setsockopt(socket.IPPROTO_TCP, lowat, _NOTSENT_LOWAT)
    return sock


async def read_upgrade(
    sock: socket.socket, flusher: Flusher, *, timeout_s: float
) -> Upgrade | None:
    """Read the opening handshake; None (socket closed) if it never came or was not HTTP."""
    handshake = H11Handshake(ConnectionType.SERVER)
    with trio.move_on_after(timeout_s):
        while True:
            try:
                data = sock.recv(_RECV_BYTES)
            except BlockingIOError:
                await trio.lowlevel.wait_readable(sock)
                continue
            except OSError:
                break
            if not data:
                break
            try:
                handshake.receive_data(data)
            except RemoteProtocolError:
                await _write_and_close(sock, _BAD_REQUEST, timeout_s)
                return None
            for event in handshake.events():
                if isinstance(event, Request):  # pragma: no branch - a server sees nothing else
                    return Upgrade(event, sock, handshake, flusher)
    _close(sock)
    return None


async def _write_and_close(sock: socket.socket, data: bytes, timeout_s: float) -> None:
    view = memoryview(data)
    try:
        with trio.move_on_after(timeout_s):
            while view:
                try:
                    view = view[sock.send(view) :]
                except BlockingIOError:
                    await trio.lowlevel.wait_writable(sock)
    except OSError:
        pass  # the client left before reading the answer; nothing to tell it
    finally:
        _close(sock)


def _close(sock: socket.socket) -> None:
    trio.lowlevel.notify_closing(sock)
    sock.close()
