"""The broadcast contract, in process and on Redis (Valkey): every listener hears every
publish made after it started listening; a Redis outage is ``BroadcastUnavailable``
for publishers and a reconnect for listeners."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import trio

from sandcat.bus.broadcast import Broadcast, BroadcastUnavailable, LocalBroadcast, open_broadcast
from sandcat.bus.redis import open_redis_broadcast
from tests.postgres import free_port


@pytest.fixture(params=["local", "redis"])
async def broadcast(request: pytest.FixtureRequest) -> AsyncIterator[Broadcast]:
    if request.param == "local":
        yield LocalBroadcast()
        return
    url = request.getfixturevalue("redis_url")
    channel = request.getfixturevalue("redis_channel")
    async with open_broadcast(url, channel=channel, timeout_s=5) as redis:
        assert redis is not None
        yield redis


class Heard:
    def __init__(self) -> None:
        self.events: list[bytes] = []
        self._changed = trio.Event()

    def __call__(self, data: bytes) -> None:
        self.events.append(data)
        self._changed.set()
        self._changed = trio.Event()

    async def wait_for(self, n: int) -> list[bytes]:
        with trio.fail_after(5):
            while len(self.events) < n:
                await self._changed.wait()
        return self.events


async def test_every_listener_hears_every_publish_in_order(
    broadcast: Broadcast, nursery: trio.Nursery
) -> None:
    first, second = Heard(), Heard()
    await nursery.start(broadcast.listen, first)
    await nursery.start(broadcast.listen, second)
    sent = [f"event-{i}".encode() for i in range(50)] + [b"", b"\x00\xff" * 1000]
    for data in sent:
        await broadcast.publish(data)
    assert await first.wait_for(len(sent)) == sent
    assert await second.wait_for(len(sent)) == sent


async def test_a_listener_that_stopped_hears_nothing_more(
    broadcast: Broadcast, nursery: trio.Nursery
) -> None:
    stays, leaves = Heard(), Heard()
    await nursery.start(broadcast.listen, stays)
    scope = trio.CancelScope()

    async def listen_until_cancelled(task_status: trio.TaskStatus[None]) -> None:
        with scope:
            await broadcast.listen(leaves, task_status=task_status)

    await nursery.start(listen_until_cancelled)
    await broadcast.publish(b"one")
    await leaves.wait_for(1)
    scope.cancel()
    await trio.sleep(0.05)
    await broadcast.publish(b"two")
    assert await stays.wait_for(2) == [b"one", b"two"]
    assert leaves.events == [b"one"]


async def test_no_redis_url_means_no_broadcast() -> None:
    async with open_broadcast("", channel="x", timeout_s=1) as none:
        assert none is None


async def test_an_unreachable_redis_fails_at_open() -> None:
    port = free_port()  # nothing listens there
    with pytest.raises(BroadcastUnavailable, match="unreachable"):
        async with open_redis_broadcast(f"redis://127.0.0.1:{port}", channel="x", timeout_s=1):
            pass  # pragma: no cover


async def test_a_bad_redis_url_fails_at_open() -> None:
    with pytest.raises(BroadcastUnavailable, match="bad redis url"):
        async with open_redis_broadcast("redis://127.0.0.1:notaport", channel="x", timeout_s=1):
            pass  # pragma: no cover
