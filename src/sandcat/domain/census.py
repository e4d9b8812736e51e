"""Cluster-wide gauges: how many accounts and live sessions the database holds.

``/metrics`` must stay cheap to scrape, so these are not counted per scrape:
one task per instance re-reads them every ``http.census_interval_s`` and the
gauges show the last count. Every instance reads the same database, so every
instance reports the same (cluster-wide) value: do not sum them over
instances (README, "Metrics").
"""

from __future__ import annotations

import logging

import trio

from sandcat.clock import Clock
from sandcat.errors import Unavailable
from sandcat.metrics import Gauge
from sandcat.store.census import CensusStore

log = logging.getLogger(__name__)


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
