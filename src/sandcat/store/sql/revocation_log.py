"""The revocation log in the database (``sandcat.store.revocations``), for servers
without Redis: an embedded server polls it, so a session ended by another
process (``sandcat admin disable`` on the command line) closes its sockets.

Each reader remembers the last id it read; its first poll starts at the end.
Entries older than ``keep_ms`` are deleted as new ones are written: a reader
polls every fraction of a second, so nothing it has not read is ever that old.
"""

from __future__ import annotations

from sandcat.clock import Clock
from sandcat.store.revocations import RevocationBatch, Revoked
from sandcat.store.sql._tx import Database, Dialect, SqlStore, Tx

#: How long an entry is kept (an hour: far longer than any poll interval).
_KEEP_MS = 3_600_000


class SqlRevocationLog(SqlStore):
    """``Revocations`` over either engine's ``Database``; each object is one reader."""

    def __init__(self, db: Database, dialect: Dialect, *, clock: Clock) -> None:
        super().__init__(db, dialect)
        self._clock = clock
        self._last: int | None = None

    async def revoke(self, user: str, session: str | None) -> None:
        now = self._clock()

        def append(tx: Tx) -> None:
            tx.run("DELETE FROM revocation_log WHERE at < ?", tx.time_in(now - _KEEP_MS))
            tx.run(
                "INSERT INTO revocation_log (user_id, session, at) VALUES (?, ?, ?)",
                user,
                session,
                tx.time_in(now),
            )

        await self._write(append)

    async def poll(self) -> RevocationBatch:
        last = self._last

        def read(tx: Tx) -> tuple[int, list[Revoked]]:
            if last is None:
                (top,) = tx.one("SELECT COALESCE(MAX(id), 0) FROM revocation_log")
                return int(top), []
            rows = tx.all(
                "SELECT id, user_id, session FROM revocation_log WHERE id > ? ORDER BY id",
                last,
            )
            top = max([last, *(int(id_) for id_, _, _ in rows)])
            return top, [Revoked(str(user), session) for _, user, session in rows]

        self._last, revoked = await self._read(read)
        return RevocationBatch(revoked)
