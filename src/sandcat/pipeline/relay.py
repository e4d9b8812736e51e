"""Cluster mode's half of the send path: publisher and consumer, started and drained together.

``open_bus`` opens the configured bus (Kafka, or none in embedded mode);
``start_relay`` starts the publisher (this instance's outbox to the bus) and
the consumer (the bus to this instance's connections; not on the api and
worker roles, which hold none) in the caller's nursery, each ready before it
returns; with a route book (Redis) and ``backends.kafka_delivery_slots``,
events are routed (``pipeline/routing.py``: the publisher copies each to
its recipients' instances' slots, the consumer reads this instance's slot
only); ``Relay.drain`` relays what the drained pipeline left in the outbox,
then stops both.
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
from sandcat.clock import Clock, system_clock
from sandcat.config import Config
from sandcat.errors import BackendFailure, ignore_failure
from sandcat.metrics import ServerMetrics
from sandcat.pipeline.consumer import run_consumer
from sandcat.pipeline.outlet import Directory
from sandcat.pipeline.publisher import Publisher, run_publisher
from sandcat.pipeline.routing import RoutedBus
from sandcat.store.outbox import Outbox
from sandcat.store.routes import RouteBook


def new_instance_id() -> str:
    """A name for this process, unique across hosts and restarts."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}"


@asynccontextmanager
async def open_bus(
    config: Config, *, on_failure: BackendFailure = ignore_failure
) -> AsyncIterator[Bus | None]:
    """The configured bus between instances, or None without one; ``on_failure``
    hears of every failed Kafka call."""
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
        slots=max(1, settings.kafka_delivery_slots),
        on_failure=on_failure,
    ) as bus:
        yield bus


@dataclass(slots=True)
class Relay:
    publisher: Publisher
    _scopes: tuple[trio.CancelScope, ...]

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
    clock: Clock = system_clock,
    routes: RouteBook | None = None,
    *,
    consume: bool = True,
    take_over: bool = True,
) -> Relay:
    """Start the publisher and (with ``consume``: the roles that hold connections)
    the consumer, on its own delivery slot when routing; ``take_over`` is passed to
    the publisher (docs/roles.md: the worker and all roles)."""
    settings = config.backends
    publishing, consuming, routing = trio.CancelScope(), trio.CancelScope(), trio.CancelScope()
    routed: RoutedBus | None = None
    if settings.kafka_delivery_slots and routes is not None:
        routed = keeper = RoutedBus(
            bus,
            routes,
            outbox.store,
            owner=outbox.owner,
            count=settings.kafka_delivery_slots,
            lease_s=settings.outbox_lease_s,
            settle_s=2 * config.signals.presence_refresh_s,
            clock=clock,
            metrics=metrics,
        )
        if consume:
            await routed.claim()

        async def keep(task_status: trio.TaskStatus[None]) -> None:
            with routing:
                await keeper.keep(task_status=task_status)

        await nursery.start(keep)

    async def publish(task_status: trio.TaskStatus[Publisher]) -> None:
        with publishing:
            await run_publisher(
                outbox,
                routed or bus,
                lease_s=settings.outbox_lease_s,
                batch=settings.outbox_batch,
                metrics=metrics,
                take_over=take_over,
                task_status=task_status,
            )

    async def read(task_status: trio.TaskStatus[None]) -> None:
        with consuming:
            await run_consumer(
                bus,
                directory,
                instance=outbox.owner,
                capacity=settings.consumer_dedupe,
                slot=None if routed is None else routed.slot,
                metrics=metrics,
                task_status=task_status,
            )

    publisher: Publisher = await nursery.start(publish)
    if consume:
        await nursery.start(read)
    return Relay(publisher, (publishing, consuming, routing))
