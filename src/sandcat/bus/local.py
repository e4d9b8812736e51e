"""The in-process bus: every subscription of this process gets every record.

This is what a single instance does without a bus at all (the router
delivers locally); it is the reference implementation of the bus contract,
and runs the publisher and consumer without a broker.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import trio

from sandcat.bus.bus import BusUnavailable, Record


class _LocalSubscription:
    def __init__(self, receive: trio.MemoryReceiveChannel[list[bytes]]) -> None:
        self._receive = receive

    async def receive(self) -> list[bytes]:
        return await self._receive.receive()


class LocalBus:
    def __init__(self, *, capacity: int = 1024, timeout_s: float = 10.0) -> None:
        #: Batches queued per subscription before a publish waits for it.
        self._capacity = capacity
        self._timeout_s = timeout_s
        self._subscribers: dict[trio.MemorySendChannel[list[bytes]], int | None] = {}

    async def publish(self, records: Sequence[Record]) -> None:
        if not records:
            return
        try:
            with trio.fail_after(self._timeout_s):
                for subscriber, slot in list(self._subscribers.items()):
                    values = [record.value for record in records if record.slot == slot]
                    if not values:
                        continue
                    try:
                        await subscriber.send(values)
                    except trio.ClosedResourceError:
                        continue  # unsubscribed while this publish waited for it
        except trio.TooSlowError as exc:
            raise BusUnavailable("a subscriber did not keep up with the local bus") from exc

    @asynccontextmanager
    async def subscribe(self, slot: int | None = None) -> AsyncIterator[_LocalSubscription]:
        send, receive = trio.open_memory_channel[list[bytes]](self._capacity)
        self._subscribers[send] = slot
        try:
            yield _LocalSubscription(receive)
        finally:
            self._subscribers.pop(send, None)
            send.close()
            receive.close()
