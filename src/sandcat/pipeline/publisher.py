"""The publisher (cluster mode): relays this instance's outbox rows to the bus.

It wakes when the persister commits (``OutboxSignal``) and at least every
``idle_s``; each round reads the oldest rows this instance owns, publishes
them (key = cid, so each conversation stays in order on its partition) and
deletes them once the bus has confirmed them all. A crash between the two
publishes them again: at least once, and consumers drop duplicates by
``(cid, seq)``. A failed round keeps its rows and is retried after a pause.

Beside it, the heartbeat task renews this instance's lease and (with
``take_over``: the worker and all roles, docs/roles.md) claims the rows of
instances whose lease has run out (a crashed instance's events are published
by a live one; any number of instances may claim at once, each row ends with
one of them). On shutdown, after the pipeline has drained, the
publisher relays what is left, then gives up its lease so another instance
takes over at once whatever it could not publish.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import trio

from sandcat.bus import BadEvent, Bus, BusUnavailable, decode_event
from sandcat.bus.bus import Record
from sandcat.errors import StoreUnavailable
from sandcat.metrics import ServerMetrics
from sandcat.store.outbox import Outbox, OutboxSignal

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Publisher:
    """Handle of a running publisher: ``finish`` asks it to relay what is left and stop."""

    _signal: OutboxSignal
    finishing: bool = False
    done: trio.Event = field(default_factory=trio.Event)

    def finish(self) -> None:
        self.finishing = True
        self._signal.set()


async def run_publisher(
    outbox: Outbox,
    bus: Bus,
    *,
    lease_s: float,
    batch: int,
    idle_s: float = 1.0,
    retry_s: float = 0.5,
    metrics: ServerMetrics | None = None,
    take_over: bool = True,
    task_status: trio.TaskStatus[Publisher] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Relay the outbox until ``finish``ed (then drained) or cancelled; with
    ``take_over``, also the rows of instances whose lease ran out."""
    metrics = metrics or ServerMetrics.create()
    publisher = Publisher(outbox.signal)
    store, owner = outbox.store, outbox.owner
    try:
        # Alive before ready: a row this instance writes is never taken for a dead one's.
        await store.heartbeat(owner)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_keep_lease, outbox, lease_s, take_over)
            task_status.started(publisher)
            while True:
                try:
                    relayed = await _relay(outbox, bus, batch, metrics)
                except (StoreUnavailable, BusUnavailable) as exc:
                    backend = "kafka" if isinstance(exc, BusUnavailable) else "database"
                    metrics.relay_errors.inc(1, backend)
                    log.warning("outbox relay failed, retrying in %.1f s: %s", retry_s, exc)
                    if publisher.finishing:
                        break
                    await trio.sleep(retry_s)
                    continue
                if relayed:
                    continue
                if publisher.finishing:
                    break
                await outbox.signal.wait(idle_s)
            nursery.cancel_scope.cancel()
        try:
            await store.retire(owner)
        except StoreUnavailable as exc:
            log.warning("could not give up the outbox lease (it expires by itself): %s", exc)
    finally:
        publisher.done.set()


async def _relay(outbox: Outbox, bus: Bus, batch: int, metrics: ServerMetrics) -> int:
    """Publish and delete one batch of this instance's rows; how many."""
    rows = await outbox.store.pending(outbox.owner, limit=batch)
    metrics.outbox_last_batch.set(len(rows))
    if not rows:
        return 0
    committed_ms = _started_ms(rows[0].payload)
    if committed_ms is not None:
        metrics.relay_hops.observe(_age_s(committed_ms), "outbox_read")
    started = trio.current_time()
    await bus.publish([Record(row.cid, row.payload) for row in rows])
    metrics.bus_publish.observe(trio.current_time() - started)
    if committed_ms is not None:
        metrics.relay_hops.observe(_age_s(committed_ms), "broker_ack")
    await outbox.store.remove([row.id for row in rows])
    metrics.outbox_relayed.inc(len(rows))
    return len(rows)


def _started_ms(payload: bytes) -> int | None:
    """When the transaction of the event in ``payload`` began (ms), if it is readable."""
    try:
        return decode_event(payload).message.ts
    except BadEvent:
        return None  # relayed as it is; the consumers log and skip it


def _age_s(since_ms: int) -> float:
    """Seconds from ``since_ms`` (wall clock, ms) to now; never negative."""
    return max(0.0, time.time() - since_ms / 1000)


async def _keep_lease(outbox: Outbox, lease_s: float, take_over: bool) -> None:
    """Renew the lease every third of it; claim dead instances' rows each time (``take_over``)."""
    while True:
        await trio.sleep(lease_s / 3)
        try:
            await outbox.store.heartbeat(outbox.owner)
            claimed = 0
            if take_over:
                claimed = await outbox.store.take_over(outbox.owner, lease_s=lease_s)
        except StoreUnavailable as exc:
            log.warning("outbox heartbeat failed: %s", exc)
            continue
        if claimed:
            log.info("took over %d outbox rows of instances that stopped", claimed)
            outbox.signal.set()
