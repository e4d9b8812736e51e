"""A lean client link: just enough WebSocket (RFC 6455) to load a Sandcat server.

The load generator must be cheaper per frame than the server it measures, so
this is not the SDK and not trio-websocket: a non-blocking stdlib socket
driven by ``trio.lowlevel.wait_readable``/``wait_writable``, frames built and
parsed by hand, many frames per system call.

Client frames are masked with the all-zero key: RFC 6455 §5.3 requires the
mask bit and a key, and a zero key is a valid key (the XOR is then free). It
is predictable, which matters only against proxies a browser might poison;
none sits between the bench and the server.
"""

from __future__ import annotations

import base64
import contextlib
import os
import socket
import struct
from collections.abc import Iterable

import msgpack
import trio

#: The handshake answer must fit in this (a 101 with a few headers).
_MAX_HANDSHAKE_BYTES = 16384
_RECV_BYTES = 262144
_ZERO_MASK = b"\x00\x00\x00\x00"


class LinkClosed(Exception):
    """The server closed the connection (``code`` is its close code, or -1)."""

    def __init__(self, code: int, reason: str = "") -> None:
        super().__init__(f"closed {code} {reason}".strip())
        self.code = code


def frame_header(opcode: int, length: int) -> bytes:
    """The header of one final, masked (zero key) client frame."""
    first = 0x80 | opcode
    if length < 126:
        return bytes((first, 0x80 | length)) + _ZERO_MASK
    if length < 65536:
        return struct.pack("!BBH", first, 0x80 | 126, length) + _ZERO_MASK
    return struct.pack("!BBQ", first, 0x80 | 127, length) + _ZERO_MASK


def pack(frame: list[object]) -> bytes:
    """A Sandcat frame ``[op, rid, body]`` as one binary WebSocket message."""
    data: bytes = msgpack.packb(frame, use_bin_type=True)
    return frame_header(0x2, len(data)) + data


class Link:
    """One client connection; ``send`` queues bytes, ``receive`` returns payloads."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._inbox = bytearray()
        self.closed = False
        #: Whether ``receive`` returns text messages too (XMPP over WebSocket is text).
        self.text = False

    @classmethod
    async def open(
        cls,
        host: str,
        port: int,
        *,
        path: str = "/ws",
        bearer: str | None = None,
        timeout_s: float = 30.0,
        subprotocol: str = "sandcat.v1",
    ) -> Link:
        """Connect and complete the upgrade; raises ``LinkClosed`` if refused."""
        with trio.fail_after(timeout_s):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                sock.connect((host, port))
            except BlockingIOError:
                await trio.lowlevel.wait_writable(sock)
                error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if error:
                    sock.close()
                    raise OSError(error, os.strerror(error)) from None
            link = cls(sock)
            key = base64.b64encode(os.urandom(16)).decode()
            request = (
                f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: {subprotocol}\r\n"
                + (f"Authorization: Bearer {bearer}\r\n" if bearer else "")
                + "\r\n"
            )
            await link.send(request.encode())
            while b"\r\n\r\n" not in link._inbox:
                if len(link._inbox) > _MAX_HANDSHAKE_BYTES:
                    raise LinkClosed(-1, "handshake answer too long")
                await link._fill()
            head, _, rest = bytes(link._inbox).partition(b"\r\n\r\n")
            status = head.split(b"\r\n", 1)[0]
            if b" 101 " not in status + b" ":
                sock.close()
                raise LinkClosed(-1, status.decode("latin-1"))
            link._inbox = bytearray(rest)
            return link

    async def send(self, data: bytes | bytearray | memoryview) -> None:
        """Write all of ``data`` (one system call unless the kernel buffer is full)."""
        view = memoryview(data)
        while view:
            try:
                sent = self._sock.send(view)
            except BlockingIOError:
                await trio.lowlevel.wait_writable(self._sock)
                continue
            except OSError as exc:
                self.closed = True
                raise LinkClosed(-1, str(exc)) from exc
            view = view[sent:]
        await trio.lowlevel.checkpoint_if_cancelled()

    async def send_frames(self, frames: Iterable[list[object]]) -> None:
        await self.send(b"".join(pack(frame) for frame in frames))

    async def _fill(self) -> None:
        while True:
            try:
                chunk = self._sock.recv(_RECV_BYTES)
            except BlockingIOError:
                await trio.lowlevel.wait_readable(self._sock)
                continue
            except OSError as exc:
                self.closed = True
                raise LinkClosed(-1, str(exc)) from exc
            if not chunk:
                self.closed = True
                raise LinkClosed(-1, "connection reset without a close frame")
            self._inbox += chunk
            return

    async def receive(self) -> list[bytes]:
        """The payloads of every complete binary message received so far (at least one).

        Pings are answered; a close frame raises ``LinkClosed`` with its code.
        """
        while True:
            payloads, pongs = self._parse()
            if pongs:
                await self.send(b"".join(pongs))
            if payloads:
                await trio.lowlevel.checkpoint_if_cancelled()
                return payloads
            await self._fill()

    def _parse(self) -> tuple[list[bytes], list[bytes]]:
        inbox = self._inbox
        payloads: list[bytes] = []
        pongs: list[bytes] = []
        at = 0
        end = len(inbox)
        while end - at >= 2:
            first, second = inbox[at], inbox[at + 1]
            length = second & 0x7F
            start = at + 2
            if length == 126:
                if end - at < 4:
                    break
                (length,) = struct.unpack_from("!H", inbox, at + 2)
                start = at + 4
            elif length == 127:
                if end - at < 10:
                    break
                (length,) = struct.unpack_from("!Q", inbox, at + 2)
                start = at + 10
            if end - start < length:
                break
            opcode = first & 0x0F
            payload = bytes(inbox[start : start + length])
            at = start + length
            if opcode == 0x2 or (opcode == 0x1 and self.text):
                payloads.append(payload)
            elif opcode == 0x9:
                pongs.append(frame_header(0xA, len(payload)) + payload)
            elif opcode == 0x8:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else -1
                del inbox[:at]
                self.closed = True
                raise LinkClosed(code, payload[2:].decode("utf-8", "replace"))
            else:
                # Text, continuation or unsolicited pong: Sandcat sends none
                # that the bench needs; skip it.
                continue
        if at:
            del inbox[:at]
        return payloads, pongs

    async def close(self, code: int = 1000) -> None:
        """Send a close frame and drop the socket (no waiting for the answer)."""
        if not self.closed:
            self.closed = True
            payload = struct.pack("!H", code)
            # The socket is going away either way: a failed close frame is no loss.
            with contextlib.suppress(OSError):
                self._sock.send(frame_header(0x8, len(payload)) + payload)
        self._sock.close()
        await trio.lowlevel.checkpoint()


def unpack(payload: bytes) -> tuple[int, int, dict[str, object]]:
    """A server frame as ``(op, rid, body)``."""
    op, rid, body = msgpack.unpackb(payload, raw=False)
    return int(op), int(rid), body
