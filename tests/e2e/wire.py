"""A lean pipelined frame client for end-to-end tests: many requests in flight."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio
from trio_websocket import ConnectionClosed, WebSocketConnection, connect_websocket_url

from sandcat.protocol import Err, Hello, Ok, decode_server, encode

CALL_TIMEOUT_S = 10


class Wire:
    def __init__(self, ws: WebSocketConnection) -> None:
        self.ws = ws
        self._rids = itertools.count(1)
        self._waiting: dict[int, trio.MemorySendChannel[Ok | Err]] = {}
        self.pushes: list[object] = []
        self.closed: int | None = None

    def rid(self) -> int:
        return next(self._rids)

    async def _read(self) -> None:
        while True:
            try:
                data = await self.ws.get_message()
            except ConnectionClosed as exc:
                self.closed = -1 if exc.reason is None else exc.reason.code
                for waiter in self._waiting.values():
                    waiter.close()
                return
            frame = decode_server(bytes(data))
            if isinstance(frame, Ok | Err) and frame.rid in self._waiting:
                self._waiting.pop(frame.rid).send_nowait(frame)
            else:
                self.pushes.append(frame)

    async def call(self, frame: object) -> Ok | Err:
        """Send a request and wait for its reply; ConnectionClosed if the link dies."""
        rid: int = frame.rid  # type: ignore[attr-defined]
        return await self.call_raw(rid, encode(frame))  # type: ignore[arg-type]

    async def call_raw(self, rid: int, data: bytes) -> Ok | Err:
        """Send an encoded request (which may be one ``encode`` refuses) with ``rid``."""
        send, receive = trio.open_memory_channel[Ok | Err](1)
        self._waiting[rid] = send
        await self.ws.send_message(data)
        with trio.fail_after(CALL_TIMEOUT_S):
            try:
                return await receive.receive()
            except trio.EndOfChannel:
                raise ConnectionClosed(None) from None


@asynccontextmanager
async def open_wire(url: str, token: str, device: str) -> AsyncIterator[Wire]:
    async with trio.open_nursery() as nursery:
        with trio.fail_after(CALL_TIMEOUT_S):
            ws = await connect_websocket_url(nursery, url, subprotocols=["sandcat.v1"])
        wire = Wire(ws)
        nursery.start_soon(wire._read)
        try:
            reply = await wire.call(Hello(rid=wire.rid(), token=token, device=device, platform="t"))
            assert isinstance(reply, Ok), reply
            yield wire
        finally:
            with trio.move_on_after(2) as cleanup:
                cleanup.shield = True
                await ws.aclose()
                # trio-websocket's client keeps its socket when the server closed first.
                await ws._close_stream()
            nursery.cancel_scope.cancel()
