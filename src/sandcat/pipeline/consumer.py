"""The consumer (cluster mode): delivers other instances' events to local connections.

It reads every event on the bus. Events this instance committed were already
delivered by its router and are skipped; the rest go to the local devices of
the conversation's members (the sender's other devices with ``cmid`` and
``device``, like the router), each frame encoded once. Events repeat (the
publisher is at least once, and takes over dead instances' rows): the last
``capacity`` ``(cid, seq)`` delivered are remembered and repeats dropped;
clients drop any that get through by ``(cid, seq)`` too (G6). A record that
is not a valid event is logged and skipped; the consumer keeps going.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict

import msgpack
import trio

from sandcat.bus import BadEvent, Bus, Event, decode_event
from sandcat.metrics import ServerMetrics
from sandcat.pipeline.outlet import Directory
from sandcat.pipeline.router import msg_push

log = logging.getLogger(__name__)

_UNREAD = object()


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
    metrics: ServerMetrics | None = None,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Deliver events for ever; ``started`` once subscribed (events from then on arrive)."""
    metrics = metrics or ServerMetrics.create()
    hops, outcomes = metrics.relay_hops, metrics.bus_events
    seen = RecentKeys(capacity)
    async with bus.subscribe() as subscription:
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
                pushed = deliver(directory, event)
                outcomes.inc(1, "delivered" if pushed else "unrouted")
                if pushed:
                    hops.observe(max(0.0, time.time() - started_s), "delivered")


def deliver(directory: Directory, event: Event) -> int:
    """Push ``event`` to every local device of its members but the one that sent it;
    how many devices it was pushed to."""
    message = event.message
    plain: bytes | None = None
    own: bytes | None = None
    body: object = _UNREAD
    pushed = 0
    for member in event.members:
        for outlet in directory.outlets(member):
            mine = member == message.sender
            if mine and outlet.device == message.device:
                continue  # the sending device has its ack
            if body is _UNREAD:
                try:
                    body = msgpack.unpackb(message.body, raw=False)
                except (ValueError, TypeError) as exc:
                    log.warning("event %s/%d has an unreadable body: %s", *event.key, exc)
                    return 0
            if mine:
                own = own or msg_push(message, body, own=True)
                outlet.push(own)
            else:
                plain = plain or msg_push(message, body, own=False)
                outlet.push(plain)
            pushed += 1
    return pushed
