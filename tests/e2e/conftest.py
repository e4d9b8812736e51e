"""End-to-end fixtures: the SDK's cast of people on a real in-process server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from sandcat.app import Server
from sandcat.client import HttpApi
from tests.client.cast import Cast


@pytest.fixture
async def cast(server: Server, ws_url: str) -> AsyncIterator[Cast]:
    http_url = f"http://127.0.0.1:{server.http_port}"
    async with HttpApi(http_url) as api:
        yield Cast(api, http_url=http_url, ws_url=ws_url)
