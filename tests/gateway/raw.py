"""A frame-level WebSocket client for gateway tests (no SDK: raw frames)."""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable

import trio
from trio_websocket import ConnectionClosed, WebSocketConnection

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
