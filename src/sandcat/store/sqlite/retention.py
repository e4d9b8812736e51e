"""Message retention on SQLite: old rows leave, ``min_seq`` moves (G7).

The embedded store has no partitions, so retention deletes: for every
conversation with messages created before the cutoff, ``min_seq`` moves past
the highest such seq (never back; the SYNC version is bumped) and every row
below the new ``min_seq`` is deleted, in one transaction per batch of
conversations. Every seq at or above ``min_seq`` is still there and none
below it is: PULL answers from ``min_seq`` and clients skip to it (G4).
"""

from __future__ import annotations

import logging
import sqlite3

import trio

from sandcat.clock import Clock
from sandcat.errors import StoreUnavailable
from sandcat.store.sql._tx import Tx
from sandcat.store.sqlite.database import Database
from sandcat.store.sqlite.dialect import DIALECT

log = logging.getLogger(__name__)

#: Conversations handled per transaction (SQLite has one writer: keep it short).
_BATCH = 500


def expire_messages(conn: sqlite3.Connection, *, before_ms: int, limit: int) -> dict[str, int]:
    """One batch, in the caller's transaction: the conversations whose ``min_seq``
    moved, and where it is now."""
    tops = conn.execute(
        "SELECT cid, max(seq) FROM messages WHERE created_at < ? GROUP BY cid ORDER BY cid LIMIT ?",
        (before_ms, limit),
    ).fetchall()
    if not tops:
        return {}
    version = Tx(conn, DIALECT).bump_version()
    moved: dict[str, int] = {}
    for cid, top in tops:
        row = conn.execute(
            "UPDATE conversations SET min_seq = max(min_seq, ?), version = ? WHERE cid = ? "
            "RETURNING min_seq",
            (int(top) + 1, version, cid),
        ).fetchone()
        # A message row always has its conversation; without one, delete up to top.
        low = int(top) + 1 if row is None else int(row[0])
        conn.execute("DELETE FROM messages WHERE cid = ? AND seq < ?", (cid, low))
        moved[str(cid)] = low
    return moved


async def apply_retention(db: Database, *, now_ms: int, messages_days: int) -> dict[str, int]:
    """Delete messages older than the policy; every conversation whose ``min_seq`` moved."""
    before_ms = now_ms - messages_days * 86_400_000
    moved: dict[str, int] = {}
    while True:
        batch = await db.write(
            lambda conn: expire_messages(conn, before_ms=before_ms, limit=_BATCH)
        )
        moved.update(batch)
        if len(batch) < _BATCH:
            return moved


async def run_retention_janitor(
    db: Database,
    clock: Clock,
    *,
    messages_days: int,
    interval_s: float,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Apply the retention policy now and every ``interval_s``, until cancelled."""
    task_status.started()
    while True:
        try:
            moved = await apply_retention(db, now_ms=clock(), messages_days=messages_days)
        except StoreUnavailable as exc:
            log.warning("message retention failed, retrying later: %s", exc)
        else:
            if moved:
                log.info("retention: min_seq moved in %d conversations", len(moved))
        await trio.sleep(interval_s)
