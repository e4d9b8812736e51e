"""Fixtures for gateway tests: raw frame-level connections to a real server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import trio
from trio_websocket import connect_websocket_url

from tests.gateway.raw import TIMEOUT_S, Connect, Raw


@pytest.fixture
async def connect(nursery: trio.Nursery, ws_url: str) -> AsyncIterator[Connect]:
    """Open raw connections; all are closed, sockets included, at teardown."""
    opened: list[Raw] = []

    async def open_raw(
        token: str | None = None,
        *,
        device: str = "d1",
        subprotocols: list[str] | None = None,
        url: str | None = None,
    ) -> Raw:
        with trio.fail_after(TIMEOUT_S):
            ws = await connect_websocket_url(
                nursery, url or ws_url, subprotocols=subprotocols or ["sandcat.v1"]
            )
        raw = Raw(ws)
        opened.append(raw)
        if token is not None:
            await raw.hello(token, device)
        return raw

    yield open_raw
    with trio.move_on_after(TIMEOUT_S):
        for raw in opened:
            await raw.ws.aclose()
            # trio-websocket's client keeps its TCP socket open when the server
            # closed first (aclose returns early once a close reason is set).
            await raw.ws._close_stream()
