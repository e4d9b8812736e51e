"""The inbox over SQLite or PostgreSQL (see ``sandcat.store.inbox`` for the contract).

A user's next nseq comes from ``inbox_heads`` with ``INSERT ... ON CONFLICT DO
UPDATE ... RETURNING``, which (in PostgreSQL) row-locks the head until commit:
two transactions writing notices to one user get consecutive nseqs and commit
in that order. SQLite's single writer serialises them anyway. With the inbox
in MongoDB (``store.mongo``), this table is the outbox of notices to move
there (``pending``, ``remove``).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from sandcat.store.inbox import InboxPage, NewNotice, Notice
from sandcat.store.sql._tx import SqlStore, Tx, post_notices


def _head(tx: Tx, user: str) -> int:
    row = tx.one("SELECT max_nseq FROM inbox_heads WHERE user_id = ?", user)
    return 0 if row is None else int(row[0])


def _acked(tx: Tx, user: str, device: str) -> int:
    row = tx.one("SELECT upto FROM inbox_acks WHERE user_id = ? AND device = ?", user, device)
    return 0 if row is None else int(row[0])


def _notice(tx: Tx, user: str, nseq: int, type_: str, data: object, created: object) -> Notice:
    return Notice(str(user), int(nseq), str(type_), tx.dialect.json_out(data), tx.time_out(created))


class SqlInboxStore(SqlStore):
    """``InboxStore`` over either engine's ``Database``."""

    async def post(self, notices: Sequence[NewNotice], *, now_ms: int) -> list[Notice]:
        return list(await self._write(lambda tx: post_notices(tx, notices, now_ms)))

    async def pull(self, user: str, device: str, *, after: int | None, limit: int) -> InboxPage:
        def select(tx: Tx) -> InboxPage:
            start = _acked(tx, user, device) if after is None else after
            rows = tx.all(
                "SELECT nseq, type, data, created_at FROM inbox WHERE user_id = ? AND nseq > ? "
                "ORDER BY nseq LIMIT ?",
                user,
                start,
                limit + 1,
            )
            notices = tuple(_notice(tx, user, *row) for row in rows[:limit])
            return InboxPage(notices, len(rows) > limit, _head(tx, user))

        return await self._read(select)

    async def ack(self, user: str, device: str, upto: int, *, live_devices: Collection[str]) -> int:
        devices = sorted({*live_devices, device})

        def record(tx: Tx) -> int:
            # Lock the head first (PostgreSQL): acks and notices of one user are serialised.
            tx.one(
                f"SELECT max_nseq FROM inbox_heads WHERE user_id = ?{tx.dialect.for_update}", user
            )
            position = max(_acked(tx, user, device), min(upto, _head(tx, user)))
            tx.run(
                "INSERT INTO inbox_acks (user_id, device, upto) VALUES (?, ?, ?) "
                "ON CONFLICT (user_id, device) DO UPDATE SET upto = excluded.upto",
                user,
                device,
                position,
            )
            floor = min(_acked(tx, user, other) for other in devices)
            tx.run("DELETE FROM inbox WHERE user_id = ? AND nseq <= ?", user, floor)
            return position

        return await self._write(record)

    async def head(self, user: str) -> int:
        return await self._read(lambda tx: _head(tx, user))

    async def expire(self, *, before_ms: int) -> int:
        return await self._write(
            lambda tx: tx.run("DELETE FROM inbox WHERE created_at < ?", tx.time_in(before_ms))
        )

    async def pending(self, limit: int) -> list[Notice]:
        """The oldest notices still here, by user and nseq (as an outbox, when the
        inbox itself lives elsewhere: ``sandcat.domain.inbox_relay``)."""

        def select(tx: Tx) -> list[Notice]:
            rows = tx.all(
                "SELECT user_id, nseq, type, data, created_at FROM inbox "
                "ORDER BY user_id, nseq LIMIT ?",
                limit,
            )
            return [_notice(tx, *row) for row in rows]

        return await self._read(select)

    async def remove(self, notices: Sequence[Notice]) -> None:
        """Delete these notices (once they have been delivered elsewhere)."""
        keys = [(n.user, n.nseq) for n in notices]
        await self._write(
            lambda tx: tx.many("DELETE FROM inbox WHERE user_id = ? AND nseq = ?", keys)
        )
