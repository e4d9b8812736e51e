"""The census counts (``sandcat.store.census``), over either engine."""

from __future__ import annotations

from sandcat.store.census import Census
from sandcat.store.sql._tx import SqlStore, Tx


class SqlCensusStore(SqlStore):
    async def census(self, *, now_ms: int) -> Census:
        def count(tx: Tx) -> Census:
            users, sessions = tx.one(
                "SELECT (SELECT COUNT(*) FROM users), (SELECT COUNT(*) FROM sessions "
                "WHERE revoked_at IS NULL AND expires_at > ?)",
                tx.time_in(now_ms),
            )
            return Census(users=int(users), sessions=int(sessions))

        return await self._read(count)
