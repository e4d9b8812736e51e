"""Client WebSocket frames parsed by hand, sans-IO (RFC 6455 §5).

The gateway read client frames through wsproto until the profile showed its
per-frame objects (header, masker, frame and event tuples, a generator step
per frame) were most of the cost of reading a message (bench/RESULTS.md, the
1:1 hot path). ``FrameReader`` does the same work with a few slices per
frame and enforces every rule wsproto enforced for the gateway:

- every client frame is masked (§5.1), no RSV bit is set (no extension is
  negotiated, §5.2), the opcode is one of the six defined ones;
- a length uses the shortest encoding and the 64-bit form's top bit is 0;
- control frames are final and carry at most 125 bytes (§5.5);
- a data frame starts a message only when none is in progress, and a
  continuation only continues one (§5.4);
- text messages are UTF-8, checked as their fragments arrive (§8.1); a close
  frame's payload is empty or a valid code (§7.4) and a UTF-8 reason;
- a message's payload (all its fragments) is at most ``max_message_bytes``:
  a frame whose header says the message would grow past it is refused before
  its payload is read, so nothing larger is ever buffered.

A broken rule ends reading with the close code the RFC names (1002 protocol
error, 1007 invalid payload, 1009 too big) and the reason wsproto gave.
"""

from __future__ import annotations

import codecs
import struct
from collections import deque
from typing import Final

#: Opcodes (§5.2).
CONTINUATION: Final = 0x0
TEXT: Final = 0x1
BINARY: Final = 0x2
CLOSE: Final = 0x8
PING: Final = 0x9
PONG: Final = 0xA

#: Close codes this side reads or sends (§7.4.1).
NORMAL = 1000
PROTOCOL_ERROR = 1002
NO_STATUS = 1005
ABNORMAL = 1006
INVALID_DATA = 1007
TOO_BIG = 1009
#: Codes an endpoint must never put in a close frame (§7.4.1).
LOCAL_ONLY = frozenset({NO_STATUS, ABNORMAL, 1015})
#: Codes below 3000 a peer may send (wsproto's list); the rest up to 2999 are reserved.
_DEFINED = frozenset({1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013})
#: A control frame's payload limit (§5.5).
MAX_CONTROL_PAYLOAD = 125

_U16 = struct.Struct("!H")
_U64 = struct.Struct("!Q")


class FrameError(Exception):
    """A client broke RFC 6455; ``code`` is the close code to end with."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def unmask(payload: bytes | bytearray | memoryview, key: bytes) -> bytes:
    """``payload`` XOR the repeated 4-byte masking ``key`` (§5.3)."""
    size = len(payload)
    if not size:
        return b""
    mask = (key * (size // 4 + 1))[:size]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(mask, "little")).to_bytes(
        size, "little"
    )


def close_code_and_reason(payload: bytes) -> tuple[int, str]:
    """A peer's close frame payload as (code, reason); ``NO_STATUS`` if it has none."""
    if not payload:
        return NO_STATUS, ""
    if len(payload) == 1:
        raise FrameError(PROTOCOL_ERROR, "CLOSE with 1 byte payload")
    (code,) = _U16.unpack_from(payload)
    if code < 1000 or code > 4999:
        raise FrameError(PROTOCOL_ERROR, "CLOSE with invalid code")
    if code in LOCAL_ONLY:
        raise FrameError(PROTOCOL_ERROR, "remote CLOSE with local-only reason")
    if code < 3000 and code not in _DEFINED:
        raise FrameError(PROTOCOL_ERROR, "CLOSE with unknown reserved code")
    try:
        reason = payload[2:].decode()
    except UnicodeDecodeError as exc:
        raise FrameError(INVALID_DATA, f"Error decoding CLOSE reason: {exc}") from None
    return code, reason


def close_frame(code: int | None, reason: str = "") -> bytes:
    """A server's close frame: ``code`` (None: no payload) and the reason cut to fit."""
    if code is None:
        return b"\x88\x00"
    if code in LOCAL_ONLY:
        code = NORMAL
    raw = reason.encode()
    if len(raw) > MAX_CONTROL_PAYLOAD - 2:
        # Cut at a character boundary so the reason stays UTF-8.
        raw = raw[: MAX_CONTROL_PAYLOAD - 2].decode(errors="ignore").encode()
    payload = _U16.pack(code) + raw
    return bytes((0x88, len(payload))) + payload


def control_frame(opcode: int, payload: bytes) -> bytes:
    """An unmasked ping or pong (``payload`` at most 125 bytes)."""
    return bytes((0x80 | opcode, len(payload))) + payload


