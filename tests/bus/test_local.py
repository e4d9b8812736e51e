"""The in-process bus's own edge: a subscriber that stops reading."""

from __future__ import annotations

import pytest
import trio

from sandcat.bus import BusUnavailable, LocalBus
from sandcat.bus.bus import Record


async def test_a_subscriber_that_never_reads_fails_the_publish_after_the_deadline() -> None:
    bus = LocalBus(capacity=1, timeout_s=0.2)
    async with bus.subscribe():
        await bus.publish([Record("k", b"1")])
        with trio.fail_after(5), pytest.raises(BusUnavailable):
            await bus.publish([Record("k", b"2")])


async def test_a_subscriber_leaving_mid_publish_is_skipped() -> None:
    bus = LocalBus(capacity=1, timeout_s=5)
    async with trio.open_nursery() as nursery, bus.subscribe() as kept:
        async with bus.subscribe():
            await bus.publish([Record("k", b"1")])
            nursery.start_soon(bus.publish, [Record("k", b"2")])
            await trio.sleep(0.05)  # the publish now waits for a full subscriber
            assert await kept.receive() == [b"1"]
        assert await kept.receive() == [b"2"]
