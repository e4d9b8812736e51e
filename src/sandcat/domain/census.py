"""Cluster-wide gauges: how many accounts and live sessions the database holds,
and how many connections every running instance holds.

``/metrics`` must stay cheap to scrape, so these are not counted per scrape:
one task per instance re-reads them every ``http.census_interval_s`` and the
gauges show the last count. Every instance reads the same database, so every
instance reports the same (cluster-wide) value: do not sum them over
instances (README, "Metrics"). Connections live in no database: each instance
reports its own count to the connection book (``store/connections.py``) at the
same interval, and reads back the total.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import trio

from sandcat.clock import Clock
from sandcat.errors import Unavailable
from sandcat.metrics import Gauge
from sandcat.store.census import CensusStore
from sandcat.store.connections import ConnectionBook, report_ttl_ms

log = logging.getLogger(__name__)

#: How long a stopping instance tries to withdraw its connection report.
_WITHDRAW_S = 1.0


async def run_census(
    store: CensusStore,
    *,
    users: Gauge,
    sessions: Gauge,
    interval_s: float,
    clock: Clock,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Set ``users`` and ``sessions`` from the store now and every ``interval_s``
    until cancelled. A round whose read fails (the database is away) keeps the
    last values, logs a warning and is retried at the next interval."""
    started = False
    while True:
        try:
            count = await store.census(now_ms=clock())
        except Unavailable as exc:
            log.warning(
                "census: counting users and sessions failed, retried in %.0f s: %s", interval_s, exc
            )
        else:
            users.set(count.users)
            sessions.set(count.sessions)
        if not started:
            task_status.started()
            started = True
        await trio.sleep(interval_s)


@dataclass(frozen=True, slots=True)
class Connections:
    """Authenticated WebSocket connections, and whose (``sandcat admin stats``)."""

    count: int
    #: ``cluster``: every running instance's (their reports in Redis);
    #: ``instance``: one instance's (no Redis, or Redis did not answer).
    scope: str


async def connections_now(
    book: ConnectionBook, *, instance: str, connected: Callable[[], int], ttl_ms: int, clock: Clock
) -> Connections:
    """The cluster's connections, this instance's reported afresh first; this
    instance's alone without a shared book or when it fails (logged)."""
    own = connected()
    if not book.shared:
        return Connections(own, "instance")
    try:
        head = await book.report(instance, own, now_ms=clock(), ttl_ms=ttl_ms)
    except Unavailable as exc:
        log.warning(
            "connections: the cluster's count is unavailable, this instance's given: %s", exc
        )
        return Connections(own, "instance")
    return Connections(head.connections, "cluster")


async def run_connection_census(
    book: ConnectionBook,
    *,
    instance: str,
    connected: Callable[[], int],
    gauge: Gauge,
    interval_s: float,
    clock: Clock,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Report this instance's connections to ``book`` now and every ``interval_s``,
    and set ``gauge`` to the total of every live report, until cancelled; then
    withdraw the report. A failed round keeps the gauge and logs a warning."""
    ttl_ms = report_ttl_ms(interval_s)
    started = False
    try:
        while True:
            try:
                head = await book.report(instance, connected(), now_ms=clock(), ttl_ms=ttl_ms)
            except Unavailable as exc:
                log.warning(
                    "census: reporting connections failed, retried in %.0f s: %s", interval_s, exc
                )
            else:
                gauge.set(head.connections)
            if not started:
                task_status.started()
                started = True
            await trio.sleep(interval_s)
    finally:
        with trio.CancelScope(shield=True), trio.move_on_after(_WITHDRAW_S):
            try:
                await book.withdraw(instance)
            except Unavailable as exc:
                log.info("census: withdrawing this instance's connections failed: %s", exc)