class FrameReader:
    """Parses what a client sends into whole messages and control frames.

    ``feed`` takes bytes as they arrive and returns the pings and pongs they
    completed, as (opcode, payload) pairs in order; whole messages go to
    ``messages``. Reading ends at the peer's close frame (``closed``: its code
    and reason) or at the first broken rule (``error``); after either the
    reader takes no more bytes (``done``).
    """

    __slots__ = (
        "_buffer",
        "_decoder",
        "_max",
        "_opcode",
        "_parts",
        "_size",
        "closed",
        "error",
        "messages",
    )

    def __init__(self, max_message_bytes: int) -> None:
        self._max = max_message_bytes
        #: Bytes of a frame not complete yet.
        self._buffer = bytearray()
        #: The data opcode of the fragmented message in progress (0: none).
        self._opcode = 0
        self._parts: list[bytes] = []
        self._size = 0
        self._decoder: codecs.IncrementalDecoder | None = None
        self.messages: deque[bytes | str] = deque()
        self.closed: tuple[int, str] | None = None
        self.error: FrameError | None = None

    @property
    def done(self) -> bool:
        return self.closed is not None or self.error is not None

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        """Parse ``data`` after whatever was left over; the pings and pongs it completed."""
        controls: list[tuple[int, bytes]] = []
        if self.done:
            return controls
        buffer: bytes | bytearray
        if self._buffer:
            self._buffer += data
            buffer = self._buffer
        else:
            buffer = data
        try:
            pos = self._parse(buffer, controls)
        except FrameError as exc:
            self.error = exc
            self._buffer = bytearray()
            return controls
        if buffer is self._buffer:
            del self._buffer[:pos]
        elif pos < len(buffer):
            self._buffer = bytearray(buffer[pos:])
        return controls

    def _parse(self, buffer: bytes | bytearray, controls: list[tuple[int, bytes]]) -> int:
        """Take every whole frame in ``buffer``; the offset of the first one not whole."""
        end = len(buffer)
        pos = 0
        while end - pos >= 2:
            first = buffer[pos]
            second = buffer[pos + 1]
            if first & 0x70:
                raise FrameError(PROTOCOL_ERROR, "Reserved bit set unexpectedly")
            opcode = first & 0x0F
            length = second & 0x7F
            head = pos + 2
            if opcode >= CLOSE:
                if opcode > PONG:
                    raise FrameError(PROTOCOL_ERROR, f"Invalid opcode {opcode:#x}")
                if not first & 0x80:
                    raise FrameError(PROTOCOL_ERROR, "Invalid attempt to fragment control frame")
                if length > MAX_CONTROL_PAYLOAD:
                    raise FrameError(PROTOCOL_ERROR, "Control frame with payload len > 125")
            elif opcode > BINARY:
                raise FrameError(PROTOCOL_ERROR, f"Invalid opcode {opcode:#x}")
            elif length == 126:
                if end - head < 2:
                    break
                (length,) = _U16.unpack_from(buffer, head)
                head += 2
                if length <= MAX_CONTROL_PAYLOAD:
                    raise FrameError(
                        PROTOCOL_ERROR, "Payload length used 2 bytes when 1 would have sufficed"
                    )
            elif length == 127:
                if end - head < 8:
                    break
                (length,) = _U64.unpack_from(buffer, head)
                head += 8
                if length <= 0xFFFF:
                    raise FrameError(
                        PROTOCOL_ERROR, "Payload length used 8 bytes when 2 would have sufficed"
                    )
                if length >> 63:
                    raise FrameError(PROTOCOL_ERROR, "8-byte payload length with non-zero MSB")
            if not second & 0x80:
                raise FrameError(PROTOCOL_ERROR, "server received unexpected unmasked frame")
            if opcode < CLOSE:
                if opcode == CONTINUATION:
                    if not self._opcode:
                        raise FrameError(PROTOCOL_ERROR, "unexpected CONTINUATION")
                elif self._opcode:
                    raise FrameError(PROTOCOL_ERROR, f"expected CONTINUATION, got {opcode:#x}")
                if self._size + length > self._max:
                    raise FrameError(TOO_BIG, f"message larger than {self._max} bytes")
            stop = head + 4 + length
            if stop > end:
                break
            payload = unmask(buffer[head + 4 : stop], bytes(buffer[head : head + 4]))
            pos = stop
            if opcode >= CLOSE:
                if opcode == CLOSE:
                    self.closed = close_code_and_reason(payload)
                    return pos
                controls.append((opcode, payload))
            elif first & 0x80 and not self._opcode:
                # A whole message in one frame: the common case.
                self.messages.append(_text(payload) if opcode == TEXT else payload)
            else:
                self._fragment(opcode, payload, final=bool(first & 0x80))
        return pos

    def _fragment(self, opcode: int, payload: bytes, *, final: bool) -> None:
        if opcode:  # the first fragment
            self._opcode = opcode
            if opcode == TEXT:
                self._decoder = codecs.getincrementaldecoder("utf-8")()
        self._size += len(payload)
        if self._decoder is not None:
            try:
                self._decoder.decode(payload, final)
            except UnicodeDecodeError as exc:
                raise FrameError(INVALID_DATA, str(exc)) from None
        self._parts.append(payload)
        if final:
            whole = b"".join(self._parts)
            self.messages.append(whole.decode() if self._opcode == TEXT else whole)
            self._opcode, self._parts, self._size, self._decoder = 0, [], 0, None


def _text(payload: bytes) -> str:
    try:
        return payload.decode()
    except UnicodeDecodeError as exc:
        raise FrameError(INVALID_DATA, str(exc)) from None
