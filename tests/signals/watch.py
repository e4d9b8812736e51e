"""Waiting for (or making sure of the absence of) pushes on raw test connections."""

from __future__ import annotations

from typing import Any, TypeVar

import trio
from trio_websocket import ConnectionClosed

from sandcat.protocol import CallEvent, Err, Ok, decode_server
from tests.gateway.raw import TIMEOUT_S, Raw

T = TypeVar("T")


async def next_push(raw: Raw, kind: type[T], *, timeout_s: float = TIMEOUT_S) -> T:
    """The next push of type ``kind`` (earlier pushes of other types are dropped)."""
    with trio.fail_after(timeout_s):
        while True:
            frame = await raw.push()
            if isinstance(frame, kind):
                return frame


async def pushes_within(raw: Raw, kind: type[T], seconds: float) -> list[T]:
    """Every push of type ``kind`` that arrives within ``seconds``."""
    seen: list[T] = [frame for frame in raw.pushes if isinstance(frame, kind)]
    raw.pushes = [frame for frame in raw.pushes if not isinstance(frame, kind)]
    with trio.move_on_after(seconds):
        while True:
            try:
                frame = decode_server(bytes(await raw.ws.get_message()))
            except ConnectionClosed:
                return seen
            if isinstance(frame, kind):
                seen.append(frame)
    return seen


async def call_event(raw: Raw, action: str) -> CallEvent:
    """The next call event with ``action`` (other pushes are skipped)."""
    while True:
        pushed = await next_push(raw, CallEvent)
        if pushed.action == action:
            return pushed


def err_code(reply: object) -> str:
    assert isinstance(reply, Err), reply
    return str(reply.code)


def ok(reply: object) -> dict[str, Any]:
    assert isinstance(reply, Ok), reply
    return dict(reply.body)
