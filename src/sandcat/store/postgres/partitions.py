"""Monthly message partitions, created ahead of time by the janitor.

The original system created a year of partitions once and then failed every
insert. Here ``ensure_partitions`` creates the current month and the next
``months_ahead`` (idempotent, safe from several instances at once), the
janitor task repeats it on an interval, and the DEFAULT partition catches
any row whose month does not exist yet, so an insert never fails for want of
a partition; creating that month later moves such rows into it.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import trio

from sandcat.clock import Clock
from sandcat.errors import StoreUnavailable
from sandcat.store.postgres.database import Connection, Database, at
from sandcat.store.postgres.retention import apply_retention

log = logging.getLogger(__name__)


def months_from(now_ms: int, count: int) -> list[datetime]:
    """The first instants (UTC) of the month of ``now_ms`` and the ``count`` after it."""
    now = at(now_ms)
    months = []
    for offset in range(count + 1):
        index = now.year * 12 + now.month - 1 + offset
        months.append(datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC))
    return months


async def ensure_partitions(db: Database, *, now_ms: int, months_ahead: int) -> list[str]:
    """Create the partitions from this month to ``months_ahead`` months on; their names."""

    def create(conn: Connection) -> list[str]:
        names = []
        for month in months_from(now_ms, months_ahead):
            row = conn.execute("SELECT sandcat_message_partition(%s)", (month,)).fetchone()
            assert row is not None
            names.append(str(row[0]))
        return names

    return await db.write(create)


async def run_partition_janitor(
    db: Database,
    clock: Clock,
    *,
    months_ahead: int,
    interval_s: float,
    messages_days: int = 0,
    archive: bool = False,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Keep partitions ``months_ahead`` months ahead of ``clock``, for ever, and
    with ``messages_days`` retire the ones older than that (``retention``).

    The first round runs before ``started``: an instance is ready only once
    this month's partition exists. A failed later round is logged and retried
    at the next interval (the DEFAULT partition covers the gap).
    """
    await ensure_partitions(db, now_ms=clock(), months_ahead=months_ahead)
    task_status.started()
    while True:
        if messages_days:
            try:
                await apply_retention(
                    db, now_ms=clock(), messages_days=messages_days, archive=archive
                )
            except StoreUnavailable as exc:
                log.warning("message retention failed, retrying later: %s", exc)
        await trio.sleep(interval_s)
        try:
            await ensure_partitions(db, now_ms=clock(), months_ahead=months_ahead)
        except StoreUnavailable as exc:
            log.warning("creating message partitions failed, retrying later: %s", exc)
