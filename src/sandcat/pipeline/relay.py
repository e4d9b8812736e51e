"""Cluster mode's half of the send path: publisher and consumer, started and drained together.

``open_bus`` opens the configured bus (Kafka, or none in embedded mode);
``start_relay`` starts the publisher (this instance's outbox to the bus) and
the consumer (the bus to this instance's connections) in the caller's
nursery, each ready before it returns; ``Relay.drain`` relays what the
drained pipeline left in the outbox, then stops both.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import trio

from sandcat.bus import Bus
from sandcat.config import Config
from sandcat.metrics import ServerMetrics
from sandcat.pipeline.consumer import run_consumer
from sandcat.pipeline.outlet import Directory
from sandcat.pipeline.publisher import Publisher, run_publisher
from sandcat.store.outbox import Outbox


def new_instance_id() -> str:
    """A name for this process, unique across hosts and restarts."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}"


@asynccontextmanager
async def open_bus(config: Config) -> AsyncIterator[Bus | None]:
    """The configured bus between instances, or None without one."""
    settings = config.backends
    if not settings.kafka_bootstrap:
        yield None
        return
    from sandcat.bus.kafka import open_kafka_bus

    async with open_kafka_bus(
        settings.kafka_bootstrap,
        topic=settings.kafka_topic,
        partitions=settings.kafka_partitions,
        timeout_s=settings.kafka_timeout_s,
    ) as bus:
        yield bus


@dataclass(slots=True)
class Relay:
    publisher: Publisher
    _scopes: tuple[trio.CancelScope, trio.CancelScope]

    async def drain(self, timeout_s: float) -> None:
        """Publish what is left in the outbox (at most ``timeout_s``), then stop."""
        self.publisher.finish()
        with trio.move_on_after(timeout_s):
            await self.publisher.done.wait()
        for scope in self._scopes:
            scope.cancel()


async def start_relay(
    nursery: trio.Nursery,
    outbox: Outbox,
    bus: Bus,
    directory: Directory,
    config: Config,
    metrics: ServerMetrics | None = None,
) -> Relay:
    settings = config.backends
    publishing, consuming = trio.CancelScope(), trio.CancelScope()

    async def publish(task_status: trio.TaskStatus[Publisher]) -> None:
        with publishing:
            await run_publisher(
                outbox,
                bus,
                lease_s=settings.outbox_lease_s,
                batch=settings.outbox_batch,
                metrics=metrics,
                task_status=task_status,
            )

    async def consume(task_status: trio.TaskStatus[None]) -> None:
        with consuming:
            await run_consumer(
                bus,
                directory,
                instance=outbox.owner,
                capacity=settings.consumer_dedupe,
                metrics=metrics,
                task_status=task_status,
            )

    publisher: Publisher = await nursery.start(publish)
    await nursery.start(consume)
    return Relay(publisher, (publishing, consuming))
