"""One WebSocket connection: one writer, replies matched to requests by rid.

A `Connection` wraps an open ``trio_websocket`` connection for as long as it
lives; the session makes a new one for every reconnect. Its reader (`run`)
is the only task that reads: it completes the waiting request for each
OK/ERR by rid and hands every push to a callback. Writes go through a
`trio.StrictFIFOLock`, so frames leave in the order they were queued
(no two writers interleave on the socket). When the socket closes, every waiting request fails
with `ConnectionLost` and the session decides whether to reconnect.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import trio
from trio_websocket import ConnectionClosed, WebSocketConnection

from sandcat.protocol import (
    ClientFrame,
    Err,
    FrameError,
    GoAway,
    Limits,
    Ok,
    RequestError,
    ServerFrame,
    decode_server,
    encode,
)

from .errors import SandcatClientError
from .websocket import MAX_INBOUND_BYTES, ConnectionLost, connect_websocket

__all__ = ["Connection", "ConnectionLost"]

log = logging.getLogger(__name__)

#: Close code the SDK uses when the server sent something that is not a frame.
_INVALID_PAYLOAD = 1007

_INBOUND_LIMITS = Limits(max_frame_bytes=MAX_INBOUND_BYTES)

#: PING interval until the HELLO reply announces the server's heartbeat.
_DEFAULT_PING_INTERVAL_S = 20.0


OnOk = Callable[[Mapping[str, Any]], None]


@dataclass(slots=True)
class _Call:
    done: trio.Event
    on_ok: OnOk | None
    reply: Ok | Err | SandcatClientError | None = None


class Connection:
    """An open WebSocket speaking the Sandcat protocol; see the module docstring.

    Make one with `open`. Args:
        ws: the open WebSocket.
        stream: the byte stream under it, which this object closes.
        on_push: called by the reader for every MSG, READ_STATE and GOAWAY,
            in arrival order; must not block.
        timeout_s: deadline for a reply to arrive, and for closing.
    """

    def __init__(
        self,
        ws: WebSocketConnection,
        stream: trio.abc.Stream,
        *,
        on_push: Callable[[ServerFrame], None],
        timeout_s: float,
    ) -> None:
        self._ws = ws
        self._stream = stream
        self._on_push = on_push
        self._timeout_s = timeout_s
        self._write_lock = trio.StrictFIFOLock()
        self._calls: dict[int, _Call] = {}
        self._next_rid = 0
        self.lost: ConnectionLost | None = None
        self.draining = False
        #: True once this side started a closing handshake (which needs the
        #: WebSocket's reader task to keep running until it completes).
        self.closing = False
        self.closed = trio.Event()
        #: Largest frame the server accepts (from the HELLO reply).
        self.max_frame_bytes = Limits().max_frame_bytes
        self.ping_interval_s = _DEFAULT_PING_INTERVAL_S

    @classmethod
    async def open(
        cls,
        url: str,
        nursery: trio.Nursery,
        *,
        on_push: Callable[[ServerFrame], None],
        timeout_s: float,
        tls: ssl.SSLContext | None = None,
    ) -> Connection:
        """Connect to ``url`` (``ws://`` or ``wss://``); see `connect_websocket`.

        Raises:
            ConnectionLost: the connection or the handshake failed or timed out.
        """
        ws, stream = await connect_websocket(url, nursery, timeout_s=timeout_s, tls=tls)
        return cls(ws, stream, on_push=on_push, timeout_s=timeout_s)

    async def call(self, build: Callable[[int], ClientFrame], *, on_ok: OnOk | None = None) -> Ok:
        """Send the request ``build(rid)`` and wait for its OK.

        ``on_ok`` runs in the reader, before any later frame is handled (the
        session records its own messages from SEND acks there, in seq order).

        Raises:
            SandcatClientError: the server answered ERR.
            ConnectionLost: the socket closed first.
            trio.TooSlowError: no reply within the timeout.
        """
        if self.lost is not None:
            raise self.lost
        rid = self._new_rid()
        frame = build(rid)
        data = encode(frame)
        if len(data) > self.max_frame_bytes:
            raise SandcatClientError(
                "too_large", f"frame of {len(data)} bytes exceeds {self.max_frame_bytes}"
            )
        call = self._calls[rid] = _Call(done=trio.Event(), on_ok=on_ok)
        try:
            with trio.fail_after(self._timeout_s):
                async with self._write_lock:
                    try:
                        await self._ws.send_message(data)
                    except ConnectionClosed as exc:
                        raise self._lose(exc) from exc
                await call.done.wait()
        finally:
            self._calls.pop(rid, None)
        if isinstance(call.reply, Ok):
            return call.reply
        if isinstance(call.reply, Err):
            raise SandcatClientError(call.reply.code, call.reply.message, call.reply.retry_after_ms)
        if isinstance(call.reply, SandcatClientError):
            raise call.reply
        assert self.lost is not None
        raise self.lost

    async def run(self) -> ConnectionLost:
        """Read until the socket closes; return why it closed."""
        while True:
            try:
                data = await self._ws.get_message()
            except ConnectionClosed as exc:
                return self._lose(exc)
            if isinstance(data, str):
                return await self._abort("server sent a text message")
            try:
                frame = decode_server(data, _INBOUND_LIMITS)
            except RequestError as exc:
                # A newer server may push frame types (or send error codes) this
                # SDK does not know: skip pushes, fail the request answered.
                log.debug("skipping a frame: %s", exc)
                self._fail(exc.rid, SandcatClientError(exc.code, f"undecodable reply: {exc}"))
                continue
            except FrameError as exc:
                return await self._abort(f"server sent an invalid frame: {exc}")
            if isinstance(frame, Ok | Err):
                self._reply(frame)
                continue
            if isinstance(frame, GoAway):
                # The server drains: it still answers, but refuses new SENDs.
                self.draining = True
            self._on_push(frame)

    async def aclose(self, code: int = 1000, reason: str = "") -> None:
        """Close with a closing handshake, bounded by the timeout; waiting
        requests fail. Needs the WebSocket's reader to be running."""
        self.closing = True
        with trio.move_on_after(self._timeout_s) as cleanup:
            cleanup.shield = True
            await self._ws.aclose(code, reason)
        self._lose(None, code, reason or "closed by the client")
        self.closed.set()

    async def close_transport(self) -> None:
        """Close the TCP stream, whatever state the WebSocket is in. Idempotent."""
        self._lose(None, None, "transport closed")
        await trio.aclose_forcefully(self._stream)

    def abandon(self, reason: str) -> None:
        """Give the connection up without a closing handshake (the peer seems
        gone); waiting requests fail now. The owner cancels the reader."""
        self._lose(None, None, reason)

    def _fail(self, rid: int, error: SandcatClientError) -> None:
        call = self._calls.get(rid)
        if rid and call is not None and not call.done.is_set():
            call.reply = error
            call.done.set()

    def _reply(self, frame: Ok | Err) -> None:
        call = self._calls.get(frame.rid)
        if call is None or call.done.is_set():
            log.debug("reply to rid %d, which nobody waits for", frame.rid)
            return
        call.reply = frame
        if isinstance(frame, Ok) and call.on_ok is not None:
            call.on_ok(frame.body)
        call.done.set()

    async def _abort(self, reason: str) -> ConnectionLost:
        log.warning("closing the connection: %s", reason)
        await self.aclose(_INVALID_PAYLOAD, reason[:120])
        assert self.lost is not None
        return self.lost

    def _lose(
        self, exc: ConnectionClosed | None, code: int | None = None, reason: str = ""
    ) -> ConnectionLost:
        if self.lost is None:
            if exc is not None and exc.reason is not None:
                code, reason = exc.reason.code, exc.reason.reason or exc.reason.name
            self.lost = ConnectionLost(code, reason)
            for call in self._calls.values():
                call.done.set()
        return self.lost

    def _new_rid(self) -> int:
        # rid is < 2**32 and never 0 (0 marks pushes); wrapping is safe because
        # a request never waits that long.
        self._next_rid = self._next_rid % (Limits.max_rid - 1) + 1
        return self._next_rid
