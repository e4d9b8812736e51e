"""Bus conformance: the same contract in process and on a real Kafka broker."""

from __future__ import annotations

from collections import defaultdict

import trio

from sandcat.bus import Bus, Subscription
from sandcat.bus.bus import Record

#: Generous for a loaded CI machine; a healthy run takes milliseconds.
DEADLINE_S = 20


async def _collect(subscription: Subscription, count: int) -> list[bytes]:
    got: list[bytes] = []
    with trio.fail_after(DEADLINE_S):
        while len(got) < count:
            got.extend(await subscription.receive())
    return got


def _records(keys: int, per_key: int) -> list[Record]:
    return [
        Record(f"c{key}", f"c{key}:{n}".encode()) for n in range(per_key) for key in range(keys)
    ]


async def test_every_subscription_gets_every_record_in_order_per_key(bus: Bus) -> None:
    records = _records(keys=5, per_key=20)
    async with bus.subscribe() as first, bus.subscribe() as second:
        await bus.publish(records[:50])
        await bus.publish(records[50:])
        for subscription in (first, second):
            got = await _collect(subscription, len(records))
            assert sorted(got) == sorted(record.value for record in records)
            by_key: dict[str, list[int]] = defaultdict(list)
            for value in got:
                key, _, n = value.decode().partition(":")
                by_key[key].append(int(n))
            assert all(seqs == list(range(20)) for seqs in by_key.values())


async def test_a_subscription_starts_at_what_is_published_after_it(bus: Bus) -> None:
    await bus.publish([Record("c1", b"before")])
    async with bus.subscribe() as subscription:
        await bus.publish([])  # nothing to publish is not an error
        await bus.publish([Record("c1", b"after")])
        assert await _collect(subscription, 1) == [b"after"]


async def test_binary_values_arrive_byte_for_byte(bus: Bus) -> None:
    values = [bytes(range(256)), b"", b"\x00" * 70_000]
    async with bus.subscribe() as subscription:
        await bus.publish([Record("k", value) for value in values])
        assert await _collect(subscription, len(values)) == values
