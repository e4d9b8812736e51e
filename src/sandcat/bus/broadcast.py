"""Ephemeral fan-out between instances: publish a small event, every instance hears it.

Unlike the bus, nothing here is durable: an instance that is not listening
when an event is published never sees it, and a publish that fails is
dropped. It carries what is only worth delivering now (READ_STATE pushes,
session ends) to the sockets of every instance. ``LocalBroadcast`` is the
in-process implementation (embedded mode, and several instances in one
process in tests); ``sandcat.bus.redis`` is the Redis one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Protocol

import trio

from sandcat.errors import Unavailable

#: Called with each event's bytes as it arrives; must not block.
Deliver = Callable[[bytes], None]


class BroadcastUnavailable(Unavailable):
    """The broadcast backend did not take a publish in time, or cannot be reached."""


class Broadcast(Protocol):
    async def publish(self, data: bytes) -> None:
        """Hand ``data`` to every listener, within a deadline; ``BroadcastUnavailable`` if not."""
        ...

    async def listen(
        self, deliver: Deliver, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Call ``deliver`` for every event published from now on (own ones included),
        until cancelled; reports started once listening. Reconnects by itself."""
        ...


class LocalBroadcast:
    """Every listener of this object (in this process) hears every publish."""

    def __init__(self) -> None:
        self._listeners: list[Deliver] = []

    async def publish(self, data: bytes) -> None:
        for deliver in list(self._listeners):
            deliver(data)
        await trio.lowlevel.checkpoint()

    async def listen(
        self, deliver: Deliver, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        self._listeners.append(deliver)
        try:
            task_status.started()
            await trio.sleep_forever()
        finally:
            self._listeners.remove(deliver)


@asynccontextmanager
async def open_broadcast(
    redis_url: str, *, channel: str, timeout_s: float
) -> AsyncIterator[Broadcast | None]:
    """The Redis broadcast at ``redis_url``, or None without one (a single instance)."""
    if not redis_url:
        yield None
        return
    from sandcat.bus.redis import open_redis_broadcast

    async with open_redis_broadcast(redis_url, channel=channel, timeout_s=timeout_s) as broadcast:
        yield broadcast
