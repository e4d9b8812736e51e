"""The Kafka bus's failure paths, against a real broker or a closed port."""

from __future__ import annotations

import pytest
import trio

from sandcat.bus import BusUnavailable
from sandcat.bus.bus import Record
from sandcat.bus.kafka import KafkaBus, open_kafka_bus
from tests.postgres import free_port


async def test_an_existing_topic_is_used_as_it_is(kafka_bootstrap: str, kafka_topic: str) -> None:
    async with open_kafka_bus(kafka_bootstrap, topic=kafka_topic, partitions=2, timeout_s=5):
        pass
    again = open_kafka_bus(kafka_bootstrap, topic=kafka_topic, partitions=7, timeout_s=5)
    async with again as bus, bus.subscribe() as subscription:
        await bus.publish([Record("k", b"v")])
        with trio.fail_after(20):
            assert await subscription.receive() == [b"v"]


async def test_no_broker_fails_publish_within_the_deadline() -> None:
    bus = KafkaBus(f"127.0.0.1:{free_port()}", topic="t", partitions=1, timeout_s=1)
    with trio.fail_after(10), pytest.raises(BusUnavailable, match="did not confirm"):
        await bus.publish([Record("k", b"v")])
    with trio.fail_after(10), pytest.raises(BusUnavailable, match="could not be created"):
        await bus.ensure_topic()
    with trio.fail_after(10), pytest.raises(BusUnavailable, match="cannot be read"):
        async with bus.subscribe():
            pass  # pragma: no cover - never entered
    await bus.aclose()
