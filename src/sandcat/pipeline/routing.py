"""Routing (cluster mode): each event goes to the delivery slots of the instances
holding its recipients, not to every instance (docs/cluster-routing.md).

``RoutedBus`` wraps the bus the publisher writes to. Every record still goes to
the shared stream (the outbox's confirmation covers it); in the same publish,
each event is copied to the slot of every instance that holds a device of one
of its members (the route table: the presence book), except the instance that
committed it (its router delivered it). An instance holding none gets
nothing. The consumer reads only this instance's slot.

When the table cannot be trusted the copy goes to every slot instead
(today's broadcast, correctness over cost): Redis failed the lookup, the table
was restarted (a flush) less than ``settle_s`` ago, or it names an instance
whose slot is not known even after re-reading the slots.

The slot is claimed in the database beside the outbox heartbeat before the
consumer subscribes, kept for the process's life, and re-asserted with the
live instances' slots re-read every third of the lease.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager

import trio

from sandcat.bus import BadEvent, Bus, Event, decode_event
from sandcat.bus.bus import Record, Subscription
from sandcat.clock import Clock
from sandcat.errors import StoreUnavailable
from sandcat.metrics import ServerMetrics
from sandcat.store.outbox import OutboxStore
from sandcat.store.routes import RouteBook

log = logging.getLogger(__name__)


class RoutedBus:
    """A ``Bus`` that adds each event's routed copies to the records published."""

    def __init__(
        self,
        bus: Bus,
        book: RouteBook,
        store: OutboxStore,
        *,
        owner: str,
        count: int,
        lease_s: float,
        settle_s: float,
        clock: Clock,
        metrics: ServerMetrics | None = None,
    ) -> None:
        self._bus = bus
        self._book = book
        self._store = store
        self._owner = owner
        self._count = count
        self._lease_s = lease_s
        self._settle_ms = int(settle_s * 1000)
        self._clock = clock
        self._metrics = metrics or ServerMetrics.create()
        #: This instance's slot, once claimed.
        self.slot: int | None = None
        #: The slot of every live instance, as last read.
        self.slots: dict[str, int] = {}

    async def claim(self) -> int:
        """Take a slot (before subscribing to it) and read the others'."""
        self.slot = await self._store.claim_slot(
            self._owner, count=self._count, lease_s=self._lease_s
        )
        self.slots = await self._store.slots(lease_s=self._lease_s)
        # Starts the route table's epoch if this is the cluster's first instance, so
        # the settle time runs from here rather than from the first message.
        try:
            await self._book.holders([], now_ms=self._clock(), settle_ms=self._settle_ms)
        except StoreUnavailable as exc:
            log.warning("route table not reached at start (lookups retry it): %s", exc)
        log.info("reading delivery slot %d", self.slot)
        return self.slot

    async def keep(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Every third of the lease: hold on to this slot (if one was claimed: a
        publisher that reads nothing has none) and re-read the live ones."""
        task_status.started()
        while True:
            await trio.sleep(self._lease_s / 3)
            try:
                if self.slot is not None:
                    await self._store.claim_slot(
                        self._owner, count=self._count, lease_s=self._lease_s, keep=self.slot
                    )
                self.slots = await self._store.slots(lease_s=self._lease_s)
            except StoreUnavailable as exc:
                log.warning("delivery slots not re-read: %s", exc)

    def subscribe(self, slot: int | None = None) -> AbstractAsyncContextManager[Subscription]:
        return self._bus.subscribe(slot)

    async def publish(self, records: Sequence[Record]) -> None:
        await self._bus.publish([*records, *await self.route(records)])

    async def route(self, records: Sequence[Record]) -> list[Record]:
        """The routed copies of the events among ``records``."""
        events: list[tuple[Record, Event]] = []
        for record in records:
            if record.slot is None:
                try:
                    events.append((record, decode_event(record.value)))
                except BadEvent:
                    continue  # on the shared stream only; consumers there log it
        if not events:
            return []
        users = sorted({member for _, event in events for member in event.members})
        outcome = "routed"
        holders: dict[str, frozenset[str]] | None = None
        try:
            holders = await self._book.holders(
                users, now_ms=self._clock(), settle_ms=self._settle_ms
            )
            if holders is None:
                outcome = "settling"
        except StoreUnavailable as exc:
            log.debug("route lookup failed, sending to every slot: %s", exc)
            outcome = "redis_error"
        copies: list[Record] = []
        reread = False
        for record, event in events:
            targets = None
            if holders is not None:
                instances = {i for m in event.members for i in holders.get(m, ())}
                instances.discard(event.origin)
                if not reread and not instances <= self.slots.keys():
                    reread = True
                    await self._reread()
                if instances <= self.slots.keys():
                    targets = {self.slots[instance] for instance in instances}
                else:
                    outcome = "unknown_instance"
            if targets is None:
                # Every slot, not only the live ones as last read: one claimed since is
                # read by an instance that may already hold recipients.
                targets = set(range(self._count))
            copies.extend(Record(record.key, record.value, slot) for slot in sorted(targets))
        self._metrics.route_lookups.inc(1, outcome)
        return copies

    async def _reread(self) -> None:
        try:
            self.slots = await self._store.slots(lease_s=self._lease_s)
        except StoreUnavailable as exc:
            log.debug("delivery slots not re-read: %s", exc)
