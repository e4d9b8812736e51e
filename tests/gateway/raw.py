"""A frame-level WebSocket client for gateway tests (no SDK: raw frames)."""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from typing import Any

import trio
from trio_websocket import ConnectionClosed, WebSocketConnection
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Event,
    Request,
    TextMessage,
)

from sandcat.protocol import Err, Hello, Ok, decode_server, encode

TIMEOUT_S = 5


class Raw:
    """One test connection; ``pushes`` collects server pushes seen while waiting."""

    def __init__(self, ws: WebSocketConnection) -> None:
        self.ws = ws
        self.rids = itertools.count(1)
        self.pushes: list[object] = []

    def rid(self) -> int:
        return next(self.rids)

    async def send(self, data: bytes | str) -> None:
        await self.ws.send_message(data)

    async def recv(self) -> object:
        with trio.fail_after(TIMEOUT_S):
            return decode_server(bytes(await self.ws.get_message()))

    async def reply(self, rid: int) -> object:
        """Wait for the OK/ERR answering ``rid``, keeping pushes aside."""
        while True:
            frame = await self.recv()
            if isinstance(frame, Ok | Err) and frame.rid == rid:
                return frame
            self.pushes.append(frame)

    async def request(self, frame: object) -> object:
        await self.send(encode(frame))  # type: ignore[arg-type]
        return await self.reply(frame.rid)  # type: ignore[attr-defined]

    async def push(self) -> object:
        if self.pushes:
            return self.pushes.pop(0)
        return await self.recv()

    async def close_code(self) -> int:
        """Read until the server closes; the close code it sent."""
        with trio.fail_after(TIMEOUT_S):
            while True:
                try:
                    await self.ws.get_message()
                except ConnectionClosed as exc:
                    return -1 if exc.reason is None else exc.reason.code

    async def hello(self, token: str, device: str = "d1") -> Ok:
        reply = await self.request(
            Hello(rid=self.rid(), token=token, device=device, platform="test")
        )
        assert isinstance(reply, Ok), reply
        return reply


Connect = Callable[..., Awaitable[Raw]]


def ok_body(reply: object) -> dict[str, Any]:
    """The body of an OK (failing on anything else), loosely typed for asserts."""
    assert isinstance(reply, Ok), reply
    return dict(reply.body)


async def frames_until_close(raw: Raw) -> tuple[list[object], int]:
    """Every frame still in flight (pushes kept aside first), then the close code."""
    frames, raw.pushes = raw.pushes, []
    with trio.fail_after(TIMEOUT_S):
        while True:
            try:
                message = await raw.ws.get_message()
            except ConnectionClosed as exc:
                return frames, -1 if exc.reason is None else exc.reason.code
            assert isinstance(message, bytes), message
            frames.append(decode_server(message))


class Deaf:
    """A client that never answers WebSocket pings (trio-websocket always does).

    Hand-rolled on wsproto: just enough of a client to say HELLO and then wait
    for the server to give up on it, or to misbehave at the WebSocket level.
    """

    def __init__(self, stream: trio.SocketStream) -> None:
        self._stream = stream
        self._ws = WSConnection(ConnectionType.CLIENT)
        self._closing: CloseConnection | None = None

    async def __aenter__(self) -> Deaf:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._stream.aclose()

    @classmethod
    async def open(cls, port: int) -> Deaf:
        with trio.fail_after(TIMEOUT_S):
            deaf = cls(await trio.open_tcp_stream("127.0.0.1", port))
            await deaf._write(Request(host="127.0.0.1", target="/ws", subprotocols=["sandcat.v1"]))
            accepted = await deaf._next_event()
        assert isinstance(accepted, AcceptConnection), accepted
        return deaf

    async def request(self, frame: object) -> object:
        """Send a request frame; its reply (this client expects no pushes)."""
        await self._write(BytesMessage(data=encode(frame)))  # type: ignore[arg-type]
        with trio.fail_after(TIMEOUT_S):
            while True:
                event = await self._next_event()
                assert not isinstance(event, CloseConnection), event
                if isinstance(event, BytesMessage):
                    return decode_server(bytes(event.data))

    async def close_code(self) -> int:
        """Ignore everything (pings included) until the server closes; its code."""
        with trio.fail_after(TIMEOUT_S):
            while True:
                event = await self._next_event()
                if isinstance(event, CloseConnection):
                    self._closing = event
                    return int(event.code)

    async def send_text(self, text: str) -> None:
        await self._write(TextMessage(data=text))

    async def send_raw(self, data: bytes) -> None:
        """Bytes as they are, whatever state wsproto thinks the connection is in."""
        await self._stream.send_all(data)

    async def finish_close(self) -> None:
        """Answer the server's close (after `close_code`) and wait for the end of the stream."""
        assert self._closing is not None
        await self._write(self._closing.response())
        with trio.fail_after(TIMEOUT_S):
            while await self._stream.receive_some(65536):
                pass

    async def _write(self, event: Event) -> None:
        await self._stream.send_all(self._ws.send(event))

    async def _next_event(self) -> Event:
        while True:
            for event in self._ws.events():
                return event
            data = await self._stream.receive_some(65536)
            self._ws.receive_data(data or None)
