"""The consumer (cluster mode): delivers other instances' events to local connections.

It reads every event on the bus. Events this instance committed were already
delivered by its router and are skipped; the rest go to the local devices of
the conversation's members through ``pipeline/delivery.py``, like the
router's. Events repeat (the publisher is at least once, and takes over dead
instances' rows): the last
``capacity`` ``(cid, seq)`` delivered are remembered and repeats dropped;
clients drop any that get through by ``(cid, seq)`` too (G6). A record that
is not a valid event is logged and skipped; the consumer keeps going.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict

import trio

from sandcat.bus import BadEvent, Bus, decode_event
from sandcat.metrics import ServerMetrics
from sandcat.pipeline.delivery import deliver
from sandcat.pipeline.outlet import Directory

log = logging.getLogger(__name__)


class RecentKeys:
    """A bounded set of the last ``(cid, seq)`` seen, oldest forgotten first."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._keys: OrderedDict[tuple[str, int], None] = OrderedDict()

    def add(self, key: tuple[str, int]) -> bool:
        """Remember ``key``; False if it was already remembered."""
        if key in self._keys:
            return False
        self._keys[key] = None
        if len(self._keys) > self._capacity:
            self._keys.popitem(last=False)
        return True


async def run_consumer(
    bus: Bus,
    directory: Directory,
    *,
    instance: str,
    capacity: int,
    slot: int | None = None,
    metrics: ServerMetrics | None = None,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Deliver events for ever; ``started`` once subscribed (events from then on arrive).

    With ``slot`` it reads only the events routed to that delivery slot."""
    metrics = metrics or ServerMetrics.create()
    hops, outcomes = metrics.relay_hops, metrics.bus_events
    seen = RecentKeys(capacity)
    async with bus.subscribe(slot) as subscription:
        task_status.started()
        while True:
            for value in await subscription.receive():
                try:
                    event = decode_event(value)
                except BadEvent as exc:
                    log.warning("skipping a record on the bus that is not an event: %s", exc)
                    continue
                if event.origin == instance:
                    outcomes.inc(1, "own")
                    continue
                if not seen.add(event.key):
                    outcomes.inc(1, "duplicate")
                    continue
                started_s = event.message.ts / 1000
                hops.observe(max(0.0, time.time() - started_s), "consumed")
                pushed = deliver(directory, event.message, event.members)
                outcomes.inc(1, "delivered" if pushed else "unrouted")
                if pushed:
                    hops.observe(max(0.0, time.time() - started_s), "delivered")
