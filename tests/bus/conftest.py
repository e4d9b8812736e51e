"""The ``bus`` fixture: every bus conformance test runs in process and on Kafka (tansu)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from sandcat.bus import Bus, LocalBus
from sandcat.bus.kafka import open_kafka_bus


@pytest.fixture(params=["local", "kafka"])
async def bus(request: pytest.FixtureRequest) -> AsyncIterator[Bus]:
    if request.param == "local":
        yield LocalBus(timeout_s=5)
        return
    bootstrap = request.getfixturevalue("kafka_bootstrap")
    topic = request.getfixturevalue("kafka_topic")
    async with open_kafka_bus(bootstrap, topic=topic, partitions=3, timeout_s=5) as kafka:
        yield kafka
