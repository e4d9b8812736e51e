"""``UploadBody`` against scripted ASGI ``receive`` messages (the edges a socket cannot reach).

The socket-level behaviour (limits, disconnects, memory) is in tests/files.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trio

from sandcat.api.upload_stream import BodyIncomplete, StreamedUploads, UploadBody, UploadTimeout


def _script(*messages: dict[str, Any]) -> Callable[[], Awaitable[dict[str, Any]]]:
    pending = list(messages)

    async def receive() -> dict[str, Any]:
        if not pending:
            await trio.sleep_forever()
        return pending.pop(0)

    return receive


def _part(data: bytes, more: bool = True) -> dict[str, Any]:
    return {"type": "http.request", "body": data, "more_body": more}


async def _read(body: UploadBody, idle_timeout_s: float = 5) -> bytes:
    return b"".join([chunk async for chunk in body.chunks(idle_timeout_s=idle_timeout_s)])


async def test_chunks_end_only_when_the_server_says_the_body_is_complete() -> None:
    body = UploadBody(_script(_part(b"ab"), _part(b""), _part(b"c", more=False)), declared_length=3)
    assert await _read(body) == b"abc"
    assert body.complete
    assert await _read(body) == b""


async def test_a_disconnect_before_the_end_is_an_error_not_a_short_body() -> None:
    body = UploadBody(_script(_part(b"ab"), {"type": "http.disconnect"}), declared_length=10)
    with pytest.raises(BodyIncomplete):
        await _read(body)
    with pytest.raises(BodyIncomplete):  # and it stays gone
        await _read(body)
    assert not await body.discard(max_bytes=100, timeout_s=1)
    assert await body.receive_for_quart() == {
        "type": "http.request",
        "body": b"",
        "more_body": False,
    }
    assert await body.receive_for_quart() == {"type": "http.disconnect"}


async def test_a_body_shorter_than_its_content_length_is_refused() -> None:
    body = UploadBody(_script(_part(b"ab", more=False)), declared_length=3)
    with pytest.raises(BodyIncomplete, match="received 2 bytes of a 3-byte body"):
        await _read(body)


async def test_an_idle_client_gets_408() -> None:
    body = UploadBody(_script(_part(b"ab")), declared_length=None)
    with pytest.raises(UploadTimeout):
        await _read(body, idle_timeout_s=0.05)


async def test_discard_stops_after_its_byte_budget() -> None:
    body = UploadBody(
        _script(*[_part(b"x" * 10)] * 5, _part(b"", more=False)), declared_length=None
    )
    assert not await body.discard(max_bytes=15, timeout_s=5)
    assert await body.discard(max_bytes=100, timeout_s=5)


async def test_routes_outside_the_streamed_endpoints_reach_the_app_untouched() -> None:
    from werkzeug.routing import Map, Rule

    seen: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(scope)

    urls = Map([Rule("/up", endpoint="up", methods=["POST"]), Rule("/other", endpoint="other")])
    middleware = StreamedUploads(app, urls, {"up"})
    receive = _script()

    async def send(message: dict[str, Any]) -> None:
        raise AssertionError(message)

    def scope(method: str, path: str, length: bytes = b"5") -> dict[str, Any]:
        headers = [(b"content-length", length)]
        return {"type": "http", "method": method, "path": path, "headers": headers}

    await middleware(scope("POST", "/other"), receive, send)
    await middleware(scope("POST", "/missing"), receive, send)
    await middleware(scope("GET", "/up"), receive, send)
    await middleware({"type": "lifespan"}, receive, send)
    assert all("extensions" not in s for s in seen)
    await middleware(scope("POST", "/up", b"x"), receive, send)
    assert isinstance(seen[-1]["extensions"]["sandcat.upload_body"], UploadBody)
