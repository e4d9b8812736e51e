"""The inbox in SQLite (see ``sandcat.store.inbox`` for the contract)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection, Sequence

from sandcat.store.inbox import InboxPage, NewNotice, Notice
from sandcat.store.sqlite.database import Database


def post_notices(
    conn: sqlite3.Connection, notices: Sequence[NewNotice], *, now_ms: int
) -> tuple[Notice, ...]:
    """Write ``notices`` inside the caller's transaction, assigning each user's next nseq."""
    written: list[Notice] = []
    for new in notices:
        (nseq,) = conn.execute(
            "INSERT INTO inbox_heads (user_id, max_nseq) VALUES (?, 1) "
            "ON CONFLICT (user_id) DO UPDATE SET max_nseq = max_nseq + 1 RETURNING max_nseq",
            (new.user,),
        ).fetchone()
        data = dict(new.data)
        conn.execute(
            "INSERT INTO inbox (user_id, nseq, type, data, created_at) VALUES (?, ?, ?, ?, ?)",
            (new.user, nseq, new.type, json.dumps(data, separators=(",", ":")), now_ms),
        )
        written.append(Notice(new.user, int(nseq), new.type, data, now_ms))
    return tuple(written)


def _head(conn: sqlite3.Connection, user: str) -> int:
    row = conn.execute("SELECT max_nseq FROM inbox_heads WHERE user_id = ?", (user,)).fetchone()
    return 0 if row is None else int(row[0])


def _acked(conn: sqlite3.Connection, user: str, device: str) -> int:
    row = conn.execute(
        "SELECT upto FROM inbox_acks WHERE user_id = ? AND device = ?", (user, device)
    ).fetchone()
    return 0 if row is None else int(row[0])


class SqliteInboxStore:
    """``InboxStore`` over a SQLite ``Database``."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def post(self, notices: Sequence[NewNotice], *, now_ms: int) -> list[Notice]:
        return list(await self._db.write(lambda conn: post_notices(conn, notices, now_ms=now_ms)))

    async def pull(self, user: str, device: str, *, after: int | None, limit: int) -> InboxPage:
        def select(conn: sqlite3.Connection) -> InboxPage:
            start = _acked(conn, user, device) if after is None else after
            rows = conn.execute(
                "SELECT nseq, type, data, created_at FROM inbox WHERE user_id = ? AND nseq > ? "
                "ORDER BY nseq LIMIT ?",
                (user, start, limit + 1),
            ).fetchall()
            notices = tuple(
                Notice(user, int(nseq), str(type_), json.loads(data), int(created))
                for nseq, type_, data, created in rows[:limit]
            )
            return InboxPage(notices, len(rows) > limit, _head(conn, user))

        return await self._db.read(select)

    async def ack(self, user: str, device: str, upto: int, *, live_devices: Collection[str]) -> int:
        devices = sorted({*live_devices, device})

        def record(conn: sqlite3.Connection) -> int:
            position = max(_acked(conn, user, device), min(upto, _head(conn, user)))
            conn.execute(
                "INSERT INTO inbox_acks (user_id, device, upto) VALUES (?, ?, ?) "
                "ON CONFLICT (user_id, device) DO UPDATE SET upto = excluded.upto",
                (user, device, position),
            )
            floor = min(_acked(conn, user, other) for other in devices)
            conn.execute("DELETE FROM inbox WHERE user_id = ? AND nseq <= ?", (user, floor))
            return position

        return await self._db.write(record)

    async def head(self, user: str) -> int:
        return await self._db.read(lambda conn: _head(conn, user))

    async def expire(self, *, before_ms: int) -> int:
        def delete(conn: sqlite3.Connection) -> int:
            return conn.execute("DELETE FROM inbox WHERE created_at < ?", (before_ms,)).rowcount

        return await self._db.write(delete)

    async def pending(self, limit: int) -> list[Notice]:
        """The oldest notices still here, by user and nseq (as an outbox, when the
        inbox itself lives elsewhere: ``sandcat.domain.inbox_relay``)."""

        def select(conn: sqlite3.Connection) -> list[Notice]:
            rows = conn.execute(
                "SELECT user_id, nseq, type, data, created_at FROM inbox "
                "ORDER BY user_id, nseq LIMIT ?",
                (limit,),
            ).fetchall()
            return [
                Notice(str(user), int(nseq), str(type_), json.loads(data), int(created))
                for user, nseq, type_, data, created in rows
            ]

        return await self._db.read(select)

    async def remove(self, notices: Sequence[Notice]) -> None:
        """Delete these notices (once they have been delivered elsewhere)."""
        keys = [(n.user, n.nseq) for n in notices]
        await self._db.write(
            lambda conn: (
                conn.executemany("DELETE FROM inbox WHERE user_id = ? AND nseq = ?", keys).rowcount
            )
        )
