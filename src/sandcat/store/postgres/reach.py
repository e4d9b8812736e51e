"""``ReachStore`` in PostgreSQL (see ``sandcat.store.reach``)."""

from __future__ import annotations

from sandcat.store.postgres.database import Connection, Database

_WRITERS = "SELECT user_id FROM conversation_members WHERE cid = %s AND can_send"
_FRIENDS = (
    "SELECT f.friend_id FROM friends f WHERE f.user_id = %s AND f.deleted_at IS NULL "
    "AND NOT EXISTS (SELECT 1 FROM blocks b WHERE (b.user_id = f.user_id "
    "AND b.blocked_id = f.friend_id) OR (b.user_id = f.friend_id AND b.blocked_id = f.user_id))"
)
_OPENABLE = (
    "SELECT 1 FROM users u WHERE u.id = %s AND NOT u.disabled AND NOT EXISTS ("
    "SELECT 1 FROM blocks b WHERE (b.user_id = %s AND b.blocked_id = u.id)"
    " OR (b.user_id = u.id AND b.blocked_id = %s))"
)


class PostgresReachStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def writers(self, cid: str) -> frozenset[str]:
        def select(conn: Connection) -> frozenset[str]:
            return frozenset(user for (user,) in conn.execute(_WRITERS, (cid,)))

        return await self._db.read(select)

    async def friends(self, user: str) -> list[str]:
        def select(conn: Connection) -> list[str]:
            return [friend for (friend,) in conn.execute(_FRIENDS, (user,))]

        return await self._db.read(select)

    async def may_open_direct(self, user: str, peer: str) -> bool:
        def select(conn: Connection) -> bool:
            return conn.execute(_OPENABLE, (peer, user, user)).fetchone() is not None

        return await self._db.read(select)
