"""The inbox in PostgreSQL (see ``sandcat.store.inbox`` for the contract).

A user's next nseq comes from ``inbox_heads`` with ``INSERT ... ON CONFLICT DO
UPDATE ... RETURNING``, which row-locks the head until commit: two
transactions writing notices to one user get consecutive nseqs and commit in
that order.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from psycopg.types.json import Jsonb

from sandcat.store.inbox import InboxPage, NewNotice, Notice
from sandcat.store.postgres.database import Connection, Database, at, ms


def post_notices(
    conn: Connection, notices: Sequence[NewNotice], *, now_ms: int
) -> tuple[Notice, ...]:
    """Write ``notices`` inside the caller's transaction, assigning each user's next nseq."""
    written: list[Notice] = []
    for new in notices:
        row = conn.execute(
            "INSERT INTO inbox_heads (user_id, max_nseq) VALUES (%s, 1) "
            "ON CONFLICT (user_id) DO UPDATE SET max_nseq = inbox_heads.max_nseq + 1 "
            "RETURNING max_nseq",
            (new.user,),
        ).fetchone()
        assert row is not None
        data = dict(new.data)
        conn.execute(
            "INSERT INTO inbox (user_id, nseq, type, data, created_at) VALUES (%s, %s, %s, %s, %s)",
            (new.user, row[0], new.type, Jsonb(data), at(now_ms)),
        )
        written.append(Notice(new.user, int(row[0]), new.type, data, now_ms))
    return tuple(written)


def _head(conn: Connection, user: str) -> int:
    row = conn.execute("SELECT max_nseq FROM inbox_heads WHERE user_id = %s", (user,)).fetchone()
    return 0 if row is None else int(row[0])


def _acked(conn: Connection, user: str, device: str) -> int:
    row = conn.execute(
        "SELECT upto FROM inbox_acks WHERE user_id = %s AND device = %s", (user, device)
    ).fetchone()
    return 0 if row is None else int(row[0])


class PostgresInboxStore:
    """``InboxStore`` over a PostgreSQL ``Database``."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def post(self, notices: Sequence[NewNotice], *, now_ms: int) -> list[Notice]:
        return list(await self._db.write(lambda conn: post_notices(conn, notices, now_ms=now_ms)))

    async def pull(self, user: str, device: str, *, after: int | None, limit: int) -> InboxPage:
        def select(conn: Connection) -> InboxPage:
            start = _acked(conn, user, device) if after is None else after
            rows = conn.execute(
                "SELECT nseq, type, data, created_at FROM inbox "
                "WHERE user_id = %s AND nseq > %s ORDER BY nseq LIMIT %s",
                (user, start, limit + 1),
            ).fetchall()
            notices = tuple(
                Notice(user, int(nseq), str(type_), dict(data), ms(created))
                for nseq, type_, data, created in rows[:limit]
            )
            return InboxPage(notices, len(rows) > limit, _head(conn, user))

        return await self._db.read(select)

    async def ack(self, user: str, device: str, upto: int, *, live_devices: Collection[str]) -> int:
        devices = sorted({*live_devices, device})

        def record(conn: Connection) -> int:
            # Lock the head first: acks and notices of one user are serialised.
            conn.execute("SELECT max_nseq FROM inbox_heads WHERE user_id = %s FOR UPDATE", (user,))
            position = max(_acked(conn, user, device), min(upto, _head(conn, user)))
            conn.execute(
                "INSERT INTO inbox_acks (user_id, device, upto) VALUES (%s, %s, %s) "
                "ON CONFLICT (user_id, device) DO UPDATE SET upto = excluded.upto",
                (user, device, position),
            )
            floor = min(_acked(conn, user, other) for other in devices)
            conn.execute("DELETE FROM inbox WHERE user_id = %s AND nseq <= %s", (user, floor))
            return position

        return await self._db.write(record)

    async def head(self, user: str) -> int:
        return await self._db.read(lambda conn: _head(conn, user))

    async def expire(self, *, before_ms: int) -> int:
        def delete(conn: Connection) -> int:
            return conn.execute(
                "DELETE FROM inbox WHERE created_at < %s", (at(before_ms),)
            ).rowcount

        return await self._db.write(delete)

    async def pending(self, limit: int) -> list[Notice]:
        """The oldest notices still here, by user and nseq (as an outbox, when the
        inbox itself lives elsewhere: ``sandcat.domain.inbox_relay``)."""

        def select(conn: Connection) -> list[Notice]:
            rows = conn.execute(
                "SELECT user_id, nseq, type, data, created_at FROM inbox "
                "ORDER BY user_id, nseq LIMIT %s",
                (limit,),
            ).fetchall()
            return [
                Notice(str(user), int(nseq), str(type_), dict(data), ms(created))
                for user, nseq, type_, data, created in rows
            ]

        return await self._db.read(select)

    async def remove(self, notices: Sequence[Notice]) -> None:
        """Delete these notices (once they have been delivered elsewhere)."""
        keys = [(n.user, n.nseq) for n in notices]

        def delete(conn: Connection) -> None:
            with conn.cursor() as cursor:
                cursor.executemany("DELETE FROM inbox WHERE user_id = %s AND nseq = %s", keys)

        await self._db.write(delete)
